//! `Range` requests on blob pulls, as RFC 9110 §14 defines them
//! (<https://www.rfc-editor.org/rfc/rfc9110#section-14>), so that an interrupted layer
//! download can resume where it stopped.
//!
//! The decisions, each one the RFC allows:
//! - one `bytes` range is served as `206` with `Content-Range`; an end past the blob
//!   is cut at the blob's end, and a suffix range (`bytes=-500`) is the last bytes;
//! - only a range that starts at or past the end of the blob, or a suffix of zero
//!   bytes, is unsatisfiable (`416` with `Content-Range: bytes */SIZE`);
//! - a header that is not a valid `bytes` ranges-specifier (another unit, bad syntax,
//!   an end before its start) is ignored, and so is a request for several ranges:
//!   the answer is `200` with the whole blob, never `multipart/byteranges`;
//! - `HEAD` ignores `Range` (GET is the only method the RFC defines it for), and so
//!   does a `GET` of an empty blob asking for a suffix.

use axum::http::HeaderValue;

/// One `bytes` range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// `first-` or `first-last` (inclusive).
    FromTo { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix { length: u64 },
}

/// What a `Range` header asks for, once invalid and multiple ranges are set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No header, one to ignore, or several ranges: the whole blob.
    Whole,
    /// One range.
    One(ByteRange),
}

/// A range resolved against the blob's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Send the whole blob with `200`.
    Whole,
    /// Send the inclusive bytes `start..=end` with `206`.
    Part { start: u64, end: u64 },
    /// Answer `416`.
    Unsatisfiable,
}

/// Reads a `Range` header value.
pub(crate) fn parse(value: Option<&HeaderValue>) -> RangeRequest {
    let Some(text) = value.and_then(|value| value.to_str().ok()) else {
        return RangeRequest::Whole;
    };
    let Some((unit, set)) = text.split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    // `1#range-spec`: empty list elements are allowed and skipped (RFC 9110 §5.6.1).
    let mut specs = set
        .split(',')
        .map(|spec| spec.trim_matches([' ', '\t']))
        .filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeRequest::Whole;
    };
    match parse_spec(spec) {
        Some(range) => RangeRequest::One(range),
        None => RangeRequest::Whole,
    }
}

/// `first-pos "-" [ last-pos ]` or `"-" suffix-length`; `None` when invalid.
fn parse_spec(spec: &str) -> Option<ByteRange> {
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(ByteRange::Suffix {
            length: number(last)?,
        });
    }
    let first = number(first)?;
    let last = match last {
        "" => None,
        last => Some(number(last)?),
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(ByteRange::FromTo { first, last })
}

/// `1*DIGIT`; a number too large for 64 bits saturates (it is past any blob's end).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// Resolves a request against a blob of `size` bytes.
pub(crate) fn resolve(request: RangeRequest, size: u64) -> Resolved {
    let RangeRequest::One(range) = request else {
        return Resolved::Whole;
    };
    match range {
        ByteRange::FromTo { first, .. } if first >= size => Resolved::Unsatisfiable,
        ByteRange::FromTo { first, last } => Resolved::Part {
            start: first,
            end: last.map_or(size - 1, |last| last.min(size - 1)),
        },
        ByteRange::Suffix { length: 0 } => Resolved::Unsatisfiable,
        ByteRange::Suffix { .. } if size == 0 => Resolved::Whole,
        ByteRange::Suffix { length } => Resolved::Part {
            start: size - length.min(size),
            end: size - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> RangeRequest {
        parse(Some(&HeaderValue::from_str(text).unwrap()))
    }

    fn resolved(text: &str, size: u64) -> Resolved {
        resolve(request(text), size)
    }

    #[test]
    fn one_range_is_cut_at_the_end_of_the_blob() {
        assert_eq!(
            resolved("bytes=0-99", 2048),
            Resolved::Part { start: 0, end: 99 }
        );
        assert_eq!(
            resolved("bytes=2000-9999", 2048),
            Resolved::Part {
                start: 2000,
                end: 2047
            }
        );
        assert_eq!(
            resolved("bytes=10-", 2048),
            Resolved::Part {
                start: 10,
                end: 2047
            }
        );
        assert_eq!(
            resolved("BYTES=2047-2047", 2048),
            Resolved::Part {
                start: 2047,
                end: 2047
            }
        );
    }

    #[test]
    fn suffix_ranges_are_the_last_bytes() {
        assert_eq!(
            resolved("bytes=-500", 2048),
            Resolved::Part {
                start: 1548,
                end: 2047
            }
        );
        assert_eq!(
            resolved("bytes=-5000", 2048),
            Resolved::Part {
                start: 0,
                end: 2047
            }
        );
        assert_eq!(resolved("bytes=-0", 2048), Resolved::Unsatisfiable);
        assert_eq!(resolved("bytes=-5", 0), Resolved::Whole);
    }

    #[test]
    fn only_a_start_past_the_end_is_unsatisfiable() {
        assert_eq!(resolved("bytes=2048-", 2048), Resolved::Unsatisfiable);
        assert_eq!(resolved("bytes=5000-6000", 2048), Resolved::Unsatisfiable);
        assert_eq!(resolved("bytes=0-", 0), Resolved::Unsatisfiable);
        assert_eq!(
            resolved("bytes=99999999999999999999999-", 2048),
            Resolved::Unsatisfiable
        );
    }

    #[test]
    fn invalid_and_multiple_ranges_are_ignored() {
        for text in [
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=",
            "bytes=-",
            "bytes 0-1",
            "items=0-1",
            "bytes=0-1,5-9",
            "bytes=0-1, -5",
            "bytes= 0-1",
        ] {
            let expected = if text == "bytes= 0-1" {
                // Whitespace around a list element is allowed.
                Resolved::Part { start: 0, end: 1 }
            } else {
                Resolved::Whole
            };
            assert_eq!(resolved(text, 2048), expected, "{text}");
        }
        assert_eq!(resolve(parse(None), 10), Resolved::Whole);
        assert_eq!(
            resolved("bytes=0-1,,", 2048),
            Resolved::Part { start: 0, end: 1 }
        );
    }
}
