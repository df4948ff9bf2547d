//! Random and mutated input for every text format the language detectors parse:
//! whatever the bytes, a detector reports packages and diagnostics and never panics.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use crscan_catalog::dotnet::DotnetDetector;
use crscan_catalog::npm::NpmDetector;
use crscan_catalog::php::PhpDetector;
use crscan_catalog::python::PythonDetector;
use crscan_catalog::ruby::RubyDetector;
use crscan_catalog::{Detected, Detector};
use crscan_model::FileView;

mod support;

/// Every format, as (image path, a real sample to mutate relative to the catalog
/// fixtures folder, or an inline sample).
const FORMATS: &[(&str, &str)] = &[
    (
        "/app/package-lock.json",
        "npm/trivy/package-lock/package-lock_v3_with_workspace.json",
    ),
    (
        "/app/package-lock.json",
        "npm/osv-scalibr/package-lock/commits.v1.json",
    ),
    ("/app/yarn.lock", "npm/trivy/yarn-lock/yarn_happy.lock"),
    ("/app/yarn.lock", "npm/trivy/yarn-lock/yarn_v2_happy.lock"),
    (
        "/app/pnpm-lock.yaml",
        "npm/trivy/pnpm-lock/pnpm-lock_v9.yaml",
    ),
    (
        "/app/pnpm-lock.yaml",
        "npm/osv-scalibr/pnpm-lock/exotic.yaml",
    ),
    (
        "/app/node_modules/x/package.json",
        "inline:{\"name\":\"x\",\"version\":\"1.0.0\"}",
    ),
    (
        "/app/Gemfile.lock",
        "rubygems/osv-scalibr/has-local-gem.lock",
    ),
    (
        "/usr/local/bundle/specifications/rack-2.2.3.gemspec",
        "inline:Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\nend\n",
    ),
    ("/app/composer.lock", "composer/trivy/composer_happy.lock"),
    (
        "/app/vendor/composer/installed.json",
        "inline:{\"packages\":[{\"name\":\"psr/log\",\"version\":\"1.0.0\"}],\"dev-package-names\":[]}",
    ),
    (
        "/app/a.deps.json",
        "inline:{\"libraries\":{\"A/1.0\":{\"type\":\"package\"}}}",
    ),
    (
        "/app/packages.lock.json",
        "inline:{\"dependencies\":{\"net8.0\":{\"A\":{\"type\":\"Direct\",\"resolved\":\"1.0\"}}}}",
    ),
    (
        "/usr/lib/python3/site-packages/a-1.dist-info/METADATA",
        "pypi/trivy/distlib-0.3.1.METADATA",
    ),
    (
        "/usr/lib/python3/site-packages/a-1.egg-info",
        "pypi/trivy/distlib-0.3.1-py3.9.egg-info",
    ),
    (
        "/usr/lib/python3/site-packages/a-1.whl",
        "pypi/osv-scalibr/monotonic-1.6-py2.py3-none-any.whl",
    ),
    (
        "/usr/lib/python3/site-packages/a-1.egg",
        "pypi/osv-scalibr/monotonic-1.6-py3.10.egg",
    ),
];

fn sample(source: &str) -> Vec<u8> {
    if let Some(inline) = source.strip_prefix("inline:") {
        return inline.as_bytes().to_vec();
    }
    let path = support::catalog_dir().join(source);
    std::fs::read(path).unwrap()
}

fn detectors() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(PythonDetector),
        Box::new(NpmDetector),
        Box::new(RubyDetector),
        Box::new(PhpDetector),
        Box::new(DotnetDetector),
    ]
}

/// Runs every detector over one file at `path`; returns how many packages it found.
fn run(path: &str, contents: Vec<u8>) -> usize {
    let mut view = FileView::new();
    view.insert(support::image_file(path, contents));
    let mut out = Detected::default();
    for detector in detectors() {
        detector.detect(&view, None, &mut out);
    }
    out.packages.len()
}

/// One edit of a sample: overwrite, insert or delete bytes at a position, or cut.
#[derive(Debug, Clone)]
enum Edit {
    Overwrite(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Overwrite(at, byte)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'"'),
                    Just(b':'),
                    Just(b'{'),
                    Just(b'['),
                    Just(b'\n'),
                    Just(b' '),
                    Just(b'@'),
                    Just(b'('),
                    any::<u8>()
                ],
                1..8
            )
        )
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Delete(at, len)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Overwrite(at, byte) => {
                if !bytes.is_empty() {
                    bytes[at % len] = *byte;
                }
            }
            Edit::Insert(at, new) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(at, count) => {
                let at = at % len;
                let end = (at + count).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(index in 0..FORMATS.len(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        run(FORMATS[index].0, bytes);
    }

    #[test]
    fn mutated_samples_never_panic(index in 0..FORMATS.len(), edits in prop::collection::vec(edit(), 1..6)) {
        let (path, source) = FORMATS[index];
        run(path, apply(sample(source), &edits));
    }
}

#[test]
fn unmutated_samples_give_packages() {
    for (path, source) in FORMATS {
        assert!(run(path, sample(source)) > 0, "{path} from {source}");
    }
}
