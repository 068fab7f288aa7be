//! The outbox publisher (rskafka) against the local Kafka (tansu), read back with an
//! independent client (librdkafka): topics are created once, each record lands whole on
//! the partition Kafka's own partitioner gives its key, with its headers, exactly once,
//! and a topic that does not exist is an error, not a silent drop.

use std::collections::HashMap;
use std::time::Duration;

use devstack::services::start_tansu;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use shutter_events::OutboxMessage;
use shutter_events::publisher::{KafkaPublisher, KafkaSettings, PublishError, partition_of};

const TOPIC: &str = "publisher.test";
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_each_event_once_on_its_keys_partition_with_its_headers() {
    let dir = tempfile::tempdir().expect("dir");
    let tansu = start_tansu(dir.path(), &dir.path().join("tansu"))
        .await
        .expect("tansu starts");
    let aws = aws_config::SdkConfig::builder().build();
    let publisher = KafkaPublisher::new(
        &KafkaSettings::Plaintext {
            bootstrap_servers: tansu.url.clone(),
        },
        &aws,
    )
    .expect("publisher");

    assert!(
        publisher
            .create_topic(TOPIC, PARTITIONS, 1)
            .await
            .expect("create")
    );
    assert!(
        !publisher
            .create_topic(TOPIC, PARTITIONS, 1)
            .await
            .expect("again"),
        "a second create finds it there"
    );

    let mut sent = Vec::new();
    for (i, key) in [
        "user-1",
        "user-2",
        "post-9",
        "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "user-1",
        "post-9",
    ]
    .into_iter()
    .enumerate()
    {
        let msg = OutboxMessage {
            event_id: format!("evt-{i}"),
            event_type: "Probe".to_owned(),
            correlation_id: format!("corr-{i}"),
            topic: TOPIC.to_owned(),
            key: key.to_owned(),
            payload: format!(r#"{{"n":{i}}}"#),
        };
        publisher.publish(&msg).await.expect("publish");
        sent.push(msg);
    }
    let missing = OutboxMessage {
        topic: "no.such.topic".to_owned(),
        ..sent[0].clone()
    };
    assert!(matches!(
        publisher.publish(&missing).await,
        Err(PublishError::NoSuchTopic(t)) if t == "no.such.topic"
    ));

    // Read every partition from the start with librdkafka.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &tansu.url)
        .set("group.id", "publisher-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut seen: HashMap<String, (String, i32, String, HashMap<String, String>)> = HashMap::new();
    let mut duplicates = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < sent.len() && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let headers: HashMap<String, String> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), text(h.value)))
                    .collect()
            })
            .unwrap_or_default();
        let id = headers.get("event_id").cloned().unwrap_or_default();
        let entry = (text(m.key()), m.partition(), text(m.payload()), headers);
        if seen.insert(id, entry).is_some() {
            duplicates += 1;
        }
    }
    // Anything more would show up now.
    while let Some(extra) = consumer.poll(Duration::from_secs(2)) {
        if extra.is_ok() {
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, 0, "each event once");
    assert_eq!(seen.len(), sent.len(), "every event arrived: {seen:?}");
    for msg in &sent {
        let (key, partition, payload, headers) = &seen[&msg.event_id];
        assert_eq!(key, &msg.key);
        assert_eq!(payload, &msg.payload);
        let expected = partition_of(msg.key.as_bytes(), PARTITIONS as usize);
        assert_eq!(
            *partition as usize, expected,
            "{} on its key's partition",
            msg.key
        );
        assert_eq!(headers["event_type"], "Probe");
        assert_eq!(headers["correlation_id"], msg.correlation_id);
    }
    std::thread::spawn(move || drop(consumer));
    tansu.stop().await;
}
