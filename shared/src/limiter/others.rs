//! Learning what the team's other lemlist tools use of the key, and leaving it to them.
//!
//! Every lemlist answer says how much of the current window is left (`X-RateLimit-Remaining`)
//! and when the window resets (`X-RateLimit-Reset`). Within one window, `limit − remaining` is
//! what the key spent so far; less what lemdash itself sent in that window, it is what the other
//! tools sent ([`OthersEstimate`]). [`Adaptive`] wraps any permit source and spaces scheduled and
//! background callers so that they take no more than what the others leave, less one request of
//! margin, never below a floor that still lets a refresh finish, and never above the configured
//! share; people's requests are not held. The shared pause for 429s stays as it is.
//!
//! The estimate is per process: other lemdash processes on the key count as "others" here,
//! which only makes each process more careful.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use super::{LEMLIST_LIMIT, PermitError, PermitSource, Priority, SAFE_WINDOW};

/// The fewest requests per window scheduled and background work keeps, however busy the key.
pub const FLOOR_PER_WINDOW: u32 = 4;

/// What the other tools sent per window, learned from the answers to lemdash's own requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OthersEstimate {
    /// The window being observed: its reset (to the second), lemdash's answers in it, and the
    /// least `remaining` seen.
    current: Option<(i64, u32, u32)>,
    /// Requests per window the others sent, smoothed over the windows observed.
    per_window: f64,
}

impl OthersEstimate {
    /// One answer to lemdash's request: `remaining` of the window that resets at `reset`.
    pub fn observe(&mut self, remaining: u32, reset: DateTime<Utc>) {
        let window = reset.timestamp();
        match &mut self.current {
            Some((w, ours, least)) if *w == window => {
                *ours += 1;
                *least = (*least).min(remaining);
            }
            Some((w, _, _)) if *w > window => {} // a late answer from a window already closed
            _ => {
                if let Some((_, ours, least)) = self.current {
                    let others = LEMLIST_LIMIT.saturating_sub(least).saturating_sub(ours);
                    // Quick to see the others arrive, and to see them go quiet.
                    self.per_window = 0.5 * self.per_window + 0.5 * f64::from(others);
                }
                self.current = Some((window, 1, remaining));
            }
        }
    }

    /// Requests per window the others are estimated to send.
    pub fn per_window(&self) -> f64 {
        self.per_window
    }

    /// The same, once at least one answer was observed.
    pub fn observed(&self) -> Option<f64> {
        self.current.map(|_| self.per_window)
    }

    /// What scheduled and background work may send per window: what the others leave, less one
    /// of margin, within `[FLOOR_PER_WINDOW, share]`.
    pub fn allowed(&self, share: u32) -> u32 {
        let others = self.per_window.ceil();
        let margin = if others > 0.0 { 1.0 } else { 0.0 };
        let left = f64::from(LEMLIST_LIMIT) - others - margin;
        (left.max(0.0) as u32).clamp(FLOOR_PER_WINDOW.min(share), share)
    }
}

/// A permit source whose scheduled and background callers leave the others' use to them.
#[derive(Debug)]
pub struct Adaptive<P> {
    inner: P,
    /// Requests per window the configured share allows lower classes.
    share: u32,
    estimate: Mutex<OthersEstimate>,
    /// The next instant a lower-class caller may go, while the others leave less than the share.
    next: Mutex<tokio::time::Instant>,
}

impl<P> Adaptive<P> {
    pub fn new(inner: P, share: u32) -> Self {
        Self {
            inner,
            share,
            estimate: Mutex::new(OthersEstimate::default()),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Lower-class requests per window allowed now.
    pub fn allowed(&self) -> u32 {
        self.estimate.lock().unwrap_or_else(|e| e.into_inner()).allowed(self.share)
    }

    pub fn others_per_window(&self) -> f64 {
        self.estimate.lock().unwrap_or_else(|e| e.into_inner()).per_window()
    }

    /// Reserves this caller's spacing slot when the others leave less than the share; the wait.
    fn spacing(&self) -> Duration {
        let allowed = self.allowed();
        if allowed >= self.share {
            return Duration::ZERO;
        }
        let gap = SAFE_WINDOW / allowed.max(1);
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        let slot = (*next).max(now);
        *next = slot + gap;
        slot - now
    }
}

#[async_trait::async_trait]
impl<P: PermitSource> PermitSource for Adaptive<P> {
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError> {
        if priority.within_share() {
            let wait = self.spacing();
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(PermitError::Deadline { wait });
            }
            tokio::time::sleep(wait).await;
        }
        self.inner.acquire(deadline, priority).await
    }

    async fn pause_until(&self, resume_at: SystemTime) {
        self.inner.pause_until(resume_at).await;
    }

    fn others_per_window(&self) -> Option<f64> {
        self.estimate.lock().unwrap_or_else(|e| e.into_inner()).observed()
    }

    fn observe(&self, remaining: u32, reset: DateTime<Utc>) {
        self.estimate.lock().unwrap_or_else(|e| e.into_inner()).observe(remaining, reset);
        self.inner.observe(remaining, reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_others_are_what_the_window_spent_less_our_own() {
        let mut e = OthersEstimate::default();
        // Window 1: we sent 5 and lemlist had 7 left after our last: the others sent 8.
        for remaining in [18, 15, 12, 9, 7] {
            e.observe(remaining, at(2));
        }
        e.observe(19, at(4)); // the next window closes the first
        assert_eq!(e.per_window(), 4.0, "half of 8 after one window");
        for window in 3..8 {
            for remaining in [11, 10, 9, 8, 7] {
                e.observe(remaining, at(window * 2)); // again 5 of ours, 8 of theirs
            }
        }
        assert!(e.per_window() > 5.0, "{}", e.per_window());
        assert_eq!(e.allowed(15), 20 - e.per_window().ceil() as u32 - 1);
    }

    #[test]
    fn quiet_others_give_the_share_back_and_a_busy_key_keeps_the_floor() {
        let mut e = OthersEstimate::default();
        for w in 0..6 {
            e.observe(2, at(w * 2)); // one of ours, 17 of theirs
        }
        assert_eq!(e.allowed(15), FLOOR_PER_WINDOW, "never below the floor");
        for w in 6..20 {
            e.observe(19, at(w * 2)); // only ours
        }
        assert_eq!(e.allowed(15), 15, "the others went quiet");
        e.observe(0, at(0));
        assert_eq!(e.allowed(15), 15, "a late answer from a closed window changes nothing");
    }

    #[tokio::test]
    async fn lower_classes_are_spaced_to_what_the_others_leave_and_people_are_not() {
        use super::super::{Class, Unlimited};
        let adaptive = Adaptive::new(Unlimited, 15);
        assert_eq!(adaptive.spacing(), Duration::ZERO, "nobody else seen: the share alone holds");
        for w in 0..6 {
            adaptive.observe(8, at(w * 2)); // one of ours, 11 of theirs per window
        }
        let allowed = adaptive.allowed();
        assert!((FLOOR_PER_WINDOW..15).contains(&allowed), "{allowed}");
        let gap = SAFE_WINDOW / allowed;
        let waits: Vec<Duration> = (0..3).map(|_| adaptive.spacing()).collect();
        let near = |d: Duration, want: Duration| d.abs_diff(want) < Duration::from_millis(20);
        assert!(near(waits[1], waits[0] + gap) && near(waits[2], waits[0] + gap * 2), "{waits:?} by {gap:?}");
        let person = Instant::now();
        adaptive.acquire(None, Priority::of(Class::Interactive)).await.unwrap();
        assert!(person.elapsed() < Duration::from_millis(50), "a person is not held");
        let refused = adaptive.acquire(Some(Instant::now()), Priority::of(Class::Background)).await;
        assert!(matches!(refused, Err(PermitError::Deadline { .. })), "its slot is gaps away");
    }
}
