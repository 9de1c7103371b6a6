//! The plugin's metrics, named for Envoy's `stats_tags`.
//!
//! Envoy shows proxy-wasm metrics as `wasmcustom.<name>`. Every name puts its tags as
//! `<tag>.<value>.` pairs before the final field, so one regex per tag turns them into
//! tags (see `wasm-plugin/README.md` for the `stats_tags` block):
//!
//! | name | kind | when |
//! |---|---|---|
//! | `maps.class.<class>.requests` | counter | every HTTP request, by decision class |
//! | `maps.category.<category>.category_requests` | counter | every HTTP request, by Microsoft 365 category (`Optimize`, `Allow`, `Default`, or `none`) |
//! | `maps.registration.<reg>.edge.<edge>.routed` | counter | HTTP requests of class `maps` |
//! | `maps.registration.<reg>.latency_ms` | histogram | `maps` requests whose matched prefix has `telemetry` (per prefix, as in Azure): request headers → response headers, in ms |
//! | `maps.class.<class>.connections` | counter | every TCP connection (network filter) |
//! | `maps.category.<category>.category_connections` | counter | every TCP connection, by category |
//! | `maps.registration.<reg>.edge.<edge>.routed_connections` | counter | TCP connections of class `maps` |
//! | `maps.policy.loaded` / `maps.policy.rejected` | counter | configurations accepted / refused (both defined at the first configuration, so a first refusal is a rise from 0) |
//! | `maps.policy.version` | gauge | the policy this VM serves: `policy_core::policy_version_number` of its text (the first 13 hex digits of the version `mapsctl envoy-config` prints) |
//! | `maps.policy.generation` | gauge | how many policies this VM has loaded |
//! | `maps.vm.memory_bytes` | gauge | the VM's linear memory after the last configuration |
//!
//! In names, `.` inside an id becomes `_` (a dot would split the tag).
//!
//! Cardinality is bounded by the policy, never by traffic: classes and categories are
//! fixed sets (7 classes, 3 categories and `none`), registrations and edges are the
//! policy's own ids (at most registrations × edges `routed` series, in practice one
//! edge per registration), and no client address, host name or prefix ever enters a
//! name. Envoy never expires a metric, so a bound set is what keeps a VM's stats finite. The category counter has its
//! own final field (`category_requests`, not `requests`) so that, once tagged, it is a
//! metric of its own and a sum over `maps.requests` never counts a request twice.
//!
//! Ids are defined once per name per VM and cached; a metric call that the host refuses
//! is ignored (metrics must never fail a request). The per-request counters are found
//! without formatting their names: by class or category and field, and by the
//! (registration, edge) indices of the policy being served (forgotten when another
//! policy is loaded, since indices then name other ids).

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids by name, defined lazily.
#[derive(Default)]
pub(crate) struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    fast: RefCell<HashMap<Fast, u32>>,
}

/// A per-request counter, named without formatting (`bool`: connection, not request).
#[derive(PartialEq, Eq, Hash)]
enum Fast {
    Class(&'static str, bool),
    Category(&'static str, bool),
    /// (policy generation, registration index, edge index, connection).
    Routed(u32, usize, usize, bool),
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

    /// Increments the counter `key`; `name` is made only the first time.
    fn bump_fast(&self, key: Fast, name: impl FnOnce() -> String) {
        let cached = self
            .fast
            .try_borrow()
            .ok()
            .and_then(|m| m.get(&key).copied());
        let id = match cached {
            Some(id) => Some(id),
            None => {
                let id = self.id(MetricType::Counter, name());
                if let (Some(id), Ok(mut m)) = (id, self.fast.try_borrow_mut()) {
                    m.insert(key, id);
                }
                id
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// A request (or, with `connection`, a TCP connection) of class `class`.
    pub fn decided(&self, class: &'static str, connection: bool) {
        let field = if connection {
            "connections"
        } else {
            "requests"
        };
        self.bump_fast(Fast::Class(class, connection), || {
            format!("maps.class.{class}.{field}")
        });
    }

    /// A request (or TCP connection) of Microsoft 365 `category` (`None`: no matching
    /// destination entry has one, counted as `none`).
    pub fn categorized(&self, category: Option<&'static str>, connection: bool) {
        let field = if connection {
            "category_connections"
        } else {
            "category_requests"
        };
        let category = category.unwrap_or("none");
        self.bump_fast(Fast::Category(category, connection), || {
            format!("maps.category.{category}.{field}")
        });
    }

    /// A `maps` decision for `registration` at `edge` (`at`: the generation of the
    /// policy that decided, and their indices in it).
    pub fn routed(
        &self,
        at: (u32, usize, usize),
        registration: &str,
        edge: &str,
        connection: bool,
    ) {
        let field = if connection {
            "routed_connections"
        } else {
            "routed"
        };
        self.bump_fast(Fast::Routed(at.0, at.1, at.2, connection), || {
            format!(
                "maps.registration.{}.edge.{}.{field}",
                tag(registration),
                tag(edge)
            )
        });
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
        // Another policy: ids cached for older generations' indices are dropped (a
        // request still deciding with the previous policy caches its own again).
        if let Ok(mut m) = self.fast.try_borrow_mut() {
            m.retain(|k, _| !matches!(k, Fast::Routed(g, ..) if *g < generation.saturating_sub(1)));
        }
        self.set("maps.policy.version", version);
        self.set("maps.policy.generation", u64::from(generation));
        self.set("maps.vm.memory_bytes", memory_bytes);
    }

    /// A configuration accepted (`true`) or refused. Both counters exist from the first
    /// configuration on (the other one at 0): a counter that appeared only with its first
    /// event would be invisible to Prometheus's `increase()`, which needs a sample before
    /// the rise, and the "policy refused" alert would miss the first refusal.
    pub fn policy_event(&self, loaded: bool) {
        let (counted, other) = if loaded {
            ("maps.policy.loaded", "maps.policy.rejected")
        } else {
            ("maps.policy.rejected", "maps.policy.loaded")
        };
        self.bump(counted.to_string());
        let _ = self.id(MetricType::Counter, other.to_string());
    }
}
