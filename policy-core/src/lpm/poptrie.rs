//! The Poptrie over 64-bit keys: direct pointing, 6-bit strides, popcount-compressed
//! children and leaves, in one byte arena. See the parent module for the design and
//! its invariants.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

/// In a direct-table or root entry: the low 31 bits are the arena offset of a node.
/// Without it, the entry is a leaf code.
pub(super) const NODE_FLAG: u32 = 1 << 31;

/// Bits consumed per node.
const STRIDE: u32 = 6;

/// Bytes in a node header: `vector` (u64), `leafvec` (u64), `base` (u32), little-endian.
const HDR: usize = 20;

/// One node header, decoded.
///
/// The node's 64 slots are resolved by the next 6 bits of the key. At `base` are the
/// node's leaves (`W` bytes each), then its children (headers, `HDR` bytes each).
/// Slot `c` is a child when bit `c` of `vector` is set: the child's header is number
/// `popcount(vector & bits 0..=c) - 1` after the `popcount(leafvec)` leaves.
/// Otherwise it is a leaf, number `popcount(leafvec & bits 0..=c) - 1`. `leafvec`
/// has a bit for each leaf slot that starts a run of equal codes (consecutive leaf
/// slots with the same code share one stored leaf, child slots in between
/// notwithstanding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Node {
    vector: u64,
    leafvec: u64,
    base: u32,
}

/// Bytes of a compiled table: built here (owned), or a range of a compiled policy
/// file (`crate::compiled`) that every table read from it shares, so adopting a file
/// copies nothing. Reads take the bytes once per lookup.
#[derive(Clone, Debug)]
pub(crate) enum Store {
    /// Built in this process.
    Owned(Vec<u8>),
    /// `len` bytes at `at` of a shared file.
    Shared {
        /// The whole file.
        file: Arc<Vec<u8>>,
        /// Offset of the range in the file.
        at: usize,
        /// Length of the range.
        len: usize,
    },
}

impl Default for Store {
    fn default() -> Self {
        Store::Owned(Vec::new())
    }
}

impl Store {
    /// The bytes (empty when a shared range lies outside its file, which the reader
    /// of a compiled file never makes).
    #[inline(always)]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Store::Owned(v) => v,
            Store::Shared { file, at, len } => {
                file.get(*at..at.saturating_add(*len)).unwrap_or(&[])
            }
        }
    }

    /// Heap bytes this table accounts for (its share of a file).
    fn memory_bytes(&self) -> usize {
        match self {
            Store::Owned(v) => v.capacity(),
            Store::Shared { len, .. } => *len,
        }
    }

    /// Entry `i` of a little-endian `u32` array.
    #[inline(always)]
    fn word(bytes: &[u8], i: usize) -> Option<u32> {
        let at = i.wrapping_mul(4);
        let w = bytes.get(at..)?.first_chunk::<4>()?;
        Some(u32::from_le_bytes(*w))
    }
}

/// A `u32` array as little-endian bytes.
fn words(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A compiled Poptrie over 64-bit keys (prefix lengths 0..=64) with `W`-byte leaves
/// (3 or 4), plus extra root entries (sub-tries walked from bit 0; IPv6 uses them for
/// the low half of prefixes longer than /64).
#[derive(Clone, Debug, Default)]
pub(crate) struct Poptrie<const W: usize> {
    /// Bits of the key resolved by the direct table (6, 12 or 18).
    pub(crate) direct_bits: u32,
    /// `2^direct_bits` little-endian `u32` entries: a leaf code, or `NODE_FLAG | arena
    /// offset`.
    pub(crate) direct: Store,
    /// Node headers and leaves; offset 0 holds the dummy node (see `find`). A node
    /// reached from the direct table or a root is followed by its leaves, so its leaf
    /// read usually hits the cache line its header brought in. Four spare bytes at
    /// the end let every leaf be read as a u32. Offsets are below 2^31 (a table of
    /// hundreds of millions of prefixes would be needed to reach that).
    pub(crate) arena: Store,
    /// Sub-trie roots (same encoding as `direct`).
    pub(crate) roots: Store,
    pub(crate) nodes: usize,
    pub(crate) leaves: usize,
}

/// A prefix ready for the builder: `key` left-aligned (bit 63 is the first bit),
/// host bits cleared, `len` in `0..=64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Prefix {
    pub key: u64,
    pub len: u8,
    /// Orders an escape after a real prefix with the same key and length.
    pub escape: bool,
    pub code: u32,
}

/// The 6 bits of `key` starting at bit `off` (from the top); bits past the end of the
/// key read as zero.
#[inline(always)]
fn chunk(key: u64, off: u32) -> u32 {
    // off < 64 by construction (nodes exist only at offsets below 64); wrapping_shl
    // keeps even a corrupted offset from panicking.
    (key.wrapping_shl(off) >> (64 - STRIDE)) as u32
}

/// Bits `0..=c` set.
#[inline(always)]
fn upto(c: u32) -> u64 {
    u64::MAX >> (63 - (c & 63))
}

impl<const W: usize> Poptrie<W> {
    /// The largest code a leaf can hold.
    pub const MAX_CODE: u32 = if W >= 4 { u32::MAX } else { (1 << (8 * W)) - 1 };

    #[inline(always)]
    fn node(arena: &[u8], at: u32) -> Option<Node> {
        let at = at as usize;
        let h = arena.get(at..at + HDR)?;
        let (v, h) = h.split_first_chunk::<8>()?;
        let (l, h) = h.split_first_chunk::<8>()?;
        let (b, _) = h.split_first_chunk::<4>()?;
        Some(Node {
            vector: u64::from_le_bytes(*v),
            leafvec: u64::from_le_bytes(*l),
            base: u32::from_le_bytes(*b),
        })
    }

    #[inline(always)]
    fn leaf(arena: &[u8], node: &Node, m: u64, none: u32) -> u32 {
        let i = (node.leafvec & m).count_ones().wrapping_sub(1);
        let at = node.base.wrapping_add(i.wrapping_mul(W as u32)) as usize;
        match arena.get(at..at + 4) {
            Some(b) => {
                let b: [u8; 4] = b.try_into().unwrap_or([0; 4]);
                u32::from_le_bytes(b) & Self::MAX_CODE
            }
            None => none,
        }
    }

    #[inline(always)]
    fn child(node: &Node, m: u64) -> u32 {
        let leaves = node.leafvec.count_ones();
        let k = (node.vector & m).count_ones().wrapping_sub(1);
        node.base
            .wrapping_add(leaves.wrapping_mul(W as u32))
            .wrapping_add(k.wrapping_mul(HDR as u32))
    }

    /// The code for `key` (at most 64 significant bits).
    ///
    /// The first node after the direct table is read without a branch on whether the
    /// direct entry is a node (a leaf entry reads the dummy node 0, whose one leaf is
    /// ignored): on random traffic that branch is unpredictable, and a mispredicted
    /// branch costs more than a read of a cached dummy.
    #[inline(always)]
    pub fn find(&self, key: u64, none: u32) -> u32 {
        let s = self.direct_bits;
        let arena = self.arena.bytes();
        let slot = key.wrapping_shr(64 - s) as usize;
        let e = Store::word(self.direct.bytes(), slot).unwrap_or(none);
        let is_node = e & NODE_FLAG != 0;
        let at = if is_node { e & !NODE_FLAG } else { 0 };
        let Some(node) = Self::node(arena, at) else {
            return none;
        };
        let c = chunk(key, s);
        let m = upto(c);
        if (node.vector >> c) & 1 != 0 {
            return Self::walk(arena, Self::child(&node, m), key, s + STRIDE, none);
        }
        let leaf = Self::leaf(arena, &node, m, none);
        if is_node {
            leaf
        } else {
            e
        }
    }

    /// The code for `key` in sub-trie `root` (walked from bit 0).
    #[inline]
    pub fn find_in_root(&self, root: usize, key: u64, none: u32) -> u32 {
        match Store::word(self.roots.bytes(), root) {
            Some(e) if e & NODE_FLAG != 0 => {
                Self::walk(self.arena.bytes(), e & !NODE_FLAG, key, 0, none)
            }
            Some(e) => e,
            None => none,
        }
    }

    /// Walks from the node at `at`, which resolves the bits from `off`.
    #[inline(always)]
    fn walk(arena: &[u8], mut at: u32, key: u64, mut off: u32, none: u32) -> u32 {
        loop {
            let Some(node) = Self::node(arena, at) else {
                return none;
            };
            let c = chunk(key, off);
            let m = upto(c);
            if (node.vector >> c) & 1 == 0 {
                return Self::leaf(arena, &node, m, none);
            }
            at = Self::child(&node, m);
            off += STRIDE;
        }
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.direct.memory_bytes() + self.roots.memory_bytes() + self.arena.memory_bytes()
    }

    /// (direct entries, nodes, leaves, roots), for the cost table and tests.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        (
            self.direct.bytes().len() / 4,
            self.nodes,
            self.leaves,
            self.roots.bytes().len() / 4,
        )
    }
}

/// Builds a Poptrie.
pub(super) struct Builder<const W: usize> {
    direct_bits: u32,
    direct: Vec<u32>,
    arena: Vec<u8>,
    roots: Vec<u32>,
    nodes: usize,
    leaves: usize,
    /// Codes at or above this are escapes (`code - escape_base` is the escape index).
    escape_base: u32,
    /// For each escape: the code its /64 had before the escape was painted over it.
    pub escape_defaults: Vec<u32>,
}

impl<const W: usize> Builder<W> {
    /// A builder whose direct table resolves `direct_bits` (6..=18) and whose codes
    /// at or above `escape_base` are escapes (`escapes` of them). Every code must be
    /// at most `Poptrie::<W>::MAX_CODE` and below `NODE_FLAG`.
    pub fn new(direct_bits: u32, escape_base: u32, escapes: usize, none: u32) -> Builder<W> {
        // The dummy node 0 (see `Poptrie::find`): no children, one leaf (`none`).
        let mut arena = Vec::new();
        arena.extend_from_slice(&[0; 8]);
        arena.extend_from_slice(&1u64.to_le_bytes());
        arena.extend_from_slice(&(HDR as u32).to_le_bytes());
        arena.extend_from_slice(none.to_le_bytes().get(..W).unwrap_or(&[]));
        Builder {
            direct_bits,
            direct: Vec::new(),
            arena,
            roots: Vec::new(),
            nodes: 0,
            leaves: 0,
            escape_base,
            escape_defaults: vec![0; escapes],
        }
    }

    /// Builds the main trie from `ps`, sorted by `(key, len, escape)`, without
    /// duplicates; addresses no prefix covers get `none`.
    pub fn main(&mut self, ps: &[Prefix], none: u32) {
        let s = self.direct_bits;
        let mut direct = vec![none; 1usize << s];
        // Short prefixes paint the direct table; sorted order paints covering
        // prefixes before the prefixes they cover.
        for p in ps.iter().filter(|p| u32::from(p.len) <= s) {
            let start = (p.key >> (64 - s)) as usize;
            let count = 1usize << (s - u32::from(p.len));
            if let Some(run) = direct.get_mut(start..start + count) {
                run.fill(p.code);
            }
        }
        // Longer prefixes, grouped by direct slot (contiguous: sorted by key).
        let mut i = 0;
        while let Some(p) = ps.get(i) {
            if u32::from(p.len) <= s {
                i += 1;
                continue;
            }
            let slot = p.key >> (64 - s);
            let mut j = i + 1;
            while ps.get(j).is_some_and(|q| q.key >> (64 - s) == slot) {
                j += 1;
            }
            let group = ps.get(i..j).unwrap_or(&[]);
            if let Some(d) = direct.get_mut(slot as usize) {
                *d = self.subtrie(group, s, *d);
            }
            i = j;
        }
        self.direct = direct;
    }

    /// Adds a sub-trie root over `ps` (keys from bit 0, lengths 1..=64, sorted, no
    /// duplicates, no escapes) where uncovered keys get `default`.
    pub fn root(&mut self, ps: &[Prefix], default: u32) {
        let e = self.subtrie(ps, 0, default);
        self.roots.push(e);
    }

    pub fn finish(mut self) -> Poptrie<W> {
        // Spare bytes: the last leaf is read as a u32.
        self.arena.extend_from_slice(&[0; 4]);
        self.arena.shrink_to_fit();
        Poptrie {
            direct_bits: self.direct_bits,
            direct: Store::Owned(words(&self.direct)),
            arena: Store::Owned(self.arena),
            roots: Store::Owned(words(&self.roots)),
            nodes: self.nodes,
            leaves: self.leaves,
        }
    }

    /// The entry for a region at `off` holding `ps` (all inside it).
    fn subtrie(&mut self, ps: &[Prefix], off: u32, default: u32) -> u32 {
        if ps.iter().all(|p| u32::from(p.len) <= off) {
            return default;
        }
        let at = self.arena.len();
        self.arena.resize(at + HDR, 0);
        self.fill(ps, off, default, at);
        NODE_FLAG | at as u32
    }

    /// Fills the node whose header is at `at`, for a region at `off` holding `ps`:
    /// every prefix in `ps` lies inside the region and is longer than `off`;
    /// `default` is the code of the longest prefix covering the whole region. Appends
    /// the node's children block and leaves, then fills each child.
    fn fill(&mut self, ps: &[Prefix], off: u32, default: u32, at: usize) {
        let end = off + STRIDE;
        let mut slots = [default; 64];
        // (slot, range of `ps` below it)
        let mut kids: Vec<(u32, usize, usize)> = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let len = u32::from(p.len);
            let c = chunk(p.key, off);
            if len <= end {
                let start = c as usize;
                let count = 1usize << (end - len.max(off));
                if p.code >= self.escape_base {
                    let e = (p.code - self.escape_base) as usize;
                    if let (Some(d), Some(&prev)) =
                        (self.escape_defaults.get_mut(e), slots.get(start))
                    {
                        *d = prev;
                    }
                }
                if let Some(run) = slots.get_mut(start..start + count) {
                    run.fill(p.code);
                }
            } else {
                match kids.last_mut() {
                    Some(k) if k.0 == c => k.2 = i + 1,
                    _ => kids.push((c, i, i + 1)),
                }
            }
        }
        let vector = kids.iter().fold(0u64, |v, k| v | 1 << k.0);
        // The leaves, run-compressed over the leaf slots, then the children block.
        let base = self.arena.len();
        let mut leafvec = 0u64;
        let mut last: Option<u32> = None;
        for (c, &code) in slots.iter().enumerate() {
            if vector & (1 << c) != 0 {
                continue;
            }
            if last != Some(code) {
                leafvec |= 1 << c;
                let bytes = code.to_le_bytes();
                self.arena
                    .extend_from_slice(bytes.get(..W).unwrap_or(&bytes));
                self.leaves += 1;
                last = Some(code);
            }
        }
        let block = self.arena.len();
        self.arena.resize(block + kids.len() * HDR, 0);
        self.nodes += 1;
        if let Some(h) = self.arena.get_mut(at..at + HDR) {
            let mut w = [0u8; HDR];
            for (d, s) in w.iter_mut().zip(
                vector
                    .to_le_bytes()
                    .into_iter()
                    .chain(leafvec.to_le_bytes())
                    .chain((base as u32).to_le_bytes()),
            ) {
                *d = s;
            }
            h.copy_from_slice(&w);
        }
        for (j, &(c, from, to)) in kids.iter().enumerate() {
            let sub = ps.get(from..to).unwrap_or(&[]);
            let d = slots.get(c as usize).copied().unwrap_or(default);
            self.fill(sub, end, d, block + j * HDR);
        }
    }
}

impl<const W: usize> Poptrie<W> {
    /// Checks a table read from a compiled policy file before any lookup uses it, in
    /// time linear in its size and with no allocation beyond a walk stack: the direct
    /// table has `2^direct_bits` entries; every node reachable from it or from a root
    /// lies inside the arena with its leaves and children; no node is reached twice
    /// (a built table is a tree: a file that shares or loops nodes is refused, so the
    /// walk is bounded by the arena's size); nodes end before bit 64; every leaf slot
    /// has a run start at or before it; every code passes `code_ok`. A table that
    /// passes answers every lookup in at most `ceil(64 / 6)` steps, from its own
    /// bytes.
    pub(crate) fn verify(&self, code_ok: impl Fn(u32) -> bool) -> Result<(), &'static str> {
        if !matches!(self.direct_bits, 6 | 12 | 18) {
            return Err("the direct table resolves an unsupported number of bits");
        }
        let direct = self.direct.bytes();
        if direct.len() != 4 << self.direct_bits {
            return Err("the direct table has the wrong number of entries");
        }
        let arena = self.arena.bytes();
        if arena.len() >= NODE_FLAG as usize {
            return Err("the arena is larger than 2 GiB");
        }
        // The dummy node first: a leaf entry reads it (see `find`), so it must have no
        // children and one leaf.
        let dummy = Self::node(arena, 0).ok_or("the arena has no dummy node")?;
        if dummy.vector != 0 || dummy.leafvec != 1 {
            return Err("the dummy node is not a single leaf");
        }
        // A built table is a tree of exactly `nodes` nodes plus the dummy: a walk that
        // visits more met a node twice. (`nodes` comes from the file, so the arena's
        // size caps it: the walk stays linear in the file whatever it claims.)
        let mut budget = self.nodes.min(arena.len() / HDR) + 1;
        let mut stack: Vec<(u32, u32)> = vec![(0, 64 - STRIDE)];
        let entries = |bytes: &'_ [u8], off: u32, stack: &mut Vec<(u32, u32)>| {
            for w in bytes.chunks_exact(4) {
                let e = w.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
                if e & NODE_FLAG != 0 {
                    stack.push((e & !NODE_FLAG, off));
                } else if !code_ok(e) {
                    return Err("a table entry holds an unknown code");
                }
            }
            Ok(())
        };
        entries(direct, self.direct_bits, &mut stack)?;
        entries(self.roots.bytes(), 0, &mut stack)?;
        while let Some((at, off)) = stack.pop() {
            budget = budget
                .checked_sub(1)
                .ok_or("a node is reached more than once")?;
            let node = Self::node(arena, at).ok_or("a node lies outside the arena")?;
            if node.leafvec & node.vector != 0 {
                return Err("a node marks a child slot as a leaf");
            }
            let leaf_slots = !node.vector;
            if leaf_slots != 0 && node.leafvec & (leaf_slots & leaf_slots.wrapping_neg()) == 0 {
                return Err("a node's first leaf slot starts no run");
            }
            let leaves = node.leafvec.count_ones() as usize;
            let kids = node.vector.count_ones() as usize;
            let base = node.base as usize;
            // Leaves are read as 4 bytes; the children's headers follow the leaves.
            let leaf_end = base + leaves * W;
            if leaf_end + (4 - W) > arena.len() || leaf_end + kids * HDR > arena.len() {
                return Err("a node's leaves or children lie outside the arena");
            }
            for i in 0..leaves {
                let at = base + i * W;
                let b = arena
                    .get(at..)
                    .and_then(<[u8]>::first_chunk::<4>)
                    .ok_or("a leaf lies outside the arena")?;
                let code = u32::from_le_bytes(*b) & Self::MAX_CODE;
                if !code_ok(code) {
                    return Err("a leaf holds an unknown code");
                }
            }
            if kids > 0 && off + STRIDE >= 64 {
                return Err("a node has children past bit 64");
            }
            for k in 0..kids {
                stack.push(((leaf_end + k * HDR) as u32, off + STRIDE));
            }
        }
        Ok(())
    }
}
