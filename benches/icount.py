#!/usr/bin/env python3
"""Instruction counts of the decision, the plugin's request path and policy load, under
`valgrind --tool=callgrind` (counts, not seconds: repeatable for one binary on one
machine however busy it is), against a committed baseline.

    benches/icount.py --icount target/release/icount                # measure, compare, print
    benches/icount.py --icount ... --write-baseline               # record the baseline
    benches/icount.py --icount ... --check                        # exit 1 on a regression

Each scenario runs twice, with N and 2N operations; the difference divided by N is the
instructions of one operation with the set-up (table build, plugin compile) taken out.
A scenario regresses when it costs more than `--tolerance` (2 %) over its baseline; a
cheaper one is reported, never failed (record it with --write-baseline).

The baseline holds for the toolchain and machine it was recorded on (it names them):
on another rustc or CPU the compare reports the new figures and fails nothing.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "benches" / "icount-baseline.json"
# (scenario, N): N large enough that the set-up's own variation (compiling the plugin:
# Cranelift's and wasmtime's hash maps are seeded at random in the host, about ±1.5 M
# instructions a run) stays near 0.2 % of the N operations measured; the guest's WASI
# randomness is seeded (host_harness::Harness::random_seed). Small enough that 2N runs
# in seconds under callgrind.
SCENARIOS = [("lpm", 20_000), ("decide", 20_000), ("plugin", 10_000), ("load", 40)]


def instructions(icount: str, scenario: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             # wasmtime writes the machine code it runs (JIT): tell valgrind.
             "--smc-check=all-non-file", icount, scenario, str(n)],
            capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
        if proc.returncode != 0:
            sys.exit(f"icount: `{scenario} {n}` failed under valgrind (exit {proc.returncode}):\n"
                     + proc.stderr[-3000:])
        m = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
        if not m:
            sys.exit(f"icount: no instruction total in callgrind's output for `{scenario} {n}`")
        return int(m.group(1))


def toolchain() -> str:
    try:
        return subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--icount", required=True, help="the icount binary (cargo build --release -p maps-icount)")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--write-baseline", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 when a scenario regresses")
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    figures = {}
    for scenario, n in SCENARIOS:
        one, two = instructions(args.icount, scenario, n), instructions(args.icount, scenario, 2 * n)
        figures[scenario] = {"n": n, "per_op": round((two - one) / n, 1), "setup": one - (two - one)}
    env = {"rustc": toolchain(), "cpu": cpu(), "valgrind": subprocess.run(
        ["valgrind", "--version"], capture_output=True, text=True).stdout.strip()}
    record = {"environment": env, "scenarios": figures}
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")

    base = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
    same_env = base is not None and base.get("environment", {}).get("rustc") == env["rustc"] \
        and base.get("environment", {}).get("cpu") == env["cpu"]
    print(f"instructions per operation (valgrind callgrind; {env['rustc']}; {env['cpu']})")
    print(f"{'scenario':<8} {'per op':>12} {'baseline':>12} {'ratio':>7}")
    regressions = []
    for scenario, f in figures.items():
        b = (base or {}).get("scenarios", {}).get(scenario, {}).get("per_op")
        ratio = f["per_op"] / b if b else None
        mark = ""
        if ratio is not None and ratio > 1 + args.tolerance:
            mark = f"  REGRESSION (> {args.tolerance:.0%})"
            regressions.append(scenario)
        elif ratio is not None and ratio < 1 - args.tolerance:
            mark = "  faster: record it with --write-baseline"
        print(f"{scenario:<8} {f['per_op']:>12,.1f} {b if b else '-':>12} "
              f"{f'{ratio:.3f}' if ratio else '-':>7}{mark}")
    d, l = figures["decide"]["per_op"], figures["lpm"]["per_op"]
    print(f"the whole decision costs {d / l:.2f}x its LPM lookup (issue 11 target: <= 2x)")

    if args.write_baseline:
        args.baseline.write_text(json.dumps(record, indent=2) + "\n")
        print(f"baseline written: {args.baseline.relative_to(ROOT)}")
        return 0
    if base is None:
        print(f"no baseline at {args.baseline}: nothing compared (record one with --write-baseline)")
        return 0
    if not same_env:
        print("the baseline was recorded with another toolchain or CPU "
              f"({base.get('environment')}): figures reported, nothing failed")
        return 0
    if regressions and args.check:
        print(f"icount: {', '.join(regressions)} cost more than {args.tolerance:.0%} over the baseline. "
              "If intended, record it: make bench-icount-baseline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
