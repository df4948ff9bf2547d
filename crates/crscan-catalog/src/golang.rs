//! Go executables: the module build information that the Go linker embeds in every
//! binary built in module mode, read the way `go version -m` reads it.
//!
//! The build information lives in the `.go.buildinfo` section of an ELF file (or is
//! found by its 16-byte-aligned magic `\xff Go buildinf:` in other formats). Its
//! 32-byte header gives the pointer size and a flags byte. Since Go 1.18 (flag 0x2)
//! the Go version and the module text follow the header as two varint-prefixed
//! strings; before that the header holds two pointers to Go string headers, which
//! are read through the ELF section and segment addresses. The module text (see
//! `runtime/debug.BuildInfo`, <https://pkg.go.dev/runtime/debug#BuildInfo>) has
//! `path`, `mod`, `dep` and `=>` (replacement) lines, wrapped in two 16-byte
//! sentinels.
//!
//! Packages follow trivy's convention: the main module (no version when it was built
//! as `(devel)`), every dependency (the replacement when it is replaced), and the
//! toolchain as `stdlib` with a `v` version (`v1.22.0`).

pub mod elf;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, PackageType, Purl};
use thiserror::Error;

use crate::{Detected, Detector, language_package};
use elf::{ELF_MAGIC, Elf};

/// The magic that opens the build information blob.
const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Size of the build information header.
const HEADER_LEN: usize = 32;
/// Flag bit: the version and module strings are inline after the header.
const FLAG_INLINE: u8 = 0x2;
/// Flag bit: pointers are big-endian (pre-1.18 layout).
const FLAG_BIG_ENDIAN: u8 = 0x1;
/// Longest Go version or module text we accept.
const MAX_STRING_LEN: u64 = 16 << 20;

/// Why the build information of a Go binary could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BuildInfoError {
    #[error("build information header is cut short at {0} bytes")]
    ShortHeader(usize),
    #[error("build information has pointer size {0}")]
    BadPointerSize(u8),
    #[error("build information string at {0:#x} cannot be read")]
    UnreadableString(u64),
    #[error("build information string length {0} is out of range")]
    BadLength(u64),
    #[error("pre-1.18 build information needs an ELF file to follow its pointers")]
    PointersWithoutElf,
}

/// One module line of the build information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
    /// The module that replaces this one (`=>` line), if any.
    pub replace: Option<Box<Module>>,
}

/// The decoded build information of a Go binary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// The toolchain that built the binary, as recorded (`go1.22.0`).
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module (`mod` line), if the binary was built in module mode.
    pub main: Option<Module>,
    /// Dependencies (`dep` lines) in their recorded order.
    pub deps: Vec<Module>,
}

/// Reads the build information of a Go executable. `Ok(None)` means the bytes are
/// not a Go binary (or one built without build information).
pub fn read_build_info(data: &[u8]) -> Result<Option<BuildInfo>, BuildInfoError> {
    let elf = Elf::parse(data).ok();
    let blob = match &elf {
        // Every gc toolchain since Go 1.13 writes the section; an ELF file with
        // section headers but without it is not searched (that keeps the many
        // non-Go executables of an image cheap).
        Some(elf) if !elf.sections().is_empty() => elf
            .section_data(".go.buildinfo")
            .filter(|section| section.starts_with(BUILDINFO_MAGIC)),
        _ => find_magic(data).map(|at| &data[at..]),
    };
    let Some(blob) = blob else {
        return Ok(None);
    };
    decode(blob, elf.as_ref()).map(Some)
}

/// Finds the build information magic at a 16-byte-aligned file offset.
fn find_magic(data: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    while at + BUILDINFO_MAGIC.len() <= data.len() {
        let next = data.get(at..)?.iter().position(|&byte| byte == 0xff)? + at;
        if next.is_multiple_of(16) && data.get(next..)?.starts_with(BUILDINFO_MAGIC) {
            return Some(next);
        }
        at = next + 1;
    }
    None
}

/// Decodes the blob that starts with the magic.
fn decode(blob: &[u8], elf: Option<&Elf<'_>>) -> Result<BuildInfo, BuildInfoError> {
    if blob.len() < HEADER_LEN {
        return Err(BuildInfoError::ShortHeader(blob.len()));
    }
    let pointer_size = blob[14];
    let flags = blob[15];
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let mut rest = &blob[HEADER_LEN..];
        let version = read_varint_string(&mut rest)?;
        let modinfo = read_varint_string(&mut rest)?;
        (version, modinfo)
    } else {
        if pointer_size != 4 && pointer_size != 8 {
            return Err(BuildInfoError::BadPointerSize(pointer_size));
        }
        let elf = elf.ok_or(BuildInfoError::PointersWithoutElf)?;
        let big_endian = flags & FLAG_BIG_ENDIAN != 0;
        let size = usize::from(pointer_size);
        let version_at = read_pointer(&blob[16..16 + size], big_endian);
        let modinfo_at = read_pointer(&blob[16 + size..16 + 2 * size], big_endian);
        let version = read_go_string(elf, version_at, size, big_endian)?;
        let modinfo = read_go_string(elf, modinfo_at, size, big_endian)?;
        (version, modinfo)
    };
    let mut info = parse_modinfo(strip_sentinels(modinfo));
    info.go_version = String::from_utf8_lossy(version).into_owned();
    Ok(info)
}

/// Reads a little- or big-endian pointer of 4 or 8 bytes.
fn read_pointer(bytes: &[u8], big_endian: bool) -> u64 {
    let mut value = 0u64;
    if big_endian {
        for &byte in bytes {
            value = (value << 8) | u64::from(byte);
        }
    } else {
        for &byte in bytes.iter().rev() {
            value = (value << 8) | u64::from(byte);
        }
    }
    value
}

/// Reads a Go string header (data pointer, length) at `address` and the bytes it
/// points to.
fn read_go_string<'a>(
    elf: &Elf<'a>,
    address: u64,
    pointer_size: usize,
    big_endian: bool,
) -> Result<&'a [u8], BuildInfoError> {
    let header = elf
        .read_at_address(address, 2 * pointer_size as u64)
        .ok_or(BuildInfoError::UnreadableString(address))?;
    let data_at = read_pointer(&header[..pointer_size], big_endian);
    let len = read_pointer(&header[pointer_size..], big_endian);
    if len > MAX_STRING_LEN {
        return Err(BuildInfoError::BadLength(len));
    }
    if len == 0 {
        return Ok(&[]);
    }
    elf.read_at_address(data_at, len)
        .ok_or(BuildInfoError::UnreadableString(data_at))
}

/// Reads an unsigned LEB128 length and that many bytes, advancing `rest`.
fn read_varint_string<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], BuildInfoError> {
    let mut len = 0u64;
    let mut shift = 0u32;
    let mut used = 0usize;
    loop {
        let byte = *rest.get(used).ok_or(BuildInfoError::BadLength(len))?;
        used += 1;
        if shift >= 64 {
            return Err(BuildInfoError::BadLength(len));
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if len > MAX_STRING_LEN {
        return Err(BuildInfoError::BadLength(len));
    }
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| used.checked_add(len))
        .filter(|&end| end <= rest.len())
        .ok_or(BuildInfoError::BadLength(len))?;
    let value = &rest[used..end];
    *rest = &rest[end..];
    Ok(value)
}

/// Removes the 16-byte sentinels the linker puts around the module text.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    let len = modinfo.len();
    if len >= 33 && modinfo[len - 17] == b'\n' {
        &modinfo[16..len - 16]
    } else {
        modinfo
    }
}

/// Parses the module text (`path`, `mod`, `dep`, `=>` lines); unknown lines are
/// ignored.
pub fn parse_modinfo(text: &[u8]) -> BuildInfo {
    let text = String::from_utf8_lossy(text);
    let mut info = BuildInfo::default();
    // Which module the next `=>` line replaces: None, the main module, or a dep.
    let mut last_is_main = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or("").to_owned();
        let module = || Module {
            path: field(1),
            version: field(2),
            sum: field(3),
            replace: None,
        };
        match fields.first().copied().unwrap_or("") {
            "path" => info.path = field(1),
            "mod" => {
                info.main = Some(module());
                last_is_main = true;
            }
            "dep" => {
                info.deps.push(module());
                last_is_main = false;
            }
            "=>" => {
                let replacement = Some(Box::new(module()));
                let target = if last_is_main {
                    info.main.as_mut()
                } else {
                    info.deps.last_mut()
                };
                if let Some(target) = target {
                    target.replace = replacement;
                }
            }
            _ => {}
        }
    }
    info
}

impl BuildInfo {
    /// The packages trivy reports for this binary: the main module under its own
    /// path, dependencies (replacements when replaced), then the toolchain as
    /// `stdlib`.
    pub fn packages(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(main) = self.main.as_ref().filter(|main| !main.path.is_empty()) {
            let version = if main.version == "(devel)" {
                String::new()
            } else {
                main.version.clone()
            };
            out.push((main.path.clone(), version));
        }
        for dep in &self.deps {
            let module = dep.replace.as_deref().unwrap_or(dep);
            // Old toolchains could record an empty `dep` line; it names nothing.
            if module.path.is_empty() {
                continue;
            }
            out.push((module.path.clone(), module.version.clone()));
        }
        if let Some(version) = stdlib_version(&self.go_version) {
            out.push(("stdlib".to_owned(), version));
        }
        out
    }
}

/// `go1.22.0` (possibly followed by ` X:experiments`) as `v1.22.0`; `None` for
/// development toolchains and anything else.
fn stdlib_version(go_version: &str) -> Option<String> {
    let first = go_version.split_whitespace().next()?;
    let number = first.strip_prefix("go")?;
    if !number.starts_with(|ch: char| ch.is_ascii_digit()) {
        return None;
    }
    Some(format!("v{number}"))
}

/// The Package URL of a Go module: the path up to its last `/` is the namespace.
pub fn go_purl(path: &str, version: &str) -> String {
    let (namespace, name) = path.rsplit_once('/').unwrap_or(("", path));
    Purl::new(PackageType::Golang, name)
        .namespace(namespace)
        .version(version)
        .to_string()
}

/// Whether a path names something no executable detector needs to read: shared
/// libraries, kernel modules, object files and detached debug information.
pub(crate) fn is_not_an_executable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.starts_with("/usr/lib/debug/")
        || name.ends_with(".so")
        || name.contains(".so.")
        || name.ends_with(".ko")
        || name.ends_with(".o")
        || name.ends_with(".debug")
}

/// Whether the first bytes are those of an executable format the Go detector reads.
fn is_executable_magic(path: &str, head: &[u8]) -> bool {
    const MACHO: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    head.starts_with(ELF_MAGIC)
        || MACHO.iter().any(|magic| head.starts_with(magic))
        || (head.starts_with(b"MZ") && path.to_ascii_lowercase().ends_with(".exe"))
}

/// Finds Go executables by their build information.
pub struct GoBinaryDetector;

impl GoBinaryDetector {
    fn scan_file(&self, file: &ImageFile, out: &mut Detected) {
        let info = match read_build_info(&file.contents) {
            Ok(Some(info)) => info,
            Ok(None) => {
                if file.truncated && file.contents.starts_with(ELF_MAGIC) {
                    out.diagnostic(
                        self.name(),
                        &file.path,
                        format!(
                            "executable is cut to {} bytes by the size cap; no Go build information in the kept part",
                            file.contents.len()
                        ),
                    );
                }
                return;
            }
            Err(error) => {
                let note = if file.truncated {
                    " (file cut short by the size cap)"
                } else {
                    ""
                };
                out.diagnostic(self.name(), &file.path, format!("{error}{note}"));
                return;
            }
        };
        for (name, version) in info.packages() {
            let purl = go_purl(&name, &version);
            out.packages.push(language_package(
                PackageType::Golang,
                name,
                version,
                purl,
                file,
            ));
        }
    }
}

impl Detector for GoBinaryDetector {
    fn name(&self) -> &'static str {
        "golang"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn wants_magic(&self, path: &str, head: &[u8]) -> bool {
        is_executable_magic(path, head) && !is_not_an_executable(path)
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            let head_len = file.contents.len().min(crate::MAGIC_LEN);
            if self.wants_magic(&file.path, &file.contents[..head_len]) {
                self.scan_file(file, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::elf::build::{TestSection, elf};
    use super::*;
    use crate::test_support::{self, image_file, pairs};

    fn fixture(relative: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../../shared/data/catalog/go/{relative}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    fn detect(files: Vec<ImageFile>) -> Detected {
        test_support::detect(&GoBinaryDetector, files, None)
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut list: Vec<_> = list
            .iter()
            .map(|(name, version)| ((*name).to_owned(), (*version).to_owned()))
            .collect();
        list.sort();
        list
    }

    #[test]
    fn reads_trivy_go_1_15_binary_with_pointer_layout() {
        let out = detect(vec![image_file(
            "/usr/local/bin/test.elf",
            fixture("trivy/test.elf"),
        )]);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(
            pairs(&out),
            owned(&[
                ("github.com/aquasecurity/test", ""),
                ("stdlib", "v1.15.2"),
                (
                    "github.com/aquasecurity/go-pep440-version",
                    "v0.0.0-20210121094942-22b2f8951d46"
                ),
                (
                    "github.com/aquasecurity/go-version",
                    "v0.0.0-20210121072130-637058cfe492"
                ),
                ("golang.org/x/xerrors", "v0.0.0-20200804184101-5ec99f83aff1"),
            ])
        );
        let xerrors = out
            .packages
            .iter()
            .find(|package| package.name == "golang.org/x/xerrors")
            .unwrap();
        assert_eq!(
            xerrors.purl,
            "pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1"
        );
        assert_eq!(
            xerrors.locations,
            vec!["/usr/local/bin/test.elf".to_owned()]
        );
    }

    #[test]
    fn reads_osv_scalibr_go_1_22_binaries_with_replacements() {
        for arch in ["amd64", "arm64"] {
            let name = format!("binary_with_module_replacement-linux-{arch}");
            let out = detect(vec![image_file(
                &format!("/usr/local/bin/{name}"),
                fixture(&format!("osv-scalibr/{name}")),
            )]);
            assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
            assert_eq!(
                pairs(&out),
                owned(&[
                    (
                        "github.com/golang/xerrors",
                        "v0.0.0-20220907171357-04be3eba64a2"
                    ),
                    ("stdlib", "v1.22.0"),
                    ("binary_with_module_replacement", ""),
                ]),
                "{arch}"
            );
        }
    }

    #[test]
    fn shared_libraries_are_not_wanted_but_executables_are() {
        let detector = GoBinaryDetector;
        assert!(detector.wants_magic("/usr/local/bin/app", b"\x7fELF\x02\x01\x01\x00"));
        assert!(detector.wants_magic("/app/server", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01"));
        assert!(!detector.wants_magic("/usr/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF\x02"));
        assert!(!detector.wants_magic("/usr/lib/libfoo.so", b"\x7fELF\x02"));
        assert!(!detector.wants_magic("/usr/lib/debug/.build-id/ab/cd", b"\x7fELF\x02"));
        assert!(!detector.wants_magic("/usr/bin/script", b"#!/bin/sh"));
    }

    /// Module text as the linker writes it, with both sentinels.
    fn wrapped_modinfo(text: &str) -> Vec<u8> {
        let mut out = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        out
    }

    const MODINFO: &str = "path\texample.com/app\nmod\texample.com/app\tv1.2.3\th1:x=\n\
        dep\tgithub.com/a/b\tv0.1.0\th1:y=\n\
        dep\tgithub.com/old/c\tv1.0.0\n=>\tgithub.com/new/c\tv1.0.1\th1:z=\n\
        dep\tgithub.com/d/e\tv2.0.0\n=>\t../local/e\t\n";

    fn expected_handmade() -> Vec<(String, String)> {
        owned(&[
            ("example.com/app", "v1.2.3"),
            ("github.com/a/b", "v0.1.0"),
            ("github.com/new/c", "v1.0.1"),
            ("../local/e", ""),
            ("stdlib", "v1.21.4"),
        ])
    }

    fn inline_blob(version: &str, modinfo: &[u8]) -> Vec<u8> {
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.push(8);
        blob.push(FLAG_INLINE);
        blob.resize(HEADER_LEN, 0);
        for text in [version.as_bytes(), modinfo] {
            let mut len = text.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    blob.push(byte);
                    break;
                }
                blob.push(byte | 0x80);
            }
            blob.extend_from_slice(text);
        }
        blob
    }

    #[test]
    fn decodes_inline_layout_from_a_handmade_elf() {
        let blob = inline_blob("go1.21.4", &wrapped_modinfo(MODINFO));
        let file = elf(
            true,
            false,
            &[TestSection {
                name: ".go.buildinfo",
                address: 0x50_0000,
                contents: &blob,
            }],
        );
        let info = read_build_info(&file).unwrap().unwrap();
        assert_eq!(info.go_version, "go1.21.4");
        assert_eq!(info.path, "example.com/app");
        let mut found = info.packages();
        found.sort();
        assert_eq!(found, expected_handmade());
    }

    #[test]
    fn finds_inline_layout_by_magic_without_sections() {
        let mut file = vec![0u8; 4096];
        file[..4].copy_from_slice(b"\xcf\xfa\xed\xfe");
        file.extend_from_slice(&inline_blob("go1.21.4", &wrapped_modinfo(MODINFO)));
        file.extend_from_slice(&[0u8; 100]);
        let mut found = read_build_info(&file).unwrap().unwrap().packages();
        found.sort();
        assert_eq!(found, expected_handmade());
        // The same bytes at an unaligned offset are not build information.
        file.insert(0, 0);
        assert_eq!(read_build_info(&file).unwrap(), None);
    }

    /// Builds the pre-1.18 layout: header pointers to two string headers, which
    /// point at the strings, all inside one `.go.buildinfo` section plus `.data`.
    fn pointer_layout_elf(is_64: bool, big_endian: bool) -> Vec<u8> {
        let size: usize = if is_64 { 8 } else { 4 };
        let put = |out: &mut Vec<u8>, value: u64| {
            let bytes = value.to_le_bytes();
            let mut field = bytes[..size].to_vec();
            if big_endian {
                field.reverse();
            }
            out.extend_from_slice(&field);
        };
        let info_address = 0x60_0000u64;
        let data_address = 0x70_0000u64;
        let version = b"go1.16.15";
        let modinfo = wrapped_modinfo(MODINFO);
        // .data: the version bytes, then the module text, then both string headers.
        let mut data = Vec::new();
        data.extend_from_slice(version);
        data.extend_from_slice(&modinfo);
        let headers_at = data_address + data.len() as u64;
        put(&mut data, data_address);
        put(&mut data, version.len() as u64);
        put(&mut data, data_address + version.len() as u64);
        put(&mut data, modinfo.len() as u64);
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.push(size as u8);
        blob.push(u8::from(big_endian));
        put(&mut blob, headers_at);
        put(&mut blob, headers_at + 2 * size as u64);
        blob.resize(HEADER_LEN, 0);
        elf(
            is_64,
            big_endian,
            &[
                TestSection {
                    name: ".go.buildinfo",
                    address: info_address,
                    contents: &blob,
                },
                TestSection {
                    name: ".data",
                    address: data_address,
                    contents: &data,
                },
            ],
        )
    }

    #[test]
    fn decodes_pointer_layout_for_every_word_size_and_byte_order() {
        for is_64 in [false, true] {
            for big_endian in [false, true] {
                let file = pointer_layout_elf(is_64, big_endian);
                let info = read_build_info(&file).unwrap().unwrap();
                assert_eq!(info.go_version, "go1.16.15");
                let mut found = info.packages();
                found.sort();
                let mut expected = expected_handmade();
                for pair in &mut expected {
                    if pair.0 == "stdlib" {
                        pair.1 = "v1.16.15".to_owned();
                    }
                }
                expected.sort();
                assert_eq!(found, expected, "64-bit {is_64}, big-endian {big_endian}");
            }
        }
    }

    #[test]
    fn bad_build_information_is_a_diagnostic() {
        let mut blob = inline_blob("go1.21.4", &wrapped_modinfo(MODINFO));
        // Claim a module text far longer than the section.
        let at = HEADER_LEN + 1 + "go1.21.4".len();
        blob[at] = 0xff;
        blob[at + 1] = 0x7f;
        let file = elf(
            true,
            false,
            &[TestSection {
                name: ".go.buildinfo",
                address: 0x50_0000,
                contents: &blob,
            }],
        );
        let out = detect(vec![image_file("/usr/local/bin/broken", file)]);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        assert!(out.diagnostics[0].message.contains("length"));
    }

    #[test]
    fn truncated_binary_without_build_info_is_reported() {
        let mut data = fixture("trivy/test.elf");
        data.truncate(4096);
        let mut file = image_file("/usr/local/bin/test", data);
        file.truncated = true;
        let out = detect(vec![file]);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1, "{:?}", out.diagnostics);
        assert!(out.diagnostics[0].message.contains("4096 bytes"));
    }

    #[test]
    fn truncated_binaries_keep_the_build_info_in_their_kept_part() {
        // Go 1.15 wrote the section headers near the start: a file cut after the
        // data segment (0x19e000..0x1b5e80) still reads through its sections.
        let mut data = fixture("trivy/test.elf");
        data.truncate(0x1c_0000);
        let mut file = image_file("/usr/local/bin/test", data);
        file.truncated = true;
        let out = detect(vec![file]);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.packages.len(), 5);

        // Section headers at the end of the file are lost first; the build
        // information is then found by its magic.
        let blob = inline_blob("go1.21.4", &wrapped_modinfo(MODINFO));
        let mut data = elf(
            true,
            false,
            &[TestSection {
                name: ".go.buildinfo",
                address: 0x50_0000,
                contents: &blob,
            }],
        );
        data.truncate(data.len() - 20);
        assert!(Elf::parse(&data).unwrap().sections().is_empty());
        let mut found = read_build_info(&data).unwrap().unwrap().packages();
        found.sort();
        assert_eq!(found, expected_handmade());
    }

    #[test]
    fn non_go_elf_files_give_nothing() {
        let file = elf(
            true,
            false,
            &[TestSection {
                name: ".text",
                address: 0x40_0000,
                contents: b"\xff Go buildinf: is not at an aligned place here",
            }],
        );
        let out = detect(vec![image_file("/usr/bin/true", file)]);
        assert!(out.packages.is_empty());
        assert!(out.diagnostics.is_empty());
    }

    /// Builds a real Go program with the installed toolchain (skipped when `go` is
    /// absent) and checks that its main module and toolchain are found.
    #[test]
    fn reads_a_binary_built_by_the_local_go_toolchain() {
        let Ok(version_output) = std::process::Command::new("go")
            .arg("env")
            .arg("GOVERSION")
            .output()
        else {
            println!("skipped: the go toolchain is not installed");
            return;
        };
        if !version_output.status.success() {
            println!("skipped: `go env GOVERSION` failed");
            return;
        }
        let go_version = String::from_utf8_lossy(&version_output.stdout)
            .trim()
            .to_owned();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("go.mod"),
            "module example.com/crscan/hello\n\ngo 1.18\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("main.go"),
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
        )
        .unwrap();
        let status = std::process::Command::new("go")
            .args(["build", "-buildvcs=false", "-trimpath", "-o", "hello", "."])
            .current_dir(dir.path())
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.path().join("cache"))
            .env("GOPATH", dir.path().join("gopath"))
            .env("CGO_ENABLED", "0")
            .status()
            .unwrap();
        assert!(status.success(), "go build failed");
        let binary = std::fs::read(dir.path().join("hello")).unwrap();
        let out = detect(vec![image_file("/usr/local/bin/hello", binary)]);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let expected_stdlib = format!("v{}", go_version.trim_start_matches("go"));
        assert_eq!(
            pairs(&out),
            owned(&[
                ("example.com/crscan/hello", ""),
                ("stdlib", expected_stdlib.as_str()),
            ])
        );
        let main = out
            .packages
            .iter()
            .find(|package| package.name == "example.com/crscan/hello")
            .unwrap();
        assert_eq!(main.purl, "pkg:golang/example.com/crscan/hello");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = read_build_info(&bytes);
            let _ = Elf::parse(&bytes);
        }

        #[test]
        fn mutated_binaries_never_panic(
            flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..16),
            is_64 in proptest::bool::ANY,
            big_endian in proptest::bool::ANY,
            cut in 0usize..5000,
        ) {
            let mut file = pointer_layout_elf(is_64, big_endian);
            for (at, value) in flips {
                let len = file.len();
                file[at % len] = value;
            }
            file.truncate(cut.max(1));
            let _ = read_build_info(&file);
            let mut blob = inline_blob("go1.21.4", &wrapped_modinfo(MODINFO));
            let len = blob.len();
            blob[len / 2] ^= 0x80;
            let _ = read_build_info(&blob);
        }
    }
}
