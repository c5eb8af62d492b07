//! What a load caller says and hears, the same for `twilio-load` and `sip-load`: the caller's
//! 20 ms μ-law frames (line silence, a looped WAV, or one utterance at a set time), and an
//! ear that tells the agent's speech from the silence frames the engine sends while it has
//! nothing to say (its pacer pads with silence, so "a packet came" is not "the agent spoke").
//! From those it times the greeting and the reply to the caller's utterance.

use std::ops::Range;
use std::time::Duration;

use crate::histogram::Histogram;

/// Samples in one 20 ms frame at 8 kHz: one μ-law byte each.
pub const FRAME: usize = 160;
const FRAME_TIME: Duration = Duration::from_millis(20);
/// μ-law of a zero sample: line silence.
const SILENCE: [u8; FRAME] = [0xFF; FRAME];
/// A frame this loud (RMS of the decoded 16-bit samples, about −50 dBFS) is speech, not the
/// digital silence the engine sends when it has nothing to say.
const VOICE_RMS: f64 = 100.0;
/// Agent speech after at least this much quiet is a new utterance (an onset), not a pause
/// between its words.
const ONSET_QUIET: Duration = Duration::from_millis(300);

/// Whether a μ-law payload carries sound.
pub fn is_voice(payload: &[u8]) -> bool {
    let mut pcm = [0i16; FRAME];
    let mut energy = 0.0;
    for chunk in payload.chunks(FRAME) {
        let pcm = &mut pcm[..chunk.len()];
        if media::g711::decode_ulaw(chunk, pcm).is_err() {
            return false;
        }
        energy += pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
    }
    !payload.is_empty() && (energy / payload.len() as f64).sqrt() > VOICE_RMS
}

/// What the caller sends, frame by frame from the answer.
pub enum Script {
    Silence,
    /// A WAV over and over.
    Loop(Vec<u8>),
    /// One utterance from frame `at`, silence around it; `voiced` are its frames that carry
    /// sound (the WAV's own leading and trailing quiet is not the utterance).
    Say {
        audio: Vec<u8>,
        at: usize,
        voiced: Range<usize>,
    },
}

impl Script {
    /// `audio` once, starting `at` after the answer.
    pub fn say(mut audio: Vec<u8>, at: Duration) -> Script {
        audio.resize(audio.len().div_ceil(FRAME) * FRAME, 0xFF);
        let loud: Vec<usize> = (0..audio.len() / FRAME)
            .filter(|&i| is_voice(&audio[i * FRAME..(i + 1) * FRAME]))
            .collect();
        let voiced = match (loud.first(), loud.last()) {
            (Some(&first), Some(&last)) => first..last + 1,
            _ => 0..0,
        };
        Script::Say {
            audio,
            at: (at.as_millis() / FRAME_TIME.as_millis()) as usize,
            voiced,
        }
    }

    /// Whether the caller says something once (and so waits for a reply).
    pub fn says(&self) -> bool {
        matches!(self, Script::Say { .. })
    }

    /// How long the utterance's sound lasts.
    pub fn speech(&self) -> Duration {
        match self {
            Script::Say { voiced, .. } => FRAME_TIME * voiced.len() as u32,
            _ => Duration::ZERO,
        }
    }

    /// Frame `k` since the answer, sent `at` after it; the ear notes when the utterance's
    /// sound starts and ends.
    pub fn frame(&self, k: usize, at: Duration, ear: &mut Ear) -> &[u8] {
        match self {
            Script::Silence => &SILENCE,
            Script::Loop(audio) => {
                let usable = audio.len() - audio.len() % FRAME;
                if usable == 0 {
                    return &SILENCE;
                }
                let from = (k * FRAME) % usable;
                &audio[from..from + FRAME]
            }
            Script::Say {
                audio,
                at: first,
                voiced,
            } => {
                let Some(i) = k.checked_sub(*first).filter(|&i| i < audio.len() / FRAME) else {
                    return &SILENCE;
                };
                if i == voiced.start {
                    ear.said_from = Some(at);
                }
                if i + 1 == voiced.end {
                    ear.said_until = Some(at + FRAME_TIME);
                }
                &audio[i * FRAME..(i + 1) * FRAME]
            }
        }
    }
}

/// What one call heard of the agent, timed from its answer (SIP's 200 OK, Twilio's `start`).
#[derive(Default, Clone)]
pub struct Ear {
    /// Agent audio frames received.
    pub packets: u64,
    pub first_packet: Option<Duration>,
    /// The first frame carrying sound: the greeting.
    pub first_voice: Option<Duration>,
    last_packet: Option<Duration>,
    last_voice: Option<Duration>,
    /// The first frame of the current stretch of agent audio.
    stretch_from: Option<Duration>,
    /// Stretches of agent audio: one when the engine sends a frame every 20 ms (RTP); one per
    /// utterance when it sends the agent's speech only, each ended by a mark (media streams).
    pub stretches: u64,
    /// The time the stretches lasted, each from its first to its last frame.
    pub span: Duration,
    span_before: Duration,
    pub max_gap: Duration,
    /// When the caller's utterance began and ended (its first and last sounding frames).
    said_from: Option<Duration>,
    said_until: Option<Duration>,
    /// The agent was heard while the caller spoke.
    pub talked_over: bool,
    /// The onset of the first agent speech after the utterance ended: the reply (or whatever
    /// else the agent says then, such as an idle reprompt when it has not heard the caller).
    pub reply: Option<Duration>,
}

impl Ear {
    /// A μ-law frame from the agent `at` after the answer; the gap since the previous one.
    pub fn hear(&mut self, at: Duration, payload: &[u8]) -> Option<Duration> {
        self.heard(at, is_voice(payload))
    }

    fn heard(&mut self, at: Duration, voiced: bool) -> Option<Duration> {
        self.packets += 1;
        self.first_packet.get_or_insert(at);
        let from = *self.stretch_from.get_or_insert_with(|| {
            self.stretches += 1;
            at
        });
        self.span = self.span_before + at.saturating_sub(from);
        let gap = self.last_packet.map(|last| at.saturating_sub(last));
        self.max_gap = self.max_gap.max(gap.unwrap_or_default());
        self.last_packet = Some(at);
        if voiced {
            self.first_voice.get_or_insert(at);
            let onset = self
                .last_voice
                .is_none_or(|last| at.saturating_sub(last) >= ONSET_QUIET);
            if self.said_from.is_some_and(|from| at >= from)
                && self.said_until.is_none_or(|until| at < until)
            {
                self.talked_over = true;
            }
            if onset && self.reply.is_none() && self.said_until.is_some_and(|until| at >= until) {
                self.reply = Some(at);
            }
            self.last_voice = Some(at);
        }
        gap
    }

    /// The engine marked the end of a stretch of its speech: the silence until the next one
    /// is the agent's pause, not a gap in its pacing. (sip-load has no use for it: RTP carries a
    /// frame every 20 ms.)
    #[allow(dead_code)]
    pub fn stretch_ended(&mut self) {
        self.stretch_from = None;
        self.last_packet = None;
        self.span_before = self.span;
    }

    /// Whether the caller's utterance was sent to its end.
    pub fn said(&self) -> bool {
        self.said_until.is_some()
    }

    /// From the end of the caller's utterance to the onset of the agent's reply.
    pub fn reply_latency(&self) -> Option<Duration> {
        Some(self.reply?.saturating_sub(self.said_until?))
    }
}

/// What the completed calls heard, summed: distributions, never a sample per call.
pub struct Hearing {
    /// Sound first heard after this (the hold) came while hanging up: not heard in the call.
    hold: Duration,
    says: bool,
    /// How long the utterance's sound lasts.
    speech: Duration,
    calls: u64,
    first_packet: Histogram,
    greeting: Histogram,
    said: u64,
    talked_over: u64,
    reply: Histogram,
    /// Agent frames per 20 ms of the span they arrived over, per call (1.0 = exact).
    pacing: Histogram,
    largest_gap: Histogram,
}

impl Hearing {
    pub fn new(hold: Duration, script: &Script) -> Hearing {
        Hearing {
            hold,
            says: script.says(),
            speech: script.speech(),
            calls: 0,
            first_packet: Histogram::latency(),
            greeting: Histogram::latency(),
            said: 0,
            talked_over: 0,
            reply: Histogram::latency(),
            pacing: Histogram::ratio(),
            largest_gap: Histogram::latency(),
        }
    }

    pub fn add(&mut self, ear: &Ear) {
        self.calls += 1;
        if let Some(at) = ear.first_packet {
            self.first_packet.add_ms(at);
        }
        if let Some(at) = ear.first_voice.filter(|&at| at <= self.hold) {
            self.greeting.add_ms(at);
        }
        self.said += u64::from(ear.said());
        self.talked_over += u64::from(ear.talked_over);
        if let Some(latency) = ear.reply_latency() {
            self.reply.add_ms(latency);
        }
        if ear.span > Duration::from_secs(1) {
            let intervals = ear.packets.saturating_sub(ear.stretches);
            self.pacing
                .add(intervals as f64 / (ear.span.as_secs_f64() / 0.02));
        }
        if ear.packets > 1 {
            self.largest_gap.add_ms(ear.max_gap);
        }
    }

    /// Prints what the callers heard; `answer` names the moment the times start from.
    pub fn print(&self, answer: &str) {
        let (calls, hold) = (self.calls, self.hold.as_secs_f64());
        let h = &self.first_packet;
        println!(
            "{answer} → first agent frame (speech or silence): {} of {calls} calls{}",
            h.count(),
            percentiles("", h)
        );
        let h = &self.greeting;
        println!(
            "{answer} → first agent speech (the greeting): {} of {calls} calls heard it within {hold:.0} s{}",
            h.count(),
            percentiles("", h)
        );
        if self.says {
            let h = &self.reply;
            println!(
                "caller utterance ({:.2} s of sound): said to its end in {} of {calls} calls; \
                 agent speech began after it (the reply) in {} of them{}",
                self.speech.as_secs_f64(),
                self.said,
                h.count(),
                percentiles("end of utterance → reply onset: ", h)
            );
            if self.talked_over > 0 {
                println!(
                    "  in {} calls the agent was speaking while the caller spoke (greeting still \
                     playing, or --say-at too early)",
                    self.talked_over
                );
            }
        }
        let h = &self.pacing;
        println!(
            "outbound pacing (agent frames per 20 ms per call): min {:.3} p50 {:.3} max {:.3}",
            h.pick(0),
            h.pick(50),
            h.pick(100)
        );
        let h = &self.largest_gap;
        println!(
            "largest gap between agent frames per call: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            h.pick(50),
            h.pick(99),
            h.max()
        );
    }
}

/// `"; {what}p50 …, p99 …, max … ms"` of a latency histogram; nothing when it is empty.
fn percentiles(what: &str, h: &Histogram) -> String {
    if h.count() == 0 {
        return String::new();
    }
    format!(
        "; {what}p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        h.pick(50),
        h.pick(99),
        h.max()
    )
}

/// The gaps between consecutive agent frames over all calls (from `Ear::hear`), in ms.
pub fn print_frame_gaps(gaps: &Histogram) {
    println!(
        "gap between consecutive agent frames ({} gaps): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} of 25 ms or more",
        gaps.count(),
        gaps.pick(50),
        gaps.pick(99),
        gaps.max(),
        gaps.count_from(25.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f64) -> Vec<u8> {
        (0..FRAME)
            .map(|i| media::g711::ulaw_from_linear(((i as f64 * 0.3).sin() * amplitude) as i16))
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn silence_and_faint_noise_are_not_voice_and_a_tone_is() {
        assert!(!is_voice(&SILENCE));
        // Both μ-law zeros (0xFF and 0x7F) are silence.
        assert!(!is_voice(&[0x7F; FRAME]));
        assert!(!is_voice(&[]));
        assert!(!is_voice(&tone(50.0)));
        assert!(is_voice(&tone(3000.0)));
        // Twilio payloads need not be one frame.
        assert!(is_voice(&[tone(3000.0), tone(3000.0)].concat()));
    }

    #[test]
    fn the_greeting_is_the_first_sound_not_the_first_frame() {
        let mut ear = Ear::default();
        for k in 0..10 {
            ear.heard(ms(100 + 20 * k), false);
        }
        assert_eq!(ear.heard(ms(300), true), Some(ms(20)));
        ear.heard(ms(330), true);
        assert_eq!(ear.first_packet, Some(ms(100)));
        assert_eq!(ear.first_voice, Some(ms(300)));
        assert_eq!((ear.packets, ear.span, ear.max_gap), (12, ms(230), ms(30)));
        // No utterance: nothing is a reply.
        ear.heard(ms(5000), true);
        assert_eq!(ear.reply_latency(), None);
    }

    #[test]
    fn the_quiet_between_marked_stretches_is_no_gap_and_pacing_counts_each_stretch() {
        let mut ear = Ear::default();
        for at in (100..=300).step_by(20) {
            ear.heard(ms(at), true);
        }
        ear.stretch_ended();
        assert_eq!(
            ear.heard(ms(5000), true),
            None,
            "a new stretch has no gap before it"
        );
        assert_eq!(ear.heard(ms(5025), true), Some(ms(25)));
        assert_eq!((ear.stretches, ear.span, ear.max_gap), (2, ms(225), ms(25)));
        // Pacing counts within the stretches (85 frame intervals over their 1.7 s), not over
        // the whole 6.4 s.
        let mut hearing = Hearing::new(ms(8000), &Script::Silence);
        for at in (5040..=6500).step_by(20) {
            ear.heard(ms(at), true);
        }
        hearing.add(&ear);
        let pacing = hearing.pacing.pick(50);
        assert!((0.98..=1.02).contains(&pacing), "pacing {pacing}");
    }

    #[test]
    fn a_said_utterance_is_cued_at_its_sound_once() {
        // 2 frames of quiet, 3 of sound, 1 of quiet, starting one second in.
        let audio = [
            SILENCE.to_vec(),
            SILENCE.to_vec(),
            tone(3000.0).repeat(3),
            vec![0xFF; 10],
        ]
        .concat();
        let script = Script::say(audio, Duration::from_secs(1));
        assert_eq!(script.speech(), ms(60));
        let mut ear = Ear::default();
        let sent: Vec<bool> = (0..60)
            .map(|k| is_voice(script.frame(k, ms(20 * k as u64), &mut ear)))
            .collect();
        let loud: Vec<usize> = (0..60).filter(|&k| sent[k]).collect();
        assert_eq!(loud, [52, 53, 54]);
        assert_eq!(
            (ear.said_from, ear.said_until),
            (Some(ms(1040)), Some(ms(1100)))
        );
        assert!(ear.said());
        // The padded last frame is sent, then silence.
        assert_eq!(script.frame(55, ms(1100), &mut ear), &SILENCE);
        let looped = Script::Loop(tone(3000.0));
        assert!(is_voice(looped.frame(7, ms(140), &mut ear)));
    }

    #[test]
    fn the_reply_is_the_first_onset_after_the_utterance() {
        let mut ear = Ear::default();
        // The greeting, then quiet.
        for at in (200..2000).step_by(20) {
            ear.heard(ms(at), true);
        }
        ear.said_from = Some(ms(3000));
        // The agent's greeting had ended: nothing talked over the caller.
        ear.heard(ms(3500), false);
        assert!(!ear.talked_over);
        ear.said_until = Some(ms(4000));
        ear.heard(ms(4100), false);
        ear.heard(ms(4800), true);
        ear.heard(ms(4820), true);
        // A pause between its words is not a second reply.
        ear.heard(ms(5000), true);
        assert_eq!(ear.reply, Some(ms(4800)));
        assert_eq!(ear.reply_latency(), Some(ms(800)));
    }

    #[test]
    fn speech_running_on_past_the_utterance_is_not_a_reply() {
        let mut ear = Ear {
            said_from: Some(ms(1000)),
            said_until: Some(ms(2000)),
            ..Ear::default()
        };
        // The agent talks through the whole utterance and 100 ms beyond it.
        for at in (900..2100).step_by(20) {
            ear.heard(ms(at), true);
        }
        assert!(ear.talked_over);
        assert_eq!(ear.reply, None);
        // Its next sentence, after a pause, is.
        ear.heard(ms(2500), true);
        assert_eq!(ear.reply_latency(), Some(ms(500)));
    }

    #[test]
    fn hearing_sums_calls_and_counts_late_greetings_out() {
        let script = Script::say(tone(3000.0), Duration::from_secs(1));
        let mut hearing = Hearing::new(Duration::from_secs(4), &script);
        let mut heard = Ear::default();
        heard.heard(ms(100), false);
        heard.heard(ms(600), true);
        heard.said_from = Some(ms(1000));
        heard.said_until = Some(ms(1020));
        heard.heard(ms(1700), true);
        let mut late = Ear::default();
        late.heard(ms(4500), true);
        for ear in [&heard, &late, &Ear::default()] {
            hearing.add(ear);
        }
        assert_eq!(hearing.calls, 3);
        assert_eq!(hearing.greeting.count(), 1);
        assert_eq!(hearing.first_packet.count(), 2);
        assert_eq!((hearing.said, hearing.reply.count()), (1, 1));
        assert_eq!(hearing.reply.pick(50), 680.0);
    }
}
