//! `mapsctl import`: a policy's registrations and destinations from what Azure and
//! Microsoft publish (SPEC §8), keeping the rest of the policy.
//!
//! - `azure`: Microsoft.Peering ARM bodies (api-version 2022-10-01), peering services
//!   and their prefixes in any mix, recognised by content;
//! - `service-tags`: Azure's weekly Service Tags file, one destination per chosen tag;
//! - `m365`: the Microsoft 365 endpoints web service's response, one destination per
//!   endpoint set of the chosen categories.
//!
//! Each writes the whole updated policy (pretty JSON) and, on standard error, what it
//! took, what it skipped and why. Exit codes: 1 for malformed input (file, JSON Pointer,
//! reason), an unmapped peering location, or an updated policy that would not validate
//! (nothing is written then); 2 for a file that cannot be read or written, or a wrong
//! argument (an unknown tag or category).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use policy_core::{Destination, PolicyDocument, PrefixEntry, Provenance, Registration, Report};
use serde_json::{Map, Value};

use super::{print_out, read_input, terminal_safe, validate};

/// What to import.
#[derive(Subcommand, Debug)]
pub enum Source {
    /// Azure peering services and their prefixes (Microsoft.Peering ARM JSON, as
    /// `az peering service list` / `az peering service prefix list` print them): the
    /// provider's registrations become exactly its peering services in the files.
    Azure {
        /// The policy to update (its provider, edges' `peering_location`, telemetry).
        #[arg(long)]
        policy: PathBuf,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Peering service and prefix bodies: arrays, `{"value": [...]}` or one object.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Azure Service Tags (`ServiceTags_Public_*.json`): one destination per chosen tag.
    ServiceTags {
        /// The policy to update.
        #[arg(long)]
        policy: PathBuf,
        /// A tag to import (`values[].name`), repeatable.
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The Service Tags file.
        file: PathBuf,
    },
    /// Microsoft 365 endpoints (the web service's `endpoints` response): one destination
    /// per endpoint set of the chosen categories.
    M365 {
        /// The policy to update.
        #[arg(long)]
        policy: PathBuf,
        /// Categories to import (comma-separated: Optimize, Allow, Default).
        #[arg(long, value_delimiter = ',', default_values_t = [String::from("Optimize"), String::from("Allow")])]
        categories: Vec<String>,
        /// Leave out the endpoint sets marked `"required": false`.
        #[arg(long)]
        required_only: bool,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The endpoints response (JSON).
        file: PathBuf,
    },
}

/// Runs an import; returns the exit code.
pub fn run(source: &Source) -> u8 {
    let (policy, out) = match source {
        Source::Azure { policy, out, .. }
        | Source::ServiceTags { policy, out, .. }
        | Source::M365 { policy, out, .. } => (policy.as_path(), out.as_deref()),
    };
    let mut doc = match base(policy) {
        Ok(d) => d,
        Err(f) => return f.report(),
    };
    let mut log = String::new();
    let res = match source {
        Source::Azure { files, .. } => azure(&mut doc, policy, files, &mut log),
        Source::ServiceTags { tags, file, .. } => service_tags(&mut doc, tags, file, &mut log),
        Source::M365 {
            categories,
            required_only,
            file,
            ..
        } => m365(&mut doc, categories, *required_only, file, &mut log),
    };
    match res {
        Ok(()) => finish(&doc, &log, out),
        Err(f) => {
            eprint!("{}", terminal_safe(&log, true));
            f.report()
        }
    }
}

// ---- failures ------------------------------------------------------------------------

/// Why an import stops: the message and the exit code.
struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    /// Malformed or unusable input: exit 1.
    fn input(message: String) -> Fail {
        Fail { code: 1, message }
    }

    /// An unreadable file or a wrong argument: exit 2.
    fn usage(message: String) -> Fail {
        Fail { code: 2, message }
    }

    fn report(self) -> u8 {
        eprintln!("{}", terminal_safe(&self.message, true));
        self.code
    }
}

/// Malformed input at `pointer` of `file`.
fn bad(file: &Path, pointer: &str, reason: impl std::fmt::Display) -> Fail {
    let at = if pointer.is_empty() { "/" } else { pointer };
    Fail::input(format!("mapsctl: {}: at {at}: {reason}", file.display()))
}

/// `base` extended by one JSON Pointer reference token.
fn ptr(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- reading JSON with pointers -------------------------------------------------------

/// Reads and parses a JSON input file.
fn load_json(file: &Path) -> Result<Value, Fail> {
    let bytes = read_input(file).map_err(Fail::usage)?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    serde_json::from_slice(bytes).map_err(|e| {
        Fail::input(format!(
            "mapsctl: {}:{}:{}: at /: not JSON: {e}",
            file.display(),
            e.line(),
            e.column()
        ))
    })
}

fn object<'v>(file: &Path, v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, Fail> {
    v.as_object()
        .ok_or_else(|| bad(file, at, format!("expected an object, found {}", kind(v))))
}

fn opt_str<'v>(
    file: &Path,
    obj: &'v Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'v str>, Fail> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            file,
            &ptr(at, key),
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn req_str<'v>(
    file: &Path,
    obj: &'v Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'v str, Fail> {
    opt_str(file, obj, at, key)?
        .ok_or_else(|| bad(file, &ptr(at, key), format!("`{key}` is missing")))
}

/// An optional array of strings.
fn opt_strings(
    file: &Path,
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Vec<String>, Fail> {
    let at = ptr(at, key);
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(
                    file,
                    &ptr(&at, &i.to_string()),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(bad(
            file,
            &at,
            format!("expected an array of strings, found {}", kind(other)),
        )),
    }
}

/// The policy being updated.
fn base(path: &Path) -> Result<PolicyDocument, Fail> {
    let bytes = read_input(path).map_err(Fail::usage)?;
    policy_core::parse_bytes(&bytes).map_err(|diags| {
        let report = Report::new(diags, None, false);
        Fail::input(format!(
            "mapsctl: {} is not a policy document; nothing was imported:\n{}",
            path.display(),
            validate::render_text(&report, &path.display().to_string(), &bytes).trim_end()
        ))
    })
}

// ---- writing --------------------------------------------------------------------------

/// Validates the updated policy and writes it, with the log and the verdict on stderr;
/// an invalid policy is not written.
fn finish(doc: &PolicyDocument, log: &str, out: Option<&Path>) -> u8 {
    eprint!("{}", terminal_safe(log, true));
    let text = match serde_json::to_string_pretty(doc) {
        Ok(t) => t + "\n",
        Err(e) => {
            eprintln!("mapsctl: cannot encode the policy: {e}");
            return 2;
        }
    };
    let name = out.map_or_else(
        || String::from("<standard output>"),
        |p| p.display().to_string(),
    );
    let v = policy_core::validate(text.as_bytes(), false);
    if !v.report.valid {
        let errors = Report::new(v.report.errors().cloned().collect(), None, false);
        eprintln!("mapsctl: refused: the updated policy would not validate; nothing was written:");
        // Lines and columns are those of the text that would have been written.
        let shown = "<the updated policy, not written>";
        eprint!("{}", validate::render_text(&errors, shown, text.as_bytes()));
        return 1;
    }
    match out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("mapsctl: cannot write {}: {e}", p.display());
                return 2;
            }
        }
        None => {
            if let Some(code) = print_out(&text) {
                return code;
            }
        }
    }
    let w = v.report.warnings;
    eprintln!(
        "wrote {}: valid, {w} warning{} (`mapsctl validate` lists them)",
        terminal_safe(&name, false),
        if w == 1 { "" } else { "s" }
    );
    0
}

fn file_names(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

// ---- Azure ----------------------------------------------------------------------------

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
fn service_of(id: &str) -> Option<&str> {
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

/// Reads one resource object into `services` or `prefixes`.
fn azure_item(
    file: &Path,
    fi: usize,
    item: &Value,
    at: &str,
    services: &mut Vec<Service>,
    prefixes: &mut Vec<Prefix>,
) -> Result<(), Fail> {
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
            services.push(Service {
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
            prefixes.push(Prefix {
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

/// The edge whose `peering_location` is `loc` (ASCII case-insensitively).
fn edge_for(
    doc: &PolicyDocument,
    loc: &str,
    file: &Path,
    at: &str,
    policy: &Path,
) -> Result<String, Fail> {
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
                "peering location \"{loc}\" is the peering_location of two edges of {} \
                 (`{}` and `{}`)",
                policy.display(),
                a.id,
                b.id
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
                    "peering location \"{loc}\" is not the peering_location of any edge of {} \
                     ({known}); add it to the edge it names",
                    policy.display()
                ),
            ))
        }
    }
}

fn azure(
    doc: &mut PolicyDocument,
    policy: &Path,
    files: &[PathBuf],
    log: &mut String,
) -> Result<(), Fail> {
    let mut services = Vec::new();
    let mut prefixes = Vec::new();
    for (fi, file) in files.iter().enumerate() {
        let v = load_json(file)?;
        match &v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    azure_item(
                        file,
                        fi,
                        item,
                        &format!("/{i}"),
                        &mut services,
                        &mut prefixes,
                    )?;
                }
            }
            Value::Object(o) if o.contains_key("value") => {
                let items = o
                    .get("value")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad(file, "/value", "expected an array of resources"))?;
                for (i, item) in items.iter().enumerate() {
                    azure_item(
                        file,
                        fi,
                        item,
                        &format!("/value/{i}"),
                        &mut services,
                        &mut prefixes,
                    )?;
                }
            }
            Value::Object(_) => azure_item(file, fi, &v, "", &mut services, &mut prefixes)?,
            other => {
                return Err(bad(
                    file,
                    "",
                    format!(
                        "expected an array of resources, {{\"value\": [...]}} or one resource, \
                         found {}",
                        kind(other)
                    ),
                ))
            }
        }
    }
    let file = |i: usize| files.get(i).map_or(Path::new("-"), PathBuf::as_path);
    let here = |fi: usize, at: &str| {
        format!(
            "{} at {}",
            file(fi).display(),
            if at.is_empty() { "/" } else { at }
        )
    };

    let provider = doc
        .provider
        .as_ref()
        .map(|p| p.name.clone())
        .ok_or_else(|| {
            Fail::input(format!(
                "mapsctl: {} has no `provider.name`: cannot tell this provider's peering services",
                policy.display()
            ))
        })?;
    // One body per peering service name.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in services.iter().enumerate() {
        if let Some(&first) = seen.get(&s.name.to_ascii_lowercase()) {
            let f = services
                .get(first)
                .map_or(String::new(), |f| here(f.file, &f.at));
            return Err(bad(
                file(s.file),
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
        return Err(Fail::input(format!(
            "mapsctl: no peering service of {provider} (the provider of {}) in the inputs \
             ({} peering service{} of: {}); nothing was imported",
            policy.display(),
            others.len(),
            if others.len() == 1 { "" } else { "s" },
            if theirs.is_empty() {
                String::from("none")
            } else {
                theirs.into_iter().collect::<Vec<_>>().join(", ")
            }
        )));
    }

    let old: BTreeMap<&str, &Registration> = doc
        .registrations
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let mut by_service: BTreeMap<String, Vec<&Prefix>> = BTreeMap::new();
    for p in &prefixes {
        by_service
            .entry(p.service.to_ascii_lowercase())
            .or_default()
            .push(p);
    }

    let _ = writeln!(
        log,
        "azure: read {} file{}: {} peering service{}, {} prefix{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        services.len(),
        if services.len() == 1 { "" } else { "s" },
        prefixes.len(),
        if prefixes.len() == 1 { "" } else { "es" },
    );
    let _ = writeln!(
        log,
        "took {} peering service{} of {provider} as registrations:",
        ours.len(),
        if ours.len() == 1 { "" } else { "s" }
    );
    let mut new_regs: BTreeMap<String, Registration> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for s in &ours {
        let f = file(s.file);
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
        let _ = writeln!(
            log,
            "  {:<18} {:<8} {:<16} {:<10} {} prefix{}{}{}",
            s.name,
            if before.is_some() { "updated" } else { "added" },
            s.location,
            format!(
                "{}/{}",
                primary.as_deref().unwrap_or("-"),
                backup.as_deref().unwrap_or("-")
            ),
            entries.len(),
            if entries.len() == 1 { "" } else { "es" },
            if notes.is_empty() { "" } else { ": " },
            notes.join("; ")
        );
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
        let _ = writeln!(
            log,
            "skipped {} peering service{} of other providers:",
            others.len(),
            if others.len() == 1 { "" } else { "s" }
        );
        for s in &others {
            let _ = writeln!(
                log,
                "  {} ({}), {}",
                s.name,
                s.provider,
                here(s.file, &s.at)
            );
        }
    }
    let ours_names: BTreeSet<String> = ours.iter().map(|s| s.name.to_ascii_lowercase()).collect();
    let skipped: Vec<&Prefix> = prefixes
        .iter()
        .filter(|p| !ours_names.contains(&p.service.to_ascii_lowercase()))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            log,
            "skipped {} prefix{}:",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "es" }
        );
        for p in skipped {
            let why = match others
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&p.service))
            {
                Some(s) => format!("a peering service of {}", s.provider),
                None => String::from("no such peering service in the inputs"),
            };
            let _ = writeln!(
                log,
                "  {} of {}: {why}, {}",
                p.prefix,
                p.service,
                here(p.file, &p.at)
            );
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
        let _ = writeln!(
            log,
            "removed {} registration{} no longer in Azure as peering services of {provider}:",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" }
        );
        for id in &removed {
            let _ = writeln!(log, "  {id}");
        }
    }
    doc.registrations = regs;
    doc.provenance.retain(|p| p.kind != "azure");
    doc.provenance.push(Provenance {
        kind: String::from("azure"),
        files: file_names(files),
        change_number: None,
        cloud: None,
        version: None,
        selected: Vec::new(),
    });
    Ok(())
}

// ---- Service Tags ---------------------------------------------------------------------

/// Edit distance between `a` and `b` when at most `limit`, else `None`.
fn within(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
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
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().filter(|d| *d <= limit)
}

/// The candidate closest to `name`: the same name in another case, else the nearest
/// by edit distance (at most a third of the name, 4 at most). Bounded: names over 80
/// characters are not compared, and only the first 10,000 candidates are looked at.
fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
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
fn put_destination(dests: &mut Vec<Destination>, entry: Destination) -> bool {
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

fn service_tags(
    doc: &mut PolicyDocument,
    tags: &[String],
    file: &Path,
    log: &mut String,
) -> Result<(), Fail> {
    let v = load_json(file)?;
    let top = object(file, &v, "")?;
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
    let mut chosen: Vec<&str> = Vec::new();
    for t in tags {
        if !chosen.contains(&t.as_str()) {
            chosen.push(t);
        }
    }
    let mut entries = Vec::new();
    for tag in &chosen {
        let Some(i) = names.iter().position(|n| n == tag) else {
            let hint = match did_you_mean(tag, &names) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            return Err(Fail::usage(format!(
                "mapsctl: {}: no service tag `{tag}` among its {} tags{hint}",
                file.display(),
                names.len()
            )));
        };
        let at = format!("/values/{i}");
        let t = values.get(i).map_or(&Value::Null, |t| t);
        let pat = ptr(&at, "properties");
        let props = match object(file, t, &at)?.get("properties") {
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
    let _ = writeln!(
        log,
        "service-tags: read {} (changeNumber {}, cloud {}): {} tags",
        file.display(),
        change_number.map_or_else(|| String::from("-"), |n| n.to_string()),
        cloud.as_deref().unwrap_or("-"),
        names.len()
    );
    let _ = writeln!(
        log,
        "took {} tag{} as destinations (no category):",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
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
        let _ = writeln!(
            log,
            "  {name}: {} prefixes (IPv4 {v4}, IPv6 {v6}){}",
            v4 + v6,
            if replaced {
                ", replacing the entry of that name"
            } else {
                ""
            }
        );
    }
    let skipped = names.len().saturating_sub(chosen.len());
    let _ = writeln!(log, "skipped {skipped} tags: not chosen with --tag");
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
        files: vec![file.display().to_string()],
        change_number,
        cloud,
        version: None,
        selected: chosen.iter().map(|s| s.to_string()).collect(),
    });
    Ok(())
}

// ---- Microsoft 365 --------------------------------------------------------------------

const CATEGORIES: [&str; 3] = ["Optimize", "Allow", "Default"];

fn m365(
    doc: &mut PolicyDocument,
    categories: &[String],
    required_only: bool,
    file: &Path,
    log: &mut String,
) -> Result<(), Fail> {
    let mut chosen: Vec<&'static str> = Vec::new();
    for c in categories {
        let c = c.trim();
        let Some(name) = CATEGORIES.iter().find(|k| k.eq_ignore_ascii_case(c)) else {
            return Err(Fail::usage(format!(
                "mapsctl: --categories: unknown category `{c}` (use Optimize, Allow, Default)"
            )));
        };
        if !chosen.contains(name) {
            chosen.push(name);
        }
    }
    let v = load_json(file)?;
    let (sets, base_at, version) = match &v {
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
        let Some(category) = CATEGORIES.iter().copied().find(|k| *k == category) else {
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
            *by_category.entry(category).or_default() += 1;
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
                category: Some(category.to_string()),
                ports,
            },
            note,
        ));
    }
    let _ = writeln!(
        log,
        "m365: read {}{}: {} endpoint sets",
        file.display(),
        version
            .as_deref()
            .map_or_else(String::new, |v| format!(" (version {v})")),
        sets.len()
    );
    // This import is the policy's Microsoft 365 part: earlier `m365 …` entries go.
    let before = doc.destinations.len();
    doc.destinations.retain(|d| !d.name.starts_with("m365 "));
    let replaced = before - doc.destinations.len();
    let _ = writeln!(
        log,
        "took {} endpoint set{} ({}){}:",
        taken.len(),
        if taken.len() == 1 { "" } else { "s" },
        chosen.join(", "),
        if replaced > 0 {
            format!(", replacing {replaced} earlier m365 entries")
        } else {
            String::new()
        }
    );
    for (d, note) in taken {
        let _ = writeln!(
            log,
            "  {:<22} {:<8} {} domain{}, {} prefix{}, ports {}{}",
            d.name,
            d.category.as_deref().unwrap_or("-"),
            d.domains.len(),
            if d.domains.len() == 1 { "" } else { "s" },
            d.prefixes.len(),
            if d.prefixes.len() == 1 { "" } else { "es" },
            d.ports.as_deref().unwrap_or("any"),
            note.map_or_else(String::new, |n| format!(" ({n})"))
        );
        doc.destinations.push(d);
    }
    for (c, n) in &by_category {
        let _ = writeln!(log, "skipped {n} {c} endpoint sets: category not chosen");
    }
    if !not_required.is_empty() {
        let _ = writeln!(
            log,
            "skipped {} endpoint sets marked \"required\": false (--required-only): {}",
            not_required.len(),
            not_required.join(", ")
        );
    }
    if !empty.is_empty() {
        let _ = writeln!(
            log,
            "skipped {} endpoint sets with neither urls nor ips: {}",
            empty.len(),
            empty.join(", ")
        );
    }
    doc.provenance.retain(|p| p.kind != "m365");
    doc.provenance.push(Provenance {
        kind: String::from("m365"),
        files: vec![file.display().to_string()],
        change_number: None,
        cloud: None,
        version,
        selected: chosen.iter().map(|s| s.to_string()).collect(),
    });
    Ok(())
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
            prefixes: vec![p.into()],
            domains: Vec::new(),
            category: None,
            ports: None,
        };
        let mut v = vec![d("A", "1"), d("B", "2"), d("A", "3"), d("C", "4")];
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
