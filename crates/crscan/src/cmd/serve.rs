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
use crscan_store::Store;

/// Arguments of `crscan serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000].
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
        let registry = Registry::new(store.clone(), blobs, limits);
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
        let app = crscan_api::router(AppState { registry, auth: auth.clone() });
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(listen = %listener.local_addr()?, data_dir = %data_dir.display(), auth = auth.enabled(), "crscan serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")?;
        store.close().await;
        tracing::info!("crscan stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
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
