//! What a call writes to disk as it goes: the stereo recording (caller left, agent right) and,
//! with `record_fixtures`, the caller's side as a new replay fixture.

use std::path::{Path, PathBuf};

use std::fs::File;
use std::io::BufWriter;

use media::Frame;
use media::recorder::{Channel, StereoRecorder};

use crate::config::Config;
use crate::telephony::LegInfo;

pub(super) struct CallRecorder {
    path: PathBuf,
    stereo: Option<StereoRecorder<BufWriter<File>>>,
    /// Media time of each side's next frame: both sides are 20 ms streams from the answer
    /// (the transport conceals inbound loss, the pacer plays silence when idle); the agent's
    /// skips ahead after a call rested (`agent_resumes_at`).
    caller_ms: u64,
    agent_ms: u64,
    fixture: Option<FixtureWriter>,
}

impl CallRecorder {
    /// Opens the call's files. A recording that cannot be opened is logged and skipped: the
    /// call goes on without it.
    pub(super) fn open(config: &Config, call_id: &str, info: &LegInfo) -> Self {
        let path = recording_path(config, call_id);
        let stereo = match std::fs::create_dir_all(config.data_dir.join("recordings"))
            .map_err(|e| e.to_string())
            .and_then(|()| StereoRecorder::create(&path).map_err(|e| e.to_string()))
        {
            Ok(rec) => Some(rec),
            Err(e) => {
                tracing::error!(%call_id, path = %path.display(), "cannot record the call: {e}");
                None
            }
        };
        let fixture = config.record_fixtures.as_deref().and_then(|dir| {
            FixtureWriter::create(dir, call_id, info)
                .map_err(|e| tracing::error!(%call_id, "cannot record a fixture: {e}"))
                .ok()
        });
        CallRecorder {
            path,
            stereo,
            caller_ms: 0,
            agent_ms: 0,
            fixture,
        }
    }

    pub(super) fn caller(&mut self, frame: &Frame) {
        let at = self.caller_ms;
        self.caller_ms += u64::from(media::FRAME_MS);
        if let Some(rec) = &mut self.stereo
            && let Err(e) = rec.write(Channel::Caller, at, frame)
        {
            tracing::error!("recording stopped: {e}");
            self.stereo = None;
        }
        if let Some(fixture) = &mut self.fixture
            && let Err(e) = fixture.push(frame)
        {
            tracing::error!("fixture recording stopped: {e}");
            self.fixture = None;
        }
    }

    pub(super) fn agent(&mut self, frame: &Frame) {
        let at = self.agent_ms;
        self.agent_ms += u64::from(media::FRAME_MS);
        if let Some(rec) = &mut self.stereo
            && let Err(e) = rec.write(Channel::Agent, at, frame)
        {
            tracing::error!("recording stopped: {e}");
            self.stereo = None;
        }
    }

    /// The agent's side had no frames since its last (a call resting): its next frame goes
    /// at call time `now_ms`, on the frame grid, and the stretch between is silence.
    pub(super) fn agent_resumes_at(&mut self, now_ms: u64) {
        let frame_ms = u64::from(media::FRAME_MS);
        self.agent_ms = self.agent_ms.max(now_ms / frame_ms * frame_ms);
    }

    /// Closes the files; the recording's path when one was written.
    pub(super) fn finish(self) -> Option<PathBuf> {
        if let Some(fixture) = self.fixture
            && let Err(e) = fixture.finish()
        {
            tracing::error!("cannot finish the fixture recording: {e}");
        }
        let rec = self.stereo?;
        match rec.finish() {
            Ok(_) => Some(self.path),
            Err(e) => {
                tracing::error!(path = %self.path.display(), "cannot finish the recording: {e}");
                None
            }
        }
    }

    /// Closes the files and removes the recording (a call left without a record).
    pub(super) fn discard(self) {
        let path = self.path.clone();
        if self.finish().is_some()
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), "cannot remove the recording: {e}");
        }
    }
}

/// Where the stereo recording of `call_id` goes.
pub(super) fn recording_path(config: &Config, call_id: &str) -> PathBuf {
    config
        .data_dir
        .join("recordings")
        .join(format!("{call_id}.wav"))
}

/// The caller's audio of a live call, saved as `<dir>/<call_id>/caller.wav` beside a
/// `scenario.toml` skeleton to fill in with the agent and the expectations.
struct FixtureWriter {
    wav: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl FixtureWriter {
    fn create(dir: &Path, call_id: &str, info: &LegInfo) -> anyhow::Result<Self> {
        let fixture = dir.join(call_id);
        std::fs::create_dir_all(&fixture)?;
        std::fs::write(
            fixture.join("scenario.toml"),
            scenario_skeleton(call_id, info),
        )?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: media::INTERNAL_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(FixtureWriter {
            wav: hound::WavWriter::create(fixture.join("caller.wav"), spec)?,
        })
    }

    fn push(&mut self, frame: &Frame) -> Result<(), hound::Error> {
        let mut samples = self.wav.get_i16_writer(frame.samples().len() as u32);
        for &s in frame.samples() {
            samples.write_sample(s);
        }
        samples.flush()
    }

    fn finish(self) -> Result<(), hound::Error> {
        self.wav.finalize()
    }
}

fn scenario_skeleton(call_id: &str, info: &LegInfo) -> String {
    format!(
        r#"# Recorded from live call {call_id} ({transport}). Fill in the agent and the expectations.
description = ""

[agent]
name = ""
greeting = ""
prompt = ""
phone_number = "{to}"

# [[agent.knowledge]]
# title = ""
# text = """"""

[caller]
audio = "caller.wav"
number = "{from}"

[expect]
status = "completed"
# end_reason = "agent_hangup"
# agent_said = []
# tools_called = []
# appointment = {{ title = "", start_time = "" }}
# lead = {{ name = "", phone = "" }}
# sentiment = "positive"
# max_turns = 10
"#,
        transport = info.transport,
        to = info.to.replace('"', ""),
        from = info.from.replace('"', ""),
    )
}
