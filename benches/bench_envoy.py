#!/usr/bin/env python3
"""`make bench-envoy`: the cost of the MAPS plugin in a real Envoy, against Envoy's own
IP matcher, at several table sizes (issues 6 and 11).

Envoy processes, each `--concurrency 1`, each with the same HTTP listener and the same
upstream, differing only in their HTTP filters (and, for `iptag`, its routes):

    none       router only (no wasm filter)
    noop       a no-op proxy-wasm filter (benches/noop-filter), then the router
    hostcalls  the same filter configured to make the MAPS plugin's per-request host
               calls and nothing else (no classification): splits the plugin's cost
               into Envoy's host calls and the plugin's own work
    iptag      no wasm: Envoy's `envoy.filters.http.ip_tagging` holding the same prefix
               table as the MAPS policy, with exact MAPS semantics (iptag_table.py:
               nested prefixes flattened into disjoint ranges carrying the longest
               match's outcome, outcomes from `mapsctl classify`), then the router with
               one route per tag (the `maps` edge/backup pair) on `x-envoy-ip-tags`
               and a catch-all route for untagged traffic
    maps       the MAPS plugin holding a generated policy (`mapsctl gen`), compiled
               (`mapsctl compile`, a BytesValue; `--policy-form json`: the packed JSON),
               then the router

for each table size of `--sizes` (`none`, `noop` and `hostcalls` do not depend on it:
they are started once and measured again in every size's rounds). `ip_tagging` refuses
more than 262,144 ranges: a size whose flattened table is larger gets no `iptag`
Envoy, and the output says so ("refused": the range count).

The upstream is a second listener of the same Envoy answering with a `direct_response`
(no other process; its cost is the same in all). The iptag Envoy's tagged routes go
to a second cluster `tagged` with that same upstream address, so Envoy's
`cluster.tagged.upstream_rq_total` counts the requests that took a tagged route at no
per-request cost. The MAPS filter, like the no-op one, is delivered through ECDS from
a file, as `mapsctl envoy-config` does; each request carries a client address in
`x-forwarded-for` (one trusted hop, as the demo policy says), half of them inside the
policy's prefixes, and `:authority` outlook.office365.com (a Microsoft destination).

wrk (one thread, fixed connections, bounded duration) loads each Envoy in turn. Per
size, `--rounds` rounds, each round running every configuration once, back to back
(none, noop, hostcalls, iptag, maps; each after a short warm-up run); a
configuration's figure at a size is its best round of that size (the machine is
shared: the best round is the one least disturbed), so every ratio at a size compares
runs of the same few minutes. Reported per size: requests/s, p50/p99 latency, Envoy's
RSS (after the runs, and its peak), start-up to ready, for the MAPS Envoy the time an
ECDS reload of another policy of the same size takes to be served; the ratios
maps÷iptag, maps÷noop; and the curve of the plugin's per-request cost over sizes.

    python3 benches/bench_envoy.py [--sizes N,N,...] [--duration S] [--warmup S]
                                   [--connections C] [--rounds R] [--json OUT] [--check]

Correctness, in every run (after the measured runs): the flattened table gives
mapsctl's answer for the wrk addresses and both edges of 5,000 sampled ranges; every
configuration answered every request with status 200; the plugin's class counters
account for every request of its runs; and each wrk address sent once to the iptag
and the MAPS Envoys takes a tagged route exactly when mapsctl classifies it `maps`
and raises the plugin's `maps` counter exactly then. `--check` is the quick run of
`make test` (one 10,000-prefix size, 1 s runs; no timing is asserted).

Environment (set by the Makefile): ENVOY, MAPSCTL, PLUGIN_WASM, NOOP_WASM, WRK.
Everything listens on 127.0.0.1; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from envoy import Envoy, EnvoyError  # noqa: E402
from harness import tool_paths, write_atomic  # noqa: E402
from links import free_port  # noqa: E402

import iptag_table  # noqa: E402

HOST = "outlook.office365.com"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
BYTES_VALUE = "type.googleapis.com/google.protobuf.BytesValue"
ECDS_STAT = "extension_config_discovery.http_filter.{name}."
# Measured in this order in every round (the size-independent ones first).
CONFIGS = ("none", "noop", "hostcalls", "iptag", "maps")
FIXED = ("none", "noop", "hostcalls")
DEFAULT_SIZES = "10000,200000,1000000,2000000"
TAG_HEADER = "x-envoy-ip-tags"
TAGGED_CLUSTER = "tagged"
# The curve of the plugin's per-request cost is relative to this size (issue 11: flat
# from 200k prefixes up).
CURVE_BASE = 200_000


def say(msg: str) -> None:
    print(f"bench-envoy: {msg}", flush=True)


# ---- Envoy --------------------------------------------------------------------------
class BenchEnvoy(Envoy):
    """e2e's Envoy, started with `--concurrency 1` and timed from start to ready."""

    def start(self, timeout: float = 300.0) -> "BenchEnvoy":  # type: ignore[override]
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

    def admin(self, path: str, method: str = "GET", timeout: float = 60.0) -> str:
        # The admin interface is served by Envoy's main thread, which also configures
        # the main thread's wasm VM on an ECDS reload: with a 1M-prefix policy that
        # holds every admin answer for seconds (a 5 s timeout was seen to expire).
        return super().admin(path, method, timeout)

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


# ---- configurations -----------------------------------------------------------------
# How the MAPS Envoy gets its policy: "compiled" (default: `mapsctl compile`, a
# BytesValue of the file, tables adopted without a rebuild) or "json" (the packed
# policy JSON as a StringValue, validated and built in every VM). Set by --policy-form.
POLICY_FORM = {"form": "compiled"}


def maps_configuration(policy: Path) -> dict:
    """The MAPS plugin's `configuration` (a protobuf Any) for a policy file, in the
    form --policy-form chose."""
    if POLICY_FORM["form"] == "json":
        return {"@type": STRING_VALUE, "value": policy.read_text()}
    compiled = policy.with_suffix(".mapc")
    if not compiled.exists():
        t0 = time.monotonic()
        subprocess.run([tool_paths()["mapsctl"], "compile", "--policy", str(policy),
                        "--out", str(compiled)], check=True, capture_output=True, timeout=900)
        say(f"mapsctl compile {policy.name}: {compiled.stat().st_size:,} bytes "
            f"in {time.monotonic() - t0:.1f}s")
    return {"@type": BYTES_VALUE,
            "value": base64.b64encode(compiled.read_bytes()).decode("ascii")}


def string_value(text: str) -> dict:
    return {"@type": STRING_VALUE, "value": text}


def wasm_filter(name: str, wasm: Path, configuration: dict) -> dict:
    return {
        "name": name,
        "root_id": name,
        "vm_config": {
            "vm_id": name,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm)}},
        },
        "configuration": configuration,
        "failure_policy": "FAIL_RELOAD",
    }


def ecds_document(name: str, wasm: Path, configuration: dict, version: str) -> dict:
    return {
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": {"@type": WASM_TYPE, "config": wasm_filter(name, wasm, configuration)},
        }],
    }


def ecds_filter(name: str, path: Path) -> dict:
    """The listener's entry for a wasm filter delivered through ECDS from `path`."""
    return {
        "name": name,
        "config_discovery": {
            "config_source": {"path_config_source": {"path": str(path)},
                              "resource_api_version": "V3"},
            "type_urls": [WASM_TYPE],
        },
    }


def iptag_filter(table: iptag_table.IptagTable) -> dict:
    return {
        "name": "envoy.filters.http.ip_tagging",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ip_tagging.v3.IPTagging",
            # The trusted client address (x-forwarded-for, one hop), whatever its kind.
            "request_type": "BOTH",
            "ip_tags": table.envoy_ip_tags(),
        },
    }


def iptag_routes(table: iptag_table.IptagTable) -> list:
    """One route per tag (an address has at most one: the ranges are disjoint), then
    the catch-all for untagged traffic."""
    routes = [{"match": {"prefix": "/", "headers": [
                  {"name": TAG_HEADER, "string_match": {"exact": tag}}]},
               "route": {"cluster": TAGGED_CLUSTER, "timeout": "5s"}}
              for tag in sorted(table.cidrs)]
    return routes + [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}]


def bootstrap(listen: int, upstream: int, admin: int, node: str, filters: list,
              routes: list | None = None) -> dict:
    """The whole Envoy configuration: the measured listener (`filters`, then the router,
    `routes` or everything to `upstream`), the upstream listener and its clusters."""
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

    def addr(port: int) -> dict:
        return {"socket_address": {"address": "127.0.0.1", "port_value": port}}

    def cluster(name: str) -> dict:
        return {"name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": addr(upstream)}}]}]}}

    if routes is None:
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}]
    clusters = [cluster("upstream")]
    if any(r.get("route", {}).get("cluster") == TAGGED_CLUSTER for r in routes):
        clusters.append(cluster(TAGGED_CLUSTER))
    return {
        "node": {"id": f"bench-{node}", "cluster": "bench"},
        "admin": {"address": addr(admin)},
        "static_resources": {
            "listeners": [
                {"name": "bench", "address": addr(listen), "filter_chains": [{"filters": [
                    hcm("bench", routes, filters)]}]},
                {"name": "upstream", "address": addr(upstream), "filter_chains": [{"filters": [
                    hcm("upstream", [{"match": {"prefix": "/"},
                                      "direct_response": {"status": 200,
                                                          "body": {"inline_string": "ok\n"}}}],
                        [])]}]},
            ],
            "clusters": clusters,
        },
    }


class Instance:
    """One configuration: its files, ports and Envoy. `wasm` + `configuration`: a wasm
    filter through ECDS; `table`: the ip_tagging filter and tag routes; else none."""

    def __init__(self, kind: str, workdir: Path, binary: str, wasm: Path | None = None,
                 configuration: dict | None = None,
                 table: iptag_table.IptagTable | None = None) -> None:
        self.kind = kind
        self.dir = workdir / kind
        (self.dir / "xds").mkdir(parents=True, exist_ok=True)
        self.port, self.upstream, self.admin = free_port(), free_port(), free_port()
        self.filter = "maps" if kind == "maps" else "noop"
        self.wasm = wasm
        self.ecds = self.dir / "xds" / f"{self.filter}.json" if wasm else None
        filters, routes = [], None
        if wasm is not None and self.ecds is not None:
            write_atomic(self.ecds, json.dumps(
                ecds_document(self.filter, wasm, configuration or string_value(""), "v1")))
            filters = [ecds_filter(self.filter, self.ecds)]
        if table is not None:
            filters, routes = [iptag_filter(table)], iptag_routes(table)
        conf = self.dir / "envoy.json"
        conf.write_text(json.dumps(bootstrap(self.port, self.upstream, self.admin,
                                             kind, filters, routes)))
        self.config_bytes = conf.stat().st_size
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

    def responses(self) -> dict[str, int]:
        stats = self.envoy.stats(r"^http\.bench\.downstream_rq_[0-9]xx$")
        return {k.rsplit("_", 1)[-1]: int(v) for k, v in stats.items()}


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


def request(url: str, src: str) -> int:
    """One request as client `src`; its status (0: no answer)."""
    req = urllib.request.Request(url, headers={"Host": HOST, "X-Forwarded-For": src})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return 0


# ---- reload -------------------------------------------------------------------------
def reload_time(inst: Instance, policy: Path, timeout: float = 300.0) -> dict:
    """Writes another policy into the MAPS ECDS file; seconds until Envoy has applied
    it (`config_reload` rises) and until the worker's VM serves with it (the plugin's
    `maps.policy.loaded` counter has risen by as much as at start-up)."""
    assert inst.ecds is not None and inst.wasm is not None
    env = inst.envoy
    stat = ECDS_STAT.format(name=inst.filter)
    reloads0 = env.counter(stat + "config_reload")
    loaded0 = env.counter("wasmcustom.maps.policy.loaded")
    per_load = max(1, loaded0)  # VMs configured per policy (main thread + worker)
    document = json.dumps(ecds_document(inst.filter, inst.wasm, maps_configuration(policy), "v2"))
    t0 = time.monotonic()
    write_atomic(inst.ecds, document)
    applied = env.wait_for("ECDS config_reload",
                           lambda: env.counter(stat + "config_reload") > reloads0,
                           timeout=timeout, step=0.02)
    t_applied = time.monotonic() - t0
    served = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        # The worker's VM is configured when a request reaches it: send one, as a
        # client outside every prefix (its answer does not matter).
        request(inst.url, "192.0.2.1")
        if env.counter("wasmcustom.maps.policy.loaded") >= loaded0 + per_load:
            served = time.monotonic() - t0
            break
        time.sleep(0.02)
    return {"ecds_applied_s": t_applied, "worker_serving_s": served, "config_reload": applied,
            "policy_loaded_before": loaded0,
            "policy_loaded_after": env.counter("wasmcustom.maps.policy.loaded"),
            "rejected": env.counter(stat + "update_rejected")}


# ---- one size -------------------------------------------------------------------------
def figures(inst: Instance, runs: list[dict], ready: dict) -> dict:
    """A configuration's figures at one size: its best run of `runs`."""
    best = max(runs, key=lambda r: r["requests_per_s"])
    mem = inst.envoy.memory()
    return {
        "requests_per_s": best["requests_per_s"],
        "p50_ms": best["latency_us"]["p50"] / 1e3,
        "p90_ms": best["latency_us"]["p90"] / 1e3,
        "p99_ms": best["latency_us"]["p99"] / 1e3,
        "rounds_requests_per_s": [r["requests_per_s"] for r in runs],
        "errors": {k: sum(r["errors"][k] for r in runs) for k in best["errors"]},
        "requests": sum(r["requests"] for r in runs),
        "ready_s": inst.envoy.ready_s,
        "rss_ready_bytes": ready.get("VmRSS"),
        "rss_bytes": mem.get("VmRSS"),
        "rss_peak_bytes": mem.get("VmHWM"),
    }


def exact_pass(iptag: Instance | None, maps: Instance, mapsctl: str, policy: Path,
               addrs: list[str]) -> dict:
    """Each address once to the iptag and the MAPS Envoys, those mapsctl classifies
    `maps` first, then the others: the tagged route (iptag) and the plugin's `maps`
    counter must rise by exactly the first group's size and not at all for the second."""
    decisions = iptag_table.classify(mapsctl, policy, HOST, addrs)
    groups = {"maps": [a for a, d in zip(addrs, decisions) if d.get("class") == "maps"]}
    groups["other"] = [a for a, d in zip(addrs, decisions) if d.get("class") != "maps"]
    out: dict = {"addresses": len(addrs), "problems": []}
    for name, group in groups.items():
        want = len(group) if name == "maps" else 0
        envoys = [("maps", maps, "wasmcustom.maps.class.maps.requests")]
        if iptag is not None:
            envoys.append(("iptag", iptag, f"cluster.{TAGGED_CLUSTER}.upstream_rq_total"))
        for kind, inst, counter in envoys:
            before = inst.envoy.counter(counter)
            bad = sum(request(inst.url, a) != 200 for a in group)
            got = inst.envoy.counter(counter) - before
            out[f"{kind}_{name}"] = {"sent": len(group), "counted": got, "non_200": bad}
            if got != want or bad:
                out["problems"].append(
                    f"{kind}: {len(group)} addresses mapsctl classifies "
                    f"{'maps' if name == 'maps' else 'not maps'}: {counter} rose by {got} "
                    f"(want {want}), {bad} answers not 200")
    return out


def run_size(n: int, args, tools: dict, wrk_bin: str, workdir: Path,
             fixed: list[Instance]) -> tuple[dict, list[str]]:
    """Everything measured at one table size; (its result, failures)."""
    failures: list[str] = []
    sdir = workdir / f"size-{n}"
    sdir.mkdir()
    res: dict = {"prefixes": n, "timing_s": {}}
    t_size = time.monotonic()
    # Two policies of the same size (different seeds): the second is the reload. The
    # client addresses come with the first: `mapsctl gen` writes a trace for it (half
    # the sources inside its prefixes).
    policies = {}
    t0 = time.monotonic()
    for seed in (2026, 2027):
        path = sdir / f"policy-{seed}.json"
        trace = ["--trace-out", str(sdir / "trace.jsonl"),
                 "--flows", str(args.addresses)] if seed == 2026 else []
        subprocess.run([tools["mapsctl"], "gen", "--prefixes", str(n), "--seed", str(seed),
                        "--out", str(path), *trace], check=True, capture_output=True, timeout=600)
        policies[seed] = path
    res["policy_json_bytes"] = policies[2026].stat().st_size
    res["timing_s"]["gen"] = time.monotonic() - t0
    say(f"{n:,} prefixes: two policies by mapsctl gen in {res['timing_s']['gen']:.1f}s, "
        f"{res['policy_json_bytes']:,} bytes each")
    addrs = [json.loads(line)["src"]
             for line in (sdir / "trace.jsonl").read_text().splitlines() if line]
    script = sdir / "requests.lua"
    script.write_text(WRK_SCRIPT % {"addrs": ",".join(f'"{a}"' for a in addrs), "host": HOST})

    # The ip_tagging table, checked against mapsctl before any Envoy sees it.
    table = iptag_table.build(tools["mapsctl"], policies[2026], HOST)
    t0 = time.monotonic()
    res["iptag_table"] = table.summary()
    res["iptag_table"]["checked"] = iptag_table.check(tools["mapsctl"], policies[2026], HOST,
                                                      table, addrs)
    res["timing_s"]["iptag_table"] = table.build_s + time.monotonic() - t0
    say(f"{n:,} prefixes: ip_tagging table of {table.ranges:,} CIDR ranges, {len(table.cidrs)} "
        f"tags ({table.intervals:,} disjoint ranges of constant longest match) in "
        f"{table.build_s:.1f}s; mapsctl agrees on {res['iptag_table']['checked']['addresses']:,} "
        "addresses")
    if not table.fits:
        res["iptag"] = {"refused": f"{table.ranges:,} ranges > "
                                   f"{iptag_table.IPTAG_MAX_RANGES:,} (Envoy's ip_tagging limit)",
                        "ranges": table.ranges}
        say(f"{n:,} prefixes: no iptag configuration: {res['iptag']['refused']}")

    binary = tools["envoy"]
    own: list[Instance] = []
    try:
        if table.fits:
            own.append(Instance("iptag", sdir, binary, table=table))
            res["iptag_config_bytes"] = own[-1].config_bytes
        del table  # the Envoy configuration holds it now; large at 1M+ prefixes
        maps = Instance("maps", sdir, binary, Path(tools["plugin"]),
                        maps_configuration(policies[2026]))
        own.append(maps)
        ready = {}
        for inst in own:
            inst.envoy.start()
            ready[inst.kind] = inst.envoy.memory()
            say(f"{n:,} prefixes: {inst.kind} Envoy pid {inst.envoy.pid} ready in "
                f"{inst.envoy.ready_s:.2f}s, RSS {ready[inst.kind].get('VmRSS', 0) / 2**20:.0f} MiB")
        for inst in fixed:
            ready[inst.kind] = inst.memory_ready
        order = fixed + own
        runs: dict[str, list[dict]] = {inst.kind: [] for inst in order}
        t0 = time.monotonic()
        for rnd in range(args.rounds):
            for inst in order:
                if args.warmup > 0:
                    wrk(wrk_bin, script, inst.url, args.warmup, args.connections)
                r = wrk(wrk_bin, script, inst.url, args.duration, args.connections)
                runs[inst.kind].append(r)
                say(f"{n:,} round {rnd + 1} {inst.kind:9}: {r['requests_per_s']:9.0f} req/s  "
                    f"p50 {r['latency_us']['p50'] / 1e3:.3f} ms  "
                    f"p99 {r['latency_us']['p99'] / 1e3:.3f} ms  errors {r['errors']}")
        res["timing_s"]["runs"] = time.monotonic() - t0
        for inst in order:
            res[inst.kind] = figures(inst, runs[inst.kind], ready[inst.kind])
        res["maps_classes"] = maps.class_counts()

        # Correctness of what was measured.
        for inst in order:
            responses = inst.responses()
            bad = {k: v for k, v in responses.items() if k != "2xx" and v}
            errs = {k: v for k, v in res[inst.kind]["errors"].items() if v}
            if inst.kind in FIXED:
                # Answered since it started, every size: only this size's runs count.
                bad = {}
            if bad or errs or not responses.get("2xx"):
                failures.append(f"{inst.kind}: responses {responses}, wrk errors {errs}")
        classes = res["maps_classes"]
        if not classes.get("maps") or sum(classes.values()) < res["maps"]["requests"]:
            failures.append(f"maps: class counters {classes} do not account for "
                            f"{res['maps']['requests']} requests")
        res["exact_pass"] = exact_pass(own[0] if own[0].kind == "iptag" else None, maps,
                                       tools["mapsctl"], policies[2026], addrs)
        failures += [f"exact pass: {p}" for p in res["exact_pass"]["problems"]]
        if "iptag" in res and "requests_per_s" in res["iptag"]:
            tagged = own[0].envoy.counter(f"cluster.{TAGGED_CLUSTER}.upstream_rq_total")
            res["iptag"]["tagged_requests"] = tagged
            res["iptag"]["responses"] = own[0].responses()

        # The policy's load time inside Envoy, beyond a no-op filter's; then a reload.
        res["maps_load_over_noop_s"] = maps.envoy.ready_s - fixed[1].envoy.ready_s
        res["reload"] = reload_time(maps, policies[2027])
        say(f"{n:,} prefixes: reload: ECDS applied in {res['reload']['ecds_applied_s']:.2f}s, "
            f"worker serving the new policy after {res['reload']['worker_serving_s']}s")
        mem = maps.envoy.memory()
        res["maps"]["rss_after_reload_bytes"] = mem.get("VmRSS")
        res["maps"]["rss_peak_bytes"] = mem.get("VmHWM")
        res["ratios"] = ratios(res, runs)
    except Exception:
        for inst in own:
            print(f"---- Envoy log ({inst.kind}, {n:,} prefixes, last 40 lines) ----")
            print(inst.envoy.log_tail(40))
        raise
    finally:
        for inst in own:
            inst.envoy.stop()
        for p in policies.values():
            p.unlink(missing_ok=True)
    res["timing_s"]["total"] = time.monotonic() - t_size
    return res, failures


def ratios(res: dict, runs: dict[str, list[dict]]) -> dict:
    """Best-round ratios at one size, and maps÷iptag, maps÷noop round by round (the
    runs of one round are seconds apart)."""
    rps = {k: res[k]["requests_per_s"] for k in runs}
    out = {"noop_over_none": rps["noop"] / rps["none"], "maps_over_none": rps["maps"] / rps["none"],
           "maps_over_noop": rps["maps"] / rps["noop"],
           "hostcalls_over_noop": rps["hostcalls"] / rps["noop"],
           "maps_over_hostcalls": rps["maps"] / rps["hostcalls"]}
    per_round = {"maps_over_noop": [m["requests_per_s"] / o["requests_per_s"]
                                    for m, o in zip(runs["maps"], runs["noop"])]}
    if "iptag" in runs:
        out["maps_over_iptag"] = rps["maps"] / rps["iptag"]
        out["iptag_over_none"] = rps["iptag"] / rps["none"]
        out["iptag_over_noop"] = rps["iptag"] / rps["noop"]
        per_round["maps_over_iptag"] = [m["requests_per_s"] / i["requests_per_s"]
                                        for m, i in zip(runs["maps"], runs["iptag"])]
    out["rounds"] = per_round
    out["median_round"] = {k: statistics.median(v) for k, v in per_round.items()}
    return out


def curve(by_size: dict) -> dict:
    """The plugin's per-request cost against table size, relative to CURVE_BASE (or the
    smallest size measured when it was not): requests/s as measured, and maps÷noop
    (the no-op filter measured in the same rounds: a control for drift of the machine
    between sizes, at the price of a second measurement's noise). Over the sizes from
    the base up, `flat_spread` is (max - min) / max of the MAPS Envoy's requests/s
    (the per-request cost as measured), `flat_spread_vs_noop` the same of maps÷noop."""
    sizes = sorted(int(k) for k, v in by_size.items() if "ratios" in v)
    if not sizes:
        return {}
    base = CURVE_BASE if CURVE_BASE in sizes else sizes[0]
    b = by_size[str(base)]
    rows = []
    for n in sizes:
        s = by_size[str(n)]
        rows.append({
            "prefixes": n,
            "maps_requests_per_s": s["maps"]["requests_per_s"],
            "maps_us_per_request": 1e6 / s["maps"]["requests_per_s"],
            "maps_over_noop": s["ratios"]["maps_over_noop"],
            "rps_over_base": s["maps"]["requests_per_s"] / b["maps"]["requests_per_s"],
            "maps_over_noop_over_base": s["ratios"]["maps_over_noop"] / b["ratios"]["maps_over_noop"],
        })
    def spread(key: str) -> float | None:
        up = [r[key] for r in rows if r["prefixes"] >= base]
        return (max(up) - min(up)) / max(up) if len(up) > 1 else None

    return {"base": base, "rows": rows,
            "flat_sizes": [r["prefixes"] for r in rows if r["prefixes"] >= base],
            "flat_spread": spread("maps_requests_per_s"),
            "flat_spread_vs_noop": spread("maps_over_noop")}


# ---- main ---------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES,
                    help=f"table sizes, prefixes, comma-separated (default {DEFAULT_SIZES})")
    # 17 runs per round at the default sizes (iptag only where it fits): 3 rounds of
    # 6 s runs after 1 s warm-ups keep the whole of `make bench-envoy` near 10 minutes
    # with the policies, tables, start-ups and reloads of the 1M and 2M sizes.
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--addresses", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--policy-form", choices=("compiled", "json"), default="compiled",
                    help="the MAPS Envoy's policy: compiled (mapsctl compile, default) or "
                         "the packed JSON")
    ap.add_argument("--check", action="store_true",
                    help="quick correctness run (make test): one 10,000-prefix size, 1 s runs")
    args = ap.parse_args()
    POLICY_FORM["form"] = args.policy_form
    if args.check:
        args.sizes, args.duration, args.warmup, args.rounds = "10000", 1.0, 0.0, 1
    try:
        sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        say(f"--sizes {args.sizes!r}: want prefix counts separated by commas, e.g. 10000,200000")
        return 2

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
    fixed: list[Instance] = []
    failures: list[str] = []
    t_all = time.monotonic()
    result: dict = {"sizes": sizes, "duration_s": args.duration, "warmup_s": args.warmup,
                    "connections": args.connections, "rounds": args.rounds,
                    "addresses": args.addresses, "wrk_threads": 1, "envoy_concurrency": 1,
                    "iptag_max_ranges": iptag_table.IPTAG_MAX_RANGES, "by_size": {},
                    "policy_form": args.policy_form}
    try:
        binary = tools["envoy"]
        fixed = [
            Instance("none", workdir, binary),
            Instance("noop", workdir, binary, noop_wasm, string_value("")),
            Instance("hostcalls", workdir, binary, noop_wasm, string_value("hostcalls")),
        ]
        for inst in fixed:
            inst.envoy.start()
            inst.memory_ready = inst.envoy.memory()
            say(f"{inst.kind}: Envoy pid {inst.envoy.pid} ready in {inst.envoy.ready_s:.2f}s")
        for n in sizes:
            res, fails = run_size(n, args, tools, wrk_bin, workdir, fixed)
            result["by_size"][str(n)] = res
            failures += [f"{n:,} prefixes: {f}" for f in fails]
            print_size(result, res)
        # The size-independent Envoys answered every request of every size.
        for inst in fixed:
            responses = inst.responses()
            bad = {k: v for k, v in responses.items() if k != "2xx" and v}
            if bad or not responses.get("2xx"):
                failures.append(f"{inst.kind}: responses {responses}")
        mimicked = fixed[2].envoy.counter("wasmcustom.noop.class.maps.requests")
        sent = sum(s["hostcalls"]["requests"] for s in result["by_size"].values())
        if mimicked < sent:
            failures.append(f"hostcalls: the filter counted {mimicked} of {sent} requests")
        result["curve"] = curve(result["by_size"])
        print_curve(result["curve"])
    except Exception as e:  # noqa: BLE001 - report, print the logs, stop everything
        failures.append(f"{e!r}")
        for inst in fixed:
            if inst.envoy.proc is not None:
                print(f"---- Envoy log ({inst.kind}, last 40 lines) ----")
                print(inst.envoy.log_tail(40))
    finally:
        for inst in fixed:
            inst.envoy.stop()
    result["total_s"] = time.monotonic() - t_all
    say(f"total {result['total_s']:.0f}s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if failures:
        for f in failures:
            say(f"FAIL {f}")
        say(f"work directory kept: {workdir}")
        if args.check:
            print("bench-envoy: 0 passed, 1 failed")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    if args.check:
        print("bench-envoy: 1 passed, 0 failed")
    return 0


def print_size(r: dict, s: dict) -> None:
    mib = 1024 * 1024
    print()
    print(f"Envoy --concurrency 1, wrk -t1 -c{r['connections']} -d{r['duration_s']:.0f}s, "
          f"best of {r['rounds']} interleaved rounds; {s['prefixes']:,} prefixes "
          f"(MAPS: {s['policy_json_bytes'] / mib:.1f} MiB packed JSON; ip_tagging: "
          f"{s['iptag_table']['ranges']:,} ranges, {s['iptag_table']['tags']} tags)")
    print(f"{'filter':<10}{'req/s':>10}{'vs none':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'RSS MiB':>9}{'peak MiB':>10}{'ready s':>9}")
    for k in CONFIGS:
        x = s.get(k)
        if x is None:
            continue
        if "refused" in x:
            print(f"{k:<10}  refused: {x['refused']}")
            continue
        print(f"{k:<10}{x['requests_per_s']:>10.0f}"
              f"{x['requests_per_s'] / s['none']['requests_per_s']:>8.2f}x"
              f"{x['p50_ms']:>9.3f}{x['p99_ms']:>9.3f}"
              f"{(x['rss_bytes'] or 0) / mib:>9.1f}{(x['rss_peak_bytes'] or 0) / mib:>10.1f}"
              f"{x['ready_s']:>9.2f}")
    ra = s["ratios"]
    vs_iptag = (f"maps / iptag: {ra['maps_over_iptag']:.3f} (median round "
                f"{ra['median_round']['maps_over_iptag']:.3f})   " if "maps_over_iptag" in ra else "")
    print(f"{vs_iptag}maps / noop: {ra['maps_over_noop']:.3f} (median round "
          f"{ra['median_round']['maps_over_noop']:.3f})")
    rl = s["reload"]
    served = rl["worker_serving_s"]
    print(f"reload of a {s['prefixes']:,}-prefix policy: ECDS applied in "
          f"{rl['ecds_applied_s']:.2f}s, worker serving it after "
          f"{'never' if served is None else f'{served:.2f}s'}")
    print(f"maps classes: {s['maps_classes']}; time at this size: "
          + ", ".join(f"{k} {v:.0f}s" for k, v in s["timing_s"].items()))
    print()


def print_curve(c: dict) -> None:
    if not c:
        return
    print(f"The plugin's per-request cost against table size (relative to {c['base']:,}):")
    print(f"{'prefixes':>10}{'maps req/s':>12}{'µs/req':>8}{'÷ base':>8}{'maps/noop':>11}{'÷ base':>8}")
    for r in c["rows"]:
        print(f"{r['prefixes']:>10,}{r['maps_requests_per_s']:>12.0f}{r['maps_us_per_request']:>8.1f}"
              f"{r['rps_over_base']:>8.3f}{r['maps_over_noop']:>11.3f}"
              f"{r['maps_over_noop_over_base']:>8.3f}")
    if c["flat_spread"] is not None:
        print(f"spread over {', '.join(f'{n:,}' for n in c['flat_sizes'])}: maps req/s "
              f"{c['flat_spread'] * 100:.1f} %, maps/noop {c['flat_spread_vs_noop'] * 100:.1f} %")
    print()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
