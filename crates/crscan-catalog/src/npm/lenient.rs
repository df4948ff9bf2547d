//! Lenient building blocks for reading lockfiles with serde.
//!
//! A lockfile is untrusted input: one entry with a number where a string belongs must
//! not make the whole file unreadable, so these types accept any value and keep only
//! what has the expected shape. Strings are borrowed from the input when it holds them
//! unescaped, so reading a large lockfile copies little.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use crscan_model::ImageFile;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Detected;

/// A string that may be borrowed from the input; any other value reads as `None`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    /// The string, or `""` when the value was missing or not a string.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Borrowed(value))))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Owned(value.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Owned(value))))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<Text<'a>, E> {
        Ok(Text(None))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Owned(value.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Owned(value.to_string()))))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Text<'a>, E> {
        Ok(Text(Some(Cow::Owned(value.to_string()))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<'a>, E> {
        Ok(Text(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Text<'a>, E> {
        Ok(Text(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text<'a>, D::Error> {
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text<'a>, D::Error> {
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

/// A boolean; any other value reads as `false`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag(pub(crate) bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        let text = deserializer.deserialize_any(FlagVisitor)?;
        Ok(text)
    }
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Flag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
        Ok(Flag(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Flag, E> {
        Ok(Flag(value == "true"))
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> Result<Flag, E> {
        Ok(Flag(false))
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> Result<Flag, E> {
        Ok(Flag(false))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<Flag, E> {
        Ok(Flag(false))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
        Ok(Flag(false))
    }

    fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
        Ok(Flag(false))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Flag, D::Error> {
        deserializer.deserialize_any(FlagVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flag, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Flag(false))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Flag, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Flag(false))
    }
}

/// A map-shaped value (a struct or a map type `T`) when the input holds a map there;
/// anything else (a string, a list, `null`) reads as `None` instead of failing the
/// whole document.
#[derive(Debug)]
pub(crate) struct Maybe<T>(pub(crate) Option<T>);

impl<T> Default for Maybe<T> {
    fn default() -> Maybe<T> {
        Maybe(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Maybe<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Maybe<T>, D::Error> {
        deserializer.deserialize_any(MaybeVisitor(std::marker::PhantomData))
    }
}

struct MaybeVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for MaybeVisitor<T> {
    type Value = Maybe<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Maybe<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|value| Maybe(Some(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Maybe<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Maybe(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Maybe<T>, D::Error> {
        deserializer.deserialize_any(MaybeVisitor(std::marker::PhantomData))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Maybe<T>, E> {
        Ok(Maybe(None))
    }
}

/// `bytes` without a leading UTF-8 byte order mark, which .NET and some Windows
/// editors write and JSON parsers reject.
pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Reads `file` as a JSON `T`, after any byte-order mark. A file that is not gives
/// `None` and one diagnostic of `detector`, `not WHAT: <error>`.
pub(crate) fn parse_json<'a, T: Deserialize<'a>>(
    file: &'a ImageFile,
    detector: &str,
    what: &str,
    out: &mut Detected,
) -> Option<T> {
    if crate::skipped_over_limit(detector, file, out) {
        return None;
    }
    MAP_ENTRIES.with(|count| count.set(0));
    match serde_json::from_slice(without_bom(&file.contents)) {
        Ok(value) => Some(value),
        Err(error) => {
            out.diagnostic(detector, &file.path, format!("not {what}: {error}"));
            None
        }
    }
}

/// A list of `T` when the input holds a list there; anything else reads as empty.
#[derive(Debug)]
pub(crate) struct List<T>(pub(crate) Vec<T>);

impl<T> Default for List<T> {
    fn default() -> List<T> {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<List<T>, D::Error> {
        deserializer.deserialize_any(ListVisitor(std::marker::PhantomData))
    }
}

struct ListVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List<T>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(List(Vec::new()))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<List<T>, D::Error> {
        deserializer.deserialize_any(ListVisitor(std::marker::PhantomData))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<List<T>, E> {
        Ok(List(Vec::new()))
    }
}

/// Most entries one [`Bounded`] map holds.
pub(crate) const MAX_MAP_ENTRIES: usize = crate::MAX_PACKAGES_PER_FILE;

/// Most entries all [`Bounded`] maps of one file hold together (a version 1
/// lockfile nests a map per package).
pub(crate) const MAX_FILE_MAP_ENTRIES: usize = 4 * crate::MAX_PACKAGES_PER_FILE;

thread_local! {
    /// Entries read into [`Bounded`] maps since [`parse_json`] began this file.
    static MAP_ENTRIES: Cell<usize> = const { Cell::new(0) };
}

/// A map that refuses to grow past [`MAX_MAP_ENTRIES`] entries, or past
/// [`MAX_FILE_MAP_ENTRIES`] for all such maps of one file: a crafted lockfile of
/// tens of megabytes is then an error naming the limit, not gigabytes of entries.
#[derive(Debug)]
pub(crate) struct Bounded<K, V>(pub(crate) HashMap<K, V>);

impl<K, V> std::ops::Deref for Bounded<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.0
    }
}

impl<'de, K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>> Deserialize<'de> for Bounded<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bounded<K, V>, D::Error> {
        deserializer.deserialize_map(BoundedVisitor(std::marker::PhantomData))
    }
}

struct BoundedVisitor<K, V>(std::marker::PhantomData<(K, V)>);

impl<'de, K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>> Visitor<'de>
    for BoundedVisitor<K, V>
{
    type Value = Bounded<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bounded<K, V>, A::Error> {
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((key, value)) = map.next_entry()? {
            let total = MAP_ENTRIES.with(|count| {
                count.set(count.get() + 1);
                count.get()
            });
            if entries.len() >= MAX_MAP_ENTRIES || total > MAX_FILE_MAP_ENTRIES {
                return Err(de::Error::custom(format!(
                    "more than {MAX_MAP_ENTRIES} entries in one map or {MAX_FILE_MAP_ENTRIES} in the file (limit on lockfile entries)"
                )));
            }
            entries.insert(key, value);
        }
        Ok(Bounded(entries))
    }
}
