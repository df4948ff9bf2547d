//! The web console in a real browser: headless Chromium (Debian's `chromium`),
//! driven through `chromedriver`'s W3C WebDriver HTTP API. A server with tokens gets
//! an image pushed with `skopeo` and scanned through the REST API; the browser then
//! signs in, loads every page, checks the digest, tags and six counters against the
//! REST API's answer, checks that the vulnerability table has as many rows as the
//! counters add up to and that `?severity=CRITICAL` shows exactly the critical
//! count, clicks "Scan" and waits for the new result to appear without a reload, and
//! shows a viewer token no actions. Screenshots of every page, light and dark, go to
//! `target/tmp/console-screenshots/` (look at them; they are not committed).
//!
//! Skips with a message when `chromium`, `chromedriver` or `skopeo` is missing,
//! unless `CRSCAN_REQUIRE_TOOLS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const CRSCAN: &str = env!("CARGO_BIN_EXE_crscan");
const ADMIN_TOKEN: &str = "console-admin-secret";
const VIEWER_TOKEN: &str = "console-viewer-secret";
/// The W3C WebDriver name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `crscan serve` with an admin and a viewer token, killed on drop.
struct Server {
    child: Child,
    url: String,
    http: reqwest::blocking::Client,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let db = data_dir.join("vulndb/crscan.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let mut build = Command::new(CRSCAN);
        build.args(["db", "build"]);
        for feed in [
            "alpine-secdb/v3.4/main.yaml",
            "pypa-advisory-database/vulns/jinja2",
            "github-advisory-database-subset",
        ] {
            build.arg("--from").arg(format!("{DATA}/vulndb/{feed}"));
        }
        common::run(build.arg("--db").arg(&db));
        let mut command = Command::new(CRSCAN);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("CRSCAN_CONFIG")
            .env_remove("CRSCAN_DB")
            .env_remove("CRSCAN_STORE")
            .env(
                "CRSCAN_TOKENS",
                format!("{ADMIN_TOKEN}:admin,{VIEWER_TOKEN}:viewer"),
            )
            .env("CRSCAN_DB_AUTO_UPDATE", "0")
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(data_dir.join("serve.log")).unwrap());
        let (child, port) = common::spawn_serve(command);
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::new(),
        }
    }

    /// Calls the REST API as admin.
    fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = with_json(request, &body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn wait(&self, operation_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let operation = self.api(
                reqwest::Method::GET,
                &format!("/operations/{operation_id}"),
                None,
            );
            if operation["done"] == true {
                return operation;
            }
            assert!(
                Instant::now() < deadline,
                "operation {operation_id} never finished"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver process and one headless Chromium session, ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // chromedriver says when it listens.
        let stdout = driver.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.contains("started successfully") {
                    let _ = sender.send(());
                }
            }
        });
        receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("chromedriver did not start");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1400",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let created = read_json(
            with_json(http.post(format!("{base}/session")), &capabilities)
                .send()
                .unwrap(),
        );
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = with_json(request, &body);
        }
        let answer = read_json(request.send().unwrap());
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    /// Runs `script` (a function body) in the page and returns its value.
    fn eval(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn text(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent.trim() : null;",
            json!(selector)
        );
        match self.eval(&script) {
            Value::String(text) => text,
            other => panic!("no element {selector} ({other}) on {}", self.page_source()),
        }
    }

    fn count(&self, selector: &str) -> u64 {
        self.eval(&format!(
            "return document.querySelectorAll({}).length;",
            json!(selector)
        ))
        .as_u64()
        .unwrap()
    }

    fn page_source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(4000)
            .collect()
    }

    fn click(&self, selector: &str) {
        let found = self.command(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        );
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned();
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    fn type_into(&self, selector: &str, text: &str) {
        let found = self.command(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": selector})),
        );
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned();
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Switches `prefers-color-scheme` (Chrome DevTools `Emulation.setEmulatedMedia`).
    fn color_scheme(&self, scheme: &str) {
        self.command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}})),
        );
    }

    /// Saves the page as `name-light.png` and `name-dark.png` under `dir`.
    fn screenshots(&self, dir: &Path, name: &str) {
        for scheme in ["light", "dark"] {
            self.color_scheme(scheme);
            let png = self.command(reqwest::Method::GET, "/screenshot", None);
            let bytes = base64_decode(png.as_str().unwrap());
            assert!(bytes.starts_with(b"\x89PNG"), "screenshot is not a PNG");
            std::fs::write(dir.join(format!("{name}-{scheme}.png")), bytes).unwrap();
        }
        self.color_scheme("light");
    }

    fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.eval(script) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn with_json(
    request: reqwest::blocking::RequestBuilder,
    body: &Value,
) -> reqwest::blocking::RequestBuilder {
    request
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

fn read_json(response: reqwest::blocking::Response) -> Value {
    let text = response.text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The six counters shown under `scope` (a CSS selector), by severity name.
fn counters(browser: &Browser, scope: &str) -> Value {
    browser.eval(&format!(
        "const out = {{}}; for (const e of document.querySelectorAll({} + ' [data-severity]')) \
         out[e.dataset.severity.toLowerCase()] = e.textContent.trim(); return out;",
        json!(scope)
    ))
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn console_in_a_browser() {
    if !common::tools_present(&["chromium", "chromedriver", "skopeo"], false) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start(&temp.path().join("data"));
    let shots = screenshot_dir();

    // Push and scan through the registry and the REST API.
    let layout = temp.path().join("image");
    common::images::write_image_with_history(&layout, "1.0");
    let digest_file = temp.path().join("digest");
    common::run(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("ci:{ADMIN_TOKEN}"))
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(format!("oci:{}:1.0", layout.display()))
            .arg(format!(
                "docker://{}/default/app:1.0",
                server.url.trim_start_matches("http://")
            )),
    );
    let digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let images = server.api(
        reqwest::Method::GET,
        "/container-registry/v1/images?folderId=default",
        None,
    );
    let image = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["digest"] == digest.as_str())
        .unwrap()
        .clone();
    let image_id = image["id"].as_str().unwrap().to_owned();
    let operation = server.api(
        reqwest::Method::POST,
        "/container-registry/v1/scans",
        Some(json!({"imageId": image_id})),
    );
    server.wait(operation["id"].as_str().unwrap());
    let last = server.api(
        reqwest::Method::GET,
        &format!("/container-registry/v1/images/{image_id}:lastScanResult"),
        None,
    );
    let expected = &last["vulnerabilities"];
    let count_of = |name: &str| expected[name].as_str().unwrap().parse::<u64>().unwrap();
    let total: u64 = [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ]
    .iter()
    .map(|name| count_of(name))
    .sum();
    assert!(total > 0, "the test image has findings: {last}");
    assert!(
        count_of("critical") > 0,
        "the test image has a CRITICAL finding: {last}"
    );
    let scan_id = last["id"].as_str().unwrap().to_owned();

    // `/` sends a browser to the console, which asks for a token.
    let browser = Browser::start(&temp.path().join("profile"));
    browser.open(&format!("{}/", server.url));
    assert_eq!(browser.text("h1"), "Sign in");
    browser.screenshots(&shots, "sign-in");
    let wrong = browser.eval("return location.pathname;");
    assert_eq!(wrong, "/ui/");

    // A viewer sees the pages but no actions.
    browser.type_into("#token", VIEWER_TOKEN);
    browser.click("form[data-login] button");
    browser.wait_until(
        "the dashboard",
        "return document.querySelector('h1')?.textContent === 'Dashboard';",
    );
    browser.open(&format!("{}/ui/images/{image_id}", server.url));
    assert_eq!(
        browser.count("form[data-scan]"),
        0,
        "a viewer gets no Scan button"
    );
    assert_eq!(
        browser.count("form[data-confirm]"),
        0,
        "a viewer cannot delete"
    );
    assert_eq!(
        browser.eval("return sessionStorage.getItem('crscan.token');"),
        VIEWER_TOKEN
    );
    browser.click("form[data-logout] button");
    browser.wait_until(
        "the sign-in page",
        "return document.querySelector('h1')?.textContent === 'Sign in';",
    );
    assert_eq!(
        browser.eval("return sessionStorage.getItem('crscan.token');"),
        Value::Null
    );

    // The admin signs in and lands where they asked to go.
    browser.open(&format!("{}/ui/registries", server.url));
    assert_eq!(browser.text("h1"), "Sign in");
    browser.type_into("#token", ADMIN_TOKEN);
    browser.click("form[data-login] button");
    browser.wait_until(
        "the registries",
        "return document.querySelector('h1')?.textContent === 'Registries';",
    );
    browser.screenshots(&shots, "registries");

    // Dashboard: the latest scan's counters, the image among the most vulnerable,
    // and the database's freshness.
    browser.open(&format!("{}/ui/", server.url));
    let dashboard = counters(&browser, "#totals + p + .severity");
    for name in [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ] {
        assert_eq!(dashboard[name], expected[name], "dashboard {name}");
    }
    assert_eq!(browser.text("[data-database]"), "fresh");
    assert!(browser.count(&format!("a[href='/ui/images/{image_id}']")) >= 1);
    browser.screenshots(&shots, "dashboard");

    // Registry: the repository with one image.
    let registry_id = image["name"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    browser.open(&format!("{}/ui/registries/{registry_id}", server.url));
    assert!(browser.text("main table tbody").contains("/app"));
    assert_eq!(browser.text("main table tbody td.num"), "1");
    browser.screenshots(&shots, "registry");

    // Repository: digest, tag, status and the counters of the image's row.
    let repository = server.api(
        reqwest::Method::GET,
        &format!(
            "/container-registry/v1/repositories/{}:byName",
            image["name"].as_str().unwrap()
        ),
        None,
    );
    let repository_id = repository["id"].as_str().unwrap();
    browser.open(&format!("{}/ui/repositories/{repository_id}", server.url));
    let row = format!("tr[data-image='{image_id}']");
    assert!(browser.text(&format!("{row} .tag")) == "1.0");
    assert_eq!(browser.text(&format!("{row} .status")), "READY");
    let shown = counters(&browser, &row);
    for name in [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ] {
        assert_eq!(shown[name], expected[name], "repository row {name}");
    }
    assert!(
        browser
            .text(".copy code")
            .starts_with("docker pull 127.0.0.1:")
    );
    browser.screenshots(&shots, "repository");

    // Image: digest, tags, layers with their commands, packages, scan history.
    browser.open(&format!("{}/ui/images/{image_id}", server.url));
    assert_eq!(browser.text("[data-digest]"), digest);
    assert_eq!(browser.text("[data-tags]"), "1.0");
    let layers = browser.text("#layers-title + table tbody");
    assert!(layers.contains("ADD file:alpine-3.4"), "{layers}");
    assert!(layers.contains("COPY app /app"), "{layers}");
    assert!(
        browser.count("#packages tbody tr") > 10,
        "packages are listed"
    );
    assert!(browser.text("#packages tbody").contains("lodash"));
    // The console lists the inventory the scan made, which is the CLI's: the same
    // packages as `crscan sbom` of the same image.
    let sbom = Command::new(CRSCAN)
        .args(["sbom", "--format", "json"])
        .arg(format!("oci:{}:1.0", layout.display()))
        .output()
        .unwrap();
    assert!(
        sbom.status.success(),
        "{}",
        String::from_utf8_lossy(&sbom.stderr)
    );
    let sbom: Value = serde_json::from_slice(&sbom.stdout).unwrap();
    let cli_packages = sbom["packages"].as_array().unwrap();
    assert_eq!(
        browser.count("#packages tbody tr"),
        cli_packages.len() as u64,
        "console and `crscan sbom` list the same packages"
    );
    for package in cli_packages {
        let name = package["name"].as_str().unwrap();
        assert!(browser.text("#packages tbody").contains(name), "{name}");
    }
    assert_eq!(browser.count("[data-history] tbody tr"), 1);
    let history = counters(&browser, &format!("tr[data-scan-result='{scan_id}']"));
    for name in [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ] {
        assert_eq!(history[name], expected[name], "history {name}");
    }
    browser.screenshots(&shots, "image");

    // Scan result: the table holds every finding; the CRITICAL filter exactly
    // the critical ones; the text filter narrows as one types.
    browser.open(&format!("{}/ui/scans/{scan_id}", server.url));
    let shown = counters(&browser, "main > .severity");
    for name in [
        "critical",
        "high",
        "medium",
        "low",
        "negligible",
        "undefined",
    ] {
        assert_eq!(shown[name], expected[name], "scan {name}");
    }
    assert_eq!(browser.count("#vulnerabilities tbody tr"), total);
    assert_eq!(browser.text("[data-tags]"), "1.0");
    assert!(browser.count("#vulnerabilities tbody a[href^='https://']") as u64 == total);
    browser.screenshots(&shots, "scan");
    browser.type_into("#q", "lodash");
    let visible = browser
        .eval("return Array.from(document.querySelectorAll('#vulnerabilities tbody tr')).filter(r => !r.hidden).length;")
        .as_u64()
        .unwrap();
    assert!(
        visible > 0 && visible < total,
        "text filter shows {visible} of {total}"
    );
    browser.open(&format!(
        "{}/ui/scans/{scan_id}?severity=CRITICAL",
        server.url
    ));
    assert_eq!(
        browser.count("#vulnerabilities tbody tr"),
        count_of("critical")
    );
    assert_eq!(
        browser.count("#vulnerabilities tbody tr[data-severity-row='CRITICAL']"),
        count_of("critical")
    );
    browser.screenshots(&shots, "scan-critical");
    // Sorting by package, in the page.
    browser.open(&format!("{}/ui/scans/{scan_id}", server.url));
    browser.click("th[data-sort='package'] a");
    let packages = browser.eval(
        "return Array.from(document.querySelectorAll('#vulnerabilities tbody tr')).map(r => r.cells[2].textContent);",
    );
    let packages: Vec<String> = serde_json::from_value(packages).unwrap();
    let mut sorted = packages.clone();
    sorted.sort_by_key(|name| name.to_lowercase());
    assert_eq!(packages.len() as u64, total);
    assert_eq!(packages, sorted, "sorted by package");

    // Downloads are the report renderers' documents.
    let download = |format: &str| {
        server
            .http
            .get(format!(
                "{}/ui/scans/{scan_id}/download?format={format}",
                server.url
            ))
            .header("Cookie", format!("crscan_console={ADMIN_TOKEN}"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let report: Value = serde_json::from_str(&download("json")).unwrap();
    assert_eq!(report["schema"], "crscan.scan/v1");
    assert_eq!(report["findings"].as_array().unwrap().len() as u64, total);
    let csv = download("csv");
    assert_eq!(csv.lines().count() as u64, total + 1, "{csv}");
    let cyclonedx: Value = serde_json::from_str(&download("cyclonedx")).unwrap();
    assert_eq!(cyclonedx["bomFormat"], "CycloneDX");
    assert!(common::cyclonedx_errors(&cyclonedx).is_empty());
    let sarif: Value = serde_json::from_str(&download("sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // "Scan": a new result appears in the history without a reload.
    browser.open(&format!("{}/ui/images/{image_id}", server.url));
    browser.eval("window.__notReloaded = true; return true;");
    browser.click("form[data-scan] button");
    browser.wait_until(
        "the new scan result",
        "return document.querySelectorAll('[data-history] tbody tr').length === 2 \
         && document.querySelector('[data-scan-status]').textContent === 'Scan finished.' \
         && !document.querySelector('[data-history] .status.running');",
    );
    assert_eq!(browser.eval("return window.__notReloaded === true;"), true);
    let statuses = browser.eval(
        "return Array.from(document.querySelectorAll('[data-history] tbody tr .status')).map(s => s.textContent);",
    );
    assert_eq!(statuses, json!(["READY", "READY"]));
    browser.screenshots(&shots, "image-rescanned");

    // The scan policy, saved from the registry page, is the API's policy.
    browser.open(&format!("{}/ui/registries/{registry_id}", server.url));
    browser.type_into("#push_prefixes", &format!("{registry_id}/app"));
    browser.click("input[name=push_enabled]");
    browser.click("form.policy button");
    browser.wait_until(
        "the saved notice",
        "return !!document.querySelector('.notice');",
    );
    let policy = server.api(
        reqwest::Method::GET,
        &format!("/container-registry/v1/scanPolicies/{registry_id}:byRegistry"),
        None,
    );
    assert_eq!(
        policy["rules"]["pushRule"]["repositoryPrefixes"],
        json!([format!("{registry_id}/app")])
    );
    browser.screenshots(&shots, "registry-policy");

    // Without a browser: what the server answers whoever asks.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, headers: &[(&str, String)]| {
        let mut request = client.get(format!("{}{path}", server.url));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().unwrap()
    };
    // `/` redirects browsers only; API clients keep their 404.
    let root = get("/", &[("Accept", "text/html,*/*".to_owned())]);
    assert_eq!(root.status().as_u16(), 303);
    assert_eq!(root.headers()["location"], "/ui/");
    assert_eq!(
        get("/", &[("Accept", "application/json".to_owned())])
            .status()
            .as_u16(),
        404
    );
    // No credentials: the token form, as a 401; a wrong cookie is no better.
    let page = get(&format!("/ui/scans/{scan_id}"), &[]);
    assert_eq!(page.status().as_u16(), 401);
    assert!(page.text().unwrap().contains("name=\"token\""));
    let forged = get(
        &format!("/ui/scans/{scan_id}"),
        &[("Cookie", "crscan_console=guess".to_owned())],
    );
    assert_eq!(forged.status().as_u16(), 401);
    // The viewer's cookie reads, but may not scan; the admin's bearer may.
    let viewer = format!("crscan_console={VIEWER_TOKEN}");
    assert_eq!(
        get(
            &format!("/ui/scans/{scan_id}"),
            &[("Cookie", viewer.clone())]
        )
        .status()
        .as_u16(),
        200
    );
    let scan_as = |headers: &[(&str, String)]| {
        let mut request = client
            .post(format!("{}/ui/images/{image_id}/scan", server.url))
            .header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().unwrap()
    };
    assert_eq!(scan_as(&[("Cookie", viewer)]).status().as_u16(), 403);
    let started = scan_as(&[("Authorization", format!("Bearer {ADMIN_TOKEN}"))]);
    assert_eq!(started.status().as_u16(), 200);
    let started = read_json(started);
    server.wait(started["operationId"].as_str().unwrap());
    // Signing in sets a session cookie only the console's paths get, out of scripts'
    // reach, and never sent from another site.
    let signed_in = client
        .post(format!("{}/ui/login", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={ADMIN_TOKEN}&next=https%3A%2F%2Fexample.invalid%2F"
        ))
        .send()
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    assert_eq!(
        signed_in.headers()["location"],
        "/ui/",
        "no redirect off the console"
    );
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["Path=/ui", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    // Pages are never cached and load nothing from elsewhere; the assets are small.
    let page = get(
        "/ui/",
        &[("Authorization", format!("Bearer {ADMIN_TOKEN}"))],
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'")
    );
    let assets: usize = ["/ui/assets/console.css", "/ui/assets/console.js"]
        .iter()
        .map(|path| get(path, &[]).bytes().unwrap().len())
        .sum();
    assert!(
        assets > 1000 && assets < 200 * 1024,
        "assets are {assets} bytes"
    );

    // Delete: refused to a viewer, done for the admin, who lands on the repository.
    let delete_as = |cookie: String| {
        client
            .post(format!("{}/ui/images/{image_id}/delete", server.url))
            .header("Cookie", cookie)
            .send()
            .unwrap()
    };
    let refused = delete_as(format!("crscan_console={VIEWER_TOKEN}"));
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().unwrap().contains("Not allowed"));
    let deleted = delete_as(format!("crscan_console={ADMIN_TOKEN}"));
    assert_eq!(deleted.status().as_u16(), 303);
    assert_eq!(
        deleted.headers()["location"],
        format!("/ui/repositories/{repository_id}").as_str()
    );
    let gone = get(
        &format!("/ui/images/{image_id}"),
        &[("Cookie", format!("crscan_console={ADMIN_TOKEN}"))],
    );
    assert_eq!(gone.status().as_u16(), 404);
    eprintln!("screenshots in {}", shots.display());
}
