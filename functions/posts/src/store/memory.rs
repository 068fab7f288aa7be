//! The in-memory [`PostsStore`] for unit tests: the same rules, conditions and conflict
//! labels as the DynamoDB adapter, and every event it committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{
    ACCOUNT_DELETED, Idempotency, Index, IndexEntry, IndexPage, KEY_REUSED, MARKER_CHANGED,
    POST_GONE, PostsStore, STALE, Stored, Tally,
};
use crate::model::{Marker, MarkerId, Post, PostStatus};

#[derive(Debug, Default)]
struct State {
    posts: BTreeMap<PostId, Post>,
    /// Author -> their posts and each one's status.
    authors: BTreeMap<UserId, BTreeMap<PostId, PostStatus>>,
    tags: BTreeMap<String, BTreeSet<PostId>>,
    /// (author, key) -> (post, request hash).
    idempotency: HashMap<(UserId, String), (PostId, String)>,
    markers: HashMap<(PostId, MarkerId), Marker>,
    events: Vec<Envelope>,
    /// Deleted accounts (the directory's tombstones, as the transactions check them).
    gone: HashSet<UserId>,
}

impl State {
    fn list(&mut self, post: &Post) {
        self.authors
            .entry(post.author_id.clone())
            .or_default()
            .insert(post.id.clone(), post.status);
    }

    fn tags_of(post: &Post) -> BTreeSet<String> {
        if post.status == PostStatus::Published {
            post.hashtags.iter().cloned().collect()
        } else {
            BTreeSet::new()
        }
    }

    fn stale(&self, post: &Post) -> bool {
        self.posts.get(&post.id).map(|p| p.version) != Some(post.version)
    }
}

/// Posts in memory.
#[derive(Debug, Default)]
pub struct MemoryPostsStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
}

impl MemoryPostsStore {
    fn state(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is switched off".into()));
        }
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned lock".into()))
    }

    /// Every later call fails as unavailable (or works again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Stores `post` and lists it as the real store would (test set-up).
    pub fn insert(&self, post: Post) {
        if let Ok(mut state) = self.state.lock() {
            state.list(&post);
            for tag in State::tags_of(&post) {
                state.tags.entry(tag).or_default().insert(post.id.clone());
            }
            state.posts.insert(post.id.clone(), post);
        }
    }

    /// Marks `user`'s account deleted, as its tombstone in the directory would (test
    /// set-up).
    pub fn account_deleted(&self, user: &UserId) {
        if let Ok(mut state) = self.state.lock() {
            state.gone.insert(user.clone());
        }
    }

    /// The post as stored now.
    pub fn stored(&self, id: &PostId) -> Option<Post> {
        self.state.lock().ok()?.posts.get(id).cloned()
    }

    /// How many posts are stored.
    pub fn count(&self) -> usize {
        self.state.lock().map(|s| s.posts.len()).unwrap_or(0)
    }

    /// Every event committed so far, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.state
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    /// The posts a hashtag lists.
    pub fn tagged(&self, tag: &str) -> Vec<PostId> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.tags.get(tag).map(|t| t.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

#[async_trait]
impl PostsStore for MemoryPostsStore {
    async fn post(&self, id: &PostId) -> StoreResult<Option<Post>> {
        Ok(self.state()?.posts.get(id).cloned())
    }

    async fn posts(&self, ids: &[PostId]) -> StoreResult<Vec<Post>> {
        let state = self.state()?;
        Ok(ids
            .iter()
            .filter_map(|id| state.posts.get(id).cloned())
            .collect())
    }

    async fn create(
        &self,
        post: &Post,
        event: &Envelope,
        idempotency: Option<&Idempotency>,
    ) -> StoreResult<Stored> {
        let mut state = self.state()?;
        if state.gone.contains(&post.author_id) {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        if let Some(i) = idempotency {
            let slot = (post.author_id.clone(), i.key.clone());
            if let Some((first, hash)) = state.idempotency.get(&slot) {
                return if *hash == i.request_hash {
                    Ok(Stored::Replayed(first.clone()))
                } else {
                    Err(StoreError::Conflict(KEY_REUSED))
                };
            }
            state
                .idempotency
                .insert(slot, (post.id.clone(), i.request_hash.clone()));
        }
        state.list(post);
        state.posts.insert(post.id.clone(), post.clone());
        state.events.push(event.clone());
        Ok(Stored::New)
    }

    async fn save(&self, before: &Post, after: &Post, events: &[Envelope]) -> StoreResult<()> {
        let mut state = self.state()?;
        if state.stale(before) {
            return Err(StoreError::Conflict(STALE));
        }
        if state.gone.contains(&after.author_id) {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        let (old, new) = (State::tags_of(before), State::tags_of(after));
        for gone in old.difference(&new) {
            if let Some(listed) = state.tags.get_mut(gone) {
                listed.remove(&after.id);
            }
        }
        for added in new.difference(&old) {
            state
                .tags
                .entry(added.clone())
                .or_default()
                .insert(after.id.clone());
        }
        state.list(after);
        // The counters are the store's own: a save never writes back the counts it read.
        let mut saved = after.clone();
        if let Some(stored) = state.posts.get(&after.id) {
            (saved.like_count, saved.comment_count) = (stored.like_count, stored.comment_count);
        }
        state.posts.insert(after.id.clone(), saved);
        state.events.extend(events.iter().cloned());
        Ok(())
    }

    async fn delete(&self, post: &Post, event: &Envelope) -> StoreResult<()> {
        let mut state = self.state()?;
        if state.stale(post) {
            return Err(StoreError::Conflict(STALE));
        }
        state.posts.remove(&post.id);
        if let Some(listed) = state.authors.get_mut(&post.author_id) {
            listed.remove(&post.id);
        }
        for tag in &post.hashtags {
            if let Some(listed) = state.tags.get_mut(tag) {
                listed.remove(&post.id);
            }
        }
        state.events.push(event.clone());
        Ok(())
    }

    async fn page(
        &self,
        index: &Index,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<IndexPage> {
        let state = self.state()?;
        let all: Vec<IndexEntry> = match index {
            Index::Author(user) => state
                .authors
                .get(user)
                .map(|listed| {
                    listed
                        .iter()
                        .map(|(id, status)| IndexEntry {
                            post_id: id.clone(),
                            status: Some(*status),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Index::Tag(tag) => state
                .tags
                .get(tag)
                .map(|listed| {
                    listed
                        .iter()
                        .map(|id| IndexEntry {
                            post_id: id.clone(),
                            status: None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        let mut entries: Vec<IndexEntry> = all
            .into_iter()
            .rev()
            .filter(|e| after.is_none_or(|a| e.post_id.as_str() < a))
            .take(limit + 1)
            .collect();
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = match (more, entries.last()) {
            (true, Some(last)) => Some(last.post_id.to_string()),
            _ => None,
        };
        Ok(IndexPage { entries, next })
    }

    async fn drop_entry(&self, index: &Index, post: &PostId) -> StoreResult<()> {
        let mut state = self.state()?;
        match index {
            Index::Author(user) => {
                if let Some(listed) = state.authors.get_mut(user) {
                    listed.remove(post);
                }
            }
            Index::Tag(tag) => {
                if let Some(listed) = state.tags.get_mut(tag) {
                    listed.remove(post);
                }
            }
        }
        Ok(())
    }

    async fn liked_by(&self, user: &UserId, posts: &[PostId]) -> StoreResult<HashSet<PostId>> {
        let state = self.state()?;
        let like = MarkerId::Like(user.clone());
        Ok(posts
            .iter()
            .filter(|id| {
                state
                    .markers
                    .get(&((*id).clone(), like.clone()))
                    .is_some_and(|m| m.counted)
            })
            .cloned()
            .collect())
    }

    async fn markers(
        &self,
        post: &PostId,
        markers: &[MarkerId],
    ) -> StoreResult<HashMap<MarkerId, Marker>> {
        let state = self.state()?;
        Ok(markers
            .iter()
            .filter_map(|m| {
                let stored = state.markers.get(&(post.clone(), m.clone()))?;
                Some((m.clone(), *stored))
            })
            .collect())
    }

    async fn tally(&self, tally: &Tally) -> StoreResult<()> {
        let mut state = self.state()?;
        let moves = tally.like_delta != 0 || tally.comment_delta != 0;
        if moves && !state.posts.contains_key(&tally.post_id) {
            return Err(StoreError::Conflict(POST_GONE));
        }
        for m in &tally.markers {
            let stored = state
                .markers
                .get(&(tally.post_id.clone(), m.marker.clone()))
                .map(|s| s.seq);
            if stored != m.previous {
                return Err(StoreError::Conflict(MARKER_CHANGED));
            }
        }
        for m in &tally.markers {
            state.markers.insert(
                (tally.post_id.clone(), m.marker.clone()),
                Marker {
                    seq: m.seq,
                    counted: m.counted,
                },
            );
        }
        if let Some(post) = state.posts.get_mut(&tally.post_id) {
            post.like_count += tally.like_delta;
            post.comment_count += tally.comment_delta;
        }
        state.events.extend(tally.event.iter().cloned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_events::Event;

    use super::*;
    use crate::store::MarkerWrite;
    use crate::testing::{app, post, user};

    #[tokio::test]
    async fn a_save_keeps_the_counts_tallied_since_the_post_was_read() {
        let app = app();
        let ann = user(&app, "ann", false);
        let before = post(&app, &ann, PostStatus::Published);
        // GIVEN a like is tallied after the post was read
        let tally = Tally {
            post_id: before.id.clone(),
            markers: vec![MarkerWrite {
                marker: MarkerId::Like(ann.clone()),
                previous: None,
                seq: 1,
                counted: true,
            }],
            like_delta: 1,
            comment_delta: 0,
            event: None,
        };
        app.store.tally(&tally).await.unwrap();
        // WHEN the post read before is saved
        let mut after = before.clone();
        after.version += 1;
        after.caption = "edited".into();
        app.store.save(&before, &after, &[]).await.unwrap();
        // THEN the like still counts; a tally over a stale marker is refused
        assert_eq!(app.store.stored(&before.id).unwrap().like_count, 1);
        assert!(matches!(
            app.store.tally(&tally).await,
            Err(StoreError::Conflict(MARKER_CHANGED))
        ));
        // and a save over the old version is stale.
        assert!(matches!(
            app.store.save(&before, &after, &[]).await,
            Err(StoreError::Conflict(STALE))
        ));
        assert!(
            app.store
                .events()
                .iter()
                .all(|e| !matches!(e.event, Event::PostUpdated(_)))
        );
    }
}
