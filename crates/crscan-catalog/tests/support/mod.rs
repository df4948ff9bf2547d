//! Helpers the integration tests share: where the catalogue fixtures live, the
//! expected lists below a folder of them, and an image file built from bytes.
// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crscan_model::ImageFile;

/// The folder of catalogue fixtures in the shared test data.
pub fn catalog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/catalog")
}

/// Adds every `*.expected.json` below `dir` to `out`.
pub fn expected_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            expected_files(&path, out);
        } else if path.to_string_lossy().ends_with(".expected.json") {
            out.push(path);
        }
    }
}

/// A file at `path` holding `contents`, written by no particular layer.
pub fn image_file(path: &str, contents: Vec<u8>) -> ImageFile {
    ImageFile {
        path: path.to_owned(),
        layer_digest: None,
        mode: 0o644,
        contents: Arc::from(contents),
        truncated: false,
        history: Vec::new(),
    }
}
