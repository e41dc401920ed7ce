//! Sans-IO tests of the responder, message builders and pre-application checks.

use std::net::IpAddr;
use std::sync::Arc;

use super::base::{self, sniff_session_id};
use super::*;
use crate::codec::header::{FLAG_E, FLAG_P, FLAG_R};
use crate::codec::{codes, ApplicationId, Avp, CommandCode, Message, ResultCode, VENDOR_3GPP};
use crate::dict::Dictionary;

const CX: u32 = 16_777_216;

fn dict() -> &'static Dictionary {
    Dictionary::builtin()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn local() -> LocalIdentity {
    LocalIdentity {
        host_ip_addresses: vec![ip("192.0.2.10")],
        ..LocalIdentity::new("hss.ims.example", "ims.example")
    }
}

fn policy(allowlist: Allowlist) -> Arc<PeerPolicy> {
    Arc::new(PeerPolicy {
        local: local(),
        allowlist,
        application_ids: vec![CX],
    })
}

fn responder() -> Responder {
    Responder::new(
        policy(Allowlist::default()),
        ip("127.0.0.1"),
        ip("127.0.0.1"),
    )
}

fn cer_base(host: &str) -> Message {
    Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        7,
        9,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, host))
    .with(Avp::identity(codes::ORIGIN_REALM, "ims.example"))
    .with(Avp::address(codes::HOST_IP_ADDRESS, ip("127.0.0.1")))
    .with(Avp::u32(codes::VENDOR_ID, VENDOR_3GPP))
    .with(Avp::utf8(codes::PRODUCT_NAME, "CDiameterPeer"))
}

fn cer(host: &str) -> Message {
    cer_base(host)
        .with(base::vendor_specific_application_id(CX))
        .with(Avp::u32(codes::SUPPORTED_VENDOR_ID, VENDOR_3GPP))
}

fn roundtrip(m: &Message) -> Message {
    crate::codec::decode_message(&m.encode(), dict()).expect("our own message decodes")
}

fn uar() -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        11,
        12,
    )
    .with(Avp::utf8(codes::SESSION_ID, "icscf;1;2"))
    .with(base::vendor_specific_application_id(CX))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.example"))
    .with(Avp::identity(codes::ORIGIN_REALM, "ims.example"))
    .with(Avp::identity(codes::DESTINATION_REALM, "ims.example"))
    .with(Avp::utf8(codes::USER_NAME, "alice@ims.example"))
    .with(Avp::utf8(codes::PUBLIC_IDENTITY, "sip:alice@ims.example"))
    .with(Avp::octets(
        codes::VISITED_NETWORK_IDENTIFIER,
        "ims.example",
    ))
}

fn open_responder() -> Responder {
    let mut r = responder();
    assert!(matches!(
        r.on_request(&roundtrip(&cer("icscf.ims.example")), dict()),
        Disposition::Opened { .. }
    ));
    r
}

#[test]
fn cea_advertises_cx_and_identity() {
    let mut r = responder();
    let Disposition::Opened { cea, peer } =
        r.on_request(&roundtrip(&cer("icscf.ims.example")), dict())
    else {
        panic!("CER refused");
    };
    assert_eq!(peer.origin_host, "icscf.ims.example");
    assert_eq!(r.state(), PeerState::Open);
    let cea = roundtrip(&cea);
    assert_eq!(cea.header.flags, 0);
    assert_eq!((cea.header.hop_by_hop, cea.header.end_to_end), (7, 9));
    assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    assert_eq!(cea.str(codes::ORIGIN_HOST), Some("hss.ims.example"));
    assert_eq!(cea.u32(codes::SUPPORTED_VENDOR_ID), Some(VENDOR_3GPP));
    let vsai = cea.find(codes::VENDOR_SPECIFIC_APPLICATION_ID).unwrap();
    assert_eq!(
        vsai.find(codes::VENDOR_ID).and_then(Avp::as_u32),
        Some(VENDOR_3GPP)
    );
    assert_eq!(
        vsai.find(codes::AUTH_APPLICATION_ID).and_then(Avp::as_u32),
        Some(CX)
    );
    let hip = cea.find(codes::HOST_IP_ADDRESS).unwrap();
    assert!(
        matches!(&hip.value, crate::codec::Value::Address(a) if a.ip() == Some(ip("192.0.2.10")))
    );
    assert_eq!(cea.u32(codes::VENDOR_ID), Some(0));
    assert_eq!(cea.str(codes::PRODUCT_NAME), Some("sichss"));
    assert!(cea.find(codes::FIRMWARE_REVISION).is_some());
    assert!(cea.find(codes::ORIGIN_STATE_ID).is_some());
    crate::codec::validate(&cea, dict()).expect("the CEA meets its grammar");
}

#[test]
fn cea_uses_the_connection_address_when_none_is_configured() {
    let mut p = (*policy(Allowlist::default())).clone();
    p.local.host_ip_addresses.clear();
    let mut r = Responder::new(Arc::new(p), ip("127.0.0.1"), ip("127.0.0.5"));
    let Disposition::Opened { cea, .. } = r.on_request(&cer("a.example"), dict()) else {
        panic!()
    };
    let hip = cea.find(codes::HOST_IP_ADDRESS).unwrap();
    assert!(
        matches!(&hip.value, crate::codec::Value::Address(a) if a.ip() == Some(ip("127.0.0.5")))
    );
}

#[test]
fn cer_without_host_ip_address_is_accepted() {
    let mut m = cer("scscf.ims.example");
    m.avps.retain(|a| !a.is(codes::HOST_IP_ADDRESS));
    let mut r = responder();
    assert!(matches!(
        r.on_request(&roundtrip(&m), dict()),
        Disposition::Opened { .. }
    ));
}

#[test]
fn bare_auth_application_id_and_relay_are_common() {
    for app in [CX, 0xffff_ffff] {
        let m = cer_base("a.example").with(Avp::u32(codes::AUTH_APPLICATION_ID, app));
        assert!(
            matches!(
                responder().on_request(&m, dict()),
                Disposition::Opened { .. }
            ),
            "app {app}"
        );
    }
}

#[test]
fn cer_without_cx_gets_5010_and_close() {
    let m = cer_base("a.example").with(Avp::u32(codes::AUTH_APPLICATION_ID, 4));
    let mut r = responder();
    let Disposition::AnswerAndClose(cea) = r.on_request(&m, dict()) else {
        panic!()
    };
    assert_eq!(
        cea.result_code(),
        Some(ResultCode::DIAMETER_NO_COMMON_APPLICATION)
    );
    assert_eq!(cea.header.flags & FLAG_E, 0);
    assert_eq!(r.state(), PeerState::Closing);
}

#[test]
fn refused_peer_gets_3010_with_e_bit() {
    let mut r = Responder::new(
        policy(Allowlist::default()),
        ip("192.0.2.99"),
        ip("127.0.0.1"),
    );
    let Disposition::AnswerAndClose(cea) = r.on_request(&cer("a.example"), dict()) else {
        panic!()
    };
    assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_UNKNOWN_PEER));
    assert_eq!(cea.header.flags & FLAG_E, FLAG_E);
    assert_eq!(cea.header.command, CommandCode::CAPABILITIES_EXCHANGE);
}

#[test]
fn cer_missing_origin_realm_gets_5005() {
    let mut m = cer("a.example");
    m.avps.retain(|a| !a.is(codes::ORIGIN_REALM));
    let Disposition::AnswerAndClose(cea) = responder().on_request(&m, dict()) else {
        panic!()
    };
    assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_MISSING_AVP));
    let failed = cea.find(codes::FAILED_AVP).unwrap();
    assert!(failed.find(codes::ORIGIN_REALM).is_some());
}

#[test]
fn request_before_cer_is_refused_and_closes() {
    let mut r = responder();
    let Disposition::AnswerAndClose(a) = r.on_request(&uar(), dict()) else {
        panic!()
    };
    assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_UNKNOWN_PEER));
    assert_eq!(a.header.flags, FLAG_P | FLAG_E);
    assert_eq!(a.session_id(), Some("icscf;1;2"));
}

#[test]
fn dwr_gets_dwa_and_dpr_gets_dpa_then_close() {
    let mut r = open_responder();
    let l = local();
    let dwr = base::watchdog_request(&l, 1, 2);
    let Disposition::Answer(dwa) = r.on_request(&roundtrip(&dwr), dict()) else {
        panic!()
    };
    assert_eq!(dwa.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    assert_eq!(dwa.header.flags & FLAG_R, 0);
    crate::codec::validate(&roundtrip(&dwa), dict()).unwrap();
    let dpr = base::disconnect_request(&l, DisconnectCause::Rebooting, 3, 4);
    assert_eq!(dpr.u32(codes::DISCONNECT_CAUSE), Some(0));
    let Disposition::AnswerAndClose(dpa) = r.on_request(&roundtrip(&dpr), dict()) else {
        panic!()
    };
    assert_eq!(dpa.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    assert_eq!(dpa.header.hop_by_hop, 3);
    assert_eq!(r.state(), PeerState::Closing);
}

#[test]
fn application_requests_pass_through_when_open() {
    let mut r = open_responder();
    assert_eq!(r.on_request(&uar(), dict()), Disposition::Application);
    let p = r.policy();
    check_request(&roundtrip(&uar()), dict(), &p.application_ids, &p.local).expect("a valid UAR");
}

#[test]
fn error_answer_sets_e_only_for_protocol_errors_and_copies_p() {
    let req = uar();
    let l = local();
    let failed = Avp::u32(codes::AUTH_SESSION_STATE, 0);
    let a = error_answer(
        &req.header,
        req.find(codes::SESSION_ID),
        &l,
        ResultCode::DIAMETER_COMMAND_UNSUPPORTED,
        Some(&failed),
        "nope",
    );
    assert_eq!(a.header.flags, FLAG_P | FLAG_E);
    assert_eq!(a.avps[0].as_str(), Some("icscf;1;2"));
    assert_eq!(a.str(codes::ERROR_MESSAGE), Some("nope"));
    assert_eq!(
        a.find(codes::FAILED_AVP).unwrap().members(),
        std::slice::from_ref(&failed)
    );
    let b = error_answer(
        &req.header,
        None,
        &l,
        ResultCode::DIAMETER_MISSING_AVP,
        Some(&failed),
        "",
    );
    assert_eq!(b.header.flags, FLAG_P);
    assert!(b.find(codes::ERROR_MESSAGE).is_none());
    assert!(
        b.find(codes::AUTH_SESSION_STATE).is_some(),
        "a Cx 5xxx answer meets the Cx grammar"
    );
}

fn reject(m: &Message) -> Rejection {
    let l = local();
    *check_request(&roundtrip(m), dict(), &[CX], &l).expect_err("rejected")
}

#[test]
fn checks_application_command_destination_then_grammar() {
    let mut m = uar();
    m.header.application = ApplicationId(4);
    let r = reject(&m);
    assert_eq!(r.result_code, ResultCode::DIAMETER_APPLICATION_UNSUPPORTED);
    assert_eq!(r.answer.header.flags & FLAG_E, FLAG_E);

    let mut m = uar();
    m.header.command = CommandCode(399);
    assert_eq!(
        reject(&m).result_code,
        ResultCode::DIAMETER_COMMAND_UNSUPPORTED
    );

    let m = uar().with(Avp::identity(codes::DESTINATION_HOST, "other.ims.example"));
    let r = reject(&m);
    assert_eq!(r.result_code, ResultCode::DIAMETER_UNABLE_TO_DELIVER);
    assert!(r.answer.find(codes::FAILED_AVP).is_some());
    let m = uar().with(Avp::identity(codes::DESTINATION_HOST, "HSS.ims.example"));
    assert!(check_request(&roundtrip(&m), dict(), &[CX], &local()).is_ok());

    let mut m = uar();
    for a in &mut m.avps {
        if a.is(codes::DESTINATION_REALM) {
            *a = Avp::identity(codes::DESTINATION_REALM, "elsewhere.example");
        }
    }
    assert_eq!(
        reject(&m).result_code,
        ResultCode::DIAMETER_REALM_NOT_SERVED
    );

    let mut m = uar();
    m.avps.retain(|a| !a.is(codes::USER_NAME));
    let r = reject(&m);
    assert_eq!(r.result_code, ResultCode::DIAMETER_MISSING_AVP);
    assert_eq!(r.answer.header.flags & FLAG_E, 0);
    assert!(r
        .answer
        .find(codes::FAILED_AVP)
        .unwrap()
        .find(codes::USER_NAME)
        .is_some());
}

#[test]
fn proxy_info_is_copied_into_error_answers() {
    let pi = Avp::grouped(
        codes::PROXY_INFO,
        vec![
            Avp::identity(codes::PROXY_HOST, "dra.example"),
            Avp::octets(codes::PROXY_STATE, b"x".to_vec()),
        ],
    );
    let mut m = uar().with(pi.clone());
    m.header.application = ApplicationId(4);
    assert_eq!(reject(&m).answer.find(codes::PROXY_INFO), Some(&pi));
}

#[test]
fn sniffs_session_id_from_undecodable_frames() {
    let mut bytes = uar().encode();
    assert_eq!(
        sniff_session_id(&bytes)
            .and_then(|a| a.as_str().map(str::to_owned))
            .as_deref(),
        Some("icscf;1;2")
    );
    bytes.truncate(24);
    assert!(sniff_session_id(&bytes).is_none());
    assert!(sniff_session_id(&[0; 3]).is_none());
    let cer = cer("a").encode();
    assert!(sniff_session_id(&cer).is_none());
}

#[test]
fn decode_errors_are_answered_and_fatal_ones_close() {
    let mut r = open_responder();
    let mut bytes = uar().encode();
    // Break the first AVP's length (Session-Id) to below its header: 5014.
    bytes[20 + 7] = 2;
    let e = crate::codec::decode_message(&bytes, dict()).unwrap_err();
    let Disposition::Answer(a) = r.on_decode_error(&e, &bytes) else {
        panic!()
    };
    assert_eq!(
        a.result_code(),
        Some(ResultCode::DIAMETER_INVALID_AVP_LENGTH)
    );
    assert_eq!(a.header.flags & FLAG_E, 0);
    assert!(a.find(codes::FAILED_AVP).is_some());

    let h = uar().header;
    let d = r.on_frame_error(&h, crate::codec::FrameError::BadLength(21));
    let Disposition::AnswerAndClose(a) = d else {
        panic!()
    };
    assert_eq!(
        a.result_code(),
        Some(ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH)
    );
    let d = r.on_frame_error(&h, crate::codec::FrameError::UnsupportedVersion(2));
    let Disposition::AnswerAndClose(a) = d else {
        panic!()
    };
    assert_eq!(
        a.result_code(),
        Some(ResultCode::DIAMETER_UNSUPPORTED_VERSION)
    );
    assert_eq!(a.header.version, 1);
}

#[test]
fn peer_layer_stays_sans_io() {
    // style.md §8: `peer` and `app` never touch tokio or sockets.
    for (name, src) in [
        ("peer/mod.rs", include_str!("mod.rs")),
        ("peer/base.rs", include_str!("base.rs")),
        ("peer/allow.rs", include_str!("allow.rs")),
        ("peer/watchdog.rs", include_str!("watchdog.rs")),
        ("app.rs", include_str!("../app.rs")),
    ] {
        for forbidden in [
            "use tokio",
            "tokio::",
            "TcpStream",
            "std::net::Tcp",
            "crate::server",
            "crate::store",
        ] {
            let hit = src
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| l.contains(forbidden));
            assert!(!hit, "{name} mentions {forbidden}");
        }
    }
}

#[test]
fn quick_answer_is_the_error_answer_built_from_header_and_session_id() {
    // One identity for both answers: its Origin-State-Id is the clock's second.
    let local = local();
    let quick = base::QuickAnswer::new(&local, ResultCode::DIAMETER_TOO_BUSY, "too busy");
    let lir = |sid: Option<&str>, proxiable: bool| {
        let mut m = Message::request(
            CommandCode::LOCATION_INFO,
            ApplicationId::CX,
            proxiable,
            0x0102_0304,
            0x0506_0708,
        );
        if let Some(s) = sid {
            m.push(Avp::utf8(codes::SESSION_ID, s));
        }
        m.push(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.example"));
        m.push(Avp::utf8(codes::PUBLIC_IDENTITY, "sip:alice@ims.example"));
        m.encode()
    };
    // Session-Id lengths with every padding, none, and not first.
    for (sid, proxiable) in [
        (Some("a;1"), true),
        (Some("ab;1"), false),
        (Some("abc;1"), true),
        (Some("abcd;1"), true),
        (None, true),
    ] {
        let frame = lir(sid, proxiable);
        let (_, h) = crate::codec::header::parse_header(&frame).unwrap();
        let slow = base::error_answer(
            &h,
            sniff_session_id(&frame).as_ref(),
            &local,
            ResultCode::DIAMETER_TOO_BUSY,
            None,
            "too busy",
        )
        .encode();
        let fast = quick.answer(&frame).unwrap();
        assert_eq!(fast, slow, "Session-Id {sid:?}");
        let a = crate::codec::decode_message(&fast, dict()).unwrap();
        assert_eq!(a.header.flags & (FLAG_E | FLAG_R), FLAG_E);
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_TOO_BUSY));
        assert_eq!(a.session_id(), sid);
    }
    assert_eq!(quick.answer(&[1, 0, 0]), None);
}
