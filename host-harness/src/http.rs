//! Sending one HTTP request through a plugin, the way Envoy's HTTP filter chain would.
//!
//! Order of callbacks: `proxy_on_context_create`, `proxy_on_request_headers`,
//! `proxy_on_request_body` (when there is a body), then, unless the plugin sent a local
//! reply or the request has no upstream, the clock moves by the upstream latency and
//! `proxy_on_response_headers` / `proxy_on_response_body` run; finally `proxy_on_done`,
//! `proxy_on_log`, `proxy_on_delete`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::abi::Action;
use crate::error::Error;
use crate::plugin::{Cb, Plugin};
use crate::state::{Headers, LocalReply, LogEntry, StreamKind};

/// A request being built; [`HttpRequest::send`] runs it through the plugin.
///
/// Defaults: `:method GET`, `:scheme https`, `:path /`, no `:authority`; source
/// `203.0.113.1:50000`, destination `127.0.0.1:10000`; the upstream answers `:status 200`
/// after no time at all.
pub struct HttpRequest<'p> {
    plugin: &'p mut Plugin,
    headers: Headers,
    body: Vec<u8>,
    trailers: Headers,
    properties: BTreeMap<String, Vec<u8>>,
    response: Option<(Headers, Vec<u8>)>,
    latency: Duration,
}

/// What happened to a request.
#[derive(Clone, Debug)]
pub struct HttpOutcome {
    /// The stream context id the request had.
    pub context_id: u32,
    /// What `proxy_on_request_headers` answered.
    pub request_action: Action,
    /// The request headers as the plugin left them (what goes upstream).
    pub request_headers: Headers,
    /// The response headers as the plugin left them (empty when there was no upstream
    /// response, e.g. after a local reply).
    pub response_headers: Headers,
    /// The plugin's own response, if it sent one.
    pub local_reply: Option<LocalReply>,
    /// Filter state the plugin set (`set_envoy_filter_state`), by key.
    pub filter_state: BTreeMap<String, String>,
    /// Properties the plugin set on the stream (and those the request carried).
    pub properties: BTreeMap<String, Vec<u8>>,
    /// Log lines written while the request was processed.
    pub logs: Vec<LogEntry>,
}

impl HttpOutcome {
    /// A request header as the plugin left it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }
}

/// Encodes an address property the way Envoy does: `ip:port` text, plus the port as a
/// separate integer property (8 bytes little-endian) when the text has one.
pub(crate) fn set_address(props: &mut BTreeMap<String, Vec<u8>>, which: &str, addr: &str) {
    props.insert(format!("{which}.address"), addr.as_bytes().to_vec());
    match addr.parse::<SocketAddr>() {
        Ok(sa) => {
            props.insert(
                format!("{which}.port"),
                i64::from(sa.port()).to_le_bytes().to_vec(),
            );
        }
        Err(_) => {
            props.remove(&format!("{which}.port"));
        }
    }
}

impl<'p> HttpRequest<'p> {
    pub(crate) fn new(plugin: &'p mut Plugin) -> HttpRequest<'p> {
        let mut properties = BTreeMap::new();
        set_address(&mut properties, "source", "203.0.113.1:50000");
        set_address(&mut properties, "destination", "127.0.0.1:10000");
        HttpRequest {
            plugin,
            headers: Headers::from_pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/"),
            ]),
            body: Vec::new(),
            trailers: Headers::new(),
            properties,
            response: Some((Headers::from_pairs(&[(":status", "200")]), Vec::new())),
            latency: Duration::ZERO,
        }
    }

    /// The downstream peer (property `source.address`, and `source.port` when the text
    /// carries a port). Passed verbatim: `198.51.100.7:443`, `[2001:db8::1]:443`, or any
    /// text a test wants the plugin to see.
    pub fn source(mut self, addr: &str) -> Self {
        set_address(&mut self.properties, "source", addr);
        self
    }

    /// The address the downstream connected to (property `destination.address`).
    pub fn destination(mut self, addr: &str) -> Self {
        set_address(&mut self.properties, "destination", addr);
        self
    }

    /// Adds a request header (a repeated name adds another entry).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value.as_bytes());
        self
    }

    /// Adds a request header with a raw (possibly non-UTF-8) value.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.add(name, value);
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, authority: &str) -> Self {
        self.headers.replace(":authority", authority.as_bytes());
        self
    }

    /// Sets `:method`.
    pub fn method(mut self, method: &str) -> Self {
        self.headers.replace(":method", method.as_bytes());
        self
    }

    /// Sets `:path`.
    pub fn path(mut self, path: &str) -> Self {
        self.headers.replace(":path", path.as_bytes());
        self
    }

    /// The request body (delivered in one chunk with end of stream).
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Adds a request trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.add(name, value.as_bytes());
        self
    }

    /// Sets any other stream property (`key` with `.` separators, raw value).
    pub fn property(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties
            .insert(key.to_string(), value.as_ref().to_vec());
        self
    }

    /// Removes a stream property (e.g. `destination.address`, to model a host that has
    /// none).
    pub fn remove_property(mut self, key: &str) -> Self {
        self.properties.remove(key);
        self
    }

    /// Adds an upstream response header.
    pub fn response_header(mut self, name: &str, value: &str) -> Self {
        if let Some((h, _)) = &mut self.response {
            h.add(name, value.as_bytes());
        }
        self
    }

    /// Sets the upstream response status (default 200).
    pub fn response_status(mut self, status: u16) -> Self {
        if let Some((h, _)) = &mut self.response {
            h.replace(":status", status.to_string().as_bytes());
        }
        self
    }

    /// Sets the upstream response body.
    pub fn response_body(mut self, body: impl AsRef<[u8]>) -> Self {
        if let Some((_, b)) = &mut self.response {
            *b = body.as_ref().to_vec();
        }
        self
    }

    /// How long the upstream takes to answer: the clock moves by this much between the
    /// request and the response callbacks.
    pub fn upstream_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// No upstream response at all: the stream ends after the request callbacks (as when
    /// the client goes away).
    pub fn without_response(mut self) -> Self {
        self.response = None;
        self
    }

    /// Runs the request through the plugin.
    pub fn send(self) -> Result<HttpOutcome, Error> {
        let HttpRequest {
            plugin,
            headers,
            body,
            trailers,
            mut properties,
            response,
            latency,
        } = self;
        let first_log = plugin.log_count();
        let request_time = plugin.store.data().now_nanos;
        properties.insert(
            "request.time".into(),
            i64::try_from(request_time)
                .unwrap_or(i64::MAX)
                .to_le_bytes()
                .to_vec(),
        );
        let id = plugin.new_stream(StreamKind::Http)?;
        let n_headers = headers.len() as i32;
        let n_trailers = trailers.len() as i32;
        let body_len = body.len() as i32;
        let has_body = !body.is_empty();
        let has_trailers = !trailers.is_empty();
        if let Some(st) = plugin.stream_mut(id) {
            st.request_headers = headers;
            st.request_trailers = trailers;
            st.request_body = body;
            st.properties = properties;
        }
        let eos = i32::from(!has_body && !has_trailers);
        let action = plugin
            .call::<(i32, i32, i32), i32>(
                "proxy_on_request_headers",
                Cb::RequestHeaders,
                id,
                (id as i32, n_headers, eos),
            )?
            .map_or(Action::Continue, Action::from_code);
        let replied = |p: &mut Plugin| p.stream_mut(id).is_some_and(|s| s.local_reply.is_some());
        if has_body && !replied(plugin) {
            plugin.call::<(i32, i32, i32), i32>(
                "proxy_on_request_body",
                Cb::RequestBody,
                id,
                (id as i32, body_len, i32::from(!has_trailers)),
            )?;
        }
        if has_trailers && !replied(plugin) {
            plugin.call::<(i32, i32), i32>(
                "proxy_on_request_trailers",
                Cb::RequestTrailers,
                id,
                (id as i32, n_trailers),
            )?;
        }
        if let (Some((resp_headers, resp_body)), false) = (response, replied(plugin)) {
            plugin.advance_clock(latency);
            let n = resp_headers.len() as i32;
            let len = resp_body.len() as i32;
            let has_resp_body = !resp_body.is_empty();
            if let Some(st) = plugin.stream_mut(id) {
                st.response_headers = resp_headers;
                st.response_body = resp_body;
            }
            plugin.call::<(i32, i32, i32), i32>(
                "proxy_on_response_headers",
                Cb::ResponseHeaders,
                id,
                (id as i32, n, i32::from(!has_resp_body)),
            )?;
            if has_resp_body {
                plugin.call::<(i32, i32, i32), i32>(
                    "proxy_on_response_body",
                    Cb::ResponseBody,
                    id,
                    (id as i32, len, 1),
                )?;
            }
        }
        let state = plugin.finish_stream(id)?;
        let logs = plugin.logs_since(first_log);
        let state = state.ok_or_else(|| Error::Usage("stream state vanished".into()))?;
        Ok(HttpOutcome {
            context_id: id,
            request_action: action,
            request_headers: state.request_headers,
            response_headers: state.response_headers,
            local_reply: state.local_reply,
            filter_state: state.filter_state,
            properties: state.properties,
            logs,
        })
    }
}

impl Plugin {
    /// Starts building an HTTP request to send through the plugin.
    ///
    /// ```no_run
    /// # use host_harness::Harness;
    /// # let mut plugin = Harness::load("maps_plugin.wasm")?.configure(b"{}")?;
    /// let out = plugin
    ///     .http_request()
    ///     .source("198.51.100.7:443")
    ///     .authority("outlook.office365.com")
    ///     .send()?;
    /// println!("{:?}", out.header("x-maps-class"));
    /// # Ok::<(), host_harness::Error>(())
    /// ```
    pub fn http_request(&mut self) -> HttpRequest<'_> {
        HttpRequest::new(self)
    }
}
