//! From the identities of a request to the subscriber and the one service they name: the
//! patent's method (CN103701828A) on top of TS 29.228 §6's "IMPI unknown → 5001" and
//! "IMPU not associated → 5002" steps.
//!
//! For a SIC-tagged IMPI the SIC is stripped to find the subscriber (by IMSI), the
//! services the subscriber has subscribed to are listed, and the request is served only
//! if its SIC is one of them (else 5001, logged as an unsubscribed SIC). A plain IMPI or a
//! user@domain IMPI is found through the store's IMPI index, as in standard IMS.

use std::sync::Arc;

use crate::identity::{Impi, ImpiKind, Impu};
use crate::store::{Service, Subscriber, SubscriberStore};

use super::CxError;

/// The subscriber and the service a request's IMPI names.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The subscriber.
    pub subscriber: Arc<Subscriber>,
    /// The service's key (SIC, or `PLAIN_SIC`).
    pub sic: String,
    /// The normalised IMPI.
    pub impi: String,
}

impl Resolved {
    /// The service the IMPI names.
    pub fn service(&self) -> &Service {
        // `by_impi` only builds a Resolved whose `sic` is a key of `services`.
        &self.subscriber.services[&self.sic]
    }
}

/// Normalises an IMPI, or says why it is not one (answered as 5001 USER_UNKNOWN).
pub fn normalize_impi(raw: &str) -> Result<Impi, CxError> {
    Impi::parse(raw).map_err(|e| CxError::UserUnknown {
        identity: raw.to_string(),
        why: format!("not a valid private identity: {e}"),
    })
}

/// Normalises an IMPU to its lookup key, or says why it is not one (5001).
pub fn normalize_impu(raw: &str) -> Result<String, CxError> {
    Impu::normalize(raw).map_err(|e| CxError::UserUnknown {
        identity: raw.to_string(),
        why: format!("not a valid public identity: {e}"),
    })
}

/// Finds the subscriber and service of an IMPI.
///
/// # Errors
/// `UserUnknown` (no such IMPI or subscriber), `UnsubscribedSic` (the subscriber exists
/// but has not subscribed to the IMPI's SIC), `Store`.
pub async fn by_impi<S: SubscriberStore>(store: &S, raw: &str) -> Result<Resolved, CxError> {
    let (key, kind) = normalize_impi(raw)?.into_parts();
    if let ImpiKind::Sic { imsi, sic } = &kind {
        // Strip the SIC: the IMSI names the subscriber.
        if let Some(sub) = store.get_shared(imsi.as_str()).await? {
            if let Some(svc) = sub.services.get(sic.as_str()) {
                // Usually spelt as stored: compared exactly first, and then not copied.
                let exact = svc.impi == key;
                if exact || svc.impi.eq_ignore_ascii_case(&key) {
                    let impi = if exact { key } else { svc.impi.clone() };
                    return Ok(Resolved {
                        sic: sic.as_str().to_string(),
                        impi,
                        subscriber: sub,
                    });
                }
            }
            // A provisioned (non-derived) IMPI may still be listed under another key.
            if let Some((k, s)) = sub.service_by_impi(&key) {
                return Ok(Resolved {
                    sic: k.to_string(),
                    impi: s.impi.clone(),
                    subscriber: sub.clone(),
                });
            }
            return Err(CxError::UnsubscribedSic {
                impi: key,
                sic: sic.as_str().to_string(),
                imsi: sub.imsi.clone(),
            });
        }
    }
    let sub = store
        .find_by_impi_shared(&key)
        .await?
        .ok_or_else(|| CxError::UserUnknown {
            identity: key.clone(),
            why: "no subscriber has this private identity".into(),
        })?;
    let (sic, svc) = sub
        .service_by_impi(&key)
        .map(|(k, s)| (k.to_string(), s.impi.clone()))
        .ok_or_else(|| CxError::UserUnknown {
            identity: key.clone(),
            why: "the IMPI index names a subscriber without this identity".into(),
        })?;
    Ok(Resolved {
        sic,
        impi: svc,
        subscriber: sub,
    })
}

/// Finds the subscriber that owns an IMPU (normalised key returned with it).
///
/// # Errors
/// `UserUnknown`, `Store`.
pub async fn by_impu<S: SubscriberStore>(
    store: &S,
    raw: &str,
) -> Result<(Arc<Subscriber>, String), CxError> {
    let impu = normalize_impu(raw)?;
    let sub = store
        .find_by_impu_shared(&impu)
        .await?
        .ok_or_else(|| CxError::UserUnknown {
            identity: impu.clone(),
            why: "no subscriber has this public identity".into(),
        })?;
    Ok((sub, impu))
}

/// Checks that the resolved service lists `impu` (TS 29.228 §6.1.1.1 step 2: 5002).
pub fn check_association(r: &Resolved, impu: &str) -> Result<(), CxError> {
    if r.service().impus.iter().any(|i| i == impu) {
        Ok(())
    } else {
        Err(CxError::IdentitiesDontMatch {
            impi: r.impi.clone(),
            impu: impu.to_string(),
        })
    }
}
