//! `users-export-worker`: builds an export a chunk per `ExportQueue` message (see
//! [`shutter_events::work`]). Each chunk writes one page of one section as a part
//! ([`crate::model`]); the job's cursor says which section, where in it, and the number
//! of the next part. A chunk done twice writes the same part again (the same key), so
//! redeliveries change nothing. The last chunk joins the parts into the archive, marks
//! the export ready, and deletes the parts.
//!
//! An export that is no longer the account's latest, or that is finished, is left alone;
//! an account deleted meanwhile fails its export and loses the parts written so far.

use serde::{Deserialize, Serialize};
use serde_json::json;
use shutter_core::UserId;
use shutter_events::ConsumeError;
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_identity::export::{ExportRecord, ExportRecords, ExportState};
use shutter_store::StoreError;

use crate::Worker;
use crate::archive::Archive;
use crate::model::{Position, Section, archive_key, line, ndjson, part_key, parts_prefix};
use crate::sources::Sources;

/// The export service's kind of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportWork {
    /// Build export `export_id` of `user_id`'s account.
    Build { user_id: UserId, export_id: String },
}

impl Work for ExportWork {
    fn kind(&self) -> &'static str {
        "build_export"
    }

    fn subject(&self) -> &str {
        match self {
            Self::Build { export_id, .. } => export_id,
        }
    }
}

/// One chunk of `job`.
pub async fn chunk<R, S, A, Q>(
    deps: &WithWork<Worker<R, S, A>, Q>,
    job: Job<ExportWork>,
) -> Result<Step, ConsumeError>
where
    R: ExportRecords,
    S: Sources,
    A: Archive,
{
    let ExportWork::Build { user_id, export_id } = &job.work;
    let now = shutter_store::epoch_seconds();
    let Some(record) = deps.records.latest_export(user_id).await? else {
        tracing::info!(%user_id, %export_id, "no export record; nothing to do");
        return Ok(Step::Done);
    };
    if record.export_id != *export_id || record.state_at(now, &deps.policy).is_finished() {
        tracing::info!(%user_id, %export_id, "export superseded, finished or stalled; left alone");
        return Ok(Step::Done);
    }
    if !deps.records.account_exists(user_id).await? {
        return fail(deps, &record, "the account was deleted").await;
    }
    if record.state == ExportState::Pending {
        advance(deps, &record.running(), &[ExportState::Pending]).await?;
    }
    let at = Position::from_cursor(job.cursor.as_deref())
        .map_err(|e| ConsumeError::Poison(format!("unreadable export position: {e}")))?;
    let Some(section) = at.section else {
        return finish(deps, &record).await;
    };
    let page = match deps
        .sources
        .page(user_id, section, at.after.as_deref(), deps.page)
        .await
    {
        Ok(page) => page,
        // The account went between the check and the read.
        Err(StoreError::NotFound) if section == Section::Account => {
            return fail(deps, &record, "the account was deleted").await;
        }
        Err(err) => return Err(err.into()),
    };
    let mut lines = page.lines;
    if section == Section::Account {
        lines.insert(
            0,
            line(
                "export",
                json!({
                    "export_id": record.export_id,
                    "user_id": record.user_id,
                    "requested_at": record.requested_at,
                    "format": "ndjson",
                    "version": 1,
                }),
            ),
        );
    }
    deps.archive
        .put(&part_key(user_id, export_id, at.part), ndjson(&lines))
        .await?;
    tracing::info!(%export_id, ?section, part = at.part, lines = lines.len(), "export part written");
    Ok(Step::More(Some(at.after_page(page.next).to_cursor())))
}

/// Joins the parts into the archive, marks the export ready, deletes the parts.
async fn finish<R, S, A, Q>(
    deps: &WithWork<Worker<R, S, A>, Q>,
    record: &ExportRecord,
) -> Result<Step, ConsumeError>
where
    R: ExportRecords,
    A: Archive,
{
    let (user, export) = (record.user_id.as_str(), record.export_id.as_str());
    let parts = deps.archive.keys(&parts_prefix(user, export)).await?;
    let mut archive = Vec::new();
    for key in &parts {
        match deps.archive.get(key).await? {
            Some(bytes) => archive.extend(bytes),
            // Parts are deleted only after the export is marked ready, so a part gone
            // here means a finished export's late duplicate: nothing to do.
            None => return Ok(Step::Done),
        }
    }
    let key = archive_key(user, export);
    deps.archive.put(&key, archive).await?;
    let now = shutter_store::epoch_seconds();
    let ready = record.ready(&key, &shutter_core::now_rfc3339(), now, &deps.policy);
    advance(deps, &ready, &[ExportState::Pending, ExportState::Running]).await?;
    for part in &parts {
        deps.archive.delete(part).await?;
    }
    tracing::info!(export_id = %export, parts = parts.len(), "export ready");
    Ok(Step::Done)
}

/// Gives the export up and deletes what was written of it.
async fn fail<R, S, A, Q>(
    deps: &WithWork<Worker<R, S, A>, Q>,
    record: &ExportRecord,
    why: &str,
) -> Result<Step, ConsumeError>
where
    R: ExportRecords,
    A: Archive,
{
    let now = shutter_store::epoch_seconds();
    let failed = record.failed(why, &shutter_core::now_rfc3339(), now);
    advance(deps, &failed, &[ExportState::Pending, ExportState::Running]).await?;
    let prefix = crate::model::export_prefix(record.user_id.as_str(), &record.export_id);
    for key in deps.archive.keys(&prefix).await? {
        deps.archive.delete(&key).await?;
    }
    tracing::info!(export_id = %record.export_id, why, "export failed");
    Ok(Step::Done)
}

/// Moves the record; a record that moved meanwhile (a duplicate chunk got there first)
/// is fine.
async fn advance<R: ExportRecords, S, A, Q>(
    deps: &WithWork<Worker<R, S, A>, Q>,
    next: &ExportRecord,
    from: &[ExportState],
) -> Result<(), ConsumeError> {
    match deps.records.advance(next, from).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use async_trait::async_trait;
    use serde_json::Value;
    use shutter_events::work::MemoryWorkQueue;
    use shutter_identity::export::{ExportPolicy, MemoryExports};
    use shutter_store::StoreResult;

    use super::*;
    use crate::App;
    use crate::archive::MemoryArchive;
    use crate::model::Page;

    /// Each section's items, numbered, paged by index; the account section is one page.
    #[derive(Default)]
    struct FakeSources {
        items: HashMap<Section, usize>,
        gone: std::sync::Mutex<bool>,
    }

    #[async_trait]
    impl Sources for FakeSources {
        async fn page(
            &self,
            user: &UserId,
            section: Section,
            after: Option<&str>,
            limit: usize,
        ) -> StoreResult<Page> {
            if section == Section::Account {
                if *self.gone.lock().unwrap() {
                    return Err(StoreError::NotFound);
                }
                return Ok(Page {
                    lines: vec![line("account", json!({"user_id": user}))],
                    next: None,
                });
            }
            let total = self.items.get(&section).copied().unwrap_or(0);
            let from: usize = after.map_or(0, |a| a.parse().unwrap());
            let to = (from + limit).min(total);
            let kind = format!("{section:?}");
            let lines = (from..to).map(|i| line(&kind, json!({"n": i}))).collect();
            Ok(Page {
                lines,
                next: (to < total).then(|| to.to_string()),
            })
        }
    }

    type Records = std::sync::Arc<MemoryExports>;
    type TestWorker = WithWork<Worker<Records, FakeSources, MemoryArchive>, MemoryWorkQueue>;
    type TestApp = App<Records, MemoryWorkQueue, MemoryArchive>;

    /// Runs every queued job of `app` through `worker` until the queue is empty; the
    /// number of chunks done.
    async fn drain(queue: &MemoryWorkQueue, worker: &TestWorker) -> usize {
        let mut chunks = 0;
        let mut jobs = queue.take::<ExportWork>();
        while let Some(job) = jobs.pop() {
            chunks += 1;
            match chunk(worker, job.clone()).await.unwrap() {
                Step::Done => {}
                Step::More(cursor) => jobs.push(job.next(cursor)),
            }
        }
        chunks
    }

    fn setup(items: &[(Section, usize)], page: usize) -> (Records, TestApp, TestWorker) {
        let records = std::sync::Arc::new(MemoryExports::default());
        let app = App {
            records: records.clone(),
            queue: MemoryWorkQueue::default(),
            archive: MemoryArchive::default(),
            policy: ExportPolicy::default(),
        };
        let worker = WithWork {
            app: Worker {
                records: records.clone(),
                sources: FakeSources {
                    items: items.iter().copied().collect(),
                    gone: std::sync::Mutex::new(false),
                },
                archive: MemoryArchive::default(),
                policy: ExportPolicy::default(),
            },
            work: MemoryWorkQueue::default(),
            page,
        };
        (records, app, worker)
    }

    fn archive_lines(bytes: &[u8]) -> Vec<Value> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_export_pages_through_every_section_and_joins_the_parts_in_order() {
        let (records, app, worker) = setup(&[(Section::Posts, 5), (Section::Blocks, 2)], 2);
        let me = UserId::generate();
        records.add_account(&me);
        let view = app.start(&me, "corr").await.unwrap();
        let chunks = drain(&app.queue, &worker).await;
        // account 1, posts 3 (2+2+1), six other sections 1 each, the join 1.
        assert_eq!(chunks, 1 + 3 + 6 + 1);
        let record = records.latest_export(&me).await.unwrap().unwrap();
        assert_eq!(record.state, ExportState::Ready);
        let key = record.archive_key.unwrap();
        assert_eq!(key, archive_key(me.as_str(), &view.export_id));
        // Only the archive is left.
        assert_eq!(worker.archive.all_keys(), vec![key.clone()]);
        let lines = archive_lines(&worker.archive.get(&key).await.unwrap().unwrap());
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            vec![
                "export", "account", "Posts", "Posts", "Posts", "Posts", "Posts", "Blocks",
                "Blocks"
            ]
        );
        assert_eq!(lines[0]["export_id"], view.export_id.as_str());
        let posts: Vec<u64> = lines[2..7]
            .iter()
            .map(|l| l["n"].as_u64().unwrap())
            .collect();
        assert_eq!(posts, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_chunk_done_twice_changes_nothing_and_a_finished_export_is_left_alone() {
        let (records, app, worker) = setup(&[(Section::Posts, 3)], 2);
        let me = UserId::generate();
        records.add_account(&me);
        app.start(&me, "corr").await.unwrap();
        let first = app.queue.take::<ExportWork>().remove(0);
        // The first chunk twice (a redelivery), then the rest.
        let step = chunk(&worker, first.clone()).await.unwrap();
        assert_eq!(chunk(&worker, first.clone()).await.unwrap(), step);
        let mut job = first.clone();
        let mut last = step;
        while let Step::More(cursor) = last.clone() {
            job = job.next(cursor);
            last = chunk(&worker, job.clone()).await.unwrap();
        }
        let record = records.latest_export(&me).await.unwrap().unwrap();
        let key = record.archive_key.clone().unwrap();
        let lines = archive_lines(&worker.archive.get(&key).await.unwrap().unwrap());
        assert_eq!(lines.iter().filter(|l| l["type"] == "Posts").count(), 3);
        // The join delivered again after the export is ready: nothing moves.
        assert_eq!(chunk(&worker, job).await.unwrap(), Step::Done);
        assert_eq!(records.latest_export(&me).await.unwrap().unwrap(), record);
    }

    #[tokio::test]
    async fn a_deleted_account_fails_its_export_and_loses_its_parts() {
        let (records, app, worker) = setup(&[(Section::Posts, 3)], 2);
        let me = UserId::generate();
        records.add_account(&me);
        app.start(&me, "corr").await.unwrap();
        let job = app.queue.take::<ExportWork>().remove(0);
        let Step::More(cursor) = chunk(&worker, job.clone()).await.unwrap() else {
            panic!("the account part is not the last");
        };
        assert_eq!(worker.archive.all_keys().len(), 1);
        records.remove_account(&me);
        assert_eq!(chunk(&worker, job.next(cursor)).await.unwrap(), Step::Done);
        let record = records.latest_export(&me).await.unwrap().unwrap();
        assert_eq!(record.state, ExportState::Failed);
        assert!(worker.archive.all_keys().is_empty());
    }

    #[tokio::test]
    async fn a_job_for_an_export_that_is_not_the_latest_does_nothing() {
        let (records, _app, worker) = setup(&[], 2);
        let me = UserId::generate();
        records.add_account(&me);
        let job = Job {
            work: ExportWork::Build {
                user_id: me.clone(),
                export_id: "someone-else".into(),
            },
            cursor: None,
            event_id: shutter_core::EventId::generate(),
            actor: None,
            correlation_id: "c".into(),
            chunk: 0,
        };
        assert_eq!(chunk(&worker, job).await.unwrap(), Step::Done);
        assert!(worker.archive.all_keys().is_empty());
    }
}
