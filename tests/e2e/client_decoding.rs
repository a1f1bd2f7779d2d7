//! Every endpoint decodes what the simulator serves, and lists are read to their end.

use std::collections::HashSet;

use chrono::Duration;
use lemdash_shared::ids::{CampaignId, MailboxId, UserId};
use lemdash_shared::lemlist::{ActivityQuery, CampaignStatus, LemlistError};
use lemlist_sim::data::epoch;
use lemlist_sim::{FaultKind, Faults, LimitMode, ListShape, Profile, Settings};

use crate::support::{paced_client, sim, unpaced_client};

fn unlimited() -> Settings {
    Settings { limit: LimitMode::Off, ..Settings::default() }
}

#[tokio::test]
async fn campaign_list_pages_to_the_end_in_both_shapes() {
    for shape in [ListShape::Wrapped, ListShape::Bare] {
        let sim = sim(Profile::L, 11, Settings { list_shape: shape, ..unlimited() }).await;
        let client = unpaced_client(&sim);
        let team = sim.team();

        let all = client.campaigns(None).await.unwrap();
        let expected: Vec<&str> = team.campaigns.iter().map(|c| c.id.as_str()).collect();
        let got: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(got, expected, "{shape:?}: every campaign, in lemlist's order");
        assert_eq!(
            sim.log().calls_by_endpoint()["GET /campaigns"],
            2,
            "{shape:?}: 120 campaigns are two pages"
        );

        let running = client.campaigns(Some(CampaignStatus::Running)).await.unwrap();
        assert_eq!(running.len(), 36);
        assert!(running.iter().all(|c| c.status.as_deref() == Some("running")));
        let unnamed = team.campaigns.iter().filter(|c| c.name.is_none()).count();
        assert_eq!(all.iter().filter(|c| c.name.is_none()).count(), unnamed);
    }
}

#[tokio::test]
async fn campaign_list_stops_when_the_server_repeats_a_page() {
    let sim = sim(Profile::L, 12, Settings { ignore_paging: true, ..unlimited() }).await;
    let client = unpaced_client(&sim);
    let all = client.campaigns(None).await.unwrap();
    assert_eq!(all.len(), 100, "the first page, once");
    assert_eq!(all.iter().map(|c| &c.id).collect::<HashSet<_>>().len(), 100);
    assert_eq!(sim.log().calls_by_endpoint()["GET /campaigns"], 2, "the repeated page ends the list");
}

#[tokio::test]
async fn campaign_detail_leads_and_mailboxes_match_the_team() {
    let sim = sim(Profile::M, 13, unlimited()).await;
    let client = unpaced_client(&sim);
    let team = sim.team();

    for c in team.campaigns.iter().take(6) {
        let id: CampaignId = c.id.parse().unwrap();
        let detail = client.campaign(&id).await.unwrap();
        assert_eq!(detail.id, c.id);
        assert_eq!(detail.senders.len(), c.senders.len());
        for (got, want) in detail.senders.iter().zip(&c.senders) {
            assert_eq!(got.email, want.email);
            assert_eq!(got.send_user_mailbox_id, want.mailbox_id);
            assert_eq!(got.id.as_deref(), Some(want.user_id.as_str()));
        }
        let leads = client.export_leads(&id).await.unwrap();
        assert_eq!(leads.len(), c.leads.len());
        for (got, want) in leads.iter().zip(&c.leads) {
            assert_eq!(got.id.as_deref(), Some(want.id.as_str()));
            assert_eq!(got.state.as_deref(), Some(want.state.as_str()));
            assert_eq!(got.state_system, want.state_system);
            assert_eq!(got.company_name, want.company_name);
            assert_eq!(got.company, want.company);
            for (k, v) in &want.custom {
                assert_eq!(got.extra.get(k), Some(v), "custom variable {k} is kept");
            }
        }
    }

    let team_info = client.team().await.unwrap();
    assert_eq!(team_info.id, team.id);
    assert_eq!(team_info.users.len(), team.users.len());
    for member in &team_info.users {
        let user = client.user(&member.user_id.parse::<UserId>().unwrap()).await.unwrap();
        let want = team.users.iter().find(|u| u.id == user.id).unwrap();
        assert_eq!(user.mailboxes.len(), want.mailboxes.len());
        for (got, want) in user.mailboxes.iter().zip(&want.mailboxes) {
            assert_eq!(
                (&got.id, &got.email, got.lemwarm.active),
                (&want.id, &want.email, want.lemwarm_active)
            );
            assert_eq!(got.provider, want.provider);
        }
    }
}

#[tokio::test]
async fn activities_page_to_the_end_with_every_filter() {
    let sim = sim(Profile::M, 14, unlimited()).await;
    let client = unpaced_client(&sim);
    let team = sim.team();

    // The whole team's history: many pages.
    let all = client.activities(&ActivityQuery::default()).await.unwrap();
    assert_eq!(all.len(), team.activities.len());
    assert!(team.activities.len() > 1000, "enough rows for many pages");
    let pages = sim.log().calls_by_endpoint()["GET /activities"];
    assert_eq!(pages, team.activities.len() / 100 + 1);

    let campaign = team.campaigns.iter().find(|c| c.status == "running" && !c.leads.is_empty()).unwrap();
    let id: CampaignId = campaign.id.parse().unwrap();
    let opens = client.activities(&ActivityQuery::of_type("emailsOpened").campaign(&id)).await.unwrap();
    let want =
        team.activities.iter().filter(|a| a.campaign_id == campaign.id && a.kind == "emailsOpened").count();
    assert_eq!(opens.len(), want);
    assert!(
        opens
            .iter()
            .all(|a| a.kind == "emailsOpened" && a.campaign_id.as_deref() == Some(campaign.id.as_str()))
    );
    assert!(opens.iter().all(|a| a.send_user_id.is_some() && a.lead_id.is_some()));

    let first =
        client.activities(&ActivityQuery::of_type("emailsOpened").campaign(&id).first_only()).await.unwrap();
    assert!(first.len() < opens.len() && first.iter().all(|a| a.is_first == Some(true)));

    let (min, max) = (epoch() - Duration::days(30), epoch() - Duration::days(10));
    let window = client.activities(&ActivityQuery::default().between(Some(min), Some(max))).await.unwrap();
    let want = team.activities.iter().filter(|a| a.created_at >= min && a.created_at <= max).count();
    assert_eq!(window.len(), want);
    // Extra keys lemlist adds are kept, not dropped.
    assert!(window.iter().all(|a| a.extra.contains_key("leadEmail")));
}

#[tokio::test]
async fn actions_change_lemlists_state() {
    let sim = sim(Profile::S, 16, unlimited()).await;
    let client = paced_client(&sim);
    let team = sim.team();

    let mailbox =
        team.users[0].mailboxes.iter().find(|m| !m.lemwarm_active).expect("a mailbox without lemwarm");
    let mid: MailboxId = mailbox.id.parse().unwrap();
    client.start_lemwarm(&mid).await.unwrap();
    let active = |sim: &lemlist_sim::Sim| {
        sim.team()
            .users
            .iter()
            .flat_map(|u| u.mailboxes.clone())
            .find(|m| m.id == mailbox.id)
            .unwrap()
            .lemwarm_active
    };
    assert!(active(&sim));
    client.pause_lemwarm(&mid).await.unwrap();
    assert!(!active(&sim));

    let running = team.campaigns.iter().find(|c| c.status == "running").unwrap();
    client.pause_campaign(&running.id.parse().unwrap()).await.unwrap();
    assert_eq!(sim.team().campaigns.iter().find(|c| c.id == running.id).unwrap().status, "paused");

    // An unknown mailbox: lemlist's 404 and its text, not retried.
    let unknown: MailboxId = "usm_AAAAAAAAAAAAAAAAA".parse().unwrap();
    let err = client.start_lemwarm(&unknown).await.unwrap_err();
    assert_eq!(
        err,
        LemlistError::Status {
            endpoint: "POST /lemwarm/{id}/start",
            status: 404,
            body: "Mailbox not found".into()
        }
    );
    assert_eq!(sim.log().calls_by_endpoint()["POST /lemwarm/{id}/start"], 2, "the 404 was not retried");
}

#[tokio::test]
async fn an_html_page_and_a_malformed_body_are_errors_not_empty_lists() {
    let sim = sim(Profile::S, 17, Settings { faults: Faults::always(FaultKind::Html), ..unlimited() }).await;
    let client = unpaced_client(&sim);
    let err = client.activities(&ActivityQuery::default()).await.unwrap_err();
    assert!(matches!(err, LemlistError::Html { endpoint: "GET /activities" }), "{err:?}");
    assert_eq!(sim.log().total(), 1, "an HTML page is not retried");

    sim.configure(|s| s.faults = Faults::always(FaultKind::Malformed));
    sim.clear_log();
    let err = client.team().await.unwrap_err();
    assert!(matches!(err, LemlistError::Decode { endpoint: "GET /team", .. }), "{err:?}");
    assert_eq!(sim.log().total(), 6, "a garbled body is retried, then reported");
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_never_shown() {
    let sim = sim(Profile::S, 18, unlimited()).await;
    let permits = std::sync::Arc::new(lemdash_shared::limiter::Unlimited);
    let client = lemdash_tests::load::client(&sim.base_url(), "wrong-key-do-not-print", permits);
    let err = client.team().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!format!("{err} {err:?} {client:?}").contains("wrong-key-do-not-print"));
    assert_eq!(sim.log().total(), 1);
}
