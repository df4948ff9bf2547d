//! The S3 backend, through `object_store` (`aws-base` + `ring` + `reqwest`: no
//! aws-lc-rs in the tree). Keys under the location's prefix:
//!
//! - `blobs/<algorithm>/<hex>`: a blob, written only after its bytes hashed to it;
//! - `marks/<algorithm>/<hex>`: an empty object written when a manifest push uses the
//!   blob (S3 cannot change an object's modification time), so garbage collection's
//!   grace period counts from the later of the two;
//! - `uploads/<uuid>/info.json`: an upload session's owner and start;
//! - `uploads/<uuid>/<offset, 20 digits>`: one accepted chunk, written as a multipart
//!   upload that is completed only when the chunk has its declared length, so a
//!   refused chunk leaves nothing; the session's size is the contiguous run of chunks
//!   from 0, and any node sharing the bucket can append to it or finish it;
//! - `uploads/<uuid>/<offset>.digest`: the first chunk's SHA-256 and size, hashed as
//!   it streamed, so a one-chunk upload finishes with a copy inside the bucket. (The
//!   registry keeps the session in its metadata store too, and holds the session's
//!   write lease there around each chunk, so chunks of one upload never race.)
//!
//! Errors other than "not found" become [`BlobError::Unavailable`] (the API's 503 /
//! `UNAVAILABLE`): the client retries briefly, then gives up rather than hanging a
//! request while the storage is down.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crscan_model::{Digest, DigestAlgorithm};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig, WriteMultipart,
};

use crate::{BlobError, BlobRead, Hasher, StoredBlob, StoredObject, UploadStatus};

/// Where the S3 client gets credentials, region and endpoint; [`S3Settings::from_env`]
/// reads the AWS conventions.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
    /// An endpoint such as `http://127.0.0.1:3900`; path-style addressing is used with it.
    pub endpoint: Option<String>,
}

impl S3Settings {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (else
    /// `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL`.
    pub fn from_env() -> S3Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        S3Settings {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            endpoint: var("AWS_ENDPOINT_URL"),
        }
    }
}

/// Chunks and finished blobs are written in parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Parts of one multipart write in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

pub(crate) struct S3Blobs {
    store: Arc<AmazonS3>,
    prefix: String,
    runtime: tokio::runtime::Handle,
}

fn unavailable(action: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> BlobError {
    let key = key.to_string();
    move |error| BlobError::Unavailable {
        action,
        key,
        message: error.to_string(),
    }
}

fn is_not_found(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. })
}

fn check_upload_id(id: &str) -> Result<(), BlobError> {
    // Upload ids are UUIDs we generated; anything else cannot name a session.
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(BlobError::UploadNotFound(id.to_owned()));
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct UploadInfo {
    owner: String,
    /// Seconds since the Unix epoch.
    started: u64,
}

impl S3Blobs {
    pub(crate) fn open(
        bucket: &str,
        prefix: &str,
        settings: &S3Settings,
    ) -> Result<S3Blobs, BlobError> {
        let config_error = |message: String| BlobError::S3Config {
            bucket: bucket.to_owned(),
            message,
        };
        // object_store's reqwest has TLS without a provider: ring's, as everywhere in
        // crscan (a second install is refused, harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| config_error(format!("no async runtime: {error}")))?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(15 * 60))
                    .with_allow_http(true),
            );
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder
            .build()
            .map_err(|error| config_error(error.to_string()))?;
        Ok(S3Blobs {
            store: Arc::new(store),
            prefix: prefix.to_owned(),
            runtime,
        })
    }

    pub(crate) fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.clone()
    }

    fn key(&self, rest: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rest)
        } else {
            Key::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_key(&self, digest: &Digest) -> Key {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    fn mark_key(&self, digest: &Digest) -> Key {
        self.key(&format!(
            "marks/{}/{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    fn upload_key(&self, id: &str, rest: &str) -> Key {
        self.key(&format!("uploads/{id}/{rest}"))
    }

    async fn head(&self, key: &Key) -> Result<Option<object_store::ObjectMeta>, BlobError> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(unavailable("reading", key)(error)),
        }
    }

    pub(crate) async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        Ok(self
            .head(&self.blob_key(digest))
            .await?
            .map(|meta| meta.size))
    }

    pub(crate) async fn touch(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        let Some(size) = self.stat(digest).await? else {
            return Ok(None);
        };
        let mark = self.mark_key(digest);
        self.store
            .put(&mark, PutPayload::new())
            .await
            .map_err(unavailable("writing", &mark))?;
        Ok(Some(size))
    }

    pub(crate) async fn modified(&self, digest: &Digest) -> Result<Option<SystemTime>, BlobError> {
        let Some(blob) = self.head(&self.blob_key(digest)).await? else {
            return Ok(None);
        };
        let mark = self.head(&self.mark_key(digest)).await?;
        let latest = match mark {
            Some(mark) if mark.last_modified > blob.last_modified => mark.last_modified,
            _ => blob.last_modified,
        };
        Ok(Some(SystemTime::from(latest)))
    }

    pub(crate) async fn read_all(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let key = self.blob_key(digest);
        let result = match self.store.get(&key).await {
            Ok(result) => result,
            Err(error) if is_not_found(&error) => return Err(BlobError::NotFound(digest.clone())),
            Err(error) => return Err(unavailable("reading", &key)(error)),
        };
        let bytes = result.bytes().await.map_err(unavailable("reading", &key))?;
        Ok(bytes.to_vec())
    }

    pub(crate) async fn open_read(
        &self,
        digest: &Digest,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<BlobRead, BlobError> {
        let key = self.blob_key(digest);
        let Some(meta) = self.head(&key).await? else {
            return Err(BlobError::NotFound(digest.clone()));
        };
        let size = meta.size;
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
        Ok(BlobRead::from_s3(
            S3Read {
                store: self.store.clone(),
                key,
                stream: None,
            },
            start,
            length,
            size,
        ))
    }

    pub(crate) async fn presigned_url(
        &self,
        digest: &Digest,
        expires: Duration,
    ) -> Result<String, BlobError> {
        let key = self.blob_key(digest);
        let url = self
            .store
            .signed_url(http::Method::GET, &key, expires)
            .await
            .map_err(unavailable("signing a URL for", &key))?;
        Ok(url.to_string())
    }

    pub(crate) async fn put_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<(), BlobError> {
        if self.stat(digest).await?.is_some() {
            return Ok(());
        }
        // One PUT is atomic: the object is visible whole or not at all.
        let key = self.blob_key(digest);
        self.store
            .put(&key, PutPayload::from(bytes.to_vec()))
            .await
            .map_err(unavailable("writing", &key))?;
        Ok(())
    }

    pub(crate) async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        let key = self.blob_key(digest);
        if self.head(&key).await?.is_none() {
            return Ok(false);
        }
        self.store
            .delete(&key)
            .await
            .map_err(unavailable("deleting", &key))?;
        let mark = self.mark_key(digest);
        match self.store.delete(&mark).await {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(unavailable("deleting", &mark)(error)),
        }
        Ok(true)
    }

    async fn list_prefix(&self, rest: &str) -> Result<Vec<object_store::ObjectMeta>, BlobError> {
        let prefix = self.key(rest);
        let mut listing = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            found.push(meta.map_err(unavailable("listing", &prefix))?);
        }
        Ok(found)
    }

    /// The digest a `blobs/` or `marks/` key names.
    fn digest_of_key(key: &Key) -> Option<Digest> {
        let parts: Vec<_> = key.parts().collect();
        let [.., algorithm, hex] = parts.as_slice() else {
            return None;
        };
        format!("{}:{}", algorithm.as_ref(), hex.as_ref())
            .parse()
            .ok()
    }

    pub(crate) async fn list(&self) -> Result<Vec<StoredBlob>, BlobError> {
        let mut blobs = std::collections::BTreeMap::new();
        for meta in self.list_prefix("blobs").await? {
            if let Some(digest) = Self::digest_of_key(&meta.location) {
                blobs.insert(
                    digest.to_string(),
                    StoredBlob {
                        digest,
                        size: meta.size,
                        modified: SystemTime::from(meta.last_modified),
                    },
                );
            }
        }
        for meta in self.list_prefix("marks").await? {
            if let Some(digest) = Self::digest_of_key(&meta.location)
                && let Some(blob) = blobs.get_mut(&digest.to_string())
            {
                blob.modified = blob.modified.max(SystemTime::from(meta.last_modified));
            }
        }
        Ok(blobs.into_values().collect())
    }

    pub(crate) async fn get_object(&self, name: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let key = self.key(name);
        match self.store.get(&key).await {
            Ok(result) => Ok(Some(
                result
                    .bytes()
                    .await
                    .map_err(unavailable("reading", &key))?
                    .to_vec(),
            )),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(unavailable("reading", &key)(error)),
        }
    }

    pub(crate) async fn put_object(&self, name: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let key = self.key(name);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(unavailable("writing", &key))?;
        Ok(())
    }

    pub(crate) async fn delete_object(&self, name: &str) -> Result<bool, BlobError> {
        let key = self.key(name);
        if self.head(&key).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&key).await {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(unavailable("deleting", &key)(error)),
        }
    }

    pub(crate) async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, BlobError> {
        let base = self.key("");
        let base = base.as_ref().trim_end_matches('/').to_owned();
        let mut found = Vec::new();
        for meta in self.list_prefix(prefix.trim_end_matches('/')).await? {
            let full = meta.location.as_ref();
            let name = if base.is_empty() {
                full.to_owned()
            } else {
                full.strip_prefix(&format!("{base}/"))
                    .unwrap_or(full)
                    .to_owned()
            };
            if name.starts_with(prefix) {
                found.push(StoredObject {
                    name,
                    size: meta.size,
                    modified: SystemTime::from(meta.last_modified),
                });
            }
        }
        Ok(found)
    }

    pub(crate) async fn create_upload(&self, owner: &str) -> Result<String, BlobError> {
        let id = uuid::Uuid::new_v4().to_string();
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let info = serde_json::to_vec(&UploadInfo {
            owner: owner.to_owned(),
            started,
        })
        .map_err(|error| BlobError::Io {
            path: "info.json".into(),
            source: io::Error::other(error),
        })?;
        let key = self.upload_key(&id, "info.json");
        self.store
            .put(&key, PutPayload::from(info))
            .await
            .map_err(unavailable("writing", &key))?;
        Ok(id)
    }

    /// The session's chunks in order, as (offset, size, key), checked to be
    /// contiguous from 0.
    async fn chunks(&self, id: &str) -> Result<Vec<(u64, u64, Key)>, BlobError> {
        let mut chunks = Vec::new();
        for meta in self.list_prefix(&format!("uploads/{id}")).await? {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let Ok(offset) = name.parse::<u64>() else {
                continue;
            };
            chunks.push((offset, meta.size, meta.location));
        }
        chunks.sort_by_key(|(offset, _, _)| *offset);
        // A chunk at an offset already covered (two nodes took the same PATCH) or
        // past a gap is not part of the upload.
        let mut next = 0;
        chunks.retain(|(offset, size, _)| {
            if *offset == next && *size > 0 {
                next += size;
                true
            } else {
                false
            }
        });
        Ok(chunks)
    }

    pub(crate) async fn upload_status(&self, id: &str) -> Result<UploadStatus, BlobError> {
        check_upload_id(id)?;
        let key = self.upload_key(id, "info.json");
        let bytes = match self.store.get(&key).await {
            Ok(result) => result.bytes().await.map_err(unavailable("reading", &key))?,
            Err(error) if is_not_found(&error) => {
                return Err(BlobError::UploadNotFound(id.to_owned()));
            }
            Err(error) => return Err(unavailable("reading", &key)(error)),
        };
        let info: UploadInfo = serde_json::from_slice(&bytes).map_err(|error| BlobError::Io {
            path: key.to_string().into(),
            source: io::Error::other(error),
        })?;
        let size = self.chunks(id).await?.iter().map(|(_, size, _)| size).sum();
        Ok(UploadStatus {
            id: id.to_owned(),
            owner: info.owner,
            size,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(info.started),
        })
    }

    pub(crate) async fn append(
        &self,
        id: &str,
        offset: Option<u64>,
    ) -> Result<S3Append, BlobError> {
        let status = self.upload_status(id).await?;
        if let Some(given) = offset
            && given != status.size
        {
            return Err(BlobError::BadOffset {
                expected: status.size,
                given,
            });
        }
        Ok(S3Append {
            store: self.store.clone(),
            key: self.upload_key(id, &format!("{:020}", status.size)),
            start: status.size,
            declared: None,
            written: 0,
            writer: None,
            discarded: false,
            hasher: (status.size == 0).then(|| Box::new(Hasher::new(DigestAlgorithm::Sha256))),
        })
    }

    pub(crate) async fn finish_upload(
        &self,
        id: &str,
        expected: &Digest,
    ) -> Result<u64, BlobError> {
        self.upload_status(id).await?;
        let chunks = self.chunks(id).await?;
        let size: u64 = chunks.iter().map(|(_, size, _)| size).sum();
        let target = self.blob_key(expected);
        let exists = self.head(&target).await?.is_some();
        if let [(_, chunk_size, chunk)] = chunks.as_slice()
            && expected.algorithm() == DigestAlgorithm::Sha256
            && let Some(actual) = self.recorded_digest(chunk, *chunk_size).await?
        {
            if &actual != expected {
                self.cancel_upload(id).await?;
                return Err(BlobError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
            if !exists {
                self.store
                    .copy(chunk, &target)
                    .await
                    .map_err(unavailable("copying", &target))?;
            }
            let _ = self.cancel_upload(id).await;
            return Ok(size);
        }
        let mut hasher = Hasher::new(expected.algorithm());
        // Small blobs are checked in memory and written with one PUT; large ones
        // stream into a multipart upload that is completed only after the check.
        let mut small = Vec::new();
        let mut writer = if exists || size <= PART_BYTES as u64 {
            None
        } else {
            let upload = self
                .store
                .put_multipart(&target)
                .await
                .map_err(unavailable("writing", &target))?;
            Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES))
        };
        let copied = async {
            for (_, _, key) in &chunks {
                let result = self
                    .store
                    .get(key)
                    .await
                    .map_err(unavailable("reading", key))?;
                let mut stream = result.into_stream();
                while let Some(bytes) = stream.next().await {
                    let bytes = bytes.map_err(unavailable("reading", key))?;
                    hasher.update(&bytes);
                    match &mut writer {
                        Some(writer) => {
                            writer
                                .wait_for_capacity(PARTS_IN_FLIGHT)
                                .await
                                .map_err(unavailable("writing", &target))?;
                            writer.put(bytes);
                        }
                        None if !exists => small.extend_from_slice(&bytes),
                        None => {}
                    }
                }
            }
            Ok::<(), BlobError>(())
        }
        .await;
        if let Err(error) = copied {
            if let Some(writer) = writer {
                let _ = writer.abort().await;
            }
            return Err(error);
        }
        let actual = hasher.finish();
        if &actual != expected {
            if let Some(writer) = writer {
                let _ = writer.abort().await;
            }
            self.cancel_upload(id).await?;
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        match writer {
            Some(writer) => {
                writer
                    .finish()
                    .await
                    .map_err(unavailable("writing", &target))?;
            }
            None if !exists => {
                self.store
                    .put(&target, PutPayload::from(small))
                    .await
                    .map_err(unavailable("writing", &target))?;
            }
            None => {}
        }
        // The blob is in place; a failure to remove the session's objects leaves
        // garbage that GC expires, not a wrong blob.
        let _ = self.cancel_upload(id).await;
        Ok(size)
    }

    /// The digest recorded next to a one-chunk upload's chunk of `size` bytes, when
    /// there is one that describes it.
    async fn recorded_digest(&self, chunk: &Key, size: u64) -> Result<Option<Digest>, BlobError> {
        let key = digest_key(chunk);
        let bytes = match self.store.get(&key).await {
            Ok(result) => result.bytes().await.map_err(unavailable("reading", &key))?,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(unavailable("reading", &key)(error)),
        };
        let text = String::from_utf8_lossy(&bytes);
        let Some((digest, recorded)) = text.split_once(' ') else {
            return Ok(None);
        };
        if recorded.parse::<u64>().ok() != Some(size) {
            return Ok(None);
        }
        Ok(digest.parse::<Digest>().ok())
    }

    pub(crate) async fn cancel_upload(&self, id: &str) -> Result<(), BlobError> {
        check_upload_id(id)?;
        let objects = self.list_prefix(&format!("uploads/{id}")).await?;
        if objects.is_empty() {
            return Err(BlobError::UploadNotFound(id.to_owned()));
        }
        // info.json last, so a half-cancelled session is still listed and retried.
        let info = self.upload_key(id, "info.json");
        let mut keys: Vec<Key> = objects
            .into_iter()
            .map(|meta| meta.location)
            .filter(|key| key != &info)
            .collect();
        keys.push(info);
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(unavailable("deleting", &key)(error)),
            }
        }
        Ok(())
    }

    pub(crate) async fn list_uploads(&self) -> Result<Vec<UploadStatus>, BlobError> {
        let prefix = self.key("uploads");
        let listing = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(unavailable("listing", &prefix))?;
        let mut uploads = Vec::new();
        for dir in listing.common_prefixes {
            let Some(id) = dir.filename() else { continue };
            if let Ok(status) = self.upload_status(id).await {
                uploads.push(status);
            }
        }
        Ok(uploads)
    }
}

/// One chunk being appended to an S3 upload session: a multipart upload of the
/// chunk's object, completed by [`S3Append::finish`] only when the chunk is whole.
pub(crate) struct S3Append {
    store: Arc<AmazonS3>,
    key: Key,
    start: u64,
    declared: Option<u64>,
    written: u64,
    writer: Option<WriteMultipart>,
    discarded: bool,
    /// The first chunk's SHA-256, computed as it streams: recorded next to the chunk
    /// so that finishing a one-chunk upload (what skopeo and docker send) copies the
    /// object in the bucket instead of reading it back to hash it.
    hasher: Option<Box<Hasher>>,
}

/// The key of the digest recorded next to a session's first chunk.
fn digest_key(chunk: &Key) -> Key {
    Key::from(format!("{chunk}.digest"))
}

impl S3Append {
    pub(crate) fn expect_length(&mut self, length: u64) {
        self.declared = Some(length);
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        if self.discarded {
            return Err(self.length_error(self.written));
        }
        let received = self.written + bytes.len() as u64;
        if self.declared.is_some_and(|declared| received > declared) {
            self.cut_back().await;
            return Err(self.length_error(received));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let upload = self
                .store
                .put_multipart(&self.key)
                .await
                .map_err(unavailable("writing", &self.key))?;
            self.writer = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        }
        if let Some(writer) = &mut self.writer {
            if let Err(error) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                self.cut_back().await;
                return Err(unavailable("writing", &self.key)(error));
            }
            writer.write(bytes);
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        self.written = received;
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<u64, BlobError> {
        if self.discarded
            || self
                .declared
                .is_some_and(|declared| declared != self.written)
        {
            self.cut_back().await;
            return Err(self.length_error(self.written));
        }
        if let Some(writer) = self.writer.take() {
            writer
                .finish()
                .await
                .map_err(unavailable("writing", &self.key))?;
            // Written only once the chunk is complete; without it (a failed write
            // here) finishing reads the chunk back, as for several chunks.
            if let Some(hasher) = self.hasher.take() {
                let record = format!("{} {}", (*hasher).finish(), self.written);
                let _ = self
                    .store
                    .put(
                        &digest_key(&self.key),
                        PutPayload::from(record.into_bytes()),
                    )
                    .await;
            }
        }
        Ok(self.start + self.written)
    }

    pub(crate) async fn discard(mut self) -> Result<u64, BlobError> {
        self.cut_back().await;
        Ok(self.start)
    }

    pub(crate) fn offset(&self) -> u64 {
        self.start + self.written
    }

    fn length_error(&self, received: u64) -> BlobError {
        BlobError::ChunkLength {
            declared: self.declared.unwrap_or(0),
            received,
            offset: self.start,
        }
    }

    /// Aborts the chunk's multipart upload: nothing of it becomes visible.
    async fn cut_back(&mut self) {
        self.discarded = true;
        if let Some(writer) = self.writer.take() {
            let _ = writer.abort().await;
        }
    }
}

/// A ranged GET opened at the first read.
pub(crate) struct S3Read {
    store: Arc<AmazonS3>,
    key: Key,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
}

impl S3Read {
    pub(crate) async fn next(&mut self, start: u64, length: u64) -> io::Result<Vec<u8>> {
        if self.stream.is_none() {
            let options = GetOptions {
                range: Some(GetRange::Bounded(start..start + length)),
                ..GetOptions::default()
            };
            let result = self
                .store
                .get_opts(&self.key, options)
                .await
                .map_err(io::Error::other)?;
            self.stream = Some(result.into_stream());
        }
        match self.stream.as_mut().map(|stream| stream.next()) {
            Some(next) => match next.await {
                Some(Ok(bytes)) => Ok(bytes.to_vec()),
                Some(Err(error)) => Err(io::Error::other(error)),
                None => Ok(Vec::new()),
            },
            None => Ok(Vec::new()),
        }
    }
}
