//! How every MSK consumer runs: decode each record with the catalogue, skip what the
//! consumer does not handle (and count event types this build does not know), apply the
//! rest, send what can never be applied to the dead-letter queue with the reason, and
//! answer Lambda with the records to retry.
//!
//! Order matters only within a partition (one aggregate's events share one), so a
//! retryable failure stops its own partition and no other: the record and every later
//! one of its partition are reported in a Kafka partial batch response
//! (`ReportBatchItemFailures`), and Lambda resumes that partition from there while the
//! rest of the batch counts as done. Effects are idempotent, so the redelivery of what a
//! retry covers again does no harm. Consumers that merge the whole batch
//! ([`run_batch_consumer`]) fail it as a whole instead, and Lambda bisects it.

use std::future::Future;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use shutter_store::{Cause, ConfigError, SdkConfig, StoreError};

use crate::{Consumer, DecodeError, Decoded, Envelope, KafkaEvent, KafkaRecord};

/// What a consumer makes of a failure: try the batch again, or give the record up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Trying again later can succeed (storage or a dependency unavailable, a race lost).
    #[error("retryable: {0}")]
    Retry(#[source] Cause),
    /// This record can never be applied: it goes to the dead-letter queue with the reason.
    #[error("poison: {0}")]
    Poison(String),
}

impl ConsumeError {
    pub fn retry(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Retry(Box::new(err))
    }

    /// A retryable failure described by a message.
    pub fn retry_because(why: impl Into<String>) -> Self {
        Self::Retry(why.into().into())
    }

    pub fn poison(reason: impl std::fmt::Display) -> Self {
        Self::Poison(reason.to_string())
    }
}

/// Storage that is unavailable, or a condition lost to a concurrent writer, may pass;
/// stored data that does not decode, or a missing item the event needed, will not.
impl From<StoreError> for ConsumeError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Self::Retry(Box::new(err)),
            StoreError::NotFound | StoreError::Corrupt(_) => Self::Poison(err.to_string()),
        }
    }
}

/// The dead-letter queue could not take a record.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter queue unavailable: {0}")]
pub struct QueueError(#[source] pub Cause);

impl From<QueueError> for ConsumeError {
    fn from(err: QueueError) -> Self {
        Self::Retry(Box::new(err))
    }
}

/// Where records that can never be applied go, with why.
#[async_trait]
pub trait PoisonQueue: Send + Sync {
    async fn send(&self, position: &str, reason: &str, record: &str) -> Result<(), QueueError>;
}

/// The SQS dead-letter queue adapter; `source` names the consumer in each message.
#[derive(Debug, Clone)]
pub struct SqsPoisonQueue {
    /// Built on first use (see [`shutter_store::SdkClient`]).
    pub client: shutter_store::SdkClient<aws_sdk_sqs::Client>,
    pub queue_url: String,
    pub source: &'static str,
}

impl SqsPoisonQueue {
    /// The queue named by `EVENTS_DLQ_URL`.
    pub fn from_env(config: &SdkConfig, source: &'static str) -> Result<Self, ConfigError> {
        Ok(Self {
            client: shutter_store::SdkClient::new(config, aws_sdk_sqs::Client::new),
            queue_url: shutter_store::env("EVENTS_DLQ_URL")?,
            source,
        })
    }
}

#[async_trait]
impl PoisonQueue for SqsPoisonQueue {
    async fn send(&self, position: &str, reason: &str, record: &str) -> Result<(), QueueError> {
        let body = serde_json::json!({"source": self.source, "position": position, "reason": reason, "record": record});
        self.client
            .get()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError(Box::new(e)))
    }
}

/// An in-memory poison queue for unit tests: (position, reason) of each record sent.
#[derive(Debug, Default)]
pub struct MemoryPoisonQueue {
    pub sent: std::sync::Mutex<Vec<(String, String)>>,
}

impl MemoryPoisonQueue {
    pub fn positions(&self) -> Vec<String> {
        self.sent
            .lock()
            .map(|s| s.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl PoisonQueue for MemoryPoisonQueue {
    async fn send(&self, position: &str, reason: &str, _record: &str) -> Result<(), QueueError> {
        self.sent
            .lock()
            .map_err(|_| QueueError("poisoned lock".into()))?
            .push((position.to_owned(), reason.to_owned()));
        Ok(())
    }
}

/// One decoded record that the consumer handles.
#[derive(Debug, Clone)]
pub struct Record {
    /// `topic-partition@offset`, for logs and failure reports.
    pub position: String,
    pub envelope: Envelope,
    /// The `topic-partition` key of the MSK event, and the record's offset in it.
    partition: String,
    offset: i64,
}

#[derive(Debug)]
struct Poisoned {
    partition: String,
    offset: i64,
    position: String,
    reason: String,
    record: String,
}

/// Lambda's partial batch response for a Kafka event source
/// (`{"batchItemFailures": [{"itemIdentifier": {"partition": "topic-2", "offset": 42}}]}`):
/// the records to deliver again. Lambda resumes each named partition from the lowest
/// offset named in it; every other record of the batch is done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: ItemIdentifier,
}

/// A record of a Kafka event: its `topic-partition` key and its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemIdentifier {
    pub partition: String,
    pub offset: i64,
}

impl BatchResponse {
    /// True when every record is done.
    pub fn is_success(&self) -> bool {
        self.batch_item_failures.is_empty()
    }

    fn fail(&mut self, partition: &str, offset: i64) {
        self.batch_item_failures.push(ItemFailure {
            item_identifier: ItemIdentifier {
                partition: partition.to_owned(),
                offset,
            },
        });
    }
}

/// What a batch came to, logged once per invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Records handed to the consumer.
    pub handled: usize,
    /// Known events that the consumer does not act on.
    pub ignored: usize,
    /// Events of a type this build does not know (a newer producer's), skipped.
    pub unknown: usize,
    /// Records sent to the dead-letter queue.
    pub poisoned: usize,
}

/// The records of one MSK event, decoded in partition order (Lambda groups them by
/// `topic-partition`; within one partition they are in offset order), with those the
/// consumer does not handle already left out.
#[derive(Debug)]
pub struct Batch {
    records: Vec<Record>,
    poisoned: Vec<Poisoned>,
    report: BatchReport,
}

impl Batch {
    /// Decodes `event` for `consumer`.
    pub fn decode(consumer: &Consumer, event: &KafkaEvent) -> Self {
        let mut batch = Batch {
            records: Vec::new(),
            poisoned: Vec::new(),
            report: BatchReport::default(),
        };
        let mut partitions: Vec<_> = event.records.iter().collect();
        partitions.sort_by(|a, b| a.0.cmp(b.0));
        for (partition, records) in partitions {
            let mut records: Vec<&KafkaRecord> = records.iter().collect();
            records.sort_by_key(|r| r.offset);
            for record in records {
                let position = format!("{partition}@{}", record.offset);
                match decode_record(record) {
                    Ok(Decoded::Known(envelope))
                        if consumer.handles.contains(envelope.event_type()) =>
                    {
                        batch.records.push(Record {
                            position,
                            envelope,
                            partition: partition.clone(),
                            offset: record.offset,
                        });
                    }
                    Ok(Decoded::Known(_)) => batch.report.ignored += 1,
                    Ok(Decoded::Unknown(unknown)) => {
                        tracing::debug!(%position, event_type = %unknown.event_type, "event type unknown to this build skipped");
                        batch.report.unknown += 1;
                    }
                    Err(err) => batch.poisoned.push(Poisoned {
                        partition: partition.clone(),
                        offset: record.offset,
                        position,
                        reason: err.to_string(),
                        record: record.value.clone().unwrap_or_default(),
                    }),
                }
            }
        }
        batch.report.handled = batch.records.len();
        batch
    }

    /// The records to apply, in order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Gives up `record` for `reason`: it goes to the dead-letter queue when the batch
    /// finishes.
    pub fn poison(&mut self, record: &Record, reason: impl std::fmt::Display) {
        self.poisoned.push(Poisoned {
            partition: record.partition.clone(),
            offset: record.offset,
            position: record.position.clone(),
            reason: reason.to_string(),
            record: record.envelope.to_json().unwrap_or_default(),
        });
    }

    /// Sends what was given up to `queue` and logs the batch's counts.
    pub async fn finish<Q: PoisonQueue + ?Sized>(
        self,
        consumer: &Consumer,
        queue: &Q,
    ) -> Result<BatchReport, ConsumeError> {
        let (report, retry) = self
            .finish_partially(consumer, queue, Retries::default())
            .await;
        match retry.first_cause {
            Some(cause) => Err(ConsumeError::Retry(cause)),
            None => Ok(report),
        }
    }

    /// Sends what was given up to `queue`, except records that `retry` delivers again
    /// (at or after their partition's first retried offset); a record the queue does not
    /// take is retried too, from its offset (a later one of its partition already sent
    /// is sent again then: the queue's readers deduplicate by event id).
    async fn finish_partially<Q: PoisonQueue + ?Sized>(
        mut self,
        consumer: &Consumer,
        queue: &Q,
        mut retry: Retries,
    ) -> (BatchReport, Retries) {
        let mut sent = 0;
        for p in &self.poisoned {
            if retry.covers(&p.partition, p.offset) {
                continue;
            }
            tracing::error!(consumer = consumer.name, position = %p.position, reason = %p.reason, "poison record sent to the DLQ");
            if let Err(err) = queue.send(&p.position, &p.reason, &p.record).await {
                tracing::warn!(consumer = consumer.name, position = %p.position, error = %err, "the DLQ did not take a poison record; its partition is retried from it");
                retry.from(&p.partition, p.offset, Box::new(err));
                continue;
            }
            sent += 1;
        }
        self.report.poisoned = sent;
        let r = self.report;
        tracing::info!(
            consumer = consumer.name,
            handled = r.handled,
            ignored = r.ignored,
            skipped_unknown = r.unknown,
            poisoned = r.poisoned,
            retried_partitions = retry.first.len(),
            "batch consumed"
        );
        (r, retry)
    }
}

/// The partitions to deliver again, each from its first record that must be retried.
#[derive(Debug, Default)]
struct Retries {
    first: std::collections::BTreeMap<String, i64>,
    first_cause: Option<Cause>,
}

impl Retries {
    fn covers(&self, partition: &str, offset: i64) -> bool {
        self.first
            .get(partition)
            .is_some_and(|&first| offset >= first)
    }

    fn from(&mut self, partition: &str, offset: i64, cause: Cause) {
        let first = self.first.entry(partition.to_owned()).or_insert(offset);
        *first = (*first).min(offset);
        self.first_cause.get_or_insert(cause);
    }

    /// The response naming, in each retried partition, its first retried record and
    /// every later one of the batch: Lambda resumes the partition at the lowest.
    fn response(&self, event: &KafkaEvent) -> BatchResponse {
        let mut response = BatchResponse::default();
        for (partition, &first) in &self.first {
            let mut offsets: Vec<i64> = event
                .records
                .get(partition)
                .into_iter()
                .flatten()
                .map(|r| r.offset)
                .filter(|&o| o >= first)
                .collect();
            offsets.sort_unstable();
            for offset in offsets {
                response.fail(partition, offset);
            }
        }
        response
    }
}

fn decode_record(record: &KafkaRecord) -> Result<Decoded, DecodeError> {
    let value = record.value.as_deref().ok_or(DecodeError::NoValue)?;
    let bytes = STANDARD
        .decode(value)
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    Envelope::decode(&bytes)
}

/// Applies every record of `event` that `consumer` handles, in partition order, with
/// `apply`. A record that does not decode, or whose effect is poison, goes to `queue`; a
/// retryable failure stops its partition (the rest of it is not applied) and fails the
/// batch once every other partition is applied.
pub async fn consume<Q, F, Fut>(
    consumer: &Consumer,
    event: &KafkaEvent,
    queue: &Q,
    apply: F,
) -> Result<BatchReport, ConsumeError>
where
    Q: PoisonQueue + ?Sized,
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Result<(), ConsumeError>>,
{
    let (report, retry) = apply_partitions(consumer, event, queue, apply).await;
    match retry.first_cause {
        Some(cause) => Err(ConsumeError::Retry(cause)),
        None => Ok(report),
    }
}

/// [`consume`] as Lambda sees it: the records to retry as a partial batch response.
pub async fn consume_partially<Q, F, Fut>(
    consumer: &Consumer,
    event: &KafkaEvent,
    queue: &Q,
    apply: F,
) -> (BatchReport, BatchResponse)
where
    Q: PoisonQueue + ?Sized,
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Result<(), ConsumeError>>,
{
    let (report, retry) = apply_partitions(consumer, event, queue, apply).await;
    (report, retry.response(event))
}

async fn apply_partitions<Q, F, Fut>(
    consumer: &Consumer,
    event: &KafkaEvent,
    queue: &Q,
    mut apply: F,
) -> (BatchReport, Retries)
where
    Q: PoisonQueue + ?Sized,
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Result<(), ConsumeError>>,
{
    let mut batch = Batch::decode(consumer, event);
    let mut retry = Retries::default();
    for record in std::mem::take(&mut batch.records) {
        if retry.covers(&record.partition, record.offset) {
            // Behind a record that must be retried: its partition resumes there.
            continue;
        }
        match apply(record.envelope.clone()).await {
            Ok(()) => {}
            Err(ConsumeError::Retry(cause)) => {
                tracing::warn!(consumer = consumer.name, position = %record.position, event_id = %record.envelope.id, error = %cause, "record failed; its partition is retried from it");
                retry.from(&record.partition, record.offset, cause);
            }
            Err(ConsumeError::Poison(reason)) => batch.poison(&record, reason),
        }
    }
    batch.finish_partially(consumer, queue, retry).await
}

/// Runs a consumer on the Lambda runtime: logs set up, its dependencies built once per
/// cold start by `build` (with the dead-letter queue of `EVENTS_DLQ_URL`), then each MSK
/// event's records applied one by one with `apply`, and the records to retry answered as
/// a partial batch response (the mapping has `ReportBatchItemFailures`).
pub async fn run_consumer<D, B, F, Fut>(
    consumer: &'static Consumer,
    build: B,
    apply: F,
) -> Result<(), lambda_runtime::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, ConfigError>,
    F: Fn(&'static D, Envelope) -> Fut + Sync,
    Fut: Future<Output = Result<(), ConsumeError>> + Send,
{
    shutter_store::init_tracing();
    let aws = shutter_store::aws_config().await;
    let deps: &'static D = Box::leak(Box::new(build(&aws).await?));
    let queue: &'static SqsPoisonQueue =
        Box::leak(Box::new(SqsPoisonQueue::from_env(&aws, consumer.name)?));
    let apply = &apply;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<KafkaEvent>| async move {
            let (_, response) = consume_partially(consumer, &event.payload, queue, |envelope| {
                apply(deps, envelope)
            })
            .await;
            Ok::<_, lambda_runtime::Error>(response)
        },
    ))
    .await
}

/// [`run_consumer`] for consumers that work on the whole batch at once (to merge many
/// records into one write): `apply` gets the decoded batch, gives up records with
/// [`Batch::poison`], and hands it back to be finished. A retryable failure fails the
/// invocation (Lambda bisects the batch); a poison record the DLQ does not take is
/// answered as a partial batch failure, from it.
pub async fn run_batch_consumer<D, B, F, Fut>(
    consumer: &'static Consumer,
    build: B,
    apply: F,
) -> Result<(), lambda_runtime::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, ConfigError>,
    F: Fn(&'static D, Batch) -> Fut + Sync,
    Fut: Future<Output = Result<Batch, ConsumeError>> + Send,
{
    shutter_store::init_tracing();
    let aws = shutter_store::aws_config().await;
    let deps: &'static D = Box::leak(Box::new(build(&aws).await?));
    let queue: &'static SqsPoisonQueue =
        Box::leak(Box::new(SqsPoisonQueue::from_env(&aws, consumer.name)?));
    let apply = &apply;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<KafkaEvent>| async move {
            let batch = Batch::decode(consumer, &event.payload);
            let batch = apply(deps, batch).await?;
            let (_, retry) = batch
                .finish_partially(consumer, queue, Retries::default())
                .await;
            Ok::<_, lambda_runtime::Error>(retry.response(&event.payload))
        },
    ))
    .await
}

/// Runs any other Lambda (an SQS queue's consumer, a table stream's, a custom resource):
/// logs set up, its dependencies built once per cold start by `build`, then each event
/// handed to `handle`, whose answer goes back to Lambda (a partial batch response, say).
pub async fn run_function<D, B, BuildError, E, R, HandleError, F, Fut>(
    build: B,
    handle: F,
) -> Result<(), lambda_runtime::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, BuildError>,
    BuildError: std::error::Error + Send + Sync + 'static,
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    HandleError: std::error::Error + Send + Sync + 'static,
    F: Fn(&'static D, E) -> Fut + Sync,
    Fut: Future<Output = Result<R, HandleError>> + Send,
{
    shutter_store::init_tracing();
    let aws = shutter_store::aws_config().await;
    let deps: &'static D = Box::leak(Box::new(build(&aws).await?));
    let handle = &handle;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<E>| async move {
            handle(deps, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, EventSet, EventType, PostDeleted, UserDeleted};
    use shutter_core::{PostId, UserId};

    const TEST_CONSUMER: Consumer = Consumer {
        name: "test-consumer",
        handles: EventSet::of(&[EventType::UserDeleted]),
        summary: "a test",
    };

    fn record(offset: i64, value: Option<String>) -> KafkaRecord {
        let mut r = KafkaRecord::default();
        r.offset = offset;
        r.value = value;
        r
    }

    fn b64(json: &str) -> Option<String> {
        Some(STANDARD.encode(json))
    }

    fn user_deleted() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: user.clone(),
                username: "ann".into(),
            }),
            Some(&user),
            "c",
        )
    }

    fn post_deleted() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::PostDeleted(PostDeleted {
                post_id: PostId::generate(),
                author_id: user.clone(),
                deleted_by: user,
            }),
            None,
            "c",
        )
    }

    fn kafka(records: Vec<(&str, KafkaRecord)>) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for (tp, r) in records {
            event.records.entry(tp.to_owned()).or_default().push(r);
        }
        event
    }

    #[tokio::test]
    async fn handled_events_are_applied_in_partition_order_and_others_skipped() {
        let (a, b) = (user_deleted(), user_deleted());
        let event = kafka(vec![
            ("shutter.identity-1", record(7, b64(&b.to_json().unwrap()))),
            ("shutter.identity-0", record(3, b64(&a.to_json().unwrap()))),
            (
                "shutter.posts-0",
                record(1, b64(&post_deleted().to_json().unwrap())),
            ),
            (
                "shutter.stories-0",
                record(
                    1,
                    b64(
                        r#"{"id":"1","type":"StoryPosted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"s","correlation_id":"c","data":{}}"#,
                    ),
                ),
            ),
        ]);
        let queue = MemoryPoisonQueue::default();
        let mut seen = Vec::new();
        let report = consume(&TEST_CONSUMER, &event, &queue, |env| {
            seen.push(env.id.clone());
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(seen, vec![a.id, b.id]);
        assert_eq!(
            report,
            BatchReport {
                handled: 2,
                ignored: 1,
                unknown: 1,
                poisoned: 0
            }
        );
        assert!(
            queue.positions().is_empty(),
            "an unknown type is not poison"
        );
    }

    #[tokio::test]
    async fn undecodable_and_poison_records_go_to_the_queue_and_the_rest_applies() {
        let good = user_deleted();
        let event = kafka(vec![
            ("t-0", record(1, None)),
            ("t-0", record(2, Some("%%%".into()))),
            ("t-0", record(3, b64(r#"{"not":"an envelope"}"#))),
            (
                "t-0",
                record(
                    4,
                    b64(
                        r#"{"id":"1","type":"UserDeleted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"a","correlation_id":"c","data":{"nope":1}}"#,
                    ),
                ),
            ),
            ("t-0", record(5, b64(&good.to_json().unwrap()))),
            ("t-0", record(6, b64(&user_deleted().to_json().unwrap()))),
        ]);
        let queue = MemoryPoisonQueue::default();
        let mut applied = 0;
        let report = consume(&TEST_CONSUMER, &event, &queue, |env| {
            applied += 1;
            let poison = env.id != good.id;
            async move {
                if poison {
                    Err(ConsumeError::poison("cannot apply"))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(applied, 2);
        assert_eq!(
            queue.positions(),
            vec!["t-0@1", "t-0@2", "t-0@3", "t-0@4", "t-0@6"]
        );
        assert_eq!(report.poisoned, 5);
    }

    #[tokio::test]
    async fn a_retryable_failure_fails_the_batch_and_sends_nothing() {
        let event = kafka(vec![(
            "t-0",
            record(1, b64(&user_deleted().to_json().unwrap())),
        )]);
        let queue = MemoryPoisonQueue::default();
        let result = consume(&TEST_CONSUMER, &event, &queue, |_| async {
            Err(ConsumeError::from(StoreError::Unavailable(
                "throttled".into(),
            )))
        })
        .await;
        assert!(matches!(result, Err(ConsumeError::Retry(_))));
        assert!(queue.positions().is_empty());
    }

    fn offsets(response: &BatchResponse) -> Vec<(String, i64)> {
        response
            .batch_item_failures
            .iter()
            .map(|f| {
                (
                    f.item_identifier.partition.clone(),
                    f.item_identifier.offset,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_retry_stops_its_own_partition_and_is_answered_with_the_rest_of_it() {
        // GIVEN two partitions; in t-0 the second record fails for now, and a poison
        // record and a good one come after it; t-1 has a good record and a poison one.
        let (ok1, retry, after, late_poison) = (
            user_deleted(),
            user_deleted(),
            user_deleted(),
            user_deleted(),
        );
        let (ok2, poison) = (user_deleted(), user_deleted());
        let event = kafka(vec![
            ("t-0", record(1, b64(&ok1.to_json().unwrap()))),
            ("t-0", record(2, b64(&retry.to_json().unwrap()))),
            ("t-0", record(3, b64(&after.to_json().unwrap()))),
            ("t-0", record(4, b64(&late_poison.to_json().unwrap()))),
            ("t-0", record(5, Some("%%%".into()))),
            ("t-1", record(8, b64(&ok2.to_json().unwrap()))),
            ("t-1", record(9, b64(&poison.to_json().unwrap()))),
        ]);
        let queue = MemoryPoisonQueue::default();
        let mut applied = Vec::new();
        // WHEN it is consumed
        let (report, response) = consume_partially(&TEST_CONSUMER, &event, &queue, |env| {
            applied.push(env.id.clone());
            let result = if env.id == retry.id {
                Err(ConsumeError::retry_because("throttled"))
            } else if env.id == poison.id || env.id == late_poison.id {
                Err(ConsumeError::poison("cannot apply"))
            } else {
                Ok(())
            };
            async move { result }
        })
        .await;
        // THEN t-0 stops at the failure, t-1 is applied in full
        assert_eq!(applied, vec![ok1.id, retry.id, ok2.id, poison.id]);
        // AND the failed record and every later one of t-0 are to be retried
        assert_eq!(
            offsets(&response),
            vec![
                ("t-0".to_owned(), 2),
                ("t-0".to_owned(), 3),
                ("t-0".to_owned(), 4),
                ("t-0".to_owned(), 5)
            ]
        );
        // AND only what is done goes to the DLQ: not t-0's records that come back
        assert_eq!(queue.positions(), vec!["t-1@9"]);
        assert_eq!(report.poisoned, 1);
    }

    #[tokio::test]
    async fn consume_applies_the_other_partitions_and_still_fails_the_batch() {
        let (fails, other) = (user_deleted(), user_deleted());
        let event = kafka(vec![
            ("t-0", record(1, b64(&fails.to_json().unwrap()))),
            ("t-1", record(1, b64(&other.to_json().unwrap()))),
        ]);
        let queue = MemoryPoisonQueue::default();
        let mut applied = Vec::new();
        let result = consume(&TEST_CONSUMER, &event, &queue, |env| {
            applied.push(env.id.clone());
            let fail = env.id == fails.id;
            async move {
                if fail {
                    Err(ConsumeError::from(StoreError::Unavailable("down".into())))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(matches!(result, Err(ConsumeError::Retry(_))));
        assert_eq!(applied, vec![fails.id, other.id]);
    }

    #[tokio::test]
    async fn a_clean_batch_answers_no_failures() {
        let event = kafka(vec![
            ("t-0", record(1, b64(&user_deleted().to_json().unwrap()))),
            ("t-0", record(2, Some("%%%".into()))),
        ]);
        let queue = MemoryPoisonQueue::default();
        let (report, response) =
            consume_partially(&TEST_CONSUMER, &event, &queue, |_| async { Ok(()) }).await;
        assert!(response.is_success());
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": []})
        );
        assert_eq!((report.handled, report.poisoned), (1, 1));
    }

    /// A dead-letter queue that is down.
    struct DownQueue;

    #[async_trait]
    impl PoisonQueue for DownQueue {
        async fn send(&self, _: &str, _: &str, _: &str) -> Result<(), QueueError> {
            Err(QueueError("unreachable".into()))
        }
    }

    #[tokio::test]
    async fn a_poison_record_the_dlq_does_not_take_is_retried_from_it() {
        let event = kafka(vec![
            ("t-0", record(1, b64(&user_deleted().to_json().unwrap()))),
            ("t-0", record(2, Some("%%%".into()))),
            ("t-0", record(3, b64(&user_deleted().to_json().unwrap()))),
            ("t-1", record(4, b64(&user_deleted().to_json().unwrap()))),
        ]);
        let (report, response) =
            consume_partially(&TEST_CONSUMER, &event, &DownQueue, |_| async { Ok(()) }).await;
        assert_eq!(
            offsets(&response),
            vec![("t-0".to_owned(), 2), ("t-0".to_owned(), 3)]
        );
        assert_eq!(report.poisoned, 0);
        let finished = Batch::decode(&TEST_CONSUMER, &event)
            .finish(&TEST_CONSUMER, &DownQueue)
            .await;
        assert!(matches!(finished, Err(ConsumeError::Retry(_))));
    }

    #[test]
    fn the_response_is_lambdas_kafka_partial_batch_response() {
        let mut response = BatchResponse::default();
        response.fail("shutter.follows-2", 42);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": {"partition": "shutter.follows-2", "offset": 42}}]})
        );
    }

    #[test]
    fn storage_errors_say_whether_to_retry() {
        assert!(matches!(
            ConsumeError::from(StoreError::Conflict("seq")),
            ConsumeError::Retry(_)
        ));
        assert!(matches!(
            ConsumeError::from(StoreError::corrupt_because("bad item")),
            ConsumeError::Poison(_)
        ));
    }
}
