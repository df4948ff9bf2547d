//! `crscan serve`: the registry, the management API and the scan workers in one process.

use std::process::ExitCode;

/// Arguments of `crscan serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crscan serve` is not wired yet")
}
