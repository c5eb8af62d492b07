//! A SIP dialog (RFC 3261 §12): the state both ends share for one call, and the in-dialog
//! requests built from it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::message::{SipMessage, addr_uri};
use super::sdp::NegotiatedMedia;
use super::transaction::{T1, T2};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    pub fn reliable(self) -> bool {
        self == Transport::Tcp
    }
}

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We answered the call.
    Uas,
    /// We placed it.
    Uac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Inbound: waiting for the router's decision. Outbound: INVITE sent, no final answer.
    Early,
    /// 200 OK sent/received.
    Confirmed,
}

/// A 2xx to INVITE we keep retransmitting until the ACK arrives (RFC 3261 §13.3.1.4).
#[derive(Debug)]
pub struct PendingOk {
    pub bytes: Vec<u8>,
    pub retransmit_at: Option<Instant>,
    pub interval: Duration,
    pub give_up_at: Instant,
}

impl PendingOk {
    pub fn new(bytes: Vec<u8>, reliable: bool, now: Instant) -> Self {
        PendingOk {
            bytes,
            retransmit_at: (!reliable).then_some(now + T1),
            interval: T1,
            give_up_at: now + 64 * T1,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.retransmit_at
            .map_or(self.give_up_at, |r| r.min(self.give_up_at))
    }

    /// Advances the retransmission timer; returns true when it is time to send again.
    pub fn retransmit_due(&mut self, now: Instant) -> bool {
        match self.retransmit_at {
            Some(at) if now >= at => {
                self.interval = (self.interval * 2).min(T2);
                self.retransmit_at = Some(now + self.interval);
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct Dialog {
    pub call_id: String,
    pub role: Role,
    pub state: DialogState,
    pub peer: Peer,
    /// Our From (UAC) / To (UAS) header value, with our tag.
    pub local_party: String,
    /// The peer's header value, with its tag once known.
    pub remote_party: String,
    /// Where in-dialog requests are addressed (the peer's Contact).
    pub remote_target: String,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// Inbound: the INVITE we are answering, kept to build its responses.
    pub invite: Option<SipMessage>,
    pub pending_ok: Option<PendingOk>,
    /// Our RTP address and the negotiated media, once known.
    pub local_media: Option<SocketAddr>,
    pub media: Option<NegotiatedMedia>,
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// A REFER we sent is waiting for its outcome.
    pub transfer_pending: bool,
    /// Outbound: credentials were already tried once for this INVITE.
    pub auth_tried: bool,
}

impl Dialog {
    /// Builds an in-dialog request (BYE, REFER, re-INVITE, ACK for 2xx).
    pub fn request(&mut self, method: &str, local: SocketAddr, branch: &str) -> SipMessage {
        let mut msg = SipMessage::request(method, &self.remote_target);
        msg.add_header(
            "Via",
            format!(
                "SIP/2.0/{} {local};branch={branch};rport",
                self.peer.transport.as_str()
            ),
        );
        msg.add_header("Max-Forwards", "70");
        msg.add_header("From", self.local_party.clone());
        msg.add_header("To", self.remote_party.clone());
        msg.add_header("Call-ID", self.call_id.clone());
        if method != "ACK" {
            self.local_cseq += 1;
        }
        msg.add_header("CSeq", format!("{} {method}", self.local_cseq));
        msg.add_header("Contact", contact(local, self.peer.transport));
        msg
    }

    /// Takes the peer's Contact as the target of later requests, when it sent one.
    pub fn learn_target(&mut self, msg: &SipMessage) {
        if let Some(contact) = msg.header("Contact") {
            let uri = addr_uri(contact);
            if uri.starts_with("sip:") || uri.starts_with("sips:") {
                self.remote_target = uri.to_string();
            }
        }
    }
}

/// Our Contact header value.
pub fn contact(local: SocketAddr, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:boltcall@{local}>"),
        Transport::Tcp => format!("<sip:boltcall@{local};transport=tcp>"),
    }
}
