//! Arbitrary bytes through the framer, the decoder and the validator: none may panic, and
//! the framer and the decoder must agree on where a message ends (RFC 6733 §3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sichss::codec::framer::DEFAULT_MAX_MESSAGE;
use sichss::codec::{check_frame, decode_message, validate, Frame};
use sichss::dict::Dictionary;

fuzz_target!(|data: &[u8]| {
    let dict = Dictionary::builtin();
    if let Frame::Complete(n) = check_frame(data, DEFAULT_MAX_MESSAGE) {
        assert!(
            n >= 20 && n <= data.len() && n % 4 == 0,
            "frame of {n} octets"
        );
        if let Ok(m) = decode_message(&data[..n], dict) {
            let _ = validate(&m, dict);
        }
    }
    if let Ok(m) = decode_message(data, dict) {
        // A message the decoder accepts is one complete frame.
        assert_eq!(check_frame(data, u32::MAX), Frame::Complete(data.len()));
        let _ = validate(&m, dict);
    }
});
