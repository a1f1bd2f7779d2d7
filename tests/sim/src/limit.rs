//! lemlist's rate limit as the simulator applies it, per API key.
//!
//! - [`LimitMode::Anchored`]: what lemlist most likely runs (an express-rate-limit style fixed
//!   window): a 2-second window opens at the first request after the previous one closed; every
//!   hit counts, rejected ones too; beyond 20 the answer is 429 until the window closes.
//! - [`LimitMode::Sliding`]: strict: a request is refused when 20 requests were *accepted* in
//!   the 2 seconds before it.

use std::collections::VecDeque;
use std::time::Duration;

pub const LIMIT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitMode {
    Anchored,
    Sliding,
    Off,
}

impl std::str::FromStr for LimitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "anchored" => Ok(Self::Anchored),
            "sliding" => Ok(Self::Sliding),
            "off" => Ok(Self::Off),
            other => Err(format!("unknown rate-limit mode {other:?}: expected anchored, sliding or off")),
        }
    }
}

/// The decision for one hit, with what the headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    /// Time from this hit until the window frees up (the reset).
    pub reset_in: Duration,
    /// Where the window began (anchored mode).
    pub window: Option<Duration>,
}

/// One key's window. Times are offsets from the simulator's start.
#[derive(Debug, Default)]
pub struct KeyWindow {
    anchored_start: Option<Duration>,
    anchored_count: u32,
    accepted: VecDeque<Duration>,
}

impl KeyWindow {
    pub fn hit(&mut self, mode: LimitMode, now: Duration) -> Decision {
        match mode {
            LimitMode::Off => Decision { allowed: true, remaining: LIMIT, reset_in: WINDOW, window: None },
            LimitMode::Anchored => {
                let start = match self.anchored_start {
                    Some(start) if now < start + WINDOW => start,
                    _ => {
                        self.anchored_count = 0;
                        self.anchored_start = Some(now);
                        now
                    }
                };
                self.anchored_count += 1;
                Decision {
                    allowed: self.anchored_count <= LIMIT,
                    remaining: LIMIT.saturating_sub(self.anchored_count),
                    reset_in: start + WINDOW - now,
                    window: Some(start),
                }
            }
            LimitMode::Sliding => {
                while self.accepted.front().is_some_and(|&t| t + WINDOW <= now) {
                    self.accepted.pop_front();
                }
                let allowed = (self.accepted.len() as u32) < LIMIT;
                if allowed {
                    self.accepted.push_back(now);
                }
                let reset_in = match self.accepted.front() {
                    Some(&oldest) if self.accepted.len() as u32 >= LIMIT => oldest + WINDOW - now,
                    _ => Duration::ZERO,
                };
                Decision { allowed, remaining: LIMIT - self.accepted.len() as u32, reset_in, window: None }
            }
        }
    }
}

/// The largest number of `times` (sorted or not) inside any half-open interval `[t, t + window)`.
pub fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi] >= sorted[lo] + window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn anchored_window_counts_rejected_hits_and_resets_at_once() {
        let mut w = KeyWindow::default();
        for i in 0..20 {
            assert!(w.hit(LimitMode::Anchored, ms(100 + i)).allowed);
        }
        let d = w.hit(LimitMode::Anchored, ms(500));
        assert_eq!((d.allowed, d.remaining, d.reset_in), (false, 0, ms(1600)));
        // The window opened at 100 ms: at 2100 ms a fresh one starts with the whole budget.
        let d = w.hit(LimitMode::Anchored, ms(2100));
        assert_eq!((d.allowed, d.remaining), (true, 19));
    }

    #[test]
    fn anchored_lets_forty_through_across_a_window_edge() {
        // Why a per-window counter on the client is not enough: 20 at the end of one window and
        // 20 at the start of the next all pass.
        let mut w = KeyWindow::default();
        w.hit(LimitMode::Anchored, ms(0));
        let mut allowed = 0;
        for i in 0..19 {
            allowed += w.hit(LimitMode::Anchored, ms(1900 + i)).allowed as u32;
        }
        for i in 0..20 {
            allowed += w.hit(LimitMode::Anchored, ms(2000 + i)).allowed as u32;
        }
        assert_eq!(allowed, 39);
    }

    #[test]
    fn sliding_refuses_the_twenty_first_in_any_two_seconds() {
        let mut w = KeyWindow::default();
        for i in 0..20 {
            assert!(w.hit(LimitMode::Sliding, ms(i * 50)).allowed);
        }
        let d = w.hit(LimitMode::Sliding, ms(1999));
        assert!(!d.allowed);
        assert_eq!(d.reset_in, ms(1));
        assert!(w.hit(LimitMode::Sliding, ms(2000)).allowed);
    }

    #[test]
    fn max_in_window_is_exact_and_half_open() {
        let times: Vec<Duration> = [0, 100, 1999, 2000, 2001, 5000].map(ms).to_vec();
        assert_eq!(max_in_any_window(&times, ms(2000)), 4); // 100, 1999, 2000, 2001
        assert_eq!(max_in_any_window(&[], ms(2000)), 0);
        assert_eq!(max_in_any_window(&[ms(0), ms(2000)], ms(2000)), 1);
    }
}
