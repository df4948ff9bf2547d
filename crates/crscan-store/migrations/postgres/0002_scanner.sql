-- The scanner: scan results with their vulnerabilities, scan policies, and the job
-- queue the scan workers take work from. Times are Unix milliseconds.
CREATE TABLE scan_results (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    repository_id TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    status BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    scanned_at BIGINT,
    critical BIGINT NOT NULL DEFAULT 0,
    high BIGINT NOT NULL DEFAULT 0,
    medium BIGINT NOT NULL DEFAULT 0,
    low BIGINT NOT NULL DEFAULT 0,
    negligible BIGINT NOT NULL DEFAULT 0,
    undefined BIGINT NOT NULL DEFAULT 0,
    manifest_digest TEXT,
    database_digest TEXT,
    error_code BIGINT,
    error_message TEXT
);
CREATE INDEX scan_results_image ON scan_results(image_id, created_at);
CREATE INDEX scan_results_repository ON scan_results(repository_id, created_at);
CREATE TABLE scan_vulnerabilities (
    scan_result_id TEXT NOT NULL REFERENCES scan_results(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    severity BIGINT NOT NULL,
    name TEXT NOT NULL,
    link TEXT NOT NULL,
    package TEXT NOT NULL,
    source TEXT NOT NULL,
    version TEXT NOT NULL,
    fixed_by TEXT NOT NULL,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (scan_result_id, position)
);
CREATE TABLE scan_policies (
    id TEXT PRIMARY KEY,
    registry_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    scan_result_id TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(state, run_after);
CREATE INDEX jobs_scan ON jobs(scan_result_id);
