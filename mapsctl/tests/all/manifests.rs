//! `mapsctl manifests` as a user runs it: what it refuses (exit code, message, nothing
//! written), size limits, determinism. The resources themselves are validated against
//! the published CRDs by e2e/test_manifests.py (`make test-manifests`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{code, root};

const POLICY: &str = "examples/envoy/policy.json";
const IMAGE: &str = "oci://registry.example.net/maps/maps-plugin:0.1.0";

fn mapsctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .arg("manifests")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mapsctl-manifests-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn istio(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--policy",
        POLICY,
        "--platform",
        "istio",
        "--image",
        IMAGE,
        "--namespace",
        "istio-system",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn gateway(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--policy",
        POLICY,
        "--platform",
        "envoy-gateway",
        "--image",
        IMAGE,
        "--namespace",
        "maps",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    mapsctl(&a)
}

/// Exit 2, nothing on stdout, and the message names what is wrong.
fn refused_2(args: &[String], says: &[&str]) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: wrote {}", stdout(&o));
    for s in says {
        assert!(err.contains(s), "{args:?}: {err:?} lacks {s:?}");
    }
}

#[test]
fn generates_both_platforms_deterministically_and_out_is_stdout() {
    let dir = temp_dir("det");
    let a = run(&istio(&["--selector", "istio=ingressgateway"]));
    let b = run(&istio(&["--selector", "istio=ingressgateway"]));
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    let text = stdout(&a);
    assert_eq!(text.matches("\n---\nkind: WasmPlugin").count(), 0);
    assert_eq!(text.matches("kind: WasmPlugin\n").count(), 2, "{text}");
    assert!(
        text.contains("failStrategy: FAIL_RELOAD\n") && text.contains("pluginName: maps_tcp\n")
    );
    let out = dir.join("w.yaml");
    let o = run(&istio(&[
        "--selector",
        "istio=ingressgateway",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), a.stdout);
    let o = run(&gateway(&["--target-ref", "Gateway/maps-edge"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("kind: EnvoyExtensionPolicy\n") && text.contains("failOpen: false\n"));
    assert!(
        text.contains("type: Image\n")
            && text.contains("url: \"registry.example.net/maps/maps-plugin:0.1.0\"\n"),
        "{text}"
    );
    // No reload setting in Envoy Gateway: said on stderr.
    assert!(stderr(&o).contains("failOpen: false"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_policy_exits_1_and_writes_nothing() {
    let dir = temp_dir("invalid");
    let out = dir.join("w.yaml");
    let mut args = istio(&[
        "--selector",
        "istio=ingressgateway",
        "--out",
        out.to_str().unwrap(),
    ]);
    args[1] = "fixtures/invalid/prefixes.json".into();
    let o = run(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a valid policy"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty() && !out.exists());
    // An unreadable policy: exit 2.
    args[1] = "fixtures/no-such-policy.json".into();
    let o = run(&args);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn targets_are_required_and_platform_specific() {
    refused_2(&istio(&[]), &["--selector", "--target-ref", "every proxy"]);
    refused_2(
        &istio(&[
            "--selector",
            "istio=ingressgateway",
            "--target-ref",
            "Gateway/x",
        ]),
        &["one or the other"],
    );
    refused_2(&istio(&["--selector", "istio"]), &["KEY=VALUE"]);
    refused_2(&istio(&["--selector", "app=*"]), &["'*'"]);
    refused_2(
        &istio(&["--selector", "a=1", "--selector", "a=2"]),
        &["twice"],
    );
    refused_2(&istio(&["--target-ref", "maps-edge"]), &["KIND/NAME"]);
    refused_2(&gateway(&[]), &["--target-ref Gateway/NAME"]);
    refused_2(
        &gateway(&["--target-ref", "Gateway/x", "--selector", "a=b"]),
        &["--selector is Istio's"],
    );
    refused_2(
        &gateway(&["--target-ref", "Service/x"]),
        &["Service/x", "Gateway"],
    );
    refused_2(
        &gateway(&["--target-ref", "Gateway/x", "--no-l4"]),
        &["--no-l4"],
    );
}

#[test]
fn bad_image_digest_and_names_are_refused() {
    let t = ["--selector", "istio=ingressgateway"];
    let with = |flag: &str, value: &str| {
        let mut a = istio(&t);
        a.push(flag.into());
        a.push(value.into());
        a
    };
    refused_2(&with("--sha256", "abc"), &["--sha256", "64 hex"]);
    refused_2(&with("--sha256", &"g".repeat(64)), &["64 hex"]);
    let mut a = istio(&t);
    a[5] = "ftp://registry.example.net/x".into();
    refused_2(&a, &["ftp://"]);
    a[5] = "registry.example.net/x y".into();
    refused_2(&a, &["--image"]);
    a[5] = IMAGE.into();
    a[7] = "Istio_System".into();
    refused_2(&a, &["--namespace", "Istio_System"]);
    refused_2(&with("--name", "MAPS"), &["--name"]);
    let mut g = gateway(&["--target-ref", "Gateway/x"]);
    g[5] = "file:///opt/maps.wasm".into();
    refused_2(&g, &["file://", "Envoy Gateway"]);
    // A digest in upper case or with its sha256: prefix is accepted, written lower case.
    let o = run(&with("--sha256", &format!("sha256:{}", "AB".repeat(32))));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("sha256: \"{}\"", "ab".repeat(32)))
            || stdout(&o).contains(&format!("sha256: {}", "ab".repeat(32)))
    );
}

#[test]
fn fail_open_warns_and_maps_to_each_platform() {
    let o = run(&istio(&[
        "--selector",
        "istio=ingressgateway",
        "--fail",
        "open",
    ]));
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("failStrategy: FAIL_OPEN\n"));
    assert!(stderr(&o).contains("default path"), "{}", stderr(&o));
    let o = run(&istio(&[
        "--selector",
        "istio=ingressgateway",
        "--fail",
        "closed",
        "--no-l4",
    ]));
    assert!(stdout(&o).contains("failStrategy: FAIL_CLOSE\n"));
    assert_eq!(stdout(&o).matches("kind: WasmPlugin").count(), 1);
    let o = run(&gateway(&["--target-ref", "Gateway/x", "--fail", "open"]));
    assert!(stdout(&o).contains("failOpen: true\n"));
}

/// A valid policy whose JSON is about `bytes` long: the example's, plus a registration
/// with enough /24 prefixes (public, disjoint from the example's).
fn big_policy(dir: &Path, bytes: usize) -> PathBuf {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join(POLICY)).unwrap()).unwrap();
    let per = r#"{"prefix":"30.255.255.0/24","state":"Verified"},"#.len();
    let n = bytes / per + 1;
    let prefixes: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"prefix": format!("30.{}.{}.0/24", i / 256, i % 256), "state": "Verified"})
        })
        .collect();
    doc["registrations"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "big", "customer": "Big", "location": "Washington", "primary_edge": "sea",
            "prefixes": prefixes
        }));
    let path = dir.join("big.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

#[test]
fn a_policy_too_big_for_a_kubernetes_object_is_refused_with_what_to_do() {
    let dir = temp_dir("big");
    let out = dir.join("w.yaml");
    let policy = big_policy(&dir, 1_200_000);
    let args = |p: &Path| {
        let mut a = istio(&[
            "--selector",
            "istio=ingressgateway",
            "--out",
            out.to_str().unwrap(),
        ]);
        a[1] = p.to_str().unwrap().into();
        a
    };
    let o = run(&args(&policy));
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(!out.exists() && o.stdout.is_empty());
    for s in [
        "too large for a Kubernetes object",
        "1.5 MiB",
        "mapsctl pack",
        "mapsctl envoy-config",
    ] {
        assert!(err.contains(s), "{err:?} lacks {s:?}");
    }
    // Packed, the same policy fits.
    let packed = dir.join("packed.json");
    let p = Command::new(env!("CARGO_BIN_EXE_mapsctl"))
        .args([
            "pack",
            "--policy",
            policy.to_str().unwrap(),
            "--out",
            packed.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let o = run(&args(&packed));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.exists());
    // Between 256 KiB and the limit: written, with a note on client-side kubectl apply.
    let mid = big_policy(&dir, 400_000);
    let o = run(&args(&mid));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("--server-side"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
