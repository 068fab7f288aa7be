//! The catalogue as an AsyncAPI 3.0 document: a channel per topic, a message per event
//! type (its envelope, with the payload schema from the payload struct itself), a `send`
//! operation per topic (the outbox publisher) and a `receive` operation per consumer and
//! topic, listing only the events that consumer acts on.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::{Consumer, EventType, Topic};

fn channel_id(topic: Topic) -> &'static str {
    topic.name().trim_start_matches("shutter.")
}

fn message_ref(event: EventType) -> Value {
    json!({"$ref": format!("#/channels/{}/messages/{}", channel_id(event.topic()), event.as_str())})
}

/// The envelope around one event type's payload.
fn envelope_schema(event: EventType, payload: &str) -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "version", "occurred_at", "actor", "aggregate_id", "correlation_id", "data"],
        "properties": {
            "id": {"type": "string", "description": "ULID; consumers deduplicate on it"},
            "type": {"type": "string", "const": event.as_str()},
            "version": {"type": "integer", "const": event.version(), "description": "The payload's schema version"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "actor": {"type": ["string", "null"], "description": "The user whose request caused the event"},
            "aggregate_id": {"type": "string", "description": format!("The Kafka key: the payload's `{}`", event.key_field())},
            "correlation_id": {"type": "string", "description": "The originating request's correlation id"},
            "data": {"$ref": format!("#/components/schemas/{payload}")}
        }
    })
}

/// The AsyncAPI 3.0 document of every topic and event, and of `consumers`.
pub fn document(consumers: &[Consumer]) -> Value {
    let mut schemas = BTreeMap::new();
    let mut messages = Map::new();
    for &event in EventType::ALL {
        let (payload, needed) = event.payload_schemas();
        for (name, schema) in needed {
            schemas.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
        }
        let envelope = format!("{}Envelope", event.as_str());
        schemas.insert(envelope.clone(), envelope_schema(event, &payload));
        messages.insert(
            event.as_str().to_owned(),
            json!({
                "name": event.as_str(),
                "title": event.as_str(),
                "summary": event.description(),
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "event_id": {"type": "string"},
                        "event_type": {"type": "string", "const": event.as_str()},
                        "correlation_id": {"type": "string"}
                    }
                },
                "payload": {"$ref": format!("#/components/schemas/{envelope}")},
                "bindings": {"kafka": {
                    "key": {"type": "string", "description": format!("The payload's `{}`", event.key_field())},
                    "bindingVersion": "0.5.0"
                }}
            }),
        );
    }

    let mut channels = Map::new();
    let mut operations = Map::new();
    for topic in Topic::ALL {
        let id = channel_id(topic);
        let channel_messages: Map<String, Value> = topic
            .events()
            .map(|e| {
                (
                    e.as_str().to_owned(),
                    json!({"$ref": format!("#/components/messages/{}", e.as_str())}),
                )
            })
            .collect();
        channels.insert(
            id.to_owned(),
            json!({
                "address": topic.name(),
                "description": topic.description(),
                "messages": channel_messages,
                "bindings": {"kafka": {"topic": topic.name(), "bindingVersion": "0.5.0"}}
            }),
        );
        operations.insert(
            format!("publish.{id}"),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{id}")},
                "summary": format!("The outbox publisher sends the events committed with each change of the {id} service's state."),
                "messages": topic.events().map(message_ref).collect::<Vec<_>>()
            }),
        );
    }
    for consumer in consumers {
        for topic in consumer.handles.topics() {
            let id = channel_id(topic);
            let handled: Vec<Value> = consumer
                .handles
                .iter()
                .filter(|e| e.topic() == topic)
                .map(message_ref)
                .collect();
            operations.insert(
                format!("{}.{id}", consumer.name),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{id}")},
                    "summary": consumer.summary,
                    "description": format!("The `{}` function's event source mapping; other events on the topic are skipped.", consumer.name),
                    "messages": handled
                }),
            );
        }
    }

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shutter events",
            "version": "1",
            "description": "The domain events Shutter's services exchange on Kafka (Amazon MSK). Each state change and its event are committed together (a transactional outbox); the outbox publisher sends each event to its topic keyed by its aggregate, so one aggregate's events stay in order. Delivery is at least once: consumers deduplicate on the event id. An event type a consumer does not know is skipped, not treated as an error, so producers may add types; a payload only gains fields with defaults, and a breaking change is a new type."
        },
        "defaultContentType": "application/json",
        "servers": {
            "msk": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "Amazon MSK, TLS with IAM authentication (SASL/OAUTHBEARER).",
                "variables": {"bootstrap": {"description": "The cluster's IAM bootstrap brokers"}}
            },
            "devstack": {
                "host": "127.0.0.1:{port}",
                "protocol": "kafka",
                "description": "The devstack's broker (tansu); its port is printed at start.",
                "variables": {"port": {"description": "Printed by the devstack"}}
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas.into_iter().collect::<Map<_, _>>()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventSet;

    #[test]
    fn every_event_is_a_message_on_its_topics_channel() {
        let feed = Consumer {
            name: "feed-events",
            handles: EventSet::of(&[EventType::PostPublished, EventType::FollowStarted]),
            summary: "Fans posts out to followers' feeds.",
        };
        let doc = document(&[feed]);
        assert_eq!(doc["asyncapi"], "3.0.0");
        for &event in EventType::ALL {
            let channel = &doc["channels"][channel_id(event.topic())];
            assert_eq!(channel["address"], event.topic().name());
            assert!(channel["messages"][event.as_str()].is_object(), "{event:?}");
            let payload = doc["components"]["messages"][event.as_str()]["payload"]["$ref"]
                .as_str()
                .unwrap();
            let schema = payload.trim_start_matches("#/components/schemas/");
            let data = doc["components"]["schemas"][schema]["properties"]["data"]["$ref"]
                .as_str()
                .unwrap();
            let data = data.trim_start_matches("#/components/schemas/");
            assert!(doc["components"]["schemas"][data].is_object(), "{data}");
        }
        let posts = &doc["operations"]["feed-events.posts"];
        assert_eq!(posts["action"], "receive");
        assert_eq!(
            posts["messages"],
            json!([{"$ref": "#/channels/posts/messages/PostPublished"}])
        );
        assert!(doc["operations"]["feed-events.follows"].is_object());
        assert!(doc["operations"]["feed-events.likes"].is_null());
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document(&[]);
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling {r}");
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
            _ => {}
        }
    }
}
