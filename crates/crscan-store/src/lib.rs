//! Metadata behind one domain API, on SQLite (the embedded default) and PostgreSQL.
//!
//! Callers see plain domain types ([`Registry`], [`Repository`], [`Image`],
//! [`Operation`]) and methods on [`Store`]; the SQL and the rows stay inside this crate.
//! Both backends run the same hand-written SQL through sqlx's `Any` driver with `$n`
//! placeholders; each backend has its own migrations folder (`migrations/sqlite`,
//! `migrations/postgres`) applied by [`migrate`]. Times are stored as Unix milliseconds,
//! JSON values as text.
//!
//! Architecture invariant: no SQL or row type crosses this crate's boundary, and nothing
//! here knows HTTP. The scanner's tables (scan results, policies, the job queue) are meant
//! to be added as further migrations and modules beside `operations`.

mod ids;
mod migrate;
mod model;
mod store;

pub use ids::{IdKind, new_id};
pub use model::*;
pub use store::scans::{
    ImageScanAge, Job, NewScan, ScanCompletion, ScanOrder, ScanPolicy, ScanQuery, ScanResult,
    ScanStatus, StoredVulnerability, VulnerabilityQuery, retention_victims,
};
pub use store::{Backend, Store, now};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("store URL {0:?} is not sqlite:// or postgres://")]
    BadUrl(String),
    #[error("stored value {0:?} is malformed")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// A unique-constraint violation: a concurrent writer inserted the same key
    /// between this writer's check and its insert (PostgreSQL has no write gate).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(error)) if error.is_unique_violation())
    }
}
