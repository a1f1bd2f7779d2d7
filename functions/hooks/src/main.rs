//! `lemdash-hooks`: `POST /hooks/lemlist/{token}/{type}` behind API Gateway, outside the JWT
//! authorizer. Each delivery is checked and kept once in the events table before the 2xx; the
//! table's stream hands it to the refresh function, which folds it. This function holds no
//! lemlist key and its role may write events and nothing else.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lemdash_shared::app::run_hooks_function().await
}
