//! `EncryptingStore` over sled: what the backend holds, what readers see, and how writes
//! of plaintext and `enc:v1:` values are treated (src/store/secrets.rs).

use sichss::demo;
use sichss::store::secrets::{self, EncryptingStore, SecretsKey};
use sichss::store::sled::SledStore;
use sichss::store::{SecretHex, StoreError, SubscriberStore};

fn key(b: u8) -> SecretsKey {
    SecretsKey::from_bytes([b; 32])
}

fn store(k: Option<SecretsKey>) -> EncryptingStore<SledStore> {
    EncryptingStore::new(SledStore::open_temporary().unwrap(), k)
}

#[tokio::test]
async fn the_backend_holds_ciphertext_and_readers_see_plaintext() {
    let s = store(Some(key(1)));
    s.create(demo::subscriber_a()).await.unwrap();
    let raw = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    let aka = raw.aka.as_ref().unwrap();
    assert!(secrets::is_encrypted(&aka.k.0));
    assert!(secrets::is_encrypted(&aka.opc.as_ref().unwrap().0));
    let pw = &raw.digest.as_ref().unwrap().password.as_ref().unwrap().0;
    assert!(secrets::is_encrypted(pw));
    let json = serde_json::to_string(&raw).unwrap();
    for secret in [demo::K, demo::OPC, demo::PASSWORD] {
        assert!(!json.contains(secret));
    }
    // Readers (Cx, the API) get plaintext, by IMSI, IMPI, IMPU and in lists.
    assert_eq!(
        s.get(demo::IMSI_A).await.unwrap().unwrap(),
        demo::subscriber_a()
    );
    let by_impi = s.find_by_impi(&demo::impi_a("001")).await.unwrap().unwrap();
    assert_eq!(by_impi.aka.unwrap().k.0, demo::K);
    // The shared reads of the Cx path too.
    let shared = s.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(*shared, demo::subscriber_a());
    let shared = s
        .find_by_impi_shared(&demo::impi_a("001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*shared, demo::subscriber_a());
    let impu = demo::subscriber_a().services["001"].impus[0].clone();
    let shared = s.find_by_impu_shared(&impu).await.unwrap().unwrap();
    assert_eq!(*shared, demo::subscriber_a());
    let listed = s.list(None, 10).await.unwrap();
    assert_eq!(listed[0].aka.as_ref().unwrap().k.0, demo::K);
    // The backup view keeps ciphertext.
    let stored = s.list_stored(None, 10).await.unwrap();
    assert!(secrets::is_encrypted(&stored[0].aka.as_ref().unwrap().k.0));
    // Deleting hands back plaintext.
    let gone = s.delete(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(gone.aka.unwrap().k.0, demo::K);
}

#[tokio::test]
async fn an_update_that_changes_nothing_writes_nothing_and_a_changed_secret_is_re_encrypted() {
    let s = store(Some(key(1)));
    s.create(demo::subscriber_a()).await.unwrap();
    let before = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    let changes = s.stats().flushed_changes;
    let seen = s
        .update(demo::IMSI_A, |sub| sub.aka.as_ref().unwrap().k.0.clone())
        .await
        .unwrap();
    assert_eq!(seen, demo::K, "the closure sees plaintext");
    assert_eq!(s.stats().flushed_changes, changes, "nothing written");
    assert_eq!(s.inner().get(demo::IMSI_A).await.unwrap().unwrap(), before);

    // An SQN step (what MAR does) keeps the ciphertext of K and OPc as it was.
    s.update(demo::IMSI_A, |sub| sub.aka.as_mut().unwrap().sqn += 32)
        .await
        .unwrap();
    let after = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(
        after.aka.as_ref().unwrap().k,
        before.aka.as_ref().unwrap().k
    );
    assert_eq!(after.aka.as_ref().unwrap().sqn, 32);

    // A new K is encrypted.
    let k2 = "0396eb317b6d1c36f19c1c84cd6ffd16";
    s.update(demo::IMSI_A, |sub| {
        sub.aka.as_mut().unwrap().k = SecretHex(k2.into())
    })
    .await
    .unwrap();
    let raw = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    assert!(secrets::is_encrypted(&raw.aka.as_ref().unwrap().k.0));
    assert_ne!(raw.aka.as_ref().unwrap().k, before.aka.as_ref().unwrap().k);
    assert_eq!(
        s.get(demo::IMSI_A).await.unwrap().unwrap().aka.unwrap().k.0,
        k2
    );
}

#[tokio::test]
async fn shared_reads_decrypt_a_record_once_and_never_hand_out_the_copy_of_an_older_version() {
    use std::sync::Arc;
    let s = store(Some(key(1)));
    s.create(demo::subscriber_a()).await.unwrap();
    let first = s.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(*first, demo::subscriber_a());
    // The same stored record: the same decrypted copy, by IMSI, IMPI and IMPU.
    let again = s.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let by_impi = s
        .find_by_impi_shared(&demo::impi_a("001"))
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&first, &by_impi));
    let impu = demo::subscriber_a().services["001"].impus[0].clone();
    let by_impu = s.find_by_impu_shared(&impu).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &by_impu));

    // An SQN step keeps the ciphertext but is a new record: read anew.
    s.update(demo::IMSI_A, |sub| sub.aka.as_mut().unwrap().sqn += 32)
        .await
        .unwrap();
    let stepped = s.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(stepped.aka.as_ref().unwrap().sqn, 32);
    assert_eq!(stepped.aka.as_ref().unwrap().k.0, demo::K);
    // A new K: the new plaintext, never the old copy.
    let k2 = "0396eb317b6d1c36f19c1c84cd6ffd16";
    s.update(demo::IMSI_A, |sub| {
        sub.aka.as_mut().unwrap().k = SecretHex(k2.into())
    })
    .await
    .unwrap();
    let rekeyed = s.find_by_impu_shared(&impu).await.unwrap().unwrap();
    assert_eq!(rekeyed.aka.as_ref().unwrap().k.0, k2);
    assert_eq!(
        first.aka.as_ref().unwrap().k.0,
        demo::K,
        "copies are not changed in place"
    );
    // Deleted and created again: the new record's secrets.
    s.delete(demo::IMSI_A).await.unwrap();
    assert!(s.get_shared(demo::IMSI_A).await.unwrap().is_none());
    s.create(demo::subscriber_a()).await.unwrap();
    let recreated = s.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(*recreated, demo::subscriber_a());

    // Without a key nothing is copied: the backend's own record.
    let plain = store(None);
    plain.create(demo::subscriber_a()).await.unwrap();
    let ours = plain.get_shared(demo::IMSI_A).await.unwrap().unwrap();
    let backend = plain
        .inner()
        .get_shared(demo::IMSI_A)
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&ours, &backend));
}

#[tokio::test]
async fn plaintext_written_before_the_key_is_read_and_encrypted_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let plain = SledStore::open(dir.path()).unwrap();
        plain.create(demo::subscriber_a()).await.unwrap();
    }
    let s = EncryptingStore::new(SledStore::open(dir.path()).unwrap(), Some(key(1)));
    let check = s.check_key().await.unwrap();
    assert!(!check.encrypted_found);
    assert_eq!(check.plaintext_records, 1);
    assert_eq!(
        s.get(demo::IMSI_A).await.unwrap().unwrap(),
        demo::subscriber_a()
    );
    s.update(demo::IMSI_A, |sub| sub.barred = true)
        .await
        .unwrap();
    let raw = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    assert!(!secrets::has_plaintext(&raw), "migrated on write");
    let check = s.check_key().await.unwrap();
    assert!(check.encrypted_found);
}

#[tokio::test]
async fn writes_accept_ciphertext_of_this_key_only() {
    let s1 = store(Some(key(1)));
    s1.create(demo::subscriber_a()).await.unwrap();
    let exported = s1.list_stored(None, 1).await.unwrap().remove(0);

    // The same key: accepted as is (an import of a backup).
    let s = store(Some(key(1)));
    s.put(exported.clone()).await.unwrap();
    assert_eq!(
        s.get(demo::IMSI_A).await.unwrap().unwrap(),
        demo::subscriber_a()
    );

    // Another key: refused, naming the field.
    let s = store(Some(key(2)));
    match s.put_many(vec![exported.clone()]).await {
        Err(StoreError::Invalid { field, problem }) => {
            assert_eq!(field, "aka.k");
            assert!(problem.contains("another key"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    // No key: refused, naming the settings.
    let s = store(None);
    match s.put(exported.clone()).await {
        Err(StoreError::Invalid { field, problem }) => {
            assert_eq!(field, "aka.k");
            assert!(problem.contains("--secrets-key-file"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    // Ciphertext moved to another subscriber does not decrypt (bound to the IMSI).
    let mut moved = demo::subscriber_b();
    moved.aka.as_mut().unwrap().k = exported.aka.as_ref().unwrap().k.clone();
    assert!(matches!(
        store(Some(key(1))).put(moved).await,
        Err(StoreError::Invalid { .. })
    ));
    // Plaintext validation still applies before encryption.
    let mut bad = demo::subscriber_b();
    bad.aka.as_mut().unwrap().k = SecretHex("zz".into());
    match store(Some(key(1))).create(bad).await {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "aka.k"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_update_writing_ciphertext_without_a_key_is_refused_and_writes_nothing() {
    let s1 = store(Some(key(1)));
    s1.create(demo::subscriber_a()).await.unwrap();
    let sealed_k = s1
        .list_stored(None, 1)
        .await
        .unwrap()
        .remove(0)
        .aka
        .unwrap()
        .k;

    let s = store(None);
    s.create(demo::subscriber_a()).await.unwrap();
    let changes = s.stats().flushed_changes;
    let e = s
        .update(demo::IMSI_A, |sub| {
            sub.barred = true;
            sub.aka.as_mut().unwrap().k = sealed_k.clone();
        })
        .await
        .unwrap_err();
    match e {
        StoreError::Invalid { field, problem } => {
            assert_eq!(field, "aka.k");
            assert!(problem.contains("no secrets key"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.stats().flushed_changes, changes, "nothing written");
    assert_eq!(
        s.get(demo::IMSI_A).await.unwrap().unwrap(),
        demo::subscriber_a(),
        "neither the barring nor the K of the refused update is kept"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_found_at_start_and_on_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = EncryptingStore::new(SledStore::open(dir.path()).unwrap(), Some(key(1)));
        s.create(demo::subscriber_a()).await.unwrap();
        assert!(s.check_key().await.unwrap().encrypted_found);
    }
    {
        let s = EncryptingStore::new(SledStore::open(dir.path()).unwrap(), Some(key(2)));
        let e = s.check_key().await.unwrap_err().to_string();
        assert!(
            e.contains("secrets key does not match the store")
                && e.contains("give the key the store was written with"),
            "{e}"
        );
        let e = s.get(demo::IMSI_A).await.unwrap_err();
        assert!(matches!(e, StoreError::Secrets(_)), "{e}");
        // An update cannot run on secrets it cannot read, and changes nothing.
        assert!(s
            .update(demo::IMSI_A, |sub| sub.barred = true)
            .await
            .is_err());
    }
    let s = EncryptingStore::new(SledStore::open(dir.path()).unwrap(), None);
    let e = s.check_key().await.unwrap_err().to_string();
    assert!(e.contains("no secrets key is configured"), "{e}");
    let raw = s.inner().get(demo::IMSI_A).await.unwrap().unwrap();
    assert!(!raw.barred);
}
