//! An asynchronous Diameter client over TCP (RFC 6733 §2.1), or over TLS from the first
//! byte (§13, with [`ClientConfig::tls`]), reusable by the load generator
//! ([`crate::bench`]), a future `sichss replay`, and tests.
//!
//! [`Client::connect`] opens the connection and performs the capabilities exchange
//! (CER/CEA, RFC 6733 §5.3) advertising Cx (Vendor-Specific-Application-Id {10415,
//! 16777216}). [`Client::request`] then sends any request and waits for its answer; many
//! requests may be in flight at once on one connection (RFC 6733 §2.1: pipelining), each
//! answer matched to its request by the Hop-by-Hop Identifier (§3, §6.2).
//!
//! ```text
//!  request() ─┐ hop-by-hop, end-to-end assigned; waiter registered in `pending`
//!  request() ─┼─mpsc─► writer task ── batches frames ──► socket
//!  request() ─┘
//!                         socket ──► reader task: check_frame → decode_message
//!                                      answer  → pending[hop-by-hop] → request() returns
//!                                      DWR     → DWA (RFC 6733 §5.5)
//!                                      DPR     → DPA, then the connection closes (§5.4)
//!                                      other   → the `on_request` hook (e.g. RTR), or 3001
//! ```
//!
//! [`Client::close`] sends a DPR and waits for the DPA (§5.4). Every wait is bounded
//! ([`ClientConfig::connect_timeout`], [`ClientConfig::request_timeout`]); when the
//! connection ends, every request still waiting fails with [`ClientError::Closed`].
//!
//! Must not depend on: the Cx layer, the store, the server (it speaks only the base
//! protocol and hands Cx messages through).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::codec::header::{FLAG_E, FLAG_R};
use crate::codec::{
    check_frame, codes, decode_message, ApplicationId, Avp, CommandCode, DecodeError, Frame,
    FrameError, Message, ResultCode, VENDOR_3GPP,
};
use crate::dict::Dictionary;

/// The Cx application id (TS 29.229 §5).
pub const CX_APPLICATION_ID: u32 = 16777216;

/// Disconnect-Cause DO_NOT_WANT_TO_TALK_TO_YOU (RFC 6733 §5.4.3): this client is done and
/// will not reconnect by itself.
pub const DISCONNECT_DO_NOT_WANT_TO_TALK_TO_YOU: i32 = 2;

/// Largest batch of frames the writer gathers into one `write` (bytes).
const WRITE_BATCH: usize = 64 * 1024;

/// Frames queued for the writer before `request` waits (back-pressure).
const WRITE_QUEUE: usize = 4096;

/// How this client presents itself and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Origin-Host of this client (RFC 6733 §6.3), e.g. `scscf.ims.example.org`.
    pub origin_host: String,
    /// Origin-Realm of this client (§6.4).
    pub origin_realm: String,
    /// Host-IP-Address values of the CER (§5.3.5); empty means the local address of the
    /// connection.
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id of the CER (§5.3.3); 0 as sichss has no Private Enterprise Number.
    pub vendor_id: u32,
    /// Product-Name of the CER (§5.3.7).
    pub product_name: String,
    /// Origin-State-Id (§8.16): grows on every restart; the start time in seconds.
    pub origin_state_id: u32,
    /// Applications advertised as Vendor-Specific-Application-Id {vendor, Auth-Application-Id}
    /// (§6.11); by default Cx {10415, 16777216}.
    pub applications: Vec<(u32, u32)>,
    /// Longest wait for the TCP connection and the CEA.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request (and for the DPA in [`Client::close`]).
    pub request_timeout: Duration,
    /// Largest message accepted from the server; a longer one ends the connection.
    pub max_message_len: u32,
    /// Where requests from the server other than DWR and DPR go (e.g. RTR, PPR); `None`
    /// answers them with 3001 DIAMETER_COMMAND_UNSUPPORTED.
    pub on_request: Option<mpsc::Sender<IncomingRequest>>,
    /// Diameter over TLS (RFC 6733 §13: TLS from the first byte); `None` = plain TCP.
    pub tls: Option<ClientTls>,
}

/// How the client speaks TLS: the rustls configuration (trusted CAs, a client certificate
/// for mutual TLS) and the name the server's certificate must carry.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// TLS with `config` (see [`crate::tls::client_config`]), verifying that the server's
    /// certificate is valid for `server_name` (a DNS name or an IP address).
    ///
    /// # Errors
    /// [`crate::tls::TlsError::ServerName`] when `server_name` is neither.
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<Self, crate::tls::TlsError> {
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(config),
            server_name: crate::tls::server_name(server_name)?,
        })
    }
}

impl ClientConfig {
    /// A Cx client configuration with the defaults documented on each field (5 s
    /// timeouts, 1 MiB messages).
    pub fn new(origin_host: impl Into<String>, origin_realm: impl Into<String>) -> Self {
        let origin_state_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        ClientConfig {
            origin_host: origin_host.into(),
            origin_realm: origin_realm.into(),
            host_ip_addresses: Vec::new(),
            vendor_id: 0,
            product_name: "sichss".to_owned(),
            origin_state_id,
            applications: vec![(VENDOR_3GPP, CX_APPLICATION_ID)],
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_message_len: crate::codec::framer::DEFAULT_MAX_MESSAGE,
            on_request: None,
            tls: None,
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted or mismatched server certificate, a client
    /// certificate refused, no common protocol).
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// The address.
        addr: SocketAddr,
        /// Why (rustls's reason).
        source: std::io::Error,
    },
    /// No TCP connection, or no CEA, within the connect timeout.
    #[error("no connection and CEA from {addr} within {after:?}")]
    ConnectTimeout {
        /// The address.
        addr: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The server answered the CER with a Result-Code other than 2001 (RFC 6733 §5.3.2).
    #[error("capabilities exchange refused with Result-Code {result_code}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    CapabilitiesRefused {
        /// The CEA's Result-Code (0 when absent).
        result_code: u32,
        /// The CEA's Error-Message, if any.
        message: Option<String>,
    },
    /// The first message from the server was not a CEA.
    #[error("expected a CEA, received command {command} (request: {request})")]
    NotCea {
        /// Its command code.
        command: u32,
        /// Whether it was a request.
        request: bool,
    },
    /// Reading or writing the socket failed.
    #[error("connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The byte stream from the server cannot be framed (RFC 6733 §3).
    #[error("the server's byte stream is broken: {0}")]
    Frame(FrameError),
    /// An answer could not be decoded.
    #[error("the answer could not be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// The answer matched the request's Hop-by-Hop Identifier but not its command or
    /// End-to-End Identifier (RFC 6733 §6.2).
    #[error("answer for hop-by-hop {hop_by_hop:#x} does not match its request: {why}")]
    MismatchedAnswer {
        /// The Hop-by-Hop Identifier.
        hop_by_hop: u32,
        /// What differs.
        why: String,
    },
    /// No answer within the request timeout.
    #[error("no answer to command {command} within {after:?}")]
    Timeout {
        /// The request's command code.
        command: u32,
        /// The timeout.
        after: Duration,
    },
    /// The connection is closed (or closing); the request was not sent, or its answer
    /// will not come.
    #[error("the connection is closed: {reason}")]
    Closed {
        /// Why it closed.
        reason: String,
    },
}

/// A request from the server (e.g. RTR or PPR), handed to the `on_request` hook. Answer
/// it with [`IncomingRequest::answer`]; dropped unanswered, it is answered with 5012
/// DIAMETER_UNABLE_TO_COMPLY.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The request as received.
    pub request: Message,
    /// Where the answer goes (the writer task), and who we are; `None` once answered.
    reply: Option<Replier>,
}

#[derive(Debug)]
struct Replier {
    out: mpsc::Sender<Out>,
    identity: Arc<(String, String)>,
}

impl IncomingRequest {
    /// An answer skeleton for this request ([`Message::answer_to`]) with Result-Code
    /// `rc`, Origin-Host and Origin-Realm of this client.
    pub fn answer_with(&self, rc: ResultCode) -> Message {
        let mut a = Message::answer_to(&self.request);
        a.set_result(rc);
        if let Some(r) = &self.reply {
            a.push(Avp::identity(codes::ORIGIN_HOST, &r.identity.0));
            a.push(Avp::identity(codes::ORIGIN_REALM, &r.identity.1));
        }
        a
    }

    /// Sends `answer`, with the request's identifiers forced and the R bit cleared.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the connection is gone.
    pub async fn answer(mut self, mut answer: Message) -> Result<(), ClientError> {
        let Some(r) = self.reply.take() else {
            return Ok(());
        };
        answer.header.hop_by_hop = self.request.header.hop_by_hop;
        answer.header.end_to_end = self.request.header.end_to_end;
        answer.header.flags &= !FLAG_R;
        r.out
            .send(Out::Frame(answer.encode()))
            .await
            .map_err(|_| closed("the writer has stopped"))
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            let a = error_answer(
                &self.request,
                ResultCode::DIAMETER_UNABLE_TO_COMPLY,
                &r.identity,
            );
            let _ = r.out.try_send(Out::Frame(a.encode()));
        }
    }
}

/// What the writer task is told.
#[derive(Debug)]
enum Out {
    /// An encoded message.
    Frame(Vec<u8>),
    /// Flush, half-close the socket and stop.
    Shutdown,
}

/// A request waiting for its answer.
struct Waiter {
    command: CommandCode,
    end_to_end: u32,
    /// When the sweeper fails it with [`ClientError::Timeout`].
    deadline: std::time::Instant,
    tx: oneshot::Sender<Result<Message, ClientError>>,
}

/// Requests in flight, and whether new ones may start.
#[derive(Default)]
struct Pending {
    waiters: HashMap<u32, Waiter>,
    /// Set once the connection is closing or closed: new requests fail with this reason.
    closed: Option<String>,
}

struct Inner {
    cfg: ClientConfig,
    pending: Mutex<Pending>,
    out: mpsc::Sender<Out>,
    next_hop_by_hop: AtomicU32,
    next_end_to_end: AtomicU32,
    /// (Origin-Host, Origin-Realm) of this client, shared with incoming requests.
    identity: Arc<(String, String)>,
    /// The server's Origin-Host and Origin-Realm from its CEA.
    peer: (String, String),
    /// True once the reader has stopped (EOF, error, or after a DPR).
    done: watch::Receiver<bool>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves the map consistent; keep going.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops new requests and fails every waiting one.
    fn fail_all(&self, reason: &str) {
        let waiters = {
            let mut p = self.lock();
            if p.closed.is_none() {
                p.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut p.waiters)
        };
        for (_, w) in waiters {
            let _ = w.tx.send(Err(closed(reason)));
        }
    }
}

fn closed(reason: &str) -> ClientError {
    ClientError::Closed {
        reason: reason.to_owned(),
    }
}

/// A connected Diameter client. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("origin_host", &self.inner.cfg.origin_host)
            .field("peer", &self.inner.peer)
            .finish()
    }
}

impl Client {
    /// Connects to `addr`, sends a CER (RFC 6733 §5.3.1) and waits for a CEA with
    /// Result-Code 2001; then starts the reader and writer tasks.
    ///
    /// # Errors
    /// [`ClientError::Connect`], [`ClientError::ConnectTimeout`],
    /// [`ClientError::CapabilitiesRefused`], [`ClientError::NotCea`], or an I/O, framing or
    /// decoding error of the CEA.
    pub async fn connect(addr: SocketAddr, cfg: ClientConfig) -> Result<Client, ClientError> {
        let timeout = cfg.connect_timeout;
        match tokio::time::timeout(timeout, Self::handshake(addr, cfg)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::ConnectTimeout {
                addr,
                after: timeout,
            }),
        }
    }

    async fn handshake(addr: SocketAddr, cfg: ClientConfig) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        match cfg.tls.clone() {
            None => {
                let (rd, wr) = stream.into_split();
                Self::exchange(rd, wr, local.ip(), cfg).await
            }
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(tls.server_name.clone(), stream)
                    .await
                    .map_err(|source| ClientError::Tls { addr, source })?;
                let (rd, wr) = tokio::io::split(stream);
                Self::exchange(rd, wr, local.ip(), cfg).await
            }
        }
    }

    /// CER/CEA over an open connection, then the reader and writer tasks.
    async fn exchange<R, W>(
        mut rd: R,
        mut wr: W,
        local_ip: IpAddr,
        cfg: ClientConfig,
    ) -> Result<Client, ClientError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let dict = Dictionary::builtin();

        let first_hbh: u32 = rand::random();
        let first_e2e = initial_end_to_end();
        let cer = capabilities_request(&cfg, local_ip, first_hbh, first_e2e);
        wr.write_all(&cer.encode()).await?;

        let mut buf = BytesMut::with_capacity(64 * 1024);
        let cea = match read_frame(&mut rd, &mut buf, cfg.max_message_len).await? {
            Some(bytes) => decode_message(&bytes, dict)?,
            None => return Err(closed("the server closed the connection before its CEA")),
        };
        if cea.header.is_request() || cea.header.command != CommandCode::CAPABILITIES_EXCHANGE {
            return Err(ClientError::NotCea {
                command: cea.header.command.0,
                request: cea.header.is_request(),
            });
        }
        let rc = cea.result_code().map_or(0, |r| r.0);
        if rc != ResultCode::DIAMETER_SUCCESS.0 {
            return Err(ClientError::CapabilitiesRefused {
                result_code: rc,
                message: cea.str(codes::ERROR_MESSAGE).map(str::to_owned),
            });
        }
        let peer = (
            cea.str(codes::ORIGIN_HOST).unwrap_or_default().to_owned(),
            cea.str(codes::ORIGIN_REALM).unwrap_or_default().to_owned(),
        );

        let (out_tx, out_rx) = mpsc::channel(WRITE_QUEUE);
        let (done_tx, done_rx) = watch::channel(false);
        let identity = Arc::new((cfg.origin_host.clone(), cfg.origin_realm.clone()));
        let inner = Arc::new(Inner {
            pending: Mutex::new(Pending::default()),
            out: out_tx,
            next_hop_by_hop: AtomicU32::new(first_hbh.wrapping_add(1)),
            next_end_to_end: AtomicU32::new(first_e2e.wrapping_add(1)),
            identity,
            peer,
            done: done_rx,
            cfg,
        });
        let writer = tokio::spawn(write_loop(wr, out_rx));
        let reader = tokio::spawn(read_loop(Arc::clone(&inner), rd, buf, done_tx));
        let sweeper = tokio::spawn(sweep_loop(Arc::downgrade(&inner)));
        Ok(Client {
            inner,
            tasks: Arc::new(Mutex::new(vec![writer, reader, sweeper])),
        })
    }

    /// The server's Origin-Host and Origin-Realm, from its CEA.
    pub fn peer(&self) -> (&str, &str) {
        (&self.inner.peer.0, &self.inner.peer.1)
    }

    /// This client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// Requests sent whose answer has not come yet.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().waiters.len()
    }

    /// Whether the connection is closed or closing (no new request can be sent).
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed.is_some()
    }

    /// Sends `req` and waits for its answer. Sets the R bit and assigns fresh
    /// Hop-by-Hop and End-to-End Identifiers (RFC 6733 §3); everything else is sent as
    /// given. Safe to call from many tasks at once: requests are pipelined on the one
    /// connection. An answer with the E bit (a protocol error) is returned as an answer.
    /// Cancel-safe: dropping the future forgets the request.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after [`ClientConfig::request_timeout`] (noticed by a sweep
    /// every tenth of it, at most 100 ms, so up to that much later);
    /// [`ClientError::Closed`] when the connection is or becomes closed;
    /// [`ClientError::Decode`] when the answer cannot be decoded;
    /// [`ClientError::MismatchedAnswer`] when the answer's command or End-to-End
    /// Identifier differ from the request's.
    pub async fn request(&self, mut req: Message) -> Result<Message, ClientError> {
        let hop_by_hop = self.inner.next_hop_by_hop.fetch_add(1, Ordering::Relaxed);
        let end_to_end = self.inner.next_end_to_end.fetch_add(1, Ordering::Relaxed);
        req.header.hop_by_hop = hop_by_hop;
        req.header.end_to_end = end_to_end;
        req.header.flags |= FLAG_R;
        let command = req.header.command;
        let frame = req.encode();

        let (tx, rx) = oneshot::channel();
        let after = self.inner.cfg.request_timeout;
        {
            let mut p = self.inner.lock();
            if let Some(reason) = &p.closed {
                return Err(closed(reason));
            }
            p.waiters.insert(
                hop_by_hop,
                Waiter {
                    command,
                    end_to_end,
                    deadline: std::time::Instant::now() + after,
                    tx,
                },
            );
        }
        let _guard = Forget {
            inner: &self.inner,
            hop_by_hop,
        };
        if self.inner.out.send(Out::Frame(frame)).await.is_err() {
            return Err(closed("the writer has stopped"));
        }
        // The answer, or the sweeper's timeout: no timer per request.
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(closed("the reader has stopped")),
        }
    }

    /// A base-protocol request from this client: header (ids set when sent), Origin-Host
    /// and Origin-Realm.
    fn base_request(&self, cmd: CommandCode) -> Message {
        Message::request(cmd, ApplicationId::COMMON, false, 0, 0)
            .with(Avp::identity(
                codes::ORIGIN_HOST,
                &self.inner.cfg.origin_host,
            ))
            .with(Avp::identity(
                codes::ORIGIN_REALM,
                &self.inner.cfg.origin_realm,
            ))
    }

    /// Sends a DWR (RFC 6733 §5.5.1) and waits for the DWA; returns its Result-Code.
    ///
    /// # Errors
    /// Those of [`Client::request`].
    pub async fn watchdog(&self) -> Result<ResultCode, ClientError> {
        let dwr = self
            .base_request(CommandCode::DEVICE_WATCHDOG)
            .with(Avp::u32(
                codes::ORIGIN_STATE_ID,
                self.inner.cfg.origin_state_id,
            ));
        let dwa = self.request(dwr).await?;
        Ok(dwa.result_code().unwrap_or(ResultCode(0)))
    }

    /// Closes the connection politely: sends a DPR (RFC 6733 §5.4.1, Disconnect-Cause
    /// DO_NOT_WANT_TO_TALK_TO_YOU), waits for the DPA (at most the request timeout), then
    /// half-closes the socket and waits for the server to close its side. Requests still
    /// in flight fail with [`ClientError::Closed`]. Closing twice is harmless.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when no DPA comes; the connection is closed regardless.
    pub async fn close(&self) -> Result<(), ClientError> {
        let dpr = self
            .base_request(CommandCode::DISCONNECT_PEER)
            .with(Avp::enumerated(
                codes::DISCONNECT_CAUSE,
                DISCONNECT_DO_NOT_WANT_TO_TALK_TO_YOU,
            ));
        let result = match self.request(dpr).await {
            Ok(_) | Err(ClientError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        self.inner.fail_all("closed by this client (DPR sent)");
        let _ = self.inner.out.send(Out::Shutdown).await;
        // The server closes its side after the DPA; do not wait longer than a request.
        let mut done = self.inner.done.clone();
        let _ = tokio::time::timeout(self.inner.cfg.request_timeout, done.wait_for(|d| *d)).await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
        result
    }
}

/// How often the sweeper looks for requests past their deadline: a tenth of the timeout,
/// between 1 ms and 100 ms (a timeout is reported at most that late).
fn sweep_every(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// Fails the requests whose answer is overdue with [`ClientError::Timeout`], every
/// [`sweep_every`]: one timer per connection, not one per request (a timer set and
/// cleared per request was ~4 % of the load generator's CPU). Stops with the reader, or
/// when the client is gone.
async fn sweep_loop(inner: std::sync::Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| sweep_every(i.cfg.request_timeout)) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if *inner.done.borrow() {
            // The reader failed every waiter when it stopped.
            return;
        }
        let now = std::time::Instant::now();
        let overdue: Vec<Waiter> = {
            let mut p = inner.lock();
            let late: Vec<u32> = p
                .waiters
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(hbh, _)| *hbh)
                .collect();
            late.iter()
                .filter_map(|hbh| p.waiters.remove(hbh))
                .collect()
        };
        let after = inner.cfg.request_timeout;
        for w in overdue {
            let _ = w.tx.send(Err(ClientError::Timeout {
                command: w.command.0,
                after,
            }));
        }
    }
}

/// Removes a waiter when its request future ends (answered, timed out or dropped).
struct Forget<'a> {
    inner: &'a Inner,
    hop_by_hop: u32,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.inner.lock().waiters.remove(&self.hop_by_hop);
    }
}

/// RFC 6733 §3: the high 12 bits of the End-to-End Identifier from the low bits of the
/// current time, the low 20 bits random.
fn initial_end_to_end() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    (secs << 20) | (rand::random::<u32>() & 0x000f_ffff)
}

/// The CER (RFC 6733 §5.3.1).
fn capabilities_request(cfg: &ClientConfig, local_ip: IpAddr, hbh: u32, e2e: u32) -> Message {
    let mut m = Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        hbh,
        e2e,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, &cfg.origin_host))
    .with(Avp::identity(codes::ORIGIN_REALM, &cfg.origin_realm));
    if cfg.host_ip_addresses.is_empty() {
        m.push(Avp::address(codes::HOST_IP_ADDRESS, local_ip));
    }
    for ip in &cfg.host_ip_addresses {
        m.push(Avp::address(codes::HOST_IP_ADDRESS, *ip));
    }
    m.push(Avp::u32(codes::VENDOR_ID, cfg.vendor_id));
    m.push(Avp::utf8(codes::PRODUCT_NAME, &cfg.product_name));
    m.push(Avp::u32(codes::ORIGIN_STATE_ID, cfg.origin_state_id));
    let mut vendors: Vec<u32> = cfg.applications.iter().map(|(v, _)| *v).collect();
    vendors.sort_unstable();
    vendors.dedup();
    for v in vendors.into_iter().filter(|v| *v != 0) {
        m.push(Avp::u32(codes::SUPPORTED_VENDOR_ID, v));
    }
    for (vendor, app) in &cfg.applications {
        m.push(Avp::grouped(
            codes::VENDOR_SPECIFIC_APPLICATION_ID,
            vec![
                Avp::u32(codes::VENDOR_ID, *vendor),
                Avp::u32(codes::AUTH_APPLICATION_ID, *app),
            ],
        ));
    }
    m
}

/// An answer to `req` with Result-Code `rc` (the E bit for 3xxx, RFC 6733 §7.1.3).
fn error_answer(req: &Message, rc: ResultCode, identity: &(String, String)) -> Message {
    let mut a = Message::answer_to(req);
    if rc.is_protocol_error() {
        a.header.flags |= FLAG_E;
    }
    a.set_result(rc);
    a.push(Avp::identity(codes::ORIGIN_HOST, &identity.0));
    a.push(Avp::identity(codes::ORIGIN_REALM, &identity.1));
    a
}

/// Reads until one whole frame is at the front of `buf`, and takes it out. `None` on a
/// clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_len: u32,
) -> Result<Option<BytesMut>, ClientError> {
    loop {
        match check_frame(buf, max_len) {
            Frame::Complete(n) => return Ok(Some(buf.split_to(n))),
            Frame::Invalid(_, e) => return Err(ClientError::Frame(e)),
            Frame::Incomplete => {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(64 * 1024);
                }
                if rd.read_buf(buf).await? == 0 {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    return Err(closed("the server closed the connection mid-message"));
                }
            }
        }
    }
}

/// The writer task: gathers queued frames into one write until told to stop.
async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Out>) {
    let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.recv().await {
        let mut stop = false;
        match first {
            Out::Frame(f) => batch.extend_from_slice(&f),
            Out::Shutdown => stop = true,
        }
        // Gather what else is queued; when nothing is, let the other tasks of this worker
        // run once first, so that requests made in the same instant share one write.
        let mut yielded = false;
        while !stop && batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(Out::Frame(f)) => batch.extend_from_slice(&f),
                Ok(Out::Shutdown) => stop = true,
                Err(mpsc::error::TryRecvError::Empty) if !yielded => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(e) = wr.write_all(&batch).await {
                tracing::debug!(error = %e, "client write failed");
                return;
            }
            batch.clear();
        }
        if stop {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// The reader task: routes answers to their waiters and answers the server's requests.
async fn read_loop<R: AsyncRead + Unpin>(
    inner: Arc<Inner>,
    mut rd: R,
    mut buf: BytesMut,
    done: watch::Sender<bool>,
) {
    let dict = Dictionary::builtin();
    let max = inner.cfg.max_message_len;
    let reason = loop {
        let frame = match read_frame(&mut rd, &mut buf, max).await {
            Ok(Some(f)) => f,
            Ok(None) => break "the server closed the connection".to_owned(),
            Err(e) => break e.to_string(),
        };
        match decode_message(&frame, dict) {
            Ok(msg) if msg.header.is_request() => on_server_request(&inner, msg).await,
            Ok(msg) => deliver(&inner, msg.header.hop_by_hop, Ok(msg)),
            Err(e) => match e.header {
                // An answer we cannot read: fail its request, keep the connection.
                Some(h) if !h.is_request() => deliver(&inner, h.hop_by_hop, Err(e.into())),
                // A request we cannot read: answer it with its Result-Code.
                Some(h) => {
                    let mut req = Message::request(h.command, h.application, false, 0, 0);
                    req.header = h;
                    let a = error_answer(&req, e.error.result_code(), &inner.identity);
                    let _ = inner.out.send(Out::Frame(a.encode())).await;
                }
                None => break format!("undecodable message: {e}"),
            },
        }
    };
    tracing::debug!(%reason, "client connection ended");
    inner.fail_all(&reason);
    let _ = done.send(true);
}

/// Hands an answer (or the failure to decode it) to the request waiting for it.
fn deliver(inner: &Inner, hop_by_hop: u32, result: Result<Message, ClientError>) {
    let Some(w) = inner.lock().waiters.remove(&hop_by_hop) else {
        tracing::debug!(
            hop_by_hop,
            "answer for no request in flight (late or unknown)"
        );
        return;
    };
    let result = result.and_then(|a| {
        if a.header.command != w.command || a.header.end_to_end != w.end_to_end {
            Err(ClientError::MismatchedAnswer {
                hop_by_hop,
                why: format!(
                    "sent command {} end-to-end {:#x}, answer has command {} end-to-end {:#x}",
                    w.command.0, w.end_to_end, a.header.command.0, a.header.end_to_end
                ),
            })
        } else {
            Ok(a)
        }
    });
    let _ = w.tx.send(result);
}

/// A request from the server: DWR and DPR answered here, others to the hook.
async fn on_server_request(inner: &Arc<Inner>, req: Message) {
    let id = &inner.identity;
    let answer = match req.header.command {
        CommandCode::DEVICE_WATCHDOG => {
            let mut a = error_answer(&req, ResultCode::DIAMETER_SUCCESS, id);
            a.push(Avp::u32(codes::ORIGIN_STATE_ID, inner.cfg.origin_state_id));
            a
        }
        CommandCode::DISCONNECT_PEER => {
            // RFC 6733 §5.4: no new requests; the server closes after our DPA.
            {
                let mut p = inner.lock();
                if p.closed.is_none() {
                    p.closed = Some("the server sent a DPR".to_owned());
                }
            }
            error_answer(&req, ResultCode::DIAMETER_SUCCESS, id)
        }
        CommandCode::CAPABILITIES_EXCHANGE => {
            // A second CER on an open connection (RFC 6733 §5.3: not allowed).
            error_answer(&req, ResultCode::DIAMETER_UNABLE_TO_COMPLY, id)
        }
        _ => match &inner.cfg.on_request {
            Some(hook) => {
                let incoming = IncomingRequest {
                    request: req,
                    reply: Some(Replier {
                        out: inner.out.clone(),
                        identity: Arc::clone(id),
                    }),
                };
                match hook.try_send(incoming) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(mut r)) => {
                        r.reply = None;
                        error_answer(&r.request, ResultCode::DIAMETER_TOO_BUSY, id)
                    }
                    Err(mpsc::error::TrySendError::Closed(mut r)) => {
                        r.reply = None;
                        error_answer(&r.request, ResultCode::DIAMETER_COMMAND_UNSUPPORTED, id)
                    }
                }
            }
            None => error_answer(&req, ResultCode::DIAMETER_COMMAND_UNSUPPORTED, id),
        },
    };
    let _ = inner.out.send(Out::Frame(answer.encode())).await;
}

#[cfg(test)]
mod tests;
