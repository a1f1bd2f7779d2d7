//! The one route table: each route's method, path, the function API Gateway sends it to, and
//! its handler. The router ([`super::router`]), the deployment template's test and the
//! `cargo lambda watch` router check all read [`ROUTES`]; nothing else lists the routes.

use axum::routing::{MethodFilter, MethodRouter, on};

use super::{Api, console, handlers};

/// Which Lambda function is answering: each serves its own routes (and `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The campaigns dashboard and action, the sync state, campaign history.
    Campaigns,
    /// The mailboxes dashboard and lemwarm actions, mailbox history, alerts.
    Mailboxes,
    /// Both, for the local runner.
    All,
}

impl Function {
    /// The binary that serves this function's routes (a Lambda bootstrap, or the local runner).
    pub fn binary(self) -> &'static str {
        match self {
            Self::Campaigns => "lemdash-campaigns",
            Self::Mailboxes => "lemdash-mailboxes",
            Self::All => "lemdash",
        }
    }

    /// Whether this function answers `spec` (`/health` is answered by every function).
    pub fn serves(self, spec: &RouteSpec) -> bool {
        self == Self::All || self == spec.function || spec.path == HEALTH
    }
}

const HEALTH: &str = "/health";

/// One route as API Gateway declares it, and what answers it.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// The path template, `{name}` standing for one segment (axum's syntax and API Gateway's).
    pub path: &'static str,
    /// The function API Gateway sends it to (`/health` is answered by every function; the
    /// deployment sends it to the campaigns function).
    pub function: Function,
    /// Open to anyone: no authorizer in front of it (`/health`, the console's page and assets:
    /// the page signs in itself, and its data calls carry the token).
    pub open: bool,
    /// The handler, for the method's filter.
    handler: fn(MethodFilter) -> MethodRouter<Api>,
}

impl RouteSpec {
    /// `GET /api/mailboxes`: API Gateway's route key.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The method router of this route (GET routes answer HEAD too, without a body).
    pub fn method_router(&self) -> MethodRouter<Api> {
        let filter = match self.method {
            "POST" => MethodFilter::POST,
            _ => MethodFilter::GET,
        };
        (self.handler)(filter)
    }

    /// Whether `path` (a request's) is this route's: a literal path, or the literal part before
    /// the template's one trailing `{segment}`.
    fn matches(&self, path: &str) -> bool {
        match self.path.split_once('{') {
            None => path == self.path,
            Some((prefix, _)) => {
                path.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            }
        }
    }
}

/// Whether `path` belongs to an open route (no identity needed).
pub fn is_open(path: &str) -> bool {
    ROUTES.iter().any(|r| r.open && r.matches(path))
}

pub const ROUTES: [RouteSpec; 14] = [
    RouteSpec {
        method: "GET",
        path: "/",
        open: true,
        function: Function::Campaigns,
        handler: |m| on(m, console::page),
    },
    RouteSpec {
        method: "GET",
        path: "/console/{asset}",
        open: true,
        function: Function::Campaigns,
        handler: |m| on(m, console::asset),
    },
    RouteSpec {
        method: "GET",
        path: "/api/trends",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::trends),
    },
    RouteSpec {
        method: "GET",
        path: "/api/budget",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::budget),
    },
    RouteSpec {
        method: "GET",
        path: HEALTH,
        open: true,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::health),
    },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/dashboard",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::campaigns_dashboard),
    },
    RouteSpec {
        method: "POST",
        path: "/api/campaigns/{campaign_id}/set-inactive",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::set_inactive),
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes",
        open: false,
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::mailboxes_dashboard),
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/start-lemwarm",
        open: false,
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::start_lemwarm),
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/stop-lemwarm",
        open: false,
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::stop_lemwarm),
    },
    RouteSpec {
        method: "GET",
        path: "/api/sync",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::sync),
    },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/{campaign_id}/history",
        open: false,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::campaign_history),
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes/{mailbox_id}/history",
        open: false,
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::mailbox_history),
    },
    RouteSpec {
        method: "GET",
        path: "/api/alerts",
        open: false,
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::alerts),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_declared_once_with_a_method_api_gateway_knows() {
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ROUTES.len(), "one method per path: a second would need merging");
        assert!(ROUTES.iter().all(|r| matches!(r.method, "GET" | "POST")));
    }

    #[test]
    fn only_health_and_the_console_are_open() {
        for (path, open) in [
            ("/health", true),
            ("/", true),
            ("/console/console.js", true),
            ("/console/a/b", false),
            ("/console/", false),
            ("/api/mailboxes", false),
            ("/api/budget", false),
            ("/healthz", false),
        ] {
            assert_eq!(is_open(path), open, "{path}");
        }
    }

    #[test]
    fn each_function_serves_its_own_routes_and_health() {
        for spec in &ROUTES {
            assert!(Function::All.serves(spec));
            assert!(spec.function.serves(spec));
            let other =
                if spec.function == Function::Campaigns { Function::Mailboxes } else { Function::Campaigns };
            assert_eq!(other.serves(spec), spec.path == HEALTH, "{}", spec.key());
        }
    }
}
