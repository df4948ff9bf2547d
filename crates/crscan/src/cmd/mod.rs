//! One module per subcommand, each with its clap arguments and a `run` function.

pub mod sbom;
pub mod version;
