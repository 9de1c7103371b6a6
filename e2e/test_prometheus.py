"""A real Prometheus scraping a real Envoy with the MAPS plugin (`make e2e-prometheus`).

Envoy 1.40 runs the demo policy (fixtures/demo/policy.json) plus three Microsoft 365
entries with categories (Optimize, Allow, Default; SPEC §7), configured by `mapsctl
envoy-config`, with one link server per PNI link (e2e/harness.py). Traffic of several
classes goes through it (maps for two registrations, non-microsoft, unregistered,
unverified, excluded-category, HTTP and L4); the expectations come from `mapsctl
classify` and `mapsctl explain`, never from this file. Then Debian's Prometheus
(`prometheus`, scrape_interval 1s) scrapes Envoy's admin /stats/prometheus with the
alert rules of ops/prometheus/maps-alerts.yml loaded, and through its HTTP API:

  metrics      the plugin's counters by class, by category, by (registration, edge), the
               L4 ones and the latency histogram equal the traffic sent, exactly; the
               version gauge equals plan.json's policy version number; both policy
               counters exist (rejected at 0)
  names        every metric name the Grafana dashboard and the alert rules use
               (ops/check_ops.py reads them) is in /api/v1/label/__name__/values, and
               every dashboard query, evaluated by Prometheus, answers with data
  rules        every alert rule loaded and evaluated without error; none fires yet
  failover     every link of the edge `sea` stopped: MapsEdgeFailover becomes active for
               edge_sea only; it clears once the links are back
  refused      an invalid policy written into the ECDS file: Envoy refuses it,
               maps_policy_rejected rises, MapsPolicyRefused becomes active, and the
               version gauge still shows the last good policy

Every process started here (Envoy, link servers, Prometheus) is stopped by its PID; on
failure the Envoy and Prometheus logs are printed and the work directory is kept.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ops"))

from check_ops import dashboard_exprs, used_metric_names  # noqa: E402
from harness import ROOT, Edge, ecds_with_policy, write_atomic  # noqa: E402
from links import free_port  # noqa: E402
from traffic import request  # noqa: E402

DEMO = ROOT / "fixtures/demo/policy.json"
RULES = ROOT / "ops/prometheus/maps-alerts.yml"
DASHBOARD = ROOT / "ops/grafana/maps-dashboard.json"
JOB = "maps"

# Microsoft 365 entries with categories added to the demo policy (as in SPEC §7's
# example): outlook.office365.com becomes Optimize (the demo's own Exchange entry has no
# category), smtp.office365.com Allow, *cdn.onenote.net Default, which is outside
# maps_categories (excluded-category).
CATEGORY_DESTINATIONS = [
    {"name": "M365 Exchange Online (Optimize)", "category": "Optimize",
     "domains": ["outlook.office365.com"]},
    {"name": "M365 SMTP (Allow)", "category": "Allow", "domains": ["smtp.office365.com"]},
    {"name": "M365 OneNote CDN (Default)", "category": "Default", "domains": ["*cdn.onenote.net"]},
]

REPORT: list[str] = []


def say(line: str) -> None:
    print(line, flush=True)
    REPORT.append(line)


class Prometheus:
    """One Prometheus process (Debian's), its TSDB in a temporary directory."""

    def __init__(self, binary: str, workdir: Path, admin_port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{
                "job_name": JOB,
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{admin_port}"]}],
            }],
        }, indent=1))

    def start(self, timeout: float = 30.0) -> "Prometheus":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited at start-up ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout:.0f}s")

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

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no Prometheus log)"

    def api(self, path: str, **params: str) -> object:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
            raise RuntimeError(f"prometheus {path} {params}: {e.code} {body.get('error')}") from None
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query: [{"metric": {labels}, "value": [t, "v"]}]."""
        data = self.api("query", query=expr)
        assert isinstance(data, dict)
        return data["result"]

    def by(self, expr: str, *labels: str) -> dict:
        """{label value(s): number} of an instant query."""
        out = {}
        for s in self.query(expr):
            key = tuple(s["metric"].get(l, "") for l in labels)
            out[key[0] if len(key) == 1 else key] = float(s["value"][1])
        return out

    def alerts(self, name: str) -> list[dict]:
        data = self.api("alerts")
        assert isinstance(data, dict)
        return [a for a in data["alerts"] if a["labels"].get("alertname") == name]

    def wait_for(self, what: str, predicate, timeout: float = 30.0, step: float = 0.5):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except RuntimeError as e:
                last = str(e)
            if last is True or (last and not isinstance(last, str)):
                return last
            time.sleep(step)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Grafana would send it for this job, every proxy and
    registration selected."""
    return (
        expr.replace("$__rate_interval", "15s")
        .replace('"$job"', f'"{JOB}"')
        .replace('"$instance"', '".*"')
        .replace('"$registration"', '".*"')
    )


class Suite:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="maps-e2e-prometheus-"))
        policy = json.loads(DEMO.read_text())
        policy["destinations"] = policy.get("destinations", []) + CATEGORY_DESTINATIONS
        policy.setdefault("options", {})["maps_categories"] = ["Optimize", "Allow"]
        self.policy_path = self.work / "policy.json"
        self.policy_path.write_text(json.dumps(policy, indent=1))
        self.edge = Edge(self.policy_path, workdir=self.work / "edge")
        self.prom: Prometheus | None = None
        self.want_class: Counter = Counter()
        self.want_category: Counter = Counter()
        self.want_routed: Counter = Counter()
        self.want_latency: Counter = Counter()
        self.want_conn_class: Counter = Counter()
        self.want_conn_category: Counter = Counter()
        self.want_conn_routed: Counter = Counter()

    # -- traffic ------------------------------------------------------------------------
    def send_traffic(self) -> None:
        listener = f"127.0.0.1:{self.edge.http_port}"
        flows = (
            [("20.33.1.%d" % i, "outlook.office365.com") for i in range(10, 22)]  # fabrikam-wa, Optimize
            + [("20.33.2.%d" % i, "smtp.office365.com") for i in range(10, 15)]  # fabrikam-wa, Allow
            + [("151.206.1.%d" % i, "outlook.office365.com") for i in range(10, 17)]  # fourthcoffee-uk
            + [("52.160.41.%d" % i, "a.b.lync.com") for i in range(10, 13)]  # litware-il, no category
            + [("20.33.1.%d" % i, "www.example.org") for i in range(30, 34)]  # non-microsoft
            + [("203.0.113.%d" % i, "outlook.office365.com") for i in range(1, 4)]  # unregistered
            + [("20.33.16.%d" % i, "outlook.office365.com") for i in range(1, 3)]  # unverified
            + [("20.33.1.%d" % i, "xcdn.onenote.net") for i in range(40, 43)]  # excluded-category
        )
        lines = [{"src": s, "dst": listener, "host": h} for s, h in flows]
        decisions = self.edge.classify(lines)
        telemetry: dict[str, bool] = {}
        for (src, host), line, d in zip(flows, lines, decisions):
            r = request(self.edge.http_port, src, host)
            assert r.status == 200, f"{src} {host}: {r.status} {r.error}"
            self.want_class[d["class"]] += 1
            self.want_category[d.get("category") or "none"] += 1
            if d["class"] == "maps":
                self.want_routed[(d["registration"], d["edge"])] += 1
                if src not in telemetry:
                    e = self.edge.explain(src, line["dst"], host)
                    telemetry[src] = bool((e.get("matched") or {}).get("telemetry"))
                if telemetry[src]:
                    self.want_latency[d["registration"]] += 1
        classes = set(self.want_class)
        assert {"maps", "non-microsoft", "unregistered", "unverified", "excluded-category"} <= classes, classes
        assert {"Optimize", "Allow", "Default", "none"} <= set(self.want_category), self.want_category
        assert len({r for r, _ in self.want_routed}) >= 2, self.want_routed
        # L4: the network filter, through a PROXY line (client and original destination).
        l4 = [("20.33.1.50", "52.96.1.1"), ("20.33.1.51", "13.107.6.152"), ("20.33.1.52", "192.0.2.80"),
              ("203.0.113.9", "13.107.6.152")]
        for (src, dst), d in zip(l4, self.edge.classify([{"src": s, "dst": t} for s, t in l4])):
            link = self.edge.l4_request(src, dst)
            assert link, f"L4 {src}->{dst}: no answer"
            self.want_conn_class[d["class"]] += 1
            self.want_conn_category[d.get("category") or "none"] += 1
            if d["class"] == "maps":
                self.want_conn_routed[(d["registration"], d["edge"])] += 1
        assert self.want_conn_routed, "no L4 maps connection"
        say(f"traffic: {sum(self.want_class.values())} HTTP requests {dict(self.want_class)}, "
            f"categories {dict(self.want_category)}, routed {dict(self.want_routed)}, "
            f"telemetry samples {dict(self.want_latency)}; L4 {dict(self.want_conn_class)}")

    # -- tests ----------------------------------------------------------------------------
    def test_metrics(self) -> None:
        p = self.prom
        assert p is not None
        p.wait_for("the first scrape of Envoy", lambda: p.by(f'up{{job="{JOB}"}}', "job").get(JOB) == 1)
        # Histograms reach Envoy's admin output at its stats flush (every 5 s).
        p.wait_for(
            f"latency samples {dict(self.want_latency)}",
            lambda: p.by("maps_latency_ms_count", "maps_registration") == dict(self.want_latency),
        )
        by_class = p.by("maps_requests", "maps_class")
        assert by_class == dict(self.want_class), f"maps_requests {by_class}, sent {dict(self.want_class)}"
        by_category = p.by("maps_category_requests", "maps_category")
        assert by_category == dict(self.want_category), f"maps_category_requests {by_category}, sent {dict(self.want_category)}"
        routed = p.by("maps_routed", "maps_registration", "maps_edge")
        assert routed == dict(self.want_routed), f"maps_routed {routed}, sent {dict(self.want_routed)}"
        fab = self.want_routed[("fabrikam-wa", "sea")]
        assert fab >= 17 and routed[("fabrikam-wa", "sea")] == fab, routed
        assert p.by("maps_connections", "maps_class") == dict(self.want_conn_class)
        assert p.by("maps_category_connections", "maps_category") == dict(self.want_conn_category)
        assert p.by("maps_routed_connections", "maps_registration", "maps_edge") == dict(self.want_conn_routed)
        # Every series carries the scrape's job and instance, and nothing else unexpected.
        for s in p.query("maps_routed"):
            assert set(s["metric"]) == {"__name__", "job", "instance", "maps_registration", "maps_edge"}, s
        latency_count = p.by("maps_latency_ms_count", "maps_registration")
        buckets = p.query('maps_latency_ms_bucket{le="+Inf"}')
        assert {s["metric"]["maps_registration"] for s in buckets} == set(self.want_latency), buckets

        plan_version = self.edge.policy_version
        want_version = int(plan_version[:13], 16)
        versions = p.by("maps_policy_version", "instance")
        assert list(versions.values()) == [float(want_version)], (
            f"maps_policy_version {versions}, plan.json {plan_version} -> {want_version}"
        )
        loaded = p.by("maps_policy_loaded", "instance")
        rejected = p.by("maps_policy_rejected", "instance")
        memory = p.by("maps_vm_memory_bytes", "instance")
        generation = p.by("maps_policy_generation", "instance")
        assert list(rejected.values()) == [0.0], f"maps_policy_rejected {rejected}"
        assert all(v > 0 for v in loaded.values()) and loaded, loaded
        assert all(v > 0 for v in memory.values()) and memory, memory
        assert list(generation.values()) == [1.0], generation
        series = p.by('count by (__name__) ({__name__=~"maps_.+"})', "__name__")
        scraped = p.by(f'scrape_samples_scraped{{job="{JOB}"}}', "job").get(JOB)
        took = p.by(f'scrape_duration_seconds{{job="{JOB}"}}', "job").get(JOB)
        say(f"metrics: maps_requests {by_class}; maps_category_requests {by_category}; "
            f"maps_routed fabrikam-wa/sea = {routed[('fabrikam-wa', 'sea')]:.0f} (sent {fab}); "
            f"latency samples {latency_count}; version {versions} = plan.json {plan_version}[:13]; "
            f"loaded {loaded}, rejected {rejected}, VM memory {memory}")
        say(f"cardinality: {sum(series.values()):.0f} maps_* series ({dict(sorted(series.items()))}) "
            f"of {scraped:.0f} samples per scrape; a scrape took {took * 1000:.1f} ms")

    def test_names(self) -> None:
        p = self.prom
        assert p is not None
        names = p.api("label/__name__/values")
        assert isinstance(names, list)
        used = used_metric_names()
        missing = {n: w for n, w in used.items() if n not in names}
        assert not missing, "metric names used by the dashboard or the rules but absent from " \
            f"a real scrape: {missing}"
        dashboard = json.loads(DASHBOARD.read_text())
        exprs = dashboard_exprs(dashboard)
        empty: list[str] = []

        def all_answered() -> bool:
            # A rate needs two samples in its window: the first scrapes may not have them.
            empty[:] = [f"{w}: {e}" for w, e in exprs if not p.query(grafana_to_promql(e))]
            return not empty

        try:
            p.wait_for("every dashboard query to answer", all_answered, timeout=30)
        except AssertionError:
            raise AssertionError("dashboard queries without data:\n" + "\n".join(empty)) from None
        say(f"names: the {len(used)} metrics of the dashboard and the rules all in Prometheus "
            f"({len(names)} names scraped); {len(exprs)} dashboard queries "
            "all answered with data")

    def test_rules(self) -> None:
        p = self.prom
        assert p is not None

        def evaluated():  # type: ignore[no-untyped-def]
            data = p.api("rules")
            assert isinstance(data, dict)
            rules = [r for g in data["groups"] for r in g["rules"]]
            # Never evaluated: Go's zero time, 0001-01-01T00:00:00Z.
            done = rules and all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
            return rules if done else None

        rules = p.wait_for("every rule evaluated", evaluated)
        bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r.get("health") != "ok"]
        assert not bad, f"rules not healthy: {bad}"
        active = p.api("alerts")
        assert isinstance(active, dict)
        maps_alerts = [a["labels"]["alertname"] for a in active["alerts"]]
        assert not maps_alerts, f"alerts active before any fault: {maps_alerts}"
        say(f"rules: {len(rules)} alert rules loaded and evaluated without error "
            f"({', '.join(r['name'] for r in rules)}); none active")

    def test_failover(self) -> None:
        p = self.prom
        assert p is not None
        cluster = self.edge.edge_cluster("sea")
        t0 = time.monotonic()
        for link in self.edge.links_of("sea"):
            link.stop()
        alerts = p.wait_for(
            "MapsEdgeFailover for edge sea",
            lambda: [a for a in p.alerts("MapsEdgeFailover") if a["state"] in ("pending", "firing")],
        )
        took = time.monotonic() - t0
        clusters = {a["labels"].get("envoy_cluster_name") for a in alerts}
        assert clusters == {cluster}, f"MapsEdgeFailover for {clusters}, only {cluster} lost its links"
        a = alerts[0]
        assert a["labels"]["severity"] == "critical" and a["labels"]["job"] == JOB, a
        # The fabrikam-wa clients now reach the backup edge. Envoy's workers may see the
        # last link's health change a moment after the admin interface (and so
        # Prometheus) does: ask until the backup answers, within a bound, and say how
        # many answers came first (seen once under load: one 503 `UH`).
        backup = self.edge.route("fabrikam-wa")["backup"]
        before_backup: list[tuple[int, str]] = []
        deadline = time.monotonic() + 10
        while True:
            r = request(self.edge.http_port, "20.33.1.10", "outlook.office365.com")
            if self.edge.edge_of(r.link) == backup:
                break
            before_backup.append((r.status, r.link))
            assert time.monotonic() < deadline, f"never reached {backup}: {before_backup[-5:]}"
            time.sleep(0.05)
        if before_backup:
            say(f"failover: {len(before_backup)} answer(s) before the backup did: {before_backup[:5]}")
        for link in self.edge.links_of("sea"):
            link.start()
        t1 = time.monotonic()
        p.wait_for("MapsEdgeFailover to clear", lambda: not p.alerts("MapsEdgeFailover"))
        say(f"failover: links of sea stopped -> MapsEdgeFailover {a['state']} for {cluster} after "
            f"{took:.1f} s (traffic on backup {backup}); cleared {time.monotonic() - t1:.1f} s after "
            "the links came back")

    def test_refused(self) -> None:
        p = self.prom
        assert p is not None
        envoy = self.edge.envoy
        assert envoy is not None
        version_before = p.by("maps_policy_version", "instance")
        name, ecds = self.edge.http_filter()
        rejected_stat = f"extension_config_discovery.http_filter.{name}.update_rejected"
        before = envoy.counter(rejected_stat)
        bad = copy.deepcopy(json.loads(self.policy_path.read_text()))
        bad["registrations"][0]["prefixes"][0]["state"] = "Verifed"
        t0 = time.monotonic()
        write_atomic(ecds, json.dumps(ecds_with_policy(ecds, json.dumps(bad), "bad-1")))
        envoy.wait_for("the ECDS rejection", lambda: envoy.counter(rejected_stat) > before)
        rejected = p.wait_for(
            "maps_policy_rejected > 0 in Prometheus",
            lambda: {k: v for k, v in p.by("maps_policy_rejected", "instance").items() if v > 0},
        )
        alerts = p.wait_for(
            "MapsPolicyRefused",
            lambda: [a for a in p.alerts("MapsPolicyRefused") if a["state"] in ("pending", "firing")],
        )
        took = time.monotonic() - t0
        assert {a["labels"]["instance"] for a in alerts} == {f"127.0.0.1:{self.edge.admin_port}"}, alerts
        version_after = p.by("maps_policy_version", "instance")
        assert version_after == version_before, f"version {version_before} -> {version_after} after a refused policy"
        # The last good policy still decides: fabrikam-wa's client is routed to sea (the
        # plugin's own counter; the answering link may still be the backup's while sea's
        # links, just back from the failover test, recover).
        routed = "wasmcustom.maps.registration.fabrikam-wa.edge.sea.routed"
        n0 = envoy.counter(routed)
        r = request(self.edge.http_port, "20.33.1.10", "outlook.office365.com")
        assert r.status == 200, (r.status, r.link)
        assert envoy.counter(routed) == n0 + 1, f"{routed}: {n0} -> {envoy.counter(routed)}"
        say(f"refused: invalid policy in the ECDS file -> maps_policy_rejected {rejected}, "
            f"MapsPolicyRefused {alerts[0]['state']} after {took:.1f} s; version gauge unchanged "
            f"{version_after}; traffic still served by the last good policy")


def main() -> int:
    tools = {
        "prometheus": os.environ.get("PROMETHEUS", "prometheus"),
        "promtool": os.environ.get("PROMTOOL", "promtool"),
    }
    for t in tools.values():
        if not shutil.which(t):
            print(f"FAIL e2e-prometheus::setup: {t} not found (make prometheus installs Debian's)")
            return 1
    suite = Suite()
    tests = [
        ("metrics", suite.test_metrics),
        ("names", suite.test_names),
        ("rules", suite.test_rules),
        ("failover", suite.test_failover),
        ("refused", suite.test_refused),
    ]
    passed = failed = 0
    t0 = time.monotonic()
    try:
        suite.edge.start()
        envoy = suite.edge.envoy
        assert envoy is not None
        say(f"envoy pid {envoy.pid} up, admin 127.0.0.1:{suite.edge.admin_port}")
        suite.send_traffic()
        prom = Prometheus(tools["prometheus"], suite.work, suite.edge.admin_port)
        check = subprocess.run([tools["promtool"], "check", "config", str(prom.config)],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, f"promtool check config:\n{check.stdout}{check.stderr}"
        suite.prom = prom.start()
        say(f"prometheus pid {prom.proc.pid if prom.proc else -1} up on 127.0.0.1:{prom.port}, "
            "scraping every 1 s, rules of ops/prometheus/maps-alerts.yml")
        for name, fn in tests:
            t = time.monotonic()
            try:
                fn()
                passed += 1
                print(f"PASS e2e-prometheus::{name} ({time.monotonic() - t:.1f}s)", flush=True)
            except Exception:  # noqa: BLE001 - report every failure, run the rest
                failed += 1
                print(f"FAIL e2e-prometheus::{name} ({time.monotonic() - t:.1f}s)", flush=True)
                traceback.print_exc()
    except Exception:  # noqa: BLE001
        failed += 1
        print("FAIL e2e-prometheus::setup", flush=True)
        traceback.print_exc()
    finally:
        if suite.prom is not None:
            if failed:
                print("---- Prometheus log (last 60 lines) ----")
                print(suite.prom.log_tail())
            suite.prom.stop()
        if failed and suite.edge.envoy is not None:
            print("---- Envoy log (last 120 lines) ----")
            print(suite.edge.envoy.log_tail(120))
            print(f"policy, configuration and logs kept in {suite.work}")
        suite.edge.stop(keep_files=bool(failed))
        if not failed:
            shutil.rmtree(suite.work, ignore_errors=True)
    print(f"e2e-prometheus finished in {time.monotonic() - t0:.1f}s")
    print(f"e2e-prometheus: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
