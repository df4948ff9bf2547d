//! Remote images (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`) for `crscan scan` and
//! `crscan sbom`, and the options that reach a registry.
//!
//! A remote repository is one more [`BlobSource`] of the one scan path: the manifest
//! is fetched by tag or digest (for an index, the chosen platform's, by digest), and
//! then `crscan_image::resolve_manifest` and `crscan_scanner::inventory_of` read the
//! image exactly as they read a local one. The configuration and each layer are
//! fetched when the reader opens them, streamed once from the registry straight into
//! the layer loop, and checked against their digests while they stream
//! (`crscan-distribution`'s `BlobReader`, and the layer loop's own check). Nothing is
//! written to disk; the findings of a remote image are those of its local copy by
//! construction.

use std::collections::HashMap;
use std::io::{self, Read};

use anyhow::Context;
use bytes::Bytes;
use crscan_distribution::client::FetchedManifest;
use crscan_distribution::manifest::{self, Parsed};
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

/// One image of a remote repository as a [`BlobSource`]: its configuration and
/// layers, fetched from `/v2/REPO/blobs/` when opened, with the sizes its manifest
/// declares.
pub struct RemoteBlobs {
    runtime: tokio::runtime::Runtime,
    client: Client,
    repository: String,
    /// The image manifest (one platform's, for an index), exactly as served.
    manifest: FetchedManifest,
    /// Declared sizes of the configuration and layers, by digest.
    sizes: HashMap<String, u64>,
}

impl RemoteBlobs {
    /// Fetches the manifest `reference` names; for an index, the manifest of
    /// `platform` (the host's when `None`, falling back to linux/amd64).
    pub fn open(
        reference: &ImageReference,
        platform: Option<&str>,
        remote: &RemoteArgs,
    ) -> anyhow::Result<RemoteBlobs> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let client = client(&reference.host, remote.creds.as_deref(), remote.tls_verify)?;
        let repository = reference.repository.clone();
        let manifest = runtime.block_on(image_manifest(&client, reference, platform))?;
        let Parsed::Image { config, layers } = &manifest.parsed else {
            anyhow::bail!("{reference}: not an image manifest");
        };
        if config.is_none() {
            anyhow::bail!("{reference}: the manifest names no configuration");
        }
        let sizes = config
            .iter()
            .chain(layers)
            .map(|blob| (blob.digest.clone(), blob.size))
            .collect();
        Ok(RemoteBlobs {
            runtime,
            client,
            repository,
            manifest,
            sizes,
        })
    }

    /// The image manifest's digest, exact bytes and media type.
    pub fn manifest(&self) -> (&str, &[u8], &str) {
        (
            &self.manifest.digest,
            &self.manifest.bytes,
            &self.manifest.media_type,
        )
    }
}

/// The manifest `reference` names, or for an index the one of `platform`.
async fn image_manifest(
    client: &Client,
    reference: &ImageReference,
    platform: Option<&str>,
) -> anyhow::Result<FetchedManifest> {
    let repository = reference.repository.as_str();
    let version = match &reference.version {
        Version::Tag(tag) => tag.clone(),
        Version::Digest(digest) => digest.to_string(),
    };
    let mut fetched = client.manifest(repository, &version).await?;
    if let Parsed::Index { manifests } = &fetched.parsed {
        let chosen = manifest::pick_platform(manifests, platform)
            .map_err(|reason| anyhow::anyhow!("{reference}: {reason}"))?;
        let digest = chosen.digest.clone();
        fetched = client.manifest(repository, &digest).await?;
        if matches!(fetched.parsed, Parsed::Index { .. }) {
            anyhow::bail!("{reference}: the index entry {digest} is an index itself");
        }
    }
    Ok(fetched)
}

impl BlobSource for RemoteBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<Blob> {
        let text = digest.to_string();
        let declared = self.sizes.get(&text).copied();
        let mut reader = self
            .runtime
            .block_on(self.client.blob(&self.repository, &text, declared))
            .map_err(|error| match error {
                crscan_distribution::Error::NotFound { .. } => {
                    io::Error::new(io::ErrorKind::NotFound, error)
                }
                error => io::Error::other(error),
            })?;
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
            check: BlobCheck::Digest,
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
