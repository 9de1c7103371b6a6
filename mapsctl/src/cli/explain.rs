//! `mapsctl explain`: one decision, told in full.

use std::path::Path;

use super::{load_policy, Format};

pub fn run(
    path: &Path,
    address: &str,
    dst: Option<&str>,
    host: Option<&str>,
    format: Format,
) -> u8 {
    let (_, engine) = match load_policy(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let e = engine.classifier.explain(address, dst, host);
    let out = match format {
        // Ids and names of a loaded policy carry no control character; the address,
        // `--dst` and `--host` are the caller's and may.
        Format::Text => format!("{}\n", super::terminal_safe(&e.to_string(), true)),
        Format::Json => match serde_json::to_string_pretty(&e) {
            Ok(s) => s + "\n",
            Err(err) => {
                eprintln!("mapsctl: cannot write the explanation: {err}");
                return 2;
            }
        },
    };
    super::print_out(&out).unwrap_or(0)
}
