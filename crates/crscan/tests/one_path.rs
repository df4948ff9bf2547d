//! One path from an image to findings: every image of the end-to-end suite (the
//! demo image, the whiteout image, Debian, Alpine, Go, Rust, and npm packages listed
//! by `node_modules` and `package-lock.json` in different layers) is scanned three
//! ways, and every way gives the same six counters and the same list of
//! (vulnerability, package, version, severity):
//!
//! 1. `crscan scan --format json`, of the OCI layout and of a docker archive of it;
//! 2. the API, after a `skopeo` push from the OCI layout and from the docker archive;
//! 3. the API, after the rescan that replacing the database file triggers.
//!
//! Skips with a message when `skopeo` or `curl` is missing (and the Go image when
//! `go` is), unless `CRSCAN_REQUIRE_TOOLS=1`, which makes a missing tool a failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::images::{
    alpine_image, debian_image, go_image, npm_split_image, rust_image, whiteout_image, write_image,
};
use common::server::{Server, image_id, push_from, wait_for_results};
use common::{run, tools_present};

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vulndb");
/// The fixed clock of the CLI runs: 2023-11-14T22:13:20Z.
const NOW: &str = "1700000000";
const LEVELS: [&str; 6] = [
    "critical",
    "high",
    "medium",
    "low",
    "negligible",
    "undefined",
];

/// The feeds of the first database. The second adds AlmaLinux's, which say nothing
/// about these images: the rescan must give the same answer.
const FEEDS_FIRST: [&str; 8] = [
    "alpine-secdb",
    "debian-security-tracker",
    "github-advisory-database-subset",
    "golang-vulndb",
    "nodejs-security-wg",
    "pypa-advisory-database",
    "rustsec-advisory-db-osv",
    "ubuntu-security-notices-subset",
];
const FEED_ADDED: &str = "almalinux-osv";

/// What every surface must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    /// CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNDEFINED.
    counts: [u64; 6],
    /// (vulnerability, package, version, severity), sorted.
    findings: Vec<(String, String, String, String)>,
}

impl Answer {
    fn new(counts: [u64; 6], mut findings: Vec<(String, String, String, String)>) -> Answer {
        findings.sort();
        Answer { counts, findings }
    }

    fn has_package(&self, package: &str) -> bool {
        self.findings.iter().any(|finding| finding.1 == package)
    }

    /// Each (vulnerability, package, version) once: no package counted twice.
    fn assert_no_duplicates(&self, what: &str) {
        let mut keys: Vec<_> = self
            .findings
            .iter()
            .map(|(id, package, version, _)| (id, package, version))
            .collect();
        let total = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), total, "{what} lists a finding twice: {self:?}");
    }
}

fn build_database(db: &Path, feeds: &[&str]) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut command = Command::new(CRSCAN);
    command.args(["db", "build", "--db"]).arg(db);
    for feed in feeds {
        command.arg("--from").arg(Path::new(FEEDS).join(feed));
    }
    run(command.env_remove("CRSCAN_DB"));
}

/// `crscan scan --format json` of `image` against `db`.
fn cli_answer(db: &Path, image: &str) -> Answer {
    let output = run(Command::new(CRSCAN)
        .args(["scan", "--format", "json", "--db"])
        .arg(db)
        .arg(image)
        .env("SOURCE_DATE_EPOCH", NOW)
        .env_remove("CRSCAN_DB"));
    let document: Value = serde_json::from_str(&output).unwrap();
    let counts = LEVELS.map(|level| document["summary"][level].as_u64().unwrap());
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let findings = document["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                text(&finding["id"]),
                text(&finding["package_name"]),
                text(&finding["installed_version"]),
                text(&finding["severity"]),
            )
        })
        .collect();
    Answer::new(counts, findings)
}

/// The counters of a READY scan result and its vulnerabilities, every page.
fn api_answer(server: &Server, result: &Value) -> Answer {
    assert_eq!(result["status"], "READY", "{result}");
    let counts = LEVELS.map(|level| {
        result["vulnerabilities"][level]
            .as_str()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap()
    });
    let scan_id = result["id"].as_str().unwrap();
    let mut findings = Vec::new();
    let mut token = String::new();
    loop {
        let page = server.get(&format!(
            "/container-registry/v1/scans/{scan_id}:listVulnerabilities?pageSize=100&pageToken={token}"
        ));
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        for vulnerability in page["vulnerabilities"].as_array().into_iter().flatten() {
            let package = &vulnerability["package"];
            findings.push((
                text(&package["name"]),
                text(&package["package"]),
                text(&package["version"]),
                text(&vulnerability["severity"]),
            ));
        }
        match page["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => break,
        }
    }
    Answer::new(counts, findings)
}

/// Starts a scan of `image` and waits for its result.
fn scan_through_api(server: &Server, image: &str) -> Value {
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    server.wait(operation["id"].as_str().unwrap())["response"].clone()
}

/// One image of the suite: its name, its OCI layout (`oci:PATH:TAG`) and a docker
/// archive of it.
struct Image {
    name: &'static str,
    oci: String,
    archive: String,
}

fn images(work: &Path) -> Vec<Image> {
    let demo = work.join("demo-oci");
    write_image(&demo, "1.0");
    let mut sources = vec![
        ("demo", format!("oci:{}:1.0", demo.display())),
        ("whiteout", whiteout_image(work)),
        ("debian", debian_image(work).0),
        ("alpine", alpine_image(work)),
        ("rust", rust_image(work)),
        ("npm-split", npm_split_image(work)),
    ];
    if let Some((go, _)) = go_image(work) {
        sources.push(("go", go));
    }
    sources
        .into_iter()
        .map(|(name, oci)| {
            let file = work.join(format!("{name}.docker.tar"));
            run(Command::new("skopeo")
                .args(["copy", "--quiet"])
                .arg(&oci)
                .arg(format!("docker-archive:{}:{name}:1", file.display())));
            Image {
                name,
                oci,
                archive: format!("docker-archive:{}", file.display()),
            }
        })
        .collect()
}

#[test]
fn every_image_gives_the_same_findings_from_the_cli_and_the_api_three_ways() {
    if !tools_present(&["skopeo", "curl"], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let data_dir = work.join("data");
    let server_db = data_dir.join("vulndb/crscan.db");
    let first_db = work.join("first.db");
    let second_db = work.join("second.db");
    build_database(&first_db, &FEEDS_FIRST);
    let mut second_feeds = FEEDS_FIRST.to_vec();
    second_feeds.push(FEED_ADDED);
    build_database(&second_db, &second_feeds);
    std::fs::create_dir_all(server_db.parent().unwrap()).unwrap();
    std::fs::copy(&first_db, &server_db).unwrap();

    let images = images(work);
    let server = Server::start(&data_dir, 2, None);
    // (image name, pushed from, image id, CLI answer)
    let mut pushed: Vec<(&str, &str, String, Answer)> = Vec::new();
    for image in &images {
        let expected = cli_answer(&first_db, &image.oci);
        expected.assert_no_duplicates(&format!("crscan scan {}", image.oci));
        assert_eq!(
            cli_answer(&first_db, &image.archive),
            expected,
            "crscan scan {} and {} differ",
            image.oci,
            image.archive
        );
        for (from, source, repository) in [
            ("an OCI layout", &image.oci, image.name.to_owned()),
            (
                "a docker archive",
                &image.archive,
                format!("{}-docker", image.name),
            ),
        ] {
            let digest = push_from(&server, source, &format!("default/{repository}:1"));
            let id = image_id(&server, &digest, &repository);
            let result = scan_through_api(&server, &id);
            assert_eq!(
                api_answer(&server, &result),
                expected,
                "the {} image pushed from {from}: the API and `crscan scan` differ",
                image.name
            );
            pushed.push((image.name, from, id, expected.clone()));
        }
    }

    // What the suite's images are for.
    let answer = |name: &str| &pushed.iter().find(|entry| entry.0 == name).unwrap().3;
    for name in ["demo", "whiteout", "debian", "alpine", "rust", "npm-split"] {
        assert!(!answer(name).findings.is_empty(), "{name}: no findings");
    }
    let whiteout = answer("whiteout");
    assert!(whiteout.has_package("minimist"), "{whiteout:?}");
    for removed in ["lodash", "sudo", "jinja2"] {
        assert!(!whiteout.has_package(removed), "{removed}: {whiteout:?}");
    }
    assert!(answer("npm-split").has_package("lodash"));

    // The database file is replaced while the server runs: every image is rescanned
    // by itself, from the layer cache, and the answer is the CLI's with that database.
    std::fs::copy(&second_db, work.join("next.db")).unwrap();
    std::fs::rename(work.join("next.db"), &server_db).unwrap();
    for (name, from, id, before) in &pushed {
        let rescanned = wait_for_results(&server, id, 2);
        let image = images.iter().find(|image| image.name == *name).unwrap();
        let expected = cli_answer(&second_db, &image.oci);
        assert_eq!(
            &expected, before,
            "{name}: the added feed changed the findings"
        );
        assert_eq!(
            api_answer(&server, &rescanned),
            expected,
            "the {name} image pushed from {from}, rescanned after a database change: the API and `crscan scan` differ"
        );
    }
    server.stop();
}
