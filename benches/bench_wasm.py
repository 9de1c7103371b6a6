#!/usr/bin/env python3
"""Classification inside WebAssembly against native, in the same run (issue 6).

Runs the seeded workload of `benches/wasm-lookup` (IPv4 and IPv6 LPM lookups, whole
decisions on the synthetic policy of `mapsctl bench`, and the plugin's per-request work
besides host calls: decision, cluster name, decision line) in each engine, interleaved for
`--rounds` rounds:

    native            the host build (release; .cargo/config.toml enables popcnt on x86-64)
    wasmtime          the wasm32-wasip1 release build, in wasmtime configured as the
                      proxy-wasm harness (benches/wasm-runner)
    node              the same .wasm in Node's V8 (`node:wasi`, benches/wasm-lookup/run-node.mjs)
    wasmtime-plugin   (optional) the wasm built with the plugin's profile (opt-level "s"),
                      in wasmtime: what the shipped plugin's code generation gives

An engine's figure for a case is its best round (ns per operation; each round's own
figure is the median of its timed passes). Every engine must print the same digests:
the same decisions, bit for bit.

    python3 benches/bench_wasm.py [--rounds R] [--json OUT] [--check]
        [--native BIN] [--wasm WASM] [--plugin-wasm WASM] [--runner BIN] [-- ARGS...]

`--check` (part of `make test`): small tables, one round; only the digests are compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("v4", "v6", "classify", "publish")


def run(cmd: list[str], timeout: float) -> dict:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr}")
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON:\n{r.stdout}{r.stderr}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--native", default=str(ROOT / "target/release/wasm-lookup"))
    ap.add_argument("--wasm", default=str(ROOT / "target/wasm32-wasip1/release/wasm-lookup.wasm"))
    ap.add_argument("--plugin-wasm", default="")
    ap.add_argument("--runner", default=str(ROOT / "target/release/wasm-runner"))
    ap.add_argument("--node", default="node")
    ap.add_argument("args", nargs="*", help="passed to wasm-lookup (sizes, cases)")
    a = ap.parse_args()
    args = a.args
    if a.check:
        a.rounds = 1
        args = args or ["--v4", "20000", "--v6", "5000", "--lookups", "20000", "--reps", "1"]
    node_runner = str(ROOT / "benches/wasm-lookup/run-node.mjs")
    engines = {
        "native": [a.native, *args],
        "wasmtime": [a.runner, a.wasm, *args],
        "node": [a.node, "--no-warnings", node_runner, a.wasm, *args],
    }
    if a.plugin_wasm:
        engines["wasmtime-plugin"] = [a.runner, a.plugin_wasm, *args]

    rounds: list[dict[str, dict]] = []
    for r in range(a.rounds):
        got = {}
        for name, cmd in engines.items():
            got[name] = run(cmd, timeout=600)
            figures = "  ".join(
                f"{c} {got[name][c]['ns_per_op']:.1f} ns" for c in CASES if c in got[name])
            print(f"bench-wasm: round {r + 1} {name:15} {figures}", flush=True)
        rounds.append(got)

    # Same decisions everywhere.
    failures = []
    ref = rounds[0]["native"]
    for rnd in rounds:
        for name, res in rnd.items():
            for c in CASES:
                if c in ref and res.get(c, {}).get("digest") != ref[c]["digest"]:
                    failures.append(f"{name} {c}: digest {res.get(c, {}).get('digest')} "
                                    f"!= native {ref[c]['digest']}")
    for f in failures:
        print(f"bench-wasm: FAIL {f}")

    best: dict[str, dict] = {}
    for name in engines:
        best[name] = {}
        for c in CASES:
            runs = [rnd[name][c] for rnd in rounds if c in rnd[name]]
            if runs:
                b = min(runs, key=lambda x: x["ns_per_op"])
                best[name][c] = {**b, "rounds_ns_per_op": [x["ns_per_op"] for x in runs]}
        mem = [rnd[name].get("linear_memory_bytes") for rnd in rounds]
        if mem and mem[0] is not None:
            best[name]["linear_memory_bytes"] = max(m or 0 for m in mem)
    ratios = {
        name: {c: best["native"][c]["ns_per_op"] / best[name][c]["ns_per_op"]
               for c in CASES if c in best[name] and c in best["native"]}
        for name in engines if name != "native"
    }
    out = {"rounds": a.rounds, "args": args, "best": best, "wasm_over_native": ratios}
    if not a.check:
        print("bench-wasm: throughput relative to native (1.0 = as fast):")
        for name, rs in ratios.items():
            print(f"  {name:15} " + "  ".join(f"{c} {v:.2f}x" for c, v in rs.items()))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    if a.check:
        n = len(engines) - 1
        print(f"bench-wasm: {n - len({f.split()[0] for f in failures})} passed, "
              f"{len({f.split()[0] for f in failures})} failed "
              "(engines giving native's decisions)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
