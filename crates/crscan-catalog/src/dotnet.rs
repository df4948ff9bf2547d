//! .NET packages from NuGet: a built application's `*.deps.json` (its `libraries` of
//! type `package`) and a project's `packages.lock.json` (every dependency of every
//! target framework except project references). Formats:
//! <https://github.com/dotnet/sdk/blob/main/documentation/specs/runtime-configuration-file.md>
//! and <https://learn.microsoft.com/en-us/nuget/consume-packages/package-references-in-project-files#locking-dependencies>.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::npm::lenient::{Maybe, Text, parse_json};
use crate::{Detected, Detector, keep_if, language_package};

/// Finds NuGet packages.
pub struct DotnetDetector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deps,
    Lock,
}

fn kind(path: &str) -> Option<Kind> {
    let name = path.rsplit('/').next()?;
    if name.ends_with(".deps.json") {
        Some(Kind::Deps)
    } else if name == "packages.lock.json" {
        Some(Kind::Lock)
    } else {
        None
    }
}

impl Detector for DotnetDetector {
    fn name(&self) -> &'static str {
        "dotnet"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(kind(path).is_some())
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            match kind(&file.path) {
                Some(Kind::Deps) => deps(file, out),
                Some(Kind::Lock) => lock(file, out),
                None => {}
            }
        }
    }
}

fn nuget_package(file: &ImageFile, name: &str, version: &str) -> Package {
    let purl = Purl::new(PackageType::Nuget, name).version(version);
    language_package(PackageType::Nuget, name, version, purl.to_string(), file)
}

#[derive(Deserialize)]
struct DepsFile<'a> {
    #[serde(default, borrow)]
    libraries: Maybe<HashMap<Text<'a>, Maybe<Library<'a>>>>,
}

#[derive(Deserialize)]
struct Library<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Text<'a>,
}

/// Reads a `*.deps.json`.
fn deps(file: &ImageFile, out: &mut Detected) {
    let Some(deps) = parse_json::<DepsFile<'_>>(file, "dotnet", "a deps.json file", out) else {
        return;
    };
    let mut libraries: Vec<(&str, &Library<'_>)> = deps
        .libraries
        .0
        .iter()
        .flatten()
        .filter_map(|(key, library)| Some((key.as_str(), library.0.as_ref()?)))
        .collect();
    libraries.sort_unstable_by_key(|(key, _)| *key);
    for (key, library) in libraries {
        if library.kind.as_str() != "package" {
            continue;
        }
        match key.split_once('/') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                out.packages.push(nuget_package(file, name, version));
            }
            _ => out.diagnostic(
                "dotnet",
                &file.path,
                format!("library key {key:?} is not NAME/VERSION"),
            ),
        }
    }
}

/// The locked dependencies of one target framework, by package name.
type Framework<'a> = HashMap<Text<'a>, Maybe<Locked<'a>>>;

#[derive(Deserialize)]
struct LockFile<'a> {
    #[serde(default, borrow)]
    dependencies: Maybe<HashMap<Text<'a>, Maybe<Framework<'a>>>>,
}

#[derive(Deserialize)]
struct Locked<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(default, borrow)]
    resolved: Text<'a>,
}

/// Reads a `packages.lock.json`.
fn lock(file: &ImageFile, out: &mut Detected) {
    let Some(lock) = parse_json::<LockFile<'_>>(file, "dotnet", "a packages.lock.json file", out)
    else {
        return;
    };
    let mut found: Vec<(&str, &str)> = Vec::new();
    for framework in lock
        .dependencies
        .0
        .iter()
        .flatten()
        .filter_map(|(_, f)| f.0.as_ref())
    {
        for (name, locked) in framework {
            let Some(locked) = &locked.0 else {
                continue;
            };
            if locked.kind.as_str().eq_ignore_ascii_case("project") {
                continue;
            }
            let version = locked.resolved.as_str();
            if name.as_str().is_empty() || version.is_empty() {
                out.diagnostic(
                    "dotnet",
                    &file.path,
                    format!("dependency {:?} has no resolved version", name.as_str()),
                );
                continue;
            }
            found.push((name.as_str(), version));
        }
    }
    found.sort_unstable();
    let mut seen = HashSet::new();
    for (name, version) in found {
        if seen.insert((name, version)) {
            out.packages.push(nuget_package(file, name, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{detect, image_file};

    fn run(path: &str, text: &str) -> Detected {
        detect(&DotnetDetector, [image_file(path, text)], None)
    }

    #[test]
    fn reads_deps_json_packages_only() {
        let out = run(
            "/app/MyApp.deps.json",
            r#"{"runtimeTarget":{"name":".NETCoreApp,Version=v8.0"},
                "libraries":{
                  "MyApp/1.0.0":{"type":"project","serviceable":false},
                  "Newtonsoft.Json/13.0.3":{"type":"package","serviceable":true,"sha512":"sha512-x"},
                  "Serilog/3.1.1":{"type":"package"},
                  "bad":{"type":"package"}}}"#,
        );
        let got: Vec<_> = out.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            got,
            [
                "pkg:nuget/Newtonsoft.Json@13.0.3",
                "pkg:nuget/Serilog@3.1.1"
            ]
        );
        assert_eq!(out.diagnostics.len(), 1);
    }

    #[test]
    fn reads_packages_lock_json() {
        let out = run(
            "/src/app/packages.lock.json",
            r#"{"version":1,"dependencies":{
                "net6.0":{"Newtonsoft.Json":{"type":"Direct","requested":"[13.0.1, )","resolved":"13.0.1"},
                          "Lib":{"type":"Project"}},
                "net8.0":{"Newtonsoft.Json":{"type":"Direct","resolved":"13.0.1"},
                          "System.Memory":{"type":"Transitive","resolved":"4.5.5"}}}}"#,
        );
        let got: Vec<_> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [("Newtonsoft.Json", "13.0.1"), ("System.Memory", "4.5.5")]
        );
    }

    #[test]
    fn not_json_is_one_diagnostic() {
        let out = run(
            "/app/x.deps.json",
            "\u{feff}{\"libraries\":{\"A/1\":{\"type\":\"package\"}}}nope",
        );
        assert_eq!(out.diagnostics.len(), 1);
        assert!(out.packages.is_empty());
    }
}
