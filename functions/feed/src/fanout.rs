//! `feed-events`: builds home timelines from the posts, follows, likes, identity and
//! profiles topics.
//!
//! Hybrid fan-out. A post of an ordinary author is written into each follower's timeline
//! at publication (25 entries a BatchWriteItem); a post of a celebrity (an author with at
//! least `FEED_CELEBRITY_FOLLOWERS` followers) is not, and its followers' feeds merge the
//! celebrity's recent posts at read time instead. Writing an entry is idempotent (same key,
//! same item), so a batch that fails halfway and is retried duplicates nothing.
//!
//! Following someone backfills their recent posts into the follower's timeline;
//! unfollowing (and the follow ends a block or an account deletion cause) removes them.
//! A deleted post leaves every timeline it was written to; a deleted account's own
//! timeline goes. Follow and like events apply once and in order through their `seq`;
//! engagement deltas once per event id.

use std::future::Future;
use std::slice::from_ref;

use shutter_core::{PostId, UserId};
use shutter_directory::Directory;
use shutter_events::{
    ConsumeError, Consumer, EdgeFacts, Envelope, Event, EventSet, EventType, LikeFacts, PostFacts,
};
use shutter_store::{StoreError, StoreResult};

use crate::Timelines;
use crate::model::{
    BACKFILL, FollowChange, PairMarker, PostCopy, TIMELINE_CAP, due_trim, follow_change,
};
use crate::store::{
    EDGE_MOVED, FeedStore, LIKE_STALE, POST_EXISTS, POST_GONE, POST_STALE, PROCESSED,
};

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
    summary: "Builds home timelines: fans ordinary authors' posts out to their followers, backfills and removes posts as follows start and end, clears a deleted account's timeline, and keeps the feed's copies of posts, their counts, likes and authors.",
};

/// Followers read per page while fanning out.
const FOLLOWER_PAGE: usize = 1000;

/// Entries read per page while removing or trimming.
const REMOVE_PAGE: usize = 100;

/// Tries at moving a follow marker that others keep moving.
const EDGE_ATTEMPTS: usize = 5;

/// One event's effects, then the directory's.
pub async fn apply<S: FeedStore, D: Directory>(
    app: &Timelines<S, D>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    let store = &app.store;
    match &envelope.event {
        Event::PostPublished(facts) => publish(app, facts, &envelope.occurred_at).await?,
        Event::PostUpdated(facts) => {
            // An older or repeated edit, or one of a post deleted since, changes nothing.
            let edit = store.update_post(&PostCopy::of(facts, "")).await;
            expected(edit, &[POST_STALE])?;
        }
        Event::PostDeleted(gone) => unpublish(store, &gone.post_id, &gone.author_id).await?,
        Event::PostEngagementChanged(change) => {
            // Counted before, or about a post unknown here or deleted: nothing to count.
            let counted = store
                .add_engagement(EVENTS.name, &envelope.id, change)
                .await;
            expected(counted, &[PROCESSED, POST_GONE])?;
        }
        Event::FollowStarted(edge) => follow_changed(app, edge, true).await?,
        Event::FollowEnded(edge) => follow_changed(app, edge, false).await?,
        Event::LikeAdded(like) => liked(store, like, true).await?,
        Event::LikeRemoved(like) => liked(store, like, false).await?,
        Event::UserDeleted(gone) => clear_timeline(store, &gone.user_id).await?,
        _ => {}
    }
    // Authors' names, avatars and privacy; follows and blocks.
    app.directory.apply(&envelope).await?;
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

/// Every follower of `author`, page by page, each page handed to `each`; how many.
async fn for_each_follower_page<S, F, Fut>(
    store: &S,
    author: &UserId,
    mut each: F,
) -> StoreResult<usize>
where
    S: FeedStore,
    F: FnMut(Vec<UserId>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut after: Option<UserId> = None;
    let mut total = 0;
    loop {
        let page = store
            .followers(author, after.as_ref(), FOLLOWER_PAGE)
            .await?;
        let Some(last) = page.last().cloned() else {
            return Ok(total);
        };
        total += page.len();
        each(page).await?;
        after = Some(last);
    }
}

async fn publish<S: FeedStore, D>(
    app: &Timelines<S, D>,
    facts: &PostFacts,
    published_at: &str,
) -> Result<(), ConsumeError> {
    let store = &app.store;
    let copy = PostCopy::of(facts, published_at);
    match store.put_post(&copy).await {
        Ok(()) => {}
        // Delivered before: fan out again (writes are idempotent) to finish what a failed
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
    if app.settings.merged_at_read_time(&meta) {
        tracing::info!(post_id = %copy.post_id, followers = meta.follower_count, "celebrity post: merged at read time");
        return Ok(());
    }
    let fanned = for_each_follower_page(store, &copy.author_id, |page| {
        let entry = entry.clone();
        async move {
            store.add_to_timelines(&page, from_ref(&entry)).await?;
            for user in page.iter().filter(|u| due_trim(&entry.post_id, u)) {
                trim(store, user).await?;
            }
            Ok(())
        }
    })
    .await?;
    tracing::info!(post_id = %copy.post_id, followers = fanned, "post fanned out");
    Ok(())
}

/// Deletes the timeline's entries beyond [`TIMELINE_CAP`]; how many.
async fn trim<S: FeedStore>(store: &S, user: &UserId) -> StoreResult<usize> {
    let kept = store.timeline(user, None, TIMELINE_CAP).await?;
    if kept.len() < TIMELINE_CAP {
        return Ok(0);
    }
    let oldest_kept = kept.last().map(|e| e.position.clone());
    let mut trimmed = 0;
    loop {
        let beyond = store
            .timeline(user, oldest_kept.as_deref(), REMOVE_PAGE)
            .await?;
        if beyond.is_empty() {
            return Ok(trimmed);
        }
        trimmed += beyond.len();
        store.remove_from_timelines(from_ref(user), &beyond).await?;
    }
}

async fn unpublish<S: FeedStore>(
    store: &S,
    post_id: &PostId,
    author_id: &UserId,
) -> Result<(), ConsumeError> {
    // The copy tells where the entries are; without one, nothing was written.
    let Some(copy) = store.post(post_id).await? else {
        store.tombstone_post(post_id, author_id).await?;
        return Ok(());
    };
    let entry = copy.entry();
    store
        .remove_from_timelines(from_ref(&copy.author_id), from_ref(&entry))
        .await?;
    for_each_follower_page(store, &copy.author_id, |page| {
        let entry = entry.clone();
        async move { store.remove_from_timelines(&page, from_ref(&entry)).await }
    })
    .await?;
    store.remove_recent(&entry).await?;
    // The tombstone last: a retry after a failure above finds the copy and tries again.
    store.tombstone_post(post_id, author_id).await?;
    Ok(())
}

async fn follow_changed<S: FeedStore, D>(
    app: &Timelines<S, D>,
    edge: &EdgeFacts,
    holds: bool,
) -> Result<(), ConsumeError> {
    let store = &app.store;
    let next = PairMarker {
        seq: edge.seq,
        holds,
    };
    let (follower, followee) = (&edge.follower_id, &edge.followee_id);
    for _ in 0..EDGE_ATTEMPTS {
        let previous = store.edge(follower, followee).await?;
        let change = follow_change(previous, next);
        if change == FollowChange::Stale {
            return Ok(());
        }
        let meta = store.author_meta(followee).await?;
        match store
            .set_edge(follower, followee, previous, next, meta.celebrity)
            .await
        {
            Ok(()) => {}
            // Another delivery moved the marker meanwhile: read it again.
            Err(StoreError::Conflict(EDGE_MOVED)) => continue,
            Err(err) => return Err(err.into()),
        }
        match change {
            FollowChange::Started => {
                // Backfill: the followee's recent posts (a celebrity's are merged at read
                // time).
                if !meta.celebrity {
                    let recent = store.recent(followee, None, BACKFILL).await?;
                    store.add_to_timelines(from_ref(follower), &recent).await?;
                }
                if app.settings.promotes(&meta) {
                    let listed = promote(store, followee).await?;
                    tracing::info!(author = %followee, listed, "author became a celebrity");
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

/// Lists `author` among every follower's celebrities, then flags them one (so their posts
/// are merged at read time from now on instead of fanned out); how many were listed.
async fn promote<S: FeedStore>(store: &S, author: &UserId) -> StoreResult<usize> {
    let listed = for_each_follower_page(store, author, |page| async move {
        store.list_celebrity(&page, author).await
    })
    .await?;
    store.mark_celebrity(author).await?;
    Ok(listed)
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

/// Deletes every entry of the user's timeline (account deletion).
async fn clear_timeline<S: FeedStore>(store: &S, user: &UserId) -> StoreResult<()> {
    loop {
        let entries = store.timeline(user, None, REMOVE_PAGE).await?;
        if entries.is_empty() {
            return Ok(());
        }
        store
            .remove_from_timelines(from_ref(user), &entries)
            .await?;
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

    use super::*;
    use crate::model::{AuthorMeta, Entry, FanOut};
    use crate::store::{FeedReader, MemoryFeedStore};

    type TestApp = Timelines<MemoryFeedStore, MemoryDirectory>;

    /// Authors with three followers or more are celebrities here.
    fn app() -> TestApp {
        Timelines {
            store: MemoryFeedStore::default(),
            directory: MemoryDirectory::default(),
            settings: FanOut {
                celebrity_followers: 3,
            },
        }
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
            // The directory's
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
}
