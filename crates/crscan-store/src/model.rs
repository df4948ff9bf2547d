//! The domain types the store hands out. Times are Unix milliseconds (UTC); the API
//! layer formats them. Values the store keeps whole in one column (an operation's
//! metadata and result, a scan's findings, a policy's rules) are these types
//! serialised with serde: the store's own format, never an API's wire form, so
//! that REST and gRPC each render them their own way.

use std::collections::BTreeMap;

use crscan_model::Digest;
use serde::{Deserialize, Serialize};

use crate::{DryRunResult, LifecyclePolicy, ScanPolicy, ScanResult};

/// A registry's lifecycle state, as `Registry.Status` in the contract (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub id: String,
    pub folder_id: String,
    pub name: String,
    pub status: RegistryStatus,
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
}

/// A repository, named `<registryId>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Where a page of a list starts: right after the row whose id is `after` while that
/// row still exists, so that rows inserted between two pages neither repeat nor
/// hide rows; else (no anchor, or the anchor was deleted) `offset` rows in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageStart {
    pub after: Option<String>,
    pub offset: i64,
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
    pub start: PageStart,
    pub limit: i64,
}

/// Which repositories to list.
#[derive(Debug, Clone, Default)]
pub struct RepositoryQuery {
    pub registry_id: Option<String>,
    pub folder_id: Option<String>,
    pub name: Option<String>,
    pub descending: bool,
    pub start: PageStart,
    pub limit: i64,
}

/// A `google.rpc.Status`: why an operation or a scan failed, as a `google.rpc.Code`
/// number and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStatus {
    pub code: i32,
    pub message: String,
}

/// What an operation is about: its `metadata`, one variant per kind of call, each
/// naming the resource it acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationMetadata {
    Scan {
        scan_result_id: String,
    },
    CreateRegistry {
        registry_id: String,
    },
    UpdateRegistry {
        registry_id: String,
    },
    DeleteRegistry {
        registry_id: String,
    },
    UpsertRepository {
        repository_id: String,
    },
    DeleteRepository {
        repository_id: String,
    },
    DeleteImage {
        image_id: String,
    },
    CreateScanPolicy {
        scan_policy_id: String,
    },
    UpdateScanPolicy {
        scan_policy_id: String,
    },
    DeleteScanPolicy {
        scan_policy_id: String,
    },
    CreateLifecyclePolicy {
        lifecycle_policy_id: String,
    },
    UpdateLifecyclePolicy {
        lifecycle_policy_id: String,
    },
    DeleteLifecyclePolicy {
        lifecycle_policy_id: String,
    },
    DryRunLifecyclePolicy {
        dry_run_lifecycle_policy_result_id: String,
        lifecycle_policy_id: String,
    },
}

/// The resource an operation's metadata names, by its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSubject<'a> {
    ScanResult(&'a str),
    Registry(&'a str),
    Repository(&'a str),
    Image(&'a str),
    ScanPolicy(&'a str),
    LifecyclePolicy(&'a str),
    /// A dry run names its result and its policy.
    DryRun {
        result_id: &'a str,
        policy_id: &'a str,
    },
}

impl OperationMetadata {
    /// The one table of what each operation is called and names: the metadata
    /// message's name (`ScanMetadata`), the description as the hosted service words
    /// it, and the resource. REST and gRPC render metadata from it.
    fn parts(&self) -> (&'static str, &'static str, MetadataSubject<'_>) {
        use MetadataSubject as S;
        match self {
            OperationMetadata::Scan { scan_result_id } => {
                ("ScanMetadata", "Scan image", S::ScanResult(scan_result_id))
            }
            OperationMetadata::CreateRegistry { registry_id } => (
                "CreateRegistryMetadata",
                "Create registry",
                S::Registry(registry_id),
            ),
            OperationMetadata::UpdateRegistry { registry_id } => (
                "UpdateRegistryMetadata",
                "Update registry",
                S::Registry(registry_id),
            ),
            OperationMetadata::DeleteRegistry { registry_id } => (
                "DeleteRegistryMetadata",
                "Delete registry",
                S::Registry(registry_id),
            ),
            OperationMetadata::UpsertRepository { repository_id } => (
                "UpsertRepositoryMetadata",
                "Upsert repository",
                S::Repository(repository_id),
            ),
            OperationMetadata::DeleteRepository { repository_id } => (
                "DeleteRepositoryMetadata",
                "Delete repository",
                S::Repository(repository_id),
            ),
            OperationMetadata::DeleteImage { image_id } => {
                ("DeleteImageMetadata", "Delete image", S::Image(image_id))
            }
            OperationMetadata::CreateScanPolicy { scan_policy_id } => (
                "CreateScanPolicyMetadata",
                "Create scan policy",
                S::ScanPolicy(scan_policy_id),
            ),
            OperationMetadata::UpdateScanPolicy { scan_policy_id } => (
                "UpdateScanPolicyMetadata",
                "Update scan policy",
                S::ScanPolicy(scan_policy_id),
            ),
            OperationMetadata::DeleteScanPolicy { scan_policy_id } => (
                "DeleteScanPolicyMetadata",
                "Delete scan policy",
                S::ScanPolicy(scan_policy_id),
            ),
            OperationMetadata::CreateLifecyclePolicy {
                lifecycle_policy_id,
            } => (
                "CreateLifecyclePolicyMetadata",
                "Create lifecycle policy",
                S::LifecyclePolicy(lifecycle_policy_id),
            ),
            OperationMetadata::UpdateLifecyclePolicy {
                lifecycle_policy_id,
            } => (
                "UpdateLifecyclePolicyMetadata",
                "Update lifecycle policy",
                S::LifecyclePolicy(lifecycle_policy_id),
            ),
            OperationMetadata::DeleteLifecyclePolicy {
                lifecycle_policy_id,
            } => (
                "DeleteLifecyclePolicyMetadata",
                "Delete lifecycle policy",
                S::LifecyclePolicy(lifecycle_policy_id),
            ),
            OperationMetadata::DryRunLifecyclePolicy {
                dry_run_lifecycle_policy_result_id,
                lifecycle_policy_id,
            } => (
                "DryRunLifecyclePolicyMetadata",
                "Dry run lifecycle policy",
                S::DryRun {
                    result_id: dry_run_lifecycle_policy_result_id,
                    policy_id: lifecycle_policy_id,
                },
            ),
        }
    }

    /// The operation's description, as the hosted service words them.
    pub fn description(&self) -> &'static str {
        self.parts().1
    }

    /// The metadata message's name in `yandex.cloud.containerregistry.v1`.
    pub fn message_name(&self) -> &'static str {
        self.parts().0
    }

    /// The resource the operation acts on.
    pub fn subject(&self) -> MetadataSubject<'_> {
        self.parts().2
    }
}

/// What a finished operation answers with: its `response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationResponse {
    /// `google.protobuf.Empty` (deletes).
    Empty,
    Registry(Registry),
    Repository(Repository),
    ScanResult(ScanResult),
    ScanPolicy(ScanPolicy),
    LifecyclePolicy(LifecyclePolicy),
    DryRunResult(DryRunResult),
}

/// How an operation ended, or failed before ending: the oneof `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationResult {
    Response(Box<OperationResponse>),
    Error(ErrorStatus),
}

/// A long-running operation (contract §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub id: String,
    pub description: String,
    pub created_by: String,
    pub created_at: i64,
    pub modified_at: i64,
    pub done: bool,
    pub metadata: OperationMetadata,
    /// `None` while the operation runs; set once it is done (or failed).
    pub result: Option<OperationResult>,
}

impl Operation {
    /// An operation that finished at `at` with `response`, as the calls that act at
    /// once record it.
    pub fn finished(
        created_by: &str,
        at: i64,
        metadata: OperationMetadata,
        response: OperationResponse,
    ) -> Operation {
        Operation {
            id: crate::new_id(crate::IdKind::Operation),
            description: metadata.description().to_owned(),
            created_by: created_by.to_owned(),
            created_at: at,
            modified_at: at,
            done: true,
            metadata,
            result: Some(OperationResult::Response(Box::new(response))),
        }
    }

    /// An operation that has started and is not done yet.
    pub fn running(created_by: &str, at: i64, metadata: OperationMetadata) -> Operation {
        Operation {
            id: crate::new_id(crate::IdKind::Operation),
            description: metadata.description().to_owned(),
            created_by: created_by.to_owned(),
            created_at: at,
            modified_at: at,
            done: false,
            metadata,
            result: None,
        }
    }
}
