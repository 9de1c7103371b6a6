//! Shared helpers: the real plugin (compiled once per test binary) and test policies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use host_harness::Harness;
use mapsctl::replay::find_plugin;

/// The built plugin. Missing is a failure, never a skip: the Makefile's `test-rust`
/// target builds it first (`make plugin`).
pub fn plugin_path() -> PathBuf {
    match find_plugin() {
        Ok(p) => p,
        Err(e) => panic!(
            "{e}\nThese tests run the real proxy-wasm plugin: build it first with `make plugin` \
             (cargo build -p wasm-plugin --profile plugin --target wasm32-wasip1 --features proxy)."
        ),
    }
}

/// The plugin, compiled once.
pub fn harness() -> Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let path = plugin_path();
        Harness::load(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    })
    .clone()
}

/// A fixture file, by path relative to the workspace root.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A small valid policy: two edges (sea, chi), registration `fabrikam` (Washington;
/// 20.33.0.0/16 Verified with telemetry, 20.34.0.0/16 Pending), `tailspin` (Illinois;
/// 23.96.0.0/16 Verified, no telemetry), Office 365 by prefix and domain. `options` is
/// the JSON of the options object.
pub fn small_policy(options: &str) -> String {
    format!(
        r#"{{"version": 1,
  "edges": [
    {{"id": "sea", "lat": 47.61, "lon": -122.33,
      "links": [{{"id": "sea-1", "router": "sea-r1"}}, {{"id": "sea-2", "router": "sea-r2"}}]}},
    {{"id": "chi", "lat": 41.88, "lon": -87.63,
      "links": [{{"id": "chi-1", "router": "chi-r1"}}, {{"id": "chi-2", "router": "chi-r2"}}]}}
  ],
  "registrations": [
    {{"id": "fabrikam", "location": "Washington", "prefixes": [
      {{"prefix": "20.33.0.0/16", "state": "Verified", "telemetry": true}},
      {{"prefix": "20.34.0.0/16", "state": "Pending"}}]}},
    {{"id": "tailspin", "location": "Illinois", "prefixes": [
      {{"prefix": "23.96.0.0/16", "state": "Verified"}}]}}
  ],
  "destinations": [
    {{"name": "Office365", "prefixes": ["13.107.6.152/31"],
      "domains": ["outlook.office365.com", "*.sharepoint.com"]}}
  ],
  "options": {options}
}}"#
    )
}

/// Options reading the client from the connection.
pub const FROM_SOURCE: &str = r#"{}"#;

/// The native decision line for a flow, as JSON.
pub fn native(
    policy: &[u8],
    src: &str,
    dst: Option<&str>,
    host: Option<&str>,
) -> serde_json::Value {
    let engine = policy_core::load(policy, false).expect("valid policy");
    let d = engine.classifier.classify_text(src, dst, host);
    serde_json::from_str(&policy_core::decision_line_json(src, &d)).unwrap()
}

/// The workspace root (mapsctl runs from there, as a user in a checkout would).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `mapsctl ARGS...` from the workspace root, standard input closed.
pub fn mapsctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// mapsctl's exit code (a signal is a failure).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("mapsctl was killed by a signal")
}
