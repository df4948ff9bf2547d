//! PHP packages from Composer: `composer.lock` (`packages` and `packages-dev`) and
//! the installed list `vendor/composer/installed.json`, in both its Composer 1 form
//! (a JSON array) and its Composer 2 form (`{"packages": [...], "dev-package-names":
//! [...]}`). See <https://getcomposer.org/doc/01-basic-usage.md#commit-your-composer-lock-file-to-version-control>.
//! Names are `vendor/package`, which the purl spec splits into namespace and name
//! (<https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst#composer>).

use std::collections::HashSet;

use serde::Deserialize;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::npm::lenient::{List, Maybe, Text, parse_json};
use crate::{Detected, Detector, keep_if, language_package};

/// Finds Composer packages.
pub struct PhpDetector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lock,
    Installed,
}

fn kind(path: &str) -> Option<Kind> {
    let (dir, name) = path.rsplit_once('/')?;
    match name {
        "composer.lock" => Some(Kind::Lock),
        "installed.json" if dir.ends_with("/vendor/composer") => Some(Kind::Installed),
        _ => None,
    }
}

impl Detector for PhpDetector {
    fn name(&self) -> &'static str {
        "php"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(kind(path).is_some())
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            match kind(&file.path) {
                Some(Kind::Lock) => lock(file, out),
                Some(Kind::Installed) => installed(file, out),
                None => {}
            }
        }
    }
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(default, borrow)]
    version: Text<'a>,
}

#[derive(Deserialize)]
struct Lock<'a> {
    #[serde(default, borrow)]
    packages: List<Maybe<Entry<'a>>>,
    #[serde(default, borrow, rename = "packages-dev")]
    packages_dev: List<Maybe<Entry<'a>>>,
}

/// Composer 2's `installed.json`.
#[derive(Deserialize)]
struct Installed<'a> {
    #[serde(default, borrow)]
    packages: List<Maybe<Entry<'a>>>,
    #[serde(default, borrow, rename = "dev-package-names")]
    dev_package_names: List<Text<'a>>,
}

/// Either shape of `installed.json`.
#[derive(Deserialize)]
#[serde(untagged)]
enum InstalledFile<'a> {
    #[serde(borrow)]
    List(Vec<Maybe<Entry<'a>>>),
    #[serde(borrow)]
    Object(Installed<'a>),
}

fn composer_package(file: &ImageFile, name: &str, version: &str, dev: bool) -> Package {
    let purl = match name.split_once('/') {
        Some((vendor, bare)) => Purl::new(PackageType::Composer, bare).namespace(vendor),
        None => Purl::new(PackageType::Composer, name),
    };
    let purl = purl.version(version).to_string();
    Package {
        dev,
        ..language_package(PackageType::Composer, name, version, purl, file)
    }
}

fn add(
    file: &ImageFile,
    entries: &[Maybe<Entry<'_>>],
    dev: &dyn Fn(&str) -> bool,
    out: &mut Detected,
) {
    for entry in entries {
        let Some(entry) = &entry.0 else {
            out.diagnostic("php", &file.path, "package entry is not an object");
            continue;
        };
        let (name, version) = (entry.name.as_str(), entry.version.as_str());
        if name.is_empty() || version.is_empty() {
            out.diagnostic(
                "php",
                &file.path,
                format!("package without a name or version (name {name:?}, version {version:?})"),
            );
            continue;
        }
        out.packages
            .push(composer_package(file, name, version, dev(name)));
    }
}

/// Reads a `composer.lock`.
fn lock(file: &ImageFile, out: &mut Detected) {
    let Some(lock) = parse_json::<Lock<'_>>(file, "php", "a composer.lock", out) else {
        return;
    };
    add(file, &lock.packages.0, &|_| false, out);
    add(file, &lock.packages_dev.0, &|_| true, out);
}

/// Reads a `vendor/composer/installed.json`.
fn installed(file: &ImageFile, out: &mut Detected) {
    let Some(installed) =
        parse_json::<InstalledFile<'_>>(file, "php", "a composer installed.json", out)
    else {
        return;
    };
    match installed {
        InstalledFile::List(entries) => add(file, &entries, &|_| false, out),
        InstalledFile::Object(installed) => {
            let dev_names: HashSet<&str> = installed
                .dev_package_names
                .0
                .iter()
                .map(Text::as_str)
                .collect();
            let entries = &installed.packages.0;
            add(file, entries, &|name| dev_names.contains(name), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{detect, image_file};

    fn run(path: &str, text: &str) -> Detected {
        detect(&PhpDetector, [image_file(path, text)], None)
    }

    #[test]
    fn reads_both_installed_json_shapes() {
        let path = "/var/www/vendor/composer/installed.json";
        let old = run(path, r#"[{"name":"psr/log","version":"1.1.4"}]"#);
        assert_eq!(old.packages.len(), 1);
        assert_eq!(old.packages[0].purl, "pkg:composer/psr/log@1.1.4");
        let new = run(
            path,
            r#"{"packages":[{"name":"psr/log","version":"3.0.0"},{"name":"phpunit/phpunit","version":"10.0.0"},7],"dev":true,"dev-package-names":["phpunit/phpunit"]}"#,
        );
        let got: Vec<_> = new
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.dev))
            .collect();
        assert_eq!(got, [("psr/log", false), ("phpunit/phpunit", true)]);
        assert_eq!(new.diagnostics.len(), 1);
    }

    #[test]
    fn not_json_is_one_diagnostic() {
        let out = run("/app/composer.lock", "null");
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
    }
}
