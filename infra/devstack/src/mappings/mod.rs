//! Event source mappings, as Lambda runs them: pollers for DynamoDB Streams, SQS and MSK
//! (Kafka) that batch records, invoke the function, honour `ReportBatchItemFailures`,
//! retry, bisect, and send what they give up on to the `OnFailure` destination.

mod dynamodb;
pub mod filter;
mod msk;
mod schedule;
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

/// How the mappings deliver batches: as Lambda usually does, or with the redeliveries
/// and reorderings its contract allows (at least once; order kept only within a Kafka
/// partition or a stream's item), so the suites show that no consumer relies on luck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Every invocation of every mapping is made twice in a row, with the same batch.
    pub twice: bool,
    /// A Kafka batch's partitions go to the function one by one in a random order (each
    /// partition's records in order); an SQS batch's messages are shuffled.
    pub reorder: bool,
}

impl Delivery {
    /// The environment variable that sets it: `once` (or unset), `twice`, `reorder`, or
    /// both as `twice,reorder`.
    pub const ENV: &'static str = "DEVSTACK_DELIVERY";

    pub fn parse(value: &str) -> Result<Self, String> {
        let mut delivery = Self::default();
        for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "once" => {}
                "twice" => delivery.twice = true,
                "reorder" => delivery.reorder = true,
                other => {
                    return Err(format!(
                        "{}={value}: {other:?} is none of once, twice, reorder",
                        Self::ENV
                    ));
                }
            }
        }
        Ok(delivery)
    }

    /// From [`Delivery::ENV`]; unset is `once`.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var(Self::ENV).unwrap_or_default())
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.twice, self.reorder) {
            (false, false) => "once",
            (true, false) => "twice",
            (false, true) => "reorder",
            (true, true) => "twice,reorder",
        })
    }
}

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
    pub delivery: Delivery,
}

impl Source {
    fn batch_size(&self, default: u64) -> usize {
        integer(&self.props["BatchSize"])
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(default) as usize
    }

    fn reports_item_failures(&self) -> bool {
        self.props["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures"))
    }

    /// -1 (the default) retries until the records expire, which locally means forever.
    fn max_retries(&self) -> i64 {
        integer(&self.props["MaximumRetryAttempts"]).unwrap_or(-1)
    }

    fn name(&self) -> String {
        format!("{}.{}", self.function.spec.name, self.event_name)
    }

    /// Invokes the function with a batch; under [`Delivery::twice`] a second time right
    /// after, whose answer is the one the mapping acts on.
    async fn invoke(&self, event: &Value) -> Result<Value, crate::InvokeError> {
        let first = self.function.invoke(event).await;
        if !self.delivery.twice || first == Err(crate::InvokeError::Stopped) {
            return first;
        }
        self.function.invoke(event).await
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
    delivery: Delivery,
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
                delivery,
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
    tasks.extend(schedule::start_all(functions, stop)?);
    Ok(tasks)
}

/// A number property: a number, or a string when it comes from a template parameter
/// (parameters are strings).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// A boolean property, written as a boolean or (from a parameter) as a string.
fn flag(v: &Value) -> bool {
    v.as_bool()
        .or_else(|| v.as_str()?.trim().parse().ok())
        .unwrap_or(false)
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
    fn delivery_modes_parse_from_the_environment_value() {
        assert_eq!(Delivery::parse(""), Ok(Delivery::default()));
        assert_eq!(Delivery::parse("once"), Ok(Delivery::default()));
        let twice = Delivery::parse("twice").unwrap();
        assert!(twice.twice && !twice.reorder);
        let both = Delivery::parse("twice, reorder").unwrap();
        assert!(both.twice && both.reorder);
        assert_eq!(both.to_string(), "twice,reorder");
        assert!(Delivery::parse("thrice").is_err());
    }

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
