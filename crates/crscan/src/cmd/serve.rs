//! `crscan serve`: the registry, the management API and the scan workers in one process.
//!
//! Settings come from flags, then `CRSCAN_*` environment variables, then the TOML config
//! file, then defaults. Tokens come from the config file (`[[tokens]]`) and from
//! `CRSCAN_TOKENS="token:role+role,…"`; they are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crscan_api::{AppState, Auth, Role};
use crscan_blob::BlobStore;
use crscan_registry::{GcOptions, Limits, Registry};
use crscan_scanner::worker::{Scanner, WorkerConfig};
use crscan_scanner::{DatabaseCheck, LayerCache};
use crscan_store::Store;

/// Arguments of `crscan serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one, printed on stdout [default: 127.0.0.1:5000].
    #[arg(long, env = "CRSCAN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for blobs, uploads and the SQLite database [default: ./crscan-data].
    #[arg(long, env = "CRSCAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Metadata store: sqlite://FILE or postgres://… [default: SQLite in the data dir].
    #[arg(long, env = "CRSCAN_STORE")]
    pub store: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "CRSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Vulnerability database file [default: vulndb/crscan.db in the data dir].
    #[arg(long, env = "CRSCAN_DB")]
    pub db: Option<PathBuf>,
    /// On a first start with no vulnerability database, build it from these feed files
    /// or folders (as `crscan db build --from`) instead of downloading one.
    #[arg(long = "db-from", env = "CRSCAN_DB_FROM", value_delimiter = ',', num_args = 1..)]
    pub db_from: Vec<PathBuf>,
    /// Concurrent scans in this process (0: none, this node only serves the API)
    /// [default: number of cores].
    #[arg(long, env = "CRSCAN_WORKERS")]
    pub workers: Option<usize>,
}

/// The configuration file's shape.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    /// Largest accepted manifest in bytes.
    manifest_limit_bytes: Option<usize>,
    /// Hours between background garbage collections; 0 turns them off.
    gc_interval_hours: Option<u64>,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    /// The vulnerability database file.
    db: Option<PathBuf>,
    /// Feed files or folders to build the database from when there is none.
    #[serde(default)]
    db_from: Vec<PathBuf>,
    /// Concurrent scans in this process.
    workers: Option<usize>,
    /// Running scans per registry over all processes (default 10).
    registry_scan_cap: Option<i64>,
    /// Age in hours past which the server warns that the database is stale (default 72).
    db_max_age_hours: Option<u64>,
    /// Largest image scanned, in compressed bytes (default 2 GiB).
    scan_max_image_bytes: Option<u64>,
    /// Most layers in a scanned image (default 127).
    scan_max_layers: Option<usize>,
    /// Seconds a scan job stays claimed without its worker renewing the lease; after a
    /// crash, the job is taken again this long after the last renewal (default 30).
    scan_lease_seconds: Option<u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    roles: Vec<String>,
}

/// Opens the metadata store and the blob store for a data directory.
pub(crate) async fn open_stores(
    data_dir: &Path,
    store_url: Option<&str>,
) -> anyhow::Result<(Store, Arc<BlobStore>)> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let store = match store_url {
        Some(url) => Store::connect(url)
            .await
            .with_context(|| "cannot open the metadata store given by --store".to_owned())?,
        None => Store::open_sqlite(&data_dir.join("crscan.db"))
            .await
            .with_context(|| format!("cannot open the SQLite store in {}", data_dir.display()))?,
    };
    let blobs = BlobStore::open(data_dir)
        .await
        .with_context(|| format!("cannot open the blob store in {}", data_dir.display()))?;
    Ok((store, Arc::new(blobs)))
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .try_init();
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let config: ConfigFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("config file {} is not valid", path.display()))?
        }
        None => ConfigFile::default(),
    };
    let listen = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let data_dir = args
        .data_dir
        .clone()
        .or(config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./crscan-data"));
    let store_url = args.store.clone().or(config.store.clone());
    let mut tokens = Vec::new();
    for entry in &config.tokens {
        let roles = entry
            .roles
            .iter()
            .map(|role| {
                Role::parse(role).with_context(|| format!("unknown role {role:?} in config"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        tokens.push((entry.token.clone(), roles));
    }
    if let Ok(list) = std::env::var("CRSCAN_TOKENS") {
        tokens.extend(
            Auth::parse_list(&list)
                .map_err(|message| anyhow::anyhow!("CRSCAN_TOKENS: {message}"))?,
        );
    }
    let auth = Auth::new(tokens);
    if !listen.ip().is_loopback() && !auth.enabled() {
        anyhow::bail!(
            "refusing to listen on non-loopback address {listen} without tokens; set CRSCAN_TOKENS or [[tokens]] in the config"
        );
    }
    let limits = Limits {
        manifest_bytes: config
            .manifest_limit_bytes
            .unwrap_or(Limits::default().manifest_bytes),
    };
    let gc_hours = config.gc_interval_hours.unwrap_or(24);
    let db_path = args
        .db
        .clone()
        .or(config.db.clone())
        .unwrap_or_else(|| data_dir.join("vulndb").join("crscan.db"));
    let mut worker_config = WorkerConfig::new(db_path.clone());
    if let Some(workers) = args.workers.or(config.workers) {
        worker_config.workers = workers;
    }
    if let Some(cap) = config.registry_scan_cap {
        worker_config.registry_cap = cap.max(1);
    }
    if let Some(bytes) = config.scan_max_image_bytes {
        worker_config.limits.max_image_bytes = bytes;
    }
    if let Some(layers) = config.scan_max_layers {
        worker_config.limits.max_layers = layers;
    }
    if let Some(seconds) = config.scan_lease_seconds {
        worker_config.lease = Duration::from_secs(seconds.max(1));
    }
    if let Some(hours) = config.db_max_age_hours {
        worker_config.database_max_age_hours = hours;
    }
    let database_check = worker_config.database_check();
    let db_from = if args.db_from.is_empty() {
        config.db_from.clone()
    } else {
        args.db_from.clone()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (store, blobs) = open_stores(&data_dir, store_url.as_deref()).await?;
        let (default, created) = store.ensure_default_registry().await?;
        if created {
            tracing::info!(registry.id = %default.id, "created the default registry");
        } else {
            tracing::info!(registry.id = %default.id, "default registry");
        }
        let scan_blobs = blobs.clone();
        let registry = Registry::new(store.clone(), blobs, limits);
        let cache = LayerCache::open(data_dir.join("cache"))
            .with_context(|| format!("cannot create the layer cache in {}", data_dir.display()))?;
        check_database(&database_check, &db_from);
        let scanner = Scanner::new(store.clone(), scan_blobs, cache, worker_config);
        scanner.start();
        if gc_hours > 0 {
            let background = registry.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_secs(gc_hours * 3600));
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let options = GcOptions { dry_run: false, ..GcOptions::default() };
                    match background.gc(&options).await {
                        Ok(report) => tracing::info!(deleted = report.deleted, freed_bytes = report.freed_bytes, "background gc finished"),
                        Err(error) => tracing::warn!(%error, "background gc failed"),
                    }
                }
            });
        }
        let app = crscan_api::router(AppState::new(
            registry,
            auth.clone(),
            Some(scanner.clone()),
            database_check,
        ));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(listen = %bound, data_dir = %data_dir.display(), auth = auth.enabled(), "crscan serving");
        // One line on stdout with the bound address, so `--listen 127.0.0.1:0` can be
        // used by scripts and tests that need a free port without racing for one.
        announce(bound);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")?;
        scanner.stop();
        store.close().await;
        tracing::info!("crscan stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn announce(bound: SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "crscan serving on http://{bound}");
    let _ = stdout.flush();
}

/// On a first start with no database, builds one in the background from the `--db-from`
/// feed files, or else fetches one with `crscan db update` (as Trivy fetches its
/// database on first use). The scheduler logs the database's state at start and
/// whenever it changes (stale, missing, fresh), and rescans stored images when it changes.
fn check_database(check: &DatabaseCheck, db_from: &[PathBuf]) {
    // Only a missing file is fetched or built; the scheduler's first look, right after
    // start, reports any other state.
    if check.path.exists() {
        return;
    }
    let db_path = check.path.clone();
    if !db_from.is_empty() {
        tracing::info!(db = %db_path.display(), from = ?db_from, "no vulnerability database yet; building one in the background from the given feed files");
        let db_from = db_from.to_vec();
        std::thread::spawn(move || build_database(&db_path, &db_from));
    } else if auto_update_enabled() {
        tracing::warn!(db = %db_path.display(), "no vulnerability database yet; downloading one in the background with `crscan db update`");
        std::thread::spawn(move || fetch_database(&db_path));
    }
}

fn build_database(db_path: &Path, from: &[PathBuf]) {
    let started = std::time::Instant::now();
    let mut report = crscan_vulndb::LoadReport::new();
    for path in from {
        if let Err(error) = report.load_path(path) {
            tracing::error!(%error, feed = %path.display(), "cannot read a feed given by --db-from; no database was built");
            return;
        }
    }
    let built_at = crscan_store::now() / 1000;
    match crscan_vulndb::Database::build(db_path, &report, built_at) {
        Ok(info) => tracing::info!(
            db = %db_path.display(),
            advisories = info.advisory_count,
            invalid = report.invalid_count(),
            seconds = started.elapsed().as_secs_f64(),
            "built the vulnerability database; scans can run"
        ),
        Err(error) => {
            tracing::error!(%error, db = %db_path.display(), "cannot build the vulnerability database")
        }
    }
}

/// Whether a first start without a database downloads one; `CRSCAN_DB_AUTO_UPDATE=0`
/// (or `false`) turns it off, for air-gapped nodes and for tests.
fn auto_update_enabled() -> bool {
    std::env::var("CRSCAN_DB_AUTO_UPDATE")
        .map(|value| {
            !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        })
        .unwrap_or(true)
}

fn fetch_database(db_path: &Path) {
    let fallback = format!("crscan db build --from PATH --db {}", db_path.display());
    let executable = match std::env::current_exe() {
        Ok(executable) => executable,
        Err(error) => {
            tracing::error!(%error, "cannot find the crscan executable to run `crscan db update`; build the database with `{fallback}`");
            return;
        }
    };
    let output = std::process::Command::new(executable)
        .arg("db")
        .arg("update")
        .arg("--db")
        .arg(db_path)
        .arg("--timeout")
        .arg("60")
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            tracing::info!(db = %db_path.display(), "downloaded the vulnerability database; scans can run");
        }
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("no output");
            tracing::error!(
                reason = last,
                "could not download the vulnerability database (is the network reachable?); build one from local feed files instead: {fallback}"
            );
        }
        Err(error) => {
            tracing::error!(%error, "could not run `crscan db update`; build the database from local feed files instead: {fallback}");
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
