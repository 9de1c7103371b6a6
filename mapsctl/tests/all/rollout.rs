//! `mapsctl rollout` before it reaches an Envoy: what it refuses, with which exit code,
//! and that nothing is written when it refuses. The rollout itself runs against three
//! real Envoys in `e2e/test_fleet.py` (`make e2e-fleet`).

use std::path::PathBuf;

use crate::common::{code, mapsctl};

/// A policy whose links have addresses (the example of examples/envoy).
const POLICY: &str = "examples/envoy/policy.json";

/// A directory with that policy's Envoy configuration (`mapsctl envoy-config --out`),
/// removed on drop.
struct Generated {
    dir: PathBuf,
}

impl Generated {
    fn new(tag: &str) -> Generated {
        let dir =
            std::env::temp_dir().join(format!("mapsctl-rollout-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.to_string_lossy().to_string();
        let o = mapsctl(&[
            "envoy-config",
            "--policy",
            POLICY,
            "--out",
            &out,
            "--internet",
            "127.0.0.1:9",
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        Generated { dir }
    }

    fn xds(&self) -> String {
        self.dir.join("xds").to_string_lossy().to_string()
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.dir.join("xds"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.to_string_lossy().to_string(), std::fs::read(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An admin URL nothing listens on (a port bound, then released).
fn closed_admin() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn rollout_of_an_invalid_policy_exits_1_and_writes_nothing() {
    let g = Generated::new("invalid");
    let before = g.files();
    let edge = format!("{}={}", closed_admin(), g.xds());
    let o = mapsctl(&[
        "rollout",
        "--policy",
        "fixtures/invalid/prefixes.json",
        "--edge",
        &edge,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("host-bits-set"),
        "the validation errors are shown: {err}"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(g.files(), before);
}

#[test]
fn rollout_to_an_edge_whose_admin_does_not_answer_exits_2_and_writes_nothing() {
    let g = Generated::new("unreachable");
    let before = g.files();
    let admin = closed_admin();
    let edge = format!("{admin}={}", g.xds());
    let o = mapsctl(&["rollout", "--policy", POLICY, "--edge", &edge]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains(&admin) && err.contains("no answer"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(g.files(), before);
}

#[test]
fn rollout_to_a_directory_without_ecds_files_names_it() {
    let g = Generated::new("noecds");
    let edge = format!("{}={}", closed_admin(), g.dir.display());
    let o = mapsctl(&["rollout", "--policy", POLICY, "--edge", &edge]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("maps-http.json") && err.contains("xds/"),
        "says which files and which directory: {err}"
    );
}

#[test]
fn rollout_arguments_are_checked_with_a_message() {
    let g = Generated::new("args");
    let xds = g.xds();
    let edge = format!("{}={xds}", closed_admin());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--edge".into(), format!("https://127.0.0.1:9901={xds}")],
            "plain http://",
        ),
        (
            vec!["--edge".into(), "http://127.0.0.1:9901".into()],
            "ADMIN_URL=ECDS_DIR",
        ),
        (
            vec!["--edge".into(), format!("http://127.0.0.1={xds}")],
            "a port is needed",
        ),
        (
            vec!["--edge".into(), edge.clone(), "--edge".into(), edge.clone()],
            "given twice",
        ),
        (
            vec![
                "--edge".into(),
                edge.clone(),
                "--watch-class".into(),
                "excluded".into(),
            ],
            "excluded-category",
        ),
        (
            vec![
                "--edge".into(),
                edge.clone(),
                "--max-5xx-increase".into(),
                "5".into(),
            ],
            "between 0 and 1",
        ),
        (
            vec![
                "--edge".into(),
                edge.clone(),
                "--settle-s".into(),
                "0".into(),
            ],
            "more than 0",
        ),
        (
            vec!["--edge".into(), edge.clone(), "--batch".into(), "0".into()],
            "0",
        ),
        (vec![], "--edge"),
    ];
    let before = g.files();
    for (extra, needle) in cases {
        let mut args = vec!["rollout", "--policy", POLICY];
        args.extend(extra.iter().map(String::as_str));
        let o = mapsctl(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    assert_eq!(g.files(), before);
}
