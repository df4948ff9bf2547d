//! `crscan sbom IMAGE`: the package inventory of an image.
//!
//! Reads and catalogues the image (see [`super::image_input`]) and renders the
//! result (`crscan-report`). Only the document goes to stdout (or `--output`); the
//! progress bar, when stderr is a terminal, and the diagnostics go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use crscan_report::sbom::{SbomDocument, SbomFormat};

use super::image_input;

/// Arguments of `crscan sbom`.
#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    /// The image: `oci:PATH[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`,
    /// `dir:PATH`, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` in a registry, or a path
    /// recognised by its content.
    pub image: String,
    /// Output format: table, json (crscan's own), cyclonedx (1.6 JSON) or spdx
    /// (2.3 JSON).
    #[arg(long, short = 'f', default_value = "table")]
    pub format: SbomFormat,
    /// Write the document to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The platform to pick from an image index, as `os/arch[/variant]`
    /// (default the host's platform, falling back to `linux/amd64`; the same rule
    /// for every kind of image).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub remote: super::remote::RemoteArgs,
    /// Memory the files the detectors read may take, in MiB; an image that needs
    /// more fails naming the file that did not fit.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub memory_budget_mib: u64,
    /// Print every diagnostic instead of the first few.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

pub fn run(args: SbomArgs) -> anyhow::Result<ExitCode> {
    let (subject, inventory) = image_input::read_inventory(
        &args.image,
        args.platform.as_deref(),
        &args.remote,
        args.memory_budget_mib,
    )?;
    image_input::report_diagnostics(&inventory.diagnostics, args.verbose, "cataloguing");
    let document = SbomDocument::new(subject, inventory, image_input::generator());
    let text = document.render(args.format)?;
    image_input::write_output(args.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
