//! A proxy-wasm (ABI v0.2.1) HTTP filter that does nothing: the baseline of
//! `make bench-envoy`.
//!
//! With an empty plugin configuration every callback keeps the SDK's default
//! (continue) and no host call is made per request: the cost of running any wasm
//! filter in Envoy (VM, context creation, the callbacks themselves).
//!
//! With the configuration `hostcalls` it makes, per request, the host calls the MAPS
//! plugin makes for a request of class `maps` (read the request headers, read
//! `destination.address`, write three `x-maps-*` headers of the plugin's sizes,
//! increment two counters) and nothing else: no classification, no formatting. The
//! difference between it and the MAPS plugin is the plugin's own work in wasm.
//!
//! Built by `make noop-filter` (`--profile plugin --target wasm32-wasip1`, like the
//! plugin). On other targets the crate is empty.

#![cfg(target_arch = "wasm32")]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

/// A decision header of the plugin's usual size (the synthetic policy's failover list).
const DECISION: &str = r#"{"src":"203.0.113.7","class":"maps","registration":"synthetic-123","prefix":"203.0.113.0/24","edge":"sea","link":"sea-1","backup":"sjc","failover":["sjc","lax","chi","dfw","ash","nyc","mia","atl","den","tor","lon","ams","fra","par","sin","tyo","syd","bom","gru","jnb"],"distance_km":112.4}"#;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> {
        Box::new(Root { mimic: None })
    });
}}

/// The root context: whether to make the plugin's host calls, and the counter ids.
struct Root {
    mimic: Option<(u32, u32)>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mimic = None;
        if self.get_plugin_configuration().as_deref() == Some(b"hostcalls".as_slice()) {
            let class = hostcalls::define_metric(MetricType::Counter, "noop.class.maps.requests");
            let routed = hostcalls::define_metric(MetricType::Counter, "noop.routed");
            if let (Ok(a), Ok(b)) = (class, routed) {
                self.mimic = Some((a, b));
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter { mimic: self.mimic }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The per-request context.
struct Filter {
    mimic: Option<(u32, u32)>,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some((class, routed)) = self.mimic {
            let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
            let _ = core::hint::black_box(headers);
            let _ = hostcalls::get_property(vec!["destination", "address"]);
            let set = |name: &str, value: &str| {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            };
            set("x-maps-class", "maps");
            set("x-maps-cluster", "maps_sea_sjc");
            set("x-maps-decision", DECISION);
            let _ = hostcalls::increment_metric(class, 1);
            let _ = hostcalls::increment_metric(routed, 1);
        }
        Action::Continue
    }
}
