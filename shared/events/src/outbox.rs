//! The transactional outbox: an event is written as an item of the service's own table in
//! the same transaction as the change it reports, so none is lost and none is sent for a
//! change that did not happen. The table's stream feeds the publisher, which reads the
//! items back with [`OutboxMessage::from_image`].

use std::collections::HashMap;

use serde::Deserialize;
use shutter_core::EventId;
use shutter_store::{Item, StoreError, StoreResult, Write, n, s};

use crate::Envelope;

/// Outbox items expire a day after they are written; the publisher has long sent them.
const OUTBOX_TTL_SECONDS: i64 = 24 * 3600;

/// How long a consumer remembers that it applied an event: longer than Kafka keeps it
/// (a week), so a redelivery always finds the marker.
const PROCESSED_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// The label of the outbox write's condition (an event id is never written twice).
pub const OUTBOX_LABEL: &str = "outbox";

/// The label of [`processed`]'s condition: the event was applied before.
pub const PROCESSED_LABEL: &str = "processed";

/// The outbox item for `envelope`: add it to the transaction that makes the change.
/// Keys: `pk = OUTBOX#<event id>`, `sk = OUTBOX`; the topic comes from the catalogue.
pub fn outbox_write(envelope: &Envelope) -> StoreResult<Write> {
    let json = envelope.to_json().map_err(StoreError::corrupt)?;
    let item: Item = HashMap::from([
        ("pk".to_owned(), s(format!("OUTBOX#{}", envelope.id))),
        ("sk".to_owned(), s("OUTBOX")),
        ("topic".to_owned(), s(envelope.topic().name())),
        ("key".to_owned(), s(&envelope.aggregate_id)),
        ("event_type".to_owned(), s(envelope.event_type().as_str())),
        ("event".to_owned(), s(json)),
        (
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + OUTBOX_TTL_SECONDS),
        ),
    ]);
    Ok(Write::put(item).if_absent(OUTBOX_LABEL))
}

/// The item that marks `event_id` as applied by `consumer`: write it in the same
/// transaction as the effect, and a redelivered event fails with
/// `Conflict(`[`PROCESSED_LABEL`]`)` and changes nothing.
pub fn processed(consumer: &str, event_id: &EventId) -> Write {
    let item: Item = HashMap::from([
        (
            "pk".to_owned(),
            s(format!("PROCESSED#{consumer}#{event_id}")),
        ),
        ("sk".to_owned(), s("PROCESSED")),
        (
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + PROCESSED_TTL_SECONDS),
        ),
    ]);
    Write::put(item).if_absent(PROCESSED_LABEL)
}

/// An outbox item as it arrives on the table's stream: what the publisher needs, and the
/// envelope's text untouched (the publisher relays event types it does not know).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub topic: String,
    pub key: String,
    pub event_id: String,
    pub event_type: String,
    pub correlation_id: String,
    pub payload: String,
}

/// The envelope fields the publisher reads.
#[derive(Deserialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    aggregate_id: String,
    correlation_id: String,
}

impl OutboxMessage {
    /// Reads an outbox item's stream image. `None` for items that are not outbox items.
    pub fn from_image(image: &serde_json::Value) -> Option<Result<Self, crate::DecodeError>> {
        let attr = |name: &str| {
            image
                .get(name)
                .and_then(|v| v.get("S"))
                .and_then(|v| v.as_str())
        };
        if !attr("pk")?.starts_with("OUTBOX#") {
            return None;
        }
        Some((|| {
            let payload = attr("event").ok_or(crate::DecodeError::NoValue)?.to_owned();
            let head: Head = serde_json::from_str(&payload)
                .map_err(|e| crate::DecodeError::Envelope(e.to_string()))?;
            Ok(Self {
                topic: attr("topic")
                    .ok_or(crate::DecodeError::Envelope(
                        "outbox item has no topic".into(),
                    ))?
                    .to_owned(),
                key: head.aggregate_id,
                event_id: head.id,
                event_type: head.event_type,
                correlation_id: head.correlation_id,
                payload,
            })
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, UserEmailChanged};
    use shutter_core::UserId;

    fn changed() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::UserEmailChanged(UserEmailChanged {
                user_id: user.clone(),
            }),
            Some(&user),
            "corr",
        )
    }

    #[test]
    fn the_outbox_item_names_the_catalogues_topic_and_key() {
        let env = changed();
        let write = outbox_write(&env).unwrap();
        assert_eq!(write.label(), Some(OUTBOX_LABEL));
        let item = write.put_item().unwrap();
        assert_eq!(
            shutter_store::string_attr(item, "topic"),
            Some("shutter.identity")
        );
        assert_eq!(
            shutter_store::string_attr(item, "key"),
            Some(env.aggregate_id.as_str())
        );
    }

    #[test]
    fn outbox_items_are_read_from_stream_images() {
        let env = changed();
        let image = serde_json::json!({
            "pk": {"S": format!("OUTBOX#{}", env.id)},
            "sk": {"S": "OUTBOX"},
            "topic": {"S": "shutter.identity"},
            "event": {"S": env.to_json().unwrap()},
        });
        let msg = OutboxMessage::from_image(&image).unwrap().unwrap();
        assert_eq!(msg.topic, "shutter.identity");
        assert_eq!(msg.key, env.aggregate_id);
        assert_eq!(msg.event_id, env.id.as_str());
        assert_eq!(msg.event_type, "UserEmailChanged");
        let other = serde_json::json!({"pk": {"S": "USER#1"}, "sk": {"S": "ACCOUNT"}});
        assert!(OutboxMessage::from_image(&other).is_none());
    }

    #[test]
    fn the_publisher_relays_event_types_it_does_not_know() {
        let image = serde_json::json!({
            "pk": {"S": "OUTBOX#1"},
            "topic": {"S": "shutter.stories"},
            "event": {"S": r#"{"id":"1","type":"StoryPosted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"s","correlation_id":"c","data":{}}"#},
        });
        let msg = OutboxMessage::from_image(&image).unwrap().unwrap();
        assert_eq!(
            (msg.topic.as_str(), msg.key.as_str()),
            ("shutter.stories", "s")
        );
    }
}
