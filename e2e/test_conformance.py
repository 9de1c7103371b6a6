"""The conformance cases (host-harness/conformance/cases.txt) in a real Envoy.

The same cases run in the harness (host-harness/tests/conformance.rs); both must pass.
One Envoy, one listener per conformance filter (root id) on 127.0.0.1, one upstream
HTTP server (echo; GET /callout answers "pong"). Every process it starts is stopped by
PID; the whole run is bounded (a minute or so).

    ENVOY=.venv/bin/envoy CONFORMANCE_WASM=target/wasm32-wasip1/plugin/conformance_filters.wasm \
        python3 e2e/test_conformance.py
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envoy import Envoy, EnvoyError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "host-harness" / "conformance" / "cases.txt"


def parse(text: str) -> list[dict]:
    cases: list[dict] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip() or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "case":
            name, _, root = rest.partition(" ")
            cases.append({"name": name, "root_id": root, "requests": [], "eventually": False,
                          "status": None, "headers": [], "body": None})
            continue
        case = cases[-1]
        if word == "request":
            method, _, path = rest.partition(" ")
            case["requests"].append({"method": method, "path": path, "headers": [], "chunks": []})
        elif word == "header":
            k, _, v = rest.partition(": ")
            case["requests"][-1]["headers"].append((k, v))
        elif word == "chunks":
            case["requests"][-1]["chunks"] = rest.split("|")
        elif word == "eventually":
            case["eventually"] = True
        elif word == "expect":
            what, _, arg = rest.partition(" ")
            if what == "status":
                case["status"] = int(arg)
            elif what == "body":
                case["body"] = arg
            elif what == "header":
                k, _, v = arg.partition(" ")
                case["headers"].append((k, v))
            else:
                raise SystemExit(f"{CASES}:{n}: unknown expectation {what}")
        else:
            raise SystemExit(f"{CASES}:{n}: unknown directive {word}")
    return cases


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self) -> None:
        body = b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("content-length", "0") or 0))
        if self.path == "/callout":
            out, extra = b"pong", []
        else:
            out = body
            extra = [("x-echo-method", self.command), ("x-echo-path", self.path),
                     ("x-echo-body-length", str(len(body)))]
        self.send_response(200)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = _answer
    do_POST = _answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(wasm: str, listeners: dict[str, int], upstream: int, admin: int) -> dict:
    def listener(root: str, port: int) -> dict:
        wasm_filter = {
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": root,
                    "root_id": root,
                    "vm_config": {
                        "vm_id": "conformance",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": wasm}},
                    },
                },
            },
        }
        return {
            "name": f"conformance_{root}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network."
                             "http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": f"conformance_{root}",
                    "route_config": {"name": "conformance", "virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"},
                                    "route": {"cluster": "conformance_upstream"}}]}]},
                    "http_filters": [wasm_filter, {
                        "name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/"
                                         "envoy.extensions.filters.http.router.v3.Router"}}],
                }}]}],
        }

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [listener(r, p) for r, p in listeners.items()],
            "clusters": [{
                "name": "conformance_upstream",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "conformance_upstream", "endpoints": [{
                    "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": upstream}}}}]}]},
            }],
        },
    }


def send(port: int, req: dict) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": "conformance", "User-Agent": "conformance-client",
                   "Accept-Encoding": "identity"}
        headers.update(dict(req["headers"]))
        chunks = [c.encode() for c in req["chunks"]]
        if chunks:
            conn.request(req["method"], req["path"], body=iter(chunks), headers=headers,
                         encode_chunked=True)
        else:
            conn.request(req["method"], req["path"], headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def check(case: dict, seen: tuple[int, dict[str, str], bytes]) -> list[str]:
    status, headers, body = seen
    problems = []
    if case["status"] is not None and status != case["status"]:
        problems.append(f"status {status} (expected {case['status']})")
    for k, v in case["headers"]:
        if headers.get(k) != v:
            problems.append(f"header {k}: {headers.get(k)!r} (expected {v!r})")
    if case["body"] is not None and body != case["body"].encode():
        problems.append(f"body {body!r} (expected {case['body']!r})")
    return problems


def main() -> int:
    envoy_bin = os.environ.get("ENVOY", str(ROOT / ".venv" / "bin" / "envoy"))
    wasm = os.environ.get(
        "CONFORMANCE_WASM", str(ROOT / "target/wasm32-wasip1/plugin/conformance_filters.wasm"))
    if not Path(wasm).exists():
        print(f"conformance filters not built: {wasm} (make conformance-filters)")
        return 1
    cases = parse(CASES.read_text())
    roots = sorted({c["root_id"] for c in cases})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="conformance-e2e-"))
    listeners = {r: free_port() for r in roots}
    admin = free_port()
    cfg = work / "envoy.json"
    cfg.write_text(json.dumps(config(str(Path(wasm).resolve()), listeners,
                                     server.server_address[1], admin), indent=1))
    envoy = Envoy(envoy_bin, cfg, admin, work / "envoy.log")
    failures: list[str] = []
    try:
        envoy.start()
        for case in cases:
            port = listeners[case["root_id"]]
            seen = None
            for req in case["requests"]:
                seen = send(port, req)
            problems = check(case, seen)
            tries = 1
            while problems and case["eventually"] and tries < 30:
                time.sleep(0.1)
                seen = send(port, case["requests"][-1])
                problems = check(case, seen)
                tries += 1
            if problems:
                failures.append(f"{case['name']}: {'; '.join(problems)}")
                print(f"FAIL {case['name']}: {'; '.join(problems)}")
            else:
                print(f"ok   {case['name']}")
    except (EnvoyError, OSError) as e:
        failures.append(f"Envoy run: {e}")
    finally:
        envoy.stop()
        server.shutdown()
    if failures:
        print(f"\n{len(failures)} case(s) failed in Envoy; config and log in {work}")
        print(envoy.log_tail(60))
        return 1
    print(f"all {len(cases)} conformance cases pass in Envoy (pid {envoy.pid} stopped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
