//! The Debian security tracker's advisory lists, `data/DSA/list`, `data/DLA/list` and
//! `data/DTSA/list` (<https://salsa.debian.org/security-tracker-team/security-tracker>).
//!
//! Each entry is a header line `[29 Mar 2023] DSA-5380-1 xorg-server - security update`,
//! then indented lines: `{CVE-… CVE-…}` (the CVEs fixed), `[bullseye] - xorg-server
//! 2:1.20.11-1+deb11u6` (the fixed source version per release, or a tag such as
//! `<not-affected>`, optionally followed by a parenthesised note or urgency) and
//! `NOTE:` lines. One advisory per entry, marked as a bundle so that the matcher gives
//! one finding per CVE.

use crate::advisory::{Advisory, Affected, AffectedStatus, FeedKind, Range};
use crate::ecosystem::debian_ecosystem_for_codename;
use crate::feed::FeedOutput;

/// Parses a whole list file; bad entries and lines become problems.
pub fn parse(text: &str) -> FeedOutput {
    let mut output = FeedOutput::default();
    let mut current: Option<Advisory> = None;
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('[') {
            if let Some(done) = current.take() {
                finish(done, &mut output);
            }
            match parse_header(line) {
                Some(advisory) => current = Some(advisory),
                None => output.problem(
                    format!("line {line_number}"),
                    format!("bad header {line:?}"),
                ),
            }
            continue;
        }
        let Some(advisory) = current.as_mut() else {
            output.problem(
                format!("line {line_number}"),
                format!("line outside an entry {line:?}"),
            );
            continue;
        };
        let body = line.trim();
        if let Some(ids) = body.strip_prefix('{') {
            let ids = ids.trim_end_matches('}');
            for id in ids.split_whitespace() {
                if !advisory.cves.iter().any(|known| known == id) {
                    advisory.cves.push(id.to_owned());
                }
            }
        } else if body.starts_with('[') {
            match parse_release_line(body) {
                Ok(affected) => advisory.affected.push(affected),
                Err(reason) => {
                    output.problem(format!("{} line {line_number}", advisory.id), reason)
                }
            }
        } else if body.starts_with("NOTE:") || body.starts_with("TODO:") {
            // Notes are for the tracker's editors.
        } else {
            output.problem(
                format!("{} line {line_number}", advisory.id),
                format!("unknown line {body:?}"),
            );
        }
    }
    if let Some(done) = current.take() {
        finish(done, &mut output);
    }
    output
}

fn finish(mut advisory: Advisory, output: &mut FeedOutput) {
    if advisory.affected.is_empty() {
        output.problem(
            advisory.id.clone(),
            "entry lists no fixed package (an announcement such as an end of life); nothing to match",
        );
        return;
    }
    advisory.cves.retain(|id| id.starts_with("CVE-"));
    output.advisories.push(advisory);
}

/// `[29 Mar 2023] DSA-5380-1 xorg-server - security update`.
fn parse_header(line: &str) -> Option<Advisory> {
    let close = line.find(']')?;
    let date = line[1..close].trim();
    let rest = line[close + 1..].trim();
    let (id, rest) = rest.split_once(char::is_whitespace)?;
    if !(id.starts_with("DSA-") || id.starts_with("DLA-") || id.starts_with("DTSA-")) {
        return None;
    }
    let (_package, title) = rest.split_once(" - ").unwrap_or((rest, ""));
    let mut advisory = Advisory::new(id, FeedKind::DebianList);
    advisory.bundle = true;
    advisory.published = Some(date.to_owned());
    if !title.trim().is_empty() {
        advisory.summary = Some(title.trim().to_owned());
    }
    advisory.link = Some(format!("https://security-tracker.debian.org/tracker/{id}"));
    Some(advisory)
}

/// `[bullseye] - xorg-server 2:1.20.11-1+deb11u6 (high)`.
fn parse_release_line(body: &str) -> Result<Affected, String> {
    let close = body
        .find(']')
        .ok_or_else(|| format!("bad release line {body:?}"))?;
    let release = body[1..close].trim();
    let rest = body[close + 1..].trim();
    let rest = rest
        .strip_prefix('-')
        .ok_or_else(|| format!("bad release line {body:?}"))?
        .trim();
    let ecosystem = debian_ecosystem_for_codename(release)
        .ok_or_else(|| format!("unknown Debian release {release:?}"))?;
    let mut words = rest.split_whitespace();
    let package = words
        .next()
        .ok_or_else(|| format!("release line without package {body:?}"))?;
    let version = words
        .next()
        .ok_or_else(|| format!("release line without version {body:?}"))?;
    let note: Vec<&str> = words.collect();
    let note = note.join(" ");
    let urgency = note
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(';')
        .map(str::trim)
        .find(|word| matches!(*word, "unimportant" | "low" | "medium" | "high"))
        .map(str::to_owned);
    let (status, ranges) = match version {
        "<not-affected>" => (AffectedStatus::NotAffected, Vec::new()),
        "<unfixed>" | "<undetermined>" => (AffectedStatus::NoFixYet, vec![Range::all_versions()]),
        "<no-dsa>" | "<ignored>" | "<postponed>" | "<end-of-life>" => {
            (AffectedStatus::WillNotFix, vec![Range::all_versions()])
        }
        tag if tag.starts_with('<') => return Err(format!("unknown tag {tag:?}")),
        fixed => (AffectedStatus::Affected, vec![Range::fixed_in(fixed)]),
    };
    Ok(Affected {
        ecosystem,
        package: package.to_owned(),
        ranges,
        versions: Vec::new(),
        status,
        distro_rating: urgency,
        severity: Vec::new(),
    })
}
