//! Limits on untrusted images, and the counting readers that enforce them while a
//! layer streams, so that a hostile image costs bounded time and memory.
//!
//! Readers cannot return our error type through `std::io::Read`, so a reader that
//! trips a limit stores the typed error in the layer's [`LayerMeter`] and returns a
//! plain I/O error; the layer walker looks at the meter first when anything fails.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crscan_model::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

use crate::{ImageError, Progress};

/// Bounds on what the reader accepts from an image. Every limit crossed is an
/// [`ImageError`] naming the limit, except `max_file_bytes`, which keeps a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Compressed bytes read over the whole image.
    pub max_image_bytes: u64,
    /// Layers in one manifest.
    pub max_layers: usize,
    /// Tar entries in one layer (files in a directory source).
    pub max_entries_per_layer: u64,
    /// Bytes kept of one file; longer files keep a prefix and are marked truncated.
    pub max_file_bytes: u64,
    /// Decompressed bytes over the whole image.
    pub max_total_bytes: u64,
    /// Largest ratio of decompressed to compressed bytes in one layer once it has
    /// expanded past 16 MiB (decompression bombs); 0 disables the check.
    pub max_compression_ratio: u64,
    /// Bytes in one path or link target.
    pub max_path_len: usize,
    /// Components in one path.
    pub max_path_depth: usize,
    /// Bytes in one manifest or index: the registry refuses a larger push, and a scan
    /// refuses to read one (`manifest_limit_bytes` of `crscan serve`).
    pub max_manifest_bytes: u64,
    /// Bytes of kept file contents one scan may hold at once (see [`MemoryBudget`]).
    pub memory_budget_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_image_bytes: 2 << 30,
            max_layers: 127,
            max_entries_per_layer: 500_000,
            max_file_bytes: 64 << 20,
            max_total_bytes: 32 << 30,
            max_compression_ratio: 200,
            max_path_len: 4096,
            max_path_depth: 256,
            max_manifest_bytes: 4 << 20,
            memory_budget_bytes: 256 << 20,
        }
    }
}

/// The memory one scan may spend on the files its detectors read: every kept file's
/// contents are charged before they are read (at most `max_file_bytes` each), and a
/// file that would take the scan past the budget ends it with
/// [`ImageError::OverMemoryBudget`] naming that file. Clones share one account, so
/// the layers of one image (read, or taken from a cache) draw on the same budget.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    account: Arc<Account>,
}

#[derive(Debug)]
struct Account {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none spent.
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            account: Arc::new(Account {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// The budget `limits` configure.
    pub fn from_limits(limits: &Limits) -> MemoryBudget {
        MemoryBudget::new(limits.memory_budget_bytes)
    }

    pub fn limit(&self) -> u64 {
        self.account.limit
    }

    /// Bytes charged and not yet released.
    pub fn used(&self) -> u64 {
        self.account.used.load(Ordering::SeqCst)
    }

    /// Charges `bytes` for the file at `path` in `place` (`layer sha256:…`), or
    /// refuses without charging anything when they do not fit.
    pub fn charge(&self, bytes: u64, path: &str, place: &str) -> Result<(), ImageError> {
        let limit = self.account.limit;
        let result = self
            .account
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            });
        match result {
            Ok(_) => Ok(()),
            Err(used) => Err(ImageError::OverMemoryBudget {
                path: crate::layer::shorten(path),
                place: place.to_owned(),
                bytes,
                used,
                limit,
            }),
        }
    }

    /// Sets the bytes held to `held`: after a layer is applied, what the view still
    /// holds (a file a later layer replaced or whited out is no longer held).
    pub fn settle(&self, held: u64) {
        self.account.used.store(held, Ordering::SeqCst);
    }

    /// Gives back `bytes` charged earlier (a file shorter than its header said, or
    /// one dropped).
    pub fn release(&self, bytes: u64) {
        let _ = self
            .account
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// Bytes of file contents `view` holds, earlier versions included: what a
/// [`MemoryBudget`] is settled to after each layer.
pub fn view_bytes(view: &crscan_model::FileView) -> u64 {
    view.files()
        .map(|file| {
            file.contents.len() as u64
                + file
                    .history
                    .iter()
                    .map(|version| version.contents.len() as u64)
                    .sum::<u64>()
        })
        .sum()
}

/// Bytes of file contents a layer read but not yet applied holds.
pub fn layer_bytes(contents: &crate::LayerContents) -> u64 {
    contents
        .files
        .iter()
        .map(|file| file.contents.len() as u64)
        .sum()
}

/// Decompressed size below which the ratio check stays quiet: small, very
/// compressible layers (sparse files, text) are normal.
const RATIO_FLOOR: u64 = 16 << 20;

/// How many compressed bytes accumulate before progress hears about them.
const PROGRESS_STEP: u64 = 1 << 20;

/// Byte counts shared by all layers of one image.
#[derive(Debug, Default)]
pub(crate) struct ImageTotals {
    pub compressed: Cell<u64>,
    pub decompressed: Cell<u64>,
}

/// The counters, digest state and tripped limit of one layer being read.
pub(crate) struct LayerMeter<'a> {
    pub digest: &'a Digest,
    limits: &'a Limits,
    totals: &'a ImageTotals,
    progress: &'a dyn Progress,
    compressed: Cell<u64>,
    decompressed: Cell<u64>,
    unreported: Cell<u64>,
    /// Whether the decompressed stream reached its end.
    ended: Cell<bool>,
    /// Whether the compressed bytes are hashed (to verify the blob digest).
    hash_blob: bool,
    hasher: RefCell<Sha256>,
    /// Whether the decompressed bytes are hashed separately (they are the blob's
    /// own bytes for an uncompressed layer whose blob is hashed anyway).
    hash_plain: Cell<bool>,
    plain_hasher: RefCell<Sha256>,
    tripped: RefCell<Option<ImageError>>,
}

impl<'a> LayerMeter<'a> {
    pub fn new(
        digest: &'a Digest,
        limits: &'a Limits,
        totals: &'a ImageTotals,
        progress: &'a dyn Progress,
        hash_blob: bool,
    ) -> LayerMeter<'a> {
        LayerMeter {
            digest,
            limits,
            totals,
            progress,
            compressed: Cell::new(0),
            decompressed: Cell::new(0),
            unreported: Cell::new(0),
            ended: Cell::new(false),
            hash_blob,
            hasher: RefCell::new(Sha256::new()),
            hash_plain: Cell::new(true),
            plain_hasher: RefCell::new(Sha256::new()),
            tripped: RefCell::new(None),
        }
    }

    /// Records `error` unless an earlier one is already recorded, and returns the
    /// I/O error a reader hands up.
    pub fn trip(&self, error: ImageError) -> io::Error {
        let message = error.to_string();
        let mut slot = self.tripped.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        io::Error::other(message)
    }

    pub fn take_tripped(&self) -> Option<ImageError> {
        self.tripped.borrow_mut().take()
    }

    pub fn has_tripped(&self) -> bool {
        self.tripped.borrow().is_some()
    }

    fn on_compressed(&self, bytes: &[u8]) -> io::Result<()> {
        let count = bytes.len() as u64;
        if self.hash_blob {
            self.hasher.borrow_mut().update(bytes);
        }
        self.compressed
            .set(self.compressed.get().saturating_add(count));
        let image_total = self.totals.compressed.get().saturating_add(count);
        self.totals.compressed.set(image_total);
        let unreported = self.unreported.get() + count;
        if unreported >= PROGRESS_STEP {
            self.progress.bytes_read(unreported);
            self.unreported.set(0);
        } else {
            self.unreported.set(unreported);
        }
        if image_total > self.limits.max_image_bytes {
            return Err(self.trip(ImageError::ImageTooLarge {
                limit: self.limits.max_image_bytes,
            }));
        }
        Ok(())
    }

    fn on_decompressed(&self, bytes: &[u8]) -> io::Result<()> {
        let count = bytes.len() as u64;
        if self.hash_plain.get() {
            self.plain_hasher.borrow_mut().update(bytes);
        }
        let layer_total = self.decompressed.get().saturating_add(count);
        self.decompressed.set(layer_total);
        let image_total = self.totals.decompressed.get().saturating_add(count);
        self.totals.decompressed.set(image_total);
        if image_total > self.limits.max_total_bytes {
            return Err(self.trip(ImageError::TooManyBytes {
                place: format!("layer {}", self.digest),
                limit: self.limits.max_total_bytes,
            }));
        }
        let ratio = self.limits.max_compression_ratio;
        let compressed = self.compressed.get().max(1);
        if ratio > 0 && layer_total > RATIO_FLOOR && layer_total / compressed >= ratio {
            return Err(self.trip(ImageError::CompressionRatio {
                digest: self.digest.clone(),
                expanded: layer_total,
                compressed,
                ratio,
            }));
        }
        Ok(())
    }

    /// Decompressed bytes of this layer read so far.
    pub fn decompressed(&self) -> u64 {
        self.decompressed.get()
    }

    /// Whether the decompressed stream has ended.
    pub fn ended(&self) -> bool {
        self.ended.get()
    }

    /// Tells progress about bytes not yet reported.
    pub fn flush_progress(&self) {
        let unreported = self.unreported.replace(0);
        if unreported > 0 {
            self.progress.bytes_read(unreported);
        }
    }

    /// Tells the meter that the layer is an uncompressed tar: its diff ID is then the
    /// blob's own hash when the blob is hashed anyway, so it is not taken twice.
    pub fn plain_layer(&self) {
        if self.hash_blob {
            self.hash_plain.set(false);
        }
    }

    /// The SHA-256 of the compressed bytes read so far (only when the meter was made
    /// to hash them).
    pub fn blob_digest(&self) -> Digest {
        let hash = self.hasher.borrow().clone().finalize();
        Digest::from_bytes(DigestAlgorithm::Sha256, &hash)
    }

    /// The SHA-256 of the decompressed bytes read so far: the layer's diff ID once
    /// the stream has been read to its end.
    pub fn diff_id(&self) -> Digest {
        if !self.hash_plain.get() {
            return self.blob_digest();
        }
        let hash = self.plain_hasher.borrow().clone().finalize();
        Digest::from_bytes(DigestAlgorithm::Sha256, &hash)
    }
}

/// Counts and hashes the raw (compressed) bytes of a layer blob.
pub(crate) struct CompressedCounter<'m, R> {
    pub inner: R,
    pub meter: &'m LayerMeter<'m>,
}

impl<R: Read> Read for CompressedCounter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.has_tripped() {
            return Err(io::Error::other("a limit was crossed"));
        }
        match self.inner.read(buf) {
            Ok(count) => {
                self.meter.on_compressed(&buf[..count])?;
                Ok(count)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => Err(self.meter.trip(ImageError::BadLayer {
                digest: self.meter.digest.clone(),
                detail: format!("reading the blob failed: {error}"),
            })),
        }
    }
}

/// Counts the decompressed bytes of a layer and classifies decoder failures.
pub(crate) struct DecompressedCounter<'m, R> {
    pub inner: R,
    pub meter: &'m LayerMeter<'m>,
}

impl<R: Read> Read for DecompressedCounter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.has_tripped() {
            return Err(io::Error::other("a limit was crossed"));
        }
        match self.inner.read(buf) {
            Ok(count) => {
                if count == 0 && !buf.is_empty() {
                    self.meter.ended.set(true);
                }
                self.meter.on_decompressed(&buf[..count])?;
                Ok(count)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let digest = self.meter.digest.clone();
                let detail = error.to_string();
                Err(self
                    .meter
                    .trip(if error.kind() == io::ErrorKind::UnexpectedEof {
                        ImageError::TruncatedLayer { digest, detail }
                    } else {
                        ImageError::Decompress { digest, detail }
                    }))
            }
        }
    }
}
