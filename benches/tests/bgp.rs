//! On the real BGP-derived table (`make bgp-data`), `maps` gives the answer of a naive
//! reference for a sample of addresses: the benches' lookup stream and the edges of a
//! share of the prefixes. Skips with a message when the file is absent; fails when it
//! is present but damaged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use maps_benches::{bgp, Workload4, Workload6};
use policy_core::testgen::{linear4, linear6};
use policy_core::{Lpm4, Lpm6};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::sync::OnceLock;

/// The table, loaded once for both tests, or `None` after saying why the test is
/// skipped. (Written to stderr directly: the test harness captures `eprintln!`, and a
/// skip must be seen.)
fn table(test: &str) -> Option<&'static bgp::BgpTable> {
    static TABLE: OnceLock<Result<Option<bgp::BgpTable>, String>> = OnceLock::new();
    match TABLE.get_or_init(bgp::load) {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                bgp::skip_message(test, &bgp::path())
            );
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A multiplicative hash: the keys are network addresses, and SipHash in a debug
/// build would make the reference the slowest part of the test.
#[derive(Default)]
struct MulHash(u64);

impl Hasher for MulHash {
    fn finish(&self) -> u64 {
        // The product's high bits are the mixed ones; the table indexes by the low bits
        // (and networks end in zero bits), so fold the high half down.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64((n >> 64) as u64);
        self.write_u64(n as u64);
    }
}

type Map<K> = HashMap<K, u32, BuildHasherDefault<MulHash>>;

/// The reference: one hash map per prefix length, probed from the longest length
/// down (lengths without a prefix skipped). Independent of the trie, and fast enough
/// for a few hundred thousand addresses in a debug build; the crate's linear scan
/// checks it on a few.
struct ByLength<K> {
    /// `(length, networks of that length)`, longest first.
    maps: Vec<(u8, Map<K>)>,
    mask: fn(K, u8) -> K,
}

impl<K: Copy + Eq + std::hash::Hash> ByLength<K> {
    fn new(t: &[(K, u8, u32)], mask: fn(K, u8) -> K) -> Self {
        let mut by_len: BTreeMap<u8, Map<K>> = BTreeMap::new();
        for &(net, len, v) in t {
            by_len
                .entry(len)
                .or_default()
                .entry(mask(net, len))
                .or_insert(v);
        }
        ByLength {
            maps: by_len.into_iter().rev().collect(),
            mask,
        }
    }
    fn lookup(&self, a: K) -> Option<u32> {
        self.maps
            .iter()
            .find_map(|(len, m)| m.get(&(self.mask)(a, *len)).copied())
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - len))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len))
    }
}

/// First and last address of every `step`-th prefix and their outside neighbours.
fn edges<K: Copy>(t: &[(K, u8, u32)], step: usize, span: impl Fn(K, u8) -> [K; 4]) -> Vec<K> {
    t.iter()
        .step_by(step)
        .flat_map(|&(net, len, _)| span(net, len))
        .collect()
}

#[test]
fn maps_matches_the_naive_reference_on_the_bgp_ipv4_table() {
    let Some(t) = table("maps_matches_the_naive_reference_on_the_bgp_ipv4_table") else {
        return;
    };
    // The snapshot `make bgp-data` pins (its SHA-256 is checked there).
    assert_eq!(t.v4.len(), 606_138, "IPv4 prefixes in the snapshot");
    let maps = Lpm4::build(&t.v4);
    assert_eq!(
        maps.len(),
        t.v4.len(),
        "the snapshot has no duplicate prefix"
    );
    let reference = ByLength::new(&t.v4, mask4);

    let w = Workload4::from_table(t.v4.clone(), 50_000);
    let mut addrs = w.lookups.clone();
    addrs.extend(edges(&t.v4, 20, |net, len| {
        let lo = mask4(net, len);
        let hi = lo | !mask4(u32::MAX, len);
        [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]
    }));
    let mut hits = 0usize;
    for &a in &addrs {
        let want = reference.lookup(a);
        hits += usize::from(want.is_some());
        assert_eq!(
            maps.lookup(a),
            want,
            "maps at {}",
            std::net::Ipv4Addr::from(a)
        );
    }
    // The stream is half hits, and the edges hit too: both cases are exercised.
    let stream_hits = w
        .lookups
        .iter()
        .filter(|&&a| reference.lookup(a).is_some())
        .count();
    assert!(
        (20_000..=30_000).contains(&stream_hits),
        "{stream_hits} hits of 50,000"
    );
    assert!(hits > addrs.len() / 2, "{hits} of {}", addrs.len());
    // The reference itself against the crate's linear scan, on a few addresses.
    for &a in w.lookups.iter().step_by(2_500) {
        assert_eq!(
            reference.lookup(a),
            linear4(&t.v4, a),
            "reference at {a:#x}"
        );
    }
}

#[test]
fn maps_matches_the_naive_reference_on_the_bgp_ipv6_table() {
    let Some(t) = table("maps_matches_the_naive_reference_on_the_bgp_ipv6_table") else {
        return;
    };
    assert_eq!(t.v6.len(), 27_693, "IPv6 prefixes in the snapshot");
    let maps = Lpm6::build(&t.v6);
    assert_eq!(
        maps.len(),
        t.v6.len(),
        "the snapshot has no duplicate prefix"
    );
    let reference = ByLength::new(&t.v6, mask6);

    let w = Workload6::from_table(t.v6.clone(), 50_000);
    let mut addrs = w.lookups.clone();
    addrs.extend(edges(&t.v6, 1, |net, len| {
        let lo = mask6(net, len);
        let hi = lo | !mask6(u128::MAX, len);
        [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]
    }));
    for &a in &addrs {
        assert_eq!(
            maps.lookup(a),
            reference.lookup(a),
            "maps at {}",
            std::net::Ipv6Addr::from(a)
        );
    }
    let stream_hits = w
        .lookups
        .iter()
        .filter(|&&a| reference.lookup(a).is_some())
        .count();
    assert!(
        (20_000..=30_000).contains(&stream_hits),
        "{stream_hits} hits of 50,000"
    );
    for &a in w.lookups.iter().step_by(250) {
        assert_eq!(
            reference.lookup(a),
            linear6(&t.v6, a),
            "reference at {a:#x}"
        );
    }
}
