#!/usr/bin/env python3
"""Writes the `make bench` section of benches/RESULTS.md and the throughput chart.

Reads what the runs of `make bench` left behind:

    --criterion DIR   criterion's estimates (DIR/**/new/{benchmark,estimates}.json) of
                      `make bench-lpm`
    --results DIR     sweep.json (lpm-sweep), lpm-bgp.json (`lpm-report --bgp-json`: the
                      BGP table's size and memory), mapsctl-bench.json (`mapsctl bench --json`),
                      wasm.json (bench_wasm.py), envoy.json (bench_envoy.py)

and replaces the text between `<!-- bench:begin -->` and `<!-- bench:end -->` in
`--write FILE` (appending the section when the markers are absent): everything else in
the file (the LPM section that `lpm-report` writes, hand-written analysis) is left
alone. `--chart FILE` writes an SVG of lookup throughput against table size per
implementation (hand-written SVG: no plotting library needed). A missing input leaves
its rows "not measured"; nothing here fails on a partial run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
from pathlib import Path

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
MIB = 1024 * 1024


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def criterion(root: Path) -> dict[str, float]:
    """Benchmark id -> ns per element (criterion's slope, else its mean)."""
    out: dict[str, float] = {}
    for bench in root.glob("**/new/benchmark.json"):
        b, e = load(bench), load(bench.parent / "estimates.json")
        if not b or not e:
            continue
        est = (e.get("slope") or e.get("mean") or {}).get("point_estimate")
        elems = ((b.get("throughput") or {}).get("Elements")) or 1
        if est is not None and b.get("full_id"):
            out[b["full_id"]] = est / elems
    return out


def cmd(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(results: Path | None = None) -> list[tuple[str, str]]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / MIB:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    # The runs' date: the newest of their outputs (the report can be rewritten later).
    stamps = [p.stat().st_mtime for p in results.glob("*.json")] if results else []
    when = (datetime.datetime.fromtimestamp(max(stamps), datetime.timezone.utc) if stamps
            else datetime.datetime.now(datetime.timezone.utc))
    envoy = os.environ.get("ENVOY", "")
    m = re.search(r"/(\d+\.\d+\.\d+)/", cmd(envoy, "--version")) if envoy else None
    try:
        load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load_avg = "?"
    return [
        ("date of the runs", when.strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}, `nproc` = {os.cpu_count()}, {mem} RAM, {platform.machine()}"),
        ("rustc", cmd("rustc", "--version")),
        ("Node (V8)", cmd("node", "--version")),
        ("Envoy", m.group(1) if m else "?"),
        ("load average at report time", load_avg),
    ]


def f(x: float | None, fmt: str = "{:.2f}", none: str = "n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**missed**")


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# ---- chart ------------------------------------------------------------------------------
COLOURS = {"maps": "#d62728", "dir24-8": "#1f77b4", "prefix-trie": "#2ca02c",
           "ip-network-table": "#9467bd", "maps (wasmtime)": "#ff7f0e", "maps (V8)": "#8c564b"}


def chart(sweep: dict, wasm: dict | None) -> str:
    """Two panels (IPv4, IPv6): million lookups per second (log) against prefixes (log)."""
    W, H, PW, PH, L, T = 920, 430, 380, 280, 70, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">LPM lookup throughput '
           'against table size (one core; half the lookups hit)</text>']
    legend: dict[str, str] = {}
    for panel, fam in enumerate(("v4", "v6")):
        rows = sweep.get(fam, [])
        if not rows:
            continue
        x0 = L + panel * (PW + 80)
        series: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            series.setdefault(r["impl"], []).append((r["prefixes"], 1e3 / r["ns_per_lookup"]))
        # wasm points at the largest size (from bench_wasm).
        if wasm:
            n = max(r["prefixes"] for r in rows)
            for eng, label in (("wasmtime", "maps (wasmtime)"), ("node", "maps (V8)")):
                c = (wasm.get("best", {}).get(eng) or {}).get(fam)
                if c and c.get("prefixes") == n:
                    series[label] = [(n, 1e3 / c["ns_per_op"])]
        xs = [p for s in series.values() for p, _ in s]
        ys = [v for s in series.values() for _, v in s]
        lx0, lx1 = math.log10(min(xs)) - 0.15, math.log10(max(xs)) + 0.15
        ly0 = math.floor(math.log10(min(ys)) * 2) / 2
        ly1 = math.ceil(math.log10(max(ys)) * 2) / 2

        def px(v: float) -> float:
            return x0 + (math.log10(v) - lx0) / (lx1 - lx0) * PW

        def py(v: float) -> float:
            return T + PH - (math.log10(v) - ly0) / (ly1 - ly0) * PH

        out.append(f'<rect x="{x0}" y="{T}" width="{PW}" height="{PH}" fill="none" stroke="#444"/>')
        out.append(f'<text x="{x0 + PW / 2}" y="{T - 8}" text-anchor="middle" font-size="13">'
                   f'{"IPv4" if fam == "v4" else "IPv6"}</text>')
        e = ly0
        while e <= ly1 + 1e-9:
            for m in (1, 2, 5):
                v = m * 10 ** math.floor(e)
                if ly0 <= math.log10(v) <= ly1 + 1e-9 and (m == 1 or ly1 - ly0 <= 3):
                    y = py(v)
                    out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PW}" y2="{y:.1f}" '
                               'stroke="#ddd"/>')
                    out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
            e += 1
        for n in sorted(set(xs)):
            x = px(n)
            out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + PH}" stroke="#eee"/>')
            label = f"{n // 1000}k" if n < 1_000_000 else f"{n / 1e6:g}M"
            out.append(f'<text x="{x:.1f}" y="{T + PH + 16}" text-anchor="middle">{label}</text>')
        out.append(f'<text x="{x0 + PW / 2}" y="{T + PH + 34}" text-anchor="middle">prefixes</text>')
        if panel == 0:
            out.append(f'<text transform="translate({x0 - 48},{T + PH / 2}) rotate(-90)" '
                       'text-anchor="middle">million lookups per second (log)</text>')
        for k, (name, pts) in enumerate(series.items()):
            col = COLOURS.get(name, "#333")
            pts.sort()
            path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in pts)
            if len(pts) > 1:
                out.append(f'<polyline points="{path}" fill="none" stroke="{col}" stroke-width="2"/>')
            for a, b in pts:
                shape = (f'<rect x="{px(a) - 4:.1f}" y="{py(b) - 4:.1f}" width="8" height="8" '
                         f'fill="{col}"/>' if "(" in name else
                         f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3.5" fill="{col}"/>')
                out.append(shape)
            legend[name] = col
    # One legend for both panels, under them.
    x, y = L, T + PH + 62
    for name, col in legend.items():
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{col}"/>')
        out.append(f'<text x="{x + 14}" y="{y}">{name}</text>')
        x += 24 + 7 * len(name)
    out.append(f'<text x="{L}" y="{y + 20}" fill="#555">lines: native (lpm-sweep); squares: '
               'the maps table inside WebAssembly at the largest size (bench_wasm.py)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def envoy_at(env: dict | None, n: int) -> dict | None:
    """The figures at table size `n` of an envoy.json, per-size (issue 11) or from
    before (one size, at the top level)."""
    if not env:
        return None
    if "by_size" in env:
        return env["by_size"].get(str(n))
    return env if env.get("prefixes") == n else None


ENVOY_LABELS = (("none", "no wasm filter"), ("noop", "no-op proxy-wasm filter"),
                ("hostcalls", "no-op filter making the plugin's host calls"),
                ("iptag", "`ip_tagging` + tag routes (no wasm)"),
                ("maps", "MAPS plugin"))
# "Flat" (issue 11 sets no figure): the MAPS Envoy's requests/s at 200k..2M prefixes
# within this fraction of each other, about the run-to-run noise of this machine.
FLAT_SPREAD = 0.05


def envoy_section(env: dict | None) -> list[str]:
    s = ["### In Envoy (`make bench-envoy`)", ""]
    if not env or not ("by_size" in env or "ratios" in env):
        return s + ["Not measured in this run.", ""]
    if "by_size" not in env:
        return s + envoy_single(env)
    sizes = [env["by_size"][str(n)] for n in env["sizes"] if str(n) in env["by_size"]]
    if not sizes:
        return s + ["Not measured in this run.", ""]
    limit = env.get("iptag_max_ranges", 262_144)
    s.append(
        f"Envoy {dict(machine()).get('Envoy', '')} `--concurrency 1`; wrk "
        f"`-t1 -c{env['connections']} -d{env['duration_s']:.0f}s` on 127.0.0.1 (each run "
        f"after a {env.get('warmup_s', 0):.0f} s warm-up run). Per table size "
        f"{env['rounds']} round{'s' if env['rounds'] != 1 else ''}, each running every "
        "configuration once, back to back; a "
        "figure is the configuration's best round at that size, so every ratio compares "
        "runs of the same few minutes (the no filter, no-op and host-call Envoys do not "
        "depend on the table: started once, measured again in every size's rounds). "
        "Upstream: a second listener of the same Envoy answering with a `direct_response`. "
        f"MAPS: the plugin holding a policy of that many prefixes (`mapsctl gen`), "
        f"{'compiled (`mapsctl compile`, a BytesValue)' if env.get('policy_form') == 'compiled' else 'as packed JSON'}, "
        "through ECDS. `ip_tagging`: Envoy's built-in LC-trie holding the same table with "
        "exact MAPS semantics (nested prefixes of different outcome flattened into disjoint "
        "ranges carrying the longest match's outcome, outcomes from `mapsctl classify`), "
        "one route per tag (a `maps` decision's edge and backup) on `x-envoy-ip-tags` and "
        f"a catch-all; Envoy refuses more than {limit:,} ranges. Requests carry a client "
        "address in `x-forwarded-for` (half of them inside the table) and `:authority` "
        "outlook.office365.com. Checked in the same run: the flattened table gives "
        "`mapsctl`'s answer, and each address sent once takes a tagged route exactly when "
        "the plugin counts it `maps`.")
    s.append("")
    s.append("| prefixes | filter | requests/s | vs no filter | vs no-op | p50 | p99 | "
             "Envoy RSS | peak RSS | start → ready |")
    s.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for z in sizes:
        first = True
        for k, label in ENVOY_LABELS:
            x = z.get(k)
            if x is None:
                continue
            cell = f"{z['prefixes']:,}" if first else ""
            first = False
            if "refused" in x:
                s.append(f"| {cell} | {label} | refused: {x.get('ranges', 0):,} ranges > "
                         f"{limit:,} | | | | | | | |")
                continue
            s.append(f"| {cell} | {label} | {x['requests_per_s']:,.0f} | "
                     f"{x['requests_per_s'] / z['none']['requests_per_s']:.2f}× | "
                     f"{x['requests_per_s'] / z['noop']['requests_per_s']:.2f}× | "
                     f"{x['p50_ms']:.2f} ms | {x['p99_ms']:.2f} ms | "
                     f"{(x['rss_bytes'] or 0) / MIB:.0f} MiB | "
                     f"{(x['rss_peak_bytes'] or 0) / MIB:.0f} MiB | {x['ready_s']:.2f} s |")
    s.append("")

    def us(z: dict, k: str) -> float:
        return 1e6 / z[k]["requests_per_s"]

    s.append("| prefixes | `ip_tagging` table | MAPS ÷ `ip_tagging` (best / median round) | "
             "MAPS ÷ no-op (best / median round) | µs per request: no-op, host calls, MAPS "
             "(over the one before) | MAPS policy (packed) | MAPS ready after no-op | "
             "ECDS reload applied / served |")
    s.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for z in sizes:
        t, r = z.get("iptag_table", {}), z["ratios"]
        table = (f"{t.get('ranges', 0):,} ranges, {t.get('tags', 0)} tags"
                 + ("" if t.get("fits", True) else f" (refused: > {limit:,})"))
        vs_ip = (f"{r['maps_over_iptag']:.2f}× / {r['median_round']['maps_over_iptag']:.2f}×"
                 if "maps_over_iptag" in r else "n/a")
        rl = z.get("reload", {})
        s.append(f"| {z['prefixes']:,} | {table} | {vs_ip} | "
                 f"{r['maps_over_noop']:.2f}× / {r['median_round']['maps_over_noop']:.2f}× | "
                 f"{us(z, 'noop') - us(z, 'none'):.1f}, {us(z, 'hostcalls') - us(z, 'noop'):.1f}, "
                 f"{us(z, 'maps') - us(z, 'hostcalls'):.1f} | "
                 f"{z['policy_json_bytes'] / MIB:.1f} MiB | {z['maps_load_over_noop_s']:.2f} s | "
                 f"{f(rl.get('ecds_applied_s'), '{:.2f} s')} / "
                 f"{f(rl.get('worker_serving_s'), '{:.2f} s')} |")
    s.append("")
    c = env.get("curve") or {}
    if c.get("rows"):
        s.append(f"The plugin's per-request cost against table size, relative to "
                 f"{c['base']:,} prefixes (MAPS ÷ no-op, the no-op filter measured in the "
                 "same rounds, is a control for the machine's drift between sizes, at the "
                 "price of a second measurement's noise):")
        s.append("")
        s.append("| prefixes | MAPS requests/s | µs per request | ÷ base | MAPS ÷ no-op | ÷ base |")
        s.append("|---:|---:|---:|---:|---:|---:|")
        for row in c["rows"]:
            s.append(f"| {row['prefixes']:,} | {row['maps_requests_per_s']:,.0f} | "
                     f"{row['maps_us_per_request']:.1f} | {row['rps_over_base']:.3f} | "
                     f"{row['maps_over_noop']:.3f} | {row['maps_over_noop_over_base']:.3f} |")
        s.append("")
    s += issue11_targets(env)
    rounds = "; ".join(
        f"{z['prefixes']:,}: " + ", ".join(
            f"{k} " + "/".join(f"{v:,.0f}" for v in z[k]["rounds_requests_per_s"])
            for k, _ in ENVOY_LABELS if k in z and "rounds_requests_per_s" in z[k])
        for z in sizes)
    s.append(f"Rounds (requests/s): {rounds}. Whole `make bench-envoy`: "
             f"{f(env.get('total_s'), '{:.0f} s')}.")
    s.append("")
    return s


def issue11_targets(env: dict) -> list[str]:
    """The issue 11 targets for Envoy: measured, met or missed."""
    s = ["#### Issue 11 targets (Envoy)", "", "| target | measured | |", "|---|---|---|"]
    for n in (10_000, 200_000):
        z = envoy_at(env, n)
        label = f"plugin ≥ 1.0× `ip_tagging` + tag route, {n:,} prefixes"
        if not z or "ratios" not in z:
            s.append(f"| {label} | n/a | not measured |")
        elif "maps_over_iptag" in z["ratios"]:
            r = z["ratios"]
            s.append(f"| {label} | {r['maps_over_iptag']:.2f}× (median round "
                     f"{r['median_round']['maps_over_iptag']:.2f}×) | "
                     f"{verdict(r['maps_over_iptag'] >= 1.0)} |")
        else:
            t = z.get("iptag_table", {})
            s.append(f"| {label} | `ip_tagging` refuses the table ({t.get('ranges', 0):,} "
                     f"ranges > {env.get('iptag_max_ranges', 262_144):,}); only the plugin "
                     "serves it | no baseline |")
    sizes = [envoy_at(env, n) for n in env.get("sizes", [])]
    sizes = [z for z in sizes if z and "ratios" in z]
    if sizes:
        worst = min(z["ratios"]["maps_over_noop"] for z in sizes)
        s.append("| plugin ≥ 0.95× the no-op wasm filter, every size | "
                 + ", ".join(f"{z['prefixes']:,}: {z['ratios']['maps_over_noop']:.2f}×"
                             for z in sizes)
                 + f" | {verdict(worst >= 0.95)} |")
    else:
        s.append("| plugin ≥ 0.95× the no-op wasm filter | n/a | not measured |")
    c = env.get("curve") or {}
    flat = c.get("flat_sizes") or []
    label = ("per-request cost flat from 200k to 2M prefixes (MAPS requests/s within "
             f"{FLAT_SPREAD * 100:.0f} %)")
    if c.get("flat_spread") is not None:
        measured = (f"spread {c['flat_spread'] * 100:.1f} % over "
                    + ", ".join(f"{n:,}" for n in flat)
                    + (f" (of MAPS ÷ no-op: {c['flat_spread_vs_noop'] * 100:.1f} %)"
                       if c.get("flat_spread_vs_noop") is not None else ""))
        if 200_000 in flat and 2_000_000 in flat:
            s.append(f"| {label} | {measured} | {verdict(c['flat_spread'] <= FLAT_SPREAD)} |")
        else:
            s.append(f"| {label} | {measured} only | not measured (sizes missing) |")
    else:
        s.append(f"| {label} | n/a | not measured |")
    s.append("")
    return s


def issue11_vm_targets(env: dict | None, mb: dict | None) -> list[str]:
    """The issue 11 targets per VM: the compiled policy file (`mapsctl bench`'s
    `compiled` figures, one VM in the wasmtime harness) and Envoy's start-up and reload
    at the largest table size."""
    s = ["#### Issue 11 targets (per VM: the compiled policy)", "",
         "| target | measured | |", "|---|---|---|"]
    c = (mb or {}).get("compiled")
    if c:
        n = mb.get("prefixes", 0)
        s.append(f"| one VM loads a {n:,}-prefix policy in ≤ 50 ms (compiled file, "
                 "wasmtime harness, module compiled once) | "
                 f"{c['plugin_configure_ms']:.0f} ms (the packed JSON: "
                 f"{c['plugin_configure_json_ms']:,.0f} ms, "
                 f"{c['plugin_configure_json_ms'] / max(c['plugin_configure_ms'], 1e-9):.1f}× "
                 f"longer) | {verdict(c['plugin_configure_ms'] <= 50)} |")
        over = c["memory_over_table_bytes"]
        s.append(f"| linear memory after configure ≤ table + 2 MiB | "
                 f"{c['plugin_linear_memory_bytes'] / MIB:.1f} MiB = tables "
                 f"{c['table_bytes'] / MIB:.1f} MiB {over / MIB:+.2f} MiB (the packed JSON: "
                 f"{c['plugin_linear_memory_json_bytes'] / MIB:.1f} MiB) | "
                 f"{verdict(over <= 2 * MIB)} |")
        s.append(f"| — `mapsctl compile` of that policy; a native load of the file | "
                 f"{c['compile_ms']:,.0f} ms; {c['native_load_ms']:.1f} ms | (for information) |")
    else:
        s.append("| one VM loads a 1M-prefix policy in ≤ 50 ms | n/a | not measured |")
    sizes = [envoy_at(env, n) for n in (env or {}).get("sizes", [])]
    sizes = [z for z in sizes if z and "maps" in z and "noop" in z and z["prefixes"] >= 1_000_000]
    form = (env or {}).get("policy_form", "json")
    for z in sizes:
        ready, noop = z["maps"]["ready_s"], z["noop"]["ready_s"]
        s.append(f"| Envoy with a {z['prefixes']:,}-prefix policy ({form}) ready within 2× "
                 f"the no-op filter's start-up | {ready:.2f} s vs {noop:.2f} s "
                 f"({ready / noop:.1f}×) | {verdict(ready <= 2 * noop)} |")
        served = (z.get("reload") or {}).get("worker_serving_s")
        s.append(f"| an ECDS reload of it serves within 1 s | "
                 f"{f(served, '{:.2f} s')} | "
                 f"{verdict(None if served is None else served <= 1.0)} |")
    if not sizes:
        s.append("| Envoy with a 1M-prefix policy ready within 2× the no-op filter; ECDS "
                 "reload ≤ 1 s | n/a | not measured |")
    s.append("")
    return s


def envoy_single(env: dict) -> list[str]:
    """The Envoy section of an envoy.json from before issue 11 (one table size, no
    ip_tagging): as those runs were reported."""
    s: list[str] = []
    s.append(f"Envoy {dict(machine()).get('Envoy', '')} `--concurrency 1`; wrk "
             f"`-t1 -c{env['connections']} -d{env['duration_s']:.0f}s` on 127.0.0.1, "
             f"best of {env['rounds']} interleaved rounds (each after a warm-up run). "
             "Upstream: a second listener of the same Envoy answering with a "
             "`direct_response` (so every figure includes one upstream HTTP exchange on "
             "the same worker thread). MAPS: the plugin holding a "
             f"{env['prefixes']:,}-prefix policy (`mapsctl gen`, "
             f"{env['policy_json_bytes'] / MIB:.1f} MiB packed), through ECDS; requests "
             "carry a client address in `x-forwarded-for` and `:authority` "
             "outlook.office365.com; classes seen: "
             + ", ".join(f"{k} {v:,}" for k, v in env.get("maps_classes", {}).items()) + ".")
    s.append("")
    s.append("| filter | requests/s | vs no filter | vs no-op | p50 | p99 | Envoy RSS | peak RSS | start → ready |")
    s.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, label in (("none", "no wasm filter"), ("noop", "no-op proxy-wasm filter"),
                     ("hostcalls", "no-op filter making the plugin's host calls"),
                     ("maps", f"MAPS plugin, {env['prefixes']:,} prefixes")):
        if k not in env:
            continue
        x = env[k]
        s.append(f"| {label} | {x['requests_per_s']:,.0f} | "
                 f"{x['requests_per_s'] / env['none']['requests_per_s']:.2f}× | "
                 f"{x['requests_per_s'] / env['noop']['requests_per_s']:.2f}× | "
                 f"{x['p50_ms']:.2f} ms | {x['p99_ms']:.2f} ms | "
                 f"{(x['rss_bytes'] or 0) / MIB:.0f} MiB | {(x['rss_peak_bytes'] or 0) / MIB:.0f} MiB | "
                 f"{x['ready_s']:.2f} s |")
    s.append("")
    def us(k: str) -> float:
        return 1e6 / env[k]["requests_per_s"]
    per_req = us("maps") - us("noop")
    per_noop = us("noop") - us("none")
    rl = env.get("reload", {})
    split = ""
    if "hostcalls" in env:
        split = (f" ({us('hostcalls') - us('noop'):.1f} µs of them are the plugin's host "
                 "calls alone, as the `hostcalls` filter makes them, and "
                 f"{us('maps') - us('hostcalls'):.1f} µs everything else the plugin does "
                 "per request)")
    s.append(f"Per request, the no-op filter adds {per_noop:.1f} µs and the MAPS plugin "
             f"{per_req:.1f} µs more{split}, from the requests/s above. Policy load: the MAPS "
             f"Envoy is ready {env['maps_load_over_noop_s']:.2f} s after the no-op one "
             f"(start-up to `/ready`); an ECDS reload of another {env['prefixes']:,}-prefix "
             f"policy was applied after {f(rl.get('ecds_applied_s'), '{:.2f} s')} and the "
             f"worker served with it after {f(rl.get('worker_serving_s'), '{:.2f} s')}. "
             "Rounds (requests/s): "
             + "; ".join(f"{k} " + ", ".join(f"{v:,.0f}" for v in env[k]["rounds_requests_per_s"])
                         for k in ("none", "noop", "hostcalls", "maps") if k in env) + ".")
    s.append("")
    return s


# ---- the section ------------------------------------------------------------------------------
def section(crit: dict[str, float], res: Path, chart_name: str | None) -> str:
    sweep = load(res / "sweep.json") or {}
    mb = load(res / "mapsctl-bench.json")
    wasm = load(res / "wasm.json")
    env = load(res / "envoy.json")
    s: list[str] = [BEGIN, "## Every target of issue 6, measured in one run (`make bench`)", ""]
    s.append("Generated by `benches/report.py` from the outputs of one `make bench` run; "
             "edit the text outside the `bench:` markers, not inside. Every ratio compares "
             "figures measured side by side in this run, on the same seeded tables.")
    s.append("")
    s += [f"- {k}: {v}" for k, v in machine(res)]
    s.append("")

    def c(id_: str) -> float | None:
        return crit.get(id_)

    def sweep_row(fam: str, n: int, impl: str) -> dict | None:
        for r in sweep.get(fam, []):
            if r["prefixes"] == n and r["impl"] == impl:
                return r
        return None

    v4_dir = ratio(c("lpm/v4-1m/dir24-8"), c("lpm/v4-1m/maps"))
    v4_pt = ratio(c("lpm/v4-1m/prefix-trie"), c("lpm/v4-1m/maps"))
    v4_nt = ratio(c("lpm/v4-1m/ip-network-table"), c("lpm/v4-1m/maps"))
    v6_pt = ratio(c("lpm/v6-200k/prefix-trie"), c("lpm/v6-200k/maps"))
    # compile/<case> is measured per prefix (throughput = 1M prefixes): ns per prefix
    # times 1M prefixes, in ms, is the same number.
    compile_ms = c("compile/v4-1m")
    m_maps = (sweep_row("v4", 1_000_000, "maps") or {}).get("memory_bytes")
    m_dir = (sweep_row("v4", 1_000_000, "dir24-8") or {}).get("memory_bytes")

    s.append("### Targets")
    s.append("")
    s.append("| target | measured | |")
    s.append("|---|---:|---|")
    s.append(f"| IPv4 1M: throughput ≥ 0.8× DIR-24-8 (criterion) | {f(v4_dir, '{:.2f}×')} | "
             f"{verdict(None if v4_dir is None else v4_dir >= 0.8)} |")
    mem_ratio = ratio(m_maps, m_dir)
    s.append(f"| IPv4 1M: memory ≤ 1/8 of DIR-24-8 | "
             f"{'n/a' if mem_ratio is None else f'1/{1 / mem_ratio:.1f}'} "
             f"({f(m_maps and m_maps / MIB, '{:.2f}')} vs {f(m_dir and m_dir / MIB, '{:.1f}')} MiB) | "
             f"{verdict(None if mem_ratio is None else mem_ratio <= 0.125)} |")
    s.append(f"| IPv4 1M: ≥ 20× `prefix-trie` (criterion) | {f(v4_pt, '{:.2f}×')} | "
             f"{verdict(None if v4_pt is None else v4_pt >= 20)} |")
    s.append(f"| IPv4 1M: ≥ 20× `ip_network_table` (criterion) | {f(v4_nt, '{:.2f}×')} | "
             f"{verdict(None if v4_nt is None else v4_nt >= 20)} |")
    s.append(f"| IPv6 200k: ≥ 10× `prefix-trie` (criterion) | {f(v6_pt, '{:.2f}×')} | "
             f"{verdict(None if v6_pt is None else v6_pt >= 10)} |")
    s.append(f"| compile 1M IPv4 prefixes < 1 s (criterion) | {f(compile_ms, '{:.0f} ms')} | "
             f"{verdict(None if compile_ms is None else compile_ms < 1000)} |")
    bpp = None if m_maps is None else m_maps / 1_000_000
    s.append(f"| compiled IPv4 table ≤ 9 bytes per prefix (LPM alone, 1M) | {f(bpp)} | "
             f"{verdict(None if bpp is None else bpp <= 9)} |")
    bgp = load(res / "lpm-bgp.json") or {}
    bgp_dir = ratio(c("lpm/v4-bgp/dir24-8"), c("lpm/v4-bgp/maps"))
    if bgp.get("measured") or bgp_dir is not None:
        mem = (bgp.get("v4") or {}).get("memory_bytes") or {}
        s.append(f"| — on a real BGP-derived table ({(bgp.get('v4') or {}).get('prefixes', 0):,} "
                 "IPv4 prefixes, below): throughput vs DIR-24-8, memory | "
                 f"{f(bgp_dir, '{:.2f}×')}, "
                 f"{f(ratio(mem.get('dir24-8'), mem.get('maps')), '1/{:.1f}')} | (for information) |")
    if mb:
        s.append(f"| — the whole classifier (`mapsctl bench`: {mb['prefixes']:,} prefixes, IPv4 + "
                 f"IPv6, registrations, destinations) | {mb['bytes_per_prefix']:.2f} bytes/prefix | "
                 "(for information) |")
    wr = (wasm or {}).get("wasm_over_native", {})
    for eng, label in (("wasmtime", "wasmtime (harness engine)"), ("node", "V8 (Node)")):
        rs = wr.get(eng)
        if rs:
            worst = min(rs.values())
            s.append(f"| inside wasm ≥ 0.8× native: {label} | "
                     + ", ".join(f"{k} {v:.2f}×" for k, v in rs.items())
                     + f" | {verdict(worst >= 0.8)} |")
        else:
            s.append(f"| inside wasm ≥ 0.8× native: {label} | n/a | not measured |")
    env_1m = envoy_at(env, 1_000_000)
    if env_1m and "ratios" in env_1m:
        r = env_1m["ratios"]["maps_over_noop"]
        s.append(f"| Envoy: MAPS (1M prefixes) ≥ 0.9× no-op filter, requests/s | {r:.2f}× | "
                 f"{verdict(r >= 0.9)} |")
    else:
        s.append("| Envoy: MAPS (1M prefixes) ≥ 0.9× no-op filter | n/a | not measured |")
    if mb:
        lim = 2 * mb["table_bytes"] + 4 * MIB
        lm = mb["plugin"]["linear_memory_bytes"]
        s.append(f"| per-VM linear memory after configure ≤ 2× table + 4 MiB "
                 f"(`mapsctl bench`, {mb['prefixes']:,} prefixes) | {lm / MIB:.1f} MiB vs "
                 f"limit {lim / MIB:.1f} MiB (table {mb['table_bytes'] / MIB:.1f} MiB) | "
                 f"{verdict(lm <= lim)} |")
    s.append("")

    # -- wasm
    s.append("### Inside WebAssembly (`benches/bench_wasm.py`)")
    s.append("")
    if wasm:
        best = wasm["best"]
        engines = list(best)
        s.append("The same seeded workload (`benches/wasm-lookup`) natively, in wasmtime "
                 "(configured as the proxy-wasm harness: Cranelift, epoch interruption) and in "
                 "Node's V8 (`node:wasi`); each engine's best of "
                 f"{wasm['rounds']} interleaved rounds, each round the median of its passes "
                 "after a warm-up pass. `v4`: 1M-prefix IPv4 LPM, `v6`: 200k-prefix IPv6 LPM "
                 "(1M-address streams, half hits); `classify`: whole decisions "
                 "(`Classifier::classify`, source + host) on the synthetic 1M + 200k policy "
                 "of `mapsctl bench`; `publish`: what the plugin computes per request besides "
                 "its host calls (decision from the address text, cluster name, decision line "
                 "JSON), same policy. All engines printed identical digests of every answer.")
        s.append("")
        s.append("| engine | v4 ns/lookup | v6 ns/lookup | classify ns/decision | "
                 "publish ns/request | vs native (v4 / v6 / classify / publish) | policy load |")
        s.append("|---|---:|---:|---:|---:|---:|---:|")
        for eng in engines:
            b = best[eng]
            rs = wasm["wasm_over_native"].get(eng)
            s.append(
                f"| {eng} | {f(b.get('v4', {}).get('ns_per_op'), '{:.1f}')} | "
                f"{f(b.get('v6', {}).get('ns_per_op'), '{:.1f}')} | "
                f"{f(b.get('classify', {}).get('ns_per_op'), '{:.0f}')} | "
                f"{f(b.get('publish', {}).get('ns_per_op'), '{:.0f}')} | "
                + ("1" if rs is None else " / ".join(f"{v:.2f}×" for v in rs.values()))
                + f" | {f(b.get('classify', {}).get('load_ms'), '{:.0f} ms')} |")
        s.append("")
        if "wasmtime-plugin" in best:
            s.append("`wasmtime-plugin` is the same workload built with the plugin's cargo "
                     "profile (`opt-level = \"s\"`, as `maps_plugin.wasm` is).")
            s.append("")
    else:
        s.append("Not measured in this run.")
        s.append("")

    # -- mapsctl bench
    s.append("### Natively and through the plugin in the wasmtime harness (`mapsctl bench --json`)")
    s.append("")
    if mb:
        s.append(f"Synthetic policy: {mb['prefixes']:,} prefixes ({mb['policy_json_bytes'] / MIB:.1f} "
                 f"MiB of packed policy JSON), compiled table {mb['table_bytes'] / MIB:.1f} MiB "
                 f"({mb['bytes_per_prefix']:.2f} bytes/prefix).")
        s.append("")
        s.append("| engine | policy load | decisions | decisions/s | |")
        s.append("|---|---:|---:|---:|---|")
        n, p = mb["native"], mb["plugin"]
        s.append(f"| native (`policy-core`) | {n['load_ms']:.0f} ms | {n['decisions']:,} | "
                 f"{n['decisions_per_s']:,.0f} | |")
        s.append(f"| plugin in the wasmtime harness | {p['load_ms']:.0f} ms | {p['decisions']:,} | "
                 f"{p['decisions_per_s']:,.0f} | {mb['plugin_over_native']:.4f}× native; each "
                 f"decision a whole proxy-wasm HTTP request; {p['identical_to_native']:,} "
                 f"identical to native |")
        s.append("")
        s.append(f"Plugin linear memory after configure: {p['linear_memory_bytes'] / MIB:.1f} MiB.")
        s.append("")
    else:
        s.append("Not measured in this run.")
        s.append("")

    # -- Envoy
    s += envoy_section(env)
    s += issue11_vm_targets(env, mb)

    # -- sweep
    s.append("### Throughput against table size (`lpm-sweep`)")
    s.append("")
    if sweep:
        if chart_name:
            s.append(f"![lookup throughput against table size]({chart_name})")
            s.append("")
        s.append(f"Native, median of {sweep.get('reps')} passes over {sweep.get('lookups'):,} "
                 "addresses (half hits) per point; the wasm points are `bench_wasm.py`'s.")
        s.append("")
        for fam in ("v4", "v6"):
            rows = sweep.get(fam, [])
            sizes = sorted({r["prefixes"] for r in rows})
            impls = list(dict.fromkeys(r["impl"] for r in rows))
            s.append(f"| {'IPv4' if fam == 'v4' else 'IPv6'}: Mlookups/s (memory) | "
                     + " | ".join(f"{n:,}" for n in sizes) + " |")
            s.append("|---|" + "---:|" * len(sizes))
            for impl in impls:
                cells = []
                for n in sizes:
                    r = sweep_row(fam, n, impl)
                    if r is None:
                        cells.append("")
                        continue
                    mem = r.get("memory_bytes")
                    cells.append(f"{1e3 / r['ns_per_lookup']:.1f}"
                                 + (f" ({mem / MIB:.1f} MiB)" if mem else ""))
                s.append(f"| {impl} | " + " | ".join(cells) + " |")
            s.append("")
    else:
        s.append("Not measured in this run.")
        s.append("")
    s += bgp_section(crit, res)
    s.append(END)
    return "\n".join(s) + "\n"


def bgp_section(crit: dict[str, float], res: Path) -> list[str]:
    """The LPM benches on the real BGP-derived table (criterion `lpm/v4-bgp/*`,
    `lpm/v6-bgp/*`, `compile/*-bgp`; sizes and memory from `lpm-report --bgp-json`)."""
    s = ["### A real BGP-derived table (criterion `lpm/v4-bgp/*`, `lpm/v6-bgp/*`)", ""]
    bgp = load(res / "lpm-bgp.json") or {}
    ids = [k for k in crit if k.startswith(("lpm/v4-bgp/", "lpm/v6-bgp/"))]
    if not bgp.get("measured") or not ids:
        return s + ["Not measured in this run (`make bench-lpm` fetches the table with "
                    "`make bgp-data` and measures it).", ""]
    v4, v6 = bgp["v4"], bgp["v6"]
    s.append(f"{bgp['source']}: {v4['prefixes']:,} IPv4 and {v6['prefixes']:,} IPv6 prefixes "
             "(see benches/README.md). Each prefix's value is its position in the file (the "
             "classifier names the matched prefix); lookups: "
             f"{bgp['lookups']:,} addresses drawn like the synthetic streams (half inside a "
             "random prefix, half random addresses no prefix covers). `maps-origin-as`, for "
             "information: `maps` holding each prefix's origin AS instead, as a FIB would "
             f"({v4['distinct_origin_as']:,} distinct values), so that leaves merge.")
    s.append("")
    s.append("| impl | IPv4 ns/lookup | vs dir24-8 | IPv4 memory (bytes/prefix) | "
             "IPv6 ns/lookup | vs maps | IPv6 memory (bytes/prefix) |")
    s.append("|---|---:|---:|---:|---:|---:|---:|")

    def mem(fam: dict, impl: str) -> str:
        b = (fam["maps_bytes_with_origin_as_values"] if impl == "maps-origin-as"
             else fam["memory_bytes"].get(impl))
        return "n/a" if b is None else f"{b / MIB:.2f} MiB ({b / fam['prefixes']:.2f})"

    for impl in ("maps", "dir24-8", "prefix-trie", "ip-network-table", "maps-origin-as"):
        n4, n6 = crit.get(f"lpm/v4-bgp/{impl}"), crit.get(f"lpm/v6-bgp/{impl}")
        s.append(f"| {impl} | {f(n4, '{:.1f}')} | "
                 f"{f(ratio(crit.get('lpm/v4-bgp/dir24-8'), n4), '{:.2f}×')} | {mem(v4, impl)} | "
                 f"{f(n6, '{:.1f}', '')} | "
                 f"{f(ratio(crit.get('lpm/v6-bgp/maps'), n6), '{:.2f}×', '')} | "
                 f"{mem(v6, impl) if n6 is not None else ''} |")
    s.append("")
    # compile/<case> is measured per prefix: ns per prefix times the prefixes, in ms.
    c4, c6 = crit.get("compile/v4-bgp"), crit.get("compile/v6-bgp")
    s.append(f"Compile: IPv4 {f(c4 and c4 * v4['prefixes'] / 1e6, '{:.0f} ms')}, "
             f"IPv6 {f(c6 and c6 * v6['prefixes'] / 1e6, '{:.0f} ms')}.")
    s.append("")
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--criterion", type=Path, default=Path("target/criterion"))
    ap.add_argument("--results", type=Path, default=Path("target/bench-results"))
    ap.add_argument("--write", type=Path)
    ap.add_argument("--chart", type=Path)
    a = ap.parse_args()
    crit = criterion(a.criterion)
    sweep = load(a.results / "sweep.json")
    chart_name = None
    if a.chart and sweep:
        a.chart.write_text(chart(sweep, load(a.results / "wasm.json")))
        chart_name = os.path.relpath(a.chart, (a.write or Path(".")).resolve().parent) \
            if a.write else a.chart.name
    text = section(crit, a.results, chart_name)
    if not a.write:
        print(text, end="")
        return 0
    old = a.write.read_text() if a.write.exists() else ""
    i, j = old.find(BEGIN), old.find(END)
    if 0 <= i < j:
        new = old[:i] + text + old[j + len(END):].lstrip("\n")
    elif old:
        new = old.rstrip() + "\n\n" + text
    else:
        new = "# Benchmark results\n\n" + text
    a.write.write_text(new)
    print(f"report: wrote {a.write}" + (f" and {a.chart}" if chart_name else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
