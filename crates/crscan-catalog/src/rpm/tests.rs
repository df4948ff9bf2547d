//! Tests of the rpm detector over the real databases in `shared/data/catalog/rpm`, and
//! over corrupted copies of them.

use std::str::FromStr;

use crscan_model::Digest;
use proptest::prelude::*;

use super::*;
use crate::test_support;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/catalog/rpm"
);

/// (fixture, where an image keeps it).
const FIXTURES: [(&str, &str); 5] = [
    (
        "go-rpmdb/amazonlinux2023-plain/rpmdb.sqlite",
        "/var/lib/rpm/rpmdb.sqlite",
    ),
    (
        "go-rpmdb/sle15-bci/Packages.db",
        "/usr/lib/sysimage/rpm/Packages.db",
    ),
    ("go-rpmdb/libuuid/Packages", "/var/lib/rpm/Packages"),
    ("syft/Packages", "/var/lib/rpm/Packages"),
    ("osv-scalibr/Packages_epoch", "/var/lib/rpm/Packages"),
];

fn read(fixture: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{fixture}")).unwrap()
}

/// A file written by one fixed layer.
fn image_file(path: &str, contents: Vec<u8>) -> ImageFile {
    ImageFile {
        layer_digest: Some(Digest::from_str(&format!("sha256:{}", "ab".repeat(32))).unwrap()),
        ..test_support::image_file(path, contents)
    }
}

fn detect_in(files: Vec<ImageFile>, os: Option<&OsRelease>) -> Detected {
    test_support::detect(&RpmDetector, files, os)
}

/// name, version, epoch, arch, source name, source version.
type Row = (
    String,
    String,
    Option<u64>,
    Option<String>,
    Option<String>,
    String,
);

fn expected(fixture: &str) -> Vec<Row> {
    let json = std::fs::read_to_string(format!("{DATA}/{fixture}.expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut rows: Vec<Row> = json["cases"][0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| package["pseudo_package"] != serde_json::Value::Bool(true))
        .map(|package| {
            let field = |key: &str| package[key].as_str().map(str::to_owned);
            let version = field("version").unwrap();
            let source = field("source_rpm").and_then(|srpm| split_source_rpm(&srpm));
            (
                field("name").unwrap(),
                version.clone(),
                package["epoch"].as_u64(),
                field("arch"),
                source.as_ref().map(|(name, _)| name.clone()),
                source.map_or(version, |(_, version)| version),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn found(out: &Detected) -> Vec<Row> {
    let mut rows: Vec<Row> = out
        .packages
        .iter()
        .map(|package| {
            (
                package.name.clone(),
                package.version.clone(),
                package.epoch,
                package.arch.clone(),
                package.source_name.clone(),
                package.source_version_or_version().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn every_database_format_gives_the_expected_list() {
    for (fixture, image_path) in FIXTURES {
        let out = detect_in(vec![image_file(image_path, read(fixture))], None);
        assert!(
            out.diagnostics.is_empty(),
            "{fixture}: {:?}",
            out.diagnostics
        );
        let wanted = expected(fixture);
        assert!(!wanted.is_empty());
        assert_eq!(found(&out), wanted, "{fixture}");
        for package in &out.packages {
            assert_eq!(package.locations, vec![image_path.to_owned()]);
            assert!(package.layer_digest.is_some());
        }
    }
}

/// The `rpm -qa` CSV next to two fixtures also records each licence.
#[test]
fn licences_match_rpm_query_output() {
    for (fixture, image_path) in &FIXTURES[..2] {
        let csv = std::fs::read_to_string(format!(
            "{DATA}/{}/packages.csv",
            fixture.rsplit_once('/').unwrap().0
        ))
        .unwrap();
        let out = detect_in(vec![image_file(image_path, read(fixture))], None);
        let mut checked = 0;
        for line in csv.lines() {
            let columns: Vec<&str> = line.split('¶').collect();
            if columns[1] == "gpg-pubkey" {
                continue;
            }
            let package = out.packages.iter().find(|p| p.name == columns[1]).unwrap();
            assert_eq!(
                package.license.as_deref(),
                Some(columns[7]),
                "{}",
                columns[1]
            );
            checked += 1;
        }
        assert_eq!(checked, out.packages.len());
    }
}

#[test]
fn purls_and_owned_files() {
    let (fixture, path) = FIXTURES[0];
    let amazon = crate::os_release::parse_os_release("ID=\"amzn\"\nVERSION_ID=\"2023\"\n");
    let out = detect_in(vec![image_file(path, read(fixture))], Some(&amazon));
    let openssl = out
        .packages
        .iter()
        .find(|p| p.name == "openssl-libs")
        .unwrap();
    assert_eq!(
        openssl.purl,
        "pkg:rpm/amzn/openssl-libs@3.0.8-1.amzn2023.0.4?arch=x86_64&distro=amzn-2023&epoch=1\
         &upstream=openssl-3.0.8-1.amzn2023.0.4.src.rpm"
    );
    assert_eq!(openssl.source_name.as_deref(), Some("openssl"));
    assert!(
        out.owned_files.contains("/usr/bin/bash"),
        "{} owned files",
        out.owned_files.len()
    );
    assert!(out.owned_files.len() > 1000);
    let rhel = crate::os_release::parse_os_release("ID=rhel\nVERSION_ID=8.9\n");
    let (fixture, path) = FIXTURES[2];
    let out = detect_in(vec![image_file(path, read(fixture))], Some(&rhel));
    assert_eq!(
        out.packages[0].purl,
        "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.9\
         &upstream=util-linux-2.32.1-42.el8_8.src.rpm"
    );
}

#[test]
fn a_linked_database_directory_is_read_once() {
    let (fixture, _) = FIXTURES[3];
    let mut view = FileView::new();
    view.insert(image_file("/usr/lib/sysimage/rpm/Packages", read(fixture)));
    view.insert_symlink("/var/lib/rpm".into(), "../../usr/lib/sysimage/rpm".into());
    let mut out = Detected::default();
    RpmDetector.detect(&view, None, &mut out);
    assert_eq!(out.packages.len(), 1);
}

#[test]
fn source_rpm_names() {
    assert_eq!(
        split_source_rpm("util-linux-2.32.1-42.el8_8.src.rpm"),
        Some(("util-linux".to_owned(), "2.32.1-42.el8_8".to_owned()))
    );
    assert_eq!(split_source_rpm("broken.src.rpm"), None);
}

#[test]
fn interest() {
    assert_eq!(RpmDetector.interest("/var/lib/rpm/Packages"), Keep::Yes);
    assert_eq!(
        RpmDetector.interest("/usr/lib/sysimage/rpm/rpmdb.sqlite"),
        Keep::Yes
    );
    assert_eq!(RpmDetector.interest("/var/lib/rpm/Packages.db"), Keep::Yes);
    assert_eq!(RpmDetector.interest("/var/lib/rpm/Name"), Keep::No);
    assert_eq!(RpmDetector.interest("/home/Packages"), Keep::No);
}

#[test]
fn unusable_databases_are_diagnostics() {
    for bytes in [
        Vec::new(),
        b"not a database at all".to_vec(),
        b"SQLite format 3\0".to_vec(),
        b"RpmP\0\0\0\0".to_vec(),
        vec![0xa5; 8192],
    ] {
        let out = detect_in(vec![image_file("/var/lib/rpm/Packages", bytes)], None);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        assert_eq!(out.diagnostics[0].detector, "rpm");
    }
}

#[test]
fn truncated_databases_keep_the_readable_packages() {
    for (fixture, path) in FIXTURES[..2].iter().copied() {
        let mut bytes = read(fixture);
        let all = expected(fixture).len();
        bytes.truncate(bytes.len() / 2);
        let out = detect_in(vec![image_file(path, bytes)], None);
        assert!(!out.diagnostics.is_empty(), "{fixture}");
        assert!(out.packages.len() < all, "{fixture}");
        for package in &out.packages {
            assert!(expected(fixture).iter().any(|row| row.0 == package.name));
        }
    }
}

/// Points every overflow page of a Berkeley DB at itself: each chain now loops.
#[test]
fn berkeley_db_overflow_cycles_end() {
    let mut bytes = read("go-rpmdb/libuuid/Packages");
    let page_size = 4096;
    let mut looped = 0;
    for number in 1..bytes.len() / page_size {
        let start = number * page_size;
        if bytes[start + 25] == 7 {
            bytes[start + 16..start + 20].copy_from_slice(&(number as u32).to_le_bytes());
            looped += 1;
        }
    }
    assert!(looped > 1);
    let out = detect_in(vec![image_file("/var/lib/rpm/Packages", bytes)], None);
    assert!(out.packages.is_empty());
    assert!(
        out.diagnostics[0].message.contains("cycle"),
        "{:?}",
        out.diagnostics
    );
}

#[test]
fn a_bad_ndb_slot_is_reported_and_skipped() {
    let (fixture, path) = FIXTURES[1];
    let mut bytes = read(fixture);
    // Slot 0 starts right after the 32-byte file header.
    bytes[32..36].copy_from_slice(b"Xlot");
    // Slot 1's blob claims to belong to another package.
    let blob = u32::from_le_bytes(bytes[56..60].try_into().unwrap()) as usize * 16;
    bytes[blob + 4] ^= 0x40;
    let out = detect_in(vec![image_file(path, bytes)], None);
    assert_eq!(out.packages.len(), expected(fixture).len() - 2);
    assert_eq!(out.diagnostics.len(), 2, "{:?}", out.diagnostics);
    assert!(
        out.diagnostics[0]
            .message
            .contains("slot 0 has a bad magic")
    );
    assert!(out.diagnostics[1].message.contains("belongs to package"));
}

#[test]
fn corrupt_headers_are_reported_and_skipped() {
    let mut blob = header::tests::build(&[(tag::VERSION, 6, 1, b"1.0\0")]);
    let no_name = read_package(
        &blob,
        None,
        &image_file("/x", Vec::new()),
        &mut HashSet::new(),
    );
    assert_eq!(no_name.unwrap_err(), "rpm header has no name");
    blob[3] = 0xff;
    let too_many = read_package(
        &blob,
        None,
        &image_file("/x", Vec::new()),
        &mut HashSet::new(),
    );
    assert!(too_many.unwrap_err().contains("more than its"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(
        kind in 0usize..4,
        bytes in proptest::collection::vec(any::<u8>(), 0..16384),
    ) {
        // Give the random bytes each format's magic, so the readers get past it.
        let magic: &[u8] = match kind {
            0 => b"SQLite format 3\0\x10\x00",
            1 => b"RpmP\0\0\0\0\0\0\0\0\x01\0\0\0",
            2 => b"\0\0\0\0\0\0\0\0\0\0\0\0\x61\x15\x06\0\0\0\0\0\0\x10\0\0\0\x08",
            _ => b"",
        };
        let bytes = [magic, &bytes].concat();
        if let Ok(blobs) = package_blobs(&bytes) {
            let headers = blobs.iter().flatten().filter(|blob| Header::parse(blob).is_ok());
            prop_assert!(headers.count() <= blobs.len());
        }
        let _ = detect_in(vec![image_file("/var/lib/rpm/Packages", bytes)], None);
    }

    #[test]
    fn corrupted_real_databases_never_panic(
        fixture in 0usize..4,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..64),
    ) {
        let (name, path) = FIXTURES[fixture];
        let mut bytes = read(name);
        for (index, value) in edits {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let out = detect_in(vec![image_file(path, bytes)], None);
        prop_assert!(out.packages.len() <= expected(name).len() + 64);
    }
}
