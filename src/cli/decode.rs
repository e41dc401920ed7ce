//! `sichss decode FILE | --hex HEX`: every Diameter message of a capture (pcap or pcapng;
//! TCP on any port, SCTP) or of a hex string, as a readable tree or as JSON lines.
//!
//! Names come from the dictionary (RFC 6733 §4.5 base AVPs, TS 29.229 §6.3 Cx AVPs): the
//! command as `User-Authorization-Request (300)`, every AVP by name, enumerated values and
//! Result-Codes (RFC 6733 §7.1) by name, Experimental-Result-Code by its TS 29.229 §6.2
//! name, Vendor-Id and Application-Id values by name. Unknown AVPs are shown raw, in hex.
//!
//! Key material is not printed unless `--show-secrets` is given: Confidentiality-Key,
//! Integrity-Key, SIP-Authenticate, SIP-Authorization and Digest-HA1 show as
//! `<redacted N octets>`.
//!
//! ```text
//! Frame 1  10.0.0.1:40000 -> 10.0.0.2:3868  tcp  2024-01-01T00:00:00.000000Z
//! User-Authorization-Request (300)  flags RP--  application 3GPP Cx (16777216)
//!   hop-by-hop 0x00001234  end-to-end 0x00005678  length 332
//!   Session-Id (263) [M]: "icscf.ims.example.org;1;2"
//!   Vendor-Specific-Application-Id (260) [M]:
//!     Vendor-Id (266) [M]: 10415 (3GPP)
//!     Auth-Application-Id (258) [M]: 16777216 (3GPP Cx)
//!   User-Authorization-Type (623, vendor 10415) [VM]: REGISTRATION (0)
//! ```
//!
//! A message that does not decode is shown with the reason and its octets, and the command
//! then exits with status 1 after printing everything else.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use serde_json::{json, Map, Value as Json};

use super::CliError;
use crate::codec::avp::{AVP_FLAG_M, AVP_FLAG_P, AVP_FLAG_V};
use crate::codec::framer::DEFAULT_MAX_MESSAGE;
use crate::codec::{check_frame, decode_message, Avp, Frame, Message, Value, VENDOR_3GPP};
use crate::dict::{AvpType, Dictionary};
use crate::pcap::diameter::{diameter_messages, CapturedMessage};

/// `sichss decode`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["file", "hex"])))]
pub struct DecodeArgs {
    /// A pcap or pcapng capture; Diameter is found on TCP (any port) and SCTP.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// One or more Diameter messages back to back, in hex (whitespace, ':' and 0x are
    /// ignored).
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,
    /// One JSON object per message and line, with frame, src/dst and the AVP tree.
    #[arg(long)]
    pub json: bool,
    /// Print keys and authentication vectors instead of `<redacted N octets>`.
    #[arg(long)]
    pub show_secrets: bool,
}

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print secret values.
    pub show_secrets: bool,
}

/// A message to show and where it came from (`None` fields for hex input).
#[derive(Debug, Clone)]
pub struct Input {
    /// Frame number in the capture; the message's position for hex input.
    pub frame: Option<u64>,
    /// Capture time, nanoseconds since the Unix epoch.
    pub timestamp_ns: Option<u64>,
    /// Sender and receiver, `ip:port`.
    pub src: Option<String>,
    /// Receiver.
    pub dst: Option<String>,
    /// `tcp` or `sctp`.
    pub transport: Option<&'static str>,
    /// The octets.
    pub bytes: Vec<u8>,
}

impl From<CapturedMessage> for Input {
    fn from(m: CapturedMessage) -> Self {
        Input {
            frame: Some(m.frame),
            timestamp_ns: m.timestamp_ns,
            src: Some(m.src.to_string()),
            dst: Some(m.dst.to_string()),
            transport: Some(m.transport.as_str()),
            bytes: m.bytes,
        }
    }
}

/// Runs `sichss decode`.
///
/// # Errors
/// [`CliError::Read`], [`CliError::Capture`] or [`CliError::Hex`] when the input cannot be
/// read; [`CliError::Undecodable`] after printing when some message did not decode.
pub fn run(args: &DecodeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let inputs = match (&args.file, &args.hex) {
        (_, Some(hex)) => hex_inputs(hex)?,
        (Some(path), None) => {
            let file = std::fs::read(path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            diameter_messages(&file)
                .map_err(|source| CliError::Capture {
                    path: path.clone(),
                    source,
                })?
                .into_iter()
                .map(Input::from)
                .collect()
        }
        (None, None) => Vec::new(), // clap requires one of the two
    };
    let dict = Dictionary::builtin();
    let opts = Options {
        show_secrets: args.show_secrets,
    };
    let mut failed = 0;
    for (i, input) in inputs.iter().enumerate() {
        let decoded = decode_message(&input.bytes, dict);
        failed += usize::from(decoded.is_err());
        if args.json {
            let v = match &decoded {
                Ok(m) => message_json(input, m, dict, opts),
                Err(e) => error_json(input, e),
            };
            writeln!(out, "{v}")?;
        } else {
            if i > 0 {
                writeln!(out)?;
            }
            let text = match &decoded {
                Ok(m) => message_text(input, m, dict, opts),
                Err(e) => error_text(input, e),
            };
            out.write_all(text.as_bytes())?;
        }
    }
    if inputs.is_empty() && !args.json {
        writeln!(out, "no Diameter messages found")?;
    }
    if failed > 0 {
        return Err(CliError::Undecodable {
            failed,
            total: inputs.len(),
        });
    }
    Ok(())
}

/// Splits a `--hex` argument into messages.
///
/// # Errors
/// [`CliError::Hex`] for non-hex text, an odd number of digits, or input that ends inside a
/// message.
pub fn hex_inputs(hex: &str) -> Result<Vec<Input>, CliError> {
    let clean: String = hex
        .split_whitespace()
        .map(|w| w.strip_prefix("0x").unwrap_or(w))
        .collect::<String>()
        .replace(':', "");
    if let Some((pos, c)) = clean.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(CliError::Hex(format!(
            "{c:?} at digit {pos} is not a hex digit (expected pairs of 0-9a-f, e.g. 0100001c80000118…)"
        )));
    }
    if clean.len() % 2 != 0 {
        return Err(CliError::Hex(format!(
            "{} hex digits is an odd number (each octet takes two digits)",
            clean.len()
        )));
    }
    let bytes = hex::decode(&clean).map_err(|e| CliError::Hex(e.to_string()))?;
    if bytes.is_empty() {
        return Err(CliError::Hex(
            "no octets given (expected a Diameter message in hex)".into(),
        ));
    }
    let mut inputs = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = match check_frame(rest, DEFAULT_MAX_MESSAGE) {
            Frame::Complete(n) => n,
            // The decoder reports what is wrong with it (version, length) precisely.
            Frame::Invalid(..) => rest.len(),
            Frame::Incomplete if rest.len() < 20 => {
                return Err(CliError::Hex(format!(
                    "{} octets left after {} message(s): a Diameter header takes 20",
                    rest.len(),
                    inputs.len()
                )))
            }
            Frame::Incomplete => {
                let declared = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]);
                return Err(CliError::Hex(format!(
                    "message {} declares {declared} octets but only {} are given",
                    inputs.len() + 1,
                    rest.len()
                )));
            }
        };
        inputs.push(Input {
            frame: Some(inputs.len() as u64 + 1),
            timestamp_ns: None,
            src: None,
            dst: None,
            transport: None,
            bytes: rest[..n].to_vec(),
        });
        rest = &rest[n..];
    }
    Ok(inputs)
}

/// AVPs whose values are keys or authentication material (TS 29.229 §6.3.8–§6.3.14,
/// RFC 4740 §4.7 Digest-HA1): (code, vendor).
const SECRETS: &[(u32, u32)] = &[
    (625, VENDOR_3GPP), // Confidentiality-Key
    (626, VENDOR_3GPP), // Integrity-Key
    (609, VENDOR_3GPP), // SIP-Authenticate
    (610, VENDOR_3GPP), // SIP-Authorization
    (121, 0),           // Digest-HA1
];

/// Whether `avp`'s value is withheld without `--show-secrets`.
pub fn is_secret(avp: &Avp) -> bool {
    SECRETS.contains(&(avp.code, avp.vendor_id()))
}

/// The command's display name: `User-Authorization-Request`, `Capabilities-Exchange-Answer`.
pub fn command_name(m: &Message, dict: &Dictionary) -> String {
    let kind = if m.header.is_request() {
        "Request"
    } else {
        "Answer"
    };
    match dict.command(m.header.command.0, m.header.application.0) {
        Some(c) => format!("{}-{kind}", c.name),
        None => format!("Unknown-{kind}"),
    }
}

/// `RP--` style command flags (RFC 6733 §3).
fn header_flags(m: &Message) -> String {
    let h = &m.header;
    [
        (h.is_request(), 'R'),
        (h.is_proxiable(), 'P'),
        (h.is_error(), 'E'),
        (h.is_retransmit(), 'T'),
    ]
    .iter()
    .map(|&(on, c)| if on { c } else { '-' })
    .collect()
}

/// `VMP` letters of the set AVP flags (RFC 6733 §4.1).
fn avp_flags(a: &Avp) -> String {
    [(AVP_FLAG_V, 'V'), (AVP_FLAG_M, 'M'), (AVP_FLAG_P, 'P')]
        .iter()
        .filter(|(bit, _)| a.flags & bit != 0)
        .map(|&(_, c)| c)
        .collect()
}

/// A value prepared for either output.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    Text(String),
    Number {
        value: i128,
        name: Option<String>,
    },
    Octets {
        bytes: Vec<u8>,
        text: Option<String>,
    },
    Unknown(Vec<u8>),
    Redacted(usize),
    Address(String),
    Time {
        ntp: u32,
        utc: String,
    },
    Group,
}

/// Text that reads well as is: printable ASCII, tabs and line breaks. (Non-ASCII UTF-8
/// is not guessed at: short binary values are often valid UTF-8 by chance.)
fn printable(bytes: &[u8]) -> Option<String> {
    let ok = !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Encoded value length, for the redaction notice.
fn value_len(a: &Avp) -> usize {
    a.length() - a.header_len()
}

fn show(a: &Avp, siblings: &[Avp], dict: &Dictionary, opts: Options) -> Shown {
    if is_secret(a) && !opts.show_secrets {
        return Shown::Redacted(value_len(a));
    }
    let vendor = a.vendor_id();
    let def = dict.avp(a.code, vendor);
    let named = |value: i128, name: Option<&str>| Shown::Number {
        value,
        name: name.map(str::to_owned),
    };
    match &a.value {
        Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => {
            Shown::Text(s.to_string())
        }
        Value::OctetString(b) => Shown::Octets {
            bytes: b.to_vec(),
            text: printable(b),
        },
        Value::Unknown(b) => Shown::Unknown(b.to_vec()),
        Value::Integer32(v) => named((*v).into(), None),
        Value::Integer64(v) => named((*v).into(), None),
        Value::Unsigned64(v) => named((*v).into(), None),
        Value::Enumerated(v) => named((*v).into(), def.and_then(|d| d.enum_name(*v))),
        Value::Unsigned32(v) => {
            let name = match (a.code, vendor) {
                // Vendor-Id, Supported-Vendor-Id.
                (266 | 265, 0) => dict.vendor_name(*v),
                // Auth-Application-Id, Acct-Application-Id.
                (258 | 259, 0) => dict.application_name(*v),
                // Result-Code.
                (268, 0) => dict.result_name(0, *v),
                // Experimental-Result-Code: named in the space of the sibling Vendor-Id.
                (298, 0) => {
                    let v_id = siblings
                        .iter()
                        .find(|s| s.code == 266 && s.vendor.is_none())
                        .and_then(Avp::as_u32)
                        .unwrap_or(VENDOR_3GPP);
                    dict.result_name(v_id, *v)
                }
                _ => None,
            };
            named((*v).into(), name)
        }
        Value::Address(addr) => Shown::Address(match addr.ip() {
            Some(ip) => ip.to_string(),
            None => format!("family {} {}", addr.family, hex::encode(&addr.octets)),
        }),
        Value::Time(t) => Shown::Time {
            ntp: *t,
            utc: ntp_to_utc(*t),
        },
        Value::Grouped(_) => Shown::Group,
    }
}

/// The AVP's display name: the dictionary's, or `AVP <code>` when unknown.
fn avp_name<'d>(a: &Avp, dict: &'d Dictionary) -> Option<&'d str> {
    dict.avp(a.code, a.vendor_id()).map(|d| d.name.as_str())
}

fn type_name(a: &Avp, dict: &Dictionary) -> &'static str {
    match dict.avp(a.code, a.vendor_id()).map(|d| d.ty) {
        None => "Unknown",
        Some(AvpType::OctetString) => "OctetString",
        Some(AvpType::Utf8String) => "UTF8String",
        Some(AvpType::DiameterIdentity) => "DiameterIdentity",
        Some(AvpType::DiameterUri) => "DiameterURI",
        Some(AvpType::Integer32) => "Integer32",
        Some(AvpType::Integer64) => "Integer64",
        Some(AvpType::Unsigned32) => "Unsigned32",
        Some(AvpType::Unsigned64) => "Unsigned64",
        Some(AvpType::Enumerated) => "Enumerated",
        Some(AvpType::Address) => "Address",
        Some(AvpType::Time) => "Time",
        Some(AvpType::Grouped) => "Grouped",
    }
}

/// The frame line of the text output.
fn origin_line(input: &Input) -> String {
    let mut line = match (input.src.as_deref(), input.transport) {
        (Some(_), _) | (_, Some(_)) => format!("Frame {}", input.frame.unwrap_or(0)),
        _ => format!("Message {}", input.frame.unwrap_or(0)),
    };
    if let (Some(src), Some(dst)) = (&input.src, &input.dst) {
        let _ = write!(line, "  {src} -> {dst}");
    }
    if let Some(t) = input.transport {
        let _ = write!(line, "  {t}");
    }
    if let Some(ts) = input.timestamp_ns {
        let _ = write!(line, "  {}", unix_ns_to_utc(ts));
    }
    line
}

/// The text tree of one decoded message.
pub fn message_text(input: &Input, m: &Message, dict: &Dictionary, opts: Options) -> String {
    let mut s = origin_line(input);
    let h = &m.header;
    let app = dict.application_name(h.application.0).unwrap_or("Unknown");
    let _ = write!(
        s,
        "\n{} ({})  flags {}  application {} ({})\n  hop-by-hop 0x{:08x}  end-to-end 0x{:08x}  length {}\n",
        command_name(m, dict),
        h.command.0,
        header_flags(m),
        app,
        h.application.0,
        h.hop_by_hop,
        h.end_to_end,
        input.bytes.len(),
    );
    avps_text(&mut s, &m.avps, 1, dict, opts);
    s
}

fn avps_text(s: &mut String, avps: &[Avp], depth: usize, dict: &Dictionary, opts: Options) {
    for a in avps {
        let indent = "  ".repeat(depth);
        let vendor = match a.vendor {
            Some(v) => format!(", vendor {v}"),
            None => String::new(),
        };
        let label = match avp_name(a, dict) {
            Some(n) => format!("{n} ({}{vendor})", a.code),
            None => format!("AVP {}{vendor} (unknown)", a.code),
        };
        let value = match show(a, avps, dict, opts) {
            Shown::Text(t) => format!("{t:?}"),
            Shown::Number { value, name: None } => value.to_string(),
            Shown::Number {
                value,
                name: Some(n),
            } => format!("{n} ({value})"),
            Shown::Octets {
                text: Some(t),
                bytes,
            } => format!("{t:?} ({} octets)", bytes.len()),
            Shown::Octets { bytes, text: None } => format!("0x{}", hex::encode(bytes)),
            Shown::Unknown(b) => match printable(&b) {
                Some(t) => format!("0x{} ({t:?})", hex::encode(&b)),
                None => format!("0x{}", hex::encode(&b)),
            },
            Shown::Redacted(n) => format!("<redacted {n} octets>"),
            Shown::Address(t) => t,
            Shown::Time { ntp, utc } => format!("{utc} ({ntp})"),
            Shown::Group => String::new(),
        };
        let sep = if value.is_empty() { ":" } else { ": " };
        let _ = writeln!(s, "{indent}{label} [{}]{sep}{value}", avp_flags(a));
        if let Value::Grouped(members) = &a.value {
            avps_text(s, members, depth + 1, dict, opts);
        }
    }
}

fn origin_json(input: &Input) -> Map<String, Json> {
    let mut o = Map::new();
    o.insert("frame".into(), json!(input.frame));
    if input.src.is_some() {
        o.insert("time".into(), json!(input.timestamp_ns.map(unix_ns_to_utc)));
    }
    o.insert("src".into(), json!(input.src));
    o.insert("dst".into(), json!(input.dst));
    o.insert("transport".into(), json!(input.transport));
    o
}

/// The JSON object of one decoded message.
pub fn message_json(input: &Input, m: &Message, dict: &Dictionary, opts: Options) -> Json {
    let h = &m.header;
    let mut o = origin_json(input);
    let abbrev = dict
        .command(h.command.0, h.application.0)
        .map(|c| {
            if h.is_request() {
                c.request_abbrev.clone()
            } else {
                c.answer_abbrev.clone()
            }
        })
        .filter(|a| !a.is_empty());
    o.insert(
        "command".into(),
        json!({"code": h.command.0, "name": command_name(m, dict), "abbrev": abbrev}),
    );
    o.insert(
        "flags".into(),
        json!({"request": h.is_request(), "proxiable": h.is_proxiable(),
               "error": h.is_error(), "retransmit": h.is_retransmit()}),
    );
    o.insert(
        "application".into(),
        json!({"id": h.application.0, "name": dict.application_name(h.application.0)}),
    );
    o.insert("hop_by_hop".into(), json!(h.hop_by_hop));
    o.insert("end_to_end".into(), json!(h.end_to_end));
    o.insert("length".into(), json!(input.bytes.len()));
    o.insert("avps".into(), avps_json(&m.avps, dict, opts));
    Json::Object(o)
}

fn avps_json(avps: &[Avp], dict: &Dictionary, opts: Options) -> Json {
    let list = avps
        .iter()
        .map(|a| {
            let mut o = Map::new();
            o.insert("code".into(), json!(a.code));
            o.insert("vendor".into(), json!(a.vendor_id()));
            o.insert("name".into(), json!(avp_name(a, dict)));
            o.insert("flags".into(), json!(avp_flags(a)));
            o.insert("type".into(), json!(type_name(a, dict)));
            match show(a, avps, dict, opts) {
                Shown::Text(t) => {
                    o.insert("value".into(), json!(t));
                }
                Shown::Number { value, name } => {
                    // i128 holds every Diameter integer; JSON numbers take i64 and u64.
                    let v = i64::try_from(value)
                        .map(Json::from)
                        .or_else(|_| u64::try_from(value).map(Json::from))
                        .unwrap_or(Json::Null);
                    o.insert("value".into(), v);
                    if let Some(n) = name {
                        o.insert("value_name".into(), json!(n));
                    }
                }
                Shown::Octets { bytes, text } => {
                    o.insert("hex".into(), json!(hex::encode(bytes)));
                    if let Some(t) = text {
                        o.insert("value".into(), json!(t));
                    }
                }
                Shown::Unknown(b) => {
                    o.insert("hex".into(), json!(hex::encode(b)));
                }
                Shown::Redacted(n) => {
                    o.insert("value".into(), json!(format!("<redacted {n} octets>")));
                    o.insert("redacted".into(), json!(true));
                }
                Shown::Address(t) => {
                    o.insert("value".into(), json!(t));
                }
                Shown::Time { ntp, utc } => {
                    o.insert("value".into(), json!(ntp));
                    o.insert("utc".into(), json!(utc));
                }
                Shown::Group => {
                    o.insert("avps".into(), avps_json(a.members(), dict, opts));
                }
            }
            Json::Object(o)
        })
        .collect();
    Json::Array(list)
}

/// The text shown for a message that did not decode: where, why, and the octets.
pub fn error_text(input: &Input, e: &crate::codec::DecodeError) -> String {
    let mut s = origin_line(input);
    let _ = write!(
        s,
        "\nnot decodable: {} (Result-Code {})\n  {} octets: {}\n",
        e.error,
        e.error.result_code().0,
        input.bytes.len(),
        hex::encode(&input.bytes)
    );
    s
}

/// The JSON object of a message that did not decode.
pub fn error_json(input: &Input, e: &crate::codec::DecodeError) -> Json {
    let mut o = origin_json(input);
    o.insert("error".into(), json!(e.error.to_string()));
    o.insert("result_code".into(), json!(e.error.result_code().0));
    o.insert("length".into(), json!(input.bytes.len()));
    o.insert("hex".into(), json!(hex::encode(&input.bytes)));
    Json::Object(o)
}

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// A Diameter Time (RFC 6733 §4.3.1: NTP seconds; with the high bit clear the value is in
/// era 1, from 2036-02-07, as RFC 5905 §6 wraps) as an RFC 3339 UTC string.
pub fn ntp_to_utc(ntp: u32) -> String {
    let secs = if ntp & 0x8000_0000 != 0 {
        i64::from(ntp)
    } else {
        i64::from(ntp) + (1i64 << 32)
    };
    utc(secs - NTP_UNIX_OFFSET, None)
}

fn unix_ns_to_utc(ns: u64) -> String {
    utc(
        (ns / 1_000_000_000) as i64,
        Some((ns % 1_000_000_000) as u32),
    )
}

/// RFC 3339 UTC from Unix seconds (and microseconds from `nanos`, when given).
fn utc(unix: i64, nanos: Option<u32>) -> String {
    let frac = nanos.map_or(String::new(), |n| format!(".{:06}", n / 1_000));
    format!("{}{frac}Z", date_time(unix))
}

/// `YYYY-MM-DDTHH:MM:SS`, the UTC date and time of day of Unix seconds `unix` (also the
/// log's timestamps, `super::log::Clock`).
pub(crate) fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let sod = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", days_from_civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}
