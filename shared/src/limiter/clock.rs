//! Wall-clock time for the shared limiter. Slots are wall-clock instants shared by processes, so
//! each process reads its own clock; tests inject offsets to play clocks that disagree.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, as this process believes.
    fn now_ms(&self) -> i64;
}

/// The system clock, optionally shifted by a fixed offset (tests play skewed hosts).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    pub offset_ms: i64,
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        since.as_millis() as i64 + self.offset_ms
    }
}
