//! LIR decision table (TS 29.228 §6.1.4.1; cx-spec §4.4).

use sichss::codec::{codes, Avp};
use sichss::demo;
use sichss::store::{ApplicationServer, InitialFilterCriteria, SubscriberStore};

use super::harness::*;

#[tokio::test]
async fn registered_impu_is_routed_to_its_scscf() {
    let h = hss().await;
    register(&h, &demo::impi_a("002"), &sip_a(), 1).await;
    for impu in [sip_a(), tel_a()] {
        let a = h.send(lir(&impu)).await;
        assert_eq!(a.result(), ("rc", 2001));
        assert_eq!(a.server_name(), Some(SCSCF));
    }
}

#[tokio::test]
async fn unknown_impu_is_user_unknown() {
    let h = hss().await;
    assert_eq!(h.send(lir("tel:+99999")).await.result(), ("exp", 5001));
}

#[tokio::test]
async fn not_registered_without_unregistered_services_is_identity_not_registered() {
    let h = hss().await;
    assert_eq!(h.send(lir(&sip_a())).await.result(), ("exp", 5003));
}

#[tokio::test]
async fn originating_request_for_unregistered_user_is_unregistered_service() {
    let h = hss().await;
    let a = h
        .send(lir(&sip_a()).with(Avp::enumerated(codes::ORIGINATING_REQUEST, 0)))
        .await;
    assert_eq!(a.result(), ("exp", 2003));
    assert_eq!(a.capabilities_server_name(), Some(SCSCF));
}

#[tokio::test]
async fn unregistered_services_give_unregistered_service_then_server_name() {
    let h = hss().await;
    h.app
        .store
        .update(demo::IMSI_A, |s| {
            s.services
                .get_mut("001")
                .unwrap()
                .profile
                .ifcs
                .push(InitialFilterCriteria {
                    priority: 0,
                    trigger: None,
                    application_server: ApplicationServer {
                        server_name: "sip:voicemail.example.org".into(),
                        default_handling: 0,
                        service_info: None,
                    },
                    profile_part_indicator: Some(1),
                })
        })
        .await
        .unwrap();
    assert_eq!(h.send(lir(&sip_a())).await.result(), ("exp", 2003));
    // The selected S-CSCF then serves the unregistered user.
    let s = h.send(sar(None, &[&sip_a()], 3, 0)).await;
    assert_eq!(s.result(), ("rc", 2001));
    assert!(s.user_data().is_some());
    let a = h.send(lir(&sip_a())).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(a.server_name(), Some(SCSCF));
}
