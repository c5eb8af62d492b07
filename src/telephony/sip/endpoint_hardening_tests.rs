//! The endpoint against forged and stray traffic, with virtual time: ACKs, in-dialog
//! requests and media addresses that do not belong to the call, and junk floods.

use std::time::Instant;

use super::dialog::{Peer, Transport};
use super::endpoint::*;
use super::endpoint_tests::*;
use super::message::SipMessage;
use super::policy::SourcePolicy;
use super::sdp::Codec;

fn stranger() -> Peer {
    Peer {
        addr: "198.51.100.66:5060".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn offer_at(address: &str) -> String {
    offer("sendrecv").replace("c=IN IP4 192.0.2.10", &format!("c=IN IP4 {address}"))
}

#[test]
fn only_the_callers_ack_starts_the_call() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let tag = answered_call(&mut ep, t0);
    // Knowing the Call-ID is not enough: a wrong To tag, or the right one from elsewhere.
    ep.handle_bytes(
        &request("ACK", "z9hG4bKf1", 1, Some("guess"), ""),
        peer(),
        t0,
    );
    ep.handle_bytes(
        &request("ACK", "z9hG4bKf2", 1, Some(&tag), ""),
        stranger(),
        t0,
    );
    assert!(drain(&mut ep).1.is_empty());
    ep.handle_bytes(&request("ACK", "z9hG4bKa", 1, Some(&tag), ""), peer(), t0);
    assert_eq!(
        drain(&mut ep).1,
        vec![Event::Acknowledged {
            call_id: "call-1".into()
        }]
    );
}

#[test]
fn in_dialog_requests_from_strangers_get_481_and_change_nothing() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let tag = answered_call(&mut ep, t0);
    ep.handle_bytes(&request("ACK", "z9hG4bKa", 1, Some(&tag), ""), peer(), t0);
    drain(&mut ep);
    let hijack = offer_at("198.51.100.66");
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKs1", 2, Some(&tag), &hijack),
        stranger(),
        t0,
    );
    ep.handle_bytes(
        &request("BYE", "z9hG4bKs2", 3, Some(&tag), ""),
        stranger(),
        t0,
    );
    ep.handle_bytes(
        &request("NOTIFY", "z9hG4bKs3", 4, Some(&tag), ""),
        stranger(),
        t0,
    );
    ep.handle_bytes(
        &request("BYE", "z9hG4bKs4", 5, Some("guess"), ""),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![481, 481, 481, 481]);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(ep.active_dialogs(), 1);
    assert_eq!(
        ep.media("call-1").unwrap().remote,
        "192.0.2.10:4000".parse::<std::net::SocketAddr>().unwrap()
    );
    // Answered statelessly: none of it is held.
    assert_eq!(
        ep.transactions(),
        1,
        "only the INVITE's lingering transaction"
    );
    ep.handle_bytes(&request("BYE", "z9hG4bKb", 2, Some(&tag), ""), peer(), t0);
    assert_eq!(codes(&drain(&mut ep).0), vec![200]);
}

#[test]
fn media_addresses_that_aim_rtp_elsewhere_get_488() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    // TRUNK (192.0.2.10) is a public source: it may not point media into private space.
    for (i, address) in ["224.0.0.1", "0.0.0.0", "10.0.0.7", "127.0.0.1"]
        .iter()
        .enumerate()
    {
        let mut invite = SipMessage::parse(&request(
            "INVITE",
            &format!("z9hG4bKm{i}"),
            1,
            None,
            &offer_at(address),
        ))
        .unwrap();
        invite.set_header("Call-ID", format!("media-{i}"));
        ep.handle_bytes(&invite.to_bytes(), peer(), t0);
        let (sent, events) = drain(&mut ep);
        assert_eq!(codes(&sent), vec![488], "{address}");
        assert!(events.is_empty());
    }
    // A re-INVITE cannot move an established call there either.
    let tag = answered_call(&mut ep, t0);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKr", 2, Some(&tag), &offer_at("239.1.1.1")),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![488]);
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::MediaChanged { .. }))
    );
}

#[test]
fn private_media_from_a_public_source_is_accepted_when_configured() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(
        EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            codecs: vec![Codec::Pcmu],
            policy: SourcePolicy::new(Vec::new(), 0),
            stray_requests: SourcePolicy::new(Vec::new(), 0),
            max_transactions: 10_000,
            allow_private_media: true,
            digest: None,
            trunk_credentials: None,
        },
        t0,
        0,
    );
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKp", 1, None, &offer_at("10.0.0.7")),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![100]);
    assert!(matches!(&events[..], [Event::Incoming(_)]));
}

#[test]
fn junk_is_answered_statelessly_rate_limited_and_new_calls_capped() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(
        EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            codecs: vec![Codec::Pcmu],
            policy: SourcePolicy::new(Vec::new(), 0),
            stray_requests: SourcePolicy::new(Vec::new(), 5),
            max_transactions: 3,
            allow_private_media: false,
            digest: None,
            trunk_credentials: None,
        },
        t0,
        0,
    );
    for i in 0..1000 {
        let method = ["OPTIONS", "BYE", "FOO"][i % 3];
        ep.handle_bytes(
            &request(method, &format!("z9hG4bKj{i}"), 1, Some("x"), ""),
            peer(),
            t0,
        );
    }
    let (sent, _) = drain(&mut ep);
    assert_eq!(sent.len(), 10, "a burst of twice the rate, then silence");
    assert_eq!(ep.transactions(), 0);
    assert_eq!(ep.poll_timeout(), None);
    for i in 0..5 {
        let mut invite = SipMessage::parse(&request(
            "INVITE",
            &format!("z9hG4bKc{i}"),
            1,
            None,
            &offer("sendrecv"),
        ))
        .unwrap();
        invite.set_header("Call-ID", format!("cap-{i}"));
        ep.handle_bytes(&invite.to_bytes(), peer(), t0);
    }
    assert_eq!(codes(&drain(&mut ep).0), vec![100, 100, 100, 503, 503]);
    assert_eq!(ep.transactions(), 3);
}
