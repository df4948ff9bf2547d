//! Reads images built at test time: OCI layouts, OCI and docker archives, root
//! directories, and crafted hostile layers.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crscan_image::{
    ImageError, ImageSource, Limits, MemoryBudget, NoProgress, ReadOptions, read_image, read_layer,
    read_layer_within,
};
use crscan_model::{Digest, DigestAlgorithm, FileInterest, FileView, Keep};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------
// Building layers and images.

/// One tar entry to write.
enum Item {
    File(&'static str, Vec<u8>),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
}

/// Writes a tar with raw names, so that hostile names (`../x`) survive.
fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match item {
            Item::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (name, data)
            }
            Item::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (name, &[])
            }
            Item::Symlink(name, target) | Item::Hardlink(name, target) => {
                header.set_entry_type(if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_mode(0o777);
                let link = &mut header.as_old_mut().linkname;
                link[..target.len()].copy_from_slice(target.as_bytes());
                (name, &[])
            }
        };
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(bytes))
}

fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs").join("sha256").join(digest.hex())
}

fn write_blob(root: &Path, bytes: &[u8]) -> Digest {
    let digest = sha256(bytes);
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(blob_path(root, &digest), bytes).unwrap();
    digest
}

const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0go binary";

/// Writes an image manifest (and its config and layers) into an OCI layout; returns
/// the manifest's digest and size. Layers are (blob, uncompressed tar).
fn write_manifest(root: &Path, layers: &[(Vec<u8>, Vec<u8>)], arch: &str) -> (Digest, usize) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|(_, tar)| sha256(tar).to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2026-01-02T03:04:05Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(root, &config);
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(blob, _)| {
            let digest = write_blob(root, blob);
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest.to_string(), "size": blob.len(),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": layer_descriptors,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    (write_blob(root, &manifest), manifest.len())
}

fn write_index(root: &Path, manifests: Vec<serde_json::Value>) {
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// An OCI layout with one image tagged `latest`.
fn oci_layout(root: &Path, layers: &[(Vec<u8>, Vec<u8>)]) -> Digest {
    let (digest, size) = write_manifest(root, layers, "amd64");
    write_index(
        root,
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        })],
    );
    digest
}

/// A `docker save` archive in the legacy layout (`<id>/layer.tar`).
fn docker_archive(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|tar| sha256(tar).to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_name = format!("{}.json", sha256(&config).hex());
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data).unwrap();
    };
    let mut layer_names = Vec::new();
    for (index, tar) in layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", index + 1);
        append(&name, tar);
        layer_names.push(name);
    }
    append(&config_name, &config);
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": ["example:1"], "Layers": layer_names,
    }]);
    append("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    builder.into_inner().unwrap()
}

/// Packs a directory into a tar.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

// ---------------------------------------------------------------------------
// What the tests ask for.

/// Keeps `/etc/**`, `/usr/lib/os-release`, the dpkg status (with history), and ELF
/// files anywhere.
struct TestInterest;

impl FileInterest for TestInterest {
    fn by_path(&self, path: &str) -> Keep {
        if path == "/var/lib/dpkg/status" {
            Keep::WithHistory
        } else if path.starts_with("/etc/") || path == "/usr/lib/os-release" {
            Keep::Yes
        } else {
            Keep::No
        }
    }

    fn magic_len(&self) -> usize {
        4
    }

    fn by_magic(&self, _path: &str, head: &[u8]) -> bool {
        head == b"\x7fELF"
    }
}

fn text(view: &FileView, path: &str) -> Option<String> {
    view.get(path)
        .map(|file| String::from_utf8_lossy(&file.contents).into_owned())
}

fn paths(view: &FileView) -> Vec<String> {
    view.files().map(|file| file.path.clone()).collect()
}

fn read(source: &ImageSource) -> (crscan_image::ImageInfo, FileView) {
    read_image(source, &ReadOptions::default(), &TestInterest, &NoProgress).unwrap()
}

/// Reads an image that must fail with the default options; returns the error.
fn read_error(source: &ImageSource) -> ImageError {
    read_image(source, &ReadOptions::default(), &TestInterest, &NoProgress).unwrap_err()
}

fn digest_of(name: &str) -> Digest {
    sha256(name.as_bytes())
}

// ---------------------------------------------------------------------------
// Layers.

/// Three layers exercising whiteouts, opaque directories, history and replacement.
fn layered_image() -> Vec<Vec<u8>> {
    let base = tar_of(&[
        Item::Dir("etc/"),
        Item::File("etc/a", b"a1".to_vec()),
        Item::File("etc/b", b"b1".to_vec()),
        Item::File("etc/sub/c", b"c1".to_vec()),
        Item::File("etc/opq/x", b"x1".to_vec()),
        Item::File("usr/lib/os-release", b"ID=test".to_vec()),
        Item::File("var/lib/dpkg/status", b"Package: one".to_vec()),
        Item::File("usr/bin/tool", ELF.to_vec()),
        Item::File("lib/helper", ELF.to_vec()),
        Item::File("usr/bin/plain", b"#!/bin/sh".to_vec()),
    ]);
    let middle = tar_of(&[
        Item::File("etc/.wh.a", Vec::new()),
        Item::File("etc/opq/.wh..wh..opq", Vec::new()),
        Item::File("etc/opq/y", b"y2".to_vec()),
        Item::File("etc/z", b"z2".to_vec()),
        // A whiteout applies to lower layers only, not to this layer's etc/z.
        Item::File("etc/.wh.z", Vec::new()),
        Item::File("etc/.wh.sub", Vec::new()),
        Item::File(
            "var/lib/dpkg/status",
            b"Package: one\n\nPackage: two".to_vec(),
        ),
        // A shell script replaces the ELF binary: the old version must go.
        Item::File("usr/bin/tool", b"#!/bin/sh".to_vec()),
        // The usr merge: a link replaces a directory with kept files below it.
        Item::Symlink("lib", "usr/lib"),
    ]);
    let top = tar_of(&[
        Item::File("etc/a", b"a3".to_vec()),
        Item::File("var/lib/dpkg/status", b"Package: two".to_vec()),
    ]);
    vec![base, middle, top]
}

fn check_layered_view(view: &FileView) {
    assert_eq!(text(view, "/etc/a").as_deref(), Some("a3"));
    assert_eq!(text(view, "/etc/b").as_deref(), Some("b1"));
    assert_eq!(text(view, "/etc/sub/c"), None, "whiteout of a directory");
    assert_eq!(
        text(view, "/etc/opq/x"),
        None,
        "opaque directory hides lower"
    );
    assert_eq!(text(view, "/etc/opq/y").as_deref(), Some("y2"));
    assert_eq!(
        text(view, "/etc/z").as_deref(),
        Some("z2"),
        "same-layer whiteout"
    );
    assert!(
        view.get("/usr/bin/tool").is_none(),
        "replaced by a file not kept"
    );
    assert!(view.get_exact_mut_free("/lib/helper"));
    assert_eq!(
        text(view, "/lib/os-release").as_deref(),
        Some("ID=test"),
        "resolves through the new /lib link"
    );
    let status = view.get("/var/lib/dpkg/status").unwrap();
    assert_eq!(&*status.contents, b"Package: two");
    assert_eq!(status.history.len(), 2);
    assert_eq!(&*status.history[0].contents, b"Package: one");
}

/// A helper so the assertion above reads as a sentence.
trait ExactFree {
    fn get_exact_mut_free(&self, path: &str) -> bool;
}

impl ExactFree for FileView {
    fn get_exact_mut_free(&self, path: &str) -> bool {
        !self.files().any(|file| file.path == path)
    }
}

#[test]
fn layers_apply_whiteouts_opaque_dirs_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let layers: Vec<(Vec<u8>, Vec<u8>)> = layered_image()
        .into_iter()
        .map(|tar| (gzip(&tar), tar))
        .collect();
    let manifest = oci_layout(dir.path(), &layers);
    let source = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    let (info, view) = read(&source);
    assert_eq!(info.manifest_digest, Some(manifest));
    assert_eq!(info.layers.len(), 3);
    assert_eq!(info.os.as_deref(), Some("linux"));
    assert_eq!(info.repo_tags, vec!["latest".to_owned()]);
    assert_eq!(info.layers[0].diff_id, Some(sha256(&layers[0].1)));
    check_layered_view(&view);
    let status = view.get("/var/lib/dpkg/status").unwrap();
    assert_eq!(status.layer_digest, Some(info.layers[2].digest.clone()));
    assert_eq!(
        status.history[1].layer_digest,
        Some(info.layers[1].digest.clone())
    );
}

#[test]
fn gzip_zstd_and_plain_layers_read_alike() {
    let tar = tar_of(&[
        Item::File("etc/hosts", b"127.0.0.1 localhost".to_vec()),
        Item::File("opt/app", ELF.to_vec()),
        Item::File("opt/readme", b"not kept".to_vec()),
    ]);
    let mut views = Vec::new();
    for blob in [tar.clone(), gzip(&tar), zstd(&tar)] {
        let contents = read_layer(
            blob.as_slice(),
            &sha256(&blob),
            &TestInterest,
            &Limits::default(),
        )
        .unwrap();
        let mut view = FileView::new();
        contents.apply_to(&mut view, &TestInterest);
        views.push(paths(&view));
        assert_eq!(
            text(&view, "/etc/hosts").as_deref(),
            Some("127.0.0.1 localhost")
        );
    }
    assert_eq!(views[0], vec!["/etc/hosts", "/opt/app"]);
    assert_eq!(views[0], views[1]);
    assert_eq!(views[0], views[2]);
}

#[test]
fn hard_links_resolve_within_and_across_layers() {
    let dir = tempfile::tempdir().unwrap();
    let lower = tar_of(&[
        Item::File("etc/real", b"real".to_vec()),
        Item::File("usr/bin/go-tool", ELF.to_vec()),
        Item::Hardlink("usr/bin/go-tool-link", "usr/bin/go-tool"),
        Item::Hardlink("etc/same-layer", "./etc/real"),
    ]);
    let upper = tar_of(&[Item::Hardlink("etc/cross-layer", "etc/real")]);
    oci_layout(
        dir.path(),
        &[
            (zstd(&lower), lower.clone()),
            (upper.clone(), upper.clone()),
        ],
    );
    let (_, view) = read(&ImageSource::OciLayout {
        path: dir.path().to_owned(),
        tag: Some("latest".into()),
    });
    assert_eq!(text(&view, "/etc/same-layer").as_deref(), Some("real"));
    assert_eq!(text(&view, "/etc/cross-layer").as_deref(), Some("real"));
    assert_eq!(&*view.get("/usr/bin/go-tool-link").unwrap().contents, ELF);
}

#[test]
fn symlinks_resolve_inside_the_image_only() {
    let layer = tar_of(&[
        Item::File("usr/lib/os-release", b"ID=inside".to_vec()),
        Item::Symlink("etc/os-release", "../usr/lib/os-release"),
        Item::Symlink("etc/absolute", "/usr/lib/os-release"),
        Item::Symlink("etc/escape", "../../../../../../usr/lib/os-release"),
        Item::Symlink("etc/host-passwd", "/etc/passwd"),
        Item::Symlink("etc/dots", "../../../../../../etc/passwd"),
        Item::Symlink("etc/loop1", "loop2"),
        Item::Symlink("etc/loop2", "/etc/loop1"),
        Item::Symlink("etc/self", "self"),
    ]);
    let contents = read_layer(
        layer.as_slice(),
        &digest_of("links"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(contents.symlinks.len(), 8);
    let mut view = FileView::new();
    contents.apply_to(&mut view, &TestInterest);
    for path in ["/etc/os-release", "/etc/absolute", "/etc/escape"] {
        assert_eq!(text(&view, path).as_deref(), Some("ID=inside"), "{path}");
    }
    // The image has no /etc/passwd; the host's is never reached.
    assert!(view.get("/etc/host-passwd").is_none());
    assert!(view.get("/etc/dots").is_none());
    assert!(view.get("/etc/loop1").is_none());
    assert!(view.get("/etc/self").is_none());
}

#[test]
fn dot_dot_paths_stay_inside_the_image() {
    let layer = tar_of(&[
        Item::File("../../../etc/evil", b"clamped".to_vec()),
        Item::File("./etc/./x/../y", b"normal".to_vec()),
        Item::File("/etc/abs", b"absolute".to_vec()),
        Item::File("etc/.wh...", Vec::new()),
    ]);
    let contents = read_layer(
        layer.as_slice(),
        &digest_of("dots"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap();
    assert!(
        contents.whiteouts.is_empty(),
        "a whiteout of `..` is ignored"
    );
    let mut view = FileView::new();
    contents.apply_to(&mut view, &TestInterest);
    assert_eq!(paths(&view), vec!["/etc/abs", "/etc/evil", "/etc/y"]);
}

#[test]
fn kept_files_draw_on_one_memory_budget() {
    let layer = tar_of(&[
        Item::File("etc/a", vec![b'a'; 1000]),
        Item::File("etc/b", vec![b'b'; 1000]),
        Item::File("etc/c", vec![b'c'; 1000]),
        Item::File("usr/skipped", vec![b'x'; 100_000]),
    ]);
    let limits = Limits {
        memory_budget_bytes: 3000,
        ..Limits::default()
    };
    // Files nobody asked for cost nothing: three kept files fit exactly.
    let budget = MemoryBudget::from_limits(&limits);
    let contents = read_layer_within(
        layer.as_slice(),
        &digest_of("fits"),
        &TestInterest,
        &limits,
        &budget,
    )
    .unwrap();
    assert_eq!(contents.files.len(), 3);
    assert_eq!(budget.used(), 3000);

    // A second layer on the same budget does not fit; the error names the file.
    let error = read_layer_within(
        layer.as_slice(),
        &digest_of("again"),
        &TestInterest,
        &limits,
        &budget,
    )
    .unwrap_err();
    assert!(
        matches!(error, ImageError::OverMemoryBudget { .. }),
        "{error}"
    );
    assert!(error.is_limit());
    let message = error.to_string();
    assert!(message.contains("/etc/a"), "{message}");
    assert!(message.contains("memory_budget_bytes"), "{message}");

    // read_layer has a budget of its own per call.
    let limits = Limits {
        memory_budget_bytes: 2500,
        ..Limits::default()
    };
    let error = read_layer(
        layer.as_slice(),
        &digest_of("small"),
        &TestInterest,
        &limits,
    )
    .unwrap_err();
    assert!(error.to_string().contains("/etc/c"), "{error}");
}

#[test]
fn the_memory_budget_counts_only_what_the_view_still_holds() {
    // Three layers each rewrite a 2,000-byte file: at most two versions are held at
    // once (the view's and the layer being read), so 4,500 bytes are enough.
    let layer = |fill: u8| {
        let tar = tar_of(&[Item::File("etc/a", vec![fill; 2000])]);
        (gzip(&tar), tar)
    };
    let dir = tempfile::tempdir().unwrap();
    oci_layout(dir.path(), &[layer(b'1'), layer(b'2'), layer(b'3')]);
    let source = ImageSource::OciLayout {
        path: dir.path().to_owned(),
        tag: None,
    };
    let options = |budget: u64| ReadOptions {
        limits: Limits {
            memory_budget_bytes: budget,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    let (_, view) = read_image(&source, &options(4500), &TestInterest, &NoProgress).unwrap();
    assert_eq!(text(&view, "/etc/a").unwrap(), "3".repeat(2000));
    // Two versions do not fit in 3,500 bytes; the error names the file.
    let error = read_image(&source, &options(3500), &TestInterest, &NoProgress).unwrap_err();
    assert!(
        matches!(error, ImageError::OverMemoryBudget { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("/etc/a"), "{error}");
}

#[test]
fn kept_files_are_capped_not_failed() {
    let layer = tar_of(&[Item::File("etc/big", vec![b'x'; 10_000])]);
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let contents = read_layer(layer.as_slice(), &digest_of("big"), &TestInterest, &limits).unwrap();
    assert_eq!(contents.files[0].contents.len(), 100);
    assert!(contents.files[0].truncated);
}

// ---------------------------------------------------------------------------
// Sources.

fn check_simple_view(view: &FileView) {
    check_layered_view(view);
}

#[test]
fn docker_archives_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let archive = docker_archive(&layered_image());
    let plain = dir.path().join("image.tar");
    let gzipped = dir.path().join("image.tar.gz");
    std::fs::write(&plain, &archive).unwrap();
    std::fs::write(&gzipped, gzip(&archive)).unwrap();
    for path in [&plain, &gzipped] {
        let source = ImageSource::parse(&format!("docker-archive:{}", path.display())).unwrap();
        let (info, view) = read(&source);
        assert_eq!(info.repo_tags, vec!["example:1".to_owned()]);
        assert_eq!(info.layers.len(), 3);
        assert_eq!(
            info.layers[0].diff_id.as_ref(),
            Some(&info.layers[0].digest)
        );
        check_simple_view(&view);
        assert_eq!(
            ImageSource::parse(&path.display().to_string()).unwrap(),
            source
        );
    }
}

#[test]
fn docker_archive_with_a_corrupt_layer_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut layers = layered_image();
    let archive_ok = docker_archive(&layers);
    // Same diff IDs, different bytes: rebuild with a changed layer but keep the
    // config of the original.
    layers[1] = tar_of(&[Item::File("etc/other", b"changed".to_vec())]);
    let archive_bad = docker_archive(&layers);
    let swap = |good: &[u8], bad: &[u8]| -> Vec<u8> {
        // Take the bad archive's second layer.tar into the good archive.
        let mut good_archive = tar::Archive::new(good);
        let mut bad_layer = Vec::new();
        for entry in tar::Archive::new(bad).entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry
                .path()
                .unwrap()
                .to_string_lossy()
                .contains("02/layer.tar")
            {
                entry.read_to_end(&mut bad_layer).unwrap();
            }
        }
        let mut builder = tar::Builder::new(Vec::new());
        for entry in good_archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if name.to_string_lossy().contains("02/layer.tar") {
                data = bad_layer.clone();
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder
                .append_data(&mut header, name, data.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    };
    let path = dir.path().join("bad.tar");
    std::fs::write(&path, swap(&archive_ok, &archive_bad)).unwrap();
    let error = read_error(&ImageSource::DockerArchive(path));
    // The layer's diff ID, checked while it streams, is what catches it.
    assert!(
        matches!(
            error,
            ImageError::DigestMismatch { .. } | ImageError::DiffIdMismatch { .. }
        ),
        "{error}"
    );
}

#[test]
fn oci_archives_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let layers: Vec<(Vec<u8>, Vec<u8>)> = layered_image()
        .into_iter()
        .map(|tar| (zstd(&tar), tar))
        .collect();
    oci_layout(&layout, &layers);
    let archive = tar_dir(&layout);
    let plain = dir.path().join("oci.tar");
    let gzipped = dir.path().join("oci.tgz");
    std::fs::write(&plain, &archive).unwrap();
    std::fs::write(&gzipped, gzip(&archive)).unwrap();
    for path in [&plain, &gzipped] {
        let source = ImageSource::parse(&format!("oci-archive:{}", path.display())).unwrap();
        let (info, view) = read(&source);
        assert!(info.manifest_digest.is_some());
        check_simple_view(&view);
        assert_eq!(
            ImageSource::parse(&path.display().to_string()).unwrap(),
            ImageSource::OciArchive(path.clone())
        );
    }
}

#[test]
fn directories_are_walked_without_leaving_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::create_dir_all(root.join("opt")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=dir").unwrap();
    std::fs::write(root.join("opt/binary"), ELF).unwrap();
    std::fs::write(root.join("opt/text"), "no").unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    // An absolute link to a real host file: the view resolves it inside the root.
    std::os::unix::fs::symlink("/etc/hostname-outside", root.join("etc/hostname")).unwrap();
    std::fs::write(dir.path().join("secret"), "host secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("etc/secret")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("etc/outside-dir")).unwrap();
    let source = ImageSource::parse(&format!("dir:{}", root.display())).unwrap();
    let (info, view) = read(&source);
    assert!(info.layers.is_empty());
    assert_eq!(text(&view, "/etc/os-release").as_deref(), Some("ID=dir"));
    assert!(view.get("/etc/secret").is_none());
    assert!(view.get("/etc/outside-dir/secret").is_none());
    assert!(view.get("/etc/hostname").is_none());
    assert_eq!(paths(&view), vec!["/opt/binary", "/usr/lib/os-release"]);
    assert_eq!(
        ImageSource::parse(&root.display().to_string()).unwrap(),
        ImageSource::Dir(root.clone())
    );
}

#[test]
fn bare_paths_are_recognised_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let tar = tar_of(&[Item::File("etc/x", b"x".to_vec())]);
    oci_layout(&layout, &[(tar.clone(), tar)]);
    assert_eq!(
        ImageSource::parse(&layout.display().to_string()).unwrap(),
        ImageSource::OciLayout {
            path: layout.clone(),
            tag: None
        }
    );
    assert_eq!(
        ImageSource::parse(&format!("oci:{}:v1", layout.display())).unwrap(),
        ImageSource::OciLayout {
            path: layout.clone(),
            tag: Some("v1".into())
        }
    );
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"this is not an image at all").unwrap();
    let error = ImageSource::parse(&junk.display().to_string()).unwrap_err();
    assert!(matches!(error, ImageError::UnknownSource(_)), "{error}");
    let error = ImageSource::parse(&dir.path().join("missing").display().to_string()).unwrap_err();
    assert!(matches!(error, ImageError::Io { .. }), "{error}");
    assert!(matches!(
        ImageSource::parse("docker://example.com/image:1"),
        Err(ImageError::UnknownSource(_))
    ));
}

#[test]
fn tags_select_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let one = tar_of(&[Item::File("etc/which", b"one".to_vec())]);
    let two = tar_of(&[Item::File("etc/which", b"two".to_vec())]);
    let (first, first_size) = write_manifest(dir.path(), &[(one.clone(), one)], "amd64");
    let (second, second_size) = write_manifest(dir.path(), &[(two.clone(), two)], "amd64");
    let entry = |digest: &Digest, size: usize, tag: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
    };
    write_index(
        dir.path(),
        vec![
            entry(&first, first_size, "one"),
            entry(&second, second_size, "two"),
        ],
    );
    for (tag, expected) in [("one", "one"), ("two", "two")] {
        let source = ImageSource::parse(&format!("oci:{}:{tag}", dir.path().display())).unwrap();
        let (_, view) = read(&source);
        assert_eq!(text(&view, "/etc/which").as_deref(), Some(expected));
    }
    let untagged = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    let error = read_error(&untagged);
    assert!(error.to_string().contains("name one with a tag"), "{error}");
    let missing = ImageSource::parse(&format!("oci:{}:three", dir.path().display())).unwrap();
    let error = read_error(&missing);
    assert!(matches!(error, ImageError::TagNotFound { .. }), "{error}");
}

#[test]
fn image_indexes_pick_a_platform() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for (arch, variant) in [("arm", Some("v7")), ("amd64", None), ("arm64", Some("v8"))] {
        let tar = tar_of(&[Item::File("etc/arch", arch.as_bytes().to_vec())]);
        let (digest, size) = write_manifest(dir.path(), &[(gzip(&tar), tar)], arch);
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(variant) = variant {
            platform["variant"] = variant.into();
        }
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": size, "platform": platform,
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let index_digest = write_blob(dir.path(), &index);
    write_index(
        dir.path(),
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest.to_string(), "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        })],
    );
    let source = ImageSource::parse(&format!("oci:{}:multi", dir.path().display())).unwrap();
    // Without --platform: the host's entry, else linux/amd64's.
    let default = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "arm" => "arm",
        _ => "amd64",
    };
    for (platform, expected) in [
        (None, default),
        (Some("linux/arm64"), "arm64"),
        (Some("linux/arm64/v8"), "arm64"),
        (Some("linux/arm/v7"), "arm"),
        (Some("linux/x86_64"), "amd64"),
    ] {
        let options = ReadOptions {
            platform: platform.map(str::to_owned),
            ..ReadOptions::default()
        };
        let (info, view) = read_image(&source, &options, &TestInterest, &NoProgress).unwrap();
        assert_eq!(
            text(&view, "/etc/arch").as_deref(),
            Some(expected),
            "{platform:?}"
        );
        assert_eq!(info.architecture.as_deref(), Some(expected));
    }
    let options = ReadOptions {
        platform: Some("linux/s390x".into()),
        ..ReadOptions::default()
    };
    let error = read_image(&source, &options, &TestInterest, &NoProgress).unwrap_err();
    assert!(
        matches!(error, ImageError::PlatformNotFound { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("linux/arm/v7"), "{error}");
}

// ---------------------------------------------------------------------------
// Hostile input.

#[test]
fn a_tampered_blob_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[Item::File("etc/x", b"original".to_vec())]);
    let blob = gzip(&tar);
    oci_layout(dir.path(), &[(blob.clone(), tar)]);
    let digest = sha256(&blob);
    let other = gzip(&tar_of(&[Item::File("etc/x", b"tampered".to_vec())]));
    std::fs::write(blob_path(dir.path(), &digest), other).unwrap();
    let source = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    let error = read_error(&source);
    // The layer's diff ID, checked while it streams, is what catches it.
    assert!(
        matches!(
            error,
            ImageError::DigestMismatch { .. } | ImageError::DiffIdMismatch { .. }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&digest.to_string()), "{error}");
}

#[test]
fn truncated_gzip_is_a_clear_error() {
    let tar = tar_of(&[
        Item::File("etc/a", vec![7; 100_000]),
        Item::File("etc/b", b"b".to_vec()),
    ]);
    let blob = gzip(&tar);
    for cut in [blob.len() / 2, blob.len() - 4, 5] {
        let digest = digest_of("truncated");
        let error =
            read_layer(&blob[..cut], &digest, &TestInterest, &Limits::default()).unwrap_err();
        assert!(
            matches!(error, ImageError::TruncatedLayer { .. }),
            "cut at {cut}: {error}"
        );
        assert!(error.to_string().contains(&digest.to_string()));
        assert!(!error.is_limit());
    }
    // A truncated plain tar and zstd stream fail too.
    let error = read_layer(
        &tar[..1000],
        &digest_of("plain"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ImageError::BadLayer { .. } | ImageError::TruncatedLayer { .. }
        ),
        "{error}"
    );
    let zst = zstd(&tar);
    let error = read_layer(
        &zst[..zst.len() - 3],
        &digest_of("zstd"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ImageError::TruncatedLayer { .. } | ImageError::Decompress { .. }
        ),
        "{error}"
    );
}

/// A gzip stream of a tar holding one file of `size` zero bytes, compressed on
/// demand as it is read, so the test never holds it in memory.
struct GzipBomb {
    encoder: flate2::write::GzEncoder<Vec<u8>>,
    remaining: u64,
    finished: bool,
    position: usize,
}

impl GzipBomb {
    fn new(size: u64) -> GzipBomb {
        let mut header = tar::Header::new_gnu();
        header.set_path("etc/bomb").unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(header.as_bytes()).unwrap();
        GzipBomb {
            encoder,
            remaining: size,
            finished: false,
            position: 0,
        }
    }
}

impl Read for GzipBomb {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let pending = &self.encoder.get_ref()[self.position..];
            if !pending.is_empty() {
                let count = pending.len().min(buf.len());
                buf[..count].copy_from_slice(&pending[..count]);
                self.position += count;
                return Ok(count);
            }
            self.encoder.get_mut().clear();
            self.position = 0;
            if self.finished {
                return Ok(0);
            }
            if self.remaining == 0 {
                self.encoder.write_all(&[0; 1024])?;
                self.encoder.try_finish()?;
                self.finished = true;
                continue;
            }
            let chunk = self.remaining.min(1 << 20);
            self.encoder.write_all(&vec![0; chunk as usize])?;
            self.remaining -= chunk;
        }
    }
}

#[test]
fn gzip_bombs_stop_at_a_limit() {
    let two_gib = 2 << 30;
    let error = read_layer(
        GzipBomb::new(two_gib),
        &digest_of("bomb"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ImageError::CompressionRatio { .. }),
        "{error}"
    );
    assert!(error.is_limit());
    assert!(
        error.to_string().contains("max_compression_ratio"),
        "{error}"
    );

    let limits = Limits {
        max_compression_ratio: 0,
        max_total_bytes: 32 << 20,
        ..Limits::default()
    };
    let error = read_layer(
        GzipBomb::new(two_gib),
        &digest_of("bomb"),
        &TestInterest,
        &limits,
    )
    .unwrap_err();
    assert!(matches!(error, ImageError::TooManyBytes { .. }), "{error}");
    assert!(error.to_string().contains("max_total_bytes"), "{error}");

    // A small file of zeros under the limits is fine, and kept under the file cap.
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let contents = read_layer(
        GzipBomb::new(4 << 20),
        &digest_of("small"),
        &TestInterest,
        &limits,
    )
    .unwrap();
    assert_eq!(contents.files[0].contents.len(), 1000);
    assert!(contents.files[0].truncated);
}

fn many_entries(count: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut builder = tar::Builder::new(&mut encoder);
        for index in 0..count {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, format!("usr/share/f{index}"), &[][..])
                .unwrap();
        }
        builder.finish().unwrap();
    }
    encoder.finish().unwrap()
}

#[test]
fn a_layer_with_100000_entries() {
    let blob = many_entries(100_000);
    let contents = read_layer(
        blob.as_slice(),
        &digest_of("many"),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap();
    assert!(contents.files.is_empty());
    assert_eq!(contents.written.len(), 100_000);
    let limits = Limits {
        max_entries_per_layer: 10_000,
        ..Limits::default()
    };
    let error =
        read_layer(blob.as_slice(), &digest_of("many"), &TestInterest, &limits).unwrap_err();
    assert!(
        matches!(error, ImageError::TooManyEntries { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("max_entries_per_layer"),
        "{error}"
    );
}

#[test]
fn long_and_deep_paths_name_their_limit() {
    let long = format!("etc/{}", "x".repeat(300));
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, &long, &[][..]).unwrap();
    let deep = "d/".repeat(40) + "f";
    builder.append_data(&mut header, &deep, &[][..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let limits = Limits {
        max_path_len: 200,
        ..Limits::default()
    };
    let error = read_layer(tar.as_slice(), &digest_of("long"), &TestInterest, &limits).unwrap_err();
    assert!(matches!(error, ImageError::PathTooLong { .. }), "{error}");
    assert!(error.to_string().contains("max_path_len"));
    let limits = Limits {
        max_path_depth: 20,
        ..Limits::default()
    };
    let error = read_layer(tar.as_slice(), &digest_of("deep"), &TestInterest, &limits).unwrap_err();
    assert!(matches!(error, ImageError::PathTooDeep { .. }), "{error}");
    assert!(
        read_layer(
            tar.as_slice(),
            &digest_of("ok"),
            &TestInterest,
            &Limits::default()
        )
        .is_ok()
    );
}

#[test]
fn too_many_layers_and_too_large_images() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[Item::File("etc/x", vec![1; 5000])]);
    let layers: Vec<(Vec<u8>, Vec<u8>)> = (0..3).map(|_| (tar.clone(), tar.clone())).collect();
    oci_layout(dir.path(), &layers);
    let source = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    let options = ReadOptions {
        limits: Limits {
            max_layers: 2,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    let error = read_image(&source, &options, &TestInterest, &NoProgress).unwrap_err();
    assert!(
        matches!(error, ImageError::TooManyLayers { count: 3, limit: 2 }),
        "{error}"
    );
    assert!(error.is_limit());
    let options = ReadOptions {
        limits: Limits {
            max_image_bytes: 10_000,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    let error = read_image(&source, &options, &TestInterest, &NoProgress).unwrap_err();
    assert!(matches!(error, ImageError::ImageTooLarge { .. }), "{error}");
    // The same blob serving three layers is read once and applied three times.
    let (info, view) = read(&source);
    assert_eq!(info.layers.len(), 3);
    assert_eq!(view.len(), 1);
}

// ---------------------------------------------------------------------------
// The tar walker never panics.

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn valid_layer() -> Vec<u8> {
        tar_of(&[
            Item::Dir("etc/"),
            Item::File("etc/a", b"alpha".to_vec()),
            Item::Symlink("etc/b", "../etc/a"),
            Item::Hardlink("etc/c", "etc/a"),
            Item::File("etc/.wh.d", Vec::new()),
            Item::File("usr/bin/x", ELF.to_vec()),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = read_layer(bytes.as_slice(), &digest_of("random"), &TestInterest, &Limits::default());
        }

        #[test]
        fn mutated_tars_never_panic(
            mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
            compress in 0u8..3,
        ) {
            let mut tar = valid_layer();
            for (position, value) in mutations {
                let index = position % tar.len();
                tar[index] = value;
            }
            let blob = match compress {
                0 => tar,
                1 => gzip(&tar),
                _ => zstd(&tar),
            };
            if let Ok(contents) = read_layer(blob.as_slice(), &digest_of("mutated"), &TestInterest, &Limits::default()) {
                let mut view = FileView::new();
                contents.apply_to(&mut view, &TestInterest);
                for file in view.files() {
                    prop_assert!(file.path.starts_with('/'));
                    prop_assert!(!file.path.split('/').any(|part| part == ".."));
                }
            }
        }

        #[test]
        fn mutated_compressed_streams_never_panic(
            mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            zstd_stream in any::<bool>(),
        ) {
            let tar = valid_layer();
            let mut blob = if zstd_stream { zstd(&tar) } else { gzip(&tar) };
            for (position, value) in mutations {
                let index = position % blob.len();
                blob[index] = value;
            }
            let _ = read_layer(blob.as_slice(), &digest_of("mutated"), &TestInterest, &Limits::default());
        }
    }
}

#[test]
fn layer_contents_round_trip_through_serde() {
    let blob = gzip(&layered_image()[1]);
    let contents = read_layer(
        blob.as_slice(),
        &sha256(&blob),
        &TestInterest,
        &Limits::default(),
    )
    .unwrap();
    let json = serde_json::to_string(&contents).unwrap();
    let back: crscan_image::LayerContents = serde_json::from_str(&json).unwrap();
    assert_eq!(back, contents);
    assert!(back.written.contains("/usr/bin/tool"));
}

/// Records what progress hears.
#[derive(Default)]
struct Recorder {
    events: std::sync::Mutex<Vec<String>>,
    bytes: std::sync::atomic::AtomicU64,
}

impl crscan_image::Progress for Recorder {
    fn image_opened(&self, info: &crscan_image::ImageInfo) {
        self.events
            .lock()
            .unwrap()
            .push(format!("opened {}", info.layers.len()));
    }
    fn layer_started(&self, index: usize, _layer: &crscan_image::LayerInfo) {
        self.events.lock().unwrap().push(format!("started {index}"));
    }
    fn bytes_read(&self, compressed: u64) {
        self.bytes
            .fetch_add(compressed, std::sync::atomic::Ordering::Relaxed);
    }
    fn layer_finished(&self, index: usize) {
        self.events
            .lock()
            .unwrap()
            .push(format!("finished {index}"));
    }
}

#[test]
fn progress_hears_every_layer_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let layers: Vec<(Vec<u8>, Vec<u8>)> = layered_image()
        .into_iter()
        .map(|tar| (gzip(&tar), tar))
        .collect();
    let total: u64 = layers.iter().map(|(blob, _)| blob.len() as u64).sum();
    oci_layout(dir.path(), &layers);
    let recorder = Recorder::default();
    let source = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    read_image(&source, &ReadOptions::default(), &TestInterest, &recorder).unwrap();
    assert_eq!(
        recorder.events.lock().unwrap().join(", "),
        "opened 3, started 0, finished 0, started 1, finished 1, started 2, finished 2"
    );
    assert_eq!(
        recorder.bytes.load(std::sync::atomic::Ordering::Relaxed),
        total
    );
}

#[test]
fn newer_docker_archives_embed_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let layers: Vec<(Vec<u8>, Vec<u8>)> = layered_image()
        .into_iter()
        .map(|tar| (gzip(&tar), tar))
        .collect();
    let manifest_digest = oci_layout(&layout, &layers);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(&layout, &manifest_digest)).unwrap())
            .unwrap();
    let blob_member = |descriptor: &serde_json::Value| {
        let digest: Digest = descriptor["digest"].as_str().unwrap().parse().unwrap();
        format!("blobs/sha256/{}", digest.hex())
    };
    let docker_manifest = serde_json::json!([{
        "Config": blob_member(&manifest["config"]),
        "RepoTags": ["example:2"],
        "Layers": manifest["layers"].as_array().unwrap().iter().map(blob_member).collect::<Vec<_>>(),
    }]);
    std::fs::write(
        layout.join("manifest.json"),
        serde_json::to_vec(&docker_manifest).unwrap(),
    )
    .unwrap();
    let path = dir.path().join("docker-oci.tar");
    std::fs::write(&path, tar_dir(&layout)).unwrap();
    let source = ImageSource::parse(&path.display().to_string()).unwrap();
    assert_eq!(source, ImageSource::DockerArchive(path.clone()));
    let (info, view) = read(&source);
    assert_eq!(info.repo_tags, vec!["example:2".to_owned()]);
    assert_eq!(info.layers[0].digest, sha256(&layers[0].0));
    check_layered_view(&view);
    // Read as an OCI archive it gives the same files.
    let (_, oci_view) = read(&ImageSource::OciArchive(path));
    assert_eq!(paths(&oci_view), paths(&view));
}

/// Runs a command and fails the test with its output if it fails.
fn run(program: &str, args: &[&str], dir: &Path) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| {
            panic!("{program} must be installed (.ci/run installs it): {error}")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Images written by real tools: umoci builds a layout with a whiteout layer, and
/// skopeo converts it to docker-archive and oci-archive; all read alike.
#[test]
fn images_from_umoci_and_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "ID=umoci\n").unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "Package: a\n").unwrap();
    std::fs::write(root.join("etc/gone"), "soon whited out\n").unwrap();
    std::fs::write(dir.path().join("layer.tar"), tar_dir(&root)).unwrap();
    std::fs::create_dir_all(dir.path().join("update")).unwrap();
    std::fs::write(dir.path().join("update/status"), "Package: b\n").unwrap();
    let here = dir.path();
    run("umoci", &["init", "--layout", "img"], here);
    run("umoci", &["new", "--image", "img:t"], here);
    run(
        "umoci",
        &["raw", "add-layer", "--image", "img:t", "layer.tar"],
        here,
    );
    run(
        "umoci",
        &["insert", "--image", "img:t", "--whiteout", "/etc/gone"],
        here,
    );
    run(
        "umoci",
        &[
            "insert",
            "--image",
            "img:t",
            "update/status",
            "/var/lib/dpkg/status",
        ],
        here,
    );
    run(
        "skopeo",
        &[
            "copy",
            "oci:img:t",
            "docker-archive:docker.tar:example/umoci:1",
        ],
        here,
    );
    run(
        "skopeo",
        &["copy", "oci:img:t", "oci-archive:oci.tar"],
        here,
    );
    let mut answers = Vec::new();
    for name in [
        "oci:img:t",
        "docker.tar",
        "oci.tar",
        "docker-archive:docker.tar",
    ] {
        let source = ImageSource::parse(&here.join(name).display().to_string())
            .or_else(|_| ImageSource::parse(&format!("oci:{}:t", here.join("img").display())))
            .unwrap();
        let (info, view) = read_image(&source, &ReadOptions::default(), &TestInterest, &NoProgress)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(info.layers.len(), 3, "{name}");
        assert_eq!(
            text(&view, "/etc/os-release").as_deref(),
            Some("ID=umoci\n")
        );
        assert!(view.get("/etc/gone").is_none(), "{name}: whiteout");
        let status = view.get("/var/lib/dpkg/status").unwrap();
        assert_eq!(&*status.contents, b"Package: b\n");
        assert_eq!(status.history.len(), 1);
        answers.push(paths(&view));
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]));
}

/// Legacy `docker save` output links a repeated layer to the first copy.
#[test]
fn docker_archive_layers_may_be_links_to_other_entries() {
    let dir = tempfile::tempdir().unwrap();
    let first = tar_of(&[Item::File("etc/a", b"one".to_vec())]);
    let second = tar_of(&[Item::File("etc/b", b"two".to_vec())]);
    let diff_ids = [
        sha256(&first).to_string(),
        sha256(&second).to_string(),
        sha256(&first).to_string(),
    ];
    let config = serde_json::to_vec(&serde_json::json!({
        "os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    for (name, data) in [
        ("aaa/layer.tar", &first),
        ("bbb/layer.tar", &second),
        ("config.json", &config),
    ] {
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .unwrap();
    }
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "ccc/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json",
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
    }]))
    .unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(manifest.len() as u64);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", manifest.as_slice())
        .unwrap();
    let path = dir.path().join("legacy.tar");
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    let source: ImageSource = format!("docker-archive:{}", path.display())
        .parse()
        .unwrap();
    let (info, view) = read(&source);
    assert_eq!(info.layers.len(), 3);
    assert_eq!(info.layers[2].digest, sha256(&first));
    assert_eq!(text(&view, "/etc/a").as_deref(), Some("one"));
    assert_eq!(text(&view, "/etc/b").as_deref(), Some("two"));
    assert_eq!(
        view.get("/etc/a").unwrap().layer_digest,
        Some(sha256(&first))
    );
}
