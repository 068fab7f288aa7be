//! `comments-directory-events`: the MSK consumer of the identity, profiles, posts and
//! follows topics. It keeps the service's directory (who may see which post), erases the
//! comments of deleted posts, and deletes a deleted user's comments and takes back their
//! comment likes.

use shutter_core::{PostId, UserId};
use shutter_directory::Directory;
use shutter_events::{ConsumeError, Consumer, Envelope, Event, EventSet, EventType};
use shutter_store::StoreError;

use crate::App;
use crate::store::{self, CommentsStore};

pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "comments-directory-events",
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::PostDeleted,
        EventType::UserDeleted,
    ])),
    summary: "Keeps the comments service's directory; erases the comments of deleted posts, deletes deleted users' comments and takes back their comment likes.",
};

/// Applies one event to the directory, then its effect on comments. Idempotent: a
/// redelivered event finds nothing left to delete.
pub async fn apply<S, D, Q, C>(
    app: &App<S, D, Q, C>,
    envelope: Envelope,
) -> Result<(), ConsumeError>
where
    S: CommentsStore,
    D: Directory,
{
    app.directory.apply(&envelope).await?;
    match &envelope.event {
        Event::PostDeleted(gone) => erase_post(app, &gone.post_id).await,
        Event::UserDeleted(gone) => erase_user(app, &gone.user_id, &envelope).await,
        _ => Ok(()),
    }
}

/// A deleted post's comments are erased, without events: the post and its counters are
/// gone.
async fn erase_post<S: CommentsStore, D, Q, C>(
    app: &App<S, D, Q, C>,
    post_id: &PostId,
) -> Result<(), ConsumeError> {
    let n = app.store.purge_post(post_id).await?;
    tracing::info!(post_id = %post_id, erased = n, "deleted post's comments erased");
    Ok(())
}

/// A deleted user's comments are deleted with their replies, each with a
/// `CommentDeleted` (so the posts' comment counts drop), and their comment likes are
/// taken back with a `CommentLikeRemoved` each (so the comments' counts stay exact).
async fn erase_user<S: CommentsStore, D: Directory, Q, C>(
    app: &App<S, D, Q, C>,
    user_id: &UserId,
    envelope: &Envelope,
) -> Result<(), ConsumeError> {
    let correlation_id = &envelope.correlation_id;
    let mut deleted = 0;
    for id in app.store.by_author(user_id).await? {
        if let Some(comment) = app.store.comment(&id).await? {
            deleted += app.delete_thread(&comment, user_id, correlation_id).await?;
        }
    }
    let mut unliked = 0;
    for id in app.store.liked_comments(user_id).await? {
        let Some(comment) = app.store.comment(&id).await? else {
            continue;
        };
        let event = Envelope::new(
            Event::CommentLikeRemoved(comment.like_by(user_id)),
            Some(user_id),
            correlation_id,
        );
        match app.store.unlike(&comment, user_id, &event).await {
            Ok(()) => unliked += 1,
            // Taken back already, or the comment went meanwhile: nothing to take back.
            Err(StoreError::Conflict(store::NOT_LIKED | store::COMMENT_GONE)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    app.store.forget_likes(user_id).await?;
    tracing::info!(user_id = %user_id, deleted, unliked, "deleted user's comments deleted and likes taken back");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use shutter_events::{KafkaEvent, KafkaRecord, MemoryPoisonQueue, Topic, UserDeleted};

    use super::*;
    use crate::testing::{World, world};

    fn user_deleted(w: &World) -> Envelope {
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: w.bob.id.clone(),
                username: "bob".into(),
            }),
            Some(&w.bob.id),
            "gone-corr",
        )
    }

    /// `records` (JSON texts) on one partition, as MSK hands them over.
    fn kafka(records: &[String]) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for (offset, json) in records.iter().enumerate() {
            let mut r = KafkaRecord::default();
            r.offset = offset as i64;
            r.value = Some(STANDARD.encode(json));
            event
                .records
                .entry("shutter.posts-0".to_owned())
                .or_default()
                .push(r);
        }
        event
    }

    async fn consume(
        w: &World,
        records: &[String],
        dlq: &MemoryPoisonQueue,
    ) -> Result<(), ConsumeError> {
        shutter_events::consume(&DIRECTORY_EVENTS, &kafka(records), dlq, |envelope| {
            apply(&w.app, envelope)
        })
        .await
        .map(|_| ())
    }

    #[tokio::test]
    async fn deleted_users_lose_their_comments_and_deleted_posts_all_of_theirs() {
        let w = world();
        let bobs = w.comment(&w.bob, "bob's", None).await;
        w.comment(&w.carol, "carol answers bob", Some(&bobs.id))
            .await;
        let carols = w.comment(&w.carol, "carol's own", None).await;
        w.app.like(&w.bob.caller(), &carols.id, "c").await.unwrap();
        w.app.like(&w.ann.caller(), &carols.id, "c").await.unwrap();
        let gone = user_deleted(&w);
        apply(&w.app, gone.clone()).await.unwrap();
        apply(&w.app, gone).await.unwrap();
        let listed = w.listed(&w.ann).await;
        let texts: Vec<_> = listed.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["carol's own"]);
        assert_eq!(listed[0].like_count, 1, "bob's like is taken back");
        let unliked = w.events(|e| match e {
            Event::CommentLikeRemoved(l) => Some(l.clone()),
            _ => None,
        });
        assert_eq!(unliked.len(), 1);
        assert_eq!(
            (&unliked[0].user_id, &unliked[0].comment_id),
            (&w.bob.id, &carols.id)
        );
        let deleted = w.events(|e| match e {
            Event::CommentDeleted(d) => Some(d.clone()),
            _ => None,
        });
        assert_eq!(
            deleted.len(),
            2,
            "bob's comment and the reply under it, once"
        );
        assert!(deleted.iter().all(|d| d.deleted_by == w.bob.id));
        assert!(
            w.app.store.events()[5..]
                .iter()
                .all(|e| e.correlation_id == "gone-corr"),
            "the effects carry the cause's correlation id"
        );

        let post_gone = w.post_deleted();
        apply(&w.app, post_gone.clone()).await.unwrap();
        apply(&w.app, post_gone).await.unwrap();
        assert_eq!(w.app.store.comment_count(), 0);
        let page = shutter_core::PageRequest::parse(None, None).unwrap();
        let err = w
            .app
            .list(&w.ann.caller(), &w.post, &page)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn a_payload_that_never_decodes_goes_to_the_dlq_and_the_rest_applies() {
        let w = world();
        w.comment(&w.bob, "on a doomed post", None).await;
        let bad = r#"{"id":"01J","type":"PostDeleted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"p","correlation_id":"c","data":{"post":1}}"#;
        let dlq = MemoryPoisonQueue::default();
        consume(
            &w,
            &[bad.to_owned(), w.post_deleted().to_json().unwrap()],
            &dlq,
        )
        .await
        .unwrap();
        assert_eq!(dlq.positions(), vec!["shutter.posts-0@0"]);
        assert_eq!(w.app.store.comment_count(), 0);
    }

    #[tokio::test]
    async fn events_it_does_not_handle_or_know_are_skipped_without_effect() {
        let w = world();
        w.comment(&w.bob, "stays", None).await;
        let comment = w.app.store.comments().remove(0);
        // Its own CommentAdded is on a topic it does not read; a newer producer's event
        // type is unknown to this build.
        let unhandled = Envelope::new(Event::CommentAdded(comment.added()), None, "c");
        let unknown = r#"{"id":"01J","type":"PostArchived","version":1,"occurred_at":"t","actor":null,"aggregate_id":"p","correlation_id":"c","data":{}}"#;
        let dlq = MemoryPoisonQueue::default();
        consume(
            &w,
            &[unhandled.to_json().unwrap(), unknown.to_owned()],
            &dlq,
        )
        .await
        .unwrap();
        assert!(dlq.positions().is_empty(), "neither is poison");
        assert_eq!(w.app.store.comment_count(), 1);
        assert_eq!(w.event_types().len(), 1);
    }

    #[tokio::test]
    async fn unavailable_storage_is_retried_not_poison() {
        let w = world();
        w.comment(&w.bob, "hi", None).await;
        w.app.store.set_unavailable(true);
        let dlq = MemoryPoisonQueue::default();
        let result = consume(&w, &[user_deleted(&w).to_json().unwrap()], &dlq).await;
        assert!(matches!(result, Err(ConsumeError::Retry(_))));
        assert!(dlq.positions().is_empty());
        w.app.store.set_unavailable(false);
        assert_eq!(w.app.store.comment_count(), 1, "nothing deleted yet");
    }

    #[test]
    fn it_handles_the_directorys_events_and_reads_the_topics_template_yaml_subscribes() {
        for t in shutter_directory::EVENTS.iter() {
            assert!(DIRECTORY_EVENTS.handles.contains(t), "{t:?}");
        }
        assert!(DIRECTORY_EVENTS.handles.contains(EventType::PostDeleted));
        assert!(DIRECTORY_EVENTS.handles.contains(EventType::UserDeleted));
        assert!(!DIRECTORY_EVENTS.handles.contains(EventType::CommentAdded));
        assert_eq!(
            DIRECTORY_EVENTS
                .handles
                .topics()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![
                Topic::Identity,
                Topic::Profiles,
                Topic::Posts,
                Topic::Follows
            ]
        );
        assert_eq!(crate::CONSUMERS, &[&DIRECTORY_EVENTS]);
    }
}
