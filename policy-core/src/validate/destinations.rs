//! Destinations (SPEC §6, §7): destination prefixes (syntax, canonical form), domains
//! (a host name, a `*.` wildcard, or a pattern with `*` inside labels), Microsoft 365
//! categories and port lists, and `options.maps_categories`. A prefix or domain listed
//! twice in one entry, or in two entries with neither category nor ports, is a
//! duplicate; Microsoft's endpoint sets do share names across categories and ports.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipnet::IpNet;

use super::Checker;
use crate::addr::normalize_host;
use crate::diag::{Code, Diagnostic, Summary};
use crate::m365::{Category, Pattern, Ports};
use crate::model::Destination;
use crate::policy::DestMeta;

/// The destinations as the classifier matches them, with their destination index.
#[derive(Default)]
pub(super) struct Destinations {
    pub(super) prefixes: Vec<(IpNet, usize)>,
    /// Normalised exact domains, sorted, first of each name kept.
    pub(super) exact: Vec<(String, usize)>,
    /// Normalised wildcard suffixes (`*.x.y` as `x.y`), sorted, first of each kept.
    pub(super) wild: Vec<(String, usize)>,
    /// Domains with `*` inside a label, with their destination index.
    pub(super) patterns: Vec<(Pattern, usize)>,
    /// Each entry's category and ports.
    pub(super) meta: Vec<DestMeta>,
    /// What was first listed where: normalised prefix or domain → (JSON Pointer,
    /// entry index).
    seen: BTreeMap<String, (String, usize)>,
}

/// Microsoft 365's category names, as the help of an unknown one lists them.
const CATEGORY_NAMES: &str = "Optimize, Allow, Default";

impl Checker {
    /// Every destination, in document order; counts them in the summary.
    pub(super) fn destinations(
        &mut self,
        destinations: &[Destination],
        summary: &mut Summary,
    ) -> Destinations {
        let mut out = Destinations::default();
        for (i, d) in destinations.iter().enumerate() {
            out.meta.push(self.destination_meta(i, d));
        }
        for (i, d) in destinations.iter().enumerate() {
            for (j, p) in d.prefixes.iter().enumerate() {
                self.destination_prefix(&format!("/destinations/{i}/prefixes/{j}"), p, i, &mut out);
            }
            for (j, dom) in d.domains.iter().enumerate() {
                self.destination_domain(format!("/destinations/{i}/domains/{j}"), dom, i, &mut out);
            }
        }
        summary.destination_prefixes = out.prefixes.len();
        summary.destination_domains = out.exact.len() + out.wild.len() + out.patterns.len();
        // Every (name, entry) pair is kept: a flow matches every entry listing its name.
        out.exact.sort();
        out.exact.dedup();
        out.wild.sort();
        out.wild.dedup();
        out
    }

    /// An entry's category and ports; an unknown category or a malformed port list is
    /// reported (and then left out, so the entry matches any port).
    fn destination_meta(&mut self, i: usize, d: &Destination) -> DestMeta {
        let category = d.category.as_deref().and_then(|c| {
            let cat = Category::from_name(c);
            if cat.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::UnknownCategory,
                        format!("/destinations/{i}/category"),
                        format!("unknown Microsoft 365 category `{}`", crate::text::shown(c)),
                    )
                    .with_help(format!("use one of {CATEGORY_NAMES} (exact case)")),
                );
            }
            cat
        });
        let ports = d.ports.as_deref().and_then(|text| {
            let ports = Ports::parse(text);
            if ports.is_none() {
                self.push(
                    Diagnostic::new(
                        Code::MalformedPorts,
                        format!("/destinations/{i}/ports"),
                        format!(
                            "`{}` is not a list of ports and ranges from 1 to 65535",
                            crate::text::shown(text)
                        ),
                    )
                    .with_help("write ports and ranges separated by commas, e.g. \"80,443\" or \"3478-3481\""),
                );
            }
            ports
        });
        DestMeta { category, ports }
    }

    /// `options.maps_categories` as a bit set (absent: all three); unknown names are
    /// reported and left out.
    pub(super) fn maps_categories(&mut self, names: Option<&[String]>) -> u8 {
        let Some(names) = names else {
            return Category::ALL.iter().fold(0, |m, c| m | c.bit());
        };
        let mut mask = 0u8;
        for (k, name) in names.iter().enumerate() {
            match Category::from_name(name) {
                Some(c) => mask |= c.bit(),
                None => self.push(
                    Diagnostic::new(
                        Code::UnknownCategory,
                        format!("/options/maps_categories/{k}"),
                        format!(
                            "unknown Microsoft 365 category `{}`",
                            crate::text::shown(name)
                        ),
                    )
                    .with_help(format!("use one of {CATEGORY_NAMES} (exact case)")),
                ),
            }
        }
        mask
    }

    /// Whether listing `key` again at entry `i` is a duplicate: in the same entry, or
    /// in two entries without category and ports (the pre-§7 kind of list).
    fn duplicate_of(&self, key: &str, i: usize, out: &Destinations) -> Option<String> {
        let (first, at) = out.seen.get(key)?;
        let plain = |k: usize| {
            out.meta
                .get(k)
                .is_none_or(|m| m.category.is_none() && m.ports.is_none())
        };
        (*at == i || (plain(*at) && plain(i))).then(|| first.clone())
    }

    fn destination_prefix(&mut self, path: &str, p: &str, i: usize, out: &mut Destinations) {
        let Some(net) = self.prefix_syntax(p, path) else {
            return;
        };
        let key = format!("{net}");
        if let Some(first) = self.duplicate_of(&key, i, out) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateDestination,
                    path,
                    format!("destination prefix {net} is already listed at {first}"),
                )
                .with_help("list it once"),
            );
        } else {
            out.seen.entry(key).or_insert((String::from(path), i));
        }
        out.prefixes.push((net, i));
    }

    fn destination_domain(&mut self, path: String, dom: &str, i: usize, out: &mut Destinations) {
        let norm = normalize_host(dom);
        let (wild, name) = match norm.strip_prefix("*.") {
            Some(rest) => (true, String::from(rest)),
            None => (false, norm.clone()),
        };
        // A `*` stands for characters inside a label; the last label (the top-level
        // domain) must be written out.
        let tld_wild = name.rsplit('.').next().is_some_and(|l| l.contains('*'));
        if tld_wild || !valid_hostname(&name.replace('*', "x")) {
            self.push(
                Diagnostic::new(
                    Code::MalformedDomain,
                    path,
                    format!(
                        "`{}` is not a host name, a `*.` wildcard or a pattern with `*` inside labels",
                        crate::text::shown(dom)
                    ),
                )
                .with_help(
                    "write outlook.office365.com, *.sharepoint.com or *-files.sharepoint.com \
                     (a `*` stays inside one label, and not in the last one)",
                ),
            );
            return;
        }
        if let Some(first) = self.duplicate_of(&norm, i, out) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateDestination,
                    path,
                    format!("destination domain {norm} is already listed at {first}"),
                )
                .with_help("list it once"),
            );
        } else {
            out.seen.entry(norm.clone()).or_insert((path, i));
        }
        if let Some(p) = Pattern::of(&norm) {
            out.patterns.push((p, i));
        } else if wild {
            out.wild.push((name, i));
        } else {
            out.exact.push((name, i));
        }
    }
}

/// A destination host name: [`crate::addr::host_labels`] with `_` allowed.
fn valid_hostname(name: &str) -> bool {
    crate::addr::host_labels(name, true)
}
