//! sichss: a Diameter Cx HSS (3GPP TS 29.228/29.229) in which each IMS service of a
//! subscriber registers with its own private identity carrying a Service Identification
//! Code (SIC), so that services register and de-register independently.
//!
//! # Layout
//! - [`codec`]: the pure Diameter codec (nom parsers, encoder, framer, validation).
//! - [`dict`]: Diameter dictionaries (data files under `dictionaries/`).
//! - [`identity`]: IMPI/IMPU parsing, derivation and normalisation, with the SIC (TS 23.003 §13).
//! - [`auth`]: Milenage, IMS-AKA vectors and resync, SQN management, SIP Digest (pure).
//! - [`store`]: the subscriber store trait, its domain model and backends (sled, PostgreSQL).
//! - [`cluster`]: several nodes on one PostgreSQL store: who holds which S-CSCF's
//!   connection, and RTR/PPR forwarded to that node (LISTEN/NOTIFY).
//! - [`cx`]: the Cx application: UAR, SAR, LIR, MAR answered; RTR, PPR built (TS 29.228 §6).
//! - [`peer`]: the sans-IO base protocol with one peer (CER/CEA, DWR/DWA, DPR/DPA, error
//!   answers, watchdog, allowlist).
//! - [`app`]: the [`app::Application`] trait, the seam between the server and Cx.
//! - [`server`]: the only networking module (tokio): listeners, connections, the
//!   [`server::Peers`] registry for HSS-initiated requests, graceful shutdown.
//! - [`tls`]: TLS from PEM files (rustls): Diameter over TLS, HTTPS for the API, mutual
//!   TLS, the client side for the Diameter client and the admin CLI.
//! - [`serve`]: the composition root of `sichss serve`.
//! - [`cli`]: the command line.
//! - [`config`]: the TOML configuration with its defaults.
//! - [`api`]: the provisioning API (HTTP/JSON over axum): subscribers, services, RTR/PPR on
//!   change, import/export, OpenAPI, metrics.
//! - [`admin`]: the admin CLI commands (`subscriber`, `service`, `import`, `export`), a
//!   blocking client of the provisioning API.
//! - [`demo`]: the demo subscribers (the patent's example and a legacy subscriber).
//! - [`client`]: an async Diameter client (CER/CEA, pipelined requests, DWR/DPR handling).
//! - [`bench`]: the Cx load generator (`sichss bench`) and the null-server baseline.
//! - [`ue`]: a test UE (SIP/UDP REGISTER with a SIC-tagged IMPI, AKA and Digest) for runs
//!   against real CSCFs (`sichss ue`, harness/kamailio/).
//! - [`pcap`]: pcap/pcapng capture files read and written, and the Diameter messages in them
//!   (TCP reassembly, SCTP DATA chunks); used by `sichss decode` and the capture tests.
//! - [`replay`]: `sichss replay`: a capture's Cx requests sent to an HSS, each answer compared
//!   with the recorded one.
//! - [`cli`]: the `sichss` command line (clap); the composition root, one module per
//!   subcommand.
//! - [`log`]: the log's writer (lines buffered, written to stderr in batches by one thread)
//!   and format; the Cx layer writes its line per request through it directly.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod cx;
pub mod demo;
pub mod dict;
pub mod identity;
pub mod log;
pub mod pcap;
pub mod peer;
pub mod replay;
pub mod serve;
pub mod server;
pub mod store;
pub mod tls;
pub mod ue;

/// A hash map for the lookups every request makes (the dictionary's AVPs and commands, the
/// sled store's record cache and journal overlay): FxHash, several times cheaper than the
/// default SipHash for short keys. Only for keys no peer chooses (dictionary codes, IMSIs
/// of stored subscribers), since FxHash does not resist crafted collisions.
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<fxhash::FxHasher>>;
