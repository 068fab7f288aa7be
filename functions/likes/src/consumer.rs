//! `likes-directory-events`: keeps the directory of authors and posts from the identity,
//! profiles and posts topics, and drops the likes of what is deleted. Every effect is
//! idempotent (directory writes are, deletes are, and erasing a like is conditional on its
//! `seq`), so Kafka's redeliveries do no harm and no marker per event is needed.

use serde::Deserialize;
use shutter_core::ApiError;
use shutter_directory::legacy::Directory;
use shutter_events::legacy::Envelope;
use shutter_events::{KafkaEvent, PoisonQueue};

use crate::store::{Commit, LikesCleanup, LikesStore};

/// Likes erased per read of the user's index.
const ERASE_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
struct UserGone {
    user_id: String,
}

#[derive(Debug, Deserialize)]
struct PostGone {
    post_id: String,
}

/// Applies every record of an MSK batch; poison records go to the DLQ, anything
/// retryable fails the batch.
pub async fn directory_events<D, S, Q>(
    dir: &D,
    store: &S,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError>
where
    D: Directory,
    S: LikesStore + LikesCleanup,
    Q: PoisonQueue,
{
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply(dir, store, &envelope).await
    })
    .await
}

/// One event's effects.
pub async fn apply<D, S>(dir: &D, store: &S, envelope: &Envelope) -> Result<(), ApiError>
where
    D: Directory,
    S: LikesStore + LikesCleanup,
{
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    match envelope.event_type.as_str() {
        "UserDeleted" => {
            let user: UserGone = envelope.data().map_err(bad)?;
            // First refuse new likes, then erase the ones made, then forget the author.
            store.mark_gone(&user.user_id).await?;
            let erased = erase_likes_of(store, &user.user_id, envelope).await?;
            dir.apply(envelope).await?;
            tracing::info!(event_id = %envelope.id, user_id = %user.user_id, erased, "likes of a deleted account erased");
        }
        "PostDeleted" => {
            let post: PostGone = envelope.data().map_err(bad)?;
            // First hide the post (no new likes), then drop its likes: no events, the
            // post and its counters are gone.
            dir.apply(envelope).await?;
            let deleted = store.delete_post_likes(&post.post_id).await?;
            tracing::info!(event_id = %envelope.id, post_id = %post.post_id, deleted, "likes of a deleted post dropped");
        }
        _ => dir.apply(envelope).await?,
    }
    Ok(())
}

/// Erases every like `user_id` has, emitting `LikeRemoved` for those that held so the
/// posts' counters drop. Returns how many likes were erased.
async fn erase_likes_of<S: LikesStore + LikesCleanup>(
    store: &S,
    user_id: &str,
    cause: &Envelope,
) -> Result<usize, ApiError> {
    let mut erased = 0;
    loop {
        let posts = store.posts_liked_by(user_id, ERASE_PAGE).await?;
        if posts.is_empty() {
            return Ok(erased);
        }
        for post_id in posts {
            let mut done = false;
            for _ in 0..5 {
                let Some(current) = store.state(&post_id, user_id).await? else {
                    store.forget(user_id, &post_id).await?;
                    done = true;
                    break;
                };
                let event = current.liked.then(|| {
                    let mut removed = current.clone();
                    removed.liked = false;
                    removed.seq += 1;
                    removed.entry = None;
                    removed.at = shutter_core::now_rfc3339();
                    removed.event(cause.actor.as_deref(), &cause.correlation_id)
                });
                if store.erase(&current, event.as_ref()).await? == Commit::Done {
                    erased += usize::from(current.liked);
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(ApiError::internal(std::io::Error::other(format!(
                    "the like of post {post_id} by {user_id} kept changing; retry"
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{LikeRequest, transition};
    use crate::store::memory::MemoryLikesStore;
    use base64::Engine;
    use shutter_directory::legacy::{MemoryDirectory, Viewer, visible_post};
    use shutter_events::{KafkaRecord, MemoryPoisonQueue};

    fn event(kind: &str, data: serde_json::Value) -> Envelope {
        Envelope::new(kind, "agg", Some("actor"), "corr", &data)
    }

    fn kafka(events: &[Envelope]) -> KafkaEvent {
        let mut batch = KafkaEvent::default();
        for (i, e) in events.iter().enumerate() {
            let mut r = KafkaRecord::default();
            r.offset = i as i64;
            r.value = Some(
                base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(e).unwrap()),
            );
            batch
                .records
                .entry("shutter.posts-0".into())
                .or_default()
                .push(r);
        }
        batch
    }

    async fn like(store: &MemoryLikesStore, post: &str, user: &str) {
        let current = store.state(post, user).await.unwrap();
        let next = transition(
            current.as_ref(),
            &LikeRequest {
                post_id: post,
                post_author_id: "a",
                user_id: user,
                username: "u",
                liked: true,
            },
        )
        .unwrap();
        store
            .commit(current.as_ref(), &next, &next.event(Some(user), "c"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_directory_learns_authors_and_posts_from_events() {
        let (dir, store, poison) = (
            MemoryDirectory::default(),
            MemoryLikesStore::default(),
            MemoryPoisonQueue::default(),
        );
        let batch = kafka(&[
            event(
                "UserRegistered",
                serde_json::json!({"user_id": "a", "username": "ann"}),
            ),
            event(
                "PostPublished",
                serde_json::json!({"post_id": "p", "author_id": "a"}),
            ),
        ]);
        directory_events(&dir, &store, &poison, &batch)
            .await
            .unwrap();
        let viewer = Viewer {
            user_id: "b",
            staff: false,
        };
        assert_eq!(
            visible_post(&dir, "p", viewer).await.unwrap().1.username,
            "ann"
        );
    }

    #[tokio::test]
    async fn a_deleted_post_loses_its_likes_without_events() {
        let (dir, store) = (MemoryDirectory::default(), MemoryLikesStore::default());
        like(&store, "p", "u1").await;
        like(&store, "p", "u2").await;
        like(&store, "q", "u1").await;
        let events_before = store.events().len();
        let deleted = event(
            "PostDeleted",
            serde_json::json!({"post_id": "p", "author_id": "a"}),
        );
        apply(&dir, &store, &deleted).await.unwrap();
        apply(&dir, &store, &deleted).await.unwrap();
        assert_eq!(store.items_of_post("p"), 0);
        assert_eq!(store.items_of_post("q"), 2);
        assert_eq!(store.events().len(), events_before);
        assert_eq!(store.posts_liked_by("u1", 10).await.unwrap(), ["q"]);
    }

    #[tokio::test]
    async fn a_deleted_users_likes_are_removed_with_one_event_each_and_no_new_ones() {
        let (dir, store) = (MemoryDirectory::default(), MemoryLikesStore::default());
        like(&store, "p", "u1").await;
        like(&store, "q", "u1").await;
        like(&store, "p", "u2").await;
        let deleted = event(
            "UserDeleted",
            serde_json::json!({"user_id": "u1", "username": "ann"}),
        );
        apply(&dir, &store, &deleted).await.unwrap();
        apply(&dir, &store, &deleted).await.unwrap();
        let removed: Vec<_> = store
            .events()
            .into_iter()
            .filter(|e| e.event_type == "LikeRemoved")
            .collect();
        assert_eq!(
            removed.len(),
            2,
            "one LikeRemoved per like, redelivery adds none"
        );
        assert!(removed.iter().all(|e| e.data["seq"] == 2
            && e.data["user_id"] == "u1"
            && e.correlation_id == "corr"));
        assert_eq!(store.items_of_post("p"), 2, "u2's state and entry stay");
        assert!(store.posts_liked_by("u1", 10).await.unwrap().is_empty());
        // A token that outlived the account cannot like again.
        let next = transition(
            None,
            &LikeRequest {
                post_id: "p",
                post_author_id: "a",
                user_id: "u1",
                username: "u",
                liked: true,
            },
        )
        .unwrap();
        assert_eq!(
            store
                .commit(None, &next, &next.event(None, "c"))
                .await
                .unwrap_err()
                .status(),
            401
        );
    }

    #[tokio::test]
    async fn undecodable_events_go_to_the_dlq() {
        let (dir, store, poison) = (
            MemoryDirectory::default(),
            MemoryLikesStore::default(),
            MemoryPoisonQueue::default(),
        );
        let batch = kafka(&[event("PostDeleted", serde_json::json!({"post": 1}))]);
        directory_events(&dir, &store, &poison, &batch)
            .await
            .unwrap();
        assert_eq!(poison.sent.lock().unwrap().len(), 1);
    }
}
