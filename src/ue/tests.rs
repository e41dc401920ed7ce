//! Tests of the UE: SIP parsing and building, WWW-Authenticate parsing, digest vectors
//! (RFC 2617 §3.5, the RFC 3310 worked example of cx-spec.md §7.6), AKA against a fake
//! network built with `auth::generate_vector` (what Kamailio's S-CSCF computes, and AUTS
//! that `auth::resync` accepts), and whole register / refresh / MESSAGE / de-register flows
//! against a fake registrar on a loopback UDP socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use clap::Parser;
use tokio::net::UdpSocket;

use super::digest::{
    answer, split_aka_nonce, AkaOutcome, Algorithm, Authorization, Challenge, Request,
};
use super::sip::{param, uri_of, AuthParams, Message, StartLine};
use super::*;
use crate::auth::digest::{ha1, ha1_aka, nonce_from_vector, response};
use crate::auth::sqn::{after_resync, next_sqn};
use crate::auth::{generate_vector, resync, Key128, Milenage};

const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const HOME: &str = "ims.mnc001.mcc460.3gppnetwork.org";
const IMPI: &str = "460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org";
const IMPU: &str = "sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org";
const PASSWORD: &str = "sichss-demo";

fn milenage() -> Milenage {
    Milenage::with_opc(
        &Key128::from_hex("K", K).unwrap(),
        &Key128::from_hex("OPc", OPC).unwrap(),
    )
}

fn aka_credentials() -> Credentials {
    Credentials {
        aka: Some(milenage()),
        password: None,
    }
}

fn req(uri: &str) -> Request<'_> {
    Request {
        username: IMPI,
        method: "REGISTER",
        uri,
    }
}

// ---------------------------------------------------------------- SIP codec

#[test]
fn parses_response_with_compact_headers_folding_and_body() {
    let raw = b"SIP/2.0 200 OK\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070\r\n\
        f: <sip:a@x>;tag=1\r\n\
        t: <sip:a@x>;tag=2\r\n\
        i: call-1@127.0.0.1\r\n\
        CSeq: 3 REGISTER\r\n\
        m: <sip:a@127.0.0.1:5070>;expires=300, <sip:a@127.0.0.1:5071>;expires=100\r\n\
        P-Associated-URI: <sip:+86@x>,\r\n\
        \t<tel:+86>\r\n\
        c: text/plain\r\n\
        l: 5\r\n\r\nhello trailing";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.reason(), "OK");
    assert_eq!(m.header("Call-ID"), Some("call-1@127.0.0.1"));
    assert_eq!(m.header("call-id"), m.header("i"));
    assert_eq!(m.cseq(), Some((3, "REGISTER")));
    assert_eq!(m.method(), Some("REGISTER"));
    assert_eq!(m.top_branch(), Some("z9hG4bKabc"));
    let contacts = m.list("Contact");
    assert_eq!(contacts.len(), 2);
    assert_eq!(uri_of(&contacts[1]), "sip:a@127.0.0.1:5071");
    assert_eq!(param(&contacts[0], "expires"), Some("300"));
    assert_eq!(m.list("P-Associated-URI"), ["<sip:+86@x>", "<tel:+86>"]);
    assert_eq!(m.body, b"hello");
}

#[test]
fn parses_request_line_and_body_without_content_length() {
    let m = Message::parse(b"\r\nMESSAGE sip:a@b SIP/2.0\nTo: <sip:a@b>\n\nhi there").unwrap();
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "MESSAGE".into(),
            uri: "sip:a@b".into()
        }
    );
    assert_eq!(m.body, b"hi there");
}

#[test]
fn rejects_truncated_body_and_bad_start_line() {
    assert_eq!(
        Message::parse(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        Err(SipError::Truncated {
            declared: 10,
            got: 3
        })
    );
    assert!(matches!(
        Message::parse(b"HELLO\r\n\r\n"),
        Err(SipError::StartLine { .. })
    ));
    assert!(matches!(
        Message::parse(b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n"),
        Err(SipError::HeaderLine { .. })
    ));
    assert_eq!(
        Message::parse(b"SIP/2.0 200 OK\r\nTo: x\r\n"),
        Err(SipError::NoHeaderEnd)
    );
}

#[test]
fn builds_messages_that_parse_back_with_computed_content_length() {
    let m = Message::request("MESSAGE", "sip:+86@x")
        .with("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1")
        .with("Content-Length", "999")
        .with_body("text/plain", "héllo");
    let bytes = m.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("MESSAGE sip:+86@x SIP/2.0\r\n"));
    assert!(text.contains("\r\nContent-Length: 6\r\n\r\nhéllo"));
    assert!(!text.contains("999"));
    let back = Message::parse(&bytes).unwrap();
    assert_eq!(back.body, "héllo".as_bytes());
    assert_eq!(back.header("Content-Type"), Some("text/plain"));
}

#[test]
fn response_copies_dialog_headers_and_adds_to_tag() {
    let req = Message::parse(
        b"MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 5.6.7.8;branch=z9hG4bKy\r\n\
          From: <sip:c@d>;tag=9\r\nTo: <sip:a@b>\r\nCall-ID: x1\r\nCSeq: 7 MESSAGE\r\nSubject: s\r\n\r\n",
    )
    .unwrap();
    let resp = Message::response_to(&req, 200, "OK", "t1");
    let back = Message::parse(&resp.to_bytes()).unwrap();
    assert_eq!(back.headers_named("Via").count(), 2);
    assert_eq!(back.header("To"), Some("<sip:a@b>;tag=t1"));
    assert_eq!(back.header("Call-ID"), Some("x1"));
    assert_eq!(back.cseq(), Some((7, "MESSAGE")));
    assert_eq!(back.header("Subject"), None);
}

// ---------------------------------------------------------------- WWW-Authenticate

#[test]
fn parses_www_authenticate_with_quoted_commas_and_escapes() {
    let p = AuthParams::parse(
        r#"Digest realm="ims.mnc001.mcc460.3gppnetwork.org",nonce="a,b\"c" , algorithm=AKAv1-MD5, qop="auth,auth-int", ck="00", ik="11""#,
    )
    .unwrap();
    assert_eq!(p.scheme, "Digest");
    assert_eq!(p.get("realm"), Some(HOME));
    assert_eq!(p.get("NONCE"), Some("a,b\"c"));
    assert_eq!(p.get("algorithm"), Some("AKAv1-MD5"));
    assert_eq!(p.get("qop"), Some("auth,auth-int"));
    assert_eq!(p.get("ik"), Some("11"));
    let c = Challenge::parse(
        r#"Digest realm="r", nonce="n", algorithm=AKAv1-MD5, qop="auth,auth-int""#,
    )
    .unwrap();
    assert_eq!(c.algorithm, Algorithm::AkaV1Md5);
    assert!(c.qop_auth);
    let c = Challenge::parse(r#"Digest realm="r", nonce="n", stale=TRUE, opaque="o""#).unwrap();
    assert_eq!(
        (c.algorithm, c.qop_auth, c.stale),
        (Algorithm::Md5, false, true)
    );
    assert_eq!(c.opaque.as_deref(), Some("o"));
}

#[test]
fn refuses_challenges_it_cannot_answer() {
    assert!(matches!(
        AuthParams::parse(r#"Digest realm="unterminated"#),
        Err(SipError::AuthParams { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Basic realm="r""#),
        Err(UeError::BadChallenge { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Digest realm="r""#),
        Err(UeError::BadChallenge { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=AKAv2-MD5"#),
        Err(UeError::UnsupportedAlgorithm { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int""#),
        Err(UeError::UnsupportedQop { .. })
    ));
}

// ---------------------------------------------------------------- digest vectors

#[test]
fn md5_answer_matches_rfc2617_example() {
    // RFC 2617 §3.5 (cx-spec.md §7.7).
    let c = Challenge::parse(
        r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    )
    .unwrap();
    let creds = Credentials {
        aka: None,
        password: Some("Circle Of Life".into()),
    };
    let r = Request {
        username: "Mufasa",
        method: "GET",
        uri: "/dir/index.html",
    };
    let a = answer(&c, r, &creds, &mut Usim::new(0), "0a4f113b").unwrap();
    assert_eq!(a.authorization.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(
        a.authorization.to_header_value(),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
         response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=00000001, \
         cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
    );
    // Reusing the nonce counts up (RFC 2617 §3.2.2).
    let again = a.session.unwrap().next(r, "0a4f113b");
    assert_eq!(again.authorization.qop, Some((2, "0a4f113b".into())));
    assert_eq!(
        again.authorization.response,
        response(
            &ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(("00000002", "0a4f113b", "auth"))
        )
    );
}

#[test]
fn aka_answer_matches_rfc3310_worked_example() {
    // cx-spec.md §7.6: Test Set 1 (SQN ff9bb4d0b607, AMF b9b9), XRES a54211d5e3ba50bf.
    let impi = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
    let realm = "ims.mnc001.mcc001.3gppnetwork.org";
    let uri = "sip:ims.mnc001.mcc001.3gppnetwork.org";
    let nonce = "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=";
    let r = Request {
        username: impi,
        method: "REGISTER",
        uri,
    };
    for (qop, want) in [
        (r#", qop="auth""#, "402ab8df9f3a4d63a9f47c2f90e02938"),
        ("", "1125a3c2e293453f07e08957ff235efc"),
    ] {
        let c = Challenge::parse(&format!(
            r#"Digest realm="{realm}", nonce="{nonce}", algorithm=AKAv1-MD5{qop}"#
        ))
        .unwrap();
        // A USIM just behind the network's SQN, so the SQN is fresh.
        let mut usim = Usim::new(0xff9b_b4d0_b607 - 32);
        let a = answer(&c, r, &aka_credentials(), &mut usim, "0a4f113b").unwrap();
        assert_eq!(a.authorization.response, want);
        assert_eq!(a.authorization.algorithm.as_deref(), Some("AKAv1-MD5"));
        assert_eq!(usim.sqn_ms(), 0xff9b_b4d0_b607);
        assert!(a.resync.is_none());
    }
}

#[test]
fn initial_authorization_carries_impi_with_empty_nonce_and_response() {
    assert_eq!(
        Authorization::initial(IMPI, HOME, &format!("sip:{HOME}")).to_header_value(),
        format!(
            "Digest username=\"{IMPI}\", realm=\"{HOME}\", nonce=\"\", uri=\"sip:{HOME}\", response=\"\""
        )
    );
}

// ---------------------------------------------------------------- AKA with a fake network

fn aka_challenge(v: &crate::auth::AkaVector) -> Challenge {
    Challenge::parse(&format!(
        r#"Digest realm="{HOME}", nonce="{}", algorithm=AKAv1-MD5, ck="{}", ik="{}", qop="auth""#,
        nonce_from_vector(v),
        v.ck.to_hex(),
        v.ik.to_hex()
    ))
    .unwrap()
}

#[test]
fn aka_response_is_what_the_s_cscf_computes_with_xres() {
    let m = milenage();
    let sqn = 5 << 5;
    let v = generate_vector(&m, [7u8; 16], sqn, [0x80, 0]);
    let c = aka_challenge(&v);
    let uri = format!("sip:{HOME}");
    let mut usim = Usim::new(0);
    let a = answer(&c, req(&uri), &aka_credentials(), &mut usim, "c0ffee00").unwrap();
    // Kamailio ims_auth: HA1 = MD5(IMPI:realm:XRES octets), then RFC 2617 with qop=auth.
    let expected = response(
        &ha1_aka(IMPI, HOME, &v.xres),
        &nonce_from_vector(&v),
        "REGISTER",
        &uri,
        Some(("00000001", "c0ffee00", "auth")),
    );
    assert_eq!(a.authorization.response, expected);
    assert_eq!(a.authorization.username, IMPI);
    assert_eq!(usim.sqn_ms(), sqn);
    // The same challenge again is a replay: the SQN is no longer fresh.
    let again = answer(&c, req(&uri), &aka_credentials(), &mut usim, "c0ffee00").unwrap();
    assert_eq!(again.resync, Some((sqn, sqn)));
}

#[test]
fn stale_sqn_answers_with_auts_that_the_hss_resync_accepts() {
    let m = milenage();
    let usim_sqn = 100 << 5;
    let v = generate_vector(&m, [9u8; 16], 3 << 5, [0x80, 0]);
    let c = aka_challenge(&v);
    let uri = format!("sip:{HOME}");
    let mut usim = Usim::new(usim_sqn);
    let a = answer(&c, req(&uri), &aka_credentials(), &mut usim, "c0ffee00").unwrap();
    assert_eq!(a.resync, Some((3 << 5, usim_sqn)));
    assert!(a.session.is_none(), "a resync spends the nonce");
    let auts_b64 = a.authorization.auts.clone().expect("auts present");
    let auts: [u8; 14] = base64::engine::general_purpose::STANDARD
        .decode(&auts_b64)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(resync(&m, &v.rand, &auts), Ok(usim_sqn));
    // RFC 3310 §3.4: the digest is computed with an empty password.
    assert_eq!(
        a.authorization.response,
        response(
            &ha1_aka(IMPI, HOME, b""),
            &nonce_from_vector(&v),
            "REGISTER",
            &uri,
            Some(("00000001", "c0ffee00", "auth"))
        )
    );
    assert!(a
        .authorization
        .to_header_value()
        .ends_with(&format!("auts=\"{auts_b64}\"")));
    // The USIM keeps its SQN_MS; the network's next vector after resync is accepted.
    assert_eq!(usim.sqn_ms(), usim_sqn);
    let v2 = generate_vector(&m, [10u8; 16], after_resync(usim_sqn), [0x80, 0]);
    let a2 = answer(
        &aka_challenge(&v2),
        req(&uri),
        &aka_credentials(),
        &mut usim,
        "x",
    )
    .unwrap();
    assert!(a2.resync.is_none());
}

#[test]
fn forged_autn_is_refused_without_an_answer() {
    let m = milenage();
    let mut v = generate_vector(&m, [1u8; 16], 1 << 5, [0x80, 0]);
    v.autn[15] ^= 1;
    let uri = format!("sip:{HOME}");
    let e = answer(
        &aka_challenge(&v),
        req(&uri),
        &aka_credentials(),
        &mut Usim::new(0),
        "x",
    )
    .unwrap_err();
    assert!(matches!(e, UeError::NetworkAuth(_)), "{e}");
}

#[test]
fn usim_refuses_sqn_too_far_ahead_and_accepts_the_next_seq() {
    let u = Usim::new(10 << 5);
    assert!(!u.is_fresh(10 << 5));
    assert!(!u.is_fresh((10 << 5) | 7), "same SEQ, other IND");
    assert!(u.is_fresh(11 << 5));
    assert!(u.is_fresh(next_sqn(10 << 5)));
    assert!(u.is_fresh((10 + digest::DELTA) << 5));
    assert!(!u.is_fresh((11 + digest::DELTA) << 5));
}

#[test]
fn challenge_needs_the_matching_credentials() {
    let uri = format!("sip:{HOME}");
    let md5 = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
    let e = answer(&md5, req(&uri), &aka_credentials(), &mut Usim::new(0), "x").unwrap_err();
    assert!(e.to_string().contains("--password"), "{e}");
    let v = generate_vector(&milenage(), [1u8; 16], 1 << 5, [0x80, 0]);
    let e = answer(
        &aka_challenge(&v),
        req(&uri),
        &Credentials::default(),
        &mut Usim::new(0),
        "x",
    )
    .unwrap_err();
    assert!(e.to_string().contains("--k/--opc"), "{e}");
    assert!(matches!(
        split_aka_nonce("AAAA"),
        Err(UeError::BadChallenge { .. })
    ));
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let creds = Credentials {
        aka: Some(milenage()),
        password: Some(PASSWORD.into()),
    };
    let text = format!("{creds:?}");
    assert!(
        !text.contains(PASSWORD) && !text.contains(K) && !text.contains(OPC),
        "{text}"
    );
    let v = generate_vector(&milenage(), [1u8; 16], 1 << 5, [0x80, 0]);
    let mut usim = Usim::new(0);
    let uri = format!("sip:{HOME}");
    let a = answer(&aka_challenge(&v), req(&uri), &creds, &mut usim, "x").unwrap();
    let text = format!("{a:?}");
    assert!(!text.contains(&hex::encode(v.xres)), "{text}");
    let (_, autn) = split_aka_nonce(&nonce_from_vector(&v)).unwrap();
    let out = usim.authenticate(&milenage(), &v.rand, &autn).unwrap();
    assert!(matches!(out, AkaOutcome::Resync { .. }));
    assert!(!format!("{out:?}").contains(&hex::encode(v.xres)));
}

#[test]
fn usim_sqn_survives_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usim.sqn");
    let mut u = Usim::load(&path).unwrap();
    assert_eq!(u.sqn_ms(), 0);
    let v = generate_vector(&milenage(), [3u8; 16], 42 << 5, [0x80, 0]);
    let (_, autn) = split_aka_nonce(&nonce_from_vector(&v)).unwrap();
    u.authenticate(&milenage(), &v.rand, &autn).unwrap();
    assert_eq!(Usim::load(&path).unwrap().sqn_ms(), 42 << 5);
    std::fs::write(&path, "not a number").unwrap();
    assert!(matches!(Usim::load(&path), Err(UeError::SqnFile { .. })));
}

#[test]
fn refresh_follows_ts_24_229() {
    for (expires, secs) in [(600, 300), (1200, 600), (3600, 3000), (1, 1), (0, 1)] {
        assert_eq!(
            refresh_delay(expires),
            Duration::from_secs(secs),
            "{expires}"
        );
    }
}

// ---------------------------------------------------------------- command line

#[derive(clap::Parser)]
struct TestCli {
    #[command(subcommand)]
    top: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    Ue(UeArgs),
}

fn parse_cli(args: &[&str]) -> Result<UeArgs, clap::Error> {
    TestCli::try_parse_from(std::iter::once("sichss").chain(args.iter().copied())).map(|c| match c
        .top
    {
        Top::Ue(u) => u,
    })
}

#[test]
fn command_line_derives_the_sic_impi_like_a_phone() {
    let args = parse_cli(&[
        "ue",
        "register",
        "--imsi",
        "460011100612345",
        "--sic",
        "001",
        "--mnc-len",
        "2",
        "--msisdn",
        "+8618612345678",
        "--k",
        K,
        "--opc",
        OPC,
        "--hold",
        "5",
    ])
    .unwrap();
    let UeCommand::Register(r) = args.command else {
        panic!("register expected")
    };
    assert_eq!(r.net.pcscf, "127.0.0.1:4060".parse::<SocketAddr>().unwrap());
    assert_eq!(r.expires, 600);
    let cfg = config(&r.identity, &r.credentials, &r.net).unwrap();
    assert_eq!(
        cfg.impi,
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org"
    );
    assert_eq!(cfg.impu, IMPU);
    assert_eq!(cfg.home_domain, HOME);
    assert!(cfg.credentials.aka.is_some() && cfg.credentials.password.is_none());

    // Legacy subscriber: no SIC, explicit home domain, password only.
    let args = parse_cli(&[
        "ue",
        "deregister",
        "--imsi",
        "460011100600001",
        "--home-domain",
        HOME,
        "--msisdn",
        "+8618600000001",
        "--password",
        PASSWORD,
        "--local",
        "127.0.0.1:5099",
    ])
    .unwrap();
    let UeCommand::Deregister(d) = args.command else {
        panic!("deregister expected")
    };
    let cfg = config(&d.identity, &d.credentials, &d.net).unwrap();
    assert_eq!(
        cfg.impi,
        "460011100600001@ims.mnc001.mcc460.3gppnetwork.org"
    );
    assert_eq!(cfg.local.port(), 5099);
}

#[test]
fn command_line_rejects_incomplete_identities_and_keys() {
    let base = [
        "ue",
        "register",
        "--imsi",
        "460011100612345",
        "--msisdn",
        "+86",
    ];
    // Neither --mnc-len nor --home-domain.
    assert!(parse_cli(&[&base[..], &["--password", "x"]].concat()).is_err());
    // No secret at all.
    assert!(parse_cli(&[&base[..], &["--mnc-len", "2"]].concat()).is_err());
    // MNC length 4.
    assert!(parse_cli(&[&base[..], &["--mnc-len", "4", "--password", "x"]].concat()).is_err());
    // K without OPc parses but does not configure.
    let a = parse_cli(&[&base[..], &["--mnc-len", "2", "--k", K]].concat()).unwrap();
    let UeCommand::Register(r) = a.command else {
        panic!()
    };
    let e = config(&r.identity, &r.credentials, &r.net).err().unwrap();
    assert!(e.to_string().contains("--opc"), "{e}");
    // A malformed key is named, its value is not shown.
    let a =
        parse_cli(&[&base[..], &["--mnc-len", "2", "--k", "abcd", "--opc", OPC]].concat()).unwrap();
    let UeCommand::Register(r) = a.command else {
        panic!()
    };
    let e = config(&r.identity, &r.credentials, &r.net).err().unwrap();
    assert!(
        e.to_string().contains('K') && !e.to_string().contains("abcd"),
        "{e}"
    );
    // Bad SIC.
    let a = parse_cli(
        &[
            &base[..],
            &["--mnc-len", "2", "--sic", "12", "--password", "x"],
        ]
        .concat(),
    )
    .unwrap();
    let UeCommand::Register(r) = a.command else {
        panic!()
    };
    assert!(matches!(
        config(&r.identity, &r.credentials, &r.net),
        Err(UeError::Identity(_))
    ));
}

// ---------------------------------------------------------------- fake registrar

/// How the fake registrar authenticates.
#[derive(Clone)]
enum Mode {
    /// AKAv1-MD5 with the test-set-1 keys and this SQN_HE.
    Aka,
    /// MD5 with [`PASSWORD`], no qop.
    Md5,
    /// Answers every REGISTER with this status.
    Reject(u16),
    /// Never answers.
    Silent,
}

/// A registrar on a loopback UDP socket that behaves like Kamailio's S-CSCF behind the
/// I-CSCF: challenges every REGISTER whose nonce it has not issued (nonces are single use),
/// verifies responses with XRES / the password, handles AUTS, and answers 200 with
/// P-Associated-URI, Service-Route and the contact's expiry.
struct FakeRegistrar {
    addr: SocketAddr,
    socket: Arc<UdpSocket>,
    /// Every message received, in order.
    log: Arc<Mutex<Vec<Message>>>,
    task: tokio::task::JoinHandle<()>,
}

struct Issued {
    rand: [u8; 16],
    password: Vec<u8>,
}

impl FakeRegistrar {
    async fn start(mode: Mode) -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (socket.clone(), log.clone());
        let task = tokio::spawn(async move { serve(s, l, mode).await });
        Self {
            addr,
            socket,
            log,
            task,
        }
    }

    fn registers(&self) -> Vec<Message> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.method() == Some("REGISTER") && m.status().is_none())
            .cloned()
            .collect()
    }

    async fn send_message(&self, to: SocketAddr, body: &str) {
        let m = Message::request("MESSAGE", &format!("sip:+8618612345678@{to}"))
            .with(
                "Via",
                format!("SIP/2.0/UDP {};branch=z9hG4bKmsg1", self.addr),
            )
            .with("From", "<sip:alice@example.org>;tag=a1")
            .with("To", format!("<{IMPU}>"))
            .with("Call-ID", "msg-1")
            .with("CSeq", "1 MESSAGE")
            .with_body("text/plain", body);
        // Twice: the second copy is a retransmission and must be answered, not reported.
        for _ in 0..2 {
            self.socket.send_to(&m.to_bytes(), to).await.unwrap();
        }
    }
}

impl Drop for FakeRegistrar {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: Arc<UdpSocket>, log: Arc<Mutex<Vec<Message>>>, mode: Mode) {
    let m = milenage();
    let mut sqn_he: u64 = 0;
    let mut issued: HashMap<String, Issued> = HashMap::new();
    let mut buf = vec![0u8; 65_535];
    let mut counter = 0u8;
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let msg = Message::parse(&buf[..n]).expect("the UE sends parseable SIP");
        log.lock().unwrap().push(msg.clone());
        if msg.method() != Some("REGISTER") || msg.status().is_some() {
            continue;
        }
        let reply = |resp: Message| {
            let socket = socket.clone();
            async move {
                socket.send_to(&resp.to_bytes(), from).await.unwrap();
            }
        };
        match mode {
            Mode::Silent => continue,
            Mode::Reject(code) => {
                reply(Message::response_to(&msg, code, "Forbidden", "r")).await;
                continue;
            }
            Mode::Aka | Mode::Md5 => {}
        }
        let auth = AuthParams::parse(msg.header("Authorization").expect("Authorization")).unwrap();
        let username = auth.get("username").unwrap().to_owned();
        let nonce = auth.get("nonce").unwrap_or_default().to_owned();
        let mut ok = false;
        if let Some(is) = issued.remove(&nonce) {
            if let Some(auts) = auth.get("auts") {
                let auts: [u8; 14] = base64::engine::general_purpose::STANDARD
                    .decode(auts)
                    .unwrap()
                    .try_into()
                    .unwrap();
                let sqn_ms = resync(&m, &is.rand, &auts).expect("AUTS verifies");
                sqn_he = after_resync(sqn_ms);
            } else {
                let qop = auth.get("qop").map(|q| {
                    (
                        auth.get("nc").unwrap().to_owned(),
                        auth.get("cnonce").unwrap().to_owned(),
                        q.to_owned(),
                    )
                });
                let want = response(
                    &ha1_aka(&username, HOME, &is.password),
                    &nonce,
                    "REGISTER",
                    auth.get("uri").unwrap(),
                    qop.as_ref()
                        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())),
                );
                if auth.get("response") == Some(want.as_str()) {
                    ok = true;
                } else {
                    reply(Message::response_to(
                        &msg,
                        403,
                        "Authentication Failed",
                        "r",
                    ))
                    .await;
                    continue;
                }
            }
        }
        if ok {
            let expires: u32 = msg.header("Expires").unwrap().parse().unwrap();
            let contact = uri_of(msg.header("Contact").unwrap()).to_owned();
            let mut resp = Message::response_to(&msg, 200, "OK", "r")
                .with(
                    "P-Associated-URI",
                    format!("<{IMPU}>, <tel:+8618612345678>"),
                )
                .with("Service-Route", "<sip:orig@127.0.0.1:6060;lr>");
            if expires > 0 {
                // Another service's contact on the shared IMPU comes first (kamailio.md §12).
                resp.push(
                    "m",
                    format!("<sip:other@127.0.0.1:9>;expires=77, <{contact}>;expires={expires}"),
                );
            }
            reply(resp).await;
            continue;
        }
        // Challenge with a fresh nonce.
        counter += 1;
        let (challenge, is) = match mode {
            Mode::Aka => {
                sqn_he = next_sqn(sqn_he);
                let v = generate_vector(&m, [counter; 16], sqn_he, [0x80, 0]);
                let nonce = nonce_from_vector(&v);
                (
                    format!(
                        r#"Digest realm="{HOME}", nonce="{nonce}", algorithm=AKAv1-MD5, ck="{}", ik="{}", qop="auth,auth-int""#,
                        v.ck.to_hex(),
                        v.ik.to_hex()
                    ),
                    (
                        nonce,
                        Issued {
                            rand: v.rand,
                            password: v.xres.to_vec(),
                        },
                    ),
                )
            }
            _ => {
                let nonce = format!("md5nonce{counter}");
                (
                    format!(r#"Digest realm="{HOME}", nonce="{nonce}", algorithm=MD5"#),
                    (
                        nonce,
                        Issued {
                            rand: [0; 16],
                            password: PASSWORD.as_bytes().to_vec(),
                        },
                    ),
                )
            }
        };
        issued.insert(is.0, is.1);
        reply(
            Message::response_to(&msg, 401, "Unauthorized - Challenging the UE", "r")
                .with("WWW-Authenticate", challenge),
        )
        .await;
    }
}

fn ue_config(pcscf: SocketAddr, creds: Credentials) -> UeConfig {
    let mut cfg = UeConfig::for_service(
        &crate::identity::Imsi::parse("460011100612345").unwrap(),
        Some(&crate::identity::Sic::parse("002").unwrap()),
        &crate::identity::HomeNetwork::MncLen(2),
        "+8618612345678",
        pcscf,
    )
    .unwrap();
    cfg.credentials = creds;
    cfg.timers = Timers {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        timeout: Duration::from_secs(3),
    };
    cfg
}

#[tokio::test]
async fn registers_refreshes_receives_message_and_deregisters_with_aka() {
    let reg = FakeRegistrar::start(Mode::Aka).await;
    let mut ue = Ue::bind(ue_config(reg.addr, aka_credentials()))
        .await
        .unwrap();
    assert_eq!(ue.impi(), IMPI);

    let r = ue.register().await.unwrap();
    assert_eq!(r.expires, 600, "the UE's own contact, not the other one");
    assert_eq!(r.associated, [IMPU, "tel:+8618612345678"]);
    assert_eq!(r.service_route, ["sip:orig@127.0.0.1:6060;lr"]);
    assert_eq!(r.contacts.len(), 2);
    let ev = ue.drain_events();
    assert!(
        matches!(
            &ev[..],
            [UeEvent::Registered {
                refresh: false,
                expires: 600,
                ..
            }]
        ),
        "{ev:?}"
    );

    // Refresh: reuses the nonce (nc=2), the registrar refuses it and challenges again.
    ue.register().await.unwrap();
    assert!(matches!(
        &ue.drain_events()[..],
        [UeEvent::Registered { refresh: true, .. }]
    ));

    // A MESSAGE to the contact is answered 200 and reported once.
    reg.send_message(ue.local_addr(), "hello RCS").await;
    let ev = ue
        .next_event(Some(Duration::from_secs(3)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        UeEvent::Message {
            impi: IMPI.into(),
            from: "sip:alice@example.org".into(),
            to: IMPU.into(),
            content_type: Some("text/plain".into()),
            body: "hello RCS".into(),
        }
    );
    assert_eq!(
        ue.next_event(Some(Duration::from_millis(300)))
            .await
            .unwrap(),
        None
    );

    ue.deregister().await.unwrap();
    assert!(ue.registration().is_none());
    assert!(matches!(
        &ue.drain_events()[..],
        [UeEvent::Deregistered { .. }]
    ));

    let registers = reg.registers();
    // initial + answer, refresh(nc=2) + answer, de-register(nc=2) + answer
    assert_eq!(registers.len(), 6, "{registers:#?}");
    let first = &registers[0];
    assert_eq!(
        first.start,
        StartLine::Request {
            method: "REGISTER".into(),
            uri: format!("sip:{HOME}")
        }
    );
    assert_eq!(
        first.header("Authorization").unwrap(),
        format!("Digest username=\"{IMPI}\", realm=\"{HOME}\", nonce=\"\", uri=\"sip:{HOME}\", response=\"\"")
    );
    assert_eq!(uri_of(first.header("To").unwrap()), IMPU);
    assert_eq!(uri_of(first.header("From").unwrap()), IMPU);
    assert!(param(first.header("From").unwrap(), "tag").is_some());
    assert_eq!(
        first.header("Contact").unwrap(),
        format!("<{}>", ue.contact())
    );
    assert!(ue.contact().ends_with(&ue.local_addr().to_string()));
    assert!(first.header("Via").unwrap().contains(";branch=z9hG4bK"));
    assert_eq!(first.header("Max-Forwards"), Some("70"));
    for (i, r) in registers.iter().enumerate() {
        assert_eq!(r.header("Call-ID"), Some(ue.call_id()), "one Call-ID");
        assert_eq!(r.cseq(), Some((i as u32 + 1, "REGISTER")), "CSeq counts up");
        let expires = if i >= 4 { "0" } else { "600" };
        assert_eq!(r.header("Expires"), Some(expires));
    }
    let refresh = AuthParams::parse(registers[2].header("Authorization").unwrap()).unwrap();
    assert_eq!(refresh.get("nc"), Some("00000002"));
    let answer = AuthParams::parse(registers[1].header("Authorization").unwrap()).unwrap();
    assert_eq!(answer.get("algorithm"), Some("AKAv1-MD5"));
    assert_eq!(answer.get("qop"), Some("auth"));
    assert_eq!(answer.get("nc"), Some("00000001"));
    // The UE answered the MESSAGE (and its retransmission) with 200.
    let oks = reg
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.status() == Some(200) && m.method() == Some("MESSAGE"))
        .count();
    assert_eq!(oks, 2);
}

#[tokio::test]
async fn registers_with_md5_password_without_qop() {
    let reg = FakeRegistrar::start(Mode::Md5).await;
    let creds = Credentials {
        aka: None,
        password: Some(PASSWORD.into()),
    };
    let mut ue = Ue::bind(ue_config(reg.addr, creds)).await.unwrap();
    ue.register().await.unwrap();
    let answer = AuthParams::parse(reg.registers()[1].header("Authorization").unwrap()).unwrap();
    assert_eq!(answer.get("qop"), None);
    assert_eq!(answer.get("nc"), None);
    assert_eq!(answer.get("algorithm"), Some("MD5"));
}

#[tokio::test]
async fn stale_usim_resynchronises_then_registers() {
    let reg = FakeRegistrar::start(Mode::Aka).await;
    let mut cfg = ue_config(reg.addr, aka_credentials());
    cfg.usim = Usim::new(1000 << 5);
    let mut ue = Ue::bind(cfg).await.unwrap();
    ue.register().await.unwrap();
    let ev = ue.drain_events();
    assert!(
        matches!(&ev[..], [UeEvent::Resync { sqn_ms, .. }, UeEvent::Registered { .. }] if *sqn_ms == 1000 << 5),
        "{ev:?}"
    );
    // initial, AUTS answer, RES answer
    let registers = reg.registers();
    assert_eq!(registers.len(), 3);
    let auts = AuthParams::parse(registers[1].header("Authorization").unwrap()).unwrap();
    assert!(auts.get("auts").is_some());
    assert!(ue.usim().sqn_ms() > 1000 << 5);
}

#[tokio::test]
async fn wrong_password_ends_in_the_registrars_refusal() {
    let reg = FakeRegistrar::start(Mode::Md5).await;
    let creds = Credentials {
        aka: None,
        password: Some("wrong".into()),
    };
    let mut ue = Ue::bind(ue_config(reg.addr, creds)).await.unwrap();
    let e = ue.register().await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
}

#[tokio::test]
async fn unanswered_register_is_retransmitted_then_times_out() {
    let reg = FakeRegistrar::start(Mode::Silent).await;
    let mut ue = Ue::bind(ue_config(reg.addr, aka_credentials()))
        .await
        .unwrap();
    let e = ue.register().await.unwrap_err();
    assert!(matches!(e, UeError::Timeout { .. }), "{e}");
    let copies = reg.registers();
    assert!(copies.len() >= 4, "retransmissions: {}", copies.len());
    assert!(copies.iter().all(|c| c.to_bytes() == copies[0].to_bytes()));
}

#[tokio::test]
async fn run_exits_with_the_403_of_an_unsubscribed_sic() {
    let reg = FakeRegistrar::start(Mode::Reject(403)).await;
    let pcscf = reg.addr.to_string();
    let args = parse_cli(&[
        "ue",
        "register",
        "--imsi",
        "460011100612345",
        "--sic",
        "003",
        "--mnc-len",
        "2",
        "--msisdn",
        "+8618612345678",
        "--password",
        PASSWORD,
        "--pcscf",
        &pcscf,
        "--json",
    ])
    .unwrap();
    let e = run(args).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("403"), "{e}");
}

#[tokio::test]
async fn run_with_hold_deregisters_when_the_hold_ends() {
    let reg = FakeRegistrar::start(Mode::Aka).await;
    let pcscf = reg.addr.to_string();
    let args = parse_cli(&[
        "ue",
        "register",
        "--imsi",
        "460011100612345",
        "--sic",
        "001",
        "--mnc-len",
        "2",
        "--msisdn",
        "+8618612345678",
        "--k",
        K,
        "--opc",
        OPC,
        "--pcscf",
        &pcscf,
        "--hold",
        "1",
        "--listen-messages",
    ])
    .unwrap();
    run(args).await.unwrap();
    let registers = reg.registers();
    assert_eq!(
        registers.len(),
        4,
        "register + answer, de-register + answer"
    );
    assert_eq!(registers[3].header("Expires"), Some("0"));
    let username = AuthParams::parse(registers[0].header("Authorization").unwrap()).unwrap();
    assert_eq!(
        username.get("username"),
        Some("460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org")
    );
}

#[tokio::test]
async fn run_message_sends_to_the_request_uri() {
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pcscf = sink.local_addr().unwrap().to_string();
    let args = parse_cli(&[
        "ue", "message", "--to", IMPU, "--body", "hi", "--pcscf", &pcscf,
    ])
    .unwrap();
    let task = tokio::spawn(run(args));
    let mut buf = vec![0u8; 65_535];
    let (n, from) = sink.recv_from(&mut buf).await.unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "MESSAGE".into(),
            uri: IMPU.into()
        }
    );
    assert_eq!(m.body, b"hi");
    let resp = Message::response_to(&m, 202, "Accepted", "x");
    sink.send_to(&resp.to_bytes(), from).await.unwrap();
    task.await.unwrap().unwrap();
}
