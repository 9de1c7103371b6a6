//! DIR-24-8 (Gupta, Lin and McKeown, "Routing Lookups in Hardware at Memory Access
//! Speeds", INFOCOM 1998): the classic line-rate IPv4 table, here as the reference
//! the Poptrie is measured against.
//!
//! `tbl24` has one `u32` per /24 (2^24 entries, 64 MiB): either a value or, with the
//! top bit set, the number of a 256-entry `tbl8` group that resolves the last 8 bits.
//! A lookup is one memory read, or two for addresses under a prefix longer than /24.
//! Entries hold `value + 1` (0 = no match), so values must be below `2^31 - 1`.

/// A DIR-24-8 table.
#[derive(Clone, Debug)]
pub struct Dir24_8 {
    tbl24: Vec<u32>,
    tbl8: Vec<u32>,
    count: usize,
}

const GROUP: u32 = 1 << 31;

impl Dir24_8 {
    /// Builds the table; `None` when a value is `2^31 - 1` or larger. Host bits are
    /// ignored; the first of duplicate prefixes wins.
    pub fn build(entries: &[(u32, u8, u32)]) -> Option<Dir24_8> {
        // (len, network, position): painting shorter prefixes first lets longer
        // ones overwrite them; duplicates keep the first.
        let mut es: Vec<(u8, u32, usize)> = entries
            .iter()
            .enumerate()
            .map(|(i, &(net, len, _))| {
                let len = len.min(32);
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                (len, net & m, i)
            })
            .collect();
        es.sort_unstable();
        es.dedup_by(|next, kept| next.0 == kept.0 && next.1 == kept.1);
        let mut tbl24 = vec![0u32; 1 << 24];
        let mut tbl8: Vec<u32> = Vec::new();
        for &(len, net, i) in &es {
            let value = entries.get(i)?.2;
            if value >= GROUP - 1 {
                return None;
            }
            let code = value + 1;
            if len <= 24 {
                let start = (net >> 8) as usize;
                let n = 1usize << (24 - len);
                // No tbl8 group exists yet: every prefix up to /24 is painted first.
                tbl24.get_mut(start..start + n)?.fill(code);
            } else {
                let slot = tbl24.get_mut((net >> 8) as usize)?;
                if *slot & GROUP == 0 {
                    let g = (tbl8.len() / 256) as u32;
                    tbl8.extend(std::iter::repeat_n(*slot, 256));
                    *slot = GROUP | g;
                }
                let base = ((*slot & !GROUP) as usize) * 256;
                let start = base + (net & 0xff) as usize;
                let n = 1usize << (32 - len);
                tbl8.get_mut(start..start + n)?.fill(code);
            }
        }
        tbl8.shrink_to_fit();
        Some(Dir24_8 {
            tbl24,
            tbl8,
            count: es.len(),
        })
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let e = self.tbl24.get((addr >> 8) as usize).copied().unwrap_or(0);
        let e = if e & GROUP != 0 {
            let i = (((e & !GROUP) as usize) << 8) | (addr & 0xff) as usize;
            self.tbl8.get(i).copied().unwrap_or(0)
        } else {
            e
        };
        e.checked_sub(1)
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.tbl24.capacity() + self.tbl8.capacity()) * 4
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_long_prefixes() {
        let t = Dir24_8::build(&[
            (0x0a00_0000, 8, 1),
            (0x0a01_0200, 24, 2),
            (0x0a01_0280, 25, 3),
            (0x0a01_0281, 32, 4),
            (0x0a01_0200, 24, 9),
        ])
        .unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(0x0a00_0000), Some(1));
        assert_eq!(t.lookup(0x0a01_0201), Some(2));
        assert_eq!(t.lookup(0x0a01_0280), Some(3));
        assert_eq!(t.lookup(0x0a01_0281), Some(4));
        assert_eq!(t.lookup(0x0b00_0000), None);
        assert!(Dir24_8::build(&[(0, 0, u32::MAX)]).is_none());
    }
}
