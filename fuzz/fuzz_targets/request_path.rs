//! The whole request path: bytes → framing → decode → the server's checks before the
//! application → the Cx application over a temporary sled store with the demo subscribers →
//! the answer, encoded and decoded again. See `../request_path.rs` for the properties.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../request_path.rs"]
mod request_path;

static HSS: OnceLock<request_path::RequestPath> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let hss = HSS.get_or_init(request_path::RequestPath::new);
    hss.run(data);
});
