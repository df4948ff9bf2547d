//! The one merge of what the detectors found in an image into its package list.
//!
//! The flattened view the detectors read already honours each layer's whiteouts and
//! opaque directories (`crscan-image` applies the layers in order), so a package
//! whose files a later layer deleted is never found. What is left to merge is the
//! same package found twice: installed and in a lockfile (`node_modules` and
//! `package-lock.json`), as a `dist-info` and an `egg-info`, in a binary and in a
//! lockfile. Those become one package with every location, so that the matcher
//! reports one finding per flaw and package, on every surface.

use std::collections::HashMap;

use crscan_model::{Package, PackageType};

/// Folds packages that are the same package (same type, name, version and package
/// URL) found in several places into one, with the locations of all of them in the
/// order found. The first one found keeps its place and its layer; it is a
/// development-only dependency only when every place says so. OS packages are
/// never folded: their database lists each installed package once, and two entries
/// differ in what the purl does not say (the architecture of a multi-arch install).
pub fn fold_packages(packages: Vec<Package>) -> Vec<Package> {
    let mut folded: Vec<Package> = Vec::with_capacity(packages.len());
    let mut index: HashMap<(PackageType, String, String, String), usize> = HashMap::new();
    for package in packages {
        if package.package_type.is_os() {
            folded.push(package);
            continue;
        }
        let key = (
            package.package_type,
            package.name.clone(),
            package.version.clone(),
            package.purl.clone(),
        );
        match index.get(&key) {
            Some(&position) => {
                let kept = &mut folded[position];
                for location in package.locations {
                    if !kept.locations.contains(&location) {
                        kept.locations.push(location);
                    }
                }
                kept.dev &= package.dev;
                if kept.license.is_none() {
                    kept.license = package.license;
                }
                if kept.layer_digest.is_none() {
                    kept.layer_digest = package.layer_digest;
                }
            }
            None => {
                index.insert(key, folded.len());
                folded.push(package);
            }
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npm(location: &str, dev: bool) -> Package {
        Package {
            name: "lodash".to_owned(),
            version: "4.17.15".to_owned(),
            package_type: PackageType::Npm,
            purl: "pkg:npm/lodash@4.17.15".to_owned(),
            source_name: None,
            source_version: None,
            epoch: None,
            arch: None,
            license: None,
            layer_digest: None,
            locations: vec![location.to_owned()],
            dev,
        }
    }

    #[test]
    fn the_same_package_in_two_places_is_one_package() {
        let mut other = npm("/b/package-lock.json", false);
        other.version = "4.17.21".to_owned();
        other.purl = "pkg:npm/lodash@4.17.21".to_owned();
        let folded = fold_packages(vec![
            npm("/a/node_modules/lodash/package.json", false),
            other,
            npm("/a/package-lock.json", true),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(
            folded[0].locations,
            [
                "/a/node_modules/lodash/package.json",
                "/a/package-lock.json"
            ]
        );
        assert!(!folded[0].dev, "installed, so not development-only");
        assert_eq!(folded[1].version, "4.17.21");
    }

    #[test]
    fn os_packages_are_never_folded() {
        let mut first = npm("/var/lib/dpkg/status", false);
        first.package_type = PackageType::Deb;
        let mut second = first.clone();
        second.arch = Some("i386".to_owned());
        assert_eq!(fold_packages(vec![first, second]).len(), 2);
    }
}
