//! Reads the header blobs out of rpm's Berkeley DB `Packages` file (RHEL/CentOS up
//! to 8, Amazon Linux 2, older Fedora and SUSE), without linking Berkeley DB.
//!
//! The file is a Berkeley DB hash database (on-disk structures in Berkeley DB's
//! `dbinc/db_page.h` and `dbinc/hash.h`): page 0 is the hash metadata page
//! (magic `0x061561`, page size, last page number), hash pages (type 13, or 2 for the
//! unsorted variant) hold key/data item pairs, and a data item too large for the page
//! is an off-page reference (`H_OFFPAGE`: first page and total length) to a chain of
//! overflow pages (type 7) linked by their next-page field. Pages are in the byte order
//! of the machine that wrote them; the magic tells which. Every page is read at most
//! once per chain and chains are bounded by the item length, so corrupt links end.

use std::borrow::Cow;

use super::{RpmDbError, Visit};

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const PAGE_HASH_META: u8 = 8;
const PAGE_HASH_UNSORTED: u8 = 2;
const PAGE_HASH: u8 = 13;
const PAGE_OVERFLOW: u8 = 7;
const ITEM_KEYDATA: u8 = 1;
const ITEM_OFFPAGE: u8 = 3;
/// Size of the generic page header (`PAGE` in `db_page.h`).
const PAGE_HEADER: usize = 26;

/// Byte order of the database.
#[derive(Clone, Copy)]
struct Order {
    big_endian: bool,
}

impl Order {
    fn u16(self, bytes: &[u8], at: usize) -> Option<usize> {
        let raw: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }))
    }

    fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }
}

fn corrupt(message: String) -> RpmDbError {
    RpmDbError::Corrupt(message)
}

/// Calls `visit` with each data item (header blob) of the hash database, in page
/// order, or with the error that made one item unreadable. An error return means the
/// file is not a usable Berkeley DB hash database.
pub fn for_each_blob<'a>(data: &'a [u8], visit: &mut Visit<'_, 'a>) -> Result<(), RpmDbError> {
    let little = Order { big_endian: false };
    let big = Order { big_endian: true };
    let magic = |order: Order| order.u32(data, 12).unwrap_or(0);
    let order = if magic(little) == HASH_MAGIC {
        little
    } else if magic(big) == HASH_MAGIC {
        big
    } else if magic(little) == BTREE_MAGIC || magic(big) == BTREE_MAGIC {
        return Err(RpmDbError::Unsupported(
            "Berkeley DB btree database".to_owned(),
        ));
    } else {
        return Err(RpmDbError::NotThisFormat("Berkeley DB"));
    };
    let page_size = order.u32(data, 20).unwrap_or(0) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(corrupt(format!(
            "Berkeley DB page size {page_size} is invalid"
        )));
    }
    if data.get(24).copied().unwrap_or(0) != 0 {
        return Err(RpmDbError::Unsupported("encrypted Berkeley DB".to_owned()));
    }
    if data.get(25).copied() != Some(PAGE_HASH_META) {
        return Err(corrupt(
            "Berkeley DB page 0 is not a hash metadata page".to_owned(),
        ));
    }
    let last_page = order.u32(data, 32).unwrap_or(0) as usize;
    let reader = Reader {
        data,
        order,
        page_size,
        page_count: (data.len() / page_size).min(last_page.saturating_add(1)),
    };
    // Each overflow page belongs to one chain; a page met twice means a cycle.
    let mut in_chain = vec![false; reader.page_count];
    for number in 1..reader.page_count {
        let page = reader.page(number);
        if !matches!(page[25], PAGE_HASH | PAGE_HASH_UNSORTED) {
            continue;
        }
        reader.hash_page(number, page, &mut in_chain, visit);
    }
    Ok(())
}

struct Reader<'a> {
    data: &'a [u8],
    order: Order,
    page_size: usize,
    page_count: usize,
}

impl<'a> Reader<'a> {
    fn page(&self, number: usize) -> &'a [u8] {
        &self.data[number * self.page_size..(number + 1) * self.page_size]
    }

    /// Collects the data items of one hash page.
    fn hash_page(
        &self,
        number: usize,
        page: &'a [u8],
        in_chain: &mut [bool],
        visit: &mut Visit<'_, 'a>,
    ) {
        let entries = self.order.u16(page, 20).unwrap_or(0);
        if PAGE_HEADER + entries * 2 > self.page_size {
            visit(Err(corrupt(format!(
                "Berkeley DB page {number} claims {entries} entries, more than fit"
            ))));
            return;
        }
        let offset = |index: usize| self.order.u16(page, PAGE_HEADER + index * 2).unwrap_or(0);
        for pair in 0..entries / 2 {
            let key = offset(pair * 2);
            let value = offset(pair * 2 + 1);
            let bad = || {
                corrupt(format!(
                    "Berkeley DB page {number} item {} is out of bounds",
                    pair * 2 + 1
                ))
            };
            let Some(kind) = page.get(value).copied() else {
                visit(Err(bad()));
                continue;
            };
            match kind {
                ITEM_OFFPAGE => {
                    let first = self.order.u32(page, value + 4);
                    let length = self.order.u32(page, value + 8);
                    match first.zip(length) {
                        Some((first, length)) => {
                            visit(self.overflow(first as usize, length as usize, in_chain))
                        }
                        None => visit(Err(bad())),
                    }
                }
                ITEM_KEYDATA => {
                    // Items fill the page from its end, the key above its data, so the
                    // data ends where the key starts.
                    if key <= value || key > self.page_size {
                        visit(Err(bad()));
                        continue;
                    }
                    let bytes = &page[value + 1..key];
                    // rpm keeps a 4-byte counter under key 0; real headers are longer.
                    if bytes.len() >= 8 {
                        visit(Ok(Cow::Borrowed(bytes)));
                    }
                }
                other => visit(Err(RpmDbError::Unsupported(format!(
                    "Berkeley DB item type {other} on page {number}"
                )))),
            }
        }
    }

    /// Concatenates an overflow chain of `length` bytes starting at page `first`.
    fn overflow(
        &self,
        first: usize,
        length: usize,
        in_chain: &mut [bool],
    ) -> Result<Cow<'a, [u8]>, RpmDbError> {
        if length > self.data.len() {
            return Err(corrupt(format!(
                "Berkeley DB overflow item of {length} bytes is larger than the file"
            )));
        }
        let mut bytes = Vec::with_capacity(length);
        let mut number = first;
        while bytes.len() < length {
            if number == 0 || number >= self.page_count {
                return Err(corrupt(format!(
                    "Berkeley DB overflow chain from page {first} breaks at page {number}"
                )));
            }
            if std::mem::replace(&mut in_chain[number], true) {
                return Err(corrupt(format!(
                    "Berkeley DB overflow page {number} is reached twice (a page cycle)"
                )));
            }
            let page = self.page(number);
            if page[25] != PAGE_OVERFLOW {
                return Err(corrupt(format!(
                    "Berkeley DB page {number} in an overflow chain has type {}",
                    page[25]
                )));
            }
            let on_page = self.order.u16(page, 22).unwrap_or(0);
            let take = on_page
                .min(length - bytes.len())
                .min(self.page_size - PAGE_HEADER);
            if take == 0 {
                return Err(corrupt(format!(
                    "Berkeley DB overflow page {number} is empty"
                )));
            }
            bytes.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + take]);
            number = self.order.u32(page, 16).unwrap_or(0) as usize;
        }
        Ok(Cow::Owned(bytes))
    }
}
