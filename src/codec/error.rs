//! Decode and validation errors, each mapped to its RFC 6733 §7.1 Result-Code and, where
//! the RFC asks for one, the Failed-AVP contents (§7.5).

use super::avp::Avp;
use super::header::Header;
use super::types::ResultCode;

/// A malformation of a received message. Structured: it names the AVP by code and vendor
/// and keeps the AVP to send back in Failed-AVP.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Fewer than 20 octets, or a Message Length that is not a multiple of 4, below 20,
    /// or different from the octets received (5015).
    #[error("invalid message length {declared} (received {actual} octets; must be ≥ 20, a multiple of 4, and match)")]
    InvalidMessageLength {
        /// Length in the header (0 if the header was incomplete).
        declared: u32,
        /// Octets available.
        actual: usize,
    },
    /// Version other than 1 (5011).
    #[error("unsupported Diameter version {version} (expected 1)")]
    UnsupportedVersion {
        /// Version octet.
        version: u8,
    },
    /// Header flags that contradict each other or the command, e.g. E set in a request (3008).
    #[error("invalid header bits 0x{flags:02x}: {reason}")]
    InvalidHeaderBits {
        /// Flags octet.
        flags: u8,
        /// What is inconsistent.
        reason: &'static str,
    },
    /// A reserved header bit is set (5013).
    #[error("reserved header bits set in flags 0x{flags:02x}")]
    ReservedHeaderBits {
        /// Flags octet.
        flags: u8,
    },
    /// Reserved AVP flag bits set, or V set with Vendor-Id 0 (3009).
    #[error("AVP {code} (vendor {vendor}) has invalid flag bits 0x{flags:02x}")]
    InvalidAvpBits {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Flags octet.
        flags: u8,
        /// Failed-AVP.
        failed: Avp,
    },
    /// AVP Length below its header, past the enclosing data, or wrong for its type (5014).
    #[error("AVP {code} (vendor {vendor}) has invalid length {declared}")]
    InvalidAvpLength {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Declared AVP Length.
        declared: u32,
        /// Failed-AVP: the header with a zero-filled minimal value.
        failed: Avp,
    },
    /// The value is not valid for the AVP's type or enumeration (5004).
    #[error("AVP {code} (vendor {vendor}) has an invalid value")]
    InvalidAvpValue {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Failed-AVP: the whole AVP.
        failed: Avp,
    },
    /// Grouped AVPs nested deeper than the codec accepts (5004).
    #[error("AVP {code} (vendor {vendor}) is nested deeper than {max} Grouped levels", max = super::avp::MAX_GROUP_DEPTH)]
    NestingTooDeep {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Failed-AVP.
        failed: Avp,
    },
    /// An AVP with the M bit set that the dictionary does not know (5001).
    #[error("AVP {code} (vendor {vendor}) is not supported and has the M bit set")]
    AvpUnsupported {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Failed-AVP: the whole AVP.
        failed: Avp,
    },
    /// A required AVP is absent (5005).
    #[error("missing AVP {name} ({code}, vendor {vendor})")]
    MissingAvp {
        /// AVP name.
        name: String,
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Failed-AVP: the AVP with a zero-filled minimal value.
        failed: Avp,
    },
    /// An AVP occurs more often than the grammar allows (5009).
    #[error("AVP {name} ({code}, vendor {vendor}) occurs more than {max} times")]
    AvpOccursTooManyTimes {
        /// AVP name.
        name: String,
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Allowed maximum.
        max: u32,
        /// Failed-AVP: the first occurrence past the maximum.
        failed: Avp,
    },
    /// An AVP the command's grammar does not allow (5008).
    #[error("AVP {code} (vendor {vendor}) is not allowed in this message")]
    AvpNotAllowed {
        /// AVP code.
        code: u32,
        /// Vendor-Id.
        vendor: u32,
        /// Failed-AVP.
        failed: Avp,
    },
}

impl ProtocolError {
    /// The Result-Code that answers this error (RFC 6733 §7.1).
    pub fn result_code(&self) -> ResultCode {
        match self {
            Self::InvalidMessageLength { .. } => ResultCode::DIAMETER_INVALID_MESSAGE_LENGTH,
            Self::UnsupportedVersion { .. } => ResultCode::DIAMETER_UNSUPPORTED_VERSION,
            Self::InvalidHeaderBits { .. } => ResultCode::DIAMETER_INVALID_HDR_BITS,
            Self::ReservedHeaderBits { .. } => ResultCode::DIAMETER_INVALID_BIT_IN_HEADER,
            Self::InvalidAvpBits { .. } => ResultCode::DIAMETER_INVALID_AVP_BITS,
            Self::InvalidAvpLength { .. } => ResultCode::DIAMETER_INVALID_AVP_LENGTH,
            Self::InvalidAvpValue { .. } | Self::NestingTooDeep { .. } => {
                ResultCode::DIAMETER_INVALID_AVP_VALUE
            }
            Self::AvpUnsupported { .. } => ResultCode::DIAMETER_AVP_UNSUPPORTED,
            Self::MissingAvp { .. } => ResultCode::DIAMETER_MISSING_AVP,
            Self::AvpOccursTooManyTimes { .. } => ResultCode::DIAMETER_AVP_OCCURS_TOO_MANY_TIMES,
            Self::AvpNotAllowed { .. } => ResultCode::DIAMETER_AVP_NOT_ALLOWED,
        }
    }

    /// The AVP to carry in Failed-AVP, where RFC 6733 §7.5 asks for one.
    pub fn failed_avp(&self) -> Option<&Avp> {
        match self {
            Self::InvalidAvpBits { failed, .. }
            | Self::InvalidAvpLength { failed, .. }
            | Self::InvalidAvpValue { failed, .. }
            | Self::NestingTooDeep { failed, .. }
            | Self::AvpUnsupported { failed, .. }
            | Self::MissingAvp { failed, .. }
            | Self::AvpOccursTooManyTimes { failed, .. }
            | Self::AvpNotAllowed { failed, .. } => Some(failed),
            _ => None,
        }
    }

    /// Whether the connection must be closed after answering: the message boundary can no
    /// longer be trusted (RFC 6733 §7.1.5 for 5015; §3 for a wrong version).
    pub fn is_fatal_for_connection(&self) -> bool {
        matches!(
            self,
            Self::InvalidMessageLength { .. } | Self::UnsupportedVersion { .. }
        )
    }
}

/// A message that could not be decoded, with its header where the header itself was
/// readable, so that an error answer can still be sent (hop-by-hop and end-to-end ids).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct DecodeError {
    /// The header, if the first 20 octets were present.
    pub header: Option<Header>,
    /// What was wrong (boxed: with the failed AVP it holds, it is several times the size
    /// of a decoded message, and every `Result` of the decoder would carry that size).
    pub error: Box<ProtocolError>,
}
