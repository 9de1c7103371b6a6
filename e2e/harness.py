"""One MAPS edge on this machine: link servers for every link of a policy, an "internet"
server for the default path, `mapsctl envoy-config` and a real Envoy.

Used by the end-to-end tests (`e2e/test_envoy.py`) and the demo (`e2e/demo.py`).
Everything listens on 127.0.0.1; every process started here is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from envoy import Envoy
from links import Link, LinkSet, free_port

ROOT = Path(__file__).resolve().parent.parent


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
        self.policy_version = ""

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
        out = self.mapsctl_envoy_config(self.policy_path)
        m = re.search(r"policy version (\w+)", out)
        self.policy_version = m.group(1) if m else ""
        self.envoy = Envoy(
            self.tools["envoy"],
            self.outdir / "envoy.json",
            self.admin_port,
            self.workdir / "envoy.log",
        ).start()
        self.wait_all_healthy()
        return self

    def config_args(self, policy: Path) -> list[str]:
        args = [
            self.tools["mapsctl"], "envoy-config",
            "--policy", str(policy),
            "--out", str(self.outdir),
            "--listen", f"127.0.0.1:{self.http_port}",
            "--listen-l4", f"127.0.0.1:{self.l4_port}",
            "--l4-proxy-protocol",
            "--admin", f"127.0.0.1:{self.admin_port}",
            "--internet", self.internet.address,
            "--plugin", self.tools["plugin"],
            "--health-interval-ms", str(self.health_interval_ms),
        ]
        # Addresses for the links this policy has (mapsctl refuses unknown link ids).
        doc = json.loads(Path(policy).read_text())
        ids = {l["id"] for e in doc.get("edges", []) for l in e.get("links", [])}
        for lid, link in self.links.links.items():
            if lid in ids:
                args += ["--link", f"{lid}={link.address}"]
        return args + list(self.extra_args)

    def mapsctl_envoy_config(self, policy: Path, ecds_only: bool = False) -> str:
        args = self.config_args(policy) + (["--ecds-only"] if ecds_only else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(
                f"mapsctl envoy-config failed ({r.returncode}):\n{r.stdout}{r.stderr}"
            )
        return r.stdout

    def wait_all_healthy(self, timeout: float = 20.0) -> None:
        """Until every running link is healthy in its edge cluster (active checks)."""
        assert self.envoy is not None

        def ok() -> bool:
            health = self.envoy.host_health()  # type: ignore[union-attr]
            for edge, lids in self.edge_links.items():
                hosts = health.get(edge_cluster(edge), {})
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

    def edge_of(self, link: str) -> str:
        return "internet" if link == "internet" else self.link_edge.get(link, "?")

    def links_of(self, edge: str) -> list[Link]:
        return [self.links[lid] for lid in self.edge_links.get(edge, [])]

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


def escape_id(id_: str) -> str:
    """policy_core::cluster's escaping: letters, digits and '-' kept, other bytes ~XX."""
    out = []
    for b in id_.encode():
        c = chr(b)
        out.append(c if (c.isascii() and c.isalnum()) or c == "-" else f"~{b:02X}")
    return "".join(out)


def edge_cluster(edge: str) -> str:
    return "edge_" + escape_id(edge)


def cluster_name(edge: str, backup: str | None) -> str:
    return "maps_" + escape_id(edge) + ("_" + escape_id(backup) if backup else "")


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
