//! The Diameter server over TCP (RFC 6733 §2.1) and over TLS (§13, "TLS/TCP": TLS from
//! the first byte on separate listeners): listeners on IPv4 and IPv6, one task pair per
//! connection, graceful shutdown with DPR (RFC 6733 §5.4), and the [`Peers`] registry for
//! requests this HSS initiates.
//!
//! A TLS connection's handshake runs in the connection's own task, bounded by
//! [`ServerConfig::tls_handshake_timeout`] (a slow client never holds up the accept loop);
//! a failed handshake is logged and the connection closed. After it, the TLS stream is
//! split into reader and writer halves and goes through exactly the same peer logic as a
//! TCP connection: CER/CEA with the allowlist (Origin-Host and source address), watchdog,
//! DPR. With mutual TLS the client certificate's subject is logged.
//!
//! The only module that touches sockets. It drives the sans-IO [`crate::peer`] layer and
//! calls the [`Application`]; it never names the Cx layer or the store.
//!
//! Per connection:
//!
//! ```text
//!           ┌──────────── reader/driver task ─────────────┐        ┌─ writer task ─┐
//! socket ──►│ check_frame → decode_message → Responder     │──mpsc─►│ write_all     │──► socket
//!           │   base commands answered here                │        └───────────────┘
//!           │   application requests → bounded queue       │              ▲
//!           │     (full: 3004 TOO_BUSY at once, E bit)     │              │
//!           │   check_request (3007/3001/3002/3003/5xxx)   │              │
//!           │   app.handle (≤ per connection and ≤ server- │              │
//!           │     wide in flight), polled once here: ready │              │
//!           │     → encoded into one batch per read, queued│              │
//!           │     as one frame; waiting → polled here as   │              │
//!           │     it wakes, answers batched the same way ──┼── answers ───┘
//!           │   answers → Peers waiters, DWA → watchdog     │
//!           └──────────────────────────────────────────────┘
//! ```
//!
//! # Bounds (overload and hostile peers)
//!
//! Every resource a peer can make the server hold is bounded, and every wait on a peer is
//! timed:
//!
//! - connections: at most [`ServerConfig::max_connections`] in all and
//!   [`ServerConfig::max_connections_per_address`] from one source address; a connection
//!   past either is accepted and closed at once (so it leaves the listen backlog);
//! - application requests: at most [`ServerConfig::max_in_flight_per_connection`] handled at
//!   once per connection and [`ServerConfig::max_in_flight_total`] in the whole server; the
//!   others wait, as received octets, in a queue of at most
//!   [`ServerConfig::max_queued_per_connection`] per connection, and a connection's queued
//!   and running requests hold at most [`ServerConfig::connection_buffer_bytes`]. A request
//!   past either bound is answered 3004 DIAMETER_TOO_BUSY with the E bit at once (RFC 6733
//!   §7.1.3), from its header and Session-Id only, without decoding it further or touching
//!   the application. Base-protocol messages (CER, DWR, DPR) and answers never queue, so
//!   the watchdog keeps working under any load, and the connection is read as long as its
//!   answers can be written;
//! - answers waiting for the writer: at most `max_in_flight_per_connection + 64` messages
//!   and [`ServerConfig::connection_buffer_bytes`] octets per connection; past them the
//!   connection's reader task waits (TCP back-pressure on a slow reader);
//! - a message must arrive whole within [`ServerConfig::incomplete_message_timeout`] of its
//!   first octet (slow senders), a write must make progress within
//!   [`ServerConfig::write_timeout`] (peers that do not read their answers), a CER must come
//!   within Tw, a DWR must be answered within Tw; otherwise the connection is closed;
//! - messages are at most [`ServerConfig::max_message_len`] octets, Grouped AVPs nest at most
//!   [`crate::codec::avp::MAX_GROUP_DEPTH`] levels, and the answers queued for one writer are
//!   bounded (the reader waits when it is full).
//!
//! Must not depend on: the Cx layer, the store, the CLI.

mod connection;
mod peers;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use peers::{PeerError, PeerStatus, Peers};

use crate::app::Application;
use crate::codec::ResultCode;
use crate::dict::Dictionary;
use crate::peer::base::QuickAnswer;
use crate::peer::{Allowlist, LocalIdentity, PeerPolicy};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (IPv4 and IPv6). On Linux, `[::]:p` usually also accepts
    /// IPv4 (dual stack), so listing both `0.0.0.0:p` and `[::]:p` fails with "address in
    /// use"; list specific addresses, or only `[::]:p`.
    pub listen: Vec<SocketAddr>,
    /// Our identity.
    pub local: LocalIdentity,
    /// Peers admitted on CER (default: loopback only).
    pub allowlist: Allowlist,
    /// Largest message accepted; a longer one is answered with 5015 and the connection
    /// closed (default 1 MiB).
    pub max_message_len: u32,
    /// RFC 3539 watchdog interval Tw (default 30 s); also how long a new connection may
    /// wait before sending its CER.
    pub watchdog_tw: Duration,
    /// How long an HSS-initiated request waits for its answer (default 5 s); also how
    /// long a DPR waits for its DPA.
    pub request_timeout: Duration,
    /// Application requests of one connection being handled at once (default 256); past
    /// it requests wait in the connection's queue.
    pub max_in_flight_per_connection: usize,
    /// Application requests being handled at once in the whole server (default 4096); past
    /// it requests wait in their connection's queue.
    pub max_in_flight_total: usize,
    /// Application requests of one connection waiting to be handled (default 256); a
    /// request that finds the queue full is answered 3004 DIAMETER_TOO_BUSY at once.
    pub max_queued_per_connection: usize,
    /// Octets one connection may hold in requests (queued and in flight) and, separately,
    /// in answers waiting to be written (default 4 MiB; never less than
    /// `max_message_len`). A request past it is answered 3004; an answer past it waits,
    /// and so does the reading of the connection.
    pub connection_buffer_bytes: usize,
    /// Connections open at once (default 1024); past it a new connection is accepted and
    /// closed at once. Each takes one file descriptor: keep it below `ulimit -n`.
    pub max_connections: usize,
    /// Connections open at once from one source address (default 256); past it a new
    /// connection from that address is accepted and closed at once.
    pub max_connections_per_address: usize,
    /// Longest time from the first octet of a message to its last (default 10 s); a peer
    /// slower than that is disconnected (slowloris).
    pub incomplete_message_timeout: Duration,
    /// Longest time a write to a peer may make no progress (default 10 s); a peer that
    /// does not read its answers is disconnected.
    pub write_timeout: Duration,
    /// Longest wait for in-flight requests when a connection closes or the server stops
    /// (default 10 s); requests still running then are abandoned.
    pub drain_timeout: Duration,
    /// Addresses for Diameter over TLS (TLS from the first byte, RFC 6733 §13; port 5658
    /// by convention); empty (the default) = none. Needs [`ServerConfig::tls`].
    pub tls_listen: Vec<SocketAddr>,
    /// The TLS settings of `tls_listen` (certificate, key, client CAs for mutual TLS);
    /// see [`crate::tls::server_config`].
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Longest TLS handshake before the connection is closed (default 10 s).
    pub tls_handshake_timeout: Duration,
}

impl ServerConfig {
    /// Defaults as documented on each field, listening on `0.0.0.0:3868`.
    pub fn new(local: LocalIdentity) -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 3868))],
            local,
            allowlist: Allowlist::default(),
            max_message_len: crate::codec::framer::DEFAULT_MAX_MESSAGE,
            watchdog_tw: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            max_in_flight_per_connection: 256,
            max_in_flight_total: 4096,
            max_queued_per_connection: 256,
            connection_buffer_bytes: 4 << 20,
            max_connections: 1024,
            max_connections_per_address: 256,
            incomplete_message_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            tls_listen: Vec::new(),
            tls: None,
            tls_handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// What every connection task shares.
struct Shared<A> {
    cfg: ServerConfig,
    policy: Arc<PeerPolicy>,
    app: Arc<A>,
    dict: Arc<Dictionary>,
    peers: Peers,
    next_conn_id: AtomicU64,
    /// Server-wide permits for application requests in flight (`max_in_flight_total`).
    in_flight: Arc<Semaphore>,
    /// Open connections, in all and by source address.
    conns: Arc<Mutex<ConnCount>>,
    /// Counters of the bounds at work.
    stats: Arc<ServerStats>,
    /// The 3004 answer, encoded once but for the header and Session-Id of each request.
    too_busy: QuickAnswer,
}

/// How often the server's bounds turned work away since it started.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Requests answered 3004 DIAMETER_TOO_BUSY because their connection's queue was full.
    pub too_busy: AtomicU64,
    /// Connections closed at accept because of `max_connections` or
    /// `max_connections_per_address`.
    pub refused_connections: AtomicU64,
    /// Connections closed because a message did not complete in time.
    pub incomplete_timeouts: AtomicU64,
    /// Connections closed because a write made no progress in time.
    pub write_timeouts: AtomicU64,
}

/// Open connections in all and by source address (for the connection limits).
#[derive(Debug, Default)]
struct ConnCount {
    total: usize,
    by_addr: HashMap<IpAddr, usize>,
}

/// One admitted connection; releases its place in the counts when dropped.
pub(super) struct ConnSlot {
    counts: Arc<Mutex<ConnCount>>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_addr.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&self.ip);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay consistent even if a holder panicked: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<A> Shared<A> {
    /// The per-connection budget of buffered requests and of buffered answers, in octets.
    fn buffer_bytes(&self) -> usize {
        self.cfg
            .connection_buffer_bytes
            .max(self.cfg.max_message_len as usize)
    }

    /// Counts a new connection from `ip`, or `None` when a connection limit is reached.
    fn admit(&self, ip: IpAddr) -> Option<ConnSlot> {
        let ip = ip.to_canonical();
        let mut c = lock(&self.conns);
        let here = c.by_addr.get(&ip).copied().unwrap_or(0);
        if c.total >= self.cfg.max_connections || here >= self.cfg.max_connections_per_address {
            return None;
        }
        c.total += 1;
        *c.by_addr.entry(ip).or_insert(0) += 1;
        Some(ConnSlot {
            counts: Arc::clone(&self.conns),
            ip,
        })
    }
}

/// One bound listener; TLS from the first byte when it has an acceptor.
struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

/// A bound server, ready to [`Server::serve`].
pub struct Server<A> {
    shared: Arc<Shared<A>>,
    listeners: Vec<Listener>,
}

impl<A: Application> Server<A> {
    /// Binds every address of `cfg.listen` (port 0 picks a free port; see
    /// [`Server::local_addrs`]).
    ///
    /// # Errors
    /// The first address that cannot be bound, with the address in the message; TLS
    /// addresses without TLS settings.
    pub async fn bind(
        cfg: ServerConfig,
        app: Arc<A>,
        dict: Arc<Dictionary>,
        peers: Peers,
    ) -> std::io::Result<Self> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        let mut listeners = Vec::with_capacity(cfg.listen.len() + cfg.tls_listen.len());
        for addr in &cfg.listen {
            listeners.push(Listener {
                tcp: bind(*addr).await?,
                tls: None,
            });
        }
        if !cfg.tls_listen.is_empty() {
            let Some(tls) = &cfg.tls else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "Diameter TLS addresses given without a certificate and key",
                ));
            };
            let acceptor = TlsAcceptor::from(Arc::clone(tls));
            for addr in &cfg.tls_listen {
                listeners.push(Listener {
                    tcp: bind(*addr).await?,
                    tls: Some(acceptor.clone()),
                });
            }
        }
        peers.set_request_timeout(cfg.request_timeout);
        warn_if_fd_limit_below(cfg.max_connections);
        let cfg_in_flight = cfg.max_in_flight_total;
        let cfg_local = cfg.local.clone();
        let policy = Arc::new(PeerPolicy {
            local: cfg.local.clone(),
            allowlist: cfg.allowlist.clone(),
            application_ids: app.application_ids().to_vec(),
        });
        Ok(Server {
            shared: Arc::new(Shared {
                cfg,
                policy,
                app,
                dict,
                peers,
                next_conn_id: AtomicU64::new(1),
                in_flight: Arc::new(Semaphore::new(
                    cfg_in_flight.clamp(1, Semaphore::MAX_PERMITS),
                )),
                conns: Arc::default(),
                stats: Arc::default(),
                too_busy: QuickAnswer::new(
                    &cfg_local,
                    ResultCode::DIAMETER_TOO_BUSY,
                    "too many requests waiting on this connection; retry later or elsewhere",
                ),
            }),
            listeners,
        })
    }

    /// The bound plain TCP addresses, in the order of `listen`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|l| l.tls.is_none())
            .filter_map(|l| l.tcp.local_addr().ok())
            .collect()
    }

    /// The bound TLS addresses, in the order of `tls_listen`.
    pub fn tls_local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|l| l.tls.is_some())
            .filter_map(|l| l.tcp.local_addr().ok())
            .collect()
    }

    /// Counters of the server's bounds at work (3004 answers, refused connections,
    /// timeouts); shared, so they can be read while [`Server::serve`] runs.
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Accepts and serves connections until `shutdown` completes; then stops accepting,
    /// lets every connection finish its requests in flight, sends DPR (REBOOTING) to every
    /// open peer, waits for the DPA (at most the request timeout), and returns once every
    /// connection is closed.
    ///
    /// # Errors
    /// None at present (accept errors are logged and retried); kept for future use.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (sd_tx, sd_rx) = watch::channel(false);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        for l in self.listeners {
            if let Ok(a) = l.tcp.local_addr() {
                let transport = if l.tls.is_some() { "tls" } else { "tcp" };
                tracing::info!(addr = %a, transport, "listening for Diameter peers");
            }
            tokio::spawn(accept_loop(
                l,
                Arc::clone(&self.shared),
                sd_rx.clone(),
                done_tx.clone(),
            ));
        }
        drop(done_tx);
        drop(sd_rx);
        shutdown.await;
        tracing::info!("shutting down: no new connections, disconnecting peers");
        let _ = sd_tx.send(true);
        // Every accept loop and connection holds a `done_tx` clone.
        let _ = done_rx.recv().await;
        tracing::info!("all peer connections closed");
        Ok(())
    }
}

/// Binds `cfg.listen` and serves until `shutdown` completes ([`Server::bind`] then
/// [`Server::serve`]).
///
/// # Errors
/// When an address cannot be bound.
pub async fn run<A: Application>(
    cfg: ServerConfig,
    app: Arc<A>,
    dict: Arc<Dictionary>,
    peers: Peers,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Server::bind(cfg, app, dict, peers)
        .await?
        .serve(shutdown)
        .await
}

async fn accept_loop<A: Application>(
    listener: Listener,
    shared: Arc<Shared<A>>,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.tcp.accept() => match r {
                Ok((stream, addr)) => {
                    let Some(slot) = shared.admit(addr.ip()) else {
                        // Dropping the stream closes it: the peer sees the connection end
                        // at once, and it no longer fills the listen backlog.
                        drop(stream);
                        let n = shared.stats.refused_connections.fetch_add(1, Ordering::Relaxed);
                        if !matches!(last_refusal_log, Some(t) if t.elapsed() < Duration::from_secs(1)) {
                            last_refusal_log = Some(Instant::now());
                            tracing::warn!(peer_addr = %addr, refused_so_far = n + 1,
                                max_connections = shared.cfg.max_connections,
                                max_connections_per_address = shared.cfg.max_connections_per_address,
                                "connection limit reached: closing new connection");
                        }
                        continue;
                    };
                    match &listener.tls {
                        None => {
                            tokio::spawn(connection::serve_tcp(
                                Arc::clone(&shared),
                                stream,
                                addr,
                                slot,
                                shutdown.clone(),
                                done.clone(),
                            ));
                        }
                        Some(acceptor) => {
                            tokio::spawn(serve_tls(
                                Arc::clone(&shared),
                                acceptor.clone(),
                                stream,
                                addr,
                                slot,
                                shutdown.clone(),
                                done.clone(),
                            ));
                        }
                    }
                }
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Warns when `max_connections` cannot be reached because of the open-files limit (Linux:
/// the soft "Max open files" of /proc/self/limits); each connection takes one descriptor.
fn warn_if_fd_limit_below(max_connections: usize) {
    let Ok(text) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft {
        // Listeners, the store, the API and the log take some descriptors too.
        if max_connections.saturating_add(64) > soft {
            tracing::warn!(
                max_connections,
                open_files_limit = soft,
                "max_connections is above what the open-files limit allows (ulimit -n); \
                 raise the limit or lower max_connections"
            );
        }
    }
}

/// A TLS connection: the handshake (bounded, abandoned at shutdown), then the same
/// connection logic as TCP over the split TLS stream.
async fn serve_tls<A: Application>(
    shared: Arc<Shared<A>>,
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    slot: ConnSlot,
    mut shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let local_ip = connection::prepare(&stream);
    tracing::info!(peer_addr = %addr, transport = "tls", "peer connected");
    let timeout = shared.cfg.tls_handshake_timeout;
    let tls = tokio::select! {
        t = crate::tls::accept(&acceptor, stream, addr, timeout, "diameter") => t,
        _ = shutdown.changed() => None,
    };
    let Some(tls) = tls else {
        return;
    };
    let (rd, wr) = tokio::io::split(tls);
    connection::serve(shared, rd, wr, addr, local_ip, slot, shutdown, done).await;
}
