//! `crscan version compare|check`: version ordering per ecosystem.

use std::process::ExitCode;

/// Subcommands of `crscan version`.
#[derive(Debug, clap::Subcommand)]
pub enum VersionCommand {
    /// Print `<`, `=` or `>` for two versions of one ecosystem.
    Compare {
        ecosystem: String,
        a: String,
        b: String,
    },
}

pub fn run(command: VersionCommand) -> anyhow::Result<ExitCode> {
    match command {
        VersionCommand::Compare { ecosystem, .. } => {
            anyhow::bail!("version ordering for {ecosystem} is not wired yet")
        }
    }
}
