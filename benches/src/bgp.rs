//! A real BGP-derived prefix table for the `v4-bgp` / `v6-bgp` benches, beside the
//! synthetic ones: pyasn's snapshot of a BGP RIB of 2015-11-01 (RouteViews MRT data;
//! 606,138 IPv4 and 27,693 IPv6 prefixes, each with its origin AS), as Debian's
//! `python3-pyasn` ships it.
//! `make bgp-data` puts it at `target/bgp/ipasn6_20151101.dat` (see benches/README.md
//! for where it comes from and its licence).
//!
//! The file is pyasn's IPASN text format: `;` comment lines (the header, including the
//! prefix counts, which are checked here so that a truncated file is refused), then
//! one `prefix<TAB>origin-AS` line per prefix.
//!
//! Values: entry `i` of each family has value `i`, its position in the file, as the
//! synthetic tables do. The classifier names the matched prefix, so every prefix has
//! a value of its own; a FIB's values (next hops, or here origin ASes) repeat, which
//! lets a Poptrie merge leaves and makes it smaller than it can be for us. The origin
//! ASes are kept alongside (`*_asn`) for the figure that shows that difference.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The file's name under `target/bgp/` (what `make bgp-data` writes).
pub const FILE_NAME: &str = "ipasn6_20151101.dat";
/// Environment variable that overrides where the file is looked for.
pub const ENV: &str = "MAPS_BGP_TABLE";
/// What the snapshot is, for reports.
pub const SOURCE: &str = "A BGP RIB of 2015-11-01 06:00 UTC (RouteViews MRT data) as \
     converted by pyasn (`ipasn6_20151101.dat.gz` of Debian's python3-pyasn 1.6.1)";

/// The table, one vector per family, in file order.
#[derive(Clone, Debug, Default)]
pub struct BgpTable {
    /// `(network, length, index)`.
    pub v4: Vec<(u32, u8, u32)>,
    /// `(network, length, index)`.
    pub v6: Vec<(u128, u8, u32)>,
    /// Origin AS of `v4[i]`.
    pub v4_asn: Vec<u32>,
    /// Origin AS of `v6[i]`.
    pub v6_asn: Vec<u32>,
}

/// Where the table is looked for: `$MAPS_BGP_TABLE`, else `target/bgp/` of the
/// workspace (`$CARGO_TARGET_DIR/bgp/` when that is set).
pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV) {
        return PathBuf::from(p);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bgp")
        .join(FILE_NAME)
}

/// The line to print when the file is absent (benches and tests then skip).
pub fn skip_message(what: &str, p: &Path) -> String {
    format!(
        "{what}: skipped, no BGP table at {}: run `make bgp-data` (it extracts pyasn's \
         RouteViews snapshot from Debian's python3-pyasn) or set {ENV} to the file",
        p.display()
    )
}

/// Loads the table from [`path()`]: `Ok(None)` when the file does not exist, an error
/// naming the file and line when it exists but is not a complete IPASN file.
pub fn load() -> Result<Option<BgpTable>, String> {
    let p = path();
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&text).map(Some).map_err(|e| {
            format!(
                "{}: {e} (run `make bgp-data` to fetch it again)",
                p.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// The value of a `; Key : value` header line, if `line` is one for `key`.
fn header<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(';')?.trim_start().strip_prefix(key)?;
    Some(rest.trim_start().strip_prefix(':')?.trim())
}

/// Parses pyasn's IPASN text (see the module documentation).
pub fn parse(text: &str) -> Result<BgpTable, String> {
    let mut t = BgpTable::default();
    let (mut want4, mut want6) = (None, None);
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}", n + 1);
        if line.starts_with(';') {
            let count = |v: &str| {
                v.parse::<usize>()
                    .map_err(|e| format!("{}: prefix count {v:?}: {e}", at()))
            };
            if let Some(v) = header(line, "Prefixes-v4") {
                want4 = Some(count(v)?);
            } else if let Some(v) = header(line, "Prefixes-v6") {
                want6 = Some(count(v)?);
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (prefix, asn) = line
            .split_once('\t')
            .ok_or_else(|| format!("{}: want `prefix<TAB>AS`, got {line:?}", at()))?;
        let asn: u32 = asn
            .trim()
            .parse()
            .map_err(|e| format!("{}: origin AS {asn:?}: {e}", at()))?;
        let (addr, len) = prefix
            .split_once('/')
            .ok_or_else(|| format!("{}: prefix {prefix:?} has no /length", at()))?;
        let len: u8 = len
            .parse()
            .map_err(|e| format!("{}: prefix length in {prefix:?}: {e}", at()))?;
        if addr.contains(':') {
            let a: Ipv6Addr = addr
                .parse()
                .map_err(|e| format!("{}: {prefix:?}: {e}", at()))?;
            let net = u128::from(a);
            if len > 128 || (len < 128 && net << len != 0) {
                return Err(format!("{}: {prefix:?} is not a network", at()));
            }
            t.v6.push((net, len, t.v6.len() as u32));
            t.v6_asn.push(asn);
        } else {
            let a: Ipv4Addr = addr
                .parse()
                .map_err(|e| format!("{}: {prefix:?}: {e}", at()))?;
            let net = u32::from(a);
            if len > 32 || (len < 32 && net << len != 0) {
                return Err(format!("{}: {prefix:?} is not a network", at()));
            }
            t.v4.push((net, len, t.v4.len() as u32));
            t.v4_asn.push(asn);
        }
    }
    for (family, tag, want, got) in [
        ("IPv4", "v4", want4, t.v4.len()),
        ("IPv6", "v6", want6, t.v6.len()),
    ] {
        match want {
            Some(w) if w != got => {
                return Err(format!(
                    "the header announces {w} {family} prefixes, the file has {got} (truncated?)"
                ))
            }
            None => return Err(format!("no `; Prefixes-{tag}` header line")),
            _ => {}
        }
    }
    Ok(t)
}

/// Every `step`-th entry, values (positions in the file) kept: the benches' smoke run
/// in test mode uses a slice of the table so that it stays fast in a debug build.
pub fn every<A: Copy>(table: &[(A, u8, u32)], step: usize) -> Vec<(A, u8, u32)> {
    table.iter().step_by(step.max(1)).copied().collect()
}

/// `table` with each value (a position in the file) replaced by that prefix's origin
/// AS from `asn`: what a FIB holds, values that repeat.
pub fn with_origin_as<A: Copy>(table: &[(A, u8, u32)], asn: &[u32]) -> Vec<(A, u8, u32)> {
    table
        .iter()
        .map(|&(net, len, i)| (net, len, asn.get(i as usize).copied().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "; IP-ASN32-DAT file\n; Prefixes-v4   : 2\n; Prefixes-v6   : 1\n; \n\
                          1.0.0.0/24\t15169\n10.0.0.0/8\t64512\n2001:db8::/32\t64513\n";

    #[test]
    fn parses_both_families_with_index_values() {
        let t = parse(SAMPLE).unwrap();
        assert_eq!(t.v4, vec![(0x0100_0000, 24, 0), (0x0a00_0000, 8, 1)]);
        assert_eq!(t.v4_asn, vec![15169, 64512]);
        assert_eq!(t.v6, vec![(0x2001_0db8u128 << 96, 32, 0)]);
        assert_eq!(t.v6_asn, vec![64513]);
    }

    #[test]
    fn refuses_a_truncated_or_damaged_file() {
        let cut = SAMPLE.rsplit_once("10.0.0.0").unwrap().0;
        assert!(parse(cut).unwrap_err().contains("announces 2 IPv4"));
        let host_bits = SAMPLE.replace("1.0.0.0/24", "1.0.0.1/24");
        assert!(parse(&host_bits).unwrap_err().contains("line 5"));
        let no_tab = SAMPLE.replace("\t15169", " 15169");
        assert!(parse(&no_tab).unwrap_err().contains("prefix<TAB>AS"));
        let no_header = SAMPLE.replace("; Prefixes-v6   : 1\n", "");
        assert!(parse(&no_header).unwrap_err().contains("Prefixes-v6"));
    }

    #[test]
    fn every_and_with_origin_as() {
        let t = parse(SAMPLE).unwrap();
        let odd = every(&t.v4, 2);
        assert_eq!(odd, vec![(0x0100_0000, 24, 0)]);
        assert_eq!(with_origin_as(&t.v4, &t.v4_asn)[1], (0x0a00_0000, 8, 64512));
    }
}
