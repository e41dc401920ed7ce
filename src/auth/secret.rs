//! 128-bit secrets (K, OP, OPc, CK, IK) that do not leak through `Debug` or logs.
//!
//! [`Key128`] has no `Display`; its `Debug` prints `Key128(<redacted>)`. The only ways to read
//! it are [`Key128::as_bytes`] (for the cipher) and [`Key128::to_hex`] (explicit export).
//! Equality is constant-time. On drop the octets are overwritten with zeros; without `unsafe`
//! or a volatile write this is best effort (the store is kept alive with
//! [`std::hint::black_box`]), not a guarantee.

use std::fmt;

use super::error::AuthError;

/// A 128-bit secret: the subscriber key K, the operator variant OP or OPc (TS 35.206 §2),
/// or a derived cipher / integrity key CK, IK (TS 33.102 §6.3.2).
#[derive(Clone)]
pub struct Key128([u8; 16]);

impl Key128 {
    /// Wraps 16 octets.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses 32 hex digits (either case; surrounding whitespace is ignored).
    ///
    /// `field` names the key in the error, e.g. `"K"` gives
    /// "K must be 32 hex digits (16 octets), got 30".
    ///
    /// # Errors
    /// [`AuthError::KeyHexLength`] for any length other than 32 characters,
    /// [`AuthError::KeyHexDigit`] for a character outside `0-9a-fA-F`.
    pub fn from_hex(field: &'static str, hex: &str) -> Result<Self, AuthError> {
        let hex = hex.trim();
        // Every MAR reads K and OPc: 32 hex digits, decoded octet pair by octet pair.
        if let Some(key) = Self::from_hex_digits(hex.as_bytes()) {
            return Ok(key);
        }
        let got = hex.chars().count();
        if got != 32 {
            return Err(AuthError::KeyHexLength { field, got });
        }
        if let Some(position) = hex.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(AuthError::KeyHexDigit { field, position });
        }
        let mut out = [0u8; 16];
        // Length and alphabet were checked above, so this cannot fail.
        hex::decode_to_slice(hex, &mut out).map_err(|_| AuthError::KeyHexLength { field, got })?;
        Ok(Self(out))
    }

    /// The key in exactly 32 hex digits; `None` for anything else (which
    /// [`Key128::from_hex`] then explains).
    fn from_hex_digits(hex: &[u8]) -> Option<Self> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        if hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Self(out))
    }

    /// The 16 octets, for the cipher or for encoding into an AVP.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Lower-case hex, for explicit export only (subscriber dump, provisioning). Never log it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 16]> for Key128 {
    fn from(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for Key128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key128(<redacted>)")
    }
}

impl PartialEq for Key128 {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Key128 {}

impl Drop for Key128 {
    fn drop(&mut self) {
        self.0 = [0u8; 16];
        std::hint::black_box(&self.0);
    }
}

/// Compares two byte strings in time that depends only on their lengths, so that a MAC
/// check does not tell an attacker how many leading octets were right.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
