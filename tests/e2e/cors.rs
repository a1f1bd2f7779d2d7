//! CORS on real responses, not only preflights: a browser on an allowed origin can read every
//! answer (200, 304, 4xx, 5xx) and the headers lemdash adds; any other origin gets no grant.

use std::sync::Arc;
use std::time::Duration;

use lemdash_tests::app::ORIGIN;
use lemlist_sim::{LimitMode, Profile, Settings};
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, IF_NONE_MATCH, ORIGIN as ORIGIN_HEADER, VARY,
};

use crate::support::{self, sim, unpaced_client};

fn assert_readable(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN, "{what}");
    assert_eq!(h[VARY], "Origin", "{what}");
    let exposed = h[ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
    for name in ["x-lemdash-partial", "x-lemdash-age", "x-request-id", "etag"] {
        assert!(exposed.contains(name), "{what}: {exposed}");
    }
}

#[tokio::test]
async fn every_answer_carries_cors_for_an_allowed_origin_and_none_for_others() {
    let sim = sim(Profile::S, 31, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let client = unpaced_client(&sim);
    let base = support::serve(support::api(&sim, &client, Duration::from_secs(60))).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).header(ORIGIN_HEADER, ORIGIN);

    let ok = get("/api/campaigns/dashboard").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_readable(&ok, "200");
    let etag = ok.headers()["etag"].clone();
    let unchanged = get("/api/campaigns/dashboard").header(IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_readable(&unchanged, "304");
    let bad = get("/api/campaigns/dashboard?refresh=maybe").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_readable(&bad, "400");
    let missing = get("/api/nothing").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_readable(&missing, "404");

    let down = support::serve(support::api_with(
        &sim,
        &client,
        Duration::from_secs(5),
        Arc::new(crate::errors::Down),
    ))
    .await;
    let failed =
        http.get(format!("{down}/api/mailboxes")).header(ORIGIN_HEADER, ORIGIN).send().await.unwrap();
    assert_eq!(failed.status(), 500);
    assert_readable(&failed, "500");

    let foreign = http
        .get(format!("{base}/api/mailboxes"))
        .header(ORIGIN_HEADER, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 200);
    assert!(foreign.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert_eq!(foreign.headers()[VARY], "Origin", "caches keep the answers per origin");
}
