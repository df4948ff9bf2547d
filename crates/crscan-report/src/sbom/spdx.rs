//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>).
//!
//! The document DESCRIBES one package for the image (purpose `CONTAINER`, its
//! manifest digest as a SHA256 checksum). The image CONTAINS the operating system
//! (purpose `OPERATING-SYSTEM`) when one was detected, and every package (purpose
//! `LIBRARY`, its Package URL as a `PACKAGE-MANAGER` external reference). SPDX has
//! no free-form properties, so the installing layer, the package type and the
//! locations are `OTHER` annotations by crscan, written `crscan:NAME=VALUE`.
//! Files are not analysed (`filesAnalyzed: false`), and licences are not concluded.
//!
//! The `documentNamespace` is derived from the image digest (see
//! [`SbomDocument::identity_hex`]), so the same image gives the same namespace.

use crscan_model::Package;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::SbomDocument;
use crate::ReportError;

const IMAGE_ID: &str = "SPDXRef-Image";
const OS_ID: &str = "SPDXRef-OperatingSystem";
const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<Annotation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Annotation {
    annotation_date: String,
    annotation_type: &'static str,
    annotator: String,
    comment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// Renders the document, pretty-printed, with a final newline.
pub fn render(document: &SbomDocument) -> Result<String, ReportError> {
    let wire = build(document);
    let mut text =
        serde_json::to_string_pretty(&wire).map_err(|source| ReportError::Serialize {
            format: "SPDX",
            source,
        })?;
    text.push('\n');
    Ok(text)
}

fn build(document: &SbomDocument) -> Document {
    let created = document.created_rfc3339();
    let tool = format!(
        "Tool: {}-{}",
        document.generator.tool_name, document.generator.tool_version
    );
    let annotate = |comment: String| Annotation {
        annotation_date: created.clone(),
        annotation_type: "OTHER",
        annotator: tool.clone(),
        comment,
    };
    let subject = &document.subject;

    let mut image_annotations = Vec::new();
    if let Some(digest) = &subject.config_digest {
        image_annotations.push(annotate(format!("crscan:image:config_digest={digest}")));
    }
    for layer in &subject.layers {
        image_annotations.push(annotate(format!(
            "crscan:image:layer_digest={}",
            layer.digest
        )));
    }
    let image = SpdxPackage {
        spdx_id: IMAGE_ID.to_owned(),
        name: subject.display_name().to_owned(),
        version_info: subject.manifest_digest.as_ref().map(ToString::to_string),
        download_location: NOASSERTION,
        files_analyzed: false,
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION,
        license_comments: None,
        copyright_text: NOASSERTION,
        source_info: None,
        primary_package_purpose: "CONTAINER",
        checksums: subject
            .manifest_digest
            .iter()
            .filter(|digest| digest.algorithm() == crscan_model::DigestAlgorithm::Sha256)
            .map(|digest| Checksum {
                algorithm: "SHA256",
                checksum_value: digest.hex().to_owned(),
            })
            .collect(),
        external_refs: Vec::new(),
        annotations: image_annotations,
    };

    let mut packages = vec![image];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".to_owned(),
        relationship_type: "DESCRIBES",
        related_spdx_element: IMAGE_ID.to_owned(),
    }];
    let contains = |id: String| Relationship {
        spdx_element_id: IMAGE_ID.to_owned(),
        relationship_type: "CONTAINS",
        related_spdx_element: id,
    };

    if let Some(os) = &document.inventory.os {
        packages.push(SpdxPackage {
            spdx_id: OS_ID.to_owned(),
            name: os.id.clone(),
            version_info: Some(os.version_id.clone()).filter(|v| !v.is_empty()),
            download_location: NOASSERTION,
            files_analyzed: false,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION,
            license_comments: None,
            copyright_text: NOASSERTION,
            source_info: None,
            primary_package_purpose: "OPERATING-SYSTEM",
            checksums: Vec::new(),
            external_refs: Vec::new(),
            annotations: Vec::new(),
        });
        relationships.push(contains(OS_ID.to_owned()));
    }

    for (index, package) in document.inventory.packages.iter().enumerate() {
        let spdx_id = package_id(index, package);
        relationships.push(contains(spdx_id.clone()));
        let mut annotations = vec![annotate(format!(
            "crscan:package:type={}",
            package.package_type
        ))];
        if let Some(digest) = &package.layer_digest {
            annotations.push(annotate(format!("crscan:package:layer_digest={digest}")));
        }
        for location in &package.locations {
            annotations.push(annotate(format!("crscan:package:location={location}")));
        }
        if package.dev {
            annotations.push(annotate("crscan:package:dev=true".to_owned()));
        }
        let source_info = package.source_name.as_ref().map(|name| {
            format!(
                "built from source package {name} {}",
                package.source_version_or_version()
            )
        });
        packages.push(SpdxPackage {
            spdx_id,
            name: package.name.clone(),
            version_info: Some(package.version.clone()).filter(|v| !v.is_empty()),
            download_location: NOASSERTION,
            files_analyzed: false,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION,
            license_comments: package
                .license
                .as_ref()
                .filter(|license| !license.trim().is_empty())
                .map(|license| format!("declared by the package as: {license}")),
            copyright_text: NOASSERTION,
            source_info,
            primary_package_purpose: "LIBRARY",
            checksums: Vec::new(),
            external_refs: if package.purl.is_empty() {
                Vec::new()
            } else {
                vec![ExternalRef {
                    reference_category: "PACKAGE-MANAGER",
                    reference_type: "purl",
                    reference_locator: package.purl.clone(),
                }]
            },
            annotations,
        });
    }

    Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: subject.display_name().to_owned(),
        document_namespace: namespace(document),
        creation_info: CreationInfo {
            created,
            creators: vec![tool],
        },
        packages,
        relationships,
    }
}

/// `SPDXRef-Package-<position>-<type>-<name>`, with characters SPDX identifiers do
/// not allow replaced by `-`. The position (1-based, in the document's sorted order)
/// keeps identifiers unique.
fn package_id(index: usize, package: &Package) -> String {
    format!(
        "SPDXRef-Package-{}-{}-{}",
        index + 1,
        package.package_type,
        sanitize(&package.name)
    )
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `https://spdx.org/spdxdocs/crscan/<name>-<hash>`, the form the SPDX specification
/// suggests for tools without a namespace of their own; the hash is over the image
/// identity and the tool version.
fn namespace(document: &SbomDocument) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"crscan spdx\0");
    hasher.update(document.identity_hex().as_bytes());
    hasher.update([0]);
    hasher.update(document.generator.tool_version.as_bytes());
    let hex: String = hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "https://spdx.org/spdxdocs/crscan/{}-{hex}",
        sanitize(document.subject.display_name())
    )
}
