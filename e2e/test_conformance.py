"""The conformance cases (host-harness/conformance/cases.txt) in a real Envoy.

The same cases run in the harness (host-harness/tests/conformance.rs); both must pass.
One Envoy, one listener per conformance filter (root id) on 127.0.0.1, one upstream
HTTP server (echo; GET /callout answers "pong"; /trailers answers with a trailer). The
gRPC upstream is the same Envoy: a plain HTTP/2 listener whose only route answers every
call with gRPC status 7 and no message body (a trailers-only response), reached through
cluster `conformance_grpc`; cluster `conformance_grpc_dead` points at a port nothing
listens on. Cluster `conformance_grpc_echo` is a real gRPC server (Python `grpcio`, in this
process, on a free port of 127.0.0.1; stopped by its handle): service `conformance.Echo`,
`Say` echoes the request, `Chat` answers each message of a stream. Every process it starts
is stopped by PID; the whole run is bounded (a minute or so).

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
            case["requests"].append({"method": method, "path": path, "headers": [], "chunks": [],
                                     "trailers": []})
        elif word == "header":
            k, _, v = rest.partition(": ")
            case["requests"][-1]["headers"].append((k, v))
        elif word == "trailer":
            k, _, v = rest.partition(": ")
            case["requests"][-1]["trailers"].append((k, v))
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
        elif self.path == "/trailers":
            # A chunked response with a trailer (Envoy forwards it: enable_trailers).
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.send_header("trailer", "x-up-trailer")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\nx-up-trailer: up\r\n\r\n" % (len(body), body))
            return
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


GRPC_STATUS = "7"
GRPC_MESSAGE = "denied-by-upstream"


# The echo server's answers (host-harness/tests/conformance.rs answers the same way).
GRPC_ECHO_INITIAL = ("x-echo-init", "yes")
GRPC_ECHO_TRAILER = ("x-echo-trailer", "done")


def grpc_echo_server():
    """A real gRPC server without generated code: bytes in, bytes out.

    conformance.Echo/Say (unary): answers `echo:<request>;x-conformance=<metadata>` with
    initial metadata x-echo-init and trailing metadata x-echo-trailer, status OK.
    conformance.Echo/Chat (bidi): initial metadata x-echo-init, then `<message>#<n>` for the
    n-th message; when the client half-closes, OK with trailing metadata x-echo-trailer.
    Returns (server, port)."""
    import grpc  # the project's .venv (make e2e-conformance installs grpcio)
    from concurrent import futures

    def say(request: bytes, context) -> bytes:
        md = dict(context.invocation_metadata())
        context.send_initial_metadata((GRPC_ECHO_INITIAL,))
        context.set_trailing_metadata((GRPC_ECHO_TRAILER,))
        return b"echo:" + request + b";x-conformance=" + md.get("x-conformance", "-").encode()

    def chat(requests, context):
        context.send_initial_metadata((GRPC_ECHO_INITIAL,))
        for n, message in enumerate(requests, 1):
            yield message + b"#%d" % n
        context.set_trailing_metadata((GRPC_ECHO_TRAILER,))

    handler = grpc.method_handlers_generic_handler("conformance.Echo", {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def grpc_upstream_listener(port: int) -> dict:
    """A gRPC "server" in Envoy itself: every call is answered with headers only
    (`grpc-status` in them: a trailers-only response)."""
    return {
        "name": "conformance_grpc_upstream",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                         "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "conformance_grpc_upstream",
                "codec_type": "HTTP2",
                "route_config": {"name": "grpc", "virtual_hosts": [{
                    "name": "all", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"},
                                "direct_response": {"status": 200}}],
                    "response_headers_to_add": [
                        {"header": {"key": "content-type", "value": "application/grpc"}},
                        {"header": {"key": "grpc-status", "value": GRPC_STATUS}},
                        {"header": {"key": "grpc-message", "value": GRPC_MESSAGE}},
                    ]}]},
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/"
                                     "envoy.extensions.filters.http.router.v3.Router"}}],
            }}]}],
    }


def cluster(name: str, port: int, http2: bool) -> dict:
    options = ({"http2_protocol_options": {}} if http2
               else {"http_protocol_options": {"enable_trailers": True}})
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/"
                         "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": options}},
        "load_assignment": {"cluster_name": name, "endpoints": [{
            "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": port}}}}]}]},
    }


def config(wasm: str, listeners: dict[str, int], upstream: int, admin: int,
           grpc: int, dead: int, echo: int) -> dict:
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
                    "http_protocol_options": {"enable_trailers": True},
                    "route_config": {"name": "conformance", "virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [
                            # route_cache: chosen only if the route is computed again
                            # after the filter set x-route.
                            {"name": "alt", "match": {"prefix": "/", "headers": [{
                                "name": "x-route", "string_match": {"exact": "alt"}}]},
                             "direct_response": {"status": 200,
                                                 "body": {"inline_string": "alt route"}}},
                            {"name": "upstream", "match": {"prefix": "/"},
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
            "listeners": [listener(r, p) for r, p in listeners.items()]
            + [grpc_upstream_listener(grpc)],
            "clusters": [
                cluster("conformance_upstream", upstream, http2=False),
                cluster("conformance_grpc", grpc, http2=True),
                cluster("conformance_grpc_dead", dead, http2=True),
                cluster("conformance_grpc_echo", echo, http2=True),
            ],
        },
    }


def send(port: int, req: dict) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": "conformance", "User-Agent": "conformance-client",
                   "Accept-Encoding": "identity"}
        headers.update(dict(req["headers"]))
        chunks = [c.encode() for c in req["chunks"]]
        if req["trailers"]:
            # http.client cannot send trailers: write the chunked body by hand.
            conn.putrequest(req["method"], req["path"], skip_host=True,
                            skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            raw = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
            raw += b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in req["trailers"])
            conn.send(raw + b"\r\n")
        elif chunks:
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


# What Envoy 1.40 does with the same small filter built for each ABI version
# (host-harness/tests/all/guest.rs `abi_module`; the harness test
# `each_abi_version_is_accepted_and_called_with_its_own_signatures` expects the same):
# the local reply body its request headers callback sends.
ABI_EXPECTED = {
    "0_1_0": "abi 0.1.0",
    "0_2_0": "abi 0.2.0 eos=1",
    "0_2_1": "abi 0.2.1 eos=1",
}


def abi_config(wasm: str, port: int, admin: int) -> dict:
    cfg = config(wasm, {"abi": port}, free_port(), admin, free_port(), free_port(),
                 free_port())
    wasm_config = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["http_filters"][0]["typed_config"]["config"]
    wasm_config["vm_config"]["vm_id"] = "abi"
    wasm_config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                    "value": "cfg"}
    cfg["static_resources"]["listeners"] = cfg["static_resources"]["listeners"][:1]
    return cfg


def abi_versions(envoy_bin: str, modules: Path, work: Path) -> list[str]:
    """Each ABI version's module in its own Envoy: does Envoy load it, and call it?"""
    failures = []
    for version, expected in ABI_EXPECTED.items():
        wasm = modules / f"abi_{version}.wasm"
        if not wasm.exists():
            failures.append(f"abi {version}: {wasm} missing")
            continue
        port, admin = free_port(), free_port()
        cfg = work / f"abi_{version}.json"
        cfg.write_text(json.dumps(abi_config(str(wasm.resolve()), port, admin), indent=1))
        envoy = Envoy(envoy_bin, cfg, admin, work / f"abi_{version}.log")
        try:
            envoy.start()
            status, _, body = send(port, {"method": "GET", "path": "/", "headers": [],
                                          "chunks": [], "trailers": []})
            seen = f"{status} {body.decode(errors='replace')}"
        except (EnvoyError, OSError) as e:
            seen = f"Envoy: {e}"
        finally:
            envoy.stop()
        if seen != f"200 {expected}":
            failures.append(f"abi {version}: {seen!r} (expected '200 {expected}')")
            print(f"FAIL abi {version}: {seen}")
            print(envoy.log_tail(20))
        else:
            print(f"ok   abi {version}: {seen}")
    return failures


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
    echo, echo_port = grpc_echo_server()
    work = Path(tempfile.mkdtemp(prefix="conformance-e2e-"))
    listeners = {r: free_port() for r in roots}
    admin, grpc, dead = free_port(), free_port(), free_port()
    cfg = work / "envoy.json"
    cfg.write_text(json.dumps(config(str(Path(wasm).resolve()), listeners,
                                     server.server_address[1], admin, grpc, dead, echo_port),
                                indent=1))
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
            if os.environ.get("CONFORMANCE_VERBOSE"):
                print(case["name"], seen)
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
        echo.stop(grace=None).wait(5)
    modules = os.environ.get("ABI_MODULES_DIR")
    if modules:
        failures += abi_versions(envoy_bin, Path(modules), work)
    if failures:
        print(f"\n{len(failures)} case(s) failed in Envoy; config and log in {work}")
        print(envoy.log_tail(60))
        return 1
    print(f"all {len(cases)} conformance cases pass in Envoy (pid {envoy.pid} stopped)"
          + (f"; ABI versions {', '.join(ABI_EXPECTED)} load and run" if modules else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
