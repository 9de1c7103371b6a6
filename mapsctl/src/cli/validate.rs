//! `mapsctl validate`: diagnostics like a compiler's, or the JSON report.

use std::fmt::Write as _;
use std::path::Path;

use policy_core::{Report, Severity};

use super::{read_input, terminal_safe as safe, Format};

pub fn run(path: &Path, strict: bool, format: Format) -> u8 {
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let v = if policy_core::is_compiled(&bytes) {
        compiled_report(bytes.clone(), strict)
    } else {
        policy_core::validate(&bytes, strict)
    };
    let out = match format {
        Format::Json => match serde_json::to_string_pretty(&v.report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("mapsctl: cannot write the report: {e}");
                return 2;
            }
        },
        Format::Text => render_text(&v.report, &path.display().to_string(), &bytes),
    };
    if let Some(code) = super::print_out(&out) {
        return code;
    }
    if v.report.valid {
        0
    } else {
        1
    }
}

/// The report as compiler-style text: each diagnostic with its location, the source
/// line and a caret, the help; then the counts and the summary.
///
/// Linear in the source and the number of diagnostics: the source's lines are
/// indexed once (before, each diagnostic walked the text to its line).
/// A compiled policy file (`mapsctl compile`) checked as a proxy checks it (header,
/// checksum, tables): its report is the one made when it was compiled (with `strict`
/// applied now), or the reason it is refused.
fn compiled_report(bytes: Vec<u8>, strict: bool) -> policy_core::Validated {
    let report = match policy_core::load_compiled(bytes) {
        Ok(p) => {
            // Lines and columns are the source document's, not this file's.
            let mut diags = p.report.diagnostics;
            for d in &mut diags {
                (d.line, d.column) = (None, None);
            }
            Report::new(diags, p.report.summary, strict)
        }
        Err(e) => e.into_report(),
    };
    policy_core::Validated {
        report,
        policy: None,
    }
}

pub fn render_text(report: &Report, name: &str, source: &[u8]) -> String {
    let text = std::str::from_utf8(source).ok();
    let lines = text.map(LineIndex::new);
    let mut out = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(
            out,
            "{}[{}]: {}",
            d.severity,
            d.code,
            safe(&d.message, false)
        );
        let path = if d.path.is_empty() { "/" } else { &d.path };
        let path = safe(path, false);
        let name = safe(name, false);
        match (d.line, d.column) {
            (Some(l), Some(c)) => {
                let _ = writeln!(out, "  --> {name}:{l}:{c}  at {path}");
                if let Some(src_line) = text
                    .zip(lines.as_ref())
                    .and_then(|(t, idx)| idx.line(t, l as usize))
                {
                    if src_line.len() <= 640 && src_line.chars().count() <= 160 {
                        let before: String = src_line
                            .chars()
                            .take((c as usize).saturating_sub(1))
                            .collect();
                        let _ = writeln!(out, "   | {}", safe(src_line, false));
                        // The caret under the escaped text.
                        let pad: String = safe(&before, false)
                            .chars()
                            .map(|ch| if ch == '\t' { '\t' } else { ' ' })
                            .collect();
                        let _ = writeln!(out, "   | {pad}^");
                    }
                }
            }
            _ => {
                let _ = writeln!(out, "  --> {name}  at {path}");
            }
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "   = help: {}", safe(h, false));
        }
        let _ = writeln!(out);
    }
    let verdict = if report.valid {
        if report.warnings > 0 {
            "valid, with warnings (run with --strict for the MAPS-readiness check)"
        } else if report.strict {
            "valid and MAPS-ready"
        } else {
            "valid"
        }
    } else {
        "INVALID: this policy will not be loaded"
    };
    let _ = writeln!(
        out,
        "{}: {verdict}: {} error{}, {} warning{}",
        safe(name, false),
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        report.warnings,
        if report.warnings == 1 { "" } else { "s" },
    );
    if let Some(s) = &report.summary {
        let states: Vec<String> = s
            .prefixes_by_state
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  {} edges ({} usable, {} links), {} registrations, {} prefixes ({}; IPv4 {}, IPv6 {})",
            s.edges,
            s.usable_edges,
            s.links,
            s.registrations,
            s.prefixes,
            states.join(", "),
            s.ipv4_prefixes,
            s.ipv6_prefixes
        );
        let _ = writeln!(
            out,
            "  {} eligible; telemetry on {} prefixes: ${} at $15 per prefix; {} destination prefixes, {} domains",
            s.eligible_prefixes,
            s.telemetry_prefixes,
            s.telemetry_cost_usd,
            s.destination_prefixes,
            s.destination_domains
        );
    }
    let _ = Severity::Error;
    out
}

/// Where each line of a text starts, for the source line of any number of diagnostics
/// in one pass over the text.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// Line `n` (1-based) without its line ending, as `str::lines` gives it.
    fn line<'t>(&self, text: &'t str, n: usize) -> Option<&'t str> {
        let start = *self.starts.get(n.checked_sub(1)?)?;
        if start >= text.len() {
            // After a final newline (or in an empty text) there is no line.
            return None;
        }
        let end = self
            .starts
            .get(n)
            .map_or(text.len(), |e| e.saturating_sub(1));
        let line = text.get(start..end)?;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_lines() {
        for text in ["", "a", "a\n", "a\nb", "a\r\nb\r\n", "\n\n", "x\n\ny"] {
            let idx = LineIndex::new(text);
            for n in 1..6 {
                assert_eq!(idx.line(text, n), text.lines().nth(n - 1), "{text:?} {n}");
            }
        }
    }
}
