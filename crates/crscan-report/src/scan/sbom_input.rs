//! Reading back a CycloneDX document that crscan wrote, so that a stored inventory can
//! be matched again (`crscan scan --sbom FILE`) without reading the image.
//!
//! It undoes [`crate::sbom::cyclonedx`]: the image from `metadata.component` and its
//! `crscan:image:…` properties, the OS from the `operating-system` component, and
//! each package from a component's name, version, purl, licence and
//! `crscan:package:…` properties. A component without a package type (no
//! `crscan:package:type` and no purl) is skipped with a diagnostic; a document that
//! is not CycloneDX JSON is an error.

use crscan_model::{Diagnostic, Digest, Inventory, OsRelease, Package, PackageType};
use serde_json::Value;

use crate::sbom::{Subject, SubjectLayer};

/// Why a document cannot be read as an SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomInputError {
    #[error("the SBOM is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the SBOM is not a CycloneDX document (bomFormat is {0})")]
    NotCycloneDx(String),
}

/// The detector name on diagnostics about skipped components.
const DETECTOR: &str = "cyclonedx";

/// Reads the image and the inventory from a CycloneDX JSON document.
pub fn read_cyclonedx(text: &str) -> Result<(Subject, Inventory), SbomInputError> {
    let bom: Value = serde_json::from_str(text).map_err(SbomInputError::NotJson)?;
    if bom["bomFormat"] != "CycloneDX" {
        return Err(SbomInputError::NotCycloneDx(bom["bomFormat"].to_string()));
    }
    let mut diagnostics = Vec::new();
    let subject = subject(&bom["metadata"]["component"], &mut diagnostics);
    let mut os = None;
    let mut packages = Vec::new();
    for component in bom["components"].as_array().into_iter().flatten() {
        if component["type"] == "operating-system" {
            os = Some(os_release(component));
        } else if let Some(package) = package(component, &mut diagnostics) {
            packages.push(package);
        }
    }
    Ok((
        subject,
        Inventory {
            os,
            packages,
            diagnostics,
        },
    ))
}

/// The `value`s of the properties called `name`, in document order.
fn properties<'a>(component: &'a Value, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    component["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |property| property["name"] == name)
        .filter_map(|property| property["value"].as_str())
}

fn first_property(component: &Value, name: &str) -> Option<String> {
    properties(component, name).next().map(str::to_owned)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// A digest property, or a diagnostic naming the bad value.
fn digest_property(
    component: &Value,
    name: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Digest> {
    let value = first_property(component, name)?;
    parse_digest(&value, component, name, diagnostics)
}

fn parse_digest(
    value: &str,
    component: &Value,
    name: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Digest> {
    match value.parse::<Digest>() {
        Ok(digest) => Some(digest),
        Err(error) => {
            diagnostics.push(Diagnostic {
                detector: DETECTOR.to_owned(),
                path: component["bom-ref"].as_str().unwrap_or("").to_owned(),
                message: format!("property {name} has a bad digest {value:?}: {error}"),
            });
            None
        }
    }
}

fn subject(component: &Value, diagnostics: &mut Vec<Diagnostic>) -> Subject {
    let layers = properties(component, "crscan:image:layer_digest")
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|value| {
            parse_digest(&value, component, "crscan:image:layer_digest", diagnostics)
        })
        .map(|digest| SubjectLayer {
            digest,
            diff_id: None,
            size: 0,
            media_type: String::new(),
        })
        .collect();
    Subject {
        name: text(&component["name"]).unwrap_or_default(),
        manifest_digest: digest_property(component, "crscan:image:manifest_digest", diagnostics),
        config_digest: digest_property(component, "crscan:image:config_digest", diagnostics),
        repo_tags: properties(component, "crscan:image:repo_tag")
            .map(str::to_owned)
            .collect(),
        os: first_property(component, "crscan:image:os"),
        architecture: first_property(component, "crscan:image:architecture"),
        created: None,
        layers,
    }
}

fn os_release(component: &Value) -> OsRelease {
    OsRelease {
        id: text(&component["name"]).unwrap_or_default(),
        version_id: text(&component["version"]).unwrap_or_default(),
        codename: first_property(component, "crscan:os:codename"),
        pretty_name: None,
        id_like: Vec::new(),
        platform_id: None,
        inferred: first_property(component, "crscan:os:inferred").as_deref() == Some("true"),
    }
}

fn package(component: &Value, diagnostics: &mut Vec<Diagnostic>) -> Option<Package> {
    let reference = component["bom-ref"].as_str().unwrap_or("").to_owned();
    let mut skip = |message: String| {
        diagnostics.push(Diagnostic {
            detector: DETECTOR.to_owned(),
            path: reference.clone(),
            message,
        });
    };
    let name = text(&component["name"])?;
    let purl = text(&component["purl"]).unwrap_or_default();
    let type_text = first_property(component, "crscan:package:type").or_else(|| {
        purl.strip_prefix("pkg:")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
    });
    let Some(type_text) = type_text else {
        skip(format!(
            "component {name:?} has neither a crscan:package:type nor a purl"
        ));
        return None;
    };
    let package_type = match type_text.parse::<PackageType>() {
        Ok(package_type) => package_type,
        Err(message) => {
            skip(format!("component {name:?}: {message}"));
            return None;
        }
    };
    let epoch = match first_property(component, "crscan:package:epoch") {
        Some(value) => match value.parse::<u64>() {
            Ok(epoch) => Some(epoch),
            Err(_) => {
                skip(format!("component {name:?} has a bad epoch {value:?}"));
                None
            }
        },
        None => None,
    };
    let layer_digest = digest_property(component, "crscan:package:layer_digest", diagnostics);
    let license = component["licenses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|choice| {
            text(&choice["license"]["name"]).or_else(|| text(&choice["license"]["id"]))
        })
        .or_else(|| {
            component["licenses"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|choice| text(&choice["expression"]))
        });
    Some(Package {
        name,
        version: text(&component["version"]).unwrap_or_default(),
        package_type,
        purl,
        source_name: first_property(component, "crscan:package:source_name"),
        source_version: first_property(component, "crscan:package:source_version"),
        epoch,
        arch: first_property(component, "crscan:package:arch"),
        license,
        layer_digest,
        locations: properties(component, "crscan:package:location")
            .map(str::to_owned)
            .collect(),
        dev: first_property(component, "crscan:package:dev").as_deref() == Some("true"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{Generator, SbomDocument};

    #[test]
    fn reads_back_what_the_sbom_writes() {
        let layer: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let subject = Subject {
            name: "oci:/tmp/image:1".to_owned(),
            manifest_digest: Some(format!("sha256:{}", "cd".repeat(32)).parse().unwrap()),
            layers: vec![SubjectLayer {
                digest: layer.clone(),
                diff_id: None,
                size: 10,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
            }],
            ..Subject::default()
        };
        let package = Package {
            name: "libssl1.1".to_owned(),
            version: "1.1.1d-0+deb10u1".to_owned(),
            package_type: PackageType::Deb,
            purl: "pkg:deb/debian/libssl1.1@1.1.1d-0%2Bdeb10u1?arch=amd64".to_owned(),
            source_name: Some("openssl".to_owned()),
            source_version: None,
            epoch: None,
            arch: Some("amd64".to_owned()),
            license: Some("OpenSSL".to_owned()),
            layer_digest: Some(layer),
            locations: vec!["/var/lib/dpkg/status".to_owned()],
            dev: false,
        };
        let inventory = Inventory {
            os: Some(OsRelease {
                id: "debian".to_owned(),
                version_id: "10".to_owned(),
                codename: Some("buster".to_owned()),
                ..OsRelease::default()
            }),
            packages: vec![package.clone()],
            diagnostics: Vec::new(),
        };
        let document = SbomDocument::new(
            subject.clone(),
            inventory,
            Generator {
                tool_name: "crscan".to_owned(),
                tool_version: "0".to_owned(),
                created_unix_seconds: 0,
            },
        );
        let text = crate::sbom::cyclonedx::render(&document).unwrap();
        let (read_subject, read_inventory) = read_cyclonedx(&text).unwrap();
        assert_eq!(read_inventory.packages, vec![package]);
        assert_eq!(read_inventory.os, document.inventory.os);
        assert_eq!(read_subject.manifest_digest, subject.manifest_digest);
        assert_eq!(read_subject.layers[0].digest, subject.layers[0].digest);
    }

    #[test]
    fn rejects_other_documents() {
        assert!(matches!(
            read_cyclonedx("{\"spdxVersion\": \"SPDX-2.3\"}"),
            Err(SbomInputError::NotCycloneDx(_))
        ));
        assert!(matches!(
            read_cyclonedx("{"),
            Err(SbomInputError::NotJson(_))
        ));
    }
}
