//! Credentials where users keep them, looked up in the order skopeo and podman use:
//! `--creds USER:PASSWORD`; else `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.docker/config.json`. In each file,
//! a credential helper named for the host (`credHelpers`) or for all hosts
//! (`credsStore`) is asked first, by running `docker-credential-NAME get` with the
//! host on stdin, when that program exists; then the `auths` entry's base64 `auth`.
//! Formats: <https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md>,
//! <https://github.com/docker/docker-credential-helpers>.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::Error;
use crate::reference::Host;

/// A user name and a password (or token). The password is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

impl Credentials {
    /// `USER:PASSWORD`, as `--creds` takes it; the password may contain `:`.
    pub fn parse(text: &str) -> Result<Credentials, Error> {
        match text.split_once(':') {
            Some((username, password)) if !username.is_empty() => Ok(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(Error::Credentials(
                "credentials are USER:PASSWORD, with a non-empty user".to_owned(),
            )),
        }
    }

    /// The value of a `Basic` Authorization header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// The auth files to look in, in order, from the environment.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

/// The credentials for `host`: `explicit` when given, else the first auth file that
/// knows the host; `None` for anonymous access.
pub fn resolve(explicit: Option<&str>, host: &Host) -> Result<Option<Credentials>, Error> {
    if let Some(text) = explicit {
        return Credentials::parse(text).map(Some);
    }
    for file in auth_files() {
        if let Some(found) = from_auth_file(&file, host)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The credentials one auth file holds for `host`; a missing file holds none.
pub fn from_auth_file(path: &Path, host: &Host) -> Result<Option<Credentials>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Error::Credentials(format!(
                "cannot read auth file {}: {error}",
                path.display()
            )));
        }
    };
    let file: AuthFile = serde_json::from_str(&text).map_err(|error| {
        Error::Credentials(format!(
            "auth file {} is not valid: {error}",
            path.display()
        ))
    })?;
    let helper = file
        .cred_helpers
        .get(host.as_str())
        .or(file.creds_store.as_ref());
    if let Some(helper) = helper
        && let Some(found) = from_helper(helper, host)?
    {
        return Ok(Some(found));
    }
    for (key, entry) in &file.auths {
        if auth_key_host(key) != host.as_str() {
            continue;
        }
        if let Some(token) = &entry.identity_token
            && !token.is_empty()
        {
            return Ok(Some(Credentials {
                username: "<token>".to_owned(),
                password: token.clone(),
            }));
        }
        let Some(auth) = &entry.auth else { continue };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "auth file {}: the auth of {key} is not base64 of USER:PASSWORD",
                    path.display()
                ))
            })?;
        return Credentials::parse(&decoded).map(Some).map_err(|_| {
            Error::Credentials(format!(
                "auth file {}: the auth of {key} is not base64 of USER:PASSWORD",
                path.display()
            ))
        });
    }
    Ok(None)
}

/// The host an `auths` key names: keys may be `host`, `https://host` or
/// `https://host/v1/` (docker's legacy spelling), or `host/namespace`.
fn auth_key_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Asks `docker-credential-NAME get`; a helper that is not installed, or does not
/// know the host, gives nothing.
fn from_helper(name: &str, host: &Host) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{name}");
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Error::Credentials(format!("cannot run {program}: {error}")));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input answers by its exit status.
        let _ = stdin.write_all(host.as_str().as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|error| Error::Credentials(format!("cannot run {program}: {error}")))?;
    if !output.status.success() {
        return Ok(None);
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|error| {
        Error::Credentials(format!(
            "{program} get answered what is not credentials: {error}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_creds_and_auth_files() {
        let creds = Credentials::parse("oauth:y0_abc:def").unwrap();
        assert_eq!(creds.username, "oauth");
        assert_eq!(creds.password, "y0_abc:def");
        assert!(Credentials::parse(":x").is_err());
        assert!(Credentials::parse("nocolon").is_err());
        assert_eq!(creds.basic_header(), "Basic b2F1dGg6eTBfYWJjOmRlZg==");
        assert!(!format!("{creds:?}").contains("y0_abc"));

        let dir = std::env::temp_dir().join(format!("crscan-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        // "iam:t0ken" in base64, under docker's legacy key spelling.
        std::fs::write(
            &file,
            r#"{"auths":{"https://cr.yandex/v1/":{"auth":"aWFtOnQwa2Vu"},"other:5000":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let host = Host::parse("cr.yandex").unwrap();
        let found = from_auth_file(&file, &host).unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("iam", "t0ken")
        );
        assert!(
            from_auth_file(&file, &Host::parse("elsewhere").unwrap())
                .unwrap()
                .is_none()
        );
        assert!(from_auth_file(&file, &Host::parse("other:5000").unwrap()).is_err());
        assert!(
            from_auth_file(&dir.join("missing.json"), &host)
                .unwrap()
                .is_none()
        );
        // A helper that is not installed gives nothing; the auths entry is used.
        std::fs::write(
            &file,
            r#"{"credsStore":"crscan-test-absent","auths":{"cr.yandex":{"auth":"aWFtOnQwa2Vu"}}}"#,
        )
        .unwrap();
        assert!(from_auth_file(&file, &host).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
