//! Every implementation returns the same answers as `maps` on the generated tables
//! (the benches' tables, scaled down), on random streams and on every prefix
//! boundary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use maps_benches::{sum, All4, All6, Workload4, Workload6};
use policy_core::testgen::{linear4, linear6};

/// Each prefix's first and last address and their outside neighbours.
fn boundaries4(t: &[(u32, u8, u32)]) -> Vec<u32> {
    t.iter()
        .flat_map(|&(net, len, _)| {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let lo = net & m;
            let hi = lo | !m;
            [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]
        })
        .collect()
}

fn boundaries6(t: &[(u128, u8, u32)]) -> Vec<u128> {
    t.iter()
        .flat_map(|&(net, len, _)| {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let lo = net & m;
            let hi = lo | !m;
            [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]
        })
        .collect()
}

#[test]
fn every_ipv4_implementation_agrees_with_maps() {
    let w = Workload4::new(50_000, 50_000);
    let all = All4::build(&w.table).expect("DIR-24-8 holds the generated values");
    assert_eq!(all.maps.len(), 50_000);
    assert_eq!(all.dir.len(), 50_000);
    let mut addrs = w.lookups.clone();
    addrs.extend(boundaries4(&w.table));
    let mut hits = 0;
    for &a in &addrs {
        let want = all.maps.lookup(a);
        hits += usize::from(want.is_some());
        assert_eq!(all.dir.lookup(a), want, "dir24-8 at {a:#x}");
        assert_eq!(all.prefix_trie.lookup(a), want, "prefix-trie at {a:#x}");
        assert_eq!(
            all.network_table.lookup4(a),
            want,
            "ip-network-table at {a:#x}"
        );
    }
    // Both hits and misses are exercised.
    assert!(
        hits > addrs.len() / 4 && hits < addrs.len() * 9 / 10,
        "{hits}"
    );
    assert_eq!(
        sum(&w.lookups, |a| all.maps.lookup(a)),
        sum(&w.lookups, |a| all.dir.lookup(a))
    );
}

#[test]
fn every_ipv6_implementation_agrees_with_maps() {
    let w = Workload6::new(20_000, 50_000);
    let all = All6::build(&w.table);
    assert_eq!(all.maps.len(), 20_000);
    let mut addrs = w.lookups.clone();
    addrs.extend(boundaries6(&w.table));
    for &a in &addrs {
        let want = all.maps.lookup(a);
        assert_eq!(all.prefix_trie.lookup(a), want, "prefix-trie at {a:#x}");
        assert_eq!(
            all.network_table.lookup6(a),
            want,
            "ip-network-table at {a:#x}"
        );
    }
}

#[test]
fn maps_agrees_with_the_linear_model_on_small_tables() {
    let w4 = Workload4::new(1_000, 5_000);
    let all4 = All4::build(&w4.table).unwrap();
    for &a in w4.lookups.iter().chain(&boundaries4(&w4.table)) {
        assert_eq!(all4.maps.lookup(a), linear4(&w4.table, a), "{a:#x}");
    }
    let w6 = Workload6::new(1_000, 5_000);
    let all6 = All6::build(&w6.table);
    for &a in w6.lookups.iter().chain(&boundaries6(&w6.table)) {
        assert_eq!(all6.maps.lookup(a), linear6(&w6.table, a), "{a:#x}");
    }
}
