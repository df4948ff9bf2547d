//! Metadata and job queue behind one domain API, on SQLite and PostgreSQL.
