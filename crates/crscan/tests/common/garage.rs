//! A real Garage (S3-compatible object storage) for tests: a one-node cluster on
//! loopback in a temporary directory (`replication_factor = 1`, free ports), its
//! layout assigned and applied, one bucket and one key allowed on it.
//!
//! The binary is `$CRSCAN_GARAGE`, else `garage` on `PATH`, else the one
//! `scripts/install-garage.sh` caches in `~/.cache/crscan-tools/garage/bin`. Missing,
//! the test is skipped, or fails under `CRSCAN_REQUIRE_TOOLS=1`. Self-contained, so
//! `crscan-blob`'s conformance tests include it too.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running one-node Garage, killed on drop.
pub struct Garage {
    binary: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

/// The Garage binary, or `None` (after the skip message) when there is none.
pub fn garage_binary() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CRSCAN_GARAGE").map(PathBuf::from),
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("garage"))
                .find(|path| path.is_file())
        }),
        std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/crscan-tools/garage/bin/garage")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|path| path.is_file()) {
        return Some(found);
    }
    let required = std::env::var("CRSCAN_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "CRSCAN_REQUIRE_TOOLS=1 but missing: garage (run scripts/install-garage.sh)"
    );
    eprintln!("skipping: missing garage (run scripts/install-garage.sh)");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hex_secret() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Garage {
    /// Starts Garage with bucket `bucket`; `None` when the binary is missing and tools
    /// are not required.
    pub fn start(bucket: &str) -> Option<Garage> {
        let binary = garage_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let rpc = free_port();
        let s3 = free_port();
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = hex_secret(),
            ),
        )
        .unwrap();
        let mut garage = Garage {
            binary,
            child: None,
            dir,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            region: "garage".to_owned(),
            bucket: bucket.to_owned(),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.resume();
        let node = garage.cli_retrying(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_owned();
        garage.cli_retrying(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli_retrying(&["layout", "apply", "--version", "1"]);
        garage.cli_retrying(&["bucket", "create", bucket]);
        let key = garage.cli_retrying(&["key", "create", "crscan-test"]);
        let field = |label: &str| {
            key.lines()
                .find_map(|line| line.trim().strip_prefix(label))
                .map(|value| value.trim().to_owned())
                .unwrap_or_else(|| panic!("no {label:?} in garage key create output: {key}"))
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        garage.cli_retrying(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            bucket,
            "--key",
            "crscan-test",
        ]);
        Some(garage)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("garage.log")
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Runs a `garage` CLI command against this node, retrying while the node is
    /// still starting (up to 60 s); returns stdout.
    pub fn cli_retrying(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = Command::new(&self.binary)
                .arg("-c")
                .arg(&self.config)
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {}: {}{}\nlog: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the server (its data stays), as an outage.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until it answers.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.cli_retrying(&["status"]);
        // The S3 port answers (any HTTP status) once the server is up.
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = self.endpoint.trim_start_matches("http://").to_owned();
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "garage S3 port never opened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The AWS environment that points a client at this Garage.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.pause();
    }
}
