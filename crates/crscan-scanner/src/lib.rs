//! One image scan end to end, independent of HTTP and of the job queue, and the one
//! path every surface takes from an image to findings: resolve the manifest
//! (`crscan_image::resolve_manifest`, linux/amd64 from an index unless asked
//! otherwise), read each layer once through the layer cache shared by all images
//! (`crscan_image::read_layers`), catalogue the flattened view (the catalog folds the
//! same package found twice into one), and match it against the vulnerability
//! database. `crscan scan`, `crscan sbom`, the server's workers and its rescans all
//! call [`inventory_of`] and [`match_findings`]; the findings
//! (`crscan_model::Finding`, in the API's list order) are what the server stores and
//! every surface renders. [`worker`] runs scans
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
pub mod gc;
pub mod published;
mod scan;
pub mod worker;

pub use blobs::RegistryBlobs;
pub use cache::{CacheReport, LayerCache};
pub use error::{ErrorCode, ScanError};
pub use freshness::{DatabaseCheck, DatabaseState};
pub use scan::{
    ScanOutcome, ScanRequest, ScanStats, inventory_image, inventory_of, inventory_source,
    match_findings, match_inventory_outcome, open_database, scan_image,
};

/// The version of what a layer analysis keeps (the catalog's file interest and the
/// cached layer format). Cached layers are keyed by it, so bumping it makes every
/// layer be read again once.
/// (a3: layers carry their diff ID; the catalog folds duplicate packages.)
pub const ANALYZER_VERSION: &str = concat!("a3-", env!("CARGO_PKG_VERSION"));

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
