//! [`SharedLimiter`]: one lemlist budget per API key, shared by every process through a
//! [`LaneStore`] (DynamoDB in production).
//!
//! Inside a process, callers line up behind a fair async mutex: the head of the line reserves a
//! slot with one conditional write, leaves the line, and sleeps until its slot. Across processes
//! the store's condition decides; a lost race returns the item's current state, so the next try
//! needs no read. About one write per request.
//!
//! If the store fails, the process paces itself alone (degraded mode) at
//! `2.2 s ÷ ⌊20 ÷ max_processes⌋` per request: with at most `max_processes` processes on the key,
//! together they stay within 20 per 2.2 s. Before its first degraded request it waits out the
//! horizon plus one lane period, so that no slot reserved before the failure can still be in use.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::clock::Clock;
use super::lanes::LANES;
use super::lanes::{LANE_PERIOD_MS, LaneState, MAX_LATE_MS};
use super::pacer::StrictPacer;
use super::store::{LaneStore, Reserve, StoreError};
use super::{Line, PermitError, PermitSource, Priority};
use crate::secret::KeyFingerprint;

/// Tuning of the shared limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedSettings {
    /// How far ahead of its clock a process may reserve. It also bounds how long a slot handed
    /// out before a store failure can still be in use.
    pub horizon: Duration,
    /// The most processes that can share one key at once (e.g. the functions' reserved
    /// concurrency added up): sets the degraded pace.
    pub max_processes: u32,
    /// How long to stay in degraded mode before trying the store again.
    pub probe_after: Duration,
    /// How many of the twenty lanes scheduled and background work may use (1–20); interactive
    /// callers may use them all.
    pub share_lanes: usize,
}

impl Default for SharedSettings {
    fn default() -> Self {
        Self {
            horizon: Duration::from_millis(250),
            max_processes: 4,
            probe_after: Duration::from_secs(15),
            share_lanes: LANES,
        }
    }
}

/// What one limiter did, for benchmarks, logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterMetrics {
    /// Permits granted through the store.
    pub granted: u64,
    /// Permits granted by the degraded in-process pacer.
    pub granted_degraded: u64,
    /// Conditional writes sent to the store (reservations and pauses).
    pub writes: u64,
    /// Reservations that lost a race.
    pub conflicts: u64,
    /// Slots left unused because the request could not leave on time.
    pub discarded: u64,
    /// Pauses this process wrote that took effect.
    pub pauses: u64,
    /// Times this process entered degraded mode.
    pub degradations: u64,
}

#[derive(Debug, Default)]
struct Counters {
    granted: AtomicU64,
    granted_degraded: AtomicU64,
    writes: AtomicU64,
    conflicts: AtomicU64,
    discarded: AtomicU64,
    pauses: AtomicU64,
    degradations: AtomicU64,
}

#[derive(Debug)]
struct Degraded {
    pacer: Arc<StrictPacer>,
    probe_at: Instant,
}

/// The per-key budget shared through a store.
#[derive(Debug)]
pub struct SharedLimiter<S> {
    store: S,
    key: KeyFingerprint,
    clock: Arc<dyn Clock>,
    settings: SharedSettings,
    /// The line of callers: its holder is the one that writes to the store.
    line: Line,
    /// This process's last view of the item (from its last write).
    view: Mutex<LaneState>,
    degraded: Mutex<Option<Degraded>>,
    /// Set when leaving degraded mode: the first writer re-arms a pause first.
    recovering: AtomicBool,
    /// A moving average of the store's write time, in µs: slots are planned this far ahead
    /// (twice over) so that the write returns before the slot and the slot is not wasted.
    write_micros: AtomicU64,
    counters: Counters,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn wait_for(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl<S: LaneStore> SharedLimiter<S> {
    /// `key` identifies the API key in the store; it must not be the key itself (see
    /// [`crate::secret::ApiKey::fingerprint`]).
    pub fn new(store: S, key: KeyFingerprint, clock: Arc<dyn Clock>, settings: SharedSettings) -> Self {
        Self {
            store,
            key,
            clock,
            settings,
            line: Line::default(),
            view: Mutex::new(LaneState::default()),
            degraded: Mutex::new(None),
            recovering: AtomicBool::new(false),
            write_micros: AtomicU64::new(10_000),
            counters: Counters::default(),
        }
    }

    pub fn metrics(&self) -> LimiterMetrics {
        let c = &self.counters;
        LimiterMetrics {
            granted: c.granted.load(Ordering::Relaxed),
            granted_degraded: c.granted_degraded.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            discarded: c.discarded.load(Ordering::Relaxed),
            pauses: c.pauses.load(Ordering::Relaxed),
            degradations: c.degradations.load(Ordering::Relaxed),
        }
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// The degraded pacer while degraded mode lasts; `None` once it is time to try the store.
    fn degraded_pacer(&self) -> Option<Arc<StrictPacer>> {
        let mut degraded = self.degraded.lock().unwrap_or_else(|e| e.into_inner());
        match &*degraded {
            Some(d) if Instant::now() < d.probe_at => Some(d.pacer.clone()),
            Some(_) => {
                *degraded = None;
                self.recovering.store(true, Ordering::SeqCst);
                tracing::info!("lemlist limiter: trying the shared store again");
                None
            }
            None => None,
        }
    }

    fn enter_degraded(&self, error: &StoreError) -> Arc<StrictPacer> {
        let mut degraded = self.degraded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = &*degraded {
            return d.pacer.clone();
        }
        let pacer = Arc::new(StrictPacer::degraded(self.settings.max_processes));
        // Slots reserved before the failure can be in use up to the horizon; let them pass.
        let settle = self.settings.horizon + wait_for(LANE_PERIOD_MS);
        pacer.hold_until(Instant::now() + settle);
        tracing::warn!(
            error = %error,
            period_ms = ms(pacer.period()),
            max_processes = self.settings.max_processes,
            settle_ms = ms(settle),
            "lemlist limiter: shared store unavailable, this process paces itself alone (degraded mode)"
        );
        self.counters.degradations.fetch_add(1, Ordering::Relaxed);
        *degraded =
            Some(Degraded { pacer: pacer.clone(), probe_at: Instant::now() + self.settings.probe_after });
        pacer
    }

    async fn acquire_degraded(
        &self,
        pacer: Arc<StrictPacer>,
        deadline: Option<Instant>,
        priority: Priority,
    ) -> Result<(), PermitError> {
        pacer.acquire(deadline, priority).await?;
        self.counters.granted_degraded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn write_pause(&self, resume_ms: i64) -> Result<(), StoreError> {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if self.store.pause(self.key.as_str(), resume_ms).await? {
            self.counters.pauses.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                resume_in_ms = resume_ms - self.clock.now_ms(),
                "lemlist limiter: every caller of this key pauses"
            );
        }
        Ok(())
    }
}

impl<S: LaneStore> SharedLimiter<S> {
    /// How far ahead of now to plan a slot: twice the usual write time, 5 to 150 ms.
    fn lead_ms(&self) -> i64 {
        let micros = self.write_micros.load(Ordering::Relaxed) as i64;
        (2 * micros / 1000).clamp(5, 150)
    }

    fn record_write_time(&self, took: Duration) {
        let sample = took.as_micros().min(1_000_000) as u64;
        let old = self.write_micros.load(Ordering::Relaxed);
        // An average over about the last eight writes; races between tasks only blur it.
        self.write_micros.store((old * 7 + sample) / 8, Ordering::Relaxed);
    }

    fn view(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a slot through the store, as the head of this process's line. `None` when the
    /// store failed and degraded mode began.
    async fn reserve(
        &self,
        deadline: Option<Instant>,
        priority: Priority,
    ) -> Result<Option<i64>, PermitError> {
        let usable = if priority.within_share() { self.settings.share_lanes } else { LANES };
        if let Some(deadline) = deadline {
            // Refuse at once a caller whose turn cannot come in time, rather than let it queue.
            // Only callers of the same or a higher priority are ahead of it.
            let now = self.clock.now_ms();
            let ahead = self.line.ahead(priority);
            let wait = wait_for(self.view().earliest_slot_within(now, ahead, usable) - now);
            if Instant::now() + wait > deadline {
                return Err(PermitError::Deadline { wait });
            }
        }
        let mut turn = self.line.enter_by(priority, deadline).await?;
        if self.recovering.swap(false, Ordering::SeqCst) {
            // Degraded processes may still be sending on their own: hold the key until they
            // have all had the chance to notice the store is back, even one whose probe fails
            // once more (a store that answers slowly while it comes back).
            let resume = self.clock.now_ms() + 2 * ms(self.settings.probe_after) + LANE_PERIOD_MS;
            if let Err(e) = self.write_pause(resume).await {
                self.enter_degraded(&e);
                return Ok(None);
            }
            let mut view = self.view();
            view.paused_until = Some(view.paused_until.unwrap_or(resume).max(resume));
        }
        let mut lost = false;
        loop {
            let now = self.clock.now_ms();
            let pick = rand::random::<u32>() as usize;
            let plan = self.view().plan_within(now + self.lead_ms(), pick, lost, usable);
            let wait = wait_for(plan.slot - now);
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(PermitError::Deadline { wait });
            }
            if wait > self.settings.horizon {
                // Too far ahead to reserve yet. Wait out of the line, so that a caller of a
                // higher class (whose lanes may be free now) is not held behind this one.
                turn = turn.park_for(wait - self.settings.horizon, deadline).await?;
                continue;
            }
            self.counters.writes.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let outcome = self.store.reserve(self.key.as_str(), plan).await;
            self.record_write_time(sent.elapsed());
            match outcome {
                Ok(Reserve::Taken(state)) => {
                    *self.view() = state;
                    return Ok(Some(plan.slot));
                }
                Ok(Reserve::Lost(state)) => {
                    *self.view() = state;
                    lost = true;
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    // Another process wrote at the same moment: step out of lockstep with it
                    // for a few write times before trying again.
                    let micros = self.write_micros.load(Ordering::Relaxed).max(1000);
                    tokio::time::sleep(Duration::from_micros(rand::random_range(0..4 * micros))).await;
                }
                Err(e) => {
                    self.enter_degraded(&e);
                    return Ok(None);
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl<S: LaneStore> PermitSource for SharedLimiter<S> {
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError> {
        loop {
            if let Some(pacer) = self.degraded_pacer() {
                return self.acquire_degraded(pacer, deadline, priority).await;
            }
            let Some(slot) = self.reserve(deadline, priority).await? else { continue };
            tokio::time::sleep(wait_for(slot - self.clock.now_ms())).await;
            if self.clock.now_ms() - slot > MAX_LATE_MS {
                // The write or the wake-up was slow: sending now would crowd the lane.
                self.counters.discarded.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.view().paused_until.is_some_and(|resume| resume > slot) {
                // A pause became known while this slot was waiting (written by this process, or
                // read back by one of its writes): lemlist's window is spent, so the slot is
                // given up and the caller queues again behind the pause.
                self.counters.discarded.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.counters.granted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }

    async fn pause_until(&self, resume_at: SystemTime) {
        let ahead = resume_at.duration_since(SystemTime::now()).unwrap_or_default();
        let resume_ms = self.clock.now_ms() + ms(ahead);
        if let Some(pacer) = self.degraded_pacer() {
            pacer.pause_until(resume_at).await;
            return;
        }
        match self.write_pause(resume_ms).await {
            // Our next reservation starts from the pause instead of losing a race to learn it.
            Ok(()) => {
                let mut view = self.view();
                view.paused_until = Some(view.paused_until.map_or(resume_ms, |p| p.max(resume_ms)));
            }
            Err(e) => self.enter_degraded(&e).pause_until(resume_at).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::clock::SystemClock;
    use crate::limiter::lanes::Reservation;
    use crate::limiter::store::MemoryStore;
    use crate::secret::ApiKey;
    use std::sync::atomic::AtomicI64;

    /// One store seen by several limiters (processes).
    #[derive(Debug)]
    struct Shared(Arc<MemoryStore>);

    #[async_trait::async_trait]
    impl LaneStore for Shared {
        async fn reserve(&self, key: &str, r: Reservation) -> Result<Reserve, StoreError> {
            self.0.reserve(key, r).await
        }
        async fn pause(&self, key: &str, resume_ms: i64) -> Result<bool, StoreError> {
            self.0.pause(key, resume_ms).await
        }
    }

    fn limiter(store: MemoryStore) -> SharedLimiter<MemoryStore> {
        SharedLimiter::new(
            store,
            ApiKey::new("test").fingerprint(),
            Arc::new(SystemClock::default()),
            SharedSettings::default(),
        )
    }

    #[tokio::test]
    async fn a_burst_on_an_idle_key_goes_at_once_with_one_write_each() {
        let l = limiter(MemoryStore::default());
        for _ in 0..20 {
            // A permit that had to wait would be refused against this deadline: each of the
            // twenty finds its lane free now, however slowly the machine runs.
            l.acquire(Some(Instant::now() + Duration::from_millis(100)), Priority::default()).await.unwrap();
        }
        let m = l.metrics();
        assert_eq!((m.granted, m.writes, m.conflicts), (20, 20, 0));
        let err = l
            .acquire(Some(Instant::now() + Duration::from_millis(100)), Priority::default())
            .await
            .unwrap_err();
        assert!(matches!(err, PermitError::Deadline { wait } if wait > Duration::from_secs(2)));
        assert_eq!(l.metrics().writes, 20, "a refused caller costs no write");
    }

    #[tokio::test]
    async fn a_caller_deep_in_the_line_is_refused_at_once() {
        let l = Arc::new(limiter(MemoryStore::default()));
        for _ in 0..20 {
            l.acquire(None, Priority::default()).await.unwrap();
        }
        // Twenty callers queue for the next round; one more with a 3 s deadline cannot make it:
        // the round after that is 4.4 s away.
        let mut queued = Vec::new();
        for _ in 0..20 {
            let l = l.clone();
            queued.push(tokio::spawn(async move { l.acquire(None, Priority::default()).await }));
        }
        crate::testing::eventually("the twenty are in line", || l.line.ahead(Priority::default()) >= 20)
            .await;
        let asked = Instant::now();
        let err =
            l.acquire(Some(Instant::now() + Duration::from_secs(3)), Priority::default()).await.unwrap_err();
        // Waiting for the deadline before refusing would take 3 s.
        assert!(asked.elapsed() < Duration::from_millis(1500), "told at once");
        assert!(matches!(err, PermitError::Deadline { wait } if wait > Duration::from_secs(3)), "{err:?}");
        for q in queued {
            q.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_pause_from_one_process_holds_another() {
        let store = Arc::new(MemoryStore::default());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
        let a = SharedLimiter::new(
            Shared(store.clone()),
            ApiKey::new("k").fingerprint(),
            clock.clone(),
            SharedSettings::default(),
        );
        let b = SharedLimiter::new(
            Shared(store.clone()),
            ApiKey::new("k").fingerprint(),
            clock,
            SharedSettings::default(),
        );
        a.pause_until(SystemTime::now() + Duration::from_secs(3)).await;
        a.pause_until(SystemTime::now() + Duration::from_secs(3)).await;
        assert_eq!(a.metrics().pauses, 1, "the second pause of the episode is absorbed");
        let err =
            b.acquire(Some(Instant::now() + Duration::from_secs(1)), Priority::default()).await.unwrap_err();
        assert!(matches!(err, PermitError::Deadline { wait } if wait > Duration::from_secs(2)));
        assert_eq!(store.state(ApiKey::new("k").fingerprint().as_str()).pauses, 1);
    }

    /// The system clock moved by an offset the test sets.
    #[derive(Debug, Default)]
    struct Moved(AtomicI64);

    impl Clock for Moved {
        fn now_ms(&self) -> i64 {
            SystemClock::default().now_ms() + self.0.load(Ordering::SeqCst)
        }
    }

    /// A store after whose first reservation the process loses 200 ms, as one descheduled
    /// between writing its slot and waking up for it: the clock jumps while the write returns.
    #[derive(Debug)]
    struct Descheduled {
        store: MemoryStore,
        clock: Arc<Moved>,
    }

    #[async_trait::async_trait]
    impl LaneStore for Descheduled {
        async fn reserve(&self, key: &str, r: Reservation) -> Result<Reserve, StoreError> {
            let answer = self.store.reserve(key, r).await;
            // Once only: the slot it reserves next is planned on the late clock.
            let _ = self.clock.0.compare_exchange(0, 200, Ordering::SeqCst, Ordering::SeqCst);
            answer
        }
        async fn pause(&self, key: &str, resume_ms: i64) -> Result<bool, StoreError> {
            self.store.pause(key, resume_ms).await
        }
    }

    #[tokio::test]
    async fn a_slot_woken_up_too_late_is_given_up_and_another_reserved() {
        let clock = Arc::new(Moved::default());
        let l = SharedLimiter::new(
            Descheduled { store: MemoryStore::default(), clock: clock.clone() },
            ApiKey::new("k").fingerprint(),
            clock,
            SharedSettings::default(),
        );
        l.acquire(None, Priority::default()).await.unwrap();
        let m = l.metrics();
        assert_eq!((m.discarded, m.granted, m.writes), (1, 1, 2), "the late slot was not used");
    }

    #[tokio::test]
    async fn a_slot_waiting_when_a_pause_becomes_known_is_given_up() {
        let store = Arc::new(MemoryStore::default());
        // A horizon wide enough that the caller below holds its reservation while it waits.
        let settings = SharedSettings { horizon: Duration::from_secs(5), ..SharedSettings::default() };
        let l = Arc::new(SharedLimiter::new(
            Shared(store),
            ApiKey::new("k").fingerprint(),
            Arc::new(SystemClock::default()),
            settings,
        ));
        // Use the twenty lanes up, so that the next slot is a lane period ahead.
        for _ in 0..20 {
            l.acquire(None, Priority::default()).await.unwrap();
        }
        let waiting = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire(None, Priority::default()).await })
        };
        crate::testing::eventually("the caller has reserved its slot", || l.metrics().writes == 21).await;
        // lemlist says the window is spent while that caller waits for its slot.
        l.pause_until(SystemTime::now() + Duration::from_secs(4)).await;
        let paused_at = Instant::now();
        waiting.await.unwrap().unwrap();
        assert!(paused_at.elapsed() >= Duration::from_secs(3), "it waited for the pause to end");
        assert_eq!(l.metrics().discarded, 1, "its slot inside the pause was given up");
    }

    #[derive(Debug)]
    struct Broken;

    #[async_trait::async_trait]
    impl LaneStore for Broken {
        async fn reserve(&self, _: &str, _: Reservation) -> Result<Reserve, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        async fn pause(&self, _: &str, _: i64) -> Result<bool, StoreError> {
            Err(StoreError("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn a_failed_store_degrades_to_a_slower_local_pace_after_settling() {
        let settings =
            SharedSettings { horizon: Duration::from_millis(100), max_processes: 4, ..Default::default() };
        let l = SharedLimiter::new(
            Broken,
            ApiKey::new("k").fingerprint(),
            Arc::new(SystemClock::default()),
            settings,
        );
        let started = Instant::now();
        l.acquire(None, Priority::default()).await.unwrap();
        l.acquire(None, Priority::default()).await.unwrap();
        let elapsed = started.elapsed();
        // Settle: horizon + one lane period; then 2.2 s ÷ ⌊20 ÷ 4⌋ = 440 ms between requests.
        assert!(elapsed >= Duration::from_millis(2300 + 400), "{elapsed:?}");
        assert!(l.is_degraded());
        let m = l.metrics();
        assert_eq!((m.granted, m.granted_degraded, m.degradations), (0, 2, 1));
    }
}
