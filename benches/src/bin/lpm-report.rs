//! Writes the LPM section of `benches/RESULTS.md` from criterion's estimates of the
//! last `cargo bench -p maps-benches --bench lpm` run, plus the memory of every table
//! (rebuilt here from the same seeds) and the machine it ran on.
//!
//! ```text
//! lpm-report [--criterion DIR] [--write FILE] [--bgp-json FILE]
//! ```
//!
//! Without `--write` the section goes to standard output; with it, the section
//! between `<!-- lpm:begin -->` and `<!-- lpm:end -->` in FILE is replaced (or
//! appended), leaving the rest of the file alone. The section ends with the rows of
//! the real BGP-derived table (`lpm/v4-bgp/*`, `lpm/v6-bgp/*`) when `make bgp-data`
//! has fetched it; `--bgp-json` also writes that table's size and memory figures for
//! `benches/report.py` (which has no way to measure them).

use maps_benches::{bgp, All4, All6, Workload4, Workload6, LOOKUPS, V4_N, V6_N};
use policy_core::{Lpm4, Lpm6};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const BEGIN: &str = "<!-- lpm:begin -->";
const END: &str = "<!-- lpm:end -->";

/// Benchmark id -> (ns per iteration, elements per iteration).
fn estimates(dir: &Path) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/benchmark.json") {
                let read = |f: &Path| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok()
                };
                let Some(b) = read(&p) else { continue };
                let Some(est) = p.parent().and_then(|n| read(&n.join("estimates.json"))) else {
                    continue;
                };
                let id = b
                    .get("full_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                // What criterion prints: the slope of the linear sampling, else the mean.
                let mean = est
                    .pointer("/slope/point_estimate")
                    .and_then(Value::as_f64)
                    .or_else(|| est.pointer("/mean/point_estimate").and_then(Value::as_f64))
                    .unwrap_or(f64::NAN);
                let elems = b
                    .pointer("/throughput/Elements")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0);
                out.insert(id, (mean, elems));
            }
        }
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{} GiB", kb / (1024 * 1024)));
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem} RAM; {rustc}; RUSTFLAGS=`{flags}`; load average when \
         the report was written: {load} (the machine is shared, so absolute figures are noisy; \
         ratios are measured side by side in one run)"
    )
}

/// Appends the rows of the real BGP-derived table to `s` and returns its figures as
/// JSON (`{"measured": false}` when the table is absent). `ns`: ns per lookup of a
/// bench id; `ms`: ms per iteration.
fn bgp_section(
    s: &mut String,
    ns: &dyn Fn(&str) -> Option<f64>,
    ms: &dyn Fn(&str) -> Option<f64>,
) -> Result<Value, String> {
    let _ = writeln!(s, "\n### A real BGP-derived table (`v4-bgp`, `v6-bgp`)\n");
    let Some(t) = bgp::load()? else {
        let _ = writeln!(
            s,
            "Not measured: {}.",
            bgp::skip_message("the BGP table", &bgp::path())
        );
        return Ok(serde_json::json!({ "measured": false }));
    };
    let Some(all4) = All4::build(&t.v4) else {
        return Err("DIR-24-8 cannot hold the BGP table's values".into());
    };
    let all6 = All6::build(&t.v6);
    let (n4, n6) = (t.v4.len(), t.v6.len());
    let m4 = all4.maps.memory_bytes() as f64;
    let mdir = all4.dir.memory_bytes() as f64;
    let mpt4 = all4.prefix_trie.memory_bytes() as f64;
    let m6 = all6.maps.memory_bytes() as f64;
    let mpt6 = all6.prefix_trie.memory_bytes() as f64;
    // What a FIB would hold: values that repeat (here the origin AS), so that leaf
    // runs can merge. For information: the classifier cannot do that.
    let with_asn4 = bgp::with_origin_as(&t.v4, &t.v4_asn);
    let with_asn6 = bgp::with_origin_as(&t.v6, &t.v6_asn);
    let m4_asn = Lpm4::build(&with_asn4).memory_bytes() as f64;
    let m6_asn = Lpm6::build(&with_asn6).memory_bytes() as f64;
    let distinct = |v: &[u32]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    let mib = |b: f64| b / (1024.0 * 1024.0);

    let _ = writeln!(
        s,
        "{}: {n4} IPv4 and {n6} IPv6 prefixes (`make bgp-data`; see benches/README.md). \
         Each prefix's value is its position in the file (the classifier names the matched \
         prefix, so every prefix has a value of its own, as in the synthetic tables); the \
         lookup streams are drawn from the table as the synthetic ones are ({LOOKUPS} \
         addresses, half inside a random prefix, half random addresses no prefix covers; \
         same seed).\n",
        bgp::SOURCE
    );
    let _ = writeln!(
        s,
        "| bench | ns/lookup | Mlookups/s | memory | bytes/prefix | vs dir24-8 | vs maps |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let dir = Some("lpm/v4-bgp/dir24-8");
    for (id, mem, n, base) in [
        ("lpm/v4-bgp/maps", Some(m4), n4, dir),
        ("lpm/v4-bgp/dir24-8", Some(mdir), n4, dir),
        ("lpm/v4-bgp/prefix-trie", Some(mpt4), n4, dir),
        ("lpm/v4-bgp/ip-network-table", None, n4, dir),
        ("lpm/v4-bgp/maps-origin-as", Some(m4_asn), n4, dir),
        ("lpm/v6-bgp/maps", Some(m6), n6, None),
        ("lpm/v6-bgp/prefix-trie", Some(mpt6), n6, None),
        ("lpm/v6-bgp/ip-network-table", None, n6, None),
    ] {
        row(s, ns, id, mem, n, base);
    }
    let ratio = |a: &str, b: &str| match (ns(a), ns(b)) {
        (Some(x), Some(y)) => format!("{:.2}×", x / y),
        _ => "n/a".into(),
    };
    let _ = writeln!(
        s,
        "\nOn this table `maps` has {} DIR-24-8's throughput in 1/{:.1} of its memory \
         ({:.2} MiB against {:.1} MiB), {} `prefix-trie`'s and {} `ip_network_table`'s; on \
         IPv6 {} `prefix-trie`'s. `maps-origin-as` (for information) is `maps` holding each \
         prefix's origin AS instead, what a FIB holds: {} distinct values for {n4} IPv4 \
         prefixes, so leaves merge and the table takes {:.2} MiB ({:.2} bytes/prefix; \
         IPv6: {:.2} MiB), with {} DIR-24-8's throughput; the classifier cannot do that, \
         since it names the matched prefix.\n",
        ratio("lpm/v4-bgp/dir24-8", "lpm/v4-bgp/maps"),
        mdir / m4,
        mib(m4),
        mib(mdir),
        ratio("lpm/v4-bgp/prefix-trie", "lpm/v4-bgp/maps"),
        ratio("lpm/v4-bgp/ip-network-table", "lpm/v4-bgp/maps"),
        ratio("lpm/v6-bgp/prefix-trie", "lpm/v6-bgp/maps"),
        distinct(&t.v4_asn),
        mib(m4_asn),
        m4_asn / n4 as f64,
        mib(m6_asn),
        ratio("lpm/v4-bgp/dir24-8", "lpm/v4-bgp/maps-origin-as"),
    );
    let _ = writeln!(s, "| compile | time |\n|---|---:|");
    for id in ["compile/v4-bgp", "compile/v6-bgp"] {
        let _ = writeln!(
            s,
            "| `{id}` | {} |",
            ms(id).map_or("n/a".into(), |m| format!("{m:.0} ms"))
        );
    }
    Ok(serde_json::json!({
        "measured": true,
        "source": bgp::SOURCE,
        "values": "position in the file",
        "lookups": LOOKUPS,
        "v4": {
            "prefixes": n4,
            "memory_bytes": { "maps": m4, "dir24-8": mdir, "prefix-trie": mpt4 },
            "maps_bytes_with_origin_as_values": m4_asn,
            "distinct_origin_as": distinct(&t.v4_asn),
        },
        "v6": {
            "prefixes": n6,
            "memory_bytes": { "maps": m6, "prefix-trie": mpt6 },
            "maps_bytes_with_origin_as_values": m6_asn,
            "distinct_origin_as": distinct(&t.v6_asn),
        },
    }))
}

/// One row of an LPM table: ns/lookup, Mlookups/s, memory, bytes/prefix, and the
/// throughput ratios to `base` and to the same case's `maps`.
fn row(
    s: &mut String,
    ns: &dyn Fn(&str) -> Option<f64>,
    id: &str,
    mem: Option<f64>,
    n: usize,
    base: Option<&str>,
) {
    let v = ns(id);
    let cell = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or("n/a".into(), f);
    let rel = |other: &str| match (ns(other), v) {
        (Some(o), Some(v)) => format!("{:.2}×", o / v),
        _ => "".into(),
    };
    let _ = writeln!(
        s,
        "| `{id}` | {} | {} | {} | {} | {} | {} |",
        cell(v, &|v| format!("{v:.1}")),
        cell(v, &|v| format!("{:.1}", 1e3 / v)),
        cell(mem, &|m| format!("{:.2} MiB", m / (1024.0 * 1024.0))),
        cell(mem, &|m| format!("{:.2}", m / n as f64)),
        base.map_or(String::new(), rel),
        rel(&id.replace(id.rsplit('/').next().unwrap_or(""), "maps")),
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let crit = arg("--criterion").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("criterion")
    });
    let est = estimates(&crit);
    if est.is_empty() {
        eprintln!(
            "lpm-report: no criterion estimates under {}; run `make bench-lpm` first",
            crit.display()
        );
        return ExitCode::from(2);
    }
    // ns per lookup (or per compiled table for compile/*).
    let ns = |id: &str| est.get(id).map(|&(m, n)| m / n);
    let ms = |id: &str| est.get(id).map(|&(m, _)| m / 1e6);

    let w4 = Workload4::new(V4_N, 0);
    let Some(all4) = All4::build(&w4.table) else {
        eprintln!("lpm-report: DIR-24-8 cannot hold the generated values");
        return ExitCode::from(1);
    };
    let w6 = Workload6::new(V6_N, 0);
    let all6 = All6::build(&w6.table);
    let b4 = all4.maps.memory_bytes() as f64;
    let bdir = all4.dir.memory_bytes() as f64;
    let b6 = all6.maps.memory_bytes() as f64;
    let mib = |b: f64| b / (1024.0 * 1024.0);

    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "## Longest-prefix match (`cargo bench -p maps-benches --bench lpm`)\n"
    );
    let _ = writeln!(s, "Machine: {}.\n", machine());
    let _ = writeln!(
        s,
        "Tables from `policy_core::testgen` (seed `SEED`): IPv4 {V4_N} prefixes, IPv6 {V6_N} \
         prefixes; each iteration looks up a stream of {LOOKUPS} addresses (10,000 for the \
         1k tables), half of them hits. Figures are criterion's estimate per lookup.\n"
    );
    let _ = writeln!(
        s,
        "| bench | ns/lookup | Mlookups/s | memory | bytes/prefix | vs dir24-8 | vs maps |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    row(
        &mut s,
        &ns,
        "lpm/v4-1m/maps",
        Some(b4),
        V4_N,
        Some("lpm/v4-1m/dir24-8"),
    );
    row(
        &mut s,
        &ns,
        "lpm/v4-1m/dir24-8",
        Some(bdir),
        V4_N,
        Some("lpm/v4-1m/dir24-8"),
    );
    row(
        &mut s,
        &ns,
        "lpm/v4-1m/prefix-trie",
        Some(all4.prefix_trie.memory_bytes() as f64),
        V4_N,
        Some("lpm/v4-1m/dir24-8"),
    );
    row(
        &mut s,
        &ns,
        "lpm/v4-1m/ip-network-table",
        None,
        V4_N,
        Some("lpm/v4-1m/dir24-8"),
    );
    row(&mut s, &ns, "lpm/v6-200k/maps", Some(b6), V6_N, None);
    row(
        &mut s,
        &ns,
        "lpm/v6-200k/prefix-trie",
        Some(all6.prefix_trie.memory_bytes() as f64),
        V6_N,
        None,
    );
    row(
        &mut s,
        &ns,
        "lpm/v6-200k/ip-network-table",
        None,
        V6_N,
        None,
    );
    row(&mut s, &ns, "lpm/v4-1k/maps", None, 1000, None);
    row(&mut s, &ns, "lpm/v4-1k/linear", None, 1000, None);
    row(&mut s, &ns, "lpm/v6-1k/maps", None, 1000, None);
    row(&mut s, &ns, "lpm/v6-1k/linear", None, 1000, None);
    let _ = writeln!(
        s,
        "\n\"vs dir24-8\" and \"vs maps\" are throughput ratios (the other's ns ÷ this one's): \
         above 1 means this row is faster. `ip_network_table` reports no memory size.\n"
    );
    let _ = writeln!(s, "| compile | time |\n|---|---:|");
    for id in ["compile/v4-1m", "compile/v6-200k"] {
        let _ = writeln!(
            s,
            "| `{id}` | {} |",
            ms(id).map_or("n/a".into(), |m| format!("{m:.0} ms"))
        );
    }

    // Targets of issue 6.
    let ratio = |a: &str, b: &str| match (ns(a), ns(b)) {
        (Some(x), Some(y)) => Some(x / y),
        _ => None,
    };
    let v4_dir = ratio("lpm/v4-1m/dir24-8", "lpm/v4-1m/maps");
    let v4_pt = ratio("lpm/v4-1m/prefix-trie", "lpm/v4-1m/maps");
    let v4_nt = ratio("lpm/v4-1m/ip-network-table", "lpm/v4-1m/maps");
    let v6_pt = ratio("lpm/v6-200k/prefix-trie", "lpm/v6-200k/maps");
    let mem_ratio = b4 / bdir;
    let compile = ms("compile/v4-1m");
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let f = |x: Option<f64>, suffix: &str| x.map_or("n/a".into(), |x| format!("{x:.2}{suffix}"));
    let _ = writeln!(s, "\n| target (issue 6) | measured | |\n|---|---:|---|");
    let _ = writeln!(
        s,
        "| IPv4 1M: throughput ≥ 0.8× DIR-24-8 | {} | {} |",
        f(v4_dir, "×"),
        verdict(v4_dir.map(|r| r >= 0.8))
    );
    let _ = writeln!(
        s,
        "| IPv4 1M: memory ≤ 1/8 of DIR-24-8 | 1/{:.1} ({:.2} MiB vs {:.1} MiB) | {} |",
        1.0 / mem_ratio,
        mib(b4),
        mib(bdir),
        verdict(Some(mem_ratio <= 0.125))
    );
    let _ = writeln!(
        s,
        "| IPv4 1M: ≤ 9 bytes per prefix | {:.2} | {} |",
        b4 / V4_N as f64,
        verdict(Some(b4 / V4_N as f64 <= 9.0))
    );
    let _ = writeln!(
        s,
        "| IPv4 1M: ≥ 20× `prefix-trie` | {} | {} |",
        f(v4_pt, "×"),
        verdict(v4_pt.map(|r| r >= 20.0))
    );
    let _ = writeln!(
        s,
        "| IPv4 1M: ≥ 20× `ip_network_table` | {} | {} |",
        f(v4_nt, "×"),
        verdict(v4_nt.map(|r| r >= 20.0))
    );
    let _ = writeln!(
        s,
        "| IPv6 200k: ≥ 10× `prefix-trie` | {} | {} |",
        f(v6_pt, "×"),
        verdict(v6_pt.map(|r| r >= 10.0))
    );
    let _ = writeln!(
        s,
        "| compile 1M IPv4 prefixes < 1 s | {} | {} |",
        compile.map_or("n/a".into(), |m| format!("{m:.0} ms")),
        verdict(compile.map(|m| m < 1000.0))
    );
    let bgp_json = match bgp_section(&mut s, &ns, &ms) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("lpm-report: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = writeln!(s, "{END}");

    if let Some(file) = arg("--bgp-json") {
        if let Err(e) = std::fs::write(&file, bgp_json.to_string()) {
            eprintln!("lpm-report: cannot write {file}: {e}");
            return ExitCode::from(2);
        }
    }

    match arg("--write") {
        None => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Some(file) => {
            let old = std::fs::read_to_string(&file).unwrap_or_default();
            let new = match (old.find(BEGIN), old.find(END)) {
                (Some(a), Some(b)) if a < b => {
                    let tail = old.get(b + END.len()..).unwrap_or("");
                    let tail = tail.strip_prefix('\n').unwrap_or(tail);
                    format!("{}{s}{tail}", old.get(..a).unwrap_or(""))
                }
                _ if old.is_empty() => format!("# Benchmark results\n\n{s}"),
                _ => format!("{}\n{s}", old.trim_end()),
            };
            match std::fs::write(&file, new) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lpm-report: cannot write {file}: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
