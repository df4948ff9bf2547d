//! `crscan serve`: the registry, the management API and the scan workers in one process.
//!
//! Settings come from flags, then `CRSCAN_*` environment variables, then the TOML config
//! file, then defaults. Tokens come from the config file (`[[tokens]]`, with an
//! optional `subject`) and from `CRSCAN_TOKENS="token:role+role@subject,…"`; they are
//! never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crscan_api::{AppState, Auth, Role, TokenSpec};
use crscan_blob::{BlobLocation, BlobStore, S3Settings};
use crscan_registry::{Limits, Registry};
use crscan_scanner::worker::{Scanner, WorkerConfig};
use crscan_scanner::{DatabaseCheck, LayerCache};
use crscan_store::Store;
use serde::Deserialize as _;

/// Arguments of `crscan serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file: any setting below by its name (`scan_max_layers = 64`),
    /// and `[[tokens]]`.
    #[arg(long, env = "CRSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

/// Every setting of `crscan serve`, settable by flag, by `CRSCAN_*` variable and by the
/// same name in the TOML file; this one list is what `--help` shows and the file may
/// hold. Defaults are applied in [`run`].
#[derive(Debug, Default, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free one, printed on stdout [default: 127.0.0.1:5000].
    #[arg(long, env = "CRSCAN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for blobs, uploads and the SQLite database [default: ./crscan-data].
    #[arg(long, env = "CRSCAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Metadata store: sqlite://FILE or postgres://… [default: SQLite in the data dir].
    #[arg(long, env = "CRSCAN_STORE")]
    pub store: Option<String>,
    /// Vulnerability database file [default: vulndb/crscan.db in the data dir].
    #[arg(long, env = "CRSCAN_DB")]
    pub db: Option<PathBuf>,
    /// On a first start with no vulnerability database, build it from these feed files
    /// or folders (as `crscan db build --from`) instead of downloading one [default:
    /// none, download it].
    #[arg(long = "db-from", env = "CRSCAN_DB_FROM", value_delimiter = ',', num_args = 1..)]
    #[serde(default)]
    pub db_from: Vec<PathBuf>,
    /// Concurrent scans in this process (0: none, this node only serves the API)
    /// [default: number of cores, fewer if MemAvailable does not hold that many scan
    /// memory budgets].
    #[arg(long, env = "CRSCAN_WORKERS")]
    pub workers: Option<usize>,
    /// Running scans per registry over all processes [default: 10].
    #[arg(long, env = "CRSCAN_REGISTRY_SCAN_CAP")]
    pub registry_scan_cap: Option<i64>,
    /// Seconds a scan job stays claimed without its worker renewing the lease; after a
    /// crash the job is taken again this long after the last renewal [default: 30].
    #[arg(long, env = "CRSCAN_SCAN_LEASE_SECONDS")]
    pub scan_lease_seconds: Option<u64>,
    /// Age in hours past which the database is reported stale [default: 72].
    #[arg(long, env = "CRSCAN_DB_MAX_AGE_HOURS")]
    pub db_max_age_hours: Option<u64>,
    /// Largest image scanned, in compressed bytes [default: 2147483648, 2 GiB].
    #[arg(long, env = "CRSCAN_SCAN_MAX_IMAGE_BYTES")]
    pub scan_max_image_bytes: Option<u64>,
    /// Most layers in a scanned image [default: 127].
    #[arg(long, env = "CRSCAN_SCAN_MAX_LAYERS")]
    pub scan_max_layers: Option<usize>,
    /// Memory one scan may hold for the files its detectors read, in MiB; a scan that
    /// needs more ends RESOURCE_EXHAUSTED naming the file [default: 256].
    #[arg(long, env = "CRSCAN_SCAN_MEMORY_BUDGET_MIB")]
    pub scan_memory_budget_mib: Option<u64>,
    /// Largest accepted manifest or index, in bytes [default: 4194304, 4 MiB].
    #[arg(long, env = "CRSCAN_MANIFEST_LIMIT_BYTES")]
    pub manifest_limit_bytes: Option<usize>,
    /// Hours between background garbage collections; 0 turns them off [default: 24].
    #[arg(long, env = "CRSCAN_GC_INTERVAL_HOURS")]
    pub gc_interval_hours: Option<u64>,
    /// Hours between background refreshes of the vulnerability database with
    /// `crscan db update`, which replaces the file atomically; 0 turns them off
    /// [default: 12].
    #[arg(long, env = "CRSCAN_DB_UPDATE_INTERVAL_HOURS")]
    pub db_update_interval_hours: Option<u64>,
    /// PEM certificate chain: with --tls-key, serve HTTP/1.1, HTTP/2 and gRPC over TLS
    /// on the listen address [default: none, cleartext].
    #[arg(long, env = "CRSCAN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [default: none, cleartext].
    #[arg(long, env = "CRSCAN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// HOST:PORT that gRPC endpoint discovery hands to clients [default: the address
    /// each client dialled].
    #[arg(long, env = "CRSCAN_PUBLIC_ADDRESS")]
    pub public_address: Option<String>,
    /// Largest size of the layer cache in bytes; past it, the least recently used
    /// layers are removed (read again when next needed); 0: no cap [default: 0].
    #[arg(long, env = "CRSCAN_CACHE_MAX_BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Whether this node takes part in background garbage collection (once per
    /// `gc_interval_hours` over the whole cluster, on the node that claims the period);
    /// false keeps GC off this node [default: true].
    #[arg(long, env = "CRSCAN_GC_ENABLED")]
    pub gc_enabled: Option<bool>,
    /// Log lines on stderr: `text` for people, `json` for one JSON object per line
    /// carrying the request id, scan id and image id as fields [default: text].
    #[arg(long, env = "CRSCAN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds a node gets on SIGTERM to drain its connections and finish its running
    /// scans; scans still running then are handed back to the queue [default: 30].
    #[arg(long, env = "CRSCAN_SHUTDOWN_TIMEOUT_SECONDS")]
    pub shutdown_timeout_seconds: Option<u64>,
    /// Seconds between looks in the store for a vulnerability database published with
    /// `crscan db update --publish` newer than this node's; 0 turns it off [default: 30].
    #[arg(long, env = "CRSCAN_DB_WATCH_SECONDS")]
    pub db_watch_seconds: Option<u64>,
    /// Where blobs and uploads live: file://DIR or s3://BUCKET[/PREFIX]; S3 takes
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL
    /// (path-style with an endpoint) [default: file://<data-dir>/blobs].
    #[arg(long, env = "CRSCAN_BLOBS")]
    pub blobs: Option<String>,
    /// On S3, answer a blob GET with a 307 redirect to a presigned URL instead of
    /// streaming it through this node [default: false].
    #[arg(long, env = "CRSCAN_BLOBS_REDIRECT")]
    pub blobs_redirect: Option<bool>,
    /// Seconds between runs of the ACTIVE lifecycle policies (each run on one node of
    /// the cluster); 0 turns them off [default: 3600].
    #[arg(long, env = "CRSCAN_LIFECYCLE_INTERVAL_SECONDS")]
    pub lifecycle_interval_seconds: Option<u64>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For`
    /// names the client for IP permissions [default: none, the peer is the client].
    #[arg(long, env = "CRSCAN_TRUSTED_PROXIES", value_delimiter = ',', num_args = 1..)]
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// How `crscan serve` writes its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Settings {
    /// These settings, each one not given taken from `file`.
    fn or(self, file: Settings) -> Settings {
        Settings {
            listen: self.listen.or(file.listen),
            data_dir: self.data_dir.or(file.data_dir),
            store: self.store.or(file.store),
            db: self.db.or(file.db),
            db_from: if self.db_from.is_empty() {
                file.db_from
            } else {
                self.db_from
            },
            workers: self.workers.or(file.workers),
            registry_scan_cap: self.registry_scan_cap.or(file.registry_scan_cap),
            scan_lease_seconds: self.scan_lease_seconds.or(file.scan_lease_seconds),
            db_max_age_hours: self.db_max_age_hours.or(file.db_max_age_hours),
            scan_max_image_bytes: self.scan_max_image_bytes.or(file.scan_max_image_bytes),
            scan_max_layers: self.scan_max_layers.or(file.scan_max_layers),
            scan_memory_budget_mib: self.scan_memory_budget_mib.or(file.scan_memory_budget_mib),
            manifest_limit_bytes: self.manifest_limit_bytes.or(file.manifest_limit_bytes),
            gc_interval_hours: self.gc_interval_hours.or(file.gc_interval_hours),
            db_update_interval_hours: self
                .db_update_interval_hours
                .or(file.db_update_interval_hours),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            public_address: self.public_address.or(file.public_address),
            cache_max_bytes: self.cache_max_bytes.or(file.cache_max_bytes),
            gc_enabled: self.gc_enabled.or(file.gc_enabled),
            log_format: self.log_format.or(file.log_format),
            shutdown_timeout_seconds: self
                .shutdown_timeout_seconds
                .or(file.shutdown_timeout_seconds),
            db_watch_seconds: self.db_watch_seconds.or(file.db_watch_seconds),
            blobs: self.blobs.or(file.blobs),
            blobs_redirect: self.blobs_redirect.or(file.blobs_redirect),
            lifecycle_interval_seconds: self
                .lifecycle_interval_seconds
                .or(file.lifecycle_interval_seconds),
            trusted_proxies: if self.trusted_proxies.is_empty() {
                file.trusted_proxies
            } else {
                self.trusted_proxies
            },
        }
    }
}

/// The configuration file: the [`Settings`] by name, and `[[tokens]]`.
#[derive(Debug, Default)]
struct ConfigFile {
    settings: Settings,
    tokens: Vec<TokenEntry>,
}

impl ConfigFile {
    fn read(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let invalid = || format!("config file {} is not valid", path.display());
        let mut table: toml::Table = toml::from_str(&text).with_context(invalid)?;
        let tokens = match table.remove("tokens") {
            Some(tokens) => Vec::<TokenEntry>::deserialize(tokens).with_context(invalid)?,
            None => Vec::new(),
        };
        let settings = Settings::deserialize(table).with_context(invalid)?;
        Ok(ConfigFile { settings, tokens })
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    #[serde(default)]
    roles: Vec<String>,
    /// The subject ID the token acts as in access bindings [default: `token-<n>`].
    #[serde(default)]
    subject: Option<String>,
}

/// Opens the metadata store and the blob store for a data directory; `blobs` is the
/// `--blobs` location (default: the data directory).
pub(crate) async fn open_stores(
    data_dir: &Path,
    store_url: Option<&str>,
    blobs: Option<&str>,
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
    let location = match blobs {
        Some(text) => text.parse::<BlobLocation>()?,
        None => BlobLocation::default_for(data_dir),
    };
    let blobs = BlobStore::open_location(&location, &S3Settings::from_env())
        .await
        .with_context(|| format!("cannot open the blob store at {location}"))?;
    Ok((store, Arc::new(blobs)))
}

/// Opens the layer cache of a data directory, capped at `max_bytes`, shared with
/// the cluster through `blobs` when they are on S3.
pub(crate) fn open_cache(
    data_dir: &Path,
    max_bytes: Option<u64>,
    blobs: &Arc<BlobStore>,
) -> anyhow::Result<LayerCache> {
    Ok(LayerCache::open(data_dir.join("cache"))
        .with_context(|| format!("cannot create the layer cache in {}", data_dir.display()))?
        .with_max_bytes(max_bytes)
        .shared_through(blobs.clone()))
}

/// Logging to stderr at `default` level (`info`, `warn`) unless `RUST_LOG` says
/// otherwise.
pub(crate) fn init_logging_at(default: &str) {
    init_logging_as(default, LogFormat::Text);
}

/// Logging to stderr in `format`: with `json`, one JSON object a line, the event's
/// fields (`request_id`, `scan.id`, `image.id`, …) under `fields` and those of the
/// request it belongs to under `span`.
pub(crate) fn init_logging_as(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if format == LogFormat::Json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        return;
    }
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
    let config = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::default(),
    };
    let settings = args.settings.or(config.settings);
    init_logging_as("info", settings.log_format.unwrap_or_default());
    let listen = settings
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let data_dir = settings
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./crscan-data"));
    let store_url = settings.store.clone();
    let blobs_location = settings.blobs.clone();
    let blobs_redirect = settings.blobs_redirect.unwrap_or(false);
    let mut tokens = Vec::new();
    for entry in &config.tokens {
        let roles = entry
            .roles
            .iter()
            .map(|role| {
                Role::parse(role).with_context(|| format!("unknown role {role:?} in config"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(subject) = &entry.subject {
            crscan_api::check_subject(subject)
                .map_err(|message| anyhow::anyhow!("[[tokens]] in config: {message}"))?;
        }
        tokens.push(TokenSpec {
            token: entry.token.clone(),
            roles,
            subject: entry.subject.clone(),
        });
    }
    if let Ok(list) = std::env::var("CRSCAN_TOKENS") {
        tokens.extend(
            Auth::parse_list(&list)
                .map_err(|message| anyhow::anyhow!("CRSCAN_TOKENS: {message}"))?,
        );
    }
    let auth = Auth::with_subjects(tokens);
    let trusted_proxies = crscan_api::access::TrustedProxies::parse(&settings.trusted_proxies)
        .map_err(|message| anyhow::anyhow!("trusted_proxies: {message}"))?;
    if !listen.ip().is_loopback() && !auth.enabled() {
        anyhow::bail!(
            "refusing to listen on non-loopback address {listen} without tokens; set CRSCAN_TOKENS or [[tokens]] in the config"
        );
    }
    let gc_hours = if settings.gc_enabled.unwrap_or(true) {
        settings.gc_interval_hours.unwrap_or(24)
    } else {
        0
    };
    let shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_seconds.unwrap_or(30));
    let db_watch_seconds = settings.db_watch_seconds.unwrap_or(30);
    let db_update_hours = settings.db_update_interval_hours.unwrap_or(12);
    let cache_max_bytes = settings.cache_max_bytes;
    let lifecycle_seconds = settings.lifecycle_interval_seconds.unwrap_or(3600);
    let db_path = settings
        .db
        .clone()
        .unwrap_or_else(|| data_dir.join("vulndb").join("crscan.db"));
    let mut worker_config = WorkerConfig::new(db_path.clone());
    if let Some(mib) = settings.scan_memory_budget_mib {
        worker_config.limits.memory_budget_bytes = mib.saturating_mul(1 << 20);
    }
    worker_config.workers = match settings.workers {
        Some(workers) => workers,
        None => {
            let workers = crscan_scanner::worker::workers_for_memory(
                worker_config.workers,
                crscan_scanner::worker::mem_available(),
                worker_config.limits.memory_budget_bytes,
            );
            tracing::info!(
                workers,
                scan_memory_budget_mib = worker_config.limits.memory_budget_bytes >> 20,
                "scan workers: one per core, as many as the available memory holds"
            );
            workers
        }
    };
    if let Some(cap) = settings.registry_scan_cap {
        worker_config.registry_cap = cap.max(1);
    }
    if let Some(bytes) = settings.scan_max_image_bytes {
        worker_config.limits.max_image_bytes = bytes;
    }
    if let Some(layers) = settings.scan_max_layers {
        worker_config.limits.max_layers = layers;
    }
    if let Some(bytes) = settings.manifest_limit_bytes {
        worker_config.limits.max_manifest_bytes = bytes as u64;
    }
    // One manifest limit: what the registry accepts is what a scan reads.
    let limits = Limits::from_image(&worker_config.limits);
    if let Some(seconds) = settings.scan_lease_seconds {
        worker_config.lease = Duration::from_secs(seconds.max(1));
    }
    if let Some(hours) = settings.db_max_age_hours {
        worker_config.database_max_age_hours = hours;
    }
    let database_check = worker_config.database_check();
    let db_from = settings.db_from.clone();
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(certificate), Some(key)) => Some(crscan_api::listen::tls_config(certificate, key)?),
        (None, None) => None,
        (Some(_), None) => {
            anyhow::bail!("tls_cert is set but tls_key is not; give both or neither")
        }
        (None, Some(_)) => {
            anyhow::bail!("tls_key is set but tls_cert is not; give both or neither")
        }
    };
    let public_address = settings.public_address.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (store, blobs) =
            open_stores(&data_dir, store_url.as_deref(), blobs_location.as_deref()).await?;
        let (default, created) = store.ensure_default_registry().await?;
        if created {
            tracing::info!(registry.id = %default.id, "created the default registry");
        } else {
            tracing::info!(registry.id = %default.id, "default registry");
        }
        let scan_blobs = blobs.clone();
        let cache = open_cache(&data_dir, cache_max_bytes, &blobs)?;
        let registry =
            Registry::new(store.clone(), blobs, limits).with_blob_redirect(blobs_redirect);
        // In a cluster whose database is published, the watch below fetches it: this
        // node neither downloads nor builds its own (it would differ from the others').
        let published = db_watch_seconds > 0
            && matches!(store.latest_database_publication().await, Ok(Some(_)));
        if published {
            tracing::info!("the cluster publishes its vulnerability database; this node fetches it instead of updating its own");
        } else {
            check_database(&database_check, &db_from);
        }
        if db_watch_seconds > 0 {
            // A database published for the cluster (`crscan db update --publish`) is
            // fetched, checked and swapped in; the workers and the scheduler notice
            // the new file as after a local update.
            crscan_scanner::published::spawn_watch(
                store.clone(),
                scan_blobs.clone(),
                database_check.path.clone(),
                Duration::from_secs(db_watch_seconds),
            );
        }
        let scanner = Scanner::new(store.clone(), scan_blobs, cache.clone(), worker_config);
        scanner.start();
        if gc_hours > 0 {
            crscan_scanner::gc::spawn_background(
                registry.clone(),
                cache,
                Duration::from_secs(gc_hours * 3600),
                scanner.node_id().to_owned(),
            );
        } else {
            tracing::info!("background gc is off on this node");
        }
        if lifecycle_seconds > 0 {
            crscan_api::service::spawn_lifecycle_runs(
                crscan_api::Service::new(registry.clone(), None),
                Duration::from_secs(lifecycle_seconds),
                scanner.node_id().to_owned(),
            );
        }
        if db_update_hours > 0 {
            let db_path = database_check.path.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let mut ticker =
                    tokio::time::interval(Duration::from_secs(db_update_hours.saturating_mul(3600)));
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if db_watch_seconds > 0
                        && matches!(store.latest_database_publication().await, Ok(Some(_)))
                    {
                        tracing::info!("the cluster publishes its vulnerability database; skipping this node's own refresh");
                        continue;
                    }
                    tracing::info!(db = %db_path.display(), "refreshing the vulnerability database with `crscan db update`");
                    let path = db_path.clone();
                    if let Err(error) =
                        tokio::task::spawn_blocking(move || fetch_database(&path, true)).await
                    {
                        tracing::warn!(%error, "the database refresh stopped");
                    }
                }
            });
        }
        let app = crscan_api::router(
            AppState::new(registry, auth.clone(), Some(scanner.clone()), database_check)
                .with_public_address(public_address)
                .with_trusted_proxies(trusted_proxies),
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(listen = %bound, data_dir = %data_dir.display(), auth = auth.enabled(), tls = tls.is_some(), "crscan serving");
        // One line on stdout with the bound address, so `--listen 127.0.0.1:0` can be
        // used by scripts and tests that need a free port without racing for one.
        announce(bound, tls.is_some());
        // On SIGTERM: stop taking scan jobs, let running scans and open connections
        // finish within the timeout, hand the scans still running back to the queue.
        let (signalled, mut on_signal) = tokio::sync::watch::channel(false);
        let scans = {
            let scanner = scanner.clone();
            tokio::spawn(async move {
                let _ = on_signal.wait_for(|signalled| *signalled).await;
                scanner.shutdown(shutdown_timeout).await
            })
        };
        let shutdown = async move {
            shutdown_signal().await;
            tracing::info!(
                timeout_seconds = shutdown_timeout.as_secs(),
                "shutting down: no new scans, draining connections"
            );
            let _ = signalled.send(true);
        };
        crscan_api::listen::serve_with_drain(listener, app, tls, shutdown, shutdown_timeout)
            .await
            .context("server failed")?;
        let report = scans.await.unwrap_or_default();
        tracing::info!(
            scans_running = report.running,
            scans_handed_back = report.handed_back,
            "scans stopped"
        );
        store.close().await;
        tracing::info!("crscan stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn announce(bound: SocketAddr, tls: bool) {
    use std::io::Write;
    let scheme = if tls { "https" } else { "http" };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "crscan serving on {scheme}://{bound}");
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
        tracing::info!(db = %db_path.display(), from = ?db_from, "no vulnerability database yet; building one in the background from the given feed files (state: building)");
        let db_from = db_from.to_vec();
        let check = check.clone();
        check.set_building(true);
        std::thread::spawn(move || {
            build_database(&db_path, &db_from);
            check.set_building(false);
        });
    } else if auto_update_enabled() {
        tracing::warn!(db = %db_path.display(), "no vulnerability database yet; downloading one in the background with `crscan db update`");
        std::thread::spawn(move || fetch_database(&db_path, false));
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
    let reasons = report.unusable_reasons();
    if !reasons.is_empty() {
        tracing::error!(
            db = %db_path.display(),
            reasons = reasons.join("; "),
            "refusing to build a vulnerability database from the --db-from feeds; check the paths, or build it with `crscan db build --allow-partial`"
        );
        return;
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

/// Runs `crscan db update` for the database at `db_path`: on a first start without one
/// and at every `db_update_interval_hours`, so a refresh is the same download and the
/// same atomic replacement as the command. The first download leaves NVD out
/// (`--no-nvd`: its paged API takes about 15 minutes at the pace NVD asks for), so
/// scans can start within minutes; the refreshes fetch it.
fn fetch_database(db_path: &Path, with_nvd: bool) {
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
        .args((!with_nvd).then_some("--no-nvd"))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// Every setting, its `--flag` and `CRSCAN_*` name, as the TOML file names it.
    const NAMES: &[&str] = &[
        "listen",
        "data_dir",
        "store",
        "db",
        "db_from",
        "workers",
        "registry_scan_cap",
        "scan_lease_seconds",
        "db_max_age_hours",
        "scan_max_image_bytes",
        "scan_max_layers",
        "scan_memory_budget_mib",
        "manifest_limit_bytes",
        "gc_interval_hours",
        "db_update_interval_hours",
        "tls_cert",
        "tls_key",
        "public_address",
        "cache_max_bytes",
        "gc_enabled",
        "log_format",
        "shutdown_timeout_seconds",
        "db_watch_seconds",
        "blobs",
        "blobs_redirect",
        "lifecycle_interval_seconds",
        "trusted_proxies",
    ];

    #[test]
    fn every_setting_has_a_flag_a_variable_and_a_default_in_help() {
        let help = Cli::command().render_long_help().to_string();
        for name in NAMES {
            let flag = format!("--{}", name.replace('_', "-"));
            let variable = format!("CRSCAN_{}", name.to_ascii_uppercase());
            assert!(help.contains(&flag), "{flag} missing from --help:\n{help}");
            assert!(help.contains(&variable), "{variable} missing from --help");
        }
        let arguments = Cli::command()
            .get_arguments()
            .filter(|argument| argument.get_id() != "config")
            .filter(|argument| argument.get_long().is_some())
            .filter(|argument| {
                !argument
                    .get_long_help()
                    .or(argument.get_help())
                    .is_some_and(|help| help.to_string().contains("[default: "))
            })
            .map(|argument| argument.get_id().to_string())
            .collect::<Vec<_>>();
        assert!(
            arguments.is_empty(),
            "settings without a default in --help: {arguments:?}"
        );
    }

    /// The two-node example under `deploy/` holds settings this version knows.
    #[test]
    fn the_deployment_example_reads() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let api = ConfigFile::read(&deploy.join("node-a.toml"))
            .unwrap()
            .settings;
        let worker = ConfigFile::read(&deploy.join("node-b.toml"))
            .unwrap()
            .settings;
        assert_eq!(api.workers, Some(0));
        assert_eq!(api.gc_enabled, Some(true));
        assert_eq!(worker.gc_enabled, Some(false));
        assert!(worker.workers.is_some_and(|workers| workers > 0));
        for node in [&api, &worker] {
            assert!(
                node.store
                    .as_deref()
                    .is_some_and(|store| store.starts_with("postgres://"))
            );
            assert!(
                node.blobs
                    .as_deref()
                    .is_some_and(|blobs| blobs.starts_with("s3://"))
            );
            assert_eq!(node.log_format, Some(LogFormat::Json));
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_holds_every_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crscan.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:5001"
data_dir = "/srv/crscan"
store = "sqlite:///srv/crscan/meta.db"
db = "/srv/db.db"
db_from = ["/feeds/a", "/feeds/b"]
workers = 3
registry_scan_cap = 4
scan_lease_seconds = 60
db_max_age_hours = 12
scan_max_image_bytes = 1000
scan_max_layers = 5
scan_memory_budget_mib = 64
manifest_limit_bytes = 2000
gc_interval_hours = 0
db_update_interval_hours = 0
tls_cert = "/etc/crscan/cert.pem"
tls_key = "/etc/crscan/key.pem"
public_address = "crscan.example.com:443"
cache_max_bytes = 3000
gc_enabled = false
log_format = "json"
shutdown_timeout_seconds = 7
db_watch_seconds = 5
blobs = "s3://crscan/blobs"
blobs_redirect = true
lifecycle_interval_seconds = 60
trusted_proxies = ["10.0.0.0/8", "::1"]

[[tokens]]
token = "secret-token-1"
roles = ["admin"]

[[tokens]]
token = "secret-token-2"
subject = "ci"
"#,
        )
        .unwrap();
        let file = ConfigFile::read(&path).unwrap();
        assert_eq!(file.tokens.len(), 2);
        assert_eq!(file.tokens[1].subject.as_deref(), Some("ci"));
        assert!(file.tokens[1].roles.is_empty());
        let cli =
            Cli::try_parse_from(["crscan", "--scan-max-layers", "9", "--workers", "0"]).unwrap();
        let settings = cli.serve.settings.or(file.settings);
        assert_eq!(settings.scan_max_layers, Some(9));
        assert_eq!(settings.workers, Some(0));
        assert_eq!(settings.registry_scan_cap, Some(4));
        assert_eq!(settings.scan_lease_seconds, Some(60));
        assert_eq!(settings.db_max_age_hours, Some(12));
        assert_eq!(settings.scan_max_image_bytes, Some(1000));
        assert_eq!(settings.manifest_limit_bytes, Some(2000));
        assert_eq!(settings.scan_memory_budget_mib, Some(64));
        assert_eq!(settings.gc_interval_hours, Some(0));
        assert_eq!(settings.db_update_interval_hours, Some(0));
        assert_eq!(settings.cache_max_bytes, Some(3000));
        assert_eq!(settings.gc_enabled, Some(false));
        assert_eq!(settings.log_format, Some(LogFormat::Json));
        assert_eq!(settings.shutdown_timeout_seconds, Some(7));
        assert_eq!(settings.db_watch_seconds, Some(5));
        assert_eq!(settings.blobs.as_deref(), Some("s3://crscan/blobs"));
        assert_eq!(settings.blobs_redirect, Some(true));
        assert_eq!(settings.lifecycle_interval_seconds, Some(60));
        assert_eq!(settings.db_from.len(), 2);
        assert_eq!(settings.tls_key, Some(PathBuf::from("/etc/crscan/key.pem")));
        assert_eq!(
            settings.public_address.as_deref(),
            Some("crscan.example.com:443")
        );
        assert_eq!(settings.listen, Some("127.0.0.1:5001".parse().unwrap()));
        assert_eq!(settings.trusted_proxies, vec!["10.0.0.0/8", "::1"]);

        // An unknown key is refused, naming it.
        std::fs::write(&path, "scan_max_layer = 5\n").unwrap();
        let error = format!("{:#}", ConfigFile::read(&path).unwrap_err());
        assert!(error.contains("scan_max_layer"), "{error}");
    }
}
