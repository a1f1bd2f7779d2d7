//! The console in headless Chromium against lemdash served over HTTP on the simulator: both
//! tables equal the API's JSON row for row; sorting and filtering; history charts; an action
//! confirmed and its row changed; an alert's link; CSV equal to the table; a 390 px phone; and
//! the sign-in (PKCE) against a local identity provider. Screenshots go to `target/screenshots/`.

use std::time::Duration;

use lemdash_shared::api::{Api, Function};
use lemdash_tests::browser::Browser;
use lemdash_tests::identity::{self, Identity};
use lemlist_sim::{LimitMode, Profile, Settings, Sim};
use serde_json::{Value, json};

use crate::support::{api, first_sync_done, serve, sim, unpaced_client};

/// A team whose first sync is done, served over HTTP.
async fn served(seed: u64) -> (Sim, Api, String) {
    served_with(seed, lemdash_tests::app::config(Duration::from_secs(25))).await
}

/// The same with `config`.
async fn served_with(seed: u64, config: lemdash_shared::config::Config) -> (Sim, Api, String) {
    let sim = sim(Profile::M, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let store = std::sync::Arc::new(lemdash_shared::snapshot::MemorySnapshots::default());
    let api = lemdash_tests::app::with(&config, &sim, &unpaced_client(&sim), store).api().clone();
    api.refresher().run().await.expect("the first refresh");
    first_sync_done(api.refresher()).await;
    api.refresher().run().await.expect("a steady refresh");
    let url = serve(api.clone()).await;
    (sim, api, url)
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The visible text of every cell of `table`'s body, row by row.
const CELLS: &str = "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(tr => [...tr.cells].map(td => td.innerText.trim()));";

async fn cells(b: &Browser, table: &str) -> Vec<Vec<String>> {
    serde_json::from_value(b.eval(CELLS, vec![json!(table)]).await).unwrap()
}

async fn click(b: &Browser, selector: &str) {
    b.eval("document.querySelector(arguments[0]).click(); return true;", vec![json!(selector)]).await;
}

/// Waits for the button labelled `label` under `scope`, then clicks it.
async fn press(b: &Browser, scope: &str, label: &str) {
    let find = "return [...document.querySelectorAll(arguments[0] + ' button')].find(x => x.textContent === arguments[1]) || null;";
    for _ in 0..200 {
        if !b.eval(find, vec![json!(scope), json!(label)]).await.is_null() {
            let press = "[...document.querySelectorAll(arguments[0] + ' button')].find(x => x.textContent === arguments[1]).click(); return true;";
            b.eval(press, vec![json!(scope), json!(label)]).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited 20 s for the button {label:?} in {scope}");
}

/// The text of the CSV file the page last offered for download.
async fn downloaded(b: &Browser) -> String {
    let read = "const done = arguments[arguments.length - 1]; fetch(document.querySelector('a[data-download]').href).then(r => r.text()).then(done);";
    let text = b.client.execute_async(read, vec![]).await.expect("the download reads");
    text.as_str().expect("a text file").to_owned()
}

/// lemdash's requests over the budget's hour, every class.
fn budget_sum(budget: &Value) -> u64 {
    ["interactive", "scheduled", "background"].iter().map(|k| budget["totals"][*k].as_u64().unwrap()).sum()
}

async fn ready(b: &Browser) {
    b.until("the console's first load", "return document.body.dataset.ready === 'true';").await;
}

/// A rate as the console shows it.
fn pct(v: &Value) -> String {
    format!("{}%", v.as_f64().unwrap())
}

#[tokio::test]
async fn the_console_shows_the_dashboards_as_the_api_serves_them_and_acts_on_them() {
    let (_sim, _api, url) = served(71).await;
    let campaigns = get(&format!("{url}/api/campaigns/dashboard")).await;
    let mailboxes = get(&format!("{url}/api/mailboxes")).await;
    let (campaigns, mailboxes) = (campaigns.as_array().unwrap(), mailboxes.as_array().unwrap());
    assert!(campaigns.len() > 3 && mailboxes.len() > 3, "a team to look at");

    let b = Browser::start(1440, 1000).await;
    b.client.goto(&url).await.unwrap();
    ready(&b).await;
    let loaded = b.eval("return Math.round(performance.now());", vec![]).await;
    println!("the console was ready (both tables drawn) {loaded} ms after navigation began");

    // Both tables, row for row, in the API's order until sorted (the default sort is by name,
    // so compare as sets of rows keyed by name).
    let shown = cells(&b, "#campaigns-table").await;
    assert_eq!(shown.len(), campaigns.len());
    for row in campaigns {
        let name = row["campaign_name"].as_str().unwrap();
        let line = shown.iter().find(|l| l[0] == name).unwrap_or_else(|| panic!("{name} is shown"));
        let want = [
            name.to_owned(),
            row["campaign_status"].as_str().unwrap().to_owned(),
            row["people_count"].to_string(),
            row["companies_count"].to_string(),
            row["people_engaged"].to_string(),
            pct(&row["open_rate"]),
            pct(&row["reply_rate"]),
        ];
        assert_eq!(line[..7], want, "{name}");
    }
    let trends =
        b.eval("return document.querySelectorAll('#campaigns-table tbody svg').length;", vec![]).await;
    assert!(trends.as_u64().unwrap() > 0, "small trend charts");

    click(&b, "#tab-mailboxes").await;
    let shown = cells(&b, "#mailboxes-table").await;
    assert_eq!(shown.len(), mailboxes.len());
    for row in mailboxes {
        let email = row["email"].as_str().unwrap();
        let line = shown.iter().find(|l| l[0] == email).unwrap_or_else(|| panic!("{email} is shown"));
        let status = row["status"].as_str().unwrap();
        assert!(line[1].starts_with(status), "{email}: {line:?}");
        let week = &row["performance"]["7d"];
        assert_eq!(
            line[3..7],
            [
                week["sent"].to_string(),
                pct(&week["bounce_rate"]),
                pct(&week["open_rate"]),
                pct(&week["reply_rate"])
            ],
            "{email}"
        );
        let month = &row["performance"]["30d"];
        assert_eq!(line[7], month["sent"].to_string(), "{email}");
    }
    b.screenshot("console-mailboxes-1440").await;

    // Sorting: people ascending, then descending.
    click(&b, "#tab-campaigns").await;
    b.screenshot("console-campaigns-1440").await;
    let people = |rows: &[Vec<String>]| rows.iter().map(|r| r[2].parse::<u64>().unwrap()).collect::<Vec<_>>();
    click(&b, "#campaigns-table th[data-key=people_count] button").await;
    let up = people(&cells(&b, "#campaigns-table").await);
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    click(&b, "#campaigns-table th[data-key=people_count] button").await;
    let down = people(&cells(&b, "#campaigns-table").await);
    assert!(down.windows(2).all(|w| w[0] >= w[1]) && down.first() > down.last(), "{down:?}");

    // Filtering: by a name's word, then by status.
    let word = campaigns[0]["campaign_name"].as_str().unwrap().split(' ').next_back().unwrap().to_owned();
    let filter = b.client.find(fantoccini::Locator::Id("campaigns-filter")).await.unwrap();
    filter.send_keys(&word).await.unwrap();
    let kept = cells(&b, "#campaigns-table").await;
    let expected = campaigns
        .iter()
        .filter(|c| c["campaign_name"].as_str().unwrap().to_lowercase().contains(&word.to_lowercase()))
        .count();
    assert_eq!(kept.len(), expected, "{word}");
    assert!(kept.iter().all(|r| r[0].contains(&word)));
    b.eval("const i = document.getElementById('campaigns-filter'); i.value=''; i.dispatchEvent(new Event('input')); return true;", vec![]).await;
    let status = campaigns
        .iter()
        .map(|c| c["campaign_status"].as_str().unwrap())
        .find(|s| *s != "active")
        .unwrap_or("active");
    b.eval("const s = document.getElementById('campaigns-status'); s.value = arguments[0]; s.dispatchEvent(new Event('change')); return true;", vec![json!(status)]).await;
    let kept = cells(&b, "#campaigns-table").await;
    assert_eq!(kept.len(), campaigns.iter().filter(|c| c["campaign_status"] == status).count());
    assert!(kept.iter().all(|r| r[1] == status));
    b.eval("const s = document.getElementById('campaigns-status'); s.value = ''; s.dispatchEvent(new Event('change')); return true;", vec![]).await;

    // CSV: what the table shows, as shown.
    click(&b, "#campaigns-csv").await;
    let csv = downloaded(&b).await;
    let table = cells(&b, "#campaigns-table").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "Campaign,Status,People,Companies,Engaged,Open rate,Reply rate,30 days");
    assert_eq!(lines.len(), table.len() + 1);
    for (line, row) in lines[1..].iter().zip(&table) {
        let quoted = |v: &str| if v.contains(',') { format!("\"{v}\"") } else { v.to_owned() };
        let head: Vec<String> = row[..7].iter().map(|v| quoted(v)).collect();
        assert!(line.starts_with(&head.join(",")), "{line} / {row:?}");
    }

    // A campaign's history chart.
    let first = campaigns.iter().find(|c| c["campaign_status"] == "active").unwrap_or(&campaigns[0]);
    b.eval("location.hash = '#campaign/' + arguments[0]; return true;", vec![first["campaign_id"].clone()])
        .await;
    b.until("the campaign's history chart", "return document.querySelector('#detail[open] .history-chart svg polyline, #detail[open] .history-chart svg circle') !== null;").await;
    let title = b.eval("return document.getElementById('detail-title').textContent;", vec![]).await;
    assert_eq!(title, first["campaign_name"]);
    let label = b
        .eval(
            "return document.querySelector('#detail .history-chart svg').getAttribute('aria-label');",
            vec![],
        )
        .await;
    assert!(label.as_str().unwrap().contains("engaged"), "a text equivalent: {label}");
    b.screenshot("console-campaign-history-1440").await;
    click(&b, "#detail-close").await;

    // An alert links to its mailbox.
    let alerts = get(&format!("{url}/api/alerts")).await;
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["subject"].as_str().unwrap().starts_with("usm_"))
        .expect("a mailbox alert");
    click(&b, "#tab-alerts").await;
    b.screenshot("console-alerts-1440").await;
    let link = format!("#alerts-list li[data-alert=\"{}\"] a", alert["id"].as_str().unwrap());
    click(&b, &link).await;
    b.until("the alert's mailbox", "return document.getElementById('detail').open && document.querySelector('#detail .history-chart') !== null;").await;
    let title = b.eval("return document.getElementById('detail-title').textContent;", vec![]).await;
    assert_eq!(title, alert["name"]);
    let hash = b.eval("return location.hash;", vec![]).await;
    assert_eq!(hash, json!(format!("#mailbox/{}", alert["subject"].as_str().unwrap())));
    b.screenshot("console-mailbox-detail-1440").await;
    click(&b, "#detail-close").await;

    // An action: stop lemwarm on a mailbox in conflict, confirmed; its row changes.
    let conflict = mailboxes.iter().find(|m| m["status"] == "conflict").expect("a mailbox in conflict");
    let id = conflict["mailbox_id"].as_str().unwrap();
    b.eval("location.hash = '#mailbox/' + arguments[0]; return true;", vec![json!(id)]).await;
    press(&b, "#detail .actions", "Stop lemwarm").await;
    let question = b.until("the confirmation", "return document.getElementById('confirm').open && document.getElementById('confirm-text').textContent;").await;
    assert!(question.as_str().unwrap().contains(conflict["email"].as_str().unwrap()), "{question}");
    click(&b, "#confirm-yes").await;
    let answer = b.until("lemlist's answer", "const a = document.querySelector('#detail .answer'); return a && !a.hidden && a.textContent !== 'Sent to lemlist…' && a.textContent;").await;
    assert_eq!(answer, "Lemwarm stopped successfully");
    let row = format!("#mailboxes-table tr[data-id={id}] td:nth-child(2)");
    let status = b.until("the row's new status", &format!("const c = document.querySelector('{row}'); return c && !c.innerText.startsWith('conflict') && c.innerText;")).await;
    assert!(status.as_str().unwrap().starts_with("in use"), "{status}");
    let served = get(&format!("{url}/api/mailboxes")).await;
    let now = served.as_array().unwrap().iter().find(|m| m["mailbox_id"] == id).unwrap();
    assert_eq!(now["status"], "in use", "the API agrees");
    b.close().await;
}

#[tokio::test]
async fn on_a_390_px_phone_both_tables_scroll_inside_themselves_and_the_page_does_not() {
    let (_sim, _api, url) = served(72).await;
    let b = Browser::start(390, 844).await;
    b.client.goto(&url).await.unwrap();
    ready(&b).await;
    for tab in ["campaigns", "mailboxes"] {
        click(&b, &format!("#tab-{tab}")).await;
        let layout = b
            .eval(
                "const t = document.getElementById(arguments[0] + '-table'); const s = t.parentElement;
                 return {page: document.documentElement.scrollWidth, width: window.innerWidth,
                         rows: t.tBodies[0].rows.length, inner: s.scrollWidth, outer: s.clientWidth,
                         filter: document.getElementById(arguments[0] + '-filter').getBoundingClientRect().right};",
                vec![json!(tab)],
            )
            .await;
        let n = |k: &str| layout[k].as_f64().unwrap();
        assert!(n("width") <= 400.0, "{layout}");
        assert!(n("page") <= n("width"), "{tab}: no horizontal page scroll: {layout}");
        assert!(n("rows") > 3.0 && n("filter") <= n("width"), "{tab}: {layout}");
        assert!(n("inner") >= n("outer"), "{tab}: the table scrolls in its box: {layout}");
        b.screenshot(&format!("console-{tab}-390")).await;
    }
    b.close().await;
}

#[tokio::test]
async fn the_console_signs_in_with_pkce_sends_the_token_on_every_call_and_signs_in_again_on_a_401() {
    let sim = sim(Profile::S, 73, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let id = Identity::start().await;
    let mut config = lemdash_tests::app::config(Duration::from_secs(25));
    config.http.sign_in = Some(lemdash_shared::config::SignIn {
        authorize_url: format!("{}/authorize", id.url),
        token_url: format!("{}/token", id.url),
        client_id: identity::CLIENT_ID.into(),
        scope: "openid".into(),
    });
    let client = unpaced_client(&sim);
    let app = lemdash_tests::app::with(
        &config,
        &sim,
        &client,
        std::sync::Arc::new(lemdash_shared::snapshot::MemorySnapshots::default()),
    );
    let api = app.api().clone();
    api.refresher().run().await.expect("the first refresh");
    first_sync_done(api.refresher()).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let gated = tower::Layer::layer(
        &axum::middleware::from_fn_with_state(id.clone(), identity::gate),
        api.router(Function::All),
    );
    tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(gated)).await
    });

    let b = Browser::start(1440, 1000).await;
    b.client.goto(&format!("{url}/#mailboxes")).await.unwrap();
    ready(&b).await;
    assert_eq!(id.counts(), (1, 1), "one sign-in, one token");
    let request = &id.requests()[0];
    assert_eq!(request["code_challenge_method"], "S256");
    assert_eq!(request["redirect_uri"], format!("{url}/"));
    assert!(request["code_challenge"].len() >= 43, "{request:?}");
    let address = b.client.current_url().await.unwrap();
    assert!(address.query().is_none(), "no code in the address after sign-in: {address}");
    assert_eq!(address.fragment(), Some("mailboxes"), "back where the person was");
    let stored = b
        .eval("return JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)]);", vec![])
        .await;
    assert_eq!(stored, "[[],[]]", "no token (nor anything else) kept in storage");
    let rows = cells(&b, "#mailboxes-table").await;
    assert!(rows.len() > 1, "the data loaded: {rows:?}");
    let calls = id.calls();
    assert!(calls.len() >= 6, "{calls:?}");
    assert!(calls.iter().all(|(_, valid)| *valid), "every data call carried the token: {calls:?}");

    // The token stops being accepted: the next data call gets a 401, and the page signs in
    // again, then carries on with the new token.
    id.revoke_all();
    let before = id.calls().len();
    b.eval("document.querySelector('#mailboxes-table tbody tr button.link').click(); return true;", vec![])
        .await;
    for _ in 0..200 {
        if id.counts().1 == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(id.counts(), (2, 2), "signed in again after the 401");
    tokio::time::sleep(Duration::from_millis(500)).await;
    ready(&b).await;
    let after = id.calls();
    assert!(after[before..].iter().any(|(_, valid)| !valid), "the revoked token was refused");
    let last = after.last().unwrap();
    assert!(last.1, "and the calls after the new sign-in carry the new token: {after:?}");
    b.close().await;
}

#[tokio::test]
async fn a_refusal_an_api_not_ready_and_the_hooks_health_are_said_in_words() {
    // lemlist refuses an action: its own message is shown, and the row stays as it was. Slack's
    // webhook was revoked: the alerts say so.
    let hook = lemdash_tests::slack::SlackHook::start().await;
    hook.otherwise(lemdash_tests::slack::Reply::NoService);
    let mut config = lemdash_tests::app::config(Duration::from_secs(25));
    config.alerts.slack =
        Some(lemdash_shared::config::SlackSource::Url(lemdash_shared::config::slack_url(&hook.url).unwrap()));
    let (sim, _api, url) = served_with(74, config).await;
    assert!(hook.posts().iter().all(|p| p.status == 404) && !hook.posts().is_empty());
    let mailboxes = get(&format!("{url}/api/mailboxes")).await;
    let mailbox =
        mailboxes.as_array().unwrap().iter().find(|m| m["status"] == "in use").expect("a mailbox in use");
    let id = mailbox["mailbox_id"].as_str().unwrap().to_owned();
    sim.configure(|s| s.lemwarm_refused = vec![id.clone()]);
    let b = Browser::start(1440, 1000).await;
    b.client.goto(&format!("{url}/#mailbox/{id}")).await.unwrap();
    ready(&b).await;
    press(&b, "#detail .actions", "Start lemwarm").await;
    b.until("the confirmation", "return document.getElementById('confirm').open;").await;
    click(&b, "#confirm-yes").await;
    let answer = b.until("lemlist's refusal", "const a = document.querySelector('#detail .answer'); return a && a.classList.contains('bad') && a.textContent;").await;
    assert_eq!(
        answer,
        json!(format!("Not done: lemlist refused the request: {}", lemlist_sim::LEMWARM_REFUSAL))
    );
    b.screenshot("console-refused-1440").await;
    click(&b, "#detail-close").await;
    click(&b, "#tab-alerts").await;
    let first = b.eval("return document.querySelector('#alerts-list li').textContent;", vec![]).await;
    assert!(
        first.as_str().unwrap().starts_with("Slack refused ")
            && first.as_str().unwrap().contains("HTTP 404 no_service"),
        "{first}"
    );
    click(&b, "#tab-mailboxes").await;
    let row = format!("#mailboxes-table tr[data-id={id}] td:nth-child(2)");
    let status = b.eval(&format!("return document.querySelector('{row}').innerText;"), vec![]).await;
    assert!(status.as_str().unwrap().starts_with("in use"), "unchanged: {status}");
    b.close().await;

    // lemlist cannot be reached and nothing was computed yet: the page says so, and when it
    // looks again, instead of showing empty tables.
    let (_clock, cold) = sim_with_dead_lemlist().await;
    let b = Browser::start(1440, 1000).await;
    b.client.goto(&cold).await.unwrap();
    ready(&b).await;
    let notice = b
        .eval("const n = document.getElementById('notice'); return n.hidden ? '' : n.textContent;", vec![])
        .await;
    let notice = notice.as_str().unwrap();
    assert!(
        notice.contains("The campaigns dashboard: ") && notice.contains("computed for the first time"),
        "{notice}"
    );
    assert!(notice.contains("looking again in"), "{notice}");
    let table = cells(&b, "#campaigns-table").await;
    assert_eq!(table.len(), 1, "one row that says why: {table:?}");
    assert!(table[0][0].contains("computed for the first time"), "{table:?}");
    let line = b.eval("return document.getElementById('freshness').textContent;", vec![]).await;
    assert!(line.as_str().unwrap().contains("No refresh has run yet"), "{line}");
    b.screenshot("console-not-ready-1440").await;
    b.close().await;

    // With webhooks: the hooks' health and the last event.
    let sim =
        crate::support::sim(Profile::S, 75, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let config = lemdash_tests::app::config(Duration::from_secs(25));
    let store = std::sync::Arc::new(lemdash_shared::snapshot::MemorySnapshots::default());
    let (app, url) = lemdash_tests::app::serving_hooks(&sim, &unpaced_client(&sim), store, config).await;
    app.api().refresher().run().await.expect("the first refresh");
    first_sync_done(app.api().refresher()).await;
    sim.burst(10);
    for _ in 0..100 {
        let status = app.api().refresher().sync_status().await.unwrap();
        if status.hooks.receiver.is_some_and(|r| r.deliveries > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = Browser::start(1440, 1000).await;
    b.client.goto(&url).await.unwrap();
    ready(&b).await;
    let line = b.eval("return document.getElementById('freshness').textContent;", vec![]).await;
    let line = line.as_str().unwrap();
    assert!(line.contains("Webhooks healthy: last event") && !line.contains("none yet"), "{line}");
    b.close().await;
}

/// lemdash served with a lemlist that does not answer (nothing listens at its address), and
/// the simulator that only gives it its clock.
async fn sim_with_dead_lemlist() -> (Sim, String) {
    let sim =
        crate::support::sim(Profile::S, 76, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let dead = lemdash_tests::load::client(
        "http://127.0.0.1:9/api",
        sim.key(),
        std::sync::Arc::new(lemdash_shared::limiter::Unlimited),
    );
    let api = api(&sim, &dead, Duration::from_secs(1));
    let url = serve(api).await;
    (sim, url)
}

/// The contrast ratio of each visible text element against its background, as WCAG 2 defines
/// it, for the elements the console shows text in; the lowest and where.
const CONTRAST: &str = r#"
const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const background = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
let worst = { ratio: 99, what: "" };
for (const el of document.querySelectorAll("td, th button, td button, .asof, .meta, .reason, .status, .freshness, .tabs button, .bar label, .alerts p, .alerts a, .badge, .flag, button")) {
  if (!el.offsetParent || !el.textContent.trim()) continue;
  const fg = rgb(getComputedStyle(el).color).slice(0, 3);
  const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  if (ratio < worst.ratio) worst = { ratio, what: el.className + " " + el.tagName + " " + el.textContent.trim().slice(0, 30) };
}
return worst;
"#;

#[tokio::test]
async fn the_console_is_usable_by_keyboard_with_aa_contrast_and_charts_that_say_what_they_show() {
    let (_sim, _api, url) = served(77).await;
    let b = Browser::start(1440, 1000).await;
    b.client.goto(&url).await.unwrap();
    ready(&b).await;

    // Text contrast, on every view.
    for tab in ["campaigns", "mailboxes", "alerts", "budget"] {
        click(&b, &format!("#tab-{tab}")).await;
        let worst = b.eval(CONTRAST, vec![]).await;
        assert!(worst["ratio"].as_f64().unwrap() >= 4.5, "{tab}: {worst}");
    }

    // The tabs follow the arrow keys, and the focus is visible.
    b.eval("document.getElementById('tab-campaigns').click(); document.getElementById('tab-campaigns').focus(); return true;", vec![]).await;
    let tab = b.client.find(fantoccini::Locator::Id("tab-campaigns")).await.unwrap();
    tab.send_keys(&fantoccini::key::Key::Right.to_string()).await.unwrap();
    let state = b
        .eval(
            "const f = document.activeElement; return {focused: f.id, selected: document.getElementById('tab-mailboxes').getAttribute('aria-selected'),
              shown: !document.getElementById('mailboxes').hidden, outline: parseFloat(getComputedStyle(f).outlineWidth)};",
            vec![],
        )
        .await;
    assert_eq!(
        (state["focused"].as_str(), state["selected"].as_str(), state["shown"].as_bool()),
        (Some("tab-mailboxes"), Some("true"), Some(true)),
        "{state}"
    );
    assert!(state["outline"].as_f64().unwrap() >= 2.0, "a visible focus: {state}");

    // Every chart is an image with a label that says what it shows.
    click(&b, "#tab-campaigns").await;
    let charts = b
        .eval(
            "return [...document.querySelectorAll('svg.chart')].map(s => [s.getAttribute('role'), s.getAttribute('aria-label') || '']);",
            vec![],
        )
        .await;
    let charts = charts.as_array().unwrap();
    assert!(!charts.is_empty());
    for c in charts {
        assert_eq!(c[0], "img", "{c}");
        assert!(c[1].as_str().unwrap().contains("sent"), "{c}");
    }

    // A history's CSV is its figures table.
    let id = b.eval("return document.querySelector('#campaigns-table tbody tr').dataset.id;", vec![]).await;
    b.eval("location.hash = '#campaign/' + arguments[0]; return true;", vec![id]).await;
    press(&b, "#detail", "Export history CSV").await;
    let csv = downloaded(&b).await;
    let rows = b.eval("return [...document.querySelectorAll('#detail details tbody tr')].map(tr => [...tr.cells].map(td => td.textContent).join(','));", vec![]).await;
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "date,people,status,engaged,open rate (%),reply rate (%)");
    assert!(!rows.is_empty());
    assert_eq!(lines[1..], rows.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    b.close().await;
}

#[tokio::test]
async fn the_budget_counts_every_request_lemlist_received_by_class_and_sees_the_other_tools() {
    let sim = sim(Profile::S, 78, Settings::default()).await;
    // Another tool on the same key, 3 requests a second: lemdash sees it in the answers' headers.
    sim.start_foreign_traffic(0, 3.0);
    let permits = std::sync::Arc::new(lemdash_shared::limiter::Adaptive::new(
        lemdash_shared::limiter::StrictPacer::lemlist(),
        15,
    ));
    let client = crate::support::client_with(&sim, permits);
    let store = std::sync::Arc::new(lemdash_shared::snapshot::MemorySnapshots::default());
    let config = lemdash_tests::app::config(Duration::from_secs(25));
    let api = lemdash_tests::app::with(&config, &sim, &client, store).api().clone();
    api.refresher().run().await.expect("the first refresh");
    first_sync_done(api.refresher()).await;
    let url = serve(api.clone()).await;
    // One request a person waits for.
    let mailboxes = get(&format!("{url}/api/mailboxes")).await;
    let id = mailboxes[0]["mailbox_id"].as_str().unwrap();
    let done =
        reqwest::Client::new().post(format!("{url}/api/mailboxes/{id}/stop-lemwarm")).send().await.unwrap();
    assert_eq!(done.status(), 200);
    sim.stop_foreign_traffic();

    // What every process recorded adds up to what lemlist received (the last refresh's figures
    // are added when it ends).
    let (mut budget, mut received) = (Value::Null, 0);
    for _ in 0..100 {
        budget = get(&format!("{url}/api/budget")).await;
        received = sim.log().total() as u64;
        if budget_sum(&budget) == received {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = &budget["totals"];
    assert_eq!(budget_sum(&budget), received, "{budget}");
    assert!(received > 20, "a first sync's worth: {received}");
    assert_eq!(t["interactive"], 1, "the action");
    assert_eq!(t["rate_limited"].as_u64().unwrap(), sim.log().rate_limited() as u64);
    assert_eq!(budget["minutes"].as_array().unwrap().len(), 60);
    let others = budget["minutes"].as_array().unwrap().iter().filter_map(|m| m["others"].as_u64()).max();
    assert!(others.is_some_and(|o| o >= 30), "the other tool's 3 a second, seen: {budget}");

    // The console says the same.
    let b = Browser::start(1440, 1000).await;
    b.client.goto(&format!("{url}/#budget")).await.unwrap();
    ready(&b).await;
    let text = b.eval("return document.querySelector('#budget-body p').textContent;", vec![]).await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!("lemdash sent {received} requests")) && text.contains("1 for people"),
        "{text}"
    );
    assert!(text.contains("other tools about ") && !text.contains("about unknown"), "{text}");
    b.screenshot("console-budget-1440").await;
    b.close().await;
}
