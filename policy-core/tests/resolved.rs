//! The resolved policy: what adapters read instead of deriving it, the same for JSON
//! and packed prefixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use policy_core::cluster_name;
use policy_core::{ClientRule, PrefixState};

const DEMO: &[u8] = include_bytes!("../../fixtures/demo/policy.json");

fn packed_demo() -> Vec<u8> {
    let policy = policy_core::validate(DEMO, false).policy.unwrap();
    let doc = policy_core::pack_policy(&policy);
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn telemetry_follows_the_matched_prefix() {
    let text = br#"{"version": 1,
      "edges": [{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{"id": "sea-1"}]}],
      "registrations": [{"id": "r", "location": "Washington", "prefixes": [
        {"prefix": "20.1.0.0/16", "state": "Verified", "telemetry": true},
        {"prefix": "20.2.0.0/16", "state": "Verified"}]}]}"#;
    for bytes in [text.to_vec(), {
        let p = policy_core::validate(text, false).policy.unwrap();
        serde_json::to_vec(&policy_core::pack_policy(&p)).unwrap()
    }] {
        let engine = policy_core::load(&bytes, false).unwrap();
        let c = &engine.classifier;
        assert!(c.classify_text("20.1.0.1", None, None).telemetry());
        assert!(!c.classify_text("20.2.0.1", None, None).telemetry());
        let counts = c.policy().counts(0);
        assert_eq!(
            (counts.prefixes, counts.eligible, counts.telemetry),
            (2, 2, 1)
        );
    }
}

#[test]
fn packed_and_json_policies_answer_every_view_alike() {
    let json = policy_core::load(DEMO, false).unwrap();
    let packed_bytes = packed_demo();
    let packed = policy_core::load(&packed_bytes, false).unwrap();
    let (a, b) = (&json.classifier, &packed.classifier);
    let regs = a.policy().document().registrations.len();
    assert!(regs > 0);
    for r in 0..regs {
        assert_eq!(
            a.policy().counts(r),
            b.policy().counts(r),
            "registration {r}"
        );
        assert_eq!(a.route(r), b.route(r));
        let mut pa = a.prefixes_of(r, usize::MAX);
        let mut pb = b.prefixes_of(r, usize::MAX);
        assert!(!pa.is_empty());
        pa.sort_by(|x, y| x.prefix.cmp(&y.prefix));
        pb.sort_by(|x, y| x.prefix.cmp(&y.prefix));
        assert_eq!(
            serde_json::to_value(&pa).unwrap(),
            serde_json::to_value(&pb).unwrap()
        );
    }
    for src in [
        "20.33.1.10",
        "52.160.42.1",
        "20.33.16.5",
        "2603:10a0:400::10",
        "198.18.0.1",
    ] {
        let ea = serde_json::to_value(a.explain(src, None, Some("teams.microsoft.com"))).unwrap();
        let eb = serde_json::to_value(b.explain(src, None, Some("teams.microsoft.com"))).unwrap();
        assert_eq!(ea, eb, "{src}");
    }
    // The case of the bug report: the matched prefix is named for a packed policy.
    let e = b.explain("20.33.1.10", None, Some("outlook.office365.com"));
    assert_eq!(e.class.as_str(), "maps");
    assert!(e.matched.is_some());
}

#[test]
fn a_lean_classifier_still_names_the_matched_prefix() {
    let engine = policy_core::load_owned(DEMO.to_vec(), false).unwrap();
    let e = engine.classifier.explain("52.160.42.1", None, None);
    assert_eq!(e.matched.unwrap().prefix, "52.160.42.0/24");
    assert!(e.also_inside.is_empty());
}

#[test]
fn decisions_carry_their_route() {
    let engine = policy_core::load(DEMO, false).unwrap();
    let c = &engine.classifier;
    let d = c.classify_text("20.33.1.10", None, Some("outlook.office365.com"));
    assert_eq!(d.class().as_str(), "maps");
    let want = cluster_name(d.edge().unwrap(), d.backup());
    assert_eq!(d.cluster(), Some(want.as_str()));
    let route = c.route(d.registration_index().unwrap()).unwrap();
    assert_eq!(route.cluster, want);
    assert!(c.routes().iter().any(|r| r.cluster == want));
    // Not maps: no cluster.
    assert_eq!(c.classify_text("198.18.0.1", None, None).cluster(), None);
    // Routes are distinct and sorted.
    let routes = c.routes();
    assert!(routes.windows(2).all(|w| w[0].cluster < w[1].cluster));
}

#[test]
fn header_names_and_client_rule_come_resolved() {
    let text = br#"{"version": 1,
      "edges": [{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{"id": "sea-1"}]}],
      "registrations": [{"id": "r", "location": "Washington",
        "prefixes": [{"prefix": "20.1.0.0/16", "state": "Pending"}]}],
      "options": {"header_prefix": "x-edge-", "eligible_states": ["Verified", "Pending"],
                  "client_address": {"from": "xff", "trusted_hops": 2}}}"#;
    let engine = policy_core::load(text, false).unwrap();
    let p = engine.classifier.policy();
    let h = p.headers();
    assert_eq!(
        (
            h.prefix.as_str(),
            h.class.as_str(),
            h.cluster.as_str(),
            h.decision.as_str()
        ),
        (
            "x-edge-",
            "x-edge-class",
            "x-edge-cluster",
            "x-edge-decision"
        )
    );
    assert!(h.is_ours("X-EDGE-cluster"));
    assert!(!h.is_ours("x-forwarded-for"));
    assert_eq!(p.client_rule(), ClientRule::Xff { trusted_hops: 2 });
    assert_eq!(
        p.eligible_states().collect::<Vec<_>>(),
        vec![PrefixState::Verified, PrefixState::Pending]
    );
    assert!(!p.needs_destination_address());
}

/// Regression: with more duplicate (or nested) prefixes than the per-code cap, none was
/// shown and the "... and N more" line under-counted by the cap.
#[test]
fn over_the_cap_the_first_findings_are_shown_and_the_rest_counted() {
    let prefixes: Vec<String> = (0..250)
        .map(|i| {
            format!(
                r#"{{"prefix": "20.{}.{}.0/24", "state": "Verified"}}"#,
                i / 200,
                i % 200
            )
        })
        .collect();
    let list = prefixes.join(",");
    let text = format!(
        r#"{{"version": 1,
      "edges": [{{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{{"id": "sea-1"}}]}}],
      "registrations": [
        {{"id": "a", "location": "Washington", "prefixes": [{list}]}},
        {{"id": "b", "location": "Washington", "prefixes": [{list}]}}]}}"#
    );
    let report = policy_core::validate(text.as_bytes(), false).report;
    let dups: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "duplicate-prefix")
        .collect();
    let shown = dups.iter().filter(|d| !d.path.is_empty()).count();
    assert_eq!(shown, policy_core::MAX_PER_CODE);
    let more: Vec<_> = dups.iter().filter(|d| d.path.is_empty()).collect();
    assert_eq!(more.len(), 1);
    assert!(
        more[0].message.contains("... and 150 more"),
        "{}",
        more[0].message
    );
}

/// Explain names an entry whose ports allow the flow (regression: it named an entry
/// listing only another port).
#[test]
fn explain_names_an_entry_that_allows_the_flows_port() {
    let policy = std::fs::read("../fixtures/categories/policy.json")
        .or_else(|_| std::fs::read("fixtures/categories/policy.json"))
        .unwrap();
    let engine = policy_core::load(&policy, false).unwrap();
    let e = engine
        .classifier
        .explain("20.33.1.15", None, Some("contoso-files.sharepoint.com:80"));
    assert_eq!(e.class.as_str(), "excluded-category");
    assert!(
        e.destination.contains("C: SharePoint files"),
        "{}",
        e.destination
    );
    let e = engine
        .classifier
        .explain("20.33.1.14", None, Some("contoso-files.sharepoint.com:443"));
    assert_eq!(e.class.as_str(), "maps");
    assert_eq!(e.category.map(|c| c.as_str()), Some("Optimize"));
}

/// SPEC §2: `backup_edge: "None"` means no backup site, so when the pinned primary fails
/// the traffic takes the default path — it is not moved to the nearest other edge.
#[test]
fn a_failed_pinned_primary_without_backup_falls_to_the_default_path() {
    let policy = |nyc_drained: bool, backup: &str, pinned: bool| {
        let primary = if pinned {
            r#""primary_edge": "nyc","#
        } else {
            ""
        };
        format!(
            r#"{{"version": 1,
          "edges": [
            {{"id": "nyc", "lat": 40.71, "lon": -74.01, "drained": {nyc_drained},
              "links": [{{"id": "nyc-1"}}]}},
            {{"id": "ash", "lat": 39.04, "lon": -77.49, "links": [{{"id": "ash-1"}}]}}],
          "registrations": [{{"id": "proseware-ny", "location": "New York", {primary}
            "backup_edge": "{backup}",
            "prefixes": [{{"prefix": "65.52.96.0/20", "state": "Verified"}}]}}]}}"#
        )
    };
    let decide = |text: String| {
        let engine = policy_core::load(text.as_bytes(), false).unwrap();
        let d = engine.classifier.classify_text("65.52.96.1", None, None);
        (
            d.class().as_str().to_string(),
            d.edge().map(str::to_string),
            d.cluster().map(str::to_string),
        )
    };
    // Primary up: it serves, with no failover.
    assert_eq!(
        decide(policy(false, "None", true)),
        ("maps".into(), Some("nyc".into()), Some("maps_nyc".into()))
    );
    // Primary drained, no backup site: no edge, the default path.
    assert_eq!(
        decide(policy(true, "None", true)),
        ("no-edge".into(), None, None)
    );
    // Primary drained with a backup: the backup serves.
    assert_eq!(decide(policy(true, "ash", true)).1.as_deref(), Some("ash"));
    // No pinned primary: "None" keeps the nearest candidate (§4).
    assert_eq!(
        decide(policy(true, "None", false)).1.as_deref(),
        Some("ash")
    );
}
