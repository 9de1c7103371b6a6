//! The compiled policy file (`policy_core::compile`, `mapsctl compile`): a proxy that
//! adopts it decides exactly as one that loaded the JSON, and a foreign, damaged or
//! altered file is refused with what is wrong, never adopted, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use policy_core::{compile, load, load_owned, policy_version, CompiledError, LoadedPolicy};
use serde_json::{json, Value};

const DEMO: &[u8] = include_bytes!("../../fixtures/demo/policy.json");

/// A small deterministic generator (no dependency, same sequence everywhere).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The demo policy plus `n` registrations of nested IPv4 prefixes (/12 to /32) and
/// IPv6 prefixes (/32 to /96, so some are longer than /64), in every state, enough for
/// the large-table layout (18-bit direct table) when `n` is large.
fn big_policy(n: usize) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(DEMO).unwrap();
    let states = [
        "Verified", "Pending", "Failed", "Unknown", "Verified", "Verified",
    ];
    let mut rng = Lcg(2026);
    let mut seen = std::collections::BTreeSet::new();
    let regs = doc["registrations"].as_array_mut().unwrap();
    for r in 0..n {
        let mut prefixes = Vec::new();
        for k in 0..8 {
            let state = states[rng.below(states.len() as u64) as usize];
            let p = if k < 6 {
                // 20.0.0.0/8 and 40.0.0.0/8 are public; nest by sharing high bits.
                let first = if rng.below(2) == 0 { 20u32 } else { 40 };
                let len = 12 + rng.below(21) as u32;
                let bits = (first << 24) | (rng.below(1 << 16) as u32) << 8 | rng.below(256) as u32;
                let net = bits & (u32::MAX << (32 - len));
                let a = net.to_be_bytes();
                format!("{}.{}.{}.{}/{len}", a[0], a[1], a[2], a[3])
            } else {
                let len = [32u32, 48, 56, 64, 72, 96][rng.below(6) as usize];
                let hi = (0x2603_u128 << 112)
                    | (u128::from(rng.below(1 << 20)) << 80)
                    | u128::from(rng.next()) << 16;
                let net = hi & (u128::MAX << (128 - len));
                format!("{}/{len}", std::net::Ipv6Addr::from(net))
            };
            if seen.insert(p.clone()) {
                prefixes.push(json!({"prefix": p, "state": state, "telemetry": k == 0}));
            }
        }
        regs.push(
            json!({"id": format!("gen-{r}"), "location": "Washington", "prefixes": prefixes}),
        );
    }
    serde_json::to_vec(&doc).unwrap()
}

/// Source addresses to ask about: inside and around the policy's prefixes, and random.
fn sources(text: &[u8], count: usize) -> Vec<String> {
    let doc: Value = serde_json::from_slice(text).unwrap();
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    for r in doc["registrations"].as_array().unwrap() {
        for p in r["prefixes"].as_array().unwrap() {
            let net: ipnet::IpNet = p["prefix"].as_str().unwrap().parse().unwrap();
            match net {
                ipnet::IpNet::V4(n) => {
                    let base = u32::from(n.network());
                    let span = 1u64 << (32 - n.prefix_len());
                    out.push(std::net::Ipv4Addr::from(base + rng.below(span) as u32).to_string());
                    out.push(std::net::Ipv4Addr::from(base.wrapping_sub(1)).to_string());
                }
                ipnet::IpNet::V6(n) => {
                    let base = u128::from(n.network());
                    let host = u128::from(rng.next()) & (u128::MAX >> n.prefix_len().max(1));
                    out.push(std::net::Ipv6Addr::from(base | host).to_string());
                }
            }
        }
    }
    for _ in 0..count {
        out.push(std::net::Ipv4Addr::from(rng.next() as u32).to_string());
    }
    out
}

fn decisions(p: &LoadedPolicy, srcs: &[String]) -> Vec<String> {
    let c = &p.classifier;
    srcs.iter()
        .flat_map(|s| {
            [
                serde_json::to_string(&c.classify_text(s, None, Some("outlook.office365.com")))
                    .unwrap(),
                serde_json::to_string(&c.classify_text(s, Some("13.107.6.152"), None)).unwrap(),
                serde_json::to_string(&c.classify_text(s, None, Some("example.org"))).unwrap(),
            ]
        })
        .collect()
}

fn assert_same_decisions(text: &[u8]) {
    let json = load(text, false).unwrap();
    let file = compile(text, false).unwrap();
    let compiled = load_owned(file.clone(), false).unwrap();
    assert_eq!(
        compiled.report, json.report,
        "the stored report is the validation report"
    );
    let srcs = sources(text, 2000);
    let (a, b) = (decisions(&json, &srcs), decisions(&compiled, &srcs));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "decision {i} differs");
    }
    assert_eq!(policy_version(&file), policy_version(text));
    let regs = json.classifier.policy().document().registrations.len();
    for r in 0..regs {
        assert_eq!(
            format!("{:?}", compiled.classifier.policy().counts(r)),
            format!("{:?}", json.classifier.policy().counts(r)),
            "prefix counts of registration {r}"
        );
    }
}

#[test]
fn the_demo_policy_compiled_decides_exactly_as_its_json() {
    assert_same_decisions(DEMO);
}

#[test]
fn a_large_nested_policy_compiled_decides_exactly_as_its_json() {
    // 9,000 registrations × 8 prefixes: above 65,536 prefixes, so the 18-bit direct
    // table; IPv6 prefixes longer than /64 give sub-tries.
    assert_same_decisions(&big_policy(9_000));
}

fn refused(bytes: Vec<u8>) -> CompiledError {
    match policy_core::load_compiled(bytes) {
        Ok(_) => panic!("a bad compiled file was adopted"),
        Err(e) => e,
    }
}

/// Recomputes the CRC-32 after an edit, as someone altering the file on purpose would.
fn reseal(mut f: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&f[12..]);
    f[8..12].copy_from_slice(&crc.to_le_bytes());
    f
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// (offset, length) of section `tag`.
fn section(f: &[u8], tag: &[u8; 4]) -> (usize, usize) {
    for i in 0..5 {
        let e = 48 + 16 * i;
        if &f[e..e + 4] == tag {
            let at = u32::from_le_bytes(f[e + 8..e + 12].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(f[e + 12..e + 16].try_into().unwrap()) as usize;
            return (at, len);
        }
    }
    panic!("no section")
}

#[test]
fn a_foreign_file_is_refused_as_foreign() {
    for bytes in [DEMO, b"\x89PNG\r\n\x1a\n", b"", b"MAP", b"mapc\x01\x00"] {
        let e = refused(bytes.to_vec());
        assert_eq!(
            e,
            CompiledError::Foreign,
            "{:?}",
            &bytes[..bytes.len().min(8)]
        );
    }
    // Through the loader every adapter uses, a JSON policy is still JSON.
    assert!(load(DEMO, false).is_ok());
}

#[test]
fn another_format_version_is_refused_with_both_versions_named() {
    let mut f = compile(DEMO, false).unwrap();
    f[4] = 2;
    let e = refused(reseal(f));
    assert_eq!(e, CompiledError::Version(2));
    assert!(e.to_string().contains("version 2") && e.to_string().contains("reads version 1"));
    assert!(e.help().contains("mapsctl compile"));
}

#[test]
fn a_cut_or_padded_file_is_refused_by_its_length() {
    let f = compile(DEMO, false).unwrap();
    for cut in [f.len() - 1, f.len() / 2, 47, 20, 5] {
        let e = refused(f[..cut].to_vec());
        assert!(
            matches!(e, CompiledError::Length { .. }),
            "cut at {cut}: {e}"
        );
    }
    let mut padded = f.clone();
    padded.push(0);
    assert!(matches!(refused(padded), CompiledError::Length { .. }));
}

#[test]
fn any_damaged_byte_is_refused_by_the_checksum() {
    let f = compile(&big_policy(300), false).unwrap();
    let mut rng = Lcg(11);
    for i in 0..400 {
        // Every byte after the checksum field, and a spread of random ones.
        let at = if i < 40 {
            12 + i
        } else {
            12 + rng.below(f.len() as u64 - 12) as usize
        };
        let mut g = f.clone();
        g[at] ^= 1 << rng.below(8);
        let e = refused(g);
        assert!(
            matches!(
                e,
                CompiledError::Checksum { .. } | CompiledError::Length { .. }
            ),
            "byte {at}: {e}"
        );
    }
    let e = {
        let mut g = f.clone();
        let last = g.len() - 1;
        g[last] ^= 0x80;
        refused(g)
    };
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(e.help().contains("damaged"));
}

#[test]
fn an_altered_file_with_a_recomputed_checksum_is_refused_by_its_structure() {
    let f = compile(&big_policy(9_000), false).unwrap();
    let (v4, _) = section(&f, b"RGV4");
    let bits = u32::from_le_bytes(f[v4 + 12..v4 + 16].try_into().unwrap());
    let nv = u32::from_le_bytes(f[v4 + 24..v4 + 28].try_into().unwrap()) as usize;
    let direct = v4 + 40 + nv * 4;
    let entries = 1usize << bits;
    let entry = |f: &[u8], i: usize| {
        u32::from_le_bytes(f[direct + 4 * i..direct + 4 * i + 4].try_into().unwrap())
    };
    let node_at = (0..entries)
        .find(|&i| entry(&f, i) & (1 << 31) != 0)
        .unwrap();
    let leaf_at = (0..entries)
        .find(|&i| entry(&f, i) & (1 << 31) == 0)
        .unwrap();
    let set = |f: &mut Vec<u8>, i: usize, v: u32| {
        f[direct + 4 * i..direct + 4 * i + 4].copy_from_slice(&v.to_le_bytes())
    };

    // A direct entry pointing past the arena.
    let mut g = f.clone();
    set(&mut g, node_at, (1 << 31) | 0x7fff_0000);
    let e = refused(reseal(g));
    assert!(
        e.to_string().contains("RGV4") && e.to_string().contains("outside the arena"),
        "{e}"
    );

    // Two entries sharing one node (a DAG: a walk could be made exponential).
    let mut g = f.clone();
    let shared = entry(&g, node_at);
    set(&mut g, leaf_at, shared);
    let e = refused(reseal(g));
    assert!(e.to_string().contains("more than once"), "{e}");

    // A leaf value naming a registration the document does not have.
    let mut g = f.clone();
    set(&mut g, leaf_at, (60_000 << 12) | 24);
    let e = refused(reseal(g));
    assert!(e.to_string().contains("unknown code"), "{e}");

    // The document replaced by an invalid one.
    let mut g = f.clone();
    let (d, len) = section(&g, b"DOCU");
    let bad = br#"{"version": 7}"#;
    g[d..d + bad.len()].copy_from_slice(bad);
    for b in &mut g[d + bad.len()..d + len] {
        *b = b' ';
    }
    let e = refused(reseal(g));
    assert!(e.to_string().contains("DOCU"), "{e}");

    // A section table entry moved outside the file.
    let mut g = f.clone();
    let e0 = 48 + 16 * 4 + 8;
    g[e0..e0 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = refused(reseal(g));
    assert!(
        e.to_string().contains("RGV6") && e.to_string().contains("outside the file"),
        "{e}"
    );
}

#[test]
fn the_loader_every_adapter_uses_refuses_a_damaged_file_with_a_compiled_policy_diagnostic() {
    let mut f = compile(DEMO, false).unwrap();
    let last = f.len() - 1;
    f[last] ^= 1;
    let report = load_owned(f, false).unwrap_err();
    assert!(!report.valid);
    let d = &report.diagnostics[0];
    assert_eq!(d.code.as_str(), "compiled-policy");
    assert!(d.help.as_deref().unwrap().contains("copy it again"));
}

#[test]
fn a_policy_with_errors_is_not_compiled() {
    let report = compile(br#"{"version": 2}"#, false).unwrap_err();
    assert!(!report.valid);
    assert_eq!(report.diagnostics[0].code.as_str(), "unsupported-version");
    let file = compile(DEMO, false).unwrap();
    assert_eq!(
        compile(&file, false).unwrap_err().diagnostics[0]
            .code
            .as_str(),
        "compiled-policy"
    );
}

#[test]
fn random_alterations_with_a_recomputed_checksum_never_panic() {
    // Whatever a file holds once its checksum is made to match, the reader refuses it
    // or adopts a table whose every lookup stays inside it.
    let f = compile(&big_policy(200), false).unwrap();
    let srcs = sources(&big_policy(200), 200);
    let mut rng = Lcg(99);
    let (mut adopted, mut refusedn) = (0, 0);
    for _ in 0..300 {
        let mut g = f.clone();
        for _ in 0..1 + rng.below(4) {
            let at = 48 + rng.below(g.len() as u64 - 48) as usize;
            g[at] = rng.next() as u8;
        }
        match policy_core::load_compiled(reseal(g)) {
            Ok(p) => {
                adopted += 1;
                let _ = decisions(&p, &srcs[..50]);
            }
            Err(_) => refusedn += 1,
        }
    }
    assert!(
        refusedn > 0,
        "some alterations must be refused ({adopted} adopted)"
    );
}
