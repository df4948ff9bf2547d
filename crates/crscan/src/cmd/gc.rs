//! `crscan gc`: garbage collection of unreferenced blobs and manifests.

use std::process::ExitCode;

/// Arguments of `crscan gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {}

pub fn run(_args: GcArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crscan gc` is not wired yet")
}
