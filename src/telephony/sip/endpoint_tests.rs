//! The endpoint driven message by message with virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::auth::{self, DigestVerifier};
use super::dialog::{Peer, Transport};
use super::endpoint::*;
use super::message::{SipMessage, param};
use super::policy::SourcePolicy;
use super::sdp::{Codec, MediaDirection, SessionDescription};
use super::transaction::T1;

pub(super) const TRUNK: &str = "192.0.2.10:5060";
pub(super) const MEDIA: &str = "127.0.0.1:20000";

pub(super) fn peer() -> Peer {
    Peer {
        addr: TRUNK.parse().unwrap(),
        transport: Transport::Udp,
    }
}

pub(super) fn endpoint_with(digest: Option<DigestVerifier>, rate: u32, t0: Instant) -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            policy: SourcePolicy::new(Vec::new(), rate),
            stray_requests: SourcePolicy::new(Vec::new(), 0),
            max_transactions: 10_000,
            allow_private_media: false,
            digest,
            trunk_credentials: Some(("acct".into(), "pw".into())),
        },
        t0,
        1_000_000,
    )
}

pub(super) fn offer(direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

pub(super) fn request(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    body: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:+15550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch={branch}\r\n\
From: <sip:+15550001@192.0.2.10>;tag=caller\r\nTo: <sip:+15550100@127.0.0.1>{to_tag}\r\n\
Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:trunk@{TRUNK}>\r\nMax-Forwards: 70\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn drain(ep: &mut Endpoint) -> (Vec<SipMessage>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(out) = ep.poll_output() {
        match out {
            Output::Send { bytes, .. } => sent.push(SipMessage::parse_unchecked(&bytes).unwrap()),
            Output::Event(e) => events.push(e),
        }
    }
    (sent, events)
}

pub(super) fn codes(sent: &[SipMessage]) -> Vec<u16> {
    sent.iter().filter_map(SipMessage::status).collect()
}

/// Runs an inbound call to the point where it is answered; returns the 200's To tag.
pub(super) fn answered_call(ep: &mut Endpoint, t0: Instant) -> String {
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKi", 1, None, &offer("sendrecv")),
        peer(),
        t0,
    );
    let (_, events) = drain(ep);
    assert!(matches!(&events[..], [Event::Incoming(_)]));
    ep.accept("call-1", MEDIA.parse().unwrap(), t0).unwrap();
    let (sent, _) = drain(ep);
    assert_eq!(codes(&sent), vec![180, 200]);
    param(sent[1].header("To").unwrap(), "tag")
        .unwrap()
        .to_string()
}

#[test]
fn inbound_call_is_answered_with_sdp_and_ended_by_bye() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKi", 1, None, &offer("sendrecv")),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![100]);
    let Event::Incoming(call) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (call.to.as_str(), call.from.as_str()),
        ("+15550100", "+15550001")
    );
    assert_eq!(call.media.dtmf.map(|e| e.payload_type), Some(101));

    // A retransmitted INVITE is absorbed: the 100 again, no second call.
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKi", 1, None, &offer("sendrecv")),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!((codes(&sent), events.len()), (vec![100], 0));

    ep.accept("call-1", MEDIA.parse().unwrap(), t0).unwrap();
    let (sent, _) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![180, 200]);
    let answer = SessionDescription::parse(&sent[1].body).unwrap();
    assert_eq!(
        (answer.port, answer.payload_types.clone()),
        (20000, vec![0, 101])
    );
    let tag = param(sent[1].header("To").unwrap(), "tag")
        .unwrap()
        .to_string();
    assert_eq!(
        param(sent[0].header("To").unwrap(), "tag"),
        Some(tag.as_str())
    );

    // The 200 is retransmitted until the ACK arrives.
    ep.handle_timeout(t0 + T1);
    assert_eq!(codes(&drain(&mut ep).0), vec![200]);
    ep.handle_bytes(
        &request("ACK", "z9hG4bKa", 1, Some(&tag), ""),
        peer(),
        t0 + T1,
    );
    ep.handle_timeout(t0 + 3 * T1);
    assert!(drain(&mut ep).0.is_empty());

    ep.handle_bytes(
        &request("BYE", "z9hG4bKb", 2, Some(&tag), ""),
        peer(),
        t0 + 4 * T1,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![200]);
    assert_eq!(
        events,
        vec![Event::Ended {
            call_id: "call-1".into(),
            end: CallEnd::RemoteBye
        }]
    );
    assert_eq!(ep.active_dialogs(), 0);
}

#[test]
fn cancel_before_answer_gets_487_and_ends_the_call() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKi", 1, None, &offer("sendrecv")),
        peer(),
        t0,
    );
    drain(&mut ep);
    ep.handle_bytes(&request("CANCEL", "z9hG4bKi", 1, None, ""), peer(), t0);
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![200, 487]);
    assert_eq!(sent[1].cseq(), Some((1, "INVITE")));
    assert!(matches!(
        events[..],
        [Event::Ended {
            end: CallEnd::Cancelled,
            ..
        }]
    ));
    assert_eq!(
        ep.accept("call-1", MEDIA.parse().unwrap(), t0),
        Err(EndpointError::UnknownCall)
    );
    // The 487 is retransmitted until its ACK.
    ep.handle_timeout(t0 + T1);
    assert_eq!(codes(&drain(&mut ep).0), vec![487]);
    ep.handle_bytes(&request("ACK", "z9hG4bKi", 1, None, ""), peer(), t0 + T1);
    ep.handle_timeout(t0 + 3 * T1);
    assert!(drain(&mut ep).0.is_empty());
}

#[test]
fn unusable_offers_options_and_garbage_get_proper_answers() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let g729 = "v=0\r\nc=IN IP4 192.0.2.10\r\nm=audio 4000 RTP/AVP 18\r\n";
    ep.handle_bytes(&request("INVITE", "z9hG4bK1", 1, None, g729), peer(), t0);
    ep.handle_bytes(&request("OPTIONS", "z9hG4bK2", 1, None, ""), peer(), t0);
    let broken = String::from_utf8(request("BYE", "z9hG4bK3", 1, None, ""))
        .unwrap()
        .replace("CSeq: 1 BYE\r\n", "");
    ep.handle_bytes(broken.as_bytes(), peer(), t0);
    ep.handle_bytes(b"\x00\xffnot sip at all", peer(), t0);
    ep.handle_bytes(&request("BYE", "z9hG4bK4", 1, Some("x"), ""), peer(), t0);
    ep.handle_bytes(&request("FROB", "z9hG4bK5", 1, None, ""), peer(), t0);
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![488, 200, 400, 481, 501]);
    assert!(sent[1].header("Allow").unwrap().contains("INVITE"));
    assert!(events.is_empty());
}

#[test]
fn digest_challenge_then_credentials_admit_the_call() {
    let t0 = Instant::now();
    let verifier = DigestVerifier::new(
        "boltcall".into(),
        vec![("trunk".into(), "pw".into())],
        "k".into(),
    );
    let mut ep = endpoint_with(Some(verifier), 0, t0);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bK1", 1, None, &offer("sendrecv")),
        peer(),
        t0,
    );
    let (sent, _) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![401]);
    let challenge = sent[0].header("WWW-Authenticate").unwrap().to_string();
    let answer = auth::authorize(
        &challenge,
        "trunk",
        "pw",
        "INVITE",
        "sip:+15550100@127.0.0.1",
        "c",
    )
    .unwrap();
    let mut retry =
        SipMessage::parse(&request("INVITE", "z9hG4bK2", 2, None, &offer("sendrecv"))).unwrap();
    retry.add_header("Authorization", answer);
    ep.handle_bytes(&retry.to_bytes(), peer(), t0);
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![100]);
    assert_eq!(events.len(), 1);
}

#[test]
fn invite_floods_from_one_source_get_503() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 1, t0);
    for i in 0..3 {
        let mut invite = SipMessage::parse(&request(
            "INVITE",
            &format!("z9hG4bK{i}"),
            1,
            None,
            &offer("sendrecv"),
        ))
        .unwrap();
        invite.set_header("Call-ID", format!("flood-{i}"));
        ep.handle_bytes(&invite.to_bytes(), peer(), t0);
    }
    let (sent, _) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![100, 100, 503]);
    assert_eq!(sent[2].header("Retry-After"), Some("1"));
}

#[test]
fn reinvite_puts_the_call_on_hold_and_back() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let tag = answered_call(&mut ep, t0);
    ep.handle_bytes(&request("ACK", "z9hG4bKa", 1, Some(&tag), ""), peer(), t0);
    drain(&mut ep);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKh", 2, Some(&tag), &offer("sendonly")),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![200]);
    let answer = SessionDescription::parse(&sent[0].body).unwrap();
    assert_eq!(answer.direction, MediaDirection::RecvOnly);
    let Event::MediaChanged { media, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(media.direction, MediaDirection::RecvOnly);
    ep.handle_bytes(&request("ACK", "z9hG4bKa2", 2, Some(&tag), ""), peer(), t0);
    drain(&mut ep);
    ep.handle_bytes(
        &request("INVITE", "z9hG4bKr", 3, Some(&tag), &offer("sendrecv")),
        peer(),
        t0,
    );
    let (_, events) = drain(&mut ep);
    let Event::MediaChanged { media, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(media.direction, MediaDirection::SendRecv);
}

#[test]
fn unacknowledged_answer_hangs_up() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    answered_call(&mut ep, t0);
    let mut now = t0;
    let mut retransmits = 0;
    while let Some(deadline) = ep.poll_timeout() {
        now = deadline;
        ep.handle_timeout(now);
        let (sent, events) = drain(&mut ep);
        retransmits += codes(&sent).iter().filter(|c| **c == 200).count();
        if !events.is_empty() {
            assert!(sent.iter().any(|m| m.method() == Some("BYE")));
            assert!(matches!(
                events[..],
                [Event::Ended {
                    end: CallEnd::Unreachable,
                    ..
                }]
            ));
            break;
        }
    }
    assert_eq!(now, t0 + 64 * T1);
    assert!(retransmits >= 7);
}

fn response(
    to: &SipMessage,
    code: u16,
    to_tag: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut res = SipMessage::response_to(to, code, "X");
    let to_value = format!("{};tag={to_tag}", to.header("To").unwrap());
    res.set_header("To", to_value);
    for (n, v) in extra {
        res.add_header(n, *v);
    }
    if !body.is_empty() {
        res = res.with_body("application/sdp", body.as_bytes().to_vec());
    }
    res.to_bytes()
}

fn dial(ep: &mut Endpoint, t0: Instant) -> SipMessage {
    ep.dial(
        Dial {
            call_id: "out-1".into(),
            from_user: "+15550100".into(),
            to_user: "+15550999".into(),
            trunk: peer(),
            trunk_host: "trunk.example".into(),
            local_media: MEDIA.parse().unwrap(),
        },
        t0,
    );
    let (sent, _) = drain(ep);
    assert_eq!(sent.len(), 1);
    sent.into_iter().next().unwrap()
}

#[test]
fn outbound_call_authenticates_rings_answers_and_hangs_up() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let invite = dial(&mut ep, t0);
    assert_eq!(invite.uri(), Some("sip:+15550999@trunk.example"));
    assert!(invite.header("From").unwrap().contains("+15550100"));
    assert!(SessionDescription::parse(&invite.body).is_ok());

    let challenge = "Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\"";
    ep.handle_bytes(
        &response(&invite, 407, "t", &[("Proxy-Authenticate", challenge)], ""),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert!(events.is_empty());
    assert_eq!(sent[0].method(), Some("ACK"));
    let retry = &sent[1];
    assert_eq!(retry.method(), Some("INVITE"));
    assert_eq!(retry.cseq().unwrap().0, invite.cseq().unwrap().0 + 1);
    let creds = retry.header("Proxy-Authorization").unwrap();
    assert!(creds.contains("username=\"acct\"") && creds.contains("nonce=\"n1\""));

    ep.handle_bytes(&response(retry, 180, "callee", &[], ""), peer(), t0);
    ep.handle_bytes(
        &response(
            retry,
            200,
            "callee",
            &[("Contact", "<sip:callee@192.0.2.10>")],
            &offer("sendrecv"),
        ),
        peer(),
        t0,
    );
    let (sent, events) = drain(&mut ep);
    assert_eq!(sent[0].method(), Some("ACK"));
    assert_eq!(sent[0].uri(), Some("sip:callee@192.0.2.10"));
    assert!(matches!(
        &events[0],
        Event::Outbound {
            progress: Progress::Ringing { early_media: None },
            ..
        }
    ));
    let Event::Outbound {
        progress: Progress::Answered { media },
        ..
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        media.remote,
        "192.0.2.10:4000".parse::<SocketAddr>().unwrap()
    );

    ep.hangup("out-1", t0).unwrap();
    let (sent, _) = drain(&mut ep);
    assert_eq!(sent[0].method(), Some("BYE"));
    assert!(sent[0].header("To").unwrap().contains("tag=callee"));
}

#[test]
fn outbound_failures_and_silence_are_reported() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let invite = dial(&mut ep, t0);
    ep.handle_bytes(&response(&invite, 486, "busy", &[], ""), peer(), t0);
    let (sent, events) = drain(&mut ep);
    assert_eq!(sent[0].method(), Some("ACK"));
    assert!(matches!(
        events[..],
        [Event::Outbound {
            progress: Progress::Failed { code: 486 },
            ..
        }]
    ));

    let mut ep = endpoint_with(None, 0, t0);
    dial(&mut ep, t0);
    let mut sends = 0;
    let mut events = Vec::new();
    while events.is_empty() {
        let at = ep.poll_timeout().unwrap();
        ep.handle_timeout(at);
        let (s, e) = drain(&mut ep);
        sends += s.len();
        events = e;
        assert!(at <= t0 + 64 * T1 + Duration::from_millis(1));
    }
    assert_eq!(
        sends, 6,
        "Timer A retransmits at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    assert!(matches!(
        events[..],
        [Event::Outbound {
            progress: Progress::Failed { code: 408 },
            ..
        }]
    ));
}

#[test]
fn blind_transfer_follows_notify_and_hangs_up() {
    let t0 = Instant::now();
    let mut ep = endpoint_with(None, 0, t0);
    let tag = answered_call(&mut ep, t0);
    ep.handle_bytes(&request("ACK", "z9hG4bKa", 1, Some(&tag), ""), peer(), t0);
    ep.transfer("call-1", "+15550777", t0).unwrap();
    let (sent, _) = drain(&mut ep);
    let refer = &sent[0];
    assert_eq!(refer.method(), Some("REFER"));
    assert_eq!(refer.uri(), Some("sip:trunk@192.0.2.10:5060"));
    assert_eq!(
        refer.header("Refer-To"),
        Some("<sip:+15550777@192.0.2.10:5060>")
    );
    ep.handle_bytes(&response(refer, 202, "caller", &[], ""), peer(), t0);
    let mut notify = SipMessage::parse(&request("NOTIFY", "z9hG4bKn", 5, Some(&tag), "")).unwrap();
    notify.add_header("Event", "refer");
    let notify = notify.with_body("message/sipfrag", b"SIP/2.0 200 OK\r\n".to_vec());
    ep.handle_bytes(&notify.to_bytes(), peer(), t0);
    let (sent, events) = drain(&mut ep);
    assert_eq!(codes(&sent), vec![200]);
    assert_eq!(sent[1].method(), Some("BYE"));
    assert_eq!(
        events,
        vec![Event::TransferDone {
            call_id: "call-1".into(),
            success: true
        }]
    );
}
