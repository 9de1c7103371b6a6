//! What a change to a policy does, before it is applied: the difference between two
//! policies (registrations, prefixes, routes) and what draining edges or links would
//! move. `mapsctl diff` and `mapsctl what-if` print these; every route comes from the
//! classifier, so what is reported is what the plugin would do.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;

use crate::classify::Classifier;
use crate::model::PolicyDocument;
use crate::policy::Policy;

/// A registered prefix's facts that a change can touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixFacts {
    /// Azure's validation state.
    pub state: String,
    /// Whether it carries a partner-registered prefix key.
    pub key: bool,
    /// Whether it reports latency.
    pub telemetry: bool,
}

/// A prefix added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixItem {
    /// The registration id.
    pub registration: String,
    /// The prefix.
    pub prefix: String,
    /// Its facts.
    #[serde(flatten)]
    pub facts: PrefixFacts,
}

/// A prefix whose state, key or telemetry changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixChange {
    /// The registration id.
    pub registration: String,
    /// The prefix.
    pub prefix: String,
    /// Before.
    pub before: PrefixFacts,
    /// After.
    pub after: PrefixFacts,
}

/// Where a registration's `maps` traffic goes: edge and backup (`edge: None`: no edge
/// can carry it, the traffic takes the default path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ends {
    /// The edge id.
    pub edge: Option<String>,
    /// The backup edge id.
    pub backup: Option<String>,
}

/// A registration whose route changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteChange {
    /// The registration id.
    pub registration: String,
    /// Before the change.
    pub before: Ends,
    /// After the change.
    pub after: Ends,
    /// Distance to the edge after minus before, in km (rounded to 0.1; `None` when
    /// either side has no edge).
    pub distance_added_km: Option<f64>,
}

/// Ids added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Added {
    /// Ids only in the new policy.
    pub added: Vec<String>,
    /// Ids only in the old policy.
    pub removed: Vec<String>,
}

/// Prefixes added, removed and changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrefixDiff {
    /// Only in the new policy.
    pub added: Vec<PrefixItem>,
    /// Only in the old policy.
    pub removed: Vec<PrefixItem>,
    /// In both, with other facts.
    pub changed: Vec<PrefixChange>,
}

/// The difference between two policies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDiff {
    /// Registrations added and removed.
    pub registrations: Added,
    /// Prefixes added, removed and changed.
    pub prefixes: PrefixDiff,
    /// Registrations present in both whose route changes.
    pub routes: Vec<RouteChange>,
}

/// Every registered prefix of a policy (JSON and packed alike), by (registration id,
/// prefix). The policy must have kept its packed table (as [`crate::validate`] does).
fn prefix_facts(policy: &Policy) -> BTreeMap<(String, String), PrefixFacts> {
    let doc = policy.document();
    let mut out = BTreeMap::new();
    for p in policy.registered_prefixes() {
        let Some(r) = doc.registrations.get(p.registration) else {
            continue;
        };
        let key = r.prefixes.get(p.index).is_some_and(|e| e.key.is_some());
        out.insert(
            (r.id.clone(), p.net.to_string()),
            PrefixFacts {
                state: p.state.as_str().to_string(),
                key,
                telemetry: p.telemetry,
            },
        );
    }
    if let Some(Ok(records)) = doc.prefix_table.as_ref().map(|t| t.records()) {
        for rec in records.flatten() {
            let Some(r) = doc.registrations.get(rec.registration as usize) else {
                continue;
            };
            out.insert(
                (r.id.clone(), rec.net.to_string()),
                PrefixFacts {
                    state: rec.state.as_str().to_string(),
                    key: rec.has_key,
                    telemetry: rec.telemetry,
                },
            );
        }
    }
    out
}

fn ends(c: &Classifier, reg: Option<usize>) -> (Ends, Option<f64>) {
    let route = reg.and_then(|r| c.route(r));
    let km = reg.and_then(|r| c.candidates(r).first().map(|k| k.distance_km));
    (
        Ends {
            edge: route.as_ref().map(|r| r.edge.to_string()),
            backup: route.as_ref().and_then(|r| r.backup.map(String::from)),
        },
        km,
    )
}

fn round1(km: f64) -> f64 {
    libm::round(km * 10.0) / 10.0
}

/// The routes of the registrations both classifiers know, where they differ.
fn route_changes(old: &Classifier, new: &Classifier) -> Vec<RouteChange> {
    let index = |c: &Classifier| -> BTreeMap<String, usize> {
        c.policy()
            .document()
            .registrations
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (a, b) = (index(old), index(new));
    let mut out = Vec::new();
    for (id, &i) in &a {
        let Some(&j) = b.get(id) else {
            continue;
        };
        let (before, km0) = ends(old, Some(i));
        let (after, km1) = ends(new, Some(j));
        if before != after {
            out.push(RouteChange {
                registration: id.clone(),
                distance_added_km: match (km0, km1, &after.edge) {
                    (Some(x), Some(y), Some(_)) => Some(round1(y - x)),
                    _ => None,
                },
                before,
                after,
            });
        }
    }
    out
}

/// What changes from `old` to `new`: registrations, prefixes and routes. Both
/// policies as [`crate::validate`] returns them.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let ids = |p: &Policy| -> Vec<String> {
        p.document()
            .registrations
            .iter()
            .map(|r| r.id.clone())
            .collect()
    };
    let (ia, ib) = (ids(old), ids(new));
    let registrations = Added {
        added: ib.iter().filter(|x| !ia.contains(x)).cloned().collect(),
        removed: ia.iter().filter(|x| !ib.contains(x)).cloned().collect(),
    };
    let (pa, pb) = (prefix_facts(old), prefix_facts(new));
    let mut prefixes = PrefixDiff::default();
    let item = |((registration, prefix), facts): (&(String, String), &PrefixFacts)| PrefixItem {
        registration: registration.clone(),
        prefix: prefix.clone(),
        facts: facts.clone(),
    };
    for (k, before) in &pa {
        match pb.get(k) {
            None => prefixes.removed.push(item((k, before))),
            Some(after) if after != before => prefixes.changed.push(PrefixChange {
                registration: k.0.clone(),
                prefix: k.1.clone(),
                before: before.clone(),
                after: after.clone(),
            }),
            Some(_) => {}
        }
    }
    for (k, facts) in &pb {
        if !pa.contains_key(k) {
            prefixes.added.push(item((k, facts)));
        }
    }
    let routes = route_changes(
        &Classifier::lean(old.clone()),
        &Classifier::lean(new.clone()),
    );
    PolicyDiff {
        registrations,
        prefixes,
        routes,
    }
}

/// Why a what-if could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatIfError {
    /// No edge has this id.
    UnknownEdge(String),
    /// No link has this id.
    UnknownLink(String),
    /// The drained policy does not validate (the first error).
    Invalid(String),
}

impl core::fmt::Display for WhatIfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WhatIfError::UnknownEdge(id) => write!(f, "no edge has the id `{id}`"),
            WhatIfError::UnknownLink(id) => write!(f, "no link has the id `{id}`"),
            WhatIfError::Invalid(e) => write!(f, "the drained policy does not validate: {e}"),
        }
    }
}

/// The policy with `edges` and `links` drained, and every registration whose edge or
/// backup would change (`after.edge: None`: its traffic falls to the default path).
pub fn what_if(
    policy: &Policy,
    edges: &[&str],
    links: &[&str],
) -> Result<(Policy, Vec<RouteChange>), WhatIfError> {
    let mut doc: PolicyDocument = policy.document().clone();
    for id in edges {
        let e = doc
            .edges
            .iter_mut()
            .find(|e| e.id == *id)
            .ok_or_else(|| WhatIfError::UnknownEdge(id.to_string()))?;
        e.drained = true;
    }
    for id in links {
        let l = doc
            .edges
            .iter_mut()
            .flat_map(|e| e.links.iter_mut())
            .find(|l| l.id == *id)
            .ok_or_else(|| WhatIfError::UnknownLink(id.to_string()))?;
        l.drained = true;
    }
    // Draining should never make a valid policy invalid (a drained pinned edge is a
    // warning); if it ever did, say so rather than report nothing.
    let (diags, _, drained) = crate::validate::check_document(doc);
    let drained = drained.ok_or_else(|| {
        WhatIfError::Invalid(
            diags
                .iter()
                .find(|d| d.severity == crate::diag::Severity::Error)
                .map_or_else(String::new, |d| d.message.clone()),
        )
    })?;
    let changes = route_changes(
        &Classifier::lean(policy.clone()),
        &Classifier::lean(drained.clone()),
    );
    Ok((drained, changes))
}
