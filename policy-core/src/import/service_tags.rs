//! Azure's weekly Service Tags file (`ServiceTags_Public_*.json`): one destination per
//! chosen tag.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::json::{bad, kind, object, opt_str, opt_strings, ptr, req_str};
use super::{ImportError, ImportReport, SectionKind};
use crate::model::{Destination, PolicyDocument, Provenance};

/// What a Service Tags file says of itself: its `changeNumber`, `cloud` and tag
/// names (`values[].name`), checked as an import checks them.
pub struct ServiceTagsFile<'v> {
    change_number: Option<u64>,
    cloud: Option<String>,
    values: &'v [Value],
    names: Vec<&'v str>,
}

impl<'v> ServiceTagsFile<'v> {
    /// Reads the file's head and tag names. Errors: a malformed `changeNumber`,
    /// `cloud`, `values` or tag name, with `file` and its JSON Pointer.
    pub fn read(file: &str, v: &'v Value) -> Result<ServiceTagsFile<'v>, ImportError> {
        let top = object(file, v, "")?;
        let change_number = match top.get("changeNumber") {
            None | Some(Value::Null) => None,
            Some(n) => Some(n.as_u64().ok_or_else(|| {
                bad(
                    file,
                    "/changeNumber",
                    format!("expected a whole number, found {}", kind(n)),
                )
            })?),
        };
        let cloud = opt_str(file, top, "", "cloud")?.map(String::from);
        let values = match top.get("values") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(bad(
                    file,
                    "/values",
                    format!("expected an array of tags, found {}", kind(other)),
                ))
            }
            None => {
                return Err(bad(
                    file,
                    "/values",
                    "`values` is missing: not a Service Tags file",
                ))
            }
        };
        let mut names: Vec<&str> = Vec::with_capacity(values.len());
        for (i, t) in values.iter().enumerate() {
            let at = format!("/values/{i}");
            names.push(req_str(file, object(file, t, &at)?, &at, "name")?);
        }
        Ok(ServiceTagsFile {
            change_number,
            cloud,
            values,
            names,
        })
    }

    /// The tag names, in the file's order.
    pub fn names(&self) -> &[&'v str] {
        &self.names
    }

    /// The file's `changeNumber`, when present.
    pub fn change_number(&self) -> Option<u64> {
        self.change_number
    }

    /// The file's `cloud`, when present.
    pub fn cloud(&self) -> Option<&str> {
        self.cloud.as_deref()
    }
}

/// Edit distance between `a` and `b` when at most `limit`, else `None`.
fn within(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = alloc::vec![0usize; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        let mut best = usize::MAX;
        if let Some(c0) = cur.first_mut() {
            *c0 = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != cb));
            let del = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            let d = sub.min(del).min(ins);
            if let Some(c) = cur.get_mut(j + 1) {
                *c = d;
            }
            best = best.min(d);
        }
        if best > limit {
            return None;
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().filter(|d| *d <= limit)
}

/// The candidate closest to `name`: the same name in another case, else the nearest
/// by edit distance (at most a third of the name, 4 at most). Bounded: names over 80
/// characters are not compared, and only the first 10,000 candidates are looked at
/// (a Service Tags file has about 3,000 tags).
pub(super) fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    const MAX_CHARS: usize = 80;
    let lower = |s: &str| -> Vec<char> { s.chars().flat_map(char::to_lowercase).collect() };
    if name.chars().count() > MAX_CHARS {
        return None;
    }
    let a = lower(name);
    let limit = (a.len() / 3).clamp(1, 4);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates.iter().take(10_000) {
        if c.chars().count() > MAX_CHARS {
            continue;
        }
        let b = lower(c);
        let lim = best.map_or(limit, |(d, _)| d.saturating_sub(1));
        if let Some(d) = within(&a, &b, lim) {
            if d == 0 {
                return Some(c);
            }
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Puts `entry` in place of the first destination of the same name (dropping the
/// others), or at the end; returns whether one was replaced.
pub(super) fn put_destination(dests: &mut Vec<Destination>, entry: Destination) -> bool {
    let first = dests.iter().position(|d| d.name == entry.name);
    match first {
        Some(i) => {
            let name = entry.name.clone();
            if let Some(slot) = dests.get_mut(i) {
                *slot = entry;
            }
            let mut k = 0usize;
            dests.retain(|d| {
                let keep = k <= i || d.name != name;
                k += 1;
                keep
            });
            true
        }
        None => {
            dests.push(entry);
            false
        }
    }
}

/// Imports the tags `tags` of the Service Tags file `v` (named `file`) into `doc`: one
/// destination per tag (its IPv4 and IPv6 `addressPrefixes`, no category), in place of
/// an entry of the same name; the provenance records the file's `changeNumber` and
/// `cloud`. What was taken and skipped goes to `report`.
///
/// Errors (then `doc` is unchanged): a malformed file (file, JSON Pointer, reason), a
/// tag the file does not have ([`ImportError::UnknownTag`], with a suggestion).
///
/// ```
/// use policy_core::{import_service_tags, parse_str, ImportReport};
/// let mut doc = parse_str(r#"{"version": 1}"#).unwrap();
/// let file = serde_json::json!({"changeNumber": 7, "cloud": "Public", "values": [
///   {"name": "AzureFrontDoor.Frontend", "properties": {"addressPrefixes": ["13.107.246.0/24"]}}]});
/// let mut report = ImportReport::default();
/// let tags = ["AzureFrontDoor.Frontend".to_string()];
/// import_service_tags(&mut doc, "tags.json", &file, &tags, &mut report).unwrap();
/// assert_eq!(doc.destinations[0].prefixes, ["13.107.246.0/24"]);
///
/// // A failing case: a misspelt tag, with a suggestion.
/// let tags = ["AzureFrontdoor.Frontend".to_string()];
/// let e = import_service_tags(&mut doc, "tags.json", &file, &tags, &mut report).unwrap_err();
/// assert!(e.to_string().ends_with("did you mean `AzureFrontDoor.Frontend`?"));
/// ```
pub fn import_service_tags(
    doc: &mut PolicyDocument,
    file: &str,
    v: &Value,
    tags: &[String],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let head = ServiceTagsFile::read(file, v)?;
    let values = head.values;
    let names = &head.names;
    let mut chosen: Vec<&str> = Vec::new();
    for t in tags {
        if !chosen.contains(&t.as_str()) {
            chosen.push(t);
        }
    }
    let mut entries = Vec::new();
    for tag in &chosen {
        let Some(i) = names.iter().position(|n| n == tag) else {
            return Err(ImportError::UnknownTag {
                file: file.to_string(),
                tag: tag.to_string(),
                tags: names.len(),
                suggestion: did_you_mean(tag, names).map(String::from),
            });
        };
        let at = format!("/values/{i}");
        let t = values.get(i).map_or(&Value::Null, |t| t);
        let pat = ptr(&at, "properties");
        let props: &Map<String, Value> = match object(file, t, &at)?.get("properties") {
            Some(p) => object(file, p, &pat)?,
            None => return Err(bad(file, &pat, "`properties` is missing")),
        };
        if !props.contains_key("addressPrefixes") {
            return Err(bad(
                file,
                &ptr(&pat, "addressPrefixes"),
                "`addressPrefixes` is missing",
            ));
        }
        let prefixes = opt_strings(file, props, &pat, "addressPrefixes")?;
        entries.push((tag.to_string(), prefixes));
    }
    report.line(
        SectionKind::Read,
        format!(
            "service-tags: read {file} (changeNumber {}, cloud {}): {} tags",
            head.change_number
                .map_or_else(|| String::from("-"), |n| n.to_string()),
            head.cloud.as_deref().unwrap_or("-"),
            names.len()
        ),
    );
    report.line(
        SectionKind::Took,
        format!(
            "took {} tag{} as destinations (no category):",
            entries.len(),
            if entries.len() == 1 { "" } else { "s" }
        ),
    );
    for (name, prefixes) in entries {
        let v4 = prefixes.iter().filter(|p| !p.contains(':')).count();
        let v6 = prefixes.len() - v4;
        let replaced = put_destination(
            &mut doc.destinations,
            Destination {
                name: name.clone(),
                prefixes,
                domains: Vec::new(),
                category: None,
                ports: None,
            },
        );
        report.item(format!(
            "{name}: {} prefixes (IPv4 {v4}, IPv6 {v6}){}",
            v4 + v6,
            if replaced {
                ", replacing the entry of that name"
            } else {
                ""
            }
        ));
    }
    let skipped = names.len().saturating_sub(chosen.len());
    report.line(
        SectionKind::Skipped,
        format!("skipped {skipped} tags: not chosen with --tag"),
    );
    // Earlier imports of these tags are superseded.
    for p in doc
        .provenance
        .iter_mut()
        .filter(|p| p.kind == "service-tags")
    {
        p.selected.retain(|s| !chosen.contains(&s.as_str()));
    }
    doc.provenance
        .retain(|p| p.kind != "service-tags" || !p.selected.is_empty());
    doc.provenance.push(Provenance {
        kind: String::from("service-tags"),
        files: alloc::vec![file.to_string()],
        change_number: head.change_number,
        cloud: head.cloud.clone(),
        version: None,
        selected: chosen.iter().map(|s| s.to_string()).collect(),
    });
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_is_near_and_bounded() {
        let names = ["AzureCloud", "AzureFrontDoor.Frontend", "Storage"];
        assert_eq!(
            did_you_mean("azurefrontdoor.frontend", &names),
            Some("AzureFrontDoor.Frontend")
        );
        assert_eq!(did_you_mean("AzureCloude", &names), Some("AzureCloud"));
        assert_eq!(did_you_mean("Compute", &names), None);
        assert_eq!(did_you_mean(&"x".repeat(81), &names), None);
    }

    #[test]
    fn a_destination_replaces_every_entry_of_its_name_in_place() {
        let d = |name: &str, p: &str| Destination {
            name: name.into(),
            prefixes: alloc::vec![p.into()],
            domains: Vec::new(),
            category: None,
            ports: None,
        };
        let mut v = alloc::vec![d("A", "1"), d("B", "2"), d("A", "3"), d("C", "4")];
        assert!(put_destination(&mut v, d("A", "9")));
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|x| (x.name.as_str(), x.prefixes[0].as_str()))
            .collect();
        assert_eq!(got, [("A", "9"), ("B", "2"), ("C", "4")]);
        assert!(!put_destination(&mut v, d("D", "5")));
        assert_eq!(v.last().unwrap().name, "D");
    }
}
