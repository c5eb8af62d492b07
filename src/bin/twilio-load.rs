//! Load client for the Twilio Media Streams endpoint: opens N concurrent fake Twilio calls
//! that stream caller audio in real time, and reports whether the engine kept its outbound
//! pacing (one 20 ms `media` message per 20 ms per call) and what the calls cost it.
//!
//! ```text
//! twilio-load --url ws://127.0.0.1:8080/carrier/twilio/stream --to +14155550100 \
//!     --calls 50 --seconds 30 [--rate 100] [--audio caller.wav | --silent] [--server-pid PID]
//! ```
//!
//! With `--rate`, calls start at that many per second, and the report gives how long each
//! caller waited from its `start` to the agent's first audio (the greeting).
//!
//! It signs nothing: run the engine with `BOLTCALL_TWILIO_ALLOW_UNSIGNED=1` and no auth token
//! (and `BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS` at least `--calls`).

#[path = "load/mulaw_wav.rs"]
mod mulaw_wav;
#[path = "load/usage.rs"]
mod usage;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use usage::{Usage, process_usage};

#[derive(Parser)]
#[command(about = "Open N concurrent fake Twilio Media Streams calls against a running engine")]
struct Args {
    /// The engine's stream endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/carrier/twilio/stream")]
    url: String,
    /// The agent's number (the `to` parameter).
    #[arg(long)]
    to: String,
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// How long each call streams.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// New calls per second; 0 spreads the calls' starts over one second.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// 8 kHz mono 16-bit WAV the callers play (looped); silence when absent.
    #[arg(long, conflicts_with = "silent")]
    audio: Option<PathBuf>,
    /// Callers send line silence only: measures transport, VAD and pacing without STT/TTS.
    #[arg(long)]
    silent: bool,
    /// The engine's process id, to report its CPU time and memory over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// What one call saw.
#[derive(Default)]
struct CallStats {
    /// Agent `media` messages received.
    received: u64,
    /// Longest wait between two agent messages after the first.
    max_gap: Duration,
    /// Wall time from the first to the last agent message.
    span: Duration,
    /// From sending `start` to the agent's first audio.
    first_audio: Option<Duration>,
    error: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let audio = match &args.audio {
        Some(path) => Some(mulaw_wav::load_mulaw(path)?),
        None => None,
    };
    let before = args.server_pid.map(process_usage).transpose()?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.calls);
    for n in 0..args.calls {
        let (url, to, audio) = (args.url.clone(), args.to.clone(), audio.clone());
        let seconds = args.seconds;
        let delay = if args.rate > 0.0 {
            Duration::from_secs_f64(n as f64 / args.rate)
        } else {
            // Stagger connects over a second so the engine is not hit by one burst.
            Duration::from_millis((n as u64 * 1000) / 50 % 1000)
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + delay)).await;
            match one_call(n, &url, &to, audio.as_deref(), seconds).await {
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

async fn one_call(
    n: usize,
    url: &str,
    to: &str,
    audio: Option<&[u8]>,
    seconds: u64,
) -> anyhow::Result<CallStats> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("connect")?;
    let (mut tx, mut rx) = ws.split();
    let sid = format!("MZload{n:05}");
    let call_sid = format!("CAload{n:05}");
    let text = |v: serde_json::Value| Message::Text(v.to_string().into());
    tx.send(text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await?;
    tx.send(text(json!({
        "event": "start", "streamSid": sid,
        "start": {"streamSid": sid, "callSid": call_sid, "accountSid": "ACload",
                  "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": {"from": format!("+1555{n:07}"), "to": to, "call_sid": call_sid}}
    })))
    .await?;
    let start_sent = Instant::now();
    let reader = tokio::spawn(async move {
        let mut stats = CallStats::default();
        let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
        while let Some(Ok(message)) = rx.next().await {
            let Message::Text(body) = message else {
                continue;
            };
            if !body.contains(r#""event":"media""#) {
                continue;
            }
            let now = Instant::now();
            if let Some(prev) = last {
                stats.max_gap = stats.max_gap.max(now - prev);
            }
            first.get_or_insert(now);
            stats.first_audio.get_or_insert(now - start_sent);
            last = Some(now);
            stats.received += 1;
        }
        if let (Some(a), Some(b)) = (first, last) {
            stats.span = b - a;
        }
        stats
    });
    let silence = [0xFFu8; 160];
    let frames = seconds * 50;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..frames as usize {
        tick.tick().await;
        let chunk = match audio {
            Some(audio) if audio.len() >= 160 => {
                let at = (i * 160) % (audio.len() - audio.len() % 160);
                &audio[at..at + 160]
            }
            _ => &silence[..],
        };
        let msg = json!({"event": "media", "streamSid": sid,
            "media": {"track": "inbound", "chunk": i.to_string(), "timestamp": (i * 20).to_string(),
                      "payload": BASE64.encode(chunk)}});
        tx.send(text(msg)).await?;
    }
    tx.send(text(
        json!({"event": "stop", "streamSid": sid, "stop": {"callSid": call_sid}}),
    ))
    .await?;
    let stats = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .context("the engine never closed the stream")??;
    Ok(stats)
}

fn report(args: &Args, stats: &[CallStats], wall: Duration, cost: Option<(Usage, Usage)>) {
    let failed: Vec<&String> = stats.iter().filter_map(|s| s.error.as_ref()).collect();
    let ok: Vec<&CallStats> = stats.iter().filter(|s| s.error.is_none()).collect();
    // Pacing: agent frames received per 20 ms of the span they arrived over (1.0 = exact).
    let mut ratios: Vec<f64> = ok
        .iter()
        .filter(|s| s.span > Duration::from_secs(1))
        .map(|s| (s.received.saturating_sub(1)) as f64 / (s.span.as_secs_f64() / 0.02))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let mut gaps: Vec<u128> = ok.iter().map(|s| s.max_gap.as_millis()).collect();
    gaps.sort_unstable();
    let pick = |v: &[f64], p: usize| {
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
            .copied()
    };
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
        "mode: {}",
        if args.audio.is_some() {
            "speech"
        } else {
            "silent"
        }
    );
    println!("wall: {:.1} s", wall.as_secs_f64());
    let mut waits: Vec<Duration> = ok.iter().filter_map(|s| s.first_audio).collect();
    waits.sort_unstable();
    let wait_ms = |p: usize| {
        waits
            .get((waits.len() * p / 100).min(waits.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "start to first agent audio: {} of {} calls heard the agent; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        waits.len(),
        ok.len(),
        wait_ms(50),
        wait_ms(99),
        wait_ms(100)
    );
    println!(
        "outbound pacing (frames per 20 ms): min {:.3} p50 {:.3} max {:.3}",
        pick(&ratios, 0).unwrap_or(0.0),
        pick(&ratios, 50).unwrap_or(0.0),
        pick(&ratios, 100).unwrap_or(0.0)
    );
    println!(
        "largest gap between agent frames: p50 {} ms, max {} ms",
        gaps.get(gaps.len() / 2).copied().unwrap_or(0),
        gaps.last().copied().unwrap_or(0)
    );
    if let Some((before, after)) = cost {
        usage::print_cost(&before, &after, wall, args.calls);
    }
}
