//! A fuzzing driver for crscan's parsers of untrusted input that needs neither
//! nightly Rust nor libFuzzer: each target is fed seeds (the shared upstream fixtures
//! and a few built here) and random mutations of them for a bounded time; a panic is
//! a crash, saved under `fuzz/artifacts/TARGET/` with its message, and a slow input
//! (over a second) is saved as such. It is not coverage-guided, so it finds less
//! than libFuzzer would in the same time; `fuzz/run.sh` runs every target.
//!
//! Usage: `crscan-fuzz list`, `crscan-fuzz run TARGET SECONDS`,
//! `crscan-fuzz replay TARGET FILE...`.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crscan_catalog::Catalog;
use crscan_image::Limits;
use crscan_model::{Digest, FileView, ImageFile};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// One fuzz target: what it feeds the input to, and where its seeds come from.
struct Target {
    name: &'static str,
    run: fn(&[u8]),
    /// Seed folders under `shared/data`, and a test on the file name.
    seed_dirs: &'static [&'static str],
    seed_filter: fn(&str) -> bool,
    /// Seeds built here.
    built_seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens the mutator splices in.
    dictionary: &'static [&'static [u8]],
}

const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\"packages\"",
    b"\"dependencies\"",
    b"\"version\"",
    b"\"node_modules/",
    b"\"link\"",
    b"\"resolved\"",
    b"\"file:",
    b"\"layers\"",
    b"\"manifests\"",
    b"\"mediaType\"",
    b"\"digest\"",
    b"\"size\"",
    b"sha256:",
    b"\"schemaVersion\"",
];
const TEXT_TOKENS: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b": ",
    b" ",
    b"  ",
    b"\t",
    b"\r\n",
    b"Package: ",
    b"Version: ",
    b"Status: install ok installed\n",
    b"Source: ",
    b"P:",
    b"V:",
    b"o:",
    b"A:",
    b"@",
    b"version ",
    b"resolved ",
    b"\"",
    b"lockfileVersion: ",
    b"packages:\n",
    b"'",
    b"&a",
    b"*a",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
];
const BINARY_TOKENS: &[&[u8]] = &[
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x7fELF",
    b"\x8e\xad\xe8\x01",
    b"\xff Go buildinf:",
    b"\x00\x00\x00\x10",
    b"\x80\x00\x00\x00",
    b"ustar",
    b"././@LongLink",
    b"../",
    b"/",
];

fn any_file(_name: &str) -> bool {
    true
}

fn not_expected(name: &str) -> bool {
    !name.ends_with(".expected.json") && !name.ends_with(".csv") && !name.ends_with(".txt")
}

fn no_seeds() -> Vec<Vec<u8>> {
    Vec::new()
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "layer",
            run: fuzz_layer,
            seed_dirs: &[],
            seed_filter: any_file,
            built_seeds: layer_seeds,
            dictionary: BINARY_TOKENS,
        },
        Target {
            name: "manifest",
            run: fuzz_manifest,
            seed_dirs: &[],
            seed_filter: any_file,
            built_seeds: manifest_seeds,
            dictionary: JSON_TOKENS,
        },
        Target {
            name: "package-lock",
            run: |data| catalog_file("/app/package-lock.json", data),
            seed_dirs: &[
                "catalog/npm/osv-scalibr/package-lock",
                "catalog/npm/trivy/package-lock",
            ],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: JSON_TOKENS,
        },
        Target {
            name: "yarn",
            run: |data| catalog_file("/app/yarn.lock", data),
            seed_dirs: &[
                "catalog/npm/osv-scalibr/yarn-lock",
                "catalog/npm/trivy/yarn-lock",
            ],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: TEXT_TOKENS,
        },
        Target {
            name: "pnpm",
            run: |data| catalog_file("/app/pnpm-lock.yaml", data),
            seed_dirs: &[
                "catalog/npm/osv-scalibr/pnpm-lock",
                "catalog/npm/trivy/pnpm-lock",
            ],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: TEXT_TOKENS,
        },
        Target {
            name: "dpkg-status",
            run: |data| catalog_file("/var/lib/dpkg/status", data),
            seed_dirs: &["catalog/dpkg"],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: TEXT_TOKENS,
        },
        Target {
            name: "apk",
            run: |data| catalog_file("/lib/apk/db/installed", data),
            seed_dirs: &["catalog/apk"],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: TEXT_TOKENS,
        },
        Target {
            name: "rpm-header",
            run: fuzz_rpm,
            seed_dirs: &["catalog/rpm"],
            seed_filter: |name| name == "Packages" || name == "Packages.db",
            built_seeds: no_seeds,
            dictionary: BINARY_TOKENS,
        },
        Target {
            name: "go-buildinfo",
            run: fuzz_go,
            seed_dirs: &["catalog/go"],
            seed_filter: not_expected,
            built_seeds: no_seeds,
            dictionary: BINARY_TOKENS,
        },
    ]
}

// ---------------------------------------------------------------------------
// Targets.

fn small_limits() -> Limits {
    Limits {
        max_image_bytes: 64 << 20,
        max_entries_per_layer: 10_000,
        max_file_bytes: 4 << 20,
        max_total_bytes: 64 << 20,
        memory_budget_bytes: 32 << 20,
        ..Limits::default()
    }
}

fn digest(text: &str) -> Digest {
    format!("sha256:{text:0>64}")
        .parse()
        .expect("a well-formed digest")
}

/// The tar and gzip layer reader, then the file view and every detector on what it
/// kept.
fn fuzz_layer(data: &[u8]) {
    let catalog = Catalog::default();
    if let Ok(contents) = crscan_image::read_layer(data, &digest("1"), &catalog, &small_limits()) {
        let mut view = FileView::new();
        contents.apply_to(&mut view, &catalog);
        let _ = catalog.inventory(&view);
    }
}

/// Blobs held in memory for the manifest resolver: the input is the manifest (or
/// index), and the blob `sha256:00…02` is a second copy of it, so an index can point
/// at a manifest.
struct MemoryBlobs(BTreeMap<String, Vec<u8>>);

impl crscan_scanner::BlobSource for MemoryBlobs {
    fn open_blob(&self, digest: &Digest) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        match self.0.get(&digest.to_string()) {
            Some(bytes) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }
}

/// The manifest and index parsers, through the scanner's resolver.
fn fuzz_manifest(data: &[u8]) {
    let mut blobs = BTreeMap::new();
    blobs.insert(digest("2").to_string(), data.to_vec());
    blobs.insert(
        digest("3").to_string(),
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
    );
    let blobs = MemoryBlobs(blobs);
    let _ = crscan_scanner::resolve_image(&blobs, &digest("1"), Some(data), &small_limits());
}

/// One file at `path`, read by every detector.
fn catalog_file(path: &str, data: &[u8]) {
    let mut view = FileView::new();
    view.insert(ImageFile {
        path: path.to_owned(),
        layer_digest: None,
        mode: 0o644,
        contents: Arc::from(data),
        truncated: false,
        history: Vec::new(),
    });
    let _ = Catalog::default().inventory(&view);
}

/// The rpm header parser on the input, and the database readers on it as a file.
fn fuzz_rpm(data: &[u8]) {
    if let Ok(header) = crscan_catalog::rpm::header::Header::parse(data) {
        for tag in [1000, 1001, 1002, 1003, 1004, 1022, 1044, 1116, 1117, 1118] {
            let _ = header.string(tag);
            let _ = header.int32(tag);
            let _ = header.strings(tag).count();
            let _ = header.int32s(tag).count();
        }
    }
    catalog_file("/var/lib/rpm/Packages", data);
}

/// The Go build information reader.
fn fuzz_go(data: &[u8]) {
    let _ = crscan_catalog::golang::read_build_info(data);
}

// ---------------------------------------------------------------------------
// Built seeds.

fn tar_header(name: &[u8], kind: u8, link: &[u8], size: usize) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar ");
    block[263..265].copy_from_slice(b" \0");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

fn tar_of(entries: &[(&[u8], u8, &[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        out.extend_from_slice(&tar_header(name, *kind, link, data.len()));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn layer_seeds() -> Vec<Vec<u8>> {
    let status =
        std::fs::read(format!("{DATA}/catalog/dpkg/osv-scalibr/dpkg/single")).unwrap_or_default();
    let plain = tar_of(&[
        (b"etc/os-release", b'0', b"", b"ID=debian\nVERSION_ID=12\n"),
        (b"var/lib/dpkg/status", b'0', b"", &status),
        (b"usr/lib/os-release", b'2', b"../../etc/os-release", b""),
        (b"etc/hard", b'1', b"etc/os-release", b""),
        (b"app/.wh.gone", b'0', b"", b""),
        (b"app/.wh..wh..opq", b'0', b"", b""),
        (
            b"app/package-lock.json",
            b'0',
            b"",
            br#"{"packages":{"node_modules/a":{"version":"1.0.0"}}}"#,
        ),
    ]);
    vec![gzip(&plain), plain]
}

fn manifest_seeds() -> Vec<Vec<u8>> {
    let layer = format!("sha256:{:0>64}", "4");
    let config = format!("sha256:{:0>64}", "3");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":80}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":10}}]}}"#
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{:0>64}","size":100,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        "2"
    );
    let docker = manifest
        .replace(
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .replace(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        );
    vec![
        manifest.into_bytes(),
        index.into_bytes(),
        docker.into_bytes(),
    ]
}

// ---------------------------------------------------------------------------
// The driver.

/// xorshift64*: fast, and the same run for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            usize::try_from(self.next() % bound as u64).unwrap_or(0)
        }
    }
}

/// Largest input the mutator makes.
const MAX_INPUT: usize = 1 << 20;

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], dictionary: &[&[u8]], rng: &mut Rng) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = [0, 0xff, 0x7f, 0x80, b'0', b'9', b'\n', b'"'][rng.below(8)];
            }
            2 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                input.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(256)).min(len);
                let copy = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(1024)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if !dictionary.is_empty() => {
                let token = dictionary[rng.below(dictionary.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            8 if len >= 4 => {
                // An integer field at a random place: sizes, counts and offsets.
                let at = rng.below(len - 3);
                let value = [0u32, 1, 0x7fff_ffff, 0xffff_ffff, 0x1000_0000][rng.below(5)];
                input[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            _ => {}
        }
    }
    input.truncate(MAX_INPUT);
}

fn seeds(target: &Target) -> Vec<Vec<u8>> {
    let mut seeds = (target.built_seeds)();
    for dir in target.seed_dirs {
        collect(&Path::new(DATA).join(dir), target.seed_filter, &mut seeds);
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

fn collect(dir: &Path, filter: fn(&str) -> bool, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, filter, out);
        } else if path
            .file_name()
            .is_some_and(|name| filter(&name.to_string_lossy()))
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.len() <= 8 << 20
        {
            out.push(bytes);
        }
    }
}

fn artifacts(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(target);
    std::fs::create_dir_all(&dir).expect("creating the artifacts folder");
    dir
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `target` on `input`; returns the panic message and where it was raised, if
/// it panicked.
fn run_one(target: &Target, input: &[u8]) -> Option<String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)))
        .err()
        .map(|payload| {
            let location = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_default();
            format!("{} at {location}", panic_message(payload.as_ref()))
        })
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|last| *last.borrow_mut() = Some(location));
    }));
}

fn fuzz(target: &Target, seconds: u64) -> bool {
    let corpus = seeds(target);
    let started = Instant::now();
    let budget = Duration::from_secs(seconds);
    let mut rng = Rng(0x853c_49e6_748f_ea9b ^ started.elapsed().as_nanos() as u64 ^ 0x1234);
    let mut executions: u64 = 0;
    let mut crashes: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    // Every seed first, unmutated.
    let mut queue: Vec<Vec<u8>> = corpus.clone();
    while started.elapsed() < budget {
        let input = match queue.pop() {
            Some(input) => input,
            None => {
                let mut input = corpus[rng.below(corpus.len())].clone();
                mutate(&mut input, &corpus, target.dictionary, &mut rng);
                input
            }
        };
        let one = Instant::now();
        let crashed = run_one(target, &input);
        let took = one.elapsed();
        executions += 1;
        if took > slowest {
            slowest = took;
            if took > Duration::from_secs(1) {
                let path = artifacts(target.name).join(format!("slow-{}ms", took.as_millis()));
                let _ = std::fs::write(&path, &input);
            }
        }
        if let Some(message) = crashed
            && !crashes.contains_key(&message)
        {
            let path = artifacts(target.name).join(format!("crash-{}", crashes.len()));
            let _ = std::fs::write(&path, &input);
            let _ = std::fs::write(path.with_extension("txt"), &message);
            eprintln!(
                "{}: crash: {message} (input {})",
                target.name,
                path.display()
            );
            crashes.insert(message, path);
        }
    }
    println!(
        "{:<14} {:>10} executions {:>8.0}/s {:>3} crashes  slowest {} ms  seeds {}",
        target.name,
        executions,
        executions as f64 / started.elapsed().as_secs_f64(),
        crashes.len(),
        slowest.as_millis(),
        corpus.len()
    );
    crashes.is_empty()
}

fn main() -> std::process::ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let targets = targets();
    let find = |name: &str| targets.iter().find(|target| target.name == name);
    quiet_panics();
    match arguments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => {
            for target in &targets {
                println!("{}", target.name);
            }
            std::process::ExitCode::SUCCESS
        }
        ["run", name, seconds] => {
            let (Some(target), Ok(seconds)) = (find(name), seconds.parse()) else {
                eprintln!("usage: crscan-fuzz run TARGET SECONDS (targets: crscan-fuzz list)");
                return std::process::ExitCode::from(2);
            };
            if fuzz(target, seconds) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        ["replay", name, files @ ..] => {
            let Some(target) = find(name) else {
                eprintln!("unknown target {name}");
                return std::process::ExitCode::from(2);
            };
            let mut failed = false;
            for file in files {
                let input = std::fs::read(file).unwrap_or_default();
                match run_one(target, &input) {
                    Some(message) => {
                        failed = true;
                        println!("{file}: crash: {message}");
                    }
                    None => println!("{file}: ok"),
                }
            }
            if failed {
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("usage: crscan-fuzz list | run TARGET SECONDS | replay TARGET FILE...");
            std::process::ExitCode::from(2)
        }
    }
}
