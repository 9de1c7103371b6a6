//! Trace and decision lines (SPEC §5): one JSON object per line in, one out.
//!
//! `{"src": "198.51.100.7", "dst": "13.107.6.152", "host": "outlook.office365.com"}`
//! gives `{"src": "198.51.100.7", "class": "maps", ...}`. A line that is not such an
//! object gives `{"line": N, "error": "..."}` so that a stream keeps going and keeps
//! its order. Every target (CLI, plugin harness, Node) writes lines through here or
//! compares against lines written here.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Serialize};

use crate::classify::{Classifier, DecisionLine};

/// One trace line. Fields other than these are ignored.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TraceLine<'a> {
    /// Source address.
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    /// Destination address.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Cow<'a, str>>,
    /// Destination host name.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Cow<'a, str>>,
}

/// Parses a trace line; the error is a message for the `error` field.
pub fn parse_line(text: &str) -> Result<TraceLine<'_>, String> {
    serde_json::from_str(text).map_err(|e| format!("malformed trace line: {e}"))
}

/// The error line for line number `n` (1-based).
pub fn error_line(n: u64, message: &str) -> String {
    #[derive(Serialize)]
    struct E<'a> {
        line: u64,
        error: &'a str,
    }
    serde_json::to_string(&E {
        line: n,
        error: message,
    })
    .unwrap_or_default()
}

/// Classifies one trace line and writes its decision line (without newline) into
/// `out`. Returns false when the line was malformed (an error line was written).
///
/// ```
/// let engine = policy_core::load(br#"{"version": 1}"#, false).unwrap();
/// let mut out = String::new();
/// assert!(policy_core::decide_line(&engine.classifier, 1, r#"{"src": "192.0.2.1"}"#, &mut out));
/// assert_eq!(out, r#"{"src":"192.0.2.1","class":"unregistered"}"#);
/// out.clear();
/// assert!(!policy_core::decide_line(&engine.classifier, 2, "nope", &mut out));
/// assert!(out.starts_with(r#"{"line":2,"error":"#));
/// ```
pub fn decide_line(c: &Classifier, n: u64, text: &str, out: &mut String) -> bool {
    match parse_line(text) {
        Ok(t) => {
            let d = c.classify_text(&t.src, t.dst.as_deref(), t.host.as_deref());
            match serde_json::to_string(&DecisionLine {
                src: &t.src,
                decision: &d,
            }) {
                Ok(s) => {
                    out.push_str(&s);
                    true
                }
                Err(e) => {
                    out.push_str(&error_line(n, &format!("{e}")));
                    false
                }
            }
        }
        Err(e) => {
            out.push_str(&error_line(n, &e));
            false
        }
    }
}
