//! Rust crates: `Cargo.lock` files (every lockfile version, v1 to v4) and the
//! dependency list that `cargo auditable` embeds in executables.
//!
//! `Cargo.lock` is TOML with one `[[package]]` table per crate
//! (<https://doc.rust-lang.org/cargo/guide/cargo-toml-vs-cargo-lock.html>); all
//! versions share the `name` / `version` / `source` keys this detector reads.
//! cargo-auditable (<https://github.com/rust-secure-code/cargo-auditable>, format in
//! its `auditable-serde` crate) stores zlib-compressed JSON
//! `{"packages":[{"name","version","source","kind","dependencies","root"}]}` in the
//! ELF section `.dep-v0`; build-time-only packages (`kind: "build"`) are not part of
//! the executable and are left out, as trivy does.

use std::collections::HashSet;
use std::io::Read;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, PackageType, Purl};
use serde::Deserialize;

use crate::golang::elf::{ELF_MAGIC, Elf};
use crate::{Detected, Detector, keep_if, language_package};

/// Largest decompressed cargo-auditable document we accept.
const MAX_AUDIT_JSON: u64 = 8 << 20;

/// One crate found in a lockfile or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `registry+https://…`, `git+https://…#commit`, or `None` for a local crate.
    pub source: Option<String>,
}

/// Parses a `Cargo.lock`. Packages without a name or version are reported in the
/// returned problems and skipped; a file that is not TOML is an error.
pub fn parse_cargo_lock(text: &str) -> Result<(Vec<Crate>, Vec<String>), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|error: toml::de::Error| format!("not a TOML lockfile: {}", error.message()))?;
    let mut crates = Vec::new();
    let mut problems = Vec::new();
    let Some(packages) = table.get("package") else {
        return Ok((crates, problems));
    };
    let Some(packages) = packages.as_array() else {
        return Err("`package` is not an array of tables".to_owned());
    };
    let mut seen = HashSet::new();
    for (index, package) in packages.iter().enumerate() {
        let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            problems.push(format!("package #{} has no name or version", index + 1));
            continue;
        };
        if !seen.insert((name.to_owned(), version.to_owned())) {
            continue;
        }
        crates.push(Crate {
            name: name.to_owned(),
            version: version.to_owned(),
            source: field("source").map(str::to_owned),
        });
    }
    Ok((crates, problems))
}

/// The wire form of a cargo-auditable document.
#[derive(Deserialize)]
struct AuditDocument {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Decodes cargo-auditable data (the zlib-compressed bytes of `.dep-v0`) into the
/// crates linked into the binary.
pub fn parse_auditable(compressed: &[u8]) -> Result<Vec<Crate>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|error| format!("cargo-auditable data does not inflate: {error}"))?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(format!(
            "cargo-auditable data inflates past {MAX_AUDIT_JSON} bytes"
        ));
    }
    let document: AuditDocument = serde_json::from_slice(&json)
        .map_err(|error| format!("cargo-auditable data is not valid JSON: {error}"))?;
    let mut seen = HashSet::new();
    Ok(document
        .packages
        .into_iter()
        .filter(|package| package.kind.as_deref() != Some("build"))
        .filter(|package| seen.insert((package.name.clone(), package.version.clone())))
        .map(|package| Crate {
            name: package.name,
            version: package.version,
            source: package.source,
        })
        .collect())
}

/// Finds Rust crates in `Cargo.lock` files and cargo-auditable executables.
pub struct RustDetector;

impl RustDetector {
    fn push(&self, file: &ImageFile, crates: Vec<Crate>, out: &mut Detected) {
        for krate in crates {
            let purl = Purl::new(PackageType::Cargo, &krate.name)
                .version(&krate.version)
                .to_string();
            out.packages.push(language_package(
                PackageType::Cargo,
                krate.name,
                krate.version,
                purl,
                file,
            ));
        }
    }

    fn scan_lockfile(&self, file: &ImageFile, out: &mut Detected) {
        if file.truncated {
            out.diagnostic(
                self.name(),
                &file.path,
                format!(
                    "lockfile is cut to {} bytes by the size cap",
                    file.contents.len()
                ),
            );
            return;
        }
        let Ok(text) = std::str::from_utf8(&file.contents) else {
            out.diagnostic(self.name(), &file.path, "lockfile is not UTF-8");
            return;
        };
        match parse_cargo_lock(text) {
            Ok((crates, problems)) => {
                for problem in problems {
                    out.diagnostic(self.name(), &file.path, problem);
                }
                self.push(file, crates, out);
            }
            Err(error) => out.diagnostic(self.name(), &file.path, error),
        }
    }

    fn scan_binary(&self, file: &ImageFile, out: &mut Detected) {
        // Files that are not readable ELF are the Go detector's to report.
        let Ok(elf) = Elf::parse(&file.contents) else {
            return;
        };
        let Some(section) = elf.section_data(".dep-v0") else {
            return;
        };
        match parse_auditable(section) {
            Ok(crates) => self.push(file, crates, out),
            Err(error) => out.diagnostic(self.name(), &file.path, error),
        }
    }
}

fn is_cargo_lock(path: &str) -> bool {
    path.rsplit('/').next() == Some("Cargo.lock")
}

impl Detector for RustDetector {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(is_cargo_lock(path))
    }

    fn wants_magic(&self, path: &str, head: &[u8]) -> bool {
        head.starts_with(ELF_MAGIC) && !crate::golang::is_not_an_executable(path)
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            if is_cargo_lock(&file.path) {
                self.scan_lockfile(file, out);
            } else if self.wants_magic(&file.path, &file.contents) {
                self.scan_binary(file, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::golang::elf::build::{TestSection, elf};
    use crate::test_support::{self, image_file, pairs};

    fn detect(file: ImageFile) -> Detected {
        test_support::detect(&RustDetector, [file], None)
    }

    /// Reads a fixture's expected list (sorted, duplicates kept once) and whether
    /// the upstream case expects an error or nothing.
    fn expected(relative: &str) -> (Vec<(String, String)>, bool) {
        let path = format!(
            "{}/../../../shared/data/catalog/cargo/{relative}.expected.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = &value["cases"][0];
        let mut list: Vec<(String, String)> = case["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|package| {
                (
                    package["name"].as_str().unwrap().to_owned(),
                    package["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        list.sort();
        list.dedup();
        (
            list,
            case["expect_error_or_nothing"].as_bool().unwrap_or(false),
        )
    }

    #[test]
    fn every_cargo_lock_fixture_gives_its_expected_list() {
        let fixtures = [
            "osv-scalibr/duplicate.lock",
            "osv-scalibr/empty.lock",
            "osv-scalibr/many-packages.lock",
            "osv-scalibr/not-toml.txt",
            "osv-scalibr/one-package.lock",
            "osv-scalibr/package-with-build-string.lock",
            "osv-scalibr/package-with-comments.lock",
            "osv-scalibr/two-packages-with-local.lock",
            "osv-scalibr/two-packages.lock",
            "trivy/cargo_mixed.lock",
            "trivy/cargo_normal.lock",
            "trivy/cargo_v3.lock",
        ];
        for fixture in fixtures {
            let path = format!(
                "{}/../../../shared/data/catalog/cargo/{fixture}",
                env!("CARGO_MANIFEST_DIR")
            );
            let out = detect(image_file("/app/Cargo.lock", std::fs::read(path).unwrap()));
            let (wanted, error_or_nothing) = expected(fixture);
            assert_eq!(pairs(&out), wanted, "{fixture}");
            if error_or_nothing {
                assert_eq!(out.diagnostics.len(), 1, "{fixture}");
                assert!(out.diagnostics[0].message.contains("not a TOML lockfile"));
            } else {
                assert!(
                    out.diagnostics.is_empty(),
                    "{fixture}: {:?}",
                    out.diagnostics
                );
            }
        }
    }

    #[test]
    fn lockfile_packages_carry_purl_and_location() {
        let out = detect(image_file(
            "/src/app/Cargo.lock",
            b"version = 4\n[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\n",
        ));
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].purl, "pkg:cargo/serde@1.0.200");
        assert_eq!(
            out.packages[0].locations,
            vec!["/src/app/Cargo.lock".to_owned()]
        );
        assert_eq!(RustDetector.interest("/src/app/Cargo.lock"), Keep::Yes);
        assert_eq!(RustDetector.interest("/src/app/Cargo.toml"), Keep::No);
    }

    #[test]
    fn a_package_without_version_is_skipped_with_a_diagnostic() {
        let text = "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"b\"\n\n[[package]]\nname = \"c\"\nversion = \"2.0.0\"\n";
        let out = detect(image_file("/app/Cargo.lock", text.as_bytes()));
        assert_eq!(
            pairs(&out),
            vec![("a".into(), "1.0.0".into()), ("c".into(), "2.0.0".into())]
        );
        assert_eq!(out.diagnostics.len(), 1);
        assert!(out.diagnostics[0].message.contains("#2"));
    }

    #[test]
    fn truncated_lockfile_is_a_diagnostic() {
        let mut file = image_file("/app/Cargo.lock", b"[[package]]\nname = \"a\"\n");
        file.truncated = true;
        let out = detect(file);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    const AUDIT_JSON: &str = r#"{"packages":[
        {"name":"hello","version":"0.1.0","source":"local","kind":"runtime","dependencies":[1,2],"root":true},
        {"name":"serde","version":"1.0.200","source":"crates.io","dependencies":[]},
        {"name":"cc","version":"1.0.90","source":"crates.io","kind":"build"},
        {"name":"libc","version":"0.2.150","source":"crates.io","kind":"runtime"}
    ]}"#;

    #[test]
    fn reads_cargo_auditable_section_of_an_elf_binary() {
        let section = zlib(AUDIT_JSON.as_bytes());
        let binary = elf(
            true,
            false,
            &[
                TestSection {
                    name: ".text",
                    address: 0x40_0000,
                    contents: b"\x90\x90\x90\xc3",
                },
                TestSection {
                    name: ".dep-v0",
                    address: 0,
                    contents: &section,
                },
            ],
        );
        let out = detect(image_file("/usr/local/bin/hello", binary));
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(
            pairs(&out),
            vec![
                ("hello".into(), "0.1.0".into()),
                ("libc".into(), "0.2.150".into()),
                ("serde".into(), "1.0.200".into()),
            ]
        );
        assert!(
            out.packages
                .iter()
                .all(|p| p.locations == ["/usr/local/bin/hello"])
        );
    }

    #[test]
    fn corrupt_cargo_auditable_section_is_a_diagnostic() {
        let mut section = zlib(AUDIT_JSON.as_bytes());
        section.truncate(section.len() / 2);
        let binary = elf(
            false,
            true,
            &[TestSection {
                name: ".dep-v0",
                address: 0,
                contents: &section,
            }],
        );
        let out = detect(image_file("/usr/local/bin/hello", binary));
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        let not_json = zlib(b"{\"packages\": 5}");
        assert!(
            parse_auditable(&not_json)
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn auditable_bombs_are_refused() {
        let bomb = zlib(&vec![b' '; (MAX_AUDIT_JSON + 10) as usize]);
        assert!(
            parse_auditable(&bomb)
                .unwrap_err()
                .contains("inflates past")
        );
    }

    proptest::proptest! {
        #[test]
        fn lockfile_parser_never_panics(text in "\\PC{0,400}") {
            let _ = parse_cargo_lock(&text);
        }

        #[test]
        fn mutated_lockfiles_never_panic(
            cut in 0usize..200,
            insert in "[\\[\\]\"=\n a-z0-9.#]{0,20}",
        ) {
            let base = "version = 3\n[[package]]\nname = \"syn\"\nversion = \"1.0.73\"\nsource = \"registry+x\"\n";
            let cut = cut.min(base.len());
            let text = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
            let _ = parse_cargo_lock(&text);
        }

        #[test]
        fn auditable_decoder_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_auditable(&bytes);
            let _ = parse_auditable(&zlib(&bytes));
        }
    }
}
