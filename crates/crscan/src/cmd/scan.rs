//! `crscan scan IMAGE`: the known vulnerabilities of an image.
//!
//! Reads and catalogues the image as `crscan sbom` does (or reads a stored CycloneDX
//! inventory with `--sbom`), matches the inventory against the local database with
//! the server's one matcher call (`crscan_scanner::match_findings`), applies the ignore rules and the severity filter
//! (`crscan_report::scan::Policy`) and renders the report (`crscan-report`). The
//! document goes to stdout or `--output`; progress and diagnostics go to stderr.
//! The exit status follows `crscan_report::scan::ExitRule`, or is 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use crscan_model::Severity;
use crscan_report::sbom::{SbomDocument, format_unix_seconds};
use crscan_report::scan::{DatabaseSummary, ExitRule, Policy, ScanDocument, ScanFormat};
use crscan_vulndb::Database;

use super::db::DEFAULT_DB_PATH;
use super::image_input;

const AFTER_HELP: &str = "\
Exit status (2 on an error: unreadable image, missing database, bad arguments):
  --fail-on LEVEL       the --exit-code value (default 1) when a finding at LEVEL or
                        above is found; it counts every finding not ignored, whatever
                        --severity shows
  --exit-code N alone   N when any finding is shown, as in Trivy: --severity narrows
                        what counts (--severity HIGH,CRITICAL --exit-code 1 fails only
                        on HIGH and CRITICAL findings)
  neither               0
A finding is ignored when an ignore rule names it and has not expired, or, with
--ignore-unfixed, when no fixed version is known; ignored findings never count.

Ignore files: given with --ignore-file (repeatable), or else read from the working
directory when present: .trivyignore, .trivyignore.yaml, .grype.yaml (.grype.yml).
The format is recognised by name and content:
  crscan's own text, one entry per line, '#' starting a comment line:
    CVE-2019-11236
    CVE-2020-26137 expires: 2030-01-01 reason: no untrusted URLs reach urllib3
    GHSA-p6mc-m468-83gw reason: lodash only runs at build time
  The first word is a vulnerability id, matched against a finding's id, its aliases
  and the advisories that matched (DSA-4444-1). `expires: YYYY-MM-DD` (UTC) makes the
  entry stop hiding after that day; `reason:` takes the rest of the line.
  Trivy's .trivyignore (an id per line, `exp:YYYY-MM-DD` = the day it stops hiding)
  and .trivyignore.yaml (vulnerabilities: id, paths, purls, expired_at, statement).
  Grype's ignore: list (vulnerability, fix-state, package: name, version, type,
  language, location, upstream-name; a rule applies when every field it gives does).";

/// Arguments of `crscan scan`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ScanArgs {
    /// The image: `oci:PATH[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`,
    /// `dir:PATH`, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` in a registry, or a path
    /// recognised by its content.
    #[arg(required_unless_present = "sbom", conflicts_with = "sbom")]
    pub image: Option<String>,
    /// Match the inventory of a CycloneDX document crscan wrote (`crscan sbom
    /// --format cyclonedx`, or `crscan scan --format cyclonedx`) instead of reading
    /// an image.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// Output format: table, json (crscan's own), sarif (2.1.0), cyclonedx (1.6
    /// JSON with vulnerabilities) or csv (one row per finding).
    #[arg(long, short = 'f', default_value = "table")]
    pub format: ScanFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show only these severities, comma-separated (CRITICAL,HIGH,MEDIUM,LOW,
    /// NEGLIGIBLE,UNDEFINED; any case). Narrows what --exit-code alone counts; does not
    /// change what --fail-on counts.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub severity: Vec<Severity>,
    /// Hide findings that have no fixed version; they do not count for --fail-on.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Exit with --exit-code (default 1) when a finding at this severity or a more
    /// severe one is found (UNDEFINED counts every finding).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// The exit status when --fail-on is met; given alone, the exit status when any
    /// finding is shown (as in Trivy).
    #[arg(long, value_name = "N")]
    pub exit_code: Option<u8>,
    /// Ignore rules: crscan's own format, .trivyignore, .trivyignore.yaml or a Grype
    /// configuration, recognised by name and content (formats in --help). Repeatable;
    /// without it, those files in the working directory are read.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Vec<PathBuf>,
    /// The vulnerability database (built by `crscan db update` or `crscan db build`).
    #[arg(long, env = "CRSCAN_DB", default_value = DEFAULT_DB_PATH)]
    pub db: PathBuf,
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
    /// Print how long reading, matching and rendering took, to stderr.
    #[arg(long, hide = true)]
    pub timings: bool,
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let database = open_database(&args.db)?;
    let ignore = super::ignore_files::load(&args.ignore_file)?;

    let started = Instant::now();
    let (subject, inventory) = match (&args.sbom, &args.image) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read SBOM {}", path.display()))?;
            crscan_report::scan::read_cyclonedx(&text)
                .with_context(|| format!("cannot use SBOM {}", path.display()))?
        }
        (None, Some(image)) => image_input::read_inventory(
            image,
            args.platform.as_deref(),
            &args.remote,
            args.memory_budget_mib,
        )?,
        (None, None) => anyhow::bail!("name an image, or an SBOM with --sbom FILE"),
    };
    let read_time = started.elapsed();
    image_input::report_diagnostics(&inventory.diagnostics, args.verbose, "cataloguing");

    // Matching the sorted inventory makes the findings the same whether the
    // inventory came from the image or from an SBOM of it.
    let generator = image_input::generator();
    let today: String = format_unix_seconds(generator.created_unix_seconds)
        .chars()
        .take(10)
        .collect();
    let sbom = SbomDocument::new(subject, inventory, generator);
    let started = Instant::now();
    let report = crscan_scanner::match_findings(&database, &sbom.inventory)
        .with_context(|| format!("cannot match against database {}", args.db.display()))?;
    let match_time = started.elapsed();
    image_input::report_diagnostics(&report.diagnostics, args.verbose, "matching");
    if let Some(gap) = &report.os_not_covered {
        eprintln!("warning: {gap}");
    }

    let started = Instant::now();
    let policy = Policy {
        severities: args.severity.clone(),
        ignore_unfixed: args.ignore_unfixed,
        ignore,
        today: today.clone(),
    };
    let outcome = policy.apply(report.findings.clone());
    let status = outcome.exit_status(ExitRule {
        fail_on: args.fail_on,
        exit_code: args.exit_code,
    });
    let document = ScanDocument {
        sbom,
        database: DatabaseSummary {
            digest: report.database_digest.clone(),
            built_at: report.database_built_at,
        },
        findings: outcome.shown,
        ignored: outcome.ignored,
    };
    let text = document.render(args.format)?;
    image_input::write_output(args.output.as_deref(), &text)?;
    if args.timings {
        eprintln!(
            "timings: read {:.1} ms, match {:.1} ms ({} lookups), render {:.1} ms",
            read_time.as_secs_f64() * 1000.0,
            match_time.as_secs_f64() * 1000.0,
            report.packages_checked,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(ExitCode::from(status))
}

/// Opens the database, or says how to get one.
fn open_database(path: &Path) -> anyhow::Result<Database> {
    if !path.is_file() {
        anyhow::bail!(
            "no vulnerability database at {}; download one with `crscan db update`, or build \
             one from local feeds with `crscan db build --from PATH` (choose the file with \
             --db or CRSCAN_DB)",
            path.display()
        );
    }
    Database::open(path)
        .with_context(|| format!("cannot open vulnerability database {}", path.display()))
}
