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

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::Operation;
use crate::store::{
    Backend, IDEMPOTENCY_KEY_LIFETIME_MS, Store, bind_operation, json_text, now_millis,
    record_operation,
};
use crate::{IdKind, StoreError, new_id};

/// `ScanResult.Status` (contract §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNDEFINED.
    pub counts: [i64; 6],
    pub manifest_digest: Option<String>,
    pub database_digest: Option<String>,
    /// The `google.rpc.Code` number and message of a failed scan.
    pub error: Option<(i64, String)>,
}

/// One vulnerability of a scan, in the API's terms; `severity` is the enum number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVulnerability {
    pub severity: i64,
    pub name: String,
    pub link: String,
    pub package: String,
    pub source: String,
    pub version: String,
    pub fixed_by: String,
    pub origin: String,
    pub kind: String,
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
    pub offset: i64,
    pub limit: i64,
}

/// Which vulnerabilities of a scan to list; ordered by severity (CRITICAL first
/// unless `descending`), then name, then package.
#[derive(Debug, Clone)]
pub struct VulnerabilityQuery {
    pub scan_result_id: String,
    pub severity: Option<i64>,
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

/// How a scan ended.
#[derive(Debug, Clone)]
pub struct ScanCompletion {
    pub status: ScanStatus,
    /// When the scan finished (Unix milliseconds).
    pub scanned_at: i64,
    pub counts: [i64; 6],
    pub vulnerabilities: Vec<StoredVulnerability>,
    pub manifest_digest: Option<String>,
    pub database_digest: Option<String>,
    pub error: Option<(i64, String)>,
    /// What the operation ends with: its `response` or its `error`, in wire form.
    pub operation_response: Option<serde_json::Value>,
    pub operation_error: Option<serde_json::Value>,
}

/// A scan policy (contract §4); `rules` is the `ScanRules` message in wire form.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPolicy {
    pub id: String,
    pub registry_id: String,
    pub name: String,
    pub description: String,
    pub rules: serde_json::Value,
    pub disabled: bool,
    pub created_at: i64,
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

/// Findings written per `INSERT` statement (11 parameters each; far below the
/// parameter limits of SQLite and PostgreSQL).
const VULNERABILITY_ROWS_PER_INSERT: usize = 100;

/// `INSERT INTO scan_vulnerabilities` with `rows` rows of placeholders.
fn vulnerability_insert(rows: usize) -> String {
    const COLUMNS: usize = 11;
    let mut sql = String::from(
        "INSERT INTO scan_vulnerabilities (scan_result_id, position, severity, name, link, package, \
         source, version, fixed_by, origin, kind) VALUES ",
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
        counts: [
            row.try_get("critical")?,
            row.try_get("high")?,
            row.try_get("medium")?,
            row.try_get("low")?,
            row.try_get("negligible")?,
            row.try_get("undefined")?,
        ],
        manifest_digest: row.try_get("manifest_digest")?,
        database_digest: row.try_get("database_digest")?,
        error: code.map(|code| (code, message.unwrap_or_default())),
    })
}

fn policy_from_row(row: &AnyRow) -> Result<ScanPolicy, StoreError> {
    let rules: String = row.try_get("rules")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(ScanPolicy {
        id: row.try_get("id")?,
        registry_id: row.try_get("registry_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        rules: serde_json::from_str(&rules).map_err(|_| StoreError::Corrupt(rules.clone()))?,
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
    })
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
        let direction = if query.descending { "DESC" } else { "ASC" };
        let order = match query.order {
            ScanOrder::ScannedAt => {
                format!("COALESCE(scanned_at, created_at) {direction}, id {direction}")
            }
            ScanOrder::Status => {
                format!("status {direction}, COALESCE(scanned_at, created_at) DESC, id DESC")
            }
        };
        let (column, key) = match (&query.image_id, &query.repository_id) {
            (Some(image), _) => ("image_id", image.clone()),
            (None, Some(repository)) => ("repository_id", repository.clone()),
            (None, None) => return Ok(Vec::new()),
        };
        let status_clause = if query.status.is_some() {
            "AND status = $4"
        } else {
            "AND $4 = $4"
        };
        let sql = format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results WHERE {column} = $1 {status_clause} \
             ORDER BY {order} LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(query.limit)
            .bind(query.offset)
            .bind(query.status.map(ScanStatus::number).unwrap_or(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scan_from_row).collect()
    }

    /// Lists a scan's vulnerabilities; fetches up to `limit` rows from `offset`.
    pub async fn list_vulnerabilities(
        &self,
        query: &VulnerabilityQuery,
    ) -> Result<Vec<StoredVulnerability>, StoreError> {
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
            "SELECT severity, name, link, package, source, version, fixed_by, origin, kind \
             FROM scan_vulnerabilities WHERE scan_result_id = $1 {severity_clause} {name_clause} \
             ORDER BY severity {direction}, name, package, position LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(query.scan_result_id.clone())
            .bind(query.limit)
            .bind(query.offset)
            .bind(query.severity.unwrap_or(0))
            .bind(query.name.clone().unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredVulnerability {
                    severity: row.try_get("severity")?,
                    name: row.try_get("name")?,
                    link: row.try_get("link")?,
                    package: row.try_get("package")?,
                    source: row.try_get("source")?,
                    version: row.try_get("version")?,
                    fixed_by: row.try_get("fixed_by")?,
                    origin: row.try_get("origin")?,
                    kind: row.try_get("kind")?,
                })
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
    /// vulnerabilities, its operation, the job, and retention for the image, in one
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
        let [critical, high, medium, low, negligible, undefined] = completion.counts;
        sqlx::query(
            "UPDATE scan_results SET status = $1, scanned_at = $2, critical = $3, high = $4, medium = $5, \
             low = $6, negligible = $7, undefined = $8, manifest_digest = $9, database_digest = $10, \
             error_code = $11, error_message = $12 WHERE id = $13",
        )
        .bind(completion.status.number())
        .bind(now)
        .bind(critical)
        .bind(high)
        .bind(medium)
        .bind(low)
        .bind(negligible)
        .bind(undefined)
        .bind(completion.manifest_digest.clone())
        .bind(completion.database_digest.clone())
        .bind(completion.error.as_ref().map(|(code, _)| *code))
        .bind(completion.error.as_ref().map(|(_, message)| message.clone()))
        .bind(scan_id.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM scan_vulnerabilities WHERE scan_result_id = $1")
            .bind(scan_id.clone())
            .execute(&mut *tx)
            .await?;
        // Many rows per statement: one statement per row held the write gate for
        // a round trip per finding.
        for (chunk_index, chunk) in completion
            .vulnerabilities
            .chunks(VULNERABILITY_ROWS_PER_INSERT)
            .enumerate()
        {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(vulnerability_insert(chunk.len())));
            for (offset, vulnerability) in chunk.iter().enumerate() {
                let position = chunk_index * VULNERABILITY_ROWS_PER_INSERT + offset;
                query = query
                    .bind(scan_id.clone())
                    .bind(i64::try_from(position).unwrap_or(i64::MAX))
                    .bind(vulnerability.severity)
                    .bind(vulnerability.name.clone())
                    .bind(vulnerability.link.clone())
                    .bind(vulnerability.package.clone())
                    .bind(vulnerability.source.clone())
                    .bind(vulnerability.version.clone())
                    .bind(vulnerability.fixed_by.clone())
                    .bind(vulnerability.origin.clone())
                    .bind(vulnerability.kind.clone());
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE operations SET done = 1, modified_at = $1, response = $2, error = $3 \
             WHERE id = (SELECT operation_id FROM scan_results WHERE id = $4)",
        )
        .bind(now)
        .bind(json_text(&completion.operation_response))
        .bind(json_text(&completion.operation_error))
        .bind(scan_id.clone())
        .execute(&mut *tx)
        .await?;
        // Retention, for the image of this scan.
        if self.backend == Backend::Postgres {
            // Retention passes of one image take turns, so that each one's retention pass
            // sees the results the others committed (SQLite's write gate does this).
            sqlx::query(
                "SELECT id FROM images WHERE id = \
                 (SELECT image_id FROM scan_results WHERE id = $1) FOR UPDATE",
            )
            .bind(job.scan_result_id.clone())
            .fetch_optional(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT id, status, scanned_at FROM scan_results WHERE status <> $1 AND image_id = \
             (SELECT image_id FROM scan_results WHERE id = $2)",
        )
        .bind(ScanStatus::Running.number())
        .bind(scan_id.clone())
        .fetch_all(&mut *tx)
        .await?;
        let mut finished = Vec::new();
        for row in &rows {
            let status: i64 = row.try_get("status")?;
            let at: Option<i64> = row.try_get("scanned_at")?;
            if let Some(status) = ScanStatus::from_number(status) {
                finished.push((row.try_get::<String, _>("id")?, status, at.unwrap_or(0)));
            }
        }
        for victim in retention_victims(&finished, now) {
            if victim == scan_id {
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
        tx.commit().await?;
        Ok(true)
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
        .bind(policy.rules.to_string())
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
        .bind(policy.rules.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vulnerability_inserts_number_their_placeholders_row_by_row() {
        let sql = vulnerability_insert(2);
        assert!(sql.ends_with(
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11), \
             ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ));
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
