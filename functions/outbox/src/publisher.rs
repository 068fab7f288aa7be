//! `outbox-publisher`: reads INSERTs of outbox items from a service table's stream,
//! sends each event to its topic, keyed by aggregate id, and marks each item published.
//!
//! Records are published in stream order. The first failure stops the batch and is
//! reported as the batch item failure, so Lambda retries from that record and no later
//! record overtakes it (one aggregate's events stay in order). A record that can never be
//! published (not an envelope) is logged and skipped here rather than blocking the shard;
//! its item stays pending, and the sweeper sends it to the dead-letter queue. Events are
//! relayed as written, whatever their type: the publisher does not need to know an event
//! to carry it.
//!
//! What was sent is marked published (its item leaves the pending index) once the batch
//! is done, all marks at once. A mark that fails is logged, not retried: the item stays
//! pending and the sweeper sends it again, a duplicate that consumers drop by event id.
//! When the stream mapping gives up on a batch (the broker was down through all its
//! retries), only the batch's position reaches the dead-letter queue, and that is enough:
//! the items are still pending, and the sweeper publishes them.

use std::convert::Infallible;
use std::future::Future;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::Value;
use shutter_events::OutboxMessage;
use shutter_events::publisher::KafkaPublisher;
use shutter_store::StoreError;

use crate::Relay;
use crate::store::OutboxStore;

/// Where messages go: Kafka in production, a recorder in unit tests.
pub trait Sink: Sync {
    fn send(&self, msg: &OutboxMessage) -> impl Future<Output = Result<(), String>> + Send;
}

impl Sink for KafkaPublisher {
    async fn send(&self, msg: &OutboxMessage) -> Result<(), String> {
        self.publish(msg).await.map_err(|e| e.to_string())
    }
}

/// The function's entry: one stream batch (as raw JSON, the Lambda event shape). It
/// never fails as a whole; what could not be sent is in the answer.
pub async fn on_stream(relay: &Relay, event: Value) -> Result<DynamoDbEventResponse, Infallible> {
    Ok(handle(&relay.kafka, &relay.outbox, &event).await)
}

/// The table a stream record comes from, by its `eventSourceARN`
/// (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`).
pub fn table_of(stream_arn: &str) -> Option<&str> {
    let (_, rest) = stream_arn.split_once(":table/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// Handles one DynamoDB Streams batch (as raw JSON: the Lambda event shape).
pub async fn handle<S: Sink, O: OutboxStore>(
    sink: &S,
    outbox: &O,
    event: &Value,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // (table, event id) of each message sent.
    let mut sent: Vec<(String, String)> = Vec::new();
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
                tracing::error!(sequence_number = %seq, error = %err, "poison outbox item skipped; the sweeper sends it to the DLQ");
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
        let table = record
            .get("eventSourceARN")
            .and_then(Value::as_str)
            .and_then(table_of);
        match table {
            Some(table) => sent.push((table.to_owned(), msg.event_id)),
            None => {
                tracing::warn!(event_id = %msg.event_id, "record names no table; its item stays pending until the sweeper marks it")
            }
        }
    }
    mark_all(outbox, &sent).await;
    response
}

/// Marks every sent item published, all at once; a failure is only logged (see the
/// module docs).
pub async fn mark_all<O: OutboxStore>(outbox: &O, sent: &[(String, String)]) {
    let marks = sent
        .iter()
        .map(|(table, id)| async move { (table, id, outbox.mark_published(table, id).await) });
    for (table, id, result) in futures::future::join_all(marks).await {
        match result {
            Ok(()) => {}
            // Expired since an earlier mark: there is nothing left to mark.
            Err(StoreError::Conflict(_)) => {
                tracing::debug!(table = %table, event_id = %id, "outbox item gone before its mark")
            }
            Err(err) => {
                tracing::warn!(table = %table, event_id = %id, error = %err, "could not mark the outbox item published; the sweeper will send it again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_events::Envelope;

    use super::*;
    use crate::store::MemoryOutbox;
    use crate::test_support::{Recorder, envelope, pending};

    const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/IdentityTable/stream/2026-11-25T09:00:00.000";

    fn record(seq: &str, name: &str, env: Option<&Envelope>) -> Value {
        let image = match env {
            Some(env) => serde_json::json!({
                "pk": {"S": format!("OUTBOX#{}", env.id)}, "sk": {"S": "OUTBOX"},
                "topic": {"S": env.topic().name()}, "event": {"S": env.to_json().unwrap()}
            }),
            None => serde_json::json!({"pk": {"S": "USER#1"}, "sk": {"S": "ACCOUNT"}}),
        };
        serde_json::json!({"eventName": name, "eventSourceARN": ARN, "dynamodb": {"SequenceNumber": seq, "NewImage": image}})
    }

    fn id(env: &Envelope) -> String {
        env.id.to_string()
    }

    /// The outbox with `envs` pending in IdentityTable.
    fn outbox_of(envs: &[&Envelope]) -> MemoryOutbox {
        let outbox = MemoryOutbox::default();
        for (i, env) in envs.iter().enumerate() {
            outbox.insert(pending("IdentityTable", env, i as i64));
        }
        outbox
    }

    #[test]
    fn the_table_comes_from_the_stream_arn() {
        assert_eq!(table_of(ARN), Some("IdentityTable"));
        assert_eq!(table_of("arn:aws:sqs:us-east-1:1:q"), None);
    }

    #[tokio::test]
    async fn publishes_outbox_inserts_only_in_order_and_marks_them_published() {
        let (a, b) = (envelope("a"), envelope("b"));
        let batch = serde_json::json!({"Records": [
            record("1", "INSERT", Some(&a)), record("2", "INSERT", None),
            record("3", "REMOVE", Some(&b)), record("4", "INSERT", Some(&b)),
        ]});
        let (sink, outbox) = (Recorder::default(), outbox_of(&[&a, &b]));
        let resp = handle(&sink, &outbox, &batch).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(sink.sent(), vec![id(&a), id(&b)]);
        assert!(outbox.still_pending("IdentityTable").is_empty());
    }

    #[tokio::test]
    async fn a_failure_stops_the_batch_is_reported_and_leaves_the_rest_pending() {
        let (a, b, c) = (envelope("a"), envelope("b"), envelope("c"));
        let batch = serde_json::json!({"Records": [
            record("1", "INSERT", Some(&a)), record("2", "INSERT", Some(&b)), record("3", "INSERT", Some(&c)),
        ]});
        let sink = Recorder::failing_on(&[&id(&b)]);
        let outbox = outbox_of(&[&a, &b, &c]);
        let resp = handle(&sink, &outbox, &batch).await;
        assert_eq!(resp.batch_item_failures.len(), 1);
        assert_eq!(
            resp.batch_item_failures[0].item_identifier.as_deref(),
            Some("2")
        );
        assert_eq!(sink.sent(), vec![id(&a)], "c must not overtake b");
        assert_eq!(outbox.still_pending("IdentityTable"), vec![id(&b), id(&c)]);
    }

    #[tokio::test]
    async fn a_failed_mark_fails_nothing_and_leaves_the_item_to_the_sweeper() {
        let (a, b) = (envelope("a"), envelope("b"));
        let batch = serde_json::json!({"Records": [
            record("1", "INSERT", Some(&a)), record("2", "INSERT", Some(&b)),
        ]});
        let (sink, outbox) = (Recorder::default(), outbox_of(&[&a, &b]));
        outbox.failing_marks.lock().unwrap().push(id(&a));
        let resp = handle(&sink, &outbox, &batch).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(sink.sent(), vec![id(&a), id(&b)]);
        assert_eq!(outbox.still_pending("IdentityTable"), vec![id(&a)]);
    }

    #[tokio::test]
    async fn an_item_gone_before_its_mark_is_no_failure() {
        let a = envelope("a");
        let batch = serde_json::json!({"Records": [record("1", "INSERT", Some(&a))]});
        let (sink, outbox) = (Recorder::default(), MemoryOutbox::default());
        let resp = handle(&sink, &outbox, &batch).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(sink.sent(), vec![id(&a)]);
    }
}
