//! The domain types the store hands out. Times are Unix milliseconds (UTC); the API
//! layer formats them.

use std::collections::BTreeMap;

use crscan_model::Digest;

/// A registry's lifecycle state, as `Registry.Status` in the contract (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryStatus {
    Unspecified,
    Creating,
    Active,
    Deleting,
}

impl RegistryStatus {
    pub fn number(self) -> i64 {
        match self {
            RegistryStatus::Unspecified => 0,
            RegistryStatus::Creating => 1,
            RegistryStatus::Active => 2,
            RegistryStatus::Deleting => 3,
        }
    }

    pub fn from_number(number: i64) -> RegistryStatus {
        match number {
            1 => RegistryStatus::Creating,
            2 => RegistryStatus::Active,
            3 => RegistryStatus::Deleting,
            _ => RegistryStatus::Unspecified,
        }
    }

    /// The enum value's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            RegistryStatus::Unspecified => "STATUS_UNSPECIFIED",
            RegistryStatus::Creating => "CREATING",
            RegistryStatus::Active => "ACTIVE",
            RegistryStatus::Deleting => "DELETING",
        }
    }
}

/// A registry: a namespace of repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub id: String,
    pub folder_id: String,
    pub name: String,
    pub status: RegistryStatus,
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
}

/// A repository, named `<registryId>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: String,
    pub registry_id: String,
    pub name: String,
    pub created_at: i64,
}

/// What a blob is to the manifest that references it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    Config,
    Layer,
    /// A child manifest of an index or manifest list.
    Child,
}

impl BlobRole {
    fn text(self) -> &'static str {
        match self {
            BlobRole::Config => "config",
            BlobRole::Layer => "layer",
            BlobRole::Child => "child",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<BlobRole> {
        match text {
            "config" => Some(BlobRole::Config),
            "layer" => Some(BlobRole::Layer),
            "child" => Some(BlobRole::Child),
            _ => None,
        }
    }

    pub(crate) fn as_text(self) -> &'static str {
        self.text()
    }
}

/// A blob a manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The `crb…` ID of this reference (the contract's `Blob.id`).
    pub id: String,
    pub digest: Digest,
    pub size: i64,
    pub media_type: String,
}

/// A manifest to record as an image.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub repository_id: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifest_size: i64,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// Referenced blobs with their role, in manifest order.
    pub blobs: Vec<(BlobRole, Digest, i64, String)>,
}

/// One manifest stored in a repository (the contract's `Image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub repository_id: String,
    /// The repository's name, `<registryId>/<name>`.
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub manifest_size: i64,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    pub config: Option<BlobRef>,
    pub layers: Vec<BlobRef>,
    pub children: Vec<BlobRef>,
    pub tags: Vec<String>,
    /// Config plus layer sizes in bytes.
    pub compressed_size: i64,
    pub created_at: i64,
}

/// How to order an image listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOrder {
    Name,
    Digest,
    CreatedAt,
}

/// Which images to list. Per the contract, `repository_name` wins over `registry_id`,
/// which wins over `folder_id`.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub folder_id: Option<String>,
    /// `filter=name="…"`: the repository name must equal it.
    pub name: Option<String>,
    pub order_by: Vec<(ImageOrder, bool)>,
    pub offset: i64,
    pub limit: i64,
}

/// Which repositories to list.
#[derive(Debug, Clone, Default)]
pub struct RepositoryQuery {
    pub registry_id: Option<String>,
    pub folder_id: Option<String>,
    pub name: Option<String>,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A long-running operation (contract §7). `metadata`, `error` and `response` are JSON
/// values already in their wire form (`Any` with `@type`, `google.rpc.Status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub id: String,
    pub description: String,
    pub created_by: String,
    pub created_at: i64,
    pub modified_at: i64,
    pub done: bool,
    pub metadata: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub response: Option<serde_json::Value>,
}
