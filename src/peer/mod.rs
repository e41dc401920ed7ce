//! The Diameter base protocol between this HSS and one connected peer, sans-IO: the
//! responder side of the peer state machine (RFC 6733 §5.6), capabilities exchange
//! (§5.3), watchdog (§5.5, RFC 3539), disconnect (§5.4), the error answers of §7, and the
//! allowlist behind DIAMETER_UNKNOWN_PEER.
//!
//! Decoded messages go in, answers and decisions ([`Disposition`]) come out; the
//! [`crate::server`] owns the socket, the clock and the tasks.
//!
//! - [`base`]: building CEA, DWR/DWA, DPR/DPA and error answers; pre-application checks.
//! - [`allow`]: the allowlist ([`Allowlist`], [`IpNet`]).
//! - [`watchdog`]: the RFC 3539 watchdog with injected time.
//!
//! Must not depend on: tokio (no `tokio::net`, `tokio::io`, timers), sockets, the store,
//! the Cx layer.

pub mod allow;
pub mod base;
pub mod watchdog;

use std::net::IpAddr;
use std::sync::Arc;

pub use allow::{AllowEntry, Allowlist, IpNet, IpNetError};
pub use base::{check_request, error_answer, error_answer_to, DisconnectCause, Rejection};
pub use watchdog::{Watchdog, WatchdogAction, WatchdogState};

use crate::codec::validate;
use crate::codec::{codes, Avp, CommandCode, DecodeError, FrameError, Header, Message, ResultCode};
use crate::dict::Dictionary;

/// Who this node is, as told to peers in CEA, DWR/DWA, DPR/DPA and error answers
/// (RFC 6733 §5.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIdentity {
    /// Origin-Host (our FQDN).
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values for the CEA; when empty, the local address of each
    /// connection is advertised instead (the CEA grammar requires at least one).
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id of the implementation (RFC 6733 §5.3.3). sichss has no IANA Private
    /// Enterprise Number, so it sends 0 ("Reserved"), as freeDiameter does; this is not
    /// the 3GPP vendor id (10415), which goes into Supported-Vendor-Id and the VSAI.
    pub vendor_id: u32,
    /// Product-Name (`"sichss"`).
    pub product_name: String,
    /// Firmware-Revision: the crate version as `major*10000 + minor*100 + patch`.
    pub firmware_revision: u32,
    /// Origin-State-Id (RFC 6733 §8.16): must grow on every restart; [`LocalIdentity::new`]
    /// uses the start time in Unix seconds.
    pub origin_state_id: u32,
}

impl LocalIdentity {
    /// An identity with the defaults described on each field.
    pub fn new(origin_host: impl Into<String>, origin_realm: impl Into<String>) -> Self {
        let v = |s: &str| s.parse::<u32>().unwrap_or(0);
        let firmware_revision = v(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
            + v(env!("CARGO_PKG_VERSION_MINOR")) * 100
            + v(env!("CARGO_PKG_VERSION_PATCH"));
        let origin_state_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        LocalIdentity {
            origin_host: origin_host.into(),
            origin_realm: origin_realm.into(),
            host_ip_addresses: Vec::new(),
            vendor_id: 0,
            product_name: "sichss".to_owned(),
            firmware_revision,
            origin_state_id,
        }
    }
}

/// What the peer layer needs to decide about a connection: who we are, whom we admit, and
/// the applications we serve (Cx: `[16777216]`).
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// Our identity.
    pub local: LocalIdentity,
    /// Peers admitted on CER.
    pub allowlist: Allowlist,
    /// Application ids served (advertised in the CEA, checked on every request).
    pub application_ids: Vec<u32>,
}

/// The connected peer as identified by its CER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Origin-Host of the CER.
    pub origin_host: String,
    /// Origin-Realm of the CER.
    pub origin_realm: String,
}

/// Responder-side peer states (RFC 6733 §5.6). This node never initiates connections, so
/// Wait-Conn-Ack, Wait-I-CEA and election do not occur.
///
/// ```text
/// Closed --R-Conn (accept)--> WaitCer --CER accepted / CEA 2001--> Open
/// WaitCer --CER refused / CEA 3010 or 5010, or anything else--> Closed
/// Open --DPR / DPA--> Closing --> Closed        Open --shutdown / DPR sent--> Closing
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// No connection.
    Closed,
    /// Connected, waiting for the CER (R-Conn-CER).
    WaitCer,
    /// Capabilities exchanged (R-Open): requests flow both ways.
    Open,
    /// A DPR was sent or received, or the connection is being torn down.
    Closing,
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerState::Closed => "closed",
            PeerState::WaitCer => "wait-cer",
            PeerState::Open => "open",
            PeerState::Closing => "closing",
        })
    }
}

/// What the connection must do with a received message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Send this answer; carry on.
    Answer(Message),
    /// The CER was accepted: register the peer, then send the CEA. The state is now Open.
    Opened {
        /// The CEA (Result-Code 2001).
        cea: Message,
        /// The peer as its CER named it.
        peer: PeerIdentity,
    },
    /// Stop reading, let requests in flight finish, send this answer, then close.
    AnswerAndClose(Message),
    /// Hand the request to the application (after [`check_request`]).
    Application,
    /// Nothing to send (e.g. an undecodable answer).
    Ignore,
    /// Close without answering.
    Close,
}

/// The sans-IO responder for one accepted connection (RFC 6733 §5.6, responder side).
#[derive(Debug, Clone)]
pub struct Responder {
    policy: Arc<PeerPolicy>,
    source: IpAddr,
    local_addr: IpAddr,
    state: PeerState,
    peer: Option<PeerIdentity>,
}

impl Responder {
    /// A responder for a connection just accepted from `source` on local address
    /// `local_addr` (state WaitCer).
    pub fn new(policy: Arc<PeerPolicy>, source: IpAddr, local_addr: IpAddr) -> Self {
        Responder {
            policy,
            source: source.to_canonical(),
            local_addr: local_addr.to_canonical(),
            state: PeerState::WaitCer,
            peer: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// The peer, once its CER was accepted.
    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// The policy this responder applies.
    pub fn policy(&self) -> &PeerPolicy {
        &self.policy
    }

    /// We sent a DPR or are shutting down: Open → Closing.
    pub fn start_closing(&mut self) {
        if self.state != PeerState::Closed {
            self.state = PeerState::Closing;
        }
    }

    /// The transport is gone.
    pub fn on_closed(&mut self) {
        self.state = PeerState::Closed;
    }

    fn local(&self) -> &LocalIdentity {
        &self.policy.local
    }

    fn host_ips(&self) -> Vec<IpAddr> {
        if self.policy.local.host_ip_addresses.is_empty() {
            vec![self.local_addr]
        } else {
            self.policy.local.host_ip_addresses.clone()
        }
    }

    fn close_with(&mut self, answer: Message) -> Disposition {
        self.state = PeerState::Closing;
        Disposition::AnswerAndClose(answer)
    }

    /// A decoded request arrived. Base commands (CER, DWR, DPR) are answered here, each
    /// checked against its grammar first; anything else before a CER closes the
    /// connection (answered with 3010); other requests in Open or Closing go to the
    /// application.
    pub fn on_request(&mut self, req: &Message, dict: &Dictionary) -> Disposition {
        let cmd = req.header.command;
        match self.state {
            PeerState::Closed => Disposition::Close,
            PeerState::WaitCer if cmd == CommandCode::CAPABILITIES_EXCHANGE => {
                self.process_cer(req, dict)
            }
            PeerState::WaitCer => {
                let a = error_answer_to(
                    req,
                    self.local(),
                    ResultCode::DIAMETER_UNKNOWN_PEER,
                    None,
                    "the first message on a connection must be a CER (RFC 6733 §5.6)",
                );
                self.close_with(a)
            }
            PeerState::Open | PeerState::Closing => match cmd {
                CommandCode::CAPABILITIES_EXCHANGE => match self.process_cer(req, dict) {
                    // A repeated CER is answered again (R-Open, R-Rcv-CER); the
                    // peer keeps the identity of its first CER.
                    Disposition::Opened { cea, .. } => Disposition::Answer(cea),
                    d => d,
                },
                CommandCode::DEVICE_WATCHDOG => match validate(req, dict) {
                    Ok(()) => Disposition::Answer(base::watchdog_answer(req, self.local())),
                    Err(e) => Disposition::Answer(error_answer_to(
                        req,
                        self.local(),
                        e.result_code(),
                        e.failed_avp(),
                        &e.to_string(),
                    )),
                },
                CommandCode::DISCONNECT_PEER => {
                    // Even a malformed DPR ends the connection: the peer wants to leave.
                    let a = base::disconnect_answer(req, self.local());
                    self.close_with(a)
                }
                _ => Disposition::Application,
            },
        }
    }

    /// RFC 6733 §5.3: validate (tolerating a missing Host-IP-Address, which Kamailio's cdp
    /// sometimes omits), then the allowlist (3010, E bit), then a common application
    /// (5010); each refusal closes the connection.
    fn process_cer(&mut self, cer: &Message, dict: &Dictionary) -> Disposition {
        let host_ips = self.host_ips();
        let apps = self.policy.application_ids.clone();
        let probe;
        let checked = if cer.find(codes::HOST_IP_ADDRESS).is_none() {
            let mut p = cer.clone();
            p.push(Avp::address(codes::HOST_IP_ADDRESS, self.source));
            probe = p;
            &probe
        } else {
            cer
        };
        if let Err(e) = validate(checked, dict) {
            let a = base::capabilities_answer(
                cer,
                self.local(),
                &host_ips,
                &apps,
                e.result_code(),
                e.failed_avp(),
                Some(&e.to_string()),
            );
            return self.close_with(a);
        }
        let origin_host = cer.str(codes::ORIGIN_HOST).unwrap_or_default().to_owned();
        let origin_realm = cer.str(codes::ORIGIN_REALM).unwrap_or_default().to_owned();
        if !self.policy.allowlist.admits(&origin_host, self.source) {
            let a = error_answer_to(
                cer,
                self.local(),
                ResultCode::DIAMETER_UNKNOWN_PEER,
                None,
                &format!("peer {origin_host} from {} is not allowed", self.source),
            );
            return self.close_with(a);
        }
        if !base::has_common_application(cer, &apps) {
            let a = base::capabilities_answer(
                cer,
                self.local(),
                &host_ips,
                &apps,
                ResultCode::DIAMETER_NO_COMMON_APPLICATION,
                None,
                Some("no common application: this node serves Cx (16777216, vendor 10415)"),
            );
            return self.close_with(a);
        }
        let cea = base::capabilities_answer(
            cer,
            self.local(),
            &host_ips,
            &apps,
            ResultCode::DIAMETER_SUCCESS,
            None,
            None,
        );
        if self.state == PeerState::WaitCer {
            self.state = PeerState::Open;
            self.peer = Some(PeerIdentity {
                origin_host,
                origin_realm,
            });
        }
        Disposition::Opened {
            cea,
            peer: self.peer.clone().unwrap_or(PeerIdentity {
                origin_host: String::new(),
                origin_realm: String::new(),
            }),
        }
    }

    /// A complete frame did not decode. A request is answered with the codec's
    /// Result-Code and Failed-AVP (E bit only for 3xxx); the connection is closed when
    /// the error breaks framing (5011, 5015) or no CER was accepted yet. An undecodable
    /// answer is dropped.
    pub fn on_decode_error(&mut self, err: &DecodeError, frame: &[u8]) -> Disposition {
        let fatal = err.error.is_fatal_for_connection() || self.state == PeerState::WaitCer;
        let Some(h) = err.header.filter(Header::is_request) else {
            return if fatal {
                self.state = PeerState::Closing;
                Disposition::Close
            } else {
                Disposition::Ignore
            };
        };
        let a = error_answer(
            &h,
            base::sniff_session_id(frame).as_ref(),
            self.local(),
            err.error.result_code(),
            err.error.failed_avp(),
            &err.error.to_string(),
        );
        if fatal {
            self.close_with(a)
        } else {
            Disposition::Answer(a)
        }
    }

    /// The byte stream cannot be framed any more ([`crate::codec::check_frame`]): answer a
    /// request with 5011 (version) or 5015 (length, including over the size limit), then
    /// close (RFC 6733 §7.1.5).
    pub fn on_frame_error(&mut self, h: &Header, err: FrameError) -> Disposition {
        if !h.is_request() {
            self.state = PeerState::Closing;
            return Disposition::Close;
        }
        let rc = match err {
            FrameError::UnsupportedVersion(_) => ResultCode::DIAMETER_UNSUPPORTED_VERSION,
            _ => ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH,
        };
        let a = error_answer(h, None, self.local(), rc, None, &err.to_string());
        self.close_with(a)
    }
}

#[cfg(test)]
mod tests;
