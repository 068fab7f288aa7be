//! The event catalogue, template.yaml and the consumers agree: the topics the catalogue
//! names are exactly those the `KafkaTopics` resource creates; every declared consumer's
//! function subscribes (MSK event source mappings) to exactly the topics of the events it
//! handles, so none is missed and none is read for nothing; and every function with an
//! MSK mapping is a declared consumer. The checked-in AsyncAPI document is what the code
//! generates.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use devstack::template::Template;
use shutter_catalogue::{EventType, Topic};

fn template() -> Template {
    Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap()
}

/// The topics created by the template's `Custom::KafkaTopics` resources.
fn created_topics(t: &Template) -> BTreeSet<String> {
    t.resources_of("Custom::KafkaTopics")
        .flat_map(|(_, props)| props["Topics"].as_array().cloned().unwrap_or_default())
        .map(|topic| topic.as_str().unwrap().to_owned())
        .collect()
}

/// Each function's binary and the topics its MSK event source mappings read.
fn subscriptions(t: &Template) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (id, props) in t.resources_of("AWS::Serverless::Function") {
        let binary = t.resource(id)["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or(id)
            .to_owned();
        for (_, event) in props["Events"].as_object().into_iter().flatten() {
            if event["Type"] != "MSK" {
                continue;
            }
            let topics: &mut BTreeSet<String> = out.entry(binary.clone()).or_default();
            for topic in event["Properties"]["Topics"].as_array().unwrap() {
                topics.insert(topic.as_str().unwrap().to_owned());
            }
        }
    }
    out
}

#[test]
fn the_template_creates_exactly_the_catalogues_topics() {
    let catalogue: BTreeSet<String> = Topic::ALL.iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(created_topics(&template()), catalogue);
}

#[test]
fn every_consumer_reads_exactly_the_topics_of_the_events_it_handles() {
    let t = template();
    let mut subscribed = subscriptions(&t);
    let consumers = shutter_apidocs::consumers();
    assert!(
        consumers.len() >= 8,
        "{} consumers declared",
        consumers.len()
    );
    for consumer in consumers {
        let needed: BTreeSet<String> = consumer
            .handles
            .topics()
            .into_iter()
            .map(|topic| topic.name().to_owned())
            .collect();
        assert!(!needed.is_empty(), "{} handles no event", consumer.name);
        let mapped = subscribed.remove(consumer.name).unwrap_or_else(|| {
            panic!(
                "{} is a declared consumer, but no function of template.yaml with that binary has an MSK mapping",
                consumer.name
            )
        });
        assert_eq!(
            mapped, needed,
            "{}: template.yaml subscribes it to the left, it handles events on the right",
            consumer.name
        );
    }
    assert!(
        subscribed.is_empty(),
        "functions with MSK mappings that declare no consumer: {:?}",
        subscribed.keys().collect::<Vec<_>>()
    );
}

#[test]
fn every_event_is_handled_somewhere_or_documented_as_unconsumed() {
    // Events that no service consumes yet are still published: later services
    // (notifications, insights) and external consumers read them. Listing them here keeps
    // that a decision rather than an accident.
    let unconsumed: BTreeSet<EventType> = [
        EventType::UserEmailChanged,
        EventType::RegistrationWithTakenEmail,
        EventType::PostCreated,
        EventType::CommentLikeAdded,
        EventType::CommentLikeRemoved,
        EventType::FollowRequested,
        EventType::FollowRequestCancelled,
    ]
    .into_iter()
    .collect();
    let handled: BTreeSet<EventType> = shutter_apidocs::consumers()
        .iter()
        .flat_map(|c| c.handles.iter())
        .collect();
    for &event in EventType::ALL {
        assert!(
            handled.contains(&event) != unconsumed.contains(&event),
            "{event:?}: handled = {}, listed as unconsumed = {}",
            handled.contains(&event),
            unconsumed.contains(&event)
        );
    }
}

#[test]
fn the_checked_in_documents_are_what_the_code_generates() {
    let root = shutter_apidocs::workspace_root();
    for (file, generated) in shutter_apidocs::documents() {
        let checked_in = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{file} is stale: run `cargo run -p shutter-apidocs` and commit the result"
        );
    }
}
