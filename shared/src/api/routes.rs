//! The one route table: each route's method, path, the function API Gateway sends it to, and
//! its handler. The router ([`super::router`]), the deployment template's test and the
//! `cargo lambda watch` router check all read [`ROUTES`]; nothing else lists the routes.

use axum::routing::{MethodFilter, MethodRouter, on};

use super::{Api, handlers};

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
}

pub const ROUTES: [RouteSpec; 10] = [
    RouteSpec {
        method: "GET",
        path: HEALTH,
        function: Function::Campaigns,
        handler: |m| on(m, handlers::health),
    },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/dashboard",
        function: Function::Campaigns,
        handler: |m| on(m, handlers::campaigns_dashboard),
    },
    RouteSpec {
        method: "POST",
        path: "/api/campaigns/{campaign_id}/set-inactive",
        function: Function::Campaigns,
        handler: |m| on(m, handlers::set_inactive),
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes",
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::mailboxes_dashboard),
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/start-lemwarm",
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::start_lemwarm),
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/stop-lemwarm",
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::stop_lemwarm),
    },
    RouteSpec {
        method: "GET",
        path: "/api/sync",
        function: Function::Campaigns,
        handler: |m| on(m, handlers::sync),
    },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/{campaign_id}/history",
        function: Function::Campaigns,
        handler: |m| on(m, handlers::campaign_history),
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes/{mailbox_id}/history",
        function: Function::Mailboxes,
        handler: |m| on(m, handlers::mailbox_history),
    },
    RouteSpec {
        method: "GET",
        path: "/api/alerts",
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
