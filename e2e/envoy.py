"""Start, watch and stop one Envoy process (by its PID), and read its admin interface."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class EnvoyError(RuntimeError):
    pass


class Envoy:
    """One Envoy started with `config`; its log goes to `log_path` (never inside the
    ECDS directory: Envoy watches that directory)."""

    def __init__(self, binary: str, config: Path, admin_port: int, log_path: Path) -> None:
        self.binary = binary
        self.config = config
        self.admin_port = admin_port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    # -- life cycle ---------------------------------------------------------------
    # Workers and per-component log levels; a subclass may change them.
    concurrency = 2
    component_log_levels = "upstream:warning,health_checker:warning"

    def start(self, timeout: float = 30.0) -> "Envoy":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-c", str(self.config),
                "--concurrency", str(self.concurrency),
                "--use-dynamic-base-id",  # never collide with another Envoy on this machine
                "--log-level", "info",
                "--component-log-level", self.component_log_levels,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyError(f"Envoy exited at start-up with status {self.proc.returncode}")
            try:
                if self.admin("/ready").strip() == "LIVE":
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise EnvoyError(f"Envoy not ready after {timeout:.0f}s")

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else -1

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s: this PID only."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 200) -> str:
        """The last lines of the log, without the start-up listing of extensions."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no Envoy log)"
        text = [l for l in text if "source/server/server.cc:467]" not in l]
        return "\n".join(text[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- admin --------------------------------------------------------------------
    def admin(self, path: str, method: str = "GET", timeout: float = 5.0) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")

    def stats(self, filter_regex: str = "") -> dict[str, str]:
        path = "/stats"
        if filter_regex:
            path += "?filter=" + urllib.request.quote(filter_regex)
        out: dict[str, str] = {}
        for line in self.admin(path).splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                out[name] = value
        return out

    def counter(self, name: str) -> int:
        value = self.stats("^" + re.escape(name) + "$").get(name, "0")
        try:
            return int(value)
        except ValueError:
            return 0

    def prometheus(self) -> str:
        return self.admin("/stats/prometheus")

    def wait_for(self, what: str, predicate, timeout: float = 15.0, step: float = 0.1):  # type: ignore[no-untyped-def]
        """Polls `predicate()` until it returns a true value (returned), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(step)
        raise EnvoyError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")

    def host_health(self) -> dict[str, dict[str, str]]:
        """{cluster: {hostname-or-address: health_flags}} from /clusters?format=json."""
        data = json.loads(self.admin("/clusters?format=json"))
        out: dict[str, dict[str, str]] = {}
        for c in data.get("cluster_statuses", []):
            hosts = {}
            for h in c.get("host_statuses", []):
                name = h.get("hostname") or json.dumps(h.get("address"))
                status = h.get("health_status", {})
                flags = [k for k, v in status.items() if v is True]
                eds = str(status.get("eds_health_status", "HEALTHY")).lower()
                hosts[name] = ",".join(sorted(flags)) or eds
            out[c.get("name", "")] = hosts
        return out


def prom_samples(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """The samples of `metric` in Prometheus text: [(labels, value)]."""
    out = []
    pat = re.compile(r"^" + re.escape(metric) + r"(\{(.*)\})?\s+(\S+)$")
    for line in text.splitlines():
        m = pat.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((labels, float(m.group(3))))
        except ValueError:
            continue
    return out
