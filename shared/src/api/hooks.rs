//! `POST /hooks/lemlist/{token}/{type}`: lemlist's deliveries. Checked in order
//! ([`crate::hooks::receive`]), kept durably once per activity `_id` before the 2xx, counted by
//! outcome, then handed to the fold (in process here; in AWS, the events' stream). Never a 5xx
//! but when the write failed: lemlist retries those.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;

use super::response;
use crate::hooks::digest;
use crate::hooks::events::EventStore;
use crate::hooks::receive::{self, Rejection};
use crate::lemlist::Activity;
use crate::limiter::Clock;
use crate::refresh::{Folding, Refresher};

/// The receiver's route (the local runner's; see the README for the Lambda function).
pub const ROUTE: &str = "/hooks/lemlist/{token}/{kind}";

/// How long the fold waits for more events after the first (a stream's batching window).
const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Where accepted deliveries go.
#[derive(Debug, Clone)]
pub struct Receiver {
    events: Arc<dyn EventStore>,
    /// The in-process fold's queue; `None` when the store's stream feeds the fold (in AWS).
    fold: Option<mpsc::UnboundedSender<Activity>>,
    clock: Arc<dyn Clock>,
}

impl Receiver {
    /// A receiver whose events `refresher` folds in this process, in batches.
    pub fn in_process(events: Arc<dyn EventStore>, refresher: Refresher) -> Self {
        let (fold, queue) = mpsc::unbounded_channel();
        let clock = refresher.clock();
        tokio::spawn(fold_loop(refresher, queue));
        Self { events, fold: Some(fold), clock }
    }

    /// A receiver that only keeps events: the store's stream hands them to the fold (the
    /// `lemdash-hooks` function, which holds no key and calls nothing but its table).
    pub fn durable(events: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self { events, fold: None, clock }
    }

    /// The receiver's one route, with its state.
    pub fn routes(&self) -> Router {
        Router::new().route(ROUTE, axum::routing::post(delivery)).with_state(self.clone())
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_else(Utc::now)
    }
}

/// Folds what arrives, a batch at a time; while a refresh holds the key, waits and folds after
/// it (nothing is lost: the events stay queued). A lead export re-read that the debounce put
/// off is read when due, between batches.
async fn fold_loop(refresher: Refresher, mut queue: mpsc::UnboundedReceiver<Activity>) {
    let mut pending: Vec<Activity> = Vec::new();
    let mut reread: Option<tokio::time::Instant> = None;
    loop {
        if pending.is_empty() {
            let due = reread.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                got = queue.recv() => match got {
                    Some(a) => pending.push(a),
                    None => return,
                },
                _ = tokio::time::sleep_until(due), if reread.is_some() => {
                    reread = match refresher.reread_marked().await {
                        Ok(next) => next.map(|d| tokio::time::Instant::now() + d),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read marked lead exports again; at the next refresh");
                            None
                        }
                    };
                    continue;
                }
            }
        }
        tokio::time::sleep(BATCH_WINDOW).await;
        while let Ok(a) = queue.try_recv() {
            pending.push(a);
        }
        match refresher.fold_events(&pending).await {
            Ok(Folding::Busy) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(folding) => {
                tracing::info!(events = pending.len(), ?folding, "delivered events folded");
                if let Folding::Folded { reread_in_ms: Some(ms), .. } = folding {
                    reread = Some(tokio::time::Instant::now() + Duration::from_millis(ms));
                }
                pending.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, events = pending.len(), "could not fold delivered events; again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn answer(status: u16, detail: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response::json(status, json!({ "detail": detail }).to_string())
}

async fn delivery(
    State(receiver): State<Receiver>,
    Path((token, kind)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let now = receiver.now();
    let store = receiver.events.as_ref();
    let checked = match receive::within_cap(body.len()) {
        Err(rejection) => Err(rejection),
        Ok(()) => match store.registered(&digest(&token)).await {
            Ok(registered) => receive::check(registered.as_ref(), &token, &kind, &body),
            Err(e) => {
                tracing::error!(error = %e, "hook delivery: the store cannot be read");
                return answer(503, "try again");
            }
        },
    };
    let accepted = match checked {
        Ok(accepted) => accepted,
        Err(rejection) => return rejected(store, rejection, now).await,
    };
    match store.keep_new(&accepted.activity, now).await {
        Ok(true) => {
            if let Some(fold) = &receiver.fold {
                let _ = fold.send(accepted.activity);
            }
            answer(200, "ok")
        }
        Ok(false) => {
            count(store, "duplicate", now).await;
            answer(200, "ok")
        }
        Err(e) => {
            tracing::error!(error = %e, "hook delivery not kept; lemlist may send it again");
            answer(503, "try again")
        }
    }
}

async fn rejected(store: &dyn EventStore, rejection: Rejection, now: DateTime<Utc>) -> Response {
    tracing::info!(reason = rejection.as_str(), "hook delivery rejected");
    count(store, rejection.as_str(), now).await;
    match rejection.status() {
        200 => answer(200, "dropped"),
        413 => answer(413, "Payload Too Large"),
        status => answer(status, "Not Found"),
    }
}

async fn count(store: &dyn EventStore, what: &str, now: DateTime<Utc>) {
    if let Err(e) = store.count(what, now).await {
        tracing::warn!(error = %e, what, "hook counter not written");
    }
}
