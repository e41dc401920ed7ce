//! One accepted connection: the driver (reading, framing, dispatching, timers) and the
//! writer task. See the diagram in [`super`].

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;

use super::peers::{ConnHandle, Outbox, PeerError, WriterMsg};
use super::{ConnSlot, Shared};
use crate::app::{Application, PeerInfo};
use crate::codec::header::{parse_header, FLAG_R};
use crate::codec::{check_frame, decode_frame, CommandCode, Frame, Message};
use crate::peer::{base, check_request, DisconnectCause, Disposition, PeerState, Responder};
use crate::peer::{Watchdog, WatchdogAction};

/// Times the writer yields to let the reader task add more answers to a write.
const COALESCE_ROUNDS: usize = 3;

/// Largest batch the writer hands to one `write_all`.
const WRITE_BATCH: usize = 256 * 1024;

/// Initial size of a connection's read buffer; it grows as messages need (up to the
/// largest message accepted). Small, so that an idle connection costs little.
const READ_BUFFER: usize = 4 * 1024;

/// The octets of one received request, counted against the connection's budget until the
/// request is answered (or dropped).
struct Held {
    bytes: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.bytes.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// A wait for one of the server-wide in-flight permits.
type PermitWait = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request whose handler did not answer at its first poll (a write waiting to be
/// durable, a remote store), with the permit and octets it holds until its answer is
/// queued for the writer; `Err` when the handler panicked.
type Waiting = Pin<
    Box<
        dyn Future<
                Output = Result<
                    (Message, OwnedSemaphorePermit, Held),
                    Box<dyn std::any::Any + Send>,
                >,
            > + Send,
    >,
>;

/// Writes all of `buf`, failing with `TimedOut` when one write makes no progress for
/// `timeout` (the peer does not read).
async fn write_all_timed<W: AsyncWrite + Unpin>(
    wr: &mut W,
    mut buf: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match tokio::time::timeout(timeout, wr.write(buf)).await {
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no write progress within {timeout:?}: the peer does not read"),
                ))
            }
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => buf = &buf[n..],
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Closes the output budget when the writer stops, however it stops, so that nobody
/// waits for room that will never come.
struct CloseBudget(Arc<Semaphore>);

impl Drop for CloseBudget {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<WriterMsg>,
    budget: Arc<Semaphore>,
    timeout: Duration,
) -> std::io::Result<()> {
    let _close = CloseBudget(budget);
    // Grows with the first batch (and keeps its size); nothing for an idle connection.
    let mut out = Vec::new();
    // The budget of the frames in `out`, given back once they are written.
    let mut held = Vec::new();
    'outer: while let Some(msg) = rx.recv().await {
        let mut close = false;
        match msg {
            WriterMsg::Frame(f, p) => {
                out.extend_from_slice(&f);
                held.push(p);
            }
            WriterMsg::Close => close = true,
        }
        // Let the reader task queue what it has ready first, for as long as it keeps
        // adding answers (a few rounds at most): they then go out in this write rather
        // than one `sendto` each.
        for _ in 0..COALESCE_ROUNDS {
            if close {
                break;
            }
            tokio::task::yield_now().await;
            let before = held.len();
            while !close && out.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(WriterMsg::Frame(f, p)) => {
                        out.extend_from_slice(&f);
                        held.push(p);
                    }
                    Ok(WriterMsg::Close) => close = true,
                    Err(_) => break,
                }
            }
            if held.len() == before || out.len() >= WRITE_BATCH {
                break;
            }
        }
        if !out.is_empty() {
            write_all_timed(&mut wr, &out, timeout).await?;
            out.clear();
            held.clear();
        }
        if close {
            break 'outer;
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

/// Makes `ans` the answer to the request `hbh`/`e2e`, whatever the application set.
fn answered(ans: &mut Message, hbh: u32, e2e: u32) {
    ans.header.hop_by_hop = hbh;
    ans.header.end_to_end = e2e;
    ans.header.flags &= !FLAG_R;
}

/// The per-connection state the driver keeps besides the [`Responder`].
struct Driver<A> {
    shared: Arc<Shared<A>>,
    addr: SocketAddr,
    responder: Responder,
    watchdog: Watchdog,
    tx: Outbox,
    conn: Option<Arc<ConnHandle>>,
    info: Option<Arc<PeerInfo>>,
    /// Requests waiting for their answers, polled on this task: when a group commit
    /// makes a hundred writes durable at once, their answers join one batch, without a
    /// task, a wakeup and a channel send each.
    waiting: FuturesUnordered<Waiting>,
    /// Stop reading; close once the waiting requests are done (and `final_answer` is written).
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
    /// Application requests received and not started yet (whole frames, oldest first):
    /// they wait for a slot of this connection and a server-wide permit. Bounded by
    /// `max_queued_per_connection`; past it requests are answered 3004.
    queue: VecDeque<(BytesMut, Held)>,
    /// Octets of this connection's requests queued or in flight.
    request_bytes: Arc<AtomicUsize>,
    /// The wait for a server-wide permit for the head of `queue`, when none was free.
    permit_wait: Option<PermitWait>,
    /// When the incomplete message at the front of the read buffer began to arrive.
    partial_since: Option<Instant>,
    /// Encoded answers of requests answered on this task, not yet queued for the writer.
    batch: Vec<u8>,
    /// The permits and octets of the requests in `batch`.
    batch_held: Vec<(OwnedSemaphorePermit, Held)>,
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
/// gone, and `slot` holds its place in the connection counts.
pub(super) async fn serve_tcp<A: Application>(
    shared: Arc<Shared<A>>,
    stream: TcpStream,
    addr: SocketAddr,
    slot: ConnSlot,
    shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let local_ip = prepare(&stream);
    tracing::info!(peer_addr = %addr, "peer connected");
    let (rd, wr) = stream.into_split();
    serve(shared, rd, wr, addr, local_ip, slot, shutdown, done).await;
}

/// Serves one connection, given as its reader and writer halves (a TCP stream's, or those
/// of a TLS stream from `tokio::io::split`), until it closes; `_done` tells the server
/// when it is gone, and `_slot` holds its place in the connection counts.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve<A, R, W>(
    shared: Arc<Shared<A>>,
    mut rd: R,
    wr: W,
    addr: SocketAddr,
    local_ip: IpAddr,
    _slot: ConnSlot,
    mut shutdown: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) where
    A: Application,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cap = shared.cfg.max_in_flight_per_connection.max(1) + 64;
    let (tx, rx, budget) = Outbox::new(cap, shared.buffer_bytes());
    let mut writer = tokio::spawn(write_loop(wr, rx, budget, shared.cfg.write_timeout));
    let mut d = Driver {
        responder: Responder::new(Arc::clone(&shared.policy), addr.ip(), local_ip),
        watchdog: Watchdog::new(shared.cfg.watchdog_tw, Instant::now().into_std()),
        shared,
        addr,
        tx,
        conn: None,
        info: None,
        waiting: FuturesUnordered::new(),
        stop_reading: false,
        final_answer: None,
        reason: "closed",
        draining: false,
        dwr: None,
        dpr: None,
        hard_deadline: None,
        queue: VecDeque::new(),
        request_bytes: Arc::new(AtomicUsize::new(0)),
        permit_wait: None,
        partial_since: None,
        batch: Vec::new(),
        batch_held: Vec::new(),
    };
    let max_len = d.shared.cfg.max_message_len;
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut writer_done = false;

    loop {
        // Dispatch every complete frame: application requests go to the queue (or are
        // answered 3004 when it is full), everything else is handled at once.
        let mut consumed = false;
        while !d.stop_reading {
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
                    consumed = true;
                    let frame = buf.split_to(n);
                    d.on_frame_received(frame).await;
                }
            }
        }
        // The clock of the message now at the front of the buffer.
        if buf.is_empty() || d.stop_reading {
            d.partial_since = None;
        } else if consumed || d.partial_since.is_none() {
            d.partial_since = Some(Instant::now());
        }
        d.start_queued().await;
        d.flush_batch().await;
        if d.stop_reading {
            if d.hard_deadline.is_none() {
                d.begin_close();
            }
            if d.waiting.is_empty() && d.queue.is_empty() {
                break;
            }
        }
        if d.draining
            && d.dpr.is_none()
            && d.waiting.is_empty()
            && d.queue.is_empty()
            && !d.stop_reading
        {
            d.send_dpr().await;
        }

        let deadline = d.next_deadline();
        tokio::select! {
            r = &mut writer, if !writer_done => {
                writer_done = true;
                d.reason = match r {
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                        d.shared.stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(peer = %d.host(), peer_addr = %addr, error = %e,
                            "peer does not read its answers: closing");
                        "peer does not read its answers"
                    }
                    _ => "write failed",
                };
                d.stop_reading = true;
                d.waiting.clear();
                d.queue.clear();
                d.permit_wait = None;
            }
            p = async {
                match d.permit_wait.as_mut() {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            }, if d.permit_wait.is_some() => {
                d.permit_wait = None;
                if let (Ok(permit), Some((frame, held))) = (p, d.queue.pop_front()) {
                    d.start_request(frame, permit, held).await;
                }
            }
            Some(done) = d.waiting.next(), if !d.waiting.is_empty() => {
                d.on_answered(done);
                // The others already answered join the same batch.
                while let Some(done) = std::future::poll_fn(|cx| match d.waiting.poll_next_unpin(cx) {
                    Poll::Ready(Some(done)) => Poll::Ready(Some(done)),
                    _ => Poll::Ready(None),
                })
                .await
                {
                    d.on_answered(done);
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
            r = rd.read_buf(&mut buf), if !d.stop_reading => {
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
        if writer_done && d.waiting.is_empty() {
            break;
        }
    }

    d.waiting.clear();
    let drain = d.shared.cfg.drain_timeout;
    if !writer_done {
        // Bounded: a peer that stops reading must not keep this task alive.
        let tx = d.tx.clone();
        let last = d.final_answer.take();
        let _ = tokio::time::timeout(drain, async move {
            if let Some(a) = last {
                tx.send(a.encode()).await;
            }
            tx.close().await;
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
        if let (Some(t), false) = (self.partial_since, self.stop_reading) {
            dl = dl.min(t + self.shared.cfg.incomplete_message_timeout);
        }
        dl
    }

    async fn send(&mut self, m: &Message) {
        self.flush_batch().await;
        self.tx.send(m.encode()).await;
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.hard_deadline.is_some_and(|t| now >= t) {
            tracing::warn!(peer = %self.host(), peer_addr = %self.addr, in_flight = self.waiting.len(),
                "drain timeout: abandoning requests in flight");
            self.waiting.clear();
            self.queue.clear();
            self.permit_wait = None;
            self.stop_reading = true;
            return;
        }
        if !self.stop_reading
            && self
                .partial_since
                .is_some_and(|t| now >= t + self.shared.cfg.incomplete_message_timeout)
        {
            self.shared
                .stats
                .incomplete_timeouts
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %self.host(), peer_addr = %self.addr,
                timeout = ?self.shared.cfg.incomplete_message_timeout,
                "a message did not complete in time: closing");
            self.reason = "message incomplete for too long";
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
                if self.tx.try_send(dwr.encode()) {
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

    /// Whether `frame` is an application request of an open connection, which waits in
    /// the queue; base-protocol messages, answers and anything before the CER do not.
    fn is_application_request(&self, frame: &[u8]) -> bool {
        let Ok((_, h)) = parse_header(frame) else {
            return false;
        };
        h.is_request()
            && matches!(self.responder.state(), PeerState::Open | PeerState::Closing)
            && !matches!(
                h.command,
                CommandCode::CAPABILITIES_EXCHANGE
                    | CommandCode::DEVICE_WATCHDOG
                    | CommandCode::DISCONNECT_PEER
            )
    }

    /// A complete frame arrived: queue an application request (answering 3004 when the
    /// queue is full), handle anything else now.
    async fn on_frame_received(&mut self, frame: BytesMut) {
        if !self.is_application_request(&frame) {
            self.on_frame(frame, None).await;
            return;
        }
        self.watchdog.on_traffic(Instant::now().into_std());
        let n = frame.len();
        if self.request_bytes.load(Ordering::Acquire) + n > self.shared.buffer_bytes() {
            self.answer_too_busy(&frame).await;
            return;
        }
        let max_queued = self.shared.cfg.max_queued_per_connection;
        let may_start_now = self.queue.is_empty()
            && self.permit_wait.is_none()
            && self.waiting.len() < self.shared.cfg.max_in_flight_per_connection.max(1);
        if self.queue.len() >= max_queued && !may_start_now {
            // The common case under overload: no work at all beyond the answer.
            self.answer_too_busy(&frame).await;
            return;
        }
        self.request_bytes.fetch_add(n, Ordering::AcqRel);
        let held = Held {
            bytes: Arc::clone(&self.request_bytes),
            n,
        };
        self.queue.push_back((frame, held));
        self.start_queued().await;
        if self.queue.len() > max_queued {
            if let Some((frame, held)) = self.queue.pop_back() {
                drop(held);
                self.answer_too_busy(&frame).await;
            }
        }
    }

    /// 3004 DIAMETER_TOO_BUSY (E bit), built from the header and the Session-Id alone.
    async fn answer_too_busy(&mut self, frame: &[u8]) {
        let n = self.shared.stats.too_busy.fetch_add(1, Ordering::Relaxed);
        if n % 10_000 == 0 {
            tracing::warn!(peer = %self.host(), peer_addr = %self.addr, too_busy_so_far = n + 1,
                queued = self.queue.len(), in_flight = self.waiting.len(),
                "overload: answering 3004 DIAMETER_TOO_BUSY");
        }
        if let Some(a) = self.shared.too_busy.answer(frame) {
            self.tx.send(a).await;
        }
    }

    /// Starts queued requests while this connection has a free slot and a server-wide
    /// permit is free; when none is, waits for one (in the main loop) for the head.
    async fn start_queued(&mut self) {
        let max = self.shared.cfg.max_in_flight_per_connection.max(1);
        while self.permit_wait.is_none() && self.waiting.len() < max && !self.queue.is_empty() {
            let sem = Arc::clone(&self.shared.in_flight);
            match sem.try_acquire_owned() {
                Ok(permit) => {
                    if let Some((frame, held)) = self.queue.pop_front() {
                        self.start_request(frame, permit, held).await;
                    }
                }
                Err(TryAcquireError::NoPermits) => {
                    let sem = Arc::clone(&self.shared.in_flight);
                    self.permit_wait = Some(Box::pin(sem.acquire_owned()));
                }
                Err(TryAcquireError::Closed) => break,
            }
        }
    }

    /// Decodes, checks and hands a queued request to the application, holding `permit`
    /// and its octets until it is answered.
    async fn start_request(&mut self, frame: BytesMut, permit: OwnedSemaphorePermit, held: Held) {
        self.on_frame(frame, Some((permit, held))).await;
    }

    async fn on_frame(&mut self, frame: BytesMut, permit: Option<(OwnedSemaphorePermit, Held)>) {
        let now = Instant::now().into_std();
        let dict = Arc::clone(&self.shared.dict);
        // The message's values are slices of the frame (no copy): the read buffer's block
        // the frame lies in (`READ_BUFFER` octets, often shared with the frames read with
        // it) stays allocated until the message is dropped. `held` counts the frame's
        // octets only.
        let frame = frame.freeze();
        let msg = match decode_frame(frame.clone(), &dict) {
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
                                error: (*e.error).clone(),
                            }),
                        );
                    }
                }
                let disp = self.responder.on_decode_error(&e, &frame);
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
                match permit {
                    Some((p, held)) => self.run_request(msg, p, held).await,
                    // Only queued requests reach the application.
                    None => self.answer_too_busy(&frame).await,
                }
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

    /// Hands `req` to the application. The handler is polled once here, on the
    /// connection's task: an answer that needs no waiting (a lookup served from memory) is
    /// encoded into `batch`, which goes to the writer as one frame once the frames read so
    /// far are dispatched; one that must wait (a write waiting to be durable, a remote
    /// store) joins `waiting`, polled on this task as it wakes, and its answer joins a
    /// batch the same way. A panic of the handler is caught either way, so it drops one
    /// request, not the connection.
    async fn run_request(&mut self, req: Message, permit: OwnedSemaphorePermit, held: Held) {
        let Some(info) = self.info.clone() else {
            return;
        };
        let app = Arc::clone(&self.shared.app);
        let (hbh, e2e) = (req.header.hop_by_hop, req.header.end_to_end);
        let mut fut = Box::pin(async move { app.handle(req, &info).await });
        let polled = std::future::poll_fn(|cx| {
            let once = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            Poll::Ready(once)
        })
        .await;
        match polled {
            Ok(Poll::Ready(mut ans)) => {
                answered(&mut ans, hbh, e2e);
                ans.encode_into(&mut self.batch);
                // Held until the batch is queued for the writer.
                self.batch_held.push((permit, held));
            }
            Ok(Poll::Pending) => {
                self.waiting.push(Box::pin(
                    AssertUnwindSafe(async move {
                        let mut ans = fut.await;
                        answered(&mut ans, hbh, e2e);
                        (ans, permit, held)
                    })
                    .catch_unwind(),
                ));
            }
            Err(_) => {
                tracing::error!(peer_addr = %self.addr, "request handler panicked");
            }
        }
    }

    /// Adds the answer of a request that waited to `batch`, or logs its handler's panic
    /// (which loses that request, not the connection).
    fn on_answered(
        &mut self,
        done: Result<(Message, OwnedSemaphorePermit, Held), Box<dyn std::any::Any + Send>>,
    ) {
        match done {
            Ok((ans, permit, held)) => {
                ans.encode_into(&mut self.batch);
                // Held until the batch is queued for the writer.
                self.batch_held.push((permit, held));
            }
            Err(_) => tracing::error!(peer_addr = %self.addr, "request handler panicked"),
        }
    }

    /// Queues the answers gathered in `batch` for the writer, as one frame.
    async fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = Vec::with_capacity(self.batch.len());
        let out = std::mem::replace(&mut self.batch, next);
        self.tx.send(out).await;
        self.batch_held.clear();
    }
}
