//! The feed store in memory, for unit tests: the same rules and conflict labels as the
//! DynamoDB adapter, so use-case and consumer tests exercise the real decisions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use shutter_core::{EventId, PostId, UserId};
use shutter_directory::Author;
use shutter_events::EngagementChanged;
use shutter_store::{StoreError, StoreResult};

use super::{
    EDGE_MOVED, FeedReader, FeedStore, Hydrated, LIKE_STALE, POST_EXISTS, POST_GONE, POST_STALE,
    PROCESSED,
};
use crate::model::{AuthorMeta, Entry, FollowChange, PairMarker, PostCopy, follow_change};

/// Entries of one partition by position.
type Entries = BTreeMap<String, Entry>;

#[derive(Debug, Default)]
struct State {
    timelines: HashMap<UserId, Entries>,
    recent: HashMap<UserId, Entries>,
    /// `None`: a tombstone.
    posts: HashMap<PostId, Option<PostCopy>>,
    /// The entries tombstones keep.
    deleted_entries: HashMap<PostId, Entry>,
    edges: HashMap<(UserId, UserId), PairMarker>,
    followers: HashMap<UserId, BTreeSet<UserId>>,
    celebrities: HashMap<UserId, BTreeSet<UserId>>,
    meta: HashMap<UserId, AuthorMeta>,
    liked: HashMap<(UserId, PostId), PairMarker>,
    /// Follower lists as read before a change (tests of races).
    frozen_followers: HashMap<UserId, BTreeSet<UserId>>,
    processed: HashSet<(String, EventId)>,
    authors: HashMap<UserId, Author>,
    banned: HashSet<UserId>,
}

/// The feed store in memory.
#[derive(Debug, Default)]
pub struct MemoryFeedStore {
    state: Mutex<State>,
    down: AtomicBool,
}

fn page(entries: Option<&Entries>, before: Option<&str>, limit: usize) -> Vec<Entry> {
    entries
        .into_iter()
        .flat_map(|e| e.values().rev())
        .filter(|e| before.is_none_or(|b| e.position.as_str() < b))
        .take(limit)
        .cloned()
        .collect()
}

impl MemoryFeedStore {
    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the table is down".into()));
        }
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned lock".into()))
    }

    /// Every request fails as unavailable from now on (an outage, for tests).
    pub fn go_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }

    /// Bans an author, or lifts their ban, as the directory would hold it (test set-up).
    pub fn set_banned(&self, author: &UserId, banned: bool) {
        if let Ok(mut state) = self.state.lock() {
            if banned {
                state.banned.insert(author.clone());
            } else {
                state.banned.remove(author);
            }
        }
    }

    /// Adds an author as the directory would list them (test set-up).
    pub fn add_author(&self, author: Author) {
        if let Ok(mut state) = self.state.lock() {
            state.authors.insert(author.user_id.clone(), author);
        }
    }

    /// From now on, reading `author`'s followers answers the list as it is now, as a
    /// reader that raced later follow changes would see it (test set-up).
    pub fn freeze_followers(&self, author: &UserId) {
        if let Ok(mut state) = self.state.lock() {
            let now = state.followers.get(author).cloned().unwrap_or_default();
            state.frozen_followers.insert(author.clone(), now);
        }
    }

    /// Sets an author's follower count and celebrity flag (test set-up).
    pub fn set_meta(&self, author: &UserId, meta: AuthorMeta) {
        if let Ok(mut state) = self.state.lock() {
            state.meta.insert(author.clone(), meta);
        }
    }
}

#[async_trait]
impl FeedReader for MemoryFeedStore {
    async fn timeline(
        &self,
        user: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        Ok(page(self.state()?.timelines.get(user), before, limit))
    }

    async fn recent(
        &self,
        author: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        Ok(page(self.state()?.recent.get(author), before, limit))
    }

    async fn celebrities_followed(&self, user: &UserId) -> StoreResult<Vec<UserId>> {
        Ok(self
            .state()?
            .celebrities
            .get(user)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn hydrate(
        &self,
        viewer: &UserId,
        posts: &[PostId],
        authors: &[UserId],
    ) -> StoreResult<Hydrated> {
        let state = self.state()?;
        let mut out = Hydrated::default();
        for post in posts {
            if let Some(Some(copy)) = state.posts.get(post) {
                out.posts.insert(post.clone(), copy.clone());
            }
            if state
                .liked
                .get(&(viewer.clone(), post.clone()))
                .is_some_and(|m| m.holds)
            {
                out.liked.insert(post.clone());
            }
        }
        for author in authors {
            if let Some(a) = state.authors.get(author) {
                out.authors.insert(author.clone(), a.clone());
            }
            let pair = (viewer.clone(), author.clone());
            if state.edges.get(&pair).is_some_and(|m| m.holds) {
                out.followed.insert(author.clone());
            }
            if state.banned.contains(author) {
                out.banned.insert(author.clone());
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl FeedStore for MemoryFeedStore {
    async fn add_to_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()> {
        let mut state = self.state()?;
        for user in users {
            let timeline = state.timelines.entry(user.clone()).or_default();
            for entry in entries {
                timeline.insert(entry.position.clone(), entry.clone());
            }
        }
        Ok(())
    }

    async fn remove_from_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()> {
        let mut state = self.state()?;
        for user in users {
            if let Some(timeline) = state.timelines.get_mut(user) {
                for entry in entries {
                    timeline.remove(&entry.position);
                }
            }
        }
        Ok(())
    }

    async fn add_recent(&self, entry: &Entry) -> StoreResult<()> {
        self.state()?
            .recent
            .entry(entry.author_id.clone())
            .or_default()
            .insert(entry.position.clone(), entry.clone());
        Ok(())
    }

    async fn remove_recent(&self, entry: &Entry) -> StoreResult<()> {
        if let Some(recent) = self.state()?.recent.get_mut(&entry.author_id) {
            recent.remove(&entry.position);
        }
        Ok(())
    }

    async fn followers(
        &self,
        author: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserId>> {
        let state = self.state()?;
        let list = state
            .frozen_followers
            .get(author)
            .or_else(|| state.followers.get(author));
        Ok(list
            .into_iter()
            .flatten()
            .filter(|f| after.is_none_or(|a| *f > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn author_meta(&self, author: &UserId) -> StoreResult<AuthorMeta> {
        Ok(self.state()?.meta.get(author).copied().unwrap_or_default())
    }

    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<PairMarker>> {
        Ok(self
            .state()?
            .edges
            .get(&(follower.clone(), followee.clone()))
            .copied())
    }

    async fn following(&self, author: &UserId, users: &[UserId]) -> StoreResult<HashSet<UserId>> {
        let state = self.state()?;
        Ok(users
            .iter()
            .filter(|u| {
                state
                    .edges
                    .get(&((*u).clone(), author.clone()))
                    .is_some_and(|m| m.holds)
            })
            .cloned()
            .collect())
    }

    async fn set_edge(
        &self,
        follower: &UserId,
        followee: &UserId,
        previous: Option<PairMarker>,
        next: PairMarker,
        celebrity: bool,
    ) -> StoreResult<()> {
        let mut state = self.state()?;
        let pair = (follower.clone(), followee.clone());
        if state.edges.get(&pair).map(|m| m.seq) != previous.map(|p| p.seq) {
            return Err(StoreError::Conflict(EDGE_MOVED));
        }
        state.edges.insert(pair, next);
        let delta = match follow_change(previous, next) {
            FollowChange::Started => {
                state
                    .followers
                    .entry(followee.clone())
                    .or_default()
                    .insert(follower.clone());
                if celebrity {
                    state
                        .celebrities
                        .entry(follower.clone())
                        .or_default()
                        .insert(followee.clone());
                }
                1
            }
            FollowChange::Ended => {
                if let Some(f) = state.followers.get_mut(followee) {
                    f.remove(follower);
                }
                if let Some(c) = state.celebrities.get_mut(follower) {
                    c.remove(followee);
                }
                -1
            }
            FollowChange::Stale | FollowChange::Unchanged => 0,
        };
        state
            .meta
            .entry(followee.clone())
            .or_default()
            .follower_count += delta;
        Ok(())
    }

    async fn list_celebrity(&self, followers: &[UserId], author: &UserId) -> StoreResult<()> {
        let mut state = self.state()?;
        for f in followers {
            state
                .celebrities
                .entry(f.clone())
                .or_default()
                .insert(author.clone());
        }
        Ok(())
    }

    async fn mark_celebrity(&self, author: &UserId) -> StoreResult<()> {
        self.state()?
            .meta
            .entry(author.clone())
            .or_default()
            .celebrity = true;
        Ok(())
    }

    async fn put_post(&self, post: &PostCopy) -> StoreResult<()> {
        let mut state = self.state()?;
        if state.posts.contains_key(&post.post_id) {
            return Err(StoreError::Conflict(POST_EXISTS));
        }
        state.posts.insert(post.post_id.clone(), Some(post.clone()));
        Ok(())
    }

    async fn update_post(&self, post: &PostCopy) -> StoreResult<()> {
        let mut state = self.state()?;
        match state.posts.get_mut(&post.post_id) {
            Some(Some(copy)) if copy.version < post.version => {
                copy.caption = post.caption.clone();
                copy.location = post.location.clone();
                copy.version = post.version;
                Ok(())
            }
            _ => Err(StoreError::Conflict(POST_STALE)),
        }
    }

    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostCopy>> {
        Ok(self.state()?.posts.get(post_id).cloned().flatten())
    }

    async fn tombstone_post(
        &self,
        post_id: &PostId,
        _author_id: &UserId,
        entry: Option<&Entry>,
    ) -> StoreResult<()> {
        let mut state = self.state()?;
        state.posts.insert(post_id.clone(), None);
        match entry {
            Some(entry) => state.deleted_entries.insert(post_id.clone(), entry.clone()),
            None => state.deleted_entries.remove(post_id),
        };
        Ok(())
    }

    async fn deleted_entry(&self, post_id: &PostId) -> StoreResult<Option<Entry>> {
        let state = self.state()?;
        Ok(match state.posts.get(post_id) {
            Some(None) => state.deleted_entries.get(post_id).cloned(),
            _ => None,
        })
    }

    async fn add_engagement(
        &self,
        consumer: &str,
        event_id: &EventId,
        change: &EngagementChanged,
    ) -> StoreResult<()> {
        let mut state = self.state()?;
        let marker = (consumer.to_owned(), event_id.clone());
        if state.processed.contains(&marker) {
            return Err(StoreError::Conflict(PROCESSED));
        }
        let Some(Some(copy)) = state.posts.get_mut(&change.post_id) else {
            return Err(StoreError::Conflict(POST_GONE));
        };
        copy.like_count += change.like_delta;
        copy.comment_count += change.comment_delta;
        state.processed.insert(marker);
        Ok(())
    }

    async fn set_liked(&self, user: &UserId, post: &PostId, marker: PairMarker) -> StoreResult<()> {
        let mut state = self.state()?;
        let slot = state.liked.entry((user.clone(), post.clone()));
        match slot {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if o.get().seq >= marker.seq {
                    return Err(StoreError::Conflict(LIKE_STALE));
                }
                o.insert(marker);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(marker);
            }
        }
        Ok(())
    }
}
