-- Access bindings (a role bound to a subject on a registry or a repository, by the
-- resource's ID), IP permissions of registries (PULL or PUSH allowed from an address
-- or a CIDR range), and whether a registry was created `secure`.
CREATE TABLE access_bindings (
    resource_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    PRIMARY KEY (resource_id, role_id, subject_type, subject_id)
);
CREATE TABLE ip_permissions (
    registry_id TEXT NOT NULL,
    action TEXT NOT NULL,
    ip TEXT NOT NULL,
    PRIMARY KEY (registry_id, action, ip)
);
ALTER TABLE registries ADD COLUMN secure BIGINT NOT NULL DEFAULT 0;
