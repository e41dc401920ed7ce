//! Dictionary-driven checks of a decoded message: the M-bit rule for unknown AVPs and
//! enumerated values (RFC 6733 §4.1: 5001, 5004), and the command and Grouped-AVP grammars
//! (RFC 6733 §3.2: 5005 missing, 5009 too many, 5008 not allowed).
//!
//! Kept apart from decoding so the server can first answer a wrong application (3007) or
//! command (3001), as RFC 6733 §7.1 orders the checks.

use super::avp::{Avp, Value};
use super::error::ProtocolError;
use super::message::Message;
use crate::dict::{Dictionary, Rule};

/// Checks `msg` against the dictionary: unknown mandatory AVPs and undefined enumerated
/// values at any depth, then the grammar of its command and of every Grouped AVP.
/// A message whose command the dictionary does not define gets only the AVP checks; an
/// answer with the E bit follows the generic answer-message grammar and is not checked.
///
/// # Errors
/// The first violation found, as a [`ProtocolError`] carrying Failed-AVP.
pub fn validate(msg: &Message, dict: &Dictionary) -> Result<(), ProtocolError> {
    check_avps(&msg.avps, dict)?;
    if msg.header.is_error() {
        return Ok(());
    }
    if let Some(cmd) = dict.command(msg.header.command.0, msg.header.application.0) {
        let rules = if msg.header.is_request() {
            &cmd.request
        } else {
            &cmd.answer
        };
        check_grammar(&msg.avps, rules, dict)?;
    }
    Ok(())
}

fn check_avps(avps: &[Avp], dict: &Dictionary) -> Result<(), ProtocolError> {
    for a in avps {
        let vendor = a.vendor_id();
        match dict.avp(a.code, vendor) {
            None if a.is_mandatory() => {
                return Err(ProtocolError::AvpUnsupported {
                    code: a.code,
                    vendor,
                    failed: a.clone(),
                })
            }
            None => {}
            Some(def) => {
                if let Value::Enumerated(v) = a.value {
                    if a.is_mandatory() && !def.enums.is_empty() && def.enum_name(v).is_none() {
                        return Err(ProtocolError::InvalidAvpValue {
                            code: a.code,
                            vendor,
                            failed: a.clone(),
                        });
                    }
                }
                if let Value::Grouped(members) = &a.value {
                    check_avps(members, dict)?;
                    if !def.members.is_empty() {
                        check_grammar(members, &def.members, dict)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_grammar(avps: &[Avp], rules: &[Rule], dict: &Dictionary) -> Result<(), ProtocolError> {
    let wildcard = rules.iter().any(|r| r.key.is_none());
    for r in rules {
        let Some((code, vendor)) = r.key else {
            continue;
        };
        let mut seen = avps
            .iter()
            .filter(|a| a.code == code && a.vendor_id() == vendor);
        let count = seen.clone().count() as u32;
        if count < r.min {
            let def = dict.avp(code, vendor);
            let min_len = def.map_or(0, |d| d.ty.min_len());
            let flags = match def.map(|d| d.m) {
                Some(crate::dict::FlagRule::Must) => super::avp::AVP_FLAG_M,
                _ => 0,
            };
            return Err(ProtocolError::MissingAvp {
                name: r.name.clone(),
                code,
                vendor,
                failed: Avp::zeroed(code, flags, (vendor != 0).then_some(vendor), min_len),
            });
        }
        if let Some(max) = r.max {
            if count > max {
                let failed = seen
                    .nth(max as usize)
                    .cloned()
                    .unwrap_or_else(|| Avp::zeroed(code, 0, (vendor != 0).then_some(vendor), 0));
                return Err(ProtocolError::AvpOccursTooManyTimes {
                    name: r.name.clone(),
                    code,
                    vendor,
                    max,
                    failed,
                });
            }
        }
    }
    if !wildcard {
        if let Some(a) = avps
            .iter()
            .find(|a| !rules.iter().any(|r| r.key == Some((a.code, a.vendor_id()))))
        {
            return Err(ProtocolError::AvpNotAllowed {
                code: a.code,
                vendor: a.vendor_id(),
                failed: a.clone(),
            });
        }
    }
    Ok(())
}
