//! Inbound audio of one call, time passed in: RTP payloads go through the media crate's
//! adaptive jitter buffer and the call's decoder, and come out as one 16 kHz frame per 20 ms
//! playout tick. From the first packet on the stream is gapless, as the session's recorder
//! expects: losses are concealed, and a peer gone quiet (on hold) fades to silence.

use media::Frame;
use media::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};

use super::voice::{VoiceCodec, VoiceError};

/// Packets popped at most per tick (10 ms packets need two for one 20 ms frame).
const MAX_POPS_PER_TICK: usize = 4;

pub struct InboundAudio {
    jitter: JitterBuffer,
    playing: bool,
}

impl InboundAudio {
    /// Playout for a stream with this RTP clock rate.
    pub fn new(clock_rate: u32) -> Self {
        InboundAudio {
            jitter: JitterBuffer::new(JitterConfig {
                clock_rate,
                ..JitterConfig::default()
            }),
            playing: false,
        }
    }

    /// Buffers a packet that arrived at `now_ms`.
    pub fn insert(
        &mut self,
        now_ms: u64,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
    ) {
        self.jitter
            .insert(now_ms, ssrc, sequence, timestamp, payload);
        self.playing = true;
    }

    /// Whether ticks are due: from the first packet on.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// The frame to hand the session for the 20 ms tick at `now_ms`; `None` while the buffer
    /// first fills up.
    pub fn tick(
        &mut self,
        now_ms: u64,
        codec: &mut VoiceCodec,
    ) -> Result<Option<Frame>, VoiceError> {
        for _ in 0..MAX_POPS_PER_TICK {
            if let Some(frame) = codec.frame()? {
                return Ok(Some(frame));
            }
            match self.jitter.pop(now_ms) {
                Playout::Buffering => return Ok(None),
                Playout::Packet { payload, .. } => {
                    if codec.decode(payload).is_err() {
                        // A corrupt packet is a lost one.
                        codec.conceal(None)?;
                    }
                }
                Playout::Conceal { next_payload } => codec.conceal(next_payload)?,
            }
        }
        codec.frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::sip::sdp::Codec;
    use media::INTERNAL_RATE;

    const SSRC: u32 = 7;

    fn loud_g711() -> [u8; 160] {
        // A square wave in μ-law: alternating large positive and negative codes.
        std::array::from_fn(|i| if (i / 10) % 2 == 0 { 0x80 } else { 0x00 })
    }

    fn rms(frame: &Frame) -> f64 {
        let energy: f64 = frame.samples().iter().map(|s| f64::from(*s).powi(2)).sum();
        (energy / frame.samples().len() as f64).sqrt()
    }

    /// Runs `arrivals` (ms, sequence) and a tick every 20 ms up to `until_ms`; returns the
    /// rms of each frame played, `None` for ticks that played nothing.
    fn run(
        playout: &mut InboundAudio,
        codec: &mut VoiceCodec,
        arrivals: &[(u64, u16)],
        until_ms: u64,
    ) -> Vec<Option<f64>> {
        let payload = loud_g711();
        let mut out = Vec::new();
        let mut next = 0;
        for now in (0..=until_ms).step_by(20) {
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (at, seq) = arrivals[next];
                playout.insert(at, SSRC, seq, u32::from(seq) * 160, &payload);
                next += 1;
            }
            if playout.is_playing() {
                out.push(playout.tick(now, codec).unwrap().map(|f| rms(&f)));
            }
        }
        out
    }

    #[test]
    fn jittery_reordered_arrivals_play_as_a_steady_stream() {
        let mut codec = VoiceCodec::new(Codec::Pcmu).unwrap();
        let mut playout = InboundAudio::new(8_000);
        // 50 packets every 20 ms, each 0, 15 or 30 ms late, so some overtake others.
        let mut arrivals: Vec<(u64, u16)> = (0..50u16)
            .map(|s| (u64::from(s) * 20 + u64::from(s % 3) * 15, s))
            .collect();
        arrivals.sort();
        let played = run(&mut playout, &mut codec, &arrivals, 1_100);
        let frames: Vec<f64> = played.iter().flatten().copied().collect();
        let stats = playout.stats();
        // Every packet played, in order (none lost, late or skipped to catch up); only the
        // first few ticks, before the delay grew to cover the jitter, ran dry.
        assert_eq!(stats.received, 50, "{stats:?} {played:?}");
        assert_eq!((stats.lost, stats.late, stats.skipped), (0, 0, 0));
        assert!(frames.len() >= 50, "{played:?}");
        assert!(stats.concealed <= 6, "{stats:?}");
        assert!(frames[1..50].iter().all(|&r| r > 1000.0), "{frames:?}");
        assert!(
            stats.target_delay_ms > JitterConfig::default().min_delay_ms,
            "jitter raised the target"
        );
    }

    #[test]
    fn losses_are_concealed_and_a_silent_peer_fades_to_silence() {
        let mut codec = VoiceCodec::new(Codec::Pcmu).unwrap();
        let mut playout = InboundAudio::new(8_000);
        assert!(!playout.is_playing());
        let arrivals: Vec<(u64, u16)> = (0..20u16)
            .filter(|s| *s != 10)
            .map(|s| (u64::from(s) * 20, s))
            .collect();
        let played = run(&mut playout, &mut codec, &arrivals, 1_000);
        let frames: Vec<f64> = played.iter().flatten().copied().collect();
        // One frame per tick once the initial delay is over: the loss and the silence are
        // filled in.
        let buffering = JitterConfig::default().initial_delay_ms as usize / 20;
        assert_eq!(frames.len(), played.len() - buffering, "{played:?}");
        assert_eq!(playout.stats().lost, 1);
        assert!(
            frames[10] > 1000.0,
            "the loss repeats the sound: {frames:?}"
        );
        assert!(
            frames[25..].iter().all(|&r| r < 100.0),
            "faded out: {frames:?}"
        );
        // Packets again: they play at once.
        playout.insert(1_020, SSRC, 20, 20 * 160, &loud_g711());
        let resumed = playout.tick(1_040, &mut codec).unwrap().unwrap();
        assert_eq!(resumed.rate(), INTERNAL_RATE);
        assert!(rms(&resumed) > 1000.0);
    }
}
