//! SPEC §7 (Microsoft 365 categories and ports) against a naive model: random
//! destination lists (categories, port lists, exact names, `*.` wildcards, in-label
//! `*` patterns, nested prefixes) and random flows; the classifier's class and
//! category must be the model's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::json;

const CATEGORIES: [&str; 3] = ["Default", "Allow", "Optimize"];
const DOMAINS: [&str; 10] = [
    "outlook.office365.com",
    "smtp.office365.com",
    "*.sharepoint.com",
    "*-files.sharepoint.com",
    "autodiscover.*.onmicrosoft.com",
    "*cdn.onenote.net",
    "*.a*.example.com",
    "teams.microsoft.com",
    "*.microsoft.com",
    "c*n*.onenote.net",
];
const HOSTS: [&str; 14] = [
    "outlook.office365.com",
    "smtp.office365.com",
    "contoso.sharepoint.com",
    "contoso-files.sharepoint.com",
    "a.contoso-files.sharepoint.com",
    "autodiscover.contoso.onmicrosoft.com",
    "autodiscover.a.b.onmicrosoft.com",
    "xcdn.onenote.net",
    "cdn.onenote.net",
    "x.abc.example.com",
    "abc.example.com",
    "teams.microsoft.com",
    "sharepoint.com",
    "www.example.org",
];
const PREFIXES: [&str; 5] = [
    "52.96.0.0/14",
    "52.96.1.0/24",
    "13.73.248.8/29",
    "40.96.0.0/13",
    "2603:1006::/40",
];
const ADDRESSES: [&str; 6] = [
    "52.96.1.1",
    "52.97.0.1",
    "13.73.248.9",
    "40.100.1.1",
    "2603:1006::1",
    "192.0.2.1",
];
const PORT_LISTS: [&str; 5] = ["80,443", "443", "143,587,993-995", "3478-3481", "1-65535"];

#[derive(Debug, Clone)]
struct Entry {
    category: Option<usize>,
    ports: Option<usize>,
    domains: Vec<usize>,
    prefixes: Vec<usize>,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop::option::of(0..3usize),
        prop::option::of(0..PORT_LISTS.len()),
        prop::collection::vec(0..DOMAINS.len(), 0..3),
        prop::collection::vec(0..PREFIXES.len(), 0..2),
    )
        .prop_map(|(category, ports, domains, prefixes)| Entry {
            category,
            ports,
            domains,
            prefixes,
        })
}

#[derive(Debug, Clone)]
struct Flow {
    dst: Option<usize>,
    dst_port: Option<u16>,
    host: Option<usize>,
    host_port: Option<u16>,
}

fn port() -> impl Strategy<Value = Option<u16>> {
    prop::option::of(prop_oneof![
        Just(80u16),
        Just(443),
        Just(587),
        Just(994),
        Just(3479),
        Just(8080)
    ])
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        prop::option::of(0..ADDRESSES.len()),
        port(),
        prop::option::of(0..HOSTS.len()),
        port(),
    )
        .prop_map(|(dst, dst_port, host, host_port)| Flow {
            dst,
            dst_port,
            host,
            host_port,
        })
}

/// `*` is any characters (none included) inside a label.
fn glob(p: &[u8], t: &[u8]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some(b'*') => (0..=t.len()).any(|k| glob(&p[1..], &t[k..])),
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

/// The model of a domain match: a leading `*.` stands for one or more labels.
fn domain_matches(pattern: &str, host: &str) -> bool {
    let hl: Vec<&str> = host.split('.').collect();
    let (any, rest) = match pattern.strip_prefix("*.") {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let pl: Vec<&str> = rest.split('.').collect();
    if (any && hl.len() <= pl.len()) || (!any && hl.len() != pl.len()) {
        return false;
    }
    hl[hl.len() - pl.len()..]
        .iter()
        .zip(&pl)
        .all(|(h, p)| glob(p.as_bytes(), h.as_bytes()))
}

fn ports_contain(list: &str, port: u16) -> bool {
    list.split(',').any(|item| match item.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().unwrap()..=b.parse().unwrap()).contains(&port),
        None => item.parse::<u16>().unwrap() == port,
    })
}

/// SPEC §7 read literally: (class, category).
fn model(entries: &[Entry], maps: &[usize], f: &Flow) -> (&'static str, Option<usize>) {
    let dst: Option<IpAddr> = f.dst.map(|i| ADDRESSES[i].parse().unwrap());
    let host = f.host.map(|i| HOSTS[i]);
    let port = if f.dst.is_some() && f.dst_port.is_some() {
        f.dst_port
    } else if f.host.is_some() {
        f.host_port
    } else {
        None
    };
    let mut any = false;
    let mut best: Option<usize> = None;
    let mut takes_maps = false;
    for e in entries {
        let by_addr = dst.is_some_and(|a| {
            e.prefixes
                .iter()
                .any(|&p| PREFIXES[p].parse::<IpNet>().unwrap().contains(&a))
        });
        let by_host =
            host.is_some_and(|h| e.domains.iter().any(|&d| domain_matches(DOMAINS[d], h)));
        let ports_ok = match (e.ports, port) {
            (Some(l), Some(p)) => ports_contain(PORT_LISTS[l], p),
            _ => true,
        };
        if (by_addr || by_host) && ports_ok {
            any = true;
            best = best.max(e.category);
            takes_maps |= e.category.is_none_or(|c| maps.contains(&c));
        }
    }
    if !any {
        ("non-microsoft", None)
    } else if !takes_maps {
        ("excluded-category", best)
    } else {
        ("maps", best)
    }
}

fn policy(entries: &[Entry], maps: &[usize]) -> Vec<u8> {
    let destinations: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut d = json!({
                "name": format!("entry {i}"),
                "domains": e.domains.iter().map(|&d| DOMAINS[d]).collect::<Vec<_>>(),
                "prefixes": e.prefixes.iter().map(|&p| PREFIXES[p]).collect::<Vec<_>>(),
            });
            if let Some(c) = e.category {
                d["category"] = json!(CATEGORIES[c]);
            }
            if let Some(p) = e.ports {
                d["ports"] = json!(PORT_LISTS[p]);
            }
            d
        })
        .collect();
    serde_json::to_vec(&json!({
        "version": 1,
        "edges": [{"id": "sea", "lat": 47.61, "lon": -122.33, "links": [{"id": "sea-1"}]}],
        "registrations": [{"id": "r", "location": "Washington",
            "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified"}]}],
        "destinations": destinations,
        "options": {"maps_categories": maps.iter().map(|&c| CATEGORIES[c]).collect::<Vec<_>>()}
    }))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn class_and_category_follow_the_naive_model(
        entries in prop::collection::vec(entry(), 1..6),
        maps in prop::collection::btree_set(0..3usize, 0..4),
        flows in prop::collection::vec(flow(), 1..24),
    ) {
        // An entry needs a prefix or a domain to be valid.
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !e.domains.is_empty() || !e.prefixes.is_empty())
            .collect();
        prop_assume!(!entries.is_empty());
        let maps: Vec<usize> = maps.into_iter().collect();
        let engine = policy_core::load(&policy(&entries, &maps), false)
            .map_err(|r| TestCaseError::fail(format!("{:?}", r.errors().collect::<Vec<_>>())))?;
        for f in &flows {
            let dst = f.dst.map(|i| {
                let a = ADDRESSES[i];
                match (f.dst_port, a.contains(':')) {
                    (Some(p), true) => format!("[{a}]:{p}"),
                    (Some(p), false) => format!("{a}:{p}"),
                    (None, _) => a.to_string(),
                }
            });
            let host = f.host.map(|i| match f.host_port {
                Some(p) => format!("{}:{p}", HOSTS[i]),
                None => HOSTS[i].to_string(),
            });
            let d = engine.classifier.classify_text("20.1.2.3", dst.as_deref(), host.as_deref());
            let (class, category) = model(&entries, &maps, f);
            prop_assert_eq!(d.class().as_str(), class, "{:?} {:?} {:?}", dst, host, entries);
            prop_assert_eq!(
                d.category().map(|c| c.as_str()),
                category.map(|c| CATEGORIES[c]),
                "{:?} {:?} {:?}", dst, host, entries
            );
        }
    }
}
