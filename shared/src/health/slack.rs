//! Alerts in Slack, through an incoming webhook (`SLACK_WEBHOOK_SECRET`, or `SLACK_WEBHOOK_URL`
//! locally): one Block Kit message when an alert is raised and one when it is resolved, never
//! one per refresh. What was posted is kept on the alert ([`Chat`](super::alerts::Chat)), so a refresh posts only
//! what is new since the last one.
//!
//! Slack takes about one message per second per channel: a few alerts are posted in order at
//! that pace, more than [`GROUP_OVER`] at once go out as one message. A 429 is waited out (its
//! `Retry-After`, at most [`MAX_RETRY_AFTER`]) and tried once more; a 5xx or a dropped
//! connection is tried again after the next refresh, with the SNS deliveries; any other 4xx
//! (`no_service`: the webhook was revoked) is logged, kept on the alert for the console, and
//! not tried again.

use std::time::Duration;

use serde_json::{Value, json};

use super::alerts::{Alert, AlertKind, Alerts};
use crate::secret::SlackUrl;

/// Slack's pace: one message per second per channel.
pub const PACE: Duration = Duration::from_secs(1);
/// More pending messages than this are sent as one.
pub const GROUP_OVER: usize = 5;
/// The longest a 429's `Retry-After` is waited for within one delivery.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One message to post: an alert raised, or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    Raised,
    Resolved,
}

/// What is left to post, oldest first, as (index in the list, message). An episode that began
/// and ended before Slack heard of it is not posted at all.
pub fn pending(alerts: &mut Alerts) -> Vec<(usize, Post)> {
    let mut out = Vec::new();
    for (i, a) in alerts.list.iter_mut().enumerate().rev() {
        if a.chat.error.is_some() {
            continue;
        }
        match (a.cleared_at.is_some(), a.chat.raised, a.chat.resolved) {
            (false, false, _) => out.push((i, Post::Raised)),
            (true, true, false) => out.push((i, Post::Resolved)),
            (true, false, _) => (a.chat.raised, a.chat.resolved) = (true, true),
            _ => {}
        }
    }
    out
}

fn title(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::MailboxConflict => "Mailbox in conflict",
        AlertKind::MailboxStuck => "Mailbox stuck",
        AlertKind::BounceRate => "Bounce rate too high",
        AlertKind::OpenRateDrop => "Open rate collapsed",
    }
}

/// The console's page of the alert's mailbox or campaign.
fn link(console: &str, alert: &Alert) -> String {
    let subject = &alert.condition.subject;
    let page = if subject.starts_with("cam_") { "campaign" } else { "mailbox" };
    format!("{console}/#{page}/{subject}")
}

/// Slack's mrkdwn escapes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn blocks_of(alert: &Alert, post: Post, console: Option<&str>) -> Vec<Value> {
    let c = &alert.condition;
    let head = match post {
        Post::Raised => format!(":red_circle: {}: {}", title(c.kind), c.name),
        Post::Resolved => format!(":white_check_mark: Resolved: {}: {}", title(c.kind), c.name),
    };
    let mut fields = Vec::new();
    if let (Some(figure), Some(threshold)) = (c.figure, c.threshold) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Figure*\n{figure}%")}));
        fields.push(json!({"type": "mrkdwn", "text": format!("*Threshold*\n{threshold}%")}));
    }
    let when = match (post, alert.cleared_at) {
        (Post::Resolved, Some(at)) => format!("*Resolved*\n{}", at.format("%Y-%m-%d %H:%M UTC")),
        _ => format!("*Raised*\n{}", alert.raised_at.format("%Y-%m-%d %H:%M UTC")),
    };
    fields.push(json!({"type": "mrkdwn", "text": when}));
    let text = match post {
        Post::Raised => escape(&c.message),
        Post::Resolved => format!("The condition ended. It was: {}", escape(&c.message)),
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&head, 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 3000)}, "fields": fields}),
    ];
    if let Some(console) = console {
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in lemdash"},
            "url": link(console, alert),
        }]}));
    }
    blocks
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

fn fallback(alert: &Alert, post: Post) -> String {
    let c = &alert.condition;
    match post {
        Post::Raised => format!("lemdash: {}: {}", title(c.kind), c.name),
        Post::Resolved => format!("lemdash: resolved: {}: {}", title(c.kind), c.name),
    }
}

/// One alert's message.
pub fn message(alert: &Alert, post: Post, console: Option<&str>) -> Value {
    json!({"text": fallback(alert, post), "blocks": blocks_of(alert, post, console)})
}

/// Many alerts in one message: a line each, with its link (Slack allows 50 blocks).
pub fn grouped(items: &[(&Alert, Post)], console: Option<&str>) -> Value {
    let raised = items.iter().filter(|(_, p)| *p == Post::Raised).count();
    let head = format!("lemdash: {raised} alerts raised, {} resolved", items.len() - raised);
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": head}})];
    for (alert, post) in items.iter().take(45) {
        let mark = if *post == Post::Raised { ":red_circle:" } else { ":white_check_mark: resolved:" };
        let c = &alert.condition;
        let name = match console {
            Some(console) => format!("<{}|{}>", link(console, alert), escape(&c.name)),
            None => escape(&c.name),
        };
        let line = format!("{mark} *{}*: {name}\n{}", title(c.kind), escape(&c.message));
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&line, 3000)}}));
    }
    if items.len() > 45 {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("and {} more in the console", items.len() - 45)}]}));
    }
    json!({"text": head, "blocks": blocks})
}

/// How one post ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Posted,
    /// 429: wait this long, then try again.
    Later(Duration),
    /// A 4xx other than 429: Slack will not take it, ever (`404 no_service`).
    Refused(String),
    /// 5xx, a timeout, a dropped connection: try again after the next refresh.
    Failed(String),
}

/// An incoming webhook.
#[derive(Debug, Clone)]
pub struct Slack {
    http: reqwest::Client,
    url: SlackUrl,
    /// The console's address, for the buttons (`None`: messages have no button).
    console: Option<String>,
    pace: Duration,
}

impl Slack {
    pub fn new(url: SlackUrl, console: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with a timeout builds");
        Self { http, url, console, pace: PACE }
    }

    /// The same at another pace (tests).
    pub fn with_pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    async fn post(&self, body: &Value) -> Answer {
        let answer = match self.http.post(self.url.expose()).json(body).send().await {
            Ok(a) => a,
            // The error's text names the URL: only its kind is kept.
            Err(e) => {
                let kind = if e.is_timeout() { "timed out" } else { "could not connect" };
                return Answer::Failed(kind.to_owned());
            }
        };
        let status = answer.status();
        let retry_after = answer
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text: String = answer.text().await.unwrap_or_default().chars().take(100).collect();
        match status.as_u16() {
            200..=299 => Answer::Posted,
            429 => Answer::Later(Duration::from_secs(retry_after.unwrap_or(1)).min(MAX_RETRY_AFTER)),
            400..=499 => Answer::Refused(format!("HTTP {} {}", status.as_u16(), text.trim())),
            _ => Answer::Failed(format!("HTTP {} {}", status.as_u16(), text.trim())),
        }
    }

    /// One post, a 429 waited out and tried once more.
    async fn send(&self, body: &Value) -> Answer {
        match self.post(body).await {
            Answer::Later(wait) => {
                tracing::info!(wait_ms = wait.as_millis() as u64, "Slack asked to slow down");
                tokio::time::sleep(wait).await;
                match self.post(body).await {
                    Answer::Later(_) => Answer::Failed("rate limited twice".into()),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Posts what `alerts` have not told Slack yet, and keeps on each alert what was posted
    /// (the caller stores the alerts, as after the SNS deliveries).
    pub async fn deliver(&self, alerts: &mut Alerts) {
        let pending = pending(alerts);
        let console = self.console.as_deref();
        if pending.len() > GROUP_OVER {
            let items: Vec<(&Alert, Post)> = pending.iter().map(|(i, p)| (&alerts.list[*i], *p)).collect();
            let answer = self.send(&grouped(&items, console)).await;
            for (i, post) in &pending {
                settle(&mut alerts.list[*i], *post, &answer);
            }
            return;
        }
        for (n, (i, post)) in pending.iter().enumerate() {
            if n > 0 {
                tokio::time::sleep(self.pace).await;
            }
            let answer = self.send(&message(&alerts.list[*i], *post, console)).await;
            let stop = matches!(answer, Answer::Failed(_));
            settle(&mut alerts.list[*i], *post, &answer);
            if stop {
                break; // the rest waits for the next refresh, in order
            }
        }
    }
}

/// Keeps what `answer` says on `alert`.
fn settle(alert: &mut Alert, post: Post, answer: &Answer) {
    match answer {
        Answer::Posted => match post {
            Post::Raised => alert.chat.raised = true,
            Post::Resolved => alert.chat.resolved = true,
        },
        Answer::Refused(why) => {
            tracing::warn!(alert = %alert.id, error = %why, "Slack refused the alert; not tried again");
            alert.chat.error = Some(why.clone());
        }
        Answer::Failed(why) => {
            tracing::warn!(alert = %alert.id, error = %why, "Slack post failed; tried again after the next refresh");
        }
        Answer::Later(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::alerts::{Chat, Condition};
    use chrono::DateTime;

    fn alert(id: &str, subject: &str, cleared: bool, chat: Chat) -> Alert {
        Alert {
            id: id.into(),
            condition: Condition {
                kind: AlertKind::BounceRate,
                subject: subject.into(),
                name: "ana@acme.io".into(),
                figure: Some(7.5),
                threshold: Some(5.0),
                message: "ana@acme.io bounced 7.5% <of> 200: check its domain".into(),
            },
            raised_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            cleared_at: cleared.then(|| DateTime::from_timestamp(1_800_003_600, 0).unwrap()),
            delivered: true,
            chat,
        }
    }

    #[test]
    fn each_episode_is_posted_once_raised_and_once_resolved_oldest_first() {
        let posted = Chat { raised: true, ..Chat::default() };
        let mut alerts = Alerts {
            list: vec![
                alert("new", "usm_1", false, Chat::default()),
                alert("ended", "usm_2", true, posted.clone()),
                alert("told", "usm_3", false, posted.clone()),
                alert("unseen", "usm_4", true, Chat::default()),
                alert("revoked", "usm_5", false, Chat { error: Some("HTTP 404".into()), ..Chat::default() }),
            ],
        };
        assert_eq!(pending(&mut alerts), vec![(1, Post::Resolved), (0, Post::Raised)]);
        assert_eq!(alerts.list[3].chat, Chat { raised: true, resolved: true, error: None }, "never posted");
        alerts.list[0].chat.raised = true;
        alerts.list[1].chat.resolved = true;
        assert!(pending(&mut alerts).is_empty(), "nothing twice");
    }

    #[test]
    fn the_webhook_url_never_shows_in_debug_output() {
        let slack = Slack::new(SlackUrl::new("https://hooks.slack.com/services/T1/B2/SECRET"), None);
        let shown = format!("{slack:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("hooks.slack.com"), "{shown}");
    }

    #[test]
    fn a_message_names_the_subject_figure_threshold_and_links_to_its_page() {
        let a = alert("a", "usm_1", false, Chat::default());
        let m = message(&a, Post::Raised, Some("https://lemdash.example"));
        let text = m.to_string();
        assert!(text.contains("Bounce rate too high: ana@acme.io"), "{text}");
        assert!(text.contains("*Figure*\\n7.5%") && text.contains("*Threshold*\\n5%"), "{text}");
        assert!(text.contains("&lt;of&gt;"), "escaped: {text}");
        assert_eq!(m["blocks"][2]["elements"][0]["url"], "https://lemdash.example/#mailbox/usm_1");
        let r = message(&alert("a", "cam_1", true, Chat::default()), Post::Resolved, None).to_string();
        assert!(r.contains("Resolved: Bounce rate") && r.contains("2027-01-15 09:00 UTC"), "{r}");
        assert!(!r.contains("\"actions\""), "no console, no button: {r}");
        let g = grouped(&[(&a, Post::Raised), (&a, Post::Resolved)], Some("https://c"));
        assert_eq!(g["text"], "lemdash: 1 alerts raised, 1 resolved");
        assert!(g.to_string().contains("<https://c/#mailbox/usm_1|ana@acme.io>"));
    }
}
