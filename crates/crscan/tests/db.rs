//! `crscan db build|update|status`, run as the real binary. `update` downloads from a
//! small HTTP server started here on 127.0.0.1, which serves the shared feed files
//! (zipped on the fly like osv.dev's exports) and honours `If-None-Match` with 304.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vulndb");

fn crscan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crscan"))
        .args(args)
        .env_remove("CRSCAN_DB")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A zip of every file of a folder, as osv.dev publishes `all.zip`.
fn zip_folder(folder: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut entries: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
    {
        writer
            .start_file(path.file_name().unwrap().to_string_lossy(), options)
            .unwrap();
        writer.write_all(&std::fs::read(path).unwrap()).unwrap();
    }
    writer.finish().unwrap();
    bytes
}

/// One request the server saw: path, whether it was conditional, the status sent.
type Log = Arc<Mutex<Vec<(String, bool, u16)>>>;

/// Serves `files` (path → body) on an ephemeral loopback port until the test ends.
fn serve(files: HashMap<String, Vec<u8>>) -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let server_log = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let mut if_none_match = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("if-none-match")
                {
                    if_none_match = Some(value.trim().to_owned());
                }
            }
            let conditional = if_none_match.is_some();
            let (status, head, body): (u16, String, &[u8]) = match files.get(&path) {
                Some(body) => {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    body.hash(&mut hasher);
                    let etag = format!("\"{:016x}\"", hasher.finish());
                    if if_none_match.as_deref() == Some(etag.as_str()) {
                        (
                            304,
                            format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n"),
                            &[][..],
                        )
                    } else {
                        (
                            200,
                            format!(
                                "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\n",
                                body.len()
                            ),
                            &body[..],
                        )
                    }
                }
                None => (
                    404,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_owned(),
                    &[][..],
                ),
            };
            server_log.lock().unwrap().push((path, conditional, status));
            let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (port, log)
}

#[test]
fn update_downloads_conditionally_and_says_when_offline() {
    let mut files = HashMap::new();
    files.insert(
        "/osv/crates.io/all.zip".to_owned(),
        zip_folder(&Path::new(DATA).join("rustsec-advisory-db-osv/crates")),
    );
    let ghsa = Path::new(DATA).join("github-advisory-database-subset");
    let ghsa_zip_source = tempfile::tempdir().unwrap();
    for entry in walk(&ghsa) {
        std::fs::copy(
            &entry,
            ghsa_zip_source.path().join(entry.file_name().unwrap()),
        )
        .unwrap();
    }
    files.insert(
        "/osv/npm/all.zip".to_owned(),
        zip_folder(ghsa_zip_source.path()),
    );
    files.insert(
        "/alpine/v3.10/main.json".to_owned(),
        std::fs::read(Path::new(DATA).join("alpine-secdb/v3.10/main.yaml")).unwrap(),
    );
    let (port, log) = serve(files);
    let mirror = format!("http://127.0.0.1:{port}");
    let directory = tempfile::tempdir().unwrap();
    let db = directory.path().join("vulndb/crscan.db");
    let db_arg = db.to_str().unwrap();
    let update = |mirror: &str| {
        crscan(&[
            "db",
            "update",
            "--db",
            db_arg,
            "--mirror",
            mirror,
            "--ecosystem",
            "crates.io",
            "--ecosystem",
            "npm",
            "--alpine-release",
            "v3.10",
        ])
    };

    let first = update(&mirror);
    let stderr = text(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stderr.contains("osv-crates.io: downloaded"), "{stderr}");
    // The Debian tracker and Alpine's community file are not served: warnings only.
    assert!(
        stderr.contains("debian-tracker") && stderr.contains("404"),
        "{stderr}"
    );
    let status = crscan(&["db", "status", "--db", db_arg]);
    let report = text(&status.stdout);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(report.contains("schema version: 1"), "{report}");
    assert!(report.contains("osv-crates.io"), "{report}");
    assert!(report.contains("1206 records"), "{report}");
    assert!(report.contains("Alpine:v3.10"), "{report}");
    let digest_line = |report: &str| {
        report
            .lines()
            .find(|line| line.starts_with("content digest"))
            .unwrap()
            .to_owned()
    };
    let first_digest = digest_line(&report);

    // The second update sends the validators back and gets 304s.
    log.lock().unwrap().clear();
    let second = update(&mirror);
    let stderr = text(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("osv-crates.io: not modified"), "{stderr}");
    let requests = log.lock().unwrap().clone();
    for served in [
        "/osv/crates.io/all.zip",
        "/osv/npm/all.zip",
        "/alpine/v3.10/main.json",
    ] {
        assert!(
            requests.contains(&(served.to_owned(), true, 304)),
            "{requests:?}"
        );
    }
    let status = crscan(&["db", "status", "--db", db_arg]);
    assert_eq!(digest_line(&text(&status.stdout)), first_digest);

    // Nothing reachable: a clear message, the offline alternative, and the old
    // database still in service.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let offline = update(&format!("http://127.0.0.1:{closed_port}"));
    let stderr = text(&offline.stderr);
    assert_eq!(offline.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("network cannot be reached"), "{stderr}");
    assert!(stderr.contains("crscan db build --from"), "{stderr}");
    let status = crscan(&["db", "status", "--db", db_arg]);
    assert_eq!(digest_line(&text(&status.stdout)), first_digest);
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn build_from_local_feeds_and_status() {
    let directory = tempfile::tempdir().unwrap();
    let db = directory.path().join("crscan.db");
    let output = Command::new(env!("CARGO_BIN_EXE_crscan"))
        .args(["db", "build", "--from"])
        .arg(Path::new(DATA).join("nodejs-security-wg"))
        .arg(Path::new(DATA).join("debian-security-tracker"))
        .env("CRSCAN_DB", &db)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("nodejs-security-wg       467 loaded      1 invalid"),
        "{stdout}"
    );
    assert!(
        stdout.contains("debian-list             9120 loaded     28 invalid"),
        "{stdout}"
    );
    // Invalid records are named on stderr with their reason.
    assert!(
        stderr.contains("index.json: missing required field id"),
        "{stderr}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_crscan"))
        .args(["db", "status", "--json"])
        .env("CRSCAN_DB", &db)
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(document["advisories"], 9587);
    assert_eq!(document["schema_version"], 1);
    let ecosystems = document["ecosystems"].as_array().unwrap();
    assert!(
        ecosystems
            .iter()
            .any(|entry| entry["ecosystem"] == "Debian:10")
    );
    assert!(
        ecosystems
            .iter()
            .any(|entry| entry["ecosystem"] == "npm" && entry["advisories"] == 467)
    );

    // A missing database is an error that names the path.
    let missing = crscan(&[
        "db",
        "status",
        "--db",
        directory.path().join("none.db").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("none.db does not exist"));
}

#[test]
fn a_database_that_would_find_nothing_is_refused_unless_partial_is_allowed() {
    let directory = tempfile::tempdir().unwrap();
    let db = directory.path().join("crscan.db");
    let db_arg = db.to_str().unwrap();
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");

    // No feed at all: refused, nothing written.
    let refused = crscan(&["db", "build", "--from", readme, "--db", db_arg]);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("no advisories were loaded"), "{stderr}");
    assert!(stderr.contains("--allow-partial"), "{stderr}");
    assert!(!db.exists());

    // One feed that gives nothing beside a good one: refused, naming the feed.
    let good = Path::new(DATA).join("alpine-secdb/v3.4/main.yaml");
    let refused = crscan(&[
        "db",
        "build",
        "--from",
        good.to_str().unwrap(),
        readme,
        "--db",
        db_arg,
    ]);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("feed README.md"), "{stderr}");
    assert!(!db.exists());

    // --allow-partial builds it, and says what is missing.
    let partial = crscan(&[
        "db",
        "build",
        "--allow-partial",
        "--from",
        good.to_str().unwrap(),
        readme,
        "--db",
        db_arg,
    ]);
    let stderr = text(&partial.stderr);
    assert!(partial.status.success(), "{stderr}");
    assert!(stderr.contains("feed README.md"), "{stderr}");
    assert!(db.exists());
}
