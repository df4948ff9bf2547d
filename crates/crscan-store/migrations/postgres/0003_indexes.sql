-- Indexes for the scan queue and operations: the claim walks queued jobs in
-- (run_after, created_at) order; a cancel finds a scan result by its operation.
CREATE INDEX jobs_claim ON jobs(state, run_after, created_at);
CREATE INDEX scan_results_operation ON scan_results(operation_id);
