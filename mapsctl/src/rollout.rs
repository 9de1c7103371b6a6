//! `mapsctl rollout`: one policy to a fleet of Envoys, a canary first.
//!
//! ```text
//!  policy ──validate──▶ pre-flight, every edge (nothing written yet):
//!                        admin answers · ECDS files readable · the file's version is the
//!                        one Envoy serves · the plugin's gauge agrees · every cluster the
//!                        policy routes to exists
//!         ──▶ canary ──▶ batch 1 ──▶ batch 2 ──▶ …      one step, per edge of the step:
//!               │                                       baseline window (--settle-s)
//!               │                                       write the ECDS files (rename)
//!               │                                       wait: served (version text and
//!               │                                       gauge) or refused (--timeout-s)
//!               │                                       health window (--settle-s), judge
//!               ▼
//!   refused / unhealthy ──▶ write the last-good files back, wait until the edge serves
//!                           them again, stop (later edges are never touched)
//! ```
//!
//! This module is the part without I/O, so it can be tested without Envoy: reading
//! `--edge` values, the batches, rewriting an ECDS file's policy, reading Envoy's
//! `/stats?format=json` into a [`Snapshot`], telling served from refused
//! ([`progress`]) and judging a health window ([`judge`]). The command
//! (`cli/rollout.rs`) does the HTTP and the files.
//!
//! What an edge is: Envoy's admin interface and the directory of the ECDS files Envoy
//! watches (`mapsctl envoy-config --out DIR` writes `DIR/xds/maps-http.json` and
//! `DIR/xds/maps-tcp.json`). The policy travels inside those files, as the plugin's
//! `StringValue` configuration, never inline in a gRPC xDS message: a policy of any size
//! reaches Envoy (the 4 MiB gRPC message limit does not apply to files).
//!
//! Invariants: a file is only ever replaced whole (a temporary file in the same
//! directory, then a rename: Envoy reloads on the move); only `version_info` and each
//! resource's `configuration.value` change; the bytes of the last-good file are what a
//! rollback writes back.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;

/// The plugin's gauge of the policy it serves ([`policy_core::policy_version_number`]).
pub const VERSION_GAUGE: &str = "wasmcustom.maps.policy.version";
/// The plugin's counter of configurations it refused.
pub const REJECTED_COUNTER: &str = "wasmcustom.maps.policy.rejected";

/// One `/stats` query for everything a [`Snapshot`] reads (Envoy's `filter` is a
/// regular expression over full stat names).
pub const STATS_FILTER: &str = concat!(
    r"^(wasmcustom\.maps\.(class\.[^.]+\.(requests|connections)|policy\.(version|rejected))",
    r"|extension_config_discovery\..+\.(version_text|update_rejected|update_success)",
    r"|http\..+\.downstream_rq_(5xx|completed))$"
);

/// The classes whose share of decisions must not rise (by default): a registered
/// customer's traffic that no longer takes MAPS because of the policy.
pub const WATCHED_CLASSES: [&str; 3] = ["unverified", "excluded-category", "no-edge"];

/// Envoy's admin interface: `http://HOST:PORT` (no TLS, no path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUrl {
    /// A host name or an address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl AdminUrl {
    /// The URL of `path` (which starts with `/`) on this admin interface.
    pub fn join(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl fmt::Display for AdminUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// Why an `--edge` value (or its admin URL) was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpecError(pub String);

impl fmt::Display for EdgeSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EdgeSpecError {}

impl FromStr for AdminUrl {
    type Err = EdgeSpecError;

    /// ```
    /// use mapsctl::rollout::AdminUrl;
    /// let a: AdminUrl = "http://127.0.0.1:9901".parse().unwrap();
    /// assert_eq!(a.join("/ready"), "http://127.0.0.1:9901/ready");
    /// assert!("https://127.0.0.1:9901".parse::<AdminUrl>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            EdgeSpecError(format!(
                "admin URL {s:?}: {why} (expected http://HOST:PORT, e.g. http://127.0.0.1:9901)"
            ))
        };
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| bad("Envoy's admin interface speaks plain http://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("no path, query or user part"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, p) = v6.split_once("]:").ok_or_else(|| bad("a port is needed"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address between the brackets"));
            }
            (h, p)
        } else {
            let (h, p) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("a port is needed"))?;
            let name_ok = !h.is_empty()
                && h.len() <= 253
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !name_ok {
                return Err(bad("the host must be a name or an address"));
            }
            (h, p)
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be 1-65535"))?;
        Ok(AdminUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// One edge of the fleet: `ADMIN_URL=ECDS_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpec {
    /// Envoy's admin interface.
    pub admin: AdminUrl,
    /// The directory of the ECDS files this Envoy watches.
    pub ecds_dir: PathBuf,
}

impl FromStr for EdgeSpec {
    type Err = EdgeSpecError;

    /// ```
    /// use mapsctl::rollout::EdgeSpec;
    /// let e: EdgeSpec = "http://127.0.0.1:9901=/etc/envoy/xds".parse().unwrap();
    /// assert_eq!(e.ecds_dir, std::path::Path::new("/etc/envoy/xds"));
    /// assert!("http://127.0.0.1:9901".parse::<EdgeSpec>().is_err()); // no directory
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (url, dir) = s.split_once('=').ok_or_else(|| {
            EdgeSpecError(format!(
                "--edge {s:?}: expected ADMIN_URL=ECDS_DIR (e.g. http://127.0.0.1:9901=/etc/envoy/xds)"
            ))
        })?;
        if dir.is_empty() {
            return Err(EdgeSpecError(format!(
                "--edge {s:?}: no ECDS directory after '='"
            )));
        }
        Ok(EdgeSpec {
            admin: url.parse()?,
            ecds_dir: PathBuf::from(dir),
        })
    }
}

/// The steps of a rollout over `edges` edges: the canary (the first) alone, then the
/// others `batch` at a time (`batch` 0 counts as 1).
///
/// ```
/// use mapsctl::rollout::batches;
/// assert_eq!(batches(5, 2), vec![0..1, 1..3, 3..5]);
/// assert_eq!(batches(0, 2), vec![]);
/// ```
pub fn batches(edges: usize, batch: usize) -> Vec<Range<usize>> {
    let batch = batch.max(1);
    let mut out = Vec::new();
    if edges == 0 {
        return out;
    }
    out.push(0..1);
    let mut start = 1;
    while start < edges {
        let end = (start + batch).min(edges);
        out.push(start..end);
        start = end;
    }
    out
}

/// What an ECDS file delivers: its version and the policy in its first resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsFile {
    /// `version_info` (Envoy shows it as `extension_config_discovery.*.version_text`).
    pub version: String,
    /// Each resource's name (the filter's ECDS name, as in Envoy's stats).
    pub resources: Vec<String>,
    /// The policy text (the first resource's `configuration.value`).
    pub policy: String,
}

const CONFIG_POINTER: &str = "/typed_config/config/configuration";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";

fn resources_mut(doc: &mut Value) -> Result<&mut Vec<Value>, String> {
    match doc.get_mut("resources").and_then(Value::as_array_mut) {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(String::from(
            "no \"resources\" list: not an ECDS file (mapsctl envoy-config --out writes them)",
        )),
    }
}

fn configuration_mut(
    res: &mut Value,
    i: usize,
) -> Result<&mut serde_json::Map<String, Value>, String> {
    let cfg = res
        .pointer_mut(CONFIG_POINTER)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            format!("resource {i} has no plugin configuration at /resources/{i}{CONFIG_POINTER}")
        })?;
    let typed = cfg.get("@type").and_then(Value::as_str) == Some(STRING_VALUE);
    if !typed || !cfg.get("value").is_some_and(Value::is_string) {
        return Err(format!(
            "resource {i}: the configuration is not a {STRING_VALUE} (the policy text, as mapsctl envoy-config writes it)"
        ));
    }
    Ok(cfg)
}

/// Reads an ECDS file written by `mapsctl envoy-config` (or by a rollout).
///
/// ```
/// let text = r#"{"version_info": "v1", "resources": [{"name": "maps", "typed_config": {"config": {
///   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"}}}}]}"#;
/// let f = mapsctl::rollout::read_ecds(text).unwrap();
/// assert_eq!((f.version.as_str(), f.policy.as_str()), ("v1", "{}"));
/// assert!(mapsctl::rollout::read_ecds("{}").is_err());
/// ```
pub fn read_ecds(text: &str) -> Result<EcdsFile, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = doc
        .get("version_info")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut names = Vec::new();
    let mut policy = None;
    for (i, res) in resources_mut(&mut doc)?.iter_mut().enumerate() {
        let name = res
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("resource {i} has no name"))?
            .to_string();
        let cfg = configuration_mut(res, i)?;
        if policy.is_none() {
            policy = cfg.get("value").and_then(Value::as_str).map(String::from);
        }
        names.push(name);
    }
    Ok(EcdsFile {
        version,
        resources: names,
        policy: policy.unwrap_or_default(),
    })
}

/// `text` (an ECDS file) delivering `policy` as `version`: `version_info` and every
/// resource's `configuration.value` change, nothing else does (pretty JSON, final
/// newline, as `mapsctl envoy-config` writes).
///
/// ```
/// let text = r#"{"version_info": "v1", "resources": [{"name": "maps", "typed_config": {"config": {
///   "root_id": "maps",
///   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"}}}}]}"#;
/// let new = mapsctl::rollout::ecds_with_policy(text, "{\"version\": 1}", "v2").unwrap();
/// let f = mapsctl::rollout::read_ecds(&new).unwrap();
/// assert_eq!((f.version.as_str(), f.policy.as_str()), ("v2", "{\"version\": 1}"));
/// assert!(new.contains("\"root_id\": \"maps\""));
/// ```
pub fn ecds_with_policy(text: &str, policy: &str, version: &str) -> Result<String, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    for (i, res) in resources_mut(&mut doc)?.iter_mut().enumerate() {
        configuration_mut(res, i)?.insert("value".into(), Value::from(policy));
    }
    match doc.as_object_mut() {
        Some(o) => {
            o.insert("version_info".into(), Value::from(version));
        }
        None => return Err(String::from("not a JSON object")),
    }
    Ok(crate::envoy_config::to_text(&doc))
}

/// One ECDS resource, as Envoy's stats show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcdsStats {
    /// `version_text`: the `version_info` of the configuration Envoy serves.
    pub version_text: String,
    /// `update_rejected`.
    pub rejected: u64,
    /// `update_success`.
    pub success: u64,
}

/// What one `/stats?format=json&filter=`[`STATS_FILTER`] read says about an Envoy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `http.<prefix>.downstream_rq_completed`, every HTTP connection manager but the
    /// admin interface's.
    pub rq_completed: u64,
    /// `http.<prefix>.downstream_rq_5xx`, likewise.
    pub rq_5xx: u64,
    /// The plugin's decisions by class (HTTP requests plus TCP connections).
    pub classes: BTreeMap<String, u64>,
    /// The plugin's [`VERSION_GAUGE`] (`None`: no plugin configured yet, or a plugin
    /// without it).
    pub version_gauge: Option<u64>,
    /// The plugin's [`REJECTED_COUNTER`].
    pub plugin_rejected: u64,
    /// ECDS resources by name (`extension_config_discovery.<kind>.<name>.*`).
    pub ecds: BTreeMap<String, EcdsStats>,
}

impl Snapshot {
    /// Reads Envoy's `/stats?format=json` answer (entries other than the ones
    /// [`STATS_FILTER`] names are ignored).
    ///
    /// ```
    /// let s = mapsctl::rollout::Snapshot::parse(r#"{"stats": [
    ///   {"name": "wasmcustom.maps.policy.version", "value": 42},
    ///   {"name": "http.maps.downstream_rq_completed", "value": 10},
    ///   {"name": "http.admin.downstream_rq_completed", "value": 99},
    ///   {"name": "extension_config_discovery.http_filter.maps.version_text", "value": "c0ec"}]}"#).unwrap();
    /// assert_eq!((s.version_gauge, s.rq_completed), (Some(42), 10));
    /// assert_eq!(s.ecds["maps"].version_text, "c0ec");
    /// assert!(mapsctl::rollout::Snapshot::parse("<html>").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("/stats answer is not JSON: {e}"))?;
        let stats = doc
            .get("stats")
            .and_then(Value::as_array)
            .ok_or_else(|| String::from("/stats answer has no \"stats\" list"))?;
        let mut s = Snapshot::default();
        for entry in stats {
            let (Some(name), Some(value)) = (
                entry.get("name").and_then(Value::as_str),
                entry.get("value"),
            ) else {
                continue;
            };
            let n = value.as_u64().unwrap_or(0);
            if name == VERSION_GAUGE {
                s.version_gauge = value.as_u64();
            } else if name == REJECTED_COUNTER {
                s.plugin_rejected = n;
            } else if let Some(rest) = name.strip_prefix("wasmcustom.maps.class.") {
                if let Some((class, field)) = rest.split_once('.') {
                    if field == "requests" || field == "connections" {
                        *s.classes.entry(class.to_string()).or_default() += n;
                    }
                }
            } else if let Some(rest) = name.strip_prefix("extension_config_discovery.") {
                // <kind>.<name>.<field>; ECDS names hold no dot in configurations
                // mapsctl writes, but take the name as everything between.
                let Some((kind_name, field)) = rest.rsplit_once('.') else {
                    continue;
                };
                let Some((_kind, res)) = kind_name.split_once('.') else {
                    continue;
                };
                let e = s.ecds.entry(res.to_string()).or_default();
                match field {
                    "version_text" => e.version_text = value.as_str().unwrap_or("").to_string(),
                    "update_rejected" => e.rejected = n,
                    "update_success" => e.success = n,
                    _ => {}
                }
            } else if name.starts_with("http.") && !name.starts_with("http.admin.") {
                if name.ends_with(".downstream_rq_completed") {
                    s.rq_completed += n;
                } else if name.ends_with(".downstream_rq_5xx") {
                    s.rq_5xx += n;
                }
            }
        }
        Ok(s)
    }

    /// Whether this Envoy serves `version` (the ECDS version text of every resource
    /// in `resources`) and its plugin reports `number` (the gauge).
    pub fn serves(&self, resources: &[String], version: &str, number: u64) -> bool {
        self.version_gauge == Some(number)
            && resources
                .iter()
                .all(|r| self.ecds.get(r).is_some_and(|e| e.version_text == version))
    }
}

/// Where a pushed policy stands on one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not yet served, not refused.
    Waiting,
    /// Every resource serves the new version and the plugin's gauge shows it.
    Served,
    /// Envoy rejected an update (`update_rejected` rose) or the plugin refused a
    /// configuration (`maps.policy.rejected` rose): the message says which.
    Refused(String),
}

/// Compares a snapshot taken after the push (`now`) with one taken just before it.
///
/// ```
/// use mapsctl::rollout::{progress, Progress, Snapshot};
/// let before = Snapshot::default();
/// let mut now = Snapshot::default();
/// assert_eq!(progress(&before, &now, &["maps".into()], "v2", 2), Progress::Waiting);
/// now.plugin_rejected = 1;
/// assert!(matches!(progress(&before, &now, &["maps".into()], "v2", 2), Progress::Refused(_)));
/// ```
pub fn progress(
    before: &Snapshot,
    now: &Snapshot,
    resources: &[String],
    version: &str,
    number: u64,
) -> Progress {
    for r in resources {
        let was = before.ecds.get(r).map_or(0, |e| e.rejected);
        let is = now.ecds.get(r).map_or(0, |e| e.rejected);
        if is > was {
            return Progress::Refused(format!(
                "Envoy rejected the update of {r} (update_rejected {was} -> {is})"
            ));
        }
    }
    if now.plugin_rejected > before.plugin_rejected {
        return Progress::Refused(format!(
            "the plugin refused the policy (maps.policy.rejected {} -> {}; Envoy's log has the errors)",
            before.plugin_rejected, now.plugin_rejected
        ));
    }
    if now.serves(resources, version, number) {
        Progress::Served
    } else {
        Progress::Waiting
    }
}

/// The traffic of one window (two snapshots of one Envoy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    /// HTTP requests completed.
    pub requests: u64,
    /// Of them, answered 5xx.
    pub rq_5xx: u64,
    /// The plugin's decisions (requests and connections).
    pub decisions: u64,
    /// Of them, in a watched class.
    pub watched: u64,
}

impl Window {
    /// From `a` to `b` (counters that went down, as after a restart, count 0).
    pub fn between(a: &Snapshot, b: &Snapshot, watched: &[String]) -> Window {
        let class = |s: &Snapshot, c: &str| s.classes.get(c).copied().unwrap_or(0);
        let decisions = b
            .classes
            .keys()
            .map(|c| class(b, c).saturating_sub(class(a, c)))
            .sum();
        let watched = watched
            .iter()
            .map(|c| class(b, c).saturating_sub(class(a, c)))
            .sum();
        Window {
            requests: b.rq_completed.saturating_sub(a.rq_completed),
            rq_5xx: b.rq_5xx.saturating_sub(a.rq_5xx),
            decisions,
            watched,
        }
    }

    /// Share of requests answered 5xx (0 without requests).
    pub fn ratio_5xx(&self) -> f64 {
        ratio(self.rq_5xx, self.requests)
    }

    /// Share of decisions in a watched class (0 without decisions).
    pub fn ratio_watched(&self) -> f64 {
        ratio(self.watched, self.decisions)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// What a health window may show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Largest rise of the 5xx share (0.01: one percentage point) over the window
    /// before the push.
    pub max_5xx_increase: f64,
    /// Largest rise of the watched classes' share of decisions.
    pub max_excluded_increase: f64,
    /// Fewest requests plus connections the window must see to be judged.
    pub min_requests: u64,
}

/// A health verdict: `Ok(())` or why not.
///
/// ```
/// use mapsctl::rollout::{judge, Thresholds, Window};
/// let t = Thresholds { max_5xx_increase: 0.01, max_excluded_increase: 0.01, min_requests: 10 };
/// let before = Window { requests: 100, rq_5xx: 0, decisions: 100, watched: 0 };
/// assert!(judge(&before, &before, &t).is_ok());
/// let worse = Window { requests: 100, rq_5xx: 0, decisions: 100, watched: 20 };
/// assert!(judge(&before, &worse, &t).unwrap_err().contains("20.0%"));
/// ```
pub fn judge(before: &Window, after: &Window, t: &Thresholds) -> Result<(), String> {
    let seen = after.requests.max(after.decisions);
    if seen < t.min_requests {
        return Err(format!(
            "only {seen} request(s) in the health window (--min-requests {}): its health cannot be judged; \
             lengthen --settle-s, or pass --min-requests 0 to accept an edge without traffic",
            t.min_requests
        ));
    }
    let rise_5xx = after.ratio_5xx() - before.ratio_5xx();
    if rise_5xx > t.max_5xx_increase {
        return Err(format!(
            "5xx rose from {} to {} of requests (more than --max-5xx-increase {})",
            pct(before.ratio_5xx()),
            pct(after.ratio_5xx()),
            t.max_5xx_increase
        ));
    }
    let rise = after.ratio_watched() - before.ratio_watched();
    if rise > t.max_excluded_increase {
        return Err(format!(
            "decisions without MAPS (watched classes) rose from {} to {} ({} of {}; more than --max-excluded-increase {})",
            pct(before.ratio_watched()),
            pct(after.ratio_watched()),
            after.watched,
            after.decisions,
            t.max_excluded_increase
        ));
    }
    Ok(())
}

fn pct(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// Cluster names of Envoy's `/clusters?format=json` answer.
pub fn cluster_names(text: &str) -> Result<Vec<String>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("/clusters answer is not JSON: {e}"))?;
    Ok(doc
        .get("cluster_statuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    // A real Envoy 1.40's answer (trimmed) to /stats?format=json&filter=STATS_FILTER,
    // with the demo policy served and five maps requests.
    const STATS: &str = r#"{"stats":[
      {"name":"wasmcustom.maps.class.maps.requests","value":5},
      {"name":"wasmcustom.maps.class.unverified.requests","value":2},
      {"name":"wasmcustom.maps.class.maps.connections","value":1},
      {"name":"wasmcustom.maps.policy.rejected","value":0},
      {"name":"wasmcustom.maps.policy.version","value":3393930871552662},
      {"name":"extension_config_discovery.http_filter.maps.version_text","value":"c0ec31bfdba969d6"},
      {"name":"extension_config_discovery.network_filter.maps_tcp.version_text","value":"c0ec31bfdba969d6"},
      {"name":"extension_config_discovery.http_filter.maps.update_rejected","value":0},
      {"name":"extension_config_discovery.http_filter.maps.update_success","value":1},
      {"name":"extension_config_discovery.network_filter.maps_tcp.update_rejected","value":0},
      {"name":"http.admin.downstream_rq_5xx","value":1},
      {"name":"http.admin.downstream_rq_completed","value":6},
      {"name":"http.maps.downstream_rq_5xx","value":0},
      {"name":"http.maps.downstream_rq_completed","value":7},
      {"histograms":{"supported_quantiles":[0,50,100],"computed_quantiles":[]}}]}"#;

    fn res() -> Vec<String> {
        vec!["maps".into(), "maps_tcp".into()]
    }

    #[test]
    fn a_real_envoy_stats_answer_reads_into_a_snapshot() {
        let s = Snapshot::parse(STATS).unwrap();
        assert_eq!(
            s.rq_completed, 7,
            "the admin interface's requests are not traffic"
        );
        assert_eq!(s.rq_5xx, 0);
        assert_eq!(s.classes["maps"], 6, "requests and connections");
        assert_eq!(s.classes["unverified"], 2);
        assert_eq!(s.version_gauge, Some(3393930871552662));
        assert_eq!(s.ecds["maps_tcp"].version_text, "c0ec31bfdba969d6");
        assert_eq!(s.ecds["maps"].success, 1);
        // The gauge is the first 13 hex digits of the version text.
        assert_eq!(
            s.version_gauge.unwrap(),
            u64::from_str_radix(&"c0ec31bfdba969d6"[..13], 16).unwrap()
        );
        assert!(s.serves(&res(), "c0ec31bfdba969d6", 3393930871552662));
        assert!(!s.serves(&res(), "c0ec31bfdba969d6", 1));
        assert!(!s.serves(&["other".into()], "c0ec31bfdba969d6", 3393930871552662));
    }

    #[test]
    fn progress_tells_served_refused_and_waiting_apart() {
        let before = Snapshot::parse(STATS).unwrap();
        let v = "c0ec31bfdba969d6";
        let n = 3393930871552662;
        // Nothing changed yet and another version is expected: waiting.
        assert_eq!(
            progress(&before, &before, &res(), "v2", 2),
            Progress::Waiting
        );
        // Already there.
        assert_eq!(progress(&before, &before, &res(), v, n), Progress::Served);
        // Served on the HTTP filter only: still waiting for the network one.
        let mut half = before.clone();
        half.ecds.get_mut("maps").unwrap().version_text = "v2".into();
        half.version_gauge = Some(2);
        assert_eq!(progress(&before, &half, &res(), "v2", 2), Progress::Waiting);
        // The gauge lags the version text: waiting.
        let mut lag = before.clone();
        for e in lag.ecds.values_mut() {
            e.version_text = "v2".into();
        }
        assert_eq!(progress(&before, &lag, &res(), "v2", 2), Progress::Waiting);
        lag.version_gauge = Some(2);
        assert_eq!(progress(&before, &lag, &res(), "v2", 2), Progress::Served);
        // Envoy's rejection of the network filter's update.
        let mut rej = before.clone();
        rej.ecds.get_mut("maps_tcp").unwrap().rejected = 1;
        match progress(&before, &rej, &res(), "v2", 2) {
            Progress::Refused(m) => assert!(m.contains("maps_tcp"), "{m}"),
            p => panic!("{p:?}"),
        }
        // The plugin's refusal wins over a served-looking state.
        let mut both = lag.clone();
        both.plugin_rejected = 3;
        assert!(matches!(
            progress(&before, &both, &res(), "v2", 2),
            Progress::Refused(_)
        ));
    }

    #[test]
    fn a_health_window_is_judged_on_rises_not_levels() {
        let t = Thresholds {
            max_5xx_increase: 0.01,
            max_excluded_increase: 0.02,
            min_requests: 10,
        };
        // 5% of 5xx before and after: no rise, healthy.
        let noisy = Window {
            requests: 100,
            rq_5xx: 5,
            decisions: 100,
            watched: 10,
        };
        assert!(judge(&noisy, &noisy, &t).is_ok());
        // 5xx from 5% to 10%.
        let worse = Window {
            rq_5xx: 10,
            ..noisy
        };
        let e = judge(&noisy, &worse, &t).unwrap_err();
        assert!(e.contains("5xx rose from 5.0% to 10.0%"), "{e}");
        // Watched classes from 10% to 12%: at the threshold, healthy; 13%: not.
        assert!(judge(
            &noisy,
            &Window {
                watched: 12,
                ..noisy
            },
            &t
        )
        .is_ok());
        let e = judge(
            &noisy,
            &Window {
                watched: 13,
                ..noisy
            },
            &t,
        )
        .unwrap_err();
        assert!(e.contains("13.0%") && e.contains("13 of 100"), "{e}");
        // Too little traffic: not judged healthy.
        let quiet = Window {
            requests: 3,
            rq_5xx: 0,
            decisions: 3,
            watched: 0,
        };
        let e = judge(&noisy, &quiet, &t).unwrap_err();
        assert!(e.contains("--min-requests 10"), "{e}");
        let lax = Thresholds {
            min_requests: 0,
            ..t
        };
        assert!(judge(&Window::default(), &Window::default(), &lax).is_ok());
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let a = Snapshot::parse(STATS).unwrap();
        let mut b = a.clone();
        b.rq_completed += 50;
        b.rq_5xx += 1;
        *b.classes.get_mut("maps").unwrap() += 40;
        *b.classes.get_mut("unverified").unwrap() += 10;
        b.classes.insert("no-edge".into(), 5);
        let watched: Vec<String> = WATCHED_CLASSES.iter().map(|c| c.to_string()).collect();
        let w = Window::between(&a, &b, &watched);
        assert_eq!(
            w,
            Window {
                requests: 50,
                rq_5xx: 1,
                decisions: 55,
                watched: 15
            }
        );
        // After a restart (counters back to 0) nothing is negative.
        let w = Window::between(&b, &Snapshot::default(), &watched);
        assert_eq!(w, Window::default());
    }

    #[test]
    fn admin_urls_are_plain_http_with_an_explicit_host_and_port() {
        let ok = [
            ("http://127.0.0.1:9901", "http://127.0.0.1:9901"),
            ("http://127.0.0.1:9901/", "http://127.0.0.1:9901"),
            ("http://[::1]:9901", "http://[::1]:9901"),
            (
                "http://envoy-7.example.net:9901",
                "http://envoy-7.example.net:9901",
            ),
        ];
        for (text, shown) in ok {
            assert_eq!(text.parse::<AdminUrl>().unwrap().to_string(), shown);
        }
        for bad in [
            "127.0.0.1:9901",
            "https://127.0.0.1:9901",
            "http://127.0.0.1",
            "http://:9901",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:9901/stats",
            "http://user@127.0.0.1:9901",
            "http://[::1:9901",
            "http://ho st:9901",
        ] {
            let e = bad.parse::<AdminUrl>().unwrap_err();
            assert!(e.0.contains("http://HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_edge_is_an_admin_url_and_a_directory() {
        let e: EdgeSpec = "http://127.0.0.1:9901=/srv/envoy/xds".parse().unwrap();
        assert_eq!(e.admin.port, 9901);
        assert_eq!(e.ecds_dir, PathBuf::from("/srv/envoy/xds"));
        // A directory may hold '='.
        let e: EdgeSpec = "http://127.0.0.1:9901=/srv/a=b".parse().unwrap();
        assert_eq!(e.ecds_dir, PathBuf::from("/srv/a=b"));
        assert!("http://127.0.0.1:9901=".parse::<EdgeSpec>().is_err());
        assert!("/srv/envoy/xds".parse::<EdgeSpec>().is_err());
    }

    #[test]
    fn batches_put_the_canary_alone_first() {
        assert_eq!(batches(1, 5), vec![0..1]);
        assert_eq!(batches(3, 2), vec![0..1, 1..3]);
        assert_eq!(batches(4, 1), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(batches(4, 0), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(batches(10, 100), vec![0..1, 1..10]);
    }

    const ECDS: &str = r#"{
  "version_info": "old",
  "resources": [
    {
      "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
      "name": "maps",
      "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
          "name": "maps",
          "root_id": "maps",
          "vm_config": {"vm_id": "maps", "runtime": "envoy.wasm.runtime.v8"},
          "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": "{\"version\": 1}"
          },
          "failure_policy": "FAIL_RELOAD"
        }
      }
    }
  ]
}
"#;

    #[test]
    fn rewriting_an_ecds_file_changes_the_policy_and_version_only() {
        let new = ecds_with_policy(ECDS, "{\"version\": 1, \"edges\": []}", "new").unwrap();
        let mut a: Value = serde_json::from_str(ECDS).unwrap();
        let b: Value = serde_json::from_str(&new).unwrap();
        a["version_info"] = "new".into();
        a["resources"][0]["typed_config"]["config"]["configuration"]["value"] =
            "{\"version\": 1, \"edges\": []}".into();
        assert_eq!(a, b);
        // Key order is kept (a reviewer's diff shows the policy only).
        assert!(new.find("\"name\": \"maps\"").unwrap() < new.find("\"root_id\"").unwrap());
        let f = read_ecds(&new).unwrap();
        assert_eq!(f.resources, vec!["maps".to_string()]);
        assert_eq!(f.version, "new");
    }

    #[test]
    fn an_ecds_file_without_a_string_policy_is_refused_with_where() {
        let other = ECDS.replace("google.protobuf.StringValue", "google.protobuf.Struct");
        let e = ecds_with_policy(&other, "{}", "v").unwrap_err();
        assert!(e.contains("resource 0") && e.contains("StringValue"), "{e}");
        let e = read_ecds(r#"{"version_info": "v", "resources": []}"#).unwrap_err();
        assert!(e.contains("resources"), "{e}");
        let e = read_ecds(r#"{"resources": [{"name": "maps"}]}"#).unwrap_err();
        assert!(
            e.contains("/resources/0/typed_config/config/configuration"),
            "{e}"
        );
        assert!(read_ecds("not json").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn cluster_names_come_from_the_clusters_answer() {
        let names = cluster_names(
            r#"{"cluster_statuses":[{"name":"edge_sea","host_statuses":[]},{"name":"maps_sea_chi"}]}"#,
        )
        .unwrap();
        assert_eq!(names, vec!["edge_sea", "maps_sea_chi"]);
        assert!(cluster_names("nope").is_err());
    }
}
