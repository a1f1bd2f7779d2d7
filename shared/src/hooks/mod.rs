//! lemlist's webhooks: lemlist pushes each activity to a URL lemdash registered, within seconds
//! and at no API cost. A delivery is a hint, never authority: it is checked ([`receive`]),
//! kept ([`events`]), and folded into the same state and ledger the polled reads fill, where an
//! activity seen both ways counts once; the scheduled refresh still reads the feeds and repairs
//! what no hook delivered, counting it as a miss.
//!
//! - here: which event types lemdash registers and what each is for; the path tokens and
//!   secrets, minted at random and stored only as hashes; what the sync state keeps of them;
//! - [`receive`]: the checks of one delivery, in order, each rejection with its reason;
//! - [`events`]: where accepted deliveries are kept before they are folded;
//! - [`dynamo`]: that store in DynamoDB, the deployment's.

pub mod dynamo;
pub mod events;
pub mod receive;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::activity::Feed;

/// What an event type is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// An activity the figures count: folded into its campaign's sets and its day's counts.
    Activity(Feed),
    /// A lead of the campaign was paused, resumed or stopped: the lead-derived figures of that
    /// campaign may have changed, and only a read of its leads says how.
    Campaign,
    /// Something happened to a mailbox that no activity shows.
    Mailbox,
}

/// The event types lemdash registers, one hook (and one URL) each. Why each:
/// - `emailsSent`, `emailsOpened`, `emailsReplied`: the campaigns' three figures and the
///   mailboxes' performance, counted as the polled feeds count them;
/// - `emailsBounced`: the mailboxes' bounce rate and its alert;
/// - `paused`, `resumed`, `stopped`: lead-level changes that move `people_count`,
///   `companies_count` and `campaign_status`, which no activity carries;
/// - `lemwarmPaused`, `connectionIssue`, `sendLimitReached`, `customDomainErrors`,
///   `deliverabilityAlertTriggered`: a mailbox's state changed.
///
/// Never the lead-state groups (`contacted`, `hooked`, ...): they mix email with LinkedIn,
/// WhatsApp and calls, and the legacy figures are email only. Clicks, failures and the
/// interest events feed no figure.
pub const TYPES: [(&str, Use); 12] = [
    ("emailsSent", Use::Activity(Feed::Sent)),
    ("emailsOpened", Use::Activity(Feed::Opened)),
    ("emailsReplied", Use::Activity(Feed::Replied)),
    ("emailsBounced", Use::Activity(Feed::Bounced)),
    ("paused", Use::Campaign),
    ("resumed", Use::Campaign),
    ("stopped", Use::Campaign),
    ("lemwarmPaused", Use::Mailbox),
    ("connectionIssue", Use::Mailbox),
    ("sendLimitReached", Use::Mailbox),
    ("customDomainErrors", Use::Mailbox),
    ("deliverabilityAlertTriggered", Use::Mailbox),
];

/// What `kind` is for, when lemdash registers it.
pub fn use_of(kind: &str) -> Option<Use> {
    TYPES.iter().find(|(k, _)| *k == kind).map(|(_, u)| *u)
}

/// A polled activity new to the ledger is a miss (no hook delivered it) only when it is older
/// than this at the read's bound: deliveries take seconds, and lemlist stamps some activities up
/// to a minute and a half before it shows them.
pub const MISS_GRACE: chrono::Duration = chrono::Duration::minutes(3);

/// The path every hook's URL starts with, below the public URL.
pub const PATH: &str = "/hooks/lemlist";

/// The SHA-256 of a token or secret, in hex: all that is ever stored of either.
pub fn digest(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random value of 32 bytes, in hex.
fn random_hex() -> String {
    (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// The path token and the secret of one hook, as minted: they go to lemlist once, in the
/// create call, and are kept only as hashes. `Debug` prints neither.
pub struct Minted {
    pub token: String,
    pub secret: String,
}

impl Minted {
    pub fn new() -> Self {
        Self { token: random_hex(), secret: random_hex() }
    }
}

impl Default for Minted {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Minted { token: ***, secret: *** }")
    }
}

/// The URL of the hook of `kind` with `token`, below `public` (no trailing slash).
pub fn target_url(public: &str, token: &str, kind: &str) -> String {
    format!("{}{PATH}/{token}/{kind}", public.trim_end_matches('/'))
}

/// The token and type of a URL lemdash registered below `public`; `None` for any other URL
/// (another integration's hook, never touched).
pub fn ours<'a>(public: &str, url: &'a str) -> Option<(&'a str, &'a str)> {
    let prefix = format!("{}{PATH}/", public.trim_end_matches('/'));
    let rest = url.strip_prefix(prefix.as_str())?;
    let (token, kind) = rest.split_once('/')?;
    (!token.is_empty() && !kind.contains('/')).then_some((token, kind))
}

/// What the receiver knows of one registered hook, found by the hash of its path token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub kind: String,
    pub token_hash: String,
    pub secret_hash: String,
    /// The team whose events it takes: a delivery of another team is dropped.
    pub team_id: String,
}

/// One hook lemdash keeps, as the sync state remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub hook_id: String,
    pub token_hash: String,
    pub since: DateTime<Utc>,
}

/// What the sync state keeps of the hooks: which are registered, and what reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HooksState {
    /// By event type.
    pub kept: BTreeMap<String, Kept>,
    /// Hooks that vanished and were created again (deliveries were lost meanwhile).
    pub recreated: u64,
    /// Per type: activities a polled read found that no hook had delivered.
    pub misses: BTreeMap<String, u64>,
    /// Deliveries folded, and the last one's instant.
    pub folded: u64,
    pub last_fold: Option<DateTime<Utc>>,
}

impl HooksState {
    /// Since when the hooks of `feed` have been delivering (a polled row older than that cannot
    /// be a miss).
    pub fn since(&self, feed: Feed) -> Option<DateTime<Utc>> {
        self.kept.get(feed.kind()).map(|k| k.since)
    }
}

/// What `GET /api/sync` shows of the hooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HooksView {
    pub enabled: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off_because: Option<String>,
    /// The event types lemdash's hooks are registered for.
    pub registered: Vec<String>,
    pub recreated: u64,
    /// Per type: activities the polled reads found that no hook delivered.
    pub misses: BTreeMap<String, u64>,
    /// Delivered events folded into the figures, and when last.
    pub folded: u64,
    pub last_fold: Option<DateTime<Utc>>,
    /// What the receiver counted: deliveries, duplicates, rejections by reason, the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<events::Counters>,
    /// Campaigns and users that events marked to read again, not read yet.
    pub marked: Marked,
}

/// What events marked, waiting for a read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Marked {
    /// Campaigns whose lead export is read again in the fold (a lead paused, resumed, stopped).
    pub urgent: usize,
    /// Campaigns read again at the next refresh (sends and replies).
    pub campaigns: usize,
    pub users: usize,
}

impl HooksView {
    pub fn of(state: &HooksState, marked: Marked) -> Self {
        Self {
            marked,
            registered: state.kept.keys().cloned().collect(),
            recreated: state.recreated,
            misses: state.misses.clone(),
            folded: state.folded,
            last_fold: state.last_fold,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_pair_is_random_long_and_never_printed() {
        let (a, b) = (Minted::new(), Minted::new());
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.token, a.secret);
        assert!(!format!("{a:?}").contains(&a.token) && !format!("{a:?}").contains(&a.secret));
        assert_eq!(digest(&a.token).len(), 64);
        assert_ne!(digest(&a.token), a.token);
    }

    #[test]
    fn only_urls_below_the_public_one_are_ours() {
        let url = target_url("https://x.example/", "tok", "emailsSent");
        assert_eq!(url, "https://x.example/hooks/lemlist/tok/emailsSent");
        assert_eq!(ours("https://x.example", &url), Some(("tok", "emailsSent")));
        assert_eq!(ours("https://y.example", &url), None);
        assert_eq!(ours("https://x.example", "https://hooks.zapier.com/abc"), None);
        assert_eq!(ours("https://x.example", "https://x.example/hooks/lemlist//emailsSent"), None);
    }

    #[test]
    fn every_activity_type_is_a_feed_and_no_lead_state_group_is_used() {
        for feed in Feed::ALL {
            assert_eq!(use_of(feed.kind()), Some(Use::Activity(feed)));
        }
        for group in ["contacted", "hooked", "attracted", "warmed", "interested", "notInterested"] {
            assert_eq!(use_of(group), None);
        }
    }
}
