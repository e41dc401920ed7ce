//! The Milenage algorithm set f1, f1*, f2, f3, f4, f5, f5* (3GPP TS 35.206 §4), with AES-128
//! as the kernel function E_K, checked against the TS 35.208 test sets.
//!
//! ```text
//! OPc  = OP ⊕ E_K(OP)
//! TEMP = E_K(RAND ⊕ OPc)
//! IN1  = SQN ‖ AMF ‖ SQN ‖ AMF
//! OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc    f1 = OUT1[0..63], f1* = OUT1[64..127]
//! OUTn = E_K(rot(TEMP ⊕ OPc, rn) ⊕ cn) ⊕ OPc          n = 2..5
//!        f5 = OUT2[0..47], f2 = OUT2[64..127], f3 = OUT3, f4 = OUT4, f5* = OUT5[0..47]
//! r1..r5 = 64, 0, 32, 64, 96 bits;  c1..c5 = 0, 1, 2, 4, 8 (in the last octet)
//! ```
//!
//! Pure computation: no IO, no allocation.

use std::fmt;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

use super::secret::Key128;

/// Milenage for one subscriber: the AES-128 key schedule for K, and OPc (TS 35.206 §4.1).
#[derive(Clone)]
pub struct Milenage {
    /// E_K, expanded once per subscriber.
    cipher: Aes128,
    /// The operator variant, already combined with K.
    opc: Key128,
}

impl fmt::Debug for Milenage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Milenage(<redacted>)")
    }
}

/// Rotation amounts r1..r5 of TS 35.206 §4.1, in octets (the bit amounts are multiples of 8).
const R: [usize; 5] = [8, 0, 4, 8, 12];
/// Last octet of the constants c1..c5 of TS 35.206 §4.1 (all other octets are zero).
const C: [u8; 5] = [0x00, 0x01, 0x02, 0x04, 0x08];

impl Milenage {
    /// Milenage from K and a stored OPc.
    pub fn with_opc(k: &Key128, opc: &Key128) -> Self {
        Self {
            cipher: Aes128::new(k.as_bytes().into()),
            opc: opc.clone(),
        }
    }

    /// Milenage from K and the operator's OP, computing OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1).
    pub fn with_op(k: &Key128, op: &Key128) -> Self {
        let cipher = Aes128::new(k.as_bytes().into());
        let opc = xor16(&encrypt(&cipher, op.as_bytes()), op.as_bytes());
        Self {
            cipher,
            opc: Key128::from_bytes(opc),
        }
    }

    /// OPc in use (computed from OP by [`Milenage::with_op`], or as given).
    pub fn opc(&self) -> &Key128 {
        &self.opc
    }

    /// f1: the network authentication code MAC-A (TS 35.206 §4.1, TS 33.102 §6.3.2).
    pub fn f1(&self, rand: &[u8; 16], sqn: [u8; 6], amf: [u8; 2]) -> [u8; 8] {
        self.out1(rand, sqn, amf).0
    }

    /// f1*: the resynchronisation authentication code MAC-S (TS 35.206 §4.1,
    /// TS 33.102 §6.3.3). For AUTS the AMF is the dummy AMF* = `0000`.
    pub fn f1_star(&self, rand: &[u8; 16], sqn: [u8; 6], amf: [u8; 2]) -> [u8; 8] {
        self.out1(rand, sqn, amf).1
    }

    /// f2, f3, f4, f5: the response RES, the cipher key CK, the integrity key IK and the
    /// anonymity key AK (TS 35.206 §4.1), returned as `(res, ck, ik, ak)`.
    pub fn f2345(&self, rand: &[u8; 16]) -> ([u8; 8], Key128, Key128, [u8; 6]) {
        let temp = self.temp(rand);
        let out2 = self.out_n(&temp, 1);
        let out3 = self.out_n(&temp, 2);
        let out4 = self.out_n(&temp, 3);
        let mut res = [0u8; 8];
        res.copy_from_slice(&out2[8..16]);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out2[0..6]);
        (res, Key128::from_bytes(out3), Key128::from_bytes(out4), ak)
    }

    /// f5*: the anonymity key AK* that conceals SQN_MS in AUTS (TS 35.206 §4.1,
    /// TS 33.102 §6.3.3).
    pub fn f5_star(&self, rand: &[u8; 16]) -> [u8; 6] {
        let out5 = self.out_n(&self.temp(rand), 4);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out5[0..6]);
        ak
    }

    /// TEMP = E_K(RAND ⊕ OPc).
    fn temp(&self, rand: &[u8; 16]) -> [u8; 16] {
        encrypt(&self.cipher, &xor16(rand, self.opc.as_bytes()))
    }

    /// OUT1, split into (f1, f1*).
    fn out1(&self, rand: &[u8; 16], sqn: [u8; 6], amf: [u8; 2]) -> ([u8; 8], [u8; 8]) {
        let temp = self.temp(rand);
        let mut in1 = [0u8; 16];
        in1[0..6].copy_from_slice(&sqn);
        in1[6..8].copy_from_slice(&amf);
        in1[8..14].copy_from_slice(&sqn);
        in1[14..16].copy_from_slice(&amf);
        let mut block = rot(&xor16(&in1, self.opc.as_bytes()), R[0]);
        block[15] ^= C[0];
        let out1 = xor16(
            &encrypt(&self.cipher, &xor16(&temp, &block)),
            self.opc.as_bytes(),
        );
        let mut mac_a = [0u8; 8];
        let mut mac_s = [0u8; 8];
        mac_a.copy_from_slice(&out1[0..8]);
        mac_s.copy_from_slice(&out1[8..16]);
        (mac_a, mac_s)
    }

    /// OUT2..OUT5 (`i` = 1..=4 indexes r and c).
    fn out_n(&self, temp: &[u8; 16], i: usize) -> [u8; 16] {
        let mut block = rot(&xor16(temp, self.opc.as_bytes()), R[i]);
        block[15] ^= C[i];
        xor16(&encrypt(&self.cipher, &block), self.opc.as_bytes())
    }
}

/// E_K on one 128-bit block.
fn encrypt(cipher: &Aes128, input: &[u8; 16]) -> [u8; 16] {
    let mut block = (*input).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

fn xor16(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Cyclic left rotation by `octets` × 8 bits.
fn rot(x: &[u8; 16], octets: usize) -> [u8; 16] {
    std::array::from_fn(|i| x[(i + octets) % 16])
}
