//! The conformance cases (`conformance/cases.txt`) in the harness, against the
//! conformance filters (`make conformance-filters`). `e2e/test_conformance.py` runs the
//! same cases in Envoy.
//!
//! The filters' `.wasm` is looked up at `$CONFORMANCE_WASM`, else
//! `target/wasm32-wasip1/plugin/conformance_filters.wasm`. When it is not built the test
//! says so and passes, unless `CONFORMANCE_REQUIRED=1` (as `make e2e-conformance` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use host_harness::{GrpcCall, Harness, Headers, Plugin};

#[derive(Debug, Default, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    chunks: Vec<String>,
    trailers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    root_id: String,
    requests: Vec<Request>,
    status: Option<u32>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        if word == "case" {
            let (name, root) = rest.split_once(' ').expect("case NAME ROOT_ID");
            cases.push(Case {
                name: name.into(),
                root_id: root.into(),
                ..Case::default()
            });
            continue;
        }
        let case = cases
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: no case", n + 1));
        match word {
            "request" => {
                let (method, path) = rest.split_once(' ').expect("request METHOD PATH");
                case.requests.push(Request {
                    method: method.into(),
                    path: path.into(),
                    ..Request::default()
                });
            }
            "header" => {
                let (k, v) = rest.split_once(": ").expect("header NAME: VALUE");
                case.requests
                    .last_mut()
                    .unwrap()
                    .headers
                    .push((k.into(), v.into()));
            }
            "trailer" => {
                let (k, v) = rest.split_once(": ").expect("trailer NAME: VALUE");
                case.requests
                    .last_mut()
                    .unwrap()
                    .trailers
                    .push((k.into(), v.into()));
            }
            "chunks" => {
                case.requests.last_mut().unwrap().chunks =
                    rest.split('|').map(str::to_string).collect();
            }
            "eventually" => {}
            "expect" => {
                let (what, arg) = rest.split_once(' ').expect("expect WHAT ...");
                match what {
                    "status" => case.status = Some(arg.parse().unwrap()),
                    "body" => case.body = Some(arg.into()),
                    "header" => {
                        let (k, v) = arg.split_once(' ').expect("expect header NAME VALUE");
                        case.headers.push((k.into(), v.into()));
                    }
                    other => panic!("line {}: unknown expectation {other}", n + 1),
                }
            }
            other => panic!("line {}: unknown directive {other}", n + 1),
        }
    }
    cases
}

/// What the client sees: status, response headers, body.
struct Seen {
    status: u32,
    headers: Headers,
    body: Vec<u8>,
}

/// What Envoy's gRPC client reports to the plugin for a call to `cluster`, with the test
/// upstreams of cases.txt: `conformance_grpc` answers status 7 "denied-by-upstream"
/// (Envoy appends the response code details in braces to the upstream's `grpc-message`);
/// nothing listens behind `conformance_grpc_dead` (Envoy: UNAVAILABLE, its own message).
fn grpc_answer(cluster: &str) -> (u32, &'static str) {
    match cluster {
        "conformance_grpc" => (7, "denied-by-upstream{via_upstream}"),
        _ => (
            14,
            "upstream connect error or disconnect/reset before headers. reset reason: remote \
             connection failure{upstream_reset_before_response_started{remote_connection_\
             failure|delayed_connect_error:_Connection_refused}}",
        ),
    }
}

/// The echo server of cases.txt (`conformance_grpc_echo`, e2e/test_conformance.py's
/// `grpc_echo_server`) answering `call`, as Envoy's gRPC client hands its answer to the
/// plugin (measured in Envoy 1.40). `Say` (unary): the echoed message only; Envoy gives a
/// unary call no metadata. `Chat` (stream): the initial metadata (grpcio's headers and the
/// x-envoy-upstream-service-time Envoy adds), one answer per message, and once the plugin
/// half-closed, the trailing metadata (grpc-status and grpc-message among them) and OK,
/// whose message Envoy makes the response code details (`via_upstream`).
fn grpc_echo(plugin: &mut Plugin, call: &GrpcCall) -> Result<(), host_harness::Error> {
    if !call.streaming {
        let mut answer = b"echo:".to_vec();
        answer.extend_from_slice(call.messages.first().map_or(&[][..], Vec::as_slice));
        answer.extend_from_slice(b";x-conformance=");
        let md = call.initial_metadata.get("x-conformance").unwrap_or("-");
        answer.extend_from_slice(md.as_bytes());
        return plugin.grpc_receive(call.token, &answer);
    }
    plugin.grpc_receive_initial_metadata(
        call.token,
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", "identity,deflate,gzip"),
            ("x-echo-init", "yes"),
            ("x-envoy-upstream-service-time", "0"),
        ],
    )?;
    for (n, message) in call.messages.iter().enumerate() {
        let mut answer = message.clone();
        answer.extend_from_slice(format!("#{}", n + 1).as_bytes());
        plugin.grpc_receive(call.token, &answer)?;
    }
    if call.half_closed {
        plugin.grpc_receive_trailing_metadata(
            call.token,
            &[
                ("grpc-status", "0"),
                ("grpc-message", ""),
                ("x-echo-trailer", "done"),
            ],
        )?;
        plugin.grpc_close(call.token, 0, "via_upstream")?;
    }
    Ok(())
}

/// The route table of cases.txt (Envoy: the listeners' route configuration).
fn routes(headers: &Headers) -> Option<String> {
    Some(if headers.get("x-route") == Some("alt") {
        "alt".into()
    } else {
        "upstream".into()
    })
}

/// One request through `plugin`, with the test upstream of cases.txt.
fn exchange(plugin: &mut Plugin, req: &Request) -> Seen {
    let body: Vec<u8> = req.chunks.concat().into_bytes();
    let mut headers = Headers::from_pairs(&[
        (":method", req.method.as_str()),
        (":path", req.path.as_str()),
        (":authority", "conformance"),
        (":scheme", "http"),
        ("user-agent", "conformance-client"),
    ]);
    for (k, v) in &req.headers {
        headers.add(k, v.as_bytes());
    }
    let has_trailers = !req.trailers.is_empty();
    if has_trailers {
        headers.add("transfer-encoding", b"chunked");
    } else if !body.is_empty() {
        headers.add("content-length", body.len().to_string().as_bytes());
    }
    let calls_before = plugin.http_calls().len();
    let grpc_before = plugin.grpc_calls().len();
    let mut stream = plugin.http_stream().unwrap();
    stream
        .request_headers(headers, body.is_empty() && !has_trailers)
        .unwrap();
    let n = req.chunks.len();
    for (i, chunk) in req.chunks.iter().enumerate() {
        stream
            .request_body(chunk.as_bytes(), i + 1 == n && !has_trailers)
            .unwrap();
    }
    if has_trailers {
        let pairs: Vec<(&str, &str)> = req
            .trailers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        stream
            .request_trailers(Headers::from_pairs(&pairs))
            .unwrap();
    }
    // Answer the callouts the filter made (the test upstream: /callout -> 200 "pong").
    let calls: Vec<_> = stream.plugin().http_calls()[calls_before..].to_vec();
    for call in calls {
        let path = call.headers.get(":path").unwrap_or("");
        let (status, body) = if path == "/callout" {
            ("200", "pong")
        } else {
            ("404", "")
        };
        stream
            .respond_to_http_call(call.token, &[(":status", status)], body.as_bytes(), &[])
            .unwrap();
    }
    // Answer the gRPC calls (as Envoy's gRPC client reports them).
    let grpc: Vec<_> = stream.plugin().grpc_calls()[grpc_before..].to_vec();
    for call in grpc {
        let cluster = String::from_utf8_lossy(&call.service).into_owned();
        if cluster == "conformance_grpc_echo" {
            stream.deliver(|p| grpc_echo(p, &call)).unwrap();
            continue;
        }
        let (status, message) = grpc_answer(&cluster);
        stream
            .deliver(|p| p.grpc_close(call.token, status, message))
            .unwrap();
    }
    if stream.request_forwarded() && stream.local_reply().is_none() {
        let got = stream.upstream_request_body().to_vec();
        if stream.route_name().as_deref() == Some("alt") {
            // The router answers itself (a direct response).
            let h = Headers::from_pairs(&[
                (":status", "200"),
                ("content-length", "9"),
                ("content-type", "text/plain"),
            ]);
            stream.response_headers(h, false).unwrap();
            stream.response_body(b"alt route", true).unwrap();
        } else if req.path == "/trailers" {
            let h = Headers::from_pairs(&[(":status", "200"), ("transfer-encoding", "chunked")]);
            stream.response_headers(h, false).unwrap();
            stream.response_body(&got, false).unwrap();
            stream
                .response_trailers(Headers::from_pairs(&[("x-up-trailer", "up")]))
                .unwrap();
        } else {
            // The echo upstream.
            let h = Headers::from_pairs(&[
                (":status", "200".to_string()),
                ("x-echo-method", req.method.clone()),
                ("x-echo-path", req.path.clone()),
                ("x-echo-body-length", got.len().to_string()),
                ("content-length", got.len().to_string()),
            ]);
            stream.response_headers(h, got.is_empty()).unwrap();
            if !got.is_empty() {
                stream.response_body(&got, true).unwrap();
            }
        }
    }
    let out = stream.finish().unwrap();
    let status = out
        .response_headers
        .get(":status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Seen {
        status,
        headers: out.response_headers,
        body: out.response_body,
    }
}

fn wasm_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONFORMANCE_WASM") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("target/wasm32-wasip1/plugin/conformance_filters.wasm");
    p.exists().then_some(p)
}

#[test]
fn conformance_cases_pass_in_the_harness() {
    let Some(wasm) = wasm_path() else {
        assert!(
            std::env::var("CONFORMANCE_REQUIRED").as_deref() != Ok("1"),
            "conformance filters not built (make conformance-filters)"
        );
        eprintln!("skipped: conformance filters not built (make conformance-filters)");
        return;
    };
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/cases.txt"),
    )
    .unwrap();
    let cases = parse(&text);
    assert!(cases.len() >= 14, "cases.txt has {} cases", cases.len());
    let harness = Harness::load(&wasm).unwrap().routes(routes);
    let mut failures = Vec::new();
    for case in &cases {
        let mut plugin = harness
            .clone()
            .root_id(&case.root_id)
            .plugin_name(&case.root_id)
            .configure(b"")
            .unwrap();
        let mut seen = None;
        for req in &case.requests {
            seen = Some(exchange(&mut plugin, req));
        }
        let seen = seen.expect("a case sends a request");
        let mut problems = Vec::new();
        if let Some(s) = case.status {
            if s != seen.status {
                problems.push(format!("status {} (expected {s})", seen.status));
            }
        }
        for (k, v) in &case.headers {
            if seen.headers.get(k) != Some(v.as_str()) {
                problems.push(format!(
                    "header {k}: {:?} (expected {v:?})",
                    seen.headers.get(k)
                ));
            }
        }
        if let Some(b) = &case.body {
            if seen.body != b.as_bytes() {
                problems.push(format!(
                    "body {:?} (expected {b:?})",
                    String::from_utf8_lossy(&seen.body)
                ));
            }
        }
        if problems.is_empty() {
            eprintln!("ok   {}", case.name);
        } else {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}
