//! `mapsctl envoy-config`: write the Envoy bootstrap and the ECDS files for a policy
//! (the work is `crate::envoy_config`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::envoy_config::{
    self as ec, ClusterKind, Generated, Settings, BOOTSTRAP_FILE, HTTP_ECDS_FILE, TCP_ECDS_FILE,
    XDS_DIR,
};

use super::load_policy;

/// Arguments of `mapsctl envoy-config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy document (JSON), or a compiled policy (`mapsctl compile`), which
    /// the ECDS files then carry as bytes.
    #[arg(long)]
    policy: PathBuf,
    /// The HTTP listener address.
    #[arg(long, default_value = "127.0.0.1:10000")]
    listen: std::net::SocketAddr,
    /// The L4 listener address (tcp_proxy + the network plugin).
    #[arg(long, default_value = "127.0.0.1:10001")]
    listen_l4: std::net::SocketAddr,
    /// No L4 listener.
    #[arg(long)]
    no_l4: bool,
    /// The L4 listener takes the client and destination from the PROXY protocol (only
    /// behind a trusted load balancer: the header decides the source).
    #[arg(long)]
    l4_proxy_protocol: bool,
    /// The HTTP listener takes the client and destination addresses from the PROXY
    /// protocol too (behind a load balancer that sends it; connections without it are
    /// refused).
    #[arg(long)]
    proxy_protocol: bool,
    /// The admin interface (loopback only).
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin: std::net::SocketAddr,
    /// A link's address, overriding the policy's `address` (repeatable).
    #[arg(long = "link", value_name = "ID=HOST:PORT")]
    links: Vec<String>,
    /// The default (internet) path for non-MAPS traffic; without it, an ORIGINAL_DST
    /// cluster (transparent interception).
    #[arg(long, value_name = "HOST:PORT")]
    internet: Option<String>,
    /// The plugin .wasm Envoy loads (default: the one `make plugin` builds).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Output directory: envoy.json and xds/ (the ECDS files). Without it the
    /// bootstrap is printed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where Envoy reads the ECDS files at run time (default: OUT/xds, made
    /// absolute); set it when the files are deployed elsewhere (e.g. /etc/envoy/xds).
    #[arg(long)]
    xds_dir: Option<PathBuf>,
    /// Write only the ECDS files: a hot reload of the policy into a running Envoy.
    /// Refused when the policy needs clusters the bootstrap in --out lacks.
    #[arg(long, requires = "out")]
    ecds_only: bool,
    /// Health check interval in milliseconds (timeout: half of it, at most 1 s).
    #[arg(long, default_value_t = 500)]
    health_interval_ms: u32,
    /// Connect timeout towards a link in milliseconds.
    #[arg(long, default_value_t = 250)]
    connect_timeout_ms: u32,
    /// Per-attempt idle timeout on MAPS routes in milliseconds (an attempt that
    /// receives nothing for this long is retried on another link; 0: none). Long
    /// polls that pause longer are cut and retried too: raise it for such traffic.
    #[arg(long, default_value_t = 1000)]
    per_try_idle_timeout_ms: u32,
    /// An aggregate cluster for every ordered pair of usable edges, so that later
    /// policies over the same edges hot-reload without a new bootstrap.
    #[arg(long)]
    all_pairs: bool,
    /// Accepted for compatibility: removing the plugin's decision headers before
    /// requests leave Envoy is now the default (see --expose-decision-headers).
    #[arg(long, conflicts_with = "expose_decision_headers")]
    strip_headers: bool,
    /// Let the decision headers (<prefix>class, <prefix>cluster, <prefix>decision)
    /// travel upstream, to Microsoft and to every internet site. Off by default: the
    /// decision names the customer's registration and prefix; the access log has it.
    #[arg(long)]
    expose_decision_headers: bool,
    /// Text options (boxed: keeps the subcommand enum small).
    #[command(flatten)]
    text: Box<TextArgs>,
}

/// The text-valued options of `mapsctl envoy-config`.
#[derive(clap::Args, Debug)]
struct TextArgs {
    /// HTTP path of the links' active health check.
    #[arg(long, default_value = "/healthz")]
    health_path: String,
    /// The HTTP access log file (one JSON object per request, with the decision).
    #[arg(long, default_value = "/dev/stdout", value_name = "PATH")]
    access_log: String,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn settings(args: &Args) -> Result<Settings, String> {
    let mut s = Settings {
        listen: args.listen,
        listen_l4: (!args.no_l4).then_some(args.listen_l4),
        l4_proxy_protocol: args.l4_proxy_protocol,
        proxy_protocol: args.proxy_protocol,
        admin: args.admin,
        internet: args.internet.clone(),
        health_path: args.text.health_path.clone(),
        health_interval_ms: args.health_interval_ms,
        connect_timeout_ms: args.connect_timeout_ms,
        per_try_idle_timeout_ms: args.per_try_idle_timeout_ms,
        all_pairs: args.all_pairs,
        // --strip-headers (the default now) is kept for old scripts; clap refuses it
        // together with --expose-decision-headers.
        expose_decision_headers: args.expose_decision_headers && !args.strip_headers,
        access_log: args.text.access_log.clone(),
        ..Settings::default()
    };
    for l in &args.links {
        let (id, addr) = l
            .split_once('=')
            .ok_or_else(|| format!("mapsctl: --link {l}: expected ID=HOST:PORT"))?;
        if s.links.insert(id.to_string(), addr.to_string()).is_some() {
            return Err(format!(
                "mapsctl: --link {id}: given more than once (one address per link; which one did you mean?)"
            ));
        }
    }
    s.plugin = absolute(args.plugin.as_deref().unwrap_or(&s.plugin));
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    s.xds_dir = match &args.xds_dir {
        Some(d) => d.clone(),
        None => absolute(&out.join(XDS_DIR)),
    };
    Ok(s)
}

/// Cluster names of an existing bootstrap file (for `--ecds-only`).
fn bootstrap_clusters(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "mapsctl: --ecds-only: cannot read {}: {e} (generate the bootstrap first)",
            path.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("mapsctl: {}: not JSON: {e}", path.display()))?;
    Ok(v.pointer("/static_resources/clusters")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

fn write(path: &Path, v: &serde_json::Value) -> Result<(), String> {
    ec::write_atomic(path, ec::to_text(v).as_bytes())
        .map_err(|e| format!("mapsctl: cannot write {}: {e}", path.display()))
}

fn summary(g: &Generated) -> String {
    let mut s = String::from("clusters:\n");
    for c in &g.plan {
        let what = match c.kind {
            ClusterKind::Edge => format!("links {}", c.members.join(" ")),
            ClusterKind::Aggregate => format!("priorities {}", c.members.join(" > ")),
            ClusterKind::Default if c.members.is_empty() => {
                String::from("default path (ORIGINAL_DST)")
            }
            ClusterKind::Default => format!("default path {}", c.members.join(" ")),
        };
        s.push_str(&format!("  {:<24} {what}\n", c.name));
    }
    s
}

/// Runs `mapsctl envoy-config`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    let (bytes, engine) = match load_policy(&args.policy) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A JSON policy was valid, so it is UTF-8; a compiled one is carried as bytes.
    let text = &bytes[..];
    let s = match settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let g = match ec::generate(&engine.classifier, text, &s) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("mapsctl: {e}");
            return 2;
        }
    };
    if !s.plugin.exists() {
        eprintln!(
            "mapsctl: warning: the plugin {} does not exist yet (make plugin)",
            s.plugin.display()
        );
    }
    let Some(out) = &args.out else {
        print!("{}", ec::to_text(&g.bootstrap));
        eprintln!("mapsctl: the ECDS files (the policy itself) need --out DIR");
        return 0;
    };
    let xds = out.join(XDS_DIR);
    if let Err(e) = std::fs::create_dir_all(&xds) {
        eprintln!("mapsctl: cannot create {}: {e}", xds.display());
        return 2;
    }
    let mut written = Vec::new();
    if args.ecds_only {
        let have = match bootstrap_clusters(&out.join(BOOTSTRAP_FILE)) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        };
        let missing: Vec<&str> = g
            .plan
            .iter()
            .filter(|c| c.kind == ClusterKind::Aggregate && !have.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "mapsctl: the policy routes to cluster(s) {} that the running bootstrap lacks; \
                 regenerate it without --ecds-only (or with --all-pairs) and restart Envoy",
                missing.join(", ")
            );
            return 1;
        }
    } else {
        let path = out.join(BOOTSTRAP_FILE);
        if let Err(e) = write(&path, &g.bootstrap) {
            eprintln!("{e}");
            return 2;
        }
        written.push(path);
    }
    let plan = out.join(ec::PLAN_FILE);
    if let Err(e) = write(&plan, &g.names) {
        eprintln!("{e}");
        return 2;
    }
    written.push(plan);
    // The network filter first: an HTTP reload is what most operators watch for.
    let mut files = Vec::new();
    if let Some(tcp) = &g.tcp_ecds {
        files.push((xds.join(TCP_ECDS_FILE), tcp));
    }
    files.push((xds.join(HTTP_ECDS_FILE), &g.http_ecds));
    for (path, v) in files {
        if let Err(e) = write(&path, v) {
            eprintln!("{e}");
            return 2;
        }
        written.push(path);
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", names.join(", "));
    println!("policy version {}", ec::policy_version(text));
    if !args.ecds_only {
        print!("{}", summary(&g));
        println!(
            "run: envoy -c {} (keep Envoy's log outside {})",
            out.join(BOOTSTRAP_FILE).display(),
            xds.display()
        );
    }
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use clap::{Args as _, FromArgMatches as _};

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let cmd = Args::augment_args(clap::Command::new("envoy-config"));
        let m =
            cmd.try_get_matches_from(std::iter::once("envoy-config").chain(argv.iter().copied()))?;
        Args::from_arg_matches(&m)
    }

    #[test]
    fn a_link_given_twice_is_an_error_naming_it() {
        // Issue 13, finding 7: the last --link won silently.
        let a = parse(&[
            "--policy",
            "p.json",
            "--link",
            "sea-1=127.0.0.1:1",
            "--link",
            "sea-2=127.0.0.1:2",
            "--link",
            "sea-1=127.0.0.1:3",
        ])
        .unwrap();
        let err = settings(&a).unwrap_err();
        assert!(
            err.contains("--link sea-1") && err.contains("more than once"),
            "{err}"
        );
        let a = parse(&["--policy", "p.json", "--link", "sea-1=127.0.0.1:1"]).unwrap();
        assert_eq!(settings(&a).unwrap().links["sea-1"], "127.0.0.1:1");
    }

    #[test]
    fn decision_headers_are_private_unless_asked_and_strip_headers_still_parses() {
        let a = parse(&["--policy", "p.json"]).unwrap();
        assert!(!settings(&a).unwrap().expose_decision_headers);
        let a = parse(&["--policy", "p.json", "--strip-headers"]).unwrap();
        assert!(!settings(&a).unwrap().expose_decision_headers);
        let a = parse(&["--policy", "p.json", "--expose-decision-headers"]).unwrap();
        assert!(settings(&a).unwrap().expose_decision_headers);
        assert!(parse(&[
            "--policy",
            "p.json",
            "--strip-headers",
            "--expose-decision-headers"
        ])
        .is_err());
    }
}
