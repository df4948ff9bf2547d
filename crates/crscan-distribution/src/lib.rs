//! An OCI distribution client and the registry mirror built on it.
//!
//! - [`reference`]: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` and
//!   `docker://HOST[:PORT][/PREFIX]`, in skopeo's spelling;
//! - [`credentials`]: `--creds`, auth files and credential helpers;
//! - [`client`]: one registry over HTTP: the auth challenge (Basic, and the Bearer
//!   token flow), manifests by tag or digest, blobs streamed and checked against their
//!   digests, retries with back-off, catalog and tag paging, mounts, referrers;
//! - [`mirror`]: every repository under a prefix copied to another registry, exactly,
//!   resumably and idempotently.
//!
//! Architecture invariant: this crate trusts nothing a remote registry says. Every
//! blob and every manifest fetched by digest is checked against that digest before
//! it is used or written on, manifests are read under a size limit, and a redirect to
//! another host is refused. It knows nothing of scanning: `crscan scan` hands the
//! blobs it fetches to the same reader as a local image.

pub mod client;
pub mod credentials;
pub mod manifest;
pub mod mirror;
pub mod reference;

pub use client::{BlobReader, Client, ClientOptions};
pub use credentials::Credentials;
pub use reference::{Host, ImageReference, RegistryPrefix, Version};

/// What went wrong talking to a registry; `what` names the item (a blob, a manifest,
/// a repository's tags) and the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{text:?} is not a valid image or registry name: {reason}")]
    Reference { text: String, reason: String },
    #[error("{0}")]
    Credentials(String),
    #[error("registry {host} refused the credentials{detail}")]
    AuthRefused { host: String, detail: String },
    #[error("registry {host} denied access to {what}")]
    Denied { host: String, what: String },
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("cannot reach {what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: the registry answered {status}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: the bytes served have digest {actual}, not {expected}; nothing was kept")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{what}: {actual} bytes were served where the descriptor says {expected}; nothing was kept"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: the registry redirected to another host ({location}), which is refused")]
    CrossHostRedirect { what: String, location: String },
    #[error("{what} is not valid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the registry refused the credentials (exit status 2 in the CLI).
    pub fn is_auth_refused(&self) -> bool {
        matches!(self, Error::AuthRefused { .. })
    }
}
