//! # policy-core: every MAPS decision, made once
//!
//! Microsoft Azure Peering Service (MAPS) asks a partner ISP to recognise traffic
//! from registered, validated customer prefixes that is bound for Microsoft, and to
//! hand it to Microsoft at the edge nearest the customer ("cold potato"), over two
//! diverse links per site, with a backup site. This crate is that policy: the native
//! CLI, the proxy-wasm plugin (Envoy) and the browser/Node module are thin adapters
//! around it, so they decide identically.
//!
//! ```text
//!   policy JSON ──parse──▶ PolicyDocument ──validate──▶ Policy ──compile──▶ Classifier
//!   (bytes)      (model)   every shape error   (policy)  every semantic  (classify) │
//!                          with path + line              problem, once              │
//!                                                                                    ▼
//!   (src, dst?, host?) ──▶ LPM over registered prefixes ──▶ state eligible? ──▶ Decision
//!                          (lpm: IPv4 u32 / IPv6 u128)      destination match     class, registration,
//!                                                           (lpm + domains)       prefix, edge, link,
//!                                                           edge order (select)   backup, failover
//! ```
//!
//! Three stages, each a type: an invalid document never becomes a [`Policy`], and a
//! [`Classifier`] compiled from a policy cannot fail. The [`Policy`] is *resolved*: it
//! answers everything an adapter needs ([`Policy::headers`], [`Policy::client_rule`],
//! [`Policy::counts`], [`Policy::eligible_states`],
//! [`Policy::needs_destination_address`]), and a [`Decision`] carries its route
//! ([`Decision::cluster`]) and whether its prefix reports latency
//! ([`Decision::telemetry`]), so the plugin, the web module, `mapsctl` and the Envoy
//! configuration generator derive nothing.
//!
//! Modules are private; the API is the re-exports below. Inside, leaves first (no
//! import circles):
//!
//! | module | concept |
//! |---|---|
//! | `addr`, `state`, `text`, `client`, `cluster` | leaves: addresses and hosts, prefix states, JSON Pointers and "did you mean", the `x-forwarded-for` rule, cluster names |
//! | `model` | the policy document v1 (serde, unknown fields are errors) |
//! | `parse` | bytes → document; syntax errors with line/column, every shape error |
//! | `validate/` | document → [`Policy`], every problem of SPEC §6 with code and JSON Pointer, one file per concept |
//! | `diag` | [`Diagnostic`], [`Code`], [`Report`], [`Summary`] |
//! | `locations` | built-in Azure Peering Service locations with coordinates |
//! | `lpm` | compiled longest-prefix-match tables |
//! | `packed` | the compact encoding of large prefix tables (`prefix_table`) |
//! | `policy` | the validated, resolved [`Policy`] |
//! | `select` | cold-potato edge order, haversine, rendezvous hashing and link choice |
//! | `classify` | the [`Classifier`], its [`Decision`] and [`Route`]s |
//! | `explain` | a person-readable account of one decision |
//! | `import/` | imports (SPEC §8): Azure, Service Tags and Microsoft 365 files into a policy, with a report |
//! | `trace` | trace lines in, decision lines out (SPEC §5) |
//!
//! Features: `std` (default; `std::error::Error` impls), `synth` (synthetic policies
//! of any size: `mapsctl gen`), `testgen` (with `synth`: the naive reference models
//! tests and benches compare against). The plugin and the web module use none.
//!
//! Panic contract: no input (policy bytes, addresses, host names) makes any public
//! function panic.
//!
//! ```
//! let policy = br#"{"version": 1,
//!   "edges": [{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{"id": "sea-1"}, {"id": "sea-2"}]}],
//!   "registrations": [{"id": "fabrikam", "location": "Washington",
//!     "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified"}]}]}"#;
//! let engine = policy_core::load(policy, false).unwrap();
//! let d = engine.classifier.classify_text("20.1.2.3", None, None);
//! assert_eq!(d.class().as_str(), "maps");
//! assert_eq!(d.edge(), Some("sea"));
//!
//! // A failing case: a misspelt state is reported with its path.
//! let bad = br#"{"version": 1, "registrations": [{"id": "r", "location": "Texas",
//!   "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verifed"}]}]}"#;
//! let report = policy_core::load(bad, false).unwrap_err();
//! let first = report.errors().next().unwrap();
//! assert_eq!(first.code.as_str(), "unknown-state");
//! assert_eq!(first.path, "/registrations/0/prefixes/0/state");
//! ```

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![warn(missing_docs)]

extern crate alloc;

// Leaves first: each imports nothing above it (no import circles).
mod addr;
mod client;
mod cluster;
mod diag;
mod locations;
mod lpm;
mod m365;
mod model;
mod packed;
mod state;
mod text;
// Then the stages: parse → validate → policy → (select) → classify → explain / trace
// / compare.
mod classify;
mod compare;
mod compiled;
mod explain;
mod import;
mod parse;
mod policy;
mod select;
/// Synthetic policies of any size, for benchmarks and load tests (feature `synth`).
#[cfg(feature = "synth")]
pub mod synth;
/// Seeded prefix tables and lookup streams (feature `synth`), with the naive reference
/// models tests and benches compare against (feature `testgen`).
#[cfg(feature = "synth")]
pub mod testgen;
mod trace;
mod validate;

// ---- the public API: every item with a doc line of its own ----------------------------

/// Reading addresses and host names: IPv4-mapped IPv6 as IPv4, `host:port`.
pub use addr::{canonical, normalize_host, parse_address, port_of, HostPort};
/// The compiled classifier, its decisions and their classes; routes to Envoy clusters.
pub use classify::{
    decision_line_json, Class, Classifier, Decision, DecisionLine, DestinationMatch, Route,
};
/// Which `x-forwarded-for` entry is the client.
pub use client::xff_client;
/// Envoy cluster names: `maps_<edge>[_<backup>]` aggregates, `edge_<edge>` link clusters;
/// the plugin's network-filter root id.
pub use cluster::{cluster_name, edge_cluster, NETWORK_ROOT_ID};
/// What a change does before it is applied: policy differences, drain what-ifs.
pub use compare::{
    diff, what_if, Added, Ends, PolicyDiff, PrefixChange, PrefixDiff, PrefixFacts, PrefixItem,
    RouteChange, WhatIfError,
};
/// The compiled policy file (`mapsctl compile`): validated once, adopted by proxies
/// without parsing prefixes or rebuilding tables.
pub use compiled::{
    compile, compiled_header, is_compiled, load_compiled, CompiledError, CompiledHeader,
    COMPILED_MAGIC, COMPILED_VERSION,
};
/// Validation findings: codes, severities, the report and the policy summary.
pub use diag::{
    Code, Diagnostic, Report, Severity, Summary, MAX_PER_CODE, TELEMETRY_USD_PER_PREFIX,
};
/// A person-readable account of one decision.
pub use explain::{EdgeView, Explanation, PrefixMatch, SiteView};
/// Imports (SPEC §8): Azure peering services and prefixes, Service Tags, Microsoft 365
/// endpoints into a policy, with a report of what was taken, skipped and removed.
pub use import::{
    import_files, import_m365, import_service_tags, m365_categories, parse_import,
    service_tag_names, written, AzureImport, ImportError, ImportFile, ImportKind, ImportOptions,
    ImportReport, ImportSection, SectionKind, ServiceTagsFile, Written, DEFAULT_M365_CATEGORIES,
};
/// The built-in Azure Peering Service locations.
pub use locations::{find as find_location, names as location_names, Location, LocationKind};
/// Longest-prefix-match tables (IPv4 and IPv6), usable on their own.
pub use lpm::{Lpm4, Lpm6};
/// Microsoft 365 endpoint categories and port lists (SPEC §7).
pub use m365::{Category, Ports};
/// The policy document, version 1, as written in JSON (SPEC §2).
pub use model::{
    AddressSource, ClientAddress, Destination, Edge, Link, Options, PolicyDocument, PrefixEntry,
    Provenance, Provider, Registration,
};
/// The packed prefix table (`prefix_table`) and its records.
pub use packed::{encode as encode_packed, PackError, PackedTable, Record as PackedRecord};
/// Bytes or text to a document, with every shape error.
pub use parse::{parse_bytes, parse_str};
/// The validated policy and what it resolves for adapters.
pub use policy::{
    pack_policy, Backup, ClientRule, HeaderNames, Policy, PrefixCounts, RegisteredPrefix, Site,
    MAX_REGISTRATIONS,
};
/// Cold-potato edge order: candidates, why each is where it is, great-circle distance.
pub use select::{edge_order, haversine_km, Candidate, Reason};
/// Azure's prefix validation states.
pub use state::PrefixState;
/// Trace lines in, decision lines out (SPEC §5).
pub use trace::{
    decide_line, error_line, line_too_long_message, parse_line, trace_lines, TraceLine,
    MAX_TRACE_LINE_BYTES,
};
/// Validation: document → policy, every problem with code, JSON Pointer, line.
pub use validate::ids::{unsafe_char, MAX_ID_BYTES, MAX_NAME_BYTES};
pub use validate::options::MAX_TRUSTED_HOPS;
pub use validate::{validate, Validated};

/// A policy text's version: 64-bit FNV-1a of its bytes, in hex. The same text always
/// has the same version; Envoy shows it as the ECDS `version_text`. A compiled policy
/// file ([`compile`]) has the version of the JSON text it was compiled from (stored in
/// its header, so a proxy does not hash megabytes to learn it): the same policy has the
/// same version whichever form a proxy was given.
///
/// ```
/// assert_eq!(policy_core::policy_version(b""), "cbf29ce484222325");
/// let text = br#"{"version": 1, "edges": [], "registrations": []}"#;
/// let file = policy_core::compile(text, false).unwrap();
/// assert_eq!(policy_core::policy_version(&file), policy_core::policy_version(text));
/// ```
pub fn policy_version(text: &[u8]) -> alloc::string::String {
    alloc::format!("{:016x}", version_hash(text))
}

/// FNV-1a of the text, or the source version a compiled file's header names.
fn version_hash(text: &[u8]) -> u64 {
    match compiled::compiled_header(text) {
        Ok(h) => h.source_version,
        Err(_) => select::fnv1a(text),
    }
}

/// [`policy_version`] as a number a metric holds exactly (Prometheus samples are
/// 64-bit floats): its first 13 hex digits (52 bits). The plugin publishes it as the
/// gauge `maps.policy.version`, so a fleet's proxies can be compared with the version
/// `mapsctl envoy-config` wrote.
///
/// ```
/// let text = b"{\"version\": 1}";
/// let hex = policy_core::policy_version(text);
/// assert_eq!(policy_core::policy_version_number(text), u64::from_str_radix(&hex[..13], 16).unwrap());
/// ```
pub fn policy_version_number(text: &[u8]) -> u64 {
    version_hash(text) >> 12
}

/// A loaded policy: the compiled classifier and the report (warnings only).
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The compiled classifier.
    pub classifier: Classifier,
    /// The validation report (valid; may carry warnings).
    pub report: Report,
}

/// Like [`load`], for a caller that can give up the bytes: they are dropped as soon as
/// the document is parsed, before the tables are built, so a large policy is never in
/// memory twice (this matters in WebAssembly, whose memory never shrinks), and the
/// classifier is lean ([`Classifier::lean`]). The price: diagnostics carry their JSON
/// Pointer but no line and column, and `explain` does not list less specific prefixes.
#[allow(clippy::result_large_err)]
pub fn load_owned(bytes: alloc::vec::Vec<u8>, strict: bool) -> Result<LoadedPolicy, Report> {
    if is_compiled(&bytes) {
        return load_compiled(bytes).map_err(CompiledError::into_report);
    }
    let doc = match parse_bytes(&bytes) {
        Ok(doc) => doc,
        Err(diags) => return Err(Report::new(diags, None, strict)),
    };
    drop(bytes);
    let (mut diags, summary, policy) = validate::check_document_with(doc, false);
    diag::sort_by_position(&mut diags);
    let report = Report::new(diags, Some(summary), strict);
    match policy {
        Some(policy) if report.valid => Ok(LoadedPolicy {
            classifier: Classifier::lean(policy),
            report,
        }),
        _ => Err(report),
    }
}

/// Validates and compiles a policy document in one step. With `strict`, warnings
/// (the MAPS-readiness checks) are errors too.
///
/// Errors: the report, with every diagnostic (never a partial policy).
// The report is the whole point of the error path, which is cold: no need to box it.
#[allow(clippy::result_large_err)]
pub fn load(bytes: &[u8], strict: bool) -> Result<LoadedPolicy, Report> {
    if is_compiled(bytes) {
        return load_compiled(bytes.to_vec()).map_err(CompiledError::into_report);
    }
    let v = validate(bytes, strict);
    match v.policy {
        Some(policy) if v.report.valid => Ok(LoadedPolicy {
            classifier: Classifier::new(policy),
            report: v.report,
        }),
        _ => Err(v.report),
    }
}
