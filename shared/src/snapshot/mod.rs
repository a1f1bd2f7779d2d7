//! Stored dashboards. A refresh computes both dashboards in one pass and stores each as a
//! [`Snapshot`]; the GET endpoints serve the latest one in milliseconds instead of spending
//! lemlist's budget on every page load.
//!
//! A snapshot keeps what its rows were computed from where an action can change them (the
//! mailbox facts), and the actions applied since its data was fetched ([`Patch`]): a refresh
//! that began before an action re-applies it, so the page never shows the old state again.
//!
//! Stored form: gzip-compressed JSON (about a tenth of the raw size); [`store`] splits what is
//! still too large for one DynamoDB item.

pub mod dynamo;
pub mod parts;
pub mod store;

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::activity::Performance;
use crate::dashboard::{CampaignRow, Dashboard, MailboxFacts, MailboxRow, mailboxes};
use crate::ids::{CampaignId, MailboxId};

pub use store::{Lease, MemorySnapshots, SnapshotStore, Stored};

/// One of the two dashboards: the only documents that can be served as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Board {
    Campaigns,
    Mailboxes,
}

impl Board {
    /// The two dashboards.
    pub const ALL: [Board; 2] = [Board::Campaigns, Board::Mailboxes];

    pub fn as_str(self) -> &'static str {
        Item::from(self).as_str()
    }
}

/// Which document a stored item holds: one of the two dashboards, the key's sync state
/// ([`crate::sync::SyncState`]), or its history and alerts ([`crate::health::HealthLog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Campaigns,
    Mailboxes,
    Sync,
    Health,
    /// The key's use of its budget over the last hour ([`crate::limiter::usage`]).
    Budget,
}

impl Item {
    /// The name in storage (the snapshot table's sort key).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Campaigns => "campaigns",
            Self::Mailboxes => "mailboxes",
            Self::Sync => "sync",
            Self::Health => "health",
            Self::Budget => "budget",
        }
    }
}

impl From<Board> for Item {
    fn from(board: Board) -> Self {
        match board {
            Board::Campaigns => Self::Campaigns,
            Board::Mailboxes => Self::Mailboxes,
        }
    }
}

/// A refresh's own figures, kept with what it computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshFigures {
    /// Requests sent to lemlist (retries included).
    pub calls: u64,
    /// Of which answered 429.
    pub rate_limited: u64,
    /// Of which 5xx, timeouts, dropped connections or undecodable bodies.
    pub faults: u64,
    pub duration_ms: u64,
    /// What could not be fetched, over both dashboards.
    pub missing: usize,
}

/// An action that succeeded at lemlist, as it changes the stored dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "id", rename_all = "snake_case")]
pub enum Action {
    /// `set-inactive`: the campaign is paused, so no longer running.
    CampaignPaused(CampaignId),
    LemwarmStarted(MailboxId),
    LemwarmStopped(MailboxId),
}

impl Action {
    /// The boards whose rows this action changes.
    pub fn boards(&self) -> &'static [Board] {
        match self {
            Self::CampaignPaused(_) => &Board::ALL,
            Self::LemwarmStarted(_) | Self::LemwarmStopped(_) => &[Board::Mailboxes],
        }
    }
}

/// An action and when it succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub action: Action,
}

/// Rows that an action can change in place.
pub trait Patchable: Sized {
    fn apply(rows: &mut Vec<Self>, action: &Action);
}

impl Patchable for CampaignRow {
    fn apply(rows: &mut Vec<Self>, action: &Action) {
        if let Action::CampaignPaused(id) = action {
            rows.retain(|r| r.campaign_id != id.as_str());
        }
    }
}

impl Patchable for MailboxFacts {
    fn apply(rows: &mut Vec<Self>, action: &Action) {
        match action {
            Action::CampaignPaused(id) => {
                rows.iter_mut().for_each(|f| f.busy_with.retain(|c| c != id.as_str()))
            }
            Action::LemwarmStarted(id) | Action::LemwarmStopped(id) => {
                let warming = matches!(action, Action::LemwarmStarted(_));
                rows.iter_mut().filter(|f| f.mailbox_id == id.as_str()).for_each(|f| f.warming = warming);
            }
        }
    }
}

/// One stored dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<T> {
    /// When the refresh began fetching: the state of lemlist the rows describe.
    pub computed_at: DateTime<Utc>,
    pub figures: RefreshFigures,
    /// What could not be fetched for this dashboard (empty when complete).
    pub missing: Vec<String>,
    pub rows: Vec<T>,
    /// Actions applied to `rows` after `computed_at`.
    #[serde(default)]
    pub patches: Vec<Patch>,
    /// No refresh has stored rows yet: this only keeps the actions that succeeded meanwhile,
    /// for the first refresh (which may have read lemlist before them) to apply. Never served.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placeholder: bool,
    /// Mailboxes only: the activity no mailbox could be credited with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<Performance>,
    /// When delivered events were last folded into the activity figures (later than
    /// `computed_at`: they count every delivery up to then); `None` since the refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_as_of: Option<DateTime<Utc>>,
}

impl<T> Snapshot<T> {
    /// Nothing stored yet: only what is applied before the first refresh, for it to apply.
    pub fn placeholder() -> Self {
        Self {
            computed_at: DateTime::<Utc>::UNIX_EPOCH,
            figures: RefreshFigures::default(),
            missing: vec![],
            rows: vec![],
            patches: vec![],
            placeholder: true,
            unattributed: None,
            activity_as_of: None,
        }
    }

    /// A snapshot of what a refresh that began fetching at `computed_at` computed.
    pub fn fresh(computed_at: DateTime<Utc>, figures: &RefreshFigures, dashboard: Dashboard<T>) -> Self {
        Self {
            computed_at,
            figures: figures.clone(),
            missing: dashboard.missing,
            rows: dashboard.rows,
            patches: vec![],
            placeholder: false,
            unattributed: None,
            activity_as_of: None,
        }
    }
}

impl<T: Patchable> Snapshot<T> {
    /// Applies an action that succeeded at `at`.
    pub fn patch(&mut self, patch: Patch) {
        T::apply(&mut self.rows, &patch.action);
        self.patches.push(patch);
    }

    /// Re-applies the actions of `previous` that this snapshot's fetch may have missed (those
    /// that succeeded after it began, with a second of slack for lemlist's own delay).
    pub fn carry_patches_from(&mut self, previous: &[Patch]) {
        let since = self.computed_at - chrono::Duration::seconds(1);
        for patch in previous.iter().filter(|p| p.at >= since) {
            self.patch(patch.clone());
        }
    }
}

pub type CampaignsSnapshot = Snapshot<CampaignRow>;
pub type MailboxesSnapshot = Snapshot<MailboxFacts>;

/// Why a stored snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot store unavailable: {0}")]
    Store(String),
    #[error("stored snapshot is unreadable: {0}")]
    Corrupt(String),
}

/// Compresses a snapshot for storage.
pub fn encode<T: Serialize>(snapshot: &Snapshot<T>) -> Vec<u8> {
    pack(snapshot)
}

/// Reads a stored snapshot back.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Snapshot<T>, SnapshotError> {
    unpack(bytes)
}

/// Any stored document: gzip-compressed JSON.
pub fn pack<T: Serialize>(document: &T) -> Vec<u8> {
    compress(&serde_json::to_vec(document).expect("stored documents serialize"))
}

/// Compresses a document already encoded.
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json).expect("writing to memory does not fail");
    gz.finish().expect("writing to memory does not fail")
}

/// Reads a stored document back.
pub fn unpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| SnapshotError::Corrupt(e.to_string()))
}

/// A snapshot as the GET endpoints serve it: the contract's JSON array and its validators.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub body: String,
    /// A strong validator of `body`, quoted as HTTP wants it.
    pub etag: String,
    pub computed_at: DateTime<Utc>,
    pub missing: Vec<String>,
    /// Mailboxes only: the activity no mailbox could be credited with.
    pub unattributed: Option<Performance>,
    /// When delivered events last moved the activity figures, if since `computed_at`.
    pub activity_as_of: Option<DateTime<Utc>>,
}

impl Served {
    fn new<R: Serialize>(rows: &[R], computed_at: DateTime<Utc>, missing: Vec<String>) -> Self {
        let body = serde_json::to_string(rows).expect("rows serialize");
        Self { missing, ..Self::of_body(body, computed_at) }
    }

    /// Any JSON body served with the dashboards' validators (the history and alerts views).
    pub fn of_body(body: String, computed_at: DateTime<Utc>) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            etag: format!("\"{hex}\""),
            body,
            computed_at,
            missing: vec![],
            unattributed: None,
            activity_as_of: None,
        }
    }

    /// Decodes a stored snapshot of `board` into what is served; `None` for a placeholder.
    pub fn decode(board: Board, bytes: &[u8]) -> Result<Option<Self>, SnapshotError> {
        Ok(match board {
            Board::Campaigns => {
                let s: CampaignsSnapshot = decode(bytes)?;
                let activity_as_of = s.activity_as_of;
                (!s.placeholder)
                    .then(|| Self { activity_as_of, ..Self::new(&s.rows, s.computed_at, s.missing) })
            }
            Board::Mailboxes => {
                let s: MailboxesSnapshot = decode(bytes)?;
                let rows: Vec<MailboxRow> = mailboxes::rows(&s.rows);
                let (unattributed, activity_as_of) = (s.unattributed, s.activity_as_of);
                (!s.placeholder).then(|| Self {
                    unattributed,
                    activity_as_of,
                    ..Self::new(&rows, s.computed_at, s.missing)
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{CampaignStatus, MailboxStatus};

    /// A valid id of `prefix` ending in `tail`.
    fn id<T: std::str::FromStr>(prefix: &str, tail: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        format!("{prefix}{tail:0>17}").parse().unwrap()
    }

    fn cam(tail: &str) -> CampaignId {
        id("cam_", tail)
    }

    fn usm(tail: &str) -> MailboxId {
        id("usm_", tail)
    }

    fn campaign(id: &str) -> CampaignRow {
        CampaignRow {
            campaign_id: cam(id).to_string(),
            campaign_name: format!("name {id}"),
            people_count: 3,
            companies_count: 2,
            people_engaged: 3,
            open_rate: 33.33,
            reply_rate: 0.0,
            campaign_status: CampaignStatus::Active,
            missing: vec![],
        }
    }

    fn mailbox(id: &str, warming: bool, busy_with: &[&str]) -> MailboxFacts {
        MailboxFacts {
            email: format!("{id}@x.io"),
            mailbox_id: usm(id).to_string(),
            warming,
            busy_with: busy_with.iter().map(|s| cam(s).to_string()).collect(),
            sender_of: vec!["Launch".into()],
            missing: vec![],
            performance: None,
        }
    }

    fn snapshot<T>(rows: Vec<T>, at: DateTime<Utc>) -> Snapshot<T> {
        Snapshot {
            computed_at: at,
            figures: RefreshFigures::default(),
            missing: vec![],
            rows,
            patches: vec![],
            placeholder: false,
            unattributed: None,
            activity_as_of: None,
        }
    }

    #[test]
    fn snapshots_round_trip_through_their_stored_form() {
        let s = snapshot(vec![campaign("a"), campaign("b")], Utc::now());
        let bytes = encode(&s);
        assert_eq!(decode::<CampaignRow>(&bytes).unwrap(), s);
        assert!(matches!(decode::<CampaignRow>(b"not gzip"), Err(SnapshotError::Corrupt(_))));
    }

    #[test]
    fn pausing_a_campaign_drops_its_row_and_frees_its_mailboxes() {
        let now = Utc::now();
        let mut c = snapshot(vec![campaign("a"), campaign("b")], now);
        let paused = Patch { at: now, action: Action::CampaignPaused(cam("a")) };
        c.patch(paused.clone());
        assert_eq!(c.rows.iter().map(|r| r.campaign_id.clone()).collect::<Vec<_>>(), [cam("b").to_string()]);

        let mut m = snapshot(vec![mailbox("1", false, &["a"]), mailbox("2", true, &["a", "b"])], now);
        assert_eq!(m.rows[0].row().status, MailboxStatus::InUse);
        m.patch(paused);
        assert_eq!(m.rows[0].row().status, MailboxStatus::Stuck);
        assert_eq!(m.rows[0].row().campaigns, Some(vec!["Launch".to_owned()]));
        assert_eq!(m.rows[1].row().status, MailboxStatus::Conflict, "still busy with b");
    }

    #[test]
    fn lemwarm_actions_change_only_their_mailbox() {
        let mut m = snapshot(vec![mailbox("1", false, &[]), mailbox("2", false, &[])], Utc::now());
        m.patch(Patch { at: Utc::now(), action: Action::LemwarmStarted(usm("2")) });
        let statuses: Vec<MailboxStatus> = m.rows.iter().map(|f| f.row().status).collect();
        assert_eq!(statuses, [MailboxStatus::Stuck, MailboxStatus::WarmingUp]);
        m.patch(Patch { at: Utc::now(), action: Action::LemwarmStopped(usm("2")) });
        assert!(!m.rows[1].warming);
    }

    #[test]
    fn a_refresh_re_applies_only_the_actions_it_may_have_missed() {
        let fetched_at = Utc::now();
        let old = Patch {
            at: fetched_at - chrono::Duration::seconds(30),
            action: Action::CampaignPaused(cam("a")),
        };
        let new =
            Patch { at: fetched_at + chrono::Duration::seconds(2), action: Action::CampaignPaused(cam("b")) };
        let mut fresh = snapshot(vec![campaign("a"), campaign("b")], fetched_at);
        fresh.carry_patches_from(&[old, new.clone()]);
        // a's pause happened before the fetch, so lemlist's answer already reflects it.
        assert_eq!(
            fresh.rows.iter().map(|r| r.campaign_id.clone()).collect::<Vec<_>>(),
            [cam("a").to_string()]
        );
        assert_eq!(fresh.patches, [new]);
    }

    #[test]
    fn a_placeholder_keeps_actions_for_the_first_refresh_and_is_never_served() {
        let at = Utc::now();
        let mut placeholder = snapshot(Vec::<CampaignRow>::new(), DateTime::<Utc>::UNIX_EPOCH);
        placeholder.placeholder = true;
        placeholder.patch(Patch { at, action: Action::CampaignPaused(cam("a")) });
        assert_eq!(Served::decode(Board::Campaigns, &encode(&placeholder)).unwrap(), None);
        // The first refresh began before the action: it applies it.
        let mut fresh = snapshot(vec![campaign("a"), campaign("b")], at - chrono::Duration::seconds(5));
        fresh.carry_patches_from(&placeholder.patches);
        assert_eq!(
            fresh.rows.iter().map(|r| r.campaign_id.clone()).collect::<Vec<_>>(),
            [cam("b").to_string()]
        );
        assert!(!fresh.placeholder && Served::decode(Board::Campaigns, &encode(&fresh)).unwrap().is_some());
    }

    #[test]
    fn the_served_form_is_the_contract_array_with_a_stable_etag() {
        let s = snapshot(vec![mailbox("w", true, &[]), mailbox("s", false, &[])], Utc::now());
        let served = Served::decode(Board::Mailboxes, &encode(&s)).unwrap().unwrap();
        let rows: Vec<serde_json::Value> = serde_json::from_str(&served.body).unwrap();
        assert_eq!(rows[0]["status"], "stuck", "served in the dashboard's order");
        assert!(rows[0].get("busy_with").is_none(), "facts stay internal");
        let again = Served::decode(Board::Mailboxes, &encode(&s)).unwrap().unwrap();
        assert_eq!(served.etag, again.etag);
        assert!(served.etag.starts_with('"') && served.etag.len() == 22);
    }
}
