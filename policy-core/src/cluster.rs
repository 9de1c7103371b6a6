//! The Envoy cluster a `maps` decision routes to — one naming convention shared by the
//! proxy-wasm plugin (which publishes it in the `x-maps-cluster` request header and the
//! `envoy.tcp_proxy.cluster` filter state) and `mapsctl envoy-config` (which defines the
//! clusters).
//!
//! Convention: `maps_<edge>_<backup>`, or `maps_<edge>` when the decision has no backup
//! edge. One cluster per (edge, backup) pair lets Envoy fail over from the edge's links to
//! the backup edge's (priority levels), so a route only needs `cluster_header`.
//!
//! Ids are escaped so that `_` separates fields unambiguously and the name stays a plain
//! token: ASCII letters, digits and `-` are kept; every other byte becomes `~XX` (upper
//! case hex). `sea` → `sea`, `new_york` → `new~5Fyork`.
//!
//! ```
//! use policy_core::cluster::cluster_name;
//! assert_eq!(cluster_name("sea", Some("chi")), "maps_sea_chi");
//! assert_eq!(cluster_name("sea", None), "maps_sea");
//! assert_eq!(cluster_name("new_york", Some("a.b")), "maps_new~5Fyork_a~2Eb");
//! ```

use alloc::string::String;
use core::fmt::Write as _;

use crate::classify::{Class, Decision};

/// The cluster name for traffic handed to Microsoft at `edge` with `backup` as the
/// failover site.
pub fn cluster_name(edge: &str, backup: Option<&str>) -> String {
    let mut out = String::with_capacity(5 + edge.len() + backup.map_or(0, |b| b.len() + 1));
    out.push_str("maps_");
    escape_into(&mut out, edge);
    if let Some(b) = backup {
        out.push('_');
        escape_into(&mut out, b);
    }
    out
}

/// The cluster of a decision: `Some` for class `maps` only.
///
/// ```
/// let policy = br#"{"version": 1,
///   "edges": [{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{"id": "sea-1"}]}],
///   "registrations": [{"id": "r", "location": "Washington",
///     "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified"}]}]}"#;
/// let engine = policy_core::load(policy, false).unwrap();
/// let maps = engine.classifier.classify_text("20.1.2.3", None, None);
/// assert_eq!(policy_core::cluster::decision_cluster(&maps).as_deref(), Some("maps_sea"));
/// let other = engine.classifier.classify_text("192.0.2.1", None, None);
/// assert_eq!(policy_core::cluster::decision_cluster(&other), None);
/// ```
pub fn decision_cluster(d: &Decision<'_>) -> Option<String> {
    if d.class() != Class::Maps {
        return None;
    }
    Some(cluster_name(d.edge()?, d.backup()))
}

fn escape_into(out: &mut String, id: &str) {
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "~{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_fields_apart() {
        assert_eq!(cluster_name("a_b", None), "maps_a~5Fb");
        assert_ne!(cluster_name("a_b", None), cluster_name("a", Some("b")));
        assert_eq!(cluster_name("é", None), "maps_~C3~A9");
        assert_eq!(cluster_name("", Some("")), "maps__");
    }
}
