//! RPM distributions end to end: an AlmaLinux 9 image whose rpm database is real,
//! matched against the real AlmaLinux OSV advisories in `shared/data/vulndb`.
//!
//! No AlmaLinux image can be downloaded here, so the test builds one the way the
//! distribution's own tools would leave it: `rpmbuild` makes tiny packages carrying
//! real AlmaLinux names, epochs, versions, releases, source RPMs and vendor (their
//! payload is empty), `rpm --root … --define '_db_backend sqlite' -i --justdb
//! --nodeps` writes them into a SQLite rpm database as on AlmaLinux 9, and `umoci`
//! packs two layers: the first with an AlmaLinux 9.2 os-release and 52 packages from 37 source RPMs (a
//! few with epochs, a few at versions past every fix), the second updating openssl.
//!
//! The expected findings are derived independently of crscan, by a Python script
//! that reads the final image's rpm database with `rpm -qa` and the advisories as
//! JSON, and compares versions with librpm's own `rpm.labelCompare` (Debian's
//! python3-rpm): one finding per CVE named by a matching `ALSA` per source RPM, rated
//! by the most severe summary prefix (`Important:` → HIGH), fixed by the lowest fix
//! above the installed version. `crscan scan` must give exactly those, and the API
//! of `crscan serve` the same list.
//!
//! Skips with a message when `rpmbuild`, `rpm`, `umoci`, `skopeo`, `curl` or
//! Debian's `/usr/bin/python3` with the `rpm` module is missing, unless
//! `CRSCAN_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::run;

const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const ALMALINUX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/vulndb/almalinux-osv"
);
/// Debian's interpreter, where python3-rpm is installed (not a pyenv shim).
const PYTHON: &str = "/usr/bin/python3";

/// One source RPM: its name, epoch, version-release, and the binary packages built
/// from it (name, and a version-release when it differs from the source's, as nspr's
/// does in nss).
struct Source {
    name: &'static str,
    epoch: Option<u32>,
    version: &'static str,
    release: &'static str,
    binaries: &'static [(&'static str, Option<(&'static str, &'static str)>)],
}

const fn source(
    name: &'static str,
    epoch: Option<u32>,
    version: &'static str,
    release: &'static str,
    binaries: &'static [(&'static str, Option<(&'static str, &'static str)>)],
) -> Source {
    Source {
        name,
        epoch,
        version,
        release,
        binaries,
    }
}

/// AlmaLinux 9.2 packages, most as released with 9.2 (May 2023); zlib, less, xz,
/// bash and libeconf are at or past every fix the advisories list.
const FIRST_LAYER: &[Source] = &[
    source(
        "openssl",
        Some(1),
        "3.0.7",
        "6.el9_2",
        &[("openssl", None), ("openssl-libs", None)],
    ),
    source(
        "glibc",
        None,
        "2.34",
        "60.el9",
        &[
            ("glibc", None),
            ("glibc-common", None),
            ("glibc-minimal-langpack", None),
        ],
    ),
    source(
        "curl",
        None,
        "7.76.1",
        "23.el9",
        &[("curl-minimal", None), ("libcurl-minimal", None)],
    ),
    source(
        "systemd",
        None,
        "252",
        "14.el9_2",
        &[
            ("systemd", None),
            ("systemd-libs", None),
            ("systemd-pam", None),
        ],
    ),
    source(
        "python3.9",
        None,
        "3.9.16",
        "1.el9",
        &[("python3", None), ("python3-libs", None)],
    ),
    source(
        "python-setuptools",
        None,
        "53.0.0",
        "12.el9",
        &[("python3-setuptools-wheel", None)],
    ),
    source(
        "nss",
        None,
        "3.79.0",
        "17.el9_1",
        &[
            ("nss", None),
            ("nss-util", None),
            ("nspr", Some(("4.34.0", "17.el9_1"))),
        ],
    ),
    source("krb5", None, "1.20.1", "8.el9", &[("krb5-libs", None)]),
    source("libxml2", None, "2.9.13", "3.el9_1", &[("libxml2", None)]),
    source("expat", None, "2.5.0", "1.el9", &[("expat", None)]),
    source(
        "sqlite",
        None,
        "3.34.1",
        "6.el9_1",
        &[("sqlite-libs", None)],
    ),
    source("zlib", None, "1.2.11", "40.el9", &[("zlib", None)]),
    source("bzip2", None, "1.0.8", "8.el9", &[("bzip2-libs", None)]),
    source("xz", None, "5.2.5", "8.el9_0", &[("xz-libs", None)]),
    source("libtasn1", None, "4.16.0", "8.el9_1", &[("libtasn1", None)]),
    source("gnutls", None, "3.7.6", "20.el9_2", &[("gnutls", None)]),
    source(
        "ncurses",
        None,
        "6.2",
        "8.20210508.el9",
        &[("ncurses-base", None), ("ncurses-libs", None)],
    ),
    source("bash", None, "5.1.8", "6.el9_1", &[("bash", None)]),
    source("tar", Some(2), "1.34", "6.el9_1", &[("tar", None)]),
    source(
        "libssh",
        None,
        "0.10.4",
        "8.el9",
        &[("libssh", None), ("libssh-config", None)],
    ),
    source(
        "rpm",
        None,
        "4.16.1.3",
        "22.el9",
        &[("rpm", None), ("rpm-libs", None)],
    ),
    source(
        "shadow-utils",
        Some(2),
        "4.9",
        "6.el9",
        &[("shadow-utils", None)],
    ),
    source(
        "libgcrypt",
        None,
        "1.10.0",
        "10.el9_2",
        &[("libgcrypt", None)],
    ),
    source("less", None, "590", "4.el9_4", &[("less", None)]),
    source(
        "vim",
        Some(2),
        "8.2.2637",
        "20.el9_1",
        &[("vim-minimal", None)],
    ),
    source(
        "libarchive",
        None,
        "3.5.3",
        "4.el9",
        &[("libarchive", None)],
    ),
    source(
        "grub2",
        Some(1),
        "2.06",
        "61.el9.alma",
        &[("grub2-common", None)],
    ),
    source("nghttp2", None, "1.43.0", "5.el9", &[("libnghttp2", None)]),
    source("c-ares", None, "1.17.1", "5.el9", &[("c-ares", None)]),
    source("file", None, "5.39", "12.el9", &[("file-libs", None)]),
    source("gmp", Some(1), "6.2.0", "10.el9", &[("gmp", None)]),
    source(
        "util-linux",
        None,
        "2.37.4",
        "11.el9_2",
        &[("libuuid", None), ("libblkid", None), ("util-linux", None)],
    ),
    source("libeconf", None, "0.4.1", "3.el9_2", &[("libeconf", None)]),
    source(
        "gcc",
        None,
        "11.3.1",
        "4.3.el9.alma",
        &[("libgcc", None), ("libstdc++", None)],
    ),
    source("pcre2", None, "10.40", "2.el9", &[("pcre2", None)]),
    // Its advisories also list AlmaLinux 8 builds (`.el8`, lower than `.el9`): only
    // the AlmaLinux 9 entries may match.
    source(
        "java-17-openjdk",
        Some(1),
        "17.0.7.0.7",
        "1.el9",
        &[("java-17-openjdk-headless", None)],
    ),
    source("tzdata", None, "2023c", "1.el9", &[("tzdata", None)]),
];

/// The second layer updates openssl to a later AlmaLinux 9.2 build.
const SECOND_LAYER: &[Source] = &[source(
    "openssl",
    Some(1),
    "3.0.7",
    "16.el9_2",
    &[("openssl", None), ("openssl-libs", None)],
)];

const OS_RELEASE: &str = "NAME=\"AlmaLinux\"\nVERSION=\"9.2 (Turquoise Kodkod)\"\nID=\"almalinux\"\n\
ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.2\"\nPLATFORM_ID=\"platform:el9\"\n\
PRETTY_NAME=\"AlmaLinux 9.2 (Turquoise Kodkod)\"\nANSI_COLOR=\"0;34\"\n\
CPE_NAME=\"cpe:/o:almalinux:almalinux:9::baseos\"\n";

/// The independent derivation: installed packages from `rpm -qa`, advisories as
/// JSON, versions compared by librpm. Prints a JSON list of
/// `[source, id, severity, fixed_by]`.
const DERIVE: &str = r#"
import glob, json, subprocess, sys, functools
import rpm

root, advisories = sys.argv[1], sys.argv[2]
listing = subprocess.run(
    ["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite",
     "-qa", "--qf", "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{SOURCERPM}\n"],
    check=True, capture_output=True, text=True).stdout
installed = []
for line in listing.splitlines():
    name, epoch, version, release, srpm = line.split()
    source = srpm[:-len(".src.rpm")].rsplit("-", 2)[0]
    installed.append((name, (epoch, version, release), source))

def evr(text):
    epoch, _, rest = text.rpartition(":")
    version, _, release = rest.rpartition("-")
    return (epoch or "0", version, release)

def text(e):
    return ("%s:" % e[0] if e[0] != "0" else "") + e[1] + "-" + e[2]

levels = {"Critical": 0, "Important": 1, "Moderate": 2, "Low": 3}
names = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
records, seen = [], set()
for path in sorted(glob.glob(advisories + "/advisories/*/*.json")):
    record = json.load(open(path))
    if record["id"] in seen or not record["id"].startswith("ALSA-"):
        continue
    seen.add(record["id"])
    records.append(record)

findings = {}
for name, installed_evr, source in installed:
    for record in records:
        prefix = record.get("summary", "").split(":")[0]
        for affected in record["affected"]:
            package = affected["package"]
            if package["ecosystem"] != "AlmaLinux:9" or package["name"] != name:
                continue
            for fixed in [e["fixed"] for r in affected["ranges"] for e in r["events"] if "fixed" in e]:
                if ".module" in fixed:
                    continue
                if rpm.labelCompare(installed_evr, evr(fixed)) >= 0:
                    continue
                for flaw in record.get("related") or [record["id"]]:
                    key = (source, flaw)
                    level, fix = findings.get(key, (None, None))
                    if prefix in levels and (level is None or levels[prefix] < level):
                        level = levels[prefix]
                    if fix is None or rpm.labelCompare(evr(fixed), evr(fix)) < 0:
                        fix = fixed
                    findings[key] = (level, fix)

out = [[s, f, names[l] if l is not None else "UNDEFINED", fix] for (s, f), (l, fix) in sorted(findings.items())]
json.dump(out, sys.stdout)
"#;

fn tools_present() -> bool {
    if !common::tools_present(&["rpmbuild", "rpm", "umoci", "skopeo", "curl"], false) {
        return false;
    }
    let has_binding = Command::new(PYTHON)
        .args(["-c", "import rpm"])
        .output()
        .is_ok_and(|output| output.status.success());
    common::tools_present(if has_binding { &[] } else { &["python3-rpm"] }, false)
}

/// Builds the binary rpms of each source with `rpmbuild` into `out`; returns their
/// paths.
fn build_packages(work: &Path, sources: &[Source]) -> Vec<PathBuf> {
    std::fs::create_dir_all(work).unwrap();
    let top = work.join("rpmbuild");
    let mut built = Vec::new();
    for source in sources {
        let mut spec = format!(
            "Name: {}\nVersion: {}\nRelease: {}\nSummary: {} as AlmaLinux ships it, without files\n\
             License: test\nVendor: AlmaLinux\nPackager: AlmaLinux Packaging Team <packager@almalinux.org>\n\
             %global debug_package %{{nil}}\n",
            source.name, source.version, source.release, source.name
        );
        if let Some(epoch) = source.epoch {
            spec.push_str(&format!("Epoch: {epoch}\n"));
        }
        spec.push_str("%description\nA test package.\n");
        let mut files = String::new();
        for (binary, own_version) in source.binaries {
            if *binary == source.name {
                files.push_str("%files\n");
                continue;
            }
            spec.push_str(&format!("%package -n {binary}\nSummary: {binary}\n"));
            if let Some((version, release)) = own_version {
                spec.push_str(&format!("Version: {version}\nRelease: {release}\n"));
            }
            spec.push_str(&format!("%description -n {binary}\nA test package.\n"));
            files.push_str(&format!("%files -n {binary}\n"));
        }
        spec.push_str(&files);
        let spec_path = work.join(format!("{}.spec", source.name));
        std::fs::write(&spec_path, spec).unwrap();
        let before: Vec<PathBuf> = rpms_under(&top);
        run(Command::new("rpmbuild")
            .args(["-bb", "--quiet", "--target", "x86_64", "--define"])
            .arg(format!("_topdir {}", top.display()))
            .arg(&spec_path));
        built.extend(
            rpms_under(&top)
                .into_iter()
                .filter(|rpm| !before.contains(rpm)),
        );
    }
    built
}

fn rpms_under(top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(arches) = std::fs::read_dir(top.join("RPMS")) else {
        return out;
    };
    for arch in arches {
        for rpm in std::fs::read_dir(arch.unwrap().path()).unwrap() {
            out.push(rpm.unwrap().path());
        }
    }
    out.sort();
    out
}

fn rpm_into(root: &Path, mode: &str, packages: &[PathBuf]) {
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args([mode, "--justdb", "--nodeps", "--ignorearch", "--ignoreos"])
        .args(packages));
}

/// Builds the two-layer image as `work/layout:9.2`, and unpacks its final root
/// filesystem to `work/final/rootfs`.
fn build_image(work: &Path) -> PathBuf {
    let first = build_packages(&work.join("first"), FIRST_LAYER);
    let second = build_packages(&work.join("second"), SECOND_LAYER);
    let layout = work.join("layout");
    let image = format!("{}:9.2", layout.display());
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    for (index, packages) in [first, second].iter().enumerate() {
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle).unwrap();
        }
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        if index == 0 {
            std::fs::create_dir_all(rootfs.join("etc")).unwrap();
            std::fs::write(rootfs.join("etc/os-release"), OS_RELEASE).unwrap();
            rpm_into(&rootfs, "-i", packages);
        } else {
            rpm_into(&rootfs, "-U", packages);
        }
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
    }
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(work.join("final")));
    layout
}

/// `[source, id, severity, fixed_by]` rows, sorted.
fn rows(findings: impl Iterator<Item = (String, String, String, String)>) -> Vec<[String; 4]> {
    let mut out: Vec<[String; 4]> = findings.map(|(a, b, c, d)| [a, b, c, d]).collect();
    out.sort();
    out
}

#[test]
fn almalinux_image_findings_equal_the_advisories_by_librpm() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = build_image(dir.path());
    let root = dir.path().join("final/rootfs");
    // `CRSCAN_RPM_IMAGE_OUT=DIR` keeps a copy of the image, for timing scans of it.
    if let Some(out) = std::env::var_os("CRSCAN_RPM_IMAGE_OUT") {
        run(Command::new("cp").arg("-r").arg(&layout).arg(out));
    }

    let data_dir = dir.path().join("data");
    let db = data_dir.join("vulndb/crscan.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    run(Command::new(CRSCAN)
        .args(["db", "build", "--from", ALMALINUX, "--db"])
        .arg(&db)
        .env_remove("CRSCAN_DB"));

    let expected: Vec<Vec<Option<String>>> = serde_json::from_str(&run(Command::new(PYTHON)
        .args(["-c", DERIVE])
        .arg(&root)
        .arg(ALMALINUX)))
    .unwrap();
    let expected = rows(expected.into_iter().map(|row| {
        let text = |index: usize| row[index].clone().unwrap_or_default();
        (text(0), text(1), text(2), text(3))
    }));
    assert!(
        expected.len() > 100,
        "too few expected findings: {expected:?}"
    );

    let image = format!("oci:{}:9.2", layout.display());
    let started = Instant::now();
    let report: Value = serde_json::from_str(&run(Command::new(CRSCAN)
        .args(["scan", "--format", "json", "--db"])
        .arg(&db)
        .arg(&image)
        .env_remove("CRSCAN_DB")))
    .unwrap();
    eprintln!(
        "crscan scan of the AlmaLinux image: {} ms",
        started.elapsed().as_millis()
    );
    let findings = report["findings"].as_array().unwrap();
    eprintln!(
        "{} findings, {} derived by librpm",
        findings.len(),
        expected.len()
    );
    let scanned = rows(findings.iter().map(|finding| {
        let text = |name: &str| finding[name].as_str().unwrap_or_default().to_owned();
        (
            text("package_name"),
            text("id"),
            text("severity"),
            text("fixed_by"),
        )
    }));
    let missing: Vec<_> = expected
        .iter()
        .filter(|row| !scanned.contains(row))
        .collect();
    let extra: Vec<_> = scanned
        .iter()
        .filter(|row| !expected.contains(row))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );

    // Details the rows do not show: the severity says it came from AlmaLinux, the
    // binary packages are the locations of their source's finding, the installed
    // epoch is kept, and openssl is compared at the second layer's version.
    let nss = findings
        .iter()
        .find(|finding| finding["package_name"] == "nss")
        .unwrap();
    assert_eq!(
        nss["binary_packages"],
        json!(["nspr", "nss", "nss-util"]),
        "{nss}"
    );
    assert_eq!(nss["installed_version"], "3.79.0-17.el9_1");
    assert_eq!(nss["severity_source"]["kind"], "distribution");
    assert_eq!(nss["severity_source"]["distribution"], "almalinux");
    let tar = findings
        .iter()
        .find(|finding| finding["package_name"] == "tar")
        .unwrap();
    assert_eq!(tar["installed_version"], "2:1.34-6.el9_1");
    assert!(
        findings
            .iter()
            .filter(|finding| finding["package_name"] == "openssl")
            .all(|finding| finding["installed_version"] == "1:3.0.7-16.el9_2")
    );
    for package in ["zlib", "less", "xz", "bash", "libeconf"] {
        assert!(
            findings
                .iter()
                .all(|finding| finding["package_name"] != package),
            "{package} is past every fix"
        );
    }

    // The API of `crscan serve` lists the same findings.
    let api = api_findings(&data_dir, &layout);
    assert_eq!(api, scanned);
}

/// Pushes the image to a `crscan serve` using the same database, scans it through
/// the API and lists its vulnerabilities as `[package, id, severity, fixed_by]`.
fn api_findings(data_dir: &Path, layout: &Path) -> Vec<[String; 4]> {
    let log = data_dir.join("serve.log");
    let mut command = Command::new(CRSCAN);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CRSCAN_CONFIG")
        .env_remove("CRSCAN_TOKENS")
        .env_remove("CRSCAN_DB")
        .env_remove("CRSCAN_STORE")
        .env("CRSCAN_DB_AUTO_UPDATE", "0")
        .stderr(std::fs::File::create(&log).unwrap());
    let (mut child, port) = common::spawn_serve(command);
    let url = format!("http://127.0.0.1:{port}");
    let call = |method: &str, path: &str, body: Option<&Value>| -> Value {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-g", "--fail-with-body", "-X", method])
            .arg(format!("{url}{path}"));
        if let Some(body) = body {
            command.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body.to_string(),
            ]);
        }
        serde_json::from_str(&run(&mut command)).unwrap()
    };
    let digest_file = data_dir.join("pushed.digest");
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("oci:{}:9.2", layout.display()))
        .arg(format!("docker://127.0.0.1:{port}/default/almalinux:9.2")));
    let digest = std::fs::read_to_string(&digest_file).unwrap();
    let images = call(
        "GET",
        "/container-registry/v1/images?folderId=default",
        None,
    );
    let image_id = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["digest"] == digest.trim())
        .map(|image| image["id"].as_str().unwrap().to_owned())
        .unwrap();
    let operation = call(
        "POST",
        "/container-registry/v1/scans",
        Some(&json!({"imageId": image_id})),
    );
    let operation_id = operation["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let operation = call("GET", &format!("/operations/{operation_id}"), None);
        if operation["done"] == true {
            break operation;
        }
        assert!(Instant::now() < deadline, "scan never finished");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done["response"]["status"], "READY", "{done}");
    let scan_id = done["response"]["id"].as_str().unwrap().to_owned();
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = call(
            "GET",
            &format!(
                "/container-registry/v1/scans/{scan_id}:listVulnerabilities?pageSize=1000&pageToken={token}"
            ),
            None,
        );
        for item in page["vulnerabilities"].as_array().unwrap() {
            let vulnerability = &item["package"];
            let text = |name: &str| vulnerability[name].as_str().unwrap_or_default().to_owned();
            listed.push((
                text("package"),
                text("name"),
                item["severity"].as_str().unwrap_or_default().to_owned(),
                text("fixedBy"),
            ));
        }
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    rows(listed.into_iter())
}
