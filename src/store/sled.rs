//! The embedded subscriber store on [sled] 0.34: the default backend of sichss.
//!
//! # On-disk layout
//!
//! One sled database (a directory) with four trees:
//!
//! | tree          | key                         | value                                     |
//! |---------------|-----------------------------|-------------------------------------------|
//! | `subscribers` | IMSI (UTF-8)                | `0x02`, revision (u64 BE), the [`Subscriber`] as MessagePack (`super::record`) compressed (LZ4 block, size prepended) |
//! | `impi`        | IMPI (normalised, UTF-8)    | IMSI of the subscriber whose service has it; no entry for a SIC IMPI, which carries its owner's IMSI |
//! | `impu`        | IMPU (normalised, UTF-8)    | IMSI of the subscriber listing it          |
//! | `meta`        | `format`                    | the layout version string [`FORMAT`]       |
//! | `meta`        | `count`                     | number of subscribers (u64 big-endian), only while closed |
//! | `meta`        | `epoch`                     | epoch of revisions, bumped at every open (u64 BE) |
//! | `meta`        | `journal`                   | number of the first journal file not yet in sled (u64 BE) |
//!
//! Beside sled's files, the directory holds the journal: `sichss-journal.<number>` files
//! (format in `store::journal`). A record's revision is `epoch << 40 | sequence number`,
//! so revisions rise across restarts; layout 1 records (plain JSON) read as revision 0.
//!
//! A SIC IMPI (`<IMSI>@ims.sic<SIC>.…`) carries its subscriber's IMSI: validation refuses
//! one that carries another IMSI, so it can have no other owner, and
//! `find_by_impi` reads the record of that IMSI instead of an index entry (the patent's
//! method: strip the SIC, find the subscriber by its IMSI). Only other IMPIs (provisioned
//! NAIs, TS 23.003 IMPIs without a SIC) have `impi` entries. This halves the index writes
//! of a typical subscriber (two SIC IMPIs, two IMPUs), and a bulk import's cost with them.
//! Opening a layout 1 or 2 store removes the entries layout 3 does not keep.
//!
//! Records are compressed (layout 4, `lz4_flex`): a record repeats its IMSI, home
//! domain and field names, and shrinks to about half, which cuts what sled writes per
//! change (its log rewrites whole pages) by about a quarter. Records of layouts 1–3
//! (`0x01` or plain JSON) are read as they are and compressed when next written.
//!
//! Records and journal entries are MessagePack (layout 5, `super::record`), which costs a
//! fifth of JSON to encode on every Cx write; the JSON records and journal entries of
//! layouts 1–4 are told apart by their first octet and read as they are.
//!
//! Every single-subscriber write changes the three data trees in one sled transaction,
//! so a crash never leaves a record without its index entries or an index entry without
//! its record; bulk writes (`put_many`) write index entries, then records, in phases instead (see
//! `put_batch` for what a crash can leave). An
//! identity (IMPI or IMPU) belongs to one subscriber; the services of one subscriber may
//! share IMPUs. Keys sort bytewise, so [`SubscriberStore::list`] pages in IMSI string order.
//!
//! sled makes no promise about its file format across versions, so this directory is not
//! an archive or an exchange format: back up and migrate with the JSON-lines export of
//! [`super::jsonl`], which is the serde form of the domain model.
//!
//! # Concurrency and durability
//!
//! Writers of one subscriber (create, put, update, delete) serialise on one of
//! [`LOCK_SHARDS`] async mutexes chosen by a hash of the IMSI; writers of other subscribers
//! proceed. Checks across subscribers (identity ownership) are made inside the sled
//! transaction, which sled runs serialisably.
//!
//! No writing method returns before its change is on disk, by **group commit**: a writer
//! applies its change in memory (the sled transaction), takes a sequence number from a
//! counter of applied changes, releases its subscriber lock, and waits until a flush that
//! started after its change has completed. Only one flush runs at a time, on the blocking
//! pool: the first writer that finds no flush running starts one, which reads the counter
//! (every change numbered up to it is covered), calls `Db::flush` (fsync), records the
//! durable sequence number and wakes all waiters through a `tokio::sync::watch` channel.
//! Writers arriving during a flush are covered by the next one, so one fsync serves many
//! writers; when a flush ends with such changes pending, its thread starts the next one at
//! once (a writer's task may not be scheduled for a while on a busy runtime). Under a
//! steady stream of writes (the previous flush ended moments ago) a flush first waits up to
//! [`GATHER_US`] µs, or until [`GATHER_CHANGES`] changes are pending, before it reads the
//! counter, so each fsync covers more changes; an isolated write is flushed at once. Reads never wait for flushes, so a reader may see a change a moment before it
//! is durable; it is acknowledged to its writer only once durable, and any later change
//! that builds on it is made durable by a flush that covers both. An update whose closure
//! changes nothing writes nothing, but still waits until the last change written to its
//! group of its lock shard's subscribers ([`Written`]) is durable, since its result may
//! rest on that change.
//!
//! # Journal and checkpoints (the Cx write path)
//!
//! An update that keeps the subscriber's identities (every Cx procedure: SQN, registration
//! state, S-CSCF) does not write sled: the whole new record is appended to the journal
//! with its revision, published in an in-memory overlay (which reads consult before sled),
//! and acknowledged once a group-commit flush has written and `fdatasync`ed it. A flush
//! takes, under one lock, the sequence number, the pending journal entries and a flag
//! telling whether sled was written directly since the last flush; it flushes sled first
//! (so a journal entry never becomes durable before a direct write it may build on), then
//! the journal.
//!
//! A checkpoint (after [`SledOptions::journal_bytes`] of journal or
//! [`SledOptions::journal_subscribers`] changed subscribers, and on close) starts a new
//! journal file, moves the overlay aside, writes each changed subscriber once into sled
//! with its revision, records the new file's number in `meta`, flushes sled and removes
//! the older files. Writes that change identities or whole records (create, put, delete,
//! import, service changes) go to sled directly as before, drop the subscriber from the
//! overlay, and never interleave with a checkpoint's sled write.
//!
//! Opening replays the journal files from the `meta` number on: each subscriber's newest
//! journaled record is written into sled where it is newer than sled's revision (so a
//! later put or delete is never undone), up to the first torn entry; then a new file is
//! started and the old ones removed. Only those newest entries are decoded (each entry's
//! IMSI is read from its first octets), so replaying a full journal costs little more than
//! reading it: 232 MB of a crashed bench run (10,000 subscribers) in 0.6–0.8 s of start-up.
//!
//! # Memory
//!
//! sled's page cache is bounded by [`SledOptions::cache_bytes`]; decoded records of
//! recently read subscribers are kept (at most [`SledOptions::cache_subscribers`]) so that
//! reads skip the decode, and so are the owners of recently found identities (as many
//! IMPIs, twice as many IMPUs) so that a LIR skips the index tree. The subscriber count is
//! kept in memory and left in `meta` on close, so opening a big store does not walk it
//! (unless it was not closed cleanly).
//!
//! Must not depend on: the codec, the Cx layer, the server; no sled type leaves this module.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex, MutexGuard as StdMutexGuard, RwLock};
use std::time::{Duration, Instant};

use ::sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use ::sled::{Batch, Db, IVec, Transactional, Tree};
use tokio::sync::{watch, Mutex, MutexGuard};

use super::cache::insert_bounded;
use super::journal::{self, JournalFile};
use super::{
    check_sic_impis, HashCache, Identities, StoreError, StoreStats, Subscriber, SubscriberStore,
};
use crate::identity::Impi;
// The record cache and journal overlay are keyed by IMSIs of stored subscribers (a
// lookup of an unknown IMSI inserts nothing).
use crate::FastMap;

/// Number of per-subscriber write locks (IMSIs are hashed onto them).
pub const LOCK_SHARDS: usize = 256;

/// Groups of IMSIs per lock shard that keep their own last change's sequence number (see
/// [`Written`]).
const WRITTEN_SLOTS: usize = 16;

/// Layout version written to the `meta` tree; a database with another value (other than
/// `FORMAT_1` to `FORMAT_4`, which are upgraded at open) is refused.
pub const FORMAT: &str =
    "sichss-sled-5 subscribers:IMSI=>[0x02 rev:u64be]lz4(msgpack(Subscriber)) impi(but own-IMSI SIC IMPIs),impu:identity=>IMSI journal(msgpack)";
/// Layout 4: as layout 5, with records and journal entries in JSON (which layout 5 still
/// reads).
const FORMAT_4: &str =
    "sichss-sled-4 subscribers:IMSI=>[0x02 rev:u64be]lz4(json(Subscriber)) impi(but own-IMSI SIC IMPIs),impu:identity=>IMSI journal";
/// Layout 3: as layout 4, with the records' JSON uncompressed (`0x01` records, which
/// layout 4 still reads).
const FORMAT_3: &str =
    "sichss-sled-3 subscribers:IMSI=>[0x01 rev:u64be]json(Subscriber) impi(but own-IMSI SIC IMPIs),impu:identity=>IMSI journal";
/// Layout 2: as layout 3, with index entries for every IMPI (an upgrade removes those of
/// SIC IMPIs that carry their owner's IMSI).
const FORMAT_2: &str =
    "sichss-sled-2 subscribers:IMSI=>[0x01 rev:u64be]json(Subscriber) impi,impu:identity=>IMSI journal";
/// Layout 1: as layout 2, with records without a revision and no journal.
const FORMAT_1: &str = "sichss-sled-1 subscribers:IMSI=>json(Subscriber) impi,impu:identity=>IMSI";
/// First octet of a record that carries its revision (a JSON record starts with `{`).
const REV_TAG: u8 = 0x01;
/// First octet of a record with its revision and its bytes compressed (LZ4 block, size
/// prepended): what layouts 4 and 5 write; [`REV_TAG`] records (layout 2) still read.
const LZ4_TAG: u8 = 0x02;
/// Largest record a compressed value may claim (a record is a few KiB; this bounds what a
/// corrupt size prefix can make the decoder allocate).
const MAX_RECORD_BYTES: u32 = 16 << 20;
/// A revision is `epoch << REV_EPOCH_SHIFT | sequence number`: the epoch (`meta` key
/// `epoch`, bumped durably at every open) keeps revisions rising across restarts.
const REV_EPOCH_SHIFT: u32 = 40;

/// Subscribers written per batch by [`SubscriberStore::put_many`].
const PUT_MANY_BATCH: usize = 1024;

const TREE_SUBSCRIBERS: &str = "subscribers";
const TREE_IMPI: &str = "impi";
const TREE_IMPU: &str = "impu";
const TREE_META: &str = "meta";
const FORMAT_KEY: &str = "format";
/// `meta` key holding the number of subscribers, written when the store is closed and
/// removed when it is opened (so a store that was not closed cleanly is counted again).
const COUNT_KEY: &str = "count";
/// `meta` key holding the epoch of revisions (u64 big-endian).
const EPOCH_KEY: &str = "epoch";
/// `meta` key holding the number of the first journal file not yet checkpointed (u64
/// big-endian): files with lower numbers are fully in sled.
const JOURNAL_KEY: &str = "journal";

/// Tuning of a [`SledStore`].
#[derive(Debug, Clone, Copy)]
pub struct SledOptions {
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
    /// Most decoded subscriber records kept in memory (0: none).
    pub cache_subscribers: usize,
    /// Journal octets after which a checkpoint writes the changed records into sled and
    /// starts a new journal file; 0 disables the journal (every change is flushed through
    /// sled itself, as before the journal existed).
    pub journal_bytes: u64,
    /// Changed subscribers held in memory (awaiting a checkpoint) after which a checkpoint
    /// starts.
    pub journal_subscribers: usize,
}

impl Default for SledOptions {
    /// 96 MiB of page cache, 100,000 cached subscribers, a checkpoint every 256 MiB of
    /// journal or 20,000 changed subscribers; or the environment variables
    /// `SICHSS_SLED_CACHE_MB`, `SICHSS_SLED_CACHE_SUBSCRIBERS`, `SICHSS_JOURNAL_MB` (0: no
    /// journal) and `SICHSS_JOURNAL_SUBSCRIBERS`. sled's resident memory exceeds its page
    /// cache (index and allocator overhead): with 96 MiB the server stays under 512 MiB
    /// after importing 1,000,000 subscribers (BENCHMARKS.md).
    fn default() -> Self {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        SledOptions {
            cache_bytes: env("SICHSS_SLED_CACHE_MB")
                .unwrap_or(96)
                .saturating_mul(1 << 20),
            cache_subscribers: env("SICHSS_SLED_CACHE_SUBSCRIBERS")
                .map_or(100_000, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            journal_bytes: env("SICHSS_JOURNAL_MB")
                .unwrap_or(256)
                .saturating_mul(1 << 20),
            journal_subscribers: env("SICHSS_JOURNAL_SUBSCRIBERS")
                .map_or(20_000, |n| usize::try_from(n).unwrap_or(usize::MAX).max(1)),
        }
    }
}

/// The sled-backed [`SubscriberStore`]; see the module documentation for layout and
/// durability. Cheap to share behind an `Arc`; dropping it closes the database.
pub struct SledStore {
    db: Db,
    subscribers: Tree,
    impi: Tree,
    impu: Tree,
    /// Per-shard write locks; each holds the sequence numbers of the last changes written
    /// under it, which a no-op update waits for (it may have read that change).
    locks: Box<[Mutex<Written>]>,
    commit: Arc<GroupCommit>,
    meta: Tree,
    /// Number of subscribers; see [`Count`].
    count: Arc<Count>,
    /// Decoded records, per lock shard; see [`RecordCache`].
    cache: RecordCache,
    /// Owners of recently found IMPIs and IMPUs; see [`OwnerCache`].
    impi_owners: OwnerCache,
    impu_owners: OwnerCache,
    /// Bulk writes (which check identity ownership outside a sled transaction) hold it
    /// exclusively; a transaction that claims identities holds it shared.
    claims: RwLock<()>,
    /// Records changed through the journal and not yet checkpointed into sled.
    overlay: Arc<Overlay>,
    /// Runs checkpoints; `None` without a journal.
    checkpointer: Option<Checkpointer>,
    options: SledOptions,
    /// Cleared by [`SledStore::abandon`]: the drop then skips the closing checkpoint.
    close_cleanly: bool,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("subscribers", &self.subscribers.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in directory `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(dir, SledOptions::default())
    }

    /// Opens (creating if needed) the store in directory `dir`, with `options`.
    pub fn open_with(dir: &Path, options: SledOptions) -> Result<SledStore, StoreError> {
        // sled releases its file lock a moment after the last handle of a closed store is
        // dropped (its background threads finish first): a store reopened at once in the
        // same process may find the lock still held. Retry briefly before reporting it;
        // another process holding the store still gets the error, after this bound.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        let db = loop {
            match ::sled::Config::new()
                .path(dir)
                .cache_capacity(options.cache_bytes)
                .open()
            {
                Ok(db) => break db,
                Err(::sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::Other
                        && e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot open the sled store at {}: {e}",
                        dir.display()
                    )))
                }
            }
        };
        Self::from_db(db, dir.to_path_buf(), options)
    }

    /// Opens a store in a temporary directory that is removed when the store is dropped
    /// (tests).
    pub fn open_temporary() -> Result<SledStore, StoreError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let options = SledOptions::default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "sichss-sled-tmp.{}.{}.{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let db = ::sled::Config::new()
            .temporary(true)
            .path(&dir)
            .cache_capacity(options.cache_bytes)
            .open()
            .map_err(|e| backend("opening a temporary sled store", e))?;
        Self::from_db(db, dir, options)
    }

    fn from_db(db: Db, dir: PathBuf, options: SledOptions) -> Result<SledStore, StoreError> {
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| backend(&format!("opening tree {name}"), e))
        };
        let subscribers = tree(TREE_SUBSCRIBERS)?;
        let impi = tree(TREE_IMPI)?;
        let impu = tree(TREE_IMPU)?;
        let meta = tree(TREE_META)?;
        // A new store (no format marker yet) has no subscribers to count.
        let mut fresh = false;
        match meta
            .get(FORMAT_KEY)
            .map_err(|e| backend("reading the format marker", e))?
        {
            Some(v) if v.as_ref() == FORMAT.as_bytes() => {}
            Some(v)
                if [FORMAT_1, FORMAT_2, FORMAT_3, FORMAT_4]
                    .iter()
                    .any(|f| v.as_ref() == f.as_bytes()) =>
            {
                // Older records are read as they are (layout 1: revision 0; layouts 1–3:
                // JSON uncompressed; layouts 1–4: JSON) and rewritten when next written,
                // as are the JSON entries of the journal. Index entries that
                // layout 3 stopped keeping are removed before the marker changes.
                let removed = drop_own_sic_impi_entries(&impi)?;
                db.flush()
                    .map_err(|e| backend("flushing the index upgrade", e))?;
                meta.insert(FORMAT_KEY, FORMAT.as_bytes())
                    .map_err(|e| backend("writing the format marker", e))?;
                tracing::info!(
                    from = %String::from_utf8_lossy(&v),
                    removed_impi_entries = removed,
                    "sled store: layout upgraded to 5"
                );
            }
            Some(v) => {
                return Err(StoreError::Backend(format!(
                    "the sled store has layout {:?}, this sichss reads {FORMAT:?}; \
                     export it with the sichss that wrote it and import the JSON lines",
                    String::from_utf8_lossy(&v)
                )))
            }
            None => {
                meta.insert(FORMAT_KEY, FORMAT.as_bytes())
                    .map_err(|e| backend("writing the format marker", e))?;
                db.flush()
                    .map_err(|e| backend("flushing the format marker", e))?;
                fresh = true;
            }
        }
        // The count left by a clean close; taken away (durably) so that a crash before
        // the next clean close makes the next open count again.
        let stored = meta
            .remove(COUNT_KEY)
            .map_err(|e| backend("reading the subscriber count", e))?;
        // Without it, the records are counted in the background once the store is open
        // (a full scan: about a second for a million subscribers).
        let count = match stored.as_deref().and_then(|v| <[u8; 8]>::try_from(v).ok()) {
            Some(v) => {
                db.flush()
                    .map_err(|e| backend("flushing the subscriber count", e))?;
                Some(u64::from_be_bytes(v))
            }
            None if fresh && subscribers.is_empty() => Some(0),
            None => None,
        };
        // A new epoch of revisions, durable before any write of this session.
        let epoch = meta
            .get(EPOCH_KEY)
            .map_err(|e| backend("reading the revision epoch", e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes)
            + 1;
        meta.insert(EPOCH_KEY, &epoch.to_be_bytes()[..])
            .map_err(|e| backend("writing the revision epoch", e))?;
        db.flush()
            .map_err(|e| backend("flushing the revision epoch", e))?;
        // Whatever an earlier session journaled goes into sled now; then a fresh journal.
        let replayed = replay(&db, &subscribers, &impi, &impu, &meta, &dir)?;
        if replayed > 0 {
            tracing::info!(records = replayed, "sled store: journal replayed");
        }
        let journal = if options.journal_bytes > 0 {
            let number = journal::list(&dir)
                .map_err(|e| io_error("listing the journal files", &dir, e))?
                .last()
                .map_or(1, |n| n + 1);
            let file = JournalFile::create(&dir, number)
                .map_err(|e| io_error("creating a journal file", &dir, e))?;
            meta.insert(JOURNAL_KEY, &number.to_be_bytes()[..])
                .map_err(|e| backend("writing the journal number", e))?;
            db.flush()
                .map_err(|e| backend("flushing the journal number", e))?;
            remove_journals_before(&dir, number);
            Some(Journal {
                dir: dir.clone(),
                number,
                file: Arc::new(StdMutex::new(file)),
                bytes: 0,
            })
        } else {
            meta.remove(JOURNAL_KEY)
                .map_err(|e| backend("removing the journal number", e))?;
            db.flush()
                .map_err(|e| backend("flushing the journal number", e))?;
            remove_journals_before(&dir, u64::MAX);
            None
        };
        let with_journal = journal.is_some();
        let commit = Arc::new(GroupCommit::new(epoch << REV_EPOCH_SHIFT, journal));
        let overlay = Arc::new(Overlay::new());
        let checkpointer = with_journal.then(|| Checkpointer {
            db: db.clone(),
            subscribers: subscribers.clone(),
            meta: meta.clone(),
            overlay: Arc::clone(&overlay),
            commit: Arc::clone(&commit),
        });
        let locks = (0..LOCK_SHARDS)
            .map(|_| Mutex::new(Written::default()))
            .collect();
        let store = SledStore {
            db,
            subscribers,
            impi,
            impu,
            locks,
            commit,
            meta,
            count: Arc::new(Count {
                n: AtomicU64::new(count.unwrap_or(0)),
                known: watch::channel(count.is_some()).0,
            }),
            cache: RecordCache::new(options.cache_subscribers),
            impi_owners: OwnerCache::new(options.cache_subscribers),
            impu_owners: OwnerCache::new(options.cache_subscribers.saturating_mul(2)),
            claims: RwLock::new(()),
            overlay,
            checkpointer,
            options,
            close_cleanly: true,
        };
        if count.is_none() {
            store.recount();
        }
        Ok(store)
    }

    /// Counts the records on a thread of its own, holding `direct` exclusively so that no
    /// create or delete happens during the scan (each adjusts the count while holding it
    /// shared); [`SubscriberStore::count`] waits for the result. Counts here if no thread
    /// can be started.
    fn recount(&self) {
        let (overlay, subscribers, count) = (
            Arc::clone(&self.overlay),
            self.subscribers.clone(),
            Arc::clone(&self.count),
        );
        let scan = move || {
            let _direct = unpoison(overlay.direct.write());
            let started = std::time::Instant::now();
            let n = subscribers.len() as u64;
            count.n.store(n, Ordering::SeqCst);
            count.known.send_replace(true);
            tracing::info!(
                subscribers = n,
                ms = started.elapsed().as_millis() as u64,
                "sled store: subscribers counted (the store was not closed cleanly)"
            );
        };
        let spawned = std::thread::Builder::new()
            .name("sichss-recount".to_owned())
            .spawn(scan.clone());
        if spawned.is_err() {
            scan();
        }
    }

    /// Drops the store without its closing checkpoint and without leaving the subscriber
    /// count, as a crash leaves it (journaled changes are then only in the journal). For
    /// tests of recovery.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.close_cleanly = false;
    }

    fn shard(imsi: &str) -> usize {
        // Bits 32 and up: the record cache's maps take their buckets from the low bits.
        ((imsi_hash(imsi) >> 32) % LOCK_SHARDS as u64) as usize
    }

    async fn lock(&self, imsi: &str) -> MutexGuard<'_, Written> {
        self.locks[Self::shard(imsi)].lock().await
    }

    /// Reads and decodes the record of `imsi`, from the cache when it holds it.
    fn read(&self, imsi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        let shard = Self::shard(imsi);
        let generation = match self.cache.get(shard, imsi) {
            Ok(hit) => return Ok(Some(hit)),
            Err(generation) => generation,
        };
        if let Some(sub) = self.overlay.get(shard, imsi) {
            return Ok(Some(sub));
        }
        match self
            .subscribers
            .get(imsi)
            .map_err(|e| backend(&format!("reading subscriber {imsi}"), e))?
        {
            None => Ok(None),
            Some(bytes) => {
                let sub = Arc::new(decode(imsi, &bytes)?);
                self.cache.fill(shard, generation, imsi, &sub);
                Ok(Some(sub))
            }
        }
    }

    /// Records a write of `imsi` in the cache (after it is applied to sled, under the
    /// subscriber's lock): `Some` caches the new record, `None` forgets it.
    fn written(&self, imsi: &str, new: Option<Arc<Subscriber>>) {
        self.cache.set(Self::shard(imsi), imsi, new);
    }

    /// The identities currently indexed to `imsi`, from its record, or — when the record
    /// is corrupt — by scanning the index trees, so a put or delete can still clean up.
    /// Caller holds the subscriber's lock.
    fn old_identities(&self, imsi: &str) -> Result<(bool, Identities), StoreError> {
        match self.read(imsi) {
            Ok(None) => Ok((false, Identities::default())),
            Ok(Some(old)) => Ok((true, indexed(&old))),
            Err(StoreError::Corrupt { key, reason }) => {
                tracing::warn!(%key, %reason, "replacing a corrupt subscriber record");
                let scan = |tree: &Tree, what: &str| -> Result<BTreeSet<String>, StoreError> {
                    let mut owned = BTreeSet::new();
                    for item in tree.iter() {
                        let (k, v) = item.map_err(|e| backend(&format!("scanning {what}"), e))?;
                        if v.as_ref() == imsi.as_bytes() {
                            owned.insert(String::from_utf8_lossy(&k).into_owned());
                        }
                    }
                    Ok(owned)
                };
                Ok((
                    true,
                    Identities {
                        impis: scan(&self.impi, TREE_IMPI)?,
                        impus: scan(&self.impu, TREE_IMPU)?,
                    },
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Applies `changes` in one sled transaction and adds `added` to the subscriber count
    /// (while `direct` is held, see [`Count`]); returns the sequence number to wait for.
    fn apply(&self, changes: &[Change<'_>], added: i64, what: &str) -> Result<u64, StoreError> {
        let _claims = changes
            .iter()
            .any(Change::claims)
            .then(|| self.claims.read().unwrap_or_else(|p| p.into_inner()));
        let _direct = unpoison(self.overlay.direct.read());
        (&self.subscribers, &self.impi, &self.impu)
            .transaction(|(subs, impi, impu)| {
                for c in changes {
                    c.apply(subs, impi, impu)?;
                }
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => backend(what, e),
            })?;
        for c in changes {
            self.overlay.forget(Self::shard(c.imsi), c.imsi);
        }
        self.count.add(added);
        Ok(self.commit.applied(changes.len() as u64))
    }

    /// Waits until the change numbered `seq` is on disk.
    async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        self.commit.wait(&self.db, seq).await
    }

    /// Looks `identity` up in `index` and reads its owner, retrying if a concurrent write
    /// moved it between the two reads.
    fn find_by(
        &self,
        index: &Tree,
        index_name: &str,
        owners: &OwnerCache,
        identity: &str,
        listed: impl Fn(&Subscriber) -> bool,
    ) -> Result<Option<Arc<Subscriber>>, StoreError> {
        if let Some(imsi) = owners.get(identity) {
            if let Some(sub) = self.read(imsi.as_str())?.filter(|s| listed(s)) {
                return Ok(Some(sub));
            }
        }
        let lookup = || -> Result<Option<IVec>, StoreError> {
            index
                .get(identity)
                .map_err(|e| backend(&format!("reading index {index_name}"), e))
        };
        let mut owner = lookup()?;
        for _ in 0..8 {
            let Some(imsi_bytes) = owner.clone() else {
                return Ok(None);
            };
            let imsi = std::str::from_utf8(&imsi_bytes).map_err(|_| StoreError::Corrupt {
                key: format!("{index_name}/{identity}"),
                reason: "the owner IMSI is not UTF-8".to_owned(),
            })?;
            let found = self.read(imsi)?;
            if let Some(sub) = found.as_ref().filter(|s| listed(s)) {
                owners.put(identity, imsi);
                return Ok(Some(Arc::clone(sub)));
            }
            let again = lookup()?;
            if again == owner {
                return Err(StoreError::Corrupt {
                    key: format!("{index_name}/{identity}"),
                    reason: match found {
                        None => format!("points to IMSI {imsi}, which has no record"),
                        Some(_) => format!("points to IMSI {imsi}, whose record does not list it"),
                    },
                });
            }
            owner = again;
        }
        Err(StoreError::Backend(format!(
            "index {index_name} entry {identity} kept changing while being read"
        )))
    }
}

impl SubscriberStore for SledStore {
    async fn get(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(self.read(imsi)?.map(|s| Subscriber::clone(&s)))
    }

    async fn get_shared(&self, imsi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        self.read(imsi)
    }

    async fn find_by_impi_shared(&self, impi: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        // A SIC IMPI has no index entry when it carries its owner's IMSI (which validation
        // makes the only owner it can have): its IMSI names the record.
        if let Some(imsi) = Impi::parse_sic(impi).and_then(|i| i.imsi().map(ToString::to_string)) {
            if let Some(sub) = self.read(&imsi)? {
                if sub.service_by_impi(impi).is_some() {
                    return Ok(Some(sub));
                }
            }
        }
        self.find_by(&self.impi, TREE_IMPI, &self.impi_owners, impi, |s| {
            s.service_by_impi(impi).is_some()
        })
    }

    async fn settled(&self, imsi: &str) -> Result<(), StoreError> {
        // The last change written under the subscriber's lock shard (reads see changes as
        // soon as they are applied, before their flush).
        let pending = self.lock(imsi).await.last(imsi);
        self.durable(pending).await
    }

    async fn find_by_impu_shared(&self, impu: &str) -> Result<Option<Arc<Subscriber>>, StoreError> {
        self.find_by(&self.impu, TREE_IMPU, &self.impu_owners, impu, |s| {
            s.has_impu(impu)
        })
    }

    async fn find_by_impi(&self, impi: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(self
            .find_by_impi_shared(impi)
            .await?
            .map(|s| Subscriber::clone(&s)))
    }

    async fn find_by_impu(&self, impu: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(self
            .find_by_impu_shared(impu)
            .await?
            .map(|s| Subscriber::clone(&s)))
    }

    async fn create(&self, sub: Subscriber) -> Result<(), StoreError> {
        sub.validate()?;
        let mut guard = self.lock(&sub.imsi).await;
        let bytes = encode_value(&sub, self.commit.revision())?;
        let change = Change {
            imsi: &sub.imsi,
            must_be_new: true,
            old: Identities::default(),
            new: Some((bytes, indexed(&sub))),
        };
        let seq = self.apply(&[change], 1, "creating a subscriber")?;
        self.written(&sub.imsi, None);
        guard.set(&sub.imsi, seq);
        drop(guard);
        self.durable(seq).await
    }

    async fn put(&self, sub: Subscriber) -> Result<(), StoreError> {
        sub.validate()?;
        let mut guard = self.lock(&sub.imsi).await;
        let bytes = encode_value(&sub, self.commit.revision())?;
        let (existed, old) = self.old_identities(&sub.imsi)?;
        let change = Change {
            imsi: &sub.imsi,
            must_be_new: false,
            old,
            new: Some((bytes, indexed(&sub))),
        };
        let seq = self.apply(&[change], i64::from(!existed), "writing a subscriber")?;
        self.written(&sub.imsi, None);
        guard.set(&sub.imsi, seq);
        drop(guard);
        self.durable(seq).await
    }

    async fn try_update<T, F>(&self, imsi: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Subscriber) -> Result<T, StoreError> + Send,
        T: Send,
    {
        let mut guard = self.lock(imsi).await;
        let old = self.read(imsi)?.ok_or_else(|| StoreError::NotFound {
            imsi: imsi.to_owned(),
        })?;
        let mut new = Subscriber::clone(&old);
        // Refused: `new` is dropped, nothing is written.
        let out = f(&mut new)?;
        if new == *old {
            // Nothing to write, but what `f` saw may be a change not yet on disk.
            let pending = guard.last(imsi);
            drop(guard);
            self.durable(pending).await?;
            return Ok(out);
        }
        if new.imsi != old.imsi {
            return Err(StoreError::Invalid {
                field: "imsi".to_owned(),
                problem: format!(
                    "an update cannot change the IMSI (the key) from {} to {}; \
                     delete and create instead",
                    old.imsi, new.imsi
                ),
            });
        }
        // Identities compared in full first (cheap), the indexed ones only for a change.
        let same_identities = Identities::same(&old, &new);
        if same_identities {
            if let Some(checkpointer) = &self.checkpointer {
                // The Cx path: journal the record; sled gets it at the next checkpoint.
                // Shared with the overlay as it is (not copied into an `Arc<[u8]>`).
                let payload = Arc::new(encode(&new)?);
                let new = Arc::new(new);
                let shard = Self::shard(imsi);
                let published = Arc::clone(&new);
                let (seq, journal_bytes) = self
                    .commit
                    .journaled(&payload, |rev| {
                        self.overlay.publish(
                            shard,
                            imsi,
                            Dirty {
                                rev,
                                sub: published,
                                bytes: Arc::clone(&payload),
                            },
                        );
                    })
                    .expect("a store with a checkpointer has a journal");
                self.written(imsi, Some(new));
                guard.set(imsi, seq);
                drop(guard);
                if journal_bytes >= self.options.journal_bytes
                    || self.overlay.live_len.load(Ordering::Relaxed)
                        >= self.options.journal_subscribers
                {
                    checkpointer.start();
                }
                if let Err(e) = self.durable(seq).await {
                    // A failed journal write: a checkpoint puts the changes into sled and
                    // starts a new journal file.
                    checkpointer.start();
                    return Err(e);
                }
                return Ok(out);
            }
        }
        if !same_identities {
            check_sic_impis(&new)?;
        }
        let change = Change {
            imsi,
            must_be_new: false,
            old: indexed(&old),
            new: Some((encode_value(&new, self.commit.revision())?, indexed(&new))),
        };
        let seq = self.apply(&[change], 0, "updating a subscriber")?;
        self.written(imsi, Some(Arc::new(new)));
        guard.set(imsi, seq);
        drop(guard);
        self.durable(seq).await?;
        Ok(out)
    }

    async fn delete(&self, imsi: &str) -> Result<Option<Subscriber>, StoreError> {
        let mut guard = self.lock(imsi).await;
        let old = match self.read(imsi) {
            Ok(old) => old.map(|s| Subscriber::clone(&s)),
            Err(StoreError::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let (exists, ids) = self.old_identities(imsi)?;
        if !exists {
            return Ok(None);
        }
        let change = Change {
            imsi,
            must_be_new: false,
            old: ids,
            new: None,
        };
        let seq = self.apply(&[change], -1, "deleting a subscriber")?;
        self.written(imsi, None);
        guard.set(imsi, seq);
        drop(guard);
        self.durable(seq).await?;
        Ok(old)
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        let lower = match after {
            Some(a) => Bound::Excluded(a.as_bytes()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self
            .subscribers
            .range::<&[u8], _>((lower, Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item.map_err(|e| backend("listing subscribers", e))?;
            let imsi = String::from_utf8_lossy(&k);
            match self.overlay.get(Self::shard(&imsi), &imsi) {
                Some(newer) => out.push(Subscriber::clone(&newer)),
                None => out.push(decode(&imsi, &v)?),
            }
        }
        Ok(out)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let mut known = self.count.known.subscribe();
        // The sender lives in `self.count`, so the channel stays open.
        let _ = known.wait_for(|k| *k).await;
        Ok(self.count.n.load(Ordering::SeqCst))
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            flushes: self.commit.flushes.load(Ordering::Relaxed),
            flushed_changes: self.commit.flushed_changes.load(Ordering::Relaxed),
        }
    }

    async fn contains(&self, imsi: &str) -> Result<bool, StoreError> {
        self.subscribers
            .contains_key(imsi)
            .map_err(|e| backend(&format!("reading subscriber {imsi}"), e))
    }

    async fn contains_many(&self, imsis: &[&str]) -> Result<Vec<bool>, StoreError> {
        in_halves(imsis, |part| {
            part.iter()
                .map(|imsi| {
                    self.subscribers
                        .contains_key(imsi)
                        .map_err(|e| backend(&format!("reading subscriber {imsi}"), e))
                })
                .collect()
        })
    }

    /// Writes in batches of up to 1024 subscribers and waits for one flush at the end.
    /// Later duplicates of an IMSI in `subs` win. On failure, the batches before the failing
    /// one are written (and durable); the failing batch is not.
    async fn put_many(&self, subs: Vec<Subscriber>) -> Result<(), StoreError> {
        // Keep the last record of each IMSI, in input order.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(subs.len());
        for (i, s) in subs.iter().enumerate() {
            last.insert(s.imsi.as_str(), i);
        }
        let latest: Vec<&Subscriber> = subs
            .iter()
            .enumerate()
            .filter(|(i, s)| last.get(s.imsi.as_str()) == Some(i))
            .map(|(_, s)| s)
            .collect();
        drop(last);
        let mut seq = None;
        let mut result = Ok(());
        for batch in latest.chunks(PUT_MANY_BATCH) {
            match self.put_batch(batch).await {
                Ok(s) => seq = Some(s),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The records are freed off this task, while the flush runs.
        drop(latest);
        rayon::spawn(move || drop(subs));
        if let Some(seq) = seq {
            self.durable(seq).await?;
        }
        result
    }
}

impl SledStore {
    /// Validates and writes one batch of distinct subscribers, under their locks (taken in
    /// shard order, so batches never deadlock with each other); returns the sequence
    /// number to wait for.
    ///
    /// Not a sled transaction (which slows down with the batch and the trees): identity
    /// ownership is checked first, against the indexes and the batch's own earlier
    /// changes, with other claims of identities held off (`claims`); then the changes are
    /// written in three phases, each finished before the next starts: new index entries,
    /// then the records, then the removal of index entries the new records no longer list.
    /// A crash in between leaves at worst index entries naming a subscriber that does not
    /// list them (lookups of those identities report a corrupt entry) until the import is
    /// repeated; since sled recovers a prefix of its log, a record is never without its
    /// index entries.
    ///
    /// The work that does not depend on order (validation and encoding, the reads of the
    /// current owners, the insertions of one phase) is shared with a second thread
    /// ([`in_halves`]): sled's own insertion is most of an import's cost, and plain
    /// inserts (unlike `apply_batch`, which takes sled's global write lock) run in
    /// parallel, on different trees or different parts of one tree.
    async fn put_batch(&self, batch: &[&Subscriber]) -> Result<u64, StoreError> {
        let prepared: Vec<Prepared> = in_halves(batch, |part| {
            part.iter()
                .map(|sub| {
                    sub.validate()?;
                    Ok(Prepared {
                        bytes: encode(sub)?,
                        ids: indexed(sub),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        let shards: BTreeSet<usize> = batch.iter().map(|s| Self::shard(&s.imsi)).collect();
        let mut guards = Vec::with_capacity(shards.len());
        for shard in shards {
            guards.push(self.locks[shard].lock().await);
        }
        let claims = self.claims.write().unwrap_or_else(|p| p.into_inner());
        let direct = unpoison(self.overlay.direct.read());
        // The revision is taken under the subscribers' locks: any journaled update of them
        // so far has a lower one, so a replay never puts it back over this write.
        let rev = self.commit.revision();
        // What is there now: each subscriber's indexed identities, and the owner of every
        // identity the batch names (read once, in parallel; the batch's own changes are
        // overlaid below).
        let olds: Vec<(bool, Identities)> = in_halves(batch, |part| {
            part.iter()
                .map(|sub| self.old_identities(&sub.imsi))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        let named = |pick: fn(&Identities) -> &BTreeSet<String>| -> Vec<&str> {
            let mut ids: Vec<&str> = olds
                .iter()
                .map(|(_, old)| old)
                .chain(prepared.iter().map(|p| &p.ids))
                .flat_map(|ids| pick(ids).iter().map(String::as_str))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let (impi_named, impu_named) = (named(|i| &i.impis), named(|i| &i.impus));
        let read_owners = |tree: &Tree, name: &str, ids: &[&str]| {
            in_halves(ids, |part| {
                part.iter()
                    .map(|id| {
                        tree.get(id.as_bytes())
                            .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                            .map_err(|e| backend(&format!("reading index {name}"), e))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
        };
        let impi_now = read_owners(&self.impi, TREE_IMPI, &impi_named)?;
        let impu_now = read_owners(&self.impu, TREE_IMPU, &impu_named)?;
        // The index entries as the batch leaves them: Some(owner) written, None removed.
        let mut impi: HashMap<&str, Option<&str>> = HashMap::new();
        let mut impu: HashMap<&str, Option<&str>> = HashMap::new();
        let mut new_ones = 0;
        for ((sub, (existed, old)), new) in batch.iter().zip(&olds).zip(&prepared) {
            new_ones += u64::from(!existed);
            let imsi = sub.imsi.as_str();
            for (named, now, overlay, old, new) in [
                (
                    &impi_named,
                    &impi_now,
                    &mut impi,
                    &old.impis,
                    &new.ids.impis,
                ),
                (
                    &impu_named,
                    &impu_now,
                    &mut impu,
                    &old.impus,
                    &new.ids.impus,
                ),
            ] {
                let owner = |overlay: &HashMap<&str, Option<&str>>, id: &str| -> Option<String> {
                    match overlay.get(id) {
                        Some(o) => o.map(str::to_owned),
                        None => named.binary_search(&id).ok().and_then(|i| now[i].clone()),
                    }
                };
                for id in new.difference(old) {
                    match owner(overlay, id) {
                        Some(o) if o != imsi => {
                            return Err(StoreError::IdentityConflict {
                                identity: id.clone(),
                                owner: o,
                            })
                        }
                        Some(_) => {}
                        None => {
                            overlay.insert(id.as_str(), Some(imsi));
                        }
                    }
                }
                for id in old.difference(new) {
                    if owner(overlay, id).as_deref() == Some(imsi) {
                        overlay.insert(id.as_str(), None);
                    }
                }
            }
        }
        /// (identity, owner) pairs to insert, and identities to remove.
        type Split<'a> = (Vec<(&'a [u8], &'a [u8])>, Vec<&'a [u8]>);
        fn split<'a>(overlay: &HashMap<&'a str, Option<&'a str>>) -> Split<'a> {
            let (mut claim, mut release) = (Vec::new(), Vec::new());
            for (id, owner) in overlay {
                match owner {
                    Some(imsi) => claim.push((id.as_bytes(), imsi.as_bytes())),
                    None => release.push(id.as_bytes()),
                }
            }
            // Key order: each half of a phase then writes its own stretch of the tree.
            claim.sort_unstable();
            release.sort_unstable();
            (claim, release)
        }
        let (impi_claim, impi_release) = split(&impi);
        let (impu_claim, impu_release) = split(&impu);
        let values: Vec<Vec<u8>> = prepared
            .iter()
            .map(|p| value_with_rev(&p.bytes, rev))
            .collect();
        let mut records: Vec<(&[u8], &[u8])> = batch
            .iter()
            .zip(&values)
            .map(|(sub, v)| (sub.imsi.as_bytes(), v.as_slice()))
            .collect();
        records.sort_unstable_by_key(|(imsi, _)| *imsi);
        let insert_all = |tree: &Tree, pairs: &[(&[u8], &[u8])]| -> Result<(), StoreError> {
            for (k, v) in pairs {
                tree.insert(*k, *v)
                    .map_err(|e| backend("writing a batch of subscribers", e))?;
            }
            Ok(())
        };
        let remove_all = |tree: &Tree, keys: &[&[u8]]| -> Result<(), StoreError> {
            for k in keys {
                tree.remove(k)
                    .map_err(|e| backend("writing a batch of subscribers", e))?;
            }
            Ok(())
        };
        // Phase 1: the claims, each half of them (in key order, IMPIs first) on its own
        // thread.
        let claims_in_order: Vec<(&Tree, &[u8], &[u8])> = impi_claim
            .iter()
            .map(|(k, v)| (&self.impi, *k, *v))
            .chain(impu_claim.iter().map(|(k, v)| (&self.impu, *k, *v)))
            .collect();
        in_halves(&claims_in_order, |part| {
            for (tree, k, v) in part {
                tree.insert(*k, *v)
                    .map_err(|e| backend("writing a batch of subscribers", e))?;
            }
            Ok(Vec::<()>::new())
        })?;
        // Phase 2: the records, each half of the batch on its own thread.
        in_halves(&records, |part| {
            insert_all(&self.subscribers, part).map(|()| Vec::<()>::new())
        })?;
        // Phase 3: the releases (rare: only replaced subscribers that dropped identities).
        remove_all(&self.impi, &impi_release)?;
        remove_all(&self.impu, &impu_release)?;
        for sub in batch {
            self.overlay.forget(Self::shard(&sub.imsi), &sub.imsi);
        }
        self.count.add(new_ones as i64);
        drop(direct);
        drop(claims);
        let seq = self.commit.applied(batch.len() as u64);
        for sub in batch {
            self.written(&sub.imsi, None);
        }
        for guard in &mut guards {
            guard.set_all(seq);
        }
        drop(guards);
        Ok(seq)
    }
}

/// One subscriber of a bulk write, validated and encoded.
struct Prepared {
    bytes: Vec<u8>,
    ids: Identities,
}

/// Fewest items worth a second thread in [`in_halves`].
const PARALLEL_MIN: usize = 64;

/// Runs `f` over the two halves of `items` on rayon's pool (both cores), and concatenates
/// the results in order (the first error wins). Small inputs run inline.
fn in_halves<T, R, F>(items: &[T], f: F) -> Result<Vec<R>, StoreError>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Result<Vec<R>, StoreError> + Sync,
{
    if items.len() < PARALLEL_MIN {
        return f(items);
    }
    let (first, second) = items.split_at(items.len() / 2);
    let (a, b) = rayon::join(|| f(first), || f(second));
    let mut out = a?;
    out.extend(b?);
    Ok(out)
}

impl Drop for SledStore {
    /// Leaves the subscriber count in `meta` for the next open (best effort: without it,
    /// the next open counts the records).
    fn drop(&mut self) {
        if !self.close_cleanly {
            return;
        }
        if let Some(checkpointer) = &self.checkpointer {
            if let Err(e) = checkpointer.run_now() {
                tracing::warn!(error = %e, "sled store: closing checkpoint failed; the journal is replayed at the next open");
            }
        }
        if !*self.count.known.borrow() {
            return; // still being counted: the next open counts again
        }
        let count = self.count.n.load(Ordering::SeqCst).to_be_bytes();
        if self.meta.insert(COUNT_KEY, &count[..]).is_ok() && self.db.flush().is_err() {
            let _ = self.meta.remove(COUNT_KEY);
        }
    }
}

/// The number of subscribers. Writers that create or remove subscribers adjust it while
/// holding the overlay's `direct` lock shared; after an unclean stop the records are
/// counted again on a thread that holds it exclusively, and readers of the count wait
/// for `known`.
struct Count {
    n: AtomicU64,
    known: watch::Sender<bool>,
}

impl Count {
    fn add(&self, added: i64) {
        if added >= 0 {
            self.n.fetch_add(added as u64, Ordering::SeqCst);
        } else {
            self.n.fetch_sub(added.unsigned_abs(), Ordering::SeqCst);
        }
    }
}

/// Decoded subscriber records, so that reads skip the JSON decode: one map per lock shard,
/// each bounded (an arbitrary entry goes when it is full). Coherent with sled: a writer
/// updates the map after its change is applied, under the subscriber's lock, and bumps the
/// shard's generation; a reader that missed fills the map only if the generation has not
/// moved since before it read sled (else what it read may already be stale).
struct RecordCache {
    shards: Box<[StdMutex<CacheShard>]>,
    per_shard: usize,
}

#[derive(Default)]
struct CacheShard {
    generation: u64,
    map: FastMap<u64, Arc<Subscriber>>,
}

/// An IMSI (up to 15 digits) as a number with its length on top, so that "001…" and
/// "01…" differ: the cache's key, hashed and compared without following a pointer to the
/// text. `None` for anything else (the store holds IMSIs only, but `get` may be asked
/// anything), which the cache then leaves alone.
fn imsi_key(imsi: &str) -> Option<u64> {
    if imsi.is_empty() || imsi.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for b in imsi.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    // Mixed by a bijection (xor-shift, multiply by an odd constant, xor-shift): the map's
    // FxHash keeps a number's low bits, and IMSIs ending in zeros would share buckets.
    let k = (imsi.len() as u64) << 56 | n;
    let k = (k ^ (k >> 32)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    Some(k ^ (k >> 29))
}

impl RecordCache {
    fn new(capacity: usize) -> Self {
        RecordCache {
            shards: (0..LOCK_SHARDS).map(|_| StdMutex::default()).collect(),
            per_shard: capacity.div_ceil(LOCK_SHARDS),
        }
    }

    fn shard(&self, shard: usize) -> StdMutexGuard<'_, CacheShard> {
        self.shards[shard].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached record, or the shard's generation to pass to [`RecordCache::fill`].
    fn get(&self, shard: usize, imsi: &str) -> Result<Arc<Subscriber>, u64> {
        let s = self.shard(shard);
        imsi_key(imsi)
            .and_then(|k| s.map.get(&k).cloned())
            .ok_or(s.generation)
    }

    fn insert(&self, s: &mut CacheShard, imsi: &str, sub: Arc<Subscriber>) {
        if let Some(key) = imsi_key(imsi) {
            insert_bounded(&mut s.map, self.per_shard, key, sub);
        }
    }

    /// Caches a record read from sled, unless a write of the shard happened meanwhile.
    fn fill(&self, shard: usize, generation: u64, imsi: &str, sub: &Arc<Subscriber>) {
        if self.per_shard == 0 {
            return;
        }
        let mut s = self.shard(shard);
        if s.generation == generation {
            self.insert(&mut s, imsi, Arc::clone(sub));
        }
    }

    /// A write of `imsi`: caches its new record, or forgets it.
    fn set(&self, shard: usize, imsi: &str, new: Option<Arc<Subscriber>>) {
        let mut s = self.shard(shard);
        s.generation = s.generation.wrapping_add(1);
        match new {
            Some(sub) if self.per_shard > 0 => self.insert(&mut s, imsi, sub),
            _ => {
                if let Some(key) = imsi_key(imsi) {
                    s.map.remove(&key);
                }
            }
        }
    }
}

/// The owners of recently found identities (identity → IMSI), one map per index, so that a
/// LIR's lookup skips sled's index tree. Bounded like [`RecordCache`] (an arbitrary entry
/// goes when a shard is full). Never trusted alone: a hit counts only if the IMSI's record,
/// read as usual, still lists the identity, and an identity is listed by one subscriber at
/// most (the index transactions see to that), so a stale entry costs a miss, never a wrong
/// answer. Only identities found in the index are inserted: provisioned ones, not whatever
/// a peer asks for.
struct OwnerCache(HashCache<InlineImsi>);

/// An IMSI held inline (up to 15 digits): copied out of the cache without an allocation.
#[derive(Clone, Copy)]
struct InlineImsi {
    len: u8,
    digits: [u8; 15],
}

impl InlineImsi {
    /// `None` for anything longer than an IMSI (the cache then leaves it alone).
    fn new(imsi: &str) -> Option<Self> {
        let len = imsi.len();
        if len > 15 {
            return None;
        }
        let mut digits = [0u8; 15];
        digits[..len].copy_from_slice(imsi.as_bytes());
        Some(InlineImsi {
            len: len as u8,
            digits,
        })
    }

    fn as_str(&self) -> &str {
        // Built from a `&str` cut at its own length: always valid UTF-8.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl OwnerCache {
    fn new(capacity: usize) -> Self {
        OwnerCache(HashCache::new(capacity))
    }

    /// The IMSI last found owning `identity` (or an identity with the same hash), if
    /// remembered.
    fn get(&self, identity: &str) -> Option<InlineImsi> {
        self.0.get(identity, |imsi| Some(*imsi))
    }

    fn put(&self, identity: &str, imsi: &str) {
        if let Some(imsi) = InlineImsi::new(imsi) {
            self.0.put(identity, imsi);
        }
    }
}

/// One subscriber's write: replace its record (or remove it when `new` is `None`) and move
/// its index entries from `old` to the new identities.
struct Change<'a> {
    imsi: &'a str,
    /// Refuse with `AlreadyExists` if a record exists (create).
    must_be_new: bool,
    /// Identities indexed to this IMSI before the change.
    old: Identities,
    /// The encoded new record and its identities.
    new: Option<(Vec<u8>, Identities)>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Change<'_> {
    /// Whether the change gives its subscriber an identity it did not have.
    fn claims(&self) -> bool {
        self.new.as_ref().is_some_and(|(_, new)| {
            new.impis.difference(&self.old.impis).next().is_some()
                || new.impus.difference(&self.old.impus).next().is_some()
        })
    }

    fn apply(
        &self,
        subs: &TransactionalTree,
        impi: &TransactionalTree,
        impu: &TransactionalTree,
    ) -> TxResult<()> {
        let imsi = self.imsi.as_bytes();
        if self.must_be_new && subs.get(imsi)?.is_some() {
            return Err(ConflictableTransactionError::Abort(
                StoreError::AlreadyExists {
                    imsi: self.imsi.to_owned(),
                },
            ));
        }
        let empty = Identities::default();
        let new_ids = self.new.as_ref().map_or(&empty, |(_, ids)| ids);
        // Claim first (refusing identities owned by others), then release, then write:
        // an abort anywhere discards the whole transaction.
        for (tree, old, new) in [
            (impi, &self.old.impis, &new_ids.impis),
            (impu, &self.old.impus, &new_ids.impus),
        ] {
            for id in new.difference(old) {
                match tree.get(id.as_bytes())? {
                    Some(owner) if owner.as_ref() != imsi => {
                        return Err(ConflictableTransactionError::Abort(
                            StoreError::IdentityConflict {
                                identity: id.clone(),
                                owner: String::from_utf8_lossy(&owner).into_owned(),
                            },
                        ))
                    }
                    Some(_) => {}
                    None => {
                        tree.insert(id.as_bytes(), imsi)?;
                    }
                }
            }
        }
        for (tree, old, new) in [
            (impi, &self.old.impis, &new_ids.impis),
            (impu, &self.old.impus, &new_ids.impus),
        ] {
            for id in old.difference(new) {
                if tree.get(id.as_bytes())?.as_deref() == Some(imsi) {
                    tree.remove(id.as_bytes())?;
                }
            }
        }
        match &self.new {
            Some((bytes, _)) => subs.insert(imsi, bytes.as_slice())?,
            None => subs.remove(imsi)?,
        };
        Ok(())
    }
}

/// Longest a flush waits, after the previous one, for more changes to cover (µs); the
/// environment variable `SICHSS_GROUP_COMMIT_US` overrides it (0 disables the wait).
///
/// Each flush costs a sync and, for every connection with a write in it, a wakeup and an
/// answer written alone. Against 200 µs, 500 µs serve 12 % more requests a second at
/// saturation (two servers driven in turns by one load generator, BENCHMARKS.md); a write
/// under a steady stream of them waits up to 300 µs longer.
const GATHER_US: u64 = 500;
/// A flush stops waiting for more changes once this many are pending.
const GATHER_CHANGES: u64 = 128;
/// The largest journal buffer kept for the next flush (a burst's bigger one is freed).
const SPARE_MAX: usize = 4 << 20;
/// A flush waits for more changes only if the previous one ended less than this ago (µs),
/// i.e. under a steady stream of writes; an isolated write is flushed at once.
const GATHER_BUSY_US: u64 = 2000;

/// Records a checkpoint writes into sled before it flushes sled and pauses for
/// [`CHECKPOINT_PAUSE`].
const CHECKPOINT_SLICE: usize = 256;
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(1);
/// Records a checkpoint inserts before it gives the CPU up for [`CHECKPOINT_STEP_PAUSE`]:
/// 256 inserts in a row held a core for 2.5–2.8 ms, and the journal's flush thread waited
/// for it (up to 6.6 ms, `perf sched timehist`), and every write with it.
const CHECKPOINT_STEP: usize = 32;
const CHECKPOINT_STEP_PAUSE: Duration = Duration::from_micros(200);

/// Group-commit state shared by the writers and the flush task.
struct GroupCommit {
    /// Mirror of `log.applied`, for the gatherer to read without the lock.
    applied: AtomicU64,
    /// The sequence number at which a gathering flush wants to be woken (`u64::MAX`: no
    /// flush is gathering); the writer that reaches it wakes the flush through `gathered`.
    gather_until: AtomicU64,
    /// Set (and notified) when `gather_until` is reached.
    gathered: (StdMutex<bool>, Condvar),
    /// `epoch << REV_EPOCH_SHIFT`: a change's revision is this plus its sequence number.
    rev_base: u64,
    /// Sequence numbers, pending journal entries and the open journal file.
    log: StdMutex<Log>,
    /// How long a flush may wait for more changes (see [`GATHER_US`]).
    gather: Duration,
    /// When the last flush ended (microseconds since `epoch`).
    last_flush_end: AtomicU64,
    epoch: Instant,
    state: StdMutex<FlushState>,
    /// Bumped after every flush attempt; waiters re-check `state` when it changes.
    flushed: watch::Sender<u64>,
    flushes: AtomicU64,
    flushed_changes: AtomicU64,
}

/// What the next flush must make durable. One lock orders sequence numbers, journal
/// entries and sled writes, so a flush that reads `applied` covers exactly what it takes.
struct Log {
    /// Sequence number of the last change applied in memory (changes are numbered 1, 2, …).
    applied: u64,
    /// Journal entries not yet written.
    pending: Vec<u8>,
    /// The buffer of the last flush, emptied: the next flush's `pending`. Two buffers go
    /// round instead of one new allocation per flush, which the allocator handed back to
    /// the system and took again page by page (a page fault per 4 KiB).
    spare: Vec<u8>,
    /// A change was written to sled directly since the last flush took this flag: the
    /// flush must flush sled too.
    sled_dirty: bool,
    /// The journal file entries go to (`None`: no journal).
    journal: Option<Journal>,
}

/// The current journal file.
struct Journal {
    dir: PathBuf,
    number: u64,
    file: Arc<StdMutex<JournalFile>>,
    /// Octets appended for this file (written or pending).
    bytes: u64,
}

#[derive(Default)]
struct FlushState {
    /// Every change numbered up to this is on disk.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Number of failed flushes so far.
    failures: u64,
    /// The last failed flush: the sequence number it was to cover, and why it failed.
    last_failure: Option<(u64, String)>,
}

impl GroupCommit {
    fn new(rev_base: u64, journal: Option<Journal>) -> Self {
        GroupCommit {
            applied: AtomicU64::new(0),
            gather_until: AtomicU64::new(u64::MAX),
            gathered: (StdMutex::new(false), Condvar::new()),
            rev_base,
            log: StdMutex::new(Log {
                applied: 0,
                pending: Vec::new(),
                spare: Vec::new(),
                sled_dirty: false,
                journal,
            }),
            gather: Duration::from_micros(
                std::env::var("SICHSS_GROUP_COMMIT_US")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(GATHER_US),
            ),
            last_flush_end: AtomicU64::new(0),
            epoch: Instant::now(),
            state: StdMutex::new(FlushState::default()),
            flushed: watch::Sender::new(0),
            flushes: AtomicU64::new(0),
            flushed_changes: AtomicU64::new(0),
        }
    }

    fn log(&self) -> StdMutexGuard<'_, Log> {
        // Counters and a byte buffer, consistent after any panic; recover from poisoning.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self, log: &mut Log) -> u64 {
        log.applied += 1;
        self.applied.store(log.applied, Ordering::SeqCst);
        self.wake_gatherer(log.applied);
        log.applied
    }

    /// Wakes a gathering flush if change `applied` is the one it waits for.
    fn wake_gatherer(&self, applied: u64) {
        if applied >= self.gather_until.load(Ordering::SeqCst)
            && self.gather_until.swap(u64::MAX, Ordering::SeqCst) != u64::MAX
        {
            let (woken, cv) = &self.gathered;
            *woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_one();
        }
    }

    /// Records `n` changes written to sled directly; returns the last one's sequence
    /// number (the flush that covers it flushes sled).
    fn applied(&self, n: u64) -> u64 {
        let mut log = self.log();
        log.applied += n;
        log.sled_dirty = true;
        self.applied.store(log.applied, Ordering::SeqCst);
        self.wake_gatherer(log.applied);
        log.applied
    }

    /// A revision for a record about to be written to sled directly (higher than any
    /// revision handed out before).
    fn revision(&self) -> u64 {
        let mut log = self.log();
        self.rev_base | self.next(&mut log)
    }

    /// Journals `payload` (a whole record) as the next change, and runs `publish` with
    /// its revision under the same lock (so a checkpoint sees the journal entry and the
    /// published record together). Returns the sequence number to wait for and the
    /// journal's size; `None` without a journal.
    fn journaled(&self, payload: &[u8], publish: impl FnOnce(u64)) -> Option<(u64, u64)> {
        let mut log = self.log();
        log.journal.as_ref()?;
        let seq = self.next(&mut log);
        let rev = self.rev_base | seq;
        journal::push_entry(&mut log.pending, rev, payload);
        let journal = log.journal.as_mut().expect("checked above");
        journal.bytes += (payload.len() + 17) as u64;
        let bytes = journal.bytes;
        publish(rev);
        Some((seq, bytes))
    }

    fn state(&self) -> StdMutexGuard<'_, FlushState> {
        // The state is plain counters, consistent after any panic; recover from poisoning.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until change `seq` is durable, starting a flush if none is running. Fails if
    /// a flush that was to cover `seq` failed after this call began.
    async fn wait(self: &Arc<Self>, db: &Db, seq: u64) -> Result<(), StoreError> {
        let mut flushed = self.flushed.subscribe();
        let failures_before = self.state().failures;
        loop {
            {
                let mut st = self.state();
                if st.durable >= seq {
                    return Ok(());
                }
                if st.failures > failures_before {
                    if let Some((target, why)) = &st.last_failure {
                        if *target >= seq {
                            return Err(StoreError::Backend(format!(
                                "flushing the sled store to disk failed: {why}"
                            )));
                        }
                    }
                }
                if !st.flushing {
                    st.flushing = true;
                    drop(st);
                    self.start_flush(db.clone());
                }
            }
            flushed.changed().await.map_err(|_| {
                StoreError::Backend("the group-commit flusher went away".to_owned())
            })?;
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Before a flush reads `applied`: under a steady stream of writes (the previous flush
    /// ended moments ago), waits up to `gather` or until [`GATHER_CHANGES`] changes are
    /// pending, so that one flush covers many changes. Waiters are woken only by the flush,
    /// so no change is acknowledged earlier than before; only later.
    fn gather(&self) {
        if self.gather.is_zero() {
            return;
        }
        let last = self.last_flush_end.load(Ordering::Relaxed);
        if last == 0 || self.now_us().saturating_sub(last) > GATHER_BUSY_US {
            return;
        }
        let target = self.state().durable.saturating_add(GATHER_CHANGES);
        // One wait, cut short by the writer of change `target`: sleeping in steps of 100 µs
        // cost this thread a wakeup per step (3 % of the server's CPU at 75,000/s).
        let (woken, cv) = &self.gathered;
        let mut guard = woken.lock().unwrap_or_else(|p| p.into_inner());
        *guard = false;
        self.gather_until.store(target, Ordering::SeqCst);
        // A writer that got there before the store above did not look for a gatherer.
        if self.applied.load(Ordering::SeqCst) < target {
            guard = cv
                .wait_timeout_while(guard, self.gather, |woken| !*woken)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.gather_until.store(u64::MAX, Ordering::SeqCst);
        drop(guard);
    }

    /// One flush: takes what is pending (sequence number, journal entries, the sled flag)
    /// and makes it durable: sled first (its changes precede the journal entries that
    /// may build on them), then the journal entries, with one sync each.
    fn flush_once(&self, db: &Db) -> (u64, Result<(), String>) {
        let (target, bytes, sled, file) = {
            let mut log = self.log();
            // The next entries go to a buffer at least the size this flush needed, so that
            // they are not copied over and over as it grows.
            let size = log.pending.len();
            let mut next = std::mem::take(&mut log.spare);
            next.reserve(size);
            let bytes = std::mem::replace(&mut log.pending, next);
            let sled = std::mem::take(&mut log.sled_dirty);
            let file = log.journal.as_ref().map(|j| Arc::clone(&j.file));
            (log.applied, bytes, sled, file)
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            if sled {
                db.flush().map_err(|e| e.to_string())?;
            }
            if !bytes.is_empty() {
                let file = file.ok_or("journal entries without a journal file")?;
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.append_durably(&bytes)
                    .map_err(|e| format!("writing the journal: {e}"))?;
            }
            Ok(())
        }))
        .unwrap_or_else(|_| Err("sled panicked while flushing".to_owned()));
        let mut bytes = bytes;
        bytes.clear();
        let mut log = self.log();
        if bytes.capacity() > log.spare.capacity() && bytes.capacity() <= SPARE_MAX {
            log.spare = bytes;
        }
        (target, result)
    }

    /// Runs flushes on the blocking pool (inline when outside a tokio runtime) for as long
    /// as changes keep coming: when a flush ends with more changes pending, the next one
    /// starts at once on the same thread, rather than when one of their writers' tasks is
    /// next scheduled to ask for it. A flush completes and wakes its waiters even if the
    /// writer that started it is dropped.
    fn start_flush(self: &Arc<Self>, db: Db) {
        let this = Arc::clone(self);
        let job = move || loop {
            this.gather();
            let (target, result) = this.flush_once(&db);
            // A writer that appends after this look finds `flushing` still set and waits
            // for the wakeup below, or finds it cleared and starts the next flush itself.
            if result.is_ok() && this.applied.load(Ordering::SeqCst) > target {
                this.flushed_to(target, result, true);
                continue;
            }
            // Release the database before waking anyone, so that a store dropped by a
            // woken writer really closes (and can be reopened at once).
            drop(db);
            this.flushed_to(target, result, false);
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(job);
            }
            Err(_) => job(),
        }
    }

    /// Records the end of a flush up to `target` (its `result`), with `flushing` left set
    /// when the same thread flushes again at once, and wakes the waiters.
    fn flushed_to(&self, target: u64, result: Result<(), String>, flushing: bool) {
        self.last_flush_end
            .store(self.now_us().max(1), Ordering::Relaxed);
        let mut st = self.state();
        st.flushing = flushing;
        match result {
            Ok(()) => {
                self.flushes.fetch_add(1, Ordering::Relaxed);
                if target > st.durable {
                    self.flushed_changes
                        .fetch_add(target - st.durable, Ordering::Relaxed);
                    st.durable = target;
                }
            }
            Err(e) => {
                st.failures += 1;
                st.last_failure = Some((target, e));
            }
        }
        drop(st);
        self.flushed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn imsi_hash(imsi: &str) -> u64 {
    let mut h = fxhash::FxHasher::default();
    imsi.hash(&mut h);
    h.finish()
}

/// What a lock shard's mutex holds: the sequence number of the last change written under
/// it, per group of its IMSIs. A read that finds nothing to change waits for that change to
/// be durable (it may have read it): with one number per shard, a refresh waited for a
/// flush whenever any of the shard's other subscribers had just been written (3.2 % of the
/// refreshing SARs at 75,000 requests/s, each held for a whole flush); per group, for 1/16
/// of that.
#[derive(Default)]
struct Written([u64; WRITTEN_SLOTS]);

impl Written {
    fn slot(imsi: &str) -> usize {
        // Bits 40 and up: the shard is taken from bits 32 to 39.
        ((imsi_hash(imsi) >> 40) % WRITTEN_SLOTS as u64) as usize
    }

    /// The last change written to `imsi`'s group.
    fn last(&self, imsi: &str) -> u64 {
        self.0[Self::slot(imsi)]
    }

    /// Change `seq` has been written to `imsi`.
    fn set(&mut self, imsi: &str, seq: u64) {
        let slot = &mut self.0[Self::slot(imsi)];
        *slot = (*slot).max(seq);
    }

    /// Change `seq` has been written to some of the shard's subscribers.
    fn set_all(&mut self, seq: u64) {
        for slot in &mut self.0 {
            *slot = (*slot).max(seq);
        }
    }
}

/// Records changed through the journal and not yet in sled: `live` (per lock shard) takes
/// every journaled change; a checkpoint moves `live` into `checkpointing`, writes that
/// into sled and empties it. Readers look in `live`, then `checkpointing`, then sled.
struct Overlay {
    live: Box<[StdMutex<FastMap<String, Dirty>>]>,
    live_len: AtomicUsize,
    /// Per lock shard, like `live` (a checkpoint swaps whole maps).
    checkpointing: Box<[StdMutex<FastMap<String, Dirty>>]>,
    /// Writes to sled outside the journal hold it shared; a checkpoint writing
    /// `checkpointing` into sled holds it exclusively (so it never overwrites a newer
    /// record written meanwhile).
    direct: RwLock<()>,
    /// A checkpoint is running.
    running: AtomicBool,
}

/// A journaled record, its revision and its bytes (as journaled, so that a checkpoint
/// need not encode it again).
#[derive(Clone)]
struct Dirty {
    rev: u64,
    sub: Arc<Subscriber>,
    bytes: Arc<Vec<u8>>,
}

fn unpoison<T>(r: std::sync::LockResult<T>) -> T {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Overlay {
    fn new() -> Self {
        Overlay {
            live: (0..LOCK_SHARDS).map(|_| StdMutex::default()).collect(),
            live_len: AtomicUsize::new(0),
            checkpointing: (0..LOCK_SHARDS).map(|_| StdMutex::default()).collect(),
            direct: RwLock::new(()),
            running: AtomicBool::new(false),
        }
    }

    fn get(&self, shard: usize, imsi: &str) -> Option<Arc<Subscriber>> {
        if let Some(d) = unpoison(self.live[shard].lock()).get(imsi) {
            return Some(Arc::clone(&d.sub));
        }
        unpoison(self.checkpointing[shard].lock())
            .get(imsi)
            .map(|d| Arc::clone(&d.sub))
    }

    fn publish(&self, shard: usize, imsi: &str, dirty: Dirty) {
        let mut live = unpoison(self.live[shard].lock());
        // Usually a subscriber already there: replaced without a new key.
        match live.get_mut(imsi) {
            Some(d) => *d = dirty,
            None => {
                live.insert(imsi.to_owned(), dirty);
                self.live_len.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Forgets `imsi` (it was just written to sled directly, newer than any journaled
    /// record of it). Caller holds the subscriber's lock and `direct` shared.
    fn forget(&self, shard: usize, imsi: &str) {
        if unpoison(self.live[shard].lock()).remove(imsi).is_some() {
            self.live_len.fetch_sub(1, Ordering::SeqCst);
        }
        unpoison(self.checkpointing[shard].lock()).remove(imsi);
    }
}

/// Writes journaled records into sled and retires journal files (see the module
/// documentation, "Journal and checkpoints").
#[derive(Clone)]
struct Checkpointer {
    db: Db,
    subscribers: Tree,
    meta: Tree,
    overlay: Arc<Overlay>,
    commit: Arc<GroupCommit>,
}

impl Checkpointer {
    /// Starts a checkpoint on its own thread unless one is running.
    fn start(&self) {
        if self.overlay.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("sichss-checkpoint".to_owned())
            .spawn(move || {
                if let Err(e) = this.run() {
                    tracing::error!(error = %e, "sled store: checkpoint failed; the journal keeps every change, next attempt at the next trigger");
                }
                this.overlay.running.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.overlay.running.store(false, Ordering::SeqCst);
        }
    }

    /// Waits for a running checkpoint, then runs one (the store is closing).
    fn run_now(&self) -> Result<(), StoreError> {
        while self.overlay.running.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let result = self.run();
        self.overlay.running.store(false, Ordering::SeqCst);
        result
    }

    /// One checkpoint: a new journal file takes the changes from now on, the records
    /// changed so far go into sled, the `meta` journal number moves to the new file (durably,
    /// with the records), and the older files are removed.
    fn run(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let (dir, number) = {
            let log = self.commit.log();
            let j = log.journal.as_ref().ok_or_else(|| {
                StoreError::Backend("checkpoint of a store without a journal".to_owned())
            })?;
            (j.dir.clone(), j.number + 1)
        };
        let file = JournalFile::create(&dir, number)
            .map_err(|e| io_error("creating a journal file", &dir, e))?;
        {
            // Under the log lock no change is being journaled: every entry so far is in
            // the old file (or pending, and then in `live` too), every later one will be
            // in the new file.
            // The previous checkpoint emptied `checkpointing`; each shard's map is swapped
            // whole, holding the `checkpointing` side first so that a reader never finds
            // a record in neither.
            let mut log = self.commit.log();
            for (live, aside) in self
                .overlay
                .live
                .iter()
                .zip(self.overlay.checkpointing.iter())
            {
                let mut aside = unpoison(aside.lock());
                let mut live = unpoison(live.lock());
                std::mem::swap(&mut *aside, &mut *live);
            }
            self.overlay.live_len.store(0, Ordering::SeqCst);
            let j = log.journal.as_mut().expect("checked above");
            j.number = number;
            j.file = Arc::new(StdMutex::new(file));
            j.bytes = 0;
        }
        {
            let _direct = unpoison(self.overlay.direct.write());
            // Plain inserts (sled's `apply_batch` takes a lock that also holds off every
            // read of the trees, the index lookups of LIR and UAR among them), in slices
            // with a pause between them, so that a big checkpoint does not take the CPU
            // from the requests for long. Records are independent: a crash in between
            // replays the journal, whose older entries sled then skips.
            let mut n = 0usize;
            let mut in_slice = 0usize;
            for shard in self.overlay.checkpointing.iter() {
                let records: Vec<(String, Vec<u8>)> = unpoison(shard.lock())
                    .iter()
                    .map(|(imsi, d)| (imsi.clone(), value_with_rev(&d.bytes, d.rev)))
                    .collect();
                for (imsi, value) in records {
                    self.subscribers
                        .insert(imsi.as_bytes(), value)
                        .map_err(|e| backend("checkpoint: writing records", e))?;
                    n += 1;
                    in_slice += 1;
                    if n % CHECKPOINT_STEP == 0 {
                        std::thread::sleep(CHECKPOINT_STEP_PAUSE);
                    }
                }
                if in_slice >= CHECKPOINT_SLICE {
                    // Flushed slice by slice: one big flush would hold the disk (and the
                    // journal's fdatasync queued behind it) for tens of milliseconds.
                    in_slice = 0;
                    self.db
                        .flush()
                        .map_err(|e| backend("checkpoint: flushing", e))?;
                    std::thread::sleep(CHECKPOINT_PAUSE);
                }
            }
            self.meta
                .insert(JOURNAL_KEY, &number.to_be_bytes()[..])
                .map_err(|e| backend("checkpoint: writing the journal number", e))?;
            self.db
                .flush()
                .map_err(|e| backend("checkpoint: flushing", e))?;
            for shard in self.overlay.checkpointing.iter() {
                unpoison(shard.lock()).clear();
            }
            tracing::debug!(
                records = n,
                journal = number,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sled store: checkpoint"
            );
        }
        remove_journals_before(&dir, number);
        Ok(())
    }
}

/// Removes the journal files numbered below `number` (best effort: a file left behind is
/// replayed harmlessly at the next open, its records being no newer than sled's).
fn remove_journals_before(dir: &Path, number: u64) {
    for n in journal::list(dir).unwrap_or_default() {
        if n < number {
            if let Err(e) = std::fs::remove_file(journal::path(dir, n)) {
                tracing::warn!(file = %journal::path(dir, n).display(), error = %e, "cannot remove a checkpointed journal file");
            }
        }
    }
}

/// Applies the journal files an earlier session left (those not yet checkpointed) to
/// sled: each subscriber's newest journaled record, where it is newer than sled's (the
/// entries it supersedes are not decoded). Makes that durable; the caller then starts a
/// new journal file and removes the old ones.
/// Returns the number of records written.
fn replay(
    db: &Db,
    subscribers: &Tree,
    impi: &Tree,
    impu: &Tree,
    meta: &Tree,
    dir: &Path,
) -> Result<usize, StoreError> {
    let files = journal::list(dir).map_err(|e| io_error("listing the journal files", dir, e))?;
    if files.is_empty() {
        return Ok(0);
    }
    let first = meta
        .get(JOURNAL_KEY)
        .map_err(|e| backend("reading the journal number", e))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes);
    // IMSI → (revision, record bytes, where from): the newest journaled record of each
    // subscriber. Only those are decoded: a hot subscriber journaled a thousand times is
    // decoded once (a full 256 MiB journal of the bench's 10,000 subscribers holds ~200,000
    // entries). An entry whose IMSI cannot be read from its first octets (an older layout's
    // JSON) is decoded for it.
    let mut newest: HashMap<String, (u64, Vec<u8>, u64)> = HashMap::new();
    for n in files.into_iter().filter(|n| *n >= first) {
        let path = journal::path(dir, n);
        let bytes =
            journal::read(&path).map_err(|e| io_error("reading a journal file", &path, e))?;
        let (entries, torn) = journal::entries(&bytes);
        if torn > 0 {
            tracing::warn!(file = %path.display(), octets = torn, "journal: ignoring a torn tail (a write the crash interrupted; it was never acknowledged)");
        }
        for (rev, payload) in entries {
            let decoded;
            let imsi = match super::record::imsi_of(payload) {
                Some(imsi) => imsi,
                None => {
                    decoded = decode_entry(&path.display().to_string(), rev, payload)?;
                    decoded.imsi.as_str()
                }
            };
            match newest.get_mut(imsi) {
                Some(e) if e.0 >= rev => {}
                Some(e) => {
                    e.0 = rev;
                    e.1.clear();
                    e.1.extend_from_slice(payload);
                    e.2 = n;
                }
                None => {
                    newest.insert(imsi.to_owned(), (rev, payload.to_vec(), n));
                }
            }
        }
    }
    let newest = newest
        .into_iter()
        .map(|(imsi, (rev, payload, n))| {
            let from = journal::path(dir, n).display().to_string();
            let sub = decode_entry(&from, rev, &payload)?;
            if sub.imsi != imsi {
                return Err(StoreError::Corrupt {
                    key: format!("{from}#{rev}"),
                    reason: format!(
                        "a journal entry names IMSI {imsi} first and {} when decoded",
                        sub.imsi
                    ),
                });
            }
            Ok((imsi, (rev, payload, indexed(&sub))))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut batch = Batch::default();
    let mut written = 0;
    for (imsi, (rev, payload, new_ids)) in newest {
        let Some(current) = subscribers
            .get(imsi.as_bytes())
            .map_err(|e| backend("journal replay: reading a record", e))?
        else {
            continue; // removed after it was journaled
        };
        if value_rev(&current) >= rev {
            continue;
        }
        let value = value_with_rev(&payload, rev);
        let old_ids = decode(&imsi, &current).map(|cur| indexed(&cur));
        if old_ids.as_ref().is_ok_and(|old| *old == new_ids) {
            batch.insert(imsi.as_bytes(), value);
        } else {
            // Not written by the journaled path (which keeps identities), but handled:
            // move the index entries with the record.
            let change = Change {
                imsi: &imsi,
                must_be_new: false,
                old: old_ids.unwrap_or_default(),
                new: Some((value, new_ids)),
            };
            let r = (subscribers, impi, impu).transaction(|(s, i, u)| change.apply(s, i, u));
            if let Err(e) = r {
                tracing::warn!(%imsi, error = ?e, "journal replay: record not applied");
                continue;
            }
        }
        written += 1;
    }
    subscribers
        .apply_batch(batch)
        .map_err(|e| backend("journal replay: writing records", e))?;
    db.flush()
        .map_err(|e| backend("journal replay: flushing", e))?;
    Ok(written)
}

/// A journal entry's record (`from`: the journal file, for the error).
fn decode_entry(from: &str, rev: u64, payload: &[u8]) -> Result<Subscriber, StoreError> {
    super::record::decode(payload).map_err(|e| StoreError::Corrupt {
        key: format!("{from}#{rev}"),
        reason: format!("a journal entry is not a subscriber record: {e}"),
    })
}

/// The identities of `sub` that have index entries: its IMPUs, and its IMPIs except SIC
/// IMPIs that carry its own IMSI (found by that IMSI, see `find_by_impi_shared`).
fn indexed(sub: &Subscriber) -> Identities {
    let mut ids = Identities::of(sub);
    ids.impis.retain(|impi| !own_sic_impi(&sub.imsi, impi));
    ids
}

/// Whether `impi` is a SIC IMPI ([`crate::identity::ImpiKind::Sic`]) carrying `imsi`.
fn own_sic_impi(imsi: &str, impi: &str) -> bool {
    impi.strip_prefix(imsi)
        .is_some_and(|rest| rest.starts_with('@'))
        && Impi::parse_sic(impi).is_some()
}

/// Upgrade from layout 1 or 2: removes the `impi` entries of SIC IMPIs that name their own IMSI;
/// returns how many.
fn drop_own_sic_impi_entries(impi: &Tree) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut batch = Batch::default();
    for item in impi.iter() {
        let (k, v) = item.map_err(|e| backend("upgrading the impi index", e))?;
        let (Ok(id), Ok(owner)) = (std::str::from_utf8(&k), std::str::from_utf8(&v)) else {
            continue;
        };
        if own_sic_impi(owner, id) {
            batch.remove(k);
            removed += 1;
        }
    }
    impi.apply_batch(batch)
        .map_err(|e| backend("upgrading the impi index", e))?;
    Ok(removed)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!(
        "sled store: {what} in {} failed: {e}",
        path.display()
    ))
}

fn backend(what: &str, e: ::sled::Error) -> StoreError {
    StoreError::Backend(format!("sled: {what} failed: {e}"))
}

fn encode(sub: &Subscriber) -> Result<Vec<u8>, StoreError> {
    super::record::encode(sub).map_err(|e| StoreError::Invalid {
        field: "subscriber".to_owned(),
        problem: format!("cannot be serialised: {e}"),
    })
}

/// The sled value of a record: [`LZ4_TAG`], the revision, the record compressed.
fn encode_value(sub: &Subscriber, rev: u64) -> Result<Vec<u8>, StoreError> {
    Ok(value_with_rev(&encode(sub)?, rev))
}

fn value_with_rev(record: &[u8], rev: u64) -> Vec<u8> {
    let compressed = lz4_flex::compress_prepend_size(record);
    let mut v = Vec::with_capacity(1 + 8 + compressed.len());
    v.push(LZ4_TAG);
    v.extend_from_slice(&rev.to_be_bytes());
    v.extend_from_slice(&compressed);
    v
}

/// A sled value's revision (0 for a record of layout 1).
fn value_rev(bytes: &[u8]) -> u64 {
    match bytes.split_first() {
        Some((&(REV_TAG | LZ4_TAG), rest)) if rest.len() >= 8 => {
            u64::from_be_bytes(rest[..8].try_into().expect("8 octets"))
        }
        _ => 0,
    }
}

/// A sled value's record bytes (`super::record`): plain (layout 1, or [`REV_TAG`]) or
/// decompressed ([`LZ4_TAG`]).
fn value_record(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match bytes.split_first() {
        Some((&REV_TAG, rest)) if rest.len() >= 8 => Ok(rest[8..].into()),
        Some((&LZ4_TAG, rest)) if rest.len() >= 12 => {
            let block = &rest[8..];
            let size = u32::from_le_bytes(block[..4].try_into().expect("4 octets"));
            if size > MAX_RECORD_BYTES {
                return Err(format!(
                    "the compressed record claims {size} octets (at most {MAX_RECORD_BYTES})"
                ));
            }
            lz4_flex::decompress_size_prepended(block)
                .map(Into::into)
                .map_err(|e| format!("the compressed record does not decompress: {e}"))
        }
        Some((&LZ4_TAG, _)) => Err("the compressed record is truncated".to_owned()),
        _ => Ok(bytes.into()),
    }
}

/// The record bytes (MessagePack, or JSON for older layouts) of a raw value of the
/// `subscribers` tree, decompressed: for tests that inspect the files (that no plaintext
/// secret is at rest, for one).
#[doc(hidden)]
pub fn record_bytes(value: &[u8]) -> Result<Vec<u8>, String> {
    value_record(value).map(std::borrow::Cow::into_owned)
}

fn decode(imsi: &str, bytes: &[u8]) -> Result<Subscriber, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: format!("{TREE_SUBSCRIBERS}/{imsi}"),
        reason,
    };
    let record = value_record(bytes).map_err(corrupt)?;
    super::record::decode(&record)
        .map_err(|e| corrupt(format!("not a valid subscriber record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Service, ServiceProfile, Shared};

    #[test]
    fn the_owner_cache_hands_back_the_imsi_it_was_given_and_keeps_no_longer_ones() {
        let owners = OwnerCache::new(1000);
        owners.put(
            "sip:+99010000000001@ims.mnc001.mcc001.3gppnetwork.org",
            "001010000000001",
        );
        owners.put("tel:+99010000000001", "01");
        owners.put("tel:+99010000000002", "0010100000000011");
        let get = |id: &str| owners.get(id).map(|i| i.as_str().to_owned());
        assert_eq!(
            get("sip:+99010000000001@ims.mnc001.mcc001.3gppnetwork.org").as_deref(),
            Some("001010000000001")
        );
        assert_eq!(get("tel:+99010000000001").as_deref(), Some("01"));
        // Longer than an IMSI: not kept (a lookup then goes to the index).
        assert_eq!(get("tel:+99010000000002"), None);
        assert_eq!(get("sip:nobody@ims.test"), None);
        // Replaced, not added to.
        owners.put("tel:+99010000000001", "001010000000009");
        assert_eq!(
            get("tel:+99010000000001").as_deref(),
            Some("001010000000009")
        );
        assert!(OwnerCache::new(0).get("tel:+99010000000001").is_none());
    }

    #[test]
    fn identities_are_the_same_when_services_are_shared_or_list_the_same_identities() {
        let service = |impi: &str, impus: &[&str]| Service {
            name: "VoLTE".into(),
            impi: impi.into(),
            impus: impus.iter().map(|s| (*s).to_owned()).collect(),
            profile: ServiceProfile::default(),
            registrations: Default::default(),
            auth_pending: None,
        };
        let mut a = Subscriber::bare("001010000000001");
        a.services.insert(
            "001".into(),
            Shared::new(service("i1@ims.test", &["sip:a@ims.test", "tel:+1"])),
        );
        a.services.insert(
            "002".into(),
            Shared::new(service("i2@ims.test", &["sip:b@ims.test"])),
        );
        // A copy shares every service.
        let b = a.clone();
        assert!(Identities::same(&a, &b));
        // A service copied and changed elsewhere (its name) keeps its identities.
        let mut c = a.clone();
        c.services.get_mut("001").unwrap().name = "renamed".into();
        assert!(!Shared::ptr_eq(&a.services["001"], &c.services["001"]));
        assert!(Identities::same(&a, &c));
        // An IMPU added, an IMPI changed, a service removed: not the same.
        let mut d = a.clone();
        d.services
            .get_mut("002")
            .unwrap()
            .impus
            .push("sip:c@ims.test".into());
        assert!(!Identities::same(&a, &d));
        let mut e = a.clone();
        e.services.get_mut("002").unwrap().impi = "i3@ims.test".into();
        assert!(!Identities::same(&a, &e));
        let mut f = a.clone();
        f.services.remove("002");
        assert!(!Identities::same(&a, &f));
        // An IMPU moved to the other service: the same identities in all, but not service
        // by service, so the caller takes the path that rewrites the index (no harm done).
        let mut g = a.clone();
        g.services.get_mut("001").unwrap().impus.pop();
        g.services
            .get_mut("002")
            .unwrap()
            .impus
            .insert(0, "tel:+1".into());
        assert!(!Identities::same(&a, &g));
    }

    #[test]
    fn imsi_keys_tell_every_imsi_apart_and_refuse_anything_else() {
        assert_ne!(imsi_key("001010000000001"), imsi_key("01010000000001"));
        assert_ne!(imsi_key("460011100612345"), imsi_key("460011100612346"));
        let all: std::collections::HashSet<_> = (0..100_000)
            .map(|n| imsi_key(&format!("0010100{n:08}")).unwrap())
            .collect();
        assert_eq!(all.len(), 100_000);
        for bad in ["", "0010100000000011", "00101a", "+46001", " 46001"] {
            assert_eq!(imsi_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn imsis_differing_in_their_last_digits_spread_over_shards_buckets_and_tags() {
        let hash = |imsi: &str| {
            let mut h = fxhash::FxHasher::default();
            imsi_key(imsi).unwrap().hash(&mut h);
            h.finish()
        };
        // Consecutive, and every thousandth.
        let imsis: Vec<String> = (0..10_000)
            .map(|n| format!("0010100{n:08}"))
            .chain((0..10_000).map(|n| format!("0010{:011}", n * 1000)))
            .collect();
        let mut shards = vec![0usize; LOCK_SHARDS];
        let mut buckets = std::collections::HashSet::new();
        let mut tags = std::collections::HashSet::new();
        for imsi in &imsis {
            shards[SledStore::shard(imsi)] += 1;
            let h = hash(imsi);
            buckets.insert(h & 1023);
            tags.insert(h >> 57);
        }
        // 78 per shard on average; 1,024 buckets and 128 tags, nearly all hit at random.
        assert!(
            shards.iter().all(|&n| (30..=140).contains(&n)),
            "{shards:?}"
        );
        assert!(buckets.len() > 1000, "{} buckets of 1024", buckets.len());
        assert!(tags.len() == 128, "{} tags of 128", tags.len());
    }

    fn json() -> Vec<u8> {
        br#"{"imsi":"460011100612345","services":{"001":{"impi":"460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org"}}}"#.to_vec()
    }

    #[test]
    fn records_are_written_compressed_and_read_back_with_their_revision() {
        let value = value_with_rev(&json(), 0x0102_0304_0506);
        assert_eq!(value[0], LZ4_TAG);
        assert_eq!(value_rev(&value), 0x0102_0304_0506);
        assert_eq!(value_record(&value).unwrap().as_ref(), json().as_slice());
    }

    #[test]
    fn records_of_older_layouts_still_read() {
        // Layout 1: plain JSON, revision 0.
        assert_eq!(value_rev(&json()), 0);
        assert_eq!(value_record(&json()).unwrap().as_ref(), json().as_slice());
        // Layouts 2 and 3: the revision, then plain JSON.
        let mut v2 = vec![REV_TAG];
        v2.extend_from_slice(&9u64.to_be_bytes());
        v2.extend_from_slice(&json());
        assert_eq!(value_rev(&v2), 9);
        assert_eq!(value_record(&v2).unwrap().as_ref(), json().as_slice());
    }

    #[test]
    fn corrupt_compressed_records_are_errors_not_panics_or_huge_allocations() {
        let good = value_with_rev(&json(), 7);
        for cut in 0..good.len() {
            let _ = value_record(&good[..cut]);
        }
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(value_record(&huge).unwrap_err().contains("claims"));
        let mut garbage = good.clone();
        for b in &mut garbage[13..] {
            *b = 0xff;
        }
        assert!(value_record(&garbage).is_err());
        assert!(matches!(
            decode("460011100612345", &garbage),
            Err(StoreError::Corrupt { .. })
        ));
    }

    /// Two IMSIs of one lock shard in different groups of [`Written`].
    fn shard_neighbours() -> (String, String) {
        let imsis: Vec<String> = (0..10_000u64).map(|n| format!("00101{n:010}")).collect();
        for a in &imsis {
            for b in &imsis {
                if SledStore::shard(a) == SledStore::shard(b)
                    && Written::slot(a) != Written::slot(b)
                {
                    return (a.clone(), b.clone());
                }
            }
        }
        panic!("no two IMSIs share a shard in different groups");
    }

    #[test]
    fn a_change_is_kept_for_its_group_and_a_bulk_write_for_every_group() {
        let (a, b) = shard_neighbours();
        let mut w = Written::default();
        w.set(&a, 7);
        assert_eq!((w.last(&a), w.last(&b)), (7, 0));
        // Never back: a number is the last change, the highest.
        w.set(&a, 5);
        assert_eq!(w.last(&a), 7);
        w.set_all(9);
        assert_eq!((w.last(&a), w.last(&b)), (9, 9));
    }

    #[tokio::test]
    async fn a_refresh_waits_for_its_own_subscribers_change_not_for_a_neighbours_in_its_shard() {
        let store = SledStore::open_temporary().unwrap();
        let (a, b) = shard_neighbours();
        // A change to `a` that is never durable: a refresh of `a` waits for it, one of `b`
        // (same lock shard, other group) does not.
        store.lock(&a).await.set(&a, u64::MAX / 2);
        tokio::time::timeout(Duration::from_secs(10), store.settled(&b))
            .await
            .expect("b's refresh does not wait for a's change")
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), store.settled(&a))
                .await
                .is_err(),
            "a's refresh waits for a's change"
        );
    }

    /// A group commit whose flushes gather for `gather`: the last flush ended "in the
    /// future", so however late the test's flush comes, it finds one just ended.
    fn gathering(gather: Duration) -> Arc<GroupCommit> {
        let mut commit = GroupCommit::new(0, None);
        commit.gather = gather;
        commit.last_flush_end.store(u64::MAX / 2, Ordering::Relaxed);
        Arc::new(commit)
    }

    #[test]
    fn a_gathering_flush_is_woken_by_the_change_that_makes_its_count() {
        // A gather of an hour, cut short by the writers: the flush goes on as soon as
        // GATHER_CHANGES changes are pending.
        let commit = gathering(Duration::from_secs(3600));
        let gatherer = {
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || {
                let started = Instant::now();
                commit.gather();
                started.elapsed()
            })
        };
        // The gatherer is waiting (or about to) for change GATHER_CHANGES.
        while commit.gather_until.load(Ordering::SeqCst) == u64::MAX && !gatherer.is_finished() {
            std::thread::yield_now();
        }
        for _ in 0..GATHER_CHANGES {
            let mut log = commit.log();
            commit.next(&mut log);
        }
        let waited = gatherer.join().unwrap();
        assert!(
            waited < Duration::from_secs(60),
            "woken, not timed out: {waited:?}"
        );
        assert_eq!(commit.gather_until.load(Ordering::SeqCst), u64::MAX);
    }

    #[test]
    fn a_gathering_flush_goes_on_after_its_wait_with_fewer_changes() {
        let commit = gathering(Duration::from_millis(20));
        {
            let mut log = commit.log();
            commit.next(&mut log);
        }
        let started = Instant::now();
        commit.gather();
        assert!(started.elapsed() >= Duration::from_millis(20));
        // Changes counted before the flush gathers are counted towards its number.
        let commit = gathering(Duration::from_secs(3600));
        for _ in 0..GATHER_CHANGES {
            let mut log = commit.log();
            commit.next(&mut log);
        }
        commit.gather();
        assert_eq!(commit.gather_until.load(Ordering::SeqCst), u64::MAX);
    }
}
