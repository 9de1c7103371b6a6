//! `mapsctl classify --engine plugin`: the built plugin, found by default, prints the
//! golden decision lines byte for byte (the same as `--engine native`).

use std::process::{Command, Output, Stdio};

use crate::common::root;

use crate::common::plugin_path;

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

/// Issue 13, findings 7 and 8: the plugin engine and the native one print the same
/// lines for blank lines, sources containing `,`, and 100 or 255 trusted hops.
#[test]
fn plugin_and_native_agree_on_odd_sources_blank_lines_and_many_hops() {
    let plugin = plugin_path();
    let dir = std::env::temp_dir().join(format!("mapsctl-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        [
            r#"{"src": "20.33.1.7", "host": "outlook.office365.com"}"#,
            r#"{"src": "20.33.1.7,9.9.9.9", "host": "outlook.office365.com"}"#,
            r#"{"src": "9.9.9.9, 20.33.1.7", "host": "outlook.office365.com"}"#,
            r#"{"src": ",", "host": "outlook.office365.com"}"#,
            "",
            "   ",
            r#"{"src": "23.96.4.4", "host": "outlook.office365.com"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let base = std::fs::read_to_string(root().join("fixtures/demo/policy.json")).unwrap();
    let mut policy: serde_json::Value = serde_json::from_str(&base).unwrap();
    for hops in [0, 1, 100, 255] {
        policy["options"]["client_address"] =
            serde_json::json!({"from": "xff", "trusted_hops": hops});
        let p = dir.join(format!("policy-{hops}.json"));
        std::fs::write(&p, serde_json::to_vec(&policy).unwrap()).unwrap();
        let run = |engine: &str| {
            let o = mapsctl(&[
                "classify",
                "--engine",
                engine,
                "--plugin",
                plugin.to_str().unwrap(),
                "--policy",
                p.to_str().unwrap(),
                "--trace",
                trace.to_str().unwrap(),
            ]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        };
        let native = run("native");
        assert_eq!(run("plugin"), native, "trusted_hops {hops}");
        let lines: Vec<&str> = native.lines().collect();
        assert_eq!(lines.len(), 7, "{native}");
        assert!(lines[0].contains(r#""class":"maps""#), "{native}");
        for i in [1, 2, 3] {
            assert!(lines[i].contains(r#""class":"invalid-source""#), "{native}");
        }
        assert!(lines[4].contains(r#""line":5,"error""#), "{native}");
        assert!(lines[5].contains(r#""line":6,"error""#), "{native}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
