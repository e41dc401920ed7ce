//! The Cx application (TS 29.228 §6, TS 29.229 §6): a function from a decoded request and
//! the store to an answer, one file per command.
//!
//! The method this HSS exists for (patent CN103701828A): every request's User-Name is an
//! IMPI that may carry a Service Identification Code. [`resolve`] strips the SIC to find
//! the subscriber, checks that the subscriber has subscribed to that SIC, and every
//! procedure then reads and writes the state of that one service's (IMPI, IMPU) pairs
//! only; sibling services stay exactly as they were. A plain IMPI is the subscriber's
//! [`PLAIN_SIC`](crate::store::PLAIN_SIC) service, handled as standard IMS.
//!
//! - [`uar`] UAR/UAA, [`sar`] SAR/SAA, [`lir`] LIR/LIA, [`mar`] MAR/MAA: received.
//! - [`rtr`] RTR/RTA, [`ppr`] PPR/PPA: sent by the HSS (built here, sent by the server).
//! - [`user_data`]: the IMSSubscription XML (TS 29.228 Annex E).
//!
//! Must not depend on: sled, tokio networking, the server (it sees only `Message`s and the
//! `SubscriberStore` trait).

pub mod error;
pub mod lir;
pub mod mar;
pub mod ppr;
pub mod requests;
pub mod resolve;
pub mod rtr;
pub mod sar;
pub mod uar;
pub mod user_data;

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{codes, Avp, AvpKey, CommandCode, Message, ProtocolError, VENDOR_3GPP};
use crate::store::{SicRegistry, SubscriberStore};

pub use error::{CxError, Outcome};

/// Charging function addresses sent in Charging-Information (TS 29.229 §6.3.19).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChargingInfo {
    /// Primary-Event-Charging-Function-Name.
    #[serde(default)]
    pub primary_ecf: Option<String>,
    /// Secondary-Event-Charging-Function-Name.
    #[serde(default)]
    pub secondary_ecf: Option<String>,
    /// Primary-Charging-Collection-Function-Name.
    #[serde(default)]
    pub primary_ccf: Option<String>,
    /// Secondary-Charging-Collection-Function-Name.
    #[serde(default)]
    pub secondary_ccf: Option<String>,
}

/// What the Cx application needs to know about this HSS.
#[derive(Debug, Clone)]
pub struct CxConfig {
    /// Our Origin-Host.
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// S-CSCF named in Server-Capabilities when none is assigned (Kamailio's I-CSCF needs a
    /// routable Server-Name there).
    pub default_scscf: String,
    /// Mandatory capabilities advertised in Server-Capabilities.
    pub mandatory_capabilities: Vec<u32>,
    /// Optional capabilities advertised in Server-Capabilities.
    pub optional_capabilities: Vec<u32>,
    /// Operator's SIC → service name registry.
    pub sics: SicRegistry,
    /// Keep the S-CSCF name on *_STORE_SERVER_NAME de-registrations (answer 2001 and mark
    /// UNREGISTERED) rather than answering 2004.
    pub keep_server_name: bool,
    /// Charging-Information for SAA and PPR, when configured.
    pub charging: Option<ChargingInfo>,
    /// Most AKA vectors handed out in one MAA.
    pub max_auth_items: u32,
}

impl Default for CxConfig {
    fn default() -> Self {
        CxConfig {
            origin_host: "hss.ims.mnc001.mcc460.3gppnetwork.org".into(),
            origin_realm: "ims.mnc001.mcc460.3gppnetwork.org".into(),
            default_scscf: "sip:127.0.0.1:6060".into(),
            mandatory_capabilities: Vec::new(),
            optional_capabilities: Vec::new(),
            sics: SicRegistry::default(),
            keep_server_name: true,
            charging: None,
            max_auth_items: 5,
        }
    }
}

/// The Cx application over a store.
pub struct CxApp<S> {
    /// The subscriber store.
    pub store: Arc<S>,
    /// Configuration.
    pub config: CxConfig,
    /// Origin-Host and Origin-Realm of every answer, built once from `config`: their
    /// values are static, so an answer takes them without an allocation or a copy (two of
    /// the thirteen allocations of a SAR refresh or a LIR). A change to `config` after
    /// [`CxApp::new`] does not reach them.
    origin: (Avp, Avp),
}

impl<S> Clone for CxApp<S> {
    fn clone(&self) -> Self {
        CxApp {
            store: self.store.clone(),
            config: self.config.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// `text` for the rest of the process: a CxApp's own identities, made once per CxApp (one
/// per server) so that answers share them without a reference count.
fn leaked(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// Cx application id (TS 29.229 §5).
pub const CX_APPLICATION_ID: u32 = 16777216;

impl<S: SubscriberStore> CxApp<S> {
    /// A Cx application over `store`.
    pub fn new(store: Arc<S>, config: CxConfig) -> Self {
        let origin = (
            Avp::identity_static(codes::ORIGIN_HOST, leaked(&config.origin_host)),
            Avp::identity_static(codes::ORIGIN_REALM, leaked(&config.origin_realm)),
        );
        CxApp {
            store,
            config,
            origin,
        }
    }

    /// Answers one Cx request. Never fails: every error becomes an answer with its
    /// Result-Code or Experimental-Result (and Failed-AVP where one applies), and one log
    /// line at info gives the command, the IMPI, the result and the latency.
    pub async fn handle(&self, req: &Message) -> Message {
        // The log line's fields are gathered only when it is written (not at `warn`).
        let log = tracing::enabled!(tracing::Level::INFO);
        let started = log.then(Instant::now);
        let cmd = req.header.command;
        let result = match cmd {
            CommandCode::USER_AUTHORIZATION => uar::handle(self, req).await,
            CommandCode::SERVER_ASSIGNMENT => sar::handle(self, req).await,
            CommandCode::LOCATION_INFO => lir::handle(self, req).await,
            CommandCode::MULTIMEDIA_AUTH => mar::handle(self, req).await,
            _ => Err(CxError::UnableToComply(format!(
                "command {} is not served by the HSS",
                cmd.0
            ))),
        };
        let Some(started) = started else {
            return match result {
                Ok((answer, _)) => answer,
                Err(e) => self.error_answer(req, &e),
            };
        };
        let name = command_abbrev(cmd);
        let user = req
            .str(codes::USER_NAME)
            .or_else(|| req.str(codes::PUBLIC_IDENTITY))
            .unwrap_or("-");
        let micros = started.elapsed().as_micros();
        match result {
            Ok((answer, outcome)) => {
                log_request(name, user, outcome.code(), micros, None);
                answer
            }
            Err(e) => {
                log_request(name, user, e.outcome().code(), micros, Some(&e));
                self.error_answer(req, &e)
            }
        }
    }

    /// The common part of every Cx answer: Session-Id, Vendor-Specific-Application-Id,
    /// Auth-Session-State NO_STATE_MAINTAINED, Origin-Host, Origin-Realm, and the result.
    pub fn answer(&self, req: &Message, outcome: Outcome) -> Message {
        let mut a = Message::answer_to(req);
        a.push(vsai());
        match outcome {
            Outcome::Base(rc) => a.set_result(rc),
            Outcome::Experimental(e) => a.set_experimental(e),
        }
        a.push(Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
        a.push(self.origin.0.clone());
        a.push(self.origin.1.clone());
        a
    }

    /// The answer to a failed request.
    pub fn error_answer(&self, req: &Message, e: &CxError) -> Message {
        let mut a = self.answer(req, e.outcome());
        if let CxError::IdentityAlreadyRegistered { server_name } = e {
            a.push(Avp::utf8(codes::SERVER_NAME, server_name));
        }
        if let Some(f) = e.failed_avp() {
            a.push(Avp::grouped(codes::FAILED_AVP, vec![f.clone()]));
        }
        a.finish_answer(req);
        a
    }

    /// Server-Capabilities naming the default S-CSCF (TS 29.228 §6.7).
    pub fn server_capabilities(&self) -> Avp {
        let mut m: Vec<Avp> = self
            .config
            .mandatory_capabilities
            .iter()
            .map(|c| Avp::u32(codes::MANDATORY_CAPABILITY, *c))
            .collect();
        m.extend(
            self.config
                .optional_capabilities
                .iter()
                .map(|c| Avp::u32(codes::OPTIONAL_CAPABILITY, *c)),
        );
        m.push(Avp::utf8(codes::SERVER_NAME, &self.config.default_scscf));
        Avp::grouped(codes::SERVER_CAPABILITIES, m)
    }
}

/// Vendor-Specific-Application-Id {10415, Cx}.
pub fn vsai() -> Avp {
    Avp::grouped(
        codes::VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(codes::VENDOR_ID, VENDOR_3GPP),
            Avp::u32(codes::AUTH_APPLICATION_ID, CX_APPLICATION_ID),
        ],
    )
}

/// The line per request at info (`cx cmd=… user=… result=… micros=…`, and `error=…`):
/// straight into the log's buffer when `serve`'s log is installed ([`crate::log::direct`],
/// the same line without `tracing`'s formatter), through `tracing` otherwise.
fn log_request(name: &str, user: &str, result: u32, micros: u128, error: Option<&CxError>) {
    use crate::log::Value;
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    let all = [
        ("cmd", Value::Text(name)),
        ("user", Value::Text(user)),
        ("result", Value::U64(result.into())),
        ("micros", Value::U64(micros)),
        (
            "error",
            error.map_or(Value::Text(""), |e| Value::Display(e)),
        ),
    ];
    // The error field only when there is an error.
    let fields = if error.is_some() { &all[..] } else { &all[..4] };
    let written = crate::log::direct(tracing::Level::INFO, module_path!(), "cx", fields);
    if written {
        return;
    }
    match error {
        None => tracing::info!(cmd = name, user, result, micros, "cx"),
        Some(e) => tracing::info!(cmd = name, user, result, micros, error = %e, "cx"),
    }
}

/// Short name of a Cx command for logs and metrics.
pub fn command_abbrev(cmd: CommandCode) -> &'static str {
    match cmd {
        CommandCode::USER_AUTHORIZATION => "UAR",
        CommandCode::SERVER_ASSIGNMENT => "SAR",
        CommandCode::LOCATION_INFO => "LIR",
        CommandCode::MULTIMEDIA_AUTH => "MAR",
        CommandCode::REGISTRATION_TERMINATION => "RTR",
        CommandCode::PUSH_PROFILE => "PPR",
        _ => "other",
    }
}

/// The zero-filled Failed-AVP example of a missing AVP (RFC 6733 §7.5).
pub(crate) fn missing(key: AvpKey, name: &str, min_len: usize) -> CxError {
    CxError::Protocol(ProtocolError::MissingAvp {
        name: name.to_string(),
        code: key.code,
        vendor: key.vendor,
        failed: Avp::zeroed(
            key.code,
            if key.mandatory { 0x40 } else { 0 },
            (key.vendor != 0).then_some(key.vendor),
            min_len,
        ),
    })
}

/// A required text AVP: missing gives 5005, empty or not text gives 5004, both with
/// Failed-AVP (TS 29.228 §6: an empty User-Name or Public-Identity is an error answer).
pub(crate) fn required_str<'m>(
    req: &'m Message,
    key: AvpKey,
    name: &str,
) -> Result<&'m str, CxError> {
    let avp = req.find(key).ok_or_else(|| missing(key, name, 0))?;
    match avp.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(invalid(avp)),
    }
}

/// A required Unsigned32/Enumerated AVP.
pub(crate) fn required_u32(req: &Message, key: AvpKey, name: &str) -> Result<u32, CxError> {
    let avp = req.find(key).ok_or_else(|| missing(key, name, 4))?;
    avp.as_u32().ok_or_else(|| invalid(avp))
}

/// 5004 DIAMETER_INVALID_AVP_VALUE for this AVP.
pub(crate) fn invalid(avp: &Avp) -> CxError {
    CxError::Protocol(ProtocolError::InvalidAvpValue {
        code: avp.code,
        vendor: avp.vendor_id(),
        failed: avp.clone(),
    })
}

/// An optional text AVP that, when present, must not be empty.
pub(crate) fn optional_str(req: &Message, key: AvpKey) -> Result<Option<&str>, CxError> {
    match req.find(key) {
        None => Ok(None),
        Some(avp) => match avp.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(Some(s)),
            _ => Err(invalid(avp)),
        },
    }
}
