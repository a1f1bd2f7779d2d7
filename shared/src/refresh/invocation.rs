//! What invokes the refresh function, and what it answers.

use serde::Serialize;

use crate::snapshot::RefreshFigures;
use crate::sync::Progress;

/// What invoked the refresh function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// The EventBridge schedule (or a manual invocation): always refresh.
    Scheduled,
    /// Requests written to the snapshot table (its stream's records): the latest was made at
    /// `at_ms`. Already satisfied when both snapshots were fetched after it.
    Requested { at_ms: i64 },
    /// Stream records that are not requests (a snapshot or lease written, an item expired):
    /// nothing to do, and above all no refresh, whose own writes would start another.
    Ignored,
}

impl Invocation {
    /// Reads the event: a batch of stream records is a request when one of them carries
    /// `requested_at_ms`, and otherwise ignored; anything else (an EventBridge event, `{}`) is a
    /// scheduled refresh.
    pub fn of(event: &serde_json::Value) -> Self {
        let Some(records) = event["Records"].as_array() else { return Self::Scheduled };
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
    fn reports_say_what_happened() {
        let r = serde_json::to_value(Report::Refreshed(RefreshFigures { calls: 42, ..Default::default() }))
            .unwrap();
        assert_eq!((r["outcome"].as_str(), r["calls"].as_u64()), (Some("refreshed"), Some(42)));
        assert_eq!(serde_json::to_value(Report::UpToDate).unwrap(), json!({"outcome": "up_to_date"}));
    }
}
