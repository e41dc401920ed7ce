//! PPR/PPA: HSS-initiated profile push (TS 29.228 §6.2.2; TS 29.229 §6.1.11–6.1.12;
//! cx-spec §4.6). Sent when a registered service's profile changes, with that service's
//! IMPI and its complete User-Data, on the serving S-CSCF's connection.
//!
//! Kamailio 5.6 does not implement PPR and never answers it (kamailio.md §4.6): the
//! server's request timeout reports that.

use crate::codec::{codes, Avp, CommandCode, Message};
use crate::store::{RegState, ScscfAssignment, Subscriber};

use super::rtr::hss_request;
use super::{sar::charging_information, user_data, CxConfig};

/// Builds the PPR for one service, or `None` when no S-CSCF holds it.
pub fn build(cfg: &CxConfig, sub: &Subscriber, sic: &str) -> Option<(ScscfAssignment, Message)> {
    let svc = sub.services.get(sic)?;
    let to = svc
        .registrations
        .values()
        .filter(|r| r.state != RegState::NotRegistered)
        .find_map(|r| r.scscf.as_deref().cloned())?;
    let xml = user_data::subscription_xml(&svc.impi, svc, None);
    let mut m = hss_request(cfg, CommandCode::PUSH_PROFILE, &to)
        .with(Avp::utf8(codes::USER_NAME, &svc.impi))
        .with(Avp::octets(codes::USER_DATA, xml.into_bytes()));
    if let Some(c) = &cfg.charging {
        m.push(charging_information(c));
    }
    Some((to, m))
}
