//! TLS settings from PEM files, with rustls and its ring crypto provider: the server side of
//! Diameter over TLS (RFC 6733 §13, "TLS/TCP": TLS from the first byte, conventionally on
//! port 5658) and of the provisioning API over HTTPS, and the client side for the
//! Diameter client ([`crate::client`]) and the admin CLI ([`crate::admin`]).
//!
//! - Certificates: a PEM chain (the server's or client's certificate first, then any
//!   intermediates) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
//! - Mutual TLS: with a client CA file, the server requires a client certificate issued
//!   by one of its CAs and refuses the handshake otherwise.
//! - TLS 1.2 and 1.3, rustls's safe defaults (no renegotiation, no compression).
//!
//! [`accept`] runs a server handshake under a timeout and logs why one fails;
//! [`certificate_subject`] renders a certificate's subject (`CN=…, O=…`) for the log.
//!
//! Must not depend on: the codec, the Cx layer, the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Default bound of a TLS handshake on the server side.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up; names the file and what it should hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        /// What the file is for (`TLS certificate (--tls-cert)`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("the {what} {}: {problem}", path.display())]
    Pem {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("{what}: {message}")]
    Config {
        /// Which setting.
        what: &'static str,
        /// rustls's reason.
        message: String,
    },
    /// Not a DNS name or IP address to check the server's certificate against.
    #[error("{name:?} is not a DNS name or IP address to verify the server certificate against")]
    ServerName {
        /// The name given.
        name: String,
    },
}

/// The crypto provider used everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every certificate of a PEM file (a chain: leaf first).
///
/// # Errors
/// [`TlsError::Read`], or [`TlsError::Pem`] when the file holds no certificate.
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            problem: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_path_buf(),
            problem: "holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
///
/// # Errors
/// [`TlsError::Read`], or [`TlsError::Pem`] when the file holds no private key.
pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        problem: format!(
            "holds no usable private key ({e}; expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
        ),
    })
}

/// Reads the CA certificates of a PEM file into a root store.
///
/// # Errors
/// Those of [`load_certs`], or [`TlsError::Pem`] when a certificate is not a usable CA.
pub fn load_roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(what, path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            problem: format!("a certificate is not usable as a CA: {e}"),
        })?;
    }
    Ok(roots)
}

/// A server configuration from a PEM chain and key; with `client_ca`, client certificates
/// issued by those CAs are required (mutual TLS). `alpn` lists the protocols offered
/// (`http/1.1` for the API, none for Diameter).
///
/// # Errors
/// A file cannot be read or parsed, or the key does not fit the certificate.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs("TLS certificate", cert)?;
    let key = load_key("TLS private key", key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            what: "TLS protocol versions",
            message: e.to_string(),
        })?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = load_roots("TLS client CA file", ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Config {
                    what: "TLS client CA file",
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config {
            what: "TLS certificate and key",
            message: format!("{e} (does the key belong to the first certificate of the chain?)"),
        })?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A client configuration trusting `roots`, presenting `identity` (chain and key) when
/// given, for mutual TLS.
///
/// # Errors
/// [`TlsError::Config`] when rustls refuses the key.
pub fn client_config_with_roots(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            what: "TLS protocol versions",
            message: e.to_string(),
        })?
        .with_root_certificates(roots);
    let cfg = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config {
                    what: "TLS client certificate and key",
                    message: e.to_string(),
                })?
        }
    };
    Ok(Arc::new(cfg))
}

/// A client configuration trusting the CAs of the PEM file `ca`, presenting the client
/// certificate chain and key of `identity` when given.
///
/// # Errors
/// A file cannot be read or parsed.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots("CA certificate file", ca)?;
    let identity = match identity {
        None => None,
        Some((cert, key)) => Some((
            load_certs("TLS client certificate", cert)?,
            load_key("TLS client key", key)?,
        )),
    };
    client_config_with_roots(roots, identity)
}

/// A server name (DNS name or IP address) to verify a server certificate against.
///
/// # Errors
/// [`TlsError::ServerName`].
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName {
        name: name.to_owned(),
    })
}

/// Runs the server side of a TLS handshake on `tcp`, bounded by `timeout`. A failure or
/// a timeout is logged (with `service`, e.g. `diameter`, and the peer address) and gives
/// `None`: the connection is then dropped. With mutual TLS, the verified client
/// certificate's subject is logged.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    service: &'static str,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            let (_, conn) = tls.get_ref();
            let version = conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            match conn.peer_certificates().and_then(|c| c.first()) {
                Some(leaf) => {
                    let subject =
                        certificate_subject(leaf).unwrap_or_else(|| "<unreadable>".into());
                    tracing::info!(service, peer_addr = %peer, %version, client_subject = %subject,
                        "TLS handshake done; client certificate verified");
                }
                None => tracing::debug!(service, peer_addr = %peer, %version, "TLS handshake done"),
            }
            Some(tls)
        }
        Ok(Err(e)) => {
            tracing::warn!(service, peer_addr = %peer, error = %e, "TLS handshake failed; connection closed");
            None
        }
        Err(_) => {
            tracing::warn!(service, peer_addr = %peer, timeout_ms = timeout.as_millis() as u64,
                "TLS handshake timed out; connection closed");
            None
        }
    }
}

/// The subject of a DER X.509 certificate (RFC 5280 §4.1.2.6) as `CN=…, O=…` (the
/// common attribute types by name, others by OID), or `None` when it cannot be read.
/// Non-printable characters are replaced, so the result is safe to log.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    let (tag, cert, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = der_tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der_tlv(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = der_tlv(tbs)?.2;
    }
    let (tag, mut name, _) = der_tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let mut parts = Vec::new();
    while !name.is_empty() {
        let (tag, mut rdn, rest) = der_tlv(name)?;
        name = rest;
        if tag != 0x31 {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, atv, rest) = der_tlv(rdn)?;
            rdn = rest;
            if tag != 0x30 {
                return None;
            }
            let (tag, oid, rest) = der_tlv(atv)?;
            if tag != 0x06 {
                return None;
            }
            let (vtag, value, _) = der_tlv(rest)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN".to_owned(),
                [0x55, 0x04, 0x06] => "C".to_owned(),
                [0x55, 0x04, 0x07] => "L".to_owned(),
                [0x55, 0x04, 0x08] => "ST".to_owned(),
                [0x55, 0x04, 0x0a] => "O".to_owned(),
                [0x55, 0x04, 0x0b] => "OU".to_owned(),
                other => oid_string(other),
            };
            let text = match vtag {
                // UTF8String, PrintableString, T61String, IA5String.
                0x0c | 0x13 | 0x14 | 0x16 => String::from_utf8_lossy(value)
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
                _ => format!("#{}", hex::encode(value)),
            };
            parts.push(format!("{key}={text}"));
        }
    }
    Some(parts.join(", "))
}

/// One DER TLV: (tag, contents, rest). Definite lengths up to 4 octets; `None` when
/// truncated.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Dotted form of a DER OBJECT IDENTIFIER's contents.
fn oid_string(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_tlv_refuses_truncated_input() {
        assert_eq!(der_tlv(&[0x30, 0x02, 0x01]), None);
        assert_eq!(der_tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(der_tlv(&[0x30]), None);
        assert_eq!(
            der_tlv(&[0x04, 0x01, 0xaa, 0x00]),
            Some((0x04, &[0xaa][..], &[0x00][..]))
        );
        assert_eq!(certificate_subject(&[0x30, 0x00]), None);
        assert_eq!(certificate_subject(b"not a certificate"), None);
    }

    #[test]
    fn oid_arcs() {
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
    }
}
