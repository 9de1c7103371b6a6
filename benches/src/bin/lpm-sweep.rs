//! Throughput against table size for every implementation, for the chart in
//! `benches/RESULTS.md` (`make bench`; the criterion benches measure the 1M / 200k
//! points precisely, this sweeps the sizes quickly).
//!
//! ```text
//! lpm-sweep [--v4 10000,100000,1000000] [--v6 10000,50000,200000] [--lookups N] [--reps N]
//! ```
//!
//! For each size: the table from `policy_core::testgen` (seed `SEED`, as the benches),
//! a stream of `--lookups` addresses (half hits), every implementation built on it,
//! checked to agree with `maps` on the stream, then timed: the median of `--reps`
//! passes after a warm-up pass. Prints one JSON object: `{"v4": [{"prefixes": n,
//! "impl": name, "ns_per_lookup": x, "memory_bytes": m|null}...], "v6": [...]}`.

use maps_benches::{sum, All4, All6, Workload4, Workload6};
use serde_json::{json, Value};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median ns per element over `reps` passes of `f` (after a warm-up pass).
fn time(n: usize, reps: usize, f: impl Fn() -> u64) -> f64 {
    black_box(f());
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        black_box(f());
        t.push(t0.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64);
    }
    median(t)
}

fn sizes(arg: Option<&String>, default: &[usize]) -> Option<Vec<usize>> {
    match arg {
        None => Some(default.to_vec()),
        Some(s) => s
            .split(',')
            .map(|x| x.trim().replace('_', "").parse().ok())
            .collect(),
    }
}

fn row(n: usize, name: &str, ns: f64, mem: Option<usize>) -> Value {
    json!({"prefixes": n, "impl": name, "ns_per_lookup": ns, "memory_bytes": mem})
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let (Some(v4), Some(v6)) = (
        sizes(arg("--v4"), &[10_000, 100_000, 1_000_000]),
        sizes(arg("--v6"), &[10_000, 50_000, 200_000]),
    ) else {
        eprintln!("lpm-sweep: --v4 and --v6 take comma-separated sizes");
        return ExitCode::from(2);
    };
    let num = |name: &str, d: usize| arg(name).and_then(|s| s.parse().ok()).unwrap_or(d);
    let lookups = num("--lookups", 1_000_000);
    let reps = num("--reps", 3);

    let mut rows4 = Vec::new();
    for &n in &v4 {
        let w = Workload4::new(n, lookups);
        let Some(all) = All4::build(&w.table) else {
            eprintln!("lpm-sweep: DIR-24-8 cannot hold the generated values");
            return ExitCode::from(1);
        };
        for &a in &w.lookups {
            let want = all.maps.lookup(a);
            if all.dir.lookup(a) != want
                || all.prefix_trie.lookup(a) != want
                || all.network_table.lookup4(a) != want
            {
                eprintln!("lpm-sweep: implementations disagree at {a:#x} (v4, {n} prefixes)");
                return ExitCode::from(1);
            }
        }
        let q = &w.lookups;
        rows4.push(row(
            n,
            "maps",
            time(q.len(), reps, || sum(black_box(q), |a| all.maps.lookup(a))),
            Some(all.maps.memory_bytes()),
        ));
        rows4.push(row(
            n,
            "dir24-8",
            time(q.len(), reps, || sum(black_box(q), |a| all.dir.lookup(a))),
            Some(all.dir.memory_bytes()),
        ));
        rows4.push(row(
            n,
            "prefix-trie",
            time(q.len(), reps, || {
                sum(black_box(q), |a| all.prefix_trie.lookup(a))
            }),
            Some(all.prefix_trie.memory_bytes()),
        ));
        rows4.push(row(
            n,
            "ip-network-table",
            time(q.len(), reps, || {
                sum(black_box(q), |a| all.network_table.lookup4(a))
            }),
            None,
        ));
        eprintln!("lpm-sweep: v4 {n} done");
    }
    let mut rows6 = Vec::new();
    for &n in &v6 {
        let w = Workload6::new(n, lookups);
        let all = All6::build(&w.table);
        for &a in &w.lookups {
            let want = all.maps.lookup(a);
            if all.prefix_trie.lookup(a) != want || all.network_table.lookup6(a) != want {
                eprintln!("lpm-sweep: implementations disagree at {a:#x} (v6, {n} prefixes)");
                return ExitCode::from(1);
            }
        }
        let q = &w.lookups;
        rows6.push(row(
            n,
            "maps",
            time(q.len(), reps, || sum(black_box(q), |a| all.maps.lookup(a))),
            Some(all.maps.memory_bytes()),
        ));
        rows6.push(row(
            n,
            "prefix-trie",
            time(q.len(), reps, || {
                sum(black_box(q), |a| all.prefix_trie.lookup(a))
            }),
            Some(all.prefix_trie.memory_bytes()),
        ));
        rows6.push(row(
            n,
            "ip-network-table",
            time(q.len(), reps, || {
                sum(black_box(q), |a| all.network_table.lookup6(a))
            }),
            None,
        ));
        eprintln!("lpm-sweep: v6 {n} done");
    }
    println!(
        "{}",
        json!({"lookups": lookups, "reps": reps, "v4": rows4, "v6": rows6})
    );
    ExitCode::SUCCESS
}
