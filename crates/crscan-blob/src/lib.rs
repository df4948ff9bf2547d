//! Content-addressed blob storage with digest verification, behind one interface
//! ([`BlobStore`]) with two backends:
//!
//! - the filesystem (`file://PATH`, the default `<data-dir>/blobs`, module `file`):
//!   blobs at `<data>/blobs/<algorithm>/<first two hex>/<hex>`, written to a temporary
//!   name, hashed, compared, `fsync`ed and renamed into place; upload sessions are
//!   directories `<data>/uploads/<uuid>/`;
//! - S3-compatible object storage (`s3://BUCKET[/PREFIX]`, module `s3`, through
//!   `object_store`): blobs at `PREFIX/blobs/<algorithm>/<hex>`; an upload session is
//!   `PREFIX/uploads/<uuid>/info.json` plus one object per accepted chunk, named by
//!   the offset it starts at, so any node sharing the bucket can continue it. A
//!   finished upload is read back in order, hashed, and written to its digest key as
//!   a multipart upload that is completed only when the hash matches (aborted
//!   otherwise), so no blob is ever visible under a digest it does not have.
//!
//! [`BlobStore`] is a struct over a private enum of the two backends rather than a
//! trait object: the set is closed, callers keep one concrete type (`Arc<BlobStore>`),
//! the async methods need no boxing, and the checks both backends share (digests,
//! ranges, chunk lengths) live once here. The conformance tests in
//! `tests/conformance.rs` run the same cases against both backends (S3 on a real
//! Garage).
//!
//! Architecture invariant: this crate knows digests and bytes only. It does not know
//! manifests, tags or repositories; the owner string of an upload is opaque to it.

mod file;
mod s3;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crscan_model::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub use s3::S3Settings;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} is not stored")]
    NotFound(Digest),
    #[error("upload session {0:?} does not exist")]
    UploadNotFound(String),
    #[error("content digest {actual} does not match the expected digest {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("chunk starts at byte {given} but the upload has {expected} bytes")]
    BadOffset { expected: u64, given: u64 },
    #[error("range {start}-{end} is outside blob of {size} bytes")]
    BadRange { start: u64, end: u64, size: u64 },
    /// A chunk whose body is longer or shorter than the range it declared; nothing of
    /// it was kept.
    #[error(
        "chunk body has {received} bytes where its range declares {declared}; the upload stays at {offset} bytes"
    )]
    ChunkLength {
        declared: u64,
        received: u64,
        offset: u64,
    },
    #[error("blob store I/O failed on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The object storage could not be reached or refused the request; retrying later
    /// may succeed. Nothing was made visible by the failed operation.
    #[error("object storage is unavailable while {action} {key}: {message}")]
    Unavailable {
        action: &'static str,
        key: String,
        message: String,
    },
    /// An object name with an empty, `.`/`..` or non-ASCII segment, or in the blob area.
    #[error(
        "object name {0:?} is not /-separated segments of letters, digits, '.', '_' and '-' outside blobs/, marks/ and uploads/"
    )]
    BadObjectName(String),
    /// A `--blobs` location that is neither `file://PATH` nor `s3://BUCKET[/PREFIX]`.
    #[error("blob location {0:?} is neither file://PATH nor s3://BUCKET[/PREFIX]")]
    BadLocation(String),
    /// The S3 client could not be configured (missing region, bad endpoint).
    #[error("cannot configure the S3 client for bucket {bucket}: {message}")]
    S3Config { bucket: String, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A hash being computed incrementally.
#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(hasher) => hasher.update(bytes),
            Hasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(hasher) => {
                Digest::from_bytes(DigestAlgorithm::Sha256, &hasher.finalize())
            }
            Hasher::Sha512(hasher) => {
                Digest::from_bytes(DigestAlgorithm::Sha512, &hasher.finalize())
            }
        }
    }
}

/// Computes the digest of `bytes` with `algorithm`.
pub fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(bytes);
    hasher.finish()
}

/// One stored blob, as listed for garbage collection.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    pub modified: SystemTime,
}

/// A named object, as listed.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The full name, `/`-separated.
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// Refuses names that could leave the object area or collide with blob keys.
fn check_object_name(name: &str) -> Result<(), BlobError> {
    let valid_segment = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let first = name.split('/').next().unwrap_or_default();
    if !name.split('/').all(valid_segment) || matches!(first, "blobs" | "marks" | "uploads") {
        return Err(BlobError::BadObjectName(name.to_owned()));
    }
    Ok(())
}

/// The state of an upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub owner: String,
    /// Bytes received so far.
    pub size: u64,
    pub started: SystemTime,
}

/// Where blobs are kept: `file://PATH` or `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A data directory; blobs under `PATH/blobs`, uploads under `PATH/uploads`.
    File(PathBuf),
    /// A bucket and a key prefix (empty for the bucket's root).
    S3 { bucket: String, prefix: String },
}

impl BlobLocation {
    /// The default location of a data directory.
    pub fn default_for(data_dir: &Path) -> BlobLocation {
        BlobLocation::File(data_dir.to_owned())
    }
}

impl std::str::FromStr for BlobLocation {
    type Err = BlobError;

    /// Parses `file://PATH` (PATH the data directory holding `blobs/` and `uploads/`;
    /// a trailing `/blobs` is taken as naming that directory) or
    /// `s3://BUCKET[/PREFIX]`.
    fn from_str(text: &str) -> Result<BlobLocation, BlobError> {
        let bad = || BlobError::BadLocation(text.to_owned());
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad());
            }
            let path = Path::new(path);
            let root = match path.file_name() {
                Some(name) if name == "blobs" => path.parent().unwrap_or(path),
                _ => path,
            };
            return Ok(BlobLocation::File(root.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            let valid_bucket = !bucket.is_empty()
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket || prefix.split('/').any(|part| part == "." || part == "..") {
                return Err(bad());
            }
            return Ok(BlobLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        Err(bad())
    }
}

impl std::fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobLocation::File(path) => write!(f, "file://{}", path.join("blobs").display()),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

enum Backend {
    File(file::FileBlobs),
    S3(s3::S3Blobs),
}

/// The blob store: one interface over the filesystem and S3 backends.
pub struct BlobStore {
    backend: Backend,
    location: BlobLocation,
}

impl BlobStore {
    /// Opens (and creates when missing) the filesystem blob store under `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<BlobStore, BlobError> {
        Ok(BlobStore {
            backend: Backend::File(file::FileBlobs::open(data_dir).await?),
            location: BlobLocation::default_for(data_dir),
        })
    }

    /// Opens the blob store at `location`; an S3 location is configured from
    /// `settings` (credentials, region, endpoint).
    pub async fn open_location(
        location: &BlobLocation,
        settings: &S3Settings,
    ) -> Result<BlobStore, BlobError> {
        match location {
            BlobLocation::File(data_dir) => BlobStore::open(data_dir).await,
            BlobLocation::S3 { bucket, prefix } => Ok(BlobStore {
                backend: Backend::S3(s3::S3Blobs::open(bucket, prefix, settings)?),
                location: location.clone(),
            }),
        }
    }

    /// Where the blobs are.
    pub fn location(&self) -> &BlobLocation {
        &self.location
    }

    /// The file holding the blob with `digest` on the filesystem backend; `None` on S3.
    pub fn local_path(&self, digest: &Digest) -> Option<PathBuf> {
        match &self.backend {
            Backend::File(store) => Some(store.blob_path(digest)),
            Backend::S3(_) => None,
        }
    }

    /// The size of a stored blob, or `None` when it is absent.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match &self.backend {
            Backend::File(store) => store.stat(digest).await,
            Backend::S3(store) => store.stat(digest).await,
        }
    }

    /// Marks a blob as just used and returns its size, or `None` when it is absent. A
    /// manifest push calls this on every blob it references, so garbage collection's
    /// grace period protects them.
    pub async fn touch(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match &self.backend {
            Backend::File(store) => store.touch(digest).await,
            Backend::S3(store) => store.touch(digest).await,
        }
    }

    /// When the blob was last written or touched; `None` when it is absent.
    pub async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>, BlobError> {
        match &self.backend {
            Backend::File(store) => match tokio::fs::metadata(store.blob_path(digest)).await {
                Ok(meta) => Ok(meta.modified().ok()),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(io_error(&store.blob_path(digest))(error)),
            },
            Backend::S3(store) => store.modified(digest).await,
        }
    }

    /// Removes what interrupted writes left behind, when older than `age`; returns how
    /// many were removed. On S3 an interrupted write is an unfinished multipart upload,
    /// which the bucket's own lifecycle expires: nothing to do here.
    pub async fn remove_stale_temporaries(&self, age: Duration) -> Result<usize, BlobError> {
        match &self.backend {
            Backend::File(store) => store.remove_stale_temporaries(age).await,
            Backend::S3(_) => Ok(0),
        }
    }

    /// Reads a whole blob into memory; meant for manifests, which are small.
    pub async fn read_all(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        match &self.backend {
            Backend::File(store) => store.read_all(digest).await,
            Backend::S3(store) => store.read_all(digest).await,
        }
    }

    /// Opens a blob for reading the inclusive byte range `start..=end` (the whole blob when
    /// `range` is `None`; an `end` of `None` means "to the end").
    pub async fn open_read(
        &self,
        digest: &Digest,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<BlobRead, BlobError> {
        match &self.backend {
            Backend::File(store) => store.open_read(digest, range).await,
            Backend::S3(store) => store.open_read(digest, range).await,
        }
    }

    /// Opens a whole blob for a blocking reader (the scanner's layer loop runs on a
    /// blocking thread); returns the reader and the blob's size. Must not be called
    /// on an async worker thread.
    pub fn open_blocking(&self, digest: &Digest) -> io::Result<(Box<dyn io::Read + Send>, u64)> {
        match &self.backend {
            Backend::File(store) => {
                let file = std::fs::File::open(store.blob_path(digest))?;
                let size = file.metadata()?.len();
                Ok((Box::new(file), size))
            }
            Backend::S3(store) => {
                let handle = store.runtime();
                let read = handle
                    .block_on(store.open_read(digest, None))
                    .map_err(into_io)?;
                let size = read.total;
                Ok((
                    Box::new(BlockingRead {
                        read,
                        handle,
                        pending: Vec::new(),
                        at: 0,
                    }),
                    size,
                ))
            }
        }
    }

    /// A presigned `GET` URL for the blob, valid for `expires`, on S3; `None` on the
    /// filesystem backend.
    pub async fn presigned_url(
        &self,
        digest: &Digest,
        expires: Duration,
    ) -> Result<Option<String>, BlobError> {
        match &self.backend {
            Backend::File(_) => Ok(None),
            Backend::S3(store) => store.presigned_url(digest, expires).await.map(Some),
        }
    }

    /// Stores `bytes` under `expected` after checking that they hash to it.
    pub async fn put_bytes(&self, expected: &Digest, bytes: &[u8]) -> Result<(), BlobError> {
        let actual = digest_of(expected.algorithm(), bytes);
        if &actual != expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        match &self.backend {
            Backend::File(store) => store.put_bytes(expected, bytes).await,
            Backend::S3(store) => store.put_bytes(expected, bytes).await,
        }
    }

    /// Stores the file at `path` under `expected`, streaming it: it becomes visible
    /// only after its bytes hashed to `expected`. Returns its size.
    pub async fn put_file(&self, expected: &Digest, path: &Path) -> Result<u64, BlobError> {
        let id = self.create_upload("put-file").await?;
        let result = async {
            let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
            let mut append = self.append(&id, Some(0)).await?;
            let mut buffer = vec![0; 1 << 20];
            loop {
                let read = file.read(&mut buffer).await.map_err(io_error(path))?;
                if read == 0 {
                    break;
                }
                append.write(&buffer[..read]).await?;
            }
            append.finish().await?;
            self.finish_upload(&id, expected).await
        }
        .await;
        if result.is_err() {
            let _ = self.cancel_upload(&id).await;
        }
        result
    }

    /// Deletes a blob; `false` when it was not there.
    pub async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        match &self.backend {
            Backend::File(store) => store.delete(digest).await,
            Backend::S3(store) => store.delete(digest).await,
        }
    }

    /// Lists every stored blob (for garbage collection).
    pub async fn list(&self) -> Result<Vec<StoredBlob>, BlobError> {
        match &self.backend {
            Backend::File(store) => store.list().await,
            Backend::S3(store) => store.list().await,
        }
    }

    /// Whether named objects are shared with every node using this location (S3);
    /// on the filesystem they are this node's own.
    pub fn shares_objects(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// A named object (`cache/…`, not a blob): its bytes, or `None` when absent. Names
    /// are `/`-separated segments of letters, digits, `.`, `_` and `-`.
    pub async fn get_object(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_object_name(name)?;
        match &self.backend {
            Backend::File(store) => store.get_object(name).await,
            Backend::S3(store) => store.get_object(name).await,
        }
    }

    /// Writes a named object whole (readers see the old or the new bytes).
    pub async fn put_object(&self, name: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        check_object_name(name)?;
        match &self.backend {
            Backend::File(store) => store.put_object(name, bytes).await,
            Backend::S3(store) => store.put_object(name, bytes).await,
        }
    }

    /// Deletes a named object; `false` when it was not there.
    pub async fn delete_object(&self, name: &str) -> Result<bool, BlobError> {
        check_object_name(name)?;
        match &self.backend {
            Backend::File(store) => store.delete_object(name).await,
            Backend::S3(store) => store.delete_object(name).await,
        }
    }

    /// The named objects under `prefix` (a name prefix ending in `/`).
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, BlobError> {
        check_object_name(prefix.trim_end_matches('/'))?;
        match &self.backend {
            Backend::File(store) => store.list_objects(prefix).await,
            Backend::S3(store) => store.list_objects(prefix).await,
        }
    }

    /// Starts an upload session owned by `owner` and returns its id.
    pub async fn create_upload(&self, owner: &str) -> Result<String, BlobError> {
        match &self.backend {
            Backend::File(store) => store.create_upload(owner).await,
            Backend::S3(store) => store.create_upload(owner).await,
        }
    }

    /// The status of an upload session.
    pub async fn upload_status(&self, id: &str) -> Result<UploadStatus, BlobError> {
        match &self.backend {
            Backend::File(store) => store.upload_status(id).await,
            Backend::S3(store) => store.upload_status(id).await,
        }
    }

    /// Opens an upload for appending. When `offset` is given it must equal the bytes
    /// received so far (the OCI chunked-upload rule); otherwise `BadOffset`.
    pub async fn append(&self, id: &str, offset: Option<u64>) -> Result<UploadAppend, BlobError> {
        let inner = match &self.backend {
            Backend::File(store) => AppendInner::File(Box::new(store.append(id, offset).await?)),
            Backend::S3(store) => AppendInner::S3(store.append(id, offset).await?),
        };
        Ok(UploadAppend { inner })
    }

    /// Finishes an upload: checks the bytes against `expected` and makes them the
    /// blob. The session is removed on success, and on a digest mismatch too (the
    /// bytes can never become that blob). Returns the blob's size.
    pub async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        match &self.backend {
            Backend::File(store) => store.finish_upload(id, expected).await,
            Backend::S3(store) => store.finish_upload(id, expected).await,
        }
    }

    /// Cancels an upload session and deletes what it received.
    pub async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        match &self.backend {
            Backend::File(store) => store.cancel_upload(id).await,
            Backend::S3(store) => store.cancel_upload(id).await,
        }
    }

    /// Lists the upload sessions, with their start times.
    pub async fn list_uploads(&self) -> Result<Vec<UploadStatus>, BlobError> {
        match &self.backend {
            Backend::File(store) => store.list_uploads().await,
            Backend::S3(store) => store.list_uploads().await,
        }
    }
}

enum AppendInner {
    // Boxed: its write buffer makes it much larger than the S3 variant.
    File(Box<file::FileAppend>),
    S3(s3::S3Append),
}

/// An open append to an upload session.
///
/// With [`UploadAppend::expect_length`] the append is one chunk of a declared length:
/// a body that runs past it or ends short of it is cut back off the upload, so the
/// session is left exactly as it was before the chunk (the OCI chunked-upload rule
/// that a chunk matches its `Content-Range`).
pub struct UploadAppend {
    inner: AppendInner,
}

impl UploadAppend {
    /// Declares that this append is one chunk of exactly `length` bytes.
    pub fn expect_length(&mut self, length: u64) {
        match &mut self.inner {
            AppendInner::File(append) => append.expect_length(length),
            AppendInner::S3(append) => append.expect_length(length),
        }
    }

    /// Appends bytes; past the declared length the chunk is cut back and refused.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        match &mut self.inner {
            AppendInner::File(append) => append.write(bytes).await,
            AppendInner::S3(append) => append.write(bytes).await,
        }
    }

    /// Makes what was written durable and returns the upload's new size; a chunk
    /// shorter than its declared length is cut back and refused.
    pub async fn finish(self) -> Result<u64, BlobError> {
        match self.inner {
            AppendInner::File(append) => append.finish().await,
            AppendInner::S3(append) => append.finish().await,
        }
    }

    /// Drops this append's bytes, leaving the upload as it was before it (used when
    /// the body of a declared chunk cannot be read to its end).
    pub async fn discard(self) -> Result<u64, BlobError> {
        match self.inner {
            AppendInner::File(append) => append.discard().await,
            AppendInner::S3(append) => append.discard().await,
        }
    }

    /// Bytes in the upload so far, including this append's.
    pub fn offset(&self) -> u64 {
        match &self.inner {
            AppendInner::File(append) => append.offset(),
            AppendInner::S3(append) => append.offset(),
        }
    }
}

const READ_CHUNK: usize = 256 * 1024;

enum ReadSource {
    File(tokio::fs::File),
    S3(s3::S3Read),
}

/// A blob opened for a (possibly partial) read.
pub struct BlobRead {
    source: ReadSource,
    /// First byte of the range.
    pub start: u64,
    /// Bytes in the range.
    pub length: u64,
    /// Size of the whole blob.
    pub total: u64,
    remaining: u64,
}

impl BlobRead {
    fn from_file(file: tokio::fs::File, start: u64, length: u64, total: u64) -> BlobRead {
        BlobRead {
            source: ReadSource::File(file),
            start,
            length,
            total,
            remaining: length,
        }
    }

    fn from_s3(read: s3::S3Read, start: u64, length: u64, total: u64) -> BlobRead {
        BlobRead {
            source: ReadSource::S3(read),
            start,
            length,
            total,
            remaining: length,
        }
    }

    /// Narrows a read of the whole blob to the inclusive byte range `start..=end`,
    /// which the caller has checked lies inside the blob.
    pub async fn restrict(&mut self, start: u64, end: u64) -> Result<(), BlobError> {
        if start > end || end >= self.total || self.start != 0 || self.remaining != self.total {
            return Err(BlobError::BadRange {
                start,
                end,
                size: self.total,
            });
        }
        match &mut self.source {
            ReadSource::File(file) => {
                if start > 0 {
                    file.seek(io::SeekFrom::Start(start))
                        .await
                        .map_err(|source| BlobError::Io {
                            path: PathBuf::from("blob"),
                            source,
                        })?;
                }
            }
            // Nothing was requested yet: the ranged GET starts at the first read.
            ReadSource::S3(_) => {}
        }
        self.start = start;
        self.length = end - start + 1;
        self.remaining = self.length;
        Ok(())
    }

    /// Reads the next chunk of the range; an empty vector at the end.
    pub async fn next_chunk(&mut self) -> io::Result<Vec<u8>> {
        if self.remaining == 0 {
            return Ok(Vec::new());
        }
        let mut buffer = match &mut self.source {
            ReadSource::File(file) => {
                let want =
                    usize::try_from(self.remaining.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
                let mut buffer = vec![0; want];
                let read = file.read(&mut buffer).await?;
                buffer.truncate(read);
                buffer
            }
            ReadSource::S3(read) => read.next(self.start, self.length).await?,
        };
        if buffer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob shorter than its recorded size",
            ));
        }
        if buffer.len() as u64 > self.remaining {
            buffer.truncate(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        }
        self.remaining -= buffer.len() as u64;
        Ok(buffer)
    }
}

/// A [`BlobRead`] as a blocking reader, driven on the runtime it was opened from.
struct BlockingRead {
    read: BlobRead,
    handle: tokio::runtime::Handle,
    pending: Vec<u8>,
    at: usize,
}

impl io::Read for BlockingRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            self.pending = self.handle.block_on(self.read.next_chunk())?;
            self.at = 0;
            if self.pending.is_empty() {
                return Ok(0);
            }
        }
        let count = out.len().min(self.pending.len() - self.at);
        out[..count].copy_from_slice(&self.pending[self.at..self.at + count]);
        self.at += count;
        Ok(count)
    }
}

fn into_io(error: BlobError) -> io::Error {
    match error {
        BlobError::NotFound(_) => io::Error::new(io::ErrorKind::NotFound, error.to_string()),
        BlobError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}
