//! What lemlist returns, decoded tolerantly: every field the dashboards do not strictly need is
//! optional, unknown fields are ignored, counters that are absent are 0, and the free-form parts
//! (lead custom variables, extra activity keys) are kept.
//!
//! Ids in responses stay plain strings: a response is data about lemlist, and one odd id must
//! not make a whole page undecodable. Ids the client sends are typed ([`crate::ids`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `null` decodes like an absent field (lemlist sends both).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One entry of `GET /campaigns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummary {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
}

/// `GET /campaigns` answers either a bare array or `{campaigns, pagination}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum CampaignPage {
    Wrapped {
        campaigns: Vec<CampaignSummary>,
        #[serde(default)]
        pagination: Option<Pagination>,
    },
    Bare(Vec<CampaignSummary>),
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pagination {
    #[serde(default)]
    pub current_page: Option<u64>,
    #[serde(default)]
    pub next_page: Option<u64>,
    #[serde(default)]
    pub total_page: Option<u64>,
}

/// `GET /campaigns/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignDetail {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub senders: Vec<CampaignSender>,
}

/// A sender of a campaign: the only link from a campaign to a user and a mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSender {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub send_user_mailbox_id: Option<String>,
}

/// One row of `GET /campaigns/{id}/export/leads?format=json`. Custom variables are kept in
/// `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    #[serde(rename = "_id", default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub state_system: Option<String>,
    #[serde(default)]
    pub last_state: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One row of `GET /activities?version=v2`. Extra keys (lead variables and the many optional
/// fields lemlist adds) are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub lead_id: Option<String>,
    #[serde(default)]
    pub is_first: Option<bool>,
    #[serde(default)]
    pub send_user_id: Option<String>,
    #[serde(default)]
    pub send_user_email: Option<String>,
    #[serde(default)]
    pub send_user_mailbox_id: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
impl Activity {
    /// A row of `kind` for the unit tests: its id, lead and campaign, nothing else.
    pub(crate) fn sample(id: &str, kind: &str, lead: Option<&str>, campaign: Option<&str>) -> Self {
        Self {
            id: id.into(),
            kind: kind.into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            campaign_id: campaign.map(str::to_owned),
            lead_id: lead.map(str::to_owned),
            is_first: None,
            send_user_id: None,
            send_user_email: None,
            send_user_mailbox_id: None,
            extra: Default::default(),
        }
    }
}

/// `GET /users/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mailboxes: Vec<Mailbox>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mailbox {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lemwarm: Lemwarm,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lemlist: MailboxLimits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lemwarm {
    #[serde(default, deserialize_with = "null_as_default")]
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxLimits {
    #[serde(default)]
    pub email_limit: Option<u32>,
}

/// `GET /team?version=v2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_ids: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<TeamMember>,
}

/// One entry of `GET /hooks`: any integration's hook on the team (the secret is never returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub target_url: Option<String>,
    /// The one event type it is for; `None`: every event.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    pub user_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn campaign_page_accepts_both_shapes() {
        let bare: CampaignPage = serde_json::from_value(json!([{"_id": "cam_a", "name": "A"}])).unwrap();
        assert!(matches!(bare, CampaignPage::Bare(ref v) if v.len() == 1));
        let wrapped: CampaignPage = serde_json::from_value(json!({
            "campaigns": [{"_id": "cam_a", "status": "running", "labels": null, "hasError": true}],
            "pagination": {"totalRecords": 1, "currentPage": 1, "nextPage": null, "totalPage": 1}
        }))
        .unwrap();
        match wrapped {
            CampaignPage::Wrapped { campaigns, pagination } => {
                assert_eq!(campaigns[0].status.as_deref(), Some("running"));
                assert!(campaigns[0].labels.is_empty());
                let p = pagination.unwrap();
                assert_eq!((p.current_page, p.next_page, p.total_page), (Some(1), None, Some(1)));
            }
            CampaignPage::Bare(_) => panic!("expected the wrapped shape"),
        }
    }

    #[test]
    fn lead_keeps_custom_variables() {
        let lead: Lead = serde_json::from_value(json!({
            "_id": "lea_1", "companyName": " Acme ", "state": "paused", "Persona": "IT", "score": 3
        }))
        .unwrap();
        assert_eq!(lead.company_name.as_deref(), Some(" Acme "));
        assert_eq!(lead.extra.get("Persona"), Some(&json!("IT")));
        assert_eq!(lead.extra.get("score"), Some(&json!(3)));
        assert!(lead.state_system.is_none());
    }

    #[test]
    fn mailbox_without_lemwarm_or_provider() {
        let u: User = serde_json::from_value(json!({
            "_id": "usr_1", "mailboxes": [{"_id": "usm_1", "lemwarm": null}, {"_id": "usm_2", "email": "a@b.c", "lemwarm": {"active": true}}]
        }))
        .unwrap();
        assert!(!u.mailboxes[0].lemwarm.active);
        assert!(u.mailboxes[1].lemwarm.active);
        assert!(u.mailboxes[0].provider.is_none());
    }
}
