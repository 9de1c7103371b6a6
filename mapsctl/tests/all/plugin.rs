//! The real MAPS plugin (target/wasm32-wasip1/plugin/maps_plugin.wasm) in the harness.

use std::time::Duration;

use host_harness::abi::SetEnvoyFilterStateArguments;
use host_harness::{Error, HttpOutcome, LogLevel, Plugin};
use mapsctl::replay::PluginReplay;
use serde_json::Value;

use crate::common::{fixture, harness, native, small_policy, FROM_SOURCE};

fn configure(policy: &str) -> Plugin {
    harness()
        .configure(policy)
        .unwrap_or_else(|e| panic!("configure: {e}"))
}

fn decision(out: &HttpOutcome) -> Value {
    serde_json::from_str(
        out.header("x-maps-decision")
            .expect("x-maps-decision header"),
    )
    .unwrap()
}

#[test]
fn golden_trace_gives_the_same_decisions_natively_and_through_the_plugin() {
    let policy = fixture("fixtures/demo/policy.json");
    let trace = String::from_utf8(fixture("fixtures/demo/trace.jsonl")).unwrap();
    let golden = String::from_utf8(fixture("fixtures/demo/decisions.golden.jsonl")).unwrap();
    let native_engine = policy_core::load(&policy, false).expect("demo policy is valid");
    let mut plugin = PluginReplay::with_harness(&harness(), &policy).unwrap();
    let lines: Vec<&str> = trace.lines().filter(|l| !l.trim().is_empty()).collect();
    let golden: Vec<&str> = golden.lines().collect();
    assert_eq!(
        lines.len(),
        golden.len(),
        "one golden decision per trace line"
    );
    let mut compared = 0;
    for (line, golden) in lines.iter().zip(&golden) {
        let Ok(t) = serde_json::from_str::<Value>(line) else {
            continue; // malformed lines are the CLI's business (error lines)
        };
        let Some(src) = t.get("src").and_then(Value::as_str) else {
            assert!(plugin.classify_trace(&t).is_err(), "{line}");
            continue;
        };
        let dst = t.get("dst").and_then(Value::as_str);
        let host = t.get("host").and_then(Value::as_str);
        let d = native_engine.classifier.classify_text(src, dst, host);
        let native = policy_core::decision_line_json(src, &d);
        let through_plugin = plugin.classify(src, dst, host).unwrap();
        // Same text, field order included, and both equal to the golden decision.
        assert_eq!(through_plugin, native, "trace line {line}");
        assert_eq!(through_plugin, *golden, "trace line {line}");
        compared += 1;
    }
    assert!(compared >= 40, "only {compared} trace lines compared");
}

#[test]
fn decisions_are_published_as_request_headers() {
    let policy = small_policy(FROM_SOURCE);
    let mut plugin = configure(&policy);
    let out = plugin
        .http_request()
        .source("20.33.1.7:50123")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("maps"));
    assert_eq!(out.header("x-maps-cluster"), Some("maps_sea_chi"));
    let d = decision(&out);
    assert_eq!(
        d,
        native(
            policy.as_bytes(),
            "20.33.1.7:50123",
            None,
            Some("outlook.office365.com")
        )
    );
    assert_eq!(d["registration"], "fabrikam");
    assert_eq!(d["edge"], "sea");
    assert_eq!(d["backup"], "chi");

    // Not Microsoft: a class and a decision, no cluster.
    let out = plugin
        .http_request()
        .source("20.33.1.7:50123")
        .authority("example.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("non-microsoft"));
    assert_eq!(out.header("x-maps-cluster"), None);
    assert_eq!(decision(&out)["class"], "non-microsoft");

    // The destination address alone can make it Microsoft.
    let out = plugin
        .http_request()
        .source("20.33.1.7:50123")
        .destination("13.107.6.153:443")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("maps"));
}

#[test]
fn sources_with_ports_classify_like_bare_addresses() {
    let policy = small_policy(FROM_SOURCE);
    let mut plugin = configure(&policy);
    let mut classify = |src: &str| {
        let out = plugin
            .http_request()
            .source(src)
            .authority("outlook.office365.com")
            .send()
            .unwrap();
        let mut d = decision(&out);
        d.as_object_mut().unwrap().remove("src");
        d
    };
    let bare = classify("20.33.1.7");
    assert_eq!(bare["class"], "maps");
    assert_eq!(classify("20.33.1.7:443"), bare);
    assert_eq!(classify("20.33.1.7:65535"), bare);
    let unregistered = classify("[2001:db8::7]:443");
    assert_eq!(unregistered["class"], "unregistered");
    assert_eq!(classify("2001:db8::7"), unregistered);
    assert_eq!(classify("not an address:443")["class"], "invalid-source");
}

#[test]
fn ipv4_mapped_ipv6_sources_are_their_ipv4_address() {
    let policy = small_policy(FROM_SOURCE);
    let mut plugin = configure(&policy);
    let mut classify = |src: &str| {
        let out = plugin
            .http_request()
            .source(src)
            .authority("contoso.sharepoint.com")
            .send()
            .unwrap();
        let mut d = decision(&out);
        d.as_object_mut().unwrap().remove("src");
        d
    };
    let v4 = classify("20.33.9.9:443");
    assert_eq!(v4["class"], "maps");
    assert_eq!(
        classify("[::ffff:20.33.9.9]:443"),
        v4,
        "same class, edge and link"
    );
    assert_eq!(classify("::ffff:20.33.9.9"), v4);
    // A Pending prefix through the mapped form too.
    assert_eq!(classify("[::ffff:20.34.0.1]:443")["class"], "unverified");
}

fn xff_policy(hops: u32) -> String {
    small_policy(&format!(
        r#"{{"client_address": {{"from": "xff", "trusted_hops": {hops}}}}}"#
    ))
}

#[test]
fn spoofed_x_forwarded_for_with_trusted_hops_0() {
    let mut plugin = configure(&xff_policy(0));
    // The client wrote a registered address on the left; our edge proxy appended the
    // real peer (unregistered) on the right. The right-most entry wins.
    let out = plugin
        .http_request()
        .source("10.1.1.1:40000")
        .header("x-forwarded-for", "20.33.1.7, 9.9.9.9")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("unregistered"));
    assert_eq!(decision(&out)["src"], "9.9.9.9");
    assert_eq!(out.header("x-maps-cluster"), None);

    // The genuine case: the right-most entry is registered.
    let out = plugin
        .http_request()
        .source("10.1.1.1:40000")
        .header("x-forwarded-for", "9.9.9.9, 20.33.1.7")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("maps"));
    assert_eq!(decision(&out)["src"], "20.33.1.7");

    // Repeated headers are one list, in order.
    let out = plugin
        .http_request()
        .header("x-forwarded-for", "20.33.1.7")
        .header("x-forwarded-for", "9.9.9.9")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(decision(&out)["src"], "9.9.9.9");
}

#[test]
fn spoofed_x_forwarded_for_with_trusted_hops_1() {
    let mut plugin = configure(&xff_policy(1));
    // client-supplied, real client, trusted proxy: the second from the right wins.
    let out = plugin
        .http_request()
        .source("10.1.1.1:40000")
        .header("x-forwarded-for", "20.33.1.7, 9.9.9.9, 198.18.0.1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("unregistered"));
    assert_eq!(decision(&out)["src"], "9.9.9.9");

    let out = plugin
        .http_request()
        .source("10.1.1.1:40000")
        .header("x-forwarded-for", "9.9.9.9, 23.96.4.4, 198.18.0.1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("maps"));
    assert_eq!(decision(&out)["registration"], "tailspin");

    // Too few entries: the downstream peer is the client (Envoy's fallback).
    let out = plugin
        .http_request()
        .source("23.96.5.5:40000")
        .header("x-forwarded-for", "20.33.1.7")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(decision(&out)["src"], "23.96.5.5:40000");
    assert_eq!(decision(&out)["registration"], "tailspin");

    // A garbage entry in the trusted position is an invalid source, not a fallback.
    let out = plugin
        .http_request()
        .header("x-forwarded-for", "20.33.1.7, garbage, 198.18.0.1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("invalid-source"));
}

#[test]
fn inbound_prefixed_headers_are_removed() {
    let mut plugin = configure(&small_policy(FROM_SOURCE));
    let out = plugin
        .http_request()
        .source("9.9.9.9:1234")
        .authority("outlook.office365.com")
        .header("x-maps-cluster", "maps_sea_chi")
        .header("X-Maps-Class", "maps")
        .header("x-maps-decision", "{\"class\":\"maps\"}")
        .header("x-maps-whatever", "1")
        .header("x-maps-whatever", "2")
        .header("x-mapsnot", "kept")
        .send()
        .unwrap();
    // The client cannot choose its egress: its cluster header is gone, and what is
    // published is the plugin's own decision.
    assert_eq!(out.header("x-maps-cluster"), None);
    assert_eq!(out.header("x-maps-class"), Some("unregistered"));
    assert_eq!(out.request_headers.get_all("x-maps-class").len(), 1);
    assert_eq!(decision(&out)["class"], "unregistered");
    assert!(!out.request_headers.contains("x-maps-whatever"));
    assert_eq!(out.header("x-mapsnot"), Some("kept"));

    // A custom prefix strips its own headers (and leaves x-maps-* alone).
    let mut plugin = configure(&small_policy(r#"{"header_prefix": "x-edge-"}"#));
    let out = plugin
        .http_request()
        .source("20.33.1.7:1234")
        .authority("outlook.office365.com")
        .header("x-edge-cluster", "evil")
        .header("x-maps-cluster", "untouched")
        .send()
        .unwrap();
    assert_eq!(out.header("x-edge-cluster"), Some("maps_sea_chi"));
    assert_eq!(out.header("x-edge-class"), Some("maps"));
    assert_eq!(out.header("x-maps-cluster"), Some("untouched"));
}

#[test]
fn non_utf8_header_values_do_not_break_the_plugin() {
    let mut plugin = configure(&xff_policy(0));
    let out = plugin
        .http_request()
        .header_bytes("x-forwarded-for", b"\xff\xfe, 20.33.1.7")
        .header_bytes(":authority", b"outlook.office365.com\xff")
        .header_bytes("x-maps-evil", b"\x80")
        .send()
        .unwrap();
    assert!(!out.request_headers.contains("x-maps-evil"));
    assert_eq!(out.header("x-maps-class"), Some("non-microsoft"));
    let out = plugin
        .http_request()
        .header_bytes("x-forwarded-for", b"20.33.1.7, \xff")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("invalid-source"));
    assert!(!plugin.is_poisoned());
}

#[test]
fn a_bad_configuration_is_refused_with_its_log_line() {
    let bad = small_policy(FROM_SOURCE).replace("\"Pending\"", "\"Pendng\"");
    match harness().configure(&bad) {
        Err(Error::Rejected { callback, logs }) => {
            assert_eq!(callback, "proxy_on_configure");
            let line = logs
                .iter()
                .find(|l| l.message.contains("unknown-state"))
                .unwrap_or_else(|| panic!("no unknown-state line in {logs:#?}"));
            assert_eq!(line.level, LogLevel::Error);
            assert!(
                line.message
                    .contains("at /registrations/0/prefixes/1/state"),
                "{}",
                line.message
            );
            assert!(logs.iter().any(|l| l.level == LogLevel::Error
                && l.message.starts_with("maps: policy rejected (version ")
                && l.message.contains("): 1 error(s)")));
        }
        other => panic!("expected a rejection, got {:?}", other.err()),
    }
    // Not JSON at all, and an empty configuration.
    for config in ["{\"version\": 1,", ""] {
        match harness().configure(config) {
            Err(Error::Rejected { logs, .. }) => {
                assert!(logs
                    .iter()
                    .any(|l| l.level == LogLevel::Error
                        && l.message.starts_with("maps: policy error [")));
            }
            other => panic!("expected a rejection of {config:?}, got {:?}", other.err()),
        }
    }
}

#[test]
fn a_bad_reconfiguration_keeps_the_last_good_policy() {
    let good = small_policy(FROM_SOURCE);
    let mut plugin = configure(&good);
    let before = plugin
        .http_request()
        .source("20.33.1.7:1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(before.header("x-maps-class"), Some("maps"));

    let bad = good.replace("\"version\": 1", "\"version\": 7");
    assert!(!plugin.reconfigure(&bad).unwrap());
    let logs = plugin.take_logs();
    assert!(logs
        .iter()
        .any(|l| l.level == LogLevel::Error
            && l.message.contains("[unsupported-version] at /version")));
    let good_version = policy_core::policy_version(good.as_bytes());
    let bad_version = policy_core::policy_version(bad.as_bytes());
    assert!(logs.iter().any(|l| l.message
        == format!("maps: keeping the last good policy (version {good_version}, generation 1)")));
    assert!(logs.iter().any(|l| l
        .message
        .starts_with(&format!("maps: policy rejected (version {bad_version}):"))));
    // The gauges still name the policy served.
    assert_eq!(
        plugin.metrics().gauge("maps.policy.version"),
        Some(policy_core::policy_version_number(good.as_bytes()))
    );
    assert_eq!(plugin.metrics().gauge("maps.policy.generation"), Some(1));
    let after = plugin
        .http_request()
        .source("20.33.1.7:1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(decision(&after), decision(&before));

    // A good reconfiguration takes effect for new requests.
    let drained = good.replace(
        r#"{"id": "sea", "lat": 47.61"#,
        r#"{"id": "sea", "drained": true, "lat": 47.61"#,
    );
    assert!(plugin.reconfigure(&drained).unwrap());
    let moved = plugin
        .http_request()
        .source("20.33.1.7:1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(decision(&moved)["edge"], "chi");
    assert_eq!(moved.header("x-maps-cluster"), Some("maps_chi"));
    assert_eq!(plugin.metrics().counter("maps.policy.loaded"), Some(2));
    assert_eq!(plugin.metrics().counter("maps.policy.rejected"), Some(1));
    assert_eq!(
        plugin.metrics().gauge("maps.policy.version"),
        Some(policy_core::policy_version_number(drained.as_bytes()))
    );
    assert_eq!(plugin.metrics().gauge("maps.policy.generation"), Some(2));
    // Linear memory: whole 64 KiB pages, and more than the plugin's code needs.
    let memory = plugin.metrics().gauge("maps.vm.memory_bytes").unwrap();
    assert!(memory >= 65_536 && memory % 65_536 == 0, "{memory}");
}

/// Regression: latency was recorded for every prefix of a registration that had one
/// telemetry prefix. Telemetry is per prefix (SPEC §1, Azure's product).
#[test]
fn latency_is_recorded_only_for_prefixes_with_telemetry() {
    let policy = small_policy(FROM_SOURCE).replace(
        r#"{"prefix": "20.34.0.0/16", "state": "Pending"}"#,
        r#"{"prefix": "20.34.0.0/16", "state": "Verified"}"#,
    );
    assert!(policy.contains(r#""20.34.0.0/16", "state": "Verified""#));
    let mut plugin = configure(&policy);
    for (src, latency_ms) in [("20.33.1.7:1", 25), ("20.34.1.7:1", 40)] {
        let out = plugin
            .http_request()
            .source(src)
            .authority("outlook.office365.com")
            .upstream_latency(Duration::from_millis(latency_ms))
            .send()
            .unwrap();
        assert_eq!(out.header("x-maps-class"), Some("maps"), "{src}");
    }
    let m = plugin.metrics();
    assert_eq!(
        m.counter("maps.registration.fabrikam.edge.sea.routed"),
        Some(2)
    );
    // Only the request from 20.33.0.0/16 (telemetry) is timed.
    assert_eq!(
        m.histogram("maps.registration.fabrikam.latency_ms"),
        Some(&[25][..])
    );
}

#[test]
fn metrics_are_recorded_by_class_registration_edge_and_latency() {
    let mut plugin = configure(&small_policy(FROM_SOURCE));
    for (src, latency_ms) in [
        ("20.33.1.7:1", 25),
        ("20.33.1.8:1", 40),
        ("23.96.1.1:1", 10),
    ] {
        plugin
            .http_request()
            .source(src)
            .authority("outlook.office365.com")
            .upstream_latency(Duration::from_millis(latency_ms))
            .send()
            .unwrap();
    }
    for src in ["9.9.9.9:1", "20.34.1.1:1"] {
        plugin
            .http_request()
            .source(src)
            .authority("outlook.office365.com")
            .send()
            .unwrap();
    }
    let m = plugin.metrics();
    assert_eq!(m.counter("maps.class.maps.requests"), Some(3));
    assert_eq!(m.counter("maps.class.unregistered.requests"), Some(1));
    assert_eq!(m.counter("maps.class.unverified.requests"), Some(1));
    assert_eq!(
        m.counter("maps.registration.fabrikam.edge.sea.routed"),
        Some(2)
    );
    assert_eq!(
        m.counter("maps.registration.tailspin.edge.chi.routed"),
        Some(1)
    );
    // Latency only for the registration with a telemetry prefix.
    assert_eq!(
        m.histogram("maps.registration.fabrikam.latency_ms"),
        Some(&[25, 40][..])
    );
    assert_eq!(m.histogram("maps.registration.tailspin.latency_ms"), None);
    assert_eq!(m.counter("maps.policy.loaded"), Some(1));
}

#[test]
fn routed_counters_follow_names_across_a_reload_that_reorders_registrations() {
    // The per-request counters are cached by (policy generation, registration index,
    // edge index): after a reload that swaps the registrations, index 0 is another
    // registration, and its requests must count under its own name.
    let policy = small_policy(FROM_SOURCE);
    let mut plugin = configure(&policy);
    let send = |plugin: &mut Plugin, src: &str| {
        plugin
            .http_request()
            .source(src)
            .authority("outlook.office365.com")
            .send()
            .unwrap();
    };
    send(&mut plugin, "20.33.1.7:1"); // fabrikam (index 0) at sea
    let mut doc: serde_json::Value = serde_json::from_str(&policy).unwrap();
    doc["registrations"].as_array_mut().unwrap().swap(0, 1);
    assert!(plugin.reconfigure(doc.to_string()).unwrap());
    send(&mut plugin, "23.96.1.1:1"); // tailspin, now index 0, at chi
    send(&mut plugin, "20.33.1.8:1"); // fabrikam, now index 1
    let m = plugin.metrics();
    assert_eq!(
        m.counter("maps.registration.fabrikam.edge.sea.routed"),
        Some(2)
    );
    assert_eq!(
        m.counter("maps.registration.tailspin.edge.chi.routed"),
        Some(1)
    );
    assert_eq!(m.counter("maps.class.maps.requests"), Some(3));
}

#[test]
fn a_compiled_policy_configures_the_plugin_and_a_damaged_one_keeps_the_last_good() {
    let policy = small_policy(FROM_SOURCE);
    let file = policy_core::compile(policy.as_bytes(), false).unwrap();
    let mut plugin = harness().configure(&file).unwrap();
    let out = plugin
        .http_request()
        .source("20.33.1.7:1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(out.header("x-maps-class"), Some("maps"));
    assert_eq!(out.header("x-maps-cluster"), Some("maps_sea_chi"));
    let line: serde_json::Value =
        serde_json::from_str(out.header("x-maps-decision").unwrap()).unwrap();
    assert_eq!(
        line,
        native(
            policy.as_bytes(),
            "20.33.1.7:1",
            None,
            Some("outlook.office365.com")
        )
    );
    let mut damaged = file.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(
        !plugin.reconfigure(&damaged).unwrap(),
        "a damaged file was accepted"
    );
    assert!(plugin
        .logs()
        .iter()
        .any(|l| l.message.contains("[compiled-policy]") && l.message.contains("checksum")));
    let out = plugin
        .http_request()
        .source("20.33.1.7:1")
        .authority("outlook.office365.com")
        .send()
        .unwrap();
    assert_eq!(
        out.header("x-maps-class"),
        Some("maps"),
        "the last good policy serves"
    );
}

#[test]
fn the_network_filter_chooses_the_tcp_proxy_cluster() {
    let policy = small_policy(FROM_SOURCE);
    let mut plugin = harness().root_id("maps_tcp").configure(&policy).unwrap();
    let out = plugin
        .tcp_connection("20.33.1.7:50000", "13.107.6.152:443")
        .unwrap();
    assert_eq!(
        out.filter_state("envoy.tcp_proxy.cluster"),
        Some("maps_sea_chi")
    );
    let call = plugin.foreign_calls().last().unwrap();
    assert_eq!(call.name, "set_envoy_filter_state");
    let args = SetEnvoyFilterStateArguments::decode(&call.arguments).unwrap();
    assert_eq!(args.path, "envoy.tcp_proxy.cluster");
    assert_eq!(args.value, "maps_sea_chi");
    assert_eq!(args.span, 2, "LifeSpan::DownstreamConnection");

    let out = plugin
        .tcp_connection("23.96.1.1:50000", "13.107.6.153:443")
        .unwrap();
    assert_eq!(
        out.filter_state("envoy.tcp_proxy.cluster"),
        Some("maps_chi_sea")
    );

    // Not Microsoft, or not registered: tcp_proxy keeps its configured cluster.
    let out = plugin
        .tcp_connection("20.33.1.7:50000", "8.8.8.8:443")
        .unwrap();
    assert_eq!(out.filter_state("envoy.tcp_proxy.cluster"), None);
    let out = plugin
        .tcp_connection("[::ffff:9.9.9.9]:50000", "13.107.6.152:443")
        .unwrap();
    assert_eq!(out.filter_state("envoy.tcp_proxy.cluster"), None);

    let m = plugin.metrics();
    assert_eq!(m.counter("maps.class.maps.connections"), Some(2));
    assert_eq!(m.counter("maps.class.non-microsoft.connections"), Some(1));
    assert_eq!(m.counter("maps.class.unregistered.connections"), Some(1));
    assert_eq!(
        m.counter("maps.registration.fabrikam.edge.sea.routed_connections"),
        Some(1)
    );
    assert_eq!(m.counter("maps.class.maps.requests"), None);
}

#[test]
fn the_plugin_path_is_found_and_a_missing_one_says_to_run_make_plugin() {
    assert!(crate::common::plugin_path().is_file());
    match PluginReplay::new(std::path::Path::new("/nonexistent/maps_plugin.wasm"), b"{}") {
        Err(e @ Error::Read { .. }) => assert!(e.to_string().contains("maps_plugin.wasm")),
        other => panic!("expected a read error, got {:?}", other.err()),
    }
}

#[test]
fn requests_are_counted_by_category_and_both_policy_counters_exist_from_the_start() {
    // fixtures/categories: every trace line through the plugin; the category counter of
    // each request is its golden decision's category (`none` when it has none).
    let policy = fixture("fixtures/categories/policy.json");
    let trace = String::from_utf8(fixture("fixtures/categories/trace.jsonl")).unwrap();
    let golden = String::from_utf8(fixture("fixtures/categories/decisions.golden.jsonl")).unwrap();
    let mut plugin = PluginReplay::with_harness(&harness(), &policy).unwrap();
    let m = plugin.plugin().metrics();
    assert_eq!(m.counter("maps.policy.loaded"), Some(1));
    assert_eq!(m.counter("maps.policy.rejected"), Some(0));
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for (line, golden) in trace.lines().zip(golden.lines()) {
        let t: Value = serde_json::from_str(line).unwrap();
        let g: Value = serde_json::from_str(golden).unwrap();
        let src = t["src"].as_str().unwrap();
        plugin
            .classify(src, t["dst"].as_str(), t["host"].as_str())
            .unwrap();
        let category = g.get("category").and_then(Value::as_str).unwrap_or("none");
        *want.entry(category.to_string()).or_default() += 1;
    }
    assert_eq!(
        want.len(),
        4,
        "every category and none in the fixture: {want:?}"
    );
    let m = plugin.plugin().metrics();
    for (category, n) in &want {
        let name = format!("maps.category.{category}.category_requests");
        assert_eq!(m.counter(&name), Some(*n), "{name}");
    }
    let total: u64 = want.values().sum();
    let by_class: u64 = m
        .iter()
        .filter(|x| x.name.starts_with("maps.class.") && x.name.ends_with(".requests"))
        .map(|x| m.counter(&x.name).unwrap_or(0))
        .sum();
    assert_eq!(
        by_class, total,
        "every request counted once by class and once by category"
    );
}
