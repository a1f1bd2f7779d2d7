//! The stored dashboards' writes: a refresh's fresh snapshots, and the actions applied to them
//! at once. Both go through [`Refresher::update`], the one retry loop of conditional snapshot
//! writes: read, change, write if nobody wrote meanwhile, else again.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Refresher;
use crate::dashboard;
use crate::health;
use crate::snapshot::{Action, Board, Patch, Patchable, Snapshot, SnapshotError, decode, encode};
use crate::sync::SyncState;

/// How many times a conditional snapshot write is retried after losing to another writer.
const SAVE_ATTEMPTS: usize = 5;

impl Refresher {
    /// Writes what `change` makes of the stored snapshot of `board` (`None` when there is
    /// none, or it cannot be read and `replace_unreadable`), retrying while other writers
    /// come first.
    async fn update<T, F>(
        &self,
        board: Board,
        replace_unreadable: bool,
        mut change: F,
    ) -> Result<(), SnapshotError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<Snapshot<T>>) -> Snapshot<T>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let stored = self.store.load(self.key.as_str(), board.into()).await?;
            let current = match stored.as_ref().map(|s| decode::<T>(&s.bytes)).transpose() {
                Ok(current) => current,
                Err(e) if replace_unreadable => {
                    tracing::warn!(error = %e, "replacing an unreadable snapshot");
                    None
                }
                Err(e) => return Err(e),
            };
            let expected = stored.map(|s| s.version);
            if self.store.save(self.key.as_str(), board.into(), encode(&change(current)), expected).await? {
                return Ok(());
            }
        }
        Err(SnapshotError::Store(format!("{} snapshot: kept losing to other writers", board.as_str())))
    }

    /// Stores a fresh snapshot, carrying over the actions the previous one recorded since the
    /// fresh data was fetched.
    pub(super) async fn save<T>(&self, board: Board, fresh: Snapshot<T>) -> Result<(), SnapshotError>
    where
        T: Patchable + Serialize + DeserializeOwned + Clone,
    {
        self.update(board, true, |previous: Option<Snapshot<T>>| {
            let mut snapshot = fresh.clone();
            if let Some(previous) = previous {
                snapshot.carry_patches_from(&previous.patches);
            }
            snapshot
        })
        .await
    }

    /// Applies an action that succeeded at lemlist to the stored snapshots at once.
    pub async fn apply(&self, action: Action) -> Result<(), SnapshotError> {
        let patch = Patch { at: self.now(), action };
        for board in patch.action.boards() {
            match board {
                Board::Campaigns => self.patch::<dashboard::CampaignRow>(*board, &patch).await?,
                Board::Mailboxes => self.patch::<dashboard::MailboxFacts>(*board, &patch).await?,
            }
        }
        Ok(())
    }

    /// The activity figures of `campaigns`' rows from the state's sets (delivered events).
    pub(super) async fn refold_campaigns(
        &self,
        state: &SyncState,
        campaigns: &BTreeSet<String>,
    ) -> Result<(), SnapshotError> {
        self.refold_rows(
            campaigns,
            |row| {
                if let Some(t) = state.campaigns.get(&row.campaign_id) {
                    dashboard::campaigns::refold(row, &t.sent, &t.opened, &t.replied);
                }
            },
            state.hooks.last_fold,
        )
        .await
    }

    /// The lead-derived figures of `campaigns`' rows from the state's lead figures (lead exports
    /// read again for events). The mailboxes' statuses follow at the next refresh.
    pub(super) async fn refold_leads(
        &self,
        state: &SyncState,
        campaigns: &BTreeSet<String>,
    ) -> Result<(), SnapshotError> {
        self.refold_rows(
            campaigns,
            |row| {
                if let Some(cached) = state.leads.get(&row.campaign_id) {
                    dashboard::campaigns::refold_leads(row, Some(&cached.figures));
                }
            },
            None,
        )
        .await
    }

    /// Applies `refold` to the stored campaigns rows of `campaigns`; `activity_as_of`, when
    /// given, is what the activity figures count up to now.
    async fn refold_rows(
        &self,
        campaigns: &BTreeSet<String>,
        refold: impl Fn(&mut dashboard::CampaignRow),
        activity_as_of: Option<DateTime<Utc>>,
    ) -> Result<(), SnapshotError> {
        self.update(Board::Campaigns, false, |stored: Option<Snapshot<dashboard::CampaignRow>>| {
            let mut snapshot = stored.unwrap_or_else(Snapshot::placeholder);
            snapshot.rows.iter_mut().filter(|r| campaigns.contains(&r.campaign_id)).for_each(&refold);
            snapshot.activity_as_of = activity_as_of.or(snapshot.activity_as_of);
            snapshot
        })
        .await
    }

    /// Every mailbox's performance from the state's counts, credited as the last refresh knew
    /// the senders (delivered events); the rows as stored then (none before a first refresh).
    pub(super) async fn refold_mailboxes(
        &self,
        state: &SyncState,
        today: NaiveDate,
    ) -> Result<Vec<dashboard::MailboxFacts>, SnapshotError> {
        let Some(senders) = &state.senders else { return Ok(vec![]) };
        let mut rows = Vec::new();
        self.update(Board::Mailboxes, false, |stored: Option<Snapshot<dashboard::MailboxFacts>>| {
            let mut snapshot = stored.unwrap_or_else(Snapshot::placeholder);
            if !snapshot.placeholder {
                let unattributed = health::refill(&mut snapshot.rows, &state.ledger, senders, today);
                snapshot.unattributed = Some(unattributed);
                snapshot.activity_as_of = state.hooks.last_fold;
                rows.clone_from(&snapshot.rows);
            }
            snapshot
        })
        .await?;
        Ok(rows)
    }

    async fn patch<T>(&self, board: Board, patch: &Patch) -> Result<(), SnapshotError>
    where
        T: Patchable + Serialize + DeserializeOwned,
    {
        self.update(board, false, |stored: Option<Snapshot<T>>| {
            // Nothing stored yet: the first refresh may have read lemlist before this action;
            // keep it for that refresh to apply.
            let mut snapshot = stored.unwrap_or_else(Snapshot::placeholder);
            snapshot.patch(patch.clone());
            snapshot
        })
        .await
    }
}
