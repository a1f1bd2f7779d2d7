//! What the refresher does with lemlist's webhooks: it keeps lemdash's hooks registered (one
//! `GET /hooks` per refresh, a create for each that vanished), and it folds delivered events
//! into the state and the stored dashboards without a single lemlist call.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{LeaseGuard, RefreshError, Refresher};
use crate::activity::ledger::KEPT_DAYS;
use crate::hooks::events::EventStore;
use crate::hooks::{self, Kept, Minted, Registered, Use};
use crate::lemlist::{Activity, LemlistClient, LemlistError};
use crate::sync::SyncState;

/// How long a stream's batch waits for a refresh to give the key's lease up: a steady refresh
/// holds it for seconds; a first sync's step for minutes, and its own reads count these events.
const FOLD_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where lemlist can reach lemdash, and where deliveries are kept.
#[derive(Debug, Clone)]
pub struct HookSetup {
    /// `LEMDASH_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    pub events: Arc<dyn EventStore>,
}

/// What folding a batch of delivered events did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "folding", rename_all = "snake_case")]
pub enum Folding {
    /// Folded: the campaigns whose rows changed, and whether the day counts did.
    Folded { campaigns: usize, counts: bool },
    /// Nothing new in them (duplicates, or types that carry no figure).
    Unchanged,
    /// A refresh holds the key: fold again after it (it may have read them itself).
    Busy,
    /// No state yet: the first sync reads these activities itself.
    NoState,
}

impl Refresher {
    /// With webhooks.
    pub fn with_hooks(mut self, setup: HookSetup) -> Self {
        self.hooks = Some(setup);
        self
    }

    /// Without webhooks, for `reason` (shown by `GET /api/sync`).
    pub fn without_hooks(mut self, reason: &'static str) -> Self {
        (self.hooks, self.hooks_off) = (None, reason);
        self
    }

    /// Folds delivered events into the sync state, then the campaigns' activity figures and the
    /// mailboxes' performance into the stored dashboards. The fold is the polled reads' own
    /// ([`SyncState::fold`]): an activity already counted, whichever way it came, changes
    /// nothing, and the order of events does not matter.
    pub async fn fold_events(&self, events: &[Activity]) -> Result<Folding, RefreshError> {
        let Some(lease) = LeaseGuard::acquire(self.store.clone(), self.key.as_str(), self.lease).await?
        else {
            return Ok(Folding::Busy);
        };
        let result = self.fold_holding_lease(events).await;
        lease.release().await;
        result
    }

    /// [`Self::fold_events`] for a stream's batch: while a refresh holds the key, tries again
    /// every second until `stop` (at most [`FOLD_WAIT`]). Still busy then: an error, so that the
    /// stream hands the batch over again (folding it twice changes nothing).
    pub async fn fold_delivered(
        &self,
        events: &[Activity],
        stop: Option<std::time::Instant>,
    ) -> Result<Folding, RefreshError> {
        let until = std::time::Instant::now() + FOLD_WAIT;
        let until = stop.map_or(until, |s| s.min(until));
        loop {
            match self.fold_events(events).await? {
                Folding::Busy if std::time::Instant::now() < until => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Folding::Busy => return Err(RefreshError::Busy),
                folding => {
                    tracing::info!(events = events.len(), ?folding, "delivered events folded");
                    return Ok(folding);
                }
            }
        }
    }

    async fn fold_holding_lease(&self, events: &[Activity]) -> Result<Folding, RefreshError> {
        let Some((stamp, mut state)) = self.sync_state().await? else { return Ok(Folding::NoState) };
        let now = self.now();
        let overlap = chrono::Duration::from_std(self.sync.overlap).unwrap_or_default();
        let (campaigns, counts) = fold_into(&mut state, events, now, overlap);
        if campaigns.is_empty() && !counts {
            return Ok(Folding::Unchanged);
        }
        state.hooks.folded += events.len() as u64;
        state.hooks.last_fold = Some(now);
        self.checkpoint(&mut state, &stamp).await?;
        if !campaigns.is_empty() {
            self.refold_campaigns(&state, &campaigns).await?;
        }
        if counts && state.counts_pending_since().is_none() {
            self.refold_mailboxes(&state, now.date_naive()).await?;
        }
        Ok(Folding::Folded { campaigns: campaigns.len(), counts })
    }

    /// Keeps lemdash's hooks registered: lists the team's hooks once; a hook of lemdash's that
    /// vanished is created again (and counted); one under lemdash's URL whose token the state
    /// does not know (a leftover) is deleted; other integrations' hooks are never touched.
    /// A failure here leaves polling as it is: the figures never depend on hooks.
    pub(super) async fn reconcile_hooks(
        &self,
        client: &LemlistClient,
        team_id: &str,
        state: &mut SyncState,
    ) -> Result<(), LemlistError> {
        let Some(setup) = &self.hooks else { return Ok(()) };
        let listed = client.hooks().await?;
        let ours: Vec<(&str, &str, &str)> = listed
            .iter()
            .filter_map(|h| {
                let (token, kind) = hooks::ours(&setup.public_url, h.target_url.as_deref()?)?;
                Some((h.id.as_str(), token, kind))
            })
            .collect();
        for (kind, _) in hooks::TYPES {
            let kept = state.hooks.kept.get(kind).cloned();
            let alive = |id: &str, token: &str| {
                kept.as_ref().is_some_and(|k| k.hook_id == id && k.token_hash == hooks::digest(token))
            };
            // Alive at lemlist and known to the receiver (a receiver that lost its registry,
            // a restarted local runner's, would refuse every delivery).
            let known = match &kept {
                Some(k) => setup.events.registered(&k.token_hash).await.map_err(store_error)?.is_some(),
                None => false,
            };
            if known && ours.iter().any(|(id, token, k)| *k == kind && alive(id, token)) {
                continue;
            }
            for (id, token, _) in ours.iter().filter(|(_, _, k)| *k == kind) {
                client.delete_hook(id).await?;
                setup.events.unregister(&hooks::digest(token)).await.map_err(store_error)?;
            }
            if let Some(old) = &kept {
                tracing::warn!(
                    kind,
                    "a hook of lemdash's vanished; deliveries since were lost: creating it again"
                );
                state.hooks.recreated += 1;
                setup.events.unregister(&old.token_hash).await.map_err(store_error)?;
                state.hooks.kept.remove(kind);
            }
            let minted = Minted::new();
            let registered = Registered {
                kind: kind.to_owned(),
                token_hash: hooks::digest(&minted.token),
                secret_hash: hooks::digest(&minted.secret),
                team_id: team_id.to_owned(),
            };
            // Registered before lemlist knows the URL: its first delivery may come at once.
            setup.events.register(&registered).await.map_err(store_error)?;
            let url = hooks::target_url(&setup.public_url, &minted.token, kind);
            let hook_id = match client.create_hook(&url, kind, &minted.secret).await {
                Ok(hook) => hook.id,
                // The create reached lemlist but its answer was lost: the hook is there.
                Err(LemlistError::Status { status: 409, .. }) => {
                    match client.hooks().await?.into_iter().find(|h| h.target_url.as_deref() == Some(&url)) {
                        Some(hook) => hook.id,
                        None => continue,
                    }
                }
                Err(e) => {
                    setup.events.unregister(&registered.token_hash).await.map_err(store_error)?;
                    return Err(e);
                }
            };
            let since = self.now();
            state
                .hooks
                .kept
                .insert(kind.to_owned(), Kept { hook_id, token_hash: registered.token_hash, since });
        }
        Ok(())
    }
}

fn store_error(e: crate::snapshot::SnapshotError) -> LemlistError {
    LemlistError::Transport { endpoint: "hooks store", message: e.to_string() }
}

/// Folds `events` into `state` as the polled feeds would: only the activity types the figures
/// use, only first opens. An event older than the oldest watermark less `overlap` is left out:
/// the polled reads counted everything up to there and no longer keep those ids, so a replay
/// (or a very late delivery) would count it twice; so is one without a readable date (the
/// polled reads count those apart). The campaigns whose sets changed, and whether any day's
/// counts did.
pub fn fold_into(
    state: &mut SyncState,
    events: &[Activity],
    now: DateTime<Utc>,
    overlap: chrono::Duration,
) -> (BTreeSet<String>, bool) {
    let kept = now - chrono::Duration::days(KEPT_DAYS + 1);
    let horizon = state.watermarks.values().min().map_or(kept, |w| (*w - overlap).max(kept));
    let (mut campaigns, mut counts) = (BTreeSet::new(), false);
    for activity in events {
        let Some(Use::Activity(feed)) = hooks::use_of(&activity.kind) else { continue };
        if feed.first_only() && activity.is_first != Some(true) {
            continue;
        }
        let Ok(at) = DateTime::parse_from_rfc3339(&activity.created_at) else { continue };
        if at.with_timezone(&Utc) < horizon {
            continue;
        }
        let folded = state.fold(feed, activity);
        campaigns.extend(folded.campaign);
        counts |= folded.day.is_some();
    }
    (campaigns, counts)
}
