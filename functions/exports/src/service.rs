//! The use cases of the routes: start an export, say where it is.

use std::time::Duration;

use serde::Serialize;
use shutter_core::{ApiError, EventId, UserId};
use shutter_events::work::{Job, WorkQueue};
use shutter_identity::export::{ExportRecord, ExportRecords, ExportState, StartRefusal, may_start};
use utoipa::ToSchema;

use crate::archive::Archive;
use crate::worker::ExportWork;
use crate::{App, errors};

/// An export as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExportView {
    pub export_id: String,
    pub state: ExportState,
    /// RFC 3339
    pub requested_at: String,
    /// When it became ready or failed (RFC 3339).
    pub completed_at: Option<String>,
    /// While `ready`: a link that downloads the archive (one NDJSON file,
    /// `application/x-ndjson`) without a token, signed for this answer.
    pub download_url: Option<String>,
    /// When `download_url` stops working (RFC 3339): ask again for a new one.
    pub download_expires_at: Option<String>,
}

fn rfc3339_of(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .map(shutter_core::ids::rfc3339)
        .unwrap_or_default()
}

impl<R: ExportRecords, Q: WorkQueue, A: Archive> App<R, Q, A> {
    /// Starts an export of the caller's account: 202 with it pending, and its job on the
    /// queue. Refused while another is pending or running (409 `export_in_progress`), in
    /// the cool-down after a ready one (409 `export_cooldown`), and for a deleted account
    /// (404).
    pub async fn start(
        &self,
        caller: &UserId,
        correlation_id: &str,
    ) -> Result<ExportView, ApiError> {
        // A deleted account's token still verifies for a while: refuse it before anything
        // else (the record's write checks the account again, in its transaction).
        if !self
            .records
            .account_exists(caller)
            .await
            .map_err(errors::api)?
        {
            return Err(ApiError::NotFound("account"));
        }
        let now = shutter_store::epoch_seconds();
        let latest = self
            .records
            .latest_export(caller)
            .await
            .map_err(errors::api)?;
        match may_start(latest.as_ref(), now, &self.policy) {
            Ok(()) => {}
            Err(StartRefusal::InProgress) => return Err(errors::in_progress()),
            Err(StartRefusal::CoolingDown { retry_at }) => {
                return Err(ApiError::conflict(
                    "export_cooldown",
                    "export",
                    format!(
                        "the last export is recent; another may start at {}",
                        rfc3339_of(retry_at)
                    ),
                ));
            }
        }
        let record = ExportRecord::requested(caller.clone(), &shutter_core::now_rfc3339(), now);
        self.records
            .start_export(&record, latest.as_ref())
            .await
            .map_err(errors::api)?;
        let job = Job {
            work: ExportWork::Build {
                user_id: caller.clone(),
                export_id: record.export_id.clone(),
            },
            cursor: None,
            event_id: EventId::generate(),
            actor: Some(caller.clone()),
            correlation_id: correlation_id.to_owned(),
            chunk: 0,
        };
        if let Err(err) = self.queue.enqueue(&job).await {
            // Nothing will do it: say so at once rather than leave it pending until its
            // stall time, and let the caller try again.
            let failed = record.failed(
                "the work queue could not take the job",
                &shutter_core::now_rfc3339(),
                now,
            );
            if let Err(e) = self.records.advance(&failed, &[ExportState::Pending]).await {
                tracing::warn!(error = %e, "an export whose job was not queued stays pending until its stall time");
            }
            return Err(ApiError::internal(err));
        }
        tracing::info!(export_id = %record.export_id, "export requested");
        self.view(&record, now).await
    }

    /// The caller's latest export; 404 when there is none, or when the account is gone.
    pub async fn status(&self, caller: &UserId) -> Result<ExportView, ApiError> {
        if !self
            .records
            .account_exists(caller)
            .await
            .map_err(errors::api)?
        {
            return Err(ApiError::NotFound("account"));
        }
        let record = self
            .records
            .latest_export(caller)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("export"))?;
        self.view(&record, shutter_store::epoch_seconds()).await
    }

    async fn view(&self, record: &ExportRecord, now: i64) -> Result<ExportView, ApiError> {
        let state = record.state_at(now, &self.policy);
        let (download_url, download_expires_at) =
            match (record.link_until(now, &self.policy), &record.archive_key) {
                (Some(until), Some(key)) => {
                    let ttl = Duration::from_secs((until - now).unsigned_abs());
                    let url = self
                        .archive
                        .link(key, ttl)
                        .await
                        .map_err(ApiError::internal)?;
                    (Some(url), Some(rfc3339_of(until)))
                }
                _ => (None, None),
            };
        Ok(ExportView {
            export_id: record.export_id.clone(),
            state,
            requested_at: record.requested_at.clone(),
            completed_at: record.completed_at.clone(),
            download_url,
            download_expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_events::work::MemoryWorkQueue;
    use shutter_identity::export::{ExportPolicy, MemoryExports};

    use super::*;
    use crate::archive::MemoryArchive;

    type TestApp = App<MemoryExports, MemoryWorkQueue, MemoryArchive>;

    fn app() -> TestApp {
        App {
            records: MemoryExports::default(),
            queue: MemoryWorkQueue::default(),
            archive: MemoryArchive::default(),
            policy: ExportPolicy::default(),
        }
    }

    fn user(app: &TestApp) -> UserId {
        let user = UserId::generate();
        app.records.add_account(&user);
        user
    }

    fn code(err: &ApiError) -> String {
        err.problem().code
    }

    #[tokio::test]
    async fn an_export_starts_pending_with_its_job_queued() {
        let app = app();
        let me = user(&app);
        let view = app.start(&me, "corr").await.unwrap();
        assert_eq!(view.state, ExportState::Pending);
        assert_eq!(view.download_url, None);
        let jobs = app.queue.take::<ExportWork>();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].work,
            ExportWork::Build {
                user_id: me.clone(),
                export_id: view.export_id.clone()
            }
        );
        assert_eq!(app.status(&me).await.unwrap(), view);
    }

    #[tokio::test]
    async fn a_second_start_while_one_is_pending_is_a_conflict_and_queues_nothing() {
        let app = app();
        let me = user(&app);
        let first = app.start(&me, "corr").await.unwrap();
        app.queue.take::<ExportWork>();
        let err = app.start(&me, "corr").await.unwrap_err();
        assert_eq!(
            (err.status(), code(&err).as_str()),
            (409, "export_in_progress")
        );
        assert!(app.queue.take::<ExportWork>().is_empty());
        assert_eq!(app.status(&me).await.unwrap().export_id, first.export_id);
    }

    #[tokio::test]
    async fn a_deleted_account_can_neither_start_nor_read_an_export() {
        let app = app();
        let me = user(&app);
        app.start(&me, "corr").await.unwrap();
        app.records.remove_account(&me);
        assert_eq!(app.status(&me).await.unwrap_err().status(), 404);
        // Refused as a deleted account, not as one with an export in progress.
        let err = app.start(&me, "corr").await.unwrap_err();
        assert_eq!((err.status(), code(&err).as_str()), (404, "not_found"));
        let never = UserId::generate();
        assert_eq!(app.start(&never, "corr").await.unwrap_err().status(), 404);
        assert!(app.queue.take::<ExportWork>().len() == 1);
    }

    #[tokio::test]
    async fn nobody_has_an_export_until_they_ask() {
        let app = app();
        let me = user(&app);
        let err = app.status(&me).await.unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn a_queue_that_is_down_fails_the_export_so_it_can_be_asked_again() {
        let app = app();
        let me = user(&app);
        app.queue.set_down(true);
        assert_eq!(app.start(&me, "corr").await.unwrap_err().status(), 500);
        assert_eq!(app.status(&me).await.unwrap().state, ExportState::Failed);
        app.queue.set_down(false);
        assert_eq!(
            app.start(&me, "corr").await.unwrap().state,
            ExportState::Pending
        );
    }

    #[tokio::test]
    async fn a_ready_export_has_a_link_for_its_owner_only_and_cools_down() {
        let app = app();
        let me = user(&app);
        let view = app.start(&me, "corr").await.unwrap();
        let record = app.records.latest_export(&me).await.unwrap().unwrap();
        let ready = record.ready(
            "exports/k.ndjson",
            "t",
            shutter_store::epoch_seconds(),
            &app.policy,
        );
        app.records
            .advance(&ready, &[ExportState::Pending])
            .await
            .unwrap();
        let mine = app.status(&me).await.unwrap();
        assert_eq!(mine.export_id, view.export_id);
        assert_eq!(mine.state, ExportState::Ready);
        assert_eq!(
            mine.download_url.as_deref(),
            Some("memory://exports/k.ndjson?ttl=86400")
        );
        // Another user asks about their own export (there is none), never this one.
        let other = user(&app);
        assert_eq!(app.status(&other).await.unwrap_err().status(), 404);
        let err = app.start(&me, "corr").await.unwrap_err();
        assert_eq!(
            (err.status(), code(&err).as_str()),
            (409, "export_cooldown")
        );
    }
}
