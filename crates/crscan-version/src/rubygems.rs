//! RubyGems versions, ordered the way `Gem::Version#<=>` does.
//!
//! Implements <https://guides.rubygems.org/patterns/#semantic-versioning> as RubyGems'
//! `Gem::Version` behaves: a version is digits followed by `.`-separated alphanumeric parts
//! and an optional `-` pre-release tail (a `-` reads as `.pre.`); it splits into runs of
//! digits and runs of letters; trailing zeros are dropped from the numeric prefix and from
//! the rest; missing parts are `0`; any word sorts before any number (so `1.0.a < 1.0`),
//! words compare bytewise and numbers by value.
//!
//! Strings `Gem::Version` rejects as malformed (such as `1beta`) are errors, and so is the
//! empty string, which `Gem::Version` would read as `0` but which in package data means a
//! missing version.

use std::cmp::Ordering;

use crate::num::cmp_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Digits without leading zeros (empty for zero).
    Number(Vec<u8>),
    Word(Box<[u8]>),
}

static ZERO: Segment = Segment::Number(Vec::new());

/// A parsed RubyGems version: its canonical segments.
#[derive(Debug, Clone)]
pub(crate) struct RubyGems {
    segments: Vec<Segment>,
}

fn is_well_formed(version: &str) -> bool {
    let (release, pre) = match version.split_once('-') {
        Some((release, pre)) => (release, Some(pre)),
        None => (version, None),
    };
    let mut parts = release.split('.');
    let first_is_number = parts
        .next()
        .is_some_and(|first| crate::num::is_digits(first.as_bytes()));
    let rest_alphanumeric =
        parts.all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
    });
    first_is_number && rest_alphanumeric && pre_ok
}

pub(crate) fn parse(text: &str) -> Result<RubyGems, String> {
    let version = text.trim();
    if version.is_empty() {
        return Err("empty version".into());
    }
    if !is_well_formed(version) {
        return Err("malformed version".into());
    }
    let version = version.replace('-', ".pre.");
    let mut segments = Vec::new();
    let bytes = version.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let start = index;
        if bytes[index].is_ascii_digit() {
            while index < bytes.len() && bytes[index].is_ascii_digit() {
                index += 1;
            }
            segments.push(Segment::Number(
                crate::num::strip_zeros(&bytes[start..index]).to_vec(),
            ));
        } else if bytes[index].is_ascii_alphabetic() {
            while index < bytes.len() && bytes[index].is_ascii_alphabetic() {
                index += 1;
            }
            segments.push(Segment::Word(bytes[start..index].into()));
        } else {
            index += 1;
        }
    }
    // Canonical segments: trailing zeros dropped from the numeric prefix and from the rest.
    let split = segments
        .iter()
        .position(|segment| matches!(segment, Segment::Word(_)))
        .unwrap_or(segments.len());
    let mut rest = segments.split_off(split);
    while segments.last() == Some(&ZERO) {
        segments.pop();
    }
    while rest.last() == Some(&ZERO) {
        rest.pop();
    }
    segments.append(&mut rest);
    Ok(RubyGems { segments })
}

pub(crate) fn compare(a: &RubyGems, b: &RubyGems) -> Ordering {
    let longest = a.segments.len().max(b.segments.len());
    for index in 0..longest {
        let left = a.segments.get(index).unwrap_or(&ZERO);
        let right = b.segments.get(index).unwrap_or(&ZERO);
        let order = match (left, right) {
            (Segment::Number(x), Segment::Number(y)) => cmp_digits(x, y),
            (Segment::Word(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Word(_)) => Ordering::Greater,
            (Segment::Word(x), Segment::Word(y)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}
