//! Criterion benches of the LPM tables: `lpm/<case>/<impl>` and `compile/<case>`.
//!
//! `cargo bench -p maps-benches --bench lpm` measures (full sizes: a 1M-prefix IPv4
//! and a 200k-prefix IPv6 table, 1M-address lookup streams, half hits);
//! `cargo test -p maps-benches --benches` runs every bench once on scaled-down
//! tables, after checking that every implementation agrees with `maps` on every
//! address of the streams.
//!
//! `lpm/v4-bgp/<impl>`, `lpm/v6-bgp/<impl>`, `compile/v4-bgp` and `compile/v6-bgp`
//! do the same on a real BGP-derived table (`maps_benches::bgp`, fetched by
//! `make bgp-data`; every 30th IPv4 and every 5th IPv6 prefix of it in test mode),
//! and are skipped with a message when the file is absent.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maps_benches::{bgp, sum, All4, All6, Sizes, Workload4, Workload6};
use policy_core::testgen::{linear4, linear6};
use policy_core::{Lpm4, Lpm6};
use std::hint::black_box;
use std::time::Duration;

/// True when measuring (`--bench` without `--test`), as criterion decides.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

/// Full sizes only when measuring.
fn sizes() -> Sizes {
    if measuring() {
        Sizes::FULL
    } else {
        Sizes::TEST
    }
}

/// How many addresses of a stream the agreement check covers (all in test mode).
const CHECK: usize = 200_000;

fn lpm(c: &mut Criterion) {
    let sz = sizes();

    // ---- IPv4, large table ----------------------------------------------------
    let w4 = Workload4::new(sz.v4, sz.lookups);
    let all4 = All4::build(&w4.table).expect("DIR-24-8 holds the generated values");
    for &a in w4.lookups.iter().take(CHECK) {
        let want = all4.maps.lookup(a);
        assert_eq!(all4.dir.lookup(a), want, "dir24-8 at {a:#x}");
        assert_eq!(all4.prefix_trie.lookup(a), want, "prefix-trie at {a:#x}");
        assert_eq!(
            all4.network_table.lookup4(a),
            want,
            "ip-network-table at {a:#x}"
        );
    }
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(w4.lookups.len() as u64));
    let q = &w4.lookups;
    g.bench_function("v4-1m/maps", |b| {
        b.iter(|| sum(black_box(q), |a| all4.maps.lookup(a)))
    });
    g.bench_function("v4-1m/dir24-8", |b| {
        b.iter(|| sum(black_box(q), |a| all4.dir.lookup(a)))
    });
    g.bench_function("v4-1m/prefix-trie", |b| {
        b.iter(|| sum(black_box(q), |a| all4.prefix_trie.lookup(a)))
    });
    g.bench_function("v4-1m/ip-network-table", |b| {
        b.iter(|| sum(black_box(q), |a| all4.network_table.lookup4(a)))
    });
    drop(all4);

    // ---- IPv6, large table ----------------------------------------------------
    let w6 = Workload6::new(sz.v6, sz.lookups);
    let all6 = All6::build(&w6.table);
    for &a in w6.lookups.iter().take(CHECK) {
        let want = all6.maps.lookup(a);
        assert_eq!(all6.prefix_trie.lookup(a), want, "prefix-trie at {a:#x}");
        assert_eq!(
            all6.network_table.lookup6(a),
            want,
            "ip-network-table at {a:#x}"
        );
    }
    g.throughput(Throughput::Elements(w6.lookups.len() as u64));
    let q = &w6.lookups;
    g.bench_function("v6-200k/maps", |b| {
        b.iter(|| sum(black_box(q), |a| all6.maps.lookup(a)))
    });
    g.bench_function("v6-200k/prefix-trie", |b| {
        b.iter(|| sum(black_box(q), |a| all6.prefix_trie.lookup(a)))
    });
    g.bench_function("v6-200k/ip-network-table", |b| {
        b.iter(|| sum(black_box(q), |a| all6.network_table.lookup6(a)))
    });
    drop(all6);

    // ---- small tables: the naive model ----------------------------------------
    let s4 = Workload4::new(sz.small, 10_000.min(sz.lookups));
    let s4maps = Lpm4::build(&s4.table);
    let s6 = Workload6::new(sz.small, 10_000.min(sz.lookups));
    let s6maps = Lpm6::build(&s6.table);
    for &a in &s4.lookups {
        assert_eq!(
            s4maps.lookup(a),
            linear4(&s4.table, a),
            "linear v4 at {a:#x}"
        );
    }
    for &a in &s6.lookups {
        assert_eq!(
            s6maps.lookup(a),
            linear6(&s6.table, a),
            "linear v6 at {a:#x}"
        );
    }
    g.throughput(Throughput::Elements(s4.lookups.len() as u64));
    g.bench_function("v4-1k/linear", |b| {
        b.iter(|| sum(black_box(&s4.lookups), |a| linear4(&s4.table, a)))
    });
    g.bench_function("v4-1k/maps", |b| {
        b.iter(|| sum(black_box(&s4.lookups), |a| s4maps.lookup(a)))
    });
    g.throughput(Throughput::Elements(s6.lookups.len() as u64));
    g.bench_function("v6-1k/linear", |b| {
        b.iter(|| sum(black_box(&s6.lookups), |a| linear6(&s6.table, a)))
    });
    g.bench_function("v6-1k/maps", |b| {
        b.iter(|| sum(black_box(&s6.lookups), |a| s6maps.lookup(a)))
    });
    g.finish();

    // ---- compile ----------------------------------------------------------------
    let mut g = c.benchmark_group("compile");
    g.throughput(Throughput::Elements(w4.table.len() as u64));
    g.bench_function("v4-1m", |b| b.iter(|| Lpm4::build(black_box(&w4.table))));
    g.throughput(Throughput::Elements(w6.table.len() as u64));
    g.bench_function("v6-200k", |b| b.iter(|| Lpm6::build(black_box(&w6.table))));
    g.finish();
}

/// The real BGP-derived table: every implementation on its IPv4 prefixes, `maps`,
/// `prefix-trie` and `ip-network-table` on its IPv6 ones, and compile times. Values
/// are each prefix's position in the file (the classifier names the matched prefix,
/// so every prefix has its own value, as in the synthetic tables); the lookup streams
/// are drawn from the table as the synthetic ones are (half hits, same seed).
fn lpm_bgp(c: &mut Criterion) {
    let t = match bgp::load() {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!(
                "{}",
                bgp::skip_message("lpm/v4-bgp, lpm/v6-bgp, compile/*-bgp", &bgp::path())
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let sz = sizes();
    let (v4, v6) = if measuring() {
        (t.v4.clone(), t.v6.clone())
    } else {
        (bgp::every(&t.v4, 30), bgp::every(&t.v6, 5))
    };
    let w4 = Workload4::from_table(v4, sz.lookups);
    let w6 = Workload6::from_table(v6, sz.lookups);

    let all4 = All4::build(&w4.table).expect("DIR-24-8 holds values below 2^31 - 1");
    for &a in w4.lookups.iter().take(CHECK) {
        let want = all4.maps.lookup(a);
        assert_eq!(all4.dir.lookup(a), want, "bgp: dir24-8 at {a:#x}");
        assert_eq!(
            all4.prefix_trie.lookup(a),
            want,
            "bgp: prefix-trie at {a:#x}"
        );
        assert_eq!(
            all4.network_table.lookup4(a),
            want,
            "bgp: ip-network-table at {a:#x}"
        );
    }
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(w4.lookups.len() as u64));
    let q = &w4.lookups;
    g.bench_function("v4-bgp/maps", |b| {
        b.iter(|| sum(black_box(q), |a| all4.maps.lookup(a)))
    });
    g.bench_function("v4-bgp/dir24-8", |b| {
        b.iter(|| sum(black_box(q), |a| all4.dir.lookup(a)))
    });
    g.bench_function("v4-bgp/prefix-trie", |b| {
        b.iter(|| sum(black_box(q), |a| all4.prefix_trie.lookup(a)))
    });
    g.bench_function("v4-bgp/ip-network-table", |b| {
        b.iter(|| sum(black_box(q), |a| all4.network_table.lookup4(a)))
    });
    // For information: `maps` holding each prefix's origin AS instead (a FIB's case,
    // values that repeat, so leaves merge and the table shrinks). Same stream.
    let asn = bgp::with_origin_as(&w4.table, &t.v4_asn);
    let maps_asn = Lpm4::build(&asn);
    for &a in w4.lookups.iter().take(CHECK) {
        let want = all4
            .maps
            .lookup(a)
            .and_then(|i| t.v4_asn.get(i as usize).copied());
        assert_eq!(
            maps_asn.lookup(a),
            want,
            "bgp: maps with origin ASes at {a:#x}"
        );
    }
    g.bench_function("v4-bgp/maps-origin-as", |b| {
        b.iter(|| sum(black_box(q), |a| maps_asn.lookup(a)))
    });
    drop((all4, maps_asn));

    let all6 = All6::build(&w6.table);
    for &a in w6.lookups.iter().take(CHECK) {
        let want = all6.maps.lookup(a);
        assert_eq!(
            all6.prefix_trie.lookup(a),
            want,
            "bgp: prefix-trie at {a:#x}"
        );
        assert_eq!(
            all6.network_table.lookup6(a),
            want,
            "bgp: ip-network-table at {a:#x}"
        );
    }
    g.throughput(Throughput::Elements(w6.lookups.len() as u64));
    let q = &w6.lookups;
    g.bench_function("v6-bgp/maps", |b| {
        b.iter(|| sum(black_box(q), |a| all6.maps.lookup(a)))
    });
    g.bench_function("v6-bgp/prefix-trie", |b| {
        b.iter(|| sum(black_box(q), |a| all6.prefix_trie.lookup(a)))
    });
    g.bench_function("v6-bgp/ip-network-table", |b| {
        b.iter(|| sum(black_box(q), |a| all6.network_table.lookup6(a)))
    });
    drop(all6);
    g.finish();

    let mut g = c.benchmark_group("compile");
    g.throughput(Throughput::Elements(w4.table.len() as u64));
    g.bench_function("v4-bgp", |b| b.iter(|| Lpm4::build(black_box(&w4.table))));
    g.throughput(Throughput::Elements(w6.table.len() as u64));
    g.bench_function("v6-bgp", |b| b.iter(|| Lpm6::build(black_box(&w6.table))));
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the whole file takes about a minute and a half.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = lpm, lpm_bgp
}
criterion_main!(benches);
