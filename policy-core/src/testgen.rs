//! Seeded, realistic prefix tables and lookup streams, shared by the tests and the
//! benches, and by `mapsctl gen`/`bench` (feature `synth`; the naive reference models
//! [`linear4`] and [`linear6`] need `testgen`): the same seed gives the same table
//! everywhere.
//!
//! The generator mimics the shape of a default-free-zone routing table rather than
//! uniform noise, because the size and speed of a prefix table depend on that shape:
//!
//! - **Lengths** follow a fixed distribution: IPv4 about 60 % /24, the rest spread over
//!   /8–/23 (most of it /16–/23) and about 3 % /25–/32; IPv6 mostly /32–/48 (about
//!   45 % /48), some /56–/64 and about 1 % longer than /64.
//! - **Clustering**: prefixes belong to "organisations", each holding an allocation
//!   block (IPv4 /14–/22, IPv6 /20–/32) in public unicast space. An organisation's
//!   more-specifics are mostly announced as contiguous runs (de-aggregation), the
//!   rest at random inside its block; a prefix shorter than the block covers it.
//!   About one prefix in sixteen opens a new organisation.
//! - **Nesting** follows from both: a short prefix covers an organisation's
//!   more-specifics, and prefixes of different lengths share blocks.
//! - Prefixes are distinct, in random order, and entry `i` has value `i`.
//!
//! Lookup streams mix hits (a random address inside a random prefix of the table)
//! and misses (a uniformly random address, IPv6 within `2000::/3`, that no prefix
//! covers) at a given ratio.
//!
//! The naive models [`linear4`] and [`linear6`] (a scan over every entry) are the
//! reference the property tests and benches compare against.

use alloc::vec::Vec;

/// The seed the tests and benches share.
pub const SEED: u64 = 0x4d41_5053_4c50_4d31;

/// The splitmix64 generator (Steele, Lea and Flood): tiny, fast, and good enough
/// for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 128 random bits.
    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p` (clamped to `0.0..=1.0`).
    pub fn chance(&mut self, p: f64) -> bool {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        // 2^-53 resolution: enough for test data.
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn weighted(&mut self, table: &[(u8, u32)]) -> u8 {
        let total: u64 = table.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut r = self.below(total);
        for &(v, w) in table {
            if r < u64::from(w) {
                return v;
            }
            r -= u64::from(w);
        }
        table.last().map_or(0, |&(v, _)| v)
    }
}

/// IPv4 prefix lengths, weights out of about 11,500 (/24 is 60 %).
const V4_LENGTHS: &[(u8, u32)] = &[
    (8, 2),
    (9, 2),
    (10, 4),
    (11, 8),
    (12, 20),
    (13, 40),
    (14, 70),
    (15, 100),
    (16, 300),
    (17, 200),
    (18, 350),
    (19, 400),
    (20, 500),
    (21, 500),
    (22, 1000),
    (23, 800),
    (24, 6900),
    (25, 60),
    (26, 50),
    (27, 40),
    (28, 40),
    (29, 40),
    (30, 30),
    (31, 10),
    (32, 30),
];

/// IPv4 organisation block lengths.
const V4_BLOCKS: &[(u8, u32)] = &[
    (14, 2),
    (15, 4),
    (16, 10),
    (17, 10),
    (18, 14),
    (19, 16),
    (20, 18),
    (21, 14),
    (22, 12),
];

/// IPv6 prefix lengths, weights out of 1,000.
const V6_LENGTHS: &[(u8, u32)] = &[
    (20, 2),
    (24, 3),
    (28, 10),
    (29, 20),
    (30, 5),
    (32, 150),
    (33, 15),
    (34, 15),
    (35, 10),
    (36, 30),
    (37, 5),
    (38, 10),
    (39, 10),
    (40, 50),
    (41, 5),
    (42, 15),
    (43, 5),
    (44, 60),
    (45, 10),
    (46, 20),
    (47, 30),
    (48, 440),
    (52, 10),
    (56, 30),
    (60, 10),
    (64, 20),
    (80, 2),
    (96, 2),
    (112, 2),
    (120, 1),
    (124, 1),
    (127, 1),
    (128, 1),
];

/// IPv6 organisation block lengths.
const V6_BLOCKS: &[(u8, u32)] = &[(20, 2), (24, 4), (28, 10), (29, 20), (32, 50)];

/// Public IPv4 first octets (no 0, 10, 100, 127, 169, 172, 192, 198 or 224+): the
/// generator stays in ordinary unicast space.
fn v4_public_octet(rng: &mut SplitMix64) -> u32 {
    loop {
        let o = 1 + rng.below(223) as u32;
        if !matches!(o, 10 | 100 | 127 | 169 | 172 | 192 | 198) {
            return o;
        }
    }
}

fn mask4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn mask6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// One organisation: an allocation block and a de-aggregation cursor.
struct Org<K> {
    base: K,
    len: u8,
    cursor: K,
}

/// Shuffles, truncates to `n` and numbers the entries `0..n`.
fn finish<K: Copy + Ord>(
    mut keys: Vec<(K, u8)>,
    n: usize,
    rng: &mut SplitMix64,
) -> Vec<(K, u8, u32)> {
    keys.sort_unstable();
    keys.dedup();
    // Fisher-Yates.
    for i in (1..keys.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        keys.swap(i, j);
    }
    keys.truncate(n);
    keys.into_iter()
        .enumerate()
        .map(|(i, (k, l))| (k, l, i as u32))
        .collect()
}

/// A realistic IPv4 table of `n` distinct prefixes (see the module doc); entry `i`
/// has value `i`.
///
/// ```
/// use policy_core::testgen::{ipv4_table, SEED};
/// let t = ipv4_table(1000, SEED);
/// assert_eq!(t.len(), 1000);
/// assert_eq!(t, ipv4_table(1000, SEED));
/// assert!(t.iter().all(|&(net, len, _)| len <= 32 && net & !(u32::MAX << (32 - len)) == 0));
/// ```
pub fn ipv4_table(n: usize, seed: u64) -> Vec<(u32, u8, u32)> {
    let mut rng = SplitMix64::new(seed);
    let mut orgs: Vec<Org<u32>> = Vec::new();
    let mut keys: Vec<(u32, u8)> = Vec::with_capacity(n + n / 8);
    // Draw a few more than needed; after removing duplicates, draw again if short.
    let mut target = n + n / 64 + 8;
    loop {
        let len = rng.weighted(V4_LENGTHS);
        if orgs.is_empty() || rng.chance(1.0 / 16.0) {
            let blen = rng.weighted(V4_BLOCKS);
            let base = mask4(
                (v4_public_octet(&mut rng) << 24) | (rng.next_u64() as u32 & 0x00ff_ffff),
                blen,
            );
            orgs.push(Org {
                base,
                len: blen,
                cursor: base,
            });
        }
        let oi = rng.below(orgs.len() as u64) as usize;
        let Some(org) = orgs.get_mut(oi) else {
            continue;
        };
        let key = if len <= org.len {
            // A covering (or equal) prefix: nests the organisation's more-specifics.
            mask4(org.base, len)
        } else {
            let size = 1u64 << (32 - len);
            let end = u64::from(org.base) + (1u64 << (32 - org.len));
            let aligned = u64::from(org.cursor).div_ceil(size) * size;
            if rng.chance(0.75) && aligned + size <= end {
                org.cursor = (aligned + size).min(end - 1) as u32;
                aligned as u32
            } else {
                let off = rng.next_u64() as u32 & !(u32::MAX << (32 - org.len));
                mask4(org.base | off, len)
            }
        };
        keys.push((key, len));
        if keys.len() >= target {
            keys.sort_unstable();
            keys.dedup();
            if keys.len() >= n {
                break;
            }
            target = keys.len() + 2 * (n - keys.len()) + 8;
        }
    }
    finish(keys, n, &mut rng)
}

/// A realistic IPv6 table of `n` distinct prefixes (see the module doc); entry `i`
/// has value `i`.
///
/// ```
/// use policy_core::testgen::{ipv6_table, SEED};
/// let t = ipv6_table(1000, SEED);
/// assert_eq!(t.len(), 1000);
/// assert!(t.iter().all(|&(net, _, _)| net >> 125 == 1)); // inside 2000::/3
/// ```
pub fn ipv6_table(n: usize, seed: u64) -> Vec<(u128, u8, u32)> {
    let mut rng = SplitMix64::new(seed ^ 0x0006_0006_0006_0006);
    let mut orgs: Vec<Org<u128>> = Vec::new();
    let mut keys: Vec<(u128, u8)> = Vec::with_capacity(n + n / 8);
    let mut target = n + n / 64 + 8;
    loop {
        let len = rng.weighted(V6_LENGTHS);
        if orgs.is_empty() || rng.chance(1.0 / 16.0) {
            let blen = rng.weighted(V6_BLOCKS);
            let base = mask6((1u128 << 125) | (rng.next_u128() >> 3), blen);
            orgs.push(Org {
                base,
                len: blen,
                cursor: base,
            });
        }
        let oi = rng.below(orgs.len() as u64) as usize;
        let Some(org) = orgs.get_mut(oi) else {
            continue;
        };
        let key = if len <= org.len {
            mask6(org.base, len)
        } else {
            // Blocks are at most /20 here, so sizes and ends fit comfortably.
            let size = 1u128 << (128 - u32::from(len));
            let end = org.base + (1u128 << (128 - u32::from(org.len)));
            let aligned = org.cursor.div_ceil(size) * size;
            if rng.chance(0.75) && aligned + size <= end {
                org.cursor = (aligned + size).min(end - 1);
                aligned
            } else {
                let off = rng.next_u128() & !(u128::MAX << (128 - u32::from(org.len)));
                mask6(org.base | off, len)
            }
        };
        keys.push((key, len));
        if keys.len() >= target {
            keys.sort_unstable();
            keys.dedup();
            if keys.len() >= n {
                break;
            }
            target = keys.len() + 2 * (n - keys.len()) + 8;
        }
    }
    finish(keys, n, &mut rng)
}

/// The union of the table's prefixes as sorted, disjoint, inclusive intervals.
fn coverage4(table: &[(u32, u8, u32)]) -> Vec<(u32, u32)> {
    let mut iv: Vec<(u32, u32)> = table
        .iter()
        .map(|&(net, len, _)| {
            let lo = mask4(net, len);
            let hi = if len == 0 {
                u32::MAX
            } else {
                lo | !(u32::MAX << (32 - u32::from(len.min(32))))
            };
            (lo, hi)
        })
        .collect();
    iv.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(iv.len());
    for (lo, hi) in iv {
        match out.last_mut() {
            Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn coverage6(table: &[(u128, u8, u32)]) -> Vec<(u128, u128)> {
    let mut iv: Vec<(u128, u128)> = table
        .iter()
        .map(|&(net, len, _)| {
            let lo = mask6(net, len);
            let hi = if len == 0 {
                u128::MAX
            } else {
                lo | !(u128::MAX << (128 - u32::from(len.min(128))))
            };
            (lo, hi)
        })
        .collect();
    iv.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(iv.len());
    for (lo, hi) in iv {
        match out.last_mut() {
            Some(last) if last.1 == u128::MAX || lo <= last.1 + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn covered<K: Copy + Ord>(cov: &[(K, K)], a: K) -> bool {
    let i = cov.partition_point(|&(lo, _)| lo <= a);
    i > 0 && cov.get(i - 1).is_some_and(|&(_, hi)| a <= hi)
}

/// `count` IPv4 lookup addresses: a fraction `hit_ratio` inside a random prefix of
/// `table`, the rest uncovered by every prefix (if the table leaves no address
/// uncovered after 64 tries, a hit is used instead).
///
/// ```
/// use policy_core::testgen::{ipv4_lookups, ipv4_table, linear4, SEED};
/// let t = ipv4_table(500, SEED);
/// let q = ipv4_lookups(&t, 1000, 0.5, SEED);
/// let hits = q.iter().filter(|&&a| linear4(&t, a).is_some()).count();
/// assert!((400..=600).contains(&hits));
/// ```
pub fn ipv4_lookups(table: &[(u32, u8, u32)], count: usize, hit_ratio: f64, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed ^ 0x4c4f_4f4b_5550_0004);
    let cov = coverage4(table);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut addr = None;
        if !rng.chance(hit_ratio) {
            addr = (0..64)
                .map(|_| rng.next_u64() as u32)
                .find(|&a| !covered(&cov, a));
        }
        if addr.is_none() && !table.is_empty() {
            let i = rng.below(table.len() as u64) as usize;
            if let Some(&(net, len, _)) = table.get(i) {
                let host = if len >= 32 {
                    0
                } else if len == 0 {
                    rng.next_u64() as u32
                } else {
                    rng.next_u64() as u32 & !(u32::MAX << (32 - u32::from(len)))
                };
                addr = Some(mask4(net, len) | host);
            }
        }
        out.push(addr.unwrap_or(0));
    }
    out
}

/// `count` IPv6 lookup addresses, as [`ipv4_lookups`]; misses are drawn inside
/// `2000::/3`.
pub fn ipv6_lookups(
    table: &[(u128, u8, u32)],
    count: usize,
    hit_ratio: f64,
    seed: u64,
) -> Vec<u128> {
    let mut rng = SplitMix64::new(seed ^ 0x4c4f_4f4b_5550_0006);
    let cov = coverage6(table);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut addr = None;
        if !rng.chance(hit_ratio) {
            addr = (0..64)
                .map(|_| (1u128 << 125) | (rng.next_u128() >> 3))
                .find(|&a| !covered(&cov, a));
        }
        if addr.is_none() && !table.is_empty() {
            let i = rng.below(table.len() as u64) as usize;
            if let Some(&(net, len, _)) = table.get(i) {
                let host = if len >= 128 {
                    0
                } else if len == 0 {
                    rng.next_u128()
                } else {
                    rng.next_u128() & !(u128::MAX << (128 - u32::from(len)))
                };
                addr = Some(mask6(net, len) | host);
            }
        }
        out.push(addr.unwrap_or(0));
    }
    out
}

/// The naive model: the value of the longest prefix of `table` containing `addr`,
/// by a scan over every entry (first entry wins among equal prefixes; lengths above
/// 32 count as 32). Test-only (feature `testgen`).
#[cfg(feature = "testgen")]
pub fn linear4(table: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(net, len, value) in table {
        let len = len.min(32);
        if mask4(addr, len) == mask4(net, len) && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, value));
        }
    }
    best.map(|(_, v)| v)
}

/// The naive model for IPv6 (see [`linear4`]). Test-only (feature `testgen`).
#[cfg(feature = "testgen")]
pub fn linear6(table: &[(u128, u8, u32)], addr: u128) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(net, len, value) in table {
        let len = len.min(128);
        if mask6(addr, len) == mask6(net, len) && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, value));
        }
    }
    best.map(|(_, v)| v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn v4_table_has_the_documented_shape() {
        let t = ipv4_table(20_000, SEED);
        assert_eq!(t.len(), 20_000);
        let mut sorted: Vec<_> = t.iter().map(|&(k, l, _)| (k, l)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20_000, "prefixes are distinct");
        let n24 = t.iter().filter(|e| e.1 == 24).count();
        assert!((11_000..13_000).contains(&n24), "about 60 % /24: {n24}");
        let long = t.iter().filter(|e| e.1 > 24).count();
        assert!((200..1_200).contains(&long), "a few /25-/32: {long}");
        // Nesting: a good share of prefixes is covered by a shorter one.
        let nested = t
            .iter()
            .filter(|&&(k, l, _)| (0..l).any(|p| sorted.binary_search(&(mask4(k, p), p)).is_ok()))
            .count();
        assert!(nested > 2_000, "nested prefixes: {nested}");
        assert!(t.iter().enumerate().all(|(i, e)| e.2 == i as u32));
    }

    #[test]
    fn v6_table_has_the_documented_shape() {
        let t = ipv6_table(10_000, SEED);
        assert_eq!(t.len(), 10_000);
        let mid = t.iter().filter(|e| (32..=48).contains(&e.1)).count();
        assert!(mid > 8_000, "mostly /32-/48: {mid}");
        let long = t.iter().filter(|e| e.1 > 64).count();
        assert!((20..300).contains(&long), "a few longer than /64: {long}");
    }

    #[test]
    fn lookups_respect_the_hit_ratio() {
        let t = ipv6_table(2_000, SEED);
        let q = ipv6_lookups(&t, 2_000, 0.25, SEED);
        let hits = q.iter().filter(|&&a| linear6(&t, a).is_some()).count();
        assert!((400..600).contains(&hits), "{hits}");
        let t4 = ipv4_table(2_000, SEED);
        let q4 = ipv4_lookups(&t4, 2_000, 1.0, SEED);
        assert!(q4.iter().all(|&a| linear4(&t4, a).is_some()));
        let q4 = ipv4_lookups(&t4, 2_000, 0.0, SEED);
        assert!(q4.iter().all(|&a| linear4(&t4, a).is_none()));
    }

    #[test]
    fn generators_are_deterministic() {
        assert_eq!(ipv4_table(3_000, 7), ipv4_table(3_000, 7));
        assert_ne!(ipv4_table(3_000, 7), ipv4_table(3_000, 8));
        assert_eq!(ipv6_table(3_000, 7), ipv6_table(3_000, 7));
    }
}
