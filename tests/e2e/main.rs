//! lemdash's end-to-end tests: the real client against the lemlist simulator over HTTP on
//! 127.0.0.1. One test binary, one module per concern. Set `TEST_LOG=debug` to see the client's
//! logs.

mod support;

mod client_decoding;
mod client_faults;
mod client_pacing;
mod console;
mod cors;
mod dashboards;
mod deployment;
mod errors;
mod health;
mod limiter_shared;
mod people_first;
mod secrets;
mod slack;
mod snapshots;
mod state;
mod stream_path;
mod sync;
mod webhooks;
