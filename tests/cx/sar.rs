//! SAR (TS 29.228 §6.1.2.1, Table 6.1.2.1): each Server-Assignment-Type, applied to the
//! request's service only.

use sichss::codec::{codes, Avp};
use sichss::demo;
use sichss::store::RegState;

use super::harness::*;

#[tokio::test]
async fn registration_returns_user_data_for_the_services_identities() {
    let h = hss().await;
    let a = register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    assert_eq!(a.result(), ("rc", 2001));
    let xml = a.user_data().expect("User-Data");
    assert!(xml.contains(&format!("<PrivateID>{}</PrivateID>", demo::impi_a("001"))));
    assert!(xml.contains(&format!("<Identity>{}</Identity>", sip_a())));
    assert!(xml.contains(&format!("<Identity>{}</Identity>", tel_a())));
    let sub = h.sub(demo::IMSI_A).await;
    let reg = &sub.services["001"].registrations[&sip_a()];
    assert_eq!(reg.scscf.as_ref().unwrap().origin_host, SCSCF_HOST);
    assert!(
        sub.services["001"].auth_pending.is_none(),
        "auth pending cleared"
    );
}

#[tokio::test]
async fn registration_from_another_scscf_is_identity_already_registered() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h
        .send(sar_from(
            "sip:other-scscf:6060",
            Some(&demo::impi_a("002")),
            &[&sip_a()],
            1,
            0,
        ))
        .await;
    assert_eq!(a.result(), ("exp", 5005));
    assert_eq!(a.server_name(), Some(SCSCF));
    assert_eq!(h.pair_a("002", &sip_a()).await, RegState::NotRegistered);
}

#[tokio::test]
async fn two_public_identities_in_a_registration_are_too_many() {
    let h = hss().await;
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a(), &tel_a()], 1, 0))
        .await;
    assert_eq!(a.result(), ("rc", 5009));
    assert_eq!(a.failed_avp_code(), Some(601));
}

#[tokio::test]
async fn registration_without_user_name_is_missing_avp() {
    let h = hss().await;
    let a = h.send(sar(None, &[&sip_a()], 1, 0)).await;
    assert_eq!(a.result(), ("rc", 5005));
    assert_eq!(a.failed_avp_code(), Some(1));
}

#[tokio::test]
async fn impu_not_of_the_service_is_identities_dont_match() {
    let h = hss().await;
    let b = format!("tel:{}", demo::MSISDN_B);
    let a = h.send(sar(Some(&demo::impi_a("001")), &[&b], 1, 0)).await;
    assert_eq!(a.result(), ("exp", 5002));
}

#[tokio::test]
async fn no_assignment_returns_profile_to_the_assigned_scscf_only() {
    let h = hss().await;
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 0, 0))
        .await;
    assert_eq!(a.result(), ("rc", 5012), "nothing assigned");
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let before = h.sub(demo::IMSI_A).await;
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 0, 0))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    assert!(a.user_data().is_some());
    assert_eq!(h.sub(demo::IMSI_A).await, before, "no state change");
    let a = h
        .send(sar_from(
            "sip:other:6060",
            Some(&demo::impi_a("001")),
            &[&sip_a()],
            0,
            0,
        ))
        .await;
    assert_eq!(a.result(), ("rc", 5012));
}

#[tokio::test]
async fn unregistered_user_marks_the_set_unregistered() {
    let h = hss().await;
    let a = h.send(sar(None, &[&tel_a()], 3, 0)).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert!(a.user_data().is_some());
    assert_eq!(
        a.0.str(codes::USER_NAME),
        Some(demo::impi_a("001").as_str())
    );
    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(pair_state(&sub, "001", &sip_a()), RegState::Unregistered);
    assert_eq!(sub.impu_state(&tel_a()), RegState::Unregistered);
    // A later registration through that S-CSCF is allowed.
    let a = register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(h.pair_a("001", &sip_a()).await, RegState::Registered);
}

#[tokio::test]
async fn timeout_and_administrative_deregistration_clear_the_pairs() {
    for sat in [4, 5, 8, 11] {
        let h = hss().await;
        register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
        let a = h
            .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], sat, 0))
            .await;
        assert_eq!(a.result(), ("rc", 2001), "SAT {sat}");
        let sub = h.sub(demo::IMSI_A).await;
        assert_eq!(
            pair_state(&sub, "001", &sip_a()),
            RegState::NotRegistered,
            "SAT {sat}"
        );
        assert_eq!(
            pair_state(&sub, "001", &tel_a()),
            RegState::NotRegistered,
            "SAT {sat}"
        );
        assert!(
            sub.assigned_scscf().is_none(),
            "S-CSCF name cleared, SAT {sat}"
        );
    }
}

#[tokio::test]
async fn deregistration_without_public_identity_clears_every_pair_of_the_impi() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    register(&h, &demo::impi_a("002"), &sip_a(), 2).await;
    let a = h.send(sar(Some(&demo::impi_a("001")), &[], 5, 0)).await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(h.pair_a("001", &tel_a()).await, RegState::NotRegistered);
    assert_eq!(h.pair_a("002", &tel_a()).await, RegState::Registered);
}

#[tokio::test]
async fn store_server_name_deregistration_keeps_the_name_as_unregistered() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 7, 0))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    let sub = h.sub(demo::IMSI_A).await;
    assert_eq!(pair_state(&sub, "001", &sip_a()), RegState::Unregistered);
    assert_eq!(sub.assigned_scscf().unwrap().server_name, SCSCF);
}

#[tokio::test]
async fn store_server_name_not_kept_answers_2004() {
    let mut h = hss().await;
    h.app.config.keep_server_name = false;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let a = h
        .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], 6, 0))
        .await;
    assert_eq!(a.result(), ("exp", 2004));
    assert_eq!(h.pair_a("001", &sip_a()).await, RegState::NotRegistered);
}

#[tokio::test]
async fn authentication_failure_clears_pending_and_keeps_registration() {
    for sat in [9, 10] {
        let h = hss().await;
        register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
        h.send(mar(
            &demo::impi_a("002"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            None,
        ))
        .await;
        assert!(h.sub(demo::IMSI_A).await.services["002"]
            .auth_pending
            .is_some());
        let a = h
            .send(sar(Some(&demo::impi_a("002")), &[&sip_a()], sat, 0))
            .await;
        assert_eq!(a.result(), ("rc", 2001));
        let sub = h.sub(demo::IMSI_A).await;
        assert!(sub.services["002"].auth_pending.is_none());
        assert_eq!(pair_state(&sub, "001", &sip_a()), RegState::Registered);
    }
}

#[tokio::test]
async fn swx_assignment_types_are_in_assignment_type() {
    let h = hss().await;
    for sat in [12, 13, 14] {
        let a = h
            .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], sat, 0))
            .await;
        assert_eq!(a.result(), ("exp", 5007), "SAT {sat}");
    }
}

#[tokio::test]
async fn undefined_assignment_type_is_invalid_avp_value() {
    let h = hss().await;
    let mut req = sar(Some(&demo::impi_a("001")), &[&sip_a()], 1, 0);
    req.avps.retain(|a| !a.is(codes::SERVER_ASSIGNMENT_TYPE));
    req.push(Avp::enumerated(codes::SERVER_ASSIGNMENT_TYPE, 99));
    let ans = h.app.handle(&req).await;
    assert_eq!(ans.result_code().map(|r| r.0), Some(5004));
}

#[tokio::test]
async fn charging_information_accompanies_user_data_when_configured() {
    let mut h = hss().await;
    h.app.config.charging = Some(sichss::cx::ChargingInfo {
        primary_ccf: Some("aaa://ccf.example.org:3868".into()),
        ..Default::default()
    });
    let a = register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let c =
        a.0.find(codes::CHARGING_INFORMATION)
            .expect("Charging-Information");
    assert_eq!(
        c.find(codes::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME)
            .and_then(Avp::as_str),
        Some("aaa://ccf.example.org:3868")
    );
}

#[tokio::test]
async fn a_refresh_by_the_serving_scscf_answers_the_profile_and_changes_nothing() {
    let h = hss().await;
    register(&h, &demo::impi_a("001"), &sip_a(), 1).await;
    let before = h.sub(demo::IMSI_A).await;
    for (sat, udaa) in [(2, 0), (2, 1), (1, 1), (3, 0)] {
        let a = h
            .send(sar(Some(&demo::impi_a("001")), &[&sip_a()], sat, udaa))
            .await;
        assert_eq!(a.result(), ("rc", 2001), "type {sat}");
        assert_eq!(
            a.0.str(codes::USER_NAME),
            Some(demo::impi_a("001").as_str())
        );
        assert_eq!(a.user_data().is_some(), udaa == 0, "type {sat}");
        // Same states, same S-CSCF, same `since`: nothing was written.
        assert_eq!(h.sub(demo::IMSI_A).await, before, "type {sat}");
    }
    // A refresh from another S-CSCF is still refused, and changes nothing either.
    let a = h
        .send(sar_from(
            "sip:other-scscf:6060",
            Some(&demo::impi_a("001")),
            &[&sip_a()],
            2,
            1,
        ))
        .await;
    assert_eq!(a.result(), ("exp", 5005));
    assert_eq!(h.sub(demo::IMSI_A).await, before);
}
