//! Table-driven tests against cx-spec.md §7: TS 35.208 test sets, the derived AUTN/nonce
//! table, the AUTS worked example, hostapd's set-20 AUTS, RFC 2617 and RFC 3310 examples.

use base64::Engine as _;

use super::digest::{ha1, ha1_aka, nonce_from_vector, response};
use super::sqn::{after_resync, ind, next_sqn, seq, sqn_from_bytes, sqn_to_bytes, SQN_MAX};
use super::*;

fn h<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).unwrap_or_else(|e| panic!("bad test hex {s}: {e}"));
    out
}

fn key(s: &str) -> Key128 {
    Key128::from_hex("test key", s).unwrap()
}

struct TestSet {
    name: &'static str,
    k: &'static str,
    rand: &'static str,
    sqn: &'static str,
    amf: &'static str,
    op: &'static str,
    opc: &'static str,
    mac_a: &'static str,
    mac_s: &'static str,
    res: &'static str,
    ck: &'static str,
    ik: &'static str,
    ak: &'static str,
    ak_star: &'static str,
}

/// cx-spec.md §7.2, all five columns.
#[rustfmt::skip]
const SETS: [TestSet; 5] = [
    TestSet {
        name: "TS1",
        k: "465b5ce8b199b49faa5f0a2ee238a6bc",
        rand: "23553cbe9637a89d218ae64dae47bf35",
        sqn: "ff9bb4d0b607",
        amf: "b9b9",
        op: "cdc202d5123e20f62b6d676ac72cb318",
        opc: "cd63cb71954a9f4e48a5994e37a02baf",
        mac_a: "4a9ffac354dfafb3",
        mac_s: "01cfaf9ec4e871e9",
        res: "a54211d5e3ba50bf",
        ck: "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        ik: "f769bcd751044604127672711c6d3441",
        ak: "aa689c648370",
        ak_star: "451e8beca43b",
    },
    TestSet {
        name: "35.207 TS2",
        k: "0396eb317b6d1c36f19c1c84cd6ffd16",
        rand: "c00d603103dcee52c4478119494202e8",
        sqn: "fd8eef40df7d",
        amf: "af17",
        op: "ff53bade17df5d4e793073ce9d7579fa",
        opc: "53c15671c60a4b731c55b4a441c0bde2",
        mac_a: "5df5b31807e258b0",
        mac_s: "a8c016e51ef4a343",
        res: "d3a628ed988620f0",
        ck: "58c433ff7a7082acd424220f2b67c556",
        ik: "21a8c1f929702adb3e738488b9f5c5da",
        ak: "c47783995f72",
        ak_star: "30f1197061c1",
    },
    TestSet {
        name: "35.208 TS3",
        k: "fec86ba6eb707ed08905757b1bb44b8f",
        rand: "9f7c8d021accf4db213ccff0c7f71a6a",
        sqn: "9d0277595ffc",
        amf: "725c",
        op: "dbc59adcb6f9a0ef735477b7fadf8374",
        opc: "1006020f0a478bf6b699f15c062e42b3",
        mac_a: "9cabc3e99baf7281",
        mac_s: "95814ba2b3044324",
        res: "8011c48c0c214ed2",
        ck: "5dbdbb2954e8f3cde665b046179a5098",
        ik: "59a92d3b476a0443487055cf88b2307b",
        ak: "33484dc2136b",
        ak_star: "deacdd848cc6",
    },
    TestSet {
        name: "35.208 TS4",
        k: "9e5944aea94b81165c82fbf9f32db751",
        rand: "ce83dbc54ac0274a157c17f80d017bd6",
        sqn: "0b604a81eca8",
        amf: "9e09",
        op: "223014c5806694c007ca1eeef57f004f",
        opc: "a64a507ae1a2a98bb88eb4210135dc87",
        mac_a: "74a58220cba84c49",
        mac_s: "ac2cc74a96871837",
        res: "f365cd683cd92e96",
        ck: "e203edb3971574f5a94b0d61b816345d",
        ik: "0c4524adeac041c4dd830d20854fc46b",
        ak: "f0b9c08ad02e",
        ak_star: "6085a86c6f63",
    },
    TestSet {
        name: "35.208 TS5",
        k: "4ab1deb05ca6ceb051fc98e77d026a84",
        rand: "74b0cd6031a1c8339b2b6ce2b8c4a186",
        sqn: "e880a1b580b6",
        amf: "9f07",
        op: "2d16c5cd1fdf6b22383584e3bef2a8d8",
        opc: "dcf07cbd51855290b92a07a9891e523e",
        mac_a: "49e785dd12626ef2",
        mac_s: "9e85790336bb3fa2",
        res: "5860fc1bce351e7e",
        ck: "7657766b373d1c2138f307e3de9242f9",
        ik: "1c42e960d89b8fa99f2744e0708ccb53",
        ak: "31e11a609118",
        ak_star: "fe2555e54aa9",
    },
];

fn set_milenage(t: &TestSet) -> Milenage {
    Milenage::with_opc(&key(t.k), &key(t.opc))
}

#[test]
fn milenage_matches_35208_test_sets() {
    for t in &SETS {
        let from_op = Milenage::with_op(&key(t.k), &key(t.op));
        assert_eq!(from_op.opc().to_hex(), t.opc, "{}: OPc from OP", t.name);
        for (how, m) in [("OPc", set_milenage(t)), ("OP", from_op)] {
            let rand: [u8; 16] = h(t.rand);
            let ctx = format!("{} (built from {how})", t.name);
            assert_eq!(
                m.f1(&rand, h(t.sqn), h(t.amf)),
                h::<8>(t.mac_a),
                "{ctx}: f1 MAC-A"
            );
            assert_eq!(
                m.f1_star(&rand, h(t.sqn), h(t.amf)),
                h::<8>(t.mac_s),
                "{ctx}: f1* MAC-S"
            );
            let (res, ck, ik, ak) = m.f2345(&rand);
            assert_eq!(res, h::<8>(t.res), "{ctx}: f2 RES");
            assert_eq!(ck.to_hex(), t.ck, "{ctx}: f3 CK");
            assert_eq!(ik.to_hex(), t.ik, "{ctx}: f4 IK");
            assert_eq!(ak, h::<6>(t.ak), "{ctx}: f5 AK");
            assert_eq!(m.f5_star(&rand), h::<6>(t.ak_star), "{ctx}: f5* AK*");
        }
    }
}

#[test]
fn derives_autn_and_sip_authenticate_for_set_1_to_3() {
    // cx-spec.md §7.2 "Derived values for IMS-AKA".
    let table = [
        (
            0,
            "55f328b43577b9b94a9ffac354dfafb3",
            "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=",
        ),
        (
            1,
            "39f96cd9800faf175df5b31807e258b0",
            "wA1gMQPc7lLER4EZSUIC6Dn5bNmAD68XXfWzGAfiWLA=",
        ),
        (
            2,
            "ae4a3a9b4c97725c9cabc3e99baf7281",
            "n3yNAhrM9NshPM/wx/caaq5KOptMl3JcnKvD6ZuvcoE=",
        ),
    ];
    for (i, autn, nonce) in table {
        let t = &SETS[i];
        let v = generate_vector(
            &set_milenage(t),
            h(t.rand),
            sqn_from_bytes(h(t.sqn)),
            h(t.amf),
        );
        assert_eq!(hex::encode(v.autn), autn, "{}: AUTN", t.name);
        assert_eq!(v.rand, h::<16>(t.rand), "{}: RAND", t.name);
        assert_eq!(v.xres, h::<8>(t.res), "{}: XRES", t.name);
        assert_eq!(v.ck.to_hex(), t.ck, "{}: CK", t.name);
        assert_eq!(v.ik.to_hex(), t.ik, "{}: IK", t.name);
        let sa = v.sip_authenticate();
        assert_eq!(
            hex::encode(sa),
            format!("{}{}", t.rand, autn),
            "{}: SIP-Authenticate",
            t.name
        );
        assert_eq!(nonce_from_vector(&v), nonce, "{}: nonce", t.name);
    }
}

#[test]
fn resync_recovers_sqn_ms_from_worked_example() {
    // cx-spec.md §7.4, Test Set 1, SQN_MS = 000000000300.
    let t = &SETS[0];
    let m = set_milenage(t);
    let rand: [u8; 16] = h(t.rand);
    assert_eq!(
        m.f1_star(&rand, h("000000000300"), [0, 0]),
        h::<8>("05ccca338f704c7e")
    );
    let auts: [u8; 14] = h("451e8beca73b05ccca338f704c7e");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(auts),
        "RR6L7Kc7BczKM49wTH4="
    );
    let authz: [u8; 30] = h("23553cbe9637a89d218ae64dae47bf35451e8beca73b05ccca338f704c7e");
    let (r, a) = parse_resync_authorization(&authz).unwrap();
    assert_eq!((r, a), (rand, auts));
    assert_eq!(resync(&m, &r, &a), Ok(0x0000_0000_0300));
}

#[test]
fn resync_accepts_hostapd_set_20_vector() {
    // cx-spec.md §7.4 names this AUTS (4f2039392ddd|4bb4316ed4a14688 → SQN_MS 000000000001).
    // K, RAND and OPc are TS 35.208 Test Set 20 as listed in hostapd tests/test-milenage.c;
    // its AK* (4f2039392ddc) is checked as well.
    let m = Milenage::with_opc(
        &key("90dca4eda45b53cf0f12d7c9c3bc6a89"),
        &key("cb9cccc4b9258e6dca4760379fb82581"),
    );
    let rand: [u8; 16] = h("9fddc72092c6ad036b6e464789315b78");
    assert_eq!(m.f5_star(&rand), h::<6>("4f2039392ddc"));
    assert_eq!(resync(&m, &rand, &h("4f2039392ddd4bb4316ed4a14688")), Ok(1));
}

#[test]
fn resync_rejects_forged_auts() {
    let t = &SETS[0];
    let m = set_milenage(t);
    let rand: [u8; 16] = h(t.rand);
    let good: [u8; 14] = h("451e8beca73b05ccca338f704c7e");
    for i in 0..14 {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut forged = good;
            forged[i] ^= flip;
            assert_eq!(
                resync(&m, &rand, &forged),
                Err(AuthError::MacSMismatch),
                "octet {i} ^ {flip:#04x}"
            );
        }
    }
    // Right AUTS, wrong RAND (not the one of the rejected challenge).
    assert_eq!(
        resync(&m, &h(SETS[1].rand), &good),
        Err(AuthError::MacSMismatch)
    );
    // Right AUTS and RAND, wrong subscriber key.
    assert_eq!(
        resync(&set_milenage(&SETS[1]), &rand, &good),
        Err(AuthError::MacSMismatch)
    );
}

#[test]
fn parse_resync_authorization_rejects_other_lengths() {
    for len in [0usize, 8, 16, 29, 31, 32] {
        let err = parse_resync_authorization(&vec![0u8; len]).unwrap_err();
        assert_eq!(err, AuthError::ResyncAuthorizationLength { got: len });
        let msg = err.to_string();
        assert!(
            msg.contains("30 octets") && msg.contains(&format!("got {len}")),
            "{msg}"
        );
    }
}

#[test]
fn ue_accepts_network_autn_and_rejects_tampered_one() {
    for t in &SETS {
        let m = set_milenage(t);
        let sqn = sqn_from_bytes(h(t.sqn));
        let v = generate_vector(&m, h(t.rand), sqn, h(t.amf));
        let (got_sqn, res, ck, ik) = ue_check_autn(&m, &v.rand, &v.autn).unwrap();
        assert_eq!(got_sqn, sqn, "{}", t.name);
        assert_eq!(res, v.xres, "{}", t.name);
        assert!(ck == v.ck && ik == v.ik, "{}: CK/IK", t.name);
        for i in 0..16 {
            let mut bad = v.autn;
            bad[i] ^= 0x01;
            assert_eq!(
                ue_check_autn(&m, &v.rand, &bad).map(|r| r.0),
                Err(AuthError::MacAMismatch),
                "{}: AUTN octet {i}",
                t.name
            );
        }
        let mut other_rand = v.rand;
        other_rand[0] ^= 0x01;
        assert!(
            ue_check_autn(&m, &other_rand, &v.autn).is_err(),
            "{}: RAND",
            t.name
        );
    }
}

#[test]
fn ue_auts_roundtrips_through_resync() {
    let m = set_milenage(&SETS[0]);
    let rand: [u8; 16] = h(SETS[0].rand);
    assert_eq!(
        ue_make_auts(&m, &rand, 0x300),
        h::<14>("451e8beca73b05ccca338f704c7e")
    );
    for t in &SETS {
        let m = set_milenage(t);
        let rand: [u8; 16] = h(t.rand);
        for sqn_ms in [0u64, 1, 0x300, 0x1f, 0x1234_5678_9abc, SQN_MAX] {
            let auts = ue_make_auts(&m, &rand, sqn_ms);
            assert_eq!(
                resync(&m, &rand, &auts),
                Ok(sqn_ms),
                "{}: {sqn_ms:#x}",
                t.name
            );
        }
    }
}

#[test]
fn next_sqn_steps_seq_by_one_keeping_ind() {
    // (current, next)
    let table = [
        (0u64, 32u64),
        (0x300, 0x320),
        (0x31f, 0x33f),
        (0x1, 0x21),
        (SQN_MAX - 31, 0), // SEQ max, IND 0: wraps to 0
        (SQN_MAX, 31),     // SEQ max, IND 31: wraps, IND kept
        (SQN_MAX - 32 - 31, SQN_MAX - 31),
    ];
    for (cur, want) in table {
        let next = next_sqn(cur);
        assert_eq!(next, want, "next_sqn({cur:#x})");
        assert_eq!(ind(next), ind(cur), "IND kept for {cur:#x}");
        assert!(next <= SQN_MAX);
    }
    for cur in [0u64, 5, 0x300, 0xdead_beef] {
        assert_eq!(seq(next_sqn(cur)), seq(cur) + 1);
    }
}

#[test]
fn after_resync_is_ahead_of_sqn_ms() {
    // (SQN_MS, SQN after resync) — SEQ_MS + 1 at IND 0.
    let table = [
        (0u64, 0x20u64),
        (0x1, 0x20),
        (0x1f, 0x20),
        (0x20, 0x40),
        (0x300, 0x320),
        (0x31f, 0x320),
        (0x1234_5678_9abc, 0x1234_5678_9ac0),
    ];
    for (sqn_ms, want) in table {
        let s = after_resync(sqn_ms);
        assert_eq!(s, want, "after_resync({sqn_ms:#x})");
        assert_eq!(ind(s), 0);
        assert!(
            seq(s) > seq(sqn_ms),
            "USIM (Annex C.2) must accept {s:#x} after {sqn_ms:#x}"
        );
        assert!(s > sqn_ms);
        assert!(seq(next_sqn(s)) > seq(sqn_ms));
    }
    // End to end: a vector built at after_resync(SQN_MS) carries a SQN the UE sees as fresh.
    let m = set_milenage(&SETS[0]);
    let v = generate_vector(&m, h(SETS[0].rand), after_resync(0x300), [0x80, 0]);
    let (sqn, ..) = ue_check_autn(&m, &v.rand, &v.autn).unwrap();
    assert!(seq(sqn) > seq(0x300));
}

#[test]
fn sqn_bytes_roundtrip() {
    let table = [
        (0u64, [0u8; 6]),
        (0x300, [0, 0, 0, 0, 3, 0]),
        (0xff9b_b4d0_b607, [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]),
        (SQN_MAX, [0xff; 6]),
    ];
    for (n, b) in table {
        assert_eq!(sqn_to_bytes(n), b);
        assert_eq!(sqn_from_bytes(b), n);
    }
}

#[test]
fn digest_ha1_matches_rfc2617_mufasa() {
    assert_eq!(
        ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
        "939e7578ed9e3c518a452acee763bce9"
    );
}

#[test]
fn digest_response_matches_rfc2617_example() {
    // RFC 2617 §3.5.
    let got = response(
        "939e7578ed9e3c518a452acee763bce9",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "GET",
        "/dir/index.html",
        Some(("00000001", "0a4f113b", "auth")),
    );
    assert_eq!(got, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn ims_digest_ha1_matches_doc_example() {
    let realm = "ims.mnc001.mcc001.3gppnetwork.org";
    assert_eq!(
        ha1("alice@ims.mnc001.mcc001.3gppnetwork.org", realm, "secret"),
        "04655f19768b5a7e235826fd9ab1872e"
    );
}

#[test]
fn aka_digest_matches_rfc3310_worked_example() {
    // cx-spec.md §7.6, Test Set 1 XRES, nonce = base64(RAND ‖ AUTN) of set 1.
    let impi = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
    let realm = "ims.mnc001.mcc001.3gppnetwork.org";
    let uri = "sip:ims.mnc001.mcc001.3gppnetwork.org";
    let nonce = "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=";
    let xres: [u8; 8] = h(SETS[0].res);
    let ha1 = ha1_aka(impi, realm, &xres);
    assert_eq!(ha1, "da00069eb0de6587da7e09ef503c29db");
    // RES is raw octets, not its hex text.
    assert_ne!(ha1, ha1_aka(impi, realm, SETS[0].res.as_bytes()));
    let table = [
        (
            Some(("00000001", "0a4f113b", "auth")),
            "402ab8df9f3a4d63a9f47c2f90e02938",
        ),
        (None, "1125a3c2e293453f07e08957ff235efc"),
    ];
    for (qop, want) in table {
        assert_eq!(
            response(&ha1, nonce, "REGISTER", uri, qop),
            want,
            "qop {qop:?}"
        );
    }
}

#[test]
fn key_debug_never_prints_the_key() {
    let k = key(SETS[0].k);
    assert_eq!(format!("{k:?}"), "Key128(<redacted>)");
    assert_eq!(format!("{k:#?}"), "Key128(<redacted>)");
    let m = set_milenage(&SETS[0]);
    let v = generate_vector(&m, h(SETS[0].rand), 0x20, [0x80, 0]);
    let shown = format!("{v:?} {v:#?} {m:?} {:?}", m.opc());
    for secret in [SETS[0].k, SETS[0].opc, SETS[0].res, SETS[0].ck, SETS[0].ik] {
        assert!(!shown.contains(secret), "{shown} leaks {secret}");
    }
    assert!(shown.contains("<redacted>"));
    // RAND and AUTN are public and help debugging.
    assert!(shown.contains(SETS[0].rand));
}

#[test]
fn key_from_hex_error_names_field_and_length() {
    let err = Key128::from_hex("K", &"a".repeat(30)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "K must be 32 hex digits (16 octets), got 30"
    );
    let err = Key128::from_hex("OPc", &"a".repeat(34)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "OPc must be 32 hex digits (16 octets), got 34"
    );
    let err = Key128::from_hex("OP", "zz5b5ce8b199b49faa5f0a2ee238a6bc").unwrap_err();
    assert_eq!(
        err,
        AuthError::KeyHexDigit {
            field: "OP",
            position: 0
        }
    );
    let msg = err.to_string();
    assert!(msg.starts_with("OP:") && msg.contains("hex digit"), "{msg}");
    // Either case and surrounding whitespace are accepted; export is lower case.
    let k = Key128::from_hex("K", " 465B5CE8B199B49FAA5F0A2EE238A6BC\n").unwrap();
    assert_eq!(k.to_hex(), SETS[0].k);
    assert_eq!(k, key(SETS[0].k));
}

#[test]
fn key_from_hex_decodes_every_digit_of_either_case_as_the_hex_crate_does() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let octets: [u8; 16] = rng.gen();
        let lower = hex::encode(octets);
        let mixed: String = lower
            .chars()
            .map(|c| if rng.gen() { c.to_ascii_uppercase() } else { c })
            .collect();
        for text in [lower.clone(), lower.to_ascii_uppercase(), mixed] {
            let k = Key128::from_hex("K", &text).unwrap();
            assert_eq!(k.as_bytes(), &octets, "{text}");
        }
    }
    // 32 octets that are not 32 chars: still refused by its length in chars.
    let err = Key128::from_hex("K", &"é".repeat(16)).unwrap_err();
    assert_eq!(
        err,
        AuthError::KeyHexLength {
            field: "K",
            got: 16
        }
    );
    // A digit out of place among 32: refused, naming its position.
    let mut bad = SETS[0].k.to_owned();
    bad.replace_range(31..32, "g");
    let err = Key128::from_hex("K", &bad).unwrap_err();
    assert_eq!(
        err,
        AuthError::KeyHexDigit {
            field: "K",
            position: 31
        }
    );
}
