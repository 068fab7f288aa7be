//! An account's data export, as the identity service keeps it: one record per account
//! (the latest export), its rules, and its storage port with both adapters.
//!
//! The record lives in the identity table (`USER#<id>` / `EXPORT`), beside the account it
//! belongs to, so that starting an export checks in the same transaction that the
//! account still exists. The work itself (reading every service's part and writing the
//! archive) is `shutter-exports`'s: it moves the record through its states with
//! [`ExportRecords::advance`].
//!
//! States: `pending` (asked for) → `running` (the first chunk ran) → `ready` (the archive
//! is written) or `failed`. One export at a time: a new one may start only when the
//! latest is finished (`ready` or `failed`), and, after a `ready` one, once its cool-down
//! has passed. An export that has not finished within its stall time (a job lost in a
//! dead-letter queue) counts as `failed`, so that no account is stuck for ever.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shutter_core::UserId;
use shutter_store::{Item, StoreError, StoreResult, Table, Write, key, n, s, to_item};

use crate::store::dynamo::DynamoIdentityStore;

/// Conflict: the latest export is no longer the one read (another request started one,
/// or the worker moved it).
pub const EXPORT_CHANGED: &str = "export_changed";
/// Conflict: the account is gone.
pub const EXPORT_NO_ACCOUNT: &str = "export_no_account";

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Pending,
    Running,
    Ready,
    Failed,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }
}

/// The latest export of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub export_id: String,
    pub user_id: UserId,
    pub state: ExportState,
    /// RFC 3339, and the same instant in epoch seconds (for the rules).
    pub requested_at: String,
    pub requested_epoch: i64,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub completed_epoch: Option<i64>,
    /// The archive's object key, once ready.
    #[serde(default)]
    pub archive_key: Option<String>,
    /// The archive's object expires (the bucket's lifecycle rule) at about this time.
    #[serde(default)]
    pub archive_expires_epoch: Option<i64>,
    /// Why it failed (for logs and support; not shown to clients).
    #[serde(default)]
    pub failure: Option<String>,
}

/// The tunables of the rules (template parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportPolicy {
    /// After a `ready` export, how long before another may start.
    pub cooldown_seconds: i64,
    /// An unfinished export older than this counts as failed.
    pub stall_seconds: i64,
    /// How long a download link holds.
    pub link_seconds: i64,
    /// How long the archive is kept (the bucket's lifecycle rule), in days.
    pub archive_days: i64,
}

impl Default for ExportPolicy {
    fn default() -> Self {
        Self {
            cooldown_seconds: 3600,
            stall_seconds: 3600,
            link_seconds: 86_400,
            archive_days: 7,
        }
    }
}

/// Why an export may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    /// The latest export is pending or running.
    InProgress,
    /// The latest export finished less than the cool-down ago: another may start at
    /// `retry_at` (epoch seconds).
    CoolingDown { retry_at: i64 },
}

impl ExportRecord {
    /// A new export of `user_id`, asked for at `at` (RFC 3339) = `epoch`.
    pub fn requested(user_id: UserId, at: &str, epoch: i64) -> Self {
        Self {
            export_id: shutter_core::new_id(),
            user_id,
            state: ExportState::Pending,
            requested_at: at.to_owned(),
            requested_epoch: epoch,
            completed_at: None,
            completed_epoch: None,
            archive_key: None,
            archive_expires_epoch: None,
            failure: None,
        }
    }

    /// The state as clients see it at `now`: an unfinished export past its stall time
    /// has failed.
    pub fn state_at(&self, now: i64, policy: &ExportPolicy) -> ExportState {
        if !self.state.is_finished() && now - self.requested_epoch > policy.stall_seconds {
            ExportState::Failed
        } else {
            self.state
        }
    }

    /// This export, now running.
    pub fn running(&self) -> Self {
        Self {
            state: ExportState::Running,
            ..self.clone()
        }
    }

    /// This export, its archive `archive_key` written at `at` = `epoch`.
    pub fn ready(&self, archive_key: &str, at: &str, epoch: i64, policy: &ExportPolicy) -> Self {
        Self {
            state: ExportState::Ready,
            completed_at: Some(at.to_owned()),
            completed_epoch: Some(epoch),
            archive_key: Some(archive_key.to_owned()),
            archive_expires_epoch: Some(epoch + policy.archive_days * 86_400),
            ..self.clone()
        }
    }

    /// This export, given up at `at` = `epoch` because of `why`.
    pub fn failed(&self, why: &str, at: &str, epoch: i64) -> Self {
        Self {
            state: ExportState::Failed,
            completed_at: Some(at.to_owned()),
            completed_epoch: Some(epoch),
            failure: Some(why.to_owned()),
            ..self.clone()
        }
    }

    /// Until when (epoch seconds) a download link may be handed out at `now`: the link's
    /// lifetime, but never past the archive's own. None when there is nothing to download.
    pub fn link_until(&self, now: i64, policy: &ExportPolicy) -> Option<i64> {
        if self.state != ExportState::Ready {
            return None;
        }
        let archive_end = self.archive_expires_epoch?;
        let until = (now + policy.link_seconds).min(archive_end);
        (until > now).then_some(until)
    }
}

/// Whether a new export may start at `now`, given the latest one.
pub fn may_start(
    latest: Option<&ExportRecord>,
    now: i64,
    policy: &ExportPolicy,
) -> Result<(), StartRefusal> {
    let Some(latest) = latest else {
        return Ok(());
    };
    match latest.state_at(now, policy) {
        ExportState::Pending | ExportState::Running => Err(StartRefusal::InProgress),
        ExportState::Failed => Ok(()),
        ExportState::Ready => {
            let retry_at =
                latest.completed_epoch.unwrap_or(latest.requested_epoch) + policy.cooldown_seconds;
            if now < retry_at {
                Err(StartRefusal::CoolingDown { retry_at })
            } else {
                Ok(())
            }
        }
    }
}

/// The export records.
#[async_trait]
pub trait ExportRecords: Send + Sync {
    /// Whether the account exists (a deleted account's token still verifies for a while).
    async fn account_exists(&self, user_id: &UserId) -> StoreResult<bool>;
    /// The account's latest export.
    async fn latest_export(&self, user_id: &UserId) -> StoreResult<Option<ExportRecord>>;
    /// Stores `next` as the account's latest export, if the latest is still `previous`
    /// (none: there was none) and the account exists. Conflicts: EXPORT_NO_ACCOUNT
    /// (checked first), EXPORT_CHANGED.
    async fn start_export(
        &self,
        next: &ExportRecord,
        previous: Option<&ExportRecord>,
    ) -> StoreResult<()>;
    /// Moves export `next.export_id` to `next`, if it is still the latest and its stored
    /// state is one of `from`. Conflict: EXPORT_CHANGED.
    async fn advance(&self, next: &ExportRecord, from: &[ExportState]) -> StoreResult<()>;
}

/// Shared records (a test's routes and worker over one fake).
#[async_trait]
impl<T: ExportRecords + ?Sized> ExportRecords for std::sync::Arc<T> {
    async fn account_exists(&self, user_id: &UserId) -> StoreResult<bool> {
        (**self).account_exists(user_id).await
    }
    async fn latest_export(&self, user_id: &UserId) -> StoreResult<Option<ExportRecord>> {
        (**self).latest_export(user_id).await
    }
    async fn start_export(
        &self,
        next: &ExportRecord,
        previous: Option<&ExportRecord>,
    ) -> StoreResult<()> {
        (**self).start_export(next, previous).await
    }
    async fn advance(&self, next: &ExportRecord, from: &[ExportState]) -> StoreResult<()> {
        (**self).advance(next, from).await
    }
}

fn export_key(user_id: &UserId) -> Item {
    key(format!("USER#{user_id}"), "EXPORT")
}

fn export_item(record: &ExportRecord, ttl: Option<i64>) -> StoreResult<Item> {
    let mut item = to_item(record)?;
    item.extend(export_key(&record.user_id));
    if let Some(ttl) = ttl {
        item.insert("ttl".to_owned(), n(ttl));
    }
    Ok(item)
}

/// A finished record is kept as long as its archive (a day more), then DynamoDB's TTL
/// removes it; an unfinished one is kept.
fn ttl_of(record: &ExportRecord) -> Option<i64> {
    record
        .archive_expires_epoch
        .or(record.completed_epoch.map(|at| at + 7 * 86_400))
        .map(|at| at + 86_400)
}

#[async_trait]
impl ExportRecords for DynamoIdentityStore {
    async fn account_exists(&self, user_id: &UserId) -> StoreResult<bool> {
        Ok(self
            .table
            .get_item(&format!("USER#{user_id}"), "ACCOUNT")
            .await?
            .is_some())
    }

    async fn latest_export(&self, user_id: &UserId) -> StoreResult<Option<ExportRecord>> {
        self.table.get(&format!("USER#{user_id}"), "EXPORT").await
    }

    async fn start_export(
        &self,
        next: &ExportRecord,
        previous: Option<&ExportRecord>,
    ) -> StoreResult<()> {
        let put = Write::put(export_item(next, ttl_of(next))?);
        let put = match previous {
            None => put.if_absent(EXPORT_CHANGED),
            Some(previous) => put
                .when(EXPORT_CHANGED, "export_id = :previous")
                .value(":previous", s(&previous.export_id)),
        };
        let account = Write::check(
            key(format!("USER#{}", next.user_id), "ACCOUNT"),
            EXPORT_NO_ACCOUNT,
            "attribute_exists(pk)",
        );
        self.table.transact(vec![account, put]).await
    }

    async fn advance(&self, next: &ExportRecord, from: &[ExportState]) -> StoreResult<()> {
        let mut condition = String::from("export_id = :id AND #state IN (");
        let mut write = Write::put(export_item(next, ttl_of(next))?)
            .name("#state", "state")
            .value(":id", s(&next.export_id));
        for (i, state) in from.iter().enumerate() {
            if i > 0 {
                condition.push_str(", ");
            }
            condition.push_str(&format!(":s{i}"));
            write = write.value(format!(":s{i}"), s(state.as_str()));
        }
        condition.push(')');
        self.table
            .write(write.when(EXPORT_CHANGED, condition))
            .await
    }
}

/// The records in memory, for unit tests: the same conditions and labels. Accounts that
/// exist are the ones [`MemoryExports::add_account`] named.
#[derive(Debug, Default)]
pub struct MemoryExports {
    records: Mutex<HashMap<UserId, ExportRecord>>,
    accounts: Mutex<Vec<UserId>>,
}

impl MemoryExports {
    pub fn add_account(&self, user_id: &UserId) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(user_id.clone());
    }

    pub fn remove_account(&self, user_id: &UserId) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|u| u != user_id);
    }

    pub fn has_account(&self, user_id: &UserId) -> bool {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(user_id)
    }
}

#[async_trait]
impl ExportRecords for MemoryExports {
    async fn account_exists(&self, user_id: &UserId) -> StoreResult<bool> {
        Ok(self.has_account(user_id))
    }

    async fn latest_export(&self, user_id: &UserId) -> StoreResult<Option<ExportRecord>> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user_id)
            .cloned())
    }

    async fn start_export(
        &self,
        next: &ExportRecord,
        previous: Option<&ExportRecord>,
    ) -> StoreResult<()> {
        if !self.has_account(&next.user_id) {
            return Err(StoreError::Conflict(EXPORT_NO_ACCOUNT));
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let stored = records.get(&next.user_id).map(|r| r.export_id.as_str());
        if stored != previous.map(|p| p.export_id.as_str()) {
            return Err(StoreError::Conflict(EXPORT_CHANGED));
        }
        records.insert(next.user_id.clone(), next.clone());
        Ok(())
    }

    async fn advance(&self, next: &ExportRecord, from: &[ExportState]) -> StoreResult<()> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        match records.get(&next.user_id) {
            Some(r) if r.export_id == next.export_id && from.contains(&r.state) => {
                records.insert(next.user_id.clone(), next.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict(EXPORT_CHANGED)),
        }
    }
}

/// The records of the identity table, for the export functions (which hold no other
/// part of the identity service).
pub fn records_from_env(
    aws: &shutter_store::SdkConfig,
) -> Result<DynamoIdentityStore, shutter_store::ConfigError> {
    Ok(DynamoIdentityStore {
        table: Table::from_env(aws, "IDENTITY_TABLE")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: i64 = 1_000_000;

    fn policy() -> ExportPolicy {
        ExportPolicy {
            cooldown_seconds: 600,
            stall_seconds: 3600,
            link_seconds: 86_400,
            archive_days: 7,
        }
    }

    fn record(state: ExportState, requested: i64) -> ExportRecord {
        ExportRecord {
            state,
            ..ExportRecord::requested(UserId::generate(), "t", requested)
        }
    }

    #[test]
    fn a_first_export_may_start() {
        assert_eq!(may_start(None, NOW, &policy()), Ok(()));
    }

    #[test]
    fn an_export_in_progress_refuses_another() {
        for state in [ExportState::Pending, ExportState::Running] {
            let latest = record(state, NOW - 10);
            assert_eq!(
                may_start(Some(&latest), NOW, &policy()),
                Err(StartRefusal::InProgress)
            );
        }
    }

    #[test]
    fn a_stalled_export_counts_as_failed_and_another_may_start() {
        let latest = record(ExportState::Running, NOW - 3601);
        assert_eq!(latest.state_at(NOW, &policy()), ExportState::Failed);
        assert_eq!(may_start(Some(&latest), NOW, &policy()), Ok(()));
    }

    #[test]
    fn a_ready_export_cools_down_and_a_failed_one_does_not() {
        let ready = record(ExportState::Pending, NOW - 100).ready("k", "t", NOW - 60, &policy());
        assert_eq!(
            may_start(Some(&ready), NOW, &policy()),
            Err(StartRefusal::CoolingDown {
                retry_at: NOW - 60 + 600
            })
        );
        assert_eq!(may_start(Some(&ready), NOW + 541, &policy()), Ok(()));
        let failed = record(ExportState::Running, NOW - 100).failed("why", "t", NOW - 60);
        assert_eq!(may_start(Some(&failed), NOW, &policy()), Ok(()));
    }

    #[test]
    fn a_link_is_only_given_for_a_ready_export_and_never_outlives_its_archive() {
        let pending = record(ExportState::Pending, NOW);
        assert_eq!(pending.link_until(NOW, &policy()), None);
        let ready = pending.ready("k", "t", NOW, &policy());
        assert_eq!(ready.link_until(NOW, &policy()), Some(NOW + 86_400));
        let late = NOW + 7 * 86_400 - 100;
        assert_eq!(ready.link_until(late, &policy()), Some(NOW + 7 * 86_400));
        assert_eq!(ready.link_until(NOW + 7 * 86_400, &policy()), None);
    }

    #[tokio::test]
    async fn the_memory_records_keep_one_export_at_a_time_and_need_the_account() {
        let store = MemoryExports::default();
        let first = record(ExportState::Pending, NOW);
        assert!(matches!(
            store.start_export(&first, None).await,
            Err(StoreError::Conflict(EXPORT_NO_ACCOUNT))
        ));
        store.add_account(&first.user_id);
        store.start_export(&first, None).await.unwrap();
        // A racing start that read no export loses.
        let racing = ExportRecord::requested(first.user_id.clone(), "t", NOW);
        assert!(matches!(
            store.start_export(&racing, None).await,
            Err(StoreError::Conflict(EXPORT_CHANGED))
        ));
        store
            .advance(&first.running(), &[ExportState::Pending])
            .await
            .unwrap();
        assert!(matches!(
            store
                .advance(&first.running(), &[ExportState::Pending])
                .await,
            Err(StoreError::Conflict(EXPORT_CHANGED))
        ));
    }
}
