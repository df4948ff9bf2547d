//! Compiles crscan's own `.proto` files (`proto/`) into Rust with `protox`, a
//! pure-Rust protobuf compiler, so no `protoc` binary is needed; the well-known
//! `google.protobuf` types come from `prost-types`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "yandex/cloud/access/access.proto",
    "yandex/cloud/operation/operation.proto",
    "yandex/cloud/operation/operation_service.proto",
    "yandex/cloud/endpoint/api_endpoint.proto",
    "yandex/cloud/endpoint/api_endpoint_service.proto",
    "yandex/cloud/iam/v1/iam_token_service.proto",
    "yandex/cloud/containerregistry/v1/blob.proto",
    "yandex/cloud/containerregistry/v1/image.proto",
    "yandex/cloud/containerregistry/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/ip_permission.proto",
    "yandex/cloud/containerregistry/v1/lifecycle_policy.proto",
    "yandex/cloud/containerregistry/v1/lifecycle_policy_service.proto",
    "yandex/cloud/containerregistry/v1/registry.proto",
    "yandex/cloud/containerregistry/v1/registry_service.proto",
    "yandex/cloud/containerregistry/v1/repository.proto",
    "yandex/cloud/containerregistry/v1/repository_service.proto",
    "yandex/cloud/containerregistry/v1/scan_policy.proto",
    "yandex/cloud/containerregistry/v1/scan_policy_service.proto",
    "yandex/cloud/containerregistry/v1/scanner.proto",
    "yandex/cloud/containerregistry/v1/scanner_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let descriptors = protox::compile(PROTOS, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
