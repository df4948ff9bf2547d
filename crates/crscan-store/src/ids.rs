//! Resource IDs as crscan's API contract (§11) fixes them: a 3-letter prefix and 17
//! random characters of `[0-9a-v]` (base32hex), 20 characters in all.

use rand::Rng;

/// The kinds of resources that get IDs, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Registry,
    Image,
    Repository,
    ScanResult,
    ScanPolicy,
    /// A lifecycle policy (`crl`; the hosted prefix is not documented).
    LifecyclePolicy,
    /// A dry run's result (`crd`; the hosted prefix is not documented).
    DryRunResult,
    Operation,
    Blob,
    /// An HTTP or gRPC request, as the access log and the API's errors name it.
    Request,
}

impl IdKind {
    /// The three-letter prefix of this kind's IDs.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Registry | IdKind::Image => "crp",
            IdKind::Repository => "crt",
            IdKind::ScanResult => "che",
            IdKind::ScanPolicy => "crs",
            IdKind::LifecyclePolicy => "crl",
            IdKind::DryRunResult => "crd",
            IdKind::Operation => "crq",
            IdKind::Blob => "crb",
            IdKind::Request => "crr",
        }
    }
}

/// A fresh random ID of `kind`.
pub fn new_id(kind: IdKind) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(20);
    id.push_str(kind.prefix());
    for _ in 0..17 {
        id.push(char::from(ALPHABET[rng.gen_range(0..32)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_contract_shape() {
        for kind in [
            IdKind::Registry,
            IdKind::Repository,
            IdKind::Operation,
            IdKind::Blob,
        ] {
            let id = new_id(kind);
            assert_eq!(id.len(), 20);
            assert!(id.starts_with(kind.prefix()));
            assert!(
                id[3..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
            );
        }
        assert_ne!(new_id(IdKind::Image), new_id(IdKind::Image));
    }
}
