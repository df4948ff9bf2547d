//! Lists the rpm packages installed in an image (Red Hat, CentOS, Fedora, Rocky, Alma,
//! Oracle Linux, Amazon Linux, SUSE), with epoch and source rpm, by reading rpm's
//! database with our own code: no librpm, no C, no SQLite library.
//!
//! rpm has stored its database in three formats over time, and images in the wild use
//! all of them: SQLite `rpmdb.sqlite` (rpm 4.16+: RHEL 9, Fedora 33+, Amazon Linux
//! 2023), Berkeley DB `Packages` (RHEL/CentOS 7 and 8, Amazon Linux 2) and NDB
//! `Packages.db` (SUSE). [`sqlite`], [`bdb`] and [`ndb`] each turn the database file
//! into header blobs, and [`header`] reads the package out of each blob. The database
//! lives in `/var/lib/rpm` or `/usr/lib/sysimage/rpm` (often one links to the other).
//!
//! The database is a binary file that changes as a whole, so the layer of each package
//! is the layer that last wrote the database (no per-layer history is kept: copies of a
//! large database per layer would cost too much memory).

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use std::borrow::Cow;
use std::collections::HashSet;

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::{Detected, Detector, package, text};
use header::{Header, tag};

const NAME: &str = "rpm";
const DIRECTORIES: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];
const DATABASE_FILES: [&str; 3] = ["rpmdb.sqlite", "Packages.db", "Packages"];

/// Why an rpm database file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmDbError {
    #[error("not a {0} database")]
    NotThisFormat(&'static str),
    #[error("unsupported rpm database: {0}")]
    Unsupported(String),
    #[error("corrupt rpm database: {0}")]
    Corrupt(String),
}

/// Receives each header blob read from a database (borrowed from the file, or
/// reassembled from overflow pages), or the error that made one record unreadable.
pub type Visit<'v, 'a> = dyn FnMut(Result<Cow<'a, [u8]>, RpmDbError>) + 'v;

/// Header blobs collected from a database; see [`package_blobs`].
pub type Blobs<'a> = Vec<Result<Cow<'a, [u8]>, RpmDbError>>;

/// Calls `visit` with each header blob of an rpm database in any of the three
/// formats, recognised by content, one at a time (so at most one reassembled blob is
/// in memory). An error return means the file is unusable.
pub fn for_each_blob<'a>(data: &'a [u8], visit: &mut Visit<'_, 'a>) -> Result<(), RpmDbError> {
    if data.starts_with(b"SQLite format 3\0") {
        sqlite::for_each_blob(data, visit)
    } else if data.starts_with(b"RpmP") {
        ndb::for_each_blob(data, visit)
    } else {
        match bdb::for_each_blob(data, visit) {
            Err(RpmDbError::NotThisFormat(_)) => {
                Err(RpmDbError::NotThisFormat("SQLite, Berkeley DB or NDB rpm"))
            }
            other => other,
        }
    }
}

/// All header blobs of an rpm database, collected (for callers that want a list;
/// the detector streams them with [`for_each_blob`]).
pub fn package_blobs(data: &[u8]) -> Result<Blobs<'_>, RpmDbError> {
    let mut blobs = Vec::new();
    for_each_blob(data, &mut |blob| blobs.push(blob))?;
    Ok(blobs)
}

/// The rpm detector.
pub struct RpmDetector;

impl Detector for RpmDetector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interest(&self, path: &str) -> Keep {
        let wanted = path.rsplit_once('/').is_some_and(|(directory, file)| {
            DIRECTORIES.contains(&directory) && DATABASE_FILES.contains(&file)
        });
        if wanted { Keep::Yes } else { Keep::No }
    }

    fn detect(&self, view: &FileView, os: Option<&OsRelease>, out: &mut Detected) {
        // The first database that opens wins: newer formats first, and a link from
        // one directory to the other is read once.
        let mut seen = HashSet::new();
        for file_name in DATABASE_FILES {
            for directory in DIRECTORIES {
                let Some(file) = view.get(&format!("{directory}/{file_name}")) else {
                    continue;
                };
                if !seen.insert(file.path.as_str()) {
                    continue;
                }
                if detect_file(file, os, out) {
                    return;
                }
            }
        }
    }
}

/// Reads one database file; false when it could not be opened at all.
fn detect_file(file: &ImageFile, os: Option<&OsRelease>, out: &mut Detected) -> bool {
    if file.truncated {
        out.diagnostic(
            NAME,
            &file.path,
            format!(
                "{} is larger than the size cap; packages may be missing",
                file.path
            ),
        );
    }
    let read = for_each_blob(&file.contents, &mut |blob| {
        let result = blob
            .map_err(|error| error.to_string())
            .and_then(|blob| read_package(&blob, os, file, &mut out.owned_files));
        match result {
            Ok(Some(package)) => out.packages.push(package),
            Ok(None) => {}
            Err(message) => out.diagnostic(NAME, &file.path, message),
        }
    });
    match read {
        Ok(()) => true,
        Err(error) => {
            out.diagnostic(NAME, &file.path, error.to_string());
            false
        }
    }
}

/// Turns one header blob into a package; `None` for the `gpg-pubkey` entries that rpm
/// keeps for imported signing keys (not packages).
fn read_package(
    blob: &[u8],
    os: Option<&OsRelease>,
    file: &ImageFile,
    owned: &mut HashSet<String>,
) -> Result<Option<Package>, String> {
    let header = Header::parse(blob).map_err(|error| error.to_string())?;
    let name = header
        .string(tag::NAME)
        .filter(|name| !name.is_empty())
        .ok_or("rpm header has no name")?;
    if name == b"gpg-pubkey" {
        return Ok(None);
    }
    let name = text(name);
    let version = header
        .string(tag::VERSION)
        .filter(|version| !version.is_empty())
        .ok_or_else(|| format!("rpm package {name} has no version"))?;
    let mut version = text(version);
    if let Some(release) = header
        .string(tag::RELEASE)
        .filter(|release| !release.is_empty())
    {
        version.push('-');
        version.push_str(&String::from_utf8_lossy(release));
    }
    let epoch = header.int32(tag::EPOCH).map(u64::from);
    let arch = header
        .string(tag::ARCH)
        .filter(|arch| !arch.is_empty() && *arch != b"(none)")
        .map(text);
    let license = header
        .string(tag::LICENSE)
        .filter(|license| !license.is_empty())
        .map(text);
    let source_rpm = header
        .string(tag::SOURCERPM)
        .filter(|srpm| !srpm.is_empty() && *srpm != b"(none)");
    let source = source_rpm.and_then(|srpm| split_source_rpm(&String::from_utf8_lossy(srpm)));
    let (source_name, source_version) = match source {
        Some((source_name, source_version)) => {
            let source_version = (source_version != version).then_some(source_version);
            (Some(source_name), source_version)
        }
        None => (None, None),
    };
    add_owned_files(&header, owned);

    let mut purl = Purl::new(PackageType::Rpm, name.as_str())
        .version(version.as_str())
        .qualifier("arch", arch.clone().unwrap_or_default())
        .qualifier(
            "epoch",
            epoch.map(|epoch| epoch.to_string()).unwrap_or_default(),
        )
        .qualifier("upstream", source_rpm.map(text).unwrap_or_default());
    if let Some(os) = os {
        let vendor = if os.id == "rhel" {
            "redhat"
        } else {
            os.id.as_str()
        };
        purl = purl
            .namespace(vendor)
            .qualifier("distro", crate::dpkg::distro_qualifier(os));
    }
    let purl = purl.to_string();
    Ok(Some(Package {
        source_name,
        source_version,
        epoch,
        arch,
        license,
        ..package(
            PackageType::Rpm,
            name,
            version,
            purl,
            file.layer_digest.clone(),
            file.path.clone(),
        )
    }))
}

/// Splits `name-version-release.src.rpm` into the name and `version-release`.
pub fn split_source_rpm(source_rpm: &str) -> Option<(String, String)> {
    let stem = source_rpm
        .strip_suffix(".src.rpm")
        .or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))
        .unwrap_or(source_rpm);
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_owned(), format!("{version}-{release}")))
}

/// Adds the package's files (directory names indexed by base names, or the legacy
/// full-path list) to `owned`.
fn add_owned_files(header: &Header<'_>, owned: &mut HashSet<String>) {
    let directories: Vec<&[u8]> = header.strings(tag::DIRNAMES).collect();
    if directories.is_empty() {
        for path in header.strings(tag::OLDFILENAMES) {
            owned.insert(text(path));
        }
        return;
    }
    for (base, index) in header
        .strings(tag::BASENAMES)
        .zip(header.int32s(tag::DIRINDEXES))
    {
        let Some(directory) = directories.get(index as usize) else {
            continue;
        };
        let mut path = String::with_capacity(directory.len() + base.len());
        path.push_str(&String::from_utf8_lossy(directory));
        path.push_str(&String::from_utf8_lossy(base));
        owned.insert(path);
    }
}

#[cfg(test)]
mod tests;
