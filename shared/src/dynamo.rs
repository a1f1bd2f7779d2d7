//! DynamoDB plumbing shared by the limiter table and the snapshot table: clients, and creating
//! a missing table on a local emulator (never against AWS, where the infra template owns the tables).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};

/// How long a DynamoDB call may take, all attempts included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadlines {
    /// Short, so that an outage is noticed in about a second (the limiter then falls back to
    /// degraded pacing, a page to its last snapshot) instead of hanging.
    FailFast,
    /// The webhook receiver's: it has no fallback, and lemlist waits for its answer, so a slow
    /// write answered late beats a 503 and a retry. Under the function's 10 s timeout.
    Receiver,
}

impl Deadlines {
    fn config(
        self,
    ) -> (aws_sdk_dynamodb::config::timeout::TimeoutConfig, aws_sdk_dynamodb::config::retry::RetryConfig)
    {
        let (attempt, operation, attempts) = match self {
            Deadlines::FailFast => (Duration::from_millis(800), Duration::from_secs(2), 2),
            Deadlines::Receiver => (Duration::from_secs(3), Duration::from_secs(8), 3),
        };
        let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(500))
            .operation_attempt_timeout(attempt)
            .operation_timeout(operation)
            .build();
        (timeouts, aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(attempts))
    }
}

/// A DynamoDB client from the AWS configuration the composition root loaded once (region,
/// credentials, `AWS_ENDPOINT_URL_DYNAMODB`), failing fast.
pub fn client(aws: &aws_config::SdkConfig) -> Client {
    client_with(aws, Deadlines::FailFast)
}

/// A DynamoDB client from the AWS configuration, within `deadlines`.
pub fn client_with(aws: &aws_config::SdkConfig, deadlines: Deadlines) -> Client {
    let (timeouts, retry) = deadlines.config();
    let config =
        aws_sdk_dynamodb::config::Builder::from(aws).timeout_config(timeouts).retry_config(retry).build();
    Client::from_conf(config)
}

/// A client for a local emulator at `endpoint`, with the fixed test credentials DynamoDB Local
/// expects, failing fast.
pub fn local_client(endpoint: &str) -> Client {
    local_client_with(endpoint, Deadlines::FailFast)
}

/// A client for a local emulator at `endpoint`, within `deadlines`.
pub fn local_client_with(endpoint: &str, deadlines: Deadlines) -> Client {
    let (timeouts, retry) = deadlines.config();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "lemdash-local"))
        .timeout_config(timeouts)
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

/// Creates `table` if it is missing: on-demand, a string partition key, an optional string
/// sort key, TTL on `ttl_attribute`. Only ever called against a local emulator.
pub async fn create_table_if_missing(
    client: &Client,
    table: &str,
    partition_key: &str,
    sort_key: Option<&str>,
    ttl_attribute: &str,
) -> Result<(), String> {
    let mut create = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in
        std::iter::once((partition_key, KeyType::Hash)).chain(sort_key.map(|s| (s, KeyType::Range)))
    {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
    }
    match create.send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if matches!(e.err(), CreateTableError::ResourceInUseException(_)) => {
            return Ok(());
        }
        Err(e) => return Err(DisplayErrorContext(&e).to_string()),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl_attribute)
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    tracing::info!(table, "created a missing table on the local DynamoDB emulator");
    Ok(())
}
