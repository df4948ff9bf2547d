//! `crscan gc`: garbage collection of unreferenced blobs and manifests, and of the
//! layer cache's entries for layers no stored image references
//! (`crscan_scanner::gc`). A dry run by default: it lists what it would delete and
//! says how to delete; `--delete` deletes and lists each deleted blob once. Blobs
//! younger than the grace period are kept, and the summary says how many and why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use crscan_registry::{GcOptions, Limits, Registry};
use crscan_scanner::gc;

/// Arguments of `crscan gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Directory for blobs, uploads and the SQLite database.
    #[arg(long, env = "CRSCAN_DATA_DIR", default_value = "./crscan-data")]
    pub data_dir: PathBuf,
    /// Metadata store: sqlite://FILE or postgres://… [default: SQLite in the data dir].
    #[arg(long, env = "CRSCAN_STORE")]
    pub store: Option<String>,
    /// Where blobs live, as `crscan serve --blobs`: file://DIR or s3://BUCKET[/PREFIX]
    /// [default: file://<data-dir>/blobs].
    #[arg(long, env = "CRSCAN_BLOBS")]
    pub blobs: Option<String>,
    /// Delete instead of only listing.
    #[arg(long)]
    pub delete: bool,
    /// Keep unreferenced blobs and cache entries younger than this many seconds
    /// (pushes and scans in progress).
    #[arg(long, default_value_t = 3600)]
    pub grace_seconds: u64,
    /// Also evict the least recently used layer cache entries past this many bytes
    /// (as `crscan serve --cache-max-bytes`); 0: no cap.
    #[arg(long, env = "CRSCAN_CACHE_MAX_BYTES", default_value_t = 0)]
    pub cache_max_bytes: u64,
}

pub fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    // The registry logs each deleted blob for the server's background collection;
    // here stdout lists them, so the log only shows warnings unless RUST_LOG asks.
    super::serve::init_logging_at("warn");
    if !args.data_dir.is_dir() {
        anyhow::bail!(
            "no data directory at {}: give the server's data directory with --data-dir or CRSCAN_DATA_DIR",
            args.data_dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (store, blobs) = super::serve::open_stores(
            &args.data_dir,
            args.store.as_deref(),
            args.blobs.as_deref(),
        ).await?;
        let cache =
            super::serve::open_cache(&args.data_dir, Some(args.cache_max_bytes), &blobs)?;
        let registry = Registry::new(store.clone(), blobs, Limits::default());
        let options = GcOptions {
            dry_run: !args.delete,
            grace: Duration::from_secs(args.grace_seconds),
            ..GcOptions::default()
        };
        let outcome = gc::collect(&registry, &cache, &options).await?;
        let report = &outcome.registry;
        let (verb, listed) = if args.delete {
            ("deleted", &report.deleted_blobs)
        } else {
            ("would delete", &report.unreferenced)
        };
        for (digest, size) in listed {
            println!("{verb} {digest} {size}");
        }
        for upload in &report.expired_uploads {
            println!("{verb} upload {upload}");
        }
        let total: u64 = listed.iter().map(|(_, size)| size).sum();
        if args.delete {
            eprintln!(
                "deleted {} unreferenced blobs ({total} bytes) and {} expired uploads",
                report.deleted_blobs.len(),
                report.expired_uploads.len()
            );
        } else {
            eprintln!(
                "dry run: nothing was deleted; {} unreferenced blobs ({total} bytes) and {} expired uploads would be; run `crscan gc --delete` to delete them",
                report.unreferenced.len(),
                report.expired_uploads.len()
            );
        }
        if report.kept_recent > 0 {
            eprintln!(
                "kept {} unreferenced blobs younger than the grace period of {} seconds, since a push may still be using them; --grace-seconds 0 collects them too",
                report.kept_recent, args.grace_seconds
            );
        }
        let cache = &outcome.cache;
        eprintln!(
            "layer cache: {} entries of unreferenced layers and {} past the size cap ({} bytes) {verb}, {} kept ({} bytes)",
            cache.unreferenced, cache.evicted, cache.freed_bytes, cache.kept, cache.kept_bytes
        );
        store.close().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
