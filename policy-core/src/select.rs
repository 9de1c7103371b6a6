//! Edge selection, cold potato (SPEC §4).
//!
//! The order of candidate edges depends only on the registration, so it is computed
//! once per registration when the classifier is compiled; per request only the link
//! is chosen, by rendezvous (highest random weight) hashing of the client address.
//!
//! Ordering: a pinned `primary_edge` that is a candidate; then a pinned `backup_edge`
//! that is a candidate (with `"None"`, the order stops after the first edge); then the
//! other candidates by (provider rank, distance rounded to 0.001 km, id).
//!
//! A pinned `primary_edge` that is not a candidate (drained, or all its links drained)
//! with `backup_edge: "None"` leaves the registration with no edge: SPEC §2 says that
//! with `"None"` "when the primary fails, the traffic takes the default internet path",
//! and the customer said so in Azure by registering no backup site. (§4 read alone would
//! move it to the nearest other edge — a site the customer never chose.) Without a
//! pinned primary, `"None"` keeps only the nearest candidate, as §4 says.

use alloc::vec::Vec;
use core::net::IpAddr;

use crate::policy::{Backup, Policy};

/// Mean Earth radius used for distances, in km (IUGG).
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle (haversine) distance in km between two points given in degrees.
///
/// ```
/// // Seattle to Chicago, about 2,800 km.
/// let d = policy_core::haversine_km(47.6062, -122.3321, 41.8781, -87.6298);
/// assert!((d - 2795.0).abs() < 10.0);
/// ```
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let s1 = libm::sin(dp / 2.0);
    let s2 = libm::sin(dl / 2.0);
    let a = s1 * s1 + libm::cos(p1) * libm::cos(p2) * s2 * s2;
    2.0 * EARTH_RADIUS_KM * libm::asin(libm::sqrt(a.clamp(0.0, 1.0)))
}

/// A distance in metres, the unit it is compared in (0.001 km).
pub fn rounded_m(km: f64) -> i64 {
    libm::round(km * 1000.0) as i64
}

/// Why an edge holds its place in a registration's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The registration's pinned `primary_edge`.
    PinnedPrimary,
    /// The registration's pinned `backup_edge`.
    PinnedBackup,
    /// Ordered by provider rank, distance and id.
    Nearest,
}

/// One candidate edge of a registration, in order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// Edge index in the document.
    pub edge: usize,
    /// Provider rank (index in the registration's `providers`; unlisted after all).
    pub rank: usize,
    /// Distance from the registration to the edge, km, rounded to 0.001.
    pub distance_km: f64,
    /// Why it is here.
    pub reason: Reason,
}

/// The ordered candidate edges for registration `reg` (empty: no edge can serve it).
/// The first is the `edge`, the rest the `failover` list.
pub fn edge_order(policy: &Policy, reg: usize) -> Vec<Candidate> {
    let doc = policy.document();
    let Some(r) = doc.registrations.get(reg) else {
        return Vec::new();
    };
    let site = policy.site(reg).unwrap_or(crate::policy::Site {
        lat: 0.0,
        lon: 0.0,
        from_location: false,
    });
    let rank_of = |edge: usize| -> usize {
        let Some(list) = &r.providers else { return 0 };
        let prov = doc.edges.get(edge).and_then(|e| e.provider.as_deref());
        prov.and_then(|p| list.iter().position(|x| x == p))
            .unwrap_or(list.len())
    };
    let cand = |edge: usize, reason: Reason| -> Candidate {
        let e = doc.edges.get(edge);
        let km = e.map_or(0.0, |e| haversine_km(site.lat, site.lon, e.lat, e.lon));
        Candidate {
            edge,
            rank: rank_of(edge),
            distance_km: rounded_m(km) as f64 / 1000.0,
            reason,
        }
    };
    let mut order: Vec<Candidate> = Vec::new();
    let backup = policy.backup_edge(reg);
    if let Some(p) = policy.primary_edge(reg) {
        if policy.edge_usable(p) {
            order.push(cand(p, Reason::PinnedPrimary));
        } else if backup == Backup::NoBackup {
            // The pinned primary failed and the customer has no backup site: the
            // default internet path (SPEC §2).
            return order;
        }
    }
    if let Backup::Edge(b) = backup {
        if policy.edge_usable(b) && !order.iter().any(|c| c.edge == b) {
            order.push(cand(b, Reason::PinnedBackup));
        }
    }
    let mut rest: Vec<Candidate> = (0..doc.edges.len())
        .filter(|&e| policy.edge_usable(e) && !order.iter().any(|c| c.edge == e))
        .map(|e| cand(e, Reason::Nearest))
        .collect();
    rest.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(rounded_m(a.distance_km).cmp(&rounded_m(b.distance_km)))
            .then_with(|| {
                let id = |c: &Candidate| doc.edges.get(c.edge).map_or("", |e| e.id.as_str());
                id(a).cmp(id(b))
            })
    });
    order.extend(rest);
    if backup == Backup::NoBackup {
        order.truncate(1);
    }
    order
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: a strong 64-bit mix.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The client's hash for rendezvous: FNV-1a over the address bytes (4 for IPv4,
/// 16 for IPv6; an IPv4-mapped IPv6 address is its IPv4 address).
pub fn client_hash(addr: IpAddr) -> u64 {
    match crate::addr::canonical(addr) {
        IpAddr::V4(a) => fnv1a(&a.octets()),
        IpAddr::V6(a) => fnv1a(&a.octets()),
    }
}

/// The rendezvous weight of a link (by the FNV-1a hash of its id) for a client.
/// The usable link with the highest weight wins; ties go to the earlier link.
pub fn rendezvous_weight(client: u64, link_id_hash: u64) -> u64 {
    mix64(client ^ mix64(link_id_hash))
}

/// Hash of a link id, as used by [`rendezvous_weight`].
pub fn link_hash(id: &str) -> u64 {
    fnv1a(id.as_bytes())
}
