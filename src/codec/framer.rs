//! Message framing for a byte stream (RFC 6733 §3: the Message Length field delimits
//! messages on TCP). Pure: the network layer feeds its buffer and acts on the answer.

use super::header::{parse_header, Header, HEADER_LEN};

/// Default largest message accepted (1 MiB); the server makes it configurable.
pub const DEFAULT_MAX_MESSAGE: u32 = 1 << 20;

/// Why a stream can no longer be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Version other than 1 (answered with 5011).
    #[error("unsupported Diameter version {0}")]
    UnsupportedVersion(u8),
    /// Length below 20 or not a multiple of 4 (answered with 5015).
    #[error("invalid message length {0} (must be ≥ 20 and a multiple of 4)")]
    BadLength(u32),
    /// Length above the configured maximum (answered with 5015, then the connection closes).
    #[error("message length {len} exceeds the maximum {max}")]
    TooLarge {
        /// Declared length.
        len: u32,
        /// Configured maximum.
        max: u32,
    },
}

/// What the buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet for the header or the whole message.
    Incomplete,
    /// One complete message of this many octets at the front of the buffer.
    Complete(usize),
    /// The stream is broken; the header (for an error answer) and why.
    Invalid(Header, FrameError),
}

/// Looks at the front of `buf` (RFC 6733 §3).
pub fn check_frame(buf: &[u8], max_len: u32) -> Frame {
    if buf.len() < HEADER_LEN {
        return Frame::Incomplete;
    }
    let Ok((_, h)) = parse_header(buf) else {
        return Frame::Incomplete;
    };
    if h.version != 1 {
        return Frame::Invalid(h, FrameError::UnsupportedVersion(h.version));
    }
    if (h.length as usize) < HEADER_LEN || h.length % 4 != 0 {
        return Frame::Invalid(h, FrameError::BadLength(h.length));
    }
    if h.length > max_len {
        return Frame::Invalid(
            h,
            FrameError::TooLarge {
                len: h.length,
                max: max_len,
            },
        );
    }
    if buf.len() < h.length as usize {
        Frame::Incomplete
    } else {
        Frame::Complete(h.length as usize)
    }
}
