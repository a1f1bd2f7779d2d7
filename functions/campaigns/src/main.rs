//! `lemdash-campaigns`: `GET /api/campaigns/dashboard` and `POST /api/campaigns/{id}/set-inactive`
//! behind API Gateway. Configuration is read and clients are built once per cold start.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lemdash_shared::api::run_lambda(lemdash_shared::api::Function::Campaigns).await
}
