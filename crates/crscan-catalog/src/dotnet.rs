//! Placeholder: the dotnet detector is being written.

use crscan_model::{FileView, Keep, OsRelease};

use crate::{Detected, Detector};

pub struct DotnetDetector;

impl Detector for DotnetDetector {
    fn name(&self) -> &'static str {
        "dotnet"
    }

    fn interest(&self, _path: &str) -> Keep {
        Keep::No
    }

    fn detect(&self, _view: &FileView, _os: Option<&OsRelease>, _out: &mut Detected) {}
}
