//! One image scan end to end, independent of HTTP and of the job queue: resolve the
//! manifest (picking linux/amd64 from an index), read each layer once through a
//! cache shared by all images, catalogue the flattened view, and match it against the
//! vulnerability database. The findings (`crscan_model::Finding`, in the API's list
//! order) are what the server stores and every surface renders. [`worker`] runs scans
//! as jobs of the store's queue in `crscan serve`, with the scheduler that applies
//! scan policies and rescans after a database change.
//!
//! Architecture invariant: this crate re-implements no parsing of layers or package
//! databases and no matching; it composes `crscan-image`, `crscan-catalog` and
//! `crscan-vulndb`. It is synchronous and blocking: a server calls it from a blocking
//! thread. It knows neither HTTP status codes nor SQL; its errors carry the API's
//! `google.rpc.Code` so that the caller can store them on an Operation.

mod blobs;
mod cache;
mod error;
mod freshness;
mod manifest;
mod scan;
pub mod worker;

pub use blobs::{BlobSource, OciLayoutBlobs};
pub use cache::LayerCache;
pub use error::{ErrorCode, ScanError};
pub use freshness::{DatabaseCheck, DatabaseState};
pub use manifest::{LayerRef, ResolvedImage, resolve_image};
pub use scan::{
    ScanOutcome, ScanRequest, ScanStats, inventory_image, match_inventory_outcome, open_database,
    scan_image,
};

/// The version of what a layer analysis keeps (the catalog's file interest and the
/// cached layer format). Cached layers are keyed by it, so bumping it makes every
/// layer be read again once.
pub const ANALYZER_VERSION: &str = concat!("a2-", env!("CARGO_PKG_VERSION"));

/// The image limits the hosted service documents: 2 GiB compressed and 127 layers
/// (`en/_includes/container-registry-limits.md`). The other limits keep the image
/// reader's defaults.
pub fn default_limits() -> crscan_image::Limits {
    crscan_image::Limits {
        max_image_bytes: 2 << 30,
        max_layers: 127,
        ..crscan_image::Limits::default()
    }
}
