//! MAR → MAA (TS 29.228 §6.3.1, Table 6.3.5; TS 29.229 §6.1.7–6.1.8; TS 33.203;
//! TS 33.102 §6.3 and Annex C; cx-spec §4.3, §7).
//!
//! Schemes: Digest-AKAv1-MD5 (Milenage vectors; resynchronisation from RAND‖AUTS with
//! MAC-S verified, so a forged AUTS moves nothing), "SIP Digest" (SIP-Digest-Authenticate
//! with Digest-HA1), Kamailio's "Digest-MD5" (nonce in SIP-Authenticate and the password in
//! SIP-Authorization, as its ims_auth module expects: kamailio.md §4.3), and "Unknown",
//! which takes the subscriber's default scheme. The SQN is stepped and stored under the
//! subscriber's lock, durably, before the answer leaves: two MARs never share an SQN.

use rand::RngCore;

use crate::auth::{self, Key128, Milenage};
use crate::codec::{codes, Avp, Message, ResultCode};
use crate::store::{
    AkaCredentials, AuthScheme, RegState, ScscfAssignment, Shared, Subscriber, SubscriberStore,
};

use super::resolve;
use super::{missing, required_str, required_u32, CxApp, CxError, Outcome};

/// The scheme a MAR asks for, as this HSS serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Aka,
    SipDigest,
    /// Kamailio's "Digest-MD5": nonce and plaintext password.
    KamailioDigestMd5,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Aka => "Digest-AKAv1-MD5",
            Scheme::SipDigest => "SIP Digest",
            Scheme::KamailioDigestMd5 => "Digest-MD5",
        }
    }
}

/// Answers a MAR.
pub async fn handle<S: SubscriberStore>(
    app: &CxApp<S>,
    req: &Message,
) -> Result<(Message, Outcome), CxError> {
    let impi_raw = required_str(req, codes::USER_NAME, "User-Name")?;
    let impu_raw = required_str(req, codes::PUBLIC_IDENTITY, "Public-Identity")?;
    let server_name = required_str(req, codes::SERVER_NAME, "Server-Name")?;
    let item = req
        .find(codes::SIP_AUTH_DATA_ITEM)
        .ok_or_else(|| missing(codes::SIP_AUTH_DATA_ITEM, "SIP-Auth-Data-Item", 0))?;
    let requested = required_u32(req, codes::SIP_NUMBER_AUTH_ITEMS, "SIP-Number-Auth-Items")?;
    let scheme_name = item
        .find(codes::SIP_AUTHENTICATION_SCHEME)
        .and_then(Avp::as_str)
        .unwrap_or("Unknown");
    let resync = item.find(codes::SIP_AUTHORIZATION);

    let r = resolve::by_impi(app.store.as_ref(), impi_raw).await?;
    let impu = resolve::normalize_impu(impu_raw)?;
    super::uar::check_impu(app, &r, &impu).await?;

    let scheme = choose_scheme(&r.subscriber, scheme_name)?;
    let resync = match (resync, scheme) {
        (None, _) => None,
        (Some(a), Scheme::Aka) => {
            let data = a.as_bytes().unwrap_or_default();
            Some(auth::parse_resync_authorization(data).map_err(|_| super::invalid(a))?)
        }
        // SIP-Authorization in a MAR only makes sense for AKA resynchronisation.
        (Some(a), _) => return Err(super::invalid(a)),
    };
    let count = match scheme {
        Scheme::Aka => requested.clamp(1, app.config.max_auth_items.max(1)),
        _ => 1,
    };
    let scscf = Shared::new(ScscfAssignment {
        server_name: server_name.to_string(),
        origin_host: required_str(req, codes::ORIGIN_HOST, "Origin-Host")?.to_string(),
        origin_realm: required_str(req, codes::ORIGIN_REALM, "Origin-Realm")?.to_string(),
    });
    let sic = r.sic.clone();
    let impi = r.impi.clone();
    let items = app
        .store
        .update(&r.subscriber.imsi, |sub| {
            let items = match scheme {
                Scheme::Aka => aka_items(sub, count, resync)?,
                Scheme::SipDigest => vec![sip_digest_item(sub, &impi)?],
                Scheme::KamailioDigestMd5 => vec![digest_md5_item(sub)?],
            };
            note_scscf(sub, &sic, &scscf);
            Ok::<_, CxError>(items)
        })
        .await??;

    let outcome = Outcome::Base(ResultCode::DIAMETER_SUCCESS);
    let mut a = app.answer(req, outcome);
    a.push(Avp::utf8(codes::USER_NAME, impi_raw));
    a.push(Avp::utf8(codes::PUBLIC_IDENTITY, impu_raw));
    a.push(Avp::u32(codes::SIP_NUMBER_AUTH_ITEMS, items.len() as u32));
    a.avps.extend(items);
    a.finish_answer(req);
    Ok((a, outcome))
}

/// Maps the requested scheme to one this subscriber has credentials for (5006 otherwise).
fn choose_scheme(sub: &Subscriber, name: &str) -> Result<Scheme, CxError> {
    let scheme = if name.eq_ignore_ascii_case("Digest-AKAv1-MD5") {
        Scheme::Aka
    } else if name.eq_ignore_ascii_case("SIP Digest") {
        Scheme::SipDigest
    } else if name.eq_ignore_ascii_case("Digest-MD5") {
        Scheme::KamailioDigestMd5
    } else if name.eq_ignore_ascii_case("Unknown") {
        match sub.default_scheme {
            AuthScheme::DigestAkaV1Md5 => Scheme::Aka,
            AuthScheme::SipDigest => Scheme::SipDigest,
        }
    } else {
        return Err(CxError::AuthSchemeNotSupported {
            scheme: name.to_string(),
        });
    };
    let ok = match scheme {
        Scheme::Aka => sub.aka.is_some(),
        Scheme::SipDigest => sub.digest.is_some(),
        Scheme::KamailioDigestMd5 => sub.digest.as_ref().is_some_and(|d| d.password.is_some()),
    };
    if ok {
        Ok(scheme)
    } else {
        Err(CxError::AuthSchemeNotSupported {
            scheme: scheme.name().to_string(),
        })
    }
}

/// Milenage from stored credentials; a bad stored key is the operator's fault (5012).
fn milenage(aka: &AkaCredentials) -> Result<(Milenage, [u8; 2]), CxError> {
    let bad = |what: &str| CxError::UnableToComply(format!("stored AKA credentials: {what}"));
    let k = Key128::from_hex("K", &aka.k.0).map_err(|e| bad(&e.to_string()))?;
    let m = match (&aka.opc, &aka.op) {
        (Some(opc), _) => Milenage::with_opc(
            &k,
            &Key128::from_hex("OPc", &opc.0).map_err(|e| bad(&e.to_string()))?,
        ),
        (None, Some(op)) => Milenage::with_op(
            &k,
            &Key128::from_hex("OP", &op.0).map_err(|e| bad(&e.to_string()))?,
        ),
        (None, None) => return Err(bad("neither OPc nor OP is set")),
    };
    let amf = hex::decode(&aka.amf)
        .ok()
        .and_then(|v| <[u8; 2]>::try_from(v).ok())
        .ok_or_else(|| bad("AMF must be 4 hex digits"))?;
    Ok((m, amf))
}

/// Builds `count` AKA vectors, stepping SQN_HE for each (TS 33.102 Annex C), after a
/// verified resynchronisation when RAND‖AUTS came in.
fn aka_items(
    sub: &mut Subscriber,
    count: u32,
    resync: Option<([u8; 16], [u8; 14])>,
) -> Result<Vec<Avp>, CxError> {
    let Some(aka) = sub.aka.as_mut() else {
        return Err(CxError::AuthSchemeNotSupported {
            scheme: Scheme::Aka.name().into(),
        });
    };
    let (m, amf) = milenage(aka)?;
    if let Some((rand, auts)) = resync {
        let sqn_ms = auth::resync(&m, &rand, &auts).map_err(|_| {
            CxError::UnableToComply("resynchronisation refused: AUTS MAC-S does not verify".into())
        })?;
        // Keep SQN_HE if it is already ahead of the USIM; else continue from SQN_MS.
        if auth::sqn::seq(aka.sqn) <= auth::sqn::seq(sqn_ms) {
            aka.sqn = sqn_ms;
        }
    }
    let mut rng = rand::thread_rng();
    let mut items = Vec::with_capacity(count as usize);
    for n in 1..=count {
        aka.sqn = auth::sqn::next_sqn(aka.sqn);
        let mut rand = [0u8; 16];
        rng.fill_bytes(&mut rand);
        let v = auth::generate_vector(&m, rand, aka.sqn, amf);
        items.push(Avp::grouped(
            codes::SIP_AUTH_DATA_ITEM,
            vec![
                Avp::u32(codes::SIP_ITEM_NUMBER, n),
                Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, Scheme::Aka.name()),
                Avp::octets(codes::SIP_AUTHENTICATE, v.sip_authenticate().to_vec()),
                Avp::octets(codes::SIP_AUTHORIZATION, v.xres.to_vec()),
                Avp::octets(codes::CONFIDENTIALITY_KEY, v.ck.as_bytes().to_vec()),
                Avp::octets(codes::INTEGRITY_KEY, v.ik.as_bytes().to_vec()),
            ],
        ));
    }
    Ok(items)
}

/// The SIP Digest item: SIP-Digest-Authenticate{Digest-Realm, Digest-QoP, Digest-Algorithm,
/// Digest-HA1} (TS 29.228 Table 6.3.5).
fn sip_digest_item(sub: &Subscriber, impi: &str) -> Result<Avp, CxError> {
    let d = sub
        .digest
        .as_ref()
        .ok_or_else(|| CxError::AuthSchemeNotSupported {
            scheme: Scheme::SipDigest.name().into(),
        })?;
    let ha1 = match (&d.password, &d.ha1) {
        (Some(p), _) => auth::digest::ha1(impi, &d.realm, &p.0),
        (None, Some(h)) => h.0.to_ascii_lowercase(),
        (None, None) => {
            return Err(CxError::UnableToComply(
                "stored SIP Digest credentials have neither password nor HA1".into(),
            ))
        }
    };
    Ok(Avp::grouped(
        codes::SIP_AUTH_DATA_ITEM,
        vec![
            Avp::u32(codes::SIP_ITEM_NUMBER, 1),
            Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, Scheme::SipDigest.name()),
            Avp::grouped(
                codes::SIP_DIGEST_AUTHENTICATE,
                vec![
                    Avp::utf8(codes::DIGEST_REALM, &d.realm),
                    Avp::utf8(codes::DIGEST_QOP, "auth"),
                    Avp::utf8(codes::DIGEST_ALGORITHM, "MD5"),
                    Avp::octets(codes::DIGEST_HA1, ha1.into_bytes()),
                ],
            ),
        ],
    ))
}

/// Kamailio's "Digest-MD5" item: a fresh nonce and the password (kamailio.md §4.3).
fn digest_md5_item(sub: &Subscriber) -> Result<Avp, CxError> {
    let password = sub
        .digest
        .as_ref()
        .and_then(|d| d.password.as_ref())
        .ok_or_else(|| CxError::AuthSchemeNotSupported {
            scheme: Scheme::KamailioDigestMd5.name().into(),
        })?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    Ok(Avp::grouped(
        codes::SIP_AUTH_DATA_ITEM,
        vec![
            Avp::u32(codes::SIP_ITEM_NUMBER, 1),
            Avp::utf8(
                codes::SIP_AUTHENTICATION_SCHEME,
                Scheme::KamailioDigestMd5.name(),
            ),
            Avp::octets(codes::SIP_AUTHENTICATE, nonce.to_vec()),
            Avp::octets(codes::SIP_AUTHORIZATION, password.0.clone().into_bytes()),
        ],
    ))
}

/// Records the S-CSCF that asked: pending authentication for a service not registered,
/// or a new S-CSCF name for pairs registered elsewhere (TS 29.228 §6.3.1, §8.1.1).
fn note_scscf(sub: &mut Subscriber, sic: &str, scscf: &Shared<ScscfAssignment>) {
    let Some(svc) = sub.services.get_mut(sic) else {
        return;
    };
    let registered = svc
        .registrations
        .values()
        .any(|r| r.state == RegState::Registered);
    let stale = |r: &crate::store::Registration| {
        r.state != RegState::NotRegistered && r.scscf.as_ref() != Some(scscf)
    };
    // Only a change copies the (shared) service.
    if registered && svc.registrations.values().any(stale) {
        for r in svc.registrations.values_mut() {
            if stale(r) {
                r.scscf = Some(scscf.clone());
            }
        }
    } else if !registered && svc.auth_pending.as_ref() != Some(scscf) {
        svc.auth_pending = Some(scscf.clone());
    }
}
