//! What access bindings and IP permissions mean, independent of the transport: the
//! hosted service's role IDs and what each allows, the subjects crscan knows, and
//! addresses and CIDR ranges (IPv4 and IPv6) with the client-address rule behind
//! `trusted_proxies`. The decision itself (global roles, then bindings on the
//! repository and its registry) is `Service::authorize`, the one check every surface
//! (REST, gRPC, `/v2/`, console) goes through. See `docs/access.md`.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::auth::Role;
use crate::errors::ApiError;

/// The system subject of every caller, anonymous ones included.
pub const ALL_USERS: &str = "allUsers";
/// The system subject of every caller with valid credentials.
pub const ALL_AUTHENTICATED_USERS: &str = "allAuthenticatedUsers";
/// The subject type of `allUsers` and `allAuthenticatedUsers`.
pub const SYSTEM: &str = "system";
/// The subject type of crscan's tokens.
pub const SERVICE_ACCOUNT: &str = "serviceAccount";

/// What a call needs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read registries, repositories, images, scans through the API.
    Read,
    /// Pull manifests and blobs on `/v2/`.
    Pull,
    /// Push, tag and delete images; create and delete repositories.
    Push,
    /// Start and cancel scans.
    Scan,
    /// Manage access: access bindings and IP permissions.
    Admin,
}

use Permission::{Admin, Pull, Push, Read, Scan};

/// The role IDs a binding may name, as the hosted service names them, with what each
/// allows here.
pub const ROLES: &[(&str, &[Permission])] = &[
    ("container-registry.images.puller", &[Read, Pull]),
    ("container-registry.images.pusher", &[Read, Pull, Push]),
    ("container-registry.images.scanner", &[Read, Scan]),
    ("container-registry.viewer", &[Read, Pull]),
    ("container-registry.editor", &[Read, Pull, Push, Scan]),
    ("container-registry.admin", &[Read, Pull, Push, Scan, Admin]),
    ("viewer", &[Read, Pull]),
    ("editor", &[Read, Pull, Push, Scan]),
    ("admin", &[Read, Pull, Push, Scan, Admin]),
];

/// What a bound role ID allows (nothing for an unknown one).
pub fn role_permissions(role_id: &str) -> &'static [Permission] {
    ROLES
        .iter()
        .find(|(id, _)| *id == role_id)
        .map(|(_, permissions)| *permissions)
        .unwrap_or(&[])
}

/// What a token's global role allows, on every resource.
pub fn global_permissions(role: Role) -> &'static [Permission] {
    match role {
        Role::Viewer => &[Read, Pull],
        Role::Pusher => &[Read, Pull, Push],
        Role::Scanner => &[Read, Pull, Scan],
        Role::Admin => &[Read, Pull, Push, Scan, Admin],
    }
}

/// Checks a binding of a set or update request: a known role ID, and a subject crscan
/// has (`serviceAccount` with a token's subject ID, or `system` with `allUsers` or
/// `allAuthenticatedUsers`). `field` names the binding in errors.
pub fn check_binding(
    field: &str,
    role_id: &str,
    subject_type: &str,
    subject_id: &str,
) -> Result<(), ApiError> {
    if role_id.is_empty() {
        return Err(ApiError::invalid(format!("{field}.roleId is required")));
    }
    if ROLES.iter().all(|(id, _)| *id != role_id) {
        let known: Vec<&str> = ROLES.iter().map(|(id, _)| *id).collect();
        return Err(ApiError::invalid(format!(
            "{field}.roleId {role_id:?} is not a role of this service; it has {}",
            known.join(", ")
        )));
    }
    match subject_type {
        SERVICE_ACCOUNT => crate::auth::check_subject(subject_id)
            .map_err(|message| ApiError::invalid(format!("{field}.subject.id: {message}"))),
        SYSTEM if subject_id == ALL_USERS || subject_id == ALL_AUTHENTICATED_USERS => Ok(()),
        SYSTEM => Err(ApiError::invalid(format!(
            "{field}.subject.id {subject_id:?} is not a system subject; use {ALL_USERS} or {ALL_AUTHENTICATED_USERS}"
        ))),
        "" => Err(ApiError::invalid(format!(
            "{field}.subject.type is required"
        ))),
        other => Err(ApiError::invalid(format!(
            "{field}.subject.type {other:?} is not one crscan has; use {SERVICE_ACCOUNT} (a token's subject) or {SYSTEM}"
        ))),
    }
}

/// An address or a CIDR range, IPv4 or IPv6: `10.0.0.0/8`, `2001:db8::/32`,
/// `127.0.0.1` (a /32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<IpRange> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) if prefix.bytes().all(|byte| byte.is_ascii_digit()) => {
                prefix.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => width,
        };
        (prefix <= width).then_some(IpRange { network, prefix })
    }

    /// Whether `address` lies in the range (an IPv4-mapped IPv6 address counts as its
    /// IPv4 address).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// An IP permission's address as a request gives it: an address or CIDR range.
pub fn check_ip(field: &str, text: &str) -> Result<IpRange, ApiError> {
    if text.is_empty() {
        return Err(ApiError::invalid(format!("{field}.ip is required")));
    }
    IpRange::parse(text).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field}.ip {text:?} is not an IPv4 or IPv6 address or CIDR range"
        ))
    })
}

/// The proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpRange>);

impl TrustedProxies {
    /// Parses addresses and CIDR ranges; an error names the one that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                IpRange::parse(entry).ok_or_else(|| {
                    format!("trusted proxy {entry:?} is not an IP address or CIDR range")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(address))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// `X-Forwarded-For` chain is read from the right, past every trusted proxy, and
    /// the first address that is not one is the client (the leftmost when all are).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let chain = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in chain.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_their_addresses() {
        let range = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.9".parse().unwrap()));
        let single = IpRange::parse("127.0.0.1").unwrap();
        assert!(single.contains("127.0.0.1".parse().unwrap()));
        assert!(!single.contains("127.0.0.2".parse().unwrap()));
        let v6 = IpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(
            IpRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "host",
            "10.0.0.0/-1",
            "1.2.3.4/",
        ] {
            assert!(IpRange::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.5".parse().unwrap());
        let client = |peer: &str| proxies.client_address(peer.parse().unwrap(), &headers);
        assert_eq!(
            client("127.0.0.1"),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client("192.0.2.1"), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(TrustedProxies::parse(&["nope"]).is_err());
    }

    #[test]
    fn bindings_are_checked() {
        assert!(check_binding("b", "container-registry.images.puller", SYSTEM, ALL_USERS).is_ok());
        assert!(check_binding("b", "viewer", SERVICE_ACCOUNT, "ci").is_ok());
        let error = check_binding("b", "owner", SERVICE_ACCOUNT, "ci").unwrap_err();
        assert!(error.message.contains("\"owner\""), "{}", error.message);
        let error = check_binding("b", "viewer", "userAccount", "x").unwrap_err();
        assert!(
            error.message.contains("\"userAccount\""),
            "{}",
            error.message
        );
        assert!(check_binding("b", "viewer", SYSTEM, "everyone").is_err());
    }
}
