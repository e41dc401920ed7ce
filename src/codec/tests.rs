//! Codec tests: table-driven in both directions, one malformed fixture per result code,
//! framing, and a no-panic sweep.

use super::codes::*;
use super::framer::{check_frame, Frame, FrameError};
use super::*;
use crate::dict::Dictionary;

fn dict() -> &'static Dictionary {
    Dictionary::builtin()
}

fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(clean).unwrap()
}

/// A UAR as Kamailio's I-CSCF sends it.
fn sample_uar() -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        0x1234,
        0x5678,
    )
    .with(Avp::utf8(SESSION_ID, "icscf.ims.example.org;1;2"))
    .with(Avp::grouped(
        VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(VENDOR_ID, VENDOR_3GPP),
            Avp::u32(AUTH_APPLICATION_ID, 16777216),
        ],
    ))
    .with(Avp::enumerated(AUTH_SESSION_STATE, 1))
    .with(Avp::identity(ORIGIN_HOST, "icscf.ims.example.org"))
    .with(Avp::identity(ORIGIN_REALM, "ims.example.org"))
    .with(Avp::identity(DESTINATION_REALM, "ims.example.org"))
    .with(Avp::utf8(
        USER_NAME,
        "460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org",
    ))
    .with(Avp::utf8(
        PUBLIC_IDENTITY,
        "sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org",
    ))
    .with(Avp::octets(
        VISITED_NETWORK_IDENTIFIER,
        b"ims.mnc001.mcc460.3gppnetwork.org".to_vec(),
    ))
    .with(Avp::enumerated(USER_AUTHORIZATION_TYPE, 0))
}

#[test]
fn encodes_experimental_result_as_in_rfc_worked_bytes() {
    let avp = Avp::grouped(
        EXPERIMENTAL_RESULT,
        vec![
            Avp::u32(VENDOR_ID, 10415),
            Avp::u32(EXPERIMENTAL_RESULT_CODE, 2001),
        ],
    );
    let mut out = Vec::new();
    avp.encode_into(&mut out);
    assert_eq!(
        out,
        unhex("00000129 40000020 0000010a 4000000c 000028af 0000012a 4000000c 000007d1")
    );
}

#[test]
fn encodes_vendor_avp_with_padding() {
    let avp = Avp::utf8(PUBLIC_IDENTITY, "sip:alice@ims.example.org");
    let mut out = Vec::new();
    avp.encode_into(&mut out);
    assert_eq!(out.len(), 40);
    assert_eq!(&out[..12], &unhex("00000259 c0000025 000028af")[..]);
    assert_eq!(&out[37..], &[0, 0, 0]);
}

#[test]
fn built_message_roundtrips_through_bytes() {
    let m = sample_uar();
    let bytes = m.encode();
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(
        u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize,
        bytes.len()
    );
    let d = decode_message(&bytes, dict()).unwrap();
    assert_eq!(d.avps, m.avps);
    assert_eq!(d.encode(), bytes);
    validate(&d, dict()).unwrap();
}

#[test]
fn parses_avps_in_any_order() {
    let mut m = sample_uar();
    m.avps.reverse();
    let d = decode_message(&m.encode(), dict()).unwrap();
    assert_eq!(
        d.str(USER_NAME),
        Some("460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org")
    );
    assert_eq!(d.u32(USER_AUTHORIZATION_TYPE), Some(0));
}

#[test]
fn decodes_every_cx_value_type() {
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let ip6: std::net::IpAddr = "::1".parse().unwrap();
    let m = Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        1,
        2,
    )
    .with(Avp::identity(ORIGIN_HOST, "a.example.org"))
    .with(Avp::identity(ORIGIN_REALM, "example.org"))
    .with(Avp::address(HOST_IP_ADDRESS, ip))
    .with(Avp::address(HOST_IP_ADDRESS, ip6))
    .with(Avp::u32(VENDOR_ID, 0))
    .with(Avp::utf8(PRODUCT_NAME, "t"))
    .with(Avp::u32(FIRMWARE_REVISION, 7));
    let d = decode_message(&m.encode(), dict()).unwrap();
    let addrs: Vec<_> = d
        .find_all(HOST_IP_ADDRESS)
        .map(|a| match &a.value {
            Value::Address(x) => x.ip().unwrap(),
            v => panic!("not an address: {v:?}"),
        })
        .collect();
    assert_eq!(addrs, vec![ip, ip6]);
    assert!(matches!(
        d.find(ORIGIN_HOST).unwrap().value,
        Value::DiameterIdentity(_)
    ));
    assert!(matches!(
        d.find(PRODUCT_NAME).unwrap().value,
        Value::Utf8String(_)
    ));
    assert!(matches!(
        d.find(FIRMWARE_REVISION).unwrap().value,
        Value::Unsigned32(7)
    ));
    validate(&d, dict()).unwrap();
}

#[test]
fn keeps_unknown_non_mandatory_avp() {
    let unknown = Avp {
        code: 494,
        flags: 0x80,
        vendor: Some(99999),
        value: Value::OctetString(b"call-id".to_vec().into()),
    };
    let m = sample_uar().with(unknown);
    let bytes = m.encode();
    let d = decode_message(&bytes, dict()).unwrap();
    let kept = d.avps.last().unwrap();
    assert_eq!(kept.code, 494);
    assert_eq!(kept.value, Value::Unknown(b"call-id".to_vec().into()));
    validate(&d, dict()).unwrap();
    assert_eq!(d.encode(), bytes);
}

#[test]
fn answer_copies_ids_session_p_bit_and_proxy_info() {
    let req = sample_uar().with(Avp::grouped(
        PROXY_INFO,
        vec![
            Avp::identity(PROXY_HOST, "p.example.org"),
            Avp::octets(PROXY_STATE, b"s".to_vec()),
        ],
    ));
    let mut a = Message::answer_to(&req);
    a.set_result(ResultCode::DIAMETER_SUCCESS);
    a.finish_answer(&req);
    assert!(!a.header.is_request());
    assert!(a.header.is_proxiable());
    assert_eq!(a.header.hop_by_hop, 0x1234);
    assert_eq!(a.header.end_to_end, 0x5678);
    assert_eq!(a.avps[0].as_str(), Some("icscf.ims.example.org;1;2"));
    assert!(a.find(PROXY_INFO).is_some());
    assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
}

// ---- framing ---------------------------------------------------------------------------

#[test]
fn framer_asks_for_more_then_finds_one_message() {
    let bytes = sample_uar().encode();
    assert_eq!(check_frame(&bytes[..10], 1 << 20), Frame::Incomplete);
    assert_eq!(check_frame(&bytes[..30], 1 << 20), Frame::Incomplete);
    assert_eq!(check_frame(&bytes, 1 << 20), Frame::Complete(bytes.len()));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    assert_eq!(check_frame(&two, 1 << 20), Frame::Complete(bytes.len()));
}

#[test]
fn framer_rejects_bad_version_length_and_oversize() {
    let mut b = sample_uar().encode();
    b[0] = 2;
    assert!(matches!(
        check_frame(&b, 1 << 20),
        Frame::Invalid(_, FrameError::UnsupportedVersion(2))
    ));
    let mut b = sample_uar().encode();
    b[1..4].copy_from_slice(&[0, 0, 19]);
    assert!(matches!(
        check_frame(&b, 1 << 20),
        Frame::Invalid(_, FrameError::BadLength(19))
    ));
    let mut b = sample_uar().encode();
    b[1..4].copy_from_slice(&[0, 0, 22]);
    assert!(matches!(
        check_frame(&b, 1 << 20),
        Frame::Invalid(_, FrameError::BadLength(22))
    ));
    let b = sample_uar().encode();
    assert!(matches!(
        check_frame(&b, 64),
        Frame::Invalid(_, FrameError::TooLarge { max: 64, .. })
    ));
}

// ---- malformed fixtures: one per result code -----------------------------------------

/// Builds a UAR and lets `f` corrupt its bytes.
fn corrupt(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = sample_uar().encode();
    f(&mut b);
    b
}

/// Offset of the first AVP with this code in an encoded message.
fn avp_offset(b: &[u8], code: u32) -> usize {
    let mut i = 20;
    while i + 8 <= b.len() {
        let c = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let len = u32::from_be_bytes([0, b[i + 5], b[i + 6], b[i + 7]]) as usize;
        if c == code {
            return i;
        }
        i += (len + 3) & !3;
    }
    panic!("AVP {code} not found");
}

fn decode_err(b: &[u8]) -> ProtocolError {
    *decode_message(b, dict()).unwrap_err().error
}

fn validate_err(m: Message) -> ProtocolError {
    let d = decode_message(&m.encode(), dict()).expect("decodes");
    validate(&d, dict()).unwrap_err()
}

#[test]
fn answers_avp_length_below_header_with_5014_and_failed_avp() {
    let b = corrupt(|b| {
        let i = avp_offset(b, 1);
        b[i + 5..i + 8].copy_from_slice(&[0, 0, 4]);
    });
    let e = decode_err(&b);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_LENGTH);
    assert_eq!(e.failed_avp().unwrap().code, 1);
}

#[test]
fn answers_avp_length_past_message_end_with_5014() {
    let b = corrupt(|b| {
        let i = avp_offset(b, 623);
        b[i + 5..i + 8].copy_from_slice(&[0, 0x10, 0]);
    });
    let e = decode_err(&b);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_LENGTH);
    let f = e.failed_avp().unwrap();
    assert_eq!((f.code, f.vendor), (623, Some(10415)));
    // Zero-filled minimal payload for an Enumerated: 4 octets.
    assert_eq!(f.as_bytes(), Some(&[0u8, 0, 0, 0][..]));
}

#[test]
fn answers_unsigned32_of_wrong_size_with_5014() {
    let m = sample_uar().with(Avp {
        code: 607,
        flags: 0xc0,
        vendor: Some(10415),
        value: Value::OctetString(vec![1, 2].into()),
    });
    let e = decode_err(&m.encode());
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_LENGTH);
    assert_eq!(e.failed_avp().unwrap().code, 607);
}

#[test]
fn answers_message_length_mismatch_with_5015() {
    let b = corrupt(|b| {
        let n = b.len() as u32 + 4;
        b[1..4].copy_from_slice(&n.to_be_bytes()[1..]);
    });
    assert_eq!(
        decode_err(&b).result_code(),
        ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH
    );
    let b = corrupt(|b| b.truncate(12));
    let e = decode_message(&b, dict()).unwrap_err();
    assert!(e.header.is_none());
    assert_eq!(
        e.error.result_code(),
        ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH
    );
    assert!(e.error.is_fatal_for_connection());
}

#[test]
fn answers_e_bit_in_request_with_3008() {
    let b = corrupt(|b| b[4] |= 0x20);
    let e = decode_message(&b, dict()).unwrap_err();
    assert_eq!(e.error.result_code(), ResultCode::DIAMETER_INVALID_HDR_BITS);
    assert_eq!(e.header.unwrap().hop_by_hop, 0x1234);
}

#[test]
fn answers_reserved_header_bit_with_5013() {
    let b = corrupt(|b| b[4] |= 0x01);
    assert_eq!(
        decode_err(&b).result_code(),
        ResultCode::DIAMETER_INVALID_BIT_IN_HEADER
    );
}

#[test]
fn answers_wrong_version_with_5011() {
    let b = corrupt(|b| b[0] = 3);
    assert_eq!(
        decode_err(&b).result_code(),
        ResultCode::DIAMETER_UNSUPPORTED_VERSION
    );
}

#[test]
fn answers_reserved_avp_bit_with_3009() {
    let b = corrupt(|b| {
        let i = avp_offset(b, 1);
        b[i + 4] |= 0x01;
    });
    let e = decode_err(&b);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_BITS);
    assert_eq!(e.failed_avp().unwrap().code, 1);
}

#[test]
fn answers_unknown_mandatory_avp_with_5001() {
    let m = sample_uar().with(Avp {
        code: 9999,
        flags: 0x40,
        vendor: None,
        value: Value::OctetString(b"x".to_vec().into()),
    });
    let e = validate_err(m);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_AVP_UNSUPPORTED);
    let f = e.failed_avp().unwrap();
    assert_eq!(f.code, 9999);
    assert_eq!(f.as_bytes(), Some(&b"x"[..]));
}

#[test]
fn answers_invalid_utf8_with_5004() {
    let m = sample_uar();
    let mut b = m.encode();
    let i = avp_offset(&b, 1);
    b[i + 8] = 0xff;
    let e = decode_err(&b);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_VALUE);
    assert_eq!(e.failed_avp().unwrap().code, 1);
}

#[test]
fn answers_undefined_enumerated_value_with_5004() {
    let mut m = sample_uar();
    m.avps.retain(|a| !a.is(USER_AUTHORIZATION_TYPE));
    m.push(Avp::enumerated(USER_AUTHORIZATION_TYPE, 77));
    let e = validate_err(m);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_VALUE);
    assert_eq!(e.failed_avp().unwrap().as_i32(), Some(77));
}

#[test]
fn answers_missing_mandatory_avp_with_5005_and_zeroed_example() {
    let mut m = sample_uar();
    m.avps.retain(|a| !a.is(PUBLIC_IDENTITY));
    let e = validate_err(m);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_MISSING_AVP);
    let f = e.failed_avp().unwrap();
    assert_eq!((f.code, f.vendor), (601, Some(10415)));
}

#[test]
fn answers_repeated_single_avp_with_5009() {
    let m = sample_uar().with(Avp::utf8(USER_NAME, "second@example.org"));
    let e = validate_err(m);
    assert_eq!(
        e.result_code(),
        ResultCode::DIAMETER_AVP_OCCURS_TOO_MANY_TIMES
    );
    assert_eq!(e.failed_avp().unwrap().as_str(), Some("second@example.org"));
}

#[test]
fn checks_grouped_member_grammar() {
    let mut m = sample_uar();
    m.avps.retain(|a| !a.is(VENDOR_SPECIFIC_APPLICATION_ID));
    m.push(Avp::grouped(
        VENDOR_SPECIFIC_APPLICATION_ID,
        vec![Avp::u32(AUTH_APPLICATION_ID, 16777216)],
    ));
    let e = validate_err(m);
    assert_eq!(e.result_code(), ResultCode::DIAMETER_MISSING_AVP);
    assert_eq!(e.failed_avp().unwrap().code, 266);
}

#[test]
fn rejects_grouped_nesting_beyond_the_bound() {
    // Proxy-Info (284) nested 40 deep: grouped all the way down.
    let mut a = Avp::u32(RESULT_CODE, 1);
    for _ in 0..40 {
        a = Avp::grouped(PROXY_INFO, vec![a]);
    }
    let m = sample_uar().with(a);
    let e = decode_err(&m.encode());
    assert_eq!(e.result_code(), ResultCode::DIAMETER_INVALID_AVP_VALUE);
    assert!(matches!(e, ProtocolError::NestingTooDeep { .. }));
}

// ---- robustness ------------------------------------------------------------------------

#[test]
fn never_panics_on_truncations_and_bit_flips() {
    let bytes = sample_uar().encode();
    for n in 0..bytes.len() {
        let _ = decode_message(&bytes[..n], dict());
        let _ = check_frame(&bytes[..n], 1 << 20);
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            if let Ok(m) = decode_message(&b, dict()) {
                let _ = validate(&m, dict());
                // Whatever decodes must re-decode to the same value.
                assert_eq!(decode_message(&m.encode(), dict()).unwrap(), m);
            }
        }
    }
}

/// Every octet and text value of `avps`, Grouped members included.
fn shared_values(avps: &[Avp], out: &mut Vec<*const u8>) {
    for a in avps {
        match &a.value {
            Value::OctetString(b) | Value::Unknown(b) => out.push(b.as_ptr()),
            Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => {
                out.push(s.as_ptr())
            }
            Value::Grouped(g) => shared_values(g, out),
            _ => {}
        }
    }
}

#[test]
fn a_frame_decodes_in_place_its_values_pointing_into_it() {
    let frame = bytes::Bytes::from(sample_uar().encode());
    let m = decode_frame(frame.clone(), dict()).unwrap();
    let mut values = Vec::new();
    shared_values(&m.avps, &mut values);
    // Session-Id, Origin-Host, Origin-Realm, Destination-Realm, User-Name,
    // Public-Identity, Visited-Network-Identifier.
    assert_eq!(values.len(), 7);
    let inside = frame.as_ptr_range();
    for p in values {
        assert!(inside.contains(&p), "a value was copied out of the frame");
    }
    assert_eq!(m.avps, sample_uar().avps);
}

#[test]
fn never_panics_on_pseudo_random_input() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for round in 0..20_000 {
        let len = 20 + (round % 200);
        let mut b: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        b[0] = 1;
        let l = (len as u32).to_be_bytes();
        b[1..4].copy_from_slice(&l[1..]);
        if let Ok(m) = decode_message(&b, dict()) {
            let _ = validate(&m, dict());
        }
    }
}

#[test]
fn codes_agree_with_dictionary() {
    for k in ALL {
        let def = dict()
            .avp(k.code, k.vendor)
            .unwrap_or_else(|| panic!("AVP {}/{} missing from the dictionary", k.code, k.vendor));
        let m_ok = match def.m {
            crate::dict::FlagRule::Must => k.mandatory,
            crate::dict::FlagRule::MustNot => !k.mandatory,
            crate::dict::FlagRule::May => true,
        };
        assert!(m_ok, "M bit of {} disagrees with the dictionary", def.name);
    }
}

#[test]
fn decodes_failed_avp_holding_an_invalid_value() {
    // An answer's Failed-AVP carries the offending AVP as received (RFC 6733 §7.5).
    let bad = Avp {
        code: 1,
        flags: 0x40,
        vendor: None,
        value: Value::OctetString(vec![0xff, 0xfe].into()),
    };
    let short_u32 = Avp {
        code: 268,
        flags: 0x40,
        vendor: None,
        value: Value::OctetString(vec![1].into()),
    };
    let mut a = Message::answer_to(&sample_uar());
    a.set_result(ResultCode::DIAMETER_INVALID_AVP_VALUE);
    a.push(Avp::grouped(FAILED_AVP, vec![bad.clone(), short_u32]));
    let bytes = a.encode();
    let d = decode_message(&bytes, dict()).expect("decodes");
    let f = d.find(FAILED_AVP).unwrap();
    assert_eq!(
        f.members()[0].value,
        Value::Unknown(vec![0xff, 0xfe].into())
    );
    assert_eq!(d.encode(), bytes);
    // Outside Failed-AVP the same value is still refused.
    let m = sample_uar().with(bad);
    assert!(decode_message(&m.encode(), dict()).is_err());
}

#[test]
fn failed_avp_keeps_a_member_with_invalid_flag_bits() {
    // An error answer carries the offending AVP as received (RFC 6733 §7.5), even when its
    // flags are what was wrong with it: V set with Vendor-Id 0, or a reserved bit. Found by
    // the request_path fuzz target (fuzz/regressions/request_path/).
    for (flags, vendor) in [(0xc0u8, Some(0u32)), (0x41, None)] {
        let bad = Avp {
            code: 602,
            flags,
            vendor,
            value: Value::Unknown(Vec::new().into()),
        };
        let mut a = Message::answer_to(&sample_uar());
        a.set_result(ResultCode(3009));
        a.push(Avp::identity(ORIGIN_HOST, "hss.example.org"));
        a.push(Avp::identity(ORIGIN_REALM, "example.org"));
        a.push(Avp::grouped(FAILED_AVP, vec![bad.clone()]));
        let bytes = a.encode();
        let back = decode_message(&bytes, dict()).expect("the answer decodes");
        assert_eq!(back.find(FAILED_AVP).unwrap().members(), &[bad]);
        assert_eq!(back.encode(), bytes);
    }
    // Outside Failed-AVP such an AVP is still refused.
    let mut m = sample_uar();
    m.push(Avp {
        code: 602,
        flags: 0xc0,
        vendor: Some(0),
        value: Value::Unknown(Vec::new().into()),
    });
    assert!(decode_message(&m.encode(), dict()).is_err());
}
