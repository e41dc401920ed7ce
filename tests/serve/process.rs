//! Starting and stopping `sichss serve`, and talking to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sichss::auth::{self, Key128, Milenage};
use sichss::client::{Client, ClientConfig, IncomingRequest};
use sichss::codec::{codes, Avp, Message};
use sichss::cx::requests::CscfRequests;
use sichss::demo;

use crate::serve_process;

pub const SCSCF: &str = "sip:127.0.0.1:6060";
pub const SCSCF_HOST: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";
pub const REALM: &str = demo::HOME_DOMAIN;

/// A running `sichss serve --demo`.
pub struct Hss {
    pub child: Child,
    pub diameter: SocketAddr,
    pub api: SocketAddr,
    pub data: PathBuf,
    pub stderr: PathBuf,
    /// The Diameter over TLS address, when TLS listeners were asked for.
    pub diameter_tls: Option<SocketAddr>,
    /// `https` when the API serves TLS, else `http`.
    pub api_scheme: String,
}

impl Hss {
    /// Starts the HSS on ephemeral ports with its store in `data`.
    pub fn start(data: &Path, extra: &[&str]) -> Hss {
        Self::start_with(data, extra, &[])
    }

    /// Like [`Hss::start`], with environment variables (e.g. `RUST_LOG`, which is `info`
    /// unless given).
    pub fn start_with(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Hss {
        let data_arg = data.display().to_string();
        Self::spawn(data, &["--data", &data_arg], extra, env)
    }

    /// Starts the HSS on ephemeral ports on the store at `url` (e.g. a PostgreSQL URL);
    /// its log goes to `log_base` with the extension `stderr.log`.
    pub fn start_on_store(log_base: &Path, url: &str, extra: &[&str]) -> Hss {
        Self::spawn(log_base, &["--store", url], extra, &[])
    }

    fn spawn(data: &Path, store: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Hss {
        let stderr = data.with_extension("stderr.log");
        let err = std::fs::File::create(&stderr).unwrap();
        let mut cmd = serve_process::command();
        cmd.arg("--demo")
            .args(store)
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(err);
        let (child, ready) = serve_process::spawn(&mut cmd, Duration::from_secs(20), Some(&stderr));
        Hss {
            child,
            diameter: ready.diameter,
            api: ready.api,
            data: data.to_path_buf(),
            stderr,
            diameter_tls: ready.diameter_tls,
            api_scheme: ready.api_scheme,
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "sichss did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.api_scheme, self.api, path)
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        ureq::get(&self.url(path))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A Diameter client presenting itself as the S-CSCF, with RTR/PPR delivered to `rx`.
    pub async fn scscf(&self) -> (Client, tokio::sync::mpsc::Receiver<IncomingRequest>) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut cfg = ClientConfig::new(SCSCF_HOST, REALM);
        cfg.on_request = Some(tx);
        (
            Client::connect(self.diameter, cfg).await.expect("CER/CEA"),
            rx,
        )
    }
}

impl Drop for Hss {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state of service `sic` as the API reports it.
pub fn service_state(view: &serde_json::Value, sic: &str) -> String {
    view["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sic"] == sic)
        .map(|s| s["state"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "ABSENT".into())
}

fn icscf() -> &'static CscfRequests {
    static B: std::sync::OnceLock<CscfRequests> = std::sync::OnceLock::new();
    B.get_or_init(|| CscfRequests::new("icscf.ims.mnc001.mcc460.3gppnetwork.org", REALM))
}

fn scscf() -> &'static CscfRequests {
    static B: std::sync::OnceLock<CscfRequests> = std::sync::OnceLock::new();
    B.get_or_init(|| CscfRequests::new(SCSCF_HOST, REALM))
}

pub fn uar(impi: &str, impu: &str, uat: i32) -> Message {
    icscf().uar(impi, impu, uat as u32)
}

pub fn mar(impi: &str, impu: &str) -> Message {
    scscf().mar(impi, impu, SCSCF, "Digest-AKAv1-MD5", 1, None)
}

pub fn sar(impi: &str, impu: &str, sat: i32) -> Message {
    scscf().sar(Some(impi), &[impu], SCSCF, sat, 0)
}

pub fn lir(impu: &str) -> Message {
    icscf().lir(impu)
}

/// Result as ("rc"|"exp", code).
pub fn result(m: &Message) -> (&'static str, u32) {
    match (m.result_code(), m.experimental_result()) {
        (Some(rc), None) => ("rc", rc.0),
        (None, Some(e)) => ("exp", e.0),
        other => panic!("bad result AVPs {other:?}"),
    }
}

/// UAR, MAR, SAR(sat) for one service, checking each answer.
pub async fn register(c: &Client, impi: &str, impu: &str, sat: i32) {
    let a = c.request(uar(impi, impu, 0)).await.unwrap();
    assert!(
        matches!(result(&a), ("exp", 2001) | ("exp", 2002)),
        "{:?}",
        result(&a)
    );
    let a = c.request(mar(impi, impu)).await.unwrap();
    assert_eq!(result(&a), ("rc", 2001));
    let a = c.request(sar(impi, impu, sat)).await.unwrap();
    assert_eq!(result(&a), ("rc", 2001));
}

/// A MAR over `c` whose first AKA vector verifies at a UE-side Milenage with the demo K/OPc.
pub async fn mar_verifies(c: &Client) {
    let impi = demo::impi_a("001");
    let a = c.request(uar(&impi, &sip_a(), 0)).await.unwrap();
    assert!(
        matches!(result(&a), ("exp", 2001) | ("exp", 2002)),
        "{:?}",
        result(&a)
    );
    let a = c.request(mar(&impi, &sip_a())).await.unwrap();
    assert_eq!(result(&a), ("rc", 2001));
    let item = a.find(codes::SIP_AUTH_DATA_ITEM).expect("an AKA vector");
    let authn = item
        .find(codes::SIP_AUTHENTICATE)
        .and_then(Avp::as_bytes)
        .unwrap();
    let usim = Milenage::with_opc(
        &Key128::from_hex("K", demo::K).unwrap(),
        &Key128::from_hex("OPc", demo::OPC).unwrap(),
    );
    let rand: [u8; 16] = authn[..16].try_into().unwrap();
    let autn: [u8; 16] = authn[16..32].try_into().unwrap();
    let (_, res, _, _) = auth::ue_check_autn(&usim, &rand, &autn).expect("AUTN verifies");
    let xres = item
        .find(codes::SIP_AUTHORIZATION)
        .and_then(Avp::as_bytes)
        .unwrap();
    assert_eq!(xres, &res[..]);
}

pub fn sip_a() -> String {
    format!("sip:{}@{}", demo::MSISDN_A, demo::HOME_DOMAIN)
}

/// A live tshark capture on the loopback interface, filtered to one TCP port.
pub struct Capture {
    child: Child,
    pub file: PathBuf,
}

impl Capture {
    /// Starts capturing; waits until tshark reports it is capturing.
    pub fn start(dir: &Path, port: u16) -> Capture {
        let tshark = which("tshark").expect(
            "tshark is not installed: run the README's test command (./scripts/test), which installs it",
        );
        let file = dir.join("cx.pcapng");
        let log = dir.join("tshark.log");
        let child = Command::new(tshark)
            .args(["-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tshark starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(
                Instant::now() < deadline,
                "tshark did not start capturing: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // dumpcap reports "Capturing on" a moment before the filter is attached.
        std::thread::sleep(Duration::from_millis(1500));
        Capture { child, file }
    }

    /// Stops the capture (SIGINT lets tshark finish the file).
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.is_file())
    })
}
