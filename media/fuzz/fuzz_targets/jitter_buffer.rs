#![no_main]
//! Arbitrary sequences of arrivals and playout ticks through the jitter buffer: every
//! 7-byte record is an arrival (ssrc bit, sequence, timestamp step, time step) or a tick.

use libfuzzer_sys::fuzz_target;
use media::jitter::{JitterBuffer, JitterConfig, Playout};

fuzz_target!(|data: &[u8]| {
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut now = 0u64;
    let mut ts = 0u32;
    for r in data.chunks_exact(7) {
        now += u64::from(r[0] % 64);
        if r[1] & 1 == 0 {
            let seq = u16::from_le_bytes([r[2], r[3]]);
            ts = ts.wrapping_add(u32::from(u16::from_le_bytes([r[4], r[5]])));
            let ssrc = u32::from(r[1] >> 7);
            let len = usize::from(r[6]) * 8;
            let payload = vec![r[6]; len];
            let _ = jb.insert(now, ssrc, seq, ts, &payload);
        } else {
            match jb.pop(now) {
                Playout::Packet { payload, .. } => assert!(payload.len() <= 2_040),
                Playout::Conceal { .. } | Playout::Buffering => {}
            }
        }
        let stats = jb.stats();
        assert!(stats.target_delay_ms >= 20 && stats.target_delay_ms <= 200);
    }
});
