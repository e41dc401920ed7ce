//! The PostgreSQL store beyond the shared battery, and several nodes on it: concurrent
//! MARs from two Cx applications over two connection pools never share an SQN; forwarding
//! of HSS-initiated requests between nodes; sled → JSON lines → PostgreSQL → JSON lines →
//! sled; migrations; corrupt records.
//!
//! Skipped (with a notice) when `SICHSS_TEST_PG_URL` is not set; see tests/common/pg.rs.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sichss::auth::{self, Key128, Milenage};
use sichss::cluster::{Cluster, ForwardError, Handler};
use sichss::codec::{codes, decode_message, ApplicationId, Avp, CommandCode, Message, VENDOR_3GPP};
use sichss::cx::{CxApp, CxConfig};
use sichss::demo;
use sichss::dict::Dictionary;
use sichss::store::jsonl::{export_jsonl, import_jsonl};
use sichss::store::postgres::{migrate, PgStore};
use sichss::store::sled::SledStore;
use sichss::store::{StoreError, SubscriberStore};

use common::*;

macro_rules! pg_or_skip {
    () => {
        match common::pg::fresh_location() {
            Some(l) => l,
            None => return,
        }
    };
}

fn mar(impi: &str, items: u32) -> Message {
    Message::request(CommandCode::MULTIMEDIA_AUTH, ApplicationId::CX, true, 7, 9)
        .with(Avp::utf8(codes::SESSION_ID, "scscf;1;mar"))
        .with(Avp::grouped(
            codes::VENDOR_SPECIFIC_APPLICATION_ID,
            vec![
                Avp::u32(codes::VENDOR_ID, VENDOR_3GPP),
                Avp::u32(codes::AUTH_APPLICATION_ID, 16777216),
            ],
        ))
        .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
        .with(Avp::identity(
            codes::ORIGIN_HOST,
            "scscf.ims.mnc001.mcc460.3gppnetwork.org",
        ))
        .with(Avp::identity(codes::ORIGIN_REALM, demo::HOME_DOMAIN))
        .with(Avp::identity(codes::DESTINATION_REALM, demo::HOME_DOMAIN))
        .with(Avp::utf8(codes::USER_NAME, impi))
        .with(Avp::utf8(
            codes::PUBLIC_IDENTITY,
            format!("sip:{}@{}", demo::MSISDN_A, demo::HOME_DOMAIN),
        ))
        .with(Avp::u32(codes::SIP_NUMBER_AUTH_ITEMS, items))
        .with(Avp::grouped(
            codes::SIP_AUTH_DATA_ITEM,
            vec![Avp::utf8(
                codes::SIP_AUTHENTICATION_SCHEME,
                "Digest-AKAv1-MD5",
            )],
        ))
        .with(Avp::utf8(codes::SERVER_NAME, "sip:127.0.0.1:6060"))
}

/// The SQNs of every AKA item of an MAA, as the UE's USIM recovers them from AUTN.
fn sqns_of(answer: &Message) -> Vec<u64> {
    assert_eq!(answer.result_code().map(|r| r.0), Some(2001), "{answer:?}");
    let usim = Milenage::with_opc(
        &Key128::from_hex("K", demo::K).unwrap(),
        &Key128::from_hex("OPc", demo::OPC).unwrap(),
    );
    answer
        .avps
        .iter()
        .filter(|a| a.code == codes::SIP_AUTH_DATA_ITEM.code)
        .map(|item| {
            let sa = item
                .find(codes::SIP_AUTHENTICATE)
                .and_then(Avp::as_bytes)
                .expect("SIP-Authenticate");
            let rand: [u8; 16] = sa[..16].try_into().unwrap();
            let autn: [u8; 16] = sa[16..32].try_into().unwrap();
            auth::ue_check_autn(&usim, &rand, &autn)
                .expect("AUTN verifies")
                .0
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mars_through_two_nodes_never_share_an_sqn() {
    let loc = pg_or_skip!();
    // Two "nodes": two Cx applications, each with its own connection pool.
    let one = Arc::new(PgStore::open(&loc, 8).await.unwrap());
    let two = Arc::new(PgStore::open(&loc, 8).await.unwrap());
    one.create(demo::subscriber_a()).await.unwrap();
    let apps = [
        CxApp::new(one.clone(), CxConfig::default()),
        CxApp::new(two.clone(), CxConfig::default()),
    ];
    let mut tasks = Vec::new();
    for i in 0..60 {
        let app = apps[i % 2].clone();
        let sic = if i % 3 == 0 { "002" } else { "001" };
        tasks.push(tokio::spawn(async move {
            let answer = app.handle(&mar(&demo::impi_a(sic), 2)).await;
            sqns_of(&answer)
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for sqn in t.await.unwrap() {
            assert!(seen.insert(sqn), "SQN {sqn:#x} handed out twice");
        }
    }
    assert_eq!(seen.len(), 120);
    // The store's SQN is the highest handed out.
    let stored = one.get(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(Some(&stored.aka.unwrap().sqn), seen.iter().max());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_from_two_pools_serialise_on_the_row() {
    let loc = pg_or_skip!();
    let one = Arc::new(PgStore::open(&loc, 4).await.unwrap());
    let two = Arc::new(PgStore::open(&loc, 4).await.unwrap());
    one.create(numbered(1)).await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                store
                    .update(&numbered_imsi(1), |s| {
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
        assert!(seen.insert(t.await.unwrap()));
    }
    assert_eq!(
        sqn(&two.get(&numbered_imsi(1)).await.unwrap().unwrap()),
        100 * 32
    );
}

#[tokio::test]
async fn sled_to_jsonl_to_postgres_to_jsonl_to_sled_is_lossless() {
    let loc = pg_or_skip!();
    let sled = SledStore::open_temporary().unwrap();
    let mut demo_sub = demo::subscriber_a();
    demo_sub.aka.as_mut().unwrap().sqn = 0x1234;
    sled.create(demo_sub).await.unwrap();
    sled.create(demo::subscriber_b()).await.unwrap();
    sled.put_many((100..400).map(numbered).collect())
        .await
        .unwrap();

    let mut first = Vec::new();
    assert_eq!(export_jsonl(&sled, &mut first).await.unwrap(), 302);
    let pg = PgStore::open(&loc, 4).await.unwrap();
    let report = import_jsonl(&pg, first.as_slice()).await.unwrap();
    assert_eq!((report.imported, report.replaced), (302, 0));
    let mut second = Vec::new();
    assert_eq!(export_jsonl(&pg, &mut second).await.unwrap(), 302);
    assert_eq!(
        String::from_utf8(first.clone()).unwrap(),
        String::from_utf8(second.clone()).unwrap(),
        "the export of PostgreSQL differs from the export of sled"
    );
    let back = SledStore::open_temporary().unwrap();
    import_jsonl(&back, second.as_slice()).await.unwrap();
    assert_eq!(
        back.list(None, usize::MAX).await.unwrap(),
        sled.list(None, usize::MAX).await.unwrap()
    );
    assert_eq!(
        pg.find_by_impi(&demo::impi_a("002"))
            .await
            .unwrap()
            .unwrap()
            .imsi,
        demo::IMSI_A
    );
}

#[tokio::test]
async fn migrate_is_idempotent_and_connect_requires_it() {
    let loc = pg_or_skip!();
    let e = PgStore::connect(&loc, 1).await.unwrap_err().to_string();
    assert!(e.contains("sichss migrate"), "{e}");
    let store = PgStore::open(&loc, 1).await.unwrap();
    let again = migrate::migrate_store(&store).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.version, migrate::latest_version());
    PgStore::connect(&loc, 1).await.unwrap();
}

#[tokio::test]
async fn corrupt_record_is_reported_and_can_be_replaced_or_deleted() {
    let loc = pg_or_skip!();
    let store = PgStore::open(&loc, 2).await.unwrap();
    store.create(numbered(5)).await.unwrap();
    store.create(numbered(6)).await.unwrap();
    raw(
        &loc,
        "UPDATE subscribers SET record = '{\"imsi\": 5}' WHERE imsi = $1",
        &numbered_imsi(5),
    )
    .await;
    match store.get(&numbered_imsi(5)).await {
        Err(StoreError::Corrupt { key, .. }) => {
            assert_eq!(key, format!("subscribers/{}", numbered_imsi(5)))
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.update(&numbered_imsi(5), |_| ()).await,
        Err(StoreError::Corrupt { .. })
    ));
    // put replaces it, moving the index rows (found by IMSI).
    let mut fixed = numbered(5);
    fixed.services.remove("002");
    store.put(fixed.clone()).await.unwrap();
    assert_eq!(store.get(&numbered_imsi(5)).await.unwrap(), Some(fixed));
    assert_eq!(
        store
            .find_by_impi(&impi(&numbered_imsi(5), "002"))
            .await
            .unwrap(),
        None
    );
    // delete removes a corrupt one too.
    raw(
        &loc,
        "UPDATE subscribers SET record = '[]' WHERE imsi = $1",
        &numbered_imsi(6),
    )
    .await;
    assert_eq!(store.delete(&numbered_imsi(6)).await.unwrap(), None);
    assert!(!store.contains(&numbered_imsi(6)).await.unwrap());
    assert_eq!(
        store
            .find_by_impi(&impi(&numbered_imsi(6), "001"))
            .await
            .unwrap(),
        None
    );
}

async fn raw(loc: &sichss::store::postgres::PgLocation, sql: &str, imsi: &str) {
    let (client, conn) = loc.config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.execute(sql, &[&imsi]).await.unwrap();
}

// ---- forwarding between nodes -------------------------------------------------------

const SCSCF_HOST: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";

/// A handler that answers any request with Result-Code `code`, after `delay`.
fn answering(code: u32, delay: Duration) -> Handler {
    Arc::new(move |host: String, bytes: Vec<u8>| {
        Box::pin(async move {
            assert_eq!(host, SCSCF_HOST);
            tokio::time::sleep(delay).await;
            let req = decode_message(&bytes, Dictionary::builtin()).map_err(|e| e.to_string())?;
            let mut answer = Message::answer_to(&req);
            answer.push(Avp::u32(codes::RESULT_CODE, code));
            Ok(answer.encode())
        })
    })
}

fn rtr() -> Message {
    Message::request(
        CommandCode::REGISTRATION_TERMINATION,
        ApplicationId::CX,
        true,
        1,
        2,
    )
    .with(Avp::utf8(codes::SESSION_ID, "hss;1;rtr"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_a_request_to_the_node_holding_the_peer_and_returns_its_answer() {
    let loc = pg_or_skip!();
    let store = PgStore::open(&loc, 4).await.unwrap();
    let timeout = Duration::from_secs(2);
    let a = Cluster::join(
        &store,
        "hss1.example.org",
        answering(5999, Duration::ZERO),
        timeout,
    )
    .await
    .unwrap();
    let b = Cluster::join(
        &store,
        "hss2.example.org",
        answering(2001, Duration::from_millis(50)),
        timeout,
    )
    .await
    .unwrap();
    assert_ne!(a.node_id(), b.node_id());

    // Nobody holds the S-CSCF yet.
    match a.forward(SCSCF_HOST, rtr().encode()).await {
        Err(ForwardError::NoNode { host }) => assert_eq!(host, SCSCF_HOST),
        other => panic!("expected NoNode, got {other:?}"),
    }
    // B holds it (Origin-Host compared case-insensitively).
    b.publish_connections(&[SCSCF_HOST.to_ascii_uppercase()])
        .await
        .unwrap();
    let answer = a.forward(SCSCF_HOST, rtr().encode()).await.unwrap();
    let answer = decode_message(&answer, Dictionary::builtin()).unwrap();
    assert_eq!(answer.result_code().map(|r| r.0), Some(2001));
    assert_eq!(answer.session_id(), Some("hss;1;rtr"));

    // Several at once.
    let many: Vec<_> = (0..10)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.forward(SCSCF_HOST, rtr().encode()).await })
        })
        .collect();
    for t in many {
        let r = t.await.unwrap();
        assert!(r.is_ok(), "{r:?}");
    }

    // A node does not forward to itself: B asked about a peer only B has gets NoNode.
    assert!(matches!(
        b.forward(SCSCF_HOST, rtr().encode()).await,
        Err(ForwardError::NoNode { .. })
    ));

    // When B drops the connection, A finds no node again; when B leaves, the same.
    b.publish_connections(&[]).await.unwrap();
    assert!(matches!(
        a.forward(SCSCF_HOST, rtr().encode()).await,
        Err(ForwardError::NoNode { .. })
    ));
    b.publish_connections(&[SCSCF_HOST.to_owned()])
        .await
        .unwrap();
    b.leave().await;
    assert!(matches!(
        a.forward(SCSCF_HOST, rtr().encode()).await,
        Err(ForwardError::NoNode { .. })
    ));
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_the_remote_failure_and_times_out_on_a_silent_node() {
    let loc = pg_or_skip!();
    let store = PgStore::open(&loc, 4).await.unwrap();
    let timeout = Duration::from_millis(500);
    let a = Cluster::join(
        &store,
        "hss1.example.org",
        answering(2001, Duration::ZERO),
        timeout,
    )
    .await
    .unwrap();
    let failing: Handler = Arc::new(|_, _| {
        Box::pin(async { Err("peer \"scscf\" did not answer within 5s".to_owned()) })
    });
    let b = Cluster::join(&store, "hss2.example.org", failing, timeout)
        .await
        .unwrap();
    b.publish_connections(&[SCSCF_HOST.to_owned()])
        .await
        .unwrap();
    match a.forward(SCSCF_HOST, rtr().encode()).await {
        Err(ForwardError::Remote { node, error }) => {
            assert_eq!(node, b.node_id());
            assert!(error.contains("did not answer"), "{error}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    b.leave().await;

    // C takes far longer than the sender waits (timeout + margin).
    let c = Cluster::join(
        &store,
        "hss3.example.org",
        answering(2001, Duration::from_secs(30)),
        timeout,
    )
    .await
    .unwrap();
    c.publish_connections(&[SCSCF_HOST.to_owned()])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    match a.forward(SCSCF_HOST, rtr().encode()).await {
        Err(ForwardError::Timeout { node, .. }) => assert_eq!(node, c.node_id()),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
