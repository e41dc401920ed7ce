//! The Diameter messages of a capture (RFC 6733 §2.1: over TCP or SCTP).
//!
//! - **TCP**, any port: the payloads of each direction (one 4-tuple) are joined in frame
//!   order, and [`check_frame`] cuts messages from the front (RFC 6733 §3: the Message
//!   Length delimits messages). Retransmitted octets (by sequence number) are dropped; after
//!   a gap, or on a stream that does not start at a message boundary (captures start
//!   mid-connection), the direction waits for a segment that starts with a Diameter header.
//! - **SCTP**: DATA chunks (RFC 9260 §3.3.1), fragments joined per stream, retransmitted
//!   TSNs dropped. PPID 46 is Diameter (RFC 6733 §2.1, IANA SCTP PPIDs); other PPIDs are
//!   taken when the payload has the shape of Diameter messages.
//!
//! On TCP port 3868 and SCTP PPID 46 every framed message is returned, so that a malformed
//! one can be shown; elsewhere only messages whose AVPs tile the body exactly
//! ([`looks_like_diameter`]), so that other protocols are not mistaken for Diameter.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::net::{self, tcp_flags, IPPROTO_SCTP, IPPROTO_TCP};
use super::{read_packets, PcapError};
use crate::codec::framer::DEFAULT_MAX_MESSAGE;
use crate::codec::header::{FLAGS_RESERVED, HEADER_LEN};
use crate::codec::{check_frame, Frame};

/// The IANA port of Diameter over TCP and SCTP (RFC 6733 §2.1).
pub const DIAMETER_PORT: u16 = 3868;
/// The IANA SCTP Payload Protocol Identifier of Diameter (RFC 6733 §2.1).
pub const DIAMETER_PPID: u32 = 46;

/// The transport a message was carried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// SCTP.
    Sctp,
}

impl Transport {
    /// `"tcp"` or `"sctp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Sctp => "sctp",
        }
    }
}

/// One Diameter message found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// The frame that completed the message (Wireshark shows it there too).
    pub frame: u64,
    /// Capture time of that frame, nanoseconds since the Unix epoch.
    pub timestamp_ns: Option<u64>,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// TCP or SCTP.
    pub transport: Transport,
    /// The message octets, exactly as sent.
    pub bytes: Vec<u8>,
}

/// Whether `buf` can be the start of a Diameter message: version 1, then (as far as `buf`
/// goes) a Message Length of at least 20, a multiple of 4 and at most 1 MiB, and the
/// reserved flag bits clear. A prefix shorter than the header is judged on what it holds.
pub fn starts_like_diameter(buf: &[u8]) -> bool {
    if buf.first() != Some(&1) {
        return false;
    }
    if let Some(l) = buf.get(1..4) {
        let len = be_u24(l);
        if len < HEADER_LEN || len % 4 != 0 || len > DEFAULT_MAX_MESSAGE as usize {
            return false;
        }
    }
    buf.get(4).map_or(true, |flags| flags & FLAGS_RESERVED == 0)
}

/// Whether `msg` is exactly one Diameter message by shape alone (no dictionary): a
/// plausible header whose length is `msg.len()`, and top-level AVPs whose lengths (at least
/// their header, 8 or 12 octets) and padding tile the body exactly.
pub fn looks_like_diameter(msg: &[u8]) -> bool {
    if msg.len() < HEADER_LEN || !starts_like_diameter(msg) || msg.len() != be_u24(&msg[1..4]) {
        return false;
    }
    let mut rest = &msg[HEADER_LEN..];
    while !rest.is_empty() {
        let Some(head) = rest.get(..8) else {
            return false;
        };
        let len = be_u24(&head[5..8]);
        let min = if head[4] & 0x80 != 0 { 12 } else { 8 };
        if len < min || len > rest.len() {
            return false;
        }
        let padded = (len + 3) & !3;
        // As the codec does, a missing pad on the very last AVP is tolerated.
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    true
}

fn be_u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// Reads a capture file and returns its Diameter messages in the order they completed.
///
/// # Errors
/// Those of [`read_packets`]. Frames that are not IP, TCP or SCTP are skipped.
pub fn diameter_messages(file: &[u8]) -> Result<Vec<CapturedMessage>, PcapError> {
    let mut x = Extractor::default();
    for p in read_packets(file)? {
        let Some(ip) = net::ip_packet(p.link_type, p.data) else {
            continue;
        };
        let at = Meta {
            frame: p.number,
            timestamp_ns: p.timestamp_ns,
        };
        match ip.protocol {
            IPPROTO_TCP => {
                if let Some(seg) = net::tcp_segment(ip.payload) {
                    let src = SocketAddr::new(ip.src, seg.src_port);
                    let dst = SocketAddr::new(ip.dst, seg.dst_port);
                    x.tcp(at, src, dst, &seg);
                }
            }
            IPPROTO_SCTP => {
                if let Some(pkt) = net::sctp_packet(ip.payload) {
                    let src = SocketAddr::new(ip.src, pkt.src_port);
                    let dst = SocketAddr::new(ip.dst, pkt.dst_port);
                    for chunk in &pkt.data {
                        x.sctp(at, src, dst, chunk);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(x.out)
}

/// Where a message completed.
#[derive(Debug, Clone, Copy)]
struct Meta {
    frame: u64,
    timestamp_ns: Option<u64>,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
struct TcpDirection {
    /// The sequence number expected next, once one segment was seen.
    next_seq: Option<u32>,
    /// Octets of a message not yet complete; empty when at a message boundary.
    buf: Vec<u8>,
}

#[derive(Debug, Default)]
struct Extractor {
    tcp: HashMap<(SocketAddr, SocketAddr), TcpDirection>,
    /// SCTP fragments being joined, per direction and stream.
    sctp_partial: HashMap<(SocketAddr, SocketAddr, u16), Vec<u8>>,
    /// TSNs seen per direction, to drop retransmissions.
    sctp_tsns: HashMap<(SocketAddr, SocketAddr), HashSet<u32>>,
    out: Vec<CapturedMessage>,
}

impl Extractor {
    fn tcp(&mut self, at: Meta, src: SocketAddr, dst: SocketAddr, seg: &net::TcpSegment<'_>) {
        let dir = self.tcp.entry((src, dst)).or_default();
        let mut seq = seg.seq;
        if seg.flags & tcp_flags::SYN != 0 {
            // The SYN takes one sequence number; a new connection on this 4-tuple starts clean.
            seq = seq.wrapping_add(1);
            dir.buf.clear();
            dir.next_seq = Some(seq);
        }
        let mut payload = seg.payload;
        if payload.is_empty() {
            return;
        }
        if let Some(next) = dir.next_seq {
            // Signed distance in sequence space (RFC 9293 §3.4 modular comparison).
            let ahead = seq.wrapping_sub(next) as i32;
            if ahead < 0 {
                let seen = ahead.unsigned_abs() as usize;
                if seen >= payload.len() {
                    return; // a retransmission of octets already taken
                }
                payload = &payload[seen..];
                seq = next;
            } else if ahead > 0 {
                dir.buf.clear(); // octets were lost: resynchronise on a message start
            }
        }
        dir.next_seq = Some(seq.wrapping_add(payload.len() as u32));
        if dir.buf.is_empty() && !starts_like_diameter(payload) {
            return;
        }
        dir.buf.extend_from_slice(payload);
        let well_known = src.port() == DIAMETER_PORT || dst.port() == DIAMETER_PORT;
        let dir_buf = std::mem::take(&mut dir.buf);
        let (complete, rest) = cut(dir_buf);
        if let Some(dir) = self.tcp.get_mut(&(src, dst)) {
            dir.buf = rest;
        }
        for bytes in complete {
            self.emit(at, src, dst, Transport::Tcp, bytes, well_known);
        }
    }

    fn sctp(&mut self, at: Meta, src: SocketAddr, dst: SocketAddr, chunk: &net::DataChunk<'_>) {
        if !self
            .sctp_tsns
            .entry((src, dst))
            .or_default()
            .insert(chunk.tsn)
        {
            return; // retransmitted DATA
        }
        const B: u8 = 0x02;
        const E: u8 = 0x01;
        let key = (src, dst, chunk.stream);
        let whole = match (chunk.flags & B != 0, chunk.flags & E != 0) {
            (true, true) => chunk.data.to_vec(),
            (true, false) => {
                self.sctp_partial.insert(key, chunk.data.to_vec());
                return;
            }
            (false, last) => {
                let Some(buf) = self.sctp_partial.get_mut(&key) else {
                    return; // the first fragment was not captured
                };
                buf.extend_from_slice(chunk.data);
                if !last {
                    return;
                }
                self.sctp_partial.remove(&key).unwrap_or_default()
            }
        };
        let well_known = chunk.ppid == DIAMETER_PPID;
        if !well_known && !starts_like_diameter(&whole) {
            return;
        }
        let (complete, _rest) = cut(whole);
        for bytes in complete {
            self.emit(at, src, dst, Transport::Sctp, bytes, well_known);
        }
    }

    fn emit(
        &mut self,
        at: Meta,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
        well_known: bool,
    ) {
        if well_known || looks_like_diameter(&bytes) {
            self.out.push(CapturedMessage {
                frame: at.frame,
                timestamp_ns: at.timestamp_ns,
                src,
                dst,
                transport,
                bytes,
            });
        }
    }
}

/// Cuts complete messages from the front of `buf`; returns them and what is left (an
/// incomplete message, or nothing when the stream stopped looking like Diameter).
fn cut(buf: Vec<u8>) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        if rest.is_empty() {
            return (out, Vec::new());
        }
        if !starts_like_diameter(rest) {
            return (out, Vec::new());
        }
        match check_frame(rest, DEFAULT_MAX_MESSAGE) {
            Frame::Complete(n) => {
                out.push(rest[..n].to_vec());
                at += n;
            }
            Frame::Incomplete => return (out, rest.to_vec()),
            Frame::Invalid(..) => return (out, Vec::new()),
        }
    }
}
