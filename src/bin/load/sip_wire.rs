//! The SIP messages a load caller sends (RFC 3261 UAC over UDP), built on the engine's own
//! message type, SDP parser and digest code, so the tool speaks exactly what the engine
//! parses and the headers a dialog is matched on (Call-ID, both tags, CSeq, Via branch) are
//! written in one place.

use std::net::SocketAddr;

use boltcall::telephony::sip::message::{SipMessage, addr_uri};
use boltcall::telephony::sip::sdp::{self, Codec, NegotiatedMedia, SdpError, SessionDescription};

use crate::digest::NonceCounts;

/// A new transaction's Via branch, with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

/// One call's dialog as its caller sees it.
pub struct Dialog {
    /// Our SIP socket, written in Via and Contact.
    local: SocketAddr,
    /// The INVITE's Request-URI (`sip:+1415…@engine`); the digest `uri` must be this.
    pub uri: String,
    from: String,
    /// The To header: the engine's tag is added from its answer.
    to: String,
    pub call_id: String,
    /// The engine's Contact from its 200: where in-dialog requests go.
    remote_target: Option<String>,
}

impl Dialog {
    pub fn new(n: usize, local: SocketAddr, target: SocketAddr, to_user: &str) -> Dialog {
        let uri = format!("sip:{to_user}@{target}");
        Dialog {
            local,
            from: format!(
                "<sip:+1555{:07}@{local}>;tag={:x}",
                n % 10_000_000,
                rand::random::<u64>()
            ),
            to: format!("<{uri}>"),
            uri,
            call_id: format!("sipload-{n}-{:x}@{}", rand::random::<u64>(), local.ip()),
            remote_target: None,
        }
    }

    fn request(&self, method: &str, uri: &str, branch: &str, cseq: u32) -> SipMessage {
        let mut msg = SipMessage::request(method, uri);
        msg.add_header(
            "Via",
            format!("SIP/2.0/UDP {};branch={branch};rport", self.local),
        );
        msg.add_header("Max-Forwards", "70");
        msg.add_header("From", self.from.clone());
        msg.add_header("To", self.to.clone());
        msg.add_header("Call-ID", self.call_id.clone());
        // ACK carries its INVITE's number (RFC 3261 §17.1.1.3, §13.2.2.4).
        msg.add_header("CSeq", format!("{cseq} {method}"));
        msg.add_header("Contact", format!("<sip:load@{}>", self.local));
        msg.add_header("User-Agent", "boltcall-sip-load");
        msg
    }

    /// An INVITE offering `sdp`, with digest credentials when answering a challenge.
    pub fn invite(
        &self,
        cseq: u32,
        branch: &str,
        sdp: &[u8],
        credentials: Option<&(&'static str, String)>,
    ) -> SipMessage {
        let mut msg = self.request("INVITE", &self.uri, branch, cseq);
        if let Some((name, value)) = credentials {
            msg.add_header(name, value.clone());
        }
        msg.with_body("application/sdp", sdp.to_vec())
    }

    /// The ACK of a non-2xx final: part of the INVITE's transaction, so its branch and
    /// Request-URI, and the To (with tag) of the response.
    pub fn ack_failure(&self, cseq: u32, branch: &str, response: &SipMessage) -> SipMessage {
        let mut msg = self.request("ACK", &self.uri, branch, cseq);
        msg.set_header("To", response.header("To").unwrap_or_default());
        msg
    }

    /// Takes the engine's To tag and Contact from its 200: the dialog is confirmed.
    pub fn confirm(&mut self, ok: &SipMessage) {
        if let Some(to) = ok.header("To") {
            self.to = to.to_string();
        }
        self.remote_target = ok.header("Contact").map(|c| addr_uri(c).to_string());
    }

    fn target(&self) -> String {
        self.remote_target
            .clone()
            .unwrap_or_else(|| self.uri.clone())
    }

    /// The ACK of a 2xx: a transaction of its own (new branch) to the remote target.
    pub fn ack(&self, cseq: u32) -> SipMessage {
        self.request("ACK", &self.target(), &new_branch(), cseq)
    }

    pub fn bye(&self, cseq: u32, branch: &str) -> SipMessage {
        self.request("BYE", &self.target(), branch, cseq)
    }
}

/// Our offer, as the engine writes its own for outbound calls: PCMU/8000 and
/// telephone-event at our RTP socket.
pub fn sdp_offer(rtp: SocketAddr, session: u64) -> Vec<u8> {
    sdp::offer(&[Codec::Pcmu], rtp, session)
}

/// Where and how the engine's answer wants our RTP (we offered PCMU only).
pub fn answer_media(body: &[u8]) -> Result<NegotiatedMedia, SdpError> {
    SessionDescription::parse(body)?.negotiate(&[Codec::Pcmu])
}

/// The credentials header answering a 401 (`Authorization`) or 407 (`Proxy-Authorization`).
pub fn credentials(
    challenge: &SipMessage,
    nonces: &NonceCounts,
    user_password: (&str, &str),
    uri: &str,
) -> Option<(&'static str, String)> {
    let (asked, name) = match challenge.status()? {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    let value = nonces.authorize(challenge.header(asked)?, user_password, "INVITE", uri)?;
    Some((name, value))
}

/// Whether a 401/407 says our answer was fine but its nonce is used up (retry, RFC 2617).
pub fn is_stale(challenge: &SipMessage) -> bool {
    ["WWW-Authenticate", "Proxy-Authenticate"]
        .iter()
        .filter_map(|h| challenge.header(h))
        .any(|v| {
            v.to_ascii_lowercase()
                .replace(' ', "")
                .contains("stale=true")
        })
}

#[cfg(test)]
mod tests {
    use boltcall::telephony::sip::auth::{DigestVerifier, Request};

    use super::*;

    fn dialog() -> Dialog {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        Dialog::new(7, local, "127.0.0.1:5060".parse().unwrap(), "+14155550100")
    }

    #[test]
    fn our_digest_answer_in_its_header_passes_the_engines_check() {
        let dialog = dialog();
        let mut verifier = DigestVerifier::new(
            "boltcall".into(),
            vec![("trunk".into(), "s3cret".into())],
            "secret".into(),
        );
        let source = "127.0.0.1".parse().unwrap();
        let invite = dialog.invite(1, &new_branch(), b"", None);
        let mut challenge = SipMessage::response_to(&invite, 401, "Unauthorized");
        challenge.add_header("WWW-Authenticate", verifier.challenge(1000, source, false));
        let nonces = NonceCounts::default();
        let creds = credentials(&challenge, &nonces, ("trunk", "s3cret"), &dialog.uri).unwrap();
        assert_eq!(creds.0, "Authorization");
        let retry = dialog.invite(2, &new_branch(), b"", Some(&creds));
        let request = Request {
            method: "INVITE",
            uri: retry.uri().unwrap(),
            source,
        };
        assert_eq!(
            verifier.verify(retry.header("Authorization"), &request, 1001),
            Ok("trunk".into())
        );
        let wrong = credentials(&challenge, &nonces, ("trunk", "nope"), &dialog.uri).unwrap();
        assert!(verifier.verify(Some(&wrong.1), &request, 1001).is_err());
        challenge.set_header("WWW-Authenticate", verifier.challenge(1001, source, true));
        assert!(is_stale(&challenge));
    }

    #[test]
    fn the_engine_accepts_our_offer_and_we_read_its_answer() {
        let rtp: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        let offered = answer_media(&sdp_offer(rtp, 1)).unwrap();
        assert_eq!((offered.codec, offered.payload_type), (Codec::Pcmu, 0));
        assert_eq!(offered.dtmf.map(|e| e.payload_type), Some(101));
        assert_eq!(offered.remote, rtp);
        let engine: SocketAddr = "127.0.0.1:20002".parse().unwrap();
        let answer = answer_media(&sdp::answer(&offered, engine, 9, 1)).unwrap();
        assert_eq!((answer.remote, answer.payload_type), (engine, 0));
    }

    #[test]
    fn requests_parse_with_every_mandatory_header_and_the_right_length() {
        let mut dialog = dialog();
        let invite = dialog.invite(1, "z9hG4bKa", b"v=0\r\n", None);
        let parsed = SipMessage::parse(&invite.to_bytes()).unwrap();
        assert_eq!(parsed.body, b"v=0\r\n");
        assert_eq!(parsed.top_branch(), Some("z9hG4bKa"));
        let mut ok = SipMessage::response_to(&parsed, 200, "OK");
        ok.set_header("To", "<sip:+14155550100@127.0.0.1:5060>;tag=engine");
        ok.add_header("Contact", "<sip:127.0.0.1:5060;transport=udp>");
        dialog.confirm(&ok);
        let bye = SipMessage::parse(&dialog.bye(2, "z9hG4bKb").to_bytes()).unwrap();
        assert_eq!(bye.uri(), Some("sip:127.0.0.1:5060;transport=udp"));
        assert_eq!(bye.cseq(), Some((2, "BYE")));
        assert!(bye.header("To").unwrap().ends_with(";tag=engine"));
        assert_eq!(dialog.ack(1).cseq(), Some((1, "ACK")));
    }
}
