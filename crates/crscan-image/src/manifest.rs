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

use crate::blobs::{BlobCheck, BlobSource, LocalBlobs, blob_member, read_metadata};
use crate::{ImageError, ImageInfo, LayerInfo, Limits};

/// Largest image configuration, and largest `index.json` or docker `manifest.json`,
/// accepted. Manifests and indexes are bounded by [`Limits::max_manifest_bytes`].
const MAX_CONFIG_BYTES: u64 = 16 << 20;

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
    size: i64,
    #[serde(default)]
    platform: Option<PlatformWire>,
    #[serde(default)]
    urls: Vec<String>,
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

/// A manifest or an index: which one it is comes from its media type, or else from
/// the fields present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestWire {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
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
    /// Parses `os/architecture[/variant]`; `None` is the default, the host's platform
    /// (an index without it falls back to linux/amd64, see [`pick_platform`]). The
    /// flag says whether the platform was asked for explicitly.
    pub fn parse(text: Option<&str>) -> Result<(Platform, bool), ImageError> {
        let Some(text) = text else {
            return Ok((Platform::host(), false));
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

    /// The platform this program runs on (`x86_64` is amd64, `aarch64` arm64).
    pub fn host() -> Platform {
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: normalize_arch(std::env::consts::ARCH).to_owned(),
            variant: None,
        }
    }

    /// linux/amd64, the platform an index is read for when it lacks the host's.
    fn fallback() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    fn matches(&self, candidate: &EntryPlatform) -> bool {
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
        "x86" | "i386" | "i686" => "386",
        other => other,
    }
}

fn describe_platform(platform: &EntryPlatform) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{}", platform.os, platform.architecture, variant),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// The platform an index entry declares, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A blob a manifest or an index refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub digest: Digest,
    /// The declared size in bytes.
    pub size: u64,
    /// The declared media type, or the default for its place.
    pub media_type: String,
    /// A foreign (non-distributable) layer with `urls`, which a registry need not hold.
    pub foreign: bool,
    /// For an index entry: the platform it declares.
    pub platform: Option<EntryPlatform>,
    /// For an index entry: an attestation or another artifact attached to an image
    /// (BuildKit's `unknown/unknown` platform, `vnd.docker.reference.type`).
    pub attached: bool,
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest or an index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestContent {
    Image {
        config: Reference,
        layers: Vec<Reference>,
    },
    Index {
        manifests: Vec<Reference>,
    },
}

/// A manifest or an index, parsed and checked: OCI image manifests and indexes and
/// Docker manifest V2 schema 2 and manifest lists
/// (<https://distribution.github.io/distribution/spec/manifest-v2-2/>). The one parser
/// the registry (on push) and every scan use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The media type: the document's own `mediaType`, else the one the caller knows
    /// (a descriptor's, a `Content-Type`), else the OCI type its fields imply.
    pub media_type: String,
    /// The `mediaType` the document itself declares.
    pub declared_media_type: Option<String>,
    /// `artifactType`, or for an OCI image manifest without one its config's type.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    pub content: ManifestContent,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        matches!(self.content, ManifestContent::Index { .. })
    }
}

fn reference(raw: &Descriptor, default_media_type: &str) -> Result<Reference, String> {
    let digest = raw
        .digest
        .parse::<Digest>()
        .map_err(|error| error.to_string())?;
    let size = u64::try_from(raw.size)
        .map_err(|_| format!("descriptor of {digest} has negative size {}", raw.size))?;
    let media_type = raw
        .media_type
        .clone()
        .unwrap_or_else(|| default_media_type.to_owned());
    let foreign = !raw.urls.is_empty()
        && (media_type.contains("nondistributable") || media_type.contains("foreign"));
    let platform = raw.platform.as_ref().map(|platform| EntryPlatform {
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
    });
    let attached = platform
        .as_ref()
        .is_some_and(|platform| platform.os == "unknown" || platform.architecture == "unknown")
        || raw.annotations.contains_key("vnd.docker.reference.type");
    Ok(Reference {
        digest,
        size,
        media_type,
        foreign,
        platform,
        attached,
        annotations: raw.annotations.clone(),
    })
}

/// Parses and checks a manifest or an index. `media_type` is what the caller knows
/// of its type (a descriptor's `mediaType`, a request's `Content-Type`), used when the
/// document does not say. The error text says what is wrong, for the registry's
/// `MANIFEST_INVALID` and a scan's message alike.
pub fn parse_manifest(bytes: &[u8], media_type: Option<&str>) -> Result<Manifest, String> {
    let raw: ManifestWire = serde_json::from_slice(bytes)
        .map_err(|error| format!("manifest is not valid JSON: {error}"))?;
    if let Some(declared) = &raw.media_type
        && DOCKER_SCHEMA1.contains(&declared.as_str())
    {
        return Err(format!(
            "manifest is Docker schema 1 ({declared}), which crscan does not read"
        ));
    }
    if raw.schema_version != Some(2) {
        return Err(format!("schemaVersion {:?} is not 2", raw.schema_version));
    }
    let resolved_type = match (&raw.media_type, media_type) {
        (Some(declared), _) => declared.clone(),
        (None, Some(known)) => known.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let mut artifact_type = raw.artifact_type.clone();
    let content = match resolved_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| "image manifest has no config".to_owned())?;
            let layers = raw
                .layers
                .as_ref()
                .ok_or_else(|| "image manifest has no layers".to_owned())?;
            if raw.manifests.is_some() {
                return Err("image manifest has a manifests list".to_owned());
            }
            let config = reference(config, "application/octet-stream")?;
            if artifact_type.is_none() && resolved_type == OCI_MANIFEST {
                artifact_type = Some(config.media_type.clone());
            }
            let layers = layers
                .iter()
                .map(|layer| reference(layer, "application/octet-stream"))
                .collect::<Result<Vec<_>, _>>()?;
            ManifestContent::Image { config, layers }
        }
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let manifests = raw
                .manifests
                .as_ref()
                .ok_or_else(|| "index has no manifests".to_owned())?;
            let manifests = manifests
                .iter()
                .map(|child| reference(child, OCI_MANIFEST))
                .collect::<Result<Vec<_>, _>>()?;
            ManifestContent::Index { manifests }
        }
        other => {
            return Err(format!(
                "media type {other:?} is not a supported manifest type"
            ));
        }
    };
    let subject = match &raw.subject {
        Some(subject) => Some(reference(subject, OCI_MANIFEST)?.digest),
        None => None,
    };
    Ok(Manifest {
        media_type: resolved_type,
        declared_media_type: raw.media_type,
        artifact_type,
        subject,
        content,
    })
}

fn parse_digest(text: &str, what: &str) -> Result<Digest, ImageError> {
    text.parse()
        .map_err(|error| ImageError::bad(what.to_owned(), error))
}

fn sha256_of(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(bytes))
}

/// Picks the manifest for `platform` among an index's entries: the entry that
/// declares it; else, when no platform was asked for explicitly (`platform` is then
/// the host's), the linux/amd64 entry, else the one image entry that declares no
/// platform (attestations and other attached artifacts are never picked). Every
/// surface that reads an index (local images, the registry's scans, remote images)
/// picks here.
fn pick_platform<'a>(
    manifests: &'a [Reference],
    platform: &Platform,
    explicit: bool,
) -> Result<&'a Reference, ImageError> {
    let declaring = |wanted: &Platform| {
        manifests
            .iter()
            .find(|entry| entry.platform.as_ref().is_some_and(|p| wanted.matches(p)))
    };
    let fallback = Platform::fallback();
    let found = match declaring(platform) {
        Some(found) => Some(found),
        None if !explicit => declaring(&fallback),
        None => None,
    };
    if let Some(found) = found {
        return Ok(found);
    }
    let unplatformed: Vec<&Reference> = manifests
        .iter()
        .filter(|entry| entry.platform.is_none() && !entry.attached)
        .collect();
    if !explicit && let [only] = unplatformed.as_slice() {
        return Ok(only);
    }
    let available: Vec<String> = manifests
        .iter()
        .filter_map(|entry| entry.platform.as_ref().map(describe_platform))
        .collect();
    let wanted = if explicit || *platform == fallback {
        platform.to_string()
    } else {
        format!("{platform} or {fallback}")
    };
    Err(ImageError::PlatformNotFound {
        platform: wanted,
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// Resolves the manifest or index `digest` to one image: an index is followed to the
/// manifest for `platform` (`os/architecture[/variant]`; the host's when `None`,
/// else linux/amd64),
/// the manifest's configuration is read, and the layer count and declared size are
/// checked against `limits`. `bytes` are the manifest's bytes when the caller already
/// has them, `media_type` what it knows of its type. Every scan resolves its image
/// here, whatever holds the blobs.
pub fn resolve_manifest(
    blobs: &dyn BlobSource,
    digest: &Digest,
    bytes: Option<&[u8]>,
    media_type: Option<&str>,
    platform: Option<&str>,
    limits: &Limits,
) -> Result<ImageInfo, ImageError> {
    let (platform, explicit) = Platform::parse(platform)?;
    let mut current = digest.clone();
    let mut current_type = media_type.map(str::to_owned);
    let mut owned;
    let mut current_bytes: &[u8] = match bytes {
        Some(bytes) => bytes,
        None => {
            owned = read_metadata(blobs, digest, "manifest", limits.max_manifest_bytes)?;
            &owned
        }
    };
    let mut depth = 0;
    let (manifest, config, layers) = loop {
        let manifest = parse_manifest(current_bytes, current_type.as_deref())
            .map_err(|detail| ImageError::bad(format!("manifest {current}"), detail))?;
        match &manifest.content {
            ManifestContent::Image { config, layers } => {
                let (config, layers) = (config.clone(), layers.clone());
                break (manifest, config, layers);
            }
            ManifestContent::Index { manifests } => {
                depth += 1;
                if depth > MAX_INDEX_DEPTH {
                    return Err(ImageError::bad(
                        format!("index {current}"),
                        "indexes nest too deeply",
                    ));
                }
                let entry = pick_platform(manifests, &platform, explicit)?;
                current = entry.digest.clone();
                current_type = Some(entry.media_type.clone());
                owned = read_metadata(blobs, &current, "manifest", limits.max_manifest_bytes)?;
                current_bytes = &owned;
            }
        }
    };
    check_declared(layers.iter().map(|layer| layer.size), limits)?;
    let config_bytes = read_metadata(blobs, &config.digest, "config", MAX_CONFIG_BYTES)?;
    let config_wire = parse_config(&config_bytes, &config.digest)?;
    let diff_ids = diff_ids(&config_wire, &config.digest, layers.len())?;
    let layers = layers
        .into_iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| LayerInfo {
            digest: layer.digest,
            diff_id,
            media_type: layer.media_type,
            size: layer.size,
            foreign: layer.foreign,
        })
        .collect();
    Ok(ImageInfo {
        source: String::new(),
        manifest_digest: Some(current),
        config_digest: Some(config.digest),
        media_type: Some(manifest.media_type),
        os: config_wire.os,
        architecture: config_wire.architecture,
        layers,
        created: config_wire.created,
        repo_tags: Vec::new(),
    })
}

/// The configuration's diff IDs, one per layer: a configuration that lists them
/// must list one for each layer.
fn diff_ids(
    config: &ConfigWire,
    config_digest: &Digest,
    layers: usize,
) -> Result<Vec<Option<Digest>>, ImageError> {
    let listed = config
        .rootfs
        .as_ref()
        .map(|rootfs| rootfs.diff_ids.as_slice())
        .unwrap_or_default();
    if listed.is_empty() {
        return Ok(vec![None; layers]);
    }
    if listed.len() != layers {
        return Err(ImageError::bad(
            format!("config {config_digest}"),
            format!("it lists {} diff IDs for {layers} layers", listed.len()),
        ));
    }
    listed
        .iter()
        .map(|text| parse_digest(text, "config diff ID").map(Some))
        .collect()
}

/// Resolves an OCI image layout (a directory or an archive) to one image: the
/// `index.json` entry named by `tag` (or its only entry, or the one for the
/// platform), then [`resolve_manifest`].
pub(crate) fn resolve_oci(
    blobs: &LocalBlobs,
    source_name: &str,
    tag: Option<&str>,
    platform_text: Option<&str>,
    limits: &Limits,
) -> Result<ImageInfo, ImageError> {
    let (platform, explicit) = Platform::parse(platform_text)?;
    let index_bytes = blobs
        .container()
        .read_small("index.json", MAX_CONFIG_BYTES)?;
    let index = match parse_manifest(&index_bytes, Some(OCI_INDEX))
        .map_err(|detail| ImageError::bad("index.json", detail))?
        .content
    {
        ManifestContent::Index { manifests } => manifests,
        ManifestContent::Image { .. } => {
            return Err(ImageError::bad("index.json", "it is not an image index"));
        }
    };
    let candidates: Vec<Reference> = match tag {
        Some(tag) => index
            .iter()
            .filter(|entry| entry.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
            .cloned()
            .collect(),
        None => index.clone(),
    };
    let tags = || {
        let names: Vec<&str> = index
            .iter()
            .filter_map(|entry| entry.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let chosen: &Reference = match candidates.as_slice() {
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
    let mut info = resolve_manifest(
        blobs,
        &chosen.digest,
        None,
        Some(&chosen.media_type),
        platform_text,
        limits,
    )?;
    info.source = source_name.to_owned();
    info.repo_tags = repo_tags;
    Ok(info)
}

/// Checks the layer count and the declared compressed size of an image's layers
/// (`sizes`) against `limits`, before any layer is read.
pub(crate) fn check_declared(
    sizes: impl ExactSizeIterator<Item = u64>,
    limits: &Limits,
) -> Result<(), ImageError> {
    check_layer_count(sizes.len(), limits)?;
    if sizes.fold(0, u64::saturating_add) > limits.max_image_bytes {
        return Err(ImageError::ImageTooLarge {
            limit: limits.max_image_bytes,
        });
    }
    Ok(())
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

/// The digest a docker archive member's name carries (`blobs/sha256/<hex>`).
fn digest_from_member(name: &str) -> Option<Digest> {
    let name = crate::container::member_name(name);
    if let Some(rest) = name.strip_prefix("blobs/")
        && let Some((algorithm, hex)) = rest.split_once('/')
    {
        return format!("{algorithm}:{hex}").parse().ok();
    }
    None
}

/// Resolves a docker archive (`docker save`) to its first image, and tells `blobs`
/// which member holds each layer.
pub(crate) fn resolve_docker(
    blobs: &mut LocalBlobs,
    source_name: &str,
    limits: &Limits,
) -> Result<ImageInfo, ImageError> {
    let container = blobs.container();
    let bytes = container.read_small("manifest.json", MAX_CONFIG_BYTES)?;
    let entries: Vec<DockerManifestWire> =
        serde_json::from_slice(&bytes).map_err(|error| ImageError::bad("manifest.json", error))?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(ImageError::bad("manifest.json", "it lists no images"));
    };
    check_layer_count(entry.layers.len(), limits)?;
    let config_bytes = container.read_small(&entry.config, MAX_CONFIG_BYTES)?;
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
    let diff_ids = diff_ids(&config, &config_digest, entry.layers.len())?;
    let mut layers = Vec::new();
    let mut names = Vec::new();
    for (index, member) in entry.layers.iter().enumerate() {
        let diff_id = diff_ids.get(index).cloned().flatten();
        let (digest, check) = match digest_from_member(member) {
            Some(digest) => (digest, BlobCheck::Digest),
            None => match &diff_id {
                Some(diff_id) => (diff_id.clone(), BlobCheck::UncompressedDigest),
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
            digest: digest.clone(),
            diff_id,
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            size,
            foreign: false,
        });
        names.push((digest, member.clone(), check));
    }
    for (digest, member, check) in names {
        if blob_member(&digest) != crate::container::member_name(&member) {
            blobs.name(digest, member, check);
        }
    }
    Ok(ImageInfo {
        source: source_name.to_owned(),
        manifest_digest: None,
        config_digest: Some(config_digest),
        media_type: None,
        os: config.os,
        architecture: config.architecture,
        layers,
        created: config.created,
        repo_tags: entry.repo_tags.unwrap_or_default(),
    })
}
