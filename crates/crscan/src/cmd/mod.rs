//! One module per subcommand, each with its clap arguments and a `run` function.

pub mod db;
pub mod gc;
pub mod ignore_files;
pub mod image_input;
pub mod mirror;
pub mod remote;
pub mod sbom;
pub mod scan;
pub mod serve;
pub mod version;
