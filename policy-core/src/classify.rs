//! The compiled classifier (SPEC §3, §4): built once from a [`Policy`], read-only,
//! and infallible. A lookup parses the source, finds the most specific registered
//! prefix with the LPM tables, matches the destination, and reads the registration's
//! precomputed edge order; only the link (rendezvous hashing) is computed per call.
//! Nothing on the lookup path allocates.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv6Addr};
use ipnet::IpNet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::addr::{canonical, host_parts, may_be_address, parse_address, port_of, HostParts};
use crate::cluster;
use crate::lpm::{Lpm4, Lpm6};
use crate::m365::Category;
use crate::policy::{Policy, PrefixState, PrefixValue};
use crate::select::{self, Candidate};

/// The classes of SPEC §3, in the order the rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The source is not an address.
    InvalidSource,
    /// No registered prefix contains the source.
    Unregistered,
    /// The most specific registered prefix is not in an eligible state.
    Unverified,
    /// The destination is not Microsoft's.
    NonMicrosoft,
    /// Every matching destination entry has a category outside
    /// `options.maps_categories` (SPEC §7).
    ExcludedCategory,
    /// No edge can carry the traffic.
    NoEdge,
    /// Hand it to Microsoft at `edge`.
    Maps,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 7] = [
        Class::InvalidSource,
        Class::Unregistered,
        Class::Unverified,
        Class::NonMicrosoft,
        Class::ExcludedCategory,
        Class::NoEdge,
        Class::Maps,
    ];

    /// The class as written in decision lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::InvalidSource => "invalid-source",
            Class::Unregistered => "unregistered",
            Class::Unverified => "unverified",
            Class::NonMicrosoft => "non-microsoft",
            Class::ExcludedCategory => "excluded-category",
            Class::NoEdge => "no-edge",
            Class::Maps => "maps",
        }
    }

    /// Parses the written form.
    pub fn from_name(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Class {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
struct RegPlan {
    /// Candidate edges in order (first = edge).
    order: Vec<Candidate>,
    /// The route of a `maps` decision: the Envoy cluster of (edge, backup)
    /// ([`crate::cluster::cluster_name`]); empty when the order is empty.
    cluster: String,
}

/// Where a registration's `maps` traffic goes: its edge, its backup (the first
/// failover edge) and the Envoy cluster of that pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Route<'a> {
    /// The edge id.
    pub edge: &'a str,
    /// The backup edge id (`None`: no backup site).
    pub backup: Option<&'a str>,
    /// The Envoy cluster (`maps_<edge>[_<backup>]`).
    pub cluster: &'a str,
}

#[derive(Debug, Clone)]
struct EdgeLinks {
    /// Usable links: (link index in the edge, hash of its id).
    usable: Vec<(usize, u64)>,
}

/// The network of `len` bits containing `addr`.
fn truncate(addr: IpAddr, len: u8) -> Option<IpNet> {
    IpNet::new(addr, len).ok().map(|n| n.trunc())
}

/// The compiled, read-only classifier.
#[derive(Debug, Clone)]
pub struct Classifier {
    policy: Policy,
    reg4: Lpm4,
    reg6: Lpm6,
    dst4: Lpm4,
    dst6: Lpm6,
    /// Per destination-table value: the entries whose prefixes contain that prefix.
    dest_sets: Vec<Vec<u32>>,
    all_destinations: bool,
    plans: Vec<RegPlan>,
    edges: Vec<EdgeLinks>,
    /// Every registered prefix (network, length, value) sorted, for `explain` to list
    /// every prefix containing a source; empty in a lean classifier ([`Classifier::lean`]).
    entries4: Vec<(u32, u8, u32)>,
    entries6: Vec<(u128, u8, u32)>,
}

fn v6_bits(a: Ipv6Addr) -> u128 {
    u128::from(a)
}

impl Classifier {
    /// Compiles a validated policy. Cannot fail. Keeps the registered prefixes beside
    /// the tables, so [`Classifier::explain`] can list every prefix containing a source
    /// (about 16 bytes a prefix); a proxy that only classifies uses [`Classifier::lean`].
    pub fn new(policy: Policy) -> Classifier {
        Classifier::build(policy, true)
    }

    /// Like [`Classifier::new`], keeping only the compiled tables: decisions are the
    /// same; `explain` then names the matched prefix but not the less specific ones.
    pub fn lean(policy: Policy) -> Classifier {
        Classifier::build(policy, false)
    }

    fn build(policy: Policy, keep_entries: bool) -> Classifier {
        // The tables are built from the policy's entries, which are then dropped (or
        // kept sorted for `explain`): the compiled tables are all a lean classifier
        // keeps of a large prefix list.
        let reg4 = Lpm4::build(&policy.v4);
        let reg6 = Lpm6::build(&policy.v6);
        Classifier::with_tables(policy, reg4, reg6, keep_entries)
    }

    /// A lean classifier from a policy and registered-prefix tables compiled before
    /// (a compiled policy file, `crate::compiled`): only the destination tables and the
    /// per-registration routes are built here.
    pub(crate) fn from_tables(policy: Policy, reg4: Lpm4, reg6: Lpm6) -> Classifier {
        Classifier::with_tables(policy, reg4, reg6, false)
    }

    /// The registered-prefix tables as compiled-file sections (IPv4, IPv6).
    pub(crate) fn write_tables(&self, v4: &mut Vec<u8>, v6: &mut Vec<u8>) {
        self.reg4.write_section(v4);
        self.reg6.write_section(v6);
    }

    fn with_tables(mut policy: Policy, reg4: Lpm4, reg6: Lpm6, keep_entries: bool) -> Classifier {
        let mut entries4 = core::mem::take(&mut policy.v4);
        let mut entries6 = core::mem::take(&mut policy.v6);
        if keep_entries {
            entries4.sort_unstable();
            entries4.shrink_to_fit();
            entries6.sort_unstable();
            entries6.shrink_to_fit();
        } else {
            entries4 = Vec::new();
            entries6 = Vec::new();
        }
        // The packed text is fully represented by the tables now.
        policy.doc.prefix_table = None;
        let (d4, d6, dest_sets) = destination_tables(&policy.dest_prefixes);
        let doc = policy.document();
        let all_destinations = doc.destinations.is_empty()
            || (policy.dest_prefixes.is_empty()
                && policy.dest_exact.is_empty()
                && policy.dest_wild.is_empty()
                && policy.dest_patterns.is_empty());
        let plans = (0..doc.registrations.len())
            .map(|r| {
                let order = select::edge_order(&policy, r);
                let id = |i: usize| doc.edges.get(order.get(i)?.edge).map(|e| e.id.as_str());
                let cluster = match id(0) {
                    Some(edge) => cluster::cluster_name(edge, id(1)),
                    None => String::new(),
                };
                RegPlan { order, cluster }
            })
            .collect();
        let edges = doc
            .edges
            .iter()
            .map(|e| EdgeLinks {
                usable: e
                    .links
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.drained)
                    .map(|(i, l)| (i, select::link_hash(&l.id)))
                    .collect(),
            })
            .collect();
        Classifier {
            reg4,
            reg6,
            dst4: Lpm4::build(&d4),
            dst6: Lpm6::build(&d6),
            dest_sets,
            all_destinations,
            plans,
            edges,
            entries4,
            entries6,
            policy,
        }
    }

    /// The route of registration `reg`'s `maps` traffic (`None` when no edge can
    /// carry it).
    pub fn route(&self, reg: usize) -> Option<Route<'_>> {
        let plan = self.plans.get(reg)?;
        let edges = &self.policy.doc.edges;
        let id = |i: usize| edges.get(plan.order.get(i)?.edge).map(|e| e.id.as_str());
        Some(Route {
            edge: id(0)?,
            backup: id(1),
            cluster: &plan.cluster,
        })
    }

    /// Every distinct route the registrations use, sorted by cluster name.
    pub fn routes(&self) -> Vec<Route<'_>> {
        let mut out: Vec<Route<'_>> = (0..self.plans.len())
            .filter_map(|r| self.route(r))
            .collect();
        out.sort_by(|a, b| a.cluster.cmp(b.cluster));
        out.dedup_by(|a, b| a.cluster == b.cluster);
        out
    }

    /// Every registered prefix kept beside the tables (JSON and packed), IPv4 first,
    /// in address order. Empty for a lean classifier.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (IpNet, PrefixValue)> + '_ {
        let v4 = self.entries4.iter().filter_map(|e| {
            let n = ipnet::Ipv4Net::new(core::net::Ipv4Addr::from(e.0), e.1).ok()?;
            Some((IpNet::V4(n), PrefixValue(e.2)))
        });
        let v6 = self.entries6.iter().filter_map(|e| {
            let n = ipnet::Ipv6Net::new(Ipv6Addr::from(e.0), e.1).ok()?;
            Some((IpNet::V6(n), PrefixValue(e.2)))
        });
        v4.chain(v6)
    }

    /// Every registered prefix containing `addr` (values as stored in the tables),
    /// most specific first. Empty for a lean classifier.
    pub(crate) fn containing(&self, addr: IpAddr) -> Vec<(IpNet, PrefixValue)> {
        let mut out = Vec::new();
        match canonical(addr) {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                for len in (0..=32u8).rev() {
                    let net = if len == 0 {
                        0
                    } else {
                        bits & (u32::MAX << (32 - len))
                    };
                    let lo = self.entries4.partition_point(|e| (e.0, e.1) < (net, len));
                    for e in self.entries4.get(lo..).unwrap_or(&[]) {
                        if (e.0, e.1) != (net, len) {
                            break;
                        }
                        if let Ok(n) = ipnet::Ipv4Net::new(core::net::Ipv4Addr::from(net), len) {
                            out.push((IpNet::V4(n), PrefixValue(e.2)));
                        }
                    }
                }
            }
            IpAddr::V6(a) => {
                let bits = v6_bits(a);
                for len in (0..=128u8).rev() {
                    let net = if len == 0 {
                        0
                    } else {
                        bits & (u128::MAX << (128 - u32::from(len)))
                    };
                    let lo = self.entries6.partition_point(|e| (e.0, e.1) < (net, len));
                    for e in self.entries6.get(lo..).unwrap_or(&[]) {
                        if (e.0, e.1) != (net, len) {
                            break;
                        }
                        if let Ok(n) = ipnet::Ipv6Net::new(Ipv6Addr::from(net), len) {
                            out.push((IpNet::V6(n), PrefixValue(e.2)));
                        }
                    }
                }
            }
        }
        out
    }

    /// The policy this classifier was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Heap bytes of the prefix tables (registered and destination).
    pub fn table_bytes(&self) -> usize {
        self.reg4.memory_bytes()
            + self.reg6.memory_bytes()
            + self.dst4.memory_bytes()
            + self.dst6.memory_bytes()
    }

    /// Classifies text input, as in a trace line (SPEC §5). A source that is not an
    /// address gives [`Class::InvalidSource`]; a destination that is not an address is
    /// ignored (only the host can then match). The flow's port is the destination's,
    /// else the host's (SPEC §5).
    pub fn classify_text(&self, src: &str, dst: Option<&str>, host: Option<&str>) -> Decision<'_> {
        let port = dst.and_then(port_of).or_else(|| host.and_then(port_of));
        match parse_address(src) {
            Some(s) => self.decide(s, dst.and_then(parse_address), host, Port::Known(port)),
            None => Decision::empty(self, Class::InvalidSource),
        }
    }

    /// Classifies a source address with an optional destination address and host (the
    /// flow's port, if any, is the host's: see [`Classifier::classify_flow`]).
    pub fn classify(&self, src: IpAddr, dst: Option<IpAddr>, host: Option<&str>) -> Decision<'_> {
        self.decide(src, dst, host, Port::OfHost)
    }

    /// Classifies a flow whose destination port is known apart from its address.
    pub fn classify_flow(
        &self,
        src: IpAddr,
        dst: Option<IpAddr>,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Decision<'_> {
        self.decide(src, dst, host, Port::Known(port))
    }

    fn decide(
        &self,
        src: IpAddr,
        dst: Option<IpAddr>,
        host: Option<&str>,
        port: Port,
    ) -> Decision<'_> {
        let src = canonical(src);
        let Some(value) = self.registered(src) else {
            return Decision::empty(self, Class::Unregistered);
        };
        let value = PrefixValue(value);
        let mut d = Decision::empty(self, Class::Unverified);
        d.prefix = truncate(src, value.len());
        d.state = Some(value.state());
        d.telemetry = value.telemetry();
        d.registration = Some(value.registration() as u32);
        if !self.policy.is_eligible(value.state()) {
            return d;
        }
        // The host is split (name, port) only now: most requests end above.
        let host = host.map(host_parts);
        let port = match port {
            Port::Known(p) => p,
            Port::OfHost => host.as_ref().and_then(|h| h.port),
        };
        let Some(verdict) = self.destination_verdict(dst, host.as_ref(), port) else {
            d.class = Class::NonMicrosoft;
            return d;
        };
        d.category = verdict.category;
        if !verdict.maps {
            d.class = Class::ExcludedCategory;
            return d;
        }
        let Some(plan) = self.plans.get(value.registration()) else {
            d.class = Class::NoEdge;
            return d;
        };
        let Some(first) = plan.order.first() else {
            d.class = Class::NoEdge;
            return d;
        };
        d.class = Class::Maps;
        d.order = &plan.order;
        d.link = self.pick_link(first.edge, src);
        d
    }

    /// The value of the most specific registered prefix containing `src`.
    fn registered(&self, src: IpAddr) -> Option<u32> {
        match src {
            IpAddr::V4(a) => self.reg4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.reg6.lookup(v6_bits(a)),
        }
    }

    /// Calls `f` with every destination entry the flow's address or host matches, and
    /// how (an entry may come more than once). Nothing is allocated (but the normalised
    /// host when it has capitals).
    fn each_destination(
        &self,
        dst: Option<IpAddr>,
        host: Option<&HostParts<'_>>,
        mut f: impl FnMut(usize, DestinationMatch),
    ) {
        let by_address = |a: IpAddr, f: &mut dyn FnMut(usize, DestinationMatch)| {
            let set = self
                .dest_lookup(a)
                .and_then(|v| self.dest_sets.get(v as usize));
            for &i in set.map_or(&[][..], Vec::as_slice) {
                f(i as usize, DestinationMatch::Prefix(i as usize));
            }
        };
        if let Some(a) = dst {
            by_address(a, &mut f);
        }
        let Some(host) = host else {
            return;
        };
        let norm: &str = &host.name;
        if norm.is_empty() {
            return;
        }
        if may_be_address(norm) {
            if let Some(a) = parse_address(norm) {
                by_address(a, &mut f);
                return;
            }
        }
        let p = &self.policy;
        let named = |list: &'_ [(String, usize)], name: &str| -> core::ops::Range<usize> {
            let lo = list.partition_point(|(n, _)| n.as_str() < name);
            let same = list
                .get(lo..)
                .unwrap_or(&[])
                .iter()
                .take_while(|(n, _)| n == name)
                .count();
            lo..lo + same
        };
        for (_, i) in p.dest_exact.get(named(&p.dest_exact, norm)).unwrap_or(&[]) {
            f(*i, DestinationMatch::Domain(*i));
        }
        // `*.x.y` matches any name ending in `.x.y`: try every proper suffix.
        let mut rest = norm;
        while let Some((_, tail)) = rest.split_once('.') {
            for (_, i) in p.dest_wild.get(named(&p.dest_wild, tail)).unwrap_or(&[]) {
                f(*i, DestinationMatch::Wildcard(*i));
            }
            rest = tail;
        }
        for (pattern, i) in &p.dest_patterns {
            if pattern.matches(norm) {
                f(*i, DestinationMatch::Pattern(*i));
            }
        }
    }

    /// SPEC §7: `None` when no entry matches the flow (ports included: `non-microsoft`);
    /// else the highest category of the matching entries and whether one of them takes
    /// the MAPS path.
    fn destination_verdict(
        &self,
        dst: Option<IpAddr>,
        host: Option<&HostParts<'_>>,
        port: Option<u16>,
    ) -> Option<Verdict> {
        if self.all_destinations {
            return Some(Verdict {
                category: None,
                maps: true,
            });
        }
        let mut out: Option<Verdict> = None;
        let p = &self.policy;
        self.each_destination(dst, host, |i, _| {
            let meta = p.dest_meta.get(i);
            let ports_ok = match (meta.and_then(|m| m.ports.as_ref()), port) {
                (Some(ports), Some(port)) => ports.contains(port),
                _ => true,
            };
            if !ports_ok {
                return;
            }
            let category = meta.and_then(|m| m.category);
            let maps = category.is_none_or(|c| p.maps_category(c));
            let v = out.get_or_insert(Verdict {
                category: None,
                maps: false,
            });
            v.category = v.category.max(category);
            v.maps |= maps;
        });
        out
    }

    /// How the flow's destination first matched an entry (for explanations), if it
    /// did: only entries whose `ports` allow `port` count (an unknown port passes).
    pub fn destination_match(
        &self,
        dst: Option<IpAddr>,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Option<DestinationMatch> {
        if self.all_destinations {
            return Some(DestinationMatch::Everything);
        }
        let mut first = None;
        let p = &self.policy;
        let host = host.map(host_parts);
        self.each_destination(dst, host.as_ref(), |i, how| {
            let ports_ok = match (p.dest_meta.get(i).and_then(|m| m.ports.as_ref()), port) {
                (Some(ports), Some(port)) => ports.contains(port),
                _ => true,
            };
            if ports_ok {
                first.get_or_insert(how);
            }
        });
        first
    }

    fn dest_lookup(&self, a: IpAddr) -> Option<u32> {
        match canonical(a) {
            IpAddr::V4(a) => self.dst4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.dst6.lookup(v6_bits(a)),
        }
    }

    /// The rendezvous choice among the usable links of `edge` for `client`.
    fn pick_link(&self, edge: usize, client: IpAddr) -> Option<u16> {
        let links = self.edges.get(edge)?;
        let h = select::client_hash(client);
        let mut best: Option<(u64, usize)> = None;
        for &(i, lh) in &links.usable {
            let w = select::rendezvous_weight(h, lh);
            if best.is_none_or(|(bw, _)| w > bw) {
                best = Some((w, i));
            }
        }
        best.map(|(_, i)| i as u16)
    }

    /// The ordered candidates of registration `reg` (see [`select::edge_order`]).
    pub fn candidates(&self, reg: usize) -> &[Candidate] {
        self.plans.get(reg).map_or(&[], |p| &p.order)
    }
}

/// How a destination matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationMatch {
    /// The policy lists no destinations: everything counts as Microsoft.
    Everything,
    /// The address is inside a prefix of destination `i`.
    Prefix(usize),
    /// The host equals a domain of destination `i`.
    Domain(usize),
    /// The host matches a `*.` wildcard of destination `i`.
    Wildcard(usize),
    /// The host matches a pattern with `*` inside a label of destination `i`.
    Pattern(usize),
}

/// Where a flow's destination port comes from.
#[derive(Clone, Copy)]
enum Port {
    /// Known apart from the host (Envoy's destination port), or known absent.
    Known(Option<u16>),
    /// The host's `:port`, if it has one.
    OfHost,
}

/// What the matching destination entries say of a flow (SPEC §7).
#[derive(Debug, Clone, Copy)]
struct Verdict {
    /// The highest category among them.
    category: Option<Category>,
    /// Whether one of them takes the MAPS path.
    maps: bool,
}

/// The destination LPM tables: each distinct destination prefix maps to the set of
/// entries whose prefixes contain it (its own and every less specific one), so one
/// lookup finds every entry an address is inside. Sets are shared when equal.
#[allow(clippy::type_complexity)]
fn destination_tables(
    prefixes: &[(IpNet, usize)],
) -> (Vec<(u32, u8, u32)>, Vec<(u128, u8, u32)>, Vec<Vec<u32>>) {
    use alloc::collections::BTreeMap;
    let mut sets: Vec<Vec<u32>> = Vec::new();
    let mut index: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
    let mut intern = |set: Vec<u32>| -> u32 {
        if let Some(&i) = index.get(&set) {
            return i;
        }
        let i = sets.len() as u32;
        sets.push(set.clone());
        index.insert(set, i);
        i
    };
    // Distinct prefixes in address order (a covering prefix before what it covers),
    // each with the entries listing it.
    let mut by_net: BTreeMap<(u8, u128, u8), Vec<u32>> = BTreeMap::new();
    for (net, entry) in prefixes {
        let key = match net {
            IpNet::V4(n) => (4, u128::from(u32::from(n.network())), n.prefix_len()),
            IpNet::V6(n) => (6, v6_bits(n.network()), n.prefix_len()),
        };
        by_net.entry(key).or_default().push(*entry as u32);
    }
    let (mut d4, mut d6) = (Vec::new(), Vec::new());
    // The enclosing prefixes of the current one, with their full sets.
    let mut stack: Vec<((u8, u128, u8), Vec<u32>)> = Vec::new();
    let width = |fam: u8| if fam == 4 { 32u32 } else { 128 };
    let contains = |outer: (u8, u128, u8), inner: (u8, u128, u8)| {
        let w = width(outer.0);
        outer.0 == inner.0 && outer.2 <= inner.2 && {
            let shift = w - u32::from(outer.2);
            shift >= 128 || (outer.1 >> shift) == (inner.1 >> shift)
        }
    };
    for (key, mut entries) in by_net {
        while stack
            .last()
            .is_some_and(|(outer, _)| !contains(*outer, key))
        {
            stack.pop();
        }
        if let Some((_, parent)) = stack.last() {
            entries.extend_from_slice(parent);
        }
        entries.sort_unstable();
        entries.dedup();
        let v = intern(entries.clone());
        match key.0 {
            4 => d4.push(((key.1 as u32), key.2, v)),
            _ => d6.push((key.1, key.2, v)),
        }
        stack.push((key, entries));
    }
    (d4, d6, sets)
}

/// The decision for one flow (SPEC §3–§5). Borrows the classifier; costs nothing to
/// build. Serialises to the fields of a decision line (without `src`).
#[derive(Clone, Copy)]
pub struct Decision<'a> {
    c: &'a Classifier,
    class: Class,
    registration: Option<u32>,
    prefix: Option<IpNet>,
    state: Option<PrefixState>,
    order: &'a [Candidate],
    link: Option<u16>,
    telemetry: bool,
    category: Option<Category>,
}

impl<'a> Decision<'a> {
    fn empty(c: &'a Classifier, class: Class) -> Self {
        Decision {
            c,
            class,
            registration: None,
            prefix: None,
            state: None,
            order: &[],
            link: None,
            telemetry: false,
            category: None,
        }
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Index of the matched registration in the document.
    pub fn registration_index(&self) -> Option<usize> {
        self.registration.map(|r| r as usize)
    }

    /// Id of the matched registration (from `unverified` on).
    pub fn registration(&self) -> Option<&'a str> {
        let r = self.registration? as usize;
        self.c
            .policy
            .doc
            .registrations
            .get(r)
            .map(|r| r.id.as_str())
    }

    /// The most specific registered prefix that matched.
    pub fn prefix(&self) -> Option<IpNet> {
        self.prefix
    }

    /// The matched prefix's state.
    pub fn state(&self) -> Option<PrefixState> {
        self.state
    }

    fn edge_id(&self, i: usize) -> Option<&'a str> {
        let cand = self.order.get(i)?;
        self.c
            .policy
            .doc
            .edges
            .get(cand.edge)
            .map(|e| e.id.as_str())
    }

    /// The chosen edge (class `maps`).
    pub fn edge(&self) -> Option<&'a str> {
        self.edge_id(0)
    }

    /// The chosen edge's index in the document.
    pub fn edge_index(&self) -> Option<usize> {
        self.order.first().map(|c| c.edge)
    }

    /// The backup edge: the first failover edge.
    pub fn backup(&self) -> Option<&'a str> {
        self.edge_id(1)
    }

    /// Failover edges, in order.
    pub fn failover(&self) -> impl Iterator<Item = &'a str> + 'a {
        let c = self.c;
        self.order
            .iter()
            .skip(1)
            .filter_map(move |cand| c.policy.doc.edges.get(cand.edge).map(|e| e.id.as_str()))
    }

    /// The chosen link of the edge.
    pub fn link(&self) -> Option<&'a str> {
        let e = self.c.policy.doc.edges.get(self.order.first()?.edge)?;
        e.links.get(usize::from(self.link?)).map(|l| l.id.as_str())
    }

    /// Distance to the chosen edge in km, rounded to 0.1 km for display.
    pub fn distance_km(&self) -> Option<f64> {
        let km = self.order.first()?.distance_km;
        Some(libm::round(km * 10.0) / 10.0)
    }

    /// The flow's Microsoft 365 category: the highest among the matching destination
    /// entries (from `excluded-category` on; `None` when no matching entry has one).
    pub fn category(&self) -> Option<Category> {
        self.category
    }

    /// Whether the matched prefix reports latency (its `telemetry`: per prefix, as
    /// in Azure, not per registration).
    pub fn telemetry(&self) -> bool {
        self.telemetry
    }

    /// The Envoy cluster of a `maps` decision (`maps_<edge>[_<backup>]`, see
    /// [`crate::cluster_name`]); `None` for every other class. Precomputed: no allocation.
    pub fn cluster(&self) -> Option<&'a str> {
        if self.class != Class::Maps {
            return None;
        }
        let r = self.registration? as usize;
        self.c
            .plans
            .get(r)
            .map(|p| p.cluster.as_str())
            .filter(|c| !c.is_empty())
    }

    /// The candidates in order (edge first), with distances and reasons.
    pub fn candidates(&self) -> &'a [Candidate] {
        self.order
    }
}

impl fmt::Debug for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("class", &self.class)
            .field("registration", &self.registration())
            .field("prefix", &self.prefix())
            .field("edge", &self.edge())
            .field("link", &self.link())
            .field("backup", &self.backup())
            .finish()
    }
}

struct Failover<'a>(Decision<'a>);

impl Serialize for Failover<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.order.len().saturating_sub(1)))?;
        for id in self.0.failover() {
            seq.serialize_element(id)?;
        }
        seq.end()
    }
}

struct Display<T>(T);

impl<T: fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for Decision<'_> {
    /// `class`, then the fields that apply: `registration`, `prefix` (from
    /// `unverified` on), `edge`, `link`, `backup`, `failover`, `distance_km` (`maps`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields::<S>(&mut m)?;
        m.end()
    }
}

impl Decision<'_> {
    /// Writes the decision's fields into an open map (so callers can add `src`).
    pub fn serialize_fields<S: Serializer>(&self, m: &mut S::SerializeMap) -> Result<(), S::Error> {
        m.serialize_entry("class", &self.class)?;
        if let Some(r) = self.registration() {
            m.serialize_entry("registration", r)?;
        }
        if let Some(p) = self.prefix() {
            m.serialize_entry("prefix", &Display(p))?;
        }
        if let Some(c) = self.category {
            m.serialize_entry("category", &c)?;
        }
        if self.class == Class::Maps {
            m.serialize_entry("edge", &self.edge())?;
            m.serialize_entry("link", &self.link())?;
            m.serialize_entry("backup", &self.backup())?;
            m.serialize_entry("failover", &Failover(*self))?;
            m.serialize_entry("distance_km", &self.distance_km())?;
        }
        Ok(())
    }
}

/// A decision line (SPEC §5): `{"src": ..., "class": ..., ...}`.
pub struct DecisionLine<'a, 'd> {
    /// The source as given in the trace.
    pub src: &'a str,
    /// The decision.
    pub decision: &'a Decision<'d>,
}

impl Serialize for DecisionLine<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("src", self.src)?;
        self.decision.serialize_fields::<S>(&mut m)?;
        m.end()
    }
}

/// Convenience: the decision line as a JSON string.
pub fn decision_line_json(src: &str, d: &Decision<'_>) -> String {
    serde_json::to_string(&DecisionLine { src, decision: d }).unwrap_or_default()
}
