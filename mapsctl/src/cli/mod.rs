//! The `mapsctl` command line: argument parsing and exit codes. Each subcommand is a
//! module; every decision comes from `policy-core`.
//!
//! Exit codes: 0 success (warnings alone included), 1 the policy has errors (or a
//! trace had malformed lines, for `classify --fail-on-error`), 2 a file could not be
//! read or an argument is wrong.
//!
//! A closed standard output (`mapsctl validate p.json | head -1`) is not an error:
//! output stops quietly, nothing is printed on stderr, and the process never panics.
//! `validate` and `explain` then exit with the status they would have had (the
//! policy's verdict); `classify` stops reading its trace and exits 0.
//!
//! Text output is safe for a terminal: control and bidirectional-formatting characters
//! of echoed values (ids, names, addresses) are written escaped (`\u{1b}`), see
//! [`terminal_safe`]. JSON output escapes them by itself.

mod bench;
mod classify;
mod compare;
mod envoy_config;
mod explain;
mod import;
mod manifests;
mod pack;
mod rollout;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// MAPS edge policy tool: validate policies, classify traffic, explain decisions.
#[derive(Parser, Debug)]
#[command(name = "mapsctl", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Which implementation makes the decisions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Implementation {
    /// policy-core, compiled into mapsctl.
    Native,
    /// The proxy-wasm plugin (.wasm) running in the wasmtime harness.
    Plugin,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a policy: every problem at once, with code, JSON path and line.
    Validate {
        /// The policy document (JSON); `-` reads standard input.
        policy: PathBuf,
        /// Treat MAPS-readiness warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Classify a trace (JSON Lines in, decision JSON Lines out, same order, streaming).
    Classify {
        /// The policy document (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// The trace (JSON Lines); `-` or absent reads standard input.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Which implementation decides.
        #[arg(long, value_enum, default_value_t = Implementation::Native)]
        engine: Implementation,
        /// The plugin .wasm for `--engine plugin` (default: the one `make build` puts
        /// in target/wasm32-wasip1/plugin/).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Exit with status 1 when any trace line was malformed.
        #[arg(long)]
        fail_on_error: bool,
    },
    /// Explain the decision for one address: matched prefix, destination, every
    /// candidate edge with distance and rank, and why the chosen one won.
    Explain {
        /// The policy document (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// The source address.
        address: String,
        /// Destination address.
        #[arg(long)]
        dst: Option<String>,
        /// Destination host name.
        #[arg(long)]
        host: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Generate the Envoy configuration for a policy: a cluster per edge, an aggregate
    /// cluster per primary/backup pair, the plugin through ECDS files (hot reload).
    EnvoyConfig(envoy_config::Args),
    /// Generate the Istio WasmPlugin or Envoy Gateway EnvoyExtensionPolicy resources
    /// that deliver the plugin and a policy through that control plane (YAML).
    Manifests(Box<manifests::Args>),
    /// Rewrite a policy with its prefixes in the compact `prefix_table` encoding
    /// (for large tables: far less memory per proxy-wasm VM than JSON).
    Pack {
        /// The policy document (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// Where to write the packed policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate a policy and write it compiled (binary, `MAPC`): its prefix tables
    /// already built, checked by version and checksum, which the plugin adopts without
    /// parsing prefixes or rebuilding (for large tables: fast loads, little memory per
    /// VM). `mapsctl envoy-config`, `classify`, `explain`, `bench` and `validate` read it.
    Compile {
        /// The policy document (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// Where to write the compiled policy.
        #[arg(long)]
        out: PathBuf,
        /// Treat MAPS-readiness warnings as errors (nothing is written).
        #[arg(long)]
        strict: bool,
    },
    /// Generate a synthetic policy of any size (packed), for benchmarks and load tests.
    Gen {
        /// IPv4 prefixes to generate.
        #[arg(long, default_value_t = 1_000_000)]
        prefixes: usize,
        /// IPv6 prefixes to generate.
        #[arg(long, default_value_t = 0)]
        v6: usize,
        /// Prefixes per registration.
        #[arg(long, default_value_t = 1000)]
        per_registration: usize,
        /// Seed of the generator (same seed, same table).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Policy whose edges, destinations and options to use (default: the demo).
        #[arg(long)]
        base: Option<PathBuf>,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write a trace for it (JSON Lines): `--flows` flows, half of them from
        /// inside its IPv4 prefixes, to the base policy's first destination domain.
        #[arg(long)]
        trace_out: Option<PathBuf>,
        /// Flows in `--trace-out`.
        #[arg(long, default_value_t = 10_000, requires = "trace_out")]
        flows: usize,
    },
    /// What changes from one policy to another: registrations, prefixes (state, key,
    /// telemetry), routes; with a trace, how many flows change class or edge.
    Diff {
        /// The policy in service.
        old: PathBuf,
        /// The policy about to be applied.
        new: PathBuf,
        /// A trace (JSON Lines) to replay through both.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// What draining edges or links would move: every registration whose edge or backup
    /// changes (to the default path when no edge is left), the distance added; with a
    /// trace, the flows that move per edge pair.
    WhatIf {
        /// The policy.
        #[arg(long)]
        policy: PathBuf,
        /// An edge to drain (repeatable).
        #[arg(long = "drain-edge")]
        drain_edge: Vec<String>,
        /// A link to drain (repeatable).
        #[arg(long = "drain-link")]
        drain_link: Vec<String>,
        /// A trace (JSON Lines) to replay before and after.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Update a policy from what Azure and Microsoft publish: peering services and
    /// prefixes, Service Tags, Microsoft 365 endpoints (SPEC §8).
    #[command(subcommand)]
    Import(import::Source),
    /// Roll a policy out to a fleet of Envoys: a canary first, then batches; a policy
    /// refused or unhealthy on an edge is rolled back there and the rollout stops.
    Rollout(Box<rollout::Args>),
    /// Decisions per second on a generated table: native and through the plugin.
    Bench {
        /// IPv4 prefixes in the table.
        #[arg(long, default_value_t = 1_000_000)]
        prefixes: usize,
        /// IPv6 prefixes in the table.
        #[arg(long, default_value_t = 200_000)]
        v6: usize,
        /// Native IPv4 lookups (plus a fifth as many IPv6).
        #[arg(long, default_value_t = 2_000_000)]
        lookups: usize,
        /// Requests through the plugin in the harness.
        #[arg(long, default_value_t = 20_000)]
        plugin_requests: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// The plugin .wasm (default: target/wasm32-wasip1/plugin/maps_plugin.wasm).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Your own policy instead of a generated one (with --trace).
        #[arg(long, requires = "trace")]
        policy: Option<PathBuf>,
        /// Your own traffic (trace JSON Lines), replayed in a loop (with --policy).
        #[arg(long, requires = "policy")]
        trace: Option<PathBuf>,
    },
}

/// Parses arguments and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let code = match cli.command {
        Command::Validate {
            policy,
            strict,
            format,
        } => validate::run(&policy, strict, format),
        Command::Classify {
            policy,
            trace,
            engine,
            plugin,
            fail_on_error,
        } => classify::run(
            &policy,
            trace.as_deref(),
            engine,
            plugin.as_deref(),
            fail_on_error,
        ),
        Command::Explain {
            policy,
            address,
            dst,
            host,
            format,
        } => explain::run(&policy, &address, dst.as_deref(), host.as_deref(), format),
        Command::EnvoyConfig(args) => envoy_config::run(&args),
        Command::Manifests(args) => manifests::run(&args),
        Command::Pack { policy, out } => pack::pack(&policy, out.as_deref()),
        Command::Compile {
            policy,
            out,
            strict,
        } => pack::compile(&policy, &out, strict),
        Command::Gen {
            prefixes,
            v6,
            per_registration,
            seed,
            base,
            out,
            trace_out,
            flows,
        } => pack::gen(
            prefixes,
            v6,
            per_registration,
            seed,
            base.as_deref(),
            out.as_deref(),
            trace_out.as_deref().map(|t| (t, flows)),
        ),
        Command::Diff {
            old,
            new,
            trace,
            format,
        } => compare::diff(&old, &new, trace.as_deref(), format),
        Command::WhatIf {
            policy,
            drain_edge,
            drain_link,
            trace,
            format,
        } => compare::what_if(&policy, &drain_edge, &drain_link, trace.as_deref(), format),
        Command::Import(source) => import::run(&source),
        Command::Rollout(args) => rollout::run(&args),
        Command::Bench {
            lookups,
            plugin_requests,
            plugin,
            json,
            policy: Some(policy),
            trace: Some(trace),
            ..
        } => bench::run_user(&bench::UserArgs {
            policy: &policy,
            trace: &trace,
            lookups,
            plugin_requests,
            plugin: plugin.as_deref(),
            json,
        }),
        Command::Bench {
            prefixes,
            v6,
            lookups,
            plugin_requests,
            seed,
            plugin,
            json,
            ..
        } => bench::run(&bench::Args {
            v4: prefixes,
            v6,
            lookups,
            plugin_requests,
            seed,
            plugin: plugin.as_deref(),
            json,
        }),
    };
    ExitCode::from(code)
}

/// The demo policy, compiled into mapsctl: the base of generated policies.
pub fn demo_document() -> policy_core::PolicyDocument {
    const DEMO: &str = include_str!("../../../fixtures/demo/policy.json");
    // The demo fixture is tested to parse; fall back to an empty policy regardless.
    policy_core::parse_str(DEMO).unwrap_or_else(|_| policy_core::PolicyDocument {
        version: 1,
        provider: None,
        edges: Vec::new(),
        registrations: Vec::new(),
        destinations: Vec::new(),
        options: Default::default(),
        prefix_table: None,
        provenance: Vec::new(),
    })
}

/// Reads a file (or standard input for `-`), with a message naming the file on error.
pub fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("mapsctl: cannot read standard input: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| format!("mapsctl: cannot read {}: {e}", path.display()))
}

/// Loads and compiles a policy for classification; on failure prints the report (or
/// the read error) to stderr and returns the exit code.
pub fn load_policy(path: &Path) -> Result<(Vec<u8>, policy_core::LoadedPolicy), u8> {
    let bytes = read_input(path).map_err(|e| {
        eprintln!("{e}");
        2u8
    })?;
    match policy_core::load(&bytes, false) {
        Ok(engine) => Ok((bytes, engine)),
        Err(report) => {
            eprintln!(
                "mapsctl: {} is not a valid policy; nothing was classified:",
                path.display()
            );
            eprint!(
                "{}",
                validate::render_text(&report, &path.display().to_string(), &bytes)
            );
            Err(1)
        }
    }
}

/// Writes `text` to standard output through one locked handle. `None` when written, or
/// when the reader has gone (a closed pipe: quietly, see the module doc); `Some(2)`
/// after reporting any other write error.
pub fn print_out(text: &str) -> Option<u8> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => None,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => None,
        Err(e) => {
            eprintln!("mapsctl: cannot write: {e}");
            Some(2)
        }
    }
}

/// `text` with control and bidirectional-formatting characters escaped (`\u{1b}`,
/// `\u{202e}`), except, with `keep_newlines`, newlines (the text's own line structure).
pub fn terminal_safe(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| policy_core::unsafe_char(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
