//! What a load run cost the engine: its CPU time and memory, read from /proc (Linux), and for
//! soaks a snapshot of what must stay flat (memory, open files, threads). Shared by the load
//! clients (`twilio-load`, `sip-load`, `webrtc-load`).

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
    let kb = |key: &str| status_field(&status, key).unwrap_or(0);
    Ok(Usage {
        cpu_seconds,
        rss_kb: kb("VmRSS"),
        peak_kb: kb("VmHWM"),
    })
}

/// The number of a `/proc/PID/status` line (`VmRSS:   51234 kB`, `Threads:  9`).
pub fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What a soak watches stay flat in the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "webrtc-load reports cost only, it does not sample"
)]
pub struct Snapshot {
    pub rss_kb: u64,
    /// Open file descriptors: entries of /proc/PID/fd.
    pub fds: u64,
    pub threads: u64,
}

#[allow(
    dead_code,
    reason = "webrtc-load reports cost only, it does not sample"
)]
impl Snapshot {
    pub fn read(pid: u32) -> anyhow::Result<Snapshot> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc status")?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .context("listing /proc fd")?
            .count() as u64;
        Ok(Snapshot {
            rss_kb: status_field(&status, "VmRSS").unwrap_or(0),
            fds,
            threads: status_field(&status, "Threads").unwrap_or(0),
        })
    }

    /// Each field's larger value.
    pub fn max(self, other: Snapshot) -> Snapshot {
        Snapshot {
            rss_kb: self.rss_kb.max(other.rss_kb),
            fds: self.fds.max(other.fds),
            threads: self.threads.max(other.threads),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_their_exact_name() {
        let status = "Name:\tboltcall\nVmHWM:\t  61234 kB\nVmRSS:\t   51234 kB\n\
                      Threads:\t9\nSigQ:\t0/31257\n";
        assert_eq!(status_field(status, "VmRSS"), Some(51_234));
        assert_eq!(status_field(status, "VmHWM"), Some(61_234));
        assert_eq!(status_field(status, "Threads"), Some(9));
        assert_eq!(status_field(status, "Vm"), None);
        assert_eq!(status_field(status, "Name"), None);
        assert_eq!(status_field(status, "VmSwap"), None);
    }

    #[test]
    fn a_snapshot_counts_our_own_open_files() {
        let pid = std::process::id();
        let before = Snapshot::read(pid).unwrap();
        assert!(before.rss_kb > 0 && before.threads >= 1 && before.fds >= 3);
        let files: Vec<_> = (0..64)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        // Other tests' threads open and close a few files of their own meanwhile.
        assert!(Snapshot::read(pid).unwrap().fds >= before.fds + 48);
        drop(files);
        let big = Snapshot {
            rss_kb: 1,
            fds: 9,
            threads: 2,
        };
        assert_eq!(
            before.max(big),
            Snapshot {
                rss_kb: before.rss_kb,
                fds: before.fds.max(9),
                threads: before.threads.max(2),
            }
        );
    }
}
