//! What invokes the refresh function, and what it answers.

use serde::Serialize;

use super::Folding;
use crate::hooks::dynamo::activity_of_image;
use crate::lemlist::Activity;
use crate::snapshot::RefreshFigures;
use crate::sync::Progress;

/// What invoked the refresh function.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The EventBridge schedule (or a manual invocation): always refresh.
    Scheduled,
    /// Requests written to the snapshot table (its stream's records): the latest was made at
    /// `at_ms`. Already satisfied when both snapshots were fetched after it.
    Requested { at_ms: i64 },
    /// Events the receiver kept (the events table's stream): folded, without a lemlist call.
    Delivered(Vec<Activity>),
    /// Stream records that are not requests (a snapshot or lease written, an item expired):
    /// nothing to do, and above all no refresh, whose own writes would start another.
    Ignored,
}

impl Invocation {
    /// Reads the event: a batch of stream records is a delivery when its records are kept
    /// events, a request when one of them carries `requested_at_ms`, and otherwise ignored;
    /// anything else (an EventBridge event, `{}`) is a scheduled refresh.
    pub fn of(event: &serde_json::Value) -> Self {
        let Some(records) = event["Records"].as_array() else { return Self::Scheduled };
        let delivered: Vec<Activity> = records
            .iter()
            .filter(|r| r["eventSource"] == "aws:dynamodb" && r["eventName"] == "INSERT")
            .filter_map(|r| activity_of_image(&r["dynamodb"]["NewImage"]))
            .collect();
        if !delivered.is_empty() {
            return Self::Delivered(delivered);
        }
        let requested = records
            .iter()
            .filter(|r| r["eventSource"] == "aws:dynamodb")
            .filter_map(|r| r["dynamodb"]["NewImage"]["requested_at_ms"]["N"].as_str()?.parse::<i64>().ok())
            .max();
        match requested {
            Some(at_ms) => Self::Requested { at_ms },
            None => Self::Ignored,
        }
    }
}

/// What the refresh function did, as it answers its invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Report {
    Refreshed(RefreshFigures),
    AlreadyRunning,
    /// A sync from scratch saved its progress before the invocation's deadline and asked for a
    /// continuation.
    Continuing(Progress),
    /// Every request was made before the stored snapshots were fetched.
    UpToDate,
    /// Delivered events were folded (or left to the next refresh: see [`Folding`]).
    Folded {
        events: usize,
        folding: Folding,
    },
    /// The event asked for nothing.
    Ignored,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_records_are_requests_and_anything_else_is_the_schedule() {
        let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(Invocation::of(&scheduled), Invocation::Scheduled);
        assert_eq!(Invocation::of(&json!({})), Invocation::Scheduled);
        let record = |at: &str| {
            json!({"eventSource": "aws:dynamodb", "eventName": "MODIFY",
                   "dynamodb": {"NewImage": {"pk": {"S": "lemlist#0123"}, "sk": {"S": "request"},
                                             "requested_at_ms": {"N": at}}}})
        };
        let stream = json!({"Records": [record("1700000000100"), record("1700000000900"), {"eventSource": "aws:sqs"}]});
        assert_eq!(Invocation::of(&stream), Invocation::Requested { at_ms: 1_700_000_000_900 });
        let snapshot_written = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "MODIFY",
            "dynamodb": {"NewImage": {"pk": {"S": "lemlist#0123"}, "sk": {"S": "campaigns"}}}}]});
        assert_eq!(
            Invocation::of(&snapshot_written),
            Invocation::Ignored,
            "a refresh's own writes start nothing"
        );
    }

    #[test]
    fn inserted_events_are_deliveries_to_fold() {
        let event = |id: &str, name: &str| {
            let activity = json!({"_id": id, "type": "emailsOpened", "createdAt": "2026-11-30T10:00:00.000Z",
                                  "campaignId": "cam_1", "leadId": "lea_1", "isFirst": true});
            json!({"eventSource": "aws:dynamodb", "eventName": name,
                   "dynamodb": {"NewImage": {"pk": {"S": format!("event#{id}")},
                                             "activity": {"S": activity.to_string()}}}})
        };
        let batch = json!({"Records": [event("act_1", "INSERT"), event("act_2", "INSERT"), event("act_3", "MODIFY")]});
        let Invocation::Delivered(activities) = Invocation::of(&batch) else { panic!("a delivery") };
        let ids: Vec<&str> = activities.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["act_1", "act_2"], "insertions only: a rewritten item is no new event");
        assert_eq!(activities[0].campaign_id.as_deref(), Some("cam_1"));
    }

    #[test]
    fn reports_say_what_happened() {
        let r = serde_json::to_value(Report::Refreshed(RefreshFigures { calls: 42, ..Default::default() }))
            .unwrap();
        assert_eq!((r["outcome"].as_str(), r["calls"].as_u64()), (Some("refreshed"), Some(42)));
        assert_eq!(serde_json::to_value(Report::UpToDate).unwrap(), json!({"outcome": "up_to_date"}));
    }
}
