//! The right to send. Every lemlist request first asks one [`PermitSource`]; the client does not
//! know whether the budget is kept by nobody ([`Unlimited`]), by this process ([`StrictPacer`]),
//! or shared by every invocation through DynamoDB (a later adapter behind the same trait).
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

/// A source of permission to send one request to lemlist with one API key.
#[async_trait::async_trait]
pub trait PermitSource: Send + Sync + fmt::Debug {
    /// Waits until one request may be sent. Fails at once, without waiting, when the permit
    /// could only be granted after `deadline`.
    async fn acquire(&self, deadline: Option<Instant>) -> Result<(), PermitError>;

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
    async fn acquire(&self, _deadline: Option<Instant>) -> Result<(), PermitError> {
        Ok(())
    }

    async fn pause_until(&self, _resume_at: SystemTime) {}
}

/// The permit source for one API key, as configured: the DynamoDB-backed shared limiter when
/// a table is configured, otherwise the in-process strict pacer.
pub async fn for_key(
    config: &crate::config::LimiterConfig,
    key: &crate::secret::ApiKey,
) -> Result<std::sync::Arc<dyn PermitSource>, StoreError> {
    let Some(table) = &config.table else {
        tracing::info!("lemlist limiter: in-process pacer (no LIMITER_TABLE)");
        return Ok(std::sync::Arc::new(StrictPacer::lemlist()));
    };
    let client = dynamo::client_from_env().await;
    if config.local_endpoint.is_some() {
        dynamo::create_table_if_missing(&client, table).await?;
    }
    tracing::info!(table, key = %key.fingerprint(), "lemlist limiter: shared through DynamoDB");
    let store = dynamo::DynamoStore::new(client, table.clone());
    let clock = std::sync::Arc::new(SystemClock::default());
    Ok(std::sync::Arc::new(SharedLimiter::new(store, key.fingerprint(), clock, config.settings)))
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

/// Converts a wall-clock instant into this process's monotonic clock.
pub(crate) fn instant_for(at: SystemTime) -> Instant {
    let now_wall = SystemTime::now();
    let now = Instant::now();
    match at.duration_since(now_wall) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}
