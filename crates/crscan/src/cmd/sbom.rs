//! `crscan sbom IMAGE`: the package inventory of an image.

use std::process::ExitCode;

/// Arguments of `crscan sbom`.
#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    /// The image: `oci:PATH[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`,
    /// `dir:PATH`, or a path recognised by its content.
    pub image: String,
}

pub fn run(args: SbomArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sbom of {} is not wired yet", args.image)
}
