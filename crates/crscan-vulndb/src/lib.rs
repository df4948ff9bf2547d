//! Vulnerability feeds into one advisory model, the local database, CVSS, and matching.
//!
//! Layers, from the bottom: [`advisory`] (the model), [`feed`] (one private wire
//! format per feed, and a loader with diagnostics), [`cvss`] (base scores),
//! [`db`] (the SQLite file), [`matcher`] (inventory → findings).
//!
//! Architecture invariant: this crate never opens a network connection and never
//! reads the clock; callers pass files or bytes, and the build time. It reads and
//! writes local files only (feeds and the database).

pub mod advisory;
pub mod cvss;
pub mod db;
pub mod ecosystem;
pub mod feed;
pub mod matcher;

pub use advisory::{Advisory, Affected, AffectedStatus, FeedKind, SeverityStatement};
pub use db::{AffectedEntry, Database, DatabaseInfo, DbError, SCHEMA_VERSION};
pub use feed::{FeedCounts, LoadReport, SourceInfo};
pub use matcher::{
    Finding, FindingStatus, MatchError, MatchOptions, MatchReport, SeveritySource, match_inventory,
    match_inventory_with,
};
