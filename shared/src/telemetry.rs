//! Logs: JSON lines in Lambda (CloudWatch reads them as structured fields), readable text
//! elsewhere. `RUST_LOG` sets the level (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        let _ = tracing::subscriber::set_global_default(lambda_subscriber(filter, std::io::stdout));
    } else {
        // On a terminal: standard error, so that a command's own output stays clean.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The Lambda format: one JSON object per line, the event's fields (`message` among them) at
/// the top level, the current span and the span list beside them. The deployment's metric
/// filters match these lines; tests capture them with their own `writer`.
pub fn lambda_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .json()
        .flatten_event(true)
        .without_time()
        .with_writer(writer)
        .finish()
}
