//! Checks the codebase itself: every Rust source file opens with a `//!` doc comment
//! saying why it exists, and the pure crates stay free of I/O dependencies.
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

/// Crates that must not do I/O, and dependencies that would mean they do.
const PURE_CRATES: &[&str] = &[
    "crscan-version",
    "crscan-model",
    "crscan-catalog",
    "crscan-report",
];
const IO_DEPENDENCIES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "axum",
    "sqlx",
    "rusqlite",
    "redb",
    "tempfile",
    "crscan-image",
    "crscan-store",
    "crscan-blob",
];
const IO_CALLS: &[&str] = &[
    "std::fs",
    "std::net",
    "File::open",
    "std::env::var",
    "SystemTime::now",
];

#[test]
fn pure_crates_have_no_io() {
    for name in PURE_CRATES {
        let dir = workspace_root().join("crates").join(name);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let normal_dependencies = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or("")
            .split("\n[")
            .next()
            .unwrap_or("");
        for dependency in IO_DEPENDENCIES {
            let listed = normal_dependencies.lines().any(|line| {
                line.trim_start().starts_with(&format!("{dependency} "))
                    || line.trim_start().starts_with(&format!("{dependency}."))
                    || line.trim_start().starts_with(&format!("{dependency}="))
            });
            assert!(
                !listed,
                "{name} is a pure crate but depends on {dependency}"
            );
        }
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
