//! `package-lock.json` and `npm-shrinkwrap.json`, lockfile versions 1 to 3
//! (<https://docs.npmjs.com/cli/configuring-npm/package-lock-json>).
//!
//! Version 1 nests `dependencies` by install location; versions 2 and 3 have a flat
//! `packages` map keyed by install path (`node_modules/a/node_modules/b`). Version 2
//! carries both, and `packages` wins. Links (workspaces, `file:` folders) point at a
//! folder entry of the same map, which gives their version.

use std::collections::HashMap;

use serde::Deserialize;

use crscan_model::ImageFile;

use super::Collector;
use super::lenient::{Bounded, Flag, Maybe, Text, parse_json};
use crate::Detected;

#[derive(Deserialize)]
struct Lockfile<'a> {
    #[serde(default, borrow)]
    packages: Maybe<Bounded<&'a str, Maybe<Entry<'a>>>>,
    #[serde(default, borrow)]
    dependencies: Maybe<Bounded<Text<'a>, Maybe<LegacyEntry<'a>>>>,
}

/// One entry of the v2/v3 `packages` map.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(default, borrow)]
    version: Text<'a>,
    #[serde(default, borrow)]
    resolved: Text<'a>,
    #[serde(default)]
    link: Flag,
    #[serde(default)]
    dev: Flag,
    #[serde(default, rename = "devOptional")]
    dev_optional: Flag,
    #[serde(default, borrow, rename = "devDependencies")]
    dev_dependencies: Maybe<Bounded<Text<'a>, Text<'a>>>,
    #[serde(default, borrow)]
    dependencies: Maybe<Bounded<Text<'a>, Text<'a>>>,
    #[serde(default, borrow, rename = "optionalDependencies")]
    optional_dependencies: Maybe<Bounded<Text<'a>, Text<'a>>>,
}

/// One entry of the v1 nested `dependencies` tree.
#[derive(Deserialize)]
struct LegacyEntry<'a> {
    #[serde(default, borrow)]
    version: Text<'a>,
    #[serde(default)]
    dev: Flag,
    #[serde(default, borrow)]
    dependencies: Maybe<Bounded<Text<'a>, Maybe<LegacyEntry<'a>>>>,
}

/// Reads one npm lockfile.
pub(crate) fn detect(file: &ImageFile, out: &mut Detected) {
    // serde_json cannot borrow map keys that contain escapes; such a key makes the
    // whole file unreadable, which is reported like any other syntax error.
    let Some(lockfile) = parse_json::<Lockfile<'_>>(file, "npm", "an npm lockfile", out) else {
        return;
    };
    let mut collector = Collector::new(file);
    if let Some(packages) = &lockfile.packages.0 {
        flat(packages, &mut collector);
    } else if let Some(dependencies) = &lockfile.dependencies.0 {
        nested(dependencies, &mut collector);
    }
    collector.finish(out);
}

/// The name of the module installed at `key`: what follows the last `node_modules/`.
fn name_from_key(key: &str) -> &str {
    match key.rfind("node_modules/") {
        Some(at) => &key[at + "node_modules/".len()..],
        None => key.rsplit('/').next().unwrap_or(key),
    }
}

/// Lockfile versions 2 and 3.
fn flat(packages: &Bounded<&str, Maybe<Entry<'_>>>, collector: &mut Collector<'_>) {
    // Folders outside node_modules are workspaces or `file:` dependencies of the root;
    // they count only when something refers to them.
    let mut local_dependencies: HashMap<String, (&str, bool)> = HashMap::new();
    if let Some(root) = packages.get("").and_then(|root| root.0.as_ref()) {
        let groups = [
            (&root.dependencies, false),
            (&root.optional_dependencies, false),
            (&root.dev_dependencies, true),
        ];
        for (group, dev) in groups {
            for (name, spec) in group.0.iter().flat_map(|map| map.iter()) {
                if let Some(target) = spec.as_str().strip_prefix("file:") {
                    local_dependencies.insert(normalize(target), (name.as_str(), dev));
                }
            }
        }
    }
    let mut keys: Vec<&&str> = packages.keys().collect();
    keys.sort_unstable();
    for key in keys {
        let Some(entry) = packages.get(*key).and_then(|entry| entry.0.as_ref()) else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        let under_node_modules = key.starts_with("node_modules/") || key.contains("/node_modules/");
        let dev = entry.dev.0 || entry.dev_optional.0;
        if !under_node_modules {
            if let Some((name, root_dev)) = local_dependencies.get(normalize(key).as_str()) {
                let name = if entry.name.as_str().is_empty() {
                    name
                } else {
                    entry.name.as_str()
                };
                collector.add(name, entry.version.as_str(), dev || *root_dev);
            }
            continue;
        }
        let name = name_from_key(key);
        if entry.link.0 {
            let target = normalize(entry.resolved.as_str());
            match packages
                .get(target.as_str())
                .and_then(|linked| linked.0.as_ref())
            {
                Some(linked) if !target.is_empty() => {
                    collector.add(name, linked.version.as_str(), dev || linked.dev.0);
                }
                _ => {}
            }
            continue;
        }
        let name = if entry.name.as_str().is_empty() {
            name
        } else {
            entry.name.as_str()
        };
        collector.add(name, entry.version.as_str(), dev);
    }
}

/// Normalises a relative folder path as npm writes it (`./deps/x` → `deps/x`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Lockfile version 1.
fn nested(dependencies: &Bounded<Text<'_>, Maybe<LegacyEntry<'_>>>, collector: &mut Collector<'_>) {
    let mut pending: Vec<(&str, &LegacyEntry<'_>)> = dependencies
        .iter()
        .filter_map(|(name, entry)| Some((name.as_str(), entry.0.as_ref()?)))
        .collect();
    pending.sort_unstable_by_key(|(name, _)| *name);
    while let Some((name, entry)) = pending.pop() {
        let (name, version) = legacy_version(name, entry.version.as_str());
        collector.add(name, version, entry.dev.0);
        if let Some(children) = &entry.dependencies.0 {
            pending.extend(
                children
                    .iter()
                    .filter_map(|(name, entry)| Some((name.as_str(), entry.0.as_ref()?))),
            );
        }
    }
}

/// The package name and version of a v1 entry. Aliases (`npm:real@1.0.0`) name the
/// real package; git, file and URL dependencies have no registry version.
fn legacy_version<'a>(name: &'a str, version: &'a str) -> (&'a str, &'a str) {
    if let Some(alias) = version.strip_prefix("npm:") {
        let (real, real_version) = super::split_name(alias);
        return (real, real_version.unwrap_or(""));
    }
    if version.contains(':') || version.contains('/') {
        return (name, "");
    }
    (name, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::image_file;

    fn run(text: &str) -> Detected {
        let file = image_file("/app/package-lock.json", text.as_bytes());
        let mut out = Detected::default();
        detect(&file, &mut out);
        out
    }

    #[test]
    fn files_over_the_limit_and_huge_maps_are_diagnostics() {
        let mut file = image_file("/app/package-lock.json", b"{\"packages\":{");
        file.truncated = true;
        let mut out = Detected::default();
        detect(&file, &mut out);
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
        assert!(
            out.diagnostics[0]
                .message
                .starts_with("skipped_over_limit: "),
            "{:?}",
            out.diagnostics
        );

        let lockfile = |count: usize| {
            let mut text = String::from(r#"{"lockfileVersion":3,"packages":{"#);
            for index in 0..count {
                text.push_str(&format!(
                    r#""node_modules/p{index}":{{"version":"1.0.0"}},"#
                ));
            }
            text.push_str(r#""":{}}}"#);
            text
        };
        // One map past the entry cap is refused with the limit named.
        let out = run(&lockfile(crate::MAX_PACKAGES_PER_FILE));
        assert!(out.packages.is_empty());
        assert!(
            out.diagnostics[0]
                .message
                .contains("limit on lockfile entries"),
            "{:?}",
            out.diagnostics
        );
        // Just under the cap, every package is kept.
        let out = run(&lockfile(crate::MAX_PACKAGES_PER_FILE - 1));
        assert_eq!(out.packages.len(), crate::MAX_PACKAGES_PER_FILE - 1);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    }

    #[test]
    fn v1_aliases_and_git() {
        let out = run(r#"{"lockfileVersion":1,"dependencies":{
            "a":{"version":"npm:@s/real@1.2.3"},
            "b":{"version":"github:x/y#abc","dev":true},
            "c":{"version":"1.0.0","dependencies":{"d":{"version":"2.0.0"}}}}}"#);
        let mut got: Vec<_> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.dev))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("@s/real", "1.2.3", false),
                ("b", "", true),
                ("c", "1.0.0", false),
                ("d", "2.0.0", false)
            ]
        );
    }

    #[test]
    fn wrong_types_are_tolerated() {
        let out =
            run(r#"{"packages":{"node_modules/a":{"version":5,"dev":"x"},"node_modules/b":[]}}"#);
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.packages[0].version, "5");
        assert!(out.diagnostics.is_empty());
    }

    #[test]
    fn not_json_is_one_diagnostic() {
        let out = run("<html>");
        assert!(out.packages.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
        let out = run("null");
        assert_eq!(out.diagnostics.len(), 1);
    }
}
