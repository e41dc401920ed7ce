//! The patent's example (CN103701828A): IMSI 460011100612345, MSISDN +8618612345678,
//! VoLTE (SIC 001) and RCS (SIC 002) sharing their IMPUs. Each service registers and
//! de-registers on its own IMPI; sibling services stay exactly as they were.

use sichss::demo;
use sichss::store::{RegState, SubscriberStore};

use super::harness::*;

#[tokio::test]
async fn registers_volte_then_rcs_without_overwriting_volte() {
    let h = hss().await;
    let volte = demo::impi_a("001");
    let rcs = demo::impi_a("002");
    let a = register(&h, &volte, &sip_a(), 1).await;
    assert_eq!(a.result(), ("rc", 2001));
    let volte_before = h.sub(demo::IMSI_A).await.services["001"].clone();
    assert_eq!(h.pair_a("001", &sip_a()).await, RegState::Registered);
    assert_eq!(
        h.pair_a("001", &tel_a()).await,
        RegState::Registered,
        "implicit set"
    );

    // RCS: the IMPU is registered already, so the I-CSCF gets SUBSEQUENT_REGISTRATION.
    let u = h.send(uar(&rcs, &sip_a(), 0)).await;
    assert_eq!(u.result(), ("exp", 2002));
    assert_eq!(u.server_name(), Some(SCSCF));
    let a = register(&h, &rcs, &sip_a(), 1).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(a.0.str(sichss::codec::codes::USER_NAME), Some(rcs.as_str()));

    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(pair_state(&sub, "002", &sip_a()), RegState::Registered);
    assert_eq!(sub.services["001"], volte_before, "VoLTE untouched by RCS");
}

#[tokio::test]
async fn rcs_first_registration_may_arrive_as_re_registration() {
    // Kamailio keys by IMPU: RCS's first REGISTER with the shared IMPU gives SAR type 2.
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = register(&h, &demo::impi_a("002"), &sip_a(), 2).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert!(a.user_data().is_some(), "User-Data for the new pair");
    assert_eq!(h.pair_a("002", &sip_a()).await, RegState::Registered);
    assert_eq!(h.pair_a("001", &sip_a()).await, RegState::Registered);
}

#[tokio::test]
async fn deregistering_volte_keeps_rcs_and_the_shared_impu_registered() {
    let h = hss().await;
    let volte = demo::impi_a("001");
    let rcs = demo::impi_a("002");
    register(&h, &volte, &sip_a(), 1).await;
    register(&h, &rcs, &sip_a(), 2).await;
    let rcs_before = h.sub(demo::IMSI_A).await.services["002"].clone();

    let u = h.send(uar(&volte, &sip_a(), 1)).await;
    assert_eq!(u.result(), ("rc", 2001));
    let a = h.send(sar(Some(&volte), &[&sip_a()], 5, 0)).await;
    assert_eq!(a.result(), ("rc", 2001));

    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(pair_state(&sub, "001", &sip_a()), RegState::NotRegistered);
    assert_eq!(pair_state(&sub, "001", &tel_a()), RegState::NotRegistered);
    assert_eq!(sub.services["002"], rcs_before, "RCS untouched");
    assert_eq!(
        sub.impu_state(&sip_a()),
        RegState::Registered,
        "RCS still holds it"
    );

    // A MESSAGE to the shared identity is still routed to the S-CSCF.
    let l = h.send(lir(&sip_a())).await;
    assert_eq!(l.result(), ("rc", 2001));
    assert_eq!(l.server_name(), Some(SCSCF));
    let l = h.send(lir(&tel_a())).await;
    assert_eq!(l.server_name(), Some(SCSCF));
}

#[tokio::test]
async fn refreshing_rcs_leaves_volte_as_it_was() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    register(&h, &demo::impi_a("002"), &sip_a(), 1).await;
    let volte_before = h.sub(demo::IMSI_A).await.services["001"].clone();
    let a = h
        .send(sar(Some(&demo::impi_a("002")), &[&sip_a()], 2, 1))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    assert!(
        a.user_data().is_none(),
        "User-Data-Already-Available honoured"
    );
    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(sub.services["001"], volte_before);
    assert_eq!(pair_state(&sub, "002", &sip_a()), RegState::Registered);
}

#[tokio::test]
async fn refuses_unsubscribed_sic_003_with_user_unknown() {
    let h = hss().await;
    let impi = "460011100612345@ims.sic003.mnc001.mcc460.3gppnetwork.org";
    for req in [
        uar(impi, &sip_a(), 0),
        mar(impi, &sip_a(), "Digest-AKAv1-MD5", 1, None),
        sar(Some(impi), &[&sip_a()], 1, 0),
    ] {
        assert_eq!(h.send(req).await.result(), ("exp", 5001));
    }
    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(sub, demo_a_untouched(&sub), "nothing changed");
}

fn demo_a_untouched(sub: &sichss::store::Subscriber) -> sichss::store::Subscriber {
    let mut a = demo::subscriber_a();
    a.aka.as_mut().unwrap().sqn = sub.aka.as_ref().unwrap().sqn;
    a
}

#[tokio::test]
async fn plain_impi_subscriber_registers_as_standard_ims() {
    let h = hss().await;
    let impi = demo::impi_b();
    let impu = format!("sip:{}@{}", demo::MSISDN_B, demo::HOME_DOMAIN);
    let u = h.send(uar(&impi, &impu, 0)).await;
    assert_eq!(u.result(), ("exp", 2001));
    assert_eq!(u.capabilities_server_name(), Some(SCSCF));
    let a = register(&h, &impi, &impu, 1).await;
    assert_eq!(a.result(), ("rc", 2001));
    let xml = a.user_data().unwrap();
    assert!(
        xml.contains(&format!("<PrivateID>{impi}</PrivateID>")),
        "{xml}"
    );
    let sub = h.sub(demo::IMSI_B).await;
    assert_eq!(pair_state(&sub, "", &impu), RegState::Registered);
    assert_eq!(h.send(lir(&impu)).await.server_name(), Some(SCSCF));
}

#[tokio::test]
async fn unsubscribing_rcs_leaves_volte_as_it_was() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    register(&h, &demo::impi_a("002"), &sip_a(), 2).await;
    let volte_before = h.sub(demo::IMSI_A).await.services["001"].clone();
    h.app
        .store
        .update(demo::IMSI_A, |s| s.services.remove("002"))
        .await
        .unwrap();
    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(sub.services["001"], volte_before);
    assert!(!sub.services.contains_key("002"));
    // The RCS IMPI is now an unsubscribed SIC.
    let u = h.send(uar(&demo::impi_a("002"), &sip_a(), 0)).await;
    assert_eq!(u.result(), ("exp", 5001));
    // VoLTE still works.
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 2, 1))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
}

#[tokio::test]
async fn acknowledged_changes_survive_reopening_the_store() {
    let dir;
    let sqn;
    {
        let h = hss().await;
        register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
        register(&h, &demo::impi_a("002"), &sip_a(), 2).await;
        h.send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 5, 0))
            .await;
        sqn = h.sub(demo::IMSI_A).await.aka.unwrap().sqn;
        dir = h.dir;
        drop(h.app);
    }
    let store = sichss::store::sled::SledStore::open(dir.path()).unwrap();
    let sub = store.get(demo::IMSI_A).await.unwrap().unwrap();
    assert_eq!(pair_state(&sub, "001", &sip_a()), RegState::NotRegistered);
    assert_eq!(pair_state(&sub, "002", &sip_a()), RegState::Registered);
    assert_eq!(sub.aka.unwrap().sqn, sqn, "every SQN step is durable");
}
