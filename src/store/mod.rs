//! The subscriber store: a trait over domain types, with sled as the embedded default and
//! PostgreSQL as the store shared by several nodes ([`any::StoreLocation`] chooses).
//!
//! The Cx procedures (TS 29.228 §6) read a subscriber, decide, and write the changed
//! subscriber back through [`SubscriberStore::update`], which serialises concurrent
//! requests for one subscriber (so an SQN is never handed out twice) and returns only once
//! the change is durable (group commit: one flush covers every change waiting for it).
//!
//! Must not depend on: the codec, the Cx layer, the server. Backends must not leak their
//! own types (no `sled::IVec` or `sled::Error` in this interface).

pub mod any;
mod cache;
mod journal;
pub mod jsonl;
pub mod model;
pub mod postgres;
mod record;
pub mod secrets;
pub mod sled;
mod validate;
pub(crate) use cache::HashCache;
pub(crate) use validate::check_sic_impis;

use std::future::Future;
use std::sync::Arc;

pub use model::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No subscriber with this IMSI.
    #[error("no subscriber with IMSI {imsi}")]
    NotFound {
        /// The IMSI asked for.
        imsi: String,
    },
    /// A subscriber with this IMSI exists already.
    #[error("a subscriber with IMSI {imsi} exists already (update it, or remove it first)")]
    AlreadyExists {
        /// The IMSI.
        imsi: String,
    },
    /// An IMPI or IMPU is already owned by another subscriber.
    #[error("identity {identity} already belongs to subscriber {owner}")]
    IdentityConflict {
        /// The IMPI or IMPU.
        identity: String,
        /// IMSI of the subscriber that owns it.
        owner: String,
    },
    /// The subscriber record is not valid; names the field and the fix.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field at fault, e.g. `services.001.impi`.
        field: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// A stored record could not be read back.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The backend failed (I/O, database).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// Stored secrets cannot be decrypted: no secrets key is configured, or another one
    /// ([`secrets::EncryptingStore`]); the message names the setting and the fix.
    #[error("{0}")]
    Secrets(String),
}

/// The identities a subscriber record puts into a backend's indexes (IMPIs and IMPUs of
/// all its services); both backends move index entries by the difference of two of these.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Identities {
    pub(crate) impis: std::collections::BTreeSet<String>,
    pub(crate) impus: std::collections::BTreeSet<String>,
}

impl Identities {
    pub(crate) fn of(sub: &Subscriber) -> Self {
        Identities {
            impis: sub.services.values().map(|s| s.impi.clone()).collect(),
            impus: sub
                .services
                .values()
                .flat_map(|s| s.impus.iter().cloned())
                .collect(),
        }
    }

    /// Whether `a` and `b` have the same identities service by service, without copying
    /// them (which implies `of(a) == of(b)`). A service still shared between the two (an
    /// update copies only the service it changes) is the same without a look inside.
    pub(crate) fn same(a: &Subscriber, b: &Subscriber) -> bool {
        a.services.len() == b.services.len()
            && a.services
                .values()
                .zip(b.services.values())
                .all(|(x, y)| Shared::ptr_eq(x, y) || (x.impi == y.impi && x.impus == y.impus))
    }
}

/// Counters a backend keeps for /metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable flushes performed.
    pub flushes: u64,
    /// Changes made durable by those flushes.
    pub flushed_changes: u64,
}

/// A subscriber store. Implemented by `store::sled::SledStore` (embedded default) and
/// `store::postgres::PgStore` (shared by several nodes); one test battery
/// (`store_battery!`) runs against each.
pub trait SubscriberStore: Send + Sync + 'static {
    /// The subscriber with this IMSI.
    fn get(
        &self,
        imsi: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// The subscriber one of whose services has this IMPI (exact, normalised).
    fn find_by_impi(
        &self,
        impi: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// The subscriber one of whose services lists this IMPU (exact, normalised).
    fn find_by_impu(
        &self,
        impu: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// Adds a new subscriber; fails with `AlreadyExists` or `IdentityConflict`. Durable on return.
    fn create(&self, sub: Subscriber) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts or replaces a whole subscriber (import). Durable on return.
    fn put(&self, sub: Subscriber) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Runs `f` on the subscriber under its lock and writes the result back if it changed;
    /// durable on return. Concurrent updates of one subscriber run one after the other.
    /// Index entries (IMPI, IMPU) follow the change; a conflict leaves the subscriber as it was.
    fn update<T, F>(&self, imsi: &str, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        F: FnOnce(&mut Subscriber) -> T + Send,
        T: Send,
    {
        self.try_update(imsi, |sub| Ok(f(sub)))
    }

    /// Like [`update`](SubscriberStore::update) for an `f` that may refuse: when it returns
    /// an error nothing is written (whatever it changed is dropped) and the error is returned.
    /// The backend hands `f` its own working copy, so a wrapper (such as the secrets layer)
    /// needs no copy of its own.
    fn try_update<T, F>(
        &self,
        imsi: &str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        F: FnOnce(&mut Subscriber) -> Result<T, StoreError> + Send,
        T: Send;

    /// Removes a subscriber, returning it. Durable on return.
    fn delete(
        &self,
        imsi: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// Waits until every change to `imsi` that a read may have returned is durable: for an
    /// answer decided on a read alone (a SAR refresh that changes nothing), so that it
    /// never rests on a change a crash could still undo, as a no-op
    /// [`update`](SubscriberStore::update) does. The default, for a backend whose reads see
    /// only durable changes, returns at once.
    fn settled(&self, imsi: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = imsi;
        async { Ok(()) }
    }

    /// Like [`get`](SubscriberStore::get), sharing the record instead of copying it where
    /// the backend keeps records in memory (the Cx path reads through these). The default
    /// wraps `get`.
    fn get_shared(
        &self,
        imsi: &str,
    ) -> impl Future<Output = Result<Option<Arc<Subscriber>>, StoreError>> + Send {
        async move { Ok(self.get(imsi).await?.map(Arc::new)) }
    }

    /// Like [`find_by_impi`](SubscriberStore::find_by_impi), sharing the record.
    fn find_by_impi_shared(
        &self,
        impi: &str,
    ) -> impl Future<Output = Result<Option<Arc<Subscriber>>, StoreError>> + Send {
        async move { Ok(self.find_by_impi(impi).await?.map(Arc::new)) }
    }

    /// Like [`find_by_impu`](SubscriberStore::find_by_impu), sharing the record.
    fn find_by_impu_shared(
        &self,
        impu: &str,
    ) -> impl Future<Output = Result<Option<Arc<Subscriber>>, StoreError>> + Send {
        async move { Ok(self.find_by_impu(impu).await?.map(Arc::new)) }
    }

    /// Subscribers in IMSI order, after `after` (exclusive), at most `limit`.
    fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Subscriber>, StoreError>> + Send;

    /// Subscribers as the backend holds them, for backups (the export): like
    /// [`list`](SubscriberStore::list), but with secrets as stored (`enc:v1:` ciphertext
    /// when [`secrets::EncryptingStore`] encrypts them). The default is `list`.
    fn list_stored(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Subscriber>, StoreError>> + Send {
        self.list(after, limit)
    }

    /// Number of subscribers.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Flush counters.
    fn stats(&self) -> StoreStats;

    /// Whether a subscriber with this IMSI exists (import uses it to count replacements).
    /// The default reads the whole record; backends override it with a key lookup.
    fn contains(&self, imsi: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move { Ok(self.get(imsi).await?.is_some()) }
    }

    /// For each of `imsis`, whether a subscriber has it (a bulk import's count of replaced
    /// subscribers). The default asks [`contains`](Self::contains) for each; backends
    /// override it to ask once.
    fn contains_many(
        &self,
        imsis: &[&str],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(imsis.len());
            for imsi in imsis {
                out.push(self.contains(imsi).await?);
            }
            Ok(out)
        }
    }

    /// Inserts or replaces many subscribers (bulk import), each exactly as [`put`] would;
    /// durable on return. A failure (invalid record, identity conflict) leaves every
    /// subscriber either fully written or untouched, but records before the failing one may
    /// have been written. The default calls `put` in a loop; backends override it to write
    /// in batches under one flush.
    ///
    /// [`put`]: SubscriberStore::put
    fn put_many(
        &self,
        subs: Vec<Subscriber>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for sub in subs {
                self.put(sub).await?;
            }
            Ok(())
        }
    }
}
