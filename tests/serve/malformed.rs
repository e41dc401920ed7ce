//! Every malformed fixture sent over TCP to a running `sichss serve`: each gets its
//! Result-Code (E bit for protocol errors) and Failed-AVP, and the server keeps serving.

use std::time::Duration;

use sichss::codec::{
    check_frame, codes, decode_message, ApplicationId, Avp, CommandCode, Frame, Message, Value,
    VENDOR_3GPP,
};
use sichss::demo;
use sichss::dict::Dictionary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::process::*;

/// A raw connection that has done CER/CEA.
async fn open(hss: &Hss) -> TcpStream {
    let mut s = TcpStream::connect(hss.diameter).await.unwrap();
    let cer = Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        1,
        1,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, SCSCF_HOST))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::address(
        codes::HOST_IP_ADDRESS,
        "127.0.0.1".parse().unwrap(),
    ))
    .with(Avp::u32(codes::VENDOR_ID, 0))
    .with(Avp::utf8(codes::PRODUCT_NAME, "raw"))
    .with(Avp::u32(codes::AUTH_APPLICATION_ID, 16777216));
    s.write_all(&cer.encode()).await.unwrap();
    let cea = read(&mut s).await.expect("CEA");
    assert_eq!(cea.result_code().map(|r| r.0), Some(2001));
    s
}

/// Reads one message; `None` at EOF.
async fn read(s: &mut TcpStream) -> Option<Message> {
    let mut buf = Vec::new();
    loop {
        if let Frame::Complete(n) = check_frame(&buf, 1 << 20) {
            return Some(decode_message(&buf[..n], Dictionary::builtin()).expect("answer decodes"));
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn uar() -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        0x4242,
        0x4343,
    )
    .with(Avp::utf8(codes::SESSION_ID, "raw;1;1"))
    .with(Avp::grouped(
        codes::VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(codes::VENDOR_ID, VENDOR_3GPP),
            Avp::u32(codes::AUTH_APPLICATION_ID, 16777216),
        ],
    ))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, SCSCF_HOST))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::identity(codes::DESTINATION_REALM, REALM))
    .with(Avp::utf8(codes::USER_NAME, demo::impi_a("001")))
    .with(Avp::utf8(codes::PUBLIC_IDENTITY, sip_a()))
    .with(Avp::octets(
        codes::VISITED_NETWORK_IDENTIFIER,
        REALM.as_bytes().to_vec(),
    ))
}

/// Offset of the first top-level AVP with `code`.
fn offset(b: &[u8], code: u32) -> usize {
    let mut i = 20;
    loop {
        let c = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let len = u32::from_be_bytes([0, b[i + 5], b[i + 6], b[i + 7]]) as usize;
        if c == code {
            return i;
        }
        i += (len + 3) & !3;
    }
}

struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    code: u32,
    e_bit: bool,
    failed_avp: Option<u32>,
    closes: bool,
}

fn fixtures() -> Vec<Fixture> {
    let base = uar().encode();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    let un = offset(&base, 1);
    vec![
        Fixture {
            name: "AVP length below its header",
            bytes: with(&|b| b[un + 5..un + 8].copy_from_slice(&[0, 0, 4])),
            code: 5014,
            e_bit: false,
            failed_avp: Some(1),
            closes: false,
        },
        Fixture {
            name: "message length not a multiple of 4",
            bytes: with(&|b| {
                let n = (b.len() - 2) as u32;
                b[1..4].copy_from_slice(&n.to_be_bytes()[1..]);
            }),
            code: 5015,
            e_bit: false,
            failed_avp: None,
            closes: true,
        },
        Fixture {
            name: "E bit in a request",
            bytes: with(&|b| b[4] |= 0x20),
            code: 3008,
            e_bit: true,
            failed_avp: None,
            closes: false,
        },
        Fixture {
            name: "reserved AVP flag bit",
            bytes: with(&|b| b[un + 4] |= 0x01),
            code: 3009,
            e_bit: true,
            failed_avp: Some(1),
            closes: false,
        },
        Fixture {
            name: "unknown AVP with the M bit",
            bytes: uar()
                .with(Avp {
                    code: 9999,
                    flags: 0x40,
                    vendor: None,
                    value: Value::OctetString(b"x".to_vec().into()),
                })
                .encode(),
            code: 5001,
            e_bit: false,
            failed_avp: Some(9999),
            closes: false,
        },
        Fixture {
            name: "User-Name not UTF-8",
            bytes: with(&|b| b[un + 8] = 0xff),
            code: 5004,
            e_bit: false,
            failed_avp: Some(1),
            closes: false,
        },
        Fixture {
            name: "Public-Identity missing",
            bytes: {
                let mut m = uar();
                m.avps.retain(|a| !a.is(codes::PUBLIC_IDENTITY));
                m.encode()
            },
            code: 5005,
            e_bit: false,
            failed_avp: Some(601),
            closes: false,
        },
        Fixture {
            name: "User-Name twice",
            bytes: uar()
                .with(Avp::utf8(codes::USER_NAME, "x@example.org"))
                .encode(),
            code: 5009,
            e_bit: false,
            failed_avp: Some(1),
            closes: false,
        },
        Fixture {
            name: "reserved header bit",
            bytes: with(&|b| b[4] |= 0x01),
            code: 5013,
            e_bit: false,
            failed_avp: None,
            closes: false,
        },
        Fixture {
            name: "Diameter version 2",
            bytes: with(&|b| b[0] = 2),
            code: 5011,
            e_bit: false,
            failed_avp: None,
            closes: true,
        },
    ]
}

#[tokio::test]
async fn answers_every_malformed_fixture_with_its_code_and_failed_avp() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    for f in fixtures() {
        let mut s = open(&hss).await;
        s.write_all(&f.bytes).await.unwrap();
        let a = read(&mut s)
            .await
            .unwrap_or_else(|| panic!("{}: no answer", f.name));
        let code = a.result_code().map(|r| r.0);
        assert_eq!(code, Some(f.code), "{}: {a:?}", f.name);
        assert_eq!(a.header.is_error(), f.e_bit, "{}: E bit", f.name);
        assert_eq!(a.header.hop_by_hop, 0x4242, "{}: hop-by-hop echoed", f.name);
        assert!(
            a.find(codes::ORIGIN_HOST).is_some(),
            "{}: Origin-Host",
            f.name
        );
        let failed = a
            .find(codes::FAILED_AVP)
            .and_then(|g| g.members().first())
            .map(|m| m.code);
        assert_eq!(failed, f.failed_avp, "{}: Failed-AVP", f.name);
        if f.closes {
            assert!(
                read(&mut s).await.is_none(),
                "{}: connection closed",
                f.name
            );
        } else {
            // The connection still serves a good request.
            let mut good = uar();
            good.header.hop_by_hop = 7;
            s.write_all(&good.encode()).await.unwrap();
            let a = read(&mut s).await.expect("answer to a good request");
            assert_eq!(a.header.hop_by_hop, 7, "{}", f.name);
            assert_eq!(
                a.experimental_result().map(|e| e.0),
                Some(2001),
                "{}",
                f.name
            );
        }
    }
    assert!(hss.stop().success());
}
