//! `comments-directory-events`: the MSK consumer of the identity, profiles, posts and
//! follows topics. It keeps the service's directory (who may see which post), and hands on
//! erasing the comments of deleted posts, and deleting a deleted user's comments and
//! taking back their comment likes: work that grows with data, done a page a chunk by
//! `comments-cascade-worker` ([`crate::worker`]).

use shutter_directory::Directory;
use shutter_events::work::{Job, WithWork, WorkQueue};
use shutter_events::{ConsumeError, Consumer, Envelope, Event, EventSet, EventType};

use shutter_core::CommentId;
use shutter_store::StoreError;

use crate::App;
use crate::model::Removal;
use crate::store::{self, CommentsStore};
use crate::worker::CommentsWork;

pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "comments-directory-events",
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::PostDeleted,
        EventType::UserDeleted,
    ])),
    summary: "Keeps the comments service's directory; erases the comments of deleted posts, deletes deleted users' comments and takes back their comment likes; marks the comments staff removed.",
};

/// Applies one event to the directory, then hands on its effect on comments. Idempotent:
/// a job handed on twice finds nothing left to do the second time.
pub async fn apply<S, D, Q, C, W>(
    deps: &WithWork<App<S, D, Q, C>, W>,
    envelope: Envelope,
) -> Result<(), ConsumeError>
where
    S: CommentsStore,
    D: Directory,
    W: WorkQueue,
{
    deps.directory.apply(&envelope).await?;
    if let Event::ContentRemoved(removed) = &envelope.event {
        return remove(&deps.store, removed).await;
    }
    let work = match &envelope.event {
        Event::PostDeleted(gone) => CommentsWork::PurgePost {
            post_id: gone.post_id.clone(),
        },
        Event::UserDeleted(gone) => CommentsWork::EraseUser {
            user_id: gone.user_id.clone(),
        },
        _ => return Ok(()),
    };
    deps.work.enqueue(&Job::new(work, &envelope)).await?;
    Ok(())
}

/// Marks a comment staff removed, for good (a post's removal is the directory's: it
/// tombstones the post, which hides its comments). The comment keeps its replies, likes
/// and its place in the post's `comment_count` (no `CommentDeleted` is emitted): the
/// count is of comments written and not deleted, as it already counts those a block
/// hides from a viewer, so the posts service's count never drifts; if its author or a
/// cascade deletes it later, its `CommentDeleted` takes it out once. Redelivered (or a
/// second removal), it changes nothing: the first note stands.
async fn remove<S: CommentsStore>(
    store: &S,
    removed: &shutter_events::ContentRemoved,
) -> Result<(), ConsumeError> {
    if removed.kind != shutter_events::RemovedKind::Comment {
        return Ok(());
    }
    let id = CommentId::parse("target_id", &removed.target_id).map_err(|_| {
        ConsumeError::poison(format!(
            "target_id {:?} is no comment id",
            removed.target_id
        ))
    })?;
    let removal = Removal {
        note: removed.note.clone(),
        removed_at: removed.removed_at.clone(),
    };
    match store.remove(&id, &removal).await {
        Ok(()) => {
            tracing::info!(comment_id = %id, "comment removed by staff");
            Ok(())
        }
        Err(StoreError::Conflict(store::NOTHING_TO_REMOVE)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use shutter_events::{KafkaEvent, KafkaRecord, MemoryPoisonQueue, Topic, UserDeleted};

    use super::*;
    use crate::store::CommentsReader;
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
        w.work().await;
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
        w.work().await;
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
        w.work().await;
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
    async fn unavailable_storage_fails_the_chunk_for_a_retry_not_poison() {
        let w = world();
        w.comment(&w.bob, "hi", None).await;
        w.app.store.set_unavailable(true);
        let dlq = MemoryPoisonQueue::default();
        // The record only hands the work on: it succeeds.
        consume(&w, &[user_deleted(&w).to_json().unwrap()], &dlq)
            .await
            .unwrap();
        assert!(dlq.positions().is_empty());
        // The chunk fails (SQS delivers it again later), and nothing is deleted yet.
        let failed = w
            .app
            .work
            .drain(10, |job| crate::worker::chunk(&w.app, job))
            .await;
        assert_eq!(failed.len(), 1);
        w.app.store.set_unavailable(false);
        assert_eq!(w.app.store.comment_count(), 1, "nothing deleted yet");
        // Delivered again, it does the work.
        shutter_events::work::WorkQueue::send(&w.app.work, failed[0].clone())
            .await
            .unwrap();
        w.work().await;
        assert_eq!(w.app.store.comment_count(), 0);
    }

    #[tokio::test]
    async fn a_user_with_more_than_a_page_is_erased_over_several_chunks_each_effect_once() {
        // GIVEN bob wrote five comments and likes three of carol's (two a chunk here)
        let w = world();
        for i in 0..5 {
            w.comment(&w.bob, &format!("bob {i}"), None).await;
        }
        let mut carols = Vec::new();
        for i in 0..3 {
            let c = w.comment(&w.carol, &format!("carol {i}"), None).await;
            w.app.like(&w.bob.caller(), &c.id, "c").await.unwrap();
            carols.push(c);
        }
        // WHEN bob is deleted THEN the work takes three pages of comments and two of likes
        let gone = user_deleted(&w);
        apply(&w.app, gone.clone()).await.unwrap();
        let mut chunks = 0;
        let failed = w
            .app
            .work
            .drain(100, |job| {
                chunks += 1;
                crate::worker::chunk(&w.app, job)
            })
            .await;
        assert!(failed.is_empty());
        assert_eq!(chunks, 5);
        // AND the record delivered again hands on a job that finds nothing left
        apply(&w.app, gone).await.unwrap();
        w.work().await;
        // THEN each of his comments went once, each like was taken back once, and
        // carol's comments stand with no likes
        let deleted = w.events(|e| match e {
            Event::CommentDeleted(d) => Some(d.comment_id.clone()),
            _ => None,
        });
        assert_eq!(deleted.len(), 5, "{deleted:?}");
        let unliked = w.events(|e| match e {
            Event::CommentLikeRemoved(l) => Some(l.comment_id.clone()),
            _ => None,
        });
        assert_eq!(unliked.len(), 3, "{unliked:?}");
        let listed = w.listed(&w.ann).await;
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|c| c.like_count == 0));
        let none = w
            .app
            .store
            .liked_comments(&w.bob.id, None, 10)
            .await
            .unwrap();
        assert!(none.is_empty());
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
