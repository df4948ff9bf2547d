//! Manifest parsing for the four manifest kinds crscan stores: OCI image manifests and
//! indexes (<https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md>,
//! `image-index.md`) and Docker image manifest V2 schema 2 and manifest lists
//! (<https://distribution.github.io/distribution/spec/manifest-v2-2/>).
//! The wire structs are private; callers get [`ParsedManifest`].

use std::collections::BTreeMap;

use crscan_model::Digest;
use crscan_store::BlobRole;
use serde::Deserialize;

use crate::RegistryError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
}

/// What crscan needs from a manifest.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// Config, layers or child manifests, in order, with size and media type.
    pub references: Vec<(BlobRole, Digest, i64, String)>,
    /// Layers that live elsewhere (`urls` on a foreign or non-distributable layer) and
    /// need not be in the registry.
    pub foreign: Vec<Digest>,
}

fn descriptor(
    raw: &RawDescriptor,
    role: BlobRole,
    default_media_type: &str,
) -> Result<(BlobRole, Digest, i64, String), RegistryError> {
    let digest = raw
        .digest
        .parse::<Digest>()
        .map_err(|error| RegistryError::ManifestInvalid(error.to_string()))?;
    if raw.size < 0 {
        return Err(RegistryError::ManifestInvalid(format!(
            "descriptor of {digest} has negative size {}",
            raw.size
        )));
    }
    let media_type = raw
        .media_type
        .clone()
        .unwrap_or_else(|| default_media_type.to_owned());
    Ok((role, digest, raw.size, media_type))
}

/// Parses and checks a manifest. `content_type` is the request's `Content-Type`; when
/// both it and the manifest's `mediaType` are present they must agree.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ParsedManifest, RegistryError> {
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|error| {
        RegistryError::ManifestInvalid(format!("manifest is not valid JSON: {error}"))
    })?;
    if raw.schema_version != Some(2) {
        return Err(RegistryError::ManifestInvalid(format!(
            "schemaVersion {:?} is not 2",
            raw.schema_version
        )));
    }
    let content_type = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim())
        .filter(|value| {
            !value.is_empty()
                && *value != "application/json"
                && *value != "application/octet-stream"
        });
    let media_type = match (&raw.media_type, content_type) {
        (Some(declared), Some(header)) if declared != header => {
            return Err(RegistryError::ManifestInvalid(format!(
                "mediaType {declared} does not match Content-Type {header}"
            )));
        }
        (Some(declared), _) => declared.clone(),
        (None, Some(header)) => header.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let mut references = Vec::new();
    let mut foreign = Vec::new();
    let mut artifact_type = raw.artifact_type.clone();
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw.config.as_ref().ok_or_else(|| {
                RegistryError::ManifestInvalid("image manifest has no config".to_owned())
            })?;
            let layers = raw.layers.as_ref().ok_or_else(|| {
                RegistryError::ManifestInvalid("image manifest has no layers".to_owned())
            })?;
            if raw.manifests.is_some() {
                return Err(RegistryError::ManifestInvalid(
                    "image manifest has a manifests list".to_owned(),
                ));
            }
            let config = descriptor(config, BlobRole::Config, "application/octet-stream")?;
            if artifact_type.is_none() && media_type == OCI_MANIFEST {
                artifact_type = Some(config.3.clone());
            }
            references.push(config);
            for layer in layers {
                let parsed = descriptor(layer, BlobRole::Layer, "application/octet-stream")?;
                let non_distributable =
                    parsed.3.contains("nondistributable") || parsed.3.contains("foreign");
                if non_distributable && !layer.urls.is_empty() {
                    foreign.push(parsed.1.clone());
                }
                references.push(parsed);
            }
        }
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let manifests = raw.manifests.as_ref().ok_or_else(|| {
                RegistryError::ManifestInvalid("index has no manifests".to_owned())
            })?;
            for child in manifests {
                references.push(descriptor(child, BlobRole::Child, OCI_MANIFEST)?);
            }
        }
        other => {
            return Err(RegistryError::ManifestInvalid(format!(
                "media type {other:?} is not a supported manifest type"
            )));
        }
    }
    let subject = match &raw.subject {
        Some(subject) => Some(descriptor(subject, BlobRole::Child, OCI_MANIFEST)?.1),
        None => None,
    };
    Ok(ParsedManifest {
        media_type,
        artifact_type,
        subject,
        references,
        foreign,
    })
}

/// The `annotations` object of a manifest, if it has one.
pub(crate) fn annotations(bytes: &[u8]) -> Option<serde_json::Value> {
    #[derive(Deserialize)]
    struct WithAnnotations {
        annotations: Option<BTreeMap<String, String>>,
    }
    let parsed: WithAnnotations = serde_json::from_slice(bytes).ok()?;
    let annotations = parsed.annotations?;
    serde_json::to_value(annotations).ok()
}

/// Whether a manifest of `media_type` may be returned to a client that sent these
/// `Accept` values. No `Accept` at all, or a wildcard, accepts anything; an old Docker
/// client that accepts nothing specific gets the manifest anyway, as other registries do.
pub fn media_type_accepted(media_type: &str, accept: &[String]) -> bool {
    let mut any = false;
    for value in accept {
        for item in value.split(',') {
            let item = item.split(';').next().unwrap_or_default().trim();
            if item.is_empty() {
                continue;
            }
            any = true;
            if item == media_type || item == "*/*" || item == "application/*" {
                return true;
            }
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const CONFIG: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_an_oci_manifest() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG}","size":7}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{LAYER}","size":9}}]}}"#
        );
        let parsed = parse_manifest(manifest.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(parsed.media_type, OCI_MANIFEST);
        assert_eq!(parsed.references.len(), 2);
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(parse_manifest(manifest.as_bytes(), Some(DOCKER_MANIFEST)).is_err());
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(parse_manifest(b"not json", None).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1}"#, None).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None).is_err());
        let bad_digest =
            r#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(matches!(
            parse_manifest(bad_digest.as_bytes(), None),
            Err(RegistryError::ManifestInvalid(_))
        ));
    }

    #[test]
    fn accept_negotiation() {
        assert!(media_type_accepted(OCI_INDEX, &[]));
        assert!(media_type_accepted(
            OCI_INDEX,
            &[format!("{DOCKER_MANIFEST}, {OCI_INDEX}")]
        ));
        assert!(!media_type_accepted(
            OCI_INDEX,
            &[DOCKER_MANIFEST.to_owned()]
        ));
        assert!(media_type_accepted(OCI_INDEX, &["*/*".to_owned()]));
    }
}
