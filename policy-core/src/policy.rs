//! The validated policy: a document whose every reference, prefix and coordinate has
//! been checked and resolved. Only [`crate::validate`] makes one, so holding a
//! [`Policy`] means the document had no errors; [`crate::Classifier::new`] cannot fail.

use alloc::string::String;
use alloc::vec::Vec;

use ipnet::IpNet;
use serde::Serialize;

use crate::model::PolicyDocument;
use crate::packed::Record;
pub use crate::state::PrefixState;

/// Most registrations a policy may have: the LPM tables carry the registration
/// index in 20 bits of their value.
pub const MAX_REGISTRATIONS: usize = 1 << 20;

/// What an LPM table stores for a registered prefix: registration index (20 bits),
/// telemetry (1 bit), state (3 bits) and prefix length (8 bits). The matched prefix is
/// the source truncated to that length, so no per-prefix record is kept beside the
/// tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PrefixValue(pub(crate) u32);

impl PrefixValue {
    pub(crate) fn new(registration: usize, state: PrefixState, telemetry: bool, len: u8) -> Self {
        PrefixValue(
            ((registration as u32) << 12)
                | (u32::from(telemetry) << 11)
                | (state.index() << 8)
                | u32::from(len),
        )
    }

    pub(crate) fn registration(self) -> usize {
        (self.0 >> 12) as usize
    }

    pub(crate) fn telemetry(self) -> bool {
        self.0 & (1 << 11) != 0
    }

    pub(crate) fn state(self) -> PrefixState {
        PrefixState::ALL
            .get(((self.0 >> 8) & 7) as usize)
            .copied()
            .unwrap_or(PrefixState::Unknown)
    }

    pub(crate) fn len(self) -> u8 {
        (self.0 & 0xff) as u8
    }
}

/// A registered prefix, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredPrefix {
    /// Index of the owning registration in the document.
    pub registration: usize,
    /// Index of the prefix within its registration.
    pub index: usize,
    /// The prefix (canonical).
    pub net: IpNet,
    /// Its validation state.
    pub state: PrefixState,
    /// Opted into telemetry.
    pub telemetry: bool,
}

/// Where a registration's customer is, and how it was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// True when taken from the built-in location table rather than `lat`/`lon`.
    pub from_location: bool,
}

/// A registration's pinned backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backup {
    /// No `backup_edge`: candidates by rank and distance.
    Unpinned,
    /// `"None"`: no backup site; failover is empty.
    NoBackup,
    /// A pinned edge, by index.
    Edge(usize),
}

/// A policy that passed validation (no errors; warnings allowed).
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) doc: PolicyDocument,
    pub(crate) sites: Vec<Site>,
    pub(crate) primary: Vec<Option<usize>>,
    pub(crate) backup: Vec<Backup>,
    /// The prefixes listed in the JSON document (not those of `prefix_table`).
    pub(crate) prefixes: Vec<RegisteredPrefix>,
    /// Every registered prefix (JSON and packed) as LPM entries (network, length,
    /// [`PrefixValue`]); the classifier takes them.
    pub(crate) v4: Vec<(u32, u8, u32)>,
    pub(crate) v6: Vec<(u128, u8, u32)>,
    /// Per registration: its prefixes (JSON and packed) counted.
    pub(crate) counts: Vec<PrefixCounts>,
    /// The names and rules adapters need, resolved once.
    pub(crate) headers: HeaderNames,
    pub(crate) client: ClientRule,
    pub(crate) dest_prefixes: Vec<(IpNet, usize)>,
    /// Normalised exact domains, with their destination index.
    pub(crate) dest_exact: Vec<(String, usize)>,
    /// Normalised wildcard suffixes (`*.x.y` stored as `x.y`), with destination index.
    pub(crate) dest_wild: Vec<(String, usize)>,
    /// Domains with `*` inside a label, with their destination index.
    pub(crate) dest_patterns: Vec<(crate::m365::Pattern, usize)>,
    /// Each destination entry's category and ports.
    pub(crate) dest_meta: Vec<DestMeta>,
    /// The categories that take the MAPS path (one bit per [`crate::Category`]).
    pub(crate) maps_categories: u8,
    pub(crate) eligible: u8,
}

impl Policy {
    /// The document this policy was validated from.
    pub fn document(&self) -> &PolicyDocument {
        &self.doc
    }

    /// Where registration `i` is located.
    pub fn site(&self, registration: usize) -> Option<Site> {
        self.sites.get(registration).copied()
    }

    /// The registered prefixes listed in the JSON document, resolved, in document
    /// order (those of a packed `prefix_table` are not listed here).
    pub fn registered_prefixes(&self) -> &[RegisteredPrefix] {
        &self.prefixes
    }

    /// Number of registered prefixes (JSON and packed).
    pub fn prefix_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Registration `i`'s prefixes (JSON and packed), counted.
    pub fn counts(&self, registration: usize) -> PrefixCounts {
        self.counts.get(registration).copied().unwrap_or_default()
    }

    /// Whether registration `i` has at least one prefix with telemetry. Latency is
    /// reported per prefix ([`crate::Decision::telemetry`]); this is for summaries.
    pub fn has_telemetry(&self, registration: usize) -> bool {
        self.counts(registration).telemetry > 0
    }

    /// The header names the plugin publishes and strips (`options.header_prefix`).
    pub fn headers(&self) -> &HeaderNames {
        &self.headers
    }

    /// Which address is the client (`options.client_address`).
    pub fn client_rule(&self) -> ClientRule {
        self.client
    }

    /// Whether a destination address can change a decision: when a destination lists
    /// prefixes, or `ports` (the flow's port is the destination's, else the host's), so
    /// a host need not fetch it otherwise.
    pub fn needs_destination_address(&self) -> bool {
        !self.dest_prefixes.is_empty() || self.dest_meta.iter().any(|m| m.ports.is_some())
    }

    /// Whether `category` takes the MAPS path (`options.maps_categories`).
    pub fn maps_category(&self, category: crate::m365::Category) -> bool {
        self.maps_categories & category.bit() != 0
    }

    /// The states that make traffic eligible, in [`PrefixState::ALL`] order.
    pub fn eligible_states(&self) -> impl Iterator<Item = PrefixState> + '_ {
        PrefixState::ALL
            .into_iter()
            .filter(move |s| self.is_eligible(*s))
    }

    /// Whether `state` makes traffic eligible for MAPS under this policy.
    pub fn is_eligible(&self, state: PrefixState) -> bool {
        self.eligible & state.bit() != 0
    }

    /// Pinned primary edge index of registration `i`.
    pub fn primary_edge(&self, registration: usize) -> Option<usize> {
        self.primary.get(registration).copied().flatten()
    }

    /// Pinned backup of registration `i`.
    pub fn backup_edge(&self, registration: usize) -> Backup {
        self.backup
            .get(registration)
            .copied()
            .unwrap_or(Backup::Unpinned)
    }

    /// Whether edge `i` can carry traffic: not drained, with a link not drained.
    pub fn edge_usable(&self, edge: usize) -> bool {
        self.doc
            .edges
            .get(edge)
            .is_some_and(|e| !e.drained && e.links.iter().any(|l| !l.drained))
    }
}

/// One registration's prefixes (JSON and packed), counted at validation. A prefix
/// that fails validation is not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PrefixCounts {
    /// Every valid registered prefix.
    pub prefixes: usize,
    /// Those in an eligible state.
    pub eligible: usize,
    /// Those reporting latency (telemetry).
    pub telemetry: usize,
    /// IPv4 prefixes.
    pub ipv4: usize,
    /// IPv6 prefixes.
    pub ipv6: usize,
}

impl PrefixCounts {
    pub(crate) fn add(&mut self, net: IpNet, eligible: bool, telemetry: bool) {
        self.prefixes += 1;
        self.eligible += usize::from(eligible);
        self.telemetry += usize::from(telemetry);
        match net {
            IpNet::V4(_) => self.ipv4 += 1,
            IpNet::V6(_) => self.ipv6 += 1,
        }
    }
}

/// The request headers the plugin publishes (and strips from every request first, so a
/// client can never choose its own egress): `<prefix>class`, `<prefix>cluster`,
/// `<prefix>decision`, with `prefix` = `options.header_prefix` in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderNames {
    /// The prefix, lower case.
    pub prefix: String,
    /// The decision's class.
    pub class: String,
    /// The Envoy cluster of a `maps` decision (the route's `cluster_header`).
    pub cluster: String,
    /// The decision line (SPEC §5) as compact JSON.
    pub decision: String,
}

impl HeaderNames {
    pub(crate) fn new(prefix: &str) -> HeaderNames {
        let prefix = prefix.to_ascii_lowercase();
        HeaderNames {
            class: alloc::format!("{prefix}class"),
            cluster: alloc::format!("{prefix}cluster"),
            decision: alloc::format!("{prefix}decision"),
            prefix,
        }
    }

    /// Whether a header name starts with the prefix (ASCII case-insensitive): such a
    /// header on an incoming request is removed before anything reads it.
    pub fn is_ours(&self, name: &str) -> bool {
        name.get(..self.prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&self.prefix))
    }
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames::new("x-maps-")
    }
}

/// Which address is the client (`options.client_address`), resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum ClientRule {
    /// The downstream peer (`source.address`).
    Source,
    /// The `x-forwarded-for` entry `trusted_hops` from the right
    /// ([`crate::client::xff_client`]), else the downstream peer.
    Xff {
        /// Trusted proxies in front of this one.
        trusted_hops: u32,
    },
}

impl ClientRule {
    /// The client address text: `peer` is the downstream connection's address, `xff`
    /// the `x-forwarded-for` header values in order (several headers read as one list).
    ///
    /// ```
    /// use policy_core::ClientRule;
    /// let rule = ClientRule::Xff { trusted_hops: 1 };
    /// assert_eq!(rule.client(["6.6.6.6, 198.51.100.7, 192.0.2.1"], "10.0.0.1:5000"), "198.51.100.7");
    /// assert_eq!(rule.client(["192.0.2.1"], "10.0.0.1:5000"), "10.0.0.1:5000");
    /// assert_eq!(ClientRule::Source.client(["198.51.100.7"], "10.0.0.1:5000"), "10.0.0.1:5000");
    /// ```
    pub fn client<'a>(self, xff: impl IntoIterator<Item = &'a str>, peer: &'a str) -> &'a str {
        match self {
            ClientRule::Source => peer,
            ClientRule::Xff { trusted_hops } => {
                crate::client::xff_client(xff, trusted_hops).unwrap_or(peer)
            }
        }
    }

    /// Whether the rule reads `x-forwarded-for` at all.
    pub fn reads_xff(self) -> bool {
        matches!(self, ClientRule::Xff { .. })
    }
}

/// The same policy with every registered prefix moved into a packed `prefix_table`
/// (prefixes already packed stay). Decisions are unchanged; only the encoding is.
///
/// ```
/// let text = br#"{"version": 1, "edges": [{"id": "sea", "lat": 47.6, "lon": -122.3, "links": [{"id": "sea-1"}]}],
///   "registrations": [{"id": "r", "location": "Washington",
///     "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified", "telemetry": true}]}]}"#;
/// let policy = policy_core::validate(text, false).policy.unwrap();
/// let doc = policy_core::pack_policy(&policy);
/// assert!(doc.registrations[0].prefixes.is_empty());
/// let packed = serde_json::to_vec(&doc).unwrap();
/// let engine = policy_core::load(&packed, false).unwrap();
/// assert_eq!(engine.classifier.classify_text("20.1.2.3", None, None).edge(), Some("sea"));
/// ```
pub fn pack_policy(policy: &Policy) -> PolicyDocument {
    let mut doc = policy.document().clone();
    let mut recs: Vec<Record> = Vec::with_capacity(policy.prefix_count());
    for p in policy.registered_prefixes() {
        let has_key = doc
            .registrations
            .get(p.registration)
            .and_then(|r| r.prefixes.get(p.index))
            .is_some_and(|e| e.key.is_some());
        recs.push(Record {
            registration: p.registration as u32,
            state: p.state,
            telemetry: p.telemetry,
            has_key,
            net: p.net,
        });
    }
    if let Some(Ok(old)) = doc
        .prefix_table
        .as_ref()
        .map(crate::packed::PackedTable::records)
    {
        recs.extend(old.filter_map(Result::ok));
    }
    recs.sort_by_key(|r| r.registration);
    for r in &mut doc.registrations {
        r.prefixes.clear();
    }
    doc.prefix_table = Some(crate::packed::PackedTable::from_records(&recs));
    doc
}

/// A destination entry's Microsoft 365 category and ports (SPEC §7), resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DestMeta {
    pub(crate) category: Option<crate::m365::Category>,
    pub(crate) ports: Option<crate::m365::Ports>,
}
