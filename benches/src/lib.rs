//! Benchmarks of the MAPS classifier's longest-prefix-match tables
//! ([`policy_core::lpm`]) against the baselines they are compared with, measured in
//! the same run on the same seeded tables ([`policy_core::testgen`]):
//!
//! | impl | what |
//! |---|---|
//! | `maps` | [`policy_core::Lpm4`] / [`policy_core::Lpm6`] (Poptrie) |
//! | `dir24-8` | [`dir24_8::Dir24_8`], the classic line-rate IPv4 table (reference) |
//! | `prefix-trie` | the `prefix-trie` crate's `PrefixMap` |
//! | `ip-network-table` | the `ip_network_table` crate (a tree bitmap) |
//! | `linear` | the naive model, a scan over every prefix (small tables only) |
//!
//! Beside the seeded tables, [`bgp`] loads a real BGP-derived table (pyasn's RouteViews
//! snapshot, fetched by `make bgp-data`) for the `v4-bgp` / `v6-bgp` benches.
//!
//! `benches/lpm.rs` holds the criterion benches; `tests/agree.rs` checks that every
//! implementation gives the same answers (`tests/bgp.rs` on the BGP table); the
//! `lpm-report` binary turns criterion's estimates into the LPM section of
//! `benches/RESULTS.md`.

pub mod bgp;
pub mod dir24_8;

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use policy_core::testgen;
use policy_core::{Lpm4, Lpm6};
use prefix_trie::PrefixMap;
use std::net::{Ipv4Addr, Ipv6Addr};

pub use dir24_8::Dir24_8;

/// IPv4 table size of the `v4-1m` benches.
pub const V4_N: usize = 1_000_000;
/// IPv6 table size of the `v6-200k` benches.
pub const V6_N: usize = 200_000;
/// Table size of the `linear` benches (`v4-1k`, `v6-1k`).
pub const SMALL_N: usize = 1_000;
/// Addresses in a lookup stream (one bench iteration looks up each once).
pub const LOOKUPS: usize = 1_000_000;
/// Share of lookups that hit a prefix.
pub const HIT_RATIO: f64 = 0.5;

/// The table sizes one run uses: full in `cargo bench`, scaled down in criterion's
/// test mode (`cargo test --benches`), where each bench runs once as a correctness
/// smoke test.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub v4: usize,
    pub v6: usize,
    pub small: usize,
    pub lookups: usize,
}

impl Sizes {
    /// Full sizes.
    pub const FULL: Sizes = Sizes {
        v4: V4_N,
        v6: V6_N,
        small: SMALL_N,
        lookups: LOOKUPS,
    };
    /// Test-mode sizes.
    pub const TEST: Sizes = Sizes {
        v4: 20_000,
        v6: 5_000,
        small: 200,
        lookups: 5_000,
    };
}

fn mask4(net: u32, len: u8) -> u32 {
    let len = len.min(32);
    if len == 0 {
        0
    } else {
        net & (u32::MAX << (32 - len))
    }
}

fn mask6(net: u128, len: u8) -> u128 {
    let len = len.min(128);
    if len == 0 {
        0
    } else {
        net & (u128::MAX << (128 - len))
    }
}

/// `prefix-trie`'s `PrefixMap` over `(u32, u8)` prefixes.
pub struct PrefixTrie4(PrefixMap<(u32, u8), u32>);

impl PrefixTrie4 {
    /// Builds the map; the first of duplicate prefixes wins.
    pub fn build(entries: &[(u32, u8, u32)]) -> Self {
        let mut m = PrefixMap::new();
        for &(net, len, v) in entries.iter().rev() {
            let len = len.min(32);
            m.insert((mask4(net, len), len), v);
        }
        PrefixTrie4(m)
    }
    /// Longest match.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.0.get_lpm(&(addr, 32)).map(|(_, v)| *v)
    }
    /// Heap bytes, as the crate reports them.
    pub fn memory_bytes(&self) -> usize {
        self.0.mem_size()
    }
}

/// `prefix-trie`'s `PrefixMap` over `(u128, u8)` prefixes.
pub struct PrefixTrie6(PrefixMap<(u128, u8), u32>);

impl PrefixTrie6 {
    /// Builds the map; the first of duplicate prefixes wins.
    pub fn build(entries: &[(u128, u8, u32)]) -> Self {
        let mut m = PrefixMap::new();
        for &(net, len, v) in entries.iter().rev() {
            let len = len.min(128);
            m.insert((mask6(net, len), len), v);
        }
        PrefixTrie6(m)
    }
    /// Longest match.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.0.get_lpm(&(addr, 128)).map(|(_, v)| *v)
    }
    /// Heap bytes, as the crate reports them.
    pub fn memory_bytes(&self) -> usize {
        self.0.mem_size()
    }
}

/// `ip_network_table`'s `IpNetworkTable` (IPv4 and IPv6 sides).
pub struct NetworkTable(IpNetworkTable<u32>);

impl NetworkTable {
    /// Builds an IPv4 table; the first of duplicate prefixes wins.
    pub fn build4(entries: &[(u32, u8, u32)]) -> Self {
        let mut t = IpNetworkTable::new();
        for &(net, len, v) in entries.iter().rev() {
            let len = len.min(32);
            if let Ok(n) = Ipv4Network::new(Ipv4Addr::from(mask4(net, len)), len) {
                t.insert(n, v);
            }
        }
        NetworkTable(t)
    }
    /// Builds an IPv6 table; the first of duplicate prefixes wins.
    pub fn build6(entries: &[(u128, u8, u32)]) -> Self {
        let mut t = IpNetworkTable::new();
        for &(net, len, v) in entries.iter().rev() {
            let len = len.min(128);
            if let Ok(n) = Ipv6Network::new(Ipv6Addr::from(mask6(net, len)), len) {
                t.insert(n, v);
            }
        }
        NetworkTable(t)
    }
    /// Longest IPv4 match.
    #[inline]
    pub fn lookup4(&self, addr: u32) -> Option<u32> {
        self.0
            .longest_match_ipv4(Ipv4Addr::from(addr))
            .map(|(_, v)| *v)
    }
    /// Longest IPv6 match.
    #[inline]
    pub fn lookup6(&self, addr: u128) -> Option<u32> {
        self.0
            .longest_match_ipv6(Ipv6Addr::from(addr))
            .map(|(_, v)| *v)
    }
}

/// The IPv4 workload: the table and its lookup stream (same seed as the tests).
pub struct Workload4 {
    pub table: Vec<(u32, u8, u32)>,
    pub lookups: Vec<u32>,
}

impl Workload4 {
    /// `n` prefixes, `lookups` addresses, [`HIT_RATIO`] of them hits.
    pub fn new(n: usize, lookups: usize) -> Self {
        Self::from_table(testgen::ipv4_table(n, testgen::SEED), lookups)
    }
    /// A given table (e.g. [`bgp`]'s) with a stream drawn from it the same way.
    pub fn from_table(table: Vec<(u32, u8, u32)>, lookups: usize) -> Self {
        let lookups = testgen::ipv4_lookups(&table, lookups, HIT_RATIO, testgen::SEED);
        Workload4 { table, lookups }
    }
}

/// The IPv6 workload.
pub struct Workload6 {
    pub table: Vec<(u128, u8, u32)>,
    pub lookups: Vec<u128>,
}

impl Workload6 {
    /// `n` prefixes, `lookups` addresses, [`HIT_RATIO`] of them hits.
    pub fn new(n: usize, lookups: usize) -> Self {
        Self::from_table(testgen::ipv6_table(n, testgen::SEED), lookups)
    }
    /// A given table with a stream drawn from it the same way (misses inside
    /// `2000::/3`).
    pub fn from_table(table: Vec<(u128, u8, u32)>, lookups: usize) -> Self {
        let lookups = testgen::ipv6_lookups(&table, lookups, HIT_RATIO, testgen::SEED);
        Workload6 { table, lookups }
    }
}

/// Sums the values found for `addrs` (what a bench iteration computes, so the
/// lookups cannot be optimised away).
#[inline]
pub fn sum<A: Copy>(addrs: &[A], f: impl Fn(A) -> Option<u32>) -> u64 {
    addrs
        .iter()
        .fold(0u64, |s, &a| s.wrapping_add(f(a).map_or(0, u64::from)))
}

/// Every implementation built on one IPv4 table.
pub struct All4 {
    pub maps: Lpm4,
    pub dir: Dir24_8,
    pub prefix_trie: PrefixTrie4,
    pub network_table: NetworkTable,
}

impl All4 {
    /// Builds them all; `None` if DIR-24-8 cannot hold the values.
    pub fn build(table: &[(u32, u8, u32)]) -> Option<Self> {
        Some(All4 {
            maps: Lpm4::build(table),
            dir: Dir24_8::build(table)?,
            prefix_trie: PrefixTrie4::build(table),
            network_table: NetworkTable::build4(table),
        })
    }
}

/// Every implementation built on one IPv6 table.
pub struct All6 {
    pub maps: Lpm6,
    pub prefix_trie: PrefixTrie6,
    pub network_table: NetworkTable,
}

impl All6 {
    /// Builds them all.
    pub fn build(table: &[(u128, u8, u32)]) -> Self {
        All6 {
            maps: Lpm6::build(table),
            prefix_trie: PrefixTrie6::build(table),
            network_table: NetworkTable::build6(table),
        }
    }
}
