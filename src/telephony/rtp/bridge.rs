//! The RTP ↔ `CallLeg` bridge of one SIP call. It wakes on its 20 ms tick (and for
//! signalling's rare messages), and on each tick reads what the peer sent since the last one
//! into the jitter buffer (with the kernel's arrival times), hands the session the tick's
//! 16 kHz frame and any DTMF digits, takes the session's commands, and sends one packet: the
//! session's next frame, else silence (`SendQueue`). One wake-up a period for the call's
//! media, however many packets and commands it brings.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

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
/// The RTCP socket is read once a second: its reports (every 5 s or more) only show that the
/// peer is alive, and an empty read every tick is a system call a period for nothing.
const RTCP_READ_TICKS: u32 = 50;
/// Packets read at most per tick and socket: a peer sends one or two a tick, and a flood
/// costs the call bounded work (the kernel drops what does not fit its buffer).
const MAX_READS_PER_TICK: usize = 256;

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
    media: NegotiatedMedia,
    signalling_ip: IpAddr,
    mut leg: LegEnd,
    mut control: mpsc::Receiver<BridgeControl>,
    exits: mpsc::Sender<BridgeExit>,
    inactivity: Duration,
) {
    let codec = match VoiceCodec::new(media.codec) {
        Ok(codec) => codec,
        Err(err) => {
            let reason = HangupReason::TransportError(err.to_string());
            let _ = leg.events.send(LegEvent::Hangup(reason)).await;
            let _ = exits.send(BridgeExit::LocalHangup).await;
            return;
        }
    };
    let mut bridge = Bridge::new(socket, media, signalling_ip, codec, inactivity);
    let exit = bridge.run(&mut leg, &mut control, &exits).await;
    if bridge.latch.strangers() > 0 {
        tracing::warn!(
            strangers = bridge.latch.strangers(),
            "RTP packets from sources other than the call's peer were dropped"
        );
    }
    if bridge.dropped_frames > 0 {
        tracing::warn!(
            dropped_frames = bridge.dropped_frames,
            "session fell behind the caller's audio"
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

struct Bridge {
    socket: RtpSocket,
    media: NegotiatedMedia,
    latch: Latch,
    codec: VoiceCodec,
    dtmf: DtmfReceiver,
    keys_out: DtmfOut,
    outbound: OutboundStream,
    send_queue: SendQueue,
    inbound: InboundAudio,
    stats: ReceiveStats,
    /// The origin of the bridge's timeline (jitter buffer, send queue) in milliseconds.
    started: Instant,
    /// When the peer was last heard (RTP or RTCP).
    last_rx: Instant,
    report_at: Instant,
    inactivity: Duration,
    dropped_frames: u64,
    ticks: u32,
    recv_buf: [u8; 2048],
}

impl Bridge {
    fn new(
        socket: RtpSocket,
        media: NegotiatedMedia,
        signalling_ip: IpAddr,
        codec: VoiceCodec,
        inactivity: Duration,
    ) -> Self {
        let started = Instant::now();
        Bridge {
            latch: Latch::new(media.remote, signalling_ip, started.into_std()),
            outbound: OutboundStream::new(media.payload_type),
            inbound: InboundAudio::new(media.codec.clock_rate()),
            socket,
            media,
            codec,
            dtmf: DtmfReceiver::default(),
            keys_out: DtmfOut::default(),
            send_queue: SendQueue::default(),
            stats: ReceiveStats::default(),
            started,
            last_rx: started,
            report_at: started + RTCP_INTERVAL,
            inactivity,
            dropped_frames: 0,
            ticks: 0,
            recv_buf: [0; 2048],
        }
    }

    async fn run(
        &mut self,
        leg: &mut LegEnd,
        control: &mut mpsc::Receiver<BridgeControl>,
        exits: &mpsc::Sender<BridgeExit>,
    ) -> BridgeExit {
        let mut ticks = interval_at(
            frame_grid::next_tick_at(Instant::now(), frame_grid::sender_offset()),
            frame_grid::FRAME_PERIOD,
        );
        // Catch up after a stall rather than drift: the jitter buffer's timeline is wall time.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Some(exit) = self.tick(leg, exits).await {
                        return exit;
                    }
                }
                message = control.recv() => match message {
                    Some(BridgeControl::Media(new)) => self.repoint(new, leg),
                    Some(BridgeControl::Stop(reason)) => {
                        let _ = leg.events.send(LegEvent::Hangup(reason)).await;
                        return BridgeExit::Stopped;
                    }
                    None => return BridgeExit::Stopped,
                },
            }
        }
    }

    fn ms_since_start(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    async fn tick(
        &mut self,
        leg: &mut LegEnd,
        exits: &mpsc::Sender<BridgeExit>,
    ) -> Option<BridgeExit> {
        let now = Instant::now();
        self.receive(leg, now);
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(RTCP_READ_TICKS) {
            self.receive_reports(now);
        }
        // A peer that only receives still sends RTCP, so even a call we only send on stays
        // under the timeout: nobody can point our audio at a third party for long.
        if self.media.direction != MediaDirection::Inactive && now >= self.last_rx + self.inactivity
        {
            return Some(BridgeExit::MediaTimeout);
        }
        let now_ms = self.ms_since_start(now);
        if let Some(exit) = self.take_commands(leg, exits, now_ms).await {
            return Some(exit);
        }
        // A decoder failure loses this tick's audio, not the call.
        if self.inbound.is_playing()
            && let Ok(Some(frame)) = self.inbound.tick(now_ms, &mut self.codec)
            && let Some(frame) = frame.convert()
            // Never block on a slow session: drop and count instead.
            && leg.events.try_send(LegEvent::Audio(frame)).is_err()
        {
            self.dropped_frames += 1;
        }
        if sending(self.media.direction) {
            self.send(leg, now_ms);
        }
        if now >= self.report_at {
            self.report_at += RTCP_INTERVAL;
            self.send_report();
        }
        None
    }

    /// The peer's packets since the last tick, each at the time the kernel received it.
    fn receive(&mut self, leg: &LegEnd, now: Instant) {
        for _ in 0..MAX_READS_PER_TICK {
            let received = match self.socket.recv_rtp(&mut self.recv_buf) {
                Ok(Some(received)) => received,
                Ok(None) => return,
                Err(err) => {
                    tracing::debug!("RTP read failed: {err}");
                    return;
                }
            };
            let arrived = now.checked_sub(received.age).unwrap_or(now);
            match self.latch.check(received.from, arrived.into_std()) {
                Verdict::Accept => {}
                Verdict::Stranger { first } => {
                    if first {
                        tracing::warn!(from = %received.from, peer = %self.latch.target(), "dropping RTP from a stranger");
                    }
                    continue;
                }
            }
            self.last_rx = self.last_rx.max(arrived);
            let Ok(packet) = media::rtp::parse(&self.recv_buf[..received.len]) else {
                continue;
            };
            let arrival = self.ms_since_start(arrived);
            self.stats.on_packet(
                packet.ssrc,
                packet.sequence_number,
                packet.timestamp,
                arrival,
            );
            if packet.payload_type == self.media.payload_type {
                self.inbound.insert(
                    arrival,
                    packet.ssrc,
                    packet.sequence_number,
                    packet.timestamp,
                    packet.payload,
                );
            } else if Some(packet.payload_type) == self.media.dtmf.map(|e| e.payload_type)
                && let Some(digit) = self.dtmf.receive(packet.timestamp, packet.payload)
            {
                let _ = leg.events.try_send(LegEvent::Dtmf(digit));
            }
        }
    }

    /// The peer's reports keep a send-only call alive; anyone else's are drained.
    fn receive_reports(&mut self, now: Instant) {
        let mut report = [0u8; 512];
        for _ in 0..MAX_READS_PER_TICK {
            match self.socket.recv_rtcp(&mut report) {
                Ok(Some((_, from))) => {
                    if from.ip().to_canonical() == self.latch.target().ip().to_canonical() {
                        self.last_rx = now;
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// What the session asked for since the last tick.
    async fn take_commands(
        &mut self,
        leg: &mut LegEnd,
        exits: &mpsc::Sender<BridgeExit>,
        now_ms: u64,
    ) -> Option<BridgeExit> {
        loop {
            let command = match leg.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => return Some(BridgeExit::LocalHangup),
            };
            match command {
                LegCommand::Audio(frame) => {
                    if !sending(self.media.direction) {
                        if !self.keys_out.is_idle() {
                            tracing::warn!("DTMF keys dropped: the call is on hold");
                            self.keys_out = DtmfOut::default();
                        }
                        continue;
                    }
                    self.send_queue.push_frame(frame, now_ms);
                }
                // A mark ends a stretch of the agent's speech: it is reported once the frames
                // before it are sent (a peer plays what it gets at once), and silence follows.
                LegCommand::Mark(name) => {
                    self.send_queue.push_mark(name);
                    report_marks(leg, self.send_queue.due_marks());
                }
                // Frames not yet sent and keys not yet started are agent output like any other.
                LegCommand::Clear => {
                    self.keys_out.clear();
                    self.send_queue.clear();
                    report_marks(leg, self.send_queue.due_marks());
                }
                LegCommand::SendDtmf(digits) => {
                    let queued = KeySequence::parse(&digits)
                        .map_err(|e| e.to_string())
                        .and_then(|keys| self.keys_out.queue(&keys).map_err(|e| e.to_string()));
                    if let Err(err) = queued {
                        tracing::warn!(%digits, "DTMF keys not sent: {err}");
                    }
                }
                LegCommand::Transfer(target) => {
                    let _ = exits.send(BridgeExit::Transfer(target)).await;
                }
                LegCommand::Hangup => return Some(BridgeExit::LocalHangup),
            }
        }
    }

    /// The tick's packet (or two, catching up), with the marks that fall due.
    fn send(&mut self, leg: &LegEnd, now_ms: u64) {
        self.send_queue.start_tick(now_ms);
        report_marks(leg, self.send_queue.due_marks());
        while let Some(frame) = self.send_queue.pop_frame() {
            let to = self.latch.target();
            self.outbound.send_frame(
                &self.socket,
                to,
                &self.media,
                &mut self.codec,
                &mut self.keys_out,
                frame.into(),
            );
            report_marks(leg, self.send_queue.due_marks());
        }
    }

    fn send_report(&mut self) {
        let info = SenderInfo {
            ntp_timestamp: ntp_now(),
            rtp_timestamp: self.outbound.timestamp(),
            packet_count: self.outbound.packets,
            octet_count: self.outbound.octets,
        };
        let block = self.stats.report_block();
        let mut report = [0u8; 128];
        if let Ok(len) =
            rtcp::write_sender_report(self.outbound.ssrc(), &info, block.as_ref(), &mut report)
        {
            let remote = self.latch.target();
            let rtcp_remote = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
            self.socket.send_rtcp(&report[..len], rtcp_remote);
        }
    }

    /// A re-INVITE changed the media: follow a new address (and latch afresh), codec and
    /// direction.
    fn repoint(&mut self, new: NegotiatedMedia, leg: &LegEnd) {
        let now = Instant::now();
        self.latch.repoint(new.remote, now.into_std());
        if new.payload_type != self.media.payload_type
            && let Ok(new_codec) = VoiceCodec::new(new.codec)
        {
            self.codec = new_codec;
            self.inbound = InboundAudio::new(new.codec.clock_rate());
            self.outbound.switch_payload_type(new.payload_type);
        }
        self.media = new;
        if !sending(self.media.direction) {
            self.send_queue.clear();
            report_marks(leg, self.send_queue.due_marks());
        }
        self.last_rx = now;
    }
}
