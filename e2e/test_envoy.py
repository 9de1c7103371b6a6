"""End-to-end in a real Envoy (`make e2e`).

The plugin runs in Envoy 1.40, configured by `mapsctl envoy-config`; one link server
per PNI link answers with its link id. Every name the checks use (the plugin's header
names, edge and route clusters) is read from the plan.json `mapsctl envoy-config`
writes, never derived here.

  scenario:*   the shared scenario table of fixtures/ (every directory with a
               trace.jsonl, the demo policy's first), each on its own Envoy whose HTTP
               listener takes the PROXY protocol (so a line's destination address
               reaches the plugin as `destination.address`): every trace line is one
               request, and the decision the plugin published must equal the golden
               decision of that line, field by field; the class and cluster headers
               match it and the plan's route, and the link that answered belongs to the
               decided edge (the default path otherwise). Then /stats/prometheus: the
               counters by class and by (registration, edge) equal what was sent, and
               latency samples are exactly the requests whose matched prefix has
               telemetry
  telemetry    a policy of the test's own (another header prefix): one registration
               with a telemetry prefix and one without; latency samples are recorded
               for the first prefix's requests only
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

The l4, failover and reload checks run on the demo policy with a plain HTTP listener
(the client in x-forwarded-for), their expectations from `mapsctl classify`.
On failure the Envoy log is printed. Each stream is bounded in time and count.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import subprocess
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from envoy import prom_samples  # noqa: E402
from harness import ROOT, Edge, Unsendable, ecds_with_policy, split_address, write_atomic  # noqa: E402
from traffic import Stream, request  # noqa: E402

POLICY = ROOT / "fixtures/demo/policy.json"
NO_EDGE_POLICY = ROOT / "fixtures/no-edge/policy.json"
TRACE = ROOT / "fixtures/demo/trace.jsonl"
FIXTURES = ROOT / "fixtures"


def scenarios() -> list[Path]:
    """Every scenario directory of fixtures/ (policy, trace, golden decisions), demo first."""
    dirs = sorted(d for d in FIXTURES.iterdir() if (d / "trace.jsonl").is_file())
    return sorted(dirs, key=lambda d: d.name != "demo")


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
        # The l4/failover/reload checks read the class header the link servers echo.
        self.edge = Edge(POLICY, expose_decision_headers=True)

    # -- helpers --------------------------------------------------------------------
    def http_trace(self) -> list[dict]:
        """Trace lines as the plain HTTP listener gets them (for the streams of the
        failover and reload checks): the client in x-forwarded-for, no destination
        address but the listener's own, the host as :authority (without one, the
        listener's address, as the client sends it)."""
        listener = f"127.0.0.1:{self.edge.http_port}"
        out = []
        for raw in TRACE.read_text().splitlines():
            try:
                t = json.loads(raw)
            except ValueError:
                continue  # not a flow (the golden entry is the trace reader's error)
            # An empty source cannot be the last x-forwarded-for entry (see Edge.send_line).
            if isinstance(t, dict) and isinstance(t.get("src"), str) and t["src"].strip():
                out.append({"src": t["src"], "dst": listener, "host": t.get("host") or listener})
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
    def test_scenario(self, directory: Path) -> None:
        """Every line of `directory`'s trace through Envoy, against its golden decision."""
        trace = [l for l in (directory / "trace.jsonl").read_text().splitlines() if l.strip()]
        golden = [
            json.loads(l)
            for l in (directory / "decisions.golden.jsonl").read_text().splitlines()
            if l.strip()
        ]
        assert len(trace) == len(golden), f"{len(trace)} trace lines, {len(golden)} golden"
        edge = Edge(directory / "policy.json", proxy_protocol=True, expose_decision_headers=True)
        failed = True
        try:
            edge.start()
            names = edge.headers
            problems: list[str] = []
            not_flows: list[int] = []
            sent: list[dict] = []  # golden decisions of the lines sent
            maps_flows: list[tuple[dict, dict]] = []  # (trace line, golden) of class maps
            seen: Counter = Counter()
            for n, (raw, want) in enumerate(zip(trace, golden), start=1):
                try:
                    t = json.loads(raw)
                except ValueError:
                    t = None
                if "error" in want:
                    # The golden entry is the trace reader's error: the line is no flow
                    # (not JSON, or no text `src`), so no request can carry it. Check
                    # that this is so rather than trusting it.
                    assert want.get("line") == n, f"line {n}: golden {want}"
                    if isinstance(t, dict):
                        try:
                            edge.send_line(t)
                            problems.append(f"  line {n}: {raw}\n    golden is an error but the line was sent")
                        except Unsendable:
                            pass
                    not_flows.append(n)
                    continue
                try:
                    r, src_seen = edge.send_line(t, path=f"/scenario/{directory.name}/{n}")
                except Unsendable as err:
                    problems.append(f"  line {n}: {raw}\n    cannot be sent through Envoy: {err}")
                    continue
                sent.append(want)
                if want["class"] == "maps":
                    maps_flows.append((t, want))
                # The plugin's decision is for the client address it was given: the
                # trace's text, except that `source.address` carries a port.
                expect = dict(want, src=src_seen)
                got = json.loads(r.headers.get(names["decision"]) or "null")
                why = []
                if r.status != 200:
                    why.append(f"status {r.status} {r.error}")
                if not isinstance(got, dict):
                    why.append(f"no decision header {names['decision']}")
                elif got != expect:
                    diff = {
                        k: (got.get(k, "<absent>"), expect.get(k, "<absent>"))
                        for k in sorted(set(got) | set(expect))
                        if got.get(k, "<absent>") != expect.get(k, "<absent>")
                    }
                    why.append(f"decision differs (envoy, golden): {diff}")
                if r.headers.get(names["class"]) != want["class"]:
                    why.append(f"{names['class']}: {r.headers.get(names['class'])!r}")
                answered = edge.edge_of(r.link)
                if want["class"] == "maps":
                    route = edge.route(want["registration"]) or {}
                    if (route.get("edge"), route.get("backup")) != (want["edge"], want.get("backup")):
                        why.append(f"plan route {route} is not the decision's edge/backup")
                    if r.headers.get(names["cluster"]) != route.get("cluster"):
                        why.append(f"{names['cluster']}: {r.headers.get(names['cluster'])!r}, plan {route.get('cluster')!r}")
                    if answered != want["edge"]:
                        why.append(f"answered by {r.link!r} ({answered}), decided edge {want['edge']}")
                else:
                    if names["cluster"] in r.headers:
                        why.append(f"{names['cluster']} set for class {want['class']}")
                    if r.link != "internet":
                        why.append(f"answered by {r.link!r}, not the default path")
                if why:
                    problems.append(f"  line {n}: {raw}\n    " + "; ".join(why))
                addr = split_address(t["src"])
                seen[(want["class"], family(addr[0]) if addr else "text")] += 1
            say(
                f"scenario {directory.name}: {len(trace)} lines, {len(sent)} sent through Envoy "
                f"({', '.join(f'{c}/{f}={k}' for (c, f), k in sorted(seen.items()))}), "
                f"{len(not_flows)} not flows (lines {not_flows}: golden trace-reader errors), "
                f"{len(problems)} wrong"
            )
            assert not problems, "trace lines not reproduced in Envoy:\n" + "\n".join(problems[:25])
            self.check_metrics(edge, directory.name, sent, maps_flows)
            failed = False
        finally:
            if failed and edge.envoy is not None:
                print(f"---- Envoy log of scenario {directory.name} (last 80 lines) ----")
                print(edge.envoy.log_tail(80))
                print(f"configuration and full log kept in {edge.workdir}")
            edge.stop(keep_files=failed)

    def check_metrics(
        self, edge: Edge, name: str, sent: list[dict], maps_flows: list[tuple[dict, dict]]
    ) -> None:
        """The scenario's Envoy saw only the scenario's requests: its counters equal them
        exactly; latency samples are exactly the maps requests whose matched prefix has
        telemetry (`mapsctl explain` says which)."""
        envoy = edge.envoy
        assert envoy is not None
        prom = envoy.prometheus()
        by_class = {l["maps_class"]: v for l, v in prom_samples(prom, "maps_requests")}
        want_class = Counter(d["class"] for d in sent)
        assert by_class == want_class, f"maps_requests by class {by_class}, sent {dict(want_class)}"
        routed = {
            (l.get("maps_registration"), l.get("maps_edge")): v
            for l, v in prom_samples(prom, "maps_routed")
        }
        want_routed = Counter((d["registration"], d["edge"]) for _, d in maps_flows)
        assert routed == want_routed, f"maps_routed {routed}, sent {dict(want_routed)}"
        tele = telemetry_of(edge, maps_flows)
        want_latency = Counter(d["registration"] for (_, d), on in zip(maps_flows, tele) if on)

        def latency_now() -> dict[str, float]:
            text = envoy.prometheus()
            return {l["maps_registration"]: v for l, v in prom_samples(text, "maps_latency_ms_count") if v}

        if want_latency:
            # Histograms reach the admin output at the stats flush (every 5 s).
            envoy.wait_for(
                f"latency samples {dict(want_latency)}",
                lambda: all(latency_now().get(r, 0) >= k for r, k in want_latency.items()),
                timeout=15, step=0.5,
            )
        else:
            time.sleep(5.5)  # one stats flush
        latency = latency_now()
        assert latency == want_latency, f"latency samples {latency}, want {dict(want_latency)}"
        buckets = [l for l, _ in prom_samples(envoy.prometheus(), "maps_latency_ms_bucket")]
        assert not want_latency or (buckets and all("le" in b for b in buckets)), "latency is not a Prometheus histogram"
        say(
            f"metrics {name}: maps_requests {dict(sorted(by_class.items()))}; "
            f"{len(routed)} maps_routed series equal to the sent requests; "
            f"latency samples {dict(sorted(latency.items()))} (telemetry prefixes only)"
        )

    def test_telemetry_per_prefix(self) -> None:
        """One registration, two prefixes, telemetry on one: latency samples for that
        prefix's requests only (SPEC §1: telemetry follows the matched prefix)."""
        work = Path(tempfile.mkdtemp(prefix="maps-e2e-telemetry-"))
        policy = {
            "version": 1,
            "edges": [
                {"id": "sea", "lat": 47.61, "lon": -122.33,
                 "links": [{"id": "sea-1", "router": "sea-r1"}, {"id": "sea-2", "router": "sea-r2"}]},
                {"id": "chi", "lat": 41.88, "lon": -87.63,
                 "links": [{"id": "chi-1", "router": "chi-r1"}, {"id": "chi-2", "router": "chi-r2"}]},
            ],
            "registrations": [
                {"id": "northwind-wa", "customer": "Northwind", "location": "Washington",
                 "prefixes": [
                     {"prefix": "20.40.0.0/24", "state": "Verified", "telemetry": True},
                     {"prefix": "20.40.8.0/24", "state": "Verified"},
                 ]},
                {"id": "tailwind-il", "customer": "Tailwind", "location": "Illinois",
                 "prefixes": [{"prefix": "20.41.0.0/24", "state": "Verified"}]},
            ],
            # Another header prefix than the demo's: every name comes from plan.json.
            "options": {"client_address": {"from": "xff", "trusted_hops": 1},
                        "header_prefix": "x-edge-"},
        }
        path = work / "policy.json"
        path.write_text(json.dumps(policy, indent=1))
        lines = (
            [{"src": f"20.40.0.{i}", "host": "any.example"} for i in range(10, 17)]  # 7, telemetry
            + [{"src": f"20.40.8.{i}", "host": "any.example"} for i in range(10, 21)]  # 11, none
            + [{"src": f"20.41.0.{i}", "host": "any.example"} for i in range(10, 15)]  # 5, none
        )
        edge = Edge(path, workdir=work / "edge", proxy_protocol=True, expose_decision_headers=True)
        failed = True
        try:
            edge.start()
            names = edge.headers
            assert names["prefix"] == "x-edge-", names
            expected = edge.classify(lines)
            assert all(d["class"] == "maps" for d in expected), expected
            tele = telemetry_of(edge, list(zip(lines, expected)))
            want: Counter = Counter()
            for t, d, on in zip(lines, expected, tele):
                assert d["class"] == "maps", d
                r, _ = edge.send_line(t, path="/telemetry")
                got = json.loads(r.headers.get(names["decision"]) or "null")
                assert got == d, (t, got, d)
                assert r.headers.get(names["cluster"]) == edge.route(d["registration"])["cluster"], r.headers
                assert edge.edge_of(r.link) == d["edge"], (r.link, d)
                if on:
                    want[d["registration"]] += 1
            assert want == {"northwind-wa": 7}, f"mapsctl explain: telemetry for {dict(want)}"
            envoy = edge.envoy
            assert envoy is not None

            def latency_now() -> dict[str, float]:
                text = envoy.prometheus()
                return {l["maps_registration"]: v for l, v in prom_samples(text, "maps_latency_ms_count") if v}

            envoy.wait_for("latency samples", lambda: latency_now().get("northwind-wa", 0) >= 7,
                           timeout=15, step=0.5)
            time.sleep(5.5)  # one more stats flush: nothing else arrives
            latency = latency_now()
            routed = {l.get("maps_registration"): v for l, v in prom_samples(envoy.prometheus(), "maps_routed")}
            say(
                f"telemetry: northwind-wa 7 requests from its telemetry prefix and 11 from the "
                f"other, tailwind-il 5 (no telemetry): maps_routed {routed}, latency samples {latency}"
            )
            assert routed == {"northwind-wa": 18, "tailwind-il": 5}, routed
            assert latency == {"northwind-wa": 7}, f"latency samples {latency}, want northwind-wa=7 only"
            failed = False
        finally:
            if failed and edge.envoy is not None:
                print("---- Envoy log of the telemetry check (last 80 lines) ----")
                print(edge.envoy.log_tail(80))
                print(f"policy, configuration and full log kept in {work}")
            edge.stop(keep_files=failed)
            if not failed:
                shutil.rmtree(work, ignore_errors=True)

    def test_private_by_default(self) -> None:
        """Issue 13, finding 3: with the configuration `mapsctl envoy-config` writes by
        default, no header of the plugin reaches any upstream (a MAPS link, the default
        path, a look-alike internet host), yet the access log has each decision."""
        edge = Edge(POLICY, workdir=Path(tempfile.mkdtemp(prefix="maps-e2e-private-")))
        failed = True
        try:
            edge.start()
            prefix = edge.headers["prefix"]
            cases = [
                {"src": "20.33.1.10", "host": "outlook.office365.com"},  # maps
                {"src": "20.33.1.11", "host": "contoso.sharepoint.com"},  # maps
                {"src": "20.33.1.10", "host": "outlook.office365.com.evil.com"},  # internet
                {"src": "203.0.113.9", "host": "outlook.office365.com"},  # unregistered
            ]
            want = edge.classify(cases)
            assert any(d["class"] == "maps" for d in want), want
            assert any(d["class"] != "maps" for d in want), want
            seen = []
            for n, (c, d) in enumerate(zip(cases, want)):
                r = request(edge.http_port, c["src"], c["host"], path=f"/private/{n}")
                assert r.status == 200, (c, r)
                leaked = sorted(k for k in r.headers if k.startswith(prefix) or k.startswith("x-maps-"))
                assert not leaked, f"{c}: upstream {r.link} saw {leaked}"
                expect = d["edge"] if d["class"] == "maps" else "internet"
                assert edge.edge_of(r.link) == expect, (c, r.link, d)
                seen.append(f"{c['host']} {d['class']} -> {r.link}")
            # The access log (written at stream end; bounded wait).
            def logged() -> list[dict] | None:
                lines = [l for l in edge.access_log() if str(l.get("path", "")).startswith("/private/")]
                return lines if len(lines) >= len(cases) else None

            lines = edge.envoy.wait_for("access log lines", logged, timeout=10)  # type: ignore[union-attr]
            by_path = {l["path"]: l for l in lines}
            for n, (c, d) in enumerate(zip(cases, want)):
                line = by_path[f"/private/{n}"]
                got = json.loads(line["maps_decision"])
                assert got == d, f"access log decision {got}, mapsctl classify {d}"
                assert line["maps_class"] == d["class"], line
                if d["class"] == "maps":
                    assert line["maps_cluster"] == edge.route(d["registration"])["cluster"], line
            say("private: no decision header upstream (" + "; ".join(seen)
                + f"); access log: {by_path['/private/0']}")
            failed = False
        finally:
            if failed and edge.envoy is not None:
                print(edge.envoy.log_tail(60))
            edge.stop(keep_files=failed)

    def test_original_dst_default_path(self) -> None:
        """Issue 13, finding 5: without `--internet` the default path is ORIGINAL_DST,
        which needs the connection's original destination (before: no listener filter
        gave it, every non-MAPS request got 503). Here the PROXY protocol carries it
        (a redirect by the kernel, read by the `original_dst` listener filter the
        generator now adds without --proxy-protocol, needs iptables: not on this
        machine; `envoy --mode validate` checks that configuration in
        test_examples.py)."""
        edge = Edge(POLICY, workdir=Path(tempfile.mkdtemp(prefix="maps-e2e-odst-")),
                    proxy_protocol=True, original_dst_default=True)
        failed = True
        try:
            edge.start()
            kinds = {c["name"]: c for c in edge.plan["clusters"]}
            assert kinds["internet"]["members"] == [], kinds["internet"]  # ORIGINAL_DST
            dst = edge.internet.address
            lines = [
                {"src": "203.0.113.9", "dst": dst, "host": "example.org"},  # unregistered
                {"src": "20.33.1.10", "dst": dst, "host": "example.org"},  # non-microsoft
                {"src": "20.33.1.10", "dst": dst, "host": "outlook.office365.com"},  # maps
            ]
            want = edge.classify(lines)
            got = []
            for t, d in zip(lines, want):
                r, _ = edge.send_line(t, path="/odst")
                expect = d["edge"] if d["class"] == "maps" else "internet"
                assert r.status == 200 and edge.edge_of(r.link) == expect, (t, d["class"], r)
                got.append(f"{d['class']} -> {r.link}")
            assert {d["class"] for d in want} >= {"maps", "unregistered"}, want
            say("original_dst default path (no --internet, PROXY destination " + dst + "): " + "; ".join(got))
            failed = False
        finally:
            if failed and edge.envoy is not None:
                print(edge.envoy.log_tail(60))
            edge.stop(keep_files=failed)

    def test_hash_ignores_client_written_xff(self) -> None:
        """Issue 13, finding 7: the link hash is the client address Envoy trusts, so a
        client cannot spread itself over links by varying the entries it writes itself
        in x-forwarded-for (before: the hash took the whole header)."""
        client = "20.33.1.10"
        [d] = self.edge.classify([{"src": client, "host": "outlook.office365.com"}])
        assert d["class"] == "maps", d
        links = Counter()
        for i in range(24):
            r = request(self.edge.http_port, f"198.51.100.{i}, {client}", "outlook.office365.com")
            assert r.status == 200, r
            links[r.link] += 1
        assert len(links) == 1 and self.edge.edge_of(next(iter(links))) == d["edge"], dict(links)
        # Different trusted clients still spread over the edge's links.
        spread = Counter(
            request(self.edge.http_port, f"20.33.1.{i}", "outlook.office365.com").link for i in range(10, 40)
        )
        assert len(spread) >= 2, dict(spread)
        say(f"hash: 24 requests of {client} behind 24 different left x-forwarded-for entries: {dict(links)}; "
            f"30 clients: {dict(spread)}")

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

        filter_name, ecds = self.edge.http_filter()
        stat = f"extension_config_discovery.http_filter.{filter_name}."
        rejected0 = envoy.counter(stat + "update_rejected")
        s = Stream(self.edge.http_port, clients, workers=4, interval=0.005, max_seconds=40).start()
        time.sleep(1.0)
        self.edge.mapsctl_envoy_config(path_b, ecds_only=True)
        t_reload = s.elapsed()
        version_b = self.edge.policy_version
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
        assert r.link == "internet" and r.headers.get(self.edge.headers["class"]) == "unverified", (r.link, r.headers)
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
            return r if r.headers.get(self.edge.headers["class"]) == "no-edge" else None

        rn = envoy.wait_for("class no-edge after reload", no_edge)
        assert rn.link == "internet", rn
        say("reload: class no-edge (fixtures/no-edge) routed to the default path")
        # Back to the demo policy for whatever runs next.
        self.edge.mapsctl_envoy_config(self.edge.policy_path, ecds_only=True)


    def test_compiled_policy(self) -> None:
        """A compiled policy (`mapsctl compile`) delivered as a BytesValue through ECDS
        is adopted and decides as its JSON does; a damaged one is refused by the plugin
        (checksum), Envoy rejects the update and keeps serving the last good policy."""
        envoy = self.edge.envoy
        assert envoy is not None
        e, b, lines = self.maps_clients()
        probe = lines[0]
        [d0] = self.edge.classify([probe])
        # Policy C: the probe's prefix Pending (default path), compiled.
        policy_c = copy.deepcopy(self.edge.policy)
        for r in policy_c["registrations"]:
            for p in r["prefixes"]:
                if p["prefix"] == d0["prefix"]:
                    p["state"] = "Pending"
        path_c = self.edge.workdir / "policy-c.json"
        path_c.write_text(json.dumps(policy_c, indent=1))
        compiled = self.edge.workdir / "policy-c.mapc"
        r = subprocess.run([self.edge.tools["mapsctl"], "compile", "--policy", str(path_c),
                            "--out", str(compiled)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        filter_name, ecds = self.edge.http_filter()
        stat = f"extension_config_discovery.http_filter.{filter_name}."
        rejected0 = envoy.counter(stat + "update_rejected")
        self.edge.mapsctl_envoy_config(compiled, ecds_only=True, source=path_c)
        doc = json.loads(ecds.read_text())
        conf = doc["resources"][0]["typed_config"]["config"]["configuration"]
        assert conf["@type"] == "type.googleapis.com/google.protobuf.BytesValue", conf["@type"]
        assert base64.b64decode(conf["value"]) == compiled.read_bytes()
        # Same version as the JSON it was compiled from.
        version_c = self.edge.policy_version
        envoy.wait_for("ECDS version C", lambda: envoy.stats(stat + "version_text").get(stat + "version_text") == f'"{version_c}"')
        envoy.wait_for(
            "probe on the default path (compiled policy C)",
            lambda: request(self.edge.http_port, probe["src"], probe["host"]).link == "internet",
        )
        # Every HTTP trace line: Envoy's class header is what mapsctl decides from the
        # compiled file, and from the JSON.
        trace = self.http_trace()
        from_file = self.edge.classify(trace, policy=compiled)
        from_json = self.edge.classify(trace, policy=path_c)
        assert [d.get("class") for d in from_file] == [d.get("class") for d in from_json]
        wrong = []
        for t, d in zip(trace, from_file):
            got = request(self.edge.http_port, t["src"], t["host"]).headers.get(self.edge.headers["class"])
            if got != d["class"]:
                wrong.append((t, d["class"], got))
        assert not wrong, f"{len(wrong)} of {len(trace)} decisions differ: {wrong[:3]}"
        log = envoy.log_text()
        assert f"maps: policy loaded (version {version_c}" in log, "no load line for the compiled policy"

        # Damaged: one byte flipped after it was written. Refused, last good kept.
        bad = bytearray(compiled.read_bytes())
        bad[-1] ^= 0x01
        doc["version_info"] = "damaged-1"
        conf["value"] = base64.b64encode(bytes(bad)).decode()
        write_atomic(ecds, json.dumps(doc))
        envoy.wait_for("ECDS rejection of the damaged file",
                       lambda: envoy.counter(stat + "update_rejected") > rejected0)
        log = envoy.log_text()
        assert "[compiled-policy]" in log and "checksum mismatch" in log, "no refusal line naming the checksum"
        version_now = envoy.stats(stat + "version_text").get(stat + "version_text")
        assert version_now == f'"{version_c}"', version_now
        r = request(self.edge.http_port, probe["src"], probe["host"])
        assert r.link == "internet", f"after the damaged file the probe went to {r.link}"
        say(f"compiled: {len(trace)} decisions in Envoy equal mapsctl's from the file "
            f"({compiled.stat().st_size} bytes); a damaged file refused (checksum), "
            f"version still {version_now}")
        # Back to the demo policy for whatever runs next.
        self.edge.mapsctl_envoy_config(self.edge.policy_path, ecds_only=True)


def telemetry_of(edge: Edge, flows: list[tuple[dict, dict]]) -> list[bool]:
    """For each (trace line, maps decision): whether the matched prefix reports
    telemetry, as `mapsctl explain --format json` says; the explanation's class,
    registration and cluster must agree with the decision and the plan's route."""
    out = []
    for t, d in flows:
        text = lambda k: t[k] if isinstance(t.get(k), str) else None  # noqa: E731
        e = edge.explain(t["src"], text("dst"), text("host"))
        matched = e.get("matched") or {}
        assert (e.get("class"), matched.get("registration")) == (d["class"], d["registration"]), (t, d, e)
        assert e.get("cluster") == edge.route(d["registration"])["cluster"], (t, d, e.get("cluster"))
        out.append(bool(matched.get("telemetry")))
    return out


def main() -> int:
    suite = Suite()
    tests = [
        *((f"scenario:{d.name}", lambda d=d: suite.test_scenario(d)) for d in scenarios()),
        ("telemetry", suite.test_telemetry_per_prefix),
        ("private_by_default", suite.test_private_by_default),
        ("original_dst_default_path", suite.test_original_dst_default_path),
        ("l4", suite.test_l4),
        ("hash_ignores_client_written_xff", suite.test_hash_ignores_client_written_xff),
        ("link_failover", suite.test_link_failover),
        ("edge_failover", suite.test_edge_failover),
        ("no_backup_failover", suite.test_no_backup_failover),
        ("reload", suite.test_reload),
        ("compiled_policy", suite.test_compiled_policy),
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
