//! Helpers shared by the end-to-end tests of the `crscan` binary: finding external
//! tools, running commands, starting `crscan serve` on a free port, the download cache
//! and the official CycloneDX 1.6 and SPDX 2.3 JSON schemas.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub mod garage;
pub mod images;
pub mod postgres;
pub mod server;

const SCHEMAS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crscan-report/tests/schemas"
);

/// Whether the external tools this test needs are here (and root, with `need_root`);
/// skips (or fails when `CRSCAN_REQUIRE_TOOLS=1`) with a message naming what is
/// missing.
pub fn tools_present(tools: &[&str], need_root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|tool| !on_path(tool))
        .map(|tool| (*tool).to_owned())
        .collect();
    if need_root && !is_root() {
        missing.push("root privileges".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("CRSCAN_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "CRSCAN_REQUIRE_TOOLS=1 but missing: {}",
        missing.join(", ")
    );
    eprintln!("skipping: missing {}", missing.join(", "));
    false
}

/// Whether `tool` is on `PATH` or in `/usr/sbin` or `/sbin` (where `debootstrap`
/// lives even when those are not on `PATH`).
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file())
}

pub fn is_root() -> bool {
    run(Command::new("id").arg("-u")).trim() == "0"
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Downloads and built trees kept between runs: `$CRSCAN_TEST_CACHE`, default
/// `~/.cache/crscan-test`.
pub fn cache_dir() -> PathBuf {
    let dir = match std::env::var_os("CRSCAN_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/crscan-test"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_schema(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(SCHEMAS).join(name)).unwrap()).unwrap()
}

/// Errors of a CycloneDX 1.6 document against the official schema; the two schemas it
/// references are registered under their ids so nothing is fetched.
pub fn cyclonedx_errors(document: &Value) -> Vec<String> {
    let mut options = jsonschema::options();
    options.should_validate_formats(false);
    options.with_draft(jsonschema::Draft::Draft7);
    for name in ["spdx.schema.json", "jsf-0.82.schema.json"] {
        let referenced = load_schema(name);
        let id = referenced["$id"].as_str().unwrap().to_owned();
        options.with_resource(id, jsonschema::Resource::from_contents(referenced).unwrap());
    }
    let validator = options.build(&load_schema("bom-1.6.schema.json")).unwrap();
    validator
        .iter_errors(document)
        .map(|error| format!("{error} at {}", error.instance_path))
        .collect()
}

/// Errors of an SPDX 2.3 JSON document against the official schema.
pub fn spdx_errors(document: &Value) -> Vec<String> {
    let mut options = jsonschema::options();
    options.should_validate_formats(false);
    options.with_draft(jsonschema::Draft::Draft201909);
    let validator = options.build(&load_schema("spdx-schema.json")).unwrap();
    validator
        .iter_errors(document)
        .map(|error| format!("{error} at {}", error.instance_path))
        .collect()
}

/// Spawns `crscan serve` (a command with every argument but `--listen`) on a port the
/// kernel picks, and returns the child once it listens, with that port. The server
/// prints its bound address on stdout (`http://` or, with TLS, `https://`); reading it
/// avoids racing other tests for a port.
pub fn spawn_serve(command: Command) -> (Child, u16) {
    let (child, _, port) = spawn_serve_announcing(command);
    (child, port)
}

/// [`spawn_serve`], also returning the scheme of the start line (`http`, `https`).
pub fn spawn_serve_announcing(mut command: Command) -> (Child, &'static str, u16) {
    let mut child = command
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            let address = line
                .strip_prefix("crscan serving on http://")
                .map(|address| ("http", address))
                .or_else(|| {
                    line.strip_prefix("crscan serving on https://")
                        .map(|address| ("https", address))
                });
            if let Some((scheme, address)) = address {
                let port = address
                    .rsplit(':')
                    .next()
                    .and_then(|port| port.parse::<u16>().ok());
                let _ = sender.send(port.map(|port| (scheme, port)));
                break;
            }
        }
        // Keep draining so the server never writes into a closed pipe.
        for _ in lines {}
    });
    match receiver.recv_timeout(Duration::from_secs(120)) {
        Ok(Some((scheme, port))) => (child, scheme, port),
        outcome => {
            let _ = child.kill();
            let status = child.wait();
            panic!("crscan serve did not announce its address ({outcome:?}); exit: {status:?}");
        }
    }
}

/// A test certificate authority and a server certificate it signed for `localhost`
/// and `127.0.0.1`, made with `openssl` in `dir`: returns (CA certificate, server
/// certificate, server key) paths.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca-key.pem");
    let ca = dir.join("ca.pem");
    let key = dir.join("server-key.pem");
    let request = dir.join("server.csr");
    let certificate = dir.join("server.pem");
    let extensions = dir.join("server.ext");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=crscan test CA"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&request));
    std::fs::write(
        &extensions,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(&request)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&extensions)
        .arg("-out")
        .arg(&certificate));
    (ca, certificate, key)
}
