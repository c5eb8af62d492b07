//! What a load run cost the engine: its CPU time and memory, read from /proc (Linux). Shared
//! by the load clients (`twilio-load`, `webrtc-load`).

use anyhow::Context;

pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_kb: u64,
    pub peak_kb: u64,
}

/// CPU seconds (user + system) and memory of a process, from /proc.
pub fn process_usage(pid: u32) -> anyhow::Result<Usage> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc stat")?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    let cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        cpu_seconds,
        rss_kb: kb("VmRSS:"),
        peak_kb: kb("VmHWM:"),
    })
}

/// Prints the engine's CPU and memory over a run of `calls` calls lasting `wall`.
pub fn print_cost(before: &Usage, after: &Usage, wall: std::time::Duration, calls: usize) {
    let cpu = (after.cpu_seconds - before.cpu_seconds).max(0.0);
    let cores = cpu / wall.as_secs_f64();
    println!(
        "engine cpu: {:.1} s over {:.1} s = {:.2} cores; per call {:.1} % of a core",
        cpu,
        wall.as_secs_f64(),
        cores,
        100.0 * cores / calls.max(1) as f64
    );
    println!(
        "engine rss: {:.1} MB before, {:.1} MB peak (VmHWM), {:.2} MB per call",
        before.rss_kb as f64 / 1024.0,
        after.peak_kb as f64 / 1024.0,
        (after.peak_kb.saturating_sub(before.rss_kb)) as f64 / 1024.0 / calls.max(1) as f64
    );
}
