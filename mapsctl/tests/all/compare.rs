//! `mapsctl diff` and `mapsctl what-if` against golden outputs (fixtures/diff/;
//! `UPDATE_GOLDEN=1` rewrites them, as `make golden` does).

use crate::common::{mapsctl, root};

/// Runs mapsctl and compares its standard output with `fixtures/diff/<golden>`.
fn golden(golden: &str, args: &[&str]) {
    let o = mapsctl(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let actual = String::from_utf8(o.stdout).unwrap();
    let path = root().join("fixtures/diff").join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make golden`)", path.display()));
    assert_eq!(actual, expected, "{golden} (run `make golden` if intended)");
}

const DEMO: &str = "fixtures/demo/policy.json";
const NEW: &str = "fixtures/diff/new-policy.json";
const TRACE: &str = "fixtures/demo/trace.jsonl";

#[test]
fn diff_of_the_demo_and_its_successor_is_golden() {
    golden("diff.golden.txt", &["diff", DEMO, NEW, "--trace", TRACE]);
    golden(
        "diff.golden.json",
        &["diff", DEMO, NEW, "--trace", TRACE, "--format", "json"],
    );
}

#[test]
fn diff_json_names_what_changed() {
    let o = mapsctl(&["diff", DEMO, NEW, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["registrations"]["added"],
        serde_json::json!(["fabrikam-or"])
    );
    assert_eq!(
        v["registrations"]["removed"],
        serde_json::json!(["consolidated-mx"])
    );
    let changed = v["prefixes"]["changed"].as_array().unwrap();
    let pending = changed
        .iter()
        .find(|c| c["prefix"] == "20.33.16.0/24")
        .unwrap();
    assert_eq!(pending["registration"], "fabrikam-wa");
    assert_eq!(pending["before"]["state"], "Pending");
    assert_eq!(pending["after"]["state"], "Verified");
    let routes = v["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0]["registration"], "wingtip-tx");
    assert_eq!(routes[0]["before"]["edge"], "dfw");
    assert_eq!(routes[0]["after"]["edge"], "chi");
}

#[test]
fn a_policy_and_itself_differ_in_nothing_packed_or_not() {
    for new in [DEMO, "fixtures/packed/policy.json"] {
        let o = mapsctl(&["diff", DEMO, new, "--format", "json", "--trace", TRACE]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["registrations"]["added"], serde_json::json!([]), "{new}");
        assert_eq!(v["prefixes"]["added"], serde_json::json!([]), "{new}");
        assert_eq!(v["prefixes"]["removed"], serde_json::json!([]), "{new}");
        assert_eq!(v["prefixes"]["changed"], serde_json::json!([]), "{new}");
        assert_eq!(v["routes"], serde_json::json!([]), "{new}");
        assert_eq!(v["trace"]["class_changed"], 0);
        assert_eq!(v["trace"]["edge_changed"], 0);
    }
}

#[test]
fn draining_sea_moves_fabrikam_to_its_pinned_backup() {
    golden(
        "what-if-sea.golden.txt",
        &[
            "what-if",
            "--policy",
            DEMO,
            "--drain-edge",
            "sea",
            "--trace",
            TRACE,
        ],
    );
    let o = mapsctl(&[
        "what-if",
        "--policy",
        DEMO,
        "--drain-edge",
        "sea",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fab = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["registration"] == "fabrikam-wa")
        .unwrap()
        .clone();
    assert_eq!(fab["before"]["edge"], "sea");
    assert_eq!(fab["after"]["edge"], "sjc");
}

/// SPEC §4: with the pinned primary unusable and `backup_edge: "None"`, the order is
/// the nearest usable edge alone (no backup). Only when no edge is usable at all does
/// the traffic fall to the default path (`after.edge: null`).
#[test]
fn draining_nyc_and_then_every_edge() {
    golden(
        "what-if-nyc.golden.json",
        &[
            "what-if",
            "--policy",
            DEMO,
            "--drain-edge",
            "nyc",
            "--format",
            "json",
        ],
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join(DEMO)).unwrap()).unwrap();
    let mut args = vec!["what-if", "--policy", DEMO, "--format", "json"];
    let ids: Vec<String> = doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        args.push("--drain-edge");
        args.push(id);
    }
    let o = mapsctl(&args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for c in changes {
        assert_eq!(c["after"]["edge"], serde_json::Value::Null, "{c}");
        assert_eq!(c["distance_added_km"], serde_json::Value::Null, "{c}");
    }
}

#[test]
fn an_unknown_edge_or_link_is_refused() {
    let o = mapsctl(&["what-if", "--policy", DEMO, "--drain-edge", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no edge has the id `nope`"));
    let o = mapsctl(&["what-if", "--policy", DEMO, "--drain-link", "nope-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no link has the id `nope-1`"));
}
