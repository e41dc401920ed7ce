//! sichss: a Diameter Cx HSS (3GPP TS 29.228/29.229) in which each IMS service of a
//! subscriber registers with its own private identity carrying a Service Identification
//! Code (SIC), so that services register and de-register independently.
//!
//! # Layout
//! - [`codec`]: the pure Diameter codec (nom parsers, encoder, framer, validation).
//! - [`dict`]: Diameter dictionaries (data files under `dictionaries/`).
//! - [`auth`]: Milenage, IMS-AKA vectors and resync, SQN management, SIP Digest (pure).
//! - [`store`]: the subscriber store trait, its domain model and backends.
//! - [`cx`]: the Cx application (TS 29.228/29.229): the User-Data XML ([`cx::user_data`]).
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod auth;
pub mod codec;
pub mod cx;
pub mod dict;
pub mod store;
