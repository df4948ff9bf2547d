//! Lists the Debian packages installed in an image from dpkg's database, so that
//! Debian and Ubuntu advisories (written against *source* packages) can be matched.
//!
//! dpkg keeps one control-file paragraph per package in `/var/lib/dpkg/status`
//! (format: <https://www.debian.org/doc/debian-policy/ch-controlfields.html> and
//! `man 5 dpkg-status`); distroless images have no such file and instead one file per
//! package under `/var/lib/dpkg/status.d/`, without a `Status` field. The files each
//! package installed are listed in `/var/lib/dpkg/info/<package>.list` (or, in
//! distroless images, `status.d/<package>.md5sums`); they become
//! [`Detected::owned_files`] so that language packages installed by a `.deb` are not
//! reported twice.
//!
//! The parser works on the file's bytes and borrows every field; only the values that
//! end up in a [`Package`] are copied.

use std::collections::HashSet;

use crscan_model::files::normalize_path;
use crscan_model::{Digest, FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::{Detected, Detector, package, text};

const STATUS: &str = "/var/lib/dpkg/status";
const STATUS_DIR: &str = "/var/lib/dpkg/status.d/";
const INFO_DIR: &str = "/var/lib/dpkg/info/";
const NAME: &str = "dpkg";

/// The dpkg detector.
pub struct DpkgDetector;

impl Detector for DpkgDetector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, path: &str) -> Keep {
        if path == STATUS {
            Keep::WithHistory
        } else if let Some(entry) = path.strip_prefix(STATUS_DIR) {
            if entry.ends_with(".md5sums") {
                Keep::Yes
            } else {
                Keep::WithHistory
            }
        } else if path.starts_with(INFO_DIR) && path.ends_with(".list") {
            Keep::Yes
        } else {
            Keep::No
        }
    }

    fn detect(&self, view: &FileView, os: Option<&OsRelease>, out: &mut Detected) {
        if let Some(file) = view.get(STATUS) {
            detect_file(file, false, os, out);
        }
        for file in view.files_under(STATUS_DIR) {
            if file.path.ends_with(".md5sums") {
                add_md5sums_paths(&file.contents, &mut out.owned_files);
            } else {
                detect_file(file, true, os, out);
            }
        }
        for file in view.files_under(INFO_DIR) {
            if file.path.ends_with(".list") {
                add_list_paths(&file.contents, &mut out.owned_files);
            }
        }
    }
}

/// Reads one status file (the main one, or a `status.d/` entry when `in_status_dir`).
fn detect_file(file: &ImageFile, in_status_dir: bool, os: Option<&OsRelease>, out: &mut Detected) {
    report_truncation(NAME, file, out);
    let history = LayerHistory::new(file, |contents| installed_keys(contents, in_status_dir));
    for paragraph in Paragraphs::new(&file.contents) {
        let stanza = match Stanza::parse(paragraph) {
            Ok(stanza) => stanza,
            Err(message) => {
                out.diagnostic(NAME, &file.path, message);
                continue;
            }
        };
        match stanza.is_installed(in_status_dir) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                out.diagnostic(
                    NAME,
                    &file.path,
                    format!("package {} has no Status field", text(stanza.name)),
                );
                continue;
            }
        }
        let layer_digest = history.layer_of(stanza.name, stanza.version);
        out.packages
            .push(stanza.into_package(os, layer_digest, &file.path));
    }
}

/// The (name, version) pairs of the installed packages in one version of a status file.
fn installed_keys(contents: &[u8], in_status_dir: bool) -> Keys<'_> {
    Paragraphs::new(contents)
        .filter_map(|paragraph| Stanza::parse(paragraph).ok())
        .filter(|stanza| stanza.is_installed(in_status_dir) == Some(true))
        .map(|stanza| (stanza.name, stanza.version))
        .collect()
}

/// Reports a package database that the size cap cut short: the packages after the
/// cut are missing, those before it are still read.
pub(crate) fn report_truncation(detector: &str, file: &ImageFile, out: &mut Detected) {
    if file.truncated {
        out.diagnostic(
            detector,
            &file.path,
            format!(
                "{} is larger than the size cap; packages after the cut are missing",
                file.path
            ),
        );
    }
}

/// The (name, version) pairs listed by one version of a database file.
pub(crate) type Keys<'a> = HashSet<(&'a [u8], &'a [u8])>;

/// Finds the layer that installed a package, from the earlier versions of its database
/// file: the oldest layer of the trailing run of versions that all list the same
/// (name, version). A package that is only in the final version belongs to the layer
/// that wrote the final version.
pub(crate) struct LayerHistory<'a> {
    final_layer: Option<&'a Digest>,
    /// Earlier versions, newest first, each with the keys it lists.
    earlier: Vec<(Option<&'a Digest>, Keys<'a>)>,
}

impl<'a> LayerHistory<'a> {
    pub(crate) fn new(
        file: &'a ImageFile,
        keys: impl Fn(&'a [u8]) -> Keys<'a>,
    ) -> LayerHistory<'a> {
        LayerHistory {
            final_layer: file.layer_digest.as_ref(),
            earlier: file
                .history
                .iter()
                .rev()
                .map(|version| (version.layer_digest.as_ref(), keys(&version.contents)))
                .collect(),
        }
    }

    pub(crate) fn layer_of(&self, name: &[u8], version: &[u8]) -> Option<Digest> {
        let mut layer = self.final_layer;
        for (digest, keys) in &self.earlier {
            if !keys.contains(&(name, version)) {
                break;
            }
            layer = *digest;
        }
        layer.cloned()
    }
}

/// Splits a control file into paragraphs separated by blank lines.
pub struct Paragraphs<'a> {
    contents: &'a [u8],
    position: usize,
    line: usize,
}

/// One paragraph of a control file, with the number of its first line (from 1).
#[derive(Debug, Clone, Copy)]
pub struct Paragraph<'a> {
    pub bytes: &'a [u8],
    pub line: usize,
}

impl Paragraph<'_> {
    /// The message for the line at `offset` (from 0) that is not a field.
    pub(crate) fn not_a_field(&self, offset: usize, line: &[u8]) -> String {
        format!(
            "line {} is not a field: {:?}",
            self.line + offset,
            String::from_utf8_lossy(&line[..line.len().min(80)])
        )
    }

    /// The package's name and version when both are given and not empty; else a
    /// message saying which is missing, named `name_field` or `version_field`.
    pub(crate) fn name_and_version<'v>(
        &self,
        name: Option<&'v [u8]>,
        version: Option<&'v [u8]>,
        name_field: &str,
        version_field: &str,
    ) -> Result<(&'v [u8], &'v [u8]), String> {
        let name = name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| format!("the paragraph at line {} has no {name_field}", self.line))?;
        let version = version
            .filter(|version| !version.is_empty())
            .ok_or_else(|| {
                format!(
                    "package {} (line {}) has no {version_field}",
                    text(name),
                    self.line
                )
            })?;
        Ok((name, version))
    }
}

impl<'a> Paragraphs<'a> {
    pub fn new(contents: &'a [u8]) -> Paragraphs<'a> {
        Paragraphs {
            contents,
            position: 0,
            line: 1,
        }
    }

    /// The end of the line starting at `self.position` (without its newline) and the
    /// start of the next line.
    fn line_bounds(&self) -> (usize, usize) {
        let rest = &self.contents[self.position..];
        match rest.iter().position(|byte| *byte == b'\n') {
            Some(length) => (self.position + length, self.position + length + 1),
            None => (self.contents.len(), self.contents.len()),
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Paragraph<'a>;

    fn next(&mut self) -> Option<Paragraph<'a>> {
        loop {
            if self.position >= self.contents.len() {
                return None;
            }
            let (line_end, next) = self.line_bounds();
            if !is_blank(&self.contents[self.position..line_end]) {
                break;
            }
            self.position = next;
            self.line += 1;
        }
        let start = self.position;
        let first_line = self.line;
        let mut end = start;
        while self.position < self.contents.len() {
            let (line_end, next) = self.line_bounds();
            if is_blank(&self.contents[self.position..line_end]) {
                break;
            }
            end = line_end;
            self.position = next;
            self.line += 1;
        }
        Some(Paragraph {
            bytes: &self.contents[start..end],
            line: first_line,
        })
    }
}

/// The fields of a dpkg status paragraph that crscan uses.
#[derive(Debug, Clone, Copy)]
pub struct Stanza<'a> {
    pub name: &'a [u8],
    pub version: &'a [u8],
    pub status: Option<&'a [u8]>,
    pub source: Option<&'a [u8]>,
    pub architecture: Option<&'a [u8]>,
}

impl<'a> Stanza<'a> {
    /// Reads the fields of a paragraph. A line that is neither `Field: value` nor a
    /// continuation, or a missing `Package` or `Version`, makes the paragraph unusable.
    pub fn parse(paragraph: Paragraph<'a>) -> Result<Stanza<'a>, String> {
        let mut name = None;
        let mut version = None;
        let mut status = None;
        let mut source = None;
        let mut architecture = None;
        for (offset, line) in paragraph.bytes.split(|byte| *byte == b'\n').enumerate() {
            if line
                .first()
                .is_some_and(|byte| *byte == b' ' || *byte == b'\t')
                || is_blank(line)
            {
                continue;
            }
            let Some(colon) = line.iter().position(|byte| *byte == b':') else {
                return Err(paragraph.not_a_field(offset, line));
            };
            let field = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            let slot = if field.eq_ignore_ascii_case(b"Package") {
                &mut name
            } else if field.eq_ignore_ascii_case(b"Version") {
                &mut version
            } else if field.eq_ignore_ascii_case(b"Status") {
                &mut status
            } else if field.eq_ignore_ascii_case(b"Source") {
                &mut source
            } else if field.eq_ignore_ascii_case(b"Architecture") {
                &mut architecture
            } else {
                continue;
            };
            *slot = Some(value);
        }
        let (name, version) =
            paragraph.name_and_version(name, version, "Package field", "Version field")?;
        Ok(Stanza {
            name,
            version,
            status: status.filter(|status| !status.is_empty()),
            source: source.filter(|source| !source.is_empty()),
            architecture: architecture.filter(|arch| !arch.is_empty()),
        })
    }

    /// Whether dpkg considers the package installed: the third word of `Status`
    /// (`want flag state`) is `installed`. `status.d/` entries have no `Status` and
    /// are installed; a main-file paragraph without one gives `None`.
    pub fn is_installed(&self, in_status_dir: bool) -> Option<bool> {
        match self.status {
            Some(status) => Some(
                status
                    .split(u8::is_ascii_whitespace)
                    .filter(|word| !word.is_empty())
                    .nth(2)
                    == Some(b"installed".as_slice()),
            ),
            None if in_status_dir => Some(true),
            None => None,
        }
    }

    /// The source package name and, when given, its version: `Source: name` or
    /// `Source: name (version)`.
    pub fn source(&self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let source = self.source?;
        match source.iter().position(|byte| *byte == b'(') {
            Some(open) => {
                let name = source[..open].trim_ascii();
                let rest = &source[open + 1..];
                let close = rest
                    .iter()
                    .position(|byte| *byte == b')')
                    .unwrap_or(rest.len());
                let version = rest[..close].trim_ascii();
                Some((name, (!version.is_empty()).then_some(version)))
            }
            None => Some((source, None)),
        }
    }

    fn into_package(
        self,
        os: Option<&OsRelease>,
        layer_digest: Option<Digest>,
        path: &str,
    ) -> Package {
        let name = text(self.name);
        let version = text(self.version);
        let arch = self.architecture.map(text);
        let (source_name, source_version) = match self.source() {
            Some((source, source_version)) => (
                Some(text(source)).filter(|source| !source.is_empty()),
                source_version
                    .map(text)
                    .filter(|source_version| *source_version != version),
            ),
            None => (None, None),
        };
        let purl = deb_purl(
            &name,
            &version,
            arch.as_deref(),
            source_name.as_deref(),
            source_version.as_deref(),
            os,
        );
        Package {
            source_name,
            source_version,
            arch,
            ..package(
                PackageType::Deb,
                name,
                version,
                purl,
                layer_digest,
                path.to_owned(),
            )
        }
    }
}

/// `pkg:deb/<vendor>/<name>@<version>?arch=…&distro=<id>-<version_id>&upstream=…`, as
/// the purl spec's deb type and trivy/syft spell it.
fn deb_purl(
    name: &str,
    version: &str,
    arch: Option<&str>,
    source_name: Option<&str>,
    source_version: Option<&str>,
    os: Option<&OsRelease>,
) -> String {
    let vendor = match os {
        Some(os)
            if os.id == "debian"
                || os.id == "ubuntu"
                || os.id_like.iter().any(|id| id == "debian") =>
        {
            os.id.as_str()
        }
        _ => "debian",
    };
    let mut purl = Purl::new(PackageType::Deb, name)
        .namespace(vendor)
        .version(version)
        .qualifier("arch", arch.unwrap_or(""));
    if let Some(os) = os {
        purl = purl.qualifier("distro", distro_qualifier(os));
    }
    let upstream = match (source_name, source_version) {
        (Some(source), Some(source_version)) => format!("{source}@{source_version}"),
        (Some(source), None) if source != name => source.to_owned(),
        (None, Some(source_version)) => format!("{name}@{source_version}"),
        _ => String::new(),
    };
    purl.qualifier("upstream", upstream).to_string()
}

/// `<id>-<version_id>` (`debian-12`), or `<id>-<codename>` without a version.
pub(crate) fn distro_qualifier(os: &OsRelease) -> String {
    if !os.version_id.is_empty() {
        format!("{}-{}", os.id, os.version_id)
    } else if let Some(codename) = &os.codename {
        format!("{}-{}", os.id, codename)
    } else {
        os.id.clone()
    }
}

/// Adds the absolute paths of a `info/<package>.list` file (one per line).
fn add_list_paths(contents: &[u8], owned: &mut HashSet<String>) {
    for line in contents.split(|byte| *byte == b'\n') {
        let line = line.trim_ascii_end();
        if line.len() > 2 && line[0] == b'/' {
            owned.insert(text(line));
        }
    }
}

/// Adds the paths of a `status.d/<package>.md5sums` file (`<md5>  <relative path>`).
fn add_md5sums_paths(contents: &[u8], owned: &mut HashSet<String>) {
    for line in contents.split(|byte| *byte == b'\n') {
        let line = line.trim_ascii_end();
        let Some(space) = line.iter().position(|byte| *byte == b' ') else {
            continue;
        };
        let path = line[space..].trim_ascii_start();
        if path.is_empty() {
            continue;
        }
        owned.insert(normalize_path(&String::from_utf8_lossy(path)));
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use crscan_model::FileVersion;

    use super::*;
    use crate::test_support::{detect, image_file};

    const DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/catalog/dpkg"
    );

    fn detect_in(files: Vec<ImageFile>, os: Option<&OsRelease>) -> Detected {
        detect(&DpkgDetector, files, os)
    }

    fn bookworm() -> OsRelease {
        crate::os_release::parse_os_release(
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
    }

    /// The first case of an expected list (the default options) as sorted tuples of
    /// name, version, source name, source version and architecture.
    fn expected(fixture: &str) -> Vec<(String, String, String, String, Option<String>)> {
        let json = std::fs::read_to_string(format!("{DATA}/{fixture}.expected.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let case = &json["cases"][0];
        let mut list: Vec<_> = case["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|package| {
                let field = |key: &str| package[key].as_str().map(str::to_owned);
                let name = field("name").unwrap();
                let version = field("version").unwrap();
                (
                    name.clone(),
                    version.clone(),
                    field("source_name").unwrap_or(name),
                    field("source_version").unwrap_or(version),
                    field("architecture").or_else(|| field("arch")),
                )
            })
            .collect();
        list.sort();
        list
    }

    fn found(out: &Detected) -> Vec<(String, String, String, String, Option<String>)> {
        let mut list: Vec<_> = out
            .packages
            .iter()
            .map(|package| {
                (
                    package.name.clone(),
                    package.version.clone(),
                    package.source_name_or_name().to_owned(),
                    package.source_version_or_version().to_owned(),
                    package.arch.clone(),
                )
            })
            .collect();
        list.sort();
        list
    }

    fn fixture(name: &str, image_path: &str) -> Detected {
        let contents = std::fs::read(format!("{DATA}/{name}")).unwrap();
        detect_in(vec![image_file(image_path, &contents)], Some(&bookworm()))
    }

    #[test]
    fn status_fixtures_give_the_expected_lists() {
        let cases = [
            ("osv-scalibr/dpkg/valid", 0),
            ("osv-scalibr/dpkg/noversion", 1),
            ("osv-scalibr/dpkg/nopackage", 1),
            ("osv-scalibr/dpkg/empty", 0),
            ("osv-scalibr/dpkg/invalid", 2),
            ("osv-scalibr/dpkg/single", 0),
            ("osv-scalibr/dpkg/trailingnewlines", 0),
            ("osv-scalibr/dpkg/transitional", 0),
            ("osv-scalibr/dpkg/transitional_dummy", 0),
            ("osv-scalibr/dpkg/transitional_empty", 0),
            ("osv-scalibr/dpkg/statusfield", 1),
            ("trivy/status", 0),
        ];
        for (name, diagnostics) in cases {
            let out = fixture(name, STATUS);
            assert_eq!(found(&out), expected(name), "{name}");
            assert_eq!(
                out.diagnostics.len(),
                diagnostics,
                "{name}: {:?}",
                out.diagnostics
            );
        }
    }

    #[test]
    fn status_d_entries_without_status_are_installed() {
        let name = "osv-scalibr/dpkg/status.d/foo";
        let out = fixture(name, "/var/lib/dpkg/status.d/foo");
        assert_eq!(found(&out), expected(name));
        assert!(out.diagnostics.is_empty());
    }

    #[test]
    fn sources_and_purls() {
        let status = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
            Source: glibc\nVersion: 2.36-9+deb12u4\n\n\
            Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
            Source: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\n\n\
            Package: libgcc-s1\nStatus: install ok installed\nArchitecture: amd64\n\
            Source: gcc-12 (12.2.0-14)\nVersion: 12.2.0-14+b1\n";
        let out = detect_in(vec![image_file(STATUS, status)], Some(&bookworm()));
        let by_name = |name: &str| out.packages.iter().find(|p| p.name == name).unwrap();
        let libc = by_name("libc6");
        assert_eq!(libc.source_name.as_deref(), Some("glibc"));
        assert_eq!(libc.source_version, None);
        assert_eq!(
            libc.purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let ssl = by_name("libssl3");
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.source_version, None);
        let gcc = by_name("libgcc-s1");
        assert_eq!(gcc.source_version.as_deref(), Some("12.2.0-14"));
        assert_eq!(
            gcc.purl,
            "pkg:deb/debian/libgcc-s1@12.2.0-14%2Bb1?arch=amd64&distro=debian-12\
             &upstream=gcc-12%4012.2.0-14"
        );
        assert_eq!(gcc.locations, vec![STATUS.to_owned()]);
        let no_os = detect_in(vec![image_file(STATUS, status)], None);
        assert_eq!(
            no_os.packages[0].purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc"
        );
    }

    #[test]
    fn a_corrupt_stanza_among_good_ones_is_reported_and_skipped() {
        let status = b"Package: good1\nStatus: install ok installed\nVersion: 1\n\n\
            Package: broken\nStatus: install ok installed\n\
            \x00\xff garbage without colon\nVersion: 2\n\n\
            Status: install ok installed\nVersion: 3\n\n\
            Package: good2\nStatus: install ok installed\nVersion: 4\n";
        let out = detect_in(vec![image_file(STATUS, status)], None);
        let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["good1", "good2"]);
        assert_eq!(out.diagnostics.len(), 2, "{:?}", out.diagnostics);
        assert!(
            out.diagnostics[0].message.contains("line 7"),
            "{:?}",
            out.diagnostics
        );
        assert!(out.diagnostics[1].message.contains("no Package field"));
        assert_eq!(out.diagnostics[0].path, STATUS);
        assert_eq!(out.diagnostics[0].detector, "dpkg");
    }

    #[test]
    fn the_installing_layer_is_the_start_of_the_trailing_run() {
        let layer =
            |n: u8| Digest::from_str(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap();
        let stanza = |name: &str, version: &str| {
            format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\n\n")
        };
        let v1 = stanza("a", "1") + &stanza("b", "1");
        let v2 = stanza("a", "1") + &stanza("b", "2");
        let v3 = stanza("a", "1") + &stanza("c", "1");
        let v4 = stanza("a", "1") + &stanza("b", "2") + &stanza("c", "1");
        let mut file = image_file(STATUS, v4.as_bytes());
        file.layer_digest = Some(layer(4));
        file.history = [(1, v1), (2, v2), (3, v3)]
            .into_iter()
            .map(|(n, text)| FileVersion {
                layer_digest: Some(layer(n)),
                contents: Arc::from(text.as_bytes()),
            })
            .collect();
        let out = detect_in(vec![file], None);
        let layer_of = |name: &str| {
            out.packages
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .layer_digest
                .clone()
                .unwrap()
        };
        assert_eq!(layer_of("a"), layer(1));
        assert_eq!(layer_of("b"), layer(4));
        assert_eq!(layer_of("c"), layer(3));
    }

    #[test]
    fn owned_files_come_from_list_and_md5sums_files() {
        let out = detect_in(
            vec![
                image_file(
                    "/var/lib/dpkg/info/python3-six.list",
                    b"/.\n/usr\n/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA\n",
                ),
                image_file(
                    "/var/lib/dpkg/status.d/tzdata.md5sums",
                    b"0123456789abcdef0123456789abcdef  usr/share/zoneinfo/UTC\n",
                ),
                image_file(
                    "/var/lib/dpkg/info/python3-six.md5sums",
                    b"ignored  usr/x\n",
                ),
            ],
            None,
        );
        let mut owned: Vec<_> = out.owned_files.iter().map(String::as_str).collect();
        owned.sort_unstable();
        assert_eq!(
            owned,
            [
                "/usr",
                "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                "/usr/share/zoneinfo/UTC"
            ]
        );
    }

    #[test]
    fn interest() {
        assert_eq!(DpkgDetector.interest(STATUS), Keep::WithHistory);
        assert_eq!(
            DpkgDetector.interest("/var/lib/dpkg/status.d/libc6"),
            Keep::WithHistory
        );
        assert_eq!(
            DpkgDetector.interest("/var/lib/dpkg/status.d/libc6.md5sums"),
            Keep::Yes
        );
        assert_eq!(
            DpkgDetector.interest("/var/lib/dpkg/info/libc6:amd64.list"),
            Keep::Yes
        );
        assert_eq!(
            DpkgDetector.interest("/var/lib/dpkg/info/libc6.postinst"),
            Keep::No
        );
        assert_eq!(DpkgDetector.interest("/var/lib/dpkg/status-old"), Keep::No);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
        ) {
            let _ = detect_in(vec![image_file(STATUS, &bytes)], None);
        }

        #[test]
        fn random_stanza_text_never_panics(
            text in "([A-Za-z]{0,8}(: ?[a-z0-9.:~+() -]{0,12})?\n{0,2}){0,40}",
        ) {
            let out = detect_in(vec![image_file(STATUS, text.as_bytes())], None);
            for package in &out.packages {
                proptest::prop_assert!(!package.name.is_empty() && !package.version.is_empty());
            }
        }
    }
}
