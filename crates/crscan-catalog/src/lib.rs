//! The package inventory of an image: OS detection plus one detector per package
//! database, lockfile or binary format, all reading a [`FileView`].
//!
//! Architecture invariant: no I/O and no failure for bad input. A detector that meets
//! a record it cannot use reports a [`Diagnostic`] and goes on; one corrupt stanza
//! never hides the good packages around it. Detectors declare which files they need
//! (by path, or by magic bytes for binaries and archives) through [`Catalog`]'s
//! [`FileInterest`], so the image reader keeps only those.

use std::collections::HashSet;

use crscan_model::{
    Diagnostic, Digest, FileInterest, FileView, ImageFile, Inventory, Keep, OsRelease, Package,
    PackageType,
};

pub mod apk;
pub mod dotnet;
pub mod dpkg;
pub mod golang;
pub mod java;
mod merge;
pub mod npm;
pub mod os_release;
pub mod php;
pub mod python;
pub mod rpm;
pub mod ruby;
pub mod rust;
#[cfg(test)]
pub(crate) mod test_support;

pub use merge::fold_packages;

/// What one detector found.
#[derive(Debug, Default)]
pub struct Detected {
    pub packages: Vec<Package>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files installed by OS packages (absolute paths). Language packages found in
    /// these files are not reported a second time.
    pub owned_files: HashSet<String>,
}

impl Detected {
    /// Records a skipped record.
    pub fn diagnostic(&mut self, detector: &str, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            detector: detector.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

/// Most packages one lockfile contributes; past it the rest of the file is skipped
/// with a diagnostic, so that a crafted lockfile cannot grow the inventory (and the
/// parse structures behind it) without end.
pub const MAX_PACKAGES_PER_FILE: usize = 50_000;

/// Reports a file the image reader cut at its per-file limit (`truncated`) to a
/// detector that can only use whole files: one `skipped_over_limit` diagnostic, and
/// true so that the detector skips the file and goes on with the rest of the image.
pub(crate) fn skipped_over_limit(detector: &str, file: &ImageFile, out: &mut Detected) -> bool {
    if !file.truncated {
        return false;
    }
    out.diagnostic(
        detector,
        &file.path,
        format!(
            "skipped_over_limit: {} is larger than the per-file limit of {} bytes (limit max_file_bytes); the file is skipped and the rest of the image is used",
            file.path,
            file.contents.len()
        ),
    );
    true
}

/// A package with only the fields every detector fills: found at `location` in the
/// layer `layer_digest`, not development-only, and without source, epoch,
/// architecture or licence (callers set those they know).
pub(crate) fn package(
    package_type: PackageType,
    name: impl Into<String>,
    version: impl Into<String>,
    purl: String,
    layer_digest: Option<Digest>,
    location: String,
) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        package_type,
        purl,
        source_name: None,
        source_version: None,
        epoch: None,
        arch: None,
        license: None,
        layer_digest,
        locations: vec![location],
        dev: false,
    }
}

/// A language package found in `file`: it belongs to the layer that wrote the file.
pub(crate) fn language_package(
    package_type: PackageType,
    name: impl Into<String>,
    version: impl Into<String>,
    purl: String,
    file: &ImageFile,
) -> Package {
    package(
        package_type,
        name,
        version,
        purl,
        file.layer_digest.clone(),
        file.path.clone(),
    )
}

/// [`Keep::Yes`] when a detector wants a file by its path, else [`Keep::No`].
pub(crate) fn keep_if(wanted: bool) -> Keep {
    if wanted { Keep::Yes } else { Keep::No }
}

/// Bytes from a package database as text, invalid UTF-8 replaced.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One package database, lockfile or binary format.
pub trait Detector: Send + Sync {
    /// Short name used in diagnostics (`dpkg`, `npm`).
    fn name(&self) -> &'static str;

    /// Whether the detector needs the file at `path`.
    fn interest(&self, path: &str) -> Keep;

    /// Whether the detector needs a file whose first bytes are `head` (at most
    /// [`MAGIC_LEN`] bytes). Only binary and archive detectors use this.
    fn wants_magic(&self, _path: &str, _head: &[u8]) -> bool {
        false
    }

    /// Finds the packages in `view`.
    fn detect(&self, view: &FileView, os: Option<&OsRelease>, out: &mut Detected);
}

/// Leading bytes the image reader shows to [`Detector::wants_magic`].
pub const MAGIC_LEN: usize = 8;

/// Every detector crscan has, OS package databases first.
pub struct Catalog {
    detectors: Vec<Box<dyn Detector>>,
}

/// Choices that change what the detectors report.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogOptions {
    /// Name Java archives without `pom.properties` or a usable manifest after their
    /// file name (`name-1.2.3.jar` → `name:name` 1.2.3). Off by default: the group
    /// id is a guess.
    pub java_identify_by_filename: bool,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog::with_options(CatalogOptions::default())
    }
}

impl Catalog {
    /// A catalog with every detector, configured by `options`.
    pub fn with_options(options: CatalogOptions) -> Catalog {
        let java = java::JavaDetector {
            options: java::JavaOptions {
                identify_by_filename: options.java_identify_by_filename,
                ..java::JavaOptions::default()
            },
        };
        Catalog {
            detectors: vec![
                Box::new(dpkg::DpkgDetector),
                Box::new(apk::ApkDetector),
                Box::new(rpm::RpmDetector),
                Box::new(python::PythonDetector),
                Box::new(npm::NpmDetector),
                Box::new(golang::GoBinaryDetector),
                Box::new(rust::RustDetector),
                Box::new(java),
                Box::new(ruby::RubyDetector),
                Box::new(php::PhpDetector),
                Box::new(dotnet::DotnetDetector),
            ],
        }
    }

    /// Runs OS detection and every detector over `view`, and folds the same package
    /// found by two detectors into one ([`fold_packages`]).
    pub fn inventory(&self, view: &FileView) -> Inventory {
        let os = os_release::detect(view);
        let mut all = Detected::default();
        for detector in &self.detectors {
            detector.detect(view, os.as_ref(), &mut all);
        }
        let owned = std::mem::take(&mut all.owned_files);
        let packages = fold_packages(
            all.packages
                .into_iter()
                .filter(|package| {
                    package.package_type.is_os()
                        || package.locations.is_empty()
                        || !package.locations.iter().all(|path| owned.contains(path))
                })
                .collect(),
        );
        Inventory {
            os,
            packages,
            diagnostics: all.diagnostics,
        }
    }
}

impl FileInterest for Catalog {
    fn by_path(&self, path: &str) -> Keep {
        let os_keep = os_release::interest(path);
        self.detectors
            .iter()
            .map(|detector| detector.interest(path))
            .fold(os_keep, Ord::max)
    }

    fn magic_len(&self) -> usize {
        MAGIC_LEN
    }

    fn by_magic(&self, path: &str, head: &[u8]) -> bool {
        self.detectors
            .iter()
            .any(|detector| detector.wants_magic(path, head))
    }
}
