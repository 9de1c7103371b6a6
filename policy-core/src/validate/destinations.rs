//! Destinations (SPEC §6): destination prefixes (syntax, canonical form) and domains
//! (a host name or a `*.` wildcard), each listed once across all destinations.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipnet::IpNet;

use super::Checker;
use crate::addr::normalize_host;
use crate::diag::{Code, Diagnostic, Summary};
use crate::model::Destination;

/// The destinations as the classifier matches them, with their destination index.
#[derive(Default)]
pub(super) struct Destinations {
    pub(super) prefixes: Vec<(IpNet, usize)>,
    /// Normalised exact domains, sorted, first of each name kept.
    pub(super) exact: Vec<(String, usize)>,
    /// Normalised wildcard suffixes (`*.x.y` as `x.y`), sorted, first of each kept.
    pub(super) wild: Vec<(String, usize)>,
    /// What was first listed where: normalised prefix or domain → JSON Pointer.
    seen: BTreeMap<String, String>,
}

impl Checker {
    /// Every destination, in document order; counts them in the summary.
    pub(super) fn destinations(
        &mut self,
        destinations: &[Destination],
        summary: &mut Summary,
    ) -> Destinations {
        let mut out = Destinations::default();
        for (i, d) in destinations.iter().enumerate() {
            for (j, p) in d.prefixes.iter().enumerate() {
                self.destination_prefix(&format!("/destinations/{i}/prefixes/{j}"), p, i, &mut out);
            }
            for (j, dom) in d.domains.iter().enumerate() {
                self.destination_domain(format!("/destinations/{i}/domains/{j}"), dom, i, &mut out);
            }
        }
        summary.destination_prefixes = out.prefixes.len();
        summary.destination_domains = out.exact.len() + out.wild.len();
        out.exact.sort();
        out.exact.dedup_by(|a, b| a.0 == b.0);
        out.wild.sort();
        out.wild.dedup_by(|a, b| a.0 == b.0);
        out
    }

    fn destination_prefix(&mut self, path: &str, p: &str, i: usize, out: &mut Destinations) {
        let Some(net) = self.prefix_syntax(p, path) else {
            return;
        };
        let key = format!("{net}");
        if let Some(first) = out.seen.get(&key) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateDestination,
                    path,
                    format!("destination prefix {net} is already listed at {first}"),
                )
                .with_help("list it once"),
            );
        } else {
            out.seen.insert(key, String::from(path));
        }
        out.prefixes.push((net, i));
    }

    fn destination_domain(&mut self, path: String, dom: &str, i: usize, out: &mut Destinations) {
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
            return;
        }
        if let Some(first) = out.seen.get(&norm) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateDestination,
                    path,
                    format!("destination domain {norm} is already listed at {first}"),
                )
                .with_help("list it once"),
            );
        } else {
            out.seen.insert(norm, path);
        }
        if wild {
            out.wild.push((name, i));
        } else {
            out.exact.push((name, i));
        }
    }
}

/// A host name: dot-separated labels of letters, digits, `-` and `_`, 63 bytes at
/// most, not starting or ending with `-`; 253 bytes at most in all.
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
