//! lemdash's clock in tests: the simulator's own. lemdash reads the data's "now" through it, so
//! a test that moves the simulator's clock (three days of history in no time at all) moves
//! lemdash's with it, and no test depends on the day it runs.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lemdash_shared::limiter::Clock;
use lemlist_sim::{Sim, SimClock};

/// The simulator's clock, as lemdash's [`Clock`].
#[derive(Debug, Clone)]
pub struct MovedClock(SimClock);

impl MovedClock {
    /// `sim`'s clock (a test's starts two hours after its generated history).
    pub fn of(sim: &Sim) -> Arc<Self> {
        Arc::new(Self(sim.clock()))
    }

    /// Sets this clock, and so the simulator's, to `at` (both run on from there).
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.set(at);
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

impl Clock for MovedClock {
    fn now_ms(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}
