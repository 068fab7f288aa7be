//! A short-lived copy of directory lookups in each Lambda environment.
//!
//! Every like of a hot post asks the directory the same two questions (is the post
//! published, is its author private). Asked of DynamoDB each time, they make the post's
//! and its author's directory items the hottest keys of the table, and double the requests
//! per like. Found answers are kept for a few seconds instead: the directory itself learns
//! of changes through Kafka, so it already lags by about as much, and a like that slips in
//! meanwhile is one the same race allowed anyway. Misses are not kept, so a newly
//! published post is likeable as soon as the directory knows it.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_directory::{Access, Author, Directory, PostRef, Standing};
use shutter_events::Envelope;
use shutter_store::StoreResult;

/// How long a found post or author is reused, unless `DIRECTORY_CACHE_MS` (the template's
/// `LikesDirectoryCacheMillis`) says otherwise.
pub const TTL: Duration = Duration::from_secs(2);

/// The reuse window from `DIRECTORY_CACHE_MS` (milliseconds), or [`TTL`] when it is unset.
pub fn ttl_from_env() -> Result<Duration, shutter_store::ConfigError> {
    match std::env::var("DIRECTORY_CACHE_MS") {
        Err(_) => Ok(TTL),
        Ok(raw) => raw
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| shutter_store::ConfigError::Invalid {
                name: "DIRECTORY_CACHE_MS",
                reason: "must be a whole number of milliseconds".to_owned(),
            }),
    }
}

/// Entries kept per kind before the oldest are dropped wholesale.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct CachedDirectory<D> {
    inner: D,
    ttl: Duration,
    posts: Mutex<HashMap<PostId, (Instant, PostRef)>>,
    authors: Mutex<HashMap<UserId, (Instant, Author)>>,
}

impl<D> CachedDirectory<D> {
    pub fn new(inner: D, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            posts: Mutex::default(),
            authors: Mutex::default(),
        }
    }
}

fn fresh<K: Hash + Eq, T: Clone>(
    map: &Mutex<HashMap<K, (Instant, T)>>,
    key: &K,
    ttl: Duration,
) -> Option<T> {
    let map = map.lock().ok()?;
    map.get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn keep<K: Hash + Eq, T>(map: &Mutex<HashMap<K, (Instant, T)>>, key: K, value: T, ttl: Duration) {
    if let Ok(mut map) = map.lock() {
        if map.len() >= CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }
}

#[async_trait]
impl<D: Directory> Directory for CachedDirectory<D> {
    async fn author(&self, user_id: &UserId) -> StoreResult<Option<Author>> {
        if let Some(hit) = fresh(&self.authors, user_id, self.ttl) {
            return Ok(Some(hit));
        }
        let found = self.inner.author(user_id).await?;
        if let Some(author) = &found {
            keep(&self.authors, user_id.clone(), author.clone(), self.ttl);
        }
        Ok(found)
    }

    async fn author_by_username(&self, username: &str) -> StoreResult<Option<Author>> {
        self.inner.author_by_username(username).await
    }

    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostRef>> {
        if let Some(hit) = fresh(&self.posts, post_id, self.ttl) {
            return Ok(Some(hit));
        }
        let found = self.inner.post(post_id).await?;
        if let Some(post) = &found {
            keep(&self.posts, post_id.clone(), post.clone(), self.ttl);
        }
        Ok(found)
    }

    /// Not kept: a block or an unfollow takes effect as soon as the directory knows it.
    async fn access(&self, viewer: &UserId, author: &UserId) -> StoreResult<Access> {
        self.inner.access(viewer, author).await
    }

    /// Not kept either, for the same reason.
    async fn blocked_among(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        self.inner.blocked_among(viewer, others).await
    }

    /// Not kept: a deletion or suspension refuses writes at once, whatever the reuse
    /// window.
    async fn account_standing(&self, user_id: &UserId) -> StoreResult<Standing> {
        self.inner.account_standing(user_id).await
    }

    /// Passed through: the cache keeps only reads, and lags by at most [`TTL`].
    async fn apply(&self, event: &Envelope) -> StoreResult<()> {
        self.inner.apply(event).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutter_directory::MemoryDirectory;

    fn ann(id: &UserId, private: bool) -> Author {
        Author {
            user_id: id.clone(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private,
            avatar_key: None,
            version: 0,
            private_since: None,
        }
    }

    #[tokio::test]
    async fn found_answers_are_reused_for_the_ttl_and_misses_never() {
        let (a, p) = (UserId::generate(), PostId::generate());
        let cached = CachedDirectory::new(MemoryDirectory::default(), Duration::from_secs(60));
        assert_eq!(cached.post(&p).await.unwrap(), None);
        cached.inner.add_post(PostRef {
            post_id: p.clone(),
            author_id: a.clone(),
        });
        assert!(
            cached.post(&p).await.unwrap().is_some(),
            "a miss is not kept"
        );
        cached.inner.add_author(ann(&a, false));
        assert!(!cached.author(&a).await.unwrap().unwrap().private);
        cached.inner.add_author(ann(&a, true));
        assert!(
            !cached.author(&a).await.unwrap().unwrap().private,
            "kept for the ttl"
        );

        let expiring = CachedDirectory::new(MemoryDirectory::default(), Duration::ZERO);
        expiring.inner.add_author(ann(&a, false));
        expiring.author(&a).await.unwrap();
        expiring.inner.add_author(ann(&a, true));
        assert!(
            expiring.author(&a).await.unwrap().unwrap().private,
            "read again after the ttl"
        );
    }
}
