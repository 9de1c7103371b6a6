"""Bounded request streams through Envoy, counted by outcome and by answering link."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int  # 0 when no HTTP answer came (connection error, timeout)
    link: str  # the link server that answered ("" when none)
    headers: dict[str, str]  # the request headers the link server saw (lower-case names)
    error: str = ""


class ProxyProtocolConnection(http.client.HTTPConnection):
    """An HTTP connection that opens with a PROXY protocol v1 line, as a load balancer
    in front of Envoy would send (for a listener with `--proxy-protocol`)."""

    def __init__(self, host: str, port: int, preface: bytes, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.preface = preface

    def connect(self) -> None:
        super().connect()
        self.sock.sendall(self.preface)


def proxy_v1(src: str, dst: str, src_port: int = 40000, dst_port: int = 443) -> bytes:
    """A PROXY protocol v1 line for addresses of one family."""
    fam = "TCP6" if ":" in src else "TCP4"
    if (":" in dst) != (":" in src):
        raise ValueError("PROXY v1 needs source and destination of one family")
    return f"PROXY {fam} {src} {dst} {src_port} {dst_port}\r\n".encode()


# PROXY v1 for "addresses unknown": Envoy keeps the connection's own addresses.
PROXY_UNKNOWN = b"PROXY UNKNOWN\r\n"


def request(
    port: int,
    client: str | None,
    host: str | None = "example.test",
    path: str = "/",
    timeout: float = 5.0,
    conn: http.client.HTTPConnection | None = None,
    proxy: bytes | None = None,
) -> Reply:
    """One GET through Envoy's listener on 127.0.0.1:`port`, as customer `client`.

    The customer's address travels in `x-forwarded-for` (one trusted hop, as from a
    load balancer in front of Envoy); `None`: no such header. `host` is the :authority
    (the destination name); `None`: the client's default, the listener's own address.
    `proxy`: a PROXY protocol line the new connection opens with.
    """
    own = conn is None
    if conn is not None:
        c = conn
    elif proxy is not None:
        c = ProxyProtocolConnection("127.0.0.1", port, proxy, timeout)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if host is not None:
        headers["host"] = host
    if client is not None:
        headers["x-forwarded-for"] = client
    try:
        c.request("GET", path, headers=headers)
        resp = c.getresponse()
        body = resp.read()
        link = resp.getheader("x-link") or ""
        seen: dict[str, str] = {}
        if link and body:
            try:
                seen = dict(json.loads(body).get("headers", {}))
            except (ValueError, AttributeError):
                seen = {}
        return Reply(resp.status, link, seen)
    except (OSError, http.client.HTTPException) as err:
        if not own:
            c.close()
        return Reply(0, "", {}, error=f"{type(err).__name__}: {err}")
    finally:
        if own:
            c.close()


@dataclass
class StreamStats:
    sent: int = 0
    delivered: int = 0  # a 2xx answer from a link server
    failed: int = 0
    by_link: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    # (seconds since start, link) of each delivered answer, in order
    timeline: list[tuple[float, str]] = field(default_factory=list)
    # (seconds since start when sent, seconds it took, link or "" when it failed)
    latencies: list[tuple[float, float, str]] = field(default_factory=list)

    def line(self, name: str) -> str:
        links = ", ".join(f"{k}={v}" for k, v in sorted(self.by_link.items()))
        return (
            f"{name}: sent={self.sent} delivered={self.delivered} failed={self.failed}"
            f" ({100.0 * self.delivered / max(self.sent, 1):.2f}% delivered) links: {links}"
        )


class Stream:
    """A steady request stream in the background: `workers` keep-alive connections,
    each sending one request every `interval` seconds, until `stop()` or `max_seconds`
    (a hard bound) or `max_requests` in all."""

    def __init__(
        self,
        port: int,
        clients: list[tuple[str, str]],  # (client address, host) pairs, used in turn
        workers: int = 4,
        interval: float = 0.01,
        max_seconds: float = 60.0,
        max_requests: int = 100_000,
        timeout: float = 5.0,
    ) -> None:
        self.timeout = timeout
        self.port = port
        self.clients = clients
        self.workers = workers
        self.interval = interval
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.stats = StreamStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> "Stream":
        self._t0 = time.monotonic()
        for w in range(self.workers):
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, w: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        i = w
        deadline = self._t0 + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.stats.sent >= self.max_requests:
                    break
                self.stats.sent += 1
            client, host = self.clients[i % len(self.clients)]
            i += self.workers
            t_sent = time.monotonic()
            r = request(self.port, client, host, conn=conn)
            took = time.monotonic() - t_sent
            if r.status == 0:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            with self._lock:
                ok = 200 <= r.status < 300 and bool(r.link)
                self.stats.latencies.append((t_sent - self._t0, took, r.link if ok else ""))
                self.stats.by_status[r.status] += 1
                if 200 <= r.status < 300 and r.link:
                    self.stats.delivered += 1
                    self.stats.by_link[r.link] += 1
                    self.stats.timeline.append((time.monotonic() - self._t0, r.link))
                else:
                    self.stats.failed += 1
                    self.stats.errors[r.error or f"status {r.status}"] += 1
            self._stop.wait(self.interval)
        conn.close()

    def stop(self) -> StreamStats:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        return self.stats

    def delivered_since(self, t: float) -> Counter:
        with self._lock:
            return Counter(link for (ts, link) in self.stats.timeline if ts >= t)

    def elapsed(self) -> float:
        return time.monotonic() - self._t0
