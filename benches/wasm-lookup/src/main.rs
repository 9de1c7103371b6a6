//! `wasm-lookup [--v4 N] [--v6 N] [--lookups N] [--reps N] [CASE...]`: runs the seeded
//! workload (cases `v4`, `v6`, `classify`, `publish`; all by default) and prints one JSON object.
//! The same program runs natively, under wasmtime (`wasm-runner`) and under Node
//! (`benches/wasm-lookup/run-node.mjs`).

use std::process::ExitCode;

use wasm_lookup::{run, Sizes};

fn main() -> ExitCode {
    let mut s = Sizes::FULL;
    let mut cases: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--v4" => &mut s.v4,
            "--v6" => &mut s.v6,
            "--lookups" => &mut s.lookups,
            "--reps" => &mut s.reps,
            "-h" | "--help" => {
                println!("usage: wasm-lookup [--v4 N] [--v6 N] [--lookups N] [--reps N] [v4|v6|classify|publish...]");
                return ExitCode::SUCCESS;
            }
            _ => {
                cases.push(a);
                continue;
            }
        };
        match args.next().and_then(|v| v.replace('_', "").parse().ok()) {
            Some(n) => *slot = n,
            None => {
                eprintln!("wasm-lookup: {a} needs a number");
                return ExitCode::from(2);
            }
        }
    }
    if cases.is_empty() {
        cases = vec![
            "v4".into(),
            "v6".into(),
            "classify".into(),
            "publish".into(),
        ];
    }
    let refs: Vec<&str> = cases.iter().map(String::as_str).collect();
    match run(s, &refs) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-lookup: {e}");
            ExitCode::from(1)
        }
    }
}
