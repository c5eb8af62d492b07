//! SDP offer/answer for one audio stream (RFC 3264 subset a trunk needs).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    Opus,
}

impl Codec {
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48000,
        }
    }

    fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDirection {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl MediaDirection {
    fn attribute(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }

    /// What we answer to this offered direction.
    pub fn reversed(self) -> MediaDirection {
        match self {
            MediaDirection::SendOnly => MediaDirection::RecvOnly,
            MediaDirection::RecvOnly => MediaDirection::SendOnly,
            other => other,
        }
    }
}

/// RFC 4733 telephone-events as agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub payload_type: u8,
    pub clock_rate: u32,
}

/// What both ends agreed on for the call's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub codec: Codec,
    pub payload_type: u8,
    /// RFC 4733 telephone-events, when the peer offered them.
    pub dtmf: Option<TelephoneEvent>,
    /// Where the peer wants our RTP (symmetric RTP may later latch elsewhere).
    pub remote: SocketAddr,
    /// Our direction as seen from us (offer `sendonly` → we only receive).
    pub direction: MediaDirection,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP has no usable connection address")]
    NoConnection,
    #[error("malformed SDP line: {0}")]
    Malformed(String),
    #[error("no codec in common")]
    NoCommonCodec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rtpmap {
    payload_type: u8,
    name: String,
    rate: u32,
}

/// The parts of a session description we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub address: IpAddr,
    pub port: u16,
    pub payload_types: Vec<u8>,
    rtpmaps: Vec<Rtpmap>,
    pub direction: MediaDirection,
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
        let mut session_addr = None;
        let mut media_addr = None;
        let mut audio: Option<(u16, Vec<u8>)> = None;
        let mut in_audio = false;
        let mut rtpmaps = Vec::new();
        let mut session_dir = MediaDirection::SendRecv;
        let mut media_dir = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let Some((kind, value)) = line.split_once('=') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(SdpError::Malformed(line.chars().take(60).collect()));
            };
            match kind {
                "m" => {
                    let mut parts = value.split_whitespace();
                    let media = parts.next().unwrap_or_default();
                    in_audio = media == "audio" && audio.is_none();
                    if in_audio {
                        let port = parts
                            .next()
                            .and_then(|p| p.split('/').next())
                            .and_then(|p| p.parse().ok())
                            .ok_or_else(|| SdpError::Malformed(line.into()))?;
                        let _proto = parts.next();
                        let pts = parts.filter_map(|p| p.parse().ok()).collect();
                        audio = Some((port, pts));
                    }
                }
                "c" => {
                    let addr = value
                        .split_whitespace()
                        .nth(2)
                        .and_then(|a| a.split('/').next())
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        .ok_or(SdpError::NoConnection)?;
                    if in_audio {
                        media_addr = Some(addr);
                    } else if audio.is_none() {
                        session_addr = Some(addr);
                    }
                }
                "a" => {
                    let dir = match value {
                        "sendrecv" => Some(MediaDirection::SendRecv),
                        "sendonly" => Some(MediaDirection::SendOnly),
                        "recvonly" => Some(MediaDirection::RecvOnly),
                        "inactive" => Some(MediaDirection::Inactive),
                        _ => None,
                    };
                    if let Some(dir) = dir {
                        if in_audio {
                            media_dir = Some(dir);
                        } else if audio.is_none() {
                            session_dir = dir;
                        }
                    } else if let Some(map) = value.strip_prefix("rtpmap:")
                        && in_audio
                    {
                        rtpmaps.push(
                            parse_rtpmap(map).ok_or_else(|| {
                                SdpError::Malformed(line.chars().take(60).collect())
                            })?,
                        );
                    }
                }
                _ => {}
            }
        }
        let (port, payload_types) = audio.ok_or(SdpError::NoAudio)?;
        let address = media_addr.or(session_addr).ok_or(SdpError::NoConnection)?;
        Ok(SessionDescription {
            address,
            port,
            payload_types,
            rtpmaps,
            direction: media_dir.unwrap_or(session_dir),
        })
    }

    fn codec_of(&self, pt: u8) -> Option<(String, u32)> {
        if let Some(map) = self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            return Some((map.name.to_ascii_lowercase(), map.rate));
        }
        match pt {
            0 => Some(("pcmu".into(), 8000)),
            8 => Some(("pcma".into(), 8000)),
            _ => None,
        }
    }

    /// Picks the first of the offer's codecs (the offerer's preference order) that we support.
    pub fn negotiate(&self, supported: &[Codec]) -> Result<NegotiatedMedia, SdpError> {
        let mut chosen = None;
        let mut events = Vec::new();
        for &pt in &self.payload_types {
            let Some((name, rate)) = self.codec_of(pt) else {
                continue;
            };
            if name == "telephone-event" {
                events.push(TelephoneEvent {
                    payload_type: pt,
                    clock_rate: rate,
                });
                continue;
            }
            if chosen.is_none() {
                chosen = supported
                    .iter()
                    .find(|c| {
                        c.encoding_name().eq_ignore_ascii_case(&name) && c.clock_rate() == rate
                    })
                    .map(|&c| (c, pt));
            }
        }
        let (codec, payload_type) = chosen.ok_or(SdpError::NoCommonCodec)?;
        // Events should share the audio codec's clock (RFC 4733 §2.1), but Opus peers often
        // offer only 8 kHz ones; the receiver needs an event's timestamp only as its identity,
        // so take those rather than lose DTMF.
        let dtmf = events
            .iter()
            .find(|e| e.clock_rate == codec.clock_rate())
            .or(events.first())
            .copied();
        Ok(NegotiatedMedia {
            codec,
            payload_type,
            dtmf,
            remote: SocketAddr::new(self.address, self.port),
            direction: self.direction.reversed(),
        })
    }
}

fn parse_rtpmap(value: &str) -> Option<Rtpmap> {
    let (pt, rest) = value.split_once(' ')?;
    let mut parts = rest.trim().split('/');
    Some(Rtpmap {
        payload_type: pt.trim().parse().ok()?,
        name: parts.next()?.to_string(),
        rate: parts.next()?.parse().ok()?,
    })
}

/// Our dynamic payload types when we make an offer.
const OPUS_PT: u8 = 111;
const DTMF_PT: u8 = 101;

fn write_head(out: &mut String, session_id: u64, version: u64, addr: IpAddr) {
    let ip = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=boltcall {session_id} {version} IN {ip} {addr}\r\ns=boltcall\r\nc=IN {ip} {addr}\r\nt=0 0\r\n"
    );
}

/// Our answer: the one codec we chose, telephone-event if offered, our address and direction.
pub fn answer(
    media: &NegotiatedMedia,
    local: SocketAddr,
    session_id: u64,
    version: u64,
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    write_head(&mut out, session_id, version, local.ip());
    let _ = write!(
        out,
        "m=audio {} RTP/AVP {}",
        local.port(),
        media.payload_type
    );
    if let Some(event) = media.dtmf {
        let _ = write!(out, " {}", event.payload_type);
    }
    out.push_str("\r\n");
    write_rtpmap(&mut out, media.codec, media.payload_type);
    if let Some(TelephoneEvent {
        payload_type: pt,
        clock_rate,
    }) = media.dtmf
    {
        let _ = write!(
            out,
            "a=rtpmap:{pt} telephone-event/{clock_rate}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:20\r\na={}\r\n", media.direction.attribute());
    out.into_bytes()
}

/// Our offer for an outbound call: every codec we support, in our preference order.
pub fn offer(codecs: &[Codec], local: SocketAddr, session_id: u64) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    write_head(&mut out, session_id, 1, local.ip());
    let pts: Vec<u8> = codecs
        .iter()
        .map(|c| c.static_payload_type().unwrap_or(OPUS_PT))
        .collect();
    let _ = write!(out, "m=audio {} RTP/AVP", local.port());
    for pt in &pts {
        let _ = write!(out, " {pt}");
    }
    let _ = write!(out, " {DTMF_PT}\r\n");
    for (codec, pt) in codecs.iter().zip(&pts) {
        write_rtpmap(&mut out, *codec, *pt);
    }
    let _ = write!(
        out,
        "a=rtpmap:{DTMF_PT} telephone-event/8000\r\na=fmtp:{DTMF_PT} 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    out.into_bytes()
}

fn write_rtpmap(out: &mut String, codec: Codec, pt: u8) {
    match codec {
        Codec::Opus => {
            let _ = write!(
                out,
                "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=1\r\n"
            );
        }
        other => {
            let _ = write!(out, "a=rtpmap:{pt} {}/8000\r\n", other.encoding_name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 0 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn respects_the_offerers_codec_order() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        let media = sdp.negotiate(&[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!((media.codec, media.payload_type), (Codec::Pcma, 8));
        assert_eq!(media.dtmf.map(|e| e.payload_type), Some(101));
        assert_eq!(
            media.remote,
            "10.0.0.1:4000".parse::<std::net::SocketAddr>().unwrap()
        );
        let only_opus = sdp.negotiate(&[Codec::Opus]).unwrap();
        assert_eq!(
            (only_opus.codec, only_opus.payload_type, only_opus.dtmf),
            (
                Codec::Opus,
                96,
                Some(TelephoneEvent {
                    payload_type: 101,
                    clock_rate: 8000
                })
            ),
            "the only events offered are taken even at another clock"
        );
    }

    #[test]
    fn opus_first_in_the_offer_is_answered_with_opus_and_its_events() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 96 0 101 102\r\n\
a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n\
a=rtpmap:102 telephone-event/48000\r\n";
        let media = SessionDescription::parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[Codec::Pcmu, Codec::Pcma, Codec::Opus])
            .unwrap();
        assert_eq!(
            (media.codec, media.payload_type),
            (Codec::Opus, 96),
            "the offerer's first choice"
        );
        assert_eq!(
            media.dtmf,
            Some(TelephoneEvent {
                payload_type: 102,
                clock_rate: 48000
            }),
            "events at the codec's clock preferred"
        );
        let body =
            String::from_utf8(answer(&media, "127.0.0.1:20000".parse().unwrap(), 1, 1)).unwrap();
        assert!(body.contains("m=audio 20000 RTP/AVP 96 102\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"));
        assert!(
            body.contains("a=rtpmap:102 telephone-event/48000\r\n"),
            "{body}"
        );
    }

    #[test]
    fn no_common_codec_is_an_error() {
        let sdp = SessionDescription::parse(
            b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
        )
        .unwrap();
        assert_eq!(sdp.negotiate(&[Codec::Pcmu]), Err(SdpError::NoCommonCodec));
        assert_eq!(
            SessionDescription::parse(b"v=0\r\n"),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn hold_offers_reverse_direction_and_answers_round_trip() {
        let held = format!("{OFFER}a=sendonly\r\n");
        let media = SessionDescription::parse(held.as_bytes())
            .unwrap()
            .negotiate(&[Codec::Pcmu])
            .unwrap();
        assert_eq!(media.direction, MediaDirection::RecvOnly);
        let body = answer(&media, "127.0.0.1:20000".parse().unwrap(), 7, 2);
        let back = SessionDescription::parse(&body).unwrap();
        assert_eq!(back.port, 20000);
        assert_eq!(back.payload_types, vec![0, 101]);
        assert_eq!(back.direction, MediaDirection::RecvOnly);
        let ours = offer(
            &[Codec::Pcmu, Codec::Opus],
            "127.0.0.1:20002".parse().unwrap(),
            1,
        );
        let parsed = SessionDescription::parse(&ours).unwrap();
        assert_eq!(parsed.negotiate(&[Codec::Opus]).unwrap().payload_type, 111);
    }
}
