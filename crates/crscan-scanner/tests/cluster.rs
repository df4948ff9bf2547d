//! Periodic work in a cluster: two nodes (two connection pools on one store, SQLite
//! and PostgreSQL when `CRSCAN_TEST_POSTGRES_URL` is set; each run gets its own
//! schema) whose schedulers both find the same images due queue one scan per image
//! and period, and whose GC passes run once per slot.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crscan_blob::BlobStore;
use crscan_model::{Digest, DigestAlgorithm};
use crscan_registry::{Limits, Registry};
use crscan_scanner::LayerCache;
use crscan_scanner::worker::{due_scans, enqueue_due};
use crscan_store::{
    BlobRole, IdKind, MIN_RESCAN_PERIOD_SECONDS, NewImage, ScanPolicy, ScanRules, ScheduledRule,
    Store, new_id, now,
};

async fn put_images(store: &Store, count: u8) -> String {
    let (registry, _) = store.ensure_default_registry().await.unwrap();
    for seed in 0..count {
        let repository = store
            .upsert_repository(&registry.id, &format!("{}/app{seed}", registry.id))
            .await
            .unwrap();
        store
            .put_image(
                &NewImage {
                    repository_id: repository.id.clone(),
                    digest: Digest::from_bytes(DigestAlgorithm::Sha256, &[seed; 32]),
                    media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                    manifest_size: 100,
                    artifact_type: None,
                    subject: None,
                    blobs: vec![(
                        BlobRole::Config,
                        Digest::from_bytes(DigestAlgorithm::Sha256, &[seed + 100; 32]),
                        10,
                        "application/json".to_owned(),
                    )],
                },
                None,
            )
            .await
            .unwrap();
    }
    registry.id
}

/// Both nodes' schedulers see the same images due (none scanned yet, a daily rescan
/// rule) before either queues: the keys make one scan per image.
async fn scheduled_rescans_once(node_a: &Store, node_b: &Store) {
    let registry_id = put_images(node_a, 3).await;
    node_a
        .create_scan_policy(&ScanPolicy {
            id: new_id(IdKind::ScanPolicy),
            registry_id: registry_id.clone(),
            name: "daily".to_owned(),
            description: String::new(),
            rules: ScanRules {
                push_rule: None,
                schedule_rules: vec![
                    ScheduledRule::new(vec!["*".to_owned()], MIN_RESCAN_PERIOD_SECONDS, false)
                        .unwrap(),
                ],
            },
            disabled: false,
            created_at: now(),
        })
        .await
        .unwrap();
    let due_a = due_scans(node_a).await.unwrap();
    let due_b = due_scans(node_b).await.unwrap();
    assert_eq!(due_a.len(), 3, "{due_a:?}");
    assert_eq!(due_a, due_b, "both nodes compute the same keys");
    assert!(due_a.iter().all(|due| due.key.starts_with("scheduled:")));
    let (queued_a, queued_b) =
        tokio::join!(enqueue_due(node_a, &due_a), enqueue_due(node_b, &due_b));
    assert_eq!(queued_a.unwrap() + queued_b.unwrap(), 3);
    let counts = node_b.job_counts().await.unwrap();
    assert_eq!(counts, vec![("queued".to_owned(), 3)], "one scan per image");
    // The queued scans are this period's: neither node finds the images due again.
    assert!(due_scans(node_a).await.unwrap().is_empty());
    assert!(due_scans(node_b).await.unwrap().is_empty());
}

/// Two nodes run the same GC slot: one collects the registry, the other only its own
/// layer cache; the next slot is anyone's again.
async fn gc_once_per_slot(node_a: &Store, node_b: &Store, dir: &std::path::Path) {
    let blobs = Arc::new(BlobStore::open(&dir.join("data")).await.unwrap());
    let registry_a = Registry::new(node_a.clone(), blobs.clone(), Limits::default());
    let registry_b = Registry::new(node_b.clone(), blobs, Limits::default());
    let cache_a = LayerCache::open(dir.join("cache-a")).unwrap();
    let cache_b = LayerCache::open(dir.join("cache-b")).unwrap();
    let slot = crscan_store::now() / 1000;
    let (ran_a, ran_b) = tokio::join!(
        crscan_scanner::gc::run_slot(&registry_a, &cache_a, slot, "node-a"),
        crscan_scanner::gc::run_slot(&registry_b, &cache_b, slot, "node-b")
    );
    let (ran_a, ran_b) = (ran_a.unwrap(), ran_b.unwrap());
    assert!(
        ran_a.is_some() != ran_b.is_some(),
        "exactly one node collects slot {slot}: {ran_a:?} {ran_b:?}"
    );
    let again = crscan_scanner::gc::run_slot(&registry_b, &cache_b, slot, "node-b")
        .await
        .unwrap();
    assert!(again.is_none(), "a slot runs once");
    let next = crscan_scanner::gc::run_slot(&registry_b, &cache_b, slot + 1, "node-b")
        .await
        .unwrap();
    assert!(next.is_some(), "the next slot runs");
}

#[tokio::test]
async fn sqlite_cluster_work_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let node_a = Store::open_sqlite(&path).await.unwrap();
    let node_b = Store::open_sqlite(&path).await.unwrap();
    scheduled_rescans_once(&node_a, &node_b).await;
    gc_once_per_slot(&node_a, &node_b, dir.path()).await;
}

#[tokio::test]
async fn postgres_cluster_work_runs_once() {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("test_{}", new_id(IdKind::Blob));
    let node_a = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    let node_b = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    scheduled_rescans_once(&node_a, &node_b).await;
    gc_once_per_slot(&node_a, &node_b, dir.path()).await;
    node_a.drop_schema().await.unwrap();
}
