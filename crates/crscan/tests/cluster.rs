//! Two `crscan serve` nodes on one PostgreSQL database and one Garage bucket (issue
//! #14): an image pushed through node A pulls through node B with the same digest
//! and no layer on either node's disk; a chunked upload whose PATCHes alternate
//! between the nodes completes, and a chunk sent to B while A streams one into the
//! same session is refused under the session's write lease in the store; a scan asked of the API-only node A runs on the
//! worker node B, and its layer analysis is shared through the bucket, so a worker
//! on another node rescans without reading a layer; GC run with A's settings removes
//! a deleted image's blobs from the bucket; Garage stopped for 5 s makes requests fail
//! 503, never 500, and both nodes recover by themselves. A worker node killed
//! mid-scan leaves its scan to a restarted node, which finishes it once after the
//! lease runs out.
//!
//! Needs PostgreSQL (`CRSCAN_TEST_POSTGRES_URL`), Garage (`scripts/install-garage.sh`),
//! `skopeo`, `curl` and `psql`; skips without them unless `CRSCAN_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::garage::Garage;
use common::images::{random_bytes, sha256_hex, write_image, write_image_with_filler};
use common::postgres::Postgres;
use common::server::{
    SLOW_SCAN_FILLER_FILES, Server, image_id, push, request_scan, scan_lines, wait_until_started,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const BUCKET: &str = "crscan-cluster";
const BLOBS: &str = "s3://crscan-cluster/registry";

/// The vulnerability database every node reads, built once from the shared feeds.
fn build_database(db: &Path) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let output = Command::new(CRSCAN)
        .args(["db", "build"])
        .arg("--from")
        .arg(format!("{DATA}/vulndb/alpine-secdb/v3.4/main.yaml"))
        .arg("--from")
        .arg(format!("{DATA}/vulndb/pypa-advisory-database/vulns/jinja2"))
        .arg("--from")
        .arg(format!("{DATA}/vulndb/github-advisory-database-subset"))
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What each test here starts from: its own PostgreSQL database, a Garage bucket, a
/// work directory, and the vulnerability database file every node reads. `None`
/// (skipped) without the tools, unless `CRSCAN_REQUIRE_TOOLS=1`.
struct Cluster {
    postgres: Postgres,
    garage: Garage,
    work: tempfile::TempDir,
    db: PathBuf,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        if !common::tools_present(&["skopeo", "curl", "psql"], false) {
            return None;
        }
        let postgres = Postgres::create("cluster")?;
        let garage = Garage::start(BUCKET)?;
        let work = tempfile::tempdir().unwrap();
        let db = work.path().join("vulndb/crscan.db");
        build_database(&db);
        Some(Cluster {
            postgres,
            garage,
            work,
            db,
        })
    }
}

/// Starts a node on `data_dir` with the shared store, bucket and database.
fn node(
    data_dir: &Path,
    workers: usize,
    postgres: &Postgres,
    garage: &Garage,
    db: &Path,
) -> Server {
    let args = vec![
        "--blobs".to_owned(),
        BLOBS.to_owned(),
        "--db".to_owned(),
        db.display().to_string(),
        "--scan-lease-seconds".to_owned(),
        "5".to_owned(),
    ];
    Server::start_node(
        data_dir,
        workers,
        Some(&postgres.url),
        None,
        &args,
        &garage.env(),
    )
}

fn host(server: &Server) -> &str {
    server.url.trim_start_matches("http://")
}

/// curl's arguments for `method` (`-I` for HEAD: `-X HEAD` would wait for a body).
fn method_args(method: &str) -> Vec<&str> {
    if method == "HEAD" {
        vec!["-I"]
    } else {
        vec!["-X", method]
    }
}

/// The status code of a request (curl), with `extra` arguments.
fn status(method: &str, url: &str, extra: &[&str]) -> u16 {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(method_args(method))
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Headers and status of a request with a body from `file`.
fn send(method: &str, url: &str, headers: &[String], file: Option<&Path>) -> (u16, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-D", "-", "-o", "/dev/null", "-H", "Expect:"])
        .args(method_args(method));
    for header in headers {
        command.args(["-H", header]);
    }
    if let Some(file) = file {
        command
            .arg("--data-binary")
            .arg(format!("@{}", file.display()));
    }
    let output = command.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The object `key` in the bucket, signed with the test key: its HTTP status.
fn bucket_status(garage: &Garage, key: &str) -> u16 {
    status(
        "GET",
        &format!("{}/{BUCKET}/{key}", garage.endpoint),
        &[
            // Garage wants the payload's hash signed: the empty body's.
            "-H",
            "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "--aws-sigv4",
            &format!("aws:amz:{}:s3", garage.region),
            "--user",
            &format!("{}:{}", garage.key_id, garage.secret),
        ],
    )
}

/// The bucket's listing (S3 ListObjectsV2 XML) of the keys under `prefix`.
fn bucket_list(garage: &Garage, prefix: &str) -> String {
    let output = Command::new("curl")
        .args([
            "-s",
            "-H",
            "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "--aws-sigv4",
            &format!("aws:amz:{}:s3", garage.region),
            "--user",
            &format!("{}:{}", garage.key_id, garage.secret),
        ])
        .arg(format!(
            "{}/{BUCKET}?list-type=2&prefix={}",
            garage.endpoint,
            // Encoded as SigV4's canonical query has it, so curl's signature holds.
            prefix.replace('/', "%2F")
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The layer and config digests of the OCI layout's image `tag`.
fn layout_blobs(layout: &Path) -> Vec<String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(manifest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_owned());
    }
    blobs
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// skopeo copy from node `server` to an OCI layout; the copied manifest's digest.
fn pull(server: &Server, repository: &str, to: &Path) -> Result<String, String> {
    let digest_file = to.with_extension("digest");
    let output = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("docker://{}/{repository}", host(server)))
        .arg(format!("oci:{}:pulled", to.display()))
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned())
}

#[test]
fn two_nodes_share_postgres_and_a_garage_bucket() {
    let Some(Cluster {
        postgres,
        mut garage,
        work,
        db,
    }) = Cluster::start()
    else {
        return;
    };
    let data_a = work.path().join("node-a");
    let data_b = work.path().join("node-b");
    // A serves the API and the registry only; B is the worker.
    let node_a = node(&data_a, 0, &postgres, &garage, &db);
    let node_b = node(&data_b, 1, &postgres, &garage, &db);

    // Pushed through A, pulled through B: the same digest.
    let layout = work.path().join("image");
    write_image(&layout, "1.0");
    let digest = push(&node_a, &layout, "1.0", "default/app:1.0");
    let pulled = pull(&node_b, "default/app:1.0", &work.path().join("pulled-b")).unwrap();
    assert_eq!(pulled, digest);
    // The blobs are in the bucket, and no layer is on either node's disk.
    let blobs = layout_blobs(&layout);
    for blob in &blobs {
        let key = format!(
            "registry/blobs/sha256/{}",
            blob.trim_start_matches("sha256:")
        );
        assert_eq!(bucket_status(&garage, &key), 200, "{key}");
    }
    for data in [&data_a, &data_b] {
        for file in files_under(data) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !blobs.iter().any(|blob| blob.ends_with(&name)),
                "layer file {} on a node's disk",
                file.display()
            );
        }
        assert!(files_under(&data.join("blobs")).is_empty());
        assert!(files_under(&data.join("uploads")).is_empty());
    }

    // With blobs_redirect, a blob GET is a 307 to a presigned URL of the bucket,
    // which serves the blob's bytes.
    let redirecting = Server::start_node(
        &work.path().join("node-redirect"),
        0,
        Some(&postgres.url),
        None,
        &[
            "--blobs".to_owned(),
            BLOBS.to_owned(),
            "--blobs-redirect".to_owned(),
            "true".to_owned(),
        ],
        &garage.env(),
    );
    let layer_url = format!("{}/v2/default/app/blobs/{}", redirecting.url, blobs[1]);
    let (code, response) = send("GET", &layer_url, &[], None);
    assert_eq!(code, 307, "{response}");
    let presigned = header(&response, "location").unwrap();
    assert!(presigned.starts_with(&garage.endpoint), "{presigned}");
    let fetched = Command::new("curl")
        .args(["-sfL", &layer_url])
        .output()
        .unwrap();
    assert!(fetched.status.success());
    assert_eq!(format!("sha256:{}", sha256_hex(&fetched.stdout)), blobs[1]);
    drop(redirecting);

    // A chunked upload whose PATCHes alternate between A and B.
    let bytes = random_bytes(3 << 20);
    let blob_digest = format!("sha256:{}", sha256_hex(&bytes));
    let (code, response) = send(
        "POST",
        &format!("{}/v2/default/chunky/blobs/uploads/", node_a.url),
        &[],
        None,
    );
    assert_eq!(code, 202, "{response}");
    let mut location = header(&response, "location").unwrap().to_owned();
    let nodes = [&node_a, &node_b, &node_a];
    let pieces: Vec<&[u8]> = bytes.chunks(bytes.len() / 3 + 1).collect();
    let mut offset = 0;
    for (index, piece) in pieces.iter().enumerate() {
        let file = work.path().join(format!("chunk-{index}"));
        std::fs::write(&file, piece).unwrap();
        let path = location
            .trim_start_matches(&node_a.url)
            .trim_start_matches(&node_b.url);
        let (code, response) = send(
            "PATCH",
            &format!("{}{path}", nodes[index].url),
            &[
                "Content-Type: application/octet-stream".to_owned(),
                format!("Content-Range: {}-{}", offset, offset + piece.len() - 1),
            ],
            Some(&file),
        );
        assert_eq!(code, 202, "PATCH {index}: {response}");
        offset += piece.len();
        assert_eq!(
            header(&response, "range").unwrap(),
            format!("0-{}", offset - 1)
        );
        location = header(&response, "location").unwrap().to_owned();
    }
    let path = location
        .trim_start_matches(&node_a.url)
        .trim_start_matches(&node_b.url);
    let separator = if path.contains('?') { '&' } else { '?' };
    let (code, response) = send(
        "PUT",
        &format!("{}{path}{separator}digest={blob_digest}", node_b.url),
        &[],
        None,
    );
    assert_eq!(code, 201, "{response}");
    let (code, response) = send(
        "HEAD",
        &format!("{}/v2/default/chunky/blobs/{blob_digest}", node_a.url),
        &[],
        None,
    );
    assert_eq!(code, 200, "{response}");
    assert_eq!(
        header(&response, "content-length").unwrap(),
        bytes.len().to_string()
    );

    // The session is in the store: while a chunk streams into it through A (its
    // body held open), a second chunk sent to B is refused with 416, because A holds
    // the session's write lease in PostgreSQL. After A's chunk ends, the upload
    // finishes whole through B, and the store forgets the session.
    let (code, response) = send(
        "POST",
        &format!("{}/v2/default/leased/blobs/uploads/", node_b.url),
        &[],
        None,
    );
    assert_eq!(code, 202, "{response}");
    let path = header(&response, "location")
        .unwrap()
        .trim_start_matches(&node_b.url)
        .to_owned();
    let upload_id = path.rsplit('/').next().unwrap().to_owned();
    let sessions = |condition: &str| {
        postgres.query(&format!(
            "SELECT count(*) FROM upload_sessions WHERE id = '{upload_id}' {condition}"
        ))
    };
    assert_eq!(sessions(""), "1");
    let streamed = random_bytes(1 << 20);
    let mut slow = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PATCH",
        ])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
        ])
        // -T - streams stdin as it comes (chunked); --data-binary @- would read it all
        // before sending anything.
        .args(["-T", "-"])
        .arg(format!("{}{path}", node_a.url))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = slow.stdin.take().unwrap();
    std::io::Write::write_all(&mut body, &streamed[..1000]).unwrap();
    std::io::Write::flush(&mut body).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sessions("AND writer IS NOT NULL") != "1" {
        assert!(Instant::now() < deadline, "A never took the write lease");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = work.path().join("second-chunk");
    std::fs::write(&second, b"interloper").unwrap();
    let (code, response) = send(
        "PATCH",
        &format!("{}{path}", node_b.url),
        &["Content-Type: application/octet-stream".to_owned()],
        Some(&second),
    );
    assert_eq!(code, 416, "{response}");
    assert!(header(&response, "location").is_some(), "{response}");
    std::io::Write::write_all(&mut body, &streamed[1000..]).unwrap();
    drop(body);
    let finished = slow.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&finished.stdout), "202");
    assert_eq!(sessions("AND writer IS NULL"), "1");
    let streamed_digest = format!("sha256:{}", sha256_hex(&streamed));
    let (code, response) = send(
        "PUT",
        &format!("{}{path}?digest={streamed_digest}", node_b.url),
        &[],
        None,
    );
    assert_eq!(code, 201, "{response}");
    assert_eq!(sessions(""), "0");

    // A scan asked of the API-only node A runs on the worker node B.
    let image = image_id(&node_a, &digest, "app");
    let (operation, _) = request_scan(&node_a, &image);
    let done = node_a.wait(&operation);
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let scan_id = done["response"]["id"].as_str().unwrap();
    let finished = |server: &Server| {
        server
            .log_text()
            .lines()
            .any(|line| line.contains("scan finished") && line.contains(scan_id))
    };
    assert!(finished(&node_b), "{}", node_b.log_text());
    assert!(!finished(&node_a));

    // The layer cache is shared through the bucket: B's entries are there, and a
    // worker on a fresh node (C, in B's place) scans the image again without
    // reading a layer.
    let listing = bucket_list(&garage, "registry/cache/layers/");
    assert!(listing.contains("<Key>registry/cache/layers/"), "{listing}");
    let cache_files = |data: &Path| files_under(&data.join("cache"));
    assert!(!cache_files(&data_b).is_empty());
    node_b.stop();
    let data_c = work.path().join("node-c");
    let node_b = node(&data_c, 1, &postgres, &garage, &db);
    let (operation, _) = request_scan(&node_a, &image);
    let again = node_a.wait(&operation);
    assert_eq!(again["response"]["status"], "READY", "{again}");
    assert_eq!(
        again["response"]["vulnerabilities"], done["response"]["vulnerabilities"],
        "{again}"
    );
    let rescan_id = again["response"]["id"].as_str().unwrap();
    let line = node_b
        .log_text()
        .lines()
        .find(|line| line.contains("scan finished") && line.contains(rescan_id))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no scan on node C: {}", node_b.log_text()));
    assert!(line.contains("layers_read=0"), "{line}");

    // GC with A's settings reclaims a deleted image's blobs from the bucket.
    let gc_layout = work.path().join("gc-image");
    write_image_with_filler(&gc_layout, "1.0", 7);
    let gc_digest = push(&node_a, &gc_layout, "1.0", "default/gone:1.0");
    let unique: Vec<String> = layout_blobs(&gc_layout)
        .into_iter()
        .filter(|blob| !blobs.contains(blob))
        .collect();
    assert!(!unique.is_empty());
    assert_eq!(
        status(
            "DELETE",
            &format!("{}/v2/default/gone/manifests/{gc_digest}", node_a.url),
            &[]
        ),
        202
    );
    let output = Command::new(CRSCAN)
        .args(["gc", "--delete", "--grace-seconds", "0", "--blobs", BLOBS])
        .arg("--data-dir")
        .arg(&data_a)
        .args(["--store", &postgres.url])
        .envs(garage.env())
        .env_remove("CRSCAN_BLOBS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for blob in &unique {
        let key = format!(
            "registry/blobs/sha256/{}",
            blob.trim_start_matches("sha256:")
        );
        assert_eq!(bucket_status(&garage, &key), 404, "{key} survived GC");
    }
    for blob in &blobs {
        let key = format!(
            "registry/blobs/sha256/{}",
            blob.trim_start_matches("sha256:")
        );
        assert_eq!(bucket_status(&garage, &key), 200, "{key} was still used");
    }

    // Garage down for 5 s: 503, never 500; then both nodes recover by themselves.
    garage.pause();
    let down = Instant::now();
    let layer = &blobs[1];
    for server in [&node_a, &node_b] {
        for (method, url) in [
            (
                "GET",
                format!("{}/v2/default/app/blobs/{layer}", server.url),
            ),
            (
                "GET",
                format!("{}/v2/default/app/manifests/1.0", server.url),
            ),
            (
                "POST",
                format!("{}/v2/default/app/blobs/uploads/", server.url),
            ),
        ] {
            let code = status(method, &url, &[]);
            assert_eq!(code, 503, "{method} {url} with Garage down");
        }
    }
    while down.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
    }
    garage.resume();
    for (server, name) in [(&node_a, "again-a"), (&node_b, "again-b")] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match pull(server, "default/app:1.0", &work.path().join(name)) {
                Ok(again) => {
                    assert_eq!(again, digest);
                    break;
                }
                Err(error) => {
                    assert!(Instant::now() < deadline, "no recovery: {error}");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
    // A push after the outage works and pulls back whole.
    let digest2 = push(&node_b, &layout, "1.0", "default/app:2.0");
    assert_eq!(digest2, digest);
    for server in [&node_a, &node_b] {
        assert!(
            !server.log_text().contains("http.status=500"),
            "{}",
            server.log_text()
        );
    }
}

/// Images pushed at once, and scans queued over them (issue #14's load case).
const PUSHES: usize = 20;
const SCANS: usize = 200;

/// 20 concurrent pushes through two nodes and 200 queued scans run by two worker
/// nodes: every push lands, every scan finishes exactly once (one "scan finished"
/// line over both workers' logs), and every result equals the one-node scan of the
/// first image (all images hold the same packages; each has its own filler layer).
#[test]
fn twenty_pushes_and_two_hundred_scans_across_two_workers() {
    let Some(Cluster {
        postgres,
        garage,
        work,
        db,
    }) = Cluster::start()
    else {
        return;
    };
    let node_a = node(&work.path().join("node-a"), 1, &postgres, &garage, &db);

    // The reference: image 0 scanned while A is the only node.
    let layouts: Vec<PathBuf> = (0..PUSHES)
        .map(|index| {
            let layout = work.path().join(format!("image-{index}"));
            write_image_with_filler(&layout, "1.0", index + 1);
            layout
        })
        .collect();
    let first = push(&node_a, &layouts[0], "1.0", "default/load-0:1.0");
    let first_image = image_id(&node_a, &first, "load-0");
    let (operation, _) = request_scan(&node_a, &first_image);
    let reference = node_a.wait(&operation);
    assert_eq!(reference["response"]["status"], "READY", "{reference}");
    let counters = reference["response"]["vulnerabilities"].clone();

    let node_b = node(&work.path().join("node-b"), 1, &postgres, &garage, &db);
    let nodes = [&node_a, &node_b];
    // 20 pushes at once, alternating between the nodes.
    let digests: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = layouts
            .iter()
            .enumerate()
            .map(|(index, layout)| {
                let server = nodes[index % 2];
                scope.spawn(move || {
                    let repository = format!("load-{index}");
                    let digest = push(server, layout, "1.0", &format!("default/{repository}:1.0"));
                    (repository, digest)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let images: Vec<String> = digests
        .iter()
        .map(|(repository, digest)| image_id(&node_a, digest, repository))
        .collect();
    assert_eq!(
        images
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        PUSHES
    );

    // 200 scans queued through both nodes, run by both workers.
    let mut operations = Vec::new();
    for index in 0..SCANS {
        operations.push(request_scan(nodes[index % 2], &images[index % PUSHES]));
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    for (operation, _) in &operations {
        loop {
            let answer = node_a.get(&format!("/operations/{operation}"));
            if answer["done"] == true {
                assert_eq!(answer["response"]["status"], "READY", "{answer}");
                assert_eq!(answer["response"]["vulnerabilities"], counters, "{answer}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "scan {operation} never finished: {}",
                node_b.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let logs = format!("{}\n{}", node_a.log_text(), node_b.log_text());
    let mut by_node = [0usize; 2];
    for (_, scan) in &operations {
        let runs = logs
            .lines()
            .filter(|line| line.contains("scan finished") && line.contains(scan.as_str()))
            .count();
        assert_eq!(runs, 1, "scan {scan} finished {runs} times");
        for (index, server) in nodes.iter().enumerate() {
            if server
                .log_text()
                .lines()
                .any(|line| line.contains("scan finished") && line.contains(scan.as_str()))
            {
                by_node[index] += 1;
            }
        }
    }
    println!("scans run by node A, node B: {by_node:?}");
    assert!(by_node.iter().all(|count| *count > 0), "{by_node:?}");
}

/// Node B killed (SIGKILL) in the middle of a scan that the API-only node A queued:
/// the scan stays RUNNING while no worker is alive, and a worker on a restarted node
/// takes it again once B's lease has run out, finishes it once (as its second
/// attempt), and its result is the one a scan without a kill gives.
#[test]
fn a_worker_killed_mid_scan_is_finished_once_by_a_restarted_node() {
    let Some(Cluster {
        postgres,
        garage,
        work,
        db,
    }) = Cluster::start()
    else {
        return;
    };
    let data_b = work.path().join("node-b");
    let node_a = node(&work.path().join("node-a"), 0, &postgres, &garage, &db);
    let node_b = node(&data_b, 1, &postgres, &garage, &db);

    let layout = work.path().join("big");
    write_image_with_filler(&layout, "1.0", SLOW_SCAN_FILLER_FILES);
    let digest = push(&node_a, &layout, "1.0", "default/big:1.0");
    let image = image_id(&node_a, &digest, "big");
    let (operation_id, scan_id) = request_scan(&node_a, &image);

    // B has started the scan: it dies, with no graceful stop.
    wait_until_started(&node_b, &scan_id);
    let b_log = node_b.log.clone();
    node_b.stop();
    let b_log = std::fs::read_to_string(b_log).unwrap();
    assert!(
        scan_lines(&b_log, "scan finished", &scan_id).is_empty(),
        "B finished the scan before it was killed: make the filler larger\n{b_log}"
    );
    let started = scan_lines(&b_log, "scan started", &scan_id);
    assert_eq!(started.len(), 1, "{b_log}");
    assert!(started[0].contains("attempt=1"), "{b_log}");

    // With no worker alive the operation waits, as A reports it.
    let pending = node_a.get(&format!("/operations/{operation_id}"));
    assert_eq!(pending["done"], false, "{pending}");
    let running = node_a.get(&format!("/container-registry/v1/scans/{scan_id}"));
    assert_eq!(running["status"], "RUNNING", "{running}");

    // B comes back (same data directory, two workers): after the 5 s lease one of
    // its workers takes the scan again and finishes it.
    let node_b = node(&data_b, 2, &postgres, &garage, &db);
    let done = node_a.wait(&operation_id);
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(done["response"]["id"], scan_id.as_str(), "{done}");
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let log = node_b.log_text();
    let started = scan_lines(&log, "scan started", &scan_id);
    assert_eq!(started.len(), 1, "started more than once: {log}");
    assert!(started[0].contains("attempt=2"), "{log}");
    assert_eq!(
        scan_lines(&log, "scan finished", &scan_id).len(),
        1,
        "{log}"
    );
    for message in ["scan ended in error", "scan failed", "lost the lease"] {
        assert!(
            scan_lines(&log, message, &scan_id).is_empty(),
            "{message}: {log}"
        );
    }
    assert!(
        !node_a.log_text().contains("scan started"),
        "the API-only node ran a scan: {}",
        node_a.log_text()
    );
    let results = node_a.get(&format!("/container-registry/v1/scans?imageId={image}"));
    assert_eq!(
        results["scanResults"].as_array().unwrap().len(),
        1,
        "{results}"
    );

    // The same packages without the filler, scanned without a kill: the same findings.
    let plain = work.path().join("plain");
    write_image(&plain, "1.0");
    let plain_digest = push(&node_a, &plain, "1.0", "default/plain:1.0");
    let plain_image = image_id(&node_a, &plain_digest, "plain");
    let (operation, _) = request_scan(&node_a, &plain_image);
    let reference = node_a.wait(&operation);
    assert_eq!(reference["response"]["status"], "READY", "{reference}");
    assert_eq!(
        reference["response"]["vulnerabilities"], done["response"]["vulnerabilities"],
        "{reference}"
    );
    let findings = |id: &str| {
        node_a.get(&format!(
            "/container-registry/v1/scans/{id}:listVulnerabilities?pageSize=1000"
        ))["vulnerabilities"]
            .clone()
    };
    assert_eq!(
        findings(&scan_id),
        findings(reference["response"]["id"].as_str().unwrap())
    );
}
