//! Ecosystem strings and package names as the database keys them.
//!
//! Feeds spell the same release several ways (`Ubuntu:22.04:LTS`, `jammy`,
//! `bookworm`, `v3.19`), and inventories spell it yet another way (`ubuntu` `22.04`).
//! This module turns all of them into one key per release, and normalises package
//! names the way each registry compares them, so that a lookup is one exact match.

use crscan_model::{OsRelease, PackageType, pep503_normalize};

/// Debian release codenames and their OSV ecosystem versions.
const DEBIAN_RELEASES: &[(&str, &str)] = &[
    ("woody", "3.0"),
    ("sarge", "3.1"),
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
];

/// Ubuntu release codenames and their versions.
const UBUNTU_RELEASES: &[(&str, &str)] = &[
    ("lucid", "10.04"),
    ("precise", "12.04"),
    ("trusty", "14.04"),
    ("utopic", "14.10"),
    ("vivid", "15.04"),
    ("wily", "15.10"),
    ("xenial", "16.04"),
    ("yakkety", "16.10"),
    ("zesty", "17.04"),
    ("artful", "17.10"),
    ("bionic", "18.04"),
    ("cosmic", "18.10"),
    ("disco", "19.04"),
    ("eoan", "19.10"),
    ("focal", "20.04"),
    ("groovy", "20.10"),
    ("hirsute", "21.04"),
    ("impish", "21.10"),
    ("jammy", "22.04"),
    ("kinetic", "22.10"),
    ("lunar", "23.04"),
    ("mantic", "23.10"),
    ("noble", "24.04"),
    ("oracular", "24.10"),
    ("plucky", "25.04"),
    ("questing", "25.10"),
];

/// `Debian:<version>` for a Debian codename (`bookworm` → `Debian:12`).
pub fn debian_ecosystem_for_codename(codename: &str) -> Option<String> {
    DEBIAN_RELEASES
        .iter()
        .find(|(name, _)| *name == codename)
        .map(|(_, version)| format!("Debian:{version}"))
}

/// The Ubuntu version of a codename (`jammy` → `22.04`).
pub fn ubuntu_version_for_codename(codename: &str) -> Option<&'static str> {
    UBUNTU_RELEASES
        .iter()
        .find(|(name, _)| *name == codename)
        .map(|(_, version)| *version)
}

/// The database key of an ecosystem string from a feed.
///
/// Ubuntu's `:LTS` suffix is dropped (`Ubuntu:22.04:LTS` → `Ubuntu:22.04`,
/// `Ubuntu:Pro:18.04:LTS` → `Ubuntu:Pro:18.04`), and Alpine releases get their `v`
/// (`Alpine:3.19` → `Alpine:v3.19`). Everything else is kept as written.
pub fn normalize_ecosystem(ecosystem: &str) -> String {
    let ecosystem = ecosystem.trim();
    if let Some(rest) = ecosystem.strip_prefix("Ubuntu:") {
        let rest = rest.strip_suffix(":LTS").unwrap_or(rest);
        return format!("Ubuntu:{rest}");
    }
    if let Some(rest) = ecosystem.strip_prefix("Alpine:")
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return format!("Alpine:v{rest}");
    }
    ecosystem.to_owned()
}

/// The part of an ecosystem before the first `:` (`Debian:12` → `Debian`).
pub fn ecosystem_family(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// Normalises a package name the way its ecosystem compares names: PEP 503 for PyPI
/// (lower case, runs of `-_.` become one `-`), lower case for NuGet and Packagist,
/// and exactly as written elsewhere (npm, Go module paths, crates.io, Maven, OS
/// source packages).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let name = name.trim();
    match ecosystem_family(ecosystem) {
        "PyPI" => pep503_normalize(name),
        "NuGet" | "Packagist" => name.to_lowercase(),
        _ => name.to_owned(),
    }
}

/// The ecosystem key a language package is looked up under; `None` for OS packages,
/// whose ecosystem comes from the OS release.
pub fn language_ecosystem(package_type: PackageType) -> Option<&'static str> {
    match package_type {
        PackageType::Pypi => Some("PyPI"),
        PackageType::Npm => Some("npm"),
        PackageType::Cargo => Some("crates.io"),
        PackageType::Golang => Some("Go"),
        PackageType::Maven => Some("Maven"),
        PackageType::Gem => Some("RubyGems"),
        PackageType::Composer => Some("Packagist"),
        PackageType::Nuget => Some("NuGet"),
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => None,
    }
}

/// The ecosystem keys an OS release's packages are looked up under, in order of
/// preference. Debian 12 → `Debian:12`; Ubuntu 22.04 → `Ubuntu:22.04` and
/// `Ubuntu:Pro:22.04` (Canonical publishes fixes for releases past standard support
/// under Pro); Alpine 3.19.1 → `Alpine:v3.19`; AlmaLinux 9.2 → `AlmaLinux:9`;
/// Rocky Linux 9.2 → `Rocky Linux:9`; Red Hat Enterprise Linux 9.2 (and CentOS
/// Stream 9) → the `Red Hat:enterprise_linux:9::*` repositories of the CSAF-derived
/// records; SLES 15.5 → `SUSE:Linux Enterprise Server 15 SP5` and its Basesystem
/// module; openSUSE Leap 15.5 →
/// `openSUSE:Leap 15.5`. Empty for an OS without feeds.
pub fn os_ecosystems(os: &OsRelease) -> Vec<String> {
    let version = os.version_id.trim();
    match os.id.as_str() {
        "almalinux" => red_hat_major(os)
            .map(|major| vec![format!("AlmaLinux:{major}")])
            .unwrap_or_default(),
        "rocky" => red_hat_major(os)
            .map(|major| vec![format!("Rocky Linux:{major}")])
            .unwrap_or_default(),
        "rhel" | "centos" => red_hat_major(os)
            .map(|major| {
                RED_HAT_REPOSITORIES
                    .iter()
                    .map(|repository| format!("Red Hat:enterprise_linux:{major}::{repository}"))
                    .collect()
            })
            .unwrap_or_default(),
        "sles" | "sled" => {
            let mut parts = version.split('.');
            let release = match (parts.next(), parts.next()) {
                (Some(major), Some(pack)) if !major.is_empty() && pack != "0" => {
                    format!("{major} SP{pack}")
                }
                (Some(major), _) if !major.is_empty() => major.to_owned(),
                _ => return Vec::new(),
            };
            // SUSE's records name the product and, for most packages of a container
            // image, the Basesystem module they ship in.
            vec![
                format!("SUSE:Linux Enterprise Server {release}"),
                format!("SUSE:Linux Enterprise Module for Basesystem {release}"),
            ]
        }
        "opensuse-leap" if !version.is_empty() => vec![format!("openSUSE:Leap {version}")],
        "opensuse-tumbleweed" => vec!["openSUSE:Tumbleweed".to_owned()],
        "debian" => {
            let major = version.split('.').next().unwrap_or("");
            if !major.is_empty() {
                vec![format!("Debian:{major}")]
            } else {
                os.codename
                    .as_deref()
                    .and_then(debian_ecosystem_for_codename)
                    .into_iter()
                    .collect()
            }
        }
        "ubuntu" => {
            let version = if version.is_empty() {
                os.codename
                    .as_deref()
                    .and_then(ubuntu_version_for_codename)
                    .unwrap_or("")
            } else {
                version
            };
            if version.is_empty() {
                Vec::new()
            } else {
                vec![format!("Ubuntu:{version}"), format!("Ubuntu:Pro:{version}")]
            }
        }
        "alpine" => {
            let mut parts = version.split('.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor)) if !major.is_empty() && !minor.is_empty() => {
                    vec![format!("Alpine:v{major}.{minor}")]
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The repositories of a Red Hat Enterprise Linux major release that its
/// CSAF-derived OSV records name (`Red Hat:enterprise_linux:9::appstream`).
const RED_HAT_REPOSITORIES: [&str; 4] = ["baseos", "appstream", "crb", "supplementary"];

/// The major release of a Red Hat family OS: the digits before the first `.` of
/// `VERSION_ID`, else of `PLATFORM_ID` (`platform:el9` → `9`).
fn red_hat_major(os: &OsRelease) -> Option<String> {
    let from_version = os.version_id.trim().split('.').next().unwrap_or("");
    if !from_version.is_empty() && from_version.bytes().all(|b| b.is_ascii_digit()) {
        return Some(from_version.to_owned());
    }
    let platform = os.platform_id.as_deref()?.trim();
    let major = platform.strip_prefix("platform:el")?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: &str) -> OsRelease {
        OsRelease {
            id: id.to_owned(),
            version_id: version.to_owned(),
            ..OsRelease::default()
        }
    }

    #[test]
    fn os_releases_map_to_osv_ecosystems() {
        assert_eq!(os_ecosystems(&os("debian", "12")), ["Debian:12"]);
        assert_eq!(os_ecosystems(&os("alpine", "3.19.1")), ["Alpine:v3.19"]);
        assert_eq!(
            os_ecosystems(&os("ubuntu", "22.04")),
            ["Ubuntu:22.04", "Ubuntu:Pro:22.04"]
        );
        let mut sid = os("debian", "");
        sid.codename = Some("bookworm".to_owned());
        assert_eq!(os_ecosystems(&sid), ["Debian:12"]);
        assert_eq!(os_ecosystems(&os("almalinux", "9.2")), ["AlmaLinux:9"]);
        assert_eq!(os_ecosystems(&os("rocky", "8.10")), ["Rocky Linux:8"]);
        assert_eq!(
            os_ecosystems(&os("rhel", "9.3"))[0],
            "Red Hat:enterprise_linux:9::baseos"
        );
        let mut platform_only = os("almalinux", "");
        platform_only.platform_id = Some("platform:el10".to_owned());
        assert_eq!(os_ecosystems(&platform_only), ["AlmaLinux:10"]);
        assert_eq!(
            os_ecosystems(&os("sles", "15.5")),
            [
                "SUSE:Linux Enterprise Server 15 SP5",
                "SUSE:Linux Enterprise Module for Basesystem 15 SP5"
            ]
        );
        assert_eq!(
            os_ecosystems(&os("opensuse-leap", "15.5")),
            ["openSUSE:Leap 15.5"]
        );
        assert!(os_ecosystems(&os("fedora", "40")).is_empty());
    }

    #[test]
    fn feed_ecosystems_normalise() {
        assert_eq!(normalize_ecosystem("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(
            normalize_ecosystem("Ubuntu:Pro:18.04:LTS"),
            "Ubuntu:Pro:18.04"
        );
        assert_eq!(normalize_ecosystem("Alpine:3.19"), "Alpine:v3.19");
        assert_eq!(normalize_ecosystem("Debian:12"), "Debian:12");
    }

    #[test]
    fn names_normalise_per_registry() {
        assert_eq!(normalize_name("PyPI", "Jinja2"), "jinja2");
        assert_eq!(
            normalize_name("PyPI", "zope.interface__x"),
            "zope-interface-x"
        );
        assert_eq!(normalize_name("npm", "@Scope/Pkg"), "@Scope/Pkg");
        assert_eq!(normalize_name("Go", "github.com/A/b"), "github.com/A/b");
    }
}
