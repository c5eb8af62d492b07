//! The simulated callee of test-mode outbound calls: no packet leaves the process. The callee
//! answers at once, speaks a script (a WAV fixture) into the call, records what the agent
//! says, and hangs up once it has listened long enough — or when the agent hangs up first.
//!
//! Who answers depends on the number called (`callee_kind`): a person by default, an
//! answering machine on the documented voicemail numbers, so a test key can try
//! `machine_detection` without a carrier.

use std::path::{Path, PathBuf};
use std::time::Duration;

use media::resample::{ChunkResampler, ResampleError};
use media::{INTERNAL_RATE, InternalFrame};

use super::dialer::OutboundCall;
use super::leg::{
    CallLeg, Direction, HangupReason, LegCommand, LegEnd, LegEvent, LegInfo, leg_pair,
};

#[derive(Debug, thiserror::Error)]
pub enum CalleeError {
    #[error("cannot read the callee script {path}: {source}")]
    Script { path: PathBuf, source: hound::Error },
    #[error("the callee script must be mono PCM16, got {channels} channels of {bits} bits")]
    ScriptFormat { channels: u16, bits: u16 },
    #[error("cannot resample the callee script: {0}")]
    Resample(#[from] ResampleError),
    #[error("cannot write what the callee heard: {0}")]
    Recording(#[from] hound::Error),
}

/// Test-mode calls to this number reach an answering machine: a spoken greeting, then a beep.
pub const VOICEMAIL_NUMBER: &str = "+15005550100";
/// Test-mode calls to this number reach an answering machine whose greeting ends without a
/// beep (silence follows it).
pub const VOICEMAIL_NO_BEEP_NUMBER: &str = "+15005550101";

/// Who picks up a test-mode call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalleeKind {
    /// A person who says hello and waits.
    Person,
    /// An answering machine: its greeting, then a beep (or not), then it records.
    Voicemail { beep: bool },
}

/// Who answers a test-mode call to `to`.
pub fn callee_kind(to: &str) -> CalleeKind {
    match to {
        VOICEMAIL_NUMBER => CalleeKind::Voicemail { beep: true },
        VOICEMAIL_NO_BEEP_NUMBER => CalleeKind::Voicemail { beep: false },
        _ => CalleeKind::Person,
    }
}

/// The simulated voicemail's beep, 16 kHz: 300 ms of silence, then 500 ms of 1 kHz, the
/// tone most answering machines use.
pub fn voicemail_beep() -> Vec<i16> {
    let pause = INTERNAL_RATE as usize * 3 / 10;
    let tone = INTERNAL_RATE as usize / 2;
    let mut pcm = vec![0i16; pause];
    pcm.extend((0..tone).map(|i| {
        let t = i as f32 / INTERNAL_RATE as f32;
        (12_000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()) as i16
    }));
    pcm
}

/// What the callee does on the call.
#[derive(Debug, Clone)]
pub struct SimulatedCallee {
    /// 16 kHz PCM the callee says as soon as it answers.
    pub script: Vec<i16>,
    /// How long the callee keeps listening after its script before hanging up.
    pub listen_for: Duration,
    /// Where to write what the callee heard (16 kHz mono WAV).
    pub recording: Option<PathBuf>,
}

/// What the callee heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalleeReport {
    pub heard_frames: usize,
    /// Frames of the agent's audio above background level.
    pub heard_speech_frames: usize,
    /// The agent ended the call (rather than the callee).
    pub agent_hung_up: bool,
}

/// Reads a mono PCM16 WAV as the callee's script, resampled to 16 kHz.
pub fn load_script(path: &Path) -> Result<Vec<i16>, CalleeError> {
    let reader = hound::WavReader::open(path).map_err(|source| CalleeError::Script {
        path: path.to_path_buf(),
        source,
    })?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(CalleeError::ScriptFormat {
            channels: spec.channels,
            bits: spec.bits_per_sample,
        });
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CalleeError::Script {
            path: path.to_path_buf(),
            source,
        })?;
    if spec.sample_rate == INTERNAL_RATE {
        return Ok(samples);
    }
    let mut resampler = ChunkResampler::new(spec.sample_rate, INTERNAL_RATE)?;
    let mut out = Vec::with_capacity(samples.len() * 2);
    resampler.push(&samples, &mut out)?;
    resampler.finish(&mut out)?;
    Ok(out)
}

/// The two ends of a simulated outbound call: the session takes the `CallLeg`, the callee
/// (`run_callee`) the `LegEnd`.
pub fn simulated_leg(call: &OutboundCall) -> (CallLeg, LegEnd) {
    leg_pair(LegInfo {
        transport: "simulated",
        carrier_call_id: call.call_id.clone(),
        from: call.from.clone(),
        to: call.to.clone(),
        direction: Direction::Outbound,
        parameters: Vec::new(),
        carrier_detects_machine: false,
        dtmf_out_of_band: false,
        continuous_audio: true,
    })
}

fn is_speech(frame: &InternalFrame) -> bool {
    let energy: f64 = frame.samples().iter().map(|s| (*s as f64).powi(2)).sum();
    (energy / frame.samples().len().max(1) as f64).sqrt() > 300.0
}

/// Plays the callee's side of the call in real time (20 ms frames) until it ends.
pub async fn run_callee(
    mut leg: LegEnd,
    callee: SimulatedCallee,
) -> Result<CalleeReport, CalleeError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: INTERNAL_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut recorder = match &callee.recording {
        Some(path) => Some(hound::WavWriter::create(path, spec)?),
        None => None,
    };
    let frame_len = InternalFrame::samples_per_frame(INTERNAL_RATE);
    let script_frames = callee.script.len().div_ceil(frame_len);
    let listen_frames = (callee.listen_for.as_millis() / 20) as usize;
    let mut report = CalleeReport {
        heard_frames: 0,
        heard_speech_frames: 0,
        agent_hung_up: false,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut tick = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if tick >= script_frames + listen_frames {
                    let _ = leg.events.send(LegEvent::Hangup(HangupReason::Remote)).await;
                    break;
                }
                let start = tick * frame_len;
                let mut frame = InternalFrame::silence(INTERNAL_RATE);
                if start < callee.script.len() {
                    let end = (start + frame_len).min(callee.script.len());
                    frame.samples_mut()[..end - start].copy_from_slice(&callee.script[start..end]);
                }
                tick += 1;
                if leg.events.send(LegEvent::Audio(frame)).await.is_err() {
                    // The session is gone; the engine's side ends the line once its last
                    // commands (a hang-up after a failure, say) are through.
                    while let Some(command) = leg.commands.recv().await {
                        if matches!(command, LegCommand::Hangup | LegCommand::Transfer(_)) {
                            break;
                        }
                    }
                    report.agent_hung_up = true;
                    break;
                }
            }
            command = leg.commands.recv() => match command {
                Some(LegCommand::Audio(frame)) => {
                    report.heard_frames += 1;
                    report.heard_speech_frames += usize::from(is_speech(&frame));
                    if let Some(writer) = recorder.as_mut() {
                        for &sample in frame.samples() {
                            writer.write_sample(sample)?;
                        }
                    }
                }
                // Nothing is buffered on a simulated line: marks play at once.
                Some(LegCommand::Mark(name)) => {
                    let _ = leg.events.send(LegEvent::Mark(name)).await;
                }
                Some(LegCommand::Clear | LegCommand::SendDtmf(_)) => {}
                // A transfer leaves this leg, exactly as a hang-up does.
                Some(LegCommand::Transfer(_)) | Some(LegCommand::Hangup) | None => {
                    report.agent_hung_up = true;
                    break;
                }
            }
        }
    }
    if let Some(writer) = recorder {
        writer.finalize()?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> OutboundCall {
        OutboundCall {
            call_id: "call_sim".into(),
            workspace_id: "ws".into(),
            live: false,
            agent_id: "agent_1".into(),
            from: "+15550100".into(),
            to: "+15550999".into(),
            context: Some("remind about the appointment".into()),
            permit: None,
            machine_detection: Default::default(),
        }
    }

    fn tone(samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| ((i as f32 * 0.15).sin() * 6000.0) as i16)
            .collect()
    }

    /// A stand-in agent: says 60 ms of tone, then silence, counting what the callee says.
    async fn agent(
        mut leg: CallLeg,
        hang_up_after_frames: Option<usize>,
    ) -> (usize, Option<HangupReason>) {
        let mut heard_speech = 0;
        let mut sent = 0;
        loop {
            match leg.events.recv().await {
                Some(LegEvent::Audio(frame)) => {
                    heard_speech += usize::from(is_speech(&frame));
                    let out = if sent < 3 {
                        InternalFrame::from_slice(INTERNAL_RATE, &tone(320)).unwrap()
                    } else {
                        InternalFrame::silence(INTERNAL_RATE)
                    };
                    sent += 1;
                    let _ = leg.commands.send(LegCommand::Audio(out)).await;
                    if hang_up_after_frames == Some(sent) {
                        let _ = leg.commands.send(LegCommand::Hangup).await;
                        return (heard_speech, None);
                    }
                }
                Some(LegEvent::Hangup(reason)) => return (heard_speech, Some(reason)),
                Some(_) => {}
                None => return (heard_speech, None),
            }
        }
    }

    // Real time, but every count is of ticks, not of elapsed time (the crate builds tokio
    // without `test-util`, so no paused clock).
    #[tokio::test]
    async fn callee_speaks_its_script_records_the_agent_and_hangs_up() {
        let dir = std::env::temp_dir().join(format!("boltcall-sim-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let recording = dir.join("heard.wav");
        let (leg, end) = simulated_leg(&call());
        assert_eq!(leg.info.transport, "simulated");
        let callee = SimulatedCallee {
            script: tone(3_200), // 200 ms
            listen_for: Duration::from_millis(200),
            recording: Some(recording.clone()),
        };
        let agent = tokio::spawn(agent(leg, None));
        let report = run_callee(end, callee).await.unwrap();
        let (agent_heard, reason) = agent.await.unwrap();
        assert_eq!(reason, Some(HangupReason::Remote));
        assert_eq!(agent_heard, 10, "the whole script reached the agent");
        assert_eq!(report.heard_speech_frames, 3);
        assert!(!report.agent_hung_up);
        let written = hound::WavReader::open(&recording).unwrap().len() as usize;
        assert_eq!(written, report.heard_frames * 320);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn agent_hang_up_ends_the_callee() {
        let (leg, end) = simulated_leg(&call());
        let callee = SimulatedCallee {
            script: tone(3_200),
            listen_for: Duration::from_secs(30),
            recording: None,
        };
        let agent = tokio::spawn(agent(leg, Some(5)));
        let report = run_callee(end, callee).await.unwrap();
        agent.await.unwrap();
        assert!(report.agent_hung_up);
        assert_eq!(report.heard_frames, 5);
    }

    #[test]
    fn the_voicemail_numbers_reach_an_answering_machine() {
        assert_eq!(
            callee_kind(VOICEMAIL_NUMBER),
            CalleeKind::Voicemail { beep: true }
        );
        assert_eq!(
            callee_kind(VOICEMAIL_NO_BEEP_NUMBER),
            CalleeKind::Voicemail { beep: false }
        );
        assert_eq!(callee_kind("+15550999"), CalleeKind::Person);
        let beep = voicemail_beep();
        assert_eq!(beep.len(), 16_000 * 8 / 10);
        assert!(beep[..4_800].iter().all(|&s| s == 0));
        let peak = beep[4_800..]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!(peak > 11_000, "{peak}");
    }

    #[test]
    fn scripts_must_be_mono_pcm16() {
        let dir = std::env::temp_dir().join(format!("boltcall-sim-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&path, spec)
            .unwrap()
            .finalize()
            .unwrap();
        assert!(matches!(
            load_script(&path),
            Err(CalleeError::ScriptFormat { channels: 2, .. })
        ));
        let mono = dir.join("mono8k.wav");
        let mut writer = hound::WavWriter::create(
            &mono,
            hound::WavSpec {
                channels: 1,
                ..spec
            },
        )
        .unwrap();
        for s in tone(8000) {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        let script = load_script(&mono).unwrap();
        assert!(
            (15_000..=17_000).contains(&script.len()),
            "8 kHz second → ~16k samples: {}",
            script.len()
        );
        assert!(load_script(&dir.join("missing.wav")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
