//! `mapsctl manifests`: the Kubernetes resources that deliver the plugin and a policy
//! through a control plane: Istio `WasmPlugin` (HTTP and L4) or an Envoy Gateway
//! `EnvoyExtensionPolicy` (HTTP).
//!
//! The plugin reads its configuration as the policy JSON text (`proxy_on_configure`).
//! Istio's `pluginConfig` is a `google.protobuf.Struct` and Envoy Gateway's `config`
//! is free JSON: both control planes serialise what they hold back to JSON and hand it
//! to Envoy as a `StringValue`, which Envoy passes to the plugin as it is. So the policy
//! is embedded as a JSON object (the document itself, keys in the file's order), and
//! the plugin receives the same document, re-serialised: numbers as the control plane
//! writes them, keys maybe reordered, no whitespace. Two consequences:
//!
//! - the policy version the plugin reports (`maps.policy.version`, a hash of the text
//!   it receives) differs from the one `mapsctl envoy-config` prints for the file;
//! - a policy too large for one Kubernetes object cannot travel this way: refused
//!   (exit 1) above [`MAX_OBJECT_BYTES`], with what to do instead.
//!
//! Output: YAML (block style for the resource, the policy as a JSON flow mapping),
//! deterministic: the same arguments and policy give the same bytes. Strings are
//! written double-quoted with JSON escapes whenever they are not plain words, and
//! characters YAML would read as line breaks or refuse (controls, U+0085, U+2028,
//! U+2029, U+FEFF) are always escaped, so the text reads the same in YAML and JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::envoy_config::{self as ec, HTTP_ROOT_ID};

use super::{load_policy, print_out};

/// Above this size (the resource as compact JSON, which is how the API server receives
/// it) a resource is refused: etcd refuses requests over 1.5 MiB by default
/// (`--max-request-bytes`), and the API server stores more than it was sent (metadata,
/// `managedFields`, status). Leave room.
pub const MAX_OBJECT_BYTES: usize = 1 << 20;

/// Client-side `kubectl apply` keeps a copy of the whole object in the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation, and all annotations
/// of an object together are limited to 256 KiB: larger resources need
/// `kubectl apply --server-side` (or `kubectl create`/`replace`).
pub const CLIENT_SIDE_APPLY_BYTES: usize = 256 * 1024;

/// Istio's WasmPlugin API version.
const ISTIO_API: &str = "extensions.istio.io/v1alpha1";
/// Envoy Gateway's EnvoyExtensionPolicy API version.
const EG_API: &str = "gateway.envoyproxy.io/v1alpha1";
/// What an EnvoyExtensionPolicy may target (its CRD's validation rules).
const EG_TARGET_KINDS: &[&str] = &[
    "Gateway",
    "ListenerSet",
    "HTTPRoute",
    "GRPCRoute",
    "UDPRoute",
    "TCPRoute",
    "TLSRoute",
];
/// The Gateway API group (the default group of a `--target-ref`).
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The control plane.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Istio: `WasmPlugin` resources (HTTP, and L4 unless --no-l4).
    Istio,
    /// Envoy Gateway: one `EnvoyExtensionPolicy` (HTTP).
    EnvoyGateway,
}

/// What Envoy does with traffic when the plugin's VM fails (traps).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fail {
    /// A new VM replaces a crashed one (after a backoff of 1 s); requests fail closed
    /// (503) meanwhile. Istio `FAIL_RELOAD`; Envoy Gateway has no such setting and gets
    /// `failOpen: false` (closed).
    Reload,
    /// Requests are refused (503) until the plugin's configuration changes. Istio
    /// `FAIL_CLOSE`, Envoy Gateway `failOpen: false`.
    Closed,
    /// The plugin is skipped: MAPS customers take the default path, and a client's own
    /// `x-maps-*` headers reach routing. Istio `FAIL_OPEN`, Envoy Gateway `failOpen: true`.
    Open,
}

/// Arguments of `mapsctl manifests`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy document (JSON).
    #[arg(long)]
    policy: PathBuf,
    /// The control plane.
    #[arg(long, value_enum)]
    platform: Platform,
    /// The plugin's OCI image (`oci://REGISTRY/REPO:TAG`, or without `oci://`) or an
    /// `https://` URL of the .wasm (Istio also takes `file://`).
    #[arg(long, value_name = "URL")]
    image: String,
    /// SHA-256 of the .wasm (or the image digest), 64 hex digits: the proxy refuses
    /// other code.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// The namespace of the resources (Istio: the workloads' namespace, or the root
    /// namespace for every workload the selector picks; Envoy Gateway: the Gateway's).
    #[arg(long)]
    namespace: String,
    /// The resource name (Istio's L4 resource gets `-l4` appended).
    #[arg(long, default_value = "maps-edge")]
    name: String,
    /// Istio: a label the gateway's pods carry (repeatable; `selector.matchLabels`).
    #[arg(long = "selector", value_name = "KEY=VALUE")]
    selectors: Vec<String>,
    /// The resource the plugin attaches to (repeatable; `targetRefs`): `KIND/NAME` or
    /// `GROUP/KIND/NAME`; the group defaults to gateway.networking.k8s.io (core for
    /// `Service`).
    #[arg(long = "target-ref", value_name = "[GROUP/]KIND/NAME")]
    target_refs: Vec<String>,
    /// What the proxy does with traffic when the plugin's VM fails.
    #[arg(long, value_enum, default_value_t = Fail::Reload)]
    fail: Fail,
    /// Istio: no L4 (NETWORK) WasmPlugin.
    #[arg(long)]
    no_l4: bool,
    /// Where to write the YAML (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Where the plugin's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    /// An OCI image reference, without `oci://`.
    Oci(String),
    /// An `http(s)://` URL.
    Http(String),
    /// A `file://` URL (Istio only).
    File(String),
}

fn code(image: &str) -> Result<Code, String> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "mapsctl: --image {}: expected an OCI image (oci://REGISTRY/REPO:TAG) or an https:// URL, without spaces",
            super::terminal_safe(image, false)
        ));
    }
    if let Some(rest) = image.strip_prefix("oci://") {
        if rest.is_empty() {
            return Err("mapsctl: --image oci://: the image reference is missing".into());
        }
        return Ok(Code::Oci(rest.to_string()));
    }
    if image.starts_with("https://") || image.starts_with("http://") {
        return Ok(Code::Http(image.to_string()));
    }
    if image.starts_with("file://") {
        return Ok(Code::File(image.to_string()));
    }
    if let Some((scheme, _)) = image.split_once("://") {
        return Err(format!(
            "mapsctl: --image: unknown scheme {}:// (use oci://, https://, http:// or, for Istio, file://)",
            super::terminal_safe(scheme, false)
        ));
    }
    Ok(Code::Oci(image.to_string()))
}

fn sha256(hex: Option<&str>) -> Result<Option<String>, String> {
    let Some(h) = hex else { return Ok(None) };
    let h = h.strip_prefix("sha256:").unwrap_or(h);
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "mapsctl: --sha256 {}: expected 64 hex digits (sha256sum maps_plugin.wasm)",
            super::terminal_safe(h, false)
        ));
    }
    Ok(Some(h.to_ascii_lowercase()))
}

/// An RFC 1123 label (namespaces; at most 63 characters).
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain (object names; at most 253 characters).
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(dns_label)
}

fn check_names(args: &Args) -> Result<(), String> {
    if !dns_label(&args.namespace) {
        return Err(format!(
            "mapsctl: --namespace {}: a namespace is lower-case letters, digits and '-' (at most 63, starting and ending alphanumeric)",
            super::terminal_safe(&args.namespace, false)
        ));
    }
    // Istio's L4 resource is NAME-l4.
    if !dns_subdomain(&args.name) || args.name.len() > 250 {
        return Err(format!(
            "mapsctl: --name {}: a resource name is lower-case letters, digits, '-' and '.' (at most 250 here)",
            super::terminal_safe(&args.name, false)
        ));
    }
    Ok(())
}

fn selector(items: &[String]) -> Result<Map<String, Value>, String> {
    let mut labels = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            format!(
                "mapsctl: --selector {}: expected KEY=VALUE (e.g. istio=ingressgateway)",
                super::terminal_safe(item, false)
            )
        })?;
        if k.is_empty() || k.contains('*') || v.contains('*') || v.len() > 63 {
            return Err(format!(
                "mapsctl: --selector {}: a label key is not empty, a value at most 63 characters, and neither holds '*'",
                super::terminal_safe(item, false)
            ));
        }
        if labels.insert(k.to_string(), Value::from(v)).is_some() {
            return Err(format!(
                "mapsctl: --selector {}: the key is given twice",
                super::terminal_safe(k, false)
            ));
        }
    }
    Ok(labels)
}

fn kind_ok(kind: &str) -> bool {
    let b = kind.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn target_refs(items: &[String]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for item in items {
        let parts: Vec<&str> = item.split('/').collect();
        let (group, kind, name) = match parts.as_slice() {
            [kind, name] => {
                let group = if *kind == "Service" {
                    ""
                } else {
                    GATEWAY_GROUP
                };
                (group, *kind, *name)
            }
            [group, kind, name] => (*group, *kind, *name),
            _ => {
                return Err(format!(
                    "mapsctl: --target-ref {}: expected KIND/NAME or GROUP/KIND/NAME (e.g. Gateway/maps-edge)",
                    super::terminal_safe(item, false)
                ))
            }
        };
        if !kind_ok(kind) || !dns_subdomain(name) || !(group.is_empty() || dns_subdomain(group)) {
            return Err(format!(
                "mapsctl: --target-ref {}: the kind is a word (Gateway), the name and group DNS names",
                super::terminal_safe(item, false)
            ));
        }
        out.push(json!({"group": group, "kind": kind, "name": name}));
    }
    Ok(out)
}

/// The resources for `args`, as JSON values in output order, with the `stderr` notes.
fn resources(args: &Args, policy: &Value) -> Result<(Vec<Value>, Vec<&'static str>), String> {
    check_names(args)?;
    let code = code(&args.image)?;
    let sha = sha256(args.sha256.as_deref())?;
    let refs = target_refs(&args.target_refs)?;
    let mut notes = Vec::new();
    if args.fail == Fail::Open {
        notes.push(
            "mapsctl: warning: --fail open: when the plugin fails, requests skip it: MAPS customers take the default path and a client's own x-maps-* headers reach routing",
        );
    }
    match args.platform {
        Platform::Istio => {
            let labels = selector(&args.selectors)?;
            let target = match (labels.is_empty(), refs.is_empty()) {
                (false, false) => {
                    return Err("mapsctl: --selector and --target-ref: Istio takes one or the other (a WasmPlugin has either a selector or targetRefs)".into())
                }
                (true, true) => {
                    return Err("mapsctl: say which proxies get the plugin: --selector KEY=VALUE (the gateway pods' labels, e.g. istio=ingressgateway) or --target-ref Gateway/NAME; without either, Istio applies it to every proxy in the namespace (the whole mesh in the root namespace)".into())
                }
                (false, true) => ("selector", json!({"matchLabels": labels})),
                (true, false) => ("targetRefs", Value::Array(refs)),
            };
            let url = match &code {
                Code::Oci(r) => format!("oci://{r}"),
                Code::Http(u) | Code::File(u) => u.clone(),
            };
            let fail = match args.fail {
                Fail::Reload => "FAIL_RELOAD",
                Fail::Closed => "FAIL_CLOSE",
                Fail::Open => "FAIL_OPEN",
            };
            let plugin = |name: String, root_id: &str, kind: &str, http: bool| {
                let mut spec = Map::new();
                spec.insert(target.0.into(), target.1.clone());
                spec.insert("url".into(), Value::from(url.clone()));
                if let Some(s) = &sha {
                    spec.insert("sha256".into(), Value::from(s.clone()));
                }
                spec.insert("imagePullPolicy".into(), Value::from("IfNotPresent"));
                if http {
                    // Early: the decision headers exist before routing, and a client's own
                    // x-maps-* headers are gone before any later filter sees them.
                    spec.insert("phase".into(), Value::from("AUTHN"));
                    spec.insert("priority".into(), Value::from(1000));
                }
                spec.insert("pluginName".into(), Value::from(root_id));
                spec.insert("type".into(), Value::from(kind));
                spec.insert("failStrategy".into(), Value::from(fail));
                spec.insert("pluginConfig".into(), policy.clone());
                json!({
                    "apiVersion": ISTIO_API,
                    "kind": "WasmPlugin",
                    "metadata": {"name": name, "namespace": args.namespace},
                    "spec": spec,
                })
            };
            let mut out = vec![plugin(args.name.clone(), HTTP_ROOT_ID, "HTTP", true)];
            if !args.no_l4 {
                out.push(plugin(
                    format!("{}-l4", args.name),
                    policy_core::NETWORK_ROOT_ID,
                    "NETWORK",
                    false,
                ));
            }
            Ok((out, notes))
        }
        Platform::EnvoyGateway => {
            if !args.selectors.is_empty() {
                return Err("mapsctl: --selector is Istio's; Envoy Gateway attaches a policy with --target-ref Gateway/NAME".into());
            }
            if args.no_l4 {
                return Err(
                    "mapsctl: --no-l4 is Istio's; an EnvoyExtensionPolicy is HTTP only anyway"
                        .into(),
                );
            }
            if refs.is_empty() {
                return Err("mapsctl: say which Gateway gets the plugin: --target-ref Gateway/NAME (in --namespace)".into());
            }
            // The EnvoyExtensionPolicy CRD's own rules (x-kubernetes-validations).
            for (r, item) in refs.iter().zip(&args.target_refs) {
                let group = r.get("group").and_then(Value::as_str).unwrap_or("");
                let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
                if group != GATEWAY_GROUP || !EG_TARGET_KINDS.contains(&kind) {
                    return Err(format!(
                        "mapsctl: --target-ref {}: an EnvoyExtensionPolicy attaches to a {} of group {GATEWAY_GROUP}",
                        super::terminal_safe(item, false),
                        EG_TARGET_KINDS.join("/")
                    ));
                }
            }
            let mut source = Map::new();
            let (kind, field, url) = match &code {
                Code::Oci(r) => ("Image", "image", r.clone()),
                Code::Http(u) => ("HTTP", "http", u.clone()),
                Code::File(_) => {
                    return Err("mapsctl: --image file://: Envoy Gateway loads Wasm code from an OCI image or an http(s) URL only".into())
                }
            };
            source.insert("url".into(), Value::from(url));
            if let Some(s) = &sha {
                source.insert("sha256".into(), Value::from(s.clone()));
            }
            if args.fail == Fail::Reload {
                notes.push(
                    "mapsctl: note: Envoy Gateway has no reload setting (failOpen only): generated failOpen: false, so a VM that traps refuses requests (503) until the policy changes",
                );
            }
            let wasm = json!({
                "name": ec::HTTP_FILTER,
                "rootID": HTTP_ROOT_ID,
                "code": {"type": kind, field: source},
                "failOpen": args.fail == Fail::Open,
                "config": policy.clone(),
            });
            Ok((
                vec![json!({
                    "apiVersion": EG_API,
                    "kind": "EnvoyExtensionPolicy",
                    "metadata": {"name": args.name, "namespace": args.namespace},
                    "spec": {"targetRefs": refs, "wasm": [wasm]},
                })],
                notes,
            ))
        }
    }
}

/// The command line that regenerates the output (everything but --out), for the
/// header: arguments in a fixed order, so the header is deterministic.
fn command_line(args: &Args) -> String {
    let mut s = format!(
        "mapsctl manifests --policy {} --platform {} --image {}",
        args.policy.display(),
        match args.platform {
            Platform::Istio => "istio",
            Platform::EnvoyGateway => "envoy-gateway",
        },
        args.image
    );
    if let Some(h) = &args.sha256 {
        let _ = write!(s, " --sha256 {h}");
    }
    let _ = write!(s, " --namespace {}", args.namespace);
    if args.name != "maps-edge" {
        let _ = write!(s, " --name {}", args.name);
    }
    for l in &args.selectors {
        let _ = write!(s, " --selector {l}");
    }
    for t in &args.target_refs {
        let _ = write!(s, " --target-ref {t}");
    }
    if args.fail != Fail::Reload {
        let _ = write!(
            s,
            " --fail {}",
            if args.fail == Fail::Closed {
                "closed"
            } else {
                "open"
            }
        );
    }
    if args.no_l4 {
        s.push_str(" --no-l4");
    }
    s
}

fn header(args: &Args, version: &str) -> String {
    let cmd = command_line(args);
    let mut h = String::new();
    h.push_str("# Generated by `mapsctl manifests`; do not edit: regenerate with\n");
    let _ = writeln!(h, "#   {}", super::terminal_safe(&cmd, false));
    let _ = writeln!(
        h,
        "# The policy ({}, version {version} as mapsctl hashes the file) is embedded as a JSON object;",
        super::terminal_safe(&args.policy.display().to_string(), false)
    );
    let lines: &[&str] = match args.platform {
        Platform::Istio => &[
            "# istiod hands it to the plugin as JSON text (a StringValue), re-serialised: the plugin's",
            "# maps_policy_version gauge hashes that text, not the file.",
            "# - pluginName is the plugin's root id: `maps` (HTTP filter), `maps_tcp` (L4 network filter).",
            "# - failStrategy: what Envoy does with traffic when the VM traps (examples/README.md,",
            "#   \"When the plugin fails\"). FAIL_RELOAD: a new VM; requests fail closed meanwhile.",
            "# - Steering egress through maps_<edge>_<backup> also needs the clusters and the",
            "#   cluster_header route of `mapsctl envoy-config` (an EnvoyFilter patch), and the",
            "#   maps_* metric tags its stats_config.stats_tags (proxy bootstrap): Istio generates neither.",
        ],
        Platform::EnvoyGateway => &[
            "# Envoy Gateway hands it to the plugin as JSON text (a StringValue), re-serialised: the",
            "# plugin's maps_policy_version gauge hashes that text, not the file.",
            "# - rootID `maps` selects the HTTP filter; Envoy Gateway's Wasm extensions are HTTP",
            "#   filters only (for the L4 filter use plain Envoy: mapsctl envoy-config).",
            "# - failOpen false: when the VM traps, requests are refused (503) rather than skipping",
            "#   the plugin (examples/README.md, \"When the plugin fails\").",
            "# - Steering egress through maps_<edge>_<backup> also needs the clusters and the",
            "#   cluster_header route of `mapsctl envoy-config` (an EnvoyPatchPolicy).",
        ],
    };
    for l in lines {
        h.push_str(l);
        h.push('\n');
    }
    h
}

/// Runs `mapsctl manifests`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    let (bytes, _engine) = match load_policy(&args.policy) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if policy_core::is_compiled(&bytes) {
        eprintln!(
            "mapsctl: {} is a compiled policy: a control plane carries the plugin's configuration as JSON (Istio's pluginConfig, Envoy Gateway's config), not bytes. Give the JSON policy (mapsctl pack shrinks a large one), or deliver the compiled file to plain Envoy as ECDS files (mapsctl envoy-config --policy FILE --out DIR).",
            args.policy.display()
        );
        return 2;
    }
    let policy: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        // A valid policy is a JSON object; keep the refusal anyway.
        _ => {
            eprintln!("mapsctl: {}: not a JSON object", args.policy.display());
            return 2;
        }
    };
    let (objects, notes) = match resources(args, &policy) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let policy_bytes = serde_json::to_string(&policy).map(|s| s.len()).unwrap_or(0);
    let packed = policy.get("prefix_table").is_some_and(|v| !v.is_null());
    for obj in &objects {
        let size = serde_json::to_string(obj)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if size > MAX_OBJECT_BYTES {
            eprintln!(
                "mapsctl: the policy is too large for a Kubernetes object: {kind} {name} would be {size} bytes \
                 (the policy {policy_bytes} as compact JSON); mapsctl refuses more than {MAX_OBJECT_BYTES} \
                 (etcd refuses requests over 1.5 MiB by default, and the API server stores more than it is sent). {fix}",
                kind = obj.get("kind").and_then(Value::as_str).unwrap_or(""),
                fix = if packed {
                    "The policy is already packed: deliver it as ECDS files with plain Envoy (mapsctl envoy-config --out DIR; no size limit but Envoy's own), or split its registrations across proxies."
                } else {
                    "Pack its prefixes (mapsctl pack --policy POLICY --out PACKED: about 8 bytes a prefix) and generate from the packed policy, or deliver it as ECDS files with plain Envoy (mapsctl envoy-config --out DIR)."
                }
            );
            return 1;
        }
        if size + 1024 > CLIENT_SIDE_APPLY_BYTES {
            eprintln!(
                "mapsctl: note: {name} is {size} bytes: client-side `kubectl apply` copies it into an annotation \
                 limited to 256 KiB; apply it with `kubectl apply --server-side` (or kubectl create/replace)"
            );
        }
    }
    for n in notes {
        eprintln!("{n}");
    }
    let version = ec::policy_version(&bytes);
    let mut text = header(args, &version);
    for obj in &objects {
        text.push_str("---\n");
        emit_block(obj, 0, &mut text);
    }
    match &args.out {
        None => print_out(&text).unwrap_or(0),
        Some(path) => match ec::write_atomic(path, text.as_bytes()) {
            Ok(()) => {
                eprintln!(
                    "mapsctl: wrote {} ({} resource(s), policy version {version})",
                    path.display(),
                    objects.len()
                );
                0
            }
            Err(e) => {
                eprintln!("mapsctl: cannot write {}: {e}", path.display());
                2
            }
        },
    }
}

// ---- YAML -------------------------------------------------------------------------

/// Keys whose value (the policy) is written as a JSON flow mapping.
const FLOW_KEYS: &[&str] = &["pluginConfig", "config"];

/// A JSON string literal that YAML reads the same: JSON escapes, and the characters
/// YAML treats as line breaks or refuses escaped too.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A string YAML reads as that string without quotes: a word starting with a letter
/// that no YAML 1.1 reader takes for a boolean or null.
fn plain(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

fn scalar(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if plain(s) => out.push_str(s),
        Value::String(s) => quote(s, out),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(o) if o.is_empty() => out.push_str("{}"),
        // Callers write non-empty collections in block or flow style.
        other => flow(other, 0, out),
    }
}

fn pad(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// `v` (a mapping) in block style at `indent`, one key per line.
fn emit_block(v: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = v else {
        pad(indent, out);
        scalar(v, out);
        out.push('\n');
        return;
    };
    let mut first = true;
    for (k, val) in map {
        if !first || indent > 0 {
            pad(indent, out);
        }
        first = false;
        entry(k, val, indent, out);
    }
}

/// `key: value` at `indent` (the caller wrote the indentation).
fn entry(k: &str, val: &Value, indent: usize, out: &mut String) {
    scalar(&Value::from(k), out);
    out.push(':');
    match val {
        Value::Object(o) if !o.is_empty() && FLOW_KEYS.contains(&k) => {
            out.push('\n');
            pad(indent + 2, out);
            flow(val, indent + 2, out);
            out.push('\n');
        }
        Value::Object(o) if !o.is_empty() => {
            out.push('\n');
            for (k2, v2) in o {
                pad(indent + 2, out);
                entry(k2, v2, indent + 2, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            for item in a {
                pad(indent + 2, out);
                out.push_str("- ");
                match item {
                    Value::Object(o) if !o.is_empty() => {
                        let mut first = true;
                        for (k2, v2) in o {
                            if !first {
                                pad(indent + 4, out);
                            }
                            first = false;
                            entry(k2, v2, indent + 4, out);
                        }
                    }
                    other => {
                        scalar(other, out);
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push(' ');
            scalar(other, out);
            out.push('\n');
        }
    }
}

/// `v` as pretty JSON (two spaces a level), continuation lines at `indent`.
fn flow(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            out.push('{');
            let mut first = true;
            for (k, val) in o {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push('\n');
                pad(indent + 2, out);
                quote(k, out);
                out.push_str(": ");
                flow(val, indent + 2, out);
            }
            out.push('\n');
            pad(indent, out);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            let mut first = true;
            for val in a {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push('\n');
                pad(indent + 2, out);
                flow(val, indent + 2, out);
            }
            out.push('\n');
            pad(indent, out);
            out.push(']');
        }
        Value::String(s) => quote(s, out),
        other => scalar(other, out),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn strings_yaml_would_misread_are_escaped() {
        let mut s = String::new();
        quote("a\u{2028}b\u{85}c\u{1b}d\"é😀", &mut s);
        assert_eq!(s, "\"a\\u2028b\\u0085c\\u001bd\\\"é😀\"");
        assert!(plain("maps-edge") && plain("extensions.istio.io/v1alpha1"));
        assert!(!plain("yes") && !plain("On") && !plain("1.0") && !plain("oci://x"));
    }

    #[test]
    fn images_and_digests() {
        assert_eq!(
            code("oci://r.example/maps:1").unwrap(),
            Code::Oci("r.example/maps:1".into())
        );
        assert_eq!(
            code("r.example/maps:1").unwrap(),
            Code::Oci("r.example/maps:1".into())
        );
        assert!(matches!(code("https://h/x.wasm").unwrap(), Code::Http(_)));
        assert!(code("ftp://h/x").unwrap_err().contains("ftp://"));
        assert!(code("a b").is_err() && code("").is_err());
        let h = "AB".repeat(32);
        assert_eq!(sha256(Some(&h)).unwrap().unwrap(), "ab".repeat(32));
        assert!(sha256(Some("abc")).unwrap_err().contains("64 hex"));
    }

    #[test]
    fn block_and_flow_round_trip_as_json() {
        let v = json!({"a": {"b": [ {"c": 1, "d": "x y"}, "z" ], "config": {"k": [1, 2.5, null, true]}}});
        let mut s = String::new();
        emit_block(&v, 0, &mut s);
        assert_eq!(
            s,
            "a:\n  b:\n    - c: 1\n      d: \"x y\"\n    - z\n  config:\n    {\n      \"k\": [\n        1,\n        2.5,\n        null,\n        true\n      ]\n    }\n"
        );
    }
}
