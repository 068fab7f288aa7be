//! Event source mappings, as Lambda runs them: pollers for DynamoDB Streams, SQS and MSK
//! (Kafka) that batch records, invoke the function, honour `ReportBatchItemFailures`,
//! retry, bisect, and send what they give up on to the `OnFailure` destination.

mod dynamodb;
pub mod filter;
mod msk;
mod sqs;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::aws::MotoJson;
use crate::provision::Provisioned;
use crate::runtime::Function;
use crate::template::{ACCOUNT, REGION};

/// What every poller needs.
#[derive(Clone)]
pub struct Source {
    pub function: Arc<Function>,
    pub event_name: String,
    pub props: Value,
    pub moto: MotoJson,
    pub stop: CancellationToken,
    /// The `OnFailure` destination's queue URL.
    pub on_failure: Option<String>,
    pub filters: filter::Filters,
}

impl Source {
    fn batch_size(&self, default: u64) -> usize {
        self.props["BatchSize"].as_u64().unwrap_or(default) as usize
    }

    fn reports_item_failures(&self) -> bool {
        self.props["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures"))
    }

    /// -1 (the default) retries until the records expire, which locally means forever.
    fn max_retries(&self) -> i64 {
        self.props["MaximumRetryAttempts"].as_i64().unwrap_or(-1)
    }

    fn name(&self) -> String {
        format!("{}.{}", self.function.spec.name, self.event_name)
    }

    /// Sleeps for the backoff of the `attempt`th retry; false when stopping.
    async fn backoff(&self, attempt: u32) -> bool {
        let wait = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
            .min(Duration::from_secs(5));
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Sends Lambda's invocation record for a batch it gave up on to the destination.
    async fn send_to_destination(&self, condition: &str, attempts: u32, batch_info: (&str, Value)) {
        let Some(url) = &self.on_failure else {
            tracing::error!(
                "{}: dropped a batch after {attempts} attempts ({condition}); no OnFailure destination",
                self.name()
            );
            return;
        };
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut record = json!({
            "requestContext": {
                "requestId": ulid::Ulid::new().to_string().to_lowercase(),
                "functionArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.function.spec.name),
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": now,
        });
        record[batch_info.0] = batch_info.1;
        let sent = self
            .moto
            .sqs(
                "SendMessage",
                &json!({"QueueUrl": url, "MessageBody": record.to_string()}),
            )
            .await;
        match sent {
            Ok(_) => tracing::warn!(
                "{}: sent a failed batch to its OnFailure destination",
                self.name()
            ),
            Err(e) => tracing::error!(
                "{}: could not reach the OnFailure destination: {e}",
                self.name()
            ),
        }
    }
}

/// Starts a poller for every `DynamoDB`, `SQS` and `MSK` event of every function.
pub fn start_all(
    functions: &[Arc<Function>],
    provisioned: &Provisioned,
    moto: &MotoJson,
    kafka_bootstrap: &str,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut tasks = Vec::new();
    for function in functions {
        for (event_name, ty, props) in &function.spec.events {
            if props["Enabled"] == json!(false)
                || !matches!(ty.as_str(), "DynamoDB" | "SQS" | "MSK")
            {
                continue;
            }
            let on_failure = match props["DestinationConfig"]["OnFailure"]["Destination"].as_str() {
                Some(arn) => Some(provisioned.queue_url(arn)?.to_owned()),
                None => None,
            };
            let source = Source {
                function: function.clone(),
                event_name: event_name.clone(),
                props: props.clone(),
                moto: moto.clone(),
                stop: stop.child_token(),
                on_failure,
                filters: filter::Filters::from_props(props).map_err(Error::Template)?,
            };
            tasks.push(match ty.as_str() {
                "DynamoDB" => tokio::spawn(dynamodb::run(source)),
                "SQS" => {
                    let arn = props["Queue"].as_str().unwrap_or_default();
                    let url = provisioned.queue_url(arn)?.to_owned();
                    tokio::spawn(sqs::run(source, arn.to_owned(), url))
                }
                _ => tokio::spawn(msk::run(source, kafka_bootstrap.to_owned())?),
            });
        }
    }
    Ok(tasks)
}

/// The ids a partial batch response names as failed, or `None` for a clean success.
/// A malformed response, or an id not in the batch, fails the whole batch, as in Lambda.
fn failed_items(response: &Value) -> Option<Result<Vec<String>, ()>> {
    let failures = response.get("batchItemFailures")?.as_array()?;
    if failures.is_empty() {
        return None;
    }
    Some(
        failures
            .iter()
            .map(|f| {
                f["itemIdentifier"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .ok_or(())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_batch_responses() {
        assert_eq!(failed_items(&json!(null)), None);
        assert_eq!(failed_items(&json!({"batchItemFailures": []})), None);
        assert_eq!(
            failed_items(&json!({"batchItemFailures": [{"itemIdentifier": "7"}]})),
            Some(Ok(vec!["7".to_owned()]))
        );
        assert_eq!(
            failed_items(&json!({"batchItemFailures": [{"itemIdentifier": ""}]})),
            Some(Err(()))
        );
    }
}
