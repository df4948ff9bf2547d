//! Domain operations that only a browsing reader asks for (the web console,
//! `crate::ui`): every registry, repositories with their image counts, each image's
//! newest scan in one query, an image's layers with the commands that made them, its
//! inventory, all of a scan's findings, and a scan as a report document. They check
//! roles as the Container Registry calls do and reuse those calls where one answers
//! the question ([`Service::list_vulnerabilities`], the scan policy calls), so the
//! console and the API never disagree.

use crscan_model::{Digest, Finding, Inventory};
use crscan_report::sbom::{Generator, SbomDocument, Subject, SubjectLayer};
use crscan_report::scan::{DatabaseSummary, ScanDocument};
use crscan_store::{
    Image, Operation, PageStart, RepositorySummary, ScanResult, ScanRules, ScanScope, StoreError,
};
use serde_json::Value;

use super::{ADMIN, Call, ListRequest, NewScanPolicy, PUSH, READ, SCAN, ScanPolicyUpdate, Service};
use crate::auth::Principal;
use crate::errors::ApiError;

/// The largest image config the console reads for its layer history.
const MAX_CONFIG_BYTES: i64 = 4 << 20;

/// What a caller may do, so that a page offers only the actions its token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Push and delete images.
    pub push: bool,
    /// Start and cancel scans.
    pub scan: bool,
    /// Edit scan policies.
    pub admin: bool,
}

/// One layer of an image with the history entry that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerHistory {
    pub digest: Digest,
    pub size: i64,
    pub media_type: String,
    /// The config's `history[].created_by` of the layer (empty when not recorded).
    pub created_by: String,
    pub diff_id: Option<Digest>,
}

/// What an image's config says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub created: Option<String>,
    pub layers: Vec<LayerHistory>,
}

impl Service {
    /// The actions `principal` may take.
    pub fn capabilities(&self, principal: &Principal) -> Capabilities {
        Capabilities {
            push: principal.has_any(PUSH),
            scan: principal.has_any(SCAN),
            admin: principal.has_any(ADMIN),
        }
    }

    /// Whether `principal` may read at all.
    pub fn may_read(&self, principal: &Principal) -> Result<(), ApiError> {
        Ok(principal.require(READ)?)
    }

    /// Every registry, by name (at most 1,000: a folder holds one registry).
    pub async fn all_registries(
        &self,
        principal: &Principal,
    ) -> Result<Vec<crscan_store::Registry>, ApiError> {
        principal.require(READ)?;
        let mut registries = self
            .store()
            .list_registries(None, None, &PageStart::default(), 1000)
            .await?;
        registries.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(registries)
    }

    /// A registry's repositories with their image counts and last push.
    pub async fn repository_summaries(
        &self,
        principal: &Principal,
        registry_id: &str,
    ) -> Result<Vec<RepositorySummary>, ApiError> {
        principal.require(READ)?;
        super::check_id("registryId", registry_id)?;
        Ok(self.store().repository_summaries(registry_id).await?)
    }

    /// Each image's newest finished scan in `scope` (what GetLast answers per image).
    pub async fn latest_scan_results(
        &self,
        principal: &Principal,
        scope: &ScanScope,
    ) -> Result<Vec<ScanResult>, ApiError> {
        principal.require(READ)?;
        Ok(self.store().latest_scan_results(scope).await?)
    }

    /// The scans queued or running in `scope`.
    pub async fn running_scan_results(
        &self,
        principal: &Principal,
        scope: &ScanScope,
    ) -> Result<Vec<ScanResult>, ApiError> {
        principal.require(READ)?;
        Ok(self.store().running_scan_results(scope).await?)
    }

    /// Scan jobs by state (`queued`, `running`, …).
    pub async fn job_counts(&self, principal: &Principal) -> Result<Vec<(String, i64)>, ApiError> {
        principal.require(READ)?;
        Ok(self.store().job_counts().await?)
    }

    /// Every image of a repository (at most `limit`), newest push first, through
    /// ListImages.
    pub async fn repository_images(
        &self,
        principal: &Principal,
        repository_name: &str,
        limit: i64,
    ) -> Result<Vec<Image>, ApiError> {
        let mut images = Vec::new();
        let mut list = ListRequest {
            page_size: limit.clamp(1, 1000),
            order_by: "createdAt desc".to_owned(),
            ..ListRequest::default()
        };
        loop {
            let page = self
                .list_images(principal, "", repository_name, "", &list)
                .await?;
            images.extend(page.items);
            if page.next_page_token.is_empty() || images.len() as i64 >= limit {
                break;
            }
            list.page_token = page.next_page_token;
        }
        Ok(images)
    }

    /// Every finding of a scan that `filter` (ListVulnerabilities' filter, empty
    /// for all) selects, through ListVulnerabilities, page by page.
    pub async fn all_vulnerabilities(
        &self,
        principal: &Principal,
        scan_result_id: &str,
        filter: &str,
    ) -> Result<Vec<Finding>, ApiError> {
        let mut findings = Vec::new();
        let mut list = ListRequest {
            page_size: 1000,
            filter: filter.to_owned(),
            ..ListRequest::default()
        };
        loop {
            let page = self
                .list_vulnerabilities(principal, scan_result_id, &list)
                .await?;
            findings.extend(page.items);
            if page.next_page_token.is_empty() {
                break;
            }
            list.page_token = page.next_page_token;
        }
        Ok(findings)
    }

    /// What the image's config says: platform, creation time and, for each layer,
    /// the history entry that made it (empty-layer entries skipped, as the OCI image
    /// spec's `history[].empty_layer` says).
    pub async fn image_config(
        &self,
        principal: &Principal,
        image: &Image,
    ) -> Result<ImageConfig, ApiError> {
        principal.require(READ)?;
        let mut config = ImageConfig::default();
        let parsed = match &image.config {
            Some(blob) if blob.size <= MAX_CONFIG_BYTES => {
                match self.registry().blobs().read_all(&blob.digest).await {
                    Ok(bytes) => serde_json::from_slice::<Value>(&bytes).ok(),
                    Err(error) => {
                        tracing::warn!(%error, image.digest = %image.digest, "image config unreadable");
                        None
                    }
                }
            }
            _ => None,
        };
        let parsed = parsed.unwrap_or(Value::Null);
        let text = |value: &Value| value.as_str().map(str::to_owned);
        config.os = text(&parsed["os"]);
        config.architecture = text(&parsed["architecture"]);
        config.created = text(&parsed["created"]);
        let commands: Vec<String> = parsed["history"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| entry["empty_layer"] != Value::Bool(true))
                    .map(|entry| entry["created_by"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let diff_ids: Vec<Option<Digest>> = parsed["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|id| id.as_str().and_then(|id| id.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        config.layers = image
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| LayerHistory {
                digest: layer.digest.clone(),
                size: layer.size,
                media_type: layer.media_type.clone(),
                created_by: commands.get(index).cloned().unwrap_or_default(),
                diff_id: diff_ids.get(index).cloned().flatten(),
            })
            .collect();
        Ok(config)
    }

    /// The inventory (SBOM) of the manifest a scan read, as this node's scan cache
    /// holds it; `None` before a scan on this node. The cache is a file: it is read
    /// off the async threads.
    pub async fn image_inventory(
        &self,
        principal: &Principal,
        manifest_digest: &Digest,
    ) -> Result<Option<Inventory>, ApiError> {
        principal.require(READ)?;
        let Some(scanner) = self.scanner.clone() else {
            return Ok(None);
        };
        let digest = manifest_digest.clone();
        tokio::task::spawn_blocking(move || scanner.cached_inventory(&digest))
            .await
            .map_err(|error| ApiError::internal(format!("reading the inventory failed: {error}")))
    }

    /// A finished scan as a report document, for the renderers of `crscan-report`
    /// (JSON, CSV, CycloneDX, SARIF), as `crscan scan` renders a local scan.
    /// `database_built_at` is the build time of the database the scan used, when the
    /// caller knows it.
    pub async fn scan_document(
        &self,
        principal: &Principal,
        scan_result_id: &str,
        database_built_at: Option<i64>,
    ) -> Result<ScanDocument, ApiError> {
        let result = self.get_scan_result(principal, scan_result_id).await?;
        let image = self.get_image(principal, &result.image_id).await?;
        let findings = self
            .all_vulnerabilities(principal, scan_result_id, "")
            .await?;
        let config = self.image_config(principal, &image).await?;
        let manifest_digest = result
            .manifest_digest
            .as_deref()
            .and_then(|digest| digest.parse::<Digest>().ok())
            .unwrap_or_else(|| image.digest.clone());
        let inventory = self
            .image_inventory(principal, &manifest_digest)
            .await?
            .unwrap_or_default();
        let subject = Subject {
            name: format!("{}@{}", image.name, image.digest),
            manifest_digest: Some(image.digest.clone()),
            config_digest: image.config.as_ref().map(|blob| blob.digest.clone()),
            repo_tags: image
                .tags
                .iter()
                .map(|tag| format!("{}:{tag}", image.name))
                .collect(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            created: config.created.clone(),
            layers: config
                .layers
                .iter()
                .map(|layer| SubjectLayer {
                    digest: layer.digest.clone(),
                    diff_id: layer.diff_id.clone(),
                    size: u64::try_from(layer.size).unwrap_or(0),
                    media_type: layer.media_type.clone(),
                })
                .collect(),
        };
        let generator = Generator {
            tool_name: "crscan".to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_unix_seconds: result.scanned_at.unwrap_or(result.created_at) / 1000,
        };
        Ok(ScanDocument {
            sbom: SbomDocument::new(subject, inventory, generator),
            database: DatabaseSummary {
                digest: result.database_digest.clone().unwrap_or_default(),
                built_at: database_built_at.unwrap_or(0),
            },
            findings,
            ignored: Vec::new(),
        })
    }

    /// Sets a registry's scan rules: updates its policy's rules, or creates the
    /// policy, through the ScanPolicyService calls.
    pub async fn set_scan_rules(
        &self,
        call: &Call,
        registry_id: &str,
        rules: ScanRules,
    ) -> Result<Operation, ApiError> {
        call.principal.require(ADMIN)?;
        super::check_id("registryId", registry_id)?;
        match self.store().get_scan_policy_by_registry(registry_id).await {
            Ok(policy) => {
                let update = ScanPolicyUpdate {
                    update_mask: Some(vec!["rules".to_owned()]),
                    rules: Some(rules),
                    ..ScanPolicyUpdate::default()
                };
                self.update_scan_policy(call, &policy.id, update).await
            }
            Err(StoreError::NotFound { .. }) => {
                let new = NewScanPolicy {
                    registry_id: registry_id.to_owned(),
                    name: String::new(),
                    description: String::new(),
                    rules: Some(rules),
                };
                self.create_scan_policy(call, new).await
            }
            Err(error) => Err(error.into()),
        }
    }
}
