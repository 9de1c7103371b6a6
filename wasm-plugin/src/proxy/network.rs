//! The L4 network filter: one decision per TCP connection, in `on_new_connection`.
//!
//! The client is `source.address`; the destination is `destination.address`, which is
//! the original destination when the listener has Envoy's `original_dst` listener filter
//! (transparent interception). There is no host name at L4. For class `maps` the filter
//! sets the filter state `envoy.tcp_proxy.cluster` to the decision's cluster (the name of
//! `policy_core::cluster`) through Envoy's `set_envoy_filter_state` foreign function, so
//! the `tcp_proxy` filter that follows connects there; any other class leaves the
//! filter state alone and `tcp_proxy` uses its configured cluster (the default path).

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{Action, LogLevel};

use super::metrics::Metrics;
use super::{log, property_text, Loaded};

/// Envoy's filter state key for the TCP proxy's per-connection cluster.
pub(crate) const TCP_PROXY_CLUSTER: &str = "envoy.tcp_proxy.cluster";

/// `LifeSpan::DownstreamConnection` of Envoy's `SetEnvoyFilterStateArguments`.
const SPAN_DOWNSTREAM_CONNECTION: u8 = 2;

pub(crate) struct Filter {
    context_id: u32,
    policy: Option<Rc<Loaded>>,
    metrics: Rc<Metrics>,
}

impl Filter {
    pub(crate) fn new(context_id: u32, policy: Option<Rc<Loaded>>, metrics: Rc<Metrics>) -> Filter {
        Filter {
            context_id,
            policy,
            metrics,
        }
    }

    fn on_connection(&self) {
        let Some(policy) = &self.policy else {
            return;
        };
        let src = property_text(&["source", "address"]).unwrap_or_default();
        let dst = property_text(&["destination", "address"]);
        let decision = policy
            .engine
            .classifier
            .classify_text(&src, dst.as_deref(), None);
        let class = decision.class().as_str();
        self.metrics.decided(class, true);
        self.metrics
            .categorized(decision.category().map(|c| c.as_str()), true);
        if let (Some(reg), Some(edge), Some(r), Some(e)) = (
            decision.registration(),
            decision.edge(),
            decision.registration_index(),
            decision.edge_index(),
        ) {
            self.metrics
                .routed((policy.generation, r, e), reg, edge, true);
        }
        if let Some(cluster) = decision.cluster() {
            let args = set_filter_state_args(TCP_PROXY_CLUSTER, cluster);
            if let Err(status) =
                hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args))
            {
                log(
                    LogLevel::Error,
                    &format!(
                        "maps: [ctx {}] set_envoy_filter_state({TCP_PROXY_CLUSTER}={cluster}) failed: {status:?}",
                        self.context_id
                    ),
                );
            }
        }
        if !policy.debug {
            return;
        }
        log(
            LogLevel::Debug,
            &format!(
                "maps: [ctx {}] {}",
                self.context_id,
                policy_core::decision_line_json(&src, &decision)
            ),
        );
    }
}

/// Serializes `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments`
/// `{path = 1: string, value = 2: string, span = 3: LifeSpan}` in protobuf wire format.
pub(crate) fn set_filter_state_args(path: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    for (tag, field) in [(0x0a_u8, path), (0x12, value)] {
        out.push(tag);
        push_varint(&mut out, field.len() as u64);
        out.extend_from_slice(field.as_bytes());
    }
    out.push(0x18);
    out.push(SPAN_DOWNSTREAM_CONNECTION);
    out
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Context for Filter {}

impl StreamContext for Filter {
    fn on_new_connection(&mut self) -> Action {
        self.on_connection();
        Action::Continue
    }
}
