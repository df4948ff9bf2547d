//! From a manifest digest to the list of layers to read: OCI image manifests and
//! indexes (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! `image-index.md`) and Docker manifest V2 schema 2 and manifest lists
//! (<https://distribution.github.io/distribution/spec/manifest-v2-2/>). An index
//! resolves to its linux/amd64 manifest. Wire types are private.
//!
//! The image reader's own manifest code works on files in a layout or an archive;
//! here the blobs come from a [`BlobSource`], so the small descriptor walk is done
//! again against that interface.

use std::collections::BTreeMap;

use crscan_image::Limits;
use crscan_model::Digest;
use serde::Deserialize;

use crate::{BlobSource, ScanError};

/// Largest manifest or index read.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Deepest nesting of indexes followed.
const MAX_INDEX_DEPTH: usize = 4;

const SCHEMA1_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorWire {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<PlatformWire>,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PlatformWire {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestWire {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<DescriptorWire>,
    #[serde(default)]
    layers: Option<Vec<DescriptorWire>>,
    #[serde(default)]
    manifests: Option<Vec<DescriptorWire>>,
}

/// One layer as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: Digest,
    /// The declared size in bytes.
    pub size: u64,
    pub media_type: String,
    /// A foreign (non-distributable) layer with `urls`, which the registry need not
    /// hold.
    pub foreign: bool,
}

/// The platform manifest a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The digest asked for (a manifest or an index).
    pub requested: Digest,
    /// The image manifest read (equal to `requested` unless it was an index).
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<LayerRef>,
}

fn unreadable(image: &Digest, detail: impl Into<String>) -> ScanError {
    ScanError::UnreadableImage {
        image: image.to_string(),
        detail: detail.into(),
    }
}

fn parse_digest(image: &Digest, text: &str) -> Result<Digest, ScanError> {
    text.parse::<Digest>()
        .map_err(|error| unreadable(image, format!("bad digest {text:?}: {error}")))
}

fn read_manifest(
    blobs: &dyn BlobSource,
    image: &Digest,
    digest: &Digest,
) -> Result<Vec<u8>, ScanError> {
    blobs
        .read_small(digest, MAX_MANIFEST_BYTES)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => {
                unreadable(image, format!("manifest {digest} is not in the registry"))
            }
            std::io::ErrorKind::InvalidData => unreadable(image, error.to_string()),
            _ => ScanError::Internal {
                image: image.to_string(),
                detail: format!("cannot read manifest {digest}: {error}"),
            },
        })
}

/// Resolves `digest` (whose bytes are `bytes` when the caller already has them) to
/// the image manifest to scan, and checks the layer count and the declared size
/// against `limits`.
pub fn resolve_image(
    blobs: &dyn BlobSource,
    digest: &Digest,
    bytes: Option<&[u8]>,
    limits: &Limits,
) -> Result<ResolvedImage, ScanError> {
    let image = digest;
    let mut current = digest.clone();
    let mut owned;
    let mut current_bytes: &[u8] = match bytes {
        Some(bytes) => bytes,
        None => {
            owned = read_manifest(blobs, image, digest)?;
            &owned
        }
    };
    for _ in 0..=MAX_INDEX_DEPTH {
        let wire: ManifestWire = serde_json::from_slice(current_bytes).map_err(|error| {
            unreadable(image, format!("manifest {current} is not valid: {error}"))
        })?;
        if let Some(media_type) = &wire.media_type
            && SCHEMA1_TYPES.contains(&media_type.as_str())
        {
            return Err(unreadable(
                image,
                format!(
                    "manifest {current} is Docker schema 1 ({media_type}), which crscan does not scan"
                ),
            ));
        }
        if wire.schema_version != Some(2) {
            return Err(unreadable(
                image,
                format!(
                    "manifest {current} has schemaVersion {:?}, not 2",
                    wire.schema_version
                ),
            ));
        }
        if let Some(children) = &wire.manifests {
            let chosen = pick_platform(image, &current, children)?;
            current = parse_digest(image, &chosen.digest)?;
            owned = read_manifest(blobs, image, &current)?;
            current_bytes = &owned;
            continue;
        }
        let config = wire
            .config
            .as_ref()
            .ok_or_else(|| unreadable(image, format!("manifest {current} has no config")))?;
        let config_digest = parse_digest(image, &config.digest)?;
        let mut layers = Vec::new();
        for layer in wire.layers.as_deref().unwrap_or_default() {
            let media_type = layer.media_type.clone().unwrap_or_default();
            let foreign = !layer.urls.is_empty()
                && (media_type.contains("nondistributable") || media_type.contains("foreign"));
            layers.push(LayerRef {
                digest: parse_digest(image, &layer.digest)?,
                size: u64::try_from(layer.size).map_err(|_| {
                    unreadable(
                        image,
                        format!("layer {} has negative size {}", layer.digest, layer.size),
                    )
                })?,
                media_type,
                foreign,
            });
        }
        if layers.len() > limits.max_layers {
            return Err(ScanError::OverLimit {
                image: image.to_string(),
                detail: format!(
                    "{} layers, more than the limit of {}",
                    layers.len(),
                    limits.max_layers
                ),
            });
        }
        let declared: u64 = layers
            .iter()
            .map(|layer| layer.size)
            .fold(0, u64::saturating_add);
        if declared > limits.max_image_bytes {
            return Err(ScanError::OverLimit {
                image: image.to_string(),
                detail: format!(
                    "{declared} compressed bytes, more than the limit of {}",
                    limits.max_image_bytes
                ),
            });
        }
        return Ok(ResolvedImage {
            requested: digest.clone(),
            manifest_digest: current,
            config_digest,
            layers,
        });
    }
    Err(unreadable(
        image,
        format!("indexes are nested more than {MAX_INDEX_DEPTH} deep"),
    ))
}

/// Picks the linux/amd64 entry of an index. Attestation manifests (BuildKit marks
/// them `unknown/unknown`) are never picked; an index with a single entry that has
/// no platform is taken as it is.
fn pick_platform<'a>(
    image: &Digest,
    index: &Digest,
    children: &'a [DescriptorWire],
) -> Result<&'a DescriptorWire, ScanError> {
    // The same rule as `crscan sbom`/`crscan scan` on local images (crscan-image).
    let (linux_amd64, _) = crscan_image::Platform::parse(None)
        .map_err(|error| unreadable(image, error.to_string()))?;
    let wanted = children.iter().find(|child| {
        child.platform.as_ref().is_some_and(|platform| {
            linux_amd64.matches_fields(
                &platform.os,
                &platform.architecture,
                platform.variant.as_deref(),
            )
        })
    });
    if let Some(child) = wanted {
        return Ok(child);
    }
    let unplatformed: Vec<&DescriptorWire> = children
        .iter()
        .filter(|child| {
            child.platform.is_none() && !child.annotations.contains_key("vnd.docker.reference.type")
        })
        .collect();
    if let [only] = unplatformed.as_slice() {
        return Ok(only);
    }
    let available: Vec<String> = children
        .iter()
        .filter_map(|child| child.platform.as_ref())
        .map(|platform| format!("{}/{}", platform.os, platform.architecture))
        .collect();
    Err(unreadable(
        image,
        format!(
            "index {index} has no linux/amd64 manifest (available: {})",
            if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            }
        ),
    ))
}
