//! The consumers: `comments-writer` stores the comments that `POST /v1/posts/{id}/comments`
//! queued, and `comments-directory-events` keeps the directory and erases the comments of
//! deleted posts and users.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use shutter_core::ApiError;
use shutter_directory::legacy::Directory;
use shutter_events::legacy::Envelope;
use shutter_events::{KafkaEvent, PoisonQueue};

use crate::handlers::{CommentWrite, delete_thread};
use crate::model::{CommentAdded, CommentLikeChanged};
use crate::store::{CommentsStore, Inserted};

/// The directory consumer's name in DLQ messages.
pub const DIRECTORY_CONSUMER: &str = "comments-directory-events";

/// What the writer did with one queued comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// Stored before: SQS delivered the message again.
    Duplicate,
    /// Its parent was deleted after it was accepted: stored as a top-level comment.
    StoredTopLevel,
    /// Its post was deleted after it was accepted: dropped.
    PostGone,
}

fn added(write: &CommentWrite) -> Envelope {
    let c = &write.comment;
    Envelope::new(
        "CommentAdded",
        &c.post_id,
        Some(&c.author.id),
        &write.correlation_id,
        &CommentAdded::from(c),
    )
}

/// Stores one queued comment with its `CommentAdded`, once. A reply whose parent was
/// deleted in the meantime is kept as a top-level comment (the author's words are not
/// lost, and a message never fails for ever); a comment on a post deleted meanwhile is
/// dropped, as that post's comments are.
pub async fn write_comment<S: CommentsStore, D: Directory>(
    store: &S,
    directory: &D,
    write: &CommentWrite,
) -> Result<Written, ApiError> {
    if directory.post(&write.comment.post_id).await?.is_none() {
        return Ok(Written::PostGone);
    }
    match store.insert(&write.comment, &added(write)).await? {
        Inserted::Written => Ok(Written::Stored),
        Inserted::Duplicate => Ok(Written::Duplicate),
        Inserted::ParentGone => {
            let mut top = write.clone();
            top.comment.reply_to = None;
            match store.insert(&top.comment, &added(&top)).await? {
                Inserted::Duplicate => Ok(Written::Duplicate),
                _ => Ok(Written::StoredTopLevel),
            }
        }
    }
}

/// `comments-writer`: stores each queued comment. Only the messages that failed are
/// reported, so the rest of the batch is not written again; a message that cannot be read
/// fails on every receive and so reaches the queue's DLQ after `maxReceiveCount`.
pub async fn comment_writes<S: CommentsStore, D: Directory>(
    store: &S,
    directory: &D,
    event: &SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let result =
            match serde_json::from_str::<CommentWrite>(message.body.as_deref().unwrap_or("")) {
                Ok(write) => write_comment(store, directory, &write)
                    .await
                    .map(|w| (w, write)),
                Err(e) => Err(ApiError::invalid("body", e.to_string())),
            };
        match result {
            Ok((written, write)) => {
                tracing::info!(message_id = %id, comment_id = %write.comment.id, post_id = %write.comment.post_id, ?written, "comment written");
            }
            Err(err) => {
                if err.is_retryable() {
                    tracing::warn!(message_id = %id, error = %err, "comment write failed; retried");
                } else {
                    tracing::error!(message_id = %id, error = %err, "unreadable comment write; goes to the DLQ after its receives");
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

#[derive(Debug, Deserialize)]
struct PostFacts {
    post_id: String,
}

#[derive(Debug, Deserialize)]
struct UserFacts {
    user_id: String,
}

/// Applies one event to the directory, then its effect on comments: a deleted post's
/// comments are erased (no events: the post and its counters are gone); a deleted user's
/// comments are deleted with their replies, each with a `CommentDeleted`, so the posts'
/// comment counts drop, and their comment likes are taken back (`CommentLikeRemoved`).
/// Idempotent: a redelivered event finds nothing left to delete.
pub async fn apply_directory_event<S: CommentsStore, D: Directory>(
    store: &S,
    directory: &D,
    envelope: &Envelope,
) -> Result<(), ApiError> {
    directory.apply(envelope).await?;
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    match envelope.event_type.as_str() {
        "PostDeleted" => {
            let facts: PostFacts = envelope.data().map_err(bad)?;
            let n = store.purge_post(&facts.post_id).await?;
            tracing::info!(post_id = %facts.post_id, erased = n, "deleted post's comments erased");
        }
        "UserDeleted" => {
            let facts: UserFacts = envelope.data().map_err(bad)?;
            let mut deleted = 0;
            for id in store.by_author(&facts.user_id).await? {
                if let Some(comment) = store.comment(&id).await? {
                    deleted +=
                        delete_thread(store, &comment, &facts.user_id, &envelope.correlation_id)
                            .await?;
                }
            }
            // Their likes are taken back, so the comments' counts stay exact.
            let mut unliked = 0;
            for id in store.liked_comments(&facts.user_id).await? {
                let Some(comment) = store.comment(&id).await? else {
                    continue;
                };
                let event = Envelope::new(
                    "CommentLikeRemoved",
                    &comment.post_id,
                    Some(&facts.user_id),
                    &envelope.correlation_id,
                    &CommentLikeChanged {
                        comment_id: comment.id.clone(),
                        post_id: comment.post_id.clone(),
                        user_id: facts.user_id.clone(),
                    },
                );
                match store.unlike(&comment, &facts.user_id, &event).await {
                    Ok(true) => unliked += 1,
                    Ok(false) | Err(ApiError::NotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            store.forget_likes(&facts.user_id).await?;
            tracing::info!(user_id = %facts.user_id, deleted, unliked, "deleted user's comments deleted and likes taken back");
        }
        _ => {}
    }
    Ok(())
}

/// `comments-directory-events`: the MSK consumer of `shutter.identity`, `shutter.profiles`
/// and `shutter.posts`.
pub async fn directory_events<S: CommentsStore, D: Directory, Q: PoisonQueue>(
    store: &S,
    directory: &D,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError> {
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply_directory_event(store, directory, &envelope).await
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_lambda_events::event::sqs::SqsMessage;

    use super::*;
    use crate::handlers::tests::world;

    fn sqs(bodies: &[String]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, b) in bodies.iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(b.clone());
            event.records.push(m);
        }
        event
    }

    #[tokio::test]
    async fn a_redelivered_write_stores_one_comment_with_one_event() {
        let w = world();
        w.create(&w.bob, &w.post, r#"{"text":"once"}"#)
            .await
            .unwrap();
        let write = serde_json::to_string(&w.queue.take()[0]).unwrap();
        let response =
            comment_writes(&w.store, &w.dir, &sqs(&[write.clone(), write.clone()])).await;
        assert!(response.batch_item_failures.is_empty());
        let response = comment_writes(&w.store, &w.dir, &sqs(&[write])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(w.store.comment_count(), 1);
        assert_eq!(w.event_types(), vec!["CommentAdded"]);
    }

    #[tokio::test]
    async fn a_deleted_comment_is_not_brought_back_by_a_redelivery() {
        let w = world();
        w.create(&w.bob, &w.post, r#"{"text":"gone soon"}"#)
            .await
            .unwrap();
        let write = w.queue.take().remove(0);
        write_comment(&w.store, &w.dir, &write).await.unwrap();
        w.delete(&w.bob, &write.comment.id).await.unwrap();
        assert_eq!(
            write_comment(&w.store, &w.dir, &write).await.unwrap(),
            Written::Duplicate
        );
        assert_eq!(w.store.comment_count(), 0);
    }

    #[tokio::test]
    async fn unreadable_messages_fail_alone_and_orphans_are_kept_or_dropped() {
        let w = world();
        let parent = w.comment(&w.bob, "parent", None).await;
        let pid = parent["id"].as_str().unwrap();
        w.create(
            &w.carol,
            &w.post,
            &format!(r#"{{"text":"reply","reply_to":"{pid}"}}"#),
        )
        .await
        .unwrap();
        let reply = serde_json::to_string(&w.queue.take()[0]).unwrap();
        // The parent goes before the reply is written: the reply is kept, top-level.
        w.delete(&w.bob, pid).await.unwrap();
        let response = comment_writes(&w.store, &w.dir, &sqs(&["{oops".to_owned(), reply])).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["m0"]);
        let listed = w.list_all(&w.ann).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["text"], "reply");
        assert!(listed[0]["reply_to"].is_null());

        // The post goes before the comment is written: dropped.
        w.create(&w.carol, &w.post, r#"{"text":"late"}"#)
            .await
            .unwrap();
        let late = w.queue.take().remove(0);
        w.dir
            .apply(&Envelope::new(
                "PostDeleted",
                &w.post,
                None,
                "c",
                &serde_json::json!({"post_id": w.post, "author_id": w.ann.id}),
            ))
            .await
            .unwrap();
        assert_eq!(
            write_comment(&w.store, &w.dir, &late).await.unwrap(),
            Written::PostGone
        );
    }

    #[tokio::test]
    async fn deleted_users_lose_their_comments_and_deleted_posts_all_of_theirs() {
        let w = world();
        let bobs = w.comment(&w.bob, "bob's", None).await;
        w.comment(&w.carol, "carol answers bob", bobs["id"].as_str())
            .await;
        let carols = w.comment(&w.carol, "carol's own", None).await;
        w.like(&w.bob, carols["id"].as_str().unwrap())
            .await
            .unwrap();
        w.like(&w.ann, carols["id"].as_str().unwrap())
            .await
            .unwrap();
        let gone = Envelope::new(
            "UserDeleted",
            &w.bob.id,
            Some(&w.bob.id),
            "c",
            &serde_json::json!({"user_id": w.bob.id, "username": "bob"}),
        );
        apply_directory_event(&w.store, &w.dir, &gone)
            .await
            .unwrap();
        apply_directory_event(&w.store, &w.dir, &gone)
            .await
            .unwrap();
        let texts: Vec<_> = w
            .list_all(&w.ann)
            .await
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, vec!["carol's own"]);
        assert_eq!(
            w.list_all(&w.ann).await[0]["like_count"],
            1,
            "bob's like is taken back"
        );
        let types = w.event_types();
        assert_eq!(
            types.iter().filter(|t| *t == "CommentLikeRemoved").count(),
            1
        );
        let deleted: Vec<_> = w
            .store
            .events()
            .into_iter()
            .filter(|e| e.event_type == "CommentDeleted")
            .collect();
        assert_eq!(
            deleted.len(),
            2,
            "bob's comment and the reply under it, once"
        );
        assert!(
            deleted
                .iter()
                .all(|e| e.data["deleted_by"] == w.bob.id.as_str())
        );

        let post_gone = Envelope::new(
            "PostDeleted",
            &w.post,
            None,
            "c",
            &serde_json::json!({"post_id": w.post, "author_id": w.ann.id}),
        );
        apply_directory_event(&w.store, &w.dir, &post_gone)
            .await
            .unwrap();
        assert_eq!(w.store.comment_count(), 0);
        assert_eq!(w.list(&w.ann, &[]).await.unwrap_err().status(), 404);

        let bad = Envelope::new(
            "PostDeleted",
            "p",
            None,
            "c",
            &serde_json::json!({"post": 1}),
        );
        let err = apply_directory_event(&w.store, &w.dir, &bad)
            .await
            .unwrap_err();
        assert!(
            !err.is_retryable(),
            "a payload that never decodes goes to the DLQ"
        );
    }
}
