//! `crscan version compare|check`: version ordering per ecosystem.
//!
//! Thin wrapper over `crscan-version`: `compare` prints `<`, `=` or `>`; `check` runs a file
//! of `A <op> B` vectors through [`crscan_version::check_vectors`], prints each line crscan
//! disagrees with, and ends with `N passed, M failed` (exit status 1 when anything failed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use crscan_version::{Scheme, check_vectors, compare, ordering_symbol};

/// Subcommands of `crscan version`.
#[derive(Debug, clap::Subcommand)]
pub enum VersionCommand {
    /// Print `<`, `=` or `>` for two versions of one ecosystem.
    Compare {
        /// Ecosystem as OSV spells it, in any case (`Debian`, `PyPI`, `npm`, ...), or
        /// `dpkg`, `apk`, `rpm`, `semver`; an unknown one is answered with the list.
        ecosystem: String,
        a: String,
        b: String,
    },
    /// Check a file of `A <op> B` lines against crscan's ordering.
    Check {
        /// Ecosystem as OSV spells it (`Debian`, `PyPI`, `npm`, ...) or `dpkg`, `apk`, `rpm`, `semver`.
        ecosystem: String,
        /// A file in the format of `shared/data/versions/*.txt`.
        file: PathBuf,
    },
}

/// The scheme of an ecosystem name in any case; an unknown one is refused with the list.
fn scheme(ecosystem: &str) -> anyhow::Result<Scheme> {
    Scheme::from_name_any_case(ecosystem).with_context(|| {
        let known: Vec<&str> = crscan_version::ECOSYSTEMS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        format!(
            "unknown ecosystem {ecosystem:?}; known (any case, with or without a release such as Debian:12): {}",
            known.join(", ")
        )
    })
}

pub fn run(command: VersionCommand) -> anyhow::Result<ExitCode> {
    match command {
        VersionCommand::Compare { ecosystem, a, b } => {
            let order = compare(scheme(&ecosystem)?, &a, &b)?;
            println!("{}", ordering_symbol(order));
            Ok(ExitCode::SUCCESS)
        }
        VersionCommand::Check { ecosystem, file } => {
            let scheme = scheme(&ecosystem)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = check_vectors(scheme, &text);
            for failure in &report.failures {
                println!("{failure}");
            }
            println!("{} passed, {} failed", report.passed, report.failed);
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
