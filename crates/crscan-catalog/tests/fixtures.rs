//! One data-driven test over every fixture in `shared/data/catalog/`: each package
//! database, lockfile or binary is placed where an image would have it, the whole
//! catalog runs over that file view, and the packages found must be exactly the
//! upstream test's expected list. New fixtures are picked up without touching this
//! file, as long as they sit in a known ecosystem folder.
//!
//! Upstream scanners spell a few things differently from each other (Go toolchain as
//! `go` or `stdlib`, Go versions with or without `v`, PyPI names as written or
//! PEP 503-normalised). [`canonical`] folds those spellings so that one crscan answer
//! can be checked against every upstream's list.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crscan_catalog::{Catalog, CatalogOptions};
use crscan_model::{FileView, ImageFile};

mod support;
use support::{catalog_dir, expected_files, image_file};

/// Upstream lists that disagree with another upstream's list for the same kind of
/// input, and the packages crscan reports beyond them because it follows the other.
const KNOWN_EXTRAS: &[(&str, &str, &str)] = &[
    // trivy drops `file:` dependencies; osv-scalibr's `files.v1.lock` lists them.
    (
        "npm/trivy/yarn-lock/yarn_with_local.lock",
        "local-package",
        "0.0.1",
    ),
];

/// Options of upstream cases that crscan has no equivalent for: such cases are
/// skipped (another case of the same fixture covers crscan's behaviour).
const UNSUPPORTED_OPTIONS: &[&str] = &["cfg", "extractFromPomXML"];

/// Where an image would hold `fixture` (a path under the catalog folder).
fn image_paths(relative: &Path) -> Vec<(PathBuf, String)> {
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let ecosystem = parts[0].as_str();
    let file_name = parts.last().unwrap().clone();
    let source = catalog_dir().join(relative);
    // Fixtures that live in a folder of their own come with their siblings
    // (npm's `both/` has a package-lock.json next to an npm-shrinkwrap.json).
    let parent_folder = &parts[parts.len() - 2];
    let in_own_folder = ecosystem == "npm"
        && !["package-lock", "yarn-lock", "pnpm-lock"].contains(&parent_folder.as_str());
    if in_own_folder {
        let folder = source.parent().unwrap();
        return std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| !path.to_string_lossy().ends_with(".expected.json"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (path, format!("/app/{name}"))
            })
            .collect();
    }
    let target = match ecosystem {
        "dpkg" if parent_folder == "status.d" => format!("/var/lib/dpkg/status.d/{file_name}"),
        "dpkg" => "/var/lib/dpkg/status".to_owned(),
        "apk" => "/lib/apk/db/installed".to_owned(),
        "rpm" if file_name.starts_with("Packages.db") => "/var/lib/rpm/Packages.db".to_owned(),
        "rpm" if file_name.starts_with("rpmdb.sqlite") => "/var/lib/rpm/rpmdb.sqlite".to_owned(),
        "rpm" => "/var/lib/rpm/Packages".to_owned(),
        "pypi" => python_path(&file_name),
        "npm" => match parent_folder.as_str() {
            "yarn-lock" => "/app/yarn.lock".to_owned(),
            "pnpm-lock" => "/app/pnpm-lock.yaml".to_owned(),
            _ => "/app/package-lock.json".to_owned(),
        },
        "cargo" => "/app/Cargo.lock".to_owned(),
        "composer" => "/app/composer.lock".to_owned(),
        "rubygems" => "/app/Gemfile.lock".to_owned(),
        "go" => format!("/usr/local/bin/{file_name}"),
        "maven" => format!("/opt/app/lib/{file_name}"),
        other => panic!("fixture folder {other} has no image path yet: add it here"),
    };
    vec![(source, target)]
}

/// Python metadata files go into a site-packages folder named after the fixture.
fn python_path(file_name: &str) -> String {
    let site = "/usr/local/lib/python3.11/site-packages";
    if file_name.ends_with(".whl") || file_name.ends_with(".egg") {
        return format!("{site}/{file_name}");
    }
    if file_name.ends_with(".egg-info") {
        return format!("{site}/{file_name}");
    }
    if file_name.ends_with(".dist-info") {
        return format!("{site}/{file_name}/METADATA");
    }
    let stem = file_name
        .trim_end_matches(".METADATA")
        .trim_end_matches(".PKG-INFO")
        .trim_end_matches(".egg-info");
    let is_pkg_info = file_name.contains("PKG-INFO")
        || file_name.contains("egginfo")
        || file_name.contains("pkginfo");
    if is_pkg_info {
        format!("{site}/{stem}.egg-info/PKG-INFO")
    } else {
        format!("{site}/{stem}.dist-info/METADATA")
    }
}

/// Folds the spellings upstream scanners disagree on.
fn canonical(ecosystem: &str, name: &str, version: &str) -> (String, String) {
    match ecosystem {
        "pypi" => {
            let mut normalized = String::new();
            let mut previous_separator = false;
            for ch in name.chars() {
                if matches!(ch, '-' | '_' | '.') {
                    if !previous_separator {
                        normalized.push('-');
                    }
                    previous_separator = true;
                } else {
                    normalized.push(ch.to_ascii_lowercase());
                    previous_separator = false;
                }
            }
            (normalized, version.to_owned())
        }
        "golang" => {
            let name = if name == "go" { "stdlib" } else { name };
            let version = version.trim_start_matches('v');
            let version = if version == "(devel)" { "" } else { version };
            (name.to_owned(), version.to_owned())
        }
        _ => (name.to_owned(), version.to_owned()),
    }
}

fn os_release_file(options: &serde_json::Value) -> Option<ImageFile> {
    let text = options.get("osrelease")?.as_str()?;
    if !text.contains("ID=") {
        return None;
    }
    let cleaned: String = text.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    Some(image_file("/etc/os-release", cleaned.into_bytes()))
}

type PackageCounts = BTreeMap<(String, String, String), usize>;

#[test]
fn every_catalog_fixture_gives_its_expected_packages() {
    let root = catalog_dir();
    if !root.exists() {
        println!("skipped: {} not found", root.display());
        return;
    }
    let mut expectations = Vec::new();
    expected_files(&root, &mut expectations);
    expectations.sort();
    let catalog = Catalog::default();
    let by_filename = Catalog::with_options(CatalogOptions {
        java_identify_by_filename: true,
    });
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for expected_path in &expectations {
        let text = std::fs::read_to_string(expected_path).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let fixture = PathBuf::from(
            expected_path
                .to_string_lossy()
                .trim_end_matches(".expected.json")
                .to_owned(),
        );
        let relative = fixture.strip_prefix(&root).unwrap().to_path_buf();
        let ecosystem_folder = relative
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for case in expected["cases"].as_array().unwrap() {
            let options = &case["options"];
            let unsupported = UNSUPPORTED_OPTIONS
                .iter()
                .any(|option| options.get(option).is_some());
            if unsupported {
                continue;
            }
            let mut view = FileView::new();
            for (source, target) in image_paths(&relative) {
                view.insert(image_file(&target, std::fs::read(&source).unwrap()));
            }
            if let Some(os_release) = os_release_file(options) {
                view.insert(os_release);
            }
            let wants_filename =
                options.get("extractFilename").and_then(|v| v.as_str()) == Some("true");
            let catalog = if wants_filename {
                &by_filename
            } else {
                &catalog
            };
            let inventory = catalog.inventory(&view);
            let mut found = PackageCounts::new();
            let mut found_without_dev = PackageCounts::new();
            let own_paths: Vec<String> = image_paths(&relative)
                .into_iter()
                .filter(|(source, _)| *source == fixture)
                .map(|(_, target)| target)
                .collect();
            for package in &inventory.packages {
                // A fixture that comes with siblings is judged on its own packages.
                let from_fixture = package.locations.is_empty()
                    || package
                        .locations
                        .iter()
                        .any(|path| own_paths.contains(path))
                    || !package
                        .locations
                        .iter()
                        .any(|path| path.starts_with("/app/"));
                if !from_fixture {
                    continue;
                }
                let relative_text = relative.to_string_lossy();
                let known_extra = KNOWN_EXTRAS.iter().any(|(path, name, version)| {
                    relative_text == *path && package.name == *name && package.version == *version
                });
                if known_extra {
                    continue;
                }
                let ecosystem = package.package_type.as_str();
                let (name, version) = canonical(ecosystem, &package.name, &package.version);
                if !package.dev {
                    *found_without_dev
                        .entry((ecosystem.to_owned(), name.clone(), version.clone()))
                        .or_default() += 1;
                }
                *found
                    .entry((ecosystem.to_owned(), name, version))
                    .or_default() += 1;
            }
            let mut wanted = PackageCounts::new();
            for package in case["packages"].as_array().unwrap() {
                // rpm's `gpg-pubkey` entries are keys, not packages; crscan skips
                // them as trivy and syft do.
                if package["pseudo_package"].as_bool() == Some(true) {
                    continue;
                }
                let ecosystem = package["ecosystem"].as_str().unwrap();
                let (name, version) = canonical(
                    ecosystem,
                    package["name"].as_str().unwrap(),
                    package["version"].as_str().unwrap_or(""),
                );
                *wanted
                    .entry((ecosystem.to_owned(), name, version))
                    .or_default() += 1;
            }
            // Duplicates in a lockfile are one package to crscan; compare as sets
            // unless the upstream list itself repeats an entry.
            let found_set: Vec<_> = found.keys().cloned().collect();
            let wanted_set: Vec<_> = wanted.keys().cloned().collect();
            // Some upstreams leave development dependencies out of their lists;
            // crscan reports them flagged `dev`, so such a list must equal crscan's
            // non-dev packages.
            let without_dev_set: Vec<_> = found_without_dev.keys().cloned().collect();
            checked += 1;
            if found_set != wanted_set && without_dev_set != wanted_set {
                let missing: Vec<_> = wanted_set
                    .iter()
                    .filter(|k| !found.contains_key(*k))
                    .collect();
                let extra: Vec<_> = found_set
                    .iter()
                    .filter(|k| !wanted.contains_key(*k))
                    .collect();
                failures.push(format!(
                    "{} [{} / {}]: missing {:?}; unexpected {:?}",
                    relative.display(),
                    ecosystem_folder,
                    case["test"].as_str().unwrap_or("?"),
                    missing,
                    extra
                ));
            }
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!(
        "{} passed, {} failed",
        checked - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} fixture cases differ",
        failures.len()
    );
}
