//! Seeds a `crscan serve` data directory for `bench/console.sh`: in the default
//! registry, repository `bench` with IMAGES images (each tagged, each with a finished
//! scan of a few findings) and one more image, tagged `big`, whose scan has FINDINGS
//! findings. Writes through `crscan-store`'s API (the rows a push and a scan leave),
//! not through HTTP, so that seeding a thousand images takes seconds. Prints the ids
//! the benchmark loads as `KEY=value` lines.
//!
//! Usage: `cargo run -p crscan --example console_seed -- DATA_DIR IMAGES FINDINGS`

use std::path::PathBuf;

use anyhow::{Context, bail};
use crscan_model::{Digest, Finding, FindingStatus, PackageType, Severity, SeveritySource};
use crscan_store::{BlobRole, NewImage, ScanCompletion, ScanStatus, Store};

fn digest(seed: &str) -> anyhow::Result<Digest> {
    // A digest-shaped name per seed: 64 hex digits from a simple mix of the seed.
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    let mut hex = String::new();
    for round in 0..4u64 {
        for byte in seed.bytes() {
            state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        state ^= round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        state = state.wrapping_mul(0x0100_0000_01b3);
        hex.push_str(&format!("{state:016x}"));
    }
    format!("sha256:{hex}")
        .parse()
        .map_err(|_| anyhow::anyhow!("bad digest for {seed}"))
}

fn finding(index: usize, layer: &Digest) -> Finding {
    let severity = Severity::ALL[index % Severity::ALL.len()];
    Finding {
        id: format!("CVE-2026-{:05}", 10_000 + index),
        aliases: Vec::new(),
        advisories: vec![format!("GHSA-bench-{index:05}")],
        references: vec![format!(
            "https://example.invalid/CVE-2026-{:05}",
            10_000 + index
        )],
        summary: Some(format!("Seeded flaw number {index}")),
        description: None,
        severity,
        severity_source: SeveritySource::AdvisoryLabel {
            advisory: format!("GHSA-bench-{index:05}"),
            label: severity.as_str().to_owned(),
        },
        cvss: None,
        package_name: format!("package-{}", index % 150),
        source_package: None,
        installed_version: format!("1.{}.0", index % 7),
        fixed_by: Some(format!("1.{}.1", index % 7)),
        status: FindingStatus::Fixed,
        package_type: PackageType::Npm,
        ecosystem: "npm".to_owned(),
        purl: format!("pkg:npm/package-{}@1.{}.0", index % 150, index % 7),
        binary_packages: Vec::new(),
        layer_digest: Some(layer.clone()),
        locations: vec!["app/package-lock.json".to_owned()],
        advisory_link: None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, images, findings] = args.as_slice() else {
        bail!("usage: console_seed DATA_DIR IMAGES FINDINGS");
    };
    let data_dir = PathBuf::from(data_dir);
    let images: usize = images.parse().context("IMAGES is not a number")?;
    let findings: usize = findings.parse().context("FINDINGS is not a number")?;
    std::fs::create_dir_all(&data_dir)?;
    let store = Store::open_sqlite(&data_dir.join("crscan.db")).await?;
    let (registry, _) = store.ensure_default_registry().await?;
    let repository = store
        .upsert_repository(&registry.id, &format!("{}/bench", registry.id))
        .await?;
    let layer = digest("layer")?;
    let mut big_image = String::new();
    for index in 0..=images {
        let manifest = digest(&format!("manifest-{index}"))?;
        let image = store
            .put_image(
                &NewImage {
                    repository_id: repository.id.clone(),
                    digest: manifest.clone(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                    manifest_size: 500,
                    artifact_type: None,
                    subject: None,
                    blobs: vec![
                        (
                            BlobRole::Config,
                            digest(&format!("config-{index}"))?,
                            1200,
                            "application/vnd.oci.image.config.v1+json".to_owned(),
                        ),
                        (
                            BlobRole::Layer,
                            layer.clone(),
                            3_000_000,
                            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
                        ),
                    ],
                },
                Some(&if index == images {
                    "big".to_owned()
                } else {
                    format!("v{index}")
                }),
            )
            .await?;
        let count = if index == images { findings } else { index % 6 };
        crscan_scanner::worker::enqueue_scan(
            &store,
            &image.id,
            &repository.id,
            &registry.id,
            "bench",
            None,
        )
        .await?;
        let Some(job) = store.claim_job("bench-seed", 600_000, 1_000_000).await? else {
            bail!("the queued scan of image {} was not claimable", image.id);
        };
        store
            .finish_scan(
                &job,
                "bench-seed",
                &ScanCompletion {
                    status: ScanStatus::Ready,
                    scanned_at: crscan_store::now(),
                    findings: (0..count).map(|index| finding(index, &layer)).collect(),
                    manifest_digest: Some(manifest.to_string()),
                    database_digest: Some(digest("database")?.to_string()),
                    error: None,
                },
            )
            .await?;
        if index == images {
            big_image = image.id.clone();
        }
    }
    let big_scan = store.last_scan_result(&big_image).await?;
    println!("REGISTRY={}", registry.id);
    println!("REPOSITORY={}", repository.id);
    println!("REPOSITORY_NAME={}", repository.name);
    println!("IMAGE={big_image}");
    println!("SCAN={}", big_scan.id);
    store.close().await;
    Ok(())
}
