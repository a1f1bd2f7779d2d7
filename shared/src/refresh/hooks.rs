//! What the refresher does with lemlist's webhooks: it keeps lemdash's hooks registered (one
//! `GET /hooks` per refresh, a create for each that vanished), and it folds delivered events
//! into the state and the stored dashboards without a single lemlist call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{LeaseGuard, RefreshError, Refresher};
use crate::activity::Feed;
use crate::activity::ledger::KEPT_DAYS;
use crate::dashboard::leads::LeadFigures;
use crate::health;
use crate::hooks::events::EventStore;
use crate::hooks::{self, Kept, Minted, Registered, Use};
use crate::ids::CampaignId;
use crate::lemlist::{Activity, LemlistClient, LemlistError};
use crate::limiter::Class;
use crate::sync::SyncState;
use crate::sync::stored::Stamp;

/// How long a stream's batch waits for a refresh to give the key's lease up: a steady refresh
/// holds it for seconds; a first sync's step for minutes, and its own reads count these events.
const FOLD_WAIT: Duration = Duration::from_secs(60);

/// Where lemlist can reach lemdash, and where deliveries are kept.
#[derive(Debug, Clone)]
pub struct HookSetup {
    /// `LEMDASH_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    pub events: Arc<dyn EventStore>,
}

/// How long an urgent mark waits before its campaign's lead export is read again, after the
/// mark and after the last read: a person pausing leads one after another, or a burst of
/// replies, costs one read per campaign, and the activity figures never wait for it.
pub const REREAD_DEBOUNCE: Duration = Duration::from_secs(20);

/// What folding a batch of delivered events did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "folding", rename_all = "snake_case")]
pub enum Folding {
    /// Folded: the campaigns whose rows changed, whether the day counts did, the lead exports
    /// read again for urgent marks, and when the next of those is due (debounced).
    Folded {
        campaigns: usize,
        counts: bool,
        leads_read: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        reread_in_ms: Option<u64>,
    },
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
        self.record_usage().await;
        result
    }

    /// [`Self::fold_events`] for a stream's batch: while a refresh holds the key, tries again
    /// every second until `stop` (at most [`FOLD_WAIT`]). Still busy then: an error, so that the
    /// stream hands the batch over again (folding it twice changes nothing). A lead export whose
    /// re-read the debounce put off is not waited for: the first batch folded once it is due
    /// reads it, or else the next refresh.
    pub async fn fold_delivered(
        &self,
        events: &[Activity],
        stop: Option<Instant>,
    ) -> Result<Folding, RefreshError> {
        let until = Instant::now() + FOLD_WAIT;
        let until = stop.map_or(until, |s| s.min(until));
        loop {
            match self.fold_events(events).await? {
                Folding::Busy if Instant::now() < until => tokio::time::sleep(Duration::from_secs(1)).await,
                Folding::Busy => return Err(RefreshError::Busy),
                folding => {
                    tracing::info!(events = events.len(), ?folding, "delivered events folded");
                    return Ok(folding);
                }
            }
        }
    }

    async fn fold_holding_lease(&self, events: &[Activity]) -> Result<Folding, RefreshError> {
        let Some((mut stamp, mut state)) = self.sync_state().await? else { return Ok(Folding::NoState) };
        let now = self.now();
        let overlap = chrono::Duration::from_std(self.sync.overlap).unwrap_or_default();
        let folded = fold_into(&mut state, events, now, overlap);
        if folded.campaigns.is_empty() && !folded.counts && !folded.marked {
            return Ok(Folding::Unchanged);
        }
        state.hooks.folded += events.len() as u64;
        state.hooks.last_fold = Some(now);
        stamp = self.checkpoint(&mut state, &stamp).await?;
        if !folded.campaigns.is_empty() {
            self.refold_campaigns(&state, &folded.campaigns).await?;
        }
        if folded.counts && state.counts_pending_since().is_none() {
            let rows = self.refold_mailboxes(&state, now.date_naive()).await?;
            self.raise_rate_alerts(&state, &rows, now).await?;
        }
        let (leads_read, next) = self.reread_holding_lease(&mut state, &stamp).await?;
        Ok(Folding::Folded {
            campaigns: folded.campaigns.len(),
            counts: folded.counts,
            leads_read,
            reread_in_ms: next.map(|d| d.as_millis() as u64),
        })
    }

    /// The bounce and open-rate alerts that the delivered events' counts raise, judged at once
    /// and delivered like a refresh's (clearing waits for a refresh: see [`health::raise_rates`]).
    async fn raise_rate_alerts(
        &self,
        state: &SyncState,
        rows: &[crate::dashboard::MailboxFacts],
        now: DateTime<Utc>,
    ) -> Result<(), RefreshError> {
        let Some(senders) = state.senders.as_ref().filter(|_| !rows.is_empty()) else { return Ok(()) };
        let names = state
            .details
            .iter()
            .map(|(id, d)| (id.clone(), crate::dashboard::display_name(d.detail.name.as_deref())))
            .collect();
        let inputs = health::Inputs {
            at: now,
            ledger: Some(&state.ledger),
            feeds_complete: true,
            senders,
            campaigns: &[],
            names: &names,
            thresholds: self.thresholds,
        };
        let holding = health::rates_holding(rows, inputs);
        if holding.is_empty() {
            // Nothing holds, so nothing to raise: the stored alerts are not even read.
            return Ok(());
        }
        let (base, mut log) = self.health_or_new().await?;
        let changes = health::raise(&mut log, holding, now);
        if changes.raised.is_empty() {
            return Ok(());
        }
        self.deliver(&changes, &mut log).await;
        if !health::stored::save(self.store.as_ref(), self.key.as_str(), &log, &base).await? {
            tracing::warn!("the alerts changed under this fold; the next refresh judges them again");
        }
        Ok(())
    }

    /// Reads again the lead exports that urgent marks ask for and the debounce allows; when the
    /// next is due, if one waits. Busy (a refresh holds the key, and reads them itself): in a
    /// second.
    pub async fn reread_marked(&self) -> Result<Option<Duration>, RefreshError> {
        let Some(lease) = LeaseGuard::acquire(self.store.clone(), self.key.as_str(), self.lease).await?
        else {
            return Ok(Some(Duration::from_secs(1)));
        };
        let result = match self.sync_state().await {
            Ok(Some((stamp, mut state))) => {
                self.reread_holding_lease(&mut state, &stamp).await.map(|(_, next)| next)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        };
        lease.release().await;
        result
    }

    /// The re-reads of [`Self::reread_marked`], the lease held: each a single lead export at
    /// the scheduled class, folded into the state and the campaigns' rows. A read that fails
    /// keeps its mark for the next refresh.
    async fn reread_holding_lease(
        &self,
        state: &mut SyncState,
        stamp: &Stamp,
    ) -> Result<(usize, Option<Duration>), RefreshError> {
        let now = self.now();
        let debounce = chrono::Duration::from_std(REREAD_DEBOUNCE).unwrap_or_default();
        let mut due = Vec::new();
        let mut next: Option<chrono::Duration> = None;
        for (id, mark) in state.marks.campaigns.iter().filter(|(_, m)| m.urgent) {
            // A campaign lemdash does not follow yet: the next refresh reads it whole.
            let Some(cached) = state.leads.get(id) else { continue };
            let wait = mark.at.max(cached.read_at) + debounce - now;
            if wait <= chrono::Duration::zero() {
                due.push(id.clone());
            } else {
                next = Some(next.map_or(wait, |n| n.min(wait)));
            }
        }
        if due.is_empty() {
            return Ok((0, next.and_then(|n| n.to_std().ok())));
        }
        let client = self.client.with_class(Class::Scheduled);
        let mut read = BTreeSet::new();
        for id in &due {
            let Ok(cid) = id.parse::<CampaignId>() else { continue };
            match client.export_leads(&cid).await {
                Ok(leads) => {
                    if let Some(cached) = state.leads.get_mut(id) {
                        (cached.figures, cached.read_at) = (LeadFigures::of(&leads), now);
                    }
                    if state.marks.campaigns.get(id).is_some_and(|m| m.at <= now) {
                        state.marks.campaigns.remove(id);
                    }
                    read.insert(id.clone());
                }
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "lead export not read again; the next refresh reads it")
                }
            }
        }
        if !read.is_empty() {
            self.checkpoint(state, stamp).await?;
            self.refold_leads(state, &read).await?;
        }
        Ok((read.len(), next.and_then(|n| n.to_std().ok())))
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

/// What [`fold_into`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// The campaigns whose sets changed.
    pub campaigns: BTreeSet<String>,
    /// Some day's counts changed.
    pub counts: bool,
    /// A mark was added: something no event carries may have changed.
    pub marked: bool,
}

/// Folds `events` into `state` as the polled feeds would: only the activity types the figures
/// use, only first opens. An event older than the oldest watermark less `overlap` is left out:
/// the polled reads counted everything up to there and no longer keep those ids, so a replay
/// (or a very late delivery) would count it twice; so is one without a readable date (the
/// polled reads count those apart).
///
/// Events also mark, at `now`, what to read again: a lead paused, resumed or stopped, or a
/// reply, marks its campaign urgently; a send marks it for the next refresh; a mailbox signal
/// marks the sender's user. An event no later than the campaign's (or user's) last read marks
/// nothing: that read already saw it.
pub fn fold_into(
    state: &mut SyncState,
    events: &[Activity],
    now: DateTime<Utc>,
    overlap: chrono::Duration,
) -> Folded {
    let kept = now - chrono::Duration::days(KEPT_DAYS + 1);
    let horizon = state.watermarks.values().min().map_or(kept, |w| (*w - overlap).max(kept));
    let mut folded = Folded::default();
    for activity in events {
        let Some(used) = hooks::use_of(&activity.kind) else { continue };
        let Ok(at) = DateTime::parse_from_rfc3339(&activity.created_at) else { continue };
        let at = at.with_timezone(&Utc);
        folded.marked |= mark(state, used, activity, at, now);
        let Use::Activity(feed) = used else { continue };
        if (feed.first_only() && activity.is_first != Some(true)) || at < horizon {
            continue;
        }
        let done = state.fold(feed, activity);
        folded.campaigns.extend(done.campaign);
        folded.counts |= done.day.is_some();
    }
    folded
}

/// Marks what `activity` (of `used`, created `at`) says may have changed; true when a mark is
/// new.
fn mark(
    state: &mut SyncState,
    used: Use,
    activity: &Activity,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let urgent = match used {
        // A reply ends the lead's sequence: its state moves, at once.
        Use::Campaign | Use::Activity(Feed::Replied) => true,
        // A send moves a lead to done only at its sequence's last step, which the event does
        // not say: the next refresh reads the campaign (a send is a third of all activity).
        Use::Activity(Feed::Sent) => false,
        Use::Mailbox => {
            let Some(user) = activity.send_user_id.as_deref() else { return false };
            if state.users.get(user).is_some_and(|u| at <= u.read_at) || state.marks.users.contains_key(user)
            {
                return false;
            }
            state.marks.user(user, now);
            return true;
        }
        Use::Activity(_) => return false,
    };
    let Some(campaign) = activity.campaign_id.as_deref() else { return false };
    if state.leads.get(campaign).is_some_and(|l| at <= l.read_at) {
        return false;
    }
    let before = state.marks.campaigns.get(campaign).copied();
    state.marks.campaign(campaign, now, urgent);
    before != state.marks.campaigns.get(campaign).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{CachedLeads, Mark};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn event(id: &str, kind: &str, campaign: &str, when: i64) -> Activity {
        let mut a = Activity::sample(id, kind, Some("lea_1"), Some(campaign));
        a.created_at = at(when).to_rfc3339();
        a.send_user_id = Some("usr_1".into());
        a
    }

    #[test]
    fn events_mark_what_no_event_carries_and_an_event_a_read_already_saw_marks_nothing() {
        let mut state = SyncState::default();
        let cached = CachedLeads { figures: LeadFigures::default(), read_at: at(100), status: None };
        state.leads.insert("cam_a".into(), cached);
        let zero = chrono::Duration::zero();
        let old = fold_into(&mut state, &[event("act_1", "paused", "cam_a", 90)], at(120), zero);
        assert!(!old.marked, "the read at 100 saw a pause at 90");
        let paused = fold_into(&mut state, &[event("act_2", "paused", "cam_a", 110)], at(120), zero);
        assert!(paused.marked && paused.campaigns.is_empty() && !paused.counts);
        assert_eq!(state.marks.campaigns["cam_a"], Mark { at: at(120), urgent: true });
        let again = fold_into(&mut state, &[event("act_3", "resumed", "cam_a", 111)], at(121), zero);
        assert!(!again.marked, "already marked urgently");
        let sent = fold_into(&mut state, &[event("act_4", "emailsSent", "cam_b", 112)], at(122), zero);
        assert!(sent.marked);
        assert_eq!(state.marks.campaigns["cam_b"], Mark { at: at(122), urgent: false });
        let mailbox = fold_into(&mut state, &[event("act_5", "lemwarmPaused", "cam_b", 113)], at(123), zero);
        assert!(mailbox.marked);
        assert_eq!(state.marks.users["usr_1"], at(123));
        let reply = fold_into(&mut state, &[event("act_7", "emailsReplied", "cam_d", 113)], at(123), zero);
        assert!(reply.marked && state.marks.campaigns["cam_d"].urgent, "a reply ends a sequence");
        let open = fold_into(&mut state, &[event("act_6", "emailsOpened", "cam_c", 114)], at(124), zero);
        assert!(!open.marked && !state.marks.campaigns.contains_key("cam_c"), "an open changes no lead");
    }
}
