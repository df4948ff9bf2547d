//! `crscan mirror SOURCE DEST`: copies every repository under a prefix of one
//! registry to another (`crscan_distribution::mirror`), for instance out of
//! `cr.yandex/<registry-id>` into crscan, with digests unchanged.
//!
//! Progress lines and the summary go to stderr; the exit status is 1 when any item
//! failed, 2 when the run could not start (bad arguments, refused credentials, no
//! catalog).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use crscan_distribution::RegistryPrefix;
use crscan_distribution::mirror::{MirrorOptions, Summary};

use super::remote;

const AFTER_HELP: &str = "\
A repository PREFIX/X at the source becomes DESTPREFIX/X at the destination. Every tag
is copied with its manifest's exact bytes (so digests stay the same), indexes with all
their platforms, and referrers (signatures, SBOMs) where the source serves the referrers
API. Whatever the destination already holds with the same digest is not sent again: a
second run over an unchanged source copies nothing, and an interrupted run continues
where it stopped.

Exit status: 0 when everything was copied or already there, 1 when an item failed
(each failure is listed with its reason), 2 when the run could not start.

Example, out of the hosted service into crscan:
  crscan mirror --src-creds oauth:$YC_OAUTH_TOKEN --dest-creds ci:$CRSCAN_TOKEN \\
      docker://cr.yandex/crpXXXXXXXXXXXXXXXXX docker://crscan.example:5000/default";

/// Arguments of `crscan mirror`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct MirrorArgs {
    /// The source: `docker://HOST[:PORT][/PREFIX]`.
    pub source: String,
    /// The destination: `docker://HOST[:PORT][/PREFIX]`.
    pub destination: String,
    /// `USER:PASSWORD` for the source (for cr.yandex: `oauth:TOKEN`, `iam:TOKEN` or
    /// `json_key:KEY`); else auth files, as skopeo reads them.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub src_creds: Option<String>,
    /// `USER:PASSWORD` for the destination (for crscan: any user and a token).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub dest_creds: Option<String>,
    /// `--src-tls-verify=false` allows a self-signed certificate or plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub src_tls_verify: bool,
    /// `--dest-tls-verify=false` allows a self-signed certificate or plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub dest_tls_verify: bool,
    /// The source repositories, one a line (for sources that do not serve
    /// `_catalog`); full names, or names relative to the source prefix. `#` starts a
    /// comment.
    #[arg(long, value_name = "FILE")]
    pub repositories: Option<PathBuf>,
    /// Parallel copies.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Say what would be copied; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: MirrorArgs) -> anyhow::Result<ExitCode> {
    let source = RegistryPrefix::parse(&args.source)?;
    let destination = RegistryPrefix::parse(&args.destination)?;
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let repositories = match &args.repositories {
        Some(path) => Some(read_repositories(path)?),
        None => None,
    };
    let source_client =
        remote::client(&source.host, args.src_creds.as_deref(), args.src_tls_verify)?;
    let destination_client = remote::client(
        &destination.host,
        args.dest_creds.as_deref(),
        args.dest_tls_verify,
    )?;
    let options = MirrorOptions {
        jobs: args.jobs,
        dry_run: args.dry_run,
        repositories,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.jobs.clamp(2, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = |line: &str| eprintln!("{line}");
    let summary = runtime
        .block_on(crscan_distribution::mirror::mirror(
            &source_client,
            &source,
            &destination_client,
            &destination,
            &options,
            &report,
        ))
        .map_err(|error| {
            let hint = if options.repositories.is_none() && !error.is_auth_refused() {
                " (a source that does not list its repositories at /v2/_catalog needs \
                 --repositories FILE)"
            } else {
                ""
            };
            anyhow::Error::new(error)
                .context(format!("cannot mirror {source} to {destination}{hint}"))
        })?;
    print_summary(&summary, args.dry_run);
    Ok(if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_repositories(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the repository list {}", path.display()))?;
    let mut names = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let name = line
            .split('#')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('/');
        if name.is_empty() {
            continue;
        }
        crscan_distribution::reference::check_repository(name)
            .map_err(|reason| anyhow::anyhow!("{}:{}: {reason}", path.display(), number + 1))?;
        names.push(name.to_owned());
    }
    Ok(names)
}

fn print_summary(summary: &Summary, dry_run: bool) {
    let copied = if dry_run { "to copy" } else { "copied" };
    eprintln!(
        "{} repositories; tags: {} {copied}, {} already there; manifests: {} copied, {} already \
         there; blobs: {} copied, {} mounted, {} already there; {} bytes in {:.2} s",
        summary.repositories,
        summary.tags_copied,
        summary.tags_skipped,
        summary.manifests_copied,
        summary.manifests_skipped,
        summary.blobs_copied,
        summary.blobs_mounted,
        summary.blobs_skipped,
        summary.bytes_copied,
        summary.duration.as_secs_f64()
    );
    if !dry_run
        && summary.failures.is_empty()
        && summary.tags_copied
            + summary.manifests_copied
            + summary.blobs_copied
            + summary.blobs_mounted
            == 0
    {
        eprintln!("nothing copied: the destination already holds every tag");
    }
    if !summary.failures.is_empty() {
        eprintln!("{} failed:", summary.failures.len());
        for (item, reason) in &summary.failures {
            eprintln!("  {item}: {reason}");
        }
    }
}
