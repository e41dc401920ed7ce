//! The PostgreSQL subscriber store: the shared store of several sichss nodes.
//!
//! # Schema (`migrations/`, applied by [`migrate`])
//!
//! | table              | key                    | value                                       |
//! |--------------------|------------------------|---------------------------------------------|
//! | `subscribers`      | `imsi`                 | `record jsonb`: the [`Subscriber`] (serde)   |
//! | `subscriber_impis` | `impi` (PRIMARY KEY)   | `imsi` of the subscriber whose service has it |
//! | `subscriber_impus` | `impu` (PRIMARY KEY)   | `imsi` of the subscriber listing it          |
//! | `sichss_migrations`| `version`              | the migrations applied                      |
//!
//! The index tables reference `subscribers` with `ON DELETE CASCADE`; their primary keys
//! make an identity owned by one subscriber only. The cluster tables of `002_cluster` are
//! used by [`crate::cluster`], not by this store.
//!
//! # Guarantees (the same as the sled store's)
//!
//! - **Serialised per subscriber, across nodes.** [`SubscriberStore::update`] reads the
//!   record with `SELECT … FOR UPDATE` inside a transaction, runs the closure, writes the
//!   result and commits: a second writer of the same subscriber, on this node or another,
//!   waits for the row lock and then reads the committed result. So an SQN is never
//!   handed out twice. Other subscribers' rows are not locked.
//! - **Durable on return.** Every writing method returns after `COMMIT` has returned,
//!   which with PostgreSQL's default `synchronous_commit = on` means the commit record is
//!   flushed to the WAL (PostgreSQL groups concurrent commits into one flush itself).
//! - **Identity conflicts are refused atomically.** New identities are claimed with
//!   `INSERT … ON CONFLICT DO NOTHING` and then checked for another owner; a conflict
//!   rolls the whole transaction back and names the identity and its owner. A concurrent
//!   claim of the same identity waits on the unique index and is then seen.
//! - **Corrupt records** (JSON that is not a [`Subscriber`]) are reported as `Corrupt`
//!   by reads and updates; `put` and `delete` still replace or remove them, since the
//!   index rows are found by IMSI.
//!
//! [`SubscriberStore::stats`] counts committed write transactions as `flushes` and the
//! subscribers they changed as `flushed_changes`.
//!
//! Must not depend on: the codec, the Cx layer, the server; no tokio-postgres type leaves
//! this module except through [`PgStore::pool`] (for [`crate::cluster`]).

pub mod location;
pub mod migrate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use location::PgLocation;
pub use migrate::{migrate, MigrateReport};

use super::{check_sic_impis, Identities, StoreError, StoreStats, Subscriber, SubscriberStore};

/// Default number of pooled connections of one store.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Subscribers written per transaction by [`SubscriberStore::put_many`].
const PUT_MANY_BATCH: usize = 1000;

/// The error text of a tokio-postgres error with its causes (the server's message).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.to_string().replace('\n', "; ");
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn backend(what: &str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {what} failed: {}", describe(&e)))
}

/// What can fail inside a transaction: the store's own refusal, or the database.
enum TxError {
    Store(StoreError),
    Pg(&'static str, tokio_postgres::Error),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl TxError {
    fn into_store(self) -> StoreError {
        match self {
            TxError::Store(e) => e,
            TxError::Pg(what, e) => backend(what, e),
        }
    }
}

/// Tags a tokio-postgres result with what was being done.
trait Doing<T> {
    fn doing(self, what: &'static str) -> Result<T, TxError>;
}

impl<T> Doing<T> for Result<T, tokio_postgres::Error> {
    fn doing(self, what: &'static str) -> Result<T, TxError> {
        self.map_err(|e| TxError::Pg(what, e))
    }
}

/// The PostgreSQL-backed [`SubscriberStore`]; see the module documentation.
pub struct PgStore {
    pool: Pool,
    location: PgLocation,
    writes: AtomicU64,
    changes: AtomicU64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, applies pending migrations and returns the store, with a pool of
    /// `pool_size` connections.
    ///
    /// # Errors
    /// `Backend` when the database cannot be reached or refuses a migration; the message
    /// shows the location with its password hidden.
    pub async fn open(location: &PgLocation, pool_size: usize) -> Result<PgStore, StoreError> {
        let store = Self::connect_unchecked(location, pool_size)?;
        migrate::migrate_store(&store).await?;
        Ok(store)
    }

    /// Connects to a database already migrated to this sichss's schema version.
    ///
    /// # Errors
    /// `Backend` when unreachable or not migrated (the message says to run
    /// `sichss migrate`).
    pub async fn connect(location: &PgLocation, pool_size: usize) -> Result<PgStore, StoreError> {
        let store = Self::connect_unchecked(location, pool_size)?;
        let client = store.client().await?;
        let version = migrate::current_version(&client).await?;
        if version != migrate::latest_version() {
            return Err(StoreError::Backend(format!(
                "the database at {location} has schema version {version}, this sichss needs \
                 {}; run: sichss migrate --store <the same URL>",
                migrate::latest_version()
            )));
        }
        drop(client);
        Ok(store)
    }

    /// A store whose pool connects lazily, without checking or migrating the schema
    /// (for `sichss migrate`).
    ///
    /// # Errors
    /// `Backend` when the pool cannot be built.
    pub fn connect_unmigrated(
        location: &PgLocation,
        pool_size: usize,
    ) -> Result<PgStore, StoreError> {
        Self::connect_unchecked(location, pool_size)
    }

    fn connect_unchecked(location: &PgLocation, pool_size: usize) -> Result<PgStore, StoreError> {
        let manager = Manager::from_config(
            location.config().clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| {
                StoreError::Backend(format!("postgres: cannot build a connection pool: {e}"))
            })?;
        Ok(PgStore {
            pool,
            location: location.clone(),
            writes: AtomicU64::new(0),
            changes: AtomicU64::new(0),
        })
    }

    /// Where the store is (password hidden when displayed).
    pub fn location(&self) -> &PgLocation {
        &self.location
    }

    /// The connection pool (the cluster coordination shares it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let why = match &e {
                deadpool_postgres::PoolError::Backend(e) => describe(e),
                other => other.to_string(),
            };
            StoreError::Backend(format!(
                "postgres: cannot get a connection to {}: {why}",
                self.location
            ))
        })
    }

    fn committed(&self, changes: u64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(changes, Ordering::Relaxed);
    }

    /// Runs a read statement returning `(imsi, record)` rows, decoded.
    async fn read_rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        what: &'static str,
    ) -> Result<Vec<(String, Result<Subscriber, StoreError>)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| backend(what, e))?;
        let rows = client
            .query(&stmt, params)
            .await
            .map_err(|e| backend(what, e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let imsi: String = r.get(0);
                let text: String = r.get(1);
                let sub = decode(&imsi, &text);
                (imsi, sub)
            })
            .collect())
    }

    /// Looks an identity up in `index` and returns its owner, checking that the owner's
    /// record lists it.
    async fn find_by(
        &self,
        sql: &str,
        index: &str,
        identity: &str,
        listed: impl Fn(&Subscriber) -> bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        let rows = self
            .read_rows(sql, &[&identity], "looking up an identity")
            .await?;
        let Some((imsi, sub)) = rows.into_iter().next() else {
            return Ok(None);
        };
        let sub = sub?;
        if listed(&sub) {
            Ok(Some(sub))
        } else {
            Err(StoreError::Corrupt {
                key: format!("{index}/{identity}"),
                reason: format!("points to IMSI {imsi}, whose record does not list it"),
            })
        }
    }
}

/// The two index tables, in the order conflicts are checked.
const INDEXES: [(&str, &str); 2] = [("subscriber_impis", "impi"), ("subscriber_impus", "impu")];

/// Moves the index rows of `imsi` from `old` (`None`: unknown, e.g. a corrupt record) to
/// `new`, refusing identities owned by another subscriber. Runs inside the caller's
/// transaction; a refusal must roll it back.
async fn reindex(
    tx: &deadpool_postgres::Transaction<'_>,
    imsi: &str,
    old: Option<&Identities>,
    new: &Identities,
) -> Result<(), TxError> {
    for (i, (table, column)) in INDEXES.iter().enumerate() {
        let (old_ids, new_ids) = match i {
            0 => (old.map(|o| &o.impis), &new.impis),
            _ => (old.map(|o| &o.impus), &new.impus),
        };
        let added: Vec<&String> = match old_ids {
            Some(o) => new_ids.difference(o).collect(),
            None => new_ids.iter().collect(),
        };
        if !added.is_empty() {
            let claim = format!(
                "INSERT INTO {table} ({column}, imsi) SELECT unnest($1::text[]), $2 \
                 ON CONFLICT ({column}) DO NOTHING"
            );
            let stmt = tx
                .prepare_cached(&claim)
                .await
                .doing("claiming identities")?;
            tx.execute(&stmt, &[&added, &imsi])
                .await
                .doing("claiming identities")?;
            let check = format!(
                "SELECT {column}, imsi FROM {table} WHERE {column} = ANY($1) AND imsi <> $2 \
                 ORDER BY {column} LIMIT 1"
            );
            let stmt = tx
                .prepare_cached(&check)
                .await
                .doing("checking identities")?;
            if let Some(row) = tx
                .query_opt(&stmt, &[&added, &imsi])
                .await
                .doing("checking identities")?
            {
                return Err(TxError::Store(StoreError::IdentityConflict {
                    identity: row.get(0),
                    owner: row.get(1),
                }));
            }
        }
        let removes = match old_ids {
            Some(o) => o.difference(new_ids).next().is_some(),
            None => true,
        };
        if removes {
            let keep: Vec<&String> = new_ids.iter().collect();
            let release =
                format!("DELETE FROM {table} WHERE imsi = $1 AND NOT ({column} = ANY($2))");
            let stmt = tx
                .prepare_cached(&release)
                .await
                .doing("releasing identities")?;
            tx.execute(&stmt, &[&imsi, &keep])
                .await
                .doing("releasing identities")?;
        }
    }
    Ok(())
}

const SELECT_FOR_UPDATE: &str = "SELECT record::text FROM subscribers WHERE imsi = $1 FOR UPDATE";
const UPSERT: &str = "INSERT INTO subscribers (imsi, record) VALUES ($1, $2::text::jsonb) \
     ON CONFLICT (imsi) DO UPDATE SET record = EXCLUDED.record, updated_at = now()";

impl SubscriberStore for PgStore {
    async fn get(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        let rows = self
            .read_rows(
                "SELECT imsi, record::text FROM subscribers WHERE imsi = $1",
                &[&imsi],
                "reading a subscriber",
            )
            .await?;
        rows.into_iter().next().map(|(_, s)| s).transpose()
    }

    async fn find_by_impi(&self, impi: &str) -> Result<Option<Subscriber>, StoreError> {
        self.find_by(
            "SELECT s.imsi, s.record::text FROM subscriber_impis i \
             JOIN subscribers s ON s.imsi = i.imsi WHERE i.impi = $1",
            "subscriber_impis",
            impi,
            |s| s.service_by_impi(impi).is_some(),
        )
        .await
    }

    async fn find_by_impu(&self, impu: &str) -> Result<Option<Subscriber>, StoreError> {
        self.find_by(
            "SELECT s.imsi, s.record::text FROM subscriber_impus i \
             JOIN subscribers s ON s.imsi = i.imsi WHERE i.impu = $1",
            "subscriber_impus",
            impu,
            |s| s.has_impu(impu),
        )
        .await
    }

    async fn create(&self, sub: Subscriber) -> Result<(), StoreError> {
        sub.validate()?;
        let text = encode(&sub)?;
        let mut client = self.client().await?;
        let result: Result<(), TxError> = async {
            let tx = client.transaction().await.doing("creating a subscriber")?;
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO subscribers (imsi, record) VALUES ($1, $2::text::jsonb) \
                     ON CONFLICT (imsi) DO NOTHING",
                )
                .await
                .doing("creating a subscriber")?;
            let n = tx
                .execute(&stmt, &[&sub.imsi, &text])
                .await
                .doing("creating a subscriber")?;
            if n == 0 {
                return Err(TxError::Store(StoreError::AlreadyExists {
                    imsi: sub.imsi.clone(),
                }));
            }
            reindex(
                &tx,
                &sub.imsi,
                Some(&Identities::default()),
                &Identities::of(&sub),
            )
            .await?;
            tx.commit().await.doing("committing a new subscriber")?;
            Ok(())
        }
        .await;
        result.map_err(TxError::into_store)?;
        self.committed(1);
        Ok(())
    }

    async fn put(&self, sub: Subscriber) -> Result<(), StoreError> {
        sub.validate()?;
        let text = encode(&sub)?;
        let mut client = self.client().await?;
        let result: Result<(), TxError> = async {
            let tx = client.transaction().await.doing("writing a subscriber")?;
            let stmt = tx
                .prepare_cached(SELECT_FOR_UPDATE)
                .await
                .doing("writing a subscriber")?;
            let old = match tx
                .query_opt(&stmt, &[&sub.imsi])
                .await
                .doing("writing a subscriber")?
            {
                None => Some(Identities::default()),
                Some(row) => match decode(&sub.imsi, row.get(0)) {
                    Ok(old) => Some(Identities::of(&old)),
                    Err(e) => {
                        tracing::warn!(error = %e, "replacing a corrupt subscriber record");
                        None
                    }
                },
            };
            let stmt = tx
                .prepare_cached(UPSERT)
                .await
                .doing("writing a subscriber")?;
            tx.execute(&stmt, &[&sub.imsi, &text])
                .await
                .doing("writing a subscriber")?;
            reindex(&tx, &sub.imsi, old.as_ref(), &Identities::of(&sub)).await?;
            tx.commit().await.doing("committing a subscriber")?;
            Ok(())
        }
        .await;
        result.map_err(TxError::into_store)?;
        self.committed(1);
        Ok(())
    }

    async fn try_update<T, F>(&self, imsi: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Subscriber) -> Result<T, StoreError> + Send,
        T: Send,
    {
        let mut client = self.client().await?;
        let result: Result<(T, bool), TxError> = async {
            let tx = client.transaction().await.doing("updating a subscriber")?;
            let stmt = tx
                .prepare_cached(SELECT_FOR_UPDATE)
                .await
                .doing("updating a subscriber")?;
            let row = tx
                .query_opt(&stmt, &[&imsi])
                .await
                .doing("locking a subscriber")?
                .ok_or_else(|| StoreError::NotFound {
                    imsi: imsi.to_owned(),
                })?;
            let old = decode(imsi, row.get(0))?;
            let mut new = old.clone();
            // Refused: dropping the transaction rolls it back.
            let out = f(&mut new)?;
            if new == old {
                // Nothing to write; dropping the transaction rolls it back.
                return Ok((out, false));
            }
            if new.imsi != old.imsi {
                return Err(TxError::Store(StoreError::Invalid {
                    field: "imsi".to_owned(),
                    problem: format!(
                        "an update cannot change the IMSI (the key) from {} to {}; \
                         delete and create instead",
                        old.imsi, new.imsi
                    ),
                }));
            }
            let text = encode(&new)?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE subscribers SET record = $2::text::jsonb, updated_at = now() \
                     WHERE imsi = $1",
                )
                .await
                .doing("updating a subscriber")?;
            tx.execute(&stmt, &[&imsi, &text])
                .await
                .doing("updating a subscriber")?;
            if !Identities::same(&old, &new) {
                check_sic_impis(&new)?;
                reindex(
                    &tx,
                    imsi,
                    Some(&Identities::of(&old)),
                    &Identities::of(&new),
                )
                .await?;
            }
            tx.commit().await.doing("committing an update")?;
            Ok((out, true))
        }
        .await;
        let (out, wrote) = result.map_err(TxError::into_store)?;
        if wrote {
            self.committed(1);
        }
        Ok(out)
    }

    async fn delete(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        let client = self.client().await?;
        // One statement: the index rows go with it (ON DELETE CASCADE), atomically.
        let stmt = client
            .prepare_cached("DELETE FROM subscribers WHERE imsi = $1 RETURNING record::text")
            .await
            .map_err(|e| backend("deleting a subscriber", e))?;
        let row = client
            .query_opt(&stmt, &[&imsi])
            .await
            .map_err(|e| backend("deleting a subscriber", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.committed(1);
        match decode(imsi, row.get(0)) {
            Ok(old) => Ok(Some(old)),
            Err(_) => Ok(None),
        }
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            Some(after) => {
                self.read_rows(
                    "SELECT imsi, record::text FROM subscribers WHERE imsi > $1 \
                     ORDER BY imsi LIMIT $2",
                    &[&after, &limit],
                    "listing subscribers",
                )
                .await?
            }
            None => {
                self.read_rows(
                    "SELECT imsi, record::text FROM subscribers ORDER BY imsi LIMIT $1",
                    &[&limit],
                    "listing subscribers",
                )
                .await?
            }
        };
        rows.into_iter().map(|(_, s)| s).collect()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM subscribers", &[])
            .await
            .map_err(|e| backend("counting subscribers", e))?;
        let n: i64 = row.get(0);
        Ok(n as u64)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            flushes: self.writes.load(Ordering::Relaxed),
            flushed_changes: self.changes.load(Ordering::Relaxed),
        }
    }

    async fn contains(&self, imsi: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT 1 FROM subscribers WHERE imsi = $1")
            .await
            .map_err(|e| backend("reading a subscriber", e))?;
        Ok(client
            .query_opt(&stmt, &[&imsi])
            .await
            .map_err(|e| backend("reading a subscriber", e))?
            .is_some())
    }

    async fn contains_many(&self, imsis: &[&str]) -> Result<Vec<bool>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT imsi FROM subscribers WHERE imsi = ANY($1)")
            .await
            .map_err(|e| backend("reading subscribers", e))?;
        let rows = client
            .query(&stmt, &[&imsis])
            .await
            .map_err(|e| backend("reading subscribers", e))?;
        let found: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(imsis.iter().map(|i| found.contains(*i)).collect())
    }

    /// Writes in transactions of up to 1000 subscribers (in IMSI order, so concurrent
    /// imports lock rows in the same order). Later duplicates of an IMSI win. On failure
    /// the batches before the failing one are committed; the failing one is not.
    async fn put_many(&self, subs: Vec<Subscriber>) -> Result<(), StoreError> {
        let mut last: HashMap<String, Subscriber> = HashMap::with_capacity(subs.len());
        for s in subs {
            last.insert(s.imsi.clone(), s);
        }
        let mut subs: Vec<Subscriber> = last.into_values().collect();
        subs.sort_by(|a, b| a.imsi.cmp(&b.imsi));
        for batch in subs.chunks(PUT_MANY_BATCH) {
            self.put_batch(batch).await?;
        }
        Ok(())
    }
}

impl PgStore {
    /// Validates and writes one batch of distinct subscribers in one transaction.
    async fn put_batch(&self, batch: &[Subscriber]) -> Result<(), StoreError> {
        let mut imsis = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut ids: [(Vec<String>, Vec<String>); 2] = Default::default();
        for sub in batch {
            sub.validate()?;
            imsis.push(sub.imsi.clone());
            records.push(encode(sub)?);
            let own = Identities::of(sub);
            for (i, set) in [own.impis, own.impus].into_iter().enumerate() {
                for id in set {
                    ids[i].0.push(id);
                    ids[i].1.push(sub.imsi.clone());
                }
            }
        }
        let mut client = self.client().await?;
        let result: Result<(), TxError> = async {
            const WHAT: &str = "writing a batch of subscribers";
            let tx = client.transaction().await.doing(WHAT)?;
            tx.execute(
                "SELECT 1 FROM subscribers WHERE imsi = ANY($1) ORDER BY imsi FOR UPDATE",
                &[&imsis],
            )
            .await
            .doing(WHAT)?;
            tx.execute(
                "INSERT INTO subscribers (imsi, record) \
                 SELECT i, r::jsonb FROM unnest($1::text[], $2::text[]) AS t(i, r) \
                 ON CONFLICT (imsi) DO UPDATE SET record = EXCLUDED.record, updated_at = now()",
                &[&imsis, &records],
            )
            .await
            .doing(WHAT)?;
            for ((table, column), (id, owner)) in INDEXES.iter().zip(&ids) {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE imsi = ANY($1)"),
                    &[&imsis],
                )
                .await
                .doing(WHAT)?;
                tx.execute(
                    &format!(
                        "INSERT INTO {table} ({column}, imsi) \
                         SELECT * FROM unnest($1::text[], $2::text[]) \
                         ON CONFLICT ({column}) DO NOTHING"
                    ),
                    &[id, owner],
                )
                .await
                .doing(WHAT)?;
                let conflict = tx
                    .query_opt(
                        &format!(
                            "SELECT n.id, i.imsi FROM unnest($1::text[], $2::text[]) AS n(id, imsi) \
                             JOIN {table} i ON i.{column} = n.id WHERE i.imsi <> n.imsi \
                             ORDER BY n.id LIMIT 1"
                        ),
                        &[id, owner],
                    )
                    .await
                    .doing(WHAT)?;
                if let Some(row) = conflict {
                    return Err(TxError::Store(StoreError::IdentityConflict {
                        identity: row.get(0),
                        owner: row.get(1),
                    }));
                }
            }
            tx.commit().await.doing("committing a batch of subscribers")?;
            Ok(())
        }
        .await;
        result.map_err(TxError::into_store)?;
        self.committed(batch.len() as u64);
        Ok(())
    }
}

fn encode(sub: &Subscriber) -> Result<String, StoreError> {
    serde_json::to_string(sub).map_err(|e| StoreError::Invalid {
        field: "subscriber".to_owned(),
        problem: format!("cannot be serialised: {e}"),
    })
}

fn decode(imsi: &str, text: &str) -> Result<Subscriber, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        key: format!("subscribers/{imsi}"),
        reason: format!("not a valid subscriber record: {e}"),
    })
}
