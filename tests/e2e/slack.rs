//! Alerts in Slack, through the real refresh and a local endpoint that answers as Slack's
//! incoming webhooks do: each episode posted once raised and once resolved, in order at one
//! message a second (or grouped), a 429 waited out, a revoked webhook (404 `no_service`) kept
//! on the alert and not retried.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::config::{SyncConfig, slack_url};
use lemdash_shared::health::alerts::{Alert, Thresholds};
use lemdash_shared::health::notify::LogOnly;
use lemdash_shared::health::slack::{GROUP_OVER, Slack};
use lemdash_shared::refresh::Refresher;
use lemdash_shared::snapshot::MemorySnapshots;
use lemdash_tests::app::key;
use lemdash_tests::clock::MovedClock;
use lemdash_tests::slack::{Reply, SlackHook};
use lemdash_tests::truth;
use lemlist_sim::data::epoch;
use lemlist_sim::{LimitMode, Profile, Settings};

use crate::support::{sim, unpaced_client};
use crate::sync::refresh;

const CONSOLE: &str = "http://console.example";

async fn alerts(r: &Refresher) -> Vec<Alert> {
    r.health().await.unwrap().map(|(_, log)| log.alerts.list).unwrap_or_default()
}

fn texts(posts: &[lemdash_tests::slack::Post]) -> Vec<String> {
    posts.iter().map(|p| p.body["text"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn alerts_reach_slack_once_per_episode_in_order_at_its_pace_and_a_revoked_hook_is_not_retried() {
    let sim = sim(Profile::M, 66, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let clock = MovedClock::of(&sim);
    clock.set(epoch() + chrono::Duration::days(40) + chrono::Duration::hours(10));
    let hook = SlackHook::start().await;
    hook.script(&[Reply::RateLimited(1)]);
    let client = unpaced_client(&sim);
    let sync = SyncConfig { full_resync_every: Duration::from_secs(60 * 86_400), ..SyncConfig::default() };
    let slack = Slack::new(slack_url(&hook.url).unwrap(), Some(CONSOLE.to_owned()));
    let r =
        Refresher::new(client.clone(), Arc::new(MemorySnapshots::default()), key(), Duration::from_secs(30))
            .with_sync(sync)
            .with_clock(clock)
            .with_alerts(Thresholds::default(), Arc::new(LogOnly))
            .with_slack(slack);

    // The first refresh raises the team's stuck and conflicting mailboxes.
    refresh(&r).await;
    let raised = alerts(&r).await;
    assert!(!raised.is_empty());
    let posts = hook.posts();
    assert_eq!(posts[0].status, 429, "the first post was asked to wait");
    assert!(posts[1].at - posts[0].at >= Duration::from_millis(950), "and waited Retry-After");
    assert!(posts[1..].iter().all(|p| p.status == 200));
    if raised.len() > GROUP_OVER {
        assert_eq!(posts.len(), 2, "many alerts at once: one message");
        assert_eq!(posts[1].body["text"], format!("lemdash: {} alerts raised, 0 resolved", raised.len()));
    } else {
        // Oldest first, one message each, a second apart.
        let want: Vec<String> = raised.iter().rev().map(|a| format!("lemdash: {}", &texts_of(a))).collect();
        assert_eq!(texts(&posts[1..]), want);
        assert!(posts[1..].windows(2).all(|w| w[1].at - w[0].at >= Duration::from_millis(950)));
    }
    assert!(raised.iter().all(|a| a.chat.raised && a.chat.error.is_none()));

    // Nothing new: nothing posted.
    refresh(&r).await;
    let seen = hook.posts().len();
    assert_eq!(seen, posts.len(), "one message per episode, not one per refresh");

    // A conflict: lemwarm started on a mailbox an active campaign sends from.
    let team = sim.team();
    let in_use = truth::mailboxes_dashboard(&team).into_iter().find(|m| m.status == "in use").unwrap();
    let id = in_use.mailbox_id.clone().unwrap();
    client.start_lemwarm(&id.parse().unwrap()).await.unwrap();
    refresh(&r).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), seen + 1);
    let message = &posts[seen].body;
    assert_eq!(message["text"], format!("lemdash: Mailbox in conflict: {}", in_use.email));
    let blocks = message["blocks"].to_string();
    assert!(blocks.contains(&format!("pause lemwarm on {}", in_use.email)), "what to do: {blocks}");
    let button = &message["blocks"][2]["elements"][0];
    assert_eq!(button["url"], format!("{CONSOLE}/#mailbox/{id}"));

    // It ends: one "resolved".
    client.pause_lemwarm(&id.parse().unwrap()).await.unwrap();
    refresh(&r).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), seen + 2);
    assert_eq!(
        posts[seen + 1].body["text"],
        format!("lemdash: resolved: Mailbox in conflict: {}", in_use.email)
    );
    refresh(&r).await;
    assert_eq!(hook.posts().len(), seen + 2, "resolved once");

    // The webhook is revoked: the next alert's post is refused, kept, and not tried again.
    hook.otherwise(Reply::NoService);
    client.start_lemwarm(&id.parse().unwrap()).await.unwrap();
    refresh(&r).await;
    let posts = hook.posts();
    assert_eq!((posts.len(), posts.last().unwrap().status), (seen + 3, 404));
    let now = alerts(&r).await;
    let open = now.iter().find(|a| a.condition.subject == id && a.cleared_at.is_none()).unwrap();
    assert_eq!(open.chat.error.as_deref(), Some("HTTP 404 no_service"));
    refresh(&r).await;
    refresh(&r).await;
    assert_eq!(hook.posts().len(), seen + 3, "a 4xx is not retried");
}

/// An alert's fallback line after `lemdash: `.
fn texts_of(a: &Alert) -> String {
    let title = match a.condition.kind {
        lemdash_shared::health::alerts::AlertKind::MailboxConflict => "Mailbox in conflict",
        lemdash_shared::health::alerts::AlertKind::MailboxStuck => "Mailbox stuck",
        lemdash_shared::health::alerts::AlertKind::BounceRate => "Bounce rate too high",
        lemdash_shared::health::alerts::AlertKind::OpenRateDrop => "Open rate collapsed",
    };
    format!("{title}: {}", a.condition.name)
}
