//! Checks that crscan's SBOM documents are valid against the official JSON schemas
//! (CycloneDX 1.6 and SPDX 2.3, shipped under `tests/schemas/`), and that the
//! formats agree with each other on what the image contains.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crscan_model::{Diagnostic, Digest, Inventory, OsRelease, Package, PackageType, Purl};
use crscan_report::sbom::{Generator, SbomDocument, SbomFormat, Subject, SubjectLayer};
use serde_json::Value;

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemas");

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(SCHEMAS).join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The CycloneDX 1.6 validator, with the two schemas it references registered under
/// their `$id`s so that nothing is fetched. Format checks are off: they are
/// annotations in draft 7 and some would need network look-ups.
fn cyclonedx_validator() -> jsonschema::Validator {
    let mut options = jsonschema::options();
    options.with_draft(jsonschema::Draft::Draft7);
    options.should_validate_formats(false);
    for name in ["spdx.schema.json", "jsf-0.82.schema.json"] {
        let schema = load(name);
        let id = schema["$id"].as_str().unwrap().to_owned();
        options.with_resource(id, jsonschema::Resource::from_contents(schema).unwrap());
    }
    options.build(&load("bom-1.6.schema.json")).unwrap()
}

fn spdx_validator() -> jsonschema::Validator {
    let mut options = jsonschema::options();
    options.with_draft(jsonschema::Draft::Draft201909);
    options.should_validate_formats(false);
    options.build(&load("spdx-schema.json")).unwrap()
}

fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect()
}

fn digest(byte: &str) -> Digest {
    format!("sha256:{}", byte.repeat(32)).parse().unwrap()
}

fn deb(name: &str, version: &str, source: Option<(&str, Option<&str>)>, layer: &Digest) -> Package {
    Package {
        name: name.to_owned(),
        version: version.to_owned(),
        package_type: PackageType::Deb,
        purl: Purl::new(PackageType::Deb, name)
            .namespace("debian")
            .version(version)
            .qualifier("arch", "amd64")
            .qualifier("distro", "debian-12")
            .to_string(),
        source_name: source.map(|(name, _)| name.to_owned()),
        source_version: source.and_then(|(_, version)| version.map(str::to_owned)),
        epoch: None,
        arch: Some("amd64".to_owned()),
        license: None,
        layer_digest: Some(layer.clone()),
        locations: vec!["/var/lib/dpkg/status".to_owned()],
        dev: false,
    }
}

fn language(kind: PackageType, namespace: &str, name: &str, version: &str, at: &str) -> Package {
    let full_name = if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    };
    Package {
        name: full_name,
        version: version.to_owned(),
        package_type: kind,
        purl: Purl::new(kind, name)
            .namespace(namespace)
            .version(version)
            .to_string(),
        source_name: None,
        source_version: None,
        epoch: None,
        arch: None,
        license: Some("MIT OR Apache-2.0 (see LICENSE)".to_owned()),
        layer_digest: Some(digest("33")),
        locations: vec![at.to_owned()],
        dev: kind == PackageType::Npm,
    }
}

/// A Debian image with OS packages in the base layer, one package replaced in the
/// second layer, and Python, npm (the same package twice), Go and Rust packages on
/// top: the shapes the formats must handle.
fn realistic_document() -> SbomDocument {
    let base = digest("11");
    let second = digest("22");
    let subject = Subject {
        name: "oci:/tmp/layout:bookworm".to_owned(),
        manifest_digest: Some(digest("aa")),
        config_digest: Some(digest("bb")),
        repo_tags: vec!["example.test/debian:bookworm".to_owned()],
        os: Some("linux".to_owned()),
        architecture: Some("amd64".to_owned()),
        created: Some("2024-06-01T12:00:00Z".to_owned()),
        layers: vec![
            SubjectLayer {
                digest: base.clone(),
                diff_id: Some(digest("c1")),
                size: 29_000_000,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
            },
            SubjectLayer {
                digest: second.clone(),
                diff_id: Some(digest("c2")),
                size: 4_096,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
            },
            SubjectLayer {
                digest: digest("33"),
                diff_id: None,
                size: 1_000_000,
                media_type: "application/vnd.oci.image.layer.v1.tar+zstd".to_owned(),
            },
        ],
    };
    let packages = vec![
        language(
            PackageType::Npm,
            "@babel",
            "core",
            "7.24.0",
            "/app/node_modules/@babel/core/package.json",
        ),
        deb("libc6", "2.36-9+deb12u7", Some(("glibc", None)), &base),
        deb(
            "bash",
            "5.2.15-2+b7",
            Some(("bash", Some("5.2.15-2"))),
            &base,
        ),
        deb("zlib1g", "1:1.2.13.dfsg-1", Some(("zlib", None)), &second),
        deb("base-files", "12.4+deb12u6", None, &base),
        language(
            PackageType::Pypi,
            "",
            "requests",
            "2.32.3",
            "/usr/local/lib/python3.11/site-packages/requests-2.32.3.dist-info/METADATA",
        ),
        language(
            PackageType::Npm,
            "@babel",
            "core",
            "7.24.0",
            "/app/packages/web/node_modules/@babel/core/package.json",
        ),
        language(
            PackageType::Golang,
            "github.com/spf13",
            "cobra",
            "v1.8.0",
            "/usr/local/bin/app",
        ),
        language(
            PackageType::Golang,
            "",
            "stdlib",
            "go1.22.1",
            "/usr/local/bin/app",
        ),
        language(
            PackageType::Cargo,
            "",
            "serde",
            "1.0.203",
            "/src/Cargo.lock",
        ),
    ];
    let inventory = Inventory {
        os: Some(OsRelease {
            id: "debian".to_owned(),
            version_id: "12".to_owned(),
            codename: Some("bookworm".to_owned()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".to_owned()),
            id_like: Vec::new(),
            platform_id: None,
            inferred: false,
        }),
        packages,
        diagnostics: vec![Diagnostic {
            detector: "dpkg".to_owned(),
            path: "/var/lib/dpkg/status".to_owned(),
            message: "stanza 7 has no Version field".to_owned(),
        }],
    };
    let generator = Generator {
        tool_name: "crscan".to_owned(),
        tool_version: "0.1.0".to_owned(),
        created_unix_seconds: 1_717_243_200,
    };
    SbomDocument::new(subject, inventory, generator)
}

fn rendered(document: &SbomDocument, format: SbomFormat) -> Value {
    serde_json::from_str(&document.render(format).unwrap()).unwrap()
}

#[test]
fn cyclonedx_is_valid_against_the_1_6_schema() {
    let bom = rendered(&realistic_document(), SbomFormat::CycloneDx);
    let problems = errors(&cyclonedx_validator(), &bom);
    assert!(problems.is_empty(), "{problems:#?}");

    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["component"]["type"], "container");
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "crscan");
    let components = bom["components"].as_array().unwrap();
    // The OS plus ten packages; the duplicate npm package gets its own bom-ref.
    assert_eq!(components.len(), 11);
    let refs: std::collections::HashSet<&str> = components
        .iter()
        .map(|component| component["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 11);
    let zlib = components.iter().find(|c| c["name"] == "zlib1g").unwrap();
    let properties = zlib["properties"].as_array().unwrap();
    let property = |name: &str| {
        properties
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        property("crscan:package:source_name").as_deref(),
        Some("zlib")
    );
    assert_eq!(property("crscan:package:layer_index").as_deref(), Some("1"));
    assert_eq!(
        property("crscan:package:layer_digest"),
        Some(digest("22").to_string())
    );
}

#[test]
fn spdx_is_valid_against_the_2_3_schema() {
    let document = rendered(&realistic_document(), SbomFormat::Spdx);
    let problems = errors(&spdx_validator(), &document);
    assert!(problems.is_empty(), "{problems:#?}");

    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    let packages = document["packages"].as_array().unwrap();
    // The image, the OS and ten packages.
    assert_eq!(packages.len(), 12);
    let ids: std::collections::HashSet<&str> = packages
        .iter()
        .map(|package| package["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12);
    let relationships = document["relationships"].as_array().unwrap();
    let describes: Vec<_> = relationships
        .iter()
        .filter(|r| r["relationshipType"] == "DESCRIBES")
        .collect();
    assert_eq!(describes.len(), 1);
    assert_eq!(describes[0]["relatedSpdxElement"], "SPDXRef-Image");
    let contained = relationships
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS")
        .count();
    assert_eq!(contained, 11);
    let purls: Vec<&str> = packages
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(purls.contains(&"pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12"));
}

#[test]
fn the_validators_reject_broken_documents() {
    let mut bom = rendered(&realistic_document(), SbomFormat::CycloneDx);
    bom["components"][0]["type"] = Value::from("gadget");
    assert!(!errors(&cyclonedx_validator(), &bom).is_empty());

    let mut spdx = rendered(&realistic_document(), SbomFormat::Spdx);
    spdx["packages"][2]["SPDXID"] = Value::from("SPDXRef-has space");
    assert!(!errors(&spdx_validator(), &spdx).is_empty());
}

#[test]
fn documents_are_deterministic_and_derived_from_the_digest() {
    let first = realistic_document();
    let mut reordered = realistic_document();
    reordered.inventory.packages.reverse();
    let reordered = SbomDocument::new(reordered.subject, reordered.inventory, reordered.generator);
    for format in SbomFormat::ALL {
        assert_eq!(
            first.render(format).unwrap(),
            reordered.render(format).unwrap(),
            "{format}"
        );
    }
    let spdx = rendered(&first, SbomFormat::Spdx);
    let mut other_image = realistic_document();
    other_image.subject.manifest_digest = Some(digest("ab"));
    let other = rendered(&other_image, SbomFormat::Spdx);
    assert_ne!(spdx["documentNamespace"], other["documentNamespace"]);
    assert_eq!(spdx["creationInfo"]["created"], "2024-06-01T12:00:00Z");
}

#[test]
fn json_keeps_every_field_and_the_diagnostics() {
    let document = realistic_document();
    let json = rendered(&document, SbomFormat::Json);
    assert_eq!(json["schema"], "crscan.sbom/v1");
    assert_eq!(json["image"]["manifest_digest"], digest("aa").to_string());
    assert_eq!(json["os"]["codename"], "bookworm");
    assert_eq!(json["diagnostics"][0]["detector"], "dpkg");
    let back: Vec<Package> = serde_json::from_value(json["packages"].clone()).unwrap();
    assert_eq!(back, document.inventory.packages);
    // Sorted by type first: deb before pypi before npm and so on.
    assert_eq!(back[0].name, "base-files");
}

#[test]
fn table_lists_one_row_per_package_with_layer_and_source() {
    let table = realistic_document().render(SbomFormat::Table).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines.contains(&"OS: Debian GNU/Linux 12 (bookworm)"),
        "{table}"
    );
    let header = lines.iter().position(|l| l.starts_with("NAME")).unwrap();
    assert_eq!(lines.len() - header - 1, 10, "{table}");
    let bash = lines.iter().find(|l| l.starts_with("bash ")).unwrap();
    let cells: Vec<&str> = bash.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "bash",
            "5.2.15-2+b7",
            "deb",
            "bash",
            "5.2.15-2",
            "0",
            "111111111111"
        ]
    );
}
