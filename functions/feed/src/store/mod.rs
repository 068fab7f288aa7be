//! The feed's storage ports and their adapters: [`dynamo`] (the feed table) and
//! [`memory`] (the fake the unit tests use, with the same rules and conflict labels).
//!
//! `GET /v1/feed` only reads ([`FeedReader`]); the fan-out consumer also writes
//! ([`FeedStore`]). Keys and item parsing live in the adapters only.

pub mod dynamo;
pub mod memory;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use shutter_core::{EventId, PostId, UserId};
use shutter_directory::Author;
use shutter_events::EngagementChanged;
use shutter_store::StoreResult;

use crate::model::{AuthorMeta, Entry, PairMarker, PostCopy};

pub use dynamo::DynamoFeedStore;
pub use memory::MemoryFeedStore;

/// Conflict: a copy of the post (or its tombstone) is there already.
pub const POST_EXISTS: &str = "post_exists";
/// Conflict: the post copy to edit is unknown, deleted, or of the same or a newer version.
pub const POST_STALE: &str = "post_stale";
/// Conflict: the post whose counts moved is unknown or deleted.
pub const POST_GONE: &str = "post_gone";
/// Conflict: the follow marker moved since it was read.
pub const EDGE_MOVED: &str = "edge_moved";
/// Conflict: a newer (or the same) change of the like is recorded already.
pub const LIKE_STALE: &str = "like_stale";
/// Conflict: the engagement event was applied before.
pub use shutter_events::outbox::PROCESSED_LABEL as PROCESSED;

/// What one page's hydration read.
#[derive(Debug, Default)]
pub struct Hydrated {
    /// Live posts only: deleted ones are left out.
    pub posts: HashMap<PostId, PostCopy>,
    /// Authors whose accounts exist.
    pub authors: HashMap<UserId, Author>,
    /// The posts the viewer likes.
    pub liked: HashSet<PostId>,
    /// The authors the viewer follows, as this service's follow markers say.
    pub followed: HashSet<UserId>,
    /// The authors banned, as this service's directory holds their standing
    /// (`UserSuspended` with `banned`, until a newer `UserReinstated`).
    pub banned: HashSet<UserId>,
}

/// What reading a feed page needs.
#[async_trait]
pub trait FeedReader: Send + Sync {
    /// The user's timeline, newest first, strictly before position `before` when given.
    async fn timeline(
        &self,
        user: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>>;
    /// The author's recent posts, newest first, strictly before `before` when given.
    async fn recent(
        &self,
        author: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>>;
    /// The celebrities `user` follows (their posts are merged at read time).
    async fn celebrities_followed(&self, user: &UserId) -> StoreResult<Vec<UserId>>;
    /// The posts, their authors (and which of them are banned) and the viewer's likes
    /// of them.
    async fn hydrate(
        &self,
        viewer: &UserId,
        posts: &[PostId],
        authors: &[UserId],
    ) -> StoreResult<Hydrated>;
}

/// What the fan-out consumer keeps. Writing an entry that is there, or deleting one that
/// is not, changes nothing, so a retried batch does no harm.
#[async_trait]
pub trait FeedStore: FeedReader {
    /// Puts every entry into each of `users`' timelines.
    async fn add_to_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()>;
    /// Deletes every entry from each of `users`' timelines.
    async fn remove_from_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()>;
    /// Lists the entry among its author's recent posts.
    async fn add_recent(&self, entry: &Entry) -> StoreResult<()>;
    async fn remove_recent(&self, entry: &Entry) -> StoreResult<()>;
    /// Up to `limit` followers of `author`, in id order, after `after`.
    async fn followers(
        &self,
        author: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserId>>;
    async fn author_meta(&self, author: &UserId) -> StoreResult<AuthorMeta>;
    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<PairMarker>>;
    /// Which of `users` follow `author` now (their follow markers hold), read strongly
    /// consistent: what a fan-out checks after writing, so an unfollow that raced it wins.
    async fn following(&self, author: &UserId, users: &[UserId]) -> StoreResult<HashSet<UserId>>;
    /// Moves a follow marker from `previous` to `next`, with what that change does
    /// ([`crate::model::follow_change`]): the follower-list entry, the followee's follower
    /// count and, for a `celebrity` followee, the follower's celebrity list, all at once.
    /// Conflict: [`EDGE_MOVED`].
    async fn set_edge(
        &self,
        follower: &UserId,
        followee: &UserId,
        previous: Option<PairMarker>,
        next: PairMarker,
        celebrity: bool,
    ) -> StoreResult<()>;
    /// Lists `author` among each of `followers`' celebrities.
    async fn list_celebrity(&self, followers: &[UserId], author: &UserId) -> StoreResult<()>;
    /// Flags `author` a celebrity.
    async fn mark_celebrity(&self, author: &UserId) -> StoreResult<()>;
    /// Stores a newly published post's copy. Conflict: [`POST_EXISTS`] (a copy or a
    /// tombstone is there).
    async fn put_post(&self, post: &PostCopy) -> StoreResult<()>;
    /// Applies an edit (caption, location) of a newer version; counts are kept.
    /// Conflict: [`POST_STALE`].
    async fn update_post(&self, post: &PostCopy) -> StoreResult<()>;
    /// The live copy of a post: none when it is unknown or deleted.
    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostCopy>>;
    /// Replaces the copy with a tombstone that outlives redeliveries, so late events
    /// cannot revive the post. It keeps the post's `entry`, when it had one, so a retried
    /// deletion still knows which entries to take out.
    async fn tombstone_post(
        &self,
        post_id: &PostId,
        author_id: &UserId,
        entry: Option<&Entry>,
    ) -> StoreResult<()>;
    /// The entry a deleted post's tombstone keeps: none when the post is unknown, live, or
    /// was deleted before it was published here.
    async fn deleted_entry(&self, post_id: &PostId) -> StoreResult<Option<Entry>>;
    /// Adds an engagement event's deltas to the post copy, once per event id and
    /// `consumer`. Conflicts: [`PROCESSED`], [`POST_GONE`].
    async fn add_engagement(
        &self,
        consumer: &str,
        event_id: &EventId,
        change: &EngagementChanged,
    ) -> StoreResult<()>;
    /// Records whether `user` likes `post` as of `marker.seq`. Conflict: [`LIKE_STALE`].
    async fn set_liked(&self, user: &UserId, post: &PostId, marker: PairMarker) -> StoreResult<()>;
}
