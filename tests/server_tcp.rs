//! The server over real TCP on loopback (port 0): base protocol, pipelining, error
//! answers, HSS-initiated requests, watchdog and graceful shutdown. Every test is bounded
//! by a timeout; no test sleeps longer than the behaviour it waits for.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sichss::app::{Application, PeerInfo};
use sichss::codec::avp::AVP_FLAG_M;
use sichss::codec::header::{FLAG_E, FLAG_P, FLAG_R};
use sichss::codec::{
    check_frame, codes, decode_message, ApplicationId, Avp, CommandCode, Frame, Message,
    ResultCode, Value, VENDOR_3GPP,
};
use sichss::dict::Dictionary;
use sichss::peer::base::vendor_specific_application_id;
use sichss::peer::{AllowEntry, Allowlist, LocalIdentity, PeerState};
use sichss::server::{PeerError, Peers, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const CX: u32 = 16_777_216;
const HSS: &str = "hss.ims.test";
const REALM: &str = "ims.test";

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("test took too long")
}

fn dict() -> &'static Dictionary {
    Dictionary::builtin()
}

/// Answers every Cx request with Result-Code 2001, echoing Session-Id, after `delay`. A
/// Session-Id ending in `;slow` waits 2 ms whatever `delay` is; one ending in `;panic`
/// makes the handler panic, and one ending in `;late-panic` makes it panic after waiting
/// 2 ms.
struct Echo {
    delay: Duration,
    /// Requests whose handling has started.
    started: Arc<AtomicUsize>,
}

impl Application for Echo {
    fn application_ids(&self) -> &[u32] {
        &[CX]
    }

    fn handle(&self, req: Message, _peer: &PeerInfo) -> impl Future<Output = Message> + Send {
        let session = req.session_id().unwrap_or_default();
        let late_panic = session.ends_with(";late-panic");
        let delay = if session.ends_with(";slow") || late_panic {
            Duration::from_millis(2)
        } else {
            self.delay
        };
        let panics = session.ends_with(";panic");
        self.started.fetch_add(1, Ordering::SeqCst);
        async move {
            if panics {
                panic!("the test handler panics, as asked");
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if late_panic {
                panic!("the test handler panics after waiting, as asked");
            }
            let mut a = Message::answer_to(&req);
            a.push(vendor_specific_application_id(CX));
            a.set_result(ResultCode::DIAMETER_SUCCESS);
            a.push(Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
            a.push(Avp::identity(codes::ORIGIN_HOST, HSS));
            a.push(Avp::identity(codes::ORIGIN_REALM, REALM));
            a.finish_answer(&req);
            a
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    started: Arc<AtomicUsize>,
    peers: Peers,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start(delay: Duration, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::try_start(delay, "127.0.0.1:0".parse().unwrap(), tweak)
            .await
            .expect("bind loopback")
    }

    async fn try_start(
        delay: Duration,
        listen: SocketAddr,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> std::io::Result<TestServer> {
        let mut cfg = ServerConfig::new(LocalIdentity::new(HSS, REALM));
        cfg.listen = vec![listen];
        tweak(&mut cfg);
        let peers = Peers::new();
        let started = Arc::new(AtomicUsize::new(0));
        let server = Server::bind(
            cfg,
            Arc::new(Echo {
                delay,
                started: Arc::clone(&started),
            }),
            Arc::new(dict().clone()),
            peers.clone(),
        )
        .await?;
        let addr = server.local_addrs()[0];
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        Ok(TestServer {
            addr,
            started,
            peers,
            stop: Some(stop),
            task,
        })
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task
            .await
            .expect("server task")
            .expect("server result");
    }
}

/// A raw Diameter peer over TCP.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    hbh: u32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            hbh: 1000,
        }
    }

    async fn send(&mut self, m: &Message) {
        self.send_raw(&m.encode()).await;
    }

    async fn send_raw(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.expect("write");
    }

    /// The next message, or `None` at end of stream (or reset).
    async fn recv(&mut self) -> Option<Message> {
        loop {
            match check_frame(&self.buf, u32::MAX) {
                Frame::Complete(n) => {
                    let f = self.buf.split_to(n);
                    return Some(decode_message(&f, dict()).expect("server sent a valid message"));
                }
                Frame::Invalid(h, e) => panic!("server sent an unframeable message {h:?}: {e}"),
                Frame::Incomplete => {}
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn expect_eof(&mut self) {
        if let Some(m) = self.recv().await {
            panic!("expected the connection to close, got {:?}", m.header);
        }
    }

    fn next_hbh(&mut self) -> u32 {
        self.hbh += 1;
        self.hbh
    }

    async fn open(addr: SocketAddr, host: &str) -> Client {
        let mut c = Client::connect(addr).await;
        let cea = c.cer(cer(host)).await;
        assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        c
    }

    async fn cer(&mut self, m: Message) -> Message {
        self.send(&m).await;
        let a = self.recv().await.expect("a CEA");
        assert_eq!(a.header.command, CommandCode::CAPABILITIES_EXCHANGE);
        a
    }
}

fn cer_without_apps(host: &str) -> Message {
    Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        1,
        1,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, host))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::address(
        codes::HOST_IP_ADDRESS,
        "127.0.0.1".parse().unwrap(),
    ))
    .with(Avp::u32(codes::VENDOR_ID, VENDOR_3GPP))
    .with(Avp::utf8(codes::PRODUCT_NAME, "CDiameterPeer"))
}

fn cer(host: &str) -> Message {
    cer_without_apps(host)
        .with(vendor_specific_application_id(CX))
        .with(Avp::u32(codes::SUPPORTED_VENDOR_ID, VENDOR_3GPP))
}

fn uar(hbh: u32, session: &str) -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        hbh,
        hbh ^ 0x5555,
    )
    .with(Avp::utf8(codes::SESSION_ID, session))
    .with(vendor_specific_application_id(CX))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.test"))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::identity(codes::DESTINATION_REALM, REALM))
    .with(Avp::utf8(codes::USER_NAME, "alice@ims.test"))
    .with(Avp::utf8(codes::PUBLIC_IDENTITY, "sip:alice@ims.test"))
    .with(Avp::octets(codes::VISITED_NETWORK_IDENTIFIER, "ims.test"))
}

fn dwr(hbh: u32) -> Message {
    Message::request(
        CommandCode::DEVICE_WATCHDOG,
        ApplicationId::COMMON,
        false,
        hbh,
        hbh,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.test"))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
}

fn dpr(hbh: u32) -> Message {
    Message::request(
        CommandCode::DISCONNECT_PEER,
        ApplicationId::COMMON,
        false,
        hbh,
        hbh,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.test"))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::enumerated(codes::DISCONNECT_CAUSE, 0))
}

fn answer_to(req: &Message, rc: ResultCode) -> Message {
    let mut a = Message::answer_to(req);
    a.set_result(rc);
    a.push(Avp::identity(codes::ORIGIN_HOST, "icscf.ims.test"));
    a.push(Avp::identity(codes::ORIGIN_REALM, REALM));
    a
}

fn failed_avp(m: &Message) -> &Avp {
    m.find(codes::FAILED_AVP)
        .and_then(|f| f.members().first())
        .expect("Failed-AVP with one member")
}

async fn assert_still_open(c: &mut Client) {
    let h = c.next_hbh();
    c.send(&dwr(h)).await;
    let a = c.recv().await.expect("DWA");
    assert_eq!(a.header.hop_by_hop, h);
    assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
}

#[tokio::test]
async fn cer_cea_advertises_cx() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::connect(s.addr).await;
        let cea = c.cer(cer("icscf.ims.test")).await;
        assert_eq!(cea.header.flags, 0);
        assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        assert_eq!(cea.str(codes::ORIGIN_HOST), Some(HSS));
        assert_eq!(cea.str(codes::ORIGIN_REALM), Some(REALM));
        assert_eq!(cea.u32(codes::SUPPORTED_VENDOR_ID), Some(VENDOR_3GPP));
        let vsai = cea
            .find(codes::VENDOR_SPECIFIC_APPLICATION_ID)
            .expect("VSAI");
        assert_eq!(
            vsai.find(codes::VENDOR_ID).and_then(Avp::as_u32),
            Some(VENDOR_3GPP)
        );
        assert_eq!(
            vsai.find(codes::AUTH_APPLICATION_ID).and_then(Avp::as_u32),
            Some(CX)
        );
        // No Host-IP-Address configured: the connection's local address is advertised.
        let hip = cea.find(codes::HOST_IP_ADDRESS).expect("Host-IP-Address");
        assert!(
            matches!(&hip.value, Value::Address(a) if a.ip() == Some(IpAddr::from([127, 0, 0, 1])))
        );
        assert_eq!(cea.str(codes::PRODUCT_NAME), Some("sichss"));
        assert!(cea.find(codes::FIRMWARE_REVISION).is_some());
        assert!(cea.find(codes::ORIGIN_STATE_ID).is_some());
        sichss::codec::validate(&cea, dict()).expect("CEA grammar");
        let list = s.peers.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].origin_host, "icscf.ims.test");
        assert_eq!(list[0].state, PeerState::Open);
        assert!(s.peers.is_connected("ICSCF.ims.test"));
        drop(c); // a peer that is gone needs no DPR
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cer_without_host_ip_address_is_accepted() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::connect(s.addr).await;
        let mut m = cer("scscf.ims.test");
        m.avps.retain(|a| !a.is(codes::HOST_IP_ADDRESS));
        let cea = c.cer(m).await;
        assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        assert_still_open(&mut c).await;
    })
    .await;
}

#[tokio::test]
async fn cer_without_cx_gets_5010_and_close() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::connect(s.addr).await;
        let cea = c
            .cer(
                cer_without_apps("pcrf.test")
                    .with(Avp::u32(codes::AUTH_APPLICATION_ID, 16_777_238)),
            )
            .await;
        assert_eq!(
            cea.result_code(),
            Some(ResultCode::DIAMETER_NO_COMMON_APPLICATION)
        );
        assert_eq!(cea.header.flags & FLAG_E, 0);
        c.expect_eof().await;
        assert!(s.peers.list().is_empty());
    })
    .await;
}

#[tokio::test]
async fn unknown_peer_gets_3010() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |c| {
            c.allowlist = Allowlist {
                entries: vec![AllowEntry {
                    origin_host: Some("scscf.ims.test".into()),
                    source: "127.0.0.0/8".parse().ok(),
                }],
            };
        })
        .await;
        let mut c = Client::connect(s.addr).await;
        let cea = c.cer(cer("intruder.test")).await;
        assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_UNKNOWN_PEER));
        assert_eq!(cea.header.flags & FLAG_E, FLAG_E);
        c.expect_eof().await;
        // The allowed one gets in.
        let mut ok = Client::connect(s.addr).await;
        assert_eq!(
            ok.cer(cer("SCSCF.ims.test")).await.result_code(),
            Some(ResultCode::DIAMETER_SUCCESS)
        );
    })
    .await;
}

#[tokio::test]
async fn request_before_cer_closes_connection() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::connect(s.addr).await;
        c.send(&uar(5, "early;1")).await;
        // RFC 6733 §5.6: anything but a CER first means disconnect; we answer 3010 first.
        if let Some(a) = c.recv().await {
            assert_eq!(a.header.hop_by_hop, 5);
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_UNKNOWN_PEER));
            assert_eq!(a.header.flags & FLAG_E, FLAG_E);
        }
        c.expect_eof().await;
    })
    .await;
}

#[tokio::test]
async fn dwr_gets_dwa() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        c.send(&dwr(77)).await;
        let a = c.recv().await.expect("DWA");
        assert_eq!(a.header.command, CommandCode::DEVICE_WATCHDOG);
        assert_eq!(a.header.flags, 0);
        assert_eq!((a.header.hop_by_hop, a.header.end_to_end), (77, 77));
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        assert_eq!(a.str(codes::ORIGIN_HOST), Some(HSS));
    })
    .await;
}

#[tokio::test]
async fn dpr_gets_dpa_and_close() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        c.send(&dpr(8)).await;
        let a = c.recv().await.expect("DPA");
        assert_eq!(a.header.command, CommandCode::DISCONNECT_PEER);
        assert_eq!(a.header.hop_by_hop, 8);
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        c.expect_eof().await;
        // The registry forgets the peer once the connection is gone.
        for _ in 0..100 {
            if !s.peers.is_connected("icscf.ims.test") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!s.peers.is_connected("icscf.ims.test"));
        assert!(s.peers.list().is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn pipelined_requests_are_all_answered() {
    bounded(async {
        // A small in-flight bound exercises back-pressure as well; the delay makes the
        // answers complete out of order relative to reading.
        let s = TestServer::start(Duration::from_millis(2), |c| {
            c.max_in_flight_per_connection = 16
        })
        .await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = Vec::new();
        let mut want = HashSet::new();
        for i in 0..200u32 {
            let hbh = 10_000 + i;
            uar(hbh, &format!("icscf.ims.test;{i}")).encode_into(&mut bytes);
            want.insert(hbh);
        }
        c.send_raw(&bytes).await;
        let mut got = HashSet::new();
        for _ in 0..200 {
            let a = c.recv().await.expect("an answer");
            let hbh = a.header.hop_by_hop;
            assert_eq!(a.header.end_to_end, hbh ^ 0x5555);
            assert_eq!(a.header.flags, FLAG_P);
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
            assert_eq!(
                a.session_id(),
                Some(format!("icscf.ims.test;{}", hbh - 10_000).as_str())
            );
            assert!(got.insert(hbh), "answered twice: {hbh}");
        }
        assert_eq!(got, want);
        assert_still_open(&mut c).await;
    })
    .await;
}

#[tokio::test]
async fn answers_at_once_and_answers_that_wait_are_all_delivered_whatever_their_order() {
    bounded(async {
        // Every third request waits (polled on the connection's task until it answers);
        // the others are answered as they are read. Both kinds share one writer.
        let s = TestServer::start(Duration::ZERO, |c| c.max_in_flight_per_connection = 16).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = Vec::new();
        let mut want = HashSet::new();
        for i in 0..200u32 {
            let hbh = 20_000 + i;
            let session = if i % 3 == 0 {
                format!("icscf.ims.test;{i};slow")
            } else {
                format!("icscf.ims.test;{i}")
            };
            uar(hbh, &session).encode_into(&mut bytes);
            want.insert(hbh);
        }
        c.send_raw(&bytes).await;
        let mut got = HashSet::new();
        for _ in 0..200 {
            let a = c.recv().await.expect("an answer");
            let hbh = a.header.hop_by_hop;
            let i = hbh - 20_000;
            assert_eq!(a.header.end_to_end, hbh ^ 0x5555);
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
            let session = a.session_id().expect("Session-Id").to_owned();
            assert!(
                session.starts_with(&format!("icscf.ims.test;{i}")),
                "{session}"
            );
            assert_eq!(session.ends_with(";slow"), i % 3 == 0, "{session}");
            assert!(got.insert(hbh), "answered twice: {hbh}");
        }
        assert_eq!(got, want);
        assert_eq!(s.started.load(Ordering::SeqCst), 200);
        assert_still_open(&mut c).await;
    })
    .await;
}

/// The connection is still open, and the next request is answered as usual.
async fn assert_served_after_a_panic(c: &mut Client) {
    assert_still_open(c).await;
    let h = c.next_hbh();
    c.send(&uar(h, "icscf.ims.test;after")).await;
    let a = c.recv().await.expect("an answer after the panic");
    assert_eq!(a.header.hop_by_hop, h);
    assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
}

#[tokio::test]
async fn a_handler_that_panics_loses_its_request_not_the_connection() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = Vec::new();
        uar(31_001, "icscf.ims.test;1;panic").encode_into(&mut bytes);
        uar(31_002, "icscf.ims.test;2").encode_into(&mut bytes);
        uar(31_003, "icscf.ims.test;3;slow").encode_into(&mut bytes);
        c.send_raw(&bytes).await;
        let mut got = HashSet::new();
        for _ in 0..2 {
            let a = c.recv().await.expect("an answer");
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
            got.insert(a.header.hop_by_hop);
        }
        assert_eq!(got, HashSet::from([31_002, 31_003]));
        assert_served_after_a_panic(&mut c).await;
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_handler_that_panics_after_waiting_loses_its_request_and_frees_its_slot() {
    bounded(async {
        // One request in flight per connection: a slot the panic kept would leave the
        // requests after it queued for ever.
        let s = TestServer::start(Duration::ZERO, |c| c.max_in_flight_per_connection = 1).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = Vec::new();
        uar(32_001, "icscf.ims.test;1;late-panic").encode_into(&mut bytes);
        uar(32_002, "icscf.ims.test;2;slow").encode_into(&mut bytes);
        uar(32_003, "icscf.ims.test;3;late-panic").encode_into(&mut bytes);
        uar(32_004, "icscf.ims.test;4;slow").encode_into(&mut bytes);
        c.send_raw(&bytes).await;
        for hbh in [32_002, 32_004] {
            let a = c.recv().await.expect("an answer");
            assert_eq!(a.header.hop_by_hop, hbh);
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        }
        assert_served_after_a_panic(&mut c).await;
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unsupported_application_gets_3007_with_e_bit() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut m = uar(31, "s;3007");
        m.header.application = ApplicationId(16_777_238);
        c.send(&m).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.header.hop_by_hop, 31);
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_APPLICATION_UNSUPPORTED)
        );
        assert_eq!(a.header.flags, FLAG_P | FLAG_E);
        assert_eq!(a.session_id(), Some("s;3007"));
        assert_still_open(&mut c).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_command_gets_3001_with_e_bit() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut m = uar(32, "s;3001");
        m.header.command = CommandCode(399);
        c.send(&m).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.header.command, CommandCode(399));
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_COMMAND_UNSUPPORTED)
        );
        assert_eq!(a.header.flags & FLAG_E, FLAG_E);
        assert_still_open(&mut c).await;
    })
    .await;
}

#[tokio::test]
async fn malformed_avp_gets_5014_with_failed_avp() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        // Auth-Session-State (Enumerated, 4 octets of data) declared with 5 data octets:
        // the message length stays consistent, the AVP length is wrong for its type.
        let mut m = uar(33, "s;5014");
        let mut bytes = m.encode();
        let pos = find_avp(&bytes, codes::AUTH_SESSION_STATE.code).expect("Auth-Session-State");
        bytes[pos + 7] = 13;
        m.header.hop_by_hop = 0; // not used below
        c.send_raw(&bytes).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.header.hop_by_hop, 33);
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_INVALID_AVP_LENGTH)
        );
        assert_eq!(a.header.flags & FLAG_E, 0);
        assert_eq!(
            a.session_id(),
            Some("s;5014"),
            "Session-Id recovered from the raw frame"
        );
        assert_eq!(failed_avp(&a).code, codes::AUTH_SESSION_STATE.code);
        assert_still_open(&mut c).await;
    })
    .await;
}

/// Offset of the first top-level AVP with `code` in an encoded message.
fn find_avp(bytes: &[u8], code: u32) -> Option<usize> {
    let mut pos = 20;
    while pos + 8 <= bytes.len() {
        let c = u32::from_be_bytes(bytes[pos..pos + 4].try_into().ok()?);
        let len = u32::from_be_bytes([0, bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
        if c == code {
            return Some(pos);
        }
        pos += (len + 3) & !3;
    }
    None
}

#[tokio::test]
async fn unknown_mandatory_avp_gets_5001() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let strange = Avp {
            code: 99_999,
            flags: AVP_FLAG_M,
            vendor: None,
            value: Value::Unknown(b"what".to_vec().into()),
        };
        c.send(&uar(34, "s;5001").with(strange.clone())).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_AVP_UNSUPPORTED));
        assert_eq!(a.header.flags & FLAG_E, 0);
        assert_eq!(failed_avp(&a), &strange);
        // Without the M bit the same AVP is ignored.
        let benign = Avp {
            flags: 0,
            ..strange
        };
        c.send(&uar(35, "s;ok").with(benign)).await;
        assert_eq!(
            c.recv().await.expect("answer").result_code(),
            Some(ResultCode::DIAMETER_SUCCESS)
        );
    })
    .await;
}

#[tokio::test]
async fn missing_avp_gets_5005() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut m = uar(36, "s;5005");
        m.avps.retain(|a| !a.is(codes::PUBLIC_IDENTITY));
        c.send(&m).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_MISSING_AVP));
        assert_eq!(a.header.flags, FLAG_P);
        let f = failed_avp(&a);
        assert_eq!(
            (f.code, f.vendor),
            (codes::PUBLIC_IDENTITY.code, Some(VENDOR_3GPP))
        );
        assert_eq!(a.session_id(), Some("s;5005"));
    })
    .await;
}

#[tokio::test]
async fn bad_message_length_is_answered_then_closed() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = uar(37, "s;5015").encode();
        let bad = bytes.len() as u32 + 2; // not a multiple of 4
        bytes[1..4].copy_from_slice(&bad.to_be_bytes()[1..]);
        c.send_raw(&bytes).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.header.hop_by_hop, 37);
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH)
        );
        c.expect_eof().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_message_is_answered_then_closed() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        // Only the header of a 2 MiB message: the server must not wait for the rest.
        let mut bytes = uar(38, "s;big").encode();
        bytes[1..4].copy_from_slice(&(2u32 << 20).to_be_bytes()[1..]);
        c.send_raw(&bytes).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(a.header.hop_by_hop, 38);
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH)
        );
        c.expect_eof().await;
    })
    .await;
}

#[tokio::test]
async fn unsupported_version_is_answered_with_5011_then_closed() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = uar(39, "s;v2").encode();
        bytes[0] = 2;
        c.send_raw(&bytes).await;
        let a = c.recv().await.expect("answer");
        assert_eq!(
            a.result_code(),
            Some(ResultCode::DIAMETER_UNSUPPORTED_VERSION)
        );
        c.expect_eof().await;
    })
    .await;
}

#[tokio::test]
async fn one_bad_peer_does_not_disturb_another() {
    bounded(async {
        let s = TestServer::start(Duration::from_millis(20), |_| {}).await;
        let mut good = Client::open(s.addr, "icscf.ims.test").await;
        good.send(&uar(40, "good;1")).await;
        // Garbage from another connection, before and after its CER.
        let mut bad = Client::connect(s.addr).await;
        bad.send_raw(&[0xde; 64]).await;
        // 0xde has the R bit: answered with 5011 (version), then closed.
        if let Some(a) = bad.recv().await {
            assert_eq!(
                a.result_code(),
                Some(ResultCode::DIAMETER_UNSUPPORTED_VERSION)
            );
        }
        bad.expect_eof().await;
        let mut bad2 = Client::open(s.addr, "scscf.ims.test").await;
        bad2.send_raw(&[
            1, 0, 0, 21, 0x80, 0, 1, 44, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
        ])
        .await;
        assert!(bad2.recv().await.is_some());
        bad2.expect_eof().await;
        let a = good.recv().await.expect("answer");
        assert_eq!(
            (a.header.hop_by_hop, a.result_code()),
            (40, Some(ResultCode::DIAMETER_SUCCESS))
        );
        good.send(&uar(41, "good;2")).await;
        assert_eq!(good.recv().await.expect("answer").header.hop_by_hop, 41);
        assert_eq!(s.peers.list().len(), 1);
    })
    .await;
}

fn rtr(peers: &Peers, dest: &str) -> Message {
    Message::request(
        CommandCode::REGISTRATION_TERMINATION,
        ApplicationId::CX,
        true,
        0,
        peers.next_end_to_end(),
    )
    .with(Avp::utf8(codes::SESSION_ID, "hss.ims.test;9;9"))
    .with(vendor_specific_application_id(CX))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, HSS))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::identity(codes::DESTINATION_HOST, dest))
    .with(Avp::identity(codes::DESTINATION_REALM, REALM))
    .with(Avp::utf8(codes::USER_NAME, "alice@ims.test"))
    .with(Avp::grouped(
        codes::DEREGISTRATION_REASON,
        vec![Avp::enumerated(codes::REASON_CODE, 0)],
    ))
}

#[tokio::test]
async fn hss_initiated_request_is_answered_on_peer_connection() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "scscf.ims.test").await;
        let peers = s.peers.clone();
        let req = rtr(&peers, "scscf.ims.test");
        let e2e = req.header.end_to_end;
        let pending = tokio::spawn(async move { peers.send_request("SCSCF.IMS.TEST", req).await });
        let got = c.recv().await.expect("the RTR");
        assert_eq!(got.header.command, CommandCode::REGISTRATION_TERMINATION);
        assert_eq!(got.header.flags & FLAG_R, FLAG_R);
        assert_eq!(got.header.end_to_end, e2e);
        // Interleave a request of our own: the server keeps both directions apart.
        c.send(&uar(50, "own;1")).await;
        let mut rta = answer_to(&got, ResultCode::DIAMETER_SUCCESS);
        rta.header.flags |= FLAG_P;
        c.send(&rta).await;
        let own = c.recv().await.expect("UAA");
        assert_eq!(own.header.hop_by_hop, 50);
        let answer = pending.await.unwrap().expect("the RTA");
        assert_eq!(answer.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        assert_eq!(answer.header.hop_by_hop, got.header.hop_by_hop);
        // An unknown host fails at once.
        let err = s
            .peers
            .send_request("nobody.test", rtr(&s.peers, "nobody.test"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PeerError::NotConnected { ref host } if host == "nobody.test"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn unanswered_request_times_out() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |c| {
            c.request_timeout = Duration::from_millis(200)
        })
        .await;
        let mut c = Client::open(s.addr, "scscf.ims.test").await;
        let t0 = std::time::Instant::now();
        let err = s
            .peers
            .send_request("scscf.ims.test", rtr(&s.peers, "scscf.ims.test"))
            .await
            .unwrap_err();
        assert!(matches!(err, PeerError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() >= Duration::from_millis(200));
        assert!(err.to_string().contains("did not answer"), "{err}");
        // A late answer is dropped harmlessly.
        let got = c.recv().await.expect("the RTR");
        c.send(&answer_to(&got, ResultCode::DIAMETER_SUCCESS)).await;
        assert_still_open(&mut c).await;
    })
    .await;
}

#[tokio::test]
async fn hss_request_fails_when_the_peer_disconnects() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut c = Client::open(s.addr, "scscf.ims.test").await;
        let peers = s.peers.clone();
        let req = rtr(&peers, "scscf.ims.test");
        let pending = tokio::spawn(async move { peers.send_request("scscf.ims.test", req).await });
        c.recv().await.expect("the RTR");
        drop(c);
        let err = pending.await.unwrap().unwrap_err();
        assert!(matches!(err, PeerError::Closed { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_sends_dpr_and_finishes_in_flight() {
    bounded(async {
        let s = TestServer::start(Duration::from_millis(200), |_| {}).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let mut bytes = Vec::new();
        for i in 0..5 {
            uar(60 + i, &format!("s;{i}")).encode_into(&mut bytes);
        }
        c.send_raw(&bytes).await;
        // Shut down only once all five are in the application.
        while s.started.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let peers = s.peers.clone();
        let stopper = tokio::spawn(s.shutdown());
        let mut answered = HashSet::new();
        for _ in 0..5 {
            let a = c.recv().await.expect("an answer before the DPR");
            assert!(!a.header.is_request(), "DPR came before the answers");
            assert_eq!(a.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
            answered.insert(a.header.hop_by_hop);
        }
        assert_eq!(answered, (60..65).collect());
        let d = c.recv().await.expect("the DPR");
        assert_eq!(d.header.command, CommandCode::DISCONNECT_PEER);
        assert!(d.header.is_request());
        assert_eq!(d.u32(codes::DISCONNECT_CAUSE), Some(0), "REBOOTING");
        assert!(
            !peers.is_connected("icscf.ims.test"),
            "no HSS requests to a closing peer"
        );
        c.send(&answer_to(&d, ResultCode::DIAMETER_SUCCESS)).await;
        c.expect_eof().await;
        stopper.await.unwrap();
        // No longer listening.
        assert!(TcpStream::connect(c.stream.peer_addr().unwrap())
            .await
            .is_err());
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_the_connection_when_the_dpa_never_comes() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |c| {
            c.request_timeout = Duration::from_millis(100)
        })
        .await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let stopper = tokio::spawn(s.shutdown());
        let d = c.recv().await.expect("the DPR");
        assert_eq!(d.header.command, CommandCode::DISCONNECT_PEER);
        c.expect_eof().await;
        stopper.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn server_sends_dwr_when_idle_and_closes_a_silent_peer() {
    bounded(async {
        let tw = Duration::from_millis(150);
        let s = TestServer::start(Duration::ZERO, |c| c.watchdog_tw = tw).await;
        let mut c = Client::open(s.addr, "icscf.ims.test").await;
        let t0 = std::time::Instant::now();
        let d = c.recv().await.expect("a DWR");
        assert!(t0.elapsed() >= tw - Duration::from_millis(20));
        assert_eq!(d.header.command, CommandCode::DEVICE_WATCHDOG);
        assert!(d.header.is_request());
        c.send(&answer_to(&d, ResultCode::DIAMETER_SUCCESS)).await;
        // Answered: the next DWR comes one Tw later. Leave it unanswered.
        let d2 = c.recv().await.expect("a second DWR");
        assert_eq!(d2.header.command, CommandCode::DEVICE_WATCHDOG);
        assert_ne!(d2.header.hop_by_hop, d.header.hop_by_hop);
        let t1 = std::time::Instant::now();
        c.expect_eof().await;
        assert!(
            t1.elapsed() >= 2 * tw - Duration::from_millis(20),
            "closed after two Tw without DWA"
        );
    })
    .await;
}

#[tokio::test]
async fn connection_without_cer_is_closed_after_tw() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |c| {
            c.watchdog_tw = Duration::from_millis(100)
        })
        .await;
        let mut c = Client::connect(s.addr).await;
        c.expect_eof().await;
    })
    .await;
}

#[tokio::test]
async fn ipv6_loopback_works() {
    bounded(async {
        let s =
            match TestServer::try_start(Duration::ZERO, "[::1]:0".parse().unwrap(), |_| {}).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipping ipv6_loopback_works: cannot bind [::1]: {e}");
                    return;
                }
            };
        let mut c = Client::connect(s.addr).await;
        let cea = c.cer(cer("icscf.ims.test")).await;
        assert_eq!(cea.result_code(), Some(ResultCode::DIAMETER_SUCCESS));
        let hip = cea.find(codes::HOST_IP_ADDRESS).expect("Host-IP-Address");
        assert!(matches!(&hip.value, Value::Address(a) if a.ip() == Some("::1".parse().unwrap())));
        c.send(&uar(70, "v6;1")).await;
        assert_eq!(
            c.recv().await.expect("answer").result_code(),
            Some(ResultCode::DIAMETER_SUCCESS)
        );
        drop(c);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_reconnecting_peer_takes_over_its_origin_host() {
    bounded(async {
        let s = TestServer::start(Duration::ZERO, |_| {}).await;
        let mut old = Client::open(s.addr, "scscf.ims.test").await;
        let mut new = Client::open(s.addr, "scscf.ims.test").await;
        assert_eq!(s.peers.list().len(), 1);
        let peers = s.peers.clone();
        let req = rtr(&peers, "scscf.ims.test");
        let pending = tokio::spawn(async move { peers.send_request("scscf.ims.test", req).await });
        let got = new.recv().await.expect("the RTR on the newer connection");
        new.send(&answer_to(&got, ResultCode::DIAMETER_SUCCESS))
            .await;
        pending.await.unwrap().expect("RTA");
        // The older connection closing does not unregister the newer one.
        drop(old.stream);
        old = Client::open(s.addr, "icscf.ims.test").await;
        assert_still_open(&mut old).await;
        assert!(s.peers.is_connected("scscf.ims.test"));
        assert_eq!(s.peers.list().len(), 2);
    })
    .await;
}
