//! Lifecycle policies end to end (#13), on SQLite and (with `CRSCAN_TEST_POSTGRES_URL`)
//! PostgreSQL, against a real `crscan serve` with images pushed by `skopeo`:
//! - the issue's repository: tags v1..v5, two untagged images and `stable`; a policy
//!   {tagRegexp "v.*", retainedTop 2} + {untagged}; its dry run affects exactly v1, v2,
//!   v3 and the two untagged images and deletes nothing;
//! - an `expirePeriod` rule leaves young images alone on the scheduler's runs, and
//!   takes them at a "now" three days on (the debug-only run path);
//! - once ACTIVE, the scheduler (every second here) deletes exactly the dry run's
//!   images, logs each, and `crscan gc --delete` then removes their blobs;
//! - the same calls over gRPC with the official Python SDK's generated stubs, when
//!   they are installed (`scripts/install-grpc-clients.sh`);
//! - on PostgreSQL, two nodes sharing the store: each run's slot runs on one node.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::server::{Server, push_from};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// An image of one layer holding a file named after `name`: each image's manifest,
/// config and layer are its own.
fn image_source(work: &Path, name: &str) -> String {
    let root = work.join(format!("{name}-root"));
    common::images::write(&root, "etc/image-name", name);
    common::images::oci_layout(&work.join(format!("{name}-oci")), &[&root]).0
}

fn now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The images of a repository (by full name), as (digest, tags).
fn images_of(server: &Server, repository_name: &str) -> BTreeSet<String> {
    let list = server.get(&format!(
        "/container-registry/v1/images?repositoryName={repository_name}&pageSize=1000"
    ));
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn repository(server: &Server, name: &str) -> (String, String) {
    let list = server.get("/container-registry/v1/repositories?folderId=default&pageSize=1000");
    let found = list["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|repository| {
            repository["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{name}"))
        })
        .unwrap_or_else(|| panic!("no repository {name}: {list}"))
        .clone();
    (
        found["id"].as_str().unwrap().to_owned(),
        found["name"].as_str().unwrap().to_owned(),
    )
}

/// An operation's response without its `@type`, as the resource's Get answers it.
fn without_type(response: &Value) -> Value {
    let mut value = response.clone();
    value.as_object_mut().unwrap().remove("@type");
    value
}

/// Calls a mutating method and returns its (done) operation.
fn operation(server: &Server, method: &str, path: &str, body: &Value) -> Value {
    let (status, answer) = server.call(method, path, Some(body), &[]);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    assert_eq!(answer["done"], true, "{answer}");
    answer
}

/// Blob files of the data directory, by digest hex.
fn blob_files(data: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if let Some(name) = path.file_name().and_then(|name| name.to_str())
                && name.len() == 64
                && name.bytes().all(|byte| byte.is_ascii_hexdigit())
            {
                found.insert(name.to_owned());
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&data.join("blobs"), &mut found);
    found
}

/// The digests (hex) of an image's layers and config, read from its layout.
fn layout_blobs(work: &Path, name: &str) -> Vec<String> {
    let layout = work.join(format!("{name}-oci"));
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&manifest_hex)).unwrap(),
    )
    .unwrap();
    let mut blobs = vec![
        manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_owned(),
    ];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_owned(),
        );
    }
    blobs
}

/// Polls `condition` for up to 60 s.
fn wait_until(what: &str, server: &Server, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn scenario(store: Option<&str>) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let config = work.path().join("crscan.toml");
    // A run every second, so that the test sees runs without waiting an hour.
    std::fs::write(&config, "lifecycle_interval_seconds = 1\n").unwrap();
    let server = Server::start_with(&data, 0, store, Some(&config));
    let host = server.url.trim_start_matches("http://").to_owned();

    // The issue's repository: v1..v5, two untagged images, and `stable`.
    let mut digests = std::collections::BTreeMap::new();
    for name in ["v1", "v2", "v3", "v4", "v5", "u1", "u2", "stable"] {
        let source = image_source(work.path(), name);
        let tag = if name.starts_with('u') {
            format!("tmp-{name}")
        } else {
            name.to_owned()
        };
        let digest = push_from(&server, &source, &format!("default/app:{tag}"));
        if name.starts_with('u') {
            // Untag it: the image stays, with no tag.
            let status = Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-X",
                    "DELETE",
                ])
                .arg(format!("http://{host}/v2/default/app/manifests/{tag}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&status.stdout), "202");
        }
        digests.insert(name, digest);
    }
    let (repository_id, repository_name) = repository(&server, "app");
    let all: BTreeSet<String> = digests.values().cloned().collect();
    assert_eq!(images_of(&server, &repository_name), all);
    let expected: BTreeSet<String> = ["v1", "v2", "v3", "u1", "u2"]
        .iter()
        .map(|name| digests[name].clone())
        .collect();
    let kept: BTreeSet<String> = all.difference(&expected).cloned().collect();

    // Refused rules name the field.
    let (status, body) = server.call(
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        Some(&json!({"repositoryId": repository_id, "status": "DISABLED",
            "rules": [{"tagRegexp": "v.*", "expirePeriod": "3600s"}]})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 3, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("rules[0].expirePeriod") && message.contains("24 hours"),
        "{message}"
    );
    let (status, body) = server.call(
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        Some(&json!({"repositoryId": repository_id, "rules": [{"tagRegexp": "v("}]})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("rules[0].tagRegexp"),
        "{body}"
    );

    // The policy, DISABLED, and its dry run.
    let created = operation(
        &server,
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        &json!({"repositoryId": repository_id, "name": "keep-two", "status": "DISABLED",
            "rules": [{"tagRegexp": "v.*", "retainedTop": "2"}, {"untagged": true}]}),
    );
    let policy = without_type(&created["response"]);
    assert_eq!(
        created["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.CreateLifecyclePolicyMetadata"
    );
    assert_eq!(policy["status"], "DISABLED", "{policy}");
    assert_eq!(policy["rules"][0]["retainedTop"], "2", "{policy}");
    assert_eq!(policy["rules"][1]["untagged"], true, "{policy}");
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get(&format!(
            "/container-registry/v1/lifecyclePolicies/{policy_id}"
        )),
        policy
    );
    let listed = server.get(&format!(
        "/container-registry/v1/lifecyclePolicies?repositoryId={repository_id}"
    ));
    assert_eq!(listed["lifecyclePolicies"], json!([policy]), "{listed}");
    let named = |filter: &str| {
        server.get(&format!(
            "/container-registry/v1/lifecyclePolicies?registryId={}&filter={filter}&orderBy=name%20desc",
            repository_name.split('/').next().unwrap()
        ))["lifecyclePolicies"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(named("name%3D%22keep-two%22"), 1);
    assert_eq!(named("name%3D%22other%22"), 0);
    let (status, body) = server.call(
        "GET",
        &format!(
            "/container-registry/v1/lifecyclePolicies?repositoryId={repository_id}&orderBy=size"
        ),
        None,
        &[],
    );
    assert_eq!(status, 400, "{body}");

    let dry_run = operation(
        &server,
        "POST",
        &format!("/container-registry/v1/dryRunLifecyclePolicy/{policy_id}"),
        &json!({}),
    );
    assert_eq!(dry_run["metadata"]["lifecyclePolicyId"], policy_id.as_str());
    let result = without_type(&dry_run["response"]);
    assert_eq!(result["affectedImagesCount"], "5", "{dry_run}");
    let result_id = result["dryRunLifecyclePolicyResultId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        dry_run["metadata"]["dryRunLifecyclePolicyResultId"],
        result_id.as_str()
    );
    assert_eq!(
        server.get(&format!(
            "/container-registry/v1/dryRunLifecyclePolicyResults/{result_id}"
        )),
        result
    );
    let affected = server.get(&format!(
        "/container-registry/v1/dryRunLifecyclePolicyResults/{result_id}:affectedImages?pageSize=3"
    ));
    let mut affected_digests: BTreeSet<String> = affected["affectedImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["digest"].as_str().unwrap().to_owned())
        .collect();
    let token = affected["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty(), "{affected}");
    let rest = server.get(&format!(
        "/container-registry/v1/dryRunLifecyclePolicyResults/{result_id}:affectedImages?pageSize=3&pageToken={token}"
    ));
    affected_digests.extend(
        rest["affectedImages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["digest"].as_str().unwrap().to_owned()),
    );
    assert_eq!(affected_digests, expected);
    let results = server.get(&format!(
        "/container-registry/v1/dryRunLifecyclePolicyResults?lifecyclePolicyId={policy_id}"
    ));
    assert_eq!(
        results["dryRunLifecyclePolicyResults"],
        json!([result]),
        "{results}"
    );
    // The dry run deleted nothing.
    assert_eq!(images_of(&server, &repository_name), all);

    // Over gRPC, with the official SDK's stubs: the same answers, and a dry run.
    if let Some(python) = python_sdk() {
        let answer = python_lifecycle(&python, &host, &repository_id, &policy_id, &result_id);
        assert_eq!(answer["policies"], json!([policy_id]), "{answer}");
        assert_eq!(answer["status"], "DISABLED", "{answer}");
        assert_eq!(answer["retained_top"], 2, "{answer}");
        assert_eq!(answer["affected_count"], 5, "{answer}");
        assert_eq!(answer["invalid_code"], "INVALID_ARGUMENT", "{answer}");
        assert!(
            answer["invalid_message"]
                .as_str()
                .unwrap()
                .contains("rules[0].expirePeriod"),
            "{answer}"
        );
        assert_eq!(answer["updated_description"], "set over gRPC", "{answer}");
        assert_eq!(answer["updated_rules"], 2, "{answer}");
        let over_rest = server.get(&format!(
            "/container-registry/v1/lifecyclePolicies/{policy_id}"
        ));
        assert_eq!(over_rest["description"], "set over gRPC", "{over_rest}");
        assert_eq!(over_rest["rules"], policy["rules"], "{over_rest}");
        let grpc_result = answer["dry_run_result_id"].as_str().unwrap();
        assert_eq!(answer["dry_run_policy_id"], policy_id.as_str(), "{answer}");
        let again = server.get(&format!(
            "/container-registry/v1/dryRunLifecyclePolicyResults/{grpc_result}"
        ));
        assert_eq!(again["affectedImagesCount"], "5", "{again}");
        assert_eq!(images_of(&server, &repository_name), all);
    }

    // The console's repository page shows the policy and its newest dry run, and its
    // button runs one more.
    let page = console(&host, "GET", &format!("/ui/repositories/{repository_id}"));
    assert!(
        page.contains("keep-two") && page.contains("DISABLED"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"dry-run-count\">5</span>"),
        "{page}"
    );
    assert!(
        page.contains("tags matching <code>v.*</code>; keeps the 2 newest"),
        "{page}"
    );
    let count = |server: &Server| {
        server.get(&format!(
            "/container-registry/v1/dryRunLifecyclePolicyResults?lifecyclePolicyId={policy_id}"
        ))["dryRunLifecyclePolicyResults"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count(&server);
    console(&host, "POST", &format!("/ui/lifecycle/{policy_id}/dry-run"));
    assert_eq!(count(&server), before + 1);
    assert_eq!(images_of(&server, &repository_name), all);

    // An expirePeriod rule leaves young images alone, run after run.
    let young_source = image_source(work.path(), "young");
    let young_digest = push_from(&server, &young_source, "default/young:latest");
    let (young_id, young_name) = repository(&server, "young");
    let young_policy = operation(
        &server,
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        &json!({"repositoryId": young_id, "status": "ACTIVE",
            "rules": [{"tagRegexp": ".*", "expirePeriod": "172800s"}]}),
    )["response"]
        .clone();
    assert_eq!(young_policy["rules"][0]["expirePeriod"], "172800s");
    let runs = |server: &Server| server.log_text().matches("lifecycle run finished").count();
    let seen = runs(&server);
    wait_until("two lifecycle runs", &server, || runs(&server) >= seen + 2);
    assert_eq!(
        images_of(&server, &young_name),
        BTreeSet::from([young_digest.clone()])
    );
    // Three days on, the same rule takes it (the debug-only run at a chosen time).
    let (status, answer) = server.call(
        "POST",
        &format!(
            "/container-registry/v1/lifecyclePolicies:runAt?nowMillis={}",
            now_millis() + 3 * DAY_MS
        ),
        Some(&json!({})),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["deleted"][0]["digest"],
        young_digest.as_str(),
        "{answer}"
    );
    assert_eq!(answer["deleted"].as_array().unwrap().len(), 1, "{answer}");
    assert!(images_of(&server, &young_name).is_empty());

    // An index that stays keeps the manifests it lists, though they have no tag.
    let index_digest = push_index(work.path(), &host);
    let loose = push_from(
        &server,
        &image_source(work.path(), "loose"),
        "default/multi:tmp-loose",
    );
    let status = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg(format!(
            "http://{host}/v2/default/multi/manifests/tmp-loose"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "202");
    let (multi_id, multi_name) = repository(&server, "multi");
    assert_eq!(
        images_of(&server, &multi_name).len(),
        4,
        "an index, two children, one loose"
    );
    let multi_policy = operation(
        &server,
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        &json!({"repositoryId": multi_id, "rules": [{"untagged": true}]}),
    )["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let multi_run = operation(
        &server,
        "POST",
        &format!("/container-registry/v1/dryRunLifecyclePolicy/{multi_policy}"),
        &json!({}),
    );
    let multi_result = multi_run["response"]["dryRunLifecyclePolicyResultId"]
        .as_str()
        .unwrap();
    let affected = server.get(&format!(
        "/container-registry/v1/dryRunLifecyclePolicyResults/{multi_result}:affectedImages"
    ));
    let affected: Vec<&str> = affected["affectedImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["digest"].as_str().unwrap())
        .collect();
    assert_eq!(affected, [loose.as_str()], "index {index_digest}");

    // A second ACTIVE policy in one repository is refused.
    let (status, body) = server.call(
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        Some(&json!({"repositoryId": young_id, "status": "ACTIVE",
            "rules": [{"untagged": true}]})),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 9, "{body}");

    // ACTIVE: the next run deletes exactly the dry run's images.
    let updated = operation(
        &server,
        "PATCH",
        &format!("/container-registry/v1/lifecyclePolicies/{policy_id}"),
        &json!({"updateMask": "status", "status": "ACTIVE"}),
    );
    assert_eq!(updated["response"]["status"], "ACTIVE", "{updated}");
    assert_eq!(updated["response"]["rules"], policy["rules"], "{updated}");
    wait_until("the lifecycle run", &server, || {
        images_of(&server, &repository_name) == kept
    });
    let log = server.log_text();
    for digest in &expected {
        assert!(
            log.contains(&format!("image.digest={digest}")) && log.contains(&policy_id),
            "the run's log does not name {digest}:\n{log}"
        );
    }
    // Later runs keep the rest.
    let seen = runs(&server);
    wait_until("two more lifecycle runs", &server, || {
        runs(&server) >= seen + 2
    });
    assert_eq!(images_of(&server, &repository_name), kept);
    drop(server);

    // GC then reclaims the deleted images' blobs, and keeps the others'.
    let before = blob_files(&data);
    let mut gc = Command::new(env!("CARGO_BIN_EXE_crscan"));
    gc.args(["gc", "--delete", "--grace-seconds", "0", "--data-dir"])
        .arg(&data)
        .env_remove("CRSCAN_STORE");
    if let Some(url) = store {
        gc.args(["--store", url]);
    }
    common::run(&mut gc);
    let after = blob_files(&data);
    for name in ["v1", "v2", "v3", "u1", "u2", "young"] {
        for blob in layout_blobs(work.path(), name) {
            assert!(
                before.contains(&blob),
                "{name}'s blob {blob} was never stored"
            );
            assert!(!after.contains(&blob), "gc kept {name}'s blob {blob}");
        }
    }
    for name in ["v4", "v5", "stable"] {
        for blob in layout_blobs(work.path(), name) {
            assert!(after.contains(&blob), "gc deleted {name}'s blob {blob}");
        }
    }
}

/// Pushes an index of two single-layer images (linux/amd64 and linux/arm64) as
/// `default/multi:multi` with `skopeo copy --all`; returns the index's digest.
fn push_index(work: &Path, host: &str) -> String {
    let layout = work.join("multi-oci");
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let name = format!("multi-{arch}");
        image_source(work, &name);
        let child = work.join(format!("{name}-oci"));
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        for blob in std::fs::read_dir(child.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            std::fs::copy(
                blob.path(),
                layout.join("blobs/sha256").join(blob.file_name()),
            )
            .unwrap();
        }
        let index: Value =
            serde_json::from_slice(&std::fs::read(child.join("index.json")).unwrap()).unwrap();
        let mut entry = index["manifests"][0].clone();
        entry.as_object_mut().unwrap().remove("annotations");
        entry["platform"] = json!({"os": "linux", "architecture": arch});
        entries.push(entry);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let index_digest = common::images::write_blob(&layout, &index);
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }]}))
        .unwrap(),
    )
    .unwrap();
    common::run(
        Command::new("skopeo")
            .args(["copy", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:multi", layout.display()))
            .arg(format!("docker://{host}/default/multi:multi")),
    );
    index_digest
}

/// A console page (or action) with curl, as its HTML.
fn console(host: &str, method: &str, path: &str) -> String {
    common::run(
        Command::new("curl")
            .args(["-sS", "-X", method])
            .arg(format!("http://{host}{path}")),
    )
}

/// The Python SDK's interpreter, when `scripts/install-grpc-clients.sh` installed it;
/// `None` (with a message) otherwise, unless `CRSCAN_REQUIRE_TOOLS=1`.
fn python_sdk() -> Option<PathBuf> {
    let cache = match std::env::var_os("CRSCAN_TOOLS_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/crscan-tools"),
    };
    let python = cache.join("python-yandexcloud-0.413.0/bin/python");
    if python.is_file() {
        return Some(python);
    }
    let required = std::env::var("CRSCAN_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "CRSCAN_REQUIRE_TOOLS=1 but the Python SDK is not installed at {}; run scripts/install-grpc-clients.sh",
        python.display()
    );
    eprintln!("gRPC half skipped: run scripts/install-grpc-clients.sh");
    None
}

/// Lifecycle calls over cleartext gRPC with the SDK's generated stubs; prints what
/// the test checks as one JSON object.
const PYTHON_CLIENT: &str = r#"
import json, sys
import grpc
from google.protobuf import duration_pb2
from yandex.cloud.containerregistry.v1 import lifecycle_policy_pb2 as policy_pb2
from yandex.cloud.containerregistry.v1 import lifecycle_policy_service_pb2 as service_pb2
from yandex.cloud.containerregistry.v1 import lifecycle_policy_service_pb2_grpc as service_grpc

address, repository_id, policy_id, result_id = sys.argv[1:5]
stub = service_grpc.LifecyclePolicyServiceStub(grpc.insecure_channel(address))
answer = {}
listed = stub.List(service_pb2.ListLifecyclePoliciesRequest(repository_id=repository_id))
answer["policies"] = [policy.id for policy in listed.lifecycle_policies]
got = stub.Get(service_pb2.GetLifecyclePolicyRequest(lifecycle_policy_id=policy_id))
answer["status"] = policy_pb2.LifecyclePolicy.Status.Name(got.status)
answer["retained_top"] = got.rules[0].retained_top
result = stub.GetDryRunResult(service_pb2.GetDryRunLifecyclePolicyResultRequest(
    dry_run_lifecycle_policy_result_id=result_id))
answer["affected_count"] = result.affected_images_count
try:
    stub.Create(service_pb2.CreateLifecyclePolicyRequest(
        repository_id=repository_id,
        status=policy_pb2.LifecyclePolicy.Status.DISABLED,
        rules=[policy_pb2.LifecycleRule(tag_regexp="v.*",
                                        expire_period=duration_pb2.Duration(seconds=3600))]))
    answer["invalid_code"] = "OK"
except grpc.RpcError as error:
    answer["invalid_code"] = error.code().name
    answer["invalid_message"] = error.details()
operation = stub.DryRun(service_pb2.DryRunLifecyclePolicyRequest(lifecycle_policy_id=policy_id))
metadata = service_pb2.DryRunLifecyclePolicyMetadata()
operation.metadata.Unpack(metadata)
response = service_pb2.DryRunLifecyclePolicyResult()
operation.response.Unpack(response)
answer["dry_run_result_id"] = metadata.dry_run_lifecycle_policy_result_id
answer["dry_run_policy_id"] = response.lifecycle_policy_id
from google.protobuf import field_mask_pb2
updated = stub.Update(service_pb2.UpdateLifecyclePolicyRequest(
    lifecycle_policy_id=policy_id, update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    description="set over gRPC"))
policy = policy_pb2.LifecyclePolicy()
updated.response.Unpack(policy)
answer["updated_description"] = policy.description
answer["updated_rules"] = len(policy.rules)
print(json.dumps(answer))
"#;

fn python_lifecycle(
    python: &Path,
    address: &str,
    repository_id: &str,
    policy_id: &str,
    result_id: &str,
) -> Value {
    let output = common::run(
        Command::new(python)
            .args([
                "-c",
                PYTHON_CLIENT,
                address,
                repository_id,
                policy_id,
                result_id,
            ])
            .env("NO_PROXY", "*"),
    );
    serde_json::from_str(output.trim()).unwrap_or_else(|_| panic!("{output}"))
}

/// The run's slots in a server's log (`lifecycle.slot=N` of "lifecycle run finished").
fn run_slots(log: &str) -> Vec<i64> {
    log.lines()
        .filter(|line| line.contains("lifecycle run finished"))
        .filter_map(|line| {
            let (_, rest) = line.split_once("lifecycle.slot=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Two nodes on one PostgreSQL store: each slot's run happens on one node only, and
/// each image is deleted once.
fn two_nodes(store: &str) {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("crscan.toml");
    std::fs::write(&config, "lifecycle_interval_seconds = 1\n").unwrap();
    let first = Server::start_with(&work.path().join("a"), 0, Some(store), Some(&config));
    let second = Server::start_with(&work.path().join("b"), 0, Some(store), Some(&config));
    let host = first.url.trim_start_matches("http://").to_owned();
    let mut untagged = BTreeSet::new();
    for name in ["n1", "n2", "n3"] {
        let digest = push_from(
            &first,
            &image_source(work.path(), name),
            &format!("default/nodes:tmp-{name}"),
        );
        let status = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
            ])
            .arg(format!(
                "http://{host}/v2/default/nodes/manifests/tmp-{name}"
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "202");
        untagged.insert(digest);
    }
    let (repository_id, repository_name) = repository(&first, "nodes");
    operation(
        &second,
        "POST",
        "/container-registry/v1/lifecyclePolicies",
        &json!({"repositoryId": repository_id, "status": "ACTIVE", "rules": [{"untagged": true}]}),
    );
    wait_until("the images' deletion", &first, || {
        images_of(&first, &repository_name).is_empty()
    });
    let slots = |server: &Server| run_slots(&server.log_text());
    let seen = slots(&first).len() + slots(&second).len();
    wait_until("six more runs over both nodes", &first, || {
        slots(&first).len() + slots(&second).len() >= seen + 6
    });
    let (on_first, on_second) = (slots(&first), slots(&second));
    let mut all: Vec<i64> = on_first.iter().chain(&on_second).copied().collect();
    let runs = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        runs,
        "a slot ran on both nodes: {on_first:?} {on_second:?}"
    );
    let deletions = |server: &Server| {
        server
            .log_text()
            .matches("lifecycle policy deleted an image")
            .count()
    };
    assert_eq!(deletions(&first) + deletions(&second), untagged.len());
}

#[test]
fn lifecycle_on_sqlite() {
    if common::tools_present(&["skopeo", "curl"], false) {
        scenario(None);
    }
}

#[test]
fn lifecycle_on_postgres() {
    if !common::tools_present(&["skopeo", "curl", "psql"], false) {
        return;
    }
    let Some(postgres) = common::postgres::Postgres::create("lifecycle") else {
        return;
    };
    scenario(Some(&postgres.url));
    two_nodes(&postgres.url);
}
