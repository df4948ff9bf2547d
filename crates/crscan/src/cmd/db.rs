//! `crscan db build|update|status`: the local vulnerability database.

use std::process::ExitCode;

/// Subcommands of `crscan db`.
#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Print the database's sources, counts, digest and age.
    Status,
}

pub fn run(_command: DbCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`crscan db` is not wired yet")
}
