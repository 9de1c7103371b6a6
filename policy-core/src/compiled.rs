//! The compiled policy file (`mapsctl compile`): a validated policy with its
//! registered-prefix tables already built, which a proxy adopts without parsing its
//! prefixes or rebuilding anything.
//!
//! A million-prefix policy takes seconds to validate and its tables a tenth of a second
//! to build, in every proxy-wasm VM of every proxy (one per worker thread, plus the main
//! thread), and each VM keeps the peak memory of that build. A compiled file moves both
//! to the machine that writes it: validation happens once, there, and a VM checks the
//! file's header and checksum, verifies the tables' structure (one linear pass, no
//! allocation), and then looks prefixes up in the file's own bytes. Nothing is copied:
//! the tables are ranges of the one buffer the host handed over.
//!
//! # Layout (version 1)
//!
//! Every integer is little-endian.
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `MAPC` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | header bytes (48) |
//! | 8 | 4 | CRC-32 (IEEE 802.3, as zlib and `crc32fast` compute it) of bytes 12 to the end |
//! | 12 | 4 | number of sections (5) |
//! | 16 | 8 | file length in bytes |
//! | 24 | 8 | the source policy's version: 64-bit FNV-1a of the JSON text compiled ([`crate::policy_version`]) |
//! | 32 | 4 | registrations |
//! | 36 | 12 | zero (reserved) |
//! | 48 | 16 × n | section table: tag (4 ASCII bytes), zero (4), offset (4), length (4) |
//!
//! Sections start at offsets that are multiples of 8, in this order:
//!
//! | tag | contents |
//! |---|---|
//! | `REPT` | the validation report of the source policy (JSON, as `mapsctl validate --format json` prints it) |
//! | `DOCU` | the policy document (JSON) without its prefixes: `prefix_table` removed, every `prefixes` list empty |
//! | `CNTS` | per registration, five `u32`: prefixes, eligible, telemetry, IPv4, IPv6 |
//! | `RGV4` | the IPv4 registered-prefix table (a Poptrie; layout in the `lpm` module's `write_section`) |
//! | `RGV6` | the IPv6 registered-prefix table |
//!
//! # What a reader checks, in order
//!
//! 1. The magic (else: not a compiled policy, "foreign"), the format version (else:
//!    compiled by another release), the header length and the file length (else: cut
//!    short or padded).
//! 2. The CRC-32 of everything after it (else: damaged in storage or in transit).
//! 3. The section table: every section present once, inside the file, in order.
//! 4. The document validates without an error (it was valid when compiled; a file
//!    that fails here was not written by `mapsctl compile`), and the counts have one
//!    row per registration.
//! 5. Each table's structure (`Poptrie::verify`): every node inside the table, no
//!    node reached twice, every leaf a value naming a registration of the document.
//!
//! A file that passes answers every lookup from its own bytes; a file that fails
//! any check is refused whole, with what failed and how to fix it, and a proxy keeps
//! serving its last good policy.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::classify::Classifier;
use crate::diag::{Code, Diagnostic, Report};
use crate::lpm::{Lpm4, Lpm6};
use crate::policy::{PrefixCounts, PrefixValue};
use crate::{parse, select, validate, LoadedPolicy};

/// The first four bytes of every compiled policy file.
pub const COMPILED_MAGIC: &[u8; 4] = b"MAPC";
/// The format version this release writes and reads.
pub const COMPILED_VERSION: u16 = 1;

const HEADER: usize = 48;
const ENTRY: usize = 16;
const TAGS: [&[u8; 4]; 5] = [b"REPT", b"DOCU", b"CNTS", b"RGV4", b"RGV6"];
/// Bytes per registration in `CNTS`.
const COUNT_ROW: usize = 20;

/// What a compiled file holds, from its header (see [`compiled_header`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledHeader {
    /// Format version.
    pub format_version: u16,
    /// File length the header declares.
    pub length: u64,
    /// The stored CRC-32.
    pub checksum: u32,
    /// The source policy's version ([`crate::policy_version`] of the JSON compiled).
    pub source_version: u64,
    /// Registrations in the policy.
    pub registrations: u32,
}

/// Why a compiled policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledError {
    /// The bytes do not start with `MAPC`.
    Foreign,
    /// Another format version.
    Version(u16),
    /// The file is shorter or longer than its header says.
    Length {
        /// Declared length.
        declared: u64,
        /// Actual length.
        actual: usize,
    },
    /// The CRC-32 does not match.
    Checksum {
        /// Stored in the header.
        stored: u32,
        /// Computed over the file.
        computed: u32,
    },
    /// A section is missing, misplaced or malformed.
    Section {
        /// The section's tag.
        tag: &'static str,
        /// Its offset in the file (0 when the table entry itself is bad).
        offset: usize,
        /// What is wrong.
        what: String,
    },
}

impl CompiledError {
    /// How to fix it.
    pub fn help(&self) -> &'static str {
        match self {
            CompiledError::Foreign => {
                "give the plugin a policy document (JSON) or a file written by `mapsctl compile --policy POLICY --out FILE`"
            }
            CompiledError::Version(_) => {
                "compile the policy again with the `mapsctl compile` of the release the proxies run"
            }
            CompiledError::Length { .. } | CompiledError::Checksum { .. } => {
                "the file was damaged or cut short after it was written: copy it again, or compile the policy again (`mapsctl compile`)"
            }
            CompiledError::Section { .. } => {
                "this file was not written by `mapsctl compile`, or was altered after: compile the policy again"
            }
        }
    }
}

impl fmt::Display for CompiledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompiledError::Foreign => f.write_str("not a compiled MAPS policy (it does not start with MAPC)"),
            CompiledError::Version(v) => write!(
                f,
                "compiled policy format version {v}; this release reads version {COMPILED_VERSION}"
            ),
            CompiledError::Length { actual, .. } if *actual < HEADER => write!(
                f,
                "compiled policy is cut short: {actual} bytes, less than its {HEADER}-byte header"
            ),
            CompiledError::Length { declared, actual } => write!(
                f,
                "compiled policy is {actual} bytes but its header says {declared}"
            ),
            CompiledError::Checksum { stored, computed } => write!(
                f,
                "compiled policy checksum mismatch: the header says CRC-32 {stored:08x}, the bytes give {computed:08x}"
            ),
            CompiledError::Section { tag, offset, what } => {
                write!(f, "compiled policy section {tag} (byte {offset}): {what}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CompiledError {}

impl CompiledError {
    /// The error as a validation report, as the plugin logs and `mapsctl` prints it.
    pub fn into_report(self) -> Report {
        let d = Diagnostic::new(Code::CompiledPolicy, "", self.to_string()).with_help(self.help());
        Report::new(vec![d], None, false)
    }
}

/// True when `bytes` start with the compiled-file magic (the file may still be
/// refused).
pub fn is_compiled(bytes: &[u8]) -> bool {
    bytes.starts_with(COMPILED_MAGIC)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|w| u16::from_le_bytes(*w))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|w| u32::from_le_bytes(*w))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..)?
        .first_chunk::<8>()
        .map(|w| u64::from_le_bytes(*w))
}

/// The header of a compiled file (magic and version checked; nothing else).
pub fn compiled_header(bytes: &[u8]) -> Result<CompiledHeader, CompiledError> {
    if !is_compiled(bytes) {
        return Err(CompiledError::Foreign);
    }
    let short = CompiledError::Length {
        declared: u64_at(bytes, 16).unwrap_or(0),
        actual: bytes.len(),
    };
    let version = u16_at(bytes, 4).ok_or(short.clone())?;
    if version != COMPILED_VERSION {
        return Err(CompiledError::Version(version));
    }
    Ok(CompiledHeader {
        format_version: version,
        length: u64_at(bytes, 16).ok_or(short.clone())?,
        checksum: u32_at(bytes, 8).ok_or(short.clone())?,
        source_version: u64_at(bytes, 24).ok_or(short.clone())?,
        registrations: u32_at(bytes, 32).ok_or(short)?,
    })
}

/// Validates a policy document and writes it as a compiled file. A policy with any
/// error (or, with `strict`, any warning) is not compiled: the report is the error.
///
/// ```
/// let text = br#"{"version": 1, "edges": [], "registrations": []}"#;
/// let file = policy_core::compile(text, false).unwrap();
/// assert!(file.starts_with(b"MAPC"));
/// let loaded = policy_core::load(&file, false).unwrap();
/// assert_eq!(loaded.classifier.policy().document().registrations.len(), 0);
/// ```
#[allow(clippy::result_large_err)]
pub fn compile(text: &[u8], strict: bool) -> Result<Vec<u8>, Report> {
    if is_compiled(text) {
        return Err(Report::new(
            vec![Diagnostic::new(
                Code::CompiledPolicy,
                "",
                "the input is already a compiled policy",
            )
            .with_help("compile the JSON policy document it was compiled from")],
            None,
            strict,
        ));
    }
    let v = validate::validate(text, strict);
    let (policy, report) = match v.policy {
        Some(p) if v.report.valid => (p, v.report),
        _ => return Err(v.report),
    };
    let registrations = policy.document().registrations.len();
    let counts: Vec<u8> = policy
        .counts
        .iter()
        .flat_map(|c| {
            [c.prefixes, c.eligible, c.telemetry, c.ipv4, c.ipv6]
                .into_iter()
                .flat_map(|n| (n as u32).to_le_bytes())
        })
        .collect();
    // The document without prefixes, re-serialised from the text (the text parsed,
    // so this cannot fail; an error would mean a bug, reported, not a panic).
    let doc = strip_prefixes(text)
        .map_err(|e| Report::new(vec![Diagnostic::new(Code::BadJson, "", e)], None, strict))?;
    let report_json = serde_json::to_vec(&report).unwrap_or_default();
    let classifier = Classifier::lean(policy);
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    classifier.write_tables(&mut v4, &mut v6);
    drop(classifier);
    let sections: [&[u8]; 5] = [&report_json, &doc, &counts, &v4, &v6];

    let mut out = vec![0u8; HEADER + ENTRY * sections.len()];
    let mut table = Vec::with_capacity(ENTRY * sections.len());
    for (tag, body) in TAGS.iter().zip(sections) {
        while out.len() % 8 != 0 {
            out.push(0);
        }
        table.extend_from_slice(*tag);
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&(out.len() as u32).to_le_bytes());
        table.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    let len = out.len() as u64;
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(COMPILED_MAGIC);
    head.extend_from_slice(&COMPILED_VERSION.to_le_bytes());
    head.extend_from_slice(&(HEADER as u16).to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes()); // checksum, below
    head.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&select::fnv1a(text).to_le_bytes());
    head.extend_from_slice(&(registrations as u32).to_le_bytes());
    head.resize(HEADER, 0);
    for (d, s) in out.iter_mut().zip(head.iter().chain(table.iter())) {
        *d = *s;
    }
    let crc = crc32fast::hash(out.get(12..).unwrap_or(&[]));
    if let Some(c) = out.get_mut(8..12) {
        c.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(out)
}

/// The document's JSON with `prefix_table` removed and every registration's
/// `prefixes` emptied.
fn strip_prefixes(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    if let Some(map) = doc.as_object_mut() {
        map.remove("prefix_table");
        if let Some(regs) = map.get_mut("registrations").and_then(|r| r.as_array_mut()) {
            for r in regs {
                if let Some(p) = r.get_mut("prefixes") {
                    *p = serde_json::Value::Array(Vec::new());
                }
            }
        }
    }
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

/// Reads a compiled policy file, checking everything the module documentation lists,
/// and adopts its tables in place (the bytes become the tables' storage).
pub fn load_compiled(bytes: Vec<u8>) -> Result<LoadedPolicy, CompiledError> {
    let head = compiled_header(&bytes)?;
    let header_len = u16_at(&bytes, 6).unwrap_or(0);
    if head.length != bytes.len() as u64
        || bytes.len() < HEADER
        || usize::from(header_len) != HEADER
    {
        return Err(CompiledError::Length {
            declared: head.length,
            actual: bytes.len(),
        });
    }
    let computed = crc32fast::hash(bytes.get(12..).unwrap_or(&[]));
    if computed != head.checksum {
        return Err(CompiledError::Checksum {
            stored: head.checksum,
            computed,
        });
    }
    let n = u32_at(&bytes, 12).unwrap_or(0) as usize;
    let bad = |tag: &'static str, offset: usize, what: &str| CompiledError::Section {
        tag,
        offset,
        what: what.to_string(),
    };
    if n != TAGS.len() {
        return Err(bad(
            "table",
            12,
            "the file does not have the five sections of version 1",
        ));
    }
    // (offset, length) of each section, in order, inside the file.
    let mut spans = [(0usize, 0usize); 5];
    let mut end = HEADER + ENTRY * n;
    for (i, (tag, span)) in TAGS.iter().zip(spans.iter_mut()).enumerate() {
        let name = tag_name(tag);
        let e = HEADER + ENTRY * i;
        if bytes.get(e..e + 4) != Some(&tag[..]) {
            return Err(bad(name, e, "the section table names another section here"));
        }
        let at = u32_at(&bytes, e + 8).unwrap_or(0) as usize;
        let len = u32_at(&bytes, e + 12).unwrap_or(0) as usize;
        if at < end || at % 8 != 0 || at.checked_add(len).is_none_or(|z| z > bytes.len()) {
            return Err(bad(
                name,
                e,
                "the section lies outside the file or overlaps another",
            ));
        }
        end = at + len;
        *span = (at, len);
    }
    let [rept, docu, cnts, rgv4, rgv6] = spans;
    let slice = |(at, len): (usize, usize)| bytes.get(at..at + len).unwrap_or(&[]);

    let report: Report = serde_json::from_slice(slice(rept))
        .map_err(|e| bad("REPT", rept.0, &format!("the report is not readable: {e}")))?;
    let doc = parse::parse_bytes(slice(docu)).map_err(|d| {
        let first = d.first().map(|d| d.message.clone()).unwrap_or_default();
        bad(
            "DOCU",
            docu.0,
            &format!("the document does not parse: {first}"),
        )
    })?;
    let (diags, _summary, policy) = validate::check_document_with(doc, false);
    let mut policy = match policy {
        Some(p) => p,
        None => {
            let first = diags
                .iter()
                .find(|d| d.severity == crate::diag::Severity::Error)
                .map(|d| format!("{} at {}", d.message, d.path))
                .unwrap_or_default();
            return Err(bad(
                "DOCU",
                docu.0,
                &format!("the document is not valid: {first}"),
            ));
        }
    };
    let regs = policy.document().registrations.len();
    if regs != head.registrations as usize || cnts.1 != regs * COUNT_ROW {
        return Err(bad(
            "CNTS",
            cnts.0,
            "the counts do not have one row per registration",
        ));
    }
    policy.counts = slice(cnts)
        .chunks_exact(COUNT_ROW)
        .map(|row| {
            let w = |i: usize| u32_at(row, i * 4).unwrap_or(0) as usize;
            PrefixCounts {
                prefixes: w(0),
                eligible: w(1),
                telemetry: w(2),
                ipv4: w(3),
                ipv6: w(4),
            }
        })
        .collect();
    let file = Arc::new(bytes);
    let value_ok = |width: u8| {
        move |v: u32| {
            let v = PrefixValue(v);
            v.registration() < regs && v.len() <= width
        }
    };
    let reg4 = Lpm4::read_section(&file, rgv4.0, rgv4.1, value_ok(32))
        .map_err(|e| bad("RGV4", rgv4.0, e))?;
    let reg6 = Lpm6::read_section(&file, rgv6.0, rgv6.1, value_ok(128))
        .map_err(|e| bad("RGV6", rgv6.0, e))?;
    Ok(LoadedPolicy {
        classifier: Classifier::from_tables(policy, reg4, reg6),
        report,
    })
}

fn tag_name(tag: &[u8; 4]) -> &'static str {
    match tag {
        b"REPT" => "REPT",
        b"DOCU" => "DOCU",
        b"CNTS" => "CNTS",
        b"RGV4" => "RGV4",
        _ => "RGV6",
    }
}
