//! The images of the end-to-end tests, made at test time: OCI layouts written by
//! [`oci_layout`] from directories (Debian 10 in two layers, Alpine 3.10, Ubuntu
//! 18.04, Python wheels from `pip download`, an npm project from `npm install`, a Go
//! binary built with the local toolchain, a Rust lockfile, an image with whiteouts,
//! and npm packages listed by `node_modules` and `package-lock.json` in different
//! layers), and the demo image of the README's CI example ([`write_image`]).
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{cache_dir, run, tools_present};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// Writes an OCI image layout (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>)
/// at `layout` with one gzip layer per directory of `layers`, tagged `latest`; returns
/// `oci:LAYOUT:latest` and the layer digests.
pub fn oci_layout(layout: &Path, layers: &[&Path]) -> (String, Vec<String>) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut digests = Vec::new();
    for dir in layers {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Deterministic);
        builder.append_dir_all(".", dir).unwrap();
        let tar_bytes = builder.into_inner().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar_bytes).unwrap();
        let blob = encoder.finish().unwrap();
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar_bytes)));
        let digest = write_blob(layout, &blob);
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": blob.len(),
        }));
        digests.push(digest);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = write_blob(layout, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_digest = write_blob(layout, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    (format!("oci:{}:latest", layout.display()), digests)
}

pub fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One dpkg status stanza.
pub fn dpkg(name: &str, source: Option<&str>, version: &str) -> String {
    let source = source
        .map(|source| format!("Source: {source}\n"))
        .unwrap_or_default();
    format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
         Architecture: amd64\n{source}Version: {version}\nDescription: {name} for a test\n\n"
    )
}

pub const BUSTER_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 10 (buster)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"10\"\nVERSION=\"10 (buster)\"\nVERSION_CODENAME=buster\nID=debian\n";

/// Debian 10 in two layers: the base packages, then `sudo` added.
pub fn debian_image(work: &Path) -> (String, Vec<String>) {
    let base = work.join("debian-layer-1");
    let base_status = [
        dpkg("base-files", None, "10.3+deb10u13"),
        dpkg("gzip", None, "1.9-3"),
        dpkg("libssl1.1", Some("openssl"), "1.1.1n-0+deb10u1"),
        dpkg("openssl", None, "1.1.1n-0+deb10u1"),
        dpkg("zlib1g", Some("zlib"), "1:1.2.11.dfsg-1"),
    ]
    .concat();
    write(&base, "etc/os-release", BUSTER_OS_RELEASE);
    write(&base, "var/lib/dpkg/status", &base_status);
    let added = work.join("debian-layer-2");
    write(
        &added,
        "var/lib/dpkg/status",
        &(base_status + &dpkg("sudo", None, "1.8.27-1+deb10u2")),
    );
    oci_layout(&work.join("debian-oci"), &[&base, &added])
}

/// One apk installed-database record.
pub fn apk(name: &str, origin: &str, version: &str) -> String {
    format!("P:{name}\nV:{version}\nA:x86_64\nT:{name} for a test\nL:MIT\no:{origin}\n\n")
}

pub fn alpine_image(work: &Path) -> String {
    let root = work.join("alpine-root");
    write(&root, "etc/alpine-release", "3.10.2\n");
    write(
        &root,
        "etc/os-release",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.10.2\nPRETTY_NAME=\"Alpine Linux v3.10\"\n",
    );
    let installed = [
        apk("alpine-baselayout", "alpine-baselayout", "3.1.2-r0"),
        apk("busybox", "busybox", "1.30.1-r1"),
        apk("libcrypto1.1", "openssl", "1.1.1c-r0"),
        apk("libssl1.1", "openssl", "1.1.1c-r0"),
        apk("musl", "musl", "1.1.22-r2"),
        apk("sqlite-libs", "sqlite", "3.28.0-r0"),
    ]
    .concat();
    write(&root, "lib/apk/db/installed", &installed);
    oci_layout(&work.join("alpine-oci"), &[&root]).0
}

/// Ubuntu 18.04 with apport, whose Ubuntu CVE Tracker records carry priorities from
/// low to high: the image for the severity options.
pub fn ubuntu_image(work: &Path) -> String {
    let root = work.join("ubuntu-root");
    write(
        &root,
        "etc/os-release",
        "NAME=\"Ubuntu\"\nVERSION=\"18.04.3 LTS (Bionic Beaver)\"\nID=ubuntu\nID_LIKE=debian\n\
         PRETTY_NAME=\"Ubuntu 18.04.3 LTS\"\nVERSION_ID=\"18.04\"\nVERSION_CODENAME=bionic\n",
    );
    let status = [
        dpkg("apport", None, "2.20.9-0ubuntu7"),
        dpkg("python3-apport", Some("apport"), "2.20.9-0ubuntu7"),
    ]
    .concat();
    write(&root, "var/lib/dpkg/status", &status);
    format!("dir:{}", root.display())
}

/// `urllib3` 1.24.1 and `Jinja2` 2.10 wheels unpacked into site-packages.
pub fn python_image(work: &Path) -> Option<String> {
    if !tools_present(&["python3"], false) {
        return None;
    }
    let wheels = cache_dir().join("scan-wheels");
    let names = [
        "urllib3-1.24.1-py2.py3-none-any.whl",
        "Jinja2-2.10-py2.py3-none-any.whl",
    ];
    if !names.iter().all(|name| wheels.join(name).is_file()) {
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
            ])
            .arg(&wheels)
            .args(["urllib3==1.24.1", "Jinja2==2.10"]));
    }
    let root = work.join("python-root");
    let site = root.join("usr/local/lib/python3.11/site-packages");
    std::fs::create_dir_all(&site).unwrap();
    for name in names {
        let file = std::fs::File::open(wheels.join(name)).unwrap();
        zip::ZipArchive::new(file).unwrap().extract(&site).unwrap();
    }
    Some(oci_layout(&work.join("python-oci"), &[&root]).0)
}

/// `lodash` 4.17.15 and `minimist` 1.2.0 installed by npm.
pub fn npm_image(work: &Path) -> Option<String> {
    if !tools_present(&["npm"], false) {
        return None;
    }
    let project = cache_dir().join("scan-npm");
    if !project.join("node_modules/minimist/package.json").is_file()
        || !project.join("node_modules/lodash/package.json").is_file()
    {
        write(
            &project,
            "package.json",
            "{\"name\":\"scan-test\",\"version\":\"1.0.0\",\"private\":true}\n",
        );
        run(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "lodash@4.17.15",
                "minimist@1.2.0",
            ])
            .current_dir(&project));
    }
    let root = work.join("npm-root");
    let app = root.join("srv/app");
    copy_dir(&project.join("node_modules"), &app.join("node_modules"));
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(project.join(file), app.join(file)).unwrap();
    }
    Some(oci_layout(&work.join("npm-oci"), &[&root]).0)
}

/// An npm lockfile (version 2) of `app` depending on exactly `packages` (name,
/// version).
pub fn package_lock(packages: &[(&str, &str)]) -> String {
    let dependencies: serde_json::Map<String, Value> = packages
        .iter()
        .map(|(name, version)| ((*name).to_owned(), json!(version)))
        .collect();
    let mut entries = serde_json::Map::new();
    entries.insert(
        String::new(),
        json!({"name": "app", "version": "1.0.0", "dependencies": dependencies}),
    );
    let mut legacy = serde_json::Map::new();
    for (name, version) in packages {
        entries.insert(format!("node_modules/{name}"), json!({"version": version}));
        legacy.insert((*name).to_owned(), json!({"version": version}));
    }
    serde_json::to_string(&json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 2, "requires": true,
        "packages": entries, "dependencies": legacy,
    }))
    .unwrap()
}

/// `package.json` of an installed npm package.
fn npm_manifest(name: &str, version: &str) -> String {
    format!("{{\"name\":\"{name}\",\"version\":\"{version}\"}}\n")
}

/// `lodash` 4.17.15 and `minimist` 1.2.0 installed under `/srv/app/node_modules` in
/// the first layer and listed by `/srv/app/package-lock.json` in the second: the
/// same two packages found by two detectors in different layers.
pub fn npm_split_image(work: &Path) -> String {
    let packages = [("lodash", "4.17.15"), ("minimist", "1.2.0")];
    let installed = work.join("npm-split-layer-1");
    for (name, version) in packages {
        write(
            &installed,
            &format!("srv/app/node_modules/{name}/package.json"),
            &npm_manifest(name, version),
        );
    }
    let locked = work.join("npm-split-layer-2");
    write(
        &locked,
        "srv/app/package.json",
        "{\"name\":\"app\",\"version\":\"1.0.0\"}\n",
    );
    write(
        &locked,
        "srv/app/package-lock.json",
        &package_lock(&packages),
    );
    oci_layout(&work.join("npm-split-oci"), &[&installed, &locked]).0
}

/// Debian 10 whose second layer deletes what the first installed: `sudo` leaves the
/// dpkg database, a whiteout (`.wh.lodash`) removes an installed npm package, and an
/// opaque directory (`.wh..wh..opq`) hides a Python package.
pub fn whiteout_image(work: &Path) -> String {
    let base = work.join("whiteout-layer-1");
    write(&base, "etc/os-release", BUSTER_OS_RELEASE);
    let gzip = dpkg("gzip", None, "1.9-3");
    write(
        &base,
        "var/lib/dpkg/status",
        &(gzip.clone() + &dpkg("sudo", None, "1.8.27-1+deb10u2")),
    );
    for (name, version) in [("lodash", "4.17.15"), ("minimist", "1.2.0")] {
        write(
            &base,
            &format!("srv/app/node_modules/{name}/package.json"),
            &npm_manifest(name, version),
        );
    }
    write(
        &base,
        "usr/lib/python3/dist-packages/Jinja2-2.10.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n",
    );
    let top = work.join("whiteout-layer-2");
    write(&top, "var/lib/dpkg/status", &gzip);
    write(&top, "srv/app/node_modules/.wh.lodash", "");
    write(&top, "usr/lib/python3/dist-packages/.wh..wh..opq", "");
    oci_layout(&work.join("whiteout-oci"), &[&base, &top]).0
}

/// A Rust application's `Cargo.lock` with `hyper` 0.10.0 and `base64` 0.5.0, which
/// RustSec advisories cover.
pub fn rust_image(work: &Path) -> String {
    let root = work.join("rust-root");
    let mut lock = String::from("version = 3\n");
    for (name, version) in [
        ("base64", "0.5.0"),
        ("hyper", "0.10.0"),
        ("rust-app", "0.1.0"),
    ] {
        let source = if name == "rust-app" {
            String::new()
        } else {
            "source = \"registry+https://github.com/rust-lang/crates.io-index\"\n".to_owned()
        };
        lock.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n{source}"
        ));
    }
    write(&root, "srv/rust-app/Cargo.lock", &lock);
    oci_layout(&work.join("rust-oci"), &[&root]).0
}

/// A Go binary built with the local toolchain, and the toolchain's version.
pub fn go_image(work: &Path) -> Option<(String, String)> {
    if !tools_present(&["go"], false) {
        return None;
    }
    let source = work.join("go-source");
    write(&source, "go.mod", "module example.com/scanapp\n\ngo 1.19\n");
    write(
        &source,
        "main.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
    );
    let root = work.join("go-root");
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    run(Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(root.join("usr/local/bin/scanapp"))
        .arg(".")
        .current_dir(&source)
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod"));
    let version = run(Command::new("go").args(["env", "GOVERSION"]))
        .trim()
        .to_owned();
    Some((oci_layout(&work.join("go-oci"), &[&root]).0, version))
}

/// Writes an OCI layout with one tagged image: Alpine 3.4 with an old apk database,
/// Jinja2 2.10, and an npm lockfile with old lodash and minimist.
pub fn write_image(root: &Path, tag: &str) {
    write_image_with_filler(root, tag, 0);
}

/// Pseudo-random bytes (splitmix64): gzip cannot shrink them, so every byte is
/// stored and read back.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![0u8; len];
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    bytes
}

/// Bytes of each file in the filler layer of [`write_image_with_filler`]: random, so
/// that the layer stays far below the scanner's decompression-ratio limit.
pub const FILLER_FILE_BYTES: usize = 64;

/// [`write_image`], with a third layer of `filler_files` small files of random bytes
/// when `filler_files` is not 0: the packages and findings are the same, and the
/// scan takes as long as walking that layer does. A scan's cost is mostly per tar
/// entry (about 50 µs each in a debug build), not per byte (a 96 MiB file takes
/// under a second), so many small files make a slow scan from a small image.
pub fn write_image_with_filler(root: &Path, tag: &str, filler_files: usize) {
    write_demo(root, tag, filler_files, false);
}

/// [`write_image`] whose configuration also has a creation time and a history naming
/// the command that made each layer (and one empty layer), as a build tool writes it.
pub fn write_image_with_history(root: &Path, tag: &str) {
    write_demo(root, tag, 0, true);
}

fn write_demo(root: &Path, tag: &str, filler_files: usize, history: bool) {
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let blob = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        std::fs::write(root.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let layer = |files: &[(&str, &[u8])]| -> (String, usize, String) {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar).unwrap();
        let (digest, size) = blob(&encoder.finish().unwrap());
        (digest, size, diff_id)
    };
    let installed = std::fs::read(format!("{DATA}/catalog/apk/trivy/installed")).unwrap();
    let os_release =
        b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n";
    let base = layer(&[
        ("etc/os-release", os_release),
        ("lib/apk/db/installed", &installed),
    ]);
    let metadata = b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n";
    let lock = serde_json::to_vec(&json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 2, "requires": true,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"lodash": "4.17.15", "minimist": "1.2.5"}},
            "node_modules/lodash": {"version": "4.17.15"},
            "node_modules/minimist": {"version": "1.2.5"}
        },
        "dependencies": {"lodash": {"version": "4.17.15"}, "minimist": {"version": "1.2.5"}}
    }))
    .unwrap();
    let app = layer(&[
        (
            "usr/lib/python3.5/site-packages/Jinja2-2.10.dist-info/METADATA",
            metadata,
        ),
        ("app/package-lock.json", &lock),
    ]);
    let mut layers = vec![base, app];
    if filler_files > 0 {
        let data = random_bytes(filler_files * FILLER_FILE_BYTES);
        let names: Vec<String> = (0..filler_files)
            .map(|index| format!("opt/filler/{}/{index}.bin", index / 1000))
            .collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .zip(data.chunks(FILLER_FILE_BYTES))
            .map(|(name, contents)| (name.as_str(), contents))
            .collect();
        layers.push(layer(&files));
    }
    let diff_ids: Vec<&String> = layers.iter().map(|(_, _, diff_id)| diff_id).collect();
    let mut config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    if history {
        config["created"] = json!("2026-12-01T10:00:00Z");
        config["history"] = json!([
            {"created_by": "/bin/sh -c #(nop) ADD file:alpine-3.4 in / "},
            {"created_by": "/bin/sh -c #(nop) CMD [\"/bin/sh\"]", "empty_layer": true},
            {"created_by": "COPY app /app # buildkit"}
        ]);
    }
    let (config_digest, config_size) = blob(&serde_json::to_vec(&config).unwrap());
    let layers: Vec<Value> = layers
        .iter()
        .map(|(digest, size, _)| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = blob(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}
