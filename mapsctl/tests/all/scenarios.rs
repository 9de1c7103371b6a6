//! The shared scenario table: every directory of fixtures/ with a `trace.jsonl` gives
//! its golden decisions natively and through the proxy-wasm plugin in the harness
//! (`mapsctl classify --engine native|plugin`), byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_scenario_gives_its_golden_decisions_natively_and_through_the_plugin() {
    let _ = crate::common::plugin_path(); // "run `make plugin`" when it is not built
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("trace.jsonl").is_file())
        .collect();
    dirs.sort();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"categories".to_string()), "{names:?}");
    for dir in &dirs {
        let golden = std::fs::read_to_string(dir.join("decisions.golden.jsonl")).unwrap();
        for engine in ["native", "plugin"] {
            let o = Command::new(env!("CARGO_BIN_EXE_mapsctl"))
                .args(["classify", "--engine", engine, "--policy"])
                .arg(dir.join("policy.json"))
                .arg("--trace")
                .arg(dir.join("trace.jsonl"))
                .current_dir(root())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                golden,
                "{} with --engine {engine}: {}",
                dir.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
