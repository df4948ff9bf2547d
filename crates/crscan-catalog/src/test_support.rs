//! Helpers the detectors' unit tests share: an image file built from bytes, a view
//! holding some files, one detector run over them, and the sorted (name, version)
//! pairs it found.

use std::sync::Arc;

use crscan_model::{FileView, ImageFile, OsRelease};

use crate::{Detected, Detector};

/// A file at `path` holding `contents`, written by no particular layer.
pub(crate) fn image_file(path: &str, contents: impl AsRef<[u8]>) -> ImageFile {
    ImageFile {
        path: path.to_owned(),
        layer_digest: None,
        mode: 0o644,
        contents: Arc::from(contents.as_ref()),
        truncated: false,
        history: Vec::new(),
    }
}

/// A view holding `files`.
pub(crate) fn view_of(files: impl IntoIterator<Item = ImageFile>) -> FileView {
    let mut view = FileView::new();
    for file in files {
        view.insert(file);
    }
    view
}

/// What `detector` finds in a view holding `files`.
pub(crate) fn detect(
    detector: &dyn Detector,
    files: impl IntoIterator<Item = ImageFile>,
    os: Option<&OsRelease>,
) -> Detected {
    let mut out = Detected::default();
    detector.detect(&view_of(files), os, &mut out);
    out
}

/// The (name, version) of every package found, sorted.
pub(crate) fn pairs(out: &Detected) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = out
        .packages
        .iter()
        .map(|package| (package.name.clone(), package.version.clone()))
        .collect();
    pairs.sort();
    pairs
}
