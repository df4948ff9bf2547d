//! The scanner service end to end, as a CI job uses it: a real `crscan serve`
//! process with a database built by `crscan db build --from` from the shared feeds,
//! an image with vulnerable packages pushed with `skopeo`, and `curl` for every call.
//! The CI script in README.md ("CI example") is extracted and run as it is.
//!
//! Skips with a message when `skopeo`, `curl` or `jq` is missing, unless
//! `CRSCAN_REQUIRE_TOOLS=1`, which makes a missing tool a failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::images::{write_image, write_image_with_filler};
use common::postgres::Postgres;
use common::server::{
    SLOW_SCAN_FILLER_FILES, Server, image_id, push, ready_results, request_scan, scan_lines,
    wait_for_results, wait_until_started,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");

fn tools_present() -> bool {
    common::tools_present(&["skopeo", "curl", "jq"], false)
}

fn build_database(data_dir: &Path) {
    build_database_from(
        data_dir,
        &[
            "alpine-secdb/v3.4/main.yaml",
            "pypa-advisory-database/vulns/jinja2",
            "github-advisory-database-subset",
        ],
    );
}

/// Builds the server's database from feeds under `shared/data/vulndb`, replacing the
/// file atomically as `crscan db build` does while a server runs.
fn build_database_from(data_dir: &Path, feeds: &[&str]) {
    let db = data_dir.join("vulndb/crscan.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut command = Command::new(CRSCAN);
    command.args(["db", "build"]);
    for feed in feeds {
        command.arg("--from").arg(format!("{DATA}/vulndb/{feed}"));
    }
    let output = command.arg("--db").arg(&db).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the test image under `dir/image` and pushes it as `default/app:1.0`;
/// returns the image id.
fn push_test_image(server: &Server, dir: &Path) -> String {
    let layout = dir.join("image");
    write_image(&layout, "1.0");
    let digest = push(server, &layout, "1.0", "default/app:1.0");
    image_id(server, &digest, "app")
}

/// The bash block under "## CI example" in the README.
fn readme_ci_script() -> String {
    let readme = std::fs::read_to_string(README).unwrap();
    let section = readme
        .split("## CI example")
        .nth(1)
        .expect("README has a CI example");
    let start = section
        .find("```bash\n")
        .expect("CI example has a bash block")
        + 8;
    let end = section[start..].find("```").unwrap() + start;
    section[start..end].to_owned()
}

/// One scenario as two tests: on SQLite, and on PostgreSQL when
/// `CRSCAN_TEST_POSTGRES_URL` is set (a fresh database each run).
macro_rules! on_both_stores {
    ($sqlite:ident, $postgres:ident, $scenario:ident) => {
        #[test]
        fn $sqlite() {
            if tools_present() {
                $scenario(None);
            }
        }

        #[test]
        fn $postgres() {
            if tools_present()
                && let Some(postgres) = Postgres::create("e2e")
            {
                $scenario(Some(&postgres.url));
            }
        }
    };
}

on_both_stores!(
    scan_poll_list_and_gate_like_a_ci_job,
    scan_poll_list_and_gate_like_a_ci_job_on_postgres,
    scan_poll_list_and_gate
);

fn scan_poll_list_and_gate(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database(&data_dir);
    let server = Server::start(&data_dir, 2, store);
    let image = push_test_image(&server, dir.path());

    // Scan: a running Operation with ScanMetadata; the same Idempotency-Key gives the
    // same Operation.
    let key = [("Idempotency-Key", "0b5c8c6e-3f0e-4a55-9d0e-2f1f7c1b9a01")];
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &key,
    );
    assert_eq!(status, 200, "{operation}");
    let operation_id = operation["id"].as_str().unwrap().to_owned();
    assert_eq!(operation_id.len(), 20);
    assert!(operation_id.starts_with("crq"));
    assert_eq!(operation["description"], "Scan image");
    assert!(operation["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(operation["modifiedAt"].is_string());
    assert!(operation["createdBy"].is_string());
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata"
    );
    let scan_id = operation["metadata"]["scanResultId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(scan_id.starts_with("che") && scan_id.len() == 20);
    let (_, again) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &key,
    );
    assert_eq!(again["id"], operation_id);

    // Poll the Operation until done: the response is the READY ScanResult.
    let done = server.wait(&operation_id);
    assert!(done.get("error").is_none(), "{done}");
    let response = &done["response"];
    assert_eq!(
        response["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult"
    );
    assert_eq!(response["id"], scan_id);
    assert_eq!(response["imageId"], image);
    assert_eq!(response["status"], "READY");
    assert!(response["scannedAt"].as_str().unwrap().ends_with('Z'));
    let counters = &response["vulnerabilities"];
    for name in [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ] {
        let text = counters[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} missing: {counters}"));
        text.parse::<u64>().unwrap();
    }
    let count = |name: &str| counters[name].as_str().unwrap().parse::<u64>().unwrap();
    // minimist 1.2.5: CVE-2021-44906 (CRITICAL); lodash 4.17.15: HIGH and MEDIUM;
    // musl, busybox, openssl and jinja2 findings carry no rating (UNDEFINED).
    assert!(count("critical") >= 1, "{counters}");
    assert!(count("high") >= 1, "{counters}");
    assert!(count("undefined") >= 3, "{counters}");
    let total: u64 = [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ]
    .iter()
    .map(|n| count(n))
    .sum();

    // Get, GetLast, List.
    let result = server.get(&format!("/container-registry/v1/scans/{scan_id}"));
    let mut without_type = response.clone();
    without_type.as_object_mut().unwrap().remove("@type");
    assert_eq!(result, without_type);
    assert_eq!(
        server.get(&format!(
            "/container-registry/v1/images/{image}:lastScanResult"
        )),
        result
    );
    let listed = server.get(&format!(
        "/container-registry/v1/scans?imageId={image}&filter=status%3D%22READY%22"
    ));
    assert_eq!(listed["scanResults"].as_array().unwrap().len(), 1);
    assert_eq!(listed["scanResults"][0], result);
    let none = server.get(&format!(
        "/container-registry/v1/scans?imageId={image}&filter=status%3D%22ERROR%22"
    ));
    assert!(none["scanResults"].as_array().unwrap().is_empty());
    let repositories = server.get("/container-registry/v1/images?folderId=default");
    let repository_name = repositories["images"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let registry_id = repository_name.split('/').next().unwrap().to_owned();
    let repos = server.get(&format!(
        "/container-registry/v1/repositories?registryId={registry_id}"
    ));
    let repository_id = repos["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|repo| repo["name"] == repository_name.as_str())
        .map(|repo| repo["id"].as_str().unwrap().to_owned())
        .unwrap();
    let by_repo = server.get(&format!(
        "/container-registry/v1/scans?repositoryId={repository_id}&orderBy=status"
    ));
    assert_eq!(by_repo["scanResults"][0]["id"], scan_id.as_str());

    // ListVulnerabilities, two at a time, in the default order (CRITICAL first).
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = server.get(&format!(
            "/container-registry/v1/scans/{scan_id}:listVulnerabilities?pageSize=2&pageToken={token}"
        ));
        let items = page["vulnerabilities"].as_array().unwrap();
        assert!(items.len() <= 2);
        all.extend(items.iter().cloned());
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
        assert!(token.len() <= 100);
    }
    assert_eq!(all.len() as u64, total);
    let rank = |severity: &Value| {
        [
            "CRITICAL",
            "HIGH",
            "MEDIUM",
            "LOW",
            "NEGLIGIBLE",
            "UNDEFINED",
        ]
        .iter()
        .position(|name| severity == *name)
        .unwrap()
    };
    assert!(
        all.windows(2)
            .all(|pair| rank(&pair[0]["severity"]) <= rank(&pair[1]["severity"]))
    );
    for vulnerability in &all {
        let package = &vulnerability["package"];
        for field in [
            "name", "link", "package", "source", "version", "fixedBy", "origin", "type",
        ] {
            assert!(
                package[field].is_string(),
                "{field} missing in {vulnerability}"
            );
        }
    }
    let minimist = all
        .iter()
        .find(|v| v["package"]["name"] == "CVE-2021-44906")
        .unwrap();
    assert_eq!(minimist["severity"], "CRITICAL");
    assert_eq!(minimist["package"]["package"], "minimist");
    assert_eq!(minimist["package"]["version"], "1.2.5");
    assert_eq!(minimist["package"]["origin"], "lang");
    assert_eq!(minimist["package"]["source"], "npm");
    assert_eq!(minimist["package"]["type"], "npm");
    let musl = all
        .iter()
        .find(|v| v["package"]["name"] == "CVE-2016-8859")
        .unwrap();
    assert_eq!(musl["package"]["package"], "musl");
    assert_eq!(musl["package"]["fixedBy"], "1.1.14-r13");
    assert_eq!(musl["package"]["origin"], "os");
    assert_eq!(musl["package"]["type"], "alpine");
    assert_eq!(musl["package"]["source"], "apk");
    let desc = server.get(&format!("/container-registry/v1/scans/{scan_id}:listVulnerabilities?orderBy=severity%20desc&pageSize=1"));
    assert_eq!(desc["vulnerabilities"][0]["severity"], "UNDEFINED");
    let high = server.get(&format!(
        "/container-registry/v1/scans/{scan_id}:listVulnerabilities?filter=severity%3D%22HIGH%22"
    ));
    let high = high["vulnerabilities"].as_array().unwrap();
    assert_eq!(high.len() as u64, count("high"));
    assert!(high.iter().all(|v| v["severity"] == "HIGH"));
    let named = server.get(&format!(
        "/container-registry/v1/scans/{scan_id}:listVulnerabilities?filter=name%3D%22CVE-2019-10906%22%20AND%20severity%3D%22UNDEFINED%22"
    ));
    let named = named["vulnerabilities"].as_array().unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["package"]["package"], "jinja2");
    assert_eq!(named[0]["package"]["fixedBy"], "2.10.1");

    // Bad requests name the field.
    let long = "c".repeat(51);
    let cases: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        (
            "POST",
            "/container-registry/v1/scans".into(),
            Some(json!({})),
            400,
            "imageId",
        ),
        (
            "POST",
            "/container-registry/v1/scans".into(),
            Some(json!({"imageId": long})),
            400,
            "imageId",
        ),
        (
            "POST",
            "/container-registry/v1/scans".into(),
            Some(json!({"imageId": "crpunknown0000000000"})),
            404,
            "crpunknown0000000000",
        ),
        (
            "GET",
            "/container-registry/v1/scans/cheunknown0000000000".into(),
            None,
            404,
            "cheunknown0000000000",
        ),
        (
            "GET",
            format!("/container-registry/v1/scans?imageId={image}&repositoryId={repository_id}"),
            None,
            400,
            "repositoryId",
        ),
        (
            "GET",
            "/container-registry/v1/scans".into(),
            None,
            400,
            "imageId",
        ),
        (
            "GET",
            format!("/container-registry/v1/scans?imageId={image}&pageSize=1001"),
            None,
            400,
            "pageSize",
        ),
        (
            "GET",
            format!("/container-registry/v1/scans?imageId={image}&filter=color%3D%22red%22"),
            None,
            400,
            "color",
        ),
        (
            "GET",
            format!(
                "/container-registry/v1/scans/{scan_id}:listVulnerabilities?filter=package%3D%22musl%22"
            ),
            None,
            400,
            "package",
        ),
        (
            "GET",
            format!("/container-registry/v1/scans/{scan_id}:listVulnerabilities?pageToken=garbage"),
            None,
            400,
            "pageToken",
        ),
        (
            "GET",
            format!("/container-registry/v1/images/{long}:lastScanResult"),
            None,
            400,
            "imageId",
        ),
        (
            "GET",
            "/operations/crqunknown0000000000".into(),
            None,
            404,
            "crqunknown0000000000",
        ),
    ];
    for (method, path, body, expected, field) in cases {
        let (status, error) = server.call(method, &path, body.as_ref(), &[]);
        assert_eq!(status, expected, "{method} {path}: {error}");
        let code = error["code"].as_i64().unwrap();
        assert_eq!(code, if expected == 404 { 5 } else { 3 }, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{method} {path}: {error}"
        );
    }

    // The README's CI script, run as it is: it fails the job on CRITICAL findings.
    let script = readme_ci_script();
    let second = dir.path().join("image2");
    write_image(&second, "2.0");
    let run_script = |url: &str, token: Option<&str>| {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(&script)
            // The script writes digest.txt where it runs, as a CI job does.
            .current_dir(dir.path())
            .env("CRSCAN_URL", url)
            .env("SOURCE_IMAGE", format!("oci:{}:2.0", second.display()))
            .env("TARGET", "default/app:2.0")
            .env_remove("CRSCAN_TOKEN");
        if let Some(token) = token {
            command.env("CRSCAN_TOKEN", token);
        }
        command.output().unwrap()
    };
    let output = run_script(&server.url, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains(&format!("{} CRITICAL", count("critical"))),
        "stdout: {stdout}\nstderr: {stderr}"
    );

    // The OpenAPI document covers the scanner's calls.
    let openapi = server.get("/openapi.json");
    for path in [
        "/container-registry/v1/scans",
        "/container-registry/v1/scans/{scanResultId}",
        "/container-registry/v1/scans/{scanResultId}:listVulnerabilities",
        "/container-registry/v1/images/{imageId}:lastScanResult",
        "/container-registry/v1/scanPolicies",
        "/container-registry/v1/scanPolicies/{scanPolicyId}",
        "/container-registry/v1/scanPolicies/{registryId}:byRegistry",
        "/operations/{operationId}:cancel",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    server.stop();

    // The same script against a server with tokens: the token reaches skopeo too.
    // (Once, on SQLite: it is the script under test, not the store.)
    if store.is_some() {
        return;
    }
    build_database(&dir.path().join("secured"));
    let config = dir.path().join("tokens.toml");
    std::fs::write(
        &config,
        "[[tokens]]\ntoken = \"ci-secret-1\"\nroles = [\"pusher\", \"scanner\"]\n",
    )
    .unwrap();
    let secured = Server::start_with(&dir.path().join("secured"), 1, None, Some(&config));
    let output = run_script(&secured.url, Some("ci-secret-1"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)) && stdout.contains("CRITICAL"),
        "with a token: stdout: {stdout}\nstderr: {stderr}"
    );
    let refused = run_script(&secured.url, None);
    assert_ne!(
        refused.status.code(),
        Some(0),
        "without a token the push is refused"
    );
}

on_both_stores!(
    queued_scans_survive_a_restart_and_cancel_and_policies_work,
    queued_scans_survive_a_restart_and_cancel_and_policies_work_on_postgres,
    restart_cancel_and_policies
);

fn restart_cancel_and_policies(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database(&data_dir);
    // A node without workers takes the calls; the scans wait in the queue.
    let api_only = Server::start(&data_dir, 0, store);
    let image = push_test_image(&api_only, dir.path());
    let layout = dir.path().join("image");
    push(&api_only, &layout, "1.0", "default/cancelled:1.0");
    let images = api_only.get("/container-registry/v1/images?folderId=default");
    let cancelled_image = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["name"].as_str().unwrap().ends_with("/cancelled"))
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .unwrap();
    let scan = |server: &Server, image: &str| {
        let (status, operation) = server.call(
            "POST",
            "/container-registry/v1/scans",
            Some(&json!({"imageId": image})),
            &[],
        );
        assert_eq!(status, 200, "{operation}");
        operation["id"].as_str().unwrap().to_owned()
    };
    let kept = scan(&api_only, &image);
    let cancelled = scan(&api_only, &cancelled_image);
    let (status, cancel) = api_only.call(
        "POST",
        &format!("/operations/{cancelled}:cancel"),
        None,
        &[],
    );
    assert_eq!(status, 200, "{cancel}");
    assert_eq!(cancel["done"], false);
    let (status, _) = api_only.call("GET", &format!("/operations/{cancelled}:cancel"), None, &[]);
    assert_eq!(status, 200);
    api_only.stop();

    // Killed and started again with workers: the queued scan runs once, the
    // cancelled one ends in CANCELLED.
    let server = Server::start(&data_dir, 2, store);
    let done = server.wait(&kept);
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let stopped = server.wait(&cancelled);
    assert_eq!(stopped["error"]["code"], 1, "{stopped}");
    assert!(stopped.get("response").is_none());
    let scan_id = stopped["metadata"]["scanResultId"].as_str().unwrap();
    let result = server.get(&format!("/container-registry/v1/scans/{scan_id}"));
    assert_eq!(result["status"], "ERROR");
    assert_eq!(result["imageId"], cancelled_image.as_str());
    assert!(result["scannedAt"].is_string());
    let last = server.get(&format!(
        "/container-registry/v1/images/{cancelled_image}:lastScanResult"
    ));
    assert_eq!(last["status"], "ERROR");
    let results = server.get(&format!("/container-registry/v1/scans?imageId={image}"));
    assert_eq!(results["scanResults"].as_array().unwrap().len(), 1);
    assert_eq!(results["scanResults"][0]["status"], "READY");

    // A push rule scans new images by itself.
    let images = server.get("/container-registry/v1/images?folderId=default");
    let registry_id = images["images"][0]["name"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let policy = json!({"registryId": registry_id, "name": "on-push", "description": "scan every push",
        "rules": {"pushRule": {"repositoryPrefixes": ["*"]},
                  "scheduleRules": [{"repositoryPrefixes": ["app"], "rescanPeriod": "604800s"}]}});
    let (status, created) = server.call(
        "POST",
        "/container-registry/v1/scanPolicies",
        Some(&policy),
        &[],
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["done"], true);
    let policy_id = created["response"]["id"].as_str().unwrap().to_owned();
    assert!(policy_id.starts_with("crs"));
    let (status, duplicate) = server.call(
        "POST",
        "/container-registry/v1/scanPolicies",
        Some(&policy),
        &[],
    );
    assert_eq!(
        (status, duplicate["code"].as_i64()),
        (409, Some(6)),
        "{duplicate}"
    );
    assert_eq!(
        server.get(&format!(
            "/container-registry/v1/scanPolicies/{registry_id}:byRegistry"
        ))["id"],
        policy_id.as_str()
    );
    let (status, updated) = server.call(
        "PATCH",
        &format!("/container-registry/v1/scanPolicies/{policy_id}"),
        Some(
            &json!({"updateMask": "description", "description": "changed", "name": "ignored-name"}),
        ),
        &[],
    );
    assert_eq!(status, 200, "{updated}");
    let fetched = server.get(&format!("/container-registry/v1/scanPolicies/{policy_id}"));
    assert_eq!(fetched["description"], "changed");
    assert_eq!(fetched["name"], "on-push");

    let other = dir.path().join("other");
    write_image(&other, "3.0");
    // The same manifest in another repository is another image, never scanned.
    let pushed = push(&server, &other, "3.0", "default/other/service:3.0");
    let other_image = image_id(&server, &pushed, "other/service");
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let (status, last) = server.call(
            "GET",
            &format!("/container-registry/v1/images/{other_image}:lastScanResult"),
            None,
            &[],
        );
        if status == 200 {
            break last;
        }
        assert!(
            Instant::now() < deadline,
            "the push rule never scanned {other_image}: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(last["status"], "READY", "{last}: {}", server.log_text());
    let (status, _) = server.call(
        "DELETE",
        &format!("/container-registry/v1/scanPolicies/{policy_id}"),
        None,
        &[],
    );
    assert_eq!(status, 200);
    let (status, _) = server.call(
        "GET",
        &format!("/container-registry/v1/scanPolicies/{policy_id}"),
        None,
        &[],
    );
    assert_eq!(status, 404);
    server.stop();
}

on_both_stores!(
    a_scan_killed_mid_run_finishes_once_after_restart,
    a_scan_killed_mid_run_finishes_once_after_restart_on_postgres,
    killed_mid_scan
);

fn killed_mid_scan(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database(&data_dir);
    // A short lease: a dead worker's job is taken again 5 s after its last renewal.
    // Renewals come every second, so a live worker keeps it even on a loaded machine.
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "scan_lease_seconds = 5\n").unwrap();
    let first = Server::start_with(&data_dir, 2, store, Some(&config));
    let layout = dir.path().join("big");
    write_image_with_filler(&layout, "1.0", SLOW_SCAN_FILLER_FILES);
    let digest = push(&first, &layout, "1.0", "default/big:1.0");
    let image = image_id(&first, &digest, "big");
    let (operation_id, scan_id) = request_scan(&first, &image);

    // Once a worker has started the scan, the server dies: SIGKILL, no graceful stop.
    wait_until_started(&first, &scan_id);
    let killed_at = Instant::now();
    let first_log = first.log.clone();
    first.stop();
    let first_log = std::fs::read_to_string(first_log).unwrap();
    let finished = scan_lines(&first_log, "scan finished", &scan_id);
    assert!(
        finished.is_empty(),
        "the scan of {scan_id} finished before the server was killed, so no scan was \
         interrupted: make SLOW_SCAN_FILLER_FILES larger\n{first_log}"
    );
    let started = scan_lines(&first_log, "scan started", &scan_id);
    assert_eq!(started.len(), 1, "{first_log}");
    assert!(started[0].contains("attempt=1"), "{first_log}");
    for message in ["scan ended in error", "scan failed", "lost the lease"] {
        assert!(
            scan_lines(&first_log, message, &scan_id).is_empty(),
            "{message}: {first_log}"
        );
    }

    // What the store holds after the kill, seen through a node without workers,
    // which never takes the job: the operation and the scan are still running.
    let api_only = Server::start_with(&data_dir, 0, store, Some(&config));
    let pending = api_only.get(&format!("/operations/{operation_id}"));
    assert_eq!(pending["done"], false, "{pending}");
    assert!(pending.get("response").is_none(), "{pending}");
    assert!(pending.get("error").is_none(), "{pending}");
    let running = api_only.get(&format!("/container-registry/v1/scans/{scan_id}"));
    assert_eq!(running["status"], "RUNNING", "{running}");
    let api_log = api_only.log.clone();
    api_only.stop();
    let api_log = std::fs::read_to_string(api_log).unwrap();
    assert!(
        !api_log.contains("scan started"),
        "a node without workers started a scan: {api_log}"
    );

    // Started again with two workers and the same store: the lease runs out, one
    // worker takes the job again and finishes it.
    let second = Server::start_with(&data_dir, 2, store, Some(&config));
    let done = second.wait(&operation_id);
    let restarted_to_done = killed_at.elapsed();
    assert!(done.get("error").is_none(), "{done}");
    let response = &done["response"];
    assert_eq!(
        response["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult"
    );
    assert_eq!(response["id"], scan_id.as_str());
    assert_eq!(response["imageId"], image.as_str());
    assert_eq!(response["status"], "READY", "{done}");
    assert!(response["scannedAt"].as_str().unwrap().ends_with('Z'));
    let result = second.get(&format!("/container-registry/v1/scans/{scan_id}"));
    let mut without_type = response.clone();
    without_type.as_object_mut().unwrap().remove("@type");
    assert_eq!(result, without_type);
    let results = second.get(&format!("/container-registry/v1/scans?imageId={image}"));
    assert_eq!(
        results["scanResults"].as_array().unwrap().len(),
        1,
        "{results}"
    );
    let counters = &response["vulnerabilities"];
    let count = |name: &str| counters[name].as_str().unwrap().parse::<u64>().unwrap();
    assert!(count("critical") >= 1, "{counters}");
    assert!(count("high") >= 1, "{counters}");
    assert!(count("undefined") >= 3, "{counters}");

    // The same packages without the filler layer, scanned without a kill, give the
    // same findings.
    let plain = dir.path().join("plain");
    write_image(&plain, "1.0");
    let plain_digest = push(&second, &plain, "1.0", "default/plain:1.0");
    let plain_image = image_id(&second, &plain_digest, "plain");
    let (status, operation) = second.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": plain_image})),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    let reference = second.wait(operation["id"].as_str().unwrap());
    assert_eq!(reference["response"]["status"], "READY", "{reference}");
    assert_eq!(
        reference["response"]["vulnerabilities"], *counters,
        "{reference}"
    );
    let reference_id = reference["response"]["id"].as_str().unwrap();
    let findings = |id: &str| {
        second.get(&format!(
            "/container-registry/v1/scans/{id}:listVulnerabilities?pageSize=1000"
        ))["vulnerabilities"]
            .clone()
    };
    assert_eq!(findings(&scan_id), findings(reference_id));

    // The restarted node started the scan once, as its second attempt: its two
    // workers did not both take it. It finished once.
    let log = second.log_text();
    let started = scan_lines(&log, "scan started", &scan_id);
    assert_eq!(started.len(), 1, "started more than once: {log}");
    assert!(started[0].contains("attempt=2"), "{log}");
    let finished = scan_lines(&log, "scan finished", &scan_id);
    assert_eq!(finished.len(), 1, "{log}");
    for message in ["scan ended in error", "scan failed", "lost the lease"] {
        assert!(
            scan_lines(&log, message, &scan_id).is_empty(),
            "{message}: {log}"
        );
    }
    println!(
        "killed mid-scan: from the kill to done after the restart {restarted_to_done:?}; \
         the scan after the restart: {}",
        finished[0]
    );
    second.stop();
}

on_both_stores!(
    a_thousand_queued_scans_finish_once_each,
    a_thousand_queued_scans_finish_once_each_on_postgres,
    thousand_scans
);

/// Scans queued at once by `thousand_scans`.
const QUEUED_SCANS: usize = 1000;

/// Requests curl has in flight at once in [`Server::batch`].
const CURL_PARALLEL: usize = 16;

/// Operations `thousand_scans` asks about in one polling round: the oldest not yet
/// done. More than the workers finish between two rounds, so that a round is never
/// behind; a slower order of completion only makes more rounds.
const POLL_WINDOW: usize = 100;

/// The value of the `name=value` field `name` of a log line.
fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
}

impl Server {
    /// Makes `requests` (method, path, JSON body) with one curl process, at most
    /// [`CURL_PARALLEL`] at a time, each body written to its own file under `dir`;
    /// returns the HTTP status and the JSON body (or Null) of each, in order.
    fn batch(&self, dir: &Path, requests: &[(&str, String, Option<Value>)]) -> Vec<(u16, Value)> {
        std::fs::create_dir_all(dir).unwrap();
        let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
        let mut config = String::new();
        for (index, (method, path, body)) in requests.iter().enumerate() {
            if index > 0 {
                config.push_str("next\n");
            }
            config.push_str(&format!(
                "url = {}\n",
                quote(&format!("{}{path}", self.url))
            ));
            config.push_str(&format!("request = {}\n", quote(method)));
            if let Some(body) = body {
                config.push_str("header = \"Content-Type: application/json\"\n");
                config.push_str(&format!("data-binary = {}\n", quote(&body.to_string())));
            }
            let output = dir.join(format!("{index}.json"));
            config.push_str(&format!("output = {}\n", quote(output.to_str().unwrap())));
            config.push_str(&format!("write-out = \"{index} %{{http_code}}\\n\"\n"));
        }
        let config_path = dir.join("curl.config");
        std::fs::write(&config_path, config).unwrap();
        let output = Command::new("curl")
            .args(["-sS", "--parallel", "--parallel-max"])
            .arg(CURL_PARALLEL.to_string())
            .arg("-K")
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut statuses = vec![0u16; requests.len()];
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let (index, status) = line.split_once(' ').unwrap();
            statuses[index.parse::<usize>().unwrap()] = status.parse().unwrap();
        }
        statuses
            .into_iter()
            .enumerate()
            .map(|(index, status)| {
                let file = dir.join(format!("{index}.json"));
                let body = std::fs::read(&file).unwrap_or_default();
                let _ = std::fs::remove_file(&file);
                (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
            })
            .collect()
    }
}

/// Issue 6: a thousand scans queued at once, with two workers of a real server, all
/// finish, each once, none lost.
fn thousand_scans(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database(&data_dir);
    let server = Server::start(&data_dir, 2, store);
    let image = push_test_image(&server, dir.path());

    // One scan first: its counts are the reference, and the layer cache is warm.
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    let warm_up = server.wait(operation["id"].as_str().unwrap());
    assert_eq!(warm_up["response"]["status"], "READY", "{warm_up}");
    let warm_up_scan = warm_up["response"]["id"].as_str().unwrap().to_owned();
    let counters = warm_up["response"]["vulnerabilities"].clone();
    assert!(
        counters["critical"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1,
        "{counters}"
    );

    // A thousand scans of the same image, queued by one curl process.
    let started = Instant::now();
    let scan = (
        "POST",
        "/container-registry/v1/scans".to_owned(),
        Some(json!({"imageId": image})),
    );
    let queued = server.batch(&dir.path().join("queue"), &vec![scan; QUEUED_SCANS]);
    let queued_in = started.elapsed();
    let mut operations = Vec::with_capacity(QUEUED_SCANS);
    let mut scans = std::collections::HashSet::new();
    for (status, operation) in &queued {
        assert_eq!(*status, 200, "{operation}");
        assert_eq!(operation["done"], false, "{operation}");
        assert!(operation.get("response").is_none(), "{operation}");
        assert!(operation.get("error").is_none(), "{operation}");
        assert_eq!(operation["description"], "Scan image");
        assert_eq!(
            operation["metadata"]["@type"],
            "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata",
            "{operation}"
        );
        let scan_id = operation["metadata"]["scanResultId"].as_str().unwrap();
        assert!(scans.insert(scan_id.to_owned()), "scan {scan_id} twice");
        operations.push((
            operation["id"].as_str().unwrap().to_owned(),
            scan_id.to_owned(),
        ));
    }
    let distinct: std::collections::HashSet<&String> =
        operations.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), QUEUED_SCANS, "operation ids repeat");

    // Poll the operations not yet done, in the order they were queued, up to
    // POLL_WINDOW of them in one curl process a round: the workers are not slowed
    // down by a thousand GETs a round.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pending: Vec<usize> = (0..QUEUED_SCANS).collect();
    let mut done: Vec<Value> = vec![Value::Null; QUEUED_SCANS];
    let mut rounds = 0;
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} of {QUEUED_SCANS} scans never finished: {}",
            pending.len(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
        rounds += 1;
        let window = pending.len().min(POLL_WINDOW);
        let requests: Vec<(&str, String, Option<Value>)> = pending[..window]
            .iter()
            .map(|&index| ("GET", format!("/operations/{}", operations[index].0), None))
            .collect();
        let answers = server.batch(&dir.path().join("poll"), &requests);
        let mut still = Vec::new();
        for (&index, (status, operation)) in pending.iter().zip(answers) {
            assert_eq!(status, 200, "{operation}");
            if operation["done"] == true {
                done[index] = operation;
            } else {
                still.push(index);
            }
        }
        still.extend_from_slice(&pending[window..]);
        pending = still;
        // Retention holds at every moment, not only once the queue is empty: an
        // image never has more than 3 READY results.
        let results = server.get(&format!(
            "/container-registry/v1/scans?imageId={image}&filter=status%3D%22READY%22&pageSize=1000"
        ));
        let results = results["scanResults"].as_array().unwrap();
        assert!(
            results.len() <= 3,
            "retention broken while {} scans were pending: {} READY results kept: {results:?}",
            pending.len(),
            results.len()
        );
    }
    let elapsed = started.elapsed();

    // Every operation is done with its own READY result and the same counts.
    for ((operation_id, scan_id), operation) in operations.iter().zip(&done) {
        assert_eq!(operation["id"], operation_id.as_str());
        assert!(operation.get("error").is_none(), "{operation}");
        let response = &operation["response"];
        assert_eq!(response["status"], "READY", "{operation}");
        assert_eq!(response["id"], scan_id.as_str(), "{operation}");
        assert_eq!(response["imageId"], image.as_str(), "{operation}");
        assert_eq!(response["vulnerabilities"], counters, "{operation}");
    }

    // Each scan started once, as its first attempt, and finished once.
    let log = server.log_text();
    let mut expected = scans.clone();
    expected.insert(warm_up_scan);
    let lines = |message: &str| -> Vec<&str> {
        log.lines().filter(|line| line.contains(message)).collect()
    };
    let started_lines = lines("scan started");
    let finished_lines = lines("scan finished");
    assert_eq!(started_lines.len(), QUEUED_SCANS + 1, "{log}");
    assert_eq!(finished_lines.len(), QUEUED_SCANS + 1, "{log}");
    for (message, lines) in [("started", &started_lines), ("finished", &finished_lines)] {
        let ids: std::collections::HashSet<&str> = lines
            .iter()
            .map(|line| log_field(line, "scan.id").unwrap())
            .collect();
        assert_eq!(ids.len(), lines.len(), "a scan {message} twice: {log}");
        assert!(
            ids.iter().all(|id| expected.contains(*id)),
            "an unknown scan {message}: {log}"
        );
    }
    for line in &started_lines {
        assert_eq!(log_field(line, "attempt"), Some("1"), "{line}");
    }
    for message in [
        "lost the lease",
        "retrying",
        "panicked",
        "scan ended in error",
        "bookkeeping failed",
        "cannot claim",
        "cannot renew",
    ] {
        assert!(lines(message).is_empty(), "{message}: {log}");
    }

    // Retention: the image keeps its last 3 READY results.
    let results = server.get(&format!(
        "/container-registry/v1/scans?imageId={image}&pageSize=1000"
    ));
    let results = results["scanResults"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{results:?}");
    for result in results {
        assert_eq!(result["status"], "READY", "{result}");
        assert!(scans.contains(result["id"].as_str().unwrap()), "{result}");
    }

    let durations: Vec<u64> = finished_lines
        .iter()
        .filter_map(|line| log_field(line, "duration_ms")?.parse().ok())
        .collect();
    let mean = durations.iter().sum::<u64>() as f64 / durations.len().max(1) as f64;
    println!(
        "{QUEUED_SCANS} scans ({}): queued in {queued_in:?}, all done in {elapsed:?} \
         ({:.1} scans/s, {rounds} polling rounds); a scan took {mean:.1} ms on average \
         in a worker",
        if store.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        QUEUED_SCANS as f64 / elapsed.as_secs_f64(),
    );
    server.stop();
}

on_both_stores!(
    a_database_change_rescans_stored_images_from_the_layer_cache,
    a_database_change_rescans_stored_images_from_the_layer_cache_on_postgres,
    database_change
);

fn database_change(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // First only Alpine's advisories: the Jinja2 and npm findings are not known yet.
    let alpine_only = ["alpine-secdb/v3.4/main.yaml"];
    build_database_from(&data_dir, &alpine_only);
    let server = Server::start(&data_dir, 2, store);
    let image = push_test_image(&server, dir.path());
    let (status, operation) = server.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    let first = server.wait(operation["id"].as_str().unwrap())["response"].clone();
    assert_eq!(first["status"], "READY", "{first}");

    // The database is replaced while the server runs: the image is rescanned by itself,
    // from the layer cache, and the new result knows the new advisories.
    build_database(&data_dir);
    let second = wait_for_results(&server, &image, 2);
    assert_ne!(second["id"], first["id"]);
    let count = |result: &Value, severity: &str| {
        result["vulnerabilities"][severity]
            .as_str()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap()
    };
    let total = |result: &Value| {
        [
            "critical",
            "high",
            "medium",
            "low",
            "negligible",
            "undefined",
        ]
        .iter()
        .map(|severity| count(result, severity))
        .sum::<u64>()
    };
    assert!(total(&second) > total(&first), "{first} then {second}");
    let log = server.log_text();
    let second_id = second["id"].as_str().unwrap();
    let finished = scan_lines(&log, "scan finished", second_id);
    assert_eq!(finished.len(), 1, "{log}");
    assert!(finished[0].contains("layers_read=0"), "{}", finished[0]);
    server.stop();

    // Replaced while the server is down: the next start finds the image was matched
    // against another database and rescans it.
    build_database_from(&data_dir, &alpine_only);
    let restarted = Server::start(&data_dir, 2, store);
    let third = wait_for_results(&restarted, &image, 3);
    assert_eq!(
        third["vulnerabilities"], first["vulnerabilities"],
        "{third}"
    );
    assert!(
        restarted
            .log_text()
            .contains("matched against another vulnerability database"),
        "{}",
        restarted.log_text()
    );
    // One rescan per change, not one per scheduler pass (passes run every 5 s).
    std::thread::sleep(Duration::from_secs(6));
    let started = restarted
        .log_text()
        .lines()
        .filter(|line| line.contains("scan started"))
        .count();
    assert_eq!(started, 1, "{}", restarted.log_text());
    restarted.stop();
}

/// Two nodes on one PostgreSQL store and one data directory (the scale-out shape)
/// notice the same database change and queue one rescan of the image between them.
#[test]
fn two_nodes_rescan_an_image_once_after_a_database_change() {
    if !tools_present() {
        return;
    }
    let Some(postgres) = Postgres::create("e2e") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    build_database_from(&data_dir, &["alpine-secdb/v3.4/main.yaml"]);
    let first = Server::start(&data_dir, 2, Some(&postgres.url));
    let second = Server::start(&data_dir, 2, Some(&postgres.url));
    let image = push_test_image(&first, dir.path());
    let (status, operation) = first.call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image})),
        &[],
    );
    assert_eq!(status, 200, "{operation}");
    second.wait(operation["id"].as_str().unwrap());

    build_database(&data_dir);
    wait_for_results(&first, &image, 2);
    // Both schedulers have looked at the new file by now (they stat it every second);
    // a second rescan would have been queued by then.
    std::thread::sleep(Duration::from_secs(4));
    let rescans: usize = [&first, &second]
        .iter()
        .map(|server| {
            server
                .log_text()
                .lines()
                .filter(|line| line.contains("scan started"))
                .count()
        })
        .sum();
    assert_eq!(
        rescans,
        2,
        "one scan and one rescan between the nodes:\n{}\n{}",
        first.log_text(),
        second.log_text()
    );
    assert_eq!(ready_results(&second, &image).len(), 2);
    first.stop();
    second.stop();
}
