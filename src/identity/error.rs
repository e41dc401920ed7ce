//! Why an identity was refused.

/// Why an IMSI, SIC, home network, private identity (IMPI) or public identity (IMPU) was
/// refused.
///
/// Every message names the part that is wrong, quotes it, and states the form that was
/// expected, so that it can be shown to an operator as is (for example in the admin CLI).
/// The Cx layer maps all of these to `DIAMETER_ERROR_USER_UNKNOWN` (5001) or a
/// provisioning error; the variants only exist to say *why*.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// An IMSI that is not 6 to 15 decimal digits (TS 23.003 §2.2).
    #[error("IMSI {imsi:?} must be 6 to 15 decimal digits")]
    Imsi {
        /// The text given as the IMSI.
        imsi: String,
    },
    /// A Service Identification Code that is not exactly 3 decimal digits.
    #[error("SIC {sic:?} must be exactly 3 digits (e.g. 001)")]
    Sic {
        /// The text given as the SIC.
        sic: String,
    },
    /// A [`HomeNetwork::MncLen`](super::HomeNetwork::MncLen) other than 2 or 3.
    #[error("MNC length {len} must be 2 or 3 (TS 23.003 §2.2)")]
    MncLength {
        /// The length given.
        len: u8,
    },

    /// A private identity without exactly one `@` (RFC 7542 NAI `user@domain`).
    #[error("private identity {impi:?} must contain exactly one '@' (user@domain), found {count}")]
    AtSign {
        /// The private identity as given.
        impi: String,
        /// How many `@` it holds.
        count: usize,
    },
    /// A private identity with nothing before the `@`.
    #[error("private identity {impi:?} has an empty user part (expected user@domain)")]
    EmptyUser {
        /// The private identity as given.
        impi: String,
    },
    /// A private identity with nothing after the `@`.
    #[error("private identity {impi:?} has an empty domain (expected user@domain)")]
    EmptyDomain {
        /// The private identity as given.
        impi: String,
    },
    /// A character that no identity may hold (whitespace or a control character).
    #[error(
        "identity {identity:?} contains {ch:?}; whitespace and control characters are not allowed"
    )]
    Character {
        /// The identity as given.
        identity: String,
        /// The first offending character.
        ch: char,
    },
    /// A domain label that is not a valid hostname label (RFC 1035 §2.3.1, RFC 1123 §2.1).
    #[error("domain {domain:?}: label {label:?} must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen")]
    Label {
        /// The domain as given.
        domain: String,
        /// The offending label (empty for `a..b` or a trailing dot).
        label: String,
    },
    /// A `sic…` label in an IMS domain that is not `sic` followed by 3 digits.
    #[error(
        "domain {domain:?}: SIC label {label:?} must be sic followed by 3 digits (e.g. sic001)"
    )]
    SicLabel {
        /// The domain as given.
        domain: String,
        /// The offending label.
        label: String,
    },
    /// More than one SIC label, or a SIC label in a home domain that must have none.
    #[error("domain {domain:?}: unexpected SIC label {label:?}; a home domain carries no SIC and an IMPI at most one (ims.sicNNN.<home> or sicNNN.<home>)")]
    ExtraSicLabel {
        /// The domain as given.
        domain: String,
        /// The extra SIC label.
        label: String,
    },
    /// The MNC label of a TS 23.003 home domain that is not `mnc` followed by 3 digits.
    #[error(
        "domain {domain:?}: MNC label {label:?} must be mnc followed by 3 digits (e.g. mnc001)"
    )]
    MncLabel {
        /// The domain as given.
        domain: String,
        /// The offending label.
        label: String,
    },
    /// The MCC label of a TS 23.003 home domain that is not `mcc` followed by 3 digits.
    #[error(
        "domain {domain:?}: MCC label {label:?} must be mcc followed by 3 digits (e.g. mcc460)"
    )]
    MccLabel {
        /// The domain as given.
        domain: String,
        /// The offending label.
        label: String,
    },
    /// A `…mcc<MCC>.3gppnetwork.org` IMS domain whose labels are not in the TS 23.003 §13.2
    /// order (with the SIC label, if any, right after `ims`).
    #[error("domain {domain:?} must have the form ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org")]
    ImsDomain {
        /// The domain as given.
        domain: String,
    },
    /// The MCC of the domain is not the first 3 digits of the IMSI (TS 23.003 §13.3).
    #[error("MCC {domain_mcc} of domain {domain:?} does not match MCC {imsi_mcc} of IMSI {imsi:?} (expected mcc{imsi_mcc})")]
    MccMismatch {
        /// The IMSI (user part).
        imsi: String,
        /// The IMSI's first 3 digits.
        imsi_mcc: String,
        /// The domain as given.
        domain: String,
        /// The 3 digits of the domain's MCC label.
        domain_mcc: String,
    },
    /// The MNC of the domain is neither the IMSI's digits 4–5 (zero-padded) nor 4–6
    /// (TS 23.003 §13.3).
    #[error("MNC {domain_mnc} of domain {domain:?} does not match IMSI {imsi:?} (expected mnc{two_digit} for a 2-digit MNC or mnc{three_digit} for a 3-digit MNC)")]
    MncMismatch {
        /// The IMSI (user part).
        imsi: String,
        /// The domain as given.
        domain: String,
        /// The 3 digits of the domain's MNC label.
        domain_mnc: String,
        /// The label digits the IMSI gives with a 2-digit MNC (`0` + digits 4–5).
        two_digit: String,
        /// The label digits the IMSI gives with a 3-digit MNC (digits 4–6).
        three_digit: String,
    },

    /// A public identity with no `sip:`, `sips:` or `tel:` scheme.
    #[error("public identity {impu:?} must start with sip:, sips: or tel:")]
    Scheme {
        /// The public identity as given.
        impu: String,
    },
    /// A SIP URI with nothing where the host should be.
    #[error("SIP URI {impu:?} has an empty host (expected sip:user@host or sip:host)")]
    EmptyHost {
        /// The public identity as given.
        impu: String,
    },
    /// A SIP URI with an `@` but nothing before it.
    #[error("SIP URI {impu:?} has an empty user part before '@' (expected sip:user@host)")]
    EmptySipUser {
        /// The public identity as given.
        impu: String,
    },
    /// A SIP URI whose host is not a domain name, IPv4 address or `[IPv6]` reference
    /// (RFC 3261 §25.1 `host`).
    #[error("SIP URI {impu:?}: host {host:?} must be a domain name, an IPv4 address or an [IPv6] address")]
    Host {
        /// The public identity as given.
        impu: String,
        /// The offending host.
        host: String,
    },
    /// A SIP URI whose port is not 1 to 65535.
    #[error("SIP URI {impu:?}: port {port:?} must be a number from 1 to 65535")]
    Port {
        /// The public identity as given.
        impu: String,
        /// The offending port text.
        port: String,
    },
    /// A SIP URI with `user:password@` (RFC 3261 §19.1.1 deprecates it; no IMPU has one).
    #[error("SIP URI {impu:?} must not carry a password (expected sip:user@host)")]
    Password {
        /// The public identity as given.
        impu: String,
    },
    /// A global tel URI whose number is not `+` followed by digits (RFC 3966 §5.1.4).
    #[error("tel URI {impu:?} must be + followed by digits (e.g. tel:+8613800138000)")]
    GlobalNumber {
        /// The public identity as given.
        impu: String,
    },
    /// A local tel URI whose number is not digits, `*` or `#` (RFC 3966 §5.1.5).
    #[error("tel URI {impu:?} must be + followed by digits, or a local number of digits, * or # with a phone-context")]
    LocalNumber {
        /// The public identity as given.
        impu: String,
    },
    /// A local tel URI with no (or an empty) `phone-context` parameter (RFC 3966 §5.1.5).
    #[error("tel URI {impu:?} has an empty phone-context (give one, e.g. tel:1234;phone-context=+86, or none)")]
    PhoneContext {
        /// The public identity as given.
        impu: String,
    },
}
