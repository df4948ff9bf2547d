//! Placeholder: the golang detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct GoBinaryDetector;

impl Detector for GoBinaryDetector {
    fn name(&self) -> &'static str {
        "golang"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
