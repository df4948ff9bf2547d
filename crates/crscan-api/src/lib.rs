//! HTTP routers for /v2/, /container-registry/v1/ and /operations/: auth, errors, OpenAPI.
