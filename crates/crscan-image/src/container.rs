//! Where an image's blobs live: a directory (an OCI layout), a tar file (indexed once
//! and then read by offset), or a gzip-compressed tar file (streamed, once per pass).
//! Nothing is unpacked to disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crscan_model::files::normalize_path;

use crate::ImageError;
use crate::layer::read_up_to;

/// Most entries accepted in an image archive (layers, configs, manifests).
const MAX_ARCHIVE_ENTRIES: u64 = 100_000;

/// Largest entry kept in memory during the index pass over a compressed archive.
const CACHE_ENTRY_BYTES: u64 = 256 << 10;

/// Most bytes cached during the index pass over a compressed archive.
const CACHE_TOTAL_BYTES: u64 = 32 << 20;

/// Longest chain of links between archive entries that is followed.
const MAX_ENTRY_LINKS: usize = 8;

/// One entry of an image archive.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveEntry {
    /// Offset of the entry's data in the (uncompressed) tar stream.
    offset: u64,
    size: u64,
    /// For a hard or symbolic link, the normalised name it points to.
    link: Option<String>,
}

/// A container of blobs named by relative paths (`blobs/sha256/…`, `manifest.json`).
pub(crate) enum Container {
    Directory(PathBuf),
    Tar {
        path: PathBuf,
        entries: HashMap<String, ArchiveEntry>,
    },
    GzTar {
        path: PathBuf,
        entries: HashMap<String, ArchiveEntry>,
        cache: HashMap<String, Vec<u8>>,
    },
}

/// Normalises an archive member name: no leading `./` or `/`, no `..`.
pub(crate) fn member_name(raw: &str) -> String {
    normalize_path(raw).trim_start_matches('/').to_owned()
}

pub(crate) fn is_gzip_file(path: &Path) -> Result<bool, ImageError> {
    let mut file = File::open(path).map_err(|error| ImageError::io(path, error))?;
    let mut head = [0u8; 2];
    let count = read_up_to(&mut file, &mut head).map_err(|error| ImageError::io(path, error))?;
    Ok(count == 2 && head == [0x1f, 0x8b])
}

impl Container {
    /// Opens a tar file, gzip-compressed or not, and indexes its entries.
    pub fn open_archive(path: &Path) -> Result<Container, ImageError> {
        let io_error = |error| ImageError::io(path, error);
        let file = File::open(path).map_err(io_error)?;
        if is_gzip_file(path)? {
            let mut entries = HashMap::new();
            let mut cache = HashMap::new();
            let mut cached_bytes = 0u64;
            let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
            let mut archive = tar::Archive::new(decoder);
            for entry in archive.entries().map_err(io_error)? {
                let mut entry = entry.map_err(io_error)?;
                let (name, indexed) = index_entry(&entry, entries.len(), path)?;
                if indexed.link.is_none()
                    && indexed.size <= CACHE_ENTRY_BYTES
                    && cached_bytes + indexed.size <= CACHE_TOTAL_BYTES
                    && entry.header().entry_type().is_file()
                {
                    let mut contents = Vec::new();
                    (&mut entry)
                        .take(CACHE_ENTRY_BYTES)
                        .read_to_end(&mut contents)
                        .map_err(io_error)?;
                    cached_bytes += contents.len() as u64;
                    cache.insert(name.clone(), contents);
                }
                entries.insert(name, indexed);
            }
            Ok(Container::GzTar {
                path: path.to_owned(),
                entries,
                cache,
            })
        } else {
            let mut entries = HashMap::new();
            let mut archive = tar::Archive::new(file);
            for entry in archive.entries_with_seek().map_err(io_error)? {
                let entry = entry.map_err(io_error)?;
                let (name, indexed) = index_entry(&entry, entries.len(), path)?;
                entries.insert(name, indexed);
            }
            Ok(Container::Tar {
                path: path.to_owned(),
                entries,
            })
        }
    }

    /// A description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Container::Directory(path)
            | Container::Tar { path, .. }
            | Container::GzTar { path, .. } => path.display().to_string(),
        }
    }

    /// The name under which a member's data is stored, following links between
    /// archive entries; `None` when missing.
    pub fn resolve(&self, name: &str) -> Option<String> {
        match self {
            Container::Directory(root) => {
                let name = member_name(name);
                root.join(&name).is_file().then_some(name)
            }
            Container::Tar { entries, .. } | Container::GzTar { entries, .. } => {
                let mut current = member_name(name);
                for _ in 0..=MAX_ENTRY_LINKS {
                    let entry = entries.get(&current)?;
                    match &entry.link {
                        None => return Some(current),
                        Some(target) => current = target.clone(),
                    }
                }
                None
            }
        }
    }

    /// The size of a member, if present.
    pub fn size(&self, name: &str) -> Option<u64> {
        let resolved = self.resolve(name)?;
        match self {
            Container::Directory(root) => std::fs::metadata(root.join(resolved))
                .ok()
                .map(|meta| meta.len()),
            Container::Tar { entries, .. } | Container::GzTar { entries, .. } => {
                entries.get(&resolved).map(|entry| entry.size)
            }
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    fn missing(&self, name: &str) -> ImageError {
        ImageError::MissingBlob {
            name: name.to_owned(),
            container: self.describe(),
        }
    }

    /// Reads a small member (a manifest, an index, a configuration) into memory.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
        let resolved = self.resolve(name).ok_or_else(|| self.missing(name))?;
        let too_large = || ImageError::MetadataTooLarge {
            what: format!("{name} in {}", self.describe()),
            limit,
        };
        if self.size(&resolved).is_some_and(|size| size > limit) {
            return Err(too_large());
        }
        if let Container::GzTar { cache, .. } = self
            && let Some(contents) = cache.get(&resolved)
        {
            return Ok(contents.clone());
        }
        let (reader, _) = self
            .open_member(&resolved)
            .map_err(|error| ImageError::io(self.describe(), error))?;
        let mut contents = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut contents)
            .map_err(|error| ImageError::io(self.describe(), error))?;
        if contents.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(contents)
    }

    /// Opens one member (a name as returned by [`Container::resolve`]) as an owned
    /// reader, with its size. A member of a compressed archive is reached by
    /// decompressing the archive up to it.
    pub fn open_member(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let missing = || io::Error::new(io::ErrorKind::NotFound, format!("{name} is missing"));
        match self {
            Container::Directory(root) => {
                let file = File::open(root.join(member_name(name)))?;
                let size = file.metadata()?.len();
                Ok((Box::new(file), size))
            }
            Container::Tar { path, entries } => {
                let entry = entries.get(name).ok_or_else(missing)?;
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(entry.offset))?;
                let member = io::BufReader::with_capacity(256 << 10, file.take(entry.size));
                Ok((Box::new(member), entry.size))
            }
            Container::GzTar {
                path,
                entries,
                cache,
            } => {
                let entry = entries.get(name).ok_or_else(missing)?;
                if let Some(contents) = cache.get(name) {
                    return Ok((Box::new(io::Cursor::new(contents.clone())), entry.size));
                }
                let file = File::open(path)?;
                let mut decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
                let skipped = io::copy(&mut (&mut decoder).take(entry.offset), &mut io::sink())?;
                if skipped < entry.offset {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} ends before {name}", path.display()),
                    ));
                }
                Ok((Box::new(decoder.take(entry.size)), entry.size))
            }
        }
    }
}

/// Indexes one entry of an image archive.
fn index_entry<R: Read>(
    entry: &tar::Entry<'_, R>,
    count: usize,
    archive: &Path,
) -> Result<(String, ArchiveEntry), ImageError> {
    if count as u64 >= MAX_ARCHIVE_ENTRIES {
        return Err(ImageError::TooManyEntries {
            place: format!("archive {}", archive.display()),
            limit: MAX_ARCHIVE_ENTRIES,
        });
    }
    let name = member_name(&String::from_utf8_lossy(&entry.path_bytes()));
    let kind = entry.header().entry_type();
    let link = if kind.is_hard_link() || kind.is_symlink() {
        let target =
            String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default()).into_owned();
        Some(if kind.is_symlink() && !target.starts_with('/') {
            let parent = name.rsplit_once('/').map_or("", |(parent, _)| parent);
            member_name(&format!("{parent}/{target}"))
        } else {
            member_name(&target)
        })
    } else {
        None
    };
    Ok((
        name,
        ArchiveEntry {
            offset: entry.raw_file_position(),
            size: entry.size(),
            link,
        },
    ))
}
