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
        let read = match read_line_bounded(&mut reader, &mut line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mapsctl: cannot read the trace: {e}");
                return 2;
            }
        };
        n += 1;
        buf.clear();
        let ok = match read {
            Line::End => break,
            Line::TooLong => {
                buf.push_str(&policy_core::error_line(
                    n,
                    &policy_core::line_too_long_message(),
                ));
                false
            }
            // A blank line is a malformed line with its own output line (SPEC §5):
            // `decide` says so, whichever the engine.
            Line::Read => match std::str::from_utf8(line.trim_ascii()) {
                Ok(text) => decide(n, text, &mut buf),
                Err(e) => {
                    buf.push_str(&policy_core::error_line(
                        n,
                        &format!("malformed trace line: not UTF-8: {e}"),
                    ));
                    false
                }
            },
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

/// What [`read_line_bounded`] read.
enum Line {
    /// A line (its ending removed) is in the buffer.
    Read,
    /// A line longer than [`policy_core::MAX_TRACE_LINE_BYTES`]: skipped, never held
    /// whole in memory.
    TooLong,
    /// The end of the input.
    End,
}

/// Reads one line (up to `\n`) into `line`, holding at most
/// [`policy_core::MAX_TRACE_LINE_BYTES`] (plus a `\r`) of it: a longer line is
/// consumed up to its end without being stored.
fn read_line_bounded(reader: &mut dyn BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    // Room for a `\r` before the `\n`.
    let limit = policy_core::MAX_TRACE_LINE_BYTES + 1;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if !any {
                Line::End
            } else if line.len() > limit {
                Line::TooLong
            } else {
                Line::Read
            });
        }
        any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if line.len() <= limit {
            let room = limit + 1 - line.len();
            line.extend_from_slice(chunk.get(..take.min(room)).unwrap_or(&[]));
        }
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(if line.len() > limit {
                Line::TooLong
            } else {
                Line::Read
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut r = std::io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_line_bounded(&mut r, &mut line).unwrap() {
                Line::End => return out,
                Line::TooLong => {
                    assert!(line.len() <= policy_core::MAX_TRACE_LINE_BYTES + 2);
                    out.push(Err("long"));
                }
                Line::Read => out.push(Ok(line.clone())),
            }
        }
    }

    #[test]
    fn bounded_lines() {
        assert_eq!(
            lines(b"ab\n\n  \ncd"),
            [
                Ok(b"ab".to_vec()),
                Ok(vec![]),
                Ok(b"  ".to_vec()),
                Ok(b"cd".to_vec())
            ]
        );
        let max = policy_core::MAX_TRACE_LINE_BYTES;
        let mut input = vec![b'x'; max];
        input.extend_from_slice(b"\r\n");
        input.extend(vec![b'y'; max + 2]);
        input.extend_from_slice(b"\nz\n");
        input.extend(vec![b'w'; 3 * max]);
        let got = lines(&input);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].as_ref().unwrap().len(), max + 1);
        assert_eq!(got[1], Err("long"));
        assert_eq!(got[2], Ok(b"z".to_vec()));
        assert_eq!(got[3], Err("long"));
    }
}
