//! The sled store's journal: subscriber updates that keep the identities (the Cx path)
//! are made durable in an append-only journal and written into sled at checkpoints.
//! These tests drop the store as a crash would (`SledStore::abandon`: no closing
//! checkpoint), then reopen it, and check that every acknowledged change is back, that
//! nothing older overwrites something newer, and that a torn journal tail is ignored.

mod common;

use std::path::Path;
use std::sync::Arc;

use sichss::store::sled::{SledOptions, SledStore};
use sichss::store::{Subscriber, SubscriberStore};

use common::*;

async fn everything(store: &SledStore) -> Vec<Subscriber> {
    store.list(None, usize::MAX).await.unwrap()
}

fn options(journal_subscribers: usize) -> SledOptions {
    SledOptions {
        journal_subscribers,
        ..SledOptions::default()
    }
}

fn journal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sichss-journal."))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_updates_survive_a_crash_and_are_replayed_into_sled() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        store
            .put_many((0..40).map(numbered).collect())
            .await
            .unwrap();
        bump_sqns(&store, 40, 10).await;
        let all = everything(&store).await;
        assert!(all.iter().all(|s| sqn(s) == 10 * 32));
        Arc::into_inner(store).unwrap().abandon();
        all
    };
    assert!(
        journal_files(dir.path())
            .iter()
            .any(|f| std::fs::metadata(f).unwrap().len() > 0),
        "the updates should be in a journal file"
    );
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.count().await.unwrap(), 40);
    // The replay wrote them into sled and retired the old journal: a second crash right
    // after the open loses nothing either.
    store.abandon();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_under_load_keep_reads_and_recovery_exact() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        // A checkpoint after every 3 changed subscribers: many run during the updates.
        let store = Arc::new(SledStore::open_with(dir.path(), options(3)).unwrap());
        store
            .put_many((0..30).map(numbered).collect())
            .await
            .unwrap();
        for round in 1..=5u64 {
            // The checkpoint of the last round done (one journal file left), so that this
            // round starts at least one more, however slowly the machine runs them.
            let waited = std::time::Instant::now();
            while journal_files(dir.path()).len() > 1 && waited.elapsed().as_secs() < 5 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            bump_sqns(&store, 30, 4).await;
            for n in 0..30 {
                let s = store.get(&numbered_imsi(n)).await.unwrap().unwrap();
                assert_eq!(
                    sqn(&s),
                    round * 4 * 32,
                    "subscriber {n} after round {round}"
                );
            }
        }
        let all = everything(&store).await;
        Arc::into_inner(store).unwrap().abandon();
        all
    };
    // Each checkpoint starts a new journal file and removes the older ones.
    let files = journal_files(dir.path());
    let newest: u64 = files
        .last()
        .and_then(|f| f.extension()?.to_str()?.parse().ok())
        .unwrap();
    assert!(newest >= 5, "only {newest} journal files were started");
    assert!(
        files.len() <= 2,
        "checkpoints retire journal files: {files:?}"
    );
    let store = SledStore::open_with(dir.path(), options(3)).unwrap();
    assert_eq!(everything(&store).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_put_or_delete_is_not_undone_by_an_older_journal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let replaced = {
        let store = SledStore::open(dir.path()).unwrap();
        for n in 0..4 {
            store.create(numbered(n)).await.unwrap();
        }
        for n in 0..4 {
            store
                .update(&numbered_imsi(n), |s| s.aka.as_mut().unwrap().sqn = 999)
                .await
                .unwrap();
        }
        // Subscriber 0 is replaced, 1 is deleted, 2 keeps its journaled update, 3 is
        // replaced by an import.
        let mut replaced = numbered(0);
        replaced.barred = true;
        store.put(replaced.clone()).await.unwrap();
        store.delete(&numbered_imsi(1)).await.unwrap().unwrap();
        // Subscriber 3 is replaced by a bulk import.
        let mut imported = numbered(3);
        imported.barred = true;
        store.put_many(vec![imported]).await.unwrap();
        store.abandon();
        replaced
    };
    let mut imported = numbered(3);
    imported.barred = true;
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(&numbered_imsi(0)).await.unwrap(), Some(replaced));
    assert_eq!(store.get(&numbered_imsi(1)).await.unwrap(), None);
    assert_eq!(
        sqn(&store.get(&numbered_imsi(2)).await.unwrap().unwrap()),
        999
    );
    assert_eq!(store.get(&numbered_imsi(3)).await.unwrap(), Some(imported));
    assert_eq!(store.count().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_tail_is_ignored_and_earlier_entries_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(numbered(7)).await.unwrap();
        for _ in 0..3 {
            store
                .update(&numbered_imsi(7), |s| s.aka.as_mut().unwrap().sqn += 32)
                .await
                .unwrap();
        }
        store.abandon();
    }
    // A crash in the middle of the next write: half an entry after the last one (over the
    // file's zero-filled tail).
    let file = journal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // The entries: a 17-octet header (magic 0xA5, length LE, CRC, sequence) and the record.
    let mut end = 0;
    while bytes.get(end) == Some(&0xA5) {
        let len = u32::from_le_bytes(bytes[end + 1..end + 5].try_into().unwrap()) as usize;
        end += 17 + len;
    }
    assert!(
        end > 0 && bytes[end..].iter().all(|&b| b == 0),
        "entries, then zeros"
    );
    let half = end / 3 / 2;
    bytes.copy_within(..half, end);
    std::fs::write(&file, &bytes).unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        sqn(&store.get(&numbered_imsi(7)).await.unwrap().unwrap()),
        96
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_leaves_everything_in_sled_and_an_empty_journal() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        store
            .put_many((0..20).map(numbered).collect())
            .await
            .unwrap();
        bump_sqns(&store, 20, 3).await;
        everything(&store).await
    };
    let files = journal_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 0);
    // Without the journal (journal_bytes 0) the store reads the same records from sled.
    let store = SledStore::open_with(
        dir.path(),
        SledOptions {
            journal_bytes: 0,
            ..SledOptions::default()
        },
    )
    .unwrap();
    assert_eq!(everything(&store).await, before);
}

#[tokio::test]
async fn opens_and_upgrades_a_layout_1_store() {
    let dir = tempfile::tempdir().unwrap();
    let old = numbered(3);
    {
        let db = open_raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert(
                "format",
                &b"sichss-sled-1 subscribers:IMSI=>json(Subscriber) impi,impu:identity=>IMSI"[..],
            )
            .unwrap();
        db.open_tree("subscribers")
            .unwrap()
            .insert(old.imsi.as_bytes(), serde_json::to_vec(&old).unwrap())
            .unwrap();
        let impi = db.open_tree("impi").unwrap();
        for s in old.services.values() {
            impi.insert(s.impi.as_bytes(), old.imsi.as_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(&old.imsi).await.unwrap(), Some(old.clone()));
    let first_impi = old.services.values().next().unwrap().impi.clone();
    assert_eq!(
        store.find_by_impi(&first_impi).await.unwrap(),
        Some(old.clone())
    );
    store
        .update(&old.imsi, |s| s.aka.as_mut().unwrap().sqn = 64)
        .await
        .unwrap();
    store.abandon();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(sqn(&store.get(&old.imsi).await.unwrap().unwrap()), 64);
}

/// The keys of the `impi` tree of the closed store in `dir`.
fn impi_index(dir: &Path) -> Vec<String> {
    let db = open_raw_sled(dir);
    db.open_tree("impi")
        .unwrap()
        .iter()
        .map(|kv| String::from_utf8(kv.unwrap().0.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn sic_impis_have_no_index_entry_and_are_found_by_their_imsi() {
    let dir = tempfile::tempdir().unwrap();
    let nai = "rcs.demo@ims.example.net";
    let mut demo = demo_subscriber(DEMO_IMSI);
    demo.services.get_mut("002").unwrap().impi = nai.into();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(demo.clone()).await.unwrap();
        store
            .put_many(vec![numbered(1), numbered(2)])
            .await
            .unwrap();
    }
    // Only the provisioned IMPI is in the index.
    assert_eq!(impi_index(dir.path()), vec![nai.to_owned()]);
    let store = SledStore::open(dir.path()).unwrap();
    for sub in [&demo, &numbered(1), &numbered(2)] {
        for s in sub.services.values() {
            let found = store.find_by_impi(&s.impi).await.unwrap();
            assert_eq!(found.as_ref(), Some(sub), "{}", s.impi);
        }
    }
    // A SIC IMPI of a subscriber that does not list it is nobody's.
    assert_eq!(
        store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_by_impi(&impi("460011100699999", "001"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn opens_a_layout_2_store_and_drops_the_index_entries_of_sic_impis() {
    let dir = tempfile::tempdir().unwrap();
    let nai = "rcs.demo@ims.example.net";
    let mut demo = demo_subscriber(DEMO_IMSI);
    demo.services.get_mut("002").unwrap().impi = nai.into();
    let old = [demo, numbered(3)];
    {
        let db = open_raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert(
                "format",
                &b"sichss-sled-2 subscribers:IMSI=>[0x01 rev:u64be]json(Subscriber) impi,impu:identity=>IMSI journal"[..],
            )
            .unwrap();
        let (subscribers, impi, impu) = (
            db.open_tree("subscribers").unwrap(),
            db.open_tree("impi").unwrap(),
            db.open_tree("impu").unwrap(),
        );
        for sub in &old {
            let mut value = vec![0x01];
            value.extend_from_slice(&7u64.to_be_bytes());
            value.extend_from_slice(&serde_json::to_vec(sub).unwrap());
            subscribers.insert(sub.imsi.as_bytes(), value).unwrap();
            for s in sub.services.values() {
                impi.insert(s.impi.as_bytes(), sub.imsi.as_bytes()).unwrap();
                for u in &s.impus {
                    impu.insert(u.as_bytes(), sub.imsi.as_bytes()).unwrap();
                }
            }
        }
        db.flush().unwrap();
    }
    {
        let store = SledStore::open(dir.path()).unwrap();
        for sub in &old {
            assert_eq!(store.get(&sub.imsi).await.unwrap().as_ref(), Some(sub));
            for s in sub.services.values() {
                let found = store.find_by_impi(&s.impi).await.unwrap();
                assert_eq!(found.as_ref(), Some(sub), "{}", s.impi);
                for u in &s.impus {
                    assert_eq!(store.find_by_impu(u).await.unwrap().as_ref(), Some(sub));
                }
            }
        }
        // The services move on as usual: the SIC IMPI's service is removed.
        store
            .update(&old[1].imsi, |s| {
                s.services.remove("002");
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .find_by_impi(&impi(&old[1].imsi, "002"))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(impi_index(dir.path()), vec![nai.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_count_is_recounted_and_writes_meanwhile_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .put_many((0..3000).map(numbered).collect())
            .await
            .unwrap();
        store.abandon();
    }
    // The records are counted in the background while these writes run.
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let mut writes = Vec::new();
    for n in 3000..3010 {
        let s = Arc::clone(&store);
        writes.push(tokio::spawn(async move { s.create(numbered(n)).await }));
    }
    for n in 0..4 {
        let s = Arc::clone(&store);
        writes.push(tokio::spawn(async move {
            s.delete(&numbered_imsi(n))
                .await
                .map(|old| assert!(old.is_some()))
        }));
    }
    for w in writes {
        w.await.unwrap().unwrap();
    }
    assert_eq!(store.count().await.unwrap(), 3006);
    assert_eq!(everything(&store).await.len(), 3006);
    // A clean close leaves the count; the next open knows it at once.
    drop(Arc::into_inner(store).unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.count().await.unwrap(), 3006);
}

/// One journal entry in the journal's file format (`store::journal`).
fn journal_entry(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    let mut e = vec![0xA5];
    e.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&crc.finalize().to_le_bytes());
    e.extend_from_slice(&seq.to_le_bytes());
    e.extend_from_slice(payload);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_a_layout_4_store_whose_records_and_journal_are_json_and_rewrites_them() {
    let dir = tempfile::tempdir().unwrap();
    let old = [demo_subscriber(DEMO_IMSI), numbered(3)];
    // What the journal holds for the second one: a newer record, not yet in sled.
    let mut journaled = old[1].clone();
    journaled.barred = true;
    {
        let db = open_raw_sled(dir.path());
        let meta = db.open_tree("meta").unwrap();
        meta.insert(
            "format",
            &b"sichss-sled-4 subscribers:IMSI=>[0x02 rev:u64be]lz4(json(Subscriber)) impi(but own-IMSI SIC IMPIs),impu:identity=>IMSI journal"[..],
        )
        .unwrap();
        meta.insert("journal", &0u64.to_be_bytes()[..]).unwrap();
        let (subscribers, impu) = (
            db.open_tree("subscribers").unwrap(),
            db.open_tree("impu").unwrap(),
        );
        for sub in &old {
            let mut value = vec![0x02];
            value.extend_from_slice(&7u64.to_be_bytes());
            value.extend_from_slice(&lz4_flex::compress_prepend_size(
                &serde_json::to_vec(sub).unwrap(),
            ));
            subscribers.insert(sub.imsi.as_bytes(), value).unwrap();
            for s in sub.services.values() {
                for u in &s.impus {
                    impu.insert(u.as_bytes(), sub.imsi.as_bytes()).unwrap();
                }
            }
        }
        db.flush().unwrap();
        std::fs::write(
            dir.path().join(format!("sichss-journal.{:016}", 0)),
            journal_entry(8, &serde_json::to_vec(&journaled).unwrap()),
        )
        .unwrap();
    }
    let now = [old[0].clone(), journaled];
    {
        let store = SledStore::open(dir.path()).unwrap();
        for sub in &now {
            assert_eq!(store.get(&sub.imsi).await.unwrap().as_ref(), Some(sub));
            for s in sub.services.values() {
                assert_eq!(
                    store.find_by_impi(&s.impi).await.unwrap().as_ref(),
                    Some(sub)
                );
                for u in &s.impus {
                    assert_eq!(store.find_by_impu(u).await.unwrap().as_ref(), Some(sub));
                }
            }
        }
        // A change journals the record in the new encoding; a clean close (the drop)
        // writes it to sled.
        store
            .update(&now[0].imsi, |s| s.msisdns.push("+8613900000000".into()))
            .await
            .unwrap();
        drop(store);
    }
    let db = open_raw_sled(dir.path());
    let format = db
        .open_tree("meta")
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap();
    assert!(format.starts_with(b"sichss-sled-5 "), "{format:?}");
    let subscribers = db.open_tree("subscribers").unwrap();
    let value = subscribers.get(now[0].imsi.as_bytes()).unwrap().unwrap();
    let record = sichss::store::sled::record_bytes(&value).unwrap();
    assert!(
        matches!(record[0], 0x80..=0x8f | 0xde | 0xdf),
        "a MessagePack map, not JSON: {:?}",
        &record[..8]
    );
    drop((subscribers, db));
    let store = SledStore::open(dir.path()).unwrap();
    let first = store.get(&now[0].imsi).await.unwrap().unwrap();
    assert_eq!(
        first.msisdns.last().map(String::as_str),
        Some("+8613900000000")
    );
    assert_eq!(
        store.get(&now[1].imsi).await.unwrap().as_ref(),
        Some(&now[1])
    );
}

/// A layout-5 journal payload that names `imsi` first, as the store writes it, and is
/// damaged right after.
fn damaged_after_the_imsi(imsi: &str) -> Vec<u8> {
    let mut p = vec![0x89, 0xa4];
    p.extend_from_slice(b"imsi");
    p.push(0xa0 | u8::try_from(imsi.len()).unwrap());
    p.extend_from_slice(imsi.as_bytes());
    p.extend_from_slice(&[0xc1, 0xc1, 0xc1]);
    p
}

/// A crashed store holding `numbered(1)` and `numbered(2)`, its journal followed by a file
/// of `entries` (revision, payload): newer than anything the store wrote.
async fn crashed_with_extra_journal(dir: &Path, entries: &[(u64, Vec<u8>)]) {
    let store = SledStore::open(dir).unwrap();
    store
        .put_many(vec![numbered(1), numbered(2)])
        .await
        .unwrap();
    store
        .update(&numbered_imsi(1), |s| {
            s.msisdns.push("+8613900000001".into())
        })
        .await
        .unwrap();
    store.abandon();
    let last = journal_files(dir).pop().expect("a journal file");
    let n: u64 = last
        .extension()
        .and_then(|e| e.to_str())
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = Vec::new();
    for (rev, payload) in entries {
        bytes.extend(journal_entry(*rev, payload));
    }
    std::fs::write(dir.join(format!("sichss-journal.{:016}", n + 1)), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_decodes_only_each_subscribers_newest_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut newest = numbered(1);
    newest.barred = true;
    // A damaged entry superseded by a newer one of the same subscriber is passed over;
    // the newest one (JSON, of an older layout, whose IMSI is decoded) is what replays.
    crashed_with_extra_journal(
        dir.path(),
        &[
            (u64::MAX - 2, damaged_after_the_imsi(&newest.imsi)),
            (u64::MAX - 1, serde_json::to_vec(&newest).unwrap()),
        ],
    )
    .await;
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(&newest.imsi).await.unwrap(), Some(newest));
    assert_eq!(
        store.get(&numbered_imsi(2)).await.unwrap(),
        Some(numbered(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_newest_journal_entry_is_reported_with_its_file_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let imsi = numbered_imsi(2);
    crashed_with_extra_journal(dir.path(), &[(u64::MAX - 1, damaged_after_the_imsi(&imsi))]).await;
    let err = SledStore::open(dir.path()).expect_err("a damaged newest entry");
    let msg = err.to_string();
    assert!(msg.contains("sichss-journal."), "{msg}");
    assert!(msg.contains(&format!("#{}", u64::MAX - 1)), "{msg}");
    assert!(msg.contains("not a subscriber record"), "{msg}");
}
