//! Collection of what the server keeps that no stored image needs: the registry's
//! unreferenced blobs and upload sessions (`crscan-registry`'s garbage collection)
//! and the layer cache's entries for layers no stored image references (and those
//! past its size cap). `crscan gc` runs it once; `crscan serve` runs it once a
//! period, on the one node of the cluster that claims the period's slot.

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

/// Collects only the layer cache of this node (entries no stored image references,
/// and those past the cap): what a node does in a period another node's pass claimed.
pub async fn collect_cache(
    registry: &Registry,
    cache: &LayerCache,
) -> Result<CacheReport, GcError> {
    let referenced = registry.store().referenced_digests().await?;
    let cache = cache.clone();
    let grace = GcOptions::default().grace;
    let report = tokio::task::spawn_blocking(move || {
        let referenced = |digest: &Digest| referenced.contains(&digest.to_string());
        cache.collect(&referenced, grace, false)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(report)
}

/// The slot of the period `every` that starts next after `now_ms`, and the time
/// until it starts. Every node computes the same slots (they count periods since the
/// Unix epoch), so the nodes of a cluster claim the same slot with
/// `Store::claim_task`.
pub fn next_slot(now_ms: i64, every: Duration) -> (i64, Duration) {
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let slot = now_ms.div_euclid(every_ms) + 1;
    let wait = slot.saturating_mul(every_ms).saturating_sub(now_ms);
    (
        slot,
        Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
    )
}

/// Runs slot `slot` of the cluster's background GC on node `node`: when this node's
/// claim of the slot wins, a whole [`collect`] (deleting), returned; when another
/// node holds the slot, only this node's layer cache ([`collect_cache`]), and `None`.
pub async fn run_slot(
    registry: &Registry,
    cache: &LayerCache,
    slot: i64,
    node: &str,
) -> Result<Option<GcOutcome>, GcError> {
    if !registry.store().claim_task("gc", slot, node).await? {
        tracing::debug!(slot, "another node runs this period's gc");
        collect_cache(registry, cache).await?;
        return Ok(None);
    }
    let options = GcOptions {
        dry_run: false,
        ..GcOptions::default()
    };
    collect(registry, cache, &options).await.map(Some)
}

/// Runs [`run_slot`] once a period `every`, at the period's start: however many
/// nodes run this, the registry is collected once per period, by the node that
/// claims the period's `gc` slot in the store. A node whose claim lost still
/// collects its own layer cache, which is its own.
pub fn spawn_background(registry: Registry, cache: LayerCache, every: Duration, node: String) {
    tokio::spawn(async move {
        loop {
            let (slot, wait) = next_slot(crscan_store::now(), every);
            tokio::time::sleep(wait).await;
            match run_slot(&registry, &cache, slot, &node).await {
                Ok(Some(outcome)) => tracing::info!(
                    slot,
                    deleted = outcome.registry.deleted,
                    freed_bytes = outcome.registry.freed_bytes,
                    cache_removed = outcome.cache.unreferenced + outcome.cache.evicted,
                    cache_freed_bytes = outcome.cache.freed_bytes,
                    "background gc finished"
                ),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, slot, "background gc failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_compute_the_same_slot() {
        let hour = Duration::from_secs(3600);
        assert_eq!(next_slot(0, hour), (1, hour));
        assert_eq!(next_slot(3_599_000, hour), (1, Duration::from_secs(1)));
        assert_eq!(next_slot(3_600_000, hour), (2, hour));
        assert_eq!(next_slot(5, Duration::ZERO), (6, Duration::from_millis(1)));
    }
}
