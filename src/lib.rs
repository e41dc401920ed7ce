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
//! - [`cx`]: the Cx application: UAR, SAR, LIR, MAR answered; RTR, PPR built (TS 29.228 §6).
//! - [`demo`]: the demo subscribers (the patent's example and a legacy subscriber).
//! - [`pcap`]: pcap/pcapng capture files read and written, and the Diameter messages in them
//!   (TCP reassembly, SCTP DATA chunks); used by `sichss decode` and the capture tests.
//! - [`cli`]: the `sichss` command line (clap); the composition root, one module per
//!   subcommand.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod auth;
pub mod cli;
pub mod codec;
pub mod cx;
pub mod demo;
pub mod dict;
pub mod identity;
pub mod pcap;
pub mod store;
