//! Registrations (SPEC §6): duplicate registration ids, the site (a known location
//! name or `lat`/`lon` in range; coordinates are checked here for edges too), pinned
//! primary and backup edges (unknown edge: error; drained edge: warning), and the
//! number of registrations.

use alloc::collections::BTreeMap;
use alloc::format;

use super::edges::EdgeIndex;
use super::Checker;
use crate::diag::{Code, Diagnostic};
use crate::locations;
use crate::model::{Edge, Registration};
use crate::policy::{Backup, Site, MAX_REGISTRATIONS};
use crate::text::{closest, pointer, shown, some_names};

use super::ids::MAX_NAME_BYTES;

/// At most this many edge ids are listed in a help line.
const LISTED_NAMES: usize = 20;

/// What a registration resolves to: its site and its pinned edges.
pub(super) struct Resolved {
    pub(super) site: Site,
    pub(super) primary: Option<usize>,
    pub(super) backup: Backup,
}

impl Checker {
    /// Latitude and longitude in range (of an edge or a registration at `base`).
    pub(super) fn coords(&mut self, lat: f64, lon: f64, base: &str) -> bool {
        let mut ok = true;
        if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
            self.push(
                Diagnostic::new(
                    Code::CoordinateOutOfRange,
                    pointer(base, &["lat"]),
                    format!("latitude {lat} is outside -90..90"),
                )
                .with_help("latitude comes first, in degrees north"),
            );
            ok = false;
        }
        if !(-180.0..=180.0).contains(&lon) || !lon.is_finite() {
            self.push(
                Diagnostic::new(
                    Code::CoordinateOutOfRange,
                    pointer(base, &["lon"]),
                    format!("longitude {lon} is outside -180..180"),
                )
                .with_help("longitude is in degrees east; west is negative"),
            );
            ok = false;
        }
        ok
    }

    /// Registration `i` (not its prefixes): unique id, site, pinned edges. `ids`
    /// collects the registration ids seen so far.
    pub(super) fn registration<'a>(
        &mut self,
        i: usize,
        r: &'a Registration,
        ids: &mut BTreeMap<&'a str, usize>,
        edges: &[Edge],
        index: &EdgeIndex<'_>,
    ) -> Resolved {
        let base = format!("/registrations/{i}");
        if let Some(first) = ids.get(r.id.as_str()) {
            self.push(
                Diagnostic::new(
                    Code::DuplicateRegistrationId,
                    pointer(&base, &["id"]),
                    format!(
                        "registration id `{}` is already used by /registrations/{first}",
                        shown(&r.id)
                    ),
                )
                .with_help("give each registration (Azure peering service) a unique id"),
            );
        } else {
            ids.insert(&r.id, i);
        }
        let site = self.site(&base, r);
        let primary = r
            .primary_edge
            .as_deref()
            .and_then(|id| self.pinned(&base, "primary_edge", id, edges, index));
        let backup = match r.backup_edge.as_deref() {
            None => Backup::Unpinned,
            Some("None") => Backup::NoBackup,
            Some(id) => self
                .pinned(&base, "backup_edge", id, edges, index)
                .map_or(Backup::Unpinned, Backup::Edge),
        };
        Resolved {
            site,
            primary,
            backup,
        }
    }

    /// Where a registration is: its `location`, or its `lat`/`lon` when given (and in
    /// range); (0, 0) when neither resolves.
    fn site(&mut self, base: &str, r: &Registration) -> Site {
        let mut site = Site {
            lat: 0.0,
            lon: 0.0,
            from_location: false,
        };
        if let Some(name) = &r.location {
            if name.len() > MAX_NAME_BYTES {
                self.too_long(pointer(base, &["location"]), "location", name);
            } else {
                match locations::find(name) {
                    Some(loc) => {
                        site = Site {
                            lat: loc.lat,
                            lon: loc.lon,
                            from_location: true,
                        }
                    }
                    None if self.take_slot(Code::UnknownLocation) => {
                        let d = Diagnostic::new(
                            Code::UnknownLocation,
                            pointer(base, &["location"]),
                            format!("`{}` is not an Azure Peering Service location", shown(name)),
                        );
                        let d = match closest(name, locations::names()) {
                            Some(s) => d.with_help(format!(
                                "did you mean `{s}`? (US states; countries elsewhere)"
                            )),
                            None => d.with_help(
                                "name a US state, or a country outside the US, or give lat and lon",
                            ),
                        };
                        self.push(d);
                    }
                    None => {}
                }
            }
        }
        match (r.lat, r.lon) {
            (Some(lat), Some(lon)) => {
                if self.coords(lat, lon, base) {
                    site = Site {
                        lat,
                        lon,
                        from_location: false,
                    };
                }
            }
            (None, None) if r.location.is_none() => self.push(
                Diagnostic::new(
                    Code::MissingLocation,
                    base,
                    format!(
                        "registration `{}` has neither `location` nor `lat`/`lon`",
                        r.id
                    ),
                )
                .with_help("add \"location\" (e.g. \"Washington\") or \"lat\" and \"lon\""),
            ),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => self.push(
                Diagnostic::new(Code::MissingLocation, base, "`lat` and `lon` go together")
                    .with_help("give both, or neither and a `location`"),
            ),
        }
        site
    }

    /// A pinned edge (`field` is `primary_edge` or `backup_edge`) by id: its index,
    /// with a warning when it is drained; `None` (reported) when no edge has that id.
    fn pinned(
        &mut self,
        base: &str,
        field: &str,
        id: &str,
        edges: &[Edge],
        index: &EdgeIndex<'_>,
    ) -> Option<usize> {
        let Some(&e) = index.ids.get(id) else {
            if self.take_slot(Code::UnknownEdge) {
                self.unknown_edge(base, field, id, &index.names);
            }
            return None;
        };
        let edge = edges.get(e)?;
        if edge.drained || edge.links.iter().all(|l| l.drained) {
            self.push(
                Diagnostic::new(
                    Code::PinnedEdgeDrained,
                    pointer(base, &[field]),
                    format!("pinned edge `{id}` is drained: it will be skipped"),
                )
                .with_help("undrain it, or pin another edge"),
            );
        }
        Some(e)
    }

    /// No edge has id `id`: suggest the closest edge id (or `"None"` for a backup).
    fn unknown_edge(&mut self, base: &str, field: &str, id: &str, names: &[&str]) {
        let d = Diagnostic::new(
            Code::UnknownEdge,
            pointer(base, &[field]),
            format!("no edge has id `{}`", shown(id)),
        );
        let none: &[&str] = if field == "backup_edge" {
            &["None"]
        } else {
            &[]
        };
        let d = match closest(id, names.iter().copied().chain(none.iter().copied())) {
            Some("None") => d.with_help(
                "did you mean \"None\" (no backup site)? It is written with a capital N",
            ),
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None if field == "backup_edge" => d.with_help(format!(
                "use one of the edge ids ({}) or \"None\" for no backup",
                some_names(names, LISTED_NAMES)
            )),
            None => d.with_help(format!(
                "use one of the edge ids: {}",
                some_names(names, LISTED_NAMES)
            )),
        };
        self.push(d);
    }

    /// At most [`MAX_REGISTRATIONS`] registrations (the prefix value holds the index).
    pub(super) fn registration_count(&mut self, n: usize) {
        if n > MAX_REGISTRATIONS {
            self.push(Diagnostic::new(
                Code::BadValue,
                "/registrations",
                format!("{n} registrations; at most {MAX_REGISTRATIONS} are supported"),
            ));
        }
    }
}
