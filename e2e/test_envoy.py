"""End-to-end in a real Envoy (`make e2e`).

The demo policy (fixtures/demo/policy.json) runs in Envoy 1.40 with the built plugin,
configured by `mapsctl envoy-config`; one link server per PNI link answers with its
link id. Every check compares what Envoy did with what the native engine
(`mapsctl classify`) decides for the same input:

  classes      every class of SPEC §3, IPv4 and IPv6 clients, host-based destinations:
               the plugin's decision header equals the native decision, and the link
               that answered belongs to the decided edge (the default path otherwise)
  metrics      /stats/prometheus: counters tagged by class, registration and edge;
               latency histograms for telemetry registrations only
  l4           the network filter picks the tcp_proxy cluster (PROXY protocol gives
               the client and the original destination), IPv4 and IPv6
  link         one link of a primary edge cut under a steady stream: no failed request
  edge         every link of a primary edge cut: traffic moves to the backup edge,
               then back when restored; sent/delivered/failed reported
  no backup    the same for a registration with backup_edge "None": the traffic
               takes the default (internet) path, then comes back
  reload       a changed policy through ECDS under a steady stream: takes effect, no
               restart, no failed request; an invalid one is rejected (the ECDS
               rejection counter rises) and the last good one keeps serving; a policy
               with no usable edge gives class no-edge

On failure the Envoy log is printed. Each stream is bounded in time and count.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envoy import prom_samples  # noqa: E402
from harness import ROOT, Edge, cluster_name, ecds_with_policy, write_atomic  # noqa: E402
from traffic import Stream, request  # noqa: E402

POLICY = ROOT / "fixtures/demo/policy.json"
NO_EDGE_POLICY = ROOT / "fixtures/no-edge/policy.json"
TRACE = ROOT / "fixtures/demo/trace.jsonl"

# Extra sources so that every class shows up whatever the fixture trace holds.
EXTRA = [
    {"src": "not-an-address", "host": "outlook.office365.com"},  # invalid-source
    {"src": "203.0.113.9", "host": "outlook.office365.com"},  # unregistered
    {"src": "2001:db8:ffff::1", "host": "teams.microsoft.com"},  # unregistered, IPv6
    {"src": "::ffff:20.33.1.40", "host": "outlook.office365.com"},  # IPv4-mapped IPv6
]

REPORT: list[str] = []


def say(line: str) -> None:
    print(line, flush=True)
    REPORT.append(line)


def family(src: str) -> str:
    if src.startswith("::ffff:"):
        return "ipv4-mapped"
    return "ipv6" if ":" in src else "ipv4"


class Suite:
    def __init__(self) -> None:
        self.edge = Edge(POLICY)
        self.requests: list[dict] = []  # (trace line, decision) pairs of the class table

    # -- helpers --------------------------------------------------------------------
    def http_trace(self) -> list[dict]:
        """Trace lines as the HTTP filter sees them: no destination address but the
        listener's own (what `destination.address` is), the host as :authority."""
        lines = []
        for raw in TRACE.read_text().splitlines():
            try:
                t = json.loads(raw)
            except ValueError:
                continue  # the fixture also holds malformed lines (for mapsctl's tests)
            # An empty source cannot travel in x-forwarded-for (Envoy then uses the peer).
            if isinstance(t, dict) and isinstance(t.get("src"), str) and t["src"].strip():
                lines.append(t)
        out = []
        for t in lines + EXTRA:
            out.append(
                {
                    "src": t["src"],
                    "dst": f"127.0.0.1:{self.edge.http_port}",
                    "host": t.get("host") or "no-host.example",
                }
            )
        return out

    def maps_clients(self, min_count: int = 2) -> tuple[str, str, list[dict]]:
        """An (edge, backup) pair used by several `maps` decisions, and those lines."""
        trace = self.http_trace()
        decisions = self.edge.classify(trace)
        by_pair: dict[tuple[str, str], list[dict]] = {}
        for t, d in zip(trace, decisions):
            if d.get("class") == "maps" and d.get("backup") and family(t["src"]) == "ipv4":
                by_pair.setdefault((d["edge"], d["backup"]), []).append(t)
        pair, lines = max(by_pair.items(), key=lambda kv: len(kv[1]))
        assert len(lines) >= min_count, f"the trace has too few maps clients: {by_pair}"
        return pair[0], pair[1], lines

    # -- tests ----------------------------------------------------------------------
    def test_classes(self) -> None:
        trace = self.http_trace()
        expected = self.edge.classify(trace)
        seen: Counter = Counter()
        problems = []
        for t, d in zip(trace, expected):
            r = request(self.edge.http_port, t["src"], t["host"], path="/classes")
            got = json.loads(r.maps.get("x-maps-decision", "null") or "null")
            answered = self.edge.edge_of(r.link)
            want = d["edge"] if d.get("class") == "maps" else "internet"
            ok = r.status == 200 and answered == want and got == d
            if d.get("class") == "maps":
                ok = ok and r.maps.get("x-maps-cluster") == cluster_name(d["edge"], d.get("backup"))
            else:
                ok = ok and "x-maps-cluster" not in r.maps
            ok = ok and r.maps.get("x-maps-class") == d.get("class")
            if not ok:
                problems.append(
                    f"  {t['src']} host={t['host']}: native {d}\n"
                    f"    envoy: status={r.status} link={r.link} ({answered}, want {want}) "
                    f"headers={r.maps} {r.error}"
                )
            seen[(d.get("class"), family(t["src"]))] += 1
            self.requests.append({"t": t, "d": d, "link": r.link})
        say(
            "classes: "
            + ", ".join(f"{c}/{f}={n}" for (c, f), n in sorted(seen.items()))
            + f" ({len(trace)} requests, {len(problems)} wrong)"
        )
        assert not problems, "requests not routed as decided:\n" + "\n".join(problems[:20])
        classes = {c for c, _ in seen}
        for c in ["maps", "non-microsoft", "unverified", "unregistered", "invalid-source"]:
            assert c in classes, f"no request of class {c} in the table"
        assert ("maps", "ipv6") in seen, "no IPv6 client routed to an edge"
        hosts = {t["t"]["host"] for t in self.requests if t["d"].get("class") == "maps"}
        assert hosts - {"no-host.example"}, "no host-based destination routed"

    def test_metrics(self) -> None:
        prom = self.edge.envoy.prometheus()  # type: ignore[union-attr]
        by_class = {l["maps_class"]: v for l, v in prom_samples(prom, "maps_requests")}
        sent = Counter(r["d"].get("class") for r in self.requests)
        for cls, n in sent.items():
            assert by_class.get(cls, 0) >= n, f"maps_requests{{maps_class={cls}}}: {by_class.get(cls)} < {n}"
        routed = {
            (l.get("maps_registration"), l.get("maps_edge")): v
            for l, v in prom_samples(prom, "maps_routed")
        }
        want_routed = Counter(
            (r["d"]["registration"], r["d"]["edge"]) for r in self.requests if r["d"].get("class") == "maps"
        )
        for key, n in want_routed.items():
            assert routed.get(key, 0) >= n, f"maps_routed{key}: {routed.get(key)} < {n}"
        # Latency histograms: for registrations whose matched prefix has telemetry.
        tele_prefixes = telemetry_prefixes(self.edge.policy)
        want_latency = {
            r["d"]["registration"]
            for r in self.requests
            if r["d"].get("class") == "maps" and (r["d"]["registration"], r["d"]["prefix"]) in tele_prefixes
        }
        assert want_latency, "no telemetry prefix in the traffic"
        envoy = self.edge.envoy
        assert envoy is not None

        def latency_now() -> dict[str, float]:
            text = envoy.prometheus()
            return {l["maps_registration"]: v for l, v in prom_samples(text, "maps_latency_ms_count")}

        # Histograms reach the admin output at the stats flush (every 5 s by default).
        envoy.wait_for(
            f"latency histograms of {sorted(want_latency)}",
            lambda: all(latency_now().get(r, 0) > 0 for r in want_latency),
            timeout=15, step=0.5,
        )
        prom = envoy.prometheus()
        latency = {l["maps_registration"]: v for l, v in prom_samples(prom, "maps_latency_ms_count")}
        # Registrations without any telemetry prefix never get a histogram.
        no_tele = {reg for reg, _ in want_routed} - {reg for reg, _ in tele_prefixes}
        assert not (set(latency) & no_tele), f"latency for non-telemetry registrations: {set(latency) & no_tele}"
        buckets = [l for l, _ in prom_samples(prom, "maps_latency_ms_bucket")]
        assert buckets and all("le" in b for b in buckets), "latency is not a Prometheus histogram"
        say(
            f"metrics: maps_requests by class {dict(sorted(by_class.items()))}; "
            f"{len(routed)} maps_routed series (registration x edge); "
            f"latency histograms for {sorted(latency)}"
        )

    def test_l4(self) -> None:
        cases = [
            {"src": "20.33.1.10", "dst": "13.107.6.152"},  # maps (dst prefix)
            {"src": "20.33.1.10", "dst": "192.0.2.80"},  # non-microsoft
            {"src": "2603:10a0:400::10", "dst": "2603:1006::1"},  # maps, IPv6
            {"src": "203.0.113.9", "dst": "13.107.6.152"},  # unregistered
        ]
        expected = self.edge.classify(cases)
        lines = []
        for c, d in zip(cases, expected):
            link = self.edge.l4_request(c["src"], c["dst"])
            want = d["edge"] if d.get("class") == "maps" else "internet"
            got = self.edge.edge_of(link)
            lines.append(f"{c['src']}->{c['dst']} {d.get('class')}: {link or '-'}")
            assert got == want, f"L4 {c}: answered by {link!r} ({got}), decided {d}"
        assert any(d.get("class") == "maps" for d in expected)
        prom = self.edge.envoy.prometheus()  # type: ignore[union-attr]
        conns = sum(v for _, v in prom_samples(prom, "maps_routed_connections"))
        assert conns >= 2, f"maps_routed_connections = {conns}"
        say("l4: " + "; ".join(lines))

    def test_link_failover(self) -> None:
        e, b, lines = self.maps_clients()
        links = self.edge.links_of(e)
        assert len(links) >= 2, f"edge {e} has fewer than two links"
        s = Stream(self.edge.http_port, [(t["src"], t["host"]) for t in lines],
                   workers=4, interval=0.005, max_seconds=30).start()
        time.sleep(1.0)
        # Cut the link that carries these clients (Maglev keeps each client on one).
        busiest = s.delivered_since(0.0).most_common(1)
        assert busiest, "no traffic before the cut"
        cut = self.edge.links[busiest[0][0]]
        assert cut in links, f"traffic on {cut.link_id}, not on edge {e}"
        cut.stop()
        t_cut = s.elapsed()
        time.sleep(2.5)
        cut.start()
        time.sleep(1.0)
        st = s.stop()
        self.edge.wait_all_healthy()
        during = Counter(self.edge.edge_of(l) for ts, l in st.timeline if ts >= t_cut)
        say(st.line(f"link failover ({cut.link_id} of {e} cut for 2.5 s)")
            + f"; after the cut by edge: {dict(during)}")
        assert st.sent > 100, f"stream too small: {st.sent}"
        assert st.failed == 0, f"failed requests: {dict(st.errors)}"
        assert during.get(e, 0) > 0 and set(during) <= {e, b}
        assert during.get(b, 0) <= max(2, st.sent // 500), (
            f"a single link cut moved {during.get(b)} requests to the backup site"
        )

    def test_edge_failover(self) -> None:
        e, b, lines = self.maps_clients()
        s = Stream(self.edge.http_port, [(t["src"], t["host"]) for t in lines],
                   workers=4, interval=0.005, max_seconds=40).start()
        time.sleep(1.0)
        for link in self.edge.links_of(e):
            link.stop()
        t_cut = s.elapsed()
        # Bounded: traffic must reach the backup edge within 10 s.
        self.edge.envoy.wait_for(  # type: ignore[union-attr]
            f"traffic on backup {b}",
            lambda: sum(1 for ts, l in list(s.stats.timeline) if ts >= t_cut and self.edge.edge_of(l) == b) > 50,
            timeout=10,
        )
        moved = s.elapsed() - t_cut
        time.sleep(1.5)
        for link in self.edge.links_of(e):
            link.start()
        t_back = s.elapsed()
        self.edge.envoy.wait_for(  # type: ignore[union-attr]
            f"traffic back on {e}",
            lambda: sum(1 for ts, l in list(s.stats.timeline) if ts >= t_back and self.edge.edge_of(l) == e) > 50,
            timeout=15,
        )
        back = s.elapsed() - t_back
        time.sleep(0.5)
        st = s.stop()
        outage = Counter(self.edge.edge_of(l) for ts, l in st.timeline if t_cut + moved <= ts < t_back)
        say(st.line(f"edge failover ({e} -> {b} and back)")
            + f"; backup carried traffic {moved:.2f} s after the cut, primary again {back:.2f} s after restore;"
            + f" during the outage: {dict(outage)}")
        assert outage and set(outage) == {b}, f"during the outage traffic went to {dict(outage)}"
        assert st.sent > 200
        assert st.delivered / st.sent >= 0.999, f"delivered {st.delivered}/{st.sent}: {dict(st.errors)}"

    def test_no_backup_failover(self) -> None:
        """backup_edge "None": when the edge fails, traffic takes the default path."""
        trace = self.http_trace()
        decisions = self.edge.classify(trace)
        lines = [
            t for t, d in zip(trace, decisions)
            if d.get("class") == "maps" and not d.get("backup") and family(t["src"]) == "ipv4"
        ]
        if not lines:  # none in the fixture trace: one address of such a registration
            for r in self.edge.policy["registrations"]:
                if r.get("backup_edge") == "None":
                    for p in r["prefixes"]:
                        if p["state"] == "Verified" and ":" not in p["prefix"]:
                            net = ipaddress.ip_network(p["prefix"])
                            lines.append({"src": str(net[10]), "host": "outlook.office365.com"})
                            break
            lines = [t for t, d in zip(lines, self.edge.classify(lines)) if d.get("class") == "maps"]
        assert lines, "no maps client without a backup edge"
        [d] = self.edge.classify(lines[:1])
        e = d["edge"]
        s = Stream(self.edge.http_port, [(t["src"], t["host"]) for t in lines],
                   workers=4, interval=0.005, max_seconds=30).start()
        time.sleep(1.0)
        for link in self.edge.links_of(e):
            link.stop()
        t_cut = s.elapsed()
        self.edge.envoy.wait_for(  # type: ignore[union-attr]
            "traffic on the default path",
            lambda: sum(1 for ts, l in list(s.stats.timeline) if ts >= t_cut and l == "internet") > 50,
            timeout=10,
        )
        for link in self.edge.links_of(e):
            link.start()
        t_back = s.elapsed()
        self.edge.envoy.wait_for(  # type: ignore[union-attr]
            f"traffic back on {e}",
            lambda: sum(1 for ts, l in list(s.stats.timeline) if ts >= t_back and self.edge.edge_of(l) == e) > 50,
            timeout=15,
        )
        st = s.stop()
        after = Counter(self.edge.edge_of(l) for ts, l in st.timeline if ts >= t_cut)
        say(st.line(f"no-backup failover ({d['registration']}: {e} -> default path and back)")
            + f"; after the cut: {dict(after)}")
        assert set(after) <= {e, "internet"} and after.get("internet", 0) > 0, dict(after)
        assert st.delivered / st.sent >= 0.999, f"delivered {st.delivered}/{st.sent}: {dict(st.errors)}"
        self.edge.wait_all_healthy()

    def test_reload(self) -> None:
        envoy = self.edge.envoy
        assert envoy is not None
        pid = envoy.pid
        e, b, lines = self.maps_clients()
        probe = lines[0]
        [d0] = self.edge.classify([probe])
        reg = d0["registration"]
        # Policy B: the probe's registered prefix is no longer Verified (goes to the
        # default path), everything else unchanged.
        policy_b = copy.deepcopy(self.edge.policy)
        changed = None
        for r in policy_b["registrations"]:
            if r["id"] == reg:
                for p in r["prefixes"]:
                    if p["prefix"] == d0["prefix"]:
                        p["state"] = "Pending"
                        changed = p["prefix"]
        assert changed, f"prefix {d0['prefix']} not found"
        path_b = self.edge.workdir / "policy-b.json"
        path_b.write_text(json.dumps(policy_b, indent=1))
        [d1] = self.edge.classify([probe], policy=path_b)
        assert d1["class"] == "unverified", d1
        others = [t for t in self.http_trace() if t not in lines]
        clients = [(t["src"], t["host"]) for t in lines + others[:10]]

        stat = "extension_config_discovery.http_filter.maps."
        rejected0 = envoy.counter(stat + "update_rejected")
        s = Stream(self.edge.http_port, clients, workers=4, interval=0.005, max_seconds=40).start()
        time.sleep(1.0)
        out = self.edge.mapsctl_envoy_config(path_b, ecds_only=True)
        t_reload = s.elapsed()
        version_b = out.split("policy version ", 1)[1].split()[0]
        envoy.wait_for("ECDS version B", lambda: envoy.stats(stat + "version_text").get(stat + "version_text") == f'"{version_b}"')
        envoy.wait_for(
            "probe on the default path",
            lambda: request(self.edge.http_port, probe["src"], probe["host"]).link == "internet",
        )
        applied = s.elapsed() - t_reload
        time.sleep(1.0)

        # An invalid policy: refused by mapsctl, and by Envoy when written anyway.
        bad = copy.deepcopy(policy_b)
        bad["registrations"][0]["prefixes"][0]["state"] = "Verifed"
        path_bad = self.edge.workdir / "policy-bad.json"
        path_bad.write_text(json.dumps(bad, indent=1))
        ecds = self.edge.outdir / "xds" / "maps-http.json"
        before = ecds.read_text()
        try:
            self.edge.mapsctl_envoy_config(path_bad, ecds_only=True)
            raise AssertionError("mapsctl accepted an invalid policy")
        except RuntimeError as err:
            assert "(1)" in str(err), err
        assert ecds.read_text() == before, "mapsctl wrote an ECDS file for an invalid policy"
        write_atomic(ecds, json.dumps(ecds_with_policy(ecds, json.dumps(bad), "bad-1")))
        envoy.wait_for("ECDS rejection", lambda: envoy.counter(stat + "update_rejected") > rejected0)
        time.sleep(1.0)
        st = s.stop()
        version_now = envoy.stats(stat + "version_text").get(stat + "version_text")
        r = request(self.edge.http_port, probe["src"], probe["host"])
        log = envoy.log_text()
        say(st.line(f"reload (policy B {version_b}, then an invalid one)")
            + f"; B served {applied:.2f} s after the write; update_rejected "
            + f"{rejected0} -> {envoy.counter(stat + 'update_rejected')}; version still {version_now}")
        assert st.failed == 0, f"failed requests during reload: {dict(st.errors)}"
        assert st.sent > 200
        assert envoy.pid == pid and envoy.running(), "Envoy restarted"
        assert version_now == f'"{version_b}"', version_now
        assert r.link == "internet" and r.maps.get("x-maps-class") == "unverified", (r.link, r.maps)
        assert "maps: policy rejected" in log and "[unknown-state]" in log, "no rejection log line"
        # L4 follows the reload too.
        l4 = self.edge.l4_request(probe["src"], "13.107.6.152")
        assert l4 == "internet", f"L4 after reload answered by {l4}"

        # A policy with no usable edge: class no-edge, default path.
        self.edge.mapsctl_envoy_config(NO_EDGE_POLICY, ecds_only=True)
        [dn] = self.edge.classify([{"src": "20.33.1.10", "host": "outlook.office365.com"}], policy=NO_EDGE_POLICY)
        assert dn["class"] == "no-edge", dn

        def no_edge():
            r = request(self.edge.http_port, "20.33.1.10", "outlook.office365.com")
            return r if r.maps.get("x-maps-class") == "no-edge" else None

        rn = envoy.wait_for("class no-edge after reload", no_edge)
        assert rn.link == "internet", rn
        say("reload: class no-edge (fixtures/no-edge) routed to the default path")
        # Back to the demo policy for whatever runs next.
        self.edge.mapsctl_envoy_config(self.edge.policy_path, ecds_only=True)


def telemetry_prefixes(policy: dict) -> set[tuple[str, str]]:
    """(registration, prefix) pairs whose prefix opted into telemetry."""
    return {
        (r["id"], p["prefix"])
        for r in policy.get("registrations", [])
        for p in r.get("prefixes", [])
        if p.get("telemetry")
    }


def main() -> int:
    suite = Suite()
    tests = [
        ("classes", suite.test_classes),
        ("metrics", suite.test_metrics),
        ("l4", suite.test_l4),
        ("link_failover", suite.test_link_failover),
        ("edge_failover", suite.test_edge_failover),
        ("no_backup_failover", suite.test_no_backup_failover),
        ("reload", suite.test_reload),
    ]
    passed = failed = 0
    t0 = time.monotonic()
    try:
        suite.edge.start()
        say(f"envoy pid {suite.edge.envoy.pid} up; config in {suite.edge.outdir}")  # type: ignore[union-attr]
        for name, fn in tests:
            t = time.monotonic()
            try:
                fn()
                passed += 1
                print(f"PASS e2e::{name} ({time.monotonic() - t:.1f}s)", flush=True)
            except Exception:  # noqa: BLE001 - report every failure, run the rest
                failed += 1
                print(f"FAIL e2e::{name} ({time.monotonic() - t:.1f}s)", flush=True)
                traceback.print_exc()
    except Exception:  # noqa: BLE001
        failed += 1
        print("FAIL e2e::setup", flush=True)
        traceback.print_exc()
    finally:
        if failed and suite.edge.envoy is not None:
            print("---- Envoy log (last 200 lines) ----")
            print(suite.edge.envoy.log_tail(200))
            print("---- end of Envoy log ----")
            print(f"configuration and full log kept in {suite.edge.workdir}")
        suite.edge.stop(keep_files=bool(failed))
    print(f"e2e finished in {time.monotonic() - t0:.1f}s")
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
