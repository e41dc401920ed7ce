//! Schema migrations of the PostgreSQL store: the SQL files of `migrations/` in the
//! repository, compiled in, applied in order and recorded in table `sichss_migrations`.
//!
//! `sichss migrate --store postgres://…` applies the pending ones, and so does `sichss
//! serve` at start. Nodes starting together do not race: the migrating session holds an
//! advisory lock (one per schema) while it reads and applies, and each migration runs in
//! its own transaction with its row in `sichss_migrations`, so a failed one leaves no
//! trace. A database migrated by a newer sichss (a version this one does not know) is
//! refused, as the sled store refuses an unknown layout.

use tokio_postgres::Client;

use super::{describe, StoreError};

/// One migration: its number, its file name (without `.sql`) and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version number, from the file name's `NNN_` prefix.
    pub version: i32,
    /// File name without the extension, e.g. `001_subscribers`.
    pub name: &'static str,
    /// The SQL, run as one batch in one transaction.
    pub sql: &'static str,
}

/// Every migration, in order (one per file of `migrations/`).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_subscribers",
        sql: include_str!("../../../migrations/001_subscribers.sql"),
    },
    Migration {
        version: 2,
        name: "002_cluster",
        sql: include_str!("../../../migrations/002_cluster.sql"),
    },
];

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Names of the migrations applied now, in order.
    pub applied: Vec<&'static str>,
    /// The schema version after the run.
    pub version: i32,
}

/// The newest schema version this sichss knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

fn backend(what: &str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {what} failed: {}", describe(&e)))
}

/// Applies every pending migration to the store's database (and schema).
///
/// # Errors
/// As [`migrate`], or `Backend` when no connection can be had.
pub async fn migrate_store(store: &super::PgStore) -> Result<MigrateReport, StoreError> {
    let mut client = store.client().await?;
    migrate(&mut client, store.location().schema()).await
}

/// Applies every pending migration, creating `schema` first when given.
///
/// # Errors
/// `Backend` when the database refuses a statement (the message names the migration) or
/// holds a newer schema than this sichss knows.
pub async fn migrate(
    client: &mut Client,
    schema: Option<&str>,
) -> Result<MigrateReport, StoreError> {
    let lock_key = format!("sichss-migrate:{}", schema.unwrap_or(""));
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_key])
        .await
        .map_err(|e| backend("taking the migration lock", e))?;
    // "already exists, skipping" notices are expected here.
    let _ = client
        .batch_execute("SET client_min_messages = warning")
        .await;
    let result = migrate_locked(client, schema).await;
    let _ = client.batch_execute("RESET client_min_messages").await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_key])
        .await;
    let report = result?;
    unlock.map_err(|e| backend("releasing the migration lock", e))?;
    Ok(report)
}

async fn migrate_locked(
    client: &mut Client,
    schema: Option<&str>,
) -> Result<MigrateReport, StoreError> {
    if let Some(schema) = schema {
        // The name was checked to be a plain lower-case identifier.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| backend(&format!("creating schema {schema}"), e))?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sichss_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|e| backend("creating table sichss_migrations", e))?;
    let current = current_version(client).await?;
    if current > latest_version() {
        return Err(StoreError::Backend(format!(
            "the database schema is at version {current}, newer than this sichss knows \
             ({}); run a sichss at least as new as the one that migrated it",
            latest_version()
        )));
    }
    let mut report = MigrateReport {
        applied: Vec::new(),
        version: current,
    };
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let what = format!("migration {}", m.name);
        let tx = client.transaction().await.map_err(|e| backend(&what, e))?;
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| backend(&what, e))?;
        tx.execute(
            "INSERT INTO sichss_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(|e| backend(&what, e))?;
        tx.commit().await.map_err(|e| backend(&what, e))?;
        tracing::info!(migration = m.name, "applied a schema migration");
        report.applied.push(m.name);
        report.version = m.version;
    }
    Ok(report)
}

/// The highest migration recorded, 0 for none (or no `sichss_migrations` table).
pub async fn current_version(client: &Client) -> Result<i32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('sichss_migrations') IS NOT NULL", &[])
        .await
        .map_err(|e| backend("reading the schema version", e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM sichss_migrations",
            &[],
        )
        .await
        .map_err(|e| backend("reading the schema version", e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, listed, "add each migrations/NNN_*.sql to MIGRATIONS");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert_eq!(m.name[..3].parse::<i32>().unwrap(), m.version);
        }
    }
}
