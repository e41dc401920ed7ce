//! Overload: requests beyond the server's bounds (per connection and server-wide in
//! flight, then the per-connection queue) are answered 3004 DIAMETER_TOO_BUSY with the E
//! bit at once; every request gets exactly one answer; DWRs are answered during the flood;
//! normal answers resume by themselves when the load drops.
//!
//! [`flood_beyond_the_queues_is_answered_3004_and_the_server_recovers`] checks the
//! mechanism in process with small limits and a slow application;
//! [`ten_times_the_capacity_keeps_memory_bounded_and_recovers`] measures `sichss serve`'s
//! capacity, then offers ten times that load open-loop (`SICHSS_OVERLOAD_SECS`, default 3 s;
//! `SICHSS_OVERLOAD_FACTOR`, default 10) and reports peak memory and watchdog latency.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sichss::app::{Application, PeerInfo};
use sichss::codec::header::FLAG_E;
use sichss::codec::{check_frame, codes, decode_message, CommandCode, Frame, Message, ResultCode};
use sichss::dict::Dictionary;
use sichss::peer::base::vendor_specific_application_id;
use sichss::peer::LocalIdentity;
use sichss::server::{Peers, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::*;

/// Answers 2001 after `delay`; records how many requests it handles at once, in all and
/// per peer.
struct Slow {
    delay: Duration,
    now: AtomicUsize,
    max: AtomicUsize,
    per_peer: Mutex<HashMap<String, (usize, usize)>>,
}

impl Slow {
    fn new(delay: Duration) -> Self {
        Slow {
            delay,
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            per_peer: Mutex::new(HashMap::new()),
        }
    }

    fn per_peer_max(&self) -> usize {
        let m = self.per_peer.lock().unwrap();
        m.values().map(|&(_, max)| max).max().unwrap_or(0)
    }
}

impl Application for Slow {
    fn application_ids(&self) -> &[u32] {
        &[CX]
    }

    fn handle(&self, req: Message, peer: &PeerInfo) -> impl Future<Output = Message> + Send {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let host = peer.origin_host.clone();
        {
            let mut m = self.per_peer.lock().unwrap();
            let e = m.entry(host.clone()).or_default();
            e.0 += 1;
            e.1 = e.1.max(e.0);
        }
        async move {
            tokio::time::sleep(self.delay).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.per_peer.lock().unwrap().entry(host).or_default().0 -= 1;
            let mut a = Message::answer_to(&req);
            a.push(vendor_specific_application_id(CX));
            a.set_result(ResultCode::DIAMETER_SUCCESS);
            a.push(sichss::codec::Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
            a.push(sichss::codec::Avp::identity(codes::ORIGIN_HOST, "hss.test"));
            a.push(sichss::codec::Avp::identity(codes::ORIGIN_REALM, REALM));
            a.finish_answer(&req);
            a
        }
    }
}

async fn start_in_process(
    app: Arc<Slow>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = ServerConfig::new(LocalIdentity::new("hss.test", REALM));
    cfg.listen = vec!["127.0.0.1:0".parse().unwrap()];
    tweak(&mut cfg);
    let server = Server::bind(
        cfg,
        app,
        Arc::new(Dictionary::builtin().clone()),
        Peers::new(),
    )
    .await
    .unwrap();
    let addr = server.local_addrs()[0];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// What one flooding connection got back.
#[derive(Debug, Default)]
struct Answers {
    ok: Vec<u32>,
    busy: Vec<u32>,
    dwa_at: Option<usize>,
    last_ok_at: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_beyond_the_queues_is_answered_3004_and_the_server_recovers() {
    let _heavy = heavy().await;
    bounded(60, async {
        let app = Arc::new(Slow::new(Duration::from_millis(20)));
        let (addr, _stop) = start_in_process(Arc::clone(&app), |c| {
            c.max_in_flight_per_connection = 4;
            c.max_in_flight_total = 6;
            c.max_queued_per_connection = 8;
        })
        .await;
        let pop = sichss::bench::flows::Population::new(IMSI_BASE, 1).unwrap();
        let id = ids(&pop, 0);
        let lo = "127.0.0.1".parse().unwrap();
        let mut conns = Vec::new();
        for c in 0..2u32 {
            conns.push(Raw::open(lo, addr, &format!("flood{c}.test")).await);
        }
        // Each connection: 100 UARs, a DWR, 100 UARs, in one write.
        let per_conn = 200u32;
        let mut tasks = Vec::new();
        for (c, mut r) in conns.into_iter().enumerate() {
            let host = format!("flood{c}.test");
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let mut bytes = Vec::new();
                for i in 0..per_conn {
                    if i == per_conn / 2 {
                        dwr(&host, 0xdddd).encode_into(&mut bytes);
                    }
                    uar(&host, &id, 1000 + i, &format!("{host};{i}")).encode_into(&mut bytes);
                }
                r.send_bytes(&bytes).await.unwrap();
                let mut got = Answers::default();
                let mut seen = std::collections::HashSet::new();
                for n in 0..=per_conn as usize {
                    let a = r.recv(Duration::from_secs(20)).await.expect("an answer");
                    assert!(!a.header.is_request());
                    if a.header.command == CommandCode::DEVICE_WATCHDOG {
                        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
                        got.dwa_at = Some(n);
                        continue;
                    }
                    let hbh = a.header.hop_by_hop;
                    assert!(seen.insert(hbh), "hop-by-hop {hbh} answered twice");
                    assert_eq!(
                        a.session_id(),
                        Some(format!("{host};{}", hbh - 1000).as_str()),
                        "Session-Id echoed"
                    );
                    match a.result_code() {
                        Some(ResultCode::DIAMETER_SUCCESS) => {
                            assert_eq!(a.header.flags & FLAG_E, 0);
                            got.ok.push(hbh);
                            got.last_ok_at = n;
                        }
                        Some(ResultCode::DIAMETER_TOO_BUSY) => {
                            assert_ne!(a.header.flags & FLAG_E, 0, "3004 carries the E bit");
                            assert_eq!(a.str(codes::ORIGIN_HOST), Some("hss.test"));
                            got.busy.push(hbh);
                        }
                        other => panic!("unexpected result {other:?}"),
                    }
                }
                assert_eq!(seen.len(), per_conn as usize, "every request answered once");
                (r, got)
            }));
        }
        let mut conns = Vec::new();
        for (c, t) in tasks.into_iter().enumerate() {
            let (r, got) = t.await.unwrap();
            println!(
                "flood connection {c}: {} answered 2001, {} answered 3004, DWA as answer #{:?}, last 2001 as answer #{}",
                got.ok.len(),
                got.busy.len(),
                got.dwa_at,
                got.last_ok_at
            );
            assert!(!got.busy.is_empty(), "some requests met the bound");
            // At least what fits in flight and in the queue was served.
            assert!(got.ok.len() >= 8, "{} served", got.ok.len());
            let dwa = got.dwa_at.expect("the DWR was answered");
            assert!(
                dwa < got.last_ok_at,
                "the DWA ({dwa}) came before the flood's last answer ({})",
                got.last_ok_at
            );
            conns.push(r);
        }
        assert!(app.max.load(Ordering::SeqCst) <= 6, "server-wide bound");
        assert!(app.per_peer_max() <= 4, "per-connection bound");

        // The load is gone: requests within the bounds are all served again.
        for (c, r) in conns.iter_mut().enumerate() {
            let host = format!("flood{c}.test");
            let mut bytes = Vec::new();
            for i in 0..12u32 {
                uar(&host, &id, 5000 + i, &format!("{host};after;{i}")).encode_into(&mut bytes);
            }
            r.send_bytes(&bytes).await.unwrap();
            for _ in 0..12 {
                let a = r.recv(Duration::from_secs(10)).await.expect("an answer");
                assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_meet_the_byte_budget_of_their_connection() {
    let _heavy = heavy().await;
    bounded(60, async {
        let app = Arc::new(Slow::new(Duration::from_millis(50)));
        // 64 KiB of requests per connection; the counts are far away.
        let (addr, _stop) = start_in_process(Arc::clone(&app), |c| {
            c.max_message_len = 64 * 1024;
            c.connection_buffer_bytes = 64 * 1024;
        })
        .await;
        let pop = sichss::bench::flows::Population::new(IMSI_BASE, 1).unwrap();
        let id = ids(&pop, 0);
        let host = "big.test";
        let mut r = Raw::open("127.0.0.1".parse().unwrap(), addr, host).await;
        // 40 UARs of about 8 KiB (a long Session-Id): 320 KiB, five times the budget.
        let mut bytes = Vec::new();
        let pad = "y".repeat(8000);
        for i in 0..40u32 {
            uar(host, &id, 1 + i, &format!("{host};{i};{pad}")).encode_into(&mut bytes);
        }
        r.send_bytes(&bytes).await.unwrap();
        let (mut ok, mut busy) = (0, 0);
        for _ in 0..40 {
            let a = r.recv(Duration::from_secs(10)).await.expect("an answer");
            match a.result_code() {
                Some(ResultCode::DIAMETER_SUCCESS) => ok += 1,
                Some(ResultCode::DIAMETER_TOO_BUSY) => {
                    assert_ne!(a.header.flags & FLAG_E, 0);
                    busy += 1
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        println!("byte budget: {ok} served, {busy} answered 3004");
        // At most 64 KiB / 8 KiB = 8 at a time fit; the rest met the budget.
        assert!(busy > 0 && ok >= 7, "{ok} served, {busy} busy");
        assert!(app.per_peer_max() <= 8, "{}", app.per_peer_max());
        // Room again once answered.
        r.send(&uar(host, &id, 999, &format!("{host};after;{pad}")))
            .await;
        let a = r.recv(Duration::from_secs(10)).await.expect("an answer");
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Ten times the capacity against `sichss serve`.

/// Closed-loop UAR capacity of the server: `conns` connections × `window` requests in
/// flight for `dur`; answers per second.
async fn capacity(hss: &Serve, pop: &sichss::bench::flows::Population, dur: Duration) -> f64 {
    let conns = 8;
    let window = 64;
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let client = hss.client(&format!("cap{c}.test")).await;
        for w in 0..window {
            let client = client.clone();
            let done = Arc::clone(&done);
            let id = ids(pop, ((c * window + w) % pop.len() as usize) as u64);
            tasks.push(tokio::spawn(async move {
                let host = client.config().origin_host.clone();
                let mut n = 0;
                while Instant::now() < end {
                    n += 1;
                    let a = client
                        .request(uar(&host, &id, 0, &format!("{host};{w};{n}")))
                        .await
                        .expect("answer");
                    assert!(matches!(
                        a.experimental_result().map(|e| e.0),
                        Some(2001 | 2002)
                    ));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                client
            }));
        }
    }
    let started = Instant::now();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    for c in clients.iter().step_by(window) {
        let _ = c.close().await;
    }
    rate
}

/// Counters of the open-loop flood.
#[derive(Debug, Default)]
struct FloodCounts {
    sent: AtomicU64,
    ok: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
    dwr_sent: AtomicU64,
    dwa: AtomicU64,
    duplicates: AtomicU64,
    dwa_max_us: AtomicU64,
}

/// One flooding connection: sends UARs at `rate` per second for `dur` without waiting for
/// answers (plus a DWR every 100 ms), reads every answer.
async fn flood_connection(
    addr: SocketAddr,
    host: String,
    id: sichss::bench::flows::Identities,
    rate: f64,
    dur: Duration,
    counts: Arc<FloodCounts>,
) {
    let lo = "127.0.0.1".parse().unwrap();
    let r = Raw::open(lo, addr, &host).await;
    let (mut rd, mut wr) = r.stream.into_split();
    // MARs: each is a write (the AKA sequence number moves) that waits for the journal's
    // sync, so the flood fills the in-flight slots and the queue.
    // A lookup (UAR) is answered on the connection's task as fast as the flood can send
    // it, TCP holding the sender back: it would never meet the bounds.
    let mar = sichss::bench::flows::Requests::new(&host, REALM, 0).mar(&id, 0);
    let flood_session = mar.session_id().expect("the MAR's Session-Id").to_owned();
    let template = mar.encode();
    let dwr_sent_at: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    // Every hop-by-hop id seen, to check that each request is answered exactly once.
    let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sent_here = Arc::new(AtomicU64::new(0));

    let reader = {
        let counts = Arc::clone(&counts);
        let dwr_sent_at = Arc::clone(&dwr_sent_at);
        let seen = Arc::clone(&seen);
        let session = flood_session;
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(1 << 20);
            let mut decoded = 0;
            loop {
                while let Frame::Complete(n) = check_frame(&buf, 1 << 24) {
                    let f = buf.split_to(n);
                    let cmd = u32::from_be_bytes([0, f[5], f[6], f[7]]);
                    let hbh = u32::from_be_bytes([f[12], f[13], f[14], f[15]]);
                    if cmd == CommandCode::DEVICE_WATCHDOG.0 {
                        counts.dwa.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = dwr_sent_at.lock().unwrap().remove(&hbh) {
                            counts
                                .dwa_max_us
                                .fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                        }
                        continue;
                    }
                    {
                        let mut s = seen.lock().unwrap();
                        let i = hbh as usize;
                        if s.len() <= i {
                            s.resize(i + 1, 0);
                        }
                        if s[i] != 0 {
                            counts.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        s[i] = 1;
                    }
                    if f[4] & FLAG_E != 0 {
                        if decoded < 20 {
                            decoded += 1;
                            let a = decode_message(&f, Dictionary::builtin()).unwrap();
                            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_TOO_BUSY));
                            assert_eq!(a.session_id(), Some(session.as_str()));
                        }
                        counts.busy.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Result-Code or Experimental-Result 2001/2002: checked on a sample.
                        if decoded < 40 {
                            decoded += 1;
                            let a = decode_message(&f, Dictionary::builtin()).unwrap();
                            if a.result_code() != Some(ResultCode::DIAMETER_SUCCESS) {
                                counts.other.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
    };

    // Open loop: every 2 ms, send what the rate says is due by now.
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut hbh = 1u32;
    let mut next_dwr = started;
    let mut dwr_n = 0u32;
    let mut out = Vec::new();
    while started.elapsed() < dur {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as u32;
        out.clear();
        while hbh <= due {
            let at = out.len();
            out.extend_from_slice(&template);
            out[at + 12..at + 16].copy_from_slice(&hbh.to_be_bytes());
            out[at + 16..at + 20].copy_from_slice(&hbh.to_be_bytes());
            hbh += 1;
        }
        if Instant::now() >= next_dwr {
            next_dwr += Duration::from_millis(100);
            dwr_n += 1;
            let id = 0x8000_0000 | dwr_n;
            dwr_sent_at.lock().unwrap().insert(id, Instant::now());
            dwr(&host, id).encode_into(&mut out);
            counts.dwr_sent.fetch_add(1, Ordering::Relaxed);
        }
        if wr.write_all(&out).await.is_err() {
            break;
        }
        let n = (hbh - 1) as u64 - sent_here.load(Ordering::Relaxed);
        sent_here.fetch_add(n, Ordering::Relaxed);
        counts.sent.fetch_add(n, Ordering::Relaxed);
    }
    // Wait for the last answers, then leave.
    let sent = sent_here.load(Ordering::Relaxed) as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let answered = seen.lock().unwrap().iter().filter(|&&b| b != 0).count();
        if answered >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = wr.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_capacity_keeps_memory_bounded_and_recovers() {
    let _heavy = heavy().await;
    let secs: f64 = env_or("SICHSS_OVERLOAD_SECS", 3.0);
    let factor: f64 = env_or("SICHSS_OVERLOAD_FACTOR", 10.0);
    let conns: usize = env_or("SICHSS_OVERLOAD_CONNECTIONS", 8);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pop = populate(&data, 1000).await;
    // Bounds a flood meets whatever the host's speed: a read of the flood (4 KiB, a dozen
    // MARs) starts 8 and queues 8, and its MARs wait for their flush. With the default 256
    // and 256 a connection had to hold 512 MARs unflushed at once, which a flood held back
    // by TCP (the server reads as fast as it handles, and answers waiting MARs as their
    // flush ends) reached only in a stall of the host: on a slow one, never.
    let hss = Serve::start(
        &data,
        "[diameter]\nmax_in_flight_per_connection = 8\nmax_queued_per_connection = 8\n",
    );
    bounded(120 + secs as u64 * 2, async {
        let cap = capacity(&hss, &pop, Duration::from_secs(2)).await;
        let probe_client = hss.client("probe.test").await;
        let probe_id = ids(&pop, 999);
        let quiet = probe(
            &probe_client,
            &probe_id,
            Duration::from_millis(5),
            Duration::from_secs(1),
        )
        .await;
        let rss_before = hss.rss_kib();
        let hwm_before = hss.hwm_kib();

        let rate = cap * factor;
        let counts = Arc::new(FloodCounts::default());
        let dur = Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for c in 0..conns {
            tasks.push(tokio::spawn(flood_connection(
                hss.diameter,
                format!("flood{c}.test"),
                ids(&pop, c as u64),
                rate / conns as f64,
                dur,
                Arc::clone(&counts),
            )));
        }
        // Watch the server's memory and its watchdog on a well-behaved connection.
        let started = Instant::now();
        let mut rss_max = rss_before;
        let mut dwr_us = Vec::new();
        let mut dwr_failed = 0;
        while started.elapsed() < dur {
            rss_max = rss_max.max(hss.rss_kib());
            let t = Instant::now();
            match tokio::time::timeout(Duration::from_secs(5), probe_client.watchdog()).await {
                Ok(Ok(rc)) if rc.0 == 2001 => dwr_us.push(t.elapsed().as_micros() as u64),
                _ => dwr_failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        rss_max = rss_max.max(hss.rss_kib());
        let hwm_after = hss.hwm_kib();
        let dwr = Latency::from_samples(dwr_us, dwr_failed);
        // Recovery: a well-behaved peer is served normally again.
        let after = probe(
            &probe_client,
            &probe_id,
            Duration::from_millis(5),
            Duration::from_secs(1),
        )
        .await;
        let c = &counts;
        let (sent, ok, busy) = (
            c.sent.load(Ordering::Relaxed),
            c.ok.load(Ordering::Relaxed),
            c.busy.load(Ordering::Relaxed),
        );
        println!(
            "overload: capacity {cap:.0} UAR/s; offered {rate:.0}/s ({factor}x) on {conns} connections for {secs} s; \
             sent {sent} ({:.0}/s); answered 2001 {ok}, 3004 {busy}, other {}, duplicates {}; \
             in-band DWR {} sent, {} answered, slowest {:.1} ms; separate-connection DWR {dwr}; \
             RSS before {rss_before} KiB, max during {rss_max} KiB, VmHWM {hwm_before} -> {hwm_after} KiB; \
             UAR latency quiet {quiet}, after {after}",
            sent as f64 / secs,
            c.other.load(Ordering::Relaxed),
            c.duplicates.load(Ordering::Relaxed),
            c.dwr_sent.load(Ordering::Relaxed),
            c.dwa.load(Ordering::Relaxed),
            c.dwa_max_us.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        assert_eq!(ok + busy, sent, "every request answered");
        assert_eq!(c.duplicates.load(Ordering::Relaxed), 0, "no request answered twice");
        assert_eq!(c.other.load(Ordering::Relaxed), 0, "no wrong answer");
        assert!(busy > 0, "the overload met the bounds (3004)");
        assert_eq!(
            c.dwa.load(Ordering::Relaxed),
            c.dwr_sent.load(Ordering::Relaxed),
            "every in-band DWR answered"
        );
        assert_eq!(dwr.errors, 0, "every DWR answered during the flood");
        assert!(
            rss_max < rss_before + 256 * 1024,
            "memory stays bounded: {rss_before} -> {rss_max} KiB"
        );
        assert_eq!(after.errors, 0, "normal answers resume");
        assert!(after.n > 0);
        let _ = probe_client.close().await;
    })
    .await;
}
