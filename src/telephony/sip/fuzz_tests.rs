//! A proptest-driven fuzz loop over the SIP parser and the endpoint (libFuzzer needs a
//! nightly toolchain; this runs on stable in every `cargo test`): no input may panic, and
//! whatever parses must survive a serialize/parse round trip.

use std::time::Instant;

use proptest::prelude::*;

use super::dialog::{Peer, Transport};
use super::endpoint::{Endpoint, EndpointConfig};
use super::message::SipMessage;
use super::policy::SourcePolicy;
use super::sdp::{Codec, SessionDescription};

const SEED: &str = "INVITE sip:+15550100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:+15550100@c>\r\n\
i: x@y\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nl: 60\r\n\r\n\
v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 101\r\na=sendrecv\r\n";

/// Mutations of a valid INVITE: byte flips, truncations and insertions hit the parser's
/// edges far more often than uniform noise does.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seed = SEED.as_bytes().to_vec();
    let len = seed.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut bytes = seed.clone();
        for (at, byte, kind) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
            if bytes.is_empty() {
                break;
            }
        }
        bytes
    })
}

fn endpoint() -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            policy: SourcePolicy::new(Vec::new(), 0),
            stray_requests: SourcePolicy::new(Vec::new(), 0),
            max_transactions: 10_000,
            allow_private_media: false,
            digest: None,
            trunk_credentials: None,
        },
        Instant::now(),
        0,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn parser_never_panics_and_round_trips(bytes in prop_oneof![mutated(), prop::collection::vec(any::<u8>(), 0..600)]) {
        if let Ok(mut msg) = SipMessage::parse(&bytes) {
            let again = SipMessage::parse(&msg.to_bytes());
            prop_assert!(again.is_ok(), "re-parse of {:?}", msg);
            let mut again = again.unwrap();
            // Serializing always writes Content-Length; compare everything else.
            msg.remove_header("Content-Length");
            again.remove_header("Content-Length");
            prop_assert_eq!(msg, again);
        }
        let _ = SipMessage::parse_stream(&bytes);
        let _ = SessionDescription::parse(&bytes).map(|s| s.negotiate(&[Codec::Pcmu]));
    }

    #[test]
    fn endpoint_answers_anything_without_panicking(inputs in prop::collection::vec(mutated(), 1..6)) {
        let mut ep = endpoint();
        let peer = Peer { addr: "10.0.0.1:5060".parse().unwrap(), transport: Transport::Udp };
        let now = Instant::now();
        for bytes in inputs {
            ep.handle_bytes(&bytes, peer, now);
            while ep.poll_output().is_some() {}
        }
        ep.handle_timeout(now + std::time::Duration::from_secs(64));
    }
}
