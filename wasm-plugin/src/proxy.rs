//! The proxy-wasm plugin (ABI v0.2.1): a thin adapter between a proxy and `policy-core`.
//!
//! ```text
//!   Envoy ──proxy_on_configure(policy JSON)──▶ Root ── policy_core::load ──▶ Rc<Loaded>
//!                                              │ (invalid: errors logged, false, last good kept)
//!          ──new HTTP stream──▶ http::Filter ──┤ strip <prefix>*, client address, classify,
//!                                              │ publish <prefix>class/cluster/decision, metrics
//!          ──new connection──▶ network::Filter ┘ classify(source, original destination),
//!                                                set_envoy_filter_state(envoy.tcp_proxy.cluster)
//! ```
//!
//! One `.wasm`, two filters: the root id chooses. A root context whose `root_id` is
//! `maps_tcp` serves Envoy's network filter (`envoy.filters.network.wasm`); any other root
//! id (including none) serves the HTTP filter (`envoy.filters.http.wasm`).
//!
//! Invariants: every decision is made by `policy-core` (this module only moves data
//! between the host and the classifier); nothing here panics on any input (headers,
//! properties, configuration); a configuration that fails validation never replaces a
//! good one.

mod client;
mod http;
mod metrics;
mod network;

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use metrics::Metrics;

/// The root id that selects the network (L4) filter: policy-core's, which
/// `mapsctl envoy-config` uses too.
pub const NETWORK_ROOT_ID: &str = policy_core::NETWORK_ROOT_ID;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root::new(context_id))
    });
}}

/// Logs one line; a host that refuses a log line is not worth failing a request for.
pub(crate) fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// A property as text (`None` when absent, unreadable or not UTF-8).
pub(crate) fn property_text(path: &[&str]) -> Option<String> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// A validated, compiled policy, with what the host tells the filters once. Every
/// name and rule (headers, client address, routes) is the policy's own
/// (`policy_core::Policy`): nothing is derived here.
pub(crate) struct Loaded {
    pub engine: policy_core::LoadedPolicy,
    /// `policy_core::policy_version` of the configuration text.
    pub version: String,
    /// Counts successful loads in this VM (1 = first policy).
    pub generation: u32,
    /// Whether the host wants debug lines (read at configure time: a per-request debug
    /// line would otherwise cost a host call even when the host drops it).
    pub debug: bool,
}

impl Loaded {
    fn new(engine: policy_core::LoadedPolicy, version: String, generation: u32) -> Loaded {
        Loaded {
            version,
            generation,
            debug: matches!(
                hostcalls::get_log_level(),
                Ok(LogLevel::Trace | LogLevel::Debug)
            ),
            engine,
        }
    }

    pub(crate) fn policy(&self) -> &policy_core::Policy {
        self.engine.classifier.policy()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Http,
    Network,
}

/// The root (plugin) context: owns the last good policy and the metric ids.
struct Root {
    context_id: u32,
    mode: Mode,
    policy: Option<Rc<Loaded>>,
    metrics: Rc<Metrics>,
    generation: u32,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root {
            context_id,
            mode: Mode::Http,
            policy: None,
            metrics: Rc::new(Metrics::default()),
            generation: 0,
        }
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mode = match property_text(&["plugin_root_id"]).as_deref() {
            Some(NETWORK_ROOT_ID) => Mode::Network,
            _ => Mode::Http,
        };
        let config = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            _ => Vec::new(),
        };
        let version = policy_core::policy_version(&config);
        let version_number = policy_core::policy_version_number(&config);
        match policy_core::load_owned(config, false) {
            Ok(engine) => {
                self.generation = self.generation.saturating_add(1);
                for w in &engine.report.diagnostics {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "maps: policy warning [{}] at {}: {}",
                            w.code.as_str(),
                            shown_path(&w.path),
                            w.message
                        ),
                    );
                }
                let loaded = Loaded::new(engine, version.clone(), self.generation);
                let doc = loaded.engine.classifier.policy().document();
                log(
                    LogLevel::Info,
                    &format!(
                        "maps: policy loaded (version {version}, generation {}, {} filter, root context {}): {} edges, {} registrations, {} warnings",
                        loaded.generation,
                        if self.mode == Mode::Network { "network" } else { "http" },
                        self.context_id,
                        doc.edges.len(),
                        doc.registrations.len(),
                        loaded.engine.report.warnings
                    ),
                );
                self.metrics.policy_event(true);
                self.metrics
                    .serving(version_number, loaded.generation, linear_memory_bytes());
                self.policy = Some(Rc::new(loaded));
                true
            }
            Err(report) => {
                log(
                    LogLevel::Error,
                    &format!(
                        "maps: policy rejected (version {version}): {} error(s), {} warning(s)",
                        report.errors, report.warnings
                    ),
                );
                for e in report.errors() {
                    log(
                        LogLevel::Error,
                        &format!(
                            "maps: policy error [{}] at {}: {}",
                            e.code.as_str(),
                            shown_path(&e.path),
                            e.message
                        ),
                    );
                }
                if let Some(p) = &self.policy {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "maps: keeping the last good policy (version {}, generation {})",
                            p.version, p.generation
                        ),
                    );
                }
                self.metrics.policy_event(false);
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(http::Filter::new(
            context_id,
            self.policy.clone(),
            Rc::clone(&self.metrics),
        )))
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(network::Filter::new(
            context_id,
            self.policy.clone(),
            Rc::clone(&self.metrics),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(match self.mode {
            Mode::Http => ContextType::HttpContext,
            Mode::Network => ContextType::StreamContext,
        })
    }
}

/// The VM's linear memory in bytes (WebAssembly memory never shrinks: this is the
/// high-water mark).
fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// A JSON Pointer as shown in logs: the root pointer (empty) as `/`.
fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}
