//! The right to send. Every lemlist request first asks one [`PermitSource`]; the client does not
//! know whether the budget is kept by nobody ([`Unlimited`]), by this process ([`StrictPacer`]),
//! or shared by every invocation through DynamoDB ([`SharedLimiter`] over [`dynamo::DynamoStore`]).
//!
//! lemlist allows 20 requests per 2 seconds per key, and most likely counts them in a fixed
//! window that starts at the first request. A client is only safe against a window of unknown
//! phase if it never lets more than 20 requests arrive in *any* 2-second interval, network
//! jitter included.

mod clock;
pub mod dynamo;
pub mod lanes;
pub mod others;
mod pacer;
mod shared;
mod store;
pub mod usage;

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

pub use clock::{Clock, SystemClock};
pub use others::Adaptive;
pub use pacer::{LEMLIST_LIMIT, LEMLIST_WINDOW, SAFE_WINDOW, StrictPacer};
pub use shared::{LimiterMetrics, SharedLimiter, SharedSettings};
pub use store::{LaneStore, MemoryStore, Reserve, StoreError};

/// Why a permit was not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitError {
    /// The wait would end after the caller's deadline; the caller is told at once.
    #[error("the lemlist budget has no free slot before the deadline (next slot in {wait:?})")]
    Deadline { wait: Duration },
}

/// Who is waiting for a request. People come before machines: a higher class takes the next
/// free slot ahead of every caller of a lower class still waiting, and only the interactive
/// class may use the whole budget (the others keep to `LEMLIST_BUDGET_SHARE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// A person waits: an action, a forced refresh, a page waiting on a cold snapshot.
    Interactive,
    /// The periodic refresh.
    #[default]
    Scheduled,
    /// Work nobody waits for (first syncs, full re-syncs, continuations).
    Background,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Interactive, Class::Scheduled, Class::Background];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Scheduled => "scheduled",
            Self::Background => "background",
        }
    }
}

/// Where a caller joins a process's line of callers: by class, and within a class a request
/// that continues work under way (the next page of a list, a retry) goes ahead of requests that
/// start new work, so that chains of dependent calls finish early and independent calls fill
/// the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Priority {
    pub class: Class,
    pub follow_up: bool,
}

impl Priority {
    pub const fn of(class: Class) -> Self {
        Self { class, follow_up: false }
    }

    /// The same class, continuing work under way.
    pub const fn follow_up(self) -> Self {
        Self { follow_up: true, ..self }
    }

    /// Lower is served first.
    fn level(self) -> u8 {
        self.class as u8 * 2 + u8::from(!self.follow_up)
    }

    /// Whether this caller keeps to the budget share left by the team's other tools.
    pub fn within_share(self) -> bool {
        self.class != Class::Interactive
    }
}

/// A source of permission to send one request to lemlist with one API key.
#[async_trait::async_trait]
pub trait PermitSource: Send + Sync + fmt::Debug {
    /// Waits until one request may be sent. Fails at once, without waiting, when the permit
    /// could only be granted after `deadline`.
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError>;

    /// lemlist said the key's window is used up (a 429, or `X-RateLimit-Remaining: 0`): no
    /// request should be sent before `resume_at`. Wall-clock time, because a shared source
    /// coordinates several processes.
    async fn pause_until(&self, resume_at: SystemTime);

    /// An answer to one of this source's requests said `remaining` requests are left in the
    /// key's window that resets at `reset`. Sources that learn from it override this.
    fn observe(&self, _remaining: u32, _reset: chrono::DateTime<chrono::Utc>) {}

    /// What the team's other tools send per window, as this source learned it (`None`: it
    /// does not learn, or has seen no answer yet).
    fn others_per_window(&self) -> Option<f64> {
        None
    }
}

/// No limit at all: every request goes out at once. For tests that need to provoke 429s and for
/// callers that are limited elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

#[async_trait::async_trait]
impl PermitSource for Unlimited {
    async fn acquire(&self, _deadline: Option<Instant>, _priority: Priority) -> Result<(), PermitError> {
        Ok(())
    }

    async fn pause_until(&self, _resume_at: SystemTime) {}
}

/// A process's line of callers, ordered by [`Priority`] and, within one priority, by arrival.
/// The holder of the [`Turn`] is served; dropping it hands the turn to the first caller still
/// waiting. A caller that must wait a while for its slot can [`Turn::park`]: it steps out of
/// the way of the callers of a higher priority but keeps its place ahead of those of its own and
/// lower priorities. A caller that stops waiting (its deadline passed) leaves the line cleanly.
#[derive(Debug, Default)]
pub(crate) struct Line {
    state: std::sync::Mutex<LineState>,
}

/// A place in the line: priority level, then arrival.
type Place = (u8, u64);

#[derive(Debug, Default)]
struct LineState {
    busy: bool,
    next: u64,
    waiting: std::collections::BTreeMap<Place, tokio::sync::oneshot::Sender<()>>,
    parked: std::collections::BTreeSet<Place>,
}

impl LineState {
    /// Whether the caller at `place` may be served now: no parked caller comes before it.
    fn eligible(&self, place: Place) -> bool {
        self.parked.first().is_none_or(|first| place < *first)
    }

    /// While the line is free, hands the turn to the first eligible caller still waiting.
    fn hand_over(&mut self) {
        while !self.busy {
            let Some((&place, _)) = self.waiting.first_key_value() else { return };
            if !self.eligible(place) {
                return;
            }
            let tx = self.waiting.remove(&place).expect("just seen");
            self.busy = tx.send(()).is_ok();
        }
    }
}

/// The head of a [`Line`]: held while its owner is served.
pub(crate) struct Turn<'a> {
    line: &'a Line,
    place: Place,
    released: bool,
}

/// A caller that stepped out of the line's head for a while and keeps its place.
pub(crate) struct Parked<'a> {
    line: &'a Line,
    place: Place,
    resumed: bool,
}

/// A caller waiting in a [`Line`]; leaves it when dropped.
struct Waiting<'a> {
    line: &'a Line,
    place: Place,
    handed: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Line {
    fn state(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many callers a caller of `priority` would find ahead of it (the one served and the
    /// parked ones included).
    pub(crate) fn ahead(&self, priority: Priority) -> usize {
        let s = self.state();
        let before = |place: &Place| place.0 <= priority.level();
        usize::from(s.busy)
            + s.waiting.keys().filter(|p| before(p)).count()
            + s.parked.iter().filter(|p| before(p)).count()
    }

    /// [`Line::enter`], giving up when `deadline` passes first.
    pub(crate) async fn enter_by(
        &self,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> Result<Turn<'_>, PermitError> {
        until(deadline, self.enter(priority)).await
    }

    pub(crate) async fn enter(&self, priority: Priority) -> Turn<'_> {
        let place = {
            let mut s = self.state();
            s.next += 1;
            (priority.level(), s.next)
        };
        self.enter_at(place).await
    }

    async fn enter_at(&self, place: Place) -> Turn<'_> {
        let mut waiting = {
            let mut s = self.state();
            if !s.busy && s.eligible(place) {
                s.busy = true;
                return Turn { line: self, place, released: false };
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.waiting.insert(place, tx);
            Waiting { line: self, place, handed: Some(rx) }
        };
        if let Some(rx) = waiting.handed.as_mut() {
            // The sender is only ever used to hand the turn over, under the lock.
            let _ = rx.await;
        }
        waiting.handed = None;
        Turn { line: self, place, released: false }
    }

    /// Frees the line and hands the turn to the first eligible caller.
    fn release(&self) {
        let mut s = self.state();
        s.busy = false;
        s.hand_over();
    }
}

impl<'a> Turn<'a> {
    /// Parks for `wait`, then takes the turn again; fails when `deadline` passes first.
    pub(crate) async fn park_for(
        self,
        wait: Duration,
        deadline: Option<Instant>,
    ) -> Result<Turn<'a>, PermitError> {
        let parked = self.park();
        tokio::time::sleep(wait).await;
        until(deadline, parked.resume()).await
    }

    /// Steps out of the head while keeping this caller's place (see [`Line`]).
    pub(crate) fn park(mut self) -> Parked<'a> {
        self.released = true;
        let mut s = self.line.state();
        s.parked.insert(self.place);
        s.busy = false;
        s.hand_over();
        Parked { line: self.line, place: self.place, resumed: false }
    }
}

impl<'a> Parked<'a> {
    /// Takes the turn again, ahead of everyone behind this caller's place.
    pub(crate) async fn resume(mut self) -> Turn<'a> {
        self.resumed = true;
        {
            let mut s = self.line.state();
            s.parked.remove(&self.place);
        }
        self.line.enter_at(self.place).await
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.line.release();
        }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if !self.resumed {
            let mut s = self.line.state();
            s.parked.remove(&self.place);
            s.hand_over();
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.handed.take() else { return };
        let mut s = self.line.state();
        if s.waiting.remove(&self.place).is_none() && rx.try_recv().is_ok() {
            // Not in the line any more: the turn was handed to this caller as it gave up.
            s.busy = false;
        }
        // Either way its place no longer holds anyone back.
        s.hand_over();
    }
}

/// Waits for `turn`, or fails when `deadline` passes first.
async fn until<'a>(
    deadline: Option<Instant>,
    turn: impl std::future::Future<Output = Turn<'a>>,
) -> Result<Turn<'a>, PermitError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), turn)
            .await
            .map_err(|_| PermitError::Deadline { wait: Duration::ZERO }),
        None => Ok(turn.await),
    }
}

/// Converts a wall-clock instant into this process's monotonic clock.
pub(crate) fn instant_for(at: SystemTime) -> Instant {
    let now_wall = SystemTime::now();
    let now = Instant::now();
    match at.duration_since(now_wall) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{Class, Line, Priority};

    #[tokio::test]
    async fn callers_are_served_by_class_then_follow_ups_then_arrival() {
        let line = Arc::new(Line::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = line.enter(Priority::default()).await;
        let mut waiting = Vec::new();
        let scheduled = Priority::of(Class::Scheduled);
        let interactive = Priority::of(Class::Interactive);
        let last = Priority::of(Class::Background);
        for (n, (name, priority)) in [
            ("bg", Priority::of(Class::Background)),
            ("s1", scheduled),
            ("s2", scheduled),
            ("s-follow", scheduled.follow_up()),
            ("i1", interactive),
            ("i2", interactive),
        ]
        .into_iter()
        .enumerate()
        {
            let (line2, order) = (line.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = line2.enter(priority).await;
                order.lock().unwrap().push(name);
            }));
            // Each one takes its place before the next arrives: behind the holder, n + 1 now.
            crate::testing::eventually(name, || line.ahead(last) == n + 2).await;
        }
        assert_eq!(line.ahead(interactive), 3, "the holder and the two interactive callers");
        assert_eq!(line.ahead(Priority::of(Class::Background)), 7);
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["i1", "i2", "s-follow", "s1", "s2", "bg"]);
    }

    #[tokio::test]
    async fn a_parked_caller_lets_higher_classes_pass_and_keeps_its_place_in_its_own() {
        let line = Arc::new(Line::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let scheduled = Priority::of(Class::Scheduled);
        let parked = line.enter(scheduled).await.park();
        let mut waiting = Vec::new();
        let last = Priority::of(Class::Background);
        for (name, priority, settled) in [
            // In line behind the parked caller; served at once; in line behind both.
            ("s2", scheduled, 2),
            ("i1", Priority::of(Class::Interactive), 2),
            ("bg", Priority::of(Class::Background), 3),
        ] {
            let (line2, order2) = (line.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = line2.enter(priority).await;
                order2.lock().unwrap().push(name);
            }));
            let served = name == "i1";
            crate::testing::eventually(name, || {
                line.ahead(last) == settled && (!served || order.lock().unwrap().contains(&name))
            })
            .await;
        }
        assert_eq!(*order.lock().unwrap(), ["i1"], "only the higher class went while it was parked");
        assert_eq!(line.ahead(scheduled), 2, "the parked caller and s2");
        drop(parked.resume().await);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["i1", "s2", "bg"]);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_line_and_never_blocks_it() {
        let line = Arc::new(Line::default());
        let first = line.enter(Priority::default()).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), line.enter(Priority::default())).await;
        assert!(gave_up.is_err());
        assert_eq!(line.ahead(Priority::default()), 1, "only the holder is left");
        drop(first);
        let _again = tokio::time::timeout(Duration::from_secs(5), line.enter(Priority::default()))
            .await
            .expect("the line is free");
    }
}
