//! Data-driven tests: the shared upstream version vectors, total-order properties of every
//! scheme, and OSV range boundaries taken from real advisories.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crscan_version::osv::{Event, Range, RangeKind, is_affected, lowest_fix_above};
use crscan_version::{Scheme, Version, check_vectors, compare};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn data(relative: &str) -> PathBuf {
    Path::new(DATA).join(relative)
}

/// The scheme of each shared vector file, by file stem.
fn scheme_of_file(stem: &str) -> Scheme {
    match stem {
        "dpkg" => Scheme::Dpkg,
        "apk" => Scheme::Apk,
        "rpm" => Scheme::Rpm,
        "pypi" => Scheme::Pep440,
        "semver" => Scheme::Semver,
        "go" => Scheme::Go,
        "maven" => Scheme::Maven,
        "rubygems" => Scheme::RubyGems,
        "nuget" => Scheme::NuGet,
        "packagist" => Scheme::Composer,
        other => panic!("no scheme for vector file {other}"),
    }
}

#[test]
fn every_shared_vector_file_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data("versions"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        10,
        "expected ten vector files, found {files:?}"
    );
    let mut summary = Vec::new();
    for file in &files {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let report = check_vectors(
            scheme_of_file(stem),
            &std::fs::read_to_string(file).unwrap(),
        );
        assert!(report.passed > 0, "{stem}: no vectors checked");
        for failure in report.failures.iter().take(20) {
            eprintln!("{stem}: {failure}");
        }
        summary.push((stem.to_owned(), report.passed, report.failed));
    }
    let failed: Vec<_> = summary
        .iter()
        .filter(|(_, _, failed)| *failed > 0)
        .collect();
    assert!(failed.is_empty(), "failures: {failed:?} (all: {summary:?})");
}

/// crscan's own vectors, one file per scheme under `tests/vectors/`, named like the
/// shared files: pairs decided in crscan's issues that the shared files do not hold.
#[test]
fn every_project_vector_file_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vector files in {}", dir.display());
    for file in &files {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let report = check_vectors(
            scheme_of_file(stem),
            &std::fs::read_to_string(file).unwrap(),
        );
        assert!(report.passed > 0, "{stem}: no vectors checked");
        assert!(
            report.failures.is_empty(),
            "{stem}: {} passed, failures: {:?}",
            report.passed,
            report.failures
        );
    }
}

/// Counts this thread's allocations, to show that comparing parsed versions allocates nothing.
mod counting_allocator {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
    // const-initialised thread-local, which needs no allocation itself.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(pointer, layout) }
        }

        unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(pointer, layout, size) }
        }
    }

    pub fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }
}

#[global_allocator]
static ALLOCATOR: counting_allocator::Counting = counting_allocator::Counting;

#[test]
fn comparing_parsed_versions_does_not_allocate() {
    for (scheme, file) in [
        (Scheme::Dpkg, "dpkg.txt"),
        (Scheme::Pep440, "pypi.txt"),
        (Scheme::Maven, "maven.txt"),
        (Scheme::Apk, "apk.txt"),
        (Scheme::Rpm, "rpm.txt"),
        (Scheme::Semver, "semver.txt"),
        (Scheme::Go, "go.txt"),
        (Scheme::RubyGems, "rubygems.txt"),
        (Scheme::NuGet, "nuget.txt"),
        (Scheme::Composer, "packagist.txt"),
    ] {
        let text = std::fs::read_to_string(data("versions").join(file)).unwrap();
        let pairs: Vec<(Version, Version)> = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (
                    Version::parse(scheme, fields[0]).unwrap(),
                    Version::parse(scheme, fields[2]).unwrap(),
                )
            })
            .collect();
        // Parsing allocates, which shows the counter sees this thread's allocations.
        let before_parse = counting_allocator::allocations();
        let reparsed = Version::parse(scheme, pairs[0].0.as_str()).unwrap();
        assert!(counting_allocator::allocations() > before_parse);
        drop(reparsed);
        let before = counting_allocator::allocations();
        let mut total = 0i64;
        for (a, b) in &pairs {
            total += a.cmp(b) as i64;
        }
        let after = counting_allocator::allocations();
        assert_eq!(
            after - before,
            0,
            "{scheme}: {} comparisons allocated (sum {total})",
            pairs.len()
        );
    }
}

#[test]
fn excluded_cases_behave_as_documented() {
    // Each case is decided in the crate documentation; these pin the decisions.
    let order = |scheme, a, b| compare(scheme, a, b).unwrap();
    assert_eq!(
        order(Scheme::Maven, "1.0.final-redhat", "1.0-sp1-redhat"),
        Ordering::Less
    );
    assert_eq!(
        order(Scheme::Maven, "7.4.3.20", "7.4.3.20-ga20"),
        Ordering::Equal
    );
    assert_eq!(order(Scheme::Maven, "1-1", "1-ga-1"), Ordering::Greater);
    assert_eq!(order(Scheme::Maven, "2-1", "2.0.0.a"), Ordering::Greater);
    assert_eq!(order(Scheme::Maven, "2.0.a", "2.0.0.a"), Ordering::Equal);
    assert_eq!(order(Scheme::Composer, "1.2.3.#", "1.2.3"), Ordering::Equal);
    assert_eq!(
        order(Scheme::Composer, "1.2.3.#", "1.2.3.#"),
        Ordering::Equal
    );
    assert_eq!(
        order(Scheme::Composer, "1.2.3.#", "1.2.3.1"),
        Ordering::Less
    );
    assert_eq!(
        order(
            Scheme::Composer,
            "999999999999999999999999999991",
            "999999999999999999999999999999"
        ),
        Ordering::Equal
    );
    assert!(Version::parse(Scheme::Pep440, "0.1-bulbasaur").is_err());
    assert!(Version::parse(Scheme::Pep440, "2013-01-21T20:33:09+0100").is_err());
    assert!(Version::parse(Scheme::RubyGems, "1beta").is_err());
    assert!(Version::parse(Scheme::Semver, "1.1.3.4.5").is_err());
    assert!(Version::parse(Scheme::Semver, "999999999999999999999999999991").is_err());
}

#[test]
fn a_wrong_vector_is_reported() {
    let report = check_vectors(
        Scheme::Dpkg,
        "# comment\n\n1.0 < 1.1\n1.0 > 1.1\nnonsense\n",
    );
    assert_eq!((report.passed, report.failed), (1, 2));
    assert!(report.failures[0].starts_with("line 4: 1.0 > 1.1"));
}

#[test]
fn ecosystem_names_map_to_schemes() {
    for (name, scheme) in [
        ("Debian:12", Scheme::Dpkg),
        ("Ubuntu:Pro:18.04:LTS", Scheme::Dpkg),
        ("Alpine:v3.19", Scheme::Apk),
        ("Wolfi", Scheme::Apk),
        ("Red Hat", Scheme::Rpm),
        ("Rocky Linux:9", Scheme::Rpm),
        ("PyPI", Scheme::Pep440),
        ("crates.io", Scheme::Semver),
        ("Hex", Scheme::Semver),
        ("Go", Scheme::Go),
        ("Packagist", Scheme::Composer),
        ("semver", Scheme::Semver),
    ] {
        assert_eq!(Scheme::from_ecosystem(name), Some(scheme), "{name}");
    }
    assert_eq!(Scheme::from_ecosystem("pypi"), None);
    assert_eq!(Scheme::from_ecosystem("Nonexistent"), None);
    // What a person types: any case.
    assert_eq!(Scheme::from_name_any_case("pypi"), Some(Scheme::Pep440));
    assert_eq!(Scheme::from_name_any_case("DEBIAN:12"), Some(Scheme::Dpkg));
    assert_eq!(Scheme::from_name_any_case("rocky linux"), Some(Scheme::Rpm));
    assert_eq!(Scheme::from_name_any_case("Nonexistent"), None);
    for (name, scheme) in crscan_version::ECOSYSTEMS {
        assert_eq!(Scheme::from_ecosystem(name), Some(scheme), "{name}");
    }
}

#[test]
fn go_accepts_versions_with_and_without_v() {
    let order = |a, b| compare(Scheme::Go, a, b).unwrap();
    assert_eq!(order("v1", "v1.0.0"), Ordering::Equal);
    assert_eq!(order("1.19.2", "v1.19.2"), Ordering::Equal);
    assert_eq!(order("1.21.0-0", "1.21.0"), Ordering::Less);
    assert_eq!(order("1.22.0-rc.1", "1.22.0"), Ordering::Less);
    assert_eq!(order("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
    assert!(Version::parse(Scheme::Go, "v01.0.0").is_err());
}

#[test]
fn invalid_input_is_an_error_naming_the_string() {
    for scheme in Scheme::ALL {
        let error = Version::parse(scheme, "").unwrap_err();
        assert_eq!(error.scheme(), scheme);
        assert_eq!(error.text(), "");
    }
    let error = Version::parse(Scheme::Dpkg, "a:1.0").unwrap_err();
    assert!(error.to_string().contains("\"a:1.0\""), "{error}");
}

mod ordering_properties {
    //! Generated versions: every scheme's order is total (antisymmetric, transitive, and
    //! consistent with equality).

    use super::*;
    use proptest::prelude::*;

    /// Version-like strings built from the characters the lenient schemes care about.
    fn free_form_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[0-9]{1,3}",
            Just(".".to_owned()),
            Just("-".to_owned()),
            Just("~".to_owned()),
            Just("+".to_owned()),
            Just("_".to_owned()),
            Just(":".to_owned()),
            Just("^".to_owned()),
            "(alpha|beta|rc|pre|p|dev|post|a|b|sp|ga|final|snapshot|r)[0-9]?",
            "[a-z]{1,2}",
        ];
        ("[0-9]{1,2}", proptest::collection::vec(piece, 0..6))
            .prop_map(|(head, pieces)| format!("{head}{}", pieces.concat()))
    }

    /// Strings that are mostly valid versions of `scheme`.
    fn version_text(scheme: Scheme) -> BoxedStrategy<String> {
        match scheme {
            Scheme::Semver => "v?[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-(alpha|beta|rc|[0-9]{1,2})(\\.(alpha|[0-9]{1,2})){0,2})?(\\+build)?".boxed(),
            Scheme::Go => "v?[0-9](\\.[1-9]?[0-9](\\.[1-9]?[0-9](-(pre|[1-9]|0)(\\.[a-z1-9]{1,3})?)?(\\+incompatible)?)?)?".boxed(),
            Scheme::Pep440 => "([1-9]!)?[0-9]{1,2}(\\.[0-9]{1,2}){0,3}((a|b|rc)[0-9])?(\\.post[0-9])?(\\.dev[0-9])?(\\+[a-z0-9]{1,3}(\\.[a-z0-9]{1,2})?)?".boxed(),
            Scheme::NuGet => "[0-9]{1,2}(\\.[0-9]{1,2}){0,3}(-[a-zA-Z0-9]{1,3}(\\.[a-zA-Z0-9]{1,3}){0,2})?".boxed(),
            Scheme::RubyGems => "[0-9]{1,2}(\\.[0-9a-z]{1,3}){0,3}(-[0-9a-z]{1,3})?".boxed(),
            _ => free_form_text().boxed(),
        }
    }

    fn parsed(scheme: Scheme) -> impl Strategy<Value = Version> {
        version_text(scheme).prop_filter_map("not a version of the scheme", move |text| {
            Version::parse(scheme, &text).ok()
        })
    }

    fn scheme() -> impl Strategy<Value = Scheme> {
        proptest::sample::select(Scheme::ALL.to_vec())
    }

    fn triple() -> impl Strategy<Value = (Version, Version, Version)> {
        scheme().prop_flat_map(|scheme| (parsed(scheme), parsed(scheme), parsed(scheme)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn order_is_total((a, b, c) in triple()) {
            prop_assert_eq!(a.cmp(&a), Ordering::Equal);
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse(), "antisymmetry: {:?} {:?}", a, b);
            prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
            if a <= b && b <= c {
                prop_assert!(a <= c, "transitivity: {:?} <= {:?} <= {:?}", a, b, c);
            }
            if a == b {
                prop_assert_eq!(a.cmp(&c), b.cmp(&c), "equal versions order alike: {:?} {:?} {:?}", a, b, c);
            }
        }

        #[test]
        fn sorting_agrees_with_pairwise_order(
            versions in scheme().prop_flat_map(|scheme| proptest::collection::vec(parsed(scheme), 2..12))
        ) {
            let mut sorted = versions.clone();
            sorted.sort();
            for pair in sorted.windows(2) {
                prop_assert!(pair[0] <= pair[1]);
            }
            for (i, x) in sorted.iter().enumerate() {
                for y in &sorted[i + 1..] {
                    prop_assert!(x <= y, "{:?} sorted before {:?}", x, y);
                }
            }
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,24}", index in 0..Scheme::ALL.len()) {
            let _ = Version::parse(Scheme::ALL[index], &text);
        }
    }
}

mod osv_ranges {
    //! Range boundaries taken from real OSV records in `shared/data/vulndb`.

    use super::*;
    use serde_json::Value;

    fn load_json(relative: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(data(relative)).unwrap()).unwrap()
    }

    /// The ranges of `record`'s affected entry for package `name`, converted by hand.
    fn ranges_of(record: &Value, name: &str) -> (Scheme, Vec<Range>, Vec<String>) {
        let affected = record["affected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|affected| affected["package"]["name"] == name)
            .unwrap();
        let ecosystem = affected["package"]["ecosystem"].as_str().unwrap();
        let scheme = Scheme::from_ecosystem(ecosystem).unwrap();
        let ranges = affected["ranges"]
            .as_array()
            .map(|ranges| ranges.iter().map(convert_range).collect())
            .unwrap_or_default();
        let versions = affected["versions"]
            .as_array()
            .map(|versions| {
                versions
                    .iter()
                    .map(|version| version.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (scheme, ranges, versions)
    }

    fn convert_range(range: &Value) -> Range {
        let kind = match range["type"].as_str().unwrap() {
            "ECOSYSTEM" => RangeKind::Ecosystem,
            "SEMVER" => RangeKind::Semver,
            _ => RangeKind::Git,
        };
        let events = range["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                let (key, value) = event.as_object().unwrap().iter().next().unwrap();
                let value = value.as_str().unwrap().to_owned();
                match key.as_str() {
                    "introduced" => Event::Introduced(value),
                    "fixed" => Event::Fixed(value),
                    "last_affected" => Event::LastAffected(value),
                    "limit" => Event::Limit(value),
                    other => panic!("unknown event {other}"),
                }
            })
            .collect();
        Range::new(kind, events)
    }

    fn affected(scheme: Scheme, version: &str, ranges: &[Range]) -> bool {
        is_affected(scheme, version, ranges, &[]).unwrap()
    }

    #[test]
    fn go_stdlib_several_intervals() {
        // GO-2022-0969: net/http, SEMVER events 0 / fixed 1.18.6 / introduced 1.19.0-0 / fixed 1.19.1.
        let record = load_json("vulndb/golang-vulndb/osv/GO-2022-0969.json");
        let (scheme, ranges, _) = ranges_of(&record, "stdlib");
        assert_eq!(scheme, Scheme::Go);
        assert!(affected(scheme, "1.0.0", &ranges));
        assert!(affected(scheme, "1.18.5", &ranges), "just below fixed");
        assert!(
            affected(scheme, "v1.18.6-rc.1", &ranges),
            "a pre-release of the fix"
        );
        assert!(!affected(scheme, "1.18.6", &ranges), "exactly fixed");
        assert!(!affected(scheme, "1.18.10", &ranges));
        assert!(
            affected(scheme, "1.19.0-rc.1", &ranges),
            "a release candidate above 1.19.0-0"
        );
        assert!(
            !affected(scheme, "1.18.99", &ranges),
            "below introduced 1.19.0-0"
        );
        assert!(affected(scheme, "1.19.0-0", &ranges), "exactly introduced");
        assert!(affected(scheme, "1.19.0", &ranges), "just below fixed");
        assert!(!affected(scheme, "1.19.1", &ranges), "exactly fixed");
        assert_eq!(
            lowest_fix_above(scheme, "1.18.2", &ranges).as_deref(),
            Some("1.18.6")
        );
        assert_eq!(
            lowest_fix_above(scheme, "1.19.0", &ranges).as_deref(),
            Some("1.19.1")
        );
        assert_eq!(lowest_fix_above(scheme, "1.19.1", &ranges), None);
    }

    #[test]
    fn go_pseudo_version_fix() {
        // GO-2022-0969: golang.org/x/net fixed at a pseudo-version.
        let record = load_json("vulndb/golang-vulndb/osv/GO-2022-0969.json");
        let (scheme, ranges, _) = ranges_of(&record, "golang.org/x/net");
        assert!(affected(
            scheme,
            "v0.0.0-20220906165145-aaaaaaaaaaaa",
            &ranges
        ));
        assert!(!affected(
            scheme,
            "v0.0.0-20220906165146-f3363e06e74c",
            &ranges
        ));
        assert!(!affected(scheme, "v0.1.0", &ranges));
    }

    #[test]
    fn rustsec_many_intervals() {
        // RUSTSEC-2020-0071 (time): introduced 0.0.0-0 / fixed 0.2.0, 0.2.1-0 / 0.2.1, ...,
        // 0.2.7-0 / 0.2.23.
        let record = load_json("vulndb/rustsec-advisory-db-osv/crates/RUSTSEC-2020-0071.json");
        let (scheme, ranges, _) = ranges_of(&record, "time");
        assert_eq!(scheme, Scheme::Semver);
        assert!(affected(scheme, "0.0.0-0", &ranges), "exactly introduced");
        assert!(affected(scheme, "0.1.43", &ranges));
        assert!(!affected(scheme, "0.2.0", &ranges), "exactly fixed");
        assert!(affected(scheme, "0.2.1-0", &ranges), "exactly introduced");
        assert!(!affected(scheme, "0.2.1", &ranges), "exactly fixed");
        assert!(affected(scheme, "0.2.22", &ranges), "just below fixed");
        assert!(!affected(scheme, "0.2.23", &ranges), "exactly fixed");
        assert!(!affected(scheme, "0.3.0", &ranges));
        assert_eq!(
            lowest_fix_above(scheme, "0.2.8", &ranges).as_deref(),
            Some("0.2.23")
        );
    }

    #[test]
    fn ghsa_last_affected() {
        // GHSA-29mw-wpgm-hmr9: lodash.trim, introduced 0, last_affected 4.5.1.
        let record = load_json(
            "vulndb/github-advisory-database-subset/advisories/github-reviewed/2022/01/GHSA-29mw-wpgm-hmr9/GHSA-29mw-wpgm-hmr9.json",
        );
        let (scheme, ranges, _) = ranges_of(&record, "lodash.trim");
        assert_eq!(scheme, Scheme::Semver);
        assert!(affected(scheme, "0.0.1", &ranges));
        assert!(affected(scheme, "4.5.1", &ranges), "exactly last_affected");
        assert!(
            !affected(scheme, "4.5.2-beta", &ranges),
            "just above last_affected"
        );
        assert!(!affected(scheme, "4.5.2", &ranges));
        assert_eq!(lowest_fix_above(scheme, "4.0.0", &ranges), None);
    }

    #[test]
    fn pypa_record_ranges_and_versions() {
        // PYSEC-2021-11: django-registration, introduced 0 / fixed 3.1.2.
        let text = std::fs::read_to_string(data(
            "vulndb/pypa-advisory-database/vulns/django-registration/PYSEC-2021-11.yaml",
        ))
        .unwrap();
        let record: Value = serde_norway::from_str(&text).unwrap();
        let (scheme, ranges, versions) = ranges_of(&record, "django-registration");
        assert_eq!(scheme, Scheme::Pep440);
        assert!(affected(scheme, "3.1.1", &ranges), "just below fixed");
        assert!(
            affected(scheme, "3.1.2rc1", &ranges),
            "a pre-release of the fix"
        );
        assert!(!affected(scheme, "3.1.2", &ranges), "exactly fixed");
        assert!(!affected(scheme, "3.1.2.0", &ranges), "equal to the fix");
        assert!(is_affected(scheme, "0.5", &[], &versions).unwrap());
        assert!(!is_affected(scheme, "3.1.2", &[], &versions).unwrap());
    }

    /// Every record's boundaries, evaluated range by range: each `introduced` and
    /// `last_affected` version is affected, each `fixed` version is not (unless the same range
    /// reintroduces it), and every version a PyPA record lists is inside its ranges.
    #[test]
    fn every_record_boundary() {
        let mut records = Vec::new();
        for folder in ["golang-vulndb/osv", "rustsec-advisory-db-osv/crates"] {
            for entry in std::fs::read_dir(data(&format!("vulndb/{folder}"))).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .extension()
                    .is_some_and(|extension| extension == "json")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    records.push((path, serde_json::from_str::<Value>(&text).unwrap()));
                }
            }
        }
        let mut folders = vec![data("vulndb/pypa-advisory-database/vulns")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path
                    .extension()
                    .is_some_and(|extension| extension == "yaml")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    records.push((path, serde_norway::from_str::<Value>(&text).unwrap()));
                }
            }
        }
        let (mut checked, mut unparsable, mut listed) = (0, 0, 0);
        let mut failures = Vec::new();
        for (path, record) in &records {
            for entry in record["affected"].as_array().into_iter().flatten() {
                let Some(scheme) = entry["package"]["ecosystem"]
                    .as_str()
                    .and_then(Scheme::from_ecosystem)
                else {
                    continue;
                };
                let ranges: Vec<Range> = entry["ranges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(convert_range)
                    .collect();
                for range in ranges.iter().filter(|range| well_formed(scheme, range)) {
                    let single = std::slice::from_ref(range);
                    for event in &range.events {
                        let (text, expected) = match event {
                            Event::Introduced(text) if text != "0" => (text, true),
                            Event::LastAffected(text) => (text, true),
                            Event::Fixed(text) => (text, false),
                            _ => continue,
                        };
                        match is_affected(scheme, text, single, &[]) {
                            Ok(got) if got == expected => checked += 1,
                            Ok(got) => {
                                failures.push(format!("{}: {text} affected={got}", path.display()))
                            }
                            Err(_) => unparsable += 1,
                        }
                    }
                }
                // With a GIT range, the list also holds versions derived from commits.
                let has_git = ranges.iter().any(|range| range.kind == RangeKind::Git);
                if scheme == Scheme::Pep440 && !ranges.is_empty() && !has_git {
                    for version in entry["versions"].as_array().into_iter().flatten() {
                        let version = version.as_str().unwrap();
                        if version.contains(|c: char| c.is_ascii_alphabetic()) {
                            // PyPA lists pre-releases of an `introduced` version (3.2a1 for
                            // `introduced: 3.2`) although PEP 440 orders them below it.
                            continue;
                        }
                        match is_affected(scheme, version, &ranges, &[]) {
                            Ok(true) => listed += 1,
                            Ok(false) => failures.push(format!(
                                "{}: listed {version} not in ranges",
                                path.display()
                            )),
                            Err(_) => unparsable += 1,
                        }
                    }
                }
            }
        }
        eprintln!(
            "{} records: {checked} boundaries and {listed} listed versions checked, {unparsable} unparsable",
            records.len()
        );
        assert!(
            failures.is_empty(),
            "{} failures, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(20)]
        );
        assert!(
            checked > 5000 && listed > 5000,
            "too few checks: {checked} {listed}"
        );
        assert!(
            unparsable * 100 < checked + listed,
            "too many unparsable: {unparsable}"
        );
    }

    /// A range whose events alternate `introduced` / closing event in strictly ascending
    /// order, so that every boundary has one unambiguous expected answer.
    fn well_formed(scheme: Scheme, range: &Range) -> bool {
        if range.kind == RangeKind::Git {
            return false;
        }
        let scheme = match (range.kind, scheme) {
            (RangeKind::Semver, Scheme::Go) => Scheme::Go,
            (RangeKind::Semver, _) => Scheme::Semver,
            _ => scheme,
        };
        let mut previous: Option<&str> = None;
        for (index, event) in range.events.iter().enumerate() {
            let (text, opens) = match event {
                Event::Introduced(text) => (text.as_str(), true),
                Event::Fixed(text) | Event::LastAffected(text) => (text.as_str(), false),
                Event::Limit(_) => return false,
            };
            if opens != (index % 2 == 0) {
                return false;
            }
            if let Some(previous) = previous
                && previous != "0"
                && compare(scheme, previous, text).ok() != Some(Ordering::Less)
            {
                return false;
            }
            previous = Some(text);
        }
        true
    }

    #[test]
    fn overlapping_intervals_are_a_union() {
        // PYSEC-2021-114 (wagtail) lists 2.11.6 as affected: it lies in [2.11, 2.11.7) even
        // though another interval of the same range is fixed at 2.11.6.
        let text = std::fs::read_to_string(data(
            "vulndb/pypa-advisory-database/vulns/wagtail/PYSEC-2021-114.yaml",
        ))
        .unwrap();
        let record: Value = serde_norway::from_str(&text).unwrap();
        let (scheme, ranges, versions) = ranges_of(&record, "wagtail");
        assert!(versions.contains(&"2.11.6".to_owned()));
        assert!(affected(scheme, "2.11.6", &ranges));
        assert!(affected(scheme, "2.10", &ranges));
        assert!(!affected(scheme, "2.11.7", &ranges));
        assert!(affected(scheme, "2.12.3", &ranges));
        assert!(!affected(scheme, "2.12.4", &ranges));
        // RUSTSEC-2022-0012 closes an interval at its own start: nothing is affected there.
        let record = load_json("vulndb/rustsec-advisory-db-osv/crates/RUSTSEC-2022-0012.json");
        let name = record["affected"][0]["package"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let (scheme, ranges, _) = ranges_of(&record, &name);
        assert!(!affected(scheme, "0.10.0", &ranges));
        assert!(affected(scheme, "0.9.1", &ranges));
    }

    #[test]
    fn limit_caps_a_range() {
        let ranges = vec![Range::new(
            RangeKind::Ecosystem,
            vec![Event::Introduced("0".into()), Event::Limit("2.0.0".into())],
        )];
        assert!(affected(Scheme::Semver, "1.9.9", &ranges));
        assert!(!affected(Scheme::Semver, "2.0.0", &ranges));
    }

    #[test]
    fn explicit_versions_git_and_unparsable_events() {
        let versions = vec!["1.0.0".to_owned()];
        assert!(is_affected(Scheme::Semver, "1.0.0", &[], &versions).unwrap());
        assert!(!is_affected(Scheme::Semver, "1.0.1", &[], &versions).unwrap());
        let broken = vec![Range::new(
            RangeKind::Ecosystem,
            vec![
                Event::Introduced("0".into()),
                Event::Fixed("not a version".into()),
            ],
        )];
        assert!(!affected(Scheme::Semver, "1.0.0", &broken));
        assert!(is_affected(Scheme::Semver, "junk", &broken, &[]).is_err());
        let git = vec![Range::new(
            RangeKind::Git,
            vec![Event::Introduced("0".into())],
        )];
        assert!(!affected(Scheme::Semver, "1.0.0", &git));
    }
}
