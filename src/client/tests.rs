//! The client against a tiny scripted Diameter responder on 127.0.0.1:0.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

/// One accepted connection, driven by a test script.
struct Peer {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

impl Peer {
    async fn recv(&mut self) -> Option<Message> {
        let f = read_frame(&mut self.rd, &mut self.buf, 1 << 20)
            .await
            .ok()??;
        Some(decode_message(&f, Dictionary::builtin()).expect("client sends valid messages"))
    }

    async fn send(&mut self, m: &Message) {
        self.wr.write_all(&m.encode()).await.expect("write");
    }

    /// Reads the CER and answers it with a CEA carrying `rc`; returns the CER.
    async fn capabilities(&mut self, rc: ResultCode) -> Message {
        let cer = self.recv().await.expect("a CER");
        let mut cea = Message::answer_to(&cer);
        cea.set_result(rc);
        cea.push(Avp::identity(codes::ORIGIN_HOST, "hss.test"));
        cea.push(Avp::identity(codes::ORIGIN_REALM, "test"));
        self.send(&cea).await;
        cer
    }

    /// Answers `req` with 2001, Origin-Host and the request's Session-Id.
    fn answer(req: &Message) -> Message {
        let mut a = Message::answer_to(req);
        a.set_result(ResultCode::DIAMETER_SUCCESS);
        a.push(Avp::identity(codes::ORIGIN_HOST, "hss.test"));
        a.push(Avp::identity(codes::ORIGIN_REALM, "test"));
        a
    }
}

/// Accepts one connection on 127.0.0.1:0 and runs `script` on it.
async fn responder<F, Fut>(script: F) -> (SocketAddr, JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let (rd, wr) = s.into_split();
        script(Peer {
            rd,
            wr,
            buf: BytesMut::new(),
        })
        .await;
    });
    (addr, h)
}

fn cfg() -> ClientConfig {
    let mut c = ClientConfig::new("scscf.test", "test");
    c.request_timeout = Duration::from_secs(5);
    c
}

fn uar(session: &str) -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        0,
        0,
    )
    .with(Avp::utf8(codes::SESSION_ID, session))
    .with(Avp::identity(codes::ORIGIN_HOST, "scscf.test"))
}

/// Bounds every test: a hang is a failure, not a stuck CI job.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

#[tokio::test]
async fn sends_a_cer_advertising_cx_and_host_ip() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            let cer = p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let _ = tx.send(cer);
            while p.recv().await.is_some() {}
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let cer = rx.await.unwrap();
        assert!(cer.header.is_request());
        assert_eq!(cer.header.command, CommandCode::CAPABILITIES_EXCHANGE);
        assert_eq!(cer.str(codes::ORIGIN_HOST), Some("scscf.test"));
        assert_eq!(cer.str(codes::ORIGIN_REALM), Some("test"));
        let ip = cer.find(codes::HOST_IP_ADDRESS).unwrap();
        assert!(matches!(&ip.value, crate::codec::Value::Address(a) if a.ip() == Some("127.0.0.1".parse().unwrap())));
        assert_eq!(cer.u32(codes::VENDOR_ID), Some(0));
        assert_eq!(cer.str(codes::PRODUCT_NAME), Some("sichss"));
        assert_eq!(cer.u32(codes::SUPPORTED_VENDOR_ID), Some(VENDOR_3GPP));
        let vsai = cer.find(codes::VENDOR_SPECIFIC_APPLICATION_ID).unwrap();
        assert_eq!(vsai.find(codes::VENDOR_ID).and_then(Avp::as_u32), Some(10415));
        assert_eq!(
            vsai.find(codes::AUTH_APPLICATION_ID).and_then(Avp::as_u32),
            Some(16777216)
        );
        crate::codec::validate(&cer, Dictionary::builtin()).expect("the CER obeys its grammar");
        assert_eq!(c.peer(), ("hss.test", "test"));
    })
    .await
}

#[tokio::test]
async fn reports_a_refused_capabilities_exchange() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_UNKNOWN_PEER).await;
        })
        .await;
        let e = Client::connect(addr, cfg()).await.unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::CapabilitiesRefused {
                    result_code: 3010,
                    ..
                }
            ),
            "{e}"
        );
    })
    .await
}

#[tokio::test]
async fn gives_up_on_a_silent_server_after_the_connect_timeout() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            let _ = p.recv().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        let mut c = cfg();
        c.connect_timeout = Duration::from_millis(200);
        let e = Client::connect(addr, c).await.unwrap_err();
        assert!(matches!(e, ClientError::ConnectTimeout { .. }), "{e}");
    })
    .await
}

#[tokio::test]
async fn pipelines_requests_and_matches_answers_given_in_reverse_order() {
    const N: usize = 64;
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            // Read every request before answering any: only a pipelining client gets here.
            let mut reqs = Vec::new();
            while reqs.len() < N {
                reqs.push(p.recv().await.expect("a request"));
            }
            let mut ids: Vec<u32> = reqs.iter().map(|r| r.header.hop_by_hop).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), N, "hop-by-hop identifiers are unique");
            for r in reqs.iter().rev() {
                p.send(&Peer::answer(r)).await;
            }
            while p.recv().await.is_some() {}
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..N {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let sid = format!("scscf.test;1;{i}");
                let a = c.request(uar(&sid)).await.unwrap();
                assert_eq!(a.session_id(), Some(sid.as_str()));
                assert!(!a.header.is_request());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.in_flight(), 0);
    })
    .await
}

#[tokio::test]
async fn answers_a_dwr_from_the_server_with_a_dwa() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let dwr = Message::request(
                CommandCode::DEVICE_WATCHDOG,
                ApplicationId::COMMON,
                false,
                0xabcd,
                0x1234,
            )
            .with(Avp::identity(codes::ORIGIN_HOST, "hss.test"))
            .with(Avp::identity(codes::ORIGIN_REALM, "test"));
            p.send(&dwr).await;
            let dwa = p.recv().await.expect("a DWA");
            let _ = tx.send(dwa);
            // The connection still carries requests afterwards.
            while let Some(r) = p.recv().await {
                p.send(&Peer::answer(&r)).await;
            }
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let dwa = rx.await.unwrap();
        assert!(!dwa.header.is_request());
        assert_eq!(dwa.header.command, CommandCode::DEVICE_WATCHDOG);
        assert_eq!(dwa.header.hop_by_hop, 0xabcd);
        assert_eq!(dwa.header.end_to_end, 0x1234);
        assert_eq!(dwa.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        assert_eq!(dwa.str(codes::ORIGIN_HOST), Some("scscf.test"));
        crate::codec::validate(&dwa, Dictionary::builtin()).expect("the DWA obeys its grammar");
        let a = c.request(uar("s;1;1")).await.unwrap();
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    })
    .await
}

#[tokio::test]
async fn sends_its_own_dwr_and_reads_the_dwa() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            while let Some(r) = p.recv().await {
                assert_eq!(r.header.command, CommandCode::DEVICE_WATCHDOG);
                p.send(&Peer::answer(&r)).await;
            }
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        assert_eq!(c.watchdog().await.unwrap(), ResultCode::DIAMETER_SUCCESS);
    })
    .await
}

#[tokio::test]
async fn close_sends_a_dpr_and_waits_for_the_dpa() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let dpr = p.recv().await.expect("a DPR");
            p.send(&Peer::answer(&dpr)).await;
            // After the DPA the client half-closes: the stream ends.
            let after = p.recv().await;
            let _ = tx.send((dpr, after.is_none()));
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        c.close().await.unwrap();
        let (dpr, ended) = rx.await.unwrap();
        assert_eq!(dpr.header.command, CommandCode::DISCONNECT_PEER);
        assert!(dpr.header.is_request());
        assert_eq!(
            dpr.u32(codes::DISCONNECT_CAUSE),
            Some(DISCONNECT_DO_NOT_WANT_TO_TALK_TO_YOU as u32)
        );
        assert!(ended, "nothing follows the DPR");
        assert!(c.is_closed());
        let e = c.request(uar("s;1;2")).await.unwrap_err();
        assert!(matches!(e, ClientError::Closed { .. }), "{e}");
    })
    .await
}

#[tokio::test]
async fn answers_a_dpr_from_the_server_and_refuses_new_requests() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let dpr = Message::request(
                CommandCode::DISCONNECT_PEER,
                ApplicationId::COMMON,
                false,
                7,
                8,
            )
            .with(Avp::identity(codes::ORIGIN_HOST, "hss.test"))
            .with(Avp::identity(codes::ORIGIN_REALM, "test"))
            .with(Avp::enumerated(codes::DISCONNECT_CAUSE, 0));
            p.send(&dpr).await;
            let dpa = p.recv().await.expect("a DPA");
            let _ = tx.send(dpa);
            // The DPR's sender closes the connection (RFC 6733 §5.4).
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let dpa = rx.await.unwrap();
        assert_eq!(dpa.header.command, CommandCode::DISCONNECT_PEER);
        assert_eq!(dpa.header.hop_by_hop, 7);
        assert_eq!(dpa.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        let e = c.request(uar("s;1;3")).await.unwrap_err();
        assert!(matches!(e, ClientError::Closed { .. }), "{e}");
    })
    .await
}

#[tokio::test]
async fn hands_server_requests_to_the_hook_and_sends_its_answer() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let rtr = Message::request(
                CommandCode::REGISTRATION_TERMINATION,
                ApplicationId::CX,
                true,
                42,
                43,
            )
            .with(Avp::utf8(codes::SESSION_ID, "hss.test;1;rtr"))
            .with(Avp::identity(codes::ORIGIN_HOST, "hss.test"))
            .with(Avp::identity(codes::ORIGIN_REALM, "test"));
            p.send(&rtr).await;
            let rta = p.recv().await.expect("an RTA");
            let _ = tx.send(rta);
            while p.recv().await.is_some() {}
        })
        .await;
        let (hook_tx, mut hook_rx) = mpsc::channel(4);
        let mut c = cfg();
        c.on_request = Some(hook_tx);
        let _client = Client::connect(addr, c).await.unwrap();
        let incoming = hook_rx.recv().await.expect("the RTR reaches the hook");
        assert_eq!(
            incoming.request.header.command,
            CommandCode::REGISTRATION_TERMINATION
        );
        let a = incoming.answer_with(ResultCode::DIAMETER_SUCCESS);
        incoming.answer(a).await.unwrap();
        let rta = rx.await.unwrap();
        assert!(!rta.header.is_request());
        assert_eq!(rta.header.hop_by_hop, 42);
        assert_eq!(rta.header.end_to_end, 43);
        assert_eq!(rta.session_id(), Some("hss.test;1;rtr"));
        assert_eq!(rta.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
    })
    .await
}

#[tokio::test]
async fn answers_server_requests_with_3001_when_there_is_no_hook() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let ppr = Message::request(CommandCode::PUSH_PROFILE, ApplicationId::CX, true, 5, 6)
                .with(Avp::utf8(codes::SESSION_ID, "hss.test;1;ppr"))
                .with(Avp::identity(codes::ORIGIN_HOST, "hss.test"))
                .with(Avp::identity(codes::ORIGIN_REALM, "test"));
            p.send(&ppr).await;
            let _ = tx.send(p.recv().await.expect("a PPA"));
            while p.recv().await.is_some() {}
        })
        .await;
        let _c = Client::connect(addr, cfg()).await.unwrap();
        let ppa = rx.await.unwrap();
        assert_eq!(ppa.header.hop_by_hop, 5);
        assert!(ppa.header.is_error());
        assert_eq!(
            ppa.result_code(),
            Some(ResultCode::DIAMETER_COMMAND_UNSUPPORTED)
        );
    })
    .await
}

#[tokio::test]
async fn answers_5012_for_a_server_request_the_hook_drops() {
    bounded(async {
        let (tx, rx) = oneshot::channel();
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let rtr = Message::request(
                CommandCode::REGISTRATION_TERMINATION,
                ApplicationId::CX,
                true,
                9,
                9,
            )
            .with(Avp::utf8(codes::SESSION_ID, "hss.test;1;x"));
            p.send(&rtr).await;
            let _ = tx.send(p.recv().await.expect("an RTA"));
            while p.recv().await.is_some() {}
        })
        .await;
        let (hook_tx, mut hook_rx) = mpsc::channel(4);
        let mut c = cfg();
        c.on_request = Some(hook_tx);
        let _client = Client::connect(addr, c).await.unwrap();
        drop(hook_rx.recv().await.expect("the RTR"));
        let rta = rx.await.unwrap();
        assert_eq!(
            rta.result_code(),
            Some(ResultCode::DIAMETER_UNABLE_TO_COMPLY)
        );
    })
    .await
}

#[tokio::test]
async fn times_out_a_request_that_gets_no_answer() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            while p.recv().await.is_some() {}
        })
        .await;
        let mut c = cfg();
        c.request_timeout = Duration::from_millis(150);
        let c = Client::connect(addr, c).await.unwrap();
        let sent = std::time::Instant::now();
        let e = c.request(uar("s;1;4")).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Timeout { command: 300, .. }),
            "{e}"
        );
        assert!(
            sent.elapsed() >= Duration::from_millis(150),
            "never before its deadline"
        );
        assert_eq!(c.in_flight(), 0, "a timed-out request is forgotten");
    })
    .await
}

#[tokio::test]
async fn fails_requests_in_flight_when_the_server_hangs_up() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            let _ = p.recv().await;
            // Drop the connection without answering.
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let e = c.request(uar("s;1;5")).await.unwrap_err();
        assert!(matches!(e, ClientError::Closed { .. }), "{e}");
        assert!(c.is_closed());
    })
    .await
}

#[tokio::test]
async fn rejects_an_answer_whose_command_differs_from_the_request() {
    bounded(async {
        let (addr, _h) = responder(|mut p| async move {
            p.capabilities(ResultCode::DIAMETER_SUCCESS).await;
            while let Some(r) = p.recv().await {
                let mut a = Peer::answer(&r);
                a.header.command = CommandCode::LOCATION_INFO;
                p.send(&a).await;
            }
        })
        .await;
        let c = Client::connect(addr, cfg()).await.unwrap();
        let e = c.request(uar("s;1;6")).await.unwrap_err();
        assert!(matches!(e, ClientError::MismatchedAnswer { .. }), "{e}");
    })
    .await
}

#[test]
fn overdue_requests_are_looked_for_every_tenth_of_the_timeout_within_bounds() {
    assert_eq!(
        super::sweep_every(Duration::from_secs(5)),
        Duration::from_millis(100)
    );
    assert_eq!(
        super::sweep_every(Duration::from_millis(150)),
        Duration::from_millis(15)
    );
    assert_eq!(
        super::sweep_every(Duration::from_millis(3)),
        Duration::from_millis(1)
    );
    assert_eq!(super::sweep_every(Duration::ZERO), Duration::from_millis(1));
}
