//! The test run's PostgreSQL server, from `SICHSS_TEST_PG_URL` (scripts/test starts one
//! with scripts/postgres). Each test gets a schema of its own, with a random name, so
//! tests never see each other's rows.
//!
//! Without `SICHSS_TEST_PG_URL` a PostgreSQL test prints why it is skipped and passes,
//! unless `SICHSS_REQUIRE_PG` is set (as scripts/test sets it): then it fails.

#![allow(dead_code)]

use sichss::store::postgres::{PgLocation, PgStore};

/// The server's location, or `None` (after printing a skip notice) when not configured.
///
/// # Panics
/// When `SICHSS_REQUIRE_PG` is set and `SICHSS_TEST_PG_URL` is not, or the URL is invalid.
pub fn server() -> Option<PgLocation> {
    match std::env::var("SICHSS_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => {
            Some(PgLocation::parse(&url).expect("SICHSS_TEST_PG_URL is a postgres:// URL"))
        }
        _ => {
            if std::env::var_os("SICHSS_REQUIRE_PG").is_some() {
                panic!(
                    "SICHSS_REQUIRE_PG is set but SICHSS_TEST_PG_URL is not: start PostgreSQL \
                     with scripts/postgres start (scripts/test does) and export its URL"
                );
            }
            eprintln!(
                "SKIPPED: PostgreSQL test not run: SICHSS_TEST_PG_URL is not set \
                 (run ./scripts/test, or: export SICHSS_TEST_PG_URL=$(scripts/postgres start))"
            );
            None
        }
    }
}

/// A fresh schema name, `t_<16 hex digits>`.
pub fn schema_name() -> String {
    format!("t_{:016x}", rand_u64())
}

/// The test server with a fresh schema of its own.
pub fn fresh_location() -> Option<PgLocation> {
    server().map(|l| l.with_schema(&schema_name()).unwrap())
}

/// The test server's URL with a fresh schema (`…?schema=t_…`), for `sichss serve --store`.
pub fn fresh_url() -> Option<String> {
    server()?;
    let url = std::env::var("SICHSS_TEST_PG_URL").ok()?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}schema={}", schema_name()))
}

/// A migrated, empty store in a fresh schema.
pub async fn fresh_store() -> Option<PgStore> {
    let loc = fresh_location()?;
    Some(
        PgStore::open(&loc, 8)
            .await
            .expect("PostgreSQL test server reachable"),
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}
