//! Reading a policy document from bytes: UTF-8, JSON syntax, and the document's shape.
//!
//! The fast path deserialises the whole document in one go. When that fails on the
//! document's *shape* (an unknown field, a wrong type, a missing key), the slow path
//! re-reads it as a JSON tree and deserialises each part on its own, so that every
//! shape problem is reported at once, each with its JSON Pointer and line. Syntax
//! errors stop the read: they come with line and column, like a compiler's.
//!
//! Panic contract: no input makes anything here panic; nesting is bounded by
//! serde_json's recursion limit (128).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::MAX_PER_CODE;
use crate::diag::{Code, Diagnostic};
use crate::model::{
    Destination, Edge, Link, Options, PolicyDocument, PrefixEntry, Provider, Registration,
};
use crate::text::{closest, line_col, locate, push_token, shown};
use alloc::collections::BTreeMap;

/// Parses a policy document from raw bytes.
///
/// On failure, returns every diagnostic found (at least one), with lines filled in.
///
/// ```
/// let doc = policy_core::parse_bytes(br#"{"version": 1}"#).unwrap();
/// assert_eq!(doc.version, 1);
/// let errs = policy_core::parse_bytes(br#"{"version": 1, "edgez": []}"#).unwrap_err();
/// assert_eq!(errs[0].code.as_str(), "unknown-field");
/// assert_eq!(errs[0].path, "/edgez");
/// ```
pub fn parse_bytes(bytes: &[u8]) -> Result<PolicyDocument, Vec<Diagnostic>> {
    match core::str::from_utf8(bytes) {
        Ok(text) => parse_str(text),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or(&[]);
            let prefix = core::str::from_utf8(good).unwrap_or("");
            let (line, col) = line_col(prefix, prefix.len());
            Err(alloc::vec![Diagnostic::new(
                Code::NotUtf8,
                "",
                format!(
                    "the file is not UTF-8 text: invalid byte at offset {}",
                    e.valid_up_to()
                ),
            )
            .with_help("save the policy as UTF-8 JSON")
            .at(line, col)])
        }
    }
}

/// Parses a policy document from text. See [`parse_bytes`].
pub fn parse_str(text: &str) -> Result<PolicyDocument, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(alloc::vec![Diagnostic::new(
            Code::EmptyDocument,
            "",
            "the policy document is empty",
        )
        .with_help("a minimal policy is {\"version\": 1}")]);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let first = match serde_path_to_error::deserialize::<_, PolicyDocument>(&mut de) {
        Ok(doc) => match de.end() {
            Ok(()) => return Ok(doc),
            Err(e) => return Err(alloc::vec![syntax(&e)]),
        },
        Err(e) => e,
    };
    if !matches!(first.inner().classify(), serde_json::error::Category::Data) {
        return Err(alloc::vec![syntax(first.inner())]);
    }
    // Slow path: the JSON is well-formed but its shape is wrong somewhere.
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(alloc::vec![syntax(&e)]),
    };
    let mut diags = Vec::new();
    collect_shape_errors(&value, &mut diags);
    if diags.is_empty() {
        // Should not happen; report the first error as found.
        diags.push(data_error("", &first));
    }
    let mut diags = cap_per_code(diags);
    fill_lines(text, &mut diags);
    crate::diag::sort_by_position(&mut diags);
    Err(diags)
}

/// At most [`MAX_PER_CODE`] diagnostics of each code (the first ones, in document
/// order), then per code over the cap one line counting the rest, as validation does:
/// 40,000 prefixes with a misspelt key give 100 `unknown-field` errors and a count.
fn cap_per_code(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut per_code: BTreeMap<Code, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(diags.len().min(MAX_PER_CODE * 4));
    for d in diags {
        let n = per_code.entry(d.code).or_insert(0);
        *n += 1;
        if *n <= MAX_PER_CODE {
            out.push(d);
        }
    }
    for (code, n) in per_code {
        if n > MAX_PER_CODE {
            out.push(Diagnostic::not_shown(code, n - MAX_PER_CODE));
        }
    }
    out
}

/// Fills in `line`/`column` of diagnostics that have a path and no position yet.
pub fn fill_lines(text: &str, diags: &mut [Diagnostic]) {
    let wanted: Vec<&str> = diags
        .iter()
        .filter(|d| d.line.is_none() && !d.is_not_shown())
        .map(|d| d.path.as_str())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let found = locate(text, &wanted);
    // Every offset's line and column in one pass over the text.
    let positions = crate::text::line_cols(text, found.values().copied());
    for d in diags
        .iter_mut()
        .filter(|d| d.line.is_none() && !d.is_not_shown())
    {
        if let Some((line, col)) = found.get(&d.path).and_then(|o| positions.get(o)) {
            d.line = Some(*line);
            d.column = Some(*col);
        }
    }
}

fn syntax(e: &serde_json::Error) -> Diagnostic {
    let msg = e.to_string();
    // serde_json appends " at line L column C"; we carry those separately.
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(&msg).to_string(),
        None => msg,
    };
    let help = match e.classify() {
        serde_json::error::Category::Eof => "the document ends too early: is the file truncated?",
        _ if msg.contains("recursion limit") => "nesting is limited to 128 levels",
        _ if msg.contains("out of range") => "use a number of ordinary size",
        _ => "fix the JSON syntax at that position",
    };
    Diagnostic::new(Code::BadJson, "", format!("invalid JSON: {msg}"))
        .with_help(help)
        .at(e.line() as u32, e.column() as u32)
}

const TOP_FIELDS: &[&str] = &[
    "version",
    "provider",
    "edges",
    "registrations",
    "destinations",
    "options",
    "prefix_table",
];

fn collect_shape_errors(value: &Value, diags: &mut Vec<Diagnostic>) {
    let Some(top) = value.as_object() else {
        diags.push(Diagnostic::new(
            Code::WrongType,
            "",
            format!("the policy must be a JSON object, found {}", kind(value)),
        ));
        return;
    };
    if !top.contains_key("version") {
        diags.push(
            Diagnostic::new(Code::MissingField, "", "missing field `version`")
                .with_help("add \"version\": 1"),
        );
    }
    for (key, v) in top {
        let mut path = String::new();
        push_token(&mut path, key);
        match key.as_str() {
            "version" => check::<u64>(v, &path, diags),
            "provider" => check::<Option<Provider>>(v, &path, diags),
            "options" => check::<Options>(v, &path, diags),
            "prefix_table" => check::<Option<crate::packed::PackedTable>>(v, &path, diags),
            "edges" => each::<Edge>(v, &path, diags, |edge, path, diags| {
                // Report the edge's own fields and each link separately.
                dig::<Edge, Link>(edge, path, "links", diags)
            }),
            "destinations" => each::<Destination>(v, &path, diags, |_, _, _| false),
            "registrations" => each::<Registration>(v, &path, diags, |reg, path, diags| {
                // Report the registration's own fields and each prefix separately, so
                // two bad prefixes in one registration are both reported.
                dig::<Registration, PrefixEntry>(reg, path, "prefixes", diags)
            }),
            other => diags.push(unknown_field(&path, other, TOP_FIELDS)),
        }
    }
}

/// Checks an object of type `T` with its array field `field` emptied, then each
/// element of that array as a `C`. Returns false when `value` is not an object.
fn dig<T: DeserializeOwned, C: DeserializeOwned>(
    value: &Value,
    path: &str,
    field: &str,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let Some(obj) = value.as_object() else {
        return false;
    };
    let mut outer = obj.clone();
    let children = outer.insert(field.to_string(), Value::Array(Vec::new()));
    check::<T>(&Value::Object(outer), path, diags);
    if let Some(children) = children {
        let mut p = String::from(path);
        push_token(&mut p, field);
        each::<C>(&children, &p, diags, |_, _, _| false);
    }
    true
}

/// Deserialises every element of an array on its own. `dig` may report a failing
/// element's errors in more detail; it returns true when it did.
fn each<T: DeserializeOwned>(
    v: &Value,
    path: &str,
    diags: &mut Vec<Diagnostic>,
    dig: impl Fn(&Value, &str, &mut Vec<Diagnostic>) -> bool,
) {
    let Some(items) = v.as_array() else {
        diags.push(Diagnostic::new(
            Code::WrongType,
            path,
            format!("expected an array, found {}", kind(v)),
        ));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let mut p = String::from(path);
        push_token(&mut p, &format!("{i}"));
        if serde_json::from_value::<T>(item.clone()).is_err() && !dig(item, &p, diags) {
            check::<T>(item, &p, diags);
        }
    }
}

fn check<T: DeserializeOwned>(v: &Value, path: &str, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = serde_path_to_error::deserialize::<_, T>(v.clone()) {
        diags.push(data_error(path, &e));
    }
}

fn data_error<E: core::fmt::Display>(base: &str, e: &serde_path_to_error::Error<E>) -> Diagnostic {
    let mut path = String::from(base);
    for seg in e.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => {
                push_token(&mut path, &format!("{index}"))
            }
            serde_path_to_error::Segment::Map { key } => push_token(&mut path, key),
            serde_path_to_error::Segment::Enum { variant } => push_token(&mut path, variant),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let msg = e.inner().to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(&msg).to_string(),
        None => msg,
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        // serde_path_to_error's path stops at the object; point at the key itself.
        if !path.ends_with(&format!("/{name}")) {
            push_token(&mut path, name);
        }
        return unknown_field(&path, name, &expected);
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        return Diagnostic::new(Code::MissingField, path, format!("missing field `{name}`"))
            .with_help(format!("add \"{name}\""));
    }
    if msg.starts_with("invalid type") {
        return Diagnostic::new(Code::WrongType, path, msg);
    }
    Diagnostic::new(Code::BadValue, path, msg)
}

fn unknown_field(path: &str, name: &str, expected: &[&str]) -> Diagnostic {
    let d = Diagnostic::new(
        Code::UnknownField,
        path,
        format!("unknown field `{}`", shown(name)),
    );
    match closest(name, expected.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None if expected.is_empty() => d.with_help("remove it"),
        None => d.with_help(format!("expected one of: {}", expected.join(", "))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: Result<PolicyDocument, Vec<Diagnostic>>) -> Vec<(String, String)> {
        r.unwrap_err()
            .into_iter()
            .map(|d| (d.code.as_str().to_string(), d.path))
            .collect()
    }

    #[test]
    fn reports_every_unknown_field_with_a_suggestion() {
        let text = r#"{"version": 1,
  "edges": [{"id": "a", "lat": 1, "lon": 2, "lnks": []}, {"id": "b", "lat": 1, "lon": 2, "drianed": true}],
  "registrations": [{"id": "r", "location": "Texas", "prefixes": [
      {"prefix": "1.0.0.0/8", "state": "Verified", "telemtry": true},
      {"prefix": "2.0.0.0/8", "stat": "Verified"}]}]}"#;
        let errs = parse_str(text).unwrap_err();
        let got: Vec<_> = errs
            .iter()
            .map(|d| (d.code.as_str(), d.path.as_str()))
            .collect();
        assert!(got.contains(&("unknown-field", "/edges/0/lnks")), "{got:?}");
        assert!(
            got.contains(&("unknown-field", "/edges/1/drianed")),
            "{got:?}"
        );
        assert!(
            got.contains(&("unknown-field", "/registrations/0/prefixes/0/telemtry")),
            "{got:?}"
        );
        assert!(
            got.contains(&("unknown-field", "/registrations/0/prefixes/1/stat")),
            "{got:?}"
        );
        let lnks = errs.iter().find(|d| d.path == "/edges/0/lnks").unwrap();
        assert_eq!(lnks.help.as_deref(), Some("did you mean `links`?"));
        assert_eq!(lnks.line, Some(2));
    }

    #[test]
    fn shape_errors_are_capped_per_code() {
        let prefixes: Vec<String> = (0..40_000)
            .map(|i| {
                format!(
                    "{{\"prefix\": \"20.{}.{}.0/24\", \"stat\": \"Verified\"}}",
                    i / 256 % 256,
                    i % 256
                )
            })
            .collect();
        let text = format!(
            "{{\"version\": 1, \"registrations\": [{{\"id\": \"r\", \"location\": \"Texas\", \"prefixes\": [\n{}]}}]}}",
            prefixes.join(",\n")
        );
        let errs = parse_str(&text).unwrap_err();
        let unknown: Vec<&Diagnostic> = errs
            .iter()
            .filter(|d| d.code == Code::UnknownField)
            .collect();
        assert_eq!(unknown.len(), MAX_PER_CODE + 1);
        assert_eq!(errs.len(), MAX_PER_CODE + 1);
        assert!(errs
            .iter()
            .any(|d| d.message == "... and 39900 more `unknown-field` diagnostics not shown"));
        // The count comes last, with no place of its own.
        let last = errs.last().unwrap();
        assert!(last.is_not_shown() && last.line.is_none(), "{last:?}");
        // The shown ones are the first, with their lines.
        let first = unknown.iter().find(|d| !d.path.is_empty()).unwrap();
        assert_eq!(first.path, "/registrations/0/prefixes/0/stat");
        assert_eq!(first.line, Some(2));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let errs = parse_str("{\n  \"version\": 1,\n  \"edges\": [,]\n}").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].code, Code::BadJson);
        assert_eq!(errs[0].line, Some(3));
    }

    #[test]
    fn truncated_empty_nested_huge_and_binary_inputs_are_errors() {
        assert_eq!(
            codes(parse_str("{\"version\": 1, \"edges\": [")),
            [("bad-json".into(), "".into())]
        );
        assert_eq!(
            codes(parse_str("  \n")),
            [("empty-document".into(), "".into())]
        );
        let deep = format!("{{\"version\": 1, \"edges\": {}}}", "[".repeat(10_000));
        assert_eq!(codes(parse_str(&deep))[0].0, "bad-json");
        assert_eq!(codes(parse_str("{\"version\": 1e999}"))[0].0, "bad-json");
        assert_eq!(
            codes(parse_str("{\"version\": 123456789012345678901234567890}"))[0],
            ("wrong-type".into(), "/version".into())
        );
        assert_eq!(codes(parse_bytes(b"{\"version\": \xff}"))[0].0, "not-utf8");
        assert_eq!(codes(parse_str("[1, 2]"))[0].0, "wrong-type");
    }

    #[test]
    fn wrong_types_and_missing_fields_have_paths() {
        let got = codes(parse_str(
            r#"{"version": 1, "edges": [{"id": 7, "lat": "x", "lon": 1}, {"lat": 1, "lon": 1}]}"#,
        ));
        assert!(
            got.contains(&("wrong-type".into(), "/edges/0/id".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&("missing-field".into(), "/edges/1".into())),
            "{got:?}"
        );
    }
}
