//! One port for everything: a real `crscan serve` answers HTTP/1.1 and HTTP/2 with
//! prior knowledge (h2c) in cleartext, and, with `--tls-cert`/`--tls-key`, HTTP/1.1 and
//! HTTP/2 chosen by ALPN; gRPC requests (by `content-type`) reach the gRPC services
//! on the same port, and the endpoint service hands out the address the client
//! dialled or `--public-address`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command};

use crscan_api::grpc::proto::yandex::cloud::endpoint::ListApiEndpointsRequest;
use crscan_api::grpc::proto::yandex::cloud::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use crscan_api::grpc::proto::yandex::cloud::operation::GetOperationRequest;
use crscan_api::grpc::proto::yandex::cloud::operation::operation_service_client::OperationServiceClient;
use reqwest::Version;

mod common;

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");

struct Server {
    child: Child,
    scheme: &'static str,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path, extra: &[&std::ffi::OsStr]) -> Server {
    start_logging(data_dir, extra, std::process::Stdio::null())
}

fn start_logging(
    data_dir: &Path,
    extra: &[&std::ffi::OsStr],
    log: impl Into<std::process::Stdio>,
) -> Server {
    let mut command = Command::new(CRSCAN);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--workers", "0"])
        .args(extra)
        .env_remove("CRSCAN_TOKENS")
        .env_remove("CRSCAN_CONFIG")
        .env_remove("CRSCAN_PUBLIC_ADDRESS")
        .env("CRSCAN_DB_AUTO_UPDATE", "0")
        .env("NO_COLOR", "1")
        .stderr(log);
    let (child, scheme, port) = common::spawn_serve_announcing(command);
    Server {
        child,
        scheme,
        port,
    }
}

/// GET `url` with `client`; returns the HTTP version spoken and the status.
fn get(client: &reqwest::blocking::Client, url: &str) -> (Version, u16) {
    let response = client.get(url).send().unwrap();
    (response.version(), response.status().as_u16())
}

/// The endpoint addresses the gRPC endpoint service answers over h2c.
fn endpoints(port: u16) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = ApiEndpointServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        let answer = client
            .list(ListApiEndpointsRequest::default())
            .await
            .unwrap()
            .into_inner();
        // An unknown operation over the same channel: the REST answer's code.
        let mut operations = OperationServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        let error = operations
            .get(GetOperationRequest {
                operation_id: "crqmissing".to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
        answer
            .endpoints
            .into_iter()
            .map(|endpoint| (endpoint.id, endpoint.address))
            .collect()
    })
}

#[test]
fn cleartext_port_speaks_http1_h2c_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    assert_eq!(server.scheme, "http");
    let url = format!("http://127.0.0.1:{}/healthz", server.port);
    let http1 = reqwest::blocking::Client::builder()
        .http1_only()
        .build()
        .unwrap();
    assert_eq!(get(&http1, &url), (Version::HTTP_11, 200));
    let h2c = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert_eq!(get(&h2c, &url), (Version::HTTP_2, 200));
    // REST over h2c too, with its JSON error for a missing operation.
    let response = h2c
        .get(format!(
            "http://127.0.0.1:{}/operations/crqmissing",
            server.port
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let endpoints = endpoints(server.port);
    let dialled = format!("127.0.0.1:{}", server.port);
    for id in [
        "container-registry",
        "operation",
        "iam",
        "resource-manager",
        "endpoint",
    ] {
        assert!(
            endpoints.contains(&(id.to_owned(), dialled.clone())),
            "{id} at {dialled}: {endpoints:?}"
        );
    }
}

#[test]
fn public_address_is_what_discovery_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        &dir.path().join("data"),
        &[
            "--public-address".as_ref(),
            "registry.example.com:443".as_ref(),
        ],
    );
    let endpoints = endpoints(server.port);
    assert!(!endpoints.is_empty());
    assert!(
        endpoints
            .iter()
            .all(|(_, address)| address == "registry.example.com:443"),
        "{endpoints:?}"
    );
}

#[test]
fn tls_port_offers_h2_and_http1_by_alpn() {
    if !common::tools_present(&["openssl"], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = common::test_certificates(dir.path());
    let server = start(
        &dir.path().join("data"),
        &[
            "--tls-cert".as_ref(),
            certificate.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    // The start line says so.
    assert_eq!(server.scheme, "https");
    let root = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let url = format!("https://localhost:{}/healthz", server.port);
    let alpn = reqwest::blocking::Client::builder()
        .add_root_certificate(root.clone())
        .build()
        .unwrap();
    assert_eq!(get(&alpn, &url), (Version::HTTP_2, 200));
    let http1 = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .http1_only()
        .build()
        .unwrap();
    assert_eq!(get(&http1, &url), (Version::HTTP_11, 200));
    // Cleartext is not spoken on a TLS port.
    let cleartext = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send();
    assert!(cleartext.is_err(), "{cleartext:?}");
}

#[test]
fn a_certificate_without_its_key_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(CRSCAN)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
        ])
        .env_remove("CRSCAN_TLS_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let output = Command::new(CRSCAN)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .env("CRSCAN_DB_AUTO_UPDATE", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
}

#[test]
fn an_unknown_service_is_unimplemented_and_logged_by_full_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = start_logging(
        &dir.path().join("data"),
        &[],
        std::fs::File::create(&log).unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let method = "/yandex.cloud.resourcemanager.v1.FolderService/Get";
    let error = runtime.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.port))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.unwrap();
        client
            .unary::<(), (), _>(
                tonic::Request::new(()),
                tonic::codegen::http::uri::PathAndQuery::from_static(method),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err()
    });
    assert_eq!(error.code(), tonic::Code::Unimplemented, "{error:?}");
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(
            |line| line.contains("gRPC method not implemented by crscan")
                && line.contains(method.trim_start_matches('/'))
        ),
        "{text}"
    );
}
