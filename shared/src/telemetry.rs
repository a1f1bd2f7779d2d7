//! Logs: JSON lines in Lambda (CloudWatch reads them as structured fields), readable text
//! elsewhere. `RUST_LOG` sets the level (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if in_lambda {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}
