//! LIR → LIA (TS 29.228 §6.1.4.1; TS 29.229 §6.1.5–6.1.6; cx-spec §4.4).
//!
//! Keyed by the IMPU alone (sip: or tel:). An IMPU shared by several services counts as
//! registered while any of their IMPIs holds it, so a MESSAGE to RCS's identity still
//! reaches the S-CSCF after VoLTE de-registered.

use crate::codec::{codes, Avp, ExperimentalResultCode as Exp, Message, ResultCode};
use crate::store::{RegState, Subscriber, SubscriberStore};

use super::uar::{scscf_for_impu, UAT_REGISTRATION_AND_CAPABILITIES};
use super::{required_str, resolve, CxApp, CxError, Outcome};

/// Answers a LIR.
pub async fn handle<S: SubscriberStore>(
    app: &CxApp<S>,
    req: &Message,
) -> Result<(Message, Outcome), CxError> {
    let impu_raw = required_str(req, codes::PUBLIC_IDENTITY, "Public-Identity")?;
    let originating = req.find(codes::ORIGINATING_REQUEST).is_some();
    let uat = req.u32(codes::USER_AUTHORIZATION_TYPE);
    let (sub, impu) = resolve::by_impu(app.store.as_ref(), impu_raw).await?;

    let success = Outcome::Base(ResultCode::DIAMETER_SUCCESS);
    if uat == Some(UAT_REGISTRATION_AND_CAPABILITIES) {
        let mut a = app.answer(req, success);
        a.push(app.server_capabilities());
        a.finish_answer(req);
        return Ok((a, success));
    }
    let serving = match sub.impu_state(&impu) {
        RegState::Registered | RegState::Unregistered => scscf_for_impu(&sub, &impu),
        RegState::NotRegistered => {
            if !originating && !has_unregistered_services(&sub, &impu) {
                return Err(CxError::IdentityNotRegistered { identity: impu });
            }
            sub.assigned_scscf().map(|s| s.server_name.clone())
        }
    };
    let (outcome, avp) = match serving {
        Some(name) => (success, Avp::utf8(codes::SERVER_NAME, name)),
        None => (
            Outcome::Experimental(Exp::DIAMETER_UNREGISTERED_SERVICE),
            app.server_capabilities(),
        ),
    };
    let mut a = app.answer(req, outcome);
    a.push(avp);
    a.finish_answer(req);
    Ok((a, outcome))
}

/// Whether a service listing `impu` has services for the unregistered state: an iFC for
/// the unregistered profile part, or a trigger on TERMINATING_UNREGISTERED (2) or
/// ORIGINATING_UNREGISTERED (3) (TS 29.228 §6.1.4.1).
fn has_unregistered_services(sub: &Subscriber, impu: &str) -> bool {
    sub.services
        .values()
        .filter(|s| s.impus.iter().any(|i| i == impu))
        .flat_map(|s| s.profile.ifcs.iter())
        .any(|ifc| {
            ifc.profile_part_indicator == Some(1)
                || ifc.trigger.as_ref().is_some_and(|t| {
                    t.spts
                        .iter()
                        .any(|spt| matches!(spt.session_case, Some(2) | Some(3)))
                })
        })
}
