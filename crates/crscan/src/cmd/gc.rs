//! `crscan gc`: garbage collection of unreferenced blobs and manifests, and of the
//! layer cache's entries for layers no stored image references
//! (`crscan_scanner::gc`). A dry run by default: it lists what it would delete;
//! `--delete` deletes.

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
    super::serve::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (store, blobs) = super::serve::open_stores(&args.data_dir, args.store.as_deref()).await?;
        let registry = Registry::new(store.clone(), blobs, Limits::default());
        let cache = super::serve::open_cache(&args.data_dir, Some(args.cache_max_bytes))?;
        let options = GcOptions {
            dry_run: !args.delete,
            grace: Duration::from_secs(args.grace_seconds),
            ..GcOptions::default()
        };
        let outcome = gc::collect(&registry, &cache, &options).await?;
        let report = &outcome.registry;
        let verb = if args.delete { "deleted" } else { "would delete" };
        for (digest, size) in &report.unreferenced {
            println!("{verb} {digest} {size}");
        }
        for upload in &report.expired_uploads {
            println!("{verb} upload {upload}");
        }
        let total: u64 = report.unreferenced.iter().map(|(_, size)| size).sum();
        eprintln!(
            "{} unreferenced blobs ({total} bytes), {} kept as recent, {} deleted, {} expired uploads",
            report.unreferenced.len(),
            report.kept_recent,
            report.deleted,
            report.expired_uploads.len()
        );
        let cache = &outcome.cache;
        eprintln!(
            "layer cache: {} entries of unreferenced layers and {} past the size cap ({} bytes) {verb}, {} kept ({} bytes)",
            cache.unreferenced, cache.evicted, cache.freed_bytes, cache.kept, cache.kept_bytes
        );
        store.close().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
