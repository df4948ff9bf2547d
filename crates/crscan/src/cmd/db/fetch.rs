//! Conditional HTTP downloads of vulnerability feeds into a local cache.
//!
//! Each cached file has a sidecar `<file>.validators.json` holding the URL and the
//! `ETag` / `Last-Modified` the server sent, which the next download sends back as
//! `If-None-Match` / `If-Modified-Since`; a `304 Not Modified` keeps the cached copy.
//! A download is written to a temporary file and renamed, so an interrupted
//! transfer never replaces a good copy.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

const OSV_BASE: &str = "https://osv-vulnerabilities.storage.googleapis.com";
const DEBIAN_JSON: &str = "https://security-tracker.debian.org/tracker/data/json";
const ALPINE_BASE: &str = "https://secdb.alpinelinux.org";
const NVD_CVES: &str = "https://services.nvd.nist.gov/rest/json/cves/2.0";

/// CVEs per NVD page: the API's largest `resultsPerPage`.
pub const NVD_PAGE_SIZE: u64 = 2000;

/// OSV ecosystems downloaded when `--ecosystem` is not given.
const DEFAULT_ECOSYSTEMS: &[&str] = &[
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "Maven",
    "RubyGems",
    "Packagist",
    "NuGet",
    "Ubuntu",
    "AlmaLinux",
    "Rocky Linux",
    "Red Hat",
    "SUSE",
    "openSUSE",
];

/// Alpine releases downloaded when `--alpine-release` is not given and secdb's index
/// cannot be read.
const FALLBACK_ALPINE_RELEASES: &[&str] =
    &["v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "edge"];

/// One feed to download.
#[derive(Debug, Clone)]
pub struct Source {
    /// Source name stored in the database (`osv-PyPI`).
    pub name: String,
    pub url: String,
    /// File name in the cache; its extension tells the loader the format.
    pub file_name: String,
}

/// What `crscan db update` downloads.
#[derive(Debug, Clone)]
pub struct Plan {
    sources: Vec<Source>,
    alpine_base: String,
    /// secdb's index page, read for the list of releases when none were named.
    alpine_index: Option<String>,
    /// NVD's CVE API 2.0 endpoint, paged by `startIndex`, when NVD is downloaded.
    nvd: Option<String>,
    /// Whether pages come from NVD itself, which asks clients to wait 6 s between
    /// requests; a mirror is read without waiting.
    nvd_is_upstream: bool,
}

impl Plan {
    pub fn new(
        mirror: Option<&str>,
        ecosystems: Vec<String>,
        alpine_releases: Vec<String>,
        debian: bool,
        nvd: bool,
    ) -> Plan {
        let mirror = mirror.map(|url| url.trim_end_matches('/').to_owned());
        let osv_base = mirror
            .as_ref()
            .map_or_else(|| OSV_BASE.to_owned(), |base| format!("{base}/osv"));
        let alpine_base = mirror
            .as_ref()
            .map_or_else(|| ALPINE_BASE.to_owned(), |base| format!("{base}/alpine"));
        let debian_url = mirror.as_ref().map_or_else(
            || DEBIAN_JSON.to_owned(),
            |base| format!("{base}/debian/tracker/data/json"),
        );
        let ecosystems = if ecosystems.is_empty() {
            DEFAULT_ECOSYSTEMS
                .iter()
                .map(|name| (*name).to_owned())
                .collect()
        } else {
            ecosystems
        };
        let alpine_index = alpine_releases
            .is_empty()
            .then(|| format!("{alpine_base}/"));
        let mut sources = Vec::new();
        for ecosystem in ecosystems {
            sources.push(Source {
                name: format!("osv-{ecosystem}"),
                url: format!("{osv_base}/{}/all.zip", encode_path_segment(&ecosystem)),
                file_name: format!("osv-{}.zip", safe_file_name(&ecosystem)),
            });
        }
        if debian {
            sources.push(Source {
                name: "debian-tracker".to_owned(),
                url: debian_url,
                file_name: "debian-tracker.json".to_owned(),
            });
        }
        let nvd_is_upstream = mirror.is_none();
        let nvd = nvd.then(|| {
            mirror.as_ref().map_or_else(
                || NVD_CVES.to_owned(),
                |base| format!("{base}/nvd/rest/json/cves/2.0"),
            )
        });
        let mut plan = Plan {
            sources,
            alpine_base,
            alpine_index,
            nvd,
            nvd_is_upstream,
        };
        plan.add_alpine_releases(&alpine_releases);
        plan
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// NVD's CVE API 2.0 endpoint, when NVD is downloaded.
    pub fn nvd(&self) -> Option<&str> {
        self.nvd.as_deref()
    }

    /// How long to wait between two NVD pages.
    pub fn nvd_delay(&self) -> Duration {
        if self.nvd_is_upstream {
            Duration::from_secs(6)
        } else {
            Duration::ZERO
        }
    }

    /// The URL of secdb's index when the releases are to be read from it.
    pub fn alpine_index(&self) -> Option<&str> {
        self.alpine_index.as_deref()
    }

    /// Adds the secdb files of these Alpine releases (`v3.20`, `edge`).
    pub fn add_alpine_releases(&mut self, releases: &[String]) {
        for release in releases {
            for repository in ["main", "community"] {
                self.sources.push(Source {
                    name: format!("alpine-secdb-{release}-{repository}"),
                    url: format!("{}/{release}/{repository}.json", self.alpine_base),
                    file_name: format!("alpine-{}-{repository}.json", safe_file_name(release)),
                });
            }
        }
    }
}

/// The Alpine releases secdb's index page links to (`v3.20/`, `edge/`), in the
/// page's order, each once.
pub fn alpine_releases_in_index(html: &str) -> Vec<String> {
    let mut releases: Vec<String> = Vec::new();
    for piece in html.split("href=").skip(1) {
        let target = piece.trim_start_matches(['"', '\'']);
        let end = target.find(['"', '\'', '>', ' ']).unwrap_or(target.len());
        let name = target[..end].trim_start_matches("./").trim_end_matches('/');
        let is_release = name == "edge"
            || name.strip_prefix('v').is_some_and(|version| {
                let mut parts = version.split('.');
                let numeric = |part: Option<&str>| {
                    part.is_some_and(|part| {
                        !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
                    })
                };
                numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
            });
        if is_release && !releases.iter().any(|known| known == name) {
            releases.push(name.to_owned());
        }
    }
    releases
}

/// The Alpine releases to download when the index cannot be read.
pub fn fallback_alpine_releases() -> Vec<String> {
    FALLBACK_ALPINE_RELEASES
        .iter()
        .map(|release| (*release).to_owned())
        .collect()
}

/// `totalResults` of a cached NVD page, or `None` when the file is not one.
pub fn nvd_total_results(cache_path: &Path) -> Option<u64> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        total_results: u64,
    }
    let bytes = std::fs::read(cache_path).ok()?;
    serde_json::from_slice::<Head>(&bytes)
        .ok()
        .map(|head| head.total_results)
}

/// Reads a small text page (secdb's index), at most 1 MiB.
pub fn fetch_text(client: &Client, url: &str) -> Result<String, FetchError> {
    use std::io::Read as _;
    let response = client
        .get(url)
        .send()
        .map_err(|error| FetchError::Unreachable {
            url: url.to_owned(),
            message: error_chain(&error),
        })?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status(),
        });
    }
    let mut text = String::new();
    response
        .take(1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|error| FetchError::Unreachable {
            url: url.to_owned(),
            message: format!("transfer interrupted: {error}"),
        })?;
    Ok(text)
}

fn encode_path_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn safe_file_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Why a download failed.
#[derive(Debug)]
pub enum FetchError {
    /// No connection could be made (DNS, refused, timeout, TLS).
    Unreachable { url: String, message: String },
    /// The server answered with an error status.
    Status { url: String, status: StatusCode },
    /// Writing the cache failed.
    Io { path: String, message: String },
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unreachable { url, message } => write!(f, "cannot reach {url}: {message}"),
            FetchError::Status { url, status } => write!(f, "{url} answered {status}"),
            FetchError::Io { path, message } => write!(f, "cannot write {path}: {message}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// The result of a conditional download.
#[derive(Debug)]
pub struct Fetched {
    pub not_modified: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A blocking client with a timeout.
pub fn client(timeout_seconds: u64) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .timeout(Duration::from_secs(timeout_seconds))
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("crscan/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

fn validators_path(cache_path: &Path) -> PathBuf {
    let mut name = cache_path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    name.push(".validators.json");
    cache_path.with_file_name(name)
}

/// The ETag and Last-Modified stored for a cached file, if it came from `url`.
pub fn cached_validators(cache_path: &Path, url: &str) -> (Option<String>, Option<String>) {
    let Ok(text) = std::fs::read_to_string(validators_path(cache_path)) else {
        return (None, None);
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return (None, None);
    };
    if value.get("url").and_then(|stored| stored.as_str()) != Some(url) {
        return (None, None);
    }
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|field| field.as_str())
            .map(str::to_owned)
    };
    (field("etag"), field("last_modified"))
}

/// Downloads `url` into `cache_path` unless the cached copy is still current.
pub fn fetch(client: &Client, url: &str, cache_path: &Path) -> Result<Fetched, FetchError> {
    let (etag, last_modified) = if cache_path.exists() {
        cached_validators(cache_path, url)
    } else {
        (None, None)
    };
    let mut request = client.get(url);
    if let Some(etag) = &etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(date) = &last_modified {
        request = request.header(IF_MODIFIED_SINCE, date);
    }
    let mut response = request.send().map_err(|error| FetchError::Unreachable {
        url: url.to_owned(),
        message: error_chain(&error),
    })?;
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Fetched {
            not_modified: true,
            etag,
            last_modified,
        });
    }
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status(),
        });
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
            .map(str::to_owned)
    };
    let new_etag = header(ETAG);
    let new_last_modified = header(LAST_MODIFIED);
    let io_error = |error: std::io::Error| FetchError::Io {
        path: cache_path.display().to_string(),
        message: error.to_string(),
    };
    let mut temporary_name = cache_path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    temporary_name.push(format!(".part-{}", std::process::id()));
    let temporary = cache_path.with_file_name(temporary_name);
    let mut file = std::fs::File::create(&temporary).map_err(io_error)?;
    if let Err(error) = response.copy_to(&mut file) {
        let _ = std::fs::remove_file(&temporary);
        return Err(FetchError::Unreachable {
            url: url.to_owned(),
            message: format!("transfer interrupted: {}", error_chain(&error)),
        });
    }
    file.flush().map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    std::fs::rename(&temporary, cache_path).map_err(io_error)?;
    let validators = serde_json::json!({
        "url": url,
        "etag": new_etag,
        "last_modified": new_last_modified,
    });
    std::fs::write(validators_path(cache_path), validators.to_string()).map_err(io_error)?;
    Ok(Fetched {
        not_modified: false,
        etag: new_etag,
        last_modified: new_last_modified,
    })
}

/// The error and its causes on one line (reqwest hides the useful part in sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpine_releases_come_from_the_index() {
        let html = r#"<html><body><h1>Index of /</h1><pre><a href="../">../</a>
<a href="edge/">edge/</a>   01-Dec-2026 00:00  -
<a href="v3.9/">v3.9/</a>
<a href="v3.23/">v3.23/</a>
<a href="README.md">README.md</a>
<a href='v3.23/'>v3.23/</a>
<a href="vx.1/">vx.1/</a></pre></body></html>"#;
        assert_eq!(alpine_releases_in_index(html), ["edge", "v3.9", "v3.23"]);
    }

    #[test]
    fn rpm_distributions_are_downloaded_by_default() {
        let plan = Plan::new(None, Vec::new(), Vec::new(), false, true);
        let urls: Vec<&str> = plan
            .sources()
            .iter()
            .map(|source| source.url.as_str())
            .collect();
        for url in [
            "https://osv-vulnerabilities.storage.googleapis.com/AlmaLinux/all.zip",
            "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip",
            "https://osv-vulnerabilities.storage.googleapis.com/Red%20Hat/all.zip",
            "https://osv-vulnerabilities.storage.googleapis.com/SUSE/all.zip",
            "https://osv-vulnerabilities.storage.googleapis.com/openSUSE/all.zip",
        ] {
            assert!(urls.contains(&url), "{url} missing from {urls:?}");
        }
        assert_eq!(plan.alpine_index(), Some("https://secdb.alpinelinux.org/"));
        assert_eq!(
            plan.nvd(),
            Some("https://services.nvd.nist.gov/rest/json/cves/2.0")
        );
    }
}
