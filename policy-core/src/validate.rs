//! Validation (SPEC §6): every problem at once, then a [`Policy`] if there was no error.
//!
//! Errors make a document unloadable. Warnings are the "MAPS-ready" checks (what
//! Azure asks of a partner: local and geo redundancy, equal capacity, IPv4-only,
//! no overlaps...); `strict` turns them into errors.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addr::{normalize_host, HostPort};
use crate::diag::{Code, Diagnostic, Report, Summary, TELEMETRY_USD_PER_PREFIX};
use crate::locations;
use crate::model::{AddressSource, PolicyDocument};
use crate::parse;
use crate::policy::{
    Backup, ClientRule, HeaderNames, Policy, PrefixCounts, PrefixState, PrefixValue,
    RegisteredPrefix, Site, MAX_REGISTRATIONS,
};
use crate::text::{closest, pointer};

/// The outcome of validating a document: the report, and the policy when it loads.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Every diagnostic and the summary.
    pub report: Report,
    /// The policy, present exactly when `report.valid`.
    pub policy: Option<Policy>,
}

/// Validates a policy document given as bytes (UTF-8 JSON).
///
/// ```
/// let v = policy_core::validate(br#"{"version": 2}"#, false);
/// assert!(!v.report.valid);
/// assert_eq!(v.report.diagnostics[0].code.as_str(), "unsupported-version");
/// assert!(v.policy.is_none());
/// ```
pub fn validate(bytes: &[u8], strict: bool) -> Validated {
    let doc = match parse::parse_bytes(bytes) {
        Ok(doc) => doc,
        Err(diags) => {
            return Validated {
                report: Report::new(diags, None, strict),
                policy: None,
            }
        }
    };
    let (mut diags, summary, policy) = check_document(doc);
    if let Ok(text) = core::str::from_utf8(bytes) {
        parse::fill_lines(text, &mut diags);
    }
    crate::diag::sort_by_position(&mut diags);
    let report = Report::new(diags, Some(summary), strict);
    let policy = if report.valid { policy } else { None };
    Validated { report, policy }
}

/// Validates a parsed document. Returns the diagnostics (default severities, no line
/// numbers), the summary, and the policy when no diagnostic is an error.
pub fn check_document(doc: PolicyDocument) -> (Vec<Diagnostic>, Summary, Option<Policy>) {
    check_document_with(doc, true)
}

/// [`check_document`]; with `keep_packed` false, the packed `prefix_table` is dropped
/// from the policy's document once read (the tables carry its prefixes), so it is
/// not in memory while they are built. [`crate::packed::pack_policy`] needs it kept.
pub fn check_document_with(
    doc: PolicyDocument,
    keep_packed: bool,
) -> (Vec<Diagnostic>, Summary, Option<Policy>) {
    let mut v = Checker {
        diags: Vec::new(),
        per_code: BTreeMap::new(),
        keep_packed,
    };
    let out = v.run(doc);
    let errors = v
        .diags
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error);
    let (summary, policy) = out;
    (v.diags, summary, if errors { None } else { Some(policy) })
}

struct Checker {
    keep_packed: bool,
    diags: Vec<Diagnostic>,
    per_code: BTreeMap<Code, usize>,
}

/// At most this many diagnostics of one code come from prefixes (JSON or packed).
pub const MAX_PER_CODE: usize = 100;

/// Marks a packed record number in an entry's origin.
const PACKED: u32 = 1 << 31;

/// Registered prefixes being collected: (network, length, value, origin). The origin
/// is the index in the registration's `prefixes`, or `PACKED | record number`.
#[derive(Default)]
struct Table {
    v4: Vec<(u32, u8, u32, u32)>,
    v6: Vec<(u128, u8, u32, u32)>,
}

impl Table {
    fn add(&mut self, net: IpNet, reg: usize, state: PrefixState, telemetry: bool, origin: u32) {
        let value = PrefixValue::new(reg, state, telemetry, net.prefix_len()).0;
        match net {
            IpNet::V4(n) => self
                .v4
                .push((u32::from(n.network()), n.prefix_len(), value, origin)),
            IpNet::V6(n) => self
                .v6
                .push((u128::from(n.network()), n.prefix_len(), value, origin)),
        }
    }
}

/// A duplicate (`outer: None`) or a nesting found by [`sweep`].
struct Finding {
    net: IpNet,
    reg: usize,
    origin: u32,
    outer: Option<IpNet>,
    outer_reg: usize,
    outer_origin: u32,
}

/// Address keys of either family.
trait Key: Copy + Ord + core::ops::BitAnd<Output = Self> + core::ops::Not<Output = Self> {
    const BITS: u8;
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
    const BITS: u8 = 32;
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
    const BITS: u8 = 128;
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
    let _ = K::BITS;
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
                found.push(Finding {
                    net: key.net(len),
                    reg,
                    origin,
                    outer: None,
                    outer_reg: PrefixValue(v).registration(),
                    outer_origin: o,
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
        if let Some(&(k, l, v, o)) = outer.filter(|_| counts[1] <= MAX_PER_CODE) {
            found.push(Finding {
                net: key.net(len),
                reg,
                origin,
                outer: Some(k.net(l)),
                outer_reg: PrefixValue(v).registration(),
                outer_origin: o,
            });
        }
        stack.push((key, len, value, origin));
        out.push((key, len, value));
    }
    out
}

const STATE_NAMES: [&str; 7] = [
    "None", "Invalid", "Verified", "Failed", "Pending", "Warning", "Unknown",
];

impl Checker {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn state(&mut self, text: &str, path: &str) -> Option<PrefixState> {
        if let Some(s) = PrefixState::from_name(text) {
            return Some(s);
        }
        let d = Diagnostic::new(
            Code::UnknownState,
            path,
            format!("unknown prefix state `{text}`"),
        );
        let help = match closest(text, STATE_NAMES) {
            Some(s) => format!(
                "did you mean `{s}`? (Azure's prefixValidationState values: {})",
                STATE_NAMES.join(", ")
            ),
            None => format!(
                "use one of Azure's prefixValidationState values: {}",
                STATE_NAMES.join(", ")
            ),
        };
        self.push(d.with_help(help));
        None
    }

    fn coords(&mut self, lat: f64, lon: f64, base: &str) -> bool {
        let mut ok = true;
        if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
            self.push(
                Diagnostic::new(
                    Code::CoordinateOutOfRange,
                    pointer(base, &["lat"]),
                    format!("latitude {lat} is outside -90..90"),
                )
                .with_help("latitude comes first, in degrees north"),
            );
            ok = false;
        }
        if !(-180.0..=180.0).contains(&lon) || !lon.is_finite() {
            self.push(
                Diagnostic::new(
                    Code::CoordinateOutOfRange,
                    pointer(base, &["lon"]),
                    format!("longitude {lon} is outside -180..180"),
                )
                .with_help("longitude is in degrees east; west is negative"),
            );
            ok = false;
        }
        ok
    }

    fn run(&mut self, mut doc: PolicyDocument) -> (Summary, Policy) {
        if doc.version != 1 {
            self.push(
                Diagnostic::new(
                    Code::UnsupportedVersion,
                    "/version",
                    format!("policy version {} is not supported", doc.version),
                )
                .with_help("this release reads version 1: write \"version\": 1"),
            );
        }

        // ---- options ----
        let mut eligible = 0u8;
        for (i, s) in doc.options.eligible_states.iter().enumerate() {
            let path = pointer("/options/eligible_states", &[&i.to_string()]);
            if let Some(st) = self.state(s, &path) {
                eligible |= st.bit();
            }
        }
        let hp = &doc.options.header_prefix;
        if hp.is_empty()
            || !hp
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.push(
                Diagnostic::new(
                    Code::BadHeaderPrefix,
                    "/options/header_prefix",
                    format!("header prefix `{hp}` is not a lowercase header-name prefix"),
                )
                .with_help("use lowercase letters, digits and '-', e.g. \"x-maps-\""),
            );
        }

        // ---- edges and links ----
        let mut edge_ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut link_ids: BTreeMap<&str, String> = BTreeMap::new();
        let mut capacities: Vec<(f64, String, String)> = Vec::new();
        let mut usable_edges = 0usize;
        for (i, e) in doc.edges.iter().enumerate() {
            let base = format!("/edges/{i}");
            if let Some(first) = edge_ids.get(e.id.as_str()) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateEdgeId,
                        pointer(&base, &["id"]),
                        format!("edge id `{}` is already used by /edges/{first}", e.id),
                    )
                    .with_help("give each edge a unique id"),
                );
            } else {
                edge_ids.insert(&e.id, i);
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
                let lbase = format!("{base}/links/{j}");
                if let Some(first) = link_ids.get(l.id.as_str()) {
                    self.push(
                        Diagnostic::new(
                            Code::DuplicateLinkId,
                            pointer(&lbase, &["id"]),
                            format!("link id `{}` is already used by {first}", l.id),
                        )
                        .with_help("link ids are unique across the whole document"),
                    );
                } else {
                    link_ids.insert(&l.id, lbase.clone());
                }
                if let Some(addr) = &l.address {
                    if HostPort::parse(addr).is_none() {
                        self.push(
                            Diagnostic::new(
                                Code::MalformedAddress,
                                pointer(&lbase, &["address"]),
                                format!("link address `{addr}` is not host:port"),
                            )
                            .with_help(
                                "write it as 192.0.2.10:443, [2001:db8::1]:443 or name.example:443",
                            ),
                        );
                    }
                }
                if let Some(c) = l.capacity_gbps {
                    if !(c.is_finite() && c > 0.0) {
                        self.push(Diagnostic::new(
                            Code::BadValue,
                            pointer(&lbase, &["capacity_gbps"]),
                            format!("capacity {c} Gbit/s is not a positive number"),
                        ));
                    } else if !l.drained {
                        capacities.push((c, l.id.clone(), pointer(&lbase, &["capacity_gbps"])));
                    }
                }
            }
            let usable: Vec<_> = e.links.iter().filter(|l| !l.drained).collect();
            if !e.drained && !usable.is_empty() {
                usable_edges += 1;
            }
            if e.drained {
                continue;
            }
            if usable.len() < 2 {
                self.push(
                    Diagnostic::new(
                        Code::NoLocalRedundancy,
                        pointer(&base, &["links"]),
                        format!(
                            "edge `{}` has {} usable link{}: no local redundancy",
                            e.id,
                            usable.len(),
                            if usable.len() == 1 { "" } else { "s" }
                        ),
                    )
                    .with_help(
                        "Azure asks for two diverse links per site, on two different routers",
                    ),
                );
            } else {
                let routers: BTreeSet<_> = usable.iter().map(|l| l.router.as_deref()).collect();
                if routers.len() == 1 && !routers.contains(&None) {
                    self.push(
                        Diagnostic::new(
                            Code::NoLocalRedundancy,
                            pointer(&base, &["links"]),
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
        if usable_edges < 2 {
            self.push(
                Diagnostic::new(
                    Code::NoGeoRedundancy,
                    "/edges",
                    format!("{usable_edges} usable edge(s): no geo redundancy"),
                )
                .with_help("Azure asks for a second peering location to fail over to"),
            );
        }
        // Capacity: sub-10G links, and links that differ from the most common capacity.
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for (c, _, _) in &capacities {
            *counts.entry(c.to_bits()).or_default() += 1;
        }
        let reference = counts
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then(f64::from_bits(*a.0).total_cmp(&f64::from_bits(*b.0)))
            })
            .map(|(bits, _)| f64::from_bits(*bits));
        for (c, id, path) in &capacities {
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

        // ---- registrations ----
        let mut reg_ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut sites = Vec::with_capacity(doc.registrations.len());
        let mut primary = Vec::with_capacity(doc.registrations.len());
        let mut backup = Vec::with_capacity(doc.registrations.len());
        let mut prefixes: Vec<RegisteredPrefix> = Vec::new();
        let mut table = Table::default();
        let mut counts = alloc::vec![PrefixCounts::default(); doc.registrations.len()];
        // Whether a registration lists a prefix in an eligible state (even one whose
        // prefix text is wrong: that is reported on its own).
        let mut reg_eligible = alloc::vec![false; doc.registrations.len()];
        let mut summary = Summary {
            edges: doc.edges.len(),
            usable_edges,
            links: doc.edges.iter().map(|e| e.links.len()).sum(),
            registrations: doc.registrations.len(),
            ..Summary::default()
        };
        let edge_names: Vec<&str> = doc.edges.iter().map(|e| e.id.as_str()).collect();
        for (i, r) in doc.registrations.iter().enumerate() {
            let base = format!("/registrations/{i}");
            if let Some(first) = reg_ids.get(r.id.as_str()) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateRegistrationId,
                        pointer(&base, &["id"]),
                        format!(
                            "registration id `{}` is already used by /registrations/{first}",
                            r.id
                        ),
                    )
                    .with_help("give each registration (Azure peering service) a unique id"),
                );
            } else {
                reg_ids.insert(&r.id, i);
            }
            // Location.
            let mut site = Site {
                lat: 0.0,
                lon: 0.0,
                from_location: false,
            };
            if let Some(name) = &r.location {
                match locations::find(name) {
                    Some(loc) => {
                        site = Site {
                            lat: loc.lat,
                            lon: loc.lon,
                            from_location: true,
                        }
                    }
                    None => {
                        let d = Diagnostic::new(
                            Code::UnknownLocation,
                            pointer(&base, &["location"]),
                            format!("`{name}` is not an Azure Peering Service location"),
                        );
                        let d = match closest(name, locations::names()) {
                            Some(s) => d.with_help(format!(
                                "did you mean `{s}`? (US states; countries elsewhere)"
                            )),
                            None => d.with_help(
                                "name a US state, or a country outside the US, or give lat and lon",
                            ),
                        };
                        self.push(d);
                    }
                }
            }
            match (r.lat, r.lon) {
                (Some(lat), Some(lon)) => {
                    if self.coords(lat, lon, &base) {
                        site = Site {
                            lat,
                            lon,
                            from_location: false,
                        };
                    }
                }
                (None, None) if r.location.is_none() => self.push(
                    Diagnostic::new(
                        Code::MissingLocation,
                        base.clone(),
                        format!(
                            "registration `{}` has neither `location` nor `lat`/`lon`",
                            r.id
                        ),
                    )
                    .with_help("add \"location\" (e.g. \"Washington\") or \"lat\" and \"lon\""),
                ),
                (None, None) => {}
                (Some(_), None) | (None, Some(_)) => self.push(
                    Diagnostic::new(
                        Code::MissingLocation,
                        base.clone(),
                        "`lat` and `lon` go together",
                    )
                    .with_help("give both, or neither and a `location`"),
                ),
            }
            sites.push(site);
            // Pinned edges.
            let resolve = |this: &mut Self, field: &str, id: &str| -> Option<usize> {
                match edge_ids.get(id) {
                    Some(&e) => {
                        let edge = doc.edges.get(e)?;
                        if edge.drained || edge.links.iter().all(|l| l.drained) {
                            this.push(
                                Diagnostic::new(
                                    Code::PinnedEdgeDrained,
                                    pointer(&base, &[field]),
                                    format!("pinned edge `{id}` is drained: it will be skipped"),
                                )
                                .with_help("undrain it, or pin another edge"),
                            );
                        }
                        Some(e)
                    }
                    None => {
                        let d = Diagnostic::new(
                            Code::UnknownEdge,
                            pointer(&base, &[field]),
                            format!("no edge has id `{id}`"),
                        );
                        let none: &[&str] = if field == "backup_edge" {
                            &["None"]
                        } else {
                            &[]
                        };
                        let d = match closest(id, edge_names.iter().copied().chain(none.iter().copied())) {
                            Some("None") => d.with_help("did you mean \"None\" (no backup site)? It is written with a capital N"),
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None if field == "backup_edge" => d.with_help(format!(
                                "use one of the edge ids ({}) or \"None\" for no backup",
                                edge_names.join(", ")
                            )),
                            None => d.with_help(format!("use one of the edge ids: {}", edge_names.join(", "))),
                        };
                        this.push(d);
                        None
                    }
                }
            };
            primary.push(
                r.primary_edge
                    .as_deref()
                    .and_then(|id| resolve(self, "primary_edge", id)),
            );
            backup.push(match r.backup_edge.as_deref() {
                None => Backup::Unpinned,
                Some("None") => Backup::NoBackup,
                Some(id) => resolve(self, "backup_edge", id).map_or(Backup::Unpinned, Backup::Edge),
            });
            // Prefixes.
            for (j, p) in r.prefixes.iter().enumerate() {
                let pbase = format!("{base}/prefixes/{j}");
                let state = self.state(&p.state, &pointer(&pbase, &["state"]));
                let ppath = pointer(&pbase, &["prefix"]);
                let net = self
                    .prefix_syntax(&p.prefix, &ppath)
                    .filter(|net| self.registered_net(*net, p.key.is_some(), &ppath, ""));
                summary.prefixes += 1;
                *summary
                    .prefixes_by_state
                    .entry(p.state.clone())
                    .or_default() += 1;
                if p.telemetry {
                    summary.telemetry_prefixes += 1;
                }
                if let Some(st) = state {
                    if eligible & st.bit() != 0 {
                        if let Some(e) = reg_eligible.get_mut(i) {
                            *e = true;
                        }
                        summary.eligible_prefixes += 1;
                    }
                }
                match net {
                    Some(IpNet::V4(_)) => summary.ipv4_prefixes += 1,
                    Some(IpNet::V6(_)) => summary.ipv6_prefixes += 1,
                    None => {}
                }
                let (Some(net), Some(st)) = (net, state) else {
                    continue;
                };
                if let Some(c) = counts.get_mut(i) {
                    c.add(net, eligible & st.bit() != 0, p.telemetry);
                }
                table.add(net, i, st, p.telemetry, j as u32);
                prefixes.push(RegisteredPrefix {
                    registration: i,
                    index: j,
                    net,
                    state: st,
                    telemetry: p.telemetry,
                });
            }
        }
        if doc.registrations.len() > MAX_REGISTRATIONS {
            self.push(Diagnostic::new(
                Code::BadValue,
                "/registrations",
                format!(
                    "{} registrations; at most {MAX_REGISTRATIONS} are supported",
                    doc.registrations.len()
                ),
            ));
        }
        // Packed prefixes (`mapsctl pack`), checked like the JSON ones.
        if let Some(t) = &doc.prefix_table {
            let recs = t.records();
            if let Ok(r) = t.records() {
                // Reserve exactly: growth by doubling would cost a third more memory.
                let (mut n4, mut n6) = (0usize, 0usize);
                for rec in r.flatten() {
                    match rec.net {
                        IpNet::V4(_) => n4 += 1,
                        IpNet::V6(_) => n6 += 1,
                    }
                }
                table.v4.reserve_exact(n4);
                table.v6.reserve_exact(n6);
            }
            match recs {
                Err(e) => self.push(
                    Diagnostic::new(Code::BadValue, "/prefix_table", format!("{e}"))
                        .with_help("re-create the table with `mapsctl pack`"),
                ),
                Ok(records) => {
                    for (n, rec) in records.enumerate() {
                        let rec = match rec {
                            Ok(r) => r,
                            Err(e) => {
                                self.push(
                                    Diagnostic::new(
                                        Code::BadValue,
                                        "/prefix_table",
                                        format!("{e}"),
                                    )
                                    .with_help("re-create the table with `mapsctl pack`"),
                                );
                                break;
                            }
                        };
                        let reg = rec.registration as usize;
                        let label = format!("record {n}: ");
                        if reg >= doc.registrations.len() {
                            self.push_capped(Diagnostic::new(
                                Code::BadValue,
                                "/prefix_table",
                                format!(
                                    "{label}{} names registration {reg}, but there are {}",
                                    rec.net,
                                    doc.registrations.len()
                                ),
                            ));
                            continue;
                        }
                        summary.prefixes += 1;
                        *summary
                            .prefixes_by_state
                            .entry(String::from(rec.state.as_str()))
                            .or_default() += 1;
                        let is_eligible = eligible & rec.state.bit() != 0;
                        if rec.telemetry {
                            summary.telemetry_prefixes += 1;
                        }
                        if is_eligible {
                            if let Some(e) = reg_eligible.get_mut(reg) {
                                *e = true;
                            }
                            summary.eligible_prefixes += 1;
                        }
                        if self.registered_net(rec.net, rec.has_key, "/prefix_table", &label) {
                            match rec.net {
                                IpNet::V4(_) => summary.ipv4_prefixes += 1,
                                IpNet::V6(_) => summary.ipv6_prefixes += 1,
                            }
                            if let Some(c) = counts.get_mut(reg) {
                                c.add(rec.net, is_eligible, rec.telemetry);
                            }
                            table.add(rec.net, reg, rec.state, rec.telemetry, PACKED | n as u32);
                        }
                    }
                }
            }
        }
        for (i, r) in doc.registrations.iter().enumerate() {
            if !reg_eligible.get(i).copied().unwrap_or(false) {
                self.push_capped(
                    Diagnostic::new(
                        Code::NoEligiblePrefix,
                        format!("/registrations/{i}"),
                        format!(
                            "registration `{}` has no prefix in an eligible state ({}): none of its traffic is MAPS",
                            r.id,
                            doc.options.eligible_states.join(", ")
                        ),
                    )
                    .with_help("complete prefix validation in Azure, or add an eligible prefix"),
                );
            }
        }
        if !self.keep_packed {
            doc.prefix_table = None;
        }
        summary.telemetry_cost_usd = summary.telemetry_prefixes as u64 * TELEMETRY_USD_PER_PREFIX;
        let (v4, v6) = self.duplicates_and_overlaps(table, &doc);

        // ---- destinations ----
        let mut dest_prefixes = Vec::new();
        let mut dest_exact: Vec<(String, usize)> = Vec::new();
        let mut dest_wild: Vec<(String, usize)> = Vec::new();
        let mut seen_dest: BTreeMap<String, String> = BTreeMap::new();
        for (i, d) in doc.destinations.iter().enumerate() {
            for (j, p) in d.prefixes.iter().enumerate() {
                let path = format!("/destinations/{i}/prefixes/{j}");
                if let Some(net) = self.prefix_syntax(p, &path) {
                    let key = format!("{net}");
                    if let Some(first) = seen_dest.get(&key) {
                        self.push(
                            Diagnostic::new(
                                Code::DuplicateDestination,
                                path.clone(),
                                format!("destination prefix {net} is already listed at {first}"),
                            )
                            .with_help("list it once"),
                        );
                    } else {
                        seen_dest.insert(key, path);
                    }
                    dest_prefixes.push((net, i));
                }
            }
            for (j, dom) in d.domains.iter().enumerate() {
                let path = format!("/destinations/{i}/domains/{j}");
                let norm = normalize_host(dom);
                let (wild, name) = match norm.strip_prefix("*.") {
                    Some(rest) => (true, String::from(rest)),
                    None => (false, norm.clone()),
                };
                if !valid_hostname(&name) {
                    self.push(
                        Diagnostic::new(
                            Code::MalformedDomain,
                            path,
                            format!("`{dom}` is not a host name or a `*.` wildcard"),
                        )
                        .with_help("write outlook.office365.com or *.sharepoint.com"),
                    );
                    continue;
                }
                if let Some(first) = seen_dest.get(&norm) {
                    self.push(
                        Diagnostic::new(
                            Code::DuplicateDestination,
                            path.clone(),
                            format!("destination domain {norm} is already listed at {first}"),
                        )
                        .with_help("list it once"),
                    );
                } else {
                    seen_dest.insert(norm, path);
                }
                if wild {
                    dest_wild.push((name, i));
                } else {
                    dest_exact.push((name, i));
                }
            }
        }
        summary.destination_prefixes = dest_prefixes.len();
        summary.destination_domains = dest_exact.len() + dest_wild.len();
        dest_exact.sort();
        dest_exact.dedup_by(|a, b| a.0 == b.0);
        dest_wild.sort();
        dest_wild.dedup_by(|a, b| a.0 == b.0);

        for (&code, &n) in &self.per_code {
            if n > MAX_PER_CODE {
                self.diags.push(Diagnostic::new(
                    code,
                    "",
                    format!(
                        "... and {} more `{code}` diagnostics not shown",
                        n - MAX_PER_CODE
                    ),
                ));
            }
        }
        let headers = HeaderNames::new(&doc.options.header_prefix);
        let client = match doc.options.client_address.from {
            AddressSource::Source => ClientRule::Source,
            AddressSource::Xff => ClientRule::Xff {
                trusted_hops: doc.options.client_address.trusted_hops,
            },
        };
        let policy = Policy {
            doc,
            sites,
            primary,
            backup,
            prefixes,
            v4,
            v6,
            counts,
            headers,
            client,
            dest_prefixes,
            dest_exact,
            dest_wild,
            eligible,
        };
        (summary, policy)
    }

    /// Syntax and canonical form of a prefix.
    fn prefix_syntax(&mut self, text: &str, path: &str) -> Option<IpNet> {
        let net: IpNet = match text.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                let help = if text.contains('/') {
                    "write address/length, e.g. 198.51.100.0/24 or 2001:db8:100::/48"
                } else {
                    "add the prefix length, e.g. 198.51.100.0/24"
                };
                self.push(
                    Diagnostic::new(
                        Code::MalformedPrefix,
                        path,
                        format!("`{text}` is not a prefix"),
                    )
                    .with_help(help),
                );
                return None;
            }
        };
        if net.trunc() != net {
            self.push(
                Diagnostic::new(
                    Code::HostBitsSet,
                    path,
                    format!("prefix {text} has host bits set"),
                )
                .with_help(format!("write it as {}", net.trunc())),
            );
            return None;
        }
        Some(net)
    }

    /// The checks of a registered prefix beyond its syntax: public, length (errors,
    /// false), documentation range, IPv6, long IPv4 without key (warnings). `label`
    /// prefixes messages (a packed record's number).
    fn registered_net(&mut self, net: IpNet, has_key: bool, path: &str, label: &str) -> bool {
        if let Some(what) = non_public(&net) {
            self.push_capped(
                Diagnostic::new(
                    Code::NonPublicPrefix,
                    path,
                    format!("{label}{net} is {what}, not public address space"),
                )
                .with_help("MAPS carries traffic from public prefixes only: register the public prefix your customer announces"),
            );
            return false;
        }
        let short = match net {
            IpNet::V4(n) => (n.prefix_len() < 8).then_some("/8"),
            IpNet::V6(n) => (n.prefix_len() < 16).then_some("/16"),
        };
        if let Some(min) = short {
            self.push_capped(
                Diagnostic::new(
                    Code::PrefixTooShort,
                    path,
                    format!("{label}{net} is shorter than {min}"),
                )
                .with_help("register the customer's own, more specific prefixes"),
            );
            return false;
        }
        if let Some(rfc) = documentation(&net) {
            self.push_capped(
                Diagnostic::new(
                    Code::DocumentationPrefix,
                    path,
                    format!("{label}{net} is a documentation range ({rfc})"),
                )
                .with_help(
                    "fine for examples; a real registration needs the customer's public prefix",
                ),
            );
        }
        match net {
            IpNet::V6(_) => self.push_capped(
                Diagnostic::new(
                    Code::Ipv6Prefix,
                    path,
                    format!("{label}{net} is IPv6: Azure Peering Service accepts IPv4 prefixes only today"),
                )
                .with_help("it is classified here, but Azure will not register it yet"),
            ),
            IpNet::V4(n) if n.prefix_len() > 24 && !has_key => self.push_capped(
                Diagnostic::new(
                    Code::LongPrefixWithoutKey,
                    path,
                    format!("{label}{net} is longer than /24 and has no prefix `key`"),
                )
                .with_help("prefixes longer than /24 need a partner-registered peering service prefix key"),
            ),
            _ => {}
        }
        true
    }

    /// One diagnostic, unless [`MAX_PER_CODE`] of its code were already reported:
    /// a million-prefix table must not print a million warnings.
    fn push_capped(&mut self, d: Diagnostic) {
        let n = self.per_code.entry(d.code).or_insert(0);
        *n += 1;
        if *n <= MAX_PER_CODE {
            self.diags.push(d);
        }
    }

    /// Reports duplicate prefixes (errors) and prefixes nested in another
    /// registration's prefix (warnings); returns the LPM entries without duplicates.
    #[allow(clippy::type_complexity)]
    fn duplicates_and_overlaps(
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
        *self.per_code.entry(Code::DuplicatePrefix).or_insert(0) +=
            counts[0].saturating_sub(MAX_PER_CODE);
        *self.per_code.entry(Code::OverlappingPrefix).or_insert(0) +=
            counts[1].saturating_sub(MAX_PER_CODE);
        let reg = |i: usize| doc.registrations.get(i).map_or("", |r| r.id.as_str());
        let place = |reg: usize, origin: u32| {
            if origin & PACKED != 0 {
                format!("/prefix_table record {}", origin & !PACKED)
            } else {
                format!("/registrations/{reg}/prefixes/{origin}/prefix")
            }
        };
        for f in found {
            let (code, message, help) = match f.outer {
                None => (
                    Code::DuplicatePrefix,
                    format!(
                        "prefix {} is already registered at {}",
                        f.net,
                        place(f.outer_reg, f.outer_origin)
                    ),
                    "register each prefix once",
                ),
                Some(outer) => (
                    Code::OverlappingPrefix,
                    format!(
                        "{} of `{}` is inside {} of `{}`",
                        f.net,
                        reg(f.reg),
                        outer,
                        reg(f.outer_reg)
                    ),
                    "Azure refuses overlapping registrations; here the more specific prefix wins",
                ),
            };
            let (path, message) = if f.origin & PACKED != 0 {
                (
                    String::from("/prefix_table"),
                    format!("record {}: {message}", f.origin & !PACKED),
                )
            } else {
                (
                    format!("/registrations/{}/prefixes/{}/prefix", f.reg, f.origin),
                    message,
                )
            };
            self.push_capped(Diagnostic::new(code, path, message).with_help(help));
        }
        (v4, v6)
    }
}

/// What kind of non-public space `net` lies in, if any.
pub fn non_public(net: &IpNet) -> Option<&'static str> {
    match net {
        IpNet::V4(n) => {
            const RANGES: &[([u8; 4], u8, &str)] = &[
                ([0, 0, 0, 0], 8, "\"this network\" (RFC 1122)"),
                ([10, 0, 0, 0], 8, "private (RFC 1918)"),
                ([100, 64, 0, 0], 10, "shared address space (RFC 6598)"),
                ([127, 0, 0, 0], 8, "loopback"),
                ([169, 254, 0, 0], 16, "link-local"),
                ([172, 16, 0, 0], 12, "private (RFC 1918)"),
                ([192, 0, 0, 0], 24, "IETF protocol assignments (RFC 6890)"),
                ([192, 168, 0, 0], 16, "private (RFC 1918)"),
                ([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
                ([224, 0, 0, 0], 4, "multicast"),
                ([240, 0, 0, 0], 4, "reserved"),
            ];
            RANGES.iter().find_map(|(a, len, what)| {
                let r = Ipv4Net::new(Ipv4Addr::from(*a), *len).ok()?;
                r.contains(n).then_some(*what)
            })
        }
        IpNet::V6(n) => {
            let first = n.network().segments()[0];
            let in_range = |a: Ipv6Addr, len: u8| Ipv6Net::new(a, len).is_ok_and(|r| r.contains(n));
            if in_range(Ipv6Addr::from(0xffffu128 << 32), 96) {
                Some("IPv4-mapped space")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique local (ULA, RFC 4193)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xff00 == 0xff00 {
                Some("multicast")
            } else if n.network() == Ipv6Addr::LOCALHOST && n.prefix_len() == 128 {
                Some("loopback")
            } else if first & 0xe000 != 0x2000 {
                Some("reserved (outside global unicast 2000::/3)")
            } else {
                None
            }
        }
    }
}

/// The documentation RFC whose range contains `net`, if any.
pub fn documentation(net: &IpNet) -> Option<&'static str> {
    let docs: [(&str, &str); 4] = [
        ("192.0.2.0/24", "RFC 5737"),
        ("198.51.100.0/24", "RFC 5737"),
        ("203.0.113.0/24", "RFC 5737"),
        ("2001:db8::/32", "RFC 3849"),
    ];
    docs.iter().find_map(|(r, rfc)| {
        let r: IpNet = r.parse().ok()?;
        r.contains(net).then_some(*rfc)
    })
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
