//! Serde support for [`LayerContents`], so that a scanner can cache what a layer
//! contributes under its digest and skip reading the blob next time. The wire
//! structs stay private; the format is whatever serde format the caller picks.

use std::sync::Arc;

use crscan_model::{Digest, ImageFile};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::layer::{LayerContents, PathSet};

#[derive(Serialize)]
struct LayerWireRef<'a> {
    digest: &'a Digest,
    diff_id: &'a Digest,
    files: Vec<FileWireRef<'a>>,
    symlinks: &'a [(String, String)],
    hardlinks: &'a [(String, String)],
    whiteouts: &'a [String],
    opaque_dirs: &'a [String],
    written: &'a [u64],
    directories: &'a [u64],
}

#[derive(Serialize)]
struct FileWireRef<'a> {
    path: &'a str,
    layer_digest: &'a Option<Digest>,
    mode: u32,
    contents: &'a [u8],
    truncated: bool,
}

#[derive(Deserialize)]
struct LayerWire {
    digest: Digest,
    diff_id: Digest,
    files: Vec<FileWire>,
    symlinks: Vec<(String, String)>,
    hardlinks: Vec<(String, String)>,
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
    written: Vec<u64>,
    directories: Vec<u64>,
}

#[derive(Deserialize)]
struct FileWire {
    path: String,
    layer_digest: Option<Digest>,
    mode: u32,
    contents: Vec<u8>,
    truncated: bool,
}

impl Serialize for LayerContents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        LayerWireRef {
            digest: &self.digest,
            diff_id: &self.diff_id,
            files: self
                .files
                .iter()
                .map(|file| FileWireRef {
                    path: &file.path,
                    layer_digest: &file.layer_digest,
                    mode: file.mode,
                    contents: &file.contents,
                    truncated: file.truncated,
                })
                .collect(),
            symlinks: &self.symlinks,
            hardlinks: &self.hardlinks,
            whiteouts: &self.whiteouts,
            opaque_dirs: &self.opaque_dirs,
            written: self.written.hashes(),
            directories: self.directories.hashes(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LayerContents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LayerContents, D::Error> {
        let wire = LayerWire::deserialize(deserializer)?;
        Ok(LayerContents {
            digest: wire.digest,
            diff_id: wire.diff_id,
            files: wire
                .files
                .into_iter()
                .map(|file| ImageFile {
                    path: file.path,
                    layer_digest: file.layer_digest,
                    mode: file.mode,
                    contents: Arc::from(file.contents),
                    truncated: file.truncated,
                    history: Vec::new(),
                })
                .collect(),
            symlinks: wire.symlinks,
            hardlinks: wire.hardlinks,
            whiteouts: wire.whiteouts,
            opaque_dirs: wire.opaque_dirs,
            written: PathSet::from_stored(wire.written),
            directories: PathSet::from_stored(wire.directories),
        })
    }
}
