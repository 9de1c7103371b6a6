//! The policy document, version 1 (SPEC §2), exactly as it is written in JSON.
//!
//! These types are the *document* stage: they hold what the author wrote (prefixes
//! and states as text) so that validation can point at every mistake. Unknown fields
//! are errors (`deny_unknown_fields`). [`crate::validate`] turns a document into a
//! [`crate::Policy`].

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A whole policy document (SPEC §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Document format version; only `1` is supported.
    pub version: u64,
    /// The partner ISP operating the edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Microsoft edge sites where this provider exchanges MAPS traffic.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// One per Azure peering service.
    #[serde(default)]
    pub registrations: Vec<Registration>,
    /// Microsoft service address space; empty means every destination counts.
    #[serde(default)]
    pub destinations: Vec<Destination>,
    /// Plugin and classification settings.
    #[serde(default)]
    pub options: Options,
    /// Registered prefixes in the packed encoding (see [`crate::PackedTable`]), in addition
    /// to those listed under `registrations`; `mapsctl pack` writes it. For tables of
    /// hundreds of thousands of prefixes, where JSON would cost too much memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_table: Option<crate::packed::PackedTable>,
    /// Where imported parts of the policy came from (`mapsctl import` records one
    /// entry per import; informational).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance: Vec<Provenance>,
}

/// One import into the policy (`mapsctl import`): what was read, and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `azure`, `service-tags` or `m365`.
    pub kind: String,
    /// The file(s) read, as named on the command line.
    pub files: Vec<String>,
    /// Service Tags: the file's `changeNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_number: Option<u64>,
    /// Service Tags: the file's `cloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// Microsoft 365 endpoints: the web service's version, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What was selected (service tags, categories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected: Vec<String>,
}

/// The partner ISP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Provider name, as Azure lists it.
    pub name: String,
    /// Provider's autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// A Microsoft edge site (peering location) with its PNI links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Unique edge id, used in decisions and Envoy cluster names.
    pub id: String,
    /// Metro name (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metro: Option<String>,
    /// Latitude of the site in degrees.
    pub lat: f64,
    /// Longitude of the site in degrees.
    pub lon: f64,
    /// The provider serving this edge (for `providers` preference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The diverse PNI links at this site.
    #[serde(default)]
    pub links: Vec<Link>,
    /// A drained edge is never chosen.
    #[serde(default)]
    pub drained: bool,
    /// The name Azure gives this site in a peering service's provider primary/backup
    /// peering location (`providerPrimaryPeeringLocation`), used by imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peering_location: Option<String>,
}

/// One PNI link of an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Link id, unique across the document.
    pub id: String,
    /// The provider router the PNI lands on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<String>,
    /// Link capacity in Gbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_gbps: Option<f64>,
    /// Where a proxy reaches this link's next hop (`host:port`), for generated Envoy
    /// configuration. Not used by classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A drained link is never chosen.
    #[serde(default)]
    pub drained: bool,
}

/// One Azure peering service registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Unique registration id.
    pub id: String,
    /// Customer name (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Azure Peering Service location (a US state, or a country elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Customer latitude; with `lon`, overrides the location's coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Customer longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Azure's providerPrimaryPeeringLocation, as an edge id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_edge: Option<String>,
    /// Azure's providerBackupPeeringLocation, as an edge id, or `"None"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_edge: Option<String>,
    /// Provider preference order (SD-WAN hosts with several ISP uplinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<String>>,
    /// The registered prefixes.
    #[serde(default)]
    pub prefixes: Vec<PrefixEntry>,
}

/// A registered prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixEntry {
    /// The prefix, e.g. `198.51.100.0/24`.
    pub prefix: String,
    /// Azure's `prefixValidationState`.
    pub state: String,
    /// Opt-in to latency reporting.
    #[serde(default)]
    pub telemetry: bool,
    /// The peering service prefix key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A set of Microsoft service destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// Name of the service (e.g. `Office365`).
    pub name: String,
    /// Service prefixes.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Service host names; `*.x.y` matches any name ending in `.x.y`; any other `*`
    /// stands for any characters inside one label (`*-files.sharepoint.com`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Microsoft 365 category of the entry: `Optimize`, `Allow` or `Default` (SPEC §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Ports the entry applies to, in Microsoft's `tcpPorts` form (`"80,443"`,
    /// `"3478-3481"`); absent: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
}

/// Plugin and classification options; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Prefix states that make traffic eligible for MAPS.
    pub eligible_states: Vec<String>,
    /// Where the client address comes from.
    pub client_address: ClientAddress,
    /// Prefix of the headers the plugin publishes (and strips from requests).
    pub header_prefix: String,
    /// Microsoft 365 categories that take the MAPS path (SPEC §7); absent: all three.
    /// An entry without a category always does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maps_categories: Option<Vec<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            eligible_states: alloc::vec![String::from("Verified")],
            client_address: ClientAddress::default(),
            header_prefix: String::from("x-maps-"),
            maps_categories: None,
        }
    }
}

/// Where the plugin takes the client address from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAddress {
    /// `source` (the downstream connection) or `xff` (`x-forwarded-for`).
    pub from: AddressSource,
    /// Number of trusted proxies in front of this one (counted from the right of
    /// `x-forwarded-for`, as Envoy's `xff_num_trusted_hops`).
    pub trusted_hops: u32,
}

impl Default for ClientAddress {
    fn default() -> Self {
        ClientAddress {
            from: AddressSource::Source,
            trusted_hops: 0,
        }
    }
}

/// Source of the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressSource {
    /// The downstream connection's remote address.
    #[default]
    Source,
    /// The `x-forwarded-for` header.
    Xff,
}
