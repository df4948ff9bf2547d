//! Access bindings, IP permissions and `secure` registries end to end (#13): a real
//! `crscan serve` with tokens (one with no global roles, acting only through its
//! bindings), images pushed with `skopeo`, `/v2/` and the REST API called with `curl`,
//! on SQLite and (with `CRSCAN_TEST_POSTGRES_URL`) on PostgreSQL; and the same calls
//! over gRPC with the official Python SDK (`yandexcloud`, installed by
//! `scripts/install-grpc-clients.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::postgres::Postgres;
use common::server::Server;
use serde_json::{Value, json};

const ADMIN: &str = "access-admin-token";
/// A token with no global roles, subject `ci`.
const CI: &str = "access-ci-token";
const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_clients");
const INSTALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/install-grpc-clients.sh"
);
const PYTHON_SDK: &str = "python-yandexcloud-0.413.0";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The configuration file: an admin token, the `ci` token without roles, and
/// 127.0.0.1 as the one trusted proxy.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("crscan.toml");
    std::fs::write(
        &path,
        format!(
            r#"trusted_proxies = ["127.0.0.1"]

[[tokens]]
token = "{ADMIN}"
roles = ["admin"]
subject = "root"

[[tokens]]
token = "{CI}"
subject = "ci"
"#
        ),
    )
    .unwrap();
    path
}

/// What a `curl` call answered.
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

/// Calls `server` with curl: `token` as Basic credentials (as registry clients send
/// them; none for an anonymous call), extra headers, and the source address
/// `interface` (another loopback address than 127.0.0.1) when given.
fn curl(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    interface: Option<&str>,
) -> Answer {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-g", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", server.url));
    if method == "HEAD" {
        command.arg("-I");
    }
    if let Some(token) = token {
        command.args(["-u", &format!("user:{token}")]);
    }
    if let Some(interface) = interface {
        command.args(["--interface", interface]);
    }
    for (name, value) in headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        text: body.to_owned(),
    }
}

/// Calls the management API as the admin token (bearer).
fn api(server: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    server.call(
        method,
        path,
        body,
        &[("Authorization", &format!("Bearer {ADMIN}"))],
    )
}

/// An operation call that must succeed at once.
fn done(server: &Server, method: &str, path: &str, body: &Value) -> Value {
    let (status, operation) = api(server, method, path, Some(body));
    assert_eq!(status, 200, "{method} {path}: {operation}");
    assert_eq!(operation["done"], true, "{operation}");
    operation
}

/// Pushes the OCI layout's `1.0` image as `repository` with skopeo, with `token`'s
/// credentials; the error output when skopeo fails.
fn push(server: &Server, layout: &Path, repository: &str, token: &str) -> Result<(), String> {
    let output = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("user:{token}"))
        .arg(format!("oci:{}:1.0", layout.display()))
        .arg(format!(
            "docker://{}/{repository}",
            server.url.trim_start_matches("http://")
        ))
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn manifest_path(repository: &str, tag: &str) -> String {
    format!("/v2/{repository}/manifests/{tag}")
}

/// GET of a manifest, anonymous or with a token, from 127.0.0.1 unless `interface`.
fn pull(server: &Server, repository: &str, token: Option<&str>) -> Answer {
    curl(
        server,
        "GET",
        &manifest_path(repository, "1.0"),
        token,
        &[("Accept", OCI_MANIFEST)],
        None,
    )
}

fn registry_id(server: &Server, folder: &str) -> String {
    let (status, list) = api(
        server,
        "GET",
        &format!("/container-registry/v1/registries?folderId={folder}"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list["registries"][0]["id"].as_str().unwrap().to_owned()
}

fn repository_id(server: &Server, registry: &str, name: &str) -> String {
    let (status, list) = api(
        server,
        "GET",
        &format!("/container-registry/v1/repositories?registryId={registry}"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|repository| repository["name"] == format!("{registry}/{name}"))
        .map(|repository| repository["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no repository {name} in {list}"))
}

fn binding(role: &str, kind: &str, id: &str) -> Value {
    json!({"roleId": role, "subject": {"id": id, "type": kind}})
}

fn scenario(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = Server::start_with(&dir.path().join("data"), 0, store, Some(&config));
    let layout = dir.path().join("image");
    common::images::write_image(&layout, "1.0");

    let default = registry_id(&server, "default");
    let other = done(
        &server,
        "POST",
        "/container-registry/v1/registries",
        &json!({"folderId": "other", "name": "other"}),
    )["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    push(&server, &layout, "default/app:1.0", ADMIN).unwrap();
    push(&server, &layout, "other/app:1.0", ADMIN).unwrap();

    // ---- allUsers as puller on a registry: a public registry, and nothing more.
    assert_eq!(pull(&server, "default/app", None).status, 401);
    let operation = done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:updateAccessBindings"),
        &json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding":
            binding("container-registry.images.puller", "system", "allUsers")}]}),
    );
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.access.UpdateAccessBindingsMetadata",
        "{operation}"
    );
    assert_eq!(operation["metadata"]["resourceId"], default.as_str());
    let (status, list) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/registries/{default}:listAccessBindings"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["accessBindings"],
        json!([binding(
            "container-registry.images.puller",
            "system",
            "allUsers"
        )])
    );
    let manifest = pull(&server, "default/app", None);
    assert_eq!(manifest.status, 200, "{}", manifest.text);
    let config_digest = manifest.body["config"]["digest"].as_str().unwrap();
    let blob = curl(
        &server,
        "GET",
        &format!("/v2/default/app/blobs/{config_digest}"),
        None,
        &[],
        None,
    );
    assert_eq!(blob.status, 200, "{}", blob.text);
    // Another registry stays closed; pushing and the API need credentials.
    assert_eq!(pull(&server, "other/app", None).status, 401);
    let upload = curl(
        &server,
        "POST",
        "/v2/default/app/blobs/uploads/",
        None,
        &[],
        None,
    );
    assert_eq!(upload.status, 401, "{}", upload.text);
    let (status, _) = server.call(
        "GET",
        &format!("/container-registry/v1/registries/{default}"),
        None,
        &[],
    );
    assert_eq!(status, 401);

    // ---- Validation names the value.
    for (bad, named) in [
        (binding("owner", "serviceAccount", "ci"), "\"owner\""),
        (binding("viewer", "userAccount", "ci"), "\"userAccount\""),
        (binding("viewer", "system", "everyone"), "\"everyone\""),
    ] {
        let (status, error) = api(
            &server,
            "POST",
            &format!("/container-registry/v1/registries/{default}:setAccessBindings"),
            Some(&json!({"accessBindings": [bad]})),
        );
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], 3);
        assert!(
            error["message"].as_str().unwrap().contains(named),
            "{error}"
        );
    }
    let (status, error) = api(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:updateAccessBindings"),
        Some(
            &json!({"accessBindingDeltas": [{"action": "FLIP", "accessBinding":
            binding("viewer", "serviceAccount", "ci")}]}),
        ),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error["message"].as_str().unwrap().contains("\"FLIP\""));

    // ---- Removing the binding closes the registry again.
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:updateAccessBindings"),
        &json!({"accessBindingDeltas": [{"action": "REMOVE", "accessBinding":
            binding("container-registry.images.puller", "system", "allUsers")}]}),
    );
    assert_eq!(pull(&server, "default/app", None).status, 401);

    // ---- A token with no global roles, pusher on one repository only.
    let app = repository_id(&server, &default, "app");
    assert!(push(&server, &layout, "default/app:2.0", CI).is_err());
    let operation = done(
        &server,
        "POST",
        &format!("/container-registry/v1/repositories/{app}:setAccessBindings"),
        &json!({"accessBindings": [binding("container-registry.images.pusher", "serviceAccount", "ci")]}),
    );
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.access.SetAccessBindingsMetadata"
    );
    push(&server, &layout, "default/app:2.0", CI).unwrap();
    assert_eq!(pull(&server, "default/app", Some(CI)).status, 200);
    let elsewhere = push(&server, &layout, "default/elsewhere:1.0", CI).unwrap_err();
    assert!(
        elsewhere.contains("denied") || elsewhere.contains("403"),
        "{elsewhere}"
    );
    assert!(push(&server, &layout, "other/app:2.0", CI).is_err());
    let denied = curl(
        &server,
        "POST",
        "/v2/other/app/blobs/uploads/",
        Some(CI),
        &[],
        None,
    );
    assert_eq!(denied.status, 403, "{}", denied.text);
    assert_eq!(denied.body["errors"][0]["code"], "DENIED");
    assert_eq!(pull(&server, "other/app", Some(CI)).status, 403);
    // A cross-repository mount reads its source: from a repository the token cannot
    // pull, the blob is not mounted and an upload starts instead.
    let mount = format!("/v2/default/app/blobs/uploads/?mount={config_digest}&from=other/app");
    let refused_mount = curl(&server, "POST", &mount, Some(CI), &[], None);
    assert_eq!(refused_mount.status, 202, "{}", refused_mount.text);
    let mounted = curl(&server, "POST", &mount, Some(ADMIN), &[], None);
    assert_eq!(mounted.status, 201, "{}", mounted.text);
    // The API honours the same binding: the repository reads, the other registry
    // does not.
    let ci = [("Authorization", format!("Bearer {CI}"))];
    let ci: Vec<(&str, &str)> = ci.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = server.call(
        "GET",
        &format!("/container-registry/v1/repositories/{app}"),
        None,
        &ci,
    );
    assert_eq!(status, 200);
    let (status, error) = server.call(
        "GET",
        &format!("/container-registry/v1/registries/{other}"),
        None,
        &ci,
    );
    assert_eq!(status, 403, "{error}");
    let (status, images) = server.call(
        "GET",
        &format!("/container-registry/v1/images?repositoryName={default}/app"),
        None,
        &ci,
    );
    assert_eq!(status, 200, "{images}");
    assert!(!images["images"].as_array().unwrap().is_empty(), "{images}");
    let (status, _) = server.call(
        "GET",
        &format!("/container-registry/v1/repositories?registryId={other}"),
        None,
        &ci,
    );
    assert_eq!(status, 403);
    // Managing access needs admin on the resource.
    let (status, _) = server.call(
        "POST",
        &format!("/container-registry/v1/repositories/{app}:setAccessBindings"),
        Some(&json!({"accessBindings": []})),
        &ci,
    );
    assert_eq!(status, 403);
    // allAuthenticatedUsers reaches every token, and container-registry.admin bound on
    // a registry lets a token manage access inside it.
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{other}:setAccessBindings"),
        &json!({"accessBindings": [
            binding("viewer", "system", "allAuthenticatedUsers"),
            binding("container-registry.admin", "serviceAccount", "ci"),
        ]}),
    );
    assert_eq!(pull(&server, "other/app", Some(CI)).status, 200);
    assert_eq!(pull(&server, "other/app", None).status, 401);
    let other_app = repository_id(&server, &other, "app");
    let (status, operation) = server.call(
        "POST",
        &format!("/container-registry/v1/repositories/{other_app}:setAccessBindings"),
        Some(&json!({"accessBindings": [binding("viewer", "serviceAccount", "ci")]})),
        &ci,
    );
    assert_eq!(status, 200, "{operation}");
    assert_eq!(operation["createdBy"], "ci", "{operation}");
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{other}:setAccessBindings"),
        &json!({"accessBindings": []}),
    );
    assert_eq!(pull(&server, "other/app", Some(CI)).status, 200);
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/repositories/{other_app}:setAccessBindings"),
        &json!({"accessBindings": []}),
    );
    assert_eq!(pull(&server, "other/app", Some(CI)).status, 403);
    // A missing resource is NOT_FOUND for an admin, and refused like any other for a
    // token that could not see it.
    let missing = "/container-registry/v1/registries/crp00000000000000000:listAccessBindings";
    assert_eq!(api(&server, "GET", missing, None).0, 404);
    assert_eq!(server.call("GET", missing, None, &ci).0, 403);
    let (_, openapi) = server.call("GET", "/openapi.json", None, &[]);
    assert!(
        openapi["paths"]["/container-registry/v1/repositories/{resourceId}:updateAccessBindings"]
            .is_object()
    );

    // ---- IP permissions: a PULL list without 127.0.0.1.
    let operation = done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:setIpPermission"),
        &json!({"ipPermission": [{"action": "PULL", "ip": "203.0.113.0/24"}]}),
    );
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.containerregistry.v1.SetIpPermissionMetadata"
    );
    let refused = pull(&server, "default/app", Some(ADMIN));
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["code"], "DENIED");
    let message = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("203.0.113.0/24") && message.contains("PULL"),
        "{message}"
    );
    // Pushes are unaffected, and so is the other registry.
    push(&server, &layout, "default/app:3.0", ADMIN).unwrap();
    assert_eq!(pull(&server, "other/app", Some(ADMIN)).status, 200);
    let (status, error) = api(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:setIpPermission"),
        Some(&json!({"ipPermission": [{"action": "PULL", "ip": "10.0.0.300"}]})),
    );
    assert_eq!(status, 400, "{error}");
    assert!(error["message"].as_str().unwrap().contains("10.0.0.300"));
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:updateIpPermission"),
        &json!({"ipPermissionDeltas": [{"action": "ADD",
            "ipPermission": {"action": "PULL", "ip": "127.0.0.0/8"}}]}),
    );
    let (status, list) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/registries/{default}:listIpPermission"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        list["permissions"],
        json!([{"action": "PULL", "ip": "127.0.0.0/8"}, {"action": "PULL", "ip": "203.0.113.0/24"}])
    );
    assert_eq!(pull(&server, "default/app", Some(ADMIN)).status, 200);

    // ---- X-Forwarded-For counts only from a trusted proxy (127.0.0.1, not
    // 127.0.0.2), for IPv4 and IPv6 entries.
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:setIpPermission"),
        &json!({"ipPermission": [{"action": "PULL", "ip": "198.51.100.7"},
                                 {"action": "PULL", "ip": "2001:db8::/32"}]}),
    );
    let forwarded = |client: &str, interface: Option<&str>| {
        curl(
            &server,
            "GET",
            &manifest_path("default/app", "1.0"),
            Some(ADMIN),
            &[("Accept", OCI_MANIFEST), ("X-Forwarded-For", client)],
            interface,
        )
        .status
    };
    assert_eq!(pull(&server, "default/app", Some(ADMIN)).status, 403);
    assert_eq!(forwarded("198.51.100.7", None), 200);
    assert_eq!(forwarded("2001:db8:5::1", None), 200);
    assert_eq!(forwarded("198.51.100.8", None), 403);
    assert_eq!(forwarded("198.51.100.7", Some("127.0.0.2")), 403);
    done(
        &server,
        "POST",
        &format!("/container-registry/v1/registries/{default}:setIpPermission"),
        &json!({"ipPermission": []}),
    );
    assert_eq!(pull(&server, "default/app", Some(ADMIN)).status, 200);

    // ---- secure: reported on Get, with the pre-set scan policy.
    let created = done(
        &server,
        "POST",
        "/container-registry/v1/registries",
        &json!({"folderId": "safe", "name": "safe", "secure": true}),
    );
    assert_eq!(created["response"]["secure"], true, "{created}");
    let safe = created["response"]["id"].as_str().unwrap();
    let (_, registry) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/registries/{safe}"),
        None,
    );
    assert_eq!(registry["secure"], true, "{registry}");
    let (_, plain) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/registries/{default}"),
        None,
    );
    assert!(plain.get("secure").is_none(), "{plain}");
    let (status, policy) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/scanPolicies/{safe}:byRegistry"),
        None,
    );
    assert_eq!(status, 200, "{policy}");
    assert_eq!(
        policy["rules"]["pushRule"]["repositoryPrefixes"],
        json!(["*"])
    );
    assert_eq!(
        policy["rules"]["scheduleRules"][0]["rescanPeriod"], "604800s",
        "{policy}"
    );
    assert_eq!(
        policy["rules"]["scheduleRules"][0]["repositoryPrefixes"],
        json!(["*"])
    );
}

#[test]
fn access_on_sqlite() {
    if common::tools_present(&["curl", "skopeo"], false) {
        scenario(None);
    }
}

#[test]
fn access_on_postgres() {
    if !common::tools_present(&["curl", "skopeo", "psql"], false) {
        return;
    }
    let Some(database) = Postgres::create("access") else {
        return;
    };
    scenario(Some(&database.url));
}

/// The SDK cache, installed by the script; `None` (a skip) when it cannot be.
fn sdk_cache() -> Option<PathBuf> {
    if !common::tools_present(&["curl", "skopeo", "python3"], false) {
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

/// The Python SDK binds `allUsers` as puller, sets an IP allow-list and creates a
/// `secure` registry over gRPC; `/v2/` and REST then see what it did.
#[test]
fn access_over_grpc_with_the_python_sdk() {
    let Some(cache) = sdk_cache() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let server = Server::start_with(&dir.path().join("data"), 0, None, Some(&config));
    let layout = dir.path().join("image");
    common::images::write_image(&layout, "1.0");
    push(&server, &layout, "default/app:1.0", ADMIN).unwrap();
    let default = registry_id(&server, "default");
    assert_eq!(pull(&server, "default/app", None).status, 401);

    let script = json!({
        "endpoint": server.url.trim_start_matches("http://"),
        "rest": server.url,
        "admin_token": ADMIN,
        "registry_id": default,
    });
    let output = Command::new(cache.join(PYTHON_SDK).join("bin/python"))
        .arg(format!("{CLIENTS}/python_access.py"))
        .arg(script.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python_access.py failed:\nstdout: {stdout}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    let facts: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        facts["update_metadata"],
        "type.googleapis.com/yandex.cloud.access.UpdateAccessBindingsMetadata"
    );
    assert_eq!(
        facts["bindings"],
        json!([["container-registry.images.puller", "system", "allUsers"]])
    );
    assert_eq!(facts["invalid_role"], "INVALID_ARGUMENT", "{facts}");
    assert_eq!(facts["ip_permissions"], json!([["PULL", "127.0.0.0/8"]]));
    // What the SDK set is what `/v2/` does: anonymous pulls from 127.0.0.1 work.
    assert_eq!(pull(&server, "default/app", None).status, 200);
    // The secure registry it created reports `secure` over REST too.
    let secure = facts["secure_registry_id"].as_str().unwrap();
    let (_, registry) = api(
        &server,
        "GET",
        &format!("/container-registry/v1/registries/{secure}"),
        None,
    );
    assert_eq!(registry["secure"], true, "{registry}");
    // The SDK's own Registry message has no `secure`; crscan's field 7 is unknown to
    // it and does not break decoding (the script read the registry back).
    assert_eq!(facts["secure_registry_name"], "safe");
}
