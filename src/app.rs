//! The seam between the Diameter server and an application such as Cx: the server hands
//! over requests that passed every base-protocol check (RFC 6733 §6.1, §7.1), and the
//! application returns the answer.
//!
//! Must not depend on: tokio networking, the server, sockets (only [`crate::codec`]).

use std::future::Future;
use std::net::SocketAddr;

use crate::codec::Message;

/// The peer a request came from, as identified by its CER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Origin-Host of the peer's CER.
    pub origin_host: String,
    /// Origin-Realm of the peer's CER.
    pub origin_realm: String,
    /// The peer's transport address.
    pub addr: SocketAddr,
}

/// A Diameter application served over the base protocol.
pub trait Application: Send + Sync + 'static {
    /// Application ids this application serves (Cx: `[16777216]`); advertised in the CEA
    /// and checked on every request (3007 otherwise).
    fn application_ids(&self) -> &[u32];

    /// Answers one request, already decoded and validated by the server. The answer must
    /// echo the request's identifiers (use [`Message::answer_to`]); the server enforces the
    /// hop-by-hop and end-to-end ids and clears the R bit regardless.
    fn handle(&self, req: Message, peer: &PeerInfo) -> impl Future<Output = Message> + Send;
}
