-- Lifecycle policies (one repository each, ACTIVE or DISABLED, rules kept whole as
-- the store's serde form of `LifecycleRule`s) and the results of their dry runs, with
-- the images each run would have deleted, kept as they were at the run.
CREATE TABLE lifecycle_policies (
    id TEXT PRIMARY KEY,
    repository_id TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    rules TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX lifecycle_policies_by_repository ON lifecycle_policies (repository_id, created_at, id);
CREATE INDEX lifecycle_policies_by_registry ON lifecycle_policies (registry_id, created_at, id);

CREATE TABLE lifecycle_dry_runs (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    affected_count BIGINT NOT NULL,
    affected_images TEXT NOT NULL
);
CREATE INDEX lifecycle_dry_runs_by_policy ON lifecycle_dry_runs (policy_id, run_at, id);
