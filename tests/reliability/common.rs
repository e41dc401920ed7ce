//! Shared by the reliability tests: a `sichss serve` process with a given configuration,
//! its memory and descriptors from /proc, a synthetic population written to its store, a
//! raw Diameter peer that can misbehave, and a latency probe for a well-behaved peer.

#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sichss::bench::flows::{Identities, Population};
use sichss::bench::DEFAULT_REALM;
use sichss::client::{Client, ClientConfig};
use sichss::codec::{
    check_frame, codes, decode_message, ApplicationId, Avp, CommandCode, Frame, Message,
    VENDOR_3GPP,
};
use sichss::dict::Dictionary;
use sichss::peer::base::vendor_specific_application_id;
use sichss::store::sled::SledStore;
use sichss::store::SubscriberStore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::serve_process;

/// The Cx application id.
pub const CX: u32 = 16_777_216;

/// The HSS's realm (its default configuration), used as Origin- and Destination-Realm.
pub const REALM: &str = DEFAULT_REALM;

/// First IMSI of the synthetic population.
pub const IMSI_BASE: &str = "001010000000000";

static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serialises the tests of this binary that load the machine or measure latency, so that
/// they do not disturb each other's figures.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.lock().await
}

/// Runs `f` for at most `secs` seconds.
pub async fn bounded<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test took too long")
}

/// A number from the environment (for longer manual runs), else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running `sichss serve` on ephemeral loopback ports; killed on drop.
pub struct Serve {
    pub child: Child,
    pub diameter: SocketAddr,
    pub api: SocketAddr,
    pub stderr: PathBuf,
}

impl Serve {
    /// Starts `sichss serve` with its store in `data` and `config` (TOML) as its
    /// configuration file; logs at `warn` go to `data.stderr.log`.
    pub fn start(data: &Path, config: &str) -> Serve {
        let cfg_path = data.with_extension("toml");
        std::fs::write(&cfg_path, config).unwrap();
        let stderr = data.with_extension("stderr.log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .unwrap();
        let mut cmd = serve_process::command();
        cmd.arg("--config")
            .arg(&cfg_path)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stderr(err);
        let (child, ready) = serve_process::spawn(&mut cmd, Duration::from_secs(30), Some(&stderr));
        Serve {
            child,
            diameter: ready.diameter,
            api: ready.api,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> u64 {
        sichss::bench::procfs::memory_kib(self.pid()).map_or(0, |(_, rss)| rss)
    }

    /// Peak resident memory since start (VmHWM), KiB.
    pub fn hwm_kib(&self) -> u64 {
        sichss::bench::procfs::memory_kib(self.pid()).map_or(0, |(hwm, _)| hwm)
    }

    /// Open file descriptors now.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits (at most `within`) until the server holds at most `n` descriptors; returns the
    /// count seen last.
    pub async fn fds_settle(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let f = self.fds();
            if f <= n || Instant::now() >= deadline {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A well-behaved Cx client (CER/CEA done).
    pub async fn client(&self, origin_host: &str) -> Client {
        let mut cfg = ClientConfig::new(origin_host, REALM);
        cfg.request_timeout = Duration::from_secs(10);
        Client::connect(self.diameter, cfg)
            .await
            .expect("CER/CEA with sichss serve")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `n` synthetic subscribers (two services each, demo K/OPc) into the sled store
/// in `data`, which no process may hold open.
pub async fn populate(data: &Path, n: u64) -> Population {
    let pop = Population::new(IMSI_BASE, n).unwrap();
    let subs = (0..n)
        .map(|i| sichss::bench::provision::subscriber(&pop.identities(i).unwrap()))
        .collect();
    let store = SledStore::open(data).unwrap();
    store.put_many(subs).await.unwrap();
    drop(store);
    pop
}

/// The identities of member `i`.
pub fn ids(pop: &Population, i: u64) -> Identities {
    pop.identities(i).unwrap()
}

/// Soft limit of open files of this process (`ulimit -n`), Linux.
pub fn open_files_limit() -> Option<usize> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// Raw peers.

/// A CER advertising Cx.
pub fn cer(host: &str, hbh: u32) -> Message {
    Message::request(
        CommandCode::CAPABILITIES_EXCHANGE,
        ApplicationId::COMMON,
        false,
        hbh,
        hbh,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, host))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::address(
        codes::HOST_IP_ADDRESS,
        "127.0.0.1".parse().unwrap(),
    ))
    .with(Avp::u32(codes::VENDOR_ID, VENDOR_3GPP))
    .with(Avp::utf8(codes::PRODUCT_NAME, "reliability-test"))
    .with(vendor_specific_application_id(CX))
    .with(Avp::u32(codes::SUPPORTED_VENDOR_ID, VENDOR_3GPP))
}

/// A DWR.
pub fn dwr(host: &str, hbh: u32) -> Message {
    Message::request(
        CommandCode::DEVICE_WATCHDOG,
        ApplicationId::COMMON,
        false,
        hbh,
        hbh,
    )
    .with(Avp::identity(codes::ORIGIN_HOST, host))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
}

/// A UAR (registration) for a member of the population, with this hop-by-hop id and
/// Session-Id.
pub fn uar(host: &str, id: &Identities, hbh: u32, session: &str) -> Message {
    Message::request(
        CommandCode::USER_AUTHORIZATION,
        ApplicationId::CX,
        true,
        hbh,
        hbh,
    )
    .with(Avp::utf8(codes::SESSION_ID, session))
    .with(vendor_specific_application_id(CX))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, host))
    .with(Avp::identity(codes::ORIGIN_REALM, REALM))
    .with(Avp::identity(codes::DESTINATION_REALM, REALM))
    .with(Avp::utf8(codes::USER_NAME, &id.impis[0]))
    .with(Avp::utf8(codes::PUBLIC_IDENTITY, &id.sip))
    .with(Avp::octets(
        codes::VISITED_NETWORK_IDENTIFIER,
        id.home.as_bytes().to_vec(),
    ))
}

/// A TCP connection from `source` (any 127.0.0.0/8 address works on Linux loopback).
pub async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(source, 0))?;
    let stream = s.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A raw Diameter peer: sends what it is told, reads answers when asked.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(source: IpAddr, to: SocketAddr) -> Raw {
        Raw::from_stream(connect_from(source, to).await.expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects and completes CER/CEA as `host`.
    pub async fn open(source: IpAddr, to: SocketAddr, host: &str) -> Raw {
        let mut r = Raw::connect(source, to).await;
        r.send(&cer(host, 1)).await;
        let a = r.recv(Duration::from_secs(10)).await.expect("a CEA");
        assert_eq!(a.header.command, CommandCode::CAPABILITIES_EXCHANGE);
        assert_eq!(a.result_code().map(|r| r.0), Some(2001));
        r
    }

    pub async fn send(&mut self, m: &Message) {
        self.stream.write_all(&m.encode()).await.expect("send");
    }

    pub async fn send_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b).await
    }

    /// The next message, or `None` on EOF, error or timeout.
    pub async fn recv(&mut self, within: Duration) -> Option<Message> {
        read_message(&mut self.stream, &mut self.buf, within).await
    }

    /// Whether the server closes the connection within `within` (whatever it sends first
    /// is read and dropped).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        closed_within(&mut self.stream, within).await
    }
}

/// The next message from `r` (bytes already read wait in `buf`), or `None` on EOF,
/// error or timeout.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    within: Duration,
) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Frame::Complete(n) = check_frame(buf, 16 << 20) {
            let f = buf.split_to(n);
            return Some(decode_message(&f, Dictionary::builtin()).expect("decodes"));
        }
        match tokio::time::timeout_at(deadline, r.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(_)) => {}
        }
    }
}

/// Whether the other side closes `s` within `within`; reads and drops what comes first.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Latency of a well-behaved peer.

/// Latency figures of one probe run, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub n: usize,
    pub errors: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn from_samples(mut us: Vec<u64>, errors: usize) -> Latency {
        us.sort_unstable();
        let pct = |p: f64| -> u64 {
            if us.is_empty() {
                0
            } else {
                us[((us.len() - 1) as f64 * p).round() as usize]
            }
        };
        Latency {
            n: us.len(),
            errors,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_us: us.last().copied().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} errors={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
            self.n,
            self.errors,
            self.p50_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.max_us as f64 / 1000.0
        )
    }
}

/// Sends one UAR every `period` on `client` (one at a time) for `dur`, and reports the
/// latency; every answer must be Experimental-Result 2001 or 2002.
pub async fn probe(client: &Client, id: &Identities, period: Duration, dur: Duration) -> Latency {
    let end = Instant::now() + dur;
    let mut us = Vec::new();
    let mut errors = 0;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let host = client.config().origin_host.clone();
    let mut n = 0u32;
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        let req = uar(&host, id, 0, &format!("{host};probe;{n}"));
        let t = Instant::now();
        match client.request(req).await {
            Ok(a) if matches!(a.experimental_result().map(|e| e.0), Some(2001 | 2002)) => {
                us.push(t.elapsed().as_micros() as u64)
            }
            _ => errors += 1,
        }
    }
    Latency::from_samples(us, errors)
}
