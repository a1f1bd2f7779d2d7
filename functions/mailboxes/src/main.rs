//! `lemdash-mailboxes`: `GET /api/mailboxes` and `POST /api/mailboxes/{id}/start-lemwarm|stop-lemwarm`
//! behind API Gateway. Configuration is read and clients are built once per cold start.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lemdash_shared::api::run_lambda(lemdash_shared::api::Function::Mailboxes).await
}
