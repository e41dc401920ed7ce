//! Building base-protocol messages: CEA (RFC 6733 §5.3.2), DWR/DWA (§5.5.1, §5.5.2),
//! DPR/DPA (§5.4.1, §5.4.2), and the generic error answer (§7.2, with Failed-AVP §7.5);
//! and the routing and grammar checks a request meets before the application sees it
//! (§6.1, §7.1.3).
//!
//! Pure functions over [`Message`] values. Must not depend on: tokio, sockets, the store,
//! the Cx layer.

use std::net::IpAddr;

use crate::codec::avp::AVP_FLAG_M;
use crate::codec::header::{Header, FLAG_E, FLAG_P, HEADER_LEN};
use crate::codec::{codes, validate, ApplicationId, Avp, CommandCode, Message, ResultCode};
use crate::codec::{Value, VENDOR_3GPP};
use crate::dict::Dictionary;

use super::LocalIdentity;

/// Disconnect-Cause values (RFC 6733 §5.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectCause {
    /// REBOOTING (0): the peer may reconnect later (sent on shutdown).
    Rebooting = 0,
    /// BUSY (1).
    Busy = 1,
    /// DO_NOT_WANT_TO_TALK_TO_YOU (2): the peer should not reconnect.
    DoNotWantToTalkToYou = 2,
}

/// Auth-Session-State NO_STATE_MAINTAINED (RFC 6733 §8.11), the only value Cx uses.
const NO_STATE_MAINTAINED: i32 = 1;

fn push_origin(m: &mut Message, local: &LocalIdentity) {
    m.push(Avp::identity(codes::ORIGIN_HOST, &local.origin_host));
    m.push(Avp::identity(codes::ORIGIN_REALM, &local.origin_realm));
}

/// The Vendor-Specific-Application-Id advertising `app` (TS 29.229 §5: Vendor-Id 10415).
pub fn vendor_specific_application_id(app: u32) -> Avp {
    Avp::grouped(
        codes::VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(codes::VENDOR_ID, VENDOR_3GPP),
            Avp::u32(codes::AUTH_APPLICATION_ID, app),
        ],
    )
}

/// A Capabilities-Exchange-Answer to `cer` (RFC 6733 §5.3.2), advertising `app_ids` as
/// 3GPP vendor-specific auth applications with Supported-Vendor-Id 10415 (TS 29.229 §5).
///
/// `host_ips` must not be empty (the grammar asks for `1*{ Host-IP-Address }`); the server
/// passes the configured addresses or, when none are configured, the connection's local
/// address. `failed` and `error_message` are added for a non-2001 `rc`.
pub fn capabilities_answer(
    cer: &Message,
    local: &LocalIdentity,
    host_ips: &[IpAddr],
    app_ids: &[u32],
    rc: ResultCode,
    failed: Option<&Avp>,
    error_message: Option<&str>,
) -> Message {
    let mut a = Message::answer_to(cer);
    a.header.flags &= !FLAG_E;
    a.set_result(rc);
    push_origin(&mut a, local);
    for ip in host_ips {
        a.push(Avp::address(codes::HOST_IP_ADDRESS, *ip));
    }
    a.push(Avp::u32(codes::VENDOR_ID, local.vendor_id));
    a.push(Avp::utf8(codes::PRODUCT_NAME, &local.product_name));
    a.push(Avp::u32(codes::ORIGIN_STATE_ID, local.origin_state_id));
    if let Some(m) = error_message {
        a.push(Avp::utf8(codes::ERROR_MESSAGE, m));
    }
    if let Some(f) = failed {
        a.push(Avp::grouped(codes::FAILED_AVP, vec![f.clone()]));
    }
    a.push(Avp::u32(codes::SUPPORTED_VENDOR_ID, VENDOR_3GPP));
    for app in app_ids {
        a.push(vendor_specific_application_id(*app));
    }
    a.push(Avp::u32(codes::FIRMWARE_REVISION, local.firmware_revision));
    a
}

/// Whether a CER advertises an application in `app_ids`, or relay (0xffffffff), as
/// Auth-Application-Id or Acct-Application-Id, bare or inside Vendor-Specific-Application-Id
/// (RFC 6733 §5.3; cx-spec §1.5: be lenient, some CSCFs send a bare Auth-Application-Id,
/// some a VSAI with Vendor-Id 13019, so the VSAI's Vendor-Id is not checked).
pub fn has_common_application(cer: &Message, app_ids: &[u32]) -> bool {
    let wanted = |a: &Avp| {
        a.as_u32()
            .is_some_and(|id| id == ApplicationId::RELAY.0 || app_ids.contains(&id))
    };
    let is_app_id = |a: &Avp| a.is(codes::AUTH_APPLICATION_ID) || a.is(codes::ACCT_APPLICATION_ID);
    cer.avps.iter().any(|a| {
        (is_app_id(a) && wanted(a))
            || (a.is(codes::VENDOR_SPECIFIC_APPLICATION_ID)
                && a.members().iter().any(|m| is_app_id(m) && wanted(m)))
    })
}

/// A Device-Watchdog-Answer with Result-Code 2001 (RFC 6733 §5.5.2).
pub fn watchdog_answer(dwr: &Message, local: &LocalIdentity) -> Message {
    let mut a = Message::answer_to(dwr);
    a.set_result(ResultCode::DIAMETER_SUCCESS);
    push_origin(&mut a, local);
    a.push(Avp::u32(codes::ORIGIN_STATE_ID, local.origin_state_id));
    a
}

/// A Disconnect-Peer-Answer with Result-Code 2001 (RFC 6733 §5.4.2).
pub fn disconnect_answer(dpr: &Message, local: &LocalIdentity) -> Message {
    let mut a = Message::answer_to(dpr);
    a.set_result(ResultCode::DIAMETER_SUCCESS);
    push_origin(&mut a, local);
    a
}

/// Our Device-Watchdog-Request (RFC 6733 §5.5.1).
pub fn watchdog_request(local: &LocalIdentity, hop_by_hop: u32, end_to_end: u32) -> Message {
    let mut r = Message::request(
        CommandCode::DEVICE_WATCHDOG,
        ApplicationId::COMMON,
        false,
        hop_by_hop,
        end_to_end,
    );
    push_origin(&mut r, local);
    r.push(Avp::u32(codes::ORIGIN_STATE_ID, local.origin_state_id));
    r
}

/// Our Disconnect-Peer-Request (RFC 6733 §5.4.1); REBOOTING on shutdown.
pub fn disconnect_request(
    local: &LocalIdentity,
    cause: DisconnectCause,
    hop_by_hop: u32,
    end_to_end: u32,
) -> Message {
    let mut r = Message::request(
        CommandCode::DISCONNECT_PEER,
        ApplicationId::COMMON,
        false,
        hop_by_hop,
        end_to_end,
    );
    push_origin(&mut r, local);
    r.push(Avp::enumerated(codes::DISCONNECT_CAUSE, cause as i32));
    r
}

/// An error answer following the `answer-message` grammar (RFC 6733 §7.2):
///
/// ```text
/// answer-message ::= < Diameter Header: code, ERR [PXY] >
///                  0*1< Session-Id > { Origin-Host } { Origin-Realm } { Result-Code }
///                    [ Origin-State-Id ] [ Error-Message ] [ Error-Reporting-Host ]
///                    [ Failed-AVP ] [ Experimental-Result ] * [ Proxy-Info ] * [ AVP ]
/// ```
///
/// Same command, application and identifiers as the request; R cleared; P copied; E set
/// exactly for protocol errors (3xxx, §7.1.3). `failed` is wrapped in one Failed-AVP
/// (§7.5). For a permanent failure (E clear) on a Cx request, Vendor-Specific-Application-Id
/// and Auth-Session-State NO_STATE_MAINTAINED are added so the answer also meets the Cx
/// answer grammars (TS 29.229 §6.1), which require them.
pub fn error_answer(
    req_header: &Header,
    session_id: Option<&Avp>,
    local: &LocalIdentity,
    rc: ResultCode,
    failed: Option<&Avp>,
    msg: &str,
) -> Message {
    let mut flags = req_header.flags & FLAG_P;
    if rc.is_protocol_error() {
        flags |= FLAG_E;
    }
    let mut a = Message {
        header: Header {
            version: 1,
            length: 0,
            flags,
            ..*req_header
        },
        avps: Vec::new(),
    };
    if let Some(sid) = session_id {
        a.push(sid.clone());
    }
    if !rc.is_protocol_error() && req_header.application == ApplicationId::CX {
        a.push(vendor_specific_application_id(ApplicationId::CX.0));
        a.push(Avp::enumerated(
            codes::AUTH_SESSION_STATE,
            NO_STATE_MAINTAINED,
        ));
    }
    a.set_result(rc);
    push_origin(&mut a, local);
    a.push(Avp::u32(codes::ORIGIN_STATE_ID, local.origin_state_id));
    if !msg.is_empty() {
        a.push(Avp::utf8(codes::ERROR_MESSAGE, msg));
    }
    if let Some(f) = failed {
        a.push(Avp::grouped(codes::FAILED_AVP, vec![f.clone()]));
    }
    a
}

/// [`error_answer`] for a decoded request: its Session-Id, and its Proxy-Info AVPs copied
/// in order (RFC 6733 §6.2).
pub fn error_answer_to(
    req: &Message,
    local: &LocalIdentity,
    rc: ResultCode,
    failed: Option<&Avp>,
    msg: &str,
) -> Message {
    let mut a = error_answer(
        &req.header,
        req.find(codes::SESSION_ID),
        local,
        rc,
        failed,
        msg,
    );
    a.finish_answer(req);
    a
}

/// The Session-Id of a message that failed to decode, when it is the first AVP and its
/// own header is sound (RFC 6733 §8.8 puts it first), so that an error answer can still
/// carry it. Reads only within `frame`; never panics.
pub fn sniff_session_id(frame: &[u8]) -> Option<Avp> {
    let (flags, text) = raw_session_id(frame)?;
    Some(Avp {
        code: codes::SESSION_ID.code,
        flags,
        vendor: None,
        value: Value::Utf8String(text.into()),
    })
}

/// The M bit and text of a leading Session-Id AVP of `frame` (see [`sniff_session_id`]).
fn raw_session_id(frame: &[u8]) -> Option<(u8, &str)> {
    let body = frame.get(HEADER_LEN..)?;
    let code = u32::from_be_bytes(body.get(0..4)?.try_into().ok()?);
    let flags = *body.get(4)?;
    let len = u32::from_be_bytes([0, *body.get(5)?, *body.get(6)?, *body.get(7)?]) as usize;
    if code != codes::SESSION_ID.code || flags & 0x80 != 0 || len < 8 {
        return None;
    }
    let text = std::str::from_utf8(body.get(8..len)?).ok()?;
    Some((flags & AVP_FLAG_M, text))
}

/// A protocol-error answer (3xxx, E bit), such as 3004 DIAMETER_TOO_BUSY, built from a
/// request's raw octets alone: its header and, when it is the first AVP, its Session-Id.
/// Everything else is encoded once, in [`QuickAnswer::new`]. The octets are those of
/// [`error_answer`] with [`sniff_session_id`], for a fraction of the work, so that a server
/// turning requests away under overload spends little on each.
#[derive(Debug, Clone)]
pub struct QuickAnswer {
    /// The encoded AVPs that follow the Session-Id.
    tail: Vec<u8>,
}

impl QuickAnswer {
    /// The answer with Result-Code `rc` (a protocol error, 3xxx) and Error-Message `msg`.
    pub fn new(local: &LocalIdentity, rc: ResultCode, msg: &str) -> Self {
        debug_assert!(rc.is_protocol_error(), "QuickAnswer is for 3xxx answers");
        let h = Header {
            version: 1,
            length: 0,
            flags: 0,
            command: CommandCode(0),
            application: ApplicationId(0),
            hop_by_hop: 0,
            end_to_end: 0,
        };
        let whole = error_answer(&h, None, local, rc, None, msg).encode();
        QuickAnswer {
            tail: whole[HEADER_LEN..].to_vec(),
        }
    }

    /// The encoded answer to the request in `frame` (one complete frame; only its header
    /// and leading Session-Id are read); `None` when `frame` is shorter than a header.
    pub fn answer(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let hdr = frame.get(..HEADER_LEN)?;
        let sid = raw_session_id(frame);
        let sid_len = sid.map_or(0, |(_, t)| (8 + t.len()).div_ceil(4) * 4);
        let total = HEADER_LEN + sid_len + self.tail.len();
        let mut out = Vec::with_capacity(total);
        out.push(1);
        out.extend_from_slice(&(total as u32).to_be_bytes()[1..]);
        out.push((hdr[4] & FLAG_P) | FLAG_E);
        // Command Code, Application-Id, Hop-by-Hop and End-to-End Identifiers as received.
        out.extend_from_slice(&hdr[5..HEADER_LEN]);
        if let Some((flags, text)) = sid {
            out.extend_from_slice(&codes::SESSION_ID.code.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&((8 + text.len()) as u32).to_be_bytes()[1..]);
            out.extend_from_slice(text.as_bytes());
            out.resize(HEADER_LEN + sid_len, 0);
        }
        out.extend_from_slice(&self.tail);
        Some(out)
    }
}

/// Why a request cannot go to the application, with the answer to send instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The Result-Code of `answer`.
    pub result_code: ResultCode,
    /// The answer to send.
    pub answer: Message,
}

/// The checks a non-base request meets before the application sees it, in this order
/// (RFC 6733 §6.1 request routing, §7.1):
///
/// 1. Application-Id not served: 3007 DIAMETER_APPLICATION_UNSUPPORTED (E bit);
/// 2. command not defined for the application in the dictionary: 3001
///    DIAMETER_COMMAND_UNSUPPORTED (E bit);
/// 3. Destination-Host present and not this host: 3002 DIAMETER_UNABLE_TO_DELIVER (E bit;
///    this node does not relay);
/// 4. Destination-Realm present and not this realm: 3003 DIAMETER_REALM_NOT_SERVED (E bit);
/// 5. [`validate()`] (unknown M-bit AVPs 5001, enumerations 5004, grammar 5005/5008/5009),
///    answered with Failed-AVP and without the E bit.
///
/// # Errors
/// The [`Rejection`] to send back.
pub fn check_request(
    req: &Message,
    dict: &Dictionary,
    app_ids: &[u32],
    local: &LocalIdentity,
) -> Result<(), Box<Rejection>> {
    let reject = |rc: ResultCode, failed: Option<&Avp>, msg: &str| {
        Box::new(Rejection {
            result_code: rc,
            answer: error_answer_to(req, local, rc, failed, msg),
        })
    };
    let h = &req.header;
    if !app_ids.contains(&h.application.0) {
        return Err(reject(
            ResultCode::DIAMETER_APPLICATION_UNSUPPORTED,
            None,
            &format!("application {} is not supported", h.application.0),
        ));
    }
    let known = dict
        .command(h.command.0, h.application.0)
        .is_some_and(|c| c.application == h.application.0);
    if !known {
        return Err(reject(
            ResultCode::DIAMETER_COMMAND_UNSUPPORTED,
            None,
            &format!(
                "command {} is not supported in application {}",
                h.command.0, h.application.0
            ),
        ));
    }
    if let Some(dh) = req.find(codes::DESTINATION_HOST) {
        if !dh
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(&local.origin_host))
        {
            return Err(reject(
                ResultCode::DIAMETER_UNABLE_TO_DELIVER,
                Some(dh),
                "Destination-Host is not this host, and this host does not relay",
            ));
        }
    }
    if let Some(dr) = req.find(codes::DESTINATION_REALM) {
        if !dr
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(&local.origin_realm))
        {
            return Err(reject(
                ResultCode::DIAMETER_REALM_NOT_SERVED,
                Some(dr),
                "Destination-Realm is not served by this host",
            ));
        }
    }
    validate(req, dict).map_err(|e| reject(e.result_code(), e.failed_avp(), &e.to_string()))
}
