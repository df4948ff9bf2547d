//! Placeholder: the java detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct JavaDetector;

impl Detector for JavaDetector {
    fn name(&self) -> &'static str {
        "java"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
