//! `pnpm-lock.yaml`, lockfile versions 5 to 9
//! (<https://github.com/pnpm/spec/tree/master/lockfile>).
//!
//! Versions 5 and 6 list every package under `packages`, keyed by a dependency path
//! (`/name/1.0.0_peer@2` in v5, `/name@1.0.0(peer@2)` in v6) and marked `dev: true`
//! when only development dependencies need it. Version 9 keys packages as
//! `name@version` and moves the dependency graph to `snapshots`; whether a package is
//! development-only is worked out here from the importers' `devDependencies`.
//! A file may hold several YAML documents (pnpm writes its own tool dependencies
//! first); the last one describes the project.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crscan_model::ImageFile;

use super::lenient::{Flag, Maybe, Text};
use super::{Collector, split_name};
use crate::Detected;

type Names<'a> = Maybe<HashMap<String, Text<'a>>>;

#[derive(Deserialize, Default)]
struct Lockfile<'a> {
    #[serde(default, borrow, rename = "lockfileVersion")]
    lockfile_version: Text<'a>,
    #[serde(default, borrow)]
    importers: Maybe<HashMap<String, Maybe<Importer<'a>>>>,
    #[serde(default, borrow)]
    packages: Maybe<HashMap<String, Maybe<Entry<'a>>>>,
    #[serde(default, borrow)]
    snapshots: Maybe<HashMap<String, Maybe<Snapshot<'a>>>>,
}

#[derive(Deserialize, Default)]
struct Importer<'a> {
    #[serde(default, borrow)]
    dependencies: Maybe<HashMap<String, Maybe<Dependency<'a>>>>,
    #[serde(default, borrow, rename = "optionalDependencies")]
    optional_dependencies: Maybe<HashMap<String, Maybe<Dependency<'a>>>>,
    #[serde(default, borrow, rename = "devDependencies")]
    dev_dependencies: Maybe<HashMap<String, Maybe<Dependency<'a>>>>,
}

#[derive(Deserialize, Default)]
struct Dependency<'a> {
    #[serde(default, borrow)]
    version: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Entry<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(default, borrow)]
    version: Text<'a>,
    #[serde(default)]
    dev: Flag,
}

#[derive(Deserialize, Default)]
struct Snapshot<'a> {
    #[serde(default, borrow)]
    dependencies: Names<'a>,
    #[serde(default, borrow, rename = "optionalDependencies")]
    optional_dependencies: Names<'a>,
}

/// Reads one `pnpm-lock.yaml`.
pub(crate) fn detect(file: &ImageFile, out: &mut Detected) {
    if crate::skipped_over_limit("npm", file, out) {
        return;
    }
    let mut last: Option<Lockfile<'_>> = None;
    for document in serde_norway::Deserializer::from_slice(&file.contents) {
        match Maybe::<Lockfile<'_>>::deserialize(document) {
            Ok(Maybe(Some(lockfile))) => last = Some(lockfile),
            Ok(Maybe(None)) => {
                out.diagnostic(
                    "npm",
                    &file.path,
                    "not a pnpm lockfile: a document is not a map",
                );
                return;
            }
            Err(error) => {
                out.diagnostic("npm", &file.path, format!("not a pnpm lockfile: {error}"));
                return;
            }
        }
    }
    let Some(lockfile) = last else {
        return;
    };
    let major: u32 = lockfile
        .lockfile_version
        .as_str()
        .split('.')
        .next()
        .and_then(|major| major.trim().parse().ok())
        .unwrap_or(5);
    let mut collector = Collector::new(file);
    if major >= 9 {
        v9(&lockfile, file, &mut collector, out);
    } else {
        v5_v6(&lockfile, major, file, &mut collector, out);
    }
    collector.finish(out);
}

/// Versions 5 and 6: one package per `packages` entry.
fn v5_v6(
    lockfile: &Lockfile<'_>,
    major: u32,
    file: &ImageFile,
    collector: &mut Collector<'_>,
    out: &mut Detected,
) {
    let mut entries: Vec<(&String, Option<&Entry<'_>>)> = lockfile
        .packages
        .0
        .iter()
        .flatten()
        .map(|(key, entry)| (key, entry.0.as_ref()))
        .collect();
    entries.sort_unstable_by_key(|(key, _)| *key);
    for (key, entry) in entries {
        let named = entry.map_or("", |entry| entry.name.as_str());
        let versioned = entry.map_or("", |entry| entry.version.as_str());
        let dev = entry.is_some_and(|entry| entry.dev.0);
        if !named.is_empty() && !versioned.is_empty() {
            collector.add(named, versioned, dev);
            continue;
        }
        let parsed = if major >= 6 {
            parse_v6_path(key)
        } else {
            parse_v5_path(key)
        };
        match parsed {
            Some((name, version)) => {
                let name = if named.is_empty() { name } else { named };
                let version = if versioned.is_empty() {
                    version
                } else {
                    versioned
                };
                collector.add(name, version, dev);
            }
            None => out.diagnostic(
                "npm",
                &file.path,
                format!("invalid dependency path {key:?}"),
            ),
        }
    }
}

/// `/name/1.0.0_peer@2`, `/@scope/name/1.0.0`, `registry.example/name/1.0.0`.
fn parse_v5_path(key: &str) -> Option<(&str, &str)> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let key = key.split('(').next().unwrap_or(key);
    let (rest, version) = key.rsplit_once('/')?;
    let version = version.split('_').next().unwrap_or(version);
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let name = scoped_tail(rest);
    (!name.is_empty()).then_some((name, version))
}

/// `/name@1.0.0(peer@2)`, `/@scope/name@1.0.0`.
fn parse_v6_path(key: &str) -> Option<(&str, &str)> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let key = key.split('(').next().unwrap_or(key);
    let (rest, last) = match key.rsplit_once('/') {
        Some((rest, last)) => (rest, last),
        None => ("", key),
    };
    let at = last.get(1..)?.find('@')? + 1;
    let version = &last[at + 1..];
    if version.is_empty() {
        return None;
    }
    let bare_end = key.len() - last.len() + at;
    let name = if rest
        .rsplit('/')
        .next()
        .is_some_and(|scope| scope.starts_with('@'))
    {
        let scope_start = rest.rfind('@').unwrap_or(0);
        &key[scope_start..bare_end]
    } else {
        &key[key.len() - last.len()..bare_end]
    };
    Some((name, version))
}

/// The last path segment, with its scope when the one before it is `@scope`.
fn scoped_tail(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some((before, name)) => match before.rsplit_once('/') {
            Some((_, scope)) if scope.starts_with('@') => {
                &path[path.len() - name.len() - scope.len() - 1..]
            }
            None if before.starts_with('@') => path,
            _ => name,
        },
        None => path,
    }
}

/// The name and version of a v9 key `name@version(peers)`; versions that are not
/// registry versions (`file:`, URLs) read as empty.
fn parse_v9_key(key: &str) -> Option<(&str, &str)> {
    let bare = key.split('(').next().unwrap_or(key);
    let (name, version) = split_name(bare);
    let version = version?;
    if name.is_empty() {
        return None;
    }
    if version.contains(':') || version.contains('/') {
        return Some((name, ""));
    }
    Some((name, version))
}

/// Version 9: one package per snapshot (or per package when there are no snapshots).
fn v9(
    lockfile: &Lockfile<'_>,
    file: &ImageFile,
    collector: &mut Collector<'_>,
    out: &mut Detected,
) {
    let empty = HashMap::new();
    let snapshots = lockfile.snapshots.0.as_ref().unwrap_or(&empty);
    let packages = lockfile.packages.0.as_ref();
    let mut keys: Vec<&String> = if snapshots.is_empty() {
        packages
            .map(|packages| packages.keys().collect())
            .unwrap_or_default()
    } else {
        snapshots.keys().collect()
    };
    keys.sort_unstable();
    let (production, development) = reachability(lockfile, snapshots);
    for key in keys {
        let Some((name, version)) = parse_v9_key(key) else {
            out.diagnostic(
                "npm",
                &file.path,
                format!("invalid dependency path {key:?}"),
            );
            continue;
        };
        let bare = key.split('(').next().unwrap_or(key);
        let entry = packages
            .and_then(|packages| packages.get(bare))
            .and_then(|entry| entry.0.as_ref());
        let name = match entry.map(|entry| entry.name.as_str()) {
            Some(named) if !named.is_empty() => named,
            _ => name,
        };
        let version = match entry.map(|entry| entry.version.as_str()) {
            Some(versioned) if !versioned.is_empty() => versioned,
            _ => version,
        };
        let dev = development.contains(key.as_str()) && !production.contains(key.as_str());
        collector.add(name, version, dev);
    }
}

/// The snapshot keys reachable from the importers' production dependencies and from
/// their development dependencies.
fn reachability<'l>(
    lockfile: &'l Lockfile<'_>,
    snapshots: &'l HashMap<String, Maybe<Snapshot<'_>>>,
) -> (HashSet<&'l str>, HashSet<&'l str>) {
    let mut production_roots = Vec::new();
    let mut development_roots = Vec::new();
    for importer in lockfile
        .importers
        .0
        .iter()
        .flatten()
        .filter_map(|(_, i)| i.0.as_ref())
    {
        let groups = [
            (&importer.dependencies, false),
            (&importer.optional_dependencies, false),
            (&importer.dev_dependencies, true),
        ];
        for (group, dev) in groups {
            for (name, dependency) in group.0.iter().flatten() {
                let version = dependency.0.as_ref().map_or("", |d| d.version.as_str());
                if let Some(key) = snapshot_key(snapshots, name, version) {
                    if dev {
                        development_roots.push(key);
                    } else {
                        production_roots.push(key);
                    }
                }
            }
        }
    }
    (
        walk(snapshots, production_roots),
        walk(snapshots, development_roots),
    )
}

/// Every snapshot reachable from `roots`.
fn walk<'l>(
    snapshots: &'l HashMap<String, Maybe<Snapshot<'_>>>,
    mut pending: Vec<&'l str>,
) -> HashSet<&'l str> {
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(key) = pending.pop() {
        if !seen.insert(key) {
            continue;
        }
        let Some(snapshot) = snapshots.get(key).and_then(|snapshot| snapshot.0.as_ref()) else {
            continue;
        };
        for group in [&snapshot.dependencies, &snapshot.optional_dependencies] {
            for (name, version) in group.0.iter().flatten() {
                if let Some(next) = snapshot_key(snapshots, name, version.as_str())
                    && !seen.contains(next)
                {
                    pending.push(next);
                }
            }
        }
    }
    seen
}

/// The snapshot a dependency `name: version` refers to (`version` may be an alias
/// `other@1.0.0` or carry peers `1.0.0(peer@2)`).
fn snapshot_key<'l>(
    snapshots: &'l HashMap<String, Maybe<Snapshot<'_>>>,
    name: &str,
    version: &str,
) -> Option<&'l str> {
    if version.is_empty() || version.starts_with("link:") {
        return None;
    }
    let full = format!("{name}@{version}");
    if let Some((key, _)) = snapshots.get_key_value(&full) {
        return Some(key.as_str());
    }
    snapshots
        .get_key_value(version)
        .map(|(key, _)| key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dependency_paths() {
        assert_eq!(parse_v5_path("/foo/1.0.0"), Some(("foo", "1.0.0")));
        assert_eq!(
            parse_v5_path("/@foo/bar/1.0.0"),
            Some(("@foo/bar", "1.0.0"))
        );
        assert_eq!(
            parse_v5_path("registry.npmjs.org/@foo/bar/1.1.0"),
            Some(("@foo/bar", "1.1.0"))
        );
        assert_eq!(
            parse_v5_path("/foo/1.4.0_@types+babel__core@7.1.14"),
            Some(("foo", "1.4.0"))
        );
        assert_eq!(parse_v5_path("github.com/kevva/is-positive"), None);
        assert_eq!(parse_v5_path("invalidpath1"), None);
        assert_eq!(
            parse_v6_path("/foo@1.0.0(bar@2.0.0)"),
            Some(("foo", "1.0.0"))
        );
        assert_eq!(
            parse_v6_path("/@babel/runtime@7.22.3"),
            Some(("@babel/runtime", "7.22.3"))
        );
        assert_eq!(parse_v6_path("/@babel/runtime"), None);
        assert_eq!(parse_v9_key("@a/b@1.0.0(c@2)"), Some(("@a/b", "1.0.0")));
        assert_eq!(parse_v9_key("x@file:x"), Some(("x", "")));
    }
}
