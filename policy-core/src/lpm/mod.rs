//! Longest-prefix-match tables for IPv4 (`u32` keys) and IPv6 (`u128` keys).
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
//! the family's width (32 or 128) count as the width. Values are any `u32` and come
//! back exactly as given.
//!
//! # Design: a Poptrie
//!
//! Both families use a Poptrie (Asai and Ohara, "Poptrie: A Compressed Trie with
//! Population Count for Fast and Scalable Software IP Routing Table Lookup",
//! SIGCOMM 2015) over **64-bit keys**: an IPv4 address is the top 32 bits of the key;
//! an IPv6 lookup walks the top 64 bits of the address, and only when that walk ends
//! on a /64 holding longer prefixes does it walk a second, small Poptrie over the low
//! 64 bits. No 128-bit arithmetic is on the hot path (wasm32 has none), no pointers
//! (offsets into `Vec`s), no `unsafe`.
//!
//! ```text
//!  key (64 bits)  |<-- s bits -->|<- 6 ->|<- 6 ->|<- 6 ->| ...
//!                        │
//!  direct[2^s] (u32) ────┴─▶ leaf code ──────────────────────────────────────▶ value
//!                          └▶ node ─▶ c = next 6 bits ─▶ bit c of vector set?
//!                                no:  leaf number popcnt(leafvec & bits 0..=c) - 1 ─▶ value
//!                                yes: child number popcnt(vector & bits 0..=c) - 1, next 6 bits
//!
//!  arena (bytes): ... [header 20 B][leaves, 3 B each][children: headers, 20 B each] ...
//!  header = vector: u64 | leafvec: u64 | base: u32 (offset of the leaves; children follow them)
//! ```
//!
//! - **Direct pointing**: the top `s` bits index `direct` (`s` = 18 for tables of
//!   65,536 prefixes or more, else 12, so a ten-prefix policy pays 16 KiB, not
//!   1 MiB; 6 for an empty table). An entry is a leaf code, or a node offset with bit 31 set.
//! - **Nodes** resolve 6 bits each. A node's leaves and then its children's headers
//!   are contiguous at `base`; which slot maps to which is two popcounts.
//! - **Leaf compression**: consecutive leaf slots of a node with the same code are
//!   stored once; `leafvec` marks where each run starts.
//! - **Locality**: a node reached from the direct table is followed in the arena by
//!   its own leaves, so the last read of a typical lookup (direct entry, node, leaf)
//!   lands in or next to the cache line of the node. The first node is read without
//!   a branch on whether the direct entry was a leaf (a dummy node stands in), and the
//!   final "matched?" test is branch-free: on real traffic both are coin flips, and a
//!   mispredicted branch costs more than the read.
//! - **Codes**: leaves hold codes of 3 bytes when every code is below 2^24, else 4.
//!   When every value (plus the few special codes) fits, a code *is* the value (no
//!   extra read); otherwise codes index a sorted table of the distinct values. The
//!   code just past the values means "no match"; the codes after it are IPv6
//!   escapes.
//! - **IPv6 longer than /64**: each /64 that holds such prefixes becomes an escape
//!   leaf in the main trie; escape `e` names sub-trie root `e`, a Poptrie (no direct
//!   table) over the low 64 bits, whose default is the best match of the /64 itself.
//!
//! Invariants (established by `build`, relied on by `lookup`): every node offset and
//! leaf offset a walk computes is inside the arena; every leaf slot has a run start at
//! or before it; nodes exist only at key offsets below 64, so a walk takes at most
//! `ceil((64 - s) / 6)` steps; escape codes appear only in the main IPv6 trie, for
//! /64s. A broken invariant would make a lookup return a wrong answer, never panic:
//! every access is checked (`get`), on predictable branches.
//!
//! # Costs
//!
//! Dependent memory reads per lookup, with `s` = 18:
//!
//! | lookup ends in | reads |
//! |---|---|
//! | a direct entry that is a leaf (prefix ≤ /18, or no prefix longer than /18 below it) | 1 (+ the cached dummy node) |
//! | a prefix /19–/24 (IPv4), or a miss beside one | 2 (direct, node; the leaf is next to the node) |
//! | IPv4 /25–/30, /31–/32 | 3, 4 |
//! | IPv6 ≤ /64 | 2 + one per 6 bits past /24 (a /32: 3, a /48: 6) |
//! | IPv6 > /64 | the /64 walk + 1 per 6 bits past /64 |
//!
//! Size: `4 × 2^s` bytes of direct table + 20 bytes per node + 3 (or 4) bytes per
//! stored leaf. Build: one sort of the prefixes (O(n log n)), then each prefix is
//! visited once per level on its path. On the generated tables of `testgen`
//! (measured by `maps-benches`, see `benches/RESULTS.md`):
//!
//! | table | nodes | leaves | memory | bytes/prefix | build |
//! |---|---:|---:|---:|---:|---:|
//! | IPv4, 1M prefixes (60 % /24) | 133,783 | 1,194,095 | 7.0 MiB | 7.31 | ~0.1 s |
//! | IPv6, 200k prefixes (mostly /32–/48) | 248,595 | 528,330 | 7.3 MiB | 38 | ~0.1 s |
//!
//! The lookup figures against DIR-24-8, `prefix-trie` and `ip_network_table`,
//! measured side by side, are in `benches/RESULTS.md`.

mod poptrie;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use poptrie::{Builder, Poptrie, Prefix, Store, NODE_FLAG};

/// Leaf codes below this fit 3-byte leaves.
const NARROW: u64 = 1 << 24;

/// Codes: the mapping between leaf codes and caller values.
#[derive(Clone, Debug, Default)]
struct Codes {
    /// Codes below `lim` are values; `lim` is "no match"; above are escapes.
    lim: u32,
    /// Distinct values, sorted; empty when codes are the values themselves.
    values: Vec<u32>,
    /// Every code fits 3 bytes.
    narrow: bool,
}

impl Codes {
    /// Codes for these values (in any order, repeats allowed) with `escapes` escape
    /// codes. In order of preference: codes are the values and fit 3-byte leaves;
    /// codes are the values (4-byte leaves); codes index the sorted distinct values
    /// (3-byte leaves if they fit).
    fn new(values: impl Iterator<Item = u32> + Clone, escapes: usize) -> Codes {
        let lim = values.clone().max().map_or(0, |m| u64::from(m) + 1);
        let top = lim + escapes as u64;
        if top < u64::from(NODE_FLAG) {
            return Codes {
                lim: lim as u32,
                values: Vec::new(),
                narrow: top < NARROW,
            };
        }
        let mut vs: Vec<u32> = values.collect();
        vs.sort_unstable();
        vs.dedup();
        Codes {
            lim: vs.len() as u32,
            narrow: ((vs.len() + escapes) as u64) < NARROW,
            values: vs,
        }
    }

    #[inline(always)]
    fn none(&self) -> u32 {
        self.lim
    }

    #[inline(always)]
    fn escape_base(&self) -> u32 {
        self.lim + 1
    }

    fn code(&self, value: u32) -> u32 {
        if self.values.is_empty() {
            value
        } else {
            self.values
                .binary_search(&value)
                .map_or(self.lim, |i| i as u32)
        }
    }

    /// Written so that the common case (codes are the values) compiles to a
    /// conditional move: whether an address matched is unpredictable on real
    /// traffic, and a mispredicted branch costs more than the lookup.
    #[inline(always)]
    fn value(&self, code: u32) -> Option<u32> {
        if self.values.is_empty() {
            (code < self.lim).then_some(code)
        } else {
            // `values.len() == lim`: "no match" and escapes are out of bounds.
            self.values.get(code as usize).copied()
        }
    }

    fn memory_bytes(&self) -> usize {
        self.values.capacity() * 4
    }
}

/// The trie, with 3-byte leaves when every code fits.
#[derive(Clone, Debug)]
enum Trie {
    Narrow(Poptrie<3>),
    Wide(Poptrie<4>),
}

impl Trie {
    /// Builds the main trie from `main` (sorted, distinct) and one sub-trie per
    /// escape from `subs`.
    fn build(codes: &Codes, direct_bits: u32, main: &[Prefix], subs: &[Vec<Prefix>]) -> Trie {
        fn build<const W: usize>(
            codes: &Codes,
            direct_bits: u32,
            main: &[Prefix],
            subs: &[Vec<Prefix>],
        ) -> Poptrie<W> {
            let mut b =
                Builder::<W>::new(direct_bits, codes.escape_base(), subs.len(), codes.none());
            b.main(main, codes.none());
            let defaults = core::mem::take(&mut b.escape_defaults);
            for (sub, &default) in subs.iter().zip(defaults.iter()) {
                b.root(sub, default);
            }
            b.finish()
        }
        if codes.narrow {
            Trie::Narrow(build::<3>(codes, direct_bits, main, subs))
        } else {
            Trie::Wide(build::<4>(codes, direct_bits, main, subs))
        }
    }

    #[inline(always)]
    fn find(&self, key: u64, none: u32) -> u32 {
        match self {
            Trie::Narrow(t) => t.find(key, none),
            Trie::Wide(t) => t.find(key, none),
        }
    }

    #[inline]
    fn find_in_root(&self, root: usize, key: u64, none: u32) -> u32 {
        match self {
            Trie::Narrow(t) => t.find_in_root(root, key, none),
            Trie::Wide(t) => t.find_in_root(root, key, none),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Trie::Narrow(t) => t.memory_bytes(),
            Trie::Wide(t) => t.memory_bytes(),
        }
    }

    fn shape(&self) -> (usize, usize, usize, usize) {
        match self {
            Trie::Narrow(t) => t.shape(),
            Trie::Wide(t) => t.shape(),
        }
    }

    fn leaf_bytes(&self) -> usize {
        match self {
            Trie::Narrow(_) => 3,
            Trie::Wide(_) => 4,
        }
    }
}

/// Direct-table bits for `n` prefixes: multiples of 6 keep /24 and /48 on a node
/// boundary. 12 bits (16 KiB) for small tables keeps a /24 two reads deep; 18 bits
/// (1 MiB) from 65,536 prefixes makes it one; 6 bits for an empty table.
fn direct_bits(n: usize) -> u32 {
    if n == 0 {
        6
    } else if n < 1 << 16 {
        12
    } else {
        18
    }
}

fn mask64(key: u64, len: u8) -> u64 {
    if len == 0 {
        0
    } else {
        key & (u64::MAX << (64 - u32::from(len.min(64))))
    }
}

fn mask128(key: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        key & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// An immutable IPv4 longest-prefix-match table (a Poptrie; see the module doc).
#[derive(Clone)]
pub struct Lpm4 {
    trie: Trie,
    codes: Codes,
    count: usize,
}

impl Default for Lpm4 {
    fn default() -> Self {
        Lpm4::build(&[])
    }
}

impl Lpm4 {
    /// Builds the table from `(network, prefix length, value)`; host bits are ignored,
    /// and when a prefix appears twice the first value wins.
    ///
    /// ```
    /// use policy_core::Lpm4;
    /// let t = Lpm4::build(&[(0x0a00_0000, 8, 1), (0x0a01_0000, 16, 2)]);
    /// assert_eq!(t.lookup(0x0a01_0203), Some(2));
    /// assert_eq!(t.lookup(0x0a02_0000), Some(1));
    /// assert_eq!(t.lookup(0x0b00_0000), None); // no prefix covers 11.0.0.0
    /// ```
    pub fn build(entries: &[(u32, u8, u32)]) -> Lpm4 {
        // One vector, sorted in place: `code` first holds the input position, so
        // sorting puts duplicates together, first first; then the real code. (The
        // peak memory of a build matters in wasm, whose memory never shrinks.)
        let mut prefixes: Vec<Prefix> = entries
            .iter()
            .enumerate()
            .map(|(i, &(net, len, _))| {
                let len = len.min(32);
                Prefix {
                    key: mask64(u64::from(net) << 32, len),
                    len,
                    escape: false,
                    code: i as u32,
                }
            })
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup_by(|next, kept| next.key == kept.key && next.len == kept.len);
        let value = |i: u32| entries.get(i as usize).map_or(0, |e| e.2);
        let codes = Codes::new(prefixes.iter().map(|p| value(p.code)), 0);
        for p in &mut prefixes {
            p.code = codes.code(value(p.code));
        }
        let trie = Trie::build(&codes, direct_bits(prefixes.len()), &prefixes, &[]);
        Lpm4 {
            trie,
            codes,
            count: prefixes.len(),
        }
    }

    /// The value of the longest prefix containing `addr`, if any.
    ///
    /// ```
    /// use policy_core::Lpm4;
    /// let t = Lpm4::build(&[(0xc633_6400, 24, 7)]); // 198.51.100.0/24
    /// assert_eq!(t.lookup(0xc633_6407), Some(7));
    /// assert_eq!(t.lookup(0xc633_6500), None);
    /// ```
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let none = self.codes.none();
        self.codes
            .value(self.trie.find(u64::from(addr) << 32, none))
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes of the compiled table.
    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes() + self.codes.memory_bytes()
    }
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (direct, nodes, leaves, _) = self.trie.shape();
        f.debug_struct("Lpm4")
            .field("prefixes", &self.count)
            .field("direct", &direct)
            .field("nodes", &nodes)
            .field("leaves", &leaves)
            .field("leaf_bytes", &self.trie.leaf_bytes())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// An immutable IPv6 longest-prefix-match table (a Poptrie over the top 64 bits,
/// sub-tries for prefixes longer than /64; see the module doc).
#[derive(Clone)]
pub struct Lpm6 {
    trie: Trie,
    codes: Codes,
    count: usize,
}

impl Default for Lpm6 {
    fn default() -> Self {
        Lpm6::build(&[])
    }
}

impl Lpm6 {
    /// Builds the table from `(network, prefix length, value)`; host bits are ignored,
    /// and when a prefix appears twice the first value wins.
    ///
    /// ```
    /// use policy_core::Lpm6;
    /// let net = 0x2001_0db8_u128 << 96;
    /// let t = Lpm6::build(&[(net, 32, 7), (net | 0x1_0000 << 64, 80, 8)]);
    /// assert_eq!(t.lookup(net | 1), Some(7));
    /// assert_eq!(t.lookup(net | 0x1_0000 << 64 | 1), Some(8));
    /// assert_eq!(t.lookup(0x2001_0db9 << 96), None); // outside 2001:db8::/32
    /// ```
    pub fn build(entries: &[(u128, u8, u32)]) -> Lpm6 {
        let mut ps: Vec<(u128, u8, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, &(net, len, _))| {
                let len = len.min(128);
                (mask128(net, len), len, i as u32)
            })
            .collect();
        ps.sort_unstable();
        ps.dedup_by(|next, kept| next.0 == kept.0 && next.1 == kept.1);
        let value = |i: u32| entries.get(i as usize).map_or(0, |e| e.2);
        // Escapes: the distinct /64s of prefixes longer than /64 (sorted, so grouped).
        let mut escapes: Vec<(u64, usize, usize)> = Vec::new(); // (/64, range in ps)
        for (i, &(key, len, _)) in ps.iter().enumerate() {
            if len <= 64 {
                continue;
            }
            let hi = (key >> 64) as u64;
            match escapes.last_mut() {
                Some(last) if last.0 == hi => last.2 = i + 1,
                _ => escapes.push((hi, i, i + 1)),
            }
        }
        let codes = Codes::new(ps.iter().map(|p| value(p.2)), escapes.len());
        let mut main: Vec<Prefix> = ps
            .iter()
            .filter(|p| p.1 <= 64)
            .map(|&(key, len, i)| Prefix {
                key: (key >> 64) as u64,
                len,
                escape: false,
                code: codes.code(value(i)),
            })
            .collect();
        main.extend(escapes.iter().enumerate().map(|(e, &(hi, _, _))| Prefix {
            key: hi,
            len: 64,
            escape: true,
            code: codes.escape_base() + e as u32,
        }));
        main.sort_unstable();
        let subs: Vec<Vec<Prefix>> = escapes
            .iter()
            .map(|&(_, a, z)| {
                ps.get(a..z)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&(key, len, i)| Prefix {
                        key: key as u64,
                        len: len - 64,
                        escape: false,
                        code: codes.code(value(i)),
                    })
                    .collect()
            })
            .collect();
        let trie = Trie::build(&codes, direct_bits(ps.len()), &main, &subs);
        Lpm6 {
            trie,
            codes,
            count: ps.len(),
        }
    }

    /// The value of the longest prefix containing `addr`, if any.
    ///
    /// ```
    /// use policy_core::Lpm6;
    /// let t = Lpm6::build(&[(0x2001_0db8_u128 << 96, 32, 7)]);
    /// assert_eq!(t.lookup(0x2001_0db8_0000_0000_0000_0000_0000_0001), Some(7));
    /// assert_eq!(t.lookup(0x2001_0db9 << 96), None);
    /// ```
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let none = self.codes.none();
        let mut code = self.trie.find((addr >> 64) as u64, none);
        if code > none {
            let root = (code - none - 1) as usize;
            code = self.trie.find_in_root(root, addr as u64, none);
        }
        self.codes.value(code)
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes of the compiled table.
    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes() + self.codes.memory_bytes()
    }
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (direct, nodes, leaves, roots) = self.trie.shape();
        f.debug_struct("Lpm6")
            .field("prefixes", &self.count)
            .field("direct", &direct)
            .field("nodes", &nodes)
            .field("leaves", &leaves)
            .field("leaf_bytes", &self.trie.leaf_bytes())
            .field("long_64s", &roots)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests;

// ---- compiled-file sections (see `crate::compiled`) ------------------------------------

/// Bytes of a table section's header: ten little-endian `u32`s.
const SECTION_HDR: usize = 40;

/// Appends one table as a section of a compiled policy file:
///
/// | offset | field (`u32` LE unless named) |
/// |---:|---|
/// | 0 | distinct prefixes |
/// | 4 | `lim`: codes below it are values (or index the value table), `lim` is "no match", above are IPv6 escapes |
/// | 8 | leaf bytes (3 or 4) |
/// | 12 | direct-table bits (6, 12 or 18) |
/// | 16 | nodes |
/// | 20 | stored leaves |
/// | 24 | entries in the value table (V; 0 when codes are the values) |
/// | 28 | sub-trie roots (R) |
/// | 32 | arena bytes (A) |
/// | 36 | 0 (reserved) |
/// | 40 | value table: V × `u32`; direct table: 2^bits × `u32`; roots: R × `u32`; arena: A bytes |
fn write_section(trie: &Trie, codes: &Codes, count: usize, out: &mut Vec<u8>) {
    let (bits, direct, roots, arena, nodes, leaves) = match trie {
        Trie::Narrow(t) => (
            t.direct_bits,
            &t.direct,
            &t.roots,
            &t.arena,
            t.nodes,
            t.leaves,
        ),
        Trie::Wide(t) => (
            t.direct_bits,
            &t.direct,
            &t.roots,
            &t.arena,
            t.nodes,
            t.leaves,
        ),
    };
    let (direct, roots, arena) = (direct.bytes(), roots.bytes(), arena.bytes());
    let head = [
        count as u32,
        codes.lim,
        trie.leaf_bytes() as u32,
        bits,
        nodes as u32,
        leaves as u32,
        codes.values.len() as u32,
        (roots.len() / 4) as u32,
        arena.len() as u32,
        0,
    ];
    out.extend(head.iter().flat_map(|w| w.to_le_bytes()));
    out.extend(codes.values.iter().flat_map(|w| w.to_le_bytes()));
    out.extend_from_slice(direct);
    out.extend_from_slice(roots);
    out.extend_from_slice(arena);
}

/// Reads a table section written by [`write_section`] from `len` bytes at `at` of
/// `file`, sharing the file's bytes (nothing is copied but the value table), and
/// verifies it: `value_ok` says which values the policy can hold; `escapes` whether
/// the main trie may hold IPv6 escapes.
fn read_section(
    file: &Arc<Vec<u8>>,
    at: usize,
    len: usize,
    value_ok: impl Fn(u32) -> bool,
    escapes: bool,
) -> Result<(Trie, Codes, usize), &'static str> {
    let sec = file
        .get(at..at.saturating_add(len))
        .ok_or("the section lies outside the file")?;
    let word = |i: usize| {
        sec.get(i * 4..)
            .and_then(<[u8]>::first_chunk::<4>)
            .map(|w| u32::from_le_bytes(*w))
            .ok_or("the section is cut short")
    };
    let (count, lim, leaf, bits) = (word(0)?, word(1)?, word(2)?, word(3)?);
    let (nodes, leaves, nv, nr, na) = (word(4)?, word(5)?, word(6)?, word(7)?, word(8)?);
    if !matches!(bits, 6 | 12 | 18) {
        return Err("the direct table resolves an unsupported number of bits");
    }
    let sizes = [
        nv as usize * 4,
        4usize << bits,
        nr as usize * 4,
        na as usize,
    ];
    // Start of each part: values, direct, roots, arena.
    let mut offs = [SECTION_HDR; 4];
    let mut end = SECTION_HDR;
    for (o, n) in offs.iter_mut().zip(sizes) {
        *o = end;
        end = end.checked_add(n).ok_or("the section sizes overflow")?;
    }
    if end != len {
        return Err("the section's length does not match its header");
    }
    let part = |i: usize| -> (usize, usize) {
        (
            offs.get(i).copied().unwrap_or(0),
            sizes.get(i).copied().unwrap_or(0),
        )
    };
    let shared = |i: usize| {
        let (o, n) = part(i);
        Store::Shared {
            file: Arc::clone(file),
            at: at + o,
            len: n,
        }
    };
    let (vo, vn) = part(0);
    let values: Vec<u32> = sec
        .get(vo..vo + vn)
        .unwrap_or(&[])
        .chunks_exact(4)
        .filter_map(|w| w.first_chunk::<4>().map(|w| u32::from_le_bytes(*w)))
        .collect();
    if !values.is_empty() && (values.len() != lim as usize || !values.is_sorted_by(|a, b| a < b)) {
        return Err("the value table is not the sorted list of `lim` values");
    }
    if u64::from(lim) + 1 + u64::from(nr) >= u64::from(NODE_FLAG) {
        return Err("the codes do not fit below the node flag");
    }
    let narrow = leaf == 3;
    if !narrow && leaf != 4 {
        return Err("leaves are neither 3 nor 4 bytes");
    }
    if narrow && u64::from(lim) + 1 + u64::from(nr) >= NARROW {
        return Err("3-byte leaves cannot hold every code");
    }
    let codes = Codes {
        lim,
        values,
        narrow,
    };
    if codes.values.iter().any(|&v| !value_ok(v)) {
        return Err("the value table holds a value the policy does not define");
    }
    let code_ok = |code: u32| -> bool {
        if code < lim {
            !codes.values.is_empty() || value_ok(code)
        } else {
            code == lim || (escapes && code - lim - 1 < nr)
        }
    };
    let trie = if narrow {
        let t = Poptrie::<3> {
            direct_bits: bits,
            direct: shared(1),
            roots: shared(2),
            arena: shared(3),
            nodes: nodes as usize,
            leaves: leaves as usize,
        };
        t.verify(code_ok)?;
        Trie::Narrow(t)
    } else {
        let t = Poptrie::<4> {
            direct_bits: bits,
            direct: shared(1),
            roots: shared(2),
            arena: shared(3),
            nodes: nodes as usize,
            leaves: leaves as usize,
        };
        t.verify(code_ok)?;
        Trie::Wide(t)
    };
    if !escapes && nr != 0 {
        return Err("an IPv4 table has sub-trie roots");
    }
    Ok((trie, codes, count as usize))
}

impl Lpm4 {
    /// Appends this table as a compiled-file section ([`write_section`]).
    pub(crate) fn write_section(&self, out: &mut Vec<u8>) {
        write_section(&self.trie, &self.codes, self.count, out);
    }

    /// Adopts a section of a compiled file ([`read_section`]).
    pub(crate) fn read_section(
        file: &Arc<Vec<u8>>,
        at: usize,
        len: usize,
        value_ok: impl Fn(u32) -> bool,
    ) -> Result<Lpm4, &'static str> {
        let (trie, codes, count) = read_section(file, at, len, value_ok, false)?;
        Ok(Lpm4 { trie, codes, count })
    }
}

impl Lpm6 {
    /// Appends this table as a compiled-file section ([`write_section`]).
    pub(crate) fn write_section(&self, out: &mut Vec<u8>) {
        write_section(&self.trie, &self.codes, self.count, out);
    }

    /// Adopts a section of a compiled file ([`read_section`]).
    pub(crate) fn read_section(
        file: &Arc<Vec<u8>>,
        at: usize,
        len: usize,
        value_ok: impl Fn(u32) -> bool,
    ) -> Result<Lpm6, &'static str> {
        let (trie, codes, count) = read_section(file, at, len, value_ok, true)?;
        Ok(Lpm6 { trie, codes, count })
    }
}
