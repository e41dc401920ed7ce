//! The store chosen by configuration: sled in a directory, or PostgreSQL at a URL, behind
//! one type the composition root hands to the Cx application and the API.
//!
//! ```text
//! sled:DIR                                   the embedded store in directory DIR
//! postgres://[user[:password]@]host[:port]/database[?schema=NAME]
//! ```
//!
//! [`AnyStore`] dispatches each [`SubscriberStore`] call to its backend with a `match`, so
//! the Cx code stays generic and unchanged; the cost is one branch per call.
//!
//! Must not depend on: the codec, the Cx layer, the server.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::postgres::{PgLocation, PgStore};
use super::sled::SledStore;
use super::{StoreError, StoreStats, Subscriber, SubscriberStore};

/// Where the subscriber store is.
#[derive(Clone)]
pub enum StoreLocation {
    /// The embedded sled store in this directory.
    Sled(PathBuf),
    /// A PostgreSQL database (shared by several nodes).
    Postgres(Box<PgLocation>),
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StoreLocation {
    /// `sled:DIR`, or the URL with its password hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sled(dir) => write!(f, "sled:{}", dir.display()),
            StoreLocation::Postgres(l) => fmt::Display::fmt(l, f),
        }
    }
}

impl StoreLocation {
    /// Parses `sled:DIR` or a `postgres://` / `postgresql://` URL.
    ///
    /// # Errors
    /// `Invalid` on `store.url`, naming the accepted forms (never showing a password).
    pub fn parse(s: &str) -> Result<StoreLocation, StoreError> {
        if let Some(dir) = s.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err(StoreError::Invalid {
                    field: "store.url".to_owned(),
                    problem: "sled: needs a directory, e.g. sled:./sichss-data".to_owned(),
                });
            }
            return Ok(StoreLocation::Sled(PathBuf::from(dir)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return PgLocation::parse(s).map(|l| StoreLocation::Postgres(Box::new(l)));
        }
        Err(StoreError::Invalid {
            field: "store.url".to_owned(),
            problem: format!(
                "{:?} is neither sled:DIR nor a PostgreSQL URL; expected sled:DIR or {}",
                super::postgres::location::redact(s),
                super::postgres::location::URL_FORM
            ),
        })
    }
}

/// The configured backend.
#[derive(Debug)]
pub enum AnyStore {
    /// Embedded sled.
    Sled(Box<SledStore>),
    /// PostgreSQL.
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// Opens the store at `location`; a PostgreSQL database is migrated first and gets a
    /// pool of `pool_size` connections.
    ///
    /// # Errors
    /// The backend's: the directory is locked or unreadable, the database unreachable.
    pub async fn open(location: &StoreLocation, pool_size: usize) -> Result<AnyStore, StoreError> {
        match location {
            StoreLocation::Sled(dir) => SledStore::open(dir).map(|s| AnyStore::Sled(Box::new(s))),
            StoreLocation::Postgres(l) => PgStore::open(l, pool_size)
                .await
                .map(|s| AnyStore::Postgres(Box::new(s))),
        }
    }

    /// The PostgreSQL store, when that is the backend.
    pub fn postgres(&self) -> Option<&PgStore> {
        match self {
            AnyStore::Postgres(p) => Some(p),
            AnyStore::Sled(_) => None,
        }
    }
}

/// Awaits a call of either backend. PostgreSQL's futures (a query on the network, several
/// kilobytes of state) are boxed, so that they do not size every Cx request's future,
/// which the server allocates per request: one allocation per PostgreSQL call, next to a
/// network round trip, keeps a sled request's future at a fraction of that size.
macro_rules! call {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sled($s) => $e.await,
            AnyStore::Postgres($s) => Box::pin($e).await,
        }
    };
}

impl SubscriberStore for AnyStore {
    async fn get(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        call!(self, s => s.get(imsi))
    }

    async fn find_by_impi(&self, impi: &str) -> Result<Option<Subscriber>, StoreError> {
        call!(self, s => s.find_by_impi(impi))
    }

    async fn find_by_impu(&self, impu: &str) -> Result<Option<Subscriber>, StoreError> {
        call!(self, s => s.find_by_impu(impu))
    }

    async fn get_shared(&self, imsi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        call!(self, s => s.get_shared(imsi))
    }

    async fn settled(&self, imsi: &str) -> Result<(), StoreError> {
        call!(self, s => s.settled(imsi))
    }

    async fn find_by_impi_shared(&self, impi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        call!(self, s => s.find_by_impi_shared(impi))
    }

    async fn find_by_impu_shared(&self, impu: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        call!(self, s => s.find_by_impu_shared(impu))
    }

    async fn create(&self, sub: Subscriber) -> Result<(), StoreError> {
        call!(self, s => s.create(sub))
    }

    async fn put(&self, sub: Subscriber) -> Result<(), StoreError> {
        call!(self, s => s.put(sub))
    }

    async fn try_update<T, F>(&self, imsi: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Subscriber) -> Result<T, StoreError> + Send,
        T: Send,
    {
        call!(self, s => s.try_update(imsi, f))
    }

    async fn delete(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        call!(self, s => s.delete(imsi))
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        call!(self, s => s.list(after, limit))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        call!(self, s => s.count())
    }

    fn stats(&self) -> StoreStats {
        match self {
            AnyStore::Sled(s) => s.stats(),
            AnyStore::Postgres(s) => s.stats(),
        }
    }

    async fn contains(&self, imsi: &str) -> Result<bool, StoreError> {
        call!(self, s => s.contains(imsi))
    }

    async fn contains_many(&self, imsis: &[&str]) -> Result<Vec<bool>, StoreError> {
        call!(self, s => s.contains_many(imsis))
    }

    async fn put_many(&self, subs: Vec<Subscriber>) -> Result<(), StoreError> {
        call!(self, s => s.put_many(subs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_names_them_when_neither() {
        assert!(matches!(
            StoreLocation::parse("sled:/var/lib/sichss").unwrap(),
            StoreLocation::Sled(p) if p == std::path::Path::new("/var/lib/sichss")
        ));
        let pg = StoreLocation::parse("postgres://hss:pw@127.0.0.1/ims").unwrap();
        assert_eq!(pg.to_string(), "postgres://hss:***@127.0.0.1/ims");
        let e = StoreLocation::parse("redis://u:pw@h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sled:DIR") && e.contains("postgres://"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        assert!(StoreLocation::parse("sled:").is_err());
    }
}
