//! Remote images (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`) for `crscan scan` and
//! `crscan sbom`, and the options that reach a registry.
//!
//! A remote repository is one more [`BlobSource`] of the one scan path: the manifest
//! is fetched by tag or digest, and then `crscan_image::resolve_manifest` (which picks
//! an index's platform by the same rule as for a local image, fetching the chosen
//! manifest by digest through this source) and `crscan_scanner::inventory_of` read
//! the image exactly as they read a local one. The configuration and each layer are
//! fetched when the reader opens them, streamed once from the registry straight into
//! the layer loop, and checked against their digests while they stream by
//! `crscan-distribution`'s `BlobReader`, which fails before handing on the last
//! chunk of a blob whose bytes do not match, so the layer loop does not hash them a
//! second time. Nothing is written to disk; the findings of a remote image are those
//! of its local copy by construction.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;

use anyhow::Context;
use bytes::Bytes;
use crscan_distribution::client::FetchedManifest;
use crscan_distribution::manifest::Parsed;
use crscan_distribution::{Client, ClientOptions, ImageReference, Version, credentials};
use crscan_image::{Blob, BlobCheck, BlobSource};
use crscan_model::Digest;
use futures::StreamExt;

/// How to reach the registry of a remote image.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// For a `docker://` image: `USER:PASSWORD` for the registry (for cr.yandex,
    /// `oauth:TOKEN`, `iam:TOKEN` or `json_key:KEY`). Without it, `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.docker/config.json` are read.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// For a `docker://` image: check the registry's TLS certificate and use HTTPS
    /// only; `--tls-verify=false` allows a self-signed certificate or plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
}

/// A client for `host` with credentials resolved the way skopeo resolves them.
pub fn client(
    host: &crscan_distribution::Host,
    creds: Option<&str>,
    tls_verify: bool,
) -> anyhow::Result<Client> {
    let credentials = credentials::resolve(creds, host)?;
    Ok(Client::new(
        host.clone(),
        ClientOptions {
            tls_verify,
            credentials,
            ..ClientOptions::default()
        },
    )?)
}

/// Chunks of a blob buffered between the download and the layer loop.
const CHUNKS_AHEAD: usize = 16;

/// One image of a remote repository as a [`BlobSource`]: the manifests an index
/// names, fetched from `/v2/REPO/manifests/` by digest, and the configuration and
/// layers, fetched from `/v2/REPO/blobs/` when opened, with the sizes their manifest
/// declares.
pub struct RemoteBlobs {
    runtime: tokio::runtime::Runtime,
    client: Client,
    repository: String,
    /// The manifest or index the reference names, exactly as served.
    manifest: FetchedManifest,
    /// The digests of the manifests the index names, served from `/manifests/`.
    children: HashSet<String>,
    /// Declared sizes of the configurations and layers of the manifests fetched so
    /// far, by digest.
    sizes: Mutex<HashMap<String, u64>>,
}

impl RemoteBlobs {
    /// Fetches the manifest or index `reference` names.
    pub fn open(reference: &ImageReference, remote: &RemoteArgs) -> anyhow::Result<RemoteBlobs> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let client = client(&reference.host, remote.creds.as_deref(), remote.tls_verify)?;
        let repository = reference.repository.clone();
        let version = match &reference.version {
            Version::Tag(tag) => tag.clone(),
            Version::Digest(digest) => digest.to_string(),
        };
        let manifest = runtime.block_on(client.manifest(&repository, &version))?;
        let children = match &manifest.parsed {
            Parsed::Index { manifests } => {
                manifests.iter().map(|entry| entry.digest.clone()).collect()
            }
            Parsed::Image { .. } => HashSet::new(),
        };
        let blobs = RemoteBlobs {
            runtime,
            client,
            repository,
            manifest,
            children,
            sizes: Mutex::new(HashMap::new()),
        };
        blobs.record_sizes(&blobs.manifest.parsed);
        Ok(blobs)
    }

    /// The digest, exact bytes and media type of the manifest or index the reference
    /// names.
    pub fn manifest(&self) -> (&str, &[u8], &str) {
        (
            &self.manifest.digest,
            &self.manifest.bytes,
            &self.manifest.media_type,
        )
    }

    fn record_sizes(&self, parsed: &Parsed) {
        if let Parsed::Image { config, layers } = parsed
            && let Ok(mut sizes) = self.sizes.lock()
        {
            for blob in config.iter().chain(layers) {
                sizes.insert(blob.digest.clone(), blob.size);
            }
        }
    }

    /// An index entry's manifest, by digest, as a blob of its exact bytes.
    fn open_child_manifest(&self, digest: &str) -> io::Result<Blob> {
        let fetched = self
            .runtime
            .block_on(self.client.manifest(&self.repository, digest))
            .map_err(io_error)?;
        self.record_sizes(&fetched.parsed);
        Ok(Blob {
            size: fetched.bytes.len() as u64,
            reader: Box::new(io::Cursor::new(fetched.bytes)),
            // The client checked the bytes against the digest they were fetched by.
            check: BlobCheck::Stored,
        })
    }
}

fn io_error(error: crscan_distribution::Error) -> io::Error {
    match error {
        crscan_distribution::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, error)
        }
        error => io::Error::other(error),
    }
}

impl BlobSource for RemoteBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob> {
        let text = digest.to_string();
        if self.children.contains(&text) {
            return self.open_child_manifest(&text);
        }
        let declared = self
            .sizes
            .lock()
            .ok()
            .and_then(|sizes| sizes.get(&text).copied());
        let mut reader = self
            .runtime
            .block_on(self.client.blob(&self.repository, &text, declared))
            .map_err(io_error)?;
        let size = declared.or(reader.declared_length()).unwrap_or(0);
        // The stream is pumped on the runtime while the layer loop reads the chunks
        // already there; it stops when the reader is dropped.
        let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        self.runtime.spawn(async move {
            while let Some(chunk) = reader.next().await {
                let failed = chunk.is_err();
                if sender.send(chunk.map_err(io::Error::other)).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Blob {
            reader: Box::new(ChannelReader {
                receiver,
                current: Bytes::new(),
            }),
            size,
            // BlobReader fails before the last chunk when the bytes do not match.
            check: BlobCheck::Stored,
        })
    }

    fn describe(&self) -> String {
        format!(
            "registry {} (repository {})",
            self.client.host(),
            self.repository
        )
    }
}

/// Reads the chunks of a blob's stream, in order.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                // The stream ended cleanly: its bytes matched the digest and size.
                None => return Ok(0),
            }
        }
        let length = buffer.len().min(self.current.len());
        buffer[..length].copy_from_slice(&self.current.split_to(length));
        Ok(length)
    }
}
