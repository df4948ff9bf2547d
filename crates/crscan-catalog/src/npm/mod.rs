//! npm packages: modules installed under `node_modules/`, and the lockfiles of npm
//! (`package-lock.json`, `npm-shrinkwrap.json`), Yarn (`yarn.lock`, classic and berry)
//! and pnpm (`pnpm-lock.yaml`).
//!
//! Every format reports each `name@version` once per file; a package is marked
//! development-only when every occurrence of it in that file is.
//! Package URLs follow the npm type of the purl spec: a scope becomes the namespace
//! (<https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst#npm>).

pub(crate) mod lenient;
pub mod package_lock;
pub mod pnpm;
pub mod yarn;

use std::collections::HashMap;

use serde::Deserialize;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::{Detected, Detector, keep_if, language_package};
use lenient::{Text, parse_json};

/// Finds npm packages in `node_modules` and in npm, Yarn and pnpm lockfiles.
pub struct NpmDetector;

/// The kinds of files this detector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Installed,
    PackageLock,
    Shrinkwrap,
    Yarn,
    Pnpm,
}

/// Sorts a path into one of the kinds this detector reads, by cheap tests on its tail.
fn kind(path: &str) -> Option<Kind> {
    let (dir, name) = path.rsplit_once('/')?;
    let kind = match name {
        "package.json" => {
            return installed_module_dir(dir).then_some(Kind::Installed);
        }
        "package-lock.json" => Kind::PackageLock,
        "npm-shrinkwrap.json" => Kind::Shrinkwrap,
        "yarn.lock" => Kind::Yarn,
        "pnpm-lock.yaml" => Kind::Pnpm,
        _ => return None,
    };
    // Lockfiles shipped inside installed packages describe how those packages were
    // developed, not what the image contains.
    if dir.contains("/node_modules/") || dir.ends_with("/node_modules") {
        return None;
    }
    Some(kind)
}

/// Whether `dir` is the folder of an installed module: `…/node_modules/NAME` or
/// `…/node_modules/@SCOPE/NAME`. Nested `package.json` files inside a module (its
/// `lib/package.json`, say) are not packages.
fn installed_module_dir(dir: &str) -> bool {
    let Some((parent, _module)) = dir.rsplit_once('/') else {
        return false;
    };
    if parent.ends_with("/node_modules") {
        return true;
    }
    match parent.rsplit_once('/') {
        Some((grandparent, scope)) => {
            scope.starts_with('@') && grandparent.ends_with("/node_modules")
        }
        None => false,
    }
}

impl Detector for NpmDetector {
    fn name(&self) -> &'static str {
        "npm"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(kind(path).is_some())
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            let Some(kind) = kind(&file.path) else {
                continue;
            };
            match kind {
                Kind::Installed => installed(file, out),
                Kind::PackageLock => {
                    // npm ignores package-lock.json when npm-shrinkwrap.json is present.
                    let dir = file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                    let shrinkwrap = format!("{dir}/npm-shrinkwrap.json");
                    if view.get(&shrinkwrap).is_none() {
                        package_lock::detect(file, out);
                    }
                }
                Kind::Shrinkwrap => package_lock::detect(file, out),
                Kind::Yarn => yarn::detect(file, out),
                Kind::Pnpm => pnpm::detect(file, out),
            }
        }
    }
}

/// Builds an npm package found in `file`.
pub(crate) fn npm_package(file: &ImageFile, name: &str, version: &str, dev: bool) -> Package {
    let purl = match name.strip_prefix('@').and_then(|rest| rest.split_once('/')) {
        Some((scope, bare)) => Purl::new(PackageType::Npm, bare)
            .namespace(format!("@{scope}"))
            .version(version),
        None => Purl::new(PackageType::Npm, name).version(version),
    };
    Package {
        dev,
        ..language_package(PackageType::Npm, name, version, purl.to_string(), file)
    }
}

/// Collects the packages of one lockfile, once per `name@version`; a package stays
/// development-only only if every occurrence is.
/// At most [`crate::MAX_PACKAGES_PER_FILE`] packages are kept; the rest are counted
/// and reported in one diagnostic.
pub(crate) struct Collector<'f> {
    file: &'f ImageFile,
    index: HashMap<(String, String), usize>,
    packages: Vec<Package>,
    dropped: usize,
}

impl<'f> Collector<'f> {
    pub(crate) fn new(file: &'f ImageFile) -> Collector<'f> {
        Collector {
            file,
            index: HashMap::new(),
            packages: Vec::new(),
            dropped: 0,
        }
    }

    pub(crate) fn add(&mut self, name: &str, version: &str, dev: bool) {
        if self.packages.len() >= crate::MAX_PACKAGES_PER_FILE
            && !self
                .index
                .contains_key(&(name.to_owned(), version.to_owned()))
        {
            self.dropped += 1;
            return;
        }
        let key = (name.to_owned(), version.to_owned());
        if let Some(&at) = self.index.get(&key) {
            if let Some(package) = self.packages.get_mut(at) {
                package.dev &= dev;
            }
            return;
        }
        self.index.insert(key, self.packages.len());
        self.packages
            .push(npm_package(self.file, name, version, dev));
    }

    pub(crate) fn finish(self, out: &mut Detected) {
        if self.dropped > 0 {
            out.diagnostic(
                "npm",
                &self.file.path,
                format!(
                    "more than {} packages in one lockfile (limit on lockfile entries); {} more were skipped",
                    crate::MAX_PACKAGES_PER_FILE,
                    self.dropped
                ),
            );
        }
        out.packages.extend(self.packages);
    }
}

/// The fields of an installed module's `package.json` that matter here.
#[derive(Deserialize)]
struct Manifest<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(default, borrow)]
    version: Text<'a>,
    #[serde(default, borrow)]
    license: Text<'a>,
}

/// Reads an installed module's `package.json`.
fn installed(file: &ImageFile, out: &mut Detected) {
    let Some(manifest) = parse_json::<Manifest<'_>>(file, "npm", "a package.json", out) else {
        return;
    };
    let name = manifest.name.as_str();
    let version = manifest.version.as_str();
    if name.is_empty() || version.is_empty() {
        out.diagnostic(
            "npm",
            &file.path,
            format!("package.json without a name or version (name {name:?}, version {version:?})"),
        );
        return;
    }
    let mut package = npm_package(file, name, version, false);
    if !manifest.license.as_str().is_empty() {
        package.license = Some(manifest.license.as_str().to_owned());
    }
    out.packages.push(package);
}

/// Splits `name@rest` where the name may be scoped (`@scope/name@rest`). Returns the
/// whole text as the name when there is no version part.
pub(crate) fn split_name(spec: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(spec.starts_with('@'));
    match spec.get(search_from..).and_then(|tail| tail.find('@')) {
        Some(at) => {
            let at = at + search_from;
            (&spec[..at], Some(&spec[at + 1..]))
        }
        None => (spec, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{detect, image_file};

    #[test]
    fn interest_is_by_path_tail() {
        let detector = NpmDetector;
        let yes = [
            "/app/package-lock.json",
            "/app/npm-shrinkwrap.json",
            "/srv/yarn.lock",
            "/srv/pnpm-lock.yaml",
            "/app/node_modules/lodash/package.json",
            "/app/node_modules/@babel/core/package.json",
            "/app/node_modules/a/node_modules/b/package.json",
            "/usr/lib/node_modules/npm/package.json",
        ];
        for path in yes {
            assert_eq!(detector.interest(path), Keep::Yes, "{path}");
        }
        let no = [
            "/app/package.json",
            "/app/node_modules/lodash/lib/package.json",
            "/app/node_modules/@babel/core/lib/package.json",
            "/app/node_modules/x/package-lock.json",
            "/app/node_modules/x/yarn.lock",
            "/package.json",
            "/etc/passwd",
        ];
        for path in no {
            assert_eq!(detector.interest(path), Keep::No, "{path}");
        }
    }

    #[test]
    fn scoped_names_become_purl_namespaces() {
        let file = image_file("/app/node_modules/@angular/core/package.json", b"");
        let package = npm_package(&file, "@angular/core", "16.0.0", false);
        assert_eq!(package.purl, "pkg:npm/%40angular/core@16.0.0");
        let package = npm_package(&file, "lodash", "4.17.21", false);
        assert_eq!(package.purl, "pkg:npm/lodash@4.17.21");
    }

    #[test]
    fn reads_installed_modules() {
        let files = [
            image_file(
                "/app/node_modules/@babel/core/package.json",
                br#"{"name":"@babel/core","version":"7.24.0","license":"MIT","dependencies":{"x":"1"}}"#,
            ),
            image_file(
                "/app/node_modules/broken/package.json",
                br#"{"name":"broken""#,
            ),
            image_file(
                "/app/node_modules/nover/package.json",
                br#"{"name":"nover"}"#,
            ),
        ];
        let out = detect(&NpmDetector, files, None);
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].name, "@babel/core");
        assert_eq!(out.packages[0].license.as_deref(), Some("MIT"));
        assert_eq!(out.diagnostics.len(), 2);
    }

    #[test]
    fn splits_scoped_names() {
        assert_eq!(split_name("@babel/core@^7"), ("@babel/core", Some("^7")));
        assert_eq!(split_name("lodash@npm:x@1"), ("lodash", Some("npm:x@1")));
        assert_eq!(split_name("lodash"), ("lodash", None));
        assert_eq!(split_name("@scope"), ("@scope", None));
        assert_eq!(split_name(""), ("", None));
    }
}
