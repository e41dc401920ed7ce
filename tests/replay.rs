//! `sichss replay` (src/replay.rs) end to end: each capture's Cx requests are replayed by the
//! binary against a fresh `sichss serve` (ephemeral ports, its own store), after the
//! subscribers the capture uses were provisioned through the API, and the JSON report is
//! checked against a table of expected differences, each with its reason.
//!
//! - testdata/kamailio-*.pcapng: the project's own captures (Kamailio 5.6.3 CSCFs in front of
//!   sichss, testdata/README.md). Replayed against `--demo` plus subscriber C (one IMPU per
//!   service), as they were recorded. sichss must answer as it did then; the only
//!   differences expected are those a replay cannot reproduce (the RTR is HSS-initiated,
//!   so the unsubscription behind it does not happen during the replay).
//! - ../shared/captures/cx-*.pcap(ng) and the PyHSS requests: third-party captures (FHoSS as
//!   the HSS, or requests only); subscribers are derived from the captures' UAR/MAR/SAR
//!   (IMPI, IMPUs, realm). Where sichss answers otherwise on purpose, or cannot know what
//!   the recorded HSS knew, the table says why. Skipped, with a message, when the folder
//!   is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{json, Value};
use sichss::client::{Client, ClientConfig};
use sichss::codec::{codes, decode_message, Message};
use sichss::cx::requests::CscfRequests;
use sichss::dict::Dictionary;
use sichss::pcap::diameter::diameter_messages;

#[path = "common/serve.rs"]
mod serve_process;

const SICHSS: &str = env!("CARGO_BIN_EXE_sichss");
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";

/// A fresh `sichss serve` on ephemeral ports.
struct Server {
    child: Child,
    diameter: String,
    api: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hss.log");
        let mut cmd = serve_process::command();
        cmd.arg("--data")
            .arg(dir.path().join("hss"))
            .args(extra)
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, ready) = serve_process::spawn(&mut cmd, Duration::from_secs(20), Some(&log));
        Server {
            child,
            diameter: ready.diameter.to_string(),
            api: ready.api.to_string(),
            _dir: dir,
        }
    }

    fn post(&self, path: &str, body: &Value) {
        let r = ureq::post(&format!("http://{}{path}", self.api)).send_json(body.clone());
        if let Err(e) = r {
            let detail = match e {
                ureq::Error::Status(_, resp) => resp.into_string().unwrap_or_default(),
                other => other.to_string(),
            };
            panic!("POST {path} {body}: {detail}");
        }
    }

    fn admin(&self, args: &[&str]) {
        let out = Command::new(SICHSS)
            .arg("--api")
            .arg(format!("http://{}", self.api))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sichss {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sichss replay FILE --to … --json`: (exit status success, report).
fn replay(file: &Path, server: &Server) -> (bool, Value) {
    let out = Command::new(SICHSS)
        .arg("replay")
        .arg(file)
        .args(["--to", &server.diameter, "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "replay of {} printed no JSON report ({e}):\n{text}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// An expected difference: (request index, field, why).
type Expected = &'static [(u64, &'static str, &'static str)];

/// For requests whose answer was not recorded: (request index, result code sichss must
/// give, why).
type Results = &'static [(u64, u32, &'static str)];

/// Checks the report: every difference is in `expected` and every expected one occurred;
/// entries without differences match; the exit status is non-zero exactly when something
/// differs. Prints the report's per-message lines.
fn check(name: &str, ok: bool, report: &Value, expected: Expected) {
    check_with(name, ok, report, expected, &[]);
}

/// [`check`], and the results of requests without a recorded answer are `results`.
fn check_with(name: &str, ok: bool, report: &Value, expected: Expected, results: Results) {
    let entries = report["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{name}: nothing replayed: {report:#}");
    let mut seen = BTreeSet::new();
    let mut unexpected = Vec::new();
    for e in entries {
        let i = e["index"].as_u64().unwrap();
        eprintln!(
            "{name} #{i} {} {} → recorded {} / replayed {} : {}",
            e["command"],
            e["user_name"].as_str().unwrap_or("-"),
            e["recorded"],
            e["replayed"],
            e["status"]
        );
        assert_ne!(e["status"], "failed", "{name} #{i}: {e:#}");
        if e["status"] == "unrecorded" {
            let (_, code, why) = results
                .iter()
                .find(|(n, _, _)| *n == i)
                .unwrap_or_else(|| panic!("{name} #{i}: no expected result in the table: {e:#}"));
            assert_eq!(e["replayed"]["code"], *code, "{name} #{i} ({why}): {e:#}");
        }
        for d in e["differences"].as_array().unwrap() {
            let field = d["field"].as_str().unwrap();
            eprintln!(
                "    {field}: recorded {} replayed {}",
                d["recorded"], d["replayed"]
            );
            if !expected.iter().any(|(n, f, _)| *n == i && *f == field) {
                unexpected.push(format!("#{i} {} {d}", e["command"]));
            }
            seen.insert((i, field.to_owned()));
        }
    }
    assert!(
        unexpected.is_empty(),
        "{name}: unexpected differences (not in the test's table):\n{}",
        unexpected.join("\n")
    );
    for (i, f, why) in expected {
        assert!(
            seen.contains(&(*i, (*f).to_owned())),
            "{name} #{i}: the expected difference in {f} ({why}) did not occur"
        );
    }
    assert_eq!(
        ok,
        expected.is_empty(),
        "{name}: exit status vs differences"
    );
}

// ---------------------------------------------------------------------------------------
// The project's captures.

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// The S-CSCF name a capture's CSCFs used (first Server-Name of a MAR).
fn recorded_scscf(file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap();
    diameter_messages(&bytes)
        .unwrap()
        .iter()
        .filter_map(|c| decode_message(&c.bytes, Dictionary::builtin()).ok())
        .find(|m| m.header.is_request() && m.header.command.0 == 303)
        .and_then(|m| m.str(codes::SERVER_NAME).map(str::to_owned))
        .expect("a MAR with Server-Name")
}

/// sichss as the Kamailio tests ran it: `--demo`, the recorded S-CSCF as default, and
/// subscriber C (VoLTE on +8618699990001, RCS on +8618699990002) as tests/kamailio
/// provisions it.
fn replay_own(name: &str, expected: Expected) {
    let file = testdata(name);
    let server = Server::start(&["--demo", "--default-scscf", &recorded_scscf(&file)]);
    server.admin(&[
        "subscriber",
        "add",
        "--imsi",
        "460011100699999",
        "--mnc-len",
        "2",
        "--msisdn",
        "+8618699990001",
        "--msisdn",
        "+8618699990002",
        "--k",
        K,
        "--opc",
        OPC,
        "--password",
        "sichss-demo",
        "--service",
        "001:VoLTE",
    ]);
    server.admin(&[
        "service",
        "subscribe",
        "--imsi",
        "460011100699999",
        "--sic",
        "002",
        "--name",
        "RCS",
        "--impu",
        "sip:+8618699990002@ims.mnc001.mcc460.3gppnetwork.org",
        "--impu",
        "tel:+8618699990002",
    ]);
    let (ok, report) = replay(&file, &server);
    check(name, ok, &report, expected);
}

#[test]
fn replay_kamailio_volte_rcs_aka() {
    replay_own("kamailio-volte-rcs-aka.pcapng", &[]);
}

#[test]
fn replay_kamailio_volte_rcs_digest() {
    replay_own("kamailio-volte-rcs-digest.pcapng", &[]);
}

#[test]
fn replay_kamailio_distinct_impu() {
    replay_own("kamailio-distinct-impu.pcapng", &[]);
}

#[test]
fn replay_kamailio_sic003_and_legacy() {
    replay_own("kamailio-sic003-legacy.pcapng", &[]);
}

/// Why RCS's requests after the RTR differ: the capture was made while RCS was
/// unsubscribed (`DELETE …/services/002`, the RTR follows); the replay skips the RTR (an
/// HSS sends it) and does not unsubscribe, so RCS is still subscribed and registered.
const NOT_UNSUBSCRIBED: &str =
    "recorded after RCS was unsubscribed (the RTR); the replay cannot unsubscribe: RCS is still registered";

#[test]
fn replay_kamailio_rtr_distinct_impu() {
    replay_own(
        "kamailio-rtr-distinct-impu.pcapng",
        &[
            // LIR for RCS's own IMPU: recorded 5001 (unknown), replayed 2001 + Server-Name.
            (8, "result", NOT_UNSUBSCRIBED),
            (8, "AVP Server-Name", NOT_UNSUBSCRIBED),
            // RCS's REGISTER after the RTR: recorded 5001 (403), replayed 2002 + Server-Name.
            (9, "result", NOT_UNSUBSCRIBED),
            (9, "AVP Server-Name", NOT_UNSUBSCRIBED),
        ],
    );
}

#[test]
fn replay_kamailio_rtr_shared_impu() {
    replay_own(
        "kamailio-rtr-shared-impu.pcapng",
        &[
            // RCS's REGISTER after the RTR: recorded 5001 (403), replayed 2002 + Server-Name.
            // (The LIRs match: the shared IMPU stays registered through VoLTE.)
            (9, "result", NOT_UNSUBSCRIBED),
            (9, "AVP Server-Name", NOT_UNSUBSCRIBED),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Third-party captures.

fn shared(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    let f = dir.join(name);
    if f.is_file() {
        Some(f)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; the third-party replay tests need ../shared/captures beside the repository",
            f.display()
        );
        None
    }
}

/// What a capture's requests say about its subscribers.
#[derive(Default, Debug)]
struct Derived {
    /// IMPI → IMPUs named with it (UAR, MAR, SAR).
    impis: BTreeMap<String, BTreeSet<String>>,
    /// IMPUs only ever named without an IMPI (LIR).
    lir_only: BTreeSet<String>,
    /// Realm of the requests (Destination-Realm).
    realm: Option<String>,
    /// First Server-Name seen (request or answer, top level or in Server-Capabilities).
    server_name: Option<String>,
    /// Server-Name of the recorded LIA per IMPU.
    lia_server: BTreeMap<String, String>,
}

fn derive(file: &Path) -> Derived {
    let bytes = std::fs::read(file).unwrap();
    let msgs: Vec<Message> = diameter_messages(&bytes)
        .unwrap()
        .iter()
        .filter_map(|c| decode_message(&c.bytes, Dictionary::builtin()).ok())
        .collect();
    let mut d = Derived::default();
    let mut lir_impus = BTreeSet::new();
    for m in &msgs {
        if m.header.application.0 != 16777216 {
            continue;
        }
        let code = m.header.command.0;
        if d.server_name.is_none() {
            d.server_name = m.str(codes::SERVER_NAME).map(str::to_owned).or_else(|| {
                m.find(codes::SERVER_CAPABILITIES)
                    .and_then(|g| g.find(codes::SERVER_NAME))
                    .and_then(|a| a.as_str().map(str::to_owned))
            });
        }
        if !m.header.is_request() {
            continue;
        }
        let impus: Vec<String> = m
            .find_all(codes::PUBLIC_IDENTITY)
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        match (code, m.str(codes::USER_NAME)) {
            (300 | 301 | 303, Some(impi)) => {
                d.impis
                    .entry(impi.to_owned())
                    .or_default()
                    .extend(impus.iter().cloned());
                if d.realm.is_none() {
                    d.realm = m.str(codes::DESTINATION_REALM).map(str::to_owned);
                }
            }
            (302, _) => {
                lir_impus.extend(impus.iter().cloned());
                if d.realm.is_none() {
                    d.realm = m.str(codes::DESTINATION_REALM).map(str::to_owned);
                }
                // the recorded LIA for this LIR
                if let Some(a) = msgs.iter().find(|a| {
                    !a.header.is_request()
                        && a.header.command.0 == 302
                        && a.header.hop_by_hop == m.header.hop_by_hop
                }) {
                    if let (Some(i), Some(s)) = (impus.first(), a.str(codes::SERVER_NAME)) {
                        d.lia_server.insert(i.clone(), s.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let named: BTreeSet<&String> = d.impis.values().flatten().collect();
    d.lir_only = lir_impus
        .into_iter()
        .filter(|i| !named.contains(i))
        .collect();
    d
}

/// Provisions one subscriber per IMPI of the capture (its IMPUs, the IMPI's domain as
/// home domain, AKA and Digest credentials, AKA for "unknown"), and one per LIR-only IMPU;
/// the latter are registered (SAR) at the S-CSCF the recorded LIA named, since a LIR is
/// only answered with a Server-Name for a registered identity and the capture shows one.
async fn provision(server: &Server, d: &Derived) {
    let mut n = 0u32;
    let mut imsi = |user: &str| {
        n += 1;
        if user.len() == 15 && user.bytes().all(|b| b.is_ascii_digit()) {
            user.to_owned()
        } else {
            format!("0010100000{n:05}")
        }
    };
    for (impi, impus) in &d.impis {
        let (user, domain) = impi.split_once('@').expect("IMPI user@realm");
        server.post(
            "/subscribers",
            &json!({
                "imsi": imsi(user),
                "home_domain": domain,
                "k": K, "opc": OPC, "password": "replay",
                "services": [{ "sic": "plain", "impi": impi, "impus": impus }],
            }),
        );
    }
    let realm = d.realm.clone().unwrap_or_else(|| "replay.invalid".into());
    for (k, impu) in d.lir_only.iter().enumerate() {
        let impi = format!("lir-only-{}@{realm}", k + 1);
        server.post(
            "/subscribers",
            &json!({
                "imsi": imsi(""),
                "home_domain": realm,
                "k": K, "opc": OPC, "password": "replay",
                "services": [{ "sic": "plain", "impi": impi, "impus": [impu] }],
            }),
        );
        if let Some(scscf) = d.lia_server.get(impu) {
            let host = format!("scscf.{realm}");
            let c = Client::connect(
                server.diameter.parse().unwrap(),
                ClientConfig::new(&host, &realm),
            )
            .await
            .expect("CER/CEA");
            let peer_realm = c.peer().1.to_owned();
            let sar = CscfRequests::new(&host, peer_realm).sar(Some(&impi), &[impu], scscf, 1, 0);
            let a = c.request(sar).await.expect("SAA");
            assert_eq!(a.result_code().map(|r| r.0), Some(2001), "{a:?}");
            let _ = c.close().await;
        }
    }
}

/// Replays a third-party capture against a fresh server provisioned from it.
fn replay_third_party(name: &str, expected: Expected) {
    replay_third_party_with(name, expected, &[]);
}

fn replay_third_party_with(name: &str, expected: Expected, results: Results) {
    let Some(file) = shared(name) else { return };
    let d = derive(&file);
    eprintln!("{name}: derived {d:?}");
    let mut args = vec![];
    // sichss's S-CSCF (Server-Capabilities) as the recorded HSS's, when it is a SIP URI.
    if let Some(s) = d.server_name.as_ref().filter(|s| s.starts_with("sip:")) {
        args = vec!["--default-scscf".to_owned(), s.clone()];
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(provision(&server, &d));
    let (ok, report) = replay(&file, &server);
    check_with(name, ok, &report, expected, results);
}

/// The I-CSCF side only: alice and bob were authenticated (MAR) and registered (SAR) by the
/// S-CSCF on its own connection, which this capture does not hold.
const MAR_NOT_IN_CAPTURE: &str = "FHoSS assigned the S-CSCF at the S-CSCF's MAR between the two \
     UARs (not in this I-CSCF capture): 2002 with Server-Name; sichss saw no MAR, the user is \
     still unassigned: 2001 FIRST_REGISTRATION with Server-Capabilities";
const SAR_NOT_IN_CAPTURE: &str = "the user was registered by the S-CSCF's SAR (not in this \
     I-CSCF capture): FHoSS 2001 with Server-Name; sichss saw no SAR: 5003 \
     IDENTITY_NOT_REGISTERED (TS 29.228 §6.1.4.1: no S-CSCF assigned, no unregistered services)";

#[test]
fn replay_openimscore_fhoss_uar_lir() {
    replay_third_party(
        "cx-uar-lir_openimscore_diafuzzer.pcap",
        &[
            (2, "result", MAR_NOT_IN_CAPTURE),
            (2, "AVP Server-Name", MAR_NOT_IN_CAPTURE),
            (2, "AVP Server-Capabilities", MAR_NOT_IN_CAPTURE),
            (3, "result", SAR_NOT_IN_CAPTURE),
            (3, "AVP Server-Name", SAR_NOT_IN_CAPTURE),
            (5, "result", MAR_NOT_IN_CAPTURE),
            (5, "AVP Server-Name", MAR_NOT_IN_CAPTURE),
            (5, "AVP Server-Capabilities", MAR_NOT_IN_CAPTURE),
            (6, "result", SAR_NOT_IN_CAPTURE),
            (6, "AVP Server-Name", SAR_NOT_IN_CAPTURE),
            (7, "result", SAR_NOT_IN_CAPTURE),
            (7, "AVP Server-Name", SAR_NOT_IN_CAPTURE),
        ],
    );
}

#[test]
fn replay_kamailio_fhoss_registration() {
    replay_third_party(
        "cx-registration-kamailio-fhoss_open5gs-docs.pcapng",
        &[(
            3,
            "AVP Charging-Information",
            "FHoSS returns its configured charging function addresses; sichss provisions none and \
             omits the optional Charging-Information (TS 29.228 §6.1.2.2: when available)",
        )],
    );
}

#[test]
fn replay_open5gs_lir_tel() {
    replay_third_party("cx-lir-tel_open5gs-docs.pcapng", &[]);
}

/// Requests only (PyHSS's test vectors): no answer to compare; sichss's results are fixed
/// here. The S6a requests, CER/DWR/DPR and the RTR are skipped by the replayer.
#[test]
fn replay_pyhss_requests() {
    replay_third_party_with(
        "requests-cer-dwr-dpr-mar-uar-sar-rtr_pyhss-tests.pcap",
        &[],
        &[
            (
                1,
                2001,
                "MAR Digest-AKAv1-MD5 for a provisioned subscriber: one AKA vector",
            ),
            (
                2,
                2002,
                "UAR after that MAR: authentication pending at the MAR's Server-Name \
                 (\"PyHSS-client\"): SUBSEQUENT_REGISTRATION with that Server-Name",
            ),
            (
                3,
                2001,
                "SAR REGISTRATION from another S-CSCF name: assigned, User-Data",
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// The command line itself.

#[test]
fn replay_prints_a_per_message_report_and_exits_non_zero_on_a_difference() {
    let file = testdata("kamailio-rtr-shared-impu.pcapng");
    let server = Server::start(&["--demo", "--default-scscf", &recorded_scscf(&file)]);
    let out = Command::new(SICHSS)
        .arg("replay")
        .arg(&file)
        .args(["--to", &server.diameter])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("replay of "), "{stdout}");
    assert!(stdout.contains("  1  frame "), "{stdout}");
    assert!(stdout.contains("MATCH"), "{stdout}");
    assert!(stdout.contains("DIFFERS"), "{stdout}");
    assert!(
        stdout.contains(
            "- result: recorded Experimental-Result-Code 5001 DIAMETER_ERROR_USER_UNKNOWN"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped frame") && stdout.contains("RTR: HSS-initiated"),
        "{stdout}"
    );
    assert!(stdout.contains("Cx requests replayed:"), "{stdout}");
    assert!(stderr.contains("sichss: replay: 1 of "), "{stderr}");
}

#[test]
fn replay_skips_base_protocol_hss_initiated_and_other_applications() {
    let Some(file) = shared("requests-cer-dwr-dpr-mar-uar-sar-rtr_pyhss-tests.pcap") else {
        return;
    };
    let server = Server::start(&[]);
    let (ok, report) = replay(&file, &server);
    // Nothing provisioned: every Cx request is answered 5001, none was recorded.
    assert!(ok, "{report:#}");
    let skipped: Vec<String> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["what"].as_str().unwrap(),
                s["why"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(skipped.iter().filter(|s| s.starts_with("CER ")).count(), 1);
    assert_eq!(skipped.iter().filter(|s| s.starts_with("DPR ")).count(), 2);
    assert_eq!(skipped.iter().filter(|s| s.starts_with("DWR ")).count(), 1);
    assert!(
        skipped.iter().any(|s| s.starts_with("RTR HSS-initiated")),
        "{skipped:?}"
    );
    assert_eq!(
        skipped
            .iter()
            .filter(|s| s.contains("application 16777251") && s.contains("not a Cx request"))
            .count(),
        4,
        "{skipped:?}"
    );
    for e in report["entries"].as_array().unwrap() {
        assert_eq!(e["status"], "unrecorded");
        assert_eq!(e["replayed"]["code"], 5001, "{e}");
    }
}

#[test]
fn replay_errors_name_the_file_and_the_address() {
    let out = Command::new(SICHSS)
        .args(["replay", "/nonexistent/x.pcap", "--to", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("cannot read /nonexistent/x.pcap"), "{e}");

    let file = testdata("kamailio-volte-rcs-aka.pcapng");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(SICHSS)
        .arg("replay")
        .arg(&file)
        .args(["--to", &format!("127.0.0.1:{port}"), "--timeout", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("connecting to 127.0.0.1:{port} as icscf.")),
        "{e}"
    );
}
