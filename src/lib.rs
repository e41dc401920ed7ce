//! sichss: a Diameter Cx HSS (3GPP TS 29.228/29.229) in which each IMS service of a
//! subscriber registers with its own private identity carrying a Service Identification
//! Code (SIC), so that services register and de-register independently.
//!
//! # Layout
//! - [`codec`]: the pure Diameter codec (nom parsers, encoder, framer, validation).
//! - [`dict`]: Diameter dictionaries (data files under `dictionaries/`).
//! - [`identity`]: IMPI/IMPU parsing, derivation and normalisation, with the SIC (TS 23.003 §13).
//! - [`auth`]: Milenage, IMS-AKA vectors and resync, SQN management, SIP Digest (pure).
//! - [`store`]: the subscriber store trait, its domain model and backends.
//! - [`config`]: the TOML configuration with its defaults.
//! - [`cx`]: the Cx application: UAR, SAR, LIR, MAR answered; RTR, PPR built (TS 29.228 §6).
//! - [`demo`]: the demo subscribers (the patent's example and a legacy subscriber).
//! - [`ue`]: a test UE (SIP/UDP REGISTER with a SIC-tagged IMPI, AKA and Digest) for runs
//!   against real CSCFs (`sichss ue`, harness/kamailio/).
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod auth;
pub mod codec;
pub mod config;
pub mod cx;
pub mod demo;
pub mod dict;
pub mod identity;
pub mod store;
pub mod ue;
