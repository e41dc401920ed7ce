//! SAR → SAA (TS 29.228 §6.1.2.1, Table 6.1.2.1; TS 29.229 §6.1.3–6.1.4; cx-spec §4.2).
//!
//! Every Server-Assignment-Type is applied to the (IMPI, IMPU) pairs of the request's
//! service only: registering RCS leaves VoLTE's pairs as they were, and de-registering
//! VoLTE leaves a shared IMPU registered while RCS holds it. RE_REGISTRATION for a pair
//! that is not registered yet registers it: Kamailio's S-CSCF sends exactly that for the
//! second service of a shared IMPU (kamailio.md §12).
//!
//! The decision is taken inside [`SubscriberStore::update`], under the subscriber's lock,
//! so concurrent SARs for one subscriber see each other's effect. A registration or
//! refresh that would change nothing (the serving S-CSCF refreshing registered pairs) is
//! answered from the record as read, without the lock or a copy, once what it read is
//! durable (`SubscriberStore::settled`).

use crate::codec::{codes, Avp, ExperimentalResultCode as Exp, Message, ProtocolError, ResultCode};
use crate::store::{
    now, RegState, Registration, ScscfAssignment, Shared, Subscriber, SubscriberStore,
};

use super::resolve::{self, Resolved};
use super::{missing, required_str, required_u32, user_data, CxApp, CxError, Outcome};

/// Server-Assignment-Type values (TS 29.229 §6.3.15).
pub mod sat {
    /// NO_ASSIGNMENT.
    pub const NO_ASSIGNMENT: u32 = 0;
    /// REGISTRATION.
    pub const REGISTRATION: u32 = 1;
    /// RE_REGISTRATION.
    pub const RE_REGISTRATION: u32 = 2;
    /// UNREGISTERED_USER.
    pub const UNREGISTERED_USER: u32 = 3;
    /// TIMEOUT_DEREGISTRATION.
    pub const TIMEOUT_DEREGISTRATION: u32 = 4;
    /// USER_DEREGISTRATION.
    pub const USER_DEREGISTRATION: u32 = 5;
    /// TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME.
    pub const TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME: u32 = 6;
    /// USER_DEREGISTRATION_STORE_SERVER_NAME.
    pub const USER_DEREGISTRATION_STORE_SERVER_NAME: u32 = 7;
    /// ADMINISTRATIVE_DEREGISTRATION.
    pub const ADMINISTRATIVE_DEREGISTRATION: u32 = 8;
    /// AUTHENTICATION_FAILURE.
    pub const AUTHENTICATION_FAILURE: u32 = 9;
    /// AUTHENTICATION_TIMEOUT.
    pub const AUTHENTICATION_TIMEOUT: u32 = 10;
    /// DEREGISTRATION_TOO_MUCH_DATA.
    pub const DEREGISTRATION_TOO_MUCH_DATA: u32 = 11;
}

/// De-registration types, which may list several Public-Identity AVPs or none.
fn is_deregistration(t: u32) -> bool {
    matches!(t, 4..=8 | 11)
}

/// The S-CSCF sending the SAR, as the request names it: compared with what the record
/// holds, and copied into it only when a pair changes.
struct Requester<'a> {
    server_name: &'a str,
    origin_host: &'a str,
    origin_realm: &'a str,
}

impl Requester<'_> {
    /// Whether `held` is this S-CSCF (all three names, exactly).
    fn is(&self, held: &ScscfAssignment) -> bool {
        held.server_name == self.server_name
            && held.origin_host == self.origin_host
            && held.origin_realm == self.origin_realm
    }

    fn assignment(&self) -> Shared<ScscfAssignment> {
        Shared::new(ScscfAssignment {
            server_name: self.server_name.to_owned(),
            origin_host: self.origin_host.to_owned(),
            origin_realm: self.origin_realm.to_owned(),
        })
    }
}

/// What the SAR did, for building the answer.
struct Applied {
    outcome: Outcome,
    /// The service's IMPI (User-Name of the SAA).
    impi: String,
    /// User-Data to send, if any.
    user_data: Option<String>,
}

/// Answers a SAR.
pub async fn handle<S: SubscriberStore>(
    app: &CxApp<S>,
    req: &Message,
) -> Result<(Message, Outcome), CxError> {
    let server_name = required_str(req, codes::SERVER_NAME, "Server-Name")?;
    let sat_avp = req
        .find(codes::SERVER_ASSIGNMENT_TYPE)
        .ok_or_else(|| missing(codes::SERVER_ASSIGNMENT_TYPE, "Server-Assignment-Type", 4))?;
    let sat = match sat_avp.as_u32() {
        Some(v @ 0..=14) => v,
        _ => return Err(super::invalid(sat_avp)),
    };
    let udaa = required_u32(
        req,
        codes::USER_DATA_ALREADY_AVAILABLE,
        "User-Data-Already-Available",
    )?;
    let scscf = Requester {
        server_name,
        origin_host: required_str(req, codes::ORIGIN_HOST, "Origin-Host")?,
        origin_realm: required_str(req, codes::ORIGIN_REALM, "Origin-Realm")?,
    };

    let pi_avps: Vec<&Avp> = req.find_all(codes::PUBLIC_IDENTITY).collect();
    if pi_avps.len() > 1 && !is_deregistration(sat) {
        return Err(CxError::Protocol(ProtocolError::AvpOccursTooManyTimes {
            name: "Public-Identity".into(),
            code: codes::PUBLIC_IDENTITY.code,
            vendor: codes::PUBLIC_IDENTITY.vendor,
            max: 1,
            failed: pi_avps[1].clone(),
        }));
    }
    let mut impus = Vec::with_capacity(pi_avps.len());
    for a in &pi_avps {
        match a.as_str() {
            Some(s) if !s.trim().is_empty() => impus.push(resolve::normalize_impu(s)?),
            _ => return Err(super::invalid(a)),
        }
    }
    let user_name = super::optional_str(req, codes::USER_NAME)?;
    if user_name.is_none() && matches!(sat, 1 | 2 | 9 | 10) {
        return Err(missing(codes::USER_NAME, "User-Name", 0));
    }
    if impus.is_empty()
        && (user_name.is_none() || !is_deregistration(sat))
        && !matches!(sat, 9 | 10)
    {
        return Err(missing(codes::PUBLIC_IDENTITY, "Public-Identity", 0));
    }
    if sat > 11 {
        return Err(CxError::InAssignmentType {
            sat,
            why: "types 12 to 14 belong to SWx, not Cx",
        });
    }

    // Find the subscriber and the service: by IMPI when given, else by the IMPU.
    let resolved: Resolved = match user_name {
        Some(impi) => {
            let r = resolve::by_impi(app.store.as_ref(), impi).await?;
            for impu in &impus {
                super::uar::check_impu(app, &r, impu).await?;
            }
            r
        }
        None => {
            let (sub, impu) = resolve::by_impu(app.store.as_ref(), &impus[0]).await?;
            let (sic, impi) = sub
                .services
                .iter()
                .find(|(_, s)| s.impus.contains(&impu))
                .map(|(k, s)| (k.clone(), s.impi.clone()))
                .ok_or_else(|| CxError::UserUnknown {
                    identity: impu.clone(),
                    why: "no service lists this public identity".into(),
                })?;
            Resolved {
                subscriber: sub,
                sic,
                impi,
            }
        }
    };
    let by_impi = user_name.is_some();
    let sic = resolved.sic.as_str();
    let cfg = &app.config;
    // The usual refresh changes nothing: answered from the record just read, without
    // taking the subscriber's lock or copying the record.
    let unchanged = unchanged_registration(&resolved.subscriber, sic, sat, &impus, &scscf, udaa);
    let applied = match unchanged {
        Some(applied) => {
            // What was read may be a change not yet on disk (a retransmitted REGISTRATION
            // racing its original): answer only once it is.
            app.store.settled(&resolved.subscriber.imsi).await?;
            applied
        }
        None => {
            app.store
                .update(&resolved.subscriber.imsi, |sub| {
                    apply(
                        sub,
                        sic,
                        by_impi,
                        sat,
                        &impus,
                        &scscf,
                        udaa,
                        cfg.keep_server_name,
                    )
                })
                .await??
        }
    };

    let mut a = app.answer(req, applied.outcome);
    a.push(Avp::utf8(codes::USER_NAME, applied.impi));
    if let Some(xml) = applied.user_data {
        a.push(Avp::octets(codes::USER_DATA, xml.into_bytes()));
        if let Some(c) = &cfg.charging {
            a.push(charging_information(c));
        }
    }
    a.finish_answer(req);
    Ok((a, applied.outcome))
}

/// Applies one SAR to the subscriber, under its lock. Returns an error before changing
/// anything.
#[allow(clippy::too_many_arguments)]
fn apply(
    sub: &mut Subscriber,
    sic: &str,
    by_impi: bool,
    sat: u32,
    impus: &[String],
    scscf: &Requester<'_>,
    udaa: u32,
    keep_server_name: bool,
) -> Result<Applied, CxError> {
    let svc = sub.services.get(sic).ok_or_else(|| CxError::UserUnknown {
        identity: sic.to_string(),
        why: "the service was unsubscribed meanwhile".into(),
    })?;
    let impi = svc.impi.clone();
    let first = impus.first().cloned();
    let ok = Outcome::Base(ResultCode::DIAMETER_SUCCESS);
    let profile = |sub: &Subscriber| {
        (udaa == 0)
            .then(|| user_data::subscription_xml(&impi, &sub.services[sic], first.as_deref()))
    };
    // The S-CSCF serving the subscription, if another one than the requester.
    let other_scscf = sub
        .assigned_scscf()
        .filter(|s| !s.server_name.eq_ignore_ascii_case(scscf.server_name))
        .map(|s| s.server_name.clone());

    match sat {
        sat::NO_ASSIGNMENT => {
            let impu = first.as_deref().unwrap_or_default();
            let serving = super::uar::scscf_for_impu(sub, impu);
            match serving {
                Some(s) if s.eq_ignore_ascii_case(scscf.server_name) => Ok(Applied {
                    outcome: ok,
                    user_data: Some(user_data::subscription_xml(&impi, svc, Some(impu))),
                    impi,
                }),
                _ => Err(CxError::UnableToComply(format!(
                    "NO_ASSIGNMENT from {} which is not the assigned S-CSCF",
                    scscf.server_name
                ))),
            }
        }
        sat::REGISTRATION | sat::RE_REGISTRATION | sat::UNREGISTERED_USER => {
            if let Some(other) = other_scscf {
                return Err(CxError::IdentityAlreadyRegistered { server_name: other });
            }
            // A refresh by the serving S-CSCF usually changes nothing: decided on the shared
            // record first, so that the service is copied only when it does change.
            if let Some(applied) = unchanged_registration(sub, sic, sat, impus, scscf, udaa) {
                return Ok(applied);
            }
            let target = registration_target(sat);
            let assignment = scscf.assignment();
            let svc = sub.services.get_mut(sic).expect("checked above");
            let t = now();
            for impu in svc.impus.clone() {
                let reg = svc.registrations.entry(impu).or_default();
                if is_stale(reg, target, scscf) {
                    *reg = Registration {
                        state: target,
                        scscf: Some(assignment.clone()),
                        since: t,
                    };
                }
            }
            if target == RegState::Registered {
                svc.auth_pending = None;
            }
            let user_data = profile(sub);
            Ok(Applied {
                outcome: ok,
                impi,
                user_data,
            })
        }
        4 | 5 | 6 | 7 | 8 | 11 => {
            let store_name = matches!(sat, 6 | 7) && keep_server_name;
            let new_state = if store_name {
                RegState::Unregistered
            } else {
                RegState::NotRegistered
            };
            let t = now();
            // Which services: the request's one, or (no User-Name) every one listing the IMPUs.
            let sics: Vec<String> = if by_impi {
                vec![sic.to_string()]
            } else {
                sub.services
                    .iter()
                    .filter(|(_, s)| s.impus.iter().any(|i| impus.contains(i)))
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            for k in sics {
                let svc = sub.services.get_mut(&k).expect("listed above");
                // The implicit registration set: a listed IMPU brings the whole service's
                // set; none listed means every IMPU this IMPI holds.
                let targets: Vec<String> =
                    if impus.is_empty() || svc.impus.iter().any(|i| impus.contains(i)) {
                        svc.impus.clone()
                    } else {
                        Vec::new()
                    };
                for impu in targets {
                    if let Some(reg) = svc.registrations.get_mut(&impu) {
                        if reg.state != RegState::NotRegistered && reg.state != new_state {
                            reg.state = new_state;
                            reg.since = t;
                            if new_state == RegState::NotRegistered {
                                reg.scscf = None;
                            }
                        }
                    }
                }
                svc.auth_pending = None;
            }
            let outcome = if matches!(sat, 6 | 7) && !keep_server_name {
                Outcome::Experimental(Exp::DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED)
            } else {
                ok
            };
            Ok(Applied {
                outcome,
                impi,
                user_data: None,
            })
        }
        sat::AUTHENTICATION_FAILURE | sat::AUTHENTICATION_TIMEOUT => {
            let svc = sub.services.get_mut(sic).expect("checked above");
            svc.auth_pending = None;
            Ok(Applied {
                outcome: ok,
                impi,
                user_data: None,
            })
        }
        _ => Err(CxError::InAssignmentType {
            sat,
            why: "not a Cx Server-Assignment-Type",
        }),
    }
}

/// The state a REGISTRATION, RE_REGISTRATION or UNREGISTERED_USER puts the pairs in.
fn registration_target(sat: u32) -> RegState {
    if sat == sat::UNREGISTERED_USER {
        RegState::Unregistered
    } else {
        RegState::Registered
    }
}

/// Whether a pair must be rewritten to reach `target` with `scscf`. UNREGISTERED_USER
/// never downgrades a pair the UE registered itself.
fn is_stale(reg: &Registration, target: RegState, scscf: &Requester<'_>) -> bool {
    !(target == RegState::Unregistered && reg.state == RegState::Registered)
        && (reg.state != target || !reg.scscf.as_ref().is_some_and(|held| scscf.is(held)))
}

/// The answer to a REGISTRATION, RE_REGISTRATION or UNREGISTERED_USER that would change
/// nothing in `sub` (every pair of the service already in its target state with this
/// S-CSCF, no authentication pending): the usual refresh. `None` when it would change
/// something, or fail (another S-CSCF serves the subscription, the service is gone), or
/// for any other type: [`apply`] decides those under the subscriber's lock.
fn unchanged_registration(
    sub: &Subscriber,
    sic: &str,
    sat: u32,
    impus: &[String],
    scscf: &Requester<'_>,
    udaa: u32,
) -> Option<Applied> {
    if !matches!(
        sat,
        sat::REGISTRATION | sat::RE_REGISTRATION | sat::UNREGISTERED_USER
    ) {
        return None;
    }
    let svc = sub.services.get(sic)?;
    let served_by_another = sub
        .assigned_scscf()
        .is_some_and(|s| !s.server_name.eq_ignore_ascii_case(scscf.server_name));
    let target = registration_target(sat);
    let changes = served_by_another
        || (target == RegState::Registered && svc.auth_pending.is_some())
        || svc.impus.iter().any(|impu| {
            svc.registrations
                .get(impu)
                .map_or(true, |reg| is_stale(reg, target, scscf))
        });
    if changes {
        return None;
    }
    Some(Applied {
        outcome: Outcome::Base(ResultCode::DIAMETER_SUCCESS),
        user_data: (udaa == 0).then(|| {
            user_data::subscription_xml(&svc.impi, svc, impus.first().map(String::as_str))
        }),
        impi: svc.impi.clone(),
    })
}

/// Charging-Information from configuration (TS 29.229 §6.3.19).
pub(crate) fn charging_information(c: &super::ChargingInfo) -> Avp {
    let mut m = Vec::new();
    let pairs = [
        (&c.primary_ecf, codes::PRIMARY_EVENT_CHARGING_FUNCTION_NAME),
        (
            &c.secondary_ecf,
            codes::SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
        ),
        (
            &c.primary_ccf,
            codes::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
        ),
        (
            &c.secondary_ccf,
            codes::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
        ),
    ];
    for (v, key) in pairs {
        if let Some(v) = v {
            m.push(Avp::uri(key, v));
        }
    }
    Avp::grouped(codes::CHARGING_INFORMATION, m)
}
