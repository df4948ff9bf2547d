//! What the registry needs from the four manifest kinds it stores (OCI image
//! manifests and indexes, Docker image manifest V2 schema 2 and manifest lists): the
//! blobs each refers to, in the registry's terms. Parsing is `crscan-image`'s
//! [`crscan_image::parse_manifest`], the one parser every scan uses too, so that the
//! registry accepts exactly what a scan can read.

use std::collections::BTreeMap;

use crscan_image::{Manifest, ManifestContent, Reference};
use crscan_model::Digest;
use crscan_store::BlobRole;
use serde::Deserialize;

use crate::RegistryError;

pub use crscan_image::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

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

fn reference(role: BlobRole, reference: &Reference) -> (BlobRole, Digest, i64, String) {
    (
        role,
        reference.digest.clone(),
        i64::try_from(reference.size).unwrap_or(i64::MAX),
        reference.media_type.clone(),
    )
}

/// Parses and checks a manifest. `content_type` is the request's `Content-Type`; when
/// both it and the manifest's `mediaType` are present they must agree.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ParsedManifest, RegistryError> {
    let content_type = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim())
        .filter(|value| {
            !value.is_empty()
                && *value != "application/json"
                && *value != "application/octet-stream"
        });
    let manifest: Manifest = crscan_image::parse_manifest(bytes, content_type)
        .map_err(RegistryError::ManifestInvalid)?;
    if let (Some(declared), Some(header)) = (&manifest.declared_media_type, content_type)
        && declared != header
    {
        return Err(RegistryError::ManifestInvalid(format!(
            "mediaType {declared} does not match Content-Type {header}"
        )));
    }
    let mut references = Vec::new();
    let mut foreign = Vec::new();
    match &manifest.content {
        ManifestContent::Image { config, layers } => {
            references.push(reference(BlobRole::Config, config));
            for layer in layers {
                if layer.foreign {
                    foreign.push(layer.digest.clone());
                }
                references.push(reference(BlobRole::Layer, layer));
            }
        }
        ManifestContent::Index { manifests } => {
            for child in manifests {
                references.push(reference(BlobRole::Child, child));
            }
        }
    }
    Ok(ParsedManifest {
        media_type: manifest.media_type,
        artifact_type: manifest.artifact_type,
        subject: manifest.subject,
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
