//! An in-memory [`CommentsStore`] with the same conditions and conflict labels as the
//! DynamoDB adapter, for unit tests; it records the events it was given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use shutter_core::{CommentId, PostId, UserId};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{
    ACCOUNT_DELETED, ALREADY_LIKED, COMMENT_EXISTS, COMMENT_GONE, Claimed, CommentsReader,
    CommentsStore, Idempotency, IdempotencyKeys, KEY_REUSED, NOT_LIKED, NOTHING_TO_REMOVE,
    PARENT_GONE, sort_key,
};
use crate::model::{Comment, Removal};

#[derive(Debug, Default)]
pub struct MemoryCommentsStore {
    state: Mutex<State>,
}

/// Where a comment is: (post, sort key), ordered as the table orders it.
type At = (PostId, String);

#[derive(Debug, Default)]
struct State {
    comments: BTreeMap<At, Comment>,
    /// comment id -> where it is, or None when deleted (its tombstone)
    lookups: HashMap<CommentId, Option<At>>,
    /// (comment, user) of each like
    likes: HashSet<(CommentId, UserId)>,
    events: Vec<Envelope>,
    /// Every call fails as unavailable storage would (for retry tests).
    unavailable: bool,
    /// Deleted accounts (the directory's tombstones, as the transactions check them).
    gone: HashSet<UserId>,
    /// (author, key) -> (request hash, the comment accepted).
    keys: HashMap<(UserId, String), (String, Comment)>,
}

fn at(c: &Comment) -> At {
    (c.post_id.clone(), sort_key(c))
}

/// Up to `limit` of `ids`, in id order, after `after`.
fn page_of(mut ids: Vec<CommentId>, after: Option<&CommentId>, limit: usize) -> Vec<CommentId> {
    ids.sort();
    ids.retain(|id| after.is_none_or(|a| id > a));
    ids.truncate(limit);
    ids
}

impl MemoryCommentsStore {
    fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.unavailable {
            return Err(StoreError::Unavailable("storage is down (test)".into()));
        }
        Ok(state)
    }

    fn peek(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The events written so far, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.peek().events.clone()
    }

    /// Every stored comment, in thread order.
    pub fn comments(&self) -> Vec<Comment> {
        self.peek().comments.values().cloned().collect()
    }

    pub fn comment_count(&self) -> usize {
        self.peek().comments.len()
    }

    /// Makes every call fail as unavailable (true) or work again (false).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.peek().unavailable = unavailable;
    }

    /// Marks `user`'s account deleted, as its tombstone in the directory would (test
    /// set-up).
    pub fn account_deleted(&self, user: &UserId) {
        self.peek().gone.insert(user.clone());
    }

    /// Stores a comment directly (test set-up), without an event.
    pub fn add(&self, c: &Comment) {
        let mut st = self.peek();
        st.lookups.insert(c.id.clone(), Some(at(c)));
        st.comments.insert(at(c), c.clone());
    }
}

#[async_trait]
impl CommentsReader for MemoryCommentsStore {
    async fn comment(&self, id: &CommentId) -> StoreResult<Option<Comment>> {
        let st = self.state()?;
        Ok(st
            .lookups
            .get(id)
            .cloned()
            .flatten()
            .and_then(|k| st.comments.get(&k).cloned()))
    }

    async fn page(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: u16,
    ) -> StoreResult<(Vec<Comment>, Option<String>)> {
        let st = self.state()?;
        let limit = usize::from(limit);
        let page: Vec<(&At, &Comment)> = st
            .comments
            .iter()
            .filter(|((post, sk), _)| post == post_id && after.is_none_or(|a| sk.as_str() > a))
            .take(limit)
            .collect();
        // As DynamoDB does: a full page says where it stopped, even if nothing follows.
        let next = if page.len() == limit {
            page.last().map(|((_, sk), _)| sk.clone())
        } else {
            None
        };
        Ok((page.into_iter().map(|(_, c)| c.clone()).collect(), next))
    }

    async fn liked_by(
        &self,
        user_id: &UserId,
        comment_ids: &[CommentId],
    ) -> StoreResult<HashSet<CommentId>> {
        let st = self.state()?;
        Ok(comment_ids
            .iter()
            .filter(|id| st.likes.contains(&((*id).clone(), user_id.clone())))
            .cloned()
            .collect())
    }

    async fn replies(&self, parent: &Comment) -> StoreResult<Vec<Comment>> {
        Ok(self
            .state()?
            .comments
            .values()
            .filter(|c| c.reply_to.as_ref() == Some(parent.thread()) && c.post_id == parent.post_id)
            .cloned()
            .collect())
    }

    async fn by_author(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>> {
        let ids = self
            .state()?
            .comments
            .values()
            .filter(|c| c.author.id == *user_id)
            .map(|c| c.id.clone())
            .collect();
        Ok(page_of(ids, after, limit))
    }

    async fn liked_comments(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>> {
        let ids = self
            .state()?
            .likes
            .iter()
            .filter(|(_, u)| u == user_id)
            .map(|(c, _)| c.clone())
            .collect();
        Ok(page_of(ids, after, limit))
    }
}

#[async_trait]
impl CommentsStore for MemoryCommentsStore {
    async fn insert(&self, c: &Comment, event: &Envelope) -> StoreResult<()> {
        let mut st = self.state()?;
        if st.lookups.contains_key(&c.id) {
            return Err(StoreError::Conflict(COMMENT_EXISTS));
        }
        if st.gone.contains(&c.author.id) {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        if let Some(parent) = &c.reply_to {
            let alive =
                matches!(st.lookups.get(parent), Some(Some((post, _))) if *post == c.post_id);
            if !alive {
                return Err(StoreError::Conflict(PARENT_GONE));
            }
        }
        st.lookups.insert(c.id.clone(), Some(at(c)));
        st.comments.insert(at(c), c.clone());
        st.events.push(event.clone());
        Ok(())
    }

    async fn edit(&self, updated: &Comment, event: &Envelope) -> StoreResult<()> {
        let mut st = self.state()?;
        let gone = st.gone.contains(&updated.author.id);
        let current = st
            .comments
            .get_mut(&at(updated))
            .filter(|current| current.author.id == updated.author.id)
            .ok_or(StoreError::Conflict(COMMENT_GONE))?;
        if gone {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        current.text = updated.text.clone();
        current.hashtags = updated.hashtags.clone();
        current.mentions = updated.mentions.clone();
        current.edited_at = updated.edited_at.clone();
        st.events.push(event.clone());
        Ok(())
    }

    async fn remove(&self, id: &CommentId, removal: &Removal) -> StoreResult<()> {
        let mut st = self.state()?;
        let Some(Some(at)) = st.lookups.get(id).cloned() else {
            return Err(StoreError::Conflict(NOTHING_TO_REMOVE));
        };
        match st.comments.get_mut(&at) {
            Some(c) if c.removed.is_none() => {
                c.removed = Some(removal.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict(NOTHING_TO_REMOVE)),
        }
    }

    async fn delete(&self, c: &Comment, event: &Envelope) -> StoreResult<()> {
        let mut st = self.state()?;
        if st.comments.remove(&at(c)).is_none() {
            return Err(StoreError::Conflict(COMMENT_GONE));
        }
        st.lookups.insert(c.id.clone(), None);
        st.likes.retain(|(id, _)| *id != c.id);
        st.events.push(event.clone());
        Ok(())
    }

    async fn like(&self, c: &Comment, user_id: &UserId, event: &Envelope) -> StoreResult<()> {
        let mut st = self.state()?;
        if !st.comments.contains_key(&at(c)) {
            return Err(StoreError::Conflict(COMMENT_GONE));
        }
        if !st.likes.contains(&(c.id.clone(), user_id.clone())) && st.gone.contains(user_id) {
            return Err(StoreError::Conflict(ACCOUNT_DELETED));
        }
        if !st.likes.insert((c.id.clone(), user_id.clone())) {
            return Err(StoreError::Conflict(ALREADY_LIKED));
        }
        if let Some(stored) = st.comments.get_mut(&at(c)) {
            stored.like_count += 1;
        }
        st.events.push(event.clone());
        Ok(())
    }

    async fn unlike(&self, c: &Comment, user_id: &UserId, event: &Envelope) -> StoreResult<()> {
        let mut st = self.state()?;
        if !st.comments.contains_key(&at(c)) {
            return Err(StoreError::Conflict(COMMENT_GONE));
        }
        if !st.likes.remove(&(c.id.clone(), user_id.clone())) {
            return Err(StoreError::Conflict(NOT_LIKED));
        }
        if let Some(stored) = st.comments.get_mut(&at(c)) {
            stored.like_count = stored.like_count.saturating_sub(1);
        }
        st.events.push(event.clone());
        Ok(())
    }

    async fn forget_like(&self, user_id: &UserId, id: &CommentId) -> StoreResult<()> {
        self.state()?.likes.remove(&(id.clone(), user_id.clone()));
        Ok(())
    }

    async fn purge_post(&self, post_id: &PostId, limit: usize) -> StoreResult<usize> {
        let mut st = self.state()?;
        let gone: Vec<(At, CommentId)> = st
            .comments
            .iter()
            .filter(|((post, _), _)| post == post_id)
            .take(limit)
            .map(|(at, c)| (at.clone(), c.id.clone()))
            .collect();
        for (at, id) in &gone {
            st.comments.remove(at);
            st.lookups.remove(id);
        }
        let gone: Vec<CommentId> = gone.into_iter().map(|(_, id)| id).collect();
        st.likes.retain(|(id, _)| !gone.contains(id));
        Ok(gone.len())
    }
}

#[async_trait]
impl IdempotencyKeys for MemoryCommentsStore {
    async fn claim(
        &self,
        author: &UserId,
        idempotency: &Idempotency,
        comment: &Comment,
    ) -> StoreResult<Claimed> {
        let mut st = self.state()?;
        let slot = (author.clone(), idempotency.key.clone());
        match st.keys.get(&slot) {
            Some((hash, first)) if *hash == idempotency.request_hash => {
                Ok(Claimed::Replayed(Box::new(first.clone())))
            }
            Some(_) => Err(StoreError::Conflict(KEY_REUSED)),
            None => {
                st.keys
                    .insert(slot, (idempotency.request_hash.clone(), comment.clone()));
                Ok(Claimed::New)
            }
        }
    }
}
