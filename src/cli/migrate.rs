//! `sichss migrate --store postgres://…`: applies the pending schema migrations of the
//! PostgreSQL store (`migrations/` in the repository) and reports them. `sichss serve`
//! applies them at start too; this command lets an operator do it beforehand, alone.

use crate::store::any::StoreLocation;
use crate::store::postgres::{migrate, PgStore};

/// Flags of `sichss migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The PostgreSQL store: `postgres://[user[:password]@]host[:port]/db[?schema=NAME]`.
    #[arg(long, env = "SICHSS_STORE", hide_env_values = true, value_name = "URL")]
    pub store: String,
}

/// Applies the pending migrations; returns the line to print.
///
/// # Errors
/// The URL is not a PostgreSQL URL, or the database refuses a migration.
pub async fn run(args: MigrateArgs) -> Result<String, String> {
    let location = match StoreLocation::parse(&args.store).map_err(|e| e.to_string())? {
        StoreLocation::Postgres(l) => *l,
        StoreLocation::Sled(_) => {
            return Err("store.url: a sled store has no schema to migrate; \
                        give a postgres://… URL"
                .to_owned())
        }
    };
    let store = PgStore::connect_unmigrated(&location, 1).map_err(|e| e.to_string())?;
    let report = migrate::migrate_store(&store)
        .await
        .map_err(|e| format!("{location}: {e}"))?;
    Ok(if report.applied.is_empty() {
        format!("{location}: schema up to date (version {})", report.version)
    } else {
        format!(
            "{location}: applied {}; schema version {}",
            report.applied.join(", "),
            report.version
        )
    })
}
