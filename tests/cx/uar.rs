//! UAR decision table (TS 29.228 §6.1.1.1; cx-spec §4.1), one test per row.

use sichss::codec::{codes, Avp};
use sichss::demo;
use sichss::store::SubscriberStore;

use super::harness::*;

#[tokio::test]
async fn unknown_impi_is_user_unknown() {
    let h = hss().await;
    let a = h
        .send(uar(
            "999990000000001@ims.mnc001.mcc460.3gppnetwork.org",
            &sip_a(),
            0,
        ))
        .await;
    assert_eq!(a.result(), ("exp", 5001));
}

#[tokio::test]
async fn malformed_impi_is_user_unknown() {
    let h = hss().await;
    assert_eq!(
        h.send(uar("no-at-sign", &sip_a(), 0)).await.result(),
        ("exp", 5001)
    );
}

#[tokio::test]
async fn unknown_impu_is_user_unknown() {
    let h = hss().await;
    let a = h
        .send(uar(
            &demo::impi_a("001"),
            "sip:nobody@ims.mnc001.mcc460.3gppnetwork.org",
            0,
        ))
        .await;
    assert_eq!(a.result(), ("exp", 5001));
}

#[tokio::test]
async fn impu_of_another_subscriber_is_identities_dont_match() {
    let h = hss().await;
    let b = format!("sip:{}@{}", demo::MSISDN_B, demo::HOME_DOMAIN);
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), &b, 0)).await.result(),
        ("exp", 5002)
    );
}

#[tokio::test]
async fn impu_of_a_sibling_service_only_is_identities_dont_match() {
    let h = hss().await;
    let own = "sip:rcs-only@ims.mnc001.mcc460.3gppnetwork.org";
    h.app
        .store
        .update(demo::IMSI_A, |s| {
            s.services
                .get_mut("002")
                .unwrap()
                .impus
                .push(own.to_string())
        })
        .await
        .unwrap();
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), own, 0)).await.result(),
        ("exp", 5002)
    );
    assert_eq!(
        h.send(uar(&demo::impi_a("002"), own, 0)).await.result(),
        ("exp", 2001)
    );
}

#[tokio::test]
async fn barred_subscription_is_authorization_rejected() {
    let h = hss().await;
    h.app
        .store
        .update(demo::IMSI_A, |s| s.barred = true)
        .await
        .unwrap();
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), &sip_a(), 0))
            .await
            .result(),
        ("rc", 5003)
    );
}

#[tokio::test]
async fn barred_impu_with_an_unbarred_sibling_in_the_set_may_register() {
    let h = hss().await;
    h.app
        .store
        .update(demo::IMSI_A, |s| {
            s.services.get_mut("001").unwrap().profile.barred_impus = vec![tel_a()]
        })
        .await
        .unwrap();
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), &tel_a(), 0))
            .await
            .result(),
        ("exp", 2001)
    );
    h.app
        .store
        .update(demo::IMSI_A, |s| {
            s.services.get_mut("001").unwrap().profile.barred_impus = vec![tel_a(), sip_a()]
        })
        .await
        .unwrap();
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), &tel_a(), 0))
            .await
            .result(),
        ("rc", 5003)
    );
}

#[tokio::test]
async fn emergency_registration_skips_barring() {
    let h = hss().await;
    h.app
        .store
        .update(demo::IMSI_A, |s| s.barred = true)
        .await
        .unwrap();
    let req = uar(&demo::impi_a("001"), &sip_a(), 0).with(Avp::u32(codes::UAR_FLAGS, 1));
    assert_eq!(h.send(req).await.result(), ("exp", 2001));
}

#[tokio::test]
async fn foreign_visited_network_is_roaming_not_allowed() {
    let h = hss().await;
    let mut req = uar(&demo::impi_a("001"), &sip_a(), 0);
    req.avps
        .retain(|a| !a.is(codes::VISITED_NETWORK_IDENTIFIER));
    req.push(Avp::octets(
        codes::VISITED_NETWORK_IDENTIFIER,
        b"ims.mnc099.mcc999.3gppnetwork.org".to_vec(),
    ));
    assert_eq!(h.send(req.clone()).await.result(), ("exp", 5004));
    h.app
        .store
        .update(demo::IMSI_A, |s| {
            s.allowed_visited_networks = vec!["ims.mnc099.mcc999.3gppnetwork.org".into()]
        })
        .await
        .unwrap();
    assert_eq!(h.send(req).await.result(), ("exp", 2001));
}

#[tokio::test]
async fn first_registration_names_the_default_scscf_in_capabilities() {
    let h = hss().await;
    let a = h.send(uar(&demo::impi_a("001"), &sip_a(), 0)).await;
    assert_eq!(a.result(), ("exp", 2001));
    assert_eq!(a.server_name(), None);
    assert_eq!(a.capabilities_server_name(), Some(SCSCF));
}

#[tokio::test]
async fn registered_impu_is_subsequent_registration_with_server_name() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h.send(uar(&demo::impi_a("001"), &tel_a(), 0)).await;
    assert_eq!(a.result(), ("exp", 2002));
    assert_eq!(a.server_name(), Some(SCSCF));
}

#[tokio::test]
async fn pending_authentication_sends_the_ue_to_the_same_scscf() {
    let h = hss().await;
    h.send(mar(
        &demo::impi_a("001"),
        &sip_a(),
        "Digest-AKAv1-MD5",
        1,
        None,
    ))
    .await;
    let a = h.send(uar(&demo::impi_a("001"), &sip_a(), 0)).await;
    assert_eq!(a.result(), ("exp", 2002));
    assert_eq!(a.server_name(), Some(SCSCF));
}

#[tokio::test]
async fn deregistration_of_registered_impu_is_success_with_server_name() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h.send(uar(&demo::impi_a("001"), &sip_a(), 1)).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(a.server_name(), Some(SCSCF));
}

#[tokio::test]
async fn deregistration_of_unregistered_impu_is_identity_not_registered() {
    let h = hss().await;
    assert_eq!(
        h.send(uar(&demo::impi_a("001"), &sip_a(), 1))
            .await
            .result(),
        ("exp", 5003)
    );
}

#[tokio::test]
async fn registration_and_capabilities_returns_capabilities_with_success() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h.send(uar(&demo::impi_a("001"), &sip_a(), 2)).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(a.capabilities_server_name(), Some(SCSCF));
}

#[tokio::test]
async fn uar_does_not_change_state() {
    let h = hss().await;
    let before = h.sub(demo::IMSI_A).await;
    for uat in [0, 1, 2] {
        h.send(uar(&demo::impi_a("001"), &sip_a(), uat)).await;
    }
    assert_eq!(h.sub(demo::IMSI_A).await, before);
}

#[tokio::test]
async fn missing_public_identity_is_missing_avp_with_failed_avp() {
    let h = hss().await;
    let mut req = uar(&demo::impi_a("001"), &sip_a(), 0);
    req.avps.retain(|a| !a.is(codes::PUBLIC_IDENTITY));
    let ans = h.app.handle(&req).await;
    assert_eq!(ans.result_code().map(|r| r.0), Some(5005));
    let failed = ans.find(codes::FAILED_AVP).unwrap().members()[0].clone();
    assert_eq!((failed.code, failed.vendor), (601, Some(10415)));
}

#[tokio::test]
async fn empty_user_name_is_invalid_avp_value() {
    let h = hss().await;
    let a = h.send(uar("", &sip_a(), 0)).await;
    assert_eq!(a.result(), ("rc", 5004));
    assert_eq!(a.failed_avp_code(), Some(1));
}
