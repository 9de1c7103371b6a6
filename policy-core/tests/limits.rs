//! Hostile input (issue 13): validation stays linear in the document, whatever it
//! holds. "Did you mean" is bounded, diagnostics of one code are capped, long strings
//! are refused with a short message, ids are usable in stats, logs and terminals.
//!
//! The timing comparison is not a test (timings vary on shared machines): run
//! `cargo test -p policy-core --release --test limits -- --ignored --nocapture`
//! for the hostile/benign ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use policy_core::{validate, Diagnostic, MAX_PER_CODE};
use serde_json::{json, Value};

/// `n` edges with `len`-character ids and `n` registrations pinning, as primary and
/// backup, either those edges (benign) or edges that do not exist and are one edit
/// away from an existing one (hostile: each asks for a suggestion).
fn pinned_policy(n: usize, len: usize, hostile: bool) -> Vec<u8> {
    let id = |i: usize, tail: char| {
        let head = format!("edge-{i:05}-");
        let mut s = head.clone();
        while s.len() + 1 < len {
            s.push('x');
        }
        s.push(tail);
        s
    };
    let edges: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": id(i, 'a'), "lat": 10.0, "lon": 10.0, "links": [
                {"id": format!("l{i}-1"), "router": "r1", "capacity_gbps": 100},
                {"id": format!("l{i}-2"), "router": "r2", "capacity_gbps": 100}]})
        })
        .collect();
    let regs: Vec<Value> = (0..n)
        .map(|i| {
            let tail = if hostile { 'b' } else { 'a' };
            json!({"id": format!("reg-{i}"), "location": "Washington",
                   "primary_edge": id(i, tail), "backup_edge": id((i + 1) % n, tail),
                   "prefixes": [{"prefix": format!("20.{}.{}.0/24", i / 256, i % 256),
                                 "state": "Verified"}]})
        })
        .collect();
    serde_json::to_vec(&json!({"version": 1, "edges": edges, "registrations": regs})).unwrap()
}

fn diags_of(bytes: &[u8]) -> Vec<Diagnostic> {
    validate(bytes, false).report.diagnostics
}

#[test]
fn hostile_pinned_edges_give_a_bounded_report() {
    let hostile = pinned_policy(1000, 60, true);
    let benign = pinned_policy(1000, 60, false);
    assert_eq!(hostile.len(), benign.len());
    assert!(validate(&benign, false).report.valid);
    let diags = diags_of(&hostile);
    let unknown: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| d.code.as_str() == "unknown-edge")
        .collect();
    // 2,000 unknown edges: 100 shown, then one line counting the rest.
    assert_eq!(unknown.len(), MAX_PER_CODE + 1, "{}", unknown.len());
    let summary: Vec<&&Diagnostic> = unknown.iter().filter(|d| d.path.is_empty()).collect();
    assert_eq!(summary.len(), 1);
    assert!(
        summary[0].message.contains("1900 more"),
        "{}",
        summary[0].message
    );
    // Each shown one suggests the near miss.
    let shown = unknown.iter().find(|d| !d.path.is_empty()).unwrap();
    assert!(
        shown
            .help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `edge-"),
        "{shown:?}"
    );
    // The whole report is small.
    let size = serde_json::to_string(&validate(&hostile, false).report)
        .unwrap()
        .len();
    assert!(size < 100_000, "report of {size} bytes");
}

#[test]
fn long_unknown_edges_list_few_ids_and_suggest_nothing() {
    // Ids of 200 characters: too long to suggest; the help lists a few ids only.
    let hostile = pinned_policy(1000, 200, true);
    let diags = diags_of(&hostile);
    let first = diags
        .iter()
        .find(|d| d.code.as_str() == "unknown-edge" && !d.path.is_empty())
        .unwrap();
    let help = first.help.as_deref().unwrap();
    assert!(!help.contains("did you mean"), "{help}");
    assert!(help.contains("and 980 more"), "{help}");
    assert!(help.len() < 5_000, "{} bytes of help", help.len());
    assert!(first.message.len() < 200, "{}", first.message);
}

#[test]
fn a_huge_location_is_refused_with_a_short_message() {
    let location = "W".repeat(100 << 20);
    let doc = json!({"version": 1, "registrations": [{"id": "r", "location": location,
        "prefixes": []}]});
    let bytes = serde_json::to_vec(&doc).unwrap();
    drop(doc);
    let diags = diags_of(&bytes);
    let d = diags
        .iter()
        .find(|d| d.path == "/registrations/0/location")
        .expect("the location is refused");
    assert_eq!(d.code.as_str(), "bad-value");
    assert!(d.message.contains("104857600 bytes"), "{}", d.message);
    assert!(d.message.len() < 200);
    // A long but not huge unknown location: no suggestion, and quoted cut short.
    let doc = json!({"version": 1, "registrations": [{"id": "r",
        "location": format!("Washington{}", "n".repeat(100)), "prefixes": []}]});
    let diags = diags_of(&serde_json::to_vec(&doc).unwrap());
    let d = diags
        .iter()
        .find(|d| d.code.as_str() == "unknown-location")
        .unwrap();
    assert!(!d.help.as_deref().unwrap().contains("did you mean"));
    assert!(d.message.len() < 200, "{}", d.message);
}

#[test]
fn many_unknown_states_and_locations_are_capped() {
    let regs: Vec<Value> = (0..500)
        .map(|i| {
            json!({"id": format!("r{i}"), "location": format!("Nowhere{i}"),
                   "prefixes": [{"prefix": format!("20.1.{}.0/24", i % 256),
                                 "state": format!("Verifyd{i}")}]})
        })
        .collect();
    let doc = json!({"version": 1, "registrations": regs});
    let diags = diags_of(&serde_json::to_vec(&doc).unwrap());
    for code in ["unknown-location", "unknown-state"] {
        let n = diags.iter().filter(|d| d.code.as_str() == code).count();
        assert_eq!(n, MAX_PER_CODE + 1, "{code}: {n}");
    }
}

fn ids_policy(edge_ids: &[&str], reg_ids: &[&str]) -> Vec<u8> {
    let edges: Vec<Value> = edge_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": id, "lat": 1.0, "lon": 1.0, "links": [
                {"id": format!("link-{i}"), "router": "r1"}]})
        })
        .collect();
    let regs: Vec<Value> = reg_ids
        .iter()
        .map(|id| json!({"id": id, "location": "Texas", "prefixes": []}))
        .collect();
    serde_json::to_vec(&json!({"version": 1, "edges": edges, "registrations": regs})).unwrap()
}

#[test]
fn unusable_ids_are_errors() {
    let long = "x".repeat(5000);
    let bad = [
        "",
        "   ",
        "esc\u{1b}[31mred",
        "new\nline",
        "nul\0",
        "rtl\u{202e}txt",
        " padded",
        long.as_str(),
    ];
    for id in bad {
        for (edges, regs, path) in [
            (vec![id], vec![], "/edges/0/id"),
            (vec![], vec![id], "/registrations/0/id"),
        ] {
            let diags = diags_of(&ids_policy(&edges, &regs));
            let d = diags
                .iter()
                .find(|d| d.code.as_str() == "bad-id" && d.path == path)
                .unwrap_or_else(|| panic!("{id:?} at {path} accepted: {diags:#?}"));
            assert!(d.message.len() < 300, "{}", d.message);
            // The message quotes the id escaped: no raw control character.
            assert!(!d.message.chars().any(char::is_control), "{:?}", d.message);
        }
    }
    // A link id too.
    let doc = json!({"version": 1, "edges": [{"id": "e", "lat": 1, "lon": 1,
        "links": [{"id": "a\u{7}b"}]}]});
    let diags = diags_of(&serde_json::to_vec(&doc).unwrap());
    assert!(diags
        .iter()
        .any(|d| d.code.as_str() == "bad-id" && d.path == "/edges/0/links/0/id"));
    // Ordinary ids are fine.
    let diags = diags_of(&ids_policy(&["sea-1", "fra_2", "ams.3"], &["a.b", "c-d"]));
    assert!(
        !diags.iter().any(|d| d.code.as_str() == "bad-id"),
        "{diags:#?}"
    );
}

#[test]
fn ids_with_the_same_metric_name_are_errors() {
    for (edges, regs, path) in [
        (vec!["dot.ted", "dot_ted"], vec![], "/edges/1/id"),
        (vec![], vec!["dot.ted", "dot_ted"], "/registrations/1/id"),
    ] {
        let diags = diags_of(&ids_policy(&edges, &regs));
        let d = diags
            .iter()
            .find(|d| d.code.as_str() == "metric-name-collision")
            .unwrap_or_else(|| panic!("{diags:#?}"));
        assert_eq!(d.path, path);
        assert!(
            d.message.contains("`dot.ted`") && d.message.contains("`dot_ted`"),
            "{}",
            d.message
        );
    }
    // An edge and a registration may share a tag (different metrics).
    let diags = diags_of(&ids_policy(&["dot.ted"], &["dot_ted"]));
    assert!(!diags
        .iter()
        .any(|d| d.code.as_str() == "metric-name-collision"));
}

/// The benchmark (not a test): hostile versus benign validation of documents of the
/// same size. Prints the ratios.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_hostile_versus_benign() {
    use std::time::Instant;
    fn time(bytes: &[u8]) -> f64 {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(validate(bytes, false));
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    }
    for (len, label) in [(60, "near-miss 60-char ids"), (200, "200-char ids")] {
        let h = pinned_policy(1000, len, true);
        let b = pinned_policy(1000, len, false);
        let (th, tb) = (time(&h), time(&b));
        println!(
            "1,000 edges + 1,000 registrations pinning missing edges, {label} ({} KB): hostile {:.1} ms, benign {:.1} ms, ratio {:.2}",
            h.len() / 1024,
            th * 1e3,
            tb * 1e3,
            th / tb
        );
    }
    // A 100 MB location versus a document of the same size that is mostly spaces.
    let big = "W".repeat(100 << 20);
    let h = serde_json::to_vec(&json!({"version": 1, "registrations": [
        {"id": "r", "location": big, "prefixes": []}]}))
    .unwrap();
    let mut b =
        br#"{"version": 1, "registrations": [{"id": "r", "location": "Texas", "prefixes": []}]}"#
            .to_vec();
    b.resize(h.len(), b' ');
    let (th, tb) = (time(&h), time(&b));
    println!(
        "100 MB location ({} MB) vs 100 MB of spaces: hostile {:.1} ms, benign {:.1} ms, ratio {:.2}",
        h.len() >> 20,
        th * 1e3,
        tb * 1e3,
        th / tb
    );
}

fn with_options(options: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"version": 1, "options": options})).unwrap()
}

/// Issue 13, finding 3: a header prefix that overlaps real headers is refused (the
/// plugin removes request headers with its prefix: `x-forwarded-` deleted
/// `x-forwarded-for` before the client was read).
#[test]
fn header_prefixes_overlapping_real_headers_are_refused() {
    for hp in [
        "x-forwarded-",
        "x-envoy-",
        "x-request-",
        "content-",
        ":authority",
        ":",
        "a",
        "x-",
        "x-maps",
        "x-forwarded-for-",
    ] {
        let diags = diags_of(&with_options(json!({"header_prefix": hp})));
        let d = diags
            .iter()
            .find(|d| d.code.as_str() == "bad-header-prefix")
            .unwrap_or_else(|| panic!("{hp:?} accepted"));
        assert!(d.help.as_deref().unwrap().contains("removes"), "{d:?}");
    }
    for hp in ["x-maps-", "x-isp-maps-", "maps-"] {
        let diags = diags_of(&with_options(json!({"header_prefix": hp})));
        assert!(
            !diags.iter().any(|d| d.code.as_str() == "bad-header-prefix"),
            "{hp}: {diags:#?}"
        );
    }
}

/// Issue 13, finding 3: prefixes with leading zeros or surrounding whitespace are
/// malformed, with the canonical form in the help.
#[test]
fn non_canonical_prefix_text_is_malformed() {
    for (text, canonical) in [
        ("020.6.0.0/16", "20.6.0.0/16"),
        (" 20.4.0.0/16", "20.4.0.0/16"),
        ("20.4.0.0/16 ", "20.4.0.0/16"),
        ("20.4.0.0/016", "20.4.0.0/16"),
        ("20.04.0.0/16", "20.4.0.0/16"),
    ] {
        let doc = json!({"version": 1, "registrations": [{"id": "r", "location": "Texas",
            "prefixes": [{"prefix": text, "state": "Verified"}]}],
            "destinations": [{"name": "d", "prefixes": [text]}]});
        let diags = diags_of(&serde_json::to_vec(&doc).unwrap());
        for path in [
            "/registrations/0/prefixes/0/prefix",
            "/destinations/0/prefixes/0",
        ] {
            let d = diags
                .iter()
                .find(|d| d.path == path)
                .unwrap_or_else(|| panic!("{text:?} at {path} accepted: {diags:#?}"));
            assert_eq!(d.code.as_str(), "malformed-prefix");
            assert_eq!(
                d.help.as_deref(),
                Some(format!("write it as {canonical}").as_str())
            );
        }
    }
}

/// Issue 13, finding 3: link addresses that look like IP addresses but are not, and
/// zones, are refused (by `HostPort`, which envoy-config uses too).
#[test]
fn link_addresses_that_only_look_like_addresses_are_refused() {
    for (addr, why) in [
        ("999.1.1.1:80", "looks like an IPv4 address"),
        ("127.1:80", "looks like an IPv4 address"),
        ("0x7f.0.0.1:80", "looks like an IPv4 address"),
        ("1.2.3.0x4:80", "looks like an IPv4 address"),
        ("010.1.1.1:80", "looks like an IPv4 address"),
        ("1.2.3.4:0", "port"),
        ("edge.example:+80", "port"),
        ("[fe80::1%2]:443", "zone"),
        ("[fe80::1%eth0]:443", "zone"),
    ] {
        assert!(policy_core::HostPort::parse(addr).is_none(), "{addr}");
        let doc = json!({"version": 1, "edges": [{"id": "e", "lat": 1, "lon": 1,
            "links": [{"id": "l", "address": addr}]}]});
        let diags = diags_of(&serde_json::to_vec(&doc).unwrap());
        let d = diags
            .iter()
            .find(|d| d.code.as_str() == "malformed-address")
            .unwrap_or_else(|| panic!("{addr} accepted"));
        assert!(d.message.contains(why), "{addr}: {}", d.message);
    }
    for addr in [
        "192.0.2.10:443",
        "[2001:db8::1]:443",
        "edge-1.example.net:8443",
        "1e100.net:80",
        "a.b.c0x:80",
    ] {
        assert!(policy_core::HostPort::parse(addr).is_some(), "{addr}");
    }
}

/// Issue 13, finding 4: a host with a port that is not 1–65535 matches no destination.
#[test]
fn hosts_with_bad_ports_match_nothing() {
    let doc = json!({"version": 1,
        "edges": [{"id": "sea", "lat": 47.6, "lon": -122.3, "links": [{"id": "s1"}]}],
        "registrations": [{"id": "r", "location": "Washington",
            "prefixes": [{"prefix": "20.33.0.0/16", "state": "Verified"}]}],
        "destinations": [{"name": "o365", "domains": ["outlook.office365.com", "*.sharepoint.com"]}]});
    let engine = policy_core::load(&serde_json::to_vec(&doc).unwrap(), false).unwrap();
    let class = |host: &str| {
        engine
            .classifier
            .classify_text("20.33.1.1", None, Some(host))
            .class()
            .as_str()
            .to_string()
    };
    for good in [
        "outlook.office365.com",
        "outlook.office365.com:443",
        "OUTLOOK.office365.com.:65535",
        "x.sharepoint.com:1",
    ] {
        assert_eq!(class(good), "maps", "{good}");
    }
    for bad in [
        "outlook.office365.com:evil",
        "outlook.office365.com:99999",
        "outlook.office365.com:0",
        "outlook.office365.com:",
        "outlook.office365.com:+443",
        "x.sharepoint.com:65536",
        "[outlook.office365.com",
    ] {
        assert_eq!(class(bad), "non-microsoft", "{bad}");
    }
    // A destination written with a bad port is malformed.
    let doc = json!({"version": 1, "destinations": [{"name": "d",
        "domains": ["outlook.office365.com:evil"]}]});
    assert!(diags_of(&serde_json::to_vec(&doc).unwrap())
        .iter()
        .any(|d| d.code.as_str() == "malformed-domain"));
}

/// Issue 13, finding 8 (the replay delivers exactly `trusted_hops` proxies): more than
/// 255 is refused.
#[test]
fn more_than_255_trusted_hops_are_refused() {
    let hops = |n: u64| {
        diags_of(&with_options(
            json!({"client_address": {"from": "xff", "trusted_hops": n}}),
        ))
        .into_iter()
        .filter(|d| d.path == "/options/client_address/trusted_hops")
        .count()
    };
    assert_eq!(hops(255), 0);
    assert_eq!(hops(100), 0);
    assert_eq!(hops(256), 1);
    assert_eq!(hops(u64::from(u32::MAX)), 1);
}
