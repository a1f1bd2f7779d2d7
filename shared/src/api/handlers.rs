//! The handlers: each reads its request (typed ids, `?refresh=`, validators) and turns what
//! [`Api`] answers into a response. No logic of its own.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Api, ApiError, response};
use crate::health::HealthLog;
use crate::ids::{CampaignId, MailboxId};
use crate::snapshot::{Action, Board, Served};

type Answer = Result<Response, ApiError>;

pub(super) async fn health() -> Response {
    response::json(StatusCode::OK, json!({"status": "healthy"}).to_string())
}

pub(super) async fn campaigns_dashboard(
    State(api): State<Api>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    dashboard(&api, Board::Campaigns, query, &headers).await
}

pub(super) async fn mailboxes_dashboard(
    State(api): State<Api>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    dashboard(&api, Board::Mailboxes, query, &headers).await
}

async fn dashboard(api: &Api, board: Board, query: Option<String>, headers: &HeaderMap) -> Answer {
    let forced = wants_refresh(query.as_deref())?;
    let answered = api.dashboard(board, forced).await?;
    Ok(response::dashboard(answered, headers, api.now()))
}

pub(super) async fn sync(State(api): State<Api>) -> Answer {
    let status = api.refresher().sync_status().await?;
    Ok(response::json(StatusCode::OK, serde_json::to_string(&status).expect("the status serialises")))
}

pub(super) async fn trends(State(api): State<Api>, headers: HeaderMap) -> Answer {
    let trends = api.refresher().trends().await?;
    let at = trends.as_of.unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
    let served = Served::of_body(serde_json::to_string(&trends).expect("trends serialise"), at);
    Ok(response::snapshot(served, &headers, api.now()))
}

pub(super) async fn budget(State(api): State<Api>) -> Answer {
    let budget = api.refresher().budget().await?;
    Ok(response::json(StatusCode::OK, serde_json::to_string(&budget).expect("the budget serialises")))
}

pub(super) async fn campaign_history(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id: CampaignId = id.parse()?;
    health_log(&api, &headers, |log| response::list(log.history.campaigns.get(id.as_str()))).await
}

pub(super) async fn mailbox_history(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id: MailboxId = id.parse()?;
    health_log(&api, &headers, |log| response::list(log.history.mailboxes.get(id.as_str()))).await
}

pub(super) async fn alerts(State(api): State<Api>, headers: HeaderMap) -> Answer {
    health_log(&api, &headers, |log| response::list(Some(&log.alerts.list))).await
}

/// A view of the key's history and alerts, served with the dashboards' validators.
async fn health_log(api: &Api, headers: &HeaderMap, view: impl FnOnce(&HealthLog) -> String) -> Answer {
    Ok(response::snapshot(api.health_view(view).await?, headers, api.now()))
}

pub(super) async fn set_inactive(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let id: CampaignId = id.parse()?;
    api.within_budget().pause_campaign(&id).await?;
    api.applied(Action::CampaignPaused(id)).await;
    Ok(response::done("Campaign set to inactive successfully"))
}

pub(super) async fn start_lemwarm(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let id: MailboxId = id.parse()?;
    api.within_budget().start_lemwarm(&id).await?;
    api.applied(Action::LemwarmStarted(id)).await;
    Ok(response::done("Lemwarm started successfully"))
}

pub(super) async fn stop_lemwarm(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let id: MailboxId = id.parse()?;
    api.within_budget().pause_lemwarm(&id).await?;
    api.applied(Action::LemwarmStopped(id)).await;
    Ok(response::done("Lemwarm stopped successfully"))
}

/// `?refresh=true` (or `1`); `false`, `0` or absent is no refresh; anything else is a 400.
fn wants_refresh(query: Option<&str>) -> Result<bool, ApiError> {
    let mut wanted = false;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name == "refresh" {
            wanted = match value.as_ref() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "refresh must be true or false, not {other:?}"
                    )));
                }
            };
        }
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_parameter() {
        assert!(!wants_refresh(None).unwrap());
        assert!(wants_refresh(Some("a=1&refresh=true")).unwrap());
        assert!(!wants_refresh(Some("refresh=0")).unwrap());
        assert!(matches!(wants_refresh(Some("refresh=yes")), Err(ApiError::BadRequest(_))));
    }
}
