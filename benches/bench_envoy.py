#!/usr/bin/env python3
"""`make bench-envoy`: the cost of the MAPS plugin in a real Envoy (issue 6).

Four Envoy processes, each `--concurrency 1`, each with the same HTTP listener and
the same upstream, differing only in their HTTP filters:

    none       router only (no wasm filter)
    noop       a no-op proxy-wasm filter (benches/noop-filter), then the router
    hostcalls  the same filter configured to make the MAPS plugin's per-request host
               calls and nothing else (no classification): splits the plugin's cost
               into Envoy's host calls and the plugin's own work
    maps       the MAPS plugin holding a generated packed policy (`mapsctl gen`), then the router

The upstream is a second listener of the same Envoy answering with a `direct_response`
(no other process, nothing to download; its cost is the same in all three). The MAPS
filter, like the no-op one, is delivered through ECDS from a file, as
`mapsctl envoy-config` does; each request carries a client address in
`x-forwarded-for` (one trusted hop, as the demo policy says), half of them inside the
policy's prefixes, and `:authority` outlook.office365.com (a Microsoft destination).

wrk (one thread, fixed connections, bounded duration) loads each Envoy in turn, for
`--rounds` rounds (configurations interleaved, each run after a short warm-up run);
a configuration's figure is its best round (the machine is shared: the best round is
the one least disturbed). Reported: requests/s, p50/p99 latency, Envoy's RSS (after
the runs, and its peak), start-up to ready, and for the MAPS Envoy the time an ECDS
reload of another policy of the same size takes to be served.

    python3 benches/bench_envoy.py [--prefixes N] [--duration S] [--connections C]
                                   [--rounds R] [--json OUT] [--check]

`--check` is the quick correctness run of `make test` (small policy, 1 s runs; no
timing is asserted): every configuration serves every request with status 200, and
the plugin's class counters account for every request of the MAPS run.

Environment (set by the Makefile): ENVOY, MAPSCTL, PLUGIN_WASM, NOOP_WASM, WRK.
Everything listens on 127.0.0.1; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))

from envoy import Envoy, EnvoyError  # noqa: E402
from harness import tool_paths, write_atomic  # noqa: E402
from links import free_port  # noqa: E402

HOST = "outlook.office365.com"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
ECDS_STAT = "extension_config_discovery.http_filter.{name}."
CONFIGS = ("none", "noop", "hostcalls", "maps")


def say(msg: str) -> None:
    print(f"bench-envoy: {msg}", flush=True)


# ---- Envoy --------------------------------------------------------------------------
class BenchEnvoy(Envoy):
    """e2e's Envoy, started with `--concurrency 1` and timed from start to ready."""

    def start(self, timeout: float = 120.0) -> "BenchEnvoy":  # type: ignore[override]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            [
                self.binary, "-c", str(self.config),
                "--concurrency", "1",
                "--use-dynamic-base-id",
                "--log-level", "warning",
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = self.t_start + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyError(f"Envoy exited at start-up with status {self.proc.returncode}")
            try:
                if self.admin("/ready", timeout=2).strip() == "LIVE":
                    self.ready_s = time.monotonic() - self.t_start
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.02)
        raise EnvoyError(f"Envoy not ready after {timeout:.0f}s")

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the process, bytes."""
        out = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        except (OSError, ValueError):
            pass
        return out


def wasm_filter(name: str, wasm: Path, configuration: str) -> dict:
    return {
        "name": name,
        "root_id": name,
        "vm_config": {
            "vm_id": name,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm)}},
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration,
        },
        "failure_policy": "FAIL_RELOAD",
    }


def ecds_document(name: str, wasm: Path, configuration: str, version: str) -> dict:
    return {
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": {"@type": WASM_TYPE, "config": wasm_filter(name, wasm, configuration)},
        }],
    }


def bootstrap(listen: int, upstream: int, admin: int, ecds: Path | None, name: str) -> dict:
    """The whole Envoy configuration: the measured listener (with the wasm filter from
    `ecds` when given), the upstream listener and its cluster."""
    def hcm(stat: str, routes: list, filters: list) -> dict:
        return {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                         "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": stat,
                "use_remote_address": True,
                "xff_num_trusted_hops": 1,
                "route_config": {"name": stat, "virtual_hosts": [
                    {"name": "all", "domains": ["*"], "routes": routes}]},
                "http_filters": filters + [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions."
                                              "filters.http.router.v3.Router"},
                }],
            },
        }

    filters = []
    if ecds is not None:
        filters.append({
            "name": name,
            "config_discovery": {
                "config_source": {"path_config_source": {"path": str(ecds)},
                                  "resource_api_version": "V3"},
                "type_urls": [WASM_TYPE],
            },
        })

    def addr(port: int) -> dict:
        return {"socket_address": {"address": "127.0.0.1", "port_value": port}}

    return {
        "node": {"id": f"bench-{name}", "cluster": "bench"},
        "admin": {"address": addr(admin)},
        "static_resources": {
            "listeners": [
                {"name": "bench", "address": addr(listen), "filter_chains": [{"filters": [
                    hcm("bench", [{"match": {"prefix": "/"},
                                   "route": {"cluster": "upstream", "timeout": "5s"}}], filters)]}]},
                {"name": "upstream", "address": addr(upstream), "filter_chains": [{"filters": [
                    hcm("upstream", [{"match": {"prefix": "/"},
                                      "direct_response": {"status": 200,
                                                          "body": {"inline_string": "ok\n"}}}],
                        [])]}]},
            ],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": addr(upstream)}}]}]},
            }],
        },
    }


class Instance:
    """One configuration: its files, ports and Envoy."""

    def __init__(self, kind: str, workdir: Path, binary: str,
                 wasm: Path | None = None, configuration: str = "") -> None:
        self.kind = kind
        self.dir = workdir / kind
        (self.dir / "xds").mkdir(parents=True, exist_ok=True)
        self.port, self.upstream, self.admin = free_port(), free_port(), free_port()
        self.filter = "maps" if kind == "maps" else "noop"
        self.wasm = wasm
        self.ecds = self.dir / "xds" / f"{self.filter}.json" if wasm else None
        if wasm is not None and self.ecds is not None:
            write_atomic(self.ecds, json.dumps(
                ecds_document(self.filter, wasm, configuration, "v1")))
        conf = self.dir / "envoy.json"
        conf.write_text(json.dumps(bootstrap(self.port, self.upstream, self.admin,
                                             self.ecds, self.filter), indent=1))
        self.envoy = BenchEnvoy(binary, conf, self.admin, self.dir / "envoy.log")
        self.runs: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def class_counts(self) -> dict[str, int]:
        out = {}
        for name, value in self.envoy.stats(r"^wasmcustom\.maps\.class\.").items():
            m = re.match(r"wasmcustom\.maps\.class\.([^.]+)\.requests$", name)
            if m:
                out[m.group(1)] = int(value)
        return out


# ---- load -----------------------------------------------------------------------------
WRK_SCRIPT = r"""
local addrs = {%(addrs)s}
local reqs = {}
local n = 0
local i = 0
init = function(args)
  for k, a in ipairs(addrs) do
    reqs[k] = wrk.format("GET", "/", {["Host"] = "%(host)s", ["X-Forwarded-For"] = a})
  end
  n = #reqs
end
request = function()
  i = i %% n + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"mean":%%.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk(binary: str, script: Path, url: str, seconds: float, connections: int) -> dict:
    cmd = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "5s", "-s", str(script), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in r.stdout.splitlines():
        if line.startswith("WRKJSON "):
            out = json.loads(line[len("WRKJSON "):])
            out["requests_per_s"] = out["requests"] / max(out["duration_us"], 1) * 1e6
            return out
    raise RuntimeError(f"wrk printed no result (exit {r.returncode}):\n{r.stdout}{r.stderr}")


# ---- reload -------------------------------------------------------------------------
def probe(url: str) -> None:
    """One request as a client outside every prefix (its answer does not matter)."""
    req = urllib.request.Request(url, headers={"Host": HOST, "X-Forwarded-For": "192.0.2.1"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except (OSError, urllib.error.URLError):
        pass


def reload_time(inst: Instance, policy_text: str, timeout: float = 120.0) -> dict:
    """Writes another policy into the MAPS ECDS file; seconds until Envoy has applied
    it (`config_reload` rises) and until the worker's VM serves with it (the plugin's
    `maps.policy.loaded` counter has risen by as much as at start-up)."""
    assert inst.ecds is not None and inst.wasm is not None
    env = inst.envoy
    stat = ECDS_STAT.format(name=inst.filter)
    reloads0 = env.counter(stat + "config_reload")
    loaded0 = env.counter("wasmcustom.maps.policy.loaded")
    per_load = max(1, loaded0)  # VMs configured per policy (main thread + worker)
    t0 = time.monotonic()
    write_atomic(inst.ecds, json.dumps(ecds_document(inst.filter, inst.wasm, policy_text, "v2")))
    applied = env.wait_for("ECDS config_reload",
                           lambda: env.counter(stat + "config_reload") > reloads0,
                           timeout=timeout, step=0.02)
    t_applied = time.monotonic() - t0
    served = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        # The worker's VM is configured when a request reaches it: send one.
        probe(inst.url)
        if env.counter("wasmcustom.maps.policy.loaded") >= loaded0 + per_load:
            served = time.monotonic() - t0
            break
        time.sleep(0.02)
    return {"ecds_applied_s": t_applied, "worker_serving_s": served, "config_reload": applied,
            "policy_loaded_before": loaded0,
            "policy_loaded_after": env.counter("wasmcustom.maps.policy.loaded"),
            "rejected": env.counter(stat + "update_rejected")}


# ---- main ---------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefixes", type=int, default=1_000_000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--addresses", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--check", action="store_true",
                    help="quick correctness run (make test): small policy, 1 s runs")
    args = ap.parse_args()
    if args.check:
        args.prefixes, args.duration, args.warmup, args.rounds = 10_000, 1.0, 0.0, 1

    tools = tool_paths()
    noop_wasm = Path(os.environ.get(
        "NOOP_WASM", str(ROOT / "target/wasm32-wasip1/plugin/noop_filter.wasm")))
    wrk_bin = os.environ.get("WRK", shutil.which("wrk") or "wrk")
    for what, p in (("Envoy", tools["envoy"]), ("mapsctl", tools["mapsctl"]),
                    ("the plugin", tools["plugin"]), ("the no-op filter", str(noop_wasm)),
                    ("wrk", wrk_bin)):
        if not (Path(p).exists() or shutil.which(p)):
            say(f"{what} not found at {p} (make bench-envoy builds and installs everything)")
            return 2

    workdir = Path(tempfile.mkdtemp(prefix="maps-bench-envoy-"))
    instances: list[Instance] = []
    failed = False
    result: dict = {"prefixes": args.prefixes, "duration_s": args.duration,
                    "connections": args.connections, "rounds": args.rounds,
                    "wrk_threads": 1, "envoy_concurrency": 1}
    try:
        # Two policies of the same size (different seeds): the second is the reload.
        policies = {}
        for seed in (2026, 2027):
            path = workdir / f"policy-{seed}.json"
            t0 = time.monotonic()
            # The client addresses come with the first policy: `mapsctl gen` writes a
            # trace for it (half the sources inside its prefixes), so nothing here reads
            # the packed table itself.
            trace = ["--trace-out", str(workdir / "trace.jsonl"),
                     "--flows", str(args.addresses)] if seed == 2026 else []
            subprocess.run([tools["mapsctl"], "gen", "--prefixes", str(args.prefixes),
                            "--seed", str(seed), "--out", str(path), *trace],
                           check=True, capture_output=True, timeout=300)
            policies[seed] = path.read_text()
            say(f"mapsctl gen --prefixes {args.prefixes} --seed {seed}: "
                f"{len(policies[seed]):,} bytes in {time.monotonic() - t0:.1f}s")
        result["policy_json_bytes"] = len(policies[2026])
        addrs = [json.loads(line)["src"]
                 for line in (workdir / "trace.jsonl").read_text().splitlines() if line]
        script = workdir / "requests.lua"
        script.write_text(WRK_SCRIPT % {"addrs": ",".join(f'"{a}"' for a in addrs),
                                        "host": HOST})

        binary = tools["envoy"]
        instances = [
            Instance("none", workdir, binary),
            Instance("noop", workdir, binary, noop_wasm, ""),
            Instance("hostcalls", workdir, binary, noop_wasm, "hostcalls"),
            Instance("maps", workdir, binary, Path(tools["plugin"]), policies[2026]),
        ]
        for inst in instances:
            inst.envoy.start()
            say(f"{inst.kind}: Envoy pid {inst.envoy.pid} ready in {inst.envoy.ready_s:.2f}s")
            inst.memory_ready = inst.envoy.memory()

        # Interleaved rounds; a warm-up run before each measured run.
        for rnd in range(args.rounds):
            for inst in instances:
                if args.warmup > 0:
                    wrk(wrk_bin, script, inst.url, args.warmup, args.connections)
                r = wrk(wrk_bin, script, inst.url, args.duration, args.connections)
                inst.runs.append(r)
                say(f"round {rnd + 1} {inst.kind:5}: {r['requests_per_s']:9.0f} req/s  "
                    f"p50 {r['latency_us']['p50'] / 1e3:.3f} ms  "
                    f"p99 {r['latency_us']['p99'] / 1e3:.3f} ms  errors {r['errors']}")

        maps = instances[-1]
        classes = maps.class_counts()
        result["maps_classes"] = classes
        for inst in instances:
            best = max(inst.runs, key=lambda r: r["requests_per_s"])
            stats = inst.envoy.stats(r"^http\.bench\.downstream_rq_[0-9]xx$")
            result[inst.kind] = {
                "requests_per_s": best["requests_per_s"],
                "p50_ms": best["latency_us"]["p50"] / 1e3,
                "p90_ms": best["latency_us"]["p90"] / 1e3,
                "p99_ms": best["latency_us"]["p99"] / 1e3,
                "rounds_requests_per_s": [r["requests_per_s"] for r in inst.runs],
                "errors": best["errors"],
                "ready_s": inst.envoy.ready_s,
                "rss_ready_bytes": inst.memory_ready.get("VmRSS"),
                "rss_bytes": inst.envoy.memory().get("VmRSS"),
                "rss_peak_bytes": inst.envoy.memory().get("VmHWM"),
                "responses": {k.rsplit("_", 1)[-1]: int(v) for k, v in stats.items()},
            }
        # The policy's load time inside Envoy, beyond a no-op filter's.
        result["maps_load_over_noop_s"] = maps.envoy.ready_s - instances[1].envoy.ready_s
        result["reload"] = reload_time(maps, policies[2027])
        say(f"reload: ECDS applied in {result['reload']['ecds_applied_s']:.2f}s, "
            f"worker serving the new policy after {result['reload']['worker_serving_s']}s")
        result["maps"]["rss_after_reload_bytes"] = maps.envoy.memory().get("VmRSS")
        result["maps"]["rss_peak_bytes"] = maps.envoy.memory().get("VmHWM")

        # Correctness: every request answered 200, and (MAPS) classified.
        for inst in instances:
            res = result[inst.kind]["responses"]
            bad = {k: v for k, v in res.items() if k != "2xx" and v}
            errs = {k: v for k, v in result[inst.kind]["errors"].items() if v}
            if bad or errs or not res.get("2xx"):
                failed = True
                say(f"FAIL {inst.kind}: responses {res}, wrk errors {errs}")
        total = sum(r["requests"] for r in maps.runs)
        if not classes.get("maps") or sum(classes.values()) < total:
            failed = True
            say(f"FAIL maps: class counters {classes} do not account for {total} requests")
        mimic = instances[2]
        mimicked = mimic.envoy.counter("wasmcustom.noop.class.maps.requests")
        if mimicked < sum(r["requests"] for r in mimic.runs):
            failed = True
            say(f"FAIL hostcalls: the filter counted {mimicked} requests")

        none, noop = result["none"]["requests_per_s"], result["noop"]["requests_per_s"]
        mp = result["maps"]["requests_per_s"]
        hc = result["hostcalls"]["requests_per_s"]
        result["ratios"] = {"noop_over_none": noop / none, "maps_over_none": mp / none,
                            "maps_over_noop": mp / noop, "hostcalls_over_noop": hc / noop,
                            "maps_over_hostcalls": mp / hc}
        print_table(result)
    except Exception as e:  # noqa: BLE001 - report, print the logs, stop everything
        failed = True
        say(f"FAIL: {e!r}")
        for inst in instances:
            if inst.envoy.running() or inst.envoy.proc is not None:
                print(f"---- Envoy log ({inst.kind}, last 40 lines) ----")
                print(inst.envoy.log_tail(40))
    finally:
        for inst in instances:
            inst.envoy.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if failed:
        say(f"work directory kept: {workdir}")
        if args.check:
            print("bench-envoy: 0 passed, 1 failed")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    if args.check:
        print("bench-envoy: 1 passed, 0 failed")
    return 0


def print_table(r: dict) -> None:
    mib = 1024 * 1024
    print()
    print(f"Envoy --concurrency 1, wrk -t1 -c{r['connections']} -d{r['duration_s']:.0f}s, "
          f"best of {r['rounds']} interleaved rounds; MAPS policy {r['prefixes']:,} prefixes "
          f"({r['policy_json_bytes'] / mib:.1f} MiB packed JSON)")
    print(f"{'filter':<10}{'req/s':>10}{'vs none':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'RSS MiB':>9}{'peak MiB':>10}{'ready s':>9}")
    for k in CONFIGS:
        x = r[k]
        print(f"{k:<10}{x['requests_per_s']:>10.0f}"
              f"{x['requests_per_s'] / r['none']['requests_per_s']:>8.2f}x"
              f"{x['p50_ms']:>9.3f}{x['p99_ms']:>9.3f}"
              f"{(x['rss_bytes'] or 0) / mib:>9.1f}{(x['rss_peak_bytes'] or 0) / mib:>10.1f}"
              f"{x['ready_s']:>9.2f}")
    print(f"maps / noop: {r['ratios']['maps_over_noop']:.3f}   "
          f"reload of a {r['prefixes']:,}-prefix policy: ECDS applied in "
          f"{r['reload']['ecds_applied_s']:.2f}s, worker serving it after "
          f"{r['reload']['worker_serving_s'] if r['reload']['worker_serving_s'] is None else round(r['reload']['worker_serving_s'], 2)}s")
    print(f"maps classes: {r['maps_classes']}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
