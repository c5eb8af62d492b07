//! Adaptive jitter buffer for one inbound RTP stream of 20 ms packets.
//!
//! Packets go in as they arrive (`insert`, with arrival time passed in); one comes out per
//! 20 ms playout tick (`pop`). The buffer reorders, drops late and duplicate packets, and
//! says when to conceal. Its target delay follows the measured interarrival jitter
//! (RFC 3550 A.8) between 20 and 200 ms, and stays at least `initial_delay_ms` until the
//! estimate has seen `JITTER_WARMUP` packets. A missing packet holds playout back (the delay
//! grows) while the buffer is shallower than the target, since it is more likely late than
//! lost; a buffer running deeper than the target skips a frame to catch up.
//! A slot's payload buffer grows to the largest packet it has held and is then reused, so
//! after the first few packets nothing allocates, and a G.711 call keeps 32 × 160 bytes, not
//! 32 × `MAX_PAYLOAD`.

use crate::rtp::SeqUnwrapper;

/// Slots in the ring: 640 ms of 20 ms packets, beyond the 200 ms maximum target.
const SLOTS: usize = 32;
/// Largest payload kept (an Opus 20 ms frame is at most 1275 bytes; G.711 is 160).
pub const MAX_PAYLOAD: usize = 1_500;
const FRAME_MS: u32 = 20;
/// Packets the jitter estimate needs (its gain is 1/16) before it replaces the initial delay.
const JITTER_WARMUP: u32 = 16;

/// Tuning for `JitterBuffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Smallest and largest target delay.
    pub min_delay_ms: u32,
    pub max_delay_ms: u32,
    /// Target delay before any jitter has been measured.
    pub initial_delay_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: 8_000,
            min_delay_ms: 20,
            max_delay_ms: 200,
            initial_delay_ms: 60,
        }
    }
}

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Accepted,
    /// Its playout time had passed.
    Late,
    /// The same sequence number was already buffered or played.
    Duplicate,
    /// Too far ahead of playout to buffer (a jump or a new stream): the buffer restarted.
    Restarted,
    /// Payload larger than `MAX_PAYLOAD`: dropped.
    TooLarge,
}

/// What to play for this tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Still filling up to the target delay (or no stream yet): play silence.
    Buffering,
    /// The next packet's payload, and its RTP timestamp.
    Packet { payload: &'a [u8], timestamp: u32 },
    /// The packet due now is missing: conceal (Opus PLC/FEC, G.711 repeat-and-fade).
    /// `next_payload` is the following packet if already here (for Opus in-band FEC).
    Conceal { next_payload: Option<&'a [u8]> },
}

/// Counters for call quality reporting and RTCP.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    pub received: u64,
    /// Packets never received by the time they were due.
    pub lost: u64,
    pub late: u64,
    pub duplicate: u64,
    /// Ticks that played concealment (loss plus underruns).
    pub concealed: u64,
    /// Frames skipped to bring the delay back down to target.
    pub skipped: u64,
    /// Interarrival jitter (RFC 3550 A.8) in milliseconds.
    pub jitter_ms: f64,
    /// Current target delay in milliseconds.
    pub target_delay_ms: u32,
}

#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    timestamp: u32,
    filled: bool,
}

/// Reorders and times one stream's packets for playout.
pub struct JitterBuffer {
    config: JitterConfig,
    slots: [Slot; SLOTS],
    payloads: [Vec<u8>; SLOTS],
    unwrapper: SeqUnwrapper,
    ssrc: Option<u32>,
    // Next extended sequence number to play; None until playout starts.
    next: Option<u64>,
    highest: Option<u64>,
    // Bit i set: packet `highest - i` was received (duplicate detection over 64 packets).
    received_mask: u64,
    first_arrival_ms: Option<u64>,
    // For the A.8 jitter estimate: previous packet's arrival (ms) and timestamp.
    last_transit: Option<(u64, u32)>,
    jitter_ts: f64,
    // Interarrival differences folded into `jitter_ts` so far, up to `JITTER_WARMUP`.
    jitter_samples: u32,
    // How long playout has waited for the missing packet `next` with newer ones buffered.
    held_ms: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        JitterBuffer {
            config,
            slots: [Slot {
                seq: 0,
                timestamp: 0,
                filled: false,
            }; SLOTS],
            payloads: std::array::from_fn(|_| Vec::new()),
            unwrapper: SeqUnwrapper::default(),
            ssrc: None,
            next: None,
            highest: None,
            received_mask: 0,
            first_arrival_ms: None,
            last_transit: None,
            jitter_ts: 0.0,
            jitter_samples: 0,
            held_ms: 0,
            stats: JitterStats {
                target_delay_ms: config.initial_delay_ms,
                ..JitterStats::default()
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.jitter_ms = self.jitter_ts * 1000.0 / f64::from(self.config.clock_rate);
        stats
    }

    /// Adds a packet that arrived at `now_ms`.
    pub fn insert(
        &mut self,
        now_ms: u64,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
    ) -> Inserted {
        if payload.len() > MAX_PAYLOAD {
            return Inserted::TooLarge;
        }
        let mut outcome = Inserted::Accepted;
        if self.ssrc != Some(ssrc) {
            // A new source (re-INVITE, SBC failover): its numbering starts afresh.
            if self.ssrc.is_some() {
                outcome = Inserted::Restarted;
            }
            self.restart(ssrc);
        }
        let mut seq = self.unwrapper.unwrap(sequence);
        if self.was_received(seq) {
            self.stats.duplicate += 1;
            return Inserted::Duplicate;
        }
        if let Some(next) = self.next {
            if seq < next {
                self.stats.late += 1;
                return Inserted::Late;
            }
            if seq >= next + SLOTS as u64 {
                // Far ahead of playout: treat as a discontinuity and start over from here.
                self.restart(ssrc);
                seq = self.unwrapper.unwrap(sequence);
                outcome = Inserted::Restarted;
            }
        }
        let index = (seq % SLOTS as u64) as usize;
        self.slots[index] = Slot {
            seq,
            timestamp,
            filled: true,
        };
        self.payloads[index].clear();
        self.payloads[index].extend_from_slice(payload);
        self.stats.received += 1;
        self.mark_received(seq);
        self.first_arrival_ms.get_or_insert(now_ms);
        self.update_jitter(now_ms, timestamp);
        outcome
    }

    /// The payload to play for the tick at `now_ms` (call once per 20 ms).
    pub fn pop(&mut self, now_ms: u64) -> Playout<'_> {
        let Some(highest) = self.highest else {
            return Playout::Buffering;
        };
        let next = match self.next {
            Some(next) => next,
            None => {
                // Start once the target delay has passed since the first packet arrived.
                let first = self.first_arrival_ms.unwrap_or(now_ms);
                if now_ms < first + u64::from(self.stats.target_delay_ms) {
                    return Playout::Buffering;
                }
                let oldest = (0..SLOTS)
                    .filter(|&i| self.slots[i].filled)
                    .map(|i| self.slots[i].seq)
                    .min()
                    .unwrap_or(highest);
                self.next = Some(oldest);
                oldest
            }
        };
        // Running deeper than target plus two frames: skip the oldest frame to catch up.
        let depth_ms = (highest.saturating_sub(next) as u32 + 1) * FRAME_MS;
        let mut next = next;
        if depth_ms > self.stats.target_delay_ms + 2 * FRAME_MS {
            self.take(next);
            self.stats.skipped += 1;
            next += 1;
        }
        let index = (next % SLOTS as u64) as usize;
        if self.slots[index].filled && self.slots[index].seq == next {
            self.held_ms = 0;
            self.next = Some(next + 1);
            self.slots[index].filled = false;
            let slot = self.slots[index];
            return Playout::Packet {
                payload: &self.payloads[index],
                timestamp: slot.timestamp,
            };
        }
        self.stats.concealed += 1;
        if highest < next {
            // Underrun: nothing newer has come. Hold position, which lengthens the delay.
            self.next = Some(next);
            return Playout::Conceal { next_payload: None };
        }
        let depth_ms = (highest.saturating_sub(next) as u32 + 1) * FRAME_MS;
        if depth_ms < self.stats.target_delay_ms && self.held_ms < self.stats.target_delay_ms {
            // Newer packets are here but the buffer is shallower than the target: this one is
            // more likely late than lost. Wait a tick for it (the delay grows), up to the
            // target in all, so a real loss before a pause in the stream still plays out.
            self.held_ms += FRAME_MS;
            self.next = Some(next);
            return Playout::Conceal { next_payload: None };
        }
        self.held_ms = 0;
        self.stats.lost += 1;
        self.next = Some(next + 1);
        let after = ((next + 1) % SLOTS as u64) as usize;
        let next_payload = (self.slots[after].filled && self.slots[after].seq == next + 1)
            .then(|| &self.payloads[after][..]);
        Playout::Conceal { next_payload }
    }

    fn take(&mut self, seq: u64) {
        let index = (seq % SLOTS as u64) as usize;
        if self.slots[index].seq == seq {
            self.slots[index].filled = false;
        } else {
            self.stats.lost += 1;
        }
    }

    fn was_received(&self, seq: u64) -> bool {
        match self.highest {
            Some(h) if seq <= h && h - seq < 64 => self.received_mask & (1 << (h - seq)) != 0,
            _ => false,
        }
    }

    fn mark_received(&mut self, seq: u64) {
        match self.highest {
            Some(h) if seq <= h => {
                if h - seq < 64 {
                    self.received_mask |= 1 << (h - seq);
                }
            }
            Some(h) => {
                let shift = seq - h;
                self.received_mask = if shift >= 64 {
                    0
                } else {
                    self.received_mask << shift
                };
                self.received_mask |= 1;
                self.highest = Some(seq);
            }
            None => {
                self.received_mask = 1;
                self.highest = Some(seq);
            }
        }
    }

    fn restart(&mut self, ssrc: u32) {
        self.ssrc = Some(ssrc);
        self.unwrapper = SeqUnwrapper::default();
        self.next = None;
        self.highest = None;
        self.received_mask = 0;
        self.first_arrival_ms = None;
        self.last_transit = None;
        self.held_ms = 0;
        for slot in &mut self.slots {
            slot.filled = false;
        }
    }

    fn update_jitter(&mut self, now_ms: u64, timestamp: u32) {
        let rate = f64::from(self.config.clock_rate);
        if let Some((prev_arrival, prev_ts)) = self.last_transit {
            let arrival_delta = (now_ms as f64 - prev_arrival as f64) * rate / 1000.0;
            let ts_delta = crate::rtp::ts_delta(prev_ts, timestamp) as f64;
            let d = (arrival_delta - ts_delta).abs();
            self.jitter_ts += (d - self.jitter_ts) / 16.0;
            self.jitter_samples = (self.jitter_samples + 1).min(JITTER_WARMUP);
        }
        self.last_transit = Some((now_ms, timestamp));
        let jitter_ms = self.jitter_ts * 1000.0 / rate;
        // Cover about three deviations of jitter plus one frame, within the configured range.
        let mut target = (3.0 * jitter_ms) as u32 + FRAME_MS;
        if self.jitter_samples < JITTER_WARMUP {
            target = target.max(self.config.initial_delay_ms);
        }
        self.stats.target_delay_ms =
            target.clamp(self.config.min_delay_ms, self.config.max_delay_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 42;

    fn payload(seq: u16) -> [u8; 4] {
        seq.to_be_bytes().repeat(2).try_into().unwrap()
    }

    /// Plays ticks from `from_ms` every 20 ms until `until_ms`, collecting the sequence
    /// numbers played (None for concealment) once buffering is over.
    fn play(jb: &mut JitterBuffer, ticks: impl Iterator<Item = u64>) -> Vec<Option<u16>> {
        let mut out = Vec::new();
        for now in ticks {
            match jb.pop(now) {
                Playout::Buffering => {}
                Playout::Packet { payload, .. } => {
                    out.push(Some(u16::from_be_bytes([payload[0], payload[1]])))
                }
                Playout::Conceal { .. } => out.push(None),
            }
        }
        out
    }

    /// Runs arrivals `(ms, seq)` and 20 ms playout ticks over `span` in time order.
    fn simulate(
        jb: &mut JitterBuffer,
        arrivals: &[(u64, u16)],
        span: std::ops::RangeInclusive<u64>,
    ) -> Vec<Option<u16>> {
        let mut played = Vec::new();
        let mut i = 0;
        for now in span.step_by(20) {
            while i < arrivals.len() && arrivals[i].0 <= now {
                let (at, seq) = arrivals[i];
                let ts = u32::from(seq.wrapping_sub(arrivals[0].1)) * 160;
                jb.insert(at, SSRC, seq, ts, &payload(seq));
                i += 1;
            }
            played.extend(play(jb, std::iter::once(now)));
        }
        played
    }

    #[test]
    fn reordered_packets_play_in_order_after_the_initial_delay() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let arrivals = [(0u64, 65_534u16), (20, 0), (21, 65_535), (60, 1), (80, 2)];
        let played = simulate(&mut jb, &arrivals, 0..=200);
        assert_eq!(
            played[..5],
            [Some(65_534), Some(65_535), Some(0), Some(1), Some(2)]
        );
        assert_eq!(jb.stats().lost + jb.stats().skipped, 0);
    }

    #[test]
    fn loss_is_concealed_with_the_next_packet_offered_for_fec() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for seq in [10u16, 11, 13, 14] {
            jb.insert(
                u64::from(seq) * 20,
                SSRC,
                seq,
                u32::from(seq) * 160,
                &payload(seq),
            );
        }
        let mut saw_fec = false;
        for now in (260..=400).step_by(20) {
            if let Playout::Conceal { next_payload } = jb.pop(now) {
                saw_fec = next_payload == Some(&payload(13)[..]);
                break;
            }
        }
        assert!(saw_fec);
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.concealed), (1, 1));
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped_and_counted() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for seq in 0..5u16 {
            jb.insert(
                u64::from(seq) * 20,
                SSRC,
                seq,
                u32::from(seq) * 160,
                &payload(seq),
            );
        }
        assert_eq!(
            jb.insert(90, SSRC, 4, 640, &payload(4)),
            Inserted::Duplicate
        );
        play(&mut jb, (100..=160).step_by(20));
        assert_eq!(
            jb.insert(170, SSRC, 1, 160, &payload(1)),
            Inserted::Duplicate
        );
        // A packet that was never received and whose time has passed is late.
        let mut jb2 = JitterBuffer::new(JitterConfig::default());
        for seq in [0u16, 2, 3] {
            jb2.insert(
                u64::from(seq) * 20,
                SSRC,
                seq,
                u32::from(seq) * 160,
                &payload(seq),
            );
        }
        play(&mut jb2, (100..=160).step_by(20));
        assert_eq!(jb2.insert(170, SSRC, 1, 160, &payload(1)), Inserted::Late);
        assert_eq!(jb.stats().duplicate, 2);
        assert_eq!(jb2.stats().late, 1);
    }

    #[test]
    fn an_underrun_holds_playout_instead_of_dropping_the_delayed_packets() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut arrivals: Vec<(u64, u16)> = (0..10u16).map(|s| (u64::from(s) * 20, s)).collect();
        // Packets 10..15 are held up 120 ms in the network and arrive together.
        arrivals.extend((10..15u16).map(|s| (320, s)));
        arrivals.extend((15..30u16).map(|s| (u64::from(s) * 20, s)));
        let mut played = Vec::new();
        let mut i = 0;
        for now in (0..=1_000u64).step_by(20) {
            while i < arrivals.len() && arrivals[i].0 <= now {
                let (at, seq) = arrivals[i];
                jb.insert(at, SSRC, seq, u32::from(seq) * 160, &payload(seq));
                i += 1;
            }
            played.extend(play(&mut jb, std::iter::once(now)));
        }
        let packets: Vec<u16> = played.iter().flatten().copied().collect();
        let expected: Vec<u16> = (0..30)
            .filter(|s| !packets.is_empty() && *s >= packets[0])
            .collect();
        // Every packet plays (a catch-up skip may drop one or two to restore the target).
        let stats = jb.stats();
        assert_eq!(packets.len() as u64 + stats.skipped, expected.len() as u64);
        assert_eq!(stats.lost, 0);
        assert_eq!(stats.late, 0);
        assert!(stats.concealed >= 1);
        assert!(stats.jitter_ms > 0.0);
    }

    #[test]
    fn jitter_estimate_and_target_follow_arrival_variation() {
        let mut steady = JitterBuffer::new(JitterConfig::default());
        let mut jittery = JitterBuffer::new(JitterConfig::default());
        for seq in 0..500u16 {
            let nominal = u64::from(seq) * 20;
            steady.insert(nominal, SSRC, seq, u32::from(seq) * 160, &payload(seq));
            let wobble = u64::from(seq % 5) * 15;
            jittery.insert(
                nominal + wobble,
                SSRC,
                seq,
                u32::from(seq) * 160,
                &payload(seq),
            );
        }
        assert_eq!(steady.stats().jitter_ms, 0.0);
        assert_eq!(steady.stats().target_delay_ms, 20);
        let j = jittery.stats();
        assert!(j.jitter_ms > 10.0, "jitter {}", j.jitter_ms);
        assert!(j.target_delay_ms > 40 && j.target_delay_ms <= 200);
    }

    #[test]
    fn playout_waits_the_initial_delay_before_the_jitter_is_known() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let arrivals: Vec<(u64, u16)> = (0..10u16).map(|s| (u64::from(s) * 20, s)).collect();
        // Ticks at 0, 20, …, 200 ms: those at 0, 20 and 40 ms are still buffering.
        let played = simulate(&mut jb, &arrivals, 0..=200);
        assert_eq!(played.len(), 11 - 3, "{played:?}");
        assert_eq!(played[0], Some(0));
    }

    #[test]
    fn a_packet_late_by_less_than_the_target_still_plays() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Packet 5 is held up 50 ms in the network, behind 6 and 7: within the 60 ms initial
        // delay, which holds until the jitter estimate has warmed up.
        let mut arrivals: Vec<(u64, u16)> = (0..12u16)
            .filter(|&s| s != 5)
            .map(|s| (u64::from(s) * 20, s))
            .collect();
        arrivals.push((150, 5));
        arrivals.sort();
        let played = simulate(&mut jb, &arrivals, 0..=400);
        let packets: Vec<u16> = played.iter().flatten().copied().collect();
        assert_eq!(packets, (0..12).collect::<Vec<u16>>(), "{played:?}");
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.late), (0, 0), "{stats:?}");
    }

    #[test]
    fn a_real_loss_before_a_pause_does_not_strand_the_packets_after_it() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Packet 5 is lost and 6 arrives, then the sender pauses (DTX, hold): the buffer is
        // shallower than its target, so playout waits for 5 a while, then gives it up.
        let arrivals: Vec<(u64, u16)> = (0..7u16)
            .filter(|&s| s != 5)
            .map(|s| (u64::from(s) * 20, s))
            .collect();
        let played = simulate(&mut jb, &arrivals, 0..=600);
        let packets: Vec<u16> = played.iter().flatten().copied().collect();
        assert_eq!(packets, [0, 1, 2, 3, 4, 6], "{played:?}");
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn a_new_ssrc_or_a_sequence_jump_restarts_the_stream() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.insert(0, SSRC, 100, 0, &payload(100));
        play(&mut jb, (0..=100).step_by(20));
        let restarted = jb.insert(120, 7, 5_000, 9, &payload(5_000));
        assert_eq!(restarted, Inserted::Restarted);
        play(&mut jb, (120..=220).step_by(20));
        let jumped = jb.insert(240, 7, 20_000, 9, &payload(20_000));
        assert_eq!(jumped, Inserted::Restarted);
        let next = jb.insert(260, 7, 20_001, 169, &payload(20_001));
        assert_eq!(next, Inserted::Accepted);
        let played = play(&mut jb, (260..=400).step_by(20));
        assert_eq!(played[..2], [Some(20_000), Some(20_001)]);
        let huge = jb.insert(400, 7, 1, 0, &[0; MAX_PAYLOAD + 1]);
        assert_eq!(huge, Inserted::TooLarge);
    }
}
