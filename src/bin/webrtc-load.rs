//! Load client for browser calls: holds N concurrent WebRTC calls against a running engine,
//! each one like the console's (an SDP offer with Opus audio and a `captions` data channel
//! posted to `/v1/agents/{id}/web-calls`, DTLS-SRTP, Opus 48 kHz both ways), streaming caller
//! audio in real time. Reports what the calls received and what they cost the engine.
//!
//! ```text
//! webrtc-load --url http://127.0.0.1:8080 --key sk_test_… --agent agent_… \
//!     --calls 20 --seconds 30 [--audio caller.wav] [--server-pid PID]
//! ```
//!
//! Run the engine with `BOLTCALL_RATE_LIMIT=off` and `BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS`
//! at least `--calls`.

#[path = "load/usage.rs"]
mod usage;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use media::Frame;
use media::codec::opus::{MAX_PACKET, OPUS_RATE, OpusEncoder};
use media::resample::FrameResampler;
use tokio::sync::Mutex;
use usage::{Usage, process_usage};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

#[derive(Parser)]
#[command(about = "Hold N concurrent browser-like WebRTC calls against a running engine")]
struct Args {
    /// The engine's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key of the agent's workspace.
    #[arg(long)]
    key: String,
    /// The agent to call.
    #[arg(long)]
    agent: String,
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// How long each call lasts once connected.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Mono 16-bit WAV at 8, 16, 24 or 48 kHz the callers play (looped); silence when absent.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// The engine's process id, to report its CPU time and memory over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// What one call saw.
#[derive(Default)]
struct CallStats {
    /// POST of the offer → the first agent RTP packet.
    first_audio: Option<Duration>,
    /// Agent RTP packets, and those carrying sound (not Opus's few-byte silence frames).
    packets: u64,
    voiced: u64,
    captions: u64,
    /// Seconds the call was held.
    held: f64,
    error: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    boltcall::install_crypto_provider();
    let args = Arc::new(Args::parse());
    let audio = Arc::new(match &args.audio {
        Some(path) => load_48k(path)?,
        None => Vec::new(),
    });
    let before = args.server_pid.map(process_usage).transpose()?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.calls);
    for n in 0..args.calls {
        let (args, audio) = (args.clone(), audio.clone());
        // Stagger set-ups over a second so the engine is not hit by one burst.
        let delay = Duration::from_millis((n as u64 * 1000) / args.calls.max(1) as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match one_call(&args, &audio).await {
                Ok(stats) => stats,
                Err(e) => CallStats {
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                },
            }
        }));
    }
    let mut stats = Vec::with_capacity(tasks.len());
    for task in tasks {
        stats.push(task.await?);
    }
    let wall = started.elapsed();
    let after = args.server_pid.map(process_usage).transpose()?;
    report(&args, &stats, wall, before.zip(after));
    Ok(())
}

fn opus() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: OPUS_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

async fn one_call(args: &Args, audio: &[i16]) -> anyhow::Result<CallStats> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            capability: opus(),
            payload_type: 111,
            ..Default::default()
        },
        RTPCodecType::Audio,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
    let mic = Arc::new(TrackLocalStaticSample::new(
        opus(),
        "mic".into(),
        "caller".into(),
    ));
    let sender = pc
        .add_track(Arc::clone(&mic) as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while sender.read(&mut buf).await.is_ok() {}
    });
    let captions = Arc::new(AtomicU64::new(0));
    let channel = pc.create_data_channel("captions", None).await?;
    let counted = captions.clone();
    channel.on_message(Box::new(move |_: DataChannelMessage| {
        counted.fetch_add(1, Ordering::Relaxed);
        Box::pin(async {})
    }));
    let received = Arc::new(Mutex::new(CallStats::default()));
    let posted = Arc::new(std::sync::Mutex::new(Instant::now()));
    let (on_received, on_posted) = (received.clone(), posted.clone());
    pc.on_track(Box::new(move |track, _, _| {
        let (stats, posted) = (on_received.clone(), on_posted.clone());
        Box::pin(async move {
            while let Ok((packet, _)) = track.read_rtp().await {
                let mut stats = stats.lock().await;
                if stats.first_audio.is_none() {
                    let posted = *posted.lock().unwrap_or_else(|e| e.into_inner());
                    stats.first_audio = Some(posted.elapsed());
                }
                stats.packets += 1;
                // Our encoder's silence frames are a few bytes; speech is tens.
                if packet.payload.len() > 20 {
                    stats.voiced += 1;
                }
            }
        })
    }));
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    let offer = pc.local_description().await.context("no local offer")?;
    let http = reqwest::Client::new();
    *posted.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    let response = http
        .post(format!("{}/v1/agents/{}/web-calls", args.url, args.agent))
        .bearer_auth(&args.key)
        .header("content-type", "application/sdp")
        .body(offer.sdp)
        .send()
        .await?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await?;
    anyhow::ensure!(status.as_u16() == 201, "offer refused: {status} {body}");
    let location = location.context("no Location in the answer")?;
    pc.set_remote_description(RTCSessionDescription::answer(body)?)
        .await?;
    let held = Instant::now();
    stream_caller(&mic, audio, args.seconds).await?;
    let held = held.elapsed().as_secs_f64();
    let _ = http
        .delete(format!("{}{location}", args.url))
        .bearer_auth(&args.key)
        .send()
        .await;
    pc.close().await?;
    let mut stats = std::mem::take(&mut *received.lock().await);
    stats.captions = captions.load(Ordering::Relaxed);
    stats.held = held;
    Ok(stats)
}

/// Sends `audio` (48 kHz, looped; silence when empty) as 20 ms Opus packets in real time.
async fn stream_caller(
    mic: &TrackLocalStaticSample,
    audio: &[i16],
    seconds: u64,
) -> anyhow::Result<()> {
    let mut encoder = OpusEncoder::new(32_000, 0)?;
    let mut packet = [0u8; MAX_PACKET];
    let per_frame = Frame::samples_per_frame(OPUS_RATE);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..(seconds * 50) as usize {
        tick.tick().await;
        let frame = if audio.len() >= per_frame {
            let usable = audio.len() - audio.len() % per_frame;
            let at = (i * per_frame) % usable;
            Frame::from_slice(OPUS_RATE, &audio[at..at + per_frame]).context("frame")?
        } else {
            Frame::silence(OPUS_RATE)
        };
        let len = encoder.encode(&frame, &mut packet)?;
        let sample = Sample {
            data: bytes::Bytes::copy_from_slice(&packet[..len]),
            duration: Duration::from_millis(20),
            ..Default::default()
        };
        // Before ICE and DTLS are up the track has nowhere to send: dropped, like a browser.
        let _ = mic.write_sample(&sample).await;
    }
    Ok(())
}

fn report(args: &Args, stats: &[CallStats], wall: Duration, cost: Option<(Usage, Usage)>) {
    let failed: Vec<&String> = stats.iter().filter_map(|s| s.error.as_ref()).collect();
    let ok: Vec<&CallStats> = stats.iter().filter(|s| s.error.is_none()).collect();
    println!(
        "calls: {} requested, {} completed, {} failed",
        args.calls,
        ok.len(),
        failed.len()
    );
    for e in failed.iter().take(5) {
        println!("  failure: {e}");
    }
    println!(
        "mode: {}; {} s per call; wall {:.1} s",
        if args.audio.is_some() {
            "speech"
        } else {
            "silent"
        },
        args.seconds,
        wall.as_secs_f64()
    );
    let mut waits: Vec<f64> = ok
        .iter()
        .filter_map(|s| s.first_audio)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let pick = |v: &[f64], p: usize| {
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "offer posted → first agent packet: {} of {} calls; p50 {:.0} ms, p99 {:.0} ms",
        waits.len(),
        ok.len(),
        pick(&waits, 50),
        pick(&waits, 99)
    );
    let mut rates: Vec<f64> = ok
        .iter()
        .filter(|s| s.held > 0.0)
        .map(|s| s.packets as f64 / s.held)
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "agent packets per second per call (50 = every 20 ms): min {:.1} p50 {:.1} max {:.1}",
        pick(&rates, 0),
        pick(&rates, 50),
        pick(&rates, 100)
    );
    let voiced: u64 = ok.iter().map(|s| s.voiced).sum();
    let captions: u64 = ok.iter().map(|s| s.captions).sum();
    println!(
        "agent speech: {:.1} s per call on average; captions received: {captions}",
        voiced as f64 * 0.02 / ok.len().max(1) as f64
    );
    if let Some((before, after)) = cost {
        usage::print_cost(&before, &after, wall, args.calls);
    }
}

/// Reads a mono 16-bit WAV and brings it to 48 kHz with the media crate's resampler.
fn load_48k(path: &PathBuf) -> anyhow::Result<Vec<i16>> {
    let mut reader = hound::WavReader::open(path).with_context(|| path.display().to_string())?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.channels == 1 && spec.bits_per_sample == 16,
        "{}: expected mono 16-bit",
        path.display()
    );
    let pcm: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
    let mut up = FrameResampler::new(spec.sample_rate, OPUS_RATE)?;
    let per_frame = Frame::samples_per_frame(spec.sample_rate);
    let mut out = Vec::with_capacity(pcm.len() * (OPUS_RATE / spec.sample_rate) as usize);
    for chunk in pcm.chunks_exact(per_frame) {
        let frame = Frame::from_slice(spec.sample_rate, chunk).context("frame")?;
        out.extend_from_slice(up.process(&frame)?.samples());
    }
    Ok(out)
}
