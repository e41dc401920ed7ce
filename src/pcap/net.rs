//! From a captured frame to its TCP segment or SCTP DATA chunks, and back (synthesised
//! Ethernet/IPv4/TCP frames for tests and tools).
//!
//! - Link layers (tcpdump.org `LINKTYPE_` list): Ethernet with 802.1Q/802.1ad tags, Linux
//!   cooked v1 and v2, BSD and OpenBSD loopback, raw IP.
//! - IPv4 (RFC 791; header checksum RFC 1071): fragments are skipped, not reassembled.
//! - IPv6 (RFC 8200 §4): Hop-by-Hop, Routing, Destination Options, Fragment (first and only
//!   fragment) and AH (RFC 4302) headers are walked.
//! - TCP (RFC 9293 §3.1) and SCTP (RFC 9260 §3: common header, chunks; DATA §3.3.1).
//!
//! Every length is checked before use; a frame this module cannot follow gives `None`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use super::LinkType;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// An IP packet's addresses, protocol and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (6 TCP, 132 SCTP, …).
    pub protocol: u8,
    /// The upper-layer octets (link-layer padding removed).
    pub payload: &'a [u8],
}

/// The IP packet inside a captured frame of `link_type`.
pub fn ip_packet(link_type: LinkType, frame: &[u8]) -> Option<IpPacket<'_>> {
    let (ethertype, rest) = match link_type {
        LinkType::ETHERNET => ethernet(frame)?,
        LinkType::LINUX_SLL => (be16(frame, 14)?, frame.get(16..)?),
        LinkType::LINUX_SLL2 => (be16(frame, 0)?, frame.get(20..)?),
        LinkType::NULL | LinkType::LOOP => {
            let f = frame.get(..4)?;
            // The family is in the capturing host's byte order (NULL) or big-endian (LOOP);
            // families are small numbers, so the order is whichever gives one.
            let le = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            let be = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            let family = if le < 256 { le } else { be };
            let ethertype = match family {
                2 => ETHERTYPE_IPV4,
                // AF_INET6 differs by OS: 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                10 | 24 | 28 | 30 => ETHERTYPE_IPV6,
                _ => return None,
            };
            (ethertype, frame.get(4..)?)
        }
        LinkType::RAW => match frame.first()? >> 4 {
            4 => (ETHERTYPE_IPV4, frame),
            6 => (ETHERTYPE_IPV6, frame),
            _ => return None,
        },
        LinkType::IPV4 => (ETHERTYPE_IPV4, frame),
        LinkType::IPV6 => (ETHERTYPE_IPV6, frame),
        _ => return None,
    };
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(rest),
        ETHERTYPE_IPV6 => ipv6(rest),
        _ => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Ethernet II, skipping 802.1Q / 802.1ad / QinQ tags.
fn ethernet(frame: &[u8]) -> Option<(u16, &[u8])> {
    let mut at = 12;
    loop {
        let ethertype = be16(frame, at)?;
        match ethertype {
            0x8100 | 0x88a8 | 0x9100 => at += 4,
            _ => return Some((ethertype, frame.get(at + 2..)?)),
        }
    }
}

fn ipv4(p: &[u8]) -> Option<IpPacket<'_>> {
    let first = *p.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || p.len() < ihl {
        return None;
    }
    let total = usize::from(be16(p, 2)?);
    let frag = be16(p, 6)?;
    // More Fragments set, or a non-zero offset: only part of the upper-layer data.
    if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    // A total length of 0 is seen with TCP segmentation offload; take what was captured.
    let end = if total == 0 {
        p.len()
    } else {
        total.min(p.len())
    };
    Some(IpPacket {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        protocol: p[9],
        payload: p.get(ihl..end)?,
    })
}

fn ipv6(p: &[u8]) -> Option<IpPacket<'_>> {
    if p.first()? >> 4 != 6 || p.len() < 40 {
        return None;
    }
    let payload_len = usize::from(be16(p, 4)?);
    let mut next = p[6];
    let src: [u8; 16] = p[8..24].try_into().ok()?;
    let dst: [u8; 16] = p[24..40].try_into().ok()?;
    let end = if payload_len == 0 {
        p.len()
    } else {
        (40 + payload_len).min(p.len())
    };
    let mut rest = p.get(40..end)?;
    loop {
        match next {
            // Hop-by-Hop, Routing, Destination Options: (Hdr Ext Len + 1) * 8 octets.
            0 | 43 | 60 => {
                let len = (usize::from(*rest.get(1)?) + 1) * 8;
                next = rest[0];
                rest = rest.get(len..)?;
            }
            // Fragment: only an unfragmented packet (offset 0, M clear) is whole.
            44 => {
                let off_m = be16(rest, 2)?;
                if off_m & 0xfff9 != 0 {
                    return None;
                }
                next = rest[0];
                rest = rest.get(8..)?;
            }
            // Authentication Header: (Payload Len + 2) * 4 octets.
            51 => {
                let len = (usize::from(*rest.get(1)?) + 2) * 4;
                next = rest[0];
                rest = rest.get(len..)?;
            }
            _ => break,
        }
    }
    Some(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: next,
        payload: rest,
    })
}

/// TCP flag bits (RFC 9293 §3.1).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first payload octet (of the SYN when SYN is set).
    pub seq: u32,
    /// Flags (see [`tcp_flags`]).
    pub flags: u8,
    /// The payload.
    pub payload: &'a [u8],
}

/// Parses a TCP header and returns the segment (RFC 9293 §3.1).
pub fn tcp_segment(p: &[u8]) -> Option<TcpSegment<'_>> {
    let offset = usize::from(*p.get(12)? >> 4) * 4;
    if offset < 20 {
        return None;
    }
    Some(TcpSegment {
        src_port: be16(p, 0)?,
        dst_port: be16(p, 2)?,
        seq: be32(p, 4)?,
        flags: *p.get(13)?,
        payload: p.get(offset..)?,
    })
}

/// One SCTP DATA chunk (RFC 9260 §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChunk<'a> {
    /// Flags: U (0x04), B (0x02, first fragment), E (0x01, last fragment).
    pub flags: u8,
    /// Transmission Sequence Number.
    pub tsn: u32,
    /// Stream Identifier.
    pub stream: u16,
    /// Payload Protocol Identifier (46 = Diameter, 47 = Diameter over DTLS).
    pub ppid: u32,
    /// User data (padding removed).
    pub data: &'a [u8],
}

/// An SCTP packet's ports and DATA chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpPacket<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The DATA chunks, in packet order; other chunks are dropped.
    pub data: Vec<DataChunk<'a>>,
}

/// SCTP DATA chunk type.
const SCTP_DATA: u8 = 0;

/// Parses an SCTP packet (RFC 9260 §3): the 12-octet common header, then chunks of
/// type, flags, length, value, each padded to 4 octets. Chunks after a malformed one are
/// dropped.
pub fn sctp_packet(p: &[u8]) -> Option<SctpPacket<'_>> {
    let mut pkt = SctpPacket {
        src_port: be16(p, 0)?,
        dst_port: be16(p, 2)?,
        data: Vec::new(),
    };
    let mut rest = p.get(12..)?;
    while rest.len() >= 4 {
        let ty = rest[0];
        let flags = rest[1];
        let len = usize::from(be16(rest, 2)?);
        let Some(chunk) = rest.get(..len).filter(|_| len >= 4) else {
            break;
        };
        if ty == SCTP_DATA && len >= 16 {
            pkt.data.push(DataChunk {
                flags,
                tsn: be32(chunk, 4)?,
                stream: be16(chunk, 8)?,
                ppid: be32(chunk, 12)?,
                data: &chunk[16..],
            });
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Some(pkt)
}

/// The Internet checksum (RFC 1071) of `parts`, concatenated.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an Ethernet II / IPv4 / TCP frame with correct IPv4 and TCP checksums, for
/// writing with [`super::PcapWriter`] as [`LinkType::ETHERNET`]. The MAC addresses are
/// locally administered ones derived from the IPv4 addresses.
///
/// Payloads above 65 495 octets do not fit one IPv4 packet; split them first.
pub fn ethernet_ipv4_tcp(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mac = |ip: &Ipv4Addr| {
        let o = ip.octets();
        [0x02, 0x00, o[0], o[1], o[2], o[3]]
    };
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&(if flags & tcp_flags::ACK != 0 { ack } else { 0 }).to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(payload);
    let tcp_len = (tcp.len() as u16).to_be_bytes();
    let pseudo = [
        &src.ip().octets()[..],
        &dst.ip().octets()[..],
        &[0, IPPROTO_TCP],
        &tcp_len[..],
    ]
    .concat();
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut ip = Vec::with_capacity(20);
    ip.push(0x45);
    ip.push(0);
    ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, Don't Fragment
    ip.push(64);
    ip.push(IPPROTO_TCP);
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&src.ip().octets());
    ip.extend_from_slice(&dst.ip().octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + ip.len() + tcp.len());
    frame.extend_from_slice(&mac(dst.ip()));
    frame.extend_from_slice(&mac(src.ip()));
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&tcp);
    frame
}

/// A synthesised TCP connection: hands out Ethernet/IPv4/TCP frames with consistent
/// sequence and acknowledgement numbers, so that a dissector sees a clean stream.
#[derive(Debug, Clone)]
pub struct TcpFlow {
    client: SocketAddrV4,
    server: SocketAddrV4,
    /// Next sequence number the client sends.
    client_seq: u32,
    /// Next sequence number the server sends.
    server_seq: u32,
}

impl TcpFlow {
    /// A connection from `client` to `server` (not yet opened).
    pub fn new(client: SocketAddrV4, server: SocketAddrV4) -> Self {
        Self {
            client,
            server,
            client_seq: 1000,
            server_seq: 5000,
        }
    }

    /// The three-way handshake: SYN, SYN-ACK, ACK.
    pub fn open(&mut self) -> Vec<Vec<u8>> {
        use tcp_flags::*;
        let syn = ethernet_ipv4_tcp(self.client, self.server, self.client_seq, 0, SYN, &[]);
        self.client_seq = self.client_seq.wrapping_add(1);
        let syn_ack = ethernet_ipv4_tcp(
            self.server,
            self.client,
            self.server_seq,
            self.client_seq,
            SYN | ACK,
            &[],
        );
        self.server_seq = self.server_seq.wrapping_add(1);
        let ack = ethernet_ipv4_tcp(
            self.client,
            self.server,
            self.client_seq,
            self.server_seq,
            ACK,
            &[],
        );
        vec![syn, syn_ack, ack]
    }

    /// A data segment (PSH, ACK) from the client (`from_client`) or the server.
    pub fn data(&mut self, from_client: bool, payload: &[u8]) -> Vec<u8> {
        let flags = tcp_flags::PSH | tcp_flags::ACK;
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        let frame = ethernet_ipv4_tcp(src, dst, seq, ack, flags, payload);
        let advanced = seq.wrapping_add(payload.len() as u32);
        if from_client {
            self.client_seq = advanced;
        } else {
            self.server_seq = advanced;
        }
        frame
    }

    /// The client and server addresses.
    pub fn endpoints(&self) -> (SocketAddr, SocketAddr) {
        (SocketAddr::V4(self.client), SocketAddr::V4(self.server))
    }
}
