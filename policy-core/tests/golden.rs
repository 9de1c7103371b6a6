//! Golden files: validation reports for every invalid fixture, and decision lines for
//! every scenario trace. Regenerate with `make golden` (which runs
//! `UPDATE_GOLDEN=1 cargo test -p policy-core --test golden`) and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `actual` with the golden file, or rewrites it under UPDATE_GOLDEN.
fn check(golden: &Path, actual: &str) {
    if update() {
        fs::write(golden, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make golden`)", golden.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected {e}\n  actual   {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the golden file ({} vs {} lines):\n{}\n(run `make golden` if the change is intended)",
            golden.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn sorted(dir: &Path, pred: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pred(p))
        .collect();
    v.sort();
    v
}

#[test]
fn invalid_policies_give_their_golden_reports() {
    let dir = fixtures().join("invalid");
    let inputs = sorted(&dir, |p| {
        p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".golden.json")
    });
    assert!(
        inputs.len() >= 10,
        "expected the invalid fixtures in {}",
        dir.display()
    );
    for input in inputs {
        let bytes = fs::read(&input).unwrap();
        let stem = input.file_stem().unwrap().to_string_lossy().to_string();
        for strict in [false, true] {
            let v = policy_core::validate(&bytes, strict);
            let name = if strict {
                format!("{stem}.strict.golden.json")
            } else {
                format!("{stem}.golden.json")
            };
            // Strict goldens only where strictness changes the verdict.
            if strict && v.report.valid == policy_core::validate(&bytes, false).report.valid {
                continue;
            }
            let json = serde_json::to_string_pretty(&v.report).unwrap() + "\n";
            check(&dir.join(name), &json);
            assert_eq!(
                v.policy.is_some(),
                v.report.valid,
                "{stem}: policy iff valid"
            );
        }
    }
}

#[test]
fn every_invalid_fixture_is_refused_or_not_maps_ready() {
    for input in sorted(&fixtures().join("invalid"), |p| {
        p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().contains(".golden")
    }) {
        let bytes = fs::read(&input).unwrap();
        let strict = policy_core::validate(&bytes, true);
        assert!(
            !strict.report.valid,
            "{} passes strict validation",
            input.display()
        );
        assert!(strict
            .report
            .diagnostics
            .iter()
            .all(|d| !d.message.is_empty()));
    }
}

#[test]
fn scenario_traces_give_their_golden_decisions() {
    let scenarios = sorted(&fixtures(), |p| p.join("trace.jsonl").is_file());
    assert!(scenarios.iter().any(|p| p.ends_with("demo")));
    for dir in scenarios {
        let policy = fs::read(dir.join("policy.json")).unwrap();
        let engine =
            policy_core::load(&policy, false).unwrap_or_else(|r| panic!("{}: {r}", dir.display()));
        let trace = fs::read_to_string(dir.join("trace.jsonl")).unwrap();
        let mut out = String::new();
        // Every line, blank ones included (SPEC §5), as mapsctl and classifyTrace read it.
        for (i, line) in policy_core::trace_lines(&trace).enumerate() {
            let line = line.trim_ascii();
            policy_core::decide_line(&engine.classifier, i as u64 + 1, line, &mut out);
            out.push('\n');
        }
        check(&dir.join("decisions.golden.jsonl"), &out);
    }
}

#[test]
fn the_demo_policy_is_valid_and_covers_every_class() {
    let bytes = fs::read(fixtures().join("demo/policy.json")).unwrap();
    let engine = policy_core::load(&bytes, false).unwrap();
    assert!(
        engine.report.warnings > 0,
        "the demo shows readiness warnings"
    );
    let mut seen = std::collections::BTreeSet::new();
    for dir in ["demo", "no-edge", "categories"] {
        let golden =
            fs::read_to_string(fixtures().join(dir).join("decisions.golden.jsonl")).unwrap();
        for line in golden.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(c) = v["class"].as_str() {
                seen.insert(c.to_string());
            }
        }
    }
    for class in policy_core::Class::ALL {
        assert!(seen.contains(class.as_str()), "no scenario gives {class}");
    }
}

/// fixtures/packed/policy.json is the demo policy as `mapsctl pack` writes it: every
/// target's tests compare its views with the JSON form's (`make golden` rewrites it).
#[test]
fn the_packed_demo_is_the_demo_packed() {
    let demo = fs::read(fixtures().join("demo/policy.json")).unwrap();
    let policy = policy_core::validate(&demo, false).policy.unwrap();
    let doc = policy_core::pack_policy(&policy);
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    let dir = fixtures().join("packed");
    if update() {
        fs::create_dir_all(&dir).unwrap();
    }
    check(&dir.join("policy.json"), &text);
}
