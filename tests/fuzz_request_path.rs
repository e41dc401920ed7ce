//! The `request_path` fuzz target under plain `cargo test`: every seed of
//! `fuzz/corpus/request_path/` and every input under `fuzz/regressions/request_path/` goes
//! through the same harness (`fuzz/request_path.rs`) and must keep its properties. The
//! seeds are the Cx requests built here; `SICHSS_WRITE_CORPUS=1 cargo test --test
//! fuzz_request_path -- --ignored` writes them again.

#[path = "../fuzz/request_path.rs"]
mod request_path;

use std::path::{Path, PathBuf};

use request_path::{Reached, RequestPath};
use sichss::auth::{self, Key128, Milenage};
use sichss::codec::{codes, ApplicationId, Avp, CommandCode, Message};
use sichss::demo;
use sichss::peer::base::vendor_specific_application_id;

const SCSCF: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";
const ICSCF: &str = "icscf.ims.mnc001.mcc460.3gppnetwork.org";
const SERVER_NAME: &str = "sip:scscf.ims.mnc001.mcc460.3gppnetwork.org:6060";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn cx(cmd: CommandCode, from: &str, n: u32) -> Message {
    Message::request(cmd, ApplicationId::CX, true, 0x1000 + n, 0x2000 + n)
        .with(Avp::utf8(codes::SESSION_ID, format!("{from};seed;{n}")))
        .with(vendor_specific_application_id(16_777_216))
        .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
        .with(Avp::identity(codes::ORIGIN_HOST, from))
        .with(Avp::identity(codes::ORIGIN_REALM, demo::HOME_DOMAIN))
        .with(Avp::identity(codes::DESTINATION_REALM, demo::HOME_DOMAIN))
}

fn sip_a() -> String {
    format!("sip:{}@{}", demo::MSISDN_A, demo::HOME_DOMAIN)
}

fn uar(n: u32, impi: &str, impu: &str, uat: Option<i32>) -> Message {
    let mut m = cx(CommandCode::USER_AUTHORIZATION, ICSCF, n)
        .with(Avp::utf8(codes::USER_NAME, impi))
        .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
        .with(Avp::octets(
            codes::VISITED_NETWORK_IDENTIFIER,
            demo::HOME_DOMAIN.as_bytes().to_vec(),
        ));
    if let Some(t) = uat {
        m.push(Avp::enumerated(codes::USER_AUTHORIZATION_TYPE, t));
    }
    m
}

fn mar(n: u32, impi: &str, impu: &str, scheme: &str, items: u32, auts: Option<Vec<u8>>) -> Message {
    let mut item = vec![Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, scheme)];
    if let Some(a) = auts {
        item.push(Avp::octets(codes::SIP_AUTHORIZATION, a));
    }
    cx(CommandCode::MULTIMEDIA_AUTH, SCSCF, n)
        .with(Avp::utf8(codes::USER_NAME, impi))
        .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
        .with(Avp::u32(codes::SIP_NUMBER_AUTH_ITEMS, items))
        .with(Avp::grouped(codes::SIP_AUTH_DATA_ITEM, item))
        .with(Avp::utf8(codes::SERVER_NAME, SERVER_NAME))
}

fn sar(n: u32, impi: Option<&str>, impus: &[&str], sat: i32, udaa: i32) -> Message {
    let mut m = cx(CommandCode::SERVER_ASSIGNMENT, SCSCF, n);
    for i in impus {
        m.push(Avp::utf8(codes::PUBLIC_IDENTITY, *i));
    }
    m.push(Avp::utf8(codes::SERVER_NAME, SERVER_NAME));
    if let Some(i) = impi {
        m.push(Avp::utf8(codes::USER_NAME, i));
    }
    m.push(Avp::enumerated(codes::SERVER_ASSIGNMENT_TYPE, sat));
    m.push(Avp::enumerated(codes::USER_DATA_ALREADY_AVAILABLE, udaa));
    m
}

fn lir(n: u32, impu: &str) -> Message {
    cx(CommandCode::LOCATION_INFO, ICSCF, n).with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
}

/// The seed corpus: each Cx command in its main variants, for the demo subscribers, plus
/// a few requests the checks before the application refuse.
fn seeds() -> Vec<(&'static str, Message)> {
    let volte = demo::impi_a("001");
    let rcs = demo::impi_a("002");
    let b = demo::impi_b();
    let tel_a = format!("tel:{}", demo::MSISDN_A);
    let sip_b = format!("sip:{}@{}", demo::MSISDN_B, demo::HOME_DOMAIN);
    let mut other_realm = lir(40, &sip_a());
    other_realm.avps.retain(|a| !a.is(codes::DESTINATION_REALM));
    other_realm.push(Avp::identity(codes::DESTINATION_REALM, "elsewhere.example"));
    let mut unknown_app = lir(41, &sip_a());
    unknown_app.header.application = ApplicationId(16_777_217);
    // RAND ‖ AUTS from the demo USIM, reporting SQN_MS far ahead (a valid resynchronisation).
    let usim = Milenage::with_opc(
        &Key128::from_hex("K", demo::K).unwrap(),
        &Key128::from_hex("OPc", demo::OPC).unwrap(),
    );
    let rand = [0x42u8; 16];
    let mut resync = rand.to_vec();
    resync.extend_from_slice(&auth::ue_make_auts(&usim, &rand, 0x0000_0100_0000));
    let mut unknown_mandatory = lir(42, &sip_a());
    unknown_mandatory.push(Avp::new(
        sichss::codec::AvpKey::tgpp(999_999, true),
        sichss::codec::Value::OctetString(vec![1, 2, 3].into()),
    ));
    vec![
        ("uar-registration", uar(1, &volte, &sip_a(), None)),
        ("uar-deregistration", uar(2, &volte, &sip_a(), Some(1))),
        ("uar-capabilities", uar(3, &rcs, &tel_a, Some(2))),
        (
            "uar-unknown-user",
            uar(4, "nobody@nowhere", "sip:nobody@nowhere", None),
        ),
        (
            "mar-aka-1",
            mar(5, &volte, &sip_a(), "Digest-AKAv1-MD5", 1, None),
        ),
        (
            "mar-aka-3",
            mar(6, &rcs, &tel_a, "Digest-AKAv1-MD5", 3, None),
        ),
        (
            "mar-aka-resync",
            mar(7, &volte, &sip_a(), "Digest-AKAv1-MD5", 1, Some(resync)),
        ),
        ("mar-sip-digest", mar(8, &b, &sip_b, "SIP Digest", 1, None)),
        ("mar-digest-md5", mar(9, &b, &sip_b, "Digest-MD5", 1, None)),
        (
            "mar-unknown-scheme",
            mar(10, &volte, &sip_a(), "Unknown", 1, None),
        ),
        ("sar-registration", sar(11, Some(&volte), &[&sip_a()], 1, 0)),
        (
            "sar-re-registration",
            sar(12, Some(&volte), &[&sip_a()], 2, 1),
        ),
        ("lir-sip", lir(20, &sip_a())),
        ("lir-tel", lir(21, &tel_a)),
        ("sar-unregistered-user", sar(13, None, &[&sip_b], 3, 0)),
        (
            "sar-timeout-deregistration",
            sar(14, Some(&volte), &[&sip_a()], 4, 0),
        ),
        (
            "sar-user-deregistration",
            sar(15, Some(&rcs), &[&sip_a(), &tel_a], 5, 0),
        ),
        (
            "sar-dereg-store-name",
            sar(16, Some(&volte), &[&sip_a()], 7, 0),
        ),
        ("sar-admin-deregistration", sar(17, None, &[&tel_a], 8, 0)),
        ("sar-auth-failure", sar(18, Some(&volte), &[], 9, 0)),
        ("sar-no-assignment", sar(19, Some(&b), &[&sip_b], 0, 0)),
        ("lir-unknown", lir(22, "tel:+10000000000")),
        ("lir-destination-realm-other", other_realm),
        ("lir-unknown-application", unknown_app),
        ("lir-unknown-mandatory-avp", unknown_mandatory),
    ]
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().map_or(true, |e| e != "md"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn seeds_reach_the_cx_application() {
    let hss = RequestPath::new();
    let mut served = 0;
    for (name, m) in seeds() {
        let r = hss.run(&m.encode());
        println!("{name}: {r:?}");
        if matches!(r, Reached::Application(2001)) {
            served += 1;
        }
    }
    // The harness goes deep: most seeds are served with success by the Cx application.
    assert!(served >= 10, "{served} seeds answered 2001");
}

#[test]
fn corpus_and_regressions_keep_their_properties() {
    let hss = RequestPath::new();
    let corpus = files(&root().join("corpus/request_path"));
    assert!(!corpus.is_empty(), "the seed corpus is committed");
    assert!(corpus.len() <= 50, "the committed corpus stays small");
    for f in corpus
        .iter()
        .chain(files(&root().join("regressions/request_path")).iter())
    {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hss.run(&data)));
        assert!(r.is_ok(), "{} fails the request path", f.display());
    }
}

#[test]
#[ignore = "writes fuzz/corpus/request_path; run with SICHSS_WRITE_CORPUS=1"]
fn write_the_seed_corpus() {
    if std::env::var_os("SICHSS_WRITE_CORPUS").is_none() {
        return;
    }
    let dir = root().join("corpus/request_path");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, m) in seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), m.encode()).unwrap();
    }
}
