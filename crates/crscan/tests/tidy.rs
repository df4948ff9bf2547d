//! Checks the codebase itself: every Rust source file opens with a `//!` doc comment
//! saying why it exists; each crate keeps the dependency invariants ARCHITECTURE.md
//! states, checked on the resolved graph (`cargo metadata`), transitively; and the
//! pure crates' code makes no I/O calls.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_has_a_module_doc() {
    let mut files = Vec::new();
    for crate_dir in std::fs::read_dir(workspace_root().join("crates")).unwrap() {
        let crate_dir = crate_dir.unwrap().path();
        rust_files(&crate_dir.join("src"), &mut files);
        rust_files(&crate_dir.join("tests"), &mut files);
        rust_files(&crate_dir.join("benches"), &mut files);
    }
    assert!(files.len() > 10, "found only {} source files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let first_code_line = text
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty() && !line.starts_with("#!["));
            !first_code_line.is_some_and(|line| line.starts_with("//!"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! module doc: {missing:#?}"
    );
}

/// What each crate must never depend on, directly or through another crate (its
/// normal dependencies, as `cargo metadata` resolves them): the architecture
/// invariants of ARCHITECTURE.md's code map that a dependency can break.
const NEVER_DEPENDS_ON: &[(&str, &[&str])] = &[
    // Pure crates: no I/O, no async, no other crscan crate below them.
    (
        "crscan-version",
        &[
            "crscan-model",
            "tokio",
            "sqlx",
            "rusqlite",
            "reqwest",
            "hyper",
        ],
    ),
    (
        "crscan-model",
        &["tokio", "sqlx", "rusqlite", "reqwest", "hyper", "tempfile"],
    ),
    (
        "crscan-catalog",
        &[
            "tokio",
            "sqlx",
            "rusqlite",
            "reqwest",
            "hyper",
            "tempfile",
            "crscan-store",
            "crscan-blob",
            "crscan-vulndb",
        ],
    ),
    (
        "crscan-report",
        &[
            "tokio",
            "sqlx",
            "rusqlite",
            "reqwest",
            "hyper",
            "tempfile",
            "crscan-vulndb",
            "crscan-store",
        ],
    ),
    // Readers of untrusted data open no sockets.
    ("crscan-image", &["tokio", "reqwest", "hyper", "sqlx"]),
    ("crscan-vulndb", &["tokio", "reqwest", "hyper"]),
    // Storage knows no images and serves nothing; its only HTTP is the S3 client
    // (object_store's reqwest and hyper), since #14.
    (
        "crscan-blob",
        &["crscan-image", "crscan-registry", "axum", "tonic"],
    ),
    (
        "crscan-store",
        &["axum", "hyper", "reqwest", "crscan-image"],
    ),
    // The distribution client reads no image contents and serves nothing.
    (
        "crscan-distribution",
        &[
            "crscan-image",
            "crscan-catalog",
            "crscan-vulndb",
            "crscan-scanner",
            "crscan-store",
            "crscan-registry",
            "crscan-api",
            "axum",
        ],
    ),
    // Metrics are counters in memory: no runtime, no storage, no HTTP.
    (
        "crscan-metrics",
        &["tokio", "sqlx", "reqwest", "hyper", "axum", "crscan-store"],
    ),
    // The registry and the scanner serve no HTTP (the only HTTP below them is
    // crscan-blob's S3 client, since #14).
    ("crscan-registry", &["axum", "tonic", "crscan-api"]),
    ("crscan-scanner", &["axum", "tonic", "crscan-api"]),
];

/// Calls that would mean a pure crate does I/O or reads the clock.
const PURE_CRATES: &[&str] = &[
    "crscan-version",
    "crscan-model",
    "crscan-catalog",
    "crscan-report",
];
const IO_CALLS: &[&str] = &[
    "std::fs",
    "std::net",
    "File::open",
    "std::env::var",
    "SystemTime::now",
];

/// The workspace's resolved dependency graph: package name to the names of its
/// normal (non-dev, non-build) dependencies.
fn normal_dependency_graph() -> std::collections::HashMap<String, Vec<String>> {
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: std::collections::HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["id"].as_str().unwrap(),
                package["name"].as_str().unwrap(),
            )
        })
        .collect();
    let mut graph = std::collections::HashMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let name = names[node["id"].as_str().unwrap()].to_owned();
        let dependencies: Vec<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dependency| {
                dependency["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|kind| kind["kind"].is_null())
            })
            .map(|dependency| names[dependency["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph
            .entry(name)
            .or_insert_with(Vec::new)
            .extend(dependencies);
    }
    graph
}

#[test]
fn crates_keep_their_dependency_invariants() {
    let graph = normal_dependency_graph();
    for (name, forbidden) in NEVER_DEPENDS_ON {
        // Every crate reachable from `name`, with the path that reaches it.
        let mut reached: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        let mut queue = vec![(name.to_string(), name.to_string())];
        while let Some((current, path)) = queue.pop() {
            for dependency in graph.get(&current).into_iter().flatten() {
                if !reached.contains_key(dependency) {
                    let path = format!("{path} -> {dependency}");
                    reached.insert(dependency.clone(), path.clone());
                    queue.push((dependency.clone(), path));
                }
            }
        }
        assert!(graph.contains_key(*name), "{name} is not in the workspace");
        for dependency in *forbidden {
            assert!(
                !reached.contains_key(*dependency),
                "{name} must not depend on {dependency}, but does: {}",
                reached[*dependency]
            );
        }
    }
}

#[test]
fn pure_crates_do_no_io() {
    for name in PURE_CRATES {
        let dir = workspace_root().join("crates").join(name);
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            // Unit tests may read fixtures; only the code above them must be pure.
            let is_test_module = file
                .file_name()
                .is_some_and(|name| name == "tests.rs" || name == "test_support.rs");
            if is_test_module {
                continue;
            }
            let full_text = std::fs::read_to_string(&file).unwrap();
            let text = full_text.split("#[cfg(test)]").next().unwrap_or("");
            for call in IO_CALLS {
                assert!(
                    !text.contains(call),
                    "{} is in a pure crate but uses {call}",
                    file.display()
                );
            }
        }
    }
}

/// Crates that reach an HTTP client only through `crscan-blob`'s S3 backend, and
/// must never use one themselves.
const NO_DIRECT_HTTP_CLIENT: &[&str] = &["crscan-registry", "crscan-scanner"];

#[test]
fn http_clients_stay_inside_the_blob_backend() {
    let graph = normal_dependency_graph();
    for name in NO_DIRECT_HTTP_CLIENT {
        let direct = graph.get(*name).unwrap();
        for client in ["reqwest", "hyper", "object_store"] {
            assert!(
                !direct.iter().any(|dependency| dependency == client),
                "{name} depends on {client} directly; HTTP belongs to crscan-blob's S3 backend"
            );
        }
    }
}
