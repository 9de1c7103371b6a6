//! Ids and names (SPEC §6 and the limits): an edge, link or registration id must be
//! something an operator can read, type and grep, and that stays one token in Envoy's
//! `/stats` and cluster names: not empty, not only whitespace, no control or
//! bidirectional-override characters, at most [`MAX_ID_BYTES`] bytes. Free-text names
//! (location, metro, provider, router, customer, keys...) are at most
//! [`MAX_NAME_BYTES`]. Edge and registration ids also name metrics, where the plugin
//! writes `.` as `_`: two ids that become the same metric name are an error.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use super::Checker;
use crate::diag::{Code, Diagnostic};
use crate::model::PolicyDocument;
use crate::text::{pointer, shown};

/// The longest id (edge, link, registration), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The longest free-text name (location, metro, provider, router, ...), in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why `id` is not a usable id, if it is not.
pub(crate) fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some(String::from("is empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Some(format!(
            "is {} bytes long; ids are at most {MAX_ID_BYTES}",
            id.len()
        ));
    }
    if id.trim().is_empty() {
        return Some(String::from("is only whitespace"));
    }
    if id.trim() != id {
        return Some(String::from("starts or ends with whitespace"));
    }
    if let Some(c) = id.chars().find(|c| unsafe_char(*c)) {
        return Some(format!(
            "contains the control or formatting character U+{:04X}",
            u32::from(c)
        ));
    }
    None
}

/// Characters that must not be in an id or a name: they change what a terminal or a
/// log shows (C0/C1 controls, DEL, bidirectional embeddings, overrides and isolates,
/// zero-width and line/paragraph separators, byte-order mark).
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The metric-name form of an id, as the plugin writes it (`.` becomes `_`).
pub fn metric_tag(id: &str) -> String {
    id.replace('.', "_")
}

impl Checker {
    /// The id at `path` (`what` is "edge", "link" or "registration"); false when it is
    /// refused.
    pub(super) fn id(&mut self, what: &str, id: &str, path: String) -> bool {
        let Some(problem) = id_problem(id) else {
            return true;
        };
        if self.take_slot(Code::BadId) {
            self.push(
                Diagnostic::new(
                    Code::BadId,
                    path,
                    format!("{what} id `{}` {problem}", shown(id).escape_debug()),
                )
                .with_help(format!(
                    "an id is 1 to {MAX_ID_BYTES} bytes of visible text (letters, digits, \
                     `-`, `_`, `.`), the same in Envoy's stats, logs and terminals"
                )),
            );
        }
        false
    }

    /// A free-text value at `path` longer than [`MAX_NAME_BYTES`].
    pub(super) fn too_long(&mut self, path: String, field: &str, value: &str) {
        if self.take_slot(Code::BadValue) {
            self.push(
                Diagnostic::new(
                    Code::BadValue,
                    path,
                    format!(
                        "`{field}` is {} bytes long; at most {MAX_NAME_BYTES} are accepted",
                        value.len()
                    ),
                )
                .with_help(format!("shorten `{field}`: it is a name, not a document")),
            );
        }
    }

    /// Every id and name of the document: ids usable, names not too long, and no two
    /// edge or registration ids with the same metric name.
    pub(super) fn ids_and_names(&mut self, doc: &PolicyDocument) {
        if let Some(p) = &doc.provider {
            if p.name.len() > MAX_NAME_BYTES {
                self.too_long(String::from("/provider/name"), "name", &p.name);
            }
        }
        for (i, d) in doc.destinations.iter().enumerate() {
            if d.name.len() > MAX_NAME_BYTES {
                self.too_long(format!("/destinations/{i}/name"), "name", &d.name);
            }
        }
        let mut edge_tags = BTreeMap::new();
        for (i, e) in doc.edges.iter().enumerate() {
            let base = format!("/edges/{i}");
            if self.id("edge", &e.id, pointer(&base, &["id"])) {
                self.tag_collision("edge", &e.id, pointer(&base, &["id"]), &mut edge_tags);
            }
            self.names(&base, &[("metro", &e.metro), ("provider", &e.provider)]);
            for (j, l) in e.links.iter().enumerate() {
                let lbase = format!("{base}/links/{j}");
                self.id("link", &l.id, pointer(&lbase, &["id"]));
                self.names(&lbase, &[("router", &l.router), ("address", &l.address)]);
            }
        }
        let mut reg_tags = BTreeMap::new();
        for (i, r) in doc.registrations.iter().enumerate() {
            let base = format!("/registrations/{i}");
            if self.id("registration", &r.id, pointer(&base, &["id"])) {
                self.tag_collision(
                    "registration",
                    &r.id,
                    pointer(&base, &["id"]),
                    &mut reg_tags,
                );
            }
            self.names(
                &base,
                &[
                    ("customer", &r.customer),
                    ("primary_edge", &r.primary_edge),
                    ("backup_edge", &r.backup_edge),
                ],
            );
        }
    }

    fn names(&mut self, base: &str, fields: &[(&str, &Option<String>)]) {
        for (field, value) in fields {
            if let Some(v) = value {
                if v.len() > MAX_NAME_BYTES {
                    self.too_long(pointer(base, &[field]), field, v);
                } else if let Some(c) = v.chars().find(|c| unsafe_char(*c)) {
                    if self.take_slot(Code::BadValue) {
                        self.push(
                            Diagnostic::new(
                                Code::BadValue,
                                pointer(base, &[field]),
                                format!(
                                    "`{field}` `{}` contains the control or formatting character U+{:04X}",
                                    v.escape_debug(),
                                    u32::from(c)
                                ),
                            )
                            .with_help("a name is one line of visible text"),
                        );
                    }
                }
            }
        }
    }

    /// Two distinct ids of one kind with the same metric tag.
    fn tag_collision<'a>(
        &mut self,
        what: &str,
        id: &'a str,
        path: String,
        seen: &mut BTreeMap<String, (&'a str, String)>,
    ) {
        let tag = metric_tag(id);
        match seen.get(&tag) {
            // The same id twice is a duplicate id, reported as such.
            Some((first, _)) if *first == id => {}
            Some((first, first_path)) => {
                if self.take_slot(Code::MetricNameCollision) {
                    let d = Diagnostic::new(
                        Code::MetricNameCollision,
                        path,
                        format!(
                            "{what} ids `{first}` ({first_path}) and `{id}` have the same \
                             metric name `{tag}`: the plugin writes `.` as `_` in metric names"
                        ),
                    )
                    .with_help("rename one of them so that they differ other than by `.` and `_`");
                    self.push(d);
                }
            }
            None => {
                seen.insert(tag, (id, path));
            }
        }
    }
}
