//! Load client for the SIP side of a real `boltcall serve`: a UAC over UDP that places calls
//! at a rate (INVITE with a PCMU + telephone-event offer, digest when challenged, ACK), streams
//! caller μ-law every 20 ms from its own RTP sockets, hangs up after the hold time, and reports
//! how fast calls were answered, how soon each caller heard the greeting (and with `--say`,
//! the reply to what it said), whether the engine kept its outbound pacing, and what the
//! calls cost it.
//!
//! ```text
//! sip-load --target 127.0.0.1:5060 --to +14155550100 --calls 25 --rate 5 --seconds 4 \
//!     [--audio caller.wav | --say hello.wav --say-at 6] [--concurrency 200] \
//!     [--user trunk --password s3cret] [--server-pid PID [--sample-secs 10]]
//! ```
//!
//! Calls are started one by one at `--rate` (a soak of 100,000 calls holds only the live
//! ones), and the report keeps sums, not a record per call.
//!
//! Run the engine with `BOLTCALL_SIP_INVITE_RATE` above `--rate` (it is per source address;
//! twice that with `--user`, each call sending two INVITEs) and
//! `BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS` above the calls held at once.

#[path = "load/digest.rs"]
mod digest;
#[path = "load/histogram.rs"]
mod histogram;
#[path = "load/launch.rs"]
mod launch;
#[path = "load/mulaw_wav.rs"]
mod mulaw_wav;
#[path = "load/rtp_plane.rs"]
mod rtp_plane;
#[path = "load/sampler.rs"]
mod sampler;
#[path = "load/sip_call.rs"]
mod sip_call;
#[path = "load/sip_wire.rs"]
mod sip_wire;
#[path = "load/speech.rs"]
mod speech;
#[path = "load/usage.rs"]
mod usage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use histogram::Histogram;
use launch::{Failures, Progress, SoakArgs, launch};
use sip_call::{CallReport, Ending, Settings, Shared};
use speech::Hearing;
use usage::{Usage, process_usage};

#[derive(Parser)]
#[command(about = "Place SIP calls at a rate against a running engine and time the greeting")]
struct Args {
    /// The engine's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// The agents' numbers (the Request-URI's user part), comma-separated: call n dials the
    /// n-th in turn (a soak spreads its calls over several workspaces' minutes).
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<String>,
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
    #[command(flatten)]
    soak: SoakArgs,
    /// The engine's process id, to report its CPU time and memory over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Digest user for the engine's 401/407 (`BOLTCALL_SIP_USERS`).
    #[arg(long, requires = "password")]
    user: Option<String>,
    #[arg(long, requires = "user")]
    password: Option<String>,
}

/// The run's sums.
struct Tally {
    requested: usize,
    completed: usize,
    failures: Failures,
    engine_bye: usize,
    invite_to_ok: Histogram,
    hearing: Hearing,
}

impl Tally {
    /// Adds one call's report; whether it completed.
    fn add(&mut self, report: Result<CallReport, String>) -> bool {
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                self.failures.add(e);
                return false;
            }
        };
        if let Some(latency) = report.invite_to_ok {
            self.invite_to_ok.add_ms(latency);
        }
        match report.result {
            Ok(ending) => {
                self.completed += 1;
                self.engine_bye += usize::from(ending == Ending::EngineBye);
                if let Some(ear) = &report.media {
                    self.hearing.add(ear);
                }
                true
            }
            Err(e) => {
                self.failures.add(e);
                false
            }
        }
    }
}

// One thread: the client takes at most one of the cores it shares with the engine, and its
// single media timer needs no more.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script = launch::script(args.audio.as_deref(), &args.soak)?;
    let hold = Duration::from_secs(args.seconds);
    let mut tally = Tally {
        requested: args.calls,
        completed: 0,
        failures: Failures::default(),
        engine_bye: 0,
        invite_to_ok: Histogram::latency(),
        hearing: Hearing::new(hold, &script),
    };
    let media = rtp_plane::MediaPlane::new(script);
    let settings = Settings {
        target: args.target,
        to: args.to.clone(),
        hold,
        credentials: args.user.clone().zip(args.password.clone()),
    };
    let shared = Shared::bind(settings, media.clone()).await?;
    tokio::spawn(sip_call::dispatch(shared.clone()));
    tokio::spawn(media.clone().run_ticker());
    let before = args.server_pid.map(process_usage).transpose()?;
    let client_before = process_usage(std::process::id())?;
    let progress = Arc::new(Progress::default());
    let sampler = args
        .soak
        .sampler(args.server_pid, args.seconds, args.calls, progress.clone());
    let started = Instant::now();
    let plan = args.soak.plan(args.calls, args.rate);
    launch(
        &plan,
        &progress,
        |n| sip_call::place_call(shared.clone(), n),
        |report| tally.add(report),
    )
    .await;
    let wall = started.elapsed();
    let after = args.server_pid.map(process_usage).transpose()?;
    let client_cpu = process_usage(std::process::id())?.cpu_seconds - client_before.cpu_seconds;
    let peak = shared.peak.load(Ordering::Relaxed);
    report(&args, &tally, &media, peak, wall, before.zip(after));
    // The client shares the cores: what it took is what the engine could not have.
    println!(
        "load client cpu: {client_cpu:.1} s = {:.2} cores",
        client_cpu / wall.as_secs_f64()
    );
    if let Some(sampler) = sampler {
        sampler.finish().await;
    }
    Ok(())
}

fn report(
    args: &Args,
    tally: &Tally,
    media: &rtp_plane::MediaPlane,
    peak: usize,
    wall: Duration,
    cost: Option<(Usage, Usage)>,
) {
    let completed = tally.completed;
    println!(
        "calls: {} requested, {completed} completed, {} failed",
        tally.requested,
        tally.requested - completed
    );
    tally.failures.print();
    if tally.engine_bye > 0 {
        println!(
            "  of the completed, {} were hung up by the engine before the hold ended",
            tally.engine_bye
        );
    }
    args.soak
        .print_mode(args.audio.is_some(), args.seconds, args.rate, wall, peak);
    let latency = &tally.invite_to_ok;
    println!(
        "INVITE → 200 OK: {} answered; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.count(),
        latency.pick(50),
        latency.pick(99),
        latency.max()
    );
    tally.hearing.print("200 OK");
    speech::print_frame_gaps(&media.gaps());
    if let Some((before, after)) = cost {
        println!("(per call below = per peak concurrent call, {peak})");
        usage::print_cost(&before, &after, wall, peak);
    }
}
