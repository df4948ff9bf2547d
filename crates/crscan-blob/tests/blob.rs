//! Tests of the filesystem blob store: digest checks, atomic writes, upload sessions
//! that survive a restart, and range reads.
#![allow(clippy::unwrap_used)]

use crscan_blob::{BlobError, BlobStore, digest_of};
use crscan_model::DigestAlgorithm;

fn content() -> Vec<u8> {
    // A real file from the shared test data, so the bytes are not synthetic.
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/versions/dpkg.txt"
    ))
    .unwrap()
}

async fn read_range(
    store: &BlobStore,
    digest: &crscan_model::Digest,
    range: Option<(u64, Option<u64>)>,
) -> Vec<u8> {
    let mut read = store.open_read(digest, range).await.unwrap();
    let mut bytes = Vec::new();
    loop {
        let chunk = read.next_chunk().await.unwrap();
        if chunk.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

#[tokio::test]
async fn put_bytes_checks_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).await.unwrap();
    let bytes = content();
    for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let digest = digest_of(algorithm, &bytes);
        store.put_bytes(&digest, &bytes).await.unwrap();
        assert_eq!(store.stat(&digest).await.unwrap(), Some(bytes.len() as u64));
        assert_eq!(store.read_all(&digest).await.unwrap(), bytes);
        let hex = digest.hex();
        assert!(store.local_path(&digest).unwrap().ends_with(format!(
            "{}/{}/{hex}",
            algorithm.name(),
            &hex[..2]
        )));
    }
    let wrong = digest_of(DigestAlgorithm::Sha256, b"something else");
    assert!(matches!(
        store.put_bytes(&wrong, &bytes).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    // Two blobs listed; no temporary file is left behind.
    assert_eq!(store.list().await.unwrap().len(), 2);
    let leftovers = walk(dir.path())
        .into_iter()
        .filter(|path| path.contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0);
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn uploads_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = content();
    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    let half = bytes.len() / 2;
    let id = {
        let store = BlobStore::open(dir.path()).await.unwrap();
        let id = store.create_upload("registry/app").await.unwrap();
        let mut append = store.append(&id, Some(0)).await.unwrap();
        append.write(&bytes[..half]).await.unwrap();
        assert_eq!(append.finish().await.unwrap(), half as u64);
        // The blob is not visible before the upload finishes.
        assert_eq!(store.stat(&digest).await.unwrap(), None);
        id
    };
    // A new store on the same directory is a restarted server.
    let store = BlobStore::open(dir.path()).await.unwrap();
    let status = store.upload_status(&id).await.unwrap();
    assert_eq!(status.size, half as u64);
    assert_eq!(status.owner, "registry/app");
    assert!(matches!(
        store.append(&id, Some(half as u64 + 1)).await,
        Err(BlobError::BadOffset { .. })
    ));
    let mut append = store.append(&id, Some(half as u64)).await.unwrap();
    append.write(&bytes[half..]).await.unwrap();
    append.finish().await.unwrap();
    assert_eq!(
        store.finish_upload(&id, &digest).await.unwrap(),
        bytes.len() as u64
    );
    assert_eq!(store.read_all(&digest).await.unwrap(), bytes);
    assert!(store.upload_status(&id).await.is_err());
    assert!(store.list_uploads().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_digest_removes_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).await.unwrap();
    let id = store.create_upload("owner").await.unwrap();
    let mut append = store.append(&id, None).await.unwrap();
    append.write(b"hello").await.unwrap();
    append.finish().await.unwrap();
    let wrong = digest_of(DigestAlgorithm::Sha512, b"world");
    assert!(matches!(
        store.finish_upload(&id, &wrong).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert!(store.list().await.unwrap().is_empty());
    assert!(store.list_uploads().await.unwrap().is_empty());
    assert!(matches!(
        store.upload_status("not-a-uuid").await,
        Err(BlobError::UploadNotFound(_))
    ));
}

#[tokio::test]
async fn range_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).await.unwrap();
    let bytes = content();
    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    store.put_bytes(&digest, &bytes).await.unwrap();
    assert_eq!(read_range(&store, &digest, None).await, bytes);
    assert_eq!(
        read_range(&store, &digest, Some((5, Some(14)))).await,
        &bytes[5..15]
    );
    assert_eq!(
        read_range(&store, &digest, Some((7, None))).await,
        &bytes[7..]
    );
    let size = bytes.len() as u64;
    assert!(matches!(
        store.open_read(&digest, Some((size, None))).await,
        Err(BlobError::BadRange { .. })
    ));
    assert!(store.delete(&digest).await.unwrap());
    assert!(!store.delete(&digest).await.unwrap());
}
