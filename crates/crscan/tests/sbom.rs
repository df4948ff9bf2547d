//! End-to-end tests of `crscan sbom`, run against the real binary.
//!
//! The main test builds a real Debian image: `debootstrap --variant=minbase bookworm`
//! (cached between runs under `$CRSCAN_TEST_CACHE`, default
//! `~/.cache/crscan-test`), packed by `umoci` into a three-layer OCI image whose
//! second layer purges packages and whose third installs one and deletes a Python
//! package, so that whiteouts are exercised. crscan must list exactly what
//! `dpkg-query` lists on the final filesystem, from the OCI layout and from the same
//! image converted by `skopeo` into a docker archive, and its CycloneDX and SPDX
//! output must validate against the official schemas.
//!
//! Without `debootstrap`, `umoci`, `skopeo` or root, the test prints why and skips,
//! unless `CRSCAN_REQUIRE_TOOLS=1`, which turns the skip into a failure (CI).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{cache_dir, cyclonedx_errors, run, spdx_errors, tools_present};

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const DPKG_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/catalog/dpkg/trivy/status"
);

/// Packages the second layer purges (their files and dpkg entries go away).
const PURGED: [&str; 2] = ["e2fsprogs", "libss2"];
/// The package the third layer installs from Debian's archive.
const ADDED_DEB: &str = "hello";
const SITE: &str = "usr/local/lib/python3.11/dist-packages";

fn crscan(args: &[&str]) -> Output {
    Command::new(CRSCAN)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

fn crscan_json(args: &[&str]) -> Value {
    let output = crscan(args);
    assert!(
        output.status.success(),
        "crscan {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The debootstrap root filesystem as a tar file, made once and reused.
fn debootstrap_tarball(cache: &Path) -> PathBuf {
    let tarball = cache.join("debootstrap-bookworm-minbase.tar");
    if tarball.is_file() {
        return tarball;
    }
    eprintln!(
        "running debootstrap (minutes, once; cached as {})",
        tarball.display()
    );
    let work = tempfile::tempdir_in(cache).unwrap();
    let root = work.path().join("root");
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .arg("http://deb.debian.org/debian"));
    let partial = work.path().join("rootfs.tar");
    run(Command::new("tar")
        .args([
            "--numeric-owner",
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "-C",
        ])
        .arg(&root)
        .arg("-cf")
        .arg(&partial)
        .arg("."));
    std::fs::rename(&partial, &tarball).unwrap();
    tarball
}

/// A `.deb` from Debian's archive, downloaded once.
fn debian_package(cache: &Path, name: &str) -> PathBuf {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let find = || {
        std::fs::read_dir(&debs)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|file| {
                        file.starts_with(&format!("{name}_")) && file.ends_with(".deb")
                    })
            })
    };
    if let Some(path) = find() {
        return path;
    }
    run(Command::new("apt-get")
        .current_dir(&debs)
        .args(["download", name]));
    find().unwrap()
}

fn write_metadata(rootfs: &Path, name: &str, version: &str) {
    let dir = rootfs
        .join(SITE)
        .join(format!("{}-{version}.dist-info", name.replace('-', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
    )
    .unwrap();
}

/// Builds the three-layer image in `work/layout` under the tag `final`, leaving its
/// final root filesystem unpacked in `work/final/rootfs`.
fn build_image(work: &Path, cache: &Path) -> PathBuf {
    let layout = work.join("layout");
    let image = format!("{}:final", layout.display());
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    let unpack = || {
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle).unwrap();
        }
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        bundle.join("rootfs")
    };
    let repack = || {
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle))
    };

    // Layer 1: the Debian root filesystem plus two Python packages.
    let rootfs = unpack();
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-xf")
        .arg(debootstrap_tarball(cache)));
    write_metadata(&rootfs, "hidden-pkg", "1.0");
    write_metadata(&rootfs, "kept-pkg", "3.1");
    repack();

    // Layer 2: dpkg purges packages, deleting their files and database entries.
    let rootfs = unpack();
    run(Command::new("dpkg")
        .arg(format!("--root={}", rootfs.display()))
        .args(["--purge", "--force-depends"])
        .args(PURGED));
    repack();

    // Layer 3: a package installed from Debian's archive, a Python package deleted
    // (a whiteout over layer 1's directory) and another added.
    let rootfs = unpack();
    run(Command::new("dpkg")
        .arg(format!("--root={}", rootfs.display()))
        .args(["--force-depends", "-i"])
        .arg(debian_package(cache, ADDED_DEB)));
    std::fs::remove_dir_all(rootfs.join(SITE).join("hidden_pkg-1.0.dist-info")).unwrap();
    write_metadata(&rootfs, "added-pkg", "2.0");
    repack();

    let final_bundle = work.join("final");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&final_bundle));
    layout
}

/// `(name, version, source name, source version)` of each installed package, as
/// dpkg-query reports them for the database under `rootfs`.
fn dpkg_query(admindir: &Path) -> BTreeSet<(String, String, String, String)> {
    let listing = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .arg("-W")
        .arg("-f")
        .arg("${db:Status-Status} ${Package} ${Version} ${source:Package} ${source:Version}\n"));
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["installed", name, version, source, source_version] => Some((
                    (*name).to_owned(),
                    (*version).to_owned(),
                    (*source).to_owned(),
                    (*source_version).to_owned(),
                )),
                _ => None,
            }
        })
        .collect()
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The same four fields for crscan's deb packages.
fn crscan_debs(document: &Value) -> BTreeSet<(String, String, String, String)> {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| package["type"] == "deb")
        .map(|package| {
            let name = string(&package["name"]);
            let version = string(&package["version"]);
            let source = package["source_name"]
                .as_str()
                .map_or(name.clone(), str::to_owned);
            let source_version = package["source_version"]
                .as_str()
                .map_or(version.clone(), str::to_owned);
            (name, version, source, source_version)
        })
        .collect()
}

/// `(type, name, version)` of every package, for comparing two sources.
fn package_set(document: &Value) -> BTreeSet<(String, String, String)> {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                string(&p["type"]),
                string(&p["name"]),
                string(&p["version"]),
            )
        })
        .collect()
}

fn find<'a>(document: &'a Value, name: &str) -> Option<&'a Value> {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

fn schema_errors(format: &str, document: &Value) -> Vec<String> {
    if format == "cyclonedx" {
        cyclonedx_errors(document)
    } else {
        spdx_errors(document)
    }
}

/// Which layer blob (0-based) holds a tar entry whose path ends with `suffix`.
fn layer_with_entry(layout: &Path, manifest_digest: &str, suffix: &str) -> Option<usize> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|layer| {
            let listing = run(Command::new("tar")
                .arg("-tzf")
                .arg(blob(layer["digest"].as_str().unwrap())));
            listing
                .lines()
                .any(|entry| entry.trim_end_matches('/').ends_with(suffix))
        })
}

#[test]
fn debian_image_with_whiteouts_matches_dpkg_query() {
    if !tools_present(
        &[
            "debootstrap",
            "umoci",
            "skopeo",
            "dpkg",
            "dpkg-query",
            "tar",
            "apt-get",
        ],
        true,
    ) {
        return;
    }
    let cache = cache_dir();
    let work = tempfile::tempdir().unwrap();
    let layout = build_image(work.path(), &cache);
    let source = format!("oci:{}:final", layout.display());
    let document = crscan_json(&["sbom", "--format", "json", &source]);

    // Exactly what dpkg-query lists on the final filesystem.
    let expected = dpkg_query(&work.path().join("final/rootfs/var/lib/dpkg"));
    assert!(expected.len() > 50, "dpkg-query listed only {expected:?}");
    let found = crscan_debs(&document);
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(document["os"]["id"], "debian");
    assert_eq!(document["os"]["version_id"], "12");

    // The layers did what the test says: purged packages are gone, the added one is
    // attributed to the third layer, and the whited-out Python package is gone.
    let layers: Vec<String> = document["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| string(&layer["digest"]))
        .collect();
    assert_eq!(layers.len(), 3);
    for purged in PURGED {
        assert!(find(&document, purged).is_none(), "{purged} was purged");
    }
    assert_eq!(
        string(&find(&document, ADDED_DEB).unwrap()["layer_digest"]),
        layers[2]
    );
    assert_eq!(
        string(&find(&document, "libc6").unwrap()["layer_digest"]),
        layers[0]
    );
    let manifest_digest = string(&document["image"]["manifest_digest"]);
    assert_eq!(
        layer_with_entry(&layout, &manifest_digest, ".wh.hidden_pkg-1.0.dist-info"),
        Some(2),
        "the third layer carries the whiteout"
    );
    assert!(
        find(&document, "hidden-pkg").is_none(),
        "whited-out package listed"
    );
    assert_eq!(
        string(&find(&document, "kept-pkg").unwrap()["layer_digest"]),
        layers[0]
    );
    assert_eq!(
        string(&find(&document, "added-pkg").unwrap()["layer_digest"]),
        layers[2]
    );
    assert!(
        document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|package| package["locations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|location| { !string(location).contains("hidden_pkg") }))
    );

    // The same image as a docker archive gives the same packages.
    let archive = work.path().join("image.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:final", layout.display()))
        .arg(format!(
            "docker-archive:{}:crscan-test:final",
            archive.display()
        )));
    let from_archive = crscan_json(&[
        "sbom",
        "--format",
        "json",
        &format!("docker-archive:{}", archive.display()),
    ]);
    assert_eq!(crscan_debs(&from_archive), found);
    assert_eq!(package_set(&from_archive), package_set(&document));

    // CycloneDX and SPDX of this image validate against the official schemas and
    // list the same packages.
    for format in ["cyclonedx", "spdx"] {
        let rendered = crscan_json(&["sbom", "--format", format, &source]);
        let problems = schema_errors(format, &rendered);
        assert!(problems.is_empty(), "{format}: {problems:#?}");
        let purls: BTreeSet<String> = if format == "cyclonedx" {
            rendered["components"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["purl"].as_str().map(str::to_owned))
                .collect()
        } else {
            rendered["packages"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| {
                    p["externalRefs"][0]["referenceLocator"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect()
        };
        let expected_purls: BTreeSet<String> = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| string(&p["purl"]))
            .collect();
        assert_eq!(purls, expected_purls, "{format}");
    }

    // The default table names the OS and has one row per package.
    let table = crscan(&["sbom", &source]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("OS: Debian GNU/Linux 12 (bookworm)"),
        "{table}"
    );
    let rows = table
        .lines()
        .skip_while(|line| !line.starts_with("NAME"))
        .count()
        - 1;
    assert_eq!(rows, document["packages"].as_array().unwrap().len());
}

#[test]
fn root_filesystem_directory_matches_dpkg_query_and_writes_only_the_document() {
    if !tools_present(&["dpkg-query"], false) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let admindir = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&admindir).unwrap();
    std::fs::copy(DPKG_FIXTURE, admindir.join("status")).unwrap();
    let source = format!("dir:{}", root.path().display());
    let output = crscan(&["sbom", "--format", "json", &source]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // In a pipe, stdout is the document and nothing else.
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(crscan_debs(&document), dpkg_query(&admindir));

    // --output writes the same document to a file and leaves stdout empty.
    let file = root.path().join("sbom.json");
    let written = crscan(&[
        "sbom",
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
        &source,
    ]);
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), output.stdout);
}

#[test]
fn an_unreadable_image_exits_2_with_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("no-such-layout");
    let output = crscan(&["sbom", &format!("oci:{}", missing.display())]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot read image oci:"),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-layout"), "{stderr}");

    let output = crscan(&["sbom", "--format", "xml", "dir:/"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown SBOM format \"xml\""));
}

/// The error line of a failed command: exactly one, with no part said twice.
fn one_error(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let parts: Vec<&str> = lines[0].split(": ").collect();
    for (index, part) in parts.iter().enumerate() {
        assert!(
            !parts[index + 1..].contains(part),
            "{part:?} is said twice in {stderr}"
        );
    }
    lines[0].to_owned()
}

#[test]
fn cli_errors_name_the_missing_thing_once_and_list_the_choices() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nonexistent");
    let error = one_error(&crscan(&["sbom", &format!("oci:{}", missing.display())]));
    assert!(
        error.contains(&format!("no image layout at {}", missing.display())),
        "{error}"
    );
    assert!(!error.contains("index.json is missing"), "{error}");
    let error = one_error(&crscan(&[
        "sbom",
        &format!("oci:{}", work.path().display()),
    ]));
    assert!(error.contains("no index.json"), "{error}");
    // An I/O error used to be printed twice (in the message and as its cause).
    let error = one_error(&crscan(&["sbom", &missing.display().to_string()]));
    assert!(error.contains("No such file or directory"), "{error}");
    let bad_db = work.path().join("bad.db");
    std::fs::write(&bad_db, "not a database").unwrap();
    let error = one_error(&crscan(&[
        "scan",
        "dir:/nonexistent",
        "--db",
        bad_db.to_str().unwrap(),
    ]));
    assert!(error.contains("bad.db"), "{error}");

    // Ecosystems in any case; an unknown one lists the known ones.
    let compare = crscan(&["version", "compare", "pypi", "1.0", "1.0.post1"]);
    assert!(compare.status.success());
    assert_eq!(String::from_utf8_lossy(&compare.stdout).trim(), "<");
    let compare = crscan(&["version", "compare", "MAVEN", "0.8.9.RC1", "0.8.9-rc.1"]);
    assert_eq!(String::from_utf8_lossy(&compare.stdout).trim(), "<");
    let error = one_error(&crscan(&["version", "compare", "pipy", "1", "2"]));
    for known in ["\"pipy\"", "PyPI", "Debian", "Maven", "npm", "semver"] {
        assert!(error.contains(known), "{known} missing from {error}");
    }
}
