//! `mapsctl` as a user runs it: exit codes, golden outputs, and no panic (exit status
//! 101) on any input.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{code, mapsctl, root};

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

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mapsctl-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Issue 13, finding 2: shape errors are capped per code, and the text report of many
/// diagnostics is linear (it was quadratic: each diagnostic walked the text to its
/// line).
#[test]
fn many_shape_errors_are_capped_in_text_and_json() {
    let dir = temp_dir("shape-cap");
    let prefixes: Vec<String> = (0..40_000)
        .map(|i| {
            format!(
                "{{\"prefix\": \"20.{}.{}.0/24\", \"stat\": \"Verified\"}}",
                i / 256 % 256,
                i % 256
            )
        })
        .collect();
    let text = format!(
        "{{\"version\": 1, \"registrations\": [{{\"id\": \"r\", \"location\": \"Texas\", \"prefixes\": [\n{}]}}]}}",
        prefixes.join(",\n")
    );
    let p = dir.join("misspelt.json");
    std::fs::write(&p, text).unwrap();
    let p = p.to_string_lossy().to_string();
    let o = mapsctl(&["validate", &p]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("error[unknown-field]").count(), 101, "{out}");
    assert!(out.contains("... and 39900 more `unknown-field` diagnostics not shown"));
    // The last shown one still has its source line and caret.
    assert!(out.contains(":101:"), "{out}");
    let o = mapsctl(&["validate", &p, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["diagnostics"].as_array().unwrap().len(), 101);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13, finding 5: a closed standard output ends mapsctl quietly (no panic, exit
/// status 101), with the status the command would have had.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = temp_dir("epipe");
    let trace = dir.join("trace.jsonl");
    std::fs::write(&trace, "{\"src\": \"20.33.1.1\"}\n".repeat(20_000)).unwrap();
    let trace = trace.to_string_lossy().to_string();
    let demo = "fixtures/demo/policy.json";
    for (args, want) in [
        (vec!["validate", demo], 0),
        (vec!["validate", demo, "--format", "json"], 0),
        (vec!["validate", "fixtures/invalid/references.json"], 1),
        (vec!["explain", "--policy", demo, "20.33.1.10"], 0),
        (
            vec![
                "explain",
                "--policy",
                demo,
                "20.33.1.10",
                "--format",
                "json",
            ],
            0,
        ),
        (vec!["classify", "--policy", demo, "--trace", &trace], 0),
        (vec!["pack", "--policy", demo], 0),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mapsctl"))
            .args(&args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before mapsctl writes: every write meets EPIPE.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), want, "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
    // Like `| head -1`: one line read, then the pipe closed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .args(["validate", demo])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(!first.is_empty());
    let o = child.wait_with_output().unwrap();
    assert_ne!(code(&o), 101, "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13, finding 6: control characters of echoed values are escaped in text output.
#[test]
fn text_output_escapes_control_characters() {
    let dir = temp_dir("escape");
    let p = dir.join("esc.json");
    let policy = serde_json::json!({"version": 1,
        "edges": [{"id": "evil\u{1b}[2J\u{202e}", "lat": 1, "lon": 1, "links": []}],
        "registrations": [{"id": "r\nforged: ok", "location": "Nowhere\u{7}", "prefixes": []}]});
    std::fs::write(&p, serde_json::to_vec(&policy).unwrap()).unwrap();
    let p = p.to_string_lossy().to_string();
    let clean = |bytes: &[u8], what: &str| {
        let s = String::from_utf8_lossy(bytes);
        for bad in ['\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(!s.contains(bad), "{what}: raw {bad:?} in {s}");
        }
        assert!(!s.contains("\nforged: ok"), "{what}: {s}");
        s.to_string()
    };
    let o = mapsctl(&["validate", &p]);
    assert_eq!(code(&o), 1);
    let out = clean(&o.stdout, "validate");
    assert!(out.contains("\\u{1b}"), "{out}");
    assert!(out.contains("error[bad-id]"), "{out}");
    let o = mapsctl(&[
        "classify",
        "--policy",
        &p,
        "--trace",
        "fixtures/demo/trace.jsonl",
    ]);
    assert_eq!(code(&o), 1);
    clean(&o.stderr, "classify");
    let o = mapsctl(&[
        "explain",
        "--policy",
        "fixtures/demo/policy.json",
        "20.33.1.10\u{1b}[2J",
        "--host",
        "outlook.office365.com\u{202e}\u{7}",
    ]);
    assert_eq!(code(&o), 0);
    let out = clean(&o.stdout, "explain");
    assert!(out.contains("\\u{1b}"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13, finding 7: one output line per trace line, blank ones included (SPEC §5);
/// an over-long line is an error line, and the lines after it are decided.
#[test]
fn classify_gives_every_trace_line_its_own_output_line() {
    let dir = temp_dir("blank");
    let trace = dir.join("trace.jsonl");
    let long = format!("{{\"src\": \"{}\"}}", "1".repeat(1 << 20));
    std::fs::write(
        &trace,
        format!("{{\"src\": \"20.33.1.1\"}}\n\n   \r\n\t\n{long}\n{{\"src\": \"20.33.1.2\"}}"),
    )
    .unwrap();
    let o = mapsctl(&[
        "classify",
        "--policy",
        "fixtures/demo/policy.json",
        "--trace",
        &trace.to_string_lossy(),
    ]);
    assert_eq!(code(&o), 0);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(lines[0]["src"], "20.33.1.1");
    for (i, l) in lines.iter().enumerate().take(4).skip(1) {
        assert_eq!(l["line"], i + 1);
        assert!(l["error"].as_str().unwrap().contains("blank"), "{l}");
    }
    assert_eq!(lines[4]["line"], 5);
    assert!(lines[4]["error"]
        .as_str()
        .unwrap()
        .contains("longer than 65536 bytes"));
    assert_eq!(lines[5]["src"], "20.33.1.2");
    assert!(String::from_utf8_lossy(&o.stderr).contains("4 malformed trace line(s)"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mapsctl bench --policy P --trace T`: the user's own policy and traffic, natively
/// and through the plugin, every plugin answer equal to the native one (no timing is
/// asserted).
#[test]
fn bench_measures_the_users_policy_and_trace() {
    let o = mapsctl(&[
        "bench",
        "--policy",
        "fixtures/categories/policy.json",
        "--trace",
        "fixtures/categories/trace.jsonl",
        "--lookups",
        "2000",
        "--plugin-requests",
        "100",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["flows"], 20);
    assert_eq!(v["native"]["decisions"], 2000);
    assert_eq!(v["plugin"]["decisions"], 100);
    assert_eq!(v["plugin"]["identical_to_native"], 100);
    assert!(v["plugin_over_native"].as_f64().unwrap() > 0.0);
    // --policy needs --trace: a usage error (exit 2).
    let o = mapsctl(&["bench", "--policy", "fixtures/demo/policy.json"]);
    assert_eq!(code(&o), 2);
}

/// `mapsctl gen --trace-out`: a trace for the generated policy, half its flows from
/// inside the policy's prefixes (what `make bench-envoy` sends), which `bench
/// --policy --trace` replays.
#[test]
fn gen_writes_a_trace_for_its_policy() {
    let dir = std::env::temp_dir().join(format!("mapsctl-gen-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (policy, trace) = (dir.join("policy.json"), dir.join("trace.jsonl"));
    let o = mapsctl(&[
        "gen",
        "--prefixes",
        "5000",
        "--out",
        policy.to_str().unwrap(),
        "--trace-out",
        trace.to_str().unwrap(),
        "--flows",
        "400",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let lines = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(lines.lines().count(), 400);
    let o = mapsctl(&[
        "bench",
        "--policy",
        policy.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--lookups",
        "400",
        "--plugin-requests",
        "50",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let maps = v["native"]["maps"].as_u64().unwrap();
    assert!((100..=300).contains(&maps), "{maps} of 400 flows are maps");
    assert_eq!(v["plugin"]["identical_to_native"], 50);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Found by `fuzz/` (target envoy_config, input fuzz/seeds/envoy_config/062e4edf…):
/// `generate` wrote a bootstrap with an empty node id and cluster, which
/// `envoy --mode validate` refuses ("node 'id' and 'cluster' are required"). Refused now.
#[test]
fn envoy_config_refuses_an_empty_node() {
    use mapsctl::envoy_config::{generate, ConfigError, Settings};
    let text = std::fs::read_to_string(root().join("fixtures/demo/policy.json")).unwrap();
    let engine = policy_core::load(text.as_bytes(), false).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut s = Settings::default();
    for (i, l) in doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["links"].as_array().unwrap())
        .enumerate()
    {
        s.links.insert(
            l["id"].as_str().unwrap().to_string(),
            format!("127.0.0.1:{}", 18000 + i),
        );
    }
    assert!(generate(&engine.classifier, &text, &s).is_ok());
    for (id, cluster, what) in [
        ("", "maps", "node id"),
        ("maps-edge", "", "node cluster"),
        (" ", "maps", "node id"),
        ("a\nb", "maps", "node id"),
    ] {
        let mut bad = s.clone();
        bad.node_id = id.to_string();
        bad.node_cluster = cluster.to_string();
        match generate(&engine.classifier, &text, &bad) {
            Err(ConfigError::BadNode { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{id:?}/{cluster:?}: {:?}", other.map(|_| ())),
        }
    }
}
