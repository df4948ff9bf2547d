//! The layer cache shared by every image: what one layer contributes to the
//! flattened view ([`LayerContents`]), stored under the layer's digest and the
//! [`crate::ANALYZER_VERSION`], so that a layer already analysed by the same analyzer
//! version is never read again (a rescan after a database change reads no layer).
//! Beside them, each image's inventory under its manifest digest, for the console.
//!
//! Entries use a small length-prefixed binary encoding (JSON spends a number per
//! byte of file content and per path hash, and parsing that cost more than reading
//! the layer again), gzip-compressed, written to a temporary file and renamed into
//! place, so that a reader sees a whole entry or none. An entry that cannot be read
//! back is treated as missing and removed.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crscan_blob::BlobStore;
use crscan_image::{LayerContents, LayerStore, PathSet};
use crscan_model::{Digest, ImageFile, Inventory};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::ANALYZER_VERSION;

/// Largest decompressed entry read back, so that a damaged file cannot exhaust memory.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// A cache directory (`<data-dir>/cache` in the server), and, on a cluster's
/// S3 blob store, the same entries shared by every node (see [`LayerCache::shared_through`]).
#[derive(Debug, Clone)]
pub struct LayerCache {
    root: PathBuf,
    /// The size the entries are kept under, least recently used evicted first.
    max_bytes: Option<u64>,
    shared: Option<Shared>,
}

/// The cluster's tier: each entry's file mirrored byte for byte as the blob store's
/// object `cache/<kind>/<analyzer version>/<algorithm>/<hex>.json.gz`. A local miss
/// looks there before reading the layer, so a layer one node analysed is not read
/// again by another; a write goes to both. The cache is best effort: a failure of
/// the shared tier is logged and the scan goes on (it reads the layer itself).
#[derive(Clone)]
struct Shared {
    blobs: Arc<BlobStore>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({})", self.blobs.location())
    }
}

/// One stored entry.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    /// The layer, when the file name is one.
    digest: Option<Digest>,
    /// Whether the entry belongs to this analyzer version.
    current: bool,
    size: u64,
    /// The last write or use.
    used: SystemTime,
}

/// What a collection of the cache found or did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Entries of layers no stored image references, or of another analyzer version.
    pub unreferenced: usize,
    /// Entries removed to keep the cache under its size cap.
    pub evicted: usize,
    /// Bytes removed (or that would be, on a dry run).
    pub freed_bytes: u64,
    /// Entries kept, and their bytes.
    pub kept: usize,
    pub kept_bytes: u64,
}

impl LayerCache {
    /// Opens the cache under `root`, creating it when missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<LayerCache> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(LayerCache {
            root,
            max_bytes: None,
            shared: None,
        })
    }

    /// Keeps the entries under `max_bytes` (`None` or 0: no cap): once a write
    /// passes it, the least recently used entries are removed.
    pub fn with_max_bytes(mut self, max_bytes: Option<u64>) -> LayerCache {
        self.max_bytes = max_bytes.filter(|bytes| *bytes > 0);
        self
    }

    /// Shares the entries through `blobs` when its objects are shared by the cluster
    /// (S3); on the filesystem backend the cache stays this node's. Must be called on
    /// the async runtime that later calls run next to (the cache blocks on it from
    /// blocking threads).
    pub fn shared_through(mut self, blobs: Arc<BlobStore>) -> LayerCache {
        if let (true, Ok(runtime)) = (
            blobs.shares_objects(),
            tokio::runtime::Handle::try_current(),
        ) {
            self.shared = Some(Shared { blobs, runtime });
        }
        self
    }

    /// The shared object name of the entry file at `path`.
    fn shared_name(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<_> = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        Some(format!("cache/{}", parts.join("/")))
    }

    /// On a local miss, copies the shared entry to `path`; whether it did.
    fn fetch_shared(&self, path: &Path) -> bool {
        let (Some(shared), Some(name)) = (&self.shared, self.shared_name(path)) else {
            return false;
        };
        match shared.runtime.block_on(shared.blobs.get_object(&name)) {
            Ok(Some(bytes)) => write_raw(path, &bytes).is_ok(),
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "shared layer cache unreadable; reading the layer");
                false
            }
        }
    }

    /// Copies the entry file at `path` to the shared tier.
    fn publish_shared(&self, path: &Path) {
        let (Some(shared), Some(name)) = (&self.shared, self.shared_name(path)) else {
            return;
        };
        let Ok(bytes) = fs::read(path) else { return };
        if let Err(error) = shared
            .runtime
            .block_on(shared.blobs.put_object(&name, bytes))
        {
            tracing::warn!(%error, "cannot share a layer cache entry");
        }
    }

    /// Removes a damaged entry from the shared tier too.
    fn drop_shared(&self, path: &Path) {
        if let (Some(shared), Some(name)) = (&self.shared, self.shared_name(path)) {
            let _ = shared.runtime.block_on(shared.blobs.delete_object(&name));
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_path(&self, kind: &str, digest: &Digest) -> PathBuf {
        self.root
            .join(kind)
            .join(ANALYZER_VERSION)
            .join(digest.algorithm().name())
            .join(format!("{}.json.gz", digest.hex()))
    }

    /// The cached contents of the layer `digest`, if this analyzer version read it.
    pub fn layer(&self, digest: &Digest) -> Option<LayerContents> {
        let path = self.entry_path("layers", digest);
        if !path.is_file() && !self.fetch_shared(&path) {
            return None;
        }
        let file = File::open(&path).ok()?;
        let mut bytes = Vec::new();
        let read = GzDecoder::new(BufReader::new(file))
            .take(MAX_ENTRY_BYTES)
            .read_to_end(&mut bytes);
        match read.ok().and_then(|_| decode_layer(&bytes)) {
            Some(contents) if contents.digest == *digest => {
                // A use counts as recent for the size cap's eviction order; failing
                // to record it only makes the entry look older.
                let _ = File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(SystemTime::now()));
                Some(contents)
            }
            _ => {
                // A damaged entry is a miss; removing it lets the next write replace it.
                let _ = fs::remove_file(&path);
                self.drop_shared(&path);
                None
            }
        }
    }

    /// Stores what the layer contributes, then evicts the least recently used
    /// entries while the cache is over its cap.
    pub fn put_layer(&self, contents: &LayerContents) -> io::Result<()> {
        let path = self.entry_path("layers", &contents.digest);
        write_bytes(&path, &encode_layer(contents))?;
        // The same clock as a use (file systems stamp writes with a coarser one).
        let _ = File::options()
            .append(true)
            .open(&path)
            .and_then(|file| file.set_modified(SystemTime::now()));
        self.publish_shared(&path);
        if let Some(max_bytes) = self.max_bytes {
            let mut entries = self.entries()?;
            self.evict(&mut entries, max_bytes, false)?;
        }
        Ok(())
    }

    /// Every entry on disk, of any analyzer version.
    fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let layers = self.root.join("layers");
        let versions = match fs::read_dir(&layers) {
            Ok(versions) => versions,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(entries),
            Err(error) => return Err(error),
        };
        for version in versions {
            let version = version?;
            let current = version.file_name() == ANALYZER_VERSION;
            for algorithm in fs::read_dir(version.path())? {
                let algorithm = algorithm?;
                let algorithm_name = algorithm.file_name().to_string_lossy().into_owned();
                for file in fs::read_dir(algorithm.path())? {
                    let file = file?;
                    let metadata = file.metadata()?;
                    if !metadata.is_file() {
                        continue;
                    }
                    let name = file.file_name().to_string_lossy().into_owned();
                    let digest = name
                        .strip_suffix(".json.gz")
                        .and_then(|hex| format!("{algorithm_name}:{hex}").parse().ok());
                    entries.push(Entry {
                        path: file.path(),
                        digest,
                        current,
                        size: metadata.len(),
                        used: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Removes the least recently used of `entries` until they total at most
    /// `max_bytes`; returns how many were removed and their bytes.
    fn evict(
        &self,
        entries: &mut Vec<Entry>,
        max_bytes: u64,
        dry_run: bool,
    ) -> io::Result<(usize, u64)> {
        let mut total: u64 = entries.iter().map(|entry| entry.size).sum();
        if total <= max_bytes {
            return Ok((0, 0));
        }
        entries.sort_by_key(|entry| entry.used);
        let mut evicted = (0, 0);
        let mut kept = Vec::new();
        for entry in entries.drain(..) {
            if total <= max_bytes {
                kept.push(entry);
                continue;
            }
            if !dry_run {
                remove(&entry.path)?;
            }
            total -= entry.size;
            evicted.0 += 1;
            evicted.1 += entry.size;
        }
        *entries = kept;
        Ok(evicted)
    }

    /// Collects the cache: removes entries of other analyzer versions and of layers
    /// for which `referenced` says no stored image uses them (unless written or used
    /// within `grace`, so that a scan in progress keeps its layers), then evicts the
    /// least recently used entries down to the size cap. A dry run only reports.
    pub fn collect(
        &self,
        referenced: &dyn Fn(&Digest) -> bool,
        grace: Duration,
        dry_run: bool,
    ) -> io::Result<CacheReport> {
        let mut report = CacheReport::default();
        let now = SystemTime::now();
        let mut kept = Vec::new();
        for entry in self.entries()? {
            let recent = now
                .duration_since(entry.used)
                .map_or(true, |age| age < grace);
            let wanted = entry.current && (recent || entry.digest.as_ref().is_some_and(referenced));
            if wanted {
                kept.push(entry);
                continue;
            }
            if !dry_run {
                remove(&entry.path)?;
            }
            report.unreferenced += 1;
            report.freed_bytes += entry.size;
        }
        if let Some(max_bytes) = self.max_bytes {
            let (evicted, bytes) = self.evict(&mut kept, max_bytes, dry_run)?;
            report.evicted = evicted;
            report.freed_bytes += bytes;
        }
        report.kept = kept.len();
        report.kept_bytes = kept.iter().map(|entry| entry.size).sum();
        self.collect_shared(referenced, grace, dry_run, &mut report);
        Ok(report)
    }

    /// The same collection over the shared tier's layer entries (the cap by age of
    /// the last write: S3 keeps no time of use); counted in the same report.
    fn collect_shared(
        &self,
        referenced: &dyn Fn(&Digest) -> bool,
        grace: Duration,
        dry_run: bool,
        report: &mut CacheReport,
    ) {
        let Some(shared) = &self.shared else { return };
        let listed = match shared
            .runtime
            .block_on(shared.blobs.list_objects("cache/layers/"))
        {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, "cannot list the shared layer cache");
                return;
            }
        };
        let now = SystemTime::now();
        let mut kept = Vec::new();
        let mut doomed = Vec::new();
        for object in listed {
            let parts: Vec<&str> = object.name.split('/').collect();
            let (current, digest) = match parts.as_slice() {
                ["cache", "layers", version, algorithm, file] => (
                    *version == ANALYZER_VERSION,
                    file.strip_suffix(".json.gz")
                        .and_then(|hex| format!("{algorithm}:{hex}").parse::<Digest>().ok()),
                ),
                _ => (false, None),
            };
            let recent = now
                .duration_since(object.modified)
                .map_or(true, |age| age < grace);
            if current && (recent || digest.as_ref().is_some_and(referenced)) {
                kept.push(object);
            } else {
                report.unreferenced += 1;
                report.freed_bytes += object.size;
                doomed.push(object.name);
            }
        }
        if let Some(max_bytes) = self.max_bytes {
            let mut total: u64 = kept.iter().map(|object| object.size).sum();
            kept.sort_by_key(|object| object.modified);
            for object in kept {
                if total <= max_bytes {
                    break;
                }
                total -= object.size;
                report.evicted += 1;
                report.freed_bytes += object.size;
                doomed.push(object.name);
            }
        }
        if dry_run {
            return;
        }
        for name in doomed {
            if let Err(error) = shared.runtime.block_on(shared.blobs.delete_object(&name)) {
                tracing::warn!(%error, "cannot remove a shared layer cache entry");
            }
        }
    }
}

/// Removes an entry; one already gone (another process collected it) is fine.
fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

impl LayerCache {
    /// The inventory of the image whose platform manifest is `manifest_digest`, as
    /// its last scan with this cache left it (what the console shows).
    pub fn inventory(&self, manifest_digest: &Digest) -> Option<Inventory> {
        let path = self.entry_path("images", manifest_digest);
        if !path.is_file() && !self.fetch_shared(&path) {
            return None;
        }
        let file = File::open(&path).ok()?;
        let decoder = GzDecoder::new(BufReader::new(file)).take(MAX_ENTRY_BYTES);
        match serde_json::from_reader(decoder) {
            Ok(inventory) => Some(inventory),
            Err(_) => {
                // A damaged entry is a miss; removing it lets the next write replace it.
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an image's inventory.
    pub fn put_inventory(&self, manifest_digest: &Digest, inventory: &Inventory) -> io::Result<()> {
        let bytes = serde_json::to_vec(inventory).map_err(io::Error::other)?;
        let path = self.entry_path("images", manifest_digest);
        write_bytes(&path, &bytes)?;
        self.publish_shared(&path);
        Ok(())
    }
}

impl LayerStore for LayerCache {
    fn get(&self, digest: &Digest) -> Option<LayerContents> {
        self.layer(digest)
    }

    fn put(&self, contents: &LayerContents) -> io::Result<()> {
        self.put_layer(contents)
    }
}

/// Writes an entry file's bytes as they are (already compressed), atomically.
fn write_raw(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("cache path {} has no parent", path.display())))?;
    fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("cache path {} has no parent", path.display())))?;
    fs::create_dir_all(dir)?;
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut encoder = GzEncoder::new(BufWriter::new(temp.as_file()), Compression::fast());
        encoder.write_all(bytes)?;
        encoder.finish()?.flush()?;
    }
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// The first bytes of a layer entry; a new layout gets a new tag.
const LAYER_MAGIC: &[u8] = b"crscan-layer-2\n";

struct Writer(Vec<u8>);

impl Writer {
    fn number(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn bytes(&mut self, value: &[u8]) {
        self.number(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    fn text(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    fn texts(&mut self, values: &[String]) {
        self.number(values.len() as u64);
        values.iter().for_each(|value| self.text(value));
    }

    fn pairs(&mut self, values: &[(String, String)]) {
        self.number(values.len() as u64);
        for (left, right) in values {
            self.text(left);
            self.text(right);
        }
    }

    fn numbers(&mut self, values: &[u64]) {
        self.number(values.len() as u64);
        values.iter().for_each(|value| self.number(*value));
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if count > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Some(head)
    }

    fn number(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// A count of items each at least `unit` bytes long, checked against what is left.
    fn count(&mut self, unit: usize) -> Option<usize> {
        let count = usize::try_from(self.number()?).ok()?;
        (count.checked_mul(unit)? <= self.0.len()).then_some(count)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let length = self.count(1)?;
        self.take(length)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn texts(&mut self) -> Option<Vec<String>> {
        let count = self.count(8)?;
        (0..count).map(|_| self.text()).collect()
    }

    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let count = self.count(16)?;
        (0..count)
            .map(|_| Some((self.text()?, self.text()?)))
            .collect()
    }

    fn numbers(&mut self) -> Option<Vec<u64>> {
        let count = self.count(8)?;
        (0..count).map(|_| self.number()).collect()
    }
}

fn encode_layer(contents: &LayerContents) -> Vec<u8> {
    let mut writer = Writer(LAYER_MAGIC.to_vec());
    writer.text(&contents.digest.to_string());
    writer.text(&contents.diff_id.to_string());
    writer.number(contents.files.len() as u64);
    for file in &contents.files {
        writer.text(&file.path);
        match &file.layer_digest {
            Some(digest) => writer.text(&digest.to_string()),
            None => writer.text(""),
        }
        writer.number(u64::from(file.mode));
        writer.bytes(&file.contents);
        writer.number(u64::from(file.truncated));
    }
    writer.pairs(&contents.symlinks);
    writer.pairs(&contents.hardlinks);
    writer.texts(&contents.whiteouts);
    writer.texts(&contents.opaque_dirs);
    writer.numbers(contents.written.hashes());
    writer.numbers(contents.directories.hashes());
    writer.0
}

fn decode_layer(bytes: &[u8]) -> Option<LayerContents> {
    let mut reader = Reader(bytes.strip_prefix(LAYER_MAGIC)?);
    let digest: Digest = reader.text()?.parse().ok()?;
    let diff_id: Digest = reader.text()?.parse().ok()?;
    let count = reader.count(40)?;
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let path = reader.text()?;
        let layer_digest = match reader.text()? {
            text if text.is_empty() => None,
            text => Some(text.parse().ok()?),
        };
        let mode = u32::try_from(reader.number()?).ok()?;
        let contents: Arc<[u8]> = Arc::from(reader.bytes()?);
        let truncated = reader.number()? != 0;
        files.push(ImageFile {
            path,
            layer_digest,
            mode,
            contents,
            truncated,
            history: Vec::new(),
        });
    }
    let contents = LayerContents {
        digest,
        diff_id,
        files,
        symlinks: reader.pairs()?,
        hardlinks: reader.pairs()?,
        whiteouts: reader.texts()?,
        opaque_dirs: reader.texts()?,
        written: PathSet::from_stored(reader.numbers()?),
        directories: PathSet::from_stored(reader.numbers()?),
    };
    reader.0.is_empty().then_some(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_entries_round_trip_and_reject_damage() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let contents = LayerContents {
            digest: digest.clone(),
            diff_id: format!("sha256:{}", "cd".repeat(32)).parse().unwrap(),
            files: vec![ImageFile {
                path: "/lib/apk/db/installed".to_owned(),
                layer_digest: Some(digest.clone()),
                mode: 0o644,
                contents: Arc::from(&b"P:musl\nV:1.1.14-r10\n"[..]),
                truncated: false,
                history: Vec::new(),
            }],
            symlinks: vec![("/bin/sh".to_owned(), "busybox".to_owned())],
            hardlinks: Vec::new(),
            whiteouts: vec!["/etc/old".to_owned()],
            opaque_dirs: Vec::new(),
            written: PathSet::from_stored(vec![3, 1, 2]),
            directories: PathSet::from_stored(vec![7]),
        };
        let bytes = encode_layer(&contents);
        assert_eq!(decode_layer(&bytes), Some(contents));
        for cut in [0, LAYER_MAGIC.len(), bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode_layer(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[LAYER_MAGIC.len()..LAYER_MAGIC.len() + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode_layer(&huge), None);
    }
}
