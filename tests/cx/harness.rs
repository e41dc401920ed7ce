//! Builds Cx requests as Kamailio's I-CSCF and S-CSCF send them, runs them through the
//! Cx application, and reads the answers.

#![allow(dead_code)]

use std::sync::Arc;

use sichss::codec::{codes, decode_message, validate, Avp, Message};
use sichss::cx::requests::CscfRequests;
use sichss::cx::{CxApp, CxConfig};
use sichss::demo;
use sichss::dict::Dictionary;
use sichss::store::sled::SledStore;
use sichss::store::{RegState, Subscriber, SubscriberStore};

pub const SCSCF: &str = "sip:127.0.0.1:6060";
pub const SCSCF_HOST: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";
pub const ICSCF_HOST: &str = "icscf.ims.mnc001.mcc460.3gppnetwork.org";
pub const REALM: &str = demo::HOME_DOMAIN;

pub struct Hss {
    pub app: CxApp<SledStore>,
    pub dir: tempfile::TempDir,
}

/// A fresh HSS on sled in a temporary directory, with demo subscribers A and B.
pub async fn hss() -> Hss {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store.create(demo::subscriber_a()).await.unwrap();
    store.create(demo::subscriber_b()).await.unwrap();
    Hss {
        app: CxApp::new(Arc::new(store), CxConfig::default()),
        dir,
    }
}

impl Hss {
    /// Sends `req` through the codec and the Cx application; the answer comes back decoded
    /// and grammar-checked.
    pub async fn send(&self, req: Message) -> Answer {
        let dict = Dictionary::builtin();
        let req = decode_message(&req.encode(), dict).expect("request decodes");
        validate(&req, dict).expect("request is valid");
        let ans = self.app.handle(&req).await;
        let bytes = ans.encode();
        let ans = decode_message(&bytes, dict).expect("answer decodes");
        validate(&ans, dict).unwrap_or_else(|e| panic!("answer violates its grammar: {e}"));
        assert_eq!(ans.header.hop_by_hop, req.header.hop_by_hop);
        assert_eq!(ans.header.end_to_end, req.header.end_to_end);
        assert!(!ans.header.is_request());
        assert!(ans.header.is_proxiable());
        assert_eq!(ans.session_id(), req.session_id());
        Answer(ans)
    }

    pub async fn sub(&self, imsi: &str) -> Subscriber {
        self.app
            .store
            .get(imsi)
            .await
            .unwrap()
            .expect("subscriber exists")
    }

    /// State of the (service `sic`, `impu`) pair of subscriber A.
    pub async fn pair_a(&self, sic: &str, impu: &str) -> RegState {
        pair_state(&self.sub(demo::IMSI_A).await, sic, impu)
    }
}

pub fn pair_state(sub: &Subscriber, sic: &str, impu: &str) -> RegState {
    sub.services[sic]
        .registrations
        .get(impu)
        .map(|r| r.state)
        .unwrap_or_default()
}

pub struct Answer(pub Message);

impl Answer {
    /// The result: `("rc", n)` for Result-Code, `("exp", n)` for Experimental-Result.
    pub fn result(&self) -> (&'static str, u32) {
        if let Some(rc) = self.0.result_code() {
            assert!(
                self.0.experimental_result().is_none(),
                "both Result-Code and Experimental-Result"
            );
            ("rc", rc.0)
        } else {
            ("exp", self.0.experimental_result().expect("a result").0)
        }
    }

    pub fn server_name(&self) -> Option<&str> {
        self.0.str(codes::SERVER_NAME)
    }

    pub fn capabilities_server_name(&self) -> Option<&str> {
        self.0
            .find(codes::SERVER_CAPABILITIES)
            .and_then(|c| c.find(codes::SERVER_NAME))
            .and_then(Avp::as_str)
    }

    pub fn failed_avp_code(&self) -> Option<u32> {
        self.0
            .find(codes::FAILED_AVP)
            .and_then(|f| f.members().first())
            .map(|a| a.code)
    }

    pub fn user_data(&self) -> Option<String> {
        self.0
            .find(codes::USER_DATA)
            .and_then(Avp::as_bytes)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    pub fn items(&self) -> Vec<&Avp> {
        self.0.find_all(codes::SIP_AUTH_DATA_ITEM).collect()
    }
}

fn icscf() -> &'static CscfRequests {
    static B: std::sync::OnceLock<CscfRequests> = std::sync::OnceLock::new();
    B.get_or_init(|| CscfRequests::new(ICSCF_HOST, REALM))
}

fn scscf() -> &'static CscfRequests {
    static B: std::sync::OnceLock<CscfRequests> = std::sync::OnceLock::new();
    B.get_or_init(|| CscfRequests::new(SCSCF_HOST, REALM))
}

/// UAR as the I-CSCF sends it (User-Authorization-Type only when not REGISTRATION).
pub fn uar(impi: &str, impu: &str, uat: u32) -> Message {
    icscf().uar(impi, impu, uat)
}

/// MAR as the S-CSCF sends it.
pub fn mar(
    impi: &str,
    impu: &str,
    scheme: &str,
    n: u32,
    authorization: Option<Vec<u8>>,
) -> Message {
    scscf().mar(impi, impu, SCSCF, scheme, n, authorization)
}

/// SAR as the S-CSCF sends it.
pub fn sar(impi: Option<&str>, impus: &[&str], sat: i32, udaa: i32) -> Message {
    sar_from(SCSCF, impi, impus, sat, udaa)
}

/// SAR from a given S-CSCF Server-Name.
pub fn sar_from(server: &str, impi: Option<&str>, impus: &[&str], sat: i32, udaa: i32) -> Message {
    scscf().sar(impi, impus, server, sat, udaa)
}

/// LIR as the I-CSCF sends it (only Public-Identity).
pub fn lir(impu: &str) -> Message {
    icscf().lir(impu)
}

/// The shared SIP IMPU of subscriber A.
pub fn sip_a() -> String {
    format!("sip:{}@{}", demo::MSISDN_A, demo::HOME_DOMAIN)
}

/// The tel IMPU of subscriber A.
pub fn tel_a() -> String {
    format!("tel:{}", demo::MSISDN_A)
}

/// Registers one service of A the way Kamailio does: UAR, MAR, SAR with `sat`.
pub async fn register(h: &Hss, impi: &str, impu: &str, sat: i32) -> Answer {
    let a = h.send(uar(impi, impu, 0)).await;
    assert!(
        matches!(a.result(), ("exp", 2001) | ("exp", 2002)),
        "UAA {:?}",
        a.result()
    );
    let a = h.send(mar(impi, impu, "Digest-AKAv1-MD5", 1, None)).await;
    assert_eq!(a.result(), ("rc", 2001));
    h.send(sar(Some(impi), &[impu], sat, 0)).await
}
