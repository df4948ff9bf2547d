//! Placeholder: the npm detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct NpmDetector;

impl Detector for NpmDetector {
    fn name(&self) -> &'static str {
        "npm"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
