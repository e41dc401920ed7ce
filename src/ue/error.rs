//! Errors of the test UE: bad arguments, SIP that cannot be parsed, a network that does not
//! answer or refuses, and challenges the UE cannot answer (RFC 3261, RFC 2617, RFC 3310).
//!
//! No variant carries K, OPc, OP, a password, RES or CK/IK.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::auth::AuthError;
use crate::identity::IdentityError;

/// Why a SIP message could not be parsed (RFC 3261 §7, §20).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// No blank line ends the header section.
    #[error("SIP message has no empty line after its headers (CRLF CRLF): truncated or not SIP")]
    NoHeaderEnd,
    /// The header section is not UTF-8.
    #[error("SIP header section is not UTF-8")]
    NotUtf8,
    /// The first line is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE REASON`.
    #[error(
        "SIP start line {line:?} is neither a request line nor a status line (RFC 3261 §7.1, §7.2)"
    )]
    StartLine {
        /// The line as received.
        line: String,
    },
    /// A header line has no colon.
    #[error("SIP header line {line:?} has no ':' (RFC 3261 §7.3)")]
    HeaderLine {
        /// The line as received.
        line: String,
    },
    /// Content-Length is not a number.
    #[error("Content-Length {value:?} is not a decimal number")]
    ContentLength {
        /// The header value.
        value: String,
    },
    /// The body is shorter than Content-Length says.
    #[error("body is {got} octets but Content-Length says {declared}: the datagram was truncated")]
    Truncated {
        /// Content-Length.
        declared: usize,
        /// Octets present after the header section.
        got: usize,
    },
    /// An authentication header's parameters could not be parsed (RFC 2617 §3.2.1).
    #[error("authentication header {value:?}: {what}")]
    AuthParams {
        /// The header value.
        value: String,
        /// What is wrong, e.g. "unterminated quoted string".
        what: &'static str,
    },
}

/// Why the UE failed. Each message names what failed and what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UeError {
    /// The IMSI, SIC, home network or derived identities are not valid.
    #[error("identity: {0} (check --imsi, --sic, --mnc-len/--home-domain, --msisdn/--impu)")]
    Identity(#[from] IdentityError),
    /// A key given on the command line is malformed (its value is never shown).
    #[error("credentials: {0}")]
    Key(AuthError),
    /// Neither a network address to register with nor the identities were complete.
    #[error("{what}")]
    Usage {
        /// What is missing or inconsistent, and how to fix it.
        what: String,
    },
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP {addr}: {source}; choose a free --local address/port")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Sending or receiving on the UDP socket failed.
    #[error("UDP I/O towards {peer}: {source}")]
    Io {
        /// The P-CSCF / I-CSCF address.
        peer: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No final response arrived in time (RFC 3261 §17.1.2.2 Timer F).
    #[error("no final response to {method} from {peer} after {seconds} s: is the I-CSCF running (harness/kamailio/run start) and --pcscf right?")]
    Timeout {
        /// The request method.
        method: String,
        /// Where it was sent.
        peer: SocketAddr,
        /// How long the UE waited.
        seconds: u64,
    },
    /// The network answered with a final non-2xx status other than a challenge.
    #[error("{method} for {impu} rejected: {status} {reason}")]
    Rejected {
        /// The request method.
        method: String,
        /// The public identity it was for.
        impu: String,
        /// The SIP status code, e.g. 403.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// The network kept challenging: the last response was computed but refused again.
    #[error("{method} was challenged {count} times in a row: the credentials (--k/--opc or --password) probably do not match the HSS")]
    TooManyChallenges {
        /// The request method.
        method: String,
        /// How many 401/407 were received.
        count: u32,
    },
    /// The 401 carries no usable Digest challenge.
    #[error("unusable challenge: {what}")]
    BadChallenge {
        /// What is wrong with it.
        what: String,
    },
    /// The challenge asks for an algorithm this UE does not implement.
    #[error("challenge algorithm {algorithm:?} is not supported (only AKAv1-MD5 and MD5): set the S-CSCF's REG_AUTH_DEFAULT_ALG to AKAv1-MD5 or MD5")]
    UnsupportedAlgorithm {
        /// The `algorithm` parameter.
        algorithm: String,
    },
    /// The challenge offers only a qop this UE does not implement.
    #[error("challenge qop {qop:?} is not supported (only \"auth\" or none): set the S-CSCF's registration_qop to \"auth\"")]
    UnsupportedQop {
        /// The `qop` parameter.
        qop: String,
    },
    /// The challenge needs credentials that were not given.
    #[error("challenged with {algorithm} but {missing} given")]
    MissingCredentials {
        /// The `algorithm` of the challenge.
        algorithm: String,
        /// Which options are missing, e.g. "no --k/--opc".
        missing: &'static str,
    },
    /// AUTN did not verify: the network does not hold this K (TS 33.102 §6.3.3).
    #[error("the network failed authentication: {0}")]
    NetworkAuth(AuthError),
    /// The USIM's SQN file could not be read or written.
    #[error("SQN file {path}: {what}")]
    SqnFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

impl UeError {
    /// The SIP status code when the network refused the request.
    pub fn status(&self) -> Option<u16> {
        match self {
            UeError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}
