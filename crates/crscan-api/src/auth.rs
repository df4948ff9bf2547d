//! Tokens and roles. A token carries roles (viewer, pusher, scanner, admin); the API
//! takes `Authorization: Bearer <token>` and the registry also takes HTTP basic auth
//! with the token as the password, so `docker login` and `skopeo --creds` work.
//! With no tokens configured, auth is off (the server only allows that on loopback).

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

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Arc<HashMap<String, (String, Vec<Role>)>>,
}

/// An authenticated caller: a name fit for logs and `createdBy`, and the roles its
/// token carries. Which role a call needs is decided by the call (`crate::service`).
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    roles: Vec<Role>,
}

impl Principal {
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
        let table = tokens
            .into_iter()
            .enumerate()
            .map(|(index, (token, roles))| (token, (format!("token-{}", index + 1), roles)))
            .collect();
        Auth {
            tokens: Arc::new(table),
        }
    }

    /// Parses `token:role[+role…],token:role…` (the `CRSCAN_TOKENS` form).
    pub fn parse_list(text: &str) -> Result<Vec<(String, Vec<Role>)>, String> {
        let mut tokens = Vec::new();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (token, roles) = entry
                .rsplit_once(':')
                .ok_or_else(|| "token entry has no \":role\" part".to_owned())?;
            if token.is_empty() {
                return Err("token entry has an empty token".to_owned());
            }
            let roles = roles
                .split('+')
                .map(|role| Role::parse(role).ok_or_else(|| format!("unknown role {role:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            tokens.push((token.to_owned(), roles));
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
            });
        }
        let token = credential(headers).ok_or(AuthError::Unauthenticated)?;
        let (name, granted) = self.tokens.get(&token).ok_or(AuthError::Unauthenticated)?;
        Ok(Principal {
            name: name.clone(),
            roles: granted.clone(),
        })
    }

    /// Checks the request's credentials for any of `roles` (admin always passes).
    pub fn check(&self, headers: &HeaderMap, roles: &[Role]) -> Result<Principal, AuthError> {
        let principal = self.authenticate(headers)?;
        principal.require(roles)?;
        Ok(principal)
    }
}

/// The token from `Authorization: Bearer …` or `Authorization: Basic …` (password).
fn credential(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
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
        let tokens = Auth::parse_list("abc:admin, def:viewer+pusher").unwrap();
        assert_eq!(tokens[1].1, vec![Role::Viewer, Role::Pusher]);
        assert!(Auth::parse_list("abc").is_err());
        assert!(Auth::parse_list("abc:root").is_err());
    }

    #[test]
    fn checks_basic_and_bearer() {
        let auth = Auth::new(Auth::parse_list("s3cret:pusher,view:viewer").unwrap());
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
}
