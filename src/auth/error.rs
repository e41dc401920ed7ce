//! Errors of the authentication layer: bad key material, bad wire lengths, and MACs that do
//! not verify (TS 33.102 §6.3.3 MAC-A, §6.3.5 MAC-S).

/// Why an authentication step was refused. Each message names the field and says what to fix.
///
/// The variants never carry key material: a bad hex string is reported by its length or the
/// position of the bad character, never by its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A 128-bit key (K, OP, OPc, CK, IK) was given with the wrong number of hex digits.
    #[error("{field} must be 32 hex digits (16 octets), got {got}")]
    KeyHexLength {
        /// Which key, e.g. `"K"` or `"OPc"`.
        field: &'static str,
        /// Number of characters found (after trimming surrounding whitespace).
        got: usize,
    },
    /// A 128-bit key contains a character that is not a hex digit.
    #[error("{field}: character {position} is not a hex digit (use only 0-9, a-f, A-F)")]
    KeyHexDigit {
        /// Which key, e.g. `"K"` or `"OPc"`.
        field: &'static str,
        /// Zero-based character position of the first bad character (the character itself
        /// is not shown, as it may be part of a secret).
        position: usize,
    },
    /// The MAR's SIP-Authorization for a resynchronisation is not RAND(16) ‖ AUTS(14).
    #[error("SIP-Authorization for resynchronisation must be 30 octets (RAND 16 ‖ AUTS 14), got {got}: the S-CSCF must send the RAND of the rejected challenge followed by the UE's AUTS")]
    ResyncAuthorizationLength {
        /// Number of octets received.
        got: usize,
    },
    /// AUTS did not verify: XMAC-S = f1*(K, SQN_MS, RAND, AMF* = 0000) differs from the
    /// MAC-S in AUTS (TS 33.102 §6.3.5). No SQN may be taken from such an AUTS.
    #[error("AUTS: MAC-S does not verify for this RAND; reject the resynchronisation (check that RAND is the one from the rejected challenge and that the subscriber's K and OP/OPc are right)")]
    MacSMismatch,
    /// AUTN did not verify on the UE side: XMAC-A = f1(K, SQN, RAND, AMF) differs from the
    /// MAC-A in AUTN (TS 33.102 §6.3.3).
    #[error("AUTN: MAC-A does not verify for this RAND; the challenge is not from a network holding this K (check K and OP/OPc on both sides)")]
    MacAMismatch,
}
