//! Mailbox health: per-mailbox performance equal to the ground truth after a first sync and
//! after live bursts; three simulated days of history served by both history endpoints; a
//! scripted scenario that raises exactly its alerts, once each, clears them, and publishes them
//! through the SNS adapter to a local endpoint that records each request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lemdash_shared::api::Api;
use lemdash_shared::config::SyncConfig;
use lemdash_shared::health::alerts::{Alert, AlertKind, Thresholds};
use lemdash_shared::health::notify::{LogOnly, Notifier, Sns};
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::refresh::Refresher;
use lemdash_shared::snapshot::{Board, MemorySnapshots};
use lemdash_tests::app::key;
use lemdash_tests::clock::MovedClock;
use lemdash_tests::truth;
use lemlist_sim::data::{SenderFields, Team, epoch};
use lemlist_sim::{LimitMode, Profile, Settings};
use serde_json::Value;

use crate::support::{serve, sim, unpaced_client};
use crate::sync::{exact, refresh};

const DAY: chrono::Duration = chrono::Duration::days(1);

fn refresher(
    client: &LemlistClient,
    clock: Arc<MovedClock>,
    thresholds: Thresholds,
    notifier: Arc<dyn Notifier>,
) -> Refresher {
    // No re-sync from scratch while the scenarios move the clock by days.
    let sync = SyncConfig { full_resync_every: Duration::from_secs(60 * 86_400), ..SyncConfig::default() };
    Refresher::new(client.clone(), Arc::new(MemorySnapshots::default()), key(), Duration::from_secs(30))
        .with_sync(sync)
        .with_clock(clock)
        .with_alerts(thresholds, notifier)
}

/// The campaigns each mailbox was credited with activity from, over the 30 days to `at`.
fn campaigns_per_mailbox(team: &Team, at: DateTime<Utc>) -> BTreeMap<String, BTreeSet<String>> {
    let who = truth::Attribution::new(team);
    let from = at.date_naive() - chrono::Duration::days(29);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in team.activities.iter().filter(|a| a.created_at <= at && a.created_at.date_naive() >= from) {
        if let Some(m) = who.of(a) {
            out.entry(m).or_default().insert(a.campaign_id.clone());
        }
    }
    out
}

#[tokio::test]
async fn per_mailbox_performance_equals_the_truth_after_a_first_sync_and_live_bursts() {
    let (mut email_only, mut single_unnamed, mut bounced) = (false, false, false);
    for (profile, seed) in [(Profile::S, 61), (Profile::M, 62), (Profile::L, 63)] {
        let sim = sim(profile, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
        // Two hours after the generated history ends: its last 30 days are in the windows.
        let clock = MovedClock::of(&sim);
        clock.set(epoch() + chrono::Duration::hours(2));
        let r = refresher(&unpaced_client(&sim), clock.clone(), Thresholds::default(), Arc::new(LogOnly));
        let first = refresh(&r).await;
        exact(&sim, &r).await.unwrap_or_else(|e| panic!("{profile:?}, first sync: {e}"));

        // The awkward cases are there, and lemdash got them right (the rows are exact).
        let team = sim.team();
        let at = r.latest(Board::Mailboxes).await.unwrap().unwrap().computed_at;
        let (by, unattributed) = truth::performance(&team, at);
        assert!(by.values().any(|p| p.month.sent == 0), "{profile:?}: a mailbox with no sends");
        bounced |= by.values().any(|p| p.month.sent > 0 && p.month.bounced > 0);
        let several = campaigns_per_mailbox(&team, at);
        assert!(
            several.values().any(|c| c.len() >= 2),
            "{profile:?}: a mailbox sending for several campaigns"
        );
        let in_window =
            |a: &&lemlist_sim::data::Activity| a.created_at.date_naive() >= at.date_naive() - DAY * 29;
        email_only |= team
            .activities
            .iter()
            .filter(in_window)
            .any(|a| a.send_user_mailbox_id.is_none() && a.send_user_email.is_some());
        single_unnamed |= team.campaigns.iter().any(|c| {
            c.fields == SenderFields::Neither
                && c.senders.len() == 1
                && team.activities.iter().filter(in_window).any(|a| a.campaign_id == c.id)
        });
        let served = r.latest(Board::Mailboxes).await.unwrap().unwrap();
        let got = serde_json::to_value(served.unattributed.expect("the unattributed total")).unwrap();
        assert_eq!(got, serde_json::to_value(unattributed).unwrap(), "{profile:?}: unattributed");

        for round in 1..=4 {
            let applied = sim.burst(60);
            refresh(&r).await;
            exact(&sim, &r)
                .await
                .unwrap_or_else(|e| panic!("{profile:?}, round {round} after {applied:?}: {e}"));
        }
        println!(
            "{profile:?}: first sync with 30 days of counts {} calls; per-mailbox performance exact after it and 4 live bursts",
            first.calls
        );
    }
    assert!(bounced, "bounces were counted");
    assert!(email_only, "activities with only sendUserEmail were counted");
    assert!(single_unnamed, "activities naming no sender were credited to their campaign's single sender");
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn three_simulated_days_give_three_history_points_on_both_endpoints() {
    let sim = sim(Profile::S, 64, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let clock = MovedClock::of(&sim);
    let client = unpaced_client(&sim);
    let r = refresher(&client, clock.clone(), Thresholds::default(), Arc::new(LogOnly));
    let config = lemdash_tests::app::config(Duration::from_secs(30));
    let base = serve(Api::new(client.clone(), r.clone(), &config.http, &config.snapshots)).await;
    let http = reqwest::Client::new();

    // Noon on three days in a row, each after a burst of that day's activity.
    let days: Vec<DateTime<Utc>> =
        (0..3).map(|d| epoch() + DAY * (3 + d) + chrono::Duration::hours(12)).collect();
    let mut truths: Vec<(Team, DateTime<Utc>)> = Vec::new();
    for day in &days {
        clock.set(*day);
        if !truths.is_empty() {
            sim.burst(80);
        }
        refresh(&r).await;
        exact(&sim, &r).await.unwrap();
        let at = r.latest(Board::Campaigns).await.unwrap().unwrap().computed_at;
        truths.push((sim.team(), at));
    }

    // A campaign running on all three days, and the mailbox that sent most.
    let running = |t: &Team| {
        t.campaigns.iter().filter(|c| c.status == "running").map(|c| c.id.clone()).collect::<BTreeSet<_>>()
    };
    let always: BTreeSet<String> = truths.iter().map(|(t, _)| running(t)).reduce(|a, b| &a & &b).unwrap();
    let campaign = always.iter().next().expect("a campaign running all three days").clone();
    let (last, last_at) = truths.last().unwrap();
    let mailbox = truth::mailboxes_at(last, *last_at)
        .into_iter()
        .filter_map(|row| row.mailbox_id)
        .max_by_key(|id| truths.iter().map(|(t, at)| truth::day_window(t, *at, id).sent).sum::<u64>())
        .unwrap();

    let points = get(&http, &format!("{base}/api/campaigns/{campaign}/history")).await;
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    for (point, (team, at)) in points.iter().zip(&truths) {
        let row = truth::campaigns_dashboard(team).into_iter().find(|r| r.campaign_id == campaign).unwrap();
        let mut want = serde_json::to_value(&row).unwrap();
        let want = want.as_object_mut().unwrap();
        want.remove("campaign_id");
        want.remove("campaign_name");
        want.insert("date".into(), at.date_naive().to_string().into());
        assert_eq!(point, &Value::Object(want.clone()));
    }

    let url = format!("{base}/api/mailboxes/{mailbox}/history");
    let points = get(&http, &url).await;
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    let mut sent = 0;
    for (point, (team, at)) in points.iter().zip(&truths) {
        let status = truth::mailboxes_dashboard(team)
            .into_iter()
            .find(|r| r.mailbox_id.as_deref() == Some(&mailbox))
            .unwrap()
            .status;
        let mut want = serde_json::to_value(truth::day_window(team, *at, &mailbox)).unwrap();
        want["date"] = at.date_naive().to_string().into();
        want["status"] = status.into();
        assert_eq!(point, &want);
        sent += point["sent"].as_u64().unwrap();
    }
    assert!(sent > 0, "the mailbox sent on these days");

    // The dashboards' validators, and ids checked as everywhere.
    let first = http.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = http.get(&url).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let bad = http.get(format!("{base}/api/mailboxes/{campaign}/history")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("invalid mailbox id"));
    let unknown = get(&http, &format!("{base}/api/campaigns/cam_AAAAAAAAAAAAAAAAA/history")).await;
    assert_eq!(unknown, Value::Array(vec![]), "no history: an empty list");
}

/// One request the SNS endpoint received.
#[derive(Debug, Clone)]
struct Recorded {
    content_type: String,
    authorization: bool,
    body: String,
}

impl Recorded {
    /// The request's parameters, whichever protocol the SDK speaks (query or JSON).
    fn params(&self) -> HashMap<String, String> {
        if self.content_type.contains("json") {
            let v: Value = serde_json::from_str(&self.body).unwrap();
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        } else {
            form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
        }
    }
}

/// A local HTTP endpoint standing in for SNS: it records every request and answers as SNS
/// does, except the first `fail_first` requests, answered 500.
async fn sns_recorder(fail_first: usize) -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let authorization = req
                            .headers()
                            .get("authorization")
                            .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("AWS4-HMAC-SHA256"));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(Recorded {
                                content_type: content_type.clone(),
                                authorization,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            log.len()
                        };
                        let json = content_type.contains("json");
                        let (status, body) = if n <= fail_first {
                            (
                                500,
                                if json {
                                    r#"{"__type":"InternalError","message":"down"}"#.to_owned()
                                } else {
                                    "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down</Message></Error><RequestId>r</RequestId></ErrorResponse>".to_owned()
                                },
                            )
                        } else if json {
                            (200, format!(r#"{{"MessageId":"m-{n}"}}"#))
                        } else {
                            (
                                200,
                                format!(
                                    "<PublishResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-{n}</MessageId></PublishResult><ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata></PublishResponse>"
                                ),
                            )
                        };
                        let reply = hyper::Response::builder()
                            .status(status)
                            .header(
                                "content-type",
                                if json { "application/x-amz-json-1.0" } else { "text/xml" },
                            )
                            .body(Full::new(Bytes::from(body)))
                            .unwrap();
                        Ok::<_, Infallible>(reply)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:lemdash-alerts";

fn sns(endpoint: &str) -> Arc<dyn Notifier> {
    use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let conf = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIDLEMDASHTEST", "not-a-secret", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    Arc::new(Sns::new(aws_sdk_sns::Client::from_conf(conf), TOPIC.to_owned()))
}

async fn alerts(r: &Refresher) -> Vec<Alert> {
    r.health().await.unwrap().map(|(_, log)| log.alerts.list).unwrap_or_default()
}

/// The keys of the alerts raised (`true`) or cleared (`false`) between two lists.
fn changes(before: &[Alert], after: &[Alert]) -> BTreeSet<(bool, String)> {
    let was: HashMap<&str, &Alert> = before.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut out = BTreeSet::new();
    for a in after {
        let raised = match was.get(a.id.as_str()) {
            None => true,
            Some(old) if old.cleared_at.is_none() && a.cleared_at.is_some() => false,
            _ => continue,
        };
        out.insert((raised, a.condition.key()));
    }
    out
}

fn key_of(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

#[tokio::test]
async fn a_scripted_scenario_raises_exactly_its_alerts_once_each_and_clears_them() {
    let sim = sim(Profile::M, 65, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let clock = MovedClock::of(&sim);
    // Forty days after the generated history: its rates are out of every window.
    let t0 = epoch() + DAY * 40 + chrono::Duration::hours(10);
    clock.set(t0);
    let (endpoint, published) = sns_recorder(1).await;
    let thresholds = Thresholds { bounce_rate: 5.0, min_sent: 20 };
    let client = unpaced_client(&sim);
    let r = refresher(&client, clock.clone(), thresholds, sns(&endpoint));

    // Baseline: the stuck and conflicting mailboxes of the generated team, nothing else.
    refresh(&r).await;
    let baseline = alerts(&r).await;
    let team = sim.team();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for row in truth::mailboxes_dashboard(&team) {
        let id = row.mailbox_id.clone().unwrap();
        match row.status.as_str() {
            "stuck" => expected.insert(key_of("mailbox_stuck", &id)),
            "conflict" => expected.insert(key_of("mailbox_conflict", &id)),
            _ => false,
        };
    }
    let raised: BTreeSet<String> = baseline.iter().map(|a| a.condition.key()).collect();
    assert_eq!(raised, expected, "the first refresh raises what holds");
    assert!(!expected.is_empty());
    assert!(baseline.iter().filter(|a| !a.delivered).count() == 1, "the first publish failed (500)");
    let mut history = baseline.clone();

    // 1. lemwarm started on a mailbox an active campaign sends from: a conflict.
    let in_use = truth::mailboxes_dashboard(&team).into_iter().find(|r| r.status == "in use").unwrap();
    let conflicted = in_use.mailbox_id.clone().unwrap();
    // Through lemlist's own endpoint, as the dashboard's start-lemwarm action does it.
    client.start_lemwarm(&conflicted.parse().unwrap()).await.unwrap();
    refresh(&r).await;
    let now = alerts(&r).await;
    assert_eq!(changes(&history, &now), BTreeSet::from([(true, key_of("mailbox_conflict", &conflicted))]));
    let conflict = now.iter().find(|a| a.condition.key() == key_of("mailbox_conflict", &conflicted)).unwrap();
    assert!(
        conflict.condition.message.contains(&format!("pause lemwarm on {}", in_use.email)),
        "{}",
        conflict.condition.message
    );
    assert!(now.iter().all(|a| a.delivered), "the failed publish went out with this refresh");
    history = now;
    refresh(&r).await;
    let now = alerts(&r).await;
    assert_eq!(changes(&history, &now), BTreeSet::new(), "once per episode");
    history = now;

    // 2. A run of bounces from one mailbox: 30 messages, 3 bounced (10 % ≥ 5 %).
    let pick = |fields: SenderFields, not: &str| {
        team.campaigns
            .iter()
            .filter(|c| c.status == "running" && c.fields == fields && c.leads.len() >= 30)
            .find(|c| c.senders.first().and_then(|s| s.mailbox_id.as_deref()).is_some_and(|m| m != not))
            .unwrap()
            .clone()
    };
    let bouncing = pick(SenderFields::Both, &conflicted);
    let bouncer = bouncing.senders[0].mailbox_id.clone().unwrap();
    assert_eq!(sim.script(&bouncing.id, 0, "emailsSent", 30), 30);
    assert_eq!(sim.script(&bouncing.id, 0, "emailsBounced", 3), 3);
    refresh(&r).await;
    exact(&sim, &r).await.unwrap();
    let now = alerts(&r).await;
    assert_eq!(changes(&history, &now), BTreeSet::from([(true, key_of("bounce_rate", &bouncer))]));
    let bounce = now.iter().find(|a| a.condition.kind == AlertKind::BounceRate).unwrap();
    assert_eq!((bounce.condition.figure, bounce.condition.threshold), (Some(10.0), Some(5.0)));
    assert!(bounce.condition.message.contains("check the domain of"), "{}", bounce.condition.message);
    history = now;

    // 3. An open rate that collapses: half the messages opened this week, a tenth the next.
    let fading = team
        .campaigns
        .iter()
        .filter(|c| c.status == "running" && c.leads.len() >= 30 && c.id != bouncing.id)
        .find(|c| c.senders.first().and_then(|s| s.mailbox_id.as_deref()).is_some_and(|m| m != bouncer))
        .unwrap()
        .clone();
    assert_eq!(sim.script(&fading.id, 0, "emailsSent", 30), 30);
    assert_eq!(sim.script(&fading.id, 0, "emailsOpened", 15), 15);
    refresh(&r).await;
    let now = alerts(&r).await;
    assert_eq!(changes(&history, &now), BTreeSet::new(), "no drop yet");
    history = now;
    clock.set(t0 + DAY * 8);
    assert_eq!(sim.script(&fading.id, 0, "emailsSent", 30), 30);
    assert_eq!(sim.script(&fading.id, 0, "emailsOpened", 3), 3);
    refresh(&r).await;
    exact(&sim, &r).await.unwrap();
    let now = alerts(&r).await;
    // A week later the bounces are out of the window: that episode ends.
    assert_eq!(
        changes(&history, &now),
        BTreeSet::from([
            (true, key_of("open_rate_drop", &fading.id)),
            (false, key_of("bounce_rate", &bouncer))
        ])
    );
    let drop = now.iter().find(|a| a.condition.kind == AlertKind::OpenRateDrop).unwrap();
    assert_eq!((drop.condition.figure, drop.condition.threshold), (Some(10.0), Some(25.0)));
    history = now;

    // 4. lemwarm stopped again, and a quiet week: both episodes end.
    client.pause_lemwarm(&conflicted.parse().unwrap()).await.unwrap();
    clock.set(t0 + DAY * 16);
    refresh(&r).await;
    let now = alerts(&r).await;
    assert_eq!(
        changes(&history, &now),
        BTreeSet::from([
            (false, key_of("mailbox_conflict", &conflicted)),
            (false, key_of("open_rate_drop", &fading.id))
        ])
    );
    let open: BTreeSet<String> =
        now.iter().filter(|a| a.cleared_at.is_none()).map(|a| a.condition.key()).collect();
    assert_eq!(open, expected, "only the baseline is still open");

    // Published through the SNS adapter: one request per alert raised, plus the failed one.
    let requests = published.lock().unwrap().clone();
    let raised: Vec<&Alert> = now.iter().collect();
    assert_eq!(requests.len(), raised.len() + 1, "{} requests for {} alerts", requests.len(), raised.len());
    for request in &requests {
        assert!(request.authorization, "signed with SigV4");
        let params = request.params();
        assert_eq!(params.get("TopicArn").map(String::as_str), Some(TOPIC), "{params:?}");
        assert!(params.get("Subject").is_some_and(|s| s.starts_with("lemdash: ") && s.len() <= 100));
    }
    for alert in &raised {
        assert!(
            requests
                .iter()
                .any(|r| r.params().get("Message").is_some_and(|m| m.contains(&alert.condition.message))),
            "{} was published",
            alert.id
        );
    }
    let api_list = serde_json::to_value(&now).unwrap();
    assert!(
        api_list
            .as_array()
            .unwrap()
            .windows(2)
            .all(|w| w[0]["raised_at"].as_str() >= w[1]["raised_at"].as_str())
    );
}
