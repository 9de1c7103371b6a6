//! The HTTP filter: one `policy-core` decision per request, published as request headers.
//!
//! Per request, in `on_http_request_headers` (host calls in brackets):
//! 1. read all request headers once [get pairs];
//! 2. remove every header whose name starts with `options.header_prefix` [one remove per
//!    distinct name; usually none] — a client must never choose its own egress. This
//!    happens even before any policy is loaded;
//! 3. the client address: `source.address` [1 property] or `x-forwarded-for` (see
//!    `client`); the destination: `destination.address` [1 property, only when the
//!    policy has destination prefixes] and the `:authority` header;
//! 4. classify, then publish [1 replace each]: `<prefix>class` (always),
//!    `<prefix>cluster` (class `maps`: the decision's precomputed cluster) and
//!    `<prefix>decision` (always: the decision line of SPEC §5 as compact JSON, `src`
//!    being the client address used);
//! 5. metrics [2–3 increments: class, category and, for class `maps`, registration ×
//!    edge]; for a matched prefix with telemetry the time [1] is kept and
//!    `on_http_response_headers` records the latency [1 time + 1 record].
//!
//! Never fails a request: a host call that fails is skipped, and the request continues.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::metrics::Metrics;
use super::{client, log, property_text, Loaded};

pub(crate) struct Filter {
    context_id: u32,
    policy: Option<Rc<Loaded>>,
    metrics: Rc<Metrics>,
    /// (latency histogram id, request time in ns) for telemetry registrations.
    latency: Option<(u32, u64)>,
}

impl Filter {
    pub(crate) fn new(context_id: u32, policy: Option<Rc<Loaded>>, metrics: Rc<Metrics>) -> Filter {
        Filter {
            context_id,
            policy,
            metrics,
            latency: None,
        }
    }

    fn on_request(&mut self) {
        let mut headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let Some(policy) = self.policy.clone() else {
            // No policy yet: still no client-chosen egress (the default prefix).
            strip_prefixed(&mut headers, &policy_core::HeaderNames::default());
            return;
        };
        let names = policy.policy().headers();
        strip_prefixed(&mut headers, names);
        let src = client::client_address(policy.policy().client_rule(), &headers);
        let host = headers
            .iter()
            .find(|(k, _)| k == ":authority")
            .and_then(|(_, v)| std::str::from_utf8(v).ok());
        let dst = if policy.policy().needs_destination_address() {
            property_text(&["destination", "address"])
        } else {
            None
        };
        let classifier = &policy.engine.classifier;
        let decision = classifier.classify_text(&src, dst.as_deref(), host);
        let class = decision.class().as_str();

        let set = |name: &str, value: &str| {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        };
        set(&names.class, class);
        if let Some(cluster) = decision.cluster() {
            set(&names.cluster, cluster);
        }
        let line = policy_core::decision_line_json(&src, &decision);
        set(&names.decision, &line);

        self.metrics.decided(class, false);
        self.metrics
            .categorized(decision.category().map(|c| c.as_str()), false);
        if let (Some(reg), Some(edge), Some(r), Some(e)) = (
            decision.registration(),
            decision.edge(),
            decision.registration_index(),
            decision.edge_index(),
        ) {
            self.metrics
                .routed((policy.generation, r, e), reg, edge, false);
            if decision.telemetry() {
                if let (Some(id), Ok(now)) =
                    (self.metrics.latency_id(reg), hostcalls::get_current_time())
                {
                    self.latency = Some((id, nanos(now)));
                }
            }
        }
        if policy.debug {
            log(
                LogLevel::Debug,
                &format!("maps: [ctx {}] {line}", self.context_id),
            );
        }
    }
}

/// Removes (from the host and from `headers`) every header named with the prefix.
fn strip_prefixed(headers: &mut Vec<(String, Vec<u8>)>, names: &policy_core::HeaderNames) {
    let mut removed: Vec<String> = Vec::new();
    headers.retain(|(name, _)| {
        let hit = names.is_ours(name);
        if hit && !removed.iter().any(|r| r == name) {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            removed.push(name.clone());
        }
        !hit
    });
}

fn nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.on_request();
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some((id, start)) = self.latency.take() {
            if let Ok(now) = hostcalls::get_current_time() {
                let ms = nanos(now).saturating_sub(start) / 1_000_000;
                self.metrics.record(id, ms);
            }
        }
        Action::Continue
    }
}
