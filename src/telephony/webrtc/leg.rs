//! Moves one browser call's audio, captions and control between its peer connection and the
//! call session until either side ends it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use webrtc::data_channel::RTCDataChannel;
use webrtc::media::Sample;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::track::track_remote::TrackRemote;

use super::audio::{OpusIn, OpusOut};
use super::peer::{Peer, PeerEvent};
use crate::telephony::{Caption, HangupReason, LegCommand, LegEnd, LegEvent};

/// The browser's microphone must start within this long of the answer (ICE and DTLS on a
/// local network take well under a second).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// No RTP for this long: the tab is gone (browsers send Opus every 20 ms, silence included).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(4);
const FRAME: Duration = Duration::from_millis(20);

/// Runs the leg until the call ends; returns why it did. `connected` fires when the
/// browser's audio arrives (the session starts then, so the greeting is not spoken into a
/// connection still being set up); `hang_up` fires when the page asks (`DELETE`). The
/// session is told of every end it did not ask for.
pub async fn run(
    peer: Peer,
    mut leg: LegEnd,
    mut captions: mpsc::Receiver<Caption>,
    connected: oneshot::Sender<()>,
    mut hang_up: oneshot::Receiver<()>,
) -> HangupReason {
    let Peer {
        connection,
        voice,
        mut events,
        answer: _,
    } = peer;
    let (reader_done, mut reader_ended) = mpsc::channel::<HangupReason>(1);
    let mut channel: Option<Arc<RTCDataChannel>> = None;
    let mut outbound = match OpusOut::new() {
        Ok(outbound) => Some(outbound),
        Err(e) => {
            tracing::error!("cannot build the Opus encoder: {e}");
            None
        }
    };
    let connect_deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(connect_deadline);
    let mut connected = Some(connected);
    let mut captions_open = true;
    let reason = loop {
        tokio::select! {
            _ = &mut hang_up => break HangupReason::Remote,
            () = &mut connect_deadline, if connected.is_some() => {
                tracing::warn!("webrtc: no audio from the browser in {CONNECT_TIMEOUT:?}");
                break HangupReason::MediaTimeout;
            }
            event = events.recv() => match event {
                Some(PeerEvent::Track(track)) if connected.is_some() => {
                    if let Some(connected) = connected.take() {
                        let _ = connected.send(());
                    }
                    tokio::spawn(read_caller(track, leg.events.clone(), reader_done.clone()));
                }
                Some(PeerEvent::Track(_)) => tracing::debug!("webrtc: a second audio track ignored"),
                Some(PeerEvent::Captions(open)) => channel = Some(open),
                Some(PeerEvent::State(state)) => {
                    tracing::debug!(?state, "webrtc peer connection");
                    match state {
                        // A closed tab: ICE goes quiet (disconnected), then fails.
                        RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Closed => {
                            break HangupReason::Remote;
                        }
                        RTCPeerConnectionState::Failed => {
                            break HangupReason::TransportError("ICE or DTLS failed".into());
                        }
                        _ => {}
                    }
                }
                None => break HangupReason::TransportError("peer connection gone".into()),
            },
            reason = reader_ended.recv() => {
                break reason.unwrap_or(HangupReason::Remote);
            }
            command = leg.commands.recv() => match command {
                Some(LegCommand::Audio(frame)) => {
                    let Some(outbound) = outbound.as_mut() else { continue };
                    match outbound.encode(&frame) {
                        Ok(data) => {
                            let sample = Sample { data, duration: FRAME, ..Default::default() };
                            // Before the browser connects the track has no binding: dropped.
                            if let Err(e) = voice.write_sample(&sample).await {
                                tracing::trace!("webrtc: agent frame not sent: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("webrtc: agent frame not encoded: {e}"),
                    }
                }
                // Frames go out as the session paces them; nothing is buffered here to drop.
                // The browser's jitter buffer holds a few tens of milliseconds at most.
                Some(LegCommand::Clear | LegCommand::Mark(_)) => {}
                Some(LegCommand::SendDtmf(digits)) => {
                    // `dtmf_out_of_band` is off: the session plays keys in band instead.
                    tracing::warn!(%digits, "webrtc: out-of-band DTMF asked for; not sent");
                }
                Some(LegCommand::Transfer(target)) => {
                    tracing::warn!(%target, "webrtc: a browser call cannot be transferred; hanging up");
                    break HangupReason::Local;
                }
                Some(LegCommand::Hangup) | None => break HangupReason::Local,
            },
            caption = captions.recv(), if captions_open => {
                let Some(caption) = caption else {
                    // The session is over; its hang-up follows on `commands`.
                    captions_open = false;
                    continue;
                };
                if let Some(channel) = &channel
                    && let Ok(json) = serde_json::to_string(&caption)
                    && let Err(e) = channel.send_text(json).await
                {
                    tracing::debug!("webrtc: caption not sent: {e}");
                }
            }
        }
    };
    if reason != HangupReason::Local {
        let _ = leg.events.send(LegEvent::Hangup(reason.clone())).await;
    }
    if let Err(e) = connection.close().await {
        tracing::debug!("webrtc: closing the peer connection: {e}");
    }
    reason
}

/// Reads the browser's microphone into the session until it stops; says why on `done`.
async fn read_caller(
    track: Arc<TrackRemote>,
    events: mpsc::Sender<LegEvent>,
    done: mpsc::Sender<HangupReason>,
) {
    let mut inbound = match OpusIn::new() {
        Ok(inbound) => inbound,
        Err(e) => {
            let _ = done.send(HangupReason::TransportError(e.to_string())).await;
            return;
        }
    };
    let mut dropped = 0u64;
    let reason = loop {
        let packet = match tokio::time::timeout(MEDIA_TIMEOUT, track.read_rtp()).await {
            Ok(Ok((packet, _))) => packet,
            // The track ends when the peer connection closes.
            Ok(Err(_)) => break HangupReason::Remote,
            Err(_) => {
                tracing::info!("webrtc: no audio from the browser for {MEDIA_TIMEOUT:?}");
                break HangupReason::MediaTimeout;
            }
        };
        let seq = packet.header.sequence_number;
        let decoded = inbound.packet(seq, &packet.payload, |frame| {
            match events.try_send(LegEvent::Audio(frame)) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                // The session is seconds behind: dropping audio beats stalling the reader.
                Err(TrySendError::Full(_)) => dropped += 1,
            }
        });
        if let Err(e) = decoded {
            tracing::debug!(seq, "webrtc: caller packet not decoded: {e}");
        }
        if events.is_closed() {
            break HangupReason::Local;
        }
    };
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "webrtc: caller frames dropped, the session was behind"
        );
    }
    let _ = done.send(reason).await;
}
