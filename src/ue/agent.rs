//! The UE over UDP: REGISTER with the 3GPP initial Authorization, answering 401 challenges,
//! refreshing, de-registering and answering MESSAGEs sent to its contact (RFC 3261 §10,
//! §17.1.2 non-INVITE client transaction, §18; TS 24.229 §5.1.1).
//!
//! One [`Ue`] is one service of a phone: one private identity, one UDP socket (its
//! contact), one Call-ID kept for all its registrations. Several run side by side for the
//! services of one IMSI, each on its own port.
//!
//! The socket is read only inside the UE's own methods, so requests that arrive while a
//! REGISTER transaction is open (a MESSAGE during a refresh) are answered there and kept
//! as [`UeEvent`]s.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng as _;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::digest::{answer, Authorization, Challenge, Credentials, DigestSession, Request, Usim};
use super::error::UeError;
use super::sip::{param, uri_of, Message, StartLine};
use crate::identity::{derive_impi, home_domain, HomeNetwork, Imsi, Sic};

/// Most 401/407 answered in a row for one REGISTER: initial challenge, resync challenge,
/// and one stale nonce.
const MAX_CHALLENGES: u32 = 4;

/// SIP timers of the non-INVITE client transaction (RFC 3261 §17.1.2.2, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the first retransmission interval (500 ms).
    pub t1: Duration,
    /// T2, the largest retransmission interval (4 s).
    pub t2: Duration,
    /// Timer F, when the transaction gives up (64·T1 = 32 s).
    pub timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            timeout: Duration::from_secs(32),
        }
    }
}

/// Everything one UE (one service) needs.
#[derive(Debug, Clone)]
pub struct UeConfig {
    /// The private identity, e.g. `460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org`.
    pub impi: String,
    /// The public identity registered (To/From), e.g. `sip:+8618612345678@ims.mnc001…`.
    pub impu: String,
    /// The home network domain: Request-URI `sip:<home>` and digest realm of the initial
    /// Authorization.
    pub home_domain: String,
    /// Where requests go: the P-CSCF, here the I-CSCF (kamailio.md §7).
    pub pcscf: SocketAddr,
    /// The local UDP address to bind; its port becomes the contact (`:0` picks one).
    pub local: SocketAddr,
    /// Expires asked for in REGISTER, in seconds.
    pub expires: u32,
    /// K/OPc and/or password.
    pub credentials: Credentials,
    /// The USIM's SQN state.
    pub usim: Usim,
    /// Transaction timers.
    pub timers: Timers,
}

impl UeConfig {
    /// The identities of one service of `imsi` as a phone derives them: the SIC-tagged IMPI
    /// (`derive_impi`, CN103701828A; TS 23.003 §13.3 without a SIC) and the IMPU
    /// `sip:<msisdn>@<home domain>`. Other fields get their defaults (expires 600, local
    /// `127.0.0.1:0`, no credentials, a new USIM).
    ///
    /// # Errors
    /// [`UeError::Identity`] when the IMSI/home network do not give a valid identity.
    pub fn for_service(
        imsi: &Imsi,
        sic: Option<&Sic>,
        net: &HomeNetwork,
        msisdn: &str,
        pcscf: SocketAddr,
    ) -> Result<Self, UeError> {
        let impi = derive_impi(imsi, net, sic)?;
        let home = home_domain(imsi, net)?;
        Ok(Self {
            impi: impi.as_str().to_owned(),
            impu: format!("sip:{msisdn}@{home}"),
            home_domain: home,
            pcscf,
            local: SocketAddr::from(([127, 0, 0, 1], 0)),
            expires: 600,
            credentials: Credentials::default(),
            usim: Usim::new(0),
            timers: Timers::default(),
        })
    }
}

/// The outcome of a successful REGISTER (the 200 OK, RFC 3261 §10.3 step 8; TS 24.229
/// §5.1.1.2.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registration {
    /// The private identity.
    pub impi: String,
    /// The public identity registered.
    pub impu: String,
    /// This UE's contact URI.
    pub contact: String,
    /// Seconds granted for this contact.
    pub expires: u32,
    /// P-Associated-URI: the implicitly registered public identities.
    pub associated: Vec<String>,
    /// Service-Route URIs.
    pub service_route: Vec<String>,
    /// Every contact the registrar listed for the IMPU.
    pub contacts: Vec<String>,
}

/// Something the UE did or received, printed by `sichss ue` one per line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UeEvent {
    /// A 200 OK to REGISTER.
    Registered {
        /// The private identity.
        impi: String,
        /// The public identity.
        impu: String,
        /// Seconds granted.
        expires: u32,
        /// P-Associated-URI.
        associated: Vec<String>,
        /// Service-Route.
        service_route: Vec<String>,
        /// This UE's contact.
        contact: String,
        /// True for a re-registration of an already registered UE.
        refresh: bool,
    },
    /// The USIM refused the network's SQN and answered with AUTS (RFC 3310 §3.4).
    Resync {
        /// The private identity.
        impi: String,
        /// The SQN in the challenge.
        sqn: u64,
        /// The USIM's SQN_MS sent in AUTS.
        sqn_ms: u64,
    },
    /// A MESSAGE arrived on the contact and was answered 200.
    Message {
        /// The private identity of the UE that received it.
        impi: String,
        /// From URI.
        from: String,
        /// To URI.
        to: String,
        /// Content-Type, if any.
        content_type: Option<String>,
        /// The body (lossy UTF-8).
        body: String,
    },
    /// A 200 OK to REGISTER with Expires 0.
    Deregistered {
        /// The private identity.
        impi: String,
        /// The public identity.
        impu: String,
    },
    /// A MESSAGE sent by `sichss ue message` got a final response.
    MessageSent {
        /// The Request-URI.
        to: String,
        /// The final status code.
        status: u16,
    },
    /// A failure; `status` is the SIP status when the network refused.
    Error {
        /// The private identity, when known.
        impi: Option<String>,
        /// The SIP status code (e.g. 403), when the network answered.
        status: Option<u16>,
        /// What failed.
        reason: String,
    },
}

impl fmt::Display for UeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UeEvent::Registered {
                impi,
                impu,
                expires,
                associated,
                service_route,
                contact,
                refresh,
            } => write!(
                f,
                "{} {impi} as {impu} for {expires} s; contact {contact}; associated [{}]; service-route [{}]",
                if *refresh { "re-registered" } else { "registered" },
                associated.join(", "),
                service_route.join(", ")
            ),
            UeEvent::Resync { impi, sqn, sqn_ms } => write!(
                f,
                "resync {impi}: network SQN {sqn:#014x} not fresh, sent AUTS with SQN_MS {sqn_ms:#014x}"
            ),
            UeEvent::Message {
                impi,
                from,
                to,
                body,
                ..
            } => write!(f, "message for {impi} from {from} to {to}: {body}"),
            UeEvent::Deregistered { impi, impu } => write!(f, "deregistered {impi} ({impu})"),
            UeEvent::MessageSent { to, status } => write!(f, "message to {to}: {status}"),
            UeEvent::Error {
                impi,
                status,
                reason,
            } => {
                write!(f, "error")?;
                if let Some(i) = impi {
                    write!(f, " {i}")?;
                }
                if let Some(s) = status {
                    write!(f, " (status {s})")?;
                }
                write!(f, ": {reason}")
            }
        }
    }
}

/// When to re-register after a registration granted for `expires` seconds
/// (TS 24.229 §5.1.1.4.1): 600 s before expiry when it was granted for more than 1200 s,
/// otherwise when half of it has passed. At least one second.
pub fn refresh_delay(expires: u32) -> Duration {
    let secs = if expires > 1200 {
        expires - 600
    } else {
        expires / 2
    };
    Duration::from_secs(u64::from(secs.max(1)))
}

/// One UE: one service's registration over one UDP socket.
pub struct Ue {
    cfg: UeConfig,
    socket: UdpSocket,
    local: SocketAddr,
    contact: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The last answered challenge, reused (nc + 1) on the next REGISTER.
    session: Option<DigestSession>,
    registration: Option<Registration>,
    events: VecDeque<UeEvent>,
    /// (Call-ID, CSeq) of MESSAGEs already reported, to answer retransmissions only once.
    seen: VecDeque<(String, String)>,
    buf: Vec<u8>,
}

impl fmt::Debug for Ue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ue")
            .field("impi", &self.cfg.impi)
            .field("local", &self.local)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

fn random_hex(octets: usize) -> String {
    let mut b = vec![0u8; octets];
    rand::thread_rng().fill(&mut b[..]);
    hex::encode(b)
}

impl Ue {
    /// Binds the UDP socket; the contact is `sip:<user>@<bound address>`, where user is the
    /// IMPU's user part.
    ///
    /// # Errors
    /// [`UeError::Bind`] when the local address cannot be bound.
    pub async fn bind(cfg: UeConfig) -> Result<Self, UeError> {
        let socket = UdpSocket::bind(cfg.local)
            .await
            .map_err(|source| UeError::Bind {
                addr: cfg.local,
                source,
            })?;
        let local = socket.local_addr().map_err(|source| UeError::Bind {
            addr: cfg.local,
            source,
        })?;
        let user = cfg
            .impu
            .strip_prefix("sip:")
            .or_else(|| cfg.impu.strip_prefix("tel:"))
            .and_then(|r| r.split(['@', ';']).next())
            .filter(|u| !u.is_empty())
            .unwrap_or("ue")
            .to_owned();
        Ok(Self {
            contact: format!("sip:{user}@{local}"),
            call_id: format!("{}@{}", random_hex(12), local.ip()),
            from_tag: random_hex(6),
            cseq: 0,
            session: None,
            registration: None,
            events: VecDeque::new(),
            seen: VecDeque::new(),
            buf: vec![0u8; 65_535],
            cfg,
            socket,
            local,
        })
    }

    /// The bound local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// This UE's contact URI.
    pub fn contact(&self) -> &str {
        &self.contact
    }

    /// The private identity.
    pub fn impi(&self) -> &str {
        &self.cfg.impi
    }

    /// The public identity.
    pub fn impu(&self) -> &str {
        &self.cfg.impu
    }

    /// The Call-ID used for every REGISTER of this UE.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The current registration, if registered.
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// The USIM's state (SQN_MS).
    pub fn usim(&self) -> &Usim {
        &self.cfg.usim
    }

    /// Registers, or refreshes the registration (same Call-ID, CSeq + 1), answering
    /// challenges (RFC 3261 §10.2, §22.2; TS 24.229 §5.1.1.2, §5.1.1.4).
    ///
    /// Queues a [`UeEvent::Registered`] (and [`UeEvent::Resync`] when the USIM asked for
    /// resynchronisation).
    ///
    /// # Errors
    /// [`UeError::Rejected`] for a final non-2xx answer (e.g. 403 for an unsubscribed SIC),
    /// [`UeError::Timeout`], and the challenge errors of [`answer`].
    pub async fn register(&mut self) -> Result<Registration, UeError> {
        let refresh = self.registration.is_some();
        let resp = self.register_with(self.cfg.expires).await?;
        let reg = self.registration_from(&resp);
        self.events.push_back(UeEvent::Registered {
            impi: reg.impi.clone(),
            impu: reg.impu.clone(),
            expires: reg.expires,
            associated: reg.associated.clone(),
            service_route: reg.service_route.clone(),
            contact: reg.contact.clone(),
            refresh,
        });
        self.registration = Some(reg.clone());
        Ok(reg)
    }

    /// De-registers this UE's contact: REGISTER with `Expires: 0`, authenticated again when
    /// challenged (RFC 3261 §10.2.2; TS 24.229 §5.1.1.6). Only this contact is removed, so
    /// other services sharing the IMPU stay registered.
    ///
    /// Queues a [`UeEvent::Deregistered`].
    ///
    /// # Errors
    /// As [`Ue::register`].
    pub async fn deregister(&mut self) -> Result<(), UeError> {
        self.register_with(0).await?;
        self.registration = None;
        self.events.push_back(UeEvent::Deregistered {
            impi: self.cfg.impi.clone(),
            impu: self.cfg.impu.clone(),
        });
        Ok(())
    }

    /// Sends an out-of-dialog MESSAGE (RFC 3428) to `to` through the P-CSCF / I-CSCF and
    /// returns the final status and reason phrase. `from` is the From URI.
    ///
    /// # Errors
    /// [`UeError::Timeout`] or [`UeError::Io`]; a non-2xx answer is returned as a status.
    pub async fn send_message(
        &mut self,
        from: &str,
        to: &str,
        content_type: &str,
        body: &str,
    ) -> Result<(u16, String), UeError> {
        self.cseq += 1;
        let req = Message::request("MESSAGE", to)
            .with("Via", self.via())
            .with("Max-Forwards", "70")
            .with("From", format!("<{from}>;tag={}", self.from_tag))
            .with("To", format!("<{to}>"))
            .with("Call-ID", format!("{}@{}", random_hex(12), self.local.ip()))
            .with("CSeq", format!("{} MESSAGE", self.cseq))
            .with("User-Agent", "sichss-ue")
            .with_body(content_type, body.as_bytes());
        let resp = self.transact(&req).await?;
        let status = resp.status().unwrap_or(0);
        self.events.push_back(UeEvent::MessageSent {
            to: to.to_owned(),
            status,
        });
        Ok((status, resp.reason().to_owned()))
    }

    /// Takes the queued events.
    pub fn drain_events(&mut self) -> Vec<UeEvent> {
        self.events.drain(..).collect()
    }

    /// The next event: a queued one, or else waits (up to `wait`, forever when `None`)
    /// for a request on the contact, answering it. Returns `None` on timeout.
    ///
    /// Cancel-safe: it can be used in `tokio::select!`.
    ///
    /// # Errors
    /// [`UeError::Io`] when the socket fails.
    pub async fn next_event(&mut self, wait: Option<Duration>) -> Result<Option<UeEvent>, UeError> {
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            let received = match deadline {
                Some(d) => {
                    match tokio::time::timeout_at(d, self.socket.recv_from(&mut self.buf)).await {
                        Ok(r) => r,
                        Err(_) => return Ok(None),
                    }
                }
                None => self.socket.recv_from(&mut self.buf).await,
            };
            let (n, from) = received.map_err(|source| UeError::Io {
                peer: self.cfg.pcscf,
                source,
            })?;
            match Message::parse(&self.buf[..n]) {
                Ok(msg) if matches!(msg.start, StartLine::Request { .. }) => {
                    self.handle_request(&msg, from).await?;
                }
                Ok(msg) => {
                    tracing::debug!(status = msg.status(), "stray response ignored");
                }
                Err(e) => tracing::debug!(%from, error = %e, "unparseable datagram ignored"),
            }
        }
    }

    fn via(&self) -> String {
        format!(
            "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
            self.local,
            random_hex(8)
        )
    }

    fn request_uri(&self) -> String {
        format!("sip:{}", self.cfg.home_domain)
    }

    /// The REGISTER for CSeq `cseq` (TS 24.229 §5.1.1.2.1).
    fn build_register(&self, cseq: u32, expires: u32, auth: &Authorization) -> Message {
        Message::request("REGISTER", &self.request_uri())
            .with("Via", self.via())
            .with("Max-Forwards", "70")
            .with("From", format!("<{}>;tag={}", self.cfg.impu, self.from_tag))
            .with("To", format!("<{}>", self.cfg.impu))
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{cseq} REGISTER"))
            .with("Contact", format!("<{}>", self.contact))
            .with("Expires", expires.to_string())
            .with("Authorization", auth.to_header_value())
            .with("Supported", "path")
            .with("Allow", "MESSAGE, OPTIONS, NOTIFY")
            .with("User-Agent", "sichss-ue")
    }

    /// REGISTER with `expires`, answering challenges, until a 2xx.
    async fn register_with(&mut self, expires: u32) -> Result<Message, UeError> {
        let uri = self.request_uri();
        let mut auth = match self.session.take() {
            // Re-registration: the last nonce again, nc + 1 (RFC 2617 §3.2.2). A network
            // that does not reuse nonces answers 401 with a new one.
            Some(s) => {
                let req = Request {
                    username: &self.cfg.impi,
                    method: "REGISTER",
                    uri: &uri,
                };
                let a = s.next(req, &random_hex(8));
                self.session = a.session;
                a.authorization
            }
            None => Authorization::initial(&self.cfg.impi, &self.cfg.home_domain, &uri),
        };
        let mut challenges = 0;
        loop {
            self.cseq += 1;
            let req = self.build_register(self.cseq, expires, &auth);
            let resp = self.transact(&req).await?;
            let status = resp.status().unwrap_or(0);
            match status {
                200..=299 => return Ok(resp),
                401 | 407 => {
                    challenges += 1;
                    if challenges > MAX_CHALLENGES {
                        return Err(UeError::TooManyChallenges {
                            method: "REGISTER".into(),
                            count: challenges,
                        });
                    }
                    let name = if status == 401 {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    };
                    let value = resp
                        .headers_named(name)
                        .find(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"))
                        .ok_or_else(|| UeError::BadChallenge {
                            what: format!("{status} without a Digest {name} header"),
                        })?;
                    let challenge = Challenge::parse(value)?;
                    if challenges > 1 {
                        // Challenged again right after answering a challenge. Seen with
                        // Kamailio 5.6.3 on a loaded host: the S-CSCF's 401 reaches the UE
                        // before its cdp worker marks the vector as sent, and an answer that
                        // comes back within a millisecond finds no vector and is challenged
                        // anew (tests/kamailio/README.md). A real phone is never that fast:
                        // give the network 50, 100, 200 ms.
                        let wait = Duration::from_millis(50 << (challenges - 2).min(4));
                        tokio::time::sleep(wait).await;
                    }
                    let req = Request {
                        username: &self.cfg.impi,
                        method: "REGISTER",
                        uri: &uri,
                    };
                    let a = answer(
                        &challenge,
                        req,
                        &self.cfg.credentials,
                        &mut self.cfg.usim,
                        &random_hex(8),
                    )?;
                    if let Some((sqn, sqn_ms)) = a.resync {
                        self.events.push_back(UeEvent::Resync {
                            impi: self.cfg.impi.clone(),
                            sqn,
                            sqn_ms,
                        });
                    }
                    self.session = a.session;
                    auth = a.authorization;
                }
                _ => {
                    // A nonce the network refused is not worth reusing.
                    self.session = None;
                    return Err(UeError::Rejected {
                        method: "REGISTER".into(),
                        impu: self.cfg.impu.clone(),
                        status,
                        reason: resp.reason().to_owned(),
                    });
                }
            }
        }
    }

    /// What the 200 OK says about this UE's registration.
    fn registration_from(&self, resp: &Message) -> Registration {
        let contacts = resp.list("Contact");
        let own = contacts
            .iter()
            .find(|c| uri_of(c).eq_ignore_ascii_case(&self.contact));
        let expires = own
            .and_then(|c| param(c, "expires"))
            .and_then(|e| e.parse().ok())
            .or_else(|| resp.header("Expires").and_then(|e| e.trim().parse().ok()))
            .unwrap_or(self.cfg.expires);
        Registration {
            impi: self.cfg.impi.clone(),
            impu: self.cfg.impu.clone(),
            contact: self.contact.clone(),
            expires,
            associated: resp
                .list("P-Associated-URI")
                .iter()
                .map(|u| uri_of(u).to_owned())
                .collect(),
            service_route: resp
                .list("Service-Route")
                .iter()
                .map(|u| uri_of(u).to_owned())
                .collect(),
            contacts: contacts.iter().map(|c| uri_of(c).to_owned()).collect(),
        }
    }

    /// Runs one non-INVITE client transaction (RFC 3261 §17.1.2.2): sends `req`,
    /// retransmits at T1, 2·T1, … capped at T2, and returns the first final response that
    /// matches its Call-ID, CSeq and branch. Requests arriving meanwhile are answered.
    async fn transact(&mut self, req: &Message) -> Result<Message, UeError> {
        let bytes = req.to_bytes();
        let call_id = req.header("Call-ID").unwrap_or_default().to_owned();
        let cseq = req.header("CSeq").unwrap_or_default().to_owned();
        let branch = req.top_branch().map(str::to_owned);
        let method = req.method().unwrap_or_default().to_owned();
        let peer = self.cfg.pcscf;
        let io = |source| UeError::Io { peer, source };

        tracing::debug!(%peer, request = %String::from_utf8_lossy(&bytes), "sending");
        self.socket.send_to(&bytes, peer).await.map_err(io)?;
        let start = Instant::now();
        let give_up = start + self.cfg.timers.timeout;
        let mut interval = self.cfg.timers.t1;
        let mut retransmit_at = start + interval;
        loop {
            let wake = retransmit_at.min(give_up);
            let received =
                tokio::time::timeout_at(wake, self.socket.recv_from(&mut self.buf)).await;
            let (n, from) = match received {
                Err(_) if Instant::now() >= give_up => {
                    return Err(UeError::Timeout {
                        method,
                        peer,
                        seconds: self.cfg.timers.timeout.as_secs(),
                    })
                }
                Err(_) => {
                    self.socket.send_to(&bytes, peer).await.map_err(io)?;
                    interval = (interval * 2).min(self.cfg.timers.t2);
                    retransmit_at = Instant::now() + interval;
                    continue;
                }
                Ok(r) => r.map_err(io)?,
            };
            let msg = match Message::parse(&self.buf[..n]) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(%from, error = %e, "unparseable datagram ignored");
                    continue;
                }
            };
            if matches!(msg.start, StartLine::Request { .. }) {
                self.handle_request(&msg, from).await?;
                continue;
            }
            let matches = msg.header("Call-ID") == Some(call_id.as_str())
                && msg.header("CSeq").map(str::trim) == Some(cseq.trim())
                && (branch.is_none() || msg.top_branch() == branch.as_deref());
            if !matches {
                tracing::debug!(
                    status = msg.status(),
                    "response for another transaction ignored"
                );
                continue;
            }
            tracing::debug!(%from, response = %String::from_utf8_lossy(&self.buf[..n]), "received");
            match msg.status() {
                Some(code) if code >= 200 => return Ok(msg),
                // Provisional: keep waiting, retransmitting at T2 (RFC 3261 §17.1.2.2).
                _ => interval = self.cfg.timers.t2,
            }
        }
    }

    /// Answers a request that arrived on the contact: 200 to MESSAGE (reported once per
    /// Call-ID/CSeq), OPTIONS and NOTIFY; nothing to ACK; 501 to anything else.
    async fn handle_request(&mut self, msg: &Message, from: SocketAddr) -> Result<(), UeError> {
        let method = msg.method().unwrap_or_default().to_ascii_uppercase();
        let (code, reason) = match method.as_str() {
            "ACK" => return Ok(()),
            "MESSAGE" | "OPTIONS" | "NOTIFY" => (200, "OK"),
            _ => (501, "Not Implemented"),
        };
        let resp = Message::response_to(msg, code, reason, &random_hex(6));
        self.socket
            .send_to(&resp.to_bytes(), from)
            .await
            .map_err(|source| UeError::Io { peer: from, source })?;
        if method == "MESSAGE" {
            let key = (
                msg.header("Call-ID").unwrap_or_default().to_owned(),
                msg.header("CSeq").unwrap_or_default().to_owned(),
            );
            if self.seen.contains(&key) {
                return Ok(());
            }
            if self.seen.len() >= 64 {
                self.seen.pop_front();
            }
            self.seen.push_back(key);
            self.events.push_back(UeEvent::Message {
                impi: self.cfg.impi.clone(),
                from: msg
                    .header("From")
                    .map(uri_of)
                    .unwrap_or_default()
                    .to_owned(),
                to: msg.header("To").map(uri_of).unwrap_or_default().to_owned(),
                content_type: msg.header("Content-Type").map(str::to_owned),
                body: String::from_utf8_lossy(&msg.body).into_owned(),
            });
        }
        Ok(())
    }
}
