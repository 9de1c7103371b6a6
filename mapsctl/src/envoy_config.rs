//! `mapsctl envoy-config`: the Envoy configuration for a policy.
//!
//! Envoy does the forwarding, the failover and the hot reload with its own machinery;
//! the plugin only decides. This module turns a validated policy into:
//!
//! ```text
//!  listener maps_http (HCM, xff_num_trusted_hops from the policy)
//!    ├─ http filter "maps"      ◀── ECDS file xds/maps-http.json (the plugin + the policy)
//!    ├─ router
//!    └─ routes: <prefix>cluster present ─▶ cluster_header, retries to the next priority
//!               otherwise               ─▶ "internet" (the default path)
//!  listener maps_l4 (optional)
//!    ├─ network filter "maps_tcp" ◀── ECDS file xds/maps-tcp.json (filter state
//!    │                                 envoy.tcp_proxy.cluster for class maps)
//!    └─ tcp_proxy (default cluster "internet")
//!
//!  clusters: edge_<edge>          one per edge, endpoints = its links (health checks,
//!                                 outlier detection, Maglev on the client address)
//!            maps_<edge>_<backup> aggregate [edge_<edge>, edge_<backup>] per pair in use
//!            maps_<edge>          aggregate [edge_<edge>, internet] (backup "None")
//!            internet             the default path
//! ```
//!
//! Conventions shared with the plugin: the aggregate cluster names are those of
//! [`policy_core::cluster`] (the plugin publishes them in
//! `<header_prefix>cluster` and in the `envoy.tcp_proxy.cluster` filter state); the
//! pairs come from [`policy_core::Classifier::routes`] (edge, first failover), so the
//! generator holds no decision logic. The plugin's L4 root id is `maps_tcp`.
//!
//! Invariants: only a validated policy reaches [`generate`]; every link used has an
//! address (from the policy's `address` or an override) or generation fails naming all
//! of them; the admin interface listens on loopback only. Nothing here panics.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use policy_core::{cluster_name, edge_cluster};
use policy_core::{Classifier, HostPort, Policy};
use serde_json::{json, Value};

/// Name of the HTTP filter (and of its ECDS resource).
pub const HTTP_FILTER: &str = "maps";
/// Name of the network filter (and of its ECDS resource); also the plugin's L4 root id.
pub const TCP_FILTER: &str = "maps_tcp";
/// Root id of the HTTP plugin.
pub const HTTP_ROOT_ID: &str = "maps";
/// The Wasm VM id, shared by both filters (one VM per worker serves both).
pub const VM_ID: &str = "maps";
/// The default path: traffic that is not MAPS, and the last resort of `maps_<edge>`.
pub const DEFAULT_CLUSTER: &str = "internet";
/// Dynamic-metadata namespace where the `header_to_metadata` filter copies the
/// plugin's decision headers (keys `class`, `cluster`, `decision`) before the routes
/// remove them; the access log reads `%DYNAMIC_METADATA(maps:decision)%`.
pub const DECISION_METADATA: &str = "maps";
/// File name of the bootstrap inside the output directory.
pub const BOOTSTRAP_FILE: &str = "envoy.json";
/// Directory (inside the output directory) of the ECDS files. Envoy watches it: keep
/// logs elsewhere.
pub const XDS_DIR: &str = "xds";
/// ECDS file of the HTTP filter, inside [`XDS_DIR`].
pub const HTTP_ECDS_FILE: &str = "maps-http.json";
/// ECDS file of the network filter, inside [`XDS_DIR`].
pub const TCP_ECDS_FILE: &str = "maps-tcp.json";

const TYPE_HTTP_WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const TYPE_NET_WASM: &str = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";

/// What the generator needs besides the policy. [`Settings::default`] gives a local
/// set-up: listeners on 127.0.0.1:10000 (HTTP) and :10001 (L4), admin on
/// 127.0.0.1:9901.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// The L4 listener (tcp_proxy + the network plugin); `None`: no L4 listener.
    pub listen_l4: Option<SocketAddr>,
    /// Accept the PROXY protocol on the L4 listener (the client and original
    /// destination then come from a trusted load balancer in front). Without it the
    /// `original_dst` listener filter recovers the destination of intercepted traffic.
    pub l4_proxy_protocol: bool,
    /// Accept the PROXY protocol on the HTTP listener (behind a load balancer that
    /// sends it): `source.address` and `destination.address` then come from the
    /// header. Connections without one are refused.
    pub proxy_protocol: bool,
    /// The admin interface: loopback only.
    pub admin: SocketAddr,
    /// Link addresses (`host:port`) by link id; they override the policy's `address`.
    pub links: BTreeMap<String, String>,
    /// The default path (`host:port`); `None`: an ORIGINAL_DST cluster (transparent
    /// interception: traffic goes where it was headed).
    pub internet: Option<String>,
    /// The plugin `.wasm`, as Envoy should open it (make it absolute).
    pub plugin: PathBuf,
    /// Where the ECDS files live, as Envoy should open them (make it absolute).
    pub xds_dir: PathBuf,
    /// HTTP path of the links' active health check.
    pub health_path: String,
    /// Interval of the active health checks, in milliseconds (their timeout is half
    /// of it, at most 1 s; two failures mark a link down, two successes up).
    pub health_interval_ms: u32,
    /// Connect timeout towards a link, in milliseconds (a PNI is a metro hop: a
    /// handshake that takes longer is a dead link; the retry goes elsewhere).
    pub connect_timeout_ms: u32,
    /// Per-attempt idle timeout on MAPS routes, in milliseconds: an attempt that
    /// receives nothing for this long (a request put on a keep-alive connection to a
    /// black-holed link) is abandoned and retried on another link. 0: none. A
    /// response that pauses longer (long polling) is cut and retried too.
    pub per_try_idle_timeout_ms: u32,
    /// Provision an aggregate cluster for every ordered pair of usable edges (and every
    /// usable edge alone), so that any later policy over the same edges hot-reloads
    /// without new clusters.
    pub all_pairs: bool,
    /// Let the plugin's decision headers (`<prefix>class`, `<prefix>cluster`,
    /// `<prefix>decision`) travel upstream. Off by default: every route removes them
    /// before the request leaves Envoy (the decision names the customer's
    /// registration and prefix); the access log still has them (dynamic metadata
    /// namespace [`DECISION_METADATA`], copied before the removal).
    pub expose_decision_headers: bool,
    /// Where the HTTP access log goes (one JSON object per request, with the
    /// decision); `/dev/stdout` by default.
    pub access_log: String,
    /// `node.id` (ECDS from a file needs a node id and cluster).
    pub node_id: String,
    /// `node.cluster`.
    pub node_cluster: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 10000)),
            listen_l4: Some(SocketAddr::from(([127, 0, 0, 1], 10001))),
            l4_proxy_protocol: false,
            proxy_protocol: false,
            admin: SocketAddr::from(([127, 0, 0, 1], 9901)),
            links: BTreeMap::new(),
            internet: None,
            plugin: PathBuf::from("target/wasm32-wasip1/plugin/maps_plugin.wasm"),
            xds_dir: PathBuf::from(XDS_DIR),
            health_path: String::from("/healthz"),
            health_interval_ms: 500,
            connect_timeout_ms: 250,
            per_try_idle_timeout_ms: 1000,
            all_pairs: false,
            expose_decision_headers: false,
            access_log: String::from("/dev/stdout"),
            node_id: String::from("maps-edge"),
            node_cluster: String::from("maps"),
        }
    }
}

/// Why no configuration could be generated. Each variant says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// These links (of usable edges) have no address: add `"address": "host:port"` to
    /// them in the policy, or pass `--link ID=HOST:PORT`.
    MissingAddress(Vec<String>),
    /// An address is not `host:port` (IPv6 as `[addr]:port`): fix the value named.
    BadAddress {
        /// Where the value came from (`--link sea-1`, `/edges/0/links/1/address`, ...).
        what: String,
        /// The value.
        value: String,
    },
    /// `--link` names a link the policy does not have: check the spelling.
    UnknownLink(String),
    /// The admin interface must listen on a loopback address (it can stop Envoy).
    AdminNotLoopback(SocketAddr),
    /// `--health-path` is not an absolute request path (it must start with `/` and
    /// hold no control character or space: Envoy would reject the configuration, or a
    /// CR/LF would forge request lines in every health check).
    BadHealthPath(String),
    /// The node id or cluster is empty or holds a control character: Envoy requires
    /// both (ECDS refuses to start without them) and echoes them in its output.
    BadNode {
        /// `node id` or `node cluster`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The policy text is not UTF-8 (a validated policy always is).
    NotUtf8,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingAddress(links) => write!(
                f,
                "no address for link(s) {}: add \"address\": \"host:port\" to them in the policy or pass --link ID=HOST:PORT",
                links.join(", ")
            ),
            ConfigError::BadAddress { what, value } => {
                write!(f, "{what}: {value:?} is not host:port (IPv6 as [addr]:port)")
            }
            ConfigError::UnknownLink(id) => write!(f, "--link {id}: the policy has no link {id:?}"),
            ConfigError::AdminNotLoopback(a) => {
                write!(f, "--admin {a}: the admin interface must listen on a loopback address")
            }
            ConfigError::BadHealthPath(p) => write!(
                f,
                "--health-path {p:?}: not a request path (it must start with / and hold no space or control character such as CR or LF)"
            ),
            ConfigError::BadNode { what, value } => write!(
                f,
                "{what} {value:?}: Envoy needs a non-empty value without control characters"
            ),
            ConfigError::NotUtf8 => write!(f, "the policy is not UTF-8 text"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What kind of cluster a [`ClusterPlan`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// An edge's links.
    Edge,
    /// A primary/backup aggregate.
    Aggregate,
    /// The default path.
    Default,
}

/// One generated cluster, for people (the summary `mapsctl envoy-config` prints) and
/// for programs ([`PLAN_FILE`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterPlan {
    /// Cluster name.
    pub name: String,
    /// Kind.
    pub kind: ClusterKind,
    /// Endpoints (`link=host:port`) for an edge; member clusters in priority order for
    /// an aggregate.
    pub members: Vec<String>,
}

/// A generated configuration.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The bootstrap (JSON; Envoy reads it with `-c envoy.json`).
    pub bootstrap: Value,
    /// The ECDS file of the HTTP filter.
    pub http_ecds: Value,
    /// The ECDS file of the network filter (when there is an L4 listener).
    pub tcp_ecds: Option<Value>,
    /// The clusters, in the order of the bootstrap.
    pub plan: Vec<ClusterPlan>,
    /// The names a script or test needs, as the policy resolves them ([`PLAN_FILE`]).
    pub names: Value,
}

/// File name (inside the output directory) of the names of a generated configuration,
/// for scripts and tests, so none of them re-implements a naming rule:
/// `{"policy_version", "headers": {prefix, class, cluster, decision},
///   "client_address": {"from": "source"} or {"from": "xff", "trusted_hops"},
///   "edges": {edge id: edge cluster}, "registrations": {id: {edge, backup, cluster}},
///   "clusters": [{name, kind, members}], "default_cluster"}`.
pub const PLAN_FILE: &str = "plan.json";

/// The (edge, backup) pairs to provision, as edge indices. Without `all`: the routes
/// the registrations use ([`Classifier::routes`]). With `all`: every ordered pair of
/// usable edges and every usable edge alone.
pub fn edge_pairs(classifier: &Classifier, all: bool) -> BTreeSet<(usize, Option<usize>)> {
    let policy = classifier.policy();
    let doc = policy.document();
    let index = |id: &str| doc.edges.iter().position(|e| e.id == id);
    let mut pairs = BTreeSet::new();
    if all {
        let usable: Vec<usize> = (0..doc.edges.len())
            .filter(|&e| policy.edge_usable(e))
            .collect();
        for &e in &usable {
            pairs.insert((e, None));
            for &b in &usable {
                if b != e {
                    pairs.insert((e, Some(b)));
                }
            }
        }
        return pairs;
    }
    for route in classifier.routes() {
        if let Some(e) = index(route.edge) {
            pairs.insert((e, route.backup.and_then(index)));
        }
    }
    pairs
}

/// An upstream address, read by the policy's own rule ([`HostPort::parse`], the same
/// one validation applies to a link's `address`).
fn parse_host_port(what: &str, value: &str) -> Result<HostPort, ConfigError> {
    HostPort::parse(value).ok_or_else(|| ConfigError::BadAddress {
        what: what.to_string(),
        value: value.to_string(),
    })
}

fn socket_address(hp: &HostPort) -> Value {
    json!({"socket_address": {"address": hp.host, "port_value": hp.port}})
}

fn listen_address(sa: &SocketAddr) -> Value {
    json!({"socket_address": {"address": sa.ip().to_string(), "port_value": sa.port()}})
}

fn duration_ms(ms: u32) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// The plugin configuration of one filter: the policy text, the shared VM, and a
/// failure policy that reloads a crashed VM (requests fail closed meanwhile, so a
/// client's own `x-maps-*` headers never reach the route).
fn plugin_config(name: &str, root_id: &str, policy: &[u8], settings: &Settings) -> Value {
    // A compiled policy (`mapsctl compile`) is binary: Envoy hands a `BytesValue`'s
    // bytes to the plugin as they are (JSON carries them in base64).
    let configuration = if policy_core::is_compiled(policy) {
        use base64::Engine as _;
        json!({
            "@type": "type.googleapis.com/google.protobuf.BytesValue",
            "value": base64::engine::general_purpose::STANDARD.encode(policy)
        })
    } else {
        json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": String::from_utf8_lossy(policy)
        })
    };
    json!({
        "name": name,
        "root_id": root_id,
        "vm_config": {
            "vm_id": VM_ID,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": settings.plugin.display().to_string()}}
        },
        "configuration": configuration,
        "failure_policy": "FAIL_RELOAD"
    })
}

/// A version string for a policy text ([`policy_core::policy_version`]; shown by
/// Envoy's `extension_config_discovery.*.version_text`).
pub fn policy_version(policy: impl AsRef<[u8]>) -> String {
    policy_core::policy_version(policy.as_ref())
}

/// The ECDS file (a `DiscoveryResponse`) that delivers the HTTP filter with
/// `policy_json`. Writing a new one (atomically: [`write_atomic`]) hot-reloads the
/// policy; a policy the plugin refuses is rejected by Envoy and the last good one
/// keeps serving.
pub fn http_ecds(policy: impl AsRef<[u8]>, settings: &Settings) -> Value {
    let policy_json = policy.as_ref();
    ecds(
        HTTP_FILTER,
        HTTP_ROOT_ID,
        TYPE_HTTP_WASM,
        policy_json,
        settings,
    )
}

/// The ECDS file of the network (L4) filter.
pub fn tcp_ecds(policy: impl AsRef<[u8]>, settings: &Settings) -> Value {
    ecds(
        TCP_FILTER,
        TCP_FILTER,
        TYPE_NET_WASM,
        policy.as_ref(),
        settings,
    )
}

fn ecds(
    name: &str,
    root_id: &str,
    type_url: &str,
    policy_json: &[u8],
    settings: &Settings,
) -> Value {
    json!({
        "version_info": policy_version(policy_json),
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": {
                "@type": type_url,
                "config": plugin_config(name, root_id, policy_json, settings)
            }
        }]
    })
}

fn config_discovery(name: &str, file: &str, type_url: &str, settings: &Settings) -> Value {
    json!({
        "name": name,
        "config_discovery": {
            "config_source": {
                "path_config_source": {"path": settings.xds_dir.join(file).display().to_string()},
                "resource_api_version": "V3"
            },
            "type_urls": [type_url]
        }
    })
}

/// Resolves every link address of the usable edges: overrides first, then the
/// policy's `address`. Drained links are left out.
fn link_addresses(
    policy: &Policy,
    settings: &Settings,
) -> Result<BTreeMap<usize, Vec<(String, HostPort)>>, ConfigError> {
    let doc = policy.document();
    let known: BTreeSet<&str> = doc
        .edges
        .iter()
        .flat_map(|e| e.links.iter().map(|l| l.id.as_str()))
        .collect();
    if let Some(unknown) = settings.links.keys().find(|k| !known.contains(k.as_str())) {
        return Err(ConfigError::UnknownLink(unknown.clone()));
    }
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for (ei, edge) in doc.edges.iter().enumerate() {
        if !policy.edge_usable(ei) {
            continue;
        }
        let mut eps = Vec::new();
        for (li, link) in edge.links.iter().enumerate() {
            if link.drained {
                continue;
            }
            let (what, value) = match (settings.links.get(&link.id), &link.address) {
                (Some(v), _) => (format!("--link {}", link.id), v),
                (None, Some(v)) => (format!("/edges/{ei}/links/{li}/address"), v),
                (None, None) => {
                    missing.push(link.id.clone());
                    continue;
                }
            };
            eps.push((link.id.clone(), parse_host_port(&what, value)?));
        }
        out.insert(ei, eps);
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(ConfigError::MissingAddress(missing))
    }
}

fn edge_cluster_json(name: &str, links: &[(String, HostPort)], settings: &Settings) -> Value {
    let all_ip = links.iter().all(|(_, hp)| hp.ip);
    let endpoints: Vec<Value> = links
        .iter()
        .map(|(id, hp)| json!({"endpoint": {"address": socket_address(hp), "hostname": id}}))
        .collect();
    let interval = settings.health_interval_ms.max(1);
    // Losing some links of a site must not spill traffic to the backup site: the
    // priority stays "fully healthy" while any link is up (factor = 100 % x links).
    let overprovisioning = 100u64.saturating_mul(links.len().max(1) as u64);
    json!({
        "name": name,
        "type": if all_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": duration_ms(settings.connect_timeout_ms.max(1)),
        "lb_policy": "MAGLEV",
        "load_assignment": {
            "cluster_name": name,
            "policy": {"overprovisioning_factor": overprovisioning},
            "endpoints": [{"lb_endpoints": endpoints}]
        },
        // A link that fails its health checks loses its connections at once (requests
        // on them would hang on a black-holed link).
        "close_connections_on_host_health_failure": true,
        "health_checks": [{
            "timeout": duration_ms((interval / 2).clamp(1, 1000)),
            "interval": duration_ms(interval),
            "no_traffic_interval": duration_ms(interval),
            "unhealthy_threshold": 2,
            "healthy_threshold": 2,
            "http_health_check": {"path": settings.health_path}
        }],
        // Gateway failures include connect timeouts, resets and per-try timeouts; the
        // failure percentage catches a degraded link (loss: some requests time out)
        // that still passes most health checks.
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 2,
            "enforcing_consecutive_gateway_failure": 100,
            "failure_percentage_threshold": 10,
            "enforcing_failure_percentage": 100,
            "failure_percentage_minimum_hosts": 1,
            "failure_percentage_request_volume": 10,
            "interval": "1s",
            "base_ejection_time": "5s",
            // Never eject every link of a site: seen in Envoy 1.40 (make e2e-faults),
            // when outlier detection ejected both links of a black-holed site before
            // the health checks failed them, the aggregate cluster kept choosing that
            // site for about a second and answered 503 "no healthy upstream" without a
            // retry. The last link is left to the health checks (which do move the
            // aggregate to the backup) and to per-try timeouts with retries meanwhile.
            "max_ejection_percent": 50
        },
        // Never "panic" into a dead site: with no healthy link the edge takes no
        // traffic and the aggregate moves to the next priority.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0.0}},
        "circuit_breakers": {"thresholds": [retry_thresholds()]}
    })
}

fn aggregate_cluster_json(name: &str, members: &[String]) -> Value {
    json!({
        "name": name,
        "connect_timeout": "1s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
                "clusters": members
            }
        },
        "circuit_breakers": {"thresholds": [retry_thresholds()]}
    })
}

/// Retries allowed at once: when a link or a site dies, every request in flight on it
/// and every new connection attempt fails within the connect timeout and is retried
/// together; a budget of a quarter of the active requests (with 32 at least) turned
/// the first second of a site black hole into `upstream_rq_retry_overflow` 503s.
/// Retries stay bounded by `num_retries` per request.
fn retry_thresholds() -> Value {
    json!({"retry_budget": {"budget_percent": {"value": 100.0}, "min_retry_concurrency": 1024}})
}

fn default_cluster_json(internet: Option<&HostPort>) -> Value {
    match internet {
        Some(hp) => json!({
            "name": DEFAULT_CLUSTER,
            "type": if hp.ip { "STATIC" } else { "STRICT_DNS" },
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": DEFAULT_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(hp), "hostname": DEFAULT_CLUSTER}}]}]
            }
        }),
        None => json!({
            "name": DEFAULT_CLUSTER,
            "type": "ORIGINAL_DST",
            "connect_timeout": "1s",
            "lb_policy": "CLUSTER_PROVIDED"
        }),
    }
}

/// The HTTP access log: one JSON object per request; the decision comes from the
/// dynamic metadata [`DECISION_METADATA`] (the headers themselves are removed before
/// the request leaves Envoy unless exposed).
pub fn access_log_format() -> Value {
    let md = |k: &str| format!("%DYNAMIC_METADATA({DECISION_METADATA}:{k})%");
    json!({
        "start_time": "%START_TIME%",
        "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "method": "%REQ(:METHOD)%",
        "authority": "%REQ(:AUTHORITY)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "status": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "upstream_host": "%UPSTREAM_HOST%",
        "duration_ms": "%DURATION%",
        "maps_class": md("class"),
        "maps_cluster": md("cluster"),
        "maps_decision": md("decision")
    })
}

fn access_log_json(path: &str) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": access_log_format()}
        }
    })
}

/// Retries that move to the next priority (edge → backup edge → ...), but only after
/// the first retry stayed on the same site (another link: local redundancy first).
fn retry_policy(settings: &Settings) -> Value {
    let mut policy = json!({
        "retry_on": "connect-failure,refused-stream,reset,gateway-error,retriable-status-codes",
        "retriable_status_codes": [503],
        "num_retries": 3,
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 2
            }
        },
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}
        }],
        "host_selection_retry_max_attempts": 5
    });
    if settings.per_try_idle_timeout_ms > 0 {
        if let Some(obj) = policy.as_object_mut() {
            obj.insert(
                "per_try_idle_timeout".into(),
                json!(duration_ms(settings.per_try_idle_timeout_ms)),
            );
        }
    }
    policy
}

/// `stats_tags` that turn the plugin's metric names (wasm-plugin/README.md, "Metrics")
/// into tags: `wasmcustom.maps.class.<c>.requests` becomes `wasmcustom.maps.requests`
/// with `maps_class=<c>`; `wasmcustom.maps.registration.<r>.edge.<e>.routed` becomes
/// `wasmcustom.maps.routed` with `maps_registration=<r>` and `maps_edge=<e>`;
/// `wasmcustom.maps.registration.<r>.latency_ms` becomes `wasmcustom.maps.latency_ms`
/// with `maps_registration=<r>`; `wasmcustom.maps.category.<k>.category_requests`
/// becomes `wasmcustom.maps.category_requests` with `maps_category=<k>`. In Prometheus:
/// `maps_requests{maps_class="maps"}` (Envoy drops its `wasmcustom` namespace there).
pub fn stats_tags() -> Value {
    json!([
        {"tag_name": "maps_class", "regex": r"^wasmcustom\.maps\.(class\.([^.]+)\.)"},
        {"tag_name": "maps_category", "regex": r"^wasmcustom\.maps\.(category\.([^.]+)\.)"},
        {"tag_name": "maps_registration", "regex": r"^wasmcustom\.maps\.(registration\.([^.]+)\.)"},
        {"tag_name": "maps_edge", "regex": r"^wasmcustom\.maps\.registration\.[^.]+\.(edge\.([^.]+)\.)"}
    ])
}

/// Generates the configuration for a validated `policy` whose text is `policy_json`
/// (a JSON document, or a compiled policy file: `mapsctl compile`).
///
/// ```
/// use mapsctl::envoy_config::{generate, Settings, ConfigError};
/// let text = r#"{"version": 1,
///   "edges": [{"id": "sea", "lat": 47.6, "lon": -122.3,
///              "links": [{"id": "sea-1", "address": "127.0.0.1:18001"}]},
///             {"id": "chi", "lat": 41.9, "lon": -87.6, "links": [{"id": "chi-1"}]}],
///   "registrations": [{"id": "r", "location": "Washington",
///     "primary_edge": "sea", "backup_edge": "chi",
///     "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified"}]}]}"#;
/// let engine = policy_core::load(text.as_bytes(), false).unwrap();
/// let classifier = &engine.classifier;
/// // chi-1 has no address: refused, naming it.
/// let err = generate(classifier, text, &Settings::default()).unwrap_err();
/// assert_eq!(err, ConfigError::MissingAddress(vec!["chi-1".into()]));
/// // With an override, the pair (sea, chi) gets its aggregate cluster.
/// let mut s = Settings::default();
/// s.links.insert("chi-1".into(), "127.0.0.1:18011".into());
/// let g = generate(classifier, text, &s).unwrap();
/// assert!(g.plan.iter().any(|c| c.name == "maps_sea_chi" && c.members == ["edge_sea", "edge_chi"]));
/// ```
pub fn generate(
    classifier: &Classifier,
    policy: impl AsRef<[u8]>,
    settings: &Settings,
) -> Result<Generated, ConfigError> {
    let policy_json = policy.as_ref();
    if !settings.admin.ip().is_loopback() {
        return Err(ConfigError::AdminNotLoopback(settings.admin));
    }
    let hp = &settings.health_path;
    if !hp.starts_with('/') || hp.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::BadHealthPath(hp.clone()));
    }
    for (what, value) in [
        ("node id", &settings.node_id),
        ("node cluster", &settings.node_cluster),
    ] {
        if value.trim().is_empty() || value.chars().any(char::is_control) {
            return Err(ConfigError::BadNode {
                what,
                value: value.clone(),
            });
        }
    }
    let policy = classifier.policy();
    let doc = policy.document();
    let links = link_addresses(policy, settings)?;
    let internet = match &settings.internet {
        Some(v) => Some(parse_host_port("--internet", v)?),
        None => None,
    };

    let mut plan = Vec::new();
    let mut clusters = Vec::new();
    for (ei, eps) in &links {
        let Some(edge) = doc.edges.get(*ei) else {
            continue;
        };
        let name = edge_cluster(&edge.id);
        clusters.push(edge_cluster_json(&name, eps, settings));
        plan.push(ClusterPlan {
            name,
            kind: ClusterKind::Edge,
            members: eps
                .iter()
                .map(|(id, hp)| format!("{id}={}:{}", hp.host, hp.port))
                .collect(),
        });
    }
    for (e, b) in edge_pairs(classifier, settings.all_pairs) {
        let Some(edge) = doc.edges.get(e) else {
            continue;
        };
        let backup = b.and_then(|b| doc.edges.get(b));
        let name = cluster_name(&edge.id, backup.map(|b| b.id.as_str()));
        let members = match backup {
            Some(b) => vec![edge_cluster(&edge.id), edge_cluster(&b.id)],
            None => vec![edge_cluster(&edge.id), DEFAULT_CLUSTER.to_string()],
        };
        clusters.push(aggregate_cluster_json(&name, &members));
        plan.push(ClusterPlan {
            name,
            kind: ClusterKind::Aggregate,
            members,
        });
    }
    clusters.push(default_cluster_json(internet.as_ref()));
    plan.push(ClusterPlan {
        name: DEFAULT_CLUSTER.to_string(),
        kind: ClusterKind::Default,
        members: internet
            .iter()
            .map(|hp| format!("{}:{}", hp.host, hp.port))
            .collect(),
    });

    let names = policy.headers();
    let cluster_header = names.cluster.clone();
    let trusted_hops = match policy.client_rule() {
        policy_core::ClientRule::Xff { trusted_hops } => trusted_hops,
        policy_core::ClientRule::Source => 0,
    };
    let decision_headers: Vec<String> = vec![
        names.class.clone(),
        names.cluster.clone(),
        names.decision.clone(),
    ];

    let mut maps_route = json!({
        "name": "maps",
        "match": {"prefix": "/", "headers": [{"name": cluster_header, "present_match": true}]},
        "route": {
            "cluster_header": cluster_header,
            "timeout": "0s",
            "idle_timeout": "300s",
            "retry_policy": retry_policy(settings),
            // The client address Envoy trusts: with use_remote_address and
            // xff_num_trusted_hops, the HCM makes the x-forwarded-for entry at the
            // trusted position the downstream remote address; connection_properties
            // hashes that address (never the client-written left entries).
            "hash_policy": [{"connection_properties": {"source_ip": true}}]
        }
    });
    let mut default_route = json!({
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": DEFAULT_CLUSTER,
            "timeout": "0s",
            "idle_timeout": "300s",
            "retry_policy": {"retry_on": "connect-failure,refused-stream,reset", "num_retries": 2}
        }
    });
    // Private by default: the router removes the decision headers on every route when
    // it forwards (after the route was chosen on the cluster header, and after
    // header_to_metadata copied them for the access log).
    if !settings.expose_decision_headers {
        for route in [&mut maps_route, &mut default_route] {
            if let Some(obj) = route.as_object_mut() {
                obj.insert("request_headers_to_remove".into(), json!(decision_headers));
            }
        }
    }
    let metadata_rules: Vec<Value> = [
        ("class", &names.class),
        ("cluster", &names.cluster),
        ("decision", &names.decision),
    ]
    .iter()
    .map(|(key, header)| {
        json!({
            "header": header,
            "on_header_present": {"metadata_namespace": DECISION_METADATA, "key": key, "type": "STRING"},
            "remove": false
        })
    })
    .collect();

    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "maps",
        "use_remote_address": true,
        "xff_num_trusted_hops": trusted_hops,
        "route_config": {
            "name": "maps",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [maps_route, default_route]}]
        },
        "http_filters": [
            config_discovery(HTTP_FILTER, HTTP_ECDS_FILE, TYPE_HTTP_WASM, settings),
            {"name": "envoy.filters.http.header_to_metadata",
             "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
                "request_rules": metadata_rules
             }},
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
        ],
        "access_log": [access_log_json(&settings.access_log)]
    });

    let proxy_protocol = json!({"name": "envoy.filters.listener.proxy_protocol",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"}});
    let mut http_listener = json!({
        "name": "maps_http",
        "address": listen_address(&settings.listen),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]
    });
    let original_dst = json!({"name": "envoy.filters.listener.original_dst",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}});
    // The ORIGINAL_DST default path needs the connection's original destination:
    // from the PROXY header, or (transparent interception: traffic redirected to the
    // listener, e.g. iptables REDIRECT) from the original_dst listener filter. Without
    // either, every non-MAPS request would get 503 (no host).
    let http_listener_filter = if settings.proxy_protocol {
        Some(proxy_protocol.clone())
    } else if internet.is_none() {
        Some(original_dst.clone())
    } else {
        None
    };
    if let Some(filter) = http_listener_filter {
        if let Some(obj) = http_listener.as_object_mut() {
            obj.insert("listener_filters".into(), json!([filter]));
        }
    }
    let mut listeners = vec![http_listener];
    if let Some(l4) = &settings.listen_l4 {
        let listener_filter = if settings.l4_proxy_protocol {
            proxy_protocol
        } else {
            original_dst
        };
        listeners.push(json!({
            "name": "maps_l4",
            "address": listen_address(l4),
            "listener_filters": [listener_filter],
            "filter_chains": [{"filters": [
                config_discovery(TCP_FILTER, TCP_ECDS_FILE, TYPE_NET_WASM, settings),
                {"name": "envoy.filters.network.tcp_proxy",
                 "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": "maps_l4",
                    "cluster": DEFAULT_CLUSTER,
                    "max_connect_attempts": 3,
                    "hash_policy": [{"source_ip": {}}]
                 }}
            ]}]
        }));
    }

    let bootstrap = json!({
        "node": {"id": settings.node_id, "cluster": settings.node_cluster},
        "admin": {"address": listen_address(&settings.admin)},
        "stats_config": {
            "stats_tags": stats_tags(),
            "histogram_bucket_settings": [{
                "match": {"prefix": "wasmcustom.maps."},
                "buckets": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
            }]
        },
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": 50000
            }
        }]},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    });

    let names = json!({
        "policy_version": policy_version(policy_json),
        "headers": policy.headers(),
        "client_address": policy.client_rule(),
        "edges": doc.edges.iter().map(|e| (e.id.clone(), json!(edge_cluster(&e.id)))).collect::<serde_json::Map<_, _>>(),
        "registrations": doc.registrations.iter().enumerate().map(|(i, r)| {
            (r.id.clone(), classifier.route(i).map_or(Value::Null, |route| json!(route)))
        }).collect::<serde_json::Map<_, _>>(),
        "clusters": plan,
        "default_cluster": DEFAULT_CLUSTER,
    });
    Ok(Generated {
        bootstrap,
        http_ecds: http_ecds(policy_json, settings),
        tcp_ecds: settings.listen_l4.map(|_| tcp_ecds(policy_json, settings)),
        plan,
        names,
    })
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then
/// a rename), as Envoy's file-based xDS requires: it reloads on the move.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Pretty JSON with a final newline.
pub fn to_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| String::from("{}"));
    s.push('\n');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"version": 1,
      "edges": [
        {"id": "sea", "lat": 47.6062, "lon": -122.3321,
         "links": [{"id": "sea-1", "address": "127.0.0.1:18001"}, {"id": "sea-2", "address": "127.0.0.1:18002"}]},
        {"id": "chi", "lat": 41.8781, "lon": -87.6298,
         "links": [{"id": "chi-1", "address": "127.0.0.1:18011"}, {"id": "chi-2", "address": "[::1]:18012"}]},
        {"id": "ash", "lat": 39.04, "lon": -77.49, "drained": true,
         "links": [{"id": "ash-1"}]}
      ],
      "registrations": [
        {"id": "wa", "location": "Washington", "prefixes": [{"prefix": "20.1.0.0/16", "state": "Verified"}]},
        {"id": "il", "location": "Illinois", "backup_edge": "None", "prefixes": [{"prefix": "20.2.0.0/16", "state": "Verified"}]}
      ],
      "options": {"client_address": {"from": "xff", "trusted_hops": 1}, "header_prefix": "x-edge-"}
    }"#;

    fn gen(s: &Settings) -> Result<Generated, ConfigError> {
        let engine = policy_core::load(POLICY.as_bytes(), false).unwrap();
        generate(&engine.classifier, POLICY, s)
    }

    fn names(g: &Generated) -> Vec<&str> {
        g.plan.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn clusters_follow_the_pairs_in_use() {
        let g = gen(&Settings::default()).unwrap();
        assert_eq!(
            names(&g),
            [
                "edge_sea",
                "edge_chi",
                "maps_sea_chi",
                "maps_chi",
                "internet"
            ],
            "the drained edge has no cluster; wa uses (sea, chi); il has backup None"
        );
        let chi = &g.plan[3];
        assert_eq!(chi.members, ["edge_chi", "internet"]);
        let edge_chi = &g.bootstrap["static_resources"]["clusters"][1];
        assert_eq!(
            edge_chi["load_assignment"]["policy"]["overprovisioning_factor"],
            200
        );
        assert_eq!(
            edge_chi["load_assignment"]["endpoints"][0]["lb_endpoints"][1]["endpoint"]["address"]
                ["socket_address"]["address"],
            "::1"
        );
    }

    #[test]
    fn all_pairs_covers_every_ordered_pair() {
        let s = Settings {
            all_pairs: true,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        for n in ["maps_sea", "maps_chi", "maps_sea_chi", "maps_chi_sea"] {
            assert!(names(&g).contains(&n), "{n} missing");
        }
    }

    #[test]
    fn route_and_hops_follow_the_policy_options() {
        let g = gen(&Settings::default()).unwrap();
        let hcm = &g.bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
            [0]["typed_config"];
        assert_eq!(hcm["xff_num_trusted_hops"], 1);
        let route = &hcm["route_config"]["virtual_hosts"][0]["routes"][0];
        assert_eq!(route["route"]["cluster_header"], "x-edge-cluster");
        assert_eq!(
            route["route"]["retry_policy"]["retry_priority"]["name"],
            "envoy.retry_priorities.previous_priorities"
        );
    }

    #[test]
    fn overrides_and_errors() {
        let mut s = Settings::default();
        s.links.insert("sea-9".into(), "127.0.0.1:1".into());
        assert_eq!(
            gen(&s).unwrap_err(),
            ConfigError::UnknownLink("sea-9".into())
        );
        let mut s = Settings::default();
        s.links.insert("sea-1".into(), "nope".into());
        assert!(matches!(
            gen(&s).unwrap_err(),
            ConfigError::BadAddress { .. }
        ));
        let mut s = Settings::default();
        s.links
            .insert("sea-1".into(), "edge1.example.net:8080".into());
        let g = gen(&s).unwrap();
        assert_eq!(
            g.bootstrap["static_resources"]["clusters"][0]["type"],
            "STRICT_DNS"
        );
        let s = Settings {
            admin: "0.0.0.0:9901".parse().unwrap(),
            ..Settings::default()
        };
        assert!(matches!(
            gen(&s).unwrap_err(),
            ConfigError::AdminNotLoopback(_)
        ));
    }

    #[test]
    fn ecds_carries_the_policy_and_a_version() {
        let g = gen(&Settings::default()).unwrap();
        let cfg = &g.http_ecds["resources"][0]["typed_config"]["config"];
        assert_eq!(cfg["configuration"]["value"], POLICY);
        assert_eq!(cfg["root_id"], HTTP_ROOT_ID);
        let tcp = g.tcp_ecds.unwrap();
        assert_eq!(
            tcp["resources"][0]["typed_config"]["config"]["root_id"],
            "maps_tcp"
        );
        assert_eq!(g.http_ecds["version_info"], policy_version(POLICY));
    }

    fn routes(g: &Generated) -> Vec<Value> {
        g.bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn decision_headers_stay_private_by_default_and_reach_the_access_log() {
        // Default: every route (the default/internet one too) removes all three.
        let g = gen(&Settings::default()).unwrap();
        let rs = routes(&g);
        assert_eq!(rs.len(), 2);
        for r in &rs {
            assert_eq!(
                r["request_headers_to_remove"],
                json!(["x-edge-class", "x-edge-cluster", "x-edge-decision"]),
                "route {}",
                r["name"]
            );
        }
        // Copied to dynamic metadata before the router, read by the access log.
        let hcm = &g.bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
            [0]["typed_config"];
        let filters: Vec<&str> = hcm["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            filters,
            [
                "maps",
                "envoy.filters.http.header_to_metadata",
                "envoy.filters.http.router"
            ]
        );
        let rules = &hcm["http_filters"][1]["typed_config"]["request_rules"];
        assert_eq!(rules[2]["header"], "x-edge-decision");
        assert_eq!(rules[2]["on_header_present"]["metadata_namespace"], "maps");
        assert_eq!(rules[2]["remove"], false);
        let log = &hcm["access_log"][0]["typed_config"];
        assert_eq!(log["path"], "/dev/stdout");
        assert_eq!(
            log["log_format"]["json_format"]["maps_decision"],
            "%DYNAMIC_METADATA(maps:decision)%"
        );
        // Asked for: no removal anywhere.
        let s = Settings {
            expose_decision_headers: true,
            access_log: "/var/log/envoy/maps.log".into(),
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        for r in &routes(&g) {
            assert!(r.get("request_headers_to_remove").is_none(), "{r}");
        }
    }

    #[test]
    fn the_l4_listener_filter_follows_the_options() {
        let g = gen(&Settings::default()).unwrap();
        let listeners = &g.bootstrap["static_resources"]["listeners"];
        assert_eq!(
            listeners[1]["listener_filters"][0]["name"],
            "envoy.filters.listener.original_dst"
        );
        let s = Settings {
            l4_proxy_protocol: true,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        let listeners = &g.bootstrap["static_resources"]["listeners"];
        assert_eq!(
            listeners[1]["listener_filters"][0]["name"],
            "envoy.filters.listener.proxy_protocol"
        );
        let s = Settings {
            listen_l4: None,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        assert_eq!(
            g.bootstrap["static_resources"]["listeners"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(g.tcp_ecds.is_none());
    }

    #[test]
    fn proxy_protocol_on_the_http_listener() {
        // With a static default path, no listener filter unless asked (without one,
        // original_dst: see the test below).
        let g = gen(&Settings {
            internet: Some("127.0.0.1:8080".into()),
            ..Settings::default()
        })
        .unwrap();
        let listeners = &g.bootstrap["static_resources"]["listeners"];
        assert!(listeners[0].get("listener_filters").is_none());
        let s = Settings {
            proxy_protocol: true,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        let listeners = &g.bootstrap["static_resources"]["listeners"];
        assert_eq!(listeners[0]["name"], "maps_http");
        assert_eq!(
            listeners[0]["listener_filters"],
            json!([{"name": "envoy.filters.listener.proxy_protocol",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"}}])
        );
        // The L4 listener keeps its own choice.
        assert_eq!(
            listeners[1]["listener_filters"][0]["name"],
            "envoy.filters.listener.original_dst"
        );
    }

    #[test]
    fn the_plan_names_headers_routes_and_the_client_rule() {
        let g = gen(&Settings::default()).unwrap();
        let n = &g.names;
        assert_eq!(n["policy_version"], policy_version(POLICY));
        assert_eq!(n["headers"]["cluster"], "x-edge-cluster");
        assert_eq!(
            n["client_address"],
            json!({"from": "xff", "trusted_hops": 1})
        );
        assert_eq!(n["edges"]["chi"], "edge_chi");
        assert_eq!(n["registrations"]["wa"]["cluster"], "maps_sea_chi");
        assert_eq!(n["default_cluster"], "internet");
    }

    fn http_listener(g: &Generated) -> &Value {
        &g.bootstrap["static_resources"]["listeners"][0]
    }

    #[test]
    fn without_internet_the_http_listener_recovers_the_original_destination() {
        // Issue 13, finding 5: the ORIGINAL_DST default path needs the original
        // destination; before, the HTTP listener had no listener filter (503).
        let g = gen(&Settings::default()).unwrap();
        let clusters = g.bootstrap["static_resources"]["clusters"]
            .as_array()
            .unwrap();
        let internet = clusters.iter().find(|c| c["name"] == "internet").unwrap();
        assert_eq!(internet["type"], "ORIGINAL_DST");
        assert_eq!(
            http_listener(&g)["listener_filters"],
            json!([{"name": "envoy.filters.listener.original_dst",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}}])
        );
        // The PROXY header gives the destination instead.
        let s = Settings {
            proxy_protocol: true,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        let f = http_listener(&g)["listener_filters"].as_array().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0]["name"], "envoy.filters.listener.proxy_protocol");
        // A static default path needs neither.
        let s = Settings {
            internet: Some("127.0.0.1:8080".into()),
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        assert!(http_listener(&g).get("listener_filters").is_none());
    }

    #[test]
    fn health_path_must_be_a_request_path() {
        // Issue 13, finding 7: CR/LF wrote a configuration Envoy rejects.
        for bad in [
            "healthz",
            "",
            "/healthz\r\nHost: evil",
            "/a\nb",
            "/a b",
            "/a\u{0}",
            "/a\u{7f}",
        ] {
            let s = Settings {
                health_path: bad.into(),
                ..Settings::default()
            };
            assert_eq!(
                gen(&s).unwrap_err(),
                ConfigError::BadHealthPath(bad.into()),
                "{bad:?}"
            );
        }
        let msg = ConfigError::BadHealthPath("x".into()).to_string();
        assert!(msg.contains("must start with /"), "{msg}");
        for good in ["/", "/healthz", "/health/check?deep=1"] {
            let s = Settings {
                health_path: good.into(),
                ..Settings::default()
            };
            assert!(gen(&s).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_link_hash_is_the_trusted_client_address() {
        // Issue 13, finding 7: hashing the whole x-forwarded-for let a client spread
        // itself over links by varying its own left entries.
        let g = gen(&Settings::default()).unwrap();
        let rs = routes(&g);
        assert_eq!(
            rs[0]["route"]["hash_policy"],
            json!([{"connection_properties": {"source_ip": true}}])
        );
        assert!(!g
            .bootstrap
            .to_string()
            .contains("\"header_name\":\"x-forwarded-for\""));
    }

    #[test]
    fn link_faults_are_caught_fast() {
        // Issue 13, finding 8: no per-try timeout, 1 s connect timeouts, a 25 %
        // retry budget and slow health checks lost requests on a black-holed link.
        let g = gen(&Settings::default()).unwrap();
        let edge = &g.bootstrap["static_resources"]["clusters"][0];
        assert_eq!(edge["connect_timeout"], "0.250s");
        assert_eq!(edge["close_connections_on_host_health_failure"], true);
        assert_eq!(edge["health_checks"][0]["interval"], "0.500s");
        assert_eq!(edge["health_checks"][0]["timeout"], "0.250s");
        assert_eq!(
            edge["outlier_detection"]["enforcing_failure_percentage"],
            100
        );
        assert_eq!(edge["outlier_detection"]["max_ejection_percent"], 50);
        assert_eq!(
            edge["circuit_breakers"]["thresholds"][0]["retry_budget"]["budget_percent"]["value"],
            100.0
        );
        let rs = routes(&g);
        assert_eq!(
            rs[0]["route"]["retry_policy"]["per_try_idle_timeout"],
            "1.000s"
        );
        let s = Settings {
            per_try_idle_timeout_ms: 0,
            connect_timeout_ms: 1000,
            ..Settings::default()
        };
        let g = gen(&s).unwrap();
        assert!(routes(&g)[0]["route"]["retry_policy"]
            .get("per_try_idle_timeout")
            .is_none());
        assert_eq!(
            g.bootstrap["static_resources"]["clusters"][0]["connect_timeout"],
            "1.000s"
        );
    }

    #[test]
    fn edge_cluster_names_escape_like_the_aggregates() {
        assert_eq!(edge_cluster("a_b"), "edge_a~5Fb");
        assert_eq!(edge_cluster("sea"), "edge_sea");
    }
}
