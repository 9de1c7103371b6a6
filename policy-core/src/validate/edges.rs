//! Edges and links (SPEC §6): duplicate edge and link ids, the reserved edge id
//! `None`, edge coordinates, link addresses (`host:port`), local redundancy (two
//! usable links on two routers), geo redundancy (two usable edges), and link
//! capacity (10 Gbit/s or more, equal to the most common capacity).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Checker;
use crate::addr::HostPort;
use crate::diag::{Code, Diagnostic};
use crate::model::{Edge, Link};
use crate::text::{pointer, shown};

/// The edges by id, as registrations refer to them.
pub(super) struct EdgeIndex<'a> {
    /// Edge id → index of its first edge.
    pub(super) ids: BTreeMap<&'a str, usize>,
    /// Every edge id, in document order (for "did you mean").
    pub(super) names: Vec<&'a str>,
    /// Edges that can carry traffic (not drained, a usable link).
    pub(super) usable: usize,
}

/// What the links of every edge share: ids are unique across the document, and
/// capacities are compared across all usable links.
#[derive(Default)]
struct Links<'a> {
    /// Link id → JSON Pointer of its first link.
    ids: BTreeMap<&'a str, String>,
    /// Usable links with a valid capacity: (Gbit/s, link id, pointer to the capacity).
    capacities: Vec<(f64, String, String)>,
}

impl Checker {
    /// Every edge and link check, in document order, then geo redundancy and capacity.
    pub(super) fn edges<'a>(&mut self, edges: &'a [Edge]) -> EdgeIndex<'a> {
        let mut index = EdgeIndex {
            ids: BTreeMap::new(),
            names: edges.iter().map(|e| e.id.as_str()).collect(),
            usable: 0,
        };
        let mut links = Links::default();
        for (i, e) in edges.iter().enumerate() {
            if self.edge(i, e, &mut index.ids, &mut links) {
                index.usable += 1;
            }
        }
        if index.usable < 2 {
            self.push(
                Diagnostic::new(
                    Code::NoGeoRedundancy,
                    "/edges",
                    format!("{} usable edge(s): no geo redundancy", index.usable),
                )
                .with_help("Azure asks for a second peering location to fail over to"),
            );
        }
        self.capacities(&links.capacities);
        index
    }

    /// One edge and its links; true when it can carry traffic.
    fn edge<'a>(
        &mut self,
        i: usize,
        e: &'a Edge,
        ids: &mut BTreeMap<&'a str, usize>,
        links: &mut Links<'a>,
    ) -> bool {
        let base = format!("/edges/{i}");
        if let Some(first) = ids.get(e.id.as_str()) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateEdgeId,
                    pointer(&base, &["id"]),
                    format!(
                        "edge id `{}` is already used by /edges/{first}",
                        shown(&e.id)
                    ),
                )
                .with_help("give each edge a unique id"),
            );
        } else {
            ids.insert(&e.id, i);
        }
        if e.id == "None" {
            self.push(
                Diagnostic::new(
                    Code::BadValue,
                    pointer(&base, &["id"]),
                    "`None` is reserved",
                )
                .with_help("`backup_edge: \"None\"` means no backup site; rename the edge"),
            );
        }
        self.coords(e.lat, e.lon, &base);
        for (j, l) in e.links.iter().enumerate() {
            self.link(&format!("{base}/links/{j}"), l, links);
        }
        let usable: Vec<&Link> = e.links.iter().filter(|l| !l.drained).collect();
        if !e.drained {
            self.local_redundancy(&base, e, &usable);
        }
        !e.drained && !usable.is_empty()
    }

    /// One link: unique id, `host:port` address, positive capacity.
    fn link<'a>(&mut self, lbase: &str, l: &'a Link, links: &mut Links<'a>) {
        if let Some(first) = links.ids.get(l.id.as_str()) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateLinkId,
                    pointer(lbase, &["id"]),
                    format!("link id `{}` is already used by {first}", shown(&l.id)),
                )
                .with_help("link ids are unique across the whole document"),
            );
        } else {
            links.ids.insert(&l.id, String::from(lbase));
        }
        if let Some(addr) = &l.address {
            if let Err(why) = HostPort::check(addr) {
                self.push(
                    Diagnostic::new(
                        Code::MalformedAddress,
                        pointer(lbase, &["address"]),
                        format!("link address `{}` is not host:port: {why}", shown(addr)),
                    )
                    .with_help("write it as 192.0.2.10:443, [2001:db8::1]:443 or name.example:443"),
                );
            }
        }
        if let Some(c) = l.capacity_gbps {
            if !(c.is_finite() && c > 0.0) {
                self.push(Diagnostic::new(
                    Code::BadValue,
                    pointer(lbase, &["capacity_gbps"]),
                    format!("capacity {c} Gbit/s is not a positive number"),
                ));
            } else if !l.drained {
                links
                    .capacities
                    .push((c, l.id.clone(), pointer(lbase, &["capacity_gbps"])));
            }
        }
    }

    /// An undrained edge needs two usable links, not all on one router.
    fn local_redundancy(&mut self, base: &str, e: &Edge, usable: &[&Link]) {
        if usable.len() < 2 {
            self.push(
                Diagnostic::new(
                    Code::NoLocalRedundancy,
                    pointer(base, &["links"]),
                    format!(
                        "edge `{}` has {} usable link{}: no local redundancy",
                        e.id,
                        usable.len(),
                        if usable.len() == 1 { "" } else { "s" }
                    ),
                )
                .with_help("Azure asks for two diverse links per site, on two different routers"),
            );
        } else {
            let routers: BTreeSet<_> = usable.iter().map(|l| l.router.as_deref()).collect();
            if routers.len() == 1 && !routers.contains(&None) {
                self.push(
                    Diagnostic::new(
                        Code::NoLocalRedundancy,
                        pointer(base, &["links"]),
                        format!(
                            "every usable link of edge `{}` lands on router `{}`: no local redundancy",
                            e.id,
                            usable.first().and_then(|l| l.router.as_deref()).unwrap_or("")
                        ),
                    )
                    .with_help("land the links on two different routers"),
                );
            }
        }
    }

    /// Capacity: sub-10G links, and links that differ from the most common capacity.
    fn capacities(&mut self, capacities: &[(f64, String, String)]) {
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for (c, _, _) in capacities {
            *counts.entry(c.to_bits()).or_default() += 1;
        }
        let reference = counts
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then(f64::from_bits(*a.0).total_cmp(&f64::from_bits(*b.0)))
            })
            .map(|(bits, _)| f64::from_bits(*bits));
        for (c, id, path) in capacities {
            if *c < 10.0 {
                self.push(
                    Diagnostic::new(
                        Code::LinkCapacity,
                        path.clone(),
                        format!("link `{id}` has {c} Gbit/s, below the 10 Gbit/s Azure asks for"),
                    )
                    .with_help("use links of 10 Gbit/s or more"),
                );
            } else if let Some(r) = reference {
                if *c != r {
                    self.push(
                        Diagnostic::new(
                            Code::LinkCapacity,
                            path.clone(),
                            format!("link `{id}` has {c} Gbit/s where most links have {r}"),
                        )
                        .with_help(
                            "Azure asks for equal capacity on primary, backup and redundant links",
                        ),
                    );
                }
            }
        }
    }
}
