//! The browser and Node module (feature `web`, target `wasm32-unknown-unknown`).
//!
//! A thin translation between JavaScript and `policy-core`: strings and option
//! objects in, plain JS objects out (serialised with serde-wasm-bindgen's
//! JSON-compatible serializer, so every value is exactly what the JSON outputs of
//! `mapsctl` hold). No decision is made here.
//!
//! ```text
//!   validate(policy, {strict})          ─▶ policy_core::validate   ─▶ Report
//!   new PolicyEngine(policy, {strict})  ─▶ policy_core::load       ─▶ LoadedPolicy | Error{report}
//!     .classify(src, {dst, host})       ─▶ Classifier::classify_text ─▶ DecisionLine
//!     .classifyTrace(jsonLines)         ─▶ trace::decide_line      ─▶ decision JSON Lines
//!     .explain(src, {dst, host})        ─▶ Classifier::explain     ─▶ Explanation + text
//!     .edges(registrationId)            ─▶ Classifier::candidates  ─▶ Candidate[]
//!     .map()                            ─▶ Policy (document, sites, candidates)
//!     .whatIf({edges, links})           ─▶ policy_core::what_if    ─▶ WhatIf (RouteChange[])
//!   diff(oldPolicy, newPolicy)          ─▶ policy_core::diff       ─▶ PolicyDiff | Error{report}
//!   inspectImports(files)               ─▶ ImportKind::of, service_tag_names ─▶ ImportFileInfo[]
//!   importFiles(policy, files, options) ─▶ policy_core::import_files + written ─▶ ImportResult
//! ```
//!
//! Imports (SPEC §8): each file (`{name, text}`, the text a string or its bytes) is
//! recognised by content, as `policy_core::ImportKind::of` says: Azure peering service
//! and prefix bodies (all of them form one Azure import), a Service Tags file (the tags
//! to take are `options.tags`: `inspectImports` lists the file's), a Microsoft 365
//! endpoints response (`options.categories`, default Optimize and Allow). A bad file
//! throws an `Error` named `ImportError` with `file` and `pointer` (JSON Pointer, `""`
//! for the whole file); a base policy that is not a policy document, or an updated
//! policy that would not validate, throws a `PolicyError` with its report (nothing is
//! imported, as `mapsctl import` writes nothing).
//!
//! Errors: a bad option object or an unknown registration id throws a JS `Error`
//! with a message (so does an unknown edge or link id in `whatIf`, naming it); an
//! invalid policy throws an `Error` named `PolicyError` whose
//! `report` property is the validation report. Nothing panics on any input.
//!
//! The TypeScript types of the generated `.d.ts` are written by hand below
//! (`TS_TYPES`) and attached to each export with `unchecked_return_type` /
//! `unchecked_param_type`; they mirror the serde shapes of `policy-core` exactly.

use policy_core::Explanation;
use policy_core::Reason;
use policy_core::{Classifier, DecisionLine, LoadedPolicy, Policy, Report, Summary};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

// Held to `policy-core`'s vocabulary by the tests at the end of this file.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `validate` and of the `PolicyEngine` constructor. */
export interface ValidateOptions {
  /** Treat the MAPS-readiness warnings as errors (`mapsctl validate --strict`). */
  strict?: boolean;
}

/** Destination of a flow, for `classify` and `explain`. */
export interface FlowOptions {
  /** Destination address (IPv4 or IPv6 text). */
  dst?: string | null;
  /** Destination host name (case-insensitive, trailing dot and port ignored). */
  host?: string | null;
}

export type Severity = "error" | "warning";

export type DiagnosticCode =
  | "not-utf8" | "empty-document" | "bad-json" | "unsupported-version"
  | "unknown-field" | "missing-field" | "wrong-type" | "bad-value" | "compiled-policy"
  | "malformed-prefix" | "host-bits-set" | "non-public-prefix" | "prefix-too-short"
  | "duplicate-edge-id" | "duplicate-link-id" | "duplicate-registration-id"
  | "duplicate-prefix" | "unknown-edge" | "coordinate-out-of-range"
  | "unknown-location" | "missing-location" | "unknown-state" | "malformed-domain"
  | "unknown-category" | "malformed-ports"
  | "bad-header-prefix" | "malformed-address" | "bad-id" | "metric-name-collision"
  | "no-local-redundancy" | "no-geo-redundancy" | "link-capacity"
  | "overlapping-prefix" | "ipv6-prefix" | "long-prefix-without-key"
  | "documentation-prefix" | "no-eligible-prefix" | "pinned-edge-drained"
  | "duplicate-destination";

/** One problem found in a policy document (SPEC §6). */
export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  /** JSON Pointer (RFC 6901) to the offending value; `""` is the whole document. */
  path: string;
  message: string;
  /** How to fix it, when the fix is mechanical. */
  help?: string;
  /** 1-based line of the offending value, when known. */
  line?: number;
  /** 1-based column (in characters) of the offending value, when known. */
  column?: number;
}

/** Counts of a policy's contents. */
export interface Summary {
  edges: number;
  usable_edges: number;
  links: number;
  registrations: number;
  prefixes: number;
  /** Registered prefixes by Azure `prefixValidationState`. */
  prefixes_by_state: Record<string, number>;
  ipv4_prefixes: number;
  ipv6_prefixes: number;
  eligible_prefixes: number;
  telemetry_prefixes: number;
  /** Telemetry at the published rate of $15 per prefix, in US dollars. */
  telemetry_cost_usd: number;
  destination_prefixes: number;
  destination_domains: number;
}

/** The validation report (SPEC §6): every problem at once. */
export interface Report {
  /** True when there is no error (warnings allowed). */
  valid: boolean;
  /** True when warnings were promoted to errors. */
  strict: boolean;
  errors: number;
  warnings: number;
  diagnostics: Diagnostic[];
  /** Present when the document could be read. */
  summary?: Summary;
}

/** The `Error` thrown by `new PolicyEngine(...)` for an invalid policy. */
export interface PolicyError extends Error {
  name: "PolicyError";
  report: Report;
}

/** Azure's `prefixValidationState` values. */
export type PrefixState =
  | "None" | "Invalid" | "Verified" | "Failed" | "Pending" | "Warning" | "Unknown";

export type DecisionClass =
  | "invalid-source" | "unregistered" | "unverified" | "non-microsoft" | "excluded-category"
  | "no-edge" | "maps";

/** A Microsoft 365 endpoint category (SPEC §7), lowest first. */
export type Category = "Default" | "Allow" | "Optimize";

/** A decision line (SPEC §5): the fields that apply to the class. */
export type Decision =
  | { src: string; class: "invalid-source" | "unregistered" }
  | { src: string; class: "unverified" | "non-microsoft"; registration: string; prefix: string }
  | {
      src: string;
      class: "excluded-category" | "no-edge";
      registration: string;
      prefix: string;
      /** The flow's Microsoft 365 category, when a matching destination has one. */
      category?: Category;
    }
  | {
      src: string;
      class: "maps";
      registration: string;
      prefix: string;
      category?: Category;
      edge: string;
      link: string;
      backup: string | null;
      failover: string[];
      /** Distance to `edge`, rounded to 0.1 km. */
      distance_km: number;
    };

/** A registered prefix that contains the source. */
export interface PrefixMatch {
  prefix: string;
  registration: string;
  customer?: string;
  state: string;
  eligible: boolean;
  telemetry: boolean;
}

export type EdgeWhy =
  | "pinned-primary" | "pinned-backup" | "nearest"
  | "drained" | "no-usable-link" | "after-none-backup";

/** One edge as the matched registration sees it; candidates first, in order. */
export interface EdgeView {
  edge: string;
  metro?: string;
  provider?: string;
  /** 1 = chosen; `null` when the edge is not a candidate. */
  position: number | null;
  rank: number | null;
  /** km, rounded to 0.001. */
  distance_km: number | null;
  why: EdgeWhy;
}

/** A person-readable account of one decision. */
export interface Explanation {
  src: string;
  /** The source as understood (IPv4-mapped IPv6 shown as IPv4). */
  address: string | null;
  class: DecisionClass;
  matched: PrefixMatch | null;
  also_inside: PrefixMatch[];
  eligible_states: string[];
  dst: string | null;
  host: string | null;
  /** How the destination matched Microsoft's address space, in words. */
  destination: string;
  /** Customer site: latitude, longitude, and where it came from. */
  site: { lat: number; lon: number; from: string } | null;
  edges: EdgeView[];
  edge: string | null;
  link: string | null;
  backup: string | null;
  /** The Envoy cluster of a `maps` decision (`maps_<edge>[_<backup>]`). */
  cluster: string | null;
  /** The flow's Microsoft 365 category, when a matching destination has one. */
  category: Category | null;
  failover: string[];
  /** Why the decision came out this way, in one sentence. */
  why: string;
  /** The whole explanation as text, as `mapsctl explain` prints it. */
  text: string;
}

export type CandidateReason = "pinned-primary" | "pinned-backup" | "nearest";

/** One candidate edge of a registration, in order (first = the edge used). */
export interface Candidate {
  edge: string;
  /** Index of the edge in the document's `edges`. */
  index: number;
  metro?: string;
  provider?: string;
  /** Provider rank (index in the registration's `providers`). */
  rank: number;
  /** km, rounded to 0.001. */
  distance_km: number;
  reason: CandidateReason;
}

/** An edge site, for drawing. */
export interface MapEdge {
  id: string;
  metro?: string;
  provider?: string;
  lat: number;
  lon: number;
  drained: boolean;
  /** Not drained and with at least one usable link. */
  usable: boolean;
  links: number;
  usable_links: number;
}

/** A registration's customer site and the edges it uses, for drawing. */
export interface MapRegistration {
  id: string;
  customer?: string;
  location?: string;
  lat: number;
  lon: number;
  /** True when the coordinates come from the built-in location table. */
  from_location: boolean;
  /** The edge its traffic uses (first candidate), if any. */
  primary: string | null;
  /** Where it fails over to (second candidate), if any. */
  backup: string | null;
  pinned_primary?: string;
  /** A pinned backup edge id, or `"None"`. */
  pinned_backup?: string;
  /** Its prefixes (JSON and packed), those eligible, those with telemetry. */
  prefixes: number;
  eligible_prefixes: number;
  telemetry_prefixes: number;
  /** Whether any of its prefixes reports latency. */
  telemetry: boolean;
  /** The Envoy cluster its `maps` traffic routes to, if any. */
  cluster: string | null;
}

/** The request headers the plugin publishes (`options.header_prefix`). */
export interface HeaderNames {
  prefix: string;
  class: string;
  cluster: string;
  decision: string;
}

export interface MapData {
  edges: MapEdge[];
  registrations: MapRegistration[];
}

/** What to drain, on paper, in `whatIf`: edge ids and link ids. */
export interface WhatIfOptions {
  edges?: string[];
  links?: string[];
}

/** Where a registration's `maps` traffic goes (`edge: null`: no edge can carry it,
 * the traffic takes the default path). */
export interface Ends {
  edge: string | null;
  backup: string | null;
}

/** A registration whose edge or backup changes. */
export interface RouteChange {
  registration: string;
  before: Ends;
  after: Ends;
  /** Distance to the edge after minus before, in km (rounded to 0.1); `null` when
   * either side has no edge. */
  distance_added_km: number | null;
}

/** What draining edges and links would move (`mapsctl what-if --format json`). */
export interface WhatIf {
  /** What was drained, as asked. */
  drained: { edges: string[]; links: string[] };
  /** Every registration whose edge or backup would change. */
  changes: RouteChange[];
}

/** A registered prefix's facts that a change can touch. */
export interface PrefixFacts {
  state: PrefixState;
  /** Whether it carries a partner-registered prefix key. */
  key: boolean;
  /** Whether it reports latency. */
  telemetry: boolean;
}

/** A prefix added or removed (its facts flattened in). */
export interface PrefixItem extends PrefixFacts {
  registration: string;
  prefix: string;
}

/** A prefix whose state, key or telemetry changed. */
export interface PrefixChange {
  registration: string;
  prefix: string;
  before: PrefixFacts;
  after: PrefixFacts;
}

/** The difference between two policies (`mapsctl diff --format json`, without a trace). */
export interface PolicyDiff {
  /** Registration ids only in the new policy (`added`) or only in the old (`removed`). */
  registrations: { added: string[]; removed: string[] };
  prefixes: { added: PrefixItem[]; removed: PrefixItem[]; changed: PrefixChange[] };
  /** Registrations present in both whose route changes. */
  routes: RouteChange[];
}

/** What an import file is, told by its content. */
export type ImportKind = "azure" | "service-tags" | "m365";

/** One file to import: its name (in the report, errors and the policy's provenance)
 * and its contents (JSON text, or the file's bytes). */
export interface ImportInput {
  name: string;
  text: string | Uint8Array;
}

/** The choices of `importFiles`. */
export interface ImportOptions {
  /** The Service Tags to take (`values[].name`); required with a Service Tags file. */
  tags?: string[];
  /** The Microsoft 365 categories to take (any case); default `["Optimize", "Allow"]`. */
  categories?: string[];
  /** Leave out the endpoint sets marked `"required": false`. */
  requiredOnly?: boolean;
  /** How messages name the policy being updated (default `"the policy"`). */
  policyName?: string;
}

/** What an import file is, before choosing (`inspectImports`). */
export interface ImportFileInfo {
  name: string;
  kind: ImportKind;
  /** A Service Tags file's tag names, in the file's order. */
  tags?: string[];
}

export type ImportSectionKind = "read" | "took" | "skipped" | "removed";

/** One line of an import's report and the items under it. */
export interface ImportSection {
  kind: ImportSectionKind;
  text: string;
  items: string[];
}

/** What `importFiles` gives. */
export interface ImportResult {
  /** The updated policy, exactly as `mapsctl import` writes it. */
  policy: string;
  /** Each file's kind, in the order given. */
  kinds: ImportKind[];
  /** What was taken, skipped and removed, and why, in order. */
  report: ImportSection[];
  /** The report as `mapsctl import` prints it on standard error (less its `wrote` line). */
  text: string;
  /** The validation of `policy` (valid; may carry warnings). */
  validation: Report;
}

/** The `Error` thrown for a file that cannot be imported or a wrong choice. */
export interface ImportError extends Error {
  name: "ImportError";
  /** The file at fault, when there is one. */
  file: string | null;
  /** JSON Pointer (RFC 6901) into `file`; `""` is the whole file. */
  pointer: string | null;
}
"#;

/// Options of `validate` and of the `PolicyEngine` constructor.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ValidateOptions {
    strict: Option<bool>,
}

/// What `whatIf` drains.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WhatIfOptions {
    edges: Option<Vec<String>>,
    links: Option<Vec<String>>,
}

/// Destination of a flow.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FlowOptions {
    dst: Option<String>,
    host: Option<String>,
}

/// What the module refuses, before or after `policy-core` (an invalid policy is not
/// one of these: it is a `PolicyError` carrying the report). Each becomes a JS `Error`
/// with this text, once, at the boundary.
#[derive(Debug)]
pub enum WebError {
    /// The options argument is not an object. Fix: pass `{ ... }`, `undefined` or `null`.
    OptionsNotObject { what: &'static str },
    /// An option key the function does not take (often a misspelling). Fix: rename it.
    UnknownOption {
        what: &'static str,
        key: String,
        known: &'static [&'static str],
    },
    /// An option of the wrong type (e.g. `strict: "yes"`). Fix: use the type named.
    BadOption { what: &'static str, reason: String },
    /// The policy argument is neither a string nor a `Uint8Array`. Fix: pass the text
    /// or the file's bytes.
    PolicyNotTextOrBytes,
    /// `edges(id)` named no registration of the policy. Fix: use a registration `id`.
    UnknownRegistration(String),
    /// `whatIf` named an edge or link the policy does not have (the text names it), or
    /// the drained policy would not validate. Fix: use an edge or link `id`.
    WhatIf(String),
    /// A result could not be turned into a JS value (not expected: every shape here
    /// is plain data). Report it as a bug.
    Convert(String),
}

impl core::fmt::Display for WebError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WebError::OptionsNotObject { what } => write!(f, "{what}: expected an object"),
            WebError::UnknownOption { what, key, known } => write!(
                f,
                "{what}: unknown option `{key}` (expected {})",
                known.join(", ")
            ),
            WebError::BadOption { what, reason } => write!(f, "{what}: {reason}"),
            WebError::PolicyNotTextOrBytes => {
                f.write_str("the policy must be a string or a Uint8Array")
            }
            WebError::UnknownRegistration(id) => write!(f, "unknown registration `{id}`"),
            WebError::WhatIf(e) => write!(f, "whatIf: {e}"),
            WebError::Convert(e) => write!(f, "cannot convert to JS: {e}"),
        }
    }
}

impl From<WebError> for JsError {
    fn from(e: WebError) -> JsError {
        JsError::new(&e.to_string())
    }
}

impl From<WebError> for JsValue {
    fn from(e: WebError) -> JsValue {
        JsError::from(e).into()
    }
}

/// Reads an optional options object: `undefined` and `null` give the defaults; a key
/// outside `known` is an error (a misspelt option must not be silently ignored).
fn options<T: Default + for<'de> Deserialize<'de>>(
    value: Option<JsValue>,
    what: &'static str,
    known: &'static [&'static str],
) -> Result<T, WebError> {
    let Some(v) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    if !v.is_object() || js_sys::Array::is_array(&v) {
        return Err(WebError::OptionsNotObject { what });
    }
    for key in js_sys::Object::keys(v.unchecked_ref::<js_sys::Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(WebError::UnknownOption { what, key, known });
        }
    }
    serde_wasm_bindgen::from_value(v).map_err(|e| {
        let text = e.to_string();
        WebError::BadOption {
            what,
            reason: text.trim_start_matches("Error: ").to_string(),
        }
    })
}

const VALIDATE_OPTIONS: &[&str] = &["strict"];
const FLOW_OPTIONS: &[&str] = &["dst", "host"];
const WHAT_IF_OPTIONS: &[&str] = &["edges", "links"];

/// The policy as bytes: a string (UTF-16, converted to UTF-8) or a `Uint8Array` (a
/// Node `Buffer` is one), passed through untouched so that non-UTF-8 input is
/// reported as such.
fn policy_bytes(value: &JsValue) -> Result<Vec<u8>, WebError> {
    if let Some(text) = value.as_string() {
        return Ok(text.into_bytes());
    }
    if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    Err(WebError::PolicyNotTextOrBytes)
}

/// Serialises to a plain JS value, exactly as the JSON outputs would hold it:
/// maps as objects, `None` as `null`.
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, WebError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| WebError::Convert(e.to_string()))
}

/// Validates a policy document (SPEC §6) and returns the report: every problem at
/// once, with the summary when the document could be read. Never throws for a bad
/// policy (only for a bad options object).
#[wasm_bindgen(unchecked_return_type = "Report")]
pub fn validate(
    #[wasm_bindgen(js_name = "policy", unchecked_param_type = "string | Uint8Array")]
    policy: JsValue,
    #[wasm_bindgen(js_name = "options", unchecked_optional_param_type = "ValidateOptions")]
    options_value: Option<JsValue>,
) -> Result<JsValue, WebError> {
    let opts: ValidateOptions = options(options_value, "validate options", VALIDATE_OPTIONS)?;
    let bytes = policy_bytes(&policy)?;
    let v = policy_core::validate(&bytes, opts.strict.unwrap_or(false));
    to_js(&v.report)
}

/// The version of this module (the workspace version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The `Error` thrown for an invalid policy: named `PolicyError`, with the report.
fn policy_error(report: &Report) -> JsValue {
    let first = report
        .errors()
        .next()
        .map(ToString::to_string)
        .unwrap_or_default();
    let message = format!(
        "invalid policy: {} error{}{}{}",
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        if first.is_empty() { "" } else { "; first: " },
        first
    );
    let err = js_sys::Error::new(&message);
    err.set_name("PolicyError");
    let report_js = to_js(report).unwrap_or(JsValue::NULL);
    // Setting a property on a fresh Error object cannot fail; if it did, the Error
    // would still carry the message.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("report"), &report_js);
    err.into()
}

/// The validated policy of some text or bytes, or the `PolicyError` naming its errors.
/// (Always non-strict: it is the policy an edge would load.)
fn validated(value: &JsValue) -> Result<(Policy, Report), JsValue> {
    let bytes = policy_bytes(value)?;
    let v = policy_core::validate(&bytes, false);
    match v.policy {
        Some(policy) if v.report.valid => Ok((policy, v.report)),
        _ => Err(policy_error(&v.report)),
    }
}

/// The difference between two policies, as `mapsctl diff --format json` prints it
/// (without a trace): registrations and prefixes added, removed and changed, and the
/// registrations whose route changes. Throws a `PolicyError` (with the report) when
/// either policy is invalid (warnings allowed).
#[wasm_bindgen(unchecked_return_type = "PolicyDiff")]
pub fn diff(
    #[wasm_bindgen(js_name = "oldPolicy", unchecked_param_type = "string | Uint8Array")]
    old_policy: JsValue,
    #[wasm_bindgen(js_name = "newPolicy", unchecked_param_type = "string | Uint8Array")]
    new_policy: JsValue,
) -> Result<JsValue, JsValue> {
    let (old, _) = validated(&old_policy)?;
    let (new, _) = validated(&new_policy)?;
    Ok(to_js(&policy_core::diff(&old, &new))?)
}

// ---- imports (SPEC §8) ------------------------------------------------------------------

/// The choices of `importFiles`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ImportOptions {
    tags: Option<Vec<String>>,
    categories: Option<Vec<String>>,
    required_only: Option<bool>,
    policy_name: Option<String>,
}

const IMPORT_OPTIONS: &[&str] = &["tags", "categories", "requiredOnly", "policyName"];

/// The files of `importFiles` / `inspectImports`: an array of `{name, text}` (text a
/// string or a `Uint8Array`), as names and bytes.
fn import_inputs(files: &JsValue, what: &'static str) -> Result<Vec<(String, Vec<u8>)>, WebError> {
    let bad = |reason: String| WebError::BadOption { what, reason };
    if !js_sys::Array::is_array(files) {
        return Err(bad(String::from("expected an array of {name, text}")));
    }
    let arr: &js_sys::Array = files.unchecked_ref();
    let mut out = Vec::with_capacity(arr.length() as usize);
    for (i, f) in arr.iter().enumerate() {
        if !f.is_object() {
            return Err(bad(format!("file {i}: expected an object {{name, text}}")));
        }
        let get = |key: &str| js_sys::Reflect::get(&f, &JsValue::from_str(key)).ok();
        let name = get("name")
            .and_then(|n| n.as_string())
            .ok_or_else(|| bad(format!("file {i}: `name` must be a string")))?;
        let text = get("text").unwrap_or(JsValue::UNDEFINED);
        let bytes = policy_bytes(&text).map_err(|_| {
            bad(format!(
                "file {i} ({name}): `text` must be a string or a Uint8Array"
            ))
        })?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// The `Error` thrown for an import that cannot be made: named `ImportError`, with the
/// file at fault and the JSON Pointer (`null` when the error has none).
fn import_error(e: &policy_core::ImportError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("ImportError");
    let opt = |v: Option<&str>| v.map_or(JsValue::NULL, JsValue::from_str);
    // Setting a property on a fresh Error object cannot fail; if it did, the Error
    // would still carry the message.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("file"), &opt(e.file()));
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("pointer"), &opt(e.pointer()));
    err.into()
}

#[derive(Serialize)]
struct ImportFileInfo<'a> {
    name: &'a str,
    kind: policy_core::ImportKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
}

/// What each file is, before choosing what to take from it: its kind (told by
/// content, as `importFiles` tells it) and, for a Service Tags file, its tag names.
/// Throws an `ImportError` (with `file` and `pointer`) for a file that is not JSON, of
/// no known kind, or a malformed Service Tags head.
#[wasm_bindgen(js_name = "inspectImports", unchecked_return_type = "ImportFileInfo[]")]
pub fn inspect_imports(
    #[wasm_bindgen(unchecked_param_type = "ImportInput[]")] files: JsValue,
) -> Result<JsValue, JsValue> {
    let inputs = import_inputs(&files, "inspectImports files")?;
    let mut out = Vec::with_capacity(inputs.len());
    for (name, bytes) in &inputs {
        let v = policy_core::parse_import(name, bytes).map_err(|e| import_error(&e))?;
        let kind = policy_core::ImportKind::of(&v).ok_or_else(|| {
            import_error(&policy_core::ImportError::UnknownKind { file: name.clone() })
        })?;
        let tags = match kind {
            policy_core::ImportKind::ServiceTags => {
                Some(policy_core::service_tag_names(name, &v).map_err(|e| import_error(&e))?)
            }
            _ => None,
        };
        out.push(ImportFileInfo { name, kind, tags });
    }
    Ok(to_js(&out)?)
}

#[derive(Serialize)]
struct ImportResult<'a> {
    policy: &'a str,
    kinds: &'a [policy_core::ImportKind],
    report: &'a [policy_core::ImportSection],
    text: String,
    validation: &'a Report,
}

/// Imports files into a policy, as `mapsctl import` does (SPEC §8), each file's kind
/// told by its content: every Azure body together, then the Service Tags file
/// (`options.tags`), then the Microsoft 365 response (`options.categories`,
/// `options.requiredOnly`), at most one of each of the last two. Returns the updated
/// policy text (exactly what `mapsctl import` writes), each file's kind and the
/// report. Nothing leaves the module: the files are the caller's.
///
/// Throws an `ImportError` (with `file` and `pointer`) for a bad file or choice; a
/// `PolicyError` (with the report) when `policy` is not a policy document, or when the
/// updated policy would not validate (then nothing is imported).
#[wasm_bindgen(js_name = "importFiles", unchecked_return_type = "ImportResult")]
pub fn import_files(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] policy: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ImportInput[]")] files: JsValue,
    #[wasm_bindgen(js_name = "options", unchecked_optional_param_type = "ImportOptions")]
    options_value: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let o: ImportOptions = options(options_value, "importFiles options", IMPORT_OPTIONS)?;
    let mut choices = policy_core::ImportOptions::default();
    if let Some(tags) = o.tags {
        choices.tags = tags;
    }
    if let Some(c) = o.categories {
        choices.categories = policy_core::m365_categories(&c).map_err(|e| import_error(&e))?;
    }
    choices.required_only = o.required_only.unwrap_or(false);
    if let Some(n) = o.policy_name {
        choices.policy_name = n;
    }
    let bytes = policy_bytes(&policy)?;
    let mut doc = policy_core::parse_bytes(&bytes)
        .map_err(|diags| policy_error(&Report::new(diags, None, false)))?;
    drop(bytes);
    let inputs = import_inputs(&files, "importFiles files")?;
    let list: Vec<policy_core::ImportFile<'_>> = inputs
        .iter()
        .map(|(name, bytes)| policy_core::ImportFile { name, bytes })
        .collect();
    let mut report = policy_core::ImportReport::default();
    let kinds = policy_core::import_files(&mut doc, &list, &choices, &mut report)
        .map_err(|e| import_error(&e))?;
    drop(list);
    drop(inputs);
    let w = policy_core::written(&doc).map_err(WebError::Convert)?;
    if !w.report.valid {
        // As `mapsctl import`: an updated policy that would not validate is refused.
        let err = policy_error(&w.report);
        let first = w.report.errors().next().map(ToString::to_string);
        let message = format!(
            "import refused: the updated policy would not validate ({} error{}){}",
            w.report.errors,
            if w.report.errors == 1 { "" } else { "s" },
            first.map_or_else(String::new, |f| format!("; first: {f}"))
        );
        let _ = js_sys::Reflect::set(
            &err,
            &JsValue::from_str("message"),
            &JsValue::from_str(&message),
        );
        return Err(err);
    }
    Ok(to_js(&ImportResult {
        policy: &w.text,
        kinds: &kinds,
        report: &report.sections,
        text: report.to_string(),
        validation: &w.report,
    })?)
}

/// The JSON shape of `mapsctl what-if --format json`.
#[derive(Serialize)]
struct WhatIfView<'a> {
    drained: Drained<'a>,
    changes: &'a [policy_core::RouteChange],
}

#[derive(Serialize)]
struct Drained<'a> {
    edges: &'a [String],
    links: &'a [String],
}

/// A loaded policy: the compiled classifier of `policy-core`, and the validated policy
/// as `policy_core::validate` gives it (with its packed table, which the classifier
/// does not keep), for `whatIf`.
#[wasm_bindgen]
pub struct PolicyEngine {
    engine: LoadedPolicy,
    policy: Policy,
}

/// A candidate edge, for JS.
#[derive(Serialize)]
struct CandidateView<'a> {
    edge: &'a str,
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    metro: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    rank: usize,
    distance_km: f64,
    reason: Reason,
}

#[derive(Serialize)]
struct ExplanationView<'a> {
    #[serde(flatten)]
    explanation: &'a Explanation,
    text: String,
}

#[derive(Serialize)]
struct MapEdge<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metro: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    lat: f64,
    lon: f64,
    drained: bool,
    usable: bool,
    links: usize,
    usable_links: usize,
}

#[derive(Serialize)]
struct MapRegistration<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    lat: f64,
    lon: f64,
    from_location: bool,
    primary: Option<&'a str>,
    backup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_primary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_backup: Option<&'a str>,
    prefixes: usize,
    eligible_prefixes: usize,
    telemetry_prefixes: usize,
    telemetry: bool,
    cluster: Option<&'a str>,
}

#[derive(Serialize)]
struct MapData<'a> {
    edges: Vec<MapEdge<'a>>,
    registrations: Vec<MapRegistration<'a>>,
}

impl PolicyEngine {
    fn classifier(&self) -> &Classifier {
        &self.engine.classifier
    }

    fn registration_index(&self, id: &str) -> Result<usize, WebError> {
        self.classifier()
            .policy()
            .document()
            .registrations
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(|| WebError::UnknownRegistration(id.to_string()))
    }
}

#[wasm_bindgen]
impl PolicyEngine {
    /// Validates and compiles a policy. Throws a `PolicyError` (an `Error` whose
    /// `report` property is the validation report) when the policy has errors.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = "policy", unchecked_param_type = "string | Uint8Array")]
        policy: JsValue,
        #[wasm_bindgen(js_name = "options", unchecked_optional_param_type = "ValidateOptions")]
        options_value: Option<JsValue>,
    ) -> Result<PolicyEngine, JsValue> {
        let opts: ValidateOptions =
            options(options_value, "PolicyEngine options", VALIDATE_OPTIONS)?;
        let bytes = policy_bytes(&policy)?;
        // As `policy_core::load` does, keeping a copy of the validated policy.
        let v = policy_core::validate(&bytes, opts.strict.unwrap_or(false));
        drop(bytes);
        match v.policy {
            Some(policy) if v.report.valid => Ok(PolicyEngine {
                engine: LoadedPolicy {
                    classifier: Classifier::new(policy.clone()),
                    report: v.report,
                },
                policy,
            }),
            _ => Err(policy_error(&v.report)),
        }
    }

    /// What draining `edges` and `links` (ids) would move, on paper: every registration
    /// whose edge or backup would change, as `mapsctl what-if --format json` prints it.
    /// The engine itself is unchanged. Throws for an unknown edge or link id (naming
    /// it) and for a bad options object.
    #[wasm_bindgen(js_name = "whatIf", unchecked_return_type = "WhatIf")]
    pub fn what_if(
        &self,
        #[wasm_bindgen(js_name = "drain", unchecked_optional_param_type = "WhatIfOptions")]
        drain: Option<JsValue>,
    ) -> Result<JsValue, WebError> {
        let o: WhatIfOptions = options(drain, "whatIf options", WHAT_IF_OPTIONS)?;
        let edges = o.edges.unwrap_or_default();
        let links = o.links.unwrap_or_default();
        let e: Vec<&str> = edges.iter().map(String::as_str).collect();
        let l: Vec<&str> = links.iter().map(String::as_str).collect();
        let (_, changes) = policy_core::what_if(&self.policy, &e, &l)
            .map_err(|err| WebError::WhatIf(err.to_string()))?;
        to_js(&WhatIfView {
            drained: Drained {
                edges: &edges,
                links: &links,
            },
            changes: &changes,
        })
    }

    /// The validation report of the loaded policy (valid; may carry warnings).
    #[wasm_bindgen(getter, unchecked_return_type = "Report")]
    pub fn report(&self) -> Result<JsValue, WebError> {
        to_js(&self.engine.report)
    }

    /// The policy's summary (counts, telemetry cost).
    #[wasm_bindgen(getter, unchecked_return_type = "Summary")]
    pub fn summary(&self) -> Result<JsValue, WebError> {
        // A loaded policy was read, so validation always produced its summary.
        match &self.engine.report.summary {
            Some(s) => to_js(s),
            None => to_js(&Summary::default()),
        }
    }

    /// The prefix states that make traffic eligible under this policy.
    #[wasm_bindgen(
        getter,
        js_name = "eligibleStates",
        unchecked_return_type = "PrefixState[]"
    )]
    pub fn eligible_states(&self) -> Result<JsValue, WebError> {
        let states: Vec<&str> = self
            .classifier()
            .policy()
            .eligible_states()
            .map(|s| s.as_str())
            .collect();
        to_js(&states)
    }

    /// The request headers the plugin publishes under this policy.
    #[wasm_bindgen(getter, unchecked_return_type = "HeaderNames")]
    pub fn headers(&self) -> Result<JsValue, WebError> {
        to_js(self.classifier().policy().headers())
    }

    /// A registration's prefixes (JSON and packed alike), at most `limit` (default
    /// 100), IPv4 first. Throws for an unknown registration id.
    #[wasm_bindgen(unchecked_return_type = "PrefixMatch[]")]
    pub fn prefixes(
        &self,
        #[wasm_bindgen(js_name = "registrationId")] registration_id: &str,
        limit: Option<u32>,
    ) -> Result<JsValue, WebError> {
        let reg = self.registration_index(registration_id)?;
        let limit = limit.map_or(100, |l| l as usize);
        to_js(&self.classifier().prefixes_of(reg, limit))
    }

    /// The decision for a flow from `src` (SPEC §3–§5), as a decision line.
    #[wasm_bindgen(unchecked_return_type = "Decision")]
    pub fn classify(
        &self,
        src: &str,
        #[wasm_bindgen(js_name = "flow", unchecked_optional_param_type = "FlowOptions")]
        flow: Option<JsValue>,
    ) -> Result<JsValue, WebError> {
        let f: FlowOptions = options(flow, "classify options", FLOW_OPTIONS)?;
        let d = self
            .classifier()
            .classify_text(src, f.dst.as_deref(), f.host.as_deref());
        to_js(&DecisionLine { src, decision: &d })
    }

    /// Classifies a whole trace, exactly as `mapsctl classify` does: trace JSON Lines
    /// in (SPEC §5), one decision line out per trace line, in order, each ending in a
    /// newline; a malformed line (blank ones too, and lines over 64 KiB) gives
    /// `{"line": N, "error": "..."}`.
    #[wasm_bindgen(js_name = "classifyTrace")]
    pub fn classify_trace(
        &self,
        #[wasm_bindgen(js_name = "traceText")] trace_text: &str,
    ) -> String {
        let mut out = String::with_capacity(trace_text.len().saturating_mul(2));
        // One output line per trace line, blank ones included (SPEC §5).
        for (i, line) in policy_core::trace_lines(trace_text).enumerate() {
            let text = line.trim_ascii();
            let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
            policy_core::decide_line(self.classifier(), n, text, &mut out);
            out.push('\n');
        }
        out
    }

    /// Explains the decision for a flow: matched prefixes, destination match, every
    /// edge with distance and rank, and why; `text` is the printed form.
    #[wasm_bindgen(unchecked_return_type = "Explanation")]
    pub fn explain(
        &self,
        src: &str,
        #[wasm_bindgen(js_name = "flow", unchecked_optional_param_type = "FlowOptions")]
        flow: Option<JsValue>,
    ) -> Result<JsValue, WebError> {
        let f: FlowOptions = options(flow, "explain options", FLOW_OPTIONS)?;
        let explanation = self
            .classifier()
            .explain(src, f.dst.as_deref(), f.host.as_deref());
        let text = explanation.to_string();
        to_js(&ExplanationView {
            explanation: &explanation,
            text,
        })
    }

    /// The candidate edges of a registration, in order (first = the edge its traffic
    /// uses), with distances. Throws for an unknown registration id.
    #[wasm_bindgen(unchecked_return_type = "Candidate[]")]
    pub fn edges(
        &self,
        #[wasm_bindgen(js_name = "registrationId")] registration_id: &str,
    ) -> Result<JsValue, WebError> {
        let doc = self.classifier().policy().document();
        let reg = self.registration_index(registration_id)?;
        let views: Vec<CandidateView<'_>> = self
            .classifier()
            .candidates(reg)
            .iter()
            .filter_map(|c| {
                let e = doc.edges.get(c.edge)?;
                Some(CandidateView {
                    edge: e.id.as_str(),
                    index: c.edge,
                    metro: e.metro.as_deref(),
                    provider: e.provider.as_deref(),
                    rank: c.rank,
                    distance_km: c.distance_km,
                    reason: c.reason,
                })
            })
            .collect();
        to_js(&views)
    }

    /// Everything a map needs: edges with coordinates and usability, registrations
    /// with their site and the edges they use (primary = first candidate, backup =
    /// second).
    #[wasm_bindgen(unchecked_return_type = "MapData")]
    pub fn map(&self) -> Result<JsValue, WebError> {
        let c = self.classifier();
        let policy = c.policy();
        let doc = policy.document();
        let edges = doc
            .edges
            .iter()
            .enumerate()
            .map(|(i, e)| MapEdge {
                id: e.id.as_str(),
                metro: e.metro.as_deref(),
                provider: e.provider.as_deref(),
                lat: e.lat,
                lon: e.lon,
                drained: e.drained,
                usable: policy.edge_usable(i),
                links: e.links.len(),
                usable_links: e.links.iter().filter(|l| !l.drained).count(),
            })
            .collect();
        let registrations = doc
            .registrations
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let site = policy.site(i)?;
                let route = c.route(i);
                let counts = policy.counts(i);
                Some(MapRegistration {
                    id: r.id.as_str(),
                    customer: r.customer.as_deref(),
                    location: r.location.as_deref(),
                    lat: site.lat,
                    lon: site.lon,
                    from_location: site.from_location,
                    primary: route.as_ref().map(|r| r.edge),
                    backup: route.as_ref().and_then(|r| r.backup),
                    pinned_primary: r.primary_edge.as_deref(),
                    pinned_backup: r.backup_edge.as_deref(),
                    prefixes: counts.prefixes,
                    eligible_prefixes: counts.eligible,
                    telemetry_prefixes: counts.telemetry,
                    telemetry: counts.telemetry > 0,
                    cluster: route.as_ref().map(|r| r.cluster),
                })
            })
            .collect();
        to_js(&MapData {
            edges,
            registrations,
        })
    }
}

/// The TypeScript vocabulary is written by hand above; these tests hold it to
/// `policy-core`'s, so a code, state or class added in Rust and not in TypeScript (or
/// the other way round) fails `cargo test`.
#[cfg(test)]
mod tests {
    use policy_core::{Class, Code, PrefixState};

    /// This file's text: `TS_TYPES` is consumed by wasm-bindgen's macro, so the test
    /// reads the section from the source itself.
    const TS_TYPES: &str = include_str!("web.rs");

    /// The string members of the union type `name` in `TS_TYPES`.
    fn union(name: &str) -> Vec<String> {
        let start = TS_TYPES
            .find(&format!("export type {name} ="))
            .unwrap_or_else(|| panic!("no type {name} in TS_TYPES"));
        let rest = &TS_TYPES[start..];
        let end = rest.find(';').unwrap_or(rest.len());
        rest[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect()
    }

    #[test]
    fn diagnostic_codes_match_policy_core() {
        let rust: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
        assert_eq!(union("DiagnosticCode"), rust);
    }

    #[test]
    fn prefix_states_match_policy_core() {
        let rust: Vec<String> = PrefixState::ALL
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        assert_eq!(union("PrefixState"), rust);
    }

    #[test]
    fn import_kinds_match_policy_core() {
        let rust: Vec<String> = policy_core::ImportKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(union("ImportKind"), rust);
        let rust: Vec<String> = policy_core::SectionKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(union("ImportSectionKind"), rust);
    }

    #[test]
    fn decision_classes_match_policy_core() {
        let rust: Vec<String> = Class::ALL.iter().map(|c| c.as_str().to_string()).collect();
        assert_eq!(union("DecisionClass"), rust);
    }
}
