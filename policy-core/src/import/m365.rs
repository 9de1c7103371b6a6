//! The Microsoft 365 endpoints web service's response (`endpoints/worldwide`): one
//! destination per endpoint set of the chosen categories.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use super::json::{bad, kind, object, opt_str, opt_strings, ptr, req_str};
use super::{ImportError, ImportReport, SectionKind};
use crate::m365::Category;
use crate::model::{Destination, PolicyDocument, Provenance};

/// The categories an import names, in the order given, once each: Microsoft's
/// spelling in any case, spaces around ignored.
///
/// ```
/// use policy_core::{m365_categories, Category};
/// assert_eq!(m365_categories(&["optimize", " Allow", "Optimize"]).unwrap(),
///            [Category::Optimize, Category::Allow]);
/// // A failing case: a spelling Microsoft does not use.
/// assert!(m365_categories(&["Optimise"]).is_err());
/// ```
pub fn m365_categories<S: AsRef<str>>(names: &[S]) -> Result<Vec<Category>, ImportError> {
    let mut chosen: Vec<Category> = Vec::new();
    for c in names {
        let c = c.as_ref().trim();
        let Some(cat) = ORDER
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(c))
        else {
            return Err(ImportError::UnknownCategory(c.to_string()));
        };
        if !chosen.contains(&cat) {
            chosen.push(cat);
        }
    }
    Ok(chosen)
}

/// The categories as Microsoft lists them, highest first.
const ORDER: [Category; 3] = [Category::Optimize, Category::Allow, Category::Default];

/// The categories an import takes by default: `Optimize` and `Allow` (the endpoint
/// sets Microsoft asks partners to route to the nearest Microsoft edge).
pub const DEFAULT_M365_CATEGORIES: [Category; 2] = [Category::Optimize, Category::Allow];

/// Imports the endpoint sets of `categories` (see [`m365_categories`]) from the
/// endpoints response `v` (named `file`; a bare array of endpoint sets, or
/// `{"version": ..., "endpoints": [...]}`) into `doc`: one destination per set, named
/// `m365 <id> <serviceArea>`, with its urls, ips, category and ports (`tcpPorts`, else
/// `udpPorts`), replacing every earlier `m365 …` entry. `required_only` leaves out the
/// sets marked `"required": false`. What was taken and skipped goes to `report`.
///
/// Errors (then `doc` is unchanged): a malformed response (file, JSON Pointer, reason).
///
/// ```
/// use policy_core::{import_m365, parse_str, ImportReport, DEFAULT_M365_CATEGORIES};
/// let mut doc = parse_str(r#"{"version": 1}"#).unwrap();
/// let sets = serde_json::json!([{"id": 1, "serviceArea": "Exchange", "category": "Optimize",
///   "urls": ["outlook.office365.com"], "tcpPorts": "80,443"}]);
/// let mut report = ImportReport::default();
/// import_m365(&mut doc, "e.json", &sets, &DEFAULT_M365_CATEGORIES, false, &mut report).unwrap();
/// assert_eq!(doc.destinations[0].name, "m365 1 Exchange");
///
/// // A failing case: a category Microsoft does not use, with its pointer.
/// let sets = serde_json::json!([{"id": 1, "serviceArea": "Exchange", "category": "Fast"}]);
/// let e = import_m365(&mut doc, "e.json", &sets, &DEFAULT_M365_CATEGORIES, false, &mut report)
///     .unwrap_err();
/// assert_eq!(e.pointer(), Some("/0/category"));
/// ```
pub fn import_m365(
    doc: &mut PolicyDocument,
    file: &str,
    v: &Value,
    categories: &[Category],
    required_only: bool,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let mut chosen: Vec<Category> = Vec::new();
    for c in categories {
        if !chosen.contains(c) {
            chosen.push(*c);
        }
    }
    let (sets, base_at, version) = match v {
        Value::Array(a) => (a, String::new(), None),
        Value::Object(o) if o.contains_key("endpoints") => {
            let version = match o.get("version") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(bad(
                        file,
                        "/version",
                        format!("expected a string, found {}", kind(other)),
                    ))
                }
            };
            match o.get("endpoints") {
                Some(Value::Array(a)) => (a, String::from("/endpoints"), version),
                Some(other) => {
                    return Err(bad(
                        file,
                        "/endpoints",
                        format!("expected an array of endpoint sets, found {}", kind(other)),
                    ))
                }
                None => return Err(bad(file, "/endpoints", "`endpoints` is missing")),
            }
        }
        other => {
            return Err(bad(
                file,
                "",
                format!(
                    "expected the endpoints web service's array of endpoint sets, found {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut taken: Vec<(Destination, Option<&'static str>)> = Vec::new();
    // By Microsoft's spelling, so the report lists them alphabetically.
    let mut by_category: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut not_required: Vec<String> = Vec::new();
    let mut empty: Vec<String> = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let at = format!("{base_at}/{i}");
        let o = object(file, s, &at)?;
        let id = match o.get("id") {
            Some(n) => n.as_u64().ok_or_else(|| {
                bad(
                    file,
                    &ptr(&at, "id"),
                    format!("expected a whole number, found {}", kind(n)),
                )
            })?,
            None => return Err(bad(file, &ptr(&at, "id"), "`id` is missing")),
        };
        let area = req_str(file, o, &at, "serviceArea")?;
        let category = req_str(file, o, &at, "category")?;
        let Some(category) = Category::from_name(category) else {
            return Err(bad(
                file,
                &ptr(&at, "category"),
                format!("unknown category `{category}` (Optimize, Allow or Default)"),
            ));
        };
        let required = match o.get("required") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad(
                    file,
                    &ptr(&at, "required"),
                    format!("expected a boolean, found {}", kind(other)),
                ))
            }
        };
        let urls = opt_strings(file, o, &at, "urls")?;
        let ips = opt_strings(file, o, &at, "ips")?;
        let tcp = opt_str(file, o, &at, "tcpPorts")?;
        let udp = opt_str(file, o, &at, "udpPorts")?;
        let name = format!("m365 {id} {area}");
        if !chosen.contains(&category) {
            *by_category.entry(category.as_str()).or_default() += 1;
            continue;
        }
        if required_only && !required {
            not_required.push(name);
            continue;
        }
        if urls.is_empty() && ips.is_empty() {
            empty.push(name);
            continue;
        }
        // A set with UDP ports only (Teams media) is matched on those ports: the
        // engine's port is the flow's, whatever its protocol.
        let (ports, note) = match (tcp, udp) {
            (Some(t), _) => (Some(t.to_string()), None),
            (None, Some(u)) => (
                Some(u.to_string()),
                Some("ports from udpPorts: no tcpPorts"),
            ),
            (None, None) => (None, None),
        };
        taken.push((
            Destination {
                name,
                prefixes: ips,
                domains: urls,
                category: Some(category.as_str().to_string()),
                ports,
            },
            note,
        ));
    }
    report.line(
        SectionKind::Read,
        format!(
            "m365: read {file}{}: {} endpoint sets",
            version
                .as_deref()
                .map_or_else(String::new, |v| format!(" (version {v})")),
            sets.len()
        ),
    );
    // This import is the policy's Microsoft 365 part: earlier `m365 …` entries go.
    let before = doc.destinations.len();
    doc.destinations.retain(|d| !d.name.starts_with("m365 "));
    let replaced = before - doc.destinations.len();
    let names: Vec<&str> = chosen.iter().map(|c| c.as_str()).collect();
    report.line(
        SectionKind::Took,
        format!(
            "took {} endpoint set{} ({}){}:",
            taken.len(),
            if taken.len() == 1 { "" } else { "s" },
            names.join(", "),
            if replaced > 0 {
                format!(", replacing {replaced} earlier m365 entries")
            } else {
                String::new()
            }
        ),
    );
    for (d, note) in taken {
        report.item(format!(
            "{:<22} {:<8} {} domain{}, {} prefix{}, ports {}{}",
            d.name,
            d.category.as_deref().unwrap_or("-"),
            d.domains.len(),
            if d.domains.len() == 1 { "" } else { "s" },
            d.prefixes.len(),
            if d.prefixes.len() == 1 { "" } else { "es" },
            d.ports.as_deref().unwrap_or("any"),
            note.map_or_else(String::new, |n| format!(" ({n})"))
        ));
        doc.destinations.push(d);
    }
    for (c, n) in &by_category {
        report.line(
            SectionKind::Skipped,
            format!("skipped {n} {c} endpoint sets: category not chosen"),
        );
    }
    if !not_required.is_empty() {
        report.line(
            SectionKind::Skipped,
            format!(
                "skipped {} endpoint sets marked \"required\": false (--required-only): {}",
                not_required.len(),
                not_required.join(", ")
            ),
        );
    }
    if !empty.is_empty() {
        report.line(
            SectionKind::Skipped,
            format!(
                "skipped {} endpoint sets with neither urls nor ips: {}",
                empty.len(),
                empty.join(", ")
            ),
        );
    }
    doc.provenance.retain(|p| p.kind != "m365");
    doc.provenance.push(Provenance {
        kind: String::from("m365"),
        files: alloc::vec![file.to_string()],
        change_number: None,
        cloud: None,
        version,
        selected: names.iter().map(|s| s.to_string()).collect(),
    });
    Ok(())
}
