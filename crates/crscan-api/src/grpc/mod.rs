//! The management API over gRPC: the Yandex Cloud services the official SDKs, `yc`
//! and Terraform call (`yandex.cloud.containerregistry.v1`, `yandex.cloud.operation`,
//! `yandex.cloud.endpoint`, `yandex.cloud.iam.v1`), from crscan's own `.proto` files
//! (`proto/`, compiled by `build.rs`).
//!
//! Each method authenticates from the `authorization` metadata, calls the same
//! [`crate::service`] operation as its REST route, and renders the same domain value
//! ([`convert`]). Errors carry the REST answer's code and message and a
//! `google.rpc.RequestInfo` detail with the request id of the access log. Methods
//! crscan does not have answer `UNIMPLEMENTED`, and the access log names them in full.

mod convert;
mod lifecycle;
mod services;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use prost::Message;
use tonic::Status;

use crate::AppState;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::service::{Call, check_idempotency_key};

/// The generated messages, services and clients, one module per proto package.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    pub mod google {
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
    pub mod yandex {
        pub mod cloud {
            pub mod access {
                tonic::include_proto!("yandex.cloud.access");
            }
            pub mod operation {
                tonic::include_proto!("yandex.cloud.operation");
            }
            pub mod endpoint {
                tonic::include_proto!("yandex.cloud.endpoint");
            }
            pub mod iam {
                pub mod v1 {
                    tonic::include_proto!("yandex.cloud.iam.v1");
                }
            }
            pub mod containerregistry {
                pub mod v1 {
                    tonic::include_proto!("yandex.cloud.containerregistry.v1");
                }
            }
        }
    }
}

/// The header a gRPC request is recognised by.
pub(crate) fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// The `host:port` the client dialled (`:authority`, or `Host`), kept for
/// `ApiEndpointService`.
#[derive(Debug, Clone)]
pub(crate) struct Dialled(pub String);

/// What every method needs: the app's state.
#[derive(Clone)]
pub(crate) struct GrpcApi {
    state: AppState,
}

impl GrpcApi {
    /// The caller named by the `authorization` metadata.
    fn principal<T>(&self, request: &tonic::Request<T>) -> Result<Principal, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        self.state
            .auth
            .authenticate_authorization(authorization)
            .map_err(|error| status(ApiError::from(error)))
    }

    /// The call context of a mutating method: the caller and its `idempotency-key`.
    fn call<T>(&self, request: &tonic::Request<T>) -> Result<Call, Status> {
        let principal = self.principal(request)?;
        let idempotency_key = match request.metadata().get("idempotency-key") {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| status(ApiError::invalid("Idempotency-Key is not ASCII")))?;
                Some(check_idempotency_key(text).map_err(status)?)
            }
        };
        Ok(Call {
            principal,
            idempotency_key,
        })
    }
}

/// An [`ApiError`] as a gRPC status: the same code and message as the REST answer,
/// and a `google.rpc.Status` in `grpc-status-details-bin` whose `RequestInfo` detail
/// carries this request's id.
pub(crate) fn status(error: ApiError) -> Status {
    use proto::google::rpc;
    let request_id = crate::request_id();
    let details = rpc::Status {
        code: error.code,
        message: error.message.clone(),
        details: vec![convert::any(
            "google.rpc.RequestInfo",
            &rpc::RequestInfo {
                request_id,
                serving_data: String::new(),
            },
        )],
    };
    Status::with_details(
        tonic::Code::from(error.code),
        error.message,
        details.encode_to_vec().into(),
    )
}

/// The gRPC services, one axum router; methods not among them answer
/// `UNIMPLEMENTED`.
pub(crate) fn router(state: AppState) -> Router {
    use proto::yandex::cloud::containerregistry::v1 as cr;
    use proto::yandex::cloud::{endpoint, iam, operation};
    let api = GrpcApi { state };
    // Requests are small messages: at most the REST API's body limit, refused before
    // the method runs.
    let limit = crate::rest::MAX_BODY_BYTES;
    let routes = tonic::service::Routes::new(
        cr::scanner_service_server::ScannerServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        cr::image_service_server::ImageServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        cr::repository_service_server::RepositoryServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        cr::registry_service_server::RegistryServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        cr::scan_policy_service_server::ScanPolicyServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        cr::lifecycle_policy_service_server::LifecyclePolicyServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        operation::operation_service_server::OperationServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        endpoint::api_endpoint_service_server::ApiEndpointServiceServer::new(api.clone())
            .max_decoding_message_size(limit),
    )
    .add_service(
        iam::v1::iam_token_service_server::IamTokenServiceServer::new(api)
            .max_decoding_message_size(limit),
    );
    routes
        .into_axum_router()
        .layer(axum::middleware::from_fn(dialled))
}

/// Keeps the address the client dialled for the endpoint service.
async fn dialled(mut request: Request, next: Next) -> Response {
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        });
    if let Some(authority) = authority {
        request.extensions_mut().insert(Dialled(authority));
    }
    next.run(request).await
}

/// The `grpc-status` of an answer: from its headers when the answer is an error
/// (trailers only), else OK (the status then comes in the trailers).
pub(crate) fn answer_status(response: &Response) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value: &HeaderValue| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}
