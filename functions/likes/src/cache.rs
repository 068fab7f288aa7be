//! A short-lived copy of directory lookups in each Lambda environment.
//!
//! Every like of a hot post asks the directory the same two questions (is the post
//! published, is its author private). Asked of DynamoDB each time, they make the post's
//! and its author's directory items the hottest keys of the table, and double the requests
//! per like. Found answers are kept for a few seconds instead: the directory itself learns
//! of changes through Kafka, so it already lags by about as much, and a like that slips in
//! meanwhile is one the same race allowed anyway. Misses are not kept, so a newly
//! published post is likeable as soon as the directory knows it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_directory::legacy::{Author, Directory, PostRef};
use shutter_events::legacy::Envelope;

/// How long a found post or author is reused.
pub const TTL: Duration = Duration::from_secs(2);

/// Entries kept per kind before the oldest are dropped wholesale.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct CachedDirectory<D> {
    inner: D,
    ttl: Duration,
    posts: Mutex<HashMap<String, (Instant, PostRef)>>,
    authors: Mutex<HashMap<String, (Instant, Author)>>,
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

fn fresh<T: Clone>(
    map: &Mutex<HashMap<String, (Instant, T)>>,
    key: &str,
    ttl: Duration,
) -> Option<T> {
    let map = map.lock().ok()?;
    map.get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn keep<T>(map: &Mutex<HashMap<String, (Instant, T)>>, key: &str, value: T, ttl: Duration) {
    if let Ok(mut map) = map.lock() {
        if map.len() >= CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (Instant::now(), value));
    }
}

#[async_trait]
impl<D: Directory> Directory for CachedDirectory<D> {
    /// Not kept: a block or an unfollow takes effect as soon as the directory knows it.
    async fn access(
        &self,
        viewer: &str,
        author: &str,
    ) -> Result<shutter_directory::legacy::Access, ApiError> {
        self.inner.access(viewer, author).await
    }

    async fn author(&self, user_id: &str) -> Result<Option<Author>, ApiError> {
        if let Some(hit) = fresh(&self.authors, user_id, self.ttl) {
            return Ok(Some(hit));
        }
        let found = self.inner.author(user_id).await?;
        if let Some(author) = &found {
            keep(&self.authors, user_id, author.clone(), self.ttl);
        }
        Ok(found)
    }

    async fn author_by_username(&self, username: &str) -> Result<Option<Author>, ApiError> {
        self.inner.author_by_username(username).await
    }

    async fn post(&self, post_id: &str) -> Result<Option<PostRef>, ApiError> {
        if let Some(hit) = fresh(&self.posts, post_id, self.ttl) {
            return Ok(Some(hit));
        }
        let found = self.inner.post(post_id).await?;
        if let Some(post) = &found {
            keep(&self.posts, post_id, post.clone(), self.ttl);
        }
        Ok(found)
    }

    async fn apply(&self, event: &Envelope) -> Result<(), ApiError> {
        self.inner.apply(event).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutter_directory::legacy::MemoryDirectory;

    fn ann(private: bool) -> Author {
        Author {
            user_id: "a".into(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private,
            avatar_key: None,
        }
    }

    #[tokio::test]
    async fn found_answers_are_reused_for_the_ttl_and_misses_never() {
        let cached = CachedDirectory::new(MemoryDirectory::default(), Duration::from_secs(60));
        assert_eq!(cached.post("p").await.unwrap(), None);
        cached.inner.add_post(PostRef {
            post_id: "p".into(),
            author_id: "a".into(),
        });
        assert!(
            cached.post("p").await.unwrap().is_some(),
            "a miss is not kept"
        );
        cached.inner.add_author(ann(false));
        assert!(!cached.author("a").await.unwrap().unwrap().private);
        cached.inner.add_author(ann(true));
        assert!(
            !cached.author("a").await.unwrap().unwrap().private,
            "kept for the ttl"
        );

        let expiring = CachedDirectory::new(MemoryDirectory::default(), Duration::ZERO);
        expiring.inner.add_author(ann(false));
        expiring.author("a").await.unwrap();
        expiring.inner.add_author(ann(true));
        assert!(
            expiring.author("a").await.unwrap().unwrap().private,
            "read again after the ttl"
        );
    }
}
