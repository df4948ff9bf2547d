//! OCI distribution semantics: uploads, manifests, tags, referrers, deletes, garbage
//! collection, as the OCI Distribution Specification v1.1 defines them
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md>).
//!
//! [`Registry`] ties the metadata [`Store`] to the [`BlobStore`]: blobs are written and
//! verified first, metadata is recorded after, so a crash between the two leaves only an
//! unreferenced blob that garbage collection removes.
//!
//! Architecture invariant: no HTTP types or status codes here. Errors carry the
//! specification's error codes ([`RegistryError::code`]); the API crate maps them to
//! statuses.

mod error;
mod gc;
mod manifest;
mod names;

use std::sync::Arc;

use crscan_blob::{BlobError, BlobRead, BlobStore, UploadAppend};
use crscan_model::{Digest, DigestAlgorithm};
use crscan_store::{BlobRole, Image, NewImage, Repository, Store, StoreError};

pub use error::RegistryError;
pub use gc::{GcOptions, GcReport};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, ParsedManifest,
    media_type_accepted, parse_manifest,
};
pub use names::{RepositoryPath, validate_tag};

/// Limits on what a client may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest manifest accepted, in bytes: what a scan reads at most
    /// (`crscan_image::Limits::max_manifest_bytes`, 4 MiB by default, as the spec
    /// suggests), so that the registry never stores a manifest its scans refuse.
    pub manifest_bytes: usize,
}

impl Limits {
    /// The registry's limits for images read under `image`.
    pub fn from_image(image: &crscan_image::Limits) -> Limits {
        Limits {
            manifest_bytes: usize::try_from(image.max_manifest_bytes).unwrap_or(usize::MAX),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from_image(&crscan_image::Limits::default())
    }
}

/// The byte range a chunk of a chunked upload declares with `Content-Range:
/// <start>-<end>` (inclusive on both ends, spec "Pushing a blob in chunks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    start: u64,
    end: u64,
}

impl ChunkRange {
    /// Parses `<start>-<end>` (the spec's `^[0-9]+-[0-9]+$`); a leading `bytes ` and a
    /// trailing `/<total>`, which some clients send, are accepted too.
    pub fn parse(text: &str) -> Result<ChunkRange, RegistryError> {
        let invalid = || RegistryError::ContentRangeInvalid(text.to_owned());
        let trimmed = text.trim();
        let trimmed = trimmed.strip_prefix("bytes ").unwrap_or(trimmed);
        let (start, end) = trimmed.split_once('-').ok_or_else(invalid)?;
        let end = end.split_once('/').map_or(end, |(end, _)| end);
        let number = |digits: &str| {
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u64>().ok()
        };
        match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => Ok(ChunkRange { start, end }),
            _ => Err(invalid()),
        }
    }

    /// The first byte of the chunk in the blob.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The last byte of the chunk in the blob.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes the chunk declares.
    pub fn length(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// Parses the `<reference>` of `/v2/<name>/manifests/<reference>`.
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        if text.contains(':') {
            text.parse::<Digest>()
                .map(Reference::Digest)
                .map_err(|error| RegistryError::DigestInvalid(error.to_string()))
        } else {
            validate_tag(text)?;
            Ok(Reference::Tag(text.to_owned()))
        }
    }
}

/// A stored manifest with the image it belongs to.
#[derive(Debug, Clone)]
pub struct ManifestContent {
    pub image: Image,
    pub bytes: Vec<u8>,
}

/// What a manifest push produced.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub image: Image,
    pub digest: Digest,
    /// The manifest's `subject`, reported back in the `OCI-Subject` header.
    pub subject: Option<Digest>,
}

/// The registry.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    blobs: Arc<BlobStore>,
    limits: Limits,
    /// Blob GETs answer with a presigned URL of the object storage (S3 only).
    blob_redirect: bool,
}

/// How long an upload's write lease lasts without renewal: a node that dies while
/// writing a chunk blocks the session no longer than this. Writers renew it every
/// third of it while the body streams.
const UPLOAD_LEASE_MS: i64 = 60_000;

/// One chunk being written to an upload session, under the session's write lease in
/// the store. [`UploadWrite::finish`] and [`UploadWrite::discard`] give the lease
/// back; a write dropped half-way (the client went away) gives it back from a task.
pub struct UploadWrite {
    append: Option<UploadAppend>,
    store: Store,
    id: String,
    writer: String,
    renewed: std::time::Instant,
}

impl UploadWrite {
    fn append(&mut self) -> Result<&mut UploadAppend, RegistryError> {
        self.append
            .as_mut()
            .ok_or_else(|| RegistryError::Internal(format!("upload {} already closed", self.id)))
    }

    /// Appends bytes (see [`UploadAppend::write`]), renewing the write lease as the
    /// body streams.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), RegistryError> {
        let renew_after = std::time::Duration::from_millis((UPLOAD_LEASE_MS / 3).unsigned_abs());
        if self.renewed.elapsed() >= renew_after {
            if !self
                .store
                .lease_upload(&self.id, &self.writer, UPLOAD_LEASE_MS)
                .await?
            {
                return Err(RegistryError::BlobUploadInvalid(format!(
                    "upload {}: this chunk's write lease ran out and another writer took it",
                    self.id
                )));
            }
            self.renewed = std::time::Instant::now();
        }
        let written = self.append()?.write(bytes).await;
        if let Err(error) = written {
            // The chunk is refused (the backend has cut it back): the lease goes back
            // now, before the refusal reaches the client and it sends the next chunk.
            self.release().await?;
            return Err(error.into());
        }
        Ok(())
    }

    /// Makes the chunk durable, gives the lease back and returns the upload's size.
    pub async fn finish(mut self) -> Result<u64, RegistryError> {
        self.close(true).await
    }

    /// Drops the chunk's bytes (see [`UploadAppend::discard`]) and gives the lease back.
    pub async fn discard(mut self) -> Result<u64, RegistryError> {
        self.close(false).await
    }

    async fn close(&mut self, keep: bool) -> Result<u64, RegistryError> {
        let result = match self.append.take() {
            Some(append) if keep => append.finish().await.map_err(RegistryError::from),
            Some(append) => append.discard().await.map_err(RegistryError::from),
            None => Err(RegistryError::Internal(format!(
                "upload {} already closed",
                self.id
            ))),
        };
        self.release().await?;
        result
    }

    async fn release(&mut self) -> Result<(), RegistryError> {
        let writer = std::mem::take(&mut self.writer);
        if !writer.is_empty() {
            self.store.release_upload(&self.id, &writer).await?;
        }
        Ok(())
    }
}

impl Drop for UploadWrite {
    fn drop(&mut self) {
        if self.writer.is_empty() {
            return;
        }
        let (store, id, writer) = (
            self.store.clone(),
            self.id.clone(),
            std::mem::take(&mut self.writer),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.release_upload(&id, &writer).await {
                    tracing::warn!(upload.id = %id, %error, "giving an upload's write lease back failed; it runs out by itself");
                }
            });
        }
    }
}

/// What a failed look at an upload's staged bytes means to the client: storage that
/// cannot be reached is `Unavailable` (503); anything else, an unknown upload.
fn staged_upload_error(id: &str) -> impl FnOnce(BlobError) -> RegistryError {
    let id = id.to_owned();
    move |error| match error {
        BlobError::Unavailable { .. } => error.into(),
        _ => RegistryError::BlobUploadUnknown(id),
    }
}

/// How long a presigned blob URL stays valid.
const PRESIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Registry {
    pub fn new(store: Store, blobs: Arc<BlobStore>, limits: Limits) -> Registry {
        Registry {
            store,
            blobs,
            limits,
            blob_redirect: false,
        }
    }

    /// With `redirect`, [`Registry::blob_redirect`] hands out presigned URLs of the
    /// object storage (the filesystem backend has none: blobs stream as before).
    pub fn with_blob_redirect(mut self, redirect: bool) -> Registry {
        self.blob_redirect = redirect;
        self
    }

    /// A presigned URL a client may fetch the blob from directly, when redirects are
    /// on and the backend has them; `None` means stream it. Checks the repository may
    /// serve the blob first.
    pub async fn blob_redirect(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Option<String>, RegistryError> {
        if !self.blob_redirect {
            return Ok(None);
        }
        if !self.store.blob_linked(&repository.id, digest).await? {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        if self.blobs.stat(digest).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        Ok(self.blobs.presigned_url(digest, PRESIGNED_FOR).await?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Finds the repository a path names; `NAME_UNKNOWN` when its registry or the
    /// repository does not exist.
    pub async fn repository(&self, path: &RepositoryPath) -> Result<Repository, RegistryError> {
        let registry = self
            .store
            .find_registry(path.registry())
            .await
            .map_err(|error| {
                not_found_as(error, || RegistryError::NameUnknown(path.to_string()))
            })?;
        self.store
            .get_repository_by_name(&format!("{}/{}", registry.id, path.name()))
            .await
            .map_err(|error| not_found_as(error, || RegistryError::NameUnknown(path.to_string())))
    }

    /// Finds or creates the repository a path names (pushes create repositories).
    pub async fn repository_for_push(
        &self,
        path: &RepositoryPath,
    ) -> Result<Repository, RegistryError> {
        let registry = self
            .store
            .find_registry(path.registry())
            .await
            .map_err(|error| {
                not_found_as(error, || RegistryError::NameUnknown(path.to_string()))
            })?;
        Ok(self
            .store
            .upsert_repository(&registry.id, &format!("{}/{}", registry.id, path.name()))
            .await?)
    }

    // ---- blobs ------------------------------------------------------------------

    /// The size of a blob the repository may serve.
    pub async fn blob_size(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        if !self.store.blob_linked(&repository.id, digest).await? {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        self.blobs
            .stat(digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))
    }

    /// Opens a whole blob the repository may serve for reading (its size is
    /// [`BlobRead::total`]; [`BlobRead::restrict`] narrows it to a range).
    pub async fn open_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<BlobRead, RegistryError> {
        if !self.store.blob_linked(&repository.id, digest).await? {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        Ok(self.blobs.open_read(digest, None).await?)
    }

    /// Removes a blob from a repository. The bytes stay until garbage collection finds
    /// nothing else uses them.
    pub async fn delete_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        if self.store.unlink_blob(&repository.id, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.to_string()))
        }
    }

    /// The upload owner string of a path: the repository's full name
    /// `<registryId>/<name>`. Resolving it checks the registry exists but creates
    /// nothing, so a failed upload leaves the store untouched.
    pub async fn upload_owner(&self, path: &RepositoryPath) -> Result<String, RegistryError> {
        let registry = self
            .store
            .find_registry(path.registry())
            .await
            .map_err(|error| {
                not_found_as(error, || RegistryError::NameUnknown(path.to_string()))
            })?;
        Ok(format!("{}/{}", registry.id, path.name()))
    }

    /// Starts an upload session for the repository `owner` names: the backend stages
    /// its bytes, the store records the session so that any node can continue it.
    pub async fn start_upload(&self, owner: &str) -> Result<String, RegistryError> {
        let id = self.blobs.create_upload(owner).await?;
        if let Err(error) = self.store.create_upload_session(&id, owner).await {
            let _ = self.blobs.cancel_upload(&id).await;
            return Err(error.into());
        }
        Ok(id)
    }

    /// Mounts `digest` from the repository at `from` when the blob is there; `false` when
    /// it is not (the caller then starts a normal upload, as the spec says).
    pub async fn mount_blob(
        &self,
        path: &RepositoryPath,
        digest: &Digest,
        from: &RepositoryPath,
    ) -> Result<bool, RegistryError> {
        let Ok(source) = self.repository(from).await else {
            return Ok(false);
        };
        if !self.store.blob_linked(&source.id, digest).await?
            || self.blobs.stat(digest).await?.is_none()
        {
            return Ok(false);
        }
        let repository = self.repository_for_push(path).await?;
        self.store.link_blob(&repository.id, digest).await?;
        Ok(true)
    }

    /// Checks that the store holds upload `id` as a session of `owner`; any other
    /// session is unknown to the caller. Only the store is asked: the backend call
    /// that follows finds the staged bytes (or answers `BlobUploadUnknown`) itself,
    /// so a chunk costs no second look at them (on S3, a listing and a GET).
    async fn owned_session(&self, owner: &str, id: &str) -> Result<(), RegistryError> {
        match self.store.upload_session(id).await? {
            Some(session) if session.owner == owner => Ok(()),
            _ => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
        }
    }

    /// Takes upload `id`'s write lease in the store under a new writer id, which it
    /// returns; `UploadBusy` while another writer holds it.
    async fn lease_upload(&self, id: &str) -> Result<String, RegistryError> {
        let writer = uuid::Uuid::new_v4().to_string();
        if !self
            .store
            .lease_upload(id, &writer, UPLOAD_LEASE_MS)
            .await?
        {
            return Err(RegistryError::UploadBusy(id.to_owned()));
        }
        Ok(writer)
    }

    /// The bytes an upload session has received so far.
    pub async fn upload_status(&self, owner: &str, id: &str) -> Result<u64, RegistryError> {
        self.owned_session(owner, id).await?;
        let status = self
            .blobs
            .upload_status(id)
            .await
            .map_err(staged_upload_error(id))?;
        Ok(status.size)
    }

    /// Opens an upload session for appending, under the session's write lease in the
    /// store: a second chunk of the same upload, on this node or another, is refused
    /// (`UploadBusy`) while this one is written. With a `range` (the chunk's
    /// `Content-Range`) the chunk must start at the bytes received so far
    /// (`RangeInvalid` otherwise) and its body must have exactly the declared length:
    /// one that does not is cut back off and refused (`ChunkLengthMismatch`), so the
    /// session is left as it was. Without one the body is appended as it streams.
    pub async fn append_upload(
        &self,
        owner: &str,
        id: &str,
        range: Option<ChunkRange>,
    ) -> Result<UploadWrite, RegistryError> {
        self.owned_session(owner, id).await?;
        let writer = self.lease_upload(id).await?;
        let mut write = UploadWrite {
            append: None,
            store: self.store.clone(),
            id: id.to_owned(),
            writer,
            renewed: std::time::Instant::now(),
        };
        let mut append = match self
            .blobs
            .append(id, range.map(|range| range.start()))
            .await
        {
            Ok(append) => append,
            Err(error) => {
                // Given back now, not from the drop's task: the client's next chunk
                // may come at once.
                write.release().await?;
                return Err(error.into());
            }
        };
        if let Some(range) = range {
            append.expect_length(range.length());
        }
        write.append = Some(append);
        Ok(write)
    }

    /// Finishes an upload: verifies `digest`, stores the blob, and links it to the
    /// repository (created now if it is new). Returns the blob's size.
    pub async fn finish_upload(
        &self,
        path: &RepositoryPath,
        id: &str,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        let owner = self.upload_owner(path).await?;
        self.owned_session(&owner, id).await?;
        // The write lease for the finish too: no chunk lands while the bytes are
        // checked and moved under their digest.
        let writer = self.lease_upload(id).await?;
        let finished = self.blobs.finish_upload(id, digest).await;
        let size = match finished {
            Ok(size) => size,
            Err(error) => {
                // A digest that does not match cancels the upload in the backend.
                if matches!(error, BlobError::DigestMismatch { .. }) {
                    self.store.delete_upload_session(id).await?;
                } else {
                    self.store.release_upload(id, &writer).await?;
                }
                return Err(error.into());
            }
        };
        self.store.delete_upload_session(id).await?;
        let repository = self.repository_for_push(path).await?;
        self.store.link_blob(&repository.id, digest).await?;
        Ok(size)
    }

    /// Cancels an upload session.
    pub async fn cancel_upload(&self, owner: &str, id: &str) -> Result<(), RegistryError> {
        self.owned_session(owner, id).await?;
        self.store.delete_upload_session(id).await?;
        self.blobs
            .cancel_upload(id)
            .await
            .map_err(staged_upload_error(id))
    }

    // ---- manifests --------------------------------------------------------------

    /// Stores a manifest under a tag or digest after checking it: size limit, digest,
    /// JSON shape, media type, and that every blob or child manifest it references is
    /// present (`MANIFEST_BLOB_UNKNOWN` otherwise).
    pub async fn put_manifest(
        &self,
        path: &RepositoryPath,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<PushedManifest, RegistryError> {
        if bytes.len() > self.limits.manifest_bytes {
            return Err(RegistryError::ManifestTooLarge {
                size: bytes.len(),
                limit: self.limits.manifest_bytes,
            });
        }
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = crscan_blob::digest_of(expected.algorithm(), bytes);
                if &actual != expected {
                    return Err(RegistryError::DigestInvalid(format!(
                        "manifest digest {actual} does not match {expected}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => crscan_blob::digest_of(DigestAlgorithm::Sha256, bytes),
        };
        let parsed = parse_manifest(bytes, content_type)?;
        // Check references before creating anything, so a rejected push changes nothing.
        let registry = self
            .store
            .find_registry(path.registry())
            .await
            .map_err(|error| {
                not_found_as(error, || RegistryError::NameUnknown(path.to_string()))
            })?;
        let repository_name = format!("{}/{}", registry.id, path.name());
        let existing = match self.store.get_repository_by_name(&repository_name).await {
            Ok(repository) => Some(repository),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        for (role, blob, size, _) in &parsed.references {
            match role {
                BlobRole::Child => {
                    let present = match &existing {
                        Some(repository) => self
                            .store
                            .find_image_by_digest(&repository.id, blob)
                            .await?
                            .is_some(),
                        None => false,
                    };
                    if !present {
                        return Err(RegistryError::ManifestBlobUnknown(blob.to_string()));
                    }
                }
                BlobRole::Config | BlobRole::Layer => {
                    if parsed.foreign.contains(blob) {
                        continue;
                    }
                    match self.blobs.touch(blob).await? {
                        Some(stored) if i64::try_from(stored).ok() == Some(*size) => {}
                        Some(stored) => {
                            return Err(RegistryError::ManifestInvalid(format!(
                                "descriptor of {blob} says {size} bytes but the blob has {stored}"
                            )));
                        }
                        None => return Err(RegistryError::ManifestBlobUnknown(blob.to_string())),
                    }
                }
            }
        }
        self.blobs.put_bytes(&digest, bytes).await?;
        let repository = match existing {
            Some(repository) => repository,
            None => {
                self.store
                    .upsert_repository(&registry.id, &repository_name)
                    .await?
            }
        };
        let new = NewImage {
            repository_id: repository.id.clone(),
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            manifest_size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            artifact_type: parsed.artifact_type.clone(),
            subject: parsed.subject.clone(),
            blobs: parsed.references.clone(),
        };
        let tag = match reference {
            Reference::Tag(tag) => Some(tag.as_str()),
            Reference::Digest(_) => None,
        };
        let image = self.store.put_image(&new, tag).await?;
        tracing::info!(
            repository = %repository.name,
            image.digest = %digest,
            image.id = %image.id,
            "manifest pushed"
        );
        Ok(PushedManifest {
            image,
            digest,
            subject: parsed.subject,
        })
    }

    async fn find_image(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<Image, RegistryError> {
        let image = match reference {
            Reference::Tag(tag) => self.store.find_image_by_tag(&repository.id, tag).await?,
            Reference::Digest(digest) => {
                self.store
                    .find_image_by_digest(&repository.id, digest)
                    .await?
            }
        };
        image.ok_or_else(|| {
            RegistryError::ManifestUnknown(match reference {
                Reference::Tag(tag) => tag.clone(),
                Reference::Digest(digest) => digest.to_string(),
            })
        })
    }

    /// Reads a manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<ManifestContent, RegistryError> {
        let image = self.find_image(repository, reference).await?;
        let bytes = self.blobs.read_all(&image.digest).await?;
        Ok(ManifestContent { image, bytes })
    }

    /// The image a reference names, without reading the manifest.
    pub async fn manifest_image(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<Image, RegistryError> {
        self.find_image(repository, reference).await
    }

    /// Deletes a manifest by digest (the image and all its tags) or a tag.
    pub async fn delete_manifest(
        &self,
        repository: &Repository,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        match reference {
            Reference::Tag(tag) => {
                if self.store.delete_tag(&repository.id, tag).await? {
                    Ok(())
                } else {
                    Err(RegistryError::ManifestUnknown(tag.clone()))
                }
            }
            Reference::Digest(_) => {
                let image = self.find_image(repository, reference).await?;
                self.store.delete_image(&image.id).await?;
                Ok(())
            }
        }
    }

    /// Tags of a repository, `n` at most, after `last`.
    pub async fn tags(
        &self,
        repository: &Repository,
        n: Option<u32>,
        last: Option<&str>,
    ) -> Result<Vec<String>, RegistryError> {
        let limit = n.map_or(10_000, i64::from);
        Ok(self.store.list_tags(&repository.id, last, limit).await?)
    }

    /// Repository names, `n` at most, after `last`.
    pub async fn catalog(
        &self,
        n: Option<u32>,
        last: Option<&str>,
    ) -> Result<Vec<String>, RegistryError> {
        let limit = n.map_or(10_000, i64::from);
        Ok(self.store.catalog(last, limit).await?)
    }

    /// The referrers of `subject` as an OCI image index, optionally filtered by artifact
    /// type (spec "Listing Referrers").
    pub async fn referrers(
        &self,
        repository: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, RegistryError> {
        let images = self
            .store
            .referrers(&repository.id, subject, artifact_type)
            .await?;
        let mut descriptors = Vec::with_capacity(images.len());
        for image in images {
            let annotations = match self.blobs.read_all(&image.digest).await {
                Ok(bytes) => manifest::annotations(&bytes),
                Err(_) => None,
            };
            let mut descriptor = serde_json::json!({
                "mediaType": image.media_type,
                "digest": image.digest.to_string(),
                "size": image.manifest_size,
            });
            if let Some(artifact_type) = &image.artifact_type {
                descriptor["artifactType"] = serde_json::Value::String(artifact_type.clone());
            }
            if let Some(annotations) = annotations {
                descriptor["annotations"] = annotations;
            }
            descriptors.push(descriptor);
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": descriptors,
        });
        serde_json::to_vec(&index).map_err(|error| RegistryError::Internal(error.to_string()))
    }

    /// Runs garbage collection; see [`gc`].
    pub async fn gc(&self, options: &GcOptions) -> Result<GcReport, RegistryError> {
        gc::run(self, options).await
    }
}

fn not_found_as(error: StoreError, make: impl FnOnce() -> RegistryError) -> RegistryError {
    match error {
        StoreError::NotFound { .. } => make(),
        other => other.into(),
    }
}
