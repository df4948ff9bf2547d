//! The lifecycle tables on SQLite and PostgreSQL: policies by repository and by
//! registry, the ACTIVE list, updates, dry runs with their images kept as they were,
//! and deletes. The PostgreSQL half needs `CRSCAN_TEST_POSTGRES_URL`.
#![allow(clippy::unwrap_used)]

use crscan_model::Digest;
use crscan_store::{
    BlobRole, DryRunResult, IdKind, LifecyclePolicy, LifecyclePolicyOrder, LifecyclePolicyQuery,
    LifecycleRule, LifecycleStatus, NewImage, Store, StoreError, lifecycle_victims, new_id,
};

fn digest(seed: u8) -> Digest {
    Digest::from_bytes(crscan_model::DigestAlgorithm::Sha256, &[seed; 32])
}

async fn lifecycle(store: &Store) {
    let (registry, _) = store.ensure_default_registry().await.unwrap();
    let repository = store
        .upsert_repository(&registry.id, &format!("{}/app", registry.id))
        .await
        .unwrap();
    let other = store
        .upsert_repository(&registry.id, &format!("{}/other", registry.id))
        .await
        .unwrap();
    let mut images = Vec::new();
    for (seed, tag) in [(1, Some("v1")), (2, Some("v2")), (3, None)] {
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
                        BlobRole::Layer,
                        digest(seed + 100),
                        10,
                        "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
                    )],
                },
                tag,
            )
            .await
            .unwrap();
        images.push(image);
    }
    let rules = vec![
        LifecycleRule::new(String::new(), 0, "v.*".to_owned(), false, 1).unwrap(),
        LifecycleRule::new("untagged".to_owned(), 0, String::new(), true, 0).unwrap(),
    ];
    // Policies list oldest first: the second is a millisecond younger.
    let created_at = crscan_store::now();
    let policy = |repository_id: &str, status, created_at| LifecyclePolicy {
        id: new_id(IdKind::LifecyclePolicy),
        repository_id: repository_id.to_owned(),
        registry_id: registry.id.clone(),
        name: "p".to_owned(),
        description: String::new(),
        status,
        rules: rules.clone(),
        created_at,
    };
    let first = store
        .create_lifecycle_policy(&policy(
            &repository.id,
            LifecycleStatus::Disabled,
            created_at,
        ))
        .await
        .unwrap();
    let second = store
        .create_lifecycle_policy(&policy(&other.id, LifecycleStatus::Active, created_at + 1))
        .await
        .unwrap();
    assert_eq!(store.get_lifecycle_policy(&first.id).await.unwrap(), first);
    let by_repository = store
        .list_lifecycle_policies(&repository.id, "", 0, 10)
        .await
        .unwrap();
    assert_eq!(by_repository, std::slice::from_ref(&first));
    let by_registry = store
        .list_lifecycle_policies("", &registry.id, 0, 10)
        .await
        .unwrap();
    assert_eq!(by_registry.len(), 2);
    assert_eq!(
        store
            .list_lifecycle_policies("", &registry.id, 1, 10)
            .await
            .unwrap(),
        std::slice::from_ref(&second)
    );
    let newest_first = store
        .query_lifecycle_policies(&LifecyclePolicyQuery {
            registry_id: registry.id.clone(),
            order: LifecyclePolicyOrder::CreatedAt,
            descending: true,
            limit: 10,
            ..LifecyclePolicyQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest_first, [second.clone(), first.clone()]);
    let by_name = store
        .query_lifecycle_policies(&LifecyclePolicyQuery {
            name: Some("p".to_owned()),
            limit: 10,
            ..LifecyclePolicyQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.len(), 2);
    let unnamed = store
        .query_lifecycle_policies(&LifecyclePolicyQuery {
            name: Some("q".to_owned()),
            limit: 10,
            ..LifecyclePolicyQuery::default()
        })
        .await
        .unwrap();
    assert!(unnamed.is_empty());
    assert_eq!(
        store.active_lifecycle_policies().await.unwrap(),
        std::slice::from_ref(&second)
    );
    let mut active = first.clone();
    active.status = LifecycleStatus::Active;
    active.name = "renamed".to_owned();
    store.update_lifecycle_policy(&active).await.unwrap();
    assert_eq!(store.get_lifecycle_policy(&first.id).await.unwrap(), active);
    assert_eq!(store.active_lifecycle_policies().await.unwrap().len(), 2);

    // A dry run keeps the images as they were, even after they are deleted.
    let listed = store
        .list_images(&crscan_store::ImageQuery {
            repository_name: Some(repository.name.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let victims = lifecycle_victims(&active.rules, &listed, crscan_store::now());
    assert_eq!(victims.len(), 2, "{victims:?}");
    let affected: Vec<_> = listed
        .iter()
        .filter(|image| victims.contains(&image.id))
        .cloned()
        .collect();
    let result = DryRunResult {
        id: new_id(IdKind::DryRunResult),
        policy_id: active.id.clone(),
        run_at: crscan_store::now(),
        affected_count: 2,
    };
    store.insert_dry_run(&result, &affected).await.unwrap();
    for image in &affected {
        store.delete_image(&image.id).await.unwrap();
    }
    assert_eq!(store.get_dry_run(&result.id).await.unwrap(), result);
    assert_eq!(store.dry_run_images(&result.id).await.unwrap(), {
        let mut kept = affected.clone();
        for image in &mut kept {
            image.artifact_type = None;
            image.subject = None;
            image.children.clear();
        }
        kept
    });
    assert_eq!(
        store.list_dry_runs(&active.id, 0, 10).await.unwrap(),
        std::slice::from_ref(&result)
    );

    store.delete_lifecycle_policy(&active.id).await.unwrap();
    assert!(matches!(
        store.get_lifecycle_policy(&active.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_dry_run(&result.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_lifecycle_policy(&active.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // A deleted repository takes its policies along.
    store.delete_repository(&other.id).await.unwrap();
    assert!(matches!(
        store.get_lifecycle_policy(&second.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.active_lifecycle_policies().await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    lifecycle(&store).await;
}

#[tokio::test]
async fn postgres_lifecycle() {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{}", new_id(IdKind::Blob));
    let store = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    lifecycle(&store).await;
    store.drop_schema().await.unwrap();
}
