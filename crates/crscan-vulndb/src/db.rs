//! The local vulnerability database: one SQLite file, built from a [`LoadReport`],
//! opened read-only for matching.
//!
//! Why SQLite (through `rusqlite`) rather than `redb`: the file is inspectable with
//! the `sqlite3` tool an operator already has, `rusqlite` is already in the workspace
//! (the metadata store uses SQLite too, so the library is linked once), and a B-tree
//! index on `(ecosystem, package)` answers a lookup in a few microseconds, which is all
//! the matcher needs. All SQL of this crate lives in this module.
//!
//! Layout: `meta` (schema version, build time, content digest), `sources` (where each
//! feed came from, its HTTP validators and record counts), `advisories` (one row per
//! advisory, its body as JSON without the affected packages) and `affected` (one row
//! per advisory and package, keyed by ecosystem and normalised package name).
//!
//! A build writes a temporary file beside the target and renames it over the target
//! only when complete, so a killed build leaves the previous database in service.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::advisory::{Advisory, Affected};
use crate::feed::{LoadReport, SourceInfo};

/// The version of the file layout; a database of another version must be rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors of the database file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("vulnerability database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("vulnerability database {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("vulnerability database {path} does not exist")]
    NotFound { path: String },
    #[error(
        "vulnerability database {path} has schema version {found}, this crscan reads version {expected}; rebuild it"
    )]
    SchemaVersion {
        path: String,
        found: String,
        expected: u32,
    },
    #[error("vulnerability database {path} has a corrupt record {record}: {message}")]
    Corrupt {
        path: String,
        record: String,
        message: String,
    },
}

/// What a database holds, for `crscan db status` and scan reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    pub schema_version: u32,
    /// Build time, seconds since the Unix epoch.
    pub built_at: i64,
    /// `sha256:` over the normalised advisories, in (feed, id) order.
    pub content_digest: String,
    pub advisory_count: u64,
    pub sources: Vec<SourceInfo>,
    /// Advisories per ecosystem key.
    pub ecosystems: Vec<(String, u64)>,
}

/// One affected-package row found by a lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectedEntry {
    /// The advisory's row, for [`Database::advisory`].
    pub advisory_row: i64,
    pub withdrawn: bool,
    pub affected: Affected,
}

/// An open database.
pub struct Database {
    connection: Connection,
    path: String,
    info: DatabaseInfo,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (
    position INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    record_count INTEGER NOT NULL,
    invalid_count INTEGER NOT NULL
);
CREATE TABLE advisories (
    row INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    id TEXT NOT NULL,
    withdrawn INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE affected (
    ecosystem TEXT NOT NULL,
    package TEXT NOT NULL,
    advisory INTEGER NOT NULL,
    position INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (ecosystem, package, advisory, position)
) WITHOUT ROWID;
";

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> DbError + '_ {
    move |source| DbError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The content digest of advisories: sha256 over their JSON, one per line, in the
/// order given (the loader's (feed, id) order).
pub fn content_digest<'a>(advisories: impl Iterator<Item = &'a Advisory>) -> String {
    let mut hasher = Sha256::new();
    for advisory in advisories {
        // Serialising plain data structures cannot fail.
        let bytes = serde_json::to_vec(advisory).unwrap_or_default();
        hasher.update(&bytes);
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

impl Database {
    /// Builds a database at `path` from loaded advisories, atomically replacing any
    /// previous file. `built_at` is the build time in seconds since the Unix epoch.
    pub fn build(path: &Path, report: &LoadReport, built_at: i64) -> Result<DatabaseInfo, DbError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let temporary = temporary_path(path);
        let _ = std::fs::remove_file(&temporary);
        let result = write_database(&temporary, report, built_at);
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result?;
        let file = std::fs::File::open(&temporary).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);
        std::fs::rename(&temporary, path).map_err(io_error(path))?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            && let Ok(directory) = std::fs::File::open(parent)
        {
            let _ = directory.sync_all();
        }
        Ok(Database::open(path)?.info)
    }

    /// Opens a database read-only, checking its schema version.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        if !path.exists() {
            return Err(DbError::NotFound {
                path: path.display().to_string(),
            });
        }
        // The file is never modified in place (a build renames a new file over it), so
        // it is opened as immutable: SQLite then takes no file locks and does not
        // re-read the header before every query, which is most of a lookup's cost.
        let uri = format!(
            "file:{}?mode=ro&immutable=1",
            uri_escape(&path.display().to_string())
        );
        let connection = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(sqlite_error(path))?;
        connection
            .execute_batch("PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;")
            .map_err(sqlite_error(path))?;
        let meta = |key: &str| -> Result<Option<String>, DbError> {
            connection
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(sqlite_error(path))
        };
        let version = meta("schema_version").unwrap_or(None).unwrap_or_default();
        if version != SCHEMA_VERSION.to_string() {
            return Err(DbError::SchemaVersion {
                path: path.display().to_string(),
                found: if version.is_empty() {
                    "none".to_owned()
                } else {
                    version
                },
                expected: SCHEMA_VERSION,
            });
        }
        let built_at = meta("built_at")?
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let content_digest = meta("content_digest")?.unwrap_or_default();
        let advisory_count: i64 = connection
            .query_row("SELECT count(*) FROM advisories", [], |row| row.get(0))
            .map_err(sqlite_error(path))?;
        let mut statement = connection
            .prepare(
                "SELECT name, location, etag, last_modified, record_count, invalid_count
                 FROM sources ORDER BY position",
            )
            .map_err(sqlite_error(path))?;
        let sources = statement
            .query_map([], |row| {
                Ok(SourceInfo {
                    name: row.get(0)?,
                    location: row.get(1)?,
                    etag: row.get(2)?,
                    last_modified: row.get(3)?,
                    record_count: row.get::<_, i64>(4)?.try_into().unwrap_or(0),
                    invalid_count: row.get::<_, i64>(5)?.try_into().unwrap_or(0),
                })
            })
            .map_err(sqlite_error(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_error(path))?;
        drop(statement);
        let mut statement = connection
            .prepare("SELECT key, value FROM meta WHERE key LIKE 'ecosystem:%' ORDER BY key")
            .map_err(sqlite_error(path))?;
        let ecosystems = statement
            .query_map([], |row| {
                let key: String = row.get(0)?;
                let value: String = row.get(1)?;
                Ok((
                    key.trim_start_matches("ecosystem:").to_owned(),
                    value.parse::<u64>().unwrap_or(0),
                ))
            })
            .map_err(sqlite_error(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_error(path))?;
        drop(statement);
        let info = DatabaseInfo {
            schema_version: SCHEMA_VERSION,
            built_at,
            content_digest,
            advisory_count: advisory_count.try_into().unwrap_or(0),
            sources,
            ecosystems,
        };
        Ok(Database {
            connection,
            path: path.display().to_string(),
            info,
        })
    }

    pub fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The affected-package rows for one ecosystem key and normalised package name.
    pub fn lookup(&self, ecosystem: &str, package: &str) -> Result<Vec<AffectedEntry>, DbError> {
        let path = Path::new(&self.path);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT advisory, withdrawn, body FROM affected
                 WHERE ecosystem = ?1 AND package = ?2 ORDER BY advisory, position",
            )
            .map_err(sqlite_error(path))?;
        let mut rows = statement
            .query(params![ecosystem, package])
            .map_err(sqlite_error(path))?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error(path))? {
            let advisory_row: i64 = row.get(0).map_err(sqlite_error(path))?;
            let withdrawn: bool = row.get(1).map_err(sqlite_error(path))?;
            let body: String = row.get(2).map_err(sqlite_error(path))?;
            let affected: Affected =
                serde_json::from_str(&body).map_err(|error| DbError::Corrupt {
                    path: self.path.clone(),
                    record: format!("affected {ecosystem}/{package}"),
                    message: error.to_string(),
                })?;
            entries.push(AffectedEntry {
                advisory_row,
                withdrawn,
                affected,
            });
        }
        Ok(entries)
    }

    /// One advisory by row, without its affected packages.
    pub fn advisory(&self, row: i64) -> Result<Advisory, DbError> {
        let path = Path::new(&self.path);
        let mut statement = self
            .connection
            .prepare_cached("SELECT body FROM advisories WHERE row = ?1")
            .map_err(sqlite_error(path))?;
        let body: String = statement
            .query_row([row], |row| row.get(0))
            .map_err(sqlite_error(path))?;
        serde_json::from_str(&body).map_err(|error| DbError::Corrupt {
            path: self.path.clone(),
            record: format!("advisory row {row}"),
            message: error.to_string(),
        })
    }

    /// One advisory by feed and id, with its affected packages.
    pub fn advisory_by_id(&self, feed: &str, id: &str) -> Result<Option<Advisory>, DbError> {
        let path = Path::new(&self.path);
        let row: Option<i64> = self
            .connection
            .query_row(
                "SELECT row FROM advisories WHERE feed = ?1 AND id = ?2",
                params![feed, id],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite_error(path))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut advisory = self.advisory(row)?;
        let mut statement = self
            .connection
            .prepare_cached("SELECT body FROM affected WHERE advisory = ?1 ORDER BY position")
            .map_err(sqlite_error(path))?;
        let bodies = statement
            .query_map([row], |row| row.get::<_, String>(0))
            .map_err(sqlite_error(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_error(path))?;
        for body in bodies {
            advisory
                .affected
                .push(
                    serde_json::from_str(&body).map_err(|error| DbError::Corrupt {
                        path: self.path.clone(),
                        record: format!("affected of {id}"),
                        message: error.to_string(),
                    })?,
                );
        }
        Ok(Some(advisory))
    }
}

/// Escapes the characters that have a meaning in an SQLite URI filename.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            other => out.push(other),
        }
    }
    out
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_else(|| "crscan.db".into());
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn write_database(path: &Path, report: &LoadReport, built_at: i64) -> Result<(), DbError> {
    let error = sqlite_error(path);
    let mut connection = Connection::open(path).map_err(&error)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 4096;",
        )
        .map_err(&error)?;
    connection.execute_batch(SCHEMA).map_err(&error)?;
    let transaction = connection.transaction().map_err(&error)?;
    let mut ecosystem_counts: std::collections::BTreeMap<String, u64> = Default::default();
    {
        let mut insert_advisory = transaction
            .prepare("INSERT INTO advisories (row, feed, id, withdrawn, body) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(&error)?;
        let mut insert_affected = transaction
            .prepare(
                "INSERT OR IGNORE INTO affected (ecosystem, package, advisory, position, withdrawn, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(&error)?;
        for (index, advisory) in report.advisories().enumerate() {
            let row = i64::try_from(index).unwrap_or(i64::MAX);
            let mut head = advisory.clone();
            let affected = std::mem::take(&mut head.affected);
            let body = serde_json::to_string(&head).unwrap_or_default();
            let withdrawn = advisory.withdrawn.is_some();
            insert_advisory
                .execute(params![row, advisory.feed, advisory.id, withdrawn, body])
                .map_err(&error)?;
            let mut seen_ecosystems: Vec<&str> = Vec::new();
            for (position, entry) in affected.iter().enumerate() {
                let body = serde_json::to_string(entry).unwrap_or_default();
                insert_affected
                    .execute(params![
                        entry.ecosystem,
                        entry.package,
                        row,
                        i64::try_from(position).unwrap_or(i64::MAX),
                        withdrawn,
                        body
                    ])
                    .map_err(&error)?;
                if !seen_ecosystems.contains(&entry.ecosystem.as_str()) {
                    seen_ecosystems.push(&entry.ecosystem);
                    *ecosystem_counts.entry(entry.ecosystem.clone()).or_default() += 1;
                }
            }
        }
        let mut insert_source = transaction
            .prepare(
                "INSERT INTO sources (position, name, location, etag, last_modified, record_count, invalid_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(&error)?;
        for (position, source) in report.sources.iter().enumerate() {
            insert_source
                .execute(params![
                    i64::try_from(position).unwrap_or(i64::MAX),
                    source.name,
                    source.location,
                    source.etag,
                    source.last_modified,
                    i64::try_from(source.record_count).unwrap_or(i64::MAX),
                    i64::try_from(source.invalid_count).unwrap_or(i64::MAX),
                ])
                .map_err(&error)?;
        }
        let mut insert_meta = transaction
            .prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(&error)?;
        insert_meta
            .execute(params!["schema_version", SCHEMA_VERSION.to_string()])
            .map_err(&error)?;
        insert_meta
            .execute(params!["built_at", built_at.to_string()])
            .map_err(&error)?;
        insert_meta
            .execute(params![
                "content_digest",
                content_digest(report.advisories())
            ])
            .map_err(&error)?;
        for (ecosystem, count) in &ecosystem_counts {
            insert_meta
                .execute(params![format!("ecosystem:{ecosystem}"), count.to_string()])
                .map_err(&error)?;
        }
    }
    transaction.commit().map_err(&error)?;
    // No ANALYZE: with the bundled SQLite's STAT4, statistics make every execution of
    // a cached lookup statement re-plan it for its bound values, which costs more
    // than the lookup itself. The primary key is the only sensible plan anyway.
    connection.close().map_err(|(_, source)| error(source))?;
    Ok(())
}
