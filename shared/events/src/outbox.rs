//! The transactional outbox: an event is written as an item of the service's own table in
//! the same transaction as the change it reports, so none is lost and none is sent for a
//! change that did not happen. The table's stream feeds the publisher, which reads the
//! items back with [`OutboxMessage::from_image`].
//!
//! An outbox item stays until it has been published. It is written *pending*: it carries
//! `outbox_pending` (one of [`PENDING_SHARDS`] shards, chosen by its aggregate) and
//! `outbox_at` (when it was written), the keys of the sparse `OutboxPending` index of every
//! table with an outbox. Whoever publishes it marks it ([`mark_published`]): the pending
//! attributes go, and the item expires a day later. What the stream path did not publish
//! (the broker was down longer than the stream mapping retries, a publisher died between
//! sending and marking) is still in the index, where the outbox sweeper finds it. No TTL
//! runs while an item is pending, so an outage of any length loses nothing.

use std::collections::HashMap;

use serde::Deserialize;
use shutter_core::EventId;
use shutter_store::{Item, StoreError, StoreResult, Write, key, n, s};

use crate::Envelope;

/// A published outbox item expires a day after it was marked: long enough to look at.
const PUBLISHED_TTL_SECONDS: i64 = 24 * 3600;

/// How long a consumer remembers that it applied an event: longer than Kafka keeps it
/// (a week), so a redelivery always finds the marker.
const PROCESSED_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// The label of the outbox write's condition (an event id is never written twice).
pub const OUTBOX_LABEL: &str = "outbox";

/// The label of [`mark_published`]'s condition: the item is gone (expired, or never was).
pub const PUBLISHED_LABEL: &str = "outbox_gone";

/// The label of [`processed`]'s condition: the event was applied before.
pub const PROCESSED_LABEL: &str = "processed";

/// The sparse index of pending outbox items, on every table that has an outbox.
pub const PENDING_INDEX: &str = "OutboxPending";

/// The index's partition key: the item's shard while it is pending, absent once published.
pub const PENDING_ATTRIBUTE: &str = "outbox_pending";

/// The index's sort key: when the item was written, in milliseconds since the epoch.
pub const WRITTEN_AT_ATTRIBUTE: &str = "outbox_at";

/// Pending items are spread over this many index partitions, so that no table's event
/// rate meets DynamoDB's write limit of one index partition (about 1,000 a second); an
/// aggregate always lands in the same shard, so its events are read back in order.
pub const PENDING_SHARDS: u32 = 8;

/// The outbox item for `envelope`: add it to the transaction that makes the change.
/// Keys: `pk = OUTBOX#<event id>`, `sk = OUTBOX`; the topic comes from the catalogue. It
/// is written pending (see the module docs).
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
            PENDING_ATTRIBUTE.to_owned(),
            s(pending_shard(&envelope.aggregate_id)),
        ),
        (WRITTEN_AT_ATTRIBUTE.to_owned(), n(epoch_millis())),
    ]);
    Ok(Write::put(item).if_absent(OUTBOX_LABEL))
}

/// Marks the outbox item of `event_id` published: it leaves the pending index and expires
/// a day later. Fails with `Conflict(`[`PUBLISHED_LABEL`]`)` when there is no such item
/// (it expired already), rather than leaving a stub behind.
pub fn mark_published(event_id: &str) -> Write {
    Write::update(
        key(format!("OUTBOX#{event_id}"), "OUTBOX"),
        format!("REMOVE {PENDING_ATTRIBUTE} SET #ttl = :ttl"),
    )
    .if_present(PUBLISHED_LABEL)
    .name("#ttl", "ttl")
    .value(
        ":ttl",
        n(shutter_store::epoch_seconds() + PUBLISHED_TTL_SECONDS),
    )
}

/// The pending shard of an aggregate's events: `PENDING#<n>`, `n` by a stable hash of its
/// id (FNV-1a, the same in every build and language).
pub fn pending_shard(aggregate_id: &str) -> String {
    let hash = aggregate_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("PENDING#{}", hash % PENDING_SHARDS)
}

/// Every pending shard, for the sweeper to read.
pub fn pending_shards() -> impl Iterator<Item = String> {
    (0..PENDING_SHARDS).map(|i| format!("PENDING#{i}"))
}

/// Milliseconds since the epoch, for `outbox_at`.
pub fn epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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
        Self::from_attributes(|name| {
            image
                .get(name)
                .and_then(|v| v.get("S"))
                .and_then(|v| v.as_str())
        })
    }

    /// Reads an outbox item as DynamoDB returns it (the sweeper's query). `None` for items
    /// that are not outbox items.
    pub fn from_item(item: &Item) -> Option<Result<Self, crate::DecodeError>> {
        Self::from_attributes(|name| shutter_store::string_attr(item, name))
    }

    fn from_attributes<'a>(
        attr: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<Result<Self, crate::DecodeError>> {
        if !attr("pk")?.starts_with("OUTBOX#") {
            return None;
        }
        Some((|| {
            let payload = attr("event").ok_or(crate::DecodeError::NoValue)?;
            let topic = attr("topic").ok_or(crate::DecodeError::Envelope(
                "outbox item has no topic".into(),
            ))?;
            Self::from_envelope_json(topic, payload)
        })())
    }

    /// The message for an envelope's JSON text, to send to `topic` (a replay of what a
    /// dead-letter queue holds, say). The text is relayed untouched.
    pub fn from_envelope_json(topic: &str, payload: &str) -> Result<Self, crate::DecodeError> {
        let head: Head = serde_json::from_str(payload)
            .map_err(|e| crate::DecodeError::Envelope(e.to_string()))?;
        Ok(Self {
            topic: topic.to_owned(),
            key: head.aggregate_id,
            event_id: head.id,
            event_type: head.event_type,
            correlation_id: head.correlation_id,
            payload: payload.to_owned(),
        })
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
    fn an_outbox_item_is_written_pending_in_its_aggregates_shard_without_a_ttl() {
        let env = changed();
        let item = outbox_write(&env).unwrap().put_item().unwrap().clone();
        assert_eq!(
            shutter_store::string_attr(&item, PENDING_ATTRIBUTE),
            Some(pending_shard(&env.aggregate_id).as_str())
        );
        let at: i64 = shutter_store::number_attr(&item, WRITTEN_AT_ATTRIBUTE).unwrap();
        assert!(
            (at - epoch_millis()).abs() < 60_000,
            "written now, in ms: {at}"
        );
        assert!(!item.contains_key("ttl"), "no TTL runs while it is pending");
    }

    #[test]
    fn one_aggregates_events_share_a_shard_and_shards_are_spread() {
        assert_eq!(pending_shard("user-1"), pending_shard("user-1"));
        let shards: std::collections::BTreeSet<String> = (0..200)
            .map(|i| pending_shard(&format!("01JAGGREGATE{i:04}")))
            .collect();
        let all: std::collections::BTreeSet<String> = pending_shards().collect();
        assert_eq!(shards, all, "200 aggregates reach every shard");
        assert_eq!(all.len(), PENDING_SHARDS as usize);
    }

    #[test]
    fn marking_published_leaves_the_index_and_sets_a_ttl_only_on_an_existing_item() {
        let write = mark_published("01JEVENT");
        assert_eq!(write.label(), Some(PUBLISHED_LABEL));
        assert_eq!(write.key(), key("OUTBOX#01JEVENT", "OUTBOX"));
        // (The write's parts are private to shutter-store; its Debug form shows them.)
        let shown = format!("{write:?}");
        assert!(
            shown.contains(&format!("REMOVE {PENDING_ATTRIBUTE} SET #ttl = :ttl")),
            "{shown}"
        );
        assert!(shown.contains("attribute_exists(pk)"), "{shown}");
    }

    #[test]
    fn items_read_back_from_the_table_are_messages() {
        let env = changed();
        let item = outbox_write(&env).unwrap().put_item().unwrap().clone();
        let msg = OutboxMessage::from_item(&item).unwrap().unwrap();
        assert_eq!(msg.event_id, env.id.as_str());
        assert_eq!(msg.topic, "shutter.identity");
        assert_eq!(msg.payload, env.to_json().unwrap());
        let broken = HashMap::from([
            ("pk".to_owned(), s("OUTBOX#1")),
            ("topic".to_owned(), s("shutter.identity")),
            ("event".to_owned(), s("not json")),
        ]);
        assert!(OutboxMessage::from_item(&broken).unwrap().is_err());
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
