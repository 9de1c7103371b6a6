//! Property tests: the classifier against a naive model of SPEC §3–§4 on random
//! policies, and validation against arbitrary and damaged input (it never panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::{json, Value};

const STATES: [&str; 7] = [
    "None", "Invalid", "Verified", "Failed", "Pending", "Warning", "Unknown",
];

/// A random registered prefix: nested prefixes are likely because bases share bits.
fn prefix_strategy() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (0u32..8, 8u8..=32).prop_map(|(slot, len)| {
            // 20.x.y.z space, with few distinct high bits so prefixes nest.
            let addr = 0x1400_0000u32 | (slot << 21) | (slot.wrapping_mul(0x9e37) & 0x1f_ffff);
            let net = ipnet::Ipv4Net::new(addr.into(), len.max(8))
                .unwrap()
                .trunc();
            IpNet::V4(net)
        }),
        (0u128..8, 16u8..=128).prop_map(|(slot, len)| {
            let addr: u128 =
                (0x2a01u128 << 112) | (slot << 100) | (slot.wrapping_mul(0x9e37_79b9) << 40);
            IpNet::V6(ipnet::Ipv6Net::new(addr.into(), len).unwrap().trunc())
        }),
    ]
}

/// lat, lon, primary, backup (None = unpinned, Some(None) = "None"), providers, prefixes.
type RegSpec = (
    f64,
    f64,
    Option<usize>,
    Option<Option<usize>>,
    bool,
    Vec<(IpNet, usize)>,
);

#[derive(Debug, Clone)]
struct Spec {
    edges: Vec<(f64, f64, bool, Vec<bool>, u8)>, // lat, lon, drained, link drained, provider
    regs: Vec<RegSpec>,
    dests: Vec<IpNet>,
    eligible: Vec<usize>,
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let edge = (
        -60.0f64..60.0,
        -170.0f64..170.0,
        prop::bool::weighted(0.2),
        prop::collection::vec(prop::bool::weighted(0.3), 1..3),
        0u8..2,
    );
    let reg = (
        -60.0f64..60.0,
        -170.0f64..170.0,
        prop::option::weighted(0.3, 0usize..6),
        prop::option::weighted(0.3, prop::option::weighted(0.7, 0usize..6)),
        any::<bool>(),
        prop::collection::vec((prefix_strategy(), 0usize..7), 1..5),
    );
    (
        prop::collection::vec(edge, 1..6),
        prop::collection::vec(reg, 1..6),
        prop::collection::vec(prefix_strategy(), 0..4),
        prop::collection::vec(0usize..7, 1..3),
    )
        .prop_map(|(edges, regs, dests, eligible)| Spec {
            edges,
            regs,
            dests,
            eligible,
        })
}

fn to_policy(s: &Spec) -> Value {
    let n = s.edges.len();
    let edges: Vec<Value> = s
        .edges
        .iter()
        .enumerate()
        .map(|(i, (lat, lon, drained, links, prov))| {
            json!({"id": format!("e{i}"), "lat": lat, "lon": lon, "drained": drained,
                   "provider": format!("p{prov}"),
                   "links": links.iter().enumerate().map(|(j, d)| json!({"id": format!("e{i}-{j}"), "drained": d})).collect::<Vec<_>>()})
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let regs: Vec<Value> = s
        .regs
        .iter()
        .enumerate()
        .map(|(i, (lat, lon, primary, backup, providers, prefixes))| {
            let mut r = json!({"id": format!("r{i}"), "lat": lat, "lon": lon,
                "prefixes": prefixes.iter().filter(|(p, _)| seen.insert(*p))
                    .map(|(p, st)| json!({"prefix": p.to_string(), "state": STATES[*st]})).collect::<Vec<_>>()});
            if let Some(p) = primary {
                r["primary_edge"] = json!(format!("e{}", p % n));
            }
            if let Some(b) = backup {
                r["backup_edge"] = match b {
                    Some(b) => json!(format!("e{}", b % n)),
                    None => json!("None"),
                };
            }
            if *providers {
                r["providers"] = json!(["p1", "p0"]);
            }
            r
        })
        .collect();
    let mut policy = json!({"version": 1, "edges": edges, "registrations": regs,
        "options": {"eligible_states": s.eligible.iter().map(|i| STATES[*i]).collect::<Vec<_>>()}});
    if !s.dests.is_empty() {
        policy["destinations"] = json!([{"name": "ms", "prefixes": s.dests.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "domains": ["*.ms.example", "ms.example"]}]);
    }
    policy
}

/// SPEC §3–§4 written as plainly as possible, over the JSON document.
fn naive(policy: &Value, src: IpAddr, dst: Option<IpAddr>, host: Option<&str>) -> Value {
    let regs = policy["registrations"].as_array().unwrap();
    let mut best: Option<(IpNet, usize, &str)> = None;
    for (ri, r) in regs.iter().enumerate() {
        for p in r["prefixes"].as_array().unwrap() {
            let net: IpNet = p["prefix"].as_str().unwrap().parse().unwrap();
            if net.contains(&src) && best.is_none_or(|(b, _, _)| net.prefix_len() > b.prefix_len())
            {
                best = Some((net, ri, p["state"].as_str().unwrap()));
            }
        }
    }
    let Some((net, ri, state)) = best else {
        return json!({"class": "unregistered"});
    };
    let reg = &regs[ri];
    let base = json!({"registration": reg["id"], "prefix": net.to_string()});
    let with = |class: &str| {
        let mut v = base.clone();
        v["class"] = json!(class);
        v
    };
    let eligible: Vec<&str> = policy["options"]["eligible_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    if !eligible.contains(&state) {
        return with("unverified");
    }
    if let Some(dests) = policy.get("destinations") {
        let d = &dests[0];
        let by_addr = dst.is_some_and(|a| {
            d["prefixes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().parse::<IpNet>().unwrap().contains(&a))
        });
        let by_host = host.is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            let h = h.trim_end_matches('.');
            h == "ms.example" || h.ends_with(".ms.example")
        });
        if !by_addr && !by_host {
            return with("non-microsoft");
        }
    }
    let edges = policy["edges"].as_array().unwrap();
    let usable = |i: usize| {
        let e = &edges[i];
        !e["drained"].as_bool().unwrap()
            && e["links"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| !l["drained"].as_bool().unwrap())
    };
    let idx = |id: &str| edges.iter().position(|e| e["id"] == id).unwrap();
    let mut order: Vec<usize> = Vec::new();
    let backup = reg.get("backup_edge").and_then(|v| v.as_str());
    if let Some(p) = reg.get("primary_edge").and_then(|v| v.as_str()) {
        if usable(idx(p)) {
            order.push(idx(p));
        } else if backup == Some("None") {
            // SPEC §2: no backup site, the primary failed: the default path.
            return with("no-edge");
        }
    }
    if let Some(b) = backup.filter(|b| *b != "None") {
        if usable(idx(b)) && !order.contains(&idx(b)) {
            order.push(idx(b));
        }
    }
    let (rlat, rlon) = (reg["lat"].as_f64().unwrap(), reg["lon"].as_f64().unwrap());
    let mut rest: Vec<(usize, i64, String, usize)> = (0..edges.len())
        .filter(|&i| usable(i) && !order.contains(&i))
        .map(|i| {
            let e = &edges[i];
            let km = policy_core::haversine_km(
                rlat,
                rlon,
                e["lat"].as_f64().unwrap(),
                e["lon"].as_f64().unwrap(),
            );
            let rank = match reg.get("providers") {
                Some(list) => list
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|p| *p == e["provider"])
                    .unwrap_or(2),
                None => 0,
            };
            (
                rank,
                (km * 1000.0).round() as i64,
                e["id"].as_str().unwrap().to_string(),
                i,
            )
        })
        .collect();
    rest.sort();
    order.extend(rest.iter().map(|r| r.3));
    if backup == Some("None") {
        order.truncate(1);
    }
    if order.is_empty() {
        return with("no-edge");
    }
    let mut v = with("maps");
    let ids: Vec<Value> = order.iter().map(|&i| edges[i]["id"].clone()).collect();
    v["edge"] = ids[0].clone();
    v["backup"] = ids.get(1).cloned().unwrap_or(Value::Null);
    v["failover"] = json!(ids[1..]);
    v
}

fn addr_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..8, any::<u32>()).prop_map(|(slot, low)| IpAddr::V4(
            (0x1400_0000u32 | (slot << 21) | (low & 0x1f_ffff)).into()
        )),
        (0u128..8, any::<u64>()).prop_map(|(slot, low)| IpAddr::V6(
            ((0x2a01u128 << 112) | (slot << 100) | (u128::from(low) << 36)).into()
        )),
        any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn classifier_matches_the_naive_model(
        spec in spec_strategy(),
        queries in prop::collection::vec((addr_strategy(), prop::option::of(addr_strategy()), prop::option::of(prop_oneof![Just("ms.example"), Just("A.MS.example."), Just("other.example")])), 1..30),
    ) {
        let doc = to_policy(&spec);
        let bytes = serde_json::to_vec(&doc).unwrap();
        let v = policy_core::validate(&bytes, false);
        prop_assume!(v.report.valid); // e.g. a prefix drawn as non-public
        let c = policy_core::Classifier::new(v.policy.unwrap());
        for (src, dst, host) in queries {
            let d = c.classify(src, dst, host);
            let got: Value = serde_json::to_value(d).unwrap();
            let want = naive(&doc, src, dst, host);
            for key in ["class", "registration", "prefix", "edge", "backup", "failover"] {
                prop_assert_eq!(got.get(key).unwrap_or(&Value::Null), want.get(key).unwrap_or(&Value::Null),
                    "{} for src {} dst {:?} host {:?}\ngot  {}\nwant {}", key, src, dst, host, got, want);
            }
            if d.class() == policy_core::Class::Maps {
                prop_assert!(d.link().is_some());
            }
        }
    }

    #[test]
    fn validation_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let v = policy_core::validate(&bytes, false);
        prop_assert!(!v.report.valid || v.policy.is_some());
    }

    #[test]
    fn validation_never_panics_on_damaged_policies(cut in 0usize..40_000, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8)) {
        let demo = include_bytes!("../../fixtures/demo/policy.json");
        let mut bytes = demo[..cut.min(demo.len())].to_vec();
        for (i, b) in edits {
            if !bytes.is_empty() {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
        }
        let v = policy_core::validate(&bytes, true);
        if !v.report.valid {
            prop_assert!(v.report.errors > 0);
            prop_assert!(v.report.diagnostics.iter().all(|d| !d.code.as_str().is_empty()));
        }
    }
}

#[test]
fn rendezvous_moves_only_the_drained_links_clients() {
    let mk = |drained: bool| {
        let p = json!({"version": 1,
            "edges": [{"id": "sea", "lat": 47.6, "lon": -122.3, "links": [
                {"id": "sea-1"}, {"id": "sea-2"}, {"id": "sea-3", "drained": drained}]}],
            "registrations": [{"id": "r", "lat": 47.0, "lon": -122.0, "prefixes": [{"prefix": "20.0.0.0/8", "state": "Verified"}]}]});
        policy_core::load(&serde_json::to_vec(&p).unwrap(), false)
            .unwrap()
            .classifier
    };
    let (before, after) = (mk(false), mk(true));
    let mut moved = 0;
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..3000u32 {
        let src = IpAddr::V4((0x1400_0000 + i * 2039).into());
        let a = before.classify(src, None, None).link().unwrap().to_string();
        let b = after.classify(src, None, None).link().unwrap().to_string();
        *counts.entry(a.clone()).or_insert(0) += 1;
        if a != b {
            assert_eq!(a, "sea-3", "{src} moved off a link that was not drained");
            moved += 1;
        } else {
            assert_ne!(b, "sea-3");
        }
        // Stable per client.
        assert_eq!(before.classify(src, None, None).link().unwrap(), a);
    }
    assert_eq!(moved, counts["sea-3"]);
    for (link, n) in counts {
        assert!((800..1200).contains(&n), "{link} got {n} of 3000 clients");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn a_packed_policy_decides_exactly_as_its_json_form(
        spec in spec_strategy(),
        queries in prop::collection::vec((addr_strategy(), prop::option::of(addr_strategy())), 1..30),
    ) {
        let bytes = serde_json::to_vec(&to_policy(&spec)).unwrap();
        let v = policy_core::validate(&bytes, false);
        prop_assume!(v.report.valid);
        let packed = serde_json::to_vec(&policy_core::pack_policy(v.policy.as_ref().unwrap())).unwrap();
        let p = policy_core::validate(&packed, false);
        prop_assert!(p.report.valid, "{}", p.report);
        prop_assert_eq!(&p.report.summary, &v.report.summary);
        let (a, b) = (policy_core::Classifier::new(v.policy.unwrap()), policy_core::Classifier::new(p.policy.unwrap()));
        for (src, dst) in queries {
            let (x, y) = (a.classify(src, dst, Some("ms.example")), b.classify(src, dst, Some("ms.example")));
            prop_assert_eq!(serde_json::to_string(&x).unwrap(), serde_json::to_string(&y).unwrap());
        }
    }
}

#[test]
fn packed_tables_report_problems_per_record_and_cap_floods() {
    use policy_core::PrefixState;
    use policy_core::{encode_packed as encode, PackedRecord as Record};
    let mut recs: Vec<Record> = (0..500u32)
        .map(|i| Record {
            registration: 0,
            state: PrefixState::Verified,
            telemetry: false,
            has_key: false,
            net: format!("2a01:{:x}::/32", 0x100 + i).parse().unwrap(),
        })
        .collect();
    recs.push(Record {
        registration: 0,
        state: PrefixState::Verified,
        telemetry: false,
        has_key: false,
        net: "10.0.0.0/8".parse().unwrap(),
    });
    recs.push(Record {
        registration: 0,
        state: PrefixState::Verified,
        telemetry: false,
        has_key: false,
        net: "2a01:100::/32".parse().unwrap(),
    });
    recs.push(Record {
        registration: 9,
        state: PrefixState::Verified,
        telemetry: false,
        has_key: false,
        net: "20.0.0.0/8".parse().unwrap(),
    });
    let doc = json!({"version": 1, "registrations": [{"id": "r", "location": "Texas"}], "prefix_table": encode(&recs)});
    let v = policy_core::validate(&serde_json::to_vec(&doc).unwrap(), false);
    let count = |code: &str| {
        v.report
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str() == code)
            .count()
    };
    assert_eq!(
        count("ipv6-prefix"),
        policy_core::MAX_PER_CODE + 1,
        "500 IPv6 warnings are capped, plus one line that says how many more"
    );
    assert!(v
        .report
        .diagnostics
        .iter()
        .any(|d| d.message == "... and 401 more `ipv6-prefix` diagnostics not shown"));
    let np = v
        .report
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "non-public-prefix")
        .unwrap();
    assert_eq!(np.path, "/prefix_table");
    assert!(
        np.message.starts_with("record 500: 10.0.0.0/8"),
        "{}",
        np.message
    );
    let dup = v
        .report
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "duplicate-prefix")
        .unwrap();
    assert!(
        dup.message.contains("record 501") && dup.message.contains("/prefix_table record 0"),
        "{}",
        dup.message
    );
    assert!(v
        .report
        .diagnostics
        .iter()
        .any(|d| d.message.contains("names registration 9")));
    assert!(!v.report.valid);
    let bad = json!({"version": 1, "prefix_table": "bm90IGEgdGFibGU="});
    let v = policy_core::validate(&serde_json::to_vec(&bad).unwrap(), false);
    assert_eq!(v.report.diagnostics[0].path, "/prefix_table");
}
