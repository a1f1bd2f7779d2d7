//! `lemdash-mailboxes`: `GET /api/mailboxes` and `POST /api/mailboxes/{id}/start-lemwarm|stop-lemwarm`
//! behind API Gateway. The app is assembled once per cold start.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lemdash_shared::app::run_http_function(lemdash_shared::api::Function::Mailboxes).await
}
