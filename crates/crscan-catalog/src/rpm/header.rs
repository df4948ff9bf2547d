//! Reads an rpm header blob as the rpm database stores it, one per installed package:
//! a count of index entries and of data bytes, the index entries (tag, type, offset,
//! count, each a big-endian 32-bit number), then the data store they point into.
//!
//! Format: <https://rpm-software-management.github.io/rpm/manual/format_header.html>
//! (the database copy has no header magic or lead). Every read is bounds-checked
//! against the blob; a value that points outside it reads as absent.

/// Tags crscan reads (`rpmtag.h`).
pub mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const LICENSE: u32 = 1014;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const SOURCERPM: u32 = 1044;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
}

/// Data types of index entries.
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits on a header (`hdrblobVerifyInfo`): 64 Ki entries, 256 MiB of data.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// Why a blob is not an rpm header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header blob of {0} bytes is too short")]
    TooShort(usize),
    #[error(
        "header blob declares {entries} index entries and {data} data bytes, \
         more than its {len} bytes hold"
    )]
    Truncated {
        entries: usize,
        data: usize,
        len: usize,
    },
}

/// A parsed header, borrowing the blob.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    index: &'a [u8],
    store: &'a [u8],
}

/// One index entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: u32,
    offset: usize,
    count: usize,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl<'a> Header<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        if blob.len() < 8 {
            return Err(HeaderError::TooShort(blob.len()));
        }
        let entries = be32(blob, 0) as usize;
        let data = be32(blob, 4) as usize;
        let truncated = HeaderError::Truncated {
            entries,
            data,
            len: blob.len(),
        };
        if entries > MAX_ENTRIES || data > MAX_DATA {
            return Err(truncated);
        }
        let index_end = 8 + entries * 16;
        let store_end = index_end + data;
        if store_end > blob.len() {
            return Err(truncated);
        }
        Ok(Header {
            index: &blob[8..index_end],
            store: &blob[index_end..store_end],
        })
    }

    fn entry(&self, wanted: u32) -> Option<Entry> {
        self.index.chunks_exact(16).find_map(|raw| {
            (be32(raw, 0) == wanted).then(|| Entry {
                kind: be32(raw, 4),
                offset: be32(raw, 8) as usize,
                count: be32(raw, 12) as usize,
            })
        })
    }

    /// The NUL-terminated string at `offset` of the data store.
    fn string_at(&self, offset: usize) -> Option<&'a [u8]> {
        let rest = self.store.get(offset..)?;
        let end = rest.iter().position(|byte| *byte == 0)?;
        Some(&rest[..end])
    }

    /// A string value (the first one of an array or translation table).
    pub fn string(&self, tag: u32) -> Option<&'a [u8]> {
        let entry = self.entry(tag)?;
        match entry.kind {
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING if entry.count > 0 => {
                self.string_at(entry.offset)
            }
            _ => None,
        }
    }

    /// The first value of a 32-bit integer entry.
    pub fn int32(&self, tag: u32) -> Option<u32> {
        let entry = self.entry(tag)?;
        (entry.kind == TYPE_INT32 && entry.count > 0 && entry.offset + 4 <= self.store.len())
            .then(|| be32(self.store, entry.offset))
    }

    /// All strings of a string-array entry; stops early at a missing terminator.
    pub fn strings(&self, tag: u32) -> impl Iterator<Item = &'a [u8]> + 'a {
        let entry = self
            .entry(tag)
            .filter(|entry| matches!(entry.kind, TYPE_STRING_ARRAY | TYPE_STRING));
        let store = self.store;
        let (mut offset, count) = entry.map_or((0, 0), |entry| (entry.offset, entry.count));
        (0..count).map_while(move |_| {
            let rest = store.get(offset..)?;
            let end = rest.iter().position(|byte| *byte == 0)?;
            offset += end + 1;
            Some(&rest[..end])
        })
    }

    /// All values of a 32-bit integer array entry; empty when it does not fit.
    pub fn int32s(&self, tag: u32) -> impl Iterator<Item = u32> + 'a {
        let entry = self.entry(tag).filter(|entry| {
            entry.kind == TYPE_INT32
                && entry
                    .count
                    .checked_mul(4)
                    .and_then(|size| size.checked_add(entry.offset))
                    .is_some_and(|end| end <= self.store.len())
        });
        let store = self.store;
        let (offset, count) = entry.map_or((0, 0), |entry| (entry.offset, entry.count));
        (0..count).map(move |index| be32(store, offset + index * 4))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, count, data) entries.
    pub(crate) fn build(entries: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        for (tag, kind, count, data) in entries {
            if *kind == TYPE_INT32 {
                while store.len() % 4 != 0 {
                    store.push(0);
                }
            }
            for value in [*tag, *kind, store.len() as u32, *count] {
                index.extend_from_slice(&value.to_be_bytes());
            }
            store.extend_from_slice(data);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&store);
        blob
    }

    #[test]
    fn reads_strings_and_numbers() {
        let blob = build(&[
            (tag::NAME, TYPE_STRING, 1, b"bash\0"),
            (tag::EPOCH, TYPE_INT32, 1, &7u32.to_be_bytes()),
            (tag::BASENAMES, TYPE_STRING_ARRAY, 3, b"a\0b\0c\0"),
            (
                tag::DIRINDEXES,
                TYPE_INT32,
                3,
                &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            ),
            (tag::LICENSE, TYPE_I18NSTRING, 1, b"GPLv3+\0"),
        ]);
        let header = Header::parse(&blob).unwrap();
        assert_eq!(header.string(tag::NAME), Some(b"bash".as_slice()));
        assert_eq!(header.int32(tag::EPOCH), Some(7));
        assert_eq!(header.string(tag::LICENSE), Some(b"GPLv3+".as_slice()));
        assert_eq!(
            header.strings(tag::BASENAMES).collect::<Vec<_>>(),
            [b"a", b"b", b"c"]
        );
        assert_eq!(
            header.int32s(tag::DIRINDEXES).collect::<Vec<_>>(),
            [0, 1, 0]
        );
        assert_eq!(header.string(tag::VERSION), None);
        assert_eq!(header.int32(tag::NAME), None);
    }

    #[test]
    fn out_of_bounds_values_read_as_absent() {
        let mut blob = build(&[
            (tag::DIRINDEXES, TYPE_INT32, 1000, &[0, 0, 0, 1]),
            (tag::NAME, TYPE_STRING, 1, b"bash"),
        ]);
        let header = Header::parse(&blob).unwrap();
        assert_eq!(header.string(tag::NAME), None);
        assert_eq!(header.int32s(tag::DIRINDEXES).count(), 0);
        blob.truncate(blob.len() - 1);
        assert!(matches!(
            Header::parse(&blob),
            Err(HeaderError::Truncated { .. })
        ));
        assert_eq!(
            Header::parse(&[0, 0]).unwrap_err(),
            HeaderError::TooShort(2)
        );
    }
}
