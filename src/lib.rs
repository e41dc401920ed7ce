//! sichss: a Diameter Cx HSS (3GPP TS 29.228/29.229) in which each IMS service of a
//! subscriber registers with its own private identity carrying a Service Identification
//! Code (SIC), so that services register and de-register independently.
//!
//! # Layout
//! - [`codec`]: the pure Diameter codec (nom parsers, encoder, framer, validation).
//! - [`dict`]: Diameter dictionaries (data files under `dictionaries/`).
//! - [`store`]: the subscriber store trait, its domain model and backends.
//! - [`peer`]: the sans-IO base protocol with one peer (CER/CEA, DWR/DWA, DPR/DPA, error
//!   answers, watchdog, allowlist).
//! - [`app`]: the [`app::Application`] trait, the seam between the server and Cx.
//! - [`server`]: the only networking module (tokio): listeners, connections, the
//!   [`server::Peers`] registry for HSS-initiated requests, graceful shutdown.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod app;
pub mod codec;
pub mod dict;
pub mod peer;
pub mod server;
pub mod store;
