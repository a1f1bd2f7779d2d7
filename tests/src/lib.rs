//! Support for lemdash's end-to-end tests and benchmarks (the simulator itself is the
//! `lemlist-sim` crate beside this one).
//!
//! - [`app`]: lemdash assembled around a test's own client and store.
//! - [`clock`]: a clock the tests move, with the simulator's.
//! - [`load`]: concurrent load and played network jitter, for rate-limit tests.
//! - [`dynamo_local`]: DynamoDB Local on a free port.
//! - [`browser`]: headless Chromium over WebDriver, for the console.
//! - [`slack`]: a local endpoint that answers as a Slack incoming webhook.
//! - [`identity`]: a small identity provider (PKCE) and the gate of API Gateway's authorizer.
//! - [`truth`]: both dashboards computed independently from the simulated team, to compare against.

pub mod app;
pub mod browser;
pub mod clock;
pub mod dynamo_local;
pub mod identity;
pub mod load;
pub mod slack;
pub mod truth;

/// Serves `router` over HTTP on a free port of 127.0.0.1, for as long as the runtime runs;
/// returns its base URL (`http://127.0.0.1:port`).
pub async fn listen(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("a bound port"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}
