//! Operating a node: `/metrics` after a push, a pull and a scan, parsed by the
//! Prometheus project's own parser (PyPI `prometheus-client`, installed by
//! `scripts/install-prometheus-client.sh` into a cache outside the repository);
//! `--log-format json` lines carrying the request id and the scan id; SIGTERM with a
//! scan running, finished within `shutdown_timeout_seconds` or handed back to the
//! queue for the next node; and a database published with `crscan db build
//! --publish` swapped in by a running node and named by `/readyz`.
//!
//! Skips with a message when `skopeo`, `curl` or `python3` is missing, unless
//! `CRSCAN_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::images::{write_image, write_image_with_filler};
use common::server::{Server, image_id, push};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const INSTALL_PROMETHEUS_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/install-prometheus-client.sh"
);

fn tools_present() -> bool {
    common::tools_present(&["skopeo", "curl", "python3"], false)
}

const FEEDS: &[&str] = &[
    "alpine-secdb/v3.4/main.yaml",
    "pypa-advisory-database/vulns/jinja2",
    "github-advisory-database-subset",
];

fn db_build(db: &Path, extra: &[&str]) -> String {
    db_build_in(db, extra, &[])
}

/// [`db_build`] with environment variables (the S3 credentials of a publish).
fn db_build_in(db: &Path, extra: &[&str], env: &[(&'static str, String)]) -> String {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut command = Command::new(CRSCAN);
    command.envs(env.iter().map(|(name, value)| (*name, value.as_str())));
    command.args(["db", "build"]);
    for feed in FEEDS {
        command.arg("--from").arg(format!("{DATA}/vulndb/{feed}"));
    }
    let output = command
        .arg("--db")
        .arg(db)
        .args(extra)
        .env_remove("CRSCAN_STORE")
        .env_remove("CRSCAN_DATA_DIR")
        .env_remove("CRSCAN_BLOBS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("crscan.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_scan(server: &Server, image: &str) -> String {
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({ "imageId": image })),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    operation["id"].as_str().unwrap().to_owned()
}

/// Sends SIGTERM and waits (generously) for the process to exit; its exit status.
fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "crscan serve did not exit after SIGTERM: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_log(server: &Server, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !server.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never logged: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Metric families by name, each with its samples (name, labels, value).
type Families = HashMap<String, Vec<(String, HashMap<String, String>, f64)>>;

/// `/metrics` parsed by prometheus_client: family name → its samples
/// (name, labels, value).
fn parse_metrics(text: &str, dir: &Path) -> Families {
    let output = Command::new("bash")
        .arg(INSTALL_PROMETHEUS_CLIENT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let file = dir.join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    families[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(families))
"#;
    let parsed = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "prometheus_client refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let families: Value = serde_json::from_slice(&parsed.stdout).unwrap();
    families
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, family)| {
            let samples = family["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sample| {
                    let labels = sample[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
                        .collect();
                    (
                        sample[0].as_str().unwrap().to_owned(),
                        labels,
                        sample[2].as_f64().unwrap(),
                    )
                })
                .collect();
            (name.clone(), samples)
        })
        .collect()
}

/// The sum of a family's samples named `sample` whose labels include `labels`.
fn total(families: &Families, family: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
    families
        .get(family)
        .unwrap_or_else(|| panic!("family {family} missing: {:?}", families.keys()))
        .iter()
        .filter(|(name, found, _)| {
            name == sample
                && labels
                    .iter()
                    .all(|(key, value)| found.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, _, value)| value)
        .sum()
}

#[test]
fn metrics_json_logs_and_a_graceful_stop() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    db_build(&data_dir.join("vulndb/crscan.db"), &[]);
    let config = config(
        dir.path(),
        "log_format = \"json\"\nshutdown_timeout_seconds = 60\n",
    );
    let mut server = Server::start_with(&data_dir, 1, None, Some(&config));
    let layout = dir.path().join("image");
    write_image(&layout, "1.0");
    let digest = push(&server, &layout, "1.0", "default/app:1.0");
    let image = image_id(&server, &digest, "app");
    // A pull of the manifest and of its config.
    let manifest = Command::new("curl")
        .args([
            "-sSf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("{}/v2/default/app/manifests/{digest}", server.url))
        .output()
        .unwrap();
    assert!(manifest.status.success());
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let blob = Command::new("curl")
        .args(["-sSf", "-o", "/dev/null"])
        .arg(format!(
            "{}/v2/default/app/blobs/{config_digest}",
            server.url
        ))
        .status()
        .unwrap();
    assert!(blob.success());
    let operation = start_scan(&server, &image);
    let done = server.wait(&operation);
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let scan_id = done["response"]["id"].as_str().unwrap().to_owned();

    // A response's request id, from its header.
    let headers = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null"])
        .arg(format!(
            "{}/container-registry/v1/images/{image}",
            server.url
        ))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&headers.stdout).into_owned();
    let request_id = headers
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("x-request-id:")
                .map(|value| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no x-request-id in {headers}"));

    let (status, _) = server.call("GET", "/metrics", None, &[]);
    assert_eq!(status, 200);
    let text = Command::new("curl")
        .args(["-sSf"])
        .arg(format!("{}/metrics", server.url))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let families = parse_metrics(&text, dir.path());
    let manifests = [("route", "/v2/{name}/manifests/{reference}")];
    assert!(
        total(
            &families,
            "crscan_http_requests",
            "crscan_http_requests_total",
            &manifests
        ) >= 2.0,
        "{text}"
    );
    assert!(
        total(
            &families,
            "crscan_http_request_duration_seconds",
            "crscan_http_request_duration_seconds_count",
            &[
                ("route", "/v2/{name}/blobs/{digest}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0,
        "{text}"
    );
    // Raw paths never become labels.
    assert!(!text.contains(&image), "an image id is a label: {text}");
    assert!(!text.contains(&digest), "a digest is a label: {text}");
    assert!(
        total(
            &families,
            "crscan_registry_pushes",
            "crscan_registry_pushes_total",
            &[]
        ) >= 1.0
    );
    assert!(
        total(
            &families,
            "crscan_registry_pulls",
            "crscan_registry_pulls_total",
            &[]
        ) >= 1.0
    );
    for direction in ["received", "sent"] {
        assert!(
            total(
                &families,
                "crscan_registry_bytes",
                "crscan_registry_bytes_total",
                &[("direction", direction)]
            ) > 0.0,
            "{direction}: {text}"
        );
    }
    assert!(
        total(
            &families,
            "crscan_scans",
            "crscan_scans_total",
            &[("result", "ready")]
        ) >= 1.0
    );
    assert!(
        total(
            &families,
            "crscan_scan_duration_seconds",
            "crscan_scan_duration_seconds_count",
            &[("result", "ready")]
        ) >= 1.0
    );
    assert!(
        total(
            &families,
            "crscan_layer_cache_lookups",
            "crscan_layer_cache_lookups_total",
            &[("result", "miss")]
        ) >= 1.0,
        "{text}"
    );
    assert!(families.contains_key("crscan_layer_cache_lookups"));
    assert_eq!(
        total(
            &families,
            "crscan_scan_queue_jobs",
            "crscan_scan_queue_jobs",
            &[("state", "done")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        total(
            &families,
            "crscan_vulnerability_database_advisories",
            "crscan_vulnerability_database_advisories",
            &[]
        ) > 0.0
    );
    assert!(families.contains_key("crscan_vulnerability_database_age_seconds"));
    assert!(families.contains_key("crscan_backend_errors"), "{text}");

    // A scan of a large image, then SIGTERM while it runs: the node finishes it
    // within the shutdown timeout before it exits.
    let big_layout = dir.path().join("big");
    write_image_with_filler(&big_layout, "1.0", 120_000);
    let big_digest = push(&server, &big_layout, "1.0", "default/big:1.0");
    let big_image = image_id(&server, &big_digest, "big");
    let second = start_scan(&server, &big_image);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !server
        .log_text()
        .lines()
        .any(|line| line.contains("scan started") && line.contains(&big_image))
    {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = terminate(&mut server);
    assert!(status.success(), "{status:?}: {}", server.log_text());
    let log = server.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    let field = |line: &Value, name: &str| -> Option<String> {
        line["fields"][name]
            .as_str()
            .or_else(|| line["span"][name].as_str())
            .map(str::to_owned)
    };
    assert!(
        lines
            .iter()
            .any(|line| field(line, "request_id").as_deref() == Some(request_id.as_str())),
        "no log line carries request id {request_id}:\n{log}"
    );
    assert!(
        lines.iter().any(|line| {
            field(line, "scan.id").as_deref() == Some(scan_id.as_str())
                && field(line, "image.id").as_deref() == Some(image.as_str())
        }),
        "no log line carries scan id {scan_id} and image id {image}:\n{log}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "crscan stopped"),
        "{log}"
    );
    assert!(
        lines.iter().any(|line| {
            line["fields"]["message"] == "scan finished"
                && field(line, "scan.id").is_some_and(|id| id != scan_id)
        }),
        "the running scan did not finish before the node stopped:\n{log}"
    );
    assert!(!log.contains("handed back"), "{log}");
    // It is done in the store: a node started next finds it READY and runs nothing.
    let restarted = Server::start(&data_dir, 1, None);
    let finished = restarted.get(&format!("/operations/{second}"));
    assert_eq!(finished["response"]["status"], "READY", "{finished}");
}

/// With the shutdown timeout at 0, SIGTERM during a scan hands the scan back at
/// once; the next node takes it without waiting for the lease, as its first attempt.
#[test]
fn sigterm_hands_a_running_scan_back() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    db_build(&data_dir.join("vulndb/crscan.db"), &[]);
    // A lease far longer than the test: the job comes back only if it was released.
    let config = config(
        dir.path(),
        "shutdown_timeout_seconds = 0\nscan_lease_seconds = 3600\n",
    );
    let layout = dir.path().join("image");
    write_image_with_filler(&layout, "1.0", 120_000);
    let mut first = Server::start_with(&data_dir, 1, None, Some(&config));
    let digest = push(&first, &layout, "1.0", "default/big:1.0");
    let image = image_id(&first, &digest, "big");
    let operation = start_scan(&first, &image);
    wait_for_log(&first, "scan started");
    let status = terminate(&mut first);
    assert!(status.success(), "{status:?}: {}", first.log_text());
    let log = first.log_text();
    assert!(
        log.contains("scan handed back to the queue at shutdown") && log.contains("released=true"),
        "the scan was not handed back (did it finish before SIGTERM?): {log}"
    );
    let pending = {
        let api_only = Server::start_with(&data_dir, 0, None, Some(&config));
        api_only.get(&format!("/operations/{operation}"))
    };
    assert_eq!(pending["done"], false, "{pending}");

    let second = Server::start_with(&data_dir, 1, None, Some(&config));
    let done = second.wait(&operation);
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let second_log = second.log_text();
    let started: Vec<&str> = second_log
        .lines()
        .filter(|line| line.contains("scan started"))
        .collect();
    assert_eq!(started.len(), 1, "{second_log}");
    assert!(started[0].contains("attempt=1"), "{second_log}");
}

/// `crscan db build --publish` puts the database into the blob store; a running node
/// with another database file notices it, checks it, swaps it in and says so in
/// `/readyz`.
#[test]
fn a_published_database_is_swapped_in() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let node_db = dir.path().join("node/crscan.db");
    let config = config(
        dir.path(),
        &format!(
            "db = {:?}\ndb_watch_seconds = 1\n",
            node_db.display().to_string()
        ),
    );
    let server = Server::start_with(&data_dir, 1, None, Some(&config));
    let ready = server.get("/readyz");
    assert_eq!(
        ready["vulnerabilityDatabase"]["status"], "missing",
        "{ready}"
    );

    let published = db_build(
        &dir.path().join("build/crscan.db"),
        &["--publish", "--data-dir", data_dir.to_str().unwrap()],
    );
    assert!(
        published
            .lines()
            .any(|line| line.starts_with("published sha256:")),
        "{published}"
    );
    let status = Command::new(CRSCAN)
        .args(["db", "status", "--json", "--db"])
        .arg(dir.path().join("build/crscan.db"))
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let content_digest = status["content_digest"]
        .as_str()
        .or_else(|| status["contentDigest"].as_str())
        .unwrap_or_else(|| panic!("no content digest in {status}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = server.get("/readyz");
        if ready["vulnerabilityDatabase"]["digest"] == content_digest.as_str() {
            assert!(
                ready["vulnerabilityDatabase"]["builtAt"].is_string(),
                "{ready}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never swapped in the published database: {ready}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(node_db.exists());
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(node_db.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".fetch-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A PostgreSQL server of the test's own (initdb in a temporary directory, its own
/// port), so it can be stopped without touching the shared one.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            assert!(
                std::env::var("CRSCAN_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "{PG_BIN}/initdb is missing"
            );
            println!("skipped: no {PG_BIN}/initdb");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if common::is_root() {
            // PostgreSQL refuses to run as root: its files belong to `postgres`.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let server = OwnPostgres { dir, port };
        server.pg(&[
            "initdb",
            "-D",
            &server.data(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]);
        server.start_again();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs a PostgreSQL program (as `postgres` when the test runs as root).
    fn pg(&self, args: &[&str]) {
        let program = format!("{PG_BIN}/{}", args[0]);
        let mut command = if common::is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", &program]);
            command
        } else {
            Command::new(&program)
        };
        let output = command.args(&args[1..]).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.pg(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "start",
        ]);
    }

    fn stop(&self) {
        self.pg(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let program = format!("{PG_BIN}/pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if common::is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &program])
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

/// The HTTP status of a request with curl (0 when it did not complete in time).
fn status_of(method: &str, url: &str) -> u16 {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "40",
            "-w",
            "%{http_code}",
            "-X",
            method,
        ])
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// PostgreSQL stopped for 5 seconds: the API, the registry and `/readyz` answer
/// 503, never 500, and the node serves and scans again by itself once it is back.
#[test]
fn postgres_stopped_for_five_seconds() {
    if !tools_present() {
        return;
    }
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    db_build(&data_dir.join("vulndb/crscan.db"), &[]);
    let server = Server::start(&data_dir, 1, Some(&postgres.url()));
    let layout = dir.path().join("image");
    write_image(&layout, "1.0");
    let digest = push(&server, &layout, "1.0", "default/app:1.0");
    let image = image_id(&server, &digest, "app");

    postgres.stop();
    let urls = [
        (
            "GET",
            format!(
                "{}/container-registry/v1/images?folderId=default",
                server.url
            ),
        ),
        (
            "GET",
            format!("{}/container-registry/v1/images/{image}", server.url),
        ),
        (
            "GET",
            format!("{}/v2/default/app/manifests/1.0", server.url),
        ),
        ("GET", format!("{}/v2/default/app/tags/list", server.url)),
        ("GET", format!("{}/readyz", server.url)),
    ];
    let stopped_at = Instant::now();
    let mut seen = Vec::new();
    while stopped_at.elapsed() < Duration::from_secs(5) {
        for (method, url) in &urls {
            seen.push((status_of(method, url), url.clone()));
        }
    }
    postgres.start_again();
    let errors: Vec<_> = seen.iter().filter(|(status, _)| *status != 503).collect();
    assert!(
        errors.is_empty(),
        "while PostgreSQL was stopped every request is 503: {errors:?}\n{}",
        server.log_text()
    );

    // Back by itself: the same calls succeed and a scan runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of("GET", &urls[0].1) != 200 {
        assert!(
            Instant::now() < deadline,
            "never recovered: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (method, url) in &urls {
        assert_eq!(status_of(method, url), 200, "{url}");
    }
    let operation = start_scan(&server, &image);
    let done = server.wait(&operation);
    assert_eq!(done["response"]["status"], "READY", "{done}");
}

/// Node shapes on one PostgreSQL database and one data dir: a scan requested from the
/// API node (`--workers 0`) runs on the worker node; the API node scans nothing and
/// runs no scheduler, and `gc_enabled = false` keeps GC off the worker node.
#[test]
fn an_api_node_and_a_worker_node() {
    if !tools_present() {
        return;
    }
    let Some(postgres) = common::postgres::Postgres::create("ops") else {
        return;
    };
    let url = postgres.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    db_build(&data_dir.join("vulndb/crscan.db"), &[]);
    let api_config = dir.path().join("api.toml");
    std::fs::write(&api_config, "workers = 0\n").unwrap();
    let worker_config = dir.path().join("worker.toml");
    std::fs::write(&worker_config, "workers = 1\ngc_enabled = false\n").unwrap();
    let api = Server::start_with(&data_dir, 0, Some(&url), Some(&api_config));
    let worker = Server::start_with(&data_dir, 1, Some(&url), Some(&worker_config));
    let layout = dir.path().join("image");
    write_image(&layout, "1.0");
    let digest = push(&api, &layout, "1.0", "default/app:1.0");
    let image = image_id(&api, &digest, "app");
    let operation = start_scan(&api, &image);
    let done = api.wait(&operation);
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let api_log = api.log_text();
    let worker_log = worker.log_text();
    assert!(!api_log.contains("scan started"), "{api_log}");
    assert!(worker_log.contains("scan started"), "{worker_log}");
    assert!(worker_log.contains("background gc is off"), "{worker_log}");
    assert!(!api_log.contains("background gc is off"), "{api_log}");
    // Both nodes' /metrics see the cluster's queue.
    for node in [&api, &worker] {
        let text = Command::new("curl")
            .args(["-sSf"])
            .arg(format!("{}/metrics", node.url))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        assert!(
            text.contains("crscan_scan_queue_jobs{state=\"done\"} 1\n"),
            "{text}"
        );
    }
    drop(api);
    drop(worker);
}

/// The published database goes into the cluster's S3 bucket (a real one-node Garage)
/// and a node with no database of its own fetches it from there; nothing is written
/// to the local blob directory.
#[test]
fn a_database_published_into_s3_is_swapped_in() {
    if !tools_present() {
        return;
    }
    let Some(garage) = common::garage::Garage::start("crscan-db") else {
        return;
    };
    let blobs = format!("s3://{}/cluster", garage.bucket);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let node_db = dir.path().join("node/crscan.db");
    std::fs::create_dir_all(&data_dir).unwrap();
    let log = dir.path().join("serve.log");
    let mut command = Command::new(CRSCAN);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--db")
        .arg(&node_db)
        .args([
            "--workers",
            "1",
            "--db-watch-seconds",
            "1",
            "--blobs",
            &blobs,
        ])
        .envs(garage.env())
        .env_remove("CRSCAN_CONFIG")
        .env_remove("CRSCAN_STORE")
        .env_remove("CRSCAN_TOKENS")
        .env("CRSCAN_DB_AUTO_UPDATE", "0")
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap());
    let (mut child, port) = common::spawn_serve(command);
    let url = format!("http://127.0.0.1:{port}");

    let published = db_build_in(
        &dir.path().join("build/crscan.db"),
        &[
            "--publish",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--blobs",
            &blobs,
        ],
        &garage.env(),
    );
    assert!(
        published
            .lines()
            .any(|line| line.starts_with("published sha256:")),
        "{published}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new("curl")
            .args(["-sS"])
            .arg(format!("{url}/readyz"))
            .output()
            .unwrap();
        let ready: Value = serde_json::from_slice(&ready.stdout).unwrap_or(Value::Null);
        if ready["vulnerabilityDatabase"]["status"] == "fresh" {
            assert!(
                ready["vulnerabilityDatabase"]["digest"].is_string(),
                "{ready}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never swapped in the database published into S3: {ready}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let local_blobs = data_dir.join("blobs");
    let stored_locally = local_blobs.exists()
        && walk_files(&local_blobs).iter().any(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().len() == 64)
        });
    assert!(!stored_locally, "the database blob landed on local disk");
    let _ = child.kill();
    let _ = child.wait();
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk_files(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}
