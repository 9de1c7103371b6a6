//! Property: on random valid policies and random flows, the plugin in the harness makes
//! exactly the native decision (every field, and the same text).

use proptest::prelude::*;
use serde_json::{json, Value};

use mapsctl::replay::PluginReplay;

use crate::common::harness;

/// A random registration: (lat, lon, prefixes as (second octet, third octet, length,
/// state, telemetry), pinned primary, pinned backup).
type Reg = (
    f64,
    f64,
    Vec<(u8, u8, u8, usize, bool)>,
    Option<usize>,
    Option<usize>,
);

const STATES: [&str; 7] = [
    "None", "Invalid", "Verified", "Failed", "Pending", "Warning", "Unknown",
];

fn net(a: u8, b: u8, len: u8) -> String {
    // Inside 20.0.0.0/8 (public), host bits cleared.
    let addr = u32::from_be_bytes([20, a, b, 0]);
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    let n = std::net::Ipv4Addr::from(addr & mask);
    format!("{n}/{len}")
}

fn arb_policy() -> impl Strategy<Value = String> {
    let edge = (
        -60.0f64..70.0,
        -180.0f64..180.0,
        1usize..3,
        any::<bool>(),
        any::<bool>(),
    );
    let prefix = (
        any::<u8>(),
        any::<u8>(),
        12u8..=24,
        0usize..7,
        any::<bool>(),
    );
    let reg = (
        -60.0f64..70.0,
        -180.0f64..180.0,
        prop::collection::vec(prefix, 1..4),
        prop::option::of(0usize..4),
        prop::option::of(0usize..5),
    );
    (
        prop::collection::vec(edge, 1..5),
        prop::collection::vec(reg, 1..5),
        prop::collection::vec(0usize..7, 1..3),
        any::<bool>(),
    )
        .prop_map(|(edges, regs, eligible, with_destinations)| {
            build_policy(&edges, &regs, &eligible, with_destinations)
        })
}

fn build_policy(
    edges: &[(f64, f64, usize, bool, bool)],
    regs: &[Reg],
    eligible: &[usize],
    with_destinations: bool,
) -> String {
    let edges_json: Vec<Value> = edges
        .iter()
        .enumerate()
        .map(|(i, (lat, lon, links, drained, link_drained))| {
            let links: Vec<Value> = (0..*links)
                .map(|l| {
                    json!({"id": format!("e{i}-{l}"), "router": format!("r{i}-{l}"),
                                "drained": *link_drained && l == 0})
                })
                .collect();
            json!({"id": format!("e{i}"), "lat": lat, "lon": lon, "links": links,
                   "drained": *drained && i > 0})
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let regs_json: Vec<Value> = regs
        .iter()
        .enumerate()
        .map(|(r, (lat, lon, prefixes, primary, backup))| {
            let prefixes: Vec<Value> = prefixes
                .iter()
                .filter_map(|(a, b, len, state, telemetry)| {
                    let p = net(*a, *b, *len);
                    seen.insert(p.clone()).then(
                        || json!({"prefix": p, "state": STATES[*state], "telemetry": telemetry}),
                    )
                })
                .collect();
            let mut reg = json!({"id": format!("reg{r}"), "lat": lat, "lon": lon,
                                 "prefixes": prefixes});
            // Pins must name existing, non-drained edges (a drained pin is only a warning,
            // but keep the policy plausible).
            if let Some(p) = primary.filter(|p| *p < edges.len()) {
                reg["primary_edge"] = json!(format!("e{p}"));
                match backup {
                    Some(b) if *b < edges.len() && b != &p => {
                        reg["backup_edge"] = json!(format!("e{b}"))
                    }
                    Some(4) => reg["backup_edge"] = json!("None"),
                    _ => {}
                }
            }
            reg
        })
        .collect();
    let mut policy = json!({
        "version": 1,
        "edges": edges_json,
        "registrations": regs_json,
        "options": {"eligible_states": eligible.iter().map(|s| STATES[*s]).collect::<Vec<_>>()},
    });
    if with_destinations {
        policy["destinations"] = json!([
            {"name": "Office365", "prefixes": ["13.107.6.152/31", "2603:1006::/40"],
             "domains": ["outlook.office365.com", "*.sharepoint.com"]}
        ]);
    }
    policy.to_string()
}

fn arb_flow() -> impl Strategy<Value = (String, Option<String>, Option<String>)> {
    let src = prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| format!("20.{a}.{b}.{c}")),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>())
            .prop_map(|(a, b, c, port)| format!("20.{a}.{b}.{c}:{port}")),
        (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c)| format!("[::ffff:20.{a}.{b}.{c}]:443")),
        any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
        any::<u128>().prop_map(|a| std::net::Ipv6Addr::from(a).to_string()),
        "[a-z0-9:.]{0,12}",
    ];
    let dst = prop::option::of(prop_oneof![
        Just("13.107.6.152".to_string()),
        Just("13.107.6.153:443".to_string()),
        Just("[2603:1006::9]:443".to_string()),
        any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
    ]);
    let host = prop::option::of(prop_oneof![
        Just("outlook.office365.com".to_string()),
        Just("Contoso.SharePoint.com.".to_string()),
        Just("sharepoint.com".to_string()),
        Just("example.com:443".to_string()),
    ]);
    (src, dst, host)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn plugin_decides_like_the_native_core_on_random_policies(
        policy in arb_policy(),
        flows in prop::collection::vec(arb_flow(), 1..40),
    ) {
        let native = policy_core::load(policy.as_bytes(), false);
        let native = match native {
            Ok(n) => n,
            // The generator aims at valid policies; one the core refuses must be refused
            // by the plugin too.
            Err(_) => {
                prop_assert!(PluginReplay::with_harness(&harness(), policy.as_bytes()).is_err());
                return Ok(());
            }
        };
        let mut plugin = PluginReplay::with_harness(&harness(), policy.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{policy}")))?;
        for (src, dst, host) in &flows {
            let d = native.classifier.classify_text(src, dst.as_deref(), host.as_deref());
            let want = policy_core::decision_line_json(src, &d);
            let got = plugin
                .classify(src, dst.as_deref(), host.as_deref())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, want, "flow {:?} {:?} {:?}", src, dst, host);
        }
    }
}

#[test]
fn the_generator_mostly_makes_valid_policies() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_policy();
    let valid = (0..50)
        .filter(|_| {
            let p = strategy.new_tree(&mut runner).unwrap().current();
            policy_core::load(p.as_bytes(), false).is_ok()
        })
        .count();
    assert!(valid >= 40, "only {valid}/50 generated policies are valid");
}
