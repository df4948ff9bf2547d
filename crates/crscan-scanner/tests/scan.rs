//! One scan end to end against images written at test time as OCI layouts, and a
//! vulnerability database built from real feed records in `shared/data/vulndb`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crscan_image::LocalBlobs;
use crscan_model::{Digest, DigestAlgorithm};
use crscan_scanner::{
    ErrorCode, LayerCache, RegistryBlobs, ScanError, ScanOutcome, ScanRequest, default_limits,
    inventory_image, match_inventory_outcome, open_database, scan_image,
};
use crscan_vulndb::{Database, LoadReport};
use sha2::{Digest as _, Sha256};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

const ALPINE_OS_RELEASE: &str = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\nHOME_URL=\"http://alpinelinux.org\"\n";
const JINJA2_METADATA: &str = "Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\nSummary: A small but fast and easy to use stand-alone template engine\n";
const JINJA2_PATH: &str = "usr/lib/python3.5/site-packages/Jinja2-2.10.dist-info/METADATA";

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::from_bytes(DigestAlgorithm::Sha256, &Sha256::digest(bytes))
}

/// An OCI image layout under construction.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Layout {
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout {
            root: root.to_owned(),
        }
    }

    fn blob(&self, bytes: &[u8]) -> Digest {
        let digest = digest_of(bytes);
        std::fs::write(self.root.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        digest
    }

    /// A gzip-compressed tar layer holding `files`.
    fn layer(&self, files: &[(&str, &[u8])]) -> (Digest, usize) {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar).unwrap();
        let gz = encoder.finish().unwrap();
        (self.blob(&gz), gz.len())
    }

    /// An image manifest over `layers`; returns its digest and bytes.
    fn manifest(&self, layers: &[(Digest, usize)], architecture: &str) -> (Digest, Vec<u8>) {
        let config = serde_json::json!({
            "architecture": architecture, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {}
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config_bytes);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layers.iter().map(|(digest, size)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest.to_string(), "size": size})).collect::<Vec<_>>()
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        (self.blob(&bytes), bytes)
    }

    /// An image index over (manifest, size, architecture) entries.
    fn index(&self, manifests: &[(&Digest, usize, &str)]) -> Digest {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests.iter().map(|(digest, size, architecture)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest.to_string(), "size": size,
                "platform": {"os": "linux", "architecture": architecture}})).collect::<Vec<_>>()
        });
        self.blob(&serde_json::to_vec(&index).unwrap())
    }

    fn blobs(&self) -> LocalBlobs {
        LocalBlobs::oci_layout(&self.root)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }
}

/// The vulnerable test image: Alpine 3.4 with an old apk database (a real one from
/// the catalog test data) and Jinja2 2.10 in a second layer.
fn vulnerable_image(layout: &Layout) -> (Digest, Vec<(Digest, usize)>) {
    let installed = std::fs::read(format!("{DATA}/catalog/apk/trivy/installed")).unwrap();
    let base = layout.layer(&[
        ("etc/os-release", ALPINE_OS_RELEASE.as_bytes()),
        ("lib/apk/db/installed", &installed),
    ]);
    let python = layout.layer(&[(JINJA2_PATH, JINJA2_METADATA.as_bytes())]);
    let layers = vec![base, python];
    let (digest, _) = layout.manifest(&layers, "amd64");
    (digest, layers)
}

/// A database from the Alpine v3.4 secdb and the PyPA records for jinja2.
fn database(dir: &Path) -> Database {
    let mut report = LoadReport::new();
    report
        .load_path(Path::new(&format!(
            "{DATA}/vulndb/alpine-secdb/v3.4/main.yaml"
        )))
        .unwrap();
    report
        .load_path(Path::new(&format!(
            "{DATA}/vulndb/pypa-advisory-database/vulns/jinja2"
        )))
        .unwrap();
    let path = dir.join("vulndb.db");
    Database::build(&path, &report, 1_700_000_000).unwrap();
    open_database(&path).unwrap()
}

/// The setup most tests share: the vulnerable image in an OCI layout under a
/// temporary directory, the test database, and a scan that is not cancelled.
struct Fixture {
    dir: tempfile::TempDir,
    layout: Layout,
    image: Digest,
    layers: Vec<(Digest, usize)>,
    db: Database,
    blobs: LocalBlobs,
    cancel: AtomicBool,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&dir.path().join("image"));
        let (image, layers) = vulnerable_image(&layout);
        let db = database(dir.path());
        let blobs = layout.blobs();
        Fixture {
            dir,
            layout,
            image,
            layers,
            db,
            blobs,
            cancel: AtomicBool::new(false),
        }
    }

    /// Scans `image` from the layout's blobs against `database`.
    fn scan_with(
        &self,
        image: &Digest,
        database: Option<&Database>,
        cache: Option<&LayerCache>,
        limits: &crscan_image::Limits,
    ) -> Result<ScanOutcome, ScanError> {
        scan_image(&ScanRequest {
            blobs: &self.blobs,
            image,
            manifest: None,
            database,
            cache,
            cancel: &self.cancel,
            limits,
        })
    }

    /// Scans `image` against the test database, without a layer cache.
    fn scan(
        &self,
        image: &Digest,
        limits: &crscan_image::Limits,
    ) -> Result<ScanOutcome, ScanError> {
        self.scan_with(image, Some(&self.db), None, limits)
    }
}

#[test]
fn scans_os_and_language_packages_into_the_api_shape() {
    let fixture = Fixture::new();
    let outcome = fixture.scan(&fixture.image, &default_limits()).unwrap();

    assert_eq!(outcome.manifest_digest, fixture.image);
    assert_eq!(outcome.inventory.os.as_ref().unwrap().id, "alpine");
    assert_eq!(outcome.stats.layers, 2);
    assert_eq!(outcome.stats.layers_read, 2);

    // musl 1.1.14-r10 is older than the secdb's fix for CVE-2016-8859 (1.1.14-r13).
    let musl = outcome
        .report
        .findings
        .iter()
        .find(|v| v.id == "CVE-2016-8859")
        .unwrap()
        .api_fields();
    assert_eq!(musl.package, "musl");
    assert_eq!(musl.version, "1.1.14-r10");
    assert_eq!(musl.fixed_by, "1.1.14-r13");
    assert_eq!(musl.source, "apk");
    assert_eq!(musl.origin, "os");
    assert_eq!(musl.kind, "alpine");
    assert!(musl.link.contains("CVE-2016-8859"), "{}", musl.link);

    // Jinja2 2.10 is affected by CVE-2019-10906 (PYSEC-2019-217), fixed in 2.10.1.
    let jinja = outcome
        .report
        .findings
        .iter()
        .find(|v| v.id == "CVE-2019-10906")
        .unwrap()
        .api_fields();
    assert_eq!(jinja.package, "jinja2");
    assert_eq!(jinja.version, "2.10");
    assert_eq!(jinja.fixed_by, "2.10.1");
    assert_eq!(jinja.source, "pip");
    assert_eq!(jinja.origin, "lang");
    assert_eq!(jinja.kind, "python-pkg");

    // The list is sorted as the API lists it: severity first, then name.
    assert!(
        outcome
            .report
            .findings
            .windows(2)
            .all(|pair| { (pair[0].severity, &pair[0].id) <= (pair[1].severity, &pair[1].id) })
    );
}

#[test]
fn a_cached_layer_is_never_read_again_and_inventories_rematch() {
    let fixture = Fixture::new();
    let (layout, image, layers, db) = (
        &fixture.layout,
        &fixture.image,
        &fixture.layers,
        &fixture.db,
    );
    let cache = LayerCache::open(fixture.dir.path().join("cache")).unwrap();
    let limits = default_limits();
    let first = fixture
        .scan_with(image, Some(db), Some(&cache), &limits)
        .unwrap();
    assert_eq!(first.stats.layers_read, 2);

    // With the layer blobs gone, a second scan can only succeed from the cache.
    for (digest, _) in layers {
        std::fs::remove_file(layout.blob_path(digest)).unwrap();
    }
    let second = fixture
        .scan_with(image, Some(db), Some(&cache), &limits)
        .unwrap();
    assert_eq!(second.stats.layers_read, 0);
    assert_eq!(second.stats.layers_from_cache, 2);
    assert_eq!(second.report.findings, first.report.findings);

    // A new image sharing the base layer reads only its own new layer.
    let other = layout.layer(&[("etc/motd", b"hello".as_slice())]);
    let (other_image, _) = layout.manifest(&[layers[0].clone(), other], "amd64");
    let third = fixture
        .scan_with(&other_image, Some(db), Some(&cache), &limits)
        .unwrap();
    assert_eq!(
        (third.stats.layers_read, third.stats.layers_from_cache),
        (1, 1)
    );
    assert!(third.report.findings.iter().all(|v| v.package_type.is_os()));

    // An inventory re-matches without any layer.
    let inventory = first.inventory.clone();
    let rematched = match_inventory_outcome(image, inventory, Some(db)).unwrap();
    assert_eq!(rematched.report.findings, first.report.findings);
}

#[test]
fn an_index_resolves_to_linux_amd64() {
    let fixture = Fixture::new();
    let (layout, amd64) = (&fixture.layout, &fixture.image);
    let amd64_size = std::fs::metadata(layout.blob_path(amd64)).unwrap().len() as usize;
    let empty = layout.layer(&[("etc/motd", b"arm".as_slice())]);
    let (arm64, arm64_bytes) = layout.manifest(&[empty], "arm64");
    let index = layout.index(&[
        (&arm64, arm64_bytes.len(), "arm64"),
        (amd64, amd64_size, "amd64"),
    ]);
    let limits = default_limits();
    let outcome = fixture.scan(&index, &limits).unwrap();
    assert_eq!(&outcome.manifest_digest, amd64);
    assert!(!outcome.report.findings.is_empty());

    let arm_only = layout.index(&[(&arm64, arm64_bytes.len(), "arm64")]);
    let error = fixture.scan(&arm_only, &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
    assert!(error.to_string().contains("linux/arm64"), "{error}");
}

#[test]
fn no_database_is_a_failed_precondition_that_says_how_to_get_one() {
    let fixture = Fixture::new();
    let error = fixture
        .scan_with(&fixture.image, None, None, &default_limits())
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
    assert_eq!(error.code().number(), 9);
    let message = error.to_string();
    assert!(message.contains("crscan db update"), "{message}");
    assert!(message.contains("crscan db build --from PATH"), "{message}");

    let missing = open_database(&fixture.dir.path().join("absent.db")).unwrap_err();
    assert!(matches!(missing, ScanError::NoDatabase { .. }));
    assert!(missing.to_string().contains("absent.db"), "{missing}");
}

#[test]
fn images_over_the_limits_are_resource_exhausted() {
    let fixture = Fixture::new();

    let few_layers = crscan_image::Limits {
        max_layers: 1,
        ..default_limits()
    };
    let error = fixture.scan(&fixture.image, &few_layers).unwrap_err();
    assert_eq!(error.code(), ErrorCode::ResourceExhausted);
    assert!(error.to_string().contains("2 layers"), "{error}");

    let small = crscan_image::Limits {
        max_image_bytes: 100,
        ..default_limits()
    };
    let error = fixture.scan(&fixture.image, &small).unwrap_err();
    assert_eq!(error.code(), ErrorCode::ResourceExhausted);
    assert_eq!(error.code().number(), 8);

    // A manifest that understates its layer sizes is caught on the bytes read.
    let installed = std::fs::read(format!("{DATA}/catalog/apk/trivy/installed")).unwrap();
    let (layer, _) = fixture
        .layout
        .layer(&[("lib/apk/db/installed", &installed)]);
    let (lying, _) = fixture.layout.manifest(&[(layer, 1)], "amd64");
    let limit = crscan_image::Limits {
        max_image_bytes: 200,
        ..default_limits()
    };
    let error = fixture.scan(&lying, &limit).unwrap_err();
    assert_eq!(error.code(), ErrorCode::ResourceExhausted, "{error}");
}

#[test]
fn a_cancelled_scan_stops_with_cancelled() {
    let fixture = Fixture::new();
    fixture
        .cancel
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let error = fixture.scan(&fixture.image, &default_limits()).unwrap_err();
    assert_eq!(error.code(), ErrorCode::Cancelled);
    assert_eq!(error.code().number(), 1);
}

/// The registry's blobs, with a hook that cancels the scan when a chosen layer is
/// opened (as `OperationService.Cancel` would while the scan runs).
struct CancelOnOpen<'a> {
    inner: LocalBlobs,
    layer: Digest,
    cancel: &'a AtomicBool,
    opened: std::sync::Mutex<Vec<Digest>>,
}

impl crscan_image::BlobSource for CancelOnOpen<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn open_blob(&self, digest: &Digest) -> std::io::Result<crscan_image::Blob> {
        self.opened.lock().unwrap().push(digest.clone());
        if *digest == self.layer {
            self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.open_blob(digest)
    }
}

#[test]
fn a_running_scan_stops_at_its_next_layer() {
    let fixture = Fixture::new();
    let (layout, image, layers, db) = (
        &fixture.layout,
        &fixture.image,
        &fixture.layers,
        &fixture.db,
    );
    let extra = layout.layer(&[("etc/motd", b"third".as_slice())]);
    let (image_three, _) = layout.manifest(
        &[layers[0].clone(), layers[1].clone(), extra.clone()],
        "amd64",
    );
    let cancel = AtomicBool::new(false);
    let blobs = CancelOnOpen {
        inner: layout.blobs(),
        layer: layers[1].0.clone(),
        cancel: &cancel,
        opened: std::sync::Mutex::new(Vec::new()),
    };
    let limits = default_limits();
    let error = scan_image(&ScanRequest {
        blobs: &blobs,
        image: &image_three,
        manifest: None,
        database: Some(db),
        cache: None,
        cancel: &cancel,
        limits: &limits,
    })
    .unwrap_err();
    assert_eq!(error.code(), ErrorCode::Cancelled);
    let opened = blobs.opened.lock().unwrap();
    assert!(opened.contains(&layers[1].0));
    assert!(
        !opened.contains(&extra.0),
        "the layer after the cancel was read"
    );
    assert!(!opened.contains(image), "unrelated manifest read");
}

#[test]
fn unreadable_images_are_failed_preconditions() {
    let fixture = Fixture::new();
    let (layout, layers) = (&fixture.layout, &fixture.layers);
    let limits = default_limits();

    std::fs::remove_file(layout.blob_path(&layers[1].0)).unwrap();
    let error = fixture.scan(&fixture.image, &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
    assert!(
        error.to_string().contains(&layers[1].0.to_string()),
        "{error}"
    );

    let garbage = layout.blob(b"not json");
    let error = fixture.scan(&garbage, &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);

    let corrupt_layer = layout.blob(b"\x1f\x8b\x08\x00 definitely not gzip");
    let (bad, _) = layout.manifest(&[(corrupt_layer, 26)], "amd64");
    let error = fixture.scan(&bad, &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");

    let absent = digest_of(b"never stored");
    let error = fixture.scan(&absent, &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
}

#[test]
fn reads_from_the_registry_blob_store() {
    let fixture = Fixture::new();
    let (dir, image, db, cancel) = (&fixture.dir, &fixture.image, &fixture.db, &fixture.cancel);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        let store = crscan_blob::BlobStore::open(&dir.path().join("data"))
            .await
            .unwrap();
        for entry in std::fs::read_dir(dir.path().join("image/blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            store.put_bytes(&digest_of(&bytes), &bytes).await.unwrap();
        }
        RegistryBlobs(std::sync::Arc::new(store))
    });
    let limits = default_limits();
    let outcome = scan_image(&ScanRequest {
        blobs: &store,
        image,
        manifest: None,
        database: Some(db),
        cache: None,
        cancel,
        limits: &limits,
    })
    .unwrap();
    assert!(
        outcome
            .report
            .findings
            .iter()
            .any(|v| v.id == "CVE-2019-10906")
    );
    let (_, inventory, _) = inventory_image(&ScanRequest {
        blobs: &store,
        image,
        manifest: None,
        database: None,
        cache: None,
        cancel,
        limits: &limits,
    })
    .unwrap();
    assert!(inventory.packages.iter().any(|p| p.name == "musl"));
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_fails_the_scan_naming_it() {
    let fixture = Fixture::new();
    let (layout, layers) = (&fixture.layout, &fixture.layers);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [
            digest_of(b"not the first layer").to_string(),
            digest_of(b"not the second layer").to_string(),
        ]}
    }))
    .unwrap();
    let config_digest = layout.blob(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers.iter().map(|(digest, size)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.to_string(), "size": size})).collect::<Vec<_>>()
    });
    let image = layout.blob(&serde_json::to_vec(&manifest).unwrap());
    let cache = LayerCache::open(fixture.dir.path().join("cache")).unwrap();
    // Fresh layers and cached ones alike: the cache keeps each layer's diff ID.
    fixture
        .scan_with(
            &fixture.image,
            Some(&fixture.db),
            Some(&cache),
            &default_limits(),
        )
        .unwrap();
    for cache in [None, Some(&cache)] {
        let error = fixture
            .scan_with(&image, Some(&fixture.db), cache, &default_limits())
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}");
        let message = error.to_string();
        assert!(message.contains("layer 0"), "{message}");
        assert!(message.contains(&layers[0].0.to_string()), "{message}");
        assert!(message.contains("diff ID"), "{message}");
    }
}

#[test]
fn the_cache_drops_unreferenced_layers_and_stays_under_its_cap() {
    let fixture = Fixture::new();
    let layers = &fixture.layers;
    let root = fixture.dir.path().join("cache");
    let cache = LayerCache::open(&root).unwrap();
    let limits = default_limits();
    fixture
        .scan_with(&fixture.image, Some(&fixture.db), Some(&cache), &limits)
        .unwrap();
    let base = layers[0].0.clone();
    let only_base = |digest: &Digest| *digest == base;

    // Within the grace period nothing goes; a dry run removes nothing.
    let report = cache
        .collect(&only_base, std::time::Duration::from_secs(3600), false)
        .unwrap();
    assert_eq!((report.unreferenced, report.kept), (0, 2));
    let report = cache
        .collect(&only_base, std::time::Duration::ZERO, true)
        .unwrap();
    assert_eq!((report.unreferenced, report.kept), (1, 1));
    assert!(cache.layer(&layers[1].0).is_some());

    let report = cache
        .collect(&only_base, std::time::Duration::ZERO, false)
        .unwrap();
    assert_eq!((report.unreferenced, report.kept), (1, 1));
    assert!(cache.layer(&layers[1].0).is_none());
    assert!(cache.layer(&base).is_some());

    // A cap smaller than two entries keeps only the one used last.
    let kept_bytes = report.kept_bytes;
    let capped = LayerCache::open(&root)
        .unwrap()
        .with_max_bytes(Some(kept_bytes + 1));
    let second = capped
        .scan_layers_of(&fixture, &limits)
        .expect("the scan succeeds with a capped cache");
    assert_eq!(second, 1, "the evicted layer is read again");
    assert!(capped.layer(&base).is_none(), "the older entry was evicted");
    assert!(capped.layer(&layers[1].0).is_some());
}

/// Scans the fixture's image with this cache; returns how many layers were read.
trait ScanLayers {
    fn scan_layers_of(&self, fixture: &Fixture, limits: &crscan_image::Limits) -> Option<usize>;
}

impl ScanLayers for LayerCache {
    fn scan_layers_of(&self, fixture: &Fixture, limits: &crscan_image::Limits) -> Option<usize> {
        fixture
            .scan_with(&fixture.image, Some(&fixture.db), Some(self), limits)
            .ok()
            .map(|outcome| outcome.stats.layers_read)
    }
}
