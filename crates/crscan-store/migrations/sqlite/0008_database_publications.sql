-- Vulnerability databases published for a cluster (`crscan db update --publish`):
-- the file is a blob in the blob store under `digest` (SHA-256 of the file), and
-- nodes poll the newest row to fetch, check and swap in a newer database.
CREATE TABLE database_publications (
    digest TEXT PRIMARY KEY,
    content_digest TEXT NOT NULL,
    built_at BIGINT NOT NULL,
    advisories BIGINT NOT NULL,
    size BIGINT NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE INDEX database_publications_newest ON database_publications(published_at);
