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
//! here knows HTTP or an API's wire format. The registry's tables are in `store.rs`, the
//! scanner's (scan results and their findings, policies, the job queue) in
//! `store/scans.rs`; lifecycle policies, their dry runs and the one evaluation of
//! their rules in `store/lifecycle.rs`.

mod ids;
mod migrate;
mod model;
mod store;

pub use ids::{IdKind, new_id};
pub use model::*;
pub use store::Store;
pub use store::access::{AccessBinding, IpAction, IpPermission};
pub use store::lifecycle::{
    DryRunResult, LIFECYCLE_DAY_SECONDS, LifecyclePolicy, LifecyclePolicyOrder,
    LifecyclePolicyQuery, LifecycleRule, LifecycleRuleError, LifecycleStatus, lifecycle_victims,
};
pub use store::published::DatabasePublication;
pub use store::scans::overview::{RepositorySummary, ScanScope};
pub use store::scans::{
    ImageScanAge, Job, MAX_RESCAN_PERIOD_SECONDS, MIN_RESCAN_PERIOD_SECONDS, NewScan, PushRule,
    RuleError, ScanCompletion, ScanOrder, ScanPolicy, ScanQuery, ScanResult, ScanRules, ScanStatus,
    ScheduledRule, VulnerabilityQuery, retention_victims,
};
pub use store::uploads::UploadSession;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The current time in Unix milliseconds, as the store records it.
pub fn now() -> i64 {
    now_millis()
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },
    /// A second registry in a folder: the hosted service allows one per folder.
    #[error(
        "folder {folder_id:?} already has registry {name:?} ({id}); a folder holds one registry, as in the hosted service"
    )]
    OneRegistryPerFolder {
        folder_id: String,
        name: String,
        id: String,
    },
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

    /// The database could not be reached or is shutting down, restarting or full of
    /// connections: a request may succeed when tried again (`UNAVAILABLE`, HTTP 503),
    /// unlike a failure of crscan itself (`INTERNAL`).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLSTATE class 08 (connection exception), 57P01-57P03 (the server is
            // shutting down or starting), 53300 (too many connections).
            StoreError::Database(sqlx::Error::Database(error)) => {
                error.code().is_some_and(|code| {
                    code.starts_with("08") || code.starts_with("57P") || code == "53300"
                })
            }
            _ => false,
        }
    }
}
