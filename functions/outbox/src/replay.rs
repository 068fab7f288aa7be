//! `dlq-replay`: sends again what reached a dead-letter queue, then deletes each message
//! once what it stands for has been published. Consumers drop what they already applied
//! by event id, so replaying is always safe.
//!
//! EventsDlq holds three kinds of message, and each is replayed its own way:
//!
//! - a record a consumer gave up on (`{"source", "position", "reason", "record"}`, written
//!   by `shutter_events::SqsPoisonQueue`; the sweeper writes outbox items that do not
//!   decode in the same shape): its envelope is sent again to its topic, keyed by its
//!   aggregate;
//! - a stream batch the outbox publisher's mapping gave up on (`DDBStreamBatchInfo`:
//!   positions only). Its outbox items are still pending, so the table is swept up to the
//!   batch's last record (with a minute's margin for clocks) as the sweeper would, and the
//!   message goes once nothing written by then is still pending;
//! - a Kafka batch a consumer's mapping gave up on (`KafkaBatchInfo`: positions only): its
//!   records are read back from the topic (Kafka keeps them a week) and sent again.
//!
//! Anything else is listed and kept. `--dry-run` lists every message and what would be
//! done, changes nothing, and makes the messages visible again at once.

use std::future::Future;

use base64::Engine;
use serde_json::Value;
use shutter_events::publisher::{FetchedRecord, KafkaPublisher, PublishError};
use shutter_events::{EventType, OutboxMessage, PoisonQueue};

use crate::publisher::Sink;
use crate::store::OutboxStore;
use crate::sweeper::{SweepConfig, sweep};

/// Stream records' arrival times are DynamoDB's clock, `outbox_at` the writer's: the
/// sweep of a stream batch reaches this far past its last record.
const CLOCK_MARGIN_MS: i64 = 60_000;

/// One message of a dead-letter queue, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetter {
    /// A record given up on, with its full envelope text.
    Poison {
        source: String,
        position: String,
        reason: String,
        payload: String,
    },
    /// A stream batch the outbox mapping gave up on: its table, and when its last record
    /// reached the stream (ms since the epoch), if the message says.
    StreamBatch {
        table: String,
        last_arrival: Option<i64>,
        size: u64,
    },
    /// A Kafka batch a consumer's mapping gave up on: (topic, partition, first offset,
    /// last offset) of each partition it held.
    KafkaBatch {
        ranges: Vec<(String, i32, i64, i64)>,
    },
    /// Not a message this tool knows.
    Unknown { why: String },
}

impl DeadLetter {
    /// Reads a message body.
    pub fn parse(body: &str) -> Self {
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            return Self::Unknown {
                why: "not JSON".to_owned(),
            };
        };
        if let Some(info) = json.get("DDBStreamBatchInfo") {
            let arn = info["streamArn"].as_str().unwrap_or_default();
            return match crate::publisher::table_of(arn) {
                Some(table) => Self::StreamBatch {
                    table: table.to_owned(),
                    last_arrival: arrival_ms(&info["approximateArrivalOfLastRecord"]),
                    size: info["batchSize"].as_u64().unwrap_or(0),
                },
                None => Self::Unknown {
                    why: format!("stream batch of an unknown stream {arn:?}"),
                },
            };
        }
        if let Some(info) = json.get("KafkaBatchInfo") {
            let ranges = kafka_ranges(info);
            return if ranges.is_empty() {
                Self::Unknown {
                    why: "Kafka batch without offsets".to_owned(),
                }
            } else {
                Self::KafkaBatch { ranges }
            };
        }
        if let (Some(position), Some(record)) = (json["position"].as_str(), json["record"].as_str())
        {
            return Self::Poison {
                source: json["source"].as_str().unwrap_or_default().to_owned(),
                position: position.to_owned(),
                reason: json["reason"].as_str().unwrap_or_default().to_owned(),
                payload: envelope_text(record),
            };
        }
        Self::Unknown {
            why: "neither a poison record nor a batch Lambda gave up on".to_owned(),
        }
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        match self {
            Self::Poison {
                source,
                position,
                reason,
                payload,
            } => {
                let event = serde_json::from_str::<Value>(payload)
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["type"].as_str().unwrap_or("?"),
                            e["id"].as_str().unwrap_or("?")
                        )
                    })
                    .unwrap_or_else(|_| "an undecodable record".to_owned());
                format!("poison from {source} at {position}: {event} ({reason})")
            }
            Self::StreamBatch {
                table,
                last_arrival,
                size,
            } => format!(
                "stream batch of {size} outbox records of {table}, the last at {}",
                last_arrival.map_or("an unknown time".to_owned(), |t| format!("{t} ms"))
            ),
            Self::KafkaBatch { ranges } => {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|(t, p, a, b)| format!("{t}-{p}@{a}..={b}"))
                    .collect();
                format!("Kafka batch {}", parts.join(", "))
            }
            Self::Unknown { why } => format!("unknown message: {why}"),
        }
    }
}

/// The envelope text of a poison message's `record`: JSON as written by `Batch::poison`,
/// or the Kafka value as the MSK event carried it (base64) for records that did not
/// decode.
fn envelope_text(record: &str) -> String {
    if serde_json::from_str::<Value>(record).is_ok() {
        return record.to_owned();
    }
    base64::engine::general_purpose::STANDARD
        .decode(record.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| record.to_owned())
}

/// A stream record's arrival: epoch seconds (a number, as DynamoDB Streams records carry
/// it) or an RFC 3339 time (as Lambda's failure records do).
fn arrival_ms(value: &Value) -> Option<i64> {
    if let Some(seconds) = value.as_f64() {
        return Some((seconds * 1000.0) as i64);
    }
    let text = value.as_str()?;
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The partitions and offsets of a Kafka failure record: Lambda's `recordsInfo` by
/// `topic-partition`, or one flat range (`topic`, `partition`, `firstOffset`/`lastOffset`).
fn kafka_ranges(info: &Value) -> Vec<(String, i32, i64, i64)> {
    let offset = |v: &Value| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let mut ranges = Vec::new();
    if let Some(records) = info["recordsInfo"].as_object() {
        for (name, r) in records {
            let Some((topic, partition)) = name.rsplit_once('-') else {
                continue;
            };
            if let (Ok(partition), Some(first), Some(last)) = (
                partition.parse(),
                offset(&r["firstRecordOffset"]),
                offset(&r["lastRecordOffset"]),
            ) {
                ranges.push((topic.to_owned(), partition, first, last));
            }
        }
    } else if let (Some(topic), Some(partition), Some(first)) = (
        info["topic"].as_str(),
        info["partition"].as_i64(),
        offset(&info["firstOffset"]).or_else(|| offset(&info["offset"])),
    ) {
        let last = offset(&info["lastOffset"]).unwrap_or_else(|| {
            first + i64::try_from(info["batchSize"].as_u64().unwrap_or(1)).unwrap_or(1) - 1
        });
        if let Ok(partition) = i32::try_from(partition) {
            ranges.push((topic.to_owned(), partition, first, last));
        }
    }
    ranges
}

/// The topic of a poison record: the catalogue's for its event type, else the topic of
/// the position it was read at (`topic-partition@offset`).
fn topic_of(event_type: &str, position: &str) -> Option<String> {
    if let Some(known) = EventType::parse(event_type) {
        return Some(known.topic().name().to_owned());
    }
    let (topic_partition, _offset) = position.rsplit_once('@')?;
    let (topic, _partition) = topic_partition.rsplit_once('-')?;
    topic.starts_with("shutter.").then(|| topic.to_owned())
}

/// Reads records back from Kafka: the broker in production, a map in unit tests.
pub trait Refetch: Sync {
    fn fetch(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
    ) -> impl Future<Output = Result<Vec<FetchedRecord>, String>> + Send;
}

impl Refetch for KafkaPublisher {
    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
    ) -> Result<Vec<FetchedRecord>, String> {
        KafkaPublisher::fetch(self, topic, partition, first, last)
            .await
            .map_err(|e: PublishError| e.to_string())
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it stands for is published: delete it.
    Replayed { events: usize },
    /// Keep it, for this reason.
    Kept { why: String },
}

/// Replays one message with `kafka` (publishing and reading back) and `outbox`.
pub async fn replay<K, O, Q>(kafka: &K, outbox: &O, dlq: &Q, letter: &DeadLetter) -> Outcome
where
    K: Sink + Refetch,
    O: OutboxStore,
    Q: PoisonQueue + ?Sized,
{
    match letter {
        DeadLetter::Poison {
            position, payload, ..
        } => {
            let head: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
            let Some(topic) = topic_of(head["type"].as_str().unwrap_or_default(), position) else {
                return kept("no topic for it (not an envelope, and no topic in its position)");
            };
            let msg = match OutboxMessage::from_envelope_json(&topic, payload) {
                Ok(msg) => msg,
                Err(e) => return kept(&format!("not an envelope: {e}")),
            };
            match kafka.send(&msg).await {
                Ok(()) => Outcome::Replayed { events: 1 },
                Err(e) => kept(&format!("publish failed: {e}")),
            }
        }
        DeadLetter::StreamBatch {
            table,
            last_arrival,
            ..
        } => {
            let now = shutter_events::outbox::epoch_millis();
            let cutoff = last_arrival.map_or(now, |t| t + CLOCK_MARGIN_MS);
            let config = SweepConfig {
                tables: vec![table.clone()],
                ..SweepConfig::default()
            };
            let report = sweep(kafka, outbox, dlq, &config, cutoff).await;
            for shard in shutter_events::outbox::pending_shards() {
                match outbox.pending(table, &shard, cutoff, 1).await {
                    Ok(left) if left.is_empty() => {}
                    Ok(_) => {
                        return kept(&format!(
                            "{table} still has events pending from then (published {} this time); run again",
                            report.published
                        ));
                    }
                    Err(e) => return kept(&format!("{table} unreadable: {e}")),
                }
            }
            Outcome::Replayed {
                events: report.published,
            }
        }
        DeadLetter::KafkaBatch { ranges } => {
            let mut events = 0;
            for (topic, partition, first, last) in ranges {
                let records = match kafka.fetch(topic, *partition, *first, *last).await {
                    Ok(r) => r,
                    Err(e) => return kept(&format!("reading {topic}-{partition} failed: {e}")),
                };
                for record in records {
                    let text = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                        .into_owned();
                    match OutboxMessage::from_envelope_json(topic, &text) {
                        Ok(msg) => match kafka.send(&msg).await {
                            Ok(()) => events += 1,
                            Err(e) => return kept(&format!("publish failed: {e}")),
                        },
                        // Its consumer sent it to the DLQ as poison already, with its text.
                        Err(e) => {
                            tracing::warn!(%topic, partition, offset = record.offset, error = %e, "record is not an envelope; not replayed")
                        }
                    }
                }
            }
            Outcome::Replayed { events }
        }
        DeadLetter::Unknown { why } => kept(why),
    }
}

fn kept(why: &str) -> Outcome {
    Outcome::Kept {
        why: why.to_owned(),
    }
}

/// The command's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub queue_url: String,
    pub dry_run: bool,
    /// Messages handled at most.
    pub max: usize,
}

pub const USAGE: &str = "usage: dlq-replay [--queue-url URL|NAME] [--dry-run] [--max N]

Sends again what reached a dead-letter queue (EventsDlq by default: $EVENTS_DLQ_URL; a
queue's name stands for its URL) and deletes each message once what it stands for is
published. AWS from the environment (AWS_REGION,
credentials, AWS_ENDPOINT_URL for the devstack); Kafka from KAFKA_BOOTSTRAP_SERVERS, else
MSK_CLUSTER_ARN; the outbox tables of stream batches by the stream's ARN.";

impl Options {
    /// From the command line, with the queue defaulting to `EVENTS_DLQ_URL`.
    pub fn parse(args: &[String], default_queue: Option<String>) -> Result<Self, String> {
        let mut options = Self {
            queue_url: default_queue.unwrap_or_default(),
            dry_run: false,
            max: 1_000,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--dry-run" => options.dry_run = true,
                "--queue-url" => {
                    options.queue_url = args.next().ok_or("--queue-url needs a URL")?.clone()
                }
                "--max" => {
                    options.max = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .ok_or("--max needs a number")?
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if options.queue_url.is_empty() {
            return Err("no queue: pass --queue-url or set EVENTS_DLQ_URL".to_owned());
        }
        Ok(options)
    }
}

/// What a run of the command did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub seen: usize,
    pub replayed: usize,
    pub kept: usize,
    pub events: usize,
}

/// Runs the command: receives up to `options.max` messages of the queue and replays each
/// (or lists it, in a dry run). Prints a line per message.
pub async fn run<K, O, Q>(
    sqs: &aws_sdk_sqs::Client,
    kafka: &K,
    outbox: &O,
    dlq: &Q,
    options: &Options,
) -> Result<Summary, String>
where
    K: Sink + Refetch,
    O: OutboxStore,
    Q: PoisonQueue + ?Sized,
{
    let mut summary = Summary::default();
    // Held invisible until the run ends, so each is seen once per run.
    let mut held: Vec<String> = Vec::new();
    while summary.seen < options.max {
        let want = i32::try_from((options.max - summary.seen).min(10)).unwrap_or(10);
        let received = sqs
            .receive_message()
            .queue_url(&options.queue_url)
            .max_number_of_messages(want)
            .visibility_timeout(300)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read {}: {}",
                    options.queue_url,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            summary.seen += 1;
            let body = message.body().unwrap_or_default();
            let receipt = message.receipt_handle().unwrap_or_default().to_owned();
            let letter = DeadLetter::parse(body);
            let id = message.message_id().unwrap_or("?");
            if options.dry_run {
                println!("would replay {id}: {}", letter.describe());
                held.push(receipt);
                continue;
            }
            match replay(kafka, outbox, dlq, &letter).await {
                Outcome::Replayed { events } => {
                    sqs.delete_message()
                        .queue_url(&options.queue_url)
                        .receipt_handle(&receipt)
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "replayed {id} but could not delete it: {}",
                                aws_sdk_sqs::error::DisplayErrorContext(e)
                            )
                        })?;
                    println!("replayed {id} ({events} events): {}", letter.describe());
                    summary.replayed += 1;
                    summary.events += events;
                }
                Outcome::Kept { why } => {
                    println!("kept {id}: {} ({why})", letter.describe());
                    summary.kept += 1;
                    held.push(receipt);
                }
            }
        }
    }
    // What was only listed or kept is visible again at once, for the next run.
    for receipt in held {
        let _ = sqs
            .change_message_visibility()
            .queue_url(&options.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
    println!(
        "{} messages: {} replayed ({} events), {} kept{}",
        summary.seen,
        summary.replayed,
        summary.events,
        summary.kept,
        if options.dry_run { " (dry run)" } else { "" }
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use serde_json::json;
    use shutter_events::MemoryPoisonQueue;

    use super::*;
    use crate::store::MemoryOutbox;
    use crate::test_support::{Recorder, envelope, pending};

    /// A recorder that also serves records back by (topic, partition).
    #[derive(Default)]
    struct Broker {
        sink: Recorder,
        log: HashMap<(String, i32), Vec<FetchedRecord>>,
    }

    impl Sink for Broker {
        async fn send(&self, msg: &OutboxMessage) -> Result<(), String> {
            self.sink.send(msg).await
        }
    }

    impl Refetch for Broker {
        async fn fetch(
            &self,
            topic: &str,
            partition: i32,
            first: i64,
            last: i64,
        ) -> Result<Vec<FetchedRecord>, String> {
            Ok(self
                .log
                .get(&(topic.to_owned(), partition))
                .into_iter()
                .flatten()
                .filter(|r| (first..=last).contains(&r.offset))
                .cloned()
                .collect())
        }
    }

    #[test]
    fn the_three_kinds_of_message_are_told_apart() {
        let env = envelope("u1").to_json().unwrap();
        let poison = json!({"source": "feed-events", "position": "shutter.identity-1@7", "reason": "bad", "record": env});
        assert!(matches!(
            DeadLetter::parse(&poison.to_string()),
            DeadLetter::Poison { payload, .. } if payload == env
        ));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&env);
        let undecodable = json!({"source": "feed-events", "position": "shutter.identity-1@7", "reason": "bad", "record": b64});
        assert!(matches!(
            DeadLetter::parse(&undecodable.to_string()),
            DeadLetter::Poison { payload, .. } if payload == env
        ));
        let stream = json!({"requestContext": {}, "DDBStreamBatchInfo": {
            "shardId": "s", "batchSize": 3,
            "approximateArrivalOfLastRecord": "2026-11-25T09:00:00Z",
            "streamArn": "arn:aws:dynamodb:us-east-1:1:table/PostsTable/stream/x"}});
        assert_eq!(
            DeadLetter::parse(&stream.to_string()),
            DeadLetter::StreamBatch {
                table: "PostsTable".into(),
                last_arrival: Some(1_795_597_200_000),
                size: 3
            }
        );
        let local = json!({"DDBStreamBatchInfo": {"approximateArrivalOfLastRecord": 1795597200.5,
            "streamArn": "arn:aws:dynamodb:us-east-1:1:table/PostsTable/stream/x"}});
        assert!(matches!(
            DeadLetter::parse(&local.to_string()),
            DeadLetter::StreamBatch {
                last_arrival: Some(1_795_597_200_500),
                ..
            }
        ));
        let lambda = json!({"KafkaBatchInfo": {"recordsInfo": {
            "shutter.posts-2": {"firstRecordOffset": "10", "lastRecordOffset": "12"}}}});
        assert_eq!(
            DeadLetter::parse(&lambda.to_string()),
            DeadLetter::KafkaBatch {
                ranges: vec![("shutter.posts".into(), 2, 10, 12)]
            }
        );
        let flat = json!({"KafkaBatchInfo": {"topic": "shutter.posts", "partition": 1, "firstOffset": 4, "lastOffset": 5}});
        assert_eq!(
            DeadLetter::parse(&flat.to_string()),
            DeadLetter::KafkaBatch {
                ranges: vec![("shutter.posts".into(), 1, 4, 5)]
            }
        );
        assert!(matches!(
            DeadLetter::parse("hello"),
            DeadLetter::Unknown { .. }
        ));
        assert!(matches!(
            DeadLetter::parse("{}"),
            DeadLetter::Unknown { .. }
        ));
    }

    #[tokio::test]
    async fn a_poison_record_is_sent_again_to_its_topic() {
        let env = envelope("u1");
        let letter = DeadLetter::Poison {
            source: "profiles-identity-events".into(),
            position: "shutter.identity-0@3".into(),
            reason: "bad".into(),
            payload: env.to_json().unwrap(),
        };
        let broker = Broker::default();
        let outcome = replay(
            &broker,
            &MemoryOutbox::default(),
            &MemoryPoisonQueue::default(),
            &letter,
        )
        .await;
        assert_eq!(outcome, Outcome::Replayed { events: 1 });
        assert_eq!(broker.sink.sent(), vec![env.id.to_string()]);
    }

    #[tokio::test]
    async fn what_cannot_be_sent_is_kept() {
        let undecodable = DeadLetter::Poison {
            source: "s".into(),
            position: "shutter.identity-0@3".into(),
            reason: "bad".into(),
            payload: "{not json".into(),
        };
        let broker = Broker::default();
        let (outbox, dlq) = (MemoryOutbox::default(), MemoryPoisonQueue::default());
        assert!(matches!(
            replay(&broker, &outbox, &dlq, &undecodable).await,
            Outcome::Kept { .. }
        ));
        let env = envelope("u1");
        let letter = DeadLetter::Poison {
            source: "s".into(),
            position: "p".into(),
            reason: "r".into(),
            payload: env.to_json().unwrap(),
        };
        let down = Broker {
            sink: Recorder::down(),
            ..Broker::default()
        };
        assert!(matches!(
            replay(&down, &outbox, &dlq, &letter).await,
            Outcome::Kept { .. }
        ));
    }

    #[tokio::test]
    async fn a_stream_batch_is_settled_by_publishing_what_its_table_has_pending_from_then() {
        let outbox = MemoryOutbox::default();
        let (old, new) = (envelope("u1"), envelope("u2"));
        outbox.insert(pending("PostsTable", &old, 1_000));
        let later = shutter_events::outbox::epoch_millis() + 3_600_000;
        outbox.insert(pending("PostsTable", &new, later));
        let letter = DeadLetter::StreamBatch {
            table: "PostsTable".into(),
            last_arrival: Some(2_000),
            size: 1,
        };
        let broker = Broker::default();

        let outcome = replay(&broker, &outbox, &MemoryPoisonQueue::default(), &letter).await;

        assert_eq!(outcome, Outcome::Replayed { events: 1 });
        assert_eq!(broker.sink.sent(), vec![old.id.to_string()]);
        assert_eq!(outbox.still_pending("PostsTable"), vec![new.id.to_string()]);

        let down = Broker {
            sink: Recorder::down(),
            ..Broker::default()
        };
        outbox.insert(pending("PostsTable", &envelope("u3"), 1_500));
        let outcome = replay(&down, &outbox, &MemoryPoisonQueue::default(), &letter).await;
        assert!(matches!(outcome, Outcome::Kept { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_kafka_batch_is_read_back_and_sent_again() {
        let (a, b) = (envelope("u1"), envelope("u2"));
        let record = |offset, env: &shutter_events::Envelope| FetchedRecord {
            offset,
            key: Some(env.aggregate_id.as_bytes().to_vec()),
            value: Some(env.to_json().unwrap().into_bytes()),
        };
        let broker = Broker {
            log: HashMap::from([(
                ("shutter.identity".to_owned(), 1),
                vec![record(4, &a), record(5, &b), record(6, &envelope("u3"))],
            )]),
            ..Broker::default()
        };
        let letter = DeadLetter::KafkaBatch {
            ranges: vec![("shutter.identity".into(), 1, 4, 5)],
        };
        let outcome = replay(
            &broker,
            &MemoryOutbox::default(),
            &MemoryPoisonQueue::default(),
            &letter,
        )
        .await;
        assert_eq!(outcome, Outcome::Replayed { events: 2 });
        assert_eq!(broker.sink.sent(), vec![a.id.to_string(), b.id.to_string()]);
    }

    #[test]
    fn options() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--dry-run", "--max", "5"]), Some("q".into())).unwrap();
        assert_eq!((o.queue_url.as_str(), o.dry_run, o.max), ("q", true, 5));
        assert!(Options::parse(&args(&[]), None).is_err());
        assert!(Options::parse(&args(&["--bogus"]), Some("q".into())).is_err());
        assert_eq!(
            Options::parse(&args(&["--queue-url", "u"]), None)
                .unwrap()
                .queue_url,
            "u"
        );
    }
}
