//! Placeholder: the dpkg detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct DpkgDetector;

impl Detector for DpkgDetector {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
