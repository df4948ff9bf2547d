//! The two error surfaces and their one mapping to HTTP statuses each: OCI distribution
//! errors (`{"errors":[{"code","message"}]}`, spec "Error Codes"; `detail` is optional
//! and crscan has none to give) for `/v2/`,
//! and `google.rpc.Status` bodies (`{"code","message","details"}`, contract §1.7) for the
//! management API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crscan_registry::RegistryError;
use crscan_store::StoreError;
use serde_json::json;

use crate::AuthError;

/// An error answered on `/v2/`.
#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra headers (`Range` on 416, `WWW-Authenticate` on 401).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn unauthorized() -> OciError {
        let mut error = OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        error.headers.push((
            header::WWW_AUTHENTICATE,
            "Basic realm=\"crscan\"".to_owned(),
        ));
        error
    }

    pub fn from_auth(error: AuthError) -> OciError {
        match error {
            AuthError::Unauthenticated => OciError::unauthorized(),
            AuthError::Denied => OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                "requested access to the resource is denied",
            ),
        }
    }
}

impl From<RegistryError> for OciError {
    fn from(error: RegistryError) -> OciError {
        let status = match &error {
            RegistryError::BlobUnknown(_)
            | RegistryError::BlobUploadUnknown(_)
            | RegistryError::ManifestUnknown(_)
            | RegistryError::NameUnknown(_) => StatusCode::NOT_FOUND,
            RegistryError::RangeInvalid { .. }
            | RegistryError::UploadBusy(_)
            | RegistryError::ContentRangeInvalid(_)
            | RegistryError::ChunkLengthMismatch { .. }
            | RegistryError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            RegistryError::ManifestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RegistryError::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::Store(StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
            RegistryError::Store(store) if store.is_unavailable() => {
                crscan_metrics::global().errors.inc(&["store"]);
                tracing::warn!(%error, "the metadata store is unavailable");
                let mut oci = OciError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "the metadata store is unavailable; try again",
                );
                oci.headers.push((header::RETRY_AFTER, "1".to_owned()));
                return oci;
            }
            RegistryError::Store(_) | RegistryError::Internal(_) => {
                let source = if matches!(error, RegistryError::Store(_)) {
                    "store"
                } else {
                    "blob"
                };
                crscan_metrics::global().errors.inc(&[source]);
                StatusCode::INTERNAL_SERVER_ERROR
            }
            RegistryError::Unavailable(_) => {
                crscan_metrics::global().errors.inc(&["blob"]);
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "registry request failed");
        }
        let mut oci = OciError::new(status, error.code(), error.to_string());
        match error {
            RegistryError::RangeInvalid {
                expected: offset, ..
            }
            | RegistryError::ChunkLengthMismatch { offset, .. } => {
                oci.headers
                    .push((header::RANGE, format!("0-{}", offset.max(1) - 1)));
            }
            RegistryError::RangeNotSatisfiable { size } => {
                oci.headers
                    .push((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            _ => {}
        }
        oci
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message}]});
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// A `google.rpc.Status` error of the management API: a `google.rpc.Code` and a
/// message naming the failing value. The same error is answered over REST (with the
/// HTTP status of its code, contract §1.7) and over gRPC.
#[derive(Debug)]
pub struct ApiError {
    pub code: i32,
    pub message: String,
    /// An HTTP status other than the code's (413 for a body over the limit).
    http_status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(code: i32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            http_status: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(3, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(5, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(13, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> ApiError {
        ApiError::new(12, message)
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(16, "a valid bearer token is required")
    }

    pub fn permission_denied() -> ApiError {
        ApiError::new(7, "the token lacks the role this call needs")
    }

    /// A request body over `limit` bytes: `RESOURCE_EXHAUSTED`, answered over HTTP
    /// as 413.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError {
            http_status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            ..ApiError::new(
                8,
                format!("request body is larger than the limit of {limit} bytes"),
            )
        }
    }

    /// The HTTP status of a gRPC code (contract §1.7).
    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.http_status {
            return status;
        }
        match self.code {
            1 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            3 | 9 | 11 => StatusCode::BAD_REQUEST,
            4 => StatusCode::GATEWAY_TIMEOUT,
            5 => StatusCode::NOT_FOUND,
            6 | 10 => StatusCode::CONFLICT,
            7 => StatusCode::FORBIDDEN,
            8 => StatusCode::TOO_MANY_REQUESTS,
            12 => StatusCode::NOT_IMPLEMENTED,
            14 => StatusCode::SERVICE_UNAVAILABLE,
            16 => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match &error {
            StoreError::NotFound { .. } => ApiError::not_found(error.to_string()),
            StoreError::AlreadyExists { .. } | StoreError::OneRegistryPerFolder { .. } => {
                ApiError::new(6, error.to_string())
            }
            StoreError::FailedPrecondition(_) => ApiError::new(9, error.to_string()),
            _ if error.is_unavailable() => {
                crscan_metrics::global().errors.inc(&["store"]);
                tracing::warn!(%error, "the metadata store is unavailable");
                ApiError::new(14, "the metadata store is unavailable; try again")
            }
            _ => {
                crscan_metrics::global().errors.inc(&["store"]);
                tracing::error!(%error, "store failure");
                ApiError::internal("internal store error")
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        match error {
            RegistryError::Store(store) => store.into(),
            RegistryError::NameInvalid(_) | RegistryError::TagInvalid(_) => {
                ApiError::invalid(error.to_string())
            }
            RegistryError::NameUnknown(_)
            | RegistryError::ManifestUnknown(_)
            | RegistryError::BlobUnknown(_) => ApiError::not_found(error.to_string()),
            RegistryError::Unavailable(message) => {
                crscan_metrics::global().errors.inc(&["blob"]);
                tracing::warn!(error = %message, "blob backend unavailable");
                ApiError::new(14, message)
            }
            other => {
                tracing::error!(error = %other, "registry failure");
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = crate::request_id();
        let body = crate::rest::wire::status(self.code, &self.message, &request_id);
        let mut response = (self.status(), axum::Json(body)).into_response();
        if self.code == 16 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"crscan\""),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Unauthenticated => ApiError::unauthenticated(),
            AuthError::Denied => ApiError::permission_denied(),
        }
    }
}
