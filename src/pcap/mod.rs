//! Packet capture files: classic pcap and pcapng read, classic pcap written, and the
//! Diameter messages found inside them.
//!
//! - [`read_packets`] reads either format (detected by its magic number):
//!   - classic pcap (draft-ietf-opsawg-pcap, libpcap's `pcap-savefile(5)`): a 24-octet file
//!     header whose magic gives the byte order and the timestamp unit (`a1b2c3d4`
//!     microseconds, `a1b23c4d` nanoseconds), then 16-octet record headers;
//!   - pcapng (draft-ietf-opsawg-pcapng): Section Header Blocks (byte order per section),
//!     Interface Description Blocks (link type, `if_tsresol`), Enhanced, Simple and the
//!     obsolete Packet Blocks; every other block is skipped.
//! - [`PcapWriter`] writes classic pcap (little-endian, nanosecond timestamps).
//! - [`net`]: link layers (the tcpdump.org `LINKTYPE_` values), IPv4 (RFC 791), IPv6
//!   (RFC 8200), TCP (RFC 9293), SCTP (RFC 9260), and frames synthesised for tests.
//! - [`diameter`]: the Diameter messages of a capture (RFC 6733 §2.1: TCP or SCTP; PPID 46),
//!   cut with [`crate::codec::check_frame`].
//!
//! Pure: bytes in, values out; no files are opened here. Written by hand rather than with a
//! capture crate: the subset needed is small, and it keeps the parsers panic-free under the
//! same rules as the codec (every length checked before it is used).
//!
//! Must not depend on: tokio, sled, the store, the Cx layer.

pub mod diameter;
pub mod net;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};

/// A link-layer header type (tcpdump.org `LINKTYPE_` values), open: any number is a value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-octet address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// IEEE 802.3 Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: a 4-octet address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (16-octet header).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (20-octet header).
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The `LINKTYPE_` name, for the link types this module reads.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NULL => "NULL",
            Self::ETHERNET => "ETHERNET",
            Self::RAW => "RAW",
            Self::LOOP => "LOOP",
            Self::LINUX_SLL => "LINUX_SLL",
            Self::IPV4 => "IPV4",
            Self::IPV6 => "IPV6",
            Self::LINUX_SLL2 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl fmt::Debug for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "LinkType({})", self.0),
        }
    }
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Frame number, counted from 1 as Wireshark does.
    pub number: u64,
    /// How `data` starts.
    pub link_type: LinkType,
    /// Capture time in nanoseconds since the Unix epoch; `None` where the format has
    /// none (pcapng Simple Packet Block) or it does not fit.
    pub timestamp_ns: Option<u64>,
    /// The captured octets (possibly shorter than the packet on the wire).
    pub data: &'a [u8],
}

/// Why a capture file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The first four octets are no pcap or pcapng magic number.
    #[error("not a pcap or pcapng file: magic {magic:02x?} (expected a1b2c3d4 or a1b23c4d in either byte order, or a pcapng Section Header Block 0a0d0d0a)")]
    UnknownFormat {
        /// The first (up to) four octets.
        magic: Vec<u8>,
    },
    /// The file ends inside a header, record or block.
    #[error(
        "capture is truncated at offset {offset}: {what} needs {needed} octets, {available} left"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// File offset where it starts.
        offset: usize,
        /// Octets it needs.
        needed: usize,
        /// Octets left in the file.
        available: usize,
    },
    /// A pcapng block that contradicts the format.
    #[error("pcapng block at offset {offset}: {reason}")]
    BadBlock {
        /// File offset of the block.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A packet block naming an interface that no Interface Description Block declared.
    #[error("pcapng block at offset {offset} names interface {interface}, but the section declares only {declared}")]
    UnknownInterface {
        /// File offset of the block.
        offset: usize,
        /// Interface id in the block.
        interface: u32,
        /// Interfaces declared so far in the section.
        declared: usize,
    },
}

/// Byte order of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
}

/// Returns `file[at..at + len]` or the [`PcapError::Truncated`] naming `what`.
fn take<'a>(
    file: &'a [u8],
    at: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], PcapError> {
    at.checked_add(len)
        .and_then(|end| file.get(at..end))
        .ok_or(PcapError::Truncated {
            what,
            offset: at,
            needed: len,
            available: file.len().saturating_sub(at),
        })
}

/// Classic pcap magic, microsecond timestamps.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, nanosecond timestamps.
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// pcapng Section Header Block type (a palindrome: the same in both byte orders).
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic inside the SHB.
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;

/// Reads every packet of a classic pcap or pcapng file, in file order.
///
/// # Errors
/// [`PcapError`] when the format is unknown or a header, record or block is cut short or
/// inconsistent. Nothing is returned for a damaged file: a capture tool that wrote part of
/// a record is rare, and a half-read capture would silently hide messages.
pub fn read_packets(file: &[u8]) -> Result<Vec<Packet<'_>>, PcapError> {
    let magic = take(file, 0, 4, "file magic").map_err(|_| PcapError::UnknownFormat {
        magic: file.to_vec(),
    })?;
    let le = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
    let be = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
    match (le, be) {
        (PCAP_MAGIC_US, _) => read_pcap(file, Endian::Little, 1_000),
        (PCAP_MAGIC_NS, _) => read_pcap(file, Endian::Little, 1),
        (_, PCAP_MAGIC_US) => read_pcap(file, Endian::Big, 1_000),
        (_, PCAP_MAGIC_NS) => read_pcap(file, Endian::Big, 1),
        (PCAPNG_SHB, _) => read_pcapng(file),
        _ => Err(PcapError::UnknownFormat {
            magic: magic.to_vec(),
        }),
    }
}

/// Classic pcap; `ns_per_unit` is 1000 for microsecond files and 1 for nanosecond files.
fn read_pcap(file: &[u8], e: Endian, ns_per_unit: u64) -> Result<Vec<Packet<'_>>, PcapError> {
    let hdr = take(file, 0, 24, "pcap file header")?;
    // The upper bits of the LinkType field carry FCS information (draft-ietf-opsawg-pcap §4).
    let link_type = LinkType(e.u32(hdr, 20) & 0xffff);
    let mut packets = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let rec = take(file, at, 16, "pcap record header")?;
        let secs = u64::from(e.u32(rec, 0));
        let frac = u64::from(e.u32(rec, 4));
        let caplen = e.u32(rec, 8) as usize;
        let data = take(file, at + 16, caplen, "pcap packet data")?;
        packets.push(Packet {
            number: packets.len() as u64 + 1,
            link_type,
            timestamp_ns: secs
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(frac.saturating_mul(ns_per_unit))),
            data,
        });
        at += 16 + caplen;
    }
    Ok(packets)
}

/// One interface of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`; 10^6 by default).
    units_per_sec: u64,
}

/// pcapng block types this reader acts on.
const IDB: u32 = 1;
const PB_OBSOLETE: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

fn read_pcapng(file: &[u8]) -> Result<Vec<Packet<'_>>, PcapError> {
    let mut packets = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut e = Endian::Little;
    let mut at = 0;
    while at < file.len() {
        let head = take(file, at, 12, "pcapng block header")?;
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == PCAPNG_SHB {
            // A new section: its byte order comes from the byte-order magic.
            e = if Endian::Little.u32(head, 8) == PCAPNG_BOM {
                Endian::Little
            } else if Endian::Big.u32(head, 8) == PCAPNG_BOM {
                Endian::Big
            } else {
                return Err(PcapError::BadBlock {
                    offset: at,
                    reason: "Section Header Block without the byte-order magic 1a2b3c4d",
                });
            };
            interfaces.clear();
        }
        let block_type = e.u32(head, 0);
        let total = e.u32(head, 4) as usize;
        if total < 12 || total % 4 != 0 {
            return Err(PcapError::BadBlock {
                offset: at,
                reason: "Block Total Length is below 12 or not a multiple of 4",
            });
        }
        let block = take(file, at, total, "pcapng block")?;
        if e.u32(block, total - 4) as usize != total {
            return Err(PcapError::BadBlock {
                offset: at,
                reason: "the trailing Block Total Length differs from the leading one",
            });
        }
        let body = &block[8..total - 4];
        match block_type {
            IDB => interfaces.push(read_idb(body, e, at)?),
            EPB | PB_OBSOLETE => {
                if body.len() < 20 {
                    return Err(PcapError::BadBlock {
                        offset: at,
                        reason: "packet block shorter than its fixed fields",
                    });
                }
                let id = if block_type == EPB {
                    e.u32(body, 0)
                } else {
                    u32::from(e.u16(body, 0))
                };
                let iface = interface(&interfaces, id, at)?;
                let ts = (u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8));
                let caplen = e.u32(body, 12) as usize;
                let data =
                    body.get(20..)
                        .and_then(|d| d.get(..caplen))
                        .ok_or(PcapError::BadBlock {
                            offset: at,
                            reason: "Captured Packet Length runs past the end of the block",
                        })?;
                packets.push(Packet {
                    number: packets.len() as u64 + 1,
                    link_type: iface.link_type,
                    timestamp_ns: to_ns(ts, iface.units_per_sec),
                    data,
                });
            }
            SPB => {
                if body.len() < 4 {
                    return Err(PcapError::BadBlock {
                        offset: at,
                        reason: "Simple Packet Block shorter than its fixed fields",
                    });
                }
                let iface = interface(&interfaces, 0, at)?;
                let orig = e.u32(body, 0) as usize;
                let mut caplen = orig.min(body.len() - 4);
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                packets.push(Packet {
                    number: packets.len() as u64 + 1,
                    link_type: iface.link_type,
                    timestamp_ns: None,
                    data: &body[4..4 + caplen],
                });
            }
            _ => {}
        }
        at += total;
    }
    Ok(packets)
}

fn interface(interfaces: &[Interface], id: u32, at: usize) -> Result<Interface, PcapError> {
    interfaces
        .get(id as usize)
        .copied()
        .ok_or(PcapError::UnknownInterface {
            offset: at,
            interface: id,
            declared: interfaces.len(),
        })
}

/// Interface Description Block: link type, snap length and the `if_tsresol` option (9).
fn read_idb(body: &[u8], e: Endian, at: usize) -> Result<Interface, PcapError> {
    if body.len() < 8 {
        return Err(PcapError::BadBlock {
            offset: at,
            reason: "Interface Description Block shorter than its fixed fields",
        });
    }
    let mut iface = Interface {
        link_type: LinkType(u32::from(e.u16(body, 0))),
        snaplen: e.u32(body, 4),
        units_per_sec: 1_000_000,
    };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let code = e.u16(opts, 0);
        let len = usize::from(e.u16(opts, 2));
        let Some(value) = opts.get(4..4 + len) else {
            break;
        };
        match code {
            0 => break,
            9 if len == 1 => {
                let v = value[0];
                let exp = u32::from(v & 0x7f);
                // MSB clear: 10^-v seconds; set: 2^-v seconds. Beyond 10^-19 / 2^-63 the
                // unit does not fit a u64 and no real capture uses it.
                iface.units_per_sec = if v & 0x80 == 0 {
                    10u64.checked_pow(exp)
                } else {
                    1u64.checked_shl(exp)
                }
                .unwrap_or(1_000_000);
            }
            _ => {}
        }
        let padded = (4 + len + 3) & !3;
        opts = opts.get(padded..).unwrap_or(&[]);
    }
    Ok(iface)
}

fn to_ns(ts: u64, units_per_sec: u64) -> Option<u64> {
    if units_per_sec == 0 {
        return None;
    }
    let ns = u128::from(ts) * 1_000_000_000 / u128::from(units_per_sec);
    u64::try_from(ns).ok()
}

/// Writes a classic pcap file: little-endian, nanosecond timestamps (magic `a1b23c4d`).
///
/// ```no_run
/// # use sichss::pcap::{LinkType, PcapWriter};
/// let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET)?;
/// w.write_packet(1_700_000_000_000_000_000, &[0u8; 60])?;
/// let file: Vec<u8> = w.into_inner();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

/// Snap length written in the file header (the usual tcpdump default).
const WRITER_SNAPLEN: u32 = 262_144;

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-octet file header for packets of `link_type`.
    ///
    /// # Errors
    /// Those of `out`.
    pub fn new(mut out: W, link_type: LinkType) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&PCAP_MAGIC_NS.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&WRITER_SNAPLEN.to_le_bytes());
        h.extend_from_slice(&link_type.0.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self { out })
    }

    /// Writes one packet, whole (captured length = original length), stamped
    /// `timestamp_ns` nanoseconds after the Unix epoch.
    ///
    /// # Errors
    /// Those of `out`; [`io::ErrorKind::InvalidInput`] for a packet above 4 GiB.
    pub fn write_packet(&mut self, timestamp_ns: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet above 4 GiB"))?;
        let secs = u32::try_from(timestamp_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let nanos = (timestamp_ns % 1_000_000_000) as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}
