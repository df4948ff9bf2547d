//! End-to-end tests of images in other registries: `crscan scan`/`sbom` of
//! `docker://` images and `crscan mirror`, against two real registries started here:
//! Debian's `docker-registry` over TLS (an openssl test certificate) with htpasswd
//! auth or with Bearer tokens from a token endpoint this test serves on loopback, and
//! `crscan serve` with tokens. Images are pushed with skopeo and curl.
//!
//! The lying sources are real registries whose storage the test spoils on disk (a
//! blob's bytes, a manifest grown past the limit) or configures to redirect blobs to
//! another host (docker-registry's `redirect` storage middleware).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

mod common;

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vulndb");
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";
const CREDS: &str = "alice:s3cret-pass";
const TOKEN: &str = "push-secret";
const CRSCAN_CREDS: &str = "ci:push-secret";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn tools_present() -> bool {
    common::tools_present(
        &["docker-registry", "skopeo", "openssl", "htpasswd", "curl"],
        false,
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Runs `crscan ARGS` with no auth files from the user's environment.
fn crscan(home: &Path, args: &[&str]) -> Output {
    Command::new(CRSCAN)
        .args(args)
        .env("HOME", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("CRSCAN_DB")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

// --- registries -------------------------------------------------------------------

/// A test certificate for 127.0.0.1, made once per work directory.
fn certificate(work: &Path) -> (PathBuf, PathBuf) {
    let cert = work.join("cert.pem");
    let key = work.join("key.pem");
    if !cert.exists() {
        common::run(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null()),
        );
    }
    (cert, key)
}

/// A running `docker-registry` over TLS, killed on drop.
struct DockerRegistry {
    child: Child,
    port: u16,
    storage: PathBuf,
}

impl DockerRegistry {
    /// Starts one with `auth` (a YAML `auth:` block, indented) and `extra` YAML.
    fn start(work: &Path, name: &str, auth: &str, extra: &str) -> DockerRegistry {
        let (cert, key) = certificate(work);
        let storage = work.join(format!("{name}-storage"));
        for _ in 0..5 {
            let port = free_port();
            let config = work.join(format!("{name}.yml"));
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{extra}\
                     http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n{auth}",
                    storage.display(),
                    cert.display(),
                    key.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Ready when it accepts connections; gone when another test took the port.
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return DockerRegistry {
                        child,
                        port,
                        storage,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry {name} did not start");
    }

    fn htpasswd(work: &Path, name: &str) -> DockerRegistry {
        let file = work.join("htpasswd");
        let line = common::run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
        std::fs::write(&file, line).unwrap();
        DockerRegistry::start(
            work,
            name,
            &format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            ),
            "",
        )
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file holding a blob's bytes in the filesystem storage driver.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `crscan serve` with a pusher+admin token, killed on drop.
struct Crscan {
    child: Child,
    port: u16,
}

impl Crscan {
    fn start(data_dir: &Path) -> Crscan {
        Crscan::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Crscan {
        let mut command = Command::new(CRSCAN);
        command
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("CRSCAN_TOKENS", format!("{TOKEN}:pusher+admin"))
            .env_remove("CRSCAN_STORE")
            .env_remove("CRSCAN_CONFIG")
            .env("RUST_LOG", "warn")
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .stderr(Stdio::inherit());
        let (child, port) = common::spawn_serve(command);
        Crscan { child, port }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Crscan {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` against a registry (`https` with `-k`, or `http`), with basic credentials;
/// returns the status, the headers (lower-case names) and the body.
fn curl(url: &str, creds: &str, args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-sk", "-D", "-", "-H", "Expect:", "-u", creds])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = output.stdout;
    let split = text
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(text.len());
    let head = String::from_utf8_lossy(&text[..split]).into_owned();
    let body = text.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, body)
}

/// The manifest digest a tag has in a registry, or `None` when it has none.
fn tag_digest(base: &str, creds: &str, repository: &str, tag: &str) -> Option<String> {
    let accept = format!("Accept: {OCI_MANIFEST}, {OCI_INDEX}");
    let (status, headers, _) = curl(
        &format!("{base}/v2/{repository}/manifests/{tag}"),
        creds,
        &["-I", "-H", &accept],
    );
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "HEAD {repository}:{tag} at {base}");
    headers
        .into_iter()
        .find(|(key, _)| key == "docker-content-digest")
        .map(|(_, value)| value)
}

fn blob_exists(base: &str, creds: &str, repository: &str, digest: &str) -> bool {
    curl(
        &format!("{base}/v2/{repository}/blobs/{digest}"),
        creds,
        &["-I"],
    )
    .0 == 200
}

/// Uploads a blob with a POST and a PUT.
fn push_blob(base: &str, creds: &str, repository: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let (status, headers, _) = curl(
        &format!("{base}/v2/{repository}/blobs/uploads/"),
        creds,
        &["-X", "POST", "-H", "Content-Length: 0"],
    );
    assert_eq!(status, 202, "POST upload to {repository}");
    let location = headers
        .into_iter()
        .find(|(key, _)| key == "location")
        .unwrap()
        .1;
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let (status, _, body) = curl(
        &format!("{url}{separator}digest={digest}"),
        creds,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.path().display()),
        ],
    );
    assert_eq!(status, 201, "PUT blob: {}", String::from_utf8_lossy(&body));
    digest
}

fn put_manifest(base: &str, creds: &str, repository: &str, reference: &str, bytes: &[u8]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let (status, _, body) = curl(
        &format!("{base}/v2/{repository}/manifests/{reference}"),
        creds,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {OCI_MANIFEST}"),
            "--data-binary",
            &format!("@{}", file.path().display()),
        ],
    );
    assert_eq!(
        status,
        201,
        "PUT manifest: {}",
        String::from_utf8_lossy(&body)
    );
}

// --- images -----------------------------------------------------------------------

/// An OCI image layout being written: blobs, and tags in `index.json`.
struct Layout {
    dir: PathBuf,
    tags: Vec<Value>,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            tags: Vec::new(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
            bytes,
        )
        .unwrap();
        json!({"digest": digest, "size": bytes.len()})
    }

    /// An image of gzip layers, each a list of files; returns its descriptor.
    fn image(&self, architecture: &str, layers: &[&[(&str, &str)]]) -> Value {
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for files in layers {
            let mut builder = tar::Builder::new(Vec::new());
            for (path, text) in *files {
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_cksum();
                builder
                    .append_data(&mut header, path, text.as_bytes())
                    .unwrap();
            }
            let tar_bytes = builder.into_inner().unwrap();
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar_bytes).unwrap();
            let mut descriptor = self.blob(&encoder.finish().unwrap());
            descriptor["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
            descriptors.push(descriptor);
            diff_ids.push(sha256(&tar_bytes));
        }
        let config = serde_json::to_vec(&json!({
            "architecture": architecture, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let mut config = self.blob(&config);
        config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config, "layers": descriptors,
        }))
        .unwrap();
        let mut descriptor = self.blob(&manifest);
        descriptor["mediaType"] = json!(OCI_MANIFEST);
        descriptor
    }

    /// An index of `images`, each with its platform.
    fn index(&self, images: &[(&str, Value)]) -> Value {
        let manifests: Vec<Value> = images
            .iter()
            .map(|(architecture, descriptor)| {
                let mut entry = descriptor.clone();
                entry["platform"] = json!({"os": "linux", "architecture": architecture});
                entry
            })
            .collect();
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        )
        .unwrap();
        let mut descriptor = self.blob(&index);
        descriptor["mediaType"] = json!(OCI_INDEX);
        descriptor
    }

    fn tag(&mut self, tag: &str, descriptor: &Value) {
        let mut entry = descriptor.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.tags.push(entry);
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": self.tags})).unwrap(),
        )
        .unwrap();
    }

    /// Pushes a tag with skopeo, every platform and the exact bytes.
    fn push(&self, tag: &str, destination: &str, creds: &str) {
        common::run(
            Command::new("skopeo")
                .args([
                    "copy",
                    "--all",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                ])
                .args(["--dest-creds", creds])
                .arg(format!("oci:{}:{tag}", self.dir.display()))
                .arg(destination),
        );
    }
}

fn dpkg(name: &str, source: Option<&str>, version: &str) -> String {
    let source = source
        .map(|source| format!("Source: {source}\n"))
        .unwrap_or_default();
    format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
         Architecture: amd64\n{source}Version: {version}\nDescription: {name} for a test\n\n"
    )
}

const BUSTER_OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 10 (buster)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"10\"\nVERSION=\"10 (buster)\"\nVERSION_CODENAME=buster\nID=debian\n";

/// Debian 10 with packages that have known vulnerabilities, in two layers.
fn debian_image(layout: &Layout, architecture: &str) -> Value {
    let base = [
        dpkg("base-files", None, "10.3+deb10u13"),
        dpkg("libssl1.1", Some("openssl"), "1.1.1n-0+deb10u1"),
        dpkg("openssl", None, "1.1.1n-0+deb10u1"),
        dpkg("zlib1g", Some("zlib"), "1:1.2.11.dfsg-1"),
    ]
    .concat();
    let added = base.clone() + &dpkg("sudo", None, "1.8.27-1+deb10u2");
    layout.image(
        architecture,
        &[
            &[
                ("etc/os-release", BUSTER_OS_RELEASE),
                ("var/lib/dpkg/status", &base),
            ],
            &[("var/lib/dpkg/status", &added)],
        ],
    )
}

/// A small image whose one file says `text` (distinct text, distinct blobs).
fn small_image(layout: &Layout, architecture: &str, text: &str) -> Value {
    layout.image(architecture, &[&[("data/file.txt", text)]])
}

/// An SBOM artifact whose subject is `subject` (a manifest descriptor).
fn referrer(subject: &Value, text: &str) -> (Vec<u8>, Vec<u8>) {
    let config = b"{}".to_vec();
    let sbom = text.as_bytes().to_vec();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&config), "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sbom+json", "digest": sha256(&sbom), "size": sbom.len()}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    }))
    .unwrap();
    (manifest, sbom)
}

/// The vulnerability database from the Debian tracker feed, built once.
fn database() -> &'static Path {
    static DATABASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DATABASE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("remote-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("crscan.db");
        common::run(
            Command::new(CRSCAN)
                .args(["db", "build", "--db"])
                .arg(&db)
                .arg("--from")
                .arg(Path::new(FEEDS).join("debian-security-tracker"))
                .env_remove("CRSCAN_DB"),
        );
        db
    })
}

// --- remote scan ------------------------------------------------------------------

#[test]
fn a_remote_scan_finds_what_the_local_scan_finds() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let mut layout = Layout::new(&work.path().join("layout"));
    let amd64 = debian_image(&layout, "amd64");
    layout.tag("1.0", &amd64);
    let arm64 = small_image(&layout, "arm64", "arm");
    let index = layout.index(&[("amd64", amd64.clone()), ("arm64", arm64.clone())]);
    layout.tag("multi", &index);
    let registry = DockerRegistry::htpasswd(work.path(), "scan");
    let data = work.path().join("crscan-data");
    let server = Crscan::start(&data);
    layout.push(
        "1.0",
        &format!("docker://{}/team/app:1.0", registry.host()),
        CREDS,
    );
    layout.push(
        "multi",
        &format!("docker://{}/team/app:multi", registry.host()),
        CREDS,
    );
    layout.push(
        "1.0",
        &format!("docker://{}/default/app:1.0", server.host()),
        CRSCAN_CREDS,
    );

    let db = database().to_str().unwrap().to_owned();
    let scan = |image: &str, extra: &[&str]| -> Output {
        let mut args = vec!["scan", image, "--db", &db, "--format", "json"];
        args.extend_from_slice(extra);
        crscan(home, &args)
    };
    let local = scan(&format!("oci:{}:1.0", layout.dir.display()), &[]);
    assert_ok(&local, "local scan");
    let local: Value = serde_json::from_slice(&local.stdout).unwrap();
    assert!(
        local["findings"]
            .as_array()
            .is_some_and(|list| !list.is_empty()),
        "the local scan finds nothing: {local}"
    );

    // docker-registry over TLS with htpasswd; crscan with a token, over plain HTTP.
    let sources = [
        (format!("docker://{}/team/app:1.0", registry.host()), CREDS),
        (
            format!("docker://{}/default/app:1.0", server.host()),
            CRSCAN_CREDS,
        ),
        (
            format!(
                "docker://{}/team/app@{}",
                registry.host(),
                amd64["digest"].as_str().unwrap()
            ),
            CREDS,
        ),
    ];
    for (image, creds) in &sources {
        let remote = scan(image, &["--creds", creds, "--tls-verify=false"]);
        assert_ok(&remote, image);
        let remote: Value = serde_json::from_slice(&remote.stdout).unwrap();
        assert_eq!(remote["findings"], local["findings"], "{image}");
        assert_eq!(remote["summary"], local["summary"], "{image}");
        assert_eq!(
            remote["image"]["manifest_digest"], amd64["digest"],
            "{image}"
        );
        assert_eq!(remote["image"]["name"], image.as_str());
    }

    // An index: the host's platform (amd64 here, or the fallback), or the one asked for.
    let image = format!("docker://{}/team/app:multi", registry.host());
    let picked = scan(&image, &["--creds", CREDS, "--tls-verify=false"]);
    assert_ok(&picked, "index scan");
    let picked: Value = serde_json::from_slice(&picked.stdout).unwrap();
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(picked["findings"], local["findings"]);
    }
    let sbom = crscan(
        home,
        &[
            "sbom",
            &image,
            "--platform",
            "linux/arm64",
            "--creds",
            CREDS,
            "--tls-verify=false",
            "--format",
            "json",
        ],
    );
    assert_ok(&sbom, "sbom --platform linux/arm64");
    let sbom_text = String::from_utf8_lossy(&sbom.stdout);
    assert!(
        sbom_text.contains(arm64["digest"].as_str().unwrap()),
        "{sbom_text}"
    );
    let missing = crscan(
        home,
        &[
            "sbom",
            &image,
            "--platform",
            "linux/s390x",
            "--creds",
            CREDS,
            "--tls-verify=false",
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no linux/s390x image"),
        "{}",
        stderr(&missing)
    );

    // Credentials from an auth file in the user's docker configuration.
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    let auth = base64_encode(CREDS.as_bytes());
    std::fs::write(
        home.join(".docker/config.json"),
        json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let from_file = scan(&sources[0].0, &["--tls-verify=false"]);
    assert_ok(&from_file, "scan with ~/.docker/config.json");
    // A credential helper named for the host, run as `docker-credential-NAME get`.
    let helpers = work.path().join("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-crscantest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = \"{}\" ] || exit 1\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\n",
            registry.host()
        ),
    )
    .unwrap();
    common::run(Command::new("chmod").arg("+x").arg(&helper));
    std::fs::write(
        home.join(".docker/config.json"),
        json!({"credHelpers": {registry.host(): "crscantest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let from_helper = Command::new(CRSCAN)
        .args(["sbom", &sources[0].0, "--tls-verify=false"])
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_ok(&from_helper, "sbom with a credential helper");
    std::fs::remove_file(home.join(".docker/config.json")).unwrap();

    // Without credentials, or with wrong ones: exit status 2, the registry refused.
    for extra in [&[][..], &["--creds", "alice:wrong"][..]] {
        for (image, _) in &sources[..2] {
            let mut args = vec!["--tls-verify=false"];
            args.extend_from_slice(extra);
            let refused = scan(image, &args);
            assert_eq!(
                refused.status.code(),
                Some(2),
                "{image} {extra:?}: {}",
                stderr(&refused)
            );
            assert!(
                stderr(&refused).contains("refused the credentials"),
                "{image}: {}",
                stderr(&refused)
            );
        }
    }
    // A self-signed certificate is refused unless --tls-verify=false says otherwise.
    let untrusted = scan(&sources[0].0, &["--creds", CREDS]);
    assert_eq!(untrusted.status.code(), Some(2));
    assert!(
        stderr(&untrusted).contains("--tls-verify=false"),
        "{}",
        stderr(&untrusted)
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |acc, (index, byte)| {
            acc | u32::from(*byte) << (16 - 8 * index)
        });
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(value >> (18 - 6 * index) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64url(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

// --- mirror -----------------------------------------------------------------------

/// The tags `mirror_source` pushes: (repository under `team/`, tag).
const MIRRORED_TAGS: &[(&str, &str)] = &[
    ("app", "1.0"),
    ("app", "1.1"),
    ("app", "latest"),
    ("app", "multi"),
    ("tools/builder", "v1"),
    ("tools/builder", "v2"),
    ("tools/deep/nested/cache", "x"),
];

/// Pushes the mirror test's repositories under `root`: nested names, several tags,
/// a two-platform index and an SBOM referrer of `app:1.0`, pushed by digest (and
/// under its fallback tag when `fallback_tag`). Returns the referrer's subject digest.
fn mirror_source(
    work: &Path,
    base: &str,
    host: &str,
    root: &str,
    creds: &str,
    fallback_tag: bool,
) -> String {
    let mut layout = Layout::new(&work.join("mirror-layout"));
    let app = debian_image(&layout, "amd64");
    layout.tag("app-1.0", &app);
    let app_next = small_image(&layout, "amd64", "1.1");
    layout.tag("app-1.1", &app_next);
    let arm = small_image(&layout, "arm64", "arm");
    let index = layout.index(&[("amd64", app.clone()), ("arm64", arm)]);
    layout.tag("app-multi", &index);
    let builder_one = small_image(&layout, "amd64", "builder 1");
    layout.tag("builder-v1", &builder_one);
    let builder_two = small_image(&layout, "amd64", "builder 2");
    layout.tag("builder-v2", &builder_two);
    layout.tag("cache-x", &builder_two);
    for (local, remote) in [
        ("app-1.0", "app:1.0"),
        ("app-1.0", "app:latest"),
        ("app-1.1", "app:1.1"),
        ("app-multi", "app:multi"),
        ("builder-v1", "tools/builder:v1"),
        ("builder-v2", "tools/builder:v2"),
        ("cache-x", "tools/deep/nested/cache:x"),
    ] {
        layout.push(local, &format!("docker://{host}/{root}/{remote}"), creds);
    }
    let (manifest, sbom) = referrer(&app, "{\"sbom\": true}");
    let app_repository = format!("{root}/app");
    push_blob(base, creds, &app_repository, b"{}");
    push_blob(base, creds, &app_repository, &sbom);
    let digest = sha256(&manifest);
    put_manifest(base, creds, &app_repository, &digest, &manifest);
    if fallback_tag {
        let subject = app["digest"].as_str().unwrap().replace(':', "-");
        put_manifest(base, creds, &app_repository, &subject, &manifest);
    }
    app["digest"].as_str().unwrap().to_owned()
}

fn mirror(home: &Path, source: &str, destination: &str, src_creds: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "mirror",
        "--src-creds",
        src_creds,
        "--src-tls-verify=false",
        "--dest-creds",
        CRSCAN_CREDS,
        "--dest-tls-verify=false",
        source,
        destination,
    ];
    args.extend_from_slice(extra);
    crscan(home, &args)
}

/// The `blobs: N copied, M mounted` figures of a mirror summary.
fn blobs_sent(output: &Output) -> (u64, u64) {
    let text = stderr(output);
    let line = text
        .lines()
        .find(|line| line.contains(" repositories; "))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let blobs = line.split("blobs: ").nth(1).unwrap();
    let numbers: Vec<u64> = blobs
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(2)
        .map(|part| part.parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

fn check_mirrored(
    source_base: &str,
    src_creds: &str,
    root: &str,
    destination_base: &str,
    prefix: &str,
) {
    for (repository, tag) in MIRRORED_TAGS {
        let source = tag_digest(source_base, src_creds, &format!("{root}/{repository}"), tag);
        let moved = tag_digest(
            destination_base,
            CRSCAN_CREDS,
            &format!("{prefix}/{repository}"),
            tag,
        );
        assert!(source.is_some(), "{root}/{repository}:{tag} at the source");
        assert_eq!(moved, source, "{prefix}/{repository}:{tag}");
    }
}

#[test]
fn mirror_from_docker_registry_into_crscan_is_exact_idempotent_and_resumable() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let registry = DockerRegistry::htpasswd(work.path(), "source");
    let source_base = format!("https://{}", registry.host());
    let subject = mirror_source(
        work.path(),
        &source_base,
        &registry.host(),
        "team",
        CREDS,
        true,
    );
    let server = Crscan::start(&work.path().join("crscan-data"));
    let destination_base = format!("http://{}", server.host());
    let source = format!("docker://{}/team", registry.host());
    let destination = format!("docker://{}/default/moved", server.host());

    // A dry run copies nothing and says what it would copy.
    let dry = mirror(home, &source, &destination, CREDS, &["--dry-run"]);
    assert_ok(&dry, "dry run");
    assert!(
        stderr(&dry).contains("would copy team/app:1.0"),
        "{}",
        stderr(&dry)
    );
    assert_eq!(
        tag_digest(&destination_base, CRSCAN_CREDS, "default/moved/app", "1.0"),
        None
    );

    let first = mirror(home, &source, &destination, CREDS, &[]);
    assert_ok(&first, "first mirror");
    // tools/builder:v2 and tools/deep/nested/cache:x are one image: its blobs are sent
    // to one repository and mounted into the other.
    let (copied, mounted) = blobs_sent(&first);
    assert!(copied > 0 && mounted >= 2, "{}", stderr(&first));
    check_mirrored(
        &source_base,
        CREDS,
        "team",
        &destination_base,
        "default/moved",
    );
    // The referrer came along (under its fallback tag), and crscan serves it as one.
    let (status, _, body) = curl(
        &format!("{destination_base}/v2/default/moved/app/referrers/{subject}"),
        CRSCAN_CREDS,
        &[],
    );
    assert_eq!(status, 200);
    let referrers: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        referrers["manifests"].as_array().unwrap().len(),
        1,
        "{referrers}"
    );

    // A second run over the unchanged source sends nothing.
    let second = mirror(home, &source, &destination, CREDS, &[]);
    assert_ok(&second, "second mirror");
    assert_eq!(blobs_sent(&second), (0, 0), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("nothing copied"),
        "{}",
        stderr(&second)
    );

    // A run killed after its first tag, then run again, ends with the same result.
    let mut child = Command::new(CRSCAN)
        .args([
            "mirror",
            "--jobs",
            "1",
            "--src-creds",
            CREDS,
            "--src-tls-verify=false",
        ])
        .args(["--dest-creds", CRSCAN_CREDS, "--dest-tls-verify=false"])
        .arg(&source)
        .arg(format!("docker://{}/default/resumed", server.host()))
        .env("HOME", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first_line = lines.next().unwrap().unwrap();
    assert!(first_line.starts_with("copied "), "{first_line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = mirror(
        home,
        &source,
        &format!("docker://{}/default/resumed", server.host()),
        CREDS,
        &[],
    );
    assert_ok(&resumed, "resumed mirror");
    // What the killed run had copied is not copied again.
    assert!(
        !stderr(&resumed).contains(first_line.split(" to ").next().unwrap()),
        "{}",
        stderr(&resumed)
    );
    check_mirrored(
        &source_base,
        CREDS,
        "team",
        &destination_base,
        "default/resumed",
    );

    // Wrong source credentials: the run cannot start, exit status 2.
    let refused = mirror(home, &source, &destination, "alice:wrong", &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("refused the credentials"),
        "{}",
        stderr(&refused)
    );

    // --repositories for a source without a catalog, names relative to the prefix.
    let list = work.path().join("repositories.txt");
    std::fs::write(&list, "# one a line\ntools/builder\n").unwrap();
    let listed = mirror(
        home,
        &source,
        &format!("docker://{}/default/listed", server.host()),
        CREDS,
        &["--repositories", list.to_str().unwrap()],
    );
    assert_ok(&listed, "mirror --repositories");
    assert!(
        tag_digest(
            &destination_base,
            CRSCAN_CREDS,
            "default/listed/tools/builder",
            "v2"
        )
        .is_some()
    );
    assert_eq!(
        tag_digest(&destination_base, CRSCAN_CREDS, "default/listed/app", "1.0"),
        None
    );
}

#[test]
fn mirror_from_crscan_copies_referrers_the_source_serves() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let source_server = Crscan::start(&work.path().join("source-data"));
    let source_base = format!("http://{}", source_server.host());
    let subject = mirror_source(
        work.path(),
        &source_base,
        &source_server.host(),
        "default/team",
        CRSCAN_CREDS,
        false,
    );
    // crscan's catalog names repositories by registry id, as cr.yandex does.
    let (_, _, catalog) = curl(&format!("{source_base}/v2/_catalog"), CRSCAN_CREDS, &[]);
    let catalog: Value = serde_json::from_slice(&catalog).unwrap();
    let registry_id = catalog["repositories"][0]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let server = Crscan::start(&work.path().join("crscan-data"));
    let destination_base = format!("http://{}", server.host());
    let output = mirror(
        home,
        &format!("docker://{}/{registry_id}/team", source_server.host()),
        &format!("docker://{}/default", server.host()),
        CRSCAN_CREDS,
        &["--jobs", "3"],
    );
    assert_ok(&output, "mirror crscan to crscan");
    check_mirrored(
        &source_base,
        CRSCAN_CREDS,
        "default/team",
        &destination_base,
        "default",
    );
    let (status, _, body) = curl(
        &format!("{destination_base}/v2/default/app/referrers/{subject}"),
        CRSCAN_CREDS,
        &[],
    );
    assert_eq!(status, 200);
    let referrers: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        referrers["manifests"].as_array().unwrap().len(),
        1,
        "{referrers}"
    );
    assert_eq!(
        referrers["manifests"][0]["artifactType"],
        "application/vnd.example.sbom+json"
    );
}

// --- a source that lies -----------------------------------------------------------

#[test]
fn a_lying_source_fails_the_item_and_writes_nothing_wrong() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let registry = DockerRegistry::htpasswd(work.path(), "liar");
    let mut layout = Layout::new(&work.path().join("layout"));
    let honest = small_image(&layout, "amd64", "honest");
    layout.tag("honest", &honest);
    let spoiled = small_image(&layout, "amd64", "spoiled blob, same length");
    layout.tag("spoiled", &spoiled);
    let large = small_image(&layout, "amd64", "large manifest");
    layout.tag("large", &large);
    for tag in ["honest", "spoiled"] {
        layout.push(
            tag,
            &format!("docker://{}/liar/{tag}:1", registry.host()),
            CREDS,
        );
    }
    // A layer whose stored bytes no longer match its digest (same length).
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout.dir.join("blobs/sha256").join(
                spoiled["digest"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("sha256:")
                    .unwrap(),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&layer_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer_file, bytes).unwrap();
    let server = Crscan::start(&work.path().join("crscan-data"));
    let destination_base = format!("http://{}", server.host());
    let output = mirror(
        home,
        &format!("docker://{}/liar", registry.host()),
        &format!("docker://{}/default", server.host()),
        CREDS,
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("1 failed:"), "{text}");
    assert!(
        text.contains(&format!("liar/spoiled:1: blob {layer}"))
            && text.contains("the bytes served have digest"),
        "{text}"
    );
    // The honest image arrived; nothing of the lies did.
    assert_eq!(
        tag_digest(&destination_base, CRSCAN_CREDS, "default/honest", "1").as_deref(),
        honest["digest"].as_str()
    );
    assert_eq!(
        tag_digest(&destination_base, CRSCAN_CREDS, "default/spoiled", "1"),
        None
    );
    assert!(!blob_exists(
        &destination_base,
        CRSCAN_CREDS,
        "default/spoiled",
        &layer
    ));

    // A manifest past the 4 MiB limit, from a crscan that accepts up to 16 MiB.
    let large_source = Crscan::start_with(
        &work.path().join("large-source"),
        &["--manifest-limit-bytes", "16777216"],
    );
    let large_base = format!("http://{}", large_source.host());
    layout.push(
        "large",
        &format!("docker://{}/default/liar/large:1", large_source.host()),
        CRSCAN_CREDS,
    );
    let large_file = layout.dir.join("blobs/sha256").join(
        large["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    let mut grown: Value = serde_json::from_slice(&std::fs::read(large_file).unwrap()).unwrap();
    grown["annotations"] = json!({"padding": "x".repeat(5 * 1024 * 1024)});
    put_manifest(
        &large_base,
        CRSCAN_CREDS,
        "default/liar/large",
        "1",
        &serde_json::to_vec(&grown).unwrap(),
    );
    let list = work.path().join("repositories.txt");
    std::fs::write(&list, "default/liar/large\n").unwrap();
    let output = mirror(
        home,
        &format!("docker://{}/default/liar", large_source.host()),
        &format!("docker://{}/default/fromcrscan", server.host()),
        CRSCAN_CREDS,
        &["--repositories", list.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("default/liar/large:1: manifest default/liar/large:")
            && text.contains("is larger than the limit of 4194304 bytes"),
        "{text}"
    );
    assert_eq!(
        tag_digest(
            &destination_base,
            CRSCAN_CREDS,
            "default/fromcrscan/large",
            "1"
        ),
        None
    );
    // The remote scan of the spoiled image fails too, naming the blob.
    let scan = crscan(
        home,
        &[
            "sbom",
            &format!("docker://{}/liar/spoiled:1", registry.host()),
            "--creds",
            CREDS,
            "--tls-verify=false",
        ],
    );
    assert_eq!(scan.status.code(), Some(2));
    assert!(stderr(&scan).contains(&layer), "{}", stderr(&scan));

    // A registry that redirects blob downloads to another host.
    let redirecting = DockerRegistry::start(
        work.path(),
        "redirecting",
        "",
        "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: https://127.0.0.2:9/\n",
    );
    layout.push(
        "honest",
        &format!("docker://{}/liar/redirected:1", redirecting.host()),
        "x:y",
    );
    let output = mirror(
        home,
        &format!("docker://{}/liar", redirecting.host()),
        &format!("docker://{}/default/elsewhere", server.host()),
        "x:y",
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("redirected to another host (https://127.0.0.2:9/"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        tag_digest(
            &destination_base,
            CRSCAN_CREDS,
            "default/elsewhere/redirected",
            "1"
        ),
        None
    );
}

// --- the Bearer token flow --------------------------------------------------------

/// A token endpoint on loopback, as the Docker token spec describes it: checks basic
/// credentials, and signs a JWT (RS256, with its certificate in `x5c`) granting the
/// scopes asked for. Counts the tokens it issues.
struct TokenServer {
    port: u16,
    issued: Arc<AtomicUsize>,
    /// When set, the next token is issued already expired (and the flag cleared).
    stale_next: Arc<std::sync::atomic::AtomicBool>,
}

impl TokenServer {
    fn start(work: &Path) -> TokenServer {
        let key = work.join("token-key.pem");
        let cert = work.join("token-cert.pem");
        common::run(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=token",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null()),
        );
        let der_file = work.join("token-cert.der");
        common::run(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert)
                .arg("-out")
                .arg(&der_file),
        );
        let x5c = base64_encode(&std::fs::read(&der_file).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        let stale_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stale = stale_next.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = answer_token_request(stream, &key, &x5c, &counter, &stale);
            }
        });
        TokenServer {
            port,
            issued,
            stale_next,
        }
    }
}

fn answer_token_request(
    mut stream: TcpStream,
    key: &Path,
    x5c: &str,
    issued: &AtomicUsize,
    stale_next: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let mut scopes = Vec::new();
    let mut service = String::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match name {
            "scope" => scopes.push(value),
            "service" => service = value,
            _ => {}
        }
    }
    let expected = format!("Basic {}", base64_encode(CREDS.as_bytes()));
    let (status, body) = if authorization.as_deref() == Some(expected.as_str()) {
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
        // A stale token says it lives 300 s but expired long ago: the registry
        // refuses it, and the client must fetch another.
        let expires = if stale_next.swap(false, Ordering::SeqCst) {
            now - 3600
        } else {
            now + 300
        };
        let claims = json!({
            "iss": "test-issuer", "sub": USER, "aud": service, "exp": expires,
            "nbf": now - 7200, "iat": now - 7200, "jti": format!("t{}", issued.load(Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let output = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(signing_input.as_bytes())?;
                child.wait_with_output()
            })?;
        issued.fetch_add(1, Ordering::SeqCst);
        let token = format!("{signing_input}.{}", base64url(&output.stdout));
        (
            "200 OK",
            json!({"token": token, "expires_in": 300}).to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"details":"bad credentials"}"#.to_owned(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_bearer_token_flow_fetches_caches_and_refuses() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let tokens = TokenServer::start(work.path());
    let registry = DockerRegistry::start(
        work.path(),
        "bearer",
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            tokens.port,
            work.path().join("token-cert.pem").display()
        ),
        "",
    );
    let mut layout = Layout::new(&work.path().join("layout"));
    let image = debian_image(&layout, "amd64");
    layout.tag("1", &image);
    for repository in ["team/one", "team/two"] {
        layout.push(
            "1",
            &format!("docker://{}/{repository}:1", registry.host()),
            CREDS,
        );
    }
    let before = tokens.issued.load(Ordering::SeqCst);

    let sbom = crscan(
        home,
        &[
            "sbom",
            &format!("docker://{}/team/one:1", registry.host()),
            "--creds",
            CREDS,
            "--tls-verify=false",
            "--format",
            "json",
        ],
    );
    assert_ok(&sbom, "sbom through the token flow");
    assert!(String::from_utf8_lossy(&sbom.stdout).contains("sudo"));
    // One token for the one repository's pull scope, used for every request.
    assert_eq!(tokens.issued.load(Ordering::SeqCst) - before, 1);

    let server = Crscan::start(&work.path().join("crscan-data"));
    let before = tokens.issued.load(Ordering::SeqCst);
    let output = mirror(
        home,
        &format!("docker://{}/team", registry.host()),
        &format!("docker://{}/default", server.host()),
        CREDS,
        &[],
    );
    assert_ok(&output, "mirror through the token flow");
    let base = format!("http://{}", server.host());
    assert_eq!(
        tag_digest(&base, CRSCAN_CREDS, "default/two", "1").as_deref(),
        image["digest"].as_str()
    );
    // The catalog scope and one pull scope per repository, each fetched once.
    assert_eq!(
        tokens.issued.load(Ordering::SeqCst) - before,
        3,
        "{}",
        stderr(&output)
    );

    // A token the registry refuses is fetched again, once, and the read goes on.
    tokens.stale_next.store(true, Ordering::SeqCst);
    let before = tokens.issued.load(Ordering::SeqCst);
    let refreshed = crscan(
        home,
        &[
            "sbom",
            &format!("docker://{}/team/two:1", registry.host()),
            "--creds",
            CREDS,
            "--tls-verify=false",
        ],
    );
    assert_ok(&refreshed, "sbom with a token refused once");
    assert_eq!(tokens.issued.load(Ordering::SeqCst) - before, 2);

    let refused = crscan(
        home,
        &[
            "sbom",
            &format!("docker://{}/team/one:1", registry.host()),
            "--creds",
            "alice:wrong",
            "--tls-verify=false",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("refused the credentials of user alice"),
        "{}",
        stderr(&refused)
    );
}

// --- crscan as the destination scans on push ----------------------------------------

/// A management API call to crscan with the test token; the status and the JSON.
fn api(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut args = vec![
        "-X".to_owned(),
        method.to_owned(),
        "-H".to_owned(),
        format!("Authorization: Bearer {TOKEN}"),
    ];
    if let Some(body) = body {
        args.extend(["-d".to_owned(), body.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(&args)
        .arg(format!("{base}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn images_mirrored_into_crscan_are_scanned_where_the_policy_says_on_push() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let registry = DockerRegistry::htpasswd(work.path(), "source");
    let mut layout = Layout::new(&work.path().join("layout"));
    let image = debian_image(&layout, "amd64");
    layout.tag("1.0", &image);
    layout.push(
        "1.0",
        &format!("docker://{}/team/app:1.0", registry.host()),
        CREDS,
    );

    let data = work.path().join("crscan-data");
    std::fs::create_dir_all(data.join("vulndb")).unwrap();
    std::fs::copy(database(), data.join("vulndb/crscan.db")).unwrap();
    let server = Crscan::start(&data);
    let base = format!("http://{}", server.host());
    let (status, registries) = api(
        &base,
        "GET",
        "/container-registry/v1/registries?folderId=default",
        None,
    );
    assert_eq!(status, 200, "{registries}");
    let registry_id = registries["registries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = json!({"registryId": registry_id, "name": "on-push",
        "rules": {"pushRule": {"repositoryPrefixes": ["*"]}}});
    let (status, created) = api(
        &base,
        "POST",
        "/container-registry/v1/scanPolicies",
        Some(&policy),
    );
    assert_eq!(status, 200, "{created}");

    let output = mirror(
        home,
        &format!("docker://{}/team", registry.host()),
        &format!("docker://{}/default/moved", server.host()),
        CREDS,
        &[],
    );
    assert_ok(&output, "mirror into crscan");
    // The image is in the right registry and repository, and its scan ends READY
    // with the findings of the Debian packages.
    let (_, images) = api(
        &base,
        "GET",
        "/container-registry/v1/images?folderId=default&pageSize=1000",
        None,
    );
    let found = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["digest"] == image["digest"])
        .unwrap_or_else(|| panic!("the mirrored image is not listed: {images}"))
        .clone();
    assert_eq!(found["name"], format!("{registry_id}/moved/app"));
    let image_id = found["id"].as_str().unwrap();
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, result) = api(
            &base,
            "GET",
            &format!("/container-registry/v1/images/{image_id}:lastScanResult"),
            None,
        );
        if status == 200 && result["status"] == "READY" {
            last = result;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last["status"], "READY", "no scan on push after the mirror");
    let counts = &last["vulnerabilities"];
    let total: u64 = [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ]
    .iter()
    // int64 counters are JSON strings, as in the hosted API.
    .map(|name| {
        counts[*name]
            .as_str()
            .map_or(0, |count| count.parse::<u64>().unwrap())
    })
    .sum();
    assert!(total > 0, "{last}");
}
