//! `mapsctl` as a user runs it: exit codes, golden outputs, and no panic (exit status
//! 101) on any input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mapsctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("mapsctl was killed by a signal")
}

fn invalid_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().contains(".golden")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn validate_json_output_is_the_golden_report_with_its_exit_code() {
    for f in invalid_fixtures() {
        let rel = f
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let o = mapsctl(&["validate", &rel, "--format", "json"]);
        let golden = std::fs::read_to_string(f.with_extension("golden.json")).unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), golden, "{rel}");
        let valid = golden.contains("\"valid\": true");
        assert_eq!(code(&o), if valid { 0 } else { 1 }, "{rel}");
    }
}

#[test]
fn validate_text_names_code_path_line_and_fix() {
    let o = mapsctl(&["validate", "fixtures/invalid/prefixes.json"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("error[host-bits-set]: prefix 20.1.2.3/16 has host bits set"),
        "{out}"
    );
    assert!(
        out.contains(
            "--> fixtures/invalid/prefixes.json:55:11  at /registrations/0/prefixes/2/prefix"
        ),
        "{out}"
    );
    assert!(out.contains("= help: write it as 20.1.0.0/16"), "{out}");
    assert!(
        out.contains("INVALID: this policy will not be loaded"),
        "{out}"
    );
}

#[test]
fn strict_turns_readiness_warnings_into_errors() {
    let f = "fixtures/invalid/not-maps-ready.json";
    assert_eq!(code(&mapsctl(&["validate", f])), 0);
    let o = mapsctl(&["validate", f, "--strict", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let golden =
        std::fs::read_to_string(root().join("fixtures/invalid/not-maps-ready.strict.golden.json"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), golden);
}

#[test]
fn unreadable_files_and_bad_arguments_exit_2() {
    assert_eq!(
        code(&mapsctl(&["validate", "fixtures/no-such-file.json"])),
        2
    );
    assert_eq!(code(&mapsctl(&["validate"])), 2);
    assert_eq!(code(&mapsctl(&["frobnicate"])), 2);
    assert_eq!(
        code(&mapsctl(&[
            "classify",
            "--policy",
            "fixtures/demo/policy.json",
            "--trace",
            "nope.jsonl"
        ])),
        2
    );
    assert_eq!(code(&mapsctl(&["--help"])), 0);
}

#[test]
fn classify_native_prints_the_golden_decisions_and_keeps_going_past_bad_lines() {
    for scenario in ["demo", "no-edge"] {
        let o = mapsctl(&[
            "classify",
            "--policy",
            &format!("fixtures/{scenario}/policy.json"),
            "--trace",
            &format!("fixtures/{scenario}/trace.jsonl"),
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let golden = std::fs::read_to_string(
            root().join(format!("fixtures/{scenario}/decisions.golden.jsonl")),
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), golden, "{scenario}");
    }
    let o = mapsctl(&[
        "classify",
        "--policy",
        "fixtures/demo/policy.json",
        "--trace",
        "fixtures/demo/trace.jsonl",
        "--fail-on-error",
    ]);
    assert_eq!(code(&o), 1, "the demo trace has malformed lines on purpose");
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 malformed trace line(s)"));
}

#[test]
fn classify_refuses_an_invalid_policy_with_its_report() {
    let o = mapsctl(&[
        "classify",
        "--policy",
        "fixtures/invalid/references.json",
        "--trace",
        "fixtures/demo/trace.jsonl",
    ]);
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is not a valid policy; nothing was classified"),
        "{err}"
    );
    assert!(err.contains("error[unknown-location]"), "{err}");
}

/// Regression: `explain` on a packed policy said "no registered prefix contains it" for
/// a source that classifies `maps` (the matched prefix was looked up among the JSON
/// prefixes only).
#[test]
fn explain_on_a_packed_policy_reads_like_on_the_json_one() {
    let dir = std::env::temp_dir().join(format!("mapsctl-packed-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let packed = dir.join("packed.json");
    let o = mapsctl(&[
        "pack",
        "--policy",
        "fixtures/demo/policy.json",
        "--out",
        packed.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    for src in ["20.33.1.10", "52.160.42.1", "20.33.16.5"] {
        let json = |policy: &str| {
            let o = mapsctl(&[
                "explain",
                "--policy",
                policy,
                src,
                "--host",
                "teams.microsoft.com",
                "--format",
                "json",
            ]);
            assert_eq!(code(&o), 0);
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
        };
        let from_json = json("fixtures/demo/policy.json");
        let from_packed = json(packed.to_str().unwrap());
        assert!(from_json["matched"].is_object(), "{src}: {from_json}");
        assert_eq!(from_packed, from_json, "{src}");
        let text = mapsctl(&["explain", "--policy", packed.to_str().unwrap(), src]);
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(
            !text.contains("no registered prefix contains it"),
            "{src}: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explain_tells_the_whole_story() {
    let o = mapsctl(&[
        "explain",
        "--policy",
        "fixtures/demo/policy.json",
        "52.160.42.1",
        "--host",
        "teams.microsoft.com",
    ]);
    assert_eq!(code(&o), 0);
    let out = String::from_utf8(o.stdout).unwrap();
    for want in [
        "decision: maps",
        "matched 52.160.42.0/24 of registration litware-hosting",
        "also inside 52.160.40.0/22 of litware-il",
        "host matches",
        "chi          Chicago",
        "edge chi via link",
        "backup tor",
    ] {
        assert!(
            out.contains(want) || (want == "host matches" && out.contains("the host is a domain")),
            "missing {want:?} in\n{out}"
        );
    }
    let o = mapsctl(&[
        "explain",
        "--policy",
        "fixtures/demo/policy.json",
        "20.33.16.9",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["class"], "unverified");
    assert_eq!(v["matched"]["state"], "Pending");
}

#[test]
fn no_input_makes_mapsctl_panic() {
    let dir = std::env::temp_dir().join(format!("mapsctl-nopanic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demo = std::fs::read(root().join("fixtures/demo/policy.json")).unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        b"\xff\xfe\x00garbage".to_vec(),
        b"[".repeat(100_000),
        b"{\"version\": 1e400}".to_vec(),
        b"{\"version\": 18446744073709551616}".to_vec(),
        b"null".to_vec(),
    ];
    for cut in [1, 10, 100, 1000, 5000, demo.len() - 3] {
        inputs.push(demo[..cut].to_vec());
    }
    for (i, bytes) in inputs.iter().enumerate() {
        let p = dir.join(format!("in{i}.json"));
        std::fs::write(&p, bytes).unwrap();
        let p = p.to_string_lossy().to_string();
        for args in [
            vec!["validate", p.as_str()],
            vec!["validate", p.as_str(), "--strict", "--format", "json"],
            vec![
                "classify",
                "--policy",
                "fixtures/demo/policy.json",
                "--trace",
                p.as_str(),
            ],
            vec![
                "classify",
                "--policy",
                p.as_str(),
                "--trace",
                "fixtures/demo/trace.jsonl",
            ],
            vec!["explain", "--policy", p.as_str(), "20.33.1.1"],
        ] {
            let o = mapsctl(&args);
            assert_ne!(
                code(&o),
                101,
                "panic on {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
