//! The comments table port and its adapters: [`dynamo`] (the real one) and [`memory`]
//! (the fake the unit tests use, with the same conditions and conflict labels).
//!
//! Layout (`pk` / `sk`):
//! - `POST#<post>` / `C#<parent>` a top-level comment, `C#<parent>#R#<reply>` a reply: one
//!   query returns every thread in order, each parent followed by its replies;
//! - `COMMENT#<id>` / `COMMENT` the lookup item (where comment `id` is). A deleted comment
//!   leaves a tombstone there (`deleted`, with a TTL), so a redelivered write cannot
//!   bring it back;
//!   (a comment staff removed keeps its place, with `removed`: see [`CommentsStore::remove`]);
//! - `COMMENT#<id>` / `LIKE#<user>` a like of the comment;
//! - `USER#<author>` / `C#<id>` the author's comments, `USER#<user>` / `L#<id>` the
//!   comments a user likes (both for `UserDeleted`);
//! - `IDEMPOTENCY#<author>#<key>` / `IDEMPOTENCY` the comment a create with that
//!   `Idempotency-Key` accepted and a hash of its request (kept a day);
//! - `DIR#...` the directory's copy of authors and posts (`shutter-directory`);
//! - `OUTBOX#<event id>` / `OUTBOX` this service's events.

pub mod dynamo;
pub mod memory;

use std::collections::HashSet;

use async_trait::async_trait;
use shutter_core::{CommentId, PostId, UserId};
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{Comment, Removal};

/// Conflict: a comment with this id was written before (a redelivered write), even if it
/// was deleted since (its tombstone holds the id).
pub const COMMENT_EXISTS: &str = "comment_exists";
/// Conflict: the comment a reply answers is gone (or is not on the reply's post).
pub const PARENT_GONE: &str = "parent_gone";
/// Conflict: the comment is gone; for an edit, also when it is no longer its author's.
pub const COMMENT_GONE: &str = "comment_gone";
/// Conflict: the user likes the comment already.
pub const ALREADY_LIKED: &str = "already_liked";
/// Conflict: the user does not like the comment.
pub const NOT_LIKED: &str = "not_liked";
/// Conflict: the author's account is deleted (the directory holds its tombstone): a
/// still-valid token of a deleted account writes and edits no comment.
pub const ACCOUNT_DELETED: &str = "account_deleted";
/// Conflict: the comment to remove is gone, or was removed before (the first removal
/// stands): nothing changed.
pub const NOTHING_TO_REMOVE: &str = "nothing_to_remove";
/// Conflict: the `Idempotency-Key` was used before for a different request.
pub const KEY_REUSED: &str = "idempotency_key_reused";

/// Idempotency keys are honoured for a day.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// A create's `Idempotency-Key` and a hash of its request (the post and the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is new: the comment is the one it accepts.
    New,
    /// The key was used before, for this same request: the comment it accepted then.
    Replayed(Box<Comment>),
}

/// The one write of `comments-create`: its idempotency keys.
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Records `comment` as the one `author`'s `idempotency` key accepts, unless the key
    /// was used: then the comment it accepted, when the request hash is the same.
    /// Conflict: [`KEY_REUSED`] when it is not.
    async fn claim(
        &self,
        author: &UserId,
        idempotency: &Idempotency,
        comment: &Comment,
    ) -> StoreResult<Claimed>;
}

/// A deleted comment's tombstone outlives any redelivery of its write (SQS keeps a
/// message 4 days by default, at most 14).
pub const TOMBSTONE_TTL_SECONDS: i64 = 15 * 24 * 3600;

/// Where a comment sits under its post: `C#<parent>` for a top-level comment and
/// `C#<parent>#R#<reply>` for a reply, so one query returns each thread in order. Both
/// adapters order and page by it.
fn sort_key(c: &Comment) -> String {
    match &c.reply_to {
        Some(parent) => format!("C#{parent}#R#{}", c.id),
        None => format!("C#{}", c.id),
    }
}

/// What the read-only functions may do.
#[async_trait]
pub trait CommentsReader: Send + Sync {
    /// The live comment with this id.
    async fn comment(&self, id: &CommentId) -> StoreResult<Option<Comment>>;
    /// Up to `limit` comments of a post in thread order, after position `after`; the
    /// position to resume after when there may be more.
    async fn page(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: u16,
    ) -> StoreResult<(Vec<Comment>, Option<String>)>;
    /// Which of `comment_ids` `user_id` likes.
    async fn liked_by(
        &self,
        user_id: &UserId,
        comment_ids: &[CommentId],
    ) -> StoreResult<HashSet<CommentId>>;
    /// The replies of a top-level comment.
    async fn replies(&self, parent: &Comment) -> StoreResult<Vec<Comment>>;
    /// Up to `limit` ids of the comments `user_id` wrote, in id order, after `after`.
    async fn by_author(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>>;
    /// Up to `limit` ids of the comments `user_id` likes (some may be deleted since), in
    /// id order, after `after`.
    async fn liked_comments(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>>;
}

/// Everything else: the writes, each with its event in the same transaction.
#[async_trait]
pub trait CommentsStore: CommentsReader {
    /// Writes a new comment and its event. Conflicts: [`COMMENT_EXISTS`] (nothing
    /// changed), [`ACCOUNT_DELETED`] (its author's account is deleted: nothing written),
    /// [`PARENT_GONE`] (a reply whose parent is gone: nothing written).
    async fn insert(&self, comment: &Comment, event: &Envelope) -> StoreResult<()>;
    /// Saves the text, hashtags, mentions and `edited_at` of `updated` with `event`.
    /// Conflicts: [`COMMENT_GONE`] (gone, or no longer its author's), [`ACCOUNT_DELETED`].
    async fn edit(&self, updated: &Comment, event: &Envelope) -> StoreResult<()>;
    /// Deletes one comment (leaving its tombstone) with its event, then its likes.
    /// Conflict: [`COMMENT_GONE`] (deleted already: nothing changed).
    async fn delete(&self, comment: &Comment, event: &Envelope) -> StoreResult<()>;
    /// Adds `user_id`'s like and counts it, with `event`. Conflicts: [`COMMENT_GONE`],
    /// [`ALREADY_LIKED`], [`ACCOUNT_DELETED`] (the liker's tombstone; nothing changed).
    async fn like(&self, comment: &Comment, user_id: &UserId, event: &Envelope) -> StoreResult<()>;
    /// Removes `user_id`'s like and counts it, with `event`. Conflicts: [`COMMENT_GONE`],
    /// [`NOT_LIKED`] (nothing changed).
    async fn unlike(
        &self,
        comment: &Comment,
        user_id: &UserId,
        event: &Envelope,
    ) -> StoreResult<()>;
    /// Marks comment `id` removed by staff, for good: its text, likes, replies and place
    /// in the post's count stay (see [`crate::consumer`]). Conflict:
    /// [`NOTHING_TO_REMOVE`] (gone, or removed before: nothing changed).
    async fn remove(&self, id: &CommentId, removal: &Removal) -> StoreResult<()>;
    /// Forgets that `user_id` liked comment `id` (a like that cannot be taken back: the
    /// comment is gone).
    async fn forget_like(&self, user_id: &UserId, id: &CommentId) -> StoreResult<()>;
    /// Erases up to `limit` comments of a deleted post (no events: the post is gone);
    /// how many: 0 when none is left. Idempotent.
    async fn purge_post(&self, post_id: &PostId, limit: usize) -> StoreResult<usize>;
}
