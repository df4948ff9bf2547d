-- Registries, repositories, images with their blobs and tags, blob links per
-- repository, and the operations of mutating calls. Times are Unix milliseconds.
CREATE TABLE registries (
    id TEXT PRIMARY KEY,
    folder_id TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    status BIGINT NOT NULL,
    labels TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE repositories (
    id TEXT PRIMARY KEY,
    registry_id TEXT NOT NULL REFERENCES registries(id),
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX repositories_registry ON repositories(registry_id);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    repository_id TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    manifest_size BIGINT NOT NULL,
    artifact_type TEXT,
    subject_digest TEXT,
    compressed_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX images_subject ON images(repository_id, subject_digest);
CREATE TABLE image_blobs (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    role TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL
);
CREATE INDEX image_blobs_image ON image_blobs(image_id);
CREATE INDEX image_blobs_digest ON image_blobs(digest);
CREATE TABLE tags (
    repository_id TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE repository_blobs (
    repository_id TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    done BIGINT NOT NULL,
    metadata TEXT,
    error TEXT,
    response TEXT,
    idempotency_key TEXT UNIQUE
);
