//! HTTP streams through a plugin, the way Envoy's HTTP filter chain runs them.
//!
//! Two ways in:
//!
//! - [`HttpStream`] ([`Plugin::http_stream`]): the test drives each phase (request
//!   headers, body chunks, trailers; response headers, body chunks, trailers) and gets
//!   back what the filter answered ([`Verdict`]). A paused direction stays paused until
//!   the plugin calls `proxy_continue_stream` (0.1.0: `proxy_continue_request` /
//!   `proxy_continue_response`), for instance from an HTTP call's or a gRPC call's answer
//!   delivered while the stream waits ([`HttpStream::respond_to_http_call`]).
//! - [`HttpRequest`] ([`Plugin::http_request`]): a whole exchange in one call, built on
//!   the stream.
//!
//! What Envoy does, and the harness with it:
//!
//! - Request headers: `proxy_on_request_headers` (0.1.0: without end of stream). Envoy
//!   adds `x-request-id` when the request has none. Request trailers, the response maps
//!   and bodies are not there (NOT_FOUND / empty) until the stream reaches them.
//! - Each body chunk is its own `proxy_on_*_body` call. `Pause` there buffers the chunk
//!   (Envoy's `StopIterationAndBuffer`): the next callback sees the whole buffer, and
//!   `Continue` (or `proxy_continue_stream`) forwards it. `proxy_set_buffer_bytes` edits
//!   with Envoy's rules (prepend, replace all, append).
//! - A local reply sent while the request is in the filter goes through the response
//!   callbacks (`:status`, `content-length`, `content-type: text/plain` when there is a
//!   body, then the plugin's headers; the body in one chunk); the request stops there.
//!   One sent once the upstream response has arrived replaces it directly.
//! - The upstream cannot answer a request whose headers the filter still holds.
//! - At the end: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete` (in that order).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::abi::{Action, StreamType};
use crate::error::Error;
use crate::plugin::{AbiVersion, Cb, Plugin};
use crate::state::{Headers, LocalReply, LogEntry, StreamKind};

/// A request being built; [`HttpRequest::send`] runs it through the plugin.
///
/// Defaults: `:method GET`, `:scheme https`, `:path /`, no `:authority`; source
/// `203.0.113.1:50000`, destination `127.0.0.1:10000`; the upstream answers `:status 200`
/// after no time at all.
pub struct HttpRequest<'p> {
    plugin: &'p mut Plugin,
    headers: Headers,
    body: Vec<Vec<u8>>,
    trailers: Headers,
    properties: BTreeMap<String, Vec<u8>>,
    response: Option<(Headers, Vec<Vec<u8>>, Headers)>,
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
    /// The response headers as the plugin left them: the upstream's, or the local
    /// reply's after the response callbacks (empty when no response reached the filter).
    pub response_headers: Headers,
    /// The plugin's own response, if it sent one.
    pub local_reply: Option<LocalReply>,
    /// Filter state the plugin set (`set_envoy_filter_state`), by key.
    pub filter_state: BTreeMap<String, String>,
    /// Properties the plugin set on the stream (and those the request carried).
    pub properties: BTreeMap<String, Vec<u8>>,
    /// Log lines written while the request was processed.
    pub logs: Vec<LogEntry>,
    /// The request body as forwarded upstream (after the plugin's edits).
    pub request_body: Vec<u8>,
    /// The request trailers as the plugin left them (empty when there were none).
    pub request_trailers: Headers,
    /// The response body as sent downstream (the upstream's or the local reply's, after
    /// the plugin's edits).
    pub response_body: Vec<u8>,
    /// The response trailers as the plugin left them.
    pub response_trailers: Headers,
    /// Whether the request reached the upstream (false when the filter held it, or
    /// answered it itself).
    pub reached_upstream: bool,
    /// How many times the plugin cleared the route cache (`clear_route_cache`).
    pub route_cache_cleared: u32,
    /// Every phase the stream went through and what the filter answered, in order.
    pub phases: Vec<(Phase, Verdict)>,
}

impl HttpOutcome {
    /// A request header as the plugin left it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }

    /// A response header as the plugin left it.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.get(name)
    }
}

/// One step of an HTTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    /// An HTTP or gRPC call's answer delivered while the stream was open.
    Callout,
}

/// What the filter answered to one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded (the callback returned `Continue`, or the plugin resumed the stream).
    Continue,
    /// Held: the direction waits for `proxy_continue_stream`.
    Pause,
    /// The plugin answered the request itself (during this phase).
    LocalReply(LocalReply),
    /// The stream was already over in that direction (after a local reply): the filter
    /// was not called.
    Closed,
}

#[derive(Clone, Debug, Default)]
struct Direction {
    /// The filter has seen the headers.
    headers_seen: bool,
    /// The headers went past the filter.
    headers_forwarded: bool,
    paused: bool,
    /// End of stream reached the filter.
    ended: bool,
    forwarded_body: Vec<u8>,
}

/// An HTTP stream through the plugin, driven phase by phase. Dropping it without
/// [`HttpStream::finish`] ends it the same way (errors are then lost).
///
/// ```no_run
/// # use host_harness::{Harness, Headers};
/// # use host_harness::http::Verdict;
/// # let mut plugin = Harness::load("filter.wasm")?.configure(b"")?;
/// let mut stream = plugin.http_stream()?;
/// let v = stream.request_headers(
///     Headers::from_pairs(&[(":method", "POST"), (":path", "/"), (":authority", "a")]),
///     false,
/// )?;
/// assert_eq!(v, Verdict::Continue);
/// stream.request_body(b"hello ", false)?;
/// stream.request_body(b"world", true)?;
/// stream.response_headers(Headers::from_pairs(&[(":status", "200")]), true)?;
/// let outcome = stream.finish()?;
/// assert_eq!(outcome.request_body, b"hello world");
/// # Ok::<(), host_harness::Error>(())
/// ```
pub struct HttpStream<'p> {
    plugin: &'p mut Plugin,
    id: u32,
    first_log: usize,
    request: Direction,
    response: Direction,
    local_reply_sent: bool,
    request_action: Option<Action>,
    upstream_address: String,
    phases: Vec<(Phase, Verdict)>,
    finished: bool,
}

/// Envoy's `x-request-id` for the n-th stream (a UUID v4 in form).
fn request_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

impl<'p> HttpStream<'p> {
    fn open(plugin: &'p mut Plugin, properties: BTreeMap<String, Vec<u8>>) -> Result<Self, Error> {
        let first_log = plugin.log_count();
        let id = plugin.new_stream(StreamKind::Http)?;
        let now = plugin.store.data().now_nanos;
        let connection_id = {
            let s = plugin.store.data_mut();
            let c = s.next_connection_id;
            s.next_connection_id = c.wrapping_add(1);
            c
        };
        let mut props = BTreeMap::new();
        props.insert(
            "request.time".into(),
            i64::try_from(now)
                .unwrap_or(i64::MAX)
                .to_le_bytes()
                .to_vec(),
        );
        props.insert("request.protocol".into(), b"HTTP/1.1".to_vec());
        props.insert("connection.id".into(), connection_id.to_le_bytes().to_vec());
        props.insert("connection.mtls".into(), vec![0]);
        props.insert("connection.requested_server_name".into(), Vec::new());
        props.extend(properties);
        if let Some(st) = plugin.stream_mut(id) {
            st.properties = props;
        }
        Ok(HttpStream {
            plugin,
            id,
            first_log,
            request: Direction::default(),
            response: Direction::default(),
            local_reply_sent: false,
            request_action: None,
            upstream_address: "127.0.0.1:10001".into(),
            phases: Vec::new(),
            finished: false,
        })
    }

    /// The stream's context id.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The plugin (to read logs, metrics, calls while the stream is open).
    pub fn plugin(&mut self) -> &mut Plugin {
        self.plugin
    }

    /// Sets a stream property (`key` with `.` separators, raw value); it wins over the
    /// computed attribute of the same name.
    pub fn set_property(&mut self, key: &str, value: impl AsRef<[u8]>) {
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.properties
                .insert(key.to_string(), value.as_ref().to_vec());
        }
    }

    /// The address the upstream answers from (`upstream.address`/`upstream.port` once it
    /// has answered; default `127.0.0.1:10001`).
    pub fn set_upstream_address(&mut self, addr: &str) {
        self.upstream_address = addr.to_string();
    }

    /// Whether the filter holds the request.
    pub fn request_paused(&self) -> bool {
        self.request.paused
    }

    /// Whether the filter holds the response.
    pub fn response_paused(&self) -> bool {
        self.response.paused
    }

    /// Whether the request headers went past the filter (to the upstream).
    pub fn request_forwarded(&self) -> bool {
        self.request.headers_forwarded
    }

    /// The local reply the plugin sent, if any.
    pub fn local_reply(&mut self) -> Option<LocalReply> {
        self.plugin
            .stream_mut(self.id)
            .and_then(|s| s.local_reply.clone())
    }

    /// The request body forwarded upstream so far.
    pub fn upstream_request_body(&self) -> &[u8] {
        &self.request.forwarded_body
    }

    /// The response body forwarded downstream so far.
    pub fn downstream_response_body(&self) -> &[u8] {
        &self.response.forwarded_body
    }

    /// The request headers as they are now.
    pub fn current_request_headers(&mut self) -> Headers {
        self.plugin
            .stream_mut(self.id)
            .map(|s| s.request_headers.clone())
            .unwrap_or_default()
    }

    /// The response headers as they are now (`None` before the response).
    pub fn current_response_headers(&mut self) -> Option<Headers> {
        self.plugin
            .stream_mut(self.id)
            .and_then(|s| s.response_headers.clone())
    }

    fn record(&mut self, phase: Phase, verdict: Verdict) -> Verdict {
        self.phases.push((phase, verdict.clone()));
        verdict
    }

    /// The request headers arrive (`end_of_stream`: no body or trailers follow).
    pub fn request_headers(
        &mut self,
        mut headers: Headers,
        end_of_stream: bool,
    ) -> Result<Verdict, Error> {
        if self.local_reply_sent || self.request.headers_seen {
            return Ok(self.record(Phase::RequestHeaders, Verdict::Closed));
        }
        if !headers.contains("x-request-id") {
            headers.add("x-request-id", request_id(self.id).as_bytes());
        }
        let n = headers.len() as i32;
        let now = self.plugin.store.data().now_nanos;
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.request_headers = headers;
            if end_of_stream {
                st.request_end_nanos = Some(now);
            }
        }
        // Envoy's connection manager chooses the route before the filters run.
        self.choose_route();
        self.request.headers_seen = true;
        self.request.ended = end_of_stream;
        let id = self.id as i32;
        let code = if self.plugin.abi == AbiVersion::V0_1_0 {
            self.plugin.call::<(i32, i32), i32>(
                "proxy_on_request_headers",
                Cb::RequestHeaders01,
                self.id,
                (id, n),
            )?
        } else {
            self.plugin.call::<(i32, i32, i32), i32>(
                "proxy_on_request_headers",
                Cb::RequestHeaders,
                self.id,
                (id, n, i32::from(end_of_stream)),
            )?
        };
        let action = code.map_or(Action::Continue, Action::from_code);
        self.request_action = Some(action);
        let v = self.settle(StreamType::HttpRequest, action)?;
        Ok(self.record(Phase::RequestHeaders, v))
    }

    /// A request body chunk arrives (its own `proxy_on_request_body` call).
    pub fn request_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<Verdict, Error> {
        self.require_request_headers()?;
        if self.local_reply_sent || self.request.ended {
            return Ok(self.record(Phase::RequestBody, Verdict::Closed));
        }
        let now = self.plugin.store.data().now_nanos;
        let len = match self.plugin.stream_mut(self.id) {
            Some(st) => {
                st.request_body.extend_from_slice(chunk);
                st.request_body_seen = st.request_body_seen.saturating_add(chunk.len() as u64);
                if end_of_stream {
                    st.request_end_nanos = Some(now);
                }
                st.request_body.len() as i32
            }
            None => 0,
        };
        self.request.ended = end_of_stream;
        let action = self
            .plugin
            .call::<(i32, i32, i32), i32>(
                "proxy_on_request_body",
                Cb::RequestBody,
                self.id,
                (self.id as i32, len, i32::from(end_of_stream)),
            )?
            .map_or(Action::Continue, Action::from_code);
        let v = self.settle(StreamType::HttpRequest, action)?;
        Ok(self.record(Phase::RequestBody, v))
    }

    /// The request trailers arrive (they end the request).
    pub fn request_trailers(&mut self, trailers: Headers) -> Result<Verdict, Error> {
        self.require_request_headers()?;
        if self.local_reply_sent || self.request.ended {
            return Ok(self.record(Phase::RequestTrailers, Verdict::Closed));
        }
        let n = trailers.len() as i32;
        let now = self.plugin.store.data().now_nanos;
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.request_trailers = Some(trailers);
            st.request_end_nanos = Some(now);
        }
        self.request.ended = true;
        let action = self
            .plugin
            .call::<(i32, i32), i32>(
                "proxy_on_request_trailers",
                Cb::RequestTrailers,
                self.id,
                (self.id as i32, n),
            )?
            .map_or(Action::Continue, Action::from_code);
        let v = self.settle(StreamType::HttpRequest, action)?;
        Ok(self.record(Phase::RequestTrailers, v))
    }

    fn require_request_headers(&self) -> Result<(), Error> {
        if self.request.headers_seen {
            Ok(())
        } else {
            Err(Error::Usage(
                "the request headers come first (HttpStream::request_headers)".into(),
            ))
        }
    }

    fn require_response_headers(&self) -> Result<(), Error> {
        if self.response.headers_seen {
            Ok(())
        } else {
            Err(Error::Usage(
                "the response headers come first (HttpStream::response_headers)".into(),
            ))
        }
    }

    /// The upstream's response headers arrive. The request headers must have gone past
    /// the filter: an upstream cannot answer a request it never got ([`Error::Usage`]).
    pub fn response_headers(
        &mut self,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<Verdict, Error> {
        if self.local_reply_sent || self.response.headers_seen {
            return Ok(self.record(Phase::ResponseHeaders, Verdict::Closed));
        }
        if !self.request.headers_forwarded {
            return Err(Error::Usage(
                "the filter holds the request headers: the upstream has not received the \
                 request, so it cannot answer (continue the stream first)"
                    .into(),
            ));
        }
        let n = headers.len() as i32;
        let upstream = self.upstream_address.clone();
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.response_headers = Some(headers);
            for (k, v) in upstream_properties(&upstream) {
                st.properties.entry(k).or_insert(v);
            }
        }
        self.response.headers_seen = true;
        self.response.ended = end_of_stream;
        let action = self.call_response_headers(n, end_of_stream)?;
        let v = self.settle(StreamType::HttpResponse, action)?;
        Ok(self.record(Phase::ResponseHeaders, v))
    }

    fn call_response_headers(&mut self, n: i32, end_of_stream: bool) -> Result<Action, Error> {
        let id = self.id as i32;
        let code = if self.plugin.abi == AbiVersion::V0_1_0 {
            self.plugin.call::<(i32, i32), i32>(
                "proxy_on_response_headers",
                Cb::ResponseHeaders01,
                self.id,
                (id, n),
            )?
        } else {
            self.plugin.call::<(i32, i32, i32), i32>(
                "proxy_on_response_headers",
                Cb::ResponseHeaders,
                self.id,
                (id, n, i32::from(end_of_stream)),
            )?
        };
        Ok(code.map_or(Action::Continue, Action::from_code))
    }

    fn call_response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<Action, Error> {
        let len = match self.plugin.stream_mut(self.id) {
            Some(st) => {
                st.response_body.extend_from_slice(chunk);
                st.response_body_seen = st.response_body_seen.saturating_add(chunk.len() as u64);
                st.response_body.len() as i32
            }
            None => 0,
        };
        self.response.ended = end_of_stream;
        Ok(self
            .plugin
            .call::<(i32, i32, i32), i32>(
                "proxy_on_response_body",
                Cb::ResponseBody,
                self.id,
                (self.id as i32, len, i32::from(end_of_stream)),
            )?
            .map_or(Action::Continue, Action::from_code))
    }

    /// A response body chunk arrives (its own `proxy_on_response_body` call).
    pub fn response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> Result<Verdict, Error> {
        if self.local_reply_sent || self.response.ended {
            return Ok(self.record(Phase::ResponseBody, Verdict::Closed));
        }
        self.require_response_headers()?;
        let action = self.call_response_body(chunk, end_of_stream)?;
        let v = self.settle(StreamType::HttpResponse, action)?;
        Ok(self.record(Phase::ResponseBody, v))
    }

    /// The response trailers arrive (they end the response).
    pub fn response_trailers(&mut self, trailers: Headers) -> Result<Verdict, Error> {
        if self.local_reply_sent || self.response.ended {
            return Ok(self.record(Phase::ResponseTrailers, Verdict::Closed));
        }
        self.require_response_headers()?;
        let n = trailers.len() as i32;
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.response_trailers = Some(trailers);
        }
        self.response.ended = true;
        let action = self
            .plugin
            .call::<(i32, i32), i32>(
                "proxy_on_response_trailers",
                Cb::ResponseTrailers,
                self.id,
                (self.id as i32, n),
            )?
            .map_or(Action::Continue, Action::from_code);
        let v = self.settle(StreamType::HttpResponse, action)?;
        Ok(self.record(Phase::ResponseTrailers, v))
    }

    /// Answers an HTTP call the plugin dispatched, while this stream is open (Envoy
    /// delivers callout answers to the dispatching context, also while the stream is
    /// paused). Returns what became of the stream: `Continue` if the plugin resumed a
    /// paused direction, `LocalReply` if it answered, else `Pause` (still held) or
    /// `Continue` (nothing was held).
    pub fn respond_to_http_call(
        &mut self,
        token: u32,
        headers: &[(&str, &str)],
        body: &[u8],
        trailers: &[(&str, &str)],
    ) -> Result<Verdict, Error> {
        self.plugin.deliver_http_call_response(
            token,
            Headers::from_pairs(headers),
            body.to_vec(),
            Headers::from_pairs(trailers),
        )?;
        let v = self.settle_callout()?;
        Ok(self.record(Phase::Callout, v))
    }

    /// Runs `f` on the plugin (e.g. to answer a gRPC call with
    /// [`Plugin::grpc_receive`]), then lets the stream act on what the plugin did (resume,
    /// local reply), as after [`HttpStream::respond_to_http_call`].
    pub fn deliver(
        &mut self,
        f: impl FnOnce(&mut Plugin) -> Result<(), Error>,
    ) -> Result<Verdict, Error> {
        f(self.plugin)?;
        let v = self.settle_callout()?;
        Ok(self.record(Phase::Callout, v))
    }

    fn settle_callout(&mut self) -> Result<Verdict, Error> {
        if let Some(reply) = self.take_pending_local_reply() {
            self.run_local_reply(&reply)?;
            return Ok(Verdict::LocalReply(reply));
        }
        let was_paused = self.request.paused || self.response.paused;
        self.apply_resumes();
        if was_paused && !(self.request.paused || self.response.paused) {
            Ok(Verdict::Continue)
        } else if self.request.paused || self.response.paused {
            Ok(Verdict::Pause)
        } else {
            Ok(Verdict::Continue)
        }
    }

    fn take_pending_local_reply(&mut self) -> Option<LocalReply> {
        let st = self.plugin.stream_mut(self.id)?;
        if !st.local_reply_pending {
            return None;
        }
        st.local_reply_pending = false;
        st.local_reply.clone()
    }

    /// After a callback: a local reply ends the stream; otherwise the direction goes on
    /// when the callback continued or the plugin resumed it.
    fn settle(&mut self, dir: StreamType, action: Action) -> Result<Verdict, Error> {
        if let Some(reply) = self.take_pending_local_reply() {
            self.run_local_reply(&reply)?;
            return Ok(Verdict::LocalReply(reply));
        }
        let resumed = self.take_resume(dir);
        self.apply_resumes();
        if action == Action::Continue || resumed {
            self.forward(dir);
            Ok(Verdict::Continue)
        } else {
            self.direction(dir).paused = true;
            Ok(Verdict::Pause)
        }
    }

    fn direction(&mut self, dir: StreamType) -> &mut Direction {
        if dir == StreamType::HttpResponse {
            &mut self.response
        } else {
            &mut self.request
        }
    }

    fn take_resume(&mut self, dir: StreamType) -> bool {
        match self.plugin.stream_mut(self.id) {
            Some(st) if dir == StreamType::HttpResponse => std::mem::take(&mut st.resume_response),
            Some(st) => std::mem::take(&mut st.resume_request),
            None => false,
        }
    }

    /// `proxy_continue_stream` on a paused direction forwards what it holds.
    fn apply_resumes(&mut self) {
        for dir in [StreamType::HttpRequest, StreamType::HttpResponse] {
            if self.take_resume(dir) && self.direction(dir).paused {
                self.forward(dir);
            }
        }
    }

    /// Chooses the route from the request headers as they are now (the harness's route
    /// table, if it has one).
    fn choose_route(&mut self) {
        let Some(routes) = self.plugin.store.data().routes.clone() else {
            return;
        };
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.route = routes(&st.request_headers);
            st.route_stale = false;
        }
    }

    /// The route the request takes: the one chosen when the headers arrived, or chosen
    /// again from the current headers when the request headers went upstream after the
    /// plugin cleared the route cache or changed the request headers (as Envoy's router
    /// does). `None` without a route table ([`crate::Harness::routes`]) or when no route
    /// matches.
    pub fn route_name(&mut self) -> Option<String> {
        self.plugin
            .stream_mut(self.id)
            .and_then(|s| s.route.clone())
    }

    fn forward(&mut self, dir: StreamType) {
        if dir == StreamType::HttpRequest && !self.request.headers_forwarded {
            let stale = self
                .plugin
                .stream_mut(self.id)
                .is_some_and(|s| s.route_stale);
            if stale {
                self.choose_route();
            }
        }
        let held = match self.plugin.stream_mut(self.id) {
            Some(st) if dir == StreamType::HttpResponse => std::mem::take(&mut st.response_body),
            Some(st) => std::mem::take(&mut st.request_body),
            None => Vec::new(),
        };
        let d = self.direction(dir);
        d.paused = false;
        d.headers_forwarded = true;
        d.forwarded_body.extend_from_slice(&held);
    }

    /// Envoy's local reply from a decoder filter: it runs through the encoder filters,
    /// this one included, unless the upstream response has already arrived (then it
    /// replaces it directly).
    fn run_local_reply(&mut self, reply: &LocalReply) -> Result<(), Error> {
        self.local_reply_sent = true;
        self.request.paused = false;
        self.request.ended = true;
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.request_body.clear();
        }
        let mut headers = Headers::new();
        headers.add(":status", reply.status.to_string().as_bytes());
        if !reply.body.is_empty() {
            headers.add("content-length", reply.body.len().to_string().as_bytes());
            headers.add("content-type", b"text/plain");
        }
        for (k, v) in reply.headers.iter() {
            headers.add(k, v);
        }
        let through_filter = !self.response.headers_seen;
        let n = headers.len() as i32;
        if let Some(st) = self.plugin.stream_mut(self.id) {
            st.response_headers = Some(headers);
            st.response_body.clear();
            st.response_trailers = None;
        }
        self.response = Direction {
            headers_seen: true,
            headers_forwarded: true,
            ended: true,
            ..Direction::default()
        };
        if !through_filter {
            self.response.forwarded_body = reply.body.clone();
            return Ok(());
        }
        self.call_response_headers(n, reply.body.is_empty())?;
        if !reply.body.is_empty() {
            self.call_response_body(&reply.body, true)?;
        }
        let body = match self.plugin.stream_mut(self.id) {
            Some(st) => {
                st.local_reply_pending = false;
                std::mem::take(&mut st.response_body)
            }
            None => Vec::new(),
        };
        self.response.forwarded_body = body;
        Ok(())
    }

    /// Ends the stream the way Envoy does (`proxy_on_log`, `proxy_on_done`,
    /// `proxy_on_delete`) and says what happened.
    pub fn finish(mut self) -> Result<HttpOutcome, Error> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<HttpOutcome, Error> {
        self.finished = true;
        let state = self.plugin.finish_stream(self.id)?;
        let logs = self.plugin.logs_since(self.first_log);
        let state = state.ok_or_else(|| Error::Usage("stream state vanished".into()))?;
        Ok(HttpOutcome {
            context_id: self.id,
            request_action: self.request_action.unwrap_or(Action::Continue),
            request_headers: state.request_headers,
            response_headers: state.response_headers.unwrap_or_default(),
            local_reply: state.local_reply,
            filter_state: state.filter_state,
            properties: state.properties,
            logs,
            request_body: std::mem::take(&mut self.request.forwarded_body),
            request_trailers: state.request_trailers.unwrap_or_default(),
            response_body: std::mem::take(&mut self.response.forwarded_body),
            response_trailers: state.response_trailers.unwrap_or_default(),
            reached_upstream: self.request.headers_forwarded && !self.local_reply_sent,
            route_cache_cleared: state.route_cache_cleared,
            phases: std::mem::take(&mut self.phases),
        })
    }
}

impl Drop for HttpStream<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish_inner();
        }
    }
}

fn upstream_properties(addr: &str) -> Vec<(String, Vec<u8>)> {
    let mut props = BTreeMap::new();
    set_address(&mut props, "upstream", addr);
    props.into_iter().collect()
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
            response: Some((
                Headers::from_pairs(&[(":status", "200")]),
                Vec::new(),
                Headers::new(),
            )),
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

    /// The request body (delivered in one chunk).
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = vec![body.as_ref().to_vec()];
        self
    }

    /// Adds a request body chunk (each chunk is its own `proxy_on_request_body` call).
    pub fn body_chunk(mut self, chunk: impl AsRef<[u8]>) -> Self {
        self.body.push(chunk.as_ref().to_vec());
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
        if let Some((h, _, _)) = &mut self.response {
            h.add(name, value.as_bytes());
        }
        self
    }

    /// Sets the upstream response status (default 200).
    pub fn response_status(mut self, status: u16) -> Self {
        if let Some((h, _, _)) = &mut self.response {
            h.replace(":status", status.to_string().as_bytes());
        }
        self
    }

    /// Sets the upstream response body (one chunk).
    pub fn response_body(mut self, body: impl AsRef<[u8]>) -> Self {
        if let Some((_, b, _)) = &mut self.response {
            *b = vec![body.as_ref().to_vec()];
        }
        self
    }

    /// Adds an upstream response body chunk.
    pub fn response_body_chunk(mut self, chunk: impl AsRef<[u8]>) -> Self {
        if let Some((_, b, _)) = &mut self.response {
            b.push(chunk.as_ref().to_vec());
        }
        self
    }

    /// Adds an upstream response trailer.
    pub fn response_trailer(mut self, name: &str, value: &str) -> Self {
        if let Some((_, _, t)) = &mut self.response {
            t.add(name, value.as_bytes());
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

    /// Runs the request through the plugin on an [`HttpStream`]: request headers, body
    /// chunks, trailers; then, if the request reached the upstream (the filter did not
    /// hold it or answer it), the clock moves by the upstream latency and the response
    /// goes through; then the end of the stream.
    pub fn send(self) -> Result<HttpOutcome, Error> {
        let HttpRequest {
            plugin,
            headers,
            body,
            trailers,
            properties,
            response,
            latency,
        } = self;
        let body: Vec<Vec<u8>> = body.into_iter().filter(|c| !c.is_empty()).collect();
        let mut stream = HttpStream::open(plugin, properties)?;
        let has_trailers = !trailers.is_empty();
        stream.request_headers(headers, body.is_empty() && !has_trailers)?;
        let chunks = body.len();
        for (i, chunk) in body.iter().enumerate() {
            stream.request_body(chunk, i + 1 == chunks && !has_trailers)?;
        }
        if has_trailers {
            stream.request_trailers(trailers)?;
        }
        if let Some((resp_headers, resp_body, resp_trailers)) = response {
            if stream.request_forwarded() && !stream.local_reply_sent {
                stream.plugin.advance_clock(latency);
                let resp_body: Vec<Vec<u8>> =
                    resp_body.into_iter().filter(|c| !c.is_empty()).collect();
                let has_resp_trailers = !resp_trailers.is_empty();
                stream
                    .response_headers(resp_headers, resp_body.is_empty() && !has_resp_trailers)?;
                let n = resp_body.len();
                for (i, chunk) in resp_body.iter().enumerate() {
                    stream.response_body(chunk, i + 1 == n && !has_resp_trailers)?;
                }
                if has_resp_trailers {
                    stream.response_trailers(resp_trailers)?;
                }
            }
        }
        stream.finish()
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

    /// Opens an HTTP stream to drive phase by phase ([`HttpStream`]); source
    /// `203.0.113.1:50000`, destination `127.0.0.1:10000` (change them with
    /// [`HttpStream::set_property`] or [`Plugin::http_stream_with`]).
    pub fn http_stream(&mut self) -> Result<HttpStream<'_>, Error> {
        let mut properties = BTreeMap::new();
        set_address(&mut properties, "source", "203.0.113.1:50000");
        set_address(&mut properties, "destination", "127.0.0.1:10000");
        HttpStream::open(self, properties)
    }

    /// Opens an HTTP stream with these stream properties (and the connection and
    /// request defaults, but no source or destination unless `properties` has them:
    /// `source.address`, `source.port`, ...).
    pub fn http_stream_with(
        &mut self,
        properties: BTreeMap<String, Vec<u8>>,
    ) -> Result<HttpStream<'_>, Error> {
        HttpStream::open(self, properties)
    }
}
