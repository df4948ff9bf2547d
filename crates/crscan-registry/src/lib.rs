//! OCI distribution semantics: uploads, manifests, tags, referrers, deletes, garbage collection.
