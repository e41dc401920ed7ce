//! The Diameter messages of the run's capture: tshark gives each TCP segment's payload
//! (`-T fields -e tcp.payload`), each direction of each connection is joined in order,
//! cut into messages with the project's framer and decoded with its codec.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use sichss::codec::{check_frame, codes, decode_message, Frame, Message};
use sichss::dict::Dictionary;

pub const CER: u32 = 257;
pub const DWR: u32 = 280;
pub const UAR: u32 = 300;
pub const SAR: u32 = 301;
pub const LIR: u32 = 302;
pub const MAR: u32 = 303;
pub const RTR: u32 = 304;

/// One captured Diameter message, with what the tests look at.
#[derive(Clone)]
pub struct Cx {
    /// True when sent towards the HSS port.
    pub to_hss: bool,
    pub request: bool,
    pub command: u32,
    pub hop_by_hop: u32,
    pub origin_host: Option<String>,
    pub destination_host: Option<String>,
    pub user_name: Option<String>,
    pub public_ids: Vec<String>,
    pub sat: Option<i32>,
    pub uat: Option<i32>,
    pub result_code: Option<u32>,
    pub experimental: Option<u32>,
    pub server_name: Option<String>,
    /// SIP-Authentication-Scheme of the SIP-Auth-Data-Item.
    pub scheme: Option<String>,
    pub message: Message,
}

impl Cx {
    fn of(m: Message, to_hss: bool) -> Cx {
        let s = |code| m.str(code).map(str::to_owned);
        let i = |code| m.find(code).and_then(|a| a.as_i32());
        Cx {
            to_hss,
            request: m.header.is_request(),
            command: m.header.command.0,
            hop_by_hop: m.header.hop_by_hop,
            origin_host: s(codes::ORIGIN_HOST),
            destination_host: s(codes::DESTINATION_HOST),
            user_name: s(codes::USER_NAME),
            public_ids: m
                .find_all(codes::PUBLIC_IDENTITY)
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            sat: i(codes::SERVER_ASSIGNMENT_TYPE),
            uat: i(codes::USER_AUTHORIZATION_TYPE),
            result_code: m.result_code().map(|r| r.0),
            experimental: m.experimental_result().map(|r| r.0),
            server_name: s(codes::SERVER_NAME),
            scheme: m
                .find(codes::SIP_AUTH_DATA_ITEM)
                .and_then(|g| g.find(codes::SIP_AUTHENTICATION_SCHEME))
                .and_then(|a| a.as_str().map(str::to_owned)),
            message: m,
        }
    }

    /// `UAR`, `SAA`, … for reports.
    pub fn name(&self) -> String {
        let base = match self.command {
            CER => "CE",
            DWR => "DW",
            282 => "DP",
            UAR => "UA",
            SAR => "SA",
            LIR => "LI",
            MAR => "MA",
            RTR => "RT",
            305 => "PP",
            _ => "??",
        };
        format!("{base}{}", if self.request { "R" } else { "A" })
    }

    /// Result-Code or Experimental-Result-Code.
    pub fn result(&self) -> Option<u32> {
        self.result_code.or(self.experimental)
    }
}

impl fmt::Debug for Cx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(u) = &self.user_name {
            write!(f, " user={u}")?;
        }
        if !self.public_ids.is_empty() {
            write!(f, " impu={}", self.public_ids.join(","))?;
        }
        if let Some(t) = self.uat {
            write!(f, " UAT={t}")?;
        }
        if let Some(t) = self.sat {
            write!(f, " SAT={t}")?;
        }
        if let Some(r) = self.result_code {
            write!(f, " RC={r}")?;
        }
        if let Some(r) = self.experimental {
            write!(f, " ER={r}")?;
        }
        if let Some(s) = &self.server_name {
            write!(f, " server={s}")?;
        }
        Ok(())
    }
}

/// The Diameter messages in `file` on TCP port `port`, in capture order.
pub fn read(file: &Path, port: u16) -> Vec<Cx> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "tcp.len > 0", "-T", "fields"])
        .args(["-e", "tcp.stream", "-e", "tcp.dstport", "-e", "tcp.payload"])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let dict = Dictionary::builtin();
    let mut buffers: HashMap<(String, bool), Vec<u8>> = HashMap::new();
    let mut msgs = Vec::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(stream), Some(dport), Some(hex)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let to_hss = dport == port.to_string();
        let Ok(bytes) = hex::decode(hex.replace(':', "")) else {
            continue;
        };
        let buf = buffers.entry((stream.to_owned(), to_hss)).or_default();
        buf.extend_from_slice(&bytes);
        while let Frame::Complete(n) = check_frame(buf, 1 << 20) {
            let frame: Vec<u8> = buf.drain(..n).collect();
            if let Ok(m) = decode_message(&frame, dict) {
                msgs.push(Cx::of(m, to_hss));
            }
        }
    }
    msgs
}

/// Cx messages only (no CER/DWR/DPR).
pub fn cx_only(msgs: &[Cx]) -> Vec<Cx> {
    msgs.iter()
        .filter(|m| (300..=305).contains(&m.command))
        .cloned()
        .collect()
}

/// Requests of `command` whose User-Name is `impi`.
pub fn requests<'a>(msgs: &'a [Cx], command: u32, impi: &str) -> Vec<&'a Cx> {
    msgs.iter()
        .filter(|m| m.request && m.command == command && m.user_name.as_deref() == Some(impi))
        .collect()
}

/// The answer to `req` (same command and Hop-by-Hop Identifier, other direction).
pub fn answer<'a>(msgs: &'a [Cx], req: &Cx) -> Option<&'a Cx> {
    msgs.iter().find(|m| {
        !m.request
            && m.command == req.command
            && m.hop_by_hop == req.hop_by_hop
            && m.to_hss != req.to_hss
    })
}

/// Whether a request of `command` for `impi` (User-Name) has been answered.
pub fn answered(msgs: &[Cx], command: u32, impi: &str) -> bool {
    requests(msgs, command, impi)
        .iter()
        .any(|r| answer(msgs, r).is_some())
}

/// Whether a SAR of type `sat` for `impi` has been answered.
pub fn sar_answered(msgs: &[Cx], impi: &str, sat: i32) -> bool {
    requests(msgs, SAR, impi)
        .iter()
        .any(|r| r.sat == Some(sat) && answer(msgs, r).is_some())
}

/// Whether a request of `command` (any identity) has been answered.
pub fn any_answered(msgs: &[Cx], command: u32) -> bool {
    msgs.iter()
        .any(|r| r.request && r.command == command && answer(msgs, r).is_some())
}

/// A compact listing for assertion messages.
pub fn listing(msgs: &[Cx]) -> String {
    cx_only(msgs)
        .iter()
        .map(|m| format!("  {m:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}
