//! Where raised alerts go: an SNS topic in AWS (`ALERT_TOPIC_ARN`), standard error under
//! `lemdash serve`, and the logs always.

use std::fmt;

use super::alerts::Alert;

/// Delivers raised alerts.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Publishes `alert`; an error is kept on the alert and retried after the next refresh.
    async fn publish(&self, alert: &Alert) -> Result<(), String>;
}

/// The subject line of an alert's notification. SNS wants at most 100 printable ASCII
/// characters: anything else in a name becomes `?`, and a long line is cut.
pub fn subject(alert: &Alert) -> String {
    let what = match alert.condition.kind {
        super::alerts::AlertKind::MailboxConflict => "mailbox in conflict",
        super::alerts::AlertKind::MailboxStuck => "mailbox stuck",
        super::alerts::AlertKind::BounceRate => "bounce rate",
        super::alerts::AlertKind::OpenRateDrop => "open rate collapse",
    };
    let line = format!("lemdash: {what}: {}", alert.condition.name);
    let mut s: String =
        line.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    if s.len() > 100 {
        s.truncate(97);
        s.push_str("...");
    }
    s
}

/// Alerts go to the logs only.
#[derive(Debug, Default)]
pub struct LogOnly;

#[async_trait::async_trait]
impl Notifier for LogOnly {
    async fn publish(&self, _alert: &Alert) -> Result<(), String> {
        Ok(())
    }
}

/// Alerts printed on standard error, for a person running `lemdash serve`.
#[derive(Debug, Default)]
pub struct Print;

#[async_trait::async_trait]
impl Notifier for Print {
    async fn publish(&self, alert: &Alert) -> Result<(), String> {
        eprintln!("ALERT {}: {}", subject(alert), alert.condition.message);
        Ok(())
    }
}

/// An SNS topic: one message per alert, its subject a short line, its body the message and the
/// alert as JSON.
#[derive(Debug, Clone)]
pub struct Sns {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Sns {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        Self { client, topic_arn }
    }
}

/// The body of an alert's notification: the message for people, then the alert for machines.
pub fn body(alert: &Alert) -> String {
    let json = serde_json::to_string_pretty(alert).expect("alerts serialize");
    format!("{}\n\n{json}\n", alert.condition.message)
}

#[async_trait::async_trait]
impl Notifier for Sns {
    async fn publish(&self, alert: &Alert) -> Result<(), String> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message(body(alert))
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_sdk_sns::error::DisplayErrorContext(&e).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::alerts::{AlertKind, Condition};

    #[test]
    fn subjects_are_short_printable_ascii() {
        let alert = |name: &str| Alert {
            id: "x".into(),
            condition: Condition {
                kind: AlertKind::OpenRateDrop,
                subject: "cam_1".into(),
                name: name.into(),
                figure: None,
                threshold: None,
                message: "m".into(),
            },
            raised_at: chrono::DateTime::UNIX_EPOCH,
            cleared_at: None,
            delivered: false,
            chat: Default::default(),
        };
        assert_eq!(subject(&alert("Ünïcode\nGmbH")), "lemdash: open rate collapse: ?n?code?GmbH");
        let long = subject(&alert(&"é".repeat(200)));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with("...") && long.is_ascii());
    }
}
