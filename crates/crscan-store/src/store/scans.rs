//! The scanner's tables behind the domain API: scan results and their
//! vulnerabilities, scan policies (one per registry), and the job queue the scan
//! workers take work from.
//!
//! The queue: a job is claimed by setting its lease (`lease_owner`, `lease_until`);
//! a live worker renews the lease; a job whose lease expired (its worker died) is
//! claimed again; a failed attempt goes back to the queue with a later `run_after`.
//! PostgreSQL claims with `FOR UPDATE SKIP LOCKED`; SQLite serialises writers. A
//! job's result is written in the same transaction that checks its lease, so a scan
//! is finished by at most one worker.

use crscan_model::{Finding, Severity, SeverityCounts};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{ErrorStatus, Operation, OperationResponse, OperationResult, PageStart};
use crate::store::{
    Backend, IDEMPOTENCY_KEY_LIFETIME_MS, Keyset, Store, bind_operation, now_millis,
    record_operation,
};
use crate::{IdKind, StoreError, new_id};

pub(crate) mod overview;

/// `ScanResult.Status` (contract §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScanStatus {
    Running,
    Ready,
    Error,
}

impl ScanStatus {
    pub fn number(self) -> i64 {
        match self {
            ScanStatus::Running => 1,
            ScanStatus::Ready => 2,
            ScanStatus::Error => 3,
        }
    }

    pub fn from_number(number: i64) -> Option<ScanStatus> {
        match number {
            1 => Some(ScanStatus::Running),
            2 => Some(ScanStatus::Ready),
            3 => Some(ScanStatus::Error),
            _ => None,
        }
    }

    /// The enum value's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            ScanStatus::Running => "RUNNING",
            ScanStatus::Ready => "READY",
            ScanStatus::Error => "ERROR",
        }
    }

    pub fn parse(name: &str) -> Option<ScanStatus> {
        [ScanStatus::Running, ScanStatus::Ready, ScanStatus::Error]
            .into_iter()
            .find(|status| status.name() == name)
    }
}

/// One scan of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    pub id: String,
    pub image_id: String,
    pub repository_id: String,
    pub registry_id: String,
    pub operation_id: String,
    pub status: ScanStatus,
    pub created_at: i64,
    /// When the scan finished.
    pub scanned_at: Option<i64>,
    pub counts: SeverityCounts,
    pub manifest_digest: Option<String>,
    pub database_digest: Option<String>,
    /// Why a failed scan failed.
    pub error: Option<ErrorStatus>,
}

/// A scan to queue: its operation is recorded with it.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub image_id: String,
    pub repository_id: String,
    pub registry_id: String,
    /// The operation, not done, whose metadata names the scan result id below.
    pub operation: Operation,
    pub scan_result_id: String,
}

/// How to order scan results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOrder {
    /// When the scan finished (running scans by when they were queued).
    ScannedAt,
    Status,
}

/// Which scan results to list.
#[derive(Debug, Clone)]
pub struct ScanQuery {
    pub image_id: Option<String>,
    pub repository_id: Option<String>,
    pub status: Option<ScanStatus>,
    pub order: ScanOrder,
    pub descending: bool,
    pub start: PageStart,
    pub limit: i64,
}

/// Which vulnerabilities of a scan to list; ordered by severity (CRITICAL first
/// unless `descending`), then name, then package.
#[derive(Debug, Clone)]
pub struct VulnerabilityQuery {
    pub scan_result_id: String,
    pub severity: Option<Severity>,
    pub name: Option<String>,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub scan_result_id: String,
    pub registry_id: String,
    /// Attempts including this one.
    pub attempts: i64,
    pub cancel_requested: bool,
}

/// How a scan ended: the result's new state and, for a READY scan, its findings
/// (the counters are counted from them).
#[derive(Debug, Clone)]
pub struct ScanCompletion {
    pub status: ScanStatus,
    /// When the scan finished (Unix milliseconds).
    pub scanned_at: i64,
    pub findings: Vec<Finding>,
    pub manifest_digest: Option<String>,
    pub database_digest: Option<String>,
    pub error: Option<ErrorStatus>,
}

/// A scan policy (contract §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPolicy {
    pub id: String,
    pub registry_id: String,
    pub name: String,
    pub description: String,
    pub rules: ScanRules,
    pub disabled: bool,
    pub created_at: i64,
}

/// A policy's rules (`ScanRules`): scan on push, and rescan on a schedule. New rules
/// are built only through the validating constructors. Stored rules are read back as
/// they were written (also in the form of stores older than version 4, whose rules
/// were the API's JSON); rules that do not read are an error, never the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRules {
    #[serde(default, alias = "pushRule")]
    pub push_rule: Option<PushRule>,
    #[serde(default, alias = "scheduleRules")]
    pub schedule_rules: Vec<ScheduledRule>,
}

/// `PushRule`: scan the repositories under these prefixes when an image is pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRule {
    #[serde(alias = "repositoryPrefixes")]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// `ScheduledRule`: rescan the repositories under these prefixes once their newest
/// scan is older than the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScheduledRuleRow")]
pub struct ScheduledRule {
    repository_prefixes: Vec<String>,
    /// Whole seconds.
    rescan_period_seconds: i64,
    pub disabled: bool,
}

/// A stored scheduled rule: this version's form, or the API JSON that stores before
/// version 4 kept (`"rescanPeriod": "604800s"`).
#[derive(Deserialize)]
struct ScheduledRuleRow {
    #[serde(alias = "repositoryPrefixes")]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    rescan_period_seconds: Option<i64>,
    #[serde(default, rename = "rescanPeriod")]
    rescan_period: Option<String>,
    #[serde(default)]
    disabled: bool,
}

impl TryFrom<ScheduledRuleRow> for ScheduledRule {
    type Error = String;

    fn try_from(row: ScheduledRuleRow) -> Result<ScheduledRule, String> {
        let seconds = match (row.rescan_period_seconds, &row.rescan_period) {
            (Some(seconds), _) => seconds,
            (None, Some(text)) => text
                .strip_suffix('s')
                .and_then(|whole| whole.split('.').next())
                .and_then(|whole| whole.parse::<i64>().ok())
                .ok_or_else(|| format!("stored rescan period {text:?} does not read"))?,
            (None, None) => return Err("stored scheduled rule has no rescan period".to_owned()),
        };
        Ok(ScheduledRule {
            repository_prefixes: row.repository_prefixes,
            rescan_period_seconds: seconds,
            disabled: row.disabled,
        })
    }
}

/// Why a rule was refused; the API names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("repositoryPrefixes must contain at least one element")]
    NoPrefixes,
    #[error(
        "repositoryPrefixes has an invalid prefix {0:?} (expected * or a repository path such as \"app/web\")"
    )]
    BadPrefix(String),
    #[error(
        "rescanPeriod {0}s is shorter than one day (86400s); scheduled rescans run at most daily"
    )]
    PeriodTooShort(i64),
    #[error("rescanPeriod {0}s is longer than 3650 days")]
    PeriodTooLong(i64),
}

/// The shortest rescan period a scheduled rule may have: one day.
pub const MIN_RESCAN_PERIOD_SECONDS: i64 = 86_400;

/// The longest rescan period a scheduled rule may have: ten years.
pub const MAX_RESCAN_PERIOD_SECONDS: i64 = 3650 * 86_400;

fn check_prefixes(prefixes: Vec<String>) -> Result<Vec<String>, RuleError> {
    if prefixes.is_empty() {
        return Err(RuleError::NoPrefixes);
    }
    for prefix in &prefixes {
        if !valid_prefix(prefix) {
            return Err(RuleError::BadPrefix(prefix.clone()));
        }
    }
    Ok(prefixes)
}

/// `\*|[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*` (contract §4).
fn valid_prefix(prefix: &str) -> bool {
    if prefix == "*" {
        return true;
    }
    prefix.split('/').all(|part| {
        !part.is_empty()
            && part.split(['.', '_', '-']).all(|piece| {
                !piece.is_empty()
                    && piece
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    })
}

/// Whether any prefix covers the repository: `*` covers all; a prefix covers the
/// repository of that name and its children. Prefixes may name the repository with
/// or without the leading registry id.
fn covers(prefixes: &[String], registry_id: &str, repository: &str) -> bool {
    let short = repository
        .strip_prefix(registry_id)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(repository);
    prefixes.iter().any(|prefix| {
        let prefix = prefix.trim_end_matches('/');
        prefix == "*"
            || [repository, short].iter().any(|name| {
                *name == prefix
                    || name
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    })
}

impl PushRule {
    pub fn new(repository_prefixes: Vec<String>, disabled: bool) -> Result<PushRule, RuleError> {
        Ok(PushRule {
            repository_prefixes: check_prefixes(repository_prefixes)?,
            disabled,
        })
    }

    pub fn repository_prefixes(&self) -> &[String] {
        &self.repository_prefixes
    }
}

impl ScheduledRule {
    pub fn new(
        repository_prefixes: Vec<String>,
        rescan_period_seconds: i64,
        disabled: bool,
    ) -> Result<ScheduledRule, RuleError> {
        if rescan_period_seconds < MIN_RESCAN_PERIOD_SECONDS {
            return Err(RuleError::PeriodTooShort(rescan_period_seconds));
        }
        if rescan_period_seconds > MAX_RESCAN_PERIOD_SECONDS {
            return Err(RuleError::PeriodTooLong(rescan_period_seconds));
        }
        Ok(ScheduledRule {
            repository_prefixes: check_prefixes(repository_prefixes)?,
            rescan_period_seconds,
            disabled,
        })
    }

    pub fn repository_prefixes(&self) -> &[String] {
        &self.repository_prefixes
    }

    pub fn rescan_period_seconds(&self) -> i64 {
        self.rescan_period_seconds
    }
}

impl ScanRules {
    /// Whether the enabled push rule covers `repository` (`<registryId>/<name>`).
    pub fn scans_on_push(&self, registry_id: &str, repository: &str) -> bool {
        self.push_rule.as_ref().is_some_and(|rule| {
            !rule.disabled && covers(&rule.repository_prefixes, registry_id, repository)
        })
    }

    /// The shortest rescan period, in milliseconds, among the enabled scheduled rules
    /// covering `repository`.
    pub fn rescan_period_ms(&self, registry_id: &str, repository: &str) -> Option<i64> {
        self.schedule_rules
            .iter()
            .filter(|rule| {
                !rule.disabled && covers(&rule.repository_prefixes, registry_id, repository)
            })
            .map(|rule| rule.rescan_period_seconds.saturating_mul(1000))
            .min()
    }
}

/// What the scheduler needs about an image: its newest scan's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageScanAge {
    pub image_id: String,
    /// When the image was pushed.
    pub created_at: i64,
    pub repository_id: String,
    pub repository_name: String,
    pub registry_id: String,
    /// When its newest scan was queued, if ever.
    pub last_scan_at: Option<i64>,
}

/// `enqueue_scan` on SQLite as one multi-statement query: what `record_operation`
/// does (free the idempotency key if its holder expired, a no-op for NULL; insert the
/// operation), then the scan result and its job. $1-$10 are the operation's columns,
/// $11 the scan result id, $12-$14 image, repository and registry, $15 the RUNNING
/// status, $16 the job id, $17 the time before which a key's holder has expired.
const ENQUEUE_SQLITE: &str = "\
    UPDATE operations SET idempotency_key = NULL WHERE idempotency_key = $10 AND created_at <= $17; \
    INSERT INTO operations (id, description, created_by, created_at, modified_at, done, \
      metadata, error, response, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10); \
    INSERT INTO scan_results (id, image_id, repository_id, registry_id, operation_id, status, created_at) \
      VALUES ($11, $12, $13, $14, $1, $15, $4); \
    INSERT INTO jobs (id, kind, scan_result_id, registry_id, state, attempts, run_after, \
      created_at, updated_at) VALUES ($16, 'scan', $11, $14, 'queued', 0, $4, $4, $4)";

/// Findings written per `INSERT` statement (6 parameters each; far below the
/// parameter limits of SQLite and PostgreSQL).
const VULNERABILITY_ROWS_PER_INSERT: usize = 100;

/// `INSERT INTO scan_vulnerabilities` with `rows` rows of placeholders.
fn vulnerability_insert(rows: usize) -> String {
    const COLUMNS: usize = 6;
    let mut sql = String::from(
        "INSERT INTO scan_vulnerabilities (scan_result_id, position, severity, name, package, \
         finding) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 1..=COLUMNS {
            if column > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * COLUMNS + column).to_string());
        }
        sql.push(')');
    }
    sql
}

/// `claim_job` on PostgreSQL: the first runnable job (queued and due, or running with
/// an expired lease) of a registry under its cap, locked so that concurrent claimers
/// skip it.
const CLAIM_POSTGRES: &str = "\
    UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
      attempts = attempts + 1, updated_at = $3 \
    WHERE id = (SELECT j.id FROM jobs j \
      WHERE ((j.state = 'queued' AND j.run_after <= $3) OR (j.state = 'running' AND j.lease_until < $3)) \
      AND (SELECT COUNT(*) FROM jobs r WHERE r.registry_id = j.registry_id \
           AND r.state = 'running' AND r.lease_until >= $3) < $4 \
      ORDER BY j.run_after, j.created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
    RETURNING id, scan_result_id, registry_id, attempts, cancel_requested";

/// `claim_job` on SQLite. The one-query form that PostgreSQL runs sorts every
/// runnable job and counts each one's registry's running jobs before it picks one:
/// tens of milliseconds per claim, under the write gate, with ten thousand queued.
/// Here each of the two kinds of runnable job (queued and due; running with an
/// expired lease) is taken first in `(run_after, created_at)` order from the
/// `jobs_claim` index, counting running jobs only until one under the cap is found,
/// and the earlier of the two is claimed: the same job, found in constant time.
const CLAIM_SQLITE: &str = "\
    UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
      attempts = attempts + 1, updated_at = $3 \
    WHERE id = (SELECT id FROM ( \
      SELECT id, run_after, created_at FROM ( \
        SELECT j.id, j.run_after, j.created_at FROM jobs j \
        WHERE j.state = 'queued' AND j.run_after <= $3 \
          AND (SELECT COUNT(*) FROM jobs r WHERE r.registry_id = j.registry_id \
               AND r.state = 'running' AND r.lease_until >= $3) < $4 \
        ORDER BY j.run_after, j.created_at LIMIT 1) \
      UNION ALL \
      SELECT id, run_after, created_at FROM ( \
        SELECT j.id, j.run_after, j.created_at FROM jobs j \
        WHERE j.state = 'running' AND j.lease_until < $3 \
          AND (SELECT COUNT(*) FROM jobs r WHERE r.registry_id = j.registry_id \
               AND r.state = 'running' AND r.lease_until >= $3) < $4 \
        ORDER BY j.run_after, j.created_at LIMIT 1)) \
      ORDER BY run_after, created_at LIMIT 1) \
    RETURNING id, scan_result_id, registry_id, attempts, cancel_requested";

/// The retention rule (contract §11): of an image's finished results, keep the three
/// newest READY ones finished within 30 days; when none is that recent, keep the
/// newest finished one. The newest finished result is always kept too, as GetLast
/// answers with it. `rows` are (id, status, scanned_at), any order. Returns the ids
/// to delete.
pub fn retention_victims(rows: &[(String, ScanStatus, i64)], now: i64) -> Vec<String> {
    const MONTH: i64 = 30 * 24 * 3600 * 1000;
    let mut sorted: Vec<&(String, ScanStatus, i64)> = rows.iter().collect();
    sorted.sort_by(|left, right| right.2.cmp(&left.2).then_with(|| right.0.cmp(&left.0)));
    let recent_ready: Vec<&String> = sorted
        .iter()
        .filter(|(_, status, at)| *status == ScanStatus::Ready && now - *at <= MONTH)
        .take(3)
        .map(|(id, ..)| id)
        .collect();
    let mut keep = recent_ready;
    keep.extend(sorted.first().map(|(id, ..)| id));
    sorted
        .iter()
        .map(|(id, ..)| id)
        .filter(|id| !keep.contains(id))
        .cloned()
        .collect()
}

const SCAN_COLUMNS: &str = "id, image_id, repository_id, registry_id, operation_id, status, created_at, \
     scanned_at, critical, high, medium, low, negligible, undefined, manifest_digest, database_digest, \
     error_code, error_message";

fn scan_from_row(row: &AnyRow) -> Result<ScanResult, StoreError> {
    let status: i64 = row.try_get("status")?;
    let code: Option<i64> = row.try_get("error_code")?;
    let message: Option<String> = row.try_get("error_message")?;
    Ok(ScanResult {
        id: row.try_get("id")?,
        image_id: row.try_get("image_id")?,
        repository_id: row.try_get("repository_id")?,
        registry_id: row.try_get("registry_id")?,
        operation_id: row.try_get("operation_id")?,
        status: ScanStatus::from_number(status)
            .ok_or_else(|| StoreError::Corrupt(format!("scan status {status}")))?,
        created_at: row.try_get("created_at")?,
        scanned_at: row.try_get("scanned_at")?,
        counts: SeverityCounts {
            critical: count(row, "critical")?,
            high: count(row, "high")?,
            medium: count(row, "medium")?,
            low: count(row, "low")?,
            negligible: count(row, "negligible")?,
            undefined: count(row, "undefined")?,
        },
        manifest_digest: row.try_get("manifest_digest")?,
        database_digest: row.try_get("database_digest")?,
        error: code.map(|code| ErrorStatus {
            code: i32::try_from(code).unwrap_or(2),
            message: message.unwrap_or_default(),
        }),
    })
}

fn count(row: &AnyRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} count {value}")))
}

fn count_column(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn policy_from_row(row: &AnyRow) -> Result<ScanPolicy, StoreError> {
    let rules: String = row.try_get("rules")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(ScanPolicy {
        id: row.try_get("id")?,
        registry_id: row.try_get("registry_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        rules: serde_json::from_str(&rules)
            .map_err(|error| StoreError::Corrupt(format!("scan rules {rules}: {error}")))?,
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn rules_text(rules: &ScanRules) -> String {
    serde_json::to_string(rules).unwrap_or_default()
}

fn job_from_row(row: &AnyRow) -> Result<Job, StoreError> {
    let cancel: i64 = row.try_get("cancel_requested")?;
    Ok(Job {
        id: row.try_get("id")?,
        scan_result_id: row.try_get("scan_result_id")?,
        registry_id: row.try_get("registry_id")?,
        attempts: row.try_get("attempts")?,
        cancel_requested: cancel != 0,
    })
}

impl Store {
    // ---- scans ------------------------------------------------------------------

    /// Queues a scan: its operation, a RUNNING scan result and a job, in one
    /// transaction. With an idempotency key used in the last 24 hours, returns the
    /// earlier operation and `false`.
    pub async fn enqueue_scan(
        &self,
        scan: &NewScan,
        idempotency_key: Option<&str>,
    ) -> Result<(Operation, bool), StoreError> {
        let inserted = self.enqueue_scan_once(scan, idempotency_key).await;
        self.earlier_on_key_race(inserted, idempotency_key).await
    }

    async fn enqueue_scan_once(
        &self,
        scan: &NewScan,
        idempotency_key: Option<&str>,
    ) -> Result<(Operation, bool), StoreError> {
        if let Some(key) = idempotency_key
            && let Some(earlier) = self.find_operation_by_key(key).await?
        {
            return Ok((earlier, false));
        }
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        let operation = &scan.operation;
        let now = operation.created_at;
        if self.backend == Backend::Sqlite {
            // SQLite runs the statements of one query in turn, binding `$n` by number:
            // one round trip to the connection's thread instead of four.
            bind_operation(sqlx::query(ENQUEUE_SQLITE), operation, idempotency_key)
                .bind(scan.scan_result_id.clone())
                .bind(scan.image_id.clone())
                .bind(scan.repository_id.clone())
                .bind(scan.registry_id.clone())
                .bind(ScanStatus::Running.number())
                .bind(new_id(IdKind::Operation))
                .bind(operation.created_at - IDEMPOTENCY_KEY_LIFETIME_MS)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok((operation.clone(), true));
        }
        record_operation(&mut tx, operation, idempotency_key).await?;
        sqlx::query(
            "INSERT INTO scan_results (id, image_id, repository_id, registry_id, operation_id, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(scan.scan_result_id.clone())
        .bind(scan.image_id.clone())
        .bind(scan.repository_id.clone())
        .bind(scan.registry_id.clone())
        .bind(operation.id.clone())
        .bind(ScanStatus::Running.number())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO jobs (id, kind, scan_result_id, registry_id, state, attempts, run_after, \
             created_at, updated_at) VALUES ($1, 'scan', $2, $3, 'queued', 0, $4, $4, $4)",
        )
        .bind(new_id(IdKind::Operation))
        .bind(scan.scan_result_id.clone())
        .bind(scan.registry_id.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((operation.clone(), true))
    }

    pub async fn get_scan_result(&self, id: &str) -> Result<ScanResult, StoreError> {
        let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_results WHERE id = $1");
        let row = self
            .fetch_by_key(sqlx::AssertSqlSafe(sql), "scan result", id)
            .await?;
        scan_from_row(&row)
    }

    /// The newest finished (READY or ERROR) result of an image.
    pub async fn last_scan_result(&self, image_id: &str) -> Result<ScanResult, StoreError> {
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results WHERE image_id = $1 AND status <> $2 \
             ORDER BY scanned_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(image_id.to_owned())
            .bind(ScanStatus::Running.number())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "finished scan result of image",
                key: image_id.to_owned(),
            })?;
        scan_from_row(&row)
    }

    /// Lists scan results; fetches up to `limit` rows from `offset`.
    pub async fn list_scan_results(
        &self,
        query: &ScanQuery,
    ) -> Result<Vec<ScanResult>, StoreError> {
        let descending = query.descending;
        let keyset = Keyset::new(match query.order {
            ScanOrder::ScannedAt => vec![
                ("COALESCE(s.scanned_at, s.created_at)", descending),
                ("s.id", descending),
            ],
            ScanOrder::Status => vec![
                ("s.status", descending),
                ("COALESCE(s.scanned_at, s.created_at)", true),
                ("s.id", true),
            ],
        });
        let (column, key) = match (&query.image_id, &query.repository_id) {
            (Some(image), _) => ("image_id", image.clone()),
            (None, Some(repository)) => ("repository_id", repository.clone()),
            (None, None) => return Ok(Vec::new()),
        };
        let status_clause = if query.status.is_some() {
            "AND s.status = $4"
        } else {
            "AND $4 = $4"
        };
        let anchor = self.page_anchor("scan_results", &query.start).await?;
        let (join, after) = match anchor {
            Some(_) => (
                keyset.anchor_join("scan_results s", "s.id", "$5"),
                keyset.after_anchor(),
            ),
            None => (String::new(), "AND $5 = $5".to_owned()),
        };
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results s {join} WHERE s.{column} = $1 \
             {status_clause} {after} ORDER BY {} LIMIT $2 OFFSET $3",
            keyset.order_by()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(query.limit)
            .bind(if anchor.is_some() {
                0
            } else {
                query.start.offset
            })
            .bind(query.status.map(ScanStatus::number).unwrap_or(0))
            .bind(anchor.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scan_from_row).collect()
    }

    /// Lists a scan's findings; fetches up to `limit` rows from `offset`.
    pub async fn list_vulnerabilities(
        &self,
        query: &VulnerabilityQuery,
    ) -> Result<Vec<Finding>, StoreError> {
        let direction = if query.descending { "DESC" } else { "ASC" };
        let severity_clause = if query.severity.is_some() {
            "AND severity = $4"
        } else {
            "AND $4 = $4"
        };
        let name_clause = if query.name.is_some() {
            "AND name = $5"
        } else {
            "AND $5 = $5"
        };
        let sql = format!(
            "SELECT finding FROM scan_vulnerabilities WHERE scan_result_id = $1 {severity_clause} \
             {name_clause} ORDER BY severity {direction}, name, package, position LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(query.scan_result_id.clone())
            .bind(query.limit)
            .bind(query.offset)
            .bind(
                query
                    .severity
                    .map_or(0, |severity| i64::from(severity.proto_number())),
            )
            .bind(query.name.clone().unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("finding")?;
                serde_json::from_str(&text)
                    .map_err(|error| StoreError::Corrupt(format!("finding {text}: {error}")))
            })
            .collect()
    }

    // ---- the job queue ----------------------------------------------------------

    /// Claims the next runnable job for `owner` for `lease_ms`: a queued job whose
    /// time has come, or a running job whose lease expired, in a registry with fewer
    /// than `registry_cap` running jobs.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        registry_cap: i64,
    ) -> Result<Option<Job>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let now = now_millis();
        let _gate = self.write_lock().await;
        let row = sqlx::query(sql)
            .bind(owner.to_owned())
            .bind(now + lease_ms)
            .bind(now)
            .bind(registry_cap)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Renews a lease. `None` when `owner` no longer holds the job; otherwise whether
    /// a cancel was requested.
    pub async fn renew_job(
        &self,
        job_id: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<bool>, StoreError> {
        let now = now_millis();
        let _gate = self.write_lock().await;
        let row = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 \
             WHERE id = $3 AND lease_owner = $4 AND state = 'running' RETURNING cancel_requested",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(job_id.to_owned())
        .bind(owner.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            row.try_get::<i64, _>("cancel_requested")
                .map(|flag| flag != 0)
        })
        .transpose()
        .map_err(StoreError::from)
    }

    /// Puts a job back in the queue after a failed attempt, to run after `delay_ms`.
    pub async fn retry_job(
        &self,
        job_id: &str,
        owner: &str,
        delay_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let _gate = self.write_lock().await;
        let result = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, run_after = $1, \
             last_error = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
        )
        .bind(now + delay_ms)
        .bind(error.to_owned())
        .bind(now)
        .bind(job_id.to_owned())
        .bind(owner.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Asks the job of the scan behind `operation_id` to stop. Returns whether a job
    /// was still queued or running. A queued job is cancelled on the spot by the
    /// worker that claims it next.
    pub async fn request_cancel(&self, operation_id: &str) -> Result<bool, StoreError> {
        let _gate = self.write_lock().await;
        let result = sqlx::query(
            "UPDATE jobs SET cancel_requested = 1, run_after = 0, updated_at = $1 \
             WHERE state IN ('queued', 'running') AND scan_result_id IN \
             (SELECT id FROM scan_results WHERE operation_id = $2)",
        )
        .bind(now_millis())
        .bind(operation_id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Records how a scan ended, if `owner` still holds its job: the scan result, its
    /// findings, its operation, the job, and retention for the image, in one
    /// transaction. Returns `false` (and changes nothing) when the lease was lost.
    pub async fn finish_scan(
        &self,
        job: &Job,
        owner: &str,
        completion: &ScanCompletion,
    ) -> Result<bool, StoreError> {
        let now = completion.scanned_at;
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
        )
        .bind(now)
        .bind(job.id.clone())
        .bind(owner.to_owned())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let scan_id = job.scan_result_id.clone();
        let counts = SeverityCounts::of(completion.findings.iter().map(|finding| finding.severity));
        sqlx::query(
            "UPDATE scan_results SET status = $1, scanned_at = $2, critical = $3, high = $4, medium = $5, \
             low = $6, negligible = $7, undefined = $8, manifest_digest = $9, database_digest = $10, \
             error_code = $11, error_message = $12 WHERE id = $13",
        )
        .bind(completion.status.number())
        .bind(now)
        .bind(count_column(counts.critical))
        .bind(count_column(counts.high))
        .bind(count_column(counts.medium))
        .bind(count_column(counts.low))
        .bind(count_column(counts.negligible))
        .bind(count_column(counts.undefined))
        .bind(completion.manifest_digest.clone())
        .bind(completion.database_digest.clone())
        .bind(completion.error.as_ref().map(|error| i64::from(error.code)))
        .bind(completion.error.as_ref().map(|error| error.message.clone()))
        .bind(scan_id.clone())
        .execute(&mut *tx)
        .await?;
        replace_findings(&mut tx, &scan_id, &completion.findings).await?;
        let sql = format!("SELECT {SCAN_COLUMNS} FROM scan_results WHERE id = $1");
        let finished = scan_from_row(
            &sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(scan_id.clone())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        let result = match &completion.error {
            Some(error) => OperationResult::Error(error.clone()),
            None => {
                OperationResult::Response(Box::new(OperationResponse::ScanResult(finished.clone())))
            }
        };
        let (response, error) = crate::store::result_texts(Some(&result));
        sqlx::query(
            "UPDATE operations SET done = 1, modified_at = $1, response = $2, error = $3 WHERE id = $4",
        )
        .bind(now)
        .bind(response)
        .bind(error)
        .bind(finished.operation_id.clone())
        .execute(&mut *tx)
        .await?;
        self.apply_retention(&mut tx, &finished, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the results of `finished`'s image that the retention rule
    /// ([`retention_victims`]) lets go, never `finished` itself.
    async fn apply_retention(
        &self,
        tx: &mut sqlx::AnyConnection,
        finished: &ScanResult,
        now: i64,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // Retention passes of one image take turns, so that each one's retention pass
            // sees the results the others committed (SQLite's write gate does this).
            sqlx::query("SELECT id FROM images WHERE id = $1 FOR UPDATE")
                .bind(finished.image_id.clone())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT id, status, scanned_at FROM scan_results WHERE status <> $1 AND image_id = $2",
        )
        .bind(ScanStatus::Running.number())
        .bind(finished.image_id.clone())
        .fetch_all(&mut *tx)
        .await?;
        let mut results = Vec::new();
        for row in &rows {
            let status: i64 = row.try_get("status")?;
            let at: Option<i64> = row.try_get("scanned_at")?;
            if let Some(status) = ScanStatus::from_number(status) {
                results.push((row.try_get::<String, _>("id")?, status, at.unwrap_or(0)));
            }
        }
        for victim in retention_victims(&results, now) {
            if victim == finished.id {
                continue;
            }
            sqlx::query("DELETE FROM scan_vulnerabilities WHERE scan_result_id = $1")
                .bind(victim.clone())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM scan_results WHERE id = $1")
                .bind(victim)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Counts jobs by state (for tests and `/readyz`).
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
            .collect()
    }

    // ---- scan policies ----------------------------------------------------------

    /// Creates the registry's policy; a second one is `AlreadyExists`.
    pub async fn create_scan_policy(&self, policy: &ScanPolicy) -> Result<ScanPolicy, StoreError> {
        self.create_scan_policy_once(policy).await.map_err(|error| {
            if error.is_unique_violation() {
                StoreError::AlreadyExists {
                    kind: "scan policy for registry",
                    key: policy.registry_id.clone(),
                }
            } else {
                error
            }
        })
    }

    async fn create_scan_policy_once(&self, policy: &ScanPolicy) -> Result<ScanPolicy, StoreError> {
        let _gate = self.write_lock().await;
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT id FROM scan_policies WHERE registry_id = $1")
                .bind(policy.registry_id.clone())
                .fetch_optional(&self.pool)
                .await?;
        if existing.is_some() {
            return Err(StoreError::AlreadyExists {
                kind: "scan policy for registry",
                key: policy.registry_id.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO scan_policies (id, registry_id, name, description, rules, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(policy.id.clone())
        .bind(policy.registry_id.clone())
        .bind(policy.name.clone())
        .bind(policy.description.clone())
        .bind(rules_text(&policy.rules))
        .bind(i64::from(policy.disabled))
        .bind(policy.created_at)
        .execute(&self.pool)
        .await?;
        Ok(policy.clone())
    }

    pub async fn get_scan_policy(&self, id: &str) -> Result<ScanPolicy, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT * FROM scan_policies WHERE id = $1",
                "scan policy",
                id,
            )
            .await?;
        policy_from_row(&row)
    }

    pub async fn get_scan_policy_by_registry(
        &self,
        registry_id: &str,
    ) -> Result<ScanPolicy, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT * FROM scan_policies WHERE registry_id = $1",
                "scan policy for registry",
                registry_id,
            )
            .await?;
        policy_from_row(&row)
    }

    pub async fn list_scan_policies(&self) -> Result<Vec<ScanPolicy>, StoreError> {
        let rows = sqlx::query("SELECT * FROM scan_policies ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Replaces a policy's name, description, rules and disabled flag.
    pub async fn update_scan_policy(&self, policy: &ScanPolicy) -> Result<ScanPolicy, StoreError> {
        let _gate = self.write_lock().await;
        let result = sqlx::query(
            "UPDATE scan_policies SET name = $1, description = $2, rules = $3, disabled = $4 WHERE id = $5",
        )
        .bind(policy.name.clone())
        .bind(policy.description.clone())
        .bind(rules_text(&policy.rules))
        .bind(i64::from(policy.disabled))
        .bind(policy.id.clone())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "scan policy",
                key: policy.id.clone(),
            });
        }
        Ok(policy.clone())
    }

    pub async fn delete_scan_policy(&self, id: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let result = sqlx::query("DELETE FROM scan_policies WHERE id = $1")
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "scan policy",
                key: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Every image of a registry (of all registries for `None`) with when its newest
    /// scan was queued.
    pub async fn image_scan_ages(
        &self,
        registry_id: Option<&str>,
    ) -> Result<Vec<ImageScanAge>, StoreError> {
        let clause = if registry_id.is_some() {
            "r.registry_id = $1"
        } else {
            "$1 = $1"
        };
        self.image_scan_ages_where(clause, registry_id.unwrap_or_default(), None)
            .await
    }

    /// The images whose newest READY result was matched against a database other
    /// than `database_digest` and that have no scan queued or running: what a
    /// database change leaves to re-match, also after a restart.
    pub async fn images_matched_with_other_database(
        &self,
        database_digest: &str,
    ) -> Result<Vec<ImageScanAge>, StoreError> {
        let clause = "(SELECT s.database_digest FROM scan_results s WHERE s.image_id = i.id \
             AND s.status = $2 ORDER BY s.scanned_at DESC LIMIT 1) <> $1 \
             AND NOT EXISTS (SELECT 1 FROM scan_results q WHERE q.image_id = i.id AND q.status = $3)";
        self.image_scan_ages_where(
            clause,
            database_digest,
            Some([ScanStatus::Ready, ScanStatus::Running]),
        )
        .await
    }

    async fn image_scan_ages_where(
        &self,
        clause: &str,
        first: &str,
        statuses: Option<[ScanStatus; 2]>,
    ) -> Result<Vec<ImageScanAge>, StoreError> {
        let sql = format!(
            "SELECT i.id AS image_id, i.created_at, r.id AS repository_id, r.name AS repository_name, r.registry_id, \
             (SELECT MAX(s.created_at) FROM scan_results s WHERE s.image_id = i.id) AS last_scan_at \
             FROM images i JOIN repositories r ON r.id = i.repository_id WHERE {clause} ORDER BY i.id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(first.to_owned());
        for status in statuses.into_iter().flatten() {
            query = query.bind(status.number());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(ImageScanAge {
                    image_id: row.try_get("image_id")?,
                    created_at: row.try_get("created_at")?,
                    repository_id: row.try_get("repository_id")?,
                    repository_name: row.try_get("repository_name")?,
                    registry_id: row.try_get("registry_id")?,
                    last_scan_at: row.try_get("last_scan_at")?,
                })
            })
            .collect()
    }
}

/// Replaces a scan's findings: each kept whole, with the columns the API filters and
/// orders on. Many rows go in per statement: one statement per row held the write
/// gate for a round trip per finding.
async fn replace_findings(
    tx: &mut sqlx::AnyConnection,
    scan_id: &str,
    findings: &[Finding],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM scan_vulnerabilities WHERE scan_result_id = $1")
        .bind(scan_id.to_owned())
        .execute(&mut *tx)
        .await?;
    for (chunk_index, chunk) in findings.chunks(VULNERABILITY_ROWS_PER_INSERT).enumerate() {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(vulnerability_insert(chunk.len())));
        for (offset, finding) in chunk.iter().enumerate() {
            let position = chunk_index * VULNERABILITY_ROWS_PER_INSERT + offset;
            let text = serde_json::to_string(finding)
                .map_err(|error| StoreError::Corrupt(format!("finding {}: {error}", finding.id)))?;
            query = query
                .bind(scan_id.to_owned())
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(i64::from(finding.severity.proto_number()))
                .bind(finding.id.clone())
                .bind(finding.package_name.clone())
                .bind(text);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vulnerability_inserts_number_their_placeholders_row_by_row() {
        let sql = vulnerability_insert(2);
        assert!(sql.ends_with("VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)"));
    }

    #[test]
    fn retention_keeps_three_recent_ready_results_or_the_newest() {
        let day = 24 * 3600 * 1000;
        let now = 100 * day;
        let rows = vec![
            ("a".to_owned(), ScanStatus::Ready, now - day),
            ("b".to_owned(), ScanStatus::Ready, now - 2 * day),
            ("c".to_owned(), ScanStatus::Error, now - 3 * day),
            ("d".to_owned(), ScanStatus::Ready, now - 4 * day),
            ("e".to_owned(), ScanStatus::Ready, now - 5 * day),
            ("f".to_owned(), ScanStatus::Ready, now - 40 * day),
        ];
        let mut victims = retention_victims(&rows, now);
        victims.sort();
        assert_eq!(victims, ["c", "e", "f"]);

        let old = vec![
            ("x".to_owned(), ScanStatus::Ready, now - 50 * day),
            ("y".to_owned(), ScanStatus::Error, now - 45 * day),
        ];
        assert_eq!(retention_victims(&old, now), ["x"]);

        let failed_last = vec![
            ("r".to_owned(), ScanStatus::Ready, now - 2 * day),
            ("s".to_owned(), ScanStatus::Error, now - day),
            ("t".to_owned(), ScanStatus::Error, now - 3 * day),
        ];
        assert_eq!(retention_victims(&failed_last, now), ["t"]);
    }
}
