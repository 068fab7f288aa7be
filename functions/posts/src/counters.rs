//! `posts-events`, the posts service's Kafka consumer:
//! - engagement (`LikeAdded`, `LikeRemoved`, `CommentAdded`, `CommentDeleted`) becomes
//!   `like_count`, `comment_count` and the `liked_by_me` markers, with
//!   `PostEngagementChanged`;
//! - authors, follows and blocks go to the directory (who may see whose posts);
//! - `PostDeleted` removes the post's media; `UserDeleted` hands on deleting the user's
//!   posts, as many as there are, to `posts-cascade-worker` ([`crate::worker`]);
//! - `ContentRemoved` of a post marks it removed ([`crate::model::Post::removal`]): kept,
//!   with its counters, for its author and staff only, for good. Suspensions and bans
//!   (`UserSuspended`, `UserReinstated`) only go to the directory, which refuses the
//!   account's writes and hides a banned author's posts.
//!
//! Counters on a hot post: one post's events share a Kafka partition (keyed by post id),
//! so one consumer sees them in order, and a batch of up to 100 becomes one BatchGetItem
//! and one transaction per 98 changes: the post item takes one write per batch, not one
//! per like. Each (post, user) like and each comment has a marker holding the sequence
//! number of the last change applied; a change applies only if its number is higher, and
//! the counter moves by the difference in "counted" state, in the same transaction. So
//! redelivery, duplicates from the outbox and replays after a partial failure never move
//! a counter twice.

use std::collections::{BTreeMap, HashMap};

use shutter_core::PostId;
use shutter_directory::Directory;
use shutter_events::work::{Job, WithWork, WorkQueue};
use shutter_events::{
    Batch, ConsumeError, Consumer, ContentRemoved, EngagementChanged, Envelope, Event, EventSet,
    EventType, RemovedKind,
};
use shutter_media::MediaStore;
use shutter_store::StoreError;

use crate::App;
use crate::model::{Counter, Marker, MarkerId, media_prefix, uploads_prefix};
use crate::store::{self, MarkerWrite, PostsStore, Tally};
use crate::worker::PostsWork;

pub const EVENTS: Consumer = Consumer {
    name: "posts-events",
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::LikeAdded,
        EventType::LikeRemoved,
        EventType::CommentAdded,
        EventType::CommentDeleted,
        EventType::PostDeleted,
        EventType::UserDeleted,
    ])),
    summary: "Counts likes and comments into the posts' counters (PostEngagementChanged); keeps the posts service's directory (suspensions and bans included); marks a post staff removed; removes a deleted post's media and a deleted account's posts.",
};

/// One change of one marker of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub post_id: PostId,
    pub marker: MarkerId,
    pub seq: u64,
    pub counted: bool,
}

/// The marker change an engagement event asks for; `None` for other events.
pub fn change_of(event: &Event) -> Option<Change> {
    let like = |f: &shutter_events::LikeFacts, counted| Change {
        post_id: f.post_id.clone(),
        marker: MarkerId::Like(f.user_id.clone()),
        seq: f.seq,
        counted,
    };
    // A comment is added once and deleted once: its sequence is 1 then 2.
    let comment = |post_id: &PostId, comment_id: &shutter_core::CommentId, seq: u64| Change {
        post_id: post_id.clone(),
        marker: MarkerId::Comment(comment_id.clone()),
        seq,
        counted: seq == 1,
    };
    match event {
        Event::LikeAdded(f) => Some(like(f, true)),
        Event::LikeRemoved(f) => Some(like(f, false)),
        Event::CommentAdded(c) => Some(comment(&c.post_id, &c.comment_id, 1)),
        Event::CommentDeleted(c) => Some(comment(&c.post_id, &c.comment_id, 2)),
        _ => None,
    }
}

/// The last change per marker of one post, in marker order.
pub fn latest_per_marker(changes: Vec<Change>) -> Vec<Change> {
    let mut latest: BTreeMap<MarkerId, Change> = BTreeMap::new();
    for c in changes {
        match latest.get(&c.marker) {
            Some(seen) if seen.seq >= c.seq => {}
            _ => {
                latest.insert(c.marker.clone(), c);
            }
        }
    }
    latest.into_values().collect()
}

/// The changes that apply over `stored`, and how each counter moves.
pub fn plan(
    changes: &[Change],
    stored: &HashMap<MarkerId, Marker>,
) -> (Vec<Change>, HashMap<Counter, i64>) {
    let mut applied = Vec::new();
    let mut deltas: HashMap<Counter, i64> = HashMap::new();
    for c in changes {
        let old = stored.get(&c.marker);
        if old.is_some_and(|m| m.seq >= c.seq) {
            continue;
        }
        let was = old.is_some_and(|m| m.counted);
        *deltas.entry(c.marker.counter()).or_default() += i64::from(c.counted) - i64::from(was);
        applied.push(c.clone());
    }
    (applied, deltas)
}

/// Markers per transaction: with the post's update and the event, 100 items at most.
const MARKERS_PER_TRANSACTION: usize = 98;

/// How often a tally is read and written again when a marker changed meanwhile.
const MAX_ATTEMPTS: usize = 5;

/// The consumer: see the module documentation. Engagement is gathered per post and
/// counted after the rest of the batch is applied.
pub async fn apply<S: PostsStore, M: MediaStore, D: Directory, W: WorkQueue>(
    deps: &WithWork<App<S, M, D>, W>,
    mut batch: Batch,
) -> Result<Batch, ConsumeError> {
    let mut engagement: BTreeMap<PostId, Vec<Change>> = BTreeMap::new();
    let records = batch.records().to_vec();
    for record in &records {
        if let Some(change) = change_of(&record.envelope.event) {
            engagement
                .entry(change.post_id.clone())
                .or_default()
                .push(change);
            continue;
        }
        match apply_other(deps, &record.envelope).await {
            Ok(()) => {}
            Err(ConsumeError::Poison(reason)) => batch.poison(record, reason),
            Err(retry) => return Err(retry),
        }
    }
    for (post_id, changes) in engagement {
        count(&deps.store, &post_id, changes).await?;
    }
    Ok(batch)
}

/// Applies one post's changes: markers, counters and the event together, 98 markers a
/// transaction.
async fn count<S: PostsStore>(
    store: &S,
    post_id: &PostId,
    changes: Vec<Change>,
) -> Result<(), ConsumeError> {
    let changes = latest_per_marker(changes);
    for chunk in changes.chunks(MARKERS_PER_TRANSACTION) {
        let markers: Vec<MarkerId> = chunk.iter().map(|c| c.marker.clone()).collect();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let stored = store.markers(post_id, &markers).await?;
            let (applied, deltas) = plan(chunk, &stored);
            if applied.is_empty() {
                break;
            }
            let delta = |c| deltas.get(&c).copied().unwrap_or(0);
            let (like_delta, comment_delta) = (delta(Counter::Likes), delta(Counter::Comments));
            let event = (like_delta != 0 || comment_delta != 0).then(|| {
                Envelope::new(
                    Event::PostEngagementChanged(EngagementChanged {
                        post_id: post_id.clone(),
                        like_delta,
                        comment_delta,
                    }),
                    None,
                    &format!("engagement-{post_id}"),
                )
            });
            let tally = Tally {
                post_id: post_id.clone(),
                markers: applied
                    .iter()
                    .map(|c| MarkerWrite {
                        marker: c.marker.clone(),
                        previous: stored.get(&c.marker).map(|m| m.seq),
                        seq: c.seq,
                        counted: c.counted,
                    })
                    .collect(),
                like_delta,
                comment_delta,
                event,
            };
            match store.tally(&tally).await {
                Ok(()) => break,
                Err(StoreError::Conflict(store::POST_GONE)) => {
                    // The post is gone: its counters no longer matter.
                    tracing::info!(%post_id, "engagement for a deleted post ignored");
                    return Ok(());
                }
                // Another delivery moved a marker meanwhile: read them again.
                Err(StoreError::Conflict(store::MARKER_CHANGED)) if attempts < MAX_ATTEMPTS => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

async fn apply_other<S: PostsStore, M: MediaStore, D: Directory, W: WorkQueue>(
    deps: &WithWork<App<S, M, D>, W>,
    envelope: &Envelope,
) -> Result<(), ConsumeError> {
    deps.directory.apply(envelope).await?;
    match &envelope.event {
        Event::PostDeleted(gone) => {
            // Safe to repeat: deleting what is gone is a no-op.
            deps.media
                .delete_prefix(&media_prefix(&gone.post_id))
                .await?;
            deps.media
                .delete_prefix(&uploads_prefix(&gone.author_id, &gone.post_id))
                .await?;
            Ok(())
        }
        Event::UserDeleted(gone) => {
            let work = PostsWork::DeleteAuthor {
                user_id: gone.user_id.clone(),
            };
            deps.work.enqueue(&Job::new(work, envelope)).await?;
            Ok(())
        }
        Event::ContentRemoved(removed) if removed.kind == RemovedKind::Post => {
            remove(&deps.store, removed).await
        }
        _ => Ok(()),
    }
}

/// Marks the post removed, keeping it (and its counters) for its author and staff. Once:
/// a redelivery, or a second removal, finds it removed and changes nothing; a post gone
/// (deleted, or its author's account) needs nothing. No event: `ContentRemoved` says it,
/// and the version it bumps makes an edit read before it stale.
async fn remove<S: PostsStore>(store: &S, removed: &ContentRemoved) -> Result<(), ConsumeError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(post) = store.post(&removed.post_id).await? else {
            return Ok(());
        };
        let Some(after) = post.removal(&removed.note, &removed.removed_at) else {
            return Ok(());
        };
        match store.save(&post, &after, &[]).await {
            Ok(()) => {
                tracing::info!(post_id = %post.id, "post removed by staff");
                return Ok(());
            }
            // Edited or settled meanwhile: read it again.
            Err(StoreError::Conflict(store::STALE)) => {}
            // The account is deleted: its posts go with it.
            Err(StoreError::Conflict(store::ACCOUNT_DELETED)) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(
        "the removed post kept changing; retry",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use shutter_core::{CommentId, UserId};
    use shutter_events::{
        BatchReport, CommentAdded, CommentDeleted, KafkaEvent, KafkaRecord, LikeFacts,
        MemoryPoisonQueue, PostDeleted, UserDeleted,
    };

    use super::*;
    use crate::model::PostStatus;
    use crate::testing::{Deps as TestApp, deps as app, event_types, post, user, work};

    fn like(user: &UserId, seq: u64) -> Change {
        Change {
            post_id: PostId::trusted("p"),
            marker: MarkerId::Like(user.clone()),
            seq,
            counted: seq % 2 == 1,
        }
    }

    fn like_event(post: &PostId, user: &UserId, seq: u64, added: bool) -> Envelope {
        let facts = LikeFacts {
            post_id: post.clone(),
            post_author_id: UserId::generate(),
            user_id: user.clone(),
            seq,
            at: "t".into(),
        };
        let event = if added {
            Event::LikeAdded(facts)
        } else {
            Event::LikeRemoved(facts)
        };
        Envelope::new(event, Some(user), "c")
    }

    fn comment_events(post: &PostId) -> (Envelope, Envelope) {
        let (comment_id, author_id) = (CommentId::generate(), UserId::generate());
        let added = Event::CommentAdded(CommentAdded {
            comment_id: comment_id.clone(),
            post_id: post.clone(),
            author_id: author_id.clone(),
            reply_to: None,
            text: "hi".into(),
            hashtags: vec![],
            mentions: vec![],
            created_at: "t".into(),
        });
        let deleted = Event::CommentDeleted(CommentDeleted {
            comment_id,
            post_id: post.clone(),
            author_id: author_id.clone(),
            deleted_by: author_id,
        });
        (
            Envelope::new(added, None, "c"),
            Envelope::new(deleted, None, "c"),
        )
    }

    fn kafka(values: &[String]) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for (offset, value) in values.iter().enumerate() {
            let mut record = KafkaRecord::default();
            record.offset = offset as i64;
            record.value = Some(STANDARD.encode(value));
            event.records.entry("t-0".into()).or_default().push(record);
        }
        event
    }

    /// Runs the consumer on one MSK batch of `envelopes`, as Lambda would.
    async fn consume(
        app: &TestApp,
        envelopes: &[&Envelope],
    ) -> (Result<BatchReport, ConsumeError>, MemoryPoisonQueue) {
        let values: Vec<String> = envelopes.iter().map(|e| e.to_json().unwrap()).collect();
        consume_raw(app, &values).await
    }

    async fn consume_raw(
        app: &TestApp,
        values: &[String],
    ) -> (Result<BatchReport, ConsumeError>, MemoryPoisonQueue) {
        let queue = MemoryPoisonQueue::default();
        let batch = Batch::decode(&EVENTS, &kafka(values));
        let result = match apply(app, batch).await {
            Ok(batch) => batch.finish(&EVENTS, &queue).await,
            Err(err) => Err(err),
        };
        (result, queue)
    }

    #[test]
    fn duplicates_and_replays_move_a_counter_once() {
        let (a, b, c) = (UserId::generate(), UserId::generate(), UserId::generate());
        let batch = latest_per_marker(vec![
            like(&a, 1),
            like(&a, 1),
            like(&b, 1),
            like(&c, 1),
            like(&c, 2),
        ]);
        let (applied, deltas) = plan(&batch, &HashMap::new());
        assert_eq!(applied.len(), 3);
        // a and b like; c liked then unliked: +2.
        assert_eq!(deltas[&Counter::Likes], 2);
        // The same batch again, over what it stored: nothing moves.
        let stored = applied
            .iter()
            .map(|c| {
                (
                    c.marker.clone(),
                    Marker {
                        seq: c.seq,
                        counted: c.counted,
                    },
                )
            })
            .collect();
        let (again, _) = plan(&batch, &stored);
        assert!(again.is_empty());
    }

    #[test]
    fn an_older_change_never_undoes_a_newer_one() {
        let a = UserId::generate();
        let stored = HashMap::from([(
            MarkerId::Like(a.clone()),
            Marker {
                seq: 2,
                counted: false,
            },
        )]);
        let (applied, _) = plan(&[like(&a, 1)], &stored);
        assert!(applied.is_empty());
        let (applied, deltas) = plan(&[like(&a, 3)], &stored);
        assert_eq!((applied.len(), deltas[&Counter::Likes]), (1, 1));
    }

    #[test]
    fn comments_count_once_and_uncount_once() {
        let post = PostId::generate();
        let (added, deleted) = comment_events(&post);
        let a = change_of(&added.event).unwrap();
        let d = change_of(&deleted.event).unwrap();
        let (_, deltas) = plan(
            &latest_per_marker(vec![a.clone(), a.clone()]),
            &HashMap::new(),
        );
        assert_eq!(deltas[&Counter::Comments], 1);
        // Deleted before its add was seen (or with it): never counted.
        let (_, deltas) = plan(
            &latest_per_marker(vec![d.clone(), a.clone()]),
            &HashMap::new(),
        );
        assert_eq!(deltas[&Counter::Comments], 0);
        let stored = HashMap::from([(
            a.marker,
            Marker {
                seq: 1,
                counted: true,
            },
        )]);
        assert_eq!(plan(&[d], &stored).1[&Counter::Comments], -1);
    }

    #[tokio::test]
    async fn malformed_engagement_is_poison_and_other_events_are_not_engagement() {
        let app = app();
        let bad = r#"{"id":"01J","type":"LikeAdded","version":1,"occurred_at":"t","actor":null,"aggregate_id":"p","correlation_id":"c","data":{"post_id":"p"}}"#;
        let (result, queue) = consume_raw(&app, &[bad.to_owned()]).await;
        assert_eq!(result.unwrap().poisoned, 1);
        assert_eq!(queue.positions(), vec!["t-0@0"]);
        let ann = UserId::generate();
        let created =
            Event::PostCreated(crate::testing::post(&app, &ann, PostStatus::Pending).facts());
        assert_eq!(change_of(&created), None);
        assert!(!EVENTS.handles.contains(EventType::PostCreated));
    }

    #[tokio::test]
    async fn likes_and_comments_are_counted_once_however_often_delivered() {
        let app = app();
        let (ann, bob, cat) = (
            user(&app, "ann", false),
            UserId::generate(),
            UserId::generate(),
        );
        let post = post(&app, &ann, PostStatus::Published);
        let (comment, _) = comment_events(&post.id);
        let (bob_likes, cat_likes) = (
            like_event(&post.id, &bob, 1, true),
            like_event(&post.id, &cat, 1, true),
        );
        let batch = [&bob_likes, &bob_likes, &cat_likes, &comment];
        // WHEN the batch is delivered, then delivered again
        let (first, _) = consume(&app, &batch).await;
        assert_eq!(first.unwrap().handled, 4);
        let (again, queue) = consume(&app, &batch).await;
        again.unwrap();
        // THEN each like and the comment counted once, with one event saying so
        let stored = app.store.stored(&post.id).unwrap();
        assert_eq!((stored.like_count, stored.comment_count), (2, 1));
        let events = app.store.events();
        let [changed] = events.as_slice() else {
            panic!("one event: {events:?}")
        };
        assert_eq!(
            changed.event,
            Event::PostEngagementChanged(EngagementChanged {
                post_id: post.id.clone(),
                like_delta: 2,
                comment_delta: 1,
            })
        );
        assert_eq!(changed.correlation_id, format!("engagement-{}", post.id));
        assert!(queue.positions().is_empty());
        let liked = app
            .store
            .liked_by(&bob, std::slice::from_ref(&post.id))
            .await
            .unwrap();
        assert!(liked.contains(&post.id));
        // An unlike (a newer seq) takes it back; a late older like does not undo it.
        let unlike = like_event(&post.id, &bob, 2, false);
        consume(&app, &[&unlike, &bob_likes]).await.0.unwrap();
        assert_eq!(app.store.stored(&post.id).unwrap().like_count, 1);
        assert!(
            app.store
                .liked_by(&bob, std::slice::from_ref(&post.id))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn engagement_for_a_deleted_post_changes_nothing() {
        let app = app();
        let gone = PostId::generate();
        let (result, queue) =
            consume(&app, &[&like_event(&gone, &UserId::generate(), 1, true)]).await;
        result.unwrap();
        assert!(queue.positions().is_empty());
        assert!(app.store.events().is_empty());
    }

    #[tokio::test]
    async fn unavailable_storage_fails_the_batch_for_a_retry() {
        let app = app();
        let ann = user(&app, "ann", false);
        let post = post(&app, &ann, PostStatus::Published);
        app.store.set_unavailable(true);
        let (result, queue) = consume(&app, &[&like_event(&post.id, &ann, 1, true)]).await;
        assert!(matches!(result, Err(ConsumeError::Retry(_))), "{result:?}");
        assert!(queue.positions().is_empty());
    }

    #[tokio::test]
    async fn a_deleted_accounts_posts_are_deleted_each_with_its_event() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let (first, second) = (
            post(&app, &ann, PostStatus::Published),
            post(&app, &ann, PostStatus::Pending),
        );
        let kept = post(&app, &bob, PostStatus::Published);
        let gone = Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: ann.clone(),
                username: "ann".into(),
            }),
            Some(&ann),
            "corr-gone",
        );
        // WHEN ann's account is deleted (and the event delivered twice)
        consume(&app, &[&gone]).await.0.unwrap();
        consume(&app, &[&gone]).await.0.unwrap();
        work(&app).await;
        // THEN her posts are gone, each with one PostDeleted; bob's stays
        assert_eq!(app.store.stored(&first.id), None);
        assert_eq!(app.store.stored(&second.id), None);
        assert!(app.store.stored(&kept.id).is_some());
        let deleted: Vec<PostDeleted> = app
            .store
            .events()
            .into_iter()
            .map(|e| {
                assert_eq!(
                    (e.actor.as_ref(), e.correlation_id.as_str()),
                    (Some(&ann), "corr-gone")
                );
                match e.event {
                    Event::PostDeleted(d) => d,
                    other => panic!("not PostDeleted: {other:?}"),
                }
            })
            .collect();
        assert_eq!(deleted.len(), 2);
        assert!(
            deleted
                .iter()
                .all(|d| d.author_id == ann && d.deleted_by == ann)
        );
        // The directory forgot her.
        assert_eq!(app.directory.author(&ann).await.unwrap(), None);
    }

    fn removal(post: &PostId, author: &UserId, note: &str) -> Envelope {
        Envelope::new(
            Event::ContentRemoved(ContentRemoved {
                kind: RemovedKind::Post,
                target_id: post.to_string(),
                post_id: post.clone(),
                author_id: author.clone(),
                note: note.into(),
                removed_by: UserId::generate(),
                removed_at: "2026-12-07T00:00:00.000Z".into(),
            }),
            None,
            "c",
        )
    }

    #[tokio::test]
    async fn a_removed_post_is_marked_once_and_keeps_its_counters() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), UserId::generate());
        let post = post(&app, &ann, PostStatus::Published);
        consume(&app, &[&like_event(&post.id, &bob, 1, true)])
            .await
            .0
            .unwrap();
        let events = app.store.events().len();
        // GIVEN staff removed one of its comments THEN the post stays as it was
        let mut comment = removal(&post.id, &ann, "rude");
        if let Event::ContentRemoved(r) = &mut comment.event {
            r.kind = RemovedKind::Comment;
            r.target_id = CommentId::generate().to_string();
        }
        consume(&app, &[&comment]).await.0.unwrap();
        assert_eq!(app.store.stored(&post.id).unwrap().removed, None);
        // WHEN staff remove it, the event is delivered twice, and a second removal
        // with another note follows
        let removed = removal(&post.id, &ann, "spam");
        consume(&app, &[&removed, &removed]).await.0.unwrap();
        consume(&app, &[&removal(&post.id, &ann, "again")])
            .await
            .0
            .unwrap();
        // THEN the post is kept, removed with the first note, its version bumped once,
        // and its like still counted; nothing is emitted
        let stored = app.store.stored(&post.id).unwrap();
        let why = stored.removed.clone().unwrap();
        assert_eq!(
            (why.note.as_str(), why.removed_at.as_str()),
            ("spam", "2026-12-07T00:00:00.000Z")
        );
        assert_eq!(stored.version, post.version + 1);
        assert_eq!(stored.like_count, 1);
        assert_eq!(app.store.events().len(), events);
        // AND an unlike still counts down (the counters do not drift)
        consume(&app, &[&like_event(&post.id, &bob, 2, false)])
            .await
            .0
            .unwrap();
        let stored = app.store.stored(&post.id).unwrap();
        assert_eq!((stored.like_count, stored.removed.is_some()), (0, true));
        // AND a removal of a post gone changes nothing
        let gone = removal(&PostId::generate(), &ann, "spam");
        let (result, queue) = consume(&app, &[&gone]).await;
        assert_eq!(result.unwrap().poisoned, 0);
        assert!(queue.positions().is_empty());
    }

    #[tokio::test]
    async fn a_deleted_posts_media_are_removed() {
        let app = app();
        let ann = user(&app, "ann", false);
        let (post, other) = (PostId::generate(), PostId::generate());
        for key in [
            format!("post-media/{post}/m/display.jpg"),
            format!("post-uploads/{ann}/{post}/m.jpg"),
            format!("post-media/{other}/m/display.jpg"),
        ] {
            app.media.upload(&key, "image/jpeg", vec![1]);
        }
        let deleted = Envelope::new(
            Event::PostDeleted(PostDeleted {
                post_id: post.clone(),
                author_id: ann.clone(),
                deleted_by: ann.clone(),
            }),
            Some(&ann),
            "c",
        );
        consume(&app, &[&deleted]).await.0.unwrap();
        let left: Vec<String> = app.media.objects.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, vec![format!("post-media/{other}/m/display.jpg")]);
        assert!(event_types(&app).is_empty());
    }

    #[tokio::test]
    async fn a_deleted_accounts_many_posts_go_a_page_a_chunk() {
        // GIVEN ann has five posts (two a chunk here)
        let app = app();
        let ann = user(&app, "ann", false);
        let posts: Vec<_> = (0..5)
            .map(|_| post(&app, &ann, PostStatus::Published))
            .collect();
        let gone = Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: ann.clone(),
                username: "ann".into(),
            }),
            Some(&ann),
            "corr-gone",
        );
        // WHEN her deletion is consumed THEN the batch only hands the work on
        consume(&app, &[&gone]).await.0.unwrap();
        assert!(event_types(&app).is_empty());
        // WHEN the work runs THEN it takes three chunks, and each post went once
        let mut chunks = 0;
        let failed = app
            .work
            .drain(100, |job| {
                chunks += 1;
                crate::worker::chunk(&app, job)
            })
            .await;
        assert!(failed.is_empty());
        assert_eq!(chunks, 3);
        for post in &posts {
            assert_eq!(app.store.stored(&post.id), None);
        }
        assert_eq!(event_types(&app), vec![EventType::PostDeleted; 5]);
    }

    #[tokio::test]
    async fn a_queue_outage_fails_the_batch_for_a_retry() {
        let app = app();
        let ann = user(&app, "ann", false);
        app.work.set_down(true);
        let gone = Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: ann.clone(),
                username: "ann".into(),
            }),
            Some(&ann),
            "c",
        );
        let (result, queue) = consume(&app, &[&gone]).await;
        assert!(matches!(result, Err(ConsumeError::Retry(_))), "{result:?}");
        assert!(queue.positions().is_empty());
    }
}
