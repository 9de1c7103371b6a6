//! What the host keeps for one plugin instance (the wasmtime store's data): contexts and
//! their header maps, buffers and properties, logs, metrics, shared data, the clock.
//!
//! Invariant: nothing here trusts the guest. Sizes and ids that come from the guest are
//! looked up, never used as indexes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use wasmtime::{Memory, StoreLimits, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::abi::{LogLevel, MetricKind, StreamType};

/// A route table: the name of the route a request with these headers takes (`None`: no
/// route).
pub type Routes = std::sync::Arc<dyn Fn(&Headers) -> Option<String> + Send + Sync>;

/// Filter state keys Envoy 1.40 has an object factory for, so that its
/// `set_envoy_filter_state` accepts them (checked in Envoy by the conformance case
/// `set_envoy_filter_state`; a key without a factory is `NOT_FOUND` there and here).
pub const ENVOY_FILTER_STATE_KEYS: &[&str] = &[
    "envoy.hashable_string",
    "envoy.network.application_protocols",
    "envoy.network.ip",
    "envoy.network.transport_socket.original_dst_address",
    "envoy.network.upstream_server_name",
    "envoy.network.upstream_subject_alt_names",
    "envoy.string",
    "envoy.tcp_proxy.cluster",
    "envoy.tcp_proxy.disable_tunneling",
    "envoy.tcp_proxy.per_connection_idle_timeout_ms",
    "envoy.upstream.dynamic_host",
    "envoy.upstream.dynamic_port",
];

/// One line the plugin logged (`proxy_log`, or a write to stdout/stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Severity.
    pub level: LogLevel,
    /// The context that was active (0 when none was, e.g. during `_initialize`).
    pub context_id: u32,
    /// The text (invalid UTF-8 replaced).
    pub message: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] [ctx {}] {}",
            self.level, self.context_id, self.message
        )
    }
}

/// An HTTP header map (or trailers) as the host holds it: ordered, names lower-case,
/// values raw bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty map.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Builds a map from pairs (names are lower-cased).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.add(k.as_ref(), v.as_ref());
        }
        h
    }

    /// The first value of `name` as text; `None` when absent or not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name`, raw.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Names (lower-case) that start with `prefix` (case-insensitive), in order.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<&str> {
        let prefix = prefix.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry.
    pub fn add(&mut self, name: &str, value: &[u8]) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_vec()));
    }

    /// Replaces every value of `name` by one (adds it when absent).
    pub fn replace(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        if let Some(pos) = self.entries.iter().position(|(k, _)| *k == name) {
            if let Some(slot) = self.entries.get_mut(pos) {
                slot.1 = value.to_vec();
            }
            let mut i = 0usize;
            self.entries.retain(|(k, _)| {
                let keep = *k != name || i == pos;
                i += 1;
                keep
            });
        } else {
            self.entries.push((name, value.to_vec()));
        }
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != name);
    }

    pub(crate) fn pairs(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }
}

/// A response the plugin sent itself with `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status code.
    pub status: u32,
    /// Envoy's "response code details" string.
    pub details: String,
    /// Response body.
    pub body: Vec<u8>,
    /// Extra response headers.
    pub headers: Headers,
    /// gRPC status, when the plugin set one (`u32::MAX`, i.e. -1, means none).
    pub grpc_status: u32,
}

/// An outgoing HTTP call a plugin dispatched with `proxy_http_call`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the host returned.
    pub token: u32,
    /// The context that dispatched it.
    pub context_id: u32,
    /// Upstream (cluster) name.
    pub upstream: String,
    /// Request headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
}

/// A foreign function call the plugin made (`proxy_call_foreign_function`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignCall {
    /// The context that made it.
    pub context_id: u32,
    /// Function name.
    pub name: String,
    /// Raw argument bytes.
    pub arguments: Vec<u8>,
}

/// One metric the plugin defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Name as defined by the plugin (Envoy shows it with a `wasmcustom.` prefix).
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Current value (counters, gauges); number of samples for histograms.
    pub value: u64,
    /// Every value recorded into a histogram, in order.
    pub samples: Vec<u64>,
}

/// The metrics of one plugin instance.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    list: Vec<Metric>,
}

impl Metrics {
    /// The metric called `name`.
    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.list.iter().find(|m| m.name == name)
    }

    /// A counter's value; `None` when no counter of that name exists.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.get(name)
            .filter(|m| m.kind == MetricKind::Counter)
            .map(|m| m.value)
    }

    /// A gauge's value.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        self.get(name)
            .filter(|m| m.kind == MetricKind::Gauge)
            .map(|m| m.value)
    }

    /// A histogram's recorded samples.
    pub fn histogram(&self, name: &str) -> Option<&[u64]> {
        self.get(name)
            .filter(|m| m.kind == MetricKind::Histogram)
            .map(|m| m.samples.as_slice())
    }

    /// All metrics, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = &Metric> {
        self.list.iter()
    }

    /// Number of metrics defined.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none is defined.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Defines (or finds) a metric and returns its id. Ids carry the kind in their low two
    /// bits, as in Envoy.
    pub(crate) fn define(&mut self, kind: MetricKind, name: &str) -> u32 {
        let index = match self
            .list
            .iter()
            .position(|m| m.name == name && m.kind == kind)
        {
            Some(i) => i,
            None => {
                self.list.push(Metric {
                    name: name.to_string(),
                    kind,
                    value: 0,
                    samples: Vec::new(),
                });
                self.list.len() - 1
            }
        };
        (u32::try_from(index).unwrap_or(u32::MAX >> 2) << 2) | kind.code()
    }

    pub(crate) fn by_id(&mut self, id: u32) -> Option<&mut Metric> {
        let metric = self.list.get_mut((id >> 2) as usize)?;
        (metric.kind.code() == id & 3).then_some(metric)
    }
}

/// A memory fault the guest caused in a hostcall; reported when the callback returns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    pub hostcall: &'static str,
    pub offset: u64,
    pub len: u64,
    pub memory_size: u64,
}

/// What kind of stream a context serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Http,
    Tcp,
}

/// Per-stream state: one HTTP request/response pair or one TCP connection.
///
/// Header maps and trailers are `None` until the stream has reached them (Envoy: a map
/// the stream has not seen yet is not there), bodies hold the chunk (or the buffered
/// chunks, after a `Pause`) the current callback sees.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub kind: StreamKind,
    pub request_headers: Headers,
    pub request_trailers: Option<Headers>,
    pub response_headers: Option<Headers>,
    pub response_trailers: Option<Headers>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    /// Request body bytes received so far (for `request.size`).
    pub request_body_seen: u64,
    /// Response body bytes received so far (for `response.size`).
    pub response_body_seen: u64,
    pub downstream_data: Vec<u8>,
    pub upstream_data: Vec<u8>,
    pub properties: BTreeMap<String, Vec<u8>>,
    pub local_reply: Option<LocalReply>,
    /// A local reply the host has not acted on yet (set by `proxy_send_local_response`).
    pub local_reply_pending: bool,
    pub filter_state: BTreeMap<String, String>,
    pub continued: Vec<StreamType>,
    pub closed: Vec<StreamType>,
    /// `proxy_continue_stream` (or 0.1.0's `proxy_continue_request`) since the host last
    /// looked.
    pub resume_request: bool,
    pub resume_response: bool,
    /// How many times the plugin called `clear_route_cache`.
    pub route_cache_cleared: u32,
    /// The route the stream info holds (property `xds.route_name`), when the harness has
    /// a route table ([`crate::Harness::routes`]).
    pub route: Option<String>,
    /// The route must be chosen again before the request goes upstream: the plugin
    /// cleared the route cache, or changed the request headers (Envoy's Wasm filter clears
    /// the route cache on every request header change).
    pub route_stale: bool,
    /// Virtual time the stream started, nanoseconds since the epoch.
    pub start_nanos: u64,
    /// Virtual time the request ended (for `request.duration`).
    pub request_end_nanos: Option<u64>,
}

impl StreamState {
    pub fn new(kind: StreamKind) -> StreamState {
        StreamState {
            kind,
            request_headers: Headers::new(),
            request_trailers: None,
            response_headers: None,
            response_trailers: None,
            request_body: Vec::new(),
            response_body: Vec::new(),
            request_body_seen: 0,
            response_body_seen: 0,
            downstream_data: Vec::new(),
            upstream_data: Vec::new(),
            properties: BTreeMap::new(),
            local_reply: None,
            local_reply_pending: false,
            filter_state: BTreeMap::new(),
            continued: Vec::new(),
            closed: Vec::new(),
            resume_request: false,
            resume_response: false,
            route_cache_cleared: 0,
            route: None,
            route_stale: false,
            start_nanos: 0,
            request_end_nanos: None,
        }
    }
}

/// A gRPC call or stream a plugin opened (`proxy_grpc_call`, `proxy_grpc_stream`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    /// The token the host returned.
    pub token: u32,
    /// The context that opened it (the callbacks go there).
    pub context_id: u32,
    /// The upstream: the cluster name, or the serialized `GrpcService` Envoy receives.
    pub service: Vec<u8>,
    /// The gRPC service name, e.g. `helloworld.Greeter`.
    pub service_name: String,
    /// The method, e.g. `SayHello`.
    pub method: String,
    /// Initial metadata the plugin sent.
    pub initial_metadata: Headers,
    /// Messages the plugin sent (a unary call's request is the only one).
    pub messages: Vec<Vec<u8>>,
    /// Timeout in milliseconds (unary calls; 0 for streams).
    pub timeout_ms: u32,
    /// A stream (`proxy_grpc_stream`) rather than a unary call.
    pub streaming: bool,
    /// The plugin half-closed the stream (`proxy_grpc_send` with end of stream, or
    /// `proxy_grpc_close`).
    pub half_closed: bool,
    /// The plugin cancelled it (`proxy_grpc_cancel`), or it ended: no more callbacks.
    pub finished: bool,
}

/// What a gRPC or HTTP callback is being handed (the buffers and maps the plugin may read
/// while the callback runs).
#[derive(Clone, Debug, Default)]
pub(crate) struct CalloutData {
    pub initial_metadata: Option<Headers>,
    pub trailing_metadata: Option<Headers>,
    pub message: Option<Vec<u8>>,
    pub status: Option<(u32, Vec<u8>)>,
}
/// The store's resource limits, remembering the last linear-memory growth they refused
/// (so that the trap that usually follows, an allocator's `unreachable`, can say why).
pub(crate) struct Limits {
    pub inner: StoreLimits,
    /// Bytes a refused `memory.grow` asked for, and the limit it met.
    pub refused_memory: Option<(usize, usize)>,
    pub memory_limit: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if !ok {
            self.refused_memory = Some((desired, self.memory_limit));
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The store's data: everything the host functions see.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub limits: Limits,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    /// The context whose callback is running (Envoy's "current context").
    pub active_context: u32,
    /// The context hostcalls act on (`proxy_set_effective_context` may change it).
    pub effective_context: u32,
    pub root_context: u32,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// Properties every context sees (plugin_root_id, plugin_name, ...).
    pub properties: BTreeMap<String, Vec<u8>>,
    pub streams: HashMap<u32, StreamState>,
    pub logs: Vec<LogEntry>,
    pub log_level: LogLevel,
    pub metrics: Metrics,
    pub tick_period_ms: u32,
    /// Virtual wall clock, nanoseconds since the Unix epoch.
    pub now_nanos: u64,
    /// Virtual monotonic clock, nanoseconds.
    pub monotonic_nanos: u64,
    pub fault: Option<Fault>,
    pub shared_data: HashMap<String, (Vec<u8>, u32)>,
    pub queues: Vec<(String, VecDeque<Vec<u8>>)>,
    pub http_calls: Vec<HttpCall>,
    pub next_token: u32,
    pub foreign_calls: Vec<ForeignCall>,
    pub foreign_arguments: Vec<u8>,
    pub http_call_response: Option<(Headers, Vec<u8>, Headers)>,
    /// Set by `proxy_done`.
    pub done_called: bool,
    pub grpc_calls: Vec<GrpcCall>,
    pub callout: CalloutData,
    /// Queue ids with data enqueued since the host last delivered `proxy_on_queue_ready`,
    /// with the context that registered the queue.
    pub queue_ready: Vec<(u32, u32)>,
    /// The root context that registered each queue (index = queue id - 1).
    pub queue_owner: Vec<u32>,
    /// Next `connection.id`.
    pub next_connection_id: u64,
    /// `proxy_on_log` is running (Envoy hands it the access log's header maps).
    pub in_log: bool,
    /// The route table: the route name for a request's headers.
    pub routes: Option<Routes>,
    /// Filter state keys `set_envoy_filter_state` accepts (Envoy: keys with an object
    /// factory).
    pub filter_state_keys: std::collections::BTreeSet<String>,
}

impl HostState {
    pub fn new(wasi: WasiP1Ctx, limits: Limits, now_nanos: u64) -> HostState {
        HostState {
            wasi,
            limits,
            memory: None,
            alloc: None,
            active_context: 0,
            effective_context: 0,
            root_context: 0,
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            properties: BTreeMap::new(),
            streams: HashMap::new(),
            logs: Vec::new(),
            log_level: LogLevel::Trace,
            metrics: Metrics::default(),
            tick_period_ms: 0,
            now_nanos,
            monotonic_nanos: 1_000_000_000,
            fault: None,
            shared_data: HashMap::new(),
            queues: Vec::new(),
            http_calls: Vec::new(),
            next_token: 1,
            foreign_calls: Vec::new(),
            foreign_arguments: Vec::new(),
            http_call_response: None,
            done_called: false,
            grpc_calls: Vec::new(),
            callout: CalloutData::default(),
            queue_ready: Vec::new(),
            queue_owner: Vec::new(),
            next_connection_id: 1,
            in_log: false,
            routes: None,
            filter_state_keys: ENVOY_FILTER_STATE_KEYS
                .iter()
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// The stream state hostcalls act on, if the effective context is a stream.
    pub fn stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.effective_context)
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        self.logs.push(LogEntry {
            level,
            context_id: self.active_context,
            message,
        });
    }
}
