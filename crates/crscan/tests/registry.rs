//! End-to-end tests of `crscan serve` as a real process: pushes and pulls with skopeo,
//! images built with umoci, bad input over raw HTTP, and a server killed mid-push.
//! skopeo and umoci are Debian packages CI installs; without them the tests print a
//! message and return. The PostgreSQL run needs `CRSCAN_TEST_POSTGRES_URL`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// skopeo and umoci, or a skip (a failure under `CRSCAN_REQUIRE_TOOLS=1`).
fn tools_present() -> bool {
    common::tools_present(&["skopeo", "umoci"], false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `crscan serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    store: Option<String>,
    tokens: Option<String>,
}

impl Server {
    fn start(data_dir: &Path, store: Option<String>, tokens: Option<&str>) -> Server {
        Server::spawn(data_dir, store, tokens.map(str::to_owned))
    }

    fn spawn(data_dir: &Path, store: Option<String>, tokens: Option<String>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crscan"));
        command
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .env_remove("CRSCAN_TOKENS")
            .env_remove("CRSCAN_STORE")
            .env_remove("CRSCAN_CONFIG")
            .env("RUST_LOG", "warn")
            // Tests reach no network: no background database download.
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .stderr(Stdio::inherit());
        if let Some(store) = &store {
            command.args(["--store", store]);
        }
        if let Some(tokens) = &tokens {
            command.env("CRSCAN_TOKENS", tokens);
        }
        let (child, port) = common::spawn_serve(command);
        Server {
            child,
            port,
            data_dir: data_dir.to_owned(),
            store,
            tokens,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same data (on a new port).
    fn restart(&mut self) {
        self.kill();
        let replacement = Server::spawn(&self.data_dir, self.store.clone(), self.tokens.clone());
        let old = std::mem::replace(self, replacement);
        std::mem::forget(old);
    }

    fn image_ref(&self, path: &str) -> String {
        format!("docker://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn oci_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A minimal HTTP/1.1 client over a raw socket (one request per connection).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    all.push(("Content-Length", &length));
    send(port, method, path, &all, body)
}

/// The same, with the body sent `Transfer-Encoding: chunked` (no `Content-Length`),
/// as a streaming client sends it.
fn http_chunked(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    framed.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut all = headers.to_vec();
    all.push(("Transfer-Encoding", "chunked"));
    send(port, method, path, &all, &framed)
}

fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
    });
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest
                .windows(2)
                .position(|window| window == b"\r\n")
                .unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        body = decoded;
    }
    Response {
        status,
        headers,
        body,
    }
}

fn run(program: &str, args: &[&str]) -> String {
    common::run(Command::new(program).args(args))
}

/// Deterministic pseudo-random bytes (incompressible enough to make real layers).
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Builds an OCI layout at `layout` with tag `t`: an empty base plus `layers` layers.
fn build_image(work: &Path, layers: usize, layer_bytes: usize) -> PathBuf {
    let layout = work.join("layout");
    let layout_text = layout.to_str().unwrap();
    run("umoci", &["init", "--layout", layout_text]);
    run("umoci", &["new", "--image", &format!("{layout_text}:t")]);
    for index in 0..layers {
        let file = work.join(format!("payload-{index}"));
        std::fs::write(&file, noise(index as u64 + 1, layer_bytes)).unwrap();
        run(
            "umoci",
            &[
                "insert",
                "--image",
                &format!("{layout_text}:t"),
                file.to_str().unwrap(),
                &format!("/data/payload-{index}"),
            ],
        );
    }
    layout
}

/// The manifest digest of tag `t` in an OCI layout.
fn layout_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn layout_blobs(layout: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn blob_files(data_dir: &Path) -> usize {
    let root = data_dir.join("blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return 0;
    };
    prefixes
        .map(|prefix| std::fs::read_dir(prefix.unwrap().path()).unwrap().count())
        .sum()
}

fn round_trip(store: Option<String>) {
    let work = tempfile::tempdir().unwrap();
    let layout = build_image(work.path(), 3, 300_000);
    let pushed_digest = layout_digest(&layout, "t");
    let server = Server::start(&work.path().join("data"), store, None);
    let source = format!("oci:{}:t", layout.display());

    // Push, then pull back into a fresh layout: same manifest digest, same blobs.
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &source,
            &server.image_ref("default/app:t"),
        ],
    );
    let pulled = work.path().join("pulled");
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &server.image_ref("default/app:t"),
            &format!("oci:{}:t", pulled.display()),
        ],
    );
    assert_eq!(layout_digest(&pulled, "t"), pushed_digest);
    // The source layout also keeps umoci's intermediate manifests; the pulled one holds
    // exactly the manifest, the config and three layers, all byte-identical.
    let pulled_blobs = layout_blobs(&pulled);
    assert_eq!(pulled_blobs.len(), 5);
    for blob in &pulled_blobs {
        assert_eq!(
            std::fs::read(pulled.join("blobs/sha256").join(blob)).unwrap(),
            std::fs::read(layout.join("blobs/sha256").join(blob)).unwrap()
        );
    }

    let inspect: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &server.image_ref("default/app:t"),
        ],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], pushed_digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    let tags: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &server.image_ref("default/app"),
        ],
    ))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["t"]));

    // The management API sees the image with its layers and tag.
    let images = http(
        server.port,
        "GET",
        "/container-registry/v1/images?folderId=default",
        &[],
        b"",
    );
    assert_eq!(images.status, 200);
    let listed = images.json();
    let image = &listed["images"][0];
    assert_eq!(image["digest"], pushed_digest.as_str());
    assert_eq!(image["layers"].as_array().unwrap().len(), 3);
    assert_eq!(image["tags"], serde_json::json!(["t"]));
    assert!(image["name"].as_str().unwrap().ends_with("/app"));
    assert!(image["compressedSize"].is_string());
    let image_id = image["id"].as_str().unwrap().to_owned();
    let fetched = http(
        server.port,
        "GET",
        &format!("/container-registry/v1/images/{image_id}"),
        &[],
        b"",
    );
    assert_eq!(fetched.json()["digest"], pushed_digest.as_str());

    // Docker schema 2.
    run(
        "skopeo",
        &[
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            &source,
            &server.image_ref("default/app2:v2"),
        ],
    );
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &server.image_ref("default/app2:v2"),
        ],
    );
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let pulled_v2 = work.path().join("pulled-v2");
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &server.image_ref("default/app2:v2"),
            &format!("oci:{}:v2", pulled_v2.display()),
        ],
    );

    // Delete by digest: the tag goes with it.
    run(
        "skopeo",
        &[
            "delete",
            "--tls-verify=false",
            &server.image_ref("default/app:t"),
        ],
    );
    let gone = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &server.image_ref("default/app:t"),
        ])
        .output()
        .unwrap();
    assert!(!gone.status.success());
}

#[test]
fn skopeo_round_trip_sqlite() {
    if !tools_present() {
        return;
    }
    round_trip(None);
}

#[test]
fn skopeo_round_trip_postgres() {
    if !tools_present() {
        return;
    }
    with_postgres(round_trip);
}

/// Runs `test` with the URL of a fresh PostgreSQL database, dropped after; skips
/// without `CRSCAN_TEST_POSTGRES_URL` or `psql`.
fn with_postgres(test: impl FnOnce(Option<String>)) {
    if Command::new("psql").arg("--version").output().is_err() {
        println!("skipped: psql is not installed");
        return;
    }
    if let Some(postgres) = common::postgres::Postgres::create("it") {
        test(Some(postgres.url.clone()));
    }
}

/// The range, reference, chunk and error-body rules of issues #10 and #17, written
/// from the distribution spec and RFC 9110 §14 (the upstream conformance suite
/// cannot be built here), over raw HTTP against a real server.
fn conformance_cases(store: Option<String>) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data, store, None);
    let port = server.port;
    let no_detail = |response: &Response| {
        let errors = response.json()["errors"].clone();
        assert!(
            errors.is_array(),
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        for error in errors.as_array().unwrap() {
            assert!(error.get("detail").is_none(), "{error}");
        }
    };

    // A 2048-byte blob, pushed in one POST.
    let blob = noise(7, 2048);
    let digest = crscan_blob::digest_of(crscan_model::DigestAlgorithm::Sha256, &blob);
    let pushed = http(
        port,
        "POST",
        &format!("/v2/default/app/blobs/uploads/?digest={digest}"),
        &[],
        &blob,
    );
    assert_eq!(pushed.status, 201);
    let url = format!("/v2/default/app/blobs/{digest}");
    let ranged = |range: &str| http(port, "GET", &url, &[("Range", range)], b"");

    // A suffix range is the last bytes.
    let suffix = ranged("bytes=-500");
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &blob[1548..]);
    assert_eq!(suffix.header("content-range"), Some("bytes 1548-2047/2048"));
    assert_eq!(suffix.header("content-length"), Some("500"));
    // An end past the blob is cut at its end.
    let past = ranged("bytes=2000-9999");
    assert_eq!(past.status, 206);
    assert_eq!(past.body, &blob[2000..]);
    assert_eq!(past.header("content-range"), Some("bytes 2000-2047/2048"));
    let open = ranged("bytes=10-");
    assert_eq!((open.status, open.body.len()), (206, 2038));
    // Only a start past the end is 416, and it does not say the blob is unknown.
    for unsatisfiable in ["bytes=2048-", "bytes=5000-6000", "bytes=-0"] {
        let refused = ranged(unsatisfiable);
        assert_eq!(refused.status, 416, "{unsatisfiable}");
        assert_eq!(refused.header("content-range"), Some("bytes */2048"));
        assert_eq!(refused.oci_code(), "RANGE_INVALID");
        no_detail(&refused);
    }
    // A malformed Range, another unit or several ranges are ignored: the whole blob.
    for ignored in ["bytes=5-1", "bytes=x-", "items=0-9", "bytes=0-1,5-9"] {
        let whole = ranged(ignored);
        assert_eq!(whole.status, 200, "{ignored}");
        assert_eq!(whole.body, blob, "{ignored}");
        assert_eq!(whole.header("content-range"), None);
    }
    // HEAD ignores Range.
    let head = http(port, "HEAD", &url, &[("Range", "bytes=0-9")], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("2048"));
    // A missing blob is 404 before the range is looked at.
    let absent = format!("sha256:{}", "3".repeat(64));
    let missing = http(
        port,
        "GET",
        &format!("/v2/default/app/blobs/{absent}"),
        &[("Range", "bytes=5000-")],
        b"",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.oci_code(), "BLOB_UNKNOWN");
    no_detail(&missing);

    // A reference that is not a valid tag: 404 MANIFEST_UNKNOWN to GET and HEAD,
    // 400 TAG_INVALID to PUT.
    let long_tag = "t".repeat(129);
    for reference in [long_tag.as_str(), "-dash", "not:a-digest"] {
        let path = format!("/v2/default/app/manifests/{reference}");
        let got = http(port, "GET", &path, &[], b"");
        assert_eq!(got.status, 404, "{reference}");
        assert_eq!(got.oci_code(), "MANIFEST_UNKNOWN", "{reference}");
        no_detail(&got);
        assert_eq!(http(port, "HEAD", &path, &[], b"").status, 404);
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":2048}},"layers":[]}}"#
    );
    let oci_manifest = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    for tag in [long_tag.as_str(), "-dash"] {
        let put = http(
            port,
            "PUT",
            &format!("/v2/default/app/manifests/{tag}"),
            &[oci_manifest],
            manifest.as_bytes(),
        );
        assert_eq!(put.status, 400, "{tag}");
        assert_eq!(put.oci_code(), "TAG_INVALID", "{tag}");
        no_detail(&put);
    }
    let tag_128 = "t".repeat(128);
    let put = http(
        port,
        "PUT",
        &format!("/v2/default/app/manifests/{tag_128}"),
        &[oci_manifest],
        manifest.as_bytes(),
    );
    assert_eq!(put.status, 201);
    let got = http(
        port,
        "GET",
        &format!("/v2/default/app/manifests/{tag_128}"),
        &[],
        b"",
    );
    assert_eq!(got.body, manifest.as_bytes());

    // Chunks whose Content-Range disagrees with the body are 416; nothing is kept.
    let started = http(port, "POST", "/v2/default/app/blobs/uploads/", &[], b"");
    let location = started.header("location").unwrap().to_owned();
    let first = http(
        port,
        "PATCH",
        &location,
        &[("Content-Range", "0-4")],
        b"hello",
    );
    assert_eq!(first.status, 202);
    let refusals = [
        // A 2-byte body (Content-Length 2) for a range of 1000 bytes.
        http(
            port,
            "PATCH",
            &location,
            &[("Content-Range", "5-1004")],
            b"xy",
        ),
        // The same, streamed without a Content-Length.
        http_chunked(
            port,
            "PATCH",
            &location,
            &[("Content-Range", "5-1004")],
            b"xy",
        ),
        // A streamed body longer than its range.
        http_chunked(
            port,
            "PATCH",
            &location,
            &[("Content-Range", "5-6")],
            b"xyz",
        ),
        // A range that does not start at the current offset.
        http(port, "PATCH", &location, &[("Content-Range", "6-7")], b"xy"),
        // Not a range at all.
        http(
            port,
            "PATCH",
            &location,
            &[("Content-Range", "five")],
            b"xy",
        ),
        // The closing PUT follows the same rules.
        http(
            port,
            "PUT",
            &format!("{location}?digest={digest}"),
            &[("Content-Range", "5-9")],
            b"xy",
        ),
    ];
    for (index, refused) in refusals.iter().enumerate() {
        assert_eq!(refused.status, 416, "refusal {index}");
        assert_eq!(refused.oci_code(), "BLOB_UPLOAD_INVALID", "refusal {index}");
        assert_eq!(refused.header("range"), Some("0-4"), "refusal {index}");
        assert_eq!(refused.header("location"), Some(location.as_str()));
        no_detail(refused);
    }
    let status = http(port, "GET", &location, &[], b"");
    assert_eq!(status.header("range"), Some("0-4"));
    let second = http_chunked(
        port,
        "PATCH",
        &location,
        &[("Content-Range", "5-9")],
        b"world",
    );
    assert_eq!(second.status, 202);
    assert_eq!(second.header("range"), Some("0-9"));
    let whole = crscan_blob::digest_of(crscan_model::DigestAlgorithm::Sha256, b"helloworld");
    let closed = http(port, "PUT", &format!("{location}?digest={whole}"), &[], b"");
    assert_eq!(closed.status, 201);
    let fetched = http(
        port,
        "GET",
        &format!("/v2/default/app/blobs/{whole}"),
        &[],
        b"",
    );
    assert_eq!(fetched.body, b"helloworld");
}

#[test]
fn conformance_cases_sqlite() {
    conformance_cases(None);
}

#[test]
fn conformance_cases_postgres() {
    with_postgres(conformance_cases);
}

const EMPTY_LIST: &str = r#"{"images":[],"nextPageToken":""}"#;

#[test]
fn bad_input_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(&data, None, Some("push-secret:pusher,view-secret:viewer"));
    let port = server.port;
    let push = ("Authorization", "Bearer push-secret");

    // Without a token: 401 with a basic challenge; a viewer cannot push.
    let denied = http(port, "GET", "/v2/", &[], b"");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.oci_code(), "UNAUTHORIZED");
    assert!(
        denied
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    let api_denied = http(port, "GET", "/container-registry/v1/images", &[], b"");
    assert_eq!(api_denied.status, 401);
    assert_eq!(api_denied.json()["code"], 16);
    let viewer = http(
        port,
        "POST",
        "/v2/default/app/blobs/uploads/",
        &[("Authorization", "Bearer view-secret")],
        b"",
    );
    assert_eq!(viewer.status, 403);
    assert_eq!(viewer.oci_code(), "DENIED");
    // Basic auth with the token as password works ("user:push-secret").
    let basic = http(
        port,
        "GET",
        "/v2/",
        &[("Authorization", "Basic dXNlcjpwdXNoLXNlY3JldA==")],
        b"",
    );
    assert_eq!(basic.status, 200);

    // A blob whose content does not match its digest.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let mismatch = http(
        port,
        "POST",
        &format!("/v2/default/app/blobs/uploads/?digest={wrong}"),
        &[push],
        b"hello",
    );
    assert_eq!(mismatch.status, 400);
    assert_eq!(mismatch.oci_code(), "DIGEST_INVALID");

    // A manifest referencing unknown blobs.
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},
        "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":5}}]}}"#,
        "1".repeat(64),
        "2".repeat(64)
    );
    let oci_manifest = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    let unknown = http(
        port,
        "PUT",
        "/v2/default/app/manifests/v1",
        &[push, oci_manifest],
        manifest.as_bytes(),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.oci_code(), "MANIFEST_BLOB_UNKNOWN");

    // A manifest over 4 MiB.
    let mut huge = manifest.clone().into_bytes();
    huge.truncate(huge.len() - 1);
    huge.extend_from_slice(br#","annotations":{"pad":""#);
    huge.extend(std::iter::repeat_n(b'x', 4 * 1024 * 1024));
    huge.extend_from_slice(b"\"}}");
    let too_big = http(
        port,
        "PUT",
        "/v2/default/app/manifests/v1",
        &[push, oci_manifest],
        &huge,
    );
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.oci_code(), "SIZE_INVALID");

    // A bad repository name.
    let bad_name = http(
        port,
        "PUT",
        "/v2/default/Bad_/manifests/v1",
        &[push, oci_manifest],
        manifest.as_bytes(),
    );
    assert_eq!(bad_name.status, 400);
    assert_eq!(bad_name.oci_code(), "NAME_INVALID");
    let unknown_registry = http(port, "POST", "/v2/nosuch/app/blobs/uploads/", &[push], b"");
    assert_eq!(unknown_registry.status, 404);
    assert_eq!(unknown_registry.oci_code(), "NAME_UNKNOWN");

    // A chunk out of order gets 416 and leaves the session as it was.
    let started = http(port, "POST", "/v2/default/app/blobs/uploads/", &[push], b"");
    assert_eq!(started.status, 202);
    let location = started.header("location").unwrap().to_owned();
    let first = http(
        port,
        "PATCH",
        &location,
        &[push, ("Content-Range", "0-4")],
        b"hello",
    );
    assert_eq!(first.status, 202);
    assert_eq!(first.header("range"), Some("0-4"));
    let out_of_order = http(
        port,
        "PATCH",
        &location,
        &[push, ("Content-Range", "10-14")],
        b"world",
    );
    assert_eq!(out_of_order.status, 416);
    let status = http(port, "GET", &location, &[push], b"");
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-4"));
    let cancelled = http(port, "DELETE", &location, &[push], b"");
    assert_eq!(cancelled.status, 204);

    // Nothing was stored: no blobs, no images, no repositories.
    assert_eq!(blob_files(&data), 0);
    let images = http(port, "GET", "/container-registry/v1/images", &[push], b"");
    assert_eq!(String::from_utf8_lossy(&images.body), EMPTY_LIST);
    let catalog = http(port, "GET", "/v2/_catalog", &[push], b"");
    assert_eq!(catalog.json()["repositories"], serde_json::json!([]));
    assert_eq!(std::fs::read_dir(data.join("uploads")).unwrap().count(), 0);
}

#[test]
fn management_api_shapes() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(
        &work.path().join("data"),
        None,
        Some("admin-secret:admin,view-secret:viewer"),
    );
    let port = server.port;
    let admin = ("Authorization", "Bearer admin-secret");
    let viewer = ("Authorization", "Bearer view-secret");

    let listed = http(
        port,
        "GET",
        "/container-registry/v1/registries?folderId=default",
        &[viewer],
        b"",
    );
    assert_eq!(listed.status, 200);
    let default = listed.json()["registries"][0].clone();
    assert_eq!(default["name"], "default");
    assert_eq!(default["status"], "ACTIVE");
    assert_eq!(default["id"].as_str().unwrap().len(), 20);
    assert!(default["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        http(
            port,
            "GET",
            "/container-registry/v1/registries",
            &[viewer],
            b""
        )
        .json()["code"],
        3
    );

    // Create (admin only), idempotency, update with a mask, get, delete.
    let body = br#"{"folderId":"team","name":"team-reg","labels":{"env":"ci"}}"#;
    assert_eq!(
        http(
            port,
            "POST",
            "/container-registry/v1/registries",
            &[viewer],
            body
        )
        .status,
        403
    );
    let key = ("Idempotency-Key", "6f1c1a2e-5d0b-4d43-9d6c-3a1f0e2b7c11");
    let created = http(
        port,
        "POST",
        "/container-registry/v1/registries",
        &[admin, key],
        body,
    );
    assert_eq!(created.status, 200);
    let operation = created.json();
    assert_eq!(operation["done"], true);
    assert!(operation["id"].as_str().unwrap().starts_with("crq"));
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.CreateRegistryMetadata"
    );
    assert_eq!(operation["response"]["labels"]["env"], "ci");
    let registry_id = operation["metadata"]["registryId"]
        .as_str()
        .unwrap()
        .to_owned();
    let repeated = http(
        port,
        "POST",
        "/container-registry/v1/registries",
        &[admin, key],
        body,
    );
    assert_eq!(repeated.json()["id"], operation["id"]);
    // A key that cannot be one is refused, as in the scanner's calls, not ignored.
    let long_key = "k".repeat(129);
    let refused = http(
        port,
        "POST",
        "/container-registry/v1/registries",
        &[admin, ("Idempotency-Key", &long_key)],
        body,
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    let clash = http(
        port,
        "POST",
        "/container-registry/v1/registries",
        &[admin],
        body,
    );
    assert_eq!(clash.status, 409);
    assert_eq!(clash.json()["code"], 6);
    let fetched = http(
        port,
        "GET",
        &format!("/operations/{}", operation["id"].as_str().unwrap()),
        &[viewer],
        b"",
    );
    assert_eq!(fetched.json(), operation);
    let updated = http(
        port,
        "PATCH",
        &format!("/container-registry/v1/registries/{registry_id}"),
        &[admin],
        br#"{"updateMask":"labels","name":"ignored-name","labels":{"env":"prod"}}"#,
    );
    assert_eq!(updated.json()["response"]["labels"]["env"], "prod");
    assert_eq!(updated.json()["response"]["name"], "team-reg");

    // Repositories: upsert, get, by name, list, delete.
    let upserted = http(
        port,
        "POST",
        "/container-registry/v1/repositories",
        &[admin],
        format!(r#"{{"name":"{registry_id}/tools"}}"#).as_bytes(),
    );
    assert_eq!(upserted.status, 200);
    let repository = upserted.json()["response"].clone();
    assert_eq!(repository["name"], format!("{registry_id}/tools"));
    let repository_id = repository["id"].as_str().unwrap().to_owned();
    assert!(repository_id.starts_with("crt"));
    let by_name = http(
        port,
        "GET",
        &format!("/container-registry/v1/repositories/{registry_id}%2Ftools:byName"),
        &[viewer],
        b"",
    );
    assert_eq!(by_name.json()["id"], repository_id.as_str());
    let repos = http(
        port,
        "GET",
        &format!("/container-registry/v1/repositories?registryId={registry_id}"),
        &[viewer],
        b"",
    );
    assert_eq!(repos.json()["repositories"].as_array().unwrap().len(), 1);
    let not_empty = http(
        port,
        "DELETE",
        &format!("/container-registry/v1/registries/{registry_id}"),
        &[admin],
        b"",
    );
    assert_eq!(not_empty.json()["code"], 9);
    let deleted = http(
        port,
        "DELETE",
        &format!("/container-registry/v1/repositories/{repository_id}"),
        &[admin],
        b"",
    );
    assert_eq!(
        deleted.json()["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let deleted_registry = http(
        port,
        "DELETE",
        &format!("/container-registry/v1/registries/{registry_id}"),
        &[admin],
        b"",
    );
    assert_eq!(deleted_registry.json()["done"], true);

    // Errors and paging rules.
    let missing = http(
        port,
        "GET",
        "/container-registry/v1/images/crpnothere",
        &[viewer],
        b"",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 5);
    assert!(missing.json()["details"].is_array());
    assert_eq!(
        http(
            port,
            "GET",
            "/container-registry/v1/images?pageSize=1001",
            &[viewer],
            b""
        )
        .status,
        400
    );
    assert_eq!(
        http(
            port,
            "GET",
            "/container-registry/v1/images?filter=digest%3D%22x%22",
            &[viewer],
            b""
        )
        .status,
        400
    );
    assert_eq!(
        http(
            port,
            "GET",
            &format!("/container-registry/v1/images/{}", "x".repeat(51)),
            &[viewer],
            b""
        )
        .status,
        400
    );
    let openapi = http(port, "GET", "/openapi.json", &[], b"");
    assert!(openapi.json()["paths"]["/container-registry/v1/images"].is_object());
    // Ready without a vulnerability database (the registry serves), but saying so and
    // how to get one.
    let ready = http(port, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200);
    let ready = ready.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["vulnerabilityDatabase"]["status"], "missing");
    let warning = ready["warnings"][0].as_str().unwrap();
    assert!(warning.contains("crscan db build --from PATH"), "{warning}");
}

#[test]
fn restart_during_push_stays_consistent() {
    if !tools_present() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let mut server = Server::start(&data, None, None);
    let mut port = server.port;

    // An upload session survives a restart and resumes where it stopped.
    let started = http(port, "POST", "/v2/default/resume/blobs/uploads/", &[], b"");
    let location = started.header("location").unwrap().to_owned();
    let content = noise(99, 100_000);
    assert_eq!(
        http(
            port,
            "PATCH",
            &location,
            &[("Content-Range", "0-59999")],
            &content[..60_000]
        )
        .status,
        202
    );
    server.restart();
    port = server.port;
    let status = http(port, "GET", &location, &[], b"");
    assert_eq!(status.header("range"), Some("0-59999"));
    let digest = crscan_blob::digest_of(crscan_model::DigestAlgorithm::Sha256, &content);
    let finished = http(
        port,
        "PUT",
        &format!("{location}?digest={digest}"),
        &[("Content-Range", "60000-99999")],
        &content[60_000..],
    );
    assert_eq!(finished.status, 201);
    let fetched = http(
        port,
        "GET",
        &format!("/v2/default/resume/blobs/{digest}"),
        &[],
        b"",
    );
    assert_eq!(fetched.body, content);
    let ranged = http(
        port,
        "GET",
        &format!("/v2/default/resume/blobs/{digest}"),
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, &content[10..20]);

    // Kill the server while skopeo pushes a large image, restart, push again.
    let layout = build_image(work.path(), 3, 24 * 1024 * 1024);
    let source = format!("oci:{}:t", layout.display());
    let target = server.image_ref("default/big:t");
    let mut push = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", &source, &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until bytes are flowing into an upload session, then kill the server.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let receiving = std::fs::read_dir(data.join("uploads"))
            .unwrap()
            .any(|entry| {
                std::fs::metadata(entry.unwrap().path().join("data"))
                    .is_ok_and(|meta| meta.len() > 0)
            });
        if receiving || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let _ = push.wait();
    server.restart();
    let target = server.image_ref("default/big:t");
    let images = http(
        server.port,
        "GET",
        "/container-registry/v1/images?repositoryName=x",
        &[],
        b"",
    );
    assert_eq!(images.status, 200);
    run(
        "skopeo",
        &["copy", "--dest-tls-verify=false", &source, &target],
    );
    let pulled = work.path().join("pulled");
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &target,
            &format!("oci:{}:t", pulled.display()),
        ],
    );
    assert_eq!(layout_digest(&pulled, "t"), layout_digest(&layout, "t"));
    // Every blob the image names is stored; `crscan gc` runs cleanly on the data.
    let listed = http(
        server.port,
        "GET",
        "/container-registry/v1/images?folderId=default",
        &[],
        b"",
    )
    .json();
    let big = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["name"].as_str().unwrap().ends_with("/big"))
        .unwrap()
        .clone();
    for layer in big["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let head = http(
            server.port,
            "HEAD",
            &format!("/v2/default/big/blobs/{digest}"),
            &[],
            b"",
        );
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(layer["size"].as_str().unwrap())
        );
    }
    drop(server);
    let gc = Command::new(env!("CARGO_BIN_EXE_crscan"))
        .args(["gc", "--grace-seconds", "0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    // Dry run by default: the blob files are all still there.
    let before = blob_files(&data);
    assert!(before >= 5);
    let stdout = String::from_utf8_lossy(&gc.stdout);
    assert!(
        !stdout.contains(&layout_digest(&layout, "t")),
        "gc would delete the live manifest"
    );
}

#[test]
fn refuses_open_listening_without_tokens() {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_crscan"))
        .args([
            "serve",
            "--listen",
            &format!("0.0.0.0:{}", free_port()),
            "--data-dir",
        ])
        .arg(work.path())
        .env_remove("CRSCAN_TOKENS")
        .env_remove("CRSCAN_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("without tokens"));
}
