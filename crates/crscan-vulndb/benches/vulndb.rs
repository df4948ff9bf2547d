//! Benchmark: database build time from all of `shared/data/vulndb` (records per
//! second) and the time of one package lookup. Run with
//! `cargo bench -p crscan-vulndb --bench vulndb`.

use std::path::Path;
use std::time::Instant;

use crscan_vulndb::{Database, LoadReport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/vulndb"
    ));
    let directory = tempfile::tempdir()?;
    // `CRSCAN_BENCH_DB` keeps the built database for inspection.
    let database_path = std::env::var_os("CRSCAN_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| directory.path().join("crscan.db"));

    let start = Instant::now();
    let mut report = LoadReport::new();
    let mut folders: Vec<_> = std::fs::read_dir(data)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    folders.sort();
    for folder in folders.iter().filter(|path| path.is_dir()) {
        report.load_path(folder)?;
    }
    let loaded = start.elapsed();
    let info = Database::build(&database_path, &report, 0)?;
    let total = start.elapsed();
    for source in &report.sources {
        println!(
            "source {:<34} records {:>6} invalid {:>5}",
            source.name, source.record_count, source.invalid_count
        );
    }
    for (feed, counts) in &report.counts {
        println!(
            "feed {:<20} loaded {:>6} invalid {:>5}",
            feed.name(),
            counts.loaded,
            counts.invalid
        );
    }
    let records = report.advisory_count();
    println!(
        "build: {records} advisories in {:.2} s (parse {:.2} s, write {:.2} s), {:.0} records/s, {} diagnostics",
        total.as_secs_f64(),
        loaded.as_secs_f64(),
        (total - loaded).as_secs_f64(),
        records as f64 / total.as_secs_f64(),
        report.invalid_count()
    );
    println!(
        "database: {} bytes, digest {}",
        std::fs::metadata(&database_path)?.len(),
        info.content_digest
    );

    let database = Database::open(&database_path)?;
    for (ecosystem, package) in [
        ("PyPI", "jinja2"),
        ("Go", "stdlib"),
        ("Debian:10", "openssl"),
        ("npm", "no-such-package"),
    ] {
        let _ = database.lookup(ecosystem, package)?;
        let rounds = 20_000u32;
        let start = Instant::now();
        let mut found = 0usize;
        for _ in 0..rounds {
            found += database.lookup(ecosystem, package)?.len();
        }
        let each = start.elapsed() / rounds;
        println!(
            "lookup {ecosystem}/{package}: {} rows, {:.2} µs",
            found / rounds as usize,
            each.as_secs_f64() * 1e6
        );
    }
    Ok(())
}
