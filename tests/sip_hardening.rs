//! Attacks on the SIP service over real UDP and TCP sockets, each shown refused: RTP from a
//! stranger does not take over a call, a forged INVITE that is never acknowledged sends no
//! RTP and starts no call, bad media addresses get 488, strangers cannot end or move a call,
//! digest answers cannot be replayed or re-aimed, junk does not grow the transaction table,
//! and TCP connections are capped and closed when idle.

#[path = "sip/support.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use boltcall::telephony::HangupReason;
use boltcall::telephony::sip::auth;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// Settings under which a call the test peer sends little RTP on is not timed out.
fn patient_settings() -> boltcall::telephony::sip::service::SipSettings {
    let mut settings = settings();
    settings.rtp_timeout = Duration::from_secs(120);
    settings
}

/// A hand-driven SIP caller on one UDP socket.
struct Caller {
    socket: UdpSocket,
    engine: SocketAddr,
    /// The number dialled (the test handler answers `+15550100`).
    number: &'static str,
    call_id: String,
    tag: String,
    cseq: u32,
}

impl Caller {
    async fn new(ip: &str, engine: SocketAddr) -> Self {
        Caller {
            socket: UdpSocket::bind((ip, 0)).await.unwrap(),
            engine,
            number: "+15550100",
            call_id: format!("hardening-{:x}", rand::random::<u64>()),
            tag: format!("{:x}", rand::random::<u32>()),
            cseq: 0,
        }
    }

    fn uri(&self) -> String {
        format!("sip:{}@{}", self.number, self.engine)
    }

    /// A request of this call; `to` is the full To value (with the engine's tag in-dialog).
    fn request(&mut self, method: &str, to: &str, extra: &str, body: &str) -> String {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.socket.local_addr().unwrap();
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch:x}\r\n\
             From: <sip:+15550001@{local}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\n\
             {extra}{content_type}Content-Length: {len}\r\n\r\n{body}",
            uri = self.uri(),
            branch = rand::random::<u64>(),
            tag = self.tag,
            call_id = self.call_id,
            cseq = self.cseq,
            len = body.len(),
        )
    }

    async fn send(&self, text: &str) {
        self.socket
            .send_to(text.as_bytes(), self.engine)
            .await
            .unwrap();
    }

    /// Sends an INVITE offering media at `media` and returns the final response.
    async fn invite(&mut self, media: SocketAddr, direction: &str, extra: &str) -> String {
        let to = format!("<{}>", self.uri());
        let invite = self.request("INVITE", &to, extra, &sdp(media, direction));
        self.send(&invite).await;
        self.final_response("INVITE").await
    }

    /// The next final response to `method` of this call.
    async fn final_response(&self, method: &str) -> String {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) = timeout(WAIT, self.socket.recv_from(&mut buf))
                .await
                .expect("the engine answered")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let cseq = format!("{} {method}", self.cseq);
            if status(&text) >= 200 && text.contains(&self.call_id) && text.contains(&cseq) {
                return text;
            }
        }
    }

    /// Places a call to the answering number and ACKs it: (engine's To, engine's RTP address).
    async fn call(&mut self, media: SocketAddr) -> (String, SocketAddr) {
        let ok = self.invite(media, "sendrecv", "").await;
        assert_eq!(status(&ok), 200, "{ok}");
        let to = header(&ok, "To");
        let ack = self.request("ACK", &to, "", "");
        self.send(&ack).await;
        (to, answered_media(&ok))
    }

    async fn bye(&mut self, to: &str) -> String {
        let bye = self.request("BYE", to, "", "");
        self.send(&bye).await;
        self.final_response("BYE").await
    }
}

fn sdp(media: SocketAddr, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n",
        ip = media.ip(),
        port = media.port()
    )
}

fn status(text: &str) -> u16 {
    text.strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn header(text: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .to_string()
}

fn answered_media(ok: &str) -> SocketAddr {
    let ip = ok
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= in the answer");
    let port = ok
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .expect("m= in the answer");
    format!("{}:{}", ip.trim(), port).parse().unwrap()
}

/// One 20 ms PCMU packet: a loud 400 Hz tone, or silence.
fn rtp_packet(seq: u16, loud: bool) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&(if loud { 0xbad } else { 0x600d_u32 }).to_be_bytes());
    packet.extend((0..160).map(|i| {
        let t = (u32::from(seq) * 160 + i) as f32 / 8000.0;
        let sample = if loud {
            ((t * 2.0 * std::f32::consts::PI * 400.0).sin() * 12000.0) as i16
        } else {
            0
        };
        media::g711::ulaw_from_linear(sample)
    }));
    packet
}

/// Waits for one RTP packet on `socket`.
async fn rtp_arrives(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("RTP from the engine")
        .unwrap();
}

/// Whatever is queued on `socket` right now, without waiting.
fn queued(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut count = 0;
    while socket.try_recv_from(&mut buf).is_ok() {
        count += 1;
    }
    count
}

#[tokio::test]
async fn rtp_from_strangers_does_not_take_over_the_call() {
    let (service, _, mut calls) = start(patient_settings()).await;
    let peer_media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut caller = Caller::new("127.0.0.1", service.local_addr()).await;
    let (to, engine_media) = caller.call(peer_media.local_addr().unwrap()).await;
    // Before the peer sends anything, a host that is neither the offered address nor the
    // signalling source floods the call's port with loud audio.
    let outsider = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for seq in 0..50 {
        outsider
            .send_to(&rtp_packet(seq, true), engine_media)
            .await
            .unwrap();
    }
    // The peer talks (silence) from the offered address; a stranger on the signalling host's
    // own IP joins in, after the latch, with loud audio.
    let neighbour = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for seq in 100..150 {
        peer_media
            .send_to(&rtp_packet(seq, false), engine_media)
            .await
            .unwrap();
        neighbour
            .send_to(&rtp_packet(seq + 1000, true), engine_media)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The agent's audio still reaches the real peer, and none went to the strangers.
    queued(&peer_media);
    rtp_arrives(&peer_media).await;
    assert_eq!(queued(&outsider), 0, "RTP went to the outsider");
    assert_eq!(queued(&neighbour), 0, "RTP went to the neighbour");
    assert_eq!(status(&caller.bye(&to).await), 200);
    let call = timeout(WAIT, calls.recv()).await.unwrap().unwrap();
    assert_eq!(call.hangup, Some(HangupReason::Remote));
    assert!(call.frames > 0, "the peer's audio was heard: {call:?}");
    assert_eq!(
        call.loud_frames, 0,
        "a stranger's audio was heard: {call:?}"
    );
}

#[tokio::test]
async fn forged_invite_without_ack_streams_nothing_and_starts_no_call() {
    let (service, handler, mut calls) = start(settings()).await;
    let victim = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut forger = Caller::new("127.0.0.1", service.local_addr()).await;
    let ok = forger
        .invite(victim.local_addr().unwrap(), "recvonly", "")
        .await;
    assert_eq!(status(&ok), 200, "{ok}");
    // A real call placed after it gets its audio, so the forged one would have had time to.
    let peer_media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut caller = Caller::new("127.0.0.1", service.local_addr()).await;
    let (to, _) = caller.call(peer_media.local_addr().unwrap()).await;
    rtp_arrives(&peer_media).await;
    assert_eq!(queued(&victim), 0, "RTP was sent at the victim");
    assert_eq!(status(&caller.bye(&to).await), 200);
    let call = timeout(WAIT, calls.recv()).await.unwrap().unwrap();
    assert_eq!(call.info.carrier_call_id, caller.call_id);
    // The engine gives up on the unacknowledged answer with a BYE (64*T1), still silent.
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = timeout(Duration::from_secs(60), forger.socket.recv_from(&mut buf))
            .await
            .expect("BYE for the unacknowledged call")
            .unwrap();
        if String::from_utf8_lossy(&buf[..n]).starts_with("BYE ") {
            break;
        }
    }
    assert_eq!(queued(&victim), 0, "RTP was sent at the victim");
    assert!(calls.try_recv().is_err(), "the forged call ran a session");
    assert_eq!(handler.active.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn multicast_and_unspecified_media_addresses_get_488() {
    let (service, _, _calls) = start(settings()).await;
    for media in ["224.0.0.1:4000", "0.0.0.0:4000", "255.255.255.255:4000"] {
        let mut caller = Caller::new("127.0.0.1", service.local_addr()).await;
        let answer = caller.invite(media.parse().unwrap(), "sendrecv", "").await;
        assert_eq!(status(&answer), 488, "{media}: {answer}");
    }
}

#[tokio::test]
async fn strangers_cannot_end_or_move_a_call() {
    let (service, _, mut calls) = start(patient_settings()).await;
    let peer_media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut caller = Caller::new("127.0.0.1", service.local_addr()).await;
    let (to, _) = caller.call(peer_media.local_addr().unwrap()).await;
    rtp_arrives(&peer_media).await;
    let hijack_media = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let hijack_sdp = sdp(hijack_media.local_addr().unwrap(), "sendrecv");
    // From another host with every header right, and from the caller's host knowing only the
    // Call-ID (no tags): neither matches the dialog.
    let strangers = [
        ("127.0.0.2", to.clone(), caller.tag.clone()),
        (
            "127.0.0.1",
            format!("<{}>;tag=guess", caller.uri()),
            "guess".into(),
        ),
    ];
    for (ip, to, tag) in strangers {
        let mut stranger = Caller::new(ip, service.local_addr()).await;
        stranger.call_id = caller.call_id.clone();
        stranger.tag = tag;
        stranger.cseq = 10;
        let reinvite = stranger.request("INVITE", &to, "", &hijack_sdp);
        stranger.send(&reinvite).await;
        assert_eq!(status(&stranger.final_response("INVITE").await), 481);
        assert_eq!(status(&stranger.bye(&to).await), 481);
        let cancel = stranger.request("CANCEL", &to, "", "");
        stranger.send(&cancel).await;
        assert_eq!(status(&stranger.final_response("CANCEL").await), 481);
    }
    // The call goes on with its media where it was.
    queued(&peer_media);
    rtp_arrives(&peer_media).await;
    assert_eq!(queued(&hijack_media), 0, "media moved to the stranger");
    assert_eq!(status(&caller.bye(&to).await), 200);
    let call = timeout(WAIT, calls.recv()).await.unwrap().unwrap();
    assert_eq!(call.hangup, Some(HangupReason::Remote));
}

/// An INVITE with credentials answering `challenge` for `digest_uri`.
fn authorization(challenge: &str, digest_uri: &str, cnonce: &str) -> String {
    let answer = auth::authorize(challenge, "trunk", "s3cret", "INVITE", digest_uri, cnonce)
        .expect("a digest challenge");
    format!("Authorization: {answer}\r\n")
}

#[tokio::test]
async fn digest_answers_cannot_be_replayed_re_aimed_or_moved() {
    let mut settings = settings();
    settings.users = vec![("trunk".into(), "s3cret".into())];
    let (service, _, mut calls) = start(settings).await;
    let media_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = media_socket.local_addr().unwrap();
    let mut caller = Caller::new("127.0.0.1", service.local_addr()).await;
    let challenge_response = caller.invite(media, "sendrecv", "").await;
    assert_eq!(status(&challenge_response), 401);
    let challenge = header(&challenge_response, "WWW-Authenticate");
    let credentials = authorization(&challenge, &caller.uri(), "c1");

    // An answer computed for another Request-URI is refused.
    let mut re_aimed = Caller::new("127.0.0.1", service.local_addr()).await;
    let wrong_uri = authorization(&challenge, "sip:+15550999@example.com", "c2");
    assert_eq!(
        status(&re_aimed.invite(media, "sendrecv", &wrong_uri).await),
        403
    );

    // The nonce was issued to 127.0.0.1: from another address it is not honoured.
    let mut moved = Caller::new("127.0.0.2", service.local_addr()).await;
    assert_eq!(
        status(&moved.invite(media, "sendrecv", &credentials).await),
        401
    );

    // The genuine answer places the call once.
    let ok = caller.invite(media, "sendrecv", &credentials).await;
    assert_eq!(status(&ok), 200, "{ok}");
    let to = header(&ok, "To");
    let ack = caller.request("ACK", &to, "", "");
    caller.send(&ack).await;
    assert_eq!(status(&caller.bye(&to).await), 200);
    timeout(WAIT, calls.recv()).await.unwrap().unwrap();

    // Replaying it (same nonce and nc) in a new call is refused.
    let mut replayer = Caller::new("127.0.0.1", service.local_addr()).await;
    let replay = replayer.invite(media, "sendrecv", &credentials).await;
    assert_eq!(status(&replay), 401, "{replay}");
    assert!(replay.contains("stale=true"), "{replay}");
}

#[tokio::test]
async fn junk_floods_do_not_grow_the_transaction_table() {
    let mut settings = settings();
    settings.limits.max_transactions = 40;
    let (service, _, _calls) = start(settings).await;
    let engine = service.local_addr();
    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = flooder.local_addr().unwrap();
    for i in 0..2000u32 {
        let method = ["OPTIONS", "BYE", "NOTIFY", "CANCEL", "FOO", "INFO"][i as usize % 6];
        let junk = format!(
            "{method} sip:x@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKj{i}\r\n\
             From: <sip:a@{local}>;tag=a{i}\r\nTo: <sip:x@{engine}>;tag=b{i}\r\n\
             Call-ID: junk-{i}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        flooder.send_to(junk.as_bytes(), engine).await.unwrap();
        flooder.send_to(b"\x00\x01garbage", engine).await.unwrap();
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // New calls to an unknown number: each holds a transaction until its 404 is ACKed, so
    // past the cap they are turned away statelessly with 503.
    let mut codes = Vec::new();
    for _ in 0..60 {
        let mut caller = Caller::new("127.0.0.1", engine).await;
        caller.number = "+15559999";
        let media = "127.0.0.1:4000".parse().unwrap();
        codes.push(status(&caller.invite(media, "sendrecv", "").await));
    }
    assert!(
        service.transactions() <= 40,
        "{} transactions",
        service.transactions()
    );
    assert!(codes.contains(&404) && codes.contains(&503), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 404 || *c == 503), "{codes:?}");
}

/// Writes an OPTIONS on `stream` and reads until something comes back; `None` when the
/// engine closed the connection instead.
async fn options_over(stream: &mut TcpStream, engine: SocketAddr) -> Option<u16> {
    let local = stream.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:x@{engine};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKo{:x}\r\n\
         From: <sip:a@{local}>;tag=a\r\nTo: <sip:x@{engine}>\r\nCall-ID: o-{:x}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    if stream.write_all(options.as_bytes()).await.is_err() {
        return None;
    }
    let mut buf = vec![0u8; 4096];
    match timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("answer or close")
    {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(status(&String::from_utf8_lossy(&buf[..n]))),
    }
}

async fn connect_from(ip: &str, engine: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(engine).await.unwrap()
}

#[tokio::test]
async fn tcp_connections_are_capped_per_source_and_in_all() {
    let mut settings = settings();
    settings.limits.tcp_max_connections = 3;
    settings.limits.tcp_max_per_source = 2;
    settings.limits.tcp_connects_per_second = 0;
    let (service, _, _calls) = start(settings).await;
    let engine = service.local_addr();
    let mut first = connect_from("127.0.0.1", engine).await;
    let mut second = connect_from("127.0.0.1", engine).await;
    assert_eq!(options_over(&mut first, engine).await, Some(200));
    assert_eq!(options_over(&mut second, engine).await, Some(200));
    let mut third_same_source = connect_from("127.0.0.1", engine).await;
    assert_eq!(options_over(&mut third_same_source, engine).await, None);
    let mut other_source = connect_from("127.0.0.2", engine).await;
    assert_eq!(options_over(&mut other_source, engine).await, Some(200));
    let mut over_total = connect_from("127.0.0.3", engine).await;
    assert_eq!(options_over(&mut over_total, engine).await, None);
    // A closed connection frees its place (the engine notices the close first).
    drop(first);
    let mut admitted = None;
    for _ in 0..100 {
        let mut again = connect_from("127.0.0.1", engine).await;
        admitted = options_over(&mut again, engine).await;
        if admitted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(admitted, Some(200));
}

#[tokio::test]
async fn idle_tcp_connections_are_closed() {
    let mut settings = settings();
    settings.limits.tcp_idle = Duration::from_secs(1);
    let (service, _, _calls) = start(settings).await;
    let engine = service.local_addr();
    let mut stream = connect_from("127.0.0.1", engine).await;
    assert_eq!(options_over(&mut stream, engine).await, Some(200));
    let mut buf = [0u8; 64];
    let closed = timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the engine closed the idle connection");
    assert!(matches!(closed, Ok(0) | Err(_)));
}
