//! The Diameter codec: bytes to typed messages and back (RFC 6733 §3, §4, §7).
//!
//! - [`framer`]: where a message ends in a byte stream ("need more", "complete", "invalid").
//! - [`header`], [`avp`], [`message`]: nom parsers and the encoder. Decoding never panics;
//!   its octet and text values share the message's buffer; encoding builds from typed
//!   values and cannot fail.
//!   Decoding then encoding a message gives back the same bytes.
//! - [`validate`]: dictionary-driven checks (unknown M-bit AVPs, grammars).
//! - [`error`]: every malformation with its Result-Code and Failed-AVP.
//! - [`codes`], [`types`]: AVP keys and open newtypes for protocol numbers.
//!
//! Must not depend on: tokio, sled, the store, the Cx layer (pure bytes in, values out).

pub mod avp;
pub mod codes;
pub mod error;
pub mod framer;
pub mod header;
pub mod message;
pub mod types;
pub mod validate;

pub use avp::{Address, Avp, AvpKey, Value};
pub use error::{DecodeError, ProtocolError};
pub use framer::{check_frame, Frame, FrameError};
pub use header::Header;
pub use message::{decode_frame, decode_message, Message};
pub use types::{ApplicationId, CommandCode, ExperimentalResultCode, ResultCode, VENDOR_3GPP};
pub use validate::validate;

#[cfg(test)]
mod tests;
