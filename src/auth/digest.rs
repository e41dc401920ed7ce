//! HTTP Digest computations for SIP: RFC 2617 §3.2.2 (MD5, qop "auth" or none), the
//! TS 29.228 "SIP Digest" scheme's Digest-HA1, and Digest-AKAv1-MD5 (RFC 3310 §3.2–§3.3),
//! where the AKA RES is the password and the nonce is base64(RAND ‖ AUTN).
//!
//! All digests are returned as 32 lower-case hex characters.

use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::aka::AkaVector;

/// HA1 = MD5(username ":" realm ":" password) (RFC 2617 §3.2.2.2), the Digest-HA1 of the
/// TS 29.228 SIP Digest scheme, where username is the IMPI.
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    ha1_aka(username, realm, password.as_bytes())
}

/// HA1 for Digest-AKAv1-MD5: the password is RES as raw octets, not hex (RFC 3310 §3.3).
/// For the response that carries `auts` after a synchronisation failure, pass an empty RES.
pub fn ha1_aka(username: &str, realm: &str, res: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(res);
    hex::encode(h.finalize())
}

/// The request-digest of RFC 2617 §3.2.2.1 for qop "auth" or no qop.
///
/// `qop` is `Some((nc, cnonce, qop))`, giving
/// `MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)`, or `None` for the RFC 2069 form
/// `MD5(HA1 ":" nonce ":" HA2)`. HA2 is always `MD5(method ":" uri)`, so qop "auth-int"
/// (which hashes the body into HA2) is not supported.
pub fn response(
    ha1_hex: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = md5_hex(&[method, ":", uri]);
    match qop {
        Some((nc, cnonce, qop)) => md5_hex(&[
            ha1_hex, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", &ha2,
        ]),
        None => md5_hex(&[ha1_hex, ":", nonce, ":", &ha2]),
    }
}

/// The Digest-AKA nonce: base64 (standard alphabet, padded) of RAND ‖ AUTN (RFC 3310 §3.2).
pub fn nonce_from_vector(v: &AkaVector) -> String {
    base64::engine::general_purpose::STANDARD.encode(v.sip_authenticate())
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}
