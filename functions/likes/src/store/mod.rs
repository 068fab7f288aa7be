//! The likes table's ports and their adapters: [`dynamo`] (real) and [`memory`] (the fake
//! unit tests use, with the same conditions and conflict labels).
//!
//! Layout (`pk` / `sk`):
//! - `POST#<post id>` / `LIKE#<user id>`: the [`LikeState`] of one user's like of the post
//!   (kept after an unlike, so its `seq` keeps counting);
//! - `POST#<post id>#LIST#<0-7>` / `LIKED#<entry ulid>`: an entry of the post's likers
//!   list while the like holds, in one of 8 partitions chosen by the user id (ULIDs sort by
//!   time, so a page is the newest entries of the 8 reverse queries merged);
//! - `USERLIKES#<user id>` / `POST#<post id>`: every post the user ever liked, so their
//!   likes can be found and erased when the account is deleted;
//! - `GONE#<user id>` / `GONE`: a deleted account, which may like nothing more (its access
//!   tokens outlive the deletion by up to 15 minutes);
//! - `DIR#...`: the directory of authors and posts ([`shutter_directory`]);
//! - `OUTBOX#<event id>` / `OUTBOX`: this service's events.
//!
//! Hot posts. A post that draws thousands of likes a second must not funnel them through
//! one item: each like writes its own items (its state under the post's partition key,
//! its list entry), and there is no counter item to serialise on, so concurrent likes
//! never conflict with each other. DynamoDB splits a hot partition by sort key ("split
//! for heat"), which spreads the state items (keyed by user id, so evenly). List entries
//! are keyed by time, and splits cannot spread writes that all land at the end of a key
//! range, so the list has 8 partitions: one post's likes get 8 partitions' write capacity
//! (about 1,000 write units a second each; a transactional write takes 2), and a page of
//! likers costs 8 small queries. The reads a like makes of the post's directory items are
//! kept a few seconds per environment ([`crate::cache`]), so they do not make those items
//! hot either. Counting is the posts service's job: it sums `LikeAdded`/`LikeRemoved` per
//! batch into `like_count`.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{LikeState, LikerEntry};

/// Conflict: the like changed since it was read (read it again and decide anew).
pub const STALE: &str = "stale";
/// Conflict: the account that likes was deleted (its token outlived it).
pub const ACCOUNT_DELETED: &str = "account_deleted";

/// The sort-key prefix of likers-list entries: every list position starts with it.
const ENTRY_PREFIX: &str = "LIKED#";

/// Whether `position` can be a position of a likers list (a signed cursor's is, unless
/// this server's layout changed under it).
pub fn is_list_position(position: &str) -> bool {
    position.starts_with(ENTRY_PREFIX)
}

/// Reads and changes of likes: what the endpoints need.
#[async_trait]
pub trait LikesStore: Send + Sync {
    async fn state(&self, post_id: &PostId, user_id: &UserId) -> StoreResult<Option<LikeState>>;
    /// Replaces `previous` (none: no like was ever stored) with `next`, with `event`, in
    /// one transaction. Conflicts: [`STALE`] unless the stored `seq` is still
    /// `previous`'s; [`ACCOUNT_DELETED`] when `next` is a like by a deleted account.
    async fn commit(
        &self,
        previous: Option<&LikeState>,
        next: &LikeState,
        event: &Envelope,
    ) -> StoreResult<()>;
    /// Up to `limit` entries of the post's likers list, newest first, after `after` (a
    /// position a previous page ended on).
    async fn likers(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<LikerEntry>>;
}

/// A user's own likes, read for their account export (`shutter-exports`).
#[async_trait]
pub trait LikesExport: Send + Sync {
    /// Up to `limit` of the user's likes that hold, in post id order, after position
    /// `after`; the position to resume after when there may be more.
    async fn likes_of(
        &self,
        user_id: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<LikeState>, Option<String>)>;
}

/// What the directory consumer does to likes when posts and accounts go.
#[async_trait]
pub trait LikesCleanup: Send + Sync {
    /// Marks the account deleted: [`LikesStore::commit`] refuses its likes from now on.
    async fn mark_gone(&self, user_id: &UserId) -> StoreResult<()>;
    /// Up to `limit` posts the user has a like state on (liked or not).
    async fn posts_liked_by(&self, user_id: &UserId, limit: usize) -> StoreResult<Vec<PostId>>;
    /// Erases the user's like of the post (state, list entry, index item), with `event`
    /// when it was liked. Conflict: [`STALE`] unless the stored `seq` is `current`'s.
    async fn erase(&self, current: &LikeState, event: Option<&Envelope>) -> StoreResult<()>;
    /// Removes a `posts_liked_by` index item that has no state behind it.
    async fn forget(&self, user_id: &UserId, post_id: &PostId) -> StoreResult<()>;
    /// Deletes up to `limit` likes of the post (with their index items, or likers-list
    /// entries); returns how many items went: 0 when none is left.
    async fn delete_post_likes(&self, post_id: &PostId, limit: usize) -> StoreResult<usize>;
}
