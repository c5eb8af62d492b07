#![no_main]
//! Arbitrary datagrams through the RTP and RTCP parsers: errors are fine, panics are not.

use libfuzzer_sys::fuzz_target;
use media::rtp::{parse, rtcp};

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = parse(data) {
        assert!(view.payload.len() <= data.len());
    }
    for packet in rtcp::parse_compound(data) {
        let _ = packet;
    }
});
