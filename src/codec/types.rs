//! Open newtypes for Diameter protocol numbers (RFC 6733 §3, §7.1; TS 29.229 §5, §6.2).
//!
//! Each is a `pub struct X(pub u32)` with named constants, so an unknown value is still a
//! value (never a decode failure), and `Debug` prints the name where one is known.

use std::fmt;

macro_rules! open_newtype {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*

            /// The constant's name, if this value has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($c)),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u32> for $name {
            fn from(v: u32) -> Self {
                $name(v)
            }
        }
    };
}

open_newtype! {
    /// Diameter command code (RFC 6733 §3.1; TS 29.229 §6.1).
    CommandCode {
        /// Capabilities-Exchange (RFC 6733 §5.3).
        CAPABILITIES_EXCHANGE = 257,
        /// Device-Watchdog (RFC 6733 §5.5).
        DEVICE_WATCHDOG = 280,
        /// Disconnect-Peer (RFC 6733 §5.4).
        DISCONNECT_PEER = 282,
        /// User-Authorization, UAR/UAA (TS 29.229 §6.1.1).
        USER_AUTHORIZATION = 300,
        /// Server-Assignment, SAR/SAA (TS 29.229 §6.1.3).
        SERVER_ASSIGNMENT = 301,
        /// Location-Info, LIR/LIA (TS 29.229 §6.1.5).
        LOCATION_INFO = 302,
        /// Multimedia-Auth, MAR/MAA (TS 29.229 §6.1.7).
        MULTIMEDIA_AUTH = 303,
        /// Registration-Termination, RTR/RTA (TS 29.229 §6.1.9).
        REGISTRATION_TERMINATION = 304,
        /// Push-Profile, PPR/PPA (TS 29.229 §6.1.11).
        PUSH_PROFILE = 305,
    }
}

open_newtype! {
    /// Diameter Application-Id (RFC 6733 §2.4).
    ApplicationId {
        /// Diameter common messages (CER, DWR, DPR).
        COMMON = 0,
        /// 3GPP Cx/Dx (TS 29.229 §5).
        CX = 16777216,
        /// Relay.
        RELAY = 0xffff_ffff,
    }
}

open_newtype! {
    /// Base Result-Code values (RFC 6733 §7.1).
    ResultCode {
        /// 2001.
        DIAMETER_SUCCESS = 2001,
        /// 2002.
        DIAMETER_LIMITED_SUCCESS = 2002,
        /// 3001, E bit.
        DIAMETER_COMMAND_UNSUPPORTED = 3001,
        /// 3002, E bit.
        DIAMETER_UNABLE_TO_DELIVER = 3002,
        /// 3003, E bit.
        DIAMETER_REALM_NOT_SERVED = 3003,
        /// 3004, E bit.
        DIAMETER_TOO_BUSY = 3004,
        /// 3005, E bit.
        DIAMETER_LOOP_DETECTED = 3005,
        /// 3006, E bit.
        DIAMETER_REDIRECT_INDICATION = 3006,
        /// 3007, E bit.
        DIAMETER_APPLICATION_UNSUPPORTED = 3007,
        /// 3008, E bit.
        DIAMETER_INVALID_HDR_BITS = 3008,
        /// 3009, E bit.
        DIAMETER_INVALID_AVP_BITS = 3009,
        /// 3010, E bit.
        DIAMETER_UNKNOWN_PEER = 3010,
        /// 4001.
        DIAMETER_AUTHENTICATION_REJECTED = 4001,
        /// 5001.
        DIAMETER_AVP_UNSUPPORTED = 5001,
        /// 5002.
        DIAMETER_UNKNOWN_SESSION_ID = 5002,
        /// 5003.
        DIAMETER_AUTHORIZATION_REJECTED = 5003,
        /// 5004.
        DIAMETER_INVALID_AVP_VALUE = 5004,
        /// 5005.
        DIAMETER_MISSING_AVP = 5005,
        /// 5006.
        DIAMETER_RESOURCES_EXCEEDED = 5006,
        /// 5007.
        DIAMETER_CONTRADICTING_AVPS = 5007,
        /// 5008.
        DIAMETER_AVP_NOT_ALLOWED = 5008,
        /// 5009.
        DIAMETER_AVP_OCCURS_TOO_MANY_TIMES = 5009,
        /// 5010.
        DIAMETER_NO_COMMON_APPLICATION = 5010,
        /// 5011.
        DIAMETER_UNSUPPORTED_VERSION = 5011,
        /// 5012.
        DIAMETER_UNABLE_TO_COMPLY = 5012,
        /// 5013.
        DIAMETER_INVALID_BIT_IN_HEADER = 5013,
        /// 5014.
        DIAMETER_INVALID_AVP_LENGTH = 5014,
        /// 5015.
        DIAMETER_INVALID_MESSAGE_LENGTH = 5015,
        /// 5016.
        DIAMETER_INVALID_AVP_BIT_COMBO = 5016,
        /// 5017.
        DIAMETER_NO_COMMON_SECURITY = 5017,
    }
}

impl ResultCode {
    /// Protocol errors (3xxx) are sent in answers with the E bit (RFC 6733 §7.1.3).
    pub fn is_protocol_error(self) -> bool {
        (3000..4000).contains(&self.0)
    }
}

open_newtype! {
    /// 3GPP Experimental-Result-Code values for Cx (TS 29.229 §6.2), vendor 10415.
    ExperimentalResultCode {
        /// 2001 (UAA).
        DIAMETER_FIRST_REGISTRATION = 2001,
        /// 2002 (UAA).
        DIAMETER_SUBSEQUENT_REGISTRATION = 2002,
        /// 2003 (LIA).
        DIAMETER_UNREGISTERED_SERVICE = 2003,
        /// 2004 (SAA).
        DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED = 2004,
        /// 5001.
        DIAMETER_ERROR_USER_UNKNOWN = 5001,
        /// 5002.
        DIAMETER_ERROR_IDENTITIES_DONT_MATCH = 5002,
        /// 5003.
        DIAMETER_ERROR_IDENTITY_NOT_REGISTERED = 5003,
        /// 5004.
        DIAMETER_ERROR_ROAMING_NOT_ALLOWED = 5004,
        /// 5005.
        DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED = 5005,
        /// 5006.
        DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED = 5006,
        /// 5007.
        DIAMETER_ERROR_IN_ASSIGNMENT_TYPE = 5007,
        /// 5008.
        DIAMETER_ERROR_TOO_MUCH_DATA = 5008,
        /// 5009.
        DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA = 5009,
        /// 5011.
        DIAMETER_ERROR_FEATURE_UNSUPPORTED = 5011,
        /// 5012.
        DIAMETER_ERROR_SERVING_NODE_FEATURE_UNSUPPORTED = 5012,
    }
}

/// The 3GPP vendor id (TS 29.229 §6.3).
pub const VENDOR_3GPP: u32 = 10415;
