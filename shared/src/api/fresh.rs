//! A dashboard as fresh as the request asks and its budget allows: the latest snapshot, or one
//! refreshed first when asked (`?refresh=true`) or when there is none yet. One service that
//! says how it answered; the handler only turns that into headers.

use std::time::{Duration, Instant};

use crate::config::Trigger;
use crate::lemlist::LemlistClient;
use crate::limiter::Class;
use crate::refresh::{Outcome, Refresher};
use crate::snapshot::{Board, Served};

use super::ApiError;

/// How often a request waiting for a refresh that another process runs looks at the store.
const POLL: Duration = Duration::from_millis(250);

/// How a `?refresh=true` was answered (the `x-lemdash-refresh` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    /// This request's refresh computed the snapshot served.
    Computed,
    /// A refresh was already running; the request waited for it.
    Joined,
    /// The refresh function was asked; its snapshot is served.
    Requested,
    /// The newest snapshot is younger than `FORCED_REFRESH_MIN_SECS`: served as it is.
    Recent,
    /// The refresh outlived the request's budget; the previous snapshot is served.
    Pending,
}

impl Forced {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Computed => "computed",
            Self::Joined => "joined",
            Self::Requested => "requested",
            Self::Recent => "recent",
            Self::Pending => "pending",
        }
    }
}

/// A dashboard request's answer: the snapshot served and, when the request forced a refresh,
/// how that went.
#[derive(Debug)]
pub struct Answered {
    pub served: Served,
    pub forced: Option<Forced>,
}

/// A refresh raced against its request's deadline and the store.
enum Raced<T> {
    /// The refresh ended first.
    Done(T),
    /// The request is answered before it ended.
    Answered(Box<(Option<Served>, Forced)>),
}

/// The on-demand refresh of one key's dashboards.
#[derive(Debug, Clone)]
pub struct OnDemand {
    pub(super) refresher: Refresher,
    /// For the `Retry-After` of a first computation: how many calls wait for the budget.
    pub(super) client: LemlistClient,
    pub(super) trigger: Trigger,
    /// How long one request may take in all (API Gateway gives about 29 s).
    pub(super) budget: Duration,
    /// How old the newest snapshot must be for `?refresh=true` to compute a new one.
    pub(super) forced_refresh_min: Duration,
}

impl OnDemand {
    /// `board` for a request that `forced` a refresh or not.
    pub async fn answer(&self, board: Board, forced: bool) -> Result<Answered, ApiError> {
        let deadline = Instant::now() + self.budget;
        let mut served = self.refresher.latest(board).await?;
        let now = self.refresher.now();
        let age = |s: &Served| (now - s.computed_at).to_std().unwrap_or_default();
        let mut how = None;
        if forced && served.as_ref().is_some_and(|s| age(s) < self.forced_refresh_min) {
            // A forced refresh is not free: at most one per FORCED_REFRESH_MIN_SECS per key.
            how = Some(Forced::Recent);
        } else if forced || served.is_none() {
            let seen = served.as_ref().map(|s| s.computed_at);
            let (newer, started) = self.refresh_and_wait(board, seen, deadline).await?;
            how = Some(if newer.is_some() { started } else { Forced::Pending });
            served = newer.or(served);
        }
        match served {
            Some(served) => Ok(Answered { served, forced: how.filter(|_| forced) }),
            None => {
                let waiting = self.client.stats().waiting;
                Err(ApiError::NotReady { retry_after: if waiting > 0 { waiting / 10 + 2 } else { 15 } })
            }
        }
    }

    /// Starts a refresh as configured (or joins the one running) and waits until `deadline`
    /// for a snapshot of `board` newer than `seen`; says how the refresh came about.
    async fn refresh_and_wait(
        &self,
        board: Board,
        seen: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
    ) -> Result<(Option<Served>, Forced), ApiError> {
        // Started by a request: a person waits for it.
        let outcome = match self.trigger {
            Trigger::Table => {
                self.refresher.request().await?;
                return self.wait_for_newer(board, seen, deadline, Forced::Requested).await;
            }
            Trigger::Inline => {
                // Dropped when answered: nothing of it runs after the response (the next one
                // carries on from its last checkpoint).
                let refresh = self.refresher.run_as(Class::Interactive);
                match self.first_of(refresh, board, seen, deadline).await? {
                    Raced::Done(outcome) => outcome,
                    Raced::Answered(answer) => return Ok(*answer),
                }
            }
            Trigger::InProcess => {
                // The refresh carries on in this process, which outlives the request.
                let refresh = async {
                    self.spawn()
                        .await
                        .map_err(|e| ApiError::Internal(format!("the refresh task failed: {e}")))
                };
                match self.first_of(refresh, board, seen, deadline).await? {
                    Raced::Done(outcome) => outcome?,
                    Raced::Answered(answer) => return Ok(*answer),
                }
            }
        };
        match outcome? {
            Outcome::Refreshed(_) => Ok((self.refresher.latest(board).await?, Forced::Computed)),
            Outcome::AlreadyRunning => self.wait_for_newer(board, seen, deadline, Forced::Joined).await,
            // A sync from scratch carries on in the background.
            Outcome::Continuing(_) => Ok((None, Forced::Pending)),
        }
    }

    /// Waits for `refresh` until `deadline`; a cold page (nothing `seen`) is answered as soon
    /// as the refresh stores a first snapshot, which a first sync does before it ends.
    async fn first_of<T>(
        &self,
        refresh: impl std::future::Future<Output = T>,
        board: Board,
        seen: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
    ) -> Result<Raced<T>, ApiError> {
        tokio::pin!(refresh);
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                outcome = &mut refresh => return Ok(Raced::Done(outcome)),
                _ = tokio::time::sleep_until(deadline.into()) => return Ok(Raced::Answered(Box::new((None, Forced::Pending)))),
                _ = poll.tick(), if seen.is_none() => {
                    if let Some(s) = self.refresher.latest(board).await? {
                        return Ok(Raced::Answered(Box::new((Some(s), Forced::Computed))));
                    }
                }
            }
        }
    }

    /// Looks at the store until `deadline` for a snapshot of `board` newer than `seen` (the
    /// refresh runs elsewhere: another request's, or the refresh function).
    async fn wait_for_newer(
        &self,
        board: Board,
        seen: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
        how: Forced,
    ) -> Result<(Option<Served>, Forced), ApiError> {
        loop {
            if let Some(s) = self.refresher.latest(board).await?
                && seen.is_none_or(|t| s.computed_at > t)
            {
                return Ok((Some(s), how));
            }
            if Instant::now() + POLL > deadline {
                return Ok((None, how));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts a refresh after an action could not be applied to the stored dashboards: spawned
    /// in a process that outlives its requests, asked of the refresh function otherwise (a
    /// Lambda function without a table leaves it to the next request).
    pub(super) async fn start(&self) -> Result<(), ApiError> {
        match self.trigger {
            Trigger::Table => Ok(self.refresher.request().await?),
            Trigger::InProcess => {
                drop(self.spawn());
                Ok(())
            }
            Trigger::Inline => Ok(()),
        }
    }

    /// A refresh in this process, which goes on when its handle is dropped (only for a process
    /// that outlives its requests: [`Trigger::InProcess`]).
    fn spawn(&self) -> tokio::task::JoinHandle<Result<Outcome, crate::refresh::RefreshError>> {
        let refresher = self.refresher.clone();
        // Started by a request: a person waits for it.
        tokio::spawn(async move { refresher.run_as(Class::Interactive).await })
    }
}
