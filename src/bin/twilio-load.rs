//! Load client for the Twilio Media Streams endpoint: fake Twilio calls, started at a rate,
//! that stream caller audio in real time, and a report of how soon each caller heard the
//! greeting (and with `--say`, the reply to what it said), whether the engine kept its
//! outbound pacing (one 20 ms `media` message per 20 ms per call) and what the calls cost it.
//!
//! ```text
//! twilio-load --url ws://127.0.0.1:8080/carrier/twilio/stream --to +14155550100 \
//!     --calls 50 --seconds 30 [--rate 100] [--concurrency 200] \
//!     [--audio caller.wav | --say hello.wav --say-at 6 | --silent] \
//!     [--server-pid PID [--sample-secs 10]]
//! ```
//!
//! Calls are started one by one at `--rate` (without it, all within one second), so a soak of
//! 100,000 calls holds only the live ones, and the report keeps sums, not a record per call.
//! Times run from the call's `start` message; the greeting is the first agent frame that
//! carries sound, not the first `media` message (the engine streams silence when idle).
//!
//! It signs nothing: run the engine with `BOLTCALL_TWILIO_ALLOW_UNSIGNED=1` and no auth token
//! (and `BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS` above the calls live at once).

#[path = "load/histogram.rs"]
mod histogram;
#[path = "load/launch.rs"]
mod launch;
#[path = "load/mulaw_wav.rs"]
mod mulaw_wav;
#[path = "load/sampler.rs"]
mod sampler;
#[path = "load/speech.rs"]
mod speech;
#[path = "load/usage.rs"]
mod usage;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use histogram::Histogram;
use launch::{Failures, Progress, SoakArgs, launch};
use serde::Deserialize;
use serde_json::json;
use speech::{Ear, Hearing, Script};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use usage::{Usage, process_usage};

/// How long the engine may take to close the stream after our `stop`.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(about = "Place fake Twilio Media Streams calls at a rate against a running engine")]
struct Args {
    /// The engine's stream endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/carrier/twilio/stream")]
    url: String,
    /// The agents' numbers (the `to` parameter), comma-separated: call n dials the n-th in
    /// turn (a soak spreads its calls over several workspaces' minutes).
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<String>,
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
    #[arg(long, conflicts_with = "say")]
    silent: bool,
    /// The engine's process id, to report its CPU time and memory over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    soak: SoakArgs,
}

/// What one call leaves for the report.
struct Call {
    ear: Ear,
    /// The engine closed the stream before the hold ended.
    engine_hung_up: bool,
}

/// The run's sums.
struct Tally {
    completed: usize,
    engine_hung_up: usize,
    failures: Failures,
    hearing: Hearing,
}

impl Tally {
    /// Adds one call's result; whether it completed.
    fn add(&mut self, result: Result<anyhow::Result<Call>, String>) -> bool {
        match result {
            Ok(Ok(call)) => {
                self.completed += 1;
                self.engine_hung_up += usize::from(call.engine_hung_up);
                self.hearing.add(&call.ear);
                true
            }
            Ok(Err(e)) => {
                self.failures.add(format!("{e:#}"));
                false
            }
            Err(e) => {
                self.failures.add(e);
                false
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script = Arc::new(launch::script(args.audio.as_deref(), &args.soak)?);
    let gaps = Arc::new(Mutex::new(Histogram::gaps()));
    let mut tally = Tally {
        completed: 0,
        engine_hung_up: 0,
        failures: Failures::default(),
        hearing: Hearing::new(Duration::from_secs(args.seconds), &script),
    };
    let before = args.server_pid.map(process_usage).transpose()?;
    let progress = Arc::new(Progress::default());
    let sampler = args
        .soak
        .sampler(args.server_pid, args.seconds, args.calls, progress.clone());
    let started = Instant::now();
    let plan = args.soak.plan(args.calls, args.rate);
    launch(
        &plan,
        &progress,
        |n| {
            let (url, to) = (args.url.clone(), args.to[n % args.to.len()].clone());
            let (script, gaps, seconds) = (script.clone(), gaps.clone(), args.seconds);
            async move { one_call(n, &url, &to, &script, seconds, &gaps).await }
        },
        |result| tally.add(result),
    )
    .await;
    let wall = started.elapsed();
    let after = args.server_pid.map(process_usage).transpose()?;
    let peak = progress.peak.load(Ordering::Relaxed);
    {
        let gaps = gaps.lock().unwrap_or_else(|e| e.into_inner());
        report(&args, &tally, &gaps, peak, wall, before.zip(after));
    }
    if let Some(sampler) = sampler {
        sampler.finish().await;
    }
    Ok(())
}

/// The engine's messages a caller reads, borrowed from the text: `media` carries a payload,
/// `mark` a name; anything else (`clear`) is skipped. (A plain struct, not a tagged enum:
/// serde buffers a tagged enum's whole message first, at 50 messages a second per call.)
#[derive(Deserialize)]
struct Outbound<'a> {
    #[serde(borrow)]
    event: &'a str,
    #[serde(borrow)]
    media: Option<OutMedia<'a>>,
    mark: Option<OutMark>,
}

#[derive(Deserialize)]
struct OutMedia<'a> {
    payload: &'a str,
}

#[derive(Deserialize)]
struct OutMark {
    name: String,
}

async fn one_call(
    n: usize,
    url: &str,
    to: &str,
    script: &Script,
    seconds: u64,
    gaps: &Mutex<Histogram>,
) -> anyhow::Result<Call> {
    // As a carrier would: no Nagle delay, and a read buffer sized for 300-byte messages
    // (tungstenite's 128 KiB default is zeroed on every read, which would make the client
    // the machine's bottleneck long before the engine).
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
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
                  "customParameters": {"from": format!("+1555{:07}", n % 10_000_000), "to": to,
                                       "call_sid": call_sid}}
    })))
    .await?;
    let start_sent = Instant::now();
    let mut ear = Ear::default();
    let frames = seconds as usize * 50;
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let give_up = tokio::time::sleep(Duration::MAX);
    tokio::pin!(give_up);
    let mut sequence = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick(), if sent < frames => {
                let chunk = script.frame(sent, start_sent.elapsed(), &mut ear);
                tx.send(Message::Text(caller_media(&sid, sent, chunk).into())).await?;
                sent += 1;
                if sent == frames {
                    tx.send(text(json!({"event": "stop", "streamSid": sid,
                                        "stop": {"callSid": call_sid}})))
                        .await?;
                    give_up.as_mut().reset(tokio::time::Instant::now() + CLOSE_WAIT);
                }
            }
            message = rx.next() => {
                let body = match message {
                    Some(Ok(Message::Text(body))) => body,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    // Reset after our stop rather than closed: the call is over all the same.
                    Some(Err(_)) if sent == frames => break,
                    Some(Err(e)) => return Err(e).context("the stream broke off"),
                };
                let at = start_sent.elapsed();
                let message = serde_json::from_str::<Outbound>(&body)
                    .map_err(|e| anyhow::anyhow!("unreadable engine message: {e}"))?;
                match (message.event, message.media, message.mark) {
                    ("media", Some(media), _) => {
                        let payload = BASE64.decode(media.payload.as_bytes()).context("media payload")?;
                        if let Some(gap) = ear.hear(at, &payload) {
                            gaps.lock().unwrap_or_else(|e| e.into_inner()).add_ms(gap);
                        }
                    }
                    // Twilio answers a mark once the audio before it has played; ours plays
                    // on arrival. The engine marks the end of each stretch of its speech.
                    ("mark", _, Some(mark)) => {
                        ear.stretch_ended();
                        sequence += 1;
                        tx.send(Message::Text(mark_played(&sid, sequence, &mark.name).into())).await?;
                    }
                    _ => {}
                }
            }
            _ = &mut give_up => anyhow::bail!("the engine never closed the stream"),
        }
    }
    Ok(Call {
        ear,
        engine_hung_up: sent < frames,
    })
}

/// The caller's `media` message carrying frame `k`.
fn caller_media(sid: &str, k: usize, chunk: &[u8]) -> String {
    // Written out rather than through a JSON tree: the client must stay far cheaper than the
    // engine it loads (nothing here needs escaping: our sid, digits and base64).
    format!(
        r#"{{"event":"media","streamSid":"{sid}","media":{{"track":"inbound","chunk":"{k}","timestamp":"{}","payload":"{}"}}}}"#,
        k * 20,
        BASE64.encode(chunk)
    )
}

/// Twilio's answer to the engine's `mark`: the audio before it has played.
fn mark_played(sid: &str, sequence: u64, name: &str) -> String {
    json!({"event": "mark", "streamSid": sid, "sequenceNumber": sequence.to_string(),
           "mark": {"name": name}})
    .to_string()
}

fn report(
    args: &Args,
    tally: &Tally,
    gaps: &Histogram,
    peak: usize,
    wall: Duration,
    cost: Option<(Usage, Usage)>,
) {
    println!(
        "calls: {} requested, {} completed, {} failed",
        args.calls,
        tally.completed,
        args.calls - tally.completed
    );
    tally.failures.print();
    if tally.engine_hung_up > 0 {
        println!(
            "  of the completed, {} were hung up by the engine before the hold ended",
            tally.engine_hung_up
        );
    }
    args.soak
        .print_mode(args.audio.is_some(), args.seconds, args.rate, wall, peak);
    tally.hearing.print("start");
    speech::print_frame_gaps(gaps);
    if let Some((before, after)) = cost {
        println!("(per call below = per peak concurrent call, {peak})");
        usage::print_cost(&before, &after, wall, peak);
    }
}

#[cfg(test)]
mod tests {
    use boltcall::telephony::twilio::protocol::{self, Inbound};

    use super::*;

    #[test]
    fn we_read_what_the_engine_writes_and_it_reads_what_we_write() {
        let speech: Vec<u8> = (0..160)
            .map(|i| media::g711::ulaw_from_linear(((i as f64 * 0.3).sin() * 3000.0) as i16))
            .collect();
        let mut ear = Ear::default();
        for (at, wire) in [(20, [0xFF; 160].to_vec()), (40, speech.clone())] {
            let text = protocol::media("MZ1", &wire);
            let message: Outbound = serde_json::from_str(&text).unwrap();
            assert_eq!(message.event, "media");
            let payload = message.media.expect("a media payload").payload;
            ear.hear(Duration::from_millis(at), &BASE64.decode(payload).unwrap());
        }
        assert_eq!(ear.first_packet, Some(Duration::from_millis(20)));
        assert_eq!(ear.first_voice, Some(Duration::from_millis(40)));
        let text = protocol::mark("MZ1", "m7");
        let message: Outbound = serde_json::from_str(&text).unwrap();
        assert_eq!(message.event, "mark");
        assert_eq!(message.mark.expect("a mark").name, "m7");
        let text = protocol::clear("MZ1");
        let message: Outbound = serde_json::from_str(&text).unwrap();
        assert!((message.event, message.media.is_none()) == ("clear", true));
        assert_eq!(
            protocol::parse(&mark_played("MZ1", 1, "m7")).unwrap(),
            Inbound::Mark("m7".into())
        );
        assert_eq!(
            protocol::parse(&caller_media("MZ1", 3, &speech)).unwrap(),
            Inbound::Media { payload: speech }
        );
    }

    #[test]
    fn failures_and_engine_hangups_are_summed() {
        let script = Script::Silence;
        let mut tally = Tally {
            completed: 0,
            engine_hung_up: 0,
            failures: Failures::default(),
            hearing: Hearing::new(Duration::from_secs(4), &script),
        };
        let call = |engine_hung_up| {
            Ok(Ok(Call {
                ear: Ear::default(),
                engine_hung_up,
            }))
        };
        assert!(tally.add(call(false)));
        assert!(tally.add(call(true)));
        assert!(!tally.add(Ok(Err(anyhow::anyhow!("refused")).context("connect"))));
        assert!(!tally.add(Err("panicked".into())));
        assert_eq!((tally.completed, tally.engine_hung_up), (2, 1));
    }
}
