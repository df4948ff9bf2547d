//! The filesystem backend: blobs at `<data>/blobs/<algorithm>/<first two hex>/<hex>`,
//! uploads in `<data>/uploads/<uuid>/`.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crscan_model::{Digest, DigestAlgorithm};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{
    BlobError, BlobRead, Hasher, StoredBlob, StoredObject, UploadStatus, digest_of, io_error,
};

/// In-memory state of an upload that is being written: the offset and the running
/// SHA-256 of the bytes so far. Missing after a restart; rebuilt from disk on demand.
struct Session {
    offset: u64,
    hasher: Option<(u64, Hasher)>,
}

/// The filesystem backend.
pub(crate) struct FileBlobs {
    root: PathBuf,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct UploadInfo {
    owner: String,
}

impl FileBlobs {
    fn object_path(&self, name: &str) -> PathBuf {
        self.root.join("objects").join(name)
    }

    pub(crate) async fn get_object(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.object_path(name);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    pub(crate) async fn put_object(&self, name: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let path = self.object_path(name);
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error(&dir))?;
        let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let result = async {
            tokio::fs::write(&temp, bytes)
                .await
                .map_err(io_error(&temp))?;
            tokio::fs::rename(&temp, &path)
                .await
                .map_err(io_error(&path))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    pub(crate) async fn delete_object(&self, name: &str) -> Result<bool, BlobError> {
        let path = self.object_path(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    pub(crate) async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, BlobError> {
        let base = self.root.join("objects");
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut pending = vec![base.clone()];
            while let Some(dir) = pending.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        pending.push(path);
                        continue;
                    }
                    let Ok(relative) = path.strip_prefix(&base) else {
                        continue;
                    };
                    let name = relative.to_string_lossy().replace('\\', "/");
                    if name.starts_with(&prefix) && !name.contains("/.tmp-") {
                        found.push(StoredObject {
                            name,
                            size: meta.len(),
                            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        });
                    }
                }
            }
            found
        })
        .await
        .map_err(|error| BlobError::Io {
            path: PathBuf::from("objects"),
            source: io::Error::other(error),
        })
    }

    /// Opens (and creates when missing) the blob store under `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<FileBlobs, BlobError> {
        for sub in ["blobs", "uploads"] {
            let path = data_dir.join(sub);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(io_error(&path))?;
        }
        Ok(FileBlobs {
            root: data_dir.to_owned(),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_dir(&self, id: &str) -> Result<PathBuf, BlobError> {
        // Upload ids are UUIDs we generated; anything else cannot name a session.
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(BlobError::UploadNotFound(id.to_owned()));
        }
        Ok(self.root.join("uploads").join(id))
    }

    /// The size of a stored blob, or `None` when it is absent.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        let path = self.blob_path(digest);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// Marks a blob as just used (sets its modification time to now) and returns its
    /// size, or `None` when it is absent. A manifest push calls this on every blob it
    /// references, so garbage collection's grace period protects them.
    pub async fn touch(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        let path = self.blob_path(digest);
        tokio::task::spawn_blocking(move || {
            let file = match std::fs::OpenOptions::new().append(true).open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(io_error(&path)(error)),
            };
            file.set_modified(SystemTime::now())
                .map_err(io_error(&path))?;
            let size = file.metadata().map_err(io_error(&path))?.len();
            Ok(Some(size))
        })
        .await
        .map_err(|error| BlobError::Io {
            path: PathBuf::from("blobs"),
            source: io::Error::other(error),
        })?
    }

    /// Removes temporary files (`.tmp-*`) that interrupted writes left in the blob
    /// directories, when older than `age`. Returns how many were removed.
    pub async fn remove_stale_temporaries(
        &self,
        age: std::time::Duration,
    ) -> Result<usize, BlobError> {
        let root = self.root.join("blobs");
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
                let Ok(prefixes) = std::fs::read_dir(root.join(algorithm.name())) else {
                    continue;
                };
                for prefix in prefixes.flatten() {
                    let Ok(entries) = std::fs::read_dir(prefix.path()) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let is_temp = entry.file_name().to_string_lossy().starts_with(".tmp-");
                        let old = entry
                            .metadata()
                            .and_then(|meta| meta.modified())
                            .ok()
                            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                            .is_some_and(|elapsed| elapsed >= age);
                        if is_temp && old && std::fs::remove_file(entry.path()).is_ok() {
                            removed += 1;
                        }
                    }
                }
            }
            removed
        })
        .await
        .map_err(|error| BlobError::Io {
            path: PathBuf::from("blobs"),
            source: io::Error::other(error),
        })
    }

    /// Reads a whole blob into memory; meant for manifests, which are small.
    pub async fn read_all(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let path = self.blob_path(digest);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(digest.clone()))
            }
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// Opens a blob for reading the inclusive byte range `start..=end` (the whole blob when
    /// `range` is `None`; an `end` of `None` means "to the end").
    pub async fn open_read(
        &self,
        digest: &Digest,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<BlobRead, BlobError> {
        let path = self.blob_path(digest);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.clone()));
            }
            Err(error) => return Err(io_error(&path)(error)),
        };
        let size = file.metadata().await.map_err(io_error(&path))?.len();
        let (start, end) = match range {
            None => (0, size.saturating_sub(1)),
            Some((start, end)) => {
                let end = end.unwrap_or(size.saturating_sub(1));
                if start > end || end >= size {
                    return Err(BlobError::BadRange { start, end, size });
                }
                (start, end)
            }
        };
        let length = if size == 0 { 0 } else { end - start + 1 };
        if start > 0 {
            file.seek(io::SeekFrom::Start(start))
                .await
                .map_err(io_error(&path))?;
        }
        Ok(BlobRead::from_file(file, start, length, size))
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
        if self.stat(expected).await?.is_some() {
            return Ok(());
        }
        let target = self.blob_path(expected);
        let dir = target.parent().map(Path::to_owned).unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error(&dir))?;
        let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let result = async {
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(io_error(&temp))?;
            file.write_all(bytes).await.map_err(io_error(&temp))?;
            file.sync_all().await.map_err(io_error(&temp))?;
            tokio::fs::rename(&temp, &target)
                .await
                .map_err(io_error(&target))?;
            sync_dir(&dir).await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    /// Deletes a blob; `false` when it was not there.
    pub async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        let path = self.blob_path(digest);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// Lists every stored blob (for garbage collection). Temporary files are skipped.
    pub async fn list(&self) -> Result<Vec<StoredBlob>, BlobError> {
        let root = self.root.join("blobs");
        tokio::task::spawn_blocking(move || list_blobs(&root))
            .await
            .map_err(|error| BlobError::Io {
                path: PathBuf::from("blobs"),
                source: io::Error::other(error),
            })?
    }

    /// Starts an upload session owned by `owner` and returns its id.
    pub async fn create_upload(&self, owner: &str) -> Result<String, BlobError> {
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.root.join("uploads").join(&id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error(&dir))?;
        let info = serde_json::to_vec(&UploadInfo {
            owner: owner.to_owned(),
        })
        .map_err(|error| io_error(&dir)(io::Error::other(error)))?;
        let info_path = dir.join("info.json");
        tokio::fs::write(&info_path, info)
            .await
            .map_err(io_error(&info_path))?;
        let data = dir.join("data");
        tokio::fs::write(&data, b"")
            .await
            .map_err(io_error(&data))?;
        self.lock_sessions().insert(
            id.clone(),
            Arc::new(tokio::sync::Mutex::new(Session {
                offset: 0,
                hasher: Some((0, Hasher::new(DigestAlgorithm::Sha256))),
            })),
        );
        Ok(id)
    }

    fn lock_sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Session>>>> {
        // A poisoned map only means another request panicked while holding it; the map
        // itself is still consistent because every operation on it is a single call.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The status of an upload session, read from disk.
    pub async fn upload_status(&self, id: &str) -> Result<UploadStatus, BlobError> {
        let dir = self.upload_dir(id)?;
        let info_path = dir.join("info.json");
        let info = match tokio::fs::read(&info_path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::UploadNotFound(id.to_owned()));
            }
            Err(error) => return Err(io_error(&info_path)(error)),
        };
        let info: UploadInfo = serde_json::from_slice(&info)
            .map_err(|error| io_error(&info_path)(io::Error::other(error)))?;
        let data = dir.join("data");
        let meta = tokio::fs::metadata(&data).await.map_err(io_error(&data))?;
        let started = tokio::fs::metadata(&info_path)
            .await
            .and_then(|meta| meta.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(UploadStatus {
            id: id.to_owned(),
            owner: info.owner,
            size: meta.len(),
            started,
        })
    }

    async fn session(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Session>>, BlobError> {
        if let Some(session) = self.lock_sessions().get(id) {
            return Ok(session.clone());
        }
        let status = self.upload_status(id).await?;
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            offset: status.size,
            hasher: None,
        }));
        Ok(self
            .lock_sessions()
            .entry(id.to_owned())
            .or_insert(session)
            .clone())
    }

    /// Opens an upload for appending. When `offset` is given it must equal the bytes
    /// received so far (the OCI chunked-upload rule); otherwise `BadOffset`.
    pub async fn append(&self, id: &str, offset: Option<u64>) -> Result<FileAppend, BlobError> {
        let session = self.session(id).await?;
        let guard = session.lock_owned().await;
        let dir = self.upload_dir(id)?;
        let data = dir.join("data");
        // The file on disk is the truth: a crash may have left more or fewer bytes than
        // the in-memory state remembers.
        let on_disk = match tokio::fs::metadata(&data).await {
            Ok(meta) => meta.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::UploadNotFound(id.to_owned()));
            }
            Err(error) => return Err(io_error(&data)(error)),
        };
        if let Some(given) = offset
            && given != on_disk
        {
            return Err(BlobError::BadOffset {
                expected: on_disk,
                given,
            });
        }
        let mut guard = guard;
        guard.offset = on_disk;
        if !matches!(&guard.hasher, Some((at, _)) if *at == on_disk) {
            guard.hasher = None;
        }
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&data)
            .await
            .map_err(io_error(&data))?;
        Ok(FileAppend {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            path: data,
            start: on_disk,
            declared: None,
            written: 0,
            hasher_at_start: None,
            discarded: false,
            session: guard,
        })
    }

    /// Finishes an upload: checks the bytes against `expected`, flushes them to disk and
    /// moves them to the blob's place. The session is removed on success; on a digest
    /// mismatch the session is removed too (the bytes can never become that blob).
    pub async fn finish_upload(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let session = self.session(id).await?;
        let mut guard = session.lock().await;
        let dir = self.upload_dir(id)?;
        let data = dir.join("data");
        let size = tokio::fs::metadata(&data)
            .await
            .map_err(|_| BlobError::UploadNotFound(id.to_owned()))?
            .len();
        let actual = match guard.hasher.take() {
            Some((at, hasher)) if at == size && expected.algorithm() == DigestAlgorithm::Sha256 => {
                hasher.finish()
            }
            _ => hash_file(&data, expected.algorithm()).await?,
        };
        if &actual != expected {
            drop(guard);
            self.cancel_upload(id).await?;
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let target = self.blob_path(expected);
        if tokio::fs::metadata(&target).await.is_err() {
            let file = tokio::fs::File::open(&data)
                .await
                .map_err(io_error(&data))?;
            file.sync_all().await.map_err(io_error(&data))?;
            let parent = target.parent().map(Path::to_owned).unwrap_or_default();
            tokio::fs::create_dir_all(&parent)
                .await
                .map_err(io_error(&parent))?;
            tokio::fs::rename(&data, &target)
                .await
                .map_err(io_error(&target))?;
            sync_dir(&parent).await?;
        }
        drop(guard);
        self.lock_sessions().remove(id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(size)
    }

    /// Cancels an upload session and deletes what it received.
    pub async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        let dir = self.upload_dir(id)?;
        self.lock_sessions().remove(id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::UploadNotFound(id.to_owned()))
            }
            Err(error) => Err(io_error(&dir)(error)),
        }
    }

    /// Lists the ids of all upload sessions on disk, with their start times.
    pub async fn list_uploads(&self) -> Result<Vec<UploadStatus>, BlobError> {
        let dir = self.root.join("uploads");
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(io_error(&dir))?;
        let mut uploads = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(io_error(&dir))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(status) = self.upload_status(&name).await {
                uploads.push(status);
            }
        }
        Ok(uploads)
    }
}

/// An open append to an upload session; holds the session's lock until finished.
///
/// With [`UploadAppend::expect_length`] the append is one chunk of a declared length:
/// a body that runs past it or ends short of it is cut back off the upload, so the
/// session is left exactly as it was before the chunk (the OCI chunked-upload rule
/// that a chunk matches its `Content-Range`).
pub(crate) struct FileAppend {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
    /// The upload's size before this append.
    start: u64,
    /// The chunk length the client declared, if it declared one.
    declared: Option<u64>,
    /// Bytes accepted by this append so far.
    written: u64,
    /// The running hash as it was before this append, to restore on a cut-back.
    hasher_at_start: Option<(u64, Hasher)>,
    /// Set once the chunk was cut back; nothing more is written.
    discarded: bool,
    session: tokio::sync::OwnedMutexGuard<Session>,
}

impl FileAppend {
    /// Declares that this append is one chunk of exactly `length` bytes.
    pub fn expect_length(&mut self, length: u64) {
        self.declared = Some(length);
        if self.hasher_at_start.is_none() {
            self.hasher_at_start = self.session.hasher.clone();
        }
    }

    /// Appends bytes; past the declared length the chunk is cut back and refused.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        if self.discarded {
            return Err(self.length_error(self.written));
        }
        let received = self.written + bytes.len() as u64;
        if self.declared.is_some_and(|declared| received > declared) {
            self.cut_back().await?;
            return Err(self.length_error(received));
        }
        self.file
            .write_all(bytes)
            .await
            .map_err(io_error(&self.path))?;
        self.written = received;
        self.session.offset += bytes.len() as u64;
        if let Some((at, hasher)) = &mut self.session.hasher {
            hasher.update(bytes);
            *at += bytes.len() as u64;
        }
        Ok(())
    }

    /// Flushes what was written and returns the upload's new size; a chunk shorter
    /// than its declared length is cut back and refused.
    pub async fn finish(mut self) -> Result<u64, BlobError> {
        if self.discarded
            || self
                .declared
                .is_some_and(|declared| declared != self.written)
        {
            self.cut_back().await?;
            return Err(self.length_error(self.written));
        }
        self.file.flush().await.map_err(io_error(&self.path))?;
        Ok(self.session.offset)
    }

    /// Drops this append's bytes, leaving the upload as it was before it (used when
    /// the body of a declared chunk cannot be read to its end).
    pub async fn discard(mut self) -> Result<u64, BlobError> {
        self.cut_back().await?;
        Ok(self.start)
    }

    /// Bytes in the upload so far, including this append's.
    pub fn offset(&self) -> u64 {
        self.session.offset
    }

    fn length_error(&self, received: u64) -> BlobError {
        BlobError::ChunkLength {
            declared: self.declared.unwrap_or(0),
            received,
            offset: self.start,
        }
    }

    /// Truncates the upload's file back to its size before this append and restores
    /// the running hash. Buffered bytes are never flushed after this.
    async fn cut_back(&mut self) -> Result<(), BlobError> {
        if self.discarded {
            return Ok(());
        }
        self.discarded = true;
        self.file
            .get_mut()
            .set_len(self.start)
            .await
            .map_err(io_error(&self.path))?;
        self.session.offset = self.start;
        self.session.hasher = match self.hasher_at_start.take() {
            Some((at, hasher)) if at == self.start => Some((at, hasher)),
            _ => None,
        };
        Ok(())
    }
}

async fn hash_file(path: &Path, algorithm: DigestAlgorithm) -> Result<Digest, BlobError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer).await.map_err(io_error(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finish())
}

async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    let handle = tokio::fs::File::open(dir).await.map_err(io_error(dir))?;
    handle.sync_all().await.map_err(io_error(dir))
}

fn list_blobs(root: &Path) -> Result<Vec<StoredBlob>, BlobError> {
    let mut blobs = Vec::new();
    for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let algorithm_dir = root.join(algorithm.name());
        let prefixes = match std::fs::read_dir(&algorithm_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io_error(&algorithm_dir)(error)),
        };
        for prefix in prefixes {
            let prefix = prefix.map_err(io_error(&algorithm_dir))?;
            let prefix_path = prefix.path();
            for entry in std::fs::read_dir(&prefix_path).map_err(io_error(&prefix_path))? {
                let entry = entry.map_err(io_error(&prefix_path))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = format!("{}:{name}", algorithm.name()).parse::<Digest>() else {
                    continue;
                };
                let meta = entry.metadata().map_err(io_error(&entry.path()))?;
                blobs.push(StoredBlob {
                    digest,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
    }
    Ok(blobs)
}
