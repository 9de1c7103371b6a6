//! The crate reads like its architecture: its modules import each other without a
//! circle (leaves first, then the stages). A module is a file of `src/` (a directory
//! such as `src/validate/` is one module); an import is any `crate::<module>` path in
//! its code, doc comments left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module name -> the text of its files.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        let mut text = String::new();
        if path.is_dir() {
            for f in fs::read_dir(&path).unwrap() {
                text.push_str(&fs::read_to_string(f.unwrap().path()).unwrap());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            text = fs::read_to_string(&path).unwrap();
        } else {
            continue;
        }
        out.insert(name, text);
    }
    out
}

/// The modules `text` imports (`crate::name` outside comments), itself excluded.
fn imports(text: &str, names: &BTreeSet<String>, own: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if names.contains(&name) && name != own {
                out.insert(name);
            }
        }
        // `use crate::{a, b::c}` groups.
        if let Some(group) = code.split("crate::{").nth(1) {
            for part in group.split([',', '}']) {
                let name = part
                    .trim()
                    .split("::")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if names.contains(&name) && name != own {
                    out.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn policy_core_modules_import_each_other_without_a_circle() {
    let mods = modules();
    let names: BTreeSet<String> = mods.keys().cloned().collect();
    assert!(
        names.contains("classify") && names.contains("validate"),
        "{names:?}"
    );
    let graph: BTreeMap<String, BTreeSet<String>> = mods
        .iter()
        .map(|(n, t)| (n.clone(), imports(t, &names, n)))
        .collect();
    // Depth-first search for a back edge; report the circle found.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut circle = path[i..].to_vec();
            circle.push(n.to_string());
            return Some(circle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(circle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
}
