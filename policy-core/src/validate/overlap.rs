//! Overlaps (SPEC §6): the same prefix registered twice (error) and a registered
//! prefix nested inside another registration's prefix (warning), over JSON and packed
//! prefixes together, found by one sorted stack sweep per address family.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{Checker, MAX_PER_CODE};
use crate::diag::{Code, Diagnostic};
use crate::model::PolicyDocument;
use crate::policy::{PrefixState, PrefixValue};

/// Marks a packed record number in an entry's encoded origin.
const PACKED: u32 = 1 << 31;

/// Where a registered prefix was written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    /// Index in its registration's `prefixes`.
    Json(usize),
    /// Record number in the packed `prefix_table`.
    Packed(usize),
}

impl Origin {
    /// As kept in a [`Table`] entry: the index, or `PACKED | record number`. JSON
    /// sorts before packed, earlier before later.
    fn encode(self) -> u32 {
        match self {
            Origin::Json(j) => j as u32,
            Origin::Packed(n) => PACKED | n as u32,
        }
    }

    fn decode(code: u32) -> Origin {
        if code & PACKED != 0 {
            Origin::Packed((code & !PACKED) as usize)
        } else {
            Origin::Json(code as usize)
        }
    }
}

/// A registered prefix's place: registration index and origin.
#[derive(Clone, Copy)]
struct At {
    reg: usize,
    origin: Origin,
}

impl At {
    fn new(reg: usize, origin: u32) -> At {
        At {
            reg,
            origin: Origin::decode(origin),
        }
    }

    /// Where it is, as a message names it.
    fn place(self) -> String {
        match self.origin {
            Origin::Packed(n) => format!("/prefix_table record {n}"),
            Origin::Json(j) => format!("/registrations/{}/prefixes/{j}/prefix", self.reg),
        }
    }

    /// A diagnostic's path and message about it: a packed record is reported at
    /// `/prefix_table`, its number leading the message.
    fn path_and_message(self, message: String) -> (String, String) {
        match self.origin {
            Origin::Packed(n) => (
                String::from("/prefix_table"),
                format!("record {n}: {message}"),
            ),
            Origin::Json(j) => (
                format!("/registrations/{}/prefixes/{j}/prefix", self.reg),
                message,
            ),
        }
    }
}

/// Registered prefixes being collected: (network, length, value, encoded origin).
#[derive(Default)]
pub(super) struct Table {
    v4: Vec<(u32, u8, u32, u32)>,
    v6: Vec<(u128, u8, u32, u32)>,
}

impl Table {
    pub(super) fn add(
        &mut self,
        net: IpNet,
        reg: usize,
        state: PrefixState,
        telemetry: bool,
        origin: Origin,
    ) {
        let value = PrefixValue::new(reg, state, telemetry, net.prefix_len()).0;
        let origin = origin.encode();
        match net {
            IpNet::V4(n) => self
                .v4
                .push((u32::from(n.network()), n.prefix_len(), value, origin)),
            IpNet::V6(n) => self
                .v6
                .push((u128::from(n.network()), n.prefix_len(), value, origin)),
        }
    }

    /// Room for exactly this many more entries of each family (growth by doubling
    /// would cost a third more memory).
    pub(super) fn reserve_exact(&mut self, v4: usize, v6: usize) {
        self.v4.reserve_exact(v4);
        self.v6.reserve_exact(v6);
    }
}

/// What [`sweep`] finds.
enum Finding {
    /// `net` is registered again; `first` is where it was first.
    Duplicate { net: IpNet, at: At, first: At },
    /// `net` lies inside `outer`, a prefix of registration `outer_reg`.
    Nested {
        net: IpNet,
        at: At,
        outer: IpNet,
        outer_reg: usize,
    },
}

/// Address keys of either family.
trait Key: Copy + Ord + core::ops::BitAnd<Output = Self> + core::ops::Not<Output = Self> {
    const ONES: Self;
    fn shr(self, n: u8) -> Self;
    fn net(self, len: u8) -> IpNet;
    /// The network mask of a prefix length.
    fn mask(len: u8) -> Self {
        if len == 0 {
            !Self::ONES
        } else {
            !Self::ONES.shr(len)
        }
    }
}

impl Key for u32 {
    const ONES: u32 = u32::MAX;
    fn shr(self, n: u8) -> Self {
        self.checked_shr(u32::from(n)).unwrap_or(0)
    }
    fn net(self, len: u8) -> IpNet {
        Ipv4Net::new(Ipv4Addr::from(self), len.min(32))
            .map_or(IpNet::V4(Ipv4Net::default()), IpNet::V4)
    }
}

impl Key for u128 {
    const ONES: u128 = u128::MAX;
    fn shr(self, n: u8) -> Self {
        self.checked_shr(u32::from(n)).unwrap_or(0)
    }
    fn net(self, len: u8) -> IpNet {
        Ipv6Net::new(Ipv6Addr::from(self), len.min(128))
            .map_or(IpNet::V6(Ipv6Net::default()), IpNet::V6)
    }
}

/// Sorts the entries, finds duplicates and cross-registration nestings with one
/// stack sweep, and returns the entries without duplicates (first one kept).
/// `counts` counts every duplicate and nesting; at most [`MAX_PER_CODE`] of each are
/// collected in `found`.
fn sweep<K: Key>(
    mut entries: Vec<(K, u8, u32, u32)>,
    found: &mut Vec<Finding>,
    counts: &mut [usize; 2],
) -> Vec<(K, u8, u32)> {
    // A covering prefix sorts before what it covers; equal prefixes by origin order
    // (JSON before packed, earlier before later).
    entries.sort_unstable_by_key(|a| (a.0, a.1, a.2 >> 11, a.3));
    let mut out: Vec<(K, u8, u32)> = Vec::with_capacity(entries.len());
    let mut stack: Vec<(K, u8, u32, u32)> = Vec::new();
    for (key, len, value, origin) in entries {
        while stack
            .last()
            .is_some_and(|&(k, l, _, _)| !(l <= len && key & K::mask(l) == k))
        {
            stack.pop();
        }
        let reg = PrefixValue(value).registration();
        if let Some(&(k, l, v, o)) = stack.last() {
            if k == key && l == len {
                counts[0] += 1;
                if counts[0] > MAX_PER_CODE {
                    continue;
                }
                found.push(Finding::Duplicate {
                    net: key.net(len),
                    at: At::new(reg, origin),
                    first: At::new(PrefixValue(v).registration(), o),
                });
                continue;
            }
        }
        let outer = stack
            .iter()
            .rev()
            .find(|(_, _, v, _)| PrefixValue(*v).registration() != reg);
        if outer.is_some() {
            counts[1] += 1;
        }
        if let Some(&(k, l, v, _)) = outer.filter(|_| counts[1] <= MAX_PER_CODE) {
            found.push(Finding::Nested {
                net: key.net(len),
                at: At::new(reg, origin),
                outer: k.net(l),
                outer_reg: PrefixValue(v).registration(),
            });
        }
        stack.push((key, len, value, origin));
        out.push((key, len, value));
    }
    out
}

impl Checker {
    /// Reports duplicate prefixes (errors) and prefixes nested in another
    /// registration's prefix (warnings); returns the LPM entries without duplicates.
    #[allow(clippy::type_complexity)]
    pub(super) fn duplicates_and_overlaps(
        &mut self,
        table: Table,
        doc: &PolicyDocument,
    ) -> (Vec<(u32, u8, u32)>, Vec<(u128, u8, u32)>) {
        let mut found = Vec::new();
        // Duplicates and nestings beyond the cap are counted, not collected: a
        // synthetic or careless table can nest every prefix.
        let mut counts = [0usize; 2];
        let v4 = sweep(table.v4, &mut found, &mut counts);
        let v6 = sweep(table.v6, &mut found, &mut counts);
        let id = |i: usize| doc.registrations.get(i).map_or("", |r| r.id.as_str());
        for f in found {
            let (code, at, message, help) = match f {
                Finding::Duplicate { net, at, first } => (
                    Code::DuplicatePrefix,
                    at,
                    format!("prefix {net} is already registered at {}", first.place()),
                    "register each prefix once",
                ),
                Finding::Nested {
                    net,
                    at,
                    outer,
                    outer_reg,
                } => (
                    Code::OverlappingPrefix,
                    at,
                    format!(
                        "{net} of `{}` is inside {outer} of `{}`",
                        id(at.reg),
                        id(outer_reg)
                    ),
                    "Azure refuses overlapping registrations; here the more specific prefix wins",
                ),
            };
            let (path, message) = at.path_and_message(message);
            self.push_capped(Diagnostic::new(code, path, message).with_help(help));
        }
        // Only now: counted first, the collected ones above would all land over the cap
        // and none would be shown.
        self.count_unshown(
            Code::DuplicatePrefix,
            counts[0].saturating_sub(MAX_PER_CODE),
        );
        self.count_unshown(
            Code::OverlappingPrefix,
            counts[1].saturating_sub(MAX_PER_CODE),
        );
        (v4, v6)
    }
}
