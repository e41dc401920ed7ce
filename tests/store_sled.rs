//! Tests of the sled backend beyond the shared battery: durability across reopen, group
//! commit, index persistence, corrupt records and the layout marker.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sichss::store::sled::SledStore;
use sichss::store::{StoreError, Subscriber, SubscriberStore};

use common::*;

async fn everything(store: &SledStore) -> Vec<Subscriber> {
    store.list(None, usize::MAX).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_changes_finds_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        for n in 0..50 {
            store.create(numbered(n)).await.unwrap();
        }
        let tasks: Vec<_> = (0..500u32)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .update(&numbered_imsi(i % 50), move |s| {
                            s.aka.as_mut().unwrap().sqn += 32;
                            if i % 97 == 0 {
                                s.barred = !s.barred;
                            }
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        store.delete(&numbered_imsi(49)).await.unwrap().unwrap();
        store
            .update(&numbered_imsi(0), |s| {
                s.services.remove("002");
            })
            .await
            .unwrap();
        let all = everything(&store).await;
        assert_eq!(all.len(), 49);
        assert!(all.iter().all(|s| sqn(s) == 10 * 32));
        all
    };
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store).await, before);
    assert_eq!(store.count().await.unwrap(), 49);
    assert_eq!(store.get(&numbered_imsi(49)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_uses_fewer_flushes_than_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    store
        .put_many((0..100).map(numbered).collect())
        .await
        .unwrap();
    let start = store.stats();
    bump_sqns(&store, 100, 10).await;
    let stats = store.stats();
    let flushes = stats.flushes - start.flushes;
    let changes = stats.flushed_changes - start.flushed_changes;
    println!("{flushes} flushes for {changes} changes");
    assert!(flushes < 1000, "{flushes} flushes for 1000 writes");
    assert!(changes >= 1000, "only {changes} changes flushed");
    assert!(flushes >= 1);
    for n in 0..100 {
        let s = store.get(&numbered_imsi(n)).await.unwrap().unwrap();
        assert_eq!(sqn(&s), 10 * 32);
    }
}

#[tokio::test]
async fn survives_restart_with_indexes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
        store.create(numbered(1)).await.unwrap();
        store.create(numbered(2)).await.unwrap();
        store
            .update(DEMO_IMSI, |s| {
                s.services.insert(
                    "003".to_owned(),
                    service(DEMO_IMSI, "003", "Video", DEMO_MSISDN).into(),
                );
                s.services.remove("002");
            })
            .await
            .unwrap();
        store.delete(&numbered_imsi(2)).await.unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let by = |s: Option<Subscriber>| s.map(|s| s.imsi);
    assert_eq!(
        by(store.find_by_impi(&impi(DEMO_IMSI, "003")).await.unwrap()),
        Some(DEMO_IMSI.to_owned())
    );
    assert_eq!(
        by(store.find_by_impi(&impi(DEMO_IMSI, "001")).await.unwrap()),
        Some(DEMO_IMSI.to_owned())
    );
    assert_eq!(
        by(store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap()),
        None
    );
    for impu in impus(DEMO_MSISDN) {
        assert_eq!(
            by(store.find_by_impu(&impu).await.unwrap()),
            Some(DEMO_IMSI.to_owned())
        );
    }
    assert_eq!(
        by(store
            .find_by_impu(&impus("+8618600000001")[1])
            .await
            .unwrap()),
        Some(numbered_imsi(1))
    );
    assert_eq!(
        by(store
            .find_by_impi(&impi(&numbered_imsi(2), "001"))
            .await
            .unwrap()),
        None
    );
    // Ownership is still enforced after the restart.
    let mut thief = numbered(3);
    thief
        .services
        .get_mut("001")
        .unwrap()
        .impus
        .push(impus(DEMO_MSISDN)[1].clone());
    assert!(matches!(
        store.create(thief).await,
        Err(StoreError::IdentityConflict { .. })
    ));
}

/// Writes `value` under `key` in `tree` of the sled database at `dir`, bypassing the store.
fn poke(dir: &Path, tree: &str, key: &str, value: &[u8]) {
    let db = open_raw_sled(dir);
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn corrupt_record_is_reported_with_its_key_and_can_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
        store.create(numbered(1)).await.unwrap();
    }
    poke(dir.path(), "subscribers", DEMO_IMSI, b"{\"imsi\": 42");
    let store = SledStore::open(dir.path()).unwrap();
    match store.get(DEMO_IMSI).await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, format!("subscribers/{DEMO_IMSI}")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.find_by_impi(&impi(DEMO_IMSI, "001")).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.update(DEMO_IMSI, |_| ()).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.list(None, 10).await,
        Err(StoreError::Corrupt { .. })
    ));
    // The other subscriber is fine.
    assert_eq!(
        store.get(&numbered_imsi(1)).await.unwrap(),
        Some(numbered(1))
    );

    // A put repairs it, and index entries of the lost record that it no longer lists go.
    let mut repaired = demo_subscriber(DEMO_IMSI);
    repaired.services.remove("002");
    store.put(repaired.clone()).await.unwrap();
    assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(repaired));
    assert_eq!(
        store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn deleting_a_corrupt_record_frees_its_identities() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
    }
    poke(dir.path(), "subscribers", DEMO_IMSI, b"not json");
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.delete(DEMO_IMSI).await.unwrap(), None);
    assert!(!store.contains(DEMO_IMSI).await.unwrap());
    assert_eq!(
        store.find_by_impu(&impus(DEMO_MSISDN)[0]).await.unwrap(),
        None
    );
    store
        .create(demo_subscriber("460011100654321"))
        .await
        .unwrap();
}

#[tokio::test]
async fn refuses_a_store_with_another_layout() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path()).unwrap());
    poke(dir.path(), "meta", "format", b"sichss-sled-0");
    match SledStore::open(dir.path()) {
        Err(StoreError::Backend(why)) => assert!(why.contains("sichss-sled-0"), "{why}"),
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[tokio::test]
async fn open_reports_an_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    match SledStore::open(&file.join("store")) {
        Err(StoreError::Backend(why)) => assert!(why.contains("cannot open"), "{why}"),
        other => panic!("expected Backend, got {other:?}"),
    }
}

/// Import rate of `put_many` (run with `--ignored --nocapture`; meaningful in release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bulk_import_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let total = 100_000u32;
    let subs: Vec<Subscriber> = (0..total).map(numbered).collect();
    let start = Instant::now();
    for chunk in subs.chunks(10_000) {
        store.put_many(chunk.to_vec()).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{total} subscribers in {secs:.2} s: {:.0}/s, {:?}",
        f64::from(total) / secs,
        store.stats()
    );
    assert_eq!(store.count().await.unwrap(), u64::from(total));
}
