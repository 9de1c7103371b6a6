//! The checks behind the fuzz targets (`fuzz_targets/*.rs` only call these), so a crash
//! input can be replayed by hand and the checks read in one place.
//!
//! Every function panics exactly when something is wrong: a panic inside the code under
//! test, or a broken invariant (asserted here).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use serde_json::Value;

/// The demo policy (its registrations, edges, destinations and xff client rule).
pub const DEMO_POLICY: &[u8] = include_bytes!("../../fixtures/demo/policy.json");
/// A valid policy with a packed `prefix_table`.
pub const PACKED_POLICY: &[u8] = include_bytes!("../../fixtures/packed/policy.json");

/// Up to `n` addresses taken from the input's tail, alternating IPv4 and IPv6, plus an
/// address inside each of the first prefixes `prefixes` lists (low bits from the input).
fn addresses(data: &[u8], prefixes: &[IpAddr], n: usize) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let tail = data.get(data.len().saturating_sub(40)..).unwrap_or(&[]);
    let mut chunks = tail.chunks(20);
    while out.len() < n {
        let Some(c) = chunks.next() else { break };
        let mut v4 = [0u8; 4];
        for (d, s) in v4.iter_mut().zip(c) {
            *d = *s;
        }
        out.push(IpAddr::V4(Ipv4Addr::from(v4)));
        let mut v6 = [0u8; 16];
        for (d, s) in v6.iter_mut().zip(c.iter().skip(4)) {
            *d = *s;
        }
        out.push(IpAddr::V6(Ipv6Addr::from(v6)));
    }
    let salt = data
        .iter()
        .fold(0u32, |a, b| a.rotate_left(5) ^ u32::from(*b));
    for p in prefixes.iter().take(8) {
        out.push(match p {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(*a) | (salt & 0xff))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(*a) | u128::from(salt))),
        });
    }
    out
}

/// The network addresses of every `"prefix"` string and every string in a `"prefixes"`
/// array of a JSON document (registrations and destinations).
fn prefix_addresses(v: &Value, out: &mut Vec<IpAddr>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("prefix", Value::String(s)) => push_prefix(s, out),
                    ("prefixes", Value::Array(a)) => {
                        for p in a {
                            if let Value::String(s) = p {
                                push_prefix(s, out);
                            } else {
                                prefix_addresses(p, out);
                            }
                        }
                    }
                    _ => prefix_addresses(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| prefix_addresses(x, out)),
        _ => {}
    }
}

fn push_prefix(s: &str, out: &mut Vec<IpAddr>) {
    if let Some(a) = s.split('/').next().and_then(|a| a.parse().ok()) {
        out.push(a);
    }
}

/// `policy`: validate ⇔ load ⇔ load_owned agree (strict and not); a valid policy
/// classifies addresses from the input (and inside its own prefixes) the same way with
/// the full and the lean classifier.
pub fn check_policy(data: &[u8]) {
    policy_checks(data, &[false, true]);
}

fn policy_checks(data: &[u8], modes: &[bool]) {
    for &strict in modes {
        let v = policy_core::validate(data, strict);
        assert_eq!(v.report.valid, v.policy.is_some(), "valid ⇔ a policy");
        let loaded = policy_core::load(data, strict);
        assert_eq!(v.report.valid, loaded.is_ok(), "validate and load disagree");
        let owned = policy_core::load_owned(data.to_vec(), strict);
        assert_eq!(
            v.report.valid,
            owned.is_ok(),
            "validate and load_owned disagree"
        );
        if strict {
            // Warnings are errors: a strictly valid policy is valid.
            if v.report.valid {
                assert!(policy_core::validate(data, false).report.valid);
            }
            continue;
        }
        let (Ok(full), Ok(lean)) = (loaded, owned) else {
            continue;
        };
        let mut prefixes = Vec::new();
        if let Ok(doc) = serde_json::from_slice::<Value>(data) {
            prefix_addresses(&doc, &mut prefixes);
        }
        let addrs = addresses(data, &prefixes, 4);
        let hosts = [None, Some("outlook.office365.com"), Some("example.com:443")];
        for (i, src) in addrs.iter().enumerate() {
            let dst = addrs.get(addrs.len() - 1 - i).copied();
            let host = hosts.get(i % hosts.len()).copied().flatten();
            let a = full.classifier.classify(*src, dst, host);
            let b = lean.classifier.classify(*src, dst, host);
            let s = src.to_string();
            assert_eq!(
                policy_core::decision_line_json(&s, &a),
                policy_core::decision_line_json(&s, &b),
                "full and lean classifiers disagree"
            );
            let dst_text = dst.map(|d| d.to_string());
            let t = full.classifier.classify_text(&s, dst_text.as_deref(), host);
            assert_eq!(
                policy_core::decision_line_json(&s, &a),
                policy_core::decision_line_json(&s, &t),
                "classify and classify_text disagree"
            );
        }
    }
}

/// The packed policy's document text split around its `prefix_table` string value.
fn packed_template() -> (String, String) {
    let Ok(mut doc) = serde_json::from_slice::<Value>(PACKED_POLICY) else {
        panic!("fixtures/packed/policy.json is not JSON");
    };
    if let Some(m) = doc.as_object_mut() {
        m.insert("prefix_table".into(), Value::String("@@TABLE@@".into()));
    }
    let text = doc.to_string();
    let Some((a, b)) = text.split_once("\"@@TABLE@@\"") else {
        panic!("no placeholder");
    };
    (a.to_string(), b.to_string())
}

thread_local! {
    static PACKED: (String, String) = packed_template();
}

/// `packed`: the input as the `prefix_table` of a valid policy, base64-encoded and as
/// (lossy) text; each document goes through [`check_policy`].
pub fn check_packed(data: &[u8]) {
    PACKED.with(|(head, tail)| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let raw = serde_json::to_string(&String::from_utf8_lossy(data)).unwrap_or_default();
        for table in [format!("\"{b64}\""), raw] {
            let doc = format!("{head}{table}{tail}");
            // Strict adds nothing to the table's decoding (and halves the speed).
            policy_checks(doc.as_bytes(), &[false]);
        }
    });
}

thread_local! {
    /// The demo policy compiled (`mapsctl compile`), for `compiled`.
    static COMPILED: Vec<u8> = match policy_core::compile(DEMO_POLICY, false) {
        Ok(f) => f,
        Err(_) => panic!("the demo policy does not compile"),
    };
}

/// `compiled`: a compiled policy file, whatever its bytes, is refused or adopted, never
/// a panic or a hang; an adopted one decides without panicking. The input is used
/// twice: as a file of its own, and as edits to the compiled demo policy whose
/// checksum is then recomputed (so the edits reach the structure checks, as an
/// altered file would).
pub fn check_compiled(data: &[u8]) {
    let flows = [
        ("20.33.1.10", Some("outlook.office365.com")),
        ("2603:10a0:400::1", None),
        ("52.160.42.7", Some("contoso.sharepoint.com")),
        ("203.0.113.9", None),
    ];
    let try_file = |file: Vec<u8>| {
        if let Ok(p) = policy_core::load_compiled(file) {
            for (src, host) in flows {
                let d = p.classifier.classify_text(src, None, host);
                let _ = policy_core::decision_line_json(src, &d);
            }
        }
    };
    try_file(data.to_vec());
    COMPILED.with(|base| {
        let mut file = base.clone();
        // Each 5 bytes of input: an offset (u32, wrapped into the file) and a byte.
        for edit in data.chunks_exact(5) {
            let at = u32::from_le_bytes([edit[0], edit[1], edit[2], edit[3]]) as usize;
            if let Some(b) = file.get_mut(at % base.len()) {
                *b = edit[4];
            }
        }
        if file.len() > 12 {
            let crc = crc32fast::hash(&file[12..]);
            file[8..12].copy_from_slice(&crc.to_le_bytes());
        }
        try_file(file);
    });
}

thread_local! {
    static DEMO: policy_core::LoadedPolicy = match policy_core::load(DEMO_POLICY, false) {
        Ok(p) => p,
        Err(_) => panic!("the demo policy does not load"),
    };
}

/// `trace`: one decision line per trace line, each one line of JSON (an object).
pub fn check_trace(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    DEMO.with(|demo| {
        let mut n = 0u64;
        let mut out = String::new();
        for line in policy_core::trace_lines(&text) {
            n += 1;
            out.clear();
            let ok = policy_core::decide_line(&demo.classifier, n, line, &mut out);
            assert!(!out.contains('\n'), "a decision line spans lines: {out:?}");
            let v: Value = match serde_json::from_str(&out) {
                Ok(v) => v,
                Err(e) => panic!("decision line is not JSON ({e}): {out:?}"),
            };
            assert!(v.is_object(), "decision line is not an object: {out:?}");
            assert_eq!(ok, v.get("error").is_none(), "error line ⇔ false: {out:?}");
            if !ok {
                assert_eq!(v.get("line").and_then(Value::as_u64), Some(n));
            }
        }
        let lines = if text.is_empty() {
            0
        } else {
            text.strip_suffix('\n').unwrap_or(&text).split('\n').count()
        };
        assert_eq!(n as usize, lines, "one decision line per trace line");
    });
}

/// The plugin the fuzz targets run or name: `$MAPS_PLUGIN_WASM`, else the repository's
/// `target/wasm32-wasip1/plugin/maps_plugin.wasm` (`make plugin`).
pub fn plugin_path() -> std::path::PathBuf {
    match std::env::var_os("MAPS_PLUGIN_WASM") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/wasm32-wasip1/plugin/maps_plugin.wasm"
        )),
    }
}

/// `plugin_request`: the plugin in host-harness (feature `plugin`: wasmtime, built with
/// libFuzzer's instrumentation, over ten minutes cold on two cores).
#[cfg(feature = "plugin")]
mod plugin {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use arbitrary::Arbitrary;
    use serde_json::Value;

    use super::{plugin_path, prefix_addresses, DEMO_POLICY};

    /// An address as text: mostly real addresses (some inside the demo's prefixes), with or
    /// without a port, and sometimes any text at all.
    #[derive(Arbitrary, Debug, Clone)]
    pub enum AddrText {
        V4([u8; 4]),
        V4Port([u8; 4], u16),
        V6([u8; 16]),
        V6Port([u8; 16], u16),
        /// An address inside the n-th prefix of the policy (low bits from the u32).
        InPrefix(u8, u32, Option<u16>),
        Raw(String),
    }

    impl AddrText {
        fn text(&self, prefixes: &[IpAddr]) -> String {
            match self {
                AddrText::V4(a) => Ipv4Addr::from(*a).to_string(),
                AddrText::V4Port(a, p) => SocketAddr::from((Ipv4Addr::from(*a), *p)).to_string(),
                AddrText::V6(a) => Ipv6Addr::from(*a).to_string(),
                AddrText::V6Port(a, p) => SocketAddr::from((Ipv6Addr::from(*a), *p)).to_string(),
                AddrText::InPrefix(i, low, port) => {
                    let base = match prefixes.get(usize::from(*i) % prefixes.len().max(1)) {
                        Some(p) => *p,
                        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    };
                    let a = match base {
                        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) | (low & 0x3ff))),
                        IpAddr::V6(a) => {
                            IpAddr::V6(Ipv6Addr::from(u128::from(a) | u128::from(*low)))
                        }
                    };
                    match port {
                        Some(p) => SocketAddr::from((a, *p)).to_string(),
                        None => a.to_string(),
                    }
                }
                AddrText::Raw(s) => s.clone(),
            }
        }
    }

    /// A request header the plugin might care about.
    #[derive(Arbitrary, Debug, Clone)]
    pub enum ExtraHeader {
        /// One of the plugin's own headers (a client must never set them).
        Ours(u8, String),
        /// Another `x-forwarded-for` entry list (raw bytes: may be non-UTF-8).
        Xff(Vec<u8>),
        XffAddr(Vec<AddrText>),
        /// Any other header.
        Other(u8, String),
    }

    const OUR_HEADERS: [&str; 5] = [
        "x-maps-class",
        "x-maps-cluster",
        "x-maps-decision",
        "x-maps-",
        "x-maps-anything",
    ];
    const OTHER_HEADERS: [&str; 6] = [
        "host",
        "forwarded",
        "x-real-ip",
        "x-envoy-external-address",
        "x-forwarded-proto",
        "x-maps",
    ];

    #[derive(Arbitrary, Debug, Clone)]
    pub struct PluginRequest {
        /// 0: the demo policy as is (xff, 1 trusted hop); 1: `source`; 2: xff with the
        /// hops the input says (at most 64).
        pub variant: u8,
        pub trusted_hops: u8,
        pub source: AddrText,
        pub destination: Option<AddrText>,
        pub authority: Option<AddrText>,
        pub authority_name: Option<String>,
        pub headers: Vec<ExtraHeader>,
    }

    /// The demo policy with its client rule replaced (`None`: `source`).
    fn demo_with_client(hops: Option<u32>) -> Vec<u8> {
        let Ok(mut doc) = serde_json::from_slice::<Value>(DEMO_POLICY) else {
            panic!("demo not JSON");
        };
        let rule = match hops {
            None => serde_json::json!({"from": "source"}),
            Some(h) => serde_json::json!({"from": "xff", "trusted_hops": h}),
        };
        if let Some(o) = doc.pointer_mut("/options").and_then(Value::as_object_mut) {
            o.insert("client_address".into(), rule);
        }
        doc.to_string().into_bytes()
    }

    struct Configured {
        plugin: host_harness::Plugin,
        loaded: policy_core::LoadedPolicy,
    }

    struct PluginState {
        harness: host_harness::Harness,
        prefixes: Vec<IpAddr>,
        /// Keyed by the client rule: `None` source, `Some(h)` xff with h hops.
        plugins: BTreeMap<Option<u32>, Configured>,
    }

    thread_local! {
        static PLUGIN: RefCell<Option<PluginState>> = const { RefCell::new(None) };
    }

    fn configured(state: &mut PluginState, rule: Option<u32>) -> &mut Configured {
        let harness = &state.harness;
        state.plugins.entry(rule).or_insert_with(|| {
            let policy = if rule == Some(1) {
                DEMO_POLICY.to_vec()
            } else {
                demo_with_client(rule)
            };
            let plugin = match harness
                .clone()
                .log_level(host_harness::LogLevel::Info)
                .configure(&policy)
            {
                Ok(p) => p,
                Err(e) => panic!("the plugin refused the demo policy: {e}"),
            };
            let loaded = match policy_core::load(&policy, false) {
                Ok(l) => l,
                Err(_) => panic!("the demo policy variant does not load natively"),
            };
            Configured { plugin, loaded }
        })
    }

    /// `plugin_request`: the request through the plugin in the harness never errors, and
    /// its decision headers are `policy_core`'s for the same client, host and destination.
    pub fn check_plugin_request(req: &PluginRequest) {
        PLUGIN.with(|cell| {
            let mut cell = cell.borrow_mut();
            let state = cell.get_or_insert_with(|| {
                let harness = match host_harness::Harness::load(plugin_path()) {
                    Ok(h) => h,
                    Err(e) => panic!("cannot load the plugin (make plugin): {e}"),
                };
                let mut prefixes = Vec::new();
                if let Ok(doc) = serde_json::from_slice::<Value>(DEMO_POLICY) {
                    prefix_addresses(&doc, &mut prefixes);
                }
                PluginState {
                    harness,
                    prefixes,
                    plugins: BTreeMap::new(),
                }
            });
            let rule = match req.variant % 3 {
                0 => Some(1),
                1 => None,
                _ => Some(u32::from(req.trusted_hops % 65)),
            };
            let prefixes = state.prefixes.clone();
            let c = configured(state, rule);
            run_request(c, req, &prefixes);
        });
    }

    fn run_request(c: &mut Configured, req: &PluginRequest, prefixes: &[IpAddr]) {
        let policy = c.loaded.classifier.policy();
        let names = policy.headers().clone();
        let source = req.source.text(prefixes);
        let destination = req.destination.as_ref().map(|d| d.text(prefixes));
        let authority = match (&req.authority_name, &req.authority) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(a)) => Some(a.text(prefixes)),
            (None, None) => None,
        };
        // The request headers as the plugin sees them, in order (name, raw value).
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for h in &req.headers {
            match h {
                ExtraHeader::Ours(i, v) => headers.push((
                    OUR_HEADERS[usize::from(*i) % OUR_HEADERS.len()].to_string(),
                    v.clone().into_bytes(),
                )),
                ExtraHeader::Xff(v) => headers.push(("x-forwarded-for".into(), v.clone())),
                ExtraHeader::XffAddr(a) => {
                    let list: Vec<String> = a.iter().map(|x| x.text(prefixes)).collect();
                    headers.push(("x-forwarded-for".into(), list.join(", ").into_bytes()));
                }
                ExtraHeader::Other(i, v) => headers.push((
                    OTHER_HEADERS[usize::from(*i) % OTHER_HEADERS.len()].to_string(),
                    v.clone().into_bytes(),
                )),
            }
        }

        let mut r = c.plugin.http_request().source(&source);
        r = r
            .remove_property("destination.address")
            .remove_property("destination.port")
            .without_response();
        if let Some(d) = &destination {
            r = r.destination(d);
        }
        if let Some(a) = &authority {
            r = r.authority(a);
        }
        for (n, v) in &headers {
            r = r.header_bytes(n, v);
        }
        let out = match r.send() {
            Ok(o) => o,
            Err(e) => panic!("the harness failed a request: {e}\n{req:?}"),
        };
        c.plugin.take_logs();

        // Native: the same inputs through policy_core.
        let kept: Vec<&(String, Vec<u8>)> =
            headers.iter().filter(|(n, _)| !names.is_ours(n)).collect();
        let xff: Vec<String> = kept
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        let src = policy
            .client_rule()
            .client(xff.iter().map(String::as_str), &source)
            .to_string();
        let dst = if policy.needs_destination_address() {
            destination.clone()
        } else {
            None
        };
        let d = c
            .loaded
            .classifier
            .classify_text(&src, dst.as_deref(), authority.as_deref());
        let want = policy_core::decision_line_json(&src, &d);
        assert_eq!(
            out.header(&names.decision),
            Some(want.as_str()),
            "plugin and policy_core disagree\n{req:?}"
        );
        assert_eq!(out.header(&names.class), Some(d.class().as_str()));
        assert_eq!(out.header(&names.cluster), d.cluster());
    }
}
#[cfg(feature = "plugin")]
pub use plugin::*;

/// `envoy_config`: mapsctl's generator (feature `config`: mapsctl without its command
/// line, so without wasmtime; cheap enough for `make fuzz-smoke`).
#[cfg(feature = "config")]
mod config {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::path::PathBuf;

    use arbitrary::Arbitrary;
    use serde_json::Value;

    use super::{plugin_path, DEMO_POLICY};

    /// A change to the demo policy.
    #[derive(Arbitrary, Debug, Clone)]
    pub enum Mutation {
        RemoveEdge(u8),
        RemoveRegistration(u8),
        RemoveLink(u8, u8),
        EdgeId(u8, String),
        LinkId(u8, u8, String),
        LinkAddress(u8, u8, LinkAddr),
        Primary(u8, u8),
        PrimaryText(u8, String),
        Backup(u8, Option<u8>),
        DrainEdge(u8, bool),
        DrainLink(u8, u8, bool),
        HeaderPrefix(String),
        TrustedHops(u32),
        ClientSource,
        Prefix(u8, u8, String),
        State(u8, u8, u8),
        RegistrationId(u8, String),
    }

    /// A link address (override or in the policy).
    #[derive(Arbitrary, Debug, Clone)]
    pub enum LinkAddr {
        Loopback(u16),
        V4([u8; 4], u16),
        V6([u8; 16], u16),
        Name(u8, u16),
        Raw(String),
    }

    impl LinkAddr {
        fn text(&self) -> String {
            match self {
                LinkAddr::Loopback(p) => format!("127.0.0.1:{p}"),
                LinkAddr::V4(a, p) => SocketAddr::from((Ipv4Addr::from(*a), *p)).to_string(),
                LinkAddr::V6(a, p) => SocketAddr::from((Ipv6Addr::from(*a), *p)).to_string(),
                LinkAddr::Name(i, p) => {
                    let names = ["localhost", "link.example.net", "a-b.c", "x"];
                    format!("{}:{p}", names[usize::from(*i) % names.len()])
                }
                LinkAddr::Raw(s) => s.clone(),
            }
        }
    }

    #[derive(Arbitrary, Debug, Clone)]
    pub struct ConfigInput {
        pub mutations: Vec<Mutation>,
        /// `--link` overrides: (edge, link, address).
        pub links: Vec<(u8, u8, LinkAddr)>,
        pub internet: Option<LinkAddr>,
        pub all_pairs: bool,
        pub l4: bool,
        pub proxy_protocol: bool,
        pub l4_proxy_protocol: bool,
        pub expose_decision_headers: bool,
        pub health_path: Option<String>,
        pub health_interval_ms: u32,
        pub connect_timeout_ms: u32,
        pub per_try_idle_timeout_ms: u32,
        pub node: Option<(String, String)>,
    }

    fn arr<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Vec<Value>> {
        v.get_mut(key).and_then(Value::as_array_mut)
    }

    fn nth<T>(v: &mut [T], i: u8) -> Option<&mut T> {
        let n = v.len();
        if n == 0 {
            None
        } else {
            v.get_mut(usize::from(i) % n)
        }
    }

    fn set(v: Option<&mut Value>, key: &str, x: Value) {
        if let Some(o) = v.and_then(Value::as_object_mut) {
            o.insert(key.into(), x);
        }
    }

    fn apply(doc: &mut Value, m: &Mutation) {
        let edge_ids: Vec<Value> = arr(doc, "edges")
            .map(|e| e.iter().filter_map(|x| x.get("id").cloned()).collect())
            .unwrap_or_default();
        let edge_id = |i: u8| {
            edge_ids
                .get(usize::from(i) % edge_ids.len().max(1))
                .cloned()
                .unwrap_or(Value::Null)
        };
        match m {
            Mutation::RemoveEdge(i) => {
                if let Some(e) = arr(doc, "edges").filter(|e| !e.is_empty()) {
                    let n = e.len();
                    e.remove(usize::from(*i) % n);
                }
            }
            Mutation::RemoveRegistration(i) => {
                if let Some(e) = arr(doc, "registrations").filter(|e| !e.is_empty()) {
                    let n = e.len();
                    e.remove(usize::from(*i) % n);
                }
            }
            Mutation::RemoveLink(e, l) => {
                if let Some(links) = arr(doc, "edges")
                    .and_then(|x| nth(x, *e))
                    .and_then(|x| arr(x, "links"))
                    .filter(|x| !x.is_empty())
                {
                    let n = links.len();
                    links.remove(usize::from(*l) % n);
                }
            }
            Mutation::EdgeId(e, s) => set(
                arr(doc, "edges").and_then(|x| nth(x, *e)),
                "id",
                Value::String(s.clone()),
            ),
            Mutation::LinkId(e, l, s) => set(
                arr(doc, "edges")
                    .and_then(|x| nth(x, *e))
                    .and_then(|x| arr(x, "links"))
                    .and_then(|x| nth(x, *l)),
                "id",
                Value::String(s.clone()),
            ),
            Mutation::LinkAddress(e, l, a) => set(
                arr(doc, "edges")
                    .and_then(|x| nth(x, *e))
                    .and_then(|x| arr(x, "links"))
                    .and_then(|x| nth(x, *l)),
                "address",
                Value::String(a.text()),
            ),
            Mutation::Primary(r, e) => set(
                arr(doc, "registrations").and_then(|x| nth(x, *r)),
                "primary_edge",
                edge_id(*e),
            ),
            Mutation::PrimaryText(r, s) => set(
                arr(doc, "registrations").and_then(|x| nth(x, *r)),
                "primary_edge",
                Value::String(s.clone()),
            ),
            Mutation::Backup(r, e) => set(
                arr(doc, "registrations").and_then(|x| nth(x, *r)),
                "backup_edge",
                e.map_or(Value::Null, edge_id),
            ),
            Mutation::DrainEdge(e, b) => set(
                arr(doc, "edges").and_then(|x| nth(x, *e)),
                "drained",
                Value::Bool(*b),
            ),
            Mutation::DrainLink(e, l, b) => set(
                arr(doc, "edges")
                    .and_then(|x| nth(x, *e))
                    .and_then(|x| arr(x, "links"))
                    .and_then(|x| nth(x, *l)),
                "drained",
                Value::Bool(*b),
            ),
            Mutation::HeaderPrefix(s) => set(
                doc.get_mut("options"),
                "header_prefix",
                Value::String(s.clone()),
            ),
            Mutation::TrustedHops(h) => set(
                doc.get_mut("options"),
                "client_address",
                serde_json::json!({"from": "xff", "trusted_hops": h}),
            ),
            Mutation::ClientSource => set(
                doc.get_mut("options"),
                "client_address",
                serde_json::json!({"from": "source"}),
            ),
            Mutation::Prefix(r, p, s) => set(
                arr(doc, "registrations")
                    .and_then(|x| nth(x, *r))
                    .and_then(|x| arr(x, "prefixes"))
                    .and_then(|x| nth(x, *p)),
                "prefix",
                Value::String(s.clone()),
            ),
            Mutation::State(r, p, s) => {
                let states = ["Verified", "Pending", "Rejected", "Verfied", ""];
                set(
                    arr(doc, "registrations")
                        .and_then(|x| nth(x, *r))
                        .and_then(|x| arr(x, "prefixes"))
                        .and_then(|x| nth(x, *p)),
                    "state",
                    Value::String(states[usize::from(*s) % states.len()].into()),
                )
            }
            Mutation::RegistrationId(r, s) => set(
                arr(doc, "registrations").and_then(|x| nth(x, *r)),
                "id",
                Value::String(s.clone()),
            ),
        }
    }

    /// What [`check_envoy_config`] generated, for `envoy --mode validate`.
    pub struct Written {
        pub bootstrap: Value,
        pub http_ecds: Value,
        pub tcp_ecds: Option<Value>,
    }

    /// `envoy_config`: a mutated demo policy and settings from the input; when the policy
    /// loads, `generate` answers (a configuration or an error) without panicking, and the
    /// configuration is JSON that names every cluster its routes use.
    pub fn check_envoy_config(input: &ConfigInput, xds_dir: &std::path::Path) -> Option<Written> {
        let Ok(mut doc) = serde_json::from_slice::<Value>(DEMO_POLICY) else {
            panic!("demo not JSON");
        };
        for m in input.mutations.iter().take(16) {
            apply(&mut doc, m);
        }
        let text = doc.to_string();
        let loaded = policy_core::load(text.as_bytes(), false).ok()?;
        let mut s = mapsctl::envoy_config::Settings::default();
        // Every link an address (the demo's have none), then the input's overrides.
        let mut port = 18000u16;
        let edges = doc
            .get("edges")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in &edges {
            for l in e
                .get("links")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = l.get("id").and_then(Value::as_str) {
                    s.links.insert(id.to_string(), format!("127.0.0.1:{port}"));
                    port = port.wrapping_add(1);
                }
            }
        }
        for (e, l, a) in input.links.iter().take(8) {
            let id = edges
                .get(usize::from(*e) % edges.len().max(1))
                .and_then(|e| e.get("links"))
                .and_then(Value::as_array)
                .and_then(|ls| ls.get(usize::from(*l) % ls.len().max(1)))
                .and_then(|l| l.get("id"))
                .and_then(Value::as_str);
            if let Some(id) = id {
                s.links.insert(id.to_string(), a.text());
            }
        }
        s.internet = input.internet.as_ref().map(LinkAddr::text);
        s.all_pairs = input.all_pairs;
        if !input.l4 {
            s.listen_l4 = None;
        }
        s.proxy_protocol = input.proxy_protocol;
        s.l4_proxy_protocol = input.l4_proxy_protocol;
        s.expose_decision_headers = input.expose_decision_headers;
        if let Some(h) = &input.health_path {
            s.health_path = h.clone();
        }
        s.health_interval_ms = input.health_interval_ms;
        s.connect_timeout_ms = input.connect_timeout_ms;
        s.per_try_idle_timeout_ms = input.per_try_idle_timeout_ms;
        if let Some((id, cluster)) = &input.node {
            s.node_id = id.clone();
            s.node_cluster = cluster.clone();
        }
        s.plugin = plugin_path();
        s.xds_dir = xds_dir.to_path_buf();
        let g = mapsctl::envoy_config::generate(&loaded.classifier, &text, &s).ok()?;
        // Every cluster the plan names is in the bootstrap.
        let have: Vec<&str> = g
            .bootstrap
            .pointer("/static_resources/clusters")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        for c in &g.plan {
            assert!(
                have.contains(&c.name.as_str()),
                "cluster {} missing",
                c.name
            );
        }
        let _ = mapsctl::envoy_config::to_text(&g.bootstrap);
        Some(Written {
            bootstrap: g.bootstrap,
            http_ecds: g.http_ecds,
            tcp_ecds: g.tcp_ecds,
        })
    }

    /// With `$MAPS_FUZZ_ENVOY_OUT` set, the `envoy_config` target writes each generated
    /// configuration to `$MAPS_FUZZ_ENVOY_OUT/<n>/` (envoy.json, xds/…) for
    /// `fuzz/envoy_validate.sh`.
    pub fn envoy_config_target(input: &ConfigInput) {
        use mapsctl::envoy_config as ec;
        let out = std::env::var_os("MAPS_FUZZ_ENVOY_OUT").map(PathBuf::from);
        let dir = out.as_ref().map(|o| {
            let n = std::fs::read_dir(o).map(|d| d.count()).unwrap_or(0);
            o.join(format!("{n:05}"))
        });
        let xds = match &dir {
            Some(d) => d.join(ec::XDS_DIR),
            None => PathBuf::from("/etc/envoy/xds"),
        };
        let Some(w) = check_envoy_config(input, &xds) else {
            return;
        };
        if let Some(d) = dir {
            let write = |p: PathBuf, v: &Value| {
                if let Err(e) = std::fs::write(&p, ec::to_text(v)) {
                    panic!("cannot write {}: {e}", p.display());
                }
            };
            if let Err(e) = std::fs::create_dir_all(&xds) {
                panic!("cannot create {}: {e}", xds.display());
            }
            write(d.join(ec::BOOTSTRAP_FILE), &w.bootstrap);
            write(xds.join(ec::HTTP_ECDS_FILE), &w.http_ecds);
            if let Some(t) = &w.tcp_ecds {
                write(xds.join(ec::TCP_ECDS_FILE), t);
            }
        }
    }
}
#[cfg(feature = "config")]
pub use config::*;
