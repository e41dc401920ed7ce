//! The whole request path of `sichss serve`, without the socket, for the `request_path`
//! fuzz target and for `tests/fuzz_request_path.rs` (which replays the corpus and every
//! regression under `cargo test`); both include this file with `#[path]`.
//!
//! Bytes → `check_frame` → `decode_message` → for a request, the checks the server makes
//! before the application (`check_request`: application, command, Destination-Host/-Realm,
//! dictionary validation) → the Cx application over a temporary sled store holding the demo
//! subscribers → the answer, encoded. A message that does not decode is answered the way
//! the server answers it (`error_answer` with the sniffed Session-Id).
//!
//! Properties checked on every answer: it encodes, and the encoding decodes again; it is
//! an answer (R clear) for the same command, application, Hop-by-Hop and End-to-End
//! identifiers as the request; it carries a Result-Code or an Experimental-Result; the E
//! bit is set exactly when the Result-Code is a protocol error (3xxx, RFC 6733 §7.1.3).
//! No input may panic.

#![allow(dead_code)]

use std::sync::Arc;

use sichss::codec::framer::DEFAULT_MAX_MESSAGE;
use sichss::codec::header::{FLAG_E, FLAG_R};
use sichss::codec::{check_frame, decode_message, Frame, Header, Message};
use sichss::cx::{CxApp, CxConfig, CX_APPLICATION_ID};
use sichss::dict::Dictionary;
use sichss::peer::base::{error_answer, sniff_session_id};
use sichss::peer::{check_request, LocalIdentity};
use sichss::store::sled::SledStore;
use sichss::store::SubscriberStore;

/// The HSS under test: a current-thread runtime, the Cx application and our identity.
pub struct RequestPath {
    rt: tokio::runtime::Runtime,
    cx: CxApp<SledStore>,
    local: LocalIdentity,
}

/// What one input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Not one complete frame (the server would wait for more, or close).
    NoFrame,
    /// An answer, or an undecodable message that is not a request: dropped.
    NotARequest,
    /// A request that does not decode: answered by the peer layer.
    DecodeError,
    /// Refused by the checks before the application.
    Rejected,
    /// Answered by the Cx application with this Result-Code or Experimental-Result.
    Application(u32),
}

impl RequestPath {
    /// A fresh HSS with the default configuration and demo subscribers A and B.
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let store = SledStore::open_temporary().expect("a temporary sled store");
        rt.block_on(async {
            store.create(sichss::demo::subscriber_a()).await.unwrap();
            store.create(sichss::demo::subscriber_b()).await.unwrap();
        });
        let config = CxConfig::default();
        let local = LocalIdentity::new(&config.origin_host, &config.origin_realm);
        RequestPath {
            rt,
            cx: CxApp::new(Arc::new(store), config),
            local,
        }
    }

    /// Runs `data` through the request path; panics when a property fails.
    pub fn run(&self, data: &[u8]) -> Reached {
        let dict = Dictionary::builtin();
        let n = match check_frame(data, DEFAULT_MAX_MESSAGE) {
            Frame::Complete(n) => n,
            Frame::Incomplete | Frame::Invalid(..) => return Reached::NoFrame,
        };
        let frame = &data[..n];
        let req = match decode_message(frame, dict) {
            Ok(m) => m,
            Err(e) => {
                let Some(h) = e.header.filter(Header::is_request) else {
                    return Reached::NotARequest;
                };
                let a = error_answer(
                    &h,
                    sniff_session_id(frame).as_ref(),
                    &self.local,
                    e.error.result_code(),
                    e.error.failed_avp(),
                    &e.error.to_string(),
                );
                check_answer(&h, &a);
                return Reached::DecodeError;
            }
        };
        if !req.header.is_request() {
            return Reached::NotARequest;
        }
        if let Err(rej) = check_request(&req, dict, &[CX_APPLICATION_ID], &self.local) {
            check_answer(&req.header, &rej.answer);
            return Reached::Rejected;
        }
        let a = self.rt.block_on(self.cx.handle(&req));
        let code = check_answer(&req.header, &a);
        Reached::Application(code)
    }
}

impl Default for RequestPath {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the properties of an answer to `req`; returns its result code.
fn check_answer(req: &Header, a: &Message) -> u32 {
    let bytes = a.encode();
    let back = match decode_message(&bytes, Dictionary::builtin()) {
        Ok(m) => m,
        Err(e) => panic!("an answer the HSS built does not decode: {e}\n{a:?}"),
    };
    let h = back.header;
    assert_eq!(h.flags & FLAG_R, 0, "an answer has R clear");
    assert_eq!(h.command, req.command, "same command");
    assert_eq!(h.application, req.application, "same application");
    assert_eq!(h.hop_by_hop, req.hop_by_hop, "same hop-by-hop id");
    assert_eq!(h.end_to_end, req.end_to_end, "same end-to-end id");
    let code = match (back.result_code(), back.experimental_result()) {
        (Some(rc), _) => rc.0,
        (None, Some(e)) => e.0,
        (None, None) => panic!("an answer without a result: {back:?}"),
    };
    if let Some(rc) = back.result_code() {
        assert_eq!(
            h.flags & FLAG_E != 0,
            rc.is_protocol_error(),
            "E bit exactly for protocol errors (Result-Code {})",
            rc.0
        );
    }
    code
}
