//! A person-readable account of one decision: which prefix matched and why it is or
//! is not eligible, how the destination matched, every candidate edge with its
//! distance and provider rank, and why the chosen one won. Off the hot path: it may
//! allocate and scan.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use serde::Serialize;

use crate::addr::parse_address;
use crate::classify::{Class, Classifier, DestinationMatch};
use crate::policy::PrefixState;
use crate::select::Reason;

/// A registered prefix that contains the source.
#[derive(Debug, Clone, Serialize)]
pub struct PrefixMatch {
    /// The prefix.
    pub prefix: String,
    /// Its registration id.
    pub registration: String,
    /// Its customer, if named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Its validation state.
    pub state: String,
    /// Whether that state is eligible.
    pub eligible: bool,
    /// Whether the prefix reports telemetry.
    pub telemetry: bool,
}

/// One edge as the registration sees it.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeView {
    /// Edge id.
    pub edge: String,
    /// Metro, if named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metro: Option<String>,
    /// Provider, if named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Position in the order (1 = chosen); `None` when not a candidate.
    pub position: Option<usize>,
    /// Provider rank.
    pub rank: Option<usize>,
    /// Distance in km (rounded to 0.001).
    pub distance_km: Option<f64>,
    /// Why it is where it is: `pinned-primary`, `pinned-backup`, `nearest`,
    /// `drained`, `no-usable-link`, `after-none-backup`.
    pub why: String,
}

/// Where a registration's customer is.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// `lat/lon`, or the location it was looked up from (`location \`Washington\``).
    pub from: String,
}

/// The explanation of a decision.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The source as given.
    pub src: String,
    /// The source as understood (IPv4-mapped IPv6 shown as IPv4), if it parsed.
    pub address: Option<String>,
    /// The class.
    pub class: Class,
    /// The most specific registered prefix containing the source.
    pub matched: Option<PrefixMatch>,
    /// Less specific registered prefixes that also contain the source.
    pub also_inside: Vec<PrefixMatch>,
    /// The states this policy treats as eligible.
    pub eligible_states: Vec<String>,
    /// The destination address, if given.
    pub dst: Option<String>,
    /// The host, if given.
    pub host: Option<String>,
    /// How the destination matched Microsoft's address space, in words.
    pub destination: String,
    /// Customer site: where the registration's customer is, and how that was found.
    pub site: Option<SiteView>,
    /// Every edge, candidates first in order.
    pub edges: Vec<EdgeView>,
    /// Chosen edge, link, backup and failover.
    pub edge: Option<String>,
    /// Chosen link.
    pub link: Option<String>,
    /// Backup edge.
    pub backup: Option<String>,
    /// The flow's Microsoft 365 category (SPEC §7), when a matching entry has one.
    pub category: Option<crate::m365::Category>,
    /// The Envoy cluster the decision routes to (class `maps`).
    pub cluster: Option<String>,
    /// Failover edges.
    pub failover: Vec<String>,
    /// Why the decision came out this way, in one sentence.
    pub why: String,
}

impl Classifier {
    /// Registration `reg`'s prefixes (JSON and packed alike), at most `limit` of them,
    /// IPv4 first, in address order. Empty for a lean classifier.
    pub fn prefixes_of(&self, reg: usize, limit: usize) -> Vec<PrefixMatch> {
        let policy = self.policy();
        let r = policy.document().registrations.get(reg);
        self.entries()
            .filter(|(_, v)| v.registration() == reg)
            .take(limit)
            .map(|(net, v)| PrefixMatch {
                prefix: net.to_string(),
                registration: r.map(|r| r.id.clone()).unwrap_or_default(),
                customer: r.and_then(|r| r.customer.clone()),
                state: v.state().as_str().to_string(),
                eligible: policy.is_eligible(v.state()),
                telemetry: v.telemetry(),
            })
            .collect()
    }

    /// Explains the decision for `src` (text, as in a trace line) with an optional
    /// destination address and host.
    pub fn explain(&self, src: &str, dst: Option<&str>, host: Option<&str>) -> Explanation {
        let d = self.classify_text(src, dst, host);
        let policy = self.policy();
        let doc = policy.document();
        let addr = parse_address(src);
        let dst_addr = dst.and_then(parse_address);
        let pm = |net: ipnet::IpNet, reg: usize, state: PrefixState, telemetry: bool| {
            let r = doc.registrations.get(reg);
            PrefixMatch {
                prefix: net.to_string(),
                registration: r.map(|r| r.id.clone()).unwrap_or_default(),
                customer: r.and_then(|r| r.customer.clone()),
                state: state.as_str().to_string(),
                eligible: policy.is_eligible(state),
                telemetry,
            }
        };
        // The matched prefix is the decision's own (the LPM's answer, JSON and packed
        // prefixes alike); the less specific ones come from the kept prefix list.
        let matched = match (d.prefix(), d.registration_index(), d.state()) {
            (Some(net), Some(reg), Some(state)) => Some(pm(net, reg, state, d.telemetry())),
            _ => None,
        };
        let also_inside = match (addr, d.prefix()) {
            (Some(a), Some(best)) => self
                .containing(a)
                .into_iter()
                .filter(|(net, _)| net.prefix_len() < best.prefix_len())
                .map(|(net, v)| pm(net, v.registration(), v.state(), v.telemetry()))
                .collect(),
            _ => Vec::new(),
        };

        let port = dst
            .and_then(crate::addr::port_of)
            .or_else(|| host.and_then(crate::addr::port_of));
        let destination = match self.destination_match(dst_addr, host, port) {
            Some(DestinationMatch::Everything) => {
                "the policy lists no destinations: every destination counts as Microsoft"
                    .to_string()
            }
            Some(DestinationMatch::Prefix(i)) => format!(
                "Microsoft: the address is inside a prefix of `{}`",
                doc.destinations.get(i).map_or("", |d| d.name.as_str())
            ),
            Some(DestinationMatch::Domain(i)) => format!(
                "Microsoft: the host is a domain of `{}`",
                doc.destinations.get(i).map_or("", |d| d.name.as_str())
            ),
            Some(DestinationMatch::Wildcard(i)) => format!(
                "Microsoft: the host matches a wildcard domain of `{}`",
                doc.destinations.get(i).map_or("", |d| d.name.as_str())
            ),
            Some(DestinationMatch::Pattern(i)) => format!(
                "Microsoft: the host matches a domain pattern of `{}`",
                doc.destinations.get(i).map_or("", |d| d.name.as_str())
            ),
            None if dst.is_none() && host.is_none() => {
                "no destination and no host given: not known to be Microsoft".to_string()
            }
            None => {
                "not Microsoft: neither the address nor the host matches a destination".to_string()
            }
        };

        let reg = d.registration_index();
        let site = reg.and_then(|r| {
            let s = policy.site(r)?;
            let from = if s.from_location {
                format!(
                    "location `{}`",
                    doc.registrations
                        .get(r)
                        .and_then(|r| r.location.as_deref())
                        .unwrap_or("")
                )
            } else {
                "lat/lon".to_string()
            };
            Some(SiteView {
                lat: s.lat,
                lon: s.lon,
                from,
            })
        });
        let mut edges = Vec::new();
        if let Some(r) = reg {
            let cands = self.candidates(r);
            for (pos, c) in cands.iter().enumerate() {
                let e = doc.edges.get(c.edge);
                edges.push(EdgeView {
                    edge: e.map(|e| e.id.clone()).unwrap_or_default(),
                    metro: e.and_then(|e| e.metro.clone()),
                    provider: e.and_then(|e| e.provider.clone()),
                    position: Some(pos + 1),
                    rank: Some(c.rank),
                    distance_km: Some(c.distance_km),
                    why: match c.reason {
                        Reason::PinnedPrimary => "pinned-primary",
                        Reason::PinnedBackup => "pinned-backup",
                        Reason::Nearest => "nearest",
                    }
                    .to_string(),
                });
            }
            for (i, e) in doc.edges.iter().enumerate() {
                if cands.iter().any(|c| c.edge == i) {
                    continue;
                }
                let why = if e.drained {
                    "drained"
                } else if e.links.iter().all(|l| l.drained) {
                    "no-usable-link"
                } else {
                    "after-none-backup"
                };
                edges.push(EdgeView {
                    edge: e.id.clone(),
                    metro: e.metro.clone(),
                    provider: e.provider.clone(),
                    position: None,
                    rank: None,
                    distance_km: None,
                    why: why.to_string(),
                });
            }
        }
        let eligible_states: Vec<String> = policy
            .eligible_states()
            .map(|s| s.as_str().to_string())
            .collect();
        let why = match d.class() {
            Class::InvalidSource => format!("`{src}` is not an IPv4 or IPv6 address"),
            Class::Unregistered => {
                "no registered prefix (in any state) contains the source".to_string()
            }
            Class::Unverified => format!(
                "the most specific registered prefix is {}, outside the eligible states ({})",
                matched.as_ref().map_or("", |m| m.state.as_str()),
                eligible_states.join(", ")
            ),
            Class::NonMicrosoft => {
                "the destination is not Microsoft's (or not on the ports its entries list): the default path applies".to_string()
            }
            Class::ExcludedCategory => format!(
                "every matching destination has a category outside maps_categories (the flow's category: {}): the default path applies",
                d.category().map_or("none", |c| c.as_str())
            ),
            Class::NoEdge => "every edge is drained or has no usable link".to_string(),
            Class::Maps => {
                let first = edges.first();
                match first.map(|e| e.why.as_str()) {
                    Some("pinned-primary") => format!(
                        "{} is the registration's pinned primary edge and is usable",
                        d.edge().unwrap_or("")
                    ),
                    Some("pinned-backup") => format!(
                        "the pinned primary is unusable; {} is the pinned backup",
                        d.edge().unwrap_or("")
                    ),
                    _ => format!(
                        "{} has the best (provider rank, distance, id): rank {}, {} km",
                        d.edge().unwrap_or(""),
                        first.and_then(|e| e.rank).unwrap_or(0),
                        first.and_then(|e| e.distance_km).unwrap_or(0.0)
                    ),
                }
            }
        };
        Explanation {
            src: src.to_string(),
            address: addr.map(|a| a.to_string()),
            class: d.class(),
            matched,
            also_inside,
            eligible_states,
            dst: dst.map(String::from),
            host: host.map(String::from),
            destination,
            site,
            edge: d.edge().map(String::from),
            link: d.link().map(String::from),
            backup: d.backup().map(String::from),
            cluster: d.cluster().map(String::from),
            category: d.category(),
            failover: d.failover().map(String::from).collect(),
            edges,
            why,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(out, "decision: {}", self.class);
        let _ = writeln!(out, "why:      {}", self.why);
        let _ = writeln!(out);
        match &self.address {
            Some(a) if *a != self.src => {
                let _ = writeln!(out, "source    {} (read as {a})", self.src);
            }
            Some(_) => {
                let _ = writeln!(out, "source    {}", self.src);
            }
            None => {
                let _ = writeln!(out, "source    {} (not an address)", self.src);
            }
        }
        match &self.matched {
            Some(m) => {
                let _ = writeln!(
                    out,
                    "  matched {} of registration {}{}, state {} ({})",
                    m.prefix,
                    m.registration,
                    m.customer
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    m.state,
                    if m.eligible {
                        "eligible".to_string()
                    } else {
                        format!(
                            "not eligible: eligible states are {}",
                            self.eligible_states.join(", ")
                        )
                    }
                );
                for o in &self.also_inside {
                    let _ = writeln!(
                        out,
                        "  also inside {} of {} (state {}): the more specific prefix wins",
                        o.prefix, o.registration, o.state
                    );
                }
            }
            None if self.address.is_some() => {
                let _ = writeln!(out, "  no registered prefix contains it");
            }
            None => {}
        }
        if self.matched.is_some() {
            let _ = writeln!(
                out,
                "destination {}{}",
                self.dst.as_deref().unwrap_or("-"),
                self.host
                    .as_ref()
                    .map(|h| format!(", host {h}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(out, "  {}", self.destination);
            if let Some(c) = self.category {
                let _ = writeln!(out, "  category {c} (the highest of the matching entries)");
            }
        }
        if let Some(site) = &self.site {
            let _ = writeln!(
                out,
                "customer site {:.4}, {:.4} (from {})",
                site.lat, site.lon, site.from
            );
        }
        if !self.edges.is_empty() {
            let _ = writeln!(out, "edges:");
            let _ = writeln!(
                out,
                "  {:>3}  {:<12} {:<16} {:<20} {:>4} {:>12}  why",
                "#", "edge", "metro", "provider", "rank", "distance_km"
            );
            for e in &self.edges {
                let _ = writeln!(
                    out,
                    "  {:>3}  {:<12} {:<16} {:<20} {:>4} {:>12}  {}",
                    e.position
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.edge,
                    e.metro.as_deref().unwrap_or("-"),
                    e.provider.as_deref().unwrap_or("-"),
                    e.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                    e.distance_km
                        .map(|d| format!("{d:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    e.why
                );
            }
        }
        if self.class == Class::Maps {
            let _ = writeln!(
                out,
                "edge {} via link {} (rendezvous hash of the client over the edge's usable links)",
                self.edge.as_deref().unwrap_or("-"),
                self.link.as_deref().unwrap_or("-")
            );
            let _ = writeln!(
                out,
                "backup {}, failover [{}]",
                self.backup.as_deref().unwrap_or("none"),
                self.failover.join(", ")
            );
        }
        f.write_str(out.trim_end())
    }
}
