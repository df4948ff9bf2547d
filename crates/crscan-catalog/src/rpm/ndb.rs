//! Reads the header blobs out of rpm's NDB `Packages.db` (SUSE Linux Enterprise 15 and
//! openSUSE), rpm's own simple database format.
//!
//! Format (rpm's `lib/backend/ndb/rpmpkg.c`, little-endian): a 32-byte file header
//! (magic `RpmP`, version 0, generation, number of slot pages), then slots of 16 bytes
//! (magic `Slot`, package index, block offset, block count) filling those 4096-byte
//! slot pages; each used slot points at a blob (in 16-byte blocks) that starts with its
//! own 16-byte header (magic `BlbS`, package index, checksum, length) followed by the
//! rpm header. Offsets and lengths are checked against the file; a bad slot or blob is
//! reported and skipped.

use std::borrow::Cow;

use super::{RpmDbError, Visit};

const HEADER_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_MAGIC: &[u8; 4] = b"BlbS";
const PAGE_SIZE: usize = 4096;
const SLOT_SIZE: usize = 16;
const BLOCK_SIZE: usize = 16;
const BLOB_HEADER: usize = 16;
/// rpm refuses databases with more slot pages than this.
const MAX_SLOT_PAGES: usize = 2048;

fn le32(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

fn corrupt(message: String) -> RpmDbError {
    RpmDbError::Corrupt(message)
}

/// Calls `visit` with each header blob of the database, in slot order, or with the
/// error that made one slot unreadable. An error return means the file is not a
/// usable NDB database.
pub fn for_each_blob<'a>(data: &'a [u8], visit: &mut Visit<'_, 'a>) -> Result<(), RpmDbError> {
    if data.len() < 32 || &data[..4] != HEADER_MAGIC {
        return Err(RpmDbError::NotThisFormat("NDB"));
    }
    let version = le32(data, 4);
    if version != 0 {
        return Err(RpmDbError::Unsupported(format!("NDB version {version}")));
    }
    let slot_pages = le32(data, 12);
    if slot_pages == 0 || slot_pages > MAX_SLOT_PAGES {
        return Err(corrupt(format!(
            "NDB slot page count {slot_pages} is invalid"
        )));
    }
    let slots_end = (slot_pages * PAGE_SIZE).min(data.len() - data.len() % SLOT_SIZE);
    for slot_start in (32..slots_end).step_by(SLOT_SIZE) {
        let slot = &data[slot_start..slot_start + SLOT_SIZE];
        let index = (slot_start - 32) / SLOT_SIZE;
        if &slot[..4] != SLOT_MAGIC {
            visit(Err(corrupt(format!("NDB slot {index} has a bad magic"))));
            continue;
        }
        let package = le32(slot, 4);
        if package == 0 {
            continue;
        }
        visit(blob(data, index, package, le32(slot, 8), le32(slot, 12)));
    }
    Ok(())
}

fn blob(
    data: &[u8],
    slot: usize,
    package: usize,
    block: usize,
    blocks: usize,
) -> Result<Cow<'_, [u8]>, RpmDbError> {
    let start = block.saturating_mul(BLOCK_SIZE);
    let bad = |what: &str| corrupt(format!("NDB slot {slot} (package {package}): {what}"));
    let header = data
        .get(start..start.saturating_add(BLOB_HEADER))
        .ok_or_else(|| bad(&format!("blob offset {start} is outside the file")))?;
    if &header[..4] != BLOB_MAGIC {
        return Err(bad("the blob has a bad magic"));
    }
    if le32(header, 4) != package {
        return Err(bad(&format!(
            "the blob belongs to package {}",
            le32(header, 4)
        )));
    }
    let length = le32(header, 12);
    if BLOB_HEADER.saturating_add(length) > blocks.saturating_mul(BLOCK_SIZE) {
        return Err(bad(&format!(
            "blob length {length} exceeds its {blocks} blocks"
        )));
    }
    let body = start + BLOB_HEADER;
    data.get(body..body.saturating_add(length))
        .map(Cow::Borrowed)
        .ok_or_else(|| {
            bad(&format!(
                "blob of {length} bytes runs past the end of the file"
            ))
        })
}
