//! The gRPC API with the official SDKs as real clients: Python `yandexcloud` over TLS
//! (a test certificate made by `openssl`) and over cleartext, and
//! `@yandex-cloud/nodejs-sdk` over TLS, against a real `crscan serve` with tokens, a
//! database built from the shared feeds and an image pushed with `skopeo`.
//!
//! The clients run scripts in `tests/grpc_clients/` that compare every gRPC answer
//! with the REST answer for the same object; this test checks what they report and
//! the server's log. The SDKs are installed from PyPI and npm into a cache outside
//! the repository by `scripts/install-grpc-clients.sh` (which `.ci/run` runs too).
//! Skips with a message when a tool or the SDKs are missing, unless
//! `CRSCAN_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::{Value, json};

mod common;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_clients");
const INSTALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/install-grpc-clients.sh"
);
const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const PYTHON_SDK: &str = "python-yandexcloud-0.413.0";
const NODE_SDK: &str = "node-yandex-cloud-sdk-2.9.3";
const ADMIN: &str = "grpc-admin-token";
const VIEWER: &str = "grpc-viewer-token";

/// The SDK cache, installed by the script; `None` (a skip) when it cannot be.
fn sdk_cache() -> Option<PathBuf> {
    if !common::tools_present(&["skopeo", "openssl", "python3", "node", "npm"], false) {
        return None;
    }
    let output = Command::new("bash").arg(INSTALL).output().unwrap();
    if !output.status.success() {
        let required = std::env::var("CRSCAN_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
        let message = format!(
            "cannot install the SDKs: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!required, "CRSCAN_REQUIRE_TOOLS=1 but {message}");
        eprintln!("skipping: {message}");
        return None;
    }
    Some(PathBuf::from(
        String::from_utf8(output.stdout).unwrap().trim(),
    ))
}

/// A running `crscan serve` with two tokens, killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, tls: Option<(&Path, &Path)>, log_name: &str) -> Server {
        let log = data_dir.join(log_name);
        let mut command = Command::new(CRSCAN);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--workers", "1"])
            .env("CRSCAN_TOKENS", format!("{ADMIN}:admin,{VIEWER}:viewer"))
            .env_remove("CRSCAN_CONFIG")
            .env_remove("CRSCAN_DB")
            .env_remove("CRSCAN_STORE")
            .env_remove("CRSCAN_PUBLIC_ADDRESS")
            .env("NO_COLOR", "1")
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some((certificate, key)) = tls {
            command
                .arg("--tls-cert")
                .arg(certificate)
                .arg("--tls-key")
                .arg(key);
        }
        let (child, port) = common::spawn_serve(command);
        Server { child, port, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build_database(data_dir: &Path) {
    let db = data_dir.join("vulndb/crscan.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut command = Command::new(CRSCAN);
    command.args(["db", "build"]);
    for feed in [
        "alpine-secdb/v3.4/main.yaml",
        "pypa-advisory-database/vulns/jinja2",
        "github-advisory-database-subset",
    ] {
        command.arg("--from").arg(format!("{DATA}/vulndb/{feed}"));
    }
    common::run(command.arg("--db").arg(&db));
}

/// Pushes the test image with skopeo (over TLS, unverified) as `default/app:1.0`;
/// returns its digest.
fn push(server: &Server, dir: &Path) -> String {
    let layout = dir.join("image");
    common::images::write_image(&layout, "1.0");
    let digest_file = dir.join("image.digest");
    common::run(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("user:{ADMIN}"))
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(format!("oci:{}:1.0", layout.display()))
            .arg(format!(
                "docker://127.0.0.1:{}/default/app:1.0",
                server.port
            )),
    );
    std::fs::read_to_string(digest_file)
        .unwrap()
        .trim()
        .to_owned()
}

/// The image's id, read over REST.
fn image_id(rest: &str, ca: &Path, digest: &str) -> String {
    let certificate = std::fs::read(ca).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificate).unwrap())
        .build()
        .unwrap();
    let text = client
        .get(format!(
            "{rest}/container-registry/v1/images?folderId=default"
        ))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let images: Value = serde_json::from_str(&text).unwrap();
    images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["digest"] == digest)
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no image {digest} in {images}"))
}

/// Runs a client script; returns the facts it printed, failing with its output.
fn run_client(mut command: Command, server: &Server) -> Value {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{command:?} failed:\nstdout: {stdout}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("no facts in {stdout}"))
}

/// Checks the error facts a client reported: the codes, and that each error's
/// request id is the id of a line of the server's access log.
fn check_errors(facts: &Value, server: &Server) {
    let codes = &facts["codes"];
    assert_eq!(codes["missing"], "NOT_FOUND", "{facts}");
    assert_eq!(codes["malformed"], "INVALID_ARGUMENT", "{facts}");
    assert_eq!(codes["no_token"], "UNAUTHENTICATED", "{facts}");
    assert_eq!(codes["viewer_scan"], "PERMISSION_DENIED", "{facts}");
    let log = server.log_text();
    for (name, error) in facts["errors"].as_object().unwrap() {
        let id = error["request_id"].as_str().unwrap();
        assert!(
            log.lines()
                .any(|line| line.contains("crscan::access") && line.contains(id)),
            "{name}: request id {id} is not in the access log:\n{log}"
        );
    }
    // A method crscan lacks is logged by its full name.
    assert!(
        log.contains("yandex.cloud.containerregistry.v1.RegistryService/ForceDelete")
            && log.contains("gRPC method not implemented by crscan"),
        "{log}"
    );
}

#[test]
fn official_sdks_over_tls_and_cleartext_answer_as_rest_does() {
    let Some(cache) = sdk_cache() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database(&data_dir);
    let (ca, certificate, key) = common::test_certificates(dir.path());
    let python = cache.join(PYTHON_SDK).join("bin/python");

    // ---- Python over TLS: discovery, token exchange, everything.
    let server = Server::start(&data_dir, Some((&certificate, &key)), "serve-tls.log");
    let endpoint = format!("localhost:{}", server.port);
    let rest = format!("https://localhost:{}", server.port);
    let digest = push(&server, dir.path());
    let image = image_id(&rest, &ca, &digest);
    let config = json!({
        "mode": "tls", "endpoint": endpoint, "rest": rest, "ca": ca,
        "admin_token": ADMIN, "viewer_token": VIEWER, "image_id": image, "folder_id": "default",
    });
    let mut command = Command::new(&python);
    command
        .arg(format!("{CLIENTS}/python_sdk.py"))
        .arg(config.to_string());
    let facts = run_client(command, &server);
    for id in [
        "container-registry",
        "operation",
        "iam",
        "resource-manager",
        "endpoint",
    ] {
        assert!(
            facts["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == id),
            "{facts}"
        );
    }
    assert_eq!(facts["token_exchange"], "ok");
    assert_eq!(facts["iam_token_lifetime_hours"], 12);
    assert_eq!(facts["scan_policy"], "ok");
    let total = facts["vulnerabilities"]["total"].as_u64().unwrap();
    assert!(total >= 4, "{facts}");
    assert!(facts["vulnerabilities"]["pages"].as_u64().unwrap() >= 2);
    assert!(facts["checked"].as_array().unwrap().len() >= 20, "{facts}");
    check_errors(&facts, &server);
    let python_checked = facts["checked"].as_array().unwrap().len();

    // ---- Node over TLS.
    let node_modules = cache.join(NODE_SDK).join("node_modules");
    let mut command = Command::new("node");
    command
        .arg(format!("{CLIENTS}/node_sdk.js"))
        .arg(config.to_string())
        .env("NODE_PATH", &node_modules);
    let node = run_client(command, &server);
    assert_eq!(node["stats"], facts["stats"], "{node}");
    assert_eq!(node["critical"], facts["critical"], "{node}");
    assert_eq!(node["scan"], "READY", "{node}");
    drop(server);

    // ---- Python over cleartext (`insecure=True`) on the same data.
    let server = Server::start(&data_dir, None, "serve-cleartext.log");
    let config = json!({
        "mode": "insecure", "endpoint": format!("127.0.0.1:{}", server.port),
        "rest": format!("http://127.0.0.1:{}", server.port), "ca": ca,
        "admin_token": ADMIN, "viewer_token": VIEWER, "image_id": image, "folder_id": "default",
    });
    let mut command = Command::new(&python);
    command
        .arg(format!("{CLIENTS}/python_sdk.py"))
        .arg(config.to_string());
    let cleartext = run_client(command, &server);
    assert_eq!(cleartext["vulnerabilities"]["total"], total);
    check_errors(&cleartext, &server);
    eprintln!(
        "compared {python_checked} answers over TLS and {} over cleartext",
        cleartext["checked"].as_array().unwrap().len()
    );
}
