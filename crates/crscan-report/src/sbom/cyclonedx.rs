//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>).
//!
//! The image is `metadata.component` (type `container`), crscan is in
//! `metadata.tools.components`. The operating system, when detected, is a component of
//! type `operating-system`; every package is a `library` component whose `bom-ref` is
//! its Package URL (made unique with a `#n` suffix if two packages share one).
//! Facts CycloneDX has no field for go into `properties`, named `crscan:…`:
//! the package type, the source package and version, the installing layer, each
//! location, and whether a lockfile marks the package as development-only.
//! `dependencies` say that the image contains the OS and the language packages, and
//! that the OS contains the OS packages.

use std::collections::HashSet;

use crscan_model::Package;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::SbomDocument;
use crate::ReportError;

/// The `bom-ref` of the image component.
const IMAGE_REF: &str = "crscan:image";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    #[serde(rename = "type")]
    component_type: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct LicenseChoice {
    license: License,
}

#[derive(Serialize)]
struct License {
    name: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

fn property(name: &'static str, value: impl Into<String>) -> Property {
    Property {
        name,
        value: value.into(),
    }
}

/// Renders the BOM, pretty-printed, with a final newline.
pub fn render(document: &SbomDocument) -> Result<String, ReportError> {
    let bom = build(document);
    let mut text = serde_json::to_string_pretty(&bom).map_err(|source| ReportError::Serialize {
        format: "CycloneDX",
        source,
    })?;
    text.push('\n');
    Ok(text)
}

fn build(document: &SbomDocument) -> Bom {
    let subject = &document.subject;
    let mut image_properties = Vec::new();
    if let Some(digest) = &subject.manifest_digest {
        image_properties.push(property("crscan:image:manifest_digest", digest.to_string()));
    }
    if let Some(digest) = &subject.config_digest {
        image_properties.push(property("crscan:image:config_digest", digest.to_string()));
    }
    for tag in &subject.repo_tags {
        image_properties.push(property("crscan:image:repo_tag", tag.clone()));
    }
    if let Some(os) = &subject.os {
        image_properties.push(property("crscan:image:os", os.clone()));
    }
    if let Some(architecture) = &subject.architecture {
        image_properties.push(property("crscan:image:architecture", architecture.clone()));
    }
    for layer in &subject.layers {
        image_properties.push(property(
            "crscan:image:layer_digest",
            layer.digest.to_string(),
        ));
    }
    let image = Component {
        bom_ref: Some(IMAGE_REF.to_owned()),
        component_type: "container",
        name: subject.display_name().to_owned(),
        version: subject.manifest_digest.as_ref().map(ToString::to_string),
        purl: None,
        licenses: Vec::new(),
        properties: image_properties,
    };
    let tool = Component {
        bom_ref: None,
        component_type: "application",
        name: document.generator.tool_name.clone(),
        version: Some(document.generator.tool_version.clone()),
        purl: None,
        licenses: Vec::new(),
        properties: Vec::new(),
    };

    let mut components = Vec::new();
    let mut image_depends = Vec::new();
    let mut os_depends = Vec::new();
    let os_ref = document.inventory.os.as_ref().map(|os| {
        let reference = format!("crscan:os:{}@{}", os.id, os.version_id);
        let mut properties = Vec::new();
        if let Some(codename) = &os.codename {
            properties.push(property("crscan:os:codename", codename.clone()));
        }
        if os.inferred {
            properties.push(property("crscan:os:inferred", "true"));
        }
        components.push(Component {
            bom_ref: Some(reference.clone()),
            component_type: "operating-system",
            name: os.id.clone(),
            version: Some(os.version_id.clone()).filter(|v| !v.is_empty()),
            purl: None,
            licenses: Vec::new(),
            properties,
        });
        image_depends.push(reference.clone());
        reference
    });

    let mut used_refs: HashSet<String> = HashSet::new();
    for package in &document.inventory.packages {
        let bom_ref = unique_ref(&mut used_refs, &package.purl);
        match (&os_ref, package.package_type.is_os()) {
            (Some(_), true) => os_depends.push(bom_ref.clone()),
            _ => image_depends.push(bom_ref.clone()),
        }
        components.push(package_component(document, package, bom_ref));
    }

    let mut dependencies = vec![Dependency {
        reference: IMAGE_REF.to_owned(),
        depends_on: image_depends,
    }];
    if let Some(os_ref) = os_ref {
        dependencies.push(Dependency {
            reference: os_ref,
            depends_on: os_depends,
        });
    }

    Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: serial_number(document),
        version: 1,
        metadata: Metadata {
            timestamp: document.created_rfc3339(),
            tools: Tools {
                components: vec![tool],
            },
            component: image,
        },
        components,
        dependencies,
    }
}

fn package_component(document: &SbomDocument, package: &Package, bom_ref: String) -> Component {
    let mut properties = vec![property(
        "crscan:package:type",
        package.package_type.as_str(),
    )];
    if let Some(name) = &package.source_name {
        properties.push(property("crscan:package:source_name", name.clone()));
    }
    if let Some(version) = &package.source_version {
        properties.push(property("crscan:package:source_version", version.clone()));
    }
    if let Some(epoch) = package.epoch {
        properties.push(property("crscan:package:epoch", epoch.to_string()));
    }
    if let Some(arch) = &package.arch {
        properties.push(property("crscan:package:arch", arch.clone()));
    }
    if let Some(digest) = &package.layer_digest {
        properties.push(property("crscan:package:layer_digest", digest.to_string()));
        if let Some(index) = document.subject.layer_index(digest) {
            properties.push(property("crscan:package:layer_index", index.to_string()));
        }
    }
    for location in &package.locations {
        properties.push(property("crscan:package:location", location.clone()));
    }
    if package.dev {
        properties.push(property("crscan:package:dev", "true"));
    }
    Component {
        bom_ref: Some(bom_ref),
        component_type: "library",
        name: package.name.clone(),
        version: Some(package.version.clone()),
        purl: Some(package.purl.clone()).filter(|purl| !purl.is_empty()),
        licenses: package
            .license
            .iter()
            .filter(|license| !license.trim().is_empty())
            .map(|license| LicenseChoice {
                license: License {
                    name: license.clone(),
                },
            })
            .collect(),
        properties,
    }
}

/// The package URL as a `bom-ref`, with `#2`, `#3`… appended when the same URL was
/// already used (the same package found at two locations).
fn unique_ref(used: &mut HashSet<String>, purl: &str) -> String {
    let base = if purl.is_empty() {
        "crscan:package"
    } else {
        purl
    };
    let mut candidate = base.to_owned();
    let mut counter = 1;
    while used.contains(&candidate) {
        counter += 1;
        candidate = format!("{base}#{counter}");
    }
    used.insert(candidate.clone());
    candidate
}

/// A deterministic `urn:uuid:` serial: the first 16 bytes of a SHA-256 over the
/// document identity and the tool version, shaped as an RFC 9562 version 8 UUID.
fn serial_number(document: &SbomDocument) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"crscan cyclonedx\0");
    hasher.update(document.identity_hex().as_bytes());
    hasher.update([0]);
    hasher.update(document.generator.tool_version.as_bytes());
    let hash = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
