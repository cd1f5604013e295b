//! Embedded schema migrations, shared by SQLite and PostgreSQL.
//!
//! Each migration runs in its own transaction together with the row that
//! records it in `steward_migrations`, so a migration is either fully applied
//! and recorded or not at all. Concurrent migrators are serialised: on
//! PostgreSQL by a session advisory lock held on the migrating connection, on
//! SQLite by `BEGIN IMMEDIATE` (the database's single write lock), with the
//! "already applied?" check repeated inside the transaction.

use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::Backend;

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// In order of `version`. Add new files at the end; never edit an applied one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_conversations", sql: include_str!("../migrations/0001_conversations.sql") },
    Migration {
        version: 2,
        name: "0002_client_fingerprint",
        sql: include_str!("../migrations/0002_client_fingerprint.sql"),
    },
    Migration { version: 3, name: "0003_usage_ledger", sql: include_str!("../migrations/0003_usage_ledger.sql") },
    Migration { version: 4, name: "0004_audit_log", sql: include_str!("../migrations/0004_audit_log.sql") },
    Migration { version: 5, name: "0005_approvals", sql: include_str!("../migrations/0005_approvals.sql") },
    Migration { version: 6, name: "0006_entities", sql: include_str!("../migrations/0006_entities.sql") },
    Migration { version: 7, name: "0007_insights", sql: include_str!("../migrations/0007_insights.sql") },
    Migration { version: 8, name: "0008_tasks", sql: include_str!("../migrations/0008_tasks.sql") },
    Migration { version: 9, name: "0009_snapshots", sql: include_str!("../migrations/0009_snapshots.sql") },
    Migration { version: 10, name: "0010_run_logs", sql: include_str!("../migrations/0010_run_logs.sql") },
];

/// `pg_advisory_lock` key for migrations ("Steward\0" in ASCII).
const ADVISORY_LOCK_KEY: i64 = 0x5374_6577_6172_6400;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS steward_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// What went wrong, and during which step.
pub(crate) struct MigrateError {
    pub(crate) step: String,
    pub(crate) source: sqlx::Error,
}

fn at(step: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let step = step.into();
    move |source| MigrateError { step, source }
}

/// Applies every pending migration; returns the versions it applied.
pub(crate) async fn run(conn: &mut AnyConnection, backend: Backend, now_ms: i64) -> Result<Vec<i64>, MigrateError> {
    match backend {
        Backend::Sqlite => apply_pending(conn, backend, now_ms).await,
        Backend::Postgres => {
            conn.execute(sqlx::query("SELECT pg_advisory_lock($1)").bind(ADVISORY_LOCK_KEY))
                .await
                .map_err(at("taking the migration lock"))?;
            let result = apply_pending(conn, backend, now_ms).await;
            let unlocked = conn
                .execute(sqlx::query("SELECT pg_advisory_unlock($1)").bind(ADVISORY_LOCK_KEY))
                .await
                .map_err(at("releasing the migration lock"));
            // The lock is per session: the caller closes this connection
            // anyway, which releases it even if the unlock failed.
            let applied = result?;
            unlocked?;
            Ok(applied)
        }
    }
}

async fn apply_pending(conn: &mut AnyConnection, backend: Backend, now_ms: i64) -> Result<Vec<i64>, MigrateError> {
    conn.execute(CREATE_TABLE).await.map_err(at("creating steward_migrations"))?;

    let applied = conn
        .fetch_all("SELECT version FROM steward_migrations ORDER BY version")
        .await
        .and_then(|rows| rows.iter().map(|row| row.try_get::<i64, _>(0)).collect::<Result<Vec<i64>, _>>())
        .map_err(at("reading steward_migrations"))?;

    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let step = format!("applying migration {}", migration.name);
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
        .map_err(at(step.clone()))?;

        // Another process may have applied it since we looked.
        let already = tx
            .fetch_optional(
                sqlx::query("SELECT version FROM steward_migrations WHERE version = $1").bind(migration.version),
            )
            .await
            .map_err(at(step.clone()))?;
        if already.is_some() {
            tx.rollback().await.map_err(at(step.clone()))?;
            continue;
        }

        tx.execute(migration.sql).await.map_err(at(step.clone()))?;
        tx.execute(
            sqlx::query("INSERT INTO steward_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(now_ms),
        )
        .await
        .map_err(at(step.clone()))?;
        tx.commit().await.map_err(at(step))?;
        tracing::info!(version = migration.version, name = migration.name, "applied database migration");
        newly_applied.push(migration.version);
    }

    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&newest) = applied.iter().max() {
        if newest > known {
            tracing::warn!(
                database_version = newest,
                known_version = known,
                "the database schema is newer than this build of Steward knows; continuing"
            );
        }
    }
    Ok(newly_applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_strictly_increasing_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("{:04}_", m.version)), "{}", m.name);
        }
    }

    #[test]
    fn migrations_avoid_non_portable_sql() {
        for m in MIGRATIONS {
            let sql: String = m
                .sql
                .lines()
                .map(|line| line.split("--").next().unwrap_or_default().to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("\n");
            for word in ["AUTOINCREMENT", "SERIAL", "DATETIME", "TIMESTAMP"] {
                assert!(!sql.contains(word), "{} uses {word}", m.name);
            }
        }
    }
}
