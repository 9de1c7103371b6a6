//! The Envoy cluster a `maps` decision routes to — one naming convention shared by the
//! proxy-wasm plugin (which publishes it in the `x-maps-cluster` request header and the
//! `envoy.tcp_proxy.cluster` filter state) and `mapsctl envoy-config` (which defines the
//! clusters).
//!
//! Convention: `maps_<edge>_<backup>`, or `maps_<edge>` when the decision has no backup
//! edge. One cluster per (edge, backup) pair lets Envoy fail over from the edge's links to
//! the backup edge's (priority levels), so a route only needs `cluster_header`.
//!
//! A decision carries its cluster ([`crate::Decision::cluster`], precomputed per
//! registration); [`crate::Classifier::routes`] lists every route a policy uses.
//!
//! Ids are escaped so that `_` separates fields unambiguously and the name stays a plain
//! token: ASCII letters, digits and `-` are kept; every other byte becomes `~XX` (upper
//! case hex). `sea` → `sea`, `new_york` → `new~5Fyork`.
//!
//! ```
//! use policy_core::cluster_name;
//! assert_eq!(cluster_name("sea", Some("chi")), "maps_sea_chi");
//! assert_eq!(cluster_name("sea", None), "maps_sea");
//! assert_eq!(cluster_name("new_york", Some("a.b")), "maps_new~5Fyork_a~2Eb");
//! ```

use alloc::string::String;

/// The plugin's root id for Envoy's network (L4) filter (`envoy.filters.network.wasm`,
/// ahead of `tcp_proxy`); any other root id serves the HTTP filter. The plugin and
/// `mapsctl envoy-config` both take it from here.
pub const NETWORK_ROOT_ID: &str = "maps_tcp";
use core::fmt::Write as _;

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

/// The Envoy cluster of one edge's links (`edge_<id>`, the id escaped as in
/// [`cluster_name`]): the first priority of every `maps_<edge>…` aggregate.
///
/// ```
/// use policy_core::edge_cluster;
/// assert_eq!(edge_cluster("sea"), "edge_sea");
/// assert_eq!(edge_cluster("new_york"), "edge_new~5Fyork");
/// ```
pub fn edge_cluster(edge: &str) -> String {
    let mut out = String::with_capacity(5 + edge.len());
    out.push_str("edge_");
    escape_into(&mut out, edge);
    out
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
