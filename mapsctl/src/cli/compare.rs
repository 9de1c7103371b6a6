//! `mapsctl diff` and `mapsctl what-if`: what a change would do, before it is made.
//! The comparisons are `policy-core`'s ([`policy_core::diff`], [`policy_core::what_if`]);
//! this module reads the files, replays a trace through both policies, and prints.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use policy_core::{Classifier, Policy, PolicyDiff, RouteChange};
use serde_json::{json, Value};

use super::{read_input, validate, Format};

/// Reads and validates a policy, keeping its packed table (for prefix facts); on
/// failure prints why and returns the exit code.
fn policy(path: &Path) -> Result<Policy, u8> {
    let bytes = read_input(path).map_err(|e| {
        eprintln!("{e}");
        2u8
    })?;
    let v = policy_core::validate(&bytes, false);
    match v.policy {
        Some(p) if v.report.valid => Ok(p),
        _ => {
            eprintln!("mapsctl: {} is not a valid policy:", path.display());
            eprint!(
                "{}",
                validate::render_text(&v.report, &path.display().to_string(), &bytes)
            );
            Err(1)
        }
    }
}

/// Flows of a trace that decide differently under two classifiers: how many change
/// class, how many change edge, and how many move per (edge before, edge after) pair
/// (`-` for none).
struct Moves {
    flows: usize,
    class_changed: usize,
    edge_changed: usize,
    pairs: BTreeMap<(String, String), usize>,
}

fn replay(trace: &Path, old: &Classifier, new: &Classifier) -> Result<Moves, u8> {
    let file = std::fs::File::open(trace).map_err(|e| {
        eprintln!("mapsctl: cannot read {}: {e}", trace.display());
        2u8
    })?;
    let mut m = Moves {
        flows: 0,
        class_changed: 0,
        edge_changed: 0,
        pairs: BTreeMap::new(),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| {
            eprintln!("mapsctl: cannot read {}: {e}", trace.display());
            2u8
        })?;
        let Ok(t) = policy_core::parse_line(line.trim()) else {
            continue; // not a flow (`classify` reports those lines)
        };
        let (dst, host) = (t.dst.as_deref(), t.host.as_deref());
        let a = old.classify_text(&t.src, dst, host);
        let b = new.classify_text(&t.src, dst, host);
        m.flows += 1;
        if a.class() != b.class() {
            m.class_changed += 1;
        }
        if a.edge() != b.edge() {
            m.edge_changed += 1;
            let key = (
                a.edge().unwrap_or("-").to_string(),
                b.edge().unwrap_or("-").to_string(),
            );
            *m.pairs.entry(key).or_default() += 1;
        }
    }
    Ok(m)
}

fn moves_json(m: &Moves) -> Value {
    json!({
        "flows": m.flows,
        "class_changed": m.class_changed,
        "edge_changed": m.edge_changed,
        "moves": m.pairs.iter().map(|((a, b), n)| json!({"before": a, "after": b, "flows": n})).collect::<Vec<_>>(),
    })
}

fn moves_text(m: &Moves, out: &mut String) {
    out.push_str(&format!(
        "trace: {} flows, {} change class, {} change edge\n",
        m.flows, m.class_changed, m.edge_changed
    ));
    for ((a, b), n) in &m.pairs {
        out.push_str(&format!("  {a} -> {b}: {n}\n"));
    }
}

fn ends(e: &policy_core::Ends) -> String {
    match (&e.edge, &e.backup) {
        (None, _) => "default path".to_string(),
        (Some(edge), Some(b)) => format!("{edge} (backup {b})"),
        (Some(edge), None) => format!("{edge} (no backup)"),
    }
}

fn routes_text(routes: &[RouteChange], out: &mut String) {
    for r in routes {
        let km = r
            .distance_added_km
            .map(|d| format!(", {d:+.1} km"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}: {} -> {}{km}\n",
            r.registration,
            ends(&r.before),
            ends(&r.after)
        ));
    }
}

fn print(format: Format, value: &Value, text: String) -> u8 {
    let out = match format {
        Format::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("mapsctl: cannot write: {e}");
                return 2;
            }
        },
        Format::Text => super::terminal_safe(&text, true).into_owned(),
    };
    super::print_out(&out).unwrap_or(0)
}

fn diff_text(d: &PolicyDiff) -> String {
    let mut out = String::new();
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    out.push_str(&format!(
        "registrations: added {}; removed {}\n",
        list(&d.registrations.added),
        list(&d.registrations.removed)
    ));
    out.push_str(&format!(
        "prefixes: {} added, {} removed, {} changed\n",
        d.prefixes.added.len(),
        d.prefixes.removed.len(),
        d.prefixes.changed.len()
    ));
    for p in &d.prefixes.added {
        out.push_str(&format!(
            "  + {} {} ({})\n",
            p.registration, p.prefix, p.facts.state
        ));
    }
    for p in &d.prefixes.removed {
        out.push_str(&format!(
            "  - {} {} ({})\n",
            p.registration, p.prefix, p.facts.state
        ));
    }
    for c in &d.prefixes.changed {
        let mut what = Vec::new();
        if c.before.state != c.after.state {
            what.push(format!("state {} -> {}", c.before.state, c.after.state));
        }
        if c.before.key != c.after.key {
            what.push(format!("key {} -> {}", c.before.key, c.after.key));
        }
        if c.before.telemetry != c.after.telemetry {
            what.push(format!(
                "telemetry {} -> {}",
                c.before.telemetry, c.after.telemetry
            ));
        }
        out.push_str(&format!(
            "  ~ {} {}: {}\n",
            c.registration,
            c.prefix,
            what.join(", ")
        ));
    }
    out.push_str(&format!("routes: {} change\n", d.routes.len()));
    routes_text(&d.routes, &mut out);
    out
}

/// `mapsctl diff OLD NEW [--trace FILE] [--format text|json]`.
pub fn diff(old: &Path, new: &Path, trace: Option<&Path>, format: Format) -> u8 {
    let (a, b) = match (policy(old), policy(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let d = policy_core::diff(&a, &b);
    let mut value = match serde_json::to_value(&d) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("mapsctl: cannot write: {e}");
            return 2;
        }
    };
    let mut text = diff_text(&d);
    if let Some(t) = trace {
        let m = match replay(t, &Classifier::lean(a), &Classifier::lean(b)) {
            Ok(m) => m,
            Err(c) => return c,
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("trace".into(), moves_json(&m));
        }
        moves_text(&m, &mut text);
    }
    print(format, &value, text)
}

/// `mapsctl what-if --policy P [--drain-edge ID]... [--drain-link ID]... [--trace FILE]`.
pub fn what_if(
    path: &Path,
    edges: &[String],
    links: &[String],
    trace: Option<&Path>,
    format: Format,
) -> u8 {
    let p = match policy(path) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let e: Vec<&str> = edges.iter().map(String::as_str).collect();
    let l: Vec<&str> = links.iter().map(String::as_str).collect();
    let (drained, changes) = match policy_core::what_if(&p, &e, &l) {
        Ok(x) => x,
        Err(err) => {
            eprintln!("mapsctl: {err}");
            return 2;
        }
    };
    let mut value = json!({"drained": {"edges": edges, "links": links}, "changes": changes});
    let mut text = format!(
        "draining edges [{}], links [{}]: {} registration(s) move\n",
        edges.join(", "),
        links.join(", "),
        changes.len()
    );
    routes_text(&changes, &mut text);
    if let Some(t) = trace {
        let m = match replay(t, &Classifier::lean(p), &Classifier::lean(drained)) {
            Ok(m) => m,
            Err(c) => return c,
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("trace".into(), moves_json(&m));
        }
        moves_text(&m, &mut text);
    }
    print(format, &value, text)
}
