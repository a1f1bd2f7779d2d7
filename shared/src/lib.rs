//! lemdash's shared library: everything the Lambda functions, the local runner and the tests have
//! in common. Handlers stay thin; the logic lives here.
//!
//! - [`lemlist`]: the typed lemlist client (endpoints, decoding, rate-limit headers, retries).
//! - [`activity`]: what the dashboards and health stand on (activity sets, daily counts, rates).
//! - [`dashboard`]: the two dashboards, computed from lemlist data, and the reads behind them.
//! - [`limiter`]: where every request asks for the right to be sent (the per-key budget).
//! - [`config`]: plain configuration values; [`app`]: the one place that assembles lemdash.
//! - [`refresh`], [`snapshot`]: the stored dashboards and their refresh.
//! - [`sync`]: the incremental sync's state and what each refresh reads (pure).
//! - [`hooks`]: lemlist's webhooks: the types registered, the checks of a delivery, its store.
//! - [`api`]: the functions' HTTP boundary: one axum router per function.
//! - [`secret`]: the API key wrapper that never prints the key.
//! - [`ids`]: lemlist ids, parsed once at the edge.

pub mod activity;
pub mod api;
pub mod app;
pub mod config;
pub mod dashboard;
pub mod dynamo;
pub mod health;
pub mod hooks;
pub mod ids;
pub mod lemlist;
pub mod limiter;
pub mod refresh;
pub mod secret;
pub mod snapshot;
pub mod sync;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
