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
mod pacer;
mod shared;
mod store;

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

pub use clock::{Clock, SystemClock};
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

/// Where a caller joins a process's line of callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// A request that starts new work: it queues behind everyone already waiting.
    #[default]
    Normal,
    /// A request that continues work under way (the next page of a list, a retry): it goes
    /// ahead of the normal callers still waiting. Chains of dependent calls then finish early
    /// and independent calls fill the end, instead of a chain's last pages trailing alone.
    Urgent,
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

/// A caller's place in a process's line of waiting callers: counts who is ahead on entry and
/// leaves the line when dropped, however the wait ends.
pub(crate) struct InLine<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InLine<'a> {
    /// Joins the line; returns how many callers were already in it.
    pub(crate) fn join(line: &'a std::sync::atomic::AtomicUsize) -> (usize, Self) {
        (line.fetch_add(1, std::sync::atomic::Ordering::SeqCst), Self(line))
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A process's line of callers, in two classes. Normal callers first queue behind each other,
/// so at most one of them waits for the head at a time; urgent callers queue for the head
/// directly and so pass every normal caller but that one. Both queues are fair (FIFO).
#[derive(Debug, Default)]
pub(crate) struct Line {
    normal: tokio::sync::Mutex<()>,
    head: tokio::sync::Mutex<()>,
}

/// The head of a [`Line`]: held while its owner is served; dropping it lets the next one in.
pub(crate) struct Turn<'a> {
    _head: tokio::sync::MutexGuard<'a, ()>,
    _normal: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Line {
    pub(crate) async fn enter(&self, priority: Priority) -> Turn<'_> {
        let normal = match priority {
            Priority::Normal => Some(self.normal.lock().await),
            Priority::Urgent => None,
        };
        Turn { _head: self.head.lock().await, _normal: normal }
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

    use super::{Line, Priority};

    #[tokio::test]
    async fn urgent_callers_pass_the_normal_ones_still_waiting() {
        let line = Arc::new(Line::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = line.enter(Priority::Normal).await;
        let mut waiting = Vec::new();
        for (name, priority) in [("n1", Priority::Normal), ("n2", Priority::Normal), ("u1", Priority::Urgent)]
        {
            let (line, order) = (line.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = line.enter(priority).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            // Let each one take its place before the next arrives.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        // The normal callers queued behind the head's holder; u1 went straight to the head.
        assert_eq!(*order.lock().unwrap(), ["u1", "n1", "n2"]);
    }
}
