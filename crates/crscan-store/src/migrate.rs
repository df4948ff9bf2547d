//! A small migration runner: each backend's SQL files are embedded in order and applied
//! once, recorded in `crscan_migrations`. The two folders must hold the same versions
//! (a test checks that).

use sqlx::AnyPool;

use crate::{Backend, StoreError};

/// The SQLite migrations, in order.
pub(crate) const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_registry.sql")),
    (2, include_str!("../migrations/sqlite/0002_scanner.sql")),
    (3, include_str!("../migrations/sqlite/0003_indexes.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_domain_values.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_cluster_tasks.sql"),
    ),
    (6, include_str!("../migrations/sqlite/0006_lifecycle.sql")),
    (7, include_str!("../migrations/sqlite/0007_access.sql")),
    (
        8,
        include_str!("../migrations/sqlite/0008_database_publications.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_upload_sessions.sql"),
    ),
];

/// The PostgreSQL migrations, in order.
pub(crate) const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_registry.sql")),
    (2, include_str!("../migrations/postgres/0002_scanner.sql")),
    (3, include_str!("../migrations/postgres/0003_indexes.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_domain_values.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_cluster_tasks.sql"),
    ),
    (6, include_str!("../migrations/postgres/0006_lifecycle.sql")),
    (7, include_str!("../migrations/postgres/0007_access.sql")),
    (
        8,
        include_str!("../migrations/postgres/0008_database_publications.sql"),
    ),
    (
        9,
        include_str!("../migrations/postgres/0009_upload_sessions.sql"),
    ),
];

/// Applies the migrations of `backend` that the database has not seen yet.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS crscan_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    for (version, sql) in migrations {
        let mut tx = pool.begin().await?;
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM crscan_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO crscan_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(migration.version = version, "applied store migration");
    }
    Ok(())
}
