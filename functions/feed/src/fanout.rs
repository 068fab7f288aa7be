//! `feed-events`: builds home timelines from the posts, follows, likes, identity and
//! profiles topics.
//!
//! Hybrid fan-out. A post of an ordinary author is written into each follower's timeline
//! after publication; a post of a celebrity (an author with at least
//! `FEED_CELEBRITY_FOLLOWERS` followers) is not, and its followers' feeds merge the
//! celebrity's recent posts at read time instead.
//!
//! Each record's own work is bounded: what grows with the author's followers or the
//! user's timeline (writing a post to every follower, taking a deleted post out again,
//! listing a new celebrity among their followers, clearing a deleted account's timeline)
//! goes on the feed's work queue as a job, done a page a chunk by `feed-fanout-worker`
//! ([`crate::worker`]). Handing a job on twice (a redelivered record) is harmless: every
//! chunk is idempotent.
//!
//! Following someone backfills their recent posts into the follower's timeline;
//! unfollowing (and the follow ends a block or an account deletion cause) removes them.
//! Follow and like events apply once and in order through their `seq`; engagement deltas
//! once per event id.

use std::slice::from_ref;

use shutter_core::{PostId, UserId};
use shutter_directory::Directory;
use shutter_events::work::{Job, WithWork, WorkQueue};
use shutter_events::{
    ConsumeError, Consumer, EdgeFacts, Envelope, Event, EventSet, EventType, LikeFacts, PostFacts,
    RemovedKind,
};
use shutter_store::{StoreError, StoreResult};

use crate::Timelines;
use crate::model::{BACKFILL, FollowChange, PairMarker, PostCopy, follow_change};
use crate::store::{
    EDGE_MOVED, FeedStore, LIKE_STALE, POST_EXISTS, POST_GONE, POST_STALE, PROCESSED,
};
use crate::worker::FeedWork;

/// The feed's consumer: its own events, and the directory's (authors' names and
/// avatars for hydration, follows and blocks).
pub const EVENTS: Consumer = Consumer {
    name: "feed-events",
    handles: shutter_directory::EVENTS.union(EventSet::of(&[
        EventType::PostUpdated,
        EventType::PostEngagementChanged,
        EventType::LikeAdded,
        EventType::LikeRemoved,
    ])),
    summary: "Builds home timelines: fans ordinary authors' posts out to their followers, backfills and removes posts as follows start and end, takes out posts deleted or removed by staff, clears a deleted account's timeline, and keeps the feed's copies of posts, their counts, likes and authors (and which are banned).",
};

/// Entries read per page while removing an author's posts from a timeline.
const REMOVE_PAGE: usize = 100;

/// Tries at moving a follow marker that others keep moving.
const EDGE_ATTEMPTS: usize = 5;

/// What the consumer works with: the timelines and the feed's work queue.
pub type Deps<S, D, Q> = WithWork<Timelines<S, D>, Q>;

/// One event's effects, then the directory's.
pub async fn apply<S: FeedStore, D: Directory, Q: WorkQueue>(
    deps: &Deps<S, D, Q>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    let store = &deps.store;
    match &envelope.event {
        Event::PostPublished(facts) => publish(deps, facts, &envelope).await?,
        Event::PostUpdated(facts) => {
            // An older or repeated edit, or one of a post deleted since, changes nothing.
            let edit = store.update_post(&PostCopy::of(facts, "")).await;
            expected(edit, &[POST_STALE])?;
        }
        Event::PostDeleted(gone) => {
            unpublish(deps, &gone.post_id, &gone.author_id, &envelope).await?
        }
        // A post staff removed leaves every feed, its author's too (the author sees it,
        // and why, on the post itself), for good: the tombstone keeps a late
        // `PostPublished` or `PostUpdated` from bringing it back.
        Event::ContentRemoved(removed) if removed.kind == RemovedKind::Post => {
            unpublish(deps, &removed.post_id, &removed.author_id, &envelope).await?
        }
        Event::PostEngagementChanged(change) => {
            // Counted before, or about a post unknown here or deleted: nothing to count.
            let counted = store
                .add_engagement(EVENTS.name, &envelope.id, change)
                .await;
            expected(counted, &[PROCESSED, POST_GONE])?;
        }
        Event::FollowStarted(edge) => follow_changed(deps, edge, true, &envelope).await?,
        Event::FollowEnded(edge) => follow_changed(deps, edge, false, &envelope).await?,
        Event::LikeAdded(like) => liked(store, like, true).await?,
        Event::LikeRemoved(like) => liked(store, like, false).await?,
        Event::UserDeleted(gone) => {
            let clear = FeedWork::ClearTimeline {
                user_id: gone.user_id.clone(),
            };
            deps.work.enqueue(&Job::new(clear, &envelope)).await?;
        }
        _ => {}
    }
    // Authors' names, avatars and privacy; follows and blocks.
    deps.directory.apply(&envelope).await?;
    Ok(())
}

/// A conflict the event expects (applied before, stale, about a post gone) is success:
/// the state already says what the event says.
fn expected(result: StoreResult<()>, labels: &[&str]) -> Result<(), ConsumeError> {
    match result {
        Err(StoreError::Conflict(label)) if labels.contains(&label) => Ok(()),
        other => Ok(other?),
    }
}

/// Stores the post's copy, lists it among the author's recent posts, puts it in the
/// author's own timeline, and hands the followers' timelines to the work queue (unless
/// the author is a celebrity).
async fn publish<S: FeedStore, D, Q: WorkQueue>(
    deps: &Deps<S, D, Q>,
    facts: &PostFacts,
    cause: &Envelope,
) -> Result<(), ConsumeError> {
    let store = &deps.store;
    let copy = PostCopy::of(facts, &cause.occurred_at);
    match store.put_post(&copy).await {
        Ok(()) => {}
        // Delivered before: do it again (writes are idempotent) to finish what a failed
        // delivery left half done, unless the post was deleted since (a tombstone): a
        // deleted post must not come back into timelines.
        Err(StoreError::Conflict(POST_EXISTS)) => {
            if store.post(&copy.post_id).await?.is_none() {
                return Ok(());
            }
        }
        Err(err) => return Err(err.into()),
    }
    let entry = copy.entry();
    store.add_recent(&entry).await?;
    // The author sees their own post in their feed.
    store
        .add_to_timelines(from_ref(&copy.author_id), from_ref(&entry))
        .await?;
    let meta = store.author_meta(&copy.author_id).await?;
    if deps.settings.merged_at_read_time(&meta) {
        tracing::info!(post_id = %copy.post_id, followers = meta.follower_count, "celebrity post: merged at read time");
        return Ok(());
    }
    deps.work
        .enqueue(&Job::new(FeedWork::FanOut { entry }, cause))
        .await?;
    tracing::info!(post_id = %copy.post_id, followers = meta.follower_count, "post handed on to fan out");
    Ok(())
}

/// Tombstones the post (keeping where its entries are), takes it out of its author's
/// timeline and recent posts, and hands the followers' timelines to the work queue.
async fn unpublish<S: FeedStore, D, Q: WorkQueue>(
    deps: &Deps<S, D, Q>,
    post_id: &PostId,
    author_id: &UserId,
    cause: &Envelope,
) -> Result<(), ConsumeError> {
    let store = &deps.store;
    let entry = match store.post(post_id).await? {
        // The tombstone first: from then on a fan-out still under way takes back what it
        // writes (it checks the post after writing).
        Some(copy) => {
            let entry = copy.entry();
            store
                .tombstone_post(post_id, author_id, Some(&entry))
                .await?;
            entry
        }
        // Deleted before: finish what that delivery may have left (its tombstone says
        // where the entries are).
        None => match store.deleted_entry(post_id).await? {
            Some(entry) => entry,
            // Never published here: nothing was written; the tombstone keeps it so.
            None => {
                store.tombstone_post(post_id, author_id, None).await?;
                return Ok(());
            }
        },
    };
    store
        .remove_from_timelines(from_ref(&entry.author_id), from_ref(&entry))
        .await?;
    store.remove_recent(&entry).await?;
    deps.work
        .enqueue(&Job::new(FeedWork::Unpublish { entry }, cause))
        .await?;
    Ok(())
}

async fn follow_changed<S: FeedStore, D, Q: WorkQueue>(
    deps: &Deps<S, D, Q>,
    edge: &EdgeFacts,
    holds: bool,
    cause: &Envelope,
) -> Result<(), ConsumeError> {
    let store = &deps.store;
    let next = PairMarker {
        seq: edge.seq,
        holds,
    };
    let (follower, followee) = (&edge.follower_id, &edge.followee_id);
    for _ in 0..EDGE_ATTEMPTS {
        let previous = store.edge(follower, followee).await?;
        let change = follow_change(previous, next);
        let meta = store.author_meta(followee).await?;
        if change == FollowChange::Stale {
            // A redelivery: hand on again a promotion its first delivery may not have.
            if holds && deps.settings.awaits_promotion(&meta) {
                promote(deps, followee, cause).await?;
            }
            return Ok(());
        }
        // An author at the threshold is merged at read time from then on, flagged or not:
        // a new follower is listed among their celebrities, not backfilled.
        let merged = deps.settings.merged_at_read_time(&meta);
        match store
            .set_edge(follower, followee, previous, next, merged)
            .await
        {
            Ok(()) => {}
            // Another delivery moved the marker meanwhile: read it again.
            Err(StoreError::Conflict(EDGE_MOVED)) => continue,
            Err(err) => return Err(err.into()),
        }
        match change {
            FollowChange::Started => {
                if !merged {
                    let recent = store.recent(followee, None, BACKFILL).await?;
                    store.add_to_timelines(from_ref(follower), &recent).await?;
                }
                if deps.settings.promotes(&meta) {
                    promote(deps, followee, cause).await?;
                }
            }
            FollowChange::Ended => remove_posts_of(store, follower, followee).await?,
            FollowChange::Stale | FollowChange::Unchanged => {}
        }
        return Ok(());
    }
    Err(ConsumeError::retry_because(
        "follow marker kept changing; retry",
    ))
}

/// Hands on listing `author` among every follower's celebrities, then flagging them one.
async fn promote<S, D, Q: WorkQueue>(
    deps: &Deps<S, D, Q>,
    author: &UserId,
    cause: &Envelope,
) -> Result<(), ConsumeError> {
    let work = FeedWork::Promote {
        author_id: author.clone(),
    };
    deps.work.enqueue(&Job::new(work, cause)).await?;
    tracing::info!(%author, "author reached the celebrity threshold; promotion handed on");
    Ok(())
}

/// Removes `author`'s posts from `user`'s timeline.
async fn remove_posts_of<S: FeedStore>(
    store: &S,
    user: &UserId,
    author: &UserId,
) -> StoreResult<()> {
    let mut before: Option<String> = None;
    loop {
        let recent = store.recent(author, before.as_deref(), REMOVE_PAGE).await?;
        let Some(last) = recent.last() else {
            return Ok(());
        };
        before = Some(last.position.clone());
        store.remove_from_timelines(from_ref(user), &recent).await?;
    }
}

async fn liked<S: FeedStore>(store: &S, like: &LikeFacts, holds: bool) -> Result<(), ConsumeError> {
    let marker = PairMarker {
        seq: like.seq,
        holds,
    };
    // A newer change of this like is recorded already: this one is stale.
    let set = store.set_liked(&like.user_id, &like.post_id, marker).await;
    expected(set, &[LIKE_STALE])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::CommentId;
    use shutter_directory::MemoryDirectory;
    use shutter_events::{EngagementChanged, PostDeleted, UserDeleted, UserRegistered};

    use shutter_events::work::MemoryWorkQueue;

    use super::*;
    use crate::model::{AuthorMeta, Entry, FanOut, TIMELINE_CAP};
    use crate::store::{FeedReader, MemoryFeedStore};
    use crate::worker::{self, trim};

    type TestApp = Deps<MemoryFeedStore, MemoryDirectory, MemoryWorkQueue>;

    /// Authors with three followers or more are celebrities here; work goes two items a
    /// chunk, so a few users take several.
    fn app() -> TestApp {
        WithWork {
            app: Timelines {
                store: MemoryFeedStore::default(),
                directory: MemoryDirectory::default(),
                settings: FanOut {
                    celebrity_followers: 3,
                },
            },
            work: MemoryWorkQueue::default(),
            page: 2,
        }
    }

    /// Runs the work handed on until none is left, as `feed-fanout-worker` would.
    async fn work(app: &TestApp) {
        let failed = app.work.drain(10_000, |job| worker::chunk(app, job)).await;
        assert!(failed.is_empty(), "{failed:?}");
    }

    fn env(event: Event) -> Envelope {
        Envelope::new(event, None, "test")
    }

    fn facts(post: &PostId, author: &UserId, caption: &str, version: u64) -> PostFacts {
        PostFacts {
            post_id: post.clone(),
            author_id: author.clone(),
            caption: caption.to_owned(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: "2026-11-25T10:00:00.000Z".into(),
            version,
            media: vec![],
        }
    }

    fn published(post: &PostId, author: &UserId) -> Envelope {
        env(Event::PostPublished(facts(post, author, "hi", 1)))
    }

    fn deleted(post: &PostId, author: &UserId) -> Envelope {
        env(Event::PostDeleted(PostDeleted {
            post_id: post.clone(),
            author_id: author.clone(),
            deleted_by: author.clone(),
        }))
    }

    fn follow(follower: &UserId, followee: &UserId, seq: u64, started: bool) -> Envelope {
        let edge = EdgeFacts {
            follower_id: follower.clone(),
            followee_id: followee.clone(),
            seq,
            at: "t".into(),
            reason: None,
        };
        env(if started {
            Event::FollowStarted(edge)
        } else {
            Event::FollowEnded(edge)
        })
    }

    fn like(user: &UserId, post: &PostId, author: &UserId, seq: u64, added: bool) -> Envelope {
        let facts = LikeFacts {
            post_id: post.clone(),
            post_author_id: author.clone(),
            user_id: user.clone(),
            seq,
            at: "t".into(),
        };
        env(if added {
            Event::LikeAdded(facts)
        } else {
            Event::LikeRemoved(facts)
        })
    }

    async fn timeline(app: &TestApp, user: &UserId) -> Vec<PostId> {
        app.store
            .timeline(user, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.post_id)
            .collect()
    }

    async fn apply_all(app: &TestApp, events: &[&Envelope]) {
        for e in events {
            apply(app, (*e).clone()).await.unwrap();
            work(app).await;
        }
    }

    fn users(n: usize) -> Vec<UserId> {
        (0..n).map(|_| UserId::generate()).collect()
    }

    #[tokio::test]
    async fn a_post_reaches_its_author_and_each_follower_once_however_often_delivered() {
        // GIVEN ann with two followers
        let app = app();
        let [ann, bob, cat] = <[UserId; 3]>::try_from(users(3)).unwrap();
        apply_all(
            &app,
            &[&follow(&bob, &ann, 1, true), &follow(&cat, &ann, 1, true)],
        )
        .await;
        let post = PostId::generate();
        let event = published(&post, &ann);
        // AND a first delivery that failed after writing bob's timeline only
        let entry = Entry::new(&event.occurred_at, &post, &ann);
        app.store
            .add_to_timelines(from_ref(&bob), from_ref(&entry))
            .await
            .unwrap();

        // WHEN the post is delivered, and redelivered
        apply_all(&app, &[&event, &event, &event]).await;

        // THEN each timeline holds it exactly once, and so do ann's recent posts
        for user in [&ann, &bob, &cat] {
            assert_eq!(timeline(&app, user).await, from_ref(&post));
        }
        let recent = app.store.recent(&ann, None, 10).await.unwrap();
        assert_eq!(recent, [entry]);
    }

    #[tokio::test]
    async fn a_deleted_post_leaves_every_timeline_for_good() {
        // GIVEN ann's post fanned out to her two followers
        let app = app();
        let [ann, bob, cat] = <[UserId; 3]>::try_from(users(3)).unwrap();
        let post = PostId::generate();
        let (publish, delete) = (published(&post, &ann), deleted(&post, &ann));
        apply_all(
            &app,
            &[
                &follow(&bob, &ann, 1, true),
                &follow(&cat, &ann, 1, true),
                &publish,
            ],
        )
        .await;
        assert_eq!(timeline(&app, &cat).await, from_ref(&post));

        // WHEN it is deleted
        apply_all(&app, &[&delete]).await;

        // THEN it leaves the author's, every follower's and the recent list
        for user in [&ann, &bob, &cat] {
            assert!(timeline(&app, user).await.is_empty());
        }
        assert!(app.store.recent(&ann, None, 10).await.unwrap().is_empty());
        assert_eq!(app.store.post(&post).await.unwrap(), None);

        // AND a redelivery of both (a retried batch) does not bring it back
        apply_all(&app, &[&publish, &delete, &publish]).await;
        for user in [&ann, &bob, &cat] {
            assert!(timeline(&app, user).await.is_empty());
        }
        assert!(app.store.recent(&ann, None, 10).await.unwrap().is_empty());
    }

    fn removed(post: &PostId, author: &UserId, kind: shutter_events::RemovedKind) -> Envelope {
        env(Event::ContentRemoved(shutter_events::ContentRemoved {
            kind,
            target_id: post.to_string(),
            post_id: post.clone(),
            author_id: author.clone(),
            note: "spam".into(),
            removed_by: UserId::generate(),
            removed_at: "2026-12-07T00:00:00.000Z".into(),
        }))
    }

    #[tokio::test]
    async fn a_removed_post_leaves_every_timeline_and_late_events_do_not_bring_it_back() {
        // GIVEN ann's post fanned out to her follower
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let post = PostId::generate();
        let publish = published(&post, &ann);
        apply_all(&app, &[&follow(&bob, &ann, 1, true), &publish]).await;
        assert_eq!(timeline(&app, &bob).await, from_ref(&post));
        // WHEN a comment of it is removed THEN the post stays
        let comment = removed(&post, &ann, shutter_events::RemovedKind::Comment);
        apply_all(&app, &[&comment]).await;
        assert_eq!(timeline(&app, &bob).await, from_ref(&post));
        // WHEN staff remove the post (delivered twice)
        let removal = removed(&post, &ann, shutter_events::RemovedKind::Post);
        apply_all(&app, &[&removal, &removal]).await;
        // THEN it leaves her timeline, bob's and her recent posts
        for user in [&ann, &bob] {
            assert!(timeline(&app, user).await.is_empty());
        }
        assert!(app.store.recent(&ann, None, 10).await.unwrap().is_empty());
        assert_eq!(app.store.post(&post).await.unwrap(), None);
        // AND a late publication or edit does not bring it back
        let edit = env(Event::PostUpdated(facts(&post, &ann, "innocent", 2)));
        apply_all(&app, &[&publish, &edit]).await;
        for user in [&ann, &bob] {
            assert!(timeline(&app, user).await.is_empty());
        }
        assert_eq!(app.store.post(&post).await.unwrap(), None);
    }

    #[tokio::test]
    async fn following_backfills_unfollowing_removes_and_late_events_change_nothing() {
        // GIVEN ann published two posts before bob followed her
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let posts = [PostId::generate(), PostId::generate()];
        for post in &posts {
            apply_all(&app, &[&published(post, &ann)]).await;
        }
        let started = follow(&bob, &ann, 1, true);

        // WHEN bob follows her (delivered twice) THEN both are in his timeline and he is
        // counted once
        apply_all(&app, &[&started, &started]).await;
        let mut got = timeline(&app, &bob).await;
        got.sort();
        let mut want = posts.to_vec();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(app.store.author_meta(&ann).await.unwrap().follower_count, 1);

        // WHEN he unfollows, and the older start arrives late again
        apply_all(&app, &[&follow(&bob, &ann, 2, false), &started]).await;

        // THEN her posts are gone from his timeline, and he is neither counted nor listed
        assert!(timeline(&app, &bob).await.is_empty());
        assert_eq!(app.store.author_meta(&ann).await.unwrap().follower_count, 0);
        assert!(
            app.store
                .followers(&ann, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_author_reaching_the_threshold_is_merged_at_read_time_from_then_on() {
        // GIVEN ann and three followers (the threshold)
        let app = app();
        let ann = UserId::generate();
        let fans = users(3);
        for fan in &fans {
            apply_all(&app, &[&follow(fan, &ann, 1, true)]).await;
        }
        // THEN she is a celebrity, listed among each follower's celebrities
        assert!(app.store.author_meta(&ann).await.unwrap().celebrity);
        for fan in &fans {
            assert_eq!(
                app.store.celebrities_followed(fan).await.unwrap(),
                from_ref(&ann)
            );
        }

        // WHEN she publishes THEN only her own timeline and recent list get the post
        let post = PostId::generate();
        apply_all(&app, &[&published(&post, &ann)]).await;
        assert_eq!(timeline(&app, &ann).await, from_ref(&post));
        for fan in &fans {
            assert!(timeline(&app, fan).await.is_empty());
        }
        assert_eq!(app.store.recent(&ann, None, 10).await.unwrap().len(), 1);

        // AND a new follower is listed, not backfilled
        let late = UserId::generate();
        apply_all(&app, &[&follow(&late, &ann, 1, true)]).await;
        assert_eq!(app.store.celebrities_followed(&late).await.unwrap(), [ann]);
        assert!(timeline(&app, &late).await.is_empty());
    }

    #[tokio::test]
    async fn counts_edits_and_likes_apply_once_and_in_order() {
        // GIVEN a published post
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let post = PostId::generate();
        apply_all(&app, &[&published(&post, &ann)]).await;
        let counted = env(Event::PostEngagementChanged(EngagementChanged {
            post_id: post.clone(),
            like_delta: 1,
            comment_delta: 2,
        }));
        let unknown = env(Event::PostEngagementChanged(EngagementChanged {
            post_id: PostId::generate(),
            like_delta: 1,
            comment_delta: 0,
        }));
        let edit =
            |caption: &str, version| env(Event::PostUpdated(facts(&post, &ann, caption, version)));

        // WHEN its counts move (delivered twice), one about an unknown post arrives, it
        // is edited twice with the older edit last, and bob's like is taken back by a
        // late, older event
        apply_all(
            &app,
            &[
                &counted,
                &counted,
                &unknown,
                &edit("newer", 3),
                &edit("older", 2),
                &like(&bob, &post, &ann, 2, true),
                &like(&bob, &post, &ann, 1, false),
            ],
        )
        .await;

        // THEN it is counted once, keeps the newer caption, and bob still likes it
        let copy = app.store.post(&post).await.unwrap().unwrap();
        assert_eq!((copy.like_count, copy.comment_count), (1, 2));
        assert_eq!((copy.caption.as_str(), copy.version), ("newer", 3));
        let found = app.store.hydrate(&bob, from_ref(&post), &[]).await.unwrap();
        assert!(found.liked.contains(&post));
    }

    #[tokio::test]
    async fn a_deleted_account_loses_its_timeline_and_its_directory_entry() {
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let registered = env(Event::UserRegistered(UserRegistered {
            user_id: bob.clone(),
            username: "bob".into(),
            created_at: "t".into(),
        }));
        apply_all(&app, &[&registered, &follow(&bob, &ann, 1, true)]).await;
        for _ in 0..150 {
            apply_all(&app, &[&published(&PostId::generate(), &ann)]).await;
        }
        assert_eq!(timeline(&app, &bob).await.len(), 150);

        apply_all(
            &app,
            &[&env(Event::UserDeleted(UserDeleted {
                user_id: bob.clone(),
                username: "bob".into(),
            }))],
        )
        .await;

        assert!(timeline(&app, &bob).await.is_empty());
        assert_eq!(app.directory.author(&bob).await.unwrap(), None);
    }

    #[tokio::test]
    async fn timelines_are_trimmed_to_their_cap_oldest_first() {
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let entries: Vec<Entry> = (0..TIMELINE_CAP + 5)
            .map(|i| {
                let at = format!("2026-11-25T10:{:02}:{:02}.000Z", i / 60, i % 60);
                Entry::new(&at, &PostId::generate(), &ann)
            })
            .collect();
        app.store
            .add_to_timelines(from_ref(&bob), &entries)
            .await
            .unwrap();

        assert_eq!(trim(&app.store, &bob).await.unwrap(), 5);

        let kept = app.store.timeline(&bob, None, 10_000).await.unwrap();
        assert_eq!(kept.len(), TIMELINE_CAP);
        assert_eq!(kept.last(), entries.get(5));
        assert_eq!(trim(&app.store, &bob).await.unwrap(), 0);
    }

    #[test]
    fn the_consumer_declares_exactly_the_events_it_acts_on() {
        let mut handled: Vec<_> = EVENTS.handles.iter().collect();
        handled.sort();
        let mut want = vec![
            // The feed's own effects
            EventType::PostPublished,
            EventType::PostUpdated,
            EventType::PostDeleted,
            EventType::PostEngagementChanged,
            EventType::FollowStarted,
            EventType::FollowEnded,
            EventType::LikeAdded,
            EventType::LikeRemoved,
            EventType::UserDeleted,
            EventType::ContentRemoved,
            // The directory's
            EventType::UserSuspended,
            EventType::UserReinstated,
            EventType::UserRegistered,
            EventType::ProfileUpdated,
            EventType::AvatarChanged,
            EventType::UserBlocked,
            EventType::UserUnblocked,
        ];
        want.sort();
        assert_eq!(handled, want);
    }

    #[tokio::test]
    async fn events_it_does_not_act_on_change_nothing() {
        let app = app();
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        let post = PostId::generate();
        apply_all(&app, &[&follow(&bob, &ann, 1, true)]).await;
        let comment = env(Event::CommentAdded(shutter_events::CommentAdded {
            comment_id: CommentId::generate(),
            post_id: post,
            author_id: bob.clone(),
            reply_to: None,
            text: "hi".into(),
            hashtags: vec![],
            mentions: vec![],
            created_at: "t".into(),
        }));
        apply(&app, comment).await.unwrap();
        assert!(timeline(&app, &bob).await.is_empty());
        assert_eq!(
            app.store.author_meta(&ann).await.unwrap(),
            AuthorMeta {
                follower_count: 1,
                celebrity: false
            }
        );
    }

    #[tokio::test]
    async fn an_outage_fails_the_batch_for_a_retry_never_the_dead_letter_queue() {
        let app = app();
        let ann = UserId::generate();
        app.store.go_down();
        let err = apply(&app, published(&PostId::generate(), &ann))
            .await
            .unwrap_err();
        assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
    }

    #[tokio::test]
    async fn a_fan_out_goes_a_page_a_chunk_and_a_repeated_job_changes_nothing() {
        // GIVEN ann with five followers (two a chunk here) and a celebrity threshold above
        let mut app = app();
        app.app.settings.celebrity_followers = 100;
        let ann = UserId::generate();
        let fans = users(5);
        for fan in &fans {
            apply_all(&app, &[&follow(fan, &ann, 1, true)]).await;
        }
        let post = PostId::generate();
        let event = published(&post, &ann);

        // WHEN the post is published THEN the record hands on one job, and its own work is
        // done: the author's timeline and recent posts
        apply(&app, event.clone()).await.unwrap();
        let jobs = app.work.take::<FeedWork>();
        assert_eq!(jobs.len(), 1);
        let entry = Entry::new(&event.occurred_at, &post, &ann);
        assert_eq!(jobs[0].work, FeedWork::FanOut { entry });
        assert_eq!(jobs[0].event_id, event.id);
        assert_eq!(timeline(&app, &ann).await, from_ref(&post));
        assert!(timeline(&app, &fans[0]).await.is_empty());

        // WHEN the job runs THEN it takes three chunks and every follower has the post once
        let mut chunks = Vec::new();
        app.work.enqueue(&jobs[0]).await.unwrap();
        let failed = app
            .work
            .drain(100, |job| {
                chunks.push(job.cursor.clone());
                worker::chunk(&app, job)
            })
            .await;
        assert!(failed.is_empty());
        assert_eq!(chunks.len(), 3, "{chunks:?}");
        for fan in &fans {
            assert_eq!(timeline(&app, fan).await, from_ref(&post));
        }

        // AND the same job again (SQS delivers twice, or the record was redelivered)
        // changes nothing
        app.work.enqueue(&jobs[0]).await.unwrap();
        work(&app).await;
        for fan in &fans {
            assert_eq!(timeline(&app, fan).await, from_ref(&post));
        }
    }

    #[tokio::test]
    async fn an_unfollow_racing_a_fan_out_keeps_the_post_out_of_the_ex_followers_timeline() {
        // GIVEN ann with followers bob and cat, and a fan-out that read its follower page
        // before bob unfollowed
        let mut app = app();
        app.app.settings.celebrity_followers = 100;
        let [ann, bob, cat] = <[UserId; 3]>::try_from(users(3)).unwrap();
        apply_all(
            &app,
            &[&follow(&bob, &ann, 1, true), &follow(&cat, &ann, 1, true)],
        )
        .await;
        app.store.freeze_followers(&ann);
        let post = PostId::generate();
        apply(&app, published(&post, &ann)).await.unwrap();

        // WHEN bob's unfollow is applied before the fan-out writes its page
        apply(&app, follow(&bob, &ann, 2, false)).await.unwrap();
        work(&app).await;

        // THEN the fan-out took back what it wrote for bob; cat has the post
        assert!(timeline(&app, &bob).await.is_empty());
        assert_eq!(timeline(&app, &cat).await, from_ref(&post));
    }

    #[tokio::test]
    async fn a_post_deleted_before_its_fan_out_ran_reaches_no_one() {
        // GIVEN ann's post handed on to fan out to bob, not yet done
        let mut app = app();
        app.app.settings.celebrity_followers = 100;
        let [ann, bob] = <[UserId; 2]>::try_from(users(2)).unwrap();
        apply_all(&app, &[&follow(&bob, &ann, 1, true)]).await;
        let post = PostId::generate();
        apply(&app, published(&post, &ann)).await.unwrap();

        // WHEN it is deleted (delivered twice) before the work runs
        let delete = deleted(&post, &ann);
        apply(&app, delete.clone()).await.unwrap();
        apply(&app, delete).await.unwrap();
        work(&app).await;

        // THEN no timeline and no recent list has it
        for user in [&ann, &bob] {
            assert!(timeline(&app, user).await.is_empty());
        }
        assert!(app.store.recent(&ann, None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_deletion_whose_hand_on_failed_is_finished_by_its_redelivery() {
        // GIVEN ann's post fanned out to three followers
        let mut app = app();
        app.app.settings.celebrity_followers = 100;
        let ann = UserId::generate();
        let fans = users(3);
        for fan in &fans {
            apply_all(&app, &[&follow(fan, &ann, 1, true)]).await;
        }
        let post = PostId::generate();
        apply_all(&app, &[&published(&post, &ann)]).await;

        // WHEN its deletion cannot hand on the followers' part (the queue is down)
        let delete = deleted(&post, &ann);
        app.work.set_down(true);
        let err = apply(&app, delete.clone()).await.unwrap_err();
        assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
        app.work.set_down(false);
        // THEN the post is tombstoned already, and the redelivery finishes the rest
        assert_eq!(app.store.post(&post).await.unwrap(), None);
        apply_all(&app, &[&delete]).await;
        for user in fans.iter().chain([&ann]) {
            assert!(timeline(&app, user).await.is_empty());
        }
    }

    #[tokio::test]
    async fn a_promotion_whose_hand_on_failed_is_handed_on_by_the_redelivery() {
        // GIVEN ann with two followers (the threshold is three)
        let app = app();
        let ann = UserId::generate();
        let fans = users(3);
        for fan in &fans[..2] {
            apply_all(&app, &[&follow(fan, &ann, 1, true)]).await;
        }
        // WHEN the third follow is applied while the queue is down
        let third = follow(&fans[2], &ann, 1, true);
        app.work.set_down(true);
        assert!(apply(&app, third.clone()).await.is_err());
        app.work.set_down(false);
        // THEN the follow is counted but ann is not flagged yet
        let meta = app.store.author_meta(&ann).await.unwrap();
        assert_eq!((meta.follower_count, meta.celebrity), (3, false));
        // AND its redelivery (a stale follow now) hands the promotion on: every follower
        // lists her, and she is flagged
        apply_all(&app, &[&third]).await;
        assert!(app.store.author_meta(&ann).await.unwrap().celebrity);
        for fan in &fans {
            assert_eq!(
                app.store.celebrities_followed(fan).await.unwrap(),
                from_ref(&ann)
            );
        }
    }

    #[tokio::test]
    async fn a_job_that_is_not_one_fails_its_message_alone() {
        let app = app();
        let ann = UserId::generate();
        let good = Job::new(
            FeedWork::ClearTimeline {
                user_id: ann.clone(),
            },
            &published(&PostId::generate(), &ann),
        );
        app.work
            .send("{\"work\":{\"kind\":\"reticulate\"}}".into())
            .await
            .unwrap();
        app.work.enqueue(&good).await.unwrap();
        let failed = app.work.drain(10, |job| worker::chunk(&app, job)).await;
        assert_eq!(failed.len(), 1);
        assert!(failed[0].contains("reticulate"));
    }
}
