//! `mapsctl classify --engine plugin`: the built MAPS plugin, run in the harness, as a
//! decision engine for trace lines.
//!
//! Each trace line becomes one HTTP request: `src` is the `source.address` property
//! (verbatim), `dst` the `destination.address` property (absent when the line has none),
//! `host` the `:authority` header. The plugin's published headers are mapped back to the
//! decision line: `<prefix>decision` carries the decision fields (SPEC §5), checked
//! against `<prefix>class` and, for class `maps`, `<prefix>cluster`; `src` is the trace's.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use host_harness::Error;
use host_harness::LogLevel;
use host_harness::{Harness, Plugin};

/// Where `make plugin` puts the plugin, relative to the workspace root.
pub const PLUGIN_RELATIVE_PATH: &str = "target/wasm32-wasip1/plugin/maps_plugin.wasm";

/// Environment variable that overrides where the plugin is looked for.
pub const PLUGIN_ENV: &str = "MAPS_PLUGIN_WASM";

/// Candidate locations of the plugin, most specific first: `$MAPS_PLUGIN_WASM`; next to
/// the running executable and in the `wasm32-wasip1/plugin/` directory of any target
/// directory above it (so `target/release/mapsctl` finds
/// `target/wasm32-wasip1/plugin/maps_plugin.wasm`); `$CARGO_TARGET_DIR`; then
/// `target/wasm32-wasip1/plugin/maps_plugin.wasm` under the current directory and each
/// of its parents.
pub fn plugin_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(PLUGIN_ENV) {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join("maps_plugin.wasm"));
        for a in dir.ancestors() {
            out.push(a.join("wasm32-wasip1/plugin/maps_plugin.wasm"));
        }
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(t).join("wasm32-wasip1/plugin/maps_plugin.wasm"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            out.push(a.join(PLUGIN_RELATIVE_PATH));
        }
    }
    out
}

/// The first plugin file that exists among [`plugin_candidates`].
///
/// Errors: [`Error::Read`] naming the usual path, with a hint to run `make plugin`.
pub fn find_plugin() -> Result<PathBuf, Error> {
    let candidates = plugin_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(Error::Read {
        path: PathBuf::from(PLUGIN_RELATIVE_PATH),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "the MAPS plugin is not built: run `make plugin` (or pass --plugin PATH, or set \
                 {PLUGIN_ENV}); looked in {} places",
                candidates.len()
            ),
        ),
    })
}

/// The plugin `mapsctl` uses when given no `--plugin`: the first existing file among
/// [`plugin_candidates`], else `target/wasm32-wasip1/plugin/maps_plugin.wasm` (loading
/// it then fails with a hint to run `make plugin`).
pub fn default_plugin_path() -> PathBuf {
    find_plugin().unwrap_or_else(|_| PathBuf::from(PLUGIN_RELATIVE_PATH))
}

/// What the engine needs to know of the policy's plugin options, read leniently (the
/// plugin validates the document itself): `options.header_prefix` (default `x-maps-`)
/// and `options.client_address` (default `source`, 0 trusted hops).
/// What the replay needs to know of the policy to deliver a source as the plugin
/// reads it, and to read the plugin's headers: the policy's own resolved names and
/// client rule ([`policy_core::Policy::headers`], [`policy_core::Policy::client_rule`]).
/// A policy that does not validate is refused by the plugin anyway; the defaults then
/// only name the headers of the error path.
struct Options {
    headers: policy_core::HeaderNames,
    client: policy_core::ClientRule,
}

impl Options {
    fn of(policy: &[u8]) -> Options {
        let of = |p: &policy_core::Policy| Options {
            headers: p.headers().clone(),
            client: p.client_rule(),
        };
        let found = if policy_core::is_compiled(policy) {
            policy_core::load(policy, false)
                .ok()
                .map(|l| of(l.classifier.policy()))
        } else {
            policy_core::validate(policy, false).policy.as_ref().map(of)
        };
        found.unwrap_or(Options {
            headers: policy_core::HeaderNames::default(),
            client: policy_core::ClientRule::Source,
        })
    }
}

/// The proxies between the client and the plugin when the policy reads the client from
/// `x-forwarded-for`: documentation addresses (RFC 5737), one per trusted hop.
const TRUSTED_PROXY: &str = "192.0.2.10";

/// The MAPS plugin, configured with one policy, classifying trace lines.
///
/// ```no_run
/// use mapsctl::replay::{default_plugin_path, PluginReplay};
/// let policy = std::fs::read("fixtures/demo/policy.json")?;
/// let mut engine = PluginReplay::new(&default_plugin_path(), &policy)?;
/// let line = engine.classify("198.51.100.7", Some("13.107.6.152"), None)?;
/// println!("{line}"); // {"src":"198.51.100.7","class":...}
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PluginReplay {
    plugin: Plugin,
    from_xff: bool,
    trusted_hops: usize,
    class_header: String,
    cluster_header: String,
    decision_header: String,
}

impl PluginReplay {
    /// Loads the plugin at `plugin_path` and configures it with the policy document
    /// `policy`. An invalid policy gives [`Error::Rejected`] with the plugin's log lines.
    pub fn new(plugin_path: &Path, policy: &[u8]) -> Result<PluginReplay, Error> {
        let harness = Harness::load(plugin_path).map_err(|e| match e {
            // The harness knows nothing of MAPS: the hint is ours.
            Error::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Read {
                    source: std::io::Error::new(
                        source.kind(),
                        format!("{source} (build the MAPS plugin with `make plugin`)"),
                    ),
                    path,
                }
            }
            e => e,
        })?;
        PluginReplay::with_harness(&harness, policy)
    }

    /// Like [`PluginReplay::new`], with a module already compiled (cheaper when many
    /// policies are tried, as in property tests).
    pub fn with_harness(harness: &Harness, policy: &[u8]) -> Result<PluginReplay, Error> {
        let plugin = harness
            .clone()
            // Info: the plugin then skips its per-request debug line.
            .log_level(LogLevel::Info)
            .configure(policy)?;
        let Options { headers, client } = Options::of(policy);
        let (from_xff, trusted_hops) = match client {
            policy_core::ClientRule::Source => (false, 0),
            policy_core::ClientRule::Xff { trusted_hops } => {
                (true, usize::try_from(trusted_hops).unwrap_or(usize::MAX))
            }
        };
        Ok(PluginReplay {
            plugin,
            from_xff,
            trusted_hops,
            class_header: headers.class,
            cluster_header: headers.cluster,
            decision_header: headers.decision,
        })
    }

    /// The plugin instance (for its metrics and logs).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Classifies one flow through the plugin; the decision line (SPEC §5) as JSON text,
    /// byte for byte what `--engine native` prints.
    pub fn classify(
        &mut self,
        src: &str,
        dst: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, Error> {
        self.decide(src, dst, host).map(|v| v.to_string())
    }

    /// Classifies one flow through the plugin and returns the decision line (SPEC §5).
    ///
    /// The source is delivered the way the policy says the plugin reads it: as the
    /// `source.address` property, or, with `client_address.from = "xff"`, as the entry of
    /// `x-forwarded-for` that `trusted_hops` proxies (documentation addresses) follow, the
    /// downstream peer being the last of them. Such a header cannot carry a `,` inside
    /// one entry: a source containing `,` (never an address) travels with each `,`
    /// written `;` (not an address either), so the plugin decides `invalid-source` as
    /// mapsctl does.
    pub fn decide(
        &mut self,
        src: &str,
        dst: Option<&str>,
        host: Option<&str>,
    ) -> Result<Value, Error> {
        let from_xff = self.from_xff;
        // Exactly as many trusted proxies as the policy says (validation keeps it at
        // most policy_core::MAX_TRUSTED_HOPS): fewer would make the plugin fall back to
        // the downstream peer where mapsctl reads `src`.
        let hops = self.trusted_hops;
        let mut req = self.plugin.http_request();
        if from_xff {
            // A `,` would split the source into two entries. A source holding one is
            // never an address (mapsctl says `invalid-source`), and neither is it with
            // each `,` written `;`: the plugin then reads one entry, not an address,
            // and says `invalid-source` too. The decision line carries `src` verbatim.
            let mut xff = src.replace(',', ";");
            for _ in 0..hops {
                xff.push_str(", ");
                xff.push_str(TRUSTED_PROXY);
            }
            req = req
                .header("x-forwarded-for", &xff)
                .source(&format!("{TRUSTED_PROXY}:40000"));
        } else {
            req = req.source(src);
        }
        let mut req = req
            .remove_property("destination.address")
            .remove_property("destination.port")
            .without_response();
        if let Some(d) = dst {
            req = req.destination(d);
        }
        if let Some(h) = host {
            req = req.authority(h);
        }
        let out = req.send()?;
        // Logs are not needed here; keep memory flat over long traces.
        self.plugin.take_logs();
        let raw = out.header(&self.decision_header).ok_or_else(|| {
            Error::Usage(format!(
                "the plugin published no `{}` header",
                self.decision_header
            ))
        })?;
        let decision: Value = serde_json::from_str(raw)
            .map_err(|e| Error::Usage(format!("`{}` is not JSON: {e}", self.decision_header)))?;
        let Value::Object(fields) = decision else {
            return Err(Error::Usage(format!(
                "`{}` is not a JSON object",
                self.decision_header
            )));
        };
        let class = fields.get("class").and_then(Value::as_str);
        if class != out.header(&self.class_header) {
            return Err(Error::Usage(format!(
                "`{}` says {:?} but `{}` says {:?}",
                self.class_header,
                out.header(&self.class_header),
                self.decision_header,
                class
            )));
        }
        if class == Some("maps") && out.header(&self.cluster_header).is_none() {
            return Err(Error::Usage(format!(
                "class maps without a `{}` header",
                self.cluster_header
            )));
        }
        let mut line = Map::new();
        line.insert("src".into(), Value::String(src.to_string()));
        for (k, v) in fields {
            if k != "src" {
                line.insert(k, v);
            }
        }
        Ok(Value::Object(line))
    }

    /// Classifies one parsed trace line (`{"src": ..., "dst"?: ..., "host"?: ...}`).
    /// A line without a string `src` gives [`Error::Usage`].
    pub fn classify_trace(&mut self, trace: &Value) -> Result<Value, Error> {
        let src = trace
            .get("src")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Usage("trace line has no string `src`".into()))?;
        let dst = trace.get("dst").and_then(Value::as_str);
        let host = trace.get("host").and_then(Value::as_str);
        self.decide(src, dst, host)
    }
}
