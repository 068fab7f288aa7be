//! `likes-directory-events`: keeps the directory of authors and posts from the identity,
//! profiles, posts and follows topics, and drops the likes of what is deleted. A record's
//! own work is O(1): the directory, and the deleted account's mark (no new likes); the
//! likes themselves, as many as there are, are erased a page a chunk by
//! `likes-cascade-worker` ([`crate::worker`]). Every effect is idempotent (directory
//! writes are, deletes are, and erasing a like is conditional on its `seq`), so Kafka's
//! redeliveries and a job handed on twice do no harm and no marker per event is needed.

use shutter_directory::Directory;
use shutter_events::work::{Job, WithWork, WorkQueue};
use shutter_events::{ConsumeError, Consumer, Envelope, Event, EventSet, EventType};

use crate::App;
use crate::store::{LikesCleanup, LikesStore};
use crate::worker::LikesWork;

/// The one consumer of the service (its binary of the same name).
pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "likes-directory-events",
    // The directory's events; of them, these two also erase likes.
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::UserDeleted,
        EventType::PostDeleted,
    ])),
    summary: "Keeps the likes service's copy of authors and posts; erases a deleted account's likes (each with LikeRemoved) and drops a deleted post's likes.",
};

/// One event's effects.
pub async fn apply<S, D, Q>(
    deps: &WithWork<App<S, D>, Q>,
    envelope: Envelope,
) -> Result<(), ConsumeError>
where
    S: LikesStore + LikesCleanup,
    D: Directory,
    Q: WorkQueue,
{
    match &envelope.event {
        Event::UserDeleted(gone) => {
            // First refuse new likes, then hand on erasing the ones made, then forget the
            // author.
            deps.store.mark_gone(&gone.user_id).await?;
            let erase = LikesWork::EraseUser {
                user_id: gone.user_id.clone(),
            };
            deps.work.enqueue(&Job::new(erase, &envelope)).await?;
            deps.directory.apply(&envelope).await?;
        }
        Event::PostDeleted(post) => {
            // First hide the post (no new likes), then hand on dropping its likes: no
            // events, the post and its counters are gone.
            deps.directory.apply(&envelope).await?;
            let drop = LikesWork::DropPost {
                post_id: post.post_id.clone(),
            };
            deps.work.enqueue(&Job::new(drop, &envelope)).await?;
        }
        _ => deps.directory.apply(&envelope).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine;
    use shutter_directory::{Viewer, visible_post};
    use shutter_events::{
        KafkaEvent, KafkaRecord, LikeFacts, MemoryPoisonQueue, PostDeleted, PostFacts, Topic,
        UserDeleted, UserRegistered,
    };

    use shutter_core::{PostId, UserId};

    use super::*;
    use crate::model::{LikeRequest, transition};
    use crate::store::ACCOUNT_DELETED;
    use crate::testing::{Deps as TestApp, deps as app, like_events, work};

    fn envelope(event: Event) -> Envelope {
        let actor = UserId::generate();
        Envelope::new(event, Some(&actor), "corr")
    }

    fn record(offset: usize, json: &str) -> KafkaRecord {
        let mut r = KafkaRecord::default();
        r.offset = offset as i64;
        r.value = Some(base64::engine::general_purpose::STANDARD.encode(json));
        r
    }

    fn kafka(records: Vec<KafkaRecord>) -> KafkaEvent {
        let mut batch = KafkaEvent::default();
        batch.records.insert("shutter.posts-0".into(), records);
        batch
    }

    fn kafka_of(events: &[Envelope]) -> KafkaEvent {
        kafka(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| record(i, &e.to_json().unwrap()))
                .collect(),
        )
    }

    async fn consume(
        app: &TestApp,
        batch: &KafkaEvent,
    ) -> (shutter_events::BatchReport, MemoryPoisonQueue) {
        let poison = MemoryPoisonQueue::default();
        let report = shutter_events::consume(&DIRECTORY_EVENTS, batch, &poison, |e| apply(app, e))
            .await
            .unwrap();
        (report, poison)
    }

    fn published(post: &PostId, author: &UserId) -> Envelope {
        envelope(Event::PostPublished(PostFacts {
            post_id: post.clone(),
            author_id: author.clone(),
            caption: String::new(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: "t".into(),
            version: 1,
            media: vec![],
        }))
    }

    fn post_deleted(post: &PostId) -> Envelope {
        let author = UserId::generate();
        envelope(Event::PostDeleted(PostDeleted {
            post_id: post.clone(),
            author_id: author.clone(),
            deleted_by: author,
        }))
    }

    fn user_deleted(user: &UserId) -> Envelope {
        envelope(Event::UserDeleted(UserDeleted {
            user_id: user.clone(),
            username: "ann".into(),
        }))
    }

    fn like_request<'a>(post: &'a PostId, author: &'a UserId, user: &'a UserId) -> LikeRequest<'a> {
        LikeRequest {
            post_id: post,
            post_author_id: author,
            user_id: user,
            username: "u",
            liked: true,
        }
    }

    /// GIVEN `user` likes `post` (as the use case would commit it).
    async fn like(app: &TestApp, post: &PostId, user: &UserId) {
        let author = UserId::generate();
        let current = app.store.state(post, user).await.unwrap();
        let next = transition(current.as_ref(), &like_request(post, &author, user)).unwrap();
        app.store
            .commit(current.as_ref(), &next, &next.event(Some(user), "c"))
            .await
            .unwrap();
    }

    #[test]
    fn it_handles_the_directorys_events_on_the_topics_it_subscribes_to() {
        for t in shutter_directory::EVENTS.iter() {
            assert!(DIRECTORY_EVENTS.handles.contains(t), "{t:?}");
        }
        assert_eq!(
            DIRECTORY_EVENTS
                .handles
                .topics()
                .into_iter()
                .collect::<Vec<_>>(),
            [
                Topic::Identity,
                Topic::Profiles,
                Topic::Posts,
                Topic::Follows
            ],
            "template.yaml subscribes likes-directory-events to these"
        );
        assert!(!DIRECTORY_EVENTS.handles.contains(EventType::LikeAdded));
    }

    #[tokio::test]
    async fn the_directory_learns_authors_and_posts_from_events() {
        let app = app();
        let (ann, bob, post) = (UserId::generate(), UserId::generate(), PostId::generate());
        let registered = envelope(Event::UserRegistered(UserRegistered {
            user_id: ann.clone(),
            username: "ann".into(),
            created_at: "t".into(),
        }));
        let (report, poison) =
            consume(&app, &kafka_of(&[registered, published(&post, &ann)])).await;
        assert_eq!(report.handled, 2);
        assert!(poison.positions().is_empty());
        let viewer = Viewer {
            user_id: &bob,
            staff: false,
        };
        let (_, author) = visible_post(&app.directory, &post, viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(author.username, "ann");
    }

    #[tokio::test]
    async fn a_deleted_post_loses_its_likes_without_events() {
        // GIVEN two likes of p and one of q
        let app = app();
        let (p, q) = (PostId::generate(), PostId::generate());
        let (u1, u2) = (UserId::generate(), UserId::generate());
        like(&app, &p, &u1).await;
        like(&app, &p, &u2).await;
        like(&app, &q, &u1).await;
        let events_before = app.store.events().len();
        app.directory.apply(&published(&p, &u2)).await.unwrap();
        // WHEN p's deletion arrives twice
        let deleted = post_deleted(&p);
        apply(&app, deleted.clone()).await.unwrap();
        apply(&app, deleted).await.unwrap();
        work(&app).await;
        // THEN p is hidden and its likes gone, q's stay, and nothing is emitted
        assert_eq!(app.directory.post(&p).await.unwrap(), None);
        assert_eq!(app.store.items_of_post(&p), 0);
        assert_eq!(app.store.items_of_post(&q), 2);
        assert_eq!(app.store.events().len(), events_before);
        assert_eq!(app.store.posts_liked_by(&u1, 10).await.unwrap(), [q]);
    }

    #[tokio::test]
    async fn a_deleted_users_likes_are_removed_with_one_event_each_and_no_new_ones() {
        // GIVEN u1 likes p and q (and took back a like of r), u2 likes p
        let app = app();
        let (p, q, r) = (PostId::generate(), PostId::generate(), PostId::generate());
        let (u1, u2) = (UserId::generate(), UserId::generate());
        like(&app, &p, &u1).await;
        like(&app, &q, &u1).await;
        like(&app, &p, &u2).await;
        like(&app, &r, &u1).await;
        let liked = app.store.state(&r, &u1).await.unwrap().unwrap();
        let mut unliked = liked.clone();
        unliked.liked = false;
        unliked.seq = 2;
        unliked.entry = None;
        app.store
            .commit(Some(&liked), &unliked, &unliked.event(None, "c"))
            .await
            .unwrap();
        let before = app.store.events().len();
        // WHEN u1's deletion arrives twice
        let deleted = user_deleted(&u1);
        apply(&app, deleted.clone()).await.unwrap();
        apply(&app, deleted.clone()).await.unwrap();
        work(&app).await;
        // THEN one LikeRemoved per like that held, a redelivery adds none
        let removed: Vec<_> = like_events(&app.store).split_off(before);
        assert_eq!(
            removed,
            [
                ("LikeRemoved", u1.clone(), 2),
                ("LikeRemoved", u1.clone(), 2)
            ]
        );
        let causes = app.store.events().split_off(before);
        assert!(
            causes
                .iter()
                .all(|e| e.correlation_id == "corr" && e.actor == deleted.actor)
        );
        // AND u2's like stays, u1's are gone, and so is u1 from the directory
        assert_eq!(app.store.items_of_post(&p), 2, "u2's state and entry stay");
        assert_eq!(app.store.state(&r, &u1).await.unwrap(), None);
        assert!(app.store.posts_liked_by(&u1, 10).await.unwrap().is_empty());
        // AND a token that outlived the account cannot like again
        let author = UserId::generate();
        let next = transition(None, &like_request(&p, &author, &u1)).unwrap();
        let err = app
            .store
            .commit(None, &next, &next.event(None, "c"))
            .await
            .unwrap_err();
        assert!(err.is_conflict(ACCOUNT_DELETED), "{err}");
    }

    #[tokio::test]
    async fn undecodable_events_go_to_the_dlq() {
        let app = app();
        let bad_payload = r#"{"id":"01J","type":"PostDeleted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"p","correlation_id":"c","data":{"post":1}}"#;
        let (report, poison) = consume(&app, &kafka(vec![record(7, bad_payload)])).await;
        assert_eq!(poison.positions(), ["shutter.posts-0@7"]);
        assert_eq!(report.poisoned, 1);
    }

    #[tokio::test]
    async fn events_it_does_not_handle_or_know_are_skipped_not_poison() {
        // GIVEN a like event (not handled) and an event type this build does not know
        let app = app();
        let like_added = envelope(Event::LikeAdded(LikeFacts {
            post_id: PostId::generate(),
            post_author_id: UserId::generate(),
            user_id: UserId::generate(),
            seq: 1,
            at: "t".into(),
        }));
        let unknown = r#"{"id":"01J","type":"StoryPosted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"s","correlation_id":"c","data":{}}"#;
        let batch = kafka(vec![
            record(1, &like_added.to_json().unwrap()),
            record(2, unknown),
        ]);
        // WHEN consumed THEN both are skipped and counted, none is poison
        let (report, poison) = consume(&app, &batch).await;
        assert_eq!(
            (
                report.handled,
                report.ignored,
                report.unknown,
                report.poisoned
            ),
            (0, 1, 1, 0)
        );
        assert!(poison.positions().is_empty());
        assert!(app.store.events().is_empty());
    }

    #[tokio::test]
    async fn a_deleted_users_many_likes_go_a_page_a_chunk_each_counted_down_once() {
        // GIVEN u likes five posts (two a chunk here), and v likes the first
        let app = app();
        let (u, v) = (UserId::generate(), UserId::generate());
        let posts: Vec<PostId> = (0..5).map(|_| PostId::generate()).collect();
        for post in &posts {
            like(&app, post, &u).await;
        }
        like(&app, &posts[0], &v).await;
        let before = app.store.events().len();
        // WHEN u's deletion is applied THEN the record hands on one job and erases nothing
        let deleted = user_deleted(&u);
        apply(&app, deleted.clone()).await.unwrap();
        assert_eq!(app.store.events().len(), before);
        // WHEN the job runs, and runs again (SQS delivered it twice)
        let jobs = app.work.take::<LikesWork>();
        assert_eq!(jobs.len(), 1);
        let mut chunks = 0;
        for _ in 0..2 {
            app.work.enqueue(&jobs[0]).await.unwrap();
            let failed = app
                .work
                .drain(100, |job| {
                    chunks += 1;
                    crate::worker::chunk(&app, job)
                })
                .await;
            assert!(failed.is_empty());
        }
        // THEN each like went with one LikeRemoved, over several chunks; v's stays
        let removed = like_events(&app.store).split_off(before);
        assert_eq!(removed.len(), 5, "{removed:?}");
        assert!(
            removed
                .iter()
                .all(|(t, user, seq)| *t == "LikeRemoved" && *user == u && *seq == 2)
        );
        assert!(chunks >= 4, "{chunks} chunks");
        assert!(app.store.posts_liked_by(&u, 10).await.unwrap().is_empty());
        assert_eq!(
            app.store.posts_liked_by(&v, 10).await.unwrap(),
            [posts[0].clone()]
        );
    }

    #[tokio::test]
    async fn a_deleted_posts_many_likes_are_dropped_a_page_a_chunk() {
        // GIVEN five likes of p and one of q
        let app = app();
        let (p, q) = (PostId::generate(), PostId::generate());
        let users: Vec<UserId> = (0..5).map(|_| UserId::generate()).collect();
        for user in &users {
            like(&app, &p, user).await;
        }
        like(&app, &q, &users[0]).await;
        // WHEN p is deleted and the work runs
        apply(&app, post_deleted(&p)).await.unwrap();
        work(&app).await;
        // THEN p has no like items left, q keeps its own
        assert_eq!(app.store.items_of_post(&p), 0);
        assert_eq!(app.store.items_of_post(&q), 2);
        assert_eq!(app.store.posts_liked_by(&users[0], 10).await.unwrap(), [q]);
    }

    #[tokio::test]
    async fn a_queue_outage_fails_the_record_for_a_retry() {
        let app = app();
        app.work.set_down(true);
        let err = apply(&app, user_deleted(&UserId::generate()))
            .await
            .unwrap_err();
        assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
    }
}
