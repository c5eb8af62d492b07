//! A soak's periodic line — calls started, completed and failed, and the engine's RSS, open
//! fds and threads — and at the end the engine's flatness at a glance: before the first
//! call, at the first sample after the warm-up, at the last sample while calls were still
//! being started, the maximum, and at rest after the last call.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::launch::Progress;
use crate::usage::Snapshot;

pub struct Sampler {
    pid: Option<u32>,
    every: Duration,
    warmup: Duration,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Flatness>,
}

impl Sampler {
    /// Samples every `every` until `finish`; `None` when `every` is zero.
    pub fn start(
        pid: Option<u32>,
        every: Duration,
        warmup: Duration,
        calls: usize,
        progress: Arc<Progress>,
    ) -> Option<Sampler> {
        if every.is_zero() {
            return None;
        }
        let mut flatness = Flatness::new(warmup);
        flatness.before = pid.and_then(|pid| Snapshot::read(pid).ok());
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let begun = Instant::now();
            let mut tick = tokio::time::interval_at(begun + every, every);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break flatness,
                }
                let at = begun.elapsed();
                let (started, completed, failed) = progress.get();
                let live = started - completed - failed;
                let mut line = format!(
                    "[{:>6.0} s] calls: {started} started, {completed} completed, {failed} failed, {live} live",
                    at.as_secs_f64()
                );
                if let Some(pid) = pid {
                    match Snapshot::read(pid) {
                        Ok(s) => {
                            line += &format!(
                                " | engine: rss {} kB, {} fds, {} threads",
                                s.rss_kb, s.fds, s.threads
                            );
                            flatness.add(at, s, started < calls);
                        }
                        Err(e) => line += &format!(" | engine: {e:#}"),
                    }
                }
                println!("{line}");
            }
        });
        Some(Sampler {
            pid,
            every,
            warmup,
            stop,
            task,
        })
    }

    /// Stops sampling, lets the engine settle from the last call and prints its flatness.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let Ok(mut flatness) = self.task.await else {
            return;
        };
        let Some(pid) = self.pid else { return };
        // The last calls' ends (analysis, the store) are still being written.
        tokio::time::sleep(Duration::from_secs(3)).await;
        flatness.after = Snapshot::read(pid).ok();
        flatness.print(self.every, self.warmup);
    }
}

/// The samples a soak's flatness is judged on.
pub struct Flatness {
    warmup: Duration,
    before: Option<Snapshot>,
    /// The first sample at or after the warm-up.
    warm: Option<(Duration, Snapshot)>,
    /// The last sample while calls were still being started (the plateau).
    last_starting: Option<(Duration, Snapshot)>,
    latest: Option<(Duration, Snapshot)>,
    max: Option<Snapshot>,
    after: Option<Snapshot>,
}

impl Flatness {
    fn new(warmup: Duration) -> Flatness {
        Flatness {
            warmup,
            before: None,
            warm: None,
            last_starting: None,
            latest: None,
            max: None,
            after: None,
        }
    }

    fn add(&mut self, at: Duration, s: Snapshot, starting: bool) {
        if at >= self.warmup && self.warm.is_none() {
            self.warm = Some((at, s));
        }
        if starting {
            self.last_starting = Some((at, s));
        }
        self.latest = Some((at, s));
        self.max = Some(self.max.map_or(s, |m| m.max(s)));
    }

    /// The sample to compare with the warm one: the plateau's last, the last taken while calls
    /// were still being started (after that the live calls ramp down); a run too short to
    /// have one after the warm-up gets its last sample.
    fn last(&self) -> Option<(Duration, Snapshot)> {
        match (self.last_starting, self.warm) {
            (Some(last), Some((warm_at, _))) if last.0 >= warm_at => Some(last),
            _ => self.latest,
        }
    }

    /// The table: one row per measure, one column per moment, and the growth from the warm
    /// sample to the last.
    fn table(&self) -> Vec<String> {
        let secs = |d: Duration| format!("@{:.0}s", d.as_secs_f64());
        let cell = |s: Option<Snapshot>, f: fn(Snapshot) -> u64| {
            s.map_or("-".to_string(), |s| f(s).to_string())
        };
        let warm = self.warm.map(|(_, s)| s);
        let last = self.last().map(|(_, s)| s);
        let mut rows = vec![format!(
            "{:<9}{:>10}{:>12}{:>12}{:>10}{:>10}{:>10}",
            "",
            "before",
            format!("warm {}", self.warm.map_or("-".into(), |(at, _)| secs(at))),
            format!(
                "last {}",
                self.last().map_or("-".into(), |(at, _)| secs(at))
            ),
            "max",
            "after",
            "last-warm"
        )];
        type Measure = fn(Snapshot) -> u64;
        let measures: [(&str, Measure); 3] = [
            ("rss kB", |s| s.rss_kb),
            ("fds", |s| s.fds),
            ("threads", |s| s.threads),
        ];
        for (name, f) in measures {
            let growth = match (warm, last) {
                (Some(w), Some(l)) => format!("{:+}", f(l) as i64 - f(w) as i64),
                _ => "-".into(),
            };
            rows.push(format!(
                "{name:<9}{:>10}{:>12}{:>12}{:>10}{:>10}{:>10}",
                cell(self.before, f),
                cell(warm, f),
                cell(last, f),
                cell(self.max, f),
                cell(self.after, f),
                growth
            ));
        }
        rows
    }

    fn print(&self, every: Duration, warmup: Duration) {
        println!(
            "engine flatness (a sample every {} s; warm-up {} s; last = the last sample while \
             calls were still starting, or the run's last; after = at rest after the last call):",
            every.as_secs(),
            warmup.as_secs()
        );
        for row in self.table() {
            println!("  {row}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rss_kb: u64, fds: u64, threads: u64) -> Snapshot {
        Snapshot {
            rss_kb,
            fds,
            threads,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn warm_is_the_first_sample_after_warm_up_and_last_the_last_while_starting() {
        let mut f = Flatness::new(secs(30));
        f.before = Some(snap(50_000, 20, 9));
        f.add(secs(10), snap(60_000, 80, 12), true);
        f.add(secs(30), snap(61_000, 90, 12), true);
        f.add(secs(40), snap(70_000, 95, 13), true);
        f.add(secs(50), snap(62_000, 91, 12), true);
        // Every call started: the ramp-down is not the plateau.
        f.add(secs(60), snap(55_000, 40, 12), false);
        f.after = Some(snap(54_000, 21, 9));
        assert_eq!(f.warm, Some((secs(30), snap(61_000, 90, 12))));
        assert_eq!(f.last(), Some((secs(50), snap(62_000, 91, 12))));
        assert_eq!(f.max, Some(snap(70_000, 95, 13)));
        let table = f.table();
        assert_eq!(table.len(), 4);
        assert!(table[0].contains("warm @30s") && table[0].contains("last @50s"));
        let rss: Vec<&str> = table[1].split_whitespace().collect();
        assert_eq!(
            rss,
            [
                "rss", "kB", "50000", "61000", "62000", "70000", "54000", "+1000"
            ]
        );
        let fds: Vec<&str> = table[2].split_whitespace().collect();
        assert_eq!(fds, ["fds", "20", "90", "91", "95", "21", "+1"]);
    }

    #[test]
    fn a_short_run_falls_back_to_what_it_has() {
        let mut f = Flatness::new(secs(30));
        f.add(secs(10), snap(60_000, 80, 12), false);
        f.add(secs(20), snap(58_000, 70, 12), false);
        assert_eq!(f.warm, None);
        assert_eq!(f.last(), Some((secs(20), snap(58_000, 70, 12))));
        let table = f.table();
        let threads: Vec<&str> = table[3].split_whitespace().collect();
        assert_eq!(threads, ["threads", "-", "-", "12", "12", "-", "-"]);
        // All calls started before the warm-up ended: the last is the run's last.
        let mut f = Flatness::new(secs(12));
        f.add(secs(4), snap(50_000, 50, 16), true);
        f.add(secs(12), snap(61_000, 56, 12), false);
        f.add(secs(16), snap(60_000, 32, 12), false);
        assert_eq!(f.last(), Some((secs(16), snap(60_000, 32, 12))));
    }
}
