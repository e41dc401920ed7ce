//! A throwaway PKI for the TLS tests, generated with rcgen: a CA, a server certificate for
//! `localhost` and 127.0.0.1, a client certificate for the S-CSCF, and a second CA with a
//! client certificate of its own (one the server must refuse).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sichss::client::ClientTls;

/// Subject of the good client certificate, as the server logs it.
pub const CLIENT_SUBJECT: &str = "CN=scscf.ims.mnc001.mcc460.3gppnetwork.org, O=sichss tests";

/// PEM files in a directory.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn leaf(
    ca: &Ca,
    sans: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "sichss tests");
    p.extended_key_usages = vec![usage];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert, key)
}

impl Pki {
    /// Generates everything into `dir`.
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca1 = ca("sichss test CA");
        let ca2 = ca("another CA");
        let (sc, sk) = leaf(
            &ca1,
            &["localhost", "127.0.0.1"],
            "hss.ims.mnc001.mcc460.3gppnetwork.org",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (cc, ck) = leaf(
            &ca1,
            &["scscf.ims.mnc001.mcc460.3gppnetwork.org"],
            "scscf.ims.mnc001.mcc460.3gppnetwork.org",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (oc, ok) = leaf(
            &ca2,
            &["scscf.ims.mnc001.mcc460.3gppnetwork.org"],
            "scscf.ims.mnc001.mcc460.3gppnetwork.org",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            ca: write("ca.pem", ca1.cert.pem()),
            // The chain file: leaf, then the CA (servers commonly send both).
            server_cert: write("server.pem", format!("{}{}", sc.pem(), ca1.cert.pem())),
            server_key: write("server.key", sk.serialize_pem()),
            client_cert: write("client.pem", cc.pem()),
            client_key: write("client.key", ck.serialize_pem()),
            other_ca: write("other-ca.pem", ca2.cert.pem()),
            other_client_cert: write("other-client.pem", oc.pem()),
            other_client_key: write("other-client.key", ok.serialize_pem()),
        }
    }

    /// A rustls client configuration trusting `ca`, with an optional client identity.
    pub fn client_config(
        &self,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Arc<rustls::ClientConfig> {
        sichss::tls::client_config(ca, identity).unwrap()
    }

    /// Diameter client TLS settings trusting `ca`, checking the name `server_name`.
    pub fn diameter(
        &self,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        server_name: &str,
    ) -> ClientTls {
        ClientTls::new(self.client_config(ca, identity), server_name).unwrap()
    }

    /// The server flags of Diameter over TLS on an ephemeral port.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            self.server_cert.display().to_string(),
            "--tls-key".into(),
            self.server_key.display().to_string(),
        ]
    }

    /// The server flags of HTTPS for the API.
    pub fn api_args(&self) -> Vec<String> {
        vec![
            "--admin-tls-cert".into(),
            self.server_cert.display().to_string(),
            "--admin-tls-key".into(),
            self.server_key.display().to_string(),
        ]
    }
}
