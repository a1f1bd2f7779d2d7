//! A clock the tests move: lemdash's refresher reads the data's "now" from it, and the
//! simulator's clock is moved with it, so that three days of history take no time at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use lemdash_shared::limiter::Clock;
use lemlist_sim::Sim;

/// Real time shifted by an offset that [`MovedClock::set`] changes.
#[derive(Debug, Default)]
pub struct MovedClock {
    offset_ms: AtomicI64,
}

impl MovedClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets this clock and `sim`'s to `at` (both run on from there).
    pub fn set(&self, sim: &Sim, at: DateTime<Utc>) {
        self.offset_ms.store((at - Utc::now()).num_milliseconds(), Ordering::SeqCst);
        sim.set_clock(at);
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).expect("a valid instant")
    }
}

impl Clock for MovedClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::SeqCst)
    }
}
