//! The registry's content-addressed blob store as a [`BlobSource`], so that the
//! server's scans read images through the same resolver and layer reader as
//! `crscan scan`. The store verified each blob's digest when it was written, so the
//! reader does not hash it again. On S3 the blob streams from the bucket (a blocking
//! reader over the async client: the layer loop runs on a blocking thread).

use std::io;
use std::sync::Arc;

use crscan_blob::BlobStore;
use crscan_image::{Blob, BlobCheck, BlobSource};
use crscan_model::Digest;

/// The blobs the registry holds.
#[derive(Clone)]
pub struct RegistryBlobs(pub Arc<BlobStore>);

impl BlobSource for RegistryBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob> {
        let (reader, size) = self.0.open_blocking(digest)?;
        Ok(Blob {
            reader: Box::new(io::BufReader::with_capacity(256 << 10, reader)),
            size,
            check: BlobCheck::Stored,
        })
    }

    fn describe(&self) -> String {
        "the registry".to_owned()
    }
}
