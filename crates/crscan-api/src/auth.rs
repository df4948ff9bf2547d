//! Tokens and roles. A token carries roles (viewer, pusher, scanner, admin); the API
//! takes `Authorization: Bearer <token>` and the registry also takes HTTP basic auth
//! with the token as the password, so `docker login` and `skopeo --creds` work.
//! With no tokens configured, auth is off (the server only allows that on loopback).
//!
//! The gRPC clients exchange a credential for a short-lived IAM token first
//! (`IamTokenService/Create`): [`Auth::issue`] mints one in the shape they expect,
//! `t1.<payload>.<86 base64url characters>`, where the payload names the configured
//! token's roles and the expiry, and the tail is an HMAC-SHA512 of the payload under a
//! key made for this process. Such a bearer is valid until it expires or the process
//! restarts, on any surface, with the roles of the token it was exchanged for.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read, push and delete images.
    Pusher,
    /// Read and start scans.
    Scanner,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Pusher => "pusher",
            Role::Scanner => "scanner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text.trim() {
            "viewer" => Some(Role::Viewer),
            "pusher" => Some(Role::Pusher),
            "scanner" => Some(Role::Scanner),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials or unknown ones.
    Unauthenticated,
    /// Known token without the needed role.
    Denied,
}

/// One configured token: the secret, its global roles, and the subject ID it acts as
/// in access bindings (type `serviceAccount`); `None` gives it `token-<n>`, its
/// position among the configured tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: String,
    pub roles: Vec<Role>,
    pub subject: Option<String>,
}

/// Checks a token's subject ID: 1 to 50 characters of letters, digits, `.`, `_`,
/// `-` and `@`, and not a system subject's ID.
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() || subject.chars().count() > 50 {
        return Err(format!(
            "subject {subject:?} is empty or longer than 50 characters"
        ));
    }
    if !subject
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "subject {subject:?} holds a character other than letters, digits, '.', '_', '-' and '@'"
        ));
    }
    if subject == crate::access::ALL_USERS || subject == crate::access::ALL_AUTHENTICATED_USERS {
        return Err(format!(
            "subject {subject:?} is a system subject and cannot name a token"
        ));
    }
    Ok(())
}

/// The configured tokens, and this process's key for the IAM tokens it issues.
#[derive(Clone)]
pub struct Auth {
    tokens: Arc<HashMap<String, (String, Vec<Role>)>>,
    bearer_key: Arc<ring::hmac::Key>,
}

impl Default for Auth {
    fn default() -> Auth {
        Auth::new(Vec::new())
    }
}

/// How long an issued IAM token is valid, as the hosted service's (12 hours).
pub const IAM_TOKEN_LIFETIME_SECONDS: i64 = 12 * 3600;

/// An IAM token issued by [`Auth::issue`] and when it expires (Unix seconds).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
}

/// A caller: a name fit for logs and `createdBy` (a token's subject ID), and the
/// global roles its token carries; or, on `/v2/` only, an anonymous caller (no
/// credentials, no roles, rights only from `allUsers` bindings). Which permission a
/// call needs is decided by the call (`crate::service`).
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    roles: Vec<Role>,
    authenticated: bool,
}

impl Principal {
    /// A caller without credentials.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".to_owned(),
            roles: Vec::new(),
            authenticated: false,
        }
    }

    /// Whether the caller presented credentials crscan knows.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The global roles of the caller's token.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether the caller holds one of `roles`; admin holds every role, and an empty
    /// list asks for admin.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles
            .iter()
            .any(|role| *role == Role::Admin || roles.contains(role))
    }

    /// [`Principal::has_any`] as a result.
    pub fn require(&self, roles: &[Role]) -> Result<(), AuthError> {
        if self.has_any(roles) {
            Ok(())
        } else {
            Err(AuthError::Denied)
        }
    }
}

impl Auth {
    /// Builds the token table from `(token, roles)` pairs; each token is named
    /// `token-<n>` in logs so the secret itself is never printed.
    pub fn new(tokens: Vec<(String, Vec<Role>)>) -> Auth {
        Auth::with_subjects(
            tokens
                .into_iter()
                .map(|(token, roles)| TokenSpec {
                    token,
                    roles,
                    subject: None,
                })
                .collect(),
        )
    }

    /// Builds the token table; a token's name (in logs, `createdBy` and as its subject
    /// ID in access bindings) is its subject, else `token-<n>`, so the secret itself
    /// is never printed.
    pub fn with_subjects(tokens: Vec<TokenSpec>) -> Auth {
        let table = tokens
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                let name = spec
                    .subject
                    .unwrap_or_else(|| format!("token-{}", index + 1));
                (spec.token, (name, spec.roles))
            })
            .collect();
        let secret: [[u8; 32]; 2] = rand::random();
        Auth {
            tokens: Arc::new(table),
            bearer_key: Arc::new(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA512,
                &secret.concat(),
            )),
        }
    }

    /// Exchanges a configured token for a short-lived IAM token carrying its roles,
    /// valid for [`IAM_TOKEN_LIFETIME_SECONDS`] from `now` (Unix seconds). `None` for a
    /// credential that is not a configured token.
    pub fn issue(&self, credential: &str, now: i64) -> Option<IssuedToken> {
        // With auth off every caller is an anonymous admin, so any credential is.
        let anonymous = ("anonymous".to_owned(), vec![Role::Admin]);
        let (name, roles) = if self.enabled() {
            self.tokens.get(credential)?
        } else {
            &anonymous
        };
        let expires_at = now + IAM_TOKEN_LIFETIME_SECONDS;
        let roles = roles
            .iter()
            .map(|role| role.name())
            .collect::<Vec<_>>()
            .join("+");
        let payload = URL_SAFE_NO_PAD.encode(format!("{name}:{roles}:{expires_at}"));
        let tag = ring::hmac::sign(&self.bearer_key, payload.as_bytes());
        let token = format!("t1.{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        Some(IssuedToken { token, expires_at })
    }

    /// The caller an issued IAM token names, if its signature holds and it has not
    /// expired at `now` (Unix seconds).
    fn verify_issued(&self, token: &str, now: i64) -> Option<Principal> {
        let (payload, tag) = token.strip_prefix("t1.")?.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        ring::hmac::verify(&self.bearer_key, payload.as_bytes(), &tag).ok()?;
        let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let mut fields = plain.rsplitn(3, ':');
        let expires_at: i64 = fields.next()?.parse().ok()?;
        let roles = fields.next()?;
        let name = fields.next()?;
        if expires_at <= now {
            return None;
        }
        let roles = roles
            .split('+')
            .filter(|role| !role.is_empty())
            .map(Role::parse)
            .collect::<Option<Vec<_>>>()?;
        Some(Principal {
            name: name.to_owned(),
            roles,
            authenticated: true,
        })
    }

    /// Parses `token:role[+role…][@subject],token:role…` (the `CRSCAN_TOKENS` form);
    /// the roles may be empty (`token:@ci`: rights only from access bindings).
    pub fn parse_list(text: &str) -> Result<Vec<TokenSpec>, String> {
        let mut tokens = Vec::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (token, rest) = entry
                .rsplit_once(':')
                .ok_or_else(|| "token entry has no \":role\" part".to_owned())?;
            if token.is_empty() {
                return Err("token entry has an empty token".to_owned());
            }
            let (roles, subject) = match rest.split_once('@') {
                Some((roles, subject)) => {
                    check_subject(subject)?;
                    (roles, Some(subject.to_owned()))
                }
                None => (rest, None),
            };
            let roles = roles
                .split('+')
                .filter(|role| !role.is_empty() || subject.is_none())
                .map(|role| Role::parse(role).ok_or_else(|| format!("unknown role {role:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            tokens.push(TokenSpec {
                token: token.to_owned(),
                roles,
                subject,
            });
        }
        Ok(tokens)
    }

    /// Whether any token is configured (auth on).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Who the request's credentials name. With auth off, everyone is an anonymous
    /// admin.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        if !self.enabled() {
            return Ok(Principal {
                name: "anonymous".to_owned(),
                roles: vec![Role::Admin],
                authenticated: true,
            });
        }
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        self.authenticate_authorization(value)
    }

    /// Who an `Authorization` value (`Bearer …` or `Basic …`) names: a configured
    /// token, or an IAM token this process issued and that has not expired.
    pub fn authenticate_authorization(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if !self.enabled() {
            return Ok(Principal {
                name: "anonymous".to_owned(),
                roles: vec![Role::Admin],
                authenticated: true,
            });
        }
        let token = authorization
            .and_then(credential)
            .ok_or(AuthError::Unauthenticated)?;
        if let Some((name, granted)) = self.tokens.get(&token) {
            return Ok(Principal {
                name: name.clone(),
                roles: granted.clone(),
                authenticated: true,
            });
        }
        let now = crscan_store::now() / 1000;
        self.verify_issued(&token, now)
            .ok_or(AuthError::Unauthenticated)
    }

    /// Checks the request's credentials for any of `roles` (admin always passes).
    pub fn check(&self, headers: &HeaderMap, roles: &[Role]) -> Result<Principal, AuthError> {
        let principal = self.authenticate(headers)?;
        principal.require(roles)?;
        Ok(principal)
    }
}

/// The token from `Authorization: Bearer …` or `Authorization: Basic …` (password).
fn credential(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// Standard base64 (RFC 4648 §4) decoding, padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut output = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_lists() {
        let tokens =
            Auth::parse_list("abc:admin, def:viewer+pusher, ghi:@ci, jkl:viewer@ro").unwrap();
        assert_eq!(tokens[1].roles, vec![Role::Viewer, Role::Pusher]);
        assert_eq!(tokens[1].subject, None);
        assert_eq!(tokens[2].roles, vec![]);
        assert_eq!(tokens[2].subject.as_deref(), Some("ci"));
        assert_eq!(tokens[3].roles, vec![Role::Viewer]);
        assert!(Auth::parse_list("abc").is_err());
        assert!(Auth::parse_list("abc:root").is_err());
        assert!(Auth::parse_list("abc:").is_err());
        assert!(Auth::parse_list("abc:viewer@allUsers").is_err());
        assert!(Auth::parse_list("abc:viewer@").is_err());
        let auth = Auth::with_subjects(tokens);
        let principal = auth.authenticate_authorization(Some("Bearer ghi")).unwrap();
        assert_eq!(principal.name, "ci");
        assert!(principal.roles().is_empty());
        let principal = auth.authenticate_authorization(Some("Bearer abc")).unwrap();
        assert_eq!(principal.name, "token-1");
    }

    #[test]
    fn checks_basic_and_bearer() {
        let auth = Auth::with_subjects(Auth::parse_list("s3cret:pusher,view:viewer").unwrap());
        let mut headers = HeaderMap::new();
        assert_eq!(
            auth.check(&headers, &[Role::Viewer]).unwrap_err(),
            AuthError::Unauthenticated
        );
        headers.insert("authorization", "Bearer view".parse().unwrap());
        assert!(auth.check(&headers, &[Role::Viewer]).is_ok());
        assert_eq!(
            auth.check(&headers, &[Role::Pusher]).unwrap_err(),
            AuthError::Denied
        );
        // "user:s3cret" in base64.
        headers.insert("authorization", "Basic dXNlcjpzM2NyZXQ=".parse().unwrap());
        assert!(auth.check(&headers, &[Role::Pusher]).is_ok());
        headers.insert("authorization", "Basic dXNlcjp3cm9uZw==".parse().unwrap());
        assert_eq!(
            auth.check(&headers, &[Role::Viewer]).unwrap_err(),
            AuthError::Unauthenticated
        );
    }

    #[test]
    fn issued_tokens_carry_roles_expire_and_have_the_iam_shape() {
        let auth =
            Auth::with_subjects(Auth::parse_list("view:viewer,scan:scanner+pusher").unwrap());
        assert!(auth.issue("unknown", 1000).is_none());
        let issued = auth.issue("scan", 1000).unwrap();
        assert_eq!(issued.expires_at, 1000 + 12 * 3600);
        let (payload, tail) = issued
            .token
            .strip_prefix("t1.")
            .unwrap()
            .split_once('.')
            .unwrap();
        let base64url = |text: &str| {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        assert!(!payload.is_empty() && base64url(payload), "{payload}");
        assert!(tail.len() == 86 && base64url(tail), "{tail}");
        let principal = auth.verify_issued(&issued.token, 2000).unwrap();
        assert!(principal.has_any(&[Role::Scanner]));
        assert!(principal.has_any(&[Role::Pusher]));
        assert!(!principal.has_any(&[]));
        assert_eq!(principal.name, "token-2");
        // Expired, tampered with, or signed by another process: refused.
        assert!(
            auth.verify_issued(&issued.token, issued.expires_at)
                .is_none()
        );
        let tampered = issued.token.replace(
            payload,
            &URL_SAFE_NO_PAD.encode("token-2:admin:99999999999"),
        );
        assert!(auth.verify_issued(&tampered, 2000).is_none());
        let other = Auth::with_subjects(Auth::parse_list("scan:scanner").unwrap());
        assert!(other.verify_issued(&issued.token, 2000).is_none());
    }
}
