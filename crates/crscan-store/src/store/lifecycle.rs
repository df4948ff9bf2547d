//! Lifecycle policies: which images of a repository are deleted automatically, and
//! the results of dry runs. A policy belongs to one repository, is `ACTIVE` or
//! `DISABLED`, and holds rules; [`lifecycle_victims`] is the one evaluation of those
//! rules (pure: the images and "now" in, the images to delete out), used by dry runs
//! and by the scheduler's runs alike.
//!
//! How rules pick images (the hosted service's documentation, with crscan's choices
//! where it leaves a point open; ARCHITECTURE.md says the same):
//! - a rule's filter: `tag_regexp` takes images with a tag it matches as a whole
//!   (`^(?:re)$`), `untagged` images with no tag; a rule with both takes either;
//! - of the images its filter takes, the `retained_top` newest (by push time, then
//!   digest) are kept, and of the rest only those pushed at least `expire_period`
//!   before "now" are picked (no `expire_period`: all of the rest);
//! - several rules combine as a union: an image is deleted when any rule picks it;
//! - an image whose manifest is listed by an index (or manifest list) of the same
//!   repository that stays is never deleted, however the rules pick it; nor is an
//!   artifact (a signature, an SBOM) whose `subject` is an image that stays.

use std::collections::HashSet;
use std::str::FromStr;

use crscan_model::Digest;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::model::{BlobRef, Image};
use crate::store::Store;

/// One day, the unit `expire_period` must be a multiple of.
pub const LIFECYCLE_DAY_SECONDS: i64 = 24 * 3600;

/// `LifecyclePolicy.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleStatus {
    Active,
    Disabled,
}

impl LifecycleStatus {
    /// The enum value's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            LifecycleStatus::Active => "ACTIVE",
            LifecycleStatus::Disabled => "DISABLED",
        }
    }

    /// The status named `name` (`ACTIVE`, `DISABLED`).
    pub fn parse(name: &str) -> Option<LifecycleStatus> {
        match name {
            "ACTIVE" => Some(LifecycleStatus::Active),
            "DISABLED" => Some(LifecycleStatus::Disabled),
            _ => None,
        }
    }
}

/// Why a lifecycle rule was refused; the message names the field (the caller puts the
/// rule's place in the request in front: `rules[0].expirePeriod …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleRuleError {
    #[error("expirePeriod {0}s is not a multiple of 24 hours (86400s)")]
    ExpirePeriod(i64),
    #[error("retainedTop {0} is negative")]
    RetainedTop(i64),
    #[error("tagRegexp {pattern:?} is not a regular expression: {reason}")]
    TagRegexp { pattern: String, reason: String },
    #[error("tagRegexp is longer than 256 characters")]
    TagRegexpLength,
    #[error("description is longer than 256 characters")]
    Description,
    #[error("has neither tagRegexp nor untagged, so it would pick no image")]
    NoFilter,
}

/// One rule of a lifecycle policy, checked by [`LifecycleRule::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    description: String,
    /// 0: no age condition.
    expire_period_seconds: i64,
    tag_regexp: String,
    untagged: bool,
    retained_top: i64,
}

impl LifecycleRule {
    /// A rule, refused when `expire_period_seconds` is not a multiple of 24 hours
    /// (0 means none), `retained_top` is negative, `tag_regexp` does not compile, or
    /// neither `tag_regexp` nor `untagged` is given.
    pub fn new(
        description: String,
        expire_period_seconds: i64,
        tag_regexp: String,
        untagged: bool,
        retained_top: i64,
    ) -> Result<LifecycleRule, LifecycleRuleError> {
        if expire_period_seconds < 0 || expire_period_seconds % LIFECYCLE_DAY_SECONDS != 0 {
            return Err(LifecycleRuleError::ExpirePeriod(expire_period_seconds));
        }
        if retained_top < 0 {
            return Err(LifecycleRuleError::RetainedTop(retained_top));
        }
        if description.chars().count() > 256 {
            return Err(LifecycleRuleError::Description);
        }
        if tag_regexp.chars().count() > 256 {
            return Err(LifecycleRuleError::TagRegexpLength);
        }
        if !tag_regexp.is_empty() {
            full_match(&tag_regexp).map_err(|error| LifecycleRuleError::TagRegexp {
                pattern: tag_regexp.clone(),
                reason: error.to_string(),
            })?;
        }
        if tag_regexp.is_empty() && !untagged {
            return Err(LifecycleRuleError::NoFilter);
        }
        Ok(LifecycleRule {
            description,
            expire_period_seconds,
            tag_regexp,
            untagged,
            retained_top,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Seconds; 0 when the rule has no age condition.
    pub fn expire_period_seconds(&self) -> i64 {
        self.expire_period_seconds
    }

    pub fn tag_regexp(&self) -> &str {
        &self.tag_regexp
    }

    pub fn untagged(&self) -> bool {
        self.untagged
    }

    pub fn retained_top(&self) -> i64 {
        self.retained_top
    }
}

/// `tag_regexp` as a whole-tag match.
fn full_match(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

/// A lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    pub id: String,
    pub repository_id: String,
    /// The repository's registry, kept so that policies list by registry.
    pub registry_id: String,
    pub name: String,
    pub description: String,
    pub status: LifecycleStatus,
    pub rules: Vec<LifecycleRule>,
    pub created_at: i64,
}

/// What a policy listing is ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LifecyclePolicyOrder {
    #[default]
    CreatedAt,
    Name,
    Status,
}

/// Which lifecycle policies to list: a repository's or a registry's (empty: any),
/// optionally only those named `name`, in an order, `limit` from `offset`.
#[derive(Debug, Clone, Default)]
pub struct LifecyclePolicyQuery {
    pub repository_id: String,
    pub registry_id: String,
    pub name: Option<String>,
    pub order: LifecyclePolicyOrder,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// The result of a dry run: when it ran and how many images it would have deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunResult {
    pub id: String,
    pub policy_id: String,
    pub run_at: i64,
    pub affected_count: i64,
}

/// The images of one repository that `rules` pick at `now` (Unix milliseconds), by
/// image id, in the order of `images`. `images` are all the images of the repository:
/// an index among them that stays protects the manifests it lists.
pub fn lifecycle_victims(rules: &[LifecycleRule], images: &[Image], now: i64) -> Vec<String> {
    let mut picked: HashSet<&str> = HashSet::new();
    for rule in rules {
        // A rule that does not compile picks nothing (rules are checked when stored).
        let pattern = if rule.tag_regexp.is_empty() {
            None
        } else {
            match full_match(&rule.tag_regexp) {
                Ok(pattern) => Some(pattern),
                Err(_) => continue,
            }
        };
        let mut matching: Vec<&Image> = images
            .iter()
            .filter(|image| {
                (rule.untagged && image.tags.is_empty())
                    || pattern
                        .as_ref()
                        .is_some_and(|pattern| image.tags.iter().any(|tag| pattern.is_match(tag)))
            })
            .collect();
        // Newest first; the same push time is ordered by digest, so that the images
        // retained are the same on every run.
        matching.sort_by(|left, right| {
            right
                .created_at
                .cmp(&left.created_at)
                .then_with(|| right.digest.cmp(&left.digest))
        });
        let retained = usize::try_from(rule.retained_top).unwrap_or(usize::MAX);
        let expire_ms = rule.expire_period_seconds.saturating_mul(1000);
        for image in matching.into_iter().skip(retained) {
            if now.saturating_sub(image.created_at) >= expire_ms {
                picked.insert(image.id.as_str());
            }
        }
    }
    // An index that stays keeps every manifest it lists, and an image that stays keeps
    // the artifacts that refer to it (signatures, SBOMs: their `subject`); a kept child
    // that is itself an index keeps its own children, so repeat until nothing changes.
    loop {
        let kept: Vec<&Image> = images
            .iter()
            .filter(|image| !picked.contains(image.id.as_str()))
            .collect();
        let listed_by_kept: HashSet<&Digest> = kept
            .iter()
            .flat_map(|image| image.children.iter().map(|child| &child.digest))
            .collect();
        let kept_digests: HashSet<&Digest> = kept.iter().map(|image| &image.digest).collect();
        let protected: Vec<&str> = images
            .iter()
            .filter(|image| {
                picked.contains(image.id.as_str())
                    && (listed_by_kept.contains(&image.digest)
                        || image
                            .subject
                            .as_ref()
                            .is_some_and(|subject| kept_digests.contains(subject)))
            })
            .map(|image| image.id.as_str())
            .collect();
        if protected.is_empty() {
            break;
        }
        for id in protected {
            picked.remove(id);
        }
    }
    images
        .iter()
        .filter(|image| picked.contains(image.id.as_str()))
        .map(|image| image.id.clone())
        .collect()
}

/// An image as a dry run keeps it: what the API shows of an image, so that the
/// result still answers after the image is gone.
#[derive(Serialize, Deserialize)]
struct KeptImage {
    id: String,
    repository_id: String,
    name: String,
    digest: String,
    media_type: String,
    manifest_size: i64,
    config: Option<KeptBlob>,
    layers: Vec<KeptBlob>,
    tags: Vec<String>,
    compressed_size: i64,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct KeptBlob {
    id: String,
    digest: String,
    size: i64,
    media_type: String,
}

impl KeptBlob {
    fn from(blob: &BlobRef) -> KeptBlob {
        KeptBlob {
            id: blob.id.clone(),
            digest: blob.digest.to_string(),
            size: blob.size,
            media_type: blob.media_type.clone(),
        }
    }

    fn into_blob(self) -> Result<BlobRef, StoreError> {
        Ok(BlobRef {
            id: self.id,
            digest: Digest::from_str(&self.digest)
                .map_err(|_| StoreError::Corrupt(self.digest.clone()))?,
            size: self.size,
            media_type: self.media_type,
        })
    }
}

impl KeptImage {
    fn from(image: &Image) -> KeptImage {
        KeptImage {
            id: image.id.clone(),
            repository_id: image.repository_id.clone(),
            name: image.name.clone(),
            digest: image.digest.to_string(),
            media_type: image.media_type.clone(),
            manifest_size: image.manifest_size,
            config: image.config.as_ref().map(KeptBlob::from),
            layers: image.layers.iter().map(KeptBlob::from).collect(),
            tags: image.tags.clone(),
            compressed_size: image.compressed_size,
            created_at: image.created_at,
        }
    }

    fn into_image(self) -> Result<Image, StoreError> {
        Ok(Image {
            id: self.id,
            repository_id: self.repository_id,
            name: self.name,
            digest: Digest::from_str(&self.digest)
                .map_err(|_| StoreError::Corrupt(self.digest.clone()))?,
            media_type: self.media_type,
            manifest_size: self.manifest_size,
            artifact_type: None,
            subject: None,
            config: self.config.map(KeptBlob::into_blob).transpose()?,
            layers: self
                .layers
                .into_iter()
                .map(KeptBlob::into_blob)
                .collect::<Result<_, _>>()?,
            children: Vec::new(),
            tags: self.tags,
            compressed_size: self.compressed_size,
            created_at: self.created_at,
        })
    }
}

fn policy_from_row(row: &AnyRow) -> Result<LifecyclePolicy, StoreError> {
    let status: String = row.try_get("status")?;
    let rules: String = row.try_get("rules")?;
    Ok(LifecyclePolicy {
        id: row.try_get("id")?,
        repository_id: row.try_get("repository_id")?,
        registry_id: row.try_get("registry_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: LifecycleStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("lifecycle policy status {status}")))?,
        rules: serde_json::from_str(&rules).map_err(|_| StoreError::Corrupt(rules.clone()))?,
        created_at: row.try_get("created_at")?,
    })
}

fn dry_run_from_row(row: &AnyRow) -> Result<DryRunResult, StoreError> {
    Ok(DryRunResult {
        id: row.try_get("id")?,
        policy_id: row.try_get("policy_id")?,
        run_at: row.try_get("run_at")?,
        affected_count: row.try_get("affected_count")?,
    })
}

fn rules_text(rules: &[LifecycleRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    pub async fn create_lifecycle_policy(
        &self,
        policy: &LifecyclePolicy,
    ) -> Result<LifecyclePolicy, StoreError> {
        let _gate = self.write_lock().await;
        sqlx::query(
            "INSERT INTO lifecycle_policies \
             (id, repository_id, registry_id, name, description, status, rules, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(policy.id.clone())
        .bind(policy.repository_id.clone())
        .bind(policy.registry_id.clone())
        .bind(policy.name.clone())
        .bind(policy.description.clone())
        .bind(policy.status.name().to_owned())
        .bind(rules_text(&policy.rules))
        .bind(policy.created_at)
        .execute(&self.pool)
        .await?;
        Ok(policy.clone())
    }

    pub async fn get_lifecycle_policy(&self, id: &str) -> Result<LifecyclePolicy, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT * FROM lifecycle_policies WHERE id = $1",
                "lifecycle policy",
                id,
            )
            .await?;
        policy_from_row(&row)
    }

    /// Policies of a repository, or of a registry (empty: any), oldest first, `limit`
    /// from `offset`.
    pub async fn list_lifecycle_policies(
        &self,
        repository_id: &str,
        registry_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<LifecyclePolicy>, StoreError> {
        self.query_lifecycle_policies(&LifecyclePolicyQuery {
            repository_id: repository_id.to_owned(),
            registry_id: registry_id.to_owned(),
            offset,
            limit,
            ..LifecyclePolicyQuery::default()
        })
        .await
    }

    /// Policies as `query` asks: its scope, name, order and page.
    pub async fn query_lifecycle_policies(
        &self,
        query: &LifecyclePolicyQuery,
    ) -> Result<Vec<LifecyclePolicy>, StoreError> {
        let column = match query.order {
            LifecyclePolicyOrder::CreatedAt => "created_at",
            LifecyclePolicyOrder::Name => "name",
            LifecyclePolicyOrder::Status => "status",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT * FROM lifecycle_policies WHERE ($1 = '' OR repository_id = $1) \
             AND ($2 = '' OR registry_id = $2) AND ($3 = '' OR name = $3) \
             ORDER BY {column} {direction}, id {direction} LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(query.repository_id.clone())
            .bind(query.registry_id.clone())
            .bind(query.name.clone().unwrap_or_default())
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Every `ACTIVE` policy, as the scheduler's run applies them.
    pub async fn active_lifecycle_policies(&self) -> Result<Vec<LifecyclePolicy>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM lifecycle_policies WHERE status = $1 ORDER BY created_at, id",
        )
        .bind(LifecycleStatus::Active.name().to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Replaces a policy's name, description, status and rules.
    pub async fn update_lifecycle_policy(
        &self,
        policy: &LifecyclePolicy,
    ) -> Result<LifecyclePolicy, StoreError> {
        let _gate = self.write_lock().await;
        let result = sqlx::query(
            "UPDATE lifecycle_policies SET name = $1, description = $2, status = $3, rules = $4 \
             WHERE id = $5",
        )
        .bind(policy.name.clone())
        .bind(policy.description.clone())
        .bind(policy.status.name().to_owned())
        .bind(rules_text(&policy.rules))
        .bind(policy.id.clone())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "lifecycle policy",
                key: policy.id.clone(),
            });
        }
        Ok(policy.clone())
    }

    /// Deletes a policy and its dry-run results.
    pub async fn delete_lifecycle_policy(&self, id: &str) -> Result<(), StoreError> {
        let _gate = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM lifecycle_dry_runs WHERE policy_id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query("DELETE FROM lifecycle_policies WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "lifecycle policy",
                key: id.to_owned(),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a dry run's result with the images it would have deleted, as they are
    /// now.
    pub async fn insert_dry_run(
        &self,
        result: &DryRunResult,
        images: &[Image],
    ) -> Result<DryRunResult, StoreError> {
        let kept: Vec<KeptImage> = images.iter().map(KeptImage::from).collect();
        let text = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned());
        let _gate = self.write_lock().await;
        sqlx::query(
            "INSERT INTO lifecycle_dry_runs (id, policy_id, run_at, affected_count, affected_images) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(result.id.clone())
        .bind(result.policy_id.clone())
        .bind(result.run_at)
        .bind(result.affected_count)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(result.clone())
    }

    pub async fn get_dry_run(&self, id: &str) -> Result<DryRunResult, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT id, policy_id, run_at, affected_count FROM lifecycle_dry_runs WHERE id = $1",
                "dry run lifecycle policy result",
                id,
            )
            .await?;
        dry_run_from_row(&row)
    }

    /// Dry-run results of a policy (empty: of every policy), newest first.
    pub async fn list_dry_runs(
        &self,
        policy_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<DryRunResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, policy_id, run_at, affected_count FROM lifecycle_dry_runs \
             WHERE ($1 = '' OR policy_id = $1) ORDER BY run_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(policy_id.to_owned())
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dry_run_from_row).collect()
    }

    /// The images a dry run would have deleted, as they were at the run.
    pub async fn dry_run_images(&self, id: &str) -> Result<Vec<Image>, StoreError> {
        let row = self
            .fetch_by_key(
                "SELECT affected_images FROM lifecycle_dry_runs WHERE id = $1",
                "dry run lifecycle policy result",
                id,
            )
            .await?;
        let text: String = row.try_get("affected_images")?;
        let kept: Vec<KeptImage> =
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt(text.clone()))?;
        kept.into_iter().map(KeptImage::into_image).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = LIFECYCLE_DAY_SECONDS * 1000;

    fn digest(seed: &str) -> Digest {
        let hex: String = seed
            .bytes()
            .cycle()
            .take(64)
            .map(|byte| char::from(b"0123456789abcdef"[usize::from(byte % 16)]))
            .collect();
        Digest::from_str(&format!("sha256:{hex}")).expect("a valid digest")
    }

    fn image(id: &str, tags: &[&str], created_at: i64) -> Image {
        Image {
            id: id.to_owned(),
            repository_id: "crt1".to_owned(),
            name: "crp1/app".to_owned(),
            digest: digest(id),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            manifest_size: 100,
            artifact_type: None,
            subject: None,
            config: None,
            layers: Vec::new(),
            children: Vec::new(),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            compressed_size: 0,
            created_at,
        }
    }

    fn rule(
        expire_days: i64,
        tag_regexp: &str,
        untagged: bool,
        retained_top: i64,
    ) -> LifecycleRule {
        LifecycleRule::new(
            String::new(),
            expire_days * LIFECYCLE_DAY_SECONDS,
            tag_regexp.to_owned(),
            untagged,
            retained_top,
        )
        .expect("a valid rule")
    }

    /// The issue's repository: v1..v5 pushed in order, two untagged images and
    /// `stable`, all pushed `days_ago` days before now.
    fn repository(now: i64, days_ago: i64) -> Vec<Image> {
        let at = |minute: i64| now - days_ago * DAY_MS - (10 - minute) * 60_000;
        vec![
            image("v1", &["v1"], at(1)),
            image("v2", &["v2"], at(2)),
            image("v3", &["v3"], at(3)),
            image("v4", &["v4"], at(4)),
            image("v5", &["v5"], at(5)),
            image("u1", &[], at(6)),
            image("u2", &[], at(7)),
            image("stable", &["stable"], at(8)),
        ]
    }

    #[test]
    fn rules_pick_the_union_of_what_each_picks() {
        let now = 1_800_000_000_000;
        let rules = [rule(0, "v.*", false, 2), rule(0, "", true, 0)];
        assert_eq!(
            lifecycle_victims(&rules, &repository(now, 0), now),
            ["v1", "v2", "v3", "u1", "u2"]
        );
        // Each rule alone.
        assert_eq!(
            lifecycle_victims(&rules[..1], &repository(now, 0), now),
            ["v1", "v2", "v3"]
        );
        assert_eq!(
            lifecycle_victims(&rules[1..], &repository(now, 0), now),
            ["u1", "u2"]
        );
    }

    #[test]
    fn tag_regexp_matches_whole_tags() {
        let now = 1_800_000_000_000;
        let images = vec![
            image("a", &["v1"], now),
            image("b", &["dev-v1"], now),
            image("c", &["v1-rc", "other"], now),
        ];
        assert_eq!(
            lifecycle_victims(&[rule(0, "v1", false, 0)], &images, now),
            ["a"]
        );
        assert_eq!(
            lifecycle_victims(&[rule(0, "v1.*", false, 0)], &images, now),
            ["a", "c"]
        );
        // Any of an image's tags may match.
        assert_eq!(
            lifecycle_victims(&[rule(0, "oth.r", false, 0)], &images, now),
            ["c"]
        );
    }

    #[test]
    fn expire_period_leaves_young_images_alone() {
        let now = 1_800_000_000_000;
        let rules = [rule(2, "v.*", false, 0), rule(2, "", true, 0)];
        assert!(lifecycle_victims(&rules, &repository(now, 1), now).is_empty());
        assert_eq!(
            lifecycle_victims(&rules, &repository(now, 3), now),
            ["v1", "v2", "v3", "v4", "v5", "u1", "u2"]
        );
        // Two days exactly after the push is old enough.
        let images = vec![image("x", &["v9"], now - 2 * DAY_MS)];
        assert_eq!(lifecycle_victims(&rules, &images, now), ["x"]);
        assert!(lifecycle_victims(&rules, &images, now - 1).is_empty());
        // retained_top keeps the newest even when they are old.
        assert_eq!(
            lifecycle_victims(&[rule(2, "v.*", false, 4)], &repository(now, 3), now),
            ["v1"]
        );
    }

    #[test]
    fn an_index_that_stays_keeps_its_manifests() {
        let now = 1_800_000_000_000;
        let child = image("child", &[], now);
        let mut index = image("index", &["stable"], now);
        index.children.push(BlobRef {
            id: "crb1".to_owned(),
            digest: child.digest.clone(),
            size: 100,
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        });
        let images = vec![child, index, image("loose", &[], now)];
        let untagged = [rule(0, "", true, 0)];
        assert_eq!(lifecycle_victims(&untagged, &images, now), ["loose"]);
        // When the index goes too, its manifests may go.
        let everything = [rule(0, "", true, 0), rule(0, ".*", false, 0)];
        assert_eq!(
            lifecycle_victims(&everything, &images, now),
            ["child", "index", "loose"]
        );
    }

    #[test]
    fn an_image_that_stays_keeps_its_referrers() {
        let now = 1_800_000_000_000;
        let kept = image("kept", &["stable"], now);
        let mut signature = image("signature", &[], now);
        signature.subject = Some(kept.digest.clone());
        let gone = image("gone", &[], now);
        let mut orphan = image("orphan", &[], now);
        orphan.subject = Some(gone.digest.clone());
        let images = vec![kept, signature, gone, orphan];
        assert_eq!(
            lifecycle_victims(&[rule(0, "", true, 0)], &images, now),
            ["gone", "orphan"]
        );
    }

    #[test]
    fn rules_are_checked_naming_the_field() {
        let error = LifecycleRule::new(String::new(), 3600, "v.*".to_owned(), false, 0)
            .expect_err("an hour is not a day");
        assert_eq!(
            error.to_string(),
            "expirePeriod 3600s is not a multiple of 24 hours (86400s)"
        );
        assert!(LifecycleRule::new(String::new(), 0, "v(".to_owned(), false, 0).is_err());
        assert!(LifecycleRule::new(String::new(), 0, String::new(), false, 0).is_err());
        assert!(LifecycleRule::new(String::new(), 0, "v.*".to_owned(), false, -1).is_err());
        assert!(LifecycleRule::new(String::new(), 172_800, String::new(), true, 3).is_ok());
    }
}
