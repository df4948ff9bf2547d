//! One layer: a tar stream (plain, gzip or zstd) walked once, front to back, keeping
//! only what the detectors asked for, and then applied on top of the lower layers.
//!
//! The layer format, whiteouts and opaque directories follow the OCI image spec:
//! <https://github.com/opencontainers/image-spec/blob/main/layer.md>.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use crscan_model::files::normalize_path;
use crscan_model::{Digest, FileInterest, FileView, ImageFile, Keep};
use sha2::{Digest as _, Sha256};

use crate::limits::{CompressedCounter, DecompressedCounter, ImageTotals, LayerMeter};
use crate::{ImageError, Limits, MemoryBudget, NoProgress, Progress};

/// What one layer contributes to the image, independent of the layers below it, so
/// that it can be cached per layer digest and applied to any lower view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerContents {
    pub digest: Digest,
    /// The SHA-256 of the uncompressed tar, taken while the layer streamed: what the
    /// image configuration's `rootfs.diff_ids` must say for this layer.
    pub diff_id: Digest,
    /// Kept regular files (and hard links to kept files of this layer), in tar order.
    pub files: Vec<ImageFile>,
    /// Every symbolic link, as (path, target as written).
    pub symlinks: Vec<(String, String)>,
    /// Hard links whose target is not in this layer, as (path, target path).
    pub hardlinks: Vec<(String, String)>,
    /// Paths removed from lower layers by `.wh.NAME` files.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer content `.wh..wh..opq` hides.
    pub opaque_dirs: Vec<String>,
    /// Every non-directory path this layer writes, kept or not: they replace whatever
    /// lower layers had at that path (and below it).
    pub written: PathSet,
    /// Every directory this layer writes: they replace a lower file or link there.
    pub directories: PathSet,
}

/// A compact set of paths, stored as 64-bit prefixes of their SHA-256 so that a
/// layer of 100,000 files costs under a megabyte and a crafted path cannot collide
/// with a chosen one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSet(Vec<u64>);

impl PathSet {
    fn from_hashes(hashes: impl IntoIterator<Item = u64>) -> PathSet {
        let mut hashes: Vec<u64> = hashes.into_iter().collect();
        hashes.sort_unstable();
        hashes.dedup();
        PathSet(hashes)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.contains_hash(path_hash(path))
    }

    fn contains_hash(&self, hash: u64) -> bool {
        self.0.binary_search(&hash).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored hashes, sorted (for caching a layer).
    pub fn hashes(&self) -> &[u64] {
        &self.0
    }

    /// Rebuilds a set from stored hashes.
    pub fn from_stored(hashes: Vec<u64>) -> PathSet {
        PathSet::from_hashes(hashes)
    }
}

fn path_hash(path: &str) -> u64 {
    let hash = Sha256::digest(path.as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(prefix)
}

/// Reads one layer blob front to back. The compression is sniffed from the first
/// bytes (gzip, zstd, or a plain tar). The digest is not verified here: callers that
/// read from their own content-addressed store verified it on write. The kept files
/// draw on a memory budget of their own (`limits.memory_budget_bytes`); a caller
/// reading several layers of one image shares one with [`read_layer_within`].
pub fn read_layer(
    reader: impl Read,
    layer_digest: &Digest,
    interest: &dyn FileInterest,
    limits: &Limits,
) -> Result<LayerContents, ImageError> {
    let budget = MemoryBudget::from_limits(limits);
    read_layer_within(reader, layer_digest, interest, limits, &budget)
}

/// [`read_layer`], charging every kept file to `budget` (the scan's, shared by all
/// its layers): a file that does not fit ends the read with
/// [`ImageError::OverMemoryBudget`] naming it.
pub fn read_layer_within(
    reader: impl Read,
    layer_digest: &Digest,
    interest: &dyn FileInterest,
    limits: &Limits,
    budget: &MemoryBudget,
) -> Result<LayerContents, ImageError> {
    let totals = ImageTotals::default();
    read_layer_metered(
        reader,
        layer_digest,
        &Verify::None,
        interest,
        &LayerRules { limits, budget },
        &totals,
        &NoProgress,
    )
}

/// The limits and the memory budget a layer is read under.
pub(crate) struct LayerRules<'a> {
    pub limits: &'a Limits,
    pub budget: &'a MemoryBudget,
}

/// How to check a layer blob's bytes against a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    None,
    /// The raw bytes must hash to this digest.
    Blob(Digest),
    /// The raw bytes must hash to this digest if they are an uncompressed tar (a
    /// docker archive's `layer.tar`, whose digest is the diff ID).
    PlainBlob(Digest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Plain,
    Gzip,
    Zstd,
}

fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::Plain
    }
}

pub(crate) fn read_layer_metered(
    reader: impl Read,
    digest: &Digest,
    verify: &Verify,
    interest: &dyn FileInterest,
    rules: &LayerRules<'_>,
    totals: &ImageTotals,
    progress: &dyn Progress,
) -> Result<LayerContents, ImageError> {
    let hash_blob = !matches!(verify, Verify::None);
    let meter = LayerMeter::new(digest, rules.limits, totals, progress, hash_blob);
    let result = walk_layer(reader, &meter, interest, rules);
    meter.flush_progress();
    let (contents, compression) = match result {
        Ok(done) => done,
        Err(error) => return Err(meter.take_tripped().unwrap_or(error)),
    };
    let expected = match verify {
        Verify::None => None,
        Verify::Blob(expected) => Some(expected),
        Verify::PlainBlob(expected) if compression == Compression::Plain => Some(expected),
        Verify::PlainBlob(_) => None,
    };
    if let Some(expected) = expected {
        let actual = meter.blob_digest();
        if &actual != expected {
            return Err(ImageError::DigestMismatch {
                name: format!("layer {digest}"),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(contents)
}

fn walk_layer(
    reader: impl Read,
    meter: &LayerMeter<'_>,
    interest: &dyn FileInterest,
    rules: &LayerRules<'_>,
) -> Result<(LayerContents, Compression), ImageError> {
    let bad = |error: io::Error| ImageError::BadLayer {
        digest: meter.digest.clone(),
        detail: error.to_string(),
    };
    let mut raw = CompressedCounter {
        inner: reader,
        meter,
    };
    let mut head = [0u8; 4];
    let head_len = read_up_to(&mut raw, &mut head).map_err(bad)?;
    let compression = sniff_compression(&head[..head_len]);
    if compression == Compression::Plain {
        meter.plain_layer();
    }
    let prefixed = io::Cursor::new(head[..head_len].to_vec()).chain(&mut raw);
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::Plain => Box::new(prefixed),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(prefixed)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(prefixed).map_err(|error| {
                ImageError::Decompress {
                    digest: meter.digest.clone(),
                    detail: error.to_string(),
                }
            })?)
        }
    };
    let counted = DecompressedCounter {
        inner: decoder,
        meter,
    };
    let mut archive = tar::Archive::new(counted);
    let mut walker = Walker::new(meter.digest, interest, rules);
    // Where the data of the last entry ends in the tar stream. Some writers (umoci's
    // `insert`) end a layer right after the last entry's data, with no padding and
    // no end-of-archive blocks; like the Go tar reader, accept a stream that ends
    // there, but not one that ends inside an entry's data.
    let mut data_end = 0u64;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(_) if meter.ended() && !meter.has_tripped() && meter.decompressed() >= data_end => {
                break;
            }
            Err(error) => return Err(bad(error)),
        };
        data_end = entry.raw_file_position().saturating_add(entry.size());
        walker.entry(&mut entry)?;
    }
    // Read to the end so that the gzip trailer is checked and the digest covers
    // the whole blob.
    let mut counted = archive.into_inner();
    io::copy(&mut counted, &mut io::sink()).map_err(bad)?;
    drop(counted);
    io::copy(&mut raw, &mut io::sink()).map_err(bad)?;
    Ok((walker.finish(meter.diff_id()), compression))
}

/// Reads until `buf` is full or the stream ends; returns the count read.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Shortens a hostile path for an error message.
pub(crate) fn shorten(path: &str) -> String {
    if path.len() <= 120 {
        return path.to_owned();
    }
    let mut end = 120;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

/// Checks a raw path against the length limit and returns it normalised, after
/// checking the depth limit.
pub(crate) fn checked_path(
    raw: &[u8],
    place: &dyn Fn() -> String,
    limits: &Limits,
) -> Result<String, ImageError> {
    let text = String::from_utf8_lossy(raw);
    if raw.len() > limits.max_path_len {
        return Err(ImageError::PathTooLong {
            place: place(),
            path: shorten(&text),
            limit: limits.max_path_len,
        });
    }
    let path = normalize_path(&text);
    let depth = path.bytes().filter(|byte| *byte == b'/').count();
    if depth > limits.max_path_depth {
        return Err(ImageError::PathTooDeep {
            place: place(),
            path: shorten(&path),
            limit: limits.max_path_depth,
        });
    }
    Ok(path)
}

/// Splits `/a/b/c` into `/a/b` and `c`; the parent of `/c` is `/`.
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(index) => (&path[..index], &path[index + 1..]),
        None => ("/", path),
    }
}

/// Reads a kept file's contents, at most `cap` bytes; returns whether it was longer.
/// `size_hint` (already charged to the memory budget) is reserved up front, so that
/// a large file is one allocation rather than a series of doublings.
pub(crate) fn read_capped(
    reader: &mut impl Read,
    mut contents: Vec<u8>,
    size_hint: u64,
    cap: u64,
) -> io::Result<(Vec<u8>, bool)> {
    let already = contents.len() as u64;
    let reserve = size_hint.min(cap).saturating_sub(already);
    contents.reserve(usize::try_from(reserve).unwrap_or(0));
    let room = cap.saturating_sub(already);
    reader
        .take(room.saturating_add(1))
        .read_to_end(&mut contents)?;
    let truncated = contents.len() as u64 > cap;
    if truncated {
        contents.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    }
    Ok((contents, truncated))
}

/// Reads `length` bytes of a kept file (its first bytes already in `head`) straight
/// into the shared buffer the file view keeps, so that a large file is allocated
/// once and never copied. A stream that ends early keeps what it gave.
fn read_into_arc(reader: &mut impl Read, head: &[u8], length: u64) -> io::Result<Arc<[u8]>> {
    let length = usize::try_from(length).map_err(io::Error::other)?;
    let mut contents: Arc<[u8]> = std::iter::repeat_n(0u8, length).collect();
    let Some(buffer) = Arc::get_mut(&mut contents) else {
        return Err(io::Error::other("a new buffer is shared"));
    };
    let kept_head = head.len().min(length);
    buffer[..kept_head].copy_from_slice(&head[..kept_head]);
    let filled = kept_head + read_up_to(reader, &mut buffer[kept_head..])?;
    if filled < length {
        return Ok(Arc::from(&buffer[..filled]));
    }
    Ok(contents)
}

/// The state of one walk over a layer's entries.
struct Walker<'a> {
    digest: &'a Digest,
    interest: &'a dyn FileInterest,
    limits: &'a Limits,
    budget: &'a MemoryBudget,
    entries: u64,
    files: Vec<Option<ImageFile>>,
    file_index: HashMap<String, usize>,
    symlinks: Vec<Option<(String, String)>>,
    symlink_index: HashMap<String, usize>,
    hardlinks: Vec<(String, String)>,
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
    written: HashSet<u64>,
    directories: Vec<u64>,
}

impl<'a> Walker<'a> {
    fn new(
        digest: &'a Digest,
        interest: &'a dyn FileInterest,
        rules: &LayerRules<'a>,
    ) -> Walker<'a> {
        Walker {
            digest,
            interest,
            limits: rules.limits,
            budget: rules.budget,
            entries: 0,
            files: Vec::new(),
            file_index: HashMap::new(),
            symlinks: Vec::new(),
            symlink_index: HashMap::new(),
            hardlinks: Vec::new(),
            whiteouts: Vec::new(),
            opaque_dirs: Vec::new(),
            written: HashSet::new(),
            directories: Vec::new(),
        }
    }

    fn place(&self) -> String {
        format!("layer {}", self.digest)
    }

    /// Drops what this layer wrote earlier at `path`: the later entry wins.
    fn forget(&mut self, path: &str) {
        if let Some(index) = self.file_index.remove(path) {
            self.files[index] = None;
        }
        if let Some(index) = self.symlink_index.remove(path) {
            self.symlinks[index] = None;
        }
    }

    fn push_file(&mut self, file: ImageFile) {
        self.file_index.insert(file.path.clone(), self.files.len());
        self.files.push(Some(file));
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries_per_layer {
            return Err(ImageError::TooManyEntries {
                place: self.place(),
                limit: self.limits.max_entries_per_layer,
            });
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Ok(());
        }
        let place = || self.place();
        let path = checked_path(&entry.path_bytes(), &place, self.limits)?;
        if path == "/" {
            return Ok(());
        }
        let (parent, name) = split_parent(&path);
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                self.opaque_dirs.push(parent.to_owned());
            } else if !hidden.starts_with(".wh.") && !matches!(hidden, "" | "." | "..") {
                let hidden_path = if parent == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{parent}/{hidden}")
                };
                self.whiteouts.push(hidden_path);
            }
            return Ok(());
        }
        let hash = path_hash(&path);
        self.forget(&path);
        if kind.is_dir() {
            self.directories.push(hash);
            return Ok(());
        }
        self.written.insert(hash);
        if kind.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default();
            if target.len() > self.limits.max_path_len {
                return Err(ImageError::PathTooLong {
                    place: format!("the target of {path} in layer {}", self.digest),
                    path: shorten(&String::from_utf8_lossy(&target)),
                    limit: self.limits.max_path_len,
                });
            }
            let target = String::from_utf8_lossy(&target).into_owned();
            self.symlink_index.insert(path.clone(), self.symlinks.len());
            self.symlinks.push(Some((path, target)));
            return Ok(());
        }
        if kind.is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default();
            let place = || format!("the target of {path} in layer {}", self.digest);
            let target = checked_path(&target, &place, self.limits)?;
            let same_layer = self
                .file_index
                .get(&target)
                .and_then(|index| self.files[*index].as_ref())
                .cloned();
            if let Some(linked) = same_layer {
                self.push_file(ImageFile {
                    path,
                    history: Vec::new(),
                    ..linked
                });
            } else if !self.written.contains(&path_hash(&target)) {
                self.hardlinks.push((path, target));
            }
            return Ok(());
        }
        let regular = kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse();
        if !regular {
            return Ok(());
        }
        self.maybe_keep(entry, path)
    }

    fn maybe_keep<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: String,
    ) -> Result<(), ImageError> {
        let bad = |error: io::Error| ImageError::BadLayer {
            digest: self.digest.clone(),
            detail: format!("reading {path}: {error}"),
        };
        let mut head = Vec::new();
        let keep = self.interest.by_path(&path) != Keep::No || {
            let magic_len = self.interest.magic_len();
            magic_len > 0 && {
                head.resize(magic_len, 0);
                let count = read_up_to(entry, &mut head).map_err(bad)?;
                head.truncate(count);
                self.interest.by_magic(&path, &head)
            }
        };
        if !keep {
            return Ok(());
        }
        let size = entry.size();
        let mode = entry.header().mode().unwrap_or(0);
        // Charged before reading, at the size the header declares (the tar reader
        // never yields more), so that a hostile file is refused before it is held.
        let charged = size.min(self.limits.max_file_bytes);
        self.budget.charge(charged, &path, &self.place())?;
        let contents = read_into_arc(entry, &head, charged).map_err(bad)?;
        self.budget
            .release(charged.saturating_sub(contents.len() as u64));
        self.push_file(ImageFile {
            path,
            layer_digest: Some(self.digest.clone()),
            mode,
            contents,
            truncated: size > self.limits.max_file_bytes,
            history: Vec::new(),
        });
        Ok(())
    }

    fn finish(self, diff_id: Digest) -> LayerContents {
        LayerContents {
            digest: self.digest.clone(),
            diff_id,
            files: self.files.into_iter().flatten().collect(),
            symlinks: self.symlinks.into_iter().flatten().collect(),
            hardlinks: self.hardlinks,
            whiteouts: self.whiteouts,
            opaque_dirs: self.opaque_dirs,
            written: PathSet::from_hashes(self.written),
            directories: PathSet::from_hashes(self.directories),
        }
    }
}

impl LayerContents {
    /// Applies this layer on top of `view`: opaque directories and whiteouts first
    /// (they hide lower layers only), then the paths this layer replaces, then its
    /// links and kept files. Paths whose interest is [`Keep::WithHistory`] keep the
    /// lower version in their history.
    pub fn apply_to(self, view: &mut FileView, interest: &dyn FileInterest) {
        for dir in &self.opaque_dirs {
            view.remove_children(dir);
        }
        for path in &self.whiteouts {
            view.remove_tree(path);
        }
        let rewritten: HashSet<&str> = self.files.iter().map(|file| file.path.as_str()).collect();
        let stale: Vec<String> = view
            .files()
            .map(|file| file.path.as_str())
            .chain(view.symlinks().map(|(path, _)| path))
            .filter(|path| !rewritten.contains(path) && self.replaces(path))
            .map(str::to_owned)
            .collect();
        for path in &stale {
            view.remove(path);
        }
        for (path, target) in self.symlinks {
            view.insert_symlink(path, target);
        }
        for mut file in self.files {
            if interest.by_path(&file.path) == Keep::WithHistory
                && let Some(lower) = view.get_exact_mut(&file.path)
            {
                let mut history = std::mem::take(&mut lower.history);
                history.push(crscan_model::FileVersion {
                    layer_digest: lower.layer_digest.clone(),
                    contents: lower.contents.clone(),
                });
                file.history = history;
            }
            view.insert(file);
        }
        for (path, target) in self.hardlinks {
            if let Some(linked) = view.get(&target).cloned() {
                view.insert(ImageFile {
                    path,
                    layer_digest: Some(self.digest.clone()),
                    history: Vec::new(),
                    ..linked
                });
            }
        }
    }

    /// Whether a lower entry at `path` is replaced by this layer: the same path was
    /// written, or one of its parents was written as a non-directory.
    fn replaces(&self, path: &str) -> bool {
        if self.written.contains(path) || self.directories.contains(path) {
            return true;
        }
        path.match_indices('/')
            .skip(1)
            .any(|(index, _)| self.written.contains(&path[..index]))
    }
}
