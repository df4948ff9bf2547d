//! Alpine package versions (also Wolfi and Chainguard), ordered the way apk-tools 3 does.
//!
//! Implements the ordering of apk-tools' `src/version.c`
//! (<https://gitlab.alpinelinux.org/alpine/apk-tools/-/blob/master/src/version.c>), whose
//! grammar is `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}` with the suffixes
//! `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`. A dotted number
//! with a leading zero compares as a string (`1.01 < 1.1`), as Gentoo does; other numbers
//! compare numerically.
//!
//! apk orders strings that break the grammar too: it compares token by token up to the
//! first invalid token, and an invalid tail sorts below the end of a version. crscan keeps
//! that behaviour (package databases do contain such versions) and only rejects the empty
//! string. Where apk-tools 3 stops at an invalid token but apk-tools 2 (which produced
//! osv-scalibr's generated Alpine fixtures, and still runs on older Alpine releases) read
//! on, crscan reads on like apk-tools 2: a number right after a letter (`5.7.1p1`) and `-r`
//! without a number (`-r0`). Where apk calls two malformed versions equal because they
//! break the grammar at the same token, crscan breaks the tie the way osv-scalibr's
//! hand-written fixtures expect (see `compare_malformed_tails`), so OSV data is ordered
//! consistently with other OSV tools.

use std::cmp::Ordering;

// Token kinds, in the order apk compares them at the point where two versions diverge.
const INITIAL_DIGIT: u8 = 0;
const DIGIT: u8 = 1;
const LETTER: u8 = 2;
const SUFFIX: u8 = 3;
const SUFFIX_NUMBER: u8 = 4;
const COMMIT_HASH: u8 = 5;
const REVISION: u8 = 6;
const END: u8 = 7;
const INVALID: u8 = 8;

/// The rank of the empty suffix: suffixes below it are pre-releases.
const SUFFIX_NONE: u8 = 5;

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: u8,
    suffix: u8,
    number: u64,
    start: u32,
    end: u32,
}

/// A parsed apk version: its tokens, always ending with an `END` or `INVALID` token.
#[derive(Debug, Clone)]
pub(crate) struct Apk {
    tokens: Vec<Token>,
}

fn suffix_rank(word: &[u8]) -> Option<u8> {
    Some(match word {
        b"alpha" => 1,
        b"beta" => 2,
        b"pre" => 3,
        b"rc" => 4,
        b"cvs" => 6,
        b"svn" => 7,
        b"git" => 8,
        b"hg" => 9,
        b"p" => 10,
        _ => return None,
    })
}

pub(crate) fn parse(text: &str) -> Result<Apk, String> {
    if text.is_empty() {
        return Err("empty version".into());
    }
    if text.len() > u32::MAX as usize {
        return Err("version too long".into());
    }
    let bytes = text.as_bytes();
    let mut tokens = Vec::with_capacity(8);
    let mut position = 0;
    let mut begin = 0;
    let mut token = digits_token(bytes, &mut position, INITIAL_DIGIT);
    loop {
        if token.kind == INVALID {
            // An invalid token keeps the whole malformed tail, from where it began.
            token.start = begin as u32;
            token.end = text.len() as u32;
        }
        tokens.push(token);
        if token.kind >= END {
            return Ok(Apk { tokens });
        }
        begin = position;
        token = next_token(bytes, &mut position, token.kind);
    }
}

fn invalid(position: usize) -> Token {
    Token {
        kind: INVALID,
        suffix: 0,
        number: 0,
        start: position as u32,
        end: position as u32,
    }
}

/// Reads a run of digits as a token of `kind`, or an invalid token when there is none.
fn digits_token(bytes: &[u8], position: &mut usize, kind: u8) -> Token {
    let start = *position;
    let mut number: u64 = 0;
    while *position < bytes.len() && bytes[*position].is_ascii_digit() {
        number = number
            .wrapping_mul(10)
            .wrapping_add(u64::from(bytes[*position] - b'0'));
        *position += 1;
    }
    if *position == start {
        return invalid(start);
    }
    Token {
        kind,
        suffix: 0,
        number,
        start: start as u32,
        end: *position as u32,
    }
}

fn next_token(bytes: &[u8], position: &mut usize, previous: u8) -> Token {
    let Some(&byte) = bytes.get(*position) else {
        return Token {
            kind: END,
            ..invalid(*position)
        };
    };
    match byte {
        b'a'..=b'z' => {
            if previous > DIGIT {
                return invalid(*position);
            }
            *position += 1;
            Token {
                kind: LETTER,
                suffix: 0,
                number: u64::from(byte),
                start: (*position - 1) as u32,
                end: *position as u32,
            }
        }
        b'.' | b'0'..=b'9' => {
            if byte == b'.' {
                if previous > DIGIT {
                    return invalid(*position);
                }
                *position += 1;
            }
            let kind = match previous {
                INITIAL_DIGIT | DIGIT => DIGIT,
                // apk-tools 2 reads a number right after a letter (`5.7.1p1`) as a new
                // dotted number; apk-tools 3 rejects it.
                LETTER if byte != b'.' => DIGIT,
                SUFFIX => SUFFIX_NUMBER,
                _ => return invalid(*position),
            };
            digits_token(bytes, position, kind)
        }
        b'_' => {
            if previous > SUFFIX_NUMBER {
                return invalid(*position);
            }
            *position += 1;
            let start = *position;
            while *position < bytes.len() && bytes[*position].is_ascii_lowercase() {
                *position += 1;
            }
            match suffix_rank(&bytes[start..*position]) {
                Some(rank) => Token {
                    kind: SUFFIX,
                    suffix: rank,
                    number: 0,
                    start: start as u32,
                    end: *position as u32,
                },
                None => invalid(start),
            }
        }
        b'~' => {
            if previous >= COMMIT_HASH {
                return invalid(*position);
            }
            *position += 1;
            let start = *position;
            while *position < bytes.len() && bytes[*position].is_ascii_hexdigit() {
                *position += 1;
            }
            if *position == start {
                return invalid(start);
            }
            Token {
                kind: COMMIT_HASH,
                suffix: 0,
                number: 0,
                start: start as u32,
                end: *position as u32,
            }
        }
        b'-' => {
            if previous >= REVISION || bytes.get(*position + 1) != Some(&b'r') {
                return invalid(*position);
            }
            *position += 2;
            let token = digits_token(bytes, position, REVISION);
            if token.kind == INVALID && !bytes.get(*position).is_some_and(u8::is_ascii_alphabetic) {
                // apk-tools 2 reads `-r` without a number as `-r0`.
                return Token {
                    kind: REVISION,
                    ..token
                };
            }
            token
        }
        _ => invalid(*position),
    }
}

fn value<'t>(text: &'t str, token: &Token) -> &'t [u8] {
    &text.as_bytes()[token.start as usize..token.end as usize]
}

/// Orders two malformed tails after equal leading tokens, where apk itself says "equal".
///
/// A tail starting with `-` is ignored, as osv-scalibr ignores what follows a build
/// component (`1-ruff2 = 1--ruff1`); other tails compare bytewise, as osv-scalibr compares
/// malformed versions (`0..8 > 0...8`). Mapping every `-` tail to the same key keeps the
/// order total.
fn compare_malformed_tails(a: &[u8], b: &[u8]) -> Ordering {
    fn key(tail: &[u8]) -> &[u8] {
        if tail.first() == Some(&b'-') {
            b"-"
        } else {
            tail
        }
    }
    key(a).cmp(key(b))
}

/// apk's `apk_blob_sort`: bytes first, then the shorter string first.
fn string_order(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

fn compare_tokens(a_text: &str, a: &Token, b_text: &str, b: &Token) -> Ordering {
    match a.kind {
        DIGIT => {
            let (a_value, b_value) = (value(a_text, a), value(b_text, b));
            if a_value.first() == Some(&b'0') || b_value.first() == Some(&b'0') {
                string_order(a_value, b_value)
            } else {
                a.number.cmp(&b.number)
            }
        }
        INITIAL_DIGIT | SUFFIX_NUMBER | REVISION | LETTER => a.number.cmp(&b.number),
        SUFFIX => a.suffix.cmp(&b.suffix),
        _ => string_order(value(a_text, a), value(b_text, b)),
    }
}

pub(crate) fn compare(a_text: &str, a: &Apk, b_text: &str, b: &Apk) -> Ordering {
    let mut index = 0;
    let (last_a, last_b) = loop {
        let (Some(token_a), Some(token_b)) = (a.tokens.get(index), b.tokens.get(index)) else {
            // Token lists always end with END or INVALID, so this is not reached.
            return Ordering::Equal;
        };
        if token_a.kind != token_b.kind || token_a.kind >= END {
            break (token_a, token_b);
        }
        let order = compare_tokens(a_text, token_a, b_text, token_b);
        if order != Ordering::Equal {
            return order;
        }
        index += 1;
    };
    if last_a.kind == last_b.kind {
        if last_a.kind == INVALID {
            return compare_malformed_tails(value(a_text, last_a), value(b_text, last_b));
        }
        return Ordering::Equal;
    }
    // Everything before is equal: the longer version is newer unless it continues with a
    // pre-release suffix.
    if last_a.kind == SUFFIX && last_a.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if last_b.kind == SUFFIX && last_b.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    last_b.kind.cmp(&last_a.kind)
}
