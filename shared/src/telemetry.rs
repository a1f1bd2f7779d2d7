//! Logs: JSON lines in Lambda (CloudWatch reads them as structured fields; the alarms' metric
//! filters match them), readable text elsewhere. Lambda's own logging controls are honoured:
//! `AWS_LAMBDA_LOG_FORMAT` (`Text` gives text lines) and `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG`,
//! where set, wins over the level (it can say more: a level per module).

use tracing_subscriber::EnvFilter;

/// How this process logs, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSetup {
    /// JSON lines on standard output (Lambda), or text on standard error.
    pub json: bool,
    /// The `EnvFilter` directives.
    pub filter: String,
}

impl LogSetup {
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let text = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
        let lambda_level = var("AWS_LAMBDA_LOG_LEVEL").map(|l| match l.to_ascii_lowercase().as_str() {
            // Lambda's FATAL has no tracing level: errors are the most severe.
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        });
        let filter = var("RUST_LOG")
            .filter(|f| !f.trim().is_empty())
            .or(lambda_level)
            .unwrap_or_else(|| "info".into());
        Self { json: in_lambda && !text, filter }
    }
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let setup = LogSetup::from_lookup(|k| std::env::var(k).ok());
    let filter = EnvFilter::try_new(&setup.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    if setup.json {
        let _ = tracing::subscriber::set_global_default(lambda_subscriber(filter, std::io::stdout));
    } else if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        // Lambda's text format: plain lines on standard output, without colours.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .without_time()
            .with_ansi(false)
            .with_writer(std::io::stdout)
            .try_init();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(pairs: &[(&str, &str)]) -> LogSetup {
        LogSetup::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn lambdas_logging_controls_are_honoured_and_rust_log_wins_where_set() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "f");
        assert_eq!(setup(&[lambda]), LogSetup { json: true, filter: "info".into() });
        let s = setup(&[lambda, ("AWS_LAMBDA_LOG_FORMAT", "Text"), ("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]);
        assert_eq!(s, LogSetup { json: false, filter: "debug".into() });
        let s = setup(&[lambda, ("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("AWS_LAMBDA_LOG_LEVEL", "FATAL")]);
        assert_eq!(s, LogSetup { json: true, filter: "error".into() });
        let s = setup(&[lambda, ("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "lemdash_shared=debug")]);
        assert_eq!(s.filter, "lemdash_shared=debug");
        assert_eq!(setup(&[("RUST_LOG", "trace")]), LogSetup { json: false, filter: "trace".into() });
    }
}
