//! Distribution semantics on a real store and blob store in a temporary directory:
//! uploads, manifests and indexes, referrers, mounts, tags, deletes and GC. The
//! chunked-upload and tag rules run on SQLite and on PostgreSQL (with
//! `CRSCAN_TEST_POSTGRES_URL`, in a schema of their own, dropped after).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crscan_blob::{BlobStore, digest_of};
use crscan_model::{Digest, DigestAlgorithm};
use crscan_registry::{
    ChunkRange, GcOptions, Limits, OCI_INDEX, OCI_MANIFEST, Reference, Registry, RegistryError,
    RepositoryPath,
};
use crscan_store::Store;

async fn registry(dir: &std::path::Path) -> Registry {
    let store = Store::open_sqlite(&dir.join("meta.db")).await.unwrap();
    store.ensure_default_registry().await.unwrap();
    let blobs = Arc::new(BlobStore::open(dir).await.unwrap());
    Registry::new(store, blobs, Limits::default())
}

/// A registry on PostgreSQL in a fresh schema, with the store to drop it after; `None`
/// without `CRSCAN_TEST_POSTGRES_URL`.
async fn postgres_registry(dir: &std::path::Path) -> Option<(Registry, Store)> {
    let Ok(url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
        println!("skipped: CRSCAN_TEST_POSTGRES_URL not set");
        return None;
    };
    let schema = format!("test_{}", crscan_store::new_id(crscan_store::IdKind::Blob));
    let store = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();
    store.ensure_default_registry().await.unwrap();
    let blobs = Arc::new(BlobStore::open(dir).await.unwrap());
    Some((
        Registry::new(store.clone(), blobs, Limits::default()),
        store,
    ))
}

fn whole(bytes: &[u8]) -> Option<ChunkRange> {
    Some(ChunkRange::parse(&format!("0-{}", bytes.len() - 1)).unwrap())
}

async fn upload(registry: &Registry, path: &RepositoryPath, bytes: &[u8]) -> Digest {
    let digest = digest_of(DigestAlgorithm::Sha256, bytes);
    let owner = registry.upload_owner(path).await.unwrap();
    let id = registry.start_upload(&owner).await.unwrap();
    let mut append = registry
        .append_upload(&owner, &id, whole(bytes))
        .await
        .unwrap();
    append.write(bytes).await.unwrap();
    append.finish().await.unwrap();
    registry.finish_upload(path, &id, &digest).await.unwrap();
    digest
}

fn manifest(
    config: &Digest,
    config_size: usize,
    layers: &[(&Digest, usize)],
    extra: &str,
) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(digest, size)| {
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{size}}}"#)
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{}]{extra}}}"#,
        layers.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn push_index_referrers_mount_delete_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let app = RepositoryPath::parse("default/app").unwrap();
    let config_bytes = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer_bytes = b"layer contents";
    let config = upload(&registry, &app, config_bytes).await;
    let layer = upload(&registry, &app, layer_bytes).await;
    let image = manifest(
        &config,
        config_bytes.len(),
        &[(&layer, layer_bytes.len())],
        "",
    );
    let pushed = registry
        .put_manifest(
            &app,
            &Reference::Tag("v1".to_owned()),
            Some(OCI_MANIFEST),
            &image,
        )
        .await
        .unwrap();
    assert_eq!(pushed.digest, digest_of(DigestAlgorithm::Sha256, &image));
    let repository = registry.repository(&app).await.unwrap();
    let fetched = registry
        .get_manifest(&repository, &Reference::Digest(pushed.digest.clone()))
        .await
        .unwrap();
    assert_eq!(fetched.bytes, image);
    assert_eq!(fetched.image.tags, vec!["v1".to_owned()]);

    // A sha512 digest reference works too, and a wrong one is DIGEST_INVALID.
    let sha512 = digest_of(DigestAlgorithm::Sha512, &image);
    registry
        .put_manifest(&app, &Reference::Digest(sha512.clone()), None, &image)
        .await
        .unwrap();
    let wrong = Reference::Digest(digest_of(DigestAlgorithm::Sha256, b"x"));
    assert_eq!(
        registry
            .put_manifest(&app, &wrong, None, &image)
            .await
            .unwrap_err()
            .code(),
        "DIGEST_INVALID"
    );

    // An index needs its children in the repository.
    let index = |child: &Digest| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":{}}}]}}"#,
            image.len()
        )
        .into_bytes()
    };
    let missing_child = index(&digest_of(DigestAlgorithm::Sha256, b"nothing"));
    let error = registry
        .put_manifest(
            &app,
            &Reference::Tag("multi".to_owned()),
            None,
            &missing_child,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "MANIFEST_BLOB_UNKNOWN");
    registry
        .put_manifest(
            &app,
            &Reference::Tag("multi".to_owned()),
            None,
            &index(&pushed.digest),
        )
        .await
        .unwrap();

    // A referrer with a subject, listed and filtered by artifact type.
    let empty = upload(&registry, &app, b"{}").await;
    let signature = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},"annotations":{{"who":"ci"}}}}"#,
        pushed.digest,
        image.len()
    )
    .into_bytes();
    let referrer = registry
        .put_manifest(
            &app,
            &Reference::Digest(digest_of(DigestAlgorithm::Sha256, &signature)),
            None,
            &signature,
        )
        .await
        .unwrap();
    assert_eq!(referrer.subject.as_ref(), Some(&pushed.digest));
    let listing: serde_json::Value = serde_json::from_slice(
        &registry
            .referrers(&repository, &pushed.digest, None)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        listing["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    assert_eq!(listing["manifests"][0]["annotations"]["who"], "ci");
    let filtered: serde_json::Value = serde_json::from_slice(
        &registry
            .referrers(&repository, &pushed.digest, Some("other/type"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(filtered["manifests"], serde_json::json!([]));

    // Cross-repository mount: only from a repository that has the blob.
    let other = RepositoryPath::parse("default/other").unwrap();
    assert!(
        !registry
            .mount_blob(
                &other,
                &layer,
                &RepositoryPath::parse("default/none").unwrap()
            )
            .await
            .unwrap()
    );
    assert!(registry.mount_blob(&other, &layer, &app).await.unwrap());
    let other_repository = registry.repository(&other).await.unwrap();
    assert_eq!(
        registry.blob_size(&other_repository, &layer).await.unwrap(),
        layer_bytes.len() as u64
    );
    assert_eq!(
        registry
            .blob_size(&other_repository, &config)
            .await
            .unwrap_err()
            .code(),
        "BLOB_UNKNOWN"
    );

    // Tags with pagination, then deletes.
    assert_eq!(
        registry.tags(&repository, Some(1), None).await.unwrap(),
        vec!["multi"]
    );
    assert_eq!(
        registry
            .tags(&repository, Some(5), Some("multi"))
            .await
            .unwrap(),
        vec!["v1"]
    );
    registry
        .delete_manifest(&repository, &Reference::Tag("multi".to_owned()))
        .await
        .unwrap();
    assert!(matches!(
        registry
            .delete_manifest(&repository, &Reference::Tag("multi".to_owned()))
            .await,
        Err(RegistryError::ManifestUnknown(_))
    ));

    // GC: with everything referenced nothing goes; a recent orphan is kept by the grace
    // period; with no grace the orphan goes and referenced blobs stay.
    let orphan = upload(&registry, &app, b"orphan blob").await;
    let now_only = GcOptions {
        dry_run: false,
        ..GcOptions::default()
    };
    let report = registry.gc(&now_only).await.unwrap();
    assert_eq!(report.deleted, 0);
    assert!(report.kept_recent >= 1);
    let no_grace = GcOptions {
        dry_run: true,
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    let dry = registry.gc(&no_grace).await.unwrap();
    let candidates: Vec<&Digest> = dry.unreferenced.iter().map(|(digest, _)| digest).collect();
    assert!(candidates.contains(&&orphan));
    assert!(!candidates.contains(&&layer));
    assert_eq!(dry.deleted, 0);
    assert!(registry.blobs().stat(&orphan).await.unwrap().is_some());
    let real = registry
        .gc(&GcOptions {
            dry_run: false,
            ..no_grace
        })
        .await
        .unwrap();
    assert!(real.deleted >= 1);
    assert!(registry.blobs().stat(&orphan).await.unwrap().is_none());
    assert!(registry.blobs().stat(&layer).await.unwrap().is_some());

    // Deleting the image by digest unreferences its manifest; GC then collects it.
    registry
        .delete_manifest(&repository, &Reference::Digest(pushed.digest.clone()))
        .await
        .unwrap();
    assert!(
        registry
            .manifest_image(&repository, &Reference::Tag("v1".to_owned()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rejected_manifests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let path = RepositoryPath::parse("default/fresh").unwrap();
    let config = digest_of(DigestAlgorithm::Sha256, b"missing config");
    let bad = manifest(&config, 14, &[], "");
    let error = registry
        .put_manifest(&path, &Reference::Tag("t".to_owned()), None, &bad)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "MANIFEST_BLOB_UNKNOWN");
    let error = registry
        .put_manifest(
            &path,
            &Reference::Tag("t".to_owned()),
            None,
            &vec![b' '; 4 * 1024 * 1024 + 1],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "SIZE_INVALID");
    let error = registry
        .put_manifest(&path, &Reference::Tag("t".to_owned()), None, b"{")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "MANIFEST_INVALID");
    assert_eq!(
        registry.repository(&path).await.unwrap_err().code(),
        "NAME_UNKNOWN"
    );
    assert!(registry.blobs().list().await.unwrap().is_empty());
    assert!(registry.catalog(None, None).await.unwrap().is_empty());
    assert!(matches!(
        Reference::parse("bad tag"),
        Err(RegistryError::TagInvalid(_))
    ));
}

/// The chunked-upload rules of the spec ("Pushing a blob in chunks"): a chunk starts at
/// the bytes received so far, and its body is exactly as long as its `Content-Range`;
/// a refused chunk leaves the session as it was.
async fn chunks_match_their_content_range(registry: &Registry) {
    let path = RepositoryPath::parse("default/chunks").unwrap();
    let owner = registry.upload_owner(&path).await.unwrap();
    let id = registry.start_upload(&owner).await.unwrap();
    let range = |text: &str| Some(ChunkRange::parse(text).unwrap());

    let mut first = registry
        .append_upload(&owner, &id, range("0-4"))
        .await
        .unwrap();
    first.write(b"hello").await.unwrap();
    assert_eq!(first.finish().await.unwrap(), 5);

    // A 2-byte body under `Content-Range: 5-1004`: refused, nothing appended.
    let mut short = registry
        .append_upload(&owner, &id, range("5-1004"))
        .await
        .unwrap();
    short.write(b"xy").await.unwrap();
    let error = short.finish().await.unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::ChunkLengthMismatch {
                declared: 1000,
                received: 2,
                offset: 5
            }
        ),
        "{error}"
    );
    assert_eq!(error.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(registry.upload_status(&owner, &id).await.unwrap(), 5);

    // A body longer than its range is refused at the first byte past it.
    let mut long = registry
        .append_upload(&owner, &id, range("5-6"))
        .await
        .unwrap();
    long.write(b"ab").await.unwrap();
    assert!(long.write(b"c").await.is_err());
    assert!(long.finish().await.is_err());
    assert_eq!(registry.upload_status(&owner, &id).await.unwrap(), 5);

    // A chunk that does not start at the current offset is out of order.
    let error = match registry.append_upload(&owner, &id, range("7-9")).await {
        Err(error) => error,
        Ok(_) => panic!("a chunk at 7 was accepted by an upload of 5 bytes"),
    };
    assert!(
        matches!(
            error,
            RegistryError::RangeInvalid {
                expected: 5,
                given: 7
            }
        ),
        "{error}"
    );

    // The next right chunk lands, and the blob is exactly the accepted chunks.
    let mut second = registry
        .append_upload(&owner, &id, range("5-9"))
        .await
        .unwrap();
    second.write(b"world").await.unwrap();
    assert_eq!(second.finish().await.unwrap(), 10);
    let digest = digest_of(DigestAlgorithm::Sha256, b"helloworld");
    assert_eq!(
        registry.finish_upload(&path, &id, &digest).await.unwrap(),
        10
    );
    assert_eq!(
        registry.blobs().read_all(&digest).await.unwrap(),
        b"helloworld"
    );

    // Tags: the spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    assert!(Reference::parse(&"t".repeat(128)).is_ok());
    for bad in [
        "t".repeat(129),
        ".t".to_owned(),
        "-t".to_owned(),
        String::new(),
    ] {
        let error = Reference::parse(&bad).unwrap_err();
        assert_eq!(error.code(), "TAG_INVALID", "{bad:?}");
    }
}

#[test]
fn content_ranges_parse_as_the_spec_writes_them() {
    let parsed = ChunkRange::parse("1000-1999").unwrap();
    assert_eq!(
        (parsed.start(), parsed.end(), parsed.length()),
        (1000, 1999, 1000)
    );
    assert_eq!(ChunkRange::parse("bytes 0-9/10").unwrap().length(), 10);
    for bad in ["", "5", "5-", "-5", "9-5", "a-b", "0-1-2", "+1-2"] {
        let error = ChunkRange::parse(bad).unwrap_err();
        assert_eq!(error.code(), "BLOB_UPLOAD_INVALID", "{bad:?}");
    }
}

#[tokio::test]
async fn sqlite_chunks_match_their_content_range() {
    let dir = tempfile::tempdir().unwrap();
    chunks_match_their_content_range(&registry(dir.path()).await).await;
}

#[tokio::test]
async fn postgres_chunks_match_their_content_range() {
    let dir = tempfile::tempdir().unwrap();
    let Some((registry, store)) = postgres_registry(dir.path()).await else {
        return;
    };
    chunks_match_their_content_range(&registry).await;
    store.drop_schema().await.unwrap();
}
