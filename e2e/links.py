"""Stand-ins for the PNI links of Microsoft edge sites: one small HTTP server per link.

Each server listens on 127.0.0.1 only and answers every request with its link id, so a
test can tell which link (and so which edge) Envoy chose:

    GET /anything  ->  200  {"link": "sea-1", "path": "/anything", "headers": {request headers}}
                        and the response header `x-link: sea-1`
    GET /healthz   ->  200 "ok" (Envoy's active health check path), or 503 when the
                        link is marked unhealthy with `set_healthy(False)`

A link is "cut" with `stop()` (its listening socket closes: connections are refused, as
with a dead PNI) and brought back with `start()` on the same port.

Run standalone for a manual setup (the fault tests run one per network namespace, with
`--control=DIR`: a file DIR/<link>.degrade, "LOSS DELAY_MS", degrades that link):

    python3 e2e/links.py [--control=DIR] sea-1=127.0.0.1:18001 sea-2=127.0.0.1:18002
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import random
import socket
import sys
import threading
import time

HEALTH_PATH = "/healthz"

# Besides loopback, a link server may listen in the address range of the fault tests
# (e2e/test_faults.py), inside a network namespace those tests create.
FAULT_RANGE = ipaddress.ip_network("10.213.0.0/16")


def degradation(link: "Link") -> tuple[float, int]:
    """(loss probability, delay in ms) this link is to suffer now: read from the file
    `<control>/<link id>.degrade` ("LOSS DELAY_MS") when the link has a control
    directory (the fault tests' user-space stand-in for netem, which some kernels
    here lack); (0, 0) otherwise."""
    if not link.control:
        return 0.0, 0
    try:
        loss, delay = open(os.path.join(link.control, link.link_id + ".degrade")).read().split()
        return float(loss), int(delay)
    except (OSError, ValueError):
        return 0.0, 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"
    # Buffered: the status line, headers and body leave in one write (as any server
    # sends a small response), flushed by the handler after each request. Unbuffered,
    # the body waited ~40 ms behind the headers (Nagle against delayed ACKs), and a
    # link dying in that gap cut a response Envoy had already begun to forward.
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: tests print what matters

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-link", self.server.link_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        link = self.server.link
        loss, delay = degradation(link)
        if delay:
            time.sleep(delay / 1000.0)
        if loss and random.random() < loss:
            # A lost segment: TCP retransmits after its timeout, then backs off; the
            # answer comes seconds late (as a 30 % loss link does to a request).
            time.sleep(3.0)
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            link.health_checks += 1
            if link.healthy:
                self._reply(200, b"ok\n", "text/plain")
            else:
                self._reply(503, b"unhealthy\n", "text/plain")
            return
        link.requests += 1
        # Every request header (names in lower case): the test picks the plugin's by the
        # names `mapsctl envoy-config` wrote in plan.json.
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = json.dumps(
            {
                "link": self.server.link_id,
                "path": self.path,
                "headers": headers,
            }
        ).encode()
        self._reply(200, body + b"\n", "application/json")

    do_GET = _handle
    do_POST = _handle
    do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, link: "Link") -> None:
        self.link = link
        self.link_id = link.link_id
        self.open_conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__((link.host, link.port), _Handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self.conns_lock:
            self.open_conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self.conns_lock:
            self.open_conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass  # a peer that went away mid-reply (a cut link) is expected here

    def cut_connections(self) -> None:
        """Reset every established connection, as a link going down would."""
        with self.conns_lock:
            conns = list(self.open_conns)
            self.open_conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Link:
    """One link server. `port=0` picks a free port (read `port` after `start()`)."""

    def __init__(
        self, link_id: str, host: str = "127.0.0.1", port: int = 0, control: str = ""
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1") and not (
            _is_ip(host) and ipaddress.ip_address(host) in FAULT_RANGE
        ):
            raise ValueError(f"link servers listen on loopback (or in {FAULT_RANGE}) only, not {host}")
        self.link_id = link_id
        self.control = control
        self.host = host
        self.port = port
        self.healthy = True
        self.requests = 0
        self.health_checks = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "Link":
        if self._server is not None:
            return self
        # A port just released may linger briefly; retry a bounded number of times.
        last: OSError | None = None
        for _ in range(50):
            try:
                self._server = _Server(self)
                break
            except OSError as err:
                last = err
                time.sleep(0.1)
        if self._server is None:
            raise RuntimeError(f"link {self.link_id}: cannot listen on {self.address}: {last}")
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Cut the link: close the listening socket (new connections are refused) and
        every established connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_healthy(self, healthy: bool) -> None:
        self.healthy = healthy


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for Envoy's listeners and admin)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LinkSet:
    """Several links by id."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}

    def add(self, link_id: str, port: int = 0) -> Link:
        link = Link(link_id, port=port).start()
        self.links[link_id] = link
        return link

    def __getitem__(self, link_id: str) -> Link:
        return self.links[link_id]

    def stop_all(self) -> None:
        for link in self.links.values():
            link.stop()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    links = LinkSet()
    control = ""
    if argv and argv[0].startswith("--control="):
        control = argv.pop(0).split("=", 1)[1]
    for arg in argv:
        link_id, _, addr = arg.partition("=")
        host, _, port = addr.rpartition(":")
        link = Link(link_id, host or "127.0.0.1", int(port or 0), control=control).start()
        links.links[link_id] = link
        print(f"{link_id} listening on {link.address}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        links.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
