//! Placeholder: the python detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct PythonDetector;

impl Detector for PythonDetector {
    fn name(&self) -> &'static str {
        "python"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
