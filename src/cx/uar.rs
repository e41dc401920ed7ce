//! UAR → UAA (TS 29.228 §6.1.1.1; TS 29.229 §6.1.1–6.1.2; cx-spec §4.1).
//!
//! Order: identities (5001/5002), barring (base 5003), roaming (5004), then the
//! User-Authorization-Type against the IMPU's state. A UAR never changes state. With the
//! patent's method, the IMPI names one service; the IMPU must belong to that service.

use crate::codec::{codes, Avp, ExperimentalResultCode as Exp, Message, ResultCode};
use crate::store::{RegState, Subscriber, SubscriberStore};

use super::resolve::{self, Resolved};
use super::{required_str, CxApp, CxError, Outcome};

/// User-Authorization-Type REGISTRATION (0).
pub const UAT_REGISTRATION: u32 = 0;
/// User-Authorization-Type DE_REGISTRATION (1).
pub const UAT_DE_REGISTRATION: u32 = 1;
/// User-Authorization-Type REGISTRATION_AND_CAPABILITIES (2).
pub const UAT_REGISTRATION_AND_CAPABILITIES: u32 = 2;

/// UAR-Flags bit 0: IMS Emergency Registration.
const UAR_FLAG_EMERGENCY: u32 = 1;

/// Answers a UAR.
pub async fn handle<S: SubscriberStore>(
    app: &CxApp<S>,
    req: &Message,
) -> Result<(Message, Outcome), CxError> {
    let impi = required_str(req, codes::USER_NAME, "User-Name")?;
    let impu_raw = required_str(req, codes::PUBLIC_IDENTITY, "Public-Identity")?;
    let visited = required_str(
        req,
        codes::VISITED_NETWORK_IDENTIFIER,
        "Visited-Network-Identifier",
    )?;
    let uat = match req.find(codes::USER_AUTHORIZATION_TYPE) {
        None => UAT_REGISTRATION,
        Some(a) => match a.as_u32() {
            Some(v @ 0..=2) => v,
            _ => return Err(super::invalid(a)),
        },
    };
    let emergency = req.u32(codes::UAR_FLAGS).unwrap_or(0) & UAR_FLAG_EMERGENCY != 0;

    let r = resolve::by_impi(app.store.as_ref(), impi).await?;
    let impu = resolve::normalize_impu(impu_raw)?;
    check_impu(app, &r, &impu).await?;

    let sub = &r.subscriber;
    let svc = r.service();
    if !emergency {
        if sub.barred {
            return Err(CxError::AuthorizationRejected {
                why: "the subscription is barred",
            });
        }
        let barred = |i: &String| svc.profile.barred_impus.contains(i);
        if barred(&impu) && svc.impus.iter().all(barred) {
            return Err(CxError::AuthorizationRejected {
                why: "every public identity of the service is barred",
            });
        }
    }
    if uat != UAT_DE_REGISTRATION && !emergency && !roaming_allowed(sub, visited) {
        return Err(CxError::RoamingNotAllowed {
            visited: visited.to_string(),
        });
    }

    if uat == UAT_REGISTRATION_AND_CAPABILITIES {
        let outcome = Outcome::Base(ResultCode::DIAMETER_SUCCESS);
        let mut a = app.answer(req, outcome);
        a.push(app.server_capabilities());
        a.finish_answer(req);
        return Ok((a, outcome));
    }

    let state = sub.impu_state(&impu);
    let serving = scscf_for_impu(sub, &impu);
    let (outcome, server_name) = match (state, uat) {
        (RegState::Registered | RegState::Unregistered, UAT_DE_REGISTRATION) => {
            (Outcome::Base(ResultCode::DIAMETER_SUCCESS), serving)
        }
        (RegState::Registered | RegState::Unregistered, _) => (
            Outcome::Experimental(Exp::DIAMETER_SUBSEQUENT_REGISTRATION),
            serving,
        ),
        (RegState::NotRegistered, UAT_DE_REGISTRATION) => {
            return Err(CxError::IdentityNotRegistered { identity: impu })
        }
        (RegState::NotRegistered, _) => {
            // Another identity of the subscription holds an S-CSCF, or authentication is
            // pending at one: send the UE there.
            let assigned = sub
                .assigned_scscf()
                .map(|s| s.server_name.clone())
                .or_else(|| svc.auth_pending.as_ref().map(|s| s.server_name.clone()));
            match assigned {
                Some(name) => (
                    Outcome::Experimental(Exp::DIAMETER_SUBSEQUENT_REGISTRATION),
                    Some(name),
                ),
                None => (
                    Outcome::Experimental(Exp::DIAMETER_FIRST_REGISTRATION),
                    None,
                ),
            }
        }
    };
    let mut a = app.answer(req, outcome);
    match server_name {
        Some(name) => a.push(Avp::utf8(codes::SERVER_NAME, name)),
        // No S-CSCF assigned (or none kept): let the I-CSCF select one.
        None => a.push(app.server_capabilities()),
    }
    a.finish_answer(req);
    Ok((a, outcome))
}

/// The IMPU must exist (5001) and belong to the IMPI's service (5002).
pub(crate) async fn check_impu<S: SubscriberStore>(
    app: &CxApp<S>,
    r: &Resolved,
    impu: &str,
) -> Result<(), CxError> {
    if r.service().impus.iter().any(|i| i == impu) {
        return Ok(());
    }
    let known = r.subscriber.has_impu(impu) || app.store.find_by_impu(impu).await?.is_some();
    if known {
        Err(CxError::IdentitiesDontMatch {
            impi: r.impi.clone(),
            impu: impu.to_string(),
        })
    } else {
        Err(CxError::UserUnknown {
            identity: impu.to_string(),
            why: "no subscriber has this public identity".into(),
        })
    }
}

/// The S-CSCF that holds `impu` registered (or unregistered) through any IMPI.
pub(crate) fn scscf_for_impu(sub: &Subscriber, impu: &str) -> Option<String> {
    let find = |want: RegState| {
        sub.services.values().find_map(|s| {
            s.registrations
                .get(impu)
                .filter(|r| r.state == want)
                .and_then(|r| r.scscf.as_ref())
                .map(|c| c.server_name.clone())
        })
    };
    find(RegState::Registered)
        .or_else(|| find(RegState::Unregistered))
        .or_else(|| sub.assigned_scscf().map(|s| s.server_name.clone()))
}

/// Roaming check: the home network is always allowed; others when listed (or `*`).
fn roaming_allowed(sub: &Subscriber, visited: &str) -> bool {
    visited.eq_ignore_ascii_case(&sub.home_domain)
        || sub
            .allowed_visited_networks
            .iter()
            .any(|n| n == "*" || n.eq_ignore_ascii_case(visited))
}
