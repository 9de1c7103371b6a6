"""A fleet of three Envoys and `mapsctl rollout` (`make e2e-fleet`; issue 12).

Three real Envoys, each from `mapsctl envoy-config` (own listeners and admin port, own
ECDS directory), in front of one set of link servers (every link of the demo policy plus
the default path). Bounded request streams run through all three for the whole test;
every request is counted with its Envoy, its client, its status and the link that
answered.

  1. invalid   `mapsctl rollout` of an invalid policy, then of a valid one routing to a
               cluster the running bootstraps lack: exit 1, no ECDS file changed.
  2. good      policy v2 = the demo plus one registration (a new prefix, pinned to an
               edge pair the bootstraps have): canary, then a batch of two. Every Envoy
               serves v2 (ECDS version text and the plugin's gauge), and the new
               registration's client now takes MAPS through each of them.
  3. bad       policy v3 = v2 with one registration's prefixes Pending: valid to
               `mapsctl validate`, but its traffic leaves MAPS (class unverified). The
               rollout stops at the canary (exit 3, outcome unhealthy-rolled-back), the
               canary serves v2 again with its v2 ECDS files back byte for byte, the
               other two Envoys were never touched (files, ECDS update counters).
  4. large     v2 with 100,000 more prefixes (more than 4 MiB of policy text, more than a
               gRPC xDS message may carry): rolled out like v2, through the ECDS files.

Asserted throughout: no request lost (every one answered 200 by a link server), and
every answer on the two non-canary Envoys from a link of the decided edge (or the
default path for non-MAPS clients). On the canary, the requests the bad policy sent to
the default path while it was served are counted and printed (the price of a canary);
after the rollback its answers are checked again.

A policy the plugin refuses cannot reach the fleet through `mapsctl rollout` (it
validates with the same core first); Envoy's rejection path is covered by the unit
tests of `mapsctl::rollout` on a real Envoy's counters and by e2e/test_hostile_push.py.

Figures printed (never asserted): each rollout's time, per step; the time each Envoy
took to serve v2 after the write; requests sent / lost per Envoy.

Every process is started here and stopped by its PID; everything listens on 127.0.0.1;
the work directories are removed at the end; on failure the tail of each Envoy's log is
printed.
"""

from __future__ import annotations

import copy
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envoy import Envoy  # noqa: E402
from harness import ROOT, Edge  # noqa: E402
from links import free_port  # noqa: E402
from traffic import request  # noqa: E402

POLICY = ROOT / "fixtures/demo/policy.json"
TRACE = ROOT / "fixtures/demo/trace.jsonl"
NEW_CLIENT = ("45.67.0.10", "outlook.office365.com")  # the v2 registration's customer
SETTLE_S = "3"
TIMEOUT_S = "30"
MAX_SECONDS = 300.0  # the streams' hard bound
LARGE_PREFIXES = 100_000


def say(line: str) -> None:
    print(line, flush=True)


class Member(Edge):
    """An Edge whose link servers are another Edge's (one set of links, many Envoys)."""

    def __init__(self, policy: Path, shared: Edge | None) -> None:
        super().__init__(policy, expose_decision_headers=True)
        self.shared = shared

    def start(self) -> "Member":
        if self.shared is None:
            super().start()
            return self
        self.links = self.shared.links
        self.internet = self.shared.internet
        self.link_edge = self.shared.link_edge
        self.edge_links = self.shared.edge_links
        self.http_port, self.l4_port, self.admin_port = free_port(), free_port(), free_port()
        self.mapsctl_envoy_config(self.policy_path)
        self.envoy = Envoy(
            self.tools["envoy"], self.outdir / "envoy.json", self.admin_port, self.workdir / "envoy.log"
        ).start()
        self.wait_all_healthy()
        return self

    def stop(self, keep_files: bool = False) -> None:
        if self.shared is None:
            super().stop(keep_files)
            return
        if self.envoy is not None:
            self.envoy.stop()
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def xds(self) -> Path:
        return self.outdir / "xds"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def ecds_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.xds.glob("*.json"))}

    def served(self) -> tuple[str, int | None]:
        """(HTTP filter's ECDS version text, the plugin's version gauge)."""
        assert self.envoy is not None
        regex = r"^(extension_config_discovery\.http_filter\.maps\.version_text|wasmcustom\.maps\.policy\.version)$"
        s = json.loads(self.envoy.admin("/stats?format=json&filter=" + urllib.parse.quote(regex)))
        vals = {e["name"]: e["value"] for e in s.get("stats", []) if "name" in e}
        return (str(vals.get("extension_config_discovery.http_filter.maps.version_text", "")),
                vals.get("wasmcustom.maps.policy.version"))

    def update_counters(self) -> dict[str, int]:
        assert self.envoy is not None
        s = self.envoy.stats("^extension_config_discovery\\..*\\.update_(success|rejected|attempt)$")
        return {k: int(v) for k, v in s.items()}


class FleetTraffic:
    """Bounded streams through every Envoy: `workers` keep-alive connections per Envoy,
    one request each `interval` s, until stop() or MAX_SECONDS. Every request is kept:
    (envoy index, seconds since start, client index, status, answering link)."""

    def __init__(self, members: list[Member], clients: list[tuple[str, str]],
                 workers: int = 2, interval: float = 0.02) -> None:
        self.members = members
        self.clients = clients
        self.workers = workers
        self.interval = interval
        self.records: list[tuple[int, float, int, int, str]] = []
        self.errors: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0

    def start(self) -> "FleetTraffic":
        self.t0 = time.monotonic()
        for m in range(len(self.members)):
            for w in range(self.workers):
                t = threading.Thread(target=self._run, args=(m, w), daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _run(self, m: int, w: int) -> None:
        port = self.members[m].http_port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = w
        while not self._stop.is_set() and self.now() < MAX_SECONDS:
            ci = i % len(self.clients)
            i += self.workers
            src, host = self.clients[ci]
            t = self.now()
            r = request(port, src, host, conn=conn)
            if r.status == 0:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with self._lock:
                self.records.append((m, t, ci, r.status, r.link))
                if r.status != 200 or not r.link:
                    self.errors[r.error or f"status {r.status}"] += 1
            self._stop.wait(self.interval)
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


class Fleet:
    def __init__(self) -> None:
        self.members: list[Member] = []
        self.tmp: Path | None = None

    def mapsctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        tools = self.members[0].tools
        return subprocess.run([tools["mapsctl"], *args], capture_output=True, text=True, timeout=timeout)

    def rollout(self, policy: Path) -> tuple[int, dict, str, float]:
        args = ["rollout", "--policy", str(policy)]
        for m in self.members:
            args += ["--edge", f"{m.admin_url}={m.xds}"]
        args += ["--batch", "2", "--settle-s", SETTLE_S, "--timeout-s", TIMEOUT_S,
                 "--min-requests", "20", "--format", "json"]
        t = time.monotonic()
        r = self.mapsctl(*args)
        took = time.monotonic() - t
        try:
            report = json.loads(r.stdout) if r.stdout.strip() else {}
        except ValueError:
            report = {}
        return r.returncode, report, r.stderr, took

    def expected(self, policy: Path, clients: list[tuple[str, str]]) -> list[set[str]]:
        """For each client, the edges that may answer it under `policy`: the decided edge
        and its backup for class maps, the default path otherwise."""
        lines = [{"src": s, "host": h} for s, h in clients]
        out = []
        for d in self.members[0].classify(lines, policy=policy):
            if d.get("class") == "maps":
                out.append({d["edge"]} | ({d["backup"]} if d.get("backup") else set()))
            else:
                out.append({"internet"})
        return out

    def policy_with_new_pair(self, v2: dict) -> Path:
        """v2 with the fleet-v2 registration pinned to an edge pair whose cluster the
        running bootstraps lack (asked of `mapsctl envoy-config`, into a scratch dir)."""
        assert self.tmp is not None
        m = self.members[0]
        have = {c["name"] for c in m.plan["clusters"]}
        ids = [e["id"] for e in v2["edges"]]
        for primary, backup in [(a, b) for a in reversed(ids) for b in ids if a != b][:40]:
            pair = copy.deepcopy(v2)
            reg = next(r for r in pair["registrations"] if r["id"] == "fleet-v2")
            reg["primary_edge"], reg["backup_edge"] = primary, backup
            path = self.tmp / "policy-new-pair.json"
            path.write_text(json.dumps(pair, indent=1))
            scratch = self.tmp / "scratch"
            args = m.config_args(path)
            args[args.index("--out") + 1] = str(scratch)
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"mapsctl envoy-config {path.name}: {r.stdout}{r.stderr}"
            route = json.loads((scratch / "plan.json").read_text())["registrations"]["fleet-v2"]
            if route and route["cluster"] not in have:
                return path
        raise AssertionError("every edge pair tried has a cluster in the bootstraps")

    def clients(self) -> list[tuple[str, str]]:
        """IPv4 clients of the demo trace, as the plain listener gets them (x-forwarded-for),
        at most two per registration, plus two that are not MAPS."""
        lines = []
        for raw in TRACE.read_text().splitlines():
            try:
                t = json.loads(raw)
            except ValueError:
                continue
            if isinstance(t, dict) and isinstance(t.get("src"), str) and t["src"].strip() \
                    and ":" not in t["src"] and "," not in t["src"]:
                lines.append({"src": t["src"], "host": t.get("host") or "example.test"})
        decisions = self.members[0].classify(lines)
        per_reg: Counter = Counter()
        out, other = [], []
        for t, d in zip(lines, decisions):
            if d.get("class") == "maps" and per_reg[d["registration"]] < 2:
                per_reg[d["registration"]] += 1
                out.append((t["src"], t["host"]))
            elif d.get("class") in ("unregistered", "non-microsoft") and len(other) < 2:
                other.append((t["src"], t["host"]))
        assert len(out) >= 4, "the demo trace has too few maps clients"
        return out + other

    def run(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="maps-fleet-"))
        base = json.loads(POLICY.read_text())
        first = Member(POLICY, None).start()
        self.members.append(first)
        for _ in range(2):
            self.members.append(Member(POLICY, first).start())
        pids = [m.envoy.pid for m in self.members]  # type: ignore[union-attr]
        say("fleet: " + ", ".join(f"envoy pid {m.envoy.pid} http :{m.http_port} admin :{m.admin_port}"  # type: ignore[union-attr]
                                  for m in self.members))
        v1 = self.members[0].policy_version

        # Policy v2: one more registration, pinned to fabrikam-wa's edge pair (its
        # aggregate cluster exists in every bootstrap), on a prefix no one uses yet.
        v2 = copy.deepcopy(base)
        fab = next(r for r in v2["registrations"] if r["id"] == "fabrikam-wa")
        new_reg = copy.deepcopy(fab)
        new_reg["id"] = "fleet-v2"
        new_reg["customer"] = "Fleet Test Customer"
        new_reg["prefixes"] = [{"prefix": "45.67.0.0/24", "state": "Verified"}]
        v2["registrations"].append(new_reg)
        p2 = self.tmp / "policy-v2.json"
        p2.write_text(json.dumps(v2, indent=1))
        # Policy v3 (bad): v2 with fabrikam-wa's prefixes Pending (valid, but its
        # customers' traffic leaves MAPS).
        v3 = copy.deepcopy(v2)
        for r in v3["registrations"]:
            if r["id"] == "fabrikam-wa":
                for p in r["prefixes"]:
                    p["state"] = "Pending"
        p3 = self.tmp / "policy-v3.json"
        p3.write_text(json.dumps(v3, indent=1))
        for p in (p2, p3):
            r = self.mapsctl("validate", str(p))
            assert r.returncode == 0, f"mapsctl validate {p.name}: {r.stdout}{r.stderr}"
        # An invalid policy.
        bad = copy.deepcopy(v2)
        bad["registrations"][0]["prefixes"][0]["state"] = "Verifed"
        p_bad = self.tmp / "policy-invalid.json"
        p_bad.write_text(json.dumps(bad, indent=1))

        # v2 with LARGE_PREFIXES more /24s in the new registration (44-47.0.0.0/8, which
        # no demo registration uses): more than 4 MiB of policy text.
        large = copy.deepcopy(v2)
        reg = next(r for r in large["registrations"] if r["id"] == "fleet-v2")
        reg["prefixes"] += [
            {"prefix": f"{44 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24", "state": "Verified"}
            for i in range(LARGE_PREFIXES) if f"{44 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24" != "45.67.0.0/24"
        ]
        p_large = self.tmp / "policy-large.json"
        p_large.write_text(json.dumps(large))
        assert p_large.stat().st_size > 4 * 1024 * 1024, p_large.stat().st_size
        r = self.mapsctl("validate", str(p_large))
        assert r.returncode == 0, f"mapsctl validate {p_large.name}: {r.stdout[-2000:]}{r.stderr[-2000:]}"

        # A policy whose new registration needs an edge pair no bootstrap has (its
        # cluster, as mapsctl names it, is not among the running ones).
        p_pair = self.policy_with_new_pair(v2)

        clients = self.clients()
        exp2 = self.expected(p2, clients)
        exp1 = self.expected(POLICY, clients)
        assert exp1 == exp2, "v2 must not move the stream's clients"
        exp3 = self.expected(p3, clients)
        moved = [c for c, a, b in zip(clients, exp2, exp3) if a != b]
        assert moved, "v3 moves none of the stream's clients"
        [d_new_v1] = self.members[0].classify([{"src": NEW_CLIENT[0], "host": NEW_CLIENT[1]}])
        [d_new_v2] = self.members[0].classify([{"src": NEW_CLIENT[0], "host": NEW_CLIENT[1]}], policy=p2)
        assert d_new_v1["class"] == "unregistered" and d_new_v2["class"] == "maps", (d_new_v1, d_new_v2)
        for m in self.members:
            r = request(m.http_port, *NEW_CLIENT)
            assert r.status == 200 and r.link == "internet", f"before v2: {r}"
        say(f"stream: {len(clients)} clients per Envoy ({len(moved)} of them leave MAPS under v3)")

        traffic = FleetTraffic(self.members, clients).start()
        try:
            time.sleep(1.0)

            # 1. invalid: refused before anything is written.
            files0 = [m.ecds_files() for m in self.members]
            code, report, err, _ = self.rollout(p_bad)
            assert code == 1, f"invalid policy: exit {code}\n{err}"
            assert "unknown-state" in err, err
            assert [m.ecds_files() for m in self.members] == files0, "an invalid policy was written"
            say("rollout of an invalid policy: exit 1, nothing written")
            # A valid policy routing to a cluster the running bootstraps lack (a new
            # edge pair): refused at the pre-flight, before anything is written.
            code, report, err, _ = self.rollout(p_pair)
            assert code == 1, f"missing cluster: exit {code}\n{err}"
            assert "lacks" in err and "nothing was written" in err, err
            assert [m.ecds_files() for m in self.members] == files0, "a policy was written"
            say("rollout of a policy needing a cluster the Envoys lack: exit 1, nothing written")

            # 2. good rollout.
            t_good = traffic.now()
            code, report, err, took = self.rollout(p2)
            assert code == 0, f"good rollout: exit {code}\n{err}\n{json.dumps(report, indent=1)}"
            assert report["outcome"] == "complete", report
            ver2 = report["version"]
            assert [e["outcome"] for e in report["edges"]] == ["updated"] * 3, report["edges"]
            assert [e["step"] for e in report["edges"]] == ["canary", "batch-1", "batch-1"], report["edges"]
            gauge2 = report["version_gauge"]
            assert gauge2 == int(ver2[:13], 16), (gauge2, ver2)
            for m in self.members:
                assert m.served() == (ver2, gauge2), (m.admin_url, m.served(), ver2)
            t_good_end = traffic.now()
            say(f"good rollout v1 {v1} -> v2 {ver2}: {took:.1f} s in all; steps "
                + ", ".join(f"{s['step']} {s['seconds']:.1f} s" for s in report["steps"])
                + "; served after the write: "
                + ", ".join(f"{e['step']} {e['seconds_to_serve']:.2f} s" for e in report["edges"]))
            for e in report["edges"]:
                say(f"  {e['step']:<8} {e['admin']}: health window {e['health']['after']['requests']} requests, "
                    f"5xx {e['health']['ratio_5xx']['before']:.3f} -> {e['health']['ratio_5xx']['after']:.3f}, "
                    f"watched {e['health']['ratio_watched']['before']:.3f} -> {e['health']['ratio_watched']['after']:.3f}")
            time.sleep(1.0)  # the workers' VMs configure after the main thread's
            for m in self.members:
                r = request(m.http_port, *NEW_CLIENT)
                assert r.status == 200 and m.edge_of(r.link) in (d_new_v2["edge"], d_new_v2.get("backup")), \
                    f"after v2 on {m.admin_url}: {r}"
                assert r.headers.get(m.headers["class"]) == "maps", r.headers

            # 3. bad rollout: stopped at the canary.
            files2 = [m.ecds_files() for m in self.members]
            counters2 = [m.update_counters() for m in self.members]
            t_bad = traffic.now()
            code, report, err, took = self.rollout(p3)
            t_bad_end = traffic.now()
            assert code == 3, f"bad rollout: exit {code}\n{err}\n{json.dumps(report, indent=1)}"
            assert report["outcome"] == "stopped", report
            outcomes = [e["outcome"] for e in report["edges"]]
            assert outcomes == ["unhealthy-rolled-back", "not-touched", "not-touched"], report["edges"]
            canary = report["edges"][0]
            assert "watched classes" in canary["reason"], canary
            assert canary["version_after"] == ver2, canary
            assert [s["step"] for s in report["steps"]] == ["canary"], report["steps"]
            for m in self.members:
                assert m.served() == (ver2, gauge2), (m.admin_url, m.served())
            assert [m.ecds_files() for m in self.members] == files2, "an ECDS file differs from v2's"
            assert [m.update_counters() for m in self.members[1:]] == counters2[1:], \
                "a non-canary Envoy saw an ECDS update"
            say(f"bad rollout v3: stopped at the canary in {took:.1f} s (canary served v3 after "
                f"{canary['seconds_to_serve']:.2f} s; health window {canary['health']['after']['requests']} requests, "
                f"watched classes {canary['health']['ratio_watched']['before']:.3f} -> "
                f"{canary['health']['ratio_watched']['after']:.3f}); rolled back: {canary['reason']}")
            time.sleep(1.0)
            # The canary routes as v2 again.
            for (src, host), exp in zip(clients, exp2):
                r = request(self.members[0].http_port, src, host)
                assert r.status == 200 and self.members[0].edge_of(r.link) in exp, (src, host, r, exp)
            time.sleep(1.0)

            # 4. large: v2 with LARGE_PREFIXES more prefixes, a policy text larger than a
            # gRPC xDS message may be (4 MiB): it travels in the ECDS files.
            t_large = traffic.now()
            code, report, err, took = self.rollout(p_large)
            assert code == 0, f"large rollout: exit {code}\n{err}\n{json.dumps(report, indent=1)}"
            assert [e["outcome"] for e in report["edges"]] == ["updated"] * 3, report["edges"]
            for m in self.members:
                assert m.served() == (report["version"], report["version_gauge"]), m.admin_url
                assert max(len(b) for b in m.ecds_files().values()) > p_large.stat().st_size
            say(f"large rollout ({p_large.stat().st_size / 1e6:.1f} MB policy, "
                f"{LARGE_PREFIXES} more prefixes; ECDS files "
                f"{max(len(b) for b in self.members[0].ecds_files().values()) / 1e6:.1f} MB): {took:.1f} s in all; "
                f"served after the write: "
                + ", ".join(f"{e['step']} {e['seconds_to_serve']:.2f} s" for e in report["edges"]))
            time.sleep(1.0)
            for m in self.members:  # the new registration's prefixes take MAPS
                r = request(m.http_port, "44.1.2.3", NEW_CLIENT[1])
                assert r.status == 200 and m.edge_of(r.link) in (d_new_v2["edge"], d_new_v2.get("backup")), r
            t_large_end = traffic.now()
        finally:
            traffic.stop()

        # Traffic, throughout.
        recs = traffic.records
        lost = [r for r in recs if r[3] != 200 or not r[4]]
        edge_of = self.members[0].edge_of
        misrouted = [r for r in recs if r[3] == 200 and r[4] and edge_of(r[4]) not in exp2[r[2]]]
        # The canary's bad window: from the rollout's start until a second after mapsctl
        # confirmed the rollback (Envoy's workers take a configuration after the main
        # thread, whose gauge and version text mapsctl reads).
        t_bad_end += 1.0
        canary_bad = [r for r in misrouted if r[0] == 0 and t_bad <= r[1] <= t_bad_end]
        for i, m in enumerate(self.members):
            mine = [r for r in recs if r[0] == i]
            say(f"traffic via envoy {i} ({'canary' if i == 0 else 'fleet'}): sent {len(mine)}, "
                f"lost {sum(1 for r in lost if r[0] == i)}, "
                f"off the expected route {sum(1 for r in misrouted if r[0] == i)}")
        say(f"traffic in all: sent {len(recs)}, lost {len(lost)}; during the good rollout "
            f"{sum(1 for r in recs if t_good <= r[1] <= t_good_end)} requests, during the large one "
            f"{sum(1 for r in recs if t_large <= r[1] <= t_large_end)}; the canary sent "
            f"{len(canary_bad)} requests to the default path while it served the bad policy")
        assert not lost, f"lost requests: {dict(traffic.errors)}"
        assert len(recs) > 500, len(recs)
        assert all(r[0] == 0 and t_bad <= r[1] <= t_bad_end for r in misrouted), \
            f"answers off the expected route outside the canary's bad window: {misrouted[:5]}"
        assert all(self.members[0].edge_of(r[4]) == "internet" for r in canary_bad), canary_bad[:5]
        assert canary_bad, "the bad policy never showed on the canary's traffic"
        assert [m.envoy.pid for m in self.members] == pids, "an Envoy restarted"  # type: ignore[union-attr]
        assert all(m.envoy.running() for m in self.members)  # type: ignore[union-attr]

    def stop(self) -> None:
        for m in reversed(self.members):  # the first one owns the link servers: last
            m.stop(keep_files=False)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    f = Fleet()
    t0 = time.monotonic()
    ok = False
    try:
        f.run()
        ok = True
        print(f"PASS e2e::fleet ({time.monotonic() - t0:.1f}s)", flush=True)
    except Exception:  # noqa: BLE001 - print the Envoys' logs, then fail
        traceback.print_exc()
        print(f"FAIL e2e::fleet ({time.monotonic() - t0:.1f}s)", flush=True)
        for i, m in enumerate(f.members):
            if m.envoy is not None:
                print(f"---- Envoy {i} log (tail) ----\n" + m.envoy.log_tail(60)[-8000:], flush=True)
    finally:
        f.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
