//! Test helpers shared by the store tests: the patent's example subscriber and numbered
//! variants of it with distinct identities.
#![allow(dead_code)]

pub mod pg;

use std::collections::BTreeMap;

use sichss::store::{
    AkaCredentials, AuthScheme, DigestCredentials, Password, SecretHex, Service, Subscriber,
};

/// IMSI of the patent's example subscriber.
pub const DEMO_IMSI: &str = "460011100612345";
/// MSISDN of the patent's example subscriber.
pub const DEMO_MSISDN: &str = "+8618612345678";
/// Home domain of the example.
pub const HOME: &str = "ims.mnc001.mcc460.3gppnetwork.org";

/// The IMPI of service `sic` of subscriber `imsi`: `<imsi>@ims.sic<sic>.mnc001.mcc460…`.
pub fn impi(imsi: &str, sic: &str) -> String {
    format!("{imsi}@ims.sic{sic}.mnc001.mcc460.3gppnetwork.org")
}

/// The two public identities of an MSISDN: the SIP URI in the home domain and the tel URI.
pub fn impus(msisdn: &str) -> Vec<String> {
    vec![format!("sip:{msisdn}@{HOME}"), format!("tel:{msisdn}")]
}

/// A service `sic` named `name` of subscriber `imsi` with the MSISDN's IMPUs.
pub fn service(imsi: &str, sic: &str, name: &str, msisdn: &str) -> Service {
    Service {
        name: name.to_owned(),
        impi: impi(imsi, sic),
        impus: impus(msisdn),
        profile: Default::default(),
        registrations: BTreeMap::new(),
        auth_pending: None,
    }
}

/// The patent's example subscriber with the given IMSI: MSISDN +8618612345678, K/OPc/AMF of
/// the example, digest password "sichss-demo", services "001" VoLTE and "002" RCS sharing
/// the IMPUs sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org and tel:+8618612345678.
pub fn demo_subscriber(imsi: &str) -> Subscriber {
    subscriber(imsi, DEMO_MSISDN)
}

/// The example subscriber with another IMSI and MSISDN (so its identities are its own).
pub fn subscriber(imsi: &str, msisdn: &str) -> Subscriber {
    let mut services = BTreeMap::new();
    services.insert(
        "001".to_owned(),
        service(imsi, "001", "VoLTE", msisdn).into(),
    );
    services.insert("002".to_owned(), service(imsi, "002", "RCS", msisdn).into());
    Subscriber {
        imsi: imsi.to_owned(),
        msisdns: vec![msisdn.to_owned()],
        home_domain: HOME.to_owned(),
        aka: Some(AkaCredentials {
            k: SecretHex("465b5ce8b199b49faa5f0a2ee238a6bc".to_owned()),
            opc: Some(SecretHex("cd63cb71954a9f4e48a5994e37a02baf".to_owned())),
            op: None,
            amf: "8000".to_owned(),
            sqn: 0,
        }),
        digest: Some(DigestCredentials {
            realm: HOME.to_owned(),
            password: Some(Password("sichss-demo".to_owned())),
            ha1: None,
        }),
        default_scheme: AuthScheme::DigestAkaV1Md5,
        barred: false,
        allowed_visited_networks: Vec::new(),
        services,
    }
}

/// Subscriber number `n` (< 10^7): IMSI 46001110nnnnnnn, MSISDN +86186nnnnnnnn.
pub fn numbered(n: u32) -> Subscriber {
    subscriber(&numbered_imsi(n), &format!("+86186{n:08}"))
}

/// IMSI of [`numbered`] subscriber `n`.
pub fn numbered_imsi(n: u32) -> String {
    format!("46001110{n:07}")
}

/// The SQN of a subscriber (AKA credentials present).
pub fn sqn(sub: &Subscriber) -> u64 {
    sub.aka.as_ref().map(|a| a.sqn).expect("aka credentials")
}

/// `subscribers × rounds` concurrent updates, each adding 32 to the SQN of numbered
/// subscriber `i % subscribers`, each awaited (so acknowledged) before this returns.
pub async fn bump_sqns<S: sichss::store::SubscriberStore>(
    store: &std::sync::Arc<S>,
    subscribers: u32,
    rounds: u32,
) {
    let tasks: Vec<_> = (0..subscribers * rounds)
        .map(|i| {
            let store = std::sync::Arc::clone(store);
            tokio::spawn(async move {
                store
                    .update(&numbered_imsi(i % subscribers), |s| {
                        s.aka.as_mut().unwrap().sqn += 32;
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Opens the sled database in `dir` directly (bypassing the store). sled releases its file
/// lock a moment after a store in this process is dropped (its background threads finish
/// first), so this retries "could not acquire lock" for up to 2 s, as `SledStore::open`
/// does for 0.5 s.
pub fn open_raw_sled(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening the sled database at {}: {e}", dir.display()),
        }
    }
}
