//! `mapsctl pack` and `mapsctl gen`: the compact encoding of large prefix tables, and
//! synthetic policies of any size for benchmarks and load tests.

use std::io::Write;
use std::path::Path;

use super::{load_policy, read_input};

/// Writes `doc` as JSON to `out` (or standard output) and reports its size.
fn write_doc(doc: &policy_core::PolicyDocument, out: Option<&Path>) -> u8 {
    let text = match serde_json::to_vec(doc) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mapsctl: cannot encode the policy: {e}");
            return 2;
        }
    };
    let res = match out {
        Some(p) => std::fs::write(p, &text),
        None => std::io::stdout().lock().write_all(&text),
    };
    match res {
        Ok(()) => {}
        // The reader has gone (`| head`): quietly, like every mapsctl output.
        Err(e) if out.is_none() && e.kind() == std::io::ErrorKind::BrokenPipe => return 0,
        Err(e) => {
            eprintln!("mapsctl: cannot write the policy: {e}");
            return 2;
        }
    }
    eprintln!("mapsctl: wrote {} bytes", text.len());
    0
}

/// `mapsctl pack --policy P [--out F]`.
pub fn pack(policy: &Path, out: Option<&Path>) -> u8 {
    let (bytes, _) = match load_policy(policy) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let v = policy_core::validate(&bytes, false);
    let Some(p) = v.policy else { return 1 };
    let n = p.prefix_count();
    let doc = policy_core::pack_policy(&p);
    eprintln!(
        "mapsctl: {n} prefixes packed ({} bytes of JSON before)",
        bytes.len()
    );
    write_doc(&doc, out)
}

/// `mapsctl compile --policy P --out F [--strict]`: nothing is written unless the
/// policy is valid; the file appears whole or not at all (written beside, then renamed).
pub fn compile(policy: &Path, out: &Path, strict: bool) -> u8 {
    let bytes = match read_input(policy) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let t0 = std::time::Instant::now();
    let file = match policy_core::compile(&bytes, strict) {
        Ok(f) => f,
        Err(report) => {
            eprintln!(
                "mapsctl: {} is not a valid policy; nothing was written:",
                policy.display()
            );
            eprint!(
                "{}",
                super::validate::render_text(&report, &policy.display().to_string(), &bytes)
            );
            return 1;
        }
    };
    let elapsed = t0.elapsed();
    let tmp = out.with_extension("mapc.tmp");
    if let Err(e) = std::fs::write(&tmp, &file).and_then(|()| std::fs::rename(&tmp, out)) {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("mapsctl: cannot write {}: {e}", out.display());
        return 2;
    }
    let (prefixes, regs) = match policy_core::load_compiled(file.clone()) {
        Ok(p) => {
            let pol = p.classifier.policy();
            let n = pol.document().registrations.len();
            ((0..n).map(|r| pol.counts(r).prefixes).sum::<usize>(), n)
        }
        Err(e) => {
            // Written by this very build: refusing it would be a bug, said loudly.
            eprintln!("mapsctl: the compiled file does not read back: {e}");
            return 2;
        }
    };
    eprintln!(
        "mapsctl: compiled {prefixes} prefixes of {regs} registrations in {:.0} ms: {} bytes ({:.2} bytes/prefix; {} bytes of JSON), version {}",
        elapsed.as_secs_f64() * 1e3,
        file.len(),
        file.len() as f64 / prefixes.max(1) as f64,
        bytes.len(),
        policy_core::policy_version(&file)
    );
    0
}

/// `mapsctl gen --prefixes N [--v6 M] [--per-registration K] [--seed S] [--base P] [--out F]
/// [--trace-out T [--flows N]]`.
pub fn gen(
    v4: usize,
    v6: usize,
    per_registration: usize,
    seed: u64,
    base: Option<&Path>,
    out: Option<&Path>,
    trace: Option<(&Path, usize)>,
) -> u8 {
    let base_doc = match base {
        Some(p) => {
            let bytes = match read_input(p) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{e}");
                    return 2;
                }
            };
            match policy_core::parse_bytes(&bytes) {
                Ok(d) => d,
                Err(diags) => {
                    for d in diags {
                        eprintln!("{d}");
                    }
                    return 1;
                }
            }
        }
        None => super::demo_document(),
    };
    let doc = policy_core::synth::synthetic_policy(&base_doc, v4, v6, per_registration, seed);
    if let Some((path, flows)) = trace {
        if let Err(e) = write_trace(&doc, v4, seed, path, flows) {
            eprintln!("mapsctl: cannot write {}: {e}", path.display());
            return 2;
        }
    }
    write_doc(&doc, out)
}

/// A trace for a generated policy: `flows` sources, half inside its IPv4 table (the
/// same seeded generator), to the first destination domain of the policy (a `*.`
/// wildcard as `www.`), so that a load test sends realistic MAPS and non-MAPS traffic.
fn write_trace(
    doc: &policy_core::PolicyDocument,
    v4: usize,
    seed: u64,
    path: &Path,
    flows: usize,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let table = policy_core::testgen::ipv4_table(v4, seed);
    let host = doc
        .destinations
        .iter()
        .flat_map(|d| d.domains.iter())
        .next()
        .map(|d| {
            d.strip_prefix("*.")
                .map_or(d.clone(), |rest| format!("www.{rest}"))
        });
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for a in policy_core::testgen::ipv4_lookups(&table, flows, 0.5, seed ^ 7) {
        let src = std::net::Ipv4Addr::from(a).to_string();
        let line = match &host {
            Some(h) => serde_json::json!({"src": src, "host": h}),
            None => serde_json::json!({"src": src}),
        };
        writeln!(out, "{line}")?;
    }
    out.flush()
}
