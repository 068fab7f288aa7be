//! Moderation's storage port and its adapters: [`dynamo`] (real) and [`memory`] (the fake
//! the use-case tests run against, with the same conditions and labels).
//!
//! Moderation keeps its items in the **identity table**, because a staff role is a field
//! of the account that login and refresh read: a role change and its modlog entry commit
//! in one transaction with the account it changes, and no second copy of roles can drift.
//! It touches identity's items only there: it reads `USERNAME#<name>` / `USERNAME` (the
//! user id) and `USER#<id>` / `ACCOUNT` (`username`, `roles`), and updates the account's
//! `roles` attribute alone (conditional on the roles it read). Its own items:
//! - `MODTARGET#<type>#<id>` / `REPORT#<reporter id>`: one user's [`Report`] of a target
//! - `MODTARGET#<type>#<id>` / `OPEN`: the open queue entry's sort key (`opened`)
//! - `MODQUEUE#<status>` / `<first reported at>#<type>#<id>`: the target's [`QueueEntry`],
//!   so the queue reads oldest first from one partition
//! - `MODLOG#ALL`, `MODLOG#BY#<moderator id>`, `MODLOG#ON#<type>#<id>` / `<at>#<id>`: each
//!   [`ModlogEntry`] three times (the whole log, by moderator, on target), written once
//!   with `attribute_not_exists` and never updated or deleted: the log is append-only
//! - `MODCOMMENT#<id>` / `COMMENT`: a [`CommentRef`] from the comments topic (a deleted
//!   comment leaves a tombstone so a late `CommentAdded` cannot bring it back)
//! - `MODQUEUE#resolved` / `<resolved at>#<type>#<id>`: a resolved entry (read newest
//!   first); resolving deletes the open entry and its `OPEN` pointer in the same
//!   transaction, so the next report of the target opens a new entry
//! - `MODPOST#<id>` / `POST`: a [`PostPreview`] from the posts topic (deleted: tombstone)
//! - on the account (`USER#<id>` / `ACCOUNT`) it also sets `suspension` (a
//!   [`Suspension`], which login and refresh read), bumps `refresh_epoch` (ending every
//!   session) and `standing_seq`, with the `UserSuspended` / `UserReinstated` event in the
//!   table's outbox, in one transaction
//! - `DIR#...`: the service's copy of users, posts, follows and blocks
//!   ([`shutter_directory::DynamoDirectory`], same table)

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{
    CommentRef, ModlogEntry, ModlogFilter, PostPreview, QueueEntry, Report, ReportStatus,
    StaffAccount, Suspension, Target,
};

pub mod dynamo;
pub mod memory;

/// The account's roles changed since they were read (or the account is gone).
pub const STALE_ROLES: &str = "stale_roles";
/// The reporter has reported this target already.
pub const DUPLICATE_REPORT: &str = "duplicate_report";
/// The target's queue entry changed since it was read.
pub const STALE_QUEUE: &str = "stale_queue";
/// The account's standing (suspension) changed since it was read.
pub const STALE_STANDING: &str = "stale_standing";

/// A change of an account's standing: its new suspension (or none), under the next seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingChange {
    /// The account as read: the change holds only if its `standing_seq` is unchanged.
    pub account: StaffAccount,
    pub suspension: Option<Suspension>,
    /// The `UserSuspended` or `UserReinstated` event.
    pub event: Envelope,
}

/// How a report changes its target's open queue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
// Built once per report and passed by reference: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum QueueChange {
    /// The target has no open entry: open this one.
    Open(QueueEntry),
    /// The target's open entry was `from`: make it `to`.
    Bump { from: QueueEntry, to: QueueEntry },
}

#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// The account of `username` (lower-cased, as identity keys it), if any.
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<StaffAccount>>;
    async fn account(&self, user_id: &UserId) -> StoreResult<Option<StaffAccount>>;
    /// Closes the open entry `open` as `resolved` (conflict STALE_QUEUE if it changed),
    /// appends `entry` to the modlog, and applies `standing` (conflict STALE_STANDING) and
    /// `events`, all in one transaction.
    async fn resolve(
        &self,
        open: &QueueEntry,
        resolved: &QueueEntry,
        entry: &ModlogEntry,
        standing: Option<&StandingChange>,
        events: &[Envelope],
    ) -> StoreResult<()>;
    /// Applies `standing` and appends `entry` to the modlog, in one transaction. Conflict:
    /// STALE_STANDING.
    async fn set_standing(&self, standing: &StandingChange, entry: &ModlogEntry)
    -> StoreResult<()>;
    /// Sets the account's roles to `roles` if they are still `account.roles`, and appends
    /// `entry` to the modlog, in one transaction. Conflict: STALE_ROLES.
    async fn set_roles(
        &self,
        account: &StaffAccount,
        roles: &[String],
        entry: &ModlogEntry,
    ) -> StoreResult<()>;

    /// `reporter`'s report of `target`, if any.
    async fn report(&self, target: &Target, reporter: &UserId) -> StoreResult<Option<Report>>;
    /// Whether anyone ever reported `target` (its reports are kept).
    async fn reported(&self, target: &Target) -> StoreResult<bool>;
    /// The target's open queue entry, if any.
    async fn open_entry(&self, target: &Target) -> StoreResult<Option<QueueEntry>>;
    /// Stores `report` and applies `queue` in one transaction. Conflicts:
    /// DUPLICATE_REPORT (the reporter reported it meanwhile), STALE_QUEUE.
    async fn file(&self, report: &Report, queue: &QueueChange) -> StoreResult<()>;
    /// Up to `limit` entries with `status`, oldest first, after the position `after`; and
    /// the position of the last one returned.
    async fn queue(
        &self,
        status: ReportStatus,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, QueueEntry)>>;

    /// Up to `limit` modlog entries matching `filter`, newest first, after `after`; each
    /// with its position.
    async fn modlog(
        &self,
        filter: &ModlogFilter,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ModlogEntry)>>;

    async fn comment(&self, comment_id: &str) -> StoreResult<Option<CommentRef>>;
    /// A comment's new text (an edit); nothing if unknown or deleted.
    async fn edit_comment(&self, comment_id: &str, text: &str) -> StoreResult<()>;
    async fn post_preview(&self, post_id: &PostId) -> StoreResult<Option<PostPreview>>;
    /// Keeps `preview` unless the post is deleted or a newer version is kept.
    async fn put_post_preview(&self, preview: &PostPreview) -> StoreResult<()>;
    /// Forgets a post's preview for good (a tombstone; idempotent).
    async fn forget_post(&self, post_id: &PostId) -> StoreResult<()>;
    /// Remembers a comment, unless it was deleted (idempotent).
    async fn put_comment(&self, comment: &CommentRef) -> StoreResult<()>;
    /// Forgets a comment for good (a tombstone; idempotent).
    async fn delete_comment(&self, comment_id: &str) -> StoreResult<()>;
}

/// The queue's position of an entry: its sort key, `<first reported at>#<type>#<id>`.
pub fn queue_position(entry: &QueueEntry) -> String {
    format!("{}#{}", entry.first_reported_at, entry.target.key())
}

/// The resolved queue's position of an entry: `<resolved at>#<type>#<id>`.
pub fn resolved_position(entry: &QueueEntry) -> String {
    let at = entry.resolution.as_ref().map_or("", |r| r.at.as_str());
    format!("{at}#{}", entry.target.key())
}

/// The modlog's position of an entry: `<at>#<id>`.
pub fn modlog_position(entry: &ModlogEntry) -> String {
    format!("{}#{}", entry.at, entry.id)
}
