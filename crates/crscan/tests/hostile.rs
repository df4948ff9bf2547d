//! A corpus of hostile images and requests, built at test time, with the outcome each
//! must have: what an attacker or a careless user tries (issue #17), including the
//! attacks that were already handled, so that they stay handled.
//!
//! Images are OCI layouts written here from raw tar headers (so that paths with `..`,
//! absolute paths, device nodes and links leading out of the image can be written at
//! all). For the memory cases the peak RSS of the process under test is read from
//! `/proc/PID/status` (`VmHWM`) while it runs. Every command runs in an empty working
//! directory that must still be empty afterwards, and the server's only writes are
//! in its data directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const ADMIN: &str = "hostile-admin-token";
const PUSHER: &str = "hostile-pusher-token";

// ---------------------------------------------------------------------------
// Writing layers from raw tar headers.

/// Tar entry types used here.
const REGULAR: u8 = b'0';
const HARDLINK: u8 = b'1';
const SYMLINK: u8 = b'2';
const CHAR_DEVICE: u8 = b'3';
const GNU_LONG_NAME: u8 = b'L';

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// One tar header of `kind` for `name` (at most 100 bytes, written as is: `..` and
/// leading `/` included), `link` target and `size`.
fn header(name: &[u8], kind: u8, link: &[u8], size: u64) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    octal(&mut block[100..108], 0o644);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 1_700_000_000);
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar ");
    block[263..265].copy_from_slice(b" \0");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
    block
}

/// A tar stream written entry by entry into `out`.
struct Tar<W: Write> {
    out: W,
}

impl<W: Write> Tar<W> {
    fn entry(&mut self, name: &[u8], kind: u8, link: &[u8], data: &[u8]) {
        if name.len() > 100 {
            let mut long = name.to_vec();
            long.push(0);
            self.entry(b"././@LongLink", GNU_LONG_NAME, b"", &long);
            self.entry(&name[..100], kind, link, data);
            return;
        }
        self.out
            .write_all(&header(name, kind, link, data.len() as u64))
            .unwrap();
        self.out.write_all(data).unwrap();
        self.pad(data.len() as u64);
    }

    fn file(&mut self, name: &str, data: &[u8]) {
        self.entry(name.as_bytes(), REGULAR, b"", data);
    }

    fn pad(&mut self, size: u64) {
        let padding = (512 - size % 512) % 512;
        self.out
            .write_all(&vec![0u8; usize::try_from(padding).unwrap()])
            .unwrap();
    }

    fn finish(mut self) -> W {
        self.out.write_all(&[0u8; 1024]).unwrap();
        self.out
    }
}

/// Hashes and counts what passes through to `inner`.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let count = self.inner.write(buf)?;
        self.hasher.update(&buf[..count]);
        self.count += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A blob written into an OCI layout.
#[derive(Clone)]
struct Blob {
    digest: String,
    size: u64,
    /// For a layer, the digest of its uncompressed tar.
    diff_id: String,
}

fn blobs_dir(root: &Path) -> PathBuf {
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_blob(root: &Path, bytes: &[u8]) -> Blob {
    let hex = hex::encode(Sha256::digest(bytes));
    std::fs::write(blobs_dir(root).join(&hex), bytes).unwrap();
    Blob {
        digest: format!("sha256:{hex}"),
        size: bytes.len() as u64,
        diff_id: String::new(),
    }
}

/// Writes a gzip layer into the layout at `root`, streaming: `fill` writes the tar
/// entries; the blob and diff digests are computed on the way.
fn write_layer(root: &Path, fill: impl FnOnce(&mut Tar<&mut dyn Write>)) -> Blob {
    write_layer_at(root, flate2::Compression::fast(), fill)
}

/// [`write_layer`] at a chosen compression level.
fn write_layer_at(
    root: &Path,
    level: flate2::Compression,
    fill: impl FnOnce(&mut Tar<&mut dyn Write>),
) -> Blob {
    let partial = blobs_dir(root).join("partial");
    let file = Hashing::new(std::fs::File::create(&partial).unwrap());
    let mut plain = Hashing::new(flate2::write::GzEncoder::new(file, level));
    {
        let mut tar = Tar {
            out: &mut plain as &mut dyn Write,
        };
        fill(&mut tar);
        tar.finish();
    }
    let diff_id = plain.digest();
    let file = plain.inner.finish().unwrap();
    let digest = file.digest();
    let size = file.count;
    drop(file);
    std::fs::rename(
        &partial,
        blobs_dir(root).join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    Blob {
        digest,
        size,
        diff_id,
    }
}

/// Writes the configuration, manifest and `index.json` of an image of `layers`.
fn write_layout(root: &Path, layers: &[Blob]) -> Blob {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let config = write_blob(
        root,
        json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers",
                "diff_ids": layers.iter().map(|layer| layer.diff_id.clone()).collect::<Vec<_>>()}})
        .to_string()
        .as_bytes(),
    );
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest, "size": config.size},
        "layers": layers.iter().map(|layer| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.digest, "size": layer.size})).collect::<Vec<_>>()});
    let manifest = write_blob(root, manifest.to_string().as_bytes());
    write_index(root, &manifest.digest, manifest.size);
    manifest
}

fn write_index(root: &Path, digest: &str, size: u64) {
    std::fs::write(
        root.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]})
        .to_string(),
    )
    .unwrap();
}

const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.10.3\n";

fn small_lockfile(name: &str, version: &str) -> Vec<u8> {
    json!({"name": "app", "lockfileVersion": 3, "packages": {
        "": {"name": "app", "version": "1.0.0"},
        format!("node_modules/{name}"): {"version": version}}})
    .to_string()
    .into_bytes()
}

/// A `package-lock.json` of `size` bytes that is valid JSON and compresses about 100
/// times, under the decompression-ratio limit: one long string of `a` with a
/// pseudo-random letter every 2 KiB.
fn huge_lockfile(size: usize) -> Vec<u8> {
    let head = br#"{"lockfileVersion":3,"packages":{"":{"name":"app","description":""#;
    let tail = br#""}}}"#;
    let mut bytes = vec![b'a'; size];
    bytes[..head.len()].copy_from_slice(head);
    bytes[size - tail.len()..].copy_from_slice(tail);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for at in (head.len()..size - tail.len()).step_by(2048) {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        bytes[at] = b'b' + u8::try_from((state >> 59) % 24).unwrap();
    }
    bytes
}

/// The layer of the issue: 20 `package-lock.json` files of 60 MiB each, about 12 MB
/// compressed.
fn lockfile_bomb(root: &Path) {
    let contents = huge_lockfile(60 << 20);
    let layer = write_layer(root, |tar| {
        tar.file("etc/os-release", ALPINE_OS_RELEASE);
        for index in 0..20 {
            tar.file(&format!("srv/app{index:02}/package-lock.json"), &contents);
        }
    });
    write_layout(root, &[layer]);
}

// ---------------------------------------------------------------------------
// Running crscan and watching its memory.

/// The peak resident set (`VmHWM`) of a running process, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Runs `crscan ARGS` in the empty directory `cwd`, watching its peak RSS until it
/// exits; returns its output and that peak.
fn crscan_watched(cwd: &Path, args: &[&str]) -> (Output, u64) {
    let mut child = Command::new(CRSCAN)
        .args(args)
        .current_dir(cwd)
        .env_remove("CRSCAN_DB")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let err_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stderr.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let mut peak = 0;
    let status = loop {
        // VmHWM only grows, so the last reading before the exit is the peak, short
        // of what the last few milliseconds added.
        if let Some(rss) = peak_rss(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    };
    (output, peak)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `dir` holds nothing but `allowed` names.
fn assert_only(dir: &Path, allowed: &[&str]) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !allowed.contains(&name.as_str()))
        .collect();
    assert!(names.is_empty(), "written outside: {names:?} in {dir:?}");
}

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Images.

#[test]
fn escapes_links_and_device_nodes_are_read_inside_the_image() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let escape = format!("crscan-hostile-escape-{}", std::process::id());
    let root = work.path().join("image");
    let layer = write_layer(&root, |tar| {
        // Traversal and absolute paths land inside the image.
        tar.file(&format!("../../../../../../tmp/{escape}"), b"outside?");
        tar.file("/etc/absolute", b"absolute");
        tar.file("../../etc/os-release", ALPINE_OS_RELEASE);
        // A link out of the image resolves inside it; loops end.
        tar.entry(
            b"usr/lib/os-release",
            SYMLINK,
            b"../../../../../../../etc/shadow",
            b"",
        );
        tar.entry(b"etc/hard", HARDLINK, b"../../../../../etc/passwd", b"");
        tar.entry(b"lib/apk/db/installed", SYMLINK, b"loop", b"");
        tar.entry(b"lib/apk/db/loop", SYMLINK, b"installed", b"");
        // A device node where a package database belongs is not read.
        tar.entry(b"var/lib/dpkg/status", CHAR_DEVICE, b"", b"");
        // A lockfile behind a link to the root of the host resolves inside.
        tar.entry(b"srv", SYMLINK, b"/../../..", b"");
        tar.file(
            "app/package-lock.json",
            &small_lockfile("lodash", "4.17.15"),
        );
    });
    write_layout(&root, &[layer]);
    let image = format!("oci:{}", root.display());
    let (output, _) = crscan_watched(&cwd, &["sbom", "-f", "json", &image]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let text_document = document.to_string();
    assert!(text_document.contains("lodash"), "{document}");
    assert!(text_document.contains("alpine"), "{document}");
    assert!(!Path::new("/tmp").join(&escape).exists());
    assert_only(&cwd, &[]);
}

#[test]
fn bombs_floods_deep_trees_and_bad_manifests_are_stopped() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let sbom = |root: &Path| crscan_watched(&cwd, &["sbom", &format!("oci:{}", root.display())]);

    // A gzip bomb: 256 MiB of zeros in about 256 KiB.
    let root = work.path().join("bomb");
    let layer = write_layer_at(&root, flate2::Compression::best(), |tar| {
        tar.out
            .write_all(&header(b"etc/zeros", REGULAR, b"", 256 * MIB))
            .unwrap();
        let zeros = vec![0u8; MIB as usize];
        for _ in 0..256 {
            tar.out.write_all(&zeros).unwrap();
        }
    });
    write_layout(&root, &[layer]);
    let (output, peak) = sbom(&root);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("max_compression_ratio"), "{stderr}");
    assert!(peak < 200 * MIB, "peak RSS {peak}");

    // 200,000 files in one layer: read (under the entry limit) in bounded memory.
    let root = work.path().join("flood");
    let layer = write_layer(&root, |tar| {
        tar.file("etc/os-release", ALPINE_OS_RELEASE);
        for index in 0..200_000 {
            tar.file(&format!("f/{index}"), b"");
        }
    });
    write_layout(&root, &[layer]);
    let (output, peak) = sbom(&root);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(peak < 200 * MIB, "peak RSS {peak}");

    // A path 2,000 directories deep.
    let root = work.path().join("deep");
    let layer = write_layer(&root, |tar| {
        tar.file(&format!("{}file", "d/".repeat(2000)), b"deep");
    });
    write_layout(&root, &[layer]);
    let (output, _) = sbom(&root);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("max_path_depth"), "{stderr}");

    // 200 layers.
    let root = work.path().join("layers");
    let layers: Vec<Blob> = (0..200)
        .map(|index| write_layer(&root, |tar| tar.file(&format!("l/{index}"), b"x")))
        .collect();
    write_layout(&root, &layers);
    let (output, _) = sbom(&root);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("max_layers"), "{stderr}");

    // A manifest that is not JSON, and one naming a layer that is not there.
    let root = work.path().join("garbage");
    let garbage = write_blob(&root, b"{\"schemaVersion\": 2, \"layers\": [");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    write_index(&root, &garbage.digest, garbage.size);
    let (output, _) = sbom(&root);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("bad"),
        "{}",
        text(&output.stderr)
    );
    let root = work.path().join("missing");
    let absent = Blob {
        digest: format!("sha256:{}", "0".repeat(64)),
        size: 10,
        diff_id: format!("sha256:{}", "0".repeat(64)),
    };
    write_layout(&root, &[absent]);
    let (output, _) = sbom(&root);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("missing"),
        "{}",
        text(&output.stderr)
    );
    assert_only(&cwd, &[]);
}

#[test]
fn huge_lockfiles_stay_within_the_memory_budget() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();

    // 20 × 60 MiB: the scan ends naming the file that did not fit, in bounded memory.
    let root = work.path().join("bomb");
    lockfile_bomb(&root);
    let image = format!("oci:{}", root.display());
    let (output, peak) = crscan_watched(&cwd, &["sbom", &image]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("package-lock.json"), "{stderr}");
    assert!(stderr.contains("memory budget"), "{stderr}");
    assert!(stderr.contains("--memory-budget-mib 256"), "{stderr}");
    println!(
        "crscan sbom on 20 x 60 MiB lockfiles: peak RSS {} MiB",
        peak / MIB
    );
    assert!(peak < 400 * MIB, "crscan sbom peaked at {} MiB", peak / MIB);

    // A smaller budget stops it sooner and lower.
    let (output, small_peak) = crscan_watched(&cwd, &["sbom", "--memory-budget-mib", "64", &image]);
    assert!(!output.status.success());
    assert!(
        small_peak < peak,
        "64 MiB budget {small_peak}, 256 MiB budget {peak}"
    );

    // A file over the per-file limit is skipped with a diagnostic; the rest of the
    // image is still read.
    let root = work.path().join("one-big");
    let big = huge_lockfile(70 << 20);
    let layer = write_layer(&root, |tar| {
        tar.file("etc/os-release", ALPINE_OS_RELEASE);
        tar.file("srv/big/package-lock.json", &big);
        tar.file(
            "srv/small/package-lock.json",
            &small_lockfile("lodash", "4.17.15"),
        );
    });
    write_layout(&root, &[layer]);
    let (output, peak) = crscan_watched(
        &cwd,
        &["sbom", "-f", "json", &format!("oci:{}", root.display())],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped_over_limit: /srv/big/package-lock.json"),
        "{stderr}"
    );
    assert!(text(&output.stdout).contains("lodash"));
    assert!(peak < 400 * MIB, "peak RSS {peak}");
    assert_only(&cwd, &[]);
}

// ---------------------------------------------------------------------------
// The server.

/// A running `crscan serve` with an admin and a pusher token, killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(cwd: &Path, data_dir: &Path, log: PathBuf) -> Server {
        let mut command = Command::new(CRSCAN);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--workers", "1", "--gc-interval-hours", "0"])
            .current_dir(cwd)
            .env("HOME", cwd)
            .env("CRSCAN_TOKENS", format!("{ADMIN}:admin,{PUSHER}:pusher"))
            .env_remove("CRSCAN_CONFIG")
            .env_remove("CRSCAN_DB")
            .env_remove("CRSCAN_STORE")
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, port) = common::spawn_serve(command);
        Server { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn peak_rss(&self) -> u64 {
        peak_rss(self.child.id()).unwrap()
    }

    /// Calls the server with curl; returns the status and the body as JSON (Null
    /// when it is not JSON).
    fn curl(&self, method: &str, path: &str, token: &str, args: &[&str]) -> (u16, Value) {
        let output = Command::new("curl")
            .args(["-sS", "-g", "-X", method, "-w", "\n%{http_code}"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(args)
            .arg(format!("{}{path}", self.url()))
            .output()
            .unwrap();
        let stdout = text(&output.stdout);
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", "0"));
        (
            code.trim().parse().unwrap_or(0),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    fn upload_blob(&self, file: &Path, digest: &str) {
        let (status, body) = self.curl(
            "POST",
            &format!("/v2/default/bomb/blobs/uploads/?digest={digest}"),
            PUSHER,
            &["--data-binary", &format!("@{}", file.display())],
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Pushes the OCI layout at `root` as `default/bomb:latest`; returns the image id.
    fn push(&self, root: &Path) -> String {
        let index: Value =
            serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let manifest_path = blobs_dir(root).join(manifest_digest.trim_start_matches("sha256:"));
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
        for layer in manifest["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_owned());
        }
        for digest in &blobs {
            let file = blobs_dir(root).join(digest.trim_start_matches("sha256:"));
            self.upload_blob(&file, digest);
        }
        let (status, body) = self.curl(
            "PUT",
            "/v2/default/bomb/manifests/latest",
            PUSHER,
            &[
                "-H",
                "Content-Type: application/vnd.oci.image.manifest.v1+json",
                "--data-binary",
                &format!("@{}", manifest_path.display()),
            ],
        );
        assert_eq!(status, 201, "{body}");
        let (status, images) = self.curl(
            "GET",
            "/container-registry/v1/images?folderId=default&pageSize=1000",
            ADMIN,
            &[],
        );
        assert_eq!(status, 200, "{images}");
        images["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|image| image["digest"] == manifest_digest.as_str())
            .map(|image| image["id"].as_str().unwrap().to_owned())
            .unwrap()
    }

    fn wait(&self, operation_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, operation) =
                self.curl("GET", &format!("/operations/{operation_id}"), ADMIN, &[]);
            assert_eq!(status, 200, "{operation}");
            if operation["done"] == true {
                return operation;
            }
            assert!(Instant::now() < deadline, "{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends an unauthenticated `POST /container-registry/v1/scans` announcing a body of
/// `size` bytes and writes as much of it as the server takes; returns the status
/// line the server answered with.
fn unauthenticated_upload(port: u16, size: u64) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /container-registry/v1/scans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; MIB as usize];
    let mut sent = 0;
    while sent < size {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += MIB;
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(count) = stream.read(&mut buffer) {
        if count == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..count]);
        if answer.windows(4).any(|window| window == b"\r\n\r\n") {
            break;
        }
    }
    text(&answer).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_server_holds_its_memory_against_hostile_bodies_and_layers() {
    if !common::tools_present(&["curl"], false) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().join("cwd");
    let data_dir = cwd.join("data");
    std::fs::create_dir_all(data_dir.join("vulndb")).unwrap();
    let db = data_dir.join("vulndb/crscan.db");
    common::run(
        Command::new(CRSCAN)
            .args(["db", "build", "--from"])
            .arg(format!("{DATA}/vulndb/alpine-secdb/v3.4/main.yaml"))
            .arg("--db")
            .arg(&db)
            .current_dir(&cwd),
    );
    let root = work.path().join("bomb");
    lockfile_bomb(&root);
    let server = Server::start(&cwd, &data_dir, work.path().join("serve.log"));

    // Four unauthenticated 400 MB bodies at once are answered 401 without being read.
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let port = server.port;
            std::thread::spawn(move || unauthenticated_upload(port, 400_000_000))
        })
        .collect();
    for upload in uploads {
        let status = upload.join().unwrap();
        assert!(status.is_empty() || status.contains(" 401 "), "{status}");
    }
    let peak = server.peak_rss();
    println!(
        "server after 4 unauthenticated 400 MB bodies: peak RSS {} MiB",
        peak / MIB
    );
    assert!(
        peak < 300 * MIB,
        "the server peaked at {} MiB during unauthenticated uploads",
        peak / MIB
    );

    // Malformed requests are refused.
    let (status, body) = server.curl(
        "POST",
        "/container-registry/v1/scans",
        ADMIN,
        &["-H", "Content-Type: application/json", "--data-binary", "{"],
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.curl(
        "PUT",
        "/v2/default/bomb/manifests/latest",
        PUSHER,
        &[
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            r#"{"schemaVersion": 2, "layers": "#,
        ],
    );
    assert_eq!(status, 400);

    // The lockfile layer: the scan ends RESOURCE_EXHAUSTED naming the file, and the
    // server stays under 400 MB.
    let image_id = server.push(&root);
    let (status, operation) = server.curl(
        "POST",
        "/container-registry/v1/scans",
        ADMIN,
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"imageId": image_id}).to_string(),
        ],
    );
    assert_eq!(status, 200, "{operation}");
    let done = server.wait(operation["id"].as_str().unwrap());
    assert_eq!(done["error"]["code"], 8, "{done}");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("package-lock.json"), "{message}");
    assert!(message.contains("scan_memory_budget_mib"), "{message}");
    let peak = server.peak_rss();
    println!(
        "server after scanning 20 x 60 MiB lockfiles: peak RSS {} MiB",
        peak / MIB
    );
    assert!(
        peak < 400 * MIB,
        "the server peaked at {} MiB scanning the lockfile layer",
        peak / MIB
    );

    // An orphan blob for gc: pushed, never referenced.
    let orphan = work.path().join("orphan");
    std::fs::write(&orphan, b"an orphan blob").unwrap();
    let orphan_digest = format!("sha256:{}", hex::encode(Sha256::digest(b"an orphan blob")));
    server.upload_blob(&orphan, &orphan_digest);
    server.stop();

    // gc: a dry run says so and how to delete; the grace period's keep is explained;
    // --delete lists each deleted blob once.
    let gc = |args: &[&str]| {
        let output = Command::new(CRSCAN)
            .arg("gc")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .current_dir(&cwd)
            .env_remove("CRSCAN_STORE")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        (text(&output.stdout), text(&output.stderr))
    };
    let (stdout, stderr) = gc(&[]);
    assert!(!stdout.contains(&orphan_digest), "{stdout}");
    assert!(stderr.contains("dry run: nothing was deleted"), "{stderr}");
    assert!(
        stderr.contains("younger than the grace period of 3600 seconds"),
        "{stderr}"
    );
    let (stdout, stderr) = gc(&["--grace-seconds", "0"]);
    assert!(
        stdout.contains(&format!("would delete {orphan_digest}")),
        "{stdout}"
    );
    assert!(stderr.contains("run `crscan gc --delete`"), "{stderr}");
    let (stdout, stderr) = gc(&["--delete", "--grace-seconds", "0"]);
    let both = format!("{stdout}{stderr}");
    assert_eq!(both.matches(&orphan_digest).count(), 1, "{both}");
    assert!(
        stdout.contains(&format!("deleted {orphan_digest}")),
        "{stdout}"
    );
    let missing = Command::new(CRSCAN)
        .args(["gc", "--data-dir"])
        .arg(cwd.join("no-such-dir"))
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no data directory at"),
        "{}",
        text(&missing.stderr)
    );

    // Everything the server and the commands wrote is in the data directory.
    assert_only(&cwd, &["data"]);
}

/// `GET /readyz`, as JSON.
fn readyz(server: &Server) -> Value {
    let output = Command::new("curl")
        .args(["-sS", &format!("{}/readyz", server.url())])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

#[test]
fn readyz_says_building_and_unusable_instead_of_fresh() {
    if !common::tools_present(&["curl", "mkfifo"], false) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();

    // A database built with --allow-partial from something that is no feed holds no
    // advisories: the server calls it unusable, not fresh.
    let empty_dir = cwd.join("empty");
    std::fs::create_dir_all(empty_dir.join("vulndb")).unwrap();
    common::run(
        Command::new(CRSCAN)
            .args(["db", "build", "--allow-partial", "--from"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
            .arg("--db")
            .arg(empty_dir.join("vulndb/crscan.db")),
    );
    let server = Server::start(&cwd, &empty_dir, work.path().join("empty.log"));
    let ready = readyz(&server);
    assert_eq!(
        ready["vulnerabilityDatabase"]["status"], "unusable",
        "{ready}"
    );
    assert!(
        ready["vulnerabilityDatabase"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no advisories"),
        "{ready}"
    );
    server.stop();

    // While --db-from builds the first database (its feed is a pipe nobody has
    // written to yet), /readyz says building; once the feed arrives, fresh.
    let building_dir = cwd.join("building");
    std::fs::create_dir_all(&building_dir).unwrap();
    let feed = work.path().join("main.yaml");
    common::run(Command::new("mkfifo").arg(&feed));
    let log = work.path().join("building.log");
    let mut command = Command::new(CRSCAN);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&building_dir)
        .arg("--db-from")
        .arg(&feed)
        .args(["--workers", "0", "--gc-interval-hours", "0"])
        .current_dir(&cwd)
        .env_remove("CRSCAN_TOKENS")
        .env_remove("CRSCAN_CONFIG")
        .env_remove("CRSCAN_DB")
        .env_remove("CRSCAN_STORE")
        .env("CRSCAN_DB_AUTO_UPDATE", "0")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap());
    let (child, port) = common::spawn_serve(command);
    let server = Server { child, port, log };
    let ready = readyz(&server);
    assert_eq!(
        ready["vulnerabilityDatabase"]["status"], "building",
        "{ready}"
    );
    assert!(server.log_text().contains("state: building"));
    std::fs::write(
        &feed,
        std::fs::read(format!("{DATA}/vulndb/alpine-secdb/v3.4/main.yaml")).unwrap(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = readyz(&server);
        if ready["vulnerabilityDatabase"]["status"] == "fresh" {
            break;
        }
        assert_eq!(
            ready["vulnerabilityDatabase"]["status"], "building",
            "{ready}"
        );
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    assert_only(&cwd, &["empty", "building"]);
}
