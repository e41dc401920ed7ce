//! The behaviour every `SubscriberStore` backend must show. A backend opts in with one line,
//! `store_battery!(name, constructor_expression);`, at the end of this file; the constructor
//! is evaluated inside each (async) test and must give a fresh, empty store.

mod common;

/// Defines module `$name` with the whole battery, each test on a store made by `$ctor`.
macro_rules! store_battery {
    ($name:ident, $ctor:expr) => {
        mod $name {
            #![allow(unused_imports)]
            use std::collections::HashSet;
            use std::sync::Arc;
            use std::time::Duration;

            use sichss::store::jsonl::{export_jsonl, import_jsonl, ImportErrorKind};
            use sichss::store::{
                AuthScheme, RegState, Registration, ScscfAssignment, StoreError, Subscriber,
                SubscriberStore,
            };

            use crate::common::*;

            fn field_of(e: StoreError) -> String {
                match e {
                    StoreError::Invalid { field, .. } => field,
                    other => panic!("expected Invalid, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn creates_and_gets_subscriber() {
                let store = $ctor;
                let demo = demo_subscriber(DEMO_IMSI);
                store.create(demo.clone()).await.unwrap();
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(demo));
                assert_eq!(store.get("460011100699999").await.unwrap(), None);
                assert!(store.contains(DEMO_IMSI).await.unwrap());
                assert!(!store.contains("460011100699999").await.unwrap());
            }

            #[tokio::test]
            async fn refuses_duplicate_imsi() {
                let store = $ctor;
                let demo = demo_subscriber(DEMO_IMSI);
                store.create(demo.clone()).await.unwrap();
                let mut again = demo.clone();
                again.barred = true;
                match store.create(again).await {
                    Err(StoreError::AlreadyExists { imsi }) => assert_eq!(imsi, DEMO_IMSI),
                    other => panic!("expected AlreadyExists, got {other:?}"),
                }
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(demo));
            }

            #[tokio::test]
            async fn finds_subscriber_by_each_service_impi() {
                let store = $ctor;
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                store.create(numbered(7)).await.unwrap();
                for (sic, name) in [("001", "VoLTE"), ("002", "RCS")] {
                    let id = impi(DEMO_IMSI, sic);
                    let found = store.find_by_impi(&id).await.unwrap().expect("found");
                    assert_eq!(found.imsi, DEMO_IMSI);
                    let (found_sic, service) = found.service_by_impi(&id).unwrap();
                    assert_eq!((found_sic, service.name.as_str()), (sic, name));
                }
                let other = store
                    .find_by_impi(&impi(&numbered_imsi(7), "002"))
                    .await
                    .unwrap()
                    .expect("found");
                assert_eq!(other.imsi, numbered_imsi(7));
                assert_eq!(store.find_by_impi(&impi(DEMO_IMSI, "003")).await.unwrap(), None);
            }

            #[tokio::test]
            async fn finds_subscriber_by_shared_impu() {
                let store = $ctor;
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                for impu in impus(DEMO_MSISDN) {
                    let found = store.find_by_impu(&impu).await.unwrap().expect("found");
                    assert_eq!(found.imsi, DEMO_IMSI);
                    // Listed by both services.
                    assert!(found.services.values().all(|s| s.impus.contains(&impu)));
                }
                assert_eq!(store.find_by_impu("tel:+8618600000000").await.unwrap(), None);
            }

            #[tokio::test]
            async fn shared_reads_see_what_owned_reads_see_after_every_write() {
                let store = $ctor;
                let imsi = numbered_imsi(5);
                let check = |want: Option<Subscriber>| {
                    let store = &store;
                    let imsi = imsi.clone();
                    async move {
                        let first = want.as_ref().map(|s| s.services.values().next().unwrap().clone());
                        assert_eq!(store.get_shared(&imsi).await.unwrap().as_deref(), want.as_ref());
                        assert_eq!(store.get(&imsi).await.unwrap(), want);
                        if let Some(svc) = first {
                            assert_eq!(
                                store.find_by_impi_shared(&svc.impi).await.unwrap().as_deref(),
                                want.as_ref()
                            );
                            assert_eq!(
                                store.find_by_impu_shared(&svc.impus[0]).await.unwrap().as_deref(),
                                want.as_ref()
                            );
                        }
                    }
                };
                check(None).await;
                let mut sub = numbered(5);
                store.create(sub.clone()).await.unwrap();
                check(Some(sub.clone())).await;
                store.update(&imsi, |s| s.aka.as_mut().unwrap().sqn = 4096).await.unwrap();
                sub.aka.as_mut().unwrap().sqn = 4096;
                check(Some(sub.clone())).await;
                sub.barred = true;
                store.put(sub.clone()).await.unwrap();
                check(Some(sub.clone())).await;
                store.delete(&imsi).await.unwrap().unwrap();
                check(None).await;
                assert_eq!(store.find_by_impu_shared(&impus("+8618600000005")[0]).await.unwrap(), None);
            }

            #[tokio::test]
            async fn refuses_impu_owned_by_another_subscriber_and_changes_nothing() {
                let store = $ctor;
                // A's RCS service has a provisioned IMPI (a SIC IMPI carries its IMSI, so
                // no other subscriber can list it: validation refuses that first).
                let a_impi = "rcs.demo@ims.example.net";
                let mut a = demo_subscriber(DEMO_IMSI);
                a.services.get_mut("002").unwrap().impi = a_impi.into();
                store.create(a.clone()).await.unwrap();
                let taken = format!("tel:{DEMO_MSISDN}");

                // create: B lists A's tel URI.
                let mut b = numbered(1);
                b.services.get_mut("002").unwrap().impus.push(taken.clone());
                match store.create(b.clone()).await {
                    Err(StoreError::IdentityConflict { identity, owner }) => {
                        assert_eq!((identity.as_str(), owner.as_str()), (taken.as_str(), DEMO_IMSI));
                    }
                    other => panic!("expected IdentityConflict, got {other:?}"),
                }
                assert_eq!(store.get(&b.imsi).await.unwrap(), None);
                assert_eq!(store.find_by_impi(&impi(&b.imsi, "001")).await.unwrap(), None);
                assert_eq!(store.find_by_impu(&b.services["001"].impus[0]).await.unwrap(), None);
                assert_eq!(store.count().await.unwrap(), 1);

                // put: same refusal.
                assert!(matches!(
                    store.put(b.clone()).await,
                    Err(StoreError::IdentityConflict { .. })
                ));
                assert_eq!(store.get(&b.imsi).await.unwrap(), None);

                // update: C exists, then tries to take A's IMPU and, separately, A's IMPI.
                let c = numbered(2);
                store.create(c.clone()).await.unwrap();
                let r = store
                    .update(&c.imsi, |s| {
                        s.services.get_mut("001").unwrap().impus.push(taken.clone())
                    })
                    .await;
                assert!(matches!(r, Err(StoreError::IdentityConflict { .. })), "{r:?}");
                let r = store
                    .update(&c.imsi, |s| {
                        s.services.get_mut("002").unwrap().impi = a_impi.into();
                    })
                    .await;
                match r {
                    Err(StoreError::IdentityConflict { identity, owner }) => {
                        assert_eq!(identity, a_impi);
                        assert_eq!(owner, DEMO_IMSI);
                    }
                    other => panic!("expected IdentityConflict, got {other:?}"),
                }
                assert_eq!(store.get(&c.imsi).await.unwrap(), Some(c.clone()));
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(a.clone()));
                assert_eq!(store.find_by_impu(&taken).await.unwrap().unwrap().imsi, DEMO_IMSI);
                assert_eq!(
                    store.find_by_impi(a_impi).await.unwrap().unwrap().imsi,
                    DEMO_IMSI
                );
                assert_eq!(
                    store.find_by_impi(&impi(&c.imsi, "002")).await.unwrap().unwrap().imsi,
                    c.imsi
                );
            }

            #[tokio::test]
            async fn update_writes_only_changes() {
                let store = $ctor;
                let demo = demo_subscriber(DEMO_IMSI);
                store.create(demo.clone()).await.unwrap();
                let before = store.stats();
                let seen = store.update(DEMO_IMSI, |s| sqn(s)).await.unwrap();
                assert_eq!(seen, 0);
                assert_eq!(store.stats(), before, "a no-op update must not write");
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(demo.clone()));

                let new = store
                    .update(DEMO_IMSI, |s| {
                        let aka = s.aka.as_mut().unwrap();
                        aka.sqn += 32;
                        aka.sqn
                    })
                    .await
                    .unwrap();
                assert_eq!(new, 32);
                let got = store.get(DEMO_IMSI).await.unwrap().unwrap();
                assert_eq!(sqn(&got), 32);
                let mut expect = demo;
                expect.aka.as_mut().unwrap().sqn = 32;
                assert_eq!(got, expect);
            }

            #[tokio::test]
            async fn an_update_its_closure_refuses_writes_nothing_of_what_it_changed() {
                let store = $ctor;
                let demo = demo_subscriber(DEMO_IMSI);
                store.create(demo.clone()).await.unwrap();
                let before = store.stats();
                let e = store
                    .try_update(DEMO_IMSI, |s| -> Result<(), StoreError> {
                        s.barred = true;
                        s.aka.as_mut().unwrap().sqn += 32;
                        s.services.values_mut().next().unwrap().name = "changed".into();
                        Err(StoreError::Invalid {
                            field: "barred".into(),
                            problem: "refused by the caller".into(),
                        })
                    })
                    .await
                    .unwrap_err();
                assert_eq!(field_of(e), "barred");
                assert_eq!(store.stats(), before, "a refused update must not write");
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(demo.clone()));
                // The next update starts from the stored record, not the refused one.
                let sqn_seen = store.update(DEMO_IMSI, |s| sqn(s)).await.unwrap();
                assert_eq!(sqn_seen, sqn(&demo));
            }

            #[tokio::test]
            async fn update_reindexes_added_and_removed_services() {
                let store = $ctor;
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                let siblings = store.get(DEMO_IMSI).await.unwrap().unwrap().services;
                let video_impi = impi(DEMO_IMSI, "003");
                let video_only = format!("sip:video-{DEMO_MSISDN}@{HOME}");

                // Subscribe a third service with its own SIC-IMPI and one IMPU of its own.
                store
                    .update(DEMO_IMSI, |s| {
                        let mut video = service(DEMO_IMSI, "003", "Video", DEMO_MSISDN);
                        video.impus.push(video_only.clone());
                        s.services.insert("003".to_owned(), video.into());
                    })
                    .await
                    .unwrap();
                let found = store.find_by_impi(&video_impi).await.unwrap().expect("found");
                assert_eq!(found.service_by_impi(&video_impi).unwrap().0, "003");
                assert_eq!(
                    store.find_by_impu(&video_only).await.unwrap().unwrap().imsi,
                    DEMO_IMSI
                );

                // Unsubscribe it.
                store
                    .update(DEMO_IMSI, |s| {
                        s.services.remove("003");
                    })
                    .await
                    .unwrap();
                assert_eq!(store.find_by_impi(&video_impi).await.unwrap(), None);
                assert_eq!(store.find_by_impu(&video_only).await.unwrap(), None);

                // Siblings untouched, still found by their IMPIs and the shared IMPUs.
                let now = store.get(DEMO_IMSI).await.unwrap().unwrap();
                assert_eq!(now.services, siblings);
                for sic in ["001", "002"] {
                    assert_eq!(
                        store.find_by_impi(&impi(DEMO_IMSI, sic)).await.unwrap().unwrap().imsi,
                        DEMO_IMSI
                    );
                }
                for impu in impus(DEMO_MSISDN) {
                    assert!(store.find_by_impu(&impu).await.unwrap().is_some(), "{impu}");
                }

                // Unsubscribing RCS leaves VoLTE, which still holds the shared IMPUs.
                store
                    .update(DEMO_IMSI, |s| {
                        s.services.remove("002");
                    })
                    .await
                    .unwrap();
                assert_eq!(store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap(), None);
                assert!(store.find_by_impi(&impi(DEMO_IMSI, "001")).await.unwrap().is_some());
                for impu in impus(DEMO_MSISDN) {
                    assert!(store.find_by_impu(&impu).await.unwrap().is_some(), "{impu}");
                }

                // The released SIC IMPI stays bound to its IMSI: another subscriber may not
                // list it, and subscribing RCS again finds it again.
                let mut other = numbered(3);
                other.services.get_mut("002").unwrap().impi = impi(DEMO_IMSI, "002");
                assert!(
                    matches!(store.create(other).await, Err(StoreError::Invalid { ref field, .. }) if field == "services.002.impi")
                );
                store
                    .update(DEMO_IMSI, |s| {
                        s.services.insert("002".to_owned(), siblings["002"].clone());
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap().unwrap().imsi,
                    DEMO_IMSI
                );
            }

            #[tokio::test]
            async fn an_identity_found_then_moved_or_deleted_is_found_where_it_is_now() {
                let store = $ctor;
                let mut a = numbered(5);
                let nai = "moving.nai@ims.example.net".to_owned();
                a.services.get_mut("002").unwrap().impi = nai.clone();
                let moving = format!("sip:moving@{HOME}");
                a.services.get_mut("001").unwrap().impus.push(moving.clone());
                store.create(a.clone()).await.unwrap();
                store.create(numbered(6)).await.unwrap();
                // Found (and remembered, where a backend remembers owners) at A.
                for _ in 0..2 {
                    assert_eq!(store.find_by_impu(&moving).await.unwrap().unwrap().imsi, a.imsi);
                    assert_eq!(store.find_by_impi(&nai).await.unwrap().unwrap().imsi, a.imsi);
                }
                // Moved to B: A lets them go, then B takes them.
                store
                    .update(&a.imsi, |s| {
                        s.services.get_mut("001").unwrap().impus.retain(|u| *u != moving);
                        s.services.remove("002");
                    })
                    .await
                    .unwrap();
                assert_eq!(store.find_by_impu(&moving).await.unwrap(), None);
                assert_eq!(store.find_by_impi(&nai).await.unwrap(), None);
                let b = numbered_imsi(6);
                store
                    .update(&b, |s| {
                        s.services.get_mut("001").unwrap().impus.push(moving.clone());
                        s.services.get_mut("002").unwrap().impi = nai.clone();
                    })
                    .await
                    .unwrap();
                for _ in 0..2 {
                    assert_eq!(store.find_by_impu(&moving).await.unwrap().unwrap().imsi, b);
                    assert_eq!(store.find_by_impi(&nai).await.unwrap().unwrap().imsi, b);
                }
                // B deleted: found nowhere, even though A still exists.
                store.delete(&b).await.unwrap();
                assert_eq!(store.find_by_impu(&moving).await.unwrap(), None);
                assert_eq!(store.find_by_impi(&nai).await.unwrap(), None);
                assert!(store.get(&a.imsi).await.unwrap().is_some());
            }

            #[tokio::test]
            async fn settled_returns_once_what_a_read_saw_is_durable() {
                let store = Arc::new($ctor);
                store.create(numbered(8)).await.unwrap();
                let imsi = numbered_imsi(8);
                // Writers and settled readers of one subscriber, interleaved: every settle
                // returns (none waits for a flush that never comes), for subscribers that
                // exist and for one that does not.
                let mut tasks = Vec::new();
                for n in 0..16u64 {
                    let store = Arc::clone(&store);
                    let imsi = imsi.clone();
                    tasks.push(tokio::spawn(async move {
                        if n % 2 == 0 {
                            store
                                .update(&imsi, |s| s.aka.as_mut().unwrap().sqn += 32)
                                .await
                                .unwrap();
                        }
                        let seen = store.get_shared(&imsi).await.unwrap().unwrap();
                        store.settled(&imsi).await.unwrap();
                        seen.aka.as_ref().unwrap().sqn
                    }));
                }
                for t in tasks {
                    let sqn = tokio::time::timeout(Duration::from_secs(10), t)
                        .await
                        .expect("settled returns")
                        .unwrap();
                    assert_eq!(sqn % 32, numbered(8).aka.unwrap().sqn % 32);
                }
                store.settled("001019999999999").await.unwrap();
                let last = store.get(&imsi).await.unwrap().unwrap();
                assert_eq!(
                    last.aka.unwrap().sqn,
                    numbered(8).aka.unwrap().sqn + 8 * 32
                );
            }

            #[tokio::test]
            async fn update_of_missing_subscriber_is_not_found() {
                let store = $ctor;
                let mut ran = false;
                match store.update("460011100699999", |_| ran = true).await {
                    Err(StoreError::NotFound { imsi }) => assert_eq!(imsi, "460011100699999"),
                    other => panic!("expected NotFound, got {other:?}"),
                }
                assert!(!ran, "the closure must not run without a subscriber");
                assert_eq!(store.count().await.unwrap(), 0);
            }

            #[tokio::test]
            async fn delete_removes_indexes() {
                let store = $ctor;
                // One SIC IMPI and one provisioned IMPI (a NAI that is not IMSI-derived).
                let mut demo = demo_subscriber(DEMO_IMSI);
                demo.services.get_mut("002").unwrap().impi = "rcs.demo@ims.example.net".into();
                store.create(demo.clone()).await.unwrap();
                store.create(numbered(4)).await.unwrap();
                assert_eq!(store.delete(DEMO_IMSI).await.unwrap(), Some(demo.clone()));
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), None);
                for s in demo.services.values() {
                    assert_eq!(store.find_by_impi(&s.impi).await.unwrap(), None, "{}", s.impi);
                }
                for impu in impus(DEMO_MSISDN) {
                    assert_eq!(store.find_by_impu(&impu).await.unwrap(), None);
                }
                assert_eq!(store.delete(DEMO_IMSI).await.unwrap(), None);
                // The other subscriber is untouched.
                assert_eq!(store.get(&numbered_imsi(4)).await.unwrap(), Some(numbered(4)));
                // The identities are free again: a new subscriber may take the IMPUs and
                // the provisioned IMPI (a SIC IMPI carries its IMSI, so it stays the
                // deleted subscriber's).
                let mut heir = demo_subscriber("460011100654321");
                heir.services.get_mut("002").unwrap().impi = "rcs.demo@ims.example.net".into();
                store.create(heir.clone()).await.unwrap();
                assert_eq!(
                    store.find_by_impu(&impus(DEMO_MSISDN)[0]).await.unwrap().unwrap().imsi,
                    heir.imsi
                );
                assert_eq!(
                    store.find_by_impi("rcs.demo@ims.example.net").await.unwrap().unwrap().imsi,
                    heir.imsi
                );
                assert_eq!(store.find_by_impi(&impi(DEMO_IMSI, "001")).await.unwrap(), None);
            }

            #[tokio::test]
            async fn contains_many_answers_for_each_imsi_in_order() {
                let store = $ctor;
                store.put_many((0..200).map(numbered).collect()).await.unwrap();
                let mut asked: Vec<String> = (150..250).map(numbered_imsi).collect();
                asked.push(numbered_imsi(7));
                asked.push(numbered_imsi(7));
                asked.push("460011100699999".to_owned());
                let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
                let found = store.contains_many(&refs).await.unwrap();
                let mut expected: Vec<bool> = (150..250).map(|n| n < 200).collect();
                expected.extend([true, true, false]);
                assert_eq!(found, expected);
                assert_eq!(store.contains_many(&[]).await.unwrap(), Vec::<bool>::new());
            }

            #[tokio::test]
            async fn a_sic_impi_carrying_another_imsi_is_refused_naming_the_field() {
                let store = $ctor;
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                let mut other = numbered(5);
                other.services.get_mut("001").unwrap().impi = impi(DEMO_IMSI, "001");
                for result in [
                    store.create(other.clone()).await,
                    store.put(other.clone()).await,
                    store.put_many(vec![other.clone()]).await,
                ] {
                    match result {
                        Err(StoreError::Invalid { field, problem }) => {
                            assert_eq!(field, "services.001.impi");
                            assert!(problem.contains(&format!("carries IMSI {DEMO_IMSI}")), "{problem}");
                            assert!(problem.contains(&other.imsi), "{problem}");
                        }
                        r => panic!("expected Invalid, got {r:?}"),
                    }
                }
                assert_eq!(store.get(&other.imsi).await.unwrap(), None);
                // An update that would take it is refused the same way, and changes nothing.
                let mine = numbered(5);
                store.create(mine.clone()).await.unwrap();
                let r = store
                    .update(&mine.imsi, |s| {
                        s.services.get_mut("002").unwrap().impi = impi(DEMO_IMSI, "001");
                    })
                    .await;
                assert!(
                    matches!(r, Err(StoreError::Invalid { ref field, .. }) if field == "services.002.impi"),
                    "{r:?}"
                );
                assert_eq!(store.get(&mine.imsi).await.unwrap(), Some(mine));
                assert_eq!(
                    store.find_by_impi(&impi(DEMO_IMSI, "001")).await.unwrap().unwrap().imsi,
                    DEMO_IMSI
                );
            }

            #[tokio::test]
            async fn an_impi_moving_between_sic_and_provisioned_forms_is_found_either_way() {
                let store = $ctor;
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                let nai = "volte.demo@ims.example.net";
                let sic = impi(DEMO_IMSI, "001");
                store
                    .update(DEMO_IMSI, |s| s.services.get_mut("001").unwrap().impi = nai.into())
                    .await
                    .unwrap();
                assert_eq!(store.find_by_impi(nai).await.unwrap().unwrap().imsi, DEMO_IMSI);
                assert_eq!(store.find_by_impi(&sic).await.unwrap(), None);
                store
                    .update(DEMO_IMSI, |s| s.services.get_mut("001").unwrap().impi = sic.clone())
                    .await
                    .unwrap();
                assert_eq!(store.find_by_impi(&sic).await.unwrap().unwrap().imsi, DEMO_IMSI);
                assert_eq!(store.find_by_impi(nai).await.unwrap(), None);
                // Someone else may now take the provisioned IMPI.
                let mut other = numbered(6);
                other.services.get_mut("002").unwrap().impi = nai.into();
                store.create(other.clone()).await.unwrap();
                assert_eq!(store.find_by_impi(nai).await.unwrap().unwrap().imsi, other.imsi);
            }

            #[tokio::test]
            async fn lists_in_imsi_order_with_paging() {
                let store = $ctor;
                let mut ns: Vec<u32> = (0..25).map(|i| (i * 7919) % 1000).collect();
                // Create in a scrambled order.
                ns.reverse();
                ns.swap(3, 17);
                for &n in &ns {
                    store.create(numbered(n)).await.unwrap();
                }
                let mut expect: Vec<String> = ns.iter().map(|&n| numbered_imsi(n)).collect();
                expect.sort();

                let first = store.list(None, 10).await.unwrap();
                assert_eq!(first.len(), 10);
                let mut all: Vec<String> = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = store.list(after.as_deref(), 10).await.unwrap();
                    if page.is_empty() {
                        break;
                    }
                    assert!(page.len() <= 10);
                    after = Some(page.last().unwrap().imsi.clone());
                    all.extend(page.into_iter().map(|s| s.imsi));
                }
                assert_eq!(all, expect);
                assert_eq!(
                    first.iter().map(|s| s.imsi.clone()).collect::<Vec<_>>(),
                    expect[..10].to_vec()
                );
                // `after` is exclusive and need not be an existing IMSI.
                let page = store.list(Some(&expect[4]), 2).await.unwrap();
                assert_eq!(page.iter().map(|s| &s.imsi).collect::<Vec<_>>(), vec![&expect[5], &expect[6]]);
                assert!(store.list(None, 0).await.unwrap().is_empty());
                assert!(store.list(Some(expect.last().unwrap()), 10).await.unwrap().is_empty());
                assert_eq!(store.list(Some("4"), 1).await.unwrap()[0].imsi, expect[0]);
            }

            #[tokio::test]
            async fn counts() {
                let store = $ctor;
                assert_eq!(store.count().await.unwrap(), 0);
                for n in 0..3 {
                    store.create(numbered(n)).await.unwrap();
                }
                assert_eq!(store.count().await.unwrap(), 3);
                store.put(numbered(1)).await.unwrap(); // replace: same count
                assert_eq!(store.count().await.unwrap(), 3);
                store.delete(&numbered_imsi(0)).await.unwrap();
                assert_eq!(store.count().await.unwrap(), 2);
            }

            #[tokio::test]
            async fn put_inserts_and_replaces_moving_indexes() {
                let store = $ctor;
                let demo = demo_subscriber(DEMO_IMSI);
                store.put(demo.clone()).await.unwrap();
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(demo.clone()));
                let mut replaced = demo.clone();
                replaced.services.remove("002");
                replaced.services.get_mut("001").unwrap().impus = vec![format!("tel:{DEMO_MSISDN}")];
                store.put(replaced.clone()).await.unwrap();
                assert_eq!(store.get(DEMO_IMSI).await.unwrap(), Some(replaced));
                assert_eq!(store.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap(), None);
                assert_eq!(store.find_by_impu(&impus(DEMO_MSISDN)[0]).await.unwrap(), None);
                assert!(store.find_by_impu(&impus(DEMO_MSISDN)[1]).await.unwrap().is_some());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_updates_never_lose_an_increment() {
                let store = Arc::new($ctor);
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                let tasks: Vec<_> = (0..200)
                    .map(|_| {
                        let store = Arc::clone(&store);
                        tokio::spawn(async move {
                            store
                                .update(DEMO_IMSI, |s| {
                                    let aka = s.aka.as_mut().unwrap();
                                    aka.sqn += 32;
                                    aka.sqn
                                })
                                .await
                                .unwrap()
                        })
                    })
                    .collect();
                let mut seen = HashSet::new();
                for t in tasks {
                    assert!(seen.insert(t.await.unwrap()), "an SQN was handed out twice");
                }
                assert_eq!(seen.len(), 200);
                assert_eq!(seen.iter().max(), Some(&(200 * 32)));
                let final_sqn = sqn(&store.get(DEMO_IMSI).await.unwrap().unwrap());
                assert_eq!(final_sqn, 200 * 32);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_updates_of_different_subscribers_proceed() {
                let store = Arc::new($ctor);
                store.create(demo_subscriber(DEMO_IMSI)).await.unwrap();
                for n in 0..20 {
                    store.create(numbered(n)).await.unwrap();
                }
                // Hold the demo subscriber inside its update closure.
                let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
                let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
                let held = {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        store
                            .update(DEMO_IMSI, move |s| {
                                entered_tx.send(()).unwrap();
                                release_rx.recv().unwrap();
                                s.aka.as_mut().unwrap().sqn += 32;
                            })
                            .await
                            .unwrap()
                    })
                };
                tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
                    .await
                    .unwrap();

                // Others complete while it is held (allowing for a few that share its lock
                // shard, if the backend shards its locks).
                let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
                let others: Vec<_> = (0..20)
                    .map(|n| {
                        let store = Arc::clone(&store);
                        let done_tx = done_tx.clone();
                        tokio::spawn(async move {
                            let v = store
                                .update(&numbered_imsi(n), |s| {
                                    let aka = s.aka.as_mut().unwrap();
                                    aka.sqn += 32;
                                    aka.sqn
                                })
                                .await
                                .unwrap();
                            let _ = done_tx.send(n);
                            v
                        })
                    })
                    .collect();
                let mut done = 0;
                while done < 15 {
                    match tokio::time::timeout(Duration::from_secs(20), done_rx.recv()).await {
                        Ok(Some(_)) => done += 1,
                        _ => panic!("only {done} of 20 other subscribers were updated while one was held"),
                    }
                }
                // Still held: its change is not visible.
                assert_eq!(sqn(&store.get(DEMO_IMSI).await.unwrap().unwrap()), 0);
                release_tx.send(()).unwrap();
                held.await.unwrap();
                for t in others {
                    assert_eq!(t.await.unwrap(), 32);
                }
                assert_eq!(sqn(&store.get(DEMO_IMSI).await.unwrap().unwrap()), 32);
            }

            #[tokio::test]
            async fn validates_fields_with_named_errors() {
                let store = $ctor;
                demo_subscriber(DEMO_IMSI).validate().unwrap();
                type Breaker = Box<dyn Fn(&mut Subscriber)>;
                let cases: Vec<(&str, Breaker)> = vec![
                    ("imsi", Box::new(|s| s.imsi = "12345".into())),
                    ("imsi", Box::new(|s| s.imsi = "46001110061234x".into())),
                    ("home_domain", Box::new(|s| s.home_domain = String::new())),
                    ("aka.k", Box::new(|s| { s.aka.as_mut().unwrap().k.0.pop(); })),
                    ("aka.opc", Box::new(|s| s.aka.as_mut().unwrap().opc.as_mut().unwrap().0.replace_range(0..1, "g"))),
                    ("aka.opc", Box::new(|s| s.aka.as_mut().unwrap().opc = None)),
                    ("aka.op", Box::new(|s| s.aka.as_mut().unwrap().op = Some(sichss::store::SecretHex("00".repeat(16))))),
                    ("aka.amf", Box::new(|s| s.aka.as_mut().unwrap().amf = "80000".into())),
                    ("aka.sqn", Box::new(|s| s.aka.as_mut().unwrap().sqn = 1 << 48)),
                    ("digest", Box::new(|s| s.digest.as_mut().unwrap().password = None)),
                    ("digest.ha1", Box::new(|s| s.digest.as_mut().unwrap().ha1 = Some(sichss::store::SecretHex("abc".into())))),
                    ("aka", Box::new(|s| s.aka = None)),
                    ("digest", Box::new(|s| { s.digest = None; s.default_scheme = AuthScheme::SipDigest; })),
                    ("services", Box::new(|s| s.services.clear())),
                    ("services.001.impi", Box::new(|s| s.services.get_mut("001").unwrap().impi = "no-at-sign".into())),
                    ("services.002.impi", Box::new(|s| s.services.get_mut("002").unwrap().impi = String::new())),
                    ("services.002.impi", Box::new(|s| s.services.get_mut("002").unwrap().impi = impi(DEMO_IMSI, "001"))),
                    ("services.002.impus", Box::new(|s| s.services.get_mut("002").unwrap().impus.clear())),
                    ("services.002.impus[1]", Box::new(|s| s.services.get_mut("002").unwrap().impus[1] = "mailto:x@y".into())),
                    ("services.001.profile.barred_impus[0]", Box::new(|s| s.services.get_mut("001").unwrap().profile.barred_impus = vec!["tel:+861".into()])),
                ];
                for (field, brk) in &cases {
                    let mut bad = demo_subscriber(DEMO_IMSI);
                    brk(&mut bad);
                    let e = store.create(bad.clone()).await.unwrap_err();
                    let text = e.to_string();
                    assert_eq!(field_of(e), *field, "{text}");
                    assert_eq!(field_of(store.put(bad).await.unwrap_err()), *field);
                }
                assert_eq!(store.count().await.unwrap(), 0);

                // The problem text says what is wrong and what is expected.
                let mut bad = demo_subscriber(DEMO_IMSI);
                bad.aka.as_mut().unwrap().k.0.pop();
                match bad.validate() {
                    Err(StoreError::Invalid { field, problem }) => {
                        assert_eq!(field, "aka.k");
                        assert!(problem.contains("32 hex digits"), "{problem}");
                        assert!(problem.contains("got 31 characters"), "{problem}");
                    }
                    other => panic!("{other:?}"),
                }
                // A barred IMPU among the service's own is fine.
                let mut ok = demo_subscriber(DEMO_IMSI);
                ok.services.get_mut("002").unwrap().profile.barred_impus = vec![format!("tel:{DEMO_MSISDN}")];
                ok.validate().unwrap();
            }

            #[tokio::test]
            async fn export_then_import_roundtrips() {
                let source = $ctor;
                let mut demo = demo_subscriber(DEMO_IMSI);
                let volte = demo.services.get_mut("001").unwrap();
                volte.registrations.insert(
                    impus(DEMO_MSISDN)[0].clone(),
                    Registration {
                        state: RegState::Registered,
                        scscf: Some(ScscfAssignment {
                            server_name: "sip:scscf.ims.mnc001.mcc460.3gppnetwork.org:6060".into(),
                            origin_host: "scscf.ims.mnc001.mcc460.3gppnetwork.org".into(),
                            origin_realm: "ims.mnc001.mcc460.3gppnetwork.org".into(),
                        }.into()),
                        since: 1_700_000_000,
                    },
                );
                volte.profile.barred_impus = vec![format!("tel:{DEMO_MSISDN}")];
                demo.aka.as_mut().unwrap().sqn = 4242;
                source.create(demo).await.unwrap();
                for n in 0..1234 {
                    source.create(numbered(n)).await.unwrap();
                }
                let mut out = Vec::new();
                let n = export_jsonl(&source, &mut out).await.unwrap();
                assert_eq!(n, 1235);
                assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1235);

                let target = $ctor;
                let report = import_jsonl(&target, out.as_slice()).await.unwrap();
                assert_eq!((report.imported, report.replaced), (1235, 0));
                assert_eq!(
                    target.list(None, 10_000).await.unwrap(),
                    source.list(None, 10_000).await.unwrap()
                );
                assert_eq!(
                    target.find_by_impi(&impi(DEMO_IMSI, "002")).await.unwrap().unwrap().imsi,
                    DEMO_IMSI
                );
                assert_eq!(
                    target.find_by_impu(&impus("+8618600000777")[1]).await.unwrap().unwrap().imsi,
                    numbered_imsi(777)
                );
                // Importing again replaces every record with itself.
                let report = import_jsonl(&target, out.as_slice()).await.unwrap();
                assert_eq!((report.imported, report.replaced), (1235, 1235));
                assert_eq!(target.count().await.unwrap(), 1235);
            }

            #[tokio::test]
            async fn import_reports_bad_line_number() {
                let store = $ctor;
                let line = |n: u32| serde_json::to_string(&numbered(n)).unwrap();
                let mut bad_sqn = serde_json::to_value(numbered(3)).unwrap();
                bad_sqn["aka"]["sqn"] = serde_json::json!("lots");
                let input = format!(
                    "{}\n{}\n\n{}\n{}\n{}\n",
                    line(0),
                    line(1),
                    line(2),
                    bad_sqn,
                    line(4)
                );
                let e = import_jsonl(&store, input.as_bytes()).await.unwrap_err();
                assert_eq!(e.line, 5, "{e}");
                match &e.kind {
                    ImportErrorKind::Parse { path, .. } => assert_eq!(path, "aka.sqn", "{e}"),
                    other => panic!("expected a parse error, got {other:?}"),
                }
                assert!(e.to_string().starts_with("line 5: "), "{e}");
                assert_eq!(e.imported_before.imported, 3);
                assert_eq!(store.count().await.unwrap(), 3);
                assert_eq!(store.get(&numbered_imsi(4)).await.unwrap(), None);

                // A record the store refuses: named by its line, with the store's reason.
                let mut invalid = numbered(11);
                invalid.services.get_mut("001").unwrap().impus[0] = "mailto:x".into();
                let mut conflicting = numbered(12);
                conflicting.services.get_mut("001").unwrap().impus[0] =
                    numbered(0).services["001"].impus[0].clone();
                let input = format!(
                    "{}\n{}\n{}\n",
                    line(10),
                    serde_json::to_string(&invalid).unwrap(),
                    line(13)
                );
                let e = import_jsonl(&store, input.as_bytes()).await.unwrap_err();
                assert_eq!(e.line, 2, "{e}");
                match e.kind {
                    ImportErrorKind::Store(StoreError::Invalid { field, .. }) => {
                        assert_eq!(field, "services.001.impus[0]")
                    }
                    other => panic!("expected Invalid, got {other:?}"),
                }
                assert!(store.contains(&numbered_imsi(10)).await.unwrap());
                assert!(!store.contains(&numbered_imsi(13)).await.unwrap());

                let input = format!("{}\n{}\n", line(13), serde_json::to_string(&conflicting).unwrap());
                let e = import_jsonl(&store, input.as_bytes()).await.unwrap_err();
                assert_eq!(e.line, 2, "{e}");
                assert!(matches!(e.kind, ImportErrorKind::Store(StoreError::IdentityConflict { .. })), "{e}");
                assert!(store.contains(&numbered_imsi(13)).await.unwrap());
                assert!(!store.contains(&numbered_imsi(12)).await.unwrap());

                // Not JSON at all.
                let e = import_jsonl(&store, "{\"imsi\": \n".as_bytes()).await.unwrap_err();
                assert_eq!(e.line, 1);
            }

            #[tokio::test]
            async fn import_stops_at_the_first_bad_line_of_a_large_batch() {
                let store = $ctor;
                // Lines are parsed in parallel: the first bad line is still the one named,
                // with every line before it imported and none after it.
                let mut input = String::new();
                for n in 0..500u32 {
                    match n {
                        300 => input.push_str("{\"imsi\": 7}\n"),
                        450 => input.push_str("not json\n"),
                        _ => {
                            input.push_str(&serde_json::to_string(&numbered(n)).unwrap());
                            input.push('\n');
                        }
                    }
                }
                let e = import_jsonl(&store, input.as_bytes()).await.unwrap_err();
                assert_eq!(e.line, 301, "{e}");
                assert!(matches!(e.kind, ImportErrorKind::Parse { .. }), "{e}");
                assert_eq!(e.imported_before.imported, 300);
                assert_eq!(store.count().await.unwrap(), 300);
                assert!(store.contains(&numbered_imsi(299)).await.unwrap());
                assert!(!store.contains(&numbered_imsi(301)).await.unwrap());
            }

            #[tokio::test]
            async fn put_many_writes_all_or_names_the_refusal() {
                let store = $ctor;
                let subs: Vec<Subscriber> = (0..2500).map(numbered).collect();
                store.put_many(subs).await.unwrap();
                assert_eq!(store.count().await.unwrap(), 2500);
                assert_eq!(
                    store.find_by_impi(&impi(&numbered_imsi(2499), "002")).await.unwrap().unwrap().imsi,
                    numbered_imsi(2499)
                );
                // Two new subscribers claiming the same IMPU: refused, neither half-written.
                let a = numbered(5000);
                let mut b = numbered(5001);
                b.services.get_mut("001").unwrap().impus.push(a.services["001"].impus[1].clone());
                let r = store.put_many(vec![a.clone(), b.clone()]).await;
                assert!(matches!(r, Err(StoreError::IdentityConflict { .. })), "{r:?}");
                assert!(!store.contains(&b.imsi).await.unwrap());
                assert_eq!(store.find_by_impi(&impi(&b.imsi, "001")).await.unwrap(), None);
            }

            #[tokio::test]
            async fn put_many_refuses_a_conflict_anywhere_in_a_large_batch() {
                let store = $ctor;
                store.put_many((0..300).map(numbered).collect()).await.unwrap();
                // Within the batch: the 400th claims an IMPU the 10th of the same batch claims.
                let mut batch: Vec<Subscriber> = (1000..1500).map(numbered).collect();
                let taken = batch[10].services["002"].impus[1].clone();
                batch[400].services.get_mut("002").unwrap().impus.push(taken.clone());
                let late = batch[400].imsi.clone();
                let r = store.put_many(batch).await;
                match r {
                    Err(StoreError::IdentityConflict { identity, owner }) => {
                        assert_eq!(identity, taken);
                        assert_eq!(owner, numbered_imsi(1010));
                    }
                    other => panic!("expected an identity conflict, got {other:?}"),
                }
                assert!(!store.contains(&late).await.unwrap());
                assert_eq!(store.find_by_impi(&impi(&late, "001")).await.unwrap(), None);
                // Against the store: an IMPU of subscriber 7, claimed by a new subscriber.
                let mut batch: Vec<Subscriber> = (2000..2500).map(numbered).collect();
                let sevens = numbered(7).services["002"].impus[0].clone();
                batch[300].services.get_mut("001").unwrap().impus.push(sevens.clone());
                let late = batch[300].imsi.clone();
                let r = store.put_many(batch).await;
                assert!(matches!(r, Err(StoreError::IdentityConflict { ref owner, .. }) if *owner == numbered_imsi(7)), "{r:?}");
                assert!(!store.contains(&late).await.unwrap());
                assert_eq!(
                    store.find_by_impu(&sevens).await.unwrap().unwrap().imsi,
                    numbered_imsi(7)
                );
            }

            #[tokio::test]
            async fn put_many_moves_identities_between_subscribers_of_one_batch() {
                let store = $ctor;
                // Subscriber 5's RCS service has a provisioned IMPI.
                let moved = "rcs.5@ims.example.net".to_owned();
                let mut first: Vec<Subscriber> = (0..300).map(numbered).collect();
                first[5].services.get_mut("002").unwrap().impi = moved.clone();
                store.put_many(first).await.unwrap();
                assert_eq!(store.find_by_impi(&moved).await.unwrap().unwrap().imsi, numbered_imsi(5));
                // Every replaced subscriber drops service 002; the last one takes over the
                // IMPI that subscriber 5 gives up, within the same batch.
                let mut batch: Vec<Subscriber> = (0..300)
                    .map(|n| {
                        let mut s = numbered(n);
                        s.services.remove("002");
                        s
                    })
                    .collect();
                let last = batch.last_mut().unwrap();
                last.services.get_mut("001").unwrap().impi = moved.clone();
                store.put_many(batch).await.unwrap();
                assert_eq!(store.count().await.unwrap(), 300);
                assert_eq!(
                    store.find_by_impi(&moved).await.unwrap().unwrap().imsi,
                    numbered_imsi(299)
                );
                assert_eq!(store.find_by_impi(&impi(&numbered_imsi(299), "001")).await.unwrap(), None);
                for n in [0, 150, 298] {
                    assert_eq!(store.find_by_impi(&impi(&numbered_imsi(n), "002")).await.unwrap(), None);
                    assert_eq!(
                        store.find_by_impi(&impi(&numbered_imsi(n), "001")).await.unwrap().unwrap().imsi,
                        numbered_imsi(n)
                    );
                }
            }
        }
    };
}

store_battery!(
    sled,
    sichss::store::sled::SledStore::open_temporary().unwrap()
);

store_battery!(
    postgres,
    match crate::common::pg::fresh_store().await {
        Some(store) => store,
        None => return,
    }
);
