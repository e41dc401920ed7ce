//! One accepted connection: the driver (reading, framing, dispatching, timers) and the
//! writer task. See the diagram in [`super`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::peers::{ConnHandle, PeerError, WriterMsg};
use super::Shared;
use crate::app::{Application, PeerInfo};
use crate::codec::header::FLAG_R;
use crate::codec::{check_frame, decode_message, CommandCode, Frame, Message};
use crate::peer::{base, check_request, DisconnectCause, Disposition, PeerState, Responder};
use crate::peer::{Watchdog, WatchdogAction};

/// Largest batch the writer hands to one `write_all`.
const WRITE_BATCH: usize = 256 * 1024;

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<WriterMsg>,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(64 * 1024);
    'outer: while let Some(msg) = rx.recv().await {
        let mut close = false;
        match msg {
            WriterMsg::Frame(f) => out.extend_from_slice(&f),
            WriterMsg::Close => close = true,
        }
        while !close && out.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(WriterMsg::Frame(f)) => out.extend_from_slice(&f),
                Ok(WriterMsg::Close) => close = true,
                Err(_) => break,
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
        if close {
            break 'outer;
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

/// The per-connection state the driver keeps besides the [`Responder`].
struct Driver<A> {
    shared: Arc<Shared<A>>,
    addr: SocketAddr,
    responder: Responder,
    watchdog: Watchdog,
    tx: mpsc::Sender<WriterMsg>,
    conn: Option<Arc<ConnHandle>>,
    info: Option<Arc<PeerInfo>>,
    tasks: JoinSet<()>,
    /// Stop reading; close once the tasks are done (and `final_answer` is written).
    stop_reading: bool,
    final_answer: Option<Message>,
    /// Why the connection is closing (for the log).
    reason: &'static str,
    /// Shutdown requested: send DPR once in-flight requests are done.
    draining: bool,
    /// Our outstanding DWR.
    dwr: Option<u32>,
    /// Our DPR and how long we wait for its DPA.
    dpr: Option<(u32, Instant)>,
    /// Past this, abandon in-flight requests and close.
    hard_deadline: Option<Instant>,
}

/// The local address of `stream` (for the CEA's Host-IP-Address), and Nagle off: Diameter
/// messages are small and latency matters.
pub(super) fn prepare(stream: &TcpStream) -> IpAddr {
    let _ = stream.set_nodelay(true);
    stream
        .local_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

/// Serves one plain TCP connection until it closes; `done` tells the server when it is
/// gone.
pub(super) async fn serve_tcp<A: Application>(
    shared: Arc<Shared<A>>,
    stream: TcpStream,
    addr: SocketAddr,
    shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let local_ip = prepare(&stream);
    tracing::info!(peer_addr = %addr, "peer connected");
    let (rd, wr) = stream.into_split();
    serve(shared, rd, wr, addr, local_ip, shutdown, done).await;
}

/// Serves one connection, given as its reader and writer halves (a TCP stream's, or those
/// of a TLS stream from `tokio::io::split`), until it closes; `_done` tells the server
/// when it is gone.
pub(super) async fn serve<A, R, W>(
    shared: Arc<Shared<A>>,
    mut rd: R,
    wr: W,
    addr: SocketAddr,
    local_ip: IpAddr,
    mut shutdown: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) where
    A: Application,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cap = shared.cfg.max_in_flight_per_connection.max(1) + 64;
    let (tx, rx) = mpsc::channel(cap);
    let mut writer = tokio::spawn(write_loop(wr, rx));
    let mut d = Driver {
        responder: Responder::new(Arc::clone(&shared.policy), addr.ip(), local_ip),
        watchdog: Watchdog::new(shared.cfg.watchdog_tw, Instant::now().into_std()),
        shared,
        addr,
        tx,
        conn: None,
        info: None,
        tasks: JoinSet::new(),
        stop_reading: false,
        final_answer: None,
        reason: "closed",
        draining: false,
        dwr: None,
        dpr: None,
        hard_deadline: None,
    };
    let max_in_flight = d.shared.cfg.max_in_flight_per_connection.max(1);
    let max_len = d.shared.cfg.max_message_len;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut writer_done = false;

    loop {
        // Dispatch complete frames while there is room for more work.
        while !d.stop_reading && d.tasks.len() < max_in_flight {
            match check_frame(&buf, max_len) {
                Frame::Incomplete => break,
                Frame::Invalid(h, e) => {
                    tracing::info!(peer_addr = %addr, error = %e, "unframeable input");
                    let disp = d.responder.on_frame_error(&h, e);
                    d.reason = "framing error";
                    d.apply(disp).await;
                    buf.clear();
                }
                Frame::Complete(n) => {
                    let frame = buf.split_to(n);
                    d.on_frame(&frame).await;
                }
            }
        }
        if d.stop_reading {
            if d.hard_deadline.is_none() {
                d.begin_close();
            }
            if d.tasks.is_empty() {
                break;
            }
        }
        if d.draining && d.dpr.is_none() && d.tasks.is_empty() && !d.stop_reading {
            d.send_dpr().await;
        }

        let deadline = d.next_deadline();
        tokio::select! {
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                d.reason = "write failed";
                d.stop_reading = true;
                d.tasks.abort_all();
            }
            Some(r) = d.tasks.join_next(), if !d.tasks.is_empty() => {
                if let Err(e) = r {
                    if e.is_panic() {
                        tracing::error!(peer_addr = %addr, "request handler panicked");
                    }
                }
            }
            _ = shutdown.changed(), if !d.draining => {
                d.draining = true;
                if d.responder.state() == PeerState::Open {
                    d.responder.start_closing();
                    if let Some(c) = &d.conn {
                        c.set_closing();
                    }
                } else {
                    d.reason = "server shutdown";
                    d.stop_reading = true;
                }
                d.hard_deadline.get_or_insert(Instant::now() + d.shared.cfg.drain_timeout);
            }
            _ = tokio::time::sleep_until(deadline) => d.on_timer().await,
            r = rd.read_buf(&mut buf), if !d.stop_reading && d.tasks.len() < max_in_flight => {
                match r {
                    Ok(0) => {
                        d.reason = "peer closed the connection";
                        d.stop_reading = true;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(peer_addr = %addr, error = %e, "read failed");
                        d.reason = "read failed";
                        d.stop_reading = true;
                    }
                }
            }
        }
        if writer_done && d.tasks.is_empty() {
            break;
        }
    }

    d.tasks.abort_all();
    let drain = d.shared.cfg.drain_timeout;
    if !writer_done {
        // Bounded: a peer that stops reading must not keep this task alive.
        let tx = d.tx.clone();
        let last = d.final_answer.take();
        let _ = tokio::time::timeout(drain, async move {
            if let Some(a) = last {
                let _ = tx.send(WriterMsg::Frame(a.encode())).await;
            }
            let _ = tx.send(WriterMsg::Close).await;
        })
        .await;
    }
    d.responder.on_closed();
    if let Some(c) = &d.conn {
        c.fail_pending();
        d.shared.peers.unregister(c);
    }
    let Driver {
        tx, info, reason, ..
    } = d;
    drop(tx);
    if !writer_done && tokio::time::timeout(drain, &mut writer).await.is_err() {
        tracing::warn!(peer_addr = %addr, "peer does not read; dropping unwritten answers");
        writer.abort();
    }
    match info {
        Some(i) => {
            tracing::info!(peer = %i.origin_host, peer_addr = %addr, reason, "peer disconnected")
        }
        None => tracing::info!(peer_addr = %addr, reason, "connection closed"),
    }
}

impl<A: Application> Driver<A> {
    fn host(&self) -> &str {
        self.info.as_ref().map_or("-", |i| i.origin_host.as_str())
    }

    fn begin_close(&mut self) {
        self.responder.start_closing();
        if let Some(c) = &self.conn {
            c.set_closing();
        }
        self.hard_deadline
            .get_or_insert(Instant::now() + self.shared.cfg.drain_timeout);
    }

    fn next_deadline(&self) -> Instant {
        let mut dl = Instant::from_std(self.watchdog.deadline());
        if self.stop_reading {
            // Only the drain bound matters now.
            dl = Instant::now() + self.shared.cfg.drain_timeout;
        }
        if let Some((_, t)) = self.dpr {
            dl = dl.min(t);
        }
        if let Some(t) = self.hard_deadline {
            dl = dl.min(t);
        }
        dl
    }

    async fn send(&self, m: &Message) {
        let _ = self.tx.send(WriterMsg::Frame(m.encode())).await;
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.hard_deadline.is_some_and(|t| now >= t) {
            tracing::warn!(peer = %self.host(), peer_addr = %self.addr, in_flight = self.tasks.len(),
                "drain timeout: abandoning requests in flight");
            self.tasks.abort_all();
            self.stop_reading = true;
            return;
        }
        if self.dpr.is_some_and(|(_, t)| now >= t) {
            self.reason = "no DPA before the timeout";
            self.stop_reading = true;
            return;
        }
        if self.stop_reading {
            return;
        }
        if self.responder.state() == PeerState::WaitCer {
            if now.into_std() >= self.watchdog.deadline() {
                self.reason = "no CER within Tw";
                self.stop_reading = true;
            }
            return;
        }
        match self.watchdog.on_timer(now.into_std()) {
            Some(WatchdogAction::SendDwr) => {
                let hbh = self.shared.peers.next_hop_by_hop();
                let e2e = self.shared.peers.next_end_to_end();
                let dwr = base::watchdog_request(&self.shared.cfg.local, hbh, e2e);
                tracing::debug!(peer = %self.host(), hbh, "idle for Tw: sending DWR");
                // Never block on a congested writer for a DWR: a full queue is itself a
                // sign of trouble that the watchdog will catch.
                if self.tx.try_send(WriterMsg::Frame(dwr.encode())).is_ok() {
                    self.dwr = Some(hbh);
                }
            }
            Some(WatchdogAction::Close) => {
                tracing::info!(peer = %self.host(), peer_addr = %self.addr, "watchdog: no answer to DWR, closing");
                self.reason = "watchdog timeout";
                self.stop_reading = true;
            }
            None => {}
        }
    }

    async fn send_dpr(&mut self) {
        let hbh = self.shared.peers.next_hop_by_hop();
        let e2e = self.shared.peers.next_end_to_end();
        let dpr =
            base::disconnect_request(&self.shared.cfg.local, DisconnectCause::Rebooting, hbh, e2e);
        tracing::info!(peer = %self.host(), peer_addr = %self.addr, "sending DPR (REBOOTING)");
        self.send(&dpr).await;
        self.reason = "server shutdown";
        self.dpr = Some((hbh, Instant::now() + self.shared.cfg.request_timeout));
    }

    async fn apply(&mut self, disp: Disposition) {
        match disp {
            Disposition::Answer(a) => self.send(&a).await,
            Disposition::AnswerAndClose(a) => {
                self.final_answer = Some(a);
                self.stop_reading = true;
            }
            Disposition::Close => self.stop_reading = true,
            Disposition::Ignore | Disposition::Application => {}
            Disposition::Opened { cea, peer } => {
                let id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                let conn = Arc::new(ConnHandle::new(
                    id,
                    peer.origin_host.clone(),
                    self.addr,
                    self.tx.clone(),
                ));
                if self.draining {
                    conn.set_closing();
                }
                if let Some(old) = self.shared.peers.register(Arc::clone(&conn)) {
                    tracing::info!(peer = %peer.origin_host, old_addr = %old.addr,
                        "peer reconnected; the newer connection takes over");
                }
                tracing::info!(peer = %peer.origin_host, realm = %peer.origin_realm,
                    peer_addr = %self.addr, "CER accepted, peer open");
                self.info = Some(Arc::new(PeerInfo {
                    origin_host: peer.origin_host,
                    origin_realm: peer.origin_realm,
                    addr: self.addr,
                }));
                self.conn = Some(conn);
                self.send(&cea).await;
            }
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) {
        let now = Instant::now().into_std();
        let dict = Arc::clone(&self.shared.dict);
        let msg = match decode_message(frame, &dict) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer = %self.host(), peer_addr = %self.addr, error = %e, "message does not decode");
                if let Some(h) = e.header.filter(|h| !h.is_request()) {
                    self.watchdog.on_traffic(now);
                    if let Some(c) = &self.conn {
                        c.complete(
                            h.hop_by_hop,
                            Err(PeerError::InvalidAnswer {
                                host: c.origin_host.clone(),
                                error: e.error.clone(),
                            }),
                        );
                    }
                }
                let disp = self.responder.on_decode_error(&e, frame);
                if matches!(disp, Disposition::AnswerAndClose(_) | Disposition::Close) {
                    self.reason = "undecodable message";
                }
                self.apply(disp).await;
                return;
            }
        };
        // Any message restarts the watchdog (in WaitCer only a CER gets this far without
        // closing, and the CER timer then becomes the first Tw of the open connection).
        self.watchdog.on_traffic(now);
        let h = msg.header;
        if !h.is_request() {
            self.on_answer(msg, now);
            return;
        }
        tracing::debug!(peer = %self.host(), cmd = h.command.0, app = h.application.0,
            hbh = h.hop_by_hop, "request");
        let was_wait_cer = self.responder.state() == PeerState::WaitCer;
        let disp = self.responder.on_request(&msg, &dict);
        match disp {
            Disposition::Application => {
                let policy = self.responder.policy();
                if let Err(rej) = check_request(&msg, &dict, &policy.application_ids, &policy.local)
                {
                    tracing::debug!(peer = %self.host(), cmd = h.command.0, hbh = h.hop_by_hop,
                        rc = rej.result_code.0, "request rejected before the application");
                    self.send(&rej.answer).await;
                    return;
                }
                self.spawn_request(msg);
            }
            Disposition::AnswerAndClose(_) => {
                self.reason = if was_wait_cer {
                    if h.command == CommandCode::CAPABILITIES_EXCHANGE {
                        "CER refused"
                    } else {
                        "request before CER"
                    }
                } else if h.command == CommandCode::DISCONNECT_PEER {
                    "peer sent DPR"
                } else {
                    "CER refused"
                };
                if was_wait_cer || h.command == CommandCode::CAPABILITIES_EXCHANGE {
                    tracing::info!(peer_addr = %self.addr, origin_host = msg.str(crate::codec::codes::ORIGIN_HOST).unwrap_or("-"),
                        reason = self.reason, "closing connection");
                }
                self.apply(disp).await;
            }
            other => self.apply(other).await,
        }
    }

    fn on_answer(&mut self, msg: Message, now: std::time::Instant) {
        let hbh = msg.header.hop_by_hop;
        if self.dwr == Some(hbh) {
            self.dwr = None;
            self.watchdog.on_dwa(now);
            return;
        }
        if self.dpr.is_some_and(|(d, _)| d == hbh) {
            tracing::info!(peer = %self.host(), "DPA received");
            self.stop_reading = true;
            return;
        }
        let delivered = self.conn.as_ref().is_some_and(|c| c.complete(hbh, Ok(msg)));
        if !delivered {
            tracing::debug!(peer = %self.host(), hbh, "answer matches no outstanding request; dropped");
        }
    }

    fn spawn_request(&mut self, req: Message) {
        let Some(info) = self.info.clone() else {
            return;
        };
        let app = Arc::clone(&self.shared.app);
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let (hbh, e2e) = (req.header.hop_by_hop, req.header.end_to_end);
            let mut ans = app.handle(req, &info).await;
            ans.header.hop_by_hop = hbh;
            ans.header.end_to_end = e2e;
            ans.header.flags &= !FLAG_R;
            let _ = tx.send(WriterMsg::Frame(ans.encode())).await;
        });
    }
}
