//! The classifier's hot paths as one seeded workload, built once for the host and once
//! for `wasm32-wasip1`, so that native code, wasmtime and V8 (Node's `node:wasi`) run
//! exactly the same computation and can be compared side by side.
//!
//! Three measurements, each reported in nanoseconds per operation (the median of
//! `reps` timed passes after one untimed warm-up pass, so that V8's tier-up from
//! Liftoff to TurboFan has happened):
//!
//! | case | what one operation is |
//! |---|---|
//! | `v4` | [`Lpm4::lookup`] on `testgen::ipv4_table(v4, SEED)` (the criterion bench's table and stream) |
//! | `v6` | [`Lpm6::lookup`] on `testgen::ipv6_table(v6, SEED)` |
//! | `classify` | [`Classifier::classify`] of a source address (and the host `outlook.office365.com`) on the synthetic policy `mapsctl bench` uses: the demo policy plus `v4` + `v6` generated prefixes, loaded from its packed JSON |
//! | `publish` | what the proxy-wasm plugin computes per request besides its host calls: `classify_text` of the address text, the cluster name and the decision line (JSON) it publishes as headers |
//!
//! Each case also reports a digest of every answer (FNV-1a over the lookup results,
//! or over class, registration, edge and link of every decision): two engines that
//! print the same digests made the same decisions.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use policy_core::{testgen, Classifier};
use policy_core::{Lpm4, Lpm6};
use serde_json::{json, Value};

/// The demo policy: the base of the synthetic policy (as in `mapsctl bench`).
const DEMO: &str = include_str!("../../../fixtures/demo/policy.json");

/// Seed of the synthetic policy (`mapsctl gen` / `mapsctl bench` default).
pub const POLICY_SEED: u64 = 2026;

/// The host every classified request names (a Microsoft destination in the demo).
pub const HOST: &str = "outlook.office365.com";

/// Workload sizes.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// IPv4 prefixes.
    pub v4: usize,
    /// IPv6 prefixes.
    pub v6: usize,
    /// Addresses per pass of the `v4` and `v6` cases; `classify` uses as many IPv4
    /// addresses plus a fifth as many IPv6 ones (as `mapsctl bench`).
    pub lookups: usize,
    /// Timed passes.
    pub reps: usize,
}

impl Sizes {
    /// The sizes of issue 6: 1M IPv4, 200k IPv6, 1M-address streams, 5 passes.
    pub const FULL: Sizes = Sizes {
        v4: 1_000_000,
        v6: 200_000,
        lookups: 1_000_000,
        reps: 5,
    };
}

/// FNV-1a, 64 bits.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn u32(&mut self, x: u32) {
        self.bytes(&x.to_le_bytes());
    }
    fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs.get(n / 2).copied().unwrap_or(f64::NAN),
        n => {
            let a = xs.get(n / 2 - 1).copied().unwrap_or(f64::NAN);
            let b = xs.get(n / 2).copied().unwrap_or(f64::NAN);
            (a + b) / 2.0
        }
    }
}

/// Times `reps` passes of `pass` (after one warm-up pass) over `n` operations:
/// (median ns/op, best ns/op, the warm-up pass's ns/op).
fn time_passes(n: usize, reps: usize, mut pass: impl FnMut() -> u64) -> (f64, f64, f64) {
    let per_op = |t: Instant| t.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
    let t = Instant::now();
    black_box(pass());
    let warm = per_op(t);
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        black_box(pass());
        times.push(per_op(t));
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    (median(times), best, warm)
}

/// The sum of the values found (what a pass computes, so nothing is optimised away),
/// as `maps_benches::sum` computes it in the criterion benches.
#[inline(never)]
fn pass4(t: &Lpm4, q: &[u32]) -> u64 {
    black_box(q).iter().fold(0u64, |s, &a| {
        s.wrapping_add(t.lookup(a).map_or(0, u64::from))
    })
}

#[inline(never)]
fn pass6(t: &Lpm6, q: &[u128]) -> u64 {
    black_box(q).iter().fold(0u64, |s, &a| {
        s.wrapping_add(t.lookup(a).map_or(0, u64::from))
    })
}

#[inline(never)]
fn pass_classify(c: &Classifier, q: &[IpAddr]) -> u64 {
    black_box(q).iter().fold(0u64, |s, &a| {
        let d = c.classify(a, None, Some(HOST));
        s.wrapping_add(d.class() as u64 + d.edge_index().map_or(0, |e| e as u64))
    })
}

/// The IPv4 LPM case.
pub fn lpm_v4(s: Sizes) -> Value {
    let table = testgen::ipv4_table(s.v4, testgen::SEED);
    let q = testgen::ipv4_lookups(&table, s.lookups, 0.5, testgen::SEED);
    let t0 = Instant::now();
    let lpm = Lpm4::build(&table);
    let build_ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(table);
    let mut h = Fnv::new();
    for &a in &q {
        h.u32(lpm.lookup(a).unwrap_or(u32::MAX));
    }
    let (ns, best, warm) = time_passes(q.len(), s.reps, || pass4(&lpm, &q));
    json!({"prefixes": s.v4, "lookups": q.len(), "build_ms": build_ms,
           "ns_per_op": ns, "best_ns_per_op": best, "warmup_ns_per_op": warm,
           "table_bytes": lpm.memory_bytes(), "digest": h.hex()})
}

/// The IPv6 LPM case.
pub fn lpm_v6(s: Sizes) -> Value {
    let table = testgen::ipv6_table(s.v6, testgen::SEED);
    let q = testgen::ipv6_lookups(&table, s.lookups, 0.5, testgen::SEED);
    let t0 = Instant::now();
    let lpm = Lpm6::build(&table);
    let build_ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(table);
    let mut h = Fnv::new();
    for &a in &q {
        h.u32(lpm.lookup(a).unwrap_or(u32::MAX));
    }
    let (ns, best, warm) = time_passes(q.len(), s.reps, || pass6(&lpm, &q));
    json!({"prefixes": s.v6, "lookups": q.len(), "build_ms": build_ms,
           "ns_per_op": ns, "best_ns_per_op": best, "warmup_ns_per_op": warm,
           "table_bytes": lpm.memory_bytes(), "digest": h.hex()})
}

/// The synthetic policy and its address stream (as `mapsctl bench`): (classifier,
/// prefixes, policy JSON bytes, load ms, addresses).
fn synthetic(s: Sizes) -> Result<(Classifier, usize, usize, f64, Vec<IpAddr>), String> {
    let base =
        policy_core::parse_str(DEMO).map_err(|_| "the demo policy does not parse".to_string())?;
    let doc = policy_core::synth::synthetic_policy(&base, s.v4, s.v6, 1000, POLICY_SEED);
    let text = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    drop(doc);
    let t0 = Instant::now();
    let engine = policy_core::load(&text, false)
        .map_err(|r| format!("the synthetic policy is invalid: {} errors", r.errors))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let prefixes = engine.report.summary.as_ref().map_or(0, |m| m.prefixes);
    let policy_bytes = text.len();
    drop(text);
    let c = engine.classifier;
    // The address stream of `mapsctl bench`: half hits, IPv4 then a fifth as many IPv6.
    let t4 = testgen::ipv4_table(s.v4, POLICY_SEED);
    let mut q: Vec<IpAddr> = testgen::ipv4_lookups(&t4, s.lookups, 0.5, POLICY_SEED ^ 1)
        .into_iter()
        .map(|x| IpAddr::V4(x.into()))
        .collect();
    drop(t4);
    if s.v6 > 0 {
        let t6 = testgen::ipv6_table(s.v6, POLICY_SEED ^ 0x6666);
        q.extend(
            testgen::ipv6_lookups(&t6, s.lookups / 5, 0.5, POLICY_SEED ^ 2)
                .into_iter()
                .map(|x| IpAddr::V6(x.into())),
        );
    }
    Ok((c, prefixes, policy_bytes, load_ms, q))
}

/// The whole-decision case on the synthetic policy.
pub fn classify(s: Sizes) -> Result<Value, String> {
    let (c, prefixes, policy_bytes, load_ms, q) = synthetic(s)?;
    let mut h = Fnv::new();
    let mut maps = 0usize;
    for &a in &q {
        let d = c.classify(a, None, Some(HOST));
        maps += usize::from(d.class() == policy_core::Class::Maps);
        h.bytes(d.class().as_str().as_bytes());
        h.u32(d.registration_index().map_or(u32::MAX, |r| r as u32));
        h.u32(d.edge_index().map_or(u32::MAX, |e| e as u32));
        h.bytes(d.link().unwrap_or("-").as_bytes());
    }
    let (ns, best, warm) = time_passes(q.len(), s.reps, || pass_classify(&c, &q));
    Ok(
        json!({"prefixes": prefixes, "policy_json_bytes": policy_bytes,
              "decisions": q.len(), "maps": maps, "load_ms": load_ms,
              "ns_per_op": ns, "best_ns_per_op": best, "warmup_ns_per_op": warm,
              "table_bytes": c.table_bytes(), "digest": h.hex()}),
    )
}

#[inline(never)]
fn pass_publish(c: &Classifier, q: &[String]) -> u64 {
    black_box(q).iter().fold(0u64, |s, a| {
        let d = c.classify_text(a, None, Some(HOST));
        let cluster = d.cluster();
        let line = policy_core::decision_line_json(a, &d);
        s.wrapping_add((cluster.map_or(0, str::len) + line.len()) as u64)
    })
}

/// The per-request work of the plugin besides host calls, on the synthetic policy.
pub fn publish(s: Sizes) -> Result<Value, String> {
    let (c, prefixes, _, _, q) = synthetic(s)?;
    let q: Vec<String> = q.iter().map(ToString::to_string).collect();
    let mut h = Fnv::new();
    for a in &q {
        let d = c.classify_text(a, None, Some(HOST));
        h.bytes(d.cluster().unwrap_or_default().as_bytes());
        h.bytes(policy_core::decision_line_json(a, &d).as_bytes());
    }
    let (ns, best, warm) = time_passes(q.len(), s.reps, || pass_publish(&c, &q));
    Ok(json!({"prefixes": prefixes, "decisions": q.len(),
              "ns_per_op": ns, "best_ns_per_op": best, "warmup_ns_per_op": warm,
              "digest": h.hex()}))
}

/// Bytes of linear memory (wasm only; `None` natively).
pub fn linear_memory_bytes() -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size(0) * 65536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}

/// Runs the chosen cases; one JSON object.
pub fn run(s: Sizes, cases: &[&str]) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    out.insert(
        "arch".into(),
        json!(if cfg!(target_arch = "wasm32") {
            "wasm32"
        } else {
            std::env::consts::ARCH
        }),
    );
    out.insert("reps".into(), json!(s.reps));
    for &case in cases {
        let v = match case {
            "v4" => lpm_v4(s),
            "v6" => lpm_v6(s),
            "classify" => classify(s)?,
            "publish" => publish(s)?,
            other => {
                return Err(format!(
                    "unknown case {other:?} (v4, v6, classify, publish)"
                ))
            }
        };
        out.insert(case.into(), v);
    }
    if let Some(m) = linear_memory_bytes() {
        out.insert("linear_memory_bytes".into(), json!(m));
    }
    Ok(Value::Object(out))
}
