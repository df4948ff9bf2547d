//! Feeds, database and matching, on the real feed data in `shared/data/vulndb`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crscan_model::{Inventory, OsRelease, Package, PackageType, Severity};
use crscan_vulndb::{
    Database, FeedKind, Finding, FindingStatus, LoadReport, SeveritySource, match_inventory,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vulndb");

fn data(relative: &str) -> PathBuf {
    Path::new(DATA).join(relative)
}

/// A database built once from every shared feed, for the matching tests.
fn shared_database() -> Database {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let directory = tempfile::tempdir().unwrap().keep();
        let path = directory.join("crscan.db");
        let mut report = LoadReport::new();
        report.load_path(Path::new(DATA)).unwrap();
        Database::build(&path, &report, 1_700_000_000).unwrap();
        path
    });
    Database::open(path).unwrap()
}

fn package(package_type: PackageType, name: &str, version: &str) -> Package {
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        package_type,
        purl: format!("pkg:{package_type}/{name}@{version}"),
        source_name: None,
        source_version: None,
        epoch: None,
        arch: None,
        license: None,
        layer_digest: None,
        locations: vec!["/test".to_owned()],
        dev: false,
    }
}

fn os(id: &str, version: &str) -> Option<OsRelease> {
    Some(OsRelease {
        id: id.to_owned(),
        version_id: version.to_owned(),
        ..OsRelease::default()
    })
}

fn findings(inventory: &Inventory) -> Vec<Finding> {
    let database = shared_database();
    let report = match_inventory(&database, inventory).unwrap();
    report.findings
}

/// `(id, package, fixed_by, severity)` of every finding, sorted by id.
fn summary(findings: &[Finding]) -> Vec<(String, String, String, Severity)> {
    let mut rows: Vec<_> = findings
        .iter()
        .map(|finding| {
            (
                finding.id.clone(),
                finding.package_name.clone(),
                finding.fixed_by.clone().unwrap_or_default(),
                finding.severity,
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(
    id: &str,
    package: &str,
    fixed: &str,
    severity: Severity,
) -> (String, String, String, Severity) {
    (
        id.to_owned(),
        package.to_owned(),
        fixed.to_owned(),
        severity,
    )
}

fn load(relative: &str) -> LoadReport {
    let mut report = LoadReport::new();
    report.load_path(&data(relative)).unwrap();
    report
}

#[test]
fn every_shared_feed_loads_or_reports_why_not() {
    // (folder, feed, advisories loaded, records reported invalid)
    let expected: &[(&str, FeedKind, usize, usize)] = &[
        ("pypa-advisory-database", FeedKind::Osv, 2661, 0),
        ("golang-vulndb", FeedKind::Osv, 4291, 0),
        ("rustsec-advisory-db-osv", FeedKind::Osv, 1206, 0),
        ("github-advisory-database-subset", FeedKind::Osv, 7, 0),
        ("ubuntu-security-notices-subset", FeedKind::Osv, 2, 0),
        ("nodejs-security-wg", FeedKind::NodeSecurityWg, 467, 1),
        ("alpine-secdb", FeedKind::AlpineSecdb, 2479, 0),
        ("debian-security-tracker", FeedKind::DebianList, 9120, 28),
        ("ubuntu-cve-tracker", FeedKind::UbuntuCveTracker, 3535, 7),
    ];
    let mut failures = Vec::new();
    for (folder, feed, loaded, invalid) in expected {
        let report = load(folder);
        let counts = report.counts.get(feed).cloned().unwrap_or_default();
        println!(
            "{folder}: {} loaded, {} invalid, {} other files skipped",
            counts.loaded, counts.invalid, report.skipped_files
        );
        for diagnostic in report.diagnostics.iter().take(5) {
            println!("  {}: {}", diagnostic.path, diagnostic.message);
        }
        // Every diagnostic names its file and a reason.
        assert!(
            report
                .diagnostics
                .iter()
                .all(|d| !d.path.is_empty() && !d.message.is_empty())
        );
        // Nothing was loaded under an unexpected feed.
        assert_eq!(report.counts.len(), 1, "{folder}: {:?}", report.counts);
        if counts.loaded != *loaded || counts.invalid != *invalid {
            failures.push(format!(
                "{folder}: expected {loaded} loaded / {invalid} invalid, got {} / {}",
                counts.loaded, counts.invalid
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bad_records_are_skipped_with_a_diagnostic() {
    let directory = tempfile::tempdir().unwrap();
    let good = std::fs::read(data("golang-vulndb/osv/GO-2022-0969.json")).unwrap();
    std::fs::write(directory.path().join("good.json"), &good).unwrap();
    let mut missing_id: serde_json::Value = serde_json::from_slice(&good).unwrap();
    missing_id.as_object_mut().unwrap().remove("id");
    std::fs::write(
        directory.path().join("missing-id.json"),
        missing_id.to_string(),
    )
    .unwrap();
    let mut unknown: serde_json::Value = serde_json::from_slice(&good).unwrap();
    unknown["id"] = "GO-TEST-UNKNOWN".into();
    for affected in unknown["affected"].as_array_mut().unwrap() {
        affected["package"]["ecosystem"] = "NoSuchEcosystem".into();
    }
    std::fs::write(
        directory.path().join("unknown-ecosystem.json"),
        unknown.to_string(),
    )
    .unwrap();
    std::fs::write(
        directory.path().join("broken.yaml"),
        "id: PYSEC-1\naffected: [\n  - {",
    )
    .unwrap();
    std::fs::write(directory.path().join("not-osv.json"), "[1, 2, 3]").unwrap();

    // A zip export cut in half: the central directory is lost.
    let mut zipped = Vec::new();
    {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(&mut zipped));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for name in [
            "GO-2022-0969.json",
            "GO-2023-1840.json",
            "GO-2021-0113.json",
        ] {
            writer.start_file(name, options).unwrap();
            std::io::Write::write_all(
                &mut writer,
                &std::fs::read(data(&format!("golang-vulndb/osv/{name}"))).unwrap(),
            )
            .unwrap();
        }
        writer.finish().unwrap();
    }
    std::fs::write(
        directory.path().join("truncated.zip"),
        &zipped[..zipped.len() / 2],
    )
    .unwrap();

    let mut report = LoadReport::new();
    report.load_path(directory.path()).unwrap();
    let ids: Vec<&str> = report
        .advisories()
        .map(|advisory| advisory.id.as_str())
        .collect();
    assert_eq!(ids, ["GO-2022-0969"]);
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let file = diagnostic.path.rsplit('/').next().unwrap().to_owned();
            format!("{file}: {}", diagnostic.message)
        })
        .collect();
    println!("{messages:#?}");
    assert_eq!(messages.len(), 5, "{messages:#?}");
    let has = |file: &str, words: &str| {
        messages
            .iter()
            .any(|m| m.starts_with(file) && m.contains(words))
    };
    assert!(has("broken.yaml", "syntax error"));
    assert!(has("missing-id.json", "missing required field id"));
    assert!(has("not-osv.json", "unrecognised JSON"));
    assert!(has("truncated.zip", "zip"));
    assert!(has(
        "unknown-ecosystem.json",
        "unknown ecosystem \"NoSuchEcosystem\""
    ));

    // The good record also loads from a whole zip.
    let mut report = LoadReport::new();
    report.load_zip(&zipped, "all.zip", "test");
    assert_eq!(report.advisory_count(), 3);
    assert!(report.diagnostics.is_empty());
}

#[test]
fn database_replaces_atomically_and_answers_lookups() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vulndb/crscan.db");
    let first = load("github-advisory-database-subset");
    let info = Database::build(&path, &first, 1_000).unwrap();
    assert_eq!(info.advisory_count, 7);
    assert_eq!(info.schema_version, crscan_vulndb::SCHEMA_VERSION);
    assert_eq!(info.built_at, 1_000);
    assert!(info.content_digest.starts_with("sha256:"));
    assert_eq!(info.ecosystems, [("npm".to_owned(), 7)]);
    assert_eq!(info.sources[0].name, "github-advisory-database-subset");
    assert_eq!(info.sources[0].record_count, 7);

    // A build that fails midway (its temporary file cannot be created) leaves the
    // previous database in service.
    let temporary = directory
        .path()
        .join(format!("vulndb/crscan.db.tmp-{}", std::process::id()));
    std::fs::create_dir_all(temporary.join("blocker")).unwrap();
    let second = load("nodejs-security-wg");
    assert!(Database::build(&path, &second, 2_000).is_err());
    let database = Database::open(&path).unwrap();
    assert_eq!(database.info().content_digest, info.content_digest);
    std::fs::remove_dir_all(&temporary).unwrap();

    // A successful rebuild replaces it.
    let replaced = Database::build(&path, &second, 2_000).unwrap();
    assert_ne!(replaced.content_digest, info.content_digest);
    let database = Database::open(&path).unwrap();
    assert_eq!(database.info().built_at, 2_000);
    let rows = database.lookup("npm", "lodash").unwrap();
    assert!(!rows.is_empty());
    assert!(
        database
            .lookup("npm", "no-such-package")
            .unwrap()
            .is_empty()
    );
    // The same content gives the same digest.
    let again = Database::build(
        &directory.path().join("other.db"),
        &load("nodejs-security-wg"),
        3,
    )
    .unwrap();
    assert_eq!(again.content_digest, replaced.content_digest);
}

#[test]
fn jinja2_2_10_against_pypa() {
    let inventory = Inventory {
        os: None,
        packages: vec![package(PackageType::Pypi, "Jinja2", "2.10")],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    assert_eq!(
        summary(&found),
        [
            row("CVE-2019-10906", "Jinja2", "2.10.1", Severity::Undefined),
            row("CVE-2020-28493", "Jinja2", "2.11.3", Severity::Undefined),
        ]
    );
    let first = found.iter().find(|f| f.id == "CVE-2019-10906").unwrap();
    assert_eq!(first.aliases, ["PYSEC-2019-217", "GHSA-462w-v97r-4m45"]);
    assert_eq!(first.status, FindingStatus::Fixed);
    assert_eq!(first.severity_source, SeveritySource::None);
}

#[test]
fn lodash_4_17_15_against_ghsa_and_node_security_wg() {
    let inventory = Inventory {
        os: None,
        packages: vec![package(PackageType::Npm, "lodash", "4.17.15")],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    assert_eq!(
        summary(&found),
        [
            row("CVE-2020-28500", "lodash", "4.17.21", Severity::Medium),
            row("CVE-2020-8203", "lodash", "4.17.20", Severity::High),
            row("CVE-2021-23337", "lodash", "4.17.21", Severity::High),
            row("NSWG-ECO-516", "lodash", "4.17.19", Severity::Medium),
        ]
    );
    let prototype = found.iter().find(|f| f.id == "CVE-2020-8203").unwrap();
    let cvss = prototype.cvss.as_ref().unwrap();
    assert_eq!(cvss.vector, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H");
    assert!((cvss.score - 7.4).abs() < 1e-9);
    assert!(matches!(
        prototype.severity_source,
        SeveritySource::Cvss { .. }
    ));
}

#[test]
fn go_1_19_stdlib_against_golang_vulndb() {
    let inventory = Inventory {
        os: None,
        packages: vec![package(PackageType::Golang, "stdlib", "v1.19")],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    println!("{} findings for Go 1.19", found.len());
    let http2 = found.iter().find(|f| f.id == "CVE-2022-27664").unwrap();
    assert_eq!(http2.fixed_by.as_deref(), Some("1.19.1"));
    assert_eq!(http2.aliases, ["GO-2022-0969", "GHSA-69cg-p879-7622"]);
    assert_eq!(http2.severity, Severity::Undefined);
    assert_eq!(
        http2.advisory_link.as_deref(),
        Some("https://pkg.go.dev/vuln/GO-2022-0969")
    );
    // Every finding is fixed in some 1.19.x or later release.
    assert!(
        found
            .iter()
            .all(|f| f.fixed_by.as_deref().is_some_and(|v| v.starts_with("1.")))
    );
    assert_eq!(found.len(), 97);
}

#[test]
fn alpine_3_10_openssl_against_secdb() {
    let mut libcrypto = package(PackageType::Apk, "libcrypto1.1", "1.1.1c-r0");
    libcrypto.source_name = Some("openssl".to_owned());
    let mut libssl = package(PackageType::Apk, "libssl1.1", "1.1.1c-r0");
    libssl.source_name = Some("openssl".to_owned());
    let inventory = Inventory {
        os: os("alpine", "3.10.3"),
        packages: vec![libcrypto, libssl],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    assert_eq!(
        summary(&found),
        [
            row("CVE-2019-1547", "openssl", "1.1.1d-r0", Severity::Undefined),
            row("CVE-2019-1549", "openssl", "1.1.1d-r0", Severity::Undefined),
            row("CVE-2019-1563", "openssl", "1.1.1d-r0", Severity::Undefined),
        ]
    );
    assert_eq!(found[0].binary_packages, ["libcrypto1.1", "libssl1.1"]);
    assert_eq!(found[0].ecosystem, "Alpine:v3.10");
}

#[test]
fn debian_buster_openssl_against_dsa_and_dla_lists() {
    let mut libssl = package(PackageType::Deb, "libssl1.1", "1.1.1d-0+deb10u6");
    libssl.source_name = Some("openssl".to_owned());
    let mut tool = package(PackageType::Deb, "openssl", "1.1.1d-0+deb10u6");
    tool.source_name = Some("openssl".to_owned());
    let inventory = Inventory {
        os: os("debian", "10"),
        packages: vec![libssl, tool],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    let undefined = Severity::Undefined;
    assert_eq!(
        summary(&found),
        [
            row("CVE-2021-3711", "openssl", "1.1.1d-0+deb10u7", undefined),
            row("CVE-2021-3712", "openssl", "1.1.1d-0+deb10u7", undefined),
            row("CVE-2021-4160", "openssl", "1.1.1d-0+deb10u8", undefined),
            row("CVE-2022-0778", "openssl", "1.1.1d-0+deb10u8", undefined),
            row("CVE-2022-1292", "openssl", "1.1.1n-0+deb10u2", undefined),
            row("CVE-2022-2068", "openssl", "1.1.1n-0+deb10u3", undefined),
            row("CVE-2022-2097", "openssl", "1.1.1n-0+deb10u4", undefined),
            row("CVE-2022-4304", "openssl", "1.1.1n-0+deb10u4", undefined),
            row("CVE-2022-4450", "openssl", "1.1.1n-0+deb10u4", undefined),
            row("CVE-2023-0215", "openssl", "1.1.1n-0+deb10u4", undefined),
            row("CVE-2023-0286", "openssl", "1.1.1n-0+deb10u4", undefined),
        ]
    );
    let bundled = found.iter().find(|f| f.id == "CVE-2022-0778").unwrap();
    assert_eq!(bundled.advisories, ["DSA-5103-1"]);
    assert_eq!(bundled.binary_packages, ["libssl1.1", "openssl"]);
    assert_eq!(bundled.source_package.as_deref(), Some("openssl"));
}

#[test]
fn ubuntu_pam_merges_usn_and_cve_records() {
    let mut libpam = package(PackageType::Deb, "libpam0g", "1.4.0-11ubuntu2.3");
    libpam.source_name = Some("pam".to_owned());
    let inventory = Inventory {
        os: os("ubuntu", "22.04"),
        packages: vec![libpam],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    assert_eq!(found.len(), 1, "{found:#?}");
    let finding = &found[0];
    assert_eq!(finding.id, "CVE-2024-22365");
    assert_eq!(finding.fixed_by.as_deref(), Some("1.4.0-11ubuntu2.4"));
    let mut advisories = finding.advisories.clone();
    advisories.sort();
    assert_eq!(advisories, ["CVE-2024-22365", "USN-6588-1"]);
    assert_eq!(finding.severity, Severity::Medium);
    assert_eq!(
        finding.severity_source,
        SeveritySource::Distribution {
            distribution: "ubuntu".to_owned(),
            rating: "medium".to_owned()
        }
    );
    assert_eq!(finding.binary_packages, ["libpam0g"]);
    // The record's CVSS vector is kept beside the distribution's rating.
    assert_eq!(finding.cvss.as_ref().map(|cvss| cvss.score), Some(5.5));
}

#[test]
fn ubuntu_cve_tracker_priority_rates_findings() {
    let mut libssl = package(PackageType::Deb, "libssl1.1", "1.1.1-1ubuntu2.1~18.04.4");
    libssl.source_name = Some("openssl".to_owned());
    let inventory = Inventory {
        os: os("ubuntu", "18.04"),
        packages: vec![libssl],
        diagnostics: Vec::new(),
    };
    let found = findings(&inventory);
    // In the tracker snapshot (2020-06) these are still `needed` for bionic's openssl.
    assert_eq!(
        summary(&found),
        [
            row("CVE-2019-1547", "openssl", "", Severity::Low),
            row("CVE-2019-1549", "openssl", "", Severity::Low),
            row("CVE-2019-1551", "openssl", "", Severity::Low),
            row("CVE-2019-1563", "openssl", "", Severity::Low),
        ]
    );
    for finding in &found {
        assert_eq!(finding.status, FindingStatus::NotFixedYet);
        assert_eq!(
            finding.severity_source,
            SeveritySource::Distribution {
                distribution: "ubuntu".to_owned(),
                rating: "low".to_owned()
            }
        );
    }
}

#[test]
fn withdrawn_advisories_never_match() {
    // GO-2022-0617 (k8s.io/kubernetes, every version) was withdrawn in 2024.
    let record = data("golang-vulndb/osv/GO-2022-0617.json");
    let inventory = Inventory {
        os: None,
        packages: vec![package(PackageType::Golang, "k8s.io/kubernetes", "v1.25.0")],
        diagnostics: Vec::new(),
    };
    let matched_ids = |json: &[u8]| {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("GO-2022-0617.json"), json).unwrap();
        let mut report = LoadReport::new();
        report.load_path(directory.path()).unwrap();
        let path = directory.path().join("crscan.db");
        Database::build(&path, &report, 0).unwrap();
        let database = Database::open(&path).unwrap();
        let report = match_inventory(&database, &inventory).unwrap();
        report
            .findings
            .into_iter()
            .flat_map(|finding| finding.advisories)
            .collect::<Vec<_>>()
    };
    let original = std::fs::read(&record).unwrap();
    assert!(matched_ids(&original).is_empty());
    // The same record without its withdrawal matches, so the test above can fail.
    let mut revived: serde_json::Value = serde_json::from_slice(&original).unwrap();
    revived.as_object_mut().unwrap().remove("withdrawn");
    assert_eq!(
        matched_ids(revived.to_string().as_bytes()),
        ["GO-2022-0617"]
    );
    // And the shared database does not match it either.
    let database = shared_database();
    let report = match_inventory(&database, &inventory).unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|finding| !finding.advisories.contains(&"GO-2022-0617".to_owned()))
    );
}

#[test]
fn an_os_release_no_feed_covers_is_said_not_silent() {
    let database = shared_database();
    let inventory = |release: &str| Inventory {
        os: os("alpine", release),
        packages: vec![package(PackageType::Apk, "musl", "1.2.4-r2")],
        diagnostics: Vec::new(),
    };
    // Alpine 3.10 is in the shared secdb: covered, whatever the findings.
    let covered = match_inventory(&database, &inventory("3.10.3")).unwrap();
    assert_eq!(covered.os_not_covered, None);
    // Alpine 3.99 is in no feed: 0 OS findings, and the report says why.
    let uncovered = match_inventory(&database, &inventory("3.99.0")).unwrap();
    let gap = uncovered.os_not_covered.unwrap();
    assert!(gap.contains("alpine 3.99.0"), "{gap}");
    assert!(gap.contains("Alpine:v3.99"), "{gap}");
    assert!(gap.contains("not covered by any loaded feed"), "{gap}");
    // An image without OS packages has nothing to cover.
    let languages = Inventory {
        os: os("alpine", "3.99.0"),
        packages: vec![package(PackageType::Npm, "lodash", "4.17.15")],
        diagnostics: Vec::new(),
    };
    let report = match_inventory(&database, &languages).unwrap();
    assert_eq!(report.os_not_covered, None);
}
