//! `mapsctl bench`: decisions per second on a generated table (or, with `--policy` and
//! `--trace`, on your own policy and traffic), natively and through the plugin in the
//! wasmtime harness, measured in the same run.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use policy_core::testgen;

pub struct Args<'a> {
    pub v4: usize,
    pub v6: usize,
    pub lookups: usize,
    pub plugin_requests: usize,
    pub seed: u64,
    pub plugin: Option<&'a Path>,
    pub json: bool,
}

pub fn run(a: &Args) -> u8 {
    let base = super::demo_document();
    let doc = policy_core::synth::synthetic_policy(&base, a.v4, a.v6, 1000, a.seed);
    let text = match serde_json::to_vec(&doc) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mapsctl: {e}");
            return 2;
        }
    };
    // Native: validate + compile, then classify.
    let t0 = Instant::now();
    let engine = match policy_core::load(&text, false) {
        Ok(e) => e,
        Err(r) => {
            eprintln!("mapsctl: the generated policy is invalid:");
            for d in r.errors() {
                eprintln!("{d}");
            }
            return 1;
        }
    };
    let load_native = t0.elapsed();
    let c = &engine.classifier;
    let prefixes = engine.report.summary.as_ref().map_or(0, |s| s.prefixes);
    // Half the lookups hit the table.
    let t4 = testgen::ipv4_table(a.v4, a.seed);
    let mut addrs: Vec<IpAddr> = testgen::ipv4_lookups(&t4, a.lookups, 0.5, a.seed ^ 1)
        .into_iter()
        .map(|x| IpAddr::V4(x.into()))
        .collect();
    if a.v6 > 0 {
        let t6 = testgen::ipv6_table(a.v6, a.seed ^ 0x6666);
        addrs.extend(
            testgen::ipv6_lookups(&t6, a.lookups / 5, 0.5, a.seed ^ 2)
                .into_iter()
                .map(|x| IpAddr::V6(x.into())),
        );
    }
    let host = Some("outlook.office365.com");
    let t0 = Instant::now();
    let mut maps = 0usize;
    for &addr in &addrs {
        let d = c.classify(black_box(addr), None, host);
        if d.class() == policy_core::Class::Maps {
            maps += 1;
        }
    }
    let native_time = t0.elapsed();
    let native_rate = addrs.len() as f64 / native_time.as_secs_f64();

    // The same through the plugin (each request a full proxy-wasm HTTP exchange).
    let path = a
        .plugin
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::replay::default_plugin_path);
    let t0 = Instant::now();
    let mut pe = match crate::replay::PluginReplay::new(&path, &text) {
        Ok(pe) => pe,
        Err(e) => {
            eprintln!("mapsctl: cannot run the plugin {}: {e:#}", path.display());
            return 2;
        }
    };
    let load_plugin = t0.elapsed();
    let memory = pe.plugin().memory_size();
    let n = a.plugin_requests.min(addrs.len());
    let mut same = 0usize;
    let t0 = Instant::now();
    for addr in addrs.iter().take(n) {
        let s = addr.to_string();
        match pe.classify(&s, None, host) {
            Ok(line) => {
                let native = c.classify(*addr, None, host);
                if line == policy_core::decision_line_json(&s, &native) {
                    same += 1;
                }
            }
            Err(e) => {
                eprintln!("mapsctl: plugin failed on {s}: {e:#}");
                return 1;
            }
        }
    }
    let plugin_time = t0.elapsed();
    let plugin_rate = n as f64 / plugin_time.as_secs_f64();
    let table = c.table_bytes();
    let compiled = match compiled_figures(&path, &text, addrs.get(..n).unwrap_or(&[]), host) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mapsctl: the compiled policy: {e}");
            return 1;
        }
    };
    let mut report = String::new();
    if a.json {
        let v = serde_json::json!({
            "prefixes": prefixes,
            "table_bytes": table,
            "bytes_per_prefix": table as f64 / prefixes.max(1) as f64,
            "policy_json_bytes": text.len(),
            "native": {"load_ms": load_native.as_secs_f64() * 1e3, "decisions": addrs.len(), "decisions_per_s": native_rate, "maps": maps},
            "plugin": {"load_ms": load_plugin.as_secs_f64() * 1e3, "decisions": n, "decisions_per_s": plugin_rate,
                       "linear_memory_bytes": memory, "identical_to_native": same},
            "plugin_over_native": plugin_rate / native_rate,
            "compiled": compiled.json(),
        });
        let _ = writeln!(report, "{v}");
    } else {
        let _ = writeln!(report, "table: {prefixes} prefixes, {} bytes compiled ({:.2} bytes/prefix); policy {} bytes (packed)",
            table, table as f64 / prefixes.max(1) as f64, text.len());
        let _ = writeln!(
            report,
            "{:<28} {:>12} {:>14} {:>16}",
            "engine", "load", "decisions", "decisions/s"
        );
        let _ = writeln!(
            report,
            "{:<28} {:>10.0}ms {:>14} {:>16.0}",
            "native (policy-core)",
            load_native.as_secs_f64() * 1e3,
            addrs.len(),
            native_rate
        );
        let _ = writeln!(
            report,
            "{:<28} {:>10.0}ms {:>14} {:>16.0}",
            "plugin in wasmtime harness",
            load_plugin.as_secs_f64() * 1e3,
            n,
            plugin_rate
        );
        let _ = writeln!(report, "plugin / native: {:.4}  (each plugin decision is a whole proxy-wasm HTTP request: context create, headers, hostcalls)", plugin_rate / native_rate);
        let _ = writeln!(report, "plugin linear memory after configure: {:.1} MiB; decisions identical to native: {same}/{n}", memory as f64 / 1048576.0);
        compiled.text(&mut report);
    }
    if let Some(code) = super::print_out(&report) {
        return code;
    }
    if same == n && compiled.identical == compiled.decisions {
        0
    } else {
        1
    }
}

/// The same policy compiled (`mapsctl compile`), measured beside the JSON one: each
/// plugin VM configured in a module compiled once (the per-VM cost alone).
struct Compiled {
    compile_ms: f64,
    file_bytes: usize,
    table_bytes: usize,
    native_load_ms: f64,
    json_configure_ms: f64,
    json_memory: usize,
    configure_ms: f64,
    memory: usize,
    decisions: usize,
    identical: usize,
}

impl Compiled {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "compile_ms": self.compile_ms, "file_bytes": self.file_bytes,
            "table_bytes": self.table_bytes, "native_load_ms": self.native_load_ms,
            "plugin_configure_json_ms": self.json_configure_ms,
            "plugin_linear_memory_json_bytes": self.json_memory,
            "plugin_configure_ms": self.configure_ms,
            "plugin_linear_memory_bytes": self.memory,
            "memory_over_table_bytes": self.memory as i64 - self.table_bytes as i64,
            "decisions": self.decisions, "identical_to_native": self.identical,
        })
    }

    fn text(&self, out: &mut String) {
        let mib = |b: usize| b as f64 / 1048576.0;
        let _ = writeln!(out, "compiled (mapsctl compile: {:.0} ms, {} bytes, tables {:.1} MiB): native load {:.1} ms", self.compile_ms, self.file_bytes, mib(self.table_bytes), self.native_load_ms);
        let _ = writeln!(out, "  one plugin VM configured (module compiled once): JSON {:.1} ms, {:.1} MiB linear memory; compiled {:.1} ms, {:.1} MiB ({:+.2} MiB over its tables); decisions identical to native: {}/{}",
            self.json_configure_ms, mib(self.json_memory), self.configure_ms, mib(self.memory),
            (self.memory as f64 - self.table_bytes as f64) / 1048576.0, self.identical, self.decisions);
    }
}

fn compiled_figures(
    plugin: &Path,
    text: &[u8],
    addrs: &[IpAddr],
    host: Option<&str>,
) -> Result<Compiled, String> {
    let t0 = Instant::now();
    let file = policy_core::compile(text, false).map_err(|r| r.to_string())?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    let native = policy_core::load(&file, false).map_err(|r| r.to_string())?;
    let native_load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let harness = host_harness::Harness::load(plugin).map_err(|e| format!("{e:#}"))?;
    let t0 = Instant::now();
    let pj =
        crate::replay::PluginReplay::with_harness(&harness, text).map_err(|e| format!("{e:#}"))?;
    let json_configure_ms = t0.elapsed().as_secs_f64() * 1e3;
    let json_memory = pj.plugin().memory_size();
    drop(pj);
    let t0 = Instant::now();
    let mut pc =
        crate::replay::PluginReplay::with_harness(&harness, &file).map_err(|e| format!("{e:#}"))?;
    let configure_ms = t0.elapsed().as_secs_f64() * 1e3;
    let memory = pc.plugin().memory_size();
    let c = &native.classifier;
    let mut identical = 0;
    for addr in addrs {
        let s = addr.to_string();
        let line = pc.classify(&s, None, host).map_err(|e| format!("{e:#}"))?;
        identical += usize::from(
            line == policy_core::decision_line_json(&s, &c.classify(*addr, None, host)),
        );
    }
    Ok(Compiled {
        compile_ms,
        file_bytes: file.len(),
        table_bytes: c.table_bytes(),
        native_load_ms,
        json_configure_ms,
        json_memory,
        configure_ms,
        memory,
        decisions: addrs.len(),
        identical,
    })
}

pub struct UserArgs<'a> {
    pub policy: &'a Path,
    pub trace: &'a Path,
    pub lookups: usize,
    pub plugin_requests: usize,
    pub plugin: Option<&'a Path>,
    pub json: bool,
}

/// One flow of the user's trace.
struct Flow {
    src: String,
    dst: Option<String>,
    host: Option<String>,
}

/// `mapsctl bench --policy P --trace T`: the user's policy, the user's flows replayed
/// in a loop (`lookups` native decisions, `plugin_requests` through the plugin); every
/// plugin answer is compared with the native one.
pub fn run_user(a: &UserArgs) -> u8 {
    let (text, engine) = match super::load_policy(a.policy) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let trace = match std::fs::read_to_string(a.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mapsctl: cannot read {}: {e}", a.trace.display());
            return 2;
        }
    };
    let flows: Vec<Flow> = policy_core::trace_lines(&trace)
        .filter_map(|l| policy_core::parse_line(l.trim()).ok())
        .map(|t| Flow {
            src: t.src.into_owned(),
            dst: t.dst.map(|d| d.into_owned()),
            host: t.host.map(|h| h.into_owned()),
        })
        .collect();
    if flows.is_empty() {
        eprintln!("mapsctl: {} holds no flow", a.trace.display());
        return 1;
    }
    let c = &engine.classifier;
    let n = a.lookups.max(flows.len());
    let t0 = Instant::now();
    let mut maps = 0usize;
    for f in flows.iter().cycle().take(n) {
        let d = c.classify_text(black_box(&f.src), f.dst.as_deref(), f.host.as_deref());
        maps += usize::from(d.class() == policy_core::Class::Maps);
    }
    let native_rate = n as f64 / t0.elapsed().as_secs_f64();
    let path = a
        .plugin
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::replay::default_plugin_path);
    let mut pe = match crate::replay::PluginReplay::new(&path, &text) {
        Ok(pe) => pe,
        Err(e) => {
            eprintln!("mapsctl: cannot run the plugin {}: {e:#}", path.display());
            return 2;
        }
    };
    let m = a.plugin_requests.max(1);
    let (mut same, mut unsendable) = (0usize, 0usize);
    let t0 = Instant::now();
    for f in flows.iter().cycle().take(m) {
        match pe.classify(&f.src, f.dst.as_deref(), f.host.as_deref()) {
            Ok(line) => {
                let native = c.classify_text(&f.src, f.dst.as_deref(), f.host.as_deref());
                same += usize::from(line == policy_core::decision_line_json(&f.src, &native));
            }
            // A source the plugin's transport cannot carry (see `replay`): counted.
            Err(_) => unsendable += 1,
        }
    }
    let plugin_rate = m as f64 / t0.elapsed().as_secs_f64();
    let mut report = String::new();
    if a.json {
        let v = serde_json::json!({
            "policy": a.policy.display().to_string(),
            "trace": a.trace.display().to_string(),
            "flows": flows.len(),
            "native": {"decisions": n, "decisions_per_s": native_rate, "maps": maps},
            "plugin": {"decisions": m, "decisions_per_s": plugin_rate, "identical_to_native": same, "unsendable": unsendable},
            "plugin_over_native": plugin_rate / native_rate,
        });
        let _ = writeln!(report, "{v}");
    } else {
        let _ = writeln!(
            report,
            "policy {}, trace {} ({} flows, replayed in a loop)",
            a.policy.display(),
            a.trace.display(),
            flows.len()
        );
        let _ = writeln!(
            report,
            "{:<28} {:>14} {:>16}",
            "engine", "decisions", "decisions/s"
        );
        let _ = writeln!(
            report,
            "{:<28} {:>14} {:>16.0}",
            "native (policy-core)", n, native_rate
        );
        let _ = writeln!(
            report,
            "{:<28} {:>14} {:>16.0}",
            "plugin in wasmtime harness", m, plugin_rate
        );
        let _ = writeln!(
            report,
            "plugin / native: {:.4}; decisions identical to native: {same}/{m}{}",
            plugin_rate / native_rate,
            if unsendable > 0 {
                format!(" ({unsendable} flows the harness cannot deliver)")
            } else {
                String::new()
            }
        );
    }
    super::print_out(&report).unwrap_or(0)
}
