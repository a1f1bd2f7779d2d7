//! What only Lambda adds to the front door: API Gateway's (HTTP API, payload 2.0) own request
//! id, the authorizer's identity checked before anything else, and `lambda_http::run` serving
//! the function's router.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use lambda_http::request::RequestContext;

use super::{Api, ApiError, Function, RequestId};

/// Serves `function` in Lambda with `api` (assembled once per cold start).
pub async fn run(api: Api, function: Function) -> Result<(), lambda_http::Error> {
    lambda_http::run(api.router(function)).await
}

/// Whether API Gateway's authorizer established who is calling: a JWT's claims or an IAM
/// identity in the request context.
pub fn authenticated(context: Option<&RequestContext>) -> bool {
    // Only the HTTP API's event shape is compiled in (`apigw_http`).
    let authorizer = match context {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref(),
        _ => None,
    };
    authorizer.is_some_and(|a| a.jwt.as_ref().is_some_and(|j| !j.claims.is_empty()) || a.iam.is_some())
}

/// API Gateway's id of the request, when it came through API Gateway.
pub(super) fn gateway_request_id(request: &Request) -> Option<RequestId> {
    match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone().map(RequestId),
        _ => None,
    }
}

/// With auth required (in Lambda), a request without the authorizer's identity is refused
/// with a 401 before anything else; the open routes (`/health`, the console) and CORS preflights (which carry no credentials,
/// and which the CORS layer answers before this) stay open.
pub(super) async fn require_identity(State(required): State<bool>, request: Request, next: Next) -> Response {
    // lemlist cannot present a JWT: its deliveries are checked by the receiver itself.
    let path = request.uri().path();
    let open = super::routes::is_open(path)
        || path.starts_with(crate::hooks::PATH)
        || request.method() == Method::OPTIONS;
    if required && !open && !authenticated(request.extensions().get::<RequestContext>()) {
        tracing::info!(path, "refused: no identity from the authorizer");
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{StatusCode, header};

    use crate::api::tests::{api_with, body, detail, handle};

    /// An API Gateway (HTTP API) event for `path`, with the claims a JWT authorizer found.
    fn event(method: Method, path: &str, claims: Option<&[(&str, &str)]>) -> lambda_http::Request {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
            ApiGatewayV2httpRequestContext,
        };
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.request_id = Some("gw-req-1".into());
        if let Some(claims) = claims {
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            authorizer.jwt = Some(jwt);
            context.authorizer = Some(authorizer);
        }
        let mut request = lambda_http::Request::new(lambda_http::Body::Empty);
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        request.headers_mut().insert(header::ORIGIN, "https://app.example".parse().unwrap());
        request.extensions_mut().insert(RequestContext::ApiGatewayV2(context));
        request
    }

    fn lambda_api(auth_required: bool) -> Api {
        let store = std::sync::Arc::new(crate::snapshot::MemorySnapshots::default());
        api_with(store, std::time::Duration::from_secs(1), auth_required)
    }

    async fn handle_event(api: &Api, function: Function, event: lambda_http::Request) -> Response {
        handle(api, function, event).await
    }

    #[tokio::test]
    async fn with_auth_on_a_request_without_an_identity_is_refused_before_anything_else() {
        let api = lambda_api(true);
        let r = handle_event(&api, Function::Mailboxes, event(Method::GET, "/api/mailboxes", None)).await;
        let (parts, text) = body(r).await;
        assert_eq!((parts.status, detail(&text).as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized"));
        assert_eq!(parts.headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(parts.headers[super::super::REQUEST_ID_HEADER], "gw-req-1");
        assert_eq!(
            parts.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example",
            "a browser can read it"
        );
        let r = handle_event(&api, Function::Mailboxes, event(Method::GET, "/api/nope", None)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "before routing: no route is revealed");
        let r =
            handle_event(&api, Function::Mailboxes, event(Method::GET, "/api/mailboxes", Some(&[]))).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a JWT with no claims is no identity");
        let r = handle_event(
            &api,
            Function::Campaigns,
            event(Method::GET, "/api/campaigns/x/set-inactive", Some(&[("sub", "u1")])),
        )
        .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "identified: on to the routes");
        assert_eq!(r.headers()[super::super::REQUEST_ID_HEADER], "gw-req-1", "API Gateway's id is kept");
        let r = handle_event(&api, Function::Campaigns, event(Method::GET, "/health", None)).await;
        assert_eq!(r.status(), StatusCode::OK, "health stays open");
        let r =
            handle_event(&lambda_api(false), Function::Campaigns, event(Method::GET, "/health", None)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn preflights_pass_without_auth_and_get_their_cors_headers() {
        let mut preflight = event(Method::OPTIONS, "/api/mailboxes", None);
        preflight.headers_mut().insert(header::ACCESS_CONTROL_REQUEST_METHOD, "GET".parse().unwrap());
        let r = handle_event(&lambda_api(true), Function::Mailboxes, preflight).await;
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("GET"));
    }
}
