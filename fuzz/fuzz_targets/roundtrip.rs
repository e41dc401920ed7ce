//! Decode, encode, decode: whatever the decoder accepts, the encoder writes back in a form
//! that decodes to the same message, and encoding that is stable (RFC 6733 §3, §4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sichss::codec::decode_message;
use sichss::dict::Dictionary;

fuzz_target!(|data: &[u8]| {
    let dict = Dictionary::builtin();
    if let Ok(m) = decode_message(data, dict) {
        let bytes = m.encode();
        assert_eq!(
            bytes.len(),
            data.len(),
            "re-encoding changed the message length"
        );
        let again = match decode_message(&bytes, dict) {
            Ok(a) => a,
            Err(e) => panic!("re-encoded message does not decode: {e}"),
        };
        assert_eq!(m, again, "decode(encode(m)) != m");
        assert_eq!(again.encode(), bytes, "encoding is not stable");
    }
});
