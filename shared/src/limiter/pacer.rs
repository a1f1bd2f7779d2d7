//! The in-process strict pacer, built on `governor`.
//!
//! A GCRA limiter with burst B and period T admits at most ⌈W/T⌉ + B − 1 requests in any
//! half-open window W. A burst of 20 with a 100 ms period therefore lets 39 requests into one
//! 2-second window, twice lemlist's limit. With burst 1 the bound is ⌈W/T⌉; sizing T from a
//! window W′ = 2.2 s (T = 110 ms) keeps at most 19 requests in any 2 s at the client, and at most
//! 20 arrivals at lemlist even when network jitter (up to 100 ms) bunches them together.
//!
//! governor's own waiting is not a queue: woken waiters race. Callers here line up behind a
//! fair (FIFO) async mutex instead, and only the head of the line talks to governor, so requests
//! go out in arrival order and nobody starves.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use super::{Line, PermitError, PermitSource, Priority, instant_for};

/// lemlist's documented budget: this many requests…
pub const LEMLIST_LIMIT: u32 = 20;
/// …per this window, per API key.
pub const LEMLIST_WINDOW: Duration = Duration::from_secs(2);
/// The window the pacer is sized for: lemlist's plus 10 % for jitter and clock error.
pub const SAFE_WINDOW: Duration = Duration::from_millis(2200);

type Direct = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::NoOpMiddleware<<DefaultClock as Clock>::Instant>,
>;

/// Never more than `limit` requests in any `window`: one request per `window / limit`, no burst.
#[derive(Debug)]
pub struct StrictPacer {
    limiter: Direct,
    clock: DefaultClock,
    period: Duration,
    /// The pace of scheduled and background callers, when they keep to a share of the budget
    /// (interactive callers are held by `limiter` alone).
    share: Option<(Direct, Duration)>,
    /// The line of callers; its head is the next to be paced.
    line: Line,
    paused_until: Mutex<Option<Instant>>,
}

impl StrictPacer {
    /// The pacer lemdash uses for one lemlist key: 20 per 2.2 s, one every 110 ms.
    pub fn lemlist() -> Self {
        Self::new(LEMLIST_LIMIT, SAFE_WINDOW)
    }

    /// The same, with scheduled and background callers kept to `share` of it (0 < share ≤ 1):
    /// one every 110 ms ÷ share for them, the whole pace for interactive callers.
    pub fn lemlist_with_share(share: f64) -> Self {
        let mut pacer = Self::lemlist();
        if share < 1.0 {
            let period = pacer.period.div_f64(share.clamp(0.01, 1.0));
            let quota = Quota::with_period(period).expect("a positive period");
            pacer.share = Some((RateLimiter::direct_with_clock(quota, pacer.clock.clone()), period));
        }
        pacer
    }

    /// One request every `window / limit`.
    ///
    /// # Panics
    /// If `limit` is 0 or the resulting period is zero: a limiter that admits nothing is a
    /// programming error, not a runtime condition.
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = NonZeroU32::new(limit).expect("a pacer must admit at least one request");
        Self::with_period(window / limit.get())
    }

    /// The pace of one of `processes` processes that share a key but cannot coordinate:
    /// each gets ⌊20 ÷ processes⌋ requests per 2.2 s, so together they keep 20 per 2.2 s.
    pub fn degraded(processes: u32) -> Self {
        let share = (LEMLIST_LIMIT / processes.clamp(1, LEMLIST_LIMIT)).max(1);
        Self::with_period(SAFE_WINDOW / share)
    }

    /// One request every `period`, no burst.
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn with_period(period: Duration) -> Self {
        let quota = Quota::with_period(period).expect("the pacing period must be positive");
        Self::with_quota(quota, period)
    }

    fn with_quota(quota: Quota, period: Duration) -> Self {
        let clock = DefaultClock::default();
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            period,
            share: None,
            line: Line::default(),
            paused_until: Mutex::new(None),
        }
    }

    /// The spacing between two requests.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Holds every caller until `until` (a local instant).
    pub fn hold_until(&self, until: Instant) {
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    fn pause_remaining(&self, now: Instant) -> Duration {
        let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        paused.map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }
}

#[async_trait::async_trait]
impl PermitSource for StrictPacer {
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError> {
        let share = self.share.as_ref().filter(|_| priority.within_share());
        if let Some(deadline) = deadline {
            // Only callers of the same or a higher priority are ahead. Only estimate when someone
            // is ahead or a pause is on: otherwise the fast path below decides exactly.
            let ahead = self.line.ahead(priority);
            if ahead > 0 || !self.pause_remaining(Instant::now()).is_zero() {
                let period = share.map_or(self.period, |(_, p)| *p);
                let wait = self.pause_remaining(Instant::now()) + period * ahead as u32;
                if Instant::now() + wait > deadline {
                    return Err(PermitError::Deadline { wait });
                }
            }
        }
        let mut turn = self.line.enter_by(priority, deadline).await?;
        let mut share_taken = false;
        loop {
            let now = Instant::now();
            let pause = self.pause_remaining(now);
            if !pause.is_zero() {
                if deadline.is_some_and(|d| now + pause > d) {
                    return Err(PermitError::Deadline { wait: pause });
                }
                tokio::time::sleep(pause).await;
                continue;
            }
            if let Some((limiter, _)) = share.filter(|_| !share_taken) {
                match limiter.check() {
                    Ok(()) => share_taken = true,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.clock.now());
                        if deadline.is_some_and(|d| now + wait > d) {
                            return Err(PermitError::Deadline { wait });
                        }
                        // Wait for the share's pace out of the line: a person's request that
                        // arrives meanwhile goes first.
                        turn = turn.park_for(wait, deadline).await?;
                        continue;
                    }
                }
            }
            match self.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    if deadline.is_some_and(|d| now + wait > d) {
                        return Err(PermitError::Deadline { wait });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn pause_until(&self, resume_at: SystemTime) {
        self.hold_until(instant_for(resume_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_pacing_divides_the_budget_between_processes() {
        assert_eq!(StrictPacer::degraded(4).period(), Duration::from_millis(440));
        assert_eq!(StrictPacer::degraded(8).period(), Duration::from_millis(1100));
    }

    /// The lemlist pacer, driven by 30 callers at once: never more than 19 grants in any 2 s
    /// (20 is lemlist's limit; one slot is the margin for late sends). A slow machine can only
    /// spread the grants further apart. (governor keeps its own clock, so tokio's paused time
    /// cannot drive it.)
    #[tokio::test]
    async fn the_lemlist_pacer_grants_at_most_nineteen_in_any_two_seconds() {
        let p = std::sync::Arc::new(StrictPacer::lemlist());
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..30 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.acquire(None, Priority::default()).await.unwrap();
                start.elapsed()
            }));
        }
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        let most = at
            .iter()
            .map(|first| at.iter().filter(|t| **t >= *first && **t < *first + Duration::from_secs(2)).count())
            .max()
            .unwrap();
        assert!(most <= 19, "{most} grants in the busiest 2 s");
        assert!(at[29] >= Duration::from_millis(29 * 100), "30 grants take 29 periods: {:?}", at[29]);
    }

    #[tokio::test]
    async fn sends_are_spaced_by_the_period_in_fifo_order() {
        let p = std::sync::Arc::new(StrictPacer::new(20, Duration::from_secs(2)));
        let start = Instant::now();
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                p.acquire(None, Priority::default()).await.unwrap();
                order.lock().unwrap().push((i, start.elapsed()));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let ids: Vec<_> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>(), "served in arrival order");
        for pair in order.windows(2) {
            assert!(pair[1].1 - pair[0].1 >= Duration::from_millis(99), "{pair:?}");
        }
    }

    #[tokio::test]
    async fn a_caller_that_cannot_be_served_before_its_deadline_is_told_at_once() {
        let p = StrictPacer::new(1, Duration::from_secs(10));
        p.acquire(None, Priority::default()).await.unwrap();
        let started = Instant::now();
        let err =
            p.acquire(Some(Instant::now() + Duration::from_secs(5)), Priority::default()).await.unwrap_err();
        assert!(matches!(err, PermitError::Deadline { wait } if wait > Duration::from_secs(9)));
        // A pacer that waited for the deadline before refusing would take 5 s.
        assert!(started.elapsed() < Duration::from_millis(2500), "told at once");
    }

    #[tokio::test]
    async fn a_pause_holds_every_caller_until_it_ends() {
        let p = StrictPacer::lemlist();
        p.pause_until(SystemTime::now() + Duration::from_secs(30)).await;
        let err =
            p.acquire(Some(Instant::now() + Duration::from_secs(1)), Priority::default()).await.unwrap_err();
        assert!(matches!(err, PermitError::Deadline { wait } if wait > Duration::from_secs(29)));
        // An earlier pause does not shorten a later one.
        p.pause_until(SystemTime::now()).await;
        assert!(p.pause_remaining(Instant::now()) > Duration::from_secs(29));
    }
}
