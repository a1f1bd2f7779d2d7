//! What the simulator saw: one entry per request that reached it, readable by tests.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::limit::max_in_any_window;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Arrival, as an offset from the simulator's start.
    pub at: Duration,
    /// When the answer left (after the simulated latency), on the same clock: what the caller
    /// can know from it, it knows from then on.
    pub answered: Duration,
    /// Which configured key (index), or `None` for a request with a wrong or missing key.
    pub key: Option<usize>,
    /// Requests the simulator made up to play another tool sharing the key.
    pub foreign: bool,
    pub method: String,
    /// The route, with ids replaced: `GET /campaigns/{id}`.
    pub endpoint: String,
    /// Path and query as sent, to find repeated reads.
    pub target: String,
    /// Status answered; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// In the anchored mode, the start of the key's window this request fell in.
    pub window: Option<Duration>,
    /// `X-RateLimit-Remaining` as answered.
    pub remaining: Option<u32>,
}

/// A snapshot of the log with the figures tests and benchmarks ask for.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    pub entries: Vec<Entry>,
}

impl RequestLog {
    /// lemdash's own requests (not the simulated foreign traffic).
    pub fn own(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.foreign)
    }

    pub fn total(&self) -> usize {
        self.own().count()
    }

    pub fn calls_by_endpoint(&self) -> BTreeMap<String, usize> {
        let mut map = BTreeMap::new();
        for e in self.own() {
            *map.entry(e.endpoint.clone()).or_default() += 1;
        }
        map
    }

    pub fn rate_limited(&self) -> usize {
        self.own().filter(|e| e.status == 429).count()
    }

    /// How many distinct server windows told lemdash the key's budget was spent (a 429 or
    /// `Remaining: 0` on one of its requests): the episodes in which it should pause.
    pub fn exhaustion_episodes(&self) -> usize {
        self.own()
            .filter(|e| e.status == 429 || e.remaining == Some(0))
            .map(|e| e.window)
            .collect::<HashSet<_>>()
            .len()
    }

    /// Successful GETs of a target that had already been answered successfully: reads that a
    /// better plan would not have made. Retries after a failure are not duplicates.
    pub fn duplicate_gets(&self) -> usize {
        let mut seen = HashSet::new();
        self.own()
            .filter(|e| e.method == "GET" && (200..300).contains(&e.status))
            .filter(|e| !seen.insert(e.target.as_str()))
            .count()
    }

    /// The largest number of lemdash's arrivals in any half-open interval of `window`.
    pub fn max_arrivals_in(&self, window: Duration) -> usize {
        let times: Vec<Duration> = self.own().map(|e| e.at).collect();
        max_in_any_window(&times, window)
    }

    /// The same, counting the foreign traffic too (what lemlist's limiter saw for the key).
    pub fn max_arrivals_with_foreign_in(&self, window: Duration) -> usize {
        let times: Vec<Duration> = self.entries.iter().map(|e| e.at).collect();
        max_in_any_window(&times, window)
    }

    /// Own requests per second between the first and the last arrival.
    pub fn achieved_rate(&self) -> f64 {
        let times: Vec<Duration> = self.own().map(|e| e.at).collect();
        match (times.iter().min(), times.iter().max()) {
            (Some(first), Some(last)) if last > first => {
                (times.len() - 1) as f64 / (*last - *first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}
