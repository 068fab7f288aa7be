//! The posts table's port and its adapters: [`dynamo`] (real) and [`memory`] (the fake
//! unit tests use, with the same conditions and conflict labels).
//!
//! Layout (`pk` / `sk`):
//! - `POST#<id>` / `POST`: the post, its media and its counters;
//! - `POST#<id>` / `LIKE#<user>` and `COMMENT#<comment>`: engagement markers (see
//!   [`crate::counters`]), so `liked_by_me` and the counters come from this service's own
//!   table;
//! - `AUTHOR#<user>` / `POST#<id>`: the author's posts, newest first (ids are ULIDs);
//! - `TAG#<tag>` / `POST#<id>`: published posts by hashtag (an index the lists check
//!   against the post: see below);
//! - `IDEMPOTENCY#<user>#<key>` / `IDEMPOTENCY`: the post a create with that
//!   `Idempotency-Key` made (kept a day);
//! - `DIR#...`: the directory of authors ([`shutter_directory`]); `OUTBOX#...`: events.
//!
//! Every change of a post is one transaction: the post (conditional on the version it
//! was read at), its author list entry and its outbox events, so that list and the
//! events never disagree with the post. The hashtag entries are not in it: a post may
//! have had hundreds of hashtags (before captions were capped), and a transaction holds
//! at most 100 items. They are written apart, in batches, by deterministic keys, so that
//! writing them again or deleting what is gone changes nothing, and in an order that
//! leaves nothing visible wrong when a step fails: a save puts every entry the post will
//! have *before* its transaction and deletes those it lost *after* it; a delete removes
//! every entry of the post's hashtags *before* its transaction, so a failed delete is
//! retried whole. An entry may thus name a post that no longer has that hashtag or is
//! gone (a failed clean-up): the hashtag list shows only published posts that have it.

pub mod dynamo;
pub mod memory;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{Marker, MarkerId, Post, PostStatus};

/// Conflict: the post changed (or went) since it was read.
pub const STALE: &str = "stale";
/// Conflict: the `Idempotency-Key` was used before for a different request.
pub const KEY_REUSED: &str = "idempotency_key_reused";
/// Conflict: a marker of a tally changed since it was read.
pub const MARKER_CHANGED: &str = "marker_changed";
/// Conflict: the post a tally counts for is gone.
pub const POST_GONE: &str = "post_gone";
/// Conflict: the author's account is deleted (the directory holds its tombstone): a
/// still-valid token of a deleted account creates and edits nothing.
pub const ACCOUNT_DELETED: &str = "account_deleted";

/// A create's `Idempotency-Key` and a hash of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// What a create stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    New,
    /// The key was used before, for this same request: the post it made then.
    Replayed(PostId),
}

/// A list of posts: an author's (every status) or a hashtag's (published only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    Author(UserId),
    Tag(String),
}

/// One entry of a list. An author's entries know their post's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub post_id: PostId,
    pub status: Option<PostStatus>,
}

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    pub entries: Vec<IndexEntry>,
    /// Where the next page starts, when there is one: an opaque position to hand back.
    pub next: Option<String>,
}

/// One marker a tally writes: its new state, over the `previous` sequence it was read
/// at (none: no marker yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerWrite {
    pub marker: MarkerId,
    pub previous: Option<u64>,
    pub seq: u64,
    pub counted: bool,
}

/// One counter transaction of a post: markers, how its counters move and the event that
/// says so (when they move).
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub post_id: PostId,
    pub markers: Vec<MarkerWrite>,
    pub like_delta: i64,
    pub comment_delta: i64,
    pub event: Option<Envelope>,
}

/// The posts table.
#[async_trait]
pub trait PostsStore: Send + Sync {
    async fn post(&self, id: &PostId) -> StoreResult<Option<Post>>;

    /// The posts with these ids that still exist, in the order given.
    async fn posts(&self, ids: &[PostId]) -> StoreResult<Vec<Post>>;

    /// Stores a new post with its `PostCreated`. With an idempotency key, a second create
    /// with the same key and request hash stores nothing and answers the first post.
    /// Conflicts: [`ACCOUNT_DELETED`] (checked first), [`KEY_REUSED`] when the key was
    /// used for another request.
    async fn create(
        &self,
        post: &Post,
        event: &Envelope,
        idempotency: Option<&Idempotency>,
    ) -> StoreResult<Stored>;

    /// Replaces `before` with `after`, with `events`; the lists follow the status and
    /// the hashtags (a hashtag lists published posts only). Conflicts: [`STALE`] unless
    /// the stored version is still `before`'s; [`ACCOUNT_DELETED`] when the author's
    /// account is deleted.
    async fn save(&self, before: &Post, after: &Post, events: &[Envelope]) -> StoreResult<()>;

    /// Deletes the post and its list entries, with its `PostDeleted`, whatever the
    /// number of its hashtags. Conflict: [`STALE`] unless the stored version is still
    /// `post`'s (its hashtag entries may be gone then: delete it again, read again).
    async fn delete(&self, post: &Post, event: &Envelope) -> StoreResult<()>;

    /// Up to `limit` entries of `index`, newest first, after the position `after`.
    async fn page(
        &self,
        index: &Index,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<IndexPage>;

    /// Removes one entry of `index` (one whose post is gone).
    async fn drop_entry(&self, index: &Index, post: &PostId) -> StoreResult<()>;

    /// Which of these posts `user` likes (from the like markers).
    async fn liked_by(&self, user: &UserId, posts: &[PostId]) -> StoreResult<HashSet<PostId>>;

    /// The stored state of these markers of `post` (absent ones are left out).
    async fn markers(
        &self,
        post: &PostId,
        markers: &[MarkerId],
    ) -> StoreResult<HashMap<MarkerId, Marker>>;

    /// Writes a tally's markers, counter changes and event in one transaction.
    /// Conflicts: [`POST_GONE`] when the counters move and the post is gone (checked
    /// first); [`MARKER_CHANGED`] when a marker is not at its `previous` sequence.
    async fn tally(&self, tally: &Tally) -> StoreResult<()>;
}
