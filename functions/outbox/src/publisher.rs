//! `outbox-publisher`: reads INSERTs of outbox items from a service table's stream and
//! sends each event to its topic, keyed by aggregate id.
//!
//! Records are published in stream order. The first failure stops the batch and is
//! reported as the batch item failure, so Lambda retries from that record and no later
//! record overtakes it (one aggregate's events stay in order). A record that can never be
//! published (not an envelope) is poison: it is logged and skipped here rather than
//! blocking the shard, and the stream mapping's on-failure destination is for the rest.
//! Events are relayed as written, whatever their type: the publisher does not need to
//! know an event to carry it.

use std::convert::Infallible;
use std::future::Future;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::Value;
use shutter_events::OutboxMessage;
use shutter_events::publisher::KafkaPublisher;

/// Where messages go: Kafka in production, a recorder in unit tests.
pub trait Sink {
    fn send(&self, msg: &OutboxMessage) -> impl Future<Output = Result<(), String>> + Send;
}

impl Sink for KafkaPublisher {
    async fn send(&self, msg: &OutboxMessage) -> Result<(), String> {
        self.publish(msg).await.map_err(|e| e.to_string())
    }
}

/// The function's entry: one stream batch (as raw JSON, the Lambda event shape). It
/// never fails as a whole; what could not be sent is in the answer.
pub async fn on_stream(
    kafka: &KafkaPublisher,
    event: Value,
) -> Result<DynamoDbEventResponse, Infallible> {
    Ok(handle(kafka, &event).await)
}

/// Handles one DynamoDB Streams batch (as raw JSON: the Lambda event shape).
pub async fn handle<S: Sink>(sink: &S, event: &Value) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for record in &records {
        let seq = record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
            continue;
        }
        let Some(image) = record.pointer("/dynamodb/NewImage") else {
            continue;
        };
        let msg = match OutboxMessage::from_image(image) {
            None => continue,
            Some(Err(err)) => {
                tracing::error!(sequence_number = %seq, error = %err, "poison outbox item skipped");
                continue;
            }
            Some(Ok(msg)) => msg,
        };
        if let Err(err) = sink.send(&msg).await {
            tracing::warn!(sequence_number = %seq, event_id = %msg.event_id, error = %err, "publish failed; batch retried from here");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq);
            response.batch_item_failures.push(failure);
            break;
        }
        tracing::info!(event_id = %msg.event_id, event_type = %msg.event_type, topic = %msg.topic, "event published");
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use shutter_core::UserId;
    use shutter_events::{Envelope, Event, UserRegistered};

    use super::*;

    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<String>>,
        fail_on: Option<String>,
    }

    impl Sink for Recorder {
        async fn send(&self, msg: &OutboxMessage) -> Result<(), String> {
            if self.fail_on.as_deref() == Some(msg.event_id.as_str()) {
                return Err("broker down".into());
            }
            self.sent.lock().unwrap().push(msg.event_id.clone());
            Ok(())
        }
    }

    fn record(seq: &str, name: &str, env: Option<&Envelope>) -> Value {
        let image = match env {
            Some(env) => serde_json::json!({
                "pk": {"S": format!("OUTBOX#{}", env.id)}, "sk": {"S": "OUTBOX"},
                "topic": {"S": env.topic().name()}, "event": {"S": env.to_json().unwrap()}
            }),
            None => serde_json::json!({"pk": {"S": "USER#1"}, "sk": {"S": "ACCOUNT"}}),
        };
        serde_json::json!({"eventName": name, "dynamodb": {"SequenceNumber": seq, "NewImage": image}})
    }

    fn env() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::UserRegistered(UserRegistered {
                user_id: user.clone(),
                username: "ann".into(),
                created_at: "2026-11-25T10:00:00.000Z".into(),
            }),
            Some(&user),
            "c",
        )
    }

    fn id(env: &Envelope) -> String {
        env.id.to_string()
    }

    #[tokio::test]
    async fn publishes_outbox_inserts_only_in_order() {
        let (a, b) = (env(), env());
        let batch = serde_json::json!({"Records": [
            record("1", "INSERT", Some(&a)), record("2", "INSERT", None),
            record("3", "REMOVE", Some(&b)), record("4", "INSERT", Some(&b)),
        ]});
        let sink = Recorder::default();
        let resp = handle(&sink, &batch).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(*sink.sent.lock().unwrap(), vec![id(&a), id(&b)]);
    }

    #[tokio::test]
    async fn a_failure_stops_the_batch_and_is_reported() {
        let (a, b, c) = (env(), env(), env());
        let batch = serde_json::json!({"Records": [
            record("1", "INSERT", Some(&a)), record("2", "INSERT", Some(&b)), record("3", "INSERT", Some(&c)),
        ]});
        let sink = Recorder {
            fail_on: Some(id(&b)),
            ..Default::default()
        };
        let resp = handle(&sink, &batch).await;
        assert_eq!(resp.batch_item_failures.len(), 1);
        assert_eq!(
            resp.batch_item_failures[0].item_identifier.as_deref(),
            Some("2")
        );
        assert_eq!(
            *sink.sent.lock().unwrap(),
            vec![id(&a)],
            "c must not overtake b"
        );
    }
}
