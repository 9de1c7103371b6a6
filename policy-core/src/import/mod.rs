//! Imports (SPEC §8): a policy's registrations and destinations from what Azure and
//! Microsoft publish, keeping the rest of the policy.
//!
//! - Azure peering services and their prefixes ([`AzureImport`]): Microsoft.Peering
//!   ARM bodies (api-version 2022-10-01) in any mix, recognised by content;
//! - Azure's weekly Service Tags file ([`import_service_tags`]): one destination per
//!   chosen tag;
//! - the Microsoft 365 endpoints web service's response ([`import_m365`]): one
//!   destination per endpoint set of the chosen categories.
//!
//! Pure functions: a document, the inputs' names and parsed JSON ([`parse_import`])
//! and the choices in; the updated document and an [`ImportReport`] (what was taken,
//! skipped and removed, and why) out, or an [`ImportError`] naming the file, the JSON
//! Pointer and the reason. [`import_files`] recognises each file's kind by content
//! ([`ImportKind::of`]) and runs them all; [`written`] is the text an import writes
//! and its validation (an import whose result would not validate is refused by the
//! adapters: `mapsctl import` and the web module's `importFiles`).
//!
//! Invariants: nothing here panics on any input; on error the document is unchanged.

mod azure;
mod json;
mod m365;
mod service_tags;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;
use serde_json::Value;

pub use azure::AzureImport;
pub use json::parse as parse_import;
pub use m365::{import_m365, m365_categories, DEFAULT_M365_CATEGORIES};
pub use service_tags::{import_service_tags, ServiceTagsFile};

use crate::diag::Report;
use crate::m365::Category;
use crate::model::PolicyDocument;

/// What an input file is, told by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// Peering service or peering service prefix bodies (an array of resources,
    /// `{"value": [...]}` or one resource with `properties`).
    Azure,
    /// A Service Tags file (`{"changeNumber", "cloud", "values": [...]}`).
    ServiceTags,
    /// A Microsoft 365 endpoints response (an array of endpoint sets with
    /// `serviceArea`, or `{"endpoints": [...]}`).
    M365,
}

impl ImportKind {
    /// Every kind, in the order [`import_files`] applies them.
    pub const ALL: [ImportKind; 3] = [ImportKind::Azure, ImportKind::ServiceTags, ImportKind::M365];

    /// `azure`, `service-tags` or `m365` (the `mapsctl import` subcommand and the
    /// provenance `kind`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ImportKind::Azure => "azure",
            ImportKind::ServiceTags => "service-tags",
            ImportKind::M365 => "m365",
        }
    }

    /// The kind of a parsed input, from its shape: `values` makes a Service Tags file;
    /// `endpoints`, or an array whose first object has `serviceArea`, an endpoints
    /// response; `value`, `properties`, or an array whose first object has
    /// `properties`, Azure bodies. `None` when it is none of these (an empty array
    /// included: nothing tells).
    ///
    /// ```
    /// use policy_core::ImportKind;
    /// let v = serde_json::json!([{"id": 1, "serviceArea": "Exchange", "category": "Optimize"}]);
    /// assert_eq!(ImportKind::of(&v), Some(ImportKind::M365));
    /// assert_eq!(ImportKind::of(&serde_json::json!({"values": []})), Some(ImportKind::ServiceTags));
    /// assert_eq!(ImportKind::of(&serde_json::json!({"version": 1})), None);
    /// ```
    pub fn of(v: &Value) -> Option<ImportKind> {
        match v {
            Value::Object(o) if o.contains_key("values") => Some(ImportKind::ServiceTags),
            Value::Object(o) if o.contains_key("endpoints") => Some(ImportKind::M365),
            Value::Object(o) if o.contains_key("value") || o.contains_key("properties") => {
                Some(ImportKind::Azure)
            }
            Value::Array(items) => {
                let first = items.iter().find_map(Value::as_object)?;
                if first.contains_key("serviceArea") {
                    Some(ImportKind::M365)
                } else if first.contains_key("properties") {
                    Some(ImportKind::Azure)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

impl Serialize for ImportKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an import stops. Each variant says what to fix; the `Display` text names the
/// file (and, for malformed input, the JSON Pointer).
#[derive(Debug, Clone, PartialEq)]
pub enum ImportError {
    /// The file is not JSON. Fix the file at `line:column` (or give the right file).
    NotJson {
        /// The file, as named.
        file: String,
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// A value of the file is not what the format says. Fix the value at `pointer`.
    Malformed {
        /// The file, as named.
        file: String,
        /// JSON Pointer (RFC 6901) to the value; `""` is the whole file.
        pointer: String,
        /// What is wrong.
        reason: String,
    },
    /// The policy has no `provider.name`, so its peering services cannot be told from
    /// others'. Add the provider's name as Azure spells it.
    NoProvider {
        /// The policy, as named.
        policy: String,
    },
    /// No peering service of the policy's provider in the inputs: taking none would
    /// remove every registration. Check the files and `provider.name`.
    NoServiceOfProvider {
        /// The policy's `provider.name`.
        provider: String,
        /// The policy, as named.
        policy: String,
        /// How many peering services (of other providers) the inputs hold.
        services: usize,
        /// Their providers, sorted.
        providers: Vec<String>,
    },
    /// A chosen Service Tag the file does not have. Choose one of its `values[].name`
    /// (the suggestion, when there is one).
    UnknownTag {
        /// The file, as named.
        file: String,
        /// The tag asked for.
        tag: String,
        /// How many tags the file has.
        tags: usize,
        /// The closest tag name of the file, if any is close.
        suggestion: Option<String>,
    },
    /// A chosen Microsoft 365 category that is not `Optimize`, `Allow` or `Default`.
    UnknownCategory(String),
    /// A file of no kind [`import_files`] knows. Give an Azure body, a Service Tags
    /// file or a Microsoft 365 endpoints response.
    UnknownKind {
        /// The file, as named.
        file: String,
    },
    /// Two Service Tags files, or two Microsoft 365 responses, in one [`import_files`]:
    /// each replaces the other's entries. Import one of them.
    TwoOfAKind {
        /// Their kind.
        kind: ImportKind,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// A Service Tags file with no tag chosen. Choose at least one.
    NoTags {
        /// The file, as named.
        file: String,
    },
}

impl ImportError {
    /// The file the error is about, when it is about one.
    pub fn file(&self) -> Option<&str> {
        match self {
            ImportError::NotJson { file, .. }
            | ImportError::Malformed { file, .. }
            | ImportError::UnknownTag { file, .. }
            | ImportError::UnknownKind { file }
            | ImportError::NoTags { file } => Some(file),
            ImportError::TwoOfAKind { second, .. } => Some(second),
            ImportError::NoProvider { .. }
            | ImportError::NoServiceOfProvider { .. }
            | ImportError::UnknownCategory(_) => None,
        }
    }

    /// The JSON Pointer of the offending value (`""`: the whole file), when there is
    /// one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            ImportError::Malformed { pointer, .. } => Some(pointer),
            ImportError::NotJson { .. } => Some(""),
            _ => None,
        }
    }

    /// Whether the error is in the choices rather than the files (an unknown tag or
    /// category, no tag): `mapsctl import` exits 2 for these, 1 for the others.
    pub fn is_choice(&self) -> bool {
        matches!(
            self,
            ImportError::UnknownTag { .. }
                | ImportError::UnknownCategory(_)
                | ImportError::NoTags { .. }
        )
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::NotJson {
                file,
                line,
                column,
                message,
            } => write!(f, "{file}:{line}:{column}: at /: not JSON: {message}"),
            ImportError::Malformed {
                file,
                pointer,
                reason,
            } => {
                let at = if pointer.is_empty() { "/" } else { pointer };
                write!(f, "{file}: at {at}: {reason}")
            }
            ImportError::NoProvider { policy } => write!(
                f,
                "{policy} has no `provider.name`: cannot tell this provider's peering services"
            ),
            ImportError::NoServiceOfProvider {
                provider,
                policy,
                services,
                providers,
            } => write!(
                f,
                "no peering service of {provider} (the provider of {policy}) in the inputs \
                 ({services} peering service{} of: {}); nothing was imported",
                if *services == 1 { "" } else { "s" },
                if providers.is_empty() {
                    String::from("none")
                } else {
                    providers.join(", ")
                }
            ),
            ImportError::UnknownTag {
                file,
                tag,
                tags,
                suggestion,
            } => {
                write!(f, "{file}: no service tag `{tag}` among its {tags} tags")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => Ok(()),
                }
            }
            ImportError::UnknownCategory(c) => {
                write!(f, "unknown category `{c}` (use Optimize, Allow, Default)")
            }
            ImportError::UnknownKind { file } => write!(
                f,
                "{file}: at /: not an Azure peering service or prefix body, a Service Tags \
                 file or a Microsoft 365 endpoints response"
            ),
            ImportError::TwoOfAKind {
                kind,
                first,
                second,
            } => write!(
                f,
                "{second}: a second {kind} file ({first} is one): import one at a time"
            ),
            ImportError::NoTags { file } => {
                write!(f, "{file}: no service tag chosen: choose at least one")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ImportError {}

/// What a report line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// What was read.
    Read,
    /// What was taken into the policy.
    Took,
    /// What was left out, and why.
    Skipped,
    /// What the policy held and no longer does.
    Removed,
}

impl SectionKind {
    /// Every kind.
    pub const ALL: [SectionKind; 4] = [
        SectionKind::Read,
        SectionKind::Took,
        SectionKind::Skipped,
        SectionKind::Removed,
    ];

    /// `read`, `took`, `skipped` or `removed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SectionKind::Read => "read",
            SectionKind::Took => "took",
            SectionKind::Skipped => "skipped",
            SectionKind::Removed => "removed",
        }
    }
}

impl Serialize for SectionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One line of an import's report and the items under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSection {
    /// What the line is about.
    pub kind: SectionKind,
    /// The line (`took 12 peering services of Contoso Networks as registrations:`).
    pub text: String,
    /// The items under it, one per taken, skipped or removed thing.
    pub items: Vec<String>,
}

/// What imports took, skipped and removed, and why, in order. Its `Display` is the
/// text `mapsctl import` prints on standard error: each line, its items indented by
/// two spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The lines, in order.
    pub sections: Vec<ImportSection>,
}

impl ImportReport {
    fn line(&mut self, kind: SectionKind, text: String) {
        self.sections.push(ImportSection {
            kind,
            text,
            items: Vec::new(),
        });
    }

    fn item(&mut self, text: String) {
        if let Some(s) = self.sections.last_mut() {
            s.items.push(text);
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sections {
            writeln!(f, "{}", s.text)?;
            for i in &s.items {
                writeln!(f, "  {i}")?;
            }
        }
        Ok(())
    }
}

/// The policy an import writes, and its validation.
#[derive(Debug, Clone)]
pub struct Written {
    /// Pretty JSON with one trailing newline, as `mapsctl import` writes it.
    pub text: String,
    /// The validation of `text` (not strict): an adapter writes nothing when it is not
    /// valid.
    pub report: Report,
}

/// The text an import writes for `doc`, and its validation.
///
/// Errors: the document cannot be encoded (not expected: it is plain data); the
/// message.
pub fn written(doc: &PolicyDocument) -> Result<Written, String> {
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    text.push('\n');
    let report = crate::validate::validate(text.as_bytes(), false).report;
    Ok(Written { text, report })
}

/// One input of [`import_files`]: its name (in the report, errors and provenance) and
/// its bytes.
#[derive(Debug, Clone, Copy)]
pub struct ImportFile<'a> {
    /// The file's name.
    pub name: &'a str,
    /// Its contents (JSON; a UTF-8 byte order mark is skipped).
    pub bytes: &'a [u8],
}

/// The choices of [`import_files`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The Service Tags to import (required with a Service Tags file).
    pub tags: Vec<String>,
    /// The Microsoft 365 categories to import ([`DEFAULT_M365_CATEGORIES`] by default).
    pub categories: Vec<Category>,
    /// Leave out the endpoint sets marked `"required": false`.
    pub required_only: bool,
    /// How messages name the policy being updated.
    pub policy_name: String,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            tags: Vec::new(),
            categories: DEFAULT_M365_CATEGORIES.to_vec(),
            required_only: false,
            policy_name: String::from("the policy"),
        }
    }
}

/// Imports files of any kind into `doc`, each recognised by content
/// ([`ImportKind::of`]): every Azure body together (the registrations become exactly
/// the provider's peering services in them), then the Service Tags file, then the
/// Microsoft 365 response (at most one of each), as `mapsctl import azure`,
/// `service-tags` and `m365` would in turn. Returns each file's kind, in the order
/// given; what was taken, skipped and removed goes to `report`.
///
/// Errors (then `doc` is unchanged): a file that is not JSON or of no known kind, two
/// files of a kind that takes one, a Service Tags file with no tag chosen, and every
/// error of the imports themselves.
///
/// ```
/// use policy_core::{import_files, parse_str, ImportFile, ImportKind, ImportOptions, ImportReport};
/// let mut doc = parse_str(r#"{"version": 1}"#).unwrap();
/// let sets = br#"[{"id": 1, "serviceArea": "Exchange", "category": "Optimize",
///   "urls": ["outlook.office365.com"], "tcpPorts": "80,443"}]"#;
/// let files = [ImportFile { name: "endpoints.json", bytes: sets }];
/// let mut report = ImportReport::default();
/// let kinds = import_files(&mut doc, &files, &ImportOptions::default(), &mut report).unwrap();
/// assert_eq!(kinds, [ImportKind::M365]);
/// assert_eq!(doc.destinations.len(), 1);
///
/// // A failing case: a file of no known kind.
/// let files = [ImportFile { name: "policy.json", bytes: br#"{"version": 1}"# }];
/// let e = import_files(&mut doc, &files, &ImportOptions::default(), &mut report).unwrap_err();
/// assert_eq!(e.file(), Some("policy.json"));
/// ```
pub fn import_files(
    doc: &mut PolicyDocument,
    files: &[ImportFile<'_>],
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Vec<ImportKind>, ImportError> {
    let mut kinds = Vec::with_capacity(files.len());
    let mut azure: Vec<(&str, Value)> = Vec::new();
    let mut tags: Option<(&str, Value)> = None;
    let mut m365: Option<(&str, Value)> = None;
    for f in files {
        let v = parse_import(f.name, f.bytes)?;
        let kind = ImportKind::of(&v).ok_or_else(|| ImportError::UnknownKind {
            file: f.name.to_string(),
        })?;
        kinds.push(kind);
        let slot = match kind {
            ImportKind::Azure => {
                azure.push((f.name, v));
                continue;
            }
            ImportKind::ServiceTags => &mut tags,
            ImportKind::M365 => &mut m365,
        };
        if let Some((first, _)) = slot {
            return Err(ImportError::TwoOfAKind {
                kind,
                first: first.to_string(),
                second: f.name.to_string(),
            });
        }
        *slot = Some((f.name, v));
    }
    let mut work = doc.clone();
    if !azure.is_empty() {
        let mut a = AzureImport::new();
        for (name, v) in &azure {
            a.add(name, v)?;
        }
        a.apply(&mut work, &options.policy_name, report)?;
    }
    if let Some((name, v)) = &tags {
        if options.tags.is_empty() {
            return Err(ImportError::NoTags {
                file: name.to_string(),
            });
        }
        import_service_tags(&mut work, name, v, &options.tags, report)?;
    }
    if let Some((name, v)) = &m365 {
        import_m365(
            &mut work,
            name,
            v,
            &options.categories,
            options.required_only,
            report,
        )?;
    }
    *doc = work;
    Ok(kinds)
}

/// What a caller may need before choosing: the tag names of a Service Tags file, in
/// the file's order (checked as an import checks them).
///
/// Errors: a malformed file, with its name and JSON Pointer.
pub fn service_tag_names(file: &str, v: &Value) -> Result<Vec<String>, ImportError> {
    let head = ServiceTagsFile::read(file, v)?;
    Ok(head.names().iter().map(|s| s.to_string()).collect())
}

/// The fixtures of `mapsctl import` (fixtures/imports/), imported natively: the same
/// policy as its goldens, and the same report (less the `wrote ...` line, which is the
/// CLI's).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::parse::parse_bytes;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/imports")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn golden(stem: &str) -> (String, String) {
        let policy = String::from_utf8(fixture(&format!("{stem}.golden.json"))).unwrap();
        let text = String::from_utf8(fixture(&format!("{stem}.golden.txt"))).unwrap();
        // The report without the CLI's last line (`wrote <standard output>: ...`).
        let cut = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
        (policy, text[..cut].to_string())
    }

    const BASE: &str = "fixtures/imports/base-policy.json";

    fn run(names: &[&str], options: &ImportOptions) -> (String, ImportReport, Vec<ImportKind>) {
        let mut doc = parse_bytes(&fixture("base-policy.json")).unwrap();
        let bytes: Vec<Vec<u8>> = names
            .iter()
            .map(|n| fixture(n.trim_start_matches("fixtures/imports/")))
            .collect();
        let files: Vec<ImportFile<'_>> = names
            .iter()
            .zip(&bytes)
            .map(|(name, bytes)| ImportFile { name, bytes })
            .collect();
        let mut report = ImportReport::default();
        let kinds = import_files(&mut doc, &files, options, &mut report).unwrap();
        let w = written(&doc).unwrap();
        assert!(w.report.valid, "{:?}", w.report);
        (w.text, report, kinds)
    }

    #[test]
    fn the_fixtures_import_as_the_cli_goldens_say() {
        let options = ImportOptions {
            policy_name: BASE.into(),
            ..ImportOptions::default()
        };
        let azure = [
            "fixtures/imports/azure/peering-services.json",
            "fixtures/imports/azure/prefixes.json",
            "fixtures/imports/azure/lamna-co.json",
        ];
        let (text, report, kinds) = run(&azure, &options);
        assert_eq!(kinds, [ImportKind::Azure; 3]);
        assert_eq!((text, report.to_string()), golden("azure"));

        let tags = ImportOptions {
            tags: alloc::vec![
                "AzureFrontDoor.FirstParty".into(),
                "AzureActiveDirectory".into()
            ],
            ..options.clone()
        };
        let (text, report, kinds) = run(
            &["fixtures/imports/ServiceTags_Public_20250728.json"],
            &tags,
        );
        assert_eq!(kinds, [ImportKind::ServiceTags]);
        assert_eq!((text, report.to_string()), golden("service-tags"));

        let (text, report, kinds) = run(
            &["fixtures/imports/m365-endpoints-worldwide.2024.json"],
            &options,
        );
        assert_eq!(kinds, [ImportKind::M365]);
        assert_eq!((text, report.to_string()), golden("m365"));
        let kinds: Vec<SectionKind> = report.sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [SectionKind::Read, SectionKind::Took, SectionKind::Skipped]
        );
        assert_eq!(report.sections[1].items.len(), 10);
    }

    #[test]
    fn a_damaged_file_is_named_with_its_pointer_and_the_policy_is_unchanged() {
        let mut doc = parse_bytes(&fixture("base-policy.json")).unwrap();
        let before = doc.clone();
        let mut v: Value = serde_json::from_slice(&fixture("azure/prefixes.json")).unwrap();
        v["value"][3]["properties"]["prefix"] = Value::from(42);
        let bytes = serde_json::to_vec(&v).unwrap();
        let services = fixture("azure/peering-services.json");
        let files = [
            ImportFile {
                name: "peering-services.json",
                bytes: &services,
            },
            ImportFile {
                name: "prefixes.json",
                bytes: &bytes,
            },
        ];
        let mut report = ImportReport::default();
        let e = import_files(&mut doc, &files, &ImportOptions::default(), &mut report).unwrap_err();
        assert_eq!(e.file(), Some("prefixes.json"));
        assert_eq!(e.pointer(), Some("/value/3/properties/prefix"));
        assert_eq!(
            e.to_string(),
            "prefixes.json: at /value/3/properties/prefix: expected a string, found a number"
        );
        assert_eq!(doc, before);

        // Not JSON: line and column; two endpoint files; a tag file with no tag chosen.
        let cut = &services[..services.len() / 2];
        let files = [ImportFile {
            name: "cut.json",
            bytes: cut,
        }];
        let e = import_files(&mut doc, &files, &ImportOptions::default(), &mut report).unwrap_err();
        assert!(matches!(e, ImportError::NotJson { .. }), "{e}");
        assert!(e.to_string().starts_with("cut.json:"), "{e}");
        let m = fixture("m365-endpoints-worldwide.2024.json");
        let two = [
            ImportFile {
                name: "a.json",
                bytes: &m,
            },
            ImportFile {
                name: "b.json",
                bytes: &m,
            },
        ];
        let e = import_files(&mut doc, &two, &ImportOptions::default(), &mut report).unwrap_err();
        assert_eq!(e.file(), Some("b.json"));
        assert!(matches!(
            e,
            ImportError::TwoOfAKind {
                kind: ImportKind::M365,
                ..
            }
        ));
        let tags = br#"{"changeNumber": 1, "values": []}"#;
        let files = [ImportFile {
            name: "tags.json",
            bytes: tags,
        }];
        let e = import_files(&mut doc, &files, &ImportOptions::default(), &mut report).unwrap_err();
        assert!(
            e.is_choice() && matches!(e, ImportError::NoTags { .. }),
            "{e}"
        );
        assert_eq!(doc, before);
    }

    #[test]
    fn kinds_are_told_by_content() {
        let of = |s: &str| ImportKind::of(&serde_json::from_str(s).unwrap());
        for (name, kind) in [
            ("azure/peering-services.json", ImportKind::Azure),
            ("azure/prefixes.json", ImportKind::Azure),
            ("azure/lamna-co.json", ImportKind::Azure),
            ("azure-examples/peering-service.json", ImportKind::Azure),
            ("azure-examples/prefixes.json", ImportKind::Azure),
            ("m365-endpoints-worldwide.2024.json", ImportKind::M365),
        ] {
            let v: Value = serde_json::from_slice(&fixture(name)).unwrap();
            assert_eq!(ImportKind::of(&v), Some(kind), "{name}");
        }
        assert_eq!(of(r#"{"endpoints": []}"#), Some(ImportKind::M365));
        assert_eq!(of("[]"), None);
        assert_eq!(of("[1, 2]"), None);
        assert_eq!(of(r#"{"version": 1, "edges": []}"#), None);
        assert_eq!(of("3"), None);
    }
}
