//! A proxy-wasm (ABI v0.2.1) HTTP filter that does nothing: every callback keeps the
//! SDK's default (continue), no host call is made per request. It is what
//! `make bench-envoy` compares the MAPS plugin with: the cost of running any wasm
//! filter in Envoy (VM, context creation, the callbacks themselves), without the
//! plugin's own work.
//!
//! Built by `make noop-filter` (`--profile plugin --target wasm32-wasip1`, like the
//! plugin). On other targets the crate is empty.

#![cfg(target_arch = "wasm32")]

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_http_context(|_context_id, _root_context_id| -> Box<dyn HttpContext> {
        Box::new(Noop)
    });
}}

/// The per-request context: the SDK's defaults only.
struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}
