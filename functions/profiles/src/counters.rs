//! `profiles-graph-events`: the MSK consumer of the follows and posts topics. It keeps
//! `follower_count`, `following_count` and `post_count` exact, and who blocks whom (a
//! block hides profiles both ways), however often Kafka redelivers and in whatever order
//! one edge's or post's events arrive.
//!
//! Each counted thing (a follow edge, a post, a block) has a marker holding the newest
//! `seq` applied and whether it counts now ([`crate::model::Counting`]). An event moves
//! the counters by the change in "counted" only, in one transaction with the marker,
//! conditional on the marker it read: a repeated or stale event changes nothing, and two
//! deliveries racing cannot both count.

use shutter_events::{ConsumeError, Consumer, Envelope, EventSet, EventType};
use shutter_store::StoreError;

use crate::App;
use crate::model::Counting;
use crate::store::{self, CountersStore};

/// How often one event is applied again when a racing delivery moved its marker.
const ATTEMPTS: usize = 5;

pub const GRAPH_EVENTS: Consumer = Consumer {
    name: "profiles-graph-events",
    handles: EventSet::of(&[
        EventType::FollowStarted,
        EventType::FollowEnded,
        EventType::UserBlocked,
        EventType::UserUnblocked,
        EventType::PostPublished,
        EventType::PostDeleted,
    ]),
    summary: "Keeps profiles' follower, following and post counts exact, and who blocks whom (a block hides profiles both ways).",
};

/// One event's effect on the counters and blocks.
pub async fn apply<S: CountersStore, M>(
    app: &App<S, M>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    let Some(counting) = Counting::of(&envelope.event) else {
        return Ok(());
    };
    for _ in 0..ATTEMPTS {
        let previous = app.store.marker(&counting.counted).await?;
        let Some(deltas) = counting.deltas(previous.as_ref()) else {
            return Ok(());
        };
        match app
            .store
            .count(
                &counting.counted,
                previous.as_ref(),
                &counting.next,
                &deltas,
            )
            .await
        {
            Ok(()) => return Ok(()),
            // A racing delivery moved the marker, or a profile was erased meanwhile:
            // decide again on what is there now.
            Err(StoreError::Conflict(store::MARKER_MOVED | store::PROFILE_GONE)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(format!(
        "the marker of {:?} kept changing",
        counting.counted
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shutter_core::{PostId, UserId};
    use shutter_events::{EdgeFacts, Event, MemoryPoisonQueue, PostDeleted, PostFacts, consume};

    use super::*;
    use crate::model::Counter;
    use crate::store::ProfilesStore;
    use crate::testing::{app, kafka, raw_kafka, register};

    fn edge(a: &UserId, b: &UserId, started: bool, seq: u64) -> Envelope {
        let facts = EdgeFacts {
            follower_id: a.clone(),
            followee_id: b.clone(),
            seq,
            at: "t".into(),
            reason: None,
        };
        let event = if started {
            Event::FollowStarted(facts)
        } else {
            Event::FollowEnded(facts)
        };
        Envelope::new(event, Some(a), "c")
    }

    fn post(kind: &str, post_id: &PostId, author: &UserId) -> Envelope {
        let facts = PostFacts {
            post_id: post_id.clone(),
            author_id: author.clone(),
            caption: String::new(),
            location: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            created_at: "t".into(),
            version: 1,
            media: Vec::new(),
        };
        let event = match kind {
            "PostPublished" => Event::PostPublished(facts),
            "PostUpdated" => Event::PostUpdated(facts),
            _ => Event::PostDeleted(PostDeleted {
                post_id: post_id.clone(),
                author_id: author.clone(),
                deleted_by: author.clone(),
            }),
        };
        Envelope::new(event, Some(author), "c")
    }

    #[tokio::test]
    async fn redelivered_and_late_follow_events_count_once() {
        let app = app();
        let (a, b) = (UserId::generate(), UserId::generate());
        let started = edge(&a, &b, true, 1);
        apply(&app, started.clone()).await.unwrap();
        apply(&app, started.clone()).await.unwrap();
        assert_eq!(app.store.count_of(&a, Counter::Following), 1);
        assert_eq!(app.store.count_of(&b, Counter::Followers), 1);
        // Ended (seq 2) then a late Started (seq 1): ends at zero.
        apply(&app, edge(&a, &b, false, 2)).await.unwrap();
        apply(&app, started).await.unwrap();
        assert_eq!(app.store.count_of(&b, Counter::Followers), 0);
        // Out of order from the start: Ended (4) before Started (3) never counts.
        apply(&app, edge(&a, &b, false, 4)).await.unwrap();
        apply(&app, edge(&a, &b, true, 3)).await.unwrap();
        assert_eq!(app.store.count_of(&b, Counter::Followers), 0);
        assert_eq!(app.store.count_of(&a, Counter::Following), 0);
    }

    #[tokio::test]
    async fn a_post_counts_from_publication_until_deletion() {
        let (app, poison) = (app(), MemoryPoisonQueue::default());
        let u = UserId::generate();
        let (p1, p2, p3) = (PostId::generate(), PostId::generate(), PostId::generate());
        for _ in 0..2 {
            apply(&app, post("PostPublished", &p1, &u)).await.unwrap();
            apply(&app, post("PostPublished", &p2, &u)).await.unwrap();
        }
        assert_eq!(app.store.count_of(&u, Counter::Posts), 2);
        apply(&app, post("PostDeleted", &p1, &u)).await.unwrap();
        apply(&app, post("PostPublished", &p1, &u)).await.unwrap();
        apply(&app, post("PostDeleted", &p3, &u)).await.unwrap();
        apply(&app, post("PostPublished", &p3, &u)).await.unwrap();
        assert_eq!(app.store.count_of(&u, Counter::Posts), 1);
        // Events it does not count are skipped; bad payloads are poison.
        let updated = post("PostUpdated", &p2, &u);
        let report = consume(
            &GRAPH_EVENTS,
            &kafka("shutter.posts", &[Some(&updated)]),
            &poison,
            |env| apply(&app, env),
        )
        .await
        .unwrap();
        assert_eq!((report.handled, report.ignored), (0, 1));
        let bad = raw_kafka(
            "shutter.follows",
            r#"{"id":"01J","type":"FollowStarted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"a","correlation_id":"c","data":{"seq":"x"}}"#,
        );
        consume(&GRAPH_EVENTS, &bad, &poison, |env| apply(&app, env))
            .await
            .unwrap();
        assert_eq!(poison.positions(), vec!["shutter.follows-0@0"]);
        assert_eq!(app.store.count_of(&u, Counter::Posts), 1);
    }

    #[tokio::test]
    async fn counts_show_on_the_profile_and_an_erased_profiles_stay_gone() {
        // GIVEN alice followed by bob, with one post
        let app = app();
        let alice = register(&app, "alice").await;
        let bob = register(&app, "bob").await;
        apply(&app, edge(&bob.user_id, &alice.user_id, true, 1))
            .await
            .unwrap();
        apply(
            &app,
            post("PostPublished", &PostId::generate(), &alice.user_id),
        )
        .await
        .unwrap();
        let shown = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!((shown.follower_count, shown.post_count), (1, 1));
        assert_eq!(
            app.store
                .by_id(&bob.user_id)
                .await
                .unwrap()
                .unwrap()
                .following_count,
            1
        );
        // WHEN alice's account is deleted and late events arrive
        crate::identity::apply(
            &app,
            Envelope::new(
                Event::UserDeleted(shutter_events::UserDeleted {
                    user_id: alice.user_id.clone(),
                    username: "alice".into(),
                }),
                None,
                "c",
            ),
        )
        .await
        .unwrap();
        apply(
            &app,
            post("PostPublished", &PostId::generate(), &alice.user_id),
        )
        .await
        .unwrap();
        apply(&app, edge(&bob.user_id, &alice.user_id, false, 2))
            .await
            .unwrap();
        // THEN her counters stay gone, and bob's still move
        assert_eq!(app.store.count_of(&alice.user_id, Counter::Posts), 0);
        assert_eq!(app.store.count_of(&alice.user_id, Counter::Followers), 0);
        assert_eq!(app.store.count_of(&bob.user_id, Counter::Following), 0);
        assert!(app.store.by_id(&alice.user_id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_redelivered_block_changes_nothing() {
        let app = app();
        let alice = register(&app, "alice").await;
        let bob = register(&app, "bob").await;
        let blocked = Envelope::new(
            Event::UserBlocked(shutter_events::BlockFacts {
                blocker_id: alice.user_id.clone(),
                blocked_id: bob.user_id.clone(),
                seq: 1,
                at: "t".into(),
            }),
            Some(&alice.user_id),
            "c",
        );
        apply(&app, blocked.clone()).await.unwrap();
        crate::testing::unblock(&app, &alice, &bob, 2).await;
        // The block arrives again, after the unblock: it stays lifted.
        apply(&app, blocked).await.unwrap();
        assert!(
            !app.store
                .blocked_between(&alice.user_id, &bob.user_id)
                .await
                .unwrap()
        );
        assert_eq!(app.store.count_of(&alice.user_id, Counter::Followers), 0);
    }
}
