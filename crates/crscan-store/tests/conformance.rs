//! One conformance suite for the store, run on SQLite and on PostgreSQL. The PostgreSQL
//! half needs `CRSCAN_TEST_POSTGRES_URL`; each run gets its own schema, dropped after.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crscan_model::Digest;
use crscan_store::{
    AccessBinding, BlobRole, ImageOrder, ImageQuery, IpAction, IpPermission, NewImage, Operation,
    PageStart, RepositoryQuery, Store, StoreError,
};

fn digest(seed: u8) -> Digest {
    crscan_model::Digest::from_bytes(crscan_model::DigestAlgorithm::Sha256, &[seed; 32])
}

fn new_image(repository_id: &str, seed: u8, layers: &[u8]) -> NewImage {
    let mut blobs = vec![(
        BlobRole::Config,
        digest(seed + 100),
        10,
        "application/vnd.oci.image.config.v1+json".to_owned(),
    )];
    for layer in layers {
        blobs.push((
            BlobRole::Layer,
            digest(*layer),
            1000 + i64::from(*layer),
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
        ));
    }
    NewImage {
        repository_id: repository_id.to_owned(),
        digest: digest(seed),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        manifest_size: 500,
        artifact_type: None,
        subject: None,
        blobs,
    }
}

async fn conformance(store: &Store) {
    // Registries: default registry, uniqueness, lookup by id or name, update, listing.
    let (default, created) = store.ensure_default_registry().await.unwrap();
    assert!(created);
    assert_eq!(default.name, "default");
    assert_eq!(default.id.len(), 20);
    let (again, created_again) = store.ensure_default_registry().await.unwrap();
    assert!(!created_again);
    assert_eq!(again, default);
    assert_eq!(store.find_registry("default").await.unwrap().id, default.id);
    assert_eq!(
        store.find_registry(&default.id).await.unwrap().name,
        "default"
    );
    // One registry per folder, as in the hosted service: the refusal names the one
    // that exists, whatever the new name.
    let refused = store
        .create_registry("default", "other", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::OneRegistryPerFolder { id, .. } if *id == default.id),
        "{refused}"
    );
    assert!(refused.to_string().contains("\"default\""), "{refused}");
    assert!(matches!(
        store
            .create_registry("folder-c", "default", &BTreeMap::new())
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let mut labels = BTreeMap::new();
    labels.insert("team".to_owned(), "core".to_owned());
    let second = store
        .create_registry("folder-b", "second", &labels)
        .await
        .unwrap();
    assert_eq!(store.get_registry(&second.id).await.unwrap().labels, labels);
    let renamed = store
        .update_registry(&second.id, Some("renamed"), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.labels, labels);
    assert_eq!(
        store
            .list_registries(Some("folder-b"), None, &PageStart::default(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_registries(None, None, &PageStart::default(), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        store.get_registry("crpnothere").await,
        Err(StoreError::NotFound { .. })
    ));

    // Repositories: upsert is idempotent, lookups by id and name, listing by registry.
    let app_name = format!("{}/app", default.id);
    let app = store
        .upsert_repository(&default.id, &app_name)
        .await
        .unwrap();
    assert!(app.id.starts_with("crt"));
    assert_eq!(
        store
            .upsert_repository(&default.id, &app_name)
            .await
            .unwrap(),
        app
    );
    assert_eq!(store.get_repository_by_name(&app_name).await.unwrap(), app);
    let other = store
        .upsert_repository(&second.id, &format!("{}/other", second.id))
        .await
        .unwrap();
    let listed = store
        .list_repositories(&RepositoryQuery {
            registry_id: Some(default.id.clone()),
            limit: 10,
            ..RepositoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed, vec![app.clone()]);
    let by_folder = store
        .list_repositories(&RepositoryQuery {
            folder_id: Some("folder-b".to_owned()),
            limit: 10,
            ..RepositoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_folder, vec![other.clone()]);
    assert!(matches!(
        store.delete_registry(&second.id).await,
        Err(StoreError::FailedPrecondition(_))
    ));

    // Images and tags: a tag moves on re-push; the old image stays, untagged.
    let first = store
        .put_image(&new_image(&app.id, 1, &[11, 12]), Some("latest"))
        .await
        .unwrap();
    assert!(first.id.starts_with("crp"));
    assert_eq!(first.tags, vec!["latest".to_owned()]);
    assert_eq!(first.layers.len(), 2);
    assert_eq!(first.config.as_ref().unwrap().digest, digest(101));
    assert_eq!(first.compressed_size, 10 + 1011 + 1012);
    assert_eq!(first.name, app_name);
    let second_image = store
        .put_image(&new_image(&app.id, 2, &[11, 13]), Some("latest"))
        .await
        .unwrap();
    assert_eq!(second_image.tags, vec!["latest".to_owned()]);
    assert!(store.get_image(&first.id).await.unwrap().tags.is_empty());
    let tagged = store
        .find_image_by_tag(&app.id, "latest")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tagged.id, second_image.id);
    // Re-putting the same digest returns the same image and can add a tag.
    let same = store
        .put_image(&new_image(&app.id, 1, &[11, 12]), Some("v1"))
        .await
        .unwrap();
    assert_eq!(same.id, first.id);
    assert_eq!(same.tags, vec!["v1".to_owned()]);
    for tag in ["a", "b", "c"] {
        store
            .put_image(&new_image(&app.id, 1, &[11, 12]), Some(tag))
            .await
            .unwrap();
    }
    assert_eq!(
        store.list_tags(&app.id, None, 2).await.unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(
        store.list_tags(&app.id, Some("b"), 10).await.unwrap(),
        vec!["c", "latest", "v1"]
    );
    assert!(store.delete_tag(&app.id, "a").await.unwrap());
    assert!(!store.delete_tag(&app.id, "a").await.unwrap());
    assert_eq!(
        store
            .find_image_by_digest(&app.id, &digest(2))
            .await
            .unwrap()
            .unwrap()
            .id,
        second_image.id
    );

    // Listing images: by repository name, by registry, by folder; ordering; paging.
    let all = store
        .list_images(&ImageQuery {
            repository_name: Some(app_name.clone()),
            order_by: vec![(ImageOrder::Digest, true)],
            limit: 10,
            ..ImageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|image| image.digest.clone())
            .collect::<Vec<_>>(),
        vec![digest(2), digest(1)]
    );
    let page = store
        .list_images(&ImageQuery {
            folder_id: Some("default".to_owned()),
            order_by: vec![(ImageOrder::Digest, false)],
            start: PageStart {
                after: None,
                offset: 1,
            },
            limit: 1,
            ..ImageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].digest, digest(2));

    // Keyset pages: a page that starts after a row stays put when a row is inserted
    // before it; when its anchor is gone, the offset is used.
    let by_digest = |start: PageStart| ImageQuery {
        repository_name: Some(app_name.clone()),
        order_by: vec![(ImageOrder::Digest, false)],
        start,
        limit: 1,
        ..ImageQuery::default()
    };
    let first_page = store
        .list_images(&by_digest(PageStart::default()))
        .await
        .unwrap();
    assert_eq!(first_page[0].digest, digest(1));
    let inserted = store
        .put_image(&new_image(&app.id, 0, &[11]), None)
        .await
        .unwrap();
    let after_first = PageStart {
        after: Some(first_page[0].id.clone()),
        offset: 1,
    };
    let next = store
        .list_images(&by_digest(after_first.clone()))
        .await
        .unwrap();
    assert_eq!(next[0].digest, digest(2), "the inserted row moved the page");
    for descending in [false, true] {
        let next = store
            .list_repositories(&RepositoryQuery {
                registry_id: Some(app.registry_id.clone()),
                descending,
                start: PageStart {
                    after: Some(app.id.clone()),
                    offset: 0,
                },
                limit: 10,
                ..RepositoryQuery::default()
            })
            .await
            .unwrap();
        assert!(next.is_empty(), "{next:?}");
    }
    store.delete_image(&inserted.id).await.unwrap();
    let gone = PageStart {
        after: Some(inserted.id.clone()),
        offset: 1,
    };
    assert_eq!(
        store.list_images(&by_digest(gone)).await.unwrap()[0].digest,
        digest(2)
    );
    let none = store
        .list_images(&ImageQuery {
            registry_id: Some(second.id.clone()),
            limit: 10,
            ..ImageQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    // Referrers: an artifact whose subject is the first image.
    let mut signature = new_image(&app.id, 3, &[14]);
    signature.subject = Some(digest(1));
    signature.artifact_type = Some("application/example.sig".to_owned());
    store.put_image(&signature, None).await.unwrap();
    assert_eq!(
        store
            .referrers(&app.id, &digest(1), None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .referrers(&app.id, &digest(1), Some("application/example.sig"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .referrers(&app.id, &digest(1), Some("other"))
            .await
            .unwrap()
            .is_empty()
    );

    // Blob links and the referenced set that garbage collection keeps.
    assert!(!store.blob_linked(&app.id, &digest(50)).await.unwrap());
    store.link_blob(&app.id, &digest(50)).await.unwrap();
    store.link_blob(&app.id, &digest(50)).await.unwrap();
    assert!(store.blob_linked(&app.id, &digest(50)).await.unwrap());
    assert!(!store.blob_linked(&other.id, &digest(50)).await.unwrap());
    let referenced = store.referenced_digests().await.unwrap();
    for seed in [1, 2, 3, 11, 12, 13, 14, 101] {
        assert!(
            referenced.contains(&digest(seed).to_string()),
            "missing {seed}"
        );
    }
    assert!(!referenced.contains(&digest(50).to_string()));
    assert!(store.unlink_blob(&app.id, &digest(50)).await.unwrap());

    // Deleting an image removes its tags and references.
    store.delete_image(&second_image.id).await.unwrap();
    assert!(
        store
            .find_image_by_tag(&app.id, "latest")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .referenced_digests()
            .await
            .unwrap()
            .contains(&digest(13).to_string())
    );
    assert!(matches!(
        store.delete_image(&second_image.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // Catalog and repository deletion.
    let names = store.catalog(None, 10).await.unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(
        store.catalog(Some(&names[0]), 10).await.unwrap(),
        vec![names[1].clone()]
    );
    store.delete_repository(&other.id).await.unwrap();
    store.delete_registry(&second.id).await.unwrap();
    assert!(store.get_repository(&other.id).await.is_err());

    // Operations with idempotency keys.
    let operation = Operation::finished(
        "admin",
        crscan_store::now(),
        crscan_store::OperationMetadata::DeleteRegistry {
            registry_id: "x".to_owned(),
        },
        crscan_store::OperationResponse::Empty,
    );
    let (stored, fresh) = store
        .insert_operation(&operation, Some("key-1"))
        .await
        .unwrap();
    assert!(fresh);
    assert_eq!(stored, operation);
    assert_eq!(store.get_operation(&operation.id).await.unwrap(), operation);
    let mut repeat = operation.clone();
    repeat.id = crscan_store::new_id(crscan_store::IdKind::Operation);
    let (earlier, fresh) = store
        .insert_operation(&repeat, Some("key-1"))
        .await
        .unwrap();
    assert!(!fresh);
    assert_eq!(earlier.id, operation.id);
    access(store).await;
}

/// Access bindings, IP permissions and the `secure` flag (#13).
async fn access(store: &Store) {
    let secure = store
        .create_registry_with("secure-folder", "secure", &BTreeMap::new(), true)
        .await
        .unwrap();
    assert!(secure.secure);
    assert!(store.get_registry(&secure.id).await.unwrap().secure);
    let plain = store.find_registry("default").await.unwrap();
    assert!(!plain.secure);
    let binding = |role: &str, kind: &str, id: &str| AccessBinding {
        role_id: role.to_owned(),
        subject_type: kind.to_owned(),
        subject_id: id.to_owned(),
    };
    let public = binding("container-registry.images.puller", "system", "allUsers");
    let ci = binding("container-registry.images.pusher", "serviceAccount", "ci");
    store
        .set_access_bindings(&secure.id, &[public.clone(), ci.clone()])
        .await
        .unwrap();
    store
        .update_access_bindings(
            &secure.id,
            std::slice::from_ref(&ci),
            std::slice::from_ref(&public),
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_access_bindings(&secure.id).await.unwrap(),
        vec![ci.clone()]
    );
    let entry = |action: IpAction, ip: &str| IpPermission {
        action,
        ip: ip.to_owned(),
    };
    store
        .set_ip_permissions(
            &secure.id,
            &[
                entry(IpAction::Push, "10.0.0.0/8"),
                entry(IpAction::Pull, "::1"),
            ],
        )
        .await
        .unwrap();
    store
        .update_ip_permissions(
            &secure.id,
            &[entry(IpAction::Pull, "127.0.0.1")],
            &[entry(IpAction::Pull, "::1")],
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_ip_permissions(&secure.id).await.unwrap(),
        vec![
            entry(IpAction::Pull, "127.0.0.1"),
            entry(IpAction::Push, "10.0.0.0/8")
        ]
    );
    // Deleting the registry deletes what was bound to it.
    store.delete_registry(&secure.id).await.unwrap();
    assert!(
        store
            .list_access_bindings(&secure.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_ip_permissions(&secure.id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    conformance(&store).await;
    // The data survives reopening.
    store.close().await;
    let reopened = Store::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    assert_eq!(
        reopened.find_registry("default").await.unwrap().name,
        "default"
    );
}

#[tokio::test]
async fn postgres_conformance() {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{}", crscan_store::new_id(crscan_store::IdKind::Blob));
    let store = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    conformance(&store).await;
    store.drop_schema().await.unwrap();
}

#[test]
fn migration_folders_are_in_step() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let names = |backend: &str| {
        let mut names: Vec<String> = std::fs::read_dir(format!("{root}/{backend}"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"));
    assert!(!names("sqlite").is_empty());
}
