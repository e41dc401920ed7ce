//! RTR/RTA: HSS-initiated de-registration (TS 29.228 §6.1.3; TS 29.229 §6.1.9–6.1.10;
//! cx-spec §4.5). Built here for one service only (its IMPI and its registered IMPUs);
//! the server sends it on the serving S-CSCF's own connection.
//!
//! Kamailio's S-CSCF keys registrations by IMPU and ignores an RTR without
//! Public-Identity, so every RTR lists the IMPUs (kamailio.md §4.6).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::codec::{codes, ApplicationId, Avp, CommandCode, Message};
use crate::store::{now, RegState, ScscfAssignment, Subscriber};

use super::{vsai, CxConfig};

/// Reason-Code values (TS 29.229 §6.3.17).
pub mod reason {
    /// PERMANENT_TERMINATION.
    pub const PERMANENT_TERMINATION: i32 = 0;
    /// NEW_SERVER_ASSIGNED.
    pub const NEW_SERVER_ASSIGNED: i32 = 1;
    /// SERVER_CHANGE.
    pub const SERVER_CHANGE: i32 = 2;
    /// REMOVE_S-CSCF.
    pub const REMOVE_SCSCF: i32 = 3;
}

/// A new Session-Id for an HSS-initiated request (RFC 6733 §8.8).
pub fn new_session_id(origin_host: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let started = now() as u32;
    format!(
        "{origin_host};{started};{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The header and common AVPs of a request the HSS sends to an S-CSCF.
pub(crate) fn hss_request(cfg: &CxConfig, command: CommandCode, to: &ScscfAssignment) -> Message {
    Message::request(command, ApplicationId::CX, true, 0, 0)
        .with(Avp::utf8(
            codes::SESSION_ID,
            new_session_id(&cfg.origin_host),
        ))
        .with(vsai())
        .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
        .with(Avp::identity(codes::ORIGIN_HOST, &cfg.origin_host))
        .with(Avp::identity(codes::ORIGIN_REALM, &cfg.origin_realm))
        .with(Avp::identity(codes::DESTINATION_HOST, &to.origin_host))
        .with(Avp::identity(codes::DESTINATION_REALM, &to.origin_realm))
}

/// Builds the RTR that de-registers one service (`sic`): User-Name = its IMPI,
/// Public-Identity = each IMPU its IMPI holds, Deregistration-Reason. `None` when the
/// service holds nothing at any S-CSCF (nothing to terminate).
pub fn build(
    cfg: &CxConfig,
    sub: &Subscriber,
    sic: &str,
    reason_code: i32,
    reason_info: &str,
) -> Option<(ScscfAssignment, Message)> {
    let svc = sub.services.get(sic)?;
    let held: Vec<(&String, &ScscfAssignment)> = svc
        .registrations
        .iter()
        .filter(|(_, r)| r.state != RegState::NotRegistered)
        .filter_map(|(impu, r)| r.scscf.as_deref().map(|s| (impu, s)))
        .collect();
    let to = held.first()?.1.clone();
    let mut m = hss_request(cfg, CommandCode::REGISTRATION_TERMINATION, &to)
        .with(Avp::utf8(codes::USER_NAME, &svc.impi));
    for (impu, _) in &held {
        m.push(Avp::utf8(codes::PUBLIC_IDENTITY, impu.as_str()));
    }
    let mut dr = vec![Avp::enumerated(codes::REASON_CODE, reason_code)];
    if !reason_info.is_empty() {
        dr.push(Avp::utf8(codes::REASON_INFO, reason_info));
    }
    m.push(Avp::grouped(codes::DEREGISTRATION_REASON, dr));
    Some((to, m))
}

/// Applies an accepted RTA (TS 29.228 §6.1.3): every pair of the service becomes
/// NOT_REGISTERED. Sibling services keep their state, so a shared IMPU stays registered
/// while another IMPI holds it.
pub fn apply_accepted(sub: &mut Subscriber, sic: &str) {
    let Some(svc) = sub.services.get_mut(sic) else {
        return;
    };
    let t = now();
    for r in svc.registrations.values_mut() {
        if r.state != RegState::NotRegistered {
            r.state = RegState::NotRegistered;
            r.scscf = None;
            r.since = t;
        }
    }
    svc.auth_pending = None;
}
