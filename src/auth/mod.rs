//! Authentication for the Cx Multimedia-Auth procedure: the Milenage functions
//! (3GPP TS 35.206, checked against TS 35.208), IMS-AKA vectors and AUTS resynchronisation
//! (TS 33.102 §6.3), SQN management (TS 33.102 Annex C), Digest-AKAv1-MD5 (RFC 3310) and
//! SIP Digest (RFC 2617).
//!
//! # Layout
//! - [`secret`]: the 128-bit secret [`Key128`] (K, OP, OPc, CK, IK) that never prints itself.
//! - [`milenage`]: the [`Milenage`] functions f1, f1*, f2–f5, f5* on AES-128.
//! - [`aka`]: vectors ([`AkaVector`], [`generate_vector`]), resynchronisation ([`resync`],
//!   [`parse_resync_authorization`]) and the UE side ([`ue_check_autn`], [`ue_make_auts`]).
//! - [`sqn`]: SEQ ‖ IND arithmetic with a 5-bit IND.
//! - [`digest`]: HA1, request-digest and the AKA nonce.
//! - [`error`]: the layer's error type [`AuthError`].
//!
//! Pure: no tokio, no sled, no IO, no clock. The caller supplies RAND and persists SQN.
#![warn(missing_docs)]

pub mod aka;
pub mod digest;
pub mod error;
pub mod milenage;
pub mod secret;
pub mod sqn;

pub use aka::{
    generate_vector, parse_resync_authorization, resync, ue_check_autn, ue_make_auts, AkaVector,
};
pub use error::AuthError;
pub use milenage::Milenage;
pub use secret::Key128;

#[cfg(test)]
mod tests;
