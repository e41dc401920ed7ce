//! Prometheus metrics in the text exposition format (version 0.0.4), kept with atomics and
//! small mutex-guarded maps: no metrics crate.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sichss_cx_requests_total` | counter | `command` (UAR, SAR, …), `result` (Result-Code or Experimental-Result-Code) |
//! | `sichss_cx_request_duration_seconds` | histogram | `command` |
//! | `sichss_diameter_peers` | gauge (1 per peer) | `host`, `state` |
//! | `sichss_store_flushes_total` | counter | |
//! | `sichss_store_flushed_changes_total` | counter | |
//! | `sichss_hss_requests_total` | counter | `command` (RTR, PPR), `outcome` (the answer's result code, or `no_answer`) |
//!
//! Labels carry command names, result codes and Diameter hosts only: never an identity or
//! a secret.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::StoreStats;

/// Upper bounds of the latency histogram buckets, in seconds: 100 µs to 1 s.
pub const BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// One command's latency histogram.
#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above 1 s.
    counts: [u64; BUCKETS.len() + 1],
    /// Sum of the observations, seconds.
    sum: f64,
    /// Number of observations.
    count: u64,
}

/// What is counted per Cx request. Command names are the static abbreviations, so that
/// counting allocates nothing.
#[derive(Debug, Default)]
struct CxStats {
    /// (command, result) → count.
    counts: BTreeMap<(&'static str, u32), u64>,
    /// command → latency histogram.
    latency: BTreeMap<&'static str, Histogram>,
}

/// The metrics of one sichss process. Shared behind an `Arc` by the Diameter server (Cx
/// requests, peers) and the API (HSS-initiated requests, rendering).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Cx requests: counts and latencies, under one lock taken once per request.
    cx: Mutex<CxStats>,
    /// (host, state) of each peer, as last reported.
    peers: Mutex<Vec<(String, String)>>,
    /// (command, outcome) → count.
    hss: Mutex<BTreeMap<(String, String), u64>>,
    /// Store flushes, as last read from the store.
    flushes: AtomicU64,
    /// Changes covered by those flushes.
    flushed_changes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves plain counters behind: keep using them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one answered Cx request and its latency.
    pub fn record_request(&self, cmd: &'static str, result_code: u32, latency: Duration) {
        let secs = latency.as_secs_f64();
        let mut cx = lock(&self.cx);
        *cx.counts.entry((cmd, result_code)).or_default() += 1;
        let h = cx.latency.entry(cmd).or_default();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        h.counts[slot] += 1;
        h.sum += secs;
        h.count += 1;
    }

    /// Replaces the peer table: one (Origin-Host, state) per peer.
    pub fn set_peers(&self, peers: Vec<(String, String)>) {
        *lock(&self.peers) = peers;
    }

    /// Records the store's flush counters (read at scrape time).
    pub fn set_store_stats(&self, stats: StoreStats) {
        self.flushes.store(stats.flushes, Ordering::Relaxed);
        self.flushed_changes
            .store(stats.flushed_changes, Ordering::Relaxed);
    }

    /// Counts one HSS-initiated request (`RTR`, `PPR`) by outcome: the answer's result
    /// code, or `no_answer`.
    pub fn record_hss_request(&self, cmd: &str, outcome: &str) {
        *lock(&self.hss)
            .entry((cmd.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "sichss_cx_requests_total",
            "counter",
            "Cx requests answered, by command and result code.",
        );
        let cx = lock(&self.cx);
        for ((cmd, rc), n) in cx.counts.iter() {
            let _ = writeln!(
                out,
                "sichss_cx_requests_total{{command=\"{}\",result=\"{rc}\"}} {n}",
                escape(cmd)
            );
        }
        header(
            &mut out,
            "sichss_cx_request_duration_seconds",
            "histogram",
            "Time to answer a Cx request, by command.",
        );
        for (cmd, h) in cx.latency.iter() {
            let cmd = escape(cmd);
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "sichss_cx_request_duration_seconds_bucket{{command=\"{cmd}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "sichss_cx_request_duration_seconds_bucket{{command=\"{cmd}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "sichss_cx_request_duration_seconds_sum{{command=\"{cmd}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "sichss_cx_request_duration_seconds_count{{command=\"{cmd}\"}} {}",
                h.count
            );
        }
        drop(cx);
        header(
            &mut out,
            "sichss_diameter_peers",
            "gauge",
            "Diameter peers by Origin-Host and state (1 per peer).",
        );
        for (host, state) in lock(&self.peers).iter() {
            let _ = writeln!(
                out,
                "sichss_diameter_peers{{host=\"{}\",state=\"{}\"}} 1",
                escape(host),
                escape(state)
            );
        }
        header(
            &mut out,
            "sichss_store_flushes_total",
            "counter",
            "Durable flushes of the subscriber store (one covers many changes).",
        );
        let _ = writeln!(
            out,
            "sichss_store_flushes_total {}",
            self.flushes.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "sichss_store_flushed_changes_total",
            "counter",
            "Subscriber changes made durable by the store's flushes.",
        );
        let _ = writeln!(
            out,
            "sichss_store_flushed_changes_total {}",
            self.flushed_changes.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "sichss_hss_requests_total",
            "counter",
            "HSS-initiated requests (RTR, PPR) by command and outcome (result code, or no_answer).",
        );
        for ((cmd, outcome), n) in lock(&self.hss).iter() {
            let _ = writeln!(
                out,
                "sichss_hss_requests_total{{command=\"{}\",outcome=\"{}\"}} {n}",
                escape(cmd),
                escape(outcome)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_sum_and_count() {
        let m = Metrics::new();
        m.record_request("UAR", 2001, Duration::from_micros(50));
        m.record_request("UAR", 2001, Duration::from_millis(3));
        m.record_request("UAR", 5001, Duration::from_secs(2));
        let t = m.render();
        assert!(
            t.contains("sichss_cx_requests_total{command=\"UAR\",result=\"2001\"} 2"),
            "{t}"
        );
        assert!(t.contains("sichss_cx_requests_total{command=\"UAR\",result=\"5001\"} 1"));
        assert!(t.contains(
            "sichss_cx_request_duration_seconds_bucket{command=\"UAR\",le=\"0.0001\"} 1"
        ));
        assert!(
            t.contains("sichss_cx_request_duration_seconds_bucket{command=\"UAR\",le=\"0.005\"} 2")
        );
        assert!(t.contains("sichss_cx_request_duration_seconds_bucket{command=\"UAR\",le=\"1\"} 2"));
        assert!(
            t.contains("sichss_cx_request_duration_seconds_bucket{command=\"UAR\",le=\"+Inf\"} 3")
        );
        assert!(t.contains("sichss_cx_request_duration_seconds_count{command=\"UAR\"} 3"));
        assert!(t.contains("# TYPE sichss_cx_request_duration_seconds histogram"));
    }

    #[test]
    fn peers_store_and_hss_requests_are_rendered_and_escaped() {
        let m = Metrics::new();
        m.set_peers(vec![("scscf\"x".into(), "open".into())]);
        m.set_store_stats(StoreStats {
            flushes: 3,
            flushed_changes: 7,
        });
        m.record_hss_request("RTR", "2001");
        m.record_hss_request("PPR", "no_answer");
        let t = m.render();
        assert!(
            t.contains("sichss_diameter_peers{host=\"scscf\\\"x\",state=\"open\"} 1"),
            "{t}"
        );
        assert!(t.contains("sichss_store_flushes_total 3"));
        assert!(t.contains("sichss_store_flushed_changes_total 7"));
        assert!(t.contains("sichss_hss_requests_total{command=\"RTR\",outcome=\"2001\"} 1"));
        assert!(t.contains("sichss_hss_requests_total{command=\"PPR\",outcome=\"no_answer\"} 1"));
    }
}
