//! The 20-octet Diameter header (RFC 6733 §3).
//!
//! ```text
//! | Version=1 |            Message Length (incl. header and padding)      |
//! | R P E T r r r r |                 Command Code                        |
//! |                         Application-ID                                |
//! |                      Hop-by-Hop Identifier                            |
//! |                      End-to-End Identifier                            |
//! ```

use nom::number::complete::{be_u24, be_u32, be_u8};
use nom::IResult;

use super::types::{ApplicationId, CommandCode};

/// Request bit.
pub const FLAG_R: u8 = 0x80;
/// Proxiable bit.
pub const FLAG_P: u8 = 0x40;
/// Error bit (answers carrying a protocol error).
pub const FLAG_E: u8 = 0x20;
/// Potentially retransmitted.
pub const FLAG_T: u8 = 0x10;
/// Reserved header bits.
pub const FLAGS_RESERVED: u8 = 0x0f;
/// Header length in octets.
pub const HEADER_LEN: usize = 20;

/// A Diameter message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Version (1).
    pub version: u8,
    /// Message Length as received (recomputed on encode).
    pub length: u32,
    /// Command flags (R, P, E, T).
    pub flags: u8,
    /// Command code.
    pub command: CommandCode,
    /// Application-Id.
    pub application: ApplicationId,
    /// Hop-by-Hop Identifier.
    pub hop_by_hop: u32,
    /// End-to-End Identifier.
    pub end_to_end: u32,
}

impl Header {
    /// R bit.
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_R != 0
    }

    /// P bit.
    pub fn is_proxiable(&self) -> bool {
        self.flags & FLAG_P != 0
    }

    /// E bit.
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_E != 0
    }

    /// T bit.
    pub fn is_retransmit(&self) -> bool {
        self.flags & FLAG_T != 0
    }
}

/// Parses the 20-octet header (no checks beyond the field layout).
pub fn parse_header(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, version) = be_u8(i)?;
    let (i, length) = be_u24(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, command) = be_u24(i)?;
    let (i, application) = be_u32(i)?;
    let (i, hop_by_hop) = be_u32(i)?;
    let (i, end_to_end) = be_u32(i)?;
    Ok((
        i,
        Header {
            version,
            length,
            flags,
            command: CommandCode(command),
            application: ApplicationId(application),
            hop_by_hop,
            end_to_end,
        },
    ))
}
