//! Diagnostics: what validation found, where, and how to fix it (SPEC §6).
//!
//! Every problem is a [`Diagnostic`] with a stable [`Code`], a JSON Pointer `path`
//! into the document, a [`Severity`], a message a person can act on and, where the
//! fix is mechanical, a `help` line. A [`Report`] holds all of them at once, plus the
//! document's [`Summary`]. Codes never change meaning; new checks get new codes.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is still loaded; `--strict` (the MAPS-readiness check) refuses it.
    Warning,
    /// The policy is refused.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $sev:ident; )*) => {
        /// A stable diagnostic code. The text form (kebab-case) is what reports carry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $(#[$doc])* $variant, )* }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable text of the code.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// Severity before `--strict` is applied.
            pub const fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// The code named by `text`, if any.
            pub fn from_name(text: &str) -> Option<Code> {
                match text { $( $text => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    /// The input is not UTF-8 text. Fix: save the file as UTF-8.
    NotUtf8 = "not-utf8", Error;
    /// The input is empty. Fix: provide a policy document.
    EmptyDocument = "empty-document", Error;
    /// The input is not well-formed JSON (line and column given). Fix the syntax there.
    BadJson = "bad-json", Error;
    /// `version` is not 1. Fix: write `"version": 1`.
    UnsupportedVersion = "unsupported-version", Error;
    /// A key the format does not define (often a misspelling). Fix: rename or remove it.
    UnknownField = "unknown-field", Error;
    /// A required key is absent. Fix: add it.
    MissingField = "missing-field", Error;
    /// A value of the wrong JSON type. Fix: use the type the message names.
    WrongType = "wrong-type", Error;
    /// A value of the right type but outside what the field accepts.
    BadValue = "bad-value", Error;
    /// A compiled policy file (`mapsctl compile`) that is foreign, of another format
    /// version, damaged, or inconsistent. Fix: compile the policy again.
    CompiledPolicy = "compiled-policy", Error;
    /// A prefix that does not parse as `address/length`.
    MalformedPrefix = "malformed-prefix", Error;
    /// A prefix with bits set after its length. Fix: use the canonical form given.
    HostBitsSet = "host-bits-set", Error;
    /// A prefix that is not public unicast address space (RFC 1918, RFC 6598, loopback,
    /// link-local, multicast, reserved, IPv6 ULA...). MAPS carries public traffic only.
    NonPublicPrefix = "non-public-prefix", Error;
    /// An IPv4 prefix shorter than /8 or an IPv6 prefix shorter than /16.
    PrefixTooShort = "prefix-too-short", Error;
    /// Two edges share an id.
    DuplicateEdgeId = "duplicate-edge-id", Error;
    /// Two links share an id (ids are unique across the document).
    DuplicateLinkId = "duplicate-link-id", Error;
    /// Two registrations share an id.
    DuplicateRegistrationId = "duplicate-registration-id", Error;
    /// The same prefix is registered twice.
    DuplicatePrefix = "duplicate-prefix", Error;
    /// `primary_edge`/`backup_edge` names no edge of the document.
    UnknownEdge = "unknown-edge", Error;
    /// Latitude outside -90..=90 or longitude outside -180..=180.
    CoordinateOutOfRange = "coordinate-out-of-range", Error;
    /// `location` names no Azure Peering Service location (nearest name suggested).
    UnknownLocation = "unknown-location", Error;
    /// A registration with neither `lat`/`lon` nor `location`.
    MissingLocation = "missing-location", Error;
    /// A prefix state that is not one of Azure's `prefixValidationState` values.
    UnknownState = "unknown-state", Error;
    /// A destination domain that is not a host name or `*.` wildcard.
    MalformedDomain = "malformed-domain", Error;
    /// A Microsoft 365 category that is not `Optimize`, `Allow` or `Default` (in a
    /// destination's `category` or in `options.maps_categories`).
    UnknownCategory = "unknown-category", Error;
    /// A destination's `ports` that is not a list of ports and ranges from 1 to 65535
    /// (`"80,443"`, `"3478-3481"`).
    MalformedPorts = "malformed-ports", Error;
    /// `header_prefix` is not a lowercase HTTP header-name prefix.
    BadHeaderPrefix = "bad-header-prefix", Error;
    /// A link `address` that is not `host:port`.
    MalformedAddress = "malformed-address", Error;
    /// An edge, link or registration id that is empty, only whitespace, longer than 256
    /// bytes, or carries control or bidirectional-formatting characters.
    BadId = "bad-id", Error;
    /// Two edge (or registration) ids that differ only by `.` and `_`: the plugin's
    /// metric names (where `.` is written `_`) would mix them up.
    MetricNameCollision = "metric-name-collision", Error;
    /// An edge with fewer than two usable links, or links all on one router.
    NoLocalRedundancy = "no-local-redundancy", Warning;
    /// Fewer than two usable edges.
    NoGeoRedundancy = "no-geo-redundancy", Warning;
    /// Links of unequal capacity, or under 10 Gbit/s.
    LinkCapacity = "link-capacity", Warning;
    /// A registered prefix nested in another registration's prefix (Azure refuses overlaps).
    OverlappingPrefix = "overlapping-prefix", Warning;
    /// An IPv6 registered prefix (Azure accepts IPv4 only today).
    Ipv6Prefix = "ipv6-prefix", Warning;
    /// An IPv4 prefix longer than /24 without a partner-registered prefix `key`.
    LongPrefixWithoutKey = "long-prefix-without-key", Warning;
    /// A documentation range (RFC 5737 / RFC 3849).
    DocumentationPrefix = "documentation-prefix", Warning;
    /// A registration with no prefix in an eligible state.
    NoEligiblePrefix = "no-eligible-prefix", Warning;
    /// A pinned primary or backup edge that is drained (or has no usable link).
    PinnedEdgeDrained = "pinned-edge-drained", Warning;
    /// Two destinations or two entries of one destination list the same prefix or domain.
    DuplicateDestination = "duplicate-destination", Warning;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Code::from_name(&text)
            .ok_or_else(|| serde::de::Error::custom(alloc::format!("unknown code `{text}`")))
    }
}

/// One problem found in a policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable code.
    pub code: Code,
    /// `error` or `warning` (after `--strict`).
    pub severity: Severity,
    /// JSON Pointer (RFC 6901) to the offending value; `""` is the whole document.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// How to fix it, when the fix is mechanical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// 1-based line of the offending value in the source text, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column (in characters) of the offending value, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Diagnostic {
    /// The line that counts the diagnostics of `code` over the per-code cap: `n` more
    /// were found and not shown. It names no place, and sorts after every other.
    pub fn not_shown(code: Code, n: usize) -> Self {
        Diagnostic::new(
            code,
            "",
            alloc::format!("{NOT_SHOWN}{n} more `{code}` diagnostics not shown"),
        )
    }

    /// Whether this is a [`Diagnostic::not_shown`] line.
    pub fn is_not_shown(&self) -> bool {
        self.path.is_empty() && self.message.starts_with(NOT_SHOWN)
    }

    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.default_severity(),
            path: path.into(),
            message: message.into(),
            help: None,
            line: None,
            column: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a source position.
    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Diagnostic {
    /// One line: `error[host-bits-set] /registrations/0/prefixes/1/prefix: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{}[{}] {}", self.severity, self.code, path)?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, " (line {line}, column {col})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

/// Counts of a policy's contents (SPEC §6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of edges.
    pub edges: usize,
    /// Number of edges that can carry traffic (not drained, a usable link).
    pub usable_edges: usize,
    /// Number of links.
    pub links: usize,
    /// Number of registrations.
    pub registrations: usize,
    /// Number of registered prefixes.
    pub prefixes: usize,
    /// Registered prefixes by validation state.
    pub prefixes_by_state: BTreeMap<String, usize>,
    /// Registered IPv4 prefixes.
    pub ipv4_prefixes: usize,
    /// Registered IPv6 prefixes.
    pub ipv6_prefixes: usize,
    /// Registered prefixes in an eligible state.
    pub eligible_prefixes: usize,
    /// Prefixes opted into telemetry (latency reporting).
    pub telemetry_prefixes: usize,
    /// What telemetry costs at the published rate of $15 per prefix (USD).
    pub telemetry_cost_usd: u64,
    /// Number of destination prefixes.
    pub destination_prefixes: usize,
    /// Number of destination domains.
    pub destination_domains: usize,
}

/// Published telemetry price per prefix, in US dollars.
pub const TELEMETRY_USD_PER_PREFIX: u64 = 15;

/// The result of validating a policy document: every problem at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// True when warnings were promoted to errors (the MAPS-readiness check).
    pub strict: bool,
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// Every diagnostic, in document order.
    pub diagnostics: Vec<Diagnostic>,
    /// Counts, when the document could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

impl Report {
    /// Builds a report, applying `strict` and counting.
    pub fn new(mut diagnostics: Vec<Diagnostic>, summary: Option<Summary>, strict: bool) -> Self {
        if strict {
            for d in &mut diagnostics {
                d.severity = Severity::Error;
            }
        }
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        Report {
            valid: errors == 0,
            strict,
            errors,
            warnings: diagnostics.len() - errors,
            diagnostics,
            summary,
        }
    }

    /// The diagnostics that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for Report {
    /// One diagnostic per line, then a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        write!(
            f,
            "{} error{}, {} warning{}",
            self.errors,
            if self.errors == 1 { "" } else { "s" },
            self.warnings,
            if self.warnings == 1 { "" } else { "s" }
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Report {}

/// Orders diagnostics as they appear in the source (stable; unplaced ones last).
pub fn sort_by_position(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.is_not_shown(), d.line.is_none(), d.line, d.column));
}

const NOT_SHOWN: &str = "... and ";

/// At most this many diagnostics of one code are shown (shape errors and the capped
/// semantic checks); the rest are counted in one "... and N more" line.
pub const MAX_PER_CODE: usize = 100;
