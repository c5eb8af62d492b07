//! Evaluates the VAD on espeak-ng speech, pink noise and hold music (fixtures/media/vad_*.wav,
//! made by fixtures/media/generate_vad.sh) and asserts floors on precision and recall.
//! Run with `--nocapture` to see the figures recorded in BENCHMARKS.md.

use media::vad::{VadConfig, VoiceDetector, frame_dbfs};
use media::{Frame, INTERNAL_RATE};

const FRAME: usize = 320;

fn clip(name: &str) -> Vec<i16> {
    let path = format!("{}/../fixtures/media/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = hound::WavReader::open(&path).expect("fixture present");
    assert_eq!(reader.spec().sample_rate, INTERNAL_RATE);
    reader
        .samples::<i16>()
        .map(|s| s.expect("valid sample"))
        .collect()
}

/// A scene and its truth: the speech-only track decides which frames are speech.
struct Scene {
    audio: Vec<i16>,
    speech_only: Vec<i16>,
}

impl Scene {
    fn new() -> Self {
        Scene {
            audio: Vec::new(),
            speech_only: Vec::new(),
        }
    }

    fn add(&mut self, audio: &[i16], speech: Option<&[i16]>) {
        self.audio.extend_from_slice(audio);
        match speech {
            Some(s) => self.speech_only.extend_from_slice(s),
            None => self.speech_only.resize(self.audio.len(), 0),
        }
        // Keep both tracks frame-aligned.
        let len = self.audio.len().next_multiple_of(FRAME);
        self.audio.resize(len, 0);
        self.speech_only.resize(len, 0);
    }

    /// Truth per frame: the speech track is within 35 dB of its loudest frames, with gaps
    /// shorter than 200 ms between words bridged (a listener hears one utterance).
    fn truth(&self) -> Vec<bool> {
        let levels: Vec<f32> = self.speech_only.chunks(FRAME).map(frame_dbfs).collect();
        let peak = levels.iter().cloned().fold(-100.0, f32::max);
        let mut truth: Vec<bool> = levels.iter().map(|&l| l > peak - 35.0).collect();
        let mut last_speech: Option<usize> = None;
        for i in 0..truth.len() {
            if truth[i] {
                if let Some(prev) = last_speech
                    && i - prev <= 10
                {
                    truth[prev..i].iter_mut().for_each(|t| *t = true);
                }
                last_speech = Some(i);
            }
        }
        truth
    }
}

fn mix(a: &[i16], b: &[i16], b_gain: f32) -> Vec<i16> {
    a.iter()
        .enumerate()
        .map(|(i, &x)| {
            let y = b.get(i % b.len()).copied().unwrap_or(0);
            (f32::from(x) + f32::from(y) * b_gain).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

struct Score {
    precision: f64,
    recall: f64,
    false_alarm_in_noise: f64,
}

fn evaluate(scene: &Scene, noise_frames: std::ops::Range<usize>) -> Score {
    let truth = scene.truth();
    let mut vad = VoiceDetector::new(VadConfig::default());
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    let mut noise_alarms = 0u32;
    for (i, pcm) in scene.audio.chunks_exact(FRAME).enumerate() {
        vad.process(&Frame::from_slice(INTERNAL_RATE, pcm).unwrap());
        let said = vad.is_speaking();
        match (said, truth[i]) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
        if said && noise_frames.contains(&i) {
            noise_alarms += 1;
        }
    }
    Score {
        precision: f64::from(tp) / f64::from(tp + fp),
        recall: f64::from(tp) / f64::from(tp + fn_),
        false_alarm_in_noise: f64::from(noise_alarms) / noise_frames.len() as f64,
    }
}

#[test]
fn vad_finds_speech_and_ignores_noise_and_hold_music() {
    let speech = clip("vad_speech.wav");
    let pink = clip("vad_pink_noise.wav");
    let music = clip("vad_music_on_hold.wav");
    let second = vec![0i16; INTERNAL_RATE as usize];

    let mut scene = Scene::new();
    scene.add(&second, None);
    scene.add(&speech, Some(&speech));
    scene.add(&second, None);
    let noise_start = scene.audio.len() / FRAME;
    scene.add(&pink, None);
    scene.add(&music, None);
    let noise_end = scene.audio.len() / FRAME;
    // Speech over pink noise about 20 dB down, as on a noisy line.
    scene.add(&mix(&speech, &pink, 0.1), Some(&speech));
    scene.add(&second, None);

    let score = evaluate(&scene, noise_start..noise_end);
    println!(
        "VAD (webrtc aggressive + gates, min speech 100 ms, hangover 200 ms): precision {:.3}, recall {:.3}, speech reported during 8 s of pink noise + hold music {:.1} %",
        score.precision,
        score.recall,
        score.false_alarm_in_noise * 100.0
    );
    assert!(score.precision >= 0.88, "precision {:.3}", score.precision);
    assert!(score.recall >= 0.90, "recall {:.3}", score.recall);
    assert!(
        score.false_alarm_in_noise <= 0.10,
        "false alarms {:.3}",
        score.false_alarm_in_noise
    );
}

#[test]
fn webrtc_alone_would_call_pink_noise_speech() {
    // Why the gates exist: without them the aggressive classifier fires on pink noise.
    use media::vad::{Aggressiveness, VoiceActivity, WebRtcVoiceActivity};
    let pink = clip("vad_pink_noise.wav");
    let mut raw = WebRtcVoiceActivity::new(INTERNAL_RATE, Aggressiveness::Aggressive).unwrap();
    let voiced = pink
        .chunks_exact(FRAME)
        .filter(|pcm| raw.is_speech(&Frame::from_slice(INTERNAL_RATE, pcm).unwrap()))
        .count();
    let total = pink.len() / FRAME;
    println!("webrtc-vad aggressive alone: {voiced}/{total} pink-noise frames called speech");
    assert!(voiced * 2 > total);
}
