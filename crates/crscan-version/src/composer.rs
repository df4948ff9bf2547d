//! Composer / Packagist versions, ordered the way PHP's `version_compare()` does.
//!
//! Implements [`version_compare`](https://www.php.net/manual/en/function.version-compare.php)
//! after stripping one leading `v`/`V`, which is how osv-scanner and OSV's Packagist data
//! compare versions. The string is canonicalised (`-`, `_`, `+` and other non-alphanumeric
//! characters become `.`, and a `.` is inserted between digits and letters), then parts
//! compare pairwise: numbers by value (saturating at `i64::MAX`, as PHP's `strtol` does),
//! words by the special forms `dev < alpha = a < beta = b < RC = rc < # < pl = p`, matched
//! by prefix, with unknown words below all of them and a number counting as `#`. When one
//! version has more parts, the next part decides: a number makes it newer, a word is compared
//! against `#`. One deviation keeps the order total: PHP lets an empty trailing part (`1.0-`)
//! decide as if more followed, which makes `1.0-` less than itself; crscan treats it as the
//! end of the version.

use std::cmp::Ordering;

/// A parsed Packagist version: the canonical string and the byte ranges of its parts.
#[derive(Debug, Clone)]
pub(crate) struct Composer {
    canonical: Box<[u8]>,
    parts: Vec<(u32, u32)>,
}

pub(crate) fn parse(text: &str) -> Result<Composer, String> {
    let stripped = text.strip_prefix(['v', 'V']).unwrap_or(text);
    if stripped.is_empty() {
        return Err("empty version".into());
    }
    if stripped.len() > (u32::MAX / 2) as usize {
        return Err("version too long".into());
    }
    let canonical = canonicalize(stripped.as_bytes());
    let mut parts = Vec::new();
    let mut start = 0;
    for (index, byte) in canonical.iter().enumerate() {
        if *byte == b'.' {
            parts.push((start as u32, index as u32));
            start = index + 1;
        }
    }
    parts.push((start as u32, canonical.len() as u32));
    Ok(Composer {
        canonical: canonical.into_boxed_slice(),
        parts,
    })
}

/// PHP's `php_canonicalize_version`.
fn canonicalize(version: &[u8]) -> Vec<u8> {
    let is_digit = |byte: u8| byte.is_ascii_digit();
    let is_other = |byte: u8| !byte.is_ascii_digit() && byte != b'.';
    let mut out = Vec::with_capacity(version.len() * 2);
    let Some((&first, rest)) = version.split_first() else {
        return out;
    };
    out.push(first);
    let mut previous = first;
    for &byte in rest {
        let last_is_dot = out.last() == Some(&b'.');
        if matches!(byte, b'-' | b'_' | b'+') {
            if !last_is_dot {
                out.push(b'.');
            }
        } else if (is_other(previous) && is_digit(byte)) || (is_digit(previous) && is_other(byte)) {
            if !last_is_dot {
                out.push(b'.');
            }
            out.push(byte);
        } else if !byte.is_ascii_alphanumeric() {
            if !last_is_dot {
                out.push(b'.');
            }
        } else {
            out.push(byte);
        }
        previous = byte;
    }
    out
}

/// The parts of a version from some index on, or the `#N#` marker PHP compares against.
#[derive(Clone, Copy)]
enum Parts<'v> {
    Version(&'v Composer, usize),
    Marker,
}

const MARKER: &[u8] = b"#N#";

impl<'v> Parts<'v> {
    fn count(self) -> usize {
        match self {
            Parts::Version(version, from) => version.parts.len() - from,
            Parts::Marker => 1,
        }
    }

    fn get(self, index: usize) -> &'v [u8] {
        match self {
            Parts::Version(version, from) => {
                let (start, end) = version.parts[from + index];
                &version.canonical[start as usize..end as usize]
            }
            Parts::Marker => MARKER,
        }
    }

    /// Whether the text from part `index` on is empty.
    fn rest_is_empty(self, index: usize) -> bool {
        index + 1 == self.count() && self.get(index).is_empty()
    }

    fn from(self, index: usize) -> Parts<'v> {
        match self {
            Parts::Version(version, from) => Parts::Version(version, from + index),
            Parts::Marker => Parts::Marker,
        }
    }
}

fn special_form(part: &[u8]) -> i32 {
    const FORMS: [(&[u8], i32); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    FORMS
        .iter()
        .find(|(form, _)| part.starts_with(form))
        .map_or(-1, |&(_, order)| order)
}

fn starts_with_digit(part: &[u8]) -> bool {
    part.first().is_some_and(u8::is_ascii_digit)
}

/// PHP's `strtol` on a part that starts with digits, saturating like it does.
fn leading_number(part: &[u8]) -> i64 {
    let mut value: i64 = 0;
    for byte in part.iter().take_while(|byte| byte.is_ascii_digit()) {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(byte - b'0'));
    }
    value
}

fn compare_parts(a: &[u8], b: &[u8]) -> Ordering {
    match (starts_with_digit(a), starts_with_digit(b)) {
        (true, true) => leading_number(a).cmp(&leading_number(b)),
        (false, false) => special_form(a).cmp(&special_form(b)),
        (true, false) => special_form(MARKER).cmp(&special_form(b)),
        (false, true) => special_form(a).cmp(&special_form(MARKER)),
    }
}

/// PHP's `php_version_compare` on already canonical parts.
fn version_compare(a: Parts<'_>, b: Parts<'_>) -> Ordering {
    if a.rest_is_empty(0) || b.rest_is_empty(0) {
        return match (a.rest_is_empty(0), b.rest_is_empty(0)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            _ => Ordering::Greater,
        };
    }
    let mut index = 0;
    while index < a.count()
        && index < b.count()
        && !a.rest_is_empty(index)
        && !b.rest_is_empty(index)
    {
        let order = compare_parts(a.get(index), b.get(index));
        if order != Ordering::Equal {
            return order;
        }
        index += 1;
    }
    // PHP lets a version whose remaining text is empty (`6.`) decide as if it had more parts,
    // which makes it less than itself and both less and greater than `6.:`. crscan treats an
    // empty remainder as the end of the version, which keeps the order total.
    let a_has_more = index < a.count() && !a.rest_is_empty(index);
    let b_has_more = index < b.count() && !b.rest_is_empty(index);
    if a_has_more {
        if starts_with_digit(a.get(index)) {
            Ordering::Greater
        } else {
            version_compare(a.from(index), Parts::Marker)
        }
    } else if b_has_more {
        if starts_with_digit(b.get(index)) {
            Ordering::Less
        } else {
            version_compare(Parts::Marker, b.from(index))
        }
    } else {
        Ordering::Equal
    }
}

pub(crate) fn compare(a: &Composer, b: &Composer) -> Ordering {
    version_compare(Parts::Version(a, 0), Parts::Version(b, 0))
}
