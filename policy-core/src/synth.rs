//! Synthetic policies of any size for benchmarks and load tests (feature `testgen`):
//! a base policy (its edges, destinations and options) plus registrations holding a
//! generated prefix table ([`crate::testgen`]), packed in `prefix_table`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::{PolicyDocument, Registration};
use crate::packed::Record;
use crate::policy::PrefixState;
use crate::testgen::{ipv4_table, ipv6_table};
use crate::validate::address_space::{documentation, non_public};

/// Locations the synthetic registrations cycle through.
const LOCATIONS: &[&str] = &[
    "Washington",
    "California",
    "Texas",
    "Illinois",
    "Virginia",
    "New York",
    "Florida",
    "United Kingdom",
    "Netherlands",
    "Germany",
    "France",
    "Japan",
    "Singapore",
    "Australia",
    "India",
    "Brazil",
    "South Africa",
    "Canada",
];

/// `base` with `per_registration`-prefix registrations added for a generated table of
/// `v4` IPv4 and `v6` IPv6 prefixes (seeded). Prefixes that validation would refuse
/// (non-public, documentation) are left out, so the result is valid and its size is
/// close to, not exactly, `v4 + v6`. About 95 % are `Verified`.
pub fn synthetic_policy(
    base: &PolicyDocument,
    v4: usize,
    v6: usize,
    per_registration: usize,
    seed: u64,
) -> PolicyDocument {
    let mut doc = base.clone();
    let first = doc.registrations.len();
    let per = per_registration.max(1);
    let mut nets: Vec<IpNet> = Vec::with_capacity(v4 + v6);
    for (addr, len, _) in ipv4_table(v4, seed) {
        if let Ok(n) = Ipv4Net::new(Ipv4Addr::from(addr), len) {
            nets.push(IpNet::V4(n.trunc()));
        }
    }
    for (addr, len, _) in ipv6_table(v6, seed ^ 0x6666) {
        if let Ok(n) = Ipv6Net::new(Ipv6Addr::from(addr), len) {
            nets.push(IpNet::V6(n.trunc()));
        }
    }
    let taken: alloc::collections::BTreeSet<IpNet> = base
        .registrations
        .iter()
        .flat_map(|r| r.prefixes.iter())
        .filter_map(|p| p.prefix.parse().ok())
        .collect();
    nets.retain(|n| {
        !taken.contains(n)
            && non_public(n).is_none()
            && documentation(n).is_none()
            && match n {
                IpNet::V4(x) => x.prefix_len() >= 8,
                IpNet::V6(x) => x.prefix_len() >= 16,
            }
    });
    let regs = nets.len().div_ceil(per);
    for i in 0..regs {
        doc.registrations.push(Registration {
            id: format!("synthetic-{i}"),
            customer: Some(format!("Synthetic customer {i}")),
            location: LOCATIONS.get(i % LOCATIONS.len()).map(|s| String::from(*s)),
            lat: None,
            lon: None,
            primary_edge: None,
            backup_edge: None,
            providers: None,
            prefixes: Vec::new(),
        });
    }
    let recs: Vec<Record> = nets
        .iter()
        .enumerate()
        .map(|(i, net)| Record {
            registration: (first + i / per) as u32,
            state: if i % 20 == 19 {
                PrefixState::Pending
            } else {
                PrefixState::Verified
            },
            telemetry: i % 1000 == 0,
            has_key: true,
            net: *net,
        })
        .collect();
    let mut packed: Vec<Record> = Vec::new();
    if let Some(Ok(old)) = doc
        .prefix_table
        .as_ref()
        .map(crate::packed::PackedTable::records)
    {
        packed.extend(old.filter_map(Result::ok));
    }
    packed.extend(recs);
    doc.prefix_table = Some(crate::packed::PackedTable::from_records(&packed));
    doc
}
