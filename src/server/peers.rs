//! The registry of open peer connections by Origin-Host, for requests this HSS initiates
//! (Cx RTR/PPR, TS 29.229 §6.1.9, §6.1.11) and for status pages.
//!
//! Hop-by-hop ids are unique per connection (RFC 6733 §3: a counter started at a random
//! value); end-to-end ids follow RFC 6733 §3 (low 12 bits of the start time in the high
//! bits, a random low part, then incremented).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use crate::codec::header::{FLAG_E, FLAG_R};
use crate::codec::{Message, ProtocolError};
use crate::peer::PeerState;

/// Why an HSS-initiated request got no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// No open connection to a peer with this Origin-Host (it never connected, has not
    /// completed CER/CEA, or is closing).
    #[error("no open Diameter connection to peer {host:?}")]
    NotConnected {
        /// The Origin-Host asked for.
        host: String,
    },
    /// The peer did not answer within the request timeout.
    #[error(
        "peer {host:?} did not answer request hop-by-hop {hop_by_hop:#010x} within {timeout:?}"
    )]
    Timeout {
        /// The peer.
        host: String,
        /// The request's hop-by-hop id.
        hop_by_hop: u32,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection closed before the answer arrived.
    #[error("the connection to peer {host:?} closed before the answer arrived")]
    Closed {
        /// The peer.
        host: String,
    },
    /// The answer arrived but could not be decoded.
    #[error("peer {host:?} sent an answer that does not decode: {error}")]
    InvalidAnswer {
        /// The peer.
        host: String,
        /// What was wrong.
        error: ProtocolError,
    },
}

/// One open connection, as shown by [`Peers::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Origin-Host of the peer's CER.
    pub origin_host: String,
    /// The peer's transport address.
    pub addr: SocketAddr,
    /// Open or Closing.
    pub state: PeerState,
    /// When the CER was accepted.
    pub connected_since: SystemTime,
}

/// What the writer task of a connection receives.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// An encoded message to write.
    Frame(Vec<u8>),
    /// Write everything queued before this, then shut the socket down.
    Close,
}

type Waiter = oneshot::Sender<Result<Message, PeerError>>;

/// A registered connection (shared between its driver and [`Peers`]).
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
    pub(crate) origin_host: String,
    pub(crate) addr: SocketAddr,
    pub(crate) connected_since: SystemTime,
    open: AtomicBool,
    pub(crate) tx: mpsc::Sender<WriterMsg>,
    /// Outstanding HSS-initiated requests by hop-by-hop id; `None` once closed, so a
    /// request racing with the close fails at once instead of waiting for its timeout.
    pending: Mutex<Option<HashMap<u32, Waiter>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these short locks leaves consistent data; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnHandle {
    pub(crate) fn new(
        id: u64,
        origin_host: String,
        addr: SocketAddr,
        tx: mpsc::Sender<WriterMsg>,
    ) -> Self {
        ConnHandle {
            id,
            origin_host,
            addr,
            connected_since: SystemTime::now(),
            open: AtomicBool::new(true),
            tx,
            pending: Mutex::new(Some(HashMap::new())),
        }
    }

    /// Open → Closing: no new HSS-initiated requests.
    pub(crate) fn set_closing(&self) {
        self.open.store(false, Ordering::Release);
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Hands an answer to the waiting request; `false` when nobody waits for `hbh`.
    pub(crate) fn complete(&self, hbh: u32, res: Result<Message, PeerError>) -> bool {
        let w = lock(&self.pending).as_mut().and_then(|p| p.remove(&hbh));
        match w {
            Some(w) => {
                let _ = w.send(res);
                true
            }
            None => false,
        }
    }

    /// Fails every outstanding request with [`PeerError::Closed`].
    pub(crate) fn fail_pending(&self) {
        self.set_closing();
        let waiters = lock(&self.pending).take().unwrap_or_default();
        for (_, w) in waiters {
            let _ = w.send(Err(PeerError::Closed {
                host: self.origin_host.clone(),
            }));
        }
    }
}

#[derive(Debug)]
struct Inner {
    conns: Mutex<HashMap<String, Arc<ConnHandle>>>,
    hop_by_hop: AtomicU32,
    end_to_end: AtomicU32,
    request_timeout_ms: AtomicU64,
    /// Bumped whenever a connection is registered or unregistered.
    changed: watch::Sender<u64>,
}

/// Open connections by Origin-Host (case-insensitive). Cheap to clone; every clone sees
/// the same registry. Create one, give a clone to the server and one to the application
/// that sends requests.
///
/// When a peer connects again under an Origin-Host that is still registered, the newer
/// connection replaces the older one in the registry (the older one usually is a dead
/// connection the peer has given up on); the older one keeps running until it closes.
#[derive(Debug, Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

impl Default for Peers {
    fn default() -> Self {
        Self::new()
    }
}

impl Peers {
    /// An empty registry with a 5 s request timeout (the server sets its configured one).
    pub fn new() -> Self {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let e2e = ((secs & 0xfff) << 20) | (rand::random::<u32>() & 0x000f_ffff);
        Peers {
            inner: Arc::new(Inner {
                conns: Mutex::new(HashMap::new()),
                hop_by_hop: AtomicU32::new(rand::random()),
                end_to_end: AtomicU32::new(e2e),
                request_timeout_ms: AtomicU64::new(5000),
                changed: watch::Sender::new(0),
            }),
        }
    }

    /// Sets how long [`Peers::send_request`] waits for an answer.
    pub fn set_request_timeout(&self, t: Duration) {
        let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner.request_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// How long [`Peers::send_request`] waits for an answer.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.request_timeout_ms.load(Ordering::Relaxed))
    }

    /// A fresh End-to-End Identifier (RFC 6733 §3) for a request this node originates.
    pub fn next_end_to_end(&self) -> u32 {
        self.inner.end_to_end.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh Hop-by-Hop Identifier (used by the server for DWR/DPR and by
    /// [`Peers::send_request`]).
    pub fn next_hop_by_hop(&self) -> u32 {
        self.inner.hop_by_hop.fetch_add(1, Ordering::Relaxed)
    }

    /// A receiver that sees a change whenever a connection is registered or removed
    /// (e.g. to mirror the registry into a shared store).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Whether a peer with this Origin-Host has an open connection.
    pub fn is_connected(&self, origin_host: &str) -> bool {
        self.get(origin_host).is_some_and(|c| c.is_open())
    }

    /// Open connections, sorted by Origin-Host.
    pub fn list(&self) -> Vec<PeerStatus> {
        let mut v: Vec<PeerStatus> = lock(&self.inner.conns)
            .values()
            .map(|c| PeerStatus {
                origin_host: c.origin_host.clone(),
                addr: c.addr,
                state: if c.is_open() {
                    PeerState::Open
                } else {
                    PeerState::Closing
                },
                connected_since: c.connected_since,
            })
            .collect();
        v.sort_by(|a, b| a.origin_host.cmp(&b.origin_host));
        v
    }

    /// Sends `req` to the peer named `origin_host` and waits for its answer.
    ///
    /// A fresh hop-by-hop id is assigned (any given one is replaced) and the R bit is set;
    /// the end-to-end id is kept as given (take one from [`Peers::next_end_to_end`]).
    /// The answer is returned whatever its Result-Code.
    ///
    /// # Errors
    /// [`PeerError::NotConnected`] when no open connection has that Origin-Host,
    /// [`PeerError::Timeout`] after the request timeout, [`PeerError::Closed`] when the
    /// connection closes first, [`PeerError::InvalidAnswer`] for an undecodable answer.
    pub async fn send_request(
        &self,
        origin_host: &str,
        mut req: Message,
    ) -> Result<Message, PeerError> {
        let not_connected = || PeerError::NotConnected {
            host: origin_host.to_owned(),
        };
        let conn = self
            .get(origin_host)
            .filter(|c| c.is_open())
            .ok_or_else(not_connected)?;
        let hbh = self.next_hop_by_hop();
        req.header.hop_by_hop = hbh;
        req.header.flags = (req.header.flags | FLAG_R) & !FLAG_E;
        let (tx, rx) = oneshot::channel();
        match lock(&conn.pending).as_mut() {
            Some(p) => {
                p.insert(hbh, tx);
            }
            None => return Err(not_connected()),
        }
        tracing::debug!(
            peer = %conn.origin_host,
            cmd = req.header.command.0,
            hbh,
            "sending request"
        );
        if conn.tx.send(WriterMsg::Frame(req.encode())).await.is_err() {
            conn.complete(hbh, Err(not_connected()));
            return Err(PeerError::Closed {
                host: conn.origin_host.clone(),
            });
        }
        let timeout = self.request_timeout();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(res)) => res,
            Ok(Err(_)) => Err(PeerError::Closed {
                host: conn.origin_host.clone(),
            }),
            Err(_) => {
                if let Some(p) = lock(&conn.pending).as_mut() {
                    p.remove(&hbh);
                }
                Err(PeerError::Timeout {
                    host: conn.origin_host.clone(),
                    hop_by_hop: hbh,
                    timeout,
                })
            }
        }
    }

    fn get(&self, origin_host: &str) -> Option<Arc<ConnHandle>> {
        lock(&self.inner.conns)
            .get(&origin_host.to_ascii_lowercase())
            .cloned()
    }

    /// Registers an opened connection; returns the one it replaces, if any.
    pub(crate) fn register(&self, conn: Arc<ConnHandle>) -> Option<Arc<ConnHandle>> {
        let old = lock(&self.inner.conns).insert(conn.origin_host.to_ascii_lowercase(), conn);
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
        old
    }

    /// Removes `conn`, unless a newer connection of the same peer replaced it.
    pub(crate) fn unregister(&self, conn: &ConnHandle) {
        let mut m = lock(&self.inner.conns);
        let key = conn.origin_host.to_ascii_lowercase();
        if m.get(&key).is_some_and(|c| c.id == conn.id) {
            m.remove(&key);
            drop(m);
            self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
