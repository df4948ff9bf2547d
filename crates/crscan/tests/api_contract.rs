//! The management API's contract where a hosted-service user would notice it: JSON
//! answers for paths crscan does not serve, roles per call (cancel needs the scanner
//! role), `Idempotency-Key` scoped per method and caller, the request id in errors and
//! in the access log, the bearer scheme in 401s and in `/openapi.json`, the body limit,
//! the hosted service's limits on labels, names and rescan periods, and page tokens
//! that are opaque and stay put when rows are inserted between pages. Run against a
//! real `crscan serve` with tokens, on SQLite and (with `CRSCAN_TEST_POSTGRES_URL`) on
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use common::postgres::Postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::{Value, json};

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");

const ADMIN: &str = "admin-token-1";
const VIEWER: &str = "viewer-token-1";
const PUSHER: &str = "pusher-token-1";
const SCANNER: &str = "scanner-token-1";

/// A running `crscan serve` with one token per role, killed on drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, store: Option<&str>) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join("serve.log");
        let mut command = Command::new(CRSCAN);
        command.arg("serve").arg("--data-dir").arg(data_dir);
        if let Some(url) = store {
            command.args(["--store", url]);
        }
        command
            .args(["--workers", "0"])
            .env(
                "CRSCAN_TOKENS",
                format!("{ADMIN}:admin,{VIEWER}:viewer,{PUSHER}:pusher,{SCANNER}:scanner"),
            )
            .env_remove("CRSCAN_CONFIG")
            .env_remove("CRSCAN_DB")
            .env_remove("CRSCAN_STORE")
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, port) = common::spawn_serve(command);
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Calls the API with curl; returns the status, the response headers (lower-case
    /// names) and the body as JSON (Null when it is not JSON).
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, Value) {
        let dir = tempfile::tempdir().unwrap();
        let head = dir.path().join("head");
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-g", "-X", method, "-D"])
            .arg(&head)
            .arg(format!("{}{}", self.url, path));
        if let Some(token) = token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        for (name, value) in headers {
            command.args(["-H", &format!("{name}: {value}")]);
        }
        if let Some(body) = body {
            let file = dir.path().join("body");
            std::fs::write(&file, body).unwrap();
            command
                .args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", file.display()));
        }
        let output = command.output().unwrap();
        let head = std::fs::read_to_string(&head).unwrap_or_default();
        // The last response's head (curl also writes interim ones: `100 Continue`).
        let last = head.rfind("HTTP/").unwrap_or(0);
        let mut lines = head[last..].lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let body = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (status, headers, body)
    }

    fn json(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|body| body.to_string().into_bytes());
        let (status, _, answer) = self.call(method, path, Some(token), &[], bytes.as_deref());
        (status, answer)
    }

    /// Pushes a one-layer image to `<registry>/<name>:latest` over `/v2/`, as the
    /// pusher; `seed` makes its blobs its own.
    fn push(&self, registry: &str, name: &str, seed: &str) {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let upload = |bytes: &[u8]| -> (String, usize) {
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
            let file = dir.path().join("blob");
            std::fs::write(&file, bytes).unwrap();
            let status = common::run(Command::new("curl").args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                &format!("Authorization: Bearer {PUSHER}"),
                "--data-binary",
                &format!("@{}", file.display()),
                &format!(
                    "{}/v2/{registry}/{name}/blobs/uploads/?digest={digest}",
                    self.url
                ),
            ]));
            assert_eq!(status.trim(), "201", "blob upload to {name}");
            (digest, bytes.len())
        };
        let (layer, layer_size) = upload(format!("layer {seed}").as_bytes());
        let (config, config_size) = upload(
            json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer]}})
            .to_string()
            .as_bytes(),
        );
        let manifest = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer, "size": layer_size}]});
        let file = dir.path().join("manifest");
        std::fs::write(&file, manifest.to_string()).unwrap();
        let status = common::run(Command::new("curl").args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {PUSHER}"),
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{}/v2/{registry}/{name}/manifests/latest", self.url),
        ]));
        assert_eq!(status.trim(), "201", "manifest of {name}");
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

/// Asserts a `google.rpc.Status` answer: HTTP status, code, and a message containing
/// `needle`; returns the request id of its `RequestInfo` detail.
fn assert_status(answer: &(u16, Value), status: u16, code: i64, needle: &str) -> String {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {body}");
    assert_eq!(
        body["details"][0]["@type"], "type.googleapis.com/google.rpc.RequestInfo",
        "{body}"
    );
    body["details"][0]["requestId"].as_str().unwrap().to_owned()
}

#[test]
fn api_contract_on_sqlite() {
    if common::tools_present(&["curl"], false) {
        contract(None);
    }
}

#[test]
fn api_contract_on_postgres() {
    if common::tools_present(&["curl", "psql"], false)
        && let Some(postgres) = Postgres::create("contract")
    {
        contract(Some(&postgres.url));
    }
}

fn contract(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), store);
    let registries = server.json(
        "GET",
        "/container-registry/v1/registries?folderId=default",
        VIEWER,
        None,
    );
    assert_eq!(registries.0, 200, "{}", registries.1);
    let registry_id = registries.1["registries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Paths crscan does not serve answer a JSON Status, never a bare 404 or 405.
    assert_status(
        &server.json("GET", "/container-registry/v1/widgets", VIEWER, None),
        404,
        5,
        "widgets",
    );
    assert_status(
        &server.json(
            "GET",
            &format!("/container-registry/v1/registries/{registry_id}:frobnicate"),
            VIEWER,
            None,
        ),
        501,
        12,
        ":frobnicate",
    );
    assert_status(
        &server.json("PUT", "/container-registry/v1/images", ADMIN, None),
        501,
        12,
        "PUT",
    );
    assert_status(
        &server.json(
            "GET",
            "/operations/crq0000000000000000:rewind",
            VIEWER,
            None,
        ),
        501,
        12,
        ":rewind",
    );
    assert_status(
        &server.json("DELETE", "/operations/crq0000000000000000", ADMIN, None),
        501,
        12,
        "DELETE",
    );

    // No token: 401 with the bearer challenge; the OpenAPI document declares it.
    let (status, headers, body) = server.call(
        "GET",
        "/container-registry/v1/registries?folderId=default",
        None,
        &[],
        None,
    );
    assert_eq!((status, body["code"].as_i64()), (401, Some(16)), "{body}");
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "www-authenticate" && value.starts_with("Bearer")),
        "{headers:?}"
    );
    let (_, _, openapi) = server.call("GET", "/openapi.json", None, &[], None);
    assert_eq!(
        openapi["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Cancel changes state: the scanner or admin role, on GET and POST alike.
    let created = server.json(
        "POST",
        "/container-registry/v1/repositories",
        PUSHER,
        Some(json!({"name": format!("{registry_id}/app")})),
    );
    assert_eq!(created.0, 200, "{}", created.1);
    let operation = created.1["id"].as_str().unwrap().to_owned();
    for token in [VIEWER, PUSHER] {
        for method in ["GET", "POST"] {
            assert_status(
                &server.json(
                    method,
                    &format!("/operations/{operation}:cancel"),
                    token,
                    None,
                ),
                403,
                7,
                "role",
            );
        }
    }
    for token in [SCANNER, ADMIN] {
        let (status, cancelled) = server.json(
            "POST",
            &format!("/operations/{operation}:cancel"),
            token,
            None,
        );
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["id"], operation.as_str());
    }

    // An Idempotency-Key belongs to one method and one caller.
    let upsert = |token: &str, key: &str, name: &str| {
        let (status, _, answer) = server.call(
            "POST",
            "/container-registry/v1/repositories",
            Some(token),
            &[("Idempotency-Key", key)],
            Some(
                json!({"name": format!("{registry_id}/{name}")})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(status, 200, "{answer}");
        answer["id"].as_str().unwrap().to_owned()
    };
    let first = upsert(PUSHER, "key-1", "one");
    assert_eq!(upsert(PUSHER, "key-1", "one"), first, "a retry replays");
    assert_ne!(upsert(ADMIN, "key-1", "two"), first, "another caller's key");
    let (status, _, deleted) = server.call(
        "DELETE",
        &format!(
            "/container-registry/v1/repositories/{}",
            created.1["response"]["id"].as_str().unwrap()
        ),
        Some(PUSHER),
        &[("Idempotency-Key", "key-1")],
        None,
    );
    assert_eq!(status, 200, "{deleted}");
    assert_ne!(deleted["id"], first.as_str(), "another method's key");
    assert_eq!(
        deleted["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.DeleteRepositoryMetadata"
    );

    // The request id of an error is the one the access log wrote for that request.
    let request_id = assert_status(
        &server.json(
            "GET",
            "/container-registry/v1/images/crpunknown0000000000",
            VIEWER,
            None,
        ),
        404,
        5,
        "crpunknown0000000000",
    );
    let log = server.log_text();
    let line = log
        .lines()
        .find(|line| line.contains(&request_id))
        .unwrap_or_else(|| panic!("no access-log line for {request_id} in\n{log}"));
    assert!(
        line.contains("/container-registry/v1/images/crpunknown0000000000")
            && line.contains("404")
            && line.contains("GET"),
        "{line}"
    );

    // Bodies: at most 1 MiB, and never read before the caller is known.
    let big = vec![b' '; 2 << 20];
    let (status, _, body) = server.call(
        "POST",
        "/container-registry/v1/registries",
        Some(ADMIN),
        &[],
        Some(&big),
    );
    assert_eq!((status, body["code"].as_i64()), (413, Some(8)), "{body}");
    let (status, _, body) = server.call(
        "POST",
        "/container-registry/v1/registries",
        None,
        &[],
        Some(&big),
    );
    assert_eq!((status, body["code"].as_i64()), (401, Some(16)), "{body}");

    // The hosted service's limits.
    let labels: serde_json::Map<String, Value> = (0..65)
        .map(|index| (format!("k{index}"), json!("v")))
        .collect();
    assert_status(
        &server.json(
            "PATCH",
            &format!("/container-registry/v1/registries/{registry_id}"),
            ADMIN,
            Some(json!({"updateMask": "labels", "labels": labels})),
        ),
        400,
        3,
        "more than 64",
    );
    for (labels, needle) in [
        (json!({"Env": "x"}), "label key \"Env\""),
        (json!({"env": "x".repeat(64)}), "value of label \"env\""),
        (json!({"env": "a b"}), "value of label \"env\""),
    ] {
        assert_status(
            &server.json(
                "PATCH",
                &format!("/container-registry/v1/registries/{registry_id}"),
                ADMIN,
                Some(json!({"updateMask": "labels", "labels": labels})),
            ),
            400,
            3,
            needle,
        );
    }
    assert_status(
        &server.json(
            "PATCH",
            &format!("/container-registry/v1/registries/{registry_id}"),
            ADMIN,
            Some(json!({"updateMask": "name", "name": "Not_A_Name"})),
        ),
        400,
        3,
        "Not_A_Name",
    );
    assert_status(
        &server.json(
            "POST",
            "/container-registry/v1/scanPolicies",
            ADMIN,
            Some(json!({"registryId": registry_id, "description": "d".repeat(257)})),
        ),
        400,
        3,
        "description",
    );
    assert_status(
        &server.json(
            "POST",
            "/container-registry/v1/scanPolicies",
            ADMIN,
            Some(
                json!({"registryId": registry_id, "rules": {"scheduleRules": [
                {"repositoryPrefixes": ["*"], "rescanPeriod": "1s"}]}}),
            ),
        ),
        400,
        3,
        "rules.scheduleRules[0].rescanPeriod",
    );
    assert_status(
        &server.json(
            "GET",
            "/container-registry/v1/images?folderId=default&pageSize=1001",
            VIEWER,
            None,
        ),
        400,
        3,
        "pageSize",
    );
    let (status, policy) = server.json(
        "POST",
        "/container-registry/v1/scanPolicies",
        ADMIN,
        Some(
            json!({"registryId": registry_id, "rules": {"scheduleRules": [
            {"repositoryPrefixes": ["*"], "rescanPeriod": "86400s"}]}}),
        ),
    );
    assert_eq!(status, 200, "{policy}");
    assert_eq!(
        policy["response"]["rules"]["scheduleRules"][0]["rescanPeriod"],
        "86400s"
    );

    // Page tokens are opaque, and a page stays put when a row is inserted before it.
    // A repository named `one` exists already.
    for name in ["pages/b", "pages/c", "pages/d"] {
        server.push(&registry_id, name, name);
    }
    let repositories = |token: &str| {
        let (status, page) = server.json(
            "GET",
            &format!(
                "/container-registry/v1/repositories?registryId={registry_id}&pageSize=2&pageToken={token}"
            ),
            VIEWER,
            None,
        );
        assert_eq!(status, 200, "{page}");
        let names: Vec<String> = page["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|repository| repository["name"].as_str().unwrap().to_owned())
            .collect();
        let token = page["nextPageToken"].as_str().unwrap_or("").to_owned();
        (names, token)
    };
    let (first, token) = repositories("");
    assert_eq!(
        first,
        [
            format!("{registry_id}/one"),
            format!("{registry_id}/pages/b")
        ]
    );
    assert!(!token.is_empty());
    assert!(
        token.parse::<u64>().is_err() && !token.contains(&registry_id),
        "page token {token:?} is not opaque"
    );
    server.push(&registry_id, "pages/a", "pages/a");
    let (second, token) = repositories(&token);
    assert_eq!(
        second,
        [
            format!("{registry_id}/pages/c"),
            format!("{registry_id}/pages/d")
        ]
    );
    // Later pages hold the repositories named after `pages/`, none again.
    let mut token = token;
    while !token.is_empty() {
        let (names, next) = repositories(&token);
        assert!(
            names.iter().all(|name| !name.contains("/pages/")),
            "{names:?}"
        );
        token = next;
    }
    assert_status(
        &server.json(
            "GET",
            &format!("/container-registry/v1/repositories?registryId={registry_id}&pageToken=1"),
            VIEWER,
            None,
        ),
        400,
        3,
        "pageToken",
    );

    // One registry per folder, as in the hosted service, naming the one there is.
    assert_status(
        &server.json(
            "POST",
            "/container-registry/v1/registries",
            ADMIN,
            Some(json!({"folderId": "default", "name": "another"})),
        ),
        409,
        6,
        &registry_id,
    );
}
