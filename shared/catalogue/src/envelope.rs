//! The envelope every event travels in, and its JSON form:
//! `{id, type, version, occurred_at, actor, aggregate_id, correlation_id, data}`.

use serde::{Deserialize, Serialize};
use shutter_core::{EventId, UserId};

use crate::{Event, EventType, Topic};

/// An event with the facts of its happening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// A ULID; consumers deduplicate on it.
    pub id: EventId,
    /// The payload's schema version.
    pub version: u32,
    /// RFC 3339
    pub occurred_at: String,
    /// The user whose request caused the event, if any.
    pub actor: Option<UserId>,
    /// The Kafka key: one aggregate's events stay in order on one partition.
    pub aggregate_id: String,
    /// The originating request's correlation id, carried through every event it causes.
    pub correlation_id: String,
    pub event: Event,
}

/// The JSON form.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    version: u32,
    occurred_at: String,
    actor: Option<String>,
    aggregate_id: String,
    correlation_id: String,
    data: serde_json::Value,
}

/// An event whose type this build does not know: a newer producer's. Consumers skip it
/// deliberately (and count it); it is not poison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent {
    pub id: String,
    pub event_type: String,
    pub version: u32,
}

/// What a record turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // nearly every record is Known: boxing would cost each one
pub enum Decoded {
    Known(Envelope),
    Unknown(UnknownEvent),
}

/// Why a record is not an event. Such records are poison: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    NoValue,
    #[error("record value is not base64: {0}")]
    Base64(String),
    #[error("record value is not an event envelope: {0}")]
    Envelope(String),
    #[error("{event_type} payload does not match its schema: {reason}")]
    Payload {
        event_type: &'static str,
        reason: String,
    },
}

impl Envelope {
    /// `event`, happening now, caused by `actor` within request `correlation_id`.
    pub fn new(event: Event, actor: Option<&UserId>, correlation_id: &str) -> Self {
        Self {
            id: EventId::generate(),
            version: event.event_type().version(),
            occurred_at: shutter_core::now_rfc3339(),
            actor: actor.cloned(),
            aggregate_id: event.aggregate_id().to_owned(),
            correlation_id: correlation_id.to_owned(),
            event,
        }
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    pub fn topic(&self) -> Topic {
        self.event_type().topic()
    }

    /// The JSON text of the envelope.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&self.wire()?)
    }

    fn wire(&self) -> Result<Wire, serde_json::Error> {
        Ok(Wire {
            id: self.id.to_string(),
            event_type: self.event_type().as_str().to_owned(),
            version: self.version,
            occurred_at: self.occurred_at.clone(),
            actor: self.actor.as_ref().map(ToString::to_string),
            aggregate_id: self.aggregate_id.clone(),
            correlation_id: self.correlation_id.clone(),
            data: self.event.to_data()?,
        })
    }

    /// Reads an envelope's JSON text. An event type this build does not know is
    /// [`Decoded::Unknown`]; a known type whose payload does not fit is an error. A newer
    /// version of a known type decodes as long as its payload fits (versions only add
    /// fields with defaults).
    pub fn decode(json: &[u8]) -> Result<Decoded, DecodeError> {
        let wire: Wire =
            serde_json::from_slice(json).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        let Some(event_type) = EventType::parse(&wire.event_type) else {
            return Ok(Decoded::Unknown(UnknownEvent {
                id: wire.id,
                event_type: wire.event_type,
                version: wire.version,
            }));
        };
        let event = Event::from_data(event_type, wire.data).map_err(|e| DecodeError::Payload {
            event_type: event_type.as_str(),
            reason: e.to_string(),
        })?;
        Ok(Decoded::Known(Envelope {
            id: EventId::trusted(wire.id),
            version: wire.version,
            occurred_at: wire.occurred_at,
            actor: wire.actor.map(UserId::trusted),
            aggregate_id: wire.aggregate_id,
            correlation_id: wire.correlation_id,
            event,
        }))
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// Reads a known event; an unknown type is an error here (use [`Envelope::decode`] to
/// tell the two apart).
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        match Envelope::decode(&bytes).map_err(serde::de::Error::custom)? {
            Decoded::Known(envelope) => Ok(envelope),
            Decoded::Unknown(u) => Err(serde::de::Error::custom(format!(
                "unknown event type {}",
                u.event_type
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PostDeleted, UserDeleted};
    use shutter_core::PostId;

    fn deleted() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: user.clone(),
                username: "ann".into(),
            }),
            Some(&user),
            "corr-1",
        )
    }

    #[test]
    fn envelopes_round_trip_as_the_wire_format() {
        let env = deleted();
        let json = env.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "UserDeleted");
        assert_eq!(value["version"], 1);
        assert_eq!(value["aggregate_id"], env.aggregate_id.as_str());
        assert_eq!(value["data"]["username"], "ann");
        assert_eq!(
            Envelope::decode(json.as_bytes()).unwrap(),
            Decoded::Known(env.clone())
        );
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
    }

    #[test]
    fn the_key_is_the_aggregate_the_catalogue_names() {
        let post = PostId::generate();
        let user = UserId::generate();
        let env = Envelope::new(
            Event::PostDeleted(PostDeleted {
                post_id: post.clone(),
                author_id: user.clone(),
                deleted_by: user,
            }),
            None,
            "c",
        );
        assert_eq!(env.aggregate_id, post.as_str());
        assert_eq!(env.topic(), Topic::Posts);
    }

    #[test]
    fn an_unknown_type_is_unknown_not_an_error() {
        let json = r#"{"id":"01J","type":"StoryPosted","version":3,"occurred_at":"t","actor":null,"aggregate_id":"a","correlation_id":"c","data":{"x":1}}"#;
        assert_eq!(
            Envelope::decode(json.as_bytes()).unwrap(),
            Decoded::Unknown(UnknownEvent {
                id: "01J".into(),
                event_type: "StoryPosted".into(),
                version: 3
            })
        );
    }

    #[test]
    fn a_known_type_with_a_bad_payload_is_an_error_naming_it() {
        let json = r#"{"id":"01J","type":"UserDeleted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"a","correlation_id":"c","data":{"user":1}}"#;
        let err = Envelope::decode(json.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Payload {
                    event_type: "UserDeleted",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            Envelope::decode(b"{\"not\":\"an envelope\"}"),
            Err(DecodeError::Envelope(_))
        ));
    }

    #[test]
    fn a_newer_version_with_extra_fields_still_decodes() {
        let json = r#"{"id":"01J","type":"UserEmailChanged","version":2,"occurred_at":"t","actor":null,"aggregate_id":"u","correlation_id":"c","data":{"user_id":"u","verified":true}}"#;
        let Decoded::Known(env) = Envelope::decode(json.as_bytes()).unwrap() else {
            panic!("known type")
        };
        assert_eq!(env.version, 2);
        assert_eq!(env.event_type(), EventType::UserEmailChanged);
    }
}
