//! The loop every MSK consumer runs: decode each record, apply it, send what can never be
//! applied to the dead-letter queue with the reason, and fail the batch on anything
//! retryable (Lambda then retries it; effects are idempotent, so replays do no harm).

use std::future::Future;

use async_trait::async_trait;
use shutter_core::ApiError;

use crate::{Envelope, KafkaEvent, decode_kafka_event};

/// Where records that can never be applied go, with why.
#[async_trait]
pub trait PoisonQueue: Send + Sync {
    async fn send(&self, position: &str, reason: &str, record: &str) -> Result<(), ApiError>;
}

/// The SQS dead-letter queue adapter; `source` names the consumer in each message.
#[derive(Debug, Clone)]
pub struct SqsPoisonQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub source: &'static str,
}

impl SqsPoisonQueue {
    /// The queue named by `EVENTS_DLQ_URL`.
    pub fn from_env(
        config: &shutter_store::SdkConfig,
        source: &'static str,
    ) -> Result<Self, shutter_store::ConfigError> {
        Ok(Self {
            client: aws_sdk_sqs::Client::new(config),
            queue_url: shutter_store::env("EVENTS_DLQ_URL")?,
            source,
        })
    }
}

#[async_trait]
impl PoisonQueue for SqsPoisonQueue {
    async fn send(&self, position: &str, reason: &str, record: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({"source": self.source, "position": position, "reason": reason, "record": record});
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(ApiError::internal)
    }
}

/// Applies every record of `event` in partition order with `apply`. A record that does not
/// decode, or whose effect fails for a reason a retry cannot fix (a 4xx), goes to `poison`;
/// a retryable failure stops and fails the whole batch.
pub async fn consume<Q, F, Fut>(
    event: &KafkaEvent,
    poison: &Q,
    mut apply: F,
) -> Result<(), ApiError>
where
    Q: PoisonQueue,
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Result<(), ApiError>>,
{
    for record in decode_kafka_event(event) {
        let envelope = match record.event {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::error!(position = %record.position, error = %err, "poison record sent to the DLQ");
                poison.send(&record.position, &err.to_string(), "").await?;
                continue;
            }
        };
        let text = serde_json::to_string(&envelope).unwrap_or_default();
        let event_id = envelope.id.clone();
        if let Err(err) = apply(envelope).await {
            if err.is_retryable() {
                return Err(err);
            }
            tracing::error!(position = %record.position, event_id = %event_id, error = %err, "poison event sent to the DLQ");
            poison
                .send(&record.position, &err.to_string(), &text)
                .await?;
        }
    }
    Ok(())
}

/// An in-memory poison queue for unit tests.
#[derive(Debug, Default)]
pub struct MemoryPoisonQueue {
    pub sent: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl PoisonQueue for MemoryPoisonQueue {
    async fn send(&self, position: &str, reason: &str, _record: &str) -> Result<(), ApiError> {
        self.sent
            .lock()
            .map_err(|_| ApiError::internal(std::io::Error::other("poisoned lock")))?
            .push((position.to_owned(), reason.to_owned()));
        Ok(())
    }
}
