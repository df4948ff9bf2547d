//! Placeholder: the rust detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct RustDetector;

impl Detector for RustDetector {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
