//! Debian package versions (`[epoch:]upstream[-revision]`), ordered the way `dpkg` does.
//!
//! Implements the ordering in
//! [deb-version(7)](https://manpages.debian.org/bookworm/dpkg-dev/deb-version.7.en.html) and
//! Debian Policy [§5.6.12](https://www.debian.org/doc/debian-policy/ch-controlfields.html#version):
//! the epoch compares numerically, then upstream and revision compare alternately by non-digit
//! runs (letters before other characters, `~` before everything, even the end) and digit runs
//! (numerically). A missing revision equals `0`.
//!
//! Parsing is as lenient as `dpkg --compare-versions`: syntax that dpkg only warns about (a
//! first character that is not a digit, unusual characters) is accepted; what dpkg rejects
//! (an empty string, whitespace, a non-numeric or empty epoch, an empty upstream part) is an
//! error.

use std::cmp::Ordering;

/// A parsed dpkg version; the parts are byte ranges of the original text.
#[derive(Debug, Clone)]
pub(crate) struct Dpkg {
    epoch: u32,
    upstream: (u32, u32),
    revision: (u32, u32),
}

pub(crate) fn parse(text: &str) -> Result<Dpkg, String> {
    if text.is_empty() {
        return Err("empty version".into());
    }
    if text.len() > u32::MAX as usize {
        return Err("version too long".into());
    }
    if text.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return Err("version contains whitespace".into());
    }
    let (epoch, rest_start) = match text.find(':') {
        Some(colon) => {
            let epoch_text = &text[..colon];
            if !crate::num::is_digits(epoch_text.as_bytes()) {
                return Err(format!("epoch {epoch_text:?} is not a number"));
            }
            let epoch = epoch_text
                .parse::<u32>()
                .map_err(|_| format!("epoch {epoch_text} is too big"))?;
            (epoch, colon + 1)
        }
        None => (0, 0),
    };
    let rest = &text[rest_start..];
    let (upstream_end, revision_start) = match rest.rfind('-') {
        Some(hyphen) => (rest_start + hyphen, rest_start + hyphen + 1),
        None => (text.len(), text.len()),
    };
    if upstream_end == rest_start {
        return Err("empty upstream version".into());
    }
    // The length check above makes these conversions lossless.
    let range = |start: usize, end: usize| (start as u32, end as u32);
    Ok(Dpkg {
        epoch,
        upstream: range(rest_start, upstream_end),
        revision: range(revision_start, text.len()),
    })
}

fn part(text: &str, range: (u32, u32)) -> &[u8] {
    &text.as_bytes()[range.0 as usize..range.1 as usize]
}

pub(crate) fn compare(a_text: &str, a: &Dpkg, b_text: &str, b: &Dpkg) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(part(a_text, a.upstream), part(b_text, b.upstream)))
        .then_with(|| compare_part(part(a_text, a.revision), part(b_text, b.revision)))
}

/// The weight of one non-digit character; `None` (the end) weighs like a digit boundary.
fn weight(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(byte) if byte.is_ascii_digit() => 0,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(byte),
        Some(byte) => i32::from(byte) + 256,
    }
}

/// Compares one upstream or revision part the way dpkg's `verrevcmp` does.
fn compare_part(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = weight(a.get(i).copied());
            let wb = weight(b.get(j).copied());
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // Digit run, compared numerically.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}
