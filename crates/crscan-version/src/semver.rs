//! Semantic Versioning 2.0.0 precedence (npm, crates.io, Hex, Pub, and OSV `SEMVER` ranges).
//!
//! Implements precedence as defined in <https://semver.org/spec/v2.0.0.html#spec-item-11>:
//! major, minor and patch compare numerically; a version with a pre-release sorts before the
//! same version without one; pre-release identifiers compare numerically when both are
//! digits, numeric identifiers sort before alphanumeric ones, and alphanumeric identifiers
//! compare in ASCII order; build metadata is ignored.
//!
//! Parsing follows node-semver's loose mode, which is what npm tooling and OSV data use: a
//! leading `v` or `=` is accepted and leading zeros in numbers are tolerated, but the three
//! numeric components are required. Numbers of any length are accepted and compared by value.

use std::cmp::Ordering;

use crate::num::{cmp_digits, is_digits};

type Span = (u32, u32);

/// A parsed SemVer version; every part is a byte range of the original text.
#[derive(Debug, Clone)]
pub(crate) struct SemVer {
    pub(crate) major: Span,
    pub(crate) minor: Span,
    pub(crate) patch: Span,
    /// Pre-release identifiers; empty for a release.
    pub(crate) pre: Vec<Span>,
}

fn slice(text: &str, span: Span) -> &[u8] {
    &text.as_bytes()[span.0 as usize..span.1 as usize]
}

fn is_identifier(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
}

/// Parses `major.minor.patch[-pre][+build]` starting at byte `start` of `text`.
///
/// `minor` and `patch` may be missing only when `allow_short` (Go's `v1`, `v1.2`), in which
/// case nothing may follow; with `strict_numbers`, numbers must not have leading zeros.
pub(crate) fn parse_from(
    text: &str,
    start: usize,
    allow_short: bool,
    strict_numbers: bool,
) -> Result<SemVer, String> {
    if text.len() > u32::MAX as usize {
        return Err("version too long".into());
    }
    let bytes = text.as_bytes();
    let number = |position: &mut usize, what: &str| -> Result<Span, String> {
        let begin = *position;
        while *position < bytes.len() && bytes[*position].is_ascii_digit() {
            *position += 1;
        }
        if *position == begin {
            return Err(format!("missing {what} number"));
        }
        if strict_numbers && *position - begin > 1 && bytes[begin] == b'0' {
            return Err(format!("{what} number has a leading zero"));
        }
        Ok((begin as u32, *position as u32))
    };
    let mut position = start;
    let major = number(&mut position, "major")?;
    let empty = (position as u32, position as u32);
    if allow_short && position == bytes.len() {
        return Ok(SemVer {
            major,
            minor: empty,
            patch: empty,
            pre: Vec::new(),
        });
    }
    if bytes.get(position) != Some(&b'.') {
        return Err("expected `.` after the major number".into());
    }
    position += 1;
    let minor = number(&mut position, "minor")?;
    let empty = (position as u32, position as u32);
    if allow_short && position == bytes.len() {
        return Ok(SemVer {
            major,
            minor,
            patch: empty,
            pre: Vec::new(),
        });
    }
    if bytes.get(position) != Some(&b'.') {
        return Err("expected `.` after the minor number".into());
    }
    position += 1;
    let patch = number(&mut position, "patch")?;
    let mut pre = Vec::new();
    if bytes.get(position) == Some(&b'-') {
        position += 1;
        let end = text[position..]
            .find('+')
            .map_or(text.len(), |plus| position + plus);
        for identifier in text[position..end].split('.') {
            let identifier_start = position;
            position += identifier.len();
            if !is_identifier(identifier.as_bytes()) {
                return Err(format!("invalid pre-release identifier {identifier:?}"));
            }
            if strict_numbers
                && identifier.len() > 1
                && identifier.starts_with('0')
                && is_digits(identifier.as_bytes())
            {
                return Err(format!(
                    "numeric pre-release identifier {identifier:?} has a leading zero"
                ));
            }
            pre.push((identifier_start as u32, position as u32));
            position += 1;
        }
        position = end;
    }
    if bytes.get(position) == Some(&b'+') {
        position += 1;
        for identifier in text[position..].split('.') {
            if !is_identifier(identifier.as_bytes()) {
                return Err(format!("invalid build metadata identifier {identifier:?}"));
            }
        }
        position = bytes.len();
    }
    if position != bytes.len() {
        return Err(format!(
            "unexpected {:?} after the version",
            &text[position..]
        ));
    }
    Ok(SemVer {
        major,
        minor,
        patch,
        pre,
    })
}

/// Parses a SemVer version the way node-semver's loose mode does.
pub(crate) fn parse(text: &str) -> Result<SemVer, String> {
    let start = match text.as_bytes().first() {
        Some(b'v' | b'V' | b'=') => 1,
        Some(_) => 0,
        None => return Err("empty version".into()),
    };
    parse_from(text, start, false, false)
}

pub(crate) fn compare(a_text: &str, a: &SemVer, b_text: &str, b: &SemVer) -> Ordering {
    cmp_digits(slice(a_text, a.major), slice(b_text, b.major))
        .then_with(|| cmp_digits(slice(a_text, a.minor), slice(b_text, b.minor)))
        .then_with(|| cmp_digits(slice(a_text, a.patch), slice(b_text, b.patch)))
        .then_with(|| compare_pre(a_text, &a.pre, b_text, &b.pre))
}

fn compare_pre(a_text: &str, a: &[Span], b_text: &str, b: &[Span]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (&span_a, &span_b) in a.iter().zip(b) {
        let (ia, ib) = (slice(a_text, span_a), slice(b_text, span_b));
        let order = match (is_digits(ia), is_digits(ib)) {
            (true, true) => cmp_digits(ia, ib),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => ia.cmp(ib),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}
