//! One conformance suite for both blob backends: the same cases run against the
//! filesystem and against S3 on a real Garage (a one-node cluster on loopback, see
//! `crates/crscan/tests/common/garage.rs`). Two `BlobStore`s opened on one location
//! stand for two nodes: an upload begun on one is continued and finished on the
//! other.
#![allow(clippy::unwrap_used)]

#[path = "../../crscan/tests/common/garage.rs"]
mod garage;

use crscan_blob::{BlobError, BlobLocation, BlobStore, S3Settings, digest_of};
use crscan_model::{Digest, DigestAlgorithm};

/// Opens stores on fresh locations of one backend.
enum Backend {
    File(tempfile::TempDir),
    S3(garage::Garage),
}

impl Backend {
    /// A fresh location (a new directory, or a new prefix in the bucket).
    fn location(&self, case: &str) -> BlobLocation {
        match self {
            Backend::File(dir) => BlobLocation::File(dir.path().join(case)),
            Backend::S3(garage) => format!("s3://{}/{case}", garage.bucket).parse().unwrap(),
        }
    }

    fn settings(&self) -> S3Settings {
        match self {
            Backend::File(_) => S3Settings::default(),
            Backend::S3(garage) => S3Settings {
                access_key_id: Some(garage.key_id.clone()),
                secret_access_key: Some(garage.secret.clone()),
                region: Some(garage.region.clone()),
                endpoint: Some(garage.endpoint.clone()),
            },
        }
    }

    async fn open(&self, location: &BlobLocation) -> BlobStore {
        BlobStore::open_location(location, &self.settings())
            .await
            .unwrap()
    }
}

fn content() -> Vec<u8> {
    // A real file from the shared test data, so the bytes are not synthetic.
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/versions/dpkg.txt"
    ))
    .unwrap()
}

/// `len` bytes that do not compress or repeat (a layer-like blob).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

async fn read_range(
    store: &BlobStore,
    digest: &Digest,
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
    assert_eq!(bytes.len() as u64, read.length);
    bytes
}

async fn put_read_delete(backend: &Backend) {
    let store = backend.open(&backend.location("put")).await;
    let bytes = content();
    for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let digest = digest_of(algorithm, &bytes);
        store.put_bytes(&digest, &bytes).await.unwrap();
        // Idempotent.
        store.put_bytes(&digest, &bytes).await.unwrap();
        assert_eq!(store.stat(&digest).await.unwrap(), Some(bytes.len() as u64));
        assert_eq!(store.read_all(&digest).await.unwrap(), bytes);
        assert!(store.modified(&digest).await.unwrap().is_some());
    }
    let wrong = digest_of(DigestAlgorithm::Sha256, b"something else");
    assert!(matches!(
        store.put_bytes(&wrong, &bytes).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    assert!(matches!(
        store.read_all(&wrong).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.open_read(&wrong, None).await,
        Err(BlobError::NotFound(_))
    ));
    let mut listed: Vec<_> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|blob| (blob.digest.to_string(), blob.size))
        .collect();
    listed.sort();
    let mut expected: Vec<_> = [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]
        .iter()
        .map(|algorithm| {
            (
                digest_of(*algorithm, &bytes).to_string(),
                bytes.len() as u64,
            )
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    assert_eq!(
        store.touch(&digest).await.unwrap(),
        Some(bytes.len() as u64)
    );
    assert_eq!(store.touch(&wrong).await.unwrap(), None);
    assert!(store.delete(&digest).await.unwrap());
    assert!(!store.delete(&digest).await.unwrap());
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 1);

    // The empty blob.
    let empty = digest_of(DigestAlgorithm::Sha256, b"");
    store.put_bytes(&empty, b"").await.unwrap();
    assert_eq!(store.stat(&empty).await.unwrap(), Some(0));
    assert_eq!(read_range(&store, &empty, None).await, b"");
}

async fn ranges(backend: &Backend) {
    let store = backend.open(&backend.location("ranges")).await;
    let bytes = content();
    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    store.put_bytes(&digest, &bytes).await.unwrap();
    let size = bytes.len() as u64;
    assert_eq!(read_range(&store, &digest, None).await, bytes);
    assert_eq!(
        read_range(&store, &digest, Some((10, Some(19)))).await,
        bytes[10..20]
    );
    assert_eq!(
        read_range(&store, &digest, Some((size - 5, None))).await,
        bytes[bytes.len() - 5..]
    );
    assert!(matches!(
        store.open_read(&digest, Some((5, Some(size)))).await,
        Err(BlobError::BadRange { .. })
    ));
    let mut read = store.open_read(&digest, None).await.unwrap();
    read.restrict(3, 8).await.unwrap();
    assert_eq!(read.next_chunk().await.unwrap(), bytes[3..9]);
    assert!(read.next_chunk().await.unwrap().is_empty());
    // A blocking reader, as the scanner's layer loop uses.
    let store = std::sync::Arc::new(store);
    let blocking = store.clone();
    let whole = tokio::task::spawn_blocking(move || {
        let (mut reader, size) = blocking.open_blocking(&digest).unwrap();
        let mut whole = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut whole).unwrap();
        assert_eq!(size, whole.len() as u64);
        whole
    })
    .await
    .unwrap();
    assert_eq!(whole, bytes);
}

async fn chunked_upload_across_nodes(backend: &Backend) {
    let location = backend.location("uploads");
    let node_a = backend.open(&location).await;
    let node_b = backend.open(&location).await;
    // Larger than one S3 part, so the finished blob is a real multipart write.
    let bytes = noise(20 << 20);
    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    let id = node_a.create_upload("registry/app").await.unwrap();
    let status = node_b.upload_status(&id).await.unwrap();
    assert_eq!((status.owner.as_str(), status.size), ("registry/app", 0));
    let chunks: Vec<&[u8]> = bytes.chunks(7 << 20).collect();
    let mut offset = 0u64;
    for (index, chunk) in chunks.iter().enumerate() {
        let node = if index % 2 == 0 { &node_a } else { &node_b };
        // A chunk at the wrong offset is refused and changes nothing.
        assert!(matches!(
            node.append(&id, Some(offset + 1)).await,
            Err(BlobError::BadOffset { .. })
        ));
        // A chunk whose body is shorter than declared leaves nothing either.
        let mut short = node.append(&id, Some(offset)).await.unwrap();
        short.expect_length(chunk.len() as u64 + 1);
        short.write(chunk).await.unwrap();
        assert!(matches!(
            short.finish().await,
            Err(BlobError::ChunkLength { .. })
        ));
        assert_eq!(node.upload_status(&id).await.unwrap().size, offset);
        // A body longer than declared is refused as it streams.
        let mut long = node.append(&id, Some(offset)).await.unwrap();
        long.expect_length(3);
        assert!(long.write(&chunk[..4]).await.is_err());
        // (The filesystem backend holds the session's lock until the append is dropped.)
        drop(long);
        assert_eq!(node.upload_status(&id).await.unwrap().size, offset);

        let mut append = node.append(&id, Some(offset)).await.unwrap();
        append.expect_length(chunk.len() as u64);
        for piece in chunk.chunks(1 << 20) {
            append.write(piece).await.unwrap();
        }
        offset = append.finish().await.unwrap();
        assert_eq!(
            offset,
            chunks[..=index]
                .iter()
                .map(|chunk| chunk.len() as u64)
                .sum::<u64>()
        );
        let other = if index % 2 == 0 { &node_b } else { &node_a };
        assert_eq!(other.upload_status(&id).await.unwrap().size, offset);
    }
    assert_eq!(offset, bytes.len() as u64);
    assert_eq!(node_a.list_uploads().await.unwrap().len(), 1);
    // The wrong digest: refused, the session is gone, nothing visible.
    let id_wrong = node_a.create_upload("registry/app").await.unwrap();
    let mut append = node_a.append(&id_wrong, None).await.unwrap();
    append.write(&bytes[..1000]).await.unwrap();
    append.finish().await.unwrap();
    assert!(matches!(
        node_b.finish_upload(&id_wrong, &digest).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert_eq!(node_a.stat(&digest).await.unwrap(), None);
    assert!(matches!(
        node_a.upload_status(&id_wrong).await,
        Err(BlobError::UploadNotFound(_))
    ));
    // The right digest, finished on the other node.
    assert_eq!(
        node_b.finish_upload(&id, &digest).await.unwrap(),
        bytes.len() as u64
    );
    assert_eq!(
        node_a.stat(&digest).await.unwrap(),
        Some(bytes.len() as u64)
    );
    assert_eq!(read_range(&node_a, &digest, None).await, bytes);
    assert!(node_a.list_uploads().await.unwrap().is_empty());
    // One streamed chunk, as skopeo and docker push (on S3 finished by a copy inside
    // the bucket, from the digest taken as the chunk streamed): the same blob.
    let one = noise(9 << 20);
    let one_digest = digest_of(DigestAlgorithm::Sha256, &one);
    let id_one = node_a.create_upload("registry/app").await.unwrap();
    let mut append = node_a.append(&id_one, None).await.unwrap();
    for piece in one.chunks(1 << 20) {
        append.write(piece).await.unwrap();
    }
    assert_eq!(append.finish().await.unwrap(), one.len() as u64);
    assert_eq!(
        node_b.upload_status(&id_one).await.unwrap().size,
        one.len() as u64
    );
    assert_eq!(
        node_b.finish_upload(&id_one, &one_digest).await.unwrap(),
        one.len() as u64
    );
    assert_eq!(read_range(&node_a, &one_digest, None).await, one);
    assert!(node_a.list_uploads().await.unwrap().is_empty());
    // Unknown and cancelled sessions.
    assert!(matches!(
        node_a.upload_status("not-a-uuid").await,
        Err(BlobError::UploadNotFound(_))
    ));
    let id = node_a.create_upload("registry/app").await.unwrap();
    node_b.cancel_upload(&id).await.unwrap();
    assert!(matches!(
        node_a.append(&id, None).await,
        Err(BlobError::UploadNotFound(_))
    ));
    assert!(matches!(
        node_a.cancel_upload(&id).await,
        Err(BlobError::UploadNotFound(_))
    ));
}

async fn put_file(backend: &Backend) {
    let store = backend.open(&backend.location("files")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("database");
    let bytes = noise(9 << 20);
    std::fs::write(&path, &bytes).unwrap();
    let digest = digest_of(DigestAlgorithm::Sha256, &bytes);
    let wrong = digest_of(DigestAlgorithm::Sha256, b"x");
    assert!(matches!(
        store.put_file(&wrong, &path).await,
        Err(BlobError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    assert_eq!(
        store.put_file(&digest, &path).await.unwrap(),
        bytes.len() as u64
    );
    assert_eq!(store.read_all(&digest).await.unwrap(), bytes);
    assert!(store.list_uploads().await.unwrap().is_empty());
}

async fn named_objects(backend: &Backend) {
    let store = backend.open(&backend.location("objects")).await;
    assert_eq!(store.shares_objects(), matches!(backend, Backend::S3(_)));
    let name = "cache/layers/v1/sha256/abc.json.gz";
    assert_eq!(store.get_object(name).await.unwrap(), None);
    store.put_object(name, b"one".to_vec()).await.unwrap();
    store.put_object(name, b"two".to_vec()).await.unwrap();
    store
        .put_object("cache/images/v1/sha256/def.json.gz", b"three".to_vec())
        .await
        .unwrap();
    assert_eq!(store.get_object(name).await.unwrap().unwrap(), b"two");
    let listed = store.list_objects("cache/layers/").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|object| (object.name.as_str(), object.size))
            .collect::<Vec<_>>(),
        [(name, 3)]
    );
    assert_eq!(store.list_objects("cache/").await.unwrap().len(), 2);
    assert!(store.delete_object(name).await.unwrap());
    assert!(!store.delete_object(name).await.unwrap());
    assert!(
        store
            .list_objects("cache/layers/")
            .await
            .unwrap()
            .is_empty()
    );
    for bad in [
        "../x",
        "blobs/sha256/x",
        "a//b",
        "",
        "uploads/x",
        "a/./b",
        "sp ace",
    ] {
        assert!(
            matches!(
                store.put_object(bad, Vec::new()).await,
                Err(BlobError::BadObjectName(_))
            ),
            "{bad}"
        );
    }
    // Objects are not blobs.
    assert!(store.list().await.unwrap().is_empty());
}

async fn suite(backend: Backend) {
    named_objects(&backend).await;
    put_read_delete(&backend).await;
    ranges(&backend).await;
    chunked_upload_across_nodes(&backend).await;
    put_file(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_backend_conforms() {
    suite(Backend::File(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_on_garage_conforms() {
    let Some(garage) = tokio::task::spawn_blocking(|| garage::Garage::start("crscan-conformance"))
        .await
        .unwrap()
    else {
        return;
    };
    suite(Backend::S3(garage)).await;
}

#[test]
fn locations_parse() {
    assert_eq!(
        "s3://bucket/some/prefix/".parse::<BlobLocation>().unwrap(),
        BlobLocation::S3 {
            bucket: "bucket".to_owned(),
            prefix: "some/prefix".to_owned()
        }
    );
    assert_eq!(
        "file:///srv/crscan/blobs".parse::<BlobLocation>().unwrap(),
        BlobLocation::File("/srv/crscan".into())
    );
    for bad in [
        "s3://",
        "s3://Bad_Bucket",
        "http://x",
        "file://",
        "s3://b/../x",
    ] {
        assert!(
            matches!(bad.parse::<BlobLocation>(), Err(BlobError::BadLocation(_))),
            "{bad}"
        );
    }
}
