//! AVPs: the header (RFC 6733 §4.1), typed values (§4.2–§4.4), parsing and encoding.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           AVP Code                            |
//! |V M P r r r r r|                  AVP Length                   |  (excludes padding)
//! |                        Vendor-ID (opt)                        |
//! |    Data ...  (then zero padding to a 4-octet boundary)
//! ```
//!
//! Parsing is bounded by the enclosing length at every level (a child never reads past its
//! parent) and never panics. Octet and text values share the message's buffer ([`Bytes`],
//! [`ByteString`]) instead of copying it: one reference count per value, not an
//! allocation each.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use bytestring::ByteString;
use nom::number::complete::{be_u24, be_u32, be_u8};
use nom::IResult;

use super::error::ProtocolError;
use crate::dict::{AvpType, Dictionary};

/// Vendor bit (RFC 6733 §4.1).
pub const AVP_FLAG_V: u8 = 0x80;
/// Mandatory bit.
pub const AVP_FLAG_M: u8 = 0x40;
/// Protected bit (reserved for end-to-end security; sent as 0).
pub const AVP_FLAG_P: u8 = 0x20;
/// Reserved bits; a set one is answered with 3009.
pub const AVP_FLAGS_RESERVED: u8 = 0x1f;

/// Deepest nesting of Grouped AVPs accepted (Cx needs 3: SIP-Auth-Data-Item →
/// SIP-Digest-Authenticate → Digest-*); deeper input is answered with 5004.
pub const MAX_GROUP_DEPTH: usize = 16;

/// Identifies an AVP for building and lookup: code, vendor (0 = IETF) and whether this
/// implementation sends it with the M bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvpKey {
    /// AVP code.
    pub code: u32,
    /// Vendor-Id; 0 means no Vendor-Id field (V bit clear).
    pub vendor: u32,
    /// Send with the M bit set.
    pub mandatory: bool,
}

impl AvpKey {
    /// An IETF (vendor 0) AVP.
    pub const fn base(code: u32, mandatory: bool) -> Self {
        Self {
            code,
            vendor: 0,
            mandatory,
        }
    }

    /// A 3GPP (vendor 10415) AVP.
    pub const fn tgpp(code: u32, mandatory: bool) -> Self {
        Self {
            code,
            vendor: super::types::VENDOR_3GPP,
            mandatory,
        }
    }
}

/// An Address value (RFC 6733 §4.3.1): an IANA address family and the address octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// IANA address family (1 IPv4, 2 IPv6).
    pub family: u16,
    /// The address octets.
    pub octets: Vec<u8>,
}

impl Address {
    /// The IP address, for families 1 and 2.
    pub fn ip(&self) -> Option<IpAddr> {
        match (self.family, self.octets.len()) {
            (1, 4) => {
                let o: [u8; 4] = self.octets.as_slice().try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(o)))
            }
            (2, 16) => {
                let o: [u8; 16] = self.octets.as_slice().try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => None,
        }
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Address {
                family: 1,
                octets: a.octets().to_vec(),
            },
            IpAddr::V6(a) => Address {
                family: 2,
                octets: a.octets().to_vec(),
            },
        }
    }
}

/// A decoded AVP value, typed by the dictionary (RFC 6733 §4.2–§4.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// OctetString.
    OctetString(Bytes),
    /// UTF8String.
    Utf8String(ByteString),
    /// DiameterIdentity.
    DiameterIdentity(ByteString),
    /// DiameterURI.
    DiameterUri(ByteString),
    /// Integer32.
    Integer32(i32),
    /// Integer64.
    Integer64(i64),
    /// Unsigned32.
    Unsigned32(u32),
    /// Unsigned64.
    Unsigned64(u64),
    /// Enumerated.
    Enumerated(i32),
    /// Address.
    Address(Address),
    /// Time (NTP seconds).
    Time(u32),
    /// Grouped.
    Grouped(Vec<Avp>),
    /// An AVP the dictionary does not know: kept raw, re-encoded as it came.
    Unknown(Bytes),
}

impl Value {
    /// Octets of the encoded value (without header or padding).
    fn data_len(&self) -> usize {
        match self {
            Value::OctetString(b) | Value::Unknown(b) => b.len(),
            Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => s.len(),
            Value::Integer32(_) | Value::Unsigned32(_) | Value::Enumerated(_) | Value::Time(_) => 4,
            Value::Integer64(_) | Value::Unsigned64(_) => 8,
            Value::Address(a) => 2 + a.octets.len(),
            Value::Grouped(g) => g.iter().map(Avp::encoded_len).sum(),
        }
    }
}

/// One AVP.
#[derive(Debug, Clone, PartialEq)]
pub struct Avp {
    /// AVP code.
    pub code: u32,
    /// Header flags as received or built (the V bit always follows `vendor`).
    pub flags: u8,
    /// Vendor-Id, present iff the V bit is set.
    pub vendor: Option<u32>,
    /// The value.
    pub value: Value,
}

impl Avp {
    /// Builds an AVP with the M bit as `key` says.
    pub fn new(key: AvpKey, value: Value) -> Self {
        Avp {
            code: key.code,
            flags: if key.mandatory { AVP_FLAG_M } else { 0 }
                | if key.vendor != 0 { AVP_FLAG_V } else { 0 },
            vendor: (key.vendor != 0).then_some(key.vendor),
            value,
        }
    }

    /// UTF8String AVP (a `String` is taken over, not copied).
    pub fn utf8(key: AvpKey, s: impl Into<String>) -> Self {
        Self::new(key, Value::Utf8String(ByteString::from(s.into())))
    }

    /// DiameterIdentity AVP.
    pub fn identity(key: AvpKey, s: impl Into<String>) -> Self {
        Self::new(key, Value::DiameterIdentity(ByteString::from(s.into())))
    }

    /// A DiameterIdentity AVP whose value is `s` itself: cloning or dropping it copies,
    /// counts and frees nothing.
    pub fn identity_static(key: AvpKey, s: &'static str) -> Self {
        Self::new(key, Value::DiameterIdentity(ByteString::from_static(s)))
    }

    /// DiameterURI AVP.
    pub fn uri(key: AvpKey, s: impl Into<String>) -> Self {
        Self::new(key, Value::DiameterUri(ByteString::from(s.into())))
    }

    /// OctetString AVP (a `Vec<u8>` is taken over, not copied).
    pub fn octets(key: AvpKey, b: impl Into<Vec<u8>>) -> Self {
        Self::new(key, Value::OctetString(Bytes::from(b.into())))
    }

    /// Unsigned32 AVP.
    pub fn u32(key: AvpKey, v: u32) -> Self {
        Self::new(key, Value::Unsigned32(v))
    }

    /// Unsigned64 AVP.
    pub fn u64(key: AvpKey, v: u64) -> Self {
        Self::new(key, Value::Unsigned64(v))
    }

    /// Enumerated AVP.
    pub fn enumerated(key: AvpKey, v: i32) -> Self {
        Self::new(key, Value::Enumerated(v))
    }

    /// Address AVP.
    pub fn address(key: AvpKey, ip: IpAddr) -> Self {
        Self::new(key, Value::Address(ip.into()))
    }

    /// Grouped AVP.
    pub fn grouped(key: AvpKey, members: Vec<Avp>) -> Self {
        Self::new(key, Value::Grouped(members))
    }

    /// Whether the M bit is set.
    pub fn is_mandatory(&self) -> bool {
        self.flags & AVP_FLAG_M != 0
    }

    /// Vendor-Id, 0 when absent.
    pub fn vendor_id(&self) -> u32 {
        self.vendor.unwrap_or(0)
    }

    /// Whether this AVP is the one `key` names (code and vendor).
    pub fn is(&self, key: AvpKey) -> bool {
        self.code == key.code && self.vendor_id() == key.vendor
    }

    /// Header length: 12 with a Vendor-Id, 8 without.
    pub fn header_len(&self) -> usize {
        if self.vendor.is_some() {
            12
        } else {
            8
        }
    }

    /// The AVP Length field: header plus data, without padding.
    pub fn length(&self) -> usize {
        self.header_len() + self.value.data_len()
    }

    /// Octets on the wire, padding included.
    pub fn encoded_len(&self) -> usize {
        (self.length() + 3) & !3
    }

    /// The value as text: UTF8String, DiameterIdentity, DiameterURI, or an OctetString or
    /// unknown value that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => Some(s),
            Value::OctetString(b) | Value::Unknown(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value as octets (OctetString, text types, unknown).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::OctetString(b) | Value::Unknown(b) => Some(b),
            Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => {
                Some(s.as_bytes())
            }
            _ => None,
        }
    }

    /// The value as Unsigned32 (also Enumerated/Integer32 when non-negative).
    pub fn as_u32(&self) -> Option<u32> {
        match self.value {
            Value::Unsigned32(v) | Value::Time(v) => Some(v),
            Value::Enumerated(v) | Value::Integer32(v) => u32::try_from(v).ok(),
            Value::Unknown(ref b) if b.len() == 4 => {
                Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => None,
        }
    }

    /// The value as Enumerated/Integer32.
    pub fn as_i32(&self) -> Option<i32> {
        match self.value {
            Value::Enumerated(v) | Value::Integer32(v) => Some(v),
            Value::Unsigned32(v) => i32::try_from(v).ok(),
            _ => None,
        }
    }

    /// Members of a Grouped AVP (empty for other types).
    pub fn members(&self) -> &[Avp] {
        match &self.value {
            Value::Grouped(g) => g,
            _ => &[],
        }
    }

    /// The first member named by `key`.
    pub fn find(&self, key: AvpKey) -> Option<&Avp> {
        self.members().iter().find(|a| a.is(key))
    }

    /// Appends the encoded AVP (with padding) to `out`. Cannot fail.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // One pass: the length is filled in once the value is written (walking a Grouped
        // value for its length first, at every level, cost more than the writing).
        let start = out.len();
        out.extend_from_slice(&self.code.to_be_bytes());
        let flags = (self.flags & !AVP_FLAG_V) | if self.vendor.is_some() { AVP_FLAG_V } else { 0 };
        out.extend_from_slice(&[flags, 0, 0, 0]);
        if let Some(v) = self.vendor {
            out.extend_from_slice(&v.to_be_bytes());
        }
        match &self.value {
            Value::OctetString(b) | Value::Unknown(b) => out.extend_from_slice(b),
            Value::Utf8String(s) | Value::DiameterIdentity(s) | Value::DiameterUri(s) => {
                out.extend_from_slice(s.as_bytes())
            }
            Value::Integer32(v) | Value::Enumerated(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Unsigned32(v) | Value::Time(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Integer64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Unsigned64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Address(a) => {
                out.extend_from_slice(&a.family.to_be_bytes());
                out.extend_from_slice(&a.octets);
            }
            Value::Grouped(g) => {
                for m in g {
                    m.encode_into(out);
                }
            }
        }
        let len = out.len() - start;
        // AVP Length is 24 bits; values built here stay far below 16 MiB.
        out[start + 5..start + 8].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[0u8; 3][..(4 - len % 4) % 4]);
    }

    /// A copy of this AVP's header with a zero-filled value of the minimal valid length:
    /// the Failed-AVP form for a bad length or a missing AVP (RFC 6733 §7.5).
    pub fn zeroed(code: u32, flags: u8, vendor: Option<u32>, min_len: usize) -> Avp {
        Avp {
            code,
            flags: flags & !AVP_FLAGS_RESERVED,
            vendor,
            value: Value::Unknown(Bytes::from(vec![0; min_len])),
        }
    }
}

/// The fixed part of an AVP header.
struct AvpHeader {
    code: u32,
    flags: u8,
    length: u32,
}

fn parse_avp_header(i: &[u8]) -> IResult<&[u8], AvpHeader> {
    let (i, code) = be_u32(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, length) = be_u24(i)?;
    Ok((
        i,
        AvpHeader {
            code,
            flags,
            length,
        },
    ))
}

/// Parses a sequence of AVPs filling all of `input` (a message body or a Grouped value).
///
/// `lenient` is set inside Failed-AVP (RFC 6733 §7.5): its members are, by design, AVPs
/// that failed, so a value that does not fit its type is kept raw there, and so are
/// reserved flag bits and a V bit with Vendor-Id 0.
///
/// `input` lies within `frame`, whose buffer the values share.
pub(crate) fn parse_avps(
    frame: &Bytes,
    mut input: &[u8],
    dict: &Dictionary,
    depth: usize,
    lenient: bool,
) -> Result<Vec<Avp>, ProtocolError> {
    // About one AVP per 32 octets in Cx messages: one allocation, not a doubling series.
    let mut out = Vec::with_capacity((input.len() / 32 + 1).min(64));
    while !input.is_empty() {
        let (rest, avp) = parse_avp(frame, input, dict, depth, lenient)?;
        out.push(avp);
        input = rest;
    }
    Ok(out)
}

/// Parses one AVP (and its padding) from the front of `input`, which lies within `frame`.
pub(crate) fn parse_avp<'a>(
    frame: &Bytes,
    input: &'a [u8],
    dict: &Dictionary,
    depth: usize,
    lenient: bool,
) -> Result<(&'a [u8], Avp), ProtocolError> {
    let Ok((after_hdr, hdr)) = parse_avp_header(input) else {
        // Fewer than 8 octets left: a truncated AVP header.
        let code = input
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        return Err(ProtocolError::InvalidAvpLength {
            code,
            vendor: 0,
            declared: 0,
            failed: Avp::zeroed(code, 0, None, 0),
        });
    };
    let has_vendor = hdr.flags & AVP_FLAG_V != 0;
    let (after_vendor, vendor) = if has_vendor {
        match be_u32::<_, nom::error::Error<&[u8]>>(after_hdr) {
            Ok((r, v)) => (r, Some(v)),
            Err(_) => {
                return Err(ProtocolError::InvalidAvpLength {
                    code: hdr.code,
                    vendor: 0,
                    declared: hdr.length,
                    failed: Avp::zeroed(hdr.code, hdr.flags & !AVP_FLAG_V, None, 0),
                })
            }
        }
    } else {
        (after_hdr, None)
    };
    let vendor_id = vendor.unwrap_or(0);
    let def = dict.avp(hdr.code, vendor_id);
    let min_len = def.map_or(0, |d| d.ty.min_len());
    let zeroed = || Avp::zeroed(hdr.code, hdr.flags, vendor, min_len);

    // Inside Failed-AVP the member may be the very AVP whose flags were wrong: keep it.
    if !lenient && (hdr.flags & AVP_FLAGS_RESERVED != 0 || vendor == Some(0)) {
        return Err(ProtocolError::InvalidAvpBits {
            code: hdr.code,
            vendor: vendor_id,
            flags: hdr.flags,
            failed: zeroed(),
        });
    }
    let header_len: usize = if has_vendor { 12 } else { 8 };
    let declared = hdr.length as usize;
    if declared < header_len || declared > input.len() {
        return Err(ProtocolError::InvalidAvpLength {
            code: hdr.code,
            vendor: vendor_id,
            declared: hdr.length,
            failed: zeroed(),
        });
    }
    let data_len = declared - header_len;
    let data = &after_vendor[..data_len];
    let after_data = &after_vendor[data_len..];
    let pad = (4 - declared % 4) % 4;
    // Padding is required between AVPs; a missing pad at the very end of the enclosing
    // container is tolerated (some stacks omit it on the last AVP of a Grouped value).
    let rest = if after_data.len() >= pad {
        &after_data[pad..]
    } else {
        &after_data[after_data.len()..]
    };

    let bad_len = || ProtocolError::InvalidAvpLength {
        code: hdr.code,
        vendor: vendor_id,
        declared: hdr.length,
        failed: zeroed(),
    };
    // `data` is a part of `input`, itself a part of `frame`: the slice is in range.
    let shared = || frame.slice_ref(data);
    let whole = || Avp {
        code: hdr.code,
        flags: hdr.flags,
        vendor,
        value: Value::Unknown(shared()),
    };
    let bad_value = || ProtocolError::InvalidAvpValue {
        code: hdr.code,
        vendor: vendor_id,
        failed: whole(),
    };
    let fixed4 = || -> Result<[u8; 4], ProtocolError> { data.try_into().map_err(|_| bad_len()) };
    let fixed8 = || -> Result<[u8; 8], ProtocolError> { data.try_into().map_err(|_| bad_len()) };
    let text = || -> Result<ByteString, ProtocolError> {
        ByteString::try_from(shared()).map_err(|_| bad_value())
    };

    let typed = || -> Result<Value, ProtocolError> {
        Ok(match def.map(|d| d.ty) {
            None => Value::Unknown(shared()),
            Some(AvpType::OctetString) => Value::OctetString(shared()),
            Some(AvpType::Utf8String) => Value::Utf8String(text()?),
            Some(AvpType::DiameterIdentity) => Value::DiameterIdentity(text()?),
            Some(AvpType::DiameterUri) => Value::DiameterUri(text()?),
            Some(AvpType::Integer32) => Value::Integer32(i32::from_be_bytes(fixed4()?)),
            Some(AvpType::Enumerated) => Value::Enumerated(i32::from_be_bytes(fixed4()?)),
            Some(AvpType::Unsigned32) => Value::Unsigned32(u32::from_be_bytes(fixed4()?)),
            Some(AvpType::Time) => Value::Time(u32::from_be_bytes(fixed4()?)),
            Some(AvpType::Integer64) => Value::Integer64(i64::from_be_bytes(fixed8()?)),
            Some(AvpType::Unsigned64) => Value::Unsigned64(u64::from_be_bytes(fixed8()?)),
            Some(AvpType::Address) => {
                if data.len() < 2 {
                    return Err(bad_len());
                }
                let family = u16::from_be_bytes([data[0], data[1]]);
                let octets = &data[2..];
                match (family, octets.len()) {
                    (1, 4) | (2, 16) => {}
                    (1, _) | (2, _) => return Err(bad_len()),
                    _ => {}
                }
                Value::Address(Address {
                    family,
                    octets: octets.to_vec(),
                })
            }
            Some(AvpType::Grouped) => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(ProtocolError::NestingTooDeep {
                        code: hdr.code,
                        vendor: vendor_id,
                        failed: Avp::zeroed(hdr.code, hdr.flags, vendor, 0),
                    });
                }
                Value::Grouped(parse_avps(
                    frame,
                    data,
                    dict,
                    depth + 1,
                    lenient || (hdr.code == 279 && vendor.is_none()),
                )?)
            }
        })
    };
    let value = match typed() {
        Ok(v) => v,
        Err(_) if lenient => Value::Unknown(shared()),
        Err(e) => return Err(e),
    };
    Ok((
        rest,
        Avp {
            code: hdr.code,
            flags: hdr.flags,
            vendor,
            value,
        },
    ))
}
