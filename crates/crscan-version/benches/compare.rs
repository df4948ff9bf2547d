//! Comparisons per second on already-parsed versions from the shared vectors.
//!
//! Run with `cargo bench -p crscan-version`; prints one line per scheme. A plain
//! `harness = false` bench keeps the dependency list short; it times whole passes over
//! every vector pair. Rates are per second of this thread's CPU time (from
//! `/proc/thread-self/schedstat` on Linux), so a busy machine does not distort them; the
//! wall-clock rate is printed too.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crscan_version::{Scheme, Version};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/versions");

fn pairs(scheme: Scheme, file: &str) -> Vec<(Version, Version)> {
    let text = std::fs::read_to_string(format!("{DATA}/{file}"))
        .unwrap_or_else(|error| panic!("cannot read {file}: {error}"));
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let a = Version::parse(scheme, fields.next()?).ok()?;
            let _op = fields.next()?;
            let b = Version::parse(scheme, fields.next()?).ok()?;
            Some((a, b))
        })
        .collect()
}

/// Nanoseconds this thread has spent on a CPU, when the kernel tells.
fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("CRSCAN_BENCH_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(1500),
    );
    for (scheme, file) in [
        (Scheme::Dpkg, "dpkg.txt"),
        (Scheme::Pep440, "pypi.txt"),
        (Scheme::Maven, "maven.txt"),
        (Scheme::Apk, "apk.txt"),
        (Scheme::Rpm, "rpm.txt"),
        (Scheme::Semver, "semver.txt"),
        (Scheme::Go, "go.txt"),
        (Scheme::RubyGems, "rubygems.txt"),
        (Scheme::NuGet, "nuget.txt"),
        (Scheme::Composer, "packagist.txt"),
    ] {
        let pairs = pairs(scheme, file);
        let parse_start = Instant::now();
        let mut parsed = 0usize;
        for (a, b) in &pairs {
            parsed += usize::from(Version::parse(scheme, a.as_str()).is_ok());
            parsed += usize::from(Version::parse(scheme, b.as_str()).is_ok());
        }
        let parse_rate = parsed as f64 / parse_start.elapsed().as_secs_f64();
        let start = Instant::now();
        let cpu_start = thread_cpu_nanos();
        let mut comparisons = 0u64;
        let mut checksum = 0i64;
        while start.elapsed() < budget {
            for (a, b) in &pairs {
                checksum += black_box(a).cmp(black_box(b)) as i64;
            }
            comparisons += pairs.len() as u64;
        }
        let wall_rate = comparisons as f64 / start.elapsed().as_secs_f64();
        let cpu_rate = match (cpu_start, thread_cpu_nanos()) {
            (Some(begin), Some(end)) if end > begin => {
                comparisons as f64 / ((end - begin) as f64 / 1e9)
            }
            _ => wall_rate,
        };
        println!(
            "{:<9} {:>6} pairs  {:>7.2} M comparisons/s (CPU time)  {:>7.2} M/s (wall)  {:>6.2} M parses/s  (checksum {checksum})",
            scheme.name(),
            pairs.len(),
            cpu_rate / 1e6,
            wall_rate / 1e6,
            parse_rate / 1e6
        );
    }
}
