//! `sichss serve` as users run it: a real process on ephemeral loopback ports, a real
//! sled store on disk (or two nodes on one PostgreSQL database), Diameter over TCP from
//! the project's client, the provisioning API over HTTP, tshark watching the wire.

mod cluster;
mod hardening;
mod malformed;
#[path = "../common/pg.rs"]
mod pg;
mod pki;
mod process;
mod scenarios;
mod secrets;
#[path = "../common/serve.rs"]
mod serve_process;
mod tls;
