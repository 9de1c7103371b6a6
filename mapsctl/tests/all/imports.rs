//! `mapsctl import azure|service-tags|m365` against golden outputs (fixtures/imports/;
//! `UPDATE_GOLDEN=1` rewrites them, as `make golden` does), and its refusals.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{mapsctl, root};

use serde_json::Value;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mapsctl-imports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compares `actual` with `fixtures/imports/<golden>` (or rewrites it).
fn check_golden(golden: &str, actual: &str) {
    let path = root().join("fixtures/imports").join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make golden`)", path.display()));
    assert_eq!(actual, expected, "{golden} (run `make golden` if intended)");
}

/// Runs an import that must succeed; checks the written policy and the report against
/// `<stem>.golden.json` and `<stem>.golden.txt`; returns the policy.
fn golden_import(stem: &str, args: &[&str]) -> Value {
    let o = mapsctl(args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let policy = String::from_utf8(o.stdout.clone()).unwrap();
    check_golden(&format!("{stem}.golden.json"), &policy);
    check_golden(&format!("{stem}.golden.txt"), &stderr(&o));
    serde_json::from_str(&policy).unwrap()
}

/// `mapsctl validate` of a written policy passes.
fn assert_validates(path: &Path) {
    let o = mapsctl(&["validate", path.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

const BASE: &str = "fixtures/imports/base-policy.json";
const SERVICES: &str = "fixtures/imports/azure/peering-services.json";
const PREFIXES: &str = "fixtures/imports/azure/prefixes.json";
const LAMNA: &str = "fixtures/imports/azure/lamna-co.json";
const TAGS: &str = "fixtures/imports/ServiceTags_Public_20250728.json";
const M365: &str = "fixtures/imports/m365-endpoints-worldwide.2024.json";

fn registration<'a>(p: &'a Value, id: &str) -> &'a Value {
    p["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no registration {id}"))
}

#[test]
fn azure_import_is_golden_and_keeps_what_azure_does_not_hold() {
    let p = golden_import(
        "azure",
        &[
            "import", "azure", "--policy", BASE, SERVICES, PREFIXES, LAMNA,
        ],
    );
    let ids: Vec<&str> = p["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12, "{ids:?}");
    assert_eq!(ids.last(), Some(&"lamna-co"), "new registrations come last");
    // Mapped through the edges' peering_location; "None" kept.
    let fab = registration(&p, "fabrikam-wa");
    assert_eq!(fab["primary_edge"], "sea");
    assert_eq!(fab["backup_edge"], "sjc");
    assert_eq!(fab["customer"], "Fabrikam");
    assert_eq!(fab["location"], "Washington");
    assert_eq!(registration(&p, "proseware-ny")["backup_edge"], "None");
    assert_eq!(registration(&p, "woodgrove-nl")["backup_edge"], "ams2");
    // Telemetry is the policy's, kept per prefix; the state and key are Azure's.
    let pfx = |r: &Value, prefix: &str| -> Value {
        r["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["prefix"] == prefix)
            .cloned()
            .unwrap_or_else(|| panic!("no prefix {prefix}"))
    };
    assert_eq!(pfx(fab, "20.33.0.0/20")["telemetry"], true);
    assert_eq!(pfx(fab, "20.33.16.0/24")["state"], "Verified");
    assert_eq!(pfx(fab, "20.33.16.0/24")["telemetry"], false);
    let wingtip = registration(&p, "wingtip-tx");
    assert_eq!(pfx(wingtip, "40.112.8.0/21")["telemetry"], true);
    assert_eq!(
        pfx(wingtip, "40.112.8.0/21")["key"],
        "6b1c2d3e-0a4f-4e5d-9c8b-7a6f5e4d3c21"
    );
    // No customer tag: the policy's customer stays.
    assert_eq!(
        registration(&p, "wideworld-au")["customer"],
        "Wide World Importers"
    );
    assert_eq!(p["provenance"][0]["kind"], "azure");
    assert_eq!(p["provenance"][0]["files"].as_array().unwrap().len(), 3);
}

#[test]
fn azure_import_skips_other_providers_and_removes_what_left_azure() {
    let o = mapsctl(&[
        "import", "azure", "--policy", BASE, SERVICES, PREFIXES, LAMNA,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("skipped 2 peering services of other providers:"),
        "{err}"
    );
    assert!(
        err.contains(
            "alpineski-de (Northwind Transit), fixtures/imports/azure/peering-services.json at /12"
        ),
        "{err}"
    );
    assert!(
        err.contains("168.61.64.0/19 of alpineski-de: a peering service of Northwind Transit"),
        "{err}"
    );
    assert!(
        err.contains("removed 13 registrations no longer in Azure"),
        "{err}"
    );
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = p["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for gone in [
        "alpineski-de",
        "northwind-de",
        "consolidated-mx",
        "margie-fl",
    ] {
        assert!(!ids.contains(&gone), "{gone} in {ids:?}");
    }
}

#[test]
fn every_import_writes_a_policy_that_validates() {
    let dir = scratch("validates");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "azure",
            vec!["azure", "--policy", BASE, SERVICES, PREFIXES, LAMNA],
        ),
        (
            "tags",
            vec![
                "service-tags",
                "--policy",
                BASE,
                "--tag",
                "AzureCloud",
                "--tag",
                "AzureFrontDoor.Frontend",
                TAGS,
            ],
        ),
        (
            "m365-all",
            vec![
                "m365",
                "--policy",
                BASE,
                "--categories",
                "Optimize,Allow,Default",
                M365,
            ],
        ),
    ];
    for (name, args) in runs {
        let out = dir.join(format!("{name}.json"));
        let mut all = vec!["import"];
        all.extend(args);
        all.extend(["--out", out.to_str().unwrap()]);
        let o = mapsctl(&all);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(
            o.stdout.is_empty(),
            "{name}: --out writes nothing to stdout"
        );
        assert_validates(&out);
    }
    // Imports compose: Azure, then Service Tags, then Microsoft 365, into one policy.
    let a = dir.join("a.json");
    let b = dir.join("b.json");
    let c = dir.join("c.json");
    let (a, b, c) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    );
    for args in [
        vec![
            "import", "azure", "--policy", BASE, "--out", a, SERVICES, PREFIXES,
        ],
        vec![
            "import",
            "service-tags",
            "--policy",
            a,
            "--tag",
            "AzureFrontDoor.FirstParty",
            "--out",
            b,
            TAGS,
        ],
        vec!["import", "m365", "--policy", b, "--out", c, M365],
    ] {
        let o = mapsctl(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    assert_validates(Path::new(c));
    let p: Value = serde_json::from_slice(&std::fs::read(c).unwrap()).unwrap();
    let kinds: Vec<&str> = p["provenance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["azure", "service-tags", "m365"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn service_tags_import_is_golden() {
    let p = golden_import(
        "service-tags",
        &[
            "import",
            "service-tags",
            "--policy",
            BASE,
            "--tag",
            "AzureFrontDoor.FirstParty",
            "--tag",
            "AzureActiveDirectory",
            TAGS,
        ],
    );
    let dests = p["destinations"].as_array().unwrap();
    let afd = dests
        .iter()
        .find(|d| d["name"] == "AzureFrontDoor.FirstParty")
        .unwrap();
    assert_eq!(afd["prefixes"].as_array().unwrap().len(), 68);
    assert!(afd.get("category").is_none());
    assert!(afd["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x.as_str().unwrap().contains(':')));
    let prov = p["provenance"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(prov["kind"], "service-tags");
    assert_eq!(prov["change_number"], 364);
    assert_eq!(prov["cloud"], "Public");
    assert_eq!(
        prov["selected"],
        serde_json::json!(["AzureFrontDoor.FirstParty", "AzureActiveDirectory"])
    );
}

#[test]
fn service_tags_replace_entries_of_the_same_name() {
    let dir = scratch("replace");
    let once = dir.join("once.json");
    let args = |policy: &str, out: &str| {
        vec![
            "import".to_string(),
            "service-tags".into(),
            "--policy".into(),
            policy.into(),
            "--tag".into(),
            "AzureFrontDoor.FirstParty".into(),
            "--out".into(),
            out.into(),
            TAGS.into(),
        ]
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        mapsctl(&a)
    };
    assert_eq!(
        run(args(BASE, once.to_str().unwrap())).status.code(),
        Some(0)
    );
    let twice = dir.join("twice.json");
    let o = run(args(once.to_str().unwrap(), twice.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("replacing the entry of that name"));
    let p: Value = serde_json::from_slice(&std::fs::read(&twice).unwrap()).unwrap();
    let n = p["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == "AzureFrontDoor.FirstParty")
        .count();
    assert_eq!(n, 1);
    assert_eq!(p["provenance"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_tag_is_refused_with_a_suggestion() {
    let o = mapsctl(&[
        "import",
        "service-tags",
        "--policy",
        BASE,
        "--tag",
        "AzureFrontdoor.Frontend",
        TAGS,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("no service tag `AzureFrontdoor.Frontend`"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `AzureFrontDoor.Frontend`?"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn m365_import_is_golden() {
    let p = golden_import("m365", &["import", "m365", "--policy", BASE, M365]);
    let m: Vec<&Value> = p["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"].as_str().unwrap().starts_with("m365 "))
        .collect();
    assert_eq!(m.len(), 10, "Optimize 3 + Allow 7");
    let first = m[0];
    assert_eq!(first["name"], "m365 1 Exchange");
    assert_eq!(first["category"], "Optimize");
    assert_eq!(first["ports"], "80,443");
    assert!(first["domains"]
        .as_array()
        .unwrap()
        .contains(&Value::from("outlook.office365.com")));
    assert_eq!(first["prefixes"].as_array().unwrap().len(), 27);
    assert!(
        m.iter().any(|d| d["name"] == "m365 2 Exchange"),
        "required: false included"
    );
    let prov = p["provenance"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(prov["kind"], "m365");
    assert_eq!(prov["selected"], serde_json::json!(["Optimize", "Allow"]));
    assert!(
        prov.get("version").is_none(),
        "the bare response carries none"
    );
}

#[test]
fn m365_required_only_and_a_version_when_given() {
    let o = mapsctl(&["import", "m365", "--policy", BASE, "--required-only", M365]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("m365 2 Exchange"));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = p["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .filter(|n| n.starts_with("m365 "))
        .collect();
    assert_eq!(names.len(), 9);
    assert!(!names.contains(&"m365 2 Exchange"));

    let dir = scratch("version");
    let sets: Value = serde_json::from_slice(&std::fs::read(root().join(M365)).unwrap()).unwrap();
    let wrapped = dir.join("endpoints.json");
    std::fs::write(
        &wrapped,
        serde_json::json!({"version": "2024100100", "endpoints": sets}).to_string(),
    )
    .unwrap();
    let o = mapsctl(&[
        "import",
        "m365",
        "--policy",
        BASE,
        wrapped.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["provenance"][0]["version"], "2024100100");
    let o = mapsctl(&[
        "import",
        "m365",
        "--policy",
        BASE,
        "--categories",
        "Optimise",
        M365,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_body_is_refused_with_file_and_pointer() {
    let dir = scratch("damaged");
    // A prefix that is a number.
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(root().join(PREFIXES)).unwrap()).unwrap();
    v["value"][3]["properties"]["prefix"] = Value::from(42);
    let bad = dir.join("prefixes.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let out = dir.join("out.json");
    let bad_s = bad.to_str().unwrap();
    let o = mapsctl(&[
        "import",
        "azure",
        "--policy",
        BASE,
        "--out",
        out.to_str().unwrap(),
        SERVICES,
        bad_s,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{bad_s}: at /value/3/properties/prefix: expected a string"
        )),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");

    // Cut short: not JSON, with line and column.
    let text = std::fs::read_to_string(root().join(SERVICES)).unwrap();
    let cut = dir.join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let o = mapsctl(&["import", "azure", "--policy", BASE, cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(cut.to_str().unwrap()) && err.contains("not JSON"),
        "{err}"
    );

    // Neither a service nor a prefix.
    let other = dir.join("other.json");
    std::fs::write(
        &other,
        r#"{"value": [{"name": "x", "properties": {"country": "c"}}]}"#,
    )
    .unwrap();
    let o = mapsctl(&["import", "azure", "--policy", BASE, other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at /value/0/properties: neither a peering service"));

    // An endpoint set with an unknown category; a Service Tags file without values.
    let sets = dir.join("sets.json");
    std::fs::write(
        &sets,
        r#"[{"id": 1, "serviceArea": "Exchange", "category": "Fast"}]"#,
    )
    .unwrap();
    let o = mapsctl(&["import", "m365", "--policy", BASE, sets.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at /0/category: unknown category `Fast`"));
    let tags = dir.join("tags.json");
    std::fs::write(&tags, r#"{"changeNumber": 1, "cloud": "Public"}"#).unwrap();
    let o = mapsctl(&[
        "import",
        "service-tags",
        "--policy",
        BASE,
        "--tag",
        "X",
        tags.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at /values: `values` is missing"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_file_exits_2() {
    for args in [
        vec![
            "import",
            "azure",
            "--policy",
            BASE,
            "fixtures/imports/azure/nope.json",
        ],
        vec![
            "import",
            "azure",
            "--policy",
            "fixtures/imports/nope.json",
            SERVICES,
        ],
        vec![
            "import",
            "m365",
            "--policy",
            BASE,
            "fixtures/imports/nope.json",
        ],
        vec![
            "import",
            "service-tags",
            "--policy",
            BASE,
            "--tag",
            "AzureCloud",
            "fixtures/imports/nope.json",
        ],
    ] {
        let o = mapsctl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("nope.json"), "{args:?}");
    }
}

#[test]
fn an_unmapped_peering_location_is_named() {
    let dir = scratch("unmapped");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(root().join(SERVICES)).unwrap()).unwrap();
    v[2]["properties"]["providerBackupPeeringLocation"] = Value::from("Denver");
    let f = dir.join("services.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = mapsctl(&[
        "import",
        "azure",
        "--policy",
        BASE,
        f.to_str().unwrap(),
        PREFIXES,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("at /2/properties/providerBackupPeeringLocation: peering location \"Denver\""),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_service_of_this_provider_removes_nothing() {
    let o = mapsctl(&[
        "import",
        "azure",
        "--policy",
        BASE,
        "fixtures/imports/azure-examples/peering-service.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no peering service of Contoso Networks"));
    assert!(o.stdout.is_empty());
}

/// The published examples (serviceProvider1, 192.168.1.0/24): taken as they are, and
/// the policy they make is refused by validation, naming the private prefix.
#[test]
fn the_published_examples_import_but_do_not_validate() {
    let dir = scratch("examples");
    let mut base: Value =
        serde_json::from_slice(&std::fs::read(root().join(BASE)).unwrap()).unwrap();
    base["provider"]["name"] = Value::from("serviceProvider1");
    base["edges"][0]["peering_location"] = Value::from("peeringLocation1");
    base["edges"][1]["peering_location"] = Value::from("peeringLocation2");
    let b = dir.join("base.json");
    std::fs::write(&b, serde_json::to_string_pretty(&base).unwrap()).unwrap();
    let out = dir.join("out.json");
    let o = mapsctl(&[
        "import",
        "azure",
        "--policy",
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "fixtures/imports/azure-examples/peering-service.json",
        "fixtures/imports/azure-examples/prefixes.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("took 1 peering service of serviceProvider1"),
        "{err}"
    );
    assert!(
        err.contains("refused: the updated policy would not validate"),
        "{err}"
    );
    assert!(err.contains("error[non-public-prefix]"), "{err}");
    assert!(err.contains("192.168.1.0/24"), "{err}");
    assert!(!out.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}
