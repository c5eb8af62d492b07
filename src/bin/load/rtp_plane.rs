//! The callers' media: a pool of RTP sockets on 127.0.0.1 (one per live call, reused), one
//! 20 ms tick that sends every live call its next μ-law packet — a single timer keeps the
//! pacing honest at any call count, where a sleeping task per call would drift apart — and a
//! receiver per socket that hands the engine's packets to the call's ear, timed by the
//! kernel's arrival stamp: when the engine's packet arrived, not when this client, busy on
//! the same cores, got round to reading it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use boltcall::telephony::rtp::ports::{arrival_control, recv_stamped, stamp_arrivals};
use media::rtp::{self, HEADER_LEN, Packetizer};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::histogram::Histogram;
use crate::speech::{Ear, FRAME, Script};

/// A live call's stream: where it goes, where it is in the caller's audio, what came back.
struct Stream {
    remote: SocketAddr,
    payload_type: u8,
    answered: Instant,
    packetizer: Packetizer,
    frame: usize,
    ear: Ear,
}

pub struct Slot {
    socket: UdpSocket,
    pub addr: SocketAddr,
    stream: Mutex<Option<Stream>>,
}

pub struct MediaPlane {
    free: Mutex<Vec<Arc<Slot>>>,
    live: Mutex<Vec<Arc<Slot>>>,
    /// Gaps between consecutive engine packets of every call, in ms.
    gaps: Mutex<Histogram>,
    /// What the callers send.
    script: Script,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MediaPlane {
    pub fn new(script: Script) -> Arc<MediaPlane> {
        Arc::new(MediaPlane {
            free: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            gaps: Mutex::new(Histogram::gaps()),
            script,
        })
    }

    /// A socket for a new call: a free one, or a new one with its receiver.
    pub async fn reserve(self: &Arc<Self>) -> std::io::Result<Arc<Slot>> {
        if let Some(slot) = lock(&self.free).pop() {
            return Ok(slot);
        }
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        stamp_arrivals(&socket)?;
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
            ear: Ear::default(),
        });
        lock(&self.live).push(slot.clone());
    }

    /// Stops the call's stream, returns its socket to the pool and what it heard.
    pub fn finish(&self, slot: Arc<Slot>) -> Option<Ear> {
        lock(&self.live).retain(|s| !Arc::ptr_eq(s, &slot));
        let stream = lock(&slot.stream).take();
        lock(&self.free).push(slot);
        stream.map(|s| s.ear)
    }

    /// The gaps between consecutive engine packets of every call so far, in ms.
    pub fn gaps(&self) -> MutexGuard<'_, Histogram> {
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
        let payload = self
            .script
            .frame(stream.frame, stream.answered.elapsed(), &mut stream.ear);
        let len = stream
            .packetizer
            .packetize(payload, FRAME as u32, false, packet)
            .ok()?;
        stream.frame += 1;
        Some((stream.remote, len))
    }
}

/// Hands the engine's packets on one socket to its call's ear; packets from anywhere but the
/// live call's engine address (a previous call's late stream) are ignored.
async fn receive(plane: Arc<MediaPlane>, slot: Arc<Slot>) {
    let mut buf = [0u8; 2048];
    let mut control = arrival_control();
    while slot.socket.readable().await.is_ok() {
        let received = match slot.socket.try_io(Interest::READABLE, || {
            recv_stamped(&slot.socket, &mut buf, &mut control)
        }) {
            Ok(received) => received,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let now = Instant::now();
        let arrived = now.checked_sub(received.age).unwrap_or(now);
        let (len, from) = (received.len, received.from);
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
        if let Some(gap) = stream.ear.hear(
            arrived.saturating_duration_since(stream.answered),
            packet.payload,
        ) {
            lock(&plane.gaps).add_ms(gap);
        }
    }
}
