//! One load call as a SIP UAC over the shared UDP socket: INVITE (answering a digest
//! challenge once), ACK, media for the hold time, BYE. A dispatcher reads the socket and hands
//! each message to its call by Call-ID; the engine's own BYE is answered by the call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boltcall::telephony::sip::message::{SipMessage, StartLine};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::sleep_until;

use crate::digest::NonceCounts;
use crate::rtp_plane::{MediaPlane, Slot};
use crate::sip_wire::{Dialog, answer_media, credentials, is_stale, new_branch, sdp_offer};
use crate::speech::Ear;

/// RFC 3261 timer T1 (first retransmission), T2 (its cap) and 64·T1 (give up).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMEOUT: Duration = Duration::from_secs(32);
/// Challenges a call answers at most: the first, then stale nonces (a busy second).
const MAX_CHALLENGES: usize = 3;

pub struct Settings {
    pub target: SocketAddr,
    /// The agents' numbers; call n dials the n-th in turn. Never empty.
    pub to: Vec<String>,
    pub hold: Duration,
    pub credentials: Option<(String, String)>,
}

/// What every call shares: the SIP socket, the route from Call-ID to call, the media plane.
pub struct Shared {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub settings: Settings,
    pub media: Arc<MediaPlane>,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<SipMessage>>>,
    nonces: NonceCounts,
    active: AtomicUsize,
    pub peak: AtomicUsize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Our BYE after the hold time, answered 200.
    OurBye,
    /// The engine hung up first.
    EngineBye,
}

/// What one call saw.
pub struct CallReport {
    /// The answered INVITE (the authenticated one after a challenge) → its 200 OK.
    pub invite_to_ok: Option<Duration>,
    pub media: Option<Ear>,
    /// How the call ended, or why it failed.
    pub result: Result<Ending, String>,
}

impl Shared {
    pub async fn bind(settings: Settings, media: Arc<MediaPlane>) -> std::io::Result<Arc<Shared>> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        Ok(Arc::new(Shared {
            local: socket.local_addr()?,
            socket,
            settings,
            media,
            calls: Mutex::new(HashMap::new()),
            nonces: NonceCounts::default(),
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }))
    }

    async fn send(&self, msg: &SipMessage, to: SocketAddr) {
        // UDP: a lost send is what retransmissions are for.
        let _ = self.socket.send_to(&msg.to_bytes(), to).await;
    }

    fn route(&self, call_id: &str) -> Option<mpsc::UnboundedSender<SipMessage>> {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get(call_id).cloned()
    }

    fn set_route(&self, call_id: &str, tx: Option<mpsc::UnboundedSender<SipMessage>>) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match tx {
            Some(tx) => calls.insert(call_id.to_string(), tx),
            None => calls.remove(call_id),
        };
    }
}

/// Reads the SIP socket forever: messages go to their call; requests for no call we hold
/// get 481 (OPTIONS 200), stray responses are dropped.
pub async fn dispatch(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_536];
    while let Ok((len, from)) = shared.socket.recv_from(&mut buf).await {
        let Ok(msg) = SipMessage::parse(&buf[..len]) else {
            continue;
        };
        if let Some(tx) = shared.route(msg.call_id())
            && tx.send(msg.clone()).is_ok()
        {
            continue;
        }
        match msg.method() {
            Some("ACK") | None => {}
            Some("OPTIONS") => {
                shared
                    .send(&SipMessage::response_to(&msg, 200, "OK"), from)
                    .await
            }
            Some(_) => {
                let res = SipMessage::response_to(&msg, 481, "Call/Transaction Does Not Exist");
                shared.send(&res, from).await;
            }
        }
    }
}

/// Places call number `n` and reports what it saw.
pub async fn place_call(shared: Arc<Shared>, n: usize) -> CallReport {
    let mut report = CallReport {
        invite_to_ok: None,
        media: None,
        result: Err("no RTP socket".into()),
    };
    let Ok(slot) = shared.media.reserve().await else {
        return report;
    };
    let to = &shared.settings.to[n % shared.settings.to.len()];
    let dialog = Dialog::new(n, shared.local, shared.settings.target, to);
    let (tx, rx) = mpsc::unbounded_channel();
    shared.set_route(&dialog.call_id, Some(tx));
    let call_id = dialog.call_id.clone();
    report.result = Call {
        shared: &shared,
        dialog,
        rx,
        cseq: 1,
    }
    .run(n, &slot, &mut report.invite_to_ok)
    .await;
    shared.set_route(&call_id, None);
    report.media = shared.media.finish(slot);
    report
}

struct Call<'a> {
    shared: &'a Shared,
    dialog: Dialog,
    rx: mpsc::UnboundedReceiver<SipMessage>,
    cseq: u32,
}

/// The next message, or `None` once `deadline` passes.
async fn recv_until(
    rx: &mut mpsc::UnboundedReceiver<SipMessage>,
    deadline: tokio::time::Instant,
) -> Option<SipMessage> {
    tokio::select! {
        msg = rx.recv() => msg,
        _ = sleep_until(deadline) => None,
    }
}

impl Call<'_> {
    async fn run(
        &mut self,
        n: usize,
        slot: &Arc<Slot>,
        invite_to_ok: &mut Option<Duration>,
    ) -> Result<Ending, String> {
        let (ok, latency) = self.invite(&sdp_offer(slot.addr, n as u64)).await?;
        *invite_to_ok = Some(latency);
        let answered = Instant::now();
        self.dialog.confirm(&ok);
        let target = self.shared.settings.target;
        self.shared.send(&self.dialog.ack(self.cseq), target).await;
        let media = match answer_media(&ok.body) {
            Ok(media) => media,
            Err(e) => {
                let _ = self.bye().await;
                return Err(format!("unusable SDP answer: {e}"));
            }
        };
        self.shared
            .media
            .start(slot, media.remote, media.payload_type, answered);
        let active = self.shared.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.peak.fetch_max(active, Ordering::Relaxed);
        let ending = self.hold(answered + self.shared.settings.hold).await;
        let result = match ending {
            Some(ending) => Ok(ending),
            None => self.bye().await,
        };
        self.shared.active.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Sends the INVITE and waits for its final answer, retransmitting until a provisional
    /// (timer A) and answering one 401/407 when we have credentials. Returns the 200 and
    /// the time from the INVITE it answered.
    async fn invite(&mut self, sdp: &[u8]) -> Result<(SipMessage, Duration), String> {
        let target = self.shared.settings.target;
        let mut creds = None;
        let mut challenges = 0;
        loop {
            let branch = new_branch();
            let invite = self.dialog.invite(self.cseq, &branch, sdp, creds.as_ref());
            let sent = Instant::now();
            let give_up = tokio::time::Instant::now() + TIMEOUT;
            let mut interval = Some(T1);
            let mut resend_at = tokio::time::Instant::now() + T1;
            self.shared.send(&invite, target).await;
            let res = loop {
                let wake = if interval.is_some() {
                    resend_at.min(give_up)
                } else {
                    give_up
                };
                let Some(msg) = recv_until(&mut self.rx, wake).await else {
                    if tokio::time::Instant::now() >= give_up {
                        return Err("INVITE timed out".into());
                    }
                    if let Some(every) = interval {
                        self.shared.send(&invite, target).await;
                        let next = (every * 2).min(T2);
                        interval = Some(next);
                        resend_at += next;
                    }
                    continue;
                };
                if msg.method().is_some() {
                    self.answer_request(&msg).await;
                    if msg.method() == Some("BYE") {
                        return Err("engine BYE before the answer".into());
                    }
                    continue;
                }
                match msg.cseq() {
                    Some((n, "INVITE")) if n == self.cseq => {}
                    _ => continue,
                }
                match msg.status().unwrap_or(0) {
                    100..=199 => interval = None,
                    _ => break msg,
                }
            };
            let code = res.status().unwrap_or(0);
            if (200..300).contains(&code) {
                return Ok((res, sent.elapsed()));
            }
            self.shared
                .send(&self.dialog.ack_failure(self.cseq, &branch, &res), target)
                .await;
            let reason = match &res.start {
                StartLine::Response { reason, .. } => reason.as_str(),
                StartLine::Request { .. } => "",
            };
            let answerable = matches!(code, 401 | 407)
                && challenges < MAX_CHALLENGES
                && (creds.is_none() || is_stale(&res));
            match &self.shared.settings.credentials {
                Some((user, password)) if answerable => {
                    let shared = self.shared;
                    creds = credentials(
                        &res,
                        &shared.nonces,
                        (user.as_str(), password.as_str()),
                        &self.dialog.uri,
                    );
                    if creds.is_none() {
                        return Err(format!("{code} {reason} (challenge not answerable)"));
                    }
                    challenges += 1;
                    self.cseq += 1;
                }
                _ => return Err(format!("{code} {reason}")),
            }
        }
    }

    /// Holds the call until `until`, re-ACKing retransmitted 200s. `Some` when the engine
    /// hung up first.
    async fn hold(&mut self, until: Instant) -> Option<Ending> {
        let until = tokio::time::Instant::from_std(until);
        while let Some(msg) = recv_until(&mut self.rx, until).await {
            if msg.method() == Some("BYE") {
                self.answer_request(&msg).await;
                return Some(Ending::EngineBye);
            }
            self.handle_in_dialog(&msg).await;
        }
        None
    }

    /// Sends BYE and waits for its final answer, retransmitting (timer E).
    async fn bye(&mut self) -> Result<Ending, String> {
        self.cseq += 1;
        let target = self.shared.settings.target;
        let bye = self.dialog.bye(self.cseq, &new_branch());
        let give_up = tokio::time::Instant::now() + TIMEOUT;
        let mut every = T1;
        let mut resend_at = tokio::time::Instant::now() + every;
        self.shared.send(&bye, target).await;
        loop {
            let Some(msg) = recv_until(&mut self.rx, resend_at.min(give_up)).await else {
                if tokio::time::Instant::now() >= give_up {
                    return Err("BYE timed out".into());
                }
                self.shared.send(&bye, target).await;
                every = (every * 2).min(T2);
                resend_at += every;
                continue;
            };
            if msg.method() == Some("BYE") {
                // Both hung up at once: theirs is answered, ours still completes.
                self.answer_request(&msg).await;
                continue;
            }
            match (msg.cseq(), msg.status()) {
                (Some((n, "BYE")), Some(code)) if n == self.cseq && code >= 200 => {
                    return if code < 300 {
                        Ok(Ending::OurBye)
                    } else {
                        Err(format!("BYE answered {code}"))
                    };
                }
                _ => self.handle_in_dialog(&msg).await,
            }
        }
    }

    /// A retransmitted 200 to our INVITE means our ACK was lost: ACK again.
    async fn handle_in_dialog(&mut self, msg: &SipMessage) {
        if msg.method().is_some() {
            self.answer_request(msg).await;
        } else if matches!(msg.cseq(), Some((_, "INVITE")))
            && msg.status().is_some_and(|c| (200..300).contains(&c))
        {
            let ack = self.dialog.ack(msg.cseq().map_or(self.cseq, |(n, _)| n));
            self.shared.send(&ack, self.shared.settings.target).await;
        }
    }

    /// Requests from the engine: BYE and OPTIONS get 200, anything else 501.
    async fn answer_request(&self, req: &SipMessage) {
        let res = match req.method() {
            Some("ACK") => return,
            Some("BYE" | "OPTIONS") => SipMessage::response_to(req, 200, "OK"),
            _ => SipMessage::response_to(req, 501, "Not Implemented"),
        };
        self.shared.send(&res, self.shared.settings.target).await;
    }
}
