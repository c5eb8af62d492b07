//! A proptest-driven fuzz loop over the parsers and the jitter buffer (the same properties
//! as the cargo-fuzz targets in media/fuzz/, runnable on stable): malformed input must come
//! back as an error value, never a panic. Raise `PROPTEST_CASES` for a longer run.

use media::dtmf::{DtmfReceiver, TelephoneEvent};
use media::jitter::{JitterBuffer, JitterConfig, Playout};
use media::rtp::{Packetizer, parse, rtcp};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000),
        ..ProptestConfig::default()
    }
}

/// Byte strings biased towards valid RTP/RTCP headers so the parsers get past the first check.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(b0, mut rest)| {
            rest.insert(0, 0x80 | (b0 & 0x3F));
            rest
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rtp_and_rtcp_parsers_never_panic(data in datagram()) {
        if let Ok(view) = parse(&data) {
            prop_assert!(view.payload.len() <= data.len());
        }
        for packet in rtcp::parse_compound(&data) {
            let _ = packet;
        }
    }

    #[test]
    fn written_packets_parse_back(ssrc: u32, pt in 0u8..128, seq: u16, ts: u32,
                                 payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Packetizer::new(ssrc, pt, seq, ts);
        let mut buf = [0u8; 400];
        let len = p.packetize(&payload, 160, false, &mut buf).unwrap();
        let view = parse(&buf[..len]).unwrap();
        prop_assert_eq!((view.ssrc, view.payload_type, view.sequence_number, view.timestamp),
                        (ssrc, pt, seq, ts));
        prop_assert_eq!(view.payload, &payload[..]);
    }

    #[test]
    fn telephone_events_never_panic(chunks in proptest::collection::vec(
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..40)) {
        let mut receiver = DtmfReceiver::default();
        for (ts, payload) in chunks {
            if let Ok(event) = TelephoneEvent::parse(&payload) {
                prop_assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
            }
            let _ = receiver.receive(ts, &payload);
        }
    }

    #[test]
    fn jitter_buffer_survives_any_arrival_pattern(ops in proptest::collection::vec(
        (0u64..64, any::<bool>(), any::<u16>(), any::<u16>(), any::<bool>(), 0usize..200), 0..400)) {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut now = 0u64;
        let mut ts = 0u32;
        for (step, is_arrival, seq, ts_step, other_ssrc, len) in ops {
            now += step;
            if is_arrival {
                ts = ts.wrapping_add(u32::from(ts_step));
                let payload = vec![0xD5; len];
                let _ = jb.insert(now, u32::from(other_ssrc), seq, ts, &payload);
            } else if let Playout::Packet { payload, .. } = jb.pop(now) {
                prop_assert!(payload.len() < 200);
            }
            let stats = jb.stats();
            prop_assert!((20..=200).contains(&stats.target_delay_ms));
        }
    }
}
