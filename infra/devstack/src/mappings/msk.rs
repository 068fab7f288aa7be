//! MSK → Lambda, as a provisioned-mode Kafka event source mapping runs: one consumer group
//! per mapping reads its topic, gathers up to `BatchSize` records within the batching
//! window, and invokes the function with the Kafka event (records grouped by
//! `topic-partition`, base64 keys and values, numeric timestamps, written by hand as AWS
//! writes it). What the function answers is handled with Lambda's error handling for
//! Kafka sources:
//!
//! - `ReportBatchItemFailures`: an answer `{"batchItemFailures": [{"itemIdentifier":
//!   {"partition": "topic-2", "offset": 42}}]}` resumes each named partition at its
//!   lowest named offset; the records before it, and every record of the partitions it
//!   does not name, are done. An identifier that is malformed or names no record of the
//!   batch fails the whole batch.
//! - `BisectBatchOnFunctionError`: a function error splits the batch in two, and each
//!   half is delivered (and retried) on its own.
//! - `MaximumRetryAttempts` (-1 or unset: no limit, but 10 when there is an `OnFailure`
//!   destination, as Lambda caps it) and `MaximumRecordAgeInSeconds` (-1 or unset: no
//!   limit): records retried that often, or older than that before an invocation, go to
//!   the `OnFailure` destination (Lambda's Kafka invocation record: partitions and
//!   offsets, no payload) and are done.
//!
//! Offsets are committed as records are done, up to the first record of each partition
//! that is not. No call here waits on the broker (commits are asynchronous; a consumer is
//! destroyed on a thread of its own): these tasks share their threads with the gateway,
//! and a broker that stops answering must stall its mappings and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use base64::Engine;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value, json};

use super::Source;
use crate::Error;
use crate::runtime::InvokeError;

/// The retries Lambda allows when the limit is infinite and an `OnFailure` destination is
/// set.
const RETRIES_WITH_A_DESTINATION: u32 = 10;

#[derive(Debug, Clone, PartialEq)]
struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    /// Milliseconds since the epoch (0 when the broker gave none).
    timestamp: i64,
    json: Value,
}

impl Record {
    /// The `topic-partition` key of the Kafka event.
    fn key(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// Logs what the broker answers to an asynchronous commit.
struct Context {
    name: String,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(
                "{}: commit failed (its records may be delivered again): {e}",
                self.name
            );
        }
    }
}

/// A group consumer, destroyed on a thread of its own: leaving the group waits on the
/// broker, for as long as the broker takes. (Only `drop` takes it out.)
struct GroupConsumer(Option<StreamConsumer<Context>>);

impl GroupConsumer {
    /// The next message; `None` only once dropped.
    async fn recv(&self) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        Some(self.0.as_ref()?.recv().await)
    }

    fn subscribe(&self, topics: &[&str]) -> KafkaResult<()> {
        self.0.as_ref().map_or(Ok(()), |c| c.subscribe(topics))
    }

    /// Asks for a commit and returns at once.
    fn commit(&self, offsets: &TopicPartitionList) -> KafkaResult<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |c| c.commit(offsets, CommitMode::Async))
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("kafka-consumer-drop".into())
                .spawn(move || drop(consumer));
        }
    }
}

/// The settings of one mapping that decide what becomes of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    /// Retries of a batch after its first invocation; `None`: no limit.
    retries: Option<u32>,
    /// Records older than this (ms) are not delivered again; `None`: no limit.
    max_age_ms: Option<i64>,
    bisect: bool,
    item_failures: bool,
}

impl Limits {
    fn of(source: &Source) -> Self {
        let retries = match super::integer(&source.props["MaximumRetryAttempts"]) {
            Some(n) if n >= 0 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            _ if source.on_failure.is_some() => Some(RETRIES_WITH_A_DESTINATION),
            _ => None,
        };
        let max_age_ms = super::integer(&source.props["MaximumRecordAgeInSeconds"])
            .filter(|&s| s >= 0)
            .map(|s| s.saturating_mul(1000));
        Self {
            retries,
            max_age_ms,
            bisect: super::flag(&source.props["BisectBatchOnFunctionError"]),
            item_failures: source.reports_item_failures(),
        }
    }
}

pub fn run(
    source: Source,
    bootstrap: String,
) -> Result<impl Future<Output = ()> + Send + 'static, Error> {
    let topics: Vec<String> = source.props["Topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    if topics.len() != 1 {
        // Lambda's MSK event source mapping reads exactly one topic; a template that
        // lists more would fail to deploy, so it fails here first.
        return Err(Error::Template(format!(
            "{}: an MSK event reads exactly one topic, this one lists {topics:?}; declare one event per topic",
            source.name()
        )));
    }
    let group = source.props["ConsumerGroupId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}-{}", source.function.spec.name, source.event_name));
    let reset = if source.props["StartingPosition"] == "LATEST" {
        "latest"
    } else {
        "earliest"
    };
    // Neither creating a consumer nor subscribing waits on the broker: librdkafka
    // connects from its own threads.
    let consumer: StreamConsumer<Context> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create_with_context(Context {
            name: source.name(),
        })
        .map_err(|e| Error::Kafka(format!("consumer for {}: {e}", source.name())))?;
    let consumer = GroupConsumer(Some(consumer));
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&refs)
        .map_err(|e| Error::Kafka(format!("subscribe {}: {e}", source.name())))?;
    let arn = source.props["Stream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(async move {
        let mapping = Mapping {
            limits: Limits::of(&source),
            source,
            consumer,
            arn,
            bootstrap,
        };
        mapping.poll().await;
    })
}

struct Mapping {
    source: Source,
    consumer: GroupConsumer,
    arn: String,
    bootstrap: String,
    limits: Limits,
}

impl Mapping {
    async fn poll(&self) {
        let source = &self.source;
        let batch_size = source.batch_size(100).max(1);
        let window = Duration::from_secs_f64(
            source.props["MaximumBatchingWindowInSeconds"]
                .as_f64()
                .unwrap_or(0.5),
        );
        let mut committed = Committed::default();
        loop {
            let first = tokio::select! {
                _ = source.stop.cancelled() => return,
                m = self.consumer.recv() => match m { Some(m) => m, None => return },
            };
            let mut batch = Vec::new();
            match first {
                Ok(m) => batch.push(to_record(&m)),
                Err(e) => {
                    tracing::warn!("{}: consume failed: {e}", source.name());
                    tokio::select! {
                        _ = source.stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            }
            let deadline = tokio::time::Instant::now() + window;
            while batch.len() < batch_size {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = source.stop.cancelled() => return,
                    m = self.consumer.recv() => match m {
                        Some(Ok(m)) => batch.push(to_record(&m)),
                        Some(Err(e)) => { tracing::warn!("{}: consume failed: {e}", source.name()); break; }
                        None => return,
                    },
                }
            }
            let mut progress = Progress::new(&batch);
            // Lambda filters before it invokes: what no filter accepts is done.
            let (accepted, filtered): (Vec<Record>, Vec<Record>) = batch
                .into_iter()
                .partition(|r| source.filters.accepts(&filter_view(&r.json)));
            progress.done(&filtered);
            let parts = if source.delivery.reorder {
                by_partition_shuffled(accepted)
            } else {
                vec![accepted]
            };
            for part in parts {
                if !part.is_empty() && !self.deliver(part, &mut progress, &mut committed).await {
                    return;
                }
            }
            self.commit(&progress, &mut committed);
        }
    }

    /// Delivers `batch` until each record is done: handled, or sent to the destination.
    /// False when stopping.
    async fn deliver(
        &self,
        mut batch: Vec<Record>,
        progress: &mut Progress,
        committed: &mut Committed,
    ) -> bool {
        let source = &self.source;
        let mut attempts = 0u32;
        loop {
            if let Some(max_age) = self.limits.max_age_ms {
                let (expired, fresh) = split_expired(batch, now_ms(), max_age);
                if !expired.is_empty() {
                    self.give_up("RecordAgeExceeded", attempts, &expired).await;
                    progress.done(&expired);
                    self.commit(progress, committed);
                }
                batch = fresh;
            }
            if batch.is_empty() {
                return true;
            }
            let event = json!({
                "eventSource": "aws:kafka", "eventSourceArn": self.arn,
                "bootstrapServers": self.bootstrap, "records": event_records(&batch),
            });
            attempts += 1;
            match source.invoke(&event).await {
                Err(InvokeError::Stopped) => return false,
                Ok(response) if self.limits.item_failures => {
                    match failed_offsets(&response, &batch) {
                        Answer::Done => {
                            progress.done(&batch);
                            return true;
                        }
                        Answer::Retry(failed) => {
                            let (done, rest) = split_at_failures(batch, &failed);
                            progress.done(&done);
                            self.commit(progress, committed);
                            batch = rest;
                        }
                        Answer::Invalid(why) => tracing::warn!(
                            "{}: the whole batch of {} is retried: {why}",
                            source.name(),
                            batch.len()
                        ),
                    }
                }
                Ok(_) => {
                    progress.done(&batch);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: batch of {} failed (attempt {attempts}): {e}",
                        source.name(),
                        batch.len()
                    );
                    if self.limits.bisect && batch.len() > 1 {
                        let right = batch.split_off(batch.len() / 2);
                        return Box::pin(self.deliver(batch, progress, committed)).await
                            && Box::pin(self.deliver(right, progress, committed)).await;
                    }
                }
            }
            if self.limits.retries.is_some_and(|max| attempts > max) {
                self.give_up("RetryAttemptsExhausted", attempts, &batch)
                    .await;
                progress.done(&batch);
                return true;
            }
            if !source.backoff(attempts).await {
                return false;
            }
        }
    }

    /// Sends Lambda's Kafka invocation record for `records` to the destination.
    async fn give_up(&self, condition: &str, attempts: u32, records: &[Record]) {
        let payload_size: usize = records.iter().map(|r| r.json.to_string().len()).sum();
        let info = json!({
            "batchSize": records.len(),
            "eventSourceArn": self.arn,
            "bootstrapServers": self.bootstrap,
            "payloadSize": payload_size,
            "recordsInfo": records_info(records),
        });
        self.source
            .send_to_destination(condition, attempts, ("KafkaBatchInfo", info))
            .await;
    }

    /// Commits what `progress` allows and `committed` does not have yet, asynchronously:
    /// the broker's answer is logged by [`Context`].
    fn commit(&self, progress: &Progress, committed: &mut Committed) {
        let positions = committed.advance(progress.positions());
        if positions.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in positions {
            if let Err(e) = list.add_partition_offset(&topic, partition, Offset::Offset(offset)) {
                tracing::warn!("{}: {e}", self.source.name());
            }
        }
        if let Err(e) = self.consumer.commit(&list) {
            tracing::warn!(
                "{}: commit failed (its records may be delivered again): {e}",
                self.source.name()
            );
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn to_record<M: Message>(m: &M) -> Record {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let headers: Vec<Value> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    let mut one = Map::new();
                    one.insert(h.key.to_owned(), json!(h.value.unwrap_or_default()));
                    Value::Object(one)
                })
                .collect()
        })
        .unwrap_or_default();
    let (timestamp_type, timestamp) = match m.timestamp() {
        rdkafka::Timestamp::LogAppendTime(t) => ("LOG_APPEND_TIME", t),
        rdkafka::Timestamp::CreateTime(t) => ("CREATE_TIME", t),
        rdkafka::Timestamp::NotAvailable => ("CREATE_TIME", 0),
    };
    let mut json = json!({
        "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
        "timestamp": timestamp, "timestampType": timestamp_type,
        "value": b64(m.payload().unwrap_or_default()), "headers": headers,
    });
    if let Some(key) = m.key() {
        json["key"] = json!(b64(key));
    }
    Record {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp,
        json,
    }
}

/// The event's `records`: each partition's records under its `topic-partition` key, in
/// the order they came.
fn event_records(batch: &[Record]) -> Map<String, Value> {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in batch {
        grouped.entry(r.key()).or_default().push(r.json.clone());
    }
    grouped
        .into_iter()
        .map(|(k, v)| (k, Value::Array(v)))
        .collect()
}

/// Filters see the value decoded, as JSON when it is JSON.
fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(bytes) = record["value"]
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        && let Ok(parsed) = serde_json::from_slice::<Value>(&bytes)
    {
        view["value"] = parsed;
    }
    view
}

/// What a function's answer means for its batch.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Every record is done.
    Done,
    /// Each named partition is retried from this offset; the rest is done.
    Retry(BTreeMap<String, i64>),
    /// The answer does not say which records failed: all of them did.
    Invalid(String),
}

/// Reads a Kafka partial batch response against the batch it answers.
fn failed_offsets(response: &Value, batch: &[Record]) -> Answer {
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Answer::Done,
        Some(Value::Array(f)) if f.is_empty() => return Answer::Done,
        Some(Value::Array(f)) => f,
        Some(other) => return Answer::Invalid(format!("batchItemFailures is {other}")),
    };
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    for failure in failures {
        let id = &failure["itemIdentifier"];
        let (Some(partition), Some(offset)) = (id["partition"].as_str(), id["offset"].as_i64())
        else {
            return Answer::Invalid(format!(
                "the item identifier {id} is not {{partition, offset}}"
            ));
        };
        if !batch
            .iter()
            .any(|r| r.offset == offset && r.key() == partition)
        {
            return Answer::Invalid(format!("{partition}@{offset} is not in the batch"));
        }
        let lowest = first.entry(partition.to_owned()).or_insert(offset);
        *lowest = (*lowest).min(offset);
    }
    Answer::Retry(first)
}

/// (done, to retry): a record is retried when its partition failed at or before it.
fn split_at_failures(
    batch: Vec<Record>,
    failed: &BTreeMap<String, i64>,
) -> (Vec<Record>, Vec<Record>) {
    batch
        .into_iter()
        .partition(|r| failed.get(&r.key()).is_none_or(|&first| r.offset < first))
}

/// (expired, fresh) at `now`: a record is expired when older than `max_age_ms`.
fn split_expired(batch: Vec<Record>, now: i64, max_age_ms: i64) -> (Vec<Record>, Vec<Record>) {
    batch
        .into_iter()
        .partition(|r| r.timestamp > 0 && now.saturating_sub(r.timestamp) > max_age_ms)
}

/// The batch as one batch per partition, the partitions in a random order.
fn by_partition_shuffled(batch: Vec<Record>) -> Vec<Vec<Record>> {
    let mut parts: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in batch {
        parts.entry(r.key()).or_default().push(r);
    }
    let mut parts: Vec<Vec<Record>> = parts.into_values().collect();
    rand::seq::SliceRandom::shuffle(parts.as_mut_slice(), &mut rand::thread_rng());
    parts
}

/// `recordsInfo` of Lambda's Kafka invocation record: per `topic-partition`, the first
/// and last offsets (as strings) and timestamps of the records given up.
fn records_info(records: &[Record]) -> Map<String, Value> {
    let mut by_partition: BTreeMap<String, (&Record, &Record)> = BTreeMap::new();
    for r in records {
        let entry = by_partition.entry(r.key()).or_insert((r, r));
        if r.offset < entry.0.offset {
            entry.0 = r;
        }
        if r.offset > entry.1.offset {
            entry.1 = r;
        }
    }
    let iso = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    by_partition
        .into_iter()
        .map(|(key, (first, last))| {
            (
                key,
                json!({
                    "firstRecordOffset": first.offset.to_string(),
                    "lastRecordOffset": last.offset.to_string(),
                    "firstRecordTimestamp": iso(first.timestamp),
                    "lastRecordTimestamp": iso(last.timestamp),
                }),
            )
        })
        .collect()
}

type Partition = (String, i32);

/// Which records of one polled batch are done. A partition can be committed up to its
/// first record that is not (whatever was done after it is delivered again if the
/// mapping restarts there), or past its last record once all are.
#[derive(Debug, Default)]
struct Progress {
    pending: BTreeMap<Partition, BTreeSet<i64>>,
    next: BTreeMap<Partition, i64>,
}

impl Progress {
    fn new(batch: &[Record]) -> Self {
        let mut progress = Self::default();
        for r in batch {
            let partition = (r.topic.clone(), r.partition);
            progress
                .pending
                .entry(partition.clone())
                .or_default()
                .insert(r.offset);
            let next = progress.next.entry(partition).or_insert(r.offset + 1);
            *next = (*next).max(r.offset + 1);
        }
        progress
    }

    fn done(&mut self, records: &[Record]) {
        for r in records {
            if let Some(pending) = self.pending.get_mut(&(r.topic.clone(), r.partition)) {
                pending.remove(&r.offset);
            }
        }
    }

    /// The offset each partition can be committed at: its first pending record, or the
    /// one after its last.
    fn positions(&self) -> BTreeMap<Partition, i64> {
        self.next
            .iter()
            .map(|(p, &next)| {
                let first_pending = self.pending.get(p).and_then(|s| s.first().copied());
                (p.clone(), first_pending.unwrap_or(next))
            })
            .collect()
    }
}

/// The offsets committed so far, so a commit only ever moves a partition forward.
#[derive(Debug, Default)]
struct Committed(BTreeMap<Partition, i64>);

impl Committed {
    /// The positions that move past what is committed; they count as committed from now.
    fn advance(&mut self, positions: BTreeMap<Partition, i64>) -> Vec<(Partition, i64)> {
        let mut moved = Vec::new();
        for (p, offset) in positions {
            if self.0.get(&p).is_none_or(|&c| offset > c) {
                self.0.insert(p.clone(), offset);
                moved.push((p, offset));
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition,
            offset,
            timestamp: 1_000 + offset,
            json: json!({"partition": partition, "offset": offset}),
        }
    }

    fn offsets(records: &[Record]) -> Vec<(i32, i64)> {
        records.iter().map(|r| (r.partition, r.offset)).collect()
    }

    fn batch() -> Vec<Record> {
        vec![
            rec(0, 5),
            rec(1, 7),
            rec(0, 6),
            rec(0, 7),
            rec(1, 8),
            rec(2, 1),
        ]
    }

    fn failure(partition: &str, offset: i64) -> Value {
        json!({"itemIdentifier": {"partition": partition, "offset": offset}})
    }

    #[test]
    fn no_failures_means_the_whole_batch_is_done() {
        for response in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": null}),
            json!({"batchItemFailures": []}),
        ] {
            assert_eq!(
                failed_offsets(&response, &batch()),
                Answer::Done,
                "{response}"
            );
        }
    }

    #[test]
    fn each_partition_resumes_at_its_lowest_failed_offset() {
        let response =
            json!({"batchItemFailures": [failure("t-0", 7), failure("t-0", 6), failure("t-1", 8)]});
        let Answer::Retry(failed) = failed_offsets(&response, &batch()) else {
            panic!("a partial failure");
        };
        assert_eq!(
            failed,
            BTreeMap::from([("t-0".to_owned(), 6), ("t-1".to_owned(), 8)])
        );
        let (done, retried) = split_at_failures(batch(), &failed);
        assert_eq!(offsets(&done), vec![(0, 5), (1, 7), (2, 1)]);
        assert_eq!(offsets(&retried), vec![(0, 6), (0, 7), (1, 8)]);
    }

    #[test]
    fn an_identifier_that_is_malformed_or_not_in_the_batch_fails_everything() {
        for bad in [
            json!({"batchItemFailures": [failure("t-0", 9)]}),
            json!({"batchItemFailures": [failure("t-3", 5)]}),
            json!({"batchItemFailures": [{"itemIdentifier": "t-0@5"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": {"partition": "t-0", "offset": "5"}}]}),
            json!({"batchItemFailures": [{"itemIdentifier": {"offset": 5}}]}),
            json!({"batchItemFailures": [failure("t-0", 5), {}]}),
            json!({"batchItemFailures": "t-0"}),
        ] {
            assert!(
                matches!(failed_offsets(&bad, &batch()), Answer::Invalid(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_partition_commits_up_to_its_first_record_not_done() {
        let all = batch();
        let mut progress = Progress::new(&all);
        let mut committed = Committed::default();
        // Nothing done: each partition stays where the batch began.
        assert_eq!(
            committed.advance(progress.positions()),
            vec![
                (("t".to_owned(), 0), 5),
                (("t".to_owned(), 1), 7),
                (("t".to_owned(), 2), 1)
            ]
        );
        // t-0@5 and t-0@7 done but t-0@6 not: t-0 may move to 6 only.
        progress.done(&[rec(0, 5), rec(0, 7), rec(2, 1)]);
        assert_eq!(
            committed.advance(progress.positions()),
            vec![(("t".to_owned(), 0), 6), (("t".to_owned(), 2), 2)]
        );
        assert_eq!(
            committed.advance(progress.positions()),
            vec![],
            "only moves forward"
        );
        progress.done(&all);
        assert_eq!(
            committed.advance(progress.positions()),
            vec![(("t".to_owned(), 0), 8), (("t".to_owned(), 1), 9)]
        );
    }

    #[test]
    fn records_past_the_maximum_age_are_split_off() {
        // Timestamps are 1000 + offset; at 1010 with a limit of 4 ms, offsets < 6 are
        // past it; a record without a timestamp never is.
        let mut all = batch();
        all.push(Record {
            timestamp: 0,
            ..rec(2, 2)
        });
        let (expired, fresh) = split_expired(all, 1_010, 4);
        assert_eq!(offsets(&expired), vec![(0, 5), (2, 1)]);
        assert_eq!(
            offsets(&fresh),
            vec![(1, 7), (0, 6), (0, 7), (1, 8), (2, 2)]
        );
    }

    #[test]
    fn the_event_groups_records_by_topic_partition_in_order() {
        let records = event_records(&batch());
        assert_eq!(
            records.keys().cloned().collect::<Vec<_>>(),
            vec!["t-0", "t-1", "t-2"]
        );
        assert_eq!(
            records["t-0"],
            json!([rec(0, 5).json, rec(0, 6).json, rec(0, 7).json])
        );
    }

    #[test]
    fn reordering_keeps_each_partition_whole_and_in_order() {
        for _ in 0..20 {
            let parts = by_partition_shuffled(batch());
            assert_eq!(parts.len(), 3);
            for part in &parts {
                assert!(part.iter().all(|r| r.partition == part[0].partition));
                assert!(part.windows(2).all(|w| w[0].offset < w[1].offset));
            }
            assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 6);
        }
    }

    #[test]
    fn the_invocation_record_names_each_partitions_first_and_last_offsets() {
        let info = records_info(&[rec(0, 6), rec(1, 8), rec(0, 7)]);
        assert_eq!(
            info["t-0"],
            json!({
                "firstRecordOffset": "6", "lastRecordOffset": "7",
                "firstRecordTimestamp": "1970-01-01T00:00:01.006Z",
                "lastRecordTimestamp": "1970-01-01T00:00:01.007Z",
            })
        );
        assert_eq!(info["t-1"]["firstRecordOffset"], "8");
        assert_eq!(info.len(), 2);
    }
}
