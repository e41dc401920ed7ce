//! `sichss replay FILE --to HOST:PORT`: sends the Cx requests of a capture to an HSS and
//! compares each answer with the one recorded, semantically.
//!
//! 1. The capture (pcap or pcapng) is read with [`crate::pcap::diameter::diameter_messages`].
//! 2. The requests replayed are the Cx requests an HSS serves (TS 29.228 §6.1: UAR, SAR,
//!    LIR, MAR; application 16777216). Everything else is listed as skipped: the base
//!    protocol (CER/CEA, DWR/DWA, DPR/DPA: the replayer runs its own, RFC 6733 §5), the
//!    HSS-initiated Cx requests (RTR, PPR), other applications, and messages that do not
//!    decode.
//! 3. One connection per Origin-Host of the recorded requests ([`crate::client::Client`],
//!    with CER/CEA in that Origin-Host's name), so that an I-CSCF's and an S-CSCF's
//!    requests arrive as from two peers. Requests are sent one at a time, in capture order,
//!    each with fresh Hop-by-Hop and End-to-End Identifiers and otherwise as recorded,
//!    except that Destination-Host and Destination-Realm are set to the server's (from its
//!    CEA) unless `--as-recorded`: a replay addresses another HSS than the one recorded.
//! 4. The recorded answer is the answer in the capture with the request's command, Hop-by-
//!    Hop and End-to-End Identifiers, travelling the other way. The comparison
//!    ([`compare`]) looks at what an HSS decides, not at what it draws at random: the result
//!    (Result-Code or Experimental-Result-Code, and which of the two), which top-level AVPs
//!    are present, the identities (User-Name, Public-Identity), the Server-Name (top-level
//!    and in Server-Capabilities), the SIP-Authentication-Scheme and SIP-Number-Auth-Items.
//!    Not compared: Session-Id, Origin-Host/Realm values, authentication vectors and keys,
//!    the User-Data document, Origin-State-Id, Error-Message text.
//!
//! The report lists every request with both results and the differences; the command's
//! exit status is non-zero when an answer differs or a request failed. A request whose
//! answer was not recorded (e.g. a capture of requests only) is reported with the answer
//! received, and is not a mismatch.
//!
//! Depends on `pcap`, `codec`, `dict` and `client`; nothing of the HSS itself.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::client::{Client, ClientConfig, ClientError, CX_APPLICATION_ID};
use crate::codec::{codes, decode_message, Avp, Message, Value};
use crate::dict::Dictionary;
use crate::pcap::diameter::{diameter_messages, CapturedMessage};
use crate::pcap::PcapError;

/// Command codes of the Cx requests an HSS answers (TS 29.229 §6.1).
const HSS_BOUND: [(u32, &str); 4] = [(300, "UAR"), (301, "SAR"), (302, "LIR"), (303, "MAR")];

/// Top-level AVPs whose presence is not compared: per implementation, not a decision, or
/// compared as the `result` already.
const NOT_COMPARED: [(u32, u32); 7] = [
    (268, 0), // Result-Code: the `result`
    (297, 0), // Experimental-Result: the `result`
    (263, 0), // Session-Id: always present, value per session
    (278, 0), // Origin-State-Id: optional, per implementation
    (281, 0), // Error-Message: free text
    (294, 0), // Error-Reporting-Host
    (282, 0), // Route-Record
];

/// `sichss replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng) whose Cx requests are replayed.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The HSS to replay against.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Send Destination-Host and Destination-Realm as recorded instead of the server's.
    #[arg(long)]
    pub as_recorded: bool,
    /// Seconds to wait for the CEA and for each answer.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Why a replay could not run (a differing answer is not an error: see [`ReplayReport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The capture file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The capture file is not a readable pcap or pcapng.
    #[error("{}: {source}", path.display())]
    Capture {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PcapError,
    },
    /// `--to` does not name a reachable address.
    #[error("--to {to}: {why} (give HOST:PORT, e.g. 127.0.0.1:3868)")]
    Address {
        /// As given.
        to: String,
        /// Why.
        why: String,
    },
    /// No connection (or no CEA 2001) for one of the recorded Origin-Hosts.
    #[error("connecting to {to} as {origin_host}: {source}")]
    Connect {
        /// The server.
        to: SocketAddr,
        /// The Origin-Host the connection presents.
        origin_host: String,
        /// Why (boxed: client errors are large).
        source: Box<ClientError>,
    },
}

/// The result of one answer as compared: which AVP carries it and the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `Result-Code`, `Experimental-Result-Code`, or `none`.
    pub kind: String,
    /// The code (0 when none).
    pub code: u32,
    /// Its name in the dictionary, when known (e.g. `DIAMETER_FIRST_REGISTRATION`).
    pub name: Option<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == "none" {
            return f.write_str("no result");
        }
        write!(f, "{} {}", self.kind, self.code)?;
        if let Some(n) = &self.name {
            write!(f, " {n}")?;
        }
        Ok(())
    }
}

/// One difference between the recorded and the replayed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs: `result`, `AVP <name>` (present in one only), `User-Name`,
    /// `Public-Identity`, `Server-Name`, `Server-Capabilities/Server-Name`,
    /// `SIP-Authentication-Scheme`, `SIP-Number-Auth-Items`.
    pub field: String,
    /// In the recorded answer.
    pub recorded: String,
    /// In the answer received.
    pub replayed: String,
}

/// How one replayed request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The answer matches the recorded one.
    Match,
    /// The answer differs (see the differences).
    Mismatch,
    /// No answer was recorded; the one received is reported.
    Unrecorded,
    /// No answer was received (timeout, connection closed, undecodable).
    Failed,
}

/// One replayed request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Position among the replayed requests, from 1.
    pub index: usize,
    /// The capture frame that completed the request.
    pub frame: u64,
    /// `UAR`, `SAR`, `LIR` or `MAA`.
    pub command: String,
    /// The request's Origin-Host (the connection it was sent on).
    pub origin_host: String,
    /// The request's User-Name.
    pub user_name: Option<String>,
    /// The request's Public-Identity values.
    pub public_identities: Vec<String>,
    /// The recorded answer's result, when recorded.
    pub recorded: Option<Outcome>,
    /// The received answer's result, when received.
    pub replayed: Option<Outcome>,
    /// Match, mismatch, …
    pub status: Status,
    /// The differences (empty unless `Mismatch`).
    pub differences: Vec<Difference>,
    /// Why no answer was received (`Failed`).
    pub error: Option<String>,
}

/// A message of the capture that was not replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Its frame.
    pub frame: u64,
    /// The command, e.g. `CER`, `RTR`, `command 316 (application 16777251)`.
    pub what: String,
    /// Why it was not replayed.
    pub why: String,
}

/// What `sichss replay` found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The capture.
    pub file: String,
    /// The server.
    pub to: String,
    /// Every replayed request, in order.
    pub entries: Vec<Entry>,
    /// Requests of the capture that were not replayed (answers are not listed).
    pub skipped: Vec<Skipped>,
}

impl ReplayReport {
    /// Entries with a given status.
    pub fn count(&self, status: Status) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }

    /// True when no answer differs and none failed.
    pub fn ok(&self) -> bool {
        self.count(Status::Mismatch) == 0 && self.count(Status::Failed) == 0
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "replay of {} to {}", self.file, self.to)?;
        for e in &self.entries {
            write!(f, "{:>3}  frame {:<5} {}", e.index, e.frame, e.command)?;
            if let Some(u) = &e.user_name {
                write!(f, "  user {u}")?;
            }
            if !e.public_identities.is_empty() {
                write!(f, "  impu {}", e.public_identities.join(","))?;
            }
            writeln!(f, "  (from {})", e.origin_host)?;
            let show = |o: &Option<Outcome>| o.as_ref().map_or("-".to_owned(), |o| o.to_string());
            let verdict = match e.status {
                Status::Match => "MATCH",
                Status::Mismatch => "DIFFERS",
                Status::Unrecorded => "NO RECORDED ANSWER",
                Status::Failed => "FAILED",
            };
            writeln!(
                f,
                "       recorded: {}  replayed: {}  {verdict}",
                show(&e.recorded),
                show(&e.replayed)
            )?;
            for d in &e.differences {
                writeln!(
                    f,
                    "       - {}: recorded {}, replayed {}",
                    d.field, d.recorded, d.replayed
                )?;
            }
            if let Some(err) = &e.error {
                writeln!(f, "       error: {err}")?;
            }
        }
        for s in &self.skipped {
            writeln!(f, "  skipped frame {} {}: {}", s.frame, s.what, s.why)?;
        }
        write!(
            f,
            "{} Cx requests replayed: {} match, {} differ, {} without a recorded answer, {} failed; {} requests skipped",
            self.entries.len(),
            self.count(Status::Match),
            self.count(Status::Mismatch),
            self.count(Status::Unrecorded),
            self.count(Status::Failed),
            self.skipped.len()
        )
    }
}

/// A request to replay, with its recorded answer.
struct Planned {
    frame: u64,
    command: &'static str,
    request: Message,
    recorded: Option<Message>,
}

/// Sorts the capture's messages into requests to replay (each with its recorded answer)
/// and skipped requests.
fn plan(msgs: &[CapturedMessage], dict: &Dictionary) -> (Vec<Planned>, Vec<Skipped>) {
    let decoded: Vec<Option<Message>> = msgs
        .iter()
        .map(|c| decode_message(&c.bytes, dict).ok())
        .collect();
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    for (i, (cap, m)) in msgs.iter().zip(&decoded).enumerate() {
        let Some(m) = m else {
            if cap.bytes.get(4).is_some_and(|f| f & 0x80 != 0) {
                skipped.push(Skipped {
                    frame: cap.frame,
                    what: "request".into(),
                    why: "does not decode".into(),
                });
            }
            continue;
        };
        if !m.header.is_request() {
            continue;
        }
        let (code, app) = (m.header.command.0, m.header.application.0);
        let base = |n: &str| Skipped {
            frame: cap.frame,
            what: n.into(),
            why: "base protocol: the replayer runs its own capabilities exchange and watchdog"
                .into(),
        };
        match (code, app) {
            (257, _) => skipped.push(base("CER")),
            (280, _) => skipped.push(base("DWR")),
            (282, _) => skipped.push(base("DPR")),
            (304 | 305, CX_APPLICATION_ID) => skipped.push(Skipped {
                frame: cap.frame,
                what: if code == 304 { "RTR" } else { "PPR" }.into(),
                why: "HSS-initiated: an HSS sends it, it does not answer it".into(),
            }),
            (_, CX_APPLICATION_ID) if HSS_BOUND.iter().any(|(c, _)| *c == code) => {
                let command = HSS_BOUND.iter().find(|(c, _)| *c == code).unwrap().1;
                let recorded = msgs
                    .iter()
                    .zip(&decoded)
                    .skip(i + 1)
                    .find_map(|(c, a)| {
                        a.as_ref().filter(|a| {
                            !a.header.is_request()
                                && a.header.command == m.header.command
                                && a.header.hop_by_hop == m.header.hop_by_hop
                                && a.header.end_to_end == m.header.end_to_end
                                && c.src == cap.dst
                                && c.dst == cap.src
                        })
                    })
                    .cloned();
                planned.push(Planned {
                    frame: cap.frame,
                    command,
                    request: m.clone(),
                    recorded,
                });
            }
            _ => skipped.push(Skipped {
                frame: cap.frame,
                what: format!(
                    "command {code} (application {app}{})",
                    dict.application_name(app)
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default()
                ),
                why: "not a Cx request an HSS answers".into(),
            }),
        }
    }
    (planned, skipped)
}

/// Replays `args.file` against `args.to` and compares every answer.
///
/// # Errors
/// [`ReplayError`] when the capture cannot be read or a connection cannot be opened;
/// differing answers are reported in the [`ReplayReport`], not as errors.
pub async fn run(args: ReplayArgs) -> Result<ReplayReport, ReplayError> {
    let bytes = std::fs::read(&args.file).map_err(|source| ReplayError::Read {
        path: args.file.clone(),
        source,
    })?;
    let msgs = diameter_messages(&bytes).map_err(|source| ReplayError::Capture {
        path: args.file.clone(),
        source,
    })?;
    let to = resolve(&args.to)?;
    let dict = Dictionary::builtin();
    let (planned, skipped) = plan(&msgs, dict);
    let timeout = Duration::from_secs(args.timeout.max(1));

    let mut clients: HashMap<String, Client> = HashMap::new();
    let mut entries = Vec::new();
    for (n, p) in planned.into_iter().enumerate() {
        let origin_host = p
            .request
            .str(codes::ORIGIN_HOST)
            .unwrap_or("sichss-replay")
            .to_owned();
        let origin_realm = p
            .request
            .str(codes::ORIGIN_REALM)
            .unwrap_or("sichss-replay")
            .to_owned();
        if !clients.contains_key(&origin_host) {
            let mut cfg = ClientConfig::new(&origin_host, &origin_realm);
            cfg.connect_timeout = timeout;
            cfg.request_timeout = timeout;
            let c = Client::connect(to, cfg)
                .await
                .map_err(|source| ReplayError::Connect {
                    to,
                    origin_host: origin_host.clone(),
                    source: Box::new(source),
                })?;
            clients.insert(origin_host.clone(), c);
        }
        let client = &clients[&origin_host];
        let mut req = p.request.clone();
        if !args.as_recorded {
            let (host, realm) = client.peer();
            readdress(&mut req, host, realm);
        }
        let received = client.request(req).await;
        let mut e = Entry {
            index: n + 1,
            frame: p.frame,
            command: p.command.to_owned(),
            origin_host,
            user_name: p.request.str(codes::USER_NAME).map(str::to_owned),
            public_identities: strings(&p.request, codes::PUBLIC_IDENTITY),
            recorded: p.recorded.as_ref().map(|a| outcome(a, dict)),
            replayed: None,
            status: Status::Failed,
            differences: Vec::new(),
            error: None,
        };
        match received {
            Ok(answer) => {
                e.replayed = Some(outcome(&answer, dict));
                match &p.recorded {
                    None => e.status = Status::Unrecorded,
                    Some(rec) => {
                        e.differences = compare(rec, &answer, dict);
                        e.status = if e.differences.is_empty() {
                            Status::Match
                        } else {
                            Status::Mismatch
                        };
                    }
                }
            }
            Err(err) => e.error = Some(err.to_string()),
        }
        entries.push(e);
    }
    for c in clients.values() {
        let _ = c.close().await;
    }
    Ok(ReplayReport {
        file: args.file.display().to_string(),
        to: to.to_string(),
        entries,
        skipped,
    })
}

fn resolve(to: &str) -> Result<SocketAddr, ReplayError> {
    let err = |why: String| ReplayError::Address {
        to: to.to_owned(),
        why,
    };
    to.to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))
}

/// Points Destination-Host and Destination-Realm, where present, at the server.
fn readdress(req: &mut Message, host: &str, realm: &str) {
    for a in &mut req.avps {
        if a.vendor.is_none() && a.code == codes::DESTINATION_HOST.code && !host.is_empty() {
            a.value = Value::DiameterIdentity(host.into());
        } else if a.vendor.is_none() && a.code == codes::DESTINATION_REALM.code && !realm.is_empty()
        {
            a.value = Value::DiameterIdentity(realm.into());
        }
    }
}

fn strings(m: &Message, key: crate::codec::AvpKey) -> Vec<String> {
    m.find_all(key)
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// The result of an answer.
pub fn outcome(m: &Message, dict: &Dictionary) -> Outcome {
    if let Some(rc) = m.result_code() {
        return Outcome {
            kind: "Result-Code".into(),
            code: rc.0,
            name: dict.result_name(0, rc.0).map(str::to_owned),
        };
    }
    if let Some(e) = m.experimental_result() {
        let vendor = m
            .find(codes::EXPERIMENTAL_RESULT)
            .and_then(|g| g.find(codes::VENDOR_ID))
            .and_then(Avp::as_u32)
            .unwrap_or(0);
        return Outcome {
            kind: "Experimental-Result-Code".into(),
            code: e.0,
            name: dict.result_name(vendor, e.0).map(str::to_owned),
        };
    }
    Outcome {
        kind: "none".into(),
        code: 0,
        name: None,
    }
}

fn avp_label(a: &Avp, dict: &Dictionary) -> String {
    let vendor = a.vendor.unwrap_or(0);
    match dict.avp(a.code, vendor) {
        Some(d) => d.name.clone(),
        None if vendor == 0 => format!("AVP {}", a.code),
        None => format!("AVP {} (vendor {vendor})", a.code),
    }
}

fn show_list(v: &[String]) -> String {
    if v.is_empty() {
        "absent".into()
    } else {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn show_opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "absent".into(), |s| format!("\"{s}\""))
}

/// The semantic differences between a recorded answer and a replayed one (see the module
/// docs for what is compared); empty when they agree.
pub fn compare(recorded: &Message, replayed: &Message, dict: &Dictionary) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut diff = |field: &str, a: String, b: String| {
        if a != b {
            out.push(Difference {
                field: field.to_owned(),
                recorded: a,
                replayed: b,
            });
        }
    };
    diff(
        "result",
        outcome(recorded, dict).to_string(),
        outcome(replayed, dict).to_string(),
    );
    let present = |m: &Message| -> BTreeSet<(u32, u32, String)> {
        m.avps
            .iter()
            .map(|a| (a.code, a.vendor.unwrap_or(0), avp_label(a, dict)))
            .filter(|(c, v, _)| !NOT_COMPARED.contains(&(*c, *v)))
            .collect()
    };
    let (pa, pb) = (present(recorded), present(replayed));
    for (_, _, name) in pa.difference(&pb) {
        diff(&format!("AVP {name}"), "present".into(), "absent".into());
    }
    for (_, _, name) in pb.difference(&pa) {
        diff(&format!("AVP {name}"), "absent".into(), "present".into());
    }
    // Values, where both answers carry the AVP (presence differences are reported above).
    let both =
        |key: crate::codec::AvpKey| recorded.find(key).is_some() && replayed.find(key).is_some();
    if both(codes::USER_NAME) {
        diff(
            "User-Name",
            show_opt(recorded.str(codes::USER_NAME)),
            show_opt(replayed.str(codes::USER_NAME)),
        );
    }
    if both(codes::PUBLIC_IDENTITY) {
        let sorted = |m: &Message| {
            let mut v = strings(m, codes::PUBLIC_IDENTITY);
            v.sort();
            v
        };
        diff(
            "Public-Identity",
            show_list(&sorted(recorded)),
            show_list(&sorted(replayed)),
        );
    }
    if both(codes::SERVER_NAME) {
        diff(
            "Server-Name",
            show_opt(recorded.str(codes::SERVER_NAME)),
            show_opt(replayed.str(codes::SERVER_NAME)),
        );
    }
    if both(codes::SERVER_CAPABILITIES) {
        let names = |m: &Message| -> Vec<String> {
            m.find(codes::SERVER_CAPABILITIES)
                .map(|g| {
                    g.members()
                        .iter()
                        .filter(|a| a.is(codes::SERVER_NAME))
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        diff(
            "Server-Capabilities/Server-Name",
            show_list(&names(recorded)),
            show_list(&names(replayed)),
        );
    }
    if both(codes::SIP_AUTH_DATA_ITEM) {
        let scheme = |m: &Message| {
            m.find(codes::SIP_AUTH_DATA_ITEM)
                .and_then(|g| g.find(codes::SIP_AUTHENTICATION_SCHEME))
                .and_then(|a| a.as_str().map(str::to_owned))
        };
        diff(
            "SIP-Authentication-Scheme",
            show_opt(scheme(recorded)),
            show_opt(scheme(replayed)),
        );
    }
    if both(codes::SIP_NUMBER_AUTH_ITEMS) {
        diff(
            "SIP-Number-Auth-Items",
            show_opt(recorded.u32(codes::SIP_NUMBER_AUTH_ITEMS)),
            show_opt(replayed.u32(codes::SIP_NUMBER_AUTH_ITEMS)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ApplicationId, CommandCode, ExperimentalResultCode, ResultCode};

    fn uaa() -> Message {
        let mut m = Message::request(
            CommandCode::USER_AUTHORIZATION,
            ApplicationId::CX,
            true,
            1,
            2,
        );
        m.header.flags &= !0x80;
        m
    }

    #[test]
    fn identical_answers_do_not_differ() {
        let mut a = uaa();
        a.set_experimental(ExperimentalResultCode(2001));
        a.push(Avp::utf8(codes::SESSION_ID, "x;1"));
        let mut b = a.clone();
        b.avps[1] = Avp::utf8(codes::SESSION_ID, "y;2");
        assert!(compare(&a, &b, Dictionary::builtin()).is_empty());
    }

    #[test]
    fn result_kind_presence_and_server_name_are_compared() {
        let mut a = uaa();
        a.set_experimental(ExperimentalResultCode(2002));
        a.push(Avp::utf8(codes::SERVER_NAME, "sip:scscf.a:6060"));
        let mut b = uaa();
        b.set_result(ResultCode(2001));
        b.push(Avp::utf8(codes::SERVER_NAME, "sip:scscf.b:6060"));
        let d = compare(&a, &b, Dictionary::builtin());
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert!(fields.contains(&"result"), "{d:?}");
        assert!(!fields.iter().any(|f| f.contains("Result")), "{d:?}");
        assert!(fields.contains(&"Server-Name"), "{d:?}");
        let r = d.iter().find(|d| d.field == "result").unwrap();
        assert_eq!(
            r.recorded,
            "Experimental-Result-Code 2002 DIAMETER_SUBSEQUENT_REGISTRATION"
        );
        assert_eq!(r.replayed, "Result-Code 2001 DIAMETER_SUCCESS");
    }

    #[test]
    fn readdress_rewrites_destination_only() {
        let mut m = uaa()
            .with(Avp::identity(codes::DESTINATION_HOST, "hss.old"))
            .with(Avp::identity(codes::DESTINATION_REALM, "old.realm"))
            .with(Avp::identity(codes::ORIGIN_HOST, "icscf.old"));
        readdress(&mut m, "hss.new", "new.realm");
        assert_eq!(m.str(codes::DESTINATION_HOST), Some("hss.new"));
        assert_eq!(m.str(codes::DESTINATION_REALM), Some("new.realm"));
        assert_eq!(m.str(codes::ORIGIN_HOST), Some("icscf.old"));
    }
}
