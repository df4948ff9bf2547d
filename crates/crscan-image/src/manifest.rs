//! Image metadata: the OCI image layout's `index.json`, image indexes and manifests,
//! image configurations, and the docker archive's `manifest.json`. Wire types stay
//! private; what callers see is [`crate::ImageInfo`].
//!
//! Specs: <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/image-index.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/config.md>, and docker's
//! `docker save` format (`manifest.json` with `Config`, `RepoTags`, `Layers`).

use std::collections::BTreeMap;

use crscan_model::{Digest, DigestAlgorithm};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::container::Container;
use crate::{ImageError, ImageInfo, LayerInfo, Limits};

/// Largest manifest, index or configuration accepted.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Deepest nesting of indexes followed.
const MAX_INDEX_DEPTH: usize = 4;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<PlatformWire>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct PlatformWire {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IndexWire {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
struct ManifestWire {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigWire {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    rootfs: Option<RootFsWire>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFsWire {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DockerManifestWire {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// A requested platform, `os/architecture[/variant]`. Also used by the registry
/// scanner, so that images read from a layout and from the blob store pick the same
/// entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// Parses `os/architecture[/variant]`; `None` is the default, linux/amd64. The
    /// flag says whether the platform was asked for explicitly.
    pub fn parse(text: Option<&str>) -> Result<(Platform, bool), ImageError> {
        let Some(text) = text else {
            return Ok((
                Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    variant: None,
                },
                false,
            ));
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                (*os, *arch, Some((*variant).to_owned()))
            }
            _ => {
                return Err(ImageError::PlatformNotFound {
                    platform: text.to_owned(),
                    available: "a platform is written os/architecture[/variant]".into(),
                });
            }
        };
        Ok((
            Platform {
                os: os.to_owned(),
                architecture: normalize_arch(architecture).to_owned(),
                variant,
            },
            true,
        ))
    }

    fn matches(&self, candidate: &PlatformWire) -> bool {
        self.matches_fields(
            &candidate.os,
            &candidate.architecture,
            candidate.variant.as_deref(),
        )
    }

    /// Whether an index entry's `platform` fields name this platform (`x86_64` is
    /// `amd64`, `aarch64` is `arm64`, and arm64's default variant is v8).
    pub fn matches_fields(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if os != self.os || normalize_arch(architecture) != self.architecture {
            return false;
        }
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(wanted), Some(got)) => wanted == got,
            // The default variant of arm64 is v8.
            (Some(wanted), None) => self.architecture == "arm64" && wanted == "v8",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

fn normalize_arch(architecture: &str) -> &str {
    match architecture {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn describe_platform(platform: &PlatformWire) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{}", platform.os, platform.architecture, variant),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

/// Where each layer is stored and how to check it.
pub(crate) struct LayerPlan {
    /// Member name in the container.
    pub member: String,
    /// For docker archives' `layer.tar` files: the digest applies to the raw bytes
    /// only when they are uncompressed.
    pub plain_only: bool,
}

/// A resolved image: its description and where its layers are.
pub(crate) struct Resolved {
    pub info: ImageInfo,
    pub layers: Vec<LayerPlan>,
}

fn parse_digest(text: &str, what: &str) -> Result<Digest, ImageError> {
    text.parse()
        .map_err(|error| ImageError::bad(what.to_owned(), error))
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

fn sha256_of(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(bytes))
}

/// Reads a metadata blob by digest and checks the digest.
fn read_blob(container: &Container, digest: &Digest) -> Result<Vec<u8>, ImageError> {
    let name = blob_name(digest);
    let bytes = container.read_small(&name, MAX_METADATA_BYTES)?;
    let actual = match digest.algorithm() {
        DigestAlgorithm::Sha256 => sha256_of(&bytes),
        DigestAlgorithm::Sha512 => {
            Digest::from_bytes(DigestAlgorithm::Sha512, &sha2::Sha512::digest(&bytes))
        }
    };
    if &actual != digest {
        return Err(ImageError::DigestMismatch {
            name,
            expected: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn is_index(media_type: Option<&str>, wire: &IndexWire) -> bool {
    match media_type.or(wire.media_type.as_deref()) {
        Some(
            "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json",
        ) => true,
        Some(_) => false,
        None => wire.manifests.is_some(),
    }
}

/// Picks the manifest for `platform` among an index's entries.
fn pick_platform<'a>(
    manifests: &[&'a Descriptor],
    platform: &Platform,
    explicit: bool,
) -> Result<&'a Descriptor, ImageError> {
    if let Some(found) = manifests
        .iter()
        .find(|entry| entry.platform.as_ref().is_some_and(|p| platform.matches(p)))
    {
        return Ok(found);
    }
    // Attestation manifests carry the platform unknown/unknown; an index holding one
    // image and its attestations still names that one image.
    let images: Vec<&Descriptor> = manifests
        .iter()
        .copied()
        .filter(|entry| {
            entry
                .platform
                .as_ref()
                .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
        })
        .collect();
    if !explicit && let [only] = images.as_slice() {
        return Ok(only);
    }
    let available: Vec<String> = manifests
        .iter()
        .filter_map(|entry| entry.platform.as_ref().map(describe_platform))
        .collect();
    Err(ImageError::PlatformNotFound {
        platform: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// Resolves an OCI image layout (a directory or an archive) to one image.
pub(crate) fn resolve_oci(
    container: &Container,
    source_name: &str,
    tag: Option<&str>,
    platform_text: Option<&str>,
    limits: &Limits,
) -> Result<Resolved, ImageError> {
    let (platform, explicit) = Platform::parse(platform_text)?;
    let index_bytes = container.read_small("index.json", MAX_METADATA_BYTES)?;
    let index: IndexWire = serde_json::from_slice(&index_bytes)
        .map_err(|error| ImageError::bad("index.json", error))?;
    let all = index.manifests.unwrap_or_default();
    let candidates: Vec<&Descriptor> = match tag {
        Some(tag) => all
            .iter()
            .filter(|entry| entry.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
            .collect(),
        None => all.iter().collect(),
    };
    let tags = || {
        let names: Vec<&str> = all
            .iter()
            .filter_map(|entry| entry.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let chosen: &Descriptor = match candidates.as_slice() {
        [] => {
            return Err(match tag {
                Some(tag) => ImageError::TagNotFound {
                    source_name: source_name.to_owned(),
                    tag: tag.to_owned(),
                    available: tags(),
                },
                None => ImageError::bad("index.json", "it lists no manifests"),
            });
        }
        [only] => only,
        many => {
            if many.iter().any(|entry| entry.platform.is_some()) {
                pick_platform(many, &platform, explicit)?
            } else {
                return Err(ImageError::bad(
                    "index.json",
                    format!(
                        "it lists {} manifests; name one with a tag (tags: {})",
                        many.len(),
                        tags()
                    ),
                ));
            }
        }
    };
    let mut repo_tags: Vec<String> = Vec::new();
    for key in [CONTAINERD_NAME, REF_NAME] {
        if let Some(name) = chosen.annotations.get(key)
            && !repo_tags.contains(name)
        {
            repo_tags.push(name.clone());
        }
    }
    let mut digest = parse_digest(&chosen.digest, "index.json descriptor digest")?;
    let mut media_type = chosen.media_type.clone();
    let mut depth = 0;
    let (manifest_bytes, manifest_digest, manifest_media_type) = loop {
        let bytes = read_blob(container, &digest)?;
        let wire: IndexWire = serde_json::from_slice(&bytes)
            .map_err(|error| ImageError::bad(format!("manifest {digest}"), error))?;
        if !is_index(media_type.as_deref(), &wire) {
            let media_type = media_type.or(wire.media_type);
            break (bytes, digest, media_type);
        }
        depth += 1;
        if depth > MAX_INDEX_DEPTH {
            return Err(ImageError::bad(
                format!("index {digest}"),
                "indexes nest too deeply",
            ));
        }
        let manifests = wire.manifests.unwrap_or_default();
        let refs: Vec<&Descriptor> = manifests.iter().collect();
        let entry = pick_platform(&refs, &platform, explicit)?;
        media_type = entry.media_type.clone();
        digest = parse_digest(&entry.digest, "index descriptor digest")?;
    };
    let manifest: ManifestWire = serde_json::from_slice(&manifest_bytes)
        .map_err(|error| ImageError::bad(format!("manifest {manifest_digest}"), error))?;
    check_layer_count(manifest.layers.len(), limits)?;
    let config_digest = parse_digest(&manifest.config.digest, "manifest config digest")?;
    let config = parse_config(&read_blob(container, &config_digest)?, &config_digest)?;
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|rootfs| rootfs.diff_ids.clone())
        .unwrap_or_default();
    let mut layers = Vec::new();
    let mut plans = Vec::new();
    for (index, layer) in manifest.layers.iter().enumerate() {
        let digest = parse_digest(&layer.digest, "manifest layer digest")?;
        let diff_id = diff_ids.get(index).and_then(|text| text.parse().ok());
        plans.push(LayerPlan {
            member: blob_name(&digest),
            plain_only: false,
        });
        layers.push(LayerInfo {
            digest,
            diff_id,
            media_type: layer.media_type.clone().unwrap_or_default(),
            size: layer.size,
        });
    }
    Ok(Resolved {
        info: ImageInfo {
            source: source_name.to_owned(),
            manifest_digest: Some(manifest_digest),
            config_digest: Some(config_digest),
            media_type: manifest_media_type,
            os: config.os,
            architecture: config.architecture,
            layers,
            created: config.created,
            repo_tags,
        },
        layers: plans,
    })
}

fn check_layer_count(count: usize, limits: &Limits) -> Result<(), ImageError> {
    if count > limits.max_layers {
        return Err(ImageError::TooManyLayers {
            count,
            limit: limits.max_layers,
        });
    }
    Ok(())
}

fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ConfigWire, ImageError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ImageError::bad(format!("config {digest}"), error))
}

/// The digest a docker archive member's name carries (`blobs/sha256/<hex>`, or the
/// legacy `<hex>.json` config name).
fn digest_from_member(name: &str) -> Option<Digest> {
    let name = crate::container::member_name(name);
    if let Some(rest) = name.strip_prefix("blobs/")
        && let Some((algorithm, hex)) = rest.split_once('/')
    {
        return format!("{algorithm}:{hex}").parse().ok();
    }
    None
}

/// Resolves a docker archive (`docker save`) to its first image.
pub(crate) fn resolve_docker(
    container: &Container,
    source_name: &str,
    limits: &Limits,
) -> Result<Resolved, ImageError> {
    let bytes = container.read_small("manifest.json", MAX_METADATA_BYTES)?;
    let entries: Vec<DockerManifestWire> =
        serde_json::from_slice(&bytes).map_err(|error| ImageError::bad("manifest.json", error))?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(ImageError::bad("manifest.json", "it lists no images"));
    };
    check_layer_count(entry.layers.len(), limits)?;
    let config_bytes = container.read_small(&entry.config, MAX_METADATA_BYTES)?;
    let config_digest = sha256_of(&config_bytes);
    if let Some(named) = digest_from_member(&entry.config)
        && named != config_digest
    {
        return Err(ImageError::DigestMismatch {
            name: entry.config.clone(),
            expected: named,
            actual: config_digest,
        });
    }
    let config = parse_config(&config_bytes, &config_digest)?;
    let diff_ids: Vec<String> = config
        .rootfs
        .as_ref()
        .map(|rootfs| rootfs.diff_ids.clone())
        .unwrap_or_default();
    let mut layers = Vec::new();
    let mut plans = Vec::new();
    for (index, member) in entry.layers.iter().enumerate() {
        let diff_id: Option<Digest> = diff_ids.get(index).and_then(|text| text.parse().ok());
        let (digest, plain_only) = match digest_from_member(member) {
            Some(digest) => (digest, false),
            None => match &diff_id {
                Some(diff_id) => (diff_id.clone(), true),
                None => {
                    return Err(ImageError::bad(
                        format!("config {config_digest}"),
                        format!("it has no diff ID for layer {index} ({member})"),
                    ));
                }
            },
        };
        let size = container
            .size(member)
            .ok_or_else(|| ImageError::MissingBlob {
                name: member.clone(),
                container: container.describe(),
            })?;
        layers.push(LayerInfo {
            digest,
            diff_id,
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            size,
        });
        plans.push(LayerPlan {
            member: member.clone(),
            plain_only,
        });
    }
    Ok(Resolved {
        info: ImageInfo {
            source: source_name.to_owned(),
            manifest_digest: None,
            config_digest: Some(config_digest),
            media_type: None,
            os: config.os,
            architecture: config.architecture,
            layers,
            created: config.created,
            repo_tags: entry.repo_tags.unwrap_or_default(),
        },
        layers: plans,
    })
}
