//! One registry over HTTP, per the OCI distribution spec
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>) and the
//! Docker token flow (<https://distribution.github.io/distribution/spec/auth/token/>).
//!
//! - The first request pings `/v2/`; with `tls_verify` off, HTTPS without certificate
//!   checks is tried first and plain HTTP after it, as skopeo does.
//! - A `401` names the scheme: `Basic` sends the credentials on every request;
//!   `Bearer realm=…,service=…,scope=…` fetches a token for the request's scope
//!   (with the credentials when there are any, anonymously when not), caches it until
//!   it expires and fetches it again when the registry refuses it.
//! - `429` and `5xx` answers and dropped connections are retried with a growing pause
//!   (or the `Retry-After` the registry asks for, up to a bound).
//! - Redirects are followed only on the same host: a blob sent elsewhere is refused.
//! - Manifests are read under a size limit; by-digest manifests and every blob are
//!   checked against their digest.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};

use crate::Error;
use crate::credentials::Credentials;
use crate::manifest::{self, Parsed};
use crate::reference::Host;

/// How to talk to one registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Check TLS certificates and refuse plain HTTP (`--tls-verify`).
    pub tls_verify: bool,
    pub credentials: Option<Credentials>,
    /// The largest manifest or index read, in bytes.
    pub max_manifest_bytes: u64,
    /// Retries after the first attempt on 429, 5xx and dropped connections.
    pub retries: u32,
    /// The first pause between retries; it doubles each time.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            tls_verify: true,
            credentials: None,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            retries: 4,
            backoff: Duration::from_millis(250),
        }
    }
}

/// 4 MiB, the limit the distribution spec suggests registries accept.
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How a registry asked to be authenticated to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug)]
struct AuthState {
    challenge: Challenge,
    /// Tokens by scope, with the instant they stop being used.
    tokens: HashMap<String, (String, Instant)>,
}

/// A manifest as served: its exact bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// The digest of `bytes` (checked against the reference when it is a digest).
    pub digest: String,
    pub parsed: Parsed,
}

/// A client for one registry host; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    host: Host,
    options: ClientOptions,
    /// `https://HOST` or `http://HOST`, set by the first ping.
    base: tokio::sync::OnceCell<String>,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.inner.host)
    }
}

/// What a request is for, as token scopes (`repository:team/app:pull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }

    /// Push to `repository` and pull from `from` (a cross-repository mount).
    pub fn mount(repository: &str, from: &str) -> Scope {
        Scope(vec![
            format!("repository:{repository}:pull,push"),
            format!("repository:{from}:pull"),
        ])
    }

    pub fn catalog() -> Scope {
        Scope(vec!["registry:catalog:*".to_owned()])
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }
}

impl Client {
    pub fn new(host: Host, options: ClientOptions) -> Result<Client, Error> {
        let redirect_host = host.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let same_host = attempt
                .url()
                .host_str()
                .map(|name| match attempt.url().port() {
                    Some(port) => format!("{name}:{port}"),
                    None => name.to_owned(),
                });
            if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else if same_host.as_deref() == Some(redirect_host.as_str()) {
                attempt.follow()
            } else {
                // Handed back to the caller, which names the other host.
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(!options.tls_verify)
            .redirect(policy)
            .user_agent(concat!("crscan/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Http {
                what: format!("registry {host}"),
                source,
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                host,
                options,
                base: tokio::sync::OnceCell::new(),
                auth: Mutex::new(AuthState {
                    challenge: Challenge::None,
                    tokens: HashMap::new(),
                }),
            }),
        })
    }

    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The base URL, pinging `/v2/` the first time to pick the scheme and learn the
    /// auth challenge.
    async fn base(&self) -> Result<&str, Error> {
        self.inner
            .base
            .get_or_try_init(|| self.ping())
            .await
            .map(String::as_str)
    }

    async fn ping(&self) -> Result<String, Error> {
        let host = &self.inner.host;
        let what = format!("registry {host}");
        let mut schemes = vec!["https"];
        if !self.inner.options.tls_verify {
            schemes.push("http");
        }
        let mut last_error = None;
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            let mut attempt = 0;
            let answer = loop {
                match self.inner.http.get(format!("{base}/v2/")).send().await {
                    Ok(response)
                        if retryable_status(response.status())
                            && attempt < self.inner.options.retries => {}
                    Ok(response) => break Ok(response),
                    Err(error)
                        if error.is_connect()
                            && scheme == "https"
                            && !self.inner.options.tls_verify =>
                    {
                        break Err(error);
                    }
                    Err(error)
                        if attempt < self.inner.options.retries
                            && (error.is_timeout() || error.is_request()) => {}
                    Err(error) => break Err(error),
                }
                tokio::time::sleep(self.pause(attempt, None)).await;
                attempt += 1;
            };
            match answer {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED {
                        let challenge = parse_challenge(response.headers());
                        self.lock_auth().challenge = challenge;
                    } else if !status.is_success() {
                        return Err(Error::Status {
                            what: format!("{what} (/v2/)"),
                            status: status.as_u16(),
                            detail: String::new(),
                        });
                    }
                    return Ok(base);
                }
                Err(source) => {
                    // The certificate complaint is deep in the cause chain; say the way out.
                    let mut chain = String::new();
                    let mut cause: Option<&dyn std::error::Error> = Some(&source);
                    while let Some(error) = cause {
                        chain.push_str(&error.to_string());
                        cause = error.source();
                    }
                    let what = if chain.contains("certificate") {
                        format!(
                            "{what} (for a self-signed certificate or plain HTTP: --tls-verify=false)"
                        )
                    } else {
                        what.clone()
                    };
                    last_error = Some(Error::Http { what, source });
                }
            }
        }
        Err(last_error.unwrap_or(Error::NotFound { what }))
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A panic while holding the lock leaves only a token cache behind.
        self.inner
            .auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .map(|wanted| wanted.min(MAX_RETRY_AFTER))
            .unwrap_or_else(|| self.inner.options.backoff * 2u32.saturating_pow(attempt.min(8)))
    }

    /// The Authorization header for `scope`, fetching a token when needed.
    async fn authorization(&self, scope: &Scope, refresh: bool) -> Result<Option<String>, Error> {
        let challenge = self.lock_auth().challenge.clone();
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self
                .inner
                .options
                .credentials
                .as_ref()
                .map(Credentials::basic_header)),
            Challenge::Bearer { realm, service } => {
                let key = scope.key();
                if !refresh
                    && let Some((token, until)) = self.lock_auth().tokens.get(&key)
                    && Instant::now() < *until
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), scope).await?;
                self.lock_auth()
                    .tokens
                    .insert(key, (token.clone(), Instant::now() + lifetime));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<(String, Duration), Error> {
        let host = self.inner.host.to_string();
        let what = format!("token from {realm}");
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        for part in &scope.0 {
            query.push(("scope", part));
        }
        let mut request = self.inner.http.get(realm).query(&query);
        if let Some(credentials) = &self.inner.options.credentials {
            request = request.header(header::AUTHORIZATION, credentials.basic_header());
        }
        let response = request.send().await.map_err(|source| Error::Http {
            what: what.clone(),
            source,
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.refused());
        }
        if !status.is_success() {
            return Err(Error::Status {
                what,
                status: status.as_u16(),
                detail: String::new(),
            });
        }
        let body = read_limited(response, 1024 * 1024, &what).await?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|error| Error::Invalid {
                what: what.clone(),
                reason: error.to_string(),
            })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::Invalid {
                what,
                reason: format!("the answer for registry {host} holds no token"),
            })?;
        // The spec's default lifetime is 60 s; refresh a little before it ends.
        let seconds = answer.expires_in.unwrap_or(60).max(10);
        Ok((token, Duration::from_secs(seconds - 5)))
    }

    fn refused(&self) -> Error {
        let detail = match &self.inner.options.credentials {
            Some(credentials) => format!(" of user {}", credentials.username),
            None => " (none were given: pass USER:PASSWORD with --creds, or log in with \
                     skopeo login or docker login)"
                .to_owned(),
        };
        Error::AuthRefused {
            host: self.inner.host.to_string(),
            detail,
        }
    }

    /// Sends the request `build` makes (called again for each attempt) with the
    /// scope's authorization, answering challenges and retrying as the module says.
    /// Answers other than 401 and the retried ones are returned as they are.
    pub async fn send(
        &self,
        scope: &Scope,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let base = self.base().await?.to_owned();
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let mut request = build(&self.inner.http, &base);
            if let Some(value) = self.authorization(scope, false).await? {
                request = request.header(header::AUTHORIZATION, value);
            }
            match request.send().await {
                Err(source) => {
                    let transient =
                        source.is_timeout() || source.is_connect() || source.is_request();
                    if transient && attempt < self.inner.options.retries {
                        tokio::time::sleep(self.pause(attempt, None)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::Http {
                        what: what.to_owned(),
                        source,
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED {
                        let challenge = parse_challenge(response.headers());
                        let changed = {
                            let mut auth = self.lock_auth();
                            let changed =
                                auth.challenge != challenge && challenge != Challenge::None;
                            if changed {
                                auth.challenge = challenge.clone();
                            }
                            changed
                        };
                        let can_retry = matches!(challenge, Challenge::Bearer { .. })
                            || (changed && self.inner.options.credentials.is_some());
                        if !refreshed && can_retry {
                            refreshed = true;
                            // Fetch a fresh token: the cached one may have been revoked.
                            if matches!(challenge, Challenge::Bearer { .. }) {
                                self.authorization(scope, true).await?;
                            }
                            continue;
                        }
                        return Err(self.refused());
                    }
                    if status == StatusCode::FORBIDDEN {
                        return Err(Error::Denied {
                            host: self.inner.host.to_string(),
                            what: what.to_owned(),
                        });
                    }
                    if retryable_status(status) && attempt < self.inner.options.retries {
                        let retry_after = response
                            .headers()
                            .get(header::RETRY_AFTER)
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        tokio::time::sleep(self.pause(attempt, retry_after)).await;
                        attempt += 1;
                        continue;
                    }
                    if status.is_redirection() {
                        let location = response
                            .headers()
                            .get(header::LOCATION)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        return Err(Error::CrossHostRedirect {
                            what: what.to_owned(),
                            location,
                        });
                    }
                    return Ok(response);
                }
            }
        }
    }

    /// A manifest or index by tag or digest, its exact bytes under the size limit;
    /// by digest, the bytes are checked against it.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, Error> {
        let what = format!("manifest {repository}:{reference} at {}", self.inner.host);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(&Scope::pull(repository), &what, |http, base| {
                http.get(format!("{base}{path}"))
                    .header(header::ACCEPT, manifest::ACCEPT)
            })
            .await?;
        let response = expect_success(response, &what).await?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = read_limited(response, self.inner.options.max_manifest_bytes, &what).await?;
        let digest = sha256_digest(&bytes);
        if reference.contains(':') && reference != digest {
            check_digest(reference, &bytes, &what)?;
        }
        let (parsed, media_type) =
            Parsed::parse(&bytes, content_type.as_deref()).map_err(|reason| Error::Invalid {
                what: what.clone(),
                reason,
            })?;
        let digest = if reference.starts_with("sha512:") {
            reference.to_owned()
        } else {
            digest
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
            parsed,
        })
    }

    /// The digest of the manifest a tag or digest names, or `None` when there is none.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, Error> {
        let what = format!("manifest {repository}:{reference} at {}", self.inner.host);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(&Scope::pull(repository), &what, |http, base| {
                http.head(format!("{base}{path}"))
                    .header(header::ACCEPT, manifest::ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect_success(response, &what).await?;
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        match digest {
            Some(digest) => Ok(Some(digest)),
            // A registry that does not say the digest: read the manifest.
            None => Ok(Some(self.manifest(repository, reference).await?.digest)),
        }
    }

    /// Stores a manifest's exact bytes under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<(), Error> {
        let what = format!("manifest {repository}:{reference} at {}", self.inner.host);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(&Scope::push(repository), &what, |http, base| {
                http.put(format!("{base}{path}"))
                    .header(header::CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        expect_success(response, &what).await.map(drop)
    }

    /// Whether the registry holds the blob in `repository`.
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool, Error> {
        let what = format!("blob {digest} in {repository} at {}", self.inner.host);
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(&Scope::pull(repository), &what, |http, base| {
                http.head(format!("{base}{path}"))
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => expect_success(response, &what).await.map(|_| false),
        }
    }

    /// A blob as a stream checked against `digest` and `size` (when known) at its end.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobReader, Error> {
        let what = format!("blob {digest} of {repository} at {}", self.inner.host);
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(&Scope::pull(repository), &what, |http, base| {
                http.get(format!("{base}{path}"))
            })
            .await?;
        let response = expect_success(response, &what).await?;
        if let (Some(expected), Some(declared)) = (size, response.content_length())
            && expected != declared
        {
            return Err(Error::SizeMismatch {
                what,
                expected,
                actual: declared,
            });
        }
        BlobReader::new(response, digest, size, what)
    }

    /// Mounts `digest` from `from` into `repository`; `false` when the registry
    /// declined (it then opened an upload, which is left to expire).
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<bool, Error> {
        let what = format!(
            "mount of blob {digest} from {from} into {repository} at {}",
            self.inner.host
        );
        let path = format!("/v2/{repository}/blobs/uploads/");
        let response = self
            .send(&Scope::mount(repository, from), &what, |http, base| {
                http.post(format!("{base}{path}"))
                    .query(&[("mount", digest), ("from", from)])
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        Ok(response.status() == StatusCode::CREATED)
    }

    /// Uploads a blob from a stream (one `POST`, one `PUT` with the body); the
    /// registry checks the digest too, so a stream that fails or lies stores nothing.
    pub async fn push_blob(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        body: BlobReader,
    ) -> Result<(), Error> {
        let what = format!(
            "upload of blob {digest} to {repository} at {}",
            self.inner.host
        );
        let path = format!("/v2/{repository}/blobs/uploads/");
        let response = self
            .send(&Scope::push(repository), &what, |http, base| {
                http.post(format!("{base}{path}"))
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        let response = expect_success(response, &what).await?;
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Error::Invalid {
                what: what.clone(),
                reason: "the registry opened an upload without a Location".to_owned(),
            })?
            .to_owned();
        let base = self.base().await?.to_owned();
        let url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{base}{location}")
        };
        let mut url = reqwest::Url::parse(&url).map_err(|error| Error::Invalid {
            what: what.clone(),
            reason: format!("the upload location is not a URL: {error}"),
        })?;
        url.query_pairs_mut().append_pair("digest", digest);
        let failure = body.failure.clone();
        let mut request = self
            .inner
            .http
            .put(url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size.to_string())
            .body(reqwest::Body::wrap_stream(body));
        if let Some(value) = self.authorization(&Scope::push(repository), false).await? {
            request = request.header(header::AUTHORIZATION, value);
        }
        let sent = request.send().await;
        // The source's lie, when there was one, says more than the broken upload.
        if let Some(error) = take_failure(&failure) {
            return Err(error);
        }
        let response = sent.map_err(|source| Error::Http {
            what: what.clone(),
            source,
        })?;
        expect_success(response, &what).await.map(drop)
    }

    /// Every repository name, following `n`/`last` pages.
    pub async fn catalog(&self) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let what = format!("the catalog of {}", self.inner.host);
        self.paged("/v2/_catalog", &Scope::catalog(), &what, |bytes| {
            serde_json::from_slice::<Page>(bytes).map(|page| page.repositories)
        })
        .await
    }

    /// Every tag of `repository`, following `n`/`last` pages.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("the tags of {repository} at {}", self.inner.host);
        let path = format!("/v2/{repository}/tags/list");
        self.paged(&path, &Scope::pull(repository), &what, |bytes| {
            serde_json::from_slice::<Page>(bytes).map(|page| page.tags.unwrap_or_default())
        })
        .await
    }

    async fn paged(
        &self,
        path: &str,
        scope: &Scope,
        what: &str,
        parse: impl Fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
    ) -> Result<Vec<String>, Error> {
        const PAGE: usize = 500;
        let mut all: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let response = self
                .send(scope, what, |http, base| {
                    let mut query = vec![("n", PAGE.to_string())];
                    if let Some(last) = &last {
                        query.push(("last", last.clone()));
                    }
                    http.get(format!("{base}{path}")).query(&query)
                })
                .await?;
            let response = expect_success(response, what).await?;
            let more = response.headers().contains_key(header::LINK);
            let body = read_limited(response, 64 * 1024 * 1024, what).await?;
            let page = parse(&body).map_err(|error| Error::Invalid {
                what: what.to_owned(),
                reason: error.to_string(),
            })?;
            let Some(final_entry) = page.last().cloned() else {
                break;
            };
            // A registry that pages without progress would loop forever.
            if last.as_ref() == Some(&final_entry) {
                break;
            }
            all.extend(page);
            if !more {
                break;
            }
            last = Some(final_entry);
        }
        all.dedup();
        Ok(all)
    }

    /// The referrers of a manifest (signatures, SBOMs), or `None` when the registry
    /// does not serve the referrers API.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Vec<manifest::Descriptor>>, Error> {
        let what = format!(
            "the referrers of {repository}@{digest} at {}",
            self.inner.host
        );
        let path = format!("/v2/{repository}/referrers/{digest}");
        let response = self
            .send(&Scope::pull(repository), &what, |http, base| {
                http.get(format!("{base}{path}"))
                    .header(header::ACCEPT, manifest::OCI_INDEX)
            })
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        let response = expect_success(response, &what).await?;
        let is_index = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(manifest::OCI_INDEX));
        if !is_index {
            return Ok(None);
        }
        let body = read_limited(response, self.inner.options.max_manifest_bytes, &what).await?;
        match Parsed::parse(&body, Some(manifest::OCI_INDEX)) {
            Ok((Parsed::Index { manifests }, _)) => Ok(Some(manifests)),
            Ok(_) | Err(_) => Err(Error::Invalid {
                what,
                reason: "the referrers answer is not an image index".to_owned(),
            }),
        }
    }
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The response when it is a success, else an error naming the item and the
/// registry's own error code when it gave one.
async fn expect_success(response: Response, what: &str) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = read_limited(response, 64 * 1024, what)
        .await
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<OciError>,
    }
    #[derive(Deserialize)]
    struct OciError {
        code: String,
        #[serde(default)]
        message: String,
    }
    let detail = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|errors| errors.errors.into_iter().next())
        .map(|error| format!(" {}: {}", error.code, error.message))
        .unwrap_or_default();
    if status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound {
            what: what.to_owned(),
        });
    }
    Err(Error::Status {
        what: what.to_owned(),
        status: status.as_u16(),
        detail,
    })
}

/// The body, refused as soon as it passes `limit` (by its declared length or by
/// what arrives).
async fn read_limited(response: Response, limit: u64, what: &str) -> Result<Bytes, Error> {
    let too_large = || Error::TooLarge {
        what: what.to_owned(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| Error::Http {
            what: what.to_owned(),
            source,
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn check_digest(expected: &str, bytes: &[u8], what: &str) -> Result<(), Error> {
    let mut hasher = Hasher::new(expected, what)?;
    hasher.update(bytes);
    let actual = hasher.finish();
    if actual == expected {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(digest: &str, what: &str) -> Result<Hasher, Error> {
        let parsed: crscan_model::Digest = digest.parse().map_err(|error| Error::Invalid {
            what: what.to_owned(),
            reason: format!("digest {digest:?}: {error}"),
        })?;
        Ok(match parsed.algorithm() {
            crscan_model::DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            _ => Hasher::Sha256(Sha256::new()),
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(hasher) => hasher.update(bytes),
            Hasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(hasher) => format!("sha256:{}", hex::encode(hasher.finalize())),
            Hasher::Sha512(hasher) => format!("sha512:{}", hex::encode(hasher.finalize())),
        }
    }
}

type Failure = Arc<Mutex<Option<Error>>>;

fn take_failure(failure: &Failure) -> Option<Error> {
    failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// A blob's bytes as they arrive, hashed on the way; the stream ends with an error
/// instead of its end when the bytes do not match the digest or the size. Whoever
/// writes the bytes somewhere must only keep them once the stream has ended cleanly.
pub struct BlobReader {
    stream: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Option<Hasher>,
    expected: String,
    size: Option<u64>,
    read: u64,
    what: String,
    /// The error that ended the stream, for the caller to report.
    failure: Failure,
    /// Ended, cleanly or by an error.
    done: bool,
    declared_length: Option<u64>,
}

impl BlobReader {
    fn new(
        response: Response,
        digest: &str,
        size: Option<u64>,
        what: String,
    ) -> Result<BlobReader, Error> {
        Ok(BlobReader {
            declared_length: response.content_length(),
            stream: Box::pin(response.bytes_stream()),
            hasher: Some(Hasher::new(digest, &what)?),
            expected: digest.to_owned(),
            size,
            read: 0,
            what,
            failure: Arc::new(Mutex::new(None)),
            done: false,
        })
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The length the registry announced (`Content-Length`), when it did.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared_length
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Bytes, Error>>> {
        let message = error.to_string();
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
        self.hasher = None;
        self.done = true;
        Poll::Ready(Some(Err(Error::Invalid {
            what: self.what.clone(),
            reason: message,
        })))
    }

    /// Reads the whole blob into `sink`, returning the number of bytes; the digest is
    /// checked before this returns.
    pub async fn copy_to(
        mut self,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = self.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => return Err(take_failure(&self.failure).unwrap_or(error)),
            };
            sink.write_all(&chunk).await.map_err(|source| Error::Io {
                what: self.what.clone(),
                source,
            })?;
        }
        Ok(self.read)
    }
}

impl BlobReader {
    /// Compares what was read with the digest (and size), ending the hashing.
    fn verify(&mut self) -> Result<(), Error> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        if let Some(size) = self.size
            && self.read != size
        {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected: size,
                actual: self.read,
            });
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(Error::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl Stream for BlobReader {
    type Item = Result<Bytes, Error>;

    /// The last chunk is handed on only once the digest is checked: a writer that
    /// stops reading at the declared length (an HTTP body with a Content-Length)
    /// still never sends a wrong blob whole.
    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.stream.as_mut().poll_next(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Err(source))) => {
                let what = this.what.clone();
                this.fail(Error::Http { what, source })
            }
            Poll::Ready(Some(Ok(chunk))) => {
                this.read += chunk.len() as u64;
                if let Some(size) = this.size
                    && this.read > size
                {
                    let (what, actual) = (this.what.clone(), this.read);
                    return this.fail(Error::SizeMismatch {
                        what,
                        expected: size,
                        actual,
                    });
                }
                match &mut this.hasher {
                    Some(hasher) => hasher.update(&chunk),
                    // Verified at the declared size, and still more bytes.
                    None => {
                        let (what, actual) = (this.what.clone(), this.read);
                        return this.fail(Error::SizeMismatch {
                            what,
                            expected: this.size.unwrap_or(0),
                            actual,
                        });
                    }
                }
                if this.size == Some(this.read)
                    && let Err(error) = this.verify()
                {
                    return this.fail(error);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.done = true;
                match this.verify() {
                    Ok(()) => Poll::Ready(None),
                    Err(error) => this.fail(error),
                }
            }
        }
    }
}

/// The scheme and parameters of a `WWW-Authenticate` header (RFC 7235 §4.1).
fn parse_challenge(headers: &HeaderMap) -> Challenge {
    let Some(value) = headers
        .get(header::WWW_AUTHENTICATE)
        .and_then(|value: &HeaderValue| value.to_str().ok())
    else {
        return Challenge::None;
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let parameters = parse_parameters(rest);
    match parameters.get("realm") {
        Some(realm) => Challenge::Bearer {
            realm: realm.clone(),
            service: parameters.get("service").cloned(),
        },
        None => Challenge::None,
    }
}

/// `key="value", key=value, …` with quoted values that may hold commas.
fn parse_parameters(text: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = index + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        parameters.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    parameters
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn challenges() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
            ),
        );
        assert_eq!(
            parse_challenge(&headers),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        let parameters =
            parse_parameters(r#"realm="x", scope="repository:a:pull,push", error=invalid_token"#);
        assert_eq!(parameters["scope"], "repository:a:pull,push");
        assert_eq!(parameters["error"], "invalid_token");
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="Registry""#),
        );
        assert_eq!(parse_challenge(&headers), Challenge::Basic);
        assert_eq!(parse_challenge(&HeaderMap::new()), Challenge::None);
    }

    #[test]
    fn digests_are_checked() {
        let what = "blob";
        let digest = sha256_digest(b"hello");
        assert!(check_digest(&digest, b"hello", what).is_ok());
        let error = check_digest(&digest, b"hellp", what).unwrap_err();
        assert!(matches!(error, Error::DigestMismatch { .. }));
    }
}
