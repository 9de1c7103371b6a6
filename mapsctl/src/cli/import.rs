//! `mapsctl import`: a policy's registrations and destinations from what Azure and
//! Microsoft publish (SPEC §8), keeping the rest of the policy.
//!
//! - `azure`: Microsoft.Peering ARM bodies (api-version 2022-10-01), peering services
//!   and their prefixes in any mix, recognised by content;
//! - `service-tags`: Azure's weekly Service Tags file, one destination per chosen tag;
//! - `m365`: the Microsoft 365 endpoints web service's response, one destination per
//!   endpoint set of the chosen categories.
//!
//! Each writes the whole updated policy (pretty JSON) and, on standard error, what it
//! took, what it skipped and why. Exit codes: 1 for malformed input (file, JSON Pointer,
//! reason), an unmapped peering location, or an updated policy that would not validate
//! (nothing is written then); 2 for a file that cannot be read or written, or a wrong
//! argument (an unknown tag or category).

//!
//! Every decision is `policy-core`'s (`policy_core::AzureImport`,
//! `import_service_tags`, `import_m365`, `written`); this file reads the files, prints
//! and chooses the exit code.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use policy_core::{ImportError, ImportReport, PolicyDocument, Report};
use serde_json::Value;

use super::{print_out, read_input, terminal_safe, validate};

/// What to import.
#[derive(Subcommand, Debug)]
pub enum Source {
    /// Azure peering services and their prefixes (Microsoft.Peering ARM JSON, as
    /// `az peering service list` / `az peering service prefix list` print them): the
    /// provider's registrations become exactly its peering services in the files.
    Azure {
        /// The policy to update (its provider, edges' `peering_location`, telemetry).
        #[arg(long)]
        policy: PathBuf,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Peering service and prefix bodies: arrays, `{"value": [...]}` or one object.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Azure Service Tags (`ServiceTags_Public_*.json`): one destination per chosen tag.
    ServiceTags {
        /// The policy to update.
        #[arg(long)]
        policy: PathBuf,
        /// A tag to import (`values[].name`), repeatable.
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The Service Tags file.
        file: PathBuf,
    },
    /// Microsoft 365 endpoints (the web service's `endpoints` response): one destination
    /// per endpoint set of the chosen categories.
    M365 {
        /// The policy to update.
        #[arg(long)]
        policy: PathBuf,
        /// Categories to import (comma-separated: Optimize, Allow, Default).
        #[arg(long, value_delimiter = ',', default_values_t = [String::from("Optimize"), String::from("Allow")])]
        categories: Vec<String>,
        /// Leave out the endpoint sets marked `"required": false`.
        #[arg(long)]
        required_only: bool,
        /// Where to write the updated policy (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The endpoints response (JSON).
        file: PathBuf,
    },
}

/// Runs an import; returns the exit code.
pub fn run(source: &Source) -> u8 {
    let (policy, out) = match source {
        Source::Azure { policy, out, .. }
        | Source::ServiceTags { policy, out, .. }
        | Source::M365 { policy, out, .. } => (policy.as_path(), out.as_deref()),
    };
    let mut doc = match base(policy) {
        Ok(d) => d,
        Err(f) => return f.report(),
    };
    let mut log = ImportReport::default();
    let res = match source {
        Source::Azure { files, .. } => azure(&mut doc, policy, files, &mut log),
        Source::ServiceTags { tags, file, .. } => service_tags(&mut doc, tags, file, &mut log),
        Source::M365 {
            categories,
            required_only,
            file,
            ..
        } => m365(&mut doc, categories, *required_only, file, &mut log),
    };
    let log = log.to_string();
    match res {
        Ok(()) => finish(&doc, &log, out),
        Err(f) => {
            eprint!("{}", terminal_safe(&log, true));
            f.report()
        }
    }
}

// ---- failures ------------------------------------------------------------------------

/// Why an import stops: the message and the exit code.
struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    /// Malformed or unusable input: exit 1.
    fn input(message: String) -> Fail {
        Fail { code: 1, message }
    }

    /// An unreadable file or a wrong argument: exit 2.
    fn usage(message: String) -> Fail {
        Fail { code: 2, message }
    }

    fn report(self) -> u8 {
        eprintln!("{}", terminal_safe(&self.message, true));
        self.code
    }
}

impl From<ImportError> for Fail {
    /// A wrong choice (an unknown tag or category) exits 2, like a wrong argument;
    /// anything else about the inputs exits 1.
    fn from(e: ImportError) -> Fail {
        let message = match &e {
            ImportError::UnknownCategory(_) => format!("mapsctl: --categories: {e}"),
            _ => format!("mapsctl: {e}"),
        };
        if e.is_choice() {
            Fail::usage(message)
        } else {
            Fail::input(message)
        }
    }
}

/// Reads and parses a JSON input file.
fn load_json(file: &Path) -> Result<Value, Fail> {
    let bytes = read_input(file).map_err(Fail::usage)?;
    Ok(policy_core::parse_import(
        &file.display().to_string(),
        &bytes,
    )?)
}

/// The policy being updated.
fn base(path: &Path) -> Result<PolicyDocument, Fail> {
    let bytes = read_input(path).map_err(Fail::usage)?;
    policy_core::parse_bytes(&bytes).map_err(|diags| {
        let report = Report::new(diags, None, false);
        Fail::input(format!(
            "mapsctl: {} is not a policy document; nothing was imported:\n{}",
            path.display(),
            validate::render_text(&report, &path.display().to_string(), &bytes).trim_end()
        ))
    })
}

// ---- writing --------------------------------------------------------------------------

/// Validates the updated policy and writes it, with the log and the verdict on stderr;
/// an invalid policy is not written.
fn finish(doc: &PolicyDocument, log: &str, out: Option<&Path>) -> u8 {
    eprint!("{}", terminal_safe(log, true));
    let w = match policy_core::written(doc) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("mapsctl: cannot encode the policy: {e}");
            return 2;
        }
    };
    let text = w.text;
    let name = out.map_or_else(
        || String::from("<standard output>"),
        |p| p.display().to_string(),
    );
    if !w.report.valid {
        let errors = Report::new(w.report.errors().cloned().collect(), None, false);
        eprintln!("mapsctl: refused: the updated policy would not validate; nothing was written:");
        // Lines and columns are those of the text that would have been written.
        let shown = "<the updated policy, not written>";
        eprint!("{}", validate::render_text(&errors, shown, text.as_bytes()));
        return 1;
    }
    match out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("mapsctl: cannot write {}: {e}", p.display());
                return 2;
            }
        }
        None => {
            if let Some(code) = print_out(&text) {
                return code;
            }
        }
    }
    let w = w.report.warnings;
    eprintln!(
        "wrote {}: valid, {w} warning{} (`mapsctl validate` lists them)",
        terminal_safe(&name, false),
        if w == 1 { "" } else { "s" }
    );
    0
}

// ---- the three imports ----------------------------------------------------------------

/// Each file is read and its bodies taken in turn (a file is read only when those
/// before it were sound), then applied at once.
fn azure(
    doc: &mut PolicyDocument,
    policy: &Path,
    files: &[PathBuf],
    log: &mut ImportReport,
) -> Result<(), Fail> {
    let mut import = policy_core::AzureImport::new();
    for file in files {
        let v = load_json(file)?;
        import.add(&file.display().to_string(), &v)?;
    }
    Ok(import.apply(doc, &policy.display().to_string(), log)?)
}

fn service_tags(
    doc: &mut PolicyDocument,
    tags: &[String],
    file: &Path,
    log: &mut ImportReport,
) -> Result<(), Fail> {
    let v = load_json(file)?;
    Ok(policy_core::import_service_tags(
        doc,
        &file.display().to_string(),
        &v,
        tags,
        log,
    )?)
}

fn m365(
    doc: &mut PolicyDocument,
    categories: &[String],
    required_only: bool,
    file: &Path,
    log: &mut ImportReport,
) -> Result<(), Fail> {
    // The choice is checked before the file is read.
    let chosen = policy_core::m365_categories(categories)?;
    let v = load_json(file)?;
    Ok(policy_core::import_m365(
        doc,
        &file.display().to_string(),
        &v,
        &chosen,
        required_only,
        log,
    )?)
}
