//! End-to-end tests of `crscan scan`, run against the real binary.
//!
//! The vulnerability database is built once per test run by `crscan db build` from
//! the shared feeds (`../shared/data/vulndb`). Images are made at test time: OCI
//! layouts written by [`oci_layout`] from directories, holding a Debian 10 dpkg status
//! database (two layers), an Alpine 3.10 apk database, an Ubuntu 18.04 dpkg database,
//! Python wheels from `pip download`, an npm project from `npm install`, and a Go
//! binary built with the local Go toolchain. Each test compares the exact findings
//! (id, package, installed version, fixed version, severity, status, layer) with a
//! snapshot under `tests/snapshots/scan/`, checked by hand against the feed records
//! once (see `tests/snapshots/scan/README.md`). `CRSCAN_UPDATE_SNAPSHOTS=1` rewrites
//! the snapshots instead of comparing.
//!
//! Tests needing `python3 -m pip`, `npm` or `go` print why and skip when the tool is
//! missing, unless `CRSCAN_REQUIRE_TOOLS=1`, which turns the skip into a failure.
//! Downloads are cached under `$CRSCAN_TEST_CACHE` (default `~/.cache/crscan-test`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};

mod common;
use common::images::{
    alpine_image, debian_image, go_image, npm_image, python_image, sha256_hex, ubuntu_image,
};
use common::{cyclonedx_errors, run};

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vulndb");
const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/scan");
/// The fixed clock of every run: 2023-11-14T22:13:20Z.
const NOW: &str = "1700000000";

// --- tools, commands, caches -----------------------------------------------------

/// The database, built once per test binary from every shared feed.
fn database() -> &'static Path {
    static DATABASE: OnceLock<PathBuf> = OnceLock::new();
    DATABASE.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scan-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("crscan.db");
        let feeds = [
            "alpine-secdb",
            "debian-security-tracker",
            "github-advisory-database-subset",
            "golang-vulndb",
            "nodejs-security-wg",
            "pypa-advisory-database",
            "rustsec-advisory-db-osv",
            "ubuntu-cve-tracker",
            "ubuntu-security-notices-subset",
        ];
        let mut command = Command::new(CRSCAN);
        command.args(["db", "build", "--db"]).arg(&db).arg("--from");
        for feed in feeds {
            command.arg(Path::new(FEEDS).join(feed));
        }
        run(command.env_remove("CRSCAN_DB"));
        db
    })
}

/// Runs `crscan scan` with the test database and the fixed clock.
fn scan(args: &[&str]) -> Output {
    Command::new(CRSCAN)
        .arg("scan")
        .arg("--db")
        .arg(database())
        .args(args)
        .env("SOURCE_DATE_EPOCH", NOW)
        .env_remove("CRSCAN_DB")
        .output()
        .unwrap()
}

/// Runs `crscan scan` as [`scan`] does, in the working directory `dir` (where it looks
/// for `.trivyignore` and `.grype.yaml`).
fn scan_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(CRSCAN)
        .arg("scan")
        .arg("--db")
        .arg(database())
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", NOW)
        .env_remove("CRSCAN_DB")
        .output()
        .unwrap()
}

fn scan_ok(args: &[&str]) -> String {
    let output = scan(args);
    assert!(
        output.status.success(),
        "crscan scan {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn scan_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&scan_ok(&all)).unwrap()
}

// --- findings and snapshots ------------------------------------------------------

/// The facts a snapshot pins for each finding.
fn brief(document: &Value) -> Value {
    let findings = document["findings"].as_array().unwrap();
    Value::Array(
        findings
            .iter()
            .map(|finding| {
                json!({
                    "id": finding["id"],
                    "package": finding["package_name"],
                    "installed": finding["installed_version"],
                    "fixed_by": finding["fixed_by"],
                    "severity": finding["severity"],
                    "severity_source": finding["severity_source"]["kind"],
                    "status": finding["status"],
                    "layer": finding["layer"]["index"],
                })
            })
            .collect(),
    )
}

fn check_snapshot(name: &str, actual: &Value) {
    let path = Path::new(SNAPSHOTS).join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("CRSCAN_UPDATE_SNAPSHOTS").is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(SNAPSHOTS).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; check these findings by hand against the feeds, then run with \
             CRSCAN_UPDATE_SNAPSHOTS=1 to keep them:\n{text}",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        &expected,
        actual,
        "findings differ from {}; actual:\n{text}",
        path.display()
    );
}

fn summary(document: &Value) -> Vec<u64> {
    [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ]
    .iter()
    .map(|name| document["summary"][*name].as_u64().unwrap())
    .collect()
}

/// The SARIF 2.1.0 structure code-scanning tools rely on: one run, rules with unique
/// ids, results pointing at existing rules with a level and a message, locations as
/// relative URIs.
fn check_sarif(log: &Value, findings: &Value) {
    assert_eq!(log["version"], "2.1.0");
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let rules = runs[0]["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules
        .iter()
        .map(|rule| rule["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "rule ids repeat");
    for rule in rules {
        assert!(rule["shortDescription"]["text"].is_string());
        let score: f64 = rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&score));
    }
    let results = runs[0]["results"].as_array().unwrap();
    let findings = findings.as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    for (result, finding) in results.iter().zip(findings) {
        let index = usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert_eq!(result["ruleId"], finding["id"]);
        let expected_level = match finding["severity"].as_str().unwrap() {
            "CRITICAL" | "HIGH" => "error",
            "MEDIUM" => "warning",
            _ => "note",
        };
        assert_eq!(result["level"], expected_level);
        assert!(
            result["message"]["text"]
                .as_str()
                .unwrap()
                .contains(finding["id"].as_str().unwrap())
        );
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(!uri.starts_with('/') && !uri.contains(' '), "{uri}");
    }
}

/// Scans an image in every format and checks the formats against each other: the
/// CycloneDX document validates and lists one vulnerability per finding, SARIF is
/// well formed, and re-matching the CycloneDX inventory with `--sbom` gives the
/// identical findings. Returns the JSON document.
fn scan_all_formats(work: &Path, image: &str) -> Value {
    let document = scan_json(&[image]);
    let findings = &document["findings"];

    let bom_path = work.join(format!("{}.cdx.json", sha256_hex(image.as_bytes())));
    scan_ok(&[
        image,
        "--format",
        "cyclonedx",
        "--output",
        bom_path.to_str().unwrap(),
    ]);
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(&bom_path).unwrap()).unwrap();
    let errors = cyclonedx_errors(&bom);
    assert!(errors.is_empty(), "CycloneDX schema errors: {errors:#?}");
    let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulnerabilities.len(), findings.as_array().unwrap().len());
    let refs: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|component| component["bom-ref"].as_str())
        .collect();
    for (vulnerability, finding) in vulnerabilities.iter().zip(findings.as_array().unwrap()) {
        assert_eq!(vulnerability["id"], finding["id"]);
        for affected in vulnerability["affects"].as_array().unwrap() {
            assert!(
                refs.contains(&affected["ref"].as_str().unwrap()),
                "{affected}"
            );
        }
        if let Some(fixed) = finding["fixed_by"].as_str() {
            let versions = &vulnerability["affects"][0]["versions"];
            assert!(
                versions
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["version"] == fixed && v["status"] == "unaffected")
            );
        }
    }

    let sarif: Value = serde_json::from_str(&scan_ok(&[image, "--format", "sarif"])).unwrap();
    check_sarif(&sarif, findings);

    let rematched = scan_json(&["--sbom", bom_path.to_str().unwrap()]);
    assert_eq!(
        &rematched["findings"], findings,
        "--sbom gives other findings"
    );
    document
}

// --- the tests -------------------------------------------------------------------

#[test]
fn debian_buster_findings_come_from_the_dsa_and_dla_lists() {
    let work = tempfile::tempdir().unwrap();
    let (image, layers) = debian_image(work.path());
    let document = scan_all_formats(work.path(), &image);
    check_snapshot("debian-10", &brief(&document));
    assert_eq!(document["os"]["codename"], "buster");
    assert_eq!(summary(&document), [0, 0, 0, 0, 0, 13]);
    // sudo came with the second layer, everything else with the first.
    for finding in document["findings"].as_array().unwrap() {
        let layer = if finding["package_name"] == "sudo" {
            &layers[1]
        } else {
            &layers[0]
        };
        assert_eq!(
            finding["layer"]["digest"],
            layer.as_str(),
            "{}",
            finding["id"]
        );
    }
    let openssl = document["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == "CVE-2022-1292")
        .unwrap();
    assert_eq!(openssl["binary_packages"], json!(["libssl1.1", "openssl"]));
    assert_eq!(openssl["advisories"], json!(["DSA-5139-1"]));

    // The SBOM that `crscan sbom` writes re-matches to the same findings.
    let sbom = work.path().join("debian.sbom.cdx.json");
    let output = Command::new(CRSCAN)
        .args(["sbom", &image, "--format", "cyclonedx", "--output"])
        .arg(&sbom)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rematched = scan_json(&["--sbom", sbom.to_str().unwrap()]);
    assert_eq!(rematched["findings"], document["findings"]);
}

#[test]
fn alpine_findings_come_from_secdb() {
    let work = tempfile::tempdir().unwrap();
    let image = alpine_image(work.path());
    let document = scan_all_formats(work.path(), &image);
    check_snapshot("alpine-3.10", &brief(&document));
}

#[test]
fn python_wheels_findings_come_from_the_pypa_database() {
    let work = tempfile::tempdir().unwrap();
    let Some(image) = python_image(work.path()) else {
        return;
    };
    let document = scan_all_formats(work.path(), &image);
    check_snapshot("python", &brief(&document));
}

#[test]
fn npm_findings_come_from_ghsa_and_the_node_security_wg() {
    let work = tempfile::tempdir().unwrap();
    let Some(image) = npm_image(work.path()) else {
        return;
    };
    let document = scan_all_formats(work.path(), &image);
    check_snapshot("npm", &brief(&document));
}

#[test]
fn go_binary_findings_come_from_the_go_vulndb_stdlib_records() {
    let work = tempfile::tempdir().unwrap();
    let Some((image, go_version)) = go_image(work.path()) else {
        return;
    };
    let document = scan_all_formats(work.path(), &image);
    // The standard library's findings depend on the toolchain that built the binary.
    check_snapshot(&format!("go-{go_version}"), &brief(&document));
}

#[test]
fn the_table_shows_the_summary_and_one_section_per_severity() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    let table = scan_ok(&[&image]);
    assert!(
        table.contains(
            "Total: 8 (CRITICAL: 0, HIGH: 1, MEDIUM: 6, LOW: 1, NEGLIGIBLE: 0, UNDEFINED: 0)"
        ),
        "{table}"
    );
    let high = table.find("\nHIGH (1)\n").unwrap();
    let medium = table.find("\nMEDIUM (6)\n").unwrap();
    let low = table.find("\nLOW (1)\n").unwrap();
    assert!(high < medium && medium < low, "{table}");
    assert!(!table.contains("CRITICAL (") && !table.contains("UNDEFINED ("));
    assert!(table.contains("apport (apport, python3-apport)"), "{table}");
}

#[test]
fn severity_filters_what_is_shown_but_not_what_fails() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    let document = scan_json(&[&image]);
    check_snapshot("ubuntu-18.04", &brief(&document));
    assert_eq!(summary(&document), [0, 1, 6, 1, 0, 0]);

    let low_only = scan_json(&[&image, "--severity", "low"]);
    assert_eq!(summary(&low_only), [0, 0, 0, 1, 0, 0]);
    assert_eq!(low_only["findings"][0]["id"], "CVE-2019-11481");
    let two = scan_json(&[&image, "--severity", "HIGH,low"]);
    assert_eq!(summary(&two), [0, 1, 0, 1, 0, 0]);

    // --fail-on counts the HIGH finding that --severity hides.
    let hidden = scan(&[&image, "--severity", "LOW", "--fail-on", "HIGH"]);
    assert_eq!(hidden.status.code(), Some(1));
    let exit = |args: &[&str]| scan(args).status.code();
    assert_eq!(exit(&[&image, "--fail-on", "CRITICAL"]), Some(0));
    assert_eq!(exit(&[&image, "--fail-on", "high"]), Some(1));
    assert_eq!(
        exit(&[&image, "--fail-on", "LOW", "--exit-code", "7"]),
        Some(7)
    );
    assert_eq!(exit(&[&image, "--fail-on", "banana"]), Some(2));
}

#[test]
fn fail_on_counts_undefined_findings_only_at_undefined() {
    let work = tempfile::tempdir().unwrap();
    let (image, _) = debian_image(work.path());
    assert_eq!(
        scan(&[&image, "--fail-on", "NEGLIGIBLE"]).status.code(),
        Some(0)
    );
    assert_eq!(
        scan(&[&image, "--fail-on", "UNDEFINED"]).status.code(),
        Some(1)
    );
    assert_eq!(
        scan(&[&image, "--fail-on", "UNDEFINED", "--ignore-unfixed"])
            .status
            .code(),
        Some(1),
        "every Debian finding has a fixed version"
    );
}

#[test]
fn an_ignore_file_hides_until_its_entries_expire() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    let ignore = work.path().join("ignore.txt");
    // The clock is 2023-11-14: the first entry is in force, the second expired the
    // day before.
    std::fs::write(
        &ignore,
        "# apport findings we accept\n\
         CVE-2020-8831 expires: 2023-11-14 reason: apport is not installed on hosts\n\
         CVE-2019-11481 expires: 2023-11-13 reason: was waiting for a fix\n",
    )
    .unwrap();
    let ignore_arg = ignore.to_str().unwrap();
    let output = scan(&[
        &image,
        "--format",
        "json",
        "--ignore-file",
        ignore_arg,
        "--fail-on",
        "HIGH",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the only HIGH finding is ignored"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CVE-2019-11481") && stderr.contains("expired on 2023-11-13"),
        "{stderr}"
    );
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary(&document), [0, 0, 6, 1, 0, 0]);
    assert_eq!(document["ignored"].as_array().unwrap().len(), 1);
    assert_eq!(document["ignored"][0]["id"], "CVE-2020-8831");
    assert_eq!(
        document["ignored"][0]["cause"]["reason"],
        "apport is not installed on hosts"
    );
    assert!(
        document["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "CVE-2019-11481")
    );

    std::fs::write(&ignore, "CVE-2020-8831 expires: 2023-02-30\n").unwrap();
    let bad = scan(&[&image, "--ignore-file", ignore_arg]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2023-02-30"));
}

#[test]
fn exit_code_alone_fails_on_any_finding_and_severity_narrows_it() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    // The Ubuntu image has 1 HIGH, 6 MEDIUM and 1 LOW finding, no CRITICAL.
    let exit = |args: &[&str]| scan(args).status.code();
    assert_eq!(exit(&[&image]), Some(0));
    assert_eq!(exit(&[&image, "--exit-code", "1"]), Some(1));
    assert_eq!(exit(&[&image, "--exit-code", "0"]), Some(0));
    assert_eq!(
        exit(&[&image, "--severity", "HIGH,CRITICAL", "--exit-code", "5"]),
        Some(5)
    );
    assert_eq!(
        exit(&[&image, "--severity", "CRITICAL", "--exit-code", "1"]),
        Some(0)
    );
    // --fail-on keeps its documented meaning beside them.
    assert_eq!(
        exit(&[&image, "--severity", "CRITICAL", "--fail-on", "HIGH"]),
        Some(1)
    );
    assert_eq!(
        exit(&[&image, "--fail-on", "CRITICAL", "--exit-code", "1"]),
        Some(0)
    );
    let help = Command::new(CRSCAN)
        .args(["scan", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--exit-code N alone"), "{help}");
}

#[test]
fn trivy_and_grype_ignore_files_are_read_from_the_working_directory() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // Only the HIGH finding (CVE-2020-8831) counts with --severity HIGH.
    let gate = ["--severity", "HIGH", "--exit-code", "3"];
    let run = |args: &[&str]| {
        let mut all = vec![image.as_str()];
        all.extend(args);
        scan_in(&project, &all)
    };
    assert_eq!(run(&gate).status.code(), Some(3));

    // .trivyignore: in force until the start of its exp: day (the clock is 2023-11-14).
    std::fs::write(
        project.join(".trivyignore"),
        "# accepted until the next release
CVE-2020-8831 exp:2023-11-15
",
    )
    .unwrap();
    let ignored = run(&gate);
    assert_eq!(ignored.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&ignored.stderr);
    assert!(stderr.contains(".trivyignore"), "{stderr}");
    std::fs::write(
        project.join(".trivyignore"),
        "CVE-2020-8831 exp:2023-11-14
",
    )
    .unwrap();
    assert_eq!(run(&gate).status.code(), Some(3), "the entry expired today");
    std::fs::remove_file(project.join(".trivyignore")).unwrap();

    // .grype.yaml: a rule applies only when every field it gives matches.
    let grype = |package: &str| {
        std::fs::write(
            project.join(".grype.yaml"),
            format!(
                "ignore:
  - vulnerability: CVE-2020-8831
    package:
      name: {package}
      type: deb
    reason: apport is not installed on hosts
"
            ),
        )
        .unwrap();
    };
    grype("apport");
    let hidden = run(&["--format", "json", "--exit-code", "1", "--severity", "HIGH"]);
    assert_eq!(hidden.status.code(), Some(0));
    let document: Value = serde_json::from_slice(&hidden.stdout).unwrap();
    assert_eq!(document["ignored"][0]["id"], "CVE-2020-8831");
    assert_eq!(
        document["ignored"][0]["cause"]["reason"],
        "apport is not installed on hosts"
    );
    grype("openssl");
    assert_eq!(run(&gate).status.code(), Some(3));

    // --ignore-file replaces the working directory's files, and is recognised by
    // content whatever its name.
    let rules = work.path().join("accepted-risks");
    std::fs::write(
        &rules,
        "vulnerabilities:
  - id: CVE-2020-8831
    statement: accepted
",
    )
    .unwrap();
    grype("apport");
    let given = run(&["--ignore-file", rules.to_str().unwrap(), "--format", "json"]);
    let document: Value = serde_json::from_slice(&given.stdout).unwrap();
    assert_eq!(document["ignored"].as_array().unwrap().len(), 1);
    assert_eq!(document["ignored"][0]["cause"]["reason"], "accepted");
    // crscan's own format stays as it was.
    std::fs::write(
        &rules,
        "CVE-2020-8831 reason: native
",
    )
    .unwrap();
    let native = run(&["--ignore-file", rules.to_str().unwrap(), "--format", "json"]);
    let document: Value = serde_json::from_slice(&native.stdout).unwrap();
    assert_eq!(document["ignored"][0]["cause"]["reason"], "native");
    // A broken file is an error naming the file.
    std::fs::write(
        project.join(".grype.yaml"),
        "ignore: [[[
",
    )
    .unwrap();
    let broken = run(&[]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains(".grype.yaml"));
}

#[test]
fn a_missing_database_names_both_ways_to_make_one() {
    let work = tempfile::tempdir().unwrap();
    let image = ubuntu_image(work.path());
    let output = Command::new(CRSCAN)
        .args(["scan", &image, "--db"])
        .arg(work.path().join("absent.db"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("crscan db update") && stderr.contains("crscan db build --from"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_bad_image_stops_only_its_scan_with_exit_status_2() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("broken");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(layout.join("index.json"), "{ not json").unwrap();
    let output = scan(&[&format!("oci:{}", layout.display())]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read image"));
}
