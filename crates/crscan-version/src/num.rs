//! Decimal digit strings compared as unbounded non-negative integers.
//!
//! Several schemes (SemVer, NuGet, Maven, RubyGems) allow numeric components of any length,
//! so ordering compares digit strings instead of parsing them into a fixed-width integer.

use std::cmp::Ordering;

/// Drops leading ASCII zeros; an all-zero string becomes empty (the value zero).
pub(crate) fn strip_zeros(digits: &[u8]) -> &[u8] {
    let first_non_zero = digits
        .iter()
        .position(|&byte| byte != b'0')
        .unwrap_or(digits.len());
    &digits[first_non_zero..]
}

/// Compares two ASCII digit strings by numeric value.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether `text` is one or more ASCII digits.
pub(crate) fn is_digits(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_by_value() {
        assert_eq!(cmp_digits(b"010", b"10"), Ordering::Equal);
        assert_eq!(cmp_digits(b"9", b"10"), Ordering::Less);
        assert_eq!(cmp_digits(b"000", b""), Ordering::Equal);
        assert_eq!(
            cmp_digits(
                b"999999999999999999999999999991",
                b"999999999999999999999999999999"
            ),
            Ordering::Less
        );
    }
}
