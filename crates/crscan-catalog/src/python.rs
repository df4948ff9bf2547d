//! Installed Python distributions: `*.dist-info/METADATA` (wheels, PEP 627),
//! `*.egg-info/PKG-INFO` or an `*.egg-info` file (setuptools), `EGG-INFO/PKG-INFO`
//! inside an unzipped egg, and `.whl` / `.egg` zip archives lying in the image.
//!
//! The metadata is an email-style header block
//! (<https://packaging.python.org/en/latest/specifications/core-metadata/>); only its
//! `Name`, `Version` and licence fields are read, and the first occurrence of a field
//! wins. Names are normalised as PEP 503 says (lower case, runs of `-_.` become `-`).

use std::io::{Cursor, Read};

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::{Detected, Detector, keep_if, language_package};

/// Finds Python distributions by their metadata files and archives.
pub struct PythonDetector;

/// The most a metadata file inside a wheel or egg may take once inflated.
const MAX_ARCHIVED_METADATA: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A metadata file on disk.
    Metadata,
    /// A `.whl` archive.
    Wheel,
    /// A zipped `.egg`.
    Egg,
}

fn kind(path: &str) -> Option<Kind> {
    let (dir, name) = path.rsplit_once('/')?;
    match name {
        "METADATA" if dir.ends_with(".dist-info") => Some(Kind::Metadata),
        "PKG-INFO" if dir.ends_with(".egg-info") || dir.ends_with("/EGG-INFO") => {
            Some(Kind::Metadata)
        }
        _ if name.ends_with(".egg-info") => Some(Kind::Metadata),
        _ if name.ends_with(".whl") => Some(Kind::Wheel),
        _ if name.ends_with(".egg") => Some(Kind::Egg),
        _ => None,
    }
}

impl Detector for PythonDetector {
    fn name(&self) -> &'static str {
        "python"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(kind(path).is_some())
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            match kind(&file.path) {
                Some(Kind::Metadata) => from_metadata(file, &file.contents, out),
                Some(Kind::Wheel) => from_archive(file, Kind::Wheel, out),
                Some(Kind::Egg) => from_archive(file, Kind::Egg, out),
                None => {}
            }
        }
    }
}

/// The fields of a metadata header that crscan uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Metadata<'a> {
    pub name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub license: Option<&'a str>,
}

/// Reads the header block of a METADATA / PKG-INFO text. Field names are matched
/// case-insensitively; continuation lines and lines without a colon are skipped.
pub fn parse_metadata(text: &str) -> Metadata<'_> {
    let mut metadata = Metadata::default();
    let mut license_expression = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let key = key.trim();
        let slot = if key.eq_ignore_ascii_case("name") {
            &mut metadata.name
        } else if key.eq_ignore_ascii_case("version") {
            &mut metadata.version
        } else if key.eq_ignore_ascii_case("license-expression") {
            &mut license_expression
        } else if key.eq_ignore_ascii_case("license") {
            &mut metadata.license
        } else {
            continue;
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }
    if license_expression.is_some() {
        metadata.license = license_expression;
    }
    if metadata
        .license
        .is_some_and(|license| license.eq_ignore_ascii_case("unknown"))
    {
        metadata.license = None;
    }
    metadata
}

/// PEP 503 normalisation, shared with the vulnerability database so that names found
/// here and names in advisories meet on the same key.
pub use crscan_model::pep503_normalize as normalize_name;

/// Reports the distribution described by `contents`, found in `file`.
fn from_metadata(file: &ImageFile, contents: &[u8], out: &mut Detected) {
    let text = String::from_utf8_lossy(contents);
    let metadata = parse_metadata(&text);
    let (Some(name), Some(version)) = (metadata.name, metadata.version) else {
        out.diagnostic(
            "python",
            &file.path,
            format!(
                "metadata without a Name and Version (Name {:?}, Version {:?})",
                metadata.name, metadata.version
            ),
        );
        return;
    };
    let name = normalize_name(name);
    let purl = Purl::new(PackageType::Pypi, name.as_str())
        .version(version)
        .to_string();
    out.packages.push(Package {
        license: metadata.license.map(str::to_owned),
        ..language_package(PackageType::Pypi, name, version, purl, file)
    });
}

/// Reads the metadata inside a wheel (`NAME.dist-info/METADATA`) or an egg
/// (`EGG-INFO/PKG-INFO`).
fn from_archive(file: &ImageFile, kind: Kind, out: &mut Detected) {
    if file.truncated {
        out.diagnostic(
            "python",
            &file.path,
            "archive is larger than the size cap; skipped",
        );
        return;
    }
    let mut archive = match zip::ZipArchive::new(Cursor::new(&file.contents[..])) {
        Ok(archive) => archive,
        Err(error) => {
            out.diagnostic("python", &file.path, format!("not a zip archive: {error}"));
            return;
        }
    };
    let wanted = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|entry| match kind {
            Kind::Wheel => entry
                .strip_suffix("/METADATA")
                .is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/')),
            _ => entry == "EGG-INFO/PKG-INFO",
        })
        .map(|entry| entry.into_owned());
    let Some(wanted) = wanted else {
        out.diagnostic("python", &file.path, "archive holds no package metadata");
        return;
    };
    let mut contents = Vec::new();
    let read = archive.by_name(&wanted).and_then(|entry| {
        entry
            .take(MAX_ARCHIVED_METADATA)
            .read_to_end(&mut contents)
            .map_err(zip::result::ZipError::from)
    });
    if let Err(error) = read {
        out.diagnostic(
            "python",
            &file.path,
            format!("unreadable {wanted}: {error}"),
        );
        return;
    }
    from_metadata(file, &contents, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_pep_503() {
        assert_eq!(normalize_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("FRIENDLY_._BARD"), "friendly-bard");
        assert_eq!(
            normalize_name("backports.ssl_match_hostname"),
            "backports-ssl-match-hostname"
        );
    }

    #[test]
    fn first_field_wins_and_body_is_ignored() {
        let text =
            "Metadata-Version: 2.1\nname: A\nVersion: 1\nVersion: 2\nLicense: MIT\n\nName: body\n";
        let metadata = parse_metadata(text);
        assert_eq!(metadata.name, Some("A"));
        assert_eq!(metadata.version, Some("1"));
        assert_eq!(metadata.license, Some("MIT"));
    }

    #[test]
    fn interest_by_path() {
        let detector = PythonDetector;
        for path in [
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            "/usr/lib/python3/site-packages/x-1.egg/EGG-INFO/PKG-INFO",
            "/root/.cache/x-1.0-py3-none-any.whl",
            "/opt/x-1.0-py3.10.egg",
        ] {
            assert_eq!(detector.interest(path), Keep::Yes, "{path}");
        }
        for path in [
            "/METADATA",
            "/src/x/PKG-INFO",
            "/usr/share/doc/METADATA",
            "/a/b.py",
        ] {
            assert_eq!(detector.interest(path), Keep::No, "{path}");
        }
    }
}
