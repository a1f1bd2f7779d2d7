//! The distinct leads an activity stream has shown for one campaign: all the dashboards need
//! from activities (engaged, opened and replied count leads, not messages). Folding a stream
//! into a set as it is read keeps memory at one id per lead instead of every activity row, and
//! makes re-reading an activity harmless: the incremental sync re-reads an overlap on purpose.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::lemlist::Activity;

/// The three activity types the dashboards read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stream {
    /// `emailsSent`: who was contacted (people engaged).
    Sent,
    /// `emailsOpened` with `isFirst`: one row per lead and step is enough to count the lead.
    Opened,
    /// `emailsReplied`.
    Replied,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Sent, Stream::Opened, Stream::Replied];

    /// lemlist's activity type.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Sent => "emailsSent",
            Self::Opened => "emailsOpened",
            Self::Replied => "emailsReplied",
        }
    }

    /// Only first opens are read: repeats add rows, never leads.
    pub fn first_only(self) -> bool {
        self == Self::Opened
    }

    pub fn of_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.kind() == kind)
    }
}

/// The activity types a refresh reads team-wide (from a watermark): the dashboards' three
/// streams, and `emailsBounced`, which only the mailboxes' performance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Feed {
    Sent,
    Opened,
    Replied,
    Bounced,
}

impl Feed {
    pub const ALL: [Feed; 4] = [Feed::Sent, Feed::Opened, Feed::Replied, Feed::Bounced];

    /// The dashboards' stream this feed also fills, if any.
    pub fn stream(self) -> Option<Stream> {
        match self {
            Self::Sent => Some(Stream::Sent),
            Self::Opened => Some(Stream::Opened),
            Self::Replied => Some(Stream::Replied),
            Self::Bounced => None,
        }
    }

    /// lemlist's activity type.
    pub fn kind(self) -> &'static str {
        match self.stream() {
            Some(s) => s.kind(),
            None => "emailsBounced",
        }
    }

    /// Only first opens are read (and counted).
    pub fn first_only(self) -> bool {
        self == Self::Opened
    }
}

impl From<Stream> for Feed {
    fn from(s: Stream) -> Self {
        match s {
            Stream::Sent => Self::Sent,
            Stream::Opened => Self::Opened,
            Stream::Replied => Self::Replied,
        }
    }
}

/// Distinct leads of one stream in one campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Lead ids; stored as one comma-joined string, which compresses to about the ids' entropy.
    #[serde(with = "joined")]
    leads: BTreeSet<String>,
    /// Ids of activities that carry no `leadId`: they cannot be counted by distinct lead, and
    /// the dashboards say so.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    anonymous: BTreeSet<String>,
}

impl Seen {
    pub fn add(&mut self, activity: &Activity) {
        match &activity.lead_id {
            Some(lead) => {
                if !self.leads.contains(lead) {
                    self.leads.insert(lead.clone());
                }
            }
            None => {
                self.anonymous.insert(activity.id.clone());
            }
        }
    }

    pub fn of<'a>(activities: impl IntoIterator<Item = &'a Activity>) -> Self {
        let mut seen = Self::default();
        activities.into_iter().for_each(|a| seen.add(a));
        seen
    }

    /// Adds what `other` saw.
    pub fn merge(&mut self, other: Seen) {
        self.leads.extend(other.leads);
        self.anonymous.extend(other.anonymous);
    }

    /// Adds what `other` saw; returns what was new.
    pub fn merge_new(&mut self, other: Seen) -> Seen {
        let mut new = Seen::default();
        for lead in other.leads {
            if !self.leads.contains(&lead) {
                self.leads.insert(lead.clone());
                new.leads.insert(lead);
            }
        }
        for id in other.anonymous {
            if self.anonymous.insert(id.clone()) {
                new.anonymous.insert(id);
            }
        }
        new
    }

    pub fn is_empty(&self) -> bool {
        self.leads.is_empty() && self.anonymous.is_empty()
    }

    /// Distinct leads.
    pub fn leads(&self) -> usize {
        self.leads.len()
    }

    /// Activities without a lead id.
    pub fn anonymous(&self) -> usize {
        self.anonymous.len()
    }

    pub fn lead_ids(&self) -> impl Iterator<Item = &str> {
        self.leads.iter().map(String::as_str)
    }
}

mod joined {
    use std::collections::BTreeSet;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(set.iter().map(|id| id.len() + 1).sum());
        for id in set {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(id);
        }
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let text = String::deserialize(d)?;
        Ok(text.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(id: &str, lead: Option<&str>) -> Activity {
        Activity::sample(id, "emailsSent", lead, None)
    }

    #[test]
    fn counts_leads_once_however_often_they_are_read() {
        let rows =
            [activity("a1", Some("lea_1")), activity("a2", Some("lea_1")), activity("a3", Some("lea_2"))];
        let mut seen = Seen::of(&rows);
        seen.merge(Seen::of(&rows[..1]));
        assert_eq!((seen.leads(), seen.anonymous()), (2, 0));
        let new = seen.merge_new(Seen::of(&[activity("a5", Some("lea_2")), activity("a6", Some("lea_3"))]));
        assert_eq!((new.lead_ids().collect::<Vec<_>>(), seen.leads()), (vec!["lea_3"], 3));
        assert!(seen.merge_new(Seen::of(&rows)).is_empty());
        seen.add(&activity("a4", None));
        seen.add(&activity("a4", None));
        assert_eq!(seen.merge_new(Seen::of(&[activity("a4", None)])), Seen::default());
        assert_eq!(seen.anonymous(), 1, "an activity without a lead is counted once by its own id");
    }

    #[test]
    fn round_trips_through_its_compact_form() {
        let seen =
            Seen::of(&[activity("a1", Some("lea_b")), activity("a2", Some("lea_a")), activity("x", None)]);
        let json = serde_json::to_value(&seen).unwrap();
        assert_eq!(json, serde_json::json!({"leads": "lea_a,lea_b", "anonymous": ["x"]}));
        assert_eq!(serde_json::from_value::<Seen>(json).unwrap(), seen);
        let empty = serde_json::to_value(Seen::default()).unwrap();
        assert_eq!(serde_json::from_value::<Seen>(empty).unwrap(), Seen::default());
        assert_eq!(Stream::of_kind("emailsOpened"), Some(Stream::Opened));
        assert_eq!(Stream::of_kind("emailsClicked"), None);
    }
}
