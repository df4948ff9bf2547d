//! Ruby gems: installed gem specifications (`…/specifications/NAME-VERSION.gemspec`,
//! including `specifications/default/`) and Bundler's `Gemfile.lock`.
//!
//! An installed gemspec is Ruby code that RubyGems writes in a fixed shape
//! (`s.name = "rack".freeze`, `s.version = "2.2.3"`); the two assignments are read
//! textually, falling back to the file name. `Gemfile.lock` lists resolved gems under
//! the `specs:` of its `GEM`, `GIT` and `PATH` sections, four spaces in, as
//! `name (version)` or `name (version-platform)`
//! (<https://bundler.io/guides/bundler_lock_file.html> is not a formal spec; the
//! layout here is what Bundler writes).

use crscan_model::{FileView, ImageFile, Keep, OsRelease, Package, PackageType, Purl};

use crate::{Detected, Detector, keep_if, language_package};

/// Finds gems in installed specifications and Gemfile.lock files.
pub struct RubyDetector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gemspec,
    Lockfile,
}

fn kind(path: &str) -> Option<Kind> {
    let (dir, name) = path.rsplit_once('/')?;
    if name == "Gemfile.lock" {
        return Some(Kind::Lockfile);
    }
    if name.ends_with(".gemspec")
        && (dir.ends_with("/specifications") || dir.ends_with("/specifications/default"))
    {
        return Some(Kind::Gemspec);
    }
    None
}

impl Detector for RubyDetector {
    fn name(&self) -> &'static str {
        "ruby"
    }

    fn interest(&self, path: &str) -> Keep {
        keep_if(kind(path).is_some())
    }

    fn detect(&self, view: &FileView, _os: Option<&OsRelease>, out: &mut Detected) {
        for file in view.files() {
            if kind(&file.path).is_some() && crate::skipped_over_limit(self.name(), file, out) {
                continue;
            }
            match kind(&file.path) {
                Some(Kind::Gemspec) => gemspec(file, out),
                Some(Kind::Lockfile) => lockfile(file, out),
                None => {}
            }
        }
    }
}

fn gem(file: &ImageFile, name: &str, version: &str) -> Package {
    let purl = Purl::new(PackageType::Gem, name).version(version);
    language_package(PackageType::Gem, name, version, purl.to_string(), file)
}

/// The string assigned to `receiver.FIELD` on this line (`s.name = "x".freeze`).
fn assigned<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let dot = line.find('.')?;
    let receiver = &line[..dot];
    if receiver.is_empty()
        || !receiver
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let rest = line[dot + 1..].strip_prefix(field)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = &rest[1..];
    let end = inner.find(quote)?;
    Some(&inner[..end])
}

/// Reads an installed gem specification.
fn gemspec(file: &ImageFile, out: &mut Detected) {
    let text = String::from_utf8_lossy(&file.contents);
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if name.is_none() {
            name = assigned(line, "name");
        }
        if version.is_none() {
            version = assigned(line, "version");
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    // RubyGems names the file NAME-VERSION[-PLATFORM].gemspec.
    let file_name = file.path.rsplit('/').next().unwrap_or_default();
    let stem = file_name.strip_suffix(".gemspec").unwrap_or(file_name);
    let from_file_name = stem
        .match_indices('-')
        .map(|(at, _)| at)
        .find(|at| stem[at + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|at| (&stem[..at], &stem[at + 1..]));
    let name = name.or(from_file_name.map(|(name, _)| name));
    let version = version.or(from_file_name.map(|(_, version)| strip_platform(version)));
    match (name, version) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
            out.packages.push(gem(file, name, version));
        }
        _ => out.diagnostic("ruby", &file.path, "gemspec without a name and version"),
    }
}

/// Gem versions never contain `-`; what follows one is a platform (`x86_64-linux`).
fn strip_platform(version: &str) -> &str {
    version.split('-').next().unwrap_or(version)
}

/// Reads a `Gemfile.lock`.
fn lockfile(file: &ImageFile, out: &mut Detected) {
    let text = String::from_utf8_lossy(&file.contents);
    let mut section = "";
    let mut in_specs = false;
    let mut seen_header = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let is_header = line
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b' ' || b == b'_');
            if !is_header {
                if !seen_header {
                    out.diagnostic(
                        "ruby",
                        &file.path,
                        format!("not a Gemfile.lock: it starts with {line:?}"),
                    );
                    return;
                }
                out.diagnostic("ruby", &file.path, format!("unexpected line {line:?}"));
                continue;
            }
            seen_header = true;
            section = line;
            in_specs = false;
            continue;
        }
        if !matches!(section, "GEM" | "GIT" | "PATH" | "PLUGIN SOURCE") {
            continue;
        }
        if line == "  specs:" {
            in_specs = true;
            continue;
        }
        if !line.starts_with("    ") || line.starts_with("     ") {
            if !line.starts_with("    ") {
                in_specs = false;
            }
            continue;
        }
        if !in_specs {
            continue;
        }
        let spec = line.trim();
        let parsed = spec.split_once(" (").and_then(|(name, rest)| {
            let version = rest.strip_suffix(')')?;
            Some((name, strip_platform(version)))
        });
        match parsed {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                out.packages.push(gem(file, name, version));
            }
            _ => out.diagnostic(
                "ruby",
                &file.path,
                format!("spec without a version {spec:?}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{detect, image_file};

    #[test]
    fn reads_installed_gemspecs() {
        let files = [
            image_file(
                "/usr/local/bundle/specifications/rack-2.2.3.gemspec",
                "# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\n  s.metadata = { \"name\" => \"x\" }\nend\n",
            ),
            image_file(
                "/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
                "garbage",
            ),
            image_file(
                "/usr/lib/ruby/gems/3.1.0/specifications/nokogiri-1.13.3-x86_64-linux.gemspec",
                "Gem::Specification.new do |s|\nend\n",
            ),
        ];
        let out = detect(&RubyDetector, files, None);
        let got: Vec<_> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("json", "2.6.1", "pkg:gem/json@2.6.1"),
                ("nokogiri", "1.13.3", "pkg:gem/nokogiri@1.13.3"),
                ("rack", "2.2.3", "pkg:gem/rack@2.2.3"),
            ]
        );
    }

    #[test]
    fn interest_by_path() {
        let detector = RubyDetector;
        assert_eq!(detector.interest("/app/Gemfile.lock"), Keep::Yes);
        assert_eq!(
            detector.interest("/usr/local/bundle/specifications/a-1.gemspec"),
            Keep::Yes
        );
        assert_eq!(detector.interest("/app/a.gemspec"), Keep::No);
        assert_eq!(detector.interest("/app/Gemfile"), Keep::No);
    }
}
