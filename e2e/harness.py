"""One MAPS edge on this machine: link servers for every link of a policy, an "internet"
server for the default path, `mapsctl envoy-config` and a real Envoy.

Used by the end-to-end tests (`e2e/test_envoy.py`) and the demo (`e2e/demo.py`).
Everything listens on 127.0.0.1; every process started here is stopped by its PID.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from envoy import Envoy
from links import Link, LinkSet, free_port
from traffic import Reply, proxy_v1, request

ROOT = Path(__file__).resolve().parent.parent

# What `mapsctl envoy-config --out DIR` writes besides the configuration: the names a
# test needs (header names, edge clusters, each registration's route, the clusters, the
# client-address rule), as the policy resolves them. Nothing here re-derives a name.
PLAN_FILE = "plan.json"

# The load balancer in front of Envoy (the PROXY protocol's source when the client
# travels in x-forwarded-for): loopback, of the destination's family.
BALANCER = {"TCP4": "127.0.0.1", "TCP6": "::1"}


def tool_paths() -> dict[str, str]:
    """Binaries, from the environment the Makefile sets (defaults: the Makefile's)."""
    return {
        "envoy": os.environ.get("ENVOY", str(ROOT / ".venv/bin/envoy")),
        "mapsctl": os.environ.get("MAPSCTL", str(ROOT / "target/release/mapsctl")),
        "plugin": os.environ.get(
            "PLUGIN_WASM", str(ROOT / "target/wasm32-wasip1/plugin/maps_plugin.wasm")
        ),
    }


class Edge:
    """A running edge: links, Envoy, and the generated configuration."""

    def __init__(
        self,
        policy_path: Path,
        workdir: Path | None = None,
        health_interval_ms: int = 400,
        extra_args: tuple[str, ...] = (),
        proxy_protocol: bool = False,
        expose_decision_headers: bool = False,
        original_dst_default: bool = False,
    ) -> None:
        self.tools = tool_paths()
        self.policy_path = Path(policy_path).resolve()
        self.policy = json.loads(self.policy_path.read_text())
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="maps-e2e-"))
        self.outdir = self.workdir / "envoy"
        self.health_interval_ms = health_interval_ms
        self.extra_args = extra_args
        self.links = LinkSet()
        self.link_edge: dict[str, str] = {}  # link id -> edge id
        self.edge_links: dict[str, list[str]] = {}
        self.http_port = 0
        self.l4_port = 0
        self.admin_port = 0
        self.envoy: Envoy | None = None
        # `--proxy-protocol`: the HTTP listener reads the client and destination
        # addresses from a PROXY line (every connection must send one).
        self.proxy_protocol = proxy_protocol
        # `--expose-decision-headers`: the plugin's class/cluster/decision headers travel
        # upstream (the link servers echo them). Off by default, as in mapsctl: the
        # decision is then in the access log only (`access_log()`).
        self.expose_decision_headers = expose_decision_headers
        self.access_log_path = self.workdir / "access.log"
        # No `--internet`: the default path is an ORIGINAL_DST cluster (the connection's
        # original destination; here the PROXY line's, with `proxy_protocol`).
        self.original_dst_default = original_dst_default
        # plan.json of the last `mapsctl envoy-config` run (see PLAN_FILE).
        self.plan: dict = {}

    # -- names, from plan.json --------------------------------------------------------
    @property
    def policy_version(self) -> str:
        return str(self.plan.get("policy_version", ""))

    @property
    def headers(self) -> dict[str, str]:
        """The plugin's header names: {"prefix", "class", "cluster", "decision"}."""
        return self.plan["headers"]

    def edge_cluster(self, edge: str) -> str:
        return self.plan["edges"][edge]

    def route(self, registration: str) -> dict | None:
        """{"edge", "backup", "cluster"} of a registration's maps traffic (None: none)."""
        return self.plan["registrations"].get(registration)

    # -- set-up -------------------------------------------------------------------
    def start(self) -> "Edge":
        for edge in self.policy.get("edges", []):
            ids = [link["id"] for link in edge.get("links", [])]
            self.edge_links[edge["id"]] = ids
            for lid in ids:
                self.link_edge[lid] = edge["id"]
                self.links.add(lid)
        self.internet = self.links.add("internet")
        self.http_port, self.l4_port, self.admin_port = free_port(), free_port(), free_port()
        self.mapsctl_envoy_config(self.policy_path)
        self.envoy = Envoy(
            self.tools["envoy"],
            self.outdir / "envoy.json",
            self.admin_port,
            self.workdir / "envoy.log",
        ).start()
        self.wait_all_healthy()
        return self

    def config_args(self, policy: Path, source: Path | None = None) -> list[str]:
        """`source`: the JSON a compiled `policy` was compiled from (its link ids)."""
        args = [
            self.tools["mapsctl"], "envoy-config",
            "--policy", str(policy),
            "--out", str(self.outdir),
            "--listen", f"127.0.0.1:{self.http_port}",
            "--listen-l4", f"127.0.0.1:{self.l4_port}",
            "--l4-proxy-protocol",
            *(["--proxy-protocol"] if self.proxy_protocol else []),
            *(["--expose-decision-headers"] if self.expose_decision_headers else []),
            "--access-log", str(self.access_log_path),
            "--admin", f"127.0.0.1:{self.admin_port}",
            *([] if self.original_dst_default else ["--internet", self.internet.address]),
            "--plugin", self.tools["plugin"],
            "--health-interval-ms", str(self.health_interval_ms),
        ]
        # Addresses for the links this policy has (mapsctl refuses unknown link ids).
        doc = json.loads(Path(source or policy).read_text())
        ids = {l["id"] for e in doc.get("edges", []) for l in e.get("links", [])}
        for lid, link in self.links.links.items():
            if lid in ids:
                args += ["--link", f"{lid}={link.address}"]
        return args + list(self.extra_args)

    def mapsctl_envoy_config(self, policy: Path, ecds_only: bool = False,
                             source: Path | None = None) -> str:
        args = self.config_args(policy, source) + (["--ecds-only"] if ecds_only else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(
                f"mapsctl envoy-config failed ({r.returncode}):\n{r.stdout}{r.stderr}"
            )
        self.plan = json.loads((self.outdir / PLAN_FILE).read_text())
        return r.stdout

    def access_log(self) -> list[dict]:
        """Envoy's HTTP access log: one JSON object per request (the generated
        format: client, authority, path, status, upstream cluster and host, and the
        plugin's decision as `maps_class`, `maps_cluster`, `maps_decision`)."""
        try:
            text = self.access_log_path.read_text(errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_all_healthy(self, timeout: float = 20.0) -> None:
        """Until every running link is healthy in its edge cluster (active checks)."""
        assert self.envoy is not None

        def ok() -> bool:
            health = self.envoy.host_health()  # type: ignore[union-attr]
            for edge, lids in self.edge_links.items():
                hosts = health.get(self.edge_cluster(edge), {})
                for lid in lids:
                    if lid in hosts and self.links[lid].running and hosts[lid] != "healthy":
                        return False
            return True

        self.envoy.wait_for("all links healthy", ok, timeout=timeout, step=0.2)

    def stop(self, keep_files: bool = False) -> None:
        """Stops Envoy and the link servers; removes the work directory (the generated
        configuration and Envoy's log) unless `keep_files`."""
        if self.envoy is not None:
            self.envoy.stop()
        self.links.stop_all()
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- what the native engine decides ---------------------------------------------
    def classify(self, trace: list[dict], policy: Path | None = None) -> list[dict]:
        """Decisions of `mapsctl classify --engine native` for `trace` lines."""
        text = "".join(json.dumps(t) + "\n" for t in trace)
        r = subprocess.run(
            [self.tools["mapsctl"], "classify", "--policy", str(policy or self.policy_path)],
            input=text, capture_output=True, text=True, timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError(f"mapsctl classify failed: {r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def http_filter(self) -> tuple[str, Path]:
        """The HTTP listener's MAPS filter, as the generated bootstrap names it: its
        ECDS resource name and the ECDS file Envoy watches."""
        boot = json.loads((self.outdir / "envoy.json").read_text())
        for lis in boot["static_resources"]["listeners"]:
            if lis["address"]["socket_address"]["port_value"] != self.http_port:
                continue
            hcm = lis["filter_chains"][0]["filters"][0]["typed_config"]
            for f in hcm["http_filters"]:
                if "config_discovery" in f:
                    path = f["config_discovery"]["config_source"]["path_config_source"]["path"]
                    return f["name"], Path(path)
        raise RuntimeError("no ECDS filter on the HTTP listener")

    def explain(self, src: str, dst: str | None = None, host: str | None = None) -> dict:
        """`mapsctl explain --format json` for one flow (matched prefix with its
        telemetry flag, the decision's cluster, ...)."""
        args = [self.tools["mapsctl"], "explain", "--policy", str(self.policy_path),
                "--format", "json"]
        args += (["--dst", dst] if dst else []) + (["--host", host] if host else [])
        r = subprocess.run(args + ["--", src], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"mapsctl explain failed: {r.stderr}")
        return json.loads(r.stdout)

    def edge_of(self, link: str) -> str:
        return "internet" if link == "internet" else self.link_edge.get(link, "?")

    def links_of(self, edge: str) -> list[Link]:
        return [self.links[lid] for lid in self.edge_links.get(edge, [])]

    # -- one trace line as one request ---------------------------------------------------
    def send_line(self, line: dict, path: str = "/") -> tuple[Reply, str]:
        """Sends trace line `line` ({"src", "dst"?, "host"?}) through the HTTP listener
        (which needs `proxy_protocol`): returns Envoy's answer and the client address
        text the plugin is given (what its decision's `src` must be).

        The source travels as the policy's client rule (plan.json's `client_address`)
        says the plugin reads it. `xff` (n trusted hops): in `x-forwarded-for`, written
        by the load balancer (with n - 1 proxies after it), Envoy appending the balancer
        itself; the plugin then sees the trace's text exactly. `source`: as the PROXY
        line's source address (with the line's port, else 40000; Envoy's
        `source.address` always has a port). The destination, when it is an address,
        is the PROXY line's destination (`destination.address`); otherwise the PROXY
        destination is an address no policy lists (`NO_DESTINATION`) on the host's
        port, else 443 (Envoy has no connection without a destination, and its port is
        the flow's port, SPEC §5). The host is the :authority; without
        one the request carries the listener's address as Host (HTTP/1.1 has no
        request without a Host). Raises `Unsendable` for what no request can carry.
        """
        if not self.proxy_protocol:
            raise RuntimeError("send_line needs an Edge with proxy_protocol=True")
        src = line.get("src")
        if not isinstance(src, str):
            raise Unsendable(f"src is {src!r}, not text: a malformed trace line, no flow")
        dst = line.get("dst")
        host = line.get("host")
        if host is not None and not isinstance(host, str):
            raise Unsendable(f"host is {host!r}, not text")
        dst_addr = split_address(dst) if isinstance(dst, str) else None
        rule = self.plan["client_address"]
        if rule.get("from") == "xff":
            hops = int(rule.get("trusted_hops", 0))
            if hops < 1:
                raise Unsendable("x-forwarded-for with 0 trusted hops names Envoy's peer only")
            if "," in src:
                raise Unsendable(f"src {src!r} contains ',' and cannot travel in x-forwarded-for")
            entries = [src] + [BALANCER["TCP4"]] * (hops - 1)
            xff = ", ".join(entries)
            if xff == "":
                # An empty client entry: Envoy appends its peer to an empty header with no
                # separator (the header then names no client at all), so the empty entry
                # is written as the balancer's after an empty one: "," -> "", "", peer.
                xff = ","
            if dst_addr is None:
                # No destination address: one that no policy lists (TEST-NET-1), on
                # the host's port (SPEC §5: the flow's port is the destination's, else
                # the host's; Envoy always has a destination port), else 443.
                proxy = proxy_v1(BALANCER["TCP4"], NO_DESTINATION, 40000, host_port(host) or 443)
            else:
                fam = "TCP6" if ":" in dst_addr[0] else "TCP4"
                proxy = proxy_v1(BALANCER[fam], dst_addr[0], 40000, dst_addr[1] or 443)
            return request(self.http_port, xff, host, path, proxy=proxy), src
        if rule.get("from") == "source":
            src_addr = split_address(src)
            if src_addr is None:
                raise Unsendable(f"src {src!r} is no address: a PROXY line cannot carry it")
            addr, port = src_addr[0], src_addr[1] or 40000
            v6 = ":" in addr
            if dst_addr is None:
                # As above: an address no policy lists, on the host's port, else 443.
                dst_addr = ("2001:db8::d" if v6 else NO_DESTINATION, host_port(host) or 443)
            elif (":" in dst_addr[0]) != v6:
                raise Unsendable(f"src {src!r} and dst {dst!r}: PROXY needs one address family")
            proxy = proxy_v1(addr, dst_addr[0], port, dst_addr[1] or 443)
            seen = f"[{addr}]:{port}" if v6 else f"{addr}:{port}"
            return request(self.http_port, None, host, path, proxy=proxy), seen
        raise Unsendable(f"client rule {rule!r} unknown to this test")

    # -- L4 -------------------------------------------------------------------------
    def l4_request(self, src: str, dst: str, timeout: float = 5.0) -> str:
        """One TCP connection to the L4 listener, introduced by a PROXY v1 header (as a
        trusted load balancer would send): returns the link id that answered ("" if
        none)."""
        fam = "TCP6" if ":" in src else "TCP4"
        if (":" in dst) != (":" in src):
            raise ValueError("PROXY v1 needs source and destination of one family")
        with socket.create_connection(("127.0.0.1", self.l4_port), timeout=timeout) as c:
            c.sendall(
                f"PROXY {fam} {src} {dst} 40000 443\r\n".encode()
                + b"GET /l4 HTTP/1.0\r\nhost: l4\r\n\r\n"
            )
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.split(b"\r\n"):
            if line.lower().startswith(b"x-link:"):
                return line.split(b":", 1)[1].strip().decode()
        return ""


class Unsendable(ValueError):
    """A trace line no request through Envoy can carry (the message says why)."""


# The PROXY destination of a trace line without one: TEST-NET-1, which no destination
# list holds (a documentation range), so only the host can match, as natively.
NO_DESTINATION = "192.0.2.254"


def host_port(host: object) -> int | None:
    """The port a Host value carries ("name:587", "[v6]:443"), if it is a port."""
    if not isinstance(host, str):
        return None
    text = host.strip()
    if text.startswith("["):
        _, sep, rest = text.partition("]:")
        port = rest if sep else ""
    elif text.count(":") == 1:
        port = text.split(":", 1)[1]
    else:
        return None
    if port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535:
        return int(port)
    return None


def split_address(text: str) -> tuple[str, int | None] | None:
    """`text` as a PROXY line carries it: (address, port or None) for "addr",
    "v4:port" and "[v6]:port"; None when it is no address (the test then says so)."""
    host, port = text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            return None
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, port


def ecds_with_policy(ecds_file: Path, policy_text: str, version: str) -> dict:
    """The ECDS document in `ecds_file` with another policy text (no validation: this
    is how a test hands Envoy a policy that mapsctl would refuse)."""
    doc = json.loads(ecds_file.read_text())
    doc["version_info"] = version
    for res in doc.get("resources", []):
        res["typed_config"]["config"]["configuration"]["value"] = policy_text
    return doc


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
