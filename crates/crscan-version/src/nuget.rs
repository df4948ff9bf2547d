//! NuGet package versions, ordered the way NuGet's `VersionComparer` does.
//!
//! Implements <https://learn.microsoft.com/en-us/nuget/concepts/package-versioning>: one to
//! four numeric parts (missing parts are `0`, so `1.0 = 1.0.0.0`), then optional
//! pre-release labels after `-` and build metadata after `+` (ignored). A release sorts
//! after its pre-releases; labels compare numerically when both are numbers, numbers sort
//! before words, and words compare case-insensitively. Numbers of any length are compared
//! by value (osv-scalibr's fixtures rely on it).

use std::cmp::Ordering;

use crate::num::{cmp_digits, is_digits};

/// A parsed NuGet version.
#[derive(Debug, Clone)]
pub(crate) struct NuGet {
    parts: Vec<Box<[u8]>>,
    labels: Vec<Box<[u8]>>,
}

pub(crate) fn parse(text: &str) -> Result<NuGet, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty version".into());
    }
    let without_build = match text.split_once('+') {
        Some((version, build)) => {
            if build.is_empty() {
                return Err("empty build metadata".into());
            }
            version
        }
        None => text,
    };
    let (release, labels) = match without_build.split_once('-') {
        Some((release, labels)) => (release, Some(labels)),
        None => (without_build, None),
    };
    let mut parts = Vec::with_capacity(4);
    for part in release.split('.') {
        if !is_digits(part.as_bytes()) {
            return Err(format!("version part {part:?} is not a number"));
        }
        parts.push(crate::num::strip_zeros(part.as_bytes()).into());
    }
    if parts.len() > 4 {
        return Err("more than four version parts".into());
    }
    parts.resize(4, Box::default());
    let mut label_list = Vec::new();
    if let Some(labels) = labels {
        for label in labels.split('.') {
            if label.is_empty()
                || !label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            {
                return Err(format!("invalid pre-release label {label:?}"));
            }
            label_list.push(label.to_ascii_lowercase().into_bytes().into_boxed_slice());
        }
    }
    Ok(NuGet {
        parts,
        labels: label_list,
    })
}

pub(crate) fn compare(a: &NuGet, b: &NuGet) -> Ordering {
    for (part_a, part_b) in a.parts.iter().zip(&b.parts) {
        let order = cmp_digits(part_a, part_b);
        if order != Ordering::Equal {
            return order;
        }
    }
    match (a.labels.is_empty(), b.labels.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (label_a, label_b) in a.labels.iter().zip(&b.labels) {
        let order = match (is_digits(label_a), is_digits(label_b)) {
            (true, true) => cmp_digits(label_a, label_b),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => label_a.cmp(label_b),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.labels.len().cmp(&b.labels.len())
}
