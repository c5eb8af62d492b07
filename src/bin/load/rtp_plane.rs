//! The callers' media: a pool of RTP sockets on 127.0.0.1 (one per live call, reused), one
//! 20 ms tick that sends every live call its next μ-law packet — a single timer keeps the
//! pacing honest at any call count, where a sleeping task per call would drift apart — and a
//! receiver per socket that times the engine's packets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use media::rtp::{self, HEADER_LEN, Packetizer};
use tokio::net::UdpSocket;

use crate::gaps::Gaps;

const FRAME: usize = 160;
/// A decoded packet this loud (RMS of 16-bit samples, about −50 dBFS) is speech, not the
/// digital silence the engine sends between sentences.
const VOICE_RMS: f64 = 100.0;

/// What one call heard from the engine, timed from its 200 OK.
#[derive(Default, Clone)]
pub struct MediaStats {
    /// Engine audio packets (the negotiated payload type) from the engine's RTP address.
    pub packets: u64,
    pub first_packet: Option<Duration>,
    /// The first packet carrying sound: the greeting has started.
    pub first_voice: Option<Duration>,
    /// From the first to the last packet.
    pub span: Duration,
    pub max_gap: Duration,
}

/// A live call's stream: where it goes, where it is in the caller's audio, what came back.
struct Stream {
    remote: SocketAddr,
    payload_type: u8,
    answered: Instant,
    packetizer: Packetizer,
    frame: usize,
    first_rx: Option<Instant>,
    last_rx: Option<Instant>,
    stats: MediaStats,
}

pub struct Slot {
    socket: UdpSocket,
    pub addr: SocketAddr,
    stream: Mutex<Option<Stream>>,
}

pub struct MediaPlane {
    free: Mutex<Vec<Arc<Slot>>>,
    live: Mutex<Vec<Arc<Slot>>>,
    gaps: Mutex<Gaps>,
    /// The callers' μ-law, looped; silence when empty.
    audio: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MediaPlane {
    pub fn new(audio: Vec<u8>) -> Arc<MediaPlane> {
        Arc::new(MediaPlane {
            free: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            gaps: Mutex::new(Gaps::new()),
            audio,
        })
    }

    /// A socket for a new call: a free one, or a new one with its receiver.
    pub async fn reserve(self: &Arc<Self>) -> std::io::Result<Arc<Slot>> {
        if let Some(slot) = lock(&self.free).pop() {
            return Ok(slot);
        }
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let slot = Arc::new(Slot {
            addr: socket.local_addr()?,
            socket,
            stream: Mutex::new(None),
        });
        tokio::spawn(receive(self.clone(), slot.clone()));
        Ok(slot)
    }

    /// Starts streaming to the engine, on the next tick.
    pub fn start(&self, slot: &Arc<Slot>, remote: SocketAddr, payload_type: u8, answered: Instant) {
        *lock(&slot.stream) = Some(Stream {
            remote,
            payload_type,
            answered,
            packetizer: Packetizer::new(
                rand::random(),
                payload_type,
                rand::random(),
                rand::random(),
            ),
            frame: 0,
            first_rx: None,
            last_rx: None,
            stats: MediaStats::default(),
        });
        lock(&self.live).push(slot.clone());
    }

    /// Stops the call's stream, returns its socket to the pool and what it heard.
    pub fn finish(&self, slot: Arc<Slot>) -> Option<MediaStats> {
        lock(&self.live).retain(|s| !Arc::ptr_eq(s, &slot));
        let stream = lock(&slot.stream).take();
        lock(&self.free).push(slot);
        stream.map(|s| s.stats)
    }

    /// The gaps between consecutive engine packets of every call so far.
    pub fn gaps(&self) -> MutexGuard<'_, Gaps> {
        lock(&self.gaps)
    }

    /// Sends every live call one 20 ms packet per tick, forever.
    pub async fn run_ticker(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        // A late tick is made up at once, so each call still sends 50 packets a second.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut packet = [0u8; HEADER_LEN + FRAME];
        loop {
            tick.tick().await;
            let live = lock(&self.live).clone();
            for slot in live {
                let Some((remote, len)) = self.next_packet(&slot, &mut packet) else {
                    continue;
                };
                // A full socket buffer drops the packet, like a network would.
                let _ = slot.socket.try_send_to(&packet[..len], remote);
            }
        }
    }

    /// Writes the call's next packet into `packet`: where it goes and its length.
    fn next_packet(&self, slot: &Slot, packet: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let mut guard = lock(&slot.stream);
        let stream = guard.as_mut()?;
        let usable = self.audio.len() - self.audio.len() % FRAME;
        let payload = if usable == 0 {
            &[0xFF; FRAME][..]
        } else {
            let at = (stream.frame * FRAME) % usable;
            &self.audio[at..at + FRAME]
        };
        let len = stream
            .packetizer
            .packetize(payload, FRAME as u32, false, packet)
            .ok()?;
        stream.frame += 1;
        Some((stream.remote, len))
    }
}

/// Times the engine's packets on one socket; packets from anywhere but the live call's
/// engine address (a previous call's late stream) are ignored.
async fn receive(plane: Arc<MediaPlane>, slot: Arc<Slot>) {
    let mut buf = [0u8; 2048];
    let mut pcm = [0i16; FRAME];
    while let Ok((len, from)) = slot.socket.recv_from(&mut buf).await {
        let now = Instant::now();
        let Ok(packet) = rtp::parse(&buf[..len]) else {
            continue;
        };
        let mut guard = lock(&slot.stream);
        let Some(stream) = guard.as_mut() else {
            continue;
        };
        if from != stream.remote || packet.payload_type != stream.payload_type {
            continue;
        }
        let since_answer = now - stream.answered;
        let stats = &mut stream.stats;
        stats.packets += 1;
        stats.first_packet.get_or_insert(since_answer);
        if stats.first_voice.is_none() && is_voice(packet.payload, &mut pcm) {
            stats.first_voice = Some(since_answer);
        }
        if let Some(last) = stream.last_rx {
            let gap = now - last;
            stats.max_gap = stats.max_gap.max(gap);
            lock(&plane.gaps).add(gap);
        }
        let first = *stream.first_rx.get_or_insert(now);
        stats.span = now - first;
        stream.last_rx = Some(now);
    }
}

fn is_voice(payload: &[u8], pcm: &mut [i16; FRAME]) -> bool {
    let n = payload.len().min(FRAME);
    if n == 0 || media::g711::decode_ulaw(&payload[..n], &mut pcm[..n]).is_err() {
        return false;
    }
    let energy: f64 = pcm[..n].iter().map(|&s| f64::from(s).powi(2)).sum();
    (energy / n as f64).sqrt() > VOICE_RMS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_not_voice_and_a_tone_is() {
        let mut pcm = [0i16; FRAME];
        assert!(!is_voice(&[0xFF; FRAME], &mut pcm));
        let tone: Vec<u8> = (0..FRAME)
            .map(|i| media::g711::ulaw_from_linear(((i as f64 * 0.3).sin() * 3000.0) as i16))
            .collect();
        assert!(is_voice(&tone, &mut pcm));
    }
}
