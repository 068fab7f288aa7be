//! Storage plumbing shared by the services: configuration read and validated at cold
//! start, the AWS SDK configuration (which honours `AWS_ENDPOINT_URL`, so the same code
//! talks to moto locally), and DynamoDB helpers for items and transactions.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shutter_core::ApiError;
use std::collections::HashMap;

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb as dynamodb;
pub use serde_dynamo;

pub type Item = HashMap<String, AttributeValue>;

/// A configuration problem found at cold start: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} must be set")]
    Missing(&'static str),
    #[error("secret {name} could not be read: {reason}")]
    Secret { name: &'static str, reason: String },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required environment variable.
pub fn env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The shared AWS configuration (region, credentials, endpoint) from the environment.
///
/// Lambda hands a function its region and its role's credentials as environment variables
/// (the devstack does the same, plus `AWS_ENDPOINT_URL`), so only those are read. The SDK's
/// full provider chain (profile files, SSO, STS web identity, container and instance
/// metadata) would add about half a megabyte of code to every binary for sources a
/// function never has. Retries, timeouts and stalled-stream protection are the SDK's
/// defaults for the latest behaviour version.
pub async fn aws_config() -> SdkConfig {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let mut config = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region.map(aws_config::Region::new))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        )
        .http_client(https_client());
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL")
        && !url.trim().is_empty()
    {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The SDKs' HTTPS client: rustls with ring, the crypto provider the rest of a function
/// already links (the SDK's default would add aws-lc, about a megabyte per binary).
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Reads a Secrets Manager secret's string value once at cold start.
pub async fn secret_string(
    config: &SdkConfig,
    env_name: &'static str,
) -> Result<String, ConfigError> {
    let arn = env(env_name)?;
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            name: env_name,
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    out.secret_string.ok_or(ConfigError::Secret {
        name: env_name,
        reason: "secret has no string value".to_owned(),
    })
}

/// The signer of pagination cursors, its key read once at cold start from the secret
/// named by `CURSOR_KEY_SECRET_ARN`.
pub async fn cursor_signer(config: &SdkConfig) -> Result<shutter_core::CursorSigner, ConfigError> {
    let key = secret_string(config, "CURSOR_KEY_SECRET_ARN").await?;
    Ok(shutter_core::CursorSigner::new(key.into_bytes()))
}

/// One DynamoDB table of a service.
#[derive(Debug, Clone)]
pub struct Table {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    pub fn new(config: &SdkConfig, name: String) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
            name,
        }
    }

    /// The table named by environment variable `env_name`.
    pub fn from_env(config: &SdkConfig, env_name: &'static str) -> Result<Self, ConfigError> {
        Ok(Self::new(config, env(env_name)?))
    }

    /// Reads one item by key, strongly consistent (reads follow the caller's own writes).
    pub async fn get<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(ApiError::internal)?;
        out.item.map(from_item).transpose()
    }
}

impl Table {
    /// Every item of `keys` that exists, in batches of 100 keys,
    /// sending again what DynamoDB left unprocessed. Returns the number of requests made
    /// with the items, for callers that count them.
    pub async fn batch_get_counted(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<(Vec<Item>, u64), ApiError> {
        let mut out = Vec::new();
        let mut requests = 0;
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut attempts = 0;
            while !pending.is_empty() {
                attempts += 1;
                requests += 1;
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(consistent)
                    .build()
                    .map_err(ApiError::internal)?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(ApiError::internal)?;
                out.extend(
                    answer
                        .responses
                        .and_then(|mut r| r.remove(&self.name))
                        .unwrap_or_default(),
                );
                pending = answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.name))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if attempts > 5 && !pending.is_empty() {
                    return Err(ApiError::internal(std::io::Error::other(
                        "batch get kept throttling",
                    )));
                }
            }
        }
        Ok((out, requests))
    }

    /// [`Table::batch_get_counted`], strongly consistent (reads follow the caller's own
    /// writes), without the count.
    pub async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, ApiError> {
        Ok(self.batch_get_counted(keys, true).await?.0)
    }

    /// One page of partition `pk` in sort-key order, newest (highest) first when
    /// `newest_first`: up to `limit` items strictly beyond `after` in that order (all
    /// that one request returns when `limit` is none).
    pub async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, ApiError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.name)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(!newest_first)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)));
        query = match after {
            Some(after) => query
                .key_condition_expression(if newest_first {
                    "pk = :pk AND sk < :after"
                } else {
                    "pk = :pk AND sk > :after"
                })
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await.map_err(ApiError::internal)?;
        Ok(out.items.unwrap_or_default())
    }
}

/// The key of an item: `pk` and `sk`.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn to_item<T: Serialize>(value: &T) -> Result<Item, ApiError> {
    serde_dynamo::to_item(value).map_err(ApiError::internal)
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, ApiError> {
    serde_dynamo::from_item(item).map_err(ApiError::internal)
}

/// Why each action of a cancelled transaction failed (`ConditionalCheckFailed`, `None`,
/// ...), in action order; empty when the transaction failed for another reason.
pub fn cancellation_reasons(err: &SdkError<TransactWriteItemsError>) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// True when action `index` of a cancelled transaction failed its condition.
pub fn condition_failed_at(reasons: &[String], index: usize) -> bool {
    reasons
        .get(index)
        .is_some_and(|r| r == "ConditionalCheckFailed")
}

/// Seconds since the epoch, for `ttl` attributes.
pub fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_reasons_are_read_by_index() {
        let reasons = vec!["None".to_owned(), "ConditionalCheckFailed".to_owned()];
        assert!(!condition_failed_at(&reasons, 0));
        assert!(condition_failed_at(&reasons, 1));
        assert!(!condition_failed_at(&reasons, 5));
    }

    #[test]
    fn missing_configuration_names_the_variable() {
        let err = env("SHUTTER_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SHUTTER_SURELY_UNSET_VARIABLE must be set"
        );
    }
}
