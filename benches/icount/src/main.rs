//! `icount SCENARIO N`: does N operations of one scenario and prints a checksum, for
//! `benches/icount.py`, which runs it under `valgrind --tool=callgrind` with N and 2N
//! and takes the difference: the instructions of N operations, set-up excluded. Counts
//! are repeatable for one binary on one machine, whatever else the machine is doing.
//!
//! | scenario | one operation |
//! |---|---|
//! | `lpm` | an IPv4 longest-prefix-match lookup in a 20,000-prefix synthetic table (half hit) |
//! | `decide` | the whole decision (`Classifier::classify` with a host name) on a policy of the same 20,000 prefixes |
//! | `plugin` | one HTTP request through the proxy-wasm plugin in host-harness, demo policy, flows of `fixtures/demo/trace.jsonl` in turn |
//! | `load` | validating and compiling the demo policy (`policy_core::load`) |
//!
//! `plugin` needs the plugin (`make plugin`), found as `mapsctl classify --engine
//! plugin` finds it, or at `$PLUGIN_WASM`.

use std::hint::black_box;
use std::net::IpAddr;
use std::process::ExitCode;

use policy_core::testgen;

const DEMO: &[u8] = include_bytes!("../../../fixtures/demo/policy.json");
const DEMO_TRACE: &str = include_str!("../../../fixtures/demo/trace.jsonl");
const PREFIXES: usize = 20_000;
const SEED: u64 = 42;

/// The addresses looked up, always the same 16,384 (half inside the table) whatever N
/// is: generating them is set-up, which the N / 2N difference must cancel.
fn lookups() -> Vec<u32> {
    let table = testgen::ipv4_table(PREFIXES, SEED);
    testgen::ipv4_lookups(&table, 16_384, 0.5, SEED ^ 1)
}

fn lpm(n: usize) -> Result<u64, String> {
    let table = testgen::ipv4_table(PREFIXES, SEED);
    let lpm = policy_core::Lpm4::build(&table);
    let addrs = lookups();
    let mut sum = 0u64;
    for &a in addrs.iter().cycle().take(n) {
        sum = sum.wrapping_add(u64::from(lpm.lookup(black_box(a)).unwrap_or(7)));
    }
    Ok(sum)
}

fn decide(n: usize) -> Result<u64, String> {
    let base =
        policy_core::parse_bytes(DEMO).map_err(|_| "the demo policy does not parse".to_string())?;
    let doc = policy_core::synth::synthetic_policy(&base, PREFIXES, 0, 1000, SEED);
    let text = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    let engine = policy_core::load(&text, false)
        .map_err(|_| "the synthetic policy is invalid".to_string())?;
    let c = &engine.classifier;
    let addrs: Vec<IpAddr> = lookups()
        .into_iter()
        .map(|a| IpAddr::V4(a.into()))
        .collect();
    let host = Some("outlook.office365.com");
    let mut sum = 0u64;
    for &a in addrs.iter().cycle().take(n) {
        let d = c.classify(black_box(a), None, host);
        sum = sum.wrapping_add(d.class() as u64 + d.edge_index().unwrap_or(0) as u64);
    }
    Ok(sum)
}

fn plugin(n: usize) -> Result<u64, String> {
    let path = std::env::var_os("PLUGIN_WASM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(mapsctl::replay::default_plugin_path);
    // Seeded WASI randomness: the plugin's hash maps probe alike in every run.
    let harness = host_harness::Harness::load(&path)
        .map_err(|e| format!("plugin: {e}"))?
        .random_seed(SEED);
    let mut replay = mapsctl::replay::PluginReplay::with_harness(&harness, DEMO)
        .map_err(|e| format!("plugin: {e}"))?;
    let flows: Vec<serde_json::Value> = DEMO_TRACE
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    let flows: Vec<(String, Option<String>, Option<String>)> = flows
        .iter()
        .filter_map(|v| Some((field(v, "src")?, field(v, "dst"), field(v, "host"))))
        .collect();
    let mut sum = 0u64;
    for (src, dst, host) in flows.iter().cycle().take(n) {
        let line = replay
            .classify(src, dst.as_deref(), host.as_deref())
            .map_err(|e| format!("plugin: {e}"))?;
        sum = sum.wrapping_add(line.len() as u64);
    }
    Ok(sum)
}

fn load(n: usize) -> Result<u64, String> {
    let mut sum = 0u64;
    for _ in 0..n {
        let engine = policy_core::load(black_box(DEMO), false)
            .map_err(|_| "the demo policy is invalid".to_string())?;
        sum = sum.wrapping_add(engine.classifier.table_bytes() as u64);
    }
    Ok(sum)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(scenario), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: icount lpm|decide|plugin|load N");
        return ExitCode::from(2);
    };
    let result = match scenario.as_str() {
        "lpm" => lpm(n),
        "decide" => decide(n),
        "plugin" => plugin(n),
        "load" => load(n),
        other => Err(format!(
            "unknown scenario `{other}` (lpm, decide, plugin, load)"
        )),
    };
    match result {
        Ok(sum) => {
            println!("{scenario} {n} {sum}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("icount: {e}");
            ExitCode::from(1)
        }
    }
}
