//! The few fields of OCI and Docker manifests and indexes a copy needs (scans parse
//! with crscan-image; a remote scan takes only blob sizes from here): which blobs and
//! child manifests a manifest names, and the platforms of an index
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/image-index.md>). The bytes
//! stay as served; these types are only read from them.

use serde::Deserialize;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` list for manifests: every kind this client understands.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A descriptor: what a manifest says about a blob or a child manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<PlatformField>,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PlatformField {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default, rename = "blobs")]
    artifact_blobs: Vec<Descriptor>,
}

/// A manifest or an index, as far as copying and picking go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An image (or artifact) manifest: the config and layer blobs.
    Image {
        config: Option<Descriptor>,
        layers: Vec<Descriptor>,
    },
    /// An index or manifest list: child manifests.
    Index { manifests: Vec<Descriptor> },
}

impl Parsed {
    /// Reads a manifest's bytes; `content_type` is what the registry said, used when
    /// the document does not say its own media type.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(Parsed, String), String> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        let media_type = raw
            .media_type
            .clone()
            .or_else(|| {
                content_type.map(|value| value.split(';').next().unwrap_or("").trim().to_owned())
            })
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| {
                if raw.manifests.is_some() {
                    OCI_INDEX.to_owned()
                } else {
                    OCI_MANIFEST.to_owned()
                }
            });
        let parsed = match raw.manifests {
            Some(manifests) => Parsed::Index { manifests },
            None => {
                let mut layers = raw.layers;
                layers.extend(raw.artifact_blobs);
                Parsed::Image {
                    config: raw.config,
                    layers,
                }
            }
        };
        Ok((parsed, media_type))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_manifests_and_indexes() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let (parsed, media_type) = Parsed::parse(index, None).unwrap();
        assert_eq!(media_type, OCI_INDEX);
        // Which entry a scan reads is crscan-image's rule (its index tests); here,
        // only that every entry and its platform are read.
        let Parsed::Index { manifests } = parsed else {
            panic!()
        };
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].digest, "sha256:a");
        assert_eq!(
            manifests[0].platform.as_ref().map(|p| p.variant.as_deref()),
            Some(Some("v8"))
        );
        let image = br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":2},"layers":[{"digest":"sha256:d","size":3}]}"#;
        let (parsed, media_type) = Parsed::parse(image, Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(media_type, DOCKER_MANIFEST);
        assert!(matches!(parsed, Parsed::Image { layers, .. } if layers.len() == 1));
    }
}
