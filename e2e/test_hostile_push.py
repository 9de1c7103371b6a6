"""Hostile policy pushes through ECDS in a real Envoy (`make e2e-hostile`; issue 13,
finding 1: "a policy push of a few MB never blocks Envoy's main thread for more than
about a second").

One edge (the demo policy, a plain HTTP listener, the client in x-forwarded-for) under a
steady request stream. Then, one after the other, straight into the ECDS file (no
mapsctl validation on the way, as test_envoy's reload check does for an invalid policy):

  hostile   the original finding's policy scaled to a few MB: 1,000+ long edge ids
            (60-200 characters) and thousands of registrations pinning missing edges one
            edit away from real ones (what made the unbounded "did you mean" quadratic)
  huge      the demo policy with one `location` of 100 MB (smaller if Envoy refuses the
            file: the largest it processes is reported), then a text of that size that
            is not JSON from its first byte (the plugin stops at once: Envoy's own share)
  benign    a valid policy of the hostile one's size (the demo plus thousands of
            registrations with long ids on the demo's edges)

While each push is processed a thread asks Envoy's admin `/ready` every 50 ms (the admin
interface runs on the main thread): the longest gap between two answers is the main
thread's stall. Timings are printed (hostile vs benign, and the ratio), never asserted.
Asserted: each hostile push is rejected (ECDS update_rejected rises, the plugin logs the
rejection, the version Envoy serves is unchanged and the last good policy still
decides); the benign one is accepted (its version served, the plugin logs it loaded);
no request of the stream fails; Envoy never restarts.

Every process is started here and stopped by PID; everything is on 127.0.0.1; the work
directory (the policies and ECDS files written here) is removed at the end; on failure
the tail of Envoy's log is printed first.

To compare with an older plugin: PLUGIN_WASM=old.wasm MAPS_HOSTILE_EDGES=1000
MAPS_HOSTILE_REGISTRATIONS=1000 (the original finding's size) python3 e2e/test_hostile_push.py
"""

from __future__ import annotations

import copy
import datetime
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Edge, ecds_with_policy, write_atomic  # noqa: E402
from traffic import Stream, request  # noqa: E402

POLICY = ROOT / "fixtures/demo/policy.json"
TRACE = ROOT / "fixtures/demo/trace.jsonl"

# Sizes: the original finding was 1,000 edges and 1,000 registrations in 266 KB (28.7 s
# of frozen admin interface); here the same shape at a few MB.
# The environment may scale them (e.g. to compare with an older plugin through
# PLUGIN_WASM: MAPS_HOSTILE_EDGES=1000 MAPS_HOSTILE_REGISTRATIONS=1000 is the original's).
HOSTILE_EDGES = int(os.environ.get("MAPS_HOSTILE_EDGES", "1200"))
HOSTILE_REGISTRATIONS = int(os.environ.get("MAPS_HOSTILE_REGISTRATIONS", "9000"))
# tried in turn until Envoy hands one to the plugin
HUGE_MB = [int(x) for x in os.environ.get("MAPS_HUGE_MB", "100,50,20,10,5").split(",")]
POLL_S = 0.05
PUSH_TIMEOUT_S = 240.0  # a bound, not an expectation


def say(line: str) -> None:
    print(line, flush=True)


LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]")


def first_logged(text: str, needles: tuple[str, ...]) -> float | None:
    """Wall-clock time (epoch s) of the first line of Envoy's log `text` holding one of
    `needles` (Envoy stamps its log lines in local time, to the millisecond)."""
    for line in text.splitlines():
        if any(n in line for n in needles):
            m = LOG_TIME.match(line)
            if m:
                return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return None


# -- policies ---------------------------------------------------------------------------
def long_id(rng: random.Random, i: int) -> str:
    n = rng.randint(60, 200)
    head = f"edge-{i:05d}-"
    return head + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(n - len(head)))


def one_edit(rng: random.Random, text: str) -> str:
    """`text` with one character (after its unique head) replaced: one edit away."""
    pos = rng.randrange(11, len(text))
    c = "x" if text[pos] != "x" else "y"
    return text[:pos] + c + text[pos + 1:]


def prefix(i: int) -> str:
    # 45.0.0.0/8 (no demo registration is there): one /24 each
    return f"45.{(i >> 8) & 255}.{i & 255}.0/24"


def locations(base: dict) -> list[str]:
    """The demo registrations' locations (known places)."""
    return sorted({r["location"] for r in base["registrations"] if r.get("location")})


def hostile_policy(base: dict, rng: random.Random) -> dict:
    p = copy.deepcopy(base)
    ids = [long_id(rng, i) for i in range(HOSTILE_EDGES)]
    for i, eid in enumerate(ids):
        p["edges"].append({
            "id": eid, "metro": f"Metro {i}", "lat": 40.0, "lon": -80.0,
            "provider": "Contoso Networks",
            "links": [{"id": f"l{i}-1", "router": f"r{i}", "capacity_gbps": 100}],
        })
    places = locations(base)
    for i in range(HOSTILE_REGISTRATIONS):
        p["registrations"].append({
            "id": f"hostile-{i:05d}", "customer": "Mallory", "location": places[i % len(places)],
            "primary_edge": one_edit(rng, ids[i % len(ids)]),
            "backup_edge": one_edit(rng, ids[(i * 7 + 3) % len(ids)]),
            "prefixes": [{"prefix": prefix(i), "state": "Verified"}],
        })
    return p


def benign_policy(base: dict, rng: random.Random, size: int) -> dict:
    """The demo plus valid registrations with long ids on the demo's edges, until the
    JSON text is about `size` bytes."""
    p = copy.deepcopy(base)
    edges = [e["id"] for e in base["edges"]]
    places = locations(base)
    text_len = len(json.dumps(p))
    i = 0
    while text_len < size and i < 60_000:
        n = rng.randint(60, 200)
        rid = f"benign-{i:05d}-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n - 13))
        primary = edges[i % len(edges)]
        backup = edges[(i + 1) % len(edges)]
        reg = {
            "id": rid, "customer": f"Customer {i}", "location": places[i % len(places)],
            "primary_edge": primary, "backup_edge": backup,
            "prefixes": [{"prefix": prefix(i), "state": "Verified"}],
        }
        p["registrations"].append(reg)
        text_len += len(json.dumps(reg)) + 2
        i += 1
    return p


def huge_policy(base: dict, mb: int) -> str:
    p = copy.deepcopy(base)
    p["registrations"][0]["location"] = "@LOC@"
    return json.dumps(p).replace('"@LOC@"', '"' + "A" * (mb * 1_000_000) + '"')


# -- the main thread's stall, seen from the admin interface --------------------------------
class AdminPoller:
    """Asks `/ready` every POLL_S seconds on one keep-alive connection; the longest gap
    between two answers is how long the main thread did not answer."""

    def __init__(self, port: int, max_seconds: float) -> None:
        self.port = port
        self.max_seconds = max_seconds
        self.answers: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "AdminPoller":
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PUSH_TIMEOUT_S)
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn.request("GET", "/ready")
                r = conn.getresponse()
                r.read()
                self.answers.append(time.monotonic())
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PUSH_TIMEOUT_S)
            self._stop.wait(POLL_S)
        conn.close()

    def stop(self) -> float:
        """Stops; returns the longest gap between answers (s)."""
        self._stop.set()
        self._thread.join(timeout=PUSH_TIMEOUT_S + 10)
        a = self.answers
        return max((b - x for x, b in zip(a, a[1:])), default=0.0)


# -- the test ---------------------------------------------------------------------------
class HostilePush:
    def __init__(self) -> None:
        self.edge = Edge(POLICY, expose_decision_headers=True)
        self.rng = random.Random(13)
        self.results: list[dict] = []

    def clients(self) -> list[tuple[dict, dict]]:
        """(trace line, demo decision) of IPv4 maps clients, as the plain listener gets them."""
        lines = []
        for raw in TRACE.read_text().splitlines():
            try:
                t = json.loads(raw)
            except ValueError:
                continue
            if isinstance(t, dict) and isinstance(t.get("src"), str) and ":" not in t["src"] and t["src"].strip():
                lines.append({"src": t["src"], "host": t.get("host") or "example.test"})
        decisions = self.edge.classify(lines)
        out = [(t, d) for t, d in zip(lines, decisions) if d.get("class") == "maps"]
        assert len(out) >= 3, "the demo trace has too few maps clients"
        return out

    def decides_like_demo(self, maps: list[tuple[dict, dict]]) -> None:
        for t, d in maps[:6]:
            r = request(self.edge.http_port, t["src"], t["host"])
            assert r.status == 200, (t, r)
            assert self.edge.edge_of(r.link) in (d["edge"], d.get("backup")), (t, d, r.link)
            assert r.headers.get(self.edge.headers["class"]) == "maps", (t, r.headers)

    def validate_natively(self, path: Path) -> tuple[int, float]:
        t = time.monotonic()
        r = subprocess.run([self.edge.tools["mapsctl"], "validate", "--format", "json", str(path)],
                           capture_output=True, timeout=PUSH_TIMEOUT_S)
        return r.returncode, time.monotonic() - t

    def push(self, name: str, text: str, version: str, expect_ok: bool) -> dict:
        envoy = self.edge.envoy
        assert envoy is not None
        filter_name, ecds = self.edge.http_filter()
        stat = f"extension_config_discovery.http_filter.{filter_name}."

        def counter(n: str) -> int | None:
            try:
                return envoy.counter(stat + n)
            except OSError:
                return None  # the admin interface did not answer in time: ask again

        def served() -> str | None:
            try:
                return envoy.stats(stat + "version_text").get(stat + "version_text")
            except OSError:
                return None

        rejected0 = counter("update_rejected") or 0
        success0 = counter("update_success") or 0
        version0 = served()
        log0 = envoy.log_text()
        rejections0 = log0.count("maps: policy rejected")
        loads0 = log0.count("maps: policy loaded")
        doc = json.dumps(ecds_with_policy(ecds, text, version))
        poller = AdminPoller(self.edge.admin_port, PUSH_TIMEOUT_S + 30).start()
        time.sleep(0.5)  # a baseline of answers before the write
        t0 = time.monotonic()
        wall0 = time.time()
        write_atomic(ecds, doc)
        outcome = ""
        deadline = t0 + PUSH_TIMEOUT_S
        while time.monotonic() < deadline:
            if (counter("update_rejected") or 0) > rejected0:
                outcome = "rejected"
                break
            if (counter("update_success") or 0) > success0 and served() == f'"{version}"':
                outcome = "accepted"
                break
            time.sleep(0.05)
        took = time.monotonic() - t0
        time.sleep(1.0)  # the workers' copies of the plugin configure after the main thread
        stall = poller.stop()
        log = envoy.log_text()
        new = log[len(log0):]
        verdict = first_logged(new, ("maps: policy rejected", "maps: policy loaded"))
        res = {
            "name": name, "bytes": len(text), "ecds_bytes": len(doc), "outcome": outcome or "none",
            "took": took, "stall": stall, "admin_errors": poller.errors,
            "plugin_rejections": log.count("maps: policy rejected") - rejections0,
            "plugin_loads": log.count("maps: policy loaded") - loads0,
            "version_before": version0, "version_after": served(),
            # write -> the plugin's first verdict (Envoy's read and parse of the file, the
            # copy into the VM, the plugin's parse and validation)
            "to_verdict": None if verdict is None else verdict - wall0,
        }
        say(f"push {name}: {res['bytes'] / 1e6:.2f} MB policy ({res['ecds_bytes'] / 1e6:.2f} MB ECDS file): "
            f"{res['outcome']} after {took:.2f} s; longest main-thread stall {stall:.3f} s "
            f"(admin errors {poller.errors}); plugin log: {res['plugin_rejections']} rejection(s), "
            f"{res['plugin_loads']} load(s); version {version0} -> {res['version_after']}"
            + ("" if verdict is None else f"; the plugin's verdict logged {verdict - wall0:.2f} s after the write"))
        if expect_ok:
            assert outcome == "accepted", res
            assert res["plugin_loads"] >= 1, res
        self.results.append(res)
        return res

    def run(self) -> None:
        base = json.loads(POLICY.read_text())
        self.edge.start()
        envoy = self.edge.envoy
        assert envoy is not None
        pid = envoy.pid
        say(f"envoy pid {pid} up; config in {self.edge.outdir}")
        maps = self.clients()
        self.decides_like_demo(maps)
        clients = [(t["src"], t["host"]) for t, _ in maps]
        stream = Stream(self.edge.http_port, clients, workers=2, interval=0.02,
                        max_seconds=3 * PUSH_TIMEOUT_S + 120, max_requests=200_000).start()
        wd = self.edge.workdir

        # (a) hostile, a few MB
        hostile = json.dumps(hostile_policy(base, self.rng))
        (wd / "hostile.json").write_text(hostile)
        rc, native = self.validate_natively(wd / "hostile.json")
        say(f"mapsctl validate hostile: exit {rc} in {native:.2f} s")
        assert rc != 0, "mapsctl accepted the hostile policy"
        r = self.push("hostile", hostile, "hostile-1", expect_ok=False)
        assert r["outcome"] == "rejected", r
        assert r["plugin_rejections"] >= 1, f"the plugin did not log the rejection: {r}"
        assert r["version_after"] == r["version_before"], r
        self.decides_like_demo(maps)

        # (b) one huge location string: the largest Envoy hands to the plugin
        huge_done = None
        for mb in HUGE_MB:
            text = huge_policy(base, mb)
            r = self.push(f"huge-location-{mb}MB", text, f"huge-{mb}", expect_ok=False)
            del text
            assert r["outcome"] == "rejected", r
            assert r["version_after"] == r["version_before"], r
            assert envoy.pid == pid and envoy.running(), "Envoy restarted"
            self.decides_like_demo(maps)
            if r["plugin_rejections"] >= 1:
                huge_done = r
                break
            say(f"  Envoy refused the {mb} MB file before the plugin saw it")
        assert huge_done is not None, "Envoy handed no huge-location policy to the plugin"
        log = envoy.log_text()
        assert "[bad-value]" in log, "no bad-value error logged for the huge location"
        # The same size that is not JSON from its first byte: the plugin stops at once,
        # so this push's stall is Envoy's own share (reading and parsing the file,
        # copying the configuration into the VM).
        mb = int(huge_done["name"].split("-")[-1][:-2])
        rg = self.push(f"not-json-{mb}MB", "#" + "A" * (mb * 1_000_000), f"not-json-{mb}", expect_ok=False)
        assert rg["outcome"] == "rejected" and rg["plugin_rejections"] >= 1, rg
        assert rg["version_after"] == rg["version_before"], rg
        self.decides_like_demo(maps)

        # (c) benign, the hostile one's size
        benign = json.dumps(benign_policy(base, self.rng, len(hostile)))
        (wd / "benign.json").write_text(benign)
        rc, native_b = self.validate_natively(wd / "benign.json")
        say(f"mapsctl validate benign: exit {rc} in {native_b:.2f} s")
        assert rc == 0, "mapsctl refused the benign policy"
        rb = self.push("benign", benign, "benign-1", expect_ok=True)
        self.decides_like_demo(maps)

        time.sleep(0.5)
        st = stream.stop()
        say(st.line("stream during the pushes"))
        lat = max((took for _, took, _ in st.latencies), default=0.0)
        say(f"longest request during the pushes: {lat:.3f} s")
        hostile_r = self.results[0]
        say(f"longest main-thread stall: hostile {hostile_r['stall']:.3f} s "
            f"({hostile_r['bytes'] / 1e6:.2f} MB), benign {rb['stall']:.3f} s "
            f"({rb['bytes'] / 1e6:.2f} MB), ratio {hostile_r['stall'] / max(rb['stall'], 1e-9):.2f}; "
            f"huge location {huge_done['stall']:.3f} s ({huge_done['bytes'] / 1e6:.0f} MB; "
            f"not JSON, same size: {rg['stall']:.3f} s)")
        assert st.failed == 0, f"requests failed during the pushes: {dict(st.errors)}"
        assert st.sent > 100, st.sent
        assert envoy.pid == pid and envoy.running(), "Envoy restarted"


def main() -> int:
    t = HostilePush()
    t0 = time.monotonic()
    ok = False
    try:
        t.run()
        ok = True
        print(f"PASS e2e::hostile_push ({time.monotonic() - t0:.1f}s)", flush=True)
    except Exception:  # noqa: BLE001 - print Envoy's log, then fail
        traceback.print_exc()
        print(f"FAIL e2e::hostile_push ({time.monotonic() - t0:.1f}s)", flush=True)
        if t.edge.envoy is not None:
            print("---- Envoy log (tail) ----\n" + t.edge.envoy.log_tail(120)[-20000:], flush=True)
    finally:
        t.edge.stop(keep_files=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
