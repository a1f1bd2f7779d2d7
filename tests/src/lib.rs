//! A stand-in for lemlist that speaks its API over real HTTP on 127.0.0.1, so that tests,
//! benchmarks and local runs exercise the real client, network stack and timing.
//!
//! - [`data`]: seeded teams in profiles S, M, L and XL.
//! - [`server`]: the HTTP API, rate limit, headers, latency and fault injection.
//! - [`limit`]: the rate-limit models (anchored fixed window, strict sliding window).
//! - [`load`]: concurrent load and played network jitter, for rate-limit tests.
//! - [`log`]: what the simulator saw, for assertions.
//! - [`dynamo_local`]: DynamoDB Local on a free port, for tests and benchmarks.
//! - [`truth`]: both dashboards computed independently from the team, to compare against.

pub mod data;
pub mod dynamo_local;
pub mod limit;
pub mod load;
pub mod log;
pub mod server;
pub mod truth;

pub use data::Profile;
pub use limit::LimitMode;
pub use server::{FaultKind, Faults, Latency, ListShape, ResetFormat, Settings, Sim, SimConfig};
