//! Conformance filters: one proxy-wasm HTTP filter per ABI feature, chosen by the root
//! id (`plugin_root_id`), each reporting what it observed where an HTTP client sees it
//! (response headers, or a local reply's body). `cases.json` says what a client must see;
//! `host-harness/tests/conformance.rs` runs every case in the harness and
//! `e2e/test_conformance.py` in Envoy.
//!
//! | root id | feature |
//! |---|---|
//! | `lifecycle` | callback order of a stream, its end included (reported on `/report`) |
//! | `pause_callout` | `Pause` in request headers, an HTTP callout answered mid-stream, resume |
//! | `body` | request body buffered until end of stream, replaced; response body appended |
//! | `local_reply` | a local reply passes through the filter's own response callbacks |
//! | `properties` | Envoy's attributes (request, response, upstream, plugin) |
//! | `queue` | a shared queue's `on_queue_ready` on the root context (reported on `/report`) |
//! | `grpc_call` | `Pause`, a gRPC call to a cluster (`x-grpc-cluster`), its close status and message, resume |
//! | `trailers` | request and response trailers in their own callbacks (reported on `/report`) |
//! | `route_cache` | a request header changed, the route cache cleared (`x-clear: yes`) or not |
//! | `filter_state` | the `set_envoy_filter_state` foreign function, read back as a property |
//! | `grpc_unary` | a successful gRPC call to the echo server: the message, status, metadata maps |
//! | `grpc_stream` | a gRPC stream: two messages, half-close; metadata, messages, close status |
//!
//! Built by `make conformance-filters` (`--profile plugin --target wasm32-wasip1`). On
//! other targets the crate is empty.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

/// The cluster the callout goes to (the test's upstream server).
const CALLOUT_CLUSTER: &str = "conformance_upstream";

/// The cluster a gRPC call goes to unless the request names another (`x-grpc-cluster`).
const GRPC_CLUSTER: &str = "conformance_grpc";

/// The cluster of the real gRPC server (service `conformance.Echo`: `Say` echoes, `Chat`
/// answers each message of a stream).
const GRPC_ECHO_CLUSTER: &str = "conformance_grpc_echo";

/// The filter state key `filter_state` sets (a key Envoy has an object factory for).
const FILTER_STATE_KEY: &str = "envoy.tcp_proxy.cluster";

/// `SetEnvoyFilterStateArguments` in protobuf: path (1), value (2), span (3).
fn filter_state_arguments(path: &str, value: &str, span: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, field) in [(0x0a_u8, path), (0x12, value)] {
        out.push(tag);
        out.push(u8::try_from(field.len()).unwrap_or(0));
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&[0x18, span]);
    out
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> {
        Box::new(Root { mode: String::new(), queue: None })
    });
}}

struct Root {
    mode: String,
    queue: Option<u32>,
}

fn text(bytes: Option<Vec<u8>>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|| "-".into())
}

/// A property as the filter reports it: its value, `-` when absent, `err:<status>` when
/// the host refused the path (the SDK's `get_property` would panic).
fn prop(path: Vec<&str>) -> Result<Option<Vec<u8>>, String> {
    hostcalls::get_property(path).map_err(|e| format!("err:{e:?}"))
}

fn ptext(v: Result<Option<Vec<u8>>, String>) -> String {
    v.map_or_else(|e| e, text)
}

fn pint(v: Result<Option<Vec<u8>>, String>) -> String {
    v.map_or_else(|e| e, int)
}

fn eos_name(what: &str, end_of_stream: bool) -> String {
    if end_of_stream {
        format!("{what}(eos)")
    } else {
        what.to_string()
    }
}

fn int(bytes: Option<Vec<u8>>) -> String {
    match bytes.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(raw) => i64::from_le_bytes(raw).to_string(),
        None => "-".into(),
    }
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        true
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.mode = text(self.get_property(vec!["plugin_root_id"]));
        if self.mode == "queue" {
            self.queue = hostcalls::register_shared_queue("conformance_queue").ok();
        }
        true
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let mut got = Vec::new();
        while let Ok(Some(item)) = hostcalls::dequeue_shared_queue(queue_id) {
            got.push(String::from_utf8_lossy(&item).into_owned());
        }
        let line = format!("ready:{}", got.join("+"));
        let _ = hostcalls::set_shared_data("conformance.queue", Some(line.as_bytes()), None);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            mode: self.mode.clone(),
            context_id,
            seq: Vec::new(),
            callout: None,
            grpc: None,
            grpc_seen: Vec::new(),
            queue: self.queue,
            early: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    mode: String,
    #[allow(dead_code)]
    context_id: u32,
    /// `lifecycle`: the callbacks seen, in order.
    seq: Vec<String>,
    /// `pause_callout`: what the callout answered (status, body).
    callout: Option<(String, String)>,
    /// `grpc_call`: how the call ended (status, message, response size).
    grpc: Option<(u32, String, usize)>,
    /// `grpc_unary`, `grpc_stream`: what the gRPC callbacks observed, in order.
    grpc_seen: Vec<String>,
    queue: Option<u32>,
    /// `properties`: observations made in the request headers callback.
    early: Vec<(&'static str, String)>,
}

extern "C" {
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

/// A gRPC metadata map as the filter reports it: its keys in order, and `key`'s value.
fn metadata(map: MapType, key: &str) -> String {
    match hostcalls::get_map(map) {
        Ok(pairs) => {
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            let value = pairs
                .iter()
                .find(|(k, _)| k == key)
                .map_or("-", |(_, v)| v.as_str());
            format!("keys={};{key}={value}", keys.join("+"))
        }
        Err(e) => format!("err:{e:?}"),
    }
}

/// The status the host answers for one header of `map` (the SDK panics on anything but
/// OK and NOT_FOUND, so the call is made directly).
fn probe_map(map: MapType, key: &str) -> String {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer it allocated with our allocator and its size.
    let status =
        unsafe { proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut data, &mut size) };
    if status == 0 && !data.is_null() {
        // SAFETY: the block came from our allocator, `size` bytes long.
        drop(unsafe { Vec::from_raw_parts(data, size, size) });
    }
    format!("status:{status}")
}

impl Filter {
    fn note(&mut self, what: &str) {
        if self.mode == "lifecycle" {
            self.seq.push(what.to_string());
        }
    }

    /// `trailers`: a callback seen, consecutive repeats (body chunks) folded into one.
    fn trace(&mut self, what: String) {
        if self.mode == "trailers" && self.seq.last() != Some(&what) {
            self.seq.push(what);
        }
    }

    fn report(&mut self, key: &str) -> Action {
        let (data, _) = hostcalls::get_shared_data(key).unwrap_or((None, None));
        self.send_http_response(
            200,
            vec![("x-conformance", "report")],
            Some(&data.unwrap_or_default()),
        );
        Action::Pause
    }
}

impl Drop for Filter {
    /// The SDK drops the context in `proxy_on_delete`.
    fn drop(&mut self) {
        if self.mode == "lifecycle" && !self.seq.is_empty() {
            self.seq.push("delete".into());
            let line = self.seq.join(",");
            let _ =
                hostcalls::set_shared_data("conformance.lifecycle", Some(line.as_bytes()), None);
        }
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_else(|| "-".into());
        let body = text(self.get_http_call_response_body(0, body_size));
        self.callout = Some((status, body));
        self.resume_http_request();
    }

    fn on_grpc_call_response(&mut self, _token: u32, status: u32, size: usize) {
        let message = hostcalls::get_grpc_status()
            .ok()
            .and_then(|(_, m)| m)
            .unwrap_or_else(|| "-".into());
        if self.mode == "grpc_unary" {
            let body = text(self.get_grpc_call_response_body(0, size));
            self.grpc_seen.push(format!(
                "response(status={status};message={message};body={body};initial={};trailing={})",
                probe_map(MapType::GrpcReceiveInitialMetadata, "x-echo-init"),
                probe_map(MapType::GrpcReceiveTrailingMetadata, "x-echo-trailer"),
            ));
        }
        self.grpc = Some((status, message, size));
        self.resume_http_request();
    }

    fn on_grpc_stream_initial_metadata(&mut self, _token: u32, n: u32) {
        let seen = metadata(MapType::GrpcReceiveInitialMetadata, "x-echo-init");
        self.grpc_seen.push(format!("initial(n={n};{seen})"));
    }

    fn on_grpc_stream_message(&mut self, _token: u32, size: usize) {
        let body = text(self.get_grpc_stream_message(0, size));
        self.grpc_seen.push(format!("message({body})"));
    }

    fn on_grpc_stream_trailing_metadata(&mut self, _token: u32, n: u32) {
        let seen = metadata(MapType::GrpcReceiveTrailingMetadata, "x-echo-trailer");
        self.grpc_seen.push(format!("trailing(n={n};{seen})"));
    }

    fn on_grpc_stream_close(&mut self, _token: u32, status: u32) {
        let message = hostcalls::get_grpc_status()
            .ok()
            .and_then(|(_, m)| m)
            .unwrap_or_else(|| "-".into());
        self.grpc_seen.push(format!("close({status};{message})"));
        self.resume_http_request();
    }

    fn on_done(&mut self) -> bool {
        self.note("done");
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.note(if end_of_stream {
            "request_headers(eos)"
        } else {
            "request_headers"
        });
        let path = self.get_http_request_header(":path").unwrap_or_default();
        match self.mode.as_str() {
            "lifecycle" if path == "/report" => {
                self.seq.clear();
                self.mode = "reporting".into();
                self.report("conformance.lifecycle")
            }
            "queue" if path == "/report" => self.report("conformance.queue"),
            "trailers" if path == "/report" => {
                self.mode = "reporting".into();
                self.report("conformance.trailers")
            }
            "trailers" => {
                self.seq.clear();
                self.trace(eos_name("request_headers", end_of_stream));
                Action::Continue
            }
            "grpc_call" => {
                let cluster = self
                    .get_http_request_header("x-grpc-cluster")
                    .unwrap_or_else(|| GRPC_CLUSTER.into());
                let call = hostcalls::dispatch_grpc_call(
                    &cluster,
                    "conformance.Echo",
                    "Say",
                    vec![("x-conformance", b"1".as_slice())],
                    Some(b"hello"),
                    Duration::from_secs(5),
                );
                match call {
                    Ok(_) => Action::Pause,
                    Err(e) => {
                        let body = format!("grpc call refused: {e:?}");
                        self.send_http_response(500, vec![], Some(body.as_bytes()));
                        Action::Pause
                    }
                }
            }
            "grpc_unary" => {
                let call = hostcalls::dispatch_grpc_call(
                    GRPC_ECHO_CLUSTER,
                    "conformance.Echo",
                    "Say",
                    vec![("x-conformance", b"unary".as_slice())],
                    Some(b"hello"),
                    Duration::from_secs(5),
                );
                if let Err(e) = call {
                    let body = format!("grpc call refused: {e:?}");
                    self.send_http_response(500, vec![], Some(body.as_bytes()));
                }
                Action::Pause
            }
            "grpc_stream" => {
                let opened = hostcalls::open_grpc_stream(
                    GRPC_ECHO_CLUSTER,
                    "conformance.Echo",
                    "Chat",
                    vec![("x-conformance", b"stream".as_slice())],
                );
                let sent = opened.and_then(|token| {
                    hostcalls::send_grpc_stream_message(token, Some(b"one"), false)?;
                    hostcalls::send_grpc_stream_message(token, Some(b"two"), false)?;
                    // proxy_grpc_close: a half-close; the server ends the stream.
                    hostcalls::close_grpc_stream(token)
                });
                if let Err(e) = sent {
                    let body = format!("grpc stream refused: {e:?}");
                    self.send_http_response(500, vec![], Some(body.as_bytes()));
                }
                Action::Pause
            }
            "route_cache" => {
                // Reading route_name makes the host choose the route now.
                let before = ptext(prop(vec!["xds", "route_name"]));
                self.early.push(("x-route-before", before));
                self.set_http_request_header("x-route", Some("alt"));
                let changed = ptext(prop(vec!["xds", "route_name"]));
                self.early.push(("x-route-after-change", changed));
                if self.get_http_request_header("x-clear").as_deref() == Some("yes") {
                    let r = hostcalls::call_foreign_function("clear_route_cache", None);
                    if let Err(e) = r {
                        let body = format!("clear_route_cache refused: {e:?}");
                        self.send_http_response(500, vec![], Some(body.as_bytes()));
                        return Action::Pause;
                    }
                }
                let after = ptext(prop(vec!["xds", "route_name"]));
                self.early.push(("x-route-after", after));
                Action::Continue
            }
            "filter_state" => {
                let args = filter_state_arguments(FILTER_STATE_KEY, "fs-value", 1);
                let r = hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args));
                self.early.push((
                    "x-fs-set",
                    match r {
                        Ok(_) => "ok".into(),
                        Err(e) => format!("{e:?}"),
                    },
                ));
                let unknown = filter_state_arguments("conformance.no.such.key", "v", 1);
                let r = hostcalls::call_foreign_function("set_envoy_filter_state", Some(&unknown));
                self.early.push((
                    "x-fs-unknown-key",
                    match r {
                        Ok(_) => "ok".into(),
                        Err(e) => format!("{e:?}"),
                    },
                ));
                // The keys a host accepts (Envoy: those with an object factory).
                let keys = self
                    .get_http_request_header("x-fs-keys")
                    .unwrap_or_default();
                let accepted: Vec<String> = keys
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        let args = filter_state_arguments(k, "1", 1);
                        match hostcalls::call_foreign_function(
                            "set_envoy_filter_state",
                            Some(&args),
                        ) {
                            Ok(_) => format!("{k}=ok"),
                            Err(e) => format!("{k}={e:?}"),
                        }
                    })
                    .collect();
                self.early.push(("x-fs-keys", accepted.join(";")));
                let r = hostcalls::call_foreign_function("conformance_no_such_function", None);
                self.early.push((
                    "x-fs-unknown-function",
                    match r {
                        Ok(_) => "ok".into(),
                        Err(e) => format!("{e:?}"),
                    },
                ));
                Action::Continue
            }
            "queue" => {
                if let Some(q) = self.queue {
                    let _ = hostcalls::enqueue_shared_queue(q, Some(path.as_bytes()));
                }
                Action::Continue
            }
            "pause_callout" => {
                let call = self.dispatch_http_call(
                    CALLOUT_CLUSTER,
                    vec![
                        (":method", "GET"),
                        (":path", "/callout"),
                        (":authority", "conformance"),
                    ],
                    None,
                    vec![],
                    Duration::from_secs(5),
                );
                match call {
                    Ok(_) => Action::Pause,
                    Err(_) => {
                        self.send_http_response(500, vec![], Some(b"callout refused"));
                        Action::Pause
                    }
                }
            }
            "local_reply" => {
                self.send_http_response(403, vec![("x-local", "1")], Some(b"denied"));
                Action::Pause
            }
            "properties" => {
                let id = self
                    .get_http_request_header("x-request-id")
                    .unwrap_or_default();
                let same = ptext(prop(vec!["request", "id"])) == id && !id.is_empty();
                self.early
                    .push(("x-p-request-id-matches", same.to_string()));
                let request_props: Vec<(&'static str, String)> = vec![
                    ("x-p-request-path", ptext(prop(vec!["request", "path"]))),
                    (
                        "x-p-request-url-path",
                        ptext(prop(vec!["request", "url_path"])),
                    ),
                    ("x-p-request-host", ptext(prop(vec!["request", "host"]))),
                    ("x-p-request-method", ptext(prop(vec!["request", "method"]))),
                    ("x-p-request-scheme", ptext(prop(vec!["request", "scheme"]))),
                    (
                        "x-p-request-useragent",
                        ptext(prop(vec!["request", "useragent"])),
                    ),
                    (
                        "x-p-request-header",
                        ptext(prop(vec!["request", "headers", "x-conf"])),
                    ),
                    (
                        "x-p-request-protocol",
                        ptext(prop(vec!["request", "protocol"])),
                    ),
                ];
                self.early.extend(request_props);

                self.early.push((
                    "x-p-trailers-in-request-headers",
                    probe_map(MapType::HttpRequestTrailers, "x"),
                ));
                self.early.push((
                    "x-p-response-map-in-request-headers",
                    probe_map(MapType::HttpResponseHeaders, ":status"),
                ));
                Action::Continue
            }
            "body" => {
                // The upstream must not see a stale length: the body changes size.
                self.set_http_request_header("content-length", None);
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.note(if end_of_stream {
            "request_body(eos)"
        } else {
            "request_body"
        });
        self.trace(eos_name("request_body", end_of_stream));
        if self.mode != "body" {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = text(self.get_http_request_body(0, size));
        let replaced = format!("[{}:{}]", body.to_uppercase(), size);
        self.set_http_request_body(0, size, replaced.as_bytes());
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        self.note("request_trailers");
        if self.mode == "trailers" {
            let got = self
                .get_http_request_trailer("x-req-trailer")
                .unwrap_or_else(|| "-".into());
            self.trace(format!("request_trailers(x-req-trailer={got})"));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.note(if end_of_stream {
            "response_headers(eos)"
        } else {
            "response_headers"
        });
        self.trace(eos_name("response_headers", end_of_stream));
        match self.mode.as_str() {
            "trailers" => {
                let probe = probe_map(MapType::HttpResponseTrailers, "x-up-trailer");
                self.seq.push(format!("response_trailers_map[{probe}]"));
            }
            "grpc_call" => {
                let (status, message, size) = self
                    .grpc
                    .clone()
                    .map_or(("-".into(), "-".into(), "-".into()), |(s, m, n)| {
                        (s.to_string(), m, n.to_string())
                    });
                self.set_http_response_header("x-grpc-status", Some(&status));
                self.set_http_response_header("x-grpc-message", Some(&message));
                self.set_http_response_header("x-grpc-response-size", Some(&size));
            }
            "grpc_unary" | "grpc_stream" => {
                let seen = self.grpc_seen.join(",");
                self.set_http_response_header("x-grpc-seen", Some(&seen));
            }
            "route_cache" => {
                let mut props = std::mem::take(&mut self.early);
                props.push((
                    "x-route-in-response",
                    ptext(prop(vec!["xds", "route_name"])),
                ));
                for (name, value) in props {
                    self.set_http_response_header(name, Some(&value));
                }
            }
            "filter_state" => {
                let mut props = std::mem::take(&mut self.early);
                props.push((
                    "x-fs-property",
                    ptext(prop(vec!["filter_state", FILTER_STATE_KEY])),
                ));
                for (name, value) in props {
                    self.set_http_response_header(name, Some(&value));
                }
            }
            "pause_callout" => {
                let (status, body) = self
                    .callout
                    .clone()
                    .unwrap_or_else(|| ("-".into(), "-".into()));
                self.set_http_response_header("x-callout-status", Some(&status));
                self.set_http_response_header("x-callout-body", Some(&body));
            }
            "local_reply" => {
                let status = self.get_http_response_header(":status").unwrap_or_default();
                self.set_http_response_header("x-saw-status", Some(&status));
                let local = self.get_http_response_header("x-local").unwrap_or_default();
                self.set_http_response_header("x-saw-local", Some(&local));
            }
            "body" => {
                self.set_http_response_header("content-length", None);
            }
            "properties" => {
                let props: Vec<(&str, String)> = vec![
                    ("x-p-response-code", pint(prop(vec!["response", "code"]))),
                    (
                        "x-p-response-header",
                        ptext(prop(vec!["response", "headers", "x-echo-method"])),
                    ),
                    ("x-p-plugin-root-id", ptext(prop(vec!["plugin_root_id"]))),
                    (
                        "x-p-source-has-port",
                        (pint(prop(vec!["source", "port"])) != "-").to_string(),
                    ),
                    (
                        "x-p-upstream-is-local",
                        ptext(prop(vec!["upstream", "address"]))
                            .starts_with("127.0.0.1:")
                            .to_string(),
                    ),
                    (
                        "x-p-connection-mtls",
                        format!("{:?}", prop(vec!["connection", "mtls"])),
                    ),
                ];
                let mut props = props;
                props.push((
                    "x-p-request-path-in-response",
                    ptext(prop(vec!["request", "path"])),
                ));
                props.push((
                    "x-p-request-map-in-response",
                    probe_map(MapType::HttpRequestHeaders, ":path"),
                ));
                props.extend(std::mem::take(&mut self.early));
                for (name, value) in props {
                    self.set_http_response_header(name, Some(&value));
                }
            }
            _ => {}
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.note(if end_of_stream {
            "response_body(eos)"
        } else {
            "response_body"
        });
        self.trace(eos_name("response_body", end_of_stream));
        if self.mode == "body" {
            if !end_of_stream {
                return Action::Pause;
            }
            // Append (Envoy: a start at or past the end appends).
            self.set_http_response_body(size, 0, b"!");
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _n: usize) -> Action {
        self.note("response_trailers");
        if self.mode == "trailers" {
            let got = self
                .get_http_response_trailer("x-up-trailer")
                .unwrap_or_else(|| "-".into());
            self.trace(format!("response_trailers(x-up-trailer={got})"));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        self.note("log");
        if self.mode == "trailers" && !self.seq.is_empty() {
            let line = self.seq.join(",");
            let _ = hostcalls::set_shared_data("conformance.trailers", Some(line.as_bytes()), None);
        }
    }
}
