//! The few fields of OCI and Docker manifests and indexes a copy or a scan needs:
//! which blobs and child manifests a manifest names, and the platforms of an index
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

/// The platform this program runs on, in OCI's words (`linux/amd64`).
pub fn host_platform() -> String {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{architecture}")
}

/// The child of an index that `wanted` (`os/arch[/variant]`) names; without `wanted`,
/// the host's platform, falling back to `linux/amd64`.
pub fn pick_platform<'a>(
    manifests: &'a [Descriptor],
    wanted: Option<&str>,
) -> Result<&'a Descriptor, String> {
    let matches = |text: &str, descriptor: &Descriptor| {
        let mut parts = text.split('/');
        let os = parts.next().unwrap_or("");
        let architecture = parts.next().unwrap_or("");
        let variant = parts.next();
        descriptor.platform.as_ref().is_some_and(|platform| {
            platform.os == os
                && platform.architecture == architecture
                && (variant.is_none() || platform.variant.as_deref() == variant)
        })
    };
    let available = || {
        manifests
            .iter()
            .filter_map(|descriptor| descriptor.platform.as_ref())
            .map(|platform| match &platform.variant {
                Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
                None => format!("{}/{}", platform.os, platform.architecture),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(text) => manifests
            .iter()
            .find(|descriptor| matches(text, descriptor))
            .ok_or_else(|| format!("the index has no {text} image (it has: {})", available())),
        None => {
            let host = host_platform();
            manifests
                .iter()
                .find(|descriptor| matches(&host, descriptor))
                .or_else(|| {
                    manifests
                        .iter()
                        .find(|descriptor| matches("linux/amd64", descriptor))
                })
                .ok_or_else(|| {
                    format!(
                        "the index has neither a {host} nor a linux/amd64 image (it has: {}); \
                         choose one with --platform",
                        available()
                    )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_picks() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let (parsed, media_type) = Parsed::parse(index, None).unwrap();
        assert_eq!(media_type, OCI_INDEX);
        let Parsed::Index { manifests } = parsed else {
            panic!()
        };
        assert_eq!(
            pick_platform(&manifests, Some("linux/arm64"))
                .unwrap()
                .digest,
            "sha256:a"
        );
        assert_eq!(
            pick_platform(&manifests, Some("linux/arm64/v8"))
                .unwrap()
                .digest,
            "sha256:a"
        );
        assert!(
            pick_platform(&manifests, Some("linux/s390x"))
                .unwrap_err()
                .contains("linux/arm64/v8")
        );
        assert!(pick_platform(&manifests, None).is_ok());
        let image = br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":2},"layers":[{"digest":"sha256:d","size":3}]}"#;
        let (parsed, media_type) = Parsed::parse(image, Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(media_type, DOCKER_MANIFEST);
        assert!(matches!(parsed, Parsed::Image { layers, .. } if layers.len() == 1));
    }
}
