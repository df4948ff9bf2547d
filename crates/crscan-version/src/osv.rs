//! OSV range evaluation: whether a version falls in an advisory's `affected[].ranges`.
//!
//! Implements the evaluation rules of the
//! [OSV schema](https://ossf.github.io/osv-schema/#affectedranges-field): within one range,
//! events are sorted by version (`introduced: "0"` first, meaning "from the beginning"),
//! then walked in order: an `introduced` at or below the version makes it affected, a
//! `fixed` at or below it or a `last_affected` strictly below it makes it unaffected again.
//! When a range has `limit` events, the version must also be below one of them. A version is
//! affected when any range affects it or the explicit `versions` list names it.
//!
//! Real records do not always keep the schema's rule that intervals in one range do not
//! overlap: PyPA writes `introduced 2.11, fixed 2.11.7, introduced 0, fixed 2.11.6`, and its
//! own `versions` list counts 2.11.6 as affected, which the sorted walk does not. So a
//! version is also affected when it lies in an interval formed by an `introduced` and the
//! next `fixed` or `last_affected` in record order. On well-formed ranges both readings
//! agree; on overlapping ones crscan reports the union rather than miss a vulnerability.
//!
//! `ECOSYSTEM` ranges use the package's [`Scheme`]; `SEMVER` ranges use SemVer 2.0
//! precedence whatever the ecosystem (tolerating a leading `v`; Go modules keep their own
//! parser, which orders identically); `GIT` ranges name commits and are ignored here. An
//! event version that does not parse makes its range match nothing, and never panics.

use crate::{Scheme, Version, VersionError};

/// The type of an OSV range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeKind {
    /// Versions ordered by the package's ecosystem.
    Ecosystem,
    /// Versions ordered by SemVer 2.0 precedence.
    Semver,
    /// Git commits; not evaluated by this crate.
    Git,
}

/// One event of an OSV range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The first affected version; `"0"` means every version from the beginning.
    Introduced(String),
    /// The first version that is no longer affected.
    Fixed(String),
    /// The last affected version.
    LastAffected(String),
    /// An upper limit on the versions the range applies to.
    Limit(String),
}

/// One OSV range: its type and events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// The scheme that orders a range's versions.
fn range_scheme(scheme: Scheme, kind: RangeKind) -> Option<Scheme> {
    match kind {
        RangeKind::Ecosystem => Some(scheme),
        RangeKind::Semver if scheme == Scheme::Go => Some(Scheme::Go),
        RangeKind::Semver => Some(Scheme::Semver),
        RangeKind::Git => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Introduced,
    LastAffected,
    Fixed,
}

/// Whether `version` (already parsed with the range's scheme) is affected by `events`;
/// `None` when an event version does not parse.
fn range_affects(range_scheme: Scheme, version: &Version, events: &[Event]) -> Option<bool> {
    // `None` as the bound stands for `introduced: "0"`, which sorts first.
    let mut steps: Vec<(Option<Version>, Step)> = Vec::with_capacity(events.len());
    let mut limits = Vec::new();
    for event in events {
        let parse = |text: &str| Version::parse(range_scheme, text).ok();
        match event {
            Event::Introduced(text) if text == "0" => steps.push((None, Step::Introduced)),
            Event::Introduced(text) => steps.push((Some(parse(text)?), Step::Introduced)),
            Event::Fixed(text) => steps.push((Some(parse(text)?), Step::Fixed)),
            Event::LastAffected(text) => steps.push((Some(parse(text)?), Step::LastAffected)),
            Event::Limit(text) if text == "*" => {}
            Event::Limit(text) => limits.push(parse(text)?),
        }
    }
    if !limits.is_empty() && !limits.iter().any(|limit| version < limit) {
        return Some(false);
    }
    // Each `introduced` with the next `fixed` or `last_affected` in record order.
    let mut start: Option<&Option<Version>> = None;
    for (bound, step) in &steps {
        match step {
            Step::Introduced => {
                if start.is_none() {
                    start = Some(bound);
                }
            }
            Step::Fixed | Step::LastAffected => {
                if let Some(start) = start.take()
                    && contains(version, start, bound, *step)
                {
                    return Some(true);
                }
            }
        }
    }
    if let Some(start) = start
        && start.as_ref().is_none_or(|start| version >= start)
    {
        return Some(true);
    }
    // The schema's walk over the events sorted by version (a stable sort: ties keep record
    // order).
    steps.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut affected = false;
    for (bound, step) in &steps {
        match (step, bound) {
            (Step::Introduced, None) => affected = true,
            (Step::Introduced, Some(bound)) if version >= bound => affected = true,
            (Step::Fixed, Some(bound)) if version >= bound => affected = false,
            (Step::LastAffected, Some(bound)) if version > bound => affected = false,
            _ => {}
        }
    }
    Some(affected)
}

/// Whether `version` lies between `start` (`None` for "0") and the closing event `end`.
fn contains(version: &Version, start: &Option<Version>, end: &Option<Version>, step: Step) -> bool {
    let above_start = start.as_ref().is_none_or(|start| version >= start);
    let below_end = match (end, step) {
        (Some(end), Step::LastAffected) => version <= end,
        (Some(end), _) => version < end,
        (None, _) => false,
    };
    above_start && below_end
}

/// Whether `version` is affected by any of `ranges` or listed in `versions`.
///
/// `GIT` ranges are ignored; `SEMVER` ranges use SemVer 2.0 precedence whatever the scheme.
/// An error means `version` itself is not a valid version of `scheme`; a range whose event
/// versions do not parse (or, for a `SEMVER` range, in which `version` is not SemVer) does
/// not match.
pub fn is_affected(
    scheme: Scheme,
    version: &str,
    ranges: &[Range],
    versions: &[String],
) -> Result<bool, VersionError> {
    let parsed = Version::parse(scheme, version)?;
    let listed = versions.iter().any(|listed| {
        listed == version || Version::parse(scheme, listed).is_ok_and(|listed| listed == parsed)
    });
    if listed {
        return Ok(true);
    }
    for range in ranges {
        let Some(range_scheme) = range_scheme(scheme, range.kind) else {
            continue;
        };
        let in_range_scheme = if range_scheme == scheme {
            parsed.clone()
        } else {
            match Version::parse(range_scheme, version) {
                Ok(parsed) => parsed,
                Err(_) => continue,
            }
        };
        if range_affects(range_scheme, &in_range_scheme, &range.events) == Some(true) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The lowest `fixed` event version strictly above `version` across all ranges (the
/// "fixed by" version of a finding); `None` when no range has such a fix or `version` does
/// not parse.
pub fn lowest_fix_above(scheme: Scheme, version: &str, ranges: &[Range]) -> Option<String> {
    let mut best: Option<Version> = None;
    for range in ranges {
        let Some(range_scheme) = range_scheme(scheme, range.kind) else {
            continue;
        };
        let Ok(current) = Version::parse(range_scheme, version) else {
            continue;
        };
        for event in &range.events {
            let Event::Fixed(text) = event else {
                continue;
            };
            let Ok(fixed) = Version::parse(range_scheme, text) else {
                continue;
            };
            if fixed <= current {
                continue;
            }
            let better = match &best {
                None => true,
                Some(best) if best.scheme() == fixed.scheme() => fixed < *best,
                // Fixes from ranges of another scheme cannot be ordered against each other;
                // the ecosystem's own scheme wins.
                Some(_) => fixed.scheme() == scheme,
            };
            if better {
                best = Some(fixed);
            }
        }
    }
    best.map(|fixed| fixed.as_str().to_owned())
}

impl Range {
    /// A range of `kind` with `events`.
    pub fn new(kind: RangeKind, events: Vec<Event>) -> Range {
        Range { kind, events }
    }
}
