//! Remote images (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`) for `crscan scan` and
//! `crscan sbom`, and the options that reach a registry.
//!
//! Fetches only what a scan needs: the manifest (one platform's, for an index), the
//! configuration and the layers, each blob streamed once and checked against its
//! digest (`crscan-distribution`). The blobs land in a private, temporary OCI image
//! layout, which the same reader as a local image then reads
//! ([`super::image_input::read_inventory`]): the findings of a remote image are those
//! of its local copy by construction. The layout is removed when the scan ends.
//!
//! This is a thin adapter until the one blob-source interface of the scan path
//! (issue #9) lands; then the remote blobs are handed to it without the detour
//! through a temporary directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use crscan_distribution::client::FetchedManifest;
use crscan_distribution::manifest::{self, Parsed};
use crscan_distribution::{Client, ClientOptions, ImageReference, Version, credentials};
use indicatif::{ProgressBar, ProgressStyle};

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

/// A temporary OCI layout holding one remote image; removed on drop.
pub struct FetchedImage {
    pub dir: PathBuf,
    pub manifest_digest: String,
}

impl FetchedImage {
    /// The layout as the image reader names it.
    pub fn source(&self) -> String {
        format!("oci:{}:{LAYOUT_TAG}", self.dir.display())
    }
}

impl Drop for FetchedImage {
    fn drop(&mut self) {
        // A leftover temporary directory is harmless; nothing else to do.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const LAYOUT_TAG: &str = "remote";

/// Fetches the manifest, configuration and layers of `reference` (one platform's,
/// for an index) into a temporary OCI layout.
pub fn fetch(
    reference: &ImageReference,
    platform: Option<&str>,
    remote: &RemoteArgs,
) -> anyhow::Result<FetchedImage> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = client(&reference.host, remote.creds.as_deref(), remote.tls_verify)?;
    let dir =
        std::env::temp_dir().join(format!("crscan-remote-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(dir.join("blobs/sha256"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut fetched = FetchedImage {
        dir,
        manifest_digest: String::new(),
    };
    fetched.manifest_digest =
        runtime.block_on(fetch_into(&client, reference, platform, &fetched.dir))?;
    Ok(fetched)
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn fetch_into(
    client: &Client,
    reference: &ImageReference,
    platform: Option<&str>,
    dir: &Path,
) -> anyhow::Result<String> {
    let repository = reference.repository.as_str();
    let version = match &reference.version {
        Version::Tag(tag) => tag.clone(),
        Version::Digest(digest) => digest.to_string(),
    };
    let mut manifest: FetchedManifest = client.manifest(repository, &version).await?;
    if let Parsed::Index { manifests } = &manifest.parsed {
        let chosen = manifest::pick_platform(manifests, platform)
            .map_err(|reason| anyhow::anyhow!("{reference}: {reason}"))?;
        let digest = chosen.digest.clone();
        manifest = client.manifest(repository, &digest).await?;
        if matches!(manifest.parsed, Parsed::Index { .. }) {
            anyhow::bail!("{reference}: the index entry {digest} is an index itself");
        }
    }
    let Parsed::Image { config, layers } = &manifest.parsed else {
        anyhow::bail!("{reference}: not an image manifest");
    };
    let config = config
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{reference}: the manifest names no configuration"))?;

    let total: u64 = layers.iter().map(|layer| layer.size).sum();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("fetching {} layers", layers.len()));
        bar
    });
    for blob in std::iter::once(config).chain(layers) {
        let path = blob_path(dir, &blob.digest)?;
        if path.exists() {
            continue;
        }
        let reader = client
            .blob(repository, &blob.digest, Some(blob.size))
            .await?;
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let written = reader.copy_to(&mut file).await?;
        drop(file);
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(bar) = &bar
            && !std::ptr::eq(blob, config)
        {
            bar.inc(written);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    std::fs::write(blob_path(dir, &manifest.digest)?, &manifest.bytes)
        .with_context(|| format!("cannot write to {}", dir.display()))?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": manifest.bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": LAYOUT_TAG},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string())
        .and_then(|()| std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#))
        .with_context(|| format!("cannot write to {}", dir.display()))?;
    Ok(manifest.digest)
}

/// Where a blob goes in the layout; only sha256 and sha512 digests of the right
/// length make a path, so no digest can name a file outside it.
fn blob_path(dir: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let parsed: crscan_model::Digest = digest
        .parse()
        .map_err(|error| anyhow::anyhow!("digest {digest:?} is not valid: {error}"))?;
    let algorithm = parsed.algorithm().name();
    let folder = dir.join("blobs").join(algorithm);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    Ok(folder.join(parsed.hex()))
}
