//! An in-memory store with the DynamoDB adapter's conditions and conflict labels, for unit
//! tests: use cases and consumers decide on it exactly as on the real table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{ACCOUNT_DELETED, ENTRY_PREFIX, LikesCleanup, LikesExport, LikesStore, STALE};
use crate::model::{LikeState, LikerEntry};

#[derive(Debug, Default)]
pub struct MemoryLikesStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    likes: HashMap<(PostId, UserId), LikeState>,
    /// (post id, position) -> entry
    entries: BTreeMap<(PostId, String), LikerEntry>,
    /// (user id, post id): the posts each user has a like state on.
    index: BTreeSet<(UserId, PostId)>,
    gone: HashSet<UserId>,
    events: Vec<Envelope>,
}

fn position(entry: &str) -> String {
    format!("{ENTRY_PREFIX}{entry}")
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("poisoned lock".into())
}

impl MemoryLikesStore {
    fn state(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(poisoned)
    }

    /// Every event committed so far, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.state
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    /// Items left that concern `post_id` (states and entries).
    pub fn items_of_post(&self, post_id: &PostId) -> usize {
        self.state
            .lock()
            .map(|st| {
                st.likes.keys().filter(|(p, _)| p == post_id).count()
                    + st.entries.keys().filter(|(p, _)| p == post_id).count()
            })
            .unwrap_or_default()
    }
}

fn stored_seq(st: &State, post_id: &PostId, user_id: &UserId) -> Option<u64> {
    st.likes
        .get(&(post_id.clone(), user_id.clone()))
        .map(|s| s.seq)
}

#[async_trait]
impl LikesStore for MemoryLikesStore {
    async fn state(&self, post_id: &PostId, user_id: &UserId) -> StoreResult<Option<LikeState>> {
        Ok(self
            .state()?
            .likes
            .get(&(post_id.clone(), user_id.clone()))
            .cloned())
    }

    async fn commit(
        &self,
        previous: Option<&LikeState>,
        next: &LikeState,
        event: &Envelope,
    ) -> StoreResult<()> {
        let mut st = self.state()?;
        // The conditions in the adapter's order: the state's first, then the account's.
        if stored_seq(&st, &next.post_id, &next.user_id) != previous.map(|p| p.seq) {
            return Err(StoreError::Conflict(STALE));
        }
        if next.liked && st.gone.contains(&next.user_id) {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        if let Some(entry) = previous.and_then(|p| p.entry.as_deref()) {
            st.entries.remove(&(next.post_id.clone(), position(entry)));
        }
        if let Some(entry) = &next.entry {
            let position = position(entry);
            st.entries.insert(
                (next.post_id.clone(), position.clone()),
                LikerEntry {
                    position,
                    user_id: next.user_id.clone(),
                    username: next.username.clone(),
                    liked_at: next.at.clone(),
                },
            );
            st.index
                .insert((next.user_id.clone(), next.post_id.clone()));
        }
        st.likes
            .insert((next.post_id.clone(), next.user_id.clone()), next.clone());
        st.events.push(event.clone());
        Ok(())
    }

    async fn likers(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<LikerEntry>> {
        Ok(self
            .state()?
            .entries
            .iter()
            .rev()
            .filter(|((p, pos), _)| p == post_id && after.is_none_or(|a| pos.as_str() < a))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

#[async_trait]
impl LikesCleanup for MemoryLikesStore {
    async fn mark_gone(&self, user_id: &UserId) -> StoreResult<()> {
        self.state()?.gone.insert(user_id.clone());
        Ok(())
    }

    async fn posts_liked_by(&self, user_id: &UserId, limit: usize) -> StoreResult<Vec<PostId>> {
        Ok(self
            .state()?
            .index
            .iter()
            .filter(|(u, _)| u == user_id)
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn erase(&self, current: &LikeState, event: Option<&Envelope>) -> StoreResult<()> {
        let mut st = self.state()?;
        if stored_seq(&st, &current.post_id, &current.user_id) != Some(current.seq) {
            return Err(StoreError::Conflict(STALE));
        }
        st.likes
            .remove(&(current.post_id.clone(), current.user_id.clone()));
        st.index
            .remove(&(current.user_id.clone(), current.post_id.clone()));
        if let Some(entry) = &current.entry {
            st.entries
                .remove(&(current.post_id.clone(), position(entry)));
        }
        if let Some(event) = event {
            st.events.push(event.clone());
        }
        Ok(())
    }

    async fn forget(&self, user_id: &UserId, post_id: &PostId) -> StoreResult<()> {
        self.state()?
            .index
            .remove(&(user_id.clone(), post_id.clone()));
        Ok(())
    }

    async fn delete_post_likes(&self, post_id: &PostId, limit: usize) -> StoreResult<usize> {
        let mut st = self.state()?;
        // Up to `limit` states (each with its index item), then up to `limit` entries.
        let states: Vec<(PostId, UserId)> = st
            .likes
            .keys()
            .filter(|(p, _)| p == post_id)
            .take(limit)
            .cloned()
            .collect();
        let mut deleted = 0;
        for (post, user) in states {
            st.likes.remove(&(post.clone(), user.clone()));
            st.index.remove(&(user, post));
            deleted += 2;
        }
        if deleted > 0 {
            return Ok(deleted);
        }
        let entries: Vec<(PostId, String)> = st
            .entries
            .keys()
            .filter(|(p, _)| p == post_id)
            .take(limit)
            .cloned()
            .collect();
        for key in entries {
            st.entries.remove(&key);
            deleted += 1;
        }
        Ok(deleted)
    }
}

#[async_trait]
impl LikesExport for MemoryLikesStore {
    async fn likes_of(
        &self,
        user_id: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<LikeState>, Option<String>)> {
        let st = self.state()?;
        let posts: Vec<&PostId> = st
            .index
            .iter()
            .filter(|(u, p)| u == user_id && after.is_none_or(|a| p.as_str() > a))
            .map(|(_, p)| p)
            .take(limit)
            .collect();
        let next = (posts.len() >= limit)
            .then(|| posts.last().map(|p| p.to_string()))
            .flatten();
        let likes = posts
            .iter()
            .filter_map(|p| st.likes.get(&((*p).clone(), user_id.clone())))
            .filter(|s| s.liked)
            .cloned()
            .collect();
        Ok((likes, next))
    }
}
