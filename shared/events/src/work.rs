//! Chunked work: what grows with data leaves the per-record path.
//!
//! An MSK record must be handled in bounded time whatever it asks for, or one post by an
//! author with a million followers (or one account deletion) holds up its partition and,
//! past the function's timeout, fails its whole batch again and again. So a consumer does
//! what is O(1) and hands the rest to its service's own SQS work queue as a [`Job`]: what
//! to do (the service's [`Work`]), where to resume (`cursor`), and the event that asked
//! for it. The queue's function ([`run_worker`]) does one chunk per message (a page of at
//! most [`WithWork::page`] items) and sends the job on with its next cursor *before* the
//! message is acknowledged, so a crash anywhere repeats a chunk and never loses the rest.
//! Failures are reported per message (`ReportBatchItemFailures`); a message that fails
//! every receive lands in the queue's dead-letter queue with its whole job.
//!
//! Every chunk must be idempotent (conditional writes, deletes of what may be gone),
//! because SQS delivers at least once and a redelivered MSK record enqueues its job
//! again: a job done twice changes nothing the second time.
//!
//! Duplicates must not multiply either: a message delivered twice would send its
//! continuation twice, and each of those twice again, 2^n messages for an n-chunk job.
//! So the worker claims each chunk for the message that carries it ([`ChunkClaims`], an
//! item in the service's table): a message whose chunk (or a later one of the same job)
//! another message claimed, within [`CLAIM_LEASE_SECONDS`], is dropped; the claimant's
//! own redeliveries go ahead, and a claim older than the lease is taken over (its message
//! died, and the job comes back from the DLQ).

use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shutter_core::{EventId, UserId};
use shutter_store::{
    AttributeValue, Cause, ConfigError, SdkConfig, StoreError, StoreResult, Table, Write, key, n, s,
};

use crate::{ConsumeError, Envelope};

/// Items a chunk handles when `WORK_PAGE_SIZE` is not set.
pub const DEFAULT_PAGE: usize = 100;

/// A service's kinds of work, each with its subject: the service's own enum, tagged by
/// `kind` on the wire (`#[serde(tag = "kind", rename_all = "snake_case")]`).
pub trait Work: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync {
    /// The kind, for logs.
    fn kind(&self) -> &'static str;
    /// What the work is about (a post, a user), for logs.
    fn subject(&self) -> &str;
}

/// One job on a work queue: the message body, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job<W> {
    pub work: W,
    /// Where the next chunk starts (the work's own position); none for the first chunk,
    /// and for work that removes what it handles (it starts from the top again).
    #[serde(default)]
    pub cursor: Option<String>,
    /// The event that asked for the work.
    pub event_id: EventId,
    /// The event's actor and correlation id, carried by the events the work emits.
    #[serde(default)]
    pub actor: Option<UserId>,
    pub correlation_id: String,
    /// Chunks done before this one.
    #[serde(default)]
    pub chunk: u32,
}

impl<W: Work> Job<W> {
    /// The first chunk of `work`, asked for by `cause`.
    pub fn new(work: W, cause: &Envelope) -> Self {
        Self {
            work,
            cursor: None,
            event_id: cause.id.clone(),
            actor: cause.actor.clone(),
            correlation_id: cause.correlation_id.clone(),
            chunk: 0,
        }
    }

    /// The chunk after this one, starting at `cursor`.
    pub fn next(&self, cursor: Option<String>) -> Self {
        Self {
            work: self.work.clone(),
            cursor,
            event_id: self.event_id.clone(),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id.clone(),
            chunk: self.chunk.saturating_add(1),
        }
    }
}

impl<W: Work> Job<W> {
    /// The job's identity across its chunks: the event that asked, the kind, the subject.
    pub fn key(&self) -> String {
        format!(
            "{}#{}#{}",
            self.event_id,
            self.work.kind(),
            self.work.subject()
        )
    }
}

/// What a chunk came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing is left to do.
    Done,
    /// More is left: the next chunk starts at this cursor.
    More(Option<String>),
}

/// The work queue could not take a job.
#[derive(Debug, thiserror::Error)]
pub enum WorkQueueError {
    #[error("job could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("work queue unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// A job that cannot be encoded never will be; a queue that is down may come back.
impl From<WorkQueueError> for ConsumeError {
    fn from(err: WorkQueueError) -> Self {
        match err {
            WorkQueueError::Encode(_) => Self::Poison(err.to_string()),
            WorkQueueError::Unavailable(_) => Self::Retry(Box::new(err)),
        }
    }
}

/// A service's work queue.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends one message body.
    async fn send(&self, body: String) -> Result<(), WorkQueueError>;

    /// Sends `job`.
    async fn enqueue<W: Work>(&self, job: &Job<W>) -> Result<(), WorkQueueError> {
        let body = serde_json::to_string(job)?;
        self.send(body).await
    }
}

/// The SQS adapter.
#[derive(Debug, Clone)]
pub struct SqsWorkQueue {
    /// Built on first use (see [`shutter_store::SdkClient`]).
    pub client: shutter_store::SdkClient<aws_sdk_sqs::Client>,
    pub queue_url: String,
}

impl SqsWorkQueue {
    /// The queue named by `WORK_QUEUE_URL`.
    pub fn from_env(config: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: shutter_store::SdkClient::new(config, aws_sdk_sqs::Client::new),
            queue_url: shutter_store::env("WORK_QUEUE_URL")?,
        })
    }
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn send(&self, body: String) -> Result<(), WorkQueueError> {
        self.client
            .get()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| WorkQueueError::Unavailable(Box::new(e)))
    }
}

/// A work queue in memory, for unit tests: what was sent, until taken.
#[derive(Debug, Default)]
pub struct MemoryWorkQueue {
    sent: Mutex<Vec<String>>,
    down: std::sync::atomic::AtomicBool,
}

impl MemoryWorkQueue {
    /// The jobs sent since the last take, oldest first (bodies that are not a `Job<W>`
    /// are dropped).
    pub fn take<W: Work>(&self) -> Vec<Job<W>> {
        self.take_bodies()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }

    fn take_bodies(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every send fails as unavailable while `down` (an outage, for tests).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs the worker on what was sent, as SQS and Lambda would (one chunk per message,
    /// continuations sent before acknowledging), until the queue is empty or `rounds`
    /// batches ran. Returns the messages that failed (each a job's body).
    pub async fn drain<W, F, Fut>(&self, rounds: usize, mut handle: F) -> Vec<String>
    where
        W: Work,
        F: FnMut(Job<W>) -> Fut,
        Fut: Future<Output = Result<Step, ConsumeError>>,
    {
        let mut failed = Vec::new();
        for _ in 0..rounds {
            let bodies = self.take_bodies();
            if bodies.is_empty() {
                break;
            }
            let event = sqs_event(&bodies);
            let response = chunks(self, None, &event, &mut handle).await;
            for f in response.batch_item_failures {
                let index: usize = f
                    .item_identifier
                    .trim_start_matches('m')
                    .parse()
                    .unwrap_or(usize::MAX);
                if let Some(body) = bodies.get(index) {
                    failed.push(body.clone());
                }
            }
        }
        failed
    }
}

/// `bodies` as an SQS event (message ids `m0`, `m1`, ...).
pub fn sqs_event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, body) in bodies.iter().enumerate() {
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("m{i}"));
        message.body = Some(body.clone());
        event.records.push(message);
    }
    event
}

#[async_trait]
impl WorkQueue for MemoryWorkQueue {
    async fn send(&self, body: String) -> Result<(), WorkQueueError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(WorkQueueError::Unavailable("the queue is down".into()));
        }
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(body);
        Ok(())
    }
}

/// How long a chunk's claim holds against other messages: the work queues' visibility
/// timeout (after which SQS delivers an unacknowledged message again).
pub const CLAIM_LEASE_SECONDS: i64 = 360;

/// Conflict: another message holds the chunk's claim.
const CLAIMED: &str = "chunk_claimed";

/// Which message does each chunk of a job.
#[async_trait]
pub trait ChunkClaims: Send + Sync {
    /// Claims chunk `chunk` of job `job` for message `owner`: false when another message
    /// claimed it, or a later chunk, less than [`CLAIM_LEASE_SECONDS`] ago.
    async fn claim(&self, job: &str, chunk: u32, owner: &str) -> StoreResult<bool>;
}

/// Claims as items of the service's table (`WORK_CLAIMS_TABLE`): `WORKCLAIM#<job>` /
/// `CLAIM`, kept a day.
#[derive(Debug, Clone)]
pub struct TableClaims {
    pub table: Table,
}

#[async_trait]
impl ChunkClaims for TableClaims {
    async fn claim(&self, job: &str, chunk: u32, owner: &str) -> StoreResult<bool> {
        let now = shutter_store::epoch_seconds();
        let mut item = key(format!("WORKCLAIM#{job}"), "CLAIM");
        item.insert("chunk".to_owned(), n(chunk));
        item.insert("owner".to_owned(), s(owner));
        item.insert("claimed_at".to_owned(), n(now));
        item.insert("ttl".to_owned(), n(now + 24 * 3600));
        let write = Write::put(item)
            .when(
                CLAIMED,
                "attribute_not_exists(pk) OR chunk < :chunk OR #owner = :owner OR claimed_at < :stale",
            )
            .name("#owner", "owner")
            .value(":chunk", n(chunk))
            .value(":owner", AttributeValue::S(owner.to_owned()))
            .value(":stale", n(now - CLAIM_LEASE_SECONDS));
        match self.table.write(write).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(CLAIMED)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// Claims in memory, for unit tests (no lease: a claim holds).
#[derive(Debug, Default)]
pub struct MemoryClaims {
    claims: Mutex<std::collections::HashMap<String, (u32, String)>>,
}

#[async_trait]
impl ChunkClaims for MemoryClaims {
    async fn claim(&self, job: &str, chunk: u32, owner: &str) -> StoreResult<bool> {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        match claims.get(job) {
            Some((held, by)) if *held > chunk || (*held == chunk && by != owner) => Ok(false),
            _ => {
                claims.insert(job.to_owned(), (chunk, owner.to_owned()));
                Ok(true)
            }
        }
    }
}

/// A service's dependencies with its work queue and chunk size: what its consumer holds
/// to hand work on, and what its worker holds to do it.
#[derive(Debug)]
pub struct WithWork<A, Q = SqsWorkQueue> {
    pub app: A,
    pub work: Q,
    /// Items a chunk handles at most.
    pub page: usize,
}

/// The service's dependencies read through: `deps.store`, `deps.directory`.
impl<A, Q> std::ops::Deref for WithWork<A, Q> {
    type Target = A;

    fn deref(&self) -> &A {
        &self.app
    }
}

impl<A> WithWork<A> {
    /// `app` with the queue of `WORK_QUEUE_URL` and the page size of `WORK_PAGE_SIZE`
    /// (default [`DEFAULT_PAGE`]).
    pub fn from_env(aws: &SdkConfig, app: A) -> Result<Self, ConfigError> {
        Ok(Self {
            app,
            work: SqsWorkQueue::from_env(aws)?,
            page: page_from_env()?,
        })
    }
}

/// `WORK_PAGE_SIZE`: 1 to 1,000, default [`DEFAULT_PAGE`].
fn page_from_env() -> Result<usize, ConfigError> {
    let Ok(raw) = shutter_store::env("WORK_PAGE_SIZE") else {
        return Ok(DEFAULT_PAGE);
    };
    match raw.parse::<usize>() {
        Ok(page) if (1..=1000).contains(&page) => Ok(page),
        _ => Err(ConfigError::Invalid {
            name: "WORK_PAGE_SIZE",
            reason: format!("{raw:?} is not a whole number from 1 to 1000"),
        }),
    }
}

/// Does one chunk per message of `event` with `handle`, and sends each unfinished job on
/// to `queue` with its next cursor before the message counts as done. A message that does
/// not decode, whose chunk failed (retryable or not) or whose continuation could not be
/// sent is a batch item failure: SQS delivers it again after its visibility timeout, and
/// after the queue's `maxReceiveCount` moves it to the dead-letter queue, whole.
pub async fn chunks<W, Q, F, Fut>(
    queue: &Q,
    claims: Option<&dyn ChunkClaims>,
    event: &SqsEvent,
    mut handle: F,
) -> SqsBatchResponse
where
    W: Work,
    Q: WorkQueue + ?Sized,
    F: FnMut(Job<W>) -> Fut,
    Fut: Future<Output = Result<Step, ConsumeError>>,
{
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        if !one_chunk(queue, claims, &id, body, &mut handle).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// One message; whether it is done with.
async fn one_chunk<W, Q, F, Fut>(
    queue: &Q,
    claims: Option<&dyn ChunkClaims>,
    id: &str,
    body: &str,
    handle: &mut F,
) -> bool
where
    W: Work,
    Q: WorkQueue + ?Sized,
    F: FnMut(Job<W>) -> Fut,
    Fut: Future<Output = Result<Step, ConsumeError>>,
{
    let job: Job<W> = match serde_json::from_str(body) {
        Ok(job) => job,
        Err(err) => {
            tracing::error!(message_id = %id, error = %err, "unreadable job; it reaches the DLQ after its receives");
            return false;
        }
    };
    let (kind, subject, chunk) = (job.work.kind(), job.work.subject().to_owned(), job.chunk);
    let event_id = job.event_id.clone();
    if let Some(claims) = claims {
        match claims.claim(&job.key(), chunk, id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(message_id = %id, kind, %subject, %event_id, chunk, "duplicate of a chunk another message does or did; dropped");
                return true;
            }
            Err(err) => {
                tracing::warn!(message_id = %id, kind, %subject, %event_id, chunk, error = %err, "chunk not claimed; retried");
                return false;
            }
        }
    }
    match handle(job.clone()).await {
        Ok(Step::Done) => {
            tracing::info!(message_id = %id, kind, %subject, %event_id, chunk, "job done");
            true
        }
        Ok(Step::More(cursor)) => match queue.enqueue(&job.next(cursor)).await {
            Ok(()) => {
                tracing::debug!(message_id = %id, kind, %subject, %event_id, chunk, "chunk done; job sent on");
                true
            }
            Err(err) => {
                tracing::warn!(message_id = %id, kind, %subject, %event_id, chunk, error = %err, "continuation not sent; the chunk is done again");
                false
            }
        },
        Err(ConsumeError::Retry(cause)) => {
            tracing::warn!(message_id = %id, kind, %subject, %event_id, chunk, error = %cause, "chunk failed; retried");
            false
        }
        Err(ConsumeError::Poison(reason)) => {
            tracing::error!(message_id = %id, kind, %subject, %event_id, chunk, %reason, "chunk cannot be done; it reaches the DLQ after its receives");
            false
        }
    }
}

/// Runs a service's work queue function on the Lambda runtime: its dependencies built
/// once per cold start by `build` (with the queue of `WORK_QUEUE_URL`, to which it sends
/// continuations, and the claims in the table of `WORK_CLAIMS_TABLE`), then one chunk per
/// message with `handle`, failures reported per message.
pub async fn run_worker<A, B, W, F, Fut>(build: B, handle: F) -> Result<(), lambda_runtime::Error>
where
    A: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<WithWork<A>, ConfigError>,
    W: Work + 'static,
    F: Fn(&'static WithWork<A>, Job<W>) -> Fut + Sync,
    Fut: Future<Output = Result<Step, ConsumeError>> + Send,
{
    let handle = &handle;
    crate::run_function(
        async |aws: &SdkConfig| {
            let claims = TableClaims {
                table: Table::from_env(aws, "WORK_CLAIMS_TABLE")?,
            };
            Ok::<_, ConfigError>((build(aws).await?, claims))
        },
        move |(deps, claims): &'static (WithWork<A>, TableClaims), event: SqsEvent| async move {
            let claims: &dyn ChunkClaims = claims;
            let response = chunks(&deps.work, Some(claims), &event, |job| handle(deps, job)).await;
            Ok::<_, std::convert::Infallible>(response)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Event, UserDeleted};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Count {
        UpTo { name: String, total: u32 },
    }

    impl Work for Count {
        fn kind(&self) -> &'static str {
            "up_to"
        }
        fn subject(&self) -> &str {
            match self {
                Count::UpTo { name, .. } => name,
            }
        }
    }

    fn cause() -> Envelope {
        let user = UserId::generate();
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: user.clone(),
                username: "ann".into(),
            }),
            Some(&user),
            "corr",
        )
    }

    /// Counts `total` items, `page` a chunk, into `seen`.
    async fn count_chunk(
        seen: &Mutex<Vec<u32>>,
        job: Job<Count>,
        page: u32,
    ) -> Result<Step, ConsumeError> {
        let Count::UpTo { total, .. } = job.work;
        let from: u32 = job.cursor.as_deref().unwrap_or("0").parse().unwrap();
        let to = (from + page).min(total);
        seen.lock().unwrap().extend(from..to);
        Ok(if to < total {
            Step::More(Some(to.to_string()))
        } else {
            Step::Done
        })
    }

    #[test]
    fn a_job_reads_as_its_kind_subject_cursor_and_cause() {
        let cause = cause();
        let job = Job::new(
            Count::UpTo {
                name: "ann".into(),
                total: 3,
            },
            &cause,
        );
        let json: serde_json::Value = serde_json::to_value(job.next(Some("2".into()))).unwrap();
        assert_eq!(json["work"]["kind"], "up_to");
        assert_eq!(json["work"]["name"], "ann");
        assert_eq!(json["cursor"], "2");
        assert_eq!(json["event_id"], cause.id.as_str());
        assert_eq!(json["correlation_id"], "corr");
        assert_eq!(json["chunk"], 1);
    }

    #[tokio::test]
    async fn a_job_runs_one_chunk_per_message_until_done() {
        let queue = MemoryWorkQueue::default();
        let job = Job::new(
            Count::UpTo {
                name: "ann".into(),
                total: 7,
            },
            &cause(),
        );
        queue.enqueue(&job).await.unwrap();
        let seen = Mutex::new(Vec::new());
        let failed = queue.drain(10, |job| count_chunk(&seen, job, 3)).await;
        assert!(failed.is_empty());
        assert_eq!(*seen.lock().unwrap(), (0..7).collect::<Vec<_>>());
        assert!(queue.take::<Count>().is_empty());
    }

    #[tokio::test]
    async fn a_continuation_that_cannot_be_sent_fails_the_message_so_the_chunk_is_redone() {
        let queue = MemoryWorkQueue::default();
        let job = Job::new(
            Count::UpTo {
                name: "ann".into(),
                total: 5,
            },
            &cause(),
        );
        let body = serde_json::to_string(&job).unwrap();
        let seen = Mutex::new(Vec::new());
        queue.set_down(true);
        let response = chunks(
            &queue,
            None,
            &sqs_event(std::slice::from_ref(&body)),
            |job| count_chunk(&seen, job, 2),
        )
        .await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, "m0");
        // SQS delivers it again once the queue is back: the chunk is done again, and the
        // rest follows.
        queue.set_down(false);
        queue.send(body).await.unwrap();
        let failed = queue.drain(10, |job| count_chunk(&seen, job, 2)).await;
        assert!(failed.is_empty());
        assert_eq!(*seen.lock().unwrap(), vec![0, 1, 0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn unreadable_retryable_and_poison_messages_fail_alone() {
        let queue = MemoryWorkQueue::default();
        let job = |name: &str| {
            serde_json::to_string(&Job::new(
                Count::UpTo {
                    name: name.into(),
                    total: 1,
                },
                &cause(),
            ))
            .unwrap()
        };
        let event = sqs_event(&["{oops".to_owned(), job("retry"), job("ok"), job("poison")]);
        let response = chunks(&queue, None, &event, |job: Job<Count>| async move {
            match job.work.subject() {
                "retry" => Err(ConsumeError::retry_because("throttled")),
                "poison" => Err(ConsumeError::poison("corrupt")),
                _ => Ok(Step::Done),
            }
        })
        .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m0", "m1", "m3"]);
        assert!(queue.take::<Count>().is_empty(), "nothing sent on");
    }

    #[test]
    fn a_queue_that_is_down_is_retried_and_an_unencodable_job_is_poison() {
        assert!(matches!(
            ConsumeError::from(WorkQueueError::Unavailable("down".into())),
            ConsumeError::Retry(_)
        ));
        let encode = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(matches!(
            ConsumeError::from(WorkQueueError::Encode(encode)),
            ConsumeError::Poison(_)
        ));
    }

    #[tokio::test]
    async fn a_message_delivered_twice_every_time_does_each_chunk_twice_not_exponentially() {
        // GIVEN a job of four chunks, and a delivery that invokes every batch twice
        let queue = MemoryWorkQueue::default();
        let claims = MemoryClaims::default();
        let job = Job::new(
            Count::UpTo {
                name: "ann".into(),
                total: 7,
            },
            &cause(),
        );
        queue.enqueue(&job).await.unwrap();
        let seen = Mutex::new(Vec::new());
        let mut runs = 0;
        for round in 0..10 {
            let bodies = queue.take_bodies();
            let mut event = sqs_event(&bodies);
            for (i, m) in event.records.iter_mut().enumerate() {
                m.message_id = Some(format!("r{round}m{i}"));
            }
            for _ in 0..2 {
                let response = chunks(&queue, Some(&claims), &event, |job| {
                    runs += 1;
                    count_chunk(&seen, job, 2)
                })
                .await;
                assert!(response.batch_item_failures.is_empty());
            }
        }
        // THEN each chunk ran twice (its own message's two deliveries), the duplicate
        // continuations were dropped, and the work was done
        assert_eq!(runs, 8);
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_claim_holds_against_other_messages_and_earlier_chunks() {
        let claims = MemoryClaims::default();
        assert!(claims.claim("job", 0, "a").await.unwrap());
        assert!(
            claims.claim("job", 0, "a").await.unwrap(),
            "its own redelivery"
        );
        assert!(!claims.claim("job", 0, "b").await.unwrap(), "a duplicate");
        assert!(claims.claim("job", 1, "c").await.unwrap(), "the next chunk");
        assert!(
            !claims.claim("job", 0, "a").await.unwrap(),
            "an earlier chunk"
        );
        assert!(claims.claim("other", 0, "b").await.unwrap());
    }
}
