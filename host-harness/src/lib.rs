//! # host-harness: run proxy-wasm plugins the way Envoy does, without Envoy
//!
//! An embedding of wasmtime (with WASI preview 1) that implements the host side of the
//! proxy-wasm ABI ([0.1.0], [0.2.0] and [0.2.1]) closely enough to run any proxy-wasm
//! HTTP or network filter as Envoy 1.40 runs it: for tests, for replaying traffic and
//! for benchmarks. It knows nothing of any particular plugin.
//!
//! ```text
//!   .wasm ──Harness::load──▶ Harness ──configure(bytes)──▶ Plugin
//!           compile; ABI marker   (module, settings:   _initialize/_start, root context,
//!           (0.1.0/0.2.0/0.2.1);  root id, properties, vm_start, on_configure
//!           hostcalls per version routes, limits)
//!
//!   Plugin ──http_stream()──▶ HttpStream ── request_headers / request_body / request_trailers
//!                              (one context)   response_headers / response_body / response_trailers
//!                                 │            each phase ──▶ Verdict: Continue | Pause | LocalReply
//!                                 │            respond_to_http_call / deliver(grpc_*)  (mid-stream)
//!                                 └─finish()──▶ HttpOutcome  (on_log, on_done, on_delete)
//!   Plugin ──http_request()…send()──▶ HttpOutcome          (a whole exchange on a stream)
//!   Plugin ──tcp_connection()…──▶ ConnectionOutcome
//!   Plugin ── tick/advance, grpc_*, deliver_foreign_function, shared data and queues
//!
//!   guest ──hostcall──▶ hostcalls.rs ──checked slices──▶ state.rs (HostState)
//!                                       └─ attributes.rs (Envoy's attributes, computed)
//! ```
//!
//! | module | concept |
//! |---|---|
//! | [`abi`] | ABI constants, the header-pairs encoding, Envoy's filter-state argument |
//! | `hostcalls` | the `env.proxy_*` functions (plus WASI `fd_write`, `clock_time_get`) |
//! | `attributes` | Envoy's standard attributes as `proxy_get_property` serves them |
//! | [`state`] | what the host keeps per instance: contexts, headers, calls, logs, metrics |
//! | [`plugin`] | [`Harness`] (a compiled module), [`Plugin`] (a configured instance), [`AbiVersion`]; gRPC, foreign-function and tick delivery |
//! | [`http`] | HTTP streams: [`HttpStream`] phase by phase, [`HttpRequest`] → [`HttpOutcome`] |
//! | [`tcp`] | one TCP connection through the filter: [`TcpConnection`] → [`ConnectionOutcome`] |
//!
//! ## What it copies from Envoy 1.40
//!
//! Each of these is checked by a conformance filter (`host-harness/conformance`) whose
//! case table (`conformance/cases.txt`) runs in the harness (`tests/conformance.rs`) and
//! in a real Envoy (`e2e/test_conformance.py`, `make e2e-conformance`):
//!
//! - **Stream events.** Each phase continues, pauses or ends with a local reply. A paused
//!   direction resumes on `proxy_continue_stream` (0.1.0: `proxy_continue_request` /
//!   `_response`), also from an HTTP call's or gRPC call's answer delivered mid-stream.
//!   Body chunks arrive in their own callbacks (`Pause` buffers them); trailers in their
//!   own callbacks; a map the stream does not hold yet is `BAD_ARGUMENT`.
//! - **Local replies** pass through the filter's own response callbacks.
//! - **Stream end:** `proxy_on_log`, `proxy_on_done`, `proxy_on_delete` (TCP: done, log,
//!   delete).
//! - **Attributes:** `request.*`, `response.*`, `connection.*`, `upstream.*`, `source.*`,
//!   `destination.*`, `plugin_*`, `xds.route_name` (from a route table,
//!   [`Harness::routes`]), `filter_state.<key>`; anything else set by the test.
//! - **Routing:** the route is chosen when the request headers arrive and again when they
//!   go upstream if the plugin cleared the route cache *or changed a request header*
//!   (Envoy's Wasm filter clears the route cache on every request header change).
//! - **Calls:** HTTP calls (`proxy_http_call`) and gRPC calls and streams
//!   (`proxy_grpc_call`/`_stream`/`_send`/`_close`/`_cancel`) are recorded
//!   ([`HttpCall`], [`GrpcCall`]) and answered by the test, to the context that made
//!   them; a stream's calls die with it. A unary gRPC call's answer comes without
//!   metadata (Envoy gives unary calls none); the gRPC metadata maps outside the callback
//!   that hands them over are `BAD_ARGUMENT`, and `proxy_get_status` outside
//!   `proxy_on_grpc_close` has no message (all measured against a real gRPC server).
//! - **Shared data and queues:** `proxy_on_queue_ready` runs on the registering root
//!   context after the callback that enqueued.
//! - **Foreign functions:** `set_envoy_filter_state` (only keys Envoy has an object factory
//!   for, [`state::ENVOY_FILTER_STATE_KEYS`]; others `NOT_FOUND`), `clear_route_cache`;
//!   unknown functions `NOT_FOUND`. [`Plugin::deliver_foreign_function`] calls
//!   `proxy_on_foreign_function`. No foreign function of Envoy 1.40 calls back: all of
//!   them (`compress`, `uncompress`, `sign`, `verify_signature`, `set_envoy_filter_state`,
//!   `clear_route_cache`, `declare_property`, `expr_create`/`_evaluate`/`_delete`) answer
//!   synchronously, and only Envoy's own unit tests call `onForeignFunction`; so that
//!   delivery is not checked against Envoy (it is what a host with an asynchronous
//!   foreign function would do).
//! - **ABI versions:** 0.1.0 modules get two-argument header callbacks and
//!   `proxy_get_configuration`, `proxy_continue_request`/`_response`,
//!   `proxy_clear_route_cache`; 0.2.x get `proxy_continue_stream`/`proxy_close_stream`;
//!   only 0.2.1 gets `proxy_get_log_level`. A module importing a hostcall its version does
//!   not get is refused, as Envoy refuses to load it ([`AbiVersion::provides`]). Envoy
//!   1.40 loads and runs 0.1.0 modules (checked by the e2e run).
//!
//! ## Where it differs from Envoy
//!
//! - No network, no router, no upstream: the test plays the upstream, the route table
//!   (a function of the headers) and the answers to calls. What Envoy itself adds to an
//!   answer is the test's to supply; e.g. Envoy's gRPC client appends the response code
//!   details to the upstream's `grpc-message` (`denied{via_upstream}`), and reports an
//!   unreachable cluster as status 14 with its own message. On a gRPC stream (measured
//!   with a grpcio server, `tests/conformance.rs` `grpc_echo`): the initial metadata is
//!   the server's response headers (`:status`, `content-type`, `grpc-accept-encoding`,
//!   ...) plus the `x-envoy-upstream-service-time` Envoy adds; the trailing metadata
//!   holds `grpc-status` and `grpc-message` besides the server's own; an OK close whose
//!   `grpc-message` is empty has the details alone as its message (`via_upstream`).
//! - Envoy delivers a request body as the network delivers it (chunks may merge); the
//!   harness delivers exactly the chunks the test gives.
//! - Filter-state values are kept as text; only the address keys' values are validated.
//! - One instance runs one stream at a time, on one thread; the clock is virtual.
//!
//! Safety contract: guest memory is read and written only through checked slices. A
//! module that passes a hostcall an out-of-bounds range gets `INVALID_MEMORY_ACCESS` and
//! is then refused ([`Error::InvalidMemoryAccess`]); a trap (including running past the
//! time budget or the memory limit) is an [`Error::Trap`]. After either, the instance is
//! poisoned, like a failed VM in Envoy. Nothing a module does makes the host panic.
//!
//! The clock the plugin sees is virtual: it starts at the wall-clock time of
//! `configure` and moves only when a test says so ([`Plugin::advance`],
//! [`HttpRequest::upstream_latency`]), so latency metrics are deterministic.
//!
//! ```no_run
//! use host_harness::{Harness, Headers, Verdict};
//! let mut plugin = Harness::load("filter.wasm")?.configure(b"")?;
//! let mut stream = plugin.http_stream()?;
//! let headers = Headers::from_pairs(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
//! if stream.request_headers(headers, true)? == Verdict::Pause {
//!     // e.g. answer the HTTP call the filter is waiting for
//!     let token = stream.plugin().http_calls()[0].token;
//!     stream.respond_to_http_call(token, &[(":status", "200")], b"ok", &[])?;
//! }
//! stream.response_headers(Headers::from_pairs(&[(":status", "200")]), true)?;
//! let outcome = stream.finish()?;
//! println!("{:?}", outcome.response_headers);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [0.1.0]: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.1.0
//! [0.2.0]: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.0
//! [0.2.1]: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1

pub mod abi;
mod error;
mod hostcalls;
pub mod http;
pub mod plugin;
pub mod state;
pub mod tcp;

/// ABI vocabulary: a callback's answer, log levels, metric kinds.
pub use abi::{Action, LogLevel, MetricKind};
/// Everything that can go wrong loading or running a plugin.
pub use error::Error;
/// A whole HTTP exchange ([`HttpRequest`]) and what became of it ([`HttpOutcome`]).
pub use http::{HttpOutcome, HttpRequest};
/// An HTTP stream driven phase by phase, its phases and the filter's answer to each.
pub use http::{HttpStream, Phase, Verdict};
/// A compiled module, a configured instance, and the ABI version a module declares.
pub use plugin::{AbiVersion, Harness, Plugin};
/// A route table (`Harness::routes`): the route name for a request's headers.
pub use state::Routes;
/// Calls the plugin made: HTTP calls, gRPC calls and streams, foreign functions.
pub use state::{ForeignCall, GrpcCall, HttpCall};
/// Header maps, local replies, log lines and metrics as the host holds them.
pub use state::{Headers, LocalReply, LogEntry, Metric, Metrics};
/// One TCP connection through a network filter, and what became of it.
pub use tcp::{ConnectionOutcome, TcpConnection};
