-- Blob upload sessions (OCI chunked uploads). The session lives here so that the
-- chunks of one upload can reach different nodes: any node finds the session, checks
-- its owner, and takes the write lease before appending a chunk, so two chunks of one
-- upload are never written at once. The bytes themselves are staged in the blob
-- backend (a file under uploads/, or chunk objects in the bucket).
CREATE TABLE upload_sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    writer TEXT,
    writer_until BIGINT
);
