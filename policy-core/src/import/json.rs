//! Reading an import's JSON with JSON Pointers: every refusal names the file, the
//! pointer and the reason ([`ImportError::Malformed`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::ImportError;

/// Parses an input file's bytes (a UTF-8 byte order mark is skipped).
pub fn parse(name: &str, bytes: &[u8]) -> Result<Value, ImportError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| ImportError::NotJson {
        file: name.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Malformed input at `pointer` of `file`.
pub fn bad(file: &str, pointer: &str, reason: impl core::fmt::Display) -> ImportError {
    ImportError::Malformed {
        file: file.to_string(),
        pointer: pointer.to_string(),
        reason: reason.to_string(),
    }
}

/// `base` extended by one JSON Pointer reference token.
pub fn ptr(base: &str, token: &str) -> String {
    let mut p = String::from(base);
    crate::text::push_token(&mut p, token);
    p
}

/// What a JSON value is, in words.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn object<'v>(
    file: &str,
    v: &'v Value,
    at: &str,
) -> Result<&'v Map<String, Value>, ImportError> {
    v.as_object()
        .ok_or_else(|| bad(file, at, format!("expected an object, found {}", kind(v))))
}

pub fn opt_str<'v>(
    file: &str,
    obj: &'v Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'v str>, ImportError> {
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

pub fn req_str<'v>(
    file: &str,
    obj: &'v Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'v str, ImportError> {
    opt_str(file, obj, at, key)?
        .ok_or_else(|| bad(file, &ptr(at, key), format!("`{key}` is missing")))
}

/// An optional array of strings.
pub fn opt_strings(
    file: &str,
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Vec<String>, ImportError> {
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
