//! `outbox-sweeper`: on a schedule, publishes the outbox items that are still pending
//! after a grace period, in order per aggregate, and marks each published.
//!
//! The stream path (`outbox-publisher`) publishes nearly every event within a second.
//! What it leaves behind is what this finds in each table's `OutboxPending` index: events
//! written while the broker was down longer than the stream mapping retries, events sent
//! by a publisher that died before marking them, and items that can never be published.
//! The grace period keeps it out of the stream path's way; when they meet anyway, an
//! event goes out twice and consumers drop the second by its id.
//!
//! Reads: EventBridge starts one run per table (the schedule's input names it; an event
//! without a table sweeps them all). A run reads the table's pending index in one scan:
//! the index is sparse and nearly always empty, as the stream path marks items within a
//! second, so that is one request where querying each shard took eight. When the index
//! holds more than a run publishes (a backlog after an outage), it reads each shard
//! instead, oldest first, `per_shard` items each.
//!
//! Order: one aggregate's events are in one shard of the index (see
//! `shutter_events::outbox`), all of them read (the scan) or the oldest first (a shard),
//! and published one after another, oldest first; the first failure stops that aggregate
//! for this run, so a later event never overtakes an earlier one. Aggregates go in
//! parallel. Each run is bounded: so many items per shard, a time budget below the
//! function's timeout, and it stops when the broker looks down (several failures in a
//! row) rather than wait out every message's delivery timeout.
//! An item that does not decode goes to the dead-letter queue with its full text, and is
//! then marked so that it stops coming back.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use shutter_events::PoisonQueue;
use shutter_events::outbox::{PENDING_SHARDS, epoch_millis, pending_shards};
use shutter_store::ConfigError;

use crate::Sweeper;
use crate::publisher::Sink;
use crate::store::{OutboxStore, PendingItem};

/// How one run goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepConfig {
    /// The tables with an outbox.
    pub tables: Vec<String>,
    /// Items younger than this are left to the stream path.
    pub grace: Duration,
    /// Items read from one shard of one table, at most (the oldest).
    pub per_shard: usize,
    /// No publish starts after this much of the run.
    pub budget: Duration,
    /// Aggregates published at once.
    pub concurrency: usize,
    /// Publish failures in a row after which the run stops (the broker is down).
    pub give_up_after: usize,
}

impl SweepConfig {
    /// `OUTBOX_TABLES` (comma-separated names) and `OUTBOX_SWEEP_GRACE_SECONDS`; the rest
    /// fits the function's 60-second timeout and a run a minute.
    pub fn from_env() -> Result<Self, ConfigError> {
        let tables: Vec<String> = shutter_store::env("OUTBOX_TABLES")?
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if tables.is_empty() {
            return Err(ConfigError::Invalid {
                name: "OUTBOX_TABLES",
                reason: "names no table".to_owned(),
            });
        }
        let grace = shutter_store::env("OUTBOX_SWEEP_GRACE_SECONDS")?
            .parse::<u64>()
            .map_err(|e| ConfigError::Invalid {
                name: "OUTBOX_SWEEP_GRACE_SECONDS",
                reason: e.to_string(),
            })?;
        Ok(Self {
            tables,
            grace: Duration::from_secs(grace),
            ..Self::default()
        })
    }
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            tables: Vec::new(),
            grace: Duration::from_secs(120),
            per_shard: 200,
            budget: Duration::from_secs(40),
            concurrency: 16,
            give_up_after: 3,
        }
    }
}

/// What a run did: the function's answer, and its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Pending items older than the grace period that the run read.
    pub found: usize,
    pub published: usize,
    /// Publishes that failed (each stops its aggregate for this run).
    pub failed: usize,
    /// Items left for the next run: after a failure of their aggregate, or once the run
    /// stopped.
    pub deferred: usize,
    /// Items that can never be published, sent to the dead-letter queue.
    pub poisoned: usize,
    /// Reads of a pending index that failed (a table's scan, or a shard of a backlog).
    pub unreadable: usize,
    /// The run stopped early: out of time, or the broker looked down.
    pub stopped_early: bool,
}

/// An event this function refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("{0} is not one of the tables this function sweeps (OUTBOX_TABLES)")]
    UnknownTable(String),
}

/// The tables one event asks to sweep: the one its `table` names (the schedule's input, one
/// per table), else all of them (a scheduled event without input, a manual invocation).
pub fn tables_of(
    config: &SweepConfig,
    event: &serde_json::Value,
) -> Result<Vec<String>, ScheduleError> {
    match event.get("table") {
        None => Ok(config.tables.clone()),
        Some(named) => config
            .tables
            .iter()
            .find(|t| named.as_str() == Some(t.as_str()))
            .map(|t| vec![t.clone()])
            .ok_or_else(|| ScheduleError::UnknownTable(named.to_string())),
    }
}

/// The function's entry: one scheduled event.
pub async fn on_schedule(
    sweeper: &Sweeper,
    event: serde_json::Value,
) -> Result<SweepReport, ScheduleError> {
    let config = SweepConfig {
        tables: tables_of(&sweeper.config, &event)?,
        ..sweeper.config.clone()
    };
    let cutoff = epoch_millis() - i64::try_from(config.grace.as_millis()).unwrap_or(i64::MAX);
    Ok(sweep(
        &sweeper.kafka,
        &sweeper.outbox,
        &sweeper.dlq,
        &config,
        cutoff,
    )
    .await)
}

/// One run over `config.tables`: everything pending that was written before `cutoff`
/// (ms since the epoch).
pub async fn sweep<S: Sink, O: OutboxStore, Q: PoisonQueue + ?Sized>(
    sink: &S,
    outbox: &O,
    dlq: &Q,
    config: &SweepConfig,
    cutoff: i64,
) -> SweepReport {
    let started = Instant::now();
    let report = Mutex::new(SweepReport::default());
    // Owned names: a future borrowing from the iterator would not be `Send` for every
    // lifetime, as the runtime needs.
    let reads = futures::stream::iter(config.tables.clone())
        .map(|table| async move { read_table(outbox, &table, cutoff, config.per_shard).await })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut found = Vec::new();
    for (items, unreadable) in reads {
        found.extend(items);
        bump(&report, |r| r.unreadable += unreadable);
    }
    bump(&report, |r| r.found = found.len());

    let (poison, good): (Vec<PendingItem>, Vec<PendingItem>) =
        found.into_iter().partition(|i| i.message.is_err());
    for item in &poison {
        give_up(outbox, dlq, item, &report).await;
    }

    let mut aggregates: BTreeMap<(String, String), Vec<PendingItem>> = BTreeMap::new();
    for item in good {
        let (table, key) = item.aggregate();
        aggregates
            .entry((table.to_owned(), key.to_owned()))
            .or_default()
            .push(item);
    }
    let in_a_row = Mutex::new(0usize);
    futures::stream::iter(aggregates.into_values())
        .for_each_concurrent(config.concurrency.max(1), |mut items| {
            let (report, in_a_row) = (&report, &in_a_row);
            async move {
                items.sort_by(|a, b| (a.written_at, &a.event_id).cmp(&(b.written_at, &b.event_id)));
                publish_in_order(sink, outbox, config, started, &items, report, in_a_row).await;
            }
        })
        .await;

    let report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    if report.published > 0 || report.failed > 0 || report.poisoned > 0 {
        tracing::warn!(
            found = report.found,
            published = report.published,
            failed = report.failed,
            deferred = report.deferred,
            poisoned = report.poisoned,
            unreadable = report.unreadable,
            stopped_early = report.stopped_early,
            "outbox sweep: events the stream path had not published"
        );
    } else {
        tracing::info!(
            found = report.found,
            unreadable = report.unreadable,
            "outbox sweep: nothing left behind"
        );
    }
    report
}

/// What `table` has pending from before `cutoff`, and how many reads failed: all of it in
/// one scan, or when the index holds more than a run publishes, the oldest `per_shard` of
/// each shard.
async fn read_table<O: OutboxStore>(
    outbox: &O,
    table: &str,
    cutoff: i64,
    per_shard: usize,
) -> (Vec<PendingItem>, usize) {
    let most = per_shard.saturating_mul(PENDING_SHARDS as usize);
    match outbox.pending_all(table, cutoff, most).await {
        Ok(Some(items)) => return (items, 0),
        Ok(None) => {
            tracing::info!(%table, most, "pending outbox backlog: read per shard, oldest first")
        }
        Err(err) => {
            tracing::warn!(%table, error = %err, "pending outbox items unreadable this run");
            return (Vec::new(), 1);
        }
    }
    let reads = futures::stream::iter(pending_shards())
        .map(|shard| async move {
            let read = outbox.pending(table, &shard, cutoff, per_shard).await;
            (shard, read)
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let (mut found, mut unreadable) = (Vec::new(), 0);
    for (shard, read) in reads {
        match read {
            Ok(items) => found.extend(items),
            Err(err) => {
                tracing::warn!(%table, %shard, error = %err, "pending outbox items unreadable this run");
                unreadable += 1;
            }
        }
    }
    (found, unreadable)
}

/// One aggregate's items, oldest first, until the first failure.
async fn publish_in_order<S: Sink, O: OutboxStore>(
    sink: &S,
    outbox: &O,
    config: &SweepConfig,
    started: Instant,
    items: &[PendingItem],
    report: &Mutex<SweepReport>,
    in_a_row: &Mutex<usize>,
) {
    for (i, item) in items.iter().enumerate() {
        let stopped = report.lock().map(|r| r.stopped_early).unwrap_or(true);
        let out_of_time = started.elapsed() >= config.budget;
        if stopped || out_of_time {
            bump(report, |r| {
                r.stopped_early = true;
                r.deferred += items.len() - i;
            });
            return;
        }
        let Ok(msg) = &item.message else {
            return;
        };
        match sink.send(msg).await {
            Ok(()) => {
                if let Ok(mut n) = in_a_row.lock() {
                    *n = 0;
                }
                bump(report, |r| r.published += 1);
                tracing::info!(table = %item.table, event_id = %item.event_id, event_type = %msg.event_type, topic = %msg.topic, "pending event published");
                crate::publisher::mark_all(outbox, &[(item.table.clone(), item.event_id.clone())])
                    .await;
            }
            Err(err) => {
                let failures = in_a_row
                    .lock()
                    .map(|mut n| {
                        *n += 1;
                        *n
                    })
                    .unwrap_or(usize::MAX);
                tracing::warn!(table = %item.table, event_id = %item.event_id, error = %err, "pending event not published; its aggregate waits for the next run");
                bump(report, |r| {
                    r.failed += 1;
                    r.deferred += items.len() - i - 1;
                    if failures >= config.give_up_after {
                        r.stopped_early = true;
                    }
                });
                return;
            }
        }
    }
}

/// An item that can never be published: to the dead-letter queue with its full text,
/// then marked so that it stops coming back. If the queue cannot take it, it stays.
async fn give_up<O: OutboxStore, Q: PoisonQueue + ?Sized>(
    outbox: &O,
    dlq: &Q,
    item: &PendingItem,
    report: &Mutex<SweepReport>,
) {
    let reason = item.message.as_ref().err().cloned().unwrap_or_default();
    let position = format!("{}/OUTBOX#{}", item.table, item.event_id);
    tracing::error!(%position, %reason, "outbox item can never be published; sent to the DLQ");
    match dlq.send(&position, &reason, &item.raw).await {
        Ok(()) => {
            bump(report, |r| r.poisoned += 1);
            crate::publisher::mark_all(outbox, &[(item.table.clone(), item.event_id.clone())])
                .await;
        }
        Err(err) => {
            tracing::warn!(%position, error = %err, "the DLQ did not take the outbox item; it stays pending")
        }
    }
}

fn bump(report: &Mutex<SweepReport>, change: impl FnOnce(&mut SweepReport)) {
    if let Ok(mut r) = report.lock() {
        change(&mut r);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_events::MemoryPoisonQueue;

    use super::*;
    use crate::store::MemoryOutbox;
    use crate::test_support::{Recorder, envelope, pending};

    const T: &str = "PostsTable";

    fn config() -> SweepConfig {
        SweepConfig {
            tables: vec![T.to_owned(), "LikesTable".to_owned()],
            ..SweepConfig::default()
        }
    }

    /// GIVEN the events of `plan` (aggregate, written at) pending in T: their ids, in plan order.
    fn given(outbox: &MemoryOutbox, plan: &[(&str, i64)]) -> Vec<String> {
        plan.iter()
            .map(|(aggregate, at)| {
                let env = envelope(aggregate);
                outbox.insert(pending(T, &env, *at));
                env.id.to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn publishes_what_is_older_than_the_cutoff_in_order_per_aggregate_and_marks_it() {
        let outbox = MemoryOutbox::default();
        // Written out of order across aggregates: each aggregate's own order is by time.
        let ids = given(&outbox, &[("a", 30), ("b", 10), ("a", 20), ("a", 5_000)]);
        let (sink, dlq) = (Recorder::default(), MemoryPoisonQueue::default());

        let report = sweep(&sink, &outbox, &dlq, &config(), 1_000).await;

        let sent = sink.sent();
        assert_eq!(
            sent.len(),
            3,
            "the item written after the cutoff waits: {sent:?}"
        );
        let pos = |id: &String| sent.iter().position(|s| s == id).unwrap();
        assert!(pos(&ids[2]) < pos(&ids[0]), "a's event of t=20 before t=30");
        assert_eq!(outbox.still_pending(T), vec![ids[3].clone()]);
        assert_eq!(
            report,
            SweepReport {
                found: 3,
                published: 3,
                ..SweepReport::default()
            }
        );
    }

    #[tokio::test]
    async fn a_failure_stops_its_aggregate_only_and_a_second_run_finishes_in_order() {
        let outbox = MemoryOutbox::default();
        let ids = given(&outbox, &[("a", 1), ("a", 2), ("a", 3), ("b", 1)]);
        let dlq = MemoryPoisonQueue::default();
        let failing = Recorder::failing_on(&[&ids[1]]);

        let first = sweep(&failing, &outbox, &dlq, &config(), 1_000).await;

        let mut sent = failing.sent();
        sent.sort();
        let mut expected = vec![ids[0].clone(), ids[3].clone()];
        expected.sort();
        assert_eq!(
            sent, expected,
            "a's third event must not overtake its second"
        );
        assert_eq!((first.published, first.failed, first.deferred), (2, 1, 1));
        assert_eq!(
            outbox.still_pending(T),
            vec![ids[1].clone(), ids[2].clone()]
        );

        let healthy = Recorder::default();
        let second = sweep(&healthy, &outbox, &dlq, &config(), 1_000).await;
        assert_eq!(healthy.sent(), vec![ids[1].clone(), ids[2].clone()]);
        assert_eq!(second.published, 2);
        assert!(outbox.still_pending(T).is_empty());
    }

    #[tokio::test]
    async fn a_run_stops_when_the_broker_looks_down() {
        let outbox = MemoryOutbox::default();
        let plan: Vec<(String, i64)> = (0..10).map(|i| (format!("agg{i}"), 1)).collect();
        let plan: Vec<(&str, i64)> = plan.iter().map(|(a, t)| (a.as_str(), *t)).collect();
        given(&outbox, &plan);
        let down = Recorder::down();
        let config = SweepConfig {
            concurrency: 1,
            ..config()
        };

        let report = sweep(
            &down,
            &outbox,
            &MemoryPoisonQueue::default(),
            &config,
            1_000,
        )
        .await;

        assert!(report.stopped_early);
        assert_eq!(
            report.failed, 3,
            "three failures in a row, then no more tries"
        );
        assert_eq!(report.deferred, 7);
        assert_eq!(outbox.still_pending(T).len(), 10, "nothing is lost");
    }

    #[tokio::test]
    async fn sweeping_twice_publishes_nothing_twice() {
        let outbox = MemoryOutbox::default();
        given(&outbox, &[("a", 1), ("b", 2)]);
        let (sink, dlq) = (Recorder::default(), MemoryPoisonQueue::default());
        sweep(&sink, &outbox, &dlq, &config(), 1_000).await;
        let again = sweep(&sink, &outbox, &dlq, &config(), 1_000).await;
        assert_eq!(sink.sent().len(), 2);
        assert_eq!(again, SweepReport::default());
    }

    #[tokio::test]
    async fn an_item_that_does_not_decode_goes_to_the_dlq_with_its_text_once() {
        let outbox = MemoryOutbox::default();
        let mut broken = pending(T, &envelope("a"), 1);
        broken.message = Err("record value is not an event envelope".to_owned());
        broken.raw = "{not json".to_owned();
        let id = broken.event_id.clone();
        outbox.insert(broken);
        let (sink, dlq) = (Recorder::default(), MemoryPoisonQueue::default());

        let report = sweep(&sink, &outbox, &dlq, &config(), 1_000).await;
        sweep(&sink, &outbox, &dlq, &config(), 1_000).await;

        assert_eq!(report.poisoned, 1);
        assert!(sink.sent().is_empty());
        assert_eq!(dlq.positions(), vec![format!("{T}/OUTBOX#{id}")]);
        assert!(outbox.still_pending(T).is_empty());
    }

    #[tokio::test]
    async fn a_backlog_larger_than_a_run_is_read_per_shard_oldest_first() {
        let outbox = MemoryOutbox::default();
        // One aggregate (one shard), written newest first: more than 8 shards x 1 item.
        let plan: Vec<(&str, i64)> = (0..12).map(|i| ("a", 100 - i)).collect();
        let ids = given(&outbox, &plan);
        let (sink, dlq) = (Recorder::default(), MemoryPoisonQueue::default());
        let config = SweepConfig {
            per_shard: 1,
            ..config()
        };

        let report = sweep(&sink, &outbox, &dlq, &config, 1_000).await;

        assert_eq!(
            sink.sent(),
            vec![ids[11].clone()],
            "the oldest of the shard, not whichever a scan met first"
        );
        assert_eq!((report.found, report.published), (1, 1));
        assert_eq!(outbox.still_pending(T).len(), 11);
    }

    #[tokio::test]
    async fn what_a_scan_finds_is_published_in_order_per_aggregate() {
        let outbox = MemoryOutbox::default();
        // Kept in the order written, which a scan does not follow.
        let ids = given(&outbox, &[("a", 30), ("a", 10), ("b", 5), ("a", 20)]);
        let (sink, dlq) = (Recorder::default(), MemoryPoisonQueue::default());
        let report = sweep(&sink, &outbox, &dlq, &config(), 1_000).await;
        let sent = sink.sent();
        let pos = |id: &String| sent.iter().position(|s| s == id).unwrap();
        assert!(
            pos(&ids[1]) < pos(&ids[3]) && pos(&ids[3]) < pos(&ids[0]),
            "{sent:?}"
        );
        assert_eq!(report.published, 4);
    }

    #[test]
    fn the_event_names_the_table_a_run_sweeps() {
        let config = config();
        assert_eq!(
            tables_of(&config, &serde_json::json!({"table": "LikesTable"})).unwrap(),
            vec!["LikesTable"]
        );
        let scheduled = serde_json::json!({"detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(tables_of(&config, &scheduled).unwrap(), config.tables);
        for unknown in [
            serde_json::json!({"table": "SecretsTable"}),
            serde_json::json!({"table": 7}),
        ] {
            let err = tables_of(&config, &unknown).unwrap_err();
            assert!(err.to_string().contains("OUTBOX_TABLES"), "{err}");
        }
    }

    #[test]
    fn the_configuration_comes_from_the_environment() {
        // (Only this test sets these variables.)
        unsafe_free_env(|| {
            let config = SweepConfig::from_env().unwrap();
            assert_eq!(config.tables, vec!["IdentityTable", "PostsTable"]);
            assert_eq!(config.grace, Duration::from_secs(7));
        });
    }

    /// Runs `check` with the sweeper's variables set (edition 2024 makes `set_var`
    /// unsafe, and the workspace forbids unsafe code): in a child process that re-runs
    /// this test with them.
    fn unsafe_free_env(check: impl FnOnce()) {
        if std::env::var_os("OUTBOX_TABLES").is_some() {
            check();
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sweeper::tests::the_configuration_comes_from_the_environment",
                "--nocapture",
            ])
            .env("OUTBOX_TABLES", "IdentityTable, PostsTable,")
            .env("OUTBOX_SWEEP_GRACE_SECONDS", "7")
            .status()
            .unwrap();
        assert!(status.success());
    }
}
