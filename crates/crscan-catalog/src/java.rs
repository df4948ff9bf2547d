//! Java archives (`.jar`, `.war`, `.ear`, Jenkins `.jpi`/`.hpi`): the Maven
//! coordinates they carry, including those of archives nested inside them.
//!
//! An archive is a zip file (<https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>).
//! Every `pom.properties` in it (Maven writes them to
//! `META-INF/maven/<groupId>/<artifactId>/pom.properties`; shaded archives carry
//! one per bundled artifact) gives `groupId:artifactId` and `version`. An archive
//! without a usable one falls back to its `META-INF/MANIFEST.MF` main section
//! (<https://docs.oracle.com/en/java/javase/21/docs/specs/jar/jar.html#jar-manifest>,
//! OSGi `Bundle-*` headers), and, only when [`JavaOptions::identify_by_filename`]
//! says so, to a `name-version.jar` file name. Nested archives are opened from
//! memory, up to a depth and a total number of inflated bytes.

use std::collections::HashSet;
use std::io::{Cursor, Read};

use crscan_model::{FileView, ImageFile, Keep, OsRelease, PackageType, Purl};

use crate::{Detected, Detector, keep_if, language_package};

/// File name endings of Java archives.
const ARCHIVE_SUFFIXES: [&str; 5] = [".jar", ".war", ".ear", ".jpi", ".hpi"];
/// The zip local file header signature.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// Largest `pom.properties` or manifest read.
const MAX_METADATA_BYTES: u64 = 1 << 20;
/// Largest nested archive inflated into memory.
const MAX_NESTED_BYTES: u64 = 64 << 20;

/// How far the archive reader may go.
#[derive(Debug, Clone)]
pub struct JavaOptions {
    /// Guess coordinates from a `name-version.jar` file name when an archive has
    /// no usable metadata (off by default: a guess can name the wrong artifact).
    pub identify_by_filename: bool,
    /// Deepest nesting of archives opened (the outer archive is depth 0).
    pub max_depth: usize,
    /// Most bytes inflated from one outer archive (nested archives and metadata).
    pub max_inflated_bytes: u64,
}

impl Default for JavaOptions {
    fn default() -> JavaOptions {
        JavaOptions {
            identify_by_filename: false,
            max_depth: 16,
            max_inflated_bytes: 256 << 20,
        }
    }
}

/// Maven coordinates found in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coordinates {
    pub group_id: String,
    pub artifact_id: String,
    pub version: String,
}

/// What one archive (with its nested archives) gave.
#[derive(Debug, Default)]
pub struct ArchiveScan {
    /// Coordinates in the order found, without repeats.
    pub coordinates: Vec<Coordinates>,
    /// Archives or entries that could not be read, each naming the inner path.
    pub problems: Vec<String>,
}

/// Reads the Maven coordinates in the archive `contents` whose file name is
/// `file_name`.
pub fn scan_archive(file_name: &str, contents: &[u8], options: &JavaOptions) -> ArchiveScan {
    let mut walk = Walk {
        options,
        budget: options.max_inflated_bytes,
        seen: HashSet::new(),
        scan: ArchiveScan::default(),
    };
    walk.archive(file_name, contents, 0);
    walk.scan
}

struct Walk<'a> {
    options: &'a JavaOptions,
    budget: u64,
    seen: HashSet<Coordinates>,
    scan: ArchiveScan,
}

impl Walk<'_> {
    fn found(&mut self, coordinates: Coordinates) {
        if self.seen.insert(coordinates.clone()) {
            self.scan.coordinates.push(coordinates);
        }
    }

    /// Reads at most `cap` bytes of entry `index`, charging them to the budget.
    fn read_entry<R: Read + std::io::Seek>(
        &mut self,
        archive: &mut zip::ZipArchive<R>,
        index: usize,
        cap: u64,
    ) -> Result<Vec<u8>, String> {
        let entry = archive
            .by_index(index)
            .map_err(|error| format!("entry #{index} cannot be opened: {error}"))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let limit = cap.min(self.budget);
        let mut bytes = Vec::new();
        entry
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| format!("{name}: {error}"))?;
        if bytes.len() as u64 > limit {
            return Err(if limit == self.budget {
                format!(
                    "{name}: stopped after inflating {} bytes in total from this archive",
                    self.options.max_inflated_bytes
                )
            } else {
                format!("{name}: larger than {cap} bytes")
            });
        }
        self.budget -= bytes.len() as u64;
        Ok(bytes)
    }

    fn archive(&mut self, display_name: &str, contents: &[u8], depth: usize) {
        let mut archive = match zip::ZipArchive::new(Cursor::new(contents)) {
            Ok(archive) => archive,
            Err(error) => {
                self.scan.problems.push(format!(
                    "{display_name}: not a readable zip archive: {error}"
                ));
                return;
            }
        };
        let mut own_pom_found = false;
        let mut manifest: Option<Vec<u8>> = None;
        let mut nested: Vec<(usize, String)> = Vec::new();
        // Raw names in entry order, decoded leniently: a name that is not valid in
        // its declared encoding still shows whether it is metadata or an archive.
        let names: Vec<String> = archive
            .file_names_raw()
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
            .collect();
        for (index, name) in names.into_iter().enumerate() {
            let base = name.rsplit('/').next().unwrap_or(&name);
            if base == "pom.properties" {
                match self.read_entry(&mut archive, index, MAX_METADATA_BYTES) {
                    Ok(bytes) => {
                        if let Some(found) = parse_pom_properties(&bytes) {
                            own_pom_found = true;
                            self.found(found);
                        }
                    }
                    Err(problem) => self
                        .scan
                        .problems
                        .push(format!("{display_name}: {problem}")),
                }
            } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
                match self.read_entry(&mut archive, index, MAX_METADATA_BYTES) {
                    Ok(bytes) => manifest = Some(bytes),
                    Err(problem) => self
                        .scan
                        .problems
                        .push(format!("{display_name}: {problem}")),
                }
            } else if is_archive_name(&name) {
                nested.push((index, name));
            }
        }
        if !own_pom_found {
            let from_manifest = manifest.as_deref().and_then(parse_manifest);
            if let Some(found) = from_manifest {
                self.found(found);
            } else if self.options.identify_by_filename
                && let Some(found) = parse_file_name(display_name)
            {
                self.found(found);
            }
        }
        for (index, name) in nested {
            let inner_name = format!("{display_name}!/{name}");
            if depth + 1 > self.options.max_depth {
                self.scan.problems.push(format!(
                    "{inner_name}: nested deeper than {} archives; not opened",
                    self.options.max_depth
                ));
                continue;
            }
            match self.read_entry(&mut archive, index, MAX_NESTED_BYTES) {
                Ok(bytes) => self.archive(&inner_name, &bytes, depth + 1),
                Err(problem) => self
                    .scan
                    .problems
                    .push(format!("{display_name}: {problem}")),
            }
        }
    }
}

fn is_archive_name(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ARCHIVE_SUFFIXES
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

/// Parses a Java properties file for `groupId`, `artifactId` and `version`; all
/// three must be present and non-empty.
pub fn parse_pom_properties(bytes: &[u8]) -> Option<Coordinates> {
    let text = String::from_utf8_lossy(bytes);
    let (mut group_id, mut artifact_id, mut version) = (None, None, None);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split_at = line.find(['=', ':']).unwrap_or(line.len());
        let key = line[..split_at].trim();
        let value = line.get(split_at + 1..).unwrap_or("").trim();
        match key {
            "groupId" => group_id = Some(value.to_owned()),
            "artifactId" => artifact_id = Some(value.to_owned()),
            "version" => version = Some(value.to_owned()),
            _ => {}
        }
    }
    let coordinates = Coordinates {
        group_id: group_id?,
        artifact_id: artifact_id?,
        version: version?,
    };
    let complete = !coordinates.group_id.is_empty()
        && !coordinates.artifact_id.is_empty()
        && !coordinates.version.is_empty();
    complete.then_some(coordinates)
}

/// The headers of a manifest's main section (up to the first blank line), with
/// continuation lines (starting with one space) joined.
fn manifest_headers(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(continued) = line.strip_prefix(' ') {
            if let Some(last) = headers.last_mut() {
                last.1.push_str(continued);
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// Derives coordinates from a manifest's main section. The group comes from the
/// first usable of `Bundle-SymbolicName`, `Extension-Name`, `Specification-Vendor`,
/// `Implementation-Vendor`, `Implementation-Vendor-Id`, `Implementation-Title`
/// (its first dotted word), `Bundle-Activator`, `Automatic-Module-Name`,
/// `Main-Class`, `Package`; the artifact from the last part of
/// `Bundle-SymbolicName` for Maven Bundle Plugin archives, else the first usable
/// of `Name`, `Implementation-Title`, `Specification-Title`, `Bundle-Name`,
/// `Short-Name`, `Extension-Name`; the version from `Implementation-Version`,
/// `Specification-Version`, `Plugin-Version`, `Bundle-Version`. All three must be
/// found.
pub fn parse_manifest(bytes: &[u8]) -> Option<Coordinates> {
    let text = String::from_utf8_lossy(bytes);
    let headers = manifest_headers(&text);
    let get = |key: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let usable_artifact = |value: &str| {
        !value.is_empty()
            && !value.contains(' ')
            && !value.starts_with('$')
            && !value.starts_with('%')
    };

    let group_keys = [
        "Bundle-SymbolicName",
        "Extension-Name",
        "Specification-Vendor",
        "Implementation-Vendor",
        "Implementation-Vendor-Id",
        "Implementation-Title",
        "Bundle-Activator",
        "Automatic-Module-Name",
        "Main-Class",
        "Package",
    ];
    let group_id = group_keys.iter().find_map(|key| {
        let mut value = get(key)?;
        if *key == "Implementation-Title" {
            // `org.elasticsearch#server;8.14.3`: keep the first dotted word.
            let start = value.find(is_group_char)?;
            let rest = &value[start..];
            let end = rest
                .find(|ch: char| !is_group_char(ch))
                .unwrap_or(rest.len());
            value = &rest[..end];
        }
        let value = value.split(';').next().unwrap_or(value).trim();
        (!value.is_empty() && !value.contains(' ')).then(|| value.to_ascii_lowercase())
    })?;

    let bundle_plugin_artifact = (get("Created-By") == Some("Apache Maven Bundle Plugin"))
        .then(|| get("Bundle-SymbolicName"))
        .flatten()
        .map(|name| name.rsplit('.').next().unwrap_or(name))
        .filter(|name| usable_artifact(name));
    let artifact_keys = [
        "Name",
        "Implementation-Title",
        "Specification-Title",
        "Bundle-Name",
        "Short-Name",
        "Extension-Name",
    ];
    let artifact_id = bundle_plugin_artifact.or_else(|| {
        artifact_keys
            .iter()
            .filter_map(|key| get(key))
            .find(|value| usable_artifact(value))
    })?;

    let version = [
        "Implementation-Version",
        "Specification-Version",
        "Plugin-Version",
        "Bundle-Version",
    ]
    .iter()
    .find_map(|key| get(key))?;
    Some(Coordinates {
        group_id,
        artifact_id: artifact_id.to_owned(),
        version: version.to_owned(),
    })
}

fn is_group_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.')
}

/// Guesses coordinates from `artifact-1.2.3.jar` (also `artifact_1.2.3` and
/// `artifact.1.2.3`): the version starts at the first separator followed by a
/// digit, `build<digit>` or `r<digit>`/`rc<digit>`. The group is the artifact
/// name up to its last dot, or the artifact name itself.
pub fn parse_file_name(path: &str) -> Option<Coordinates> {
    let base = path.rsplit(['/', '!']).next().unwrap_or(path);
    let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
    let (name, version) = split_name_version(stem)?;
    if name.is_empty() {
        return None;
    }
    let group_id = name.rsplit_once('.').map_or(name, |(group, _)| group);
    Some(Coordinates {
        group_id: group_id.to_owned(),
        artifact_id: name.to_owned(),
        version: version.to_owned(),
    })
}

fn split_name_version(stem: &str) -> Option<(&str, &str)> {
    for (at, ch) in stem.char_indices() {
        if ch == '-' && looks_like_version(&stem[at + 1..]) {
            return Some((&stem[..at], &stem[at + 1..]));
        }
    }
    for separator in ['_', '.'] {
        if let Some(at) = stem.find(separator)
            && looks_like_version(&stem[at + 1..])
        {
            return Some((&stem[..at], &stem[at + 1..]));
        }
    }
    None
}

fn looks_like_version(text: &str) -> bool {
    let digit_at = |index: usize| text.as_bytes().get(index).is_some_and(u8::is_ascii_digit);
    if digit_at(0) || (text.starts_with("build") && digit_at(5)) {
        return true;
    }
    // `r1`, `rc2`, but not `rc2b` or `release`.
    let after_r = if let Some(rest) = text.strip_prefix("rc") {
        rest
    } else if let Some(rest) = text.strip_prefix('r') {
        rest
    } else {
        return false;
    };
    let digits = after_r.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && !after_r
            .as_bytes()
            .get(digits)
            .is_some_and(u8::is_ascii_alphabetic)
}

/// Finds Maven artifacts in Java archives.
#[derive(Default)]
pub struct JavaDetector {
    pub options: JavaOptions,
}

impl JavaDetector {
    /// Scans one archive file with `options` and adds what it finds to `out`.
    pub fn scan_file(&self, file: &ImageFile, options: &JavaOptions, out: &mut Detected) {
        if file.truncated {
            out.diagnostic(
                self.name(),
                &file.path,
                format!(
                    "archive is cut to {} bytes by the size cap",
                    file.contents.len()
                ),
            );
            return;
        }
        let scan = scan_archive(&file.path, &file.contents, options);
        for problem in scan.problems {
            out.diagnostic(self.name(), &file.path, problem);
        }
        for found in scan.coordinates {
            let name = format!("{}:{}", found.group_id, found.artifact_id);
            let purl = Purl::new(PackageType::Maven, &found.artifact_id)
                .namespace(&found.group_id)
                .version(&found.version)
                .to_string();
            out.packages.push(language_package(
                PackageType::Maven,
                name,
                found.version,
                purl,
                file,
            ));
        }
    }
}

impl Detector for JavaDetector {
    fn name(&self) -> &'static str {
        "java"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(is_archive_name(path))
    }

    fn wants_magic(&self, path: &str, head: &[u8]) -> bool {
        head.starts_with(ZIP_MAGIC) && is_archive_name(path)
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            if is_archive_name(&file.path) {
                self.scan_file(file, &self.options, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::test_support::{image_file, pairs};

    fn fixture_bytes(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../../shared/data/catalog/maven/osv-scalibr/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn run(file: &ImageFile, options: &JavaOptions) -> Detected {
        let mut out = Detected::default();
        JavaDetector::default().scan_file(file, options, &mut out);
        out
    }

    /// Every case of every maven fixture, with `extractFilename` mapped to
    /// [`JavaOptions::identify_by_filename`].
    #[test]
    fn every_maven_fixture_case_gives_its_expected_list() {
        let dir = format!(
            "{}/../../../shared/data/catalog/maven/osv-scalibr",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let path_text = path.to_string_lossy().into_owned();
            let Some(fixture) = path_text.strip_suffix(".expected.json") else {
                continue;
            };
            let name = fixture.rsplit('/').next().unwrap();
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let file = image_file(&format!("/opt/app/lib/{name}"), fixture_bytes(name));
            for case in expected["cases"].as_array().unwrap() {
                let options = JavaOptions {
                    identify_by_filename: case["options"]["extractFilename"] == "true",
                    ..JavaOptions::default()
                };
                let out = run(&file, &options);
                let mut wanted: Vec<(String, String)> = case["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_owned(),
                            p["version"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                wanted.sort();
                assert_eq!(pairs(&out), wanted, "{name} / {}", case["test"]);
                assert!(out.diagnostics.is_empty(), "{name}: {:?}", out.diagnostics);
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
    }

    #[test]
    fn packages_carry_maven_purl_and_location() {
        let file = image_file(
            "/opt/app/lib/guava.jar",
            fixture_bytes("guava-31.1-jre.jar"),
        );
        let out = run(&file, &JavaOptions::default());
        assert_eq!(out.packages.len(), 1);
        let guava = &out.packages[0];
        assert_eq!(guava.name, "com.google.guava:guava");
        assert_eq!(guava.purl, "pkg:maven/com.google.guava/guava@31.1-jre");
        assert_eq!(guava.locations, vec!["/opt/app/lib/guava.jar".to_owned()]);
    }

    #[test]
    fn nesting_is_bounded_by_depth_and_reported() {
        let file = image_file("/opt/app/lib/nested.jar", fixture_bytes("nested_at_10.jar"));
        let shallow = JavaOptions {
            max_depth: 3,
            ..JavaOptions::default()
        };
        let out = run(&file, &shallow);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        assert!(out.diagnostics[0].message.contains("nested deeper than 3"));
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(contents).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn war_with_libraries_and_manifest_fallback() {
        let inner_pom = zip_of(&[(
            "META-INF/maven/org.slf4j/slf4j-api/pom.properties",
            b"#generated\nversion=2.0.9\ngroupId=org.slf4j\nartifactId=slf4j-api\n",
        )]);
        let inner_manifest = zip_of(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nImplementation-Title: commons-lang3\r\nImplementation-Vendor-Id: org.apache.commons\r\nImplementation-Version: 3.14.0\r\n\r\nName: other\r\nImplementation-Version: 9\r\n",
        )]);
        let war = zip_of(&[
            ("WEB-INF/lib/slf4j-api-2.0.9.jar", &inner_pom),
            ("WEB-INF/lib/commons-lang3-3.14.0.jar", &inner_manifest),
            ("WEB-INF/lib/broken.jar", b"PK\x03\x04 not really"),
            ("index.html", b"<html></html>"),
        ]);
        let out = run(&image_file("/srv/app.war", war), &JavaOptions::default());
        assert_eq!(
            pairs(&out),
            vec![
                ("org.apache.commons:commons-lang3".into(), "3.14.0".into()),
                ("org.slf4j:slf4j-api".into(), "2.0.9".into()),
            ]
        );
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        assert!(
            out.diagnostics[0]
                .message
                .contains("/srv/app.war!/WEB-INF/lib/broken.jar")
        );
    }

    #[test]
    fn inflation_budget_stops_bombs() {
        let big = vec![b'a'; 4 << 20];
        let inner = zip_of(&[("deep.jar", &big)]);
        let outer = zip_of(&[("lib/a.jar", &inner), ("lib/b.jar", &inner)]);
        let options = JavaOptions {
            max_inflated_bytes: 1 << 20,
            ..JavaOptions::default()
        };
        let scan = scan_archive("/app.jar", &outer, &options);
        assert!(scan.coordinates.is_empty());
        assert!(
            scan.problems
                .iter()
                .any(|p| p.contains("stopped after inflating")),
            "{:?}",
            scan.problems
        );
    }

    #[test]
    fn not_a_zip_and_truncated_files_are_diagnostics() {
        let out = run(
            &image_file("/opt/x.jar", b"definitely not a zip"),
            &JavaOptions::default(),
        );
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
        assert!(
            out.diagnostics[0]
                .message
                .contains("not a readable zip archive")
        );
        let mut truncated = image_file("/opt/y.jar", fixture_bytes("simple.jar"));
        truncated.truncated = true;
        let out = run(&truncated, &JavaOptions::default());
        assert!(out.packages.is_empty());
        assert!(out.diagnostics[0].message.contains("size cap"));
    }

    #[test]
    fn file_names_split_like_maven_artifacts() {
        let parse =
            |name: &str| parse_file_name(name).map(|c| (c.group_id, c.artifact_id, c.version));
        assert_eq!(
            parse("/a/guava-31.1-jre.jar"),
            Some(("guava".into(), "guava".into(), "31.1-jre".into()))
        );
        assert_eq!(
            parse("org.apache.felix.framework-1.2.3.jar"),
            Some((
                "org.apache.felix".into(),
                "org.apache.felix.framework".into(),
                "1.2.3".into()
            ))
        );
        assert_eq!(
            parse("spring-core-rc2.jar"),
            Some(("spring-core".into(), "spring-core".into(), "rc2".into()))
        );
        assert_eq!(parse("no-version-here.jar"), None);
        assert_eq!(parse("tool-release.jar"), None);
    }

    #[test]
    fn interest_is_by_archive_suffix() {
        assert_eq!(JavaDetector::default().interest("/opt/a/B.JAR"), Keep::Yes);
        assert_eq!(
            JavaDetector::default().interest("/opt/a/plugin.hpi"),
            Keep::Yes
        );
        assert_eq!(
            JavaDetector::default().interest("/opt/a/file.zip"),
            Keep::No
        );
        assert!(JavaDetector::default().wants_magic("/opt/a/b.war", b"PK\x03\x04\x14\x00"));
        assert!(!JavaDetector::default().wants_magic("/opt/a/b.zip", b"PK\x03\x04\x14\x00"));
    }

    proptest::proptest! {
        #[test]
        fn random_archives_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
            let _ = scan_archive("x.jar", &bytes, &JavaOptions::default());
            let _ = parse_manifest(&bytes);
            let _ = parse_pom_properties(&bytes);
        }

        #[test]
        fn mutated_jars_never_panic(flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..8)) {
            let mut jar = fixture_bytes("complex.jar");
            for (at, value) in flips {
                let len = jar.len();
                jar[at % len] = value;
            }
            let _ = scan_archive("complex.jar", &jar, &JavaOptions::default());
        }

        #[test]
        fn file_names_never_panic(name in "\\PC{0,40}") {
            let _ = parse_file_name(&name);
        }
    }
}
