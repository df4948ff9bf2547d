//! The `crscan` command: parses arguments and dispatches to one module per subcommand.
//!
//! Architecture invariant: no domain logic lives here. Each `cmd` module turns its
//! arguments into calls on the library crates and prints what they return: data to
//! stdout, diagnostics to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Self-hosted container registry with a built-in vulnerability scanner.
#[derive(Debug, Parser)]
#[command(name = "crscan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the packages installed in an image (an SBOM).
    Sbom(cmd::sbom::SbomArgs),
    /// Scan an image for known vulnerabilities.
    Scan(cmd::scan::ScanArgs),
    /// Build, update and inspect the local vulnerability database.
    #[command(subcommand)]
    Db(cmd::db::DbCommand),
    /// Run the registry, the API and the scan workers.
    Serve(cmd::serve::ServeArgs),
    /// Delete blobs and manifests that no image references.
    Gc(cmd::gc::GcArgs),
    /// Compare versions the way a package ecosystem does.
    #[command(subcommand)]
    Version(cmd::version::VersionCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Sbom(args) => cmd::sbom::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Db(command) => cmd::db::run(command),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Gc(args) => cmd::gc::run(args),
        Command::Version(command) => cmd::version::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
