//! `lemdash-campaigns`: `GET /api/campaigns/dashboard` and `POST /api/campaigns/{id}/set-inactive`
//! behind API Gateway. The app is assembled once per cold start.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lemdash_shared::app::run_http_function(lemdash_shared::api::Function::Campaigns).await
}
