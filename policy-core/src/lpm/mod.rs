//! Longest-prefix-match tables for IPv4 (`u32` keys) and IPv6 (`u128` keys).
//!
//! INTERFACE CONTRACT (used by `classify`; keep these signatures):
//!
//! ```text
//! Lpm4::build(entries: &[(u32, u8, u32)]) -> Lpm4   // (network, length, value); host bits are ignored
//! Lpm4::lookup(&self, addr: u32) -> Option<u32>      // value of the longest prefix containing addr
//! Lpm4::len(&self) -> usize                          // number of distinct prefixes
//! Lpm4::memory_bytes(&self) -> usize                 // heap bytes of the compiled table
//! Lpm6::build(entries: &[(u128, u8, u32)]) -> Lpm6   // same for IPv6
//! Lpm6::lookup(&self, addr: u128) -> Option<u32>
//! ```
//!
//! When the same prefix appears twice, the first entry's value wins. Lengths above
//! the family's width (32 or 128) are clamped to it.
//!
//! First version: one sorted table per prefix length, searched longest length first
//! (binary search per length). Correct and simple; a Poptrie replaces it.

use alloc::vec::Vec;

/// Per-length sorted tables over a key type `K` of `BITS` bits.
#[derive(Clone, Debug, Default)]
struct PerLength<K> {
    /// `(length, sorted (network, value))`, longest length first.
    tables: Vec<(u8, Vec<(K, u32)>)>,
    count: usize,
}

trait Key: Copy + Ord + core::fmt::Debug {
    const BITS: u8;
    fn mask(self, len: u8) -> Self;
}

impl Key for u32 {
    const BITS: u8 = 32;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len.min(32))))
        }
    }
}

impl Key for u128 {
    const BITS: u8 = 128;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len.min(128))))
        }
    }
}

impl<K: Key> PerLength<K> {
    fn build(entries: &[(K, u8, u32)]) -> Self {
        let mut all: Vec<(u8, K, usize, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, &(net, len, value))| {
                let len = len.min(K::BITS);
                (len, net.mask(len), i, value)
            })
            .collect();
        // Longest length first; within a length by network, then input order (first wins).
        all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        all.dedup_by(|next, kept| next.0 == kept.0 && next.1 == kept.1);
        let count = all.len();
        let mut tables: Vec<(u8, Vec<(K, u32)>)> = Vec::new();
        for (len, net, _, value) in all {
            match tables.last_mut() {
                Some((l, t)) if *l == len => t.push((net, value)),
                _ => tables.push((len, alloc::vec![(net, value)])),
            }
        }
        PerLength { tables, count }
    }

    fn lookup(&self, addr: K) -> Option<u32> {
        for (len, table) in &self.tables {
            let key = addr.mask(*len);
            if let Ok(i) = table.binary_search_by(|(net, _)| net.cmp(&key)) {
                return table.get(i).map(|&(_, v)| v);
            }
        }
        None
    }

    fn memory_bytes(&self) -> usize {
        self.tables.capacity() * core::mem::size_of::<(u8, Vec<(K, u32)>)>()
            + self
                .tables
                .iter()
                .map(|(_, t)| t.capacity() * core::mem::size_of::<(K, u32)>())
                .sum::<usize>()
    }
}

/// An immutable IPv4 longest-prefix-match table.
#[derive(Clone, Debug, Default)]
pub struct Lpm4 {
    inner: PerLength<u32>,
}

impl Lpm4 {
    /// Builds the table from `(network, prefix length, value)`; host bits are ignored,
    /// and when a prefix appears twice the first value wins.
    ///
    /// ```
    /// use policy_core::lpm::Lpm4;
    /// let t = Lpm4::build(&[(0x0a00_0000, 8, 1), (0x0a01_0000, 16, 2)]);
    /// assert_eq!(t.lookup(0x0a01_0203), Some(2));
    /// assert_eq!(t.lookup(0x0a02_0000), Some(1));
    /// assert_eq!(t.lookup(0x0b00_0000), None);
    /// ```
    pub fn build(entries: &[(u32, u8, u32)]) -> Lpm4 {
        Lpm4 {
            inner: PerLength::build(entries),
        }
    }

    /// The value of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.inner.lookup(addr)
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.inner.count
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.inner.count == 0
    }

    /// Heap bytes of the compiled table.
    pub fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }
}

/// An immutable IPv6 longest-prefix-match table.
#[derive(Clone, Debug, Default)]
pub struct Lpm6 {
    inner: PerLength<u128>,
}

impl Lpm6 {
    /// Builds the table from `(network, prefix length, value)`; host bits are ignored,
    /// and when a prefix appears twice the first value wins.
    ///
    /// ```
    /// use policy_core::lpm::Lpm6;
    /// let t = Lpm6::build(&[(0x2001_0db8 << 96, 32, 7)]);
    /// assert_eq!(t.lookup((0x2001_0db8 << 96) | 1), Some(7));
    /// assert_eq!(t.lookup(0x2001_0db9 << 96), None);
    /// ```
    pub fn build(entries: &[(u128, u8, u32)]) -> Lpm6 {
        Lpm6 {
            inner: PerLength::build(entries),
        }
    }

    /// The value of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.inner.lookup(addr)
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.inner.count
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.inner.count == 0
    }

    /// Heap bytes of the compiled table.
    pub fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn v4_nested_longest_wins() {
        let t = Lpm4::build(&[
            (0, 0, 100),
            (0x0a00_0000, 8, 1),
            (0x0a01_0000, 16, 2),
            (0x0a01_0200, 24, 3),
            (0x0a01_0203, 32, 4),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup(0x0a01_0203), Some(4));
        assert_eq!(t.lookup(0x0a01_0204), Some(3));
        assert_eq!(t.lookup(0x0a01_0300), Some(2));
        assert_eq!(t.lookup(0x0aff_ffff), Some(1));
        assert_eq!(t.lookup(0x0b00_0000), Some(100));
    }

    #[test]
    fn v4_duplicates_first_wins_and_host_bits_ignored() {
        let t = Lpm4::build(&[(0x0a01_02ff, 24, 7), (0x0a01_0200, 24, 8)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(0x0a01_0201), Some(7));
    }

    #[test]
    fn empty_tables_match_nothing() {
        let t4 = Lpm4::build(&[]);
        assert!(t4.is_empty());
        assert_eq!(t4.lookup(0), None);
        let t6 = Lpm6::build(&[]);
        assert!(t6.is_empty());
        assert_eq!(t6.lookup(u128::MAX), None);
    }

    #[test]
    fn v6_host_route_and_default() {
        let a = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        let t = Lpm6::build(&[(0, 0, 1), (a, 128, u32::MAX), (a, 64, 5)]);
        assert_eq!(t.lookup(a), Some(u32::MAX));
        assert_eq!(t.lookup(a + 1), Some(5));
        assert_eq!(t.lookup(1), Some(1));
    }
}
