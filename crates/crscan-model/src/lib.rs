//! The shared vocabulary of crscan: the types that cross crate boundaries.
//!
//! Architecture invariant: this crate does no I/O, is not async and never reads the
//! clock. Every type here validates itself on construction, so the rest of the code
//! can rely on a `Digest` being a well-formed digest and a `Purl` being well-formed.

pub mod digest;
pub mod files;
pub mod finding;
pub mod package;
pub mod purl;
pub mod severity;
pub mod time;

pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use files::{FileInterest, FileVersion, FileView, ImageFile, Keep};
pub use finding::{
    ApiFields, CvssScore, CvssVersion, Finding, FindingStatus, SeverityCounts, SeveritySource,
};
pub use package::{Diagnostic, Inventory, OsRelease, Package, PackageType, pep503_normalize};
pub use purl::Purl;
pub use severity::Severity;
