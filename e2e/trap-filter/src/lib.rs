//! A test-only proxy-wasm (ABI v0.2.1) HTTP filter that traps on demand: the subject of
//! `make e2e-failure-policy` (e2e/test_failure_policy.py), which shows what Envoy does
//! with traffic when a Wasm VM traps under each `failure_policy`.
//!
//! It stands in for the MAPS plugin, which never traps on any input (that is fuzzed),
//! and behaves like it where routing is concerned: it removes the client's own
//! `x-route` header, then sets `x-route: filtered`, and Envoy's route sends requests
//! carrying that header to the `filtered` cluster and everything else to `default`.
//! When the filter does not run, requests therefore take the default path, and a
//! client's own `x-route` header reaches the route (as a client's own `x-maps-cluster`
//! would with the MAPS plugin skipped).
//!
//! - `x-trap: 1` on a request makes the VM execute `unreachable` (a trap, as a panic
//!   in a plugin built with `panic = "abort"` ends).
//! - Every request it lets through gets `x-vm-id` (the host time in nanoseconds when
//!   this VM started: a new VM, a new id) and `x-vm-requests` (requests this VM has
//!   seen), so that the upstream's echo tells which VM served it.
//! - It counts requests in the counter `trap_filter.requests` (Envoy:
//!   `wasmcustom.trap_filter.requests`).
//!
//! Built by `make trap-filter` (`--profile plugin --target wasm32-wasip1`, like the
//! plugin). On other targets the crate is empty.

#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

thread_local! {
    /// When this VM started (ns since the epoch, host time): the VM's identity.
    static VM_ID: Cell<u128> = const { Cell::new(0) };
    /// Requests this VM has let through.
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> {
        Box::new(Root { requests: None })
    });
}}

/// The root context: the counter id.
struct Root {
    requests: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        let now = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(1);
        VM_ID.with(|v| v.set(now));
        let _ = hostcalls::log(LogLevel::Info, &format!("trap-filter: VM {now} started"));
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.requests = hostcalls::define_metric(MetricType::Counter, "trap_filter.requests").ok();
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            requests: self.requests,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The per-request context.
struct Filter {
    requests: Option<u32>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let trap = hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-trap")
            .ok()
            .flatten();
        if trap.as_deref() == Some("1") {
            let _ = hostcalls::log(LogLevel::Warn, "trap-filter: x-trap: 1, trapping");
            // A WebAssembly trap: the VM cannot continue.
            core::arch::wasm32::unreachable();
        }
        let seen = SEEN.with(|s| {
            let n = s.get().saturating_add(1);
            s.set(n);
            n
        });
        let vm = VM_ID.with(Cell::get);
        let set = |name: &str, value: &str| {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        };
        // The client's own x-route never reaches the route while this filter runs.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-route", None);
        set("x-route", "filtered");
        set("x-vm-id", &vm.to_string());
        set("x-vm-requests", &seen.to_string());
        if let Some(id) = self.requests {
            let _ = hostcalls::increment_metric(id, 1);
        }
        Action::Continue
    }
}
