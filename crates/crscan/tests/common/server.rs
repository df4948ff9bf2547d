//! A running `crscan serve` for the end-to-end tests, called with `curl`, and
//! images pushed to it with `skopeo`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");

/// A running `crscan serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, workers: usize, store: Option<&str>) -> Server {
        Server::start_with(data_dir, workers, store, None)
    }

    /// [`Server::start`] with a configuration file (`--config`).
    pub fn start_with(
        data_dir: &Path,
        workers: usize,
        store: Option<&str>,
        config: Option<&Path>,
    ) -> Server {
        Server::start_node(data_dir, workers, store, config, &[], &[])
    }

    /// [`Server::start_with`] with more arguments and environment variables (a
    /// cluster node: `--blobs s3://…` and the AWS variables).
    pub fn start_node(
        data_dir: &Path,
        workers: usize,
        store: Option<&str>,
        config: Option<&Path>,
        args: &[String],
        env: &[(&str, String)],
    ) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        // One log per start, numbered, so a restarted server's log is its own.
        let starts = std::fs::read_dir(data_dir)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("serve-"))
            })
            .count();
        let log = data_dir.join(format!("serve-{starts}.log"));
        let mut command = Command::new(CRSCAN);
        command.arg("serve");
        if let Some(url) = store {
            command.args(["--store", url]);
        }
        match config {
            Some(config) => command.arg("--config").arg(config),
            None => command.env_remove("CRSCAN_CONFIG"),
        };
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--workers", &workers.to_string()])
            .env_remove("CRSCAN_TOKENS")
            .env_remove("CRSCAN_DB")
            .env_remove("CRSCAN_STORE")
            .env("NO_COLOR", "1")
            // Tests reach no network: no background database download.
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .env_remove("CRSCAN_BLOBS")
            .args(args)
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, port) = super::spawn_serve(command);
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Calls the API with curl; returns the HTTP status and the JSON body (or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-g", "-X", method, "-w", "\n%{http_code}"])
            .arg(format!("{}{}", self.url, path));
        for (name, value) in headers {
            command.args(["-H", &format!("{name}: {value}")]);
        }
        if let Some(body) = body {
            command.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body.to_string(),
            ]);
        }
        let output = command.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let status = code.trim().parse().unwrap_or(0);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None, &[]);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Polls an operation until it is done.
    pub fn wait(&self, operation_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let operation = self.get(&format!("/operations/{operation_id}"));
            if operation["done"] == true {
                return operation;
            }
            assert!(
                Instant::now() < deadline,
                "operation {operation_id} never finished: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stop(mut self) {
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

pub fn push(server: &Server, layout: &Path, tag: &str, repository: &str) -> String {
    push_from(
        server,
        &format!("oci:{}:{tag}", layout.display()),
        repository,
    )
}

/// Pushes the image `source` (any transport skopeo reads: `oci:PATH:TAG`,
/// `docker-archive:FILE`) as `repository` (`default/app:1.0`); returns the pushed
/// manifest's digest.
pub fn push_from(server: &Server, source: &str, repository: &str) -> String {
    let digest_file = std::env::temp_dir().join(format!(
        "crscan-push-{}-{}.digest",
        std::process::id(),
        super::images::sha256_hex(format!("{source} {repository}").as_bytes())
    ));
    let output = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--digestfile"])
        .arg(&digest_file)
        .arg(source)
        .arg(format!(
            "docker://{}/{repository}",
            server.url.trim_start_matches("http://")
        ))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let _ = std::fs::remove_file(&digest_file);
    digest
}

/// The id of the image with `digest` in `repository` (`app`, `other/service`).
pub fn image_id(server: &Server, digest: &str, repository: &str) -> String {
    let images = server.get("/container-registry/v1/images?folderId=default&pageSize=1000");
    let suffix = format!("/{repository}");
    images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| {
            image["digest"] == digest && image["name"].as_str().unwrap().ends_with(&suffix)
        })
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .unwrap()
}

/// The READY results of an image, newest first.
pub fn ready_results(server: &Server, image: &str) -> Vec<Value> {
    let list = server.get(&format!(
        "/container-registry/v1/scans?imageId={image}&filter=status%3D%22READY%22&orderBy=scannedAt%20desc"
    ));
    list["scanResults"].as_array().cloned().unwrap_or_default()
}

/// Waits until the image has `count` READY results; returns the newest.
pub fn wait_for_results(server: &Server, image: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let results = ready_results(server, image);
        if results.len() >= count {
            return results[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no rescan after the database changed: {results:?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Files in the filler layer of an image whose scan must be killed half-way: enough
/// for the scan to last several seconds in a debug build (about 4.5 s alone), so that
/// the kill lands in the middle of it and the restarted node's worker renews its lease
/// while another worker looks for work.
pub const SLOW_SCAN_FILLER_FILES: usize = 120_000;

/// The lines of a server log about scan `scan_id` that carry `message`.
pub fn scan_lines(log: &str, message: &str, scan_id: &str) -> Vec<String> {
    let id = format!("scan.id={scan_id}");
    log.lines()
        .filter(|line| line.contains(message) && line.contains(&id))
        .map(str::to_owned)
        .collect()
}

/// Asks `server` for a scan of `image`: the operation id and the scan result id.
pub fn request_scan(server: &Server, image: &str) -> (String, String) {
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&serde_json::json!({ "imageId": image })),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    let operation_id = operation["id"].as_str().unwrap().to_owned();
    let scan_id = operation["metadata"]["scanResultId"]
        .as_str()
        .unwrap()
        .to_owned();
    (operation_id, scan_id)
}

/// Waits (two minutes at most) until a worker of `server` has started scan `scan_id`.
pub fn wait_until_started(server: &Server, scan_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while scan_lines(&server.log_text(), "scan started", scan_id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "scan {scan_id} never started: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
