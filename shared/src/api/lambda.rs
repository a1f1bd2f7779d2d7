//! The Lambda adapter: API Gateway (HTTP API, payload 2.0) events in, [`Api::handle`]'s
//! responses out. It checks the authorizer's identity and names the request with API Gateway's
//! own request id; everything else is the HTTP logic's.

use bytes::Bytes;
use http::{Method, Request, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use super::{Api, ApiError, Function, RequestId, response};

/// Serves `function` in Lambda with `api` (assembled once per cold start).
pub async fn run(api: Api, function: Function) -> Result<(), lambda_http::Error> {
    let api = &api;
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| async move {
        Ok::<_, std::convert::Infallible>(handle_event(api, function, event).await)
    }))
    .await
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

/// API Gateway's id of the request, when the event carries one.
fn gateway_request_id(context: Option<&RequestContext>) -> Option<RequestId> {
    match context {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone().map(RequestId),
        _ => None,
    }
}

/// One API Gateway event: refused with a 401 when auth is required and the authorizer
/// established no identity (`/health` excepted, and CORS preflights, which carry no
/// credentials); otherwise [`Api::handle`].
pub async fn handle_event(api: &Api, function: Function, event: lambda_http::Request) -> Response<String> {
    let request_id = gateway_request_id(event.request_context_ref()).unwrap_or_else(RequestId::generate);
    let open = event.uri().path() == "/health" || event.method() == Method::OPTIONS;
    if api.auth_required && !open && !authenticated(event.request_context_ref()) {
        tracing::info!(path = event.uri().path(), request_id = %request_id.0, "refused: no identity from the authorizer");
        let mut r = response::error(&ApiError::Unauthorized, &request_id.0);
        let origin = event.headers().get(http::header::ORIGIN).and_then(|o| o.to_str().ok());
        api.finish(&mut r, origin, &request_id.0);
        return r;
    }
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(request_id);
    api.handle(function, Request::from_parts(parts, Bytes::copy_from_slice(&body))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{StatusCode, header};

    use crate::api::tests::{api_with, detail};

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

    #[tokio::test]
    async fn with_auth_on_a_request_without_an_identity_is_refused_before_anything_else() {
        let api = lambda_api(true);
        let r = handle_event(&api, Function::Mailboxes, event(Method::GET, "/api/mailboxes", None)).await;
        assert_eq!((r.status(), detail(&r).as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized"));
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(r.headers()[super::super::REQUEST_ID_HEADER], "gw-req-1");
        assert_eq!(
            r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example",
            "a browser can read it"
        );
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
        let r = handle_event(
            &lambda_api(true),
            Function::Mailboxes,
            event(Method::OPTIONS, "/api/mailboxes", None),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, OPTIONS");
    }
}
