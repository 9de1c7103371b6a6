//! # host-harness: run proxy-wasm plugins without Envoy
//!
//! An embedding of wasmtime (with WASI preview 1) that implements the host side of the
//! [proxy-wasm ABI v0.2.1] faithfully enough to run the MAPS plugin and ordinary
//! proxy-wasm HTTP and network filters, for tests, for replaying traffic and for
//! benchmarks. It knows nothing of MAPS: `mapsctl` (its own crate) uses it to replay
//! traces through the MAPS plugin.
//!
//! ```text
//!   .wasm ──Harness::load──▶ Harness ──configure(bytes)──▶ Plugin ──http_request()…send()──▶ HttpOutcome
//!           compile, check     (module,   _initialize,       (store:    context_create,        headers, local
//!           ABI marker,        linker)    root context,      contexts,  request/response       reply, logs,
//!           link imports                  vm_start,          logs,      callbacks, done/log/   filter state
//!                                         on_configure       metrics)   delete
//!                                                               └──tcp_connection(src,dst)──▶ ConnectionOutcome
//!   guest ──hostcall──▶ hostcalls.rs ──checked slices──▶ state.rs (HostState)
//! ```
//!
//! | module | concept |
//! |---|---|
//! | [`abi`] | ABI constants, the header-pairs encoding, Envoy's filter-state argument |
//! | `hostcalls` | the `env.proxy_*` functions (plus WASI `fd_write`, `clock_time_get`) |
//! | [`state`] | what the host keeps per instance: contexts, headers, logs, metrics |
//! | [`plugin`] | [`Harness`] (a compiled module) and [`Plugin`] (a configured instance) |
//! | [`http`] | one HTTP request through the filter: [`HttpRequest`] → [`HttpOutcome`] |
//! | [`tcp`] | one TCP connection through the filter: [`TcpConnection`] → [`ConnectionOutcome`] |
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
//! use host_harness::Harness;
//! let mut plugin = Harness::load("target/wasm32-wasip1/plugin/maps_plugin.wasm")?
//!     .configure(std::fs::read("fixtures/demo/policy.json")?)?;
//! let out = plugin
//!     .http_request()
//!     .source("198.51.100.7:443")
//!     .authority("outlook.office365.com")
//!     .send()?;
//! assert_eq!(out.header("x-maps-class"), Some("maps"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [proxy-wasm ABI v0.2.1]: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1

pub mod abi;
mod error;
mod hostcalls;
pub mod http;
pub mod plugin;
pub mod state;
pub mod tcp;

pub use abi::{Action, LogLevel, MetricKind};
pub use error::Error;
pub use http::{HttpOutcome, HttpRequest};
pub use plugin::{Harness, Plugin};
pub use state::{Headers, LocalReply, LogEntry, Metric, Metrics};
pub use tcp::{ConnectionOutcome, TcpConnection};
