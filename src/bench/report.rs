//! Counting and reporting: per-lane latency histograms (HdrHistogram, microseconds, 3
//! significant digits) merged at the end, shared atomic counters for the progress line,
//! and the [`Report`] with its stable JSON form.
//!
//! # JSON (`--json`)
//!
//! One object; every latency is in microseconds. Fields are only ever added, never
//! renamed, and `schema` changes when a meaning changes.
//!
//! ```text
//! {
//!   "schema": "sichss-bench/1",
//!   "mode": "load" | "null-server",
//!   "target": "127.0.0.1:3868", "scenario": "mixed",
//!   "connections": 16, "window": 32, "subscribers": 10000,
//!   "duration_s": 10.0,                 // asked for
//!   "elapsed_s": 10.003,                // measured, first request to last answer
//!   "rate": null | 25000,               // --rate, the pace asked for
//!   "requests": 512345, "requests_per_s": 51220.1,
//!   "registrations": 12000, "registrations_per_s": 1199.6,   // whole UAR→MAR→SAR flows
//!   "commands": { "UAR": {"count", "per_s", "latency_us": {…}}, "MAR": …, "SAR": …, "LIR": … },
//!   "latency_us": {"p50", "p90", "p99", "p999", "max", "mean"},   // every command
//!   "errors_total": 0,
//!   "errors": [ {"command": "SAR", "result": "exp 5001", "count": 3} ],
//!   "setup": {"requests", "errors_total", "errors", "elapsed_s"} | null,
//!   "provisioning": {"subscribers", "batches", "elapsed_s", "per_s"} | null,
//!   "server": {"pid", "cpu_s", "cpu_us_per_request", "rss_peak_kib", "rss_kib"} | null,
//!   "client": {"cpu_s", "threads"}      // this process (load generator), its runtime's threads
//!   "baseline": {"target", "requests", "requests_per_s", "errors_total", "client_cpu_s",
//!                "ratio"} | null          // --baseline: the null server, in turns with the HSS
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The Cx commands the bench sends, in report order.
pub const COMMANDS: [&str; 4] = ["UAR", "MAR", "SAR", "LIR"];

/// Index of a command in [`COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// UAR.
    Uar = 0,
    /// MAR.
    Mar = 1,
    /// SAR.
    Sar = 2,
    /// LIR.
    Lir = 3,
}

impl Cmd {
    /// Its abbreviation.
    pub fn name(self) -> &'static str {
        COMMANDS[self as usize]
    }
}

/// Highest latency a histogram holds (60 s); longer ones are counted as 60 s.
const MAX_LATENCY_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Statistics that many lanes record into: a few shards, each a [`LaneStats`] behind its
/// own lock. A set of histograms is 512 KiB (4 commands × 128 KiB at 3 significant digits
/// up to 60 s); one set per lane took the load generator to 400 MiB at 16 × 32 and 11 GiB
/// at 64 × 256, and every record was a cache miss in memory that size.
#[derive(Debug)]
pub struct SharedStats {
    shards: Box<[Mutex<LaneStats>]>,
}

impl SharedStats {
    /// Statistics in `shards` shards (at least 1).
    pub fn new(shards: usize) -> Self {
        SharedStats {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(LaneStats::default()))
                .collect(),
        }
    }

    /// Runs `f` on the shard of lane `lane`.
    pub fn with<R>(&self, lane: usize, f: impl FnOnce(&mut LaneStats) -> R) -> R {
        let shard = &self.shards[lane % self.shards.len()];
        // Counters and histograms, consistent after any panic; recover from poisoning.
        f(&mut shard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Everything recorded so far, merged; the shards start again from nothing.
    pub fn take(&self) -> LaneStats {
        let mut all = LaneStats::default();
        for shard in self.shards.iter() {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.merge(&s);
            *s = LaneStats::default();
        }
        all
    }
}

/// What one lane measured: histograms per command, errors by (command, result).
#[derive(Debug, Clone)]
pub struct LaneStats {
    /// Latency per command.
    pub latency: [Histogram<u64>; 4],
    /// Wrong answers and failures, by command and what came instead.
    pub errors: BTreeMap<(&'static str, String), u64>,
    /// Completed registration flows.
    pub registrations: u64,
}

impl Default for LaneStats {
    fn default() -> Self {
        LaneStats {
            latency: [histogram(), histogram(), histogram(), histogram()],
            errors: BTreeMap::new(),
            registrations: 0,
        }
    }
}

impl LaneStats {
    /// Records one answered request.
    pub fn record(&mut self, cmd: Cmd, latency: Duration) {
        let us = (latency.as_micros() as u64).max(1);
        self.latency[cmd as usize].saturating_record(us);
    }

    /// Records a wrong answer or a failure.
    pub fn error(&mut self, cmd: Cmd, what: String) {
        *self.errors.entry((cmd.name(), what)).or_default() += 1;
    }

    /// Adds `other` into this.
    pub fn merge(&mut self, other: &LaneStats) {
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            // Same bounds on both sides: adding cannot fail.
            let _ = a.add(b);
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.registrations += other.registrations;
    }

    /// Requests answered (with any result).
    pub fn requests(&self) -> u64 {
        self.latency.iter().map(Histogram::len).sum()
    }

    /// Errors of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The errors as report rows.
    pub fn error_rows(&self) -> Vec<ErrorCount> {
        self.errors
            .iter()
            .map(|((c, r), n)| ErrorCount {
                command: (*c).to_owned(),
                result: r.clone(),
                count: *n,
            })
            .collect()
    }
}

/// Counters every lane bumps, read by the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests sent and answered (or failed), per command.
    pub done: [AtomicU64; 4],
    /// Errors so far.
    pub errors: AtomicU64,
    /// Completed registration flows.
    pub registrations: AtomicU64,
}

impl Live {
    /// Counts one finished request.
    pub fn count(&self, cmd: Cmd) {
        self.done[cmd as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot: per-command counts, errors, registrations.
    pub fn snapshot(&self) -> ([u64; 4], u64, u64) {
        let d = std::array::from_fn(|i| self.done[i].load(Ordering::Relaxed));
        (
            d,
            self.errors.load(Ordering::Relaxed),
            self.registrations.load(Ordering::Relaxed),
        )
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of `h` (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// One command's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommandStats {
    /// Requests answered.
    pub count: u64,
    /// Per second of the run.
    pub per_s: f64,
    /// Latency, request sent to answer received.
    pub latency_us: Latency,
}

/// Wrong answers or failures of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// UAR, MAR, SAR or LIR.
    pub command: String,
    /// What came instead of the expected answer: `rc N`, `exp N`, `rc 2001 without X`,
    /// `timeout`, `closed`, or another client error.
    pub result: String,
    /// How many.
    pub count: u64,
}

/// The untimed phase that registers every service before `reregister` and `mixed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Setup {
    /// Requests sent.
    pub requests: u64,
    /// Wrong answers and failures.
    pub errors_total: u64,
    /// By command and result.
    pub errors: Vec<ErrorCount>,
    /// How long it took.
    pub elapsed_s: f64,
}

/// The bulk import through the provisioning API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Provisioning {
    /// Subscribers imported.
    pub subscribers: u64,
    /// POST /import requests made.
    pub batches: u64,
    /// Wall time of the import.
    pub elapsed_s: f64,
    /// Subscribers per second.
    pub per_s: f64,
}

/// The server process, from /proc (Linux), over the timed run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerUsage {
    /// Its process id.
    pub pid: u32,
    /// CPU seconds (user + system) spent during the run.
    pub cpu_s: f64,
    /// CPU microseconds per request of the run.
    pub cpu_us_per_request: f64,
    /// Peak resident set size (VmHWM) after the run, KiB.
    pub rss_peak_kib: u64,
    /// Resident set size (VmRSS) after the run, KiB.
    pub rss_kib: u64,
}

/// The null server of `--baseline`, over its turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Baseline {
    /// Its address as given.
    pub target: String,
    /// Requests it answered in its turns.
    pub requests: u64,
    /// Requests per second over its turns.
    pub requests_per_s: f64,
    /// Wrong answers and failures.
    pub errors_total: u64,
    /// CPU seconds of the load generator during its turns.
    pub client_cpu_s: f64,
    /// The HSS's requests per second over the null server's, from the same minutes.
    pub ratio: f64,
}

/// This process.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientUsage {
    /// CPU seconds (user + system) of the load generator during the run.
    pub cpu_s: f64,
    /// Threads of its runtime (`--threads`).
    pub threads: usize,
}

/// Everything a run measured. See the module documentation for the JSON form.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `sichss-bench/1`.
    pub schema: &'static str,
    /// `load`, or `null-server` for the baseline server's own account.
    pub mode: &'static str,
    /// The Diameter address driven (or served).
    pub target: String,
    /// `register`, `reregister` or `mixed`.
    pub scenario: String,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// Subscribers of the population (two services each).
    pub subscribers: u64,
    /// Duration asked for, seconds.
    pub duration_s: f64,
    /// Measured duration, seconds.
    pub elapsed_s: f64,
    /// The pace asked for with `--rate` (requests per second), if any.
    pub rate: Option<u64>,
    /// Requests answered in the run.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Completed registration flows (UAR → MAR → SAR REGISTRATION, all as expected).
    pub registrations: u64,
    /// Registrations per second.
    pub registrations_per_s: f64,
    /// Per command (UAR, MAR, SAR, LIR).
    pub commands: BTreeMap<String, CommandStats>,
    /// Latency over every command.
    pub latency_us: Latency,
    /// Wrong answers and failures.
    pub errors_total: u64,
    /// By command and result.
    pub errors: Vec<ErrorCount>,
    /// The untimed registration phase, when there was one.
    pub setup: Option<Setup>,
    /// The bulk import, when there was one.
    pub provisioning: Option<Provisioning>,
    /// The server process, given `--server-pid`.
    pub server: Option<ServerUsage>,
    /// This process.
    pub client: ClientUsage,
    /// The null server driven in turns with the HSS (`--baseline`).
    pub baseline: Option<Baseline>,
}

/// The schema name of [`Report`].
pub const SCHEMA: &str = "sichss-bench/1";

/// `n` per second over `secs`, to a tenth (0 over no time).
pub(super) fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        ((n as f64 / secs) * 10.0).round() / 10.0
    } else {
        0.0
    }
}

impl Report {
    /// Fills the figures of a run from its merged statistics.
    pub fn fill(&mut self, stats: &LaneStats, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        self.elapsed_s = (secs * 1000.0).round() / 1000.0;
        let mut all = histogram();
        for (i, name) in COMMANDS.iter().enumerate() {
            let h = &stats.latency[i];
            let _ = all.add(h);
            self.commands.insert(
                (*name).to_owned(),
                CommandStats {
                    count: h.len(),
                    per_s: per_s(h.len(), secs),
                    latency_us: Latency::of(h),
                },
            );
        }
        self.requests = all.len();
        self.requests_per_s = per_s(self.requests, secs);
        self.registrations = stats.registrations;
        self.registrations_per_s = per_s(stats.registrations, secs);
        self.latency_us = Latency::of(&all);
        self.errors_total = stats.errors_total();
        self.errors = stats.error_rows();
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The report as text for a person.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sichss bench: {} {} against {}, {} connections x {} in flight, {} subscribers",
            self.mode, self.scenario, self.target, self.connections, self.window, self.subscribers
        );
        if let Some(p) = &self.provisioning {
            let _ = writeln!(
                s,
                "provisioning: {} subscribers in {:.2} s ({:.0}/s, {} batches)",
                p.subscribers, p.elapsed_s, p.per_s, p.batches
            );
        }
        if let Some(st) = &self.setup {
            let _ = writeln!(
                s,
                "setup: {} requests in {:.2} s, {} errors",
                st.requests, st.elapsed_s, st.errors_total
            );
        }
        let _ = writeln!(
            s,
            "run: {:.2} s, {} requests, {:.0} requests/s, {} registrations ({:.1}/s), {} errors",
            self.elapsed_s,
            self.requests,
            self.requests_per_s,
            self.registrations,
            self.registrations_per_s,
            self.errors_total
        );
        let _ = writeln!(
            s,
            "{:<8}{:>10}{:>12}{:>10}{:>10}{:>10}{:>10}{:>10}   (latency in µs)",
            "command", "count", "per s", "p50", "p90", "p99", "p99.9", "max"
        );
        let row = |s: &mut String, name: &str, count: u64, ps: f64, l: &Latency| {
            let _ = writeln!(
                s,
                "{:<8}{:>10}{:>12.0}{:>10}{:>10}{:>10}{:>10}{:>10}",
                name, count, ps, l.p50, l.p90, l.p99, l.p999, l.max
            );
        };
        for (name, c) in &self.commands {
            row(&mut s, name, c.count, c.per_s, &c.latency_us);
        }
        row(
            &mut s,
            "all",
            self.requests,
            self.requests_per_s,
            &self.latency_us,
        );
        for e in &self.errors {
            let _ = writeln!(s, "error: {} {} x{}", e.command, e.result, e.count);
        }
        if let Some(v) = &self.server {
            let _ = writeln!(
                s,
                "server pid {}: {:.2} CPU s ({:.1} µs/request), peak RSS {} KiB, RSS {} KiB",
                v.pid, v.cpu_s, v.cpu_us_per_request, v.rss_peak_kib, v.rss_kib
            );
        }
        let _ = writeln!(
            s,
            "load generator: {:.2} CPU s on {} threads",
            self.client.cpu_s, self.client.threads
        );
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                s,
                "null server {} in turns with it: {} requests, {:.1}/s, {} errors; HSS/null {:.3}",
                b.target, b.requests, b.requests_per_s, b.errors_total, b.ratio
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_and_counts_add_up() {
        let mut a = LaneStats::default();
        let mut b = LaneStats::default();
        for i in 1..=1000u64 {
            a.record(Cmd::Sar, Duration::from_micros(i));
            b.record(Cmd::Lir, Duration::from_micros(i * 3));
        }
        b.error(Cmd::Sar, "exp 5001".into());
        b.error(Cmd::Sar, "exp 5001".into());
        a.merge(&b);
        let mut r = Report::default();
        r.fill(&a, Duration::from_secs(2));
        assert_eq!(r.requests, 2000);
        assert_eq!(r.requests_per_s, 1000.0);
        assert_eq!(r.commands["SAR"].count, 1000);
        assert_eq!(r.commands["UAR"].count, 0);
        let l = r.latency_us;
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
        assert_eq!(
            r.errors,
            vec![ErrorCount {
                command: "SAR".into(),
                result: "exp 5001".into(),
                count: 2
            }]
        );
        assert_eq!(r.errors_total, 2);
    }

    #[test]
    fn shared_statistics_keep_every_lanes_records_once_and_start_again_when_taken() {
        let shared = SharedStats::new(3);
        for lane in 0..10 {
            shared.with(lane, |s| {
                s.record(Cmd::Sar, Duration::from_micros(100 + lane as u64));
                s.record(Cmd::Lir, Duration::from_micros(50));
                s.error(Cmd::Mar, "exp 5001".into());
                s.registrations += 1;
            });
        }
        let all = shared.take();
        assert_eq!(all.requests(), 20);
        assert_eq!(all.latency[Cmd::Sar as usize].len(), 10);
        assert_eq!(all.latency[Cmd::Sar as usize].max(), 109);
        assert_eq!(all.errors_total(), 10);
        assert_eq!(all.registrations, 10);
        let again = shared.take();
        assert_eq!((again.requests(), again.errors_total()), (0, 0));
        assert_eq!(again.registrations, 0);
        // A zero shard count still gives one shard.
        SharedStats::new(0).with(7, |s| s.registrations += 1);
    }

    #[test]
    fn json_has_the_documented_field_names() {
        let mut r = Report {
            schema: SCHEMA,
            mode: "load",
            ..Report::default()
        };
        r.fill(&LaneStats::default(), Duration::from_secs(1));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "schema",
            "mode",
            "target",
            "scenario",
            "connections",
            "window",
            "subscribers",
            "duration_s",
            "elapsed_s",
            "rate",
            "requests",
            "requests_per_s",
            "registrations",
            "registrations_per_s",
            "commands",
            "latency_us",
            "errors_total",
            "errors",
            "setup",
            "provisioning",
            "server",
            "client",
            "baseline",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        for k in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(
                v["commands"]["MAR"]["latency_us"].get(k).is_some(),
                "missing {k}"
            );
        }
        assert_eq!(v["schema"], "sichss-bench/1");
    }
}
