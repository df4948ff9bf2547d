//! Alpine secdb (<https://secdb.alpinelinux.org/>): per release and repository, each
//! origin package's `secfixes`, a map from the fixing apk version to the ids fixed.
//!
//! The YAML files of the old git repository and the JSON files of secdb.alpinelinux.org
//! share one structure, and YAML is a superset of JSON, so one parser reads both.
//! A fixed version of `0` means the package was never affected in that release.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::advisory::{Advisory, Affected, AffectedStatus, FeedKind, Range};
use crate::feed::{FeedOutput, RecordError};

#[derive(Deserialize)]
struct WireSecdb {
    distroversion: Option<String>,
    #[serde(default)]
    packages: Option<Vec<WirePackageEntry>>,
}

#[derive(Deserialize)]
struct WirePackageEntry {
    pkg: Option<WirePackage>,
}

#[derive(Deserialize)]
struct WirePackage {
    name: Option<String>,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<Option<String>>>>>,
}

/// Parses one secdb file (YAML or JSON).
pub fn parse(bytes: &[u8]) -> Result<FeedOutput, RecordError> {
    let wire: WireSecdb =
        serde_norway::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    let release = wire
        .distroversion
        .filter(|text| !text.trim().is_empty())
        .ok_or(RecordError::Missing("distroversion"))?;
    let release = release.trim();
    let release = if release.starts_with('v') {
        release.to_owned()
    } else {
        format!("v{release}")
    };
    let ecosystem = format!("Alpine:{release}");
    let mut output = FeedOutput::default();
    // One advisory per id, listing every package of this file that it concerns.
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (index, entry) in wire.packages.unwrap_or_default().into_iter().enumerate() {
        let Some(package) = entry.pkg else {
            output.problem(format!("packages[{index}]"), "entry has no pkg");
            continue;
        };
        let Some(name) = package.name.filter(|name| !name.trim().is_empty()) else {
            output.problem(format!("packages[{index}]"), "package has no name");
            continue;
        };
        for (fixed_version, ids) in package.secfixes.unwrap_or_default() {
            let fixed_version = fixed_version.trim().to_owned();
            for text in ids.unwrap_or_default().into_iter().flatten() {
                let mut words = text.split_whitespace();
                let Some(id) = words.next() else {
                    continue;
                };
                let aliases: Vec<String> = words.map(str::to_owned).collect();
                let (status, ranges) = if fixed_version == "0" {
                    (AffectedStatus::NotAffected, Vec::new())
                } else {
                    (
                        AffectedStatus::Affected,
                        vec![Range::fixed_in(&fixed_version)],
                    )
                };
                let advisory = by_id.entry(id.to_owned()).or_insert_with(|| {
                    let mut advisory = Advisory::new(id, FeedKind::AlpineSecdb);
                    advisory.link = Some(format!("https://security.alpinelinux.org/vuln/{id}"));
                    advisory
                });
                crate::advisory::extend_unique(&mut advisory.aliases, aliases);
                let affected = Affected {
                    ecosystem: ecosystem.clone(),
                    package: name.trim().to_owned(),
                    ranges,
                    versions: Vec::new(),
                    status,
                    distro_rating: None,
                    severity: Vec::new(),
                };
                if !advisory.affected.contains(&affected) {
                    advisory.affected.push(affected);
                }
            }
        }
    }
    for (_, mut advisory) in by_id {
        advisory.derive_cves();
        output.advisories.push(advisory);
    }
    Ok(output)
}
