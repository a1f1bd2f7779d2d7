//! Support for lemdash's end-to-end tests and benchmarks (the simulator itself is the
//! `lemlist-sim` crate beside this one).
//!
//! - [`app`]: lemdash assembled around a test's own client and store.
//! - [`clock`]: a clock the tests move, with the simulator's.
//! - [`load`]: concurrent load and played network jitter, for rate-limit tests.
//! - [`dynamo_local`]: DynamoDB Local on a free port.
//! - [`truth`]: both dashboards computed independently from the simulated team, to compare against.

pub mod app;
pub mod clock;
pub mod dynamo_local;
pub mod load;
pub mod truth;
