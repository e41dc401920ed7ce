//! Arbitrary bytes as a capture file: the pcap/pcapng reader, the link, IP, TCP and SCTP
//! parsers and the Diameter extraction must not panic, and every message they return must
//! be one whole frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sichss::codec::framer::DEFAULT_MAX_MESSAGE;
use sichss::codec::{check_frame, Frame};
use sichss::pcap::diameter::diameter_messages;

fuzz_target!(|data: &[u8]| {
    if let Ok(msgs) = diameter_messages(data) {
        for m in msgs {
            assert_eq!(
                check_frame(&m.bytes, DEFAULT_MAX_MESSAGE),
                Frame::Complete(m.bytes.len())
            );
        }
    }
});
