//! Maven artifact versions, ordered the way Maven's `ComparableVersion` does.
//!
//! Implements the [version order specification](https://maven.apache.org/pom.html#version-order-specification)
//! as `org.apache.maven.artifact.versioning.ComparableVersion` behaves in Maven 3.9 and 4:
//! versions split at `.`, `-` and digit/letter transitions into numbers, qualifiers and
//! nested lists (a `-` or a transition starts a sub-list); trailing "null" items (`0`, empty,
//! `ga`, `final`, `release`) are dropped; qualifiers order
//! `alpha < beta < milestone < rc = cr < snapshot < (release) < sp < anything else`
//! (unknown qualifiers lexically); `a1`, `b1`, `m1` mean `alpha-1`, `beta-1`, `milestone-1`;
//! and a qualifier followed by a number (`rc1`, `rc-1`) is one combined item.
//!
//! Where Maven 3.9 and 4 disagree (a handful of combined qualifiers such as
//! `1.0.final-redhat` against `1.0-sp1-redhat`, and non-ASCII digits), crscan follows Maven 4,
//! with one exception, the one users meet most: a qualifier with its number joined by a
//! transition or a `-` (`RC1`, `rc-1`) against the same qualifier followed by `.` and a
//! number (`rc.1`). Maven 3.9 (maven-artifact 3.9.12, what builds run today) reads `rc1`
//! and `rc-1` as `rc` followed by the sub-list `[1]`, and a sub-list orders before a
//! number in the same place (`ListItem < IntItem`: `1-1 < 1.1`), so
//! `0.8.9.RC1 < 0.8.9-rc.1` and `11.0.29-rc-1 < 11.0.29-rc.1`. Maven 4's `CombinationItem`
//! `rc1` instead compares greater than the plain qualifier `rc` whatever follows it, which
//! says the opposite; crscan follows Maven 3.9 there ([`combination_before_number`]).
//! Unknown qualifiers compare by Unicode code point rather than by Java's UTF-16 units; the
//! two differ only for characters outside the Basic Multilingual Plane.

use std::cmp::Ordering;

/// One item of a parsed Maven version.
#[derive(Debug, Clone)]
enum Item {
    /// A number: ASCII digits without leading zeros (`"0"` for zero).
    Number(Box<str>),
    /// A qualifier, stored as its comparable key; `null` when the qualifier is empty.
    Qualifier { key: Box<str>, null: bool },
    /// A qualifier immediately followed by a number, such as `rc1`.
    Combination {
        qualifier: Box<str>,
        number: Box<str>,
    },
    /// A sub-list started by `-` or a digit/letter transition.
    List(Vec<Item>),
}

/// A parsed Maven version: its top-level item list.
#[derive(Debug, Clone)]
pub(crate) struct Maven {
    items: Vec<Item>,
}

/// The key of the release qualifier, against which a missing item compares.
const RELEASE_KEY: &str = "5";

fn qualifier_key(value: &str) -> String {
    match value {
        "alpha" => "0".into(),
        "beta" => "1".into(),
        "milestone" => "2".into(),
        "rc" | "cr" => "3".into(),
        "snapshot" => "4".into(),
        "" | "ga" | "final" | "release" => RELEASE_KEY.into(),
        "sp" => "6".into(),
        other => format!("7-{other}"),
    }
}

/// Expands the one-letter qualifiers that are followed by a digit (`a1` is `alpha-1`).
fn expand(value: &str, followed_by_digit: bool) -> &str {
    match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        other => other,
    }
}

fn qualifier(value: &str) -> Item {
    Item::Qualifier {
        key: qualifier_key(value).into(),
        null: value.is_empty(),
    }
}

fn strip_number(digits: &str) -> Box<str> {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() { "0" } else { stripped }.into()
}

fn number(digits: &str) -> Item {
    Item::Number(strip_number(digits))
}

fn combination(buffer: &str) -> Result<Item, String> {
    let buffer: String = buffer.chars().filter(|&c| c != '-').collect();
    let split = buffer
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("qualifier {buffer:?} has a non-ASCII digit"))?;
    let (word, digits) = buffer.split_at(split);
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("qualifier {buffer:?} has a non-ASCII digit"));
    }
    Ok(Item::Combination {
        qualifier: qualifier_key(expand(word, true)).into(),
        number: strip_number(digits),
    })
}

fn item(is_combination: bool, is_digit: bool, buffer: &str) -> Result<Item, String> {
    if is_combination {
        combination(buffer)
    } else if is_digit {
        Ok(number(buffer))
    } else {
        Ok(qualifier(buffer))
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(digits) => &**digits == "0",
            Item::Qualifier { null, .. } => *null,
            Item::Combination { .. } => false,
            Item::List(items) => items.is_empty(),
        }
    }
}

/// Drops null items that are last or followed by a qualifier (or by a list starting with one).
fn normalize(items: &mut Vec<Item>) {
    let mut index = items.len();
    while index > 0 {
        index -= 1;
        if !items[index].is_null() {
            continue;
        }
        let remove = match items.get(index + 1) {
            None | Some(Item::Qualifier { .. }) => true,
            Some(Item::List(next)) => matches!(
                next.first(),
                Some(Item::Combination { .. } | Item::Qualifier { .. })
            ),
            Some(_) => false,
        };
        if remove {
            items.remove(index);
        }
    }
}

pub(crate) fn parse(text: &str) -> Result<Maven, String> {
    if text.is_empty() {
        return Err("empty version".into());
    }
    let lowered = text.to_lowercase();
    let chars: Vec<(usize, char)> = lowered.char_indices().collect();
    // The innermost list is last; each list will become the last item of the one before.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut is_combination = false;
    let mut start = 0;
    let byte_at = |index: usize| chars.get(index).map_or(lowered.len(), |&(byte, _)| byte);
    let buffer = |from: usize, to: usize| &lowered[byte_at(from)..byte_at(to)];
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index].1;
        let current = stack.len() - 1;
        if c == '.' {
            if index == start {
                stack[current].push(number("0"));
            } else {
                let parsed = item(is_combination, is_digit, buffer(start, index))?;
                stack[current].push(parsed);
            }
            is_combination = false;
            start = index + 1;
        } else if c == '-' {
            if index == start {
                stack[current].push(number("0"));
            } else {
                // `X-1` is read as `X1`.
                if !is_digit && index + 1 < chars.len() && chars[index + 1].1.is_numeric() {
                    is_combination = true;
                    index += 1;
                    continue;
                }
                let parsed = item(is_combination, is_digit, buffer(start, index))?;
                stack[current].push(parsed);
            }
            start = index + 1;
            if !stack[current].is_empty() {
                stack.push(Vec::new());
            }
            is_combination = false;
        } else if c.is_ascii_digit() {
            if !is_digit && index > start {
                is_combination = true;
                if !stack[current].is_empty() {
                    stack.push(Vec::new());
                }
            }
            is_digit = true;
        } else {
            if is_digit && index > start {
                let parsed = item(is_combination, true, buffer(start, index))?;
                stack[current].push(parsed);
                start = index;
                stack.push(Vec::new());
                is_combination = false;
            }
            is_digit = false;
        }
        index += 1;
    }
    if chars.len() > start {
        // `1.0.0.X1 < 1.0.0-X2`: a trailing qualifier after `.` is treated like one after `-`.
        let current = stack.len() - 1;
        if !is_digit && !stack[current].is_empty() {
            stack.push(Vec::new());
        }
        let parsed = item(is_combination, is_digit, buffer(start, chars.len()))?;
        let current = stack.len() - 1;
        stack[current].push(parsed);
    }
    let mut items = stack.pop().unwrap_or_default();
    normalize(&mut items);
    while let Some(mut parent) = stack.pop() {
        parent.push(Item::List(items));
        normalize(&mut parent);
        items = parent;
    }
    Ok(Maven { items })
}

fn cmp_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares an item with a missing item (the other version is shorter).
fn compare_with_nothing(item: &Item) -> Ordering {
    match item {
        Item::Number(digits) => {
            if &**digits == "0" {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Qualifier { key, .. } | Item::Combination { qualifier: key, .. } => {
            (**key).cmp(RELEASE_KEY)
        }
        Item::List(items) => items
            .iter()
            .map(compare_with_nothing)
            .find(|order| *order != Ordering::Equal)
            .unwrap_or(Ordering::Equal),
    }
}

fn compare_items(a: &Item, b: &Item) -> Ordering {
    use Item::{Combination, List, Number, Qualifier};
    match (a, b) {
        (Number(x), Number(y)) => cmp_numbers(x, y),
        (Number(_), _) => Ordering::Greater,
        (_, Number(_)) => Ordering::Less,
        (Qualifier { key: x, .. }, Qualifier { key: y, .. }) => x.cmp(y),
        (Qualifier { key: x, .. }, Combination { qualifier: y, .. }) => match x.cmp(y) {
            Ordering::Equal => Ordering::Less,
            order => order,
        },
        (Combination { qualifier: x, .. }, Qualifier { key: y, .. }) => match x.cmp(y) {
            Ordering::Equal => Ordering::Greater,
            order => order,
        },
        (
            Combination {
                qualifier: x,
                number: nx,
            },
            Combination {
                qualifier: y,
                number: ny,
            },
        ) => x.cmp(y).then_with(|| cmp_numbers(nx, ny)),
        (Qualifier { .. } | Combination { .. }, List(_)) => Ordering::Less,
        (List(_), Qualifier { .. } | Combination { .. }) => Ordering::Greater,
        (List(x), List(y)) => compare_lists(x, y),
    }
}

/// Maven 3.9's order of a combination `qN` (`rc1`, `rc-1`) against the same qualifier
/// `q` followed in its list by a number (`rc.1`): the combination is `q` then the
/// sub-list `[N]`, and a sub-list orders before a number, so it is less. `None` when
/// the pair is not of that shape (the usual item order then decides).
fn combination_before_number(
    combination: &Item,
    qualifier: &Item,
    after_qualifier: Option<&Item>,
) -> Option<Ordering> {
    match (combination, qualifier, after_qualifier) {
        (
            Item::Combination {
                qualifier: combined,
                ..
            },
            Item::Qualifier { key, .. },
            Some(Item::Number(_)),
        ) if combined == key => Some(Ordering::Less),
        _ => None,
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    let longest = a.len().max(b.len());
    for index in 0..longest {
        let order = match (a.get(index), b.get(index)) {
            (Some(x), Some(y)) => combination_before_number(x, y, b.get(index + 1))
                .or_else(|| {
                    combination_before_number(y, x, a.get(index + 1)).map(Ordering::reverse)
                })
                .unwrap_or_else(|| compare_items(x, y)),
            (Some(x), None) => compare_with_nothing(x),
            (None, Some(y)) => compare_with_nothing(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

pub(crate) fn compare(a: &Maven, b: &Maven) -> Ordering {
    compare_lists(&a.items, &b.items)
}
