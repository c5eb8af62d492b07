//! SIP load benchmarks (not tests: `#[ignore]`, run them on purpose, with `--release`):
//!
//! - `sip_load`: sipp places `SIP_LOAD_CALLS` calls at `SIP_LOAD_RATE` calls/s, each held
//!   `SIP_LOAD_HOLD_MS`, against the SIP service with the test handler, which paces a 16 kHz
//!   greeting out and does the session's per-frame media work (VAD on the caller, a stereo
//!   recording). sipp does the signalling; the media peer of every call is this benchmark's
//!   own RTP endpoint (the SDP points at it), which streams μ-law back every 20 ms once the
//!   engine's stream arrives and measures the gaps between the engine's packets. Prints
//!   sipp's counts, the gap distribution, peak concurrency, memory and descriptors.
//! - `invite_latency`: INVITE → 200 OK of `SIP_LATENCY_CALLS` calls placed one at a time.
//!
//! `cargo test --release --test sip_load -- --ignored --nocapture --test-threads 1`

#[path = "../src/bin/load/histogram.rs"]
#[allow(
    dead_code,
    reason = "the load tools' histogram; this benchmark uses its gap bins only"
)]
mod histogram;
#[path = "sip/support.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use histogram::Histogram;
use support::*;
use tokio::net::UdpSocket;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The far end of every call's media: one socket per SDP port. Each socket latches to the
/// engine's stream, records the gaps between its packets, and is sent 20 ms of μ-law every
/// 20 ms while that stream lives. Runs on its own thread and runtime.
struct MediaPeer {
    ports: Vec<u16>,
    gaps: Arc<Mutex<Histogram>>,
    streams: Arc<AtomicU64>,
}

/// A stream silent this long has ended (its call hung up).
const STREAM_END: Duration = Duration::from_millis(300);

impl MediaPeer {
    fn start(count: usize, first_port: u16) -> MediaPeer {
        let gaps = Arc::new(Mutex::new(Histogram::gaps()));
        let streams = Arc::new(AtomicU64::new(0));
        let (ports_tx, ports_rx) = std::sync::mpsc::channel();
        let (g, s) = (gaps.clone(), streams.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(Self::run(count, first_port, g, s, ports_tx));
        });
        MediaPeer {
            ports: ports_rx.recv().expect("media peer bound its ports"),
            gaps,
            streams,
        }
    }

    async fn run(
        count: usize,
        first_port: u16,
        gaps: Arc<Mutex<Histogram>>,
        streams: Arc<AtomicU64>,
        ports_tx: std::sync::mpsc::Sender<Vec<u16>>,
    ) {
        let epoch = Instant::now();
        let mut sockets = Vec::new();
        let mut port = first_port;
        while sockets.len() < count {
            if let Ok(socket) = UdpSocket::bind(("127.0.0.1", port)).await {
                sockets.push((port, Arc::new(socket)));
            }
            port += 2;
        }
        let _ = ports_tx.send(sockets.iter().map(|(p, _)| *p).collect());
        // Per socket: the engine's RTP port (0: no stream) and when it last sent, in µs.
        let targets: Arc<Vec<AtomicU16>> =
            Arc::new((0..count).map(|_| AtomicU16::new(0)).collect());
        let last_rx: Arc<Vec<AtomicU64>> =
            Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
        for (i, (_, socket)) in sockets.iter().enumerate() {
            let (socket, gaps, streams) = (socket.clone(), gaps.clone(), streams.clone());
            let (targets, last_rx) = (targets.clone(), last_rx.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut current: Option<(SocketAddr, Instant)> = None;
                while let Ok((_, from)) = socket.recv_from(&mut buf).await {
                    let now = Instant::now();
                    match current {
                        Some((source, last)) if source == from => {
                            gaps.lock().unwrap().add_ms(now - last);
                        }
                        _ => {
                            streams.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Also after a stall that made the sender give the stream up.
                    targets[i].store(from.port(), Ordering::Relaxed);
                    current = Some((from, now));
                    last_rx[i].store((now - epoch).as_micros() as u64, Ordering::Relaxed);
                }
            });
        }
        // One sender for all streams: a μ-law silence packet to every live stream per tick.
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        let mut sequence = vec![0u16; count];
        let mut packet = [0xFFu8; 12 + 160];
        packet[0] = 0x80;
        loop {
            ticker.tick().await;
            let now = (Instant::now() - epoch).as_micros() as u64;
            for (i, (_, socket)) in sockets.iter().enumerate() {
                let port = targets[i].load(Ordering::Relaxed);
                if port == 0 {
                    continue;
                }
                if now.saturating_sub(last_rx[i].load(Ordering::Relaxed))
                    > STREAM_END.as_micros() as u64
                {
                    targets[i].store(0, Ordering::Relaxed);
                    continue;
                }
                sequence[i] = sequence[i].wrapping_add(1);
                packet[2..4].copy_from_slice(&sequence[i].to_be_bytes());
                let timestamp = u32::from(sequence[i]) * 160;
                packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
                packet[8..12].copy_from_slice(&(i as u32 + 1).to_be_bytes());
                let _ = socket.try_send_to(&packet, ([127, 0, 0, 1], port).into());
            }
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn sip_load() {
    let calls = env("SIP_LOAD_CALLS", 500);
    let rate = env("SIP_LOAD_RATE", 50);
    let hold_ms = env("SIP_LOAD_HOLD_MS", 3000);
    // Enough media ports that one is reused only long after its previous call ended.
    let peer_ports = env("SIP_LOAD_PORTS", 1500) as usize;
    let dir = workdir();
    let recordings = dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let mut settings = settings();
    settings.rtp_ports = (30000, 39999);
    let (service, handler, mut seen) = start_recording(settings, Some(recordings)).await;
    let peer = MediaPeer::start(peer_ports, 42000);
    let ports: String = peer.ports.iter().map(|p| format!("{p};\n")).collect();
    let injection = dir.path().join("ports.csv");
    std::fs::write(&injection, format!("SEQUENTIAL\n{ports}")).unwrap();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, fds_before) = (rss_kib(), open_fds());
    let peak = Arc::new(Mutex::new((0usize, 0u64)));
    // Every 30 s: (seconds, calls, RSS KiB, fds), to see whether a long run stays flat.
    let trace = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (peak, trace, active) = (peak.clone(), trace.clone(), handler.active.clone());
        tokio::spawn(async move {
            for second in 1u64.. {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (now_active, rss) = (active.load(Ordering::Relaxed), rss_kib());
                if second % 30 == 0 {
                    trace
                        .lock()
                        .unwrap()
                        .push((second, now_active, rss, open_fds()));
                }
                let mut peak = peak.lock().unwrap();
                if now_active > peak.0 {
                    *peak = (now_active, rss);
                }
            }
        })
    };
    // Ended calls are counted as they come: kept until the end, 100,000 reports would read
    // as memory the engine holds.
    let ended = Arc::new(AtomicU64::new(0));
    let counter = {
        let ended = ended.clone();
        tokio::spawn(async move {
            while seen.recv().await.is_some() {
                ended.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let stats = dir.path().join("stats.csv");
    let started = Instant::now();
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_load.xml"),
        service.local_addr(),
        "+15550100",
        &[
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            &(peer_ports - 100).to_string(),
            "-d",
            &hold_ms.to_string(),
            "-inf",
            injection.to_str().unwrap(),
            "-trace_stat",
            "-stf",
            stats.to_str().unwrap(),
            "-fd",
            "1",
            // The whole run, with room to spare (the helper's default is 30 s).
            "-timeout",
            &format!("{}s", calls / rate.max(1) + hold_ms / 1000 + 120),
        ],
    )
    .await;
    let elapsed = started.elapsed();
    // Let the last calls' tasks and sockets go before counting what is left (calls sipp
    // gave up on end by RTP timeout once the media peer stops).
    let drained = Instant::now();
    while handler.active.load(Ordering::Relaxed) > 0 && drained.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampler.abort();
    counter.abort();
    let (rss_after, fds_after) = (rss_kib(), open_fds());

    let csv = std::fs::read_to_string(&stats).unwrap_or_default();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or_default().split(';').collect();
    for key in [
        "SuccessfulCall(C)",
        "FailedCall(C)",
        "ResponseTime1(C)",
        "ResponseTime1StDev(C)",
    ] {
        if let Some(i) = header.iter().position(|h| *h == key) {
            println!("{key} = {}", last.get(i).unwrap_or(&"?"));
        }
    }
    let ended = ended.load(Ordering::Relaxed);
    println!(
        "{calls} calls at {rate}/s held {hold_ms} ms: sipp ok {ok}, {:.1} s, {:.1} calls/s; calls seen by the handler {ended}, media streams {}",
        elapsed.as_secs_f64(),
        f64::from(calls) / elapsed.as_secs_f64(),
        peer.streams.load(Ordering::Relaxed)
    );
    {
        let gaps = peer.gaps.lock().unwrap();
        println!(
            "engine RTP gaps: {} gaps, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms, over 25 ms {}, over 40 ms {}",
            gaps.count(),
            gaps.quantile(0.5),
            gaps.quantile(0.99),
            gaps.quantile(0.999),
            gaps.max(),
            gaps.count_from(25.0),
            gaps.count_from(40.0)
        );
    }
    println!(
        "(s, calls, RSS KiB, fds) every 30 s: {:?}",
        trace.lock().unwrap()
    );
    let (peak_calls, peak_rss) = *peak.lock().unwrap();
    println!(
        "peak {peak_calls} concurrent calls; RSS {rss_before} KiB before, {peak_rss} KiB at peak ({:.0} KiB per call), {rss_after} KiB after; fds {fds_before} before, {fds_after} after",
        peak_rss.saturating_sub(rss_before) as f64 / peak_calls.max(1) as f64
    );
    assert!(ok, "{log}");
}

/// One INVITE → 200 OK → ACK → BYE → 200 exchange over a plain UDP socket; returns the time
/// from sending the INVITE to receiving its 200.
async fn timed_call(socket: &UdpSocket, engine: SocketAddr, n: u32, media_port: u16) -> Duration {
    let local = socket.local_addr().unwrap();
    let call_id = format!("latency-{n}-{:x}", rand::random::<u64>());
    let uri = format!("sip:+15550100@{engine}");
    let head = |method: &str, cseq: u32, to: &str| {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{n}{method}{cseq}\r\n\
             From: <sip:+15550001@{local}>;tag=t{n}\r\n{to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:latency@{local}>\r\nMax-Forwards: 70\r\n"
        )
    };
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE", 1, &format!("To: <{uri}>")),
        sdp.len()
    );
    let mut buf = vec![0u8; 65536];
    let sent = Instant::now();
    socket.send_to(invite.as_bytes(), engine).await.unwrap();
    let (latency, to) = loop {
        let (len, _) = socket.recv_from(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        if text.starts_with("SIP/2.0 200") && text.contains(&call_id) {
            let to = text
                .lines()
                .find(|l| l.starts_with("To:"))
                .unwrap()
                .to_string();
            break (sent.elapsed(), to);
        }
    };
    let ack = format!("{}Content-Length: 0\r\n\r\n", head("ACK", 1, &to));
    socket.send_to(ack.as_bytes(), engine).await.unwrap();
    let bye = format!("{}Content-Length: 0\r\n\r\n", head("BYE", 2, &to));
    socket.send_to(bye.as_bytes(), engine).await.unwrap();
    loop {
        let (len, _) = socket.recv_from(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..len]);
        if text.starts_with("SIP/2.0 200") && text.contains("CSeq: 2 BYE") {
            break;
        }
    }
    latency
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn invite_latency() {
    let calls = env("SIP_LATENCY_CALLS", 500);
    let mut settings = settings();
    settings.rtp_ports = (30000, 39999);
    let (service, _, _seen) = start(settings).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media_port = free_port();
    let mut latencies = Vec::new();
    for n in 0..calls {
        latencies.push(timed_call(&socket, service.local_addr(), n, media_port).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "INVITE → 200 over {calls} calls one at a time: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
