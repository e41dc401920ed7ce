//! The demo subscribers that `sichss serve --demo` provisions, and that tests use:
//! subscriber A is the patent's example (VoLTE 001 and RCS 002 sharing their IMPUs),
//! subscriber B a legacy subscriber with a plain TS 23.003 IMPI.

use std::collections::BTreeMap;

use crate::identity::{derive_impi, HomeNetwork, Imsi, Sic};
use crate::store::{
    AkaCredentials, AuthScheme, DigestCredentials, Password, SecretHex, Service, ServiceProfile,
    Subscriber, PLAIN_SIC,
};

/// Home domain of the demo network (MCC 460, MNC 01).
pub const HOME_DOMAIN: &str = "ims.mnc001.mcc460.3gppnetwork.org";
/// IMSI of subscriber A (the patent's example).
pub const IMSI_A: &str = "460011100612345";
/// MSISDN of subscriber A.
pub const MSISDN_A: &str = "+8618612345678";
/// IMSI of the legacy subscriber B.
pub const IMSI_B: &str = "460011100600001";
/// MSISDN of subscriber B.
pub const MSISDN_B: &str = "+8618600000001";
/// K of both demo subscribers (TS 35.208 test set 1).
pub const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
/// OPc of both demo subscribers.
pub const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
/// AMF of both demo subscribers.
pub const AMF: &str = "8000";
/// SIP Digest password of both demo subscribers.
pub const PASSWORD: &str = "sichss-demo";

fn impi(imsi: &str, sic: Option<&str>) -> String {
    let imsi = Imsi::parse(imsi).expect("demo IMSI is valid");
    let sic = sic.map(|s| Sic::parse(s).expect("demo SIC is valid"));
    derive_impi(&imsi, &HomeNetwork::MncLen(2), sic.as_ref())
        .expect("demo IMPI derives")
        .as_str()
        .to_string()
}

fn base(imsi: &str, msisdn: &str) -> Subscriber {
    Subscriber {
        imsi: imsi.to_string(),
        msisdns: vec![msisdn.to_string()],
        home_domain: HOME_DOMAIN.to_string(),
        aka: Some(AkaCredentials {
            k: SecretHex(K.into()),
            opc: Some(SecretHex(OPC.into())),
            op: None,
            amf: AMF.into(),
            sqn: 0,
        }),
        digest: Some(DigestCredentials {
            realm: HOME_DOMAIN.into(),
            password: Some(Password(PASSWORD.into())),
            ha1: None,
        }),
        default_scheme: AuthScheme::DigestAkaV1Md5,
        barred: false,
        allowed_visited_networks: Vec::new(),
        services: BTreeMap::new(),
    }
}

/// The public identities of an MSISDN: `sip:<msisdn>@<home>` and `tel:<msisdn>`.
pub fn impus(msisdn: &str) -> Vec<String> {
    vec![
        format!("sip:{msisdn}@{HOME_DOMAIN}"),
        format!("tel:{msisdn}"),
    ]
}

/// A service entry.
pub fn service(name: &str, impi: String, impus: Vec<String>) -> Service {
    Service {
        name: name.to_string(),
        impi,
        impus,
        profile: ServiceProfile::default(),
        registrations: BTreeMap::new(),
        auth_pending: None,
    }
}

/// Subscriber A: IMSI 460011100612345, VoLTE (001) and RCS (002) sharing the IMPUs.
pub fn subscriber_a() -> Subscriber {
    let mut s = base(IMSI_A, MSISDN_A);
    s.services.insert(
        "001".into(),
        service("VoLTE", impi(IMSI_A, Some("001")), impus(MSISDN_A)).into(),
    );
    s.services.insert(
        "002".into(),
        service("RCS", impi(IMSI_A, Some("002")), impus(MSISDN_A)).into(),
    );
    s
}

/// Subscriber B: IMSI 460011100600001 with the plain IMPI.
pub fn subscriber_b() -> Subscriber {
    let mut s = base(IMSI_B, MSISDN_B);
    s.services.insert(
        PLAIN_SIC.into(),
        service("IMS", impi(IMSI_B, None), impus(MSISDN_B)).into(),
    );
    s
}

/// The IMPI of subscriber A's service `sic`.
pub fn impi_a(sic: &str) -> String {
    impi(IMSI_A, Some(sic))
}

/// The plain IMPI of subscriber B.
pub fn impi_b() -> String {
    impi(IMSI_B, None)
}
