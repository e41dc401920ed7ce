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
//!           │   check_request (3007/3001/3002/3003/5xxx)   │              ▲
//!           │   spawn app.handle (≤ max in flight) ────────┼── answers ───┘
//!           │   answers → Peers waiters, DWA → watchdog     │
//!           └──────────────────────────────────────────────┘
//! ```
//!
//! Must not depend on: the Cx layer, the store, the CLI.

mod connection;
mod peers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

pub use peers::{PeerError, PeerStatus, Peers};

use crate::app::Application;
use crate::dict::Dictionary;
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
    /// Requests of one connection being handled at once (default 256); past it the
    /// connection is not read until one completes (TCP back-pressure).
    pub max_in_flight_per_connection: usize,
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
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.tcp.accept() => match r {
                Ok((stream, addr)) => match &listener.tls {
                    None => {
                        tokio::spawn(connection::serve_tcp(
                            Arc::clone(&shared),
                            stream,
                            addr,
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
                            shutdown.clone(),
                            done.clone(),
                        ));
                    }
                },
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
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
    connection::serve(shared, rd, wr, addr, local_ip, shutdown, done).await;
}
