//! Collection of what the server keeps that no stored image needs: the registry's
//! unreferenced blobs and upload sessions (`crscan-registry`'s garbage collection)
//! and the layer cache's entries for layers no stored image references (and those
//! past its size cap). `crscan gc` runs it once; `crscan serve` runs it on a timer.

use std::time::Duration;

use crscan_model::Digest;
use crscan_registry::{GcOptions, GcReport, Registry, RegistryError};
use crscan_store::StoreError;

use crate::LayerCache;
use crate::cache::CacheReport;

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("garbage collection of the registry failed: {0}")]
    Registry(#[from] RegistryError),
    #[error("cannot list the blobs stored images reference: {0}")]
    Store(#[from] StoreError),
    #[error("garbage collection of the layer cache failed: {0}")]
    Cache(#[from] std::io::Error),
}

/// What one collection found or did.
#[derive(Debug, Clone, Default)]
pub struct GcOutcome {
    pub registry: GcReport,
    pub cache: CacheReport,
}

/// Collects the registry, then the layer cache: an entry is kept while a stored
/// image references its layer (or it was used within `options.grace`).
pub async fn collect(
    registry: &Registry,
    cache: &LayerCache,
    options: &GcOptions,
) -> Result<GcOutcome, GcError> {
    let registry_report = registry.gc(options).await?;
    let referenced = registry.store().referenced_digests().await?;
    let cache = cache.clone();
    let grace = options.grace;
    let dry_run = options.dry_run;
    let cache_report = tokio::task::spawn_blocking(move || {
        let referenced = |digest: &Digest| referenced.contains(&digest.to_string());
        cache.collect(&referenced, grace, dry_run)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(GcOutcome {
        registry: registry_report,
        cache: cache_report,
    })
}

/// Runs [`collect`] (deleting) every `every`, first one period after the start.
pub fn spawn_background(registry: Registry, cache: LayerCache, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let options = GcOptions {
                dry_run: false,
                ..GcOptions::default()
            };
            match collect(&registry, &cache, &options).await {
                Ok(outcome) => tracing::info!(
                    deleted = outcome.registry.deleted,
                    freed_bytes = outcome.registry.freed_bytes,
                    cache_removed = outcome.cache.unreferenced + outcome.cache.evicted,
                    cache_freed_bytes = outcome.cache.freed_bytes,
                    "background gc finished"
                ),
                Err(error) => tracing::warn!(%error, "background gc failed"),
            }
        }
    });
}
