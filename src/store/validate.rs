//! Validation of a [`Subscriber`] record before a store accepts it (create, put, import).
//!
//! Every problem is reported as [`StoreError::Invalid`] with the path of the field at fault
//! (`imsi`, `aka.opc`, `services.002.impus[1]`, `services.001.profile.barred_impus[0]`) and a
//! problem text that says what is wrong and what form is expected. The first problem found
//! is reported, checking fields in declaration order.
//!
//! Must not depend on: any backend, tokio, the codec or the Cx layer.

use std::collections::HashMap;

use super::model::{AuthScheme, Service, Subscriber};
use super::StoreError;
use crate::identity::Impi;

/// Largest SQN plus one: SQN is a 48-bit counter (TS 33.102 §6.3.2).
const SQN_LIMIT: u64 = 1 << 48;

impl Subscriber {
    /// Checks the record's invariants: IMSI of 6–15 digits; a home domain; AKA K of 32 hex
    /// digits, exactly one of OPc/OP (32 hex; these and HA1 may instead be `enc:v1:` values
    /// of [`super::secrets`]), AMF of 4 hex digits, SQN below 2^48; Digest
    /// with a password or an HA1 of 32 hex digits; at least one service, each with an IMPI
    /// containing '@' (unique across services) and at least one `sip:`/`tel:` IMPU;
    /// barred IMPUs among the service's IMPUs; credentials for `default_scheme`.
    ///
    /// Errors are [`StoreError::Invalid`] naming the field path and the expected form.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_imsi(&self.imsi)?;
        if self.home_domain.trim().is_empty() {
            return invalid(
                "home_domain",
                "must not be empty (expected a domain such as ims.mnc001.mcc460.3gppnetwork.org)",
            );
        }
        if let Some(aka) = &self.aka {
            check_secret("aka.k", &aka.k.0, 32, "16 octets")?;
            match (&aka.opc, &aka.op) {
                (Some(opc), None) => check_secret("aka.opc", &opc.0, 32, "16 octets")?,
                (None, Some(op)) => check_secret("aka.op", &op.0, 32, "16 octets")?,
                (Some(_), Some(_)) => {
                    return invalid(
                        "aka.op",
                        "give exactly one of aka.opc and aka.op, not both (OPc is derived from OP)",
                    )
                }
                (None, None) => {
                    return invalid(
                        "aka.opc",
                        "missing: give exactly one of aka.opc or aka.op (32 hex digits)",
                    )
                }
            }
            check_hex("aka.amf", &aka.amf, 4, "2 octets, e.g. 8000")?;
            if aka.sqn >= SQN_LIMIT {
                return invalid(
                    "aka.sqn",
                    format!("must be below 2^48 (a 48-bit counter), got {}", aka.sqn),
                );
            }
        }
        if let Some(digest) = &self.digest {
            match (&digest.password, &digest.ha1) {
                (None, None) => {
                    return invalid(
                        "digest",
                        "needs a password or an ha1 (32 hex digits, MD5 of user:realm:password)",
                    )
                }
                (_, Some(ha1)) => check_secret("digest.ha1", &ha1.0, 32, "an MD5 digest")?,
                (Some(_), None) => {}
            }
        }
        match self.default_scheme {
            AuthScheme::DigestAkaV1Md5 if self.aka.is_none() => {
                return invalid(
                    "aka",
                    "missing: default_scheme is Digest-AKAv1-MD5, which needs aka credentials",
                )
            }
            AuthScheme::SipDigest if self.digest.is_none() => {
                return invalid(
                    "digest",
                    "missing: default_scheme is SIP Digest, which needs digest credentials",
                )
            }
            _ => {}
        }
        if self.services.is_empty() {
            return invalid(
                "services",
                "must hold at least one service (SIC → {name, impi, impus})",
            );
        }
        let mut impi_owner: HashMap<&str, &str> = HashMap::new();
        for (sic, service) in &self.services {
            let base = service_path(sic);
            check_service(&base, service)?;
            check_sic_impi_imsi(&base, service, &self.imsi)?;
            if let Some(first) = impi_owner.insert(service.impi.as_str(), sic.as_str()) {
                return invalid(
                    format!("{base}.impi"),
                    format!(
                        "{} is already the impi of {}; each service needs its own private identity",
                        service.impi,
                        service_path(first)
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The part of [`Subscriber::validate`] an update that changes identities must pass
/// (updates are otherwise not validated: the Cx procedures change state, not identities):
/// every SIC IMPI carries the subscriber's own IMSI.
///
/// # Errors
/// [`StoreError::Invalid`] naming `services.<sic>.impi`.
pub(crate) fn check_sic_impis(sub: &Subscriber) -> Result<(), StoreError> {
    for (sic, service) in &sub.services {
        check_sic_impi_imsi(&service_path(sic), service, &sub.imsi)?;
    }
    Ok(())
}

/// A SIC IMPI carries its subscriber's IMSI (the patent's method: the HSS strips the SIC
/// and finds the subscriber by that IMSI), so it can belong to no other subscriber; the
/// sled store relies on this and finds such an IMPI by its IMSI instead of an index entry.
fn check_sic_impi_imsi(base: &str, service: &Service, imsi: &str) -> Result<(), StoreError> {
    // Any other IMPI is checked by its owner's uniqueness in the store.
    let Some(impi) = Impi::parse_sic(&service.impi) else {
        return Ok(());
    };
    if let Some(carried) = impi.imsi() {
        if carried.as_str() != imsi {
            return invalid(
                format!("{base}.impi"),
                format!(
                    "{} carries IMSI {carried}, but this subscriber's IMSI is {imsi}; a SIC \
                     IMPI is derived from its own subscriber's IMSI (e.g. {imsi}@{})",
                    service.impi,
                    impi.domain(),
                ),
            );
        }
    }
    Ok(())
}

/// `services.<sic>`, with the plain (SIC-less) service shown as `services.""`.
fn service_path(sic: &str) -> String {
    if sic.is_empty() {
        "services.\"\"".to_owned()
    } else {
        format!("services.{sic}")
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Result<(), StoreError> {
    Err(StoreError::Invalid {
        field: field.into(),
        problem: problem.into(),
    })
}

fn check_imsi(imsi: &str) -> Result<(), StoreError> {
    let n = imsi.chars().count();
    if !(6..=15).contains(&n) {
        return invalid(
            "imsi",
            format!("must be 6 to 15 decimal digits (MCC MNC MSIN), got {n} characters"),
        );
    }
    if let Some(c) = imsi.chars().find(|c| !c.is_ascii_digit()) {
        return invalid(
            "imsi",
            format!("must be 6 to 15 decimal digits (MCC MNC MSIN), found {c:?}"),
        );
    }
    Ok(())
}

/// A secret field: hex as [`check_hex`], or an encrypted value whose shape is checked
/// ([`super::secrets`]; whoever holds the key checks what it decrypts to).
fn check_secret(field: &str, value: &str, digits: usize, what: &str) -> Result<(), StoreError> {
    if super::secrets::is_encrypted(value) {
        return super::secrets::check_shape(value).or_else(|p| invalid(field, p));
    }
    check_hex(field, value, digits, what)
}

fn check_hex(field: &str, value: &str, digits: usize, what: &str) -> Result<(), StoreError> {
    let n = value.chars().count();
    if n != digits {
        return invalid(
            field,
            format!("must be {digits} hex digits ({what}), got {n} characters"),
        );
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return invalid(
            field,
            format!("must be {digits} hex digits ({what}), found non-hex character {c:?}"),
        );
    }
    Ok(())
}

fn check_service(base: &str, service: &Service) -> Result<(), StoreError> {
    if service.impi.is_empty() {
        return invalid(
            format!("{base}.impi"),
            "must not be empty (expected user@domain, e.g. 460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org)",
        );
    }
    if !service.impi.contains('@') {
        return invalid(
            format!("{base}.impi"),
            format!(
                "must have the form user@domain (NAI, TS 23.003 §13.3), got {:?}",
                service.impi
            ),
        );
    }
    if service.impus.is_empty() {
        return invalid(
            format!("{base}.impus"),
            "must list at least one public identity (sip: or tel: URI)",
        );
    }
    for (i, impu) in service.impus.iter().enumerate() {
        if !(impu.starts_with("sip:") || impu.starts_with("tel:")) || impu.len() <= 4 {
            return invalid(
                format!("{base}.impus[{i}]"),
                format!("must be a sip: or tel: URI, got {impu:?}"),
            );
        }
        if service.impus[..i].contains(impu) {
            return invalid(
                format!("{base}.impus[{i}]"),
                format!("{impu} is listed twice"),
            );
        }
    }
    for (i, barred) in service.profile.barred_impus.iter().enumerate() {
        if !service.impus.contains(barred) {
            return invalid(
                format!("{base}.profile.barred_impus[{i}]"),
                format!("{barred} is not one of {base}.impus; only the service's own IMPUs can be barred"),
            );
        }
    }
    Ok(())
}
