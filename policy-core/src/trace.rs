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

/// The longest trace line read, in bytes (without its line ending). A longer line is
/// a malformed line; readers skip it without holding it whole in memory.
pub const MAX_TRACE_LINE_BYTES: usize = 64 * 1024;

/// The `error` of a trace line longer than [`MAX_TRACE_LINE_BYTES`].
pub fn line_too_long_message() -> String {
    format!(
        "malformed trace line: longer than {MAX_TRACE_LINE_BYTES} bytes (a trace line is one \
         small JSON object)"
    )
}

/// Parses a trace line; the error is a message for the `error` field. A blank or
/// whitespace-only line is malformed (SPEC §5: it still gets its own output line), and
/// so is a line longer than [`MAX_TRACE_LINE_BYTES`].
pub fn parse_line(text: &str) -> Result<TraceLine<'_>, String> {
    if text.len() > MAX_TRACE_LINE_BYTES {
        return Err(line_too_long_message());
    }
    if text.trim().is_empty() {
        return Err(String::from(
            "malformed trace line: the line is blank (one JSON object per line)",
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("malformed trace line: {e}"))
}

/// The lines of a whole trace text, as every reader numbers them: split at `\n`, a
/// final line ending does not start another line, blank lines are lines.
pub fn trace_lines(text: &str) -> impl Iterator<Item = &str> {
    let empty = text.is_empty();
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').filter(move |_| !empty)
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
/// out.clear();
/// assert!(!policy_core::decide_line(&engine.classifier, 3, "  ", &mut out));
/// assert!(out.starts_with(r#"{"line":3,"error":"malformed trace line: the line is blank"#));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_long_lines_are_malformed() {
        assert!(parse_line("").unwrap_err().contains("blank"));
        assert!(parse_line(" \t\r").unwrap_err().contains("blank"));
        let long = alloc::format!("{{\"src\": \"{}\"}}", "1".repeat(MAX_TRACE_LINE_BYTES));
        assert_eq!(parse_line(&long).unwrap_err(), line_too_long_message());
        assert!(parse_line(r#"{"src": "192.0.2.1"}"#).is_ok());
    }

    #[test]
    fn trace_lines_keep_blank_lines() {
        let v: alloc::vec::Vec<&str> = trace_lines("a\n\n  \nb\n").collect();
        assert_eq!(v, ["a", "", "  ", "b"]);
        assert_eq!(trace_lines("a\nb").count(), 2);
        assert_eq!(trace_lines("").count(), 0);
        assert_eq!(trace_lines("\n").count(), 1);
        assert_eq!(trace_lines("\n\n").count(), 2);
    }
}
