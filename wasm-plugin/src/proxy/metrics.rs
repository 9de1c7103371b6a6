//! The plugin's metrics, named for Envoy's `stats_tags`.
//!
//! Envoy shows proxy-wasm metrics as `wasmcustom.<name>`. Every name puts its tags as
//! `<tag>.<value>.` pairs before the final field, so one regex per tag turns them into
//! tags (see `wasm-plugin/README.md` for the `stats_tags` block):
//!
//! | name | kind | when |
//! |---|---|---|
//! | `maps.class.<class>.requests` | counter | every HTTP request, by decision class |
//! | `maps.registration.<reg>.edge.<edge>.routed` | counter | HTTP requests of class `maps` |
//! | `maps.registration.<reg>.latency_ms` | histogram | `maps` requests whose matched prefix has `telemetry` (per prefix, as in Azure): request headers → response headers, in ms |
//! | `maps.class.<class>.connections` | counter | every TCP connection (network filter) |
//! | `maps.registration.<reg>.edge.<edge>.routed_connections` | counter | TCP connections of class `maps` |
//! | `maps.policy.loaded` / `maps.policy.rejected` | counter | configurations accepted / refused |
//! | `maps.policy.version` | gauge | the policy this VM serves: `policy_core::policy_version_number` of its text (the first 13 hex digits of the version `mapsctl envoy-config` prints) |
//! | `maps.policy.generation` | gauge | how many policies this VM has loaded |
//! | `maps.vm.memory_bytes` | gauge | the VM's linear memory after the last configuration |
//!
//! In names, `.` inside an id becomes `_` (a dot would split the tag).
//!
//! Ids are defined once per name per VM and cached; a metric call that the host refuses
//! is ignored (metrics must never fail a request).

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids by name, defined lazily.
#[derive(Default)]
pub(crate) struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
}

/// Makes an id safe inside a dotted metric name.
fn tag(value: &str) -> String {
    value.replace('.', "_")
}

impl Metrics {
    fn id(&self, kind: MetricType, name: String) -> Option<u32> {
        if let Some(id) = self.ids.try_borrow().ok()?.get(&name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, &name).ok()?;
        self.ids.try_borrow_mut().ok()?.insert(name, id);
        Some(id)
    }

    fn bump(&self, name: String) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// A request (or, with `connection`, a TCP connection) of class `class`.
    pub fn decided(&self, class: &str, connection: bool) {
        let field = if connection {
            "connections"
        } else {
            "requests"
        };
        self.bump(format!("maps.class.{class}.{field}"));
    }

    /// A `maps` decision for `registration` at `edge`.
    pub fn routed(&self, registration: &str, edge: &str, connection: bool) {
        let field = if connection {
            "routed_connections"
        } else {
            "routed"
        };
        self.bump(format!(
            "maps.registration.{}.edge.{}.{field}",
            tag(registration),
            tag(edge)
        ));
    }

    /// The latency histogram id of `registration`.
    pub fn latency_id(&self, registration: &str) -> Option<u32> {
        self.id(
            MetricType::Histogram,
            format!("maps.registration.{}.latency_ms", tag(registration)),
        )
    }

    /// Records a latency sample.
    pub fn record(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }

    fn set(&self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name.to_string()) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// The policy this VM now serves, and its linear memory.
    pub fn serving(&self, version: u64, generation: u32, memory_bytes: u64) {
        self.set("maps.policy.version", version);
        self.set("maps.policy.generation", u64::from(generation));
        self.set("maps.vm.memory_bytes", memory_bytes);
    }

    /// A configuration accepted (`true`) or refused.
    pub fn policy_event(&self, loaded: bool) {
        self.bump(
            if loaded {
                "maps.policy.loaded"
            } else {
                "maps.policy.rejected"
            }
            .to_string(),
        );
    }
}
