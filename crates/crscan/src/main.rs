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
    Serve(Box<cmd::serve::ServeArgs>),
    /// Copy every repository under a prefix from one registry to another.
    Mirror(cmd::mirror::MirrorArgs),
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
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Mirror(args) => cmd::mirror::run(args),
        Command::Gc(args) => cmd::gc::run(args),
        Command::Version(command) => cmd::version::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_message(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each thing said once: library errors often
/// repeat their cause in their own message (and a context may name the same file as
/// the error under it), so a cause, or a leading part of one, that the line already
/// says is left out.
fn error_message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if line.is_empty() {
            line = cause;
            continue;
        }
        let said: Vec<String> = line.split(": ").map(str::to_owned).collect();
        let mut parts: Vec<&str> = cause.split(": ").collect();
        // A leading part the line already says (`vulnerability database PATH`).
        while parts.len() > 1 && parts[0].len() >= 12 && line.contains(parts[0]) {
            parts.remove(0);
        }
        let new: Vec<&str> = parts
            .into_iter()
            .filter(|part| !said.iter().any(|said| said == part))
            .collect();
        if !new.is_empty() {
            line.push_str(": ");
            line.push_str(&new.join(": "));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn each_cause_is_said_once() {
        /// An error that repeats its cause in its message, as many library errors do.
        #[derive(Debug)]
        struct Repeats(std::io::Error);
        impl std::fmt::Display for Repeats {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read /x: {}", self.0)
            }
        }
        impl std::error::Error for Repeats {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let error = anyhow::Error::new(Repeats(io)).context("cannot read image oci:/x");
        assert_eq!(
            error_message(&error),
            "cannot read image oci:/x: cannot read /x: No such file or directory"
        );
        let inner = anyhow::anyhow!("vulnerability database /d.db: file is not a database")
            .context("cannot open vulnerability database /d.db");
        assert_eq!(
            error_message(&inner),
            "cannot open vulnerability database /d.db: file is not a database"
        );
    }
}
