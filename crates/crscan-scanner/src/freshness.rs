//! Whether the vulnerability database a server scans with is there and fresh enough:
//! one answer for the startup log, the scheduler's periodic warning and `/readyz`.
//!
//! A stale database still scans (the findings are only as new as the feeds), so it is
//! a warning, never a refusal; a missing one makes every scan end in
//! `FAILED_PRECONDITION`, and the message says how to get one. A database with no
//! advisories is `unusable`: it would report every image clean. While `crscan serve
//! --db-from` builds the first database, the state is `building`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// Where the database is and how old it may grow before the server warns.
#[derive(Debug, Clone)]
pub struct DatabaseCheck {
    pub path: PathBuf,
    pub max_age_hours: u64,
    /// Set while this process builds the first database (`--db-from`); clones share it.
    pub building: Arc<AtomicBool>,
}

/// What [`DatabaseCheck::state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseState {
    Fresh {
        built_at: i64,
        age_hours: u64,
        advisories: u64,
        /// The database's content digest: a change of file with a new digest is a
        /// change of advisories.
        digest: String,
    },
    Stale {
        built_at: i64,
        age_hours: u64,
        advisories: u64,
        digest: String,
    },
    /// No database file yet.
    Missing,
    /// No database file yet, and this process is building the first one.
    Building,
    /// A file that cannot be used (corrupt, wrong schema); the reason.
    Unusable(String),
}

impl DatabaseCheck {
    /// The check of the database at `path`, stale past `max_age_hours`.
    pub fn new(path: PathBuf, max_age_hours: u64) -> DatabaseCheck {
        DatabaseCheck {
            path,
            max_age_hours,
            building: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Says whether the first database is being built now.
    pub fn set_building(&self, building: bool) {
        self.building.store(building, Ordering::SeqCst);
    }

    /// Opens the database and reads its build time (blocking: SQLite).
    pub fn state(&self) -> DatabaseState {
        self.state_at(crscan_store::now() / 1000)
    }

    fn state_at(&self, now_seconds: i64) -> DatabaseState {
        match crscan_vulndb::Database::open(&self.path) {
            Ok(database) if database.info().advisory_count == 0 => DatabaseState::Unusable(
                "it holds no advisories, so every image would look clean".to_owned(),
            ),
            Ok(database) => {
                let info = database.info();
                let age_hours =
                    u64::try_from((now_seconds - info.built_at).max(0)).unwrap_or(0) / 3600;
                let (built_at, advisories, digest) = (
                    info.built_at,
                    info.advisory_count,
                    info.content_digest.clone(),
                );
                if age_hours > self.max_age_hours {
                    DatabaseState::Stale {
                        built_at,
                        age_hours,
                        advisories,
                        digest,
                    }
                } else {
                    DatabaseState::Fresh {
                        built_at,
                        age_hours,
                        advisories,
                        digest,
                    }
                }
            }
            Err(crscan_vulndb::DbError::NotFound { .. })
                if self.building.load(Ordering::SeqCst) =>
            {
                DatabaseState::Building
            }
            Err(crscan_vulndb::DbError::NotFound { .. }) => DatabaseState::Missing,
            Err(error) => DatabaseState::Unusable(error.to_string()),
        }
    }

    /// A sentence a person can act on; `None` when the database is fresh.
    pub fn warning(&self, state: &DatabaseState) -> Option<String> {
        let path = self.path.display();
        let rebuild = format!(
            "`crscan db update`, or, where the network cannot be reached, `crscan db build --from PATH --db {path}`"
        );
        match state {
            DatabaseState::Fresh { .. } => None,
            DatabaseState::Stale { age_hours, .. } => Some(format!(
                "the vulnerability database {path} is {age_hours} hours old, over the {} allowed; scans run but miss newer advisories; refresh it: run {rebuild}",
                self.max_age_hours
            )),
            DatabaseState::Missing => Some(format!(
                "there is no vulnerability database at {path}; scans end in FAILED_PRECONDITION until one is made: run {rebuild}"
            )),
            DatabaseState::Building => Some(format!(
                "the vulnerability database {path} is being built from the --db-from feeds; scans wait in FAILED_PRECONDITION until it is ready"
            )),
            DatabaseState::Unusable(reason) => Some(format!(
                "the vulnerability database cannot be used ({reason}); scans end in FAILED_PRECONDITION until it is replaced: run {rebuild}"
            )),
        }
    }

    /// The content digest, when the database can be used.
    pub fn digest(state: &DatabaseState) -> Option<&str> {
        match state {
            DatabaseState::Fresh { digest, .. } | DatabaseState::Stale { digest, .. } => {
                Some(digest)
            }
            DatabaseState::Missing | DatabaseState::Building | DatabaseState::Unusable(_) => None,
        }
    }

    /// The `vulnerabilityDatabase` member of the `/readyz` answer.
    pub fn to_json(&self, state: &DatabaseState) -> Value {
        let mut value = match state {
            DatabaseState::Fresh {
                built_at,
                age_hours,
                advisories,
                digest,
            }
            | DatabaseState::Stale {
                built_at,
                age_hours,
                advisories,
                digest,
            } => json!({
                "digest": digest,
                "status": if matches!(state, DatabaseState::Fresh { .. }) { "fresh" } else { "stale" },
                "builtAt": crscan_model::time::rfc3339_millis(built_at.saturating_mul(1000)),
                "ageHours": age_hours,
                "maxAgeHours": self.max_age_hours,
                "advisories": advisories,
            }),
            DatabaseState::Missing => json!({"status": "missing"}),
            DatabaseState::Building => json!({"status": "building"}),
            DatabaseState::Unusable(_) => json!({"status": "unusable"}),
        };
        value["path"] = json!(self.path.display().to_string());
        if let Some(warning) = self.warning(state) {
            value["message"] = json!(warning);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_database_says_how_to_get_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let check = DatabaseCheck::new(dir.path().join("none.db"), 72);
        let state = check.state();
        assert_eq!(state, DatabaseState::Missing);
        check.clone().set_building(true);
        let building = check.state();
        assert_eq!(building, DatabaseState::Building);
        assert_eq!(check.to_json(&building)["status"], "building");
        assert!(
            check
                .warning(&building)
                .is_some_and(|warning| warning.contains("being built")),
            "{building:?}"
        );
        check.set_building(false);
        let warning = check.warning(&state).expect("a warning");
        assert!(warning.contains("crscan db update"), "{warning}");
        assert!(warning.contains("crscan db build --from PATH"), "{warning}");
        assert_eq!(check.to_json(&state)["status"], "missing");
    }

    #[test]
    fn an_old_database_is_stale_and_a_new_one_fresh() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crscan.db");
        let built_at = 1_700_000_000;
        let check = DatabaseCheck::new(path.clone(), 72);

        // A database without advisories would call every image clean: unusable.
        let empty = crscan_vulndb::LoadReport::default();
        crscan_vulndb::Database::build(&path, &empty, built_at).expect("build");
        let state = check.state_at(built_at);
        assert!(matches!(state, DatabaseState::Unusable(_)), "{state:?}");
        assert_eq!(check.to_json(&state)["status"], "unusable");

        let mut report = crscan_vulndb::LoadReport::default();
        report
            .load_path(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/data/vulndb/alpine-secdb/v3.4/main.yaml"),
            )
            .expect("the shared Alpine feed");
        crscan_vulndb::Database::build(&path, &report, built_at).expect("build");
        let fresh = check.state_at(built_at + 71 * 3600);
        assert!(
            matches!(fresh, DatabaseState::Fresh { age_hours: 71, .. }),
            "{fresh:?}"
        );
        assert_eq!(check.warning(&fresh), None);
        let stale = check.state_at(built_at + 100 * 3600);
        assert!(
            matches!(stale, DatabaseState::Stale { age_hours: 100, .. }),
            "{stale:?}"
        );
        let json = check.to_json(&stale);
        assert_eq!(json["status"], "stale");
        assert_eq!(json["ageHours"], 100);
        assert_eq!(json["builtAt"], "2023-11-14T22:13:20.000Z");
        assert!(
            json["message"]
                .as_str()
                .is_some_and(|m| m.contains("100 hours old"))
        );
    }
}
