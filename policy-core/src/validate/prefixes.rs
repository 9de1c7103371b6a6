//! Registered prefixes (SPEC §6): every prefix of a registration, written in JSON
//! (`registrations[].prefixes`) or as a packed `prefix_table` record, goes through one
//! path, [`Checker::prefix_record`]: the address-space checks, the summary counts
//! (by state, family, eligibility, telemetry), the per-registration counts and the
//! overlap table. Then: a registration with no prefix in an eligible state (warning).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ipnet::IpNet;

use super::overlap::{Origin, Table};
use super::Checker;
use crate::diag::{Code, Diagnostic, Summary};
use crate::model::{PolicyDocument, Registration};
use crate::packed::PackedTable;
use crate::policy::{PrefixCounts, PrefixState, RegisteredPrefix};
use crate::text::pointer;

/// One registered prefix, from the JSON document or a packed record.
pub(super) struct PrefixRecord<'a> {
    /// Index of its registration (in range).
    pub(super) registration: usize,
    /// The prefix; `None` when its text was refused (already reported).
    pub(super) net: Option<IpNet>,
    /// Its state; `None` when the name is unknown (already reported).
    pub(super) state: Option<PrefixState>,
    /// The state as written: the summary counts prefixes by it.
    pub(super) state_name: &'a str,
    pub(super) telemetry: bool,
    pub(super) has_key: bool,
    /// The JSON Pointer diagnostics about it carry.
    pub(super) path: &'a str,
    /// What leads their messages (a packed record's number; empty for JSON).
    pub(super) label: &'a str,
    pub(super) origin: Origin,
}

/// The registered prefixes collected so far.
pub(super) struct Tally {
    /// The eligible states as a bit set.
    eligible: u8,
    /// The JSON prefixes, resolved (packed records are not listed).
    pub(super) prefixes: Vec<RegisteredPrefix>,
    /// Every accepted prefix, for the overlap sweep and the LPM tables.
    pub(super) table: Table,
    /// Per registration: its accepted prefixes counted.
    pub(super) counts: Vec<PrefixCounts>,
    /// Per registration: whether it lists a prefix in an eligible state (even one
    /// whose prefix text is wrong: that is reported on its own).
    pub(super) eligible_registration: Vec<bool>,
}

impl Tally {
    pub(super) fn new(registrations: usize, eligible: u8) -> Tally {
        Tally {
            eligible,
            prefixes: Vec::new(),
            table: Table::default(),
            counts: alloc::vec![PrefixCounts::default(); registrations],
            eligible_registration: alloc::vec![false; registrations],
        }
    }
}

impl Checker {
    /// The prefixes listed by registration `i`.
    pub(super) fn json_prefixes(
        &mut self,
        i: usize,
        r: &Registration,
        tally: &mut Tally,
        summary: &mut Summary,
    ) {
        for (j, p) in r.prefixes.iter().enumerate() {
            let base = format!("/registrations/{i}/prefixes/{j}");
            let state = self.state(&p.state, &pointer(&base, &["state"]));
            let path = pointer(&base, &["prefix"]);
            let net = self.prefix_syntax(&p.prefix, &path);
            let rec = PrefixRecord {
                registration: i,
                net,
                state,
                state_name: &p.state,
                telemetry: p.telemetry,
                has_key: p.key.is_some(),
                path: &path,
                label: "",
                origin: Origin::Json(j),
            };
            if let Some((net, state)) = self.prefix_record(rec, tally, summary) {
                tally.prefixes.push(RegisteredPrefix {
                    registration: i,
                    index: j,
                    net,
                    state,
                    telemetry: p.telemetry,
                });
            }
        }
    }

    /// The records of a packed `prefix_table` (`mapsctl pack`), checked like the JSON
    /// prefixes; a damaged table is reported and read no further.
    pub(super) fn packed_prefixes(
        &mut self,
        t: &PackedTable,
        registrations: usize,
        tally: &mut Tally,
        summary: &mut Summary,
    ) {
        let records = match t.records() {
            Ok(records) => records,
            Err(e) => {
                self.push(damaged(e));
                return;
            }
        };
        // Count first, to reserve exactly.
        let (mut n4, mut n6) = (0usize, 0usize);
        for rec in t.records().into_iter().flatten().flatten() {
            match rec.net {
                IpNet::V4(_) => n4 += 1,
                IpNet::V6(_) => n6 += 1,
            }
        }
        tally.table.reserve_exact(n4, n6);
        for (n, rec) in records.enumerate() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    self.push(damaged(e));
                    break;
                }
            };
            let reg = rec.registration as usize;
            let label = format!("record {n}: ");
            if reg >= registrations {
                self.push_capped(Diagnostic::new(
                    Code::BadValue,
                    "/prefix_table",
                    format!(
                        "{label}{} names registration {reg}, but there are {registrations}",
                        rec.net
                    ),
                ));
                continue;
            }
            let rec = PrefixRecord {
                registration: reg,
                net: Some(rec.net),
                state: Some(rec.state),
                state_name: rec.state.as_str(),
                telemetry: rec.telemetry,
                has_key: rec.has_key,
                path: "/prefix_table",
                label: &label,
                origin: Origin::Packed(n),
            };
            self.prefix_record(rec, tally, summary);
        }
    }

    /// The one path of a registered prefix: its address-space checks, then its counts
    /// in the summary and the tally. Returns the prefix and state when it is accepted
    /// (in the overlap table and the LPM).
    fn prefix_record(
        &mut self,
        rec: PrefixRecord<'_>,
        tally: &mut Tally,
        summary: &mut Summary,
    ) -> Option<(IpNet, PrefixState)> {
        let net = rec
            .net
            .filter(|net| self.registered_net(*net, rec.has_key, rec.path, rec.label));
        summary.prefixes += 1;
        *summary
            .prefixes_by_state
            .entry(String::from(rec.state_name))
            .or_default() += 1;
        if rec.telemetry {
            summary.telemetry_prefixes += 1;
        }
        let eligible = rec.state.is_some_and(|st| tally.eligible & st.bit() != 0);
        if eligible {
            if let Some(e) = tally.eligible_registration.get_mut(rec.registration) {
                *e = true;
            }
            summary.eligible_prefixes += 1;
        }
        match net {
            Some(IpNet::V4(_)) => summary.ipv4_prefixes += 1,
            Some(IpNet::V6(_)) => summary.ipv6_prefixes += 1,
            None => {}
        }
        let (Some(net), Some(state)) = (net, rec.state) else {
            return None;
        };
        if let Some(c) = tally.counts.get_mut(rec.registration) {
            c.add(net, eligible, rec.telemetry);
        }
        tally
            .table
            .add(net, rec.registration, state, rec.telemetry, rec.origin);
        Some((net, state))
    }

    /// A registration with no prefix in an eligible state: none of its traffic is MAPS.
    pub(super) fn eligible_registrations(&mut self, doc: &PolicyDocument, tally: &Tally) {
        for (i, r) in doc.registrations.iter().enumerate() {
            if !tally.eligible_registration.get(i).copied().unwrap_or(false) {
                self.push_capped(
                    Diagnostic::new(
                        Code::NoEligiblePrefix,
                        format!("/registrations/{i}"),
                        format!(
                            "registration `{}` has no prefix in an eligible state ({}): none of its traffic is MAPS",
                            r.id,
                            doc.options.eligible_states.join(", ")
                        ),
                    )
                    .with_help("complete prefix validation in Azure, or add an eligible prefix"),
                );
            }
        }
    }
}

/// A packed table that cannot be read (all of it, or from one record on).
fn damaged(e: impl core::fmt::Display) -> Diagnostic {
    Diagnostic::new(Code::BadValue, "/prefix_table", format!("{e}"))
        .with_help("re-create the table with `mapsctl pack`")
}
