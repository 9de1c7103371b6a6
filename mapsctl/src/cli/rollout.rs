//! `mapsctl rollout`: one policy to a fleet of Envoys, a canary first, then batches;
//! a policy refused or unhealthy on an edge is rolled back there and the rollout stops
//! (the steps are drawn in `crate::rollout`, which holds the logic without I/O).
//!
//! Exit codes: 0 every edge serves the policy; 1 the policy is invalid, or routes to a
//! cluster an edge lacks (nothing written); 2 a wrong argument, or an edge failed its
//! pre-flight check (nothing written); 3 the rollout stopped: an edge refused the
//! policy or was unhealthy, and it serves its last good policy again; 4 the rollout
//! stopped and an edge could not be confirmed back on its last good policy (act now:
//! the report names it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::envoy_config::{self as ec, HTTP_ECDS_FILE, TCP_ECDS_FILE};
use crate::rollout::{
    batches, cluster_names, ecds_with_policy, judge, progress, read_ecds, AdminUrl, EdgeSpec,
    Progress, Snapshot, Thresholds, Window, STATS_FILTER, WATCHED_CLASSES,
};

use super::{print_out, read_input, terminal_safe, validate, Format};

/// Arguments of `mapsctl rollout`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy to roll out (JSON). Validated first: an invalid policy is never
    /// written anywhere.
    #[arg(long)]
    policy: PathBuf,
    /// An edge: its Envoy's admin interface and the directory of the ECDS files that
    /// Envoy watches (`mapsctl envoy-config --out DIR` writes DIR/xds). Repeatable; the
    /// first edge is the canary.
    #[arg(long = "edge", value_name = "ADMIN_URL=ECDS_DIR", required = true)]
    edges: Vec<EdgeSpec>,
    /// Edges per step after the canary.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// Seconds of each health window: one just before the push (the baseline), one
    /// after the edge serves the policy.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    settle_s: f64,
    /// Seconds an edge may take to serve the policy (and, on a rollback, its last good
    /// one again).
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    timeout_s: f64,
    /// Largest rise of the share of HTTP requests answered 5xx, from the baseline
    /// window to the health window (0.01: one percentage point).
    #[arg(long, default_value_t = 0.01, value_parser = fraction)]
    max_5xx_increase: f64,
    /// Largest rise of the share of the plugin's decisions in a watched class (by
    /// default unverified, excluded-category and no-edge: registered customers'
    /// traffic that does not take MAPS).
    #[arg(long, default_value_t = 0.01, value_parser = fraction)]
    max_excluded_increase: f64,
    /// A class to watch (repeatable; replaces the default set).
    #[arg(long = "watch-class", value_name = "CLASS", value_parser = class_name)]
    watch_class: Vec<String>,
    /// Fewest requests (or TCP connections) a health window must see: an edge with
    /// less traffic cannot be judged and is rolled back (0: accept it).
    #[arg(long, default_value_t = 20)]
    min_requests: u64,
    /// Report format (standard output; progress goes to standard error).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?}: expected seconds, more than 0 and at most 86400"
        )),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?}: expected a share between 0 and 1 (0.01 is one percentage point)"
        )),
    }
}

fn class_name(s: &str) -> Result<String, String> {
    match policy_core::Class::from_name(s) {
        Some(c) => Ok(c.as_str().to_string()),
        None => Err(format!(
            "{s:?} is no class; one of: {}",
            policy_core::Class::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Envoy's admin interface over plain HTTP, with timeouts, never through a proxy.
struct Admin {
    agent: ureq::Agent,
}

impl Admin {
    fn new() -> Admin {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .proxy(None)
            .build();
        Admin {
            agent: config.into(),
        }
    }

    fn get(&self, url: &AdminUrl, path: &str, query: &[(&str, &str)]) -> Result<String, String> {
        let mut req = self.agent.get(url.join(path));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req
            .call()
            .map_err(|e| format!("{url}{path}: no answer ({e})"))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| format!("{url}{path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}{path}: HTTP {status}"));
        }
        Ok(body)
    }

    fn snapshot(&self, url: &AdminUrl) -> Result<Snapshot, String> {
        let text = self.get(
            url,
            "/stats",
            &[("format", "json"), ("filter", STATS_FILTER)],
        )?;
        Snapshot::parse(&text).map_err(|e| format!("{url}: {e}"))
    }

    fn clusters(&self, url: &AdminUrl) -> Result<Vec<String>, String> {
        let text = self.get(url, "/clusters", &[("format", "json")])?;
        cluster_names(&text).map_err(|e| format!("{url}: {e}"))
    }
}

/// What happened to one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    NotTouched,
    AlreadyServing,
    Updated,
    RefusedRolledBack,
    UnhealthyRolledBack,
    RollbackFailed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::NotTouched => "not-touched",
            Outcome::AlreadyServing => "already-serving",
            Outcome::Updated => "updated",
            Outcome::RefusedRolledBack => "refused-rolled-back",
            Outcome::UnhealthyRolledBack => "unhealthy-rolled-back",
            Outcome::RollbackFailed => "rollback-failed",
        }
    }
}

/// One ECDS file of an edge, with the bytes it held before the rollout (the last good
/// configuration: what Envoy served, checked in the pre-flight).
struct File {
    path: PathBuf,
    last_good: String,
}

/// One edge during the rollout.
struct Edge {
    spec: EdgeSpec,
    files: Vec<File>,
    resources: Vec<String>,
    old_version: String,
    old_number: u64,
    step: String,
    outcome: Outcome,
    reason: String,
    seconds_to_serve: Option<f64>,
    before: Option<Window>,
    after: Option<Window>,
    version_after: String,
}

/// The policy being rolled out.
struct New<'a> {
    text: &'a str,
    version: String,
    number: u64,
}

/// Pre-flight of one edge: reads its ECDS files and checks that Envoy serves them and
/// has every cluster the new policy routes to. Writes nothing.
fn preflight(admin: &Admin, spec: &EdgeSpec, routes: &[String]) -> Result<Edge, (u8, String)> {
    let at = |e: String| (2u8, format!("edge {}: {e}", spec.admin));
    let mut files = Vec::new();
    let mut read = Vec::new();
    for name in [HTTP_ECDS_FILE, TCP_ECDS_FILE] {
        let path = spec.ecds_dir.join(name);
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| at(format!("cannot read {}: {e}", path.display())))?;
        let f = read_ecds(&text).map_err(|e| at(format!("{}: {e}", path.display())))?;
        read.push(f);
        files.push(File {
            path,
            last_good: text,
        });
    }
    let Some(first) = read.first() else {
        return Err(at(format!(
            "{} holds neither {HTTP_ECDS_FILE} nor {TCP_ECDS_FILE}: give the xds/ directory \
             that `mapsctl envoy-config --out DIR` wrote and this Envoy watches",
            spec.ecds_dir.display()
        )));
    };
    if let Some(other) = read.iter().find(|f| f.version != first.version) {
        return Err(at(format!(
            "its ECDS files disagree (versions {} and {}): put one policy in both first \
             (mapsctl envoy-config --ecds-only)",
            first.version, other.version
        )));
    }
    let snap = admin.snapshot(&spec.admin).map_err(at)?;
    let resources: Vec<String> = read.iter().flat_map(|f| f.resources.clone()).collect();
    for r in &resources {
        let Some(e) = snap.ecds.get(r) else {
            return Err(at(format!(
                "Envoy has no ECDS resource {r:?}: is {} the directory this Envoy watches?",
                spec.ecds_dir.display()
            )));
        };
        if e.version_text != first.version {
            return Err(at(format!(
                "Envoy serves version {:?} of {r} but the file holds {:?} (a refused push?): the \
                 last good policy is not on disk, so a rollback could not restore it; write the \
                 policy this edge serves back first",
                e.version_text, first.version
            )));
        }
    }
    let old_number = policy_core::policy_version_number(first.policy.as_bytes());
    if snap.version_gauge != Some(old_number) {
        return Err(at(format!(
            "the plugin's gauge maps.policy.version is {} but the policy in the ECDS files is {old_number}: \
             an older plugin without the gauge, or Envoy not serving these files",
            snap.version_gauge
                .map_or_else(|| String::from("absent"), |v| v.to_string())
        )));
    }
    let have = admin.clusters(&spec.admin).map_err(at)?;
    let missing: Vec<&str> = routes
        .iter()
        .filter(|r| !have.contains(r))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err((
            1,
            format!(
                "edge {}: the policy routes to cluster(s) {} that this Envoy lacks; regenerate its \
                 bootstrap (mapsctl envoy-config, or --all-pairs) and restart it before the rollout",
                spec.admin,
                missing.join(", ")
            ),
        ));
    }
    Ok(Edge {
        spec: spec.clone(),
        files,
        resources,
        old_version: first.version.clone(),
        old_number,
        step: String::new(),
        outcome: Outcome::NotTouched,
        reason: String::new(),
        seconds_to_serve: None,
        before: None,
        after: None,
        version_after: first.version.clone(),
    })
}

fn say(line: &str) {
    eprintln!("mapsctl: {}", terminal_safe(line, false));
}

fn sleep_s(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

/// Writes the new policy into every ECDS file of `edge`. On a write error, the files
/// already written get their last good bytes back.
fn push(edge: &Edge, new: &New<'_>) -> Result<(), String> {
    for (i, f) in edge.files.iter().enumerate() {
        let result = ecds_with_policy(&f.last_good, new.text, &new.version)
            .map_err(|e| format!("{}: {e}", f.path.display()))
            .and_then(|text| {
                ec::write_atomic(&f.path, text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", f.path.display()))
            });
        if let Err(e) = result {
            for g in edge.files.iter().take(i) {
                let _ = ec::write_atomic(&g.path, g.last_good.as_bytes());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Puts the last good files back and waits until Envoy serves them again.
fn roll_back(admin: &Admin, edge: &mut Edge, timeout_s: f64) {
    let mut errors = Vec::new();
    for f in &edge.files {
        if let Err(e) = ec::write_atomic(&f.path, f.last_good.as_bytes()) {
            errors.push(format!("cannot write {}: {e}", f.path.display()));
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    let mut last = String::from("no answer");
    let back = errors.is_empty()
        && loop {
            match admin.snapshot(&edge.spec.admin) {
                Ok(s) if s.serves(&edge.resources, &edge.old_version, edge.old_number) => {
                    break true
                }
                Ok(s) => last = format!("gauge {:?}", s.version_gauge),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break false;
            }
            sleep_s(0.1);
        };
    if back {
        say(&format!(
            "{} {}: rolled back, serving {} again",
            edge.step, edge.spec.admin, edge.old_version
        ));
    } else {
        edge.outcome = Outcome::RollbackFailed;
        errors.push(format!(
            "not confirmed serving {} within {timeout_s} s ({last})",
            edge.old_version
        ));
        edge.reason = format!("{}; rollback: {}", edge.reason, errors.join("; "));
        say(&format!(
            "{} {}: ROLLBACK NOT CONFIRMED: {}",
            edge.step, edge.spec.admin, edge.reason
        ));
    }
}

/// Snapshots of several edges (an error per edge that did not answer).
fn snapshots(admin: &Admin, edges: &[Edge], ids: &[usize]) -> Vec<Result<Snapshot, String>> {
    ids.iter()
        .map(|&i| match edges.get(i) {
            Some(e) => admin.snapshot(&e.spec.admin),
            None => Err(String::from("no such edge")),
        })
        .collect()
}

struct Settings<'a> {
    new: New<'a>,
    thresholds: Thresholds,
    watched: Vec<String>,
    settle_s: f64,
    timeout_s: f64,
}

/// One step (the canary, or a batch): baseline, push, wait, health window, verdicts.
/// Returns whether every edge of the step is healthy on the new policy.
fn step(admin: &Admin, edges: &mut [Edge], ids: &[usize], s: &Settings<'_>) -> bool {
    let mut failed: Vec<(usize, Outcome, String)> = Vec::new();
    // Baseline window.
    let s0 = snapshots(admin, edges, ids);
    sleep_s(s.settle_s);
    let s1 = snapshots(admin, edges, ids);
    let mut base: Vec<Option<(Snapshot, Window)>> = Vec::new();
    for ((&i, a), b) in ids.iter().zip(s0).zip(s1) {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                base.push(Some((b.clone(), Window::between(&a, &b, &s.watched))));
            }
            (Err(e), _) | (_, Err(e)) => {
                failed.push((i, Outcome::NotTouched, format!("before the push: {e}")));
                base.push(None);
            }
        }
    }
    if !failed.is_empty() {
        // Nothing written yet on this step.
        for (i, outcome, reason) in failed {
            if let Some(e) = edges.get_mut(i) {
                e.outcome = outcome;
                e.reason = reason;
            }
        }
        return false;
    }
    // Push.
    let mut pushed_at = Vec::new();
    for &i in ids {
        let Some(edge) = edges.get(i) else { continue };
        let t = Instant::now();
        match push(edge, &s.new) {
            Ok(()) => say(&format!(
                "{} {}: wrote version {} ({} file(s) in {})",
                edge.step,
                edge.spec.admin,
                s.new.version,
                edge.files.len(),
                edge.spec.ecds_dir.display()
            )),
            Err(e) => failed.push((i, Outcome::RefusedRolledBack, e)),
        }
        pushed_at.push(t);
    }
    // Wait: served or refused, until the timeout.
    let deadline = Instant::now() + Duration::from_secs_f64(s.timeout_s);
    let mut waiting: Vec<usize> = (0..ids.len())
        .filter(|k| {
            ids.get(*k)
                .is_some_and(|i| !failed.iter().any(|f| f.0 == *i))
        })
        .collect();
    let mut last: Vec<String> = vec![String::new(); ids.len()];
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for k in waiting {
            let (Some(&i), Some(Some((before, _))), Some(t)) =
                (ids.get(k), base.get(k), pushed_at.get(k))
            else {
                continue;
            };
            let Some(edge) = edges.get_mut(i) else {
                continue;
            };
            match admin.snapshot(&edge.spec.admin) {
                Ok(now) => {
                    match progress(before, &now, &edge.resources, &s.new.version, s.new.number) {
                        Progress::Served => {
                            let took = t.elapsed().as_secs_f64();
                            edge.seconds_to_serve = Some(took);
                            say(&format!(
                                "{} {}: serving {} after {took:.2} s",
                                edge.step, edge.spec.admin, s.new.version
                            ));
                        }
                        Progress::Refused(why) => {
                            failed.push((i, Outcome::RefusedRolledBack, why));
                        }
                        Progress::Waiting => {
                            if let Some(l) = last.get_mut(k) {
                                *l = format!(
                                    "gauge {}, version text {}",
                                    now.version_gauge
                                        .map_or_else(|| String::from("absent"), |v| v.to_string()),
                                    edge.resources
                                        .iter()
                                        .map(|r| now
                                            .ecds
                                            .get(r)
                                            .map_or("absent", |e| e.version_text.as_str()))
                                        .collect::<Vec<_>>()
                                        .join("/")
                                );
                            }
                            still.push(k);
                        }
                    }
                }
                Err(e) => {
                    if let Some(l) = last.get_mut(k) {
                        *l = e;
                    }
                    still.push(k);
                }
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for k in waiting {
                if let Some(&i) = ids.get(k) {
                    failed.push((
                        i,
                        Outcome::RefusedRolledBack,
                        format!(
                            "not serving version {} (gauge {}) within --timeout-s {} ({})",
                            s.new.version,
                            s.new.number,
                            s.timeout_s,
                            last.get(k).map_or("", String::as_str)
                        ),
                    ));
                }
            }
            break;
        }
        sleep_s(0.1);
    }
    // Health window of the edges that serve the policy.
    let serving: Vec<usize> = (0..ids.len())
        .filter(|k| {
            ids.get(*k)
                .is_some_and(|i| !failed.iter().any(|f| f.0 == *i))
        })
        .collect();
    if !serving.is_empty() {
        let idx: Vec<usize> = serving
            .iter()
            .filter_map(|k| ids.get(*k).copied())
            .collect();
        let s2 = snapshots(admin, edges, &idx);
        sleep_s(s.settle_s);
        let s3 = snapshots(admin, edges, &idx);
        for (((&k, &i), a), b) in serving.iter().zip(&idx).zip(s2).zip(s3) {
            let before = base.get(k).and_then(|b| b.as_ref()).map(|b| b.1);
            let Some(edge) = edges.get_mut(i) else {
                continue;
            };
            edge.before = before;
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    failed.push((
                        i,
                        Outcome::UnhealthyRolledBack,
                        format!("health window: {e}"),
                    ));
                    continue;
                }
            };
            let after = Window::between(&a, &b, &s.watched);
            edge.after = Some(after);
            let still_serving = b.serves(&edge.resources, &s.new.version, s.new.number);
            let verdict = if still_serving {
                judge(&before.unwrap_or_default(), &after, &s.thresholds)
            } else {
                Err(format!(
                    "no longer serving version {} at the end of the health window (gauge {:?})",
                    s.new.version, b.version_gauge
                ))
            };
            match verdict {
                Ok(()) => {
                    edge.outcome = Outcome::Updated;
                    edge.version_after = s.new.version.clone();
                    say(&format!(
                        "{} {}: healthy ({} requests, 5xx {:.1}% -> {:.1}%, watched classes {:.1}% -> {:.1}%)",
                        edge.step,
                        edge.spec.admin,
                        after.requests,
                        before.unwrap_or_default().ratio_5xx() * 100.0,
                        after.ratio_5xx() * 100.0,
                        before.unwrap_or_default().ratio_watched() * 100.0,
                        after.ratio_watched() * 100.0
                    ));
                }
                Err(why) => failed.push((i, Outcome::UnhealthyRolledBack, why)),
            }
        }
    }
    // Roll back what failed.
    let ok = failed.is_empty();
    for (i, outcome, reason) in failed {
        let Some(edge) = edges.get_mut(i) else {
            continue;
        };
        edge.outcome = outcome;
        edge.reason = reason;
        say(&format!(
            "{} {}: {}: {}",
            edge.step,
            edge.spec.admin,
            if outcome == Outcome::RefusedRolledBack {
                "REFUSED"
            } else {
                "UNHEALTHY"
            },
            edge.reason
        ));
        roll_back(admin, edge, s.timeout_s);
        edge.version_after = match admin.snapshot(&edge.spec.admin) {
            Ok(snap) => edge
                .resources
                .first()
                .and_then(|r| snap.ecds.get(r))
                .map_or_else(String::new, |e| e.version_text.clone()),
            Err(_) => String::from("?"),
        };
    }
    ok
}

/// Runs `mapsctl rollout`; returns the exit code.
pub fn run(args: &Args) -> u8 {
    let t0 = Instant::now();
    let bytes = match read_input(&args.policy) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let engine = match policy_core::load(&bytes, false) {
        Ok(engine) => engine,
        Err(report) => {
            eprintln!(
                "mapsctl: {} is not a valid policy; nothing was written to any edge:",
                args.policy.display()
            );
            eprint!(
                "{}",
                validate::render_text(&report, &args.policy.display().to_string(), &bytes)
            );
            return 1;
        }
    };
    if policy_core::is_compiled(&bytes) {
        eprintln!(
            "mapsctl: {}: rollout rewrites the policy text of StringValue ECDS files and does not carry compiled policies yet: roll out the JSON policy, or write compiled ECDS files with mapsctl envoy-config --ecds-only",
            args.policy.display()
        );
        return 2;
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        eprintln!("mapsctl: {}: not UTF-8", args.policy.display());
        return 2;
    };
    let new = New {
        text,
        version: policy_core::policy_version(text.as_bytes()),
        number: policy_core::policy_version_number(text.as_bytes()),
    };
    let routes: Vec<String> = engine
        .classifier
        .routes()
        .iter()
        .map(|r| r.cluster.to_string())
        .collect();
    // Each edge once.
    for (i, e) in args.edges.iter().enumerate() {
        let dir = std::fs::canonicalize(&e.ecds_dir).unwrap_or_else(|_| e.ecds_dir.clone());
        for f in args.edges.iter().take(i) {
            let fdir = std::fs::canonicalize(&f.ecds_dir).unwrap_or_else(|_| f.ecds_dir.clone());
            if f.admin == e.admin || fdir == dir {
                eprintln!(
                    "mapsctl: --edge {}={} is given twice (same admin interface or ECDS directory)",
                    e.admin,
                    e.ecds_dir.display()
                );
                return 2;
            }
        }
    }
    let admin = Admin::new();
    let mut edges = Vec::new();
    for spec in &args.edges {
        match preflight(&admin, spec, &routes) {
            Ok(e) => edges.push(e),
            Err((code, msg)) => {
                eprintln!("mapsctl: {}", terminal_safe(&msg, false));
                eprintln!("mapsctl: nothing was written to any edge");
                return code;
            }
        }
    }
    say(&format!(
        "policy {} is version {} (gauge {}); {} edge(s) checked",
        args.policy.display(),
        new.version,
        new.number,
        edges.len()
    ));
    // Edges already serving it are skipped; the first other edge is the canary.
    let mut pending = Vec::new();
    for (i, e) in edges.iter_mut().enumerate() {
        if e.old_version == new.version && e.old_number == new.number {
            e.outcome = Outcome::AlreadyServing;
            e.step = String::from("-");
        } else {
            pending.push(i);
        }
    }
    let settings = Settings {
        new,
        thresholds: Thresholds {
            max_5xx_increase: args.max_5xx_increase,
            max_excluded_increase: args.max_excluded_increase,
            min_requests: args.min_requests,
        },
        watched: if args.watch_class.is_empty() {
            WATCHED_CLASSES.iter().map(|c| c.to_string()).collect()
        } else {
            args.watch_class.clone()
        },
        settle_s: args.settle_s,
        timeout_s: args.timeout_s,
    };
    let mut steps = Vec::new();
    let mut stopped = false;
    for (k, range) in batches(pending.len(), args.batch as usize)
        .into_iter()
        .enumerate()
    {
        let ids: Vec<usize> = pending.get(range).unwrap_or_default().to_vec();
        let name = if k == 0 {
            String::from("canary")
        } else {
            format!("batch-{k}")
        };
        for &i in &ids {
            if let Some(e) = edges.get_mut(i) {
                e.step = name.clone();
            }
        }
        let t = Instant::now();
        let ok = step(&admin, &mut edges, &ids, &settings);
        steps.push((name.clone(), ids.len(), t.elapsed().as_secs_f64(), ok));
        if !ok {
            stopped = true;
            break;
        }
    }
    for e in edges.iter_mut() {
        if e.step.is_empty() {
            e.step = String::from("-");
        }
    }
    let rollback_failed = edges.iter().any(|e| e.outcome == Outcome::RollbackFailed);
    let outcome = if rollback_failed {
        "rollback-failed"
    } else if stopped {
        "stopped"
    } else {
        "complete"
    };
    let updated = edges
        .iter()
        .filter(|e| e.outcome == Outcome::Updated)
        .count();
    let message = match outcome {
        "complete" => format!(
            "every edge serves version {} ({updated} updated, {} already serving it)",
            settings.new.version,
            edges
                .iter()
                .filter(|e| e.outcome == Outcome::AlreadyServing)
                .count()
        ),
        _ => {
            let bad: Vec<String> = edges
                .iter()
                .filter(|e| {
                    matches!(
                        e.outcome,
                        Outcome::RefusedRolledBack
                            | Outcome::UnhealthyRolledBack
                            | Outcome::RollbackFailed
                    ) || (!e.reason.is_empty() && e.outcome == Outcome::NotTouched)
                })
                .map(|e| format!("{} ({}): {}", e.spec.admin, e.outcome.as_str(), e.reason))
                .collect();
            format!(
                "rollout stopped at the {}: {}; {updated} edge(s) serve the new version, {} were not touched",
                steps.last().map_or("start", |s| s.0.as_str()),
                bad.join("; "),
                edges.iter().filter(|e| e.outcome == Outcome::NotTouched).count()
            )
        }
    };
    let total = t0.elapsed().as_secs_f64();
    let report = match args.format {
        Format::Json => json_report(args, &settings, &edges, &steps, outcome, &message, total),
        Format::Text => text_report(args, &settings, &edges, &steps, outcome, &message, total),
    };
    if let Some(code) = print_out(&report) {
        return code;
    }
    if outcome != "complete" {
        eprintln!("mapsctl: {}", terminal_safe(&message, false));
    }
    match outcome {
        "complete" => 0,
        "stopped" => 3,
        _ => 4,
    }
}

fn ratio_pair(before: Option<Window>, after: Option<Window>, f: fn(&Window) -> f64) -> Value {
    json!({
        "before": before.as_ref().map(f),
        "after": after.as_ref().map(f),
    })
}

fn json_report(
    args: &Args,
    s: &Settings<'_>,
    edges: &[Edge],
    steps: &[(String, usize, f64, bool)],
    outcome: &str,
    message: &str,
    total: f64,
) -> String {
    let v = json!({
        "policy": args.policy.display().to_string(),
        "version": s.new.version,
        "version_gauge": s.new.number,
        "outcome": outcome,
        "message": message,
        "seconds": total,
        "steps": steps.iter().map(|(name, n, secs, ok)| json!({
            "step": name, "edges": n, "seconds": secs, "healthy": ok,
        })).collect::<Vec<_>>(),
        "edges": edges.iter().map(|e| json!({
            "admin": e.spec.admin.to_string(),
            "ecds_dir": e.spec.ecds_dir.display().to_string(),
            "step": e.step,
            "version_before": e.old_version,
            "version_after": e.version_after,
            "seconds_to_serve": e.seconds_to_serve,
            "health": {
                "before": e.before,
                "after": e.after,
                "ratio_5xx": ratio_pair(e.before, e.after, Window::ratio_5xx),
                "ratio_watched": ratio_pair(e.before, e.after, Window::ratio_watched),
            },
            "outcome": e.outcome.as_str(),
            "reason": e.reason,
        })).collect::<Vec<_>>(),
        "thresholds": {
            "max_5xx_increase": s.thresholds.max_5xx_increase,
            "max_excluded_increase": s.thresholds.max_excluded_increase,
            "min_requests": s.thresholds.min_requests,
            "watched_classes": s.watched,
            "settle_s": s.settle_s,
            "timeout_s": s.timeout_s,
        },
    });
    ec::to_text(&v)
}

fn text_report(
    args: &Args,
    s: &Settings<'_>,
    edges: &[Edge],
    steps: &[(String, usize, f64, bool)],
    outcome: &str,
    message: &str,
    total: f64,
) -> String {
    let pct = |w: Window, f: fn(&Window) -> f64| format!("{:.1}%", f(&w) * 100.0);
    // "before->after" of a ratio; "-" when the edge had no health window.
    let change = |e: &Edge, f: fn(&Window) -> f64| match (e.before, e.after) {
        (Some(b), Some(a)) => format!("{}->{}", pct(b, f), pct(a, f)),
        (Some(b), None) => format!("{}->-", pct(b, f)),
        _ => String::from("-"),
    };
    let mut out = format!(
        "rollout of {} (version {}): {outcome} in {total:.1} s\n",
        args.policy.display(),
        s.new.version
    );
    for (name, n, secs, ok) in steps {
        out.push_str(&format!(
            "  {name:<8} {n} edge(s) {secs:>6.1} s  {}\n",
            if *ok { "healthy" } else { "stopped" }
        ));
    }
    out.push_str(&format!(
        "{:<8} {:<28} {:<17} {:<17} {:>7} {:>8} {:>13} {:>15}  {}\n",
        "step", "edge", "before", "after", "serve", "requests", "5xx", "watched", "outcome"
    ));
    for e in edges {
        out.push_str(&format!(
            "{:<8} {:<28} {:<17} {:<17} {:>7} {:>8} {:>13} {:>15}  {}\n",
            e.step,
            e.spec.admin.to_string(),
            e.old_version,
            e.version_after,
            e.seconds_to_serve
                .map_or_else(|| String::from("-"), |t| format!("{t:.2}s")),
            e.after
                .map_or_else(|| String::from("-"), |w| w.requests.to_string()),
            change(e, Window::ratio_5xx),
            change(e, Window::ratio_watched),
            e.outcome.as_str()
        ));
        if !e.reason.is_empty() {
            out.push_str(&format!("         reason: {}\n", e.reason));
        }
    }
    out.push_str(message);
    out.push('\n');
    terminal_safe(&out, true).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_windows_are_checked_at_parse_time() {
        assert_eq!(fraction("0.05").unwrap(), 0.05);
        for bad in ["-0.1", "1.5", "NaN", "inf", "x"] {
            assert!(fraction(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("2.5").unwrap(), 2.5);
        for bad in ["0", "-1", "1e9", "NaN"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(class_name("no-edge").unwrap(), "no-edge");
        assert!(class_name("excluded")
            .unwrap_err()
            .contains("excluded-category"));
    }

    #[test]
    fn a_missing_ecds_directory_is_a_preflight_error_naming_it() {
        let spec: EdgeSpec = "http://127.0.0.1:9=/nonexistent/xds".parse().unwrap();
        let Err((code, msg)) = preflight(&Admin::new(), &spec, &[]) else {
            panic!("accepted");
        };
        assert_eq!(code, 2);
        assert!(
            msg.contains("/nonexistent/xds") && msg.contains("maps-http.json"),
            "{msg}"
        );
    }
}
