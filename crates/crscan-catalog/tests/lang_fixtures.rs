//! The language detectors (Python, npm, Ruby, PHP) against every upstream fixture of
//! their ecosystems, checking what the catalogue-wide `fixtures.rs` test does not:
//! development-only flags, package URLs, locations, and the few places where the
//! upstream scanners disagree with each other (each listed in [`deviation`] with
//! the reason crscan follows one of them).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crscan_catalog::npm::NpmDetector;
use crscan_catalog::php::PhpDetector;
use crscan_catalog::python::{PythonDetector, normalize_name};
use crscan_catalog::ruby::RubyDetector;
use crscan_catalog::{Detected, Detector};
use crscan_model::{Digest, FileView, ImageFile};

mod support;
use support::{catalog_dir, expected_files};

/// How crscan's answer for a fixture is compared with the upstream list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deviation {
    None,
    /// trivy's pnpm v5/v6 parser drops `dev: true` packages; crscan reports them
    /// flagged (osv-scalibr's `tarball.yaml` expects a dev package reported), so
    /// only the non-dev packages are compared.
    DevPackagesDropped,
    /// osv-scalibr does not work out dev-only packages of pnpm v9 lockfiles; crscan
    /// does (as trivy does), so the dev flags are not compared.
    DevFlagsNotComputed,
    /// trivy's yarn parser drops `file:` tarball dependencies; crscan reports them
    /// (as osv-scalibr's `files.v1.lock` expects), so extra packages are allowed.
    LocalPackagesDropped,
    /// The fixture expects nothing because a sibling file takes precedence.
    SiblingWins,
}

fn deviation(relative: &str) -> Deviation {
    match relative {
        "npm/trivy/pnpm-lock/pnpm-lock_many.yaml"
        | "npm/trivy/pnpm-lock/pnpm-lock_with_dev.yaml"
        | "npm/trivy/pnpm-lock/pnpm-lock_v6_with_dev.yaml" => Deviation::DevPackagesDropped,
        "npm/osv-scalibr/pnpm-lock/one-package-dev.v9.yaml"
        | "npm/osv-scalibr/pnpm-lock/mixed-groups.v9.yaml" => Deviation::DevFlagsNotComputed,
        "npm/trivy/yarn-lock/yarn_with_local.lock" => Deviation::LocalPackagesDropped,
        "npm/osv-scalibr/package-lock/both/package-lock.json" => Deviation::SiblingWins,
        _ => Deviation::None,
    }
}

/// Where an image would hold the fixture, and the detector that reads it.
fn placement(relative: &str) -> (String, Box<dyn Detector>) {
    let file_name = relative.rsplit('/').next().unwrap();
    let site = "/usr/lib/python3/site-packages";
    if relative.starts_with("pypi/") {
        let archive_or_file = [".whl", ".egg", ".egg-info"]
            .iter()
            .any(|suffix| file_name.ends_with(suffix));
        let target = if archive_or_file {
            format!("{site}/{file_name}")
        } else if file_name.contains("PKG-INFO")
            || file_name.contains("egginfo")
            || file_name == "pkginfo"
        {
            let stem = file_name.trim_end_matches(".PKG-INFO");
            format!("{site}/{stem}.egg-info/PKG-INFO")
        } else {
            let stem = file_name
                .trim_end_matches(".METADATA")
                .trim_end_matches(".dist-info");
            format!("{site}/{stem}.dist-info/METADATA")
        };
        return (target, Box::new(PythonDetector));
    }
    if relative.starts_with("npm/") {
        let target = if relative.contains("/yarn-lock/") {
            "/app/yarn.lock".to_owned()
        } else if relative.contains("/pnpm-lock/") {
            "/app/pnpm-lock.yaml".to_owned()
        } else if file_name == "npm-shrinkwrap.json" {
            "/app/npm-shrinkwrap.json".to_owned()
        } else {
            "/app/package-lock.json".to_owned()
        };
        return (target, Box::new(NpmDetector));
    }
    if relative.starts_with("rubygems/") {
        return ("/app/Gemfile.lock".to_owned(), Box::new(RubyDetector));
    }
    ("/app/composer.lock".to_owned(), Box::new(PhpDetector))
}

fn layer() -> Digest {
    format!("sha256:{}", "ab".repeat(32)).parse().unwrap()
}

/// A file written by one fixed layer.
fn image_file(path: &str, contents: Vec<u8>) -> ImageFile {
    ImageFile {
        layer_digest: Some(layer()),
        ..support::image_file(path, contents)
    }
}

fn is_dev(package: &serde_json::Value) -> bool {
    package["dev"].as_bool().unwrap_or(false)
        || package["dep_group_vals"]
            .as_array()
            .is_some_and(|groups| groups.iter().any(|group| group == "dev"))
}

/// The dev flag the upstream list gives `name@version`, when all its entries agree.
type DevFlags = BTreeMap<(String, String), Option<bool>>;

#[test]
fn language_fixtures_give_their_expected_packages() {
    let root = catalog_dir();
    let mut files = Vec::new();
    for ecosystem in ["pypi", "npm", "rubygems", "composer"] {
        expected_files(&root.join(ecosystem), &mut files);
    }
    files.sort();
    assert!(files.len() > 150, "only {} fixtures found", files.len());
    let mut failures = Vec::new();
    let mut cases = 0;
    for expected_path in &files {
        let fixture = PathBuf::from(
            expected_path
                .to_string_lossy()
                .trim_end_matches(".expected.json"),
        );
        let relative = fixture
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(expected_path).unwrap()).unwrap();
        let (target, detector) = placement(&relative);
        let mut view = FileView::new();
        view.insert(image_file(&target, std::fs::read(&fixture).unwrap()));
        let deviation = deviation(&relative);
        if deviation == Deviation::SiblingWins {
            let sibling = fixture.with_file_name("npm-shrinkwrap.json");
            view.insert(image_file(
                "/app/npm-shrinkwrap.json",
                std::fs::read(sibling).unwrap(),
            ));
        }
        let mut out = Detected::default();
        detector.detect(&view, None, &mut out);
        let pypi = relative.starts_with("pypi/");
        for package in &out.packages {
            let expected_purl_type = match &relative[..relative.find('/').unwrap()] {
                "rubygems" => "gem",
                other => other,
            };
            assert!(
                package
                    .purl
                    .starts_with(&format!("pkg:{expected_purl_type}/")),
                "{relative}: {}",
                package.purl
            );
            assert_eq!(package.layer_digest, Some(layer()), "{relative}");
            assert_eq!(
                package.package_type.as_str(),
                expected_purl_type,
                "{relative}"
            );
            if deviation != Deviation::SiblingWins {
                assert_eq!(
                    package.locations,
                    std::slice::from_ref(&target),
                    "{relative}"
                );
            }
        }
        for case in expected["cases"].as_array().unwrap() {
            cases += 1;
            let mut wanted = BTreeSet::new();
            let mut wanted_dev = DevFlags::new();
            for package in case["packages"].as_array().unwrap() {
                let name = package["name"].as_str().unwrap();
                let name = if pypi {
                    normalize_name(name)
                } else {
                    name.to_owned()
                };
                let version = package["version"].as_str().unwrap_or("").to_owned();
                let dev = is_dev(package);
                wanted_dev
                    .entry((name.clone(), version.clone()))
                    .and_modify(|flag| {
                        if *flag != Some(dev) {
                            *flag = None;
                        }
                    })
                    .or_insert(Some(dev));
                wanted.insert((name, version));
            }
            let found: BTreeSet<(String, String)> = out
                .packages
                .iter()
                .filter(|package| !(deviation == Deviation::DevPackagesDropped && package.dev))
                .filter(|package| {
                    deviation != Deviation::SiblingWins
                        || package.locations[0].ends_with("package-lock.json")
                })
                .map(|package| (package.name.clone(), package.version.clone()))
                .collect();
            let missing: Vec<_> = wanted.difference(&found).collect();
            let extra: Vec<_> = found.difference(&wanted).collect();
            let extra_allowed = deviation == Deviation::LocalPackagesDropped && extra.len() == 1;
            if !missing.is_empty() || (!extra.is_empty() && !extra_allowed) {
                failures.push(format!(
                    "{relative}: missing {missing:?}, unexpected {extra:?}"
                ));
                continue;
            }
            if deviation == Deviation::DevFlagsNotComputed {
                continue;
            }
            for package in &out.packages {
                let key = (package.name.clone(), package.version.clone());
                if let Some(Some(dev)) = wanted_dev.get(&key)
                    && *dev != package.dev
                {
                    failures.push(format!(
                        "{relative}: {key:?} dev {} but expected {dev}",
                        package.dev
                    ));
                }
            }
            let error_or_nothing = case["expect_error_or_nothing"].as_bool().unwrap_or(false);
            if error_or_nothing && out.packages.is_empty() && deviation == Deviation::None {
                assert!(
                    !out.diagnostics.is_empty(),
                    "{relative}: expected a diagnostic"
                );
            }
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("{} cases, {} failures", cases, failures.len());
    assert!(
        failures.is_empty(),
        "{} language fixture cases differ",
        failures.len()
    );
}
