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
    match format {
        Format::Text => println!("{e}"),
        Format::Json => match serde_json::to_string_pretty(&e) {
            Ok(s) => println!("{s}"),
            Err(err) => {
                eprintln!("mapsctl: cannot write the explanation: {err}");
                return 2;
            }
        },
    }
    0
}
