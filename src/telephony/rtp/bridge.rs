//! The RTP ↔ `CallLeg` bridge of one SIP call: plays what the peer sends out of a jitter
//! buffer as 16 kHz frames, one per 20 ms, and DTMF digits for the session, and packetizes
//! the session's frames back on the bridge's own tick, with silence between the session's
//! stretches of speech (`SendQueue`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};

use media::dtmf::tones::KeySequence;
use media::rtp::rtcp::{self, SenderInfo};

use super::dtmf::DtmfReceiver;
use super::dtmf_out::DtmfOut;
use super::latch::{Latch, Verdict};
use super::outbound::OutboundStream;
use super::playout::InboundAudio;
use super::ports::RtpSocket;
use super::send_queue::SendQueue;
use super::stats::{ReceiveStats, ntp_now};
use super::voice::VoiceCodec;
use crate::telephony::frame_grid;
use crate::telephony::leg::{HangupReason, LegCommand, LegEnd, LegEvent};
use crate::telephony::sip::sdp::{MediaDirection, NegotiatedMedia};

/// RFC 3550's minimum report interval.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// Signalling → bridge.
#[derive(Debug)]
pub enum BridgeControl {
    /// The media changed (re-INVITE: hold, resume, new address).
    Media(NegotiatedMedia),
    /// The call ended in signalling; tell the session why and stop.
    Stop(HangupReason),
}

/// Why the bridge ended, and what signalling must do about it.
#[derive(Debug, PartialEq, Eq)]
pub enum BridgeExit {
    /// Signalling already knows (it sent `Stop`).
    Stopped,
    /// The session hung up: send BYE.
    LocalHangup,
    /// No RTP for too long: send BYE.
    MediaTimeout,
    /// The session asked for a blind transfer: send REFER (the bridge keeps running).
    Transfer(String),
}

/// Runs until the call ends. `exits` carries hang-ups and transfer requests to signalling.
/// `signalling_ip` is where the call's SIP came from (a NAT'd peer's RTP comes from there).
pub async fn run_bridge(
    socket: RtpSocket,
    mut media: NegotiatedMedia,
    signalling_ip: IpAddr,
    mut leg: LegEnd,
    mut control: mpsc::Receiver<BridgeControl>,
    exits: mpsc::Sender<BridgeExit>,
    inactivity: Duration,
) {
    let mut latch = Latch::new(media.remote, signalling_ip, Instant::now().into_std());
    let exit = bridge_loop(
        &socket,
        &mut media,
        &mut latch,
        &mut leg,
        &mut control,
        &exits,
        inactivity,
    )
    .await;
    if latch.strangers() > 0 {
        tracing::warn!(
            strangers = latch.strangers(),
            "RTP packets from sources other than the call's peer were dropped"
        );
    }
    match exit {
        BridgeExit::Stopped => {}
        BridgeExit::MediaTimeout => {
            let _ = leg
                .events
                .send(LegEvent::Hangup(HangupReason::MediaTimeout))
                .await;
            let _ = exits.send(BridgeExit::MediaTimeout).await;
        }
        other => {
            let _ = exits.send(other).await;
        }
    }
}

fn sending(direction: MediaDirection) -> bool {
    matches!(
        direction,
        MediaDirection::SendRecv | MediaDirection::SendOnly
    )
}

/// Marks whose frames have gone out (or were dropped), in order.
fn report_marks(leg: &LegEnd, names: impl Iterator<Item = String>) {
    for name in names {
        let _ = leg.events.try_send(LegEvent::Mark(name));
    }
}

async fn bridge_loop(
    socket: &RtpSocket,
    media: &mut NegotiatedMedia,
    latch: &mut Latch,
    leg: &mut LegEnd,
    control: &mut mpsc::Receiver<BridgeControl>,
    exits: &mpsc::Sender<BridgeExit>,
    inactivity: Duration,
) -> BridgeExit {
    let mut codec = match VoiceCodec::new(media.codec) {
        Ok(codec) => codec,
        Err(err) => {
            let reason = HangupReason::TransportError(err.to_string());
            let _ = leg.events.send(LegEvent::Hangup(reason)).await;
            return BridgeExit::LocalHangup;
        }
    };
    let mut dtmf = DtmfReceiver::default();
    let mut keys_out = DtmfOut::default();
    let mut outbound = OutboundStream::new(media.payload_type);
    let mut send_queue = SendQueue::default();
    let mut recv_buf = [0u8; 2048];
    let mut rtcp_buf = [0u8; 128];
    let mut inbound = InboundAudio::new(media.codec.clock_rate());
    // Catch up after a stall rather than drift: the jitter buffer's timeline is wall time.
    let offset = frame_grid::sender_offset();
    let mut playout = interval_at(
        frame_grid::next_tick_at(Instant::now(), offset),
        frame_grid::FRAME_PERIOD,
    );
    playout.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    // The bridge's timeline (jitter buffer, send queue): milliseconds since it started.
    let ms_since_start = |at: Instant| (at - started).as_millis() as u64;
    let mut last_rx = started;
    let mut stats = ReceiveStats::default();
    let mut report_at = started + RTCP_INTERVAL;
    let mut rtcp_in = [0u8; 512];
    let mut dropped_frames = 0u64;
    // Both timers live for the whole call and move only when they fire: a fresh sleep per
    // loop turn would enter and leave the runtime's timer wheel several times a frame.
    let quiet_check = sleep_until(last_rx + inactivity);
    let report_due = sleep_until(report_at);
    tokio::pin!(quiet_check, report_due);
    loop {
        // A peer that only receives still sends RTCP, so even a call we only send on stays
        // under the timeout: nobody can point our audio at a third party for long.
        let watch_inactivity = media.direction != MediaDirection::Inactive;
        tokio::select! {
            received = socket.rtp.recv_from(&mut recv_buf) => {
                let Ok((n, from)) = received else { continue };
                match latch.check(from, Instant::now().into_std()) {
                    Verdict::Accept => {}
                    Verdict::Stranger { first } => {
                        if first {
                            tracing::warn!(%from, peer = %latch.target(), "dropping RTP from a stranger");
                        }
                        continue;
                    }
                }
                last_rx = Instant::now();
                let Ok(packet) = media::rtp::parse(&recv_buf[..n]) else { continue };
                let body = packet.payload;
                let arrival = ms_since_start(last_rx);
                stats.on_packet(packet.ssrc, packet.sequence_number, packet.timestamp, arrival);
                if packet.payload_type == media.payload_type {
                    if !inbound.is_playing() {
                        // The first packet starts playout: ticks from now, not a burst of
                        // the ones missed since the call began.
                        playout.reset_at(frame_grid::next_tick_at(Instant::now(), offset));
                    }
                    inbound.insert(arrival, packet.ssrc, packet.sequence_number, packet.timestamp, body);
                } else if Some(packet.payload_type) == media.dtmf.map(|e| e.payload_type)
                    && let Some(digit) = dtmf.receive(packet.timestamp, body)
                {
                    let _ = leg.events.try_send(LegEvent::Dtmf(digit));
                }
            }
            _ = playout.tick(), if inbound.is_playing() || sending(media.direction) => {
                let now = ms_since_start(Instant::now());
                // A decoder failure loses this tick's audio, not the call.
                if inbound.is_playing()
                    && let Ok(Some(frame)) = inbound.tick(now, &mut codec)
                    && let Some(frame) = frame.convert()
                    // Never block on a slow session: drop and count instead.
                    && leg.events.try_send(LegEvent::Audio(frame)).is_err()
                {
                    dropped_frames += 1;
                }
                if sending(media.direction) {
                    send_queue.start_tick(now);
                    report_marks(leg, send_queue.due_marks());
                    while let Some(frame) = send_queue.pop_frame() {
                        let to = latch.target();
                        outbound.send_frame(socket, to, media, &mut codec, &mut keys_out, frame.into()).await;
                        report_marks(leg, send_queue.due_marks());
                    }
                }
            }
            command = leg.commands.recv() => match command {
                Some(LegCommand::Audio(frame)) => {
                    if !sending(media.direction) {
                        if !keys_out.is_idle() {
                            tracing::warn!("DTMF keys dropped: the call is on hold");
                            keys_out = DtmfOut::default();
                        }
                        continue;
                    }
                    send_queue.push_frame(frame, ms_since_start(Instant::now()));
                }
                // A mark ends a stretch of the agent's speech: it is reported once the frames
                // before it are sent (a peer plays what it gets at once), and silence follows.
                Some(LegCommand::Mark(name)) => {
                    send_queue.push_mark(name);
                    report_marks(leg, send_queue.due_marks());
                }
                // Frames not yet sent and keys not yet started are agent output like any other.
                Some(LegCommand::Clear) => {
                    keys_out.clear();
                    send_queue.clear();
                    report_marks(leg, send_queue.due_marks());
                }
                Some(LegCommand::SendDtmf(digits)) => {
                    let queued = KeySequence::parse(&digits)
                        .map_err(|e| e.to_string())
                        .and_then(|keys| keys_out.queue(&keys).map_err(|e| e.to_string()));
                    if let Err(err) = queued {
                        tracing::warn!(%digits, "DTMF keys not sent: {err}");
                    }
                }
                Some(LegCommand::Transfer(target)) => {
                    let _ = exits.send(BridgeExit::Transfer(target)).await;
                }
                Some(LegCommand::Hangup) | None => {
                    if dropped_frames > 0 {
                        tracing::warn!(dropped_frames, "session fell behind the caller's audio");
                    }
                    return BridgeExit::LocalHangup;
                }
            },
            message = control.recv() => match message {
                Some(BridgeControl::Media(new)) => {
                    // A new address from the dialog's peer: follow it and latch afresh.
                    latch.repoint(new.remote, Instant::now().into_std());
                    if new.payload_type != media.payload_type
                        && let Ok(new_codec) = VoiceCodec::new(new.codec)
                    {
                        codec = new_codec;
                        inbound = InboundAudio::new(new.codec.clock_rate());
                        outbound.switch_payload_type(new.payload_type);
                    }
                    *media = new;
                    if !sending(media.direction) {
                        send_queue.clear();
                        report_marks(leg, send_queue.due_marks());
                    }
                    last_rx = Instant::now();
                }
                Some(BridgeControl::Stop(reason)) => {
                    let _ = leg.events.send(LegEvent::Hangup(reason)).await;
                    return BridgeExit::Stopped;
                }
                None => return BridgeExit::Stopped,
            },
            _ = &mut quiet_check, if watch_inactivity => {
                let deadline = last_rx + inactivity;
                if deadline <= Instant::now() {
                    return BridgeExit::MediaTimeout;
                }
                quiet_check.as_mut().reset(deadline);
            }
            // The peer's reports keep a send-only call alive; anyone else's are drained.
            received = socket.rtcp.recv_from(&mut rtcp_in) => {
                if let Ok((_, from)) = received
                    && from.ip().to_canonical() == latch.target().ip().to_canonical()
                {
                    last_rx = Instant::now();
                }
            }
            _ = &mut report_due => {
                report_at += RTCP_INTERVAL;
                report_due.as_mut().reset(report_at);
                let info = SenderInfo {
                    ntp_timestamp: ntp_now(),
                    rtp_timestamp: outbound.timestamp(),
                    packet_count: outbound.packets,
                    octet_count: outbound.octets,
                };
                let block = stats.report_block();
                if let Ok(len) = rtcp::write_sender_report(outbound.ssrc(), &info, block.as_ref(), &mut rtcp_buf) {
                    let remote = latch.target();
                    let rtcp_remote = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
                    let _ = socket.rtcp.send_to(&rtcp_buf[..len], rtcp_remote).await;
                }
            }
        }
    }
}
