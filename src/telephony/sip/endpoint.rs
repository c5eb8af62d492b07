//! The SIP endpoint, sans-IO: bytes and `now` in, bytes to send and call events out.
//!
//! It is a user agent only (UAS for trunk calls, UAC toward the trunk); it never forwards a
//! request anywhere, so it cannot be used as an open relay.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::auth::{self, AuthFailure, DigestVerifier};
use super::dialog::{Dialog, DialogState, Peer, PendingOk, Role, contact};
use super::media_policy::media_address_allowed;
use super::message::{ParseError, SipMessage, addr_uri, param, uri_user};
use super::policy::{Admission, SourcePolicy};
use super::sdp::{self, Codec, NegotiatedMedia, SessionDescription};
use super::transaction::{ClientTransaction, ResponseDisposition, ServerTransaction, TimerAction};

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER";

/// Fixed settings of the endpoint.
pub struct EndpointConfig {
    /// Our signalling address, as written in Via and Contact.
    pub local_addr: SocketAddr,
    /// Codecs we can carry, in our preference order (used when we offer).
    pub codecs: Vec<Codec>,
    /// Who may send us INVITEs, and how often.
    pub policy: SourcePolicy,
    /// How many requests outside any dialog (OPTIONS, strays, junk) a source may send per
    /// second; they are answered without keeping state, and beyond the rate dropped.
    pub stray_requests: SourcePolicy,
    /// Server transactions kept at most; new requests past it get a stateless 503.
    pub max_transactions: usize,
    /// Accept SDP naming a private address from a public signalling source (NAT'd trunks
    /// that need it); multicast and unspecified addresses are refused regardless.
    pub allow_private_media: bool,
    /// When set, inbound INVITEs must carry valid digest credentials.
    pub digest: Option<DigestVerifier>,
    /// Our credentials toward the trunk, answered when it challenges our INVITEs.
    pub trunk_credentials: Option<(String, String)>,
}

/// An inbound call waiting for the router: accept it with `accept`, refuse with `reject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub source: SocketAddr,
    pub media: NegotiatedMedia,
    /// X- headers the trunk passed, for the call's parameters.
    pub parameters: Vec<(String, String)>,
}

/// How a call left the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// The peer sent BYE.
    RemoteBye,
    /// The caller cancelled before we answered.
    Cancelled,
    /// The peer never acknowledged our 200 OK or stopped answering requests.
    Unreachable,
}

/// Progress of a call we placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// 180 or 183 arrived; with early media when the 183 carried SDP.
    Ringing {
        early_media: Option<NegotiatedMedia>,
    },
    Answered {
        media: NegotiatedMedia,
    },
    /// A final failure (or 408 when the trunk never answered).
    Failed {
        code: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Incoming(Box<IncomingCall>),
    /// The ACK for our answer arrived: the caller is real, media and the session may start.
    Acknowledged {
        call_id: String,
    },
    /// A re-INVITE changed the media (hold, resume, new address).
    MediaChanged {
        call_id: String,
        media: NegotiatedMedia,
    },
    Ended {
        call_id: String,
        end: CallEnd,
    },
    Outbound {
        call_id: String,
        progress: Progress,
    },
    /// A REFER we sent finished: `true` when the transfer target answered.
    TransferDone {
        call_id: String,
        success: bool,
    },
}

#[derive(Debug)]
pub enum Output {
    Send { peer: Peer, bytes: Vec<u8> },
    Event(Event),
}

/// A call to place through the trunk.
#[derive(Debug, Clone)]
pub struct Dial {
    pub call_id: String,
    pub from_user: String,
    pub to_user: String,
    pub trunk: Peer,
    /// Host part of the Request-URI and To (the trunk's domain or address).
    pub trunk_host: String,
    pub local_media: SocketAddr,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("no such call")]
    UnknownCall,
    #[error("the call is not in a state that allows this")]
    WrongState,
}

/// Server transactions are matched on the top Via branch plus method (ACK matches INVITE).
type ServerKey = (String, String);

pub struct Endpoint {
    config: EndpointConfig,
    server_txs: HashMap<ServerKey, (ServerTransaction, Peer)>,
    /// Client transactions by branch: (transaction, peer, call id, method).
    client_txs: HashMap<String, (ClientTransaction, Peer, String, String)>,
    dialogs: HashMap<String, Dialog>,
    outputs: VecDeque<Output>,
    /// Wall-clock seconds at `epoch`, for digest nonces.
    epoch: Instant,
    epoch_unix: u64,
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_branch() -> String {
    format!("z9hG4bK{}", random_token())
}

impl Endpoint {
    pub fn new(config: EndpointConfig, now: Instant, unix_secs: u64) -> Self {
        Endpoint {
            config,
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            dialogs: HashMap::new(),
            outputs: VecDeque::new(),
            epoch: now,
            epoch_unix: unix_secs,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The media negotiated for a call, once its offer was accepted.
    pub fn media(&self, call_id: &str) -> Option<NegotiatedMedia> {
        self.dialogs.get(call_id).and_then(|d| d.media)
    }

    pub fn active_dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// Where a call's signalling comes from (a NAT'd peer's RTP comes from the same IP).
    pub fn peer_ip(&self, call_id: &str) -> Option<IpAddr> {
        self.dialogs.get(call_id).map(|d| d.peer.addr.ip())
    }

    /// Server and client transactions held right now.
    pub fn transactions(&self) -> usize {
        self.server_txs.len() + self.client_txs.len()
    }

    /// Whether an in-dialog request belongs to a dialog we hold: same Call-ID, both tags, and
    /// the dialog's own peer as the source — knowing the Call-ID alone is not enough.
    fn in_dialog(&self, req: &SipMessage, peer: Peer) -> bool {
        let Some(dialog) = self.dialogs.get(req.call_id()) else {
            return false;
        };
        let tag = |value: &str| param(value, "tag").map(str::to_string);
        let to_tag = tag(req.header("To").unwrap_or_default());
        let from_tag = tag(req.header("From").unwrap_or_default());
        to_tag.is_some()
            && to_tag == tag(&dialog.local_party)
            && from_tag == tag(&dialog.remote_party)
            && peer.addr.ip().to_canonical() == dialog.peer.addr.ip().to_canonical()
    }

    /// Whether a CANCEL names an INVITE still pending from the same source.
    fn cancels_pending_invite(&self, req: &SipMessage, peer: Peer) -> bool {
        let branch = req.top_branch().unwrap_or_default().to_string();
        let pending = self
            .server_txs
            .get(&(branch.clone(), "INVITE".to_string()))
            .is_some_and(|(tx, tx_peer)| !tx.has_final() && tx_peer.addr.ip() == peer.addr.ip());
        pending
            && self.dialogs.get(req.call_id()).is_some_and(|d| {
                d.invite
                    .as_ref()
                    .is_some_and(|i| i.top_branch() == Some(branch.as_str()))
            })
    }

    fn unix(&self, now: Instant) -> u64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs()
    }

    fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.outputs.push_back(Output::Send { peer, bytes });
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// One datagram or one framed stream message from `peer`.
    pub fn handle_bytes(&mut self, bytes: &[u8], peer: Peer, now: Instant) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return; // CRLF keep-alive
        }
        match SipMessage::parse(bytes) {
            Ok(msg) => self.handle_message(msg, peer, now),
            Err(err) => self.answer_malformed(bytes, &err, peer),
        }
    }

    /// A request we could not parse still gets a 400 when it has enough to address one.
    fn answer_malformed(&mut self, bytes: &[u8], err: &ParseError, peer: Peer) {
        let Ok(msg) = SipMessage::parse_unchecked(bytes) else {
            return;
        };
        if msg.method().is_none_or(|m| m == "ACK") || msg.header("Via").is_none() {
            return;
        }
        let reason = format!("Bad Request ({err})");
        let res = SipMessage::response_to(&msg, 400, &reason);
        self.send(peer, res.to_bytes());
    }

    pub fn handle_message(&mut self, msg: SipMessage, peer: Peer, now: Instant) {
        if msg.method().is_some() {
            self.handle_request(msg, peer, now);
        } else {
            self.handle_response(msg, now);
        }
    }

    // ---- server side -------------------------------------------------------------------

    fn handle_request(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        let method = req.method().unwrap_or_default().to_string();
        let branch = req.top_branch().unwrap_or_default().to_string();
        if method == "ACK" {
            self.handle_ack(&req, &branch, peer, now);
            return;
        }
        let key = (branch.clone(), method.clone());
        if let Some((tx, tx_peer)) = self.server_txs.get(&key) {
            // A retransmission: replay our last answer, never re-run the request.
            if let Some(bytes) = tx.retransmission() {
                let (bytes, tx_peer) = (bytes.to_vec(), *tx_peer);
                self.send(tx_peer, bytes);
            }
            return;
        }
        let has_to_tag = param(req.header("To").unwrap_or_default(), "tag").is_some();
        let cseq_ok = req.cseq().is_some_and(|(_, m)| m == method);
        // Only a new call or a request of a dialog we hold keeps a transaction; everything
        // else is answered statelessly, so junk cannot grow the transaction table.
        let stateful = cseq_ok
            && match method.as_str() {
                "INVITE" => !has_to_tag || self.in_dialog(&req, peer),
                "BYE" | "NOTIFY" => self.in_dialog(&req, peer),
                "CANCEL" => self.cancels_pending_invite(&req, peer),
                _ => false,
            };
        if !stateful {
            if self.config.stray_requests.admit(peer.addr.ip(), now) == Admission::Allowed {
                self.answer_stray(&req, &method, cseq_ok, peer, now);
            }
            return;
        }
        if self.server_txs.len() >= self.config.max_transactions {
            let mut res = SipMessage::response_to(&req, 503, "Service Unavailable");
            res.add_header("Retry-After", "5");
            self.respond(&req, res, peer, now);
            return;
        }
        let tx = ServerTransaction::new(method == "INVITE", peer.transport.reliable());
        self.server_txs.insert(key, (tx, peer));
        match method.as_str() {
            "INVITE" if has_to_tag => self.handle_reinvite(req, peer, now),
            "INVITE" => self.handle_invite(req, peer, now),
            "CANCEL" => self.handle_cancel(req, peer, now),
            "BYE" => self.handle_bye(req, peer, now),
            _ => self.handle_notify(req, peer, now),
        }
    }

    /// The stateless answer to a request outside any dialog we hold.
    fn answer_stray(
        &mut self,
        req: &SipMessage,
        method: &str,
        cseq_ok: bool,
        peer: Peer,
        now: Instant,
    ) {
        if !cseq_ok {
            self.respond_once(req, peer, 400, "Bad Request (CSeq method)", now);
            return;
        }
        match method {
            "INVITE" | "BYE" | "NOTIFY" | "CANCEL" => {
                self.respond_once(req, peer, 481, "Call/Transaction Does Not Exist", now);
            }
            "OPTIONS" => {
                let mut res = SipMessage::response_to(req, 200, "OK");
                res.add_header("Allow", ALLOW);
                res.add_header("Accept", "application/sdp");
                self.respond(req, res, peer, now);
            }
            "REFER" => self.respond_once(req, peer, 603, "Decline", now),
            "PRACK" | "UPDATE" | "INFO" | "SUBSCRIBE" | "MESSAGE" | "REGISTER" | "PUBLISH" => {
                let mut res = SipMessage::response_to(req, 405, "Method Not Allowed");
                res.add_header("Allow", ALLOW);
                self.respond(req, res, peer, now);
            }
            _ => self.respond_once(req, peer, 501, "Not Implemented", now),
        }
    }

    /// Sends `res` through the request's server transaction.
    fn respond(&mut self, req: &SipMessage, mut res: SipMessage, peer: Peer, now: Instant) {
        let code = res.status().unwrap_or(500);
        if res
            .header("To")
            .is_some_and(|to| param(to, "tag").is_none())
            && code > 100
        {
            // Every response but 100 carries a To tag (RFC 3261 §8.2.6.2); a dialog's own
            // tag is set by the caller before we get here.
            let to = format!(
                "{};tag={}",
                res.header("To").unwrap_or_default(),
                random_token()
            );
            res.set_header("To", to);
        }
        res.add_header("Server", "boltcall");
        let bytes = res.to_bytes();
        let key = (
            req.top_branch().unwrap_or_default().to_string(),
            req.method().unwrap_or_default().to_string(),
        );
        if let Some((tx, _)) = self.server_txs.get_mut(&key)
            && !tx.respond(code, &bytes, now)
        {
            return;
        }
        self.send(peer, bytes);
    }

    fn respond_once(
        &mut self,
        req: &SipMessage,
        peer: Peer,
        code: u16,
        reason: &str,
        now: Instant,
    ) {
        let res = SipMessage::response_to(req, code, reason);
        self.respond(req, res, peer, now);
    }

    fn handle_invite(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        let call_id = req.call_id().to_string();
        if self.dialogs.contains_key(&call_id) {
            // Same Call-ID, new branch and no To tag: a merged or looped request.
            self.respond_once(&req, peer, 482, "Loop Detected", now);
            return;
        }
        match self.config.policy.admit(peer.addr.ip(), now) {
            Admission::Allowed => {}
            Admission::NotAllowed => {
                self.respond_once(&req, peer, 403, "Forbidden", now);
                return;
            }
            Admission::RateLimited => {
                let mut res = SipMessage::response_to(&req, 503, "Service Unavailable");
                res.add_header("Retry-After", "1");
                self.respond(&req, res, peer, now);
                return;
            }
        }
        let unix = self.unix(now);
        if let Some(verifier) = &mut self.config.digest {
            let request = auth::Request {
                method: "INVITE",
                uri: req.uri().unwrap_or_default(),
                source: peer.addr.ip(),
            };
            match verifier.verify(req.header("Authorization"), &request, unix) {
                Ok(_) => {}
                Err(AuthFailure::Challenge { stale }) => {
                    let challenge = verifier.challenge(unix, peer.addr.ip(), stale);
                    let mut res = SipMessage::response_to(&req, 401, "Unauthorized");
                    res.add_header("WWW-Authenticate", challenge);
                    self.respond(&req, res, peer, now);
                    return;
                }
                Err(AuthFailure::Forbidden) => {
                    self.respond_once(&req, peer, 403, "Forbidden", now);
                    return;
                }
            }
        }
        let to_user = req
            .uri()
            .and_then(uri_user)
            .or_else(|| uri_user(addr_uri(req.header("To").unwrap_or_default())))
            .map(str::to_string);
        let from_user = uri_user(addr_uri(req.header("From").unwrap_or_default()))
            .unwrap_or("anonymous")
            .to_string();
        let Some(to_user) = to_user else {
            self.respond_once(&req, peer, 404, "Not Found", now);
            return;
        };
        let media = match SessionDescription::parse(&req.body)
            .and_then(|sdp| sdp.negotiate(&self.config.codecs))
        {
            Ok(media) => media,
            Err(_) => {
                let mut res = SipMessage::response_to(&req, 488, "Not Acceptable Here");
                res.add_header("Warning", "304 boltcall \"Media type not available\"");
                self.respond(&req, res, peer, now);
                return;
            }
        };
        if !self.media_acceptable(&media, peer) {
            self.refuse_media_address(&req, peer, now);
            return;
        }
        self.respond_once(&req, peer, 100, "Trying", now);
        let parameters = req
            .headers
            .iter()
            .filter(|(n, _)| n.len() > 2 && n[..2].eq_ignore_ascii_case("x-"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let local_tag = random_token();
        let mut dialog = Dialog {
            call_id: call_id.clone(),
            role: Role::Uas,
            state: DialogState::Early,
            peer,
            local_party: format!("{};tag={local_tag}", req.header("To").unwrap_or_default()),
            remote_party: req.header("From").unwrap_or_default().to_string(),
            remote_target: addr_uri(req.header("From").unwrap_or_default()).to_string(),
            local_cseq: rand::random::<u16>() as u32,
            remote_cseq: req.cseq().map_or(0, |(n, _)| n),
            invite: None,
            pending_ok: None,
            local_media: None,
            media: Some(media),
            sdp_session: rand::random::<u32>() as u64,
            sdp_version: 1,
            transfer_pending: false,
            auth_tried: false,
        };
        dialog.learn_target(&req);
        dialog.invite = Some(req);
        self.dialogs.insert(call_id.clone(), dialog);
        self.event(Event::Incoming(Box::new(IncomingCall {
            call_id,
            from: from_user,
            to: to_user,
            source: peer.addr,
            media,
            parameters,
        })));
    }

    /// Our RTP must not go to a multicast or unspecified address, nor — from a public
    /// signalling source — to a private one: a forged INVITE would aim it at a third party.
    fn media_acceptable(&self, media: &NegotiatedMedia, peer: Peer) -> bool {
        media_address_allowed(
            media.remote.ip(),
            peer.addr.ip(),
            self.config.allow_private_media,
        )
    }

    fn refuse_media_address(&mut self, req: &SipMessage, peer: Peer, now: Instant) {
        let mut res = SipMessage::response_to(req, 488, "Not Acceptable Here");
        res.add_header("Warning", "305 boltcall \"Incompatible media address\"");
        self.respond(req, res, peer, now);
    }

    /// Answers a waiting inbound call: 180 then 200 with our SDP answer.
    pub fn accept(
        &mut self,
        call_id: &str,
        local_media: SocketAddr,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let local = self.config.local_addr;
        let dialog = self
            .dialogs
            .get_mut(call_id)
            .ok_or(EndpointError::UnknownCall)?;
        if dialog.role != Role::Uas || dialog.state != DialogState::Early {
            return Err(EndpointError::WrongState);
        }
        let invite = dialog.invite.clone().ok_or(EndpointError::WrongState)?;
        let media = dialog.media.ok_or(EndpointError::WrongState)?;
        dialog.local_media = Some(local_media);
        dialog.state = DialogState::Confirmed;
        let peer = dialog.peer;
        let to = dialog.local_party.clone();
        let body = sdp::answer(&media, local_media, dialog.sdp_session, dialog.sdp_version);
        let mut ringing = SipMessage::response_to(&invite, 180, "Ringing");
        ringing.set_header("To", to.clone());
        ringing.add_header("Contact", contact(local, peer.transport));
        self.respond(&invite, ringing, peer, now);
        let mut ok = SipMessage::response_to(&invite, 200, "OK").with_body("application/sdp", body);
        ok.set_header("To", to);
        ok.add_header("Contact", contact(local, peer.transport));
        ok.add_header("Allow", ALLOW);
        ok.add_header("Server", "boltcall");
        let bytes = ok.to_bytes();
        let key = (
            invite.top_branch().unwrap_or_default().to_string(),
            "INVITE".to_string(),
        );
        if let Some((tx, _)) = self.server_txs.get_mut(&key) {
            tx.respond(200, &bytes, now);
        }
        if let Some(dialog) = self.dialogs.get_mut(call_id) {
            dialog.pending_ok = Some(PendingOk::new(
                bytes.clone(),
                peer.transport.reliable(),
                now,
            ));
        }
        self.send(peer, bytes);
        Ok(())
    }

    /// Refuses a waiting inbound call (404 unknown number, 480 paused agent, 503 overload…).
    pub fn reject(
        &mut self,
        call_id: &str,
        code: u16,
        reason: &str,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let dialog = self
            .dialogs
            .get(call_id)
            .ok_or(EndpointError::UnknownCall)?;
        if dialog.role != Role::Uas || dialog.state != DialogState::Early {
            return Err(EndpointError::WrongState);
        }
        let invite = dialog.invite.clone().ok_or(EndpointError::WrongState)?;
        let (peer, to) = (dialog.peer, dialog.local_party.clone());
        self.dialogs.remove(call_id);
        let mut res = SipMessage::response_to(&invite, code, reason);
        res.set_header("To", to);
        self.respond(&invite, res, peer, now);
        Ok(())
    }

    fn handle_ack(&mut self, req: &SipMessage, branch: &str, peer: Peer, now: Instant) {
        let key = (branch.to_string(), "INVITE".to_string());
        if let Some((tx, tx_peer)) = self.server_txs.get_mut(&key)
            && tx_peer.addr.ip() == peer.addr.ip()
            && tx.ack(now)
        {
            return; // it acknowledged a non-2xx final
        }
        // A 2xx ACK must carry our To tag, which only the real caller saw.
        if !self.in_dialog(req, peer) {
            return;
        }
        let call_id = req.call_id().to_string();
        if let Some(dialog) = self.dialogs.get_mut(&call_id)
            && dialog.pending_ok.take().is_some()
        {
            self.event(Event::Acknowledged { call_id });
        }
    }

    fn handle_reinvite(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        let local = self.config.local_addr;
        let codecs = self.config.codecs.clone();
        let allow_private = self.config.allow_private_media;
        let Some(dialog) = self.dialogs.get_mut(req.call_id()) else {
            self.respond_once(&req, peer, 481, "Call/Transaction Does Not Exist", now);
            return;
        };
        let (Some(local_media), Some(current)) = (dialog.local_media, dialog.media) else {
            self.respond_once(&req, peer, 491, "Request Pending", now);
            return;
        };
        // Keep the codec we already run where the new offer still has it.
        let mut preference = vec![current.codec];
        preference.extend(codecs.into_iter().filter(|c| *c != current.codec));
        let media = SessionDescription::parse(&req.body).and_then(|sdp| sdp.negotiate(&preference));
        let Ok(media) = media else {
            self.respond_once(&req, peer, 488, "Not Acceptable Here", now);
            return;
        };
        if !media_address_allowed(media.remote.ip(), peer.addr.ip(), allow_private) {
            self.refuse_media_address(&req, peer, now);
            return;
        }
        let Some(dialog) = self.dialogs.get_mut(req.call_id()) else {
            return;
        };
        dialog.media = Some(media);
        dialog.sdp_version += 1;
        dialog.remote_cseq = req.cseq().map_or(dialog.remote_cseq, |(n, _)| n);
        dialog.learn_target(&req);
        let body = sdp::answer(&media, local_media, dialog.sdp_session, dialog.sdp_version);
        let call_id = dialog.call_id.clone();
        let reliable = dialog.peer.transport.reliable();
        let mut ok = SipMessage::response_to(&req, 200, "OK").with_body("application/sdp", body);
        ok.add_header("Contact", contact(local, peer.transport));
        ok.add_header("Server", "boltcall");
        let bytes = ok.to_bytes();
        if let Some(d) = self.dialogs.get_mut(&call_id) {
            d.pending_ok = Some(PendingOk::new(bytes.clone(), reliable, now));
        }
        let key = (
            req.top_branch().unwrap_or_default().to_string(),
            "INVITE".to_string(),
        );
        if let Some((tx, _)) = self.server_txs.get_mut(&key) {
            tx.respond(200, &bytes, now);
        }
        self.send(peer, bytes);
        self.event(Event::MediaChanged { call_id, media });
    }

    /// A CANCEL already matched to its pending INVITE (`cancels_pending_invite`).
    fn handle_cancel(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        self.respond_once(&req, peer, 200, "OK", now);
        let call_id = req.call_id().to_string();
        if let Some(dialog) = self.dialogs.remove(&call_id)
            && let Some(invite) = dialog.invite
        {
            let mut res = SipMessage::response_to(&invite, 487, "Request Terminated");
            res.set_header("To", dialog.local_party);
            self.respond(&invite, res, dialog.peer, now);
            self.event(Event::Ended {
                call_id,
                end: CallEnd::Cancelled,
            });
        }
    }

    fn handle_bye(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        let call_id = req.call_id().to_string();
        if self.dialogs.remove(&call_id).is_none() {
            self.respond_once(&req, peer, 481, "Call/Transaction Does Not Exist", now);
            return;
        }
        self.respond_once(&req, peer, 200, "OK", now);
        self.event(Event::Ended {
            call_id,
            end: CallEnd::RemoteBye,
        });
    }

    /// NOTIFY of a REFER we sent: the sipfrag body carries the transfer's progress.
    fn handle_notify(&mut self, req: SipMessage, peer: Peer, now: Instant) {
        let call_id = req.call_id().to_string();
        let Some(dialog) = self.dialogs.get_mut(&call_id) else {
            self.respond_once(&req, peer, 481, "Call/Transaction Does Not Exist", now);
            return;
        };
        let waiting = dialog.transfer_pending;
        let status = std::str::from_utf8(&req.body)
            .ok()
            .and_then(|b| b.lines().next())
            .and_then(|line| line.strip_prefix("SIP/2.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok());
        self.respond_once(&req, peer, 200, "OK", now);
        match status {
            Some(code) if waiting && code >= 200 => {
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.transfer_pending = false;
                }
                let success = code < 300;
                self.event(Event::TransferDone {
                    call_id: call_id.clone(),
                    success,
                });
                if success {
                    // The caller now talks to the target: our leg is done.
                    let _ = self.hangup(&call_id, now);
                }
            }
            _ => {}
        }
    }

    // ---- client side -------------------------------------------------------------------

    fn start_client_tx(
        &mut self,
        call_id: &str,
        method: &str,
        peer: Peer,
        msg: &SipMessage,
        now: Instant,
    ) {
        let bytes = msg.to_bytes();
        let branch = msg.top_branch().unwrap_or_default().to_string();
        let tx = ClientTransaction::new(
            method == "INVITE",
            peer.transport.reliable(),
            bytes.clone(),
            now,
        );
        self.client_txs
            .insert(branch, (tx, peer, call_id.to_string(), method.to_string()));
        self.send(peer, bytes);
    }

    /// Places a call through the trunk.
    pub fn dial(&mut self, dial: Dial, now: Instant) {
        let local = self.config.local_addr;
        let local_tag = random_token();
        let target = format!("sip:{}@{}", dial.to_user, dial.trunk_host);
        let mut dialog = Dialog {
            call_id: dial.call_id.clone(),
            role: Role::Uac,
            state: DialogState::Early,
            peer: dial.trunk,
            local_party: format!("<sip:{}@{}>;tag={local_tag}", dial.from_user, local.ip()),
            remote_party: format!("<{target}>"),
            remote_target: target,
            local_cseq: 0,
            remote_cseq: 0,
            invite: None,
            pending_ok: None,
            local_media: Some(dial.local_media),
            media: None,
            sdp_session: rand::random::<u32>() as u64,
            sdp_version: 1,
            transfer_pending: false,
            auth_tried: false,
        };
        let invite = self.build_invite(&mut dialog, None);
        self.dialogs.insert(dial.call_id.clone(), dialog);
        self.start_client_tx(&dial.call_id, "INVITE", dial.trunk, &invite, now);
    }

    fn build_invite(
        &self,
        dialog: &mut Dialog,
        authorization: Option<(&str, String)>,
    ) -> SipMessage {
        let local = self.config.local_addr;
        let mut invite = dialog.request("INVITE", local, &new_branch());
        if let Some((header, value)) = authorization {
            invite.add_header(header, value);
        }
        invite.add_header("Allow", ALLOW);
        let body = sdp::offer(
            &self.config.codecs,
            dialog.local_media.unwrap_or(local),
            dialog.sdp_session,
        );
        let invite = invite.with_body("application/sdp", body);
        dialog.invite = Some(invite.clone());
        invite
    }

    fn handle_response(&mut self, res: SipMessage, now: Instant) {
        let Some(branch) = res.top_branch().map(str::to_string) else {
            return;
        };
        let code = res.status().unwrap_or(500);
        // A CANCEL shares its INVITE's branch; its transaction is keyed apart.
        let branch = match res.cseq() {
            Some((_, "CANCEL")) => format!("{branch}-cancel"),
            _ => branch,
        };
        let Some((tx, peer, call_id, method)) = self.client_txs.get_mut(&branch) else {
            // A 2xx retransmission after the INVITE transaction ended: ACK it again.
            if code < 300 && res.cseq().is_some_and(|(_, m)| m == "INVITE") {
                self.reack(&res);
            }
            return;
        };
        if res.cseq().is_none_or(|(_, m)| m != method.as_str()) {
            return;
        }
        match tx.on_response(code, now) {
            ResponseDisposition::Absorb(ack) => {
                if let Some(ack) = ack {
                    let peer = *peer;
                    self.send(peer, ack);
                }
                return;
            }
            ResponseDisposition::Deliver => {}
        }
        let (peer, call_id, method) = (*peer, call_id.clone(), method.clone());
        if method == "INVITE" && code >= 300 {
            // The transaction ACKs non-2xx finals itself, with the INVITE's branch.
            let ack = self.non_2xx_ack(&res, &branch);
            if let Some((tx, ..)) = self.client_txs.get_mut(&branch) {
                tx.set_ack(ack.clone());
            }
            self.send(peer, ack);
        }
        match method.as_str() {
            "INVITE" => self.invite_response(&call_id, res, code, now),
            "REFER" if code >= 300 => {
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.transfer_pending = false;
                }
                self.event(Event::TransferDone {
                    call_id,
                    success: false,
                });
            }
            _ => {}
        }
    }

    fn non_2xx_ack(&self, res: &SipMessage, branch: &str) -> Vec<u8> {
        let invite = self
            .dialogs
            .get(res.call_id())
            .and_then(|d| d.invite.as_ref());
        let uri = invite.and_then(|i| i.uri()).unwrap_or("sip:invalid");
        let mut ack = SipMessage::request("ACK", uri);
        if let Some(via) = invite.and_then(|i| i.header("Via")) {
            ack.add_header("Via", via);
        } else {
            ack.add_header(
                "Via",
                format!("SIP/2.0/UDP {};branch={branch}", self.config.local_addr),
            );
        }
        ack.add_header("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            ack.add_header(name, res.header(name).unwrap_or_default());
        }
        let seq = res.cseq().map_or(1, |(n, _)| n);
        ack.add_header("CSeq", format!("{seq} ACK"));
        ack.to_bytes()
    }

    fn reack(&mut self, res: &SipMessage) {
        let local = self.config.local_addr;
        if let Some(dialog) = self.dialogs.get_mut(res.call_id())
            && dialog.role == Role::Uac
            && dialog.state == DialogState::Confirmed
        {
            let ack = dialog.request("ACK", local, &new_branch());
            let peer = dialog.peer;
            self.send(peer, ack.to_bytes());
        }
    }

    fn invite_response(&mut self, call_id: &str, res: SipMessage, code: u16, now: Instant) {
        let local = self.config.local_addr;
        let codecs = self.config.codecs.clone();
        let credentials = self.config.trunk_credentials.clone();
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            return;
        };
        match code {
            100 => {}
            101..=199 => {
                let early_media = SessionDescription::parse(&res.body)
                    .and_then(|s| s.negotiate(&codecs))
                    .ok();
                if early_media.is_some() {
                    dialog.media = early_media;
                }
                self.event(Event::Outbound {
                    call_id: call_id.to_string(),
                    progress: Progress::Ringing { early_media },
                });
            }
            200..=299 => {
                dialog.remote_party = res.header("To").unwrap_or_default().to_string();
                dialog.learn_target(&res);
                dialog.state = DialogState::Confirmed;
                let ack = dialog.request("ACK", local, &new_branch());
                let peer = dialog.peer;
                let media = SessionDescription::parse(&res.body)
                    .and_then(|s| s.negotiate(&codecs))
                    .ok()
                    .or(dialog.media);
                self.send(peer, ack.to_bytes());
                match media {
                    Some(media) => {
                        if let Some(d) = self.dialogs.get_mut(call_id) {
                            d.media = Some(media);
                        }
                        self.event(Event::Outbound {
                            call_id: call_id.to_string(),
                            progress: Progress::Answered { media },
                        });
                    }
                    None => {
                        // Answered without usable media: hang up at once.
                        let _ = self.hangup(call_id, now);
                        self.event(Event::Outbound {
                            call_id: call_id.to_string(),
                            progress: Progress::Failed { code: 488 },
                        });
                    }
                }
            }
            401 | 407 if !dialog.auth_tried && credentials.is_some() => {
                let (challenge_name, answer_name) = if code == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let (user, password) = credentials.unwrap_or_default();
                let uri = dialog.remote_target.clone();
                let answer = res.header(challenge_name).and_then(|challenge| {
                    auth::authorize(challenge, &user, &password, "INVITE", &uri, &random_token())
                });
                let Some(answer) = answer else {
                    self.dialogs.remove(call_id);
                    self.event(Event::Outbound {
                        call_id: call_id.to_string(),
                        progress: Progress::Failed { code },
                    });
                    return;
                };
                let mut dialog = match self.dialogs.remove(call_id) {
                    Some(d) => d,
                    None => return,
                };
                dialog.auth_tried = true;
                let invite = self.build_invite(&mut dialog, Some((answer_name, answer)));
                let peer = dialog.peer;
                self.dialogs.insert(call_id.to_string(), dialog);
                self.start_client_tx(call_id, "INVITE", peer, &invite, now);
            }
            _ => {
                self.dialogs.remove(call_id);
                self.event(Event::Outbound {
                    call_id: call_id.to_string(),
                    progress: Progress::Failed { code },
                });
            }
        }
    }

    /// Ends a call from our side: BYE when confirmed, CANCEL while our INVITE rings, 480 for
    /// an inbound call not yet answered.
    pub fn hangup(&mut self, call_id: &str, now: Instant) -> Result<(), EndpointError> {
        let local = self.config.local_addr;
        let dialog = self
            .dialogs
            .get_mut(call_id)
            .ok_or(EndpointError::UnknownCall)?;
        match (dialog.role, dialog.state) {
            (Role::Uas, DialogState::Early) => {
                self.reject(call_id, 480, "Temporarily Unavailable", now)
            }
            (Role::Uac, DialogState::Early) => {
                let Some(invite) = dialog.invite.clone() else {
                    return Err(EndpointError::WrongState);
                };
                let peer = dialog.peer;
                let mut cancel = SipMessage::request("CANCEL", invite.uri().unwrap_or_default());
                for name in ["Via", "From", "To", "Call-ID"] {
                    cancel.add_header(name, invite.header(name).unwrap_or_default());
                }
                cancel.add_header("Max-Forwards", "70");
                let seq = invite.cseq().map_or(1, |(n, _)| n);
                cancel.add_header("CSeq", format!("{seq} CANCEL"));
                // CANCEL shares the INVITE's branch, so its transaction is keyed apart.
                let bytes = cancel.to_bytes();
                let branch = format!("{}-cancel", invite.top_branch().unwrap_or_default());
                let tx =
                    ClientTransaction::new(false, peer.transport.reliable(), bytes.clone(), now);
                self.client_txs
                    .insert(branch, (tx, peer, call_id.to_string(), "CANCEL".into()));
                self.send(peer, bytes);
                // The 487 that follows is ACKed by the INVITE transaction; the dialog stays
                // until then so the failure is reported.
                Ok(())
            }
            (_, DialogState::Confirmed) => {
                let bye = dialog.request("BYE", local, &new_branch());
                let peer = dialog.peer;
                self.dialogs.remove(call_id);
                self.start_client_tx(call_id, "BYE", peer, &bye, now);
                Ok(())
            }
        }
    }

    /// Blind transfer: REFER the peer to `target` (a number or a SIP URI).
    pub fn transfer(
        &mut self,
        call_id: &str,
        target: &str,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let local = self.config.local_addr;
        let dialog = self
            .dialogs
            .get_mut(call_id)
            .ok_or(EndpointError::UnknownCall)?;
        if dialog.state != DialogState::Confirmed {
            return Err(EndpointError::WrongState);
        }
        let refer_to = if target.starts_with("sip:") || target.starts_with("sips:") {
            target.to_string()
        } else {
            format!("sip:{target}@{}", dialog.peer.addr)
        };
        let mut refer = dialog.request("REFER", local, &new_branch());
        refer.add_header("Refer-To", format!("<{refer_to}>"));
        refer.add_header("Referred-By", format!("<sip:boltcall@{local}>"));
        dialog.transfer_pending = true;
        let peer = dialog.peer;
        self.start_client_tx(call_id, "REFER", peer, &refer, now);
        Ok(())
    }

    // ---- timers ------------------------------------------------------------------------

    pub fn poll_timeout(&self) -> Option<Instant> {
        let server = self.server_txs.values().filter_map(|(tx, _)| tx.deadline());
        let client = self
            .client_txs
            .values()
            .filter_map(|(tx, ..)| tx.deadline());
        let oks = self
            .dialogs
            .values()
            .filter_map(|d| d.pending_ok.as_ref().map(PendingOk::deadline));
        server.chain(client).chain(oks).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut resend = Vec::new();
        self.server_txs.retain(|_, (tx, peer)| {
            if tx.deadline().is_none_or(|d| d > now) {
                return !tx.is_terminated();
            }
            match tx.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    resend.push((*peer, bytes));
                    true
                }
                TimerAction::Nothing => true,
                TimerAction::TimedOut | TimerAction::Terminated => false,
            }
        });
        let mut failed = Vec::new();
        self.client_txs.retain(|_, (tx, peer, call_id, method)| {
            if tx.deadline().is_none_or(|d| d > now) {
                return !tx.is_terminated();
            }
            match tx.on_timer(now) {
                TimerAction::Retransmit(bytes) => {
                    resend.push((*peer, bytes));
                    true
                }
                TimerAction::Nothing => true,
                TimerAction::TimedOut => {
                    failed.push((call_id.clone(), method.clone()));
                    false
                }
                TimerAction::Terminated => false,
            }
        });
        let mut unacked = Vec::new();
        for dialog in self.dialogs.values_mut() {
            if let Some(ok) = &mut dialog.pending_ok {
                if now >= ok.give_up_at {
                    unacked.push(dialog.call_id.clone());
                } else if ok.retransmit_due(now) {
                    resend.push((dialog.peer, ok.bytes.clone()));
                }
            }
        }
        for (peer, bytes) in resend {
            self.send(peer, bytes);
        }
        for call_id in unacked {
            // No ACK for our 200 OK: the caller is gone. BYE and report (RFC 3261 §13.3.1.4).
            if let Some(d) = self.dialogs.get_mut(&call_id) {
                d.pending_ok = None;
            }
            let _ = self.hangup(&call_id, now);
            self.event(Event::Ended {
                call_id,
                end: CallEnd::Unreachable,
            });
        }
        for (call_id, method) in failed {
            match method.as_str() {
                "INVITE" if self.dialogs.remove(&call_id).is_some() => {
                    self.event(Event::Outbound {
                        call_id,
                        progress: Progress::Failed { code: 408 },
                    });
                }
                "REFER" => self.event(Event::TransferDone {
                    call_id,
                    success: false,
                }),
                "BYE" | "CANCEL" | "INVITE" => {}
                _ => {}
            }
        }
    }
}
