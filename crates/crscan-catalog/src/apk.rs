//! Lists the Alpine packages installed in an image from apk's database, with each
//! package's origin (the aports source package that Alpine's advisories name).
//!
//! `/lib/apk/db/installed` holds one paragraph per package, one `X:value` line per field
//! (format: <https://wiki.alpinelinux.org/wiki/Apk_spec#Installed_Database_V2>): `P`
//! name, `V` version, `A` architecture, `o` origin, `L` licence, and the files the package
//! installed as `F` (a directory, relative to the root) followed by its `R` entries.
//! Those files become [`Detected::owned_files`].

use std::collections::HashSet;

use crscan_model::files::normalize_path;
use crscan_model::{Digest, FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::dpkg::{Keys, LayerHistory, Paragraph, Paragraphs, report_truncation};
use crate::{Detected, Detector, package, text};

const INSTALLED: &str = "/lib/apk/db/installed";
const NAME: &str = "apk";

/// The apk detector.
pub struct ApkDetector;

impl Detector for ApkDetector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, path: &str) -> Keep {
        if path == INSTALLED {
            Keep::WithHistory
        } else {
            Keep::No
        }
    }

    fn detect(&self, view: &FileView, os: Option<&OsRelease>, out: &mut Detected) {
        if let Some(file) = view.get(INSTALLED) {
            detect_file(file, os, out);
        }
    }
}

fn detect_file(file: &ImageFile, os: Option<&OsRelease>, out: &mut Detected) {
    report_truncation(NAME, file, out);
    let history = LayerHistory::new(file, installed_keys);
    for paragraph in Paragraphs::new(&file.contents) {
        match Record::parse(paragraph, Some(&mut out.owned_files)) {
            Ok(record) => {
                let layer_digest = history.layer_of(record.name, record.version);
                out.packages
                    .push(record.into_package(os, layer_digest, &file.path));
            }
            Err(message) => out.diagnostic(NAME, &file.path, message),
        }
    }
}

fn installed_keys(contents: &[u8]) -> Keys<'_> {
    Paragraphs::new(contents)
        .filter_map(|paragraph| Record::parse(paragraph, None).ok())
        .map(|record| (record.name, record.version))
        .collect()
}

/// The fields of one apk database paragraph that crscan uses.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub name: &'a [u8],
    pub version: &'a [u8],
    pub arch: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub license: Option<&'a [u8]>,
}

impl<'a> Record<'a> {
    /// Reads a paragraph; its files go into `owned` when given. A line without the
    /// `X:` shape, or a missing `P` or `V`, makes the paragraph unusable.
    pub fn parse(
        paragraph: Paragraph<'a>,
        owned: Option<&mut HashSet<String>>,
    ) -> Result<Record<'a>, String> {
        let mut name = None;
        let mut version = None;
        let mut arch = None;
        let mut origin = None;
        let mut license = None;
        let mut directory: &[u8] = b"";
        let mut files = Vec::new();
        for (offset, line) in paragraph.bytes.split(|byte| *byte == b'\n').enumerate() {
            let line = line.trim_ascii_end();
            if line.is_empty() {
                continue;
            }
            if line.len() < 2 || line[1] != b':' {
                return Err(paragraph.not_a_field(offset, line));
            }
            let value = &line[2..];
            match line[0] {
                b'P' => name = Some(value),
                b'V' => version = Some(value),
                b'A' => arch = Some(value),
                b'o' => origin = Some(value),
                b'L' => license = Some(value),
                b'F' => directory = value,
                b'R' if owned.is_some() => files.push((directory, value)),
                _ => {}
            }
        }
        let (name, version) =
            paragraph.name_and_version(name, version, "package name (P:)", "version (V:)")?;
        if let Some(owned) = owned {
            for (directory, file) in files {
                let path = format!(
                    "{}/{}",
                    String::from_utf8_lossy(directory),
                    String::from_utf8_lossy(file)
                );
                owned.insert(normalize_path(&path));
            }
        }
        Ok(Record {
            name,
            version,
            arch: arch.filter(|value| !value.is_empty()),
            origin: origin.filter(|value| !value.is_empty()),
            license: license.filter(|value| !value.is_empty()),
        })
    }

    fn into_package(
        self,
        os: Option<&OsRelease>,
        layer_digest: Option<Digest>,
        path: &str,
    ) -> Package {
        let name = text(self.name);
        let version = text(self.version);
        let arch = self.arch.map(text);
        let source_name = self.origin.map(text);
        let vendor = match os {
            Some(os) if os.id != "linux" => os.id.as_str(),
            _ => "alpine",
        };
        let mut purl = Purl::new(PackageType::Apk, name.as_str())
            .namespace(vendor)
            .version(version.as_str())
            .qualifier("arch", arch.clone().unwrap_or_default());
        if let Some(os) = os {
            purl = purl.qualifier("distro", os.version_id.as_str());
        }
        if let Some(origin) = source_name.as_deref().filter(|origin| *origin != name) {
            purl = purl.qualifier("upstream", origin);
        }
        let purl = purl.to_string();
        Package {
            source_name,
            arch,
            license: self.license.map(text),
            ..package(
                PackageType::Apk,
                name,
                version,
                purl,
                layer_digest,
                path.to_owned(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{detect, image_file};

    const DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/catalog/apk"
    );

    fn detect_in(contents: &[u8], os: Option<&OsRelease>) -> Detected {
        detect(&ApkDetector, [image_file(INSTALLED, contents)], os)
    }

    type Row = (String, String, Option<String>, Option<String>);

    fn expected(fixture: &str) -> Vec<Row> {
        let json = std::fs::read_to_string(format!("{DATA}/{fixture}.expected.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut list: Vec<Row> = json["cases"][0]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|package| {
                let field = |key: &str| package[key].as_str().map(str::to_owned);
                (
                    field("name").unwrap(),
                    field("version").unwrap(),
                    field("origin_name").or_else(|| field("source_name")),
                    field("architecture").or_else(|| field("arch")),
                )
            })
            .collect();
        list.sort();
        list
    }

    #[test]
    fn fixtures_give_the_expected_lists() {
        let alpine = crate::os_release::parse_os_release("ID=alpine\nVERSION_ID=3.18.4\n");
        for (fixture, diagnostics) in [
            ("osv-scalibr/installed", 0),
            ("osv-scalibr/no-origin", 0),
            ("osv-scalibr/empty", 0),
            ("osv-scalibr/invalid", 2),
            ("osv-scalibr/single", 0),
            ("osv-scalibr/different-arch", 0),
            ("trivy/installed", 1),
        ] {
            let contents = std::fs::read(format!("{DATA}/{fixture}")).unwrap();
            let out = detect_in(&contents, Some(&alpine));
            let mut found: Vec<Row> = out
                .packages
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.version.clone(),
                        p.source_name.clone(),
                        p.arch.clone(),
                    )
                })
                .collect();
            found.sort();
            assert_eq!(found, expected(fixture), "{fixture}");
            assert_eq!(
                out.diagnostics.len(),
                diagnostics,
                "{fixture}: {:?}",
                out.diagnostics
            );
        }
    }

    #[test]
    fn purls_licences_and_owned_files() {
        let db = b"P:libcrypto3\nV:3.1.4-r1\nA:x86_64\nL:Apache-2.0\no:openssl\n\
            F:lib\nR:libcrypto.so.3\n\
            F:usr/lib/python3.11/site-packages/six-1.16.0.dist-info\nR:METADATA\n\n\
            P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n";
        let alpine = crate::os_release::parse_os_release("ID=alpine\nVERSION_ID=3.18.4\n");
        let out = detect_in(db, Some(&alpine));
        assert_eq!(
            out.packages[0].purl,
            "pkg:apk/alpine/libcrypto3@3.1.4-r1?arch=x86_64&distro=3.18.4&upstream=openssl"
        );
        assert_eq!(out.packages[0].license.as_deref(), Some("Apache-2.0"));
        assert_eq!(
            out.packages[1].purl,
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4"
        );
        let no_os = detect_in(db, None);
        assert_eq!(
            no_os.packages[1].purl,
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"
        );
        assert!(out.owned_files.contains("/lib/libcrypto.so.3"));
        assert!(
            out.owned_files
                .contains("/usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA")
        );
        assert_eq!(out.owned_files.len(), 2);
    }

    #[test]
    fn a_bad_paragraph_among_good_ones_is_reported() {
        let db = b"P:a\nV:1\n\nP:b\nthis is not a field\nV:2\n\nV:3\n\nP:c\nV:4\n";
        let out = detect_in(db, None);
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(out.diagnostics.len(), 2);
        assert!(
            out.diagnostics[0].message.contains("line 5"),
            "{:?}",
            out.diagnostics
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
        ) {
            let _ = detect_in(&bytes, None);
        }

        #[test]
        fn random_records_never_panic(text in "([PVAoLFRx]:[a-z0-9./_-]{0,10}\n{1,2}){0,50}") {
            let out = detect_in(text.as_bytes(), None);
            for package in &out.packages {
                proptest::prop_assert!(!package.name.is_empty() && !package.version.is_empty());
            }
        }
    }
}
