//! A small reader for ELF executables, enough to find a named section and to read
//! bytes by virtual address, shared by the Go and Rust binary detectors.
//!
//! It reads the ELF header, the section headers and the program headers of 32- and
//! 64-bit files in either byte order, as laid out in the System V ABI
//! (<https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html>). Every offset
//! and size comes from untrusted bytes, so every read is bounds-checked and a bad file
//! gives an [`ElfError`], never a panic.

use thiserror::Error;

/// The four bytes every ELF file starts with.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Section type of a section that occupies no bytes in the file (`.bss`).
const SHT_NOBITS: u32 = 8;
/// Program header type of a loadable segment.
const PT_LOAD: u32 = 1;
/// Section index meaning "the real value is in section 0" (extended numbering).
const SHN_XINDEX: u32 = 0xffff;
/// More section or program headers than this is taken as a corrupt file.
const MAX_HEADERS: usize = 1 << 16;

/// Why an ELF file could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("unknown ELF class {0}")]
    UnknownClass(u8),
    #[error("unknown ELF byte order {0}")]
    UnknownByteOrder(u8),
    #[error("ELF {what} at offset {offset} lies outside the {len}-byte file")]
    OutOfBounds {
        what: &'static str,
        offset: u64,
        len: usize,
    },
    #[error("ELF header claims {count} {what}")]
    TooManyHeaders { what: &'static str, count: u64 },
}

/// One section header, with its name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub kind: u32,
    pub address: u64,
    pub offset: u64,
    pub size: u64,
}

/// One loadable segment: file bytes `offset..offset+file_size` appear in memory at
/// `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    address: u64,
    offset: u64,
    file_size: u64,
}

/// A parsed ELF file borrowing its bytes.
#[derive(Debug)]
pub struct Elf<'a> {
    data: &'a [u8],
    is_64: bool,
    big_endian: bool,
    sections: Vec<Section>,
    segments: Vec<Segment>,
}

/// Bounds-checked integer reads in the file's byte order.
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: u64, what: &'static str) -> Result<[u8; N], ElfError> {
        let out_of_bounds = || ElfError::OutOfBounds {
            what,
            offset,
            len: self.data.len(),
        };
        let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(N).ok_or_else(out_of_bounds)?;
        let slice = self.data.get(start..end).ok_or_else(out_of_bounds)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u16(&self, offset: u64, what: &'static str) -> Result<u16, ElfError> {
        let raw = self.bytes::<2>(offset, what)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        })
    }

    fn u32(&self, offset: u64, what: &'static str) -> Result<u32, ElfError> {
        let raw = self.bytes::<4>(offset, what)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }

    fn u64(&self, offset: u64, what: &'static str) -> Result<u64, ElfError> {
        let raw = self.bytes::<8>(offset, what)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(raw)
        } else {
            u64::from_le_bytes(raw)
        })
    }

    /// A word: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    fn word(&self, is_64: bool, offset: u64, what: &'static str) -> Result<u64, ElfError> {
        if is_64 {
            self.u64(offset, what)
        } else {
            self.u32(offset, what).map(u64::from)
        }
    }
}

/// Where a table of `count` entries of `entry_size` bytes at `offset` ends, if it fits.
fn table_fits(data: &[u8], offset: u64, count: u64, entry_size: u64) -> bool {
    count
        .checked_mul(entry_size)
        .and_then(|size| size.checked_add(offset))
        .is_some_and(|end| end <= data.len() as u64)
}

impl<'a> Elf<'a> {
    /// Parses the headers of an ELF file.
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, ElfError> {
        if !data.starts_with(ELF_MAGIC) {
            return Err(ElfError::NotElf);
        }
        let class = *data.get(4).ok_or(ElfError::NotElf)?;
        let is_64 = match class {
            1 => false,
            2 => true,
            other => return Err(ElfError::UnknownClass(other)),
        };
        let byte_order = *data.get(5).ok_or(ElfError::NotElf)?;
        let big_endian = match byte_order {
            1 => false,
            2 => true,
            other => return Err(ElfError::UnknownByteOrder(other)),
        };
        let reader = Reader { data, big_endian };
        let (ph_offset, sh_offset, counts_at) = if is_64 {
            (
                reader.u64(32, "program header offset")?,
                reader.u64(40, "section header offset")?,
                54u64,
            )
        } else {
            (
                u64::from(reader.u32(28, "program header offset")?),
                u64::from(reader.u32(32, "section header offset")?),
                42u64,
            )
        };
        let ph_entry_size = u64::from(reader.u16(counts_at, "program header size")?);
        let ph_count = u64::from(reader.u16(counts_at + 2, "program header count")?);
        let sh_entry_size = u64::from(reader.u16(counts_at + 4, "section header size")?);
        let mut sh_count = u64::from(reader.u16(counts_at + 6, "section header count")?);
        let mut names_index = u64::from(reader.u16(counts_at + 8, "section name index")?);

        let mut elf = Elf {
            data,
            is_64,
            big_endian,
            sections: Vec::new(),
            segments: Vec::new(),
        };
        elf.segments = elf.read_segments(reader, ph_offset, ph_count, ph_entry_size)?;

        let min_sh_size: u64 = if is_64 { 64 } else { 40 };
        if sh_offset == 0 || sh_entry_size < min_sh_size {
            // No section headers (stripped with sstrip, or a corrupt header): the
            // segments still allow reading by address.
            return Ok(elf);
        }
        if sh_count == 0 || names_index == u64::from(SHN_XINDEX) {
            // Extended numbering keeps the real values in section 0.
            let (size_at, link_at) = if is_64 { (32, 40) } else { (20, 24) };
            if sh_count == 0 {
                sh_count = reader.word(is_64, sh_offset + size_at, "section count")?;
            }
            if names_index == u64::from(SHN_XINDEX) {
                names_index = u64::from(reader.u32(sh_offset + link_at, "section name index")?);
            }
        }
        if sh_count > MAX_HEADERS as u64 {
            return Err(ElfError::TooManyHeaders {
                what: "sections",
                count: sh_count,
            });
        }
        if !table_fits(data, sh_offset, sh_count, sh_entry_size) {
            // The section headers sit at the end of the file, so a file cut short
            // loses them first; the segments still allow reading by address.
            return Ok(elf);
        }
        let mut raw = Vec::with_capacity(usize::try_from(sh_count).unwrap_or(0));
        for index in 0..sh_count {
            let at = sh_offset + index * sh_entry_size;
            let name_offset = reader.u32(at, "section name")?;
            let kind = reader.u32(at + 4, "section type")?;
            let (address, offset, size) = if is_64 {
                (
                    reader.u64(at + 16, "section address")?,
                    reader.u64(at + 24, "section offset")?,
                    reader.u64(at + 32, "section size")?,
                )
            } else {
                (
                    u64::from(reader.u32(at + 12, "section address")?),
                    u64::from(reader.u32(at + 16, "section offset")?),
                    u64::from(reader.u32(at + 20, "section size")?),
                )
            };
            raw.push((name_offset, kind, address, offset, size));
        }
        let names: &[u8] = usize::try_from(names_index)
            .ok()
            .and_then(|index| raw.get(index))
            .and_then(|&(_, kind, _, offset, size)| file_range(data, kind, offset, size))
            .unwrap_or(&[]);
        elf.sections = raw
            .into_iter()
            .map(|(name_offset, kind, address, offset, size)| Section {
                name: c_string_at(names, name_offset),
                kind,
                address,
                offset,
                size,
            })
            .collect();
        Ok(elf)
    }

    fn read_segments(
        &self,
        reader: Reader<'_>,
        offset: u64,
        count: u64,
        entry_size: u64,
    ) -> Result<Vec<Segment>, ElfError> {
        let min_size: u64 = if self.is_64 { 56 } else { 32 };
        if offset == 0 || count == 0 || entry_size < min_size {
            return Ok(Vec::new());
        }
        if !table_fits(self.data, offset, count, entry_size) {
            return Err(ElfError::OutOfBounds {
                what: "program header table",
                offset,
                len: self.data.len(),
            });
        }
        let mut segments = Vec::new();
        for index in 0..count {
            let at = offset + index * entry_size;
            if reader.u32(at, "segment type")? != PT_LOAD {
                continue;
            }
            let segment = if self.is_64 {
                Segment {
                    offset: reader.u64(at + 8, "segment offset")?,
                    address: reader.u64(at + 16, "segment address")?,
                    file_size: reader.u64(at + 32, "segment size")?,
                }
            } else {
                Segment {
                    offset: u64::from(reader.u32(at + 4, "segment offset")?),
                    address: u64::from(reader.u32(at + 8, "segment address")?),
                    file_size: u64::from(reader.u32(at + 16, "segment size")?),
                }
            };
            segments.push(segment);
        }
        Ok(segments)
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// True for a 64-bit file.
    pub fn is_64(&self) -> bool {
        self.is_64
    }

    /// True for a big-endian file.
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// All section headers; empty when the file has none.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The file bytes of the first section called `name`; `None` when there is no
    /// such section or its bytes lie outside the file.
    pub fn section_data(&self, name: &str) -> Option<&'a [u8]> {
        let section = self.sections.iter().find(|section| section.name == name)?;
        file_range(self.data, section.kind, section.offset, section.size)
    }

    /// `len` bytes at virtual address `address`, looked up in the sections and then
    /// in the loadable segments; `None` when no mapping holds all of them.
    pub fn read_at_address(&self, address: u64, len: u64) -> Option<&'a [u8]> {
        let end = address.checked_add(len)?;
        let from_sections = self.sections.iter().find_map(|section| {
            if section.kind == SHT_NOBITS || section.address == 0 {
                return None;
            }
            let section_end = section.address.checked_add(section.size)?;
            if address < section.address || end > section_end {
                return None;
            }
            let start = section.offset.checked_add(address - section.address)?;
            slice(self.data, start, len)
        });
        from_sections.or_else(|| {
            self.segments.iter().find_map(|segment| {
                let segment_end = segment.address.checked_add(segment.file_size)?;
                if address < segment.address || end > segment_end {
                    return None;
                }
                let start = segment.offset.checked_add(address - segment.address)?;
                slice(self.data, start, len)
            })
        })
    }
}

/// The file bytes of a section, unless it has none or they lie outside the file.
fn file_range(data: &[u8], kind: u32, offset: u64, size: u64) -> Option<&[u8]> {
    if kind == SHT_NOBITS {
        return None;
    }
    slice(data, offset, size)
}

fn slice(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// The NUL-terminated string at `offset` in a string table (lossy UTF-8).
fn c_string_at(table: &[u8], offset: u32) -> String {
    let Some(rest) = usize::try_from(offset).ok().and_then(|at| table.get(at..)) else {
        return String::new();
    };
    let end = rest
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// Builds small ELF files for tests: a header, the given sections (each placed in
/// the file and at an address), a section-name table, and one loadable segment
/// covering all the sections.
#[cfg(test)]
pub(crate) mod build {
    /// One section to place: name, virtual address, contents.
    pub struct TestSection<'a> {
        pub name: &'a str,
        pub address: u64,
        pub contents: &'a [u8],
    }

    fn put(out: &mut Vec<u8>, value: u64, width: usize, big_endian: bool) {
        let bytes = value.to_le_bytes();
        let mut field = bytes[..width].to_vec();
        if big_endian {
            field.reverse();
        }
        out.extend_from_slice(&field);
    }

    /// Lays out an ELF file. Section `i` gets file offset aligned to 16.
    pub fn elf(is_64: bool, big_endian: bool, sections: &[TestSection<'_>]) -> Vec<u8> {
        let word = if is_64 { 8 } else { 4 };
        let header_size: usize = if is_64 { 64 } else { 52 };
        let ph_size: usize = if is_64 { 56 } else { 32 };
        let sh_size = if is_64 { 64 } else { 40 };
        // Section name table: "\0" then each name, then ".shstrtab".
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for section in sections {
            name_offsets.push(names.len() as u64);
            names.extend_from_slice(section.name.as_bytes());
            names.push(0);
        }
        let shstrtab_name = names.len() as u64;
        names.extend_from_slice(b".shstrtab\0");

        let mut body = Vec::new();
        let body_start = (header_size + ph_size).next_multiple_of(16);
        let mut placed = Vec::new();
        for section in sections {
            while !(body_start + body.len()).is_multiple_of(16) {
                body.push(0);
            }
            placed.push((body_start + body.len()) as u64);
            body.extend_from_slice(section.contents);
        }
        let names_offset = (body_start + body.len()) as u64;
        body.extend_from_slice(&names);
        while !(body_start + body.len()).is_multiple_of(8) {
            body.push(0);
        }
        let sh_offset = (body_start + body.len()) as u64;

        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF");
        out.push(if is_64 { 2 } else { 1 });
        out.push(if big_endian { 2 } else { 1 });
        out.push(1);
        out.resize(16, 0);
        put(&mut out, 2, 2, big_endian); // e_type
        put(&mut out, 62, 2, big_endian); // e_machine
        put(&mut out, 1, 4, big_endian); // e_version
        put(&mut out, 0, word, big_endian); // e_entry
        put(&mut out, header_size as u64, word, big_endian); // e_phoff
        put(&mut out, sh_offset, word, big_endian); // e_shoff
        put(&mut out, 0, 4, big_endian); // e_flags
        put(&mut out, header_size as u64, 2, big_endian);
        put(&mut out, ph_size as u64, 2, big_endian);
        put(&mut out, 1, 2, big_endian);
        put(&mut out, sh_size as u64, 2, big_endian);
        put(&mut out, sections.len() as u64 + 2, 2, big_endian);
        put(&mut out, sections.len() as u64 + 1, 2, big_endian);
        assert_eq!(out.len(), header_size);

        // One PT_LOAD mapping the first section's address to its file offset and
        // running to the end of the body.
        let (load_address, load_offset) = match (sections.first(), placed.first()) {
            (Some(section), Some(&offset)) => (section.address, offset),
            _ => (0, body_start as u64),
        };
        let load_size = names_offset - load_offset;
        if is_64 {
            put(&mut out, 1, 4, big_endian);
            put(&mut out, 6, 4, big_endian);
            put(&mut out, load_offset, 8, big_endian);
            put(&mut out, load_address, 8, big_endian);
            put(&mut out, load_address, 8, big_endian);
            put(&mut out, load_size, 8, big_endian);
            put(&mut out, load_size, 8, big_endian);
            put(&mut out, 16, 8, big_endian);
        } else {
            put(&mut out, 1, 4, big_endian);
            put(&mut out, load_offset, 4, big_endian);
            put(&mut out, load_address, 4, big_endian);
            put(&mut out, load_address, 4, big_endian);
            put(&mut out, load_size, 4, big_endian);
            put(&mut out, load_size, 4, big_endian);
            put(&mut out, 6, 4, big_endian);
            put(&mut out, 16, 4, big_endian);
        }
        out.resize(body_start, 0);
        out.extend_from_slice(&body);

        let section_header =
            |out: &mut Vec<u8>, name: u64, kind: u64, address: u64, offset: u64, size: u64| {
                put(out, name, 4, big_endian);
                put(out, kind, 4, big_endian);
                put(out, 0, word, big_endian); // flags
                put(out, address, word, big_endian);
                put(out, offset, word, big_endian);
                put(out, size, word, big_endian);
                put(out, 0, 4, big_endian); // link
                put(out, 0, 4, big_endian); // info
                put(out, 1, word, big_endian); // addralign
                put(out, 0, word, big_endian); // entsize
            };
        section_header(&mut out, 0, 0, 0, 0, 0);
        for ((section, name), offset) in sections.iter().zip(&name_offsets).zip(&placed) {
            section_header(
                &mut out,
                *name,
                1,
                section.address,
                *offset,
                section.contents.len() as u64,
            );
        }
        section_header(
            &mut out,
            shstrtab_name,
            3,
            0,
            names_offset,
            names.len() as u64,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::{TestSection, elf};
    use super::*;

    #[test]
    fn finds_sections_and_reads_by_address_in_all_layouts() {
        for is_64 in [false, true] {
            for big_endian in [false, true] {
                let file = elf(
                    is_64,
                    big_endian,
                    &[
                        TestSection {
                            name: ".text",
                            address: 0x40_0000,
                            contents: b"code code code",
                        },
                        TestSection {
                            name: ".data",
                            address: 0x40_0100,
                            contents: b"hello data",
                        },
                    ],
                );
                let parsed = Elf::parse(&file).unwrap();
                assert_eq!(parsed.is_64(), is_64);
                assert_eq!(parsed.is_big_endian(), big_endian);
                assert_eq!(parsed.section_data(".data"), Some(&b"hello data"[..]));
                assert_eq!(parsed.section_data(".missing"), None);
                assert_eq!(parsed.read_at_address(0x40_0106, 4), Some(&b"data"[..]));
                assert_eq!(parsed.read_at_address(0x40_0106, 400), None);
            }
        }
    }

    #[test]
    fn rejects_what_is_not_elf() {
        assert_eq!(Elf::parse(b"MZ\x90\x00").unwrap_err(), ElfError::NotElf);
        assert_eq!(
            Elf::parse(b"\x7fELF\x03\x01").unwrap_err(),
            ElfError::UnknownClass(3)
        );
        assert!(matches!(
            Elf::parse(b"\x7fELF\x02\x01\x01\x00"),
            Err(ElfError::OutOfBounds { .. })
        ));
    }
}
