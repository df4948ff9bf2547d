//! `crscan db build|update|status`: the local vulnerability database.
//!
//! `build` reads local feed files and folders; `update` downloads the feeds over
//! HTTPS into a cache beside the database (conditionally, with ETag and
//! Last-Modified) and then builds from the cache; `status` describes a database.
//! Parsing, the database and matching live in `crscan-vulndb`; the download code
//! lives in the `fetch` submodule because the library never opens a socket.

mod fetch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use crscan_report::sbom::format_unix_seconds;
use crscan_vulndb::{Database, LoadReport};

/// Where the database lives unless `--db` or `CRSCAN_DB` says otherwise.
pub const DEFAULT_DB_PATH: &str = "./crscan-data/vulndb/crscan.db";

/// Subcommands of `crscan db`.
#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Build the database from local feed files or folders (OSV JSON/YAML and
    /// all.zip exports, Alpine secdb, Debian tracker lists and JSON, Ubuntu CVE
    /// Tracker, Node Security WG, NVD CVE API 2.0 pages).
    Build {
        /// Feed files or folders; repeat or list several.
        #[arg(long = "from", required = true, num_args = 1..)]
        from: Vec<PathBuf>,
        /// The database file to write.
        #[arg(long, env = "CRSCAN_DB", default_value = DEFAULT_DB_PATH)]
        db: PathBuf,
        /// Print every invalid record, not only the first few.
        #[arg(long)]
        verbose: bool,
        /// Build even when a feed gave no advisories, or none did (a database that
        /// finds nothing for what those feeds cover).
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Download the feeds (OSV exports of the enabled ecosystems, the Debian tracker
    /// JSON, Alpine secdb, NVD's CVE API 2.0) and rebuild the database.
    Update {
        #[arg(long, env = "CRSCAN_DB", default_value = DEFAULT_DB_PATH)]
        db: PathBuf,
        /// Base URL of a mirror laid out as `osv/<Ecosystem>/all.zip`,
        /// `debian/tracker/data/json` and `alpine/<release>/<repository>.json`.
        #[arg(long)]
        mirror: Option<String>,
        /// OSV ecosystems to download (default: the language ecosystems, Ubuntu,
        /// AlmaLinux, Rocky Linux, Red Hat, SUSE and openSUSE).
        #[arg(long = "ecosystem")]
        ecosystems: Vec<String>,
        /// Alpine releases to download from secdb (default: every release secdb's index
        /// lists, edge included).
        #[arg(long = "alpine-release")]
        alpine_releases: Vec<String>,
        /// Skip the Debian security tracker JSON.
        #[arg(long)]
        no_debian: bool,
        /// Skip NVD's CVE API 2.0 (CVSS by CVE id for findings their own feed leaves
        /// unrated; about 150 pages, 6 s apart as NVD asks).
        #[arg(long)]
        no_nvd: bool,
        /// Per-request timeout in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Build even when a downloaded feed gave no advisories, or none did.
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Print the database's sources, counts, digest and age.
    Status {
        #[arg(long, env = "CRSCAN_DB", default_value = DEFAULT_DB_PATH)]
        db: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Publishing a built database for the nodes of a cluster.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Once the database is written, publish it for a cluster: put the file into the
    /// blob store under its digest and record it in the metadata store; every `crscan
    /// serve` node on that store fetches it, checks it and swaps it in.
    #[arg(long)]
    pub publish: bool,
    /// With --publish: the cluster's metadata store, as `crscan serve --store`
    /// [default: SQLite in the data dir].
    #[arg(long, env = "CRSCAN_STORE")]
    pub store: Option<String>,
    /// With --publish: the data directory whose blob store the nodes share, as `crscan
    /// serve --data-dir`.
    #[arg(long, env = "CRSCAN_DATA_DIR", default_value = "./crscan-data")]
    pub data_dir: PathBuf,
    /// With --publish: the cluster's blob store, as `crscan serve --blobs`
    /// (file://DIR or s3://BUCKET[/PREFIX], S3 credentials from the AWS_* variables)
    /// [default: file://<data-dir>/blobs].
    #[arg(long, env = "CRSCAN_BLOBS")]
    pub blobs: Option<String>,
}

impl PublishArgs {
    /// Publishes `db` when `--publish` was given and the build succeeded.
    fn after(&self, db: &Path, built: ExitCode) -> anyhow::Result<ExitCode> {
        if !self.publish || built != ExitCode::SUCCESS {
            return Ok(built);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let publication = runtime.block_on(async {
            let (store, blobs) = super::serve::open_stores(
                &self.data_dir,
                self.store.as_deref(),
                self.blobs.as_deref(),
            )
            .await?;
            let published = crscan_scanner::published::publish(&store, &blobs, db)
                .await
                .with_context(|| format!("cannot publish the database {}", db.display()));
            store.close().await;
            published
        })?;
        println!(
            "published {} ({} advisories, built {}, content {}); nodes swap it in within their db_watch_seconds",
            publication.digest,
            publication.advisories,
            format_unix_seconds(publication.built_at),
            publication.content_digest
        );
        Ok(built)
    }
}

pub fn run(command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Build {
            from,
            db,
            verbose,
            allow_partial,
            publish,
        } => {
            let built = build(&from, &db, verbose, allow_partial)?;
            publish.after(&db, built)
        }
        DbCommand::Update {
            db,
            mirror,
            ecosystems,
            alpine_releases,
            no_debian,
            no_nvd,
            timeout,
            allow_partial,
            publish,
        } => {
            let plan = fetch::Plan::new(
                mirror.as_deref(),
                ecosystems,
                alpine_releases,
                !no_debian,
                !no_nvd,
            );
            let built = update(&db, &plan, timeout, allow_partial)?;
            publish.after(&db, built)
        }
        DbCommand::Status { db, json } => status(&db, json),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn build(
    from: &[PathBuf],
    db: &Path,
    verbose: bool,
    allow_partial: bool,
) -> anyhow::Result<ExitCode> {
    let mut report = LoadReport::new();
    for path in from {
        report
            .load_path(path)
            .with_context(|| format!("cannot read feed {}", path.display()))?;
    }
    finish_build(db, &report, verbose, allow_partial)
}

/// Builds the database from `report`, unless it would be unusable (no advisories, or
/// a feed that was read and gave none) and `allow_partial` is not given. A feed that
/// could not be downloaded at all was warned about already, and is not a reason.
fn finish_build(
    db: &Path,
    report: &LoadReport,
    verbose: bool,
    allow_partial: bool,
) -> anyhow::Result<ExitCode> {
    print_diagnostics(report, verbose);
    let reasons = report.unusable_reasons();
    if !reasons.is_empty() {
        if !allow_partial {
            anyhow::bail!(
                "refusing to build {}: {}; check the feed paths, or give --allow-partial to build it anyway",
                db.display(),
                reasons.join("; ")
            );
        }
        for reason in &reasons {
            eprintln!("warning: {reason} (building anyway: --allow-partial)");
        }
    }
    let info = Database::build(db, report, now_unix())?;
    for (feed, counts) in &report.counts {
        println!(
            "{:<20} {:>7} loaded {:>6} invalid",
            feed.name(),
            counts.loaded,
            counts.invalid
        );
    }
    println!(
        "built {} with {} advisories from {} sources ({} invalid records skipped), digest {}",
        db.display(),
        info.advisory_count,
        info.sources.len(),
        report.invalid_count(),
        info.content_digest
    );
    Ok(ExitCode::SUCCESS)
}

fn print_diagnostics(report: &LoadReport, verbose: bool) {
    const SHOWN: usize = 10;
    let limit = if verbose { usize::MAX } else { SHOWN };
    for diagnostic in report.diagnostics.iter().take(limit) {
        eprintln!(
            "warning: skipped {}: {}",
            diagnostic.path, diagnostic.message
        );
    }
    if report.diagnostics.len() > limit {
        eprintln!(
            "warning: {} more invalid records skipped (--verbose lists them)",
            report.diagnostics.len() - limit
        );
    }
}

fn update(
    db: &Path,
    plan: &fetch::Plan,
    timeout: u64,
    allow_partial: bool,
) -> anyhow::Result<ExitCode> {
    let mut plan = plan.clone();
    let cache = db
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join("feeds");
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    let client = fetch::client(timeout)?;
    if let Some(index) = plan.alpine_index().map(str::to_owned) {
        let releases = match fetch::fetch_text(&client, &index) {
            Ok(html) => fetch::alpine_releases_in_index(&html),
            Err(error) => {
                eprintln!(
                    "warning: cannot read the Alpine secdb index: {error}; using the releases known to this build"
                );
                Vec::new()
            }
        };
        let releases = if releases.is_empty() {
            fetch::fallback_alpine_releases()
        } else {
            releases
        };
        plan.add_alpine_releases(&releases);
    }
    let mut report = LoadReport::new();
    let mut unreachable: Vec<String> = Vec::new();
    let mut fetched_any = false;
    for source in plan.sources() {
        let cache_path = cache.join(&source.file_name);
        match fetch::fetch(&client, &source.url, &cache_path) {
            Ok(fetched) => {
                fetched_any = true;
                let state = if fetched.not_modified {
                    "not modified"
                } else {
                    "downloaded"
                };
                eprintln!("{}: {state} ({})", source.name, source.url);
                report
                    .load_path_as(
                        &cache_path,
                        &source.name,
                        fetched.etag,
                        fetched.last_modified,
                    )
                    .with_context(|| format!("cannot read {}", cache_path.display()))?;
            }
            Err(fetch::FetchError::Unreachable { url, message }) => {
                eprintln!("warning: cannot reach {url}: {message}");
                unreachable.push(url);
                use_stale_copy(&mut report, source, &cache_path)?;
            }
            Err(error) => {
                eprintln!("warning: {}: {error}", source.name);
                use_stale_copy(&mut report, source, &cache_path)?;
            }
        }
    }
    if let Some(endpoint) = plan.nvd().map(str::to_owned) {
        fetched_any |= update_nvd(&client, &plan, &endpoint, &cache, &mut report)?;
    }
    if !fetched_any {
        eprintln!(
            "error: the network cannot be reached ({} sources failed); the database was not changed.\n\
             To build it offline, copy the feeds (OSV all.zip exports, Debian tracker JSON, \
             Alpine secdb files) to this machine and run:\n    crscan db build --from PATH... --db {}",
            unreachable.len().max(plan.sources().len()),
            db.display()
        );
        return Ok(ExitCode::from(3));
    }
    finish_build(db, &report, false, allow_partial)
}

/// Downloads NVD's CVE API 2.0 page by page (`startIndex`), each page cached like
/// any feed file, until `totalResults` is reached; a page that fails keeps its copy
/// from an earlier update. Returns whether any page was fetched.
fn update_nvd(
    client: &reqwest::blocking::Client,
    plan: &fetch::Plan,
    endpoint: &str,
    cache: &Path,
    report: &mut LoadReport,
) -> anyhow::Result<bool> {
    let mut fetched_any = false;
    let mut start = 0u64;
    loop {
        if start > 0 {
            std::thread::sleep(plan.nvd_delay());
        }
        let url = format!(
            "{endpoint}?startIndex={start}&resultsPerPage={}",
            fetch::NVD_PAGE_SIZE
        );
        let source = fetch::Source {
            name: format!("nvd-cves-{start}"),
            url: url.clone(),
            file_name: format!("nvd-cves-{start}.json"),
        };
        let cache_path = cache.join(&source.file_name);
        match fetch::fetch(client, &url, &cache_path) {
            Ok(fetched) => {
                fetched_any = true;
                eprintln!("nvd: page at {start} downloaded ({url})");
                report
                    .load_path_as(
                        &cache_path,
                        &source.name,
                        fetched.etag,
                        fetched.last_modified,
                    )
                    .with_context(|| format!("cannot read {}", cache_path.display()))?;
            }
            Err(error) => {
                eprintln!("warning: nvd: {error}");
                use_stale_copy(report, &source, &cache_path)?;
            }
        }
        let Some(total) = fetch::nvd_total_results(&cache_path) else {
            break;
        };
        start += fetch::NVD_PAGE_SIZE;
        if start >= total {
            break;
        }
    }
    Ok(fetched_any)
}

/// Loads the cached copy of a source that could not be refreshed, so that one
/// failing feed does not drop its advisories from the new database.
fn use_stale_copy(
    report: &mut LoadReport,
    source: &fetch::Source,
    cache_path: &Path,
) -> anyhow::Result<()> {
    if !cache_path.exists() {
        return Ok(());
    }
    eprintln!(
        "warning: {}: using the copy downloaded earlier",
        source.name
    );
    let validators = fetch::cached_validators(cache_path, &source.url);
    report
        .load_path_as(cache_path, &source.name, validators.0, validators.1)
        .with_context(|| format!("cannot read {}", cache_path.display()))?;
    Ok(())
}

fn status(db: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let database = Database::open(db)?;
    let info = database.info();
    let age = now_unix().saturating_sub(info.built_at);
    if json {
        let document = serde_json::json!({
            "path": db.display().to_string(),
            "schema_version": info.schema_version,
            "built_at": format_unix_seconds(info.built_at),
            "age_seconds": age,
            "content_digest": info.content_digest,
            "advisories": info.advisory_count,
            "sources": info.sources,
            "ecosystems": info.ecosystems.iter().map(|(name, count)| serde_json::json!({"ecosystem": name, "advisories": count})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("database:       {}", db.display());
    println!("schema version: {}", info.schema_version);
    println!(
        "built:          {} ({} ago)",
        format_unix_seconds(info.built_at),
        crscan_report::scan::format_age(age)
    );
    println!("content digest: {}", info.content_digest);
    println!("advisories:     {}", info.advisory_count);
    println!("sources:");
    for source in &info.sources {
        let validator = source
            .etag
            .as_deref()
            .map(|etag| format!(" etag {etag}"))
            .or_else(|| {
                source
                    .last_modified
                    .as_deref()
                    .map(|date| format!(" last-modified {date}"))
            })
            .unwrap_or_default();
        println!(
            "  {:<30} {:>7} records {:>5} invalid  {}{validator}",
            source.name, source.record_count, source.invalid_count, source.location
        );
    }
    println!("ecosystems:");
    for (ecosystem, count) in &info.ecosystems {
        println!("  {ecosystem:<30} {count:>7}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_unix_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_seconds(1_709_251_200), "2024-03-01T00:00:00Z");
        assert_eq!(
            format_unix_seconds(951_782_400 + 3_661),
            "2000-02-29T01:01:01Z"
        );
    }
}
