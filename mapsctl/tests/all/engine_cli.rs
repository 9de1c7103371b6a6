//! `mapsctl classify --engine plugin`: the built plugin, found by default, prints the
//! golden decision lines byte for byte (the same as `--engine native`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::plugin_path;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mapsctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .args(args)
        .current_dir(root())
        .env_remove("MAPS_PLUGIN_WASM")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn classify_with_the_plugin_engine_prints_the_golden_decisions() {
    // Fails with "run `make plugin`" when the plugin is not built.
    let plugin = plugin_path();
    let golden =
        std::fs::read_to_string(root().join("fixtures/demo/decisions.golden.jsonl")).unwrap();
    let args = [
        "classify",
        "--engine",
        "plugin",
        "--policy",
        "fixtures/demo/policy.json",
        "--trace",
        "fixtures/demo/trace.jsonl",
    ];
    // Default plugin location (found from the mapsctl executable), then an explicit one.
    for extra in [vec![], vec!["--plugin", plugin.to_str().unwrap()]] {
        let mut a = args.to_vec();
        a.extend(extra.iter());
        let o = mapsctl(&a);
        assert_eq!(String::from_utf8_lossy(&o.stdout), golden, "{a:?}");
        assert_ne!(o.status.code(), Some(101), "mapsctl panicked");
    }
    let native = mapsctl(
        &args[..1]
            .iter()
            .chain(&args[3..])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(String::from_utf8_lossy(&native.stdout), golden);
}

#[test]
fn a_missing_plugin_is_a_clear_error() {
    let o = mapsctl(&[
        "classify",
        "--engine",
        "plugin",
        "--plugin",
        "/nonexistent/maps_plugin.wasm",
        "--policy",
        "fixtures/demo/policy.json",
        "--trace",
        "fixtures/demo/trace.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("make plugin"), "{err}");
}
