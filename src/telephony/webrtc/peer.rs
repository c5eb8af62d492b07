//! One browser's peer connection: Opus only, DTLS-SRTP, host (and loopback) ICE candidates
//! gathered in full before the answer goes back, so the exchange is a single HTTP round trip
//! (no trickle, no STUN or TURN servers: a browser on this machine or this network).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::data_channel::RTCDataChannel;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

/// The data channel the page opens for live captions.
pub const CAPTIONS_LABEL: &str = "captions";
/// Opus's payload type in browsers' offers; the answer keeps whatever the offer used.
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Host candidates come from local interfaces: gathering takes milliseconds. This bounds it
/// should an interface hang.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// No ICE traffic for this long: the tab is gone (or its network), the call ends. Keep-alives
/// go every `ICE_KEEPALIVE` when no media flows, so a live page never looks silent.
const ICE_DISCONNECTED: Duration = Duration::from_secs(4);
const ICE_FAILED: Duration = Duration::from_secs(6);
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);

/// What the peer connection reports to the leg.
pub enum PeerEvent {
    /// The browser's microphone track arrived.
    Track(Arc<TrackRemote>),
    /// The captions data channel is open.
    Captions(Arc<RTCDataChannel>),
    State(RTCPeerConnectionState),
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer is not one we can answer: the client's mistake.
    #[error("{0}")]
    BadOffer(String),
    #[error("webrtc: {0}")]
    Internal(#[from] webrtc::Error),
}

/// An answered peer connection.
pub struct Peer {
    pub connection: Arc<RTCPeerConnection>,
    /// The agent's voice, toward the browser.
    pub voice: Arc<TrackLocalStaticSample>,
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    /// The SDP answer, all candidates included.
    pub answer: String,
}

fn opus() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        // Opus is always negotiated as 2 channels in SDP (RFC 7587); we send mono in it.
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The WebRTC stack every browser call shares: Opus only, the default RTCP interceptors
/// (NACK, reports), host candidates including loopback (a browser on this machine), and ICE
/// timeouts short enough that a closed tab ends its call within seconds.
pub fn build_api() -> Result<API, webrtc::Error> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            capability: opus(),
            payload_type: OPUS_PAYLOAD_TYPE,
            ..Default::default()
        },
        RTPCodecType::Audio,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ice_timeouts(
        Some(ICE_DISCONNECTED),
        Some(ICE_FAILED),
        Some(ICE_KEEPALIVE),
    );
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build())
}

/// Checks that `offer` is SDP with an Opus audio section, before any work is spent on it.
pub fn check_offer(offer: &str) -> Result<(), PeerError> {
    if !offer.trim_start().starts_with("v=0") {
        return Err(PeerError::BadOffer(
            "the body is not an SDP offer (it must start with v=0)".into(),
        ));
    }
    let mut audio = false;
    let mut opus = false;
    for line in offer.lines() {
        let line = line.trim().to_ascii_lowercase();
        audio |= line.starts_with("m=audio ");
        opus |= line.starts_with("a=rtpmap:") && line.contains(" opus/48000");
    }
    if !audio || !opus {
        return Err(PeerError::BadOffer(
            "the offer has no audio section with Opus at 48 kHz".into(),
        ));
    }
    Ok(())
}

/// Answers `offer` on a new peer connection that sends `voice` and reports to the leg.
pub async fn answer(api: &API, offer: &str) -> Result<Peer, PeerError> {
    check_offer(offer)?;
    let description = RTCSessionDescription::offer(offer.to_string())
        .map_err(|e| PeerError::BadOffer(format!("the SDP offer does not parse: {e}")))?;
    let connection = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
    match negotiate(&connection, description).await {
        Ok((voice, events, answer)) => Ok(Peer {
            connection,
            voice,
            events,
            answer,
        }),
        Err(e) => {
            let _ = connection.close().await;
            Err(e)
        }
    }
}

type Negotiated = (
    Arc<TrackLocalStaticSample>,
    mpsc::UnboundedReceiver<PeerEvent>,
    String,
);

async fn negotiate(
    connection: &Arc<RTCPeerConnection>,
    offer: RTCSessionDescription,
) -> Result<Negotiated, PeerError> {
    let (tx, events) = mpsc::unbounded_channel();
    let voice = Arc::new(TrackLocalStaticSample::new(
        opus(),
        "agent".to_owned(),
        "boltcall".to_owned(),
    ));
    let sender = connection
        .add_track(Arc::clone(&voice) as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    // RTCP for our track must be read for the interceptors (reports, NACK) to see it.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while sender.read(&mut buf).await.is_ok() {}
    });
    let on_track = tx.clone();
    connection.on_track(Box::new(move |track, _, _| {
        if track.kind() == RTPCodecType::Audio {
            let _ = on_track.send(PeerEvent::Track(track));
        }
        Box::pin(async {})
    }));
    let on_state = tx.clone();
    connection.on_peer_connection_state_change(Box::new(move |state| {
        let _ = on_state.send(PeerEvent::State(state));
        Box::pin(async {})
    }));
    connection.on_data_channel(Box::new(move |channel: Arc<RTCDataChannel>| {
        let on_open = tx.clone();
        if channel.label() == CAPTIONS_LABEL {
            let opened = Arc::clone(&channel);
            channel.on_open(Box::new(move || {
                let _ = on_open.send(PeerEvent::Captions(opened));
                Box::pin(async {})
            }));
        }
        Box::pin(async {})
    }));
    connection
        .set_remote_description(offer)
        .await
        .map_err(|e| PeerError::BadOffer(format!("the SDP offer cannot be used: {e}")))?;
    let answer = connection
        .create_answer(None)
        .await
        .map_err(|e| PeerError::BadOffer(format!("the SDP offer cannot be answered: {e}")))?;
    let mut gathered = connection.gathering_complete_promise().await;
    connection.set_local_description(answer).await?;
    let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await;
    let answer = connection
        .local_description()
        .await
        .ok_or_else(|| PeerError::BadOffer("no answer could be made for this offer".into()))?;
    Ok((voice, events, answer.sdp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_without_opus_audio_are_refused_before_any_work() {
        assert!(check_offer("hello").is_err());
        let video = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(check_offer(video).is_err());
        let audio = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(check_offer(audio).is_ok());
    }
}
