//! Validation (SPEC §6): every problem at once, then a [`Policy`] if there was no error.
//!
//! Errors make a document unloadable. Warnings are the "MAPS-ready" checks (what
//! Azure asks of a partner: local and geo redundancy, equal capacity, IPv4-only,
//! no overlaps...); `strict` turns them into errors.
//!
//! One module per concept, run in this order by [`Checker::run`]: [`options`],
//! [`edges`], [`registrations`] with their [`prefixes`] (JSON, then packed; the
//! address checks of each in [`address_space`]), [`overlap`], [`destinations`].
//! Diagnostics are sorted by line afterwards; those on one line keep this order.

pub(crate) mod address_space;
mod destinations;
mod edges;
pub(crate) mod ids;
pub(crate) mod options;
mod overlap;
mod prefixes;
mod registrations;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

use crate::diag::{Code, Diagnostic, Report, Summary, TELEMETRY_USD_PER_PREFIX};
use crate::model::PolicyDocument;
use crate::parse;
use crate::policy::{HeaderNames, Policy};

use prefixes::Tally;

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
/// not in memory while they are built. [`crate::policy::pack_policy`] needs it kept.
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

/// Collects the diagnostics of one document.
struct Checker {
    keep_packed: bool,
    diags: Vec<Diagnostic>,
    /// Per code, how many diagnostics the capped checks raised (shown or not).
    per_code: BTreeMap<Code, usize>,
}

pub use crate::diag::MAX_PER_CODE;

impl Checker {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
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

    /// Counts one diagnostic of `code` and says whether it is to be shown (made):
    /// false once [`MAX_PER_CODE`] were. For diagnostics that cost something to make
    /// (a "did you mean" search), so that a hostile document pays for 100 at most.
    fn take_slot(&mut self, code: Code) -> bool {
        let n = self.per_code.entry(code).or_insert(0);
        *n += 1;
        *n <= MAX_PER_CODE
    }

    /// Counts `n` diagnostics of `code` that were found but never made.
    fn count_unshown(&mut self, code: Code, n: usize) {
        *self.per_code.entry(code).or_insert(0) += n;
    }

    /// One line per capped code that went over the cap: how many were not shown.
    fn summary_lines(&mut self) {
        for (&code, &n) in &self.per_code {
            if n > MAX_PER_CODE {
                self.diags
                    .push(Diagnostic::not_shown(code, n - MAX_PER_CODE));
            }
        }
    }

    /// Only version 1 is read.
    fn version(&mut self, version: u64) {
        if version != 1 {
            self.push(
                Diagnostic::new(
                    Code::UnsupportedVersion,
                    "/version",
                    format!("policy version {version} is not supported"),
                )
                .with_help("this release reads version 1: write \"version\": 1"),
            );
        }
    }

    /// Every check, one concept after the other, and the policy they resolve.
    fn run(&mut self, mut doc: PolicyDocument) -> (Summary, Policy) {
        self.version(doc.version);
        let eligible = self.eligible_states(&doc.options.eligible_states);
        self.header_prefix(&doc.options.header_prefix);
        self.trusted_hops(&doc.options.client_address);
        self.ids_and_names(&doc);
        let edges = self.edges(&doc.edges);
        let mut summary = Summary {
            edges: doc.edges.len(),
            usable_edges: edges.usable,
            links: doc.edges.iter().map(|e| e.links.len()).sum(),
            registrations: doc.registrations.len(),
            ..Summary::default()
        };
        let n = doc.registrations.len();
        let (mut sites, mut primary, mut backup) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut tally = Tally::new(n, eligible);
        let mut ids = BTreeMap::new();
        for (i, r) in doc.registrations.iter().enumerate() {
            let resolved = self.registration(i, r, &mut ids, &doc.edges, &edges);
            sites.push(resolved.site);
            primary.push(resolved.primary);
            backup.push(resolved.backup);
            self.json_prefixes(i, r, &mut tally, &mut summary);
        }
        self.registration_count(n);
        if let Some(t) = &doc.prefix_table {
            self.packed_prefixes(t, n, &mut tally, &mut summary);
        }
        self.eligible_registrations(&doc, &tally);
        if !self.keep_packed {
            doc.prefix_table = None;
        }
        summary.telemetry_cost_usd = summary.telemetry_prefixes as u64 * TELEMETRY_USD_PER_PREFIX;
        let (v4, v6) = self.duplicates_and_overlaps(tally.table, &doc);
        let dest = self.destinations(&doc.destinations, &mut summary);
        let maps_categories = self.maps_categories(doc.options.maps_categories.as_deref());
        self.summary_lines();
        let headers = HeaderNames::new(&doc.options.header_prefix);
        let client = options::client_rule(&doc.options.client_address);
        let policy = Policy {
            doc,
            sites,
            primary,
            backup,
            prefixes: tally.prefixes,
            v4,
            v6,
            counts: tally.counts,
            headers,
            client,
            dest_prefixes: dest.prefixes,
            dest_exact: dest.exact,
            dest_wild: dest.wild,
            dest_patterns: dest.patterns,
            dest_meta: dest.meta,
            maps_categories,
            eligible,
        };
        (summary, policy)
    }
}
