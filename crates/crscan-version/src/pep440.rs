//! Python package versions, ordered by [PEP 440](https://peps.python.org/pep-0440/).
//!
//! Implements the version scheme and its normalisation rules
//! (<https://packaging.python.org/en/latest/specifications/version-specifiers/>) as
//! `packaging.version.Version` does: case-insensitive, optional `v` prefix, `!` epochs,
//! release segments compared without trailing zeros, pre-releases (`a`/`alpha`,
//! `b`/`beta`, `rc`/`c`/`pre`/`preview`) with optional separators and implicit `0`,
//! post-releases (`.post1`, `-1`, `rev`, `r`), dev releases, and local versions (`+ubuntu.1`,
//! where numbers sort after words).
//!
//! Versions that are not PEP 440 ("legacy" versions such as `0.1-bulbasaur`, rejected by
//! `packaging` since version 22) are errors. Numbers must fit in 64 bits.

use std::cmp::Ordering;

/// One dot-separated part of a local version label; words sort before numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Word(Box<str>),
    Number(u64),
}

/// The ordering key of a PEP 440 version; the derived order is PEP 440 order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pep440 {
    epoch: u64,
    /// The release segment without trailing zeros.
    release: Vec<u64>,
    /// (0, ..) for a dev release of a final version, (1, kind, number) for a pre-release,
    /// (2, ..) otherwise.
    pre: (u8, u8, u64),
    post: Option<u64>,
    /// (0, number) for a dev release, (1, 0) otherwise.
    dev: (u8, u64),
    local: Option<Vec<LocalPart>>,
}

struct Cursor<'t> {
    bytes: &'t [u8],
    position: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn eat_separator(&mut self) -> bool {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.bytes[self.position..];
        let index = words
            .iter()
            .position(|word| rest.starts_with(word.as_bytes()))?;
        self.position += words[index].len();
        Some(index)
    }

    fn number(&mut self) -> Result<Option<u64>, String> {
        let start = self.position;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
        if start == self.position {
            return Ok(None);
        }
        let digits = &self.bytes[start..self.position];
        let mut value: u64 = 0;
        for digit in digits {
            value = value
                .checked_mul(10)
                .and_then(|value| value.checked_add(u64::from(digit - b'0')))
                .ok_or_else(|| format!("number {} is too big", String::from_utf8_lossy(digits)))?;
        }
        Ok(Some(value))
    }
}

pub(crate) fn parse(text: &str) -> Result<Pep440, String> {
    let lowered = text.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return Err("empty version".into());
    }
    let mut cursor = Cursor {
        bytes: lowered.as_bytes(),
        position: 0,
    };
    if cursor.peek() == Some(b'v') {
        cursor.position += 1;
    }
    // Epoch and release.
    let first = cursor.number()?.ok_or("expected a release number")?;
    let mut epoch = 0;
    let mut release = vec![first];
    if cursor.peek() == Some(b'!') {
        cursor.position += 1;
        epoch = first;
        release = vec![
            cursor
                .number()?
                .ok_or("expected a release number after `!`")?,
        ];
    }
    while cursor.peek() == Some(b'.') {
        let mark = cursor.position;
        cursor.position += 1;
        match cursor.number()? {
            Some(number) => release.push(number),
            None => {
                cursor.position = mark;
                break;
            }
        }
    }
    // Pre-release.
    let mut pre = None;
    let mark = cursor.position;
    cursor.eat_separator();
    const PRE_WORDS: [&str; 8] = ["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"];
    match cursor.eat_word(&PRE_WORDS) {
        Some(index) => {
            let kind = match PRE_WORDS[index] {
                "alpha" | "a" => 0,
                "beta" | "b" => 1,
                _ => 2,
            };
            let after_word = cursor.position;
            cursor.eat_separator();
            let number = match cursor.number()? {
                Some(number) => number,
                None => {
                    cursor.position = after_word;
                    0
                }
            };
            pre = Some((kind, number));
        }
        None => cursor.position = mark,
    }
    // Post-release: `-N`, or a `post`/`rev`/`r` word.
    let mut post = None;
    let mark = cursor.position;
    if cursor.peek() == Some(b'-') {
        cursor.position += 1;
        if let Some(number) = cursor.number()? {
            post = Some(number);
        } else {
            cursor.position = mark;
        }
    }
    if post.is_none() {
        cursor.eat_separator();
        if cursor.eat_word(&["post", "rev", "r"]).is_some() {
            let after_word = cursor.position;
            cursor.eat_separator();
            post = Some(match cursor.number()? {
                Some(number) => number,
                None => {
                    cursor.position = after_word;
                    0
                }
            });
        } else {
            cursor.position = mark;
        }
    }
    // Dev release.
    let mut dev = None;
    let mark = cursor.position;
    cursor.eat_separator();
    if cursor.eat_word(&["dev"]).is_some() {
        let after_word = cursor.position;
        cursor.eat_separator();
        dev = Some(match cursor.number()? {
            Some(number) => number,
            None => {
                cursor.position = after_word;
                0
            }
        });
    } else {
        cursor.position = mark;
    }
    // Local version.
    let mut local = None;
    if cursor.peek() == Some(b'+') {
        let label = &lowered[cursor.position + 1..];
        let mut parts = Vec::new();
        for part in label.split(['.', '-', '_']) {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
                return Err(format!("invalid local version label {label:?}"));
            }
            parts.push(match part.parse::<u64>() {
                Ok(number) if part.bytes().all(|byte| byte.is_ascii_digit()) => {
                    LocalPart::Number(number)
                }
                _ if part.bytes().all(|byte| byte.is_ascii_digit()) => {
                    return Err(format!("number {part} is too big"));
                }
                _ => LocalPart::Word(part.into()),
            });
        }
        local = Some(parts);
        cursor.position = lowered.len();
    }
    if cursor.position != lowered.len() {
        return Err(format!("unexpected {:?}", &lowered[cursor.position..]));
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let pre = match (pre, post, dev) {
        (None, None, Some(_)) => (0, 0, 0),
        (None, _, _) => (2, 0, 0),
        (Some((kind, number)), _, _) => (1, kind, number),
    };
    Ok(Pep440 {
        epoch,
        release,
        pre,
        post,
        dev: dev.map_or((1, 0), |number| (0, number)),
        local,
    })
}

pub(crate) fn compare(a: &Pep440, b: &Pep440) -> Ordering {
    a.cmp(b)
}
