//! Shared by the SIP integration tests: a test call handler standing in for the call session,
//! free ports, test audio, and running sipp.

#![allow(dead_code)] // each test binary uses a different part of this

use std::fs::File;
use std::io::BufWriter;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltcall::telephony::leg::{CallLeg, HangupReason, LegCommand, LegEvent};
use boltcall::telephony::sip::service::{
    CallHandler, OutboundStatus, Routing, SipLimits, SipService, SipSettings,
};
use boltcall::telephony::{LegInfo, OutboundCall};
use futures::future::BoxFuture;
use media::recorder::{Channel, StereoRecorder};
use media::vad::{VadConfig, VoiceDetector};
use media::{FRAME_MS, Frame, INTERNAL_RATE, InternalFrame};
use tokio::sync::mpsc;

/// What the test handler saw of one call.
#[derive(Debug, Clone)]
pub struct CallSeen {
    pub info: LegInfo,
    pub frames: usize,
    /// Frames with an RMS above background noise.
    pub loud_frames: usize,
    pub digits: String,
    pub hangup: Option<HangupReason>,
}

/// Stands in for the call session: numbers decide what happens.
/// `+15550100` answers and plays a one-second tone greeting until the caller hangs up;
/// `+15550200` answers and hangs up after 1.5 s; `+15550300` takes 3 s to route (time to
/// CANCEL); `+15550480` is a paused agent (480); anything else is unknown (404).
pub struct TestHandler {
    pub done: mpsc::UnboundedSender<CallSeen>,
    pub outbound: Mutex<Vec<OutboundStatus>>,
    /// Calls running right now.
    pub active: Arc<AtomicUsize>,
    /// With a directory, calls also do a session's per-frame media work: VAD on the caller
    /// and a stereo recording (deleted when the call ends).
    pub recordings: Option<PathBuf>,
}

impl TestHandler {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<CallSeen>) {
        Self::recording_into(None)
    }

    pub fn recording_into(
        recordings: Option<PathBuf>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<CallSeen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(TestHandler {
                done: tx,
                outbound: Mutex::new(Vec::new()),
                active: Arc::new(AtomicUsize::new(0)),
                recordings,
            }),
            rx,
        )
    }

    fn call(&self, hang_up_after: Option<Duration>) -> TestCall {
        TestCall {
            hang_up_after,
            done: self.done.clone(),
            active: self.active.clone(),
            recordings: self.recordings.clone(),
        }
    }
}

/// VAD and recording of one call, as the session does them.
struct SessionMedia {
    vad: VoiceDetector,
    recorder: StereoRecorder<BufWriter<File>>,
    path: PathBuf,
    caller_ms: u64,
    agent_ms: u64,
}

impl SessionMedia {
    fn open(dir: &Path) -> Self {
        let path = dir.join(format!("{:x}.wav", rand::random::<u64>()));
        SessionMedia {
            vad: VoiceDetector::new(VadConfig::default()),
            recorder: StereoRecorder::create(&path).expect("recording file"),
            path,
            caller_ms: 0,
            agent_ms: 0,
        }
    }

    fn caller(&mut self, frame: &InternalFrame) {
        let frame = Frame::from(*frame);
        self.vad.process(&frame);
        let _ = self.recorder.write(Channel::Caller, self.caller_ms, &frame);
        self.caller_ms += u64::from(FRAME_MS);
    }

    fn agent(&mut self, frame: &InternalFrame) {
        let _ = self
            .recorder
            .write(Channel::Agent, self.agent_ms, &Frame::from(*frame));
        self.agent_ms += u64::from(FRAME_MS);
    }

    fn close(self) {
        let _ = self.recorder.finish();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How the test handler runs one answered call.
pub struct TestCall {
    hang_up_after: Option<Duration>,
    done: mpsc::UnboundedSender<CallSeen>,
    active: Arc<AtomicUsize>,
    recordings: Option<PathBuf>,
}

fn tone_frame(index: usize) -> InternalFrame {
    let mut frame = InternalFrame::silence(INTERNAL_RATE);
    let n = frame.samples().len();
    for (i, s) in frame.samples_mut().iter_mut().enumerate() {
        let t = (index * n + i) as f32 / INTERNAL_RATE as f32;
        *s = ((t * 2.0 * std::f32::consts::PI * 440.0).sin() * 8000.0) as i16;
    }
    frame
}

fn rms(frame: &InternalFrame) -> f64 {
    let sum: f64 = frame.samples().iter().map(|s| (*s as f64).powi(2)).sum();
    (sum / frame.samples().len() as f64).sqrt()
}

/// Consumes a leg like a session would: paces a greeting out, listens, and reports.
pub async fn run_test_call(mut leg: CallLeg, call: TestCall) {
    let TestCall {
        hang_up_after,
        done,
        active,
        recordings,
    } = call;
    active.fetch_add(1, Ordering::Relaxed);
    let mut media = recordings.as_deref().map(SessionMedia::open);
    let mut seen = CallSeen {
        info: leg.info.clone(),
        frames: 0,
        loud_frames: 0,
        digits: String::new(),
        hangup: None,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut tick = 0usize;
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let frame = if tick < 50 { tone_frame(tick) } else { InternalFrame::silence(INTERNAL_RATE) };
                tick += 1;
                if let Some(media) = &mut media {
                    media.agent(&frame);
                }
                if leg.commands.send(LegCommand::Audio(frame)).await.is_err() {
                    break;
                }
                if hang_up_after.is_some_and(|d| started.elapsed() >= d) {
                    let _ = leg.commands.send(LegCommand::Hangup).await;
                    seen.hangup = Some(HangupReason::Local);
                    break;
                }
            }
            event = leg.events.recv() => match event {
                Some(LegEvent::Audio(frame)) => {
                    if let Some(media) = &mut media {
                        media.caller(&frame);
                    }
                    seen.frames += 1;
                    if rms(&frame) > 500.0 {
                        seen.loud_frames += 1;
                    }
                }
                Some(LegEvent::Dtmf(d)) => seen.digits.push(d),
                Some(LegEvent::Mark(_) | LegEvent::AnsweredBy(_)) => {}
                Some(LegEvent::Hangup(reason)) => {
                    seen.hangup = Some(reason);
                    break;
                }
                None => break,
            }
        }
    }
    if let Some(media) = media {
        media.close();
    }
    active.fetch_sub(1, Ordering::Relaxed);
    let _ = done.send(seen);
}

impl CallHandler for TestHandler {
    fn route(&self, info: LegInfo) -> BoxFuture<'static, Routing> {
        let (forever, short) = (
            self.call(None),
            self.call(Some(Duration::from_millis(1500))),
        );
        Box::pin(async move {
            let answer = |call: TestCall| {
                Routing::Answer(Box::new(move |leg| {
                    tokio::spawn(run_test_call(leg, call));
                }))
            };
            match info.to.as_str() {
                "+15550100" => answer(forever),
                "+15550200" => answer(short),
                "+15550300" => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    answer(forever)
                }
                "+15550480" => Routing::Reject {
                    code: 480,
                    reason: "Temporarily Unavailable",
                },
                _ => Routing::Reject {
                    code: 404,
                    reason: "Not Found",
                },
            }
        })
    }

    fn outbound_status(&self, _call: &OutboundCall, status: OutboundStatus) {
        self.outbound.lock().unwrap().push(status);
    }

    fn outbound_answered(&self, _call: OutboundCall, leg: CallLeg) {
        tokio::spawn(run_test_call(
            leg,
            self.call(Some(Duration::from_millis(1500))),
        ));
    }
}

/// A UDP port nobody uses right now (and its neighbour, for RTCP).
pub fn free_port() -> u16 {
    loop {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        if port.is_multiple_of(2) && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

pub fn settings() -> SipSettings {
    let rtp = free_port();
    SipSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_ip: None,
        // A block of 200 ports above a free one; collisions are skipped by the pool.
        rtp_ports: (rtp, rtp.saturating_add(200)),
        allowlist: Vec::new(),
        invites_per_second: 0,
        realm: "boltcall".into(),
        users: Vec::new(),
        trunk: None,
        trunk_host: None,
        trunk_credentials: None,
        rtp_timeout: Duration::from_secs(5),
        limits: SipLimits::default(),
    }
}

pub async fn start(
    settings: SipSettings,
) -> (
    SipService,
    Arc<TestHandler>,
    mpsc::UnboundedReceiver<CallSeen>,
) {
    start_recording(settings, None).await
}

/// `start`, with calls doing VAD and recording into `recordings` when given.
pub async fn start_recording(
    settings: SipSettings,
    recordings: Option<PathBuf>,
) -> (
    SipService,
    Arc<TestHandler>,
    mpsc::UnboundedReceiver<CallSeen>,
) {
    let (handler, rx) = TestHandler::recording_into(recordings);
    let service = SipService::start(settings, handler.clone()).await.unwrap();
    (service, handler, rx)
}

fn require(binary: &str) -> PathBuf {
    // CI installs these; a missing one must fail the test, not skip it.
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let path = Path::new(dir).join(binary);
        if path.is_file() {
            return path;
        }
    }
    panic!("`{binary}` is required for the SIP tests (Debian: sip-tester / baresip / sox)");
}

/// A temp dir holding the scenarios and `caller.ul`: two seconds of a 300 Hz tone in μ-law.
pub fn workdir() -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    let status = std::process::Command::new(require("sox"))
        .args(["-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw"])
        .arg(dir.path().join("caller.ul"))
        .args(["synth", "2", "sine", "300", "vol", "0.5"])
        .status()
        .unwrap();
    assert!(status.success(), "sox failed");
    dir
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip")
        .join(name)
}

/// Runs one sipp call of `scenario` against `target`; returns whether sipp counted it a
/// success, with its error log for the assertion message.
pub async fn sipp(
    dir: &Path,
    scenario: &Path,
    target: SocketAddr,
    service: &str,
    extra: &[&str],
) -> (bool, String) {
    let port = free_port();
    let media_port = free_port();
    let errors = dir.join(format!("errors-{port}.log"));
    let mut cmd = tokio::process::Command::new(require("sipp"));
    cmd.current_dir(dir)
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenario)
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .args([
            "-p",
            &port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-s",
            service,
        ])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = cmd.output().await.expect("sipp runs");
    let log = std::fs::read_to_string(&errors).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{log}\n{stderr}"))
}

/// A temporary directory removed on drop (no extra crate needed).
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "boltcall-sip-{}-{:x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
