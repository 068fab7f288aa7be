//! The string-typed event API that services used before the catalogue, kept only while
//! they move to it: an envelope whose `type` is a string and whose `data` is untyped JSON.
//! Its wire format is the catalogue's, so both kinds of services interoperate. Delete
//! this module when nothing imports it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use shutter_store::dynamodb::types::{Put, TransactWriteItem};
use shutter_store::{Item, n, s};

pub use crate::consumer::legacy::{MemoryPoisonQueue, consume};
pub use crate::{KafkaEvent, KafkaRecord, PoisonQueue, SqsPoisonQueue};

/// Outbox items expire a day after they are written; the publisher has long sent them.
const OUTBOX_TTL_SECONDS: i64 = 24 * 3600;

/// The envelope every event travels in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// ULID; consumers deduplicate on it.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: String,
    /// The user whose request caused the event, if any.
    pub actor: Option<String>,
    /// Kafka key: one aggregate's events stay in order on one partition.
    pub aggregate_id: String,
    pub correlation_id: String,
    pub data: serde_json::Value,
}

impl Envelope {
    pub fn new<T: Serialize>(
        event_type: &str,
        aggregate_id: &str,
        actor: Option<&str>,
        correlation_id: &str,
        data: &T,
    ) -> Self {
        Self {
            id: shutter_core::new_id(),
            event_type: event_type.to_owned(),
            version: 1,
            occurred_at: shutter_core::now_rfc3339(),
            actor: actor.map(str::to_owned),
            aggregate_id: aggregate_id.to_owned(),
            correlation_id: correlation_id.to_owned(),
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// `data` as the event's typed payload.
    pub fn data<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_value(self.data.clone()).map_err(|e| DecodeError::Payload(e.to_string()))
    }

    /// The same event as the catalogue reads it (the two share a wire format).
    pub fn typed(&self) -> Result<crate::Decoded, crate::DecodeError> {
        let json =
            serde_json::to_vec(self).map_err(|e| crate::DecodeError::Envelope(e.to_string()))?;
        crate::Envelope::decode(&json)
    }
}

/// The outbox item for `envelope`, bound for `topic`: add it to the transaction that makes
/// the change. Keys: `pk = OUTBOX#<event id>`, `sk = OUTBOX`.
pub fn outbox_put(table: &str, topic: &str, envelope: &Envelope) -> TransactWriteItem {
    let item: Item = HashMap::from([
        ("pk".to_owned(), s(format!("OUTBOX#{}", envelope.id))),
        ("sk".to_owned(), s("OUTBOX")),
        ("topic".to_owned(), s(topic)),
        ("key".to_owned(), s(&envelope.aggregate_id)),
        ("event_type".to_owned(), s(&envelope.event_type)),
        (
            "event".to_owned(),
            s(serde_json::to_string(envelope).unwrap_or_default()),
        ),
        (
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + OUTBOX_TTL_SECONDS),
        ),
    ]);
    #[allow(clippy::expect_used)]
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("table name and item are set");
    TransactWriteItem::builder().put(put).build()
}

/// Why a record could not be turned into an event. Such records are poison: retrying
/// them cannot help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    NoValue,
    #[error("record value is not base64: {0}")]
    Base64(String),
    #[error("record value is not an event envelope: {0}")]
    Envelope(String),
    #[error("event payload does not match its type: {0}")]
    Payload(String),
}

/// One Kafka record of an MSK event, decoded.
#[derive(Debug)]
pub struct DecodedRecord {
    /// `topic-partition@offset`, for logs and failure reports.
    pub position: String,
    pub event: Result<Envelope, DecodeError>,
}

/// The records of an MSK event in partition order (Lambda groups them by
/// `topic-partition`; within one partition they are in offset order).
pub fn decode_kafka_event(event: &KafkaEvent) -> Vec<DecodedRecord> {
    let mut partitions: Vec<_> = event.records.iter().collect();
    partitions.sort_by(|a, b| a.0.cmp(b.0));
    partitions
        .into_iter()
        .flat_map(|(tp, records)| records.iter().map(move |r| (tp, r)))
        .map(|(tp, r)| DecodedRecord {
            position: format!("{tp}@{}", r.offset),
            event: decode_record(r),
        })
        .collect()
}

fn decode_record(record: &KafkaRecord) -> Result<Envelope, DecodeError> {
    let value = record.value.as_deref().ok_or(DecodeError::NoValue)?;
    let bytes = STANDARD
        .decode(value)
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| DecodeError::Envelope(e.to_string()))
}

/// The item that marks an event as applied by one consumer: write it with
/// `attribute_not_exists(pk)` in the same transaction as the effect, so a redelivered
/// event fails the condition and changes nothing. Kept for a week (Kafka's retention).
pub fn processed_marker(table: &str, consumer: &str, event_id: &str) -> TransactWriteItem {
    let item: Item = HashMap::from([
        (
            "pk".to_owned(),
            s(format!("PROCESSED#{consumer}#{event_id}")),
        ),
        ("sk".to_owned(), s("PROCESSED")),
        (
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + 7 * 24 * 3600),
        ),
    ]);
    #[allow(clippy::expect_used)]
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("table name and item are set");
    TransactWriteItem::builder().put(put).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka_event(values: &[(&str, i64, Option<String>)]) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for (tp, offset, value) in values {
            let mut r = KafkaRecord::default();
            r.offset = *offset;
            r.value = value.clone();
            event.records.entry((*tp).to_owned()).or_default().push(r);
        }
        event
    }

    #[test]
    fn envelopes_round_trip_through_kafka_records() {
        let env = Envelope::new(
            "UserRegistered",
            "01J",
            Some("01J"),
            "corr",
            &serde_json::json!({"username": "alice"}),
        );
        let b64 = STANDARD.encode(serde_json::to_vec(&env).unwrap());
        let decoded = decode_kafka_event(&kafka_event(&[("shutter.identity-0", 4, Some(b64))]));
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].position, "shutter.identity-0@4");
        assert_eq!(decoded[0].event.as_ref().unwrap(), &env);
    }

    #[test]
    fn poison_records_are_reported_not_dropped() {
        let decoded = decode_kafka_event(&kafka_event(&[
            ("t-0", 1, None),
            ("t-0", 2, Some("%%%".into())),
            ("t-0", 3, Some(STANDARD.encode("{\"not\":\"an envelope\"}"))),
        ]));
        assert!(matches!(decoded[0].event, Err(DecodeError::NoValue)));
        assert!(matches!(decoded[1].event, Err(DecodeError::Base64(_))));
        assert!(matches!(decoded[2].event, Err(DecodeError::Envelope(_))));
    }
}
