//! `comments-writer`: the SQS consumer of the comment writes queue. It stores each queued
//! comment ([`App::write_comment`]) and reports only the messages that failed, so SQS
//! redelivers those alone and not the rest of the batch.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shutter_directory::Directory;

use crate::App;
use crate::queue::CommentWrite;
use crate::store::CommentsStore;

/// Stores each queued comment of `event`. A message that fails (storage unavailable, or a
/// body that cannot be read) is a batch item failure: SQS receives it again, and one that
/// fails on every receive reaches the queue's DLQ after `maxReceiveCount`.
pub async fn comment_writes<S, D, Q, C>(app: &App<S, D, Q, C>, event: &SqsEvent) -> SqsBatchResponse
where
    S: CommentsStore,
    D: Directory,
{
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        let failed = match serde_json::from_str::<CommentWrite>(body) {
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "unreadable comment write; goes to the DLQ after its receives");
                true
            }
            Ok(write) => match app.write_comment(&write).await {
                Ok(written) => {
                    tracing::info!(message_id = %id, comment_id = %write.comment.id, post_id = %write.comment.post_id, ?written, "comment written");
                    false
                }
                Err(err) if err.is_retryable() => {
                    tracing::warn!(message_id = %id, error = %err, "comment write failed; retried");
                    true
                }
                Err(err) => {
                    tracing::error!(message_id = %id, error = %err, "comment write cannot be stored; goes to the DLQ after its receives");
                    true
                }
            },
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// [`comment_writes`] as a Lambda handler: it never fails as a whole (failures are the
/// batch's item failures).
pub async fn on_messages<S: CommentsStore, D: Directory, Q, C>(
    app: &App<S, D, Q, C>,
    event: SqsEvent,
) -> Result<SqsBatchResponse, std::convert::Infallible> {
    Ok(comment_writes(app, &event).await)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_lambda_events::event::sqs::SqsMessage;
    use shutter_events::EventType;

    use super::*;
    use crate::service::NewComment;
    use crate::testing::{World, text, world};

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

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    /// Accepts `raw` by `by` on the post; the queued message body.
    async fn queued(w: &World, raw: &str, reply_to: Option<&shutter_core::CommentId>) -> String {
        let new = NewComment {
            post_id: w.post.clone(),
            text: text(raw),
            reply_to: reply_to.cloned(),
        };
        w.app.create(&w.carol.caller(), new, "c").await.unwrap();
        serde_json::to_string(&w.app.queue.take()[0]).unwrap()
    }

    #[tokio::test]
    async fn a_redelivered_write_stores_one_comment_with_one_event() {
        let w = world();
        let write = queued(&w, "once", None).await;
        let response = comment_writes(&w.app, &sqs(&[write.clone(), write.clone()])).await;
        assert!(response.batch_item_failures.is_empty());
        let response = comment_writes(&w.app, &sqs(&[write])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(w.app.store.comment_count(), 1);
        assert_eq!(w.event_types(), vec![EventType::CommentAdded]);
    }

    #[tokio::test]
    async fn unreadable_messages_fail_alone_and_orphans_are_kept() {
        let w = world();
        let parent = w.comment(&w.bob, "parent", None).await;
        let reply = queued(&w, "reply", Some(&parent.id)).await;
        // The parent goes before the reply is written: the reply is kept, top-level.
        w.app
            .delete(&w.bob.caller(), &parent.id, "c")
            .await
            .unwrap();
        let response = comment_writes(&w.app, &sqs(&["{oops".to_owned(), reply])).await;
        assert_eq!(failed(&response), vec!["m0"]);
        let listed = w.listed(&w.ann).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].text, "reply");
        assert!(listed[0].reply_to.is_none());
    }

    fn keyed(key: &str, hash: &str) -> Option<crate::store::Idempotency> {
        Some(crate::store::Idempotency {
            key: key.into(),
            request_hash: hash.into(),
        })
    }

    fn new_comment(w: &World, raw: &str) -> NewComment {
        NewComment {
            post_id: w.post.clone(),
            text: text(raw),
            reply_to: None,
        }
    }

    #[tokio::test]
    async fn a_retried_create_with_its_key_stores_one_comment() {
        let w = world();
        // GIVEN carol's comment was accepted with a key, and its answer was lost
        let first = w
            .app
            .create_once(
                &w.carol.caller(),
                new_comment(&w, "once"),
                keyed("k1", "h"),
                "c",
            )
            .await
            .unwrap();
        assert!(!first.replayed);
        // WHEN she sends it again with the same key
        let again = w
            .app
            .create_once(
                &w.carol.caller(),
                new_comment(&w, "once"),
                keyed("k1", "h"),
                "c",
            )
            .await
            .unwrap();
        // THEN the same comment comes back, and however often it is queued one is stored
        assert!(again.replayed);
        assert_eq!(again.comment.id, first.comment.id);
        let queued = w.app.queue.take();
        assert_eq!(queued.len(), 2);
        assert!(queued.iter().all(|q| q.comment.id == first.comment.id));
        for q in &queued {
            w.app.write_comment(q).await.unwrap();
        }
        assert_eq!(w.app.store.comment_count(), 1);
        assert_eq!(w.event_types(), vec![EventType::CommentAdded]);
        // AND the key with another request is refused, nothing queued
        let err = w
            .app
            .create_once(
                &w.carol.caller(),
                new_comment(&w, "other"),
                keyed("k1", "h2"),
                "c",
            )
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "idempotency_key_reused")
        );
        assert!(w.app.queue.take().is_empty());
        // AND keys are each user's own
        let bobs = w
            .app
            .create_once(
                &w.bob.caller(),
                new_comment(&w, "once"),
                keyed("k1", "h"),
                "c",
            )
            .await
            .unwrap();
        assert!(!bobs.replayed);
        assert_ne!(bobs.comment.id, first.comment.id);
    }

    fn user_deleted(who: &crate::testing::Who) -> shutter_events::Envelope {
        shutter_events::Envelope::new(
            shutter_events::Event::UserDeleted(shutter_events::UserDeleted {
                user_id: who.id.clone(),
                username: who.name.into(),
            }),
            Some(&who.id),
            "c",
        )
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_comments_and_edits_nothing() {
        let w = world();
        let mine = w.comment(&w.carol, "mine", None).await;
        // GIVEN carol's account is deleted and the directory holds its tombstone
        shutter_directory::Directory::apply(&w.app.directory, &user_deleted(&w.carol))
            .await
            .unwrap();
        // WHEN her still-valid token comments and edits THEN both are refused
        let err = w
            .app
            .create(&w.carol.caller(), new_comment(&w, "ghost"), "c")
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (401, "unauthorized")
        );
        let err = w
            .app
            .edit(&w.carol.caller(), &mine.id, text("ghost"), "c")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 401);
        // AND nothing is queued or changed
        assert!(w.app.queue.take().is_empty());
        assert_eq!(w.app.store.comments()[0].text, "mine");
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_likes_no_comment() {
        let w = world();
        let bobs = w.comment(&w.bob, "like me", None).await;
        let events = w.app.store.events().len();
        // GIVEN carol's account is deleted: her tombstone is in the store, and later in
        // the directory too
        w.app.store.account_deleted(&w.carol.id);
        // WHEN her still-valid token likes bob's comment, in the window before the
        // directory knows, and after THEN each is a 401, and nothing is counted
        for _ in 0..2 {
            let err = w
                .app
                .like(&w.carol.caller(), &bobs.id, "c")
                .await
                .unwrap_err();
            assert_eq!(
                (err.status(), err.problem().code.as_str()),
                (401, "unauthorized")
            );
            shutter_directory::Directory::apply(&w.app.directory, &user_deleted(&w.carol))
                .await
                .unwrap();
        }
        assert_eq!(w.app.store.comments()[0].like_count, 0);
        assert_eq!(w.app.store.events().len(), events);
    }

    #[tokio::test]
    async fn a_comment_accepted_before_the_tombstone_and_written_after_is_dropped() {
        let w = world();
        let write = queued(&w, "in the window", None).await;
        // GIVEN the account is deleted between the accept and the write
        w.app.store.account_deleted(&w.carol.id);
        // WHEN the writer meets it THEN it is dropped (not retried), nothing stored
        let response = comment_writes(&w.app, &sqs(&[write])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(w.app.store.comment_count(), 0);
        assert!(w.app.store.events().is_empty());
    }

    #[tokio::test]
    async fn a_storage_outage_fails_the_message_and_its_redelivery_stores_it() {
        let w = world();
        let write = queued(&w, "patience", None).await;
        w.app.store.set_unavailable(true);
        let response = comment_writes(&w.app, &sqs(std::slice::from_ref(&write))).await;
        assert_eq!(failed(&response), vec!["m0"]);
        w.app.store.set_unavailable(false);
        assert_eq!(w.app.store.comment_count(), 0);
        let response = comment_writes(&w.app, &sqs(&[write])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(w.app.store.comment_count(), 1);
    }
}
