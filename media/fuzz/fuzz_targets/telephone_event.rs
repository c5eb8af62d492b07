#![no_main]
//! Arbitrary RFC 4733 payloads (with a timestamp prefix) through the DTMF receiver.

use libfuzzer_sys::fuzz_target;
use media::dtmf::{DtmfReceiver, TelephoneEvent};

fuzz_target!(|data: &[u8]| {
    let mut receiver = DtmfReceiver::default();
    for chunk in data.chunks(8) {
        let ts = u32::from_le_bytes([
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            0,
            0,
        ]);
        let payload = chunk.get(2..).unwrap_or(&[]);
        if let Ok(event) = TelephoneEvent::parse(payload) {
            assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
        }
        let _ = receiver.receive(ts, payload);
    }
});
