//! Azure peering services and their prefixes (Microsoft.Peering ARM bodies,
//! api-version 2022-10-01), in any mix, recognised by content: the provider's peering
//! services become exactly the policy's registrations.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use super::json::{bad, kind, object, opt_str, ptr, req_str};
use super::{ImportError, ImportReport, SectionKind};
use crate::model::{PolicyDocument, PrefixEntry, Provenance, Registration};

/// A peering service body.
struct Service {
    name: String,
    location: String,
    provider: String,
    primary: Option<String>,
    backup: Option<String>,
    customer: Option<String>,
    file: usize,
    at: String,
}

/// A peering service prefix body.
struct Prefix {
    service: String,
    prefix: String,
    state: String,
    key: Option<String>,
    file: usize,
    at: String,
}

/// The peering service a prefix's ARM id names (`.../peeringServices/{name}/prefixes/{p}`).
pub(super) fn service_of(id: &str) -> Option<&str> {
    let segs: Vec<&str> = id.split('/').collect();
    let i = segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("peeringServices"))?;
    let name = *segs.get(i + 1)?;
    let prefixes = segs.get(i + 2)?;
    let prefix = segs.get(i + 3)?;
    (prefixes.eq_ignore_ascii_case("prefixes") && !name.is_empty() && !prefix.is_empty())
        .then_some(name)
}

const PREFIX_KEYS: [&str; 3] = ["prefix", "peeringServicePrefixKey", "prefixValidationState"];
const SERVICE_KEYS: [&str; 2] = ["peeringServiceLocation", "peeringServiceProvider"];

/// An Azure import being gathered: add each file's body ([`AzureImport::add`]), then
/// apply them to a policy at once ([`AzureImport::apply`]). Every input of one import
/// must be added before applying: the provider's registrations become exactly the
/// peering services added.
///
/// ```
/// use policy_core::{parse_str, AzureImport, ImportReport};
/// let mut doc = parse_str(r#"{"version": 1, "provider": {"name": "Contoso"},
///   "edges": [{"id": "sea", "lat": 47.6, "lon": -122.3, "peering_location": "Seattle",
///              "links": [{"id": "sea-1"}, {"id": "sea-2"}]}]}"#).unwrap();
/// let services = serde_json::json!([{"name": "fab", "properties": {
///   "peeringServiceLocation": "Washington", "peeringServiceProvider": "Contoso",
///   "providerPrimaryPeeringLocation": "Seattle"}}]);
/// let mut azure = AzureImport::new();
/// azure.add("services.json", &services).unwrap();
/// let mut report = ImportReport::default();
/// azure.apply(&mut doc, "policy.json", &mut report).unwrap();
/// assert_eq!(doc.registrations[0].primary_edge.as_deref(), Some("sea"));
///
/// // A failing case: a body that is neither a peering service nor a prefix.
/// let other = serde_json::json!({"value": [{"name": "x", "properties": {"country": "c"}}]});
/// let e = AzureImport::new().add("other.json", &other).unwrap_err();
/// assert_eq!(e.pointer(), Some("/value/0/properties"));
/// ```
#[derive(Default)]
pub struct AzureImport {
    files: Vec<String>,
    services: Vec<Service>,
    prefixes: Vec<Prefix>,
}

impl AzureImport {
    /// An empty import.
    pub fn new() -> AzureImport {
        AzureImport::default()
    }

    /// Reads one file's body: an array of resources, `{"value": [...]}` (as the REST
    /// API returns lists) or one resource. Errors: the first malformed value, with
    /// `name` and its JSON Pointer.
    pub fn add(&mut self, name: &str, body: &Value) -> Result<(), ImportError> {
        let fi = self.files.len();
        self.files.push(name.to_string());
        match body {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.item(name, fi, item, &format!("/{i}"))?;
                }
            }
            Value::Object(o) if o.contains_key("value") => {
                let items = o
                    .get("value")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad(name, "/value", "expected an array of resources"))?;
                for (i, item) in items.iter().enumerate() {
                    self.item(name, fi, item, &format!("/value/{i}"))?;
                }
            }
            Value::Object(_) => self.item(name, fi, body, "")?,
            other => {
                return Err(bad(
                    name,
                    "",
                    format!(
                        "expected an array of resources, {{\"value\": [...]}} or one resource, \
                         found {}",
                        kind(other)
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Reads one resource object into `services` or `prefixes`.
    fn item(&mut self, file: &str, fi: usize, item: &Value, at: &str) -> Result<(), ImportError> {
        let obj = object(file, item, at)?;
        let pat = ptr(at, "properties");
        let props = match obj.get("properties") {
            Some(p) => object(file, p, &pat)?,
            None => {
                return Err(bad(
                    file,
                    at,
                    "no `properties`: not a peering service or peering service prefix resource",
                ))
            }
        };
        let is_prefix = PREFIX_KEYS.iter().any(|k| props.contains_key(*k));
        let is_service = SERVICE_KEYS.iter().any(|k| props.contains_key(*k));
        match (is_service, is_prefix) {
            (true, true) => Err(bad(
                file,
                &pat,
                "has both peering service and prefix properties: cannot tell which it is",
            )),
            (false, false) => Err(bad(
                file,
                &pat,
                "neither a peering service (properties.peeringServiceLocation, \
                 peeringServiceProvider) nor a peering service prefix (properties.prefix, \
                 prefixValidationState, peeringServicePrefixKey)",
            )),
            (true, false) => {
                let name = req_str(file, obj, at, "name")?;
                let customer = match obj.get("tags") {
                    None | Some(Value::Null) => None,
                    Some(t) => {
                        let tat = ptr(at, "tags");
                        opt_str(file, object(file, t, &tat)?, &tat, "customer")?.map(String::from)
                    }
                };
                self.services.push(Service {
                    name: name.to_string(),
                    location: req_str(file, props, &pat, "peeringServiceLocation")?.to_string(),
                    provider: req_str(file, props, &pat, "peeringServiceProvider")?.to_string(),
                    primary: opt_str(file, props, &pat, "providerPrimaryPeeringLocation")?
                        .map(String::from),
                    backup: opt_str(file, props, &pat, "providerBackupPeeringLocation")?
                        .map(String::from),
                    customer,
                    file: fi,
                    at: at.to_string(),
                });
                Ok(())
            }
            (false, true) => {
                let id = req_str(file, obj, at, "id")?;
                let service = service_of(id).ok_or_else(|| {
                    bad(
                        file,
                        &ptr(at, "id"),
                        "`id` names no peering service prefix \
                         (…/peeringServices/{name}/prefixes/{prefix})",
                    )
                })?;
                self.prefixes.push(Prefix {
                    service: service.to_string(),
                    prefix: req_str(file, props, &pat, "prefix")?.to_string(),
                    state: req_str(file, props, &pat, "prefixValidationState")?.to_string(),
                    key: opt_str(file, props, &pat, "peeringServicePrefixKey")?.map(String::from),
                    file: fi,
                    at: at.to_string(),
                });
                Ok(())
            }
        }
    }

    fn file(&self, i: usize) -> &str {
        self.files.get(i).map_or("-", String::as_str)
    }

    /// `file at pointer`, for the report.
    fn here(&self, fi: usize, at: &str) -> String {
        format!(
            "{} at {}",
            self.file(fi),
            if at.is_empty() { "/" } else { at }
        )
    }

    /// Applies the import to `doc` (named `policy` in messages): the registrations
    /// become this provider's peering services (others' skipped, those no longer in
    /// Azure removed), each prefix's telemetry and each registration's coordinates
    /// kept from `doc`, primary and backup mapped through the edges'
    /// `peering_location`. What was taken, skipped and removed goes to `report`.
    ///
    /// Errors (then `doc` is unchanged; `report` holds the lines written so far): no
    /// `provider.name` in `doc`, no peering service of this provider in the inputs, a
    /// peering service named twice, a peering location no edge (or two) has.
    pub fn apply(
        &self,
        doc: &mut PolicyDocument,
        policy: &str,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let services = &self.services;
        let prefixes = &self.prefixes;
        let files = &self.files;
        let provider = doc
            .provider
            .as_ref()
            .map(|p| p.name.clone())
            .ok_or_else(|| ImportError::NoProvider {
                policy: policy.to_string(),
            })?;
        // One body per peering service name.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, s) in services.iter().enumerate() {
            if let Some(&first) = seen.get(&s.name.to_ascii_lowercase()) {
                let f = services
                    .get(first)
                    .map_or(String::new(), |f| self.here(f.file, &f.at));
                return Err(bad(
                    self.file(s.file),
                    &ptr(&s.at, "name"),
                    format!("peering service `{}` appears twice (first at {f})", s.name),
                ));
            }
            seen.insert(s.name.to_ascii_lowercase(), i);
        }
        let ours_p = |s: &Service| s.provider.trim().eq_ignore_ascii_case(provider.trim());
        let ours: Vec<&Service> = services.iter().filter(|s| ours_p(s)).collect();
        let others: Vec<&Service> = services.iter().filter(|s| !ours_p(s)).collect();
        if ours.is_empty() {
            // Taking none would remove every registration: a wrong file or provider name.
            let theirs: BTreeSet<&str> = others.iter().map(|s| s.provider.as_str()).collect();
            return Err(ImportError::NoServiceOfProvider {
                provider,
                policy: policy.to_string(),
                services: others.len(),
                providers: theirs.into_iter().map(String::from).collect(),
            });
        }

        let old: BTreeMap<&str, &Registration> = doc
            .registrations
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        let mut by_service: BTreeMap<String, Vec<&Prefix>> = BTreeMap::new();
        for p in prefixes {
            by_service
                .entry(p.service.to_ascii_lowercase())
                .or_default()
                .push(p);
        }

        report.line(
            SectionKind::Read,
            format!(
                "azure: read {} file{}: {} peering service{}, {} prefix{}",
                files.len(),
                plural(files.len(), "s"),
                services.len(),
                plural(services.len(), "s"),
                prefixes.len(),
                plural(prefixes.len(), "es"),
            ),
        );
        report.line(
            SectionKind::Took,
            format!(
                "took {} peering service{} of {provider} as registrations:",
                ours.len(),
                plural(ours.len(), "s")
            ),
        );
        let mut new_regs: BTreeMap<String, Registration> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for s in &ours {
            let f = self.file(s.file);
            let pat = ptr(&s.at, "properties");
            let primary = match s.primary.as_deref() {
                None | Some("None") => None,
                Some(loc) => Some(edge_for(
                    doc,
                    loc,
                    f,
                    &ptr(&pat, "providerPrimaryPeeringLocation"),
                    policy,
                )?),
            };
            let backup = match s.backup.as_deref() {
                None => None,
                Some("None") => Some(String::from("None")),
                Some(loc) => Some(edge_for(
                    doc,
                    loc,
                    f,
                    &ptr(&pat, "providerBackupPeeringLocation"),
                    policy,
                )?),
            };
            let before = old.get(s.name.as_str()).copied();
            let before_prefixes: BTreeMap<&str, &PrefixEntry> = before
                .map(|r| r.prefixes.iter().map(|p| (p.prefix.as_str(), p)).collect())
                .unwrap_or_default();
            let mut kept_telemetry = 0usize;
            let mut notes: Vec<String> = Vec::new();
            let entries: Vec<PrefixEntry> = by_service
                .get(&s.name.to_ascii_lowercase())
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let prev = before_prefixes.get(p.prefix.as_str());
                            let telemetry = prev.is_some_and(|e| e.telemetry);
                            kept_telemetry += usize::from(telemetry);
                            match prev {
                                Some(e) if e.state != p.state => {
                                    notes.push(format!("{} {} -> {}", p.prefix, e.state, p.state));
                                }
                                Some(_) => {}
                                None if before.is_some() => {
                                    notes.push(format!("added {}", p.prefix));
                                }
                                None => {}
                            }
                            PrefixEntry {
                                prefix: p.prefix.clone(),
                                state: p.state.clone(),
                                telemetry,
                                key: p.key.clone(),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Some(b) = before {
                for e in &b.prefixes {
                    if !entries.iter().any(|n| n.prefix == e.prefix) {
                        notes.push(format!(
                            "removed {}{}",
                            e.prefix,
                            if e.telemetry { " (had telemetry)" } else { "" }
                        ));
                    }
                }
            }
            if kept_telemetry > 0 {
                notes.push(format!("telemetry kept on {kept_telemetry}"));
            }
            if s.primary.as_deref() == Some("None") {
                notes.push(String::from(
                    "primary peering location \"None\": no pinned primary",
                ));
            }
            let customer = s
                .customer
                .clone()
                .or_else(|| before.and_then(|b| b.customer.clone()));
            if s.customer.is_none() {
                notes.push(String::from(if customer.is_some() {
                    "no customer tag: customer kept"
                } else {
                    "no customer tag"
                }));
            }
            report.item(format!(
                "{:<18} {:<8} {:<16} {:<10} {} prefix{}{}{}",
                s.name,
                if before.is_some() { "updated" } else { "added" },
                s.location,
                format!(
                    "{}/{}",
                    primary.as_deref().unwrap_or("-"),
                    backup.as_deref().unwrap_or("-")
                ),
                entries.len(),
                plural(entries.len(), "es"),
                if notes.is_empty() { "" } else { ": " },
                notes.join("; ")
            ));
            let reg = Registration {
                id: s.name.clone(),
                customer,
                location: Some(s.location.clone()),
                lat: before.and_then(|b| b.lat),
                lon: before.and_then(|b| b.lon),
                primary_edge: primary,
                backup_edge: backup,
                providers: before.and_then(|b| b.providers.clone()),
                prefixes: entries,
            };
            order.push(reg.id.clone());
            new_regs.insert(reg.id.clone(), reg);
        }
        if !others.is_empty() {
            report.line(
                SectionKind::Skipped,
                format!(
                    "skipped {} peering service{} of other providers:",
                    others.len(),
                    plural(others.len(), "s")
                ),
            );
            for s in &others {
                report.item(format!(
                    "{} ({}), {}",
                    s.name,
                    s.provider,
                    self.here(s.file, &s.at)
                ));
            }
        }
        let ours_names: BTreeSet<String> =
            ours.iter().map(|s| s.name.to_ascii_lowercase()).collect();
        let skipped: Vec<&Prefix> = prefixes
            .iter()
            .filter(|p| !ours_names.contains(&p.service.to_ascii_lowercase()))
            .collect();
        if !skipped.is_empty() {
            report.line(
                SectionKind::Skipped,
                format!(
                    "skipped {} prefix{}:",
                    skipped.len(),
                    plural(skipped.len(), "es")
                ),
            );
            for p in skipped {
                let why = match others
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&p.service))
                {
                    Some(s) => format!("a peering service of {}", s.provider),
                    None => String::from("no such peering service in the inputs"),
                };
                report.item(format!(
                    "{} of {}: {why}, {}",
                    p.prefix,
                    p.service,
                    self.here(p.file, &p.at)
                ));
            }
        }
        // Registrations: the policy's order for those still in Azure, then the new ones.
        let mut regs = Vec::with_capacity(new_regs.len());
        let mut removed = Vec::new();
        for r in &doc.registrations {
            match new_regs.remove(&r.id) {
                Some(n) => regs.push(n),
                None => removed.push(r.id.clone()),
            }
        }
        for id in &order {
            if let Some(n) = new_regs.remove(id) {
                regs.push(n);
            }
        }
        if !removed.is_empty() {
            report.line(
                SectionKind::Removed,
                format!(
                    "removed {} registration{} no longer in Azure as peering services of \
                     {provider}:",
                    removed.len(),
                    plural(removed.len(), "s")
                ),
            );
            for id in removed {
                report.item(id);
            }
        }
        doc.registrations = regs;
        doc.provenance.retain(|p| p.kind != "azure");
        doc.provenance.push(Provenance {
            kind: String::from("azure"),
            files: files.clone(),
            change_number: None,
            cloud: None,
            version: None,
            selected: Vec::new(),
        });
        Ok(())
    }
}

/// `suffix` unless `n` is 1.
fn plural(n: usize, suffix: &'static str) -> &'static str {
    if n == 1 {
        ""
    } else {
        suffix
    }
}

/// The edge whose `peering_location` is `loc` (ASCII case-insensitively).
fn edge_for(
    doc: &PolicyDocument,
    loc: &str,
    file: &str,
    at: &str,
    policy: &str,
) -> Result<String, ImportError> {
    let mut found = doc.edges.iter().filter(|e| {
        e.peering_location
            .as_deref()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case(loc.trim()))
    });
    match (found.next(), found.next()) {
        (Some(e), None) => Ok(e.id.clone()),
        (Some(a), Some(b)) => Err(bad(
            file,
            at,
            format!(
                "peering location \"{loc}\" is the peering_location of two edges of {policy} \
                 (`{}` and `{}`)",
                a.id, b.id
            ),
        )),
        (None, _) => {
            let known: Vec<&str> = doc
                .edges
                .iter()
                .filter_map(|e| e.peering_location.as_deref())
                .take(8)
                .collect();
            let known = if known.is_empty() {
                String::from("no edge has a peering_location")
            } else {
                format!("edges' peering locations: {}", known.join(", "))
            };
            Err(bad(
                file,
                at,
                format!(
                    "peering location \"{loc}\" is not the peering_location of any edge of \
                     {policy} ({known}); add it to the edge it names"
                ),
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_id_names_its_service() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Peering/peeringServices/fab-wa/prefixes/p1";
        assert_eq!(service_of(id), Some("fab-wa"));
        assert_eq!(service_of(&id.to_lowercase()), Some("fab-wa"));
        // A service id, or a prefix id without its prefix, names no prefix.
        assert_eq!(
            service_of("/subscriptions/s/providers/Microsoft.Peering/peeringServices/fab-wa"),
            None
        );
        assert_eq!(service_of(".../peeringServices/fab-wa/prefixes/"), None);
        assert_eq!(service_of(".../peeringServices//prefixes/p"), None);
    }
}
