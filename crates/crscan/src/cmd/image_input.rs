//! Reading an image into an inventory, and writing the rendered document, shared by
//! `crscan sbom` and `crscan scan`.
//!
//! The image goes through the scan path the server takes
//! (`crscan_scanner::inventory_source`: the one manifest resolver, the layers read
//! once, the one catalogue and merge), without a layer cache. A progress bar over
//! the layers' bytes is drawn on stderr only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crscan_distribution::{ImageReference, Version};
use crscan_image::{
    ImageError, ImageInfo, ImageSource, LayerInfo, Limits, NoProgress, Progress, ReadOptions,
};
use crscan_model::{Diagnostic, Digest, Inventory};
use crscan_report::sbom::{Generator, Subject, SubjectLayer};
use indicatif::{ProgressBar, ProgressStyle};

use super::remote::{RemoteArgs, RemoteBlobs};

/// How many diagnostics are printed without `--verbose`.
const DIAGNOSTICS_SHOWN: usize = 5;

/// Reads and catalogues the image named `image` (`oci:PATH[:TAG]`, …, or a remote
/// `docker://HOST/REPO[:TAG|@DIGEST]`, whose blobs [`super::remote::RemoteBlobs`]
/// streams from the registry), holding at most `memory_budget_mib` MiB of the files
/// the detectors read.
pub fn read_inventory(
    image: &str,
    platform: Option<&str>,
    remote: &RemoteArgs,
    memory_budget_mib: u64,
) -> anyhow::Result<(Subject, Inventory)> {
    if ImageReference::is_remote(image) {
        return read_remote(image, platform, remote, memory_budget_mib);
    }
    read_local(image, platform, memory_budget_mib)
}

/// Reads and catalogues a remote image through the same manifest resolver and layer
/// loop as a local one, each blob streamed once from the registry.
fn read_remote(
    image: &str,
    platform: Option<&str>,
    remote: &RemoteArgs,
    memory_budget_mib: u64,
) -> anyhow::Result<(Subject, Inventory)> {
    let cannot = || format!("cannot read image {image}");
    let reference = ImageReference::parse(image)?;
    let blobs = RemoteBlobs::open(&reference, remote).with_context(cannot)?;
    let limits = limits(memory_budget_mib);
    let (digest, bytes, media_type) = blobs.manifest();
    let digest: Digest = digest
        .parse()
        .map_err(|error| anyhow::anyhow!("manifest digest {digest:?} is not valid: {error}"))
        .with_context(cannot)?;
    let mut info = crscan_image::resolve_manifest(
        &blobs,
        &digest,
        Some(bytes),
        Some(media_type),
        platform,
        &limits,
    )
    .map_err(|error| read_error(error, image, memory_budget_mib))?;
    info.source = image.to_owned();
    info.repo_tags = match &reference.version {
        Version::Tag(tag) => vec![format!("{}/{}:{tag}", reference.host, reference.repository)],
        Version::Digest(_) => Vec::new(),
    };
    let (inventory, _) = with_progress(|progress| {
        crscan_scanner::inventory_of(&blobs, &info, None, &limits, progress)
    })
    .map_err(|error| read_error(error, image, memory_budget_mib))?;
    Ok((subject(&info), inventory))
}

/// Reads and catalogues a local image.
fn read_local(
    image: &str,
    platform: Option<&str>,
    memory_budget_mib: u64,
) -> anyhow::Result<(Subject, Inventory)> {
    let source = ImageSource::parse(image).with_context(|| format!("cannot read image {image}"))?;
    let options = ReadOptions {
        platform: platform.map(str::to_owned),
        limits: limits(memory_budget_mib),
    };
    let (info, inventory, _) =
        with_progress(|progress| crscan_scanner::inventory_source(&source, &options, progress))
            .map_err(|error| read_error(error, image, memory_budget_mib))?;
    Ok((subject(&info), inventory))
}

/// The default limits, with the memory budget asked for.
fn limits(memory_budget_mib: u64) -> Limits {
    Limits {
        memory_budget_bytes: memory_budget_mib.saturating_mul(1 << 20),
        ..Limits::default()
    }
}

/// Runs `read` with a progress bar on stderr when stderr is a terminal.
fn with_progress<T>(read: impl FnOnce(&dyn Progress) -> T) -> T {
    let bar = std::io::stderr().is_terminal().then(LayerProgress::new);
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let result = read(progress);
    if let Some(bar) = &bar {
        bar.bar.finish_and_clear();
    }
    result
}

/// The error of reading `shown`, with a hint when it was over the memory budget.
fn read_error(error: ImageError, shown: &str, memory_budget_mib: u64) -> anyhow::Error {
    let hint = if matches!(error, ImageError::OverMemoryBudget { .. }) {
        format!(" with --memory-budget-mib {memory_budget_mib} (raise it to read this image)")
    } else {
        String::new()
    };
    anyhow::Error::new(error).context(format!("cannot read image {shown}{hint}"))
}

/// The image reader's description of the image, as the report crate wants it.
pub fn subject(info: &ImageInfo) -> Subject {
    Subject {
        name: info.source.clone(),
        manifest_digest: info.manifest_digest.clone(),
        config_digest: info.config_digest.clone(),
        repo_tags: info.repo_tags.clone(),
        os: info.os.clone(),
        architecture: info.architecture.clone(),
        created: info.created.clone(),
        layers: info
            .layers
            .iter()
            .map(|layer| SubjectLayer {
                digest: layer.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.size,
                media_type: layer.media_type.clone(),
            })
            .collect(),
    }
}

/// Seconds since the Unix epoch: `SOURCE_DATE_EPOCH` when set (reproducible builds
/// convention, <https://reproducible-builds.org/specs/source-date-epoch/>), else now.
pub fn now_unix_seconds() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|value| value.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
                })
        })
}

/// crscan, and the creation time from [`now_unix_seconds`].
pub fn generator() -> Generator {
    Generator {
        tool_name: "crscan".to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_unix_seconds: now_unix_seconds(),
    }
}

/// Prints the first few diagnostics (all with `verbose`) to stderr; `stage` says
/// what was being done (`cataloguing`, `matching`).
pub fn report_diagnostics(diagnostics: &[Diagnostic], verbose: bool, stage: &str) {
    if diagnostics.is_empty() {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let noun = if diagnostics.len() == 1 {
        "record was"
    } else {
        "records were"
    };
    // Writing to stderr can only fail if stderr is gone; nothing useful is left to do.
    let _ = writeln!(
        stderr,
        "warning: {} {noun} skipped while {stage}",
        diagnostics.len()
    );
    let shown = if verbose {
        diagnostics.len()
    } else {
        DIAGNOSTICS_SHOWN
    };
    for diagnostic in diagnostics.iter().take(shown) {
        let _ = writeln!(
            stderr,
            "  {}: {}: {}",
            diagnostic.detector, diagnostic.path, diagnostic.message
        );
    }
    if diagnostics.len() > shown {
        let _ = writeln!(
            stderr,
            "  … and {} more (use --verbose to see all)",
            diagnostics.len() - shown
        );
    }
}

/// Writes the rendered document to `path`, or to stdout when there is none.
pub fn write_output(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")
        }
    }
}

/// A progress bar over the compressed bytes of all layers, shown on stderr.
struct LayerProgress {
    bar: ProgressBar,
}

impl LayerProgress {
    fn new() -> LayerProgress {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("opening image");
        LayerProgress { bar }
    }
}

impl Progress for LayerProgress {
    fn image_opened(&self, info: &ImageInfo) {
        let total: u64 = info.layers.iter().map(|layer| layer.size).sum();
        self.bar.set_length(total);
        self.bar
            .set_message(format!("reading {} layers", info.layers.len()));
    }

    fn layer_started(&self, index: usize, layer: &LayerInfo) {
        self.bar.set_message(format!(
            "layer {} {}",
            index + 1,
            crscan_report::sbom::short_digest(&layer.digest)
        ));
    }

    fn bytes_read(&self, compressed: u64) {
        self.bar.inc(compressed);
    }
}
