//! RPM versions (`[epoch:]version[-release]`), ordered the way librpm does.
//!
//! Implements `rpmvercmp` and `rpmverCmp` from rpm's `rpmio/rpmvercmp.c` and `lib/rpmver.c`
//! (<https://rpm-software-management.github.io/rpm/manual/dependencies.html#versioning>):
//! strings split into alphabetic and numeric runs separated by other characters; numeric runs
//! beat alphabetic ones and compare numerically; `~` sorts before everything (even the end)
//! and `^` after the end but before anything else. The epoch is the leading digits before a
//! `:` (so `1.m+e2:1` has no epoch), a missing epoch is `0`, and the release is what follows
//! the last `-`; a version without a release sorts before the same version with one.
//!
//! Only ASCII letters and digits are run characters: any other byte, including non-ASCII
//! text, is a separator, as in librpm.

use std::cmp::Ordering;

type Span = (u32, u32);

/// A parsed RPM EVR; the parts are byte ranges of the original text.
#[derive(Debug, Clone)]
pub(crate) struct Rpm {
    epoch: Option<Span>,
    version: Span,
    release: Option<Span>,
}

pub(crate) fn parse(text: &str) -> Result<Rpm, String> {
    if text.is_empty() {
        return Err("empty version".into());
    }
    if text.len() > u32::MAX as usize {
        return Err("version too long".into());
    }
    let bytes = text.as_bytes();
    let digits_end = bytes
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .unwrap_or(bytes.len());
    let (epoch, version_start) = if bytes.get(digits_end) == Some(&b':') {
        (Some((0, digits_end as u32)), digits_end + 1)
    } else {
        (None, 0)
    };
    let (version_end, release) = match text[digits_end..].rfind('-') {
        Some(hyphen) => {
            let hyphen = digits_end + hyphen;
            (hyphen, Some(((hyphen + 1) as u32, text.len() as u32)))
        }
        None => (text.len(), None),
    };
    Ok(Rpm {
        epoch,
        version: (version_start as u32, version_end as u32),
        release,
    })
}

fn span(text: &str, span: Span) -> &[u8] {
    &text.as_bytes()[span.0 as usize..span.1 as usize]
}

pub(crate) fn compare(a_text: &str, a: &Rpm, b_text: &str, b: &Rpm) -> Ordering {
    let epoch = |text, epoch: Option<Span>| match epoch {
        Some(range) if range.0 != range.1 => span(text, range),
        _ => b"0".as_slice(),
    };
    rpmvercmp(epoch(a_text, a.epoch), epoch(b_text, b.epoch))
        .then_with(|| rpmvercmp(span(a_text, a.version), span(b_text, b.version)))
        .then_with(|| match (a.release, b.release) {
            (Some(ra), Some(rb)) => rpmvercmp(span(a_text, ra), span(b_text, rb)),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        })
}

fn is_separator(byte: u8) -> bool {
    !byte.is_ascii_alphanumeric() && byte != b'~' && byte != b'^'
}

/// rpm's segment-wise comparison of one version or release string.
pub(crate) fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && is_separator(a[i]) {
            i += 1;
        }
        while j < b.len() && is_separator(b[j]) {
            j += 1;
        }
        if i >= a.len() && j >= b.len() {
            return Ordering::Equal;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // A tilde sorts before everything, even the end of the string.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // A caret sorts after the end of the string but before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {}
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let in_run = |byte: &u8| {
            if numeric {
                byte.is_ascii_digit()
            } else {
                byte.is_ascii_alphabetic()
            }
        };
        let run_a_end = i + a[i..].iter().take_while(|byte| in_run(byte)).count();
        let run_b_end = j + b[j..].iter().take_while(|byte| in_run(byte)).count();
        if run_b_end == j {
            // Segments of different types: numeric is newer than alphabetic.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (run_a, run_b) = (&a[i..run_a_end], &b[j..run_b_end]);
        let order = if numeric {
            crate::num::cmp_digits(run_a, run_b)
        } else {
            run_a.cmp(run_b)
        };
        if order != Ordering::Equal {
            return order;
        }
        i = run_a_end;
        j = run_b_end;
    }
    // Whichever version still has characters left is newer.
    if i >= a.len() && j >= b.len() {
        Ordering::Equal
    } else if i >= a.len() {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}
