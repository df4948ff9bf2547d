-- A scan's findings are kept whole, as the matcher made them (the `finding` column,
-- the store's serde form of crscan_model::Finding), with the columns the API filters
-- and orders on beside them; the API's renderings are made from the finding when it
-- is listed. Rows of the old table held the API's strings only and cannot become
-- findings, so they go, and every READY result is marked as matched against no
-- database: the scheduler re-matches each image's inventory (from the layer cache)
-- at the next start, which writes its findings anew.
DROP TABLE scan_vulnerabilities;
CREATE TABLE scan_vulnerabilities (
    scan_result_id TEXT NOT NULL REFERENCES scan_results(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    severity BIGINT NOT NULL,
    name TEXT NOT NULL,
    package TEXT NOT NULL,
    finding TEXT NOT NULL,
    PRIMARY KEY (scan_result_id, position)
);
UPDATE scan_results SET database_digest = '' WHERE status = 2;
