#![no_main]
//! Arbitrary datagrams and stream buffers through the SIP message parser, and arbitrary bodies
//! through the SDP parser and answerer: errors are fine, panics are not, whatever parses must
//! survive a serialize/parse round trip, and our answer to a parsed offer must parse back.

use boltcall::telephony::sip::message::{SipMessage, addr_uri, param, split_list, uri_user};
use boltcall::telephony::sip::sdp::{Codec, SessionDescription, answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut msg) = SipMessage::parse(data) {
        let mut again = SipMessage::parse(&msg.to_bytes()).expect("a parsed message re-parses");
        // Serializing always writes Content-Length; compare everything else.
        msg.remove_header("Content-Length");
        again.remove_header("Content-Length");
        assert_eq!(msg, again);
        // The header helpers the endpoint routes and matches dialogs with.
        let _ = (msg.cseq(), msg.top_branch(), msg.method(), msg.status());
        for (_, value) in &msg.headers {
            for part in split_list(value) {
                let _ = (param(part, "tag"), uri_user(addr_uri(part)));
            }
        }
        answer_round_trip(&msg.body);
    }
    if let Ok(Some((_, used))) = SipMessage::parse_stream(data) {
        assert!(used <= data.len());
    }
    answer_round_trip(data);
});

/// Whatever codec we pick from an offer, our answer must carry the same choice.
fn answer_round_trip(body: &[u8]) {
    let Ok(offer) = SessionDescription::parse(body) else {
        return;
    };
    let supported = [Codec::Opus, Codec::Pcmu, Codec::Pcma];
    let Ok(media) = offer.negotiate(&supported) else {
        return;
    };
    let local = "192.0.2.1:40000".parse().expect("a socket address");
    let ours = SessionDescription::parse(&answer(&media, local, 1, 1)).expect("our answer parses");
    let back = ours
        .negotiate(&[media.codec])
        .expect("our answer has our codec");
    assert_eq!(
        (back.codec, back.payload_type, back.dtmf),
        (media.codec, media.payload_type, media.dtmf)
    );
}
