//! A stand-in for lemlist that speaks its API over real HTTP on 127.0.0.1, so that tests,
//! benchmarks and local runs exercise the real client, network stack and timing. It is also
//! lemdash's demo mode: `lemdash serve` without a key serves a simulated team.
//!
//! - [`data`]: seeded teams in profiles S, M, L and XL.
//! - [`server`]: the HTTP API, rate limit, headers, latency and fault injection.
//! - [`hooks`]: lemlist's webhooks: the hooks API and deliveries of new activities.
//! - [`live`]: live mode, the team changing while lemdash watches it.
//! - [`limit`]: the rate-limit models (anchored fixed window, strict sliding window).
//! - [`log`]: what the simulator saw, for assertions.

pub mod data;
pub mod hooks;
pub mod limit;
pub mod live;
pub mod log;
pub mod server;

pub use data::Profile;
pub use hooks::{Delivered, Delivery, Hook};
pub use limit::LimitMode;
pub use server::{
    CLOCK_AFTER_HISTORY, FaultKind, Faults, LEMWARM_REFUSAL, Latency, LeadShape, ListShape, ResetFormat,
    Settings, Sim, SimClock, SimConfig,
};
