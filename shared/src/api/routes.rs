//! The one route table. The router, the `OPTIONS`/405 answers, the deployment template's test
//! and the `cargo lambda watch` router check all read [`ROUTES`].

use http::Method;

use super::error::ApiError;
use crate::ids::{CampaignId, MailboxId};

/// Which Lambda function is answering: each serves its own routes (and `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `GET /api/campaigns/dashboard`, `POST /api/campaigns/{id}/set-inactive`, `GET /api/sync`,
    /// `GET /api/campaigns/{id}/history`.
    Campaigns,
    /// `GET /api/mailboxes`, `POST /api/mailboxes/{id}/start-lemwarm|stop-lemwarm`,
    /// `GET /api/mailboxes/{id}/history`, `GET /api/alerts`.
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

    fn serves(self, spec: &RouteSpec) -> bool {
        self == Self::All || self == spec.function || spec.kind == Kind::Health
    }
}

/// What a route does, before its path parameters are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Health,
    CampaignsDashboard,
    SetInactive,
    MailboxesDashboard,
    StartLemwarm,
    StopLemwarm,
    Sync,
    CampaignHistory,
    MailboxHistory,
    Alerts,
}

/// One route as API Gateway declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    /// The path template, `{name}` standing for one segment.
    pub path: &'static str,
    /// The function API Gateway sends it to (`/health` is answered by every function; the
    /// deployment sends it to the campaigns function).
    pub function: Function,
    pub kind: Kind,
}

impl RouteSpec {
    /// `GET /api/mailboxes`: API Gateway's route key.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameter when `path` matches this route's template.
    fn matches<'p>(&self, path: &'p str) -> Option<Option<&'p str>> {
        let mut template = self.path.split('/');
        let mut given = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path).split('/');
        let mut parameter = None;
        loop {
            match (template.next(), given.next()) {
                (None, None) => return Some(parameter),
                (Some(t), Some(g)) if t.starts_with('{') && !g.is_empty() => parameter = Some(g),
                (Some(t), Some(g)) if t == g => {}
                _ => return None,
            }
        }
    }
}

pub const ROUTES: [RouteSpec; 10] = [
    RouteSpec { method: "GET", path: "/health", function: Function::Campaigns, kind: Kind::Health },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/dashboard",
        function: Function::Campaigns,
        kind: Kind::CampaignsDashboard,
    },
    RouteSpec {
        method: "POST",
        path: "/api/campaigns/{campaign_id}/set-inactive",
        function: Function::Campaigns,
        kind: Kind::SetInactive,
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes",
        function: Function::Mailboxes,
        kind: Kind::MailboxesDashboard,
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/start-lemwarm",
        function: Function::Mailboxes,
        kind: Kind::StartLemwarm,
    },
    RouteSpec {
        method: "POST",
        path: "/api/mailboxes/{mailbox_id}/stop-lemwarm",
        function: Function::Mailboxes,
        kind: Kind::StopLemwarm,
    },
    RouteSpec { method: "GET", path: "/api/sync", function: Function::Campaigns, kind: Kind::Sync },
    RouteSpec {
        method: "GET",
        path: "/api/campaigns/{campaign_id}/history",
        function: Function::Campaigns,
        kind: Kind::CampaignHistory,
    },
    RouteSpec {
        method: "GET",
        path: "/api/mailboxes/{mailbox_id}/history",
        function: Function::Mailboxes,
        kind: Kind::MailboxHistory,
    },
    RouteSpec { method: "GET", path: "/api/alerts", function: Function::Mailboxes, kind: Kind::Alerts },
];

/// A request that names a route, with its parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    CampaignsDashboard,
    SetInactive(CampaignId),
    MailboxesDashboard,
    StartLemwarm(MailboxId),
    StopLemwarm(MailboxId),
    /// The key's sync state.
    Sync,
    /// A running campaign's daily points.
    CampaignHistory(CampaignId),
    /// A mailbox's daily points.
    MailboxHistory(MailboxId),
    /// Alerts of the last 30 days, newest first.
    Alerts,
}

/// The route `method` and `path` name in `function`: 404 when no route of the function has the
/// path, 405 (with the methods it allows) when none has the method, 400 for a malformed id.
pub fn resolve(
    function: Function,
    method: &Method,
    path: &str,
) -> Result<(&'static RouteSpec, Route), ApiError> {
    let mut allowed = false;
    for spec in ROUTES.iter().filter(|s| function.serves(s)) {
        let Some(parameter) = spec.matches(path) else { continue };
        if method.as_str() != spec.method {
            allowed = true;
            continue;
        }
        let id = parameter.unwrap_or_default();
        let route = match spec.kind {
            Kind::Health => Route::Health,
            Kind::CampaignsDashboard => Route::CampaignsDashboard,
            Kind::SetInactive => Route::SetInactive(id.parse()?),
            Kind::MailboxesDashboard => Route::MailboxesDashboard,
            Kind::StartLemwarm => Route::StartLemwarm(id.parse()?),
            Kind::StopLemwarm => Route::StopLemwarm(id.parse()?),
            Kind::Sync => Route::Sync,
            Kind::CampaignHistory => Route::CampaignHistory(id.parse()?),
            Kind::MailboxHistory => Route::MailboxHistory(id.parse()?),
            Kind::Alerts => Route::Alerts,
        };
        return Ok((spec, route));
    }
    match allowed_methods(function, path) {
        Some(allow) if allowed => Err(ApiError::MethodNotAllowed(allow)),
        _ => Err(ApiError::NotFound),
    }
}

/// The methods `path` accepts in `function` (`GET, OPTIONS`), or `None` when no route of the
/// function has it.
pub fn allowed_methods(function: Function, path: &str) -> Option<String> {
    let methods: Vec<&str> =
        ROUTES.iter().filter(|s| function.serves(s) && s.matches(path).is_some()).map(|s| s.method).collect();
    (!methods.is_empty()).then(|| format!("{}, OPTIONS", methods.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAM: &str = "cam_4HrZbi8xsez4QlrnL";
    const USM: &str = "usm_4HrZbi8xsez4QlrnL";

    #[test]
    fn each_function_serves_its_own_routes_and_health() {
        for spec in &ROUTES {
            let path = spec.path.replace("{campaign_id}", CAM).replace("{mailbox_id}", USM);
            let method: Method = spec.method.parse().unwrap();
            let (found, _) = resolve(spec.function, &method, &path).unwrap();
            assert_eq!(found, spec);
            assert!(resolve(Function::All, &method, &path).is_ok(), "{}", spec.key());
            let other =
                if spec.function == Function::Campaigns { Function::Mailboxes } else { Function::Campaigns };
            assert_eq!(resolve(other, &method, &path).is_ok(), spec.kind == Kind::Health, "{}", spec.key());
            assert_eq!(allowed_methods(spec.function, &path).unwrap(), format!("{}, OPTIONS", spec.method));
        }
    }

    #[test]
    fn parameters_are_parsed_into_typed_ids() {
        let path = format!("/api/mailboxes/{USM}/stop-lemwarm/");
        let (_, route) = resolve(Function::Mailboxes, &Method::POST, &path).unwrap();
        assert_eq!(route, Route::StopLemwarm(USM.parse().unwrap()));
        let bad =
            resolve(Function::Mailboxes, &Method::POST, "/api/mailboxes/cam_4HrZbi8xsez4QlrnL/stop-lemwarm");
        assert!(matches!(bad, Err(ApiError::BadRequest(m)) if m.starts_with("invalid mailbox id")));
    }

    #[test]
    fn unknown_paths_are_404_and_known_paths_with_other_methods_405() {
        assert!(matches!(resolve(Function::All, &Method::GET, "/api/nope"), Err(ApiError::NotFound)));
        assert!(matches!(
            resolve(Function::All, &Method::GET, "/api/campaigns//set-inactive"),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(resolve(Function::All, &Method::GET, "/"), Err(ApiError::NotFound)));
        match resolve(Function::Campaigns, &Method::DELETE, "/api/campaigns/dashboard") {
            Err(ApiError::MethodNotAllowed(allow)) => assert_eq!(allow, "GET, OPTIONS"),
            other => panic!("{other:?}"),
        }
        let set_inactive = format!("/api/campaigns/{CAM}/set-inactive");
        assert!(matches!(
            resolve(Function::Campaigns, &Method::GET, &set_inactive),
            Err(ApiError::MethodNotAllowed(_))
        ));
    }
}
