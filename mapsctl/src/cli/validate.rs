//! `mapsctl validate`: diagnostics like a compiler's, or the JSON report.

use std::fmt::Write as _;
use std::path::Path;

use policy_core::{Report, Severity};

use super::{read_input, Format};

pub fn run(path: &Path, strict: bool, format: Format) -> u8 {
    let bytes = match read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let v = policy_core::validate(&bytes, strict);
    match format {
        Format::Json => match serde_json::to_string_pretty(&v.report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("mapsctl: cannot write the report: {e}");
                return 2;
            }
        },
        Format::Text => print!(
            "{}",
            render_text(&v.report, &path.display().to_string(), &bytes)
        ),
    }
    if v.report.valid {
        0
    } else {
        1
    }
}

/// The report as compiler-style text: each diagnostic with its location, the source
/// line and a caret, the help; then the counts and the summary.
pub fn render_text(report: &Report, name: &str, source: &[u8]) -> String {
    let text = std::str::from_utf8(source).ok();
    let mut out = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(out, "{}[{}]: {}", d.severity, d.code, d.message);
        let path = if d.path.is_empty() { "/" } else { &d.path };
        match (d.line, d.column) {
            (Some(l), Some(c)) => {
                let _ = writeln!(out, "  --> {name}:{l}:{c}  at {path}");
                if let Some(src_line) =
                    text.and_then(|t| t.lines().nth((l as usize).saturating_sub(1)))
                {
                    if src_line.len() <= 640 && src_line.chars().count() <= 160 {
                        let _ = writeln!(out, "   | {src_line}");
                        let pad: String = src_line
                            .chars()
                            .take((c as usize).saturating_sub(1))
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
            let _ = writeln!(out, "   = help: {h}");
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
        "{name}: {verdict}: {} error{}, {} warning{}",
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
