//! `crscan scan IMAGE`: vulnerabilities of an image.

use std::process::ExitCode;

/// Arguments of `crscan scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {}

pub fn run(_args: ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crscan scan` is not wired yet")
}
