//! `sichss serve` as users run it: a real process on ephemeral loopback ports, a real
//! sled store on disk, Diameter over TCP from the project's client, the provisioning API
//! over HTTP, tshark watching the wire.

mod hardening;
mod malformed;
mod pki;
mod process;
mod scenarios;
mod secrets;
mod tls;
