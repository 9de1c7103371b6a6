//! The wasm build of `benches/wasm-lookup` gives exactly native's answers, in wasmtime
//! (this crate's runner) and in Node's V8: the correctness check behind the wasm
//! figures of `make bench`, on small tables (no timing is asserted).
//!
//! Needs the module built first (`make test` does it: `make wasm-lookup-check`);
//! `WASM_LOOKUP_WASM` overrides its path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use wasm_lookup::{run, Sizes};

const SIZES: Sizes = Sizes {
    v4: 20_000,
    v6: 5_000,
    lookups: 20_000,
    reps: 1,
};
const CASES: [&str; 4] = ["v4", "v6", "classify", "publish"];

fn args() -> Vec<String> {
    [
        "--v4",
        "20000",
        "--v6",
        "5000",
        "--lookups",
        "20000",
        "--reps",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn module() -> PathBuf {
    let p = std::env::var_os("WASM_LOOKUP_WASM").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm32-wasip1/debug/wasm-lookup.wasm")
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} is missing: build it with `make wasm-lookup-check` \
         (cargo build -p wasm-lookup --target wasm32-wasip1)",
        p.display()
    );
    p
}

fn output(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("the engine starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).unwrap()
}

fn assert_same(engine: &str, got: &Value, native: &Value) {
    assert_eq!(got["arch"], "wasm32", "{engine} ran the wasm build");
    for c in CASES {
        assert!(native[c]["digest"].is_string(), "native {c} digest");
        assert_eq!(
            got[c]["digest"], native[c]["digest"],
            "{engine}: {c} answers differ from native"
        );
    }
    // Both hits and misses, and every class path of a real policy, were exercised.
    assert!(native["classify"]["maps"].as_u64().unwrap() > 1000);
    assert!(native["classify"]["prefixes"].as_u64().unwrap() > 20_000);
}

#[test]
fn wasmtime_gives_native_answers() {
    let native = run(SIZES, &CASES).unwrap();
    let got = output(
        Command::new(env!("CARGO_BIN_EXE_wasm-runner"))
            .arg(module())
            .args(args()),
    );
    assert_same("wasmtime", &got, &native);
}

#[test]
fn node_v8_gives_native_answers() {
    let native = run(SIZES, &CASES).unwrap();
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wasm-lookup/run-node.mjs");
    let got = output(
        Command::new("node")
            .arg("--no-warnings")
            .arg(runner)
            .arg(module())
            .args(args()),
    );
    assert_same("node", &got, &native);
}
