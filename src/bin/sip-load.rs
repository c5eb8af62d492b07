//! Load client for the SIP side of a real `boltcall serve`: a UAC over UDP that places calls
//! at a rate (INVITE with a PCMU + telephone-event offer, digest when challenged, ACK), streams
//! caller μ-law every 20 ms from its own RTP sockets, hangs up after the hold time, and reports
//! how fast calls were answered, how soon each caller heard the greeting, whether the engine
//! kept its outbound pacing, and what the calls cost it.
//!
//! ```text
//! sip-load --target 127.0.0.1:5060 --to +14155550100 --calls 25 --rate 5 --seconds 4 \
//!     [--audio caller.wav] [--user trunk --password s3cret] [--server-pid PID]
//! ```
//!
//! Run the engine with `BOLTCALL_SIP_INVITE_RATE` above `--rate` (it is per source address;
//! twice that with `--user`, each call sending two INVITEs) and
//! `BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS` above the calls held at once.

#[path = "load/digest.rs"]
mod digest;
#[path = "load/gaps.rs"]
mod gaps;
#[path = "load/mulaw_wav.rs"]
mod mulaw_wav;
#[path = "load/rtp_plane.rs"]
mod rtp_plane;
#[path = "load/sip_call.rs"]
mod sip_call;
#[path = "load/sip_wire.rs"]
mod sip_wire;
#[path = "load/usage.rs"]
mod usage;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use gaps::{pick, sorted_ms};
use sip_call::{CallReport, Ending, Settings, Shared};
use usage::{Usage, process_usage};

#[derive(Parser)]
#[command(about = "Place SIP calls at a rate against a running engine and time the greeting")]
struct Args {
    /// The engine's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// The agent's number (the Request-URI's user part).
    #[arg(long)]
    to: String,
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// New calls per second; 0 spreads the calls' starts over one second.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long each call is held after its 200 OK before our BYE.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// 8 kHz mono 16-bit WAV the callers play (looped); line silence when absent.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// The engine's process id, to report its CPU time and memory over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Digest user for the engine's 401/407 (`BOLTCALL_SIP_USERS`).
    #[arg(long, requires = "password")]
    user: Option<String>,
    #[arg(long, requires = "user")]
    password: Option<String>,
}

// One thread: the client takes at most one of the cores it shares with the engine, and its
// single media timer needs no more.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let audio = match &args.audio {
        Some(path) => mulaw_wav::load_mulaw(path)?,
        None => Vec::new(),
    };
    let media = rtp_plane::MediaPlane::new(audio);
    let settings = Settings {
        target: args.target,
        to: args.to.clone(),
        hold: Duration::from_secs(args.seconds),
        credentials: args.user.clone().zip(args.password.clone()),
    };
    let shared = Shared::bind(settings, media.clone()).await?;
    tokio::spawn(sip_call::dispatch(shared.clone()));
    tokio::spawn(media.clone().run_ticker());
    let before = args.server_pid.map(process_usage).transpose()?;
    let client_before = process_usage(std::process::id())?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.calls);
    for n in 0..args.calls {
        let delay = if args.rate > 0.0 {
            Duration::from_secs_f64(n as f64 / args.rate)
        } else {
            Duration::from_millis((n as u64 * 1000) / args.calls.max(1) as u64)
        };
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + delay)).await;
            sip_call::place_call(shared, n).await
        }));
    }
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await?);
    }
    let wall = started.elapsed();
    let after = args.server_pid.map(process_usage).transpose()?;
    let client_cpu = process_usage(std::process::id())?.cpu_seconds - client_before.cpu_seconds;
    let peak = shared.peak.load(Ordering::Relaxed);
    report(&args, &reports, &media, peak, wall, before.zip(after));
    // The client shares the cores: what it took is what the engine could not have.
    println!(
        "load client cpu: {client_cpu:.1} s = {:.2} cores",
        client_cpu / wall.as_secs_f64()
    );
    Ok(())
}

fn report(
    args: &Args,
    reports: &[CallReport],
    media: &rtp_plane::MediaPlane,
    peak: usize,
    wall: Duration,
    cost: Option<(Usage, Usage)>,
) {
    let ok: Vec<&CallReport> = reports.iter().filter(|r| r.result.is_ok()).collect();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reports {
        if let Err(e) = &r.result {
            *reasons.entry(e.as_str()).or_default() += 1;
        }
    }
    println!(
        "calls: {} requested, {} completed, {} failed",
        args.calls,
        ok.len(),
        reports.len() - ok.len()
    );
    for (reason, n) in &reasons {
        println!("  failed: {reason} × {n}");
    }
    let engine_bye = ok
        .iter()
        .filter(|r| r.result == Ok(Ending::EngineBye))
        .count();
    if engine_bye > 0 {
        println!(
            "  of the completed, {engine_bye} were hung up by the engine before the hold ended"
        );
    }
    println!(
        "mode: {}; {} s per call; rate {}; wall {:.1} s; peak concurrent calls {peak}",
        if args.audio.is_some() {
            "speech"
        } else {
            "silent"
        },
        args.seconds,
        if args.rate > 0.0 {
            format!("{}/s", args.rate)
        } else {
            "burst over 1 s".into()
        },
        wall.as_secs_f64()
    );
    let latency = sorted_ms(reports.iter().filter_map(|r| r.invite_to_ok));
    println!(
        "INVITE → 200 OK: {} answered; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.len(),
        pick(&latency, 50),
        pick(&latency, 99),
        pick(&latency, 100)
    );
    let heard: Vec<_> = ok.iter().filter_map(|r| r.media.as_ref()).collect();
    let first = sorted_ms(heard.iter().filter_map(|m| m.first_packet));
    // Sound that first came while our BYE was in flight was not heard within the hold.
    let hold = Duration::from_secs(args.seconds);
    let voice = sorted_ms(
        heard
            .iter()
            .filter_map(|m| m.first_voice)
            .filter(|d| *d <= hold),
    );
    println!(
        "200 OK → first agent RTP packet: {} of {} calls; p50 {:.0} ms, p99 {:.0} ms",
        first.len(),
        ok.len(),
        pick(&first, 50),
        pick(&first, 99)
    );
    println!(
        "200 OK → first non-silent agent audio (the greeting): {} of {} calls heard it within {} s; \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        voice.len(),
        ok.len(),
        args.seconds,
        pick(&voice, 50),
        pick(&voice, 99),
        pick(&voice, 100)
    );
    // Pacing: engine packets per 20 ms of the span they arrived over (1.0 = exact).
    let mut ratios: Vec<f64> = heard
        .iter()
        .filter(|m| m.span > Duration::from_secs(1))
        .map(|m| m.packets.saturating_sub(1) as f64 / (m.span.as_secs_f64() / 0.02))
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "outbound pacing (engine packets per 20 ms per call): min {:.3} p50 {:.3} max {:.3}",
        pick(&ratios, 0),
        pick(&ratios, 50),
        pick(&ratios, 100)
    );
    let gaps = media.gaps();
    let largest = sorted_ms(heard.iter().map(|m| m.max_gap));
    println!(
        "gap between consecutive engine packets ({} gaps): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         largest per call p50 {:.0} ms",
        gaps.count(),
        gaps.quantile_ms(0.5),
        gaps.quantile_ms(0.99),
        gaps.max_ms(),
        pick(&largest, 50)
    );
    if let Some((before, after)) = cost {
        println!("(per call below = per peak concurrent call, {peak})");
        usage::print_cost(&before, &after, wall, peak);
    }
}
