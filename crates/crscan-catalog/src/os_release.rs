//! Finds the operating system an image is built on, so that OS packages get the right
//! Package URL namespace and distro qualifier, and the vulnerability matcher the right
//! advisory feed.
//!
//! The source of truth is `os-release`
//! (<https://www.freedesktop.org/software/systemd/man/latest/os-release.html>), read from
//! `/etc/os-release` and then `/usr/lib/os-release`. Older and minimal images lack it, so
//! distribution-specific release files follow as fallbacks (`/etc/alpine-release`,
//! `/etc/lsb-release`, `/etc/redhat-release` and its relatives, `/etc/debian_version`),
//! and a distroless image that only has dpkg `status.d/` entries is taken as Debian.
//! Every answer not read from an os-release file is marked `inferred`. An image with none
//! of these files has no OS, which is a valid answer.

use crscan_model::{FileView, Keep, OsRelease};

/// The os-release files, in the order the specification says to look at them.
const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Release files written by the Red Hat family, one line such as
/// `CentOS Linux release 7.9.2009 (Core)`. The most specific come first, because
/// `/etc/redhat-release` is often a link to one of the others.
const REDHAT_FAMILY_PATHS: [&str; 7] = [
    "/etc/centos-release",
    "/etc/rocky-release",
    "/etc/almalinux-release",
    "/etc/oracle-release",
    "/etc/fedora-release",
    "/etc/redhat-release",
    "/etc/system-release",
];

const ALPINE_RELEASE: &str = "/etc/alpine-release";
const LSB_RELEASE: &str = "/etc/lsb-release";
const DEBIAN_VERSION: &str = "/etc/debian_version";
const DPKG_STATUS_DIR: &str = "/var/lib/dpkg/status.d/";

/// Whether OS detection needs the file at `path`.
pub fn interest(path: &str) -> Keep {
    let wanted = OS_RELEASE_PATHS.contains(&path)
        || REDHAT_FAMILY_PATHS.contains(&path)
        || path == ALPINE_RELEASE
        || path == LSB_RELEASE
        || path == DEBIAN_VERSION
        || path.starts_with(DPKG_STATUS_DIR);
    if wanted { Keep::Yes } else { Keep::No }
}

/// The OS of the image, if any.
pub fn detect(view: &FileView) -> Option<OsRelease> {
    for path in OS_RELEASE_PATHS {
        if let Some(file) = view.get(path) {
            return Some(parse_os_release(&String::from_utf8_lossy(&file.contents)));
        }
    }
    let text = |path: &str| {
        view.get(path)
            .map(|file| String::from_utf8_lossy(&file.contents).into_owned())
    };
    let mut found = if let Some(version) = text(ALPINE_RELEASE) {
        Some(release("alpine", first_line(&version)))
    } else if let Some(lsb) = text(LSB_RELEASE).and_then(|lsb| parse_lsb_release(&lsb)) {
        Some(lsb)
    } else if let Some(redhat) = REDHAT_FAMILY_PATHS
        .iter()
        .find_map(|path| text(path).and_then(|line| parse_redhat_release(&line)))
    {
        Some(redhat)
    } else if let Some(version) = text(DEBIAN_VERSION) {
        Some(parse_debian_version(first_line(&version)))
    } else if view.files_under(DPKG_STATUS_DIR).next().is_some() {
        Some(release("debian", ""))
    } else {
        None
    };
    if let Some(os) = &mut found {
        os.inferred = true;
    }
    found
}

fn release(id: &str, version_id: &str) -> OsRelease {
    OsRelease {
        id: id.to_owned(),
        version_id: version_id.to_owned(),
        ..OsRelease::default()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

/// Parses an os-release file: `KEY=value` lines, values optionally in single or
/// double quotes with backslash escapes, `#` comments. A missing `ID` means `linux`,
/// as the specification says.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => os.id = value.to_ascii_lowercase(),
            "VERSION_ID" => os.version_id = value,
            "VERSION_CODENAME" if !value.is_empty() => os.codename = Some(value),
            "PRETTY_NAME" if !value.is_empty() => os.pretty_name = Some(value),
            "PLATFORM_ID" if !value.is_empty() => os.platform_id = Some(value),
            "ID_LIKE" => {
                os.id_like = value
                    .split_ascii_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect();
            }
            _ => {}
        }
    }
    if os.id.is_empty() {
        os.id = "linux".to_owned();
    }
    os
}

/// Removes shell-style quotes and backslash escapes from an os-release value.
fn unquote(raw: &str) -> String {
    let Some(quote) = raw.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            c if c == quote => break,
            c => out.push(c),
        }
    }
    out
}

/// Parses `/etc/lsb-release` (`DISTRIB_ID=Ubuntu`, `DISTRIB_RELEASE=22.04`,
/// `DISTRIB_CODENAME=jammy`).
fn parse_lsb_release(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "DISTRIB_ID" => os.id = value.to_ascii_lowercase(),
            "DISTRIB_RELEASE" => os.version_id = value,
            "DISTRIB_CODENAME" if !value.is_empty() => os.codename = Some(value),
            "DISTRIB_DESCRIPTION" if !value.is_empty() => os.pretty_name = Some(value),
            _ => {}
        }
    }
    (!os.id.is_empty()).then_some(os)
}

/// Parses a Red Hat family release line such as `Rocky Linux release 9.3 (Blue Onyx)`.
fn parse_redhat_release(text: &str) -> Option<OsRelease> {
    let line = first_line(text);
    let lower = line.to_ascii_lowercase();
    const NAMES: [(&str, &str); 9] = [
        ("centos stream", "centos"),
        ("centos", "centos"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("oracle", "ol"),
        ("fedora", "fedora"),
        ("amazon", "amzn"),
        ("red hat enterprise", "rhel"),
        ("red hat", "rhel"),
    ];
    let id = NAMES
        .iter()
        .find(|(prefix, _)| lower.starts_with(prefix))
        .map(|(_, id)| *id)?;
    let mut words = line.split_ascii_whitespace();
    let version = words
        .by_ref()
        .find(|word| word.eq_ignore_ascii_case("release"))
        .and_then(|_| words.next())
        .unwrap_or("");
    // os-release gives CentOS only its major version (`7`, not `7.9.2009`).
    let version = if id == "centos" {
        version.split('.').next().unwrap_or("")
    } else {
        version
    };
    let mut os = release(id, version);
    os.pretty_name = Some(line.to_owned());
    Some(os)
}

/// Parses `/etc/debian_version`: a number such as `12.5` (os-release gives Debian
/// only its major version) or a codename such as `bookworm/sid` for testing.
fn parse_debian_version(text: &str) -> OsRelease {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        release("debian", text.split('.').next().unwrap_or(""))
    } else {
        let mut os = release("debian", "");
        let codename = text.split('/').next().unwrap_or("");
        if !codename.is_empty() {
            os.codename = Some(codename.to_owned());
        }
        os
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{image_file, view_of};

    fn view(files: &[(&str, &str)]) -> FileView {
        view_of(files.iter().map(|(path, text)| image_file(path, text)))
    }

    #[test]
    fn reads_os_release_with_quotes_and_links() {
        let mut files = view(&[(
            "/usr/lib/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n# comment\n",
        )]);
        files.insert_symlink("/etc/os-release".into(), "../usr/lib/os-release".into());
        let os = detect(&files).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(!os.inferred);
    }

    #[test]
    fn etc_wins_over_usr_lib() {
        let files = view(&[
            (
                "/etc/os-release",
                "ID=ubuntu\nID_LIKE=debian\nVERSION_ID='22.04'\n",
            ),
            ("/usr/lib/os-release", "ID=debian\n"),
        ]);
        let os = detect(&files).unwrap();
        assert_eq!(os.id, "ubuntu");
        assert_eq!(os.version_id, "22.04");
        assert_eq!(os.id_like, vec!["debian".to_owned()]);
    }

    #[test]
    fn missing_id_means_linux() {
        let os = parse_os_release("VERSION_CODENAME=bookworm\n");
        assert_eq!(os.id, "linux");
        assert_eq!(os.codename.as_deref(), Some("bookworm"));
        assert_eq!(parse_os_release("ID=\"a\\\"b\"").id, "a\"b");
    }

    #[test]
    fn falls_back_to_release_files() {
        let alpine = detect(&view(&[("/etc/alpine-release", "3.19.1\n")])).unwrap();
        assert_eq!(
            (alpine.id.as_str(), alpine.version_id.as_str()),
            ("alpine", "3.19.1")
        );
        assert!(alpine.inferred);

        let centos = detect(&view(&[(
            "/etc/redhat-release",
            "CentOS Linux release 7.9.2009 (Core)\n",
        )]))
        .unwrap();
        assert_eq!(
            (centos.id.as_str(), centos.version_id.as_str()),
            ("centos", "7")
        );

        let rhel = detect(&view(&[(
            "/etc/redhat-release",
            "Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
        )]))
        .unwrap();
        assert_eq!(
            (rhel.id.as_str(), rhel.version_id.as_str()),
            ("rhel", "8.9")
        );

        let amazon = detect(&view(&[(
            "/etc/system-release",
            "Amazon Linux release 2 (Karoo)",
        )]))
        .unwrap();
        assert_eq!(
            (amazon.id.as_str(), amazon.version_id.as_str()),
            ("amzn", "2")
        );

        let ubuntu = detect(&view(&[(
            "/etc/lsb-release",
            "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\nDISTRIB_CODENAME=bionic\n",
        )]))
        .unwrap();
        assert_eq!(
            (ubuntu.id.as_str(), ubuntu.version_id.as_str()),
            ("ubuntu", "18.04")
        );
        assert_eq!(ubuntu.codename.as_deref(), Some("bionic"));

        let debian = detect(&view(&[("/etc/debian_version", "12.5\n")])).unwrap();
        assert_eq!(
            (debian.id.as_str(), debian.version_id.as_str()),
            ("debian", "12")
        );
        let sid = detect(&view(&[("/etc/debian_version", "trixie/sid\n")])).unwrap();
        assert_eq!(
            (sid.version_id.as_str(), sid.codename.as_deref()),
            ("", Some("trixie"))
        );
    }

    #[test]
    fn distroless_is_inferred_debian() {
        let os = detect(&view(&[(
            "/var/lib/dpkg/status.d/base",
            "Package: base-files\nVersion: 12.4\n",
        )]))
        .unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "");
        assert!(os.inferred);
        let with_version = detect(&view(&[
            ("/var/lib/dpkg/status.d/base", "Package: base-files\n"),
            ("/etc/debian_version", "11.9\n"),
        ]))
        .unwrap();
        assert_eq!(with_version.version_id, "11");
        assert!(with_version.inferred);
    }

    #[test]
    fn no_os_is_an_answer() {
        assert_eq!(detect(&view(&[("/app/main", "x")])), None);
        assert_eq!(
            detect(&view(&[("/etc/redhat-release", "Something else\n")])),
            None
        );
    }

    #[test]
    fn interest_covers_the_release_files() {
        assert_eq!(interest("/etc/os-release"), Keep::Yes);
        assert_eq!(interest("/etc/centos-release"), Keep::Yes);
        assert_eq!(interest("/var/lib/dpkg/status.d/libc6"), Keep::Yes);
        assert_eq!(interest("/etc/passwd"), Keep::No);
    }
}
