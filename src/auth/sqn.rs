//! Sequence numbers for AKA (TS 33.102 §6.3.2 and Annex C.1–C.3, profile with IND).
//!
//! SQN is 48 bits: SEQ (43 bits) ‖ IND (the low [`IND_BITS`] = 5 bits), so the USIM keeps
//! 32 array slots. The USIM accepts a SQN when its SEQ is greater than the SEQ stored in the
//! slot named by IND, and not more than Δ ahead (Annex C.2.2).
//!
//! This HSS keeps one counter per USIM and steps SEQ by one for every vector, leaving IND
//! where it is ([`next_sqn`]); every vector is thus fresh against every slot it could land in.
//! After a resynchronisation it jumps to SEQ_MS + 1 at IND 0 ([`after_resync`]).

/// Width of IND in bits (TS 33.102 Annex C.1.2 suggests 5).
pub const IND_BITS: u32 = 5;

/// Largest 48-bit SQN.
pub const SQN_MAX: u64 = (1 << 48) - 1;

/// Mask of the IND bits.
const IND_MASK: u64 = (1 << IND_BITS) - 1;

/// The SQN of the next vector after `current`: SEQ + 1, IND unchanged (i.e. `current + 32`),
/// wrapping within 48 bits (TS 33.102 Annex C.1.1–C.1.2).
///
/// Keeping IND fixed (rather than cycling it, which would add 33) is the simplest compliant
/// choice: the next SEQ is above every SEQ this HSS has issued, so it is fresh whatever slot
/// the USIM compares it with. Bits above 48 of `current` are ignored. The wrap is after
/// 2^43 vectors and is not reachable in practice; a wrapped SQN would be refused by the USIM
/// and answered with a resynchronisation.
pub fn next_sqn(current: u64) -> u64 {
    ((current & SQN_MAX) + (1 << IND_BITS)) & SQN_MAX
}

/// The SQN to use after a verified resynchronisation reporting `sqn_ms`: SEQ_MS + 1 at IND 0,
/// i.e. `((sqn_ms >> 5) + 1) << 5` (TS 33.102 §6.3.5, Annex C.3).
///
/// SEQ_MS + 1 is the smallest SEQ the USIM accepts whatever its slots hold, which is the same
/// advice as open5gs' "SQN_MS + 32 + 1" minus the IND cycling. The result is meant as the next
/// SQN_HE: use it for the next vector (or store it and step it with [`next_sqn`]; both are
/// ahead of SQN_MS). Bits above 48 are ignored; SEQ_MS at its maximum wraps to 0.
pub fn after_resync(sqn_ms: u64) -> u64 {
    ((((sqn_ms & SQN_MAX) >> IND_BITS) + 1) << IND_BITS) & SQN_MAX
}

/// IND of a SQN (its low [`IND_BITS`] bits).
pub fn ind(sqn: u64) -> u64 {
    sqn & IND_MASK
}

/// SEQ of a SQN (SQN without IND).
pub fn seq(sqn: u64) -> u64 {
    (sqn & SQN_MAX) >> IND_BITS
}

/// The 6 big-endian octets of a SQN, as used in AUTN, AUTS and Milenage f1/f1*.
/// Bits above 48 are ignored (a debug build asserts there are none).
pub fn sqn_to_bytes(sqn: u64) -> [u8; 6] {
    debug_assert!(sqn <= SQN_MAX, "SQN {sqn:#x} exceeds 48 bits");
    let b = (sqn & SQN_MAX).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A SQN from its 6 big-endian octets.
pub fn sqn_from_bytes(bytes: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..8].copy_from_slice(&bytes);
    u64::from_be_bytes(b)
}
