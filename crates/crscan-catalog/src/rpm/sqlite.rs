//! A minimal read-only reader of the SQLite database file format, enough to read the
//! `Packages` table of rpm's `rpmdb.sqlite` (RHEL 9, Fedora 33+, Amazon Linux 2023)
//! without linking SQLite.
//!
//! Format: <https://www.sqlite.org/fileformat.html>. The reader checks the 100-byte
//! database header, finds the table's root page in `sqlite_schema` (the table b-tree
//! rooted at page 1), walks the table b-tree (interior pages 0x05, leaf pages 0x0D)
//! left to right, reassembles payloads that spill onto overflow pages, and decodes
//! the record format to pick out the `blob` column. Every page number is checked
//! against the file, every page is visited at most once (so corrupt page cycles end)
//! and overflow chains are bounded by the payload length. A broken page or cell is
//! reported and skipped; the rest of the table is still read. A write-ahead log
//! (`rpmdb.sqlite-wal`) is not replayed: rpm checkpoints it when it closes the
//! database, so an image built with rpm/dnf has none.

use std::borrow::Cow;

use super::{RpmDbError, Visit};

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const LEAF_TABLE: u8 = 0x0d;
const INTERIOR_TABLE: u8 = 0x05;

/// Calls `visit` with the blob of each row of the `Packages` table, in row order, or
/// with the error that made a row or page unreadable. An error return means the file
/// is not a usable SQLite database or has no such table.
pub fn for_each_blob<'a>(data: &'a [u8], visit: &mut Visit<'_, 'a>) -> Result<(), RpmDbError> {
    let database = Database::open(data)?;
    let root = database.table_root("Packages")?;
    database.walk_table(root, &mut |row| visit(row.and_then(first_blob)));
    Ok(())
}

fn corrupt(message: String) -> RpmDbError {
    RpmDbError::Corrupt(message)
}

fn be16(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at..at + 2)? {
        &[a, b] => Some(usize::from(u16::from_be_bytes([a, b]))),
        _ => None,
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    match bytes.get(at..at + 4)? {
        &[a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// Reads a SQLite varint (1 to 9 bytes, big-endian groups of 7 bits, all 8 bits of
/// the ninth byte). Returns the value and its length.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for index in 0..9 {
        let byte = *bytes.get(index)?;
        if index == 8 {
            return Some(((value << 8) | u64::from(byte), 9));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// An open database file.
struct Database<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
    page_count: usize,
}

/// A decoded column value of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Null,
    Integer(i64),
    Float,
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl<'a> Database<'a> {
    fn open(data: &'a [u8]) -> Result<Database<'a>, RpmDbError> {
        if data.len() < 100 || &data[..16] != MAGIC {
            return Err(RpmDbError::NotThisFormat("SQLite"));
        }
        let raw_size = be16(data, 16).unwrap_or(0);
        let page_size = if raw_size == 1 { 65536 } else { raw_size };
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(corrupt(format!("SQLite page size {raw_size} is invalid")));
        }
        let reserved = usize::from(data[20]);
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(corrupt(format!(
                "SQLite page size {page_size} with {reserved} reserved bytes leaves too little room"
            )));
        }
        let encoding = be32(data, 56).unwrap_or(0);
        if encoding > 1 {
            return Err(RpmDbError::Unsupported(format!(
                "SQLite text encoding {encoding} (only UTF-8 is read)"
            )));
        }
        Ok(Database {
            data,
            page_size,
            usable,
            page_count: data.len() / page_size,
        })
    }

    /// Page `number` (from 1), limited to its usable bytes.
    fn page(&self, number: u32) -> Result<&'a [u8], RpmDbError> {
        let index = (number as usize).wrapping_sub(1);
        if number == 0 || index >= self.page_count {
            return Err(corrupt(format!(
                "SQLite page number {number} is outside the file's {} pages",
                self.page_count
            )));
        }
        let start = index * self.page_size;
        Ok(&self.data[start..start + self.usable])
    }

    /// The root page of table `name`, from `sqlite_schema`.
    fn table_root(&self, name: &str) -> Result<u32, RpmDbError> {
        let mut root = None;
        let mut problems = Vec::new();
        self.walk_table(1, &mut |row| {
            let payload = match row {
                Ok(payload) => payload,
                Err(error) => {
                    problems.push(error.to_string());
                    return;
                }
            };
            let Ok(columns) = record(&payload) else {
                return;
            };
            if let [
                Value::Text(b"table"),
                Value::Text(table),
                _,
                Value::Integer(page),
                ..,
            ] = columns[..]
                && table.eq_ignore_ascii_case(name.as_bytes())
                && root.is_none()
            {
                root = u32::try_from(page).ok();
            }
        });
        root.ok_or_else(|| {
            let mut message = format!("the SQLite database has no table {name:?}");
            if !problems.is_empty() {
                message.push_str(&format!(" (schema problems: {})", problems.join("; ")));
            }
            corrupt(message)
        })
    }

    /// Calls `visit` with every row payload of the table b-tree rooted at `root`, in
    /// rowid order, or with the error that made a page or cell unreadable.
    fn walk_table(&self, root: u32, visit: &mut dyn FnMut(Result<Cow<'a, [u8]>, RpmDbError>)) {
        let mut visited = vec![false; self.page_count + 1];
        let mut pending = vec![root];
        while let Some(number) = pending.pop() {
            let page = match self.page(number) {
                Ok(page) => page,
                Err(error) => {
                    visit(Err(error));
                    continue;
                }
            };
            if std::mem::replace(&mut visited[number as usize], true) {
                visit(Err(corrupt(format!(
                    "SQLite page {number} is reached twice (a page cycle)"
                ))));
                continue;
            }
            let header = if number == 1 { 100 } else { 0 };
            let kind = page.get(header).copied().unwrap_or(0);
            let cells = be16(page, header + 3).unwrap_or(0);
            match kind {
                LEAF_TABLE => {
                    for cell in 0..cells {
                        let offset = be16(page, header + 8 + cell * 2);
                        visit(
                            offset
                                .ok_or_else(|| bad_cell(number, cell))
                                .and_then(|offset| {
                                    self.leaf_payload(page, offset, &mut visited)
                                        .ok_or_else(|| bad_cell(number, cell))?
                                }),
                        );
                    }
                }
                INTERIOR_TABLE => {
                    let Some(rightmost) = be32(page, header + 8) else {
                        visit(Err(bad_cell(number, 0)));
                        continue;
                    };
                    pending.push(rightmost);
                    // Children go on the stack right to left, so they are visited
                    // left to right (in rowid order).
                    for cell in (0..cells).rev() {
                        match be16(page, header + 12 + cell * 2)
                            .and_then(|offset| be32(page, offset))
                        {
                            Some(child) => pending.push(child),
                            None => visit(Err(bad_cell(number, cell))),
                        }
                    }
                }
                other => visit(Err(corrupt(format!(
                    "SQLite page {number} has type {other:#04x}, not a table b-tree page"
                )))),
            }
        }
    }

    /// The payload of the leaf cell at `offset` of `page`, reassembled from overflow
    /// pages when it spills. `None` when the cell does not fit the page.
    fn leaf_payload(
        &self,
        page: &'a [u8],
        offset: usize,
        visited: &mut [bool],
    ) -> Option<Result<Cow<'a, [u8]>, RpmDbError>> {
        let cell = page.get(offset..)?;
        let (length, length_size) = varint(cell)?;
        let (_rowid, rowid_size) = varint(cell.get(length_size..)?)?;
        let start = length_size + rowid_size;
        let usable = self.usable as u64;
        let max_local = usable - 35;
        let local = if length <= max_local {
            length
        } else {
            let min_local = ((usable - 12) * 32 / 255) - 23;
            let candidate = min_local + (length - min_local) % (usable - 4);
            if candidate <= max_local {
                candidate
            } else {
                min_local
            }
        } as usize;
        let local_bytes = cell.get(start..start + local)?;
        if length as usize == local {
            return Some(Ok(Cow::Borrowed(local_bytes)));
        }
        if length > self.data.len() as u64 {
            return Some(Err(corrupt(format!(
                "SQLite cell payload of {length} bytes is larger than the file"
            ))));
        }
        let length = length as usize;
        let mut payload = Vec::with_capacity(length);
        payload.extend_from_slice(local_bytes);
        let mut next = be32(cell, start + local)?;
        while payload.len() < length {
            let overflow = match self.page(next) {
                Ok(overflow) => overflow,
                Err(error) => return Some(Err(error)),
            };
            if std::mem::replace(&mut visited[next as usize], true) {
                return Some(Err(corrupt(format!(
                    "SQLite overflow page {next} is reached twice (a page cycle)"
                ))));
            }
            let take = (self.usable - 4).min(length - payload.len());
            payload.extend_from_slice(&overflow[4..4 + take]);
            next = be32(overflow, 0)?;
        }
        Some(Ok(Cow::Owned(payload)))
    }
}

fn bad_cell(page: u32, cell: usize) -> RpmDbError {
    corrupt(format!(
        "SQLite page {page} cell {cell} does not fit its page"
    ))
}

/// Decodes a record (a header of serial types, then the values).
fn record(payload: &[u8]) -> Result<Vec<Value<'_>>, RpmDbError> {
    let bad = || {
        corrupt(format!(
            "SQLite record of {} bytes is malformed",
            payload.len()
        ))
    };
    let (header_size, mut at) = varint(payload).ok_or_else(bad)?;
    let header_size = usize::try_from(header_size).map_err(|_| bad())?;
    if header_size > payload.len() {
        return Err(bad());
    }
    let mut body = header_size;
    let mut values = Vec::new();
    while at < header_size {
        let (serial, size) = varint(&payload[at..header_size]).ok_or_else(bad)?;
        at += size;
        let length = match serial {
            0 | 8 | 9 => 0,
            1..=4 => serial as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(bad()),
            _ => ((serial - 12) / 2) as usize,
        };
        let bytes = payload
            .get(body..body.checked_add(length).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        body += length;
        values.push(match serial {
            0 => Value::Null,
            1..=6 => {
                let mut value = if bytes[0] & 0x80 != 0 { -1i64 } else { 0 };
                for byte in bytes {
                    value = (value << 8) | i64::from(*byte);
                }
                Value::Integer(value)
            }
            7 => Value::Float,
            8 => Value::Integer(0),
            9 => Value::Integer(1),
            _ if serial % 2 == 0 => Value::Blob(bytes),
            _ => Value::Text(bytes),
        });
    }
    Ok(values)
}

/// The first blob column of a row, keeping the payload's borrow or allocation.
fn first_blob(payload: Cow<'_, [u8]>) -> Result<Cow<'_, [u8]>, RpmDbError> {
    let range = {
        let values = record(&payload)?;
        let blob = values
            .iter()
            .find_map(|value| match value {
                Value::Blob(bytes) => Some(*bytes),
                _ => None,
            })
            .ok_or_else(|| corrupt("SQLite row has no blob column".to_owned()))?;
        let start = blob.as_ptr() as usize - payload.as_ptr() as usize;
        start..start + blob.len()
    };
    Ok(match payload {
        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[range]),
        Cow::Owned(mut bytes) => {
            bytes.truncate(range.end);
            bytes.drain(..range.start);
            Cow::Owned(bytes)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }

    #[test]
    fn records() {
        // Header: size 4, NULL, 1-byte int, 2-byte blob; body: 0x7f, "ab".
        let payload = [4, 0, 1, 16, 0xff, b'a', b'b'];
        assert_eq!(
            record(&payload).unwrap(),
            [Value::Null, Value::Integer(-1), Value::Blob(b"ab")]
        );
        assert!(record(&[4, 0, 1, 16, 0xff, b'a']).is_err());
        assert_eq!(&*first_blob(Cow::Owned(payload.to_vec())).unwrap(), b"ab");
    }

    fn sqlite_blobs(data: &[u8]) -> Result<crate::rpm::Blobs<'_>, RpmDbError> {
        let mut blobs = Vec::new();
        for_each_blob(data, &mut |blob| blobs.push(blob))?;
        Ok(blobs)
    }

    const AMAZON: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/catalog/rpm/go-rpmdb/amazonlinux2023-plain/rpmdb.sqlite"
    );

    #[test]
    fn reads_the_packages_table_in_row_order() {
        let data = std::fs::read(AMAZON).unwrap();
        let database = Database::open(&data).unwrap();
        assert_eq!(database.table_root("Packages").unwrap(), 2);
        assert_eq!(database.table_root("packages").unwrap(), 2);
        assert!(database.table_root("Nothing").is_err());
        let blobs = sqlite_blobs(&data).unwrap();
        // 102 packages and one gpg-pubkey, as `rpm -qa` lists them.
        assert_eq!(blobs.len(), 103);
        let first = blobs[0].as_ref().unwrap();
        let header = super::super::header::Header::parse(first).unwrap();
        assert_eq!(header.string(1000), Some(b"crypto-policies".as_slice()));
    }

    #[test]
    fn page_cycles_end_with_a_diagnostic() {
        let mut data = std::fs::read(AMAZON).unwrap();
        let page_size = 4096;
        // The Packages root (page 2) is an interior page; point its right-most child
        // back at itself.
        assert_eq!(data[page_size], INTERIOR_TABLE);
        data[page_size + 8..page_size + 12].copy_from_slice(&2u32.to_be_bytes());
        let blobs = sqlite_blobs(&data).unwrap();
        let errors: Vec<String> = blobs
            .iter()
            .filter_map(|blob| blob.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("page cycle"), "{errors:?}");
        let good = blobs.iter().filter(|blob| blob.is_ok()).count();
        assert!(good > 0 && good < 103, "{good}");
    }

    #[test]
    fn rejects_non_sqlite() {
        assert!(matches!(
            sqlite_blobs(b"hello"),
            Err(RpmDbError::NotThisFormat(_))
        ));
    }
}
