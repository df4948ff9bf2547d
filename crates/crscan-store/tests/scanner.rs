//! The scanner's tables and the job queue, run on SQLite and on PostgreSQL (the
//! PostgreSQL half needs `CRSCAN_TEST_POSTGRES_URL`; each run gets its own schema).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use crscan_model::{
    Digest, DigestAlgorithm, Finding, FindingStatus, PackageType, Severity, SeverityCounts,
    SeveritySource,
};
use crscan_store::{
    BlobRole, ErrorStatus, IdKind, NewImage, NewScan, Operation, OperationMetadata,
    OperationResponse, OperationResult, PageStart, PushRule, ScanCompletion, ScanOrder, ScanPolicy,
    ScanQuery, ScanRules, ScanStatus, Store, StoreError, VulnerabilityQuery, new_id, now,
};

fn digest(seed: u8) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &[seed; 32])
}

async fn image(store: &Store, seed: u8) -> (String, String, String) {
    let (registry, _) = store.ensure_default_registry().await.unwrap();
    let repository = store
        .upsert_repository(&registry.id, &format!("{}/app{seed}", registry.id))
        .await
        .unwrap();
    let image = store
        .put_image(
            &NewImage {
                repository_id: repository.id.clone(),
                digest: digest(seed),
                media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                manifest_size: 100,
                artifact_type: None,
                subject: None,
                blobs: vec![(
                    BlobRole::Config,
                    digest(seed + 1),
                    10,
                    "application/json".to_owned(),
                )],
            },
            None,
        )
        .await
        .unwrap();
    (image.id, repository.id, registry.id)
}

fn new_scan(image: &(String, String, String)) -> NewScan {
    let at = now();
    let scan_result_id = new_id(IdKind::ScanResult);
    NewScan {
        image_id: image.0.clone(),
        repository_id: image.1.clone(),
        registry_id: image.2.clone(),
        operation: Operation::running(
            "test",
            at,
            OperationMetadata::Scan {
                scan_result_id: scan_result_id.clone(),
            },
        ),
        scan_result_id,
    }
}

fn ready(findings: Vec<Finding>) -> ScanCompletion {
    ScanCompletion {
        status: ScanStatus::Ready,
        scanned_at: now(),
        findings,
        manifest_digest: Some(digest(1).to_string()),
        database_digest: Some("db".to_owned()),
        error: None,
    }
}

fn vulnerability(severity: Severity, name: &str) -> Finding {
    Finding {
        id: name.to_owned(),
        aliases: Vec::new(),
        advisories: Vec::new(),
        references: Vec::new(),
        summary: None,
        description: None,
        severity,
        severity_source: SeveritySource::None,
        cvss: None,
        package_name: "musl".to_owned(),
        source_package: None,
        installed_version: "1.1.14-r10".to_owned(),
        fixed_by: None,
        status: FindingStatus::NotFixedYet,
        package_type: PackageType::Apk,
        ecosystem: "Alpine:v3.5".to_owned(),
        purl: "pkg:apk/alpine/musl@1.1.14-r10".to_owned(),
        binary_packages: vec!["musl".to_owned()],
        layer_digest: None,
        locations: vec!["/lib/apk/db/installed".to_owned()],
        advisory_link: None,
    }
}

async fn scanner_suite(store: &Store) {
    let first = image(store, 1).await;

    // Enqueue, idempotently.
    let scan = new_scan(&first);
    let (operation, fresh) = store.enqueue_scan(&scan, Some("key-a")).await.unwrap();
    assert!(fresh);
    let (again, fresh_again) = store
        .enqueue_scan(&new_scan(&first), Some("key-a"))
        .await
        .unwrap();
    assert!(!fresh_again);
    assert_eq!(again.id, operation.id);
    let running = store.get_scan_result(&scan.scan_result_id).await.unwrap();
    assert_eq!(running.status, ScanStatus::Running);
    assert_eq!(running.scanned_at, None);
    assert!(matches!(
        store.last_scan_result(&first.0).await,
        Err(StoreError::NotFound { .. })
    ));

    // Claim, renew, cancel flag, and a lost lease.
    let job = store
        .claim_job("worker-a", 60_000, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.scan_result_id, scan.scan_result_id);
    assert_eq!(job.attempts, 1);
    assert!(
        store
            .claim_job("worker-b", 60_000, 10)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.renew_job(&job.id, "worker-a", 60_000).await.unwrap(),
        Some(false)
    );
    assert!(store.request_cancel(&operation.id).await.unwrap());
    assert_eq!(
        store.renew_job(&job.id, "worker-a", 60_000).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store.renew_job(&job.id, "worker-b", 60_000).await.unwrap(),
        None
    );

    // Retry puts it back; an expired lease is taken by another worker, and only the
    // lease holder can finish it.
    assert!(
        store
            .retry_job(&job.id, "worker-a", 0, "transient")
            .await
            .unwrap()
    );
    let retried = store.claim_job("worker-a", 0, 10).await.unwrap().unwrap();
    assert_eq!((retried.id.clone(), retried.attempts), (job.id.clone(), 2));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let taken = store
        .claim_job("worker-b", 60_000, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.id.clone(), taken.attempts), (job.id.clone(), 3));
    let completion = ready(vec![
        vulnerability(Severity::Undefined, "CVE-2017-15650"),
        vulnerability(Severity::Critical, "CVE-2016-8859"),
        vulnerability(Severity::Undefined, "CVE-2016-0001"),
    ]);
    assert!(
        !store
            .finish_scan(&retried, "worker-a", &completion)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_scan(&taken, "worker-b", &completion)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_scan(&taken, "worker-b", &completion)
            .await
            .unwrap()
    );

    let done = store.get_scan_result(&scan.scan_result_id).await.unwrap();
    assert_eq!(done.status, ScanStatus::Ready);
    assert_eq!(
        done.counts,
        SeverityCounts {
            critical: 1,
            undefined: 2,
            ..SeverityCounts::default()
        }
    );
    assert!(done.scanned_at.is_some());
    assert_eq!(store.last_scan_result(&first.0).await.unwrap(), done);
    let finished_operation = store.get_operation(&operation.id).await.unwrap();
    assert!(finished_operation.done);
    assert_eq!(
        finished_operation.result,
        Some(OperationResult::Response(Box::new(
            OperationResponse::ScanResult(done.clone())
        )))
    );

    // Vulnerabilities: severity order, filters, paging.
    let query = |severity, name: Option<&str>, descending, offset, limit| VulnerabilityQuery {
        scan_result_id: scan.scan_result_id.clone(),
        severity,
        name: name.map(str::to_owned),
        descending,
        offset,
        limit,
    };
    let all = store
        .list_vulnerabilities(&query(None, None, false, 0, 10))
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(names, ["CVE-2016-8859", "CVE-2016-0001", "CVE-2017-15650"]);
    let descending = store
        .list_vulnerabilities(&query(None, None, true, 0, 1))
        .await
        .unwrap();
    assert_eq!(descending[0].severity, Severity::Undefined);
    let page = store
        .list_vulnerabilities(&query(None, None, false, 1, 1))
        .await
        .unwrap();
    assert_eq!(page[0].id, "CVE-2016-0001");
    // Findings come back whole, as they were stored.
    assert_eq!(page[0], vulnerability(Severity::Undefined, "CVE-2016-0001"));
    let critical = store
        .list_vulnerabilities(&query(Some(Severity::Critical), None, false, 0, 10))
        .await
        .unwrap();
    assert_eq!(critical.len(), 1);
    let named = store
        .list_vulnerabilities(&query(None, Some("CVE-2017-15650"), false, 0, 10))
        .await
        .unwrap();
    assert_eq!(named.len(), 1);

    // Listing scans by image and repository, by status.
    let list = |status, image: bool| ScanQuery {
        image_id: image.then(|| first.0.clone()),
        repository_id: (!image).then(|| first.1.clone()),
        status,
        order: ScanOrder::ScannedAt,
        descending: true,
        start: PageStart::default(),
        limit: 10,
    };
    assert_eq!(
        store
            .list_scan_results(&list(None, true))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_scan_results(&list(Some(ScanStatus::Ready), false))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_scan_results(&list(Some(ScanStatus::Error), true))
            .await
            .unwrap()
            .is_empty()
    );

    // Retention: five more READY scans of the same image leave three.
    for _ in 0..5 {
        let scan = new_scan(&first);
        store.enqueue_scan(&scan, None).await.unwrap();
        let job = store
            .claim_job("worker-c", 60_000, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .finish_scan(
                    &job,
                    "worker-c",
                    &ready(vec![vulnerability(Severity::Critical, "CVE-1")])
                )
                .await
                .unwrap()
        );
    }
    let kept = store.list_scan_results(&list(None, true)).await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|result| result.status == ScanStatus::Ready));

    // The per-registry cap holds back a second running job.
    let second = image(store, 2).await;
    store.enqueue_scan(&new_scan(&second), None).await.unwrap();
    store.enqueue_scan(&new_scan(&second), None).await.unwrap();
    let capped = store
        .claim_job("worker-d", 60_000, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .claim_job("worker-e", 60_000, 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .finish_scan(
                &capped,
                "worker-d",
                &ready(vec![vulnerability(Severity::High, "CVE-2")])
            )
            .await
            .unwrap()
    );
    let next = store
        .claim_job("worker-e", 60_000, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .finish_scan(
                &next,
                "worker-e",
                &ready(vec![vulnerability(Severity::High, "CVE-2")])
            )
            .await
            .unwrap()
    );

    // Policies: one per registry.
    let policy = ScanPolicy {
        id: new_id(IdKind::ScanPolicy),
        registry_id: first.2.clone(),
        name: "weekly".to_owned(),
        description: String::new(),
        rules: ScanRules {
            push_rule: Some(PushRule::new(vec!["*".to_owned()], false).unwrap()),
            schedule_rules: Vec::new(),
        },
        disabled: false,
        created_at: now(),
    };
    store.create_scan_policy(&policy).await.unwrap();
    assert!(matches!(
        store
            .create_scan_policy(&ScanPolicy {
                id: new_id(IdKind::ScanPolicy),
                ..policy.clone()
            })
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        store.get_scan_policy_by_registry(&first.2).await.unwrap(),
        policy
    );
    let changed = ScanPolicy {
        description: "changed".to_owned(),
        ..policy.clone()
    };
    store.update_scan_policy(&changed).await.unwrap();
    assert_eq!(
        store.get_scan_policy(&policy.id).await.unwrap().description,
        "changed"
    );
    assert_eq!(
        store.image_scan_ages(Some(&first.2)).await.unwrap().len(),
        2
    );
    store.delete_scan_policy(&policy.id).await.unwrap();
    assert!(matches!(
        store.get_scan_policy(&policy.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// 1,000 queued scans and eight concurrent workers: every scan finishes once.
async fn thousand_scans(store: &Store) {
    let target = image(store, 9).await;
    let mut expected = HashSet::new();
    for _ in 0..1000 {
        let scan = new_scan(&target);
        expected.insert(scan.scan_result_id.clone());
        store.enqueue_scan(&scan, None).await.unwrap();
    }
    let finished = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for index in 0..8 {
        let store = store.clone();
        let finished = finished.clone();
        workers.push(tokio::spawn(async move {
            let owner = format!("worker-{index}");
            while let Some(job) = store.claim_job(&owner, 60_000, 100).await.unwrap() {
                let completion = ScanCompletion {
                    status: ScanStatus::Error,
                    scanned_at: now(),
                    findings: Vec::new(),
                    manifest_digest: None,
                    database_digest: None,
                    error: Some(ErrorStatus {
                        code: 9,
                        message: "test".to_owned(),
                    }),
                };
                if store.finish_scan(&job, &owner, &completion).await.unwrap() {
                    finished.lock().await.push(job.scan_result_id.clone());
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let finished = finished.lock().await;
    assert_eq!(finished.len(), 1000);
    let unique: HashSet<String> = finished.iter().cloned().collect();
    assert_eq!(unique, expected);
    let counts = store.job_counts().await.unwrap();
    assert!(
        counts.iter().all(|(state, _)| state == "done"),
        "{counts:?}"
    );
}

/// A scan with more findings than one INSERT statement carries keeps all of them, in
/// order.
async fn many_findings(store: &Store) {
    let target = image(store, 11).await;
    let scan = new_scan(&target);
    store.enqueue_scan(&scan, None).await.unwrap();
    let job = store
        .claim_job("worker-many", 60_000, 100)
        .await
        .unwrap()
        .unwrap();
    let names: Vec<String> = (0..250)
        .map(|index| format!("CVE-2000-{index:04}"))
        .collect();
    let completion = ready(
        names
            .iter()
            .map(|name| vulnerability(Severity::Undefined, name))
            .collect(),
    );
    assert!(
        store
            .finish_scan(&job, "worker-many", &completion)
            .await
            .unwrap()
    );
    let listed = store
        .list_vulnerabilities(&VulnerabilityQuery {
            scan_result_id: scan.scan_result_id.clone(),
            severity: None,
            name: None,
            descending: false,
            offset: 0,
            limit: 1000,
        })
        .await
        .unwrap();
    let listed: Vec<String> = listed.into_iter().map(|v| v.id).collect();
    assert_eq!(listed, names);
}

/// Writers racing on one key (PostgreSQL has no write gate): one wins, and the others
/// get what a second call would get, never a database error.
async fn racing_writers(store: &Store) {
    async fn all<T: Send + 'static>(
        tasks: Vec<tokio::task::JoinHandle<Result<T, StoreError>>>,
    ) -> Vec<Result<T, StoreError>> {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }
    const RACERS: usize = 8;

    // The same registry created at once.
    let tasks = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_registry("race-folder", "race-registry", &Default::default())
                    .await
            })
        })
        .collect();
    let created = all(tasks).await;
    assert_eq!(created.iter().filter(|result| result.is_ok()).count(), 1);
    let registry_id = created
        .iter()
        .find_map(|result| result.as_ref().ok())
        .unwrap()
        .id
        .clone();
    // The losers are told the folder already holds that registry, naming it.
    assert!(
        created.iter().all(|result| match result {
            Ok(_) => true,
            Err(StoreError::OneRegistryPerFolder { id, .. }) => *id == registry_id,
            Err(_) => false,
        }),
        "{created:?}"
    );

    // One scan per idempotency key.
    let target = image(store, 21).await;
    let tasks = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let scan = new_scan(&target);
            tokio::spawn(async move { store.enqueue_scan(&scan, Some("race-key")).await })
        })
        .collect();
    let queued: Vec<(Operation, bool)> = all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(queued.iter().filter(|(_, created)| *created).count(), 1);
    let ids: HashSet<&str> = queued
        .iter()
        .map(|(operation, _)| operation.id.as_str())
        .collect();
    assert_eq!(ids.len(), 1);

    // One policy per registry.
    let tasks = (0..RACERS)
        .map(|index| {
            let store = store.clone();
            let policy = ScanPolicy {
                id: new_id(IdKind::ScanPolicy),
                registry_id: registry_id.clone(),
                name: format!("racer-{index}"),
                description: String::new(),
                rules: ScanRules::default(),
                disabled: false,
                created_at: now(),
            };
            tokio::spawn(async move { store.create_scan_policy(&policy).await })
        })
        .collect();
    let policies = all(tasks).await;
    assert_eq!(policies.iter().filter(|result| result.is_ok()).count(), 1);
    assert!(
        policies
            .iter()
            .all(|result| matches!(result, Ok(_) | Err(StoreError::AlreadyExists { .. }))),
        "{policies:?}"
    );

    // The same manifest pushed at once: one image.
    let repository = store.get_repository(&target.1).await.unwrap();
    let tasks = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let new = NewImage {
                repository_id: repository.id.clone(),
                digest: digest(40),
                media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                manifest_size: 100,
                artifact_type: None,
                subject: None,
                blobs: vec![(
                    BlobRole::Config,
                    digest(41),
                    10,
                    "application/json".to_owned(),
                )],
            };
            tokio::spawn(async move { store.put_image(&new, Some("latest")).await })
        })
        .collect();
    let images: HashSet<String> = all(tasks)
        .await
        .into_iter()
        .map(|result| result.unwrap().id)
        .collect();
    assert_eq!(images.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_scanner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    scanner_suite(&store).await;
    thousand_scans(&store).await;
    many_findings(&store).await;
    racing_writers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_scanner() {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{}", new_id(IdKind::Blob));
    let store = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    scanner_suite(&store).await;
    thousand_scans(&store).await;
    many_findings(&store).await;
    racing_writers(&store).await;
    store.drop_schema().await.unwrap();
}

/// Queues a scan of `image` and finishes it with `findings`; returns its id.
async fn scan_to_ready(
    store: &Store,
    image: &(String, String, String),
    findings: Vec<Finding>,
) -> String {
    let scan = new_scan(image);
    store.enqueue_scan(&scan, None).await.unwrap();
    let job = store
        .claim_job("console", 60_000, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.scan_result_id, scan.scan_result_id);
    assert!(
        store
            .finish_scan(&job, "console", &ready(findings))
            .await
            .unwrap()
    );
    scan.scan_result_id
}

/// The console's summaries: each image's newest finished scan is the one GetLast
/// answers with, a scan still running is not it but is listed as running, and each
/// repository comes with its image count and last push.
async fn console_summaries(store: &Store) {
    use crscan_store::ScanScope;
    let first = image(store, 101).await;
    let second = image(store, 103).await;
    scan_to_ready(
        store,
        &first,
        vec![vulnerability(Severity::Critical, "CVE-1")],
    )
    .await;
    // The clock moves on, so the second scan finishes later than the first.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let newest = scan_to_ready(
        store,
        &first,
        vec![
            vulnerability(Severity::High, "CVE-2"),
            vulnerability(Severity::Low, "CVE-3"),
        ],
    )
    .await;
    let second_scan = scan_to_ready(store, &second, Vec::new()).await;
    let running = new_scan(&first);
    store.enqueue_scan(&running, None).await.unwrap();

    let latest = store.latest_scan_results(&ScanScope::All).await.unwrap();
    assert_eq!(latest.len(), 2, "{latest:?}");
    let of_first = latest
        .iter()
        .find(|result| result.image_id == first.0)
        .unwrap();
    assert_eq!(
        of_first.id,
        store.last_scan_result(&first.0).await.unwrap().id
    );
    assert_eq!(of_first.id, newest);
    assert_eq!(
        of_first.counts,
        SeverityCounts {
            high: 1,
            low: 1,
            ..SeverityCounts::default()
        }
    );
    let in_repository = store
        .latest_scan_results(&ScanScope::Repository(second.1.clone()))
        .await
        .unwrap();
    assert_eq!(in_repository.len(), 1);
    assert_eq!(in_repository[0].id, second_scan);
    let in_registry = store
        .latest_scan_results(&ScanScope::Registry(first.2.clone()))
        .await
        .unwrap();
    assert_eq!(in_registry.len(), 2);
    assert!(
        store
            .latest_scan_results(&ScanScope::Registry("crpnone".to_owned()))
            .await
            .unwrap()
            .is_empty()
    );

    let queued = store.running_scan_results(&ScanScope::All).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id, running.scan_result_id);
    assert_eq!(queued[0].status, ScanStatus::Running);

    let summaries = store.repository_summaries(&first.2).await.unwrap();
    let names: Vec<&str> = summaries
        .iter()
        .map(|summary| summary.repository.name.as_str())
        .collect();
    assert_eq!(
        names,
        [format!("{}/app101", first.2), format!("{}/app103", first.2)]
    );
    let image = store.get_image(&first.0).await.unwrap();
    assert_eq!(summaries[0].image_count, 1);
    assert_eq!(summaries[0].last_push, Some(image.created_at));
    let empty = store
        .upsert_repository(&first.2, &format!("{}/empty", first.2))
        .await
        .unwrap();
    let summaries = store.repository_summaries(&first.2).await.unwrap();
    let empty = summaries
        .iter()
        .find(|summary| summary.repository.id == empty.id)
        .unwrap();
    assert_eq!((empty.image_count, empty.last_push), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_console_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    console_summaries(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_console_summaries() {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{}", new_id(IdKind::Blob));
    let store = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    console_summaries(&store).await;
    store.drop_schema().await.unwrap();
}
