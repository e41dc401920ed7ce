//! One network per test: `sichss serve` + Kamailio I-CSCF and S-CSCF
//! (`harness/kamailio/run`) + a tshark capture of the Diameter port, on ports chosen for
//! this run; `sichss ue` processes as phones; the admin CLI for the HSS's view.
//! Everything started here is stopped in `Drop` (also when a step panics: the run
//! directory is then kept and its path printed).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wire::{self, Cx};

pub const SICHSS: &str = env!("CARGO_BIN_EXE_sichss");
pub const REALM: &str = "ims.mnc001.mcc460.3gppnetwork.org";
pub const SCSCF_HOST: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";
pub const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
pub const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
pub const PASSWORD: &str = "sichss-demo";

/// Longest wait for anything the network does (a registration takes milliseconds).
pub const WAIT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "run ./scripts/test (as root it apt-installs kamailio, \
     kamailio-ims-modules, kamailio-presence-modules and tshark), or install them by hand";

/// In-process serialisation for `cargo test` (threads); under `cargo nextest` the
/// `kamailio` test group of .config/nextest.toml runs these tests one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A phone's identity for `sichss ue`.
#[derive(Clone, Debug)]
pub struct Who {
    pub imsi: &'static str,
    pub msisdn: &'static str,
    pub sic: Option<&'static str>,
}

impl Who {
    pub fn impi(&self) -> String {
        match self.sic {
            Some(s) => format!("{}@ims.sic{s}.mnc001.mcc460.3gppnetwork.org", self.imsi),
            None => format!("{}@{REALM}", self.imsi),
        }
    }
    pub fn impu(&self) -> String {
        format!("sip:{}@{REALM}", self.msisdn)
    }
    pub fn tel(&self) -> String {
        format!("tel:{}", self.msisdn)
    }
}

/// Subscriber A of `--demo`: VoLTE and RCS share sip:+8618612345678@… and tel:+8618612345678.
pub const A_VOLTE: Who = Who {
    imsi: "460011100612345",
    msisdn: "+8618612345678",
    sic: Some("001"),
};
pub const A_RCS: Who = Who {
    imsi: "460011100612345",
    msisdn: "+8618612345678",
    sic: Some("002"),
};
pub const A_SIC_003: Who = Who {
    imsi: "460011100612345",
    msisdn: "+8618612345678",
    sic: Some("003"),
};
/// Legacy subscriber B of `--demo` (plain TS 23.003 IMPI).
pub const B: Who = Who {
    imsi: "460011100600001",
    msisdn: "+8618600000001",
    sic: None,
};
/// Subscriber C (provisioned by [`Net::provision_c`]): one IMPU per service.
pub const C_VOLTE: Who = Who {
    imsi: "460011100699999",
    msisdn: "+8618699990001",
    sic: Some("001"),
};
pub const C_RCS: Who = Who {
    imsi: "460011100699999",
    msisdn: "+8618699990002",
    sic: Some("002"),
};

/// Fails (never skips) when what the tests drive is not installed.
pub fn require_tools() {
    let missing: Vec<&str> = ["kamailio", "kamcmd", "tshark", "ss"]
        .into_iter()
        .filter(|t| which(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} not found: these end-to-end tests need real Kamailio CSCFs; {INSTALL_HINT}",
        missing.join(", ")
    );
    for m in [
        "ims_icscf",
        "ims_registrar_scscf",
        "ims_auth",
        "presence",
        "cdp",
        "ctl",
    ] {
        let so = format!("/usr/lib/x86_64-linux-gnu/kamailio/modules/{m}.so");
        assert!(
            Path::new(&so).is_file(),
            "Kamailio module {so} missing; {INSTALL_HINT}"
        );
    }
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(cmd))
            .find(|f| f.is_file())
    })
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/kamailio/run")
}

/// A TCP port free now (bind :0, close).
fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// A port free for both UDP and TCP (a SIP listener).
pub fn free_sip_port() -> u16 {
    for _ in 0..100 {
        let p = free_tcp();
        if udp_free(p) {
            return p;
        }
    }
    panic!("no free UDP+TCP port on 127.0.0.1");
}

/// A free UDP port (a UE's contact).
pub fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The HSS port: the harness also binds HSS+1 and HSS+2 (the cdp acceptors).
fn free_hss_port() -> u16 {
    for _ in 0..200 {
        let p = free_tcp();
        if p < 65000 && tcp_free(p + 1) && tcp_free(p + 2) {
            return p;
        }
    }
    panic!("no free TCP port with its two successors free on 127.0.0.1");
}

/// Ports of one run.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub hss: u16,
    pub api: u16,
    pub icscf: u16,
    pub scscf: u16,
}

/// The running `sichss serve`.
struct Hss {
    child: Child,
    log: PathBuf,
}

/// A tshark capture of the Diameter port.
struct Capture {
    child: Child,
    file: PathBuf,
}

/// One end-to-end network. See the module docs.
pub struct Net {
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    pub ports: Ports,
    pub auth: String,
    hss: Option<Hss>,
    hss_runs: u32,
    capture: Option<Capture>,
    kamailio: bool,
    started: Instant,
    _serial: MutexGuard<'static, ()>,
}

impl Net {
    /// Starts the HSS (with the demo subscribers), the capture and both CSCFs
    /// (`--auth aka|digest|md5|hss-selected`), and waits until both CSCFs are connected.
    pub fn start(auth: &str) -> Net {
        require_tools();
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::Builder::new()
            .prefix("sichss-e2e.")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let ports = Ports {
            hss: free_hss_port(),
            api: free_tcp(),
            icscf: free_sip_port(),
            scscf: free_sip_port(),
        };
        let mut net = Net {
            dir,
            tmp: Some(tmp),
            ports,
            auth: auth.to_owned(),
            hss: None,
            hss_runs: 0,
            capture: None,
            kamailio: false,
            started: Instant::now(),
            _serial: serial,
        };
        eprintln!(
            "e2e: run directory {} ({ports:?}, auth {auth})",
            net.dir.display()
        );
        net.start_hss();
        net.start_capture();
        net.start_kamailio();
        net
    }

    pub fn hss_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.hss)
    }
    pub fn icscf(&self) -> String {
        format!("127.0.0.1:{}", self.ports.icscf)
    }
    pub fn scscf(&self) -> String {
        format!("127.0.0.1:{}", self.ports.scscf)
    }
    /// The S-CSCF's Server-Name (`--default-scscf` of the HSS, MAR/SAR of Kamailio).
    pub fn scscf_uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.ports.scscf)
    }
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.api)
    }
    pub fn kdir(&self) -> PathBuf {
        self.dir.join("k")
    }
    pub fn capture_file(&self) -> PathBuf {
        self.dir.join("cx.pcapng")
    }

    /// Starts `sichss serve` on this run's ports and store, and waits for its ready line.
    pub fn start_hss(&mut self) {
        assert!(self.hss.is_none(), "the HSS is already running");
        self.hss_runs += 1;
        let log = self.dir.join(format!("hss.{}.log", self.hss_runs));
        let mut child = Command::new(SICHSS)
            .args(["serve", "--demo", "--listen"])
            .arg(self.hss_addr())
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", self.ports.api))
            .arg("--default-scscf")
            .arg(self.scscf_uri())
            .arg("--data")
            .arg(self.dir.join("hss"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("sichss serve starts");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("sichss listening ") => {
                    assert!(
                        line.contains(&format!("diameter={}", self.hss_addr())),
                        "unexpected ready line {line}"
                    );
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    if let Some(s) = child.try_wait().unwrap() {
                        panic!(
                            "sichss serve exited ({s}) before its ready line:\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "sichss serve: no ready line in {WAIT:?}"
                    );
                }
            }
        }
        // rx is dropped with the thread still draining stdout into a closed channel: fine.
        self.hss = Some(Hss { child, log });
    }

    /// SIGTERM to `sichss serve` and wait for its exit (graceful shutdown).
    pub fn stop_hss(&mut self) {
        let mut hss = self.hss.take().expect("the HSS is running");
        signal(hss.child.id(), "TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = hss.child.try_wait().unwrap() {
                assert!(s.success(), "sichss serve exited with {s} after SIGTERM");
                return;
            }
            assert!(Instant::now() < deadline, "sichss serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn hss_log(&self) -> String {
        (1..=self.hss_runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("hss.{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn start_capture(&mut self) {
        let file = self.capture_file();
        let log = self.dir.join("tshark.log");
        let child = Command::new(which("tshark").unwrap())
            .args([
                "-i",
                "lo",
                "-f",
                &format!("tcp port {}", self.ports.hss),
                "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tshark starts");
        let deadline = Instant::now() + WAIT;
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
        self.capture = Some(Capture { child, file });
    }

    /// `harness/kamailio/run start` on this run's ports; both CSCFs connected (exit 0).
    pub fn start_kamailio(&mut self) {
        let out = Command::new(harness())
            .arg("start")
            .arg("--dir")
            .arg(self.kdir())
            .args(["--hss", &self.hss_addr(), "--auth", &self.auth, "--tc", "5"])
            .args(["--icscf-port", &self.ports.icscf.to_string()])
            .args(["--scscf-port", &self.ports.scscf.to_string()])
            .args(["--wait", "30"])
            .output()
            .expect("harness/kamailio/run starts");
        self.kamailio = true;
        assert!(
            out.status.success(),
            "harness/kamailio/run start failed ({}; exit 3 = CSCFs not connected to the HSS):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.kamailio_logs()
        );
    }

    /// `harness/kamailio/run stop`: both CSCFs end (cdp sends no DPR: the HSS sees the TCP close).
    pub fn stop_kamailio(&mut self) {
        if !self.kamailio {
            return;
        }
        let _ = Command::new(harness())
            .arg("stop")
            .arg(self.kdir())
            .stderr(Stdio::null())
            .status();
        self.kamailio = false;
    }

    /// `run status`: how many CSCFs hold a connection to the HSS (0, 1, 2).
    pub fn connected_cscfs(&self) -> u32 {
        let out = Command::new(harness())
            .arg("status")
            .arg(self.kdir())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("connected to HSS: "))
            .and_then(|v| v.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until both CSCFs are connected again (cdp reconnects about every 2 × Tc).
    pub fn wait_cscfs_connected(&self, within: Duration) -> Duration {
        let t0 = Instant::now();
        while self.connected_cscfs() < 2 {
            assert!(
                t0.elapsed() < within,
                "the CSCFs did not reconnect to the HSS within {within:?}\n{}",
                self.kamailio_logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // the TCP connection precedes CER/CEA by a few ms
        std::thread::sleep(Duration::from_millis(500));
        t0.elapsed()
    }

    pub fn kamailio_logs(&self) -> String {
        let tail = |f: &str| {
            let t = std::fs::read_to_string(self.kdir().join(f)).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "==> icscf.log (tail) <==\n{}\n==> scscf.log (tail) <==\n{}",
            tail("icscf.log"),
            tail("scscf.log")
        )
    }

    /// `run rpc DIR scscf …` (kamcmd over the S-CSCF's ctl socket).
    pub fn scscf_rpc(&self, args: &[&str]) -> String {
        let out = Command::new(harness())
            .arg("rpc")
            .arg(self.kdir())
            .arg("scscf")
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The contacts the S-CSCF lists for `impu` (`ulscscf.showimpu`), e.g.
    /// `sip:+86…@127.0.0.1:40001`; empty when the IMPU is unknown there.
    pub fn scscf_contacts(&self, impu: &str) -> Vec<String> {
        let text = self.scscf_rpc(&["ulscscf.showimpu", impu]);
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("sip:") && l.ends_with(": {"))
            .map(|l| l.trim_end_matches(": {").to_owned())
            .collect()
    }

    /// Every Diameter message captured so far. The file is read while dumpcap writes it,
    /// and dumpcap writes with a delay: use [`Net::cx_wait`] for what a step must produce.
    pub fn cx(&self) -> Vec<Cx> {
        wire::read(&self.capture_file(), self.ports.hss)
    }

    /// Messages captured after the first `from`, once `ready` holds for them (polled;
    /// panics with the listing after [`WAIT`]). Whatever a step sent before the message
    /// `ready` waits for is in the file by then (packets are written in order).
    pub fn cx_wait(&self, from: usize, what: &str, ready: impl Fn(&[Cx]) -> bool) -> Vec<Cx> {
        let deadline = Instant::now() + WAIT;
        loop {
            let all = self.cx();
            let since: Vec<Cx> = all.into_iter().skip(from).collect();
            if ready(&since) {
                return since;
            }
            assert!(
                Instant::now() < deadline,
                "capture: no {what} within {WAIT:?}; captured:\n{}",
                wire::listing(&since)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // ---- the admin CLI -------------------------------------------------------------

    /// `sichss --api … ARGS`; panics on failure, returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(SICHSS)
            .arg("--api")
            .arg(self.api())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sichss {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sichss subscriber show --imsi … --json`.
    pub fn show(&self, imsi: &str) -> Value {
        serde_json::from_str(&self.admin(&["subscriber", "show", "--imsi", imsi, "--json"]))
            .expect("subscriber show --json prints JSON")
    }

    /// The state of service `sic` in the HSS (`ABSENT` when not subscribed).
    pub fn state(&self, imsi: &str, sic: &str) -> String {
        service_state(&self.show(imsi), sic)
    }

    /// Subscriber C: VoLTE (001) on sip:+8618699990001@… / tel:+8618699990001, RCS (002)
    /// on sip:+8618699990002@… / tel:+8618699990002, through the admin CLI.
    pub fn provision_c(&self) {
        self.admin(&[
            "subscriber",
            "add",
            "--imsi",
            C_VOLTE.imsi,
            "--mnc-len",
            "2",
            "--msisdn",
            C_VOLTE.msisdn,
            "--msisdn",
            C_RCS.msisdn,
            "--k",
            K,
            "--opc",
            OPC,
            "--password",
            PASSWORD,
            "--service",
            "001:VoLTE",
        ]);
        self.admin(&[
            "service",
            "subscribe",
            "--imsi",
            C_RCS.imsi,
            "--sic",
            "002",
            "--name",
            "RCS",
            "--impu",
            &C_RCS.impu(),
            "--impu",
            &C_RCS.tel(),
        ]);
    }

    /// `DELETE /subscribers/{imsi}/services/{sic}` (what `sichss service unsubscribe`
    /// calls), returning the JSON answer `{removed, rtr: {sent, destination, result_code}}`.
    pub fn unsubscribe(&self, imsi: &str, sic: &str) -> Value {
        ureq::delete(&format!("{}/subscribers/{imsi}/services/{sic}", self.api()))
            .timeout(WAIT)
            .call()
            .expect("unsubscribe")
            .into_json()
            .unwrap()
    }

    // ---- UEs -----------------------------------------------------------------------

    fn ue_command(&self) -> Command {
        let mut c = Command::new(SICHSS);
        c.env("SICHSS_UE_K", K)
            .env("SICHSS_UE_OPC", OPC)
            .env("SICHSS_UE_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .arg("ue");
        c
    }

    fn identity_args(who: &Who) -> Vec<String> {
        let mut a = vec![
            "--imsi".into(),
            who.imsi.into(),
            "--mnc-len".into(),
            "2".into(),
            "--msisdn".into(),
            who.msisdn.into(),
        ];
        if let Some(s) = who.sic {
            a.push("--sic".into());
            a.push(s.into());
        }
        a
    }

    fn net_args(&self, via: &str, local: u16) -> Vec<String> {
        vec![
            "--pcscf".into(),
            via.into(),
            "--local".into(),
            format!("127.0.0.1:{local}"),
            "--timeout".into(),
            "12".into(),
            "--json".into(),
        ]
    }

    /// Runs a one-shot `sichss ue …` to its end (bounded) and returns its exit status and events.
    fn ue_once(&self, args: Vec<String>) -> (ExitStatus, Vec<Value>) {
        let mut child = self
            .ue_command()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sichss ue {} did not finish within 40 s", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| serde_json::json!({ "raw": l })))
            .collect();
        (status, events)
    }

    /// Registers once (the UE exits registered; its contact stays at the S-CSCF).
    /// Returns the `registered` event; panics on anything else.
    pub fn register(&self, who: &Who, local: u16) -> Value {
        self.register_with(who, local, &[])
    }

    /// [`Net::register`] with extra `sichss ue register` flags.
    pub fn register_with(&self, who: &Who, local: u16, extra: &[&str]) -> Value {
        let (s, ev) = self.register_events(who, local, extra);
        let reg = find(&ev, "registered");
        assert!(
            s && reg.is_some(),
            "register {}: events {ev:?}\n{}",
            who.impi(),
            self.kamailio_logs()
        );
        reg.unwrap()
    }

    /// A one-shot registration: (success, every event).
    pub fn register_events(&self, who: &Who, local: u16, extra: &[&str]) -> (bool, Vec<Value>) {
        let mut a = self.register_args(who, local);
        a.extend(extra.iter().map(|s| s.to_string()));
        let (s, ev) = self.ue_once(a);
        (s.success(), ev)
    }

    /// A registration that fails: returns the `error` event (status, reason).
    pub fn register_fails(&self, who: &Who, local: u16) -> Value {
        let (s, ev) = self.ue_once(self.register_args(who, local));
        assert!(!s.success(), "register {} succeeded: {ev:?}", who.impi());
        find(&ev, "error").unwrap_or_else(|| panic!("no error event: {ev:?}"))
    }

    fn register_args(&self, who: &Who, local: u16) -> Vec<String> {
        let mut a = vec!["register".to_owned()];
        a.extend(Self::identity_args(who));
        a.extend(self.net_args(&self.icscf(), local));
        a
    }

    /// De-registers from the contact `local` (REGISTER Expires 0, authenticated again).
    pub fn deregister(&self, who: &Who, local: u16) -> Value {
        let mut a = vec!["deregister".to_owned()];
        a.extend(Self::identity_args(who));
        a.extend(self.net_args(&self.icscf(), local));
        let (s, ev) = self.ue_once(a);
        let d = find(&ev, "deregistered");
        assert!(
            s.success() && d.is_some(),
            "deregister {}: {s}, events {ev:?}\n{}",
            who.impi(),
            self.kamailio_logs()
        );
        d.unwrap()
    }

    /// Sends a MESSAGE to `to` through `via` (the I-CSCF: LIR path; or the S-CSCF
    /// directly); returns the final SIP status.
    pub fn message(&self, to: &str, body: &str, via: &str) -> u16 {
        let mut a = vec![
            "message".to_owned(),
            "--to".into(),
            to.into(),
            "--body".into(),
            body.into(),
        ];
        a.extend(self.net_args(via, 0));
        let (_, ev) = self.ue_once(a);
        let sent = find(&ev, "message_sent")
            .unwrap_or_else(|| panic!("MESSAGE to {to} via {via}: no final response: {ev:?}"));
        sent["status"].as_u64().unwrap() as u16
    }

    /// A UE that registers and stays (`--hold 900 --listen-messages`), printing every
    /// MESSAGE it receives; returns once it is registered.
    pub fn hold(&self, who: &Who, local: u16) -> Phone {
        let mut a = vec!["register".to_owned()];
        a.extend(Self::identity_args(who));
        a.extend(self.net_args(&self.icscf(), local));
        a.extend(["--hold".into(), "900".into(), "--listen-messages".into()]);
        let name = format!("ue-{}-{local}", who.sic.unwrap_or("plain"));
        let mut child = self
            .ue_command()
            .args(&a)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.join(format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut p = Phone {
            who: who.clone(),
            local,
            child,
            rx,
            seen: Vec::new(),
        };
        let reg = p.wait_event("registered", WAIT);
        assert_eq!(reg["impi"], who.impi(), "{reg}");
        p
    }
}

/// The first event named `name`.
pub fn find(events: &[Value], name: &str) -> Option<Value> {
    events.iter().find(|e| e["event"] == name).cloned()
}

/// The state of service `sic` in a subscriber view (`ABSENT` when not subscribed).
pub fn service_state(view: &Value, sic: &str) -> String {
    view["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sic"] == sic)
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "ABSENT".into())
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// A `sichss ue register --hold --listen-messages` process.
pub struct Phone {
    pub who: Who,
    pub local: u16,
    child: Child,
    rx: Receiver<Value>,
    /// Every event read so far.
    pub seen: Vec<Value>,
}

impl Phone {
    /// The next event named `name` (events read meanwhile are kept in `seen`); panics
    /// on an `error` event, on exit, or after `within`.
    pub fn wait_event(&mut self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(ev) => {
                    self.seen.push(ev.clone());
                    if ev["event"] == name {
                        return ev;
                    }
                    assert!(
                        ev["event"] != "error",
                        "UE {} reported an error while waiting for '{name}': {ev}",
                        self.who.impi()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "UE {} exited while waiting for '{name}'; events {:?}",
                        self.who.impi(),
                        self.seen
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    assert!(
                        Instant::now() < deadline,
                        "UE {}: no '{name}' within {within:?}; events {:?}",
                        self.who.impi(),
                        self.seen
                    );
                }
            }
        }
    }

    /// Whether a MESSAGE with `body` arrives within `within`.
    pub fn received(&mut self, body: &str, within: Duration) -> bool {
        if self
            .seen
            .iter()
            .any(|e| e["event"] == "message" && e["body"] == body)
        {
            return true;
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(ev) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(ev.clone());
                if ev["event"] == "message" && ev["body"] == body {
                    return true;
                }
            }
        }
        false
    }

    /// SIGTERM: the UE de-registers (REGISTER Expires 0) and exits. Returns its last
    /// events (`deregistered`, or `error` when the network refused).
    pub fn stop(mut self) -> Vec<Value> {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            while let Ok(ev) = self.rx.try_recv() {
                self.seen.push(ev);
            }
            if self.child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(ev) = self.rx.try_recv() {
                    self.seen.push(ev);
                }
                return std::mem::take(&mut self.seen);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("UE {} did not end after SIGTERM", self.who.impi());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and expect a `deregistered` event.
    pub fn deregister(self) -> Value {
        let impi = self.who.impi();
        let ev = self.stop();
        find(&ev, "deregistered")
            .unwrap_or_else(|| panic!("UE {impi}: no 'deregistered' after SIGTERM: {ev:?}"))
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Phones (declared after the Net in a test) are dropped, and killed, before this.
        self.stop_kamailio();
        if let Some(mut h) = self.hss.take() {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
        if let Some(mut c) = self.capture.take() {
            std::thread::sleep(Duration::from_millis(300));
            signal(c.child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.child.kill();
            let _ = c.child.wait();
            let _ = &c.file;
        }
        // SICHSS_E2E_KEEP_CAPTURES=DIR keeps each test's capture as DIR/<test>.pcapng
        // (how testdata/kamailio-*.pcapng were made: testdata/README.md).
        if let Some(keep) = std::env::var_os("SICHSS_E2E_KEEP_CAPTURES") {
            let name = std::thread::current()
                .name()
                .unwrap_or("kamailio")
                .rsplit("::")
                .next()
                .unwrap_or("kamailio")
                .to_owned();
            let _ = std::fs::create_dir_all(&keep);
            let to = Path::new(&keep).join(format!("{name}.pcapng"));
            match std::fs::copy(self.capture_file(), &to) {
                Ok(_) => eprintln!(
                    "e2e: capture kept as {} (HSS port {})",
                    to.display(),
                    self.ports.hss
                ),
                Err(e) => eprintln!("e2e: cannot keep the capture as {}: {e}", to.display()),
            }
        }
        if std::thread::panicking() {
            if let Some(t) = self.tmp.take() {
                let kept = t.keep();
                eprintln!(
                    "e2e: FAILED after {:?}; run directory kept: {} (hss.*.log, k/icscf.log, \
                     k/scscf.log, cx.pcapng)",
                    self.started.elapsed(),
                    kept.display()
                );
            }
        } else {
            eprintln!("e2e: done in {:?}", self.started.elapsed());
        }
    }
}
