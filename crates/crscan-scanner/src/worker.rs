//! The scan workers and the scheduler of `crscan serve`: workers take scan jobs
//! from the store's queue, hold and renew a lease while they scan, stop when a
//! cancel is requested, and record the result with the lease check in the same
//! transaction; the scheduler queues scans that policies ask for (on push, and when
//! the newest result is older than a rule's `rescanPeriod`) and, when the
//! vulnerability database file is replaced (or at start), rescans every image last
//! matched against another database (layers come from the cache, so only matching
//! runs again).
//!
//! Failures of crscan itself (`INTERNAL`) are retried with exponential backoff up to
//! a few attempts; a failure the image or the setup causes (`FAILED_PRECONDITION`,
//! `RESOURCE_EXHAUSTED`, `CANCELLED`) ends the scan at once.
//!
//! In a cluster every worker node runs the same scheduler; each scan it queues has an
//! idempotency key every node computes alike (`scan-on-push:<imageId>`,
//! `scheduled:<imageId>:<lastScanAt>`, `database-update:<imageId>:<digest>`), so the
//! store keeps one per image and period however many nodes ask. A node without
//! workers (`--workers 0`, an API and registry node) runs no scheduler: it scans
//! nothing, so its database and its passes would only add load. On shutdown
//! ([`Scanner::shutdown`]) a node takes no new job, lets running scans finish within
//! a timeout, and hands the others back to the queue for another node.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crscan_blob::BlobStore;
use crscan_model::Digest;
use crscan_store::{
    ErrorStatus, IdKind, Job, NewScan, Operation, OperationMetadata, ScanCompletion, ScanStatus,
    Store, StoreError, new_id, now,
};
use tokio::sync::Notify;

use crate::{
    DatabaseCheck, ErrorCode, LayerCache, ScanError, ScanOutcome, ScanRequest, open_database,
    scan_image,
};

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent scans in this process.
    pub workers: usize,
    /// Running scans per registry, over all processes.
    pub registry_cap: i64,
    /// How long a claimed job is held without renewal.
    pub lease: Duration,
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// Attempts before a job failing with `INTERNAL` gives up.
    pub max_attempts: i64,
    /// How often the scheduler looks at policies and the database's age.
    pub schedule_every: Duration,
    /// How often the scheduler looks whether the database file was replaced.
    pub database_watch_every: Duration,
    pub database_path: PathBuf,
    /// Age in hours past which the database counts as stale (a warning, not a stop).
    pub database_max_age_hours: u64,
    /// Set while this process builds the first database; shared by every
    /// [`DatabaseCheck`] this configuration hands out.
    pub database_building: Arc<AtomicBool>,
    pub limits: crscan_image::Limits,
}

impl WorkerConfig {
    /// Defaults: one worker per core, 10 scans per registry.
    pub fn new(database_path: PathBuf) -> WorkerConfig {
        WorkerConfig {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            registry_cap: 10,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(250),
            max_attempts: 3,
            schedule_every: Duration::from_secs(5),
            database_watch_every: Duration::from_secs(1),
            database_path,
            database_max_age_hours: 72,
            database_building: Arc::new(AtomicBool::new(false)),
            limits: crate::default_limits(),
        }
    }

    /// The freshness check of this configuration's database.
    pub fn database_check(&self) -> DatabaseCheck {
        let check = DatabaseCheck::new(self.database_path.clone(), self.database_max_age_hours);
        DatabaseCheck {
            building: self.database_building.clone(),
            ..check
        }
    }
}

/// The default number of workers: one per core, but no more than the available
/// memory holds at `budget_bytes` a scan (`workers × budget ≤ MemAvailable`), and at
/// least one. `mem_available` is `None` where it cannot be read; cores decide then.
pub fn workers_for_memory(cores: usize, mem_available: Option<u64>, budget_bytes: u64) -> usize {
    let by_memory = match mem_available {
        Some(bytes) if budget_bytes > 0 => {
            usize::try_from(bytes / budget_bytes).unwrap_or(usize::MAX)
        }
        _ => usize::MAX,
    };
    cores.min(by_memory).max(1)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes; `None` where there is no such file
/// or line.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The scan service of one process.
#[derive(Clone)]
pub struct Scanner {
    store: Store,
    blobs: Arc<BlobStore>,
    cache: LayerCache,
    config: Arc<WorkerConfig>,
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    /// Set when shutdown ran out of time: scans still running are cancelled and their
    /// jobs released instead of finished.
    handing_back: Arc<AtomicBool>,
    /// The cancel flag of each worker that is claiming or running a job, by lease
    /// owner: shutdown waits for these, so a job claimed as the stop began is finished
    /// or handed back too.
    running: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
    /// Notified whenever a scan of this process ends.
    scan_ended: Arc<Notify>,
    owner_prefix: String,
}

/// What [`Scanner::shutdown`] did with the scans that were running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Scans running when the shutdown began.
    pub running: usize,
    /// Of those, scans cancelled and handed back to the queue at the timeout.
    pub handed_back: usize,
}

impl Scanner {
    pub fn new(
        store: Store,
        blobs: Arc<BlobStore>,
        cache: LayerCache,
        config: WorkerConfig,
    ) -> Scanner {
        Scanner {
            store,
            blobs,
            cache,
            config: Arc::new(config),
            wake: Arc::new(Notify::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            handing_back: Arc::new(AtomicBool::new(false)),
            running: Arc::new(Mutex::new(HashMap::new())),
            scan_ended: Arc::new(Notify::new()),
            owner_prefix: new_id(IdKind::Operation),
        }
    }

    /// This process's name in the cluster: the prefix of its lease owners, and the
    /// node that claims a periodic task's slot.
    pub fn node_id(&self) -> &str {
        &self.owner_prefix
    }

    fn running_scans(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Stops taking jobs, waits up to `timeout` for the running scans to finish, then
    /// cancels those still running and puts their jobs back in the queue (releasing
    /// the lease, so another node takes them at once instead of after it expires).
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        self.stop();
        let running = self.running_scans();
        let deadline = tokio::time::Instant::now() + timeout;
        while self.running_scans() > 0 && tokio::time::Instant::now() < deadline {
            let ended = self.scan_ended.notified();
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                ended,
            )
            .await;
        }
        let left = self.running_scans();
        if left > 0 {
            tracing::warn!(
                scans = left,
                timeout_seconds = timeout.as_secs(),
                "scans still running at the shutdown timeout; handing them back to the queue"
            );
            self.handing_back.store(true, Ordering::SeqCst);
            for cancel in self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
            {
                cancel.store(true, Ordering::SeqCst);
            }
            // A cancelled scan stops at its next file or layer; give it a moment to
            // release its job, else its lease runs out as after a crash.
            let release_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while self.running_scans() > 0 && tokio::time::Instant::now() < release_deadline {
                let ended = self.scan_ended.notified();
                let _ = tokio::time::timeout(Duration::from_millis(200), ended).await;
            }
        }
        ShutdownReport {
            running,
            handed_back: left,
        }
    }

    /// The inventory (the SBOM) of the image whose platform manifest is
    /// `manifest_digest`, as its last scan on this node's cache left it.
    pub fn cached_inventory(
        &self,
        manifest_digest: &crscan_model::Digest,
    ) -> Option<crscan_model::Inventory> {
        self.cache.inventory(manifest_digest)
    }

    /// Wakes idle workers (after a scan was queued).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Called after a manifest push: queues a scan at once when the registry's scan
    /// policy has a push rule covering the repository. The idempotency key
    /// `scan-on-push:<imageId>` makes this and the scheduler's catch-up pass queue at
    /// most one scan per pushed image, however often it is pushed again.
    pub async fn image_pushed(&self, image_id: &str) -> Result<bool, StoreError> {
        let image = self.store.get_image(image_id).await?;
        let repository = self.store.get_repository(&image.repository_id).await?;
        let policy = match self
            .store
            .get_scan_policy_by_registry(&repository.registry_id)
            .await
        {
            Ok(policy) => policy,
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error),
        };
        if policy.disabled
            || image.created_at < policy.created_at
            || !policy
                .rules
                .scans_on_push(&repository.registry_id, &repository.name)
        {
            return Ok(false);
        }
        let (_, created) = enqueue_scan(
            &self.store,
            &image.id,
            &repository.id,
            &repository.registry_id,
            "scan-policy",
            Some(&push_key(&image.id)),
        )
        .await?;
        if created {
            tracing::info!(image.id = %image.id, policy.id = %policy.id, on_push = true, "scan queued by policy");
            self.wake();
        }
        Ok(created)
    }

    /// Stops taking jobs (before the store closes on shutdown). A scan still running
    /// keeps its lease until it expires; then another process takes the job again.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Starts the workers and the scheduler on the current runtime.
    pub fn start(&self) {
        for index in 0..self.config.workers {
            let scanner = self.clone();
            let owner = format!("{}-{index}", self.owner_prefix);
            tokio::spawn(async move { scanner.work(owner).await });
        }
        if self.config.workers > 0 {
            let scanner = self.clone();
            tokio::spawn(async move { scanner.schedule().await });
        }
    }

    async fn work(self, owner: String) {
        let mut database: Option<OpenDatabase> = None;
        while !self.stopping.load(Ordering::SeqCst) {
            let lease_ms = millis(self.config.lease);
            let cancel = Arc::new(AtomicBool::new(false));
            self.running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(owner.clone(), cancel.clone());
            let claimed = self
                .store
                .claim_job(&owner, lease_ms, self.config.registry_cap)
                .await;
            if let Ok(Some(job)) = claimed {
                if let Err(error) = self.run(&owner, job, cancel, &mut database).await {
                    crscan_metrics::global().errors.inc(&["store"]);
                    tracing::warn!(%error, "scan job bookkeeping failed");
                }
                self.running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&owner);
                self.scan_ended.notify_waiters();
                continue;
            }
            self.running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&owner);
            self.scan_ended.notify_waiters();
            match claimed {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let _ = tokio::time::timeout(self.config.poll, self.wake.notified()).await;
                }
                Err(_) if self.stopping.load(Ordering::SeqCst) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim a scan job");
                    tokio::time::sleep(self.config.poll * 4).await;
                }
            }
        }
    }

    async fn run(
        &self,
        owner: &str,
        job: Job,
        cancel: Arc<AtomicBool>,
        database: &mut Option<OpenDatabase>,
    ) -> Result<(), StoreError> {
        let scan = match self.store.get_scan_result(&job.scan_result_id).await {
            Ok(scan) => scan,
            Err(StoreError::NotFound { .. }) => {
                return self
                    .finish_error(
                        owner,
                        &job,
                        None,
                        ErrorCode::Internal,
                        "the scan result was deleted",
                    )
                    .await;
            }
            Err(error) => return Err(error),
        };
        let image_label = scan.image_id.clone();
        if job.cancel_requested {
            let message = format!("the scan of image {image_label} was cancelled");
            return self
                .finish_error(owner, &job, Some(&scan), ErrorCode::Cancelled, &message)
                .await;
        }
        if job.attempts > self.config.max_attempts {
            let message = format!(
                "the scan of image {image_label} failed {} times; see the server log",
                job.attempts - 1
            );
            return self
                .finish_error(owner, &job, Some(&scan), ErrorCode::Internal, &message)
                .await;
        }
        let image = match self.store.get_image(&scan.image_id).await {
            Ok(image) => image,
            Err(StoreError::NotFound { .. }) => {
                let message = format!("image {image_label} was deleted before it could be scanned");
                return self
                    .finish_error(
                        owner,
                        &job,
                        Some(&scan),
                        ErrorCode::FailedPrecondition,
                        &message,
                    )
                    .await;
            }
            Err(error) => return Err(error),
        };
        let started = std::time::Instant::now();
        tracing::info!(scan.id = %scan.id, image.id = %image.id, image.digest = %image.digest, attempt = job.attempts, "scan started");

        if self.handing_back.load(Ordering::SeqCst) {
            cancel.store(true, Ordering::SeqCst);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = {
            let store = self.store.clone();
            let job_id = job.id.clone();
            let owner = owner.to_owned();
            let cancel = cancel.clone();
            let lost = lost.clone();
            let lease = self.config.lease;
            let every = (lease / 4).min(Duration::from_secs(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.renew_job(&job_id, &owner, millis(lease)).await {
                        Ok(Some(true)) => cancel.store(true, Ordering::SeqCst),
                        Ok(Some(false)) => {}
                        Ok(None) => {
                            lost.store(true, Ordering::SeqCst);
                            cancel.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "cannot renew a scan lease"),
                    }
                }
            })
        };
        let blobs = self.blobs.clone();
        let cache = self.cache.clone();
        let config = self.config.clone();
        let digest: Digest = image.digest.clone();
        let scan_cancel = cancel.clone();
        let cached = database.take();
        let result = tokio::task::spawn_blocking(move || {
            let open = match OpenDatabase::reuse_or_open(cached, &config.database_path) {
                Ok(open) => open,
                Err(error) => return (Err(error), None),
            };
            let outcome = scan_image(&ScanRequest {
                blobs: &crate::RegistryBlobs(blobs),
                image: &digest,
                manifest: None,
                database: Some(&open.database),
                cache: Some(&cache),
                cancel: &scan_cancel,
                limits: &config.limits,
            });
            (outcome, Some(open))
        })
        .await
        .map(|(outcome, open)| {
            *database = open;
            outcome
        });
        renewal.abort();
        let metrics = crscan_metrics::global();
        let elapsed = started.elapsed();
        if lost.load(Ordering::SeqCst) {
            metrics.scans.inc(&["lost"]);
            tracing::warn!(scan.id = %scan.id, "lost the lease of a scan; another worker has it");
            return Ok(());
        }
        let finished = matches!(result, Ok(Ok(_)));
        if self.handing_back.load(Ordering::SeqCst) && !finished {
            metrics.scans.inc(&["released"]);
            metrics.scan_duration.observe(&["released"], elapsed);
            let released = self.store.release_job(&job.id, owner).await?;
            tracing::info!(scan.id = %scan.id, image.id = %image.id, released, "scan handed back to the queue at shutdown");
            return Ok(());
        }
        let label = match &result {
            Ok(Ok(_)) => "ready",
            Ok(Err(error)) if error.code() == ErrorCode::Internal => "retried",
            Ok(Err(_)) => "error",
            Err(_) => "retried",
        };
        metrics.scans.inc(&[label]);
        metrics.scan_duration.observe(&[label], elapsed);
        let duration_ms = elapsed.as_millis();
        match result {
            Ok(Ok(outcome)) => {
                metrics
                    .layer_cache
                    .add(&["hit"], outcome.stats.layers_from_cache as u64);
                metrics
                    .layer_cache
                    .add(&["miss"], outcome.stats.layers_read as u64);
                if let Some(gap) = &outcome.report.os_not_covered {
                    tracing::warn!(scan.id = %scan.id, image.digest = %image.digest, "{gap}");
                }
                tracing::info!(scan.id = %scan.id, duration_ms, vulnerabilities = outcome.report.findings.len(),
                    layers_read = outcome.stats.layers_read, layers_cached = outcome.stats.layers_from_cache, "scan finished");
                self.finish_ready(owner, &job, &outcome).await
            }
            Ok(Err(error)) if error.code() == ErrorCode::Internal => {
                tracing::warn!(scan.id = %scan.id, %error, attempt = job.attempts, "scan failed; retrying");
                self.retry(owner, &job, &scan, &error.to_string()).await
            }
            Ok(Err(error)) => {
                tracing::info!(scan.id = %scan.id, code = error.code().name(), %error, "scan ended in error");
                self.finish_error(owner, &job, Some(&scan), error.code(), &error.to_string())
                    .await
            }
            Err(panic) => {
                tracing::error!(scan.id = %scan.id, error = %panic, "scan panicked; retrying");
                self.retry(owner, &job, &scan, "the scan panicked").await
            }
        }
    }

    async fn retry(
        &self,
        owner: &str,
        job: &Job,
        scan: &crscan_store::ScanResult,
        error: &str,
    ) -> Result<(), StoreError> {
        if job.attempts >= self.config.max_attempts {
            let message = format!(
                "internal error while scanning image {}: {error}",
                scan.image_id
            );
            return self
                .finish_error(owner, job, Some(scan), ErrorCode::Internal, &message)
                .await;
        }
        let exponent = u32::try_from(job.attempts.clamp(0, 6)).unwrap_or(6);
        let delay = 1000 * 2_i64.pow(exponent);
        self.store.retry_job(&job.id, owner, delay, error).await?;
        Ok(())
    }

    async fn finish_ready(
        &self,
        owner: &str,
        job: &Job,
        outcome: &ScanOutcome,
    ) -> Result<(), StoreError> {
        let completion = ScanCompletion {
            status: ScanStatus::Ready,
            scanned_at: now(),
            findings: outcome.report.findings.clone(),
            manifest_digest: Some(outcome.manifest_digest.to_string()),
            database_digest: Some(outcome.report.database_digest.clone()),
            error: None,
        };
        self.store.finish_scan(job, owner, &completion).await?;
        Ok(())
    }

    async fn finish_error(
        &self,
        owner: &str,
        job: &Job,
        scan: Option<&crscan_store::ScanResult>,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), StoreError> {
        let completion = ScanCompletion {
            status: ScanStatus::Error,
            scanned_at: now(),
            findings: Vec::new(),
            manifest_digest: None,
            database_digest: None,
            error: Some(ErrorStatus {
                code: code.number(),
                message: message.to_owned(),
            }),
        };
        if scan.is_some() {
            tracing::debug!(code = code.name(), message, "recording a failed scan");
        }
        self.store.finish_scan(job, owner, &completion).await?;
        Ok(())
    }

    /// The scheduler: push rules and scheduled rescans every `schedule_every`; the
    /// database file is looked at every `database_watch_every` (a `stat`), and when it
    /// was replaced, or at start, images last matched against another database are
    /// re-matched; a log line whenever the database turns stale, missing or usable.
    async fn schedule(self) {
        let check = self.config.database_check();
        let mut seen_file: Option<Option<FileKey>> = None;
        let mut database_digest: Option<String> = None;
        let mut last_warning: Option<String> = None;
        let mut last_pass: Option<std::time::Instant> = None;
        while !self.stopping.load(Ordering::SeqCst) {
            let pass_due = last_pass.is_none_or(|at| at.elapsed() >= self.config.schedule_every);
            if pass_due {
                last_pass = Some(std::time::Instant::now());
                if let Err(error) = self.apply_policies().await {
                    tracing::warn!(%error, "scan policy pass failed");
                }
            }
            let file = file_key(&check.path);
            if pass_due || seen_file.as_ref() != Some(&file) {
                seen_file = Some(file);
                let check = check.clone();
                let seen = tokio::task::spawn_blocking(move || {
                    let state = check.state();
                    let digest = DatabaseCheck::digest(&state).map(str::to_owned);
                    (digest, check.warning(&state))
                })
                .await;
                if let Ok((current, warning)) = seen {
                    if warning != last_warning {
                        match &warning {
                            Some(message) => tracing::warn!("{message}"),
                            None if last_warning.is_some() => {
                                tracing::info!(
                                    "the vulnerability database is usable and fresh again"
                                );
                            }
                            None => {}
                        }
                        last_warning = warning;
                    }
                    if let Some(current) = current
                        && database_digest.as_ref() != Some(&current)
                    {
                        match self.rematch(&current).await {
                            Ok(count) => {
                                database_digest = Some(current);
                                if count > 0 {
                                    tracing::info!(database.digest = %database_digest.as_deref().unwrap_or_default(), images = count, "images were matched against another vulnerability database; rescanning them");
                                }
                            }
                            Err(error) => {
                                // Looked at again on the next pass.
                                seen_file = None;
                                tracing::warn!(%error, "rescan after a database change failed");
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(self.config.database_watch_every).await;
        }
    }

    async fn apply_policies(&self) -> Result<(), StoreError> {
        let due = due_scans(&self.store).await?;
        enqueue_due(&self.store, &due).await?;
        self.wake();
        Ok(())
    }

    /// Queues a rescan (layers come from the cache: only matching runs again) of
    /// every image whose newest READY result came from another database. The key
    /// `database-update:<imageId>:<digest>` makes nodes that notice the same change at
    /// once (scale-out) queue one rescan per image.
    async fn rematch(&self, database_digest: &str) -> Result<usize, StoreError> {
        let images = self
            .store
            .images_matched_with_other_database(database_digest)
            .await?;
        let mut queued = 0;
        for image in &images {
            let key = format!("database-update:{}:{database_digest}", image.image_id);
            let (_, created) = enqueue_scan(
                &self.store,
                &image.image_id,
                &image.repository_id,
                &image.registry_id,
                "database-update",
                Some(&key),
            )
            .await?;
            queued += usize::from(created);
        }
        self.wake();
        Ok(queued)
    }
}

/// A worker's open vulnerability database, kept across scans (with its page cache)
/// and opened again once the file is replaced (`crscan db update` renames a new file
/// over it, so its inode, size or time changes).
struct OpenDatabase {
    key: Option<FileKey>,
    database: crscan_vulndb::Database,
}

/// Size, modification time and inode of a file.
type FileKey = (u64, Option<std::time::SystemTime>, u64);

impl OpenDatabase {
    fn reuse_or_open(
        cached: Option<OpenDatabase>,
        path: &std::path::Path,
    ) -> Result<OpenDatabase, ScanError> {
        let key = file_key(path);
        if let Some(open) = cached
            && key.is_some()
            && open.key == key
        {
            return Ok(open);
        }
        let database = open_database(path)?;
        Ok(OpenDatabase { key, database })
    }
}

fn file_key(path: &std::path::Path) -> Option<FileKey> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.len(), metadata.modified().ok(), inode))
}

/// The idempotency key of the one scan a push rule queues for an image.
fn push_key(image_id: &str) -> String {
    format!("scan-on-push:{image_id}")
}

/// The idempotency key of the scheduled rescan that follows the image's result of
/// `last_scan_at` (`never` before its first): one per image and period in the cluster.
pub fn scheduled_key(image_id: &str, last_scan_at: Option<i64>) -> String {
    match last_scan_at {
        Some(at) => format!("scheduled:{image_id}:{at}"),
        None => format!("scheduled:{image_id}:never"),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A scan the scan policies ask for now, under the idempotency key every node of a
/// cluster computes alike for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueScan {
    pub image_id: String,
    pub repository_id: String,
    pub registry_id: String,
    pub policy_id: String,
    /// `scan-on-push:<imageId>` or `scheduled:<imageId>:<lastScanAt>`.
    pub key: String,
    pub on_push: bool,
}

/// The scans the policies ask for now: a push rule's scan not queued yet (its hook
/// did not run: another node, a crash), and each image whose newest result is older
/// than a schedule rule's `rescanPeriod`.
pub async fn due_scans(store: &Store) -> Result<Vec<DueScan>, StoreError> {
    let at = now();
    let mut due = Vec::new();
    for policy in store.list_scan_policies().await? {
        if policy.disabled {
            continue;
        }
        let rules = &policy.rules;
        for image in store.image_scan_ages(Some(&policy.registry_id)).await? {
            let push = image.last_scan_at.is_none()
                && image.created_at >= policy.created_at
                && rules.scans_on_push(&policy.registry_id, &image.repository_name);
            let scheduled = rules
                .rescan_period_ms(&policy.registry_id, &image.repository_name)
                .is_some_and(|period| image.last_scan_at.is_none_or(|last| at - last >= period));
            if !(push || scheduled) {
                continue;
            }
            // A push scan shares its key with `image_pushed`. A scheduled rescan is
            // keyed by the result it follows, so every node's scheduler asks for the
            // same one once per period.
            let key = if push {
                push_key(&image.image_id)
            } else {
                scheduled_key(&image.image_id, image.last_scan_at)
            };
            due.push(DueScan {
                image_id: image.image_id.clone(),
                repository_id: image.repository_id.clone(),
                registry_id: image.registry_id.clone(),
                policy_id: policy.id.clone(),
                key,
                on_push: push,
            });
        }
    }
    Ok(due)
}

/// Queues `due` scans under their keys; returns how many were new (a key another
/// node already queued is not queued again).
pub async fn enqueue_due(store: &Store, due: &[DueScan]) -> Result<usize, StoreError> {
    let mut created_count = 0;
    for scan in due {
        let (_, created) = enqueue_scan(
            store,
            &scan.image_id,
            &scan.repository_id,
            &scan.registry_id,
            "scan-policy",
            Some(&scan.key),
        )
        .await?;
        if created {
            created_count += 1;
            tracing::info!(image.id = %scan.image_id, policy.id = %scan.policy_id, on_push = scan.on_push, "scan queued by policy");
        }
    }
    Ok(created_count)
}

/// Records a queued scan with its running operation.
pub async fn enqueue_scan(
    store: &Store,
    image_id: &str,
    repository_id: &str,
    registry_id: &str,
    created_by: &str,
    idempotency_key: Option<&str>,
) -> Result<(Operation, bool), StoreError> {
    let scan_result_id = new_id(IdKind::ScanResult);
    let operation = Operation::running(
        created_by,
        now(),
        OperationMetadata::Scan {
            scan_result_id: scan_result_id.clone(),
        },
    );
    store
        .enqueue_scan(
            &NewScan {
                image_id: image_id.to_owned(),
                repository_id: repository_id.to_owned(),
                registry_id: registry_id.to_owned(),
                operation,
                scan_result_id,
            },
            idempotency_key,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::workers_for_memory;

    #[test]
    fn workers_fit_the_memory() {
        let mib = 1 << 20;
        assert_eq!(workers_for_memory(8, Some(1024 * mib), 256 * mib), 4);
        assert_eq!(workers_for_memory(2, Some(1024 * mib), 256 * mib), 2);
        assert_eq!(workers_for_memory(8, Some(100 * mib), 256 * mib), 1);
        assert_eq!(workers_for_memory(8, None, 256 * mib), 8);
        assert_eq!(workers_for_memory(0, None, 0), 1);
    }
}
