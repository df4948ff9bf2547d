//! Copies every repository under a prefix from one registry to another: each tag
//! with its manifest's exact bytes (so digests do not change), indexes with all their
//! platforms, and the referrers (signatures, SBOMs) the source serves.
//!
//! Resumable and idempotent by construction: before anything is sent, the
//! destination is asked whether it already holds it (a tag with the same digest, a
//! manifest by digest, a blob), so a second run over an unchanged source sends
//! nothing and an interrupted run continues where it stopped. A blob the destination
//! holds in another repository this run copied to is mounted instead of sent. Blobs
//! go before the manifests that name them, children before their index, and the tag
//! last, so the destination never has a tag whose image is incomplete.
//!
//! A failure is one item's: it is recorded with its reason and the rest goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;

use crate::Error;
use crate::client::{Client, FetchedManifest};
use crate::manifest::Parsed;
use crate::reference::RegistryPrefix;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Parallel copies (tags copied at the same time).
    pub jobs: usize,
    /// Say what would be copied, copy nothing.
    pub dry_run: bool,
    /// The source repositories (full names), for sources without `_catalog`.
    pub repositories: Option<Vec<String>>,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub repositories: u64,
    pub tags_copied: u64,
    pub tags_skipped: u64,
    pub manifests_copied: u64,
    pub manifests_skipped: u64,
    pub blobs_copied: u64,
    pub blobs_skipped: u64,
    pub blobs_mounted: u64,
    pub bytes_copied: u64,
    pub duration: Duration,
    /// The item (`repository:tag`, a referrer) and why it failed.
    pub failures: Vec<(String, String)>,
}

#[derive(Default)]
struct Counters {
    tags_copied: AtomicU64,
    tags_skipped: AtomicU64,
    manifests_copied: AtomicU64,
    manifests_skipped: AtomicU64,
    blobs_copied: AtomicU64,
    blobs_skipped: AtomicU64,
    blobs_mounted: AtomicU64,
    bytes_copied: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Per blob digest: the destination repository known to hold it, behind a lock held
/// while it is being copied, so that two tags sharing a layer send it once.
type BlobLocks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<String>>>>>;

/// Per destination repository and manifest digest: whether this run has put it,
/// behind a lock held while it is copied, so that two tags of one image copy it once.
type ManifestLocks = Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<bool>>>>;

struct Run<'a> {
    source: &'a Client,
    destination: &'a Client,
    counters: Counters,
    blobs: BlobLocks,
    manifests: ManifestLocks,
    /// Says what happens, a line at a time (`copied team/app:1.2`).
    report: &'a (dyn Fn(&str) + Sync),
}

/// Mirrors the repositories under `source_prefix` to `destination_prefix`. An error
/// is returned only when the repositories cannot be listed; each tag's failure is in
/// the summary.
pub async fn mirror(
    source: &Client,
    source_prefix: &RegistryPrefix,
    destination: &Client,
    destination_prefix: &RegistryPrefix,
    options: &MirrorOptions,
    report: &(dyn Fn(&str) + Sync),
) -> Result<Summary, Error> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let repositories: Vec<String> = match &options.repositories {
        Some(names) => names.clone(),
        None => source.catalog().await?,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for repository in repositories {
        match source_prefix.relative(&repository) {
            Some(relative) => pairs.push((repository.clone(), destination_prefix.join(relative))),
            // A listed name outside the prefix is taken as relative to it.
            None if options.repositories.is_some() => pairs.push((
                source_prefix.join(&repository),
                destination_prefix.join(&repository),
            )),
            None => {}
        }
    }
    pairs.sort();
    pairs.dedup();
    summary.repositories = pairs.len() as u64;

    let run = Run {
        source,
        destination,
        counters: Counters::default(),
        blobs: Mutex::new(HashMap::new()),
        manifests: Mutex::new(HashMap::new()),
        report,
    };
    let mut failures: Vec<(String, String)> = Vec::new();

    // Tags of every repository, listed a few at a time.
    let listed: Vec<(String, String, Result<Vec<String>, Error>)> =
        futures::stream::iter(pairs.into_iter().map(|(from, to)| async move {
            let tags = source.tags(&from).await;
            (from, to, tags)
        }))
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    let mut work: Vec<(String, String, String)> = Vec::new();
    for (from, to, tags) in listed {
        match tags {
            Ok(tags) => {
                for tag in tags {
                    work.push((from.clone(), to.clone(), tag));
                }
            }
            Err(error) => failures.push((from, error.to_string())),
        }
    }

    let results: Vec<(String, Result<(), Error>)> =
        futures::stream::iter(work.iter().map(|(from, to, tag)| {
            let run = &run;
            async move {
                let outcome = run.copy_tag(from, to, tag, options.dry_run).await;
                (format!("{from}:{tag}"), outcome)
            }
        }))
        .buffer_unordered(options.jobs.max(1))
        .collect()
        .await;
    for (item, outcome) in results {
        if let Err(error) = outcome {
            (run.report)(&format!("failed {item}: {error}"));
            failures.push((item, error.to_string()));
        }
    }
    failures.sort();

    let counters = &run.counters;
    summary.tags_copied = counters.tags_copied.load(Ordering::Relaxed);
    summary.tags_skipped = counters.tags_skipped.load(Ordering::Relaxed);
    summary.manifests_copied = counters.manifests_copied.load(Ordering::Relaxed);
    summary.manifests_skipped = counters.manifests_skipped.load(Ordering::Relaxed);
    summary.blobs_copied = counters.blobs_copied.load(Ordering::Relaxed);
    summary.blobs_skipped = counters.blobs_skipped.load(Ordering::Relaxed);
    summary.blobs_mounted = counters.blobs_mounted.load(Ordering::Relaxed);
    summary.bytes_copied = counters.bytes_copied.load(Ordering::Relaxed);
    summary.failures = failures;
    summary.duration = started.elapsed();
    Ok(summary)
}

impl Run<'_> {
    async fn copy_tag(&self, from: &str, to: &str, tag: &str, dry_run: bool) -> Result<(), Error> {
        let source_digest = self
            .source
            .manifest_digest(from, tag)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("manifest {from}:{tag} at {}", self.source.host()),
            })?;
        let held = self.destination.manifest_digest(to, tag).await?;
        if held.as_deref() == Some(source_digest.as_str()) {
            bump(&self.counters.tags_skipped);
        } else if dry_run {
            (self.report)(&format!(
                "would copy {from}:{tag} ({source_digest}) to {to}:{tag}"
            ));
            bump(&self.counters.tags_copied);
            return Ok(());
        } else {
            let manifest = self.copy_manifest(from, to, &source_digest).await?;
            self.destination
                .put_manifest(to, tag, &manifest.media_type, &manifest.bytes)
                .await?;
            bump(&self.counters.tags_copied);
            (self.report)(&format!(
                "copied {from}:{tag} to {to}:{tag} ({source_digest})"
            ));
        }
        if !dry_run {
            self.copy_referrers(from, to, &source_digest).await?;
        }
        Ok(())
    }

    /// Copies a manifest by digest and everything it names, unless the destination
    /// holds it; returns it as the source served it.
    fn copy_manifest<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<FetchedManifest, Error>> {
        Box::pin(async move {
            let lock = {
                let mut manifests = self
                    .manifests
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                manifests
                    .entry((to.to_owned(), digest.to_owned()))
                    .or_default()
                    .clone()
            };
            let mut done = lock.lock().await;
            let manifest = self.source.manifest(from, digest).await?;
            if *done
                || self
                    .destination
                    .manifest_digest(to, digest)
                    .await?
                    .is_some()
            {
                bump(&self.counters.manifests_skipped);
                return Ok(manifest);
            }
            match &manifest.parsed {
                Parsed::Index { manifests } => {
                    for child in manifests {
                        self.copy_manifest(from, to, &child.digest).await?;
                    }
                }
                Parsed::Image { config, layers } => {
                    for blob in config.iter().chain(layers) {
                        self.copy_blob(from, to, &blob.digest, blob.size).await?;
                    }
                }
            }
            self.destination
                .put_manifest(to, digest, &manifest.media_type, &manifest.bytes)
                .await?;
            bump(&self.counters.manifests_copied);
            *done = true;
            Ok(manifest)
        })
    }

    /// The referrers of `digest` (and of an index's children) that the source serves.
    async fn copy_referrers(&self, from: &str, to: &str, digest: &str) -> Result<(), Error> {
        let Some(referrers) = self.source.referrers(from, digest).await? else {
            return Ok(());
        };
        for referrer in referrers {
            self.copy_manifest(from, to, &referrer.digest).await?;
        }
        Ok(())
    }

    async fn copy_blob(&self, from: &str, to: &str, digest: &str, size: u64) -> Result<(), Error> {
        let lock = {
            let mut blobs = self
                .blobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            blobs.entry(digest.to_owned()).or_default().clone()
        };
        let mut holder = lock.lock().await;
        match holder.as_deref() {
            Some(repository) if repository == to => {
                bump(&self.counters.blobs_skipped);
                return Ok(());
            }
            Some(repository) => {
                let repository = repository.to_owned();
                if self.destination.mount_blob(to, digest, &repository).await? {
                    bump(&self.counters.blobs_mounted);
                    *holder = Some(to.to_owned());
                    return Ok(());
                }
            }
            None => {}
        }
        if self.destination.has_blob(to, digest).await? {
            bump(&self.counters.blobs_skipped);
        } else {
            let reader = self.source.blob(from, digest, Some(size)).await?;
            self.destination.push_blob(to, digest, size, reader).await?;
            bump(&self.counters.blobs_copied);
            self.counters
                .bytes_copied
                .fetch_add(size, Ordering::Relaxed);
        }
        *holder = Some(to.to_owned());
        Ok(())
    }
}
