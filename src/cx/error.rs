//! Cx procedure errors, each mapped to its answer: a 3GPP Experimental-Result-Code
//! (TS 29.229 §6.2) or a base Result-Code with Failed-AVP (RFC 6733 §7.1, TS 29.228 §6).

use crate::codec::{Avp, ExperimentalResultCode as Exp, ProtocolError, ResultCode};
use crate::store::StoreError;

/// Why a Cx request was not served. The Display text is what the log line says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CxError {
    /// The IMPI or IMPU is unknown (Exp 5001).
    #[error("user unknown: {identity} ({why})")]
    UserUnknown {
        /// The identity asked for.
        identity: String,
        /// Why it is unknown.
        why: String,
    },
    /// The IMPI's subscriber exists but has not subscribed to this SIC (Exp 5001).
    #[error("SIC {sic} of {impi} is not subscribed by IMSI {imsi}")]
    UnsubscribedSic {
        /// The IMPI.
        impi: String,
        /// Its SIC.
        sic: String,
        /// The subscriber found by stripping the SIC.
        imsi: String,
    },
    /// The IMPU does not belong to the IMPI's service (Exp 5002).
    #[error("{impu} does not belong to {impi}")]
    IdentitiesDontMatch {
        /// The IMPI.
        impi: String,
        /// The IMPU.
        impu: String,
    },
    /// Not registered (Exp 5003).
    #[error("{identity} is not registered")]
    IdentityNotRegistered {
        /// The identity.
        identity: String,
    },
    /// Roaming to the visited network is not allowed (Exp 5004).
    #[error("roaming to {visited} is not allowed")]
    RoamingNotAllowed {
        /// Visited-Network-Identifier.
        visited: String,
    },
    /// Another S-CSCF is assigned (Exp 5005, with its Server-Name).
    #[error("already registered at {server_name}")]
    IdentityAlreadyRegistered {
        /// The assigned S-CSCF.
        server_name: String,
    },
    /// The scheme is not allowed for this IMPI (Exp 5006).
    #[error("authentication scheme {scheme:?} is not supported for this user")]
    AuthSchemeNotSupported {
        /// The scheme asked for.
        scheme: String,
    },
    /// The Server-Assignment-Type does not fit the state (Exp 5007).
    #[error("assignment type {sat} does not fit: {why}")]
    InAssignmentType {
        /// Server-Assignment-Type.
        sat: u32,
        /// Why.
        why: &'static str,
    },
    /// Barred or not allowed to register (base 5003 DIAMETER_AUTHORIZATION_REJECTED).
    #[error("authorization rejected: {why}")]
    AuthorizationRejected {
        /// Why.
        why: &'static str,
    },
    /// A malformed or missing AVP (5004, 5005, 5009 …) with Failed-AVP.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The request cannot be served (base 5012 DIAMETER_UNABLE_TO_COMPLY).
    #[error("unable to comply: {0}")]
    UnableToComply(String),
    /// The store failed (base 5012).
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The result an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A base Result-Code.
    Base(ResultCode),
    /// A 3GPP Experimental-Result-Code.
    Experimental(Exp),
}

impl Outcome {
    /// Numeric code, for logs and metrics.
    pub fn code(self) -> u32 {
        match self {
            Outcome::Base(c) => c.0,
            Outcome::Experimental(c) => c.0,
        }
    }
}

impl CxError {
    /// The answer's result.
    pub fn outcome(&self) -> Outcome {
        use Outcome::{Base, Experimental as E};
        match self {
            Self::UserUnknown { .. } | Self::UnsubscribedSic { .. } => {
                E(Exp::DIAMETER_ERROR_USER_UNKNOWN)
            }
            Self::IdentitiesDontMatch { .. } => E(Exp::DIAMETER_ERROR_IDENTITIES_DONT_MATCH),
            Self::IdentityNotRegistered { .. } => E(Exp::DIAMETER_ERROR_IDENTITY_NOT_REGISTERED),
            Self::RoamingNotAllowed { .. } => E(Exp::DIAMETER_ERROR_ROAMING_NOT_ALLOWED),
            Self::IdentityAlreadyRegistered { .. } => {
                E(Exp::DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED)
            }
            Self::AuthSchemeNotSupported { .. } => E(Exp::DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED),
            Self::InAssignmentType { .. } => E(Exp::DIAMETER_ERROR_IN_ASSIGNMENT_TYPE),
            Self::AuthorizationRejected { .. } => Base(ResultCode::DIAMETER_AUTHORIZATION_REJECTED),
            Self::Protocol(p) => Base(p.result_code()),
            Self::UnableToComply(_) | Self::Store(_) => Base(ResultCode::DIAMETER_UNABLE_TO_COMPLY),
        }
    }

    /// Failed-AVP contents, for protocol errors.
    pub fn failed_avp(&self) -> Option<&Avp> {
        match self {
            Self::Protocol(p) => p.failed_avp(),
            _ => None,
        }
    }
}
