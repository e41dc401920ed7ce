//! sichss: a Diameter Cx HSS (3GPP TS 29.228/29.229) in which each IMS service of a
//! subscriber registers with its own private identity carrying a Service Identification
//! Code (SIC), so that services register and de-register independently.
//!
//! # Layout
//! - [`dict`]: Diameter dictionaries (data files under `dictionaries/`).
//! - [`identity`]: IMSI, SIC, private (IMPI) and public (IMPU) identities (TS 23.003 §13,
//!   CN103701828A per-service IMPIs); pure, no IO.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod dict;
pub mod identity;
