//! `mapsctl classify`: trace JSON Lines in, decision JSON Lines out, in order,
//! streaming (one line in memory at a time). A malformed trace line yields a line
//! with an `error` field, and processing goes on.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use super::{load_policy, Implementation};

/// Turns one trace line (number, text) into one output line; false when malformed.
type Decide<'a> = dyn FnMut(u64, &str, &mut String) -> bool + 'a;

pub fn run(
    policy: &Path,
    trace: Option<&Path>,
    engine: Implementation,
    plugin: Option<&Path>,
    fail_on_error: bool,
) -> u8 {
    let (policy_bytes, native) = match load_policy(policy) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let input: Box<dyn BufRead> = match trace {
        None => Box::new(BufReader::new(std::io::stdin().lock())),
        Some(p) if p == Path::new("-") => Box::new(BufReader::new(std::io::stdin().lock())),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => {
                eprintln!("mapsctl: cannot read {}: {e}", p.display());
                return 2;
            }
        },
    };
    // Each engine turns one trace line (number, text) into one output line.
    let mut decide: Box<Decide> = match engine {
        Implementation::Native => {
            let c = &native.classifier;
            Box::new(move |n, text, out| policy_core::decide_line(c, n, text, out))
        }
        Implementation::Plugin => {
            let path = match plugin {
                Some(p) => p.to_path_buf(),
                None => crate::replay::default_plugin_path(),
            };
            let mut pe = match crate::replay::PluginReplay::new(&path, &policy_bytes) {
                Ok(pe) => pe,
                Err(e) => {
                    eprintln!("mapsctl: cannot run the plugin {}: {e:#}", path.display());
                    return 2;
                }
            };
            Box::new(move |n, text, out| match policy_core::parse_line(text) {
                Ok(t) => match pe.classify(&t.src, t.dst.as_deref(), t.host.as_deref()) {
                    Ok(line) => {
                        out.push_str(&line);
                        true
                    }
                    Err(e) => {
                        out.push_str(&policy_core::error_line(n, &format!("plugin: {e:#}")));
                        false
                    }
                },
                Err(e) => {
                    out.push_str(&policy_core::error_line(n, &e));
                    false
                }
            })
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = String::with_capacity(256);
    let mut line = Vec::with_capacity(256);
    let mut reader = input;
    let mut n = 0u64;
    let mut errors = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("mapsctl: cannot read the trace: {e}");
                return 2;
            }
        }
        n += 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        buf.clear();
        let ok = match std::str::from_utf8(trimmed) {
            Ok(text) => decide(n, text, &mut buf),
            Err(e) => {
                buf.push_str(&policy_core::error_line(
                    n,
                    &format!("malformed trace line: not UTF-8: {e}"),
                ));
                false
            }
        };
        if !ok {
            errors += 1;
        }
        buf.push('\n');
        if let Err(e) = out.write_all(buf.as_bytes()) {
            return broken(e);
        }
    }
    if let Err(e) = out.flush() {
        return broken(e);
    }
    if errors > 0 {
        eprintln!("mapsctl: {errors} malformed trace line(s) reported with an `error` field");
        if fail_on_error {
            return 1;
        }
    }
    0
}

fn broken(e: std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        0
    } else {
        eprintln!("mapsctl: cannot write: {e}");
        2
    }
}
