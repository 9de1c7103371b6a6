//! Unit and property tests of the LPM tables against a naive linear-scan model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;

/// The naive model: scan every entry, keep the longest match (first among equals).
fn naive4(t: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(net, len, v) in t {
        let len = len.min(32);
        let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if addr & m == net & m && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, v));
        }
    }
    best.map(|b| b.1)
}

fn naive6(t: &[(u128, u8, u32)], addr: u128) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(net, len, v) in t {
        let len = len.min(128);
        let m = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        if addr & m == net & m && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, v));
        }
    }
    best.map(|b| b.1)
}

/// Every boundary of every prefix, and its neighbours, plus `extra`.
fn probes4(t: &[(u32, u8, u32)], extra: &[u32]) -> Vec<u32> {
    let mut out = extra.to_vec();
    for &(net, len, _) in t {
        let len = len.min(32);
        let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let lo = net & m;
        let hi = lo | !m;
        out.extend([
            lo,
            hi,
            lo.wrapping_sub(1),
            hi.wrapping_add(1),
            lo | (!m >> 1),
        ]);
    }
    out
}

fn probes6(t: &[(u128, u8, u32)], extra: &[u128]) -> Vec<u128> {
    let mut out = extra.to_vec();
    for &(net, len, _) in t {
        let len = len.min(128);
        let m = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        let lo = net & m;
        let hi = lo | !m;
        out.extend([
            lo,
            hi,
            lo.wrapping_sub(1),
            hi.wrapping_add(1),
            lo | (!m >> 1),
        ]);
    }
    out
}

fn check4(t: &[(u32, u8, u32)], extra: &[u32]) {
    let lpm = Lpm4::build(t);
    for a in probes4(t, extra) {
        assert_eq!(lpm.lookup(a), naive4(t, a), "addr {a:#010x} table {t:?}");
    }
}

fn check6(t: &[(u128, u8, u32)], extra: &[u128]) {
    let lpm = Lpm6::build(t);
    for a in probes6(t, extra) {
        assert_eq!(lpm.lookup(a), naive6(t, a), "addr {a:#034x} table {t:?}");
    }
}

#[test]
fn v4_nested_longest_wins() {
    let t = [
        (0, 0, 100),
        (0x0a00_0000, 8, 1),
        (0x0a01_0000, 16, 2),
        (0x0a01_0200, 24, 3),
        (0x0a01_0203, 32, 4),
    ];
    let lpm = Lpm4::build(&t);
    assert_eq!(lpm.len(), 5);
    assert_eq!(lpm.lookup(0x0a01_0203), Some(4));
    assert_eq!(lpm.lookup(0x0a01_0204), Some(3));
    assert_eq!(lpm.lookup(0x0a01_0300), Some(2));
    assert_eq!(lpm.lookup(0x0aff_ffff), Some(1));
    assert_eq!(lpm.lookup(0x0b00_0000), Some(100));
    check4(&t, &[0, u32::MAX]);
}

#[test]
fn v4_duplicates_first_wins_and_host_bits_ignored() {
    let lpm = Lpm4::build(&[
        (0x0a01_02ff, 24, 7),
        (0x0a01_0200, 24, 8),
        (1, 0, 9),
        (2, 0, 10),
    ]);
    assert_eq!(lpm.len(), 2);
    assert_eq!(lpm.lookup(0x0a01_0201), Some(7));
    assert_eq!(lpm.lookup(0x0b00_0000), Some(9));
}

#[test]
fn v4_every_length_at_both_ends_of_the_space() {
    let mut t = Vec::new();
    for len in 0..=32u8 {
        t.push((0, len, u32::from(len)));
        t.push((u32::MAX, len, 100 + u32::from(len)));
    }
    check4(&t, &[0x8000_0000, 0x7fff_ffff]);
    let lpm = Lpm4::build(&t);
    assert_eq!(lpm.lookup(0), Some(32));
    assert_eq!(lpm.lookup(1), Some(31));
    assert_eq!(lpm.lookup(u32::MAX), Some(132));
    assert_eq!(lpm.lookup(0x8000_0000), Some(101));
    assert_eq!(lpm.lookup(0x7fff_ffff), Some(1));
}

#[test]
fn lengths_past_the_width_count_as_the_width() {
    let lpm = Lpm4::build(&[(0x0102_0304, 40, 1)]);
    assert_eq!(lpm.lookup(0x0102_0304), Some(1));
    assert_eq!(lpm.lookup(0x0102_0305), None);
    let lpm = Lpm6::build(&[(5, 200, 1)]);
    assert_eq!(lpm.lookup(5), Some(1));
    assert_eq!(lpm.lookup(4), None);
}

#[test]
fn values_round_trip_exactly_including_huge_ones() {
    // Values near u32::MAX force the indirect code table.
    let t = [
        (0x0a00_0000, 8, u32::MAX),
        (0x0a01_0000, 16, u32::MAX - 1),
        (0x0a01_0100, 24, 0),
        (0x0a01_0101, 32, 1 << 31),
        (0x0b00_0000, 8, (1 << 31) - 1),
    ];
    let lpm = Lpm4::build(&t);
    assert!(!lpm.codes.values.is_empty(), "indirect codes in use");
    assert_eq!(lpm.trie.leaf_bytes(), 3);
    check4(&t, &[]);
    // Values just under 2^31 with escapes in IPv6: also indirect.
    let net = 0x2001_0db8_u128 << 96;
    let t6 = [
        (net, 32, (1 << 31) - 2),
        (net | 1, 128, (1 << 31) - 3),
        (net | 2 << 64 | 1, 128, 5),
    ];
    check6(&t6, &[net | 3, net | 2 << 64]);
}

#[test]
fn mid_sized_values_use_wide_leaves() {
    let t = [
        (0x0a00_0000, 8, 1 << 24),
        (0x0a01_0000, 16, (1 << 31) - 2),
        (0x0a01_0180, 25, 3),
    ];
    let lpm = Lpm4::build(&t);
    assert_eq!(lpm.trie.leaf_bytes(), 4);
    assert!(lpm.codes.values.is_empty(), "codes are the values");
    check4(&t, &[]);
    let net = 0x2001_0db8_u128 << 96;
    let t6 = [
        (net, 32, 1 << 30),
        (net | 1 << 64 | 1, 128, 7),
        (net | 1 << 64, 96, 1 << 25),
    ];
    let lpm = Lpm6::build(&t6);
    assert_eq!(lpm.trie.leaf_bytes(), 4);
    check6(&t6, &[]);
}

#[test]
fn empty_tables_match_nothing() {
    let t4 = Lpm4::build(&[]);
    assert!(t4.is_empty());
    assert_eq!(t4.len(), 0);
    assert_eq!(t4.lookup(0), None);
    assert_eq!(t4.lookup(u32::MAX), None);
    let t6 = Lpm6::build(&[]);
    assert!(t6.is_empty());
    assert_eq!(t6.lookup(0), None);
    assert_eq!(t6.lookup(u128::MAX), None);
}

#[test]
fn default_routes_cover_everything() {
    let t4 = Lpm4::build(&[(0x1234_5678, 0, 3)]);
    assert_eq!(t4.lookup(0), Some(3));
    assert_eq!(t4.lookup(u32::MAX), Some(3));
    let t6 = Lpm6::build(&[(u128::MAX, 0, 4)]);
    assert_eq!(t6.lookup(0), Some(4));
    assert_eq!(t6.lookup(u128::MAX), Some(4));
}

#[test]
fn v6_host_routes_beside_a_64_and_the_default() {
    let a = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
    let t = [(0, 0, 1), (a, 128, u32::MAX), (a, 64, 5), (a ^ 1, 127, 6)];
    let lpm = Lpm6::build(&t);
    assert_eq!(lpm.lookup(a), Some(u32::MAX));
    assert_eq!(lpm.lookup(a - 1), Some(6));
    assert_eq!(lpm.lookup(a + 1), Some(5));
    assert_eq!(lpm.lookup(1), Some(1));
    check6(&t, &[0, u128::MAX]);
}

#[test]
fn v6_long_prefixes_without_a_covering_64() {
    let net = 0x2001_0db8_0001_0002u128 << 64;
    let t = [
        (0x2001_0db8u128 << 96, 32, 1),
        (net | 0xffff << 48, 80, 2),
        (net | 0xffff_0000_0000_0001, 128, 3),
        ((net + (1 << 64)) | 1 << 63, 65, 4),
    ];
    check6(&t, &[net, net + (1 << 64), net + (2 << 64)]);
    let lpm = Lpm6::build(&t);
    assert_eq!(lpm.lookup(net | 0xffff_0000_0000_0001), Some(3));
    assert_eq!(lpm.lookup(net | 0xffff_0000_0000_0002), Some(2));
    assert_eq!(lpm.lookup(net | 0xfffe_0000_0000_0000), Some(1));
}

#[test]
fn v6_mismatches_at_every_level_of_a_deep_chain() {
    // One /32 with a /48 and a /60 deep inside, and a /128 below a /64: long chains
    // of single-child nodes.
    let net = 0x2001_0db8u128 << 96;
    let deep = net | 0x0001_0000_0000u128 << 64;
    let t = [
        (net, 32, 1),
        (deep, 48, 2),
        (deep | 0x0123_0000_0000_0000u128 << 64 >> 16, 60, 3),
        (deep | 0xabcd, 128, 4),
    ];
    let lpm = Lpm6::build(&t);
    // Flip each bit of the deepest key: every level's mismatch is probed.
    let mut extra = Vec::new();
    for k in [deep | 0xabcd, t[2].0] {
        for bit in 0..128 {
            extra.push(k ^ (1u128 << bit));
        }
    }
    check6(&t, &extra);
    assert_eq!(lpm.lookup(deep | 0xabcd), Some(4));
    assert_eq!(lpm.lookup(deep | 0xabce), Some(2));
    assert_eq!(lpm.lookup(net | 5), Some(1));
}

#[test]
fn v6_every_length_at_both_ends_of_the_space() {
    let mut t = Vec::new();
    for len in 0..=128u8 {
        t.push((0, len, u32::from(len)));
        t.push((u128::MAX, len, 1000 + u32::from(len)));
    }
    check6(&t, &[1 << 127, (1 << 127) - 1]);
}

#[test]
fn small_tables_stay_small() {
    // A 4096-entry direct table and a few nodes.
    let lpm = Lpm4::build(&[(0xc633_6400, 24, 1)]);
    assert!(lpm.memory_bytes() < 17 * 1024, "{lpm:?}");
    let lpm = Lpm6::build(&[(0x2001_0db8u128 << 96, 32, 1)]);
    assert!(lpm.memory_bytes() < 17 * 1024, "{lpm:?}");
    // Empty tables: a 64-entry direct table.
    assert!(Lpm4::build(&[]).memory_bytes() < 512);
    assert!(Lpm6::build(&[]).memory_bytes() < 512);
}

#[test]
fn debug_output_is_a_summary() {
    let lpm = Lpm4::build(&[(0xc633_6400, 24, 1)]);
    let s = alloc::format!("{lpm:?}");
    assert!(s.starts_with("Lpm4 { prefixes: 1,"), "{s}");
    let lpm = Lpm6::build(&[(1, 128, 1)]);
    let s = alloc::format!("{lpm:?}");
    assert!(s.contains("long_64s: 1"), "{s}");
}

#[cfg(feature = "testgen")]
#[test]
fn generated_tables_agree_with_the_naive_model() {
    use crate::testgen::{ipv4_lookups, ipv4_table, ipv6_lookups, ipv6_table, SEED};
    let t4 = ipv4_table(3_000, SEED);
    let lpm4 = Lpm4::build(&t4);
    assert_eq!(lpm4.len(), 3_000);
    for a in ipv4_lookups(&t4, 3_000, 0.5, SEED) {
        assert_eq!(lpm4.lookup(a), naive4(&t4, a));
    }
    check4(&t4, &[]);
    let t6 = ipv6_table(3_000, SEED);
    let lpm6 = Lpm6::build(&t6);
    assert_eq!(lpm6.len(), 3_000);
    for a in ipv6_lookups(&t6, 3_000, 0.5, SEED) {
        assert_eq!(lpm6.lookup(a), naive6(&t6, a));
    }
    check6(&t6, &[]);
}

// ---- property tests -------------------------------------------------------------

/// Lengths weighted towards the interesting ones: stride boundaries, /24, /32.
fn len4() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..=32, Just(0u8), Just(24u8), Just(32u8), 16u8..=26]
}

fn len6() -> impl Strategy<Value = u8> {
    prop_oneof![
        0u8..=128,
        Just(0u8),
        Just(128u8),
        Just(64u8),
        30u8..=50,
        60u8..=70,
        120u8..=128
    ]
}

/// Values in three regimes: small (3-byte codes are the values), 2^24..2^31 (4-byte
/// codes are the values), any (codes index a table of the values).
fn pick_value(mode: u8, v: u32) -> u32 {
    match mode {
        0 => v % 64,
        1 => (1 << 24) + v % (1 << 30),
        _ => v,
    }
}

/// Entries around a few bases, so prefixes nest, collide and sit side by side.
fn table4() -> impl Strategy<Value = Vec<(u32, u8, u32)>> {
    (
        proptest::collection::vec(any::<u32>(), 1..4),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<u32>(),
                len4(),
                any::<u32>(),
                any::<bool>(),
            ),
            0..60,
        ),
        0u8..3,
    )
        .prop_map(|(bases, raw, value_mode)| {
            raw.into_iter()
                .map(|(bi, noise, len, value, near)| {
                    let base = bases[bi.index(bases.len())];
                    // Keep near entries inside a /20 of the base.
                    let net = if near { base ^ (noise & 0xfff) } else { noise };
                    let value = pick_value(value_mode, value);
                    (net, len, value)
                })
                .collect()
        })
}

fn table6() -> impl Strategy<Value = Vec<(u128, u8, u32)>> {
    (
        proptest::collection::vec(any::<u128>(), 1..4),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<u128>(),
                len6(),
                any::<u32>(),
                0u8..3,
            ),
            0..60,
        ),
        0u8..3,
    )
        .prop_map(|(bases, raw, value_mode)| {
            raw.into_iter()
                .map(|(bi, noise, len, value, near)| {
                    let base = bases[bi.index(bases.len())];
                    let net = match near {
                        // Same /64 as the base: long prefixes share escapes.
                        0 => base ^ (noise & u128::from(u64::MAX)),
                        // Same /40.
                        1 => base ^ (noise & (u128::MAX >> 40)),
                        _ => noise,
                    };
                    let value = pick_value(value_mode, value);
                    (net, len, value)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_v4_matches_the_naive_model(t in table4(), extra in proptest::collection::vec(any::<u32>(), 0..32)) {
        let lpm = Lpm4::build(&t);
        for a in probes4(&t, &extra) {
            prop_assert_eq!(lpm.lookup(a), naive4(&t, a), "addr {:#010x}", a);
        }
        let mut distinct: Vec<(u32, u8)> = t.iter().map(|&(n, l, _)| {
            let l = l.min(32);
            (if l == 0 { 0 } else { n & (u32::MAX << (32 - l)) }, l)
        }).collect();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(lpm.len(), distinct.len());
    }

    #[test]
    fn prop_v6_matches_the_naive_model(t in table6(), extra in proptest::collection::vec(any::<u128>(), 0..32)) {
        let lpm = Lpm6::build(&t);
        for a in probes6(&t, &extra) {
            prop_assert_eq!(lpm.lookup(a), naive6(&t, a), "addr {:#034x}", a);
        }
    }

}

proptest! {
    // Each case scans a few thousand prefixes per probe: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn prop_v4_large_random_tables(seed in any::<u64>(), n in 1_000usize..3_000) {
        // Big enough for the 12-bit direct table and deep nodes.
        let mut x = seed;
        let mut next = move || { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 32) as u32 };
        let t: Vec<(u32, u8, u32)> = (0..n).map(|i| {
            let len = [8u8, 16, 20, 22, 24, 24, 24, 28, 32][(next() % 9) as usize];
            (next() & 0x0fff_ffff | 0x1000_0000, len, i as u32)
        }).collect();
        let lpm = Lpm4::build(&t);
        for a in probes4(&t, &[]).into_iter().step_by(7) {
            prop_assert_eq!(lpm.lookup(a), naive4(&t, a));
        }
    }
}

#[test]
fn builder_shape_is_minimal_for_a_single_24() {
    let lpm = Lpm4::build(&[(0xc633_6400, 24, 1)]);
    let (direct, nodes, leaves, roots) = lpm.trie.shape();
    assert_eq!(lpm.trie.leaf_bytes(), 3);
    assert_eq!(direct, 4096);
    // 12 direct bits, then nodes at 12 and 18: the /24 ends at 24.
    assert_eq!(nodes, 2);
    // Each node: runs (none, child-or-leaf, none) → at most 3 leaves.
    assert!(leaves <= 6, "{leaves}");
    assert_eq!(roots, 0);
}
