//! IMS-AKA authentication vectors and AUTS resynchronisation (TS 33.102 §6.3.2, §6.3.3,
//! §6.3.5; TS 33.203; RFC 3310 §3.4), plus the UE's side of both, for a test UE.
//!
//! ```text
//! AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A                         16 octets
//! AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S, MAC-S = f1*(SQN_MS, RAND, AMF* = 0000)   14 octets
//! MAR SIP-Authorization on resync = RAND ‖ AUTS            30 octets
//! ```

use std::fmt;

use super::error::AuthError;
use super::milenage::Milenage;
use super::secret::{ct_eq, Key128};
use super::sqn::{sqn_from_bytes, sqn_to_bytes};

/// The dummy AMF* used in MAC-S, all zeros (TS 33.102 §6.3.3).
const AMF_STAR: [u8; 2] = [0, 0];

/// One IMS-AKA authentication vector (TS 33.102 §6.3.2), as carried in a MAA
/// SIP-Auth-Data-Item: SIP-Authenticate = RAND ‖ AUTN, SIP-Authorization = XRES,
/// Confidentiality-Key = CK, Integrity-Key = IK (TS 29.229 §6.3).
#[derive(Clone)]
pub struct AkaVector {
    /// The random challenge.
    pub rand: [u8; 16],
    /// (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
    pub autn: [u8; 16],
    /// Expected response f2 (64 bits; Milenage gives 8 octets).
    pub xres: [u8; 8],
    /// Cipher key f3.
    pub ck: Key128,
    /// Integrity key f4.
    pub ik: Key128,
}

impl AkaVector {
    /// SIP-Authenticate = RAND ‖ AUTN (TS 29.229 §6.3.10; the Digest-AKA nonce before base64,
    /// RFC 3310 §3.2).
    pub fn sip_authenticate(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.rand);
        out[16..].copy_from_slice(&self.autn);
        out
    }
}

impl fmt::Debug for AkaVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AkaVector")
            .field("rand", &hex::encode(self.rand))
            .field("autn", &hex::encode(self.autn))
            .field("xres", &"<redacted>")
            .field("ck", &self.ck)
            .field("ik", &self.ik)
            .finish()
    }
}

/// Builds a vector for `rand`, `sqn` and `amf` (TS 33.102 §6.3.2):
/// MAC-A = f1, XRES = f2, CK = f3, IK = f4, AK = f5, AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
///
/// The caller draws RAND (16 random octets) and takes `sqn` from [`super::sqn::next_sqn`],
/// persisting it before the vector leaves the HSS. Bits of `sqn` above 48 are ignored.
pub fn generate_vector(m: &Milenage, rand: [u8; 16], sqn: u64, amf: [u8; 2]) -> AkaVector {
    let sqn = sqn_to_bytes(sqn);
    let mac_a = m.f1(&rand, sqn, amf);
    let (xres, ck, ik, ak) = m.f2345(&rand);
    let mut autn = [0u8; 16];
    for i in 0..6 {
        autn[i] = sqn[i] ^ ak[i];
    }
    autn[6..8].copy_from_slice(&amf);
    autn[8..16].copy_from_slice(&mac_a);
    AkaVector {
        rand,
        autn,
        xres,
        ck,
        ik,
    }
}

/// Verifies an AUTS for `rand` and returns SQN_MS (TS 33.102 §6.3.5, §6.3.3):
/// SQN_MS = AUTS[0..6] ⊕ f5*(RAND), then XMAC-S = f1*(SQN_MS, RAND, AMF* = 0000) must equal
/// AUTS[6..14]. The comparison is constant-time.
///
/// # Errors
/// [`AuthError::MacSMismatch`] when MAC-S does not verify; a forged AUTS never yields a SQN.
pub fn resync(m: &Milenage, rand: &[u8; 16], auts: &[u8; 14]) -> Result<u64, AuthError> {
    let ak_star = m.f5_star(rand);
    let sqn_ms: [u8; 6] = std::array::from_fn(|i| auts[i] ^ ak_star[i]);
    let xmac_s = m.f1_star(rand, sqn_ms, AMF_STAR);
    if ct_eq(&xmac_s, &auts[6..14]) {
        Ok(sqn_from_bytes(sqn_ms))
    } else {
        Err(AuthError::MacSMismatch)
    }
}

/// Splits the SIP-Authorization of a resynchronisation MAR into RAND(16) and AUTS(14)
/// (TS 29.229 §6.3.11, TS 29.228 §6.3.3 "Synchronization failure").
///
/// # Errors
/// [`AuthError::ResyncAuthorizationLength`] for any length other than 30 octets.
pub fn parse_resync_authorization(data: &[u8]) -> Result<([u8; 16], [u8; 14]), AuthError> {
    if data.len() != 30 {
        return Err(AuthError::ResyncAuthorizationLength { got: data.len() });
    }
    let mut rand = [0u8; 16];
    let mut auts = [0u8; 14];
    rand.copy_from_slice(&data[..16]);
    auts.copy_from_slice(&data[16..]);
    Ok((rand, auts))
}

/// UE side of TS 33.102 §6.3.3: recovers SQN = AUTN[0..6] ⊕ f5(RAND), checks
/// XMAC-A = f1(SQN, RAND, AMF) against AUTN[8..16] (constant-time), and returns
/// `(sqn, res, ck, ik)`.
///
/// Freshness of SQN is the caller's (USIM model's) check; this only authenticates the network.
///
/// # Errors
/// [`AuthError::MacAMismatch`] when MAC-A does not verify.
pub fn ue_check_autn(
    m: &Milenage,
    rand: &[u8; 16],
    autn: &[u8; 16],
) -> Result<(u64, [u8; 8], Key128, Key128), AuthError> {
    let (res, ck, ik, ak) = m.f2345(rand);
    let sqn: [u8; 6] = std::array::from_fn(|i| autn[i] ^ ak[i]);
    let amf = [autn[6], autn[7]];
    let xmac_a = m.f1(rand, sqn, amf);
    if ct_eq(&xmac_a, &autn[8..16]) {
        Ok((sqn_from_bytes(sqn), res, ck, ik))
    } else {
        Err(AuthError::MacAMismatch)
    }
}

/// UE side of TS 33.102 §6.3.3 on a synchronisation failure:
/// AUTS = (SQN_MS ⊕ f5*(RAND)) ‖ f1*(SQN_MS, RAND, AMF* = 0000).
/// Bits of `sqn_ms` above 48 are ignored.
pub fn ue_make_auts(m: &Milenage, rand: &[u8; 16], sqn_ms: u64) -> [u8; 14] {
    let sqn = sqn_to_bytes(sqn_ms);
    let ak_star = m.f5_star(rand);
    let mac_s = m.f1_star(rand, sqn, AMF_STAR);
    let mut auts = [0u8; 14];
    for i in 0..6 {
        auts[i] = sqn[i] ^ ak_star[i];
    }
    auts[6..].copy_from_slice(&mac_s);
    auts
}
