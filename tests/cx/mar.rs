//! MAR (TS 29.228 §6.3.1): vectors checked by a UE-side Milenage, SQN management and
//! resynchronisation, the Digest schemes, and concurrency.

use std::collections::HashSet;
use std::sync::Arc;

use sichss::auth::{self, Key128, Milenage};
use sichss::codec::{codes, Avp};
use sichss::demo;
use sichss::store::SubscriberStore;

use super::harness::*;

fn usim() -> Milenage {
    Milenage::with_opc(
        &Key128::from_hex("K", demo::K).unwrap(),
        &Key128::from_hex("OPc", demo::OPC).unwrap(),
    )
}

fn bytes(item: &Avp, key: sichss::codec::AvpKey) -> &[u8] {
    item.find(key).and_then(Avp::as_bytes).expect("AVP present")
}

/// What the UE derives from one AKA item: (SQN, RES).
fn ue_accepts(item: &Avp) -> (u64, [u8; 8]) {
    let auth_ = bytes(item, codes::SIP_AUTHENTICATE);
    assert_eq!(auth_.len(), 32);
    let rand: [u8; 16] = auth_[..16].try_into().unwrap();
    let autn: [u8; 16] = auth_[16..].try_into().unwrap();
    let (sqn, res, ck, ik) = auth::ue_check_autn(&usim(), &rand, &autn).expect("AUTN verifies");
    assert_eq!(
        bytes(item, codes::SIP_AUTHORIZATION),
        &res[..],
        "XRES = RES"
    );
    assert_eq!(bytes(item, codes::CONFIDENTIALITY_KEY), ck.as_bytes());
    assert_eq!(bytes(item, codes::INTEGRITY_KEY), ik.as_bytes());
    (sqn, res)
}

#[tokio::test]
async fn aka_vectors_verify_at_the_ue_and_echo_identities() {
    let h = hss().await;
    let impi = demo::impi_a("001");
    let a = h
        .send(mar(&impi, &sip_a(), "Digest-AKAv1-MD5", 1, None))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    assert_eq!(a.0.str(codes::USER_NAME), Some(impi.as_str()));
    assert_eq!(a.0.str(codes::PUBLIC_IDENTITY), Some(sip_a().as_str()));
    assert_eq!(a.0.u32(codes::SIP_NUMBER_AUTH_ITEMS), Some(1));
    let items = a.items();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]
            .find(codes::SIP_AUTHENTICATION_SCHEME)
            .and_then(Avp::as_str),
        Some("Digest-AKAv1-MD5")
    );
    let (sqn, _) = ue_accepts(items[0]);
    assert_eq!(
        h.sub(demo::IMSI_A).await.aka.unwrap().sqn,
        sqn,
        "SQN stored"
    );
}

#[tokio::test]
async fn honours_number_of_auth_items_up_to_the_configured_maximum() {
    let h = hss().await;
    let a = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            3,
            None,
        ))
        .await;
    let items = a.items();
    assert_eq!(items.len(), 3);
    assert_eq!(a.0.u32(codes::SIP_NUMBER_AUTH_ITEMS), Some(3));
    let sqns: Vec<u64> = items.iter().map(|i| ue_accepts(i).0).collect();
    assert!(sqns.windows(2).all(|w| w[0] < w[1]), "increasing {sqns:?}");
    let nums: Vec<u32> = items
        .iter()
        .map(|i| {
            i.find(codes::SIP_ITEM_NUMBER)
                .and_then(Avp::as_u32)
                .unwrap()
        })
        .collect();
    assert_eq!(nums, vec![1, 2, 3]);
    let a = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            50,
            None,
        ))
        .await;
    assert_eq!(a.items().len(), 5, "capped at max_auth_items");
}

#[tokio::test]
async fn unknown_scheme_takes_the_subscribers_default() {
    let h = hss().await;
    for scheme in ["Unknown", "unknown"] {
        let a = h
            .send(mar(&demo::impi_a("002"), &sip_a(), scheme, 1, None))
            .await;
        assert_eq!(a.result(), ("rc", 2001));
        ue_accepts(a.items()[0]);
    }
}

#[tokio::test]
async fn sip_digest_returns_ha1_of_impi_realm_and_password() {
    let h = hss().await;
    let impi = demo::impi_a("002");
    let a = h.send(mar(&impi, &sip_a(), "SIP Digest", 1, None)).await;
    assert_eq!(a.result(), ("rc", 2001));
    let d = a.items()[0]
        .find(codes::SIP_DIGEST_AUTHENTICATE)
        .expect("digest");
    let ha1 = d.find(codes::DIGEST_HA1).and_then(Avp::as_str).unwrap();
    assert_eq!(
        ha1,
        auth::digest::ha1(&impi, demo::HOME_DOMAIN, demo::PASSWORD)
    );
    assert_eq!(
        d.find(codes::DIGEST_REALM).and_then(Avp::as_str),
        Some(demo::HOME_DOMAIN)
    );
    assert_eq!(
        d.find(codes::DIGEST_QOP).and_then(Avp::as_str),
        Some("auth")
    );
}

#[tokio::test]
async fn kamailio_digest_md5_returns_nonce_and_password() {
    let h = hss().await;
    let a = h
        .send(mar(
            &demo::impi_b(),
            &format!("tel:{}", demo::MSISDN_B),
            "Digest-MD5",
            1,
            None,
        ))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    let item = a.items()[0];
    assert_eq!(
        bytes(item, codes::SIP_AUTHORIZATION),
        demo::PASSWORD.as_bytes()
    );
    assert_eq!(bytes(item, codes::SIP_AUTHENTICATE).len(), 16);
    assert!(item.find(codes::SIP_DIGEST_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn unsupported_scheme_is_auth_scheme_not_supported() {
    let h = hss().await;
    let a = h
        .send(mar(&demo::impi_a("001"), &sip_a(), "NASS-Bundled", 1, None))
        .await;
    assert_eq!(a.result(), ("exp", 5006));
    h.app
        .store
        .update(demo::IMSI_A, |s| s.digest = None)
        .await
        .unwrap();
    let a = h
        .send(mar(&demo::impi_a("001"), &sip_a(), "SIP Digest", 1, None))
        .await;
    assert_eq!(a.result(), ("exp", 5006));
}

#[tokio::test]
async fn resynchronisation_with_valid_auts_moves_sqn_past_the_usim() {
    let h = hss().await;
    let first = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            None,
        ))
        .await;
    let rand: [u8; 16] = bytes(first.items()[0], codes::SIP_AUTHENTICATE)[..16]
        .try_into()
        .unwrap();
    let sqn_ms: u64 = 0x0000_0100_0000;
    let auts = auth::ue_make_auts(&usim(), &rand, sqn_ms);
    let mut data = rand.to_vec();
    data.extend_from_slice(&auts);
    let a = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            Some(data),
        ))
        .await;
    assert_eq!(a.result(), ("rc", 2001));
    let (sqn, _) = ue_accepts(a.items()[0]);
    assert!(sqn > sqn_ms, "{sqn:#x} must exceed {sqn_ms:#x}");
}

#[tokio::test]
async fn forged_auts_moves_nothing() {
    let h = hss().await;
    let first = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            None,
        ))
        .await;
    let rand: [u8; 16] = bytes(first.items()[0], codes::SIP_AUTHENTICATE)[..16]
        .try_into()
        .unwrap();
    let before = h.sub(demo::IMSI_A).await;
    let mut auts = auth::ue_make_auts(&usim(), &rand, 0x0000_0100_0000);
    auts[13] ^= 1;
    let mut data = rand.to_vec();
    data.extend_from_slice(&auts);
    let a = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            Some(data),
        ))
        .await;
    assert_eq!(a.result(), ("rc", 5012));
    assert!(a.items().is_empty());
    assert_eq!(h.sub(demo::IMSI_A).await, before, "SQN and state unchanged");
}

#[tokio::test]
async fn resync_data_of_wrong_length_is_invalid_avp_value() {
    let h = hss().await;
    let a = h
        .send(mar(
            &demo::impi_a("001"),
            &sip_a(),
            "Digest-AKAv1-MD5",
            1,
            Some(vec![0; 20]),
        ))
        .await;
    assert_eq!(a.result(), ("rc", 5004));
}

#[tokio::test]
async fn concurrent_mars_never_share_an_sqn() {
    let h = Arc::new(hss().await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let sic = if i % 2 == 0 { "001" } else { "002" };
            let a = h
                .send(mar(
                    &demo::impi_a(sic),
                    &sip_a(),
                    "Digest-AKAv1-MD5",
                    2,
                    None,
                ))
                .await;
            a.items()
                .iter()
                .map(|i| ue_accepts(i).0)
                .collect::<Vec<_>>()
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for sqn in t.await.unwrap() {
            assert!(seen.insert(sqn), "SQN {sqn:#x} handed out twice");
        }
    }
    assert_eq!(seen.len(), 80);
}

#[tokio::test]
async fn mar_marks_authentication_pending_at_the_requesting_scscf() {
    let h = hss().await;
    h.send(mar(
        &demo::impi_a("001"),
        &sip_a(),
        "Digest-AKAv1-MD5",
        1,
        None,
    ))
    .await;
    let sub = h.sub(demo::IMSI_A).await;
    let pending = sub.services["001"].auth_pending.clone().expect("pending");
    assert_eq!(pending.server_name, SCSCF);
    assert_eq!(pending.origin_host, SCSCF_HOST);
    assert!(
        sub.services["002"].auth_pending.is_none(),
        "sibling untouched"
    );
}
